/* Listener, TLS over memory BIOs, HTTP/1.1 requests and responses. */
#include "server/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <openssl/err.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/util.h"
#include "server/loops.h"

static const char *const hdr_names[H_COUNT] = {
	[H_HOST] = "host",
	[H_COOKIE] = "cookie",
	[H_AUTHORIZATION] = "authorization",
	[H_CSRF] = "x-csrf-token",
	[H_ORIGIN] = "origin",
	[H_CONTENT_TYPE] = "content-type",
	[H_UPGRADE] = "upgrade",
	[H_CONNECTION] = "connection",
	[H_WS_KEY] = "sec-websocket-key",
	[H_WS_VERSION] = "sec-websocket-version",
	[H_WS_PROTOCOL] = "sec-websocket-protocol",
	[H_IF_NONE_MATCH] = "if-none-match",
};

static const char security_headers[] =
	"Strict-Transport-Security: max-age=31536000\r\n"
	"Content-Security-Policy: default-src 'self'; script-src 'self'; style-src 'self'; "
	"connect-src 'self'; img-src 'self' data:; font-src 'self'; frame-ancestors 'none'; "
	"base-uri 'none'; form-action 'self'\r\n"
	"X-Content-Type-Options: nosniff\r\n"
	"X-Frame-Options: DENY\r\n"
	"Referrer-Policy: no-referrer\r\n";

/* The server of each loop, for connections moving between loops. */
static struct srv *by_loop[LOOPS_MAX];

/* ---------- lifecycle ---------- */

/* A stopping server whose listener and connections are all gone is done:
 * its owner hears so once. */
static void srv_check_stopped(struct srv *s)
{
	void (*done)(void *ud) = s->stop_done;

	if (!s->stopping || s->conns || !s->listener_closed || !done)
		return;
	s->stop_done = NULL;
	done(s->stop_ud);
}

static void conn_link(struct srv *s, struct srv_conn *c)
{
	atomic_fetch_add_explicit(&s->n_conns, 1, memory_order_relaxed);
	c->srv = s;
	c->prev = NULL;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
}

