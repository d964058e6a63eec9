/* cli/wsout.c, the native client's upload path: local input read in
 * batches, each 16 KiB of it one masked binary frame in one TLS record,
 * the batch's records gathered and written to the socket at once. A real
 * TLS pair in memory: the server's side reads the records one by one and
 * checks every frame as the bastion's reader would (RFC 6455 §5). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "cli/wsout.h"
#include "core/util.h"

struct pair {
	SSL_CTX *sctx, *cctx;
	SSL *srv, *cli;
	BIO *to_srv, *to_cli; /* memory BIOs: what each side reads */
};

static X509 *self_signed(EVP_PKEY *k)
{
	X509 *x = X509_new();

	assert_non_null(x);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)"test", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	return x;
}

/* Moves what one side wrote (its write BIO, a memory BIO) to the other's
 * read BIO. */
static void move(BIO *from, BIO *to)
{
	char buf[4096];
	int n;

	while ((n = BIO_read(from, buf, sizeof(buf))) > 0)
		assert_int_equal(BIO_write(to, buf, n), n);
}

static void pair_open(struct pair *p)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *x = self_signed(k);
	BIO *srv_out = BIO_new(BIO_s_mem()), *cli_out = BIO_new(BIO_s_mem());

	p->sctx = SSL_CTX_new(TLS_server_method());
	p->cctx = SSL_CTX_new(TLS_client_method());
	assert_int_equal(SSL_CTX_use_certificate(p->sctx, x), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(p->sctx, k), 1);
	p->srv = SSL_new(p->sctx);
	p->cli = SSL_new(p->cctx);
	p->to_srv = BIO_new(BIO_s_mem());
	p->to_cli = BIO_new(BIO_s_mem());
	BIO_up_ref(p->to_srv);
	BIO_up_ref(p->to_cli);
	SSL_set_bio(p->srv, p->to_srv, srv_out);
	SSL_set_bio(p->cli, p->to_cli, cli_out);
	SSL_set_accept_state(p->srv);
	SSL_set_connect_state(p->cli);
	for (int i = 0; i < 10 && !(SSL_is_init_finished(p->srv) && SSL_is_init_finished(p->cli));
	     i++) {
		SSL_do_handshake(p->cli);
		move(cli_out, p->to_srv);
		SSL_do_handshake(p->srv);
		move(srv_out, p->to_cli);
	}
	assert_true(SSL_is_init_finished(p->srv) && SSL_is_init_finished(p->cli));
	X509_free(x);
	EVP_PKEY_free(k);
}

static void pair_close(struct pair *p)
{
	SSL_free(p->srv);
	SSL_free(p->cli);
	BIO_free(p->to_srv);
	BIO_free(p->to_cli);
	SSL_CTX_free(p->sctx);
	SSL_CTX_free(p->cctx);
}

/* Checks one record's plaintext is one whole frame: final, binary,
 * masked, the minimal length form; unmasks its payload into out. */
static size_t check_frame(const uint8_t *f, size_t n, uint8_t *out)
{
	size_t hlen, plen;

	assert_true(n >= 6);
	assert_int_equal(f[0], 0x82);
	assert_true(f[1] & 0x80);
	plen = f[1] & 0x7f;
	assert_true(plen <= 126);
	if (plen == 126) {
		plen = (size_t)f[2] << 8 | f[3];
		assert_true(plen >= 126);
		hlen = 8;
	} else {
		hlen = 6;
	}
	assert_int_equal(n, hlen + plen);
	for (size_t i = 0; i < plen; i++)
		out[i] = f[hlen + i] ^ f[hlen - 4 + (i & 3)];
	return plen;
}

