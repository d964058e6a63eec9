/* The CLI's connection to the bastion before its request (ws.h): the URL
 * split, TCP with deadlines, TLS with the bastion's name or address
 * checked, made ahead so that `bastion tunnel` keeps one warm; and whether
 * such a connection is still fresh when it is taken (cli_ws_fresh). */
#include "cli/ws_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "core/util.h"

void cli_ws_ssl_error(const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	if (e) {
		ERR_error_string_n(e, buf, sizeof(buf));
		fprintf(stderr, "bastion: %s: %s\n", what, buf);
	} else {
		fprintf(stderr, "bastion: %s\n", what);
	}
	ERR_clear_error();
}

/* Splits https://HOST[:PORT][/PREFIX] into its parts (host without
 * brackets for the lookup, with them for Host). */
static int split_url(const char *url, struct cli_ws *w, char *name, size_t nsize, char *port,
		     size_t psize)
{
	const char *p = url + strlen("https://"), *end = strchr(p, '/'), *colon;
	size_t hlen = end ? (size_t)(end - p) : strlen(p);

	if (strncmp(url, "https://", 8) != 0 || hlen == 0 || hlen >= sizeof(w->host))
		return -EINVAL;
	memcpy(w->host, p, hlen);
	w->host[hlen] = '\0';
	util_strlcpy(w->prefix, end ? end : "", sizeof(w->prefix));
	util_strlcpy(port, "443", psize);
	if (w->host[0] == '[') {
		char *rb = strchr(w->host, ']');

		if (!rb || (size_t)(rb - w->host - 1) >= nsize)
			return -EINVAL;
		memcpy(name, w->host + 1, (size_t)(rb - w->host - 1));
		name[rb - w->host - 1] = '\0';
		if (rb[1] == ':')
			util_strlcpy(port, rb + 2, psize);
		return 0;
	}
	colon = strrchr(w->host, ':');
	if (colon) {
		if ((size_t)(colon - w->host) >= nsize)
			return -EINVAL;
		memcpy(name, w->host, (size_t)(colon - w->host));
		name[colon - w->host] = '\0';
		util_strlcpy(port, colon + 1, psize);
	} else {
		util_strlcpy(name, w->host, nsize);
	}
	return 0;
}

static int tcp_connect(const char *name, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG }, *res,
			*ai;
	struct timeval tv = { .tv_sec = WS_TIMEOUT_S };
	int fd = -1, r, one = 1;

	r = getaddrinfo(name, port, &hints, &res);
	if (r != 0) {
		fprintf(stderr, "bastion: cannot resolve %s: %s\n", name, gai_strerror(r));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		/* Bounded: connect and the TLS handshake give up after these. */
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		r = errno;
		close(fd);
		fd = -1;
		errno = r;
	}
	if (fd < 0)
		fprintf(stderr, "bastion: cannot connect to %s port %s: %s\n", name, port,
			strerror(errno));
	freeaddrinfo(res);
	return fd;
}

