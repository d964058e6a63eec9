/* What the recording tests (test_record, test_record_write,
 * test_record_chunks) share: a recording read back whole through
 * rec_read, as /cast reads it; a recording made through the packer and
 * the writer as a session makes it, the cast's events picked out, a chunk replaced as one
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

/* A recording made as a session makes one: the loop's packer and the
 * pool's writer (recording id, user alice, input_output, rectest_key,
 * capped at max). */
struct rectest_rec {
	struct rec_pack pk;
	struct rec_job job;
	struct rec_writer w;
};
void rectest_open(struct rectest_rec *t, struct store *s, const char *id, int64_t max);
/* An event, as the session's loop packs it (record.c). */
void rectest_ev(struct rectest_rec *t, char type, uint64_t ms, const void *data, size_t len);
/* A job: g's bytes dropped first (NULL: none), then what was packed since
 * the last job through the writer; final ends the recording. */
void rectest_run(struct rectest_rec *t, const struct rec_gap *g, bool final, int64_t duration_ms);
void rectest_close(struct rectest_rec *t);
/* The cast of id, its events of type into data (concatenated) and the "m"
 * markers' texts into marks (one per line); either may be NULL. */
void rectest_cast_of(struct store *s, const char *id, char type, struct buf *data,
		     struct buf *marks);
/* Replaces chunk seq of a complete recording id, as one who writes to the
 * database directly (the store takes chunks only while recording). */
void rectest_put_chunk(struct store *s, const char *id, int64_t seq, const uint8_t *data,
		       size_t len, const uint8_t *tag);
