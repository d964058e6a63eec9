/* The native client's upload path (cli_ws_pump's sending half): local
 * input read in batches, framed and masked in place, and the TLS records of
 * a batch gathered in one buffer that goes to the socket in one write
 * (BENCHMARKS.md, "scp through the bastion"). Everything TLS writes on the
 * connection once the pump runs (wslay's frames, alerts) goes through the
 * same buffer, so the bytes keep their order. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>

/* A frame's payload: with its header (at most 8 bytes: 2, 2 of length, 4
 * of mask) a frame fills one TLS record (16 KiB) exactly, so that the
 * bastion reads it whole and hands it on without gathering it. */
#define CLI_WS_FRAME_HEAD 8
#define CLI_WS_SLOT       (16 * 1024)
#define CLI_WS_PAYLOAD    (CLI_WS_SLOT - CLI_WS_FRAME_HEAD)
/* Frames read with one readv and written with one write: 256 KiB of input,
 * a quarter of the pipe cli_pipe_grow gives ssh, so that each wake-up of
 * the proxy carries four times what a default pipe (64 KiB) held. */
#define CLI_WS_BATCH 16
/* How large the pipes to and from ssh are made (cli_pipe_grow). */
#define CLI_PIPE_MAX (1024 * 1024)
/* Masking keys drawn from the CSPRNG at once (4 bytes a frame): one
 * getrandom(2) per 1,024 frames instead of one per frame. */
#define CLI_WS_KEY_POOL 4096
/* What the buffer may hold before a write fails: a batch's records and
 * wslay's few control frames need far less. */
#define CLI_WS_OUT_MAX (1024 * 1024)

struct cli_wsout {
	uint8_t *slots; /* CLI_WS_BATCH slots of CLI_WS_SLOT bytes */
	uint8_t *buf;   /* TLS bytes not yet written to the socket */
	size_t len, off, cap;
	uint8_t keys[CLI_WS_KEY_POOL];
	size_t key_off;
};

/* Frames the n bytes (at most CLI_WS_PAYLOAD) at slot + CLI_WS_FRAME_HEAD
 * as one masked, final binary frame, in place: returns the offset in slot
 * where the frame starts (its length is CLI_WS_FRAME_HEAD + n - that). */
size_t cli_ws_frame(uint8_t *slot, size_t n, const uint8_t key[4]);

/* Allocates the slots and the buffer and makes the buffer ssl's write
 * BIO. 0 or -ENOMEM. */
int cli_wsout_init(struct cli_wsout *o, SSL *ssl);
/* Reads what in_fd has (one readv, up to CLI_WS_BATCH frames), frames it
 * and hands each frame to SSL_write, which encrypts it into the buffer:
 * the number of bytes read, 0 at end of input, -errno (-EAGAIN, -EINTR
 * included) when the read failed, -EIO when TLS did. */
ssize_t cli_wsout_read(struct cli_wsout *o, SSL *ssl, int in_fd);
/* Writes the buffer to fd: 0 when all of it is out, 1 when the socket is
 * full, -errno when the connection failed. */
int cli_wsout_flush(struct cli_wsout *o, int fd);
static inline bool cli_wsout_pending(const struct cli_wsout *o)
{
	return o->off < o->len;
}
void cli_wsout_free(struct cli_wsout *o);

/* Grows the pipe fd (ssh's ProxyCommand talks over two) to CLI_PIPE_MAX,
 * or the largest the system lets this user have: with the default 64 KiB
 * ssh fills it with two packets and sleeps until the proxy has read them,
 * a context switch each way per 64 KiB that a socket (direct ssh) does not
 * cost. Its size after, 0 when fd is no pipe (left alone), -errno. */
int cli_pipe_grow(int fd);
