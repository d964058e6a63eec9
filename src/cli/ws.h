/* The CLI's client side of the native client's stream (docs/api.md "The
 * native client's stream"): a TLS connection made ahead of time
 * (cli_ws_dial), the one request that turns it into a stream
 * (cli_ws_upgrade), and the pump that joins the stream to local file
 * descriptors (cli_ws_pump). OpenSSL; frames written by wsout.c (data)
 * and wslay (control), read by wsin.c; libcurl in Debian 12 has no
 * WebSocket. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct cli_ws;

/* Where to connect and how to sign in: from cli_connect (cli_target). */
struct cli_ws_target {
	const char *url; /* https://HOST[:PORT][/PREFIX], normalised */
	const char *token;
	const char *ca_file; /* NULL: the system's roots */
	bool insecure;
};

/* TCP and TLS to the target (certificate and name checked unless
 * insecure). CLI_OK, or prints why and returns CLI_ECONN. */
int cli_ws_dial(const struct cli_ws_target *t, struct cli_ws **ret);
/* Is a connection from cli_ws_dial still usable (the server has not
 * closed it while it waited, nor sent anything but TLS's own records)?
 * Decided from what TLS says, not the socket alone: what arrived is read
 * without blocking (session tickets are handled; a close_notify, an
 * alert, the socket's end or application data mean no). A connection
 * once found unusable stays so. */
bool cli_ws_fresh(struct cli_ws *w);
/* Sends the upgrade for path (under /api/v1, query included) with the
 * bearer token and subprotocol bastion.stream.v1, and reads the answer.
 * CLI_OK on 101; otherwise prints "bastion: CODE: message" and returns the
 * exit code for the status (the connection is then spent). */
int cli_ws_upgrade(struct cli_ws *w, const char *path);
/* cli_ws_upgrade's answer when the connection was closed before the
 * bastion answered anything: the request never reached it, or died with
 * the connection. */
#define CLI_WS_CLOSED (-1)
/* As cli_ws_upgrade, on a connection that waited (a spare that passed
 * cli_ws_fresh): when it turns out closed before any answer (the bastion
 * closed it between the check and the request), prints nothing and
 * returns CLI_WS_CLOSED, so that the caller may try once more on a new
 * connection. */
int cli_ws_upgrade_spare(struct cli_ws *w, const char *path);

/* Joins the stream to in_fd (read, sent as binary frames; its end of file
 * is sent as {"type":"eof"}) and out_fd (the VM's bytes; its eof shuts
 * out_fd down for writing, or closes it when it is no socket), until the
 * stream ends or stop_fd (-1: none) becomes readable. Messages from the
 * bastion (warnings, the reason the session ended) go to stderr. CLI_OK
 * when the stream ended because both sides closed it or stop_fd fired;
 * CLI_EAPI when the bastion ended it (disconnected, idle, ...), CLI_ECONN
 * when the connection failed. */
int cli_ws_pump(struct cli_ws *w, int in_fd, int out_fd, int stop_fd);

void cli_ws_free(struct cli_ws *w);

/* Pure: the Sec-WebSocket-Accept answer for key (RFC 6455),
 * into out (at least 29 bytes). */
void cli_ws_accept_key(const char *key, char *out, size_t size);
