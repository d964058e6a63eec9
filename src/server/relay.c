/* The relay (issue 15, item 3): a client's connection joined to a new TLS
 * connection to another instance — the one holding the session the request
 * is for — so that no load balancer needs affinity. A non-blocking TCP
 * connect on the client's loop, a TLS client over memory BIOs whose peer
 * is checked against a pinned certificate SHA-256 (not a CA: instances
 * commonly run self-signed certificates, and the store says which one each
 * has), the request written as it was received, then bytes copied both
 * ways with the server's output marks as back-pressure: while one side's
 * queue is over SRV_OUT_HIGH_WATER, the other side is not read. Either
 * side's end or error closes both. It knows nothing of the API: what to
 * relay where is the application's decision (srv_relay). */
#include "server/internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/metrics.h"

#define RELAY_READ_CHUNK (16 * 1024)
#define RELAY_FP_LEN     32 /* SHA-256 */
/* The request as sent on: the header block, the lines the relay adds, and
 * the body. */
#define RELAY_MAX_REQUEST (SRV_MAX_HEADER_BYTES + SRV_MAX_BODY + 1024)

struct srv_relay {
	struct srv_conn *c; /* NULL once the client side is done with it */
	uv_tcp_t tcp;
	uv_connect_t creq;
	uv_timer_t timer;
	int handles_open;
	bool closing;
	bool joined;         /* the request went on: bytes flow both ways */
	bool up_reading;     /* the other instance's socket is being read */
	bool client_blocked; /* the client waits for the other side to drain */
	SSL *ssl;
	BIO *rbio, *wbio; /* memory BIOs under ssl */
	uint8_t fp[RELAY_FP_LEN];
	size_t up_pending;   /* bytes handed to libuv towards the other instance */
	struct buf request;  /* the request to send on (a body may be a secret) */
	char to[64];         /* for the log */
	uint8_t rbuf[65536]; /* the other instance's socket reads into this */
};

struct up_write {
	uv_write_t req;
	struct srv_relay *r;
	size_t len;
	uint8_t data[];
};

static SSL_CTX *client_ctx;
static pthread_once_t client_ctx_once = PTHREAD_ONCE_INIT;

/* One client context for every loop: TLS 1.2+, and no CA check — the
 * peer's certificate is compared with the pinned SHA-256 after the
 * handshake, which is stronger than any CA for a peer known in advance. */
static void client_ctx_init(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx)
		return;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	client_ctx = ctx;
}

