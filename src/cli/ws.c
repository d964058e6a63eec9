/* The CLI's WebSocket client for the native client's stream (ws.h): TCP and
 * TLS made ahead of the request (so that `bastion tunnel` keeps one warm),
 * the HTTP upgrade written by hand, then the stream pumped with poll(2)
 * against local file descriptors. Local input is framed and masked by
 * wsout.c and the bastion's frames read by wsin.c; wslay only sends the
 * CLI's control frames (the eof, pongs, the close).
 *
 * Caps: the answer's head is at most WS_HEAD_MAX bytes and an error body
 * WS_BODY_MAX; a text message from the bastion at most CLI_WSIN_MSG_MAX
 * (binary ones are passed on as they come, never gathered). Local input
 * is read only while less than WS_QUEUE_HIGH bytes wait to be sent, so a
 * slow bastion or VM slows the local reader instead of growing memory. */
#include "cli/ws.h"

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
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sodium.h>
#include <wslay/wslay.h>

#include "cli/cli.h"
#include "cli/wsin.h"
#include "cli/wsout.h"
#include "core/util.h"

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

void cli_ws_accept_key(const char *key, char *out, size_t size)
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	unsigned char md[EVP_MAX_MD_SIZE], b64[64];
	char in[128];
	unsigned int mdlen = 0;

	snprintf(in, sizeof(in), "%s%s", key, guid);
	EVP_Digest(in, strlen(in), md, &mdlen, EVP_sha1(), NULL);
	EVP_EncodeBlock(b64, md, (int)mdlen);
	util_strlcpy(out, (const char *)b64, size);
}