static void frames_are_whole_records_and_masked(void **state)
{
	/* Around every boundary: the 7-bit and 16-bit length forms, one
	 * frame, a batch, more than a batch (the rest stays for the next
	 * read). */
	static const size_t sizes[] = { 1,
					7,
					125,
					126,
					4096,
					CLI_WS_PAYLOAD - 1,
					CLI_WS_PAYLOAD,
					CLI_WS_PAYLOAD + 1,
					3 * CLI_WS_PAYLOAD + 5,
					CLI_WS_BATCH * CLI_WS_PAYLOAD,
					CLI_WS_BATCH * CLI_WS_PAYLOAD + 100 };
	size_t total = CLI_WS_BATCH * CLI_WS_PAYLOAD + 100;
	uint8_t *in = malloc(total), *got = malloc(total), rec[CLI_WS_SLOT + 16];

	(void)state;
	assert_non_null(in);
	assert_non_null(got);
	for (size_t i = 0; i < total; i++)
		in[i] = (uint8_t)(i * 7 + (i >> 9));
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		struct pair p;
		struct cli_wsout o;
		int pipefd[2], sock[2];
		size_t want = sizes[s], have = 0, frames = 0, read_now;
		ssize_t n;
		uint8_t keys[CLI_WS_BATCH][4];

		pair_open(&p);
		assert_int_equal(cli_wsout_init(&o, p.cli), 0);
		assert_int_equal(pipe(pipefd), 0);
		/* Room for more than a batch, so that the write does not block. */
		assert_true(fcntl(pipefd[1], F_SETPIPE_SZ, 2 * CLI_WS_BATCH * CLI_WS_SLOT) > 0);
		assert_int_equal(write(pipefd[1], in, want), (ssize_t)want);
		n = cli_wsout_read(&o, p.cli, pipefd[0]);
		read_now =
			want < CLI_WS_BATCH * CLI_WS_PAYLOAD ? want : CLI_WS_BATCH * CLI_WS_PAYLOAD;
		assert_int_equal(n, (ssize_t)read_now);
		/* Nothing reached the socket yet; all of it goes in one write. */
		assert_true(cli_wsout_pending(&o));
		/* A batch may be more than the socket holds: drained as it goes
		 * (bounded: each turn moves what the socket took). */
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sock), 0);
		for (int turn = 0, fr = 1; fr == 1; turn++) {
			assert_true(turn < 1000);
			fr = cli_wsout_flush(&o, sock[0]);
			assert_true(fr >= 0);
			for (;;) {
				char buf[8192];
				ssize_t r = recv(sock[1], buf, sizeof(buf), MSG_DONTWAIT);

				if (r <= 0)
					break;
				assert_int_equal(BIO_write(p.to_srv, buf, (int)r), (int)r);
			}
		}
		assert_false(cli_wsout_pending(&o));
		/* One SSL_read, one record: each is exactly one frame. */
		while (have < read_now) {
			int r = SSL_read(p.srv, rec, sizeof(rec));
			size_t plen;

			assert_true(r > 0);
			plen = check_frame(rec, (size_t)r, got + have);
			assert_true(plen == CLI_WS_PAYLOAD || have + plen == read_now);
			assert_true(frames < CLI_WS_BATCH);
			memcpy(keys[frames], rec + (plen < 126 ? 2 : 4), 4);
			have += plen;
			frames++;
		}
		assert_int_equal(SSL_pending(p.srv), 0);
		assert_int_equal(BIO_ctrl_pending(p.to_srv), 0);
		assert_memory_equal(got, in, read_now);
		assert_int_equal(frames, (read_now + CLI_WS_PAYLOAD - 1) / CLI_WS_PAYLOAD);
		/* A key of its own per frame. */
		for (size_t a = 0; a < frames; a++)
			for (size_t b = a + 1; b < frames; b++)
				assert_memory_not_equal(keys[a], keys[b], 4);
		close(pipefd[1]);
		if (read_now < want) {
			assert_int_equal(cli_wsout_read(&o, p.cli, pipefd[0]),
					 (ssize_t)(want - read_now));
		}
		/* The end of input is 0, not an error. */
		assert_int_equal(cli_wsout_read(&o, p.cli, pipefd[0]), 0);
		close(pipefd[0]);
		close(sock[0]);
		close(sock[1]);
		cli_wsout_free(&o);
		pair_close(&p);
	}
	free(in);
	free(got);
}

static void mask_matches_bytewise(void **state)
{
	static const uint8_t key[4] = { 0x12, 0xa5, 0xff, 0x01 };
	uint8_t a[200], b[200];

	(void)state;
	/* Every length around the 8- and 32-byte steps, every start. */
	for (size_t off = 0; off < 8; off++) {
		for (size_t n = 0; n + off <= sizeof(a); n += 3) {
			for (size_t i = 0; i < sizeof(a); i++)
				a[i] = b[i] = (uint8_t)(i * 31 + n);
			util_xor_key(a + off, n, key, 0);
			for (size_t i = 0; i < n; i++)
				b[off + i] ^= key[i & 3];
			assert_memory_equal(a, b, sizeof(a));
		}
	}
}

