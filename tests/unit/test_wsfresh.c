/* cli/ws.c's cli_ws_fresh, the check `bastion tunnel` makes before it
 * uses the connection it dialed ahead of time: open means TLS says so, not
 * the socket alone. The CLI reads ahead (several records per read), so
 * the server's TLS 1.3 session tickets make a good connection's socket
 * readable, and a close_notify OpenSSL already holds leaves a closed one's
 * socket quiet.
 *
 * A real TLS server on 127.0.0.1 in this process (a self-signed
 * certificate made here, the client trusting it through --ca-file's path),
 * dialed by the CLI's own cli_ws_dial. The server's TLS runs on memory
 * BIOs so that the test decides which of its records go out and which
 * go out together (one write: read ahead at once by the client). A
 * thread serves the handshake (and an upgrade) while the client blocks
 * in it; everything else runs on the test's thread. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/sockios.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cli/cli.h"
#include "cli/ws.h"
#include "testutil.h"

#define WAIT_MS 10000

/* What the server does once its handshake is done, before its output is
 * flushed: nothing (the test sends its records later), or more records
 * sent in the same write as the handshake's last flight. */
enum after { AFTER_NOTHING, AFTER_CLOSE_NOTIFY, AFTER_DATA };

struct srv {
	char dir[64], ca[128], url[64];
	int lfd, fd;
	SSL_CTX *ctx;
	SSL *ssl;
	BIO *in, *out; /* memory BIOs: what the server reads, what it wrote */
	enum after after;
	bool ok;        /* the thread's work succeeded */
	char key[64];   /* the upgrade's Sec-WebSocket-Key */
	size_t flushed; /* bytes the last srv_flush wrote */
};

static X509 *self_signed(EVP_PKEY *k)
{
	X509 *x = X509_new();
	X509_EXTENSION *san;
	X509V3_CTX v3;

	assert_non_null(x);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)"127.0.0.1", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	/* The CLI checks the address it dialed against the certificate. */
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	san = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "IP:127.0.0.1");
	assert_non_null(san);
	assert_int_equal(X509_add_ext(x, san, -1), 1);
	X509_EXTENSION_free(san);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	return x;
}

/* Writes everything the server's TLS wrote to the socket in one write,
 * and waits (WAIT_MS at most) until the client's side has it all: what
 * the test checks next is what arrived, not what may be on its way. */
static int srv_flush(struct srv *s)
{
	char buf[64 * 1024];
	size_t n = 0;
	int r, unacked = 1;

	while (n < sizeof(buf) && (r = BIO_read(s->out, buf + n, (int)(sizeof(buf) - n))) > 0)
		n += (size_t)r;
	s->flushed = n;
	if (n == 0)
		return 0;
	if (write(s->fd, buf, n) != (ssize_t)n)
		return -1;
	/* Acknowledged bytes are in the client's socket. */
	for (int i = 0; i < WAIT_MS && unacked > 0; i++) {
		if (ioctl(s->fd, SIOCOUTQ, &unacked) < 0)
			return -1;
		if (unacked > 0)
			poll(NULL, 0, 1);
	}
	return unacked == 0 ? 0 : -1;
}

/* Reads what the client sent into the server's TLS (waits at most WAIT_MS).
 * 1, or -1 on an end, an error or the timeout. */
static int srv_fill(struct srv *s)
{
	struct pollfd p = { .fd = s->fd, .events = POLLIN };
	char buf[16 * 1024];
	ssize_t n;

	if (poll(&p, 1, WAIT_MS) != 1)
		return -1;
	n = read(s->fd, buf, sizeof(buf));
	if (n <= 0 || BIO_write(s->in, buf, (int)n) != (int)n)
		return -1;
	return 1;
}

/* The server's side of the handshake, while the client blocks in
 * cli_ws_dial. No cmocka here (not thread-safe): s->ok says how it went. */
