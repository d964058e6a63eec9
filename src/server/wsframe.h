/* The WebSocket frame reader: client-to-server frames (RFC 6455 §5), read
 * and unmasked here rather than by wslay, whose receive path unmasks one
 * byte at a time (docs/decisions.md, "WebSocket frames are read by our
 * own reader"). wslay still sends. The header's rules are core/wshead.c's,
 * which the CLI's reader shares. Pure: no connection, no I/O, so that
 * unit tests and the fuzzer drive it byte by byte. */
#ifndef BASTION_SERVER_WSFRAME_H
#define BASTION_SERVER_WSFRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/wshead.h"

/* A message's largest size, summed over its fragments. */
#define WSR_MAX_MSG (1024 * 1024)

/* Close codes the reader answers a broken peer with (RFC 6455 §7.4.1). */
#define WSR_CLOSE_NORMAL   1000
#define WSR_CLOSE_PROTOCOL 1002
#define WSR_CLOSE_BAD_DATA 1007 /* text that is not UTF-8 */
#define WSR_CLOSE_TOO_BIG  1009
#define WSR_CLOSE_INTERNAL 1011 /* out of memory */

enum wsr_event_type {
	WSR_NONE,   /* the input ran out before an event */
	WSR_TEXT,   /* a whole text message, valid UTF-8 */
	WSR_BINARY, /* a whole binary message */
	WSR_PING,   /* answer with a pong carrying data */
	WSR_PONG,
	WSR_CLOSE, /* the peer's close: code (0: none), reason in data */
	WSR_ERROR, /* the peer broke the protocol: close with code */
};

struct wsr_event {
	enum wsr_event_type type;
	/* Into the caller's buffer or the reader's own: valid until the next
	 * wsr_read or wsr_free. */
	const uint8_t *data;
	size_t len;
	uint16_t code;
};

struct wsr {
	struct wsh h; /* the frame being read (core/wshead.h) */
	bool in_payload;
	struct wsh_msg m; /* a data message assembled */
	/* UTF-8 of a text message, carried across fragments */
	uint8_t u8_need, u8_lo, u8_hi;
	bool done; /* a close or an error was reported: nothing more is read */
};

/* Reads frames from buf (which is unmasked in place) until one event or
 * the end of buf; returns how many bytes it took. After WSR_CLOSE or
 * WSR_ERROR it takes every byte offered and reports nothing more. */
size_t wsr_read(struct wsr *r, uint8_t *buf, size_t len, struct wsr_event *ev);

/* The last event's data is done with: a message gathered in the reader's
 * own buffer is freed now rather than at the next wsr_read, so that an
 * idle connection holds none. */
void wsr_release(struct wsr *r);

/* Frees what the reader holds; it can then be used again from scratch. */
void wsr_free(struct wsr *r);

#endif
