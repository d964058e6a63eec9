/* What the CLI's WebSocket client's files share (ws.c: the upgrade and the
 * pump; wsdial.c: TCP and TLS made ahead of the request, and whether such a
 * connection is still fresh): the connection's state and its caps. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <wslay/wslay.h>

#include "cli/cli.h"
#include "cli/ws.h"
#include "cli/wsin.h"
#include "cli/wsout.h"

#define WS_HEAD_MAX    (16 * 1024)
#define WS_BODY_MAX    (64 * 1024)
#define WS_QUEUE_HIGH  (256 * 1024)
#define WS_TIMEOUT_S   10
#define WS_PROTOCOL    "bastion.stream.v1"
#define WS_NORMAL_END  "the connection ended (both sides closed it)"
#define WS_REQUEST_MAX (CLI_PATH_MAX + 8192)
/* Plaintext read from TLS before it is parsed and written out: four
 * records, one writev to the local side. */
#define WS_READ_MAX (64 * 1024)
#define WS_READ_IOV 64
/* OpenSSL's read buffer: four full records and their overhead. */
#define WS_READ_AHEAD (4 * (16 * 1024 + 512))
/* The most reads cli_ws_fresh makes: each handles what OpenSSL holds
 * (session tickets, a close_notify) and what the socket has then. */
#define WS_FRESH_READS 8

struct cli_ws {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	char host[256]; /* as in the URL: for Host */
	char prefix[CLI_URL_MAX];
	char *token; /* secret */
	bool stale;  /* cli_ws_fresh found it closed, or spoken to first */
	/* Bytes read past the answer's head: the stream's first frames. */
	uint8_t *left;
	size_t left_len, left_off;
	wslay_event_context_ptr ws; /* sends our control frames only */
	/* The bastion's frames, read by wsin.c where TLS puts them. */
	struct cli_wsin in;
	uint8_t *rbuf; /* WS_READ_MAX */
	/* The pump's state. */
	int out_fd;
	bool out_closed;
	bool peer_eof; /* the VM shut its side */
	bool closed;   /* a close frame came, or the connection ended */
	bool failed;
	bool write_failed;
	char reason[512]; /* {"type":"closed"}'s reason */
	/* Local input, framed here (wsout.c), not by wslay, whose sender
	 * masks one byte at a time and writes 4 KiB TLS records; once the
	 * pump runs, every TLS byte goes out through its buffer. */
	struct cli_wsout out;
};

/* OpenSSL's error queue said on stderr after what, then cleared. */
void cli_ws_ssl_error(const char *what);
