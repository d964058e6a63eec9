/* A growable byte buffer that cannot be made without a maximum size (as
 * curl's dynbuf): every append past the cap fails with -E2BIG and leaves
 * the contents as they were, never truncated. The contents are always
 * followed by a NUL (not counted in the length), so text can be read as a
 * string. A buffer made with buf_init_secret is wiped whenever its memory
 * is given back (grown, reset, freed), for passwords, keys and tokens.
 *
 * Not thread-safe: a buffer belongs to one owner at a time. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
	char *data;   /* NULL until the first append */
	size_t len;   /* bytes held, without the NUL */
	size_t alloc; /* bytes allocated */
	size_t max;   /* the cap on len */
	bool secret;  /* wipe memory given back */
};

/* An empty buffer that will hold at most max bytes (max > 0). */
void buf_init(struct buf *b, size_t max);
void buf_init_secret(struct buf *b, size_t max);

/* Appends n bytes: 0, -E2BIG past the cap, -ENOMEM; on failure the buffer
 * is unchanged. */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_append_str(struct buf *b, const char *s);
/* Appends formatted text, whole or not at all (-E2BIG, -ENOMEM, -EINVAL
 * for a format error). */
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Drops the first n bytes (n > len drops all): pending input that has been
 * consumed. */
void buf_consume(struct buf *b, size_t n);

/* Keeps the first len bytes (len >= the length changes nothing). */
void buf_truncate(struct buf *b, size_t len);

/* Empties the buffer, keeping its cap; the memory is given back. */
void buf_reset(struct buf *b);

/* Hands the contents (NUL-terminated, malloc'd) to the caller and leaves
 * the buffer empty; the length goes to *ret_len when given. An empty
 * buffer gives an empty string. NULL only when out of memory. A secret
 * buffer's contents stay the caller's to wipe (util_free_secret). */
char *buf_take(struct buf *b, size_t *ret_len);

/* Frees the memory (wiped if secret); b may be reused after buf_init. */
void buf_free(struct buf *b);

static inline const char *buf_str(const struct buf *b)
{
	return b->data ? b->data : "";
}
static inline size_t buf_len(const struct buf *b)
{
	return b->len;
}
