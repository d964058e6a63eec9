/* The read side of a connection: TLS records in, plaintext out to the HTTP
 * parser or to wslay, each byte once and in order, whatever the record
 * boundaries; and input back-pressure: no more is read while the consumer
 * is busy (a request with a worker, a paused terminal) or while the
 * connection's output is above its mark, so that a peer that sends without
 * reading cannot make the server queue answers without bound.
 *
 * The pump is not reentrant. Answering a request can end in
 * srv_respond_done, which asks for the next one (conn_pump) while the pump
 * that dispatched it is still on the stack: the nested call returns at
 * once and the running pump goes on with the bytes it holds. Plaintext
 * read from TLS goes into a per-thread buffer; what the consumer does not
 * take goes, in order, to the connection's stash, which is consumed before
 * anything new is read. */
#include "server/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "core/log.h"

#define READ_CHUNK  (16 * 1024) /* a TLS record's plaintext at most */
#define PUMP_ROUNDS 64          /* then the rest on the next loop turn */
/* A WebSocket's records are read several at a time before its frames are
 * handed on, so that a tunnel writes them to the VM with one writev (one
 * system call and one TCP segment instead of one per 16 KiB frame): as
 * much as `bastion proxy` writes at once. No more than the stash holds, so
 * that what a paused consumer leaves of it fits there. */
#define WS_GATHER SRV_MAX_IN

/* One loop per thread, so one read buffer per thread; in_use while a
 * consumer runs on bytes in it (a pump of another connection started from
 * inside that consumer waits for the next turn instead of overwriting). */
static _Thread_local struct {
	uint8_t buf[WS_GATHER];
	bool in_use;
} rd;

struct pump_test {
	const uint8_t *const *recs;
	const size_t *lens;
	size_t n, next, off, readable; /* records [next, readable) may be read */
	uint64_t async;
	size_t seen;
	void (*cb)(void *ud, const char *method, const char *path);
	void *ud;
	bool waiting; /* a request waits for its "worker" */
};

/* What the connection may have unanswered before it stops reading. */
static size_t input_stop(const struct srv_conn *c)
{
	return c->state == CONN_WS ? SRV_WS_INPUT_STOP : SRV_OUT_HIGH_WATER;
}

static size_t input_resume(const struct srv_conn *c)
{
	return c->state == CONN_WS ? SRV_WS_HIGH_WATER : SRV_OUT_LOW_WATER;
}

bool conn_can_consume(struct srv_conn *c)
{
	if (c->state == CONN_RELAY)
		return relay_can_take(c);
	if (c->state != CONN_HTTP && (c->state != CONN_WS || c->ws_paused))
		return false;
	if (!c->in_blocked && c->out_pending >= input_stop(c))
		c->in_blocked = true;
	return !c->in_blocked;
}

void conn_output_drained(struct srv_conn *c)
{
	if (c->state == CONN_RELAY) {
		relay_client_drained(c);
		return;
	}
	if (!c->in_blocked || c->out_pending >= input_resume(c))
		return;
	c->in_blocked = false;
	if (!conn_can_consume(c))
		return; /* busy or paused for another reason: that one resumes it */
	conn_read_resume(c);
	conn_pump(c);
}

static size_t consume(struct srv_conn *c, uint8_t *buf, size_t len)
{
	if (c->state == CONN_HTTP)
		return srv_http_consume(c, buf, len);
	if (c->state == CONN_WS && !c->ws_paused)
		return ws_consume(c, buf, len);
	if (c->state == CONN_RELAY)
		return relay_consume(c, buf, len);
	return 0;
}

/* Keeps what the consumer did not take until it can take more: past
 * SRV_MAX_IN (the stash's cap) -E2BIG, and the connection closes. */
static int stash_rest(struct srv_conn *c, const uint8_t *buf, size_t len)
{
	if (len == 0)
		return 0; /* the usual case: nothing allocated */
	return buf_append(&c->stash, buf, len);
}

/* One record's plaintext (or part of it) into rd at off: 1, 0 when
 * nothing is readable yet, -1 when the connection is finished. */