static void conn_unlink(struct srv_conn *c)
{
	atomic_fetch_sub_explicit(&c->srv->n_conns, 1, memory_order_relaxed);
	if (c->prev)
		c->prev->next = c->next;
	else
		c->srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

void conn_maybe_free(struct srv_conn *c)
{
	struct srv *s = c->srv;

	if (c->state != CONN_CLOSING || !c->handles_closed || c->busy_app)
		return;
	conn_unlink(c);
	limits_release(c->limit);
	ws_free(c);
	SSL_free(c->ssl); /* frees both BIOs */
	free(c->stash);
	buf_free(&c->hbuf);
	buf_free(&c->body);
	free(c);
	srv_check_stopped(s);
}

static void on_timer_closed(uv_handle_t *h)
{
	struct srv_conn *c = h->data;

	c->handles_closed = true;
	conn_maybe_free(c);
}

static void on_tcp_closed(uv_handle_t *h)
{
	struct srv_conn *c = h->data;

	uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

void conn_close(struct srv_conn *c)
{
	if (c->state == CONN_CLOSING)
		return;
	if (c->state == CONN_WS)
		ws_gone(c, "the browser connection closed");
	c->state = CONN_CLOSING;
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
}

/* ---------- responses ---------- */

/* The response header block: what is added to it cannot be clamped, only
 * refused (the answer is then a bare 500, which always fits). */
#define SRV_MAX_RESPONSE_HEAD 8192

static int format_head(struct buf *h, const struct srv_conn *c, const struct srv_response *r)
{
	int e = 0;

	e = e
		    ?: buf_printf(h, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n", r->status,
				  http_status_str((enum http_status)r->status), r->len);
	if (r->content_type)
		e = e ?: buf_printf(h, "Content-Type: %s\r\n", r->content_type);
	e = e ?: buf_append_str(h, security_headers);
	if (r->headers)
		e = e ?: buf_append_str(h, r->headers);
	e = e ?: buf_printf(h, "Connection: %s\r\n\r\n", c->keep_alive ? "keep-alive" : "close");
	return e;
}

/* Sends r on c: one TLS flush for the header block and the body (one
 * write), or the body by reference (an embedded asset) as the socket
 * drains (out_ref_continue), the response being done only then. */
static void send_response(struct srv_conn *c, const struct srv_response *r)
{
	static const char fallback[] = "HTTP/1.1 500 Internal Server Error\r\n"
				       "Content-Length: 0\r\nConnection: close\r\n\r\n";
	bool head_only = c->req.method && strcmp(c->req.method, "HEAD") == 0;
	struct buf h;

	buf_init(&h, SRV_MAX_RESPONSE_HEAD);
	/* While draining, every answer is the connection's last. */
	if (c->srv->stopping || r->close)
		c->keep_alive = false;
	if (format_head(&h, c, r) < 0) {
		log_error("a response header block did not fit in %d bytes: answered 500",
			  SRV_MAX_RESPONSE_HEAD);
		metrics_http_status(500);
		c->keep_alive = false;
		c->close_after_write = true;
		if (conn_ssl_write(c, fallback, sizeof(fallback) - 1) < 0)
			conn_close(c);
		else
			conn_flush(c);
		goto out;
	}
	metrics_http_status(r->status);
	if (conn_ssl_write(c, buf_str(&h), buf_len(&h)) < 0 ||
	    (!head_only && r->len && !r->body_static && conn_ssl_write(c, r->body, r->len) < 0)) {
		conn_close(c);
		goto out;
	}
	if (!c->keep_alive)
		c->close_after_write = true;
	if (!head_only && r->len && r->body_static) {
		c->ref_data = r->body;
		c->ref_len = r->len;
		out_ref_continue(c);
		goto out;
	}
	conn_flush(c);
out:
	buf_free(&h);
}

void srv_respond(struct srv_conn *c, const struct srv_response *r)
{
	c->busy_app = false;
	if (c->state == CONN_CLOSING) {
		conn_maybe_free(c);
		return;
	}
	send_response(c, r);
	srv_respond_done(c);
}

void srv_error(struct srv_conn *c, int status, const char *code, const char *message)
{
	struct srv_response r = { .status = status,
				  .content_type = "application/json",
				  .headers = "Cache-Control: no-store\r\n",
				  .close = true };
	struct buf body;

	/* The same bytes as the API's own error bodies (jansson, compact). */
	buf_init(&body, 4096);
	if (buf_printf(&body, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code, message) <
	    0)
		r.status = 500;
	r.body = buf_str(&body);
	r.len = buf_len(&body);
	if (!c->req.method)
		c->req.method = "GET";
	srv_respond(c, &r);
	buf_free(&body);
}

bool srv_conn_gone(const struct srv_conn *c)
{
	return c->state == CONN_CLOSING;
}

void srv_release(struct srv_conn *c)
{
	c->busy_app = false;
	conn_close(c);
	conn_maybe_free(c);
}

/* ---------- requests ---------- */

static const char *hdr(const struct srv_conn *c, enum hdr h)
{
	return c->hdr_off[h] < 0 ? NULL : buf_str(&c->hbuf) + c->hdr_off[h];
}

/* The header block is capped by its buffer: past SRV_MAX_HEADER_BYTES the
 * request is refused (431), never cut. */
static int hbuf_append(struct srv_conn *c, const char *at, size_t len)
{
	int r = buf_append(&c->hbuf, at, len);

	if (r == -E2BIG)
		c->parse_error = 431;
	return r < 0 ? -1 : 0;
}

/* Ends the string being read: the NUL that separates it from the next. */
static int hbuf_end_string(struct srv_conn *c)
{
	return hbuf_append(c, "", 1);
}

static int on_message_begin(http_parser *p)
{
	struct srv_conn *c = p->data;

	conn_reset_request(c);
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	return hbuf_append(p->data, at, len);
}

/* RFC 9110's tchar. http-parser (not strict) lets a space into a header
 * name: "Transfer-Encoding : chunked" would be an unknown header here and
 * the framing header to a proxy that trims it (issue 13). */
static bool is_tchar(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct srv_conn *c = p->data;

	for (size_t i = 0; i < len; i++) {
		if (!is_tchar((unsigned char)at[i])) {
			c->parse_error = 400;
			return -1;
		}
	}

	if (c->in_value || c->field_off < 0) {
		/* A new header begins: close the previous string. */
		if (++c->n_headers > SRV_MAX_HEADERS) {
			c->parse_error = 431;
			return -1;
		}
		if (hbuf_end_string(c) < 0)
			return -1;
		c->field_off = (int)buf_len(&c->hbuf);
		c->in_value = false;
	}
	return hbuf_append(c, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct srv_conn *c = p->data;

	if (!c->in_value) {
		const char *name = buf_str(&c->hbuf) + c->field_off;

		c->cur_hdr = -1;
		for (int i = 0; i < H_COUNT; i++) {
			if (strcasecmp(name, hdr_names[i]) == 0) {
				if (c->hdr_off[i] >= 0) {
					/* A repeated security-relevant header is ambiguous. */
					c->parse_error = 400;
					return -1;
				}
				c->cur_hdr = i;
			}
		}
		if (hbuf_end_string(c) < 0)
			return -1;
		if (c->cur_hdr >= 0)
			c->hdr_off[c->cur_hdr] = (int)buf_len(&c->hbuf);
		c->in_value = true;
	}
	return hbuf_append(c, at, len);
}

static int on_headers_complete(http_parser *p)
{
	struct srv_conn *c = p->data;

	if (hbuf_end_string(c) < 0)
		return -1;
	if ((p->flags & F_CONTENTLENGTH) && p->content_length > SRV_MAX_BODY) {
		c->parse_error = 413;
		return -1;
	}
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct srv_conn *c = p->data;
	int r = buf_append(&c->body, at, len);

	if (r == -E2BIG)
		c->parse_error = 413;
	return r < 0 ? -1 : 0;
}

static int on_message_complete(http_parser *p)
{
	struct srv_conn *c = p->data;

	c->message_done = true;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings parser_settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

void conn_reset_request(struct srv_conn *c)
{
	/* The header block keeps its memory for the next request; the body
	 * (passwords, keys) is wiped and given back. */
	buf_truncate(&c->hbuf, 0);
	c->url_off = 0;
	for (int i = 0; i < H_COUNT; i++)
		c->hdr_off[i] = -1;
	c->cur_hdr = -1;
	c->field_off = -1;
	c->in_value = false;
	c->n_headers = 0;
	buf_reset(&c->body);
	c->message_done = false;
	c->parse_error = 0;
	memset(&c->req, 0, sizeof(c->req));
}

/* A connection's buffers, with their caps (before its first request). */
void conn_bufs_init(struct srv_conn *c)
{
	buf_init(&c->hbuf, SRV_MAX_HEADER_BYTES);
	buf_init_secret(&c->body, SRV_MAX_BODY);
}

static bool header_has_token(const char *value, const char *token)
{
	size_t n = strlen(token);

	for (const char *p = value; p && *p;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		size_t len = strcspn(p, ",");
		size_t trim = len;

		while (trim && (p[trim - 1] == ' ' || p[trim - 1] == '\t'))
			trim--;
		if (trim == n && strncasecmp(p, token, n) == 0)
			return true;
		p += len;
	}
	return false;
}

/* Called once the answer to the current request is on its way. */
void srv_respond_done(struct srv_conn *c)
{
	if (c->state != CONN_BUSY)
		return;
	if (c->ref_len)
		return; /* out_ref_continue calls again once the body is with TLS */
	if (!c->keep_alive)
		return; /* closes once written */
	c->state = CONN_HTTP;
	conn_reset_request(c);
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	uv_timer_start(&c->timer, conn_close_timer, SRV_IDLE_TIMEOUT_MS, 0);
	conn_read_resume(c);
	conn_pump(c);
}

/* Fills c->req from the parsed request: the target split in place into
 * path and query (both stay in hbuf), the known headers, the WebSocket
 * upgrade. Returns 0, or 400 when the request target is malformed. */
static int request_fill(struct srv_conn *c)
{
	struct http_parser_url u;
	char *hb = c->hbuf.data;
	const char *url = buf_str(&c->hbuf);
	char *path, *query = NULL;
	const char *upgrade = hdr(c, H_UPGRADE);

	c->req.method = http_method_str((enum http_method)c->parser.method);
	http_parser_url_init(&u);
	if (http_parser_parse_url(url, strlen(url), 0, &u) != 0 || !(u.field_set & (1 << UF_PATH)))
		return 400;
	path = hb + u.field_data[UF_PATH].off;
	if (u.field_set & (1 << UF_QUERY)) {
		query = hb + u.field_data[UF_QUERY].off;
		query[u.field_data[UF_QUERY].len] = '\0';
	}
	path[u.field_data[UF_PATH].len] = '\0';

	c->req.path = path;
	c->req.query = query;
	c->req.body = buf_str(&c->body);
	c->req.body_len = buf_len(&c->body);
	c->req.cookie = hdr(c, H_COOKIE);
	c->req.authorization = hdr(c, H_AUTHORIZATION);
	c->req.csrf_token = hdr(c, H_CSRF);
	c->req.origin = hdr(c, H_ORIGIN);
	c->req.host = hdr(c, H_HOST);
	c->req.content_type = hdr(c, H_CONTENT_TYPE);
	c->req.ws_protocol = hdr(c, H_WS_PROTOCOL);
	c->req.if_none_match = hdr(c, H_IF_NONE_MATCH);
	c->req.websocket = c->parser.upgrade && upgrade && strcasecmp(upgrade, "websocket") == 0 &&
			   header_has_token(hdr(c, H_CONNECTION), "upgrade") && hdr(c, H_WS_KEY) &&
			   hdr(c, H_WS_VERSION) && strcmp(hdr(c, H_WS_VERSION), "13") == 0 &&
			   c->parser.method == HTTP_GET;
	util_strlcpy(c->req.remote_addr, c->remote, sizeof(c->req.remote_addr));
	return 0;
}

/* A complete request is in c: the server's own refusals are answered
 * here, everything else goes to the application (srv_config.on_request),
 * which owns the answer from then on. */
static void dispatch(struct srv_conn *c)
{
	if (c->test) {
		pump_test_dispatch(c);
		return;
	}
	c->state = CONN_BUSY;
	uv_timer_stop(&c->timer);
	c->keep_alive = http_should_keep_alive(&c->parser) && !c->parser.upgrade;
	c->req.method = http_method_str((enum http_method)c->parser.method);
	if (c->parse_error) {
		srv_error(c, c->parse_error,
			  c->parse_error == 400 ? "InvalidRequest" : "RequestTooLarge",
			  c->parse_error == 400 ? "the request is malformed"
						: "the request is larger than allowed");
		return;
	}
	if (request_fill(c) != 0) {
		srv_error(c, 400, "InvalidRequest", "the request target is malformed");
		return;
	}
	c->busy_app = true;
	c->srv->on_request(c, &c->req, c->srv->ud);
	/* Answered later (a worker, a dial): nothing more is read meanwhile.
	 * An answer given at once has already gone on to the next request. */
	if (c->busy_app && c->state == CONN_BUSY)
		conn_read_pause(c);
}

size_t srv_http_consume(struct srv_conn *c, const uint8_t *buf, size_t len)
{
	size_t n = http_parser_execute(&c->parser, &parser_settings, (const char *)buf, len);
	enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);

	if (c->message_done) {
		dispatch(c);
		return n;
	}
	if (e != HPE_OK && e != HPE_PAUSED) {
		c->state = CONN_BUSY;
		c->req.method = "GET";
		if (!c->parse_error)
			c->parse_error = 400;
		if (c->test) {
			pump_test_dispatch(c);
			return len;
		}
		srv_error(c, c->parse_error,
			  c->parse_error == 400 ? "InvalidRequest" : "RequestTooLarge",
			  c->parse_error == 400 ? "the request is malformed"
						: "the request is larger than allowed");
		return len;
	}
	return n;
}

void conn_close_timer(uv_timer_t *t)
{
	struct srv_conn *c = t->data;

	if (c->state == CONN_HTTP || c->state == CONN_TLS)
		conn_close(c);
}

/* Links c into s with handles on s's loop, which take the socket fd (this
 * thread's). -1 when fd is -1 or cannot be opened: fd is closed then, and
 * c is closing. */
static int conn_take_socket(struct srv *s, struct srv_conn *c, int fd)
{
	conn_link(s, c);
	uv_tcp_init(s->loop, &c->tcp);
	uv_timer_init(s->loop, &c->timer);
	c->tcp.data = c;
	c->timer.data = c;
	if (fd < 0 || uv_tcp_open(&c->tcp, fd) < 0) {
		if (fd >= 0)
			close(fd);
		conn_close(c);
		return -1;
	}
	return 0;
}

/* A new connection on this loop: socket fd (this thread's) is its, and so
 * is its count in limits.c (limit). */
static void conn_open(struct srv *s, int fd, struct limits_node *limit)
{
	struct srv_conn *c = s->stopping ? NULL : calloc(1, sizeof(*c));
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	if (!c) {
		close(fd);
		limits_release(limit);
		return;
	}
	c->limit = limit;
	conn_bufs_init(c);
	if (conn_take_socket(s, c, fd) < 0)
		return;
	uv_tcp_nodelay(&c->tcp, 1);
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET)
			uv_ip4_name((struct sockaddr_in *)&ss, c->remote, sizeof(c->remote));
		else
			uv_ip6_name((struct sockaddr_in6 *)&ss, c->remote, sizeof(c->remote));
	}
	c->ssl = SSL_new(s->ssl_ctx);
	c->rbio = BIO_new(BIO_s_mem());
	c->wbio = out_bio_new(c);
	if (!c->ssl || !c->rbio || !c->wbio) {
		BIO_free(c->rbio);
		BIO_free(c->wbio);
		c->rbio = c->wbio = NULL;
		conn_close(c);
		return;
	}
	BIO_set_mem_eof_return(c->rbio, -1);
	SSL_set_bio(c->ssl, c->rbio, c->wbio);
	SSL_set_accept_state(c->ssl);
	c->state = CONN_TLS;
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	conn_reset_request(c);
	uv_timer_start(&c->timer, conn_close_timer, SRV_HEADER_TIMEOUT_MS, 0);
	conn_read_resume(c);
}

static void dealt_conn(int fd, void *arg)
{
	struct srv *s = by_loop[loops_self()];

	if (fd >= 0)
		conn_open(s, fd, arg);
	else
		limits_release(arg);
}

/* The loop with the fewest connections; this one on a tie. */
static unsigned least_loaded(const struct srv *s)
{
	unsigned best = s->index;
	size_t min = atomic_load_explicit(&s->n_conns, memory_order_relaxed);

	for (unsigned i = 0; i < loops_count(); i++) {
		const struct srv *o = by_loop[i];
		size_t n;

		if (!o || i == s->index)
			continue;
		n = atomic_load_explicit(&o->n_conns, memory_order_relaxed);
		if (n < min) {
			min = n;
			best = i;
		}
	}
	return best;
}

static void on_listen(uv_poll_t *p, int status, int events);

static void on_accept_resume(uv_timer_t *t)
{
	struct srv *s = t->data;

	if (!s->listener_closing)
		uv_poll_start(&s->listener, UV_READABLE, on_listen);
}

/* Out of descriptors (or memory): the connections waiting are refused at
 * once (the client sees the connection close) rather than left to time out
 * in the kernel's queue, with a descriptor kept in reserve for this, as
 * libuv does. Without the reserve, accepting stops for a moment instead of
 * spinning on a listener that stays readable. */
static void refuse_waiting(struct srv *s)
{
	unsigned n = 0;
	int fd;

	if (s->reserve_fd < 0) {
		uv_poll_stop(&s->listener);
		uv_timer_start(&s->accept_pause, on_accept_resume, SRV_ACCEPT_PAUSE_MS, 0);
		log_warn("accept: out of descriptors; accepting again in %d ms",
			 SRV_ACCEPT_PAUSE_MS);
		return;
	}
	close(s->reserve_fd);
	while (n < 1024 && (fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		close(fd);
		n++;
	}
	s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	metrics_conn_refused("descriptors", n);
	log_warn("accept: out of descriptors (RLIMIT_NOFILE) or memory: refused %u connection(s)",
		 n);
}

/* The listener (loop 0's) is readable: accept, and deal each connection to
 * the loop with the fewest (loops_send_fd), so that every loop's
 * descriptor table fills alike. */
static void on_listen(uv_poll_t *p, int status, int events)
{
	struct srv *s = p->data;

	for (int n = 0; n < 64 && !s->stopping; n++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(s->listen_fd, (struct sockaddr *)&ss, &sl,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct limits_node *limit = NULL;
		unsigned to;

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				refuse_waiting(s);
			return; /* EAGAIN, or a connection that went away meanwhile */
		}
		/* Over a cap: closed before anything is read or allocated. */
		if (limits_acquire((struct sockaddr *)&ss, &limit) != LIMITS_OK) {
			close(fd);
			continue;
		}
		to = least_loaded(s);
		if (to != s->index && loops_send_fd(to, fd, dealt_conn, limit) == 0)
			continue;
		conn_open(s, fd, limit);
	}
}

/* ---------- moving a connection to another loop ---------- */

void conn_move_done(struct srv_conn *c, bool client_gone)
{
	srv_moved_fn *cb = c->move_cb;
	void *arg = c->move_arg;

	c->move_cb = NULL;
	c->move_arg = NULL;
	cb(c, client_gone, arg);
}

/* Gives c, whose handles are closed, the socket fd on s's loop (this
 * thread's), and runs its arrived callback there. fd -1: it could not
 * come; the callback hears that the client is gone. */
static void conn_adopt(struct srv *s, struct srv_conn *c, int fd)
{
	c->state = CONN_BUSY;
	conn_move_done(c, conn_take_socket(s, c, fd) < 0);
}

static void move_arrived(int fd, void *arg)
{
	metrics_conn_moved();
	conn_adopt(by_loop[loops_self()], arg, fd);
}

static void on_move_closed(uv_handle_t *h)
{
	struct srv_conn *c = h->data;
	struct srv *from = c->srv;
	unsigned to = c->move_to - 1;
	int fd = c->move_fd, r;

	c->move_to = 0;
	c->move_fd = -1;
	/* After this succeeds, c is the other loop's. */
	if ((r = loops_send_fd(to, fd, move_arrived, c)) == 0) {
		srv_check_stopped(from);
		return;
	}
	log_warn("cannot hand a connection to loop %u: %s", to, err_str(r));
	c->move_failed = true;
	conn_adopt(from, c, fd);
}

static void on_move_tcp_closed(uv_handle_t *h)
{
	struct srv_conn *c = h->data;

	uv_close((uv_handle_t *)&c->timer, on_move_closed);
}

void conn_start_move(struct srv_conn *c)
{
	conn_unlink(c);
	uv_read_stop((uv_stream_t *)&c->tcp);
	uv_timer_stop(&c->timer);
	c->state = CONN_MOVING;
	uv_close((uv_handle_t *)&c->tcp, on_move_tcp_closed);
}

int srv_conn_move(struct srv_conn *c, unsigned to, srv_moved_fn *arrived, void *arg)
{
	uv_os_fd_t fd;

	if (c->move_failed || c->state != CONN_BUSY || to >= loops_count() || !by_loop[to] ||
	    to == c->srv->index)
		return -EAGAIN;
	if (uv_fileno((uv_handle_t *)&c->tcp, &fd) < 0)
		return -EBADF;
	/* The handle closes here; the socket travels as this duplicate. */
	c->move_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (c->move_fd < 0)
		return -errno;
	c->move_to = to + 1;
	c->move_cb = arrived;
	c->move_arg = arg;
	/* An answer still being written goes out first (on_write). */
	if (c->out_pending == 0)
		conn_start_move(c);
	return 0;
}

/* ---------- server ---------- */

int srv_parse_listen(const char *listen, struct sockaddr_storage *ss)
{
	char host[128];
	const char *colon = strrchr(listen, ':');
	int port;
	char *end;

	if (!colon || (size_t)(colon - listen) >= sizeof(host))
		return -EINVAL;
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = '\0';
	errno = 0;
	port = (int)strtol(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || port < 0 || port > 65535)
		return -EINVAL;
	if (host[0] == '[') {
		size_t n = strlen(host);

		if (n < 2 || host[n - 1] != ']')
			return -EINVAL;
		host[n - 1] = '\0';
		return uv_ip6_addr(host + 1, port, (struct sockaddr_in6 *)ss) ? -EINVAL : 0;
	}
	return uv_ip4_addr(host, port, (struct sockaddr_in *)ss) ? -EINVAL : 0;
}

int srv_listen(const char *addr, int *ret_fd, int *ret_port)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len = sizeof(ss);
	int fd, one = 1, r;

	if (srv_parse_listen(addr, &ss) < 0) {
		log_error("listen address '%s' is not ADDR:PORT", addr);
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* As libuv's bind did: a restart may bind while old connections linger. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss,
		 ss.ss_family == AF_INET ? sizeof(struct sockaddr_in)
					 : sizeof(struct sockaddr_in6)) < 0 ||
	    listen(fd, 1024) < 0 || getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		r = -errno;
		log_error("cannot listen on %s: %s", addr, strerror(-r));
		close(fd);
		return r;
	}
	*ret_port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
						  : ((struct sockaddr_in6 *)&ss)->sin6_port);
	*ret_fd = fd;
	return 0;
}

