/* Capped buffers: see buf.h. */
#include "core/buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

static void init(struct buf *b, size_t max, bool secret)
{
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
	b->max = max;
	b->secret = secret;
}

void buf_init(struct buf *b, size_t max)
{
	init(b, max, false);
}

void buf_init_secret(struct buf *b, size_t max)
{
	init(b, max, true);
}

static void give_back(struct buf *b)
{
	if (b->data && b->secret)
		sodium_memzero(b->data, b->alloc);
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
}

/* Makes room for `more` bytes and the NUL after them. A secret buffer is
 * moved by hand (malloc, copy, wipe, free): realloc would leave a copy. */
static int reserve(struct buf *b, size_t more)
{
	size_t need, a;
	char *p;

	if (more > b->max || b->len > b->max - more)
		return -E2BIG;
	need = b->len + more + 1;
	if (need <= b->alloc)
		return 0;
	a = b->alloc ? b->alloc : 64;
	while (a < need)
		a = a > SIZE_MAX / 2 ? need : a * 2;
	/* Never more than the cap needs. */
	if (a > b->max + 1)
		a = b->max + 1;
	if (b->secret) {
		if (!(p = malloc(a)))
			return -ENOMEM;
		if (b->data) {
			memcpy(p, b->data, b->len + 1);
			sodium_memzero(b->data, b->alloc);
			free(b->data);
		}
	} else if (!(p = realloc(b->data, a))) {
		return -ENOMEM;
	}
	b->data = p;
	b->alloc = a;
	return 0;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
	int r;

	if (n == 0 && b->data)
		return 0;
	if ((r = reserve(b, n)) < 0)
		return r;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int buf_append_str(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, r;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((r = reserve(b, (size_t)n)) < 0)
		return r;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		if (b->data) {
			if (b->secret)
				sodium_memzero(b->data, b->len);
			b->data[0] = '\0';
		}
		b->len = 0;
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	if (b->secret)
		sodium_memzero(b->data + b->len - n, n);
	b->len -= n;
	b->data[b->len] = '\0';
}

void buf_truncate(struct buf *b, size_t len)
{
	if (len >= b->len)
		return;
	if (b->secret)
		sodium_memzero(b->data + len, b->len - len);
	b->len = len;
	b->data[len] = '\0';
}

void buf_reset(struct buf *b)
{
	give_back(b);
}

char *buf_take(struct buf *b, size_t *ret_len)
{
	char *p = b->data;

	if (!p && !(p = calloc(1, 1)))
		return NULL;
	if (ret_len)
		*ret_len = b->len;
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
	return p;
}

void buf_free(struct buf *b)
{
	give_back(b);
}