static void *srv_handshake(void *arg)
{
	struct srv *s = arg;
	struct pollfd p = { .fd = s->lfd, .events = POLLIN };
	int one = 1;

	if (poll(&p, 1, WAIT_MS) != 1)
		return NULL;
	s->fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
	/* Each flush goes out now, not after the last one's ACK (Nagle). */
	if (s->fd < 0 || setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		return NULL;
	for (int i = 0; i < 20; i++) {
		int r = SSL_do_handshake(s->ssl);

		if (r == 1) {
			s->ok = true;
			break;
		}
		if (SSL_get_error(s->ssl, r) != SSL_ERROR_WANT_READ || srv_flush(s) < 0 ||
		    srv_fill(s) < 0)
			return NULL;
	}
	if (!s->ok)
		return NULL;
	/* TLS 1.3's tickets (written by the handshake) wait in s->out for the
	 * test, or go with what follows in one write. */
	if (s->after == AFTER_CLOSE_NOTIFY) {
		SSL_shutdown(s->ssl);
		s->ok = srv_flush(s) == 0;
	} else if (s->after == AFTER_DATA) {
		s->ok = SSL_write(s->ssl, "HTTP/1.1 400", 12) == 12 && srv_flush(s) == 0;
	}
	return NULL;
}

/* A server listening on 127.0.0.1 (TLS max_version) and a client dialed
 * to it by cli_ws_dial, trusting the server's certificate. */
static struct cli_ws *srv_dial(struct srv *s, int max_version, enum after after)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *x = self_signed(k);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	struct cli_ws_target t = { .token = "t0ken" };
	struct cli_ws *w = NULL;
	pthread_t th;
	FILE *f;

	memset(s, 0, sizeof(*s));
	s->fd = -1;
	s->after = after;
	assert_non_null(tu_tmpdir(s->dir, sizeof(s->dir), "wsfresh"));
	snprintf(s->ca, sizeof(s->ca), "%s/ca.pem", s->dir);
	f = fopen(s->ca, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, x), 1);
	assert_int_equal(fclose(f), 0);
	s->ctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(s->ctx);
	assert_int_equal(SSL_CTX_use_certificate(s->ctx, x), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(s->ctx, k), 1);
	assert_int_equal(SSL_CTX_set_max_proto_version(s->ctx, max_version), 1);
	/* Session tickets on, as a server's are by default: two in TLS 1.3. */
	assert_int_equal(SSL_CTX_get_options(s->ctx) & SSL_OP_NO_TICKET, 0);
	assert_int_equal(SSL_CTX_set_num_tickets(s->ctx, 2), 1);
	s->ssl = SSL_new(s->ctx);
	s->in = BIO_new(BIO_s_mem());
	s->out = BIO_new(BIO_s_mem());
	BIO_up_ref(s->in);
	BIO_up_ref(s->out);
	SSL_set_bio(s->ssl, s->in, s->out);
	SSL_set_accept_state(s->ssl);
	X509_free(x);
	EVP_PKEY_free(k);

	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s->lfd >= 0);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s->lfd, 4), 0);
	assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &alen), 0);
	snprintf(s->url, sizeof(s->url), "https://127.0.0.1:%u", ntohs(a.sin_port));
	t.url = s->url;
	t.ca_file = s->ca;

	assert_int_equal(pthread_create(&th, NULL, srv_handshake, s), 0);
	assert_int_equal(cli_ws_dial(&t, &w), CLI_OK);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_true(s->ok);
	assert_non_null(w);
	assert_int_equal(SSL_version(s->ssl), max_version);
	return w;
}

static void srv_free(struct srv *s)
{
	SSL_free(s->ssl);
	BIO_free(s->in);
	BIO_free(s->out);
	SSL_CTX_free(s->ctx);
	if (s->fd >= 0)
		close(s->fd);
	close(s->lfd);
	tu_rm_tree(s->dir);
}

/* TLS 1.3: the tickets the handshake wrote, sent now. */
static void send_tickets(struct srv *s)
{
	assert_int_equal(srv_flush(s), 0);
	assert_true(s->flushed > 0);
}

static void send_close_notify(struct srv *s)
{
	SSL_shutdown(s->ssl);
	assert_int_equal(srv_flush(s), 0);
	assert_true(s->flushed > 0);
}

/* The server's half of an upgrade: reads the request's head, answers 101
 * with the accept key for the client's Sec-WebSocket-Key. */