int cli_ws_dial(const struct cli_ws_target *t, struct cli_ws **ret)
{
	struct cli_ws *w = calloc(1, sizeof(*w));
	char name[256], port[16];
	struct in6_addr a6;
	struct in_addr a4;
	bool is_ip;

	if (!w) {
		fprintf(stderr, "bastion: out of memory\n");
		return CLI_ECONN;
	}
	w->fd = -1;
	w->out_fd = -1;
	if (split_url(t->url, w, name, sizeof(name), port, sizeof(port)) < 0) {
		fprintf(stderr, "bastion: cannot use the URL %s\n", t->url);
		goto fail;
	}
	if (!(w->token = strdup(t->token))) {
		fprintf(stderr, "bastion: out of memory\n");
		goto fail;
	}
	w->ctx = SSL_CTX_new(TLS_client_method());
	if (!w->ctx) {
		cli_ws_ssl_error("cannot set up TLS");
		goto fail;
	}
	SSL_CTX_set_min_proto_version(w->ctx, TLS1_2_VERSION);
	/* Records read from the socket several at a time: without read-ahead
	 * OpenSSL reads each record's 5-byte header, then its body, two
	 * system calls per record (BENCHMARKS.md, "the pipes to ssh"). What
	 * it holds unread is seen by SSL_has_pending, not poll(2). */
	SSL_CTX_set_read_ahead(w->ctx, 1);
	SSL_CTX_set_default_read_buffer_len(w->ctx, WS_READ_AHEAD);
	SSL_CTX_set_mode(w->ctx,
			 SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (t->insecure) {
		SSL_CTX_set_verify(w->ctx, SSL_VERIFY_NONE, NULL);
	} else {
		SSL_CTX_set_verify(w->ctx, SSL_VERIFY_PEER, NULL);
		if ((t->ca_file ? SSL_CTX_load_verify_locations(w->ctx, t->ca_file, NULL)
				: SSL_CTX_set_default_verify_paths(w->ctx)) != 1) {
			cli_ws_ssl_error("cannot load the trusted certificates");
			goto fail;
		}
	}
	w->fd = tcp_connect(name, port);
	if (w->fd < 0)
		goto fail;
	w->ssl = SSL_new(w->ctx);
	if (!w->ssl || SSL_set_fd(w->ssl, w->fd) != 1) {
		cli_ws_ssl_error("cannot set up TLS");
		goto fail;
	}
	is_ip = inet_pton(AF_INET, name, &a4) == 1 || inet_pton(AF_INET6, name, &a6) == 1;
	if (!t->insecure) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(w->ssl);

		if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, name) != 1
			  : SSL_set1_host(w->ssl, name) != 1) {
			cli_ws_ssl_error("cannot set the name to check");
			goto fail;
		}
	}
	if (!is_ip)
		SSL_set_tlsext_host_name(w->ssl, name);
	if (SSL_connect(w->ssl) != 1) {
		long v = SSL_get_verify_result(w->ssl);

		if (v != X509_V_OK)
			fprintf(stderr, "bastion: the certificate of %s is not trusted: %s\n", name,
				X509_verify_cert_error_string(v));
		else
			cli_ws_ssl_error("the TLS handshake failed");
		goto fail;
	}
	*ret = w;
	return CLI_OK;
fail:
	cli_ws_free(w);
	return CLI_ECONN;
}

/* Is the socket quiet and OpenSSL holding nothing unread? */
static bool ws_quiet(struct cli_ws *w)
{
	struct pollfd p = { .fd = w->fd, .events = POLLIN };

	return !SSL_has_pending(w->ssl) && poll(&p, 1, 0) == 0;
}

/* The socket alone cannot say: a TLS 1.3 server sends its session
 * tickets after the handshake, so an open connection's socket is readable,
 * and a close_notify read ahead with other records waits in OpenSSL's
 * buffer, where poll(2) does not see it. So what arrived is read, without
 * blocking and a few reads at most: records that are not application data
 * (tickets, a key update) are handled by OpenSSL inside SSL_read_ex, which
 * then wants more (still open); a close_notify, an alert, the end of the
 * socket or an error mean closed; application data means the server spoke
 * first, which the bastion never does before our request. One byte is
 * read, not none: OpenSSL 3.0 reports application data met by a read of 0
 * bytes as SSL_ERROR_SYSCALL, as it does the socket's end. Without
 * SSL_MODE_AUTO_RETRY each read returns once the records OpenSSL holds are
 * handled, so a server sending records without end cannot keep the check
 * reading. A record still coming in part after those reads leaves it
 * undecided: stale, at the cost of one dial. */
bool cli_ws_fresh(struct cli_ws *w)
{
	uint8_t byte;
	bool fresh = false, retry;
	int fl;

	if (!w->ssl || w->stale)
		return false;
	if (SSL_get_shutdown(w->ssl) & SSL_RECEIVED_SHUTDOWN)
		goto out;
	if (ws_quiet(w))
		return true;
	fl = fcntl(w->fd, F_GETFL);
	if (fl < 0 || fcntl(w->fd, F_SETFL, fl | O_NONBLOCK) < 0)
		goto out;
	retry = SSL_get_mode(w->ssl) & SSL_MODE_AUTO_RETRY;
	SSL_clear_mode(w->ssl, SSL_MODE_AUTO_RETRY);
	for (int i = 0; i < WS_FRESH_READS; i++) {
		size_t got = 0;

		if (SSL_read_ex(w->ssl, &byte, 1, &got) == 1 ||
		    SSL_get_error(w->ssl, 0) != SSL_ERROR_WANT_READ)
			break;
		if (ws_quiet(w)) {
			fresh = true;
			break;
		}
	}
	ERR_clear_error();
	if (retry)
		SSL_set_mode(w->ssl, SSL_MODE_AUTO_RETRY);
	/* Blocking again, as the upgrade and the pump expect. */
	if (fcntl(w->fd, F_SETFL, fl) < 0)
		fresh = false;
out:
	/* Whatever made it so is consumed now: remembered, not seen again. */
	if (!fresh)
		w->stale = true;
	return fresh;
}