static void print_ssl_error(const char *what)
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
		print_ssl_error("cannot set up TLS");
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
			print_ssl_error("cannot load the trusted certificates");
			goto fail;
		}
	}
	w->fd = tcp_connect(name, port);
	if (w->fd < 0)
		goto fail;
	w->ssl = SSL_new(w->ctx);
	if (!w->ssl || SSL_set_fd(w->ssl, w->fd) != 1) {
		print_ssl_error("cannot set up TLS");
		goto fail;
	}
	is_ip = inet_pton(AF_INET, name, &a4) == 1 || inet_pton(AF_INET6, name, &a6) == 1;
	if (!t->insecure) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(w->ssl);

		if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, name) != 1
			  : SSL_set1_host(w->ssl, name) != 1) {
			print_ssl_error("cannot set the name to check");
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
			print_ssl_error("the TLS handshake failed");
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

static int ssl_write_all(struct cli_ws *w, const char *p, size_t n)
{
	while (n > 0) {
		int r = SSL_write(w->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);

		if (r <= 0)
			return -EIO;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* The value of header name in head (lines "Name: value\r\n"), copied. */
static bool header_value(const char *head, const char *name, char *out, size_t size)
{
	size_t n = strlen(name);

	for (const char *l = strstr(head, "\r\n"); l; l = strstr(l, "\r\n")) {
		const char *v, *e;

		l += 2;
		if (strncasecmp(l, name, n) != 0 || l[n] != ':')
			continue;
		v = l + n + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		e = strstr(v, "\r\n");
		if (!e || (size_t)(e - v) >= size)
			return false;
		memcpy(out, v, (size_t)(e - v));
		out[e - v] = '\0';
		return true;
	}
	return false;
}

static int print_error_answer(struct cli_ws *w, long status, const char *head, uint8_t *body,
			      size_t have)
{
	char len_text[32];
	long want = 0;
	json_t *j, *err;

	if (header_value(head, "Content-Length", len_text, sizeof(len_text)) &&
	    cli_parse_int(len_text, 0, WS_BODY_MAX, &want) == 0) {
		while ((long)have < want) {
			int r = SSL_read(w->ssl, body + have, (int)(want - (long)have));

			if (r <= 0)
				break;
			have += (size_t)r;
		}
	}
	j = json_loadb((const char *)body, have, 0, NULL);
	err = json_object_get(j, "error");
	if (json_is_string(json_object_get(err, "code")) &&
	    json_is_string(json_object_get(err, "message"))) {
		cli_print_error(stderr, json_string_value(json_object_get(err, "code")),
				json_string_value(json_object_get(err, "message")));
	} else {
		char what[32];

		snprintf(what, sizeof(what), "HTTP %ld", status);
		cli_print_error(stderr, what, "the server answered without an error body");
	}
	json_decref(j);
	return cli_exit_for_status(status);
}

/* ---- wslay's callbacks ------------------------------------------------- */

static ssize_t ws_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
		       void *ud)
{
	struct cli_ws *w = ud;
	int r = SSL_write(w->ssl, data, len > INT32_MAX ? INT32_MAX : (int)len), e;

	if (r > 0)
		return r;
	e = SSL_get_error(w->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	w->failed = true;
	ERR_clear_error();
	wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	return -1;
}

static int ws_genmask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *ud)
{
	randombytes_buf(buf, len);
	return 0;
}

static void close_out(struct cli_ws *w)
{
	struct stat st;

	if (w->out_closed)
		return;
	w->out_closed = true;
	/* A socket keeps its read side (the local client may still send);
	 * a pipe or file is closed so that its reader sees the end. */
	if (fstat(w->out_fd, &st) == 0 && S_ISSOCK(st.st_mode))
		shutdown(w->out_fd, SHUT_WR);
	else
		close(w->out_fd);
}

static void on_control(struct cli_ws *w, const uint8_t *msg, size_t len)
{
	json_t *j = json_loadb((const char *)msg, len, 0, NULL);
	const char *type = json_string_value(json_object_get(j, "type"));
	const char *text = json_string_value(json_object_get(j, "reason"));

	if (!type) {
		/* Not ours to act on. */
	} else if (strcmp(type, "eof") == 0) {
		w->peer_eof = true;
		close_out(w);
	} else if (strcmp(type, "closed") == 0 && text) {
		util_strlcpy(w->reason, text, sizeof(w->reason));
	} else if (strcmp(type, "warning") == 0 || strcmp(type, "error") == 0) {
		text = json_string_value(json_object_get(j, "message"));
		if (text)
			cli_print_error(stderr, type, text);
	}
	json_decref(j);
}

/* Writes the VM's bytes gathered from a read to the local side at once.
 * A local reader that went away leaves nothing more to carry: the stream
 * is closed. */
static void out_flush(struct cli_ws *w, struct iovec *iov, int *niov)
{
	int n = *niov, i = 0;

	*niov = 0;
	if (w->out_closed || w->write_failed)
		return;
	while (i < n) {
		ssize_t r = writev(w->out_fd, iov + i, n - i);
		size_t done;

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			w->write_failed = true;
			wslay_event_queue_close(w->ws, WSLAY_CODE_NORMAL_CLOSURE, NULL, 0);
			return;
		}
		/* A short write: on from where it stopped. */
		for (done = (size_t)r; i < n && done >= iov[i].iov_len; i++)
			done -= iov[i].iov_len;
		if (i < n) {
			iov[i].iov_base = (uint8_t *)iov[i].iov_base + done;
			iov[i].iov_len -= done;
		}
	}
}

/* Plaintext into w->rbuf: what came with the answer's head first, then
 * records while TLS has them, up to WS_READ_MAX. 0 when nothing was
 * readable (or it ended: w->closed, w->failed). */
static size_t read_plain(struct cli_ws *w)
{
	size_t have = 0;

	if (w->left_off < w->left_len) {
		have = w->left_len - w->left_off < WS_READ_MAX ? w->left_len - w->left_off
							       : WS_READ_MAX;
		memcpy(w->rbuf, w->left + w->left_off, have);
		w->left_off += have;
		return have;
	}
	while (have < WS_READ_MAX) {
		size_t got = 0;
		int e;

		if (SSL_read_ex(w->ssl, w->rbuf + have, WS_READ_MAX - have, &got) == 1) {
			have += got;
			continue;
		}
		e = SSL_get_error(w->ssl, 0);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
			/* The connection ended without a close frame. */
			if (!w->closed)
				w->failed = true;
			w->closed = true;
		}
		ERR_clear_error();
		break;
	}
	return have;
}

/* Reads what the bastion sent and acts on it: its bytes to out_fd (one
 * writev per read), control messages, pings answered, the close. */
static void ws_read(struct cli_ws *w)
{
	struct iovec iov[WS_READ_IOV];
	int niov = 0;
	size_t len = read_plain(w), off = 0;

	while (off < len) {
		struct cli_wsin_event ev;

		off += cli_wsin_read(&w->in, w->rbuf + off, len - off, &ev);
		if (ev.type == CLI_WSIN_BINARY) {
			if (niov == WS_READ_IOV)
				out_flush(w, iov, &niov);
			iov[niov++] = (struct iovec){ (void *)ev.data, ev.len };
			continue;
		}
		/* What came before goes first (an eof closes the output). */
		out_flush(w, iov, &niov);
		if (ev.type == CLI_WSIN_TEXT) {
			on_control(w, ev.data, ev.len);
		} else if (ev.type == CLI_WSIN_PING) {
			struct wslay_event_msg pong = { WSLAY_PONG, ev.data, ev.len };

			(void)wslay_event_queue_msg(w->ws, &pong);
		} else if (ev.type == CLI_WSIN_CLOSE) {
			w->closed = true;
			(void)wslay_event_queue_close(w->ws, WSLAY_CODE_NORMAL_CLOSURE, NULL, 0);
		} else if (ev.type == CLI_WSIN_ERROR) {
			fprintf(stderr, "bastion: the bastion sent %s\n", ev.why);
			w->failed = w->closed = true;
		}
	}
	out_flush(w, iov, &niov);
}