int srv_new(unsigned loop, const struct srv_config *cfg, int listen_fd, struct ssl_ctx_st *ctx,
	    struct srv **ret)
{
	struct srv *s;
	int r;

	if (loop >= loops_count() || by_loop[loop])
		return -EINVAL;
	if (out_method_init() < 0)
		return -ENOMEM;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->loop = loops_uv(loop);
	s->index = loop;
	s->on_request = cfg->on_request;
	s->ud = cfg->ud;
	s->listen_fd = listen_fd;
	s->reserve_fd = -1;
	SSL_CTX_up_ref(ctx);
	s->ssl_ctx = ctx;
	uv_timer_init(s->loop, &s->ping);
	s->ping.data = s;
	s->handles_open = 1;
	if (listen_fd >= 0) {
		if ((r = uv_poll_init_socket(s->loop, &s->listener, listen_fd)) < 0) {
			log_error("cannot accept on the listening socket: %s", uv_strerror(r));
			close(listen_fd);
			uv_close((uv_handle_t *)&s->ping, NULL);
			uv_run(s->loop, UV_RUN_NOWAIT);
			SSL_CTX_free(s->ssl_ctx);
			free(s);
			return r;
		}
		s->listener.data = s;
		s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		uv_timer_init(s->loop, &s->accept_pause);
		s->accept_pause.data = s;
		s->handles_open += 2;
		uv_poll_start(&s->listener, UV_READABLE, on_listen);
	}
	by_loop[loop] = s;
	*ret = s;
	return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
	struct srv *s = h->data;

