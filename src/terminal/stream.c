/* The native client's tunnel: a session whose far side is a plain TCP
 * connection to a VM's port instead of an SSH shell (docs/api.md "The
 * native client's stream"). It owns the dial (non-blocking, on the loop,
 * within the connect's dial timeout), the pump between the WebSocket and
 * the TCP socket, and half-close and reset passed on. Everything else — the
 * registry, the limits, GET and DELETE /sessions, the idle and duration
 * timers, the audit and store records — is the terminal's, shared through
 * struct sess with tunnel set.
 *
 * Back-pressure, both ways, as the terminal's pump does it:
 *   VM → client: when the bytes queued towards the client pass the
 *     server's high watermark (srv_ws_send_binary answers > 0), the TCP
 *     socket is no longer read; on_drain reads again. The VM's kernel
 *     window fills and it stops sending.
 *   client → VM: bytes the socket did not take at once wait in uv_write
 *     requests; past STREAM_HIGH_WATER the WebSocket is no longer read,
 *     below STREAM_LOW_WATER it is read again.
 * So a reader that stops reading costs at most those marks, never more.
 *
 * The TCP side (struct stream_tcp) is its own allocation: libuv may call
 * its connect and write callbacks after the session died (cancelled), so
 * it outlives the session until its handle is closed, and finds
 * tcp->s == NULL then. */
#include "terminal/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A frame with its 4-byte header fills one TLS record (16 KiB of
 * plaintext) exactly: 16 KiB of payload made two records, the second of 4
 * bytes, so two writes and twice the records for the CLI to read
 * (BENCHMARKS.md, "A/B: the pipes to ssh"). A read takes up to
 * STREAM_READ_FRAMES of them: one system call per 64 KiB from the VM. */
#define STREAM_FRAME_MAX   (16 * 1024 - SRV_WS_HEADROOM)
#define STREAM_READ_FRAMES 4
#define STREAM_READ_MAX    (STREAM_FRAME_MAX * STREAM_READ_FRAMES)
#define STREAM_HIGH_WATER  (256 * 1024)
#define STREAM_LOW_WATER   (64 * 1024)
/* Frames from the client gathered for one write to the VM (on_input_done):
 * a socket read's worth of 16 KiB frames (server/pump.c reads 64 KiB at a
 * time), and room for the small ones a client may send among them. */
#define STREAM_IOV 8

struct stream_tcp {
	uv_tcp_t h;
	uv_connect_t creq;
	uv_shutdown_t sreq;
	struct sess *s; /* NULL once the session let go */
	bool connected; /* the dial succeeded */
	bool reading;   /* uv_read_start is in force */
	bool eof_from_vm;
	bool eof_to_vm; /* the client said it sends no more */
	bool in_paused; /* the WebSocket is not read: writes are queued */
	size_t queued;  /* bytes in uv_write requests not yet done */
	/* The client's frames not yet written: they point into the
	 * connection's read buffer, valid until on_input_done. */
	uv_buf_t iov[STREAM_IOV];
	unsigned niov;
};

/* Where the VM's bytes are read to, the first frame's header before them:
 * one per loop thread, not one per tunnel (64 KiB each, idle or not),
 * since each read is framed and handed to TLS before the loop reads
 * again. Each further frame's header goes over the last bytes of the frame
 * before it, which TLS has encrypted by then. */
static _Thread_local uint8_t loop_rbuf[SRV_WS_HEADROOM + STREAM_READ_MAX];

struct stream_write {
	uv_write_t req;
	struct stream_tcp *t;
	size_t len;
	uint8_t data[];
};

static void tcp_closed(uv_handle_t *h)
{
	free(h->data);
}

void term_stream_kill(struct sess *s)
{
	struct stream_tcp *t = s->tcp;

	s->tcp = NULL;
	if (!t)
		return;
	t->niov = 0;      /* their buffer is not ours past this call */
	if (t->connected) /* counted in on_connect */
		metrics_tunnels_add(-1);
	t->s = NULL;
	if (!uv_is_closing((uv_handle_t *)&t->h))
		uv_close((uv_handle_t *)&t->h, tcp_closed);
}

static void send_control(struct sess *s, const char *type)
{
	term_send_control(s, json_pack("{s:s}", "type", type));
}

/* Both directions are shut: the stream has nothing left to carry. */
static void maybe_finished(struct sess *s)
{
	if (s->tcp && s->tcp->eof_from_vm && s->tcp->eof_to_vm && s->tcp->queued == 0)
		sess_end(s, "the connection ended (both sides closed it)");
}

