/* What the recording tests (test_record, test_record_write) both need: a
 * recording read back whole through rec_read, as /cast reads it. */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct buf;
struct store;

/* rec_read's sink: appends text to the struct buf ud. */
int rectest_collect(const char *text, size_t len, void *ud);
/* Reads recording id back with key k: 0 with its text in out, or the
 * error (-BERR_INTEGRITY always with a reason). */
int rectest_read(struct store *s, const char *id, const uint8_t *k, struct buf *out);