	if (--s->handles_open > 0)
		return;
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->reserve_fd >= 0)
		close(s->reserve_fd);
	s->listen_fd = s->reserve_fd = -1;
	s->listener_closed = true;
	srv_check_stopped(s);
}

static void close_listener(struct srv *s)
{
	if (s->listener_closing)
		return;
	s->listener_closing = true;
	uv_close((uv_handle_t *)&s->ping, on_listener_closed);
	if (s->listen_fd >= 0) {
		uv_close((uv_handle_t *)&s->listener, on_listener_closed);
		uv_close((uv_handle_t *)&s->accept_pause, on_listener_closed);
	}
}

static void on_ping_tick(uv_timer_t *t)
{
	struct srv *s = t->data;
	struct srv_conn *c, *next;

	for (c = s->conns; c; c = next) {
		next = c->next;
		if (c->state == CONN_WS)
			ws_ping_tick(c, s->ping_ms);
	}
}

void srv_set_browser_ping(struct srv *s, unsigned interval_ms)
{
	if (s->listener_closing || s->ping_ms == interval_ms)
		return;
	s->ping_ms = interval_ms;
	if (interval_ms == 0)
		uv_timer_stop(&s->ping);
	else
		uv_timer_start(&s->ping, on_ping_tick, interval_ms, interval_ms);
}