/* ---------- VM → client ---------- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	/* Each read goes out as one frame before the next read: one buffer. */
	*buf = uv_buf_init((char *)loop_rbuf + SRV_WS_HEADROOM, STREAM_READ_MAX);
}

static void on_read(uv_stream_t *h, ssize_t n, const uv_buf_t *buf);

static void read_start(struct stream_tcp *t)
{
	if (!t->reading && !t->eof_from_vm &&
	    uv_read_start((uv_stream_t *)&t->h, on_alloc, on_read) == 0)
		t->reading = true;
}

static void read_stop(struct stream_tcp *t)
{
	if (t->reading)
		uv_read_stop((uv_stream_t *)&t->h);
	t->reading = false;
}

static void on_read(uv_stream_t *h, ssize_t n, const uv_buf_t *buf)
{
	struct stream_tcp *t = h->data;
	struct sess *s = t->s;
	char reason[160];
	int r;

	if (!s || n == 0)
		return;
	if (n == UV_EOF) {
		/* The VM shut its side: the client hears it, and may still send. */
		read_stop(t);
		t->eof_from_vm = true;
		send_control(s, "eof");
		maybe_finished(s);
		return;
	}
	if (n < 0) {
		snprintf(reason, sizeof(reason), "the connection to the VM failed: %s",
			 n == UV_ECONNRESET ? "reset by the VM" : uv_strerror((int)n));
		sess_end(s, reason);
		return;
	}
	if (!s->ws)
		return;
	atomic_store_explicit(&s->from_vm,
			      atomic_load_explicit(&s->from_vm, memory_order_relaxed) + (uint64_t)n,
			      memory_order_relaxed);
	metrics_tunnel_bytes(0, (uint64_t)n);
	sess_activity(s);
	for (size_t off = 0; off < (size_t)n; off += STREAM_FRAME_MAX) {
		size_t len =
			(size_t)n - off < STREAM_FRAME_MAX ? (size_t)n - off : STREAM_FRAME_MAX;

		r = srv_ws_send_binary(s->ws, (uint8_t *)buf->base + off, len);
		if (r < 0)
			return; /* the connection closed, and the session with it */
		if (r > 0 && !s->out_paused) {
			/* Over the high watermark: the VM waits until the
			 * client drains (this read's frames still go, at most
			 * STREAM_READ_MAX more). */
			s->out_paused = true;
			read_stop(t);
		}
	}
}

static void ws_on_drain(void *ud)
{
	struct sess *s = ud;

	if (s->out_paused && s->tcp) {
		s->out_paused = false;
		read_start(s->tcp);
	}
}

/* ---------- client → VM ---------- */

static void on_write(uv_write_t *req, int status)
{
	struct stream_write *w = req->data;
	struct stream_tcp *t = w->t;
	struct sess *s = t->s;
	char reason[160];

	t->queued -= w->len;
	free(w);
	if (!s)
		return;
	if (status < 0) {
		snprintf(reason, sizeof(reason), "the connection to the VM failed: %s",
			 uv_strerror(status));
		sess_end(s, reason);
		return;
	}
	if (t->in_paused && t->queued < STREAM_LOW_WATER && s->ws) {
		t->in_paused = false;
		srv_ws_pause_input(s->ws, false);
	}
	maybe_finished(s);
}

/* Writes the gathered frames: at once, one writev, as far as the socket
 * takes them; the rest (or all, while earlier writes wait) copied into one
 * write request. -1 when that ended the session (s is then not to be
 * touched), else 0. */
