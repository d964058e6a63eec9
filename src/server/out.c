/* The write side of a connection: the BIO under SSL_write that hands TLS
 * records to the socket, the queue of what the kernel did not take at once
 * (out_pending, which every back-pressure rule reads), and response bodies
 * sent by reference (the embedded assets), which are encrypted piece by
 * piece as the socket drains instead of being queued whole. */
#include "server/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>

struct wreq {
	uv_write_t req;
	struct srv_conn *conn;
	size_t len;
	char data[];
};

static void on_write(uv_write_t *req, int status)
{
	struct wreq *w = (struct wreq *)req;
	struct srv_conn *c = w->conn;

	c->out_pending -= w->len;
	free(w);
	if (status < 0) {
		conn_close(c);
		if (c->move_to) {
			/* It was waiting for this write to move: it goes nowhere now. */
			c->move_to = 0;
			close(c->move_fd);
			conn_move_done(c, true);
		}
		return;
	}
	if (c->move_to && c->out_pending == 0) {
		conn_start_move(c);
		return;
	}
	if (c->state == CONN_CLOSING)
		return;
	/* The socket drains, so the browser reads: it is alive even while
	 * its own frames wait unread (ws_ping_tick). */
	if (c->state == CONN_WS)
		c->ws_heard = true;
	if (c->ref_len) {
		if (c->out_pending < SRV_OUT_LOW_WATER)
			out_ref_continue(c);
		return;
	}
	if (c->out_pending == 0 && c->close_after_write) {
		conn_close(c);
		return;
	}
	/* Input that waited for the output first (keystrokes come before the
	 * VM's next output), then the terminal's own cue. */
	conn_output_drained(c);
	if (c->state == CONN_WS)
		ws_after_write(c);
}

/* The BIO under SSL_write: TLS records go straight to the socket, and
 * only what the kernel does not take at once is copied, into a queued
 * write. A memory BIO cost two copies of every record (in, and out again
 * to the socket) and kept its buffer on idle connections. A hard error is
 * noted and the connection closed by conn_flush, outside OpenSSL. */
static int out_write(BIO *b, const char *data, int len)
{
	struct srv_conn *c = BIO_get_data(b);
	struct wreq *w;
	uv_buf_t buf;
	int n = 0;

	BIO_clear_retry_flags(b);
	if (len <= 0 || c->state == CONN_CLOSING)
		return len > 0 ? len : 0; /* nobody left to send it to */
	if (c->out_error)
		return -1;
	if (c->out_pending == 0) {
		buf = uv_buf_init((char *)data, (unsigned)len);
		n = uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
		if (n == len)
			return len;
		if (n < 0 && n != UV_EAGAIN)
			goto fail;
		if (n < 0)
			n = 0;
	}
	w = malloc(sizeof(*w) + (size_t)(len - n));
	if (!w)
		goto fail;
	w->conn = c;
	w->len = (size_t)(len - n);
	memcpy(w->data, data + n, w->len);
	buf = uv_buf_init(w->data, (unsigned)w->len);
	c->out_pending += w->len;
	if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_write) < 0) {
		c->out_pending -= w->len;
		free(w);
		goto fail;
	}
	return len;
fail:
	c->out_error = true;
	return -1;
}

static long out_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b, (void)num, (void)ptr;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0; /* nothing is ever pending here */
}

static BIO_METHOD *out_method;

int out_method_init(void)
{
	if (out_method)
		return 0;
	out_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "bastion-socket");
	if (!out_method || BIO_meth_set_write(out_method, out_write) != 1 ||
	    BIO_meth_set_ctrl(out_method, out_ctrl) != 1) {
		BIO_meth_free(out_method);
		out_method = NULL;
		return -ENOMEM;
	}
	return 0;
}

BIO *out_bio_new(struct srv_conn *c)
{
	BIO *b = BIO_new(out_method);

	if (b) {
		BIO_set_data(b, c);
		BIO_set_init(b, 1);
	}
	return b;
}

void conn_flush(struct srv_conn *c)
{
	if (c->state == CONN_CLOSING)
		return;
	if (c->out_error || (c->out_pending == 0 && c->ref_len == 0 && c->close_after_write))
		conn_close(c);
}

int conn_ssl_write(struct srv_conn *c, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		size_t n = 0;

		if (SSL_write_ex(c->ssl, (const char *)buf + done, len - done, &n) != 1) {
			ERR_clear_error();
			return -EIO;
		}
		done += n;
	}
	return 0;
}

/* A client that stopped reading in the middle of a body: nothing else
 * would ever end the connection. */
static void on_ref_stalled(uv_timer_t *t)
{
	struct srv_conn *c = t->data;

	if (c->ref_len)
		conn_close(c);
}

void out_ref_continue(struct srv_conn *c)
{
	while (c->ref_len && c->out_pending < SRV_OUT_HIGH_WATER && c->state != CONN_CLOSING) {
		size_t n = c->ref_len < SRV_REF_CHUNK ? c->ref_len : SRV_REF_CHUNK;

		if (conn_ssl_write(c, c->ref_data, n) < 0) {
			c->ref_len = 0;
			conn_close(c);
			return;
		}
		c->ref_data += n;
		c->ref_len -= n;
	}
	if (c->state == CONN_CLOSING) {
		c->ref_len = 0;
		return;
	}
	if (c->ref_len) {
		/* Restarted at every piece: the client has this long to take
		 * the next 192 KiB. */
		uv_timer_start(&c->timer, on_ref_stalled, SRV_IDLE_TIMEOUT_MS, 0);
		return;
	}
	c->ref_data = NULL;
	conn_flush(c);
	srv_respond_done(c);
}
