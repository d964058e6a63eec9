/* WebSocket on top of a TLS connection: frames from the browser are read
 * by wsframe.c, frames to it are written by wslay (pings, text, the close)
 * or by hand (srv_ws_send_binary). */
#include "server/internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "core/log.h"

/* Replies wslay queued (pongs, the close) beyond which no more frames are
 * read until they are sent: each frame read may queue one, and wslay's
 * queue has no bound of its own. */
#define WS_MAX_QUEUED 64

/* wslay hands over a frame's header and payload in separate calls; they
 * are gathered here so that a frame becomes one TLS record and one write,
 * not two. One loop per thread, so one buffer per thread. */
static _Thread_local struct {
	uint8_t buf[16 * 1024 + 16];
	size_t len;
} acc;

static int acc_flush(struct srv_conn *c)
{
	int r = 0;

	if (acc.len)
		r = conn_ssl_write(c, acc.buf, acc.len);
	acc.len = 0;
	return r;
}

static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
			  void *ud)
{
	struct srv_conn *c = ud;
	int r = 0;

	/* TLS into a memory BIO never blocks; back-pressure is applied above
	 * (srv_ws_outbound) before anything is queued. */
	if (acc.len + len > sizeof(acc.buf))
		r = acc_flush(c);
	if (r == 0 && len > sizeof(acc.buf)) {
		r = conn_ssl_write(c, data, len);
	} else if (r == 0) {
		memcpy(acc.buf + acc.len, data, len);
		acc.len += len;
	}
	if (r < 0) {
		acc.len = 0;
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return (ssize_t)len;
}

static const struct wslay_event_callbacks ws_callbacks = {
	/* Frames are read by wsframe.c; wslay only sends. */
	.send_callback = ws_send_cb,
};

/* Sends what wslay queued, then closes the TCP connection once the close
 * handshake is over or wslay gave up. */
static void ws_settle(struct srv_conn *c)
{
	if (c->state != CONN_WS)
		return;
	if (wslay_event_send(c->ws) != 0 || acc_flush(c) < 0) {
		acc.len = 0;
		conn_close(c);
		return;
	}
	conn_flush(c);
	if (c->state == CONN_WS && !wslay_event_want_read(c->ws) &&
	    !wslay_event_want_write(c->ws)) {
		if (c->out_pending == 0)
			conn_close(c);
		else
			c->close_after_write = true;
	}
}

/* Whether another frame may be read now. Pausing inside a message
 * callback takes effect at once: the rest waits in the stash, and the
 * browser's TCP window fills. So does output over its mark: the answers a
 * peer provokes (pongs, errors to bad control messages) count against it,
 * and a peer that sends without reading stops being read (issue 13). */
static bool ws_may_read(struct srv_conn *c)
{
	return c->state == CONN_WS && !c->ws_paused && c->out_pending < SRV_WS_INPUT_STOP &&
	       wslay_event_get_queued_msg_count(c->ws) < WS_MAX_QUEUED;
}

static void ws_event(struct srv_conn *c, const struct wsr_event *ev)
{
	switch (ev->type) {
	case WSR_TEXT:
		if (c->ws_cb && !c->ws_close_notified)
			c->ws_cb->on_text(c->ws_ud, (const char *)ev->data, ev->len);
		break;
	case WSR_BINARY:
		if (c->ws_cb && !c->ws_close_notified)
			c->ws_cb->on_binary(c->ws_ud, ev->data, ev->len);
		break;
	case WSR_PING: {
		struct wslay_event_msg pong = { .opcode = WSLAY_PONG,
						.msg = ev->data,
						.msg_length = ev->len };

		/* Refused only once our close is queued: then no pong is due. */
		(void)wslay_event_queue_msg(c->ws, &pong);
		break;
	}
	case WSR_CLOSE:
		/* Echo the code and reason (§5.5.1); already closing, nothing. */
		(void)wslay_event_queue_close(c->ws, ev->code, ev->data, ev->len);
		wslay_event_shutdown_read(c->ws);
		break;
	case WSR_ERROR:
		log_debug("ws: protocol error from %s (closing with %u)", c->remote, ev->code);
		(void)wslay_event_queue_close(c->ws, ev->code, NULL, 0);
		wslay_event_shutdown_read(c->ws);
		break;
	case WSR_PONG:
	case WSR_NONE:
		break;
	}
}

static void ws_input_done(struct srv_conn *c)
{
	if (c->ws_cb && c->ws_cb->on_input_done && !c->ws_close_notified)
		c->ws_cb->on_input_done(c->ws_ud);
}

size_t ws_consume(struct srv_conn *c, uint8_t *buf, size_t len)
{
	size_t used = 0;

	while (used < len && ws_may_read(c)) {
		struct wsr_event ev;

		used += wsr_read(&c->wsr, buf + used, len - used, &ev);
		ws_event(c, &ev);
		/* A message gathered in the reader's own buffer is freed now:
		 * its consumer is done with it first. */
		if (ev.type == WSR_BINARY && ((uintptr_t)ev.data < (uintptr_t)buf ||
					      (uintptr_t)ev.data >= (uintptr_t)(buf + len)))
			ws_input_done(c);
		wsr_release(&c->wsr);
	}
	/* buf is the caller's until we return. */
	ws_input_done(c);
	ws_settle(c); /* after a move or a close, nothing */
	return used;
}

void ws_after_write(struct srv_conn *c)
{
	if (c->ws_above_high && c->out_pending < SRV_WS_LOW_WATER) {
		c->ws_above_high = false;
		if (c->ws_cb && !c->ws_close_notified)
			c->ws_cb->on_drain(c->ws_ud);
	}
}

void ws_gone(struct srv_conn *c, const char *why)
{
	if (!c->ws_cb || c->ws_close_notified)
		return;
	c->ws_close_notified = true;
	c->ws_cb->on_close(c->ws_ud, why);
}

void ws_ping_tick(struct srv_conn *c, unsigned interval_ms)
{
	struct wslay_event_msg ping = { .opcode = WSLAY_PING, .msg = NULL, .msg_length = 0 };

	if (c->state != CONN_WS || c->ws_close_notified)
		return;
	/* While input is paused (the VM does not take keystrokes) the socket
	 * is not read, so silence proves nothing. */
	if (c->ws_heard || c->ws_paused) {
		c->ws_heard = false;
		c->ws_missed = 0;
		return;
	}
	if (c->ws_missed >= SRV_WS_PING_MAX_MISSED) {
		log_info("ws: the browser at %s sent nothing for %u s (pings unanswered): closing",
			 c->remote, (c->ws_missed + 1) * interval_ms / 1000);
		ws_gone(c, "the browser stopped answering");
		conn_close(c);
		return;
	}
	c->ws_missed++;
	/* Browsers answer a ping with a pong on their own, even from a busy
	 * tab: no script is involved. */
	if (wslay_event_queue_msg(c->ws, &ping) == 0)
		ws_settle(c);
}

void ws_free(struct srv_conn *c)
{
	if (c->ws) {
		wslay_event_context_free(c->ws);
		c->ws = NULL;
	}
	wsr_free(&c->wsr);
}

/* Sec-WebSocket-Accept: base64(SHA-1(key + GUID)), RFC 6455 §4.2.2. */
static int accept_key(const char *key, char out[64])
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	unsigned char raw[32], digest[SHA_DIGEST_LENGTH];
	char buf[128];
	int n;

	n = EVP_DecodeBlock(raw, (const unsigned char *)key, (int)strlen(key));
	/* 16 random bytes encode to 24 characters with "==" padding. */
	if (strlen(key) != 24 || n != 18)
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%s%s", key, guid);
	SHA1((const unsigned char *)buf, strlen(buf), digest);
	EVP_EncodeBlock((unsigned char *)out, digest, sizeof(digest));
	return 0;
}