static int stream_flush(struct sess *s)
{
	struct stream_tcp *t = s->tcp;
	struct stream_write *w;
	size_t total = 0, skip, n = 0;
	unsigned niov;
	uv_buf_t b;
	int r;

	if (!t || t->niov == 0)
		return 0;
	niov = t->niov;
	t->niov = 0;
	for (unsigned i = 0; i < niov; i++)
		total += t->iov[i].len;
	if (t->queued == 0) {
		r = uv_try_write((uv_stream_t *)&t->h, t->iov, niov);
		if (r == UV_EAGAIN || r == UV_ENOSYS)
			r = 0;
		if (r < 0) {
			char reason[160];

			snprintf(reason, sizeof(reason), "the connection to the VM failed: %s",
				 uv_strerror(r));
			sess_end(s, reason);
			return -1;
		}
		n = (size_t)r;
		if (n == total)
			return 0;
	}
	/* The socket is full: the rest waits in a write request. */
	w = malloc(sizeof(*w) + total - n);
	if (!w) {
		sess_end(s, "out of memory");
		return -1;
	}
	w->t = t;
	w->len = 0;
	w->req.data = w;
	skip = n;
	for (unsigned i = 0; i < niov; i++) {
		size_t len = t->iov[i].len;

		if (skip >= len) {
			skip -= len;
			continue;
		}
		memcpy(w->data + w->len, t->iov[i].base + skip, len - skip);
		w->len += len - skip;
		skip = 0;
	}
	b = uv_buf_init((char *)w->data, (unsigned)w->len);
	if (uv_write(&w->req, (uv_stream_t *)&t->h, &b, 1, on_write) < 0) {
		free(w);
		sess_end(s, "the connection to the VM failed");
		return -1;
	}
	t->queued += w->len;
	if (t->queued > STREAM_HIGH_WATER && !t->in_paused && s->ws) {
		t->in_paused = true;
		srv_ws_pause_input(s->ws, true);
	}
	return 0;
}

static void ws_on_binary(void *ud, const uint8_t *buf, size_t len)
{
	struct sess *s = ud;
	struct stream_tcp *t = s->tcp;

	if (s->state != SESS_ATTACHED || !t || len == 0)
		return;
	if (t->eof_to_vm) {
		sess_end(s, "the client sent data after its eof");
		return;
	}
	sess_activity(s);
	atomic_store_explicit(&s->to_vm,
			      atomic_load_explicit(&s->to_vm, memory_order_relaxed) + len,
			      memory_order_relaxed);
	metrics_tunnel_bytes(len, 0);
	if (t->niov == STREAM_IOV && stream_flush(s) < 0)
		return;
	/* Written with the rest of this read's frames (ws_on_input_done). */
	t->iov[t->niov++] = uv_buf_init((char *)buf, (unsigned)len);
}

static void ws_on_input_done(void *ud)
{
	(void)stream_flush(ud);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	struct stream_tcp *t = req->data;

	if (t->s)
		maybe_finished(t->s);
}

static void ws_on_text(void *ud, const char *buf, size_t len)
{
	struct sess *s = ud;
	json_t *msg = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
	const char *type = json_string_value(json_object_get(msg, "type"));
	struct stream_tcp *t = s->tcp;

	/* The frames before this message go first. */
	if (stream_flush(s) < 0) {
		json_decref(msg);
		return;
	}
	t = s->tcp;
	if (type && strcmp(type, "eof") == 0 && t) {
		/* Half-close: the VM reads its end of file once every byte
		 * before it was written (uv_shutdown waits for the writes). */
		if (!t->eof_to_vm) {
			t->eof_to_vm = true;
			t->sreq.data = t;
			if (uv_shutdown(&t->sreq, (uv_stream_t *)&t->h, on_shutdown) < 0)
				maybe_finished(s);
		}
	} else if (type && strcmp(type, "ping") == 0) {
		json_t *id = json_object_get(msg, "id");

		term_send_control(s, json_pack("{s:s,s:O?}", "type", "pong", "id", id));
	} else {
		term_send_control(s, json_pack("{s:s,s:s}", "type", "error", "message",
					       "unknown control message: a stream knows eof and "
					       "ping"));
	}
	json_decref(msg);
}

static void ws_on_close(void *ud, const char *why)
{
	struct sess *s = ud;

	if (!s->ws)
		return; /* we closed it ourselves */
	/* What the client sent before it went is still the VM's. */
	if (stream_flush(s) < 0)
		return; /* that ended the session */
	s->ws = NULL;
	sess_end_audit(s, "the client disconnected");
	sess_kill(s, false);
}

static const struct srv_ws_cb stream_ws_cb = {
	.on_binary = ws_on_binary,
	.on_input_done = ws_on_input_done,
	.on_text = ws_on_text,
	.on_drain = ws_on_drain,
	.on_close = ws_on_close,
};

/* ---------- the dial ---------- */

static void dial_failed(struct sess *s, const char *msg)
{
	metrics_connect_latency((double)(uv_hrtime() - s->dial_start_ns) / 1e9);
	term_connect_audit(s, "VmUnreachable", msg);
	if (s->http)
		term_respond_error(s->http, 504, "VmUnreachable", msg);
	s->http = NULL;
	sess_kill(s, false);
}

static void on_dial_timeout(uv_timer_t *timer)
{
	struct sess *s = timer->data;
	char msg[200];

	if (s->state != SESS_DIALING)
		return;
	snprintf(msg, sizeof(msg), "no answer from %s within %d s", s->target,
		 TERM_STREAM_DIAL_TIMEOUT_MS / 1000);
	dial_failed(s, msg);
}

