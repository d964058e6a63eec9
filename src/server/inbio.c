/* The BIO under SSL_read: TLS bytes are read where libuv put them (the
 * loop's read buffer, during on_read), and only what the pump did not take
 * before on_read returns is copied, into a buffer of the BIO's own that is
 * freed once read. A memory BIO copied every byte in after zeroing room for
 * it (BUF_MEM_grow_clean), 6 % of the bastion's CPU on a tunnel's bulk
 * transfer (BENCHMARKS.md), and kept its largest buffer for the
 * connection's life. */
#include "server/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* What a connection may hold unread: the pump stops reading the socket
 * long before (SRV_MAX_IN of plaintext and the socket's own buffer); this
 * only bounds a mistake. */
#define IN_KEEP_MAX (4 * 1024 * 1024)

struct in_bio {
	const uint8_t *ext; /* on_read's bytes, during on_read */
	size_t ext_len;
	uint8_t *keep; /* what was left of earlier reads */
	size_t keep_off, keep_len;
};

static int in_read(BIO *b, char *out, int outl)
{
	struct in_bio *ib = BIO_get_data(b);
	size_t n;

	BIO_clear_retry_flags(b);
	if (outl <= 0)
		return 0;
	if (ib->keep_off < ib->keep_len) {
		n = ib->keep_len - ib->keep_off;
		n = n < (size_t)outl ? n : (size_t)outl;
		memcpy(out, ib->keep + ib->keep_off, n);
		ib->keep_off += n;
		if (ib->keep_off == ib->keep_len) {
			/* An idle connection holds nothing. */
			free(ib->keep);
			ib->keep = NULL;
			ib->keep_off = ib->keep_len = 0;
		}
		return (int)n;
	}
	if (ib->ext_len) {
		n = ib->ext_len < (size_t)outl ? ib->ext_len : (size_t)outl;
		memcpy(out, ib->ext, n);
		ib->ext += n;
		ib->ext_len -= n;
		return (int)n;
	}
	BIO_set_retry_read(b); /* as an empty memory BIO: wait for more */
	return -1;
}

static long in_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct in_bio *ib = BIO_get_data(b);

	(void)num, (void)ptr;
	if (cmd == BIO_CTRL_PENDING)
		return (long)(ib->keep_len - ib->keep_off + ib->ext_len);
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int in_destroy(BIO *b)
{
	struct in_bio *ib = BIO_get_data(b);

	if (ib) {
		free(ib->keep);
		free(ib);
		BIO_set_data(b, NULL);
	}
	return 1;
}

static BIO_METHOD *in_method;

int in_method_init(void)
{
	if (in_method)
		return 0;
	in_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "bastion-socket-in");
	if (!in_method || BIO_meth_set_read(in_method, in_read) != 1 ||
	    BIO_meth_set_ctrl(in_method, in_ctrl) != 1 ||
	    BIO_meth_set_destroy(in_method, in_destroy) != 1) {
		BIO_meth_free(in_method);
		in_method = NULL;
		return -ENOMEM;
	}
	return 0;
}

BIO *in_bio_new(void)
{
	struct in_bio *ib = calloc(1, sizeof(*ib));
	BIO *b = ib ? BIO_new(in_method) : NULL;

	if (!b) {
		free(ib);
		return NULL;
	}
	BIO_set_data(b, ib);
	BIO_set_init(b, 1);
	return b;
}

void in_bio_lend(BIO *b, const uint8_t *buf, size_t len)
{
	struct in_bio *ib = BIO_get_data(b);

	ib->ext = buf;
	ib->ext_len = len;
}

int in_bio_return(BIO *b)
{
	struct in_bio *ib = BIO_get_data(b);
	size_t left = ib->keep_len - ib->keep_off;
	uint8_t *p;

	if (ib->ext_len == 0) {
		ib->ext = NULL;
		return 0;
	}
	if (left + ib->ext_len > IN_KEEP_MAX) {
		ib->ext = NULL;
		ib->ext_len = 0;
		return -E2BIG;
	}
	/* The unread part moves to the front of a buffer just large enough. */
	p = malloc(left + ib->ext_len);
	if (!p) {
		ib->ext = NULL;
		ib->ext_len = 0;
		return -ENOMEM;
	}
	if (left)
		memcpy(p, ib->keep + ib->keep_off, left);
	memcpy(p + left, ib->ext, ib->ext_len);
	free(ib->keep);
	ib->keep = p;
	ib->keep_off = 0;
	ib->keep_len = left + ib->ext_len;
	ib->ext = NULL;
	ib->ext_len = 0;
	return 0;
}