static const struct wslay_event_callbacks ws_callbacks = {
	.send_callback = ws_send,
	.genmask_callback = ws_genmask,
};

/* spare: the connection waited since cli_ws_dial; its end before the
 * bastion answered anything is CLI_WS_CLOSED, said nowhere (ws.h). */
static int ws_upgrade(struct cli_ws *w, const char *path, bool spare)
{
	char *req = malloc(WS_REQUEST_MAX), key[32], accept[64], got[64], proto[64];
	uint8_t raw[16], *head = malloc(WS_HEAD_MAX + WS_BODY_MAX + 1);
	size_t have = 0, hlen;
	char *end = NULL;
	long status;
	int n, r = CLI_ECONN;

	if (!req || !head) {
		fprintf(stderr, "bastion: out of memory\n");
		goto out;
	}
	randombytes_buf(raw, sizeof(raw));
	EVP_EncodeBlock((unsigned char *)key, raw, sizeof(raw));
	n = snprintf(req, WS_REQUEST_MAX,
		     "GET %s/api/v1%s HTTP/1.1\r\n"
		     "Host: %s\r\n"
		     "User-Agent: bastion-cli\r\n"
		     "Upgrade: websocket\r\n"
		     "Connection: Upgrade\r\n"
		     "Sec-WebSocket-Key: %s\r\n"
		     "Sec-WebSocket-Version: 13\r\n"
		     "Sec-WebSocket-Protocol: " WS_PROTOCOL "\r\n"
		     "Authorization: Bearer %s\r\n\r\n",
		     w->prefix, path, w->host, key, w->token);
	if (n < 0 || n >= WS_REQUEST_MAX) {
		fprintf(stderr, "bastion: the request is too long\n");
		r = CLI_EUSAGE;
		goto out;
	}
	if (ssl_write_all(w, req, (size_t)n) < 0) {
		if (spare) {
			ERR_clear_error();
			r = CLI_WS_CLOSED;
			goto out;
		}
		print_ssl_error("the connection to the bastion failed");
		goto out;
	}
	while (!end) {
		int got_n;

		if (have >= WS_HEAD_MAX) {
			fprintf(stderr, "bastion: the answer's head is too long\n");
			r = CLI_ESERVER;
			goto out;
		}
		got_n = SSL_read(w->ssl, head + have, (int)(WS_HEAD_MAX - have));
		if (got_n <= 0) {
			if (spare && have == 0) {
				ERR_clear_error();
				r = CLI_WS_CLOSED;
				goto out;
			}
			print_ssl_error("the bastion closed the connection before answering");
			goto out;
		}
		have += (size_t)got_n;
		head[have] = '\0';
		end = memmem(head, have, "\r\n\r\n", 4);
	}
	hlen = (size_t)(end - (char *)head) + 4;
	end[2] = '\0'; /* the head keeps its last CRLF for header_value */
	if (sscanf((char *)head, "HTTP/1.%*c %ld", &status) != 1) {
		fprintf(stderr, "bastion: the bastion answered something else than HTTP\n");
		r = CLI_ESERVER;
		goto out;
	}
	if (status != 101) {
		/* The body follows the head; the buffer has room for WS_BODY_MAX. */
		r = print_error_answer(w, status, (const char *)head, head + hlen, have - hlen);
		goto out;
	}
	cli_ws_accept_key(key, accept, sizeof(accept));
	if (!header_value((char *)head, "Sec-WebSocket-Accept", got, sizeof(got)) ||
	    strcmp(got, accept) != 0 ||
	    !header_value((char *)head, "Sec-WebSocket-Protocol", proto, sizeof(proto)) ||
	    strcmp(proto, WS_PROTOCOL) != 0) {
		fprintf(stderr, "bastion: the bastion's WebSocket answer is not valid\n");
		r = CLI_ESERVER;
		goto out;
	}
	if (have > hlen) {
		if (!(w->left = malloc(have - hlen))) {
			fprintf(stderr, "bastion: out of memory\n");
			goto out;
		}
		memcpy(w->left, head + hlen, have - hlen);
		w->left_len = have - hlen;
	}
	if (wslay_event_context_client_init(&w->ws, &ws_callbacks, w) != 0) {
		fprintf(stderr, "bastion: out of memory\n");
		goto out;
	}
	r = CLI_OK;
out:
	if (req) {
		sodium_memzero(req, WS_REQUEST_MAX); /* it held the token */
		free(req);
	}
	free(head);
	return r;
}

int cli_ws_upgrade(struct cli_ws *w, const char *path)
{
	return ws_upgrade(w, path, false);
}