static int read_plain(struct srv_conn *c, size_t off, size_t *got)
{
	struct pump_test *t = c->test;

	*got = 0;
	if (t) {
		size_t left;

		while (t->next < t->readable && t->lens[t->next] == 0)
			t->next++; /* SSL_read never returns an empty record */
		if (t->next >= t->readable)
			return 0;
		left = t->lens[t->next] - t->off;
		*got = left < READ_CHUNK ? left : READ_CHUNK;
		memcpy(rd.buf + off, t->recs[t->next] + t->off, *got);
		t->off += *got;
		if (t->off == t->lens[t->next]) {
			t->next++;
			t->off = 0;
		}
		return 1;
	}
	if (SSL_read_ex(c->ssl, rd.buf + off, READ_CHUNK, got) == 1)
		return 1;
	if (SSL_get_error(c->ssl, 0) == SSL_ERROR_WANT_READ)
		return 0;
	ERR_clear_error();
	return -1;
}

/* A WebSocket's further whole records after the first, while they are in
 * hand (no read that would only find nothing) and fit: how many bytes. */
static size_t read_more(struct srv_conn *c, size_t have)
{
	size_t got;

	if (c->state != CONN_WS || c->test)
		return have;
	while (have + READ_CHUNK <= sizeof(rd.buf) &&
	       (SSL_pending(c->ssl) > 0 || BIO_ctrl_pending(c->rbio) > 0) &&
	       read_plain(c, have, &got) == 1)
		have += got;
	return have;
}

/* Feeds the consumer until it cannot take more or nothing is readable.
 * False when it stopped for the round limit with more to do. */
static bool pump_rounds(struct srv_conn *c)
{
	for (int round = 0; round < PUMP_ROUNDS; round++) {
		size_t got, n;
		int r;

		if (!conn_can_consume(c))
			return true;
		if (buf_len(&c->stash)) {
			size_t len;
			uint8_t *s = (uint8_t *)buf_take(&c->stash, &len);

			if (!s) {
				conn_close(c);
				return true;
			}
			n = consume(c, s, len);
			r = c->state == CONN_CLOSING ? 0 : stash_rest(c, s + n, len - n);
			free(s);
			if (r < 0) {
				conn_close(c);
				return true;
			}
			if (n > 0 || !conn_can_consume(c))
				continue;
			/* It took nothing and can take more: it needs the bytes
			 * that follow, after these. */
			if ((r = read_plain(c, 0, &got)) <= 0) {
				if (r < 0)
					conn_close(c);
				return true;
			}
			if (stash_rest(c, rd.buf, got) < 0) {
				conn_close(c);
				return true;
			}
			continue;
		}
		if ((r = read_plain(c, 0, &got)) <= 0) {
			if (r < 0)
				conn_close(c);
			return true;
		}
		got = read_more(c, got);
		rd.in_use = true;
		n = consume(c, rd.buf, got);
		rd.in_use = false;
		if (c->state != CONN_CLOSING && stash_rest(c, rd.buf + n, got - n) < 0) {
			conn_close(c);
			return true;
		}
	}
	return !conn_can_consume(c);
}

void conn_pump(struct srv_conn *c)
{
	bool done;

	if (c->pumping)
		return; /* the pump on the stack goes on with what changed */
	if (rd.in_use) {
		conn_pump_later(c);
		return;
	}
	if (c->state == CONN_TLS) {
		int r = SSL_do_handshake(c->ssl);

		if (r != 1) {
			int e = SSL_get_error(c->ssl, r);

			conn_flush(c);
			if (e != SSL_ERROR_WANT_READ) {
				ERR_clear_error();
				conn_close(c);
			}
			return;
		}
		c->state = CONN_HTTP;
	}
	c->pumping = true;
	done = pump_rounds(c);
	c->pumping = false;
	if (c->state == CONN_CLOSING || c->test)
		return;
	if (!done)
		conn_pump_later(c); /* one connection does not hold the loop */
	else if (!conn_can_consume(c) && c->state != CONN_MOVING)
		conn_read_pause(c); /* the socket's buffers, not ours, hold the rest */
	conn_flush(c);
}

