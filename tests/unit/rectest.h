/* What the recording tests (test_record, test_record_write,
 * test_record_chunks) share: a recording read back whole through
 * rec_read, as /cast reads it; events as the session's loop writes them,
 * a writer set up, the cast's events picked out, a chunk replaced as one
 * who writes to the database directly. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "terminal/record.h"

struct buf;
struct store;

/* The key of the recordings the writer helpers make. */
extern const uint8_t rectest_key[REC_KEY_BYTES];

/* rec_read's sink: appends text to the struct buf ud. */
int rectest_collect(const char *text, size_t len, void *ud);
/* Reads recording id back with key k: 0 with its text in out, or the
 * error (-BERR_INTEGRITY always with a reason). */
int rectest_read(struct store *s, const char *id, const uint8_t *k, struct buf *out);

/* Raw events as the session's loop writes them (record.c), p malloc'd. */
struct rectest_evs {
	uint8_t *p;
	size_t len;
};
void rectest_ev_add(struct rectest_evs *e, char type, uint64_t ms, const void *data, size_t len);
/* A writer of recording id (user alice, input_output, rectest_key), capped at max. */
void rectest_writer_open(struct rec_writer *w, struct store *s, const char *id, int64_t max);
/* The cast of id, its events of type into data (concatenated) and the "m"
 * markers' texts into marks (one per line); either may be NULL. */
void rectest_cast_of(struct store *s, const char *id, char type, struct buf *data,
		     struct buf *marks);
/* Replaces chunk seq of a complete recording id, as one who writes to the
 * database directly (the store takes chunks only while recording). */
void rectest_put_chunk(struct store *s, const char *id, int64_t seq, const uint8_t *data,
		       size_t len, const uint8_t *tag);