static int hex_nibble(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static int parse_fp(const char *hex, uint8_t fp[RELAY_FP_LEN])
{
	if (!hex || strlen(hex) != 2 * RELAY_FP_LEN)
		return -EINVAL;
	for (size_t i = 0; i < RELAY_FP_LEN; i++) {
		int hi = hex_nibble(hex[2 * i]), lo = hex_nibble(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		fp[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* Headers that the relay writes itself, or that describe the framing of
 * a body it sends with a Content-Length of its own. */
static bool header_replaced(const char *name)
{
	return strcasecmp(name, "content-length") == 0 ||
	       strcasecmp(name, "transfer-encoding") == 0 || strcasecmp(name, "connection") == 0 ||
	       strcasecmp(name, "x-bastion-relayed") == 0 || strcasecmp(name, "expect") == 0;
}

/* The request as received, from what the parser kept: the request line,
 * every header (hbuf holds the target, then each name and value, all
 * NUL-terminated), X-Bastion-Relayed so that the other side does not relay
 * it again, Connection, the body with its length. The target is sent as
 * its path and query: the parser split it in place. */
int relay_request_bytes(const struct srv_conn *c, struct buf *out)
{
	const char *hb = buf_str(&c->hbuf);
	size_t len = buf_len(&c->hbuf), off = c->url_len + 1;
	bool upgrade = c->req.websocket;
	int e = 0;

	e = e
		    ?: buf_printf(out, "%s %s%s%s HTTP/1.1\r\n", c->req.method, c->req.path,
				  c->req.query ? "?" : "", c->req.query ? c->req.query : "");
	while (!e && off < len) {
		const char *name = hb + off;
		size_t nlen = strlen(name);
		const char *value = name + nlen + 1;

		if (value >= hb + len)
			break;
		off = (size_t)(value - hb) + strlen(value) + 1;
		if (header_replaced(name))
			continue;
		e = buf_printf(out, "%s: %s\r\n", name, value);
	}
	e = e ?: buf_append_str(out, "X-Bastion-Relayed: 1\r\n");
	e = e ?: buf_append_str(out, upgrade ? "Connection: Upgrade\r\n" : "Connection: close\r\n");
	if (c->req.body_len ||
	    (strcmp(c->req.method, "GET") != 0 && strcmp(c->req.method, "HEAD") != 0))
		e = e ?: buf_printf(out, "Content-Length: %zu\r\n", c->req.body_len);
	e = e ?: buf_append_str(out, "\r\n");
	if (c->req.body_len)
		e = e ?: buf_append(out, c->req.body, c->req.body_len);
	return e;
}

static int ssl_write_all(SSL *ssl, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		size_t n = 0;

		if (SSL_write_ex(ssl, (const char *)buf + done, len - done, &n) != 1) {
			ERR_clear_error();
			return -EIO;
		}
		done += n;
	}
	return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
	struct srv_relay *r = h->data;

	if (--r->handles_open > 0)
		return;
	SSL_free(r->ssl); /* both BIOs with it */
	buf_free(&r->request);
	free(r);
}

/* Closes the other side; the client is no longer r's (r->c NULL). */
static void relay_close(struct srv_relay *r)
{
	if (r->closing)
		return;
	r->closing = true;
	uv_timer_stop(&r->timer);
	uv_close((uv_handle_t *)&r->tcp, on_handle_closed);
	uv_close((uv_handle_t *)&r->timer, on_handle_closed);
}

/* Before the join: the client hears why nothing was relayed. */
static void relay_fail(struct srv_relay *r, const char *why, const char *message)
{
	struct srv_conn *c = r->c;

	log_warn("relay to %s: %s", r->to, why);
	metrics_relay_connection(false);
	if (c) {
		r->c = NULL;
		c->relay = NULL;
		srv_error(c, 502, "InstanceUnreachable", message);
	}
	relay_close(r);
}

static void relay_fail_unreachable(struct srv_relay *r, const char *why)
{
	relay_fail(r, why, "the instance holding this session cannot be reached; try again");
}

/* The other side ended (or failed) after the join: the client gets what
 * it was sent, then closes. */
static void relay_end(struct srv_relay *r)
{
	struct srv_conn *c = r->c;

	if (c) {
		r->c = NULL;
		c->relay = NULL;
		c->keep_alive = false;
		c->close_after_write = true;
		conn_flush(c);
	}
	relay_close(r);
}

static void on_up_write(uv_write_t *req, int status)
{
	struct up_write *w = (struct up_write *)req;
	struct srv_relay *r = w->r;
	struct srv_conn *c = r->c;

	r->up_pending -= w->len;
	free(w);
	if (r->closing)
		return;
	if (status < 0) {
		if (r->joined)
			relay_end(r);
		else
			relay_fail_unreachable(r, uv_strerror(status));
		return;
	}
	if (c && r->client_blocked && r->up_pending < SRV_OUT_LOW_WATER) {
		r->client_blocked = false;
		conn_read_resume(c);
		conn_pump(c);
	}
}

/* What TLS produced for the other instance goes to its socket. */
static int flush_up(struct srv_relay *r)
{
	size_t n;

	while ((n = BIO_ctrl_pending(r->wbio)) > 0) {
		struct up_write *w = malloc(sizeof(*w) + n);
		uv_buf_t b;

		if (!w)
			return -ENOMEM;
		w->r = r;
		w->len = (size_t)BIO_read(r->wbio, w->data, (int)n);
		b = uv_buf_init((char *)w->data, (unsigned)w->len);
		r->up_pending += w->len;
		if (uv_write(&w->req, (uv_stream_t *)&r->tcp, &b, 1, on_up_write) < 0) {
			r->up_pending -= w->len;
			free(w);
			return -EIO;
		}
	}
	return 0;
}

static void on_up_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct srv_relay *r = h->data;

	(void)suggested;
	buf->base = (char *)r->rbuf;
	buf->len = sizeof(r->rbuf);
}

static void on_up_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void up_read(struct srv_relay *r, bool on)
{
	if (r->closing || r->up_reading == on)
		return;
	r->up_reading = on;
	if (on)
		uv_read_start((uv_stream_t *)&r->tcp, on_up_alloc, on_up_read);
	else
		uv_read_stop((uv_stream_t *)&r->tcp);
}

/* The other instance's plaintext to the client, while the client's output
 * is below its mark; above it, the other socket is not read (its kernel
 * buffers, then its sender, hold the rest). */
static void relay_down(struct srv_relay *r)
{
	struct srv_conn *c = r->c;
	uint8_t b[RELAY_READ_CHUNK];

	while (c && !r->closing && c->out_pending < SRV_OUT_HIGH_WATER) {
		size_t got = 0;

		if (SSL_read_ex(r->ssl, b, sizeof(b), &got) != 1) {
			int e = SSL_get_error(r->ssl, 0);

			ERR_clear_error();
			if (e == SSL_ERROR_WANT_READ)
				break;
			relay_end(r); /* a close_notify, or an error */
			return;
		}
		metrics_relay_bytes(0, got);
		if (conn_ssl_write(c, b, got) < 0) {
			conn_close(c); /* and so the other side (relay_client_closed) */
			return;
		}
	}
	if (r->closing || !r->c)
		return;
	flush_up(r); /* TLS may answer something of its own (a key update) */
	up_read(r, c->out_pending < SRV_OUT_HIGH_WATER);
}

/* Connected and verified: the request goes on, and the client's
 * connection becomes a relay. */
static void relay_join(struct srv_relay *r)
{
	struct srv_conn *c = r->c;

	uv_timer_stop(&r->timer);
	if (srv_conn_gone(c)) {
		r->c = NULL;
		c->relay = NULL;
		srv_release(c);
		relay_close(r);
		return;
	}
	if (ssl_write_all(r->ssl, buf_str(&r->request), buf_len(&r->request)) < 0 ||
	    flush_up(r) < 0) {
		relay_fail_unreachable(r, "cannot send the request");
		return;
	}
	metrics_relay_bytes(buf_len(&r->request), 0);
	buf_reset(&r->request); /* wiped: a body may be answers to a VM */
	metrics_relay_connection(true);
	r->joined = true;
	c->busy_app = false;
	c->state = CONN_RELAY;
	c->in_blocked = false;
	uv_timer_stop(&c->timer);
	/* Bytes the client sent after the request (kept in its stash, or
	 * still in its TLS buffers) follow it, in order. */
	conn_read_resume(c);
	conn_pump_later(c);
	relay_down(r);
}

/* The handshake's next step; at its end, the pin. */
static void relay_handshake(struct srv_relay *r)
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	X509 *peer;
	int ok = SSL_do_handshake(r->ssl);

	if (ok != 1) {
		int e = SSL_get_error(r->ssl, ok);

		ERR_clear_error();
		if (e == SSL_ERROR_WANT_READ) {
			if (flush_up(r) < 0)
				relay_fail_unreachable(r, "cannot write the handshake");
			return;
		}
		relay_fail_unreachable(r, "the TLS handshake failed");
		return;
	}
	flush_up(r);
	peer = SSL_get1_peer_certificate(r->ssl);
	ok = peer && X509_digest(peer, EVP_sha256(), md, &mdlen) == 1 && mdlen == RELAY_FP_LEN &&
	     CRYPTO_memcmp(md, r->fp, RELAY_FP_LEN) == 0;
	X509_free(peer);
	if (!ok) {
		/* Someone else answers at that address: nothing is sent to it. */
		relay_fail(r, "its certificate is not the one recorded in the store: refused",
			   "the instance holding this session did not present its recorded "
			   "certificate");
		return;
	}
	relay_join(r);
}

static void on_up_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct srv_relay *r = s->data;

	if (r->closing)
		return;
	if (nread < 0) {
		if (r->joined)
			relay_end(r);
		else
			relay_fail_unreachable(r, "the connection closed during the handshake");
		return;
	}
	if (nread == 0)
		return;
	if (BIO_write(r->rbio, buf->base, (int)nread) != (int)nread) {
		if (r->joined)
			relay_end(r);
		else
			relay_fail_unreachable(r, "out of memory");
		return;
	}
	if (!r->joined)
		relay_handshake(r);
	else
		relay_down(r);
}

static void on_connect(uv_connect_t *req, int status)
{
	struct srv_relay *r = req->data;

	if (r->closing)
		return;
	if (status < 0) {
		relay_fail_unreachable(r, uv_strerror(status));
		return;
	}
	uv_tcp_nodelay(&r->tcp, 1);
	up_read(r, true);
	relay_handshake(r);
}

static void on_timeout(uv_timer_t *t)
{
	struct srv_relay *r = t->data;

	if (!r->joined)
		relay_fail_unreachable(r, "no verified connection within the time allowed");
}

void srv_relay(struct srv_conn *c, const char *to, const char *cert_sha256)
{
	struct srv_relay *r = calloc(1, sizeof(*r));
	struct sockaddr_storage ss;
	int e;

	if (!r) {
		srv_error(c, 503, "ServiceUnavailable", "out of memory");
		return;
	}
	buf_init_secret(&r->request, RELAY_MAX_REQUEST);
	snprintf(r->to, sizeof(r->to), "%s", to);
	pthread_once(&client_ctx_once, client_ctx_init);
	if (srv_parse_listen(to, &ss) < 0 || parse_fp(cert_sha256, r->fp) < 0 || !client_ctx ||
	    relay_request_bytes(c, &r->request) < 0 || !(r->ssl = SSL_new(client_ctx)) ||
	    !(r->rbio = BIO_new(BIO_s_mem())) || !(r->wbio = BIO_new(BIO_s_mem()))) {
		log_error("relay to %s: the instance's address or fingerprint is unusable, or the "
			  "request too large",
			  r->to);
		BIO_free(r->rbio);
		BIO_free(r->wbio);
		SSL_free(r->ssl);
		buf_free(&r->request);
		free(r);
		metrics_relay_connection(false);
		srv_error(c, 502, "InstanceUnreachable",
			  "the instance holding this session cannot be reached");
		return;
	}
	BIO_set_mem_eof_return(r->rbio, -1);
	SSL_set_bio(r->ssl, r->rbio, r->wbio);
	SSL_set_connect_state(r->ssl);
	r->c = c;
	c->relay = r;
	uv_tcp_init(srv_conn_loop(c), &r->tcp);
	uv_timer_init(srv_conn_loop(c), &r->timer);
	r->tcp.data = r->timer.data = r->creq.data = r;
	r->handles_open = 2;
	uv_timer_start(&r->timer, on_timeout, SRV_RELAY_TIMEOUT_MS, 0);
	if ((e = uv_tcp_connect(&r->creq, &r->tcp, (struct sockaddr *)&ss, on_connect)) < 0)
		relay_fail_unreachable(r, uv_strerror(e));
}

/* ---------- the client's side (pump.c, conn.c) ---------- */

bool relay_can_take(const struct srv_conn *c)
{
	struct srv_relay *r = c->relay;

	if (!r || r->closing)
		return false;
	if (r->up_pending >= SRV_OUT_HIGH_WATER) {
		r->client_blocked = true;
		return false;
	}
	return true;
}

size_t relay_consume(struct srv_conn *c, const uint8_t *buf, size_t len)
{
	struct srv_relay *r = c->relay;

	if (!relay_can_take(c))
		return 0;
	if (ssl_write_all(r->ssl, buf, len) < 0 || flush_up(r) < 0) {
		relay_end(r);
		return len;
	}
	metrics_relay_bytes(len, 0);
	return len;
}

void relay_client_drained(struct srv_conn *c)
{
	struct srv_relay *r = c->relay;

	if (r && c->out_pending < SRV_OUT_LOW_WATER)
		relay_down(r);
}

void relay_client_closed(struct srv_conn *c)
{
	struct srv_relay *r = c->relay;

	if (!r)
		return;
	r->c = NULL;
	c->relay = NULL;
	relay_close(r);
}
