/* The native client's upload path (see wsout.h). Per 256 KiB of local
 * input: one readv, 16 frames masked in place, 16 TLS records encrypted
 * into one buffer, one write to the socket, and one getrandom(2) per 1,024
 * frames. The socket BIO wrote each 16 KiB record with its own
 * write(2): four times the system calls, TCP segments and wake-ups of the
 * bastion on the other end, which on a busy machine decide throughput
 * (BENCHMARKS.md). The buffer costs one copy of each record, cheaper than
 * the calls it saves. */
#include "cli/wsout.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <sodium.h>

#include "core/util.h"

_Static_assert(CLI_WS_PAYLOAD < 65536, "a frame's length fits the 16-bit form");

size_t cli_ws_frame(uint8_t *slot, size_t n, const uint8_t key[4])
{
	size_t hlen = n < 126 ? 6 : 8, off = CLI_WS_FRAME_HEAD - hlen;
	uint8_t *h = slot + off;

	util_xor_key(slot + CLI_WS_FRAME_HEAD, n, key, 0);
	h[0] = 0x80 | 0x2; /* FIN, binary */
	if (n < 126) {
		h[1] = (uint8_t)(0x80 | n);
	} else {
		/* The minimal form (§5.2): 126..65535 in 16 bits. */
		h[1] = 0x80 | 126;
		h[2] = (uint8_t)(n >> 8);
		h[3] = (uint8_t)n;
	}
	memcpy(h + hlen - 4, key, 4);
	return off;
}

/* ---- the BIO under SSL_write: records appended to the buffer ---------- */

static int out_bio_write(BIO *b, const char *data, int len)
{
	struct cli_wsout *o = BIO_get_data(b);
	size_t want;

	BIO_clear_retry_flags(b);
	if (len <= 0)
		return 0;
	if (o->off == o->len)
		o->off = o->len = 0; /* all written: start again at the front */
	want = o->len + (size_t)len;
	if (want > CLI_WS_OUT_MAX)
		return -1;
	if (want > o->cap) {
		size_t cap = o->cap * 2 > want ? o->cap * 2 : want;
		uint8_t *p = realloc(o->buf, cap);

		if (!p)
			return -1;
		o->buf = p;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, data, (size_t)len);
	o->len += (size_t)len;
	return len;
}

static long out_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct cli_wsout *o = BIO_get_data(b);

	(void)num, (void)ptr;
	if (cmd == BIO_CTRL_FLUSH)
		return 1; /* the pump writes the buffer out */
	if (cmd == BIO_CTRL_WPENDING)
		return (long)(o->len - o->off);
	return 0;
}

static BIO_METHOD *out_method;
static pthread_once_t out_method_once = PTHREAD_ONCE_INIT;

static void out_method_make(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "bastion-cli-out");

	if (m && BIO_meth_set_write(m, out_bio_write) == 1 &&
	    BIO_meth_set_ctrl(m, out_bio_ctrl) == 1) {
		out_method = m;
		return;
	}
	BIO_meth_free(m);
}

int cli_wsout_init(struct cli_wsout *o, SSL *ssl)
{
	BIO *b;

	memset(o, 0, sizeof(*o));
	o->key_off = sizeof(o->keys); /* drawn at the first frame */
	pthread_once(&out_method_once, out_method_make);
	o->slots = malloc((size_t)CLI_WS_BATCH * CLI_WS_SLOT);
	o->cap = (size_t)CLI_WS_BATCH * (CLI_WS_SLOT + 64) + 4096;
	o->buf = malloc(o->cap);
	if (!out_method || !o->slots || !o->buf || !(b = BIO_new(out_method))) {
		cli_wsout_free(o);
		return -ENOMEM;
	}
	BIO_set_data(b, o);
	BIO_set_init(b, 1);
	/* The socket BIO stays the read side; SSL takes this one. */
	SSL_set0_wbio(ssl, b);
	return 0;
}

static const uint8_t *next_key(struct cli_wsout *o)
{
	if (o->key_off + 4 > sizeof(o->keys)) {
		randombytes_buf(o->keys, sizeof(o->keys));
		o->key_off = 0;
	}
	o->key_off += 4;
	return o->keys + o->key_off - 4;
}

ssize_t cli_wsout_read(struct cli_wsout *o, SSL *ssl, int in_fd)
{
	struct iovec iov[CLI_WS_BATCH];
	ssize_t n;
	size_t left;

	for (int i = 0; i < CLI_WS_BATCH; i++)
		iov[i] = (struct iovec){ o->slots + (size_t)i * CLI_WS_SLOT + CLI_WS_FRAME_HEAD,
					 CLI_WS_PAYLOAD };
	n = readv(in_fd, iov, CLI_WS_BATCH);
	if (n <= 0)
		return n == 0 ? 0 : -errno;
	left = (size_t)n;
	for (int i = 0; left > 0; i++) {
		uint8_t *slot = o->slots + (size_t)i * CLI_WS_SLOT;
		size_t len = left < CLI_WS_PAYLOAD ? left : CLI_WS_PAYLOAD;
		size_t off = cli_ws_frame(slot, len, next_key(o));
		size_t done = 0;

		/* The BIO takes whole records or fails: no retry to carry. */
		if (SSL_write_ex(ssl, slot + off, CLI_WS_FRAME_HEAD + len - off, &done) != 1) {
			ERR_clear_error();
			return -EIO;
		}
		left -= len;
	}
	return n;
}

int cli_wsout_flush(struct cli_wsout *o, int fd)
{
	while (o->off < o->len) {
		ssize_t n = write(fd, o->buf + o->off, o->len - o->off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : -errno;
		o->off += (size_t)n;
	}
	o->off = o->len = 0;
	return 0;
}

int cli_pipe_grow(int fd)
{
	struct stat st;
	int have;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISFIFO(st.st_mode))
		return 0;
	have = fcntl(fd, F_GETPIPE_SZ);
	if (have < 0)
		return -errno;
	/* Past /proc/sys/fs/pipe-max-size, or the user's pages for pipes
	 * (pipe-user-pages-soft) spent: EPERM; half as much is tried, down to
	 * what it already has. */
	for (int want = CLI_PIPE_MAX; want > have; want /= 2) {
		int r = fcntl(fd, F_SETPIPE_SZ, want);

		if (r >= 0)
			return r;
		if (errno != EPERM && errno != ENOMEM)
			return -errno;
	}
	return have;
}

void cli_wsout_free(struct cli_wsout *o)
{
	free(o->slots);
	free(o->buf);
	o->slots = o->buf = NULL;
	o->len = o->off = o->cap = 0;
}
