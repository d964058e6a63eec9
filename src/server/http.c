/* HTTP/1.1 on a connection: the request parser (http-parser with the
 * header table and its caps, in capped buffers), the server's own refusals,
 * the response header block and srv_respond/srv_error, and the hand-over
 * of a complete request to the application (srv_config.on_request). Called
 * by the read pump (pump.c: srv_http_consume) and by the application
 * through srv.h. */
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
	[H_RELAYED] = "x-bastion-relayed",
};

/* The security headers of every answer. Two sets, which differ only where
 * the macro's arguments do: the strict one, and the recordings player's
 * page's (srv_response.player_page). asciinema-player compiles its terminal
 * emulator from WebAssembly bytes, which needs 'wasm-unsafe-eval'
 * (compiling WebAssembly, not evaluating strings as script), and the portal
 * shows that page in an <iframe> of its own origin. docs/security.md says
 * why that is acceptable there. */
#define SRV_SECURITY_HEADERS(script_src, frame_ancestors, frame_options)                \
	"Strict-Transport-Security: max-age=31536000\r\n"                               \
	"Content-Security-Policy: default-src 'self'; script-src " script_src "; "      \
	"style-src 'self'; connect-src 'self'; img-src 'self' data:; font-src 'self'; " \
	"frame-ancestors " frame_ancestors "; base-uri 'none'; form-action 'self'\r\n"  \
	"X-Content-Type-Options: nosniff\r\n"                                           \
	"X-Frame-Options: " frame_options "\r\n"                                        \
	"Referrer-Policy: no-referrer\r\n"

static const char security_headers[] = SRV_SECURITY_HEADERS("'self'", "'none'", "DENY");
static const char player_security_headers[] =
	SRV_SECURITY_HEADERS("'self' 'wasm-unsafe-eval'", "'self'", "SAMEORIGIN");

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
	e = e ?: buf_append_str(h, r->player_page ? player_security_headers : security_headers);
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
		srv_access_log(c, 500, 0);
		c->keep_alive = false;
		c->close_after_write = true;
		if (conn_ssl_write(c, fallback, sizeof(fallback) - 1) < 0)
			conn_close(c);
		else
			conn_flush(c);
		goto out;
	}
	metrics_http_status(r->status);
	srv_access_log(c, r->status, head_only ? 0 : r->len);
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
	c->req_start_ns = uv_hrtime();
	c->principal[0] = '\0';
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

	if (c->field_off < 0)
		c->url_len = buf_len(&c->hbuf);
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

	if (c->field_off < 0)
		c->url_len = buf_len(&c->hbuf);
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
	c->url_len = 0;
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
	buf_init(&c->stash, SRV_MAX_IN);
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
	c->req.relayed = hdr(c, H_RELAYED) != NULL;
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

int srv_relay_request_for_test(const uint8_t *buf, size_t len, struct buf *out)
{
	struct srv_conn *c = calloc(1, sizeof(*c));
	int r = 0;

	if (!c)
		return -ENOMEM;
	conn_bufs_init(c);
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	conn_reset_request(c);
	http_parser_execute(&c->parser, &parser_settings, (const char *)buf, len);
	if (!c->message_done || c->parse_error)
		r = -(c->parse_error ? c->parse_error : 400);
	else if ((r = request_fill(c)) != 0)
		r = -r;
	else
		r = relay_request_bytes(c, out);
	conn_reset_request(c);
	buf_free(&c->hbuf);
	buf_free(&c->body);
	buf_free(&c->stash);
	free(c);
	return r;
}