static void *srv_upgrade(void *arg)
{
	struct srv *s = arg;
	char head[8192], accept[64], answer[512];
	size_t have = 0;
	const char *k;
	int n;

	while (!memmem(head, have, "\r\n\r\n", 4)) {
		int r = SSL_read(s->ssl, head + have, (int)(sizeof(head) - 1 - have));

		if (r > 0) {
			have += (size_t)r;
			continue;
		}
		if (SSL_get_error(s->ssl, r) != SSL_ERROR_WANT_READ || srv_fill(s) < 0 ||
		    have >= sizeof(head) - 1)
			return NULL;
	}
	head[have] = '\0';
	k = strstr(head, "Sec-WebSocket-Key: ");
	if (!k || sscanf(k + 19, "%63[^\r]", s->key) != 1)
		return NULL;
	cli_ws_accept_key(s->key, accept, sizeof(accept));
	n = snprintf(answer, sizeof(answer),
		     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
		     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
		     "Sec-WebSocket-Protocol: bastion.stream.v1\r\n\r\n",
		     accept);
	s->ok = SSL_write(s->ssl, answer, n) == n && srv_flush(s) == 0;
	return NULL;
}

/* The connection cli_ws_fresh passed is usable as it is: blocking again,
 * the upgrade's request and answer go through. */
static void assert_upgrades(struct srv *s, struct cli_ws *w)
{
	pthread_t th;

	s->ok = false;
	assert_int_equal(pthread_create(&th, NULL, srv_upgrade, s), 0);
	assert_int_equal(cli_ws_upgrade(w, "/stream?x=1"), CLI_OK);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_true(s->ok);
}

/* (1) The tickets after the handshake are no sign of a close: the spare
 * stays fresh, once they are read and before, and it still carries the
 * upgrade. */
static void fresh_after_tickets(void **state)
{
	struct srv s;
	struct cli_ws *w;

	(void)state;
	w = srv_dial(&s, TLS1_3_VERSION, AFTER_NOTHING);
	/* Nothing sent yet. */
	assert_true(cli_ws_fresh(w));
	send_tickets(&s);
	assert_true(cli_ws_fresh(w));
	/* Read: the socket is quiet again, and it is still open. */
	assert_true(cli_ws_fresh(w));
	assert_upgrades(&s, w);
	cli_ws_free(w);
	srv_free(&s);
}

/* (1) with the tickets and nothing else, but many of them at once: one
 * check reads them all (they are not application data). */