void conn_pump_timer(uv_timer_t *t)
{
	struct srv_conn *c = t->data;

	conn_pump(c);
	/* The pump took the timer: a request still coming gets its deadline back. */
	if (c->state == CONN_HTTP && !uv_is_active((uv_handle_t *)&c->timer))
		uv_timer_start(&c->timer, conn_close_timer, SRV_HEADER_TIMEOUT_MS, 0);
}

void conn_pump_later(struct srv_conn *c)
{
	if (c->state != CONN_CLOSING && !c->test)
		uv_timer_start(&c->timer, conn_pump_timer, 0, 0);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	static _Thread_local char rbuf[64 * 1024]; /* per loop thread */

	buf->base = rbuf;
	buf->len = sizeof(rbuf);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct srv_conn *c = stream->data;

	if (nread < 0) {
		conn_close(c);
		return;
	}
	if (nread == 0)
		return;
	if (c->state == CONN_WS)
		c->ws_heard = true;
	/* Read in place; what the pump leaves is kept by the BIO. */
	in_bio_lend(c->rbio, (const uint8_t *)buf->base, (size_t)nread);
	conn_pump(c);
	if (in_bio_return(c->rbio) < 0)
		conn_close(c);
}

void conn_read_pause(struct srv_conn *c)
{
	if (c->state != CONN_CLOSING && !c->test)
		uv_read_stop((uv_stream_t *)&c->tcp);
}

void conn_read_resume(struct srv_conn *c)
{
	if (c->state != CONN_CLOSING && !c->test)
		uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* ---------- test seam ---------- */

void pump_test_dispatch(struct srv_conn *c)
{
	struct pump_test *t = c->test;
	bool later = (t->async >> (t->seen % 64)) & 1;

	c->state = CONN_BUSY;
	c->keep_alive = !c->parse_error && http_should_keep_alive(&c->parser) && !c->parser.upgrade;
	t->cb(t->ud, c->parse_error ? "!" : http_method_str((enum http_method)c->parser.method),
	      c->parse_error ? "" : buf_str(&c->hbuf));
	t->seen++;
	if (later)
		t->waiting = true;
	else
		srv_respond_done(c); /* from inside the pump, as a static file is */
}

int srv_pipeline_for_test(const uint8_t *const *recs, const size_t *lens, size_t n,
			  const size_t *arrive, size_t n_arrive, uint64_t async,
			  void (*seen)(void *ud, const char *method, const char *path), void *ud)
{
	struct pump_test t = {
		.recs = recs, .lens = lens, .n = n, .async = async, .cb = seen, .ud = ud
	};
	struct srv_conn *c = calloc(1, sizeof(*c));
	uv_loop_t loop;
	int r = 0;

	if (!c)
		return -ENOMEM;
	if ((r = uv_loop_init(&loop)) < 0) {
		free(c);
		return r;
	}
	/* A timer the pump may arm; it is never run. */
	uv_timer_init(&loop, &c->timer);
	c->timer.data = c;
	c->test = &t;
	c->state = CONN_HTTP;
	conn_bufs_init(c);
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	conn_reset_request(c);
	for (size_t i = 0; i < n_arrive && t.readable < n; i++) {
		t.readable += arrive[i] < n - t.readable ? arrive[i] : n - t.readable;
		/* Bounded: every round answers a request or reads a record. */
		for (size_t guard = 0; guard < 4 * (n + 1) + 64 * 1024; guard++) {
			conn_pump(c);
			if (t.waiting && c->state == CONN_BUSY) {
				/* Its worker is done: the answer, then the next. */
				t.waiting = false;
				srv_respond_done(c);
				continue;
			}
			if (c->state == CONN_HTTP && (buf_len(&c->stash) || t.next < t.readable))
				continue; /* the pump yielded its turn */
			break;
		}
		if (c->state != CONN_HTTP)
			break; /* the connection ends after this answer */
	}
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->timer, NULL);
	uv_run(&loop, UV_RUN_NOWAIT);
	uv_loop_close(&loop);
	conn_reset_request(c);
	buf_free(&c->stash);
	buf_free(&c->hbuf);
	free(c);
	return (int)t.seen;
}