static void on_connect(uv_connect_t *req, int status)
{
	struct stream_tcp *t = req->data;
	struct sess *s = t->s;
	struct srv_conn *http;
	char msg[200];

	if (!s || s->state != SESS_DIALING)
		return; /* timed out or ended meanwhile */
	uv_timer_stop(&s->timer);
	if (status < 0) {
		snprintf(msg, sizeof(msg), "cannot reach %s: %s", s->target, uv_strerror(status));
		dial_failed(s, msg);
		return;
	}
	metrics_connect_latency((double)(uv_hrtime() - s->dial_start_ns) / 1e9);
	t->connected = true;
	uv_tcp_nodelay(&t->h, 1);
	http = s->http;
	s->http = NULL;
	pthread_mutex_lock(&term_g.lock);
	term_g.dialing--;
	s->started = store_now();
	sess_set_state_locked(s, SESS_ATTACHED);
	term_registry_add(s);
	pthread_mutex_unlock(&term_g.lock);
	metrics_tunnels_add(1);
	if (srv_ws_accept(http, TERM_STREAM_PROTOCOL, &stream_ws_cb, s) < 0) {
		/* The client left during the dial. */
		term_connect_audit(s, "Created", NULL);
		sess_record(s, NULL);
		sess_end_audit(s, "the client disconnected");
		sess_kill(s, false);
		return;
	}
	s->ws = http;
	s->started_ms = s->last_input_ms = uv_now(s->home->loop);
	term_connect_audit(s, "Created", NULL);
	sess_record(s, NULL);
	sess_arm(s);
	read_start(t);
}

static void start_stream(struct srv_conn *http, struct term_stream *ts)
{
	struct term_loop *l = term_here();
	struct sess *s = calloc(1, sizeof(*s));
	struct stream_tcp *t = calloc(1, sizeof(*t));
	struct sockaddr_storage ss;
	char msg[160];
	int64_t keepalive_s = 0;
	int r;

	if (!s || !t) {
		free(s);
		free(t);
		free(ts);
		term_respond_error(http, 503, "ServiceUnavailable", "out of memory");
		return;
	}
	s->home = l;
	s->state = SESS_DIALING;
	s->tunnel = true;
	s->user_id = ts->user_id;
	util_strlcpy(s->user, ts->user, sizeof(s->user));
	util_strlcpy(s->vm_id, ts->vm_id, sizeof(s->vm_id));
	util_strlcpy(s->bastion_id, ts->bastion_id, sizeof(s->bastion_id));
	util_strlcpy(s->auth_type, "none", sizeof(s->auth_type));
	util_strlcpy(s->source, ts->source, sizeof(s->source));
	snprintf(s->target, sizeof(s->target), strchr(ts->ip, ':') ? "[%s]:%u" : "%s:%u", ts->ip,
		 ts->port);
	if (strchr(ts->ip, ':'))
		r = uv_ip6_addr(ts->ip, ts->port, (struct sockaddr_in6 *)&ss);
	else
		r = uv_ip4_addr(ts->ip, ts->port, (struct sockaddr_in *)&ss);
	if (r < 0) {
		term_connect_audit(s, "VmUnreachable", "the NIC's address cannot be dialled");
		term_respond_error(http, 504, "VmUnreachable",
				   "the NIC's address cannot be dialled");
	}
	/* A tunnel has no SSH of its own: the keep-alive is not its. */
	if (r < 0 || !term_sess_admit(l, s, http, ts->end_gen, &keepalive_s)) {
		free(ts);
		free(s);
		free(t);
		return;
	}
	free(ts);
	uv_tcp_init(l->loop, &t->h);
	t->h.data = t;
	t->creq.data = t;
	t->s = s;
	s->tcp = t;
	r = uv_tcp_connect(&t->creq, &t->h, (const struct sockaddr *)&ss, on_connect);
	if (r < 0) {
		snprintf(msg, sizeof(msg), "cannot reach %s: %s", s->target, uv_strerror(r));
		dial_failed(s, msg);
		return;
	}
	uv_timer_start(&s->timer, on_dial_timeout, TERM_STREAM_DIAL_TIMEOUT_MS, 0);
}

void term_stream_next(struct srv_conn *c, bool client_gone, void *arg)
{
	if (client_gone) {
		free(arg);
		srv_release(c);
		return;
	}
	start_stream(c, arg);
}