int cli_ws_upgrade_spare(struct cli_ws *w, const char *path)
{
	return ws_upgrade(w, path, true);
}

/* ---- the pump ------------------------------------------------------------ */

int cli_ws_pump(struct cli_ws *w, int in_fd, int out_fd, int stop_fd)
{
	bool in_eof = false, stopped = false;
	int r = CLI_OK, fl;

	if (cli_wsout_init(&w->out, w->ssl) < 0 || !(w->rbuf = malloc(WS_READ_MAX))) {
		fprintf(stderr, "bastion: out of memory\n");
		return CLI_ECONN;
	}
	w->out_fd = out_fd;
	fl = fcntl(w->fd, F_GETFL);
	fcntl(w->fd, F_SETFL, fl | O_NONBLOCK);
	/* The first frames may already be in hand (read with the head). */
	while (w->left_off < w->left_len && !w->closed)
		ws_read(w);
	while (!w->closed && !w->failed) {
		struct pollfd p[3];
		nfds_t np = 0;
		int sock_i, in_i = -1, stop_i = -1, fr;
		bool pending = cli_wsout_pending(&w->out);
		/* A batch at a time: the socket's buffer is the queue. */
		bool want_in = !in_eof && !w->write_failed && !pending &&
			       !wslay_event_want_write(w->ws) &&
			       wslay_event_get_queued_msg_length(w->ws) < WS_QUEUE_HIGH &&
			       !wslay_event_get_close_sent(w->ws);

		sock_i = (int)np;
		p[np++] = (struct pollfd){ .fd = w->fd,
					   .events = (short)(POLLIN | (pending ? POLLOUT : 0)) };
		if (want_in) {
			in_i = (int)np;
			p[np++] = (struct pollfd){ .fd = in_fd, .events = POLLIN };
		}
		if (stop_fd >= 0) {
			stop_i = (int)np;
			p[np++] = (struct pollfd){ .fd = stop_fd, .events = POLLIN };
		}
		/* What OpenSSL already holds (read ahead) needs no wait. */
		if (!SSL_has_pending(w->ssl) && poll(p, np, -1) < 0) {
			if (errno == EINTR)
				continue;
			r = CLI_ECONN;
			break;
		}
		if (stop_i >= 0 && p[stop_i].revents) {
			stopped = true;
			/* Frames in the buffer are whole: the close follows them. */
			wslay_event_queue_close(w->ws, WSLAY_CODE_GOING_AWAY, NULL, 0);
			wslay_event_send(w->ws);
			cli_wsout_flush(&w->out, w->fd);
			break;
		}
		if (SSL_has_pending(w->ssl) || p[sock_i].revents & (POLLIN | POLLHUP | POLLERR))
			ws_read(w);
		if (in_i >= 0 && p[in_i].revents) {
			ssize_t n = cli_wsout_read(&w->out, w->ssl, in_fd);

			if (n == -EIO) {
				w->failed = true;
				break;
			}
			if (n == 0 || (n < 0 && n != -EINTR && n != -EAGAIN)) {
				/* The end of local input: a half-close, the VM reads EOF. */
				static const char eof[] = "{\"type\":\"eof\"}";
				struct wslay_event_msg m = { WSLAY_TEXT_FRAME, (const uint8_t *)eof,
							     sizeof(eof) - 1 };

				in_eof = true;
				if (wslay_event_queue_msg(w->ws, &m) != 0)
					break;
			}
		}
		/* wslay's frames (pongs, the eof, the close) go after the batch
		 * in the same buffer, in order. */
		if (wslay_event_want_write(w->ws) && wslay_event_send(w->ws) != 0)
			break;
		fr = cli_wsout_flush(&w->out, w->fd);
		if (fr < 0) {
			w->failed = true;
			break;
		}
	}
	cli_wsout_free(&w->out);
	if (stopped)
		return CLI_OK;
	if (w->reason[0] && strcmp(w->reason, WS_NORMAL_END) != 0) {
		cli_print_error(stderr, "SessionEnded", w->reason);
		return CLI_EAPI;
	}
	if (w->failed && !w->reason[0] && !(in_eof && w->peer_eof)) {
		fprintf(stderr, "bastion: the connection to the bastion was lost\n");
		return CLI_ECONN;
	}
	return r;
}

void cli_ws_free(struct cli_ws *w)
{
	if (!w)
		return;
	if (w->ws)
		wslay_event_context_free(w->ws);
	if (w->ssl)
		SSL_free(w->ssl);
	if (w->ctx)
		SSL_CTX_free(w->ctx);
	if (w->fd >= 0)
		close(w->fd);
	util_free_secret(w->token);
	cli_wsout_free(&w->out);
	cli_wsin_free(&w->in);
	free(w->rbuf);
	free(w->left);
	free(w);
}