void srv_drain(struct srv *s, void (*done)(void *ud), void *ud)
{
	struct srv_conn *c, *next;

	if (s->stopping)
		return;
	s->stopping = true;
	s->stop_done = done;
	s->stop_ud = ud;
	close_listener(s);
	for (c = s->conns; c; c = next) {
		next = c->next;
		/* Between requests, or not yet past the handshake: nothing to lose. */
		if (c->state == CONN_TLS || (c->state == CONN_HTTP && buf_len(&c->hbuf) == 0))
			conn_close(c);
	}
}

void srv_stop(struct srv *s, void (*done)(void *ud), void *ud)
{
	struct srv_conn *c, *next;

	if (!s->stopping) {
		s->stopping = true;
		s->stop_done = done;
		s->stop_ud = ud;
	}
	close_listener(s);
	for (c = s->conns; c; c = next) {
		next = c->next;
		conn_close(c);
	}
}

size_t srv_conn_count(const struct srv *s)
{
	return atomic_load_explicit(&s->n_conns, memory_order_relaxed);
}

void srv_set_tls_ctx(struct srv *s, SSL_CTX *ctx)
{
	/* SSL_new took a reference for every open connection: freeing ours
	 * leaves theirs alive. */
	SSL_CTX_free(s->ssl_ctx);
	s->ssl_ctx = ctx;
}