static void fresh_after_many_tickets(void **state)
{
	struct srv s;
	struct cli_ws *w;

	(void)state;
	w = srv_dial(&s, TLS1_3_VERSION, AFTER_NOTHING);
	/* Two from the handshake, three more in the same write. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(SSL_new_session_ticket(s.ssl), 1);
	assert_int_equal(SSL_do_handshake(s.ssl), 1);
	send_tickets(&s);
	assert_true(cli_ws_fresh(w));
	assert_upgrades(&s, w);
	cli_ws_free(w);
	srv_free(&s);
}

/* (2) The server sent close_notify: not fresh, whether it also closed
 * the socket or not, and on every later check too (the record, once
 * read, is no longer on the socket). */
static void stale_after_close_notify(void **state)
{
	for (int close_socket = 0; close_socket < 2; close_socket++) {
		for (int together = 0; together < 2; together++) {
			struct srv s;
			struct cli_ws *w = srv_dial(&s, TLS1_3_VERSION, AFTER_NOTHING);

			(void)state;
			if (!together) {
				/* The tickets read by a check first. */
				send_tickets(&s);
				assert_true(cli_ws_fresh(w));
			}
			/* Else they go with the close_notify, in one write. */
			send_close_notify(&s);
			if (close_socket) {
				close(s.fd);
				s.fd = -1;
			}
			assert_false(cli_ws_fresh(w));
			assert_false(cli_ws_fresh(w));
			cli_ws_free(w);
			srv_free(&s);
		}
	}
}

/* (2) The close_notify came in the same read as the end of the handshake
 * (TLS 1.2: the server's last flight, then its close_notify, one write):
 * OpenSSL holds it, the socket has nothing to say. */
static void stale_when_read_ahead(enum after after)
{
	struct srv s;
	struct cli_ws *w = srv_dial(&s, TLS1_2_VERSION, after);

	assert_false(cli_ws_fresh(w));
	assert_false(cli_ws_fresh(w));
	cli_ws_free(w);
	srv_free(&s);
}

static void stale_when_close_notify_read_ahead(void **state)
{
	(void)state;
	stale_when_read_ahead(AFTER_CLOSE_NOTIFY);
}

/* (3) Application data before our request (the bastion never speaks
 * first): not fresh, whether it came after the tickets were read, with
 * them, or read ahead with the end of the handshake. */
static void stale_after_data_first(void **state)
{
	for (int together = 0; together < 2; together++) {
		struct srv s;
		struct cli_ws *w = srv_dial(&s, TLS1_3_VERSION, AFTER_NOTHING);

		(void)state;
		if (!together) {
			send_tickets(&s);
			assert_true(cli_ws_fresh(w));
		}
		assert_int_equal(SSL_write(s.ssl, "HTTP/1.1 400", 12), 12);
		assert_int_equal(srv_flush(&s), 0);
		assert_false(cli_ws_fresh(w));
		assert_false(cli_ws_fresh(w));
		cli_ws_free(w);
		srv_free(&s);
	}
}

static void stale_when_data_read_ahead(void **state)
{
	(void)state;
	stale_when_read_ahead(AFTER_DATA);
}

/* Runs the upgrade with stderr sent to a file: its answer, and whether
 * it said anything. */
static int upgrade_quiet(struct srv *s, struct cli_ws *w, bool spare, bool *said)
{
	char path[160];
	int fd, saved, r;
	struct stat st;

	snprintf(path, sizeof(path), "%s/stderr", s->dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	fflush(stderr);
	saved = dup(2);
	assert_true(saved >= 0);
	assert_int_equal(dup2(fd, 2), 2);
	r = spare ? cli_ws_upgrade_spare(w, "/stream?x=1") : cli_ws_upgrade(w, "/stream?x=1");
	fflush(stderr);
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);
	assert_int_equal(fstat(fd, &st), 0);
	*said = st.st_size > 0;
	close(fd);
	return r;
}

/* The bastion closes the spare after the check passed it and before our
 * request reached it: the spare's upgrade says nothing and answers
 * CLI_WS_CLOSED (the tunnel dials anew and asks once more); the plain
 * upgrade says why and fails. With the socket left open (the close_notify
 * read) and closed (the request met by a reset, or the close_notify). */
static void spare_closed_before_answer(void **state)
{
	for (int close_socket = 0; close_socket < 2; close_socket++) {
		for (int spare = 0; spare < 2; spare++) {
			struct srv s;
			struct cli_ws *w = srv_dial(&s, TLS1_3_VERSION, AFTER_NOTHING);
			bool said;

			(void)state;
			send_tickets(&s);
			assert_true(cli_ws_fresh(w));
			send_close_notify(&s);
			if (close_socket) {
				close(s.fd);
				s.fd = -1;
			}
			assert_int_equal(upgrade_quiet(&s, w, spare, &said),
					 spare ? CLI_WS_CLOSED : CLI_ECONN);
			assert_true(said == !spare);
			cli_ws_free(w);
			srv_free(&s);
		}
	}
}

/* Some of an answer came, then the end: the bastion had the request, so
 * it is not asked again; the spare's upgrade fails as the plain one does. */
static void spare_closed_mid_answer(void **state)
{
	struct srv s;
	struct cli_ws *w;
	bool said;

	(void)state;
	w = srv_dial(&s, TLS1_3_VERSION, AFTER_NOTHING);
	send_tickets(&s);
	assert_true(cli_ws_fresh(w));
	assert_int_equal(SSL_write(s.ssl, "HTTP/1.1 10", 11), 11);
	send_close_notify(&s);
	assert_int_equal(upgrade_quiet(&s, w, true, &said), CLI_ECONN);
	assert_true(said);
	cli_ws_free(w);
	srv_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fresh_after_tickets),
		cmocka_unit_test(fresh_after_many_tickets),
		cmocka_unit_test(stale_after_close_notify),
		cmocka_unit_test(stale_when_close_notify_read_ahead),
		cmocka_unit_test(stale_after_data_first),
		cmocka_unit_test(stale_when_data_read_ahead),
		cmocka_unit_test(spare_closed_before_answer),
		cmocka_unit_test(spare_closed_mid_answer),
	};

	/* A request written to a socket the server closed (as the tunnel). */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