int srv_ws_accept(struct srv_conn *c, const char *subprotocol, const struct srv_ws_cb *cb, void *ud)
{
	char accept[64], head[512], msg[160];
	const char *key = srv_conn_header(c, H_WS_KEY);
	int n;

	c->busy_app = false;
	if (c->state == CONN_CLOSING) {
		conn_maybe_free(c);
		return -EPIPE;
	}
	if (!key || accept_key(key, accept) < 0 ||
	    wslay_event_context_server_init(&c->ws, &ws_callbacks, c) != 0) {
		snprintf(msg, sizeof(msg), "a WebSocket upgrade with subprotocol %s is required",
			 subprotocol);
		srv_error(c, 400, "InvalidRequest", msg);
		return -EINVAL;
	}
	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 101 Switching Protocols\r\n"
		     "Upgrade: websocket\r\n"
		     "Connection: Upgrade\r\n"
		     "Sec-WebSocket-Accept: %s\r\n"
		     "Sec-WebSocket-Protocol: %s\r\n\r\n",
		     accept, subprotocol);
	if (conn_ssl_write(c, head, (size_t)n) < 0) {
		conn_close(c);
		return -EIO;
	}
	c->ws_cb = cb;
	c->ws_ud = ud;
	c->state = CONN_WS;
	/* The request is done with: an idle terminal keeps no header buffer
	 * (1 KiB or more per session, measured in BENCHMARKS.md). */
	buf_reset(&c->hbuf);
	for (int i = 0; i < H_COUNT; i++)
		c->hdr_off[i] = -1;
	memset(&c->req, 0, sizeof(c->req));
	conn_flush(c);
	conn_read_resume(c);
	/* Frames that came with the upgrade wait until the caller has
	 * attached the terminal (on the next loop turn); pumped now, they
	 * would reach a session that is not yet listening. */
	conn_pump_later(c);
	return 0;
}