void srv_free(struct srv *s)
{
	if (!s)
		return;
	if (by_loop[s->index] == s)
		by_loop[s->index] = NULL;
	SSL_CTX_free(s->ssl_ctx);
	free(s);
}

uv_loop_t *srv_conn_loop(const struct srv_conn *c)
{
	return c->srv->loop;
}

const char *srv_conn_remote(const struct srv_conn *c)
{
	return c->remote;
}

const char *srv_conn_header(const struct srv_conn *c, int h)
{
	return hdr(c, (enum hdr)h);
}

/* Test seam for tests/fuzz/fuzz_http.c: runs bytes through the request
 * parser exactly as a connection reads them (http-parser with this file's
 * callbacks, the header table and its caps, keep-alive pipelining) and
 * fills each complete request as dispatch would, without a socket, TLS or
 * a worker. Returns how many requests were complete, or -status (400, 413,
 * 431) for the first one refused. */
int srv_parse_for_test(const uint8_t *buf, size_t len)
{
	struct srv_conn *c = calloc(1, sizeof(*c));
	int n = 0, r = 0;

	if (!c)
		return -ENOMEM;
	conn_bufs_init(c);
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	conn_reset_request(c);
	while (len > 0) {
		size_t used =
			http_parser_execute(&c->parser, &parser_settings, (const char *)buf, len);
		enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);

		if (c->message_done) {
			if (c->parse_error || (r = request_fill(c)) != 0) {
				r = -(c->parse_error ? c->parse_error : r);
				break;
			}
			/* What a worker would see: NUL-terminated strings in bounds. */
			if (strlen(c->req.path) >= SRV_MAX_HEADER_BYTES ||
			    buf_len(&c->body) > SRV_MAX_BODY)
				abort();
			n++;
			if (c->parser.upgrade || !http_should_keep_alive(&c->parser))
				break;
			conn_reset_request(c);
			http_parser_init(&c->parser, HTTP_REQUEST);
			c->parser.data = c;
		} else if (e != HPE_OK && e != HPE_PAUSED) {
			r = -(c->parse_error ? c->parse_error : 400);
			break;
		}
		if (used == 0 && !c->message_done)
			break;
		buf += used;
		len -= used;
	}
	conn_reset_request(c);
	buf_free(&c->hbuf);
	free(c);
	return r < 0 ? r : n;
}
