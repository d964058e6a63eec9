/* The native client's download path (cli_ws_pump's receiving half): the
 * bastion's frames (RFC 6455 §5: unmasked, server to client) parsed where
 * TLS put them, a binary frame's payload handed on in place, as far as it
 * came, without waiting for the rest of the frame. wslay's receiver read
 * TLS 4 KiB at a time, copied each message into a buffer of its own (a
 * malloc per message) and only then handed it on. wslay still sends the
 * CLI's control frames (the eof, pongs, the close). The header's rules are
 * core/wshead.c's, which the daemon's reader shares.
 *
 * Pure: no connection, no I/O, so that unit tests and the fuzzer drive it
 * byte by byte. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/wshead.h"

/* A text message's largest size, summed over its fragments (the bastion's
 * control messages are a few hundred bytes). */
#define CLI_WSIN_MSG_MAX (1024 * 1024)

enum cli_wsin_type {
	CLI_WSIN_NONE,   /* the input ran out before an event */
	CLI_WSIN_BINARY, /* some of a binary message's bytes, in place */
	CLI_WSIN_TEXT,   /* a whole text message */
	CLI_WSIN_PING,   /* answer with a pong carrying data */
	CLI_WSIN_PONG,
	CLI_WSIN_CLOSE, /* the bastion's close: code (0: none) */
	CLI_WSIN_ERROR, /* the bastion broke the protocol, or out of memory */
};

struct cli_wsin_event {
	enum cli_wsin_type type;
	/* Into the caller's buffer (binary) or the reader's own (the rest):
	 * valid until the next cli_wsin_read or cli_wsin_free. */
	const uint8_t *data;
	size_t len;
	uint16_t code;
	const char *why; /* CLI_WSIN_ERROR: what was wrong */
};

struct cli_wsin {
	struct wsh h; /* the frame being read (core/wshead.h) */
	bool in_payload;
	struct wsh_msg m; /* the data message in progress; text is gathered */
	bool done;        /* a close or an error was reported: nothing more is read */
};

/* Reads frames from buf until one event or the end of buf; returns how
 * many bytes it took. After CLI_WSIN_CLOSE or CLI_WSIN_ERROR it takes
 * every byte offered and reports nothing more. */
size_t cli_wsin_read(struct cli_wsin *r, const uint8_t *buf, size_t len, struct cli_wsin_event *ev);

/* Frees what the reader holds; it can then be used again from scratch. */
void cli_wsin_free(struct cli_wsin *r);