/* 1 once the browser's queue passed the high watermark (until it drains
 * below the low one), else 0: the sender's cue to pause. */
static int above_high_water(struct srv_conn *c)
{
	if (c->out_pending >= SRV_WS_HIGH_WATER)
		c->ws_above_high = true;
	return c->ws_above_high ? 1 : 0;
}

int srv_ws_send(struct srv_conn *c, bool text, const void *buf, size_t len)
{
	struct wslay_event_msg msg = {
		.opcode = text ? WSLAY_TEXT_FRAME : WSLAY_BINARY_FRAME,
		.msg = buf,
		.msg_length = len,
	};

	if (c->state != CONN_WS)
		return -EPIPE;
	if (wslay_event_queue_msg(c->ws, &msg) != 0)
		return -EIO;
	ws_settle(c);
	return above_high_water(c);
}

int srv_ws_send_binary(struct srv_conn *c, uint8_t *buf, size_t len)
{
	uint8_t *h;
	size_t hlen = len < 126 ? 2 : 4;

	if (len > 0xffff)
		return -EMSGSIZE;
	if (c->state != CONN_WS)
		return -EPIPE;
	/* wslay's own frames (pings, control text) go first, whole. */
	if (wslay_event_want_write(c->ws)) {
		ws_settle(c);
		if (c->state != CONN_WS)
			return -EPIPE;
	}
	if (wslay_event_get_close_sent(c->ws))
		return -EPIPE;
	h = buf - hlen;
	h[0] = 0x80 | WSLAY_BINARY_FRAME; /* FIN; a server's frames are not masked */
	if (hlen == 2) {
		h[1] = (uint8_t)len;
	} else {
		h[1] = 126;
		h[2] = (uint8_t)(len >> 8);
		h[3] = (uint8_t)len;
	}
	if (conn_ssl_write(c, h, hlen + len) < 0) {
		conn_close(c);
		return -EIO;
	}
	conn_flush(c);
	return above_high_water(c);
}

size_t srv_ws_outbound(const struct srv_conn *c)
{
	return c->out_pending;
}

void srv_ws_pause_input(struct srv_conn *c, bool pause)
{
	if (c->state != CONN_WS || c->ws_paused == pause)
		return;
	c->ws_paused = pause;
	if (pause) {
		conn_read_pause(c);
	} else {
		conn_read_resume(c);
		conn_pump(c);
	}
}

void srv_ws_close_detach(struct srv_conn *c, uint16_t code, const char *reason)
{
	if (c->state != CONN_WS)
		return;
	/* Every callback checks this flag: none reaches the owner now. */
	c->ws_close_notified = true;
	srv_ws_close(c, code, reason);
}

void srv_ws_close(struct srv_conn *c, uint16_t code, const char *reason)
{
	if (c->state != CONN_WS)
		return;
	wslay_event_queue_close(c->ws, code, (const uint8_t *)reason, reason ? strlen(reason) : 0);
	ws_settle(c);
	/* Don't wait for the browser's close frame: ours is the last word. */
	if (c->state == CONN_WS) {
		if (c->out_pending == 0)
			conn_close(c);
		else
			c->close_after_write = true;
	}
}