/* The socket full: what is left stays, in order, for the next flush. */
static void flush_keeps_what_the_socket_refused(void **state)
{
	struct pair p;
	struct cli_wsout o;
	int pipefd[2], sock[2], sz = 4096;
	size_t total = 0, drained = 0;
	uint8_t *in = malloc(CLI_WS_BATCH * CLI_WS_PAYLOAD), buf[65536];
	int r;

	(void)state;
	assert_non_null(in);
	memset(in, 0x5a, CLI_WS_BATCH * CLI_WS_PAYLOAD);
	pair_open(&p);
	assert_int_equal(cli_wsout_init(&o, p.cli), 0);
	assert_int_equal(pipe(pipefd), 0);
	assert_true(fcntl(pipefd[1], F_SETPIPE_SZ, 2 * CLI_WS_BATCH * CLI_WS_SLOT) > 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sock), 0);
	setsockopt(sock[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	assert_int_equal(write(pipefd[1], in, CLI_WS_BATCH * CLI_WS_PAYLOAD),
			 CLI_WS_BATCH * CLI_WS_PAYLOAD);
	assert_true(cli_wsout_read(&o, p.cli, pipefd[0]) > 0);
	total = o.len;
	r = cli_wsout_flush(&o, sock[0]);
	assert_int_equal(r, 1);
	assert_true(cli_wsout_pending(&o));
	/* Bounded: each turn drains the socket and writes more. */
	for (int i = 0; i < 1000 && r == 1; i++) {
		ssize_t n;

		while ((n = recv(sock[1], buf, sizeof(buf), 0)) > 0) {
			assert_int_equal(BIO_write(p.to_srv, buf, (int)n), (int)n);
			drained += (size_t)n;
		}
		r = cli_wsout_flush(&o, sock[0]);
	}
	assert_int_equal(r, 0);
	for (ssize_t n; (n = recv(sock[1], buf, sizeof(buf), 0)) > 0;) {
		assert_int_equal(BIO_write(p.to_srv, buf, (int)n), (int)n);
		drained += (size_t)n;
	}
	assert_int_equal(drained, total);
	for (size_t have = 0; have < CLI_WS_BATCH * CLI_WS_PAYLOAD;) {
		uint8_t rec[CLI_WS_SLOT + 16], out[CLI_WS_SLOT];
		int n = SSL_read(p.srv, rec, sizeof(rec));

		assert_true(n > 0);
		have += check_frame(rec, (size_t)n, out);
		assert_memory_equal(out, in, CLI_WS_PAYLOAD);
	}
	close(pipefd[0]);
	close(pipefd[1]);
	close(sock[0]);
	close(sock[1]);
	cli_wsout_free(&o);
	pair_close(&p);
	free(in);
}

static int pipe_max(void)
{
	FILE *f = fopen("/proc/sys/fs/pipe-max-size", "r");
	int max = 0;

	assert_non_null(f);
	assert_int_equal(fscanf(f, "%d", &max), 1);
	fclose(f);
	return max;
}

/* ssh's ProxyCommand pipes grow to CLI_PIPE_MAX (or the system's most),
 * both ends, whichever end the proxy holds; anything else is left alone. */
static void pipes_grow_other_fds_alone(void **state)
{
	int want = CLI_PIPE_MAX < pipe_max() ? CLI_PIPE_MAX : pipe_max();
	int p[2], sock[2], fd;

	(void)state;
	assert_true(want > 64 * 1024); /* the default: nothing to show */
	for (int end = 0; end < 2; end++) {
		assert_int_equal(pipe(p), 0);
		assert_int_equal(fcntl(p[end], F_GETPIPE_SZ), 64 * 1024);
		assert_int_equal(cli_pipe_grow(p[end]), want);
		assert_int_equal(fcntl(p[0], F_GETPIPE_SZ), want);
		assert_int_equal(fcntl(p[1], F_GETPIPE_SZ), want);
		/* Already grown: stays as it is. */
		assert_int_equal(cli_pipe_grow(p[end]), want);
		close(p[0]);
		close(p[1]);
	}
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sock), 0);
	assert_int_equal(cli_pipe_grow(sock[0]), 0);
	close(sock[0]);
	close(sock[1]);
	fd = open("/dev/null", O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(cli_pipe_grow(fd), 0);
	close(fd);
	assert_int_equal(cli_pipe_grow(fd), -EBADF);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(frames_are_whole_records_and_masked),
		cmocka_unit_test(mask_matches_bytewise),
		cmocka_unit_test(flush_keeps_what_the_socket_refused),
		cmocka_unit_test(pipes_grow_other_fds_alone),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
