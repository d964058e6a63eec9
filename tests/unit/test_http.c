/* The HTTPS server in process: a real loop on 127.0.0.1, a real TLS client,
 * raw HTTP/1.1 on the wire. */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sodium.h>
#include <uv.h>

#include "api/api.h"
#include "server/internal.h"
#include "server/loops.h"
#include "server/srv.h"
#include "store/store.h"
#include "terminal/term.h"

static char dir[64];
static struct store *st;
static struct api_ctx api;
static struct srv *server;
static uv_async_t stop_async;
static pthread_t thread;
static int port;

/* The application this server is given: the API's handler, and test routes
 * that only this file has, for what no API route provokes. */
#define LATER_MS 10
static uv_timer_t later_timer;
static struct srv_conn *later_conn;
static atomic_int later_outcome; /* 0 waiting, 1 released as gone, 2 answered */
static atomic_int later_seen;    /* the handler has the request */

static void later_tick(uv_timer_t *t)
{
	static const struct srv_response ok = { .status = 200, .body = "later", .len = 5 };
	struct srv_conn *c = later_conn;
	bool gone = srv_conn_gone(c);

	later_conn = NULL;
	if (gone) {
		srv_release(c);
		atomic_store(&later_outcome, 1);
		return;
	}
	atomic_store(&later_outcome, 2); /* before the client can see it */
	srv_respond(c, &ok);
}

static void test_on_request(struct srv_conn *c, const struct srv_request *req, void *ud)
{
	if (strncmp(req->path, "/test/headers/", 14) == 0) {
		/* Header lines of the size asked, in lines of 100 bytes. */
		size_t want = strtoul(req->path + 14, NULL, 10), n = 0;
		char *h = calloc(1, want + 100);
		struct srv_response r = { .status = 200, .body = "ok", .len = 2 };

		assert_non_null(h);
		for (unsigned i = 0; n + 100 <= want; i++)
			n += (size_t)snprintf(h + n, 101, "X-Pad-%04u: %*s\r\n", i, 86, "p");
		r.headers = h;
		srv_respond(c, &r);
		free(h);
		return;
	}
	if (strcmp(req->path, "/test/later") == 0 || strcmp(req->path, "/test/later-gone") == 0) {
		later_conn = c;
		atomic_store(&later_seen, 1);
		/* The connection closes while its answer is pending, as
		 * srv_stop or a failed write closes it. */
		if (strcmp(req->path, "/test/later-gone") == 0)
			conn_close(c);
		uv_timer_start(&later_timer, later_tick, LATER_MS, 0);
		return;
	}
	api_on_request(c, req, ud);
}

static void stopped(void *ud)
{
	uv_close((uv_handle_t *)&later_timer, NULL);
	uv_close((uv_handle_t *)&stop_async, NULL);
	term_done();
	loops_close(0);
}

static void on_stop(uv_async_t *a)
{
	srv_stop(server, stopped, NULL);
}

static void *run_loop(void *arg)
{
	loops_run(0);
	return NULL;
}

static int setup(void **state)
{
	struct srv_config cfg = { .listen = "127.0.0.1:0" };
	struct ssl_ctx_st *ctx;
	int fd;

	if (!tu_tmpdir(dir, sizeof(dir), "http") || tu_store_open(dir, &st) < 0)
		return -1;
	api.store = st;
	cfg.data_dir = dir;
	cfg.on_request = test_on_request;
	cfg.ud = &api;
	if (loops_init(1) < 0 || srv_listen(cfg.listen, &fd, &port) < 0 ||
	    srv_tls_ctx(&cfg, &ctx) < 0)
		return -1;
	if (srv_new(0, &cfg, fd, ctx, &server) < 0)
		return -1;
	SSL_CTX_free(ctx);
	term_init(st);
	uv_async_init(loops_uv(0), &stop_async, on_stop);
	uv_timer_init(loops_uv(0), &later_timer);
	return pthread_create(&thread, NULL, run_loop, NULL) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	uv_async_send(&stop_async);
	pthread_join(thread, NULL);
	loops_free();
	srv_free(server);
	term_free();
	store_free(st);
	tu_rm_tree(dir);
	return 0;
}

struct client {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
};

static int client_open(struct client *c, int max_version)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { .tv_sec = 10 };

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	c->ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_security_level(c->ctx, 0);
	if (max_version) {
		SSL_CTX_set_min_proto_version(c->ctx, max_version);
		SSL_CTX_set_max_proto_version(c->ctx, max_version);
	}
	c->ssl = SSL_new(c->ctx);
	SSL_set_fd(c->ssl, c->fd);
	if (SSL_connect(c->ssl) != 1) {
		ERR_clear_error();
		return -EPROTO;
	}
	return 0;
}

static void client_close(struct client *c)
{
	SSL_free(c->ssl);
	SSL_CTX_free(c->ctx);
	close(c->fd);
}

static void client_send(struct client *c, const char *data, size_t len)
{
	assert_int_equal(SSL_write(c->ssl, data, (int)len), (int)len);
}

/* Reads one response: headers, then Content-Length bytes of body. */
static int client_response(struct client *c, char *out, size_t size)
{
	size_t len = 0;
	const char *cl, *end;
	long body = -1;

	while (len + 1 < size) {
		int n = SSL_read(c->ssl, out + len, (int)(size - len - 1));

		if (n <= 0)
			break;
		len += (size_t)n;
		out[len] = '\0';
		end = strstr(out, "\r\n\r\n");
		if (!end)
			continue;
		cl = strcasestr(out, "content-length:");
		body = cl && cl < end ? strtol(cl + 15, NULL, 10) : 0;
		if (len >= (size_t)(end - out) + 4 + (size_t)body)
			break;
	}
	out[len] = '\0';
	return (int)strtol(out + 9, NULL, 10);
}

static int request(const char *raw, char *out, size_t size)
{
	struct client c;
	int status;

	assert_int_equal(client_open(&c, 0), 0);
	client_send(&c, raw, strlen(raw));
	status = client_response(&c, out, size);
	client_close(&c);
	return status;
}

static void healthz_with_security_headers(void **state)
{
	char out[8192];

	assert_int_equal(
		request("GET /api/v1/healthz HTTP/1.1\r\nHost: x\r\n\r\n", out, sizeof(out)), 200);
	assert_non_null(strstr(out, "{\"status\":\"ok\"}"));
	assert_non_null(strstr(out, "Strict-Transport-Security: max-age="));
	assert_non_null(strstr(out, "Content-Security-Policy: default-src 'self'"));
	assert_non_null(strstr(out, "frame-ancestors 'none'"));
	assert_non_null(strstr(out, "Cache-Control: no-store"));
	assert_null(strstr(out, "unsafe-inline"));
}

static void keep_alive_serves_two(void **state)
{
	static const char req[] = "GET /api/v1/healthz HTTP/1.1\r\nHost: x\r\n\r\n";
	struct client c;
	char out[8192];

	assert_int_equal(client_open(&c, 0), 0);
	/* Both requests in one write: the second waits while the first is served. */
	char two[sizeof(req) * 2];
	snprintf(two, sizeof(two), "%s%s", req, req);
	client_send(&c, two, strlen(two));
	assert_int_equal(client_response(&c, out, sizeof(out)), 200);
	assert_int_equal(client_response(&c, out, sizeof(out)), 200);
	client_close(&c);
}

static void body_over_limit_is_413(void **state)
{
	char out[8192];

	assert_int_equal(
		request("PUT /api/v1/groups/g HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n{",
			out, sizeof(out)),
		413);
	assert_non_null(strstr(out, "\"code\":\"RequestTooLarge\""));
}

static void chunked_body_over_limit_is_413(void **state)
{
	struct client c;
	char out[8192], chunk[70000];
	static const char head[] =
		"PUT /api/v1/groups/g HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";

	assert_int_equal(client_open(&c, 0), 0);
	client_send(&c, head, strlen(head));
	memset(chunk, 'a', sizeof(chunk));
	for (int i = 0; i < 20; i++) {
		char size[32];
		int n = snprintf(size, sizeof(size), "%zx\r\n", sizeof(chunk));

		if (SSL_write(c.ssl, size, n) <= 0 || SSL_write(c.ssl, chunk, sizeof(chunk)) <= 0 ||
		    SSL_write(c.ssl, "\r\n", 2) <= 0)
			break;
	}
	assert_int_equal(client_response(&c, out, sizeof(out)), 413);
	client_close(&c);
}

static void huge_headers_are_431(void **state)
{
	char *raw = malloc(40000), out[8192];
	int n = snprintf(raw, 40000, "GET /api/v1/healthz HTTP/1.1\r\nHost: x\r\nX-Big: ");

	memset(raw + n, 'b', 20000);
	memcpy(raw + n + 20000, "\r\n\r\n", 5);
	assert_int_equal(request(raw, out, sizeof(out)), 431);
	free(raw);
}

static void malformed_is_400(void **state)
{
	char out[8192];

	assert_int_equal(request("GARBAGE\r\n\r\n", out, sizeof(out)), 400);
	assert_non_null(strstr(out, "\"code\":\"InvalidRequest\""));
}

/* The server's own refusals carry the normative error body, byte for byte
 * what the API writes, and close the connection. */
static void server_errors_are_normative(void **state)
{
	char out[8192];

	assert_int_equal(request("GARBAGE\r\n\r\n", out, sizeof(out)), 400);
	assert_non_null(strstr(out, "\r\n\r\n{\"error\":{\"code\":\"InvalidRequest\","
				    "\"message\":\"the request is malformed\"}}"));
	assert_non_null(strstr(out, "Connection: close\r\n"));
	assert_non_null(strstr(out, "Content-Type: application/json\r\n"));
	assert_non_null(strstr(out, "Cache-Control: no-store\r\n"));
	assert_non_null(strstr(out, "Strict-Transport-Security: "));
	assert_int_equal(request("PUT /api/v1/groups/g HTTP/1.1\r\nHost: x\r\n"
				 "Content-Length: 2000000\r\n\r\n",
				 out, sizeof(out)),
			 413);
	assert_non_null(strstr(out, "\r\n\r\n{\"error\":{\"code\":\"RequestTooLarge\","
				    "\"message\":\"the request is larger than allowed\"}}"));
	assert_non_null(strstr(out, "Connection: close\r\n"));
}

/* A response's header block is never cut: up to its cap every line goes
 * out; past it the answer is a 500 with none of them. */
static void response_headers_whole_or_refused(void **state)
{
	static char out[32768];
	const char *sizes[] = { "1000", "6000", "7000" };

	for (size_t i = 0; i < 3; i++) {
		char req[128];
		unsigned lines = (unsigned)strtoul(sizes[i], NULL, 10) / 100;
		char last[32];

		snprintf(req, sizeof(req), "GET /test/headers/%s HTTP/1.1\r\nHost: x\r\n\r\n",
			 sizes[i]);
		assert_int_equal(request(req, out, sizeof(out)), 200);
		snprintf(last, sizeof(last), "X-Pad-%04u: ", lines - 1);
		assert_non_null(strstr(out, last));
		assert_non_null(strstr(out, "Connection: keep-alive\r\n\r\nok"));
	}
	for (size_t i = 0; i < 2; i++) {
		const char *big = i ? "GET /test/headers/100000 HTTP/1.1\r\nHost: x\r\n\r\n"
				    : "GET /test/headers/8200 HTTP/1.1\r\nHost: x\r\n\r\n";

		assert_int_equal(request(big, out, sizeof(out)), 500);
		assert_null(strstr(out, "X-Pad-"));
		assert_non_null(strstr(out, "Connection: close\r\n"));
	}
}

/* An answer given later, from the loop, goes out, and the connection then
 * serves the next request; one whose client left meanwhile only releases
 * the connection (ASan sees the memory go once). */
static void answer_later_or_release(void **state)
{
	static const char later[] = "GET /test/later HTTP/1.1\r\nHost: x\r\n\r\n";
	static const char health[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
	static const char gone[] = "GET /test/later-gone HTTP/1.1\r\nHost: x\r\n\r\n";
	struct client c;
	char out[8192];

	atomic_store(&later_outcome, 0);
	assert_int_equal(client_open(&c, 0), 0);
	client_send(&c, later, strlen(later));
	client_send(&c, health, strlen(health));
	assert_int_equal(client_response(&c, out, sizeof(out)), 200);
	assert_non_null(strstr(out, "\r\n\r\nlater"));
	assert_int_equal(client_response(&c, out, sizeof(out)), 200);
	assert_non_null(strstr(out, "{\"status\":\"ok\"}"));
	client_close(&c);
	assert_int_equal(atomic_load(&later_outcome), 2);

	atomic_store(&later_outcome, 0);
	atomic_store(&later_seen, 0);
	assert_int_equal(client_open(&c, 0), 0);
	client_send(&c, gone, strlen(gone));
	/* Closed once the server has the request: a client's FIN that arrives
	 * with the request may end the connection before it is dispatched. */
	for (int i = 0; i < 1000 && atomic_load(&later_seen) == 0; i++)
		usleep(10000);
	assert_int_equal(atomic_load(&later_seen), 1);
	client_close(&c);
	/* Bounded: the loop's timer gives its outcome after LATER_MS. */
	for (int i = 0; i < 1000 && atomic_load(&later_outcome) == 0; i++)
		usleep(10000);
	assert_int_equal(atomic_load(&later_outcome), 1);
	/* The server still serves. */
	assert_int_equal(request(health, out, sizeof(out)), 200);
}

static void duplicate_host_is_400(void **state)
{
	char out[8192];

	assert_int_equal(request("GET /api/v1/healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", out,
				 sizeof(out)),
			 400);
}

static void unknown_path_404_and_method_405(void **state)
{
	char out[8192];

	assert_int_equal(
		request("GET /api/v1/nothing HTTP/1.1\r\nHost: x\r\n\r\n", out, sizeof(out)), 404);
	assert_int_equal(
		request("DELETE /api/v1/healthz HTTP/1.1\r\nHost: x\r\n\r\n", out, sizeof(out)),
		405);
	assert_non_null(strstr(out, "Allow: GET"));
	assert_non_null(strstr(out, "\"code\":\"MethodNotAllowed\""));
}

static void unauthenticated_is_401(void **state)
{
	char out[8192];

	assert_int_equal(
		request("GET /api/v1/groups HTTP/1.1\r\nHost: x\r\n\r\n", out, sizeof(out)), 401);
	assert_non_null(strstr(out, "\"code\":\"Unauthenticated\""));
}

static void portal_served_with_etag(void **state)
{
	char out[65536], req[256];
	const char *etag, *end;
	char tag[80];

	assert_int_equal(request("GET / HTTP/1.1\r\nHost: x\r\n\r\n", out, sizeof(out)), 200);
	assert_non_null(strstr(out, "text/html"));
	etag = strstr(out, "ETag: ");
	assert_non_null(etag);
	end = strstr(etag, "\r\n");
	snprintf(tag, sizeof(tag), "%.*s", (int)(end - etag - 6), etag + 6);
	snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: x\r\nIf-None-Match: %s\r\n\r\n", tag);
	assert_int_equal(request(req, out, sizeof(out)), 304);
	assert_int_equal(request("GET /nope.js HTTP/1.1\r\nHost: x\r\n\r\n", out, sizeof(out)),
			 404);
	assert_int_equal(request("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", out,
				 sizeof(out)),
			 405);
}

static void old_tls_refused(void **state)
{
	struct client c;

	assert_int_equal(client_open(&c, TLS1_1_VERSION), -EPROTO);
	client_close(&c);
	assert_int_equal(client_open(&c, TLS1_2_VERSION), 0);
	client_close(&c);
}

static void terminal_needs_origin(void **state)
{
	char out[8192];

	/* No credentials at all: 401 comes first. */
	assert_int_equal(
		request("GET /api/v1/sessions/abc/terminal HTTP/1.1\r\nHost: x\r\n"
			"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
			out, sizeof(out)),
		401);
}

/* ---- pipelining (issue 13 item 7) ---- */

struct answer {
	int status;
	long length;
};

/* Reads n responses off c (each: status and Content-Length, the body
 * skipped); returns how many arrived before the stream ended or stalled. */
static int read_answers(struct client *c, struct answer *out, int n)
{
	char head[8192];
	size_t hlen = 0;
	long skip = 0;
	int got = 0;
	char buf[16384];

	while (got < n) {
		int r = SSL_read(c->ssl, buf, sizeof(buf));

		if (r <= 0)
			break;
		for (int i = 0; i < r && got < n;) {
			if (skip > 0) {
				long take = r - i < skip ? r - i : skip;

				skip -= take;
				i += (int)take;
				if (skip == 0)
					got++;
				continue;
			}
			if (hlen + 1 >= sizeof(head))
				return got;
			head[hlen++] = buf[i++];
			head[hlen] = '\0';
			if (hlen >= 4 && memcmp(head + hlen - 4, "\r\n\r\n", 4) == 0) {
				const char *cl = strcasestr(head, "content-length:");

				out[got].status = (int)strtol(head + 9, NULL, 10);
				out[got].length = cl ? strtol(cl + 15, NULL, 10) : 0;
				skip = out[got].length;
				hlen = 0;
				if (skip == 0)
					got++;
			}
		}
	}
	return got;
}

/* Synchronous answers (static files, healthz, 404), answers from a worker
 * (/api/), a body, and a large file sent by reference. */
static const char *const pipe_reqs[] = {
	"GET /api/v1/healthz HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /api/v1/groups HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /favicon.svg HTTP/1.1\r\nHost: x\r\n\r\n",
	"PUT /api/v1/groups/g HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
	"GET /app.js HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /licenses.txt HTTP/1.1\r\nHost: x\r\n\r\n",
};
#define N_PIPE (int)(sizeof(pipe_reqs) / sizeof(pipe_reqs[0]))

/* Sends the pipeline cut at the given offsets (each cut ends a TLS
 * record) and checks every request is answered once, in order. */
static void pipeline_cut(const size_t *cuts, int n_cuts)
{
	static struct answer want[N_PIPE];
	struct answer got[N_PIPE + 1];
	char all[1024];
	size_t len = 0, from = 0;
	struct client c;

	for (int i = 0; i < N_PIPE; i++) {
		size_t n = strlen(pipe_reqs[i]);

		memcpy(all + len, pipe_reqs[i], n);
		len += n;
	}
	if (want[0].status == 0) {
		/* What each request gets on its own connection. */
		for (int i = 0; i < N_PIPE; i++) {
			assert_int_equal(client_open(&c, 0), 0);
			client_send(&c, pipe_reqs[i], strlen(pipe_reqs[i]));
			assert_int_equal(read_answers(&c, &want[i], 1), 1);
			client_close(&c);
		}
		assert_true(want[5].length > 100000); /* app.js: several records */
	}
	assert_int_equal(client_open(&c, 0), 0);
	for (int i = 0; i <= n_cuts; i++) {
		size_t to = i < n_cuts ? cuts[i] : len;

		if (to > from)
			client_send(&c, all + from, to - from);
		from = to;
	}
	assert_int_equal(read_answers(&c, got, N_PIPE), N_PIPE);
	for (int i = 0; i < N_PIPE; i++) {
		assert_int_equal(got[i].status, want[i].status);
		assert_int_equal(got[i].length, want[i].length);
	}
	client_close(&c);
}

static void pipelined_in_one_record(void **state)
{
	pipeline_cut(NULL, 0);
}

/* Two records, cut at every byte: "two requests in one record and one in
 * the next" lost the second. */
static void pipelined_cut_everywhere(void **state)
{
	size_t len = 0;

	for (int i = 0; i < N_PIPE; i++)
		len += strlen(pipe_reqs[i]);
	for (size_t cut = 1; cut < len; cut++)
		pipeline_cut(&cut, 1);
}

/* One record per request, and each request split in two. */
static void pipelined_record_per_request(void **state)
{
	size_t cuts[2 * N_PIPE], off = 0;
	int n = 0;

	for (int i = 0; i < N_PIPE; i++) {
		off += strlen(pipe_reqs[i]);
		cuts[n++] = off;
	}
	pipeline_cut(cuts, n);
	n = 0;
	off = 0;
	for (int i = 0; i < N_PIPE; i++) {
		cuts[n++] = off + strlen(pipe_reqs[i]) / 2;
		off += strlen(pipe_reqs[i]);
		cuts[n++] = off;
	}
	pipeline_cut(cuts, n);
}

struct seen_log {
	char paths[64][32];
	int n;
};

static void note_seen(void *ud, const char *method, const char *path)
{
	struct seen_log *l = ud;

	if (l->n < 64)
		snprintf(l->paths[l->n], sizeof(l->paths[0]), "%s %s", method, path);
	l->n++;
}

/* The pump itself, without TLS: every way of cutting 3 requests into
 * records and of grouping records into arrivals, with every mix of
 * answers at once and from a worker. */
static void pump_every_cut_and_answer_order(void **state)
{
	static const char reqs[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
				   "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
				   "GET /c HTTP/1.1\r\nHost: x\r\n\r\n";
	size_t len = strlen(reqs);

	for (size_t c1 = 0; c1 < len; c1++) {
		for (size_t c2 = c1; c2 < len; c2 += 7) {
			const uint8_t *recs[3] = { (const uint8_t *)reqs,
						   (const uint8_t *)reqs + c1,
						   (const uint8_t *)reqs + c2 };
			size_t lens[3] = { c1, c2 - c1, len - c2 };
			size_t arrive_each[3] = { 1, 1, 1 }, arrive_all[1] = { 3 };

			for (uint64_t async = 0; async < 8; async++) {
				for (int a = 0; a < 2; a++) {
					struct seen_log l = { 0 };

					assert_int_equal(srv_pipeline_for_test(
								 recs, lens, 3,
								 a ? arrive_all : arrive_each,
								 a ? 1 : 3, async, note_seen, &l),
							 3);
					assert_int_equal(l.n, 3);
					assert_string_equal(l.paths[0], "GET /a");
					assert_string_equal(l.paths[1], "POST /b");
					assert_string_equal(l.paths[2], "GET /c");
				}
			}
		}
	}
}

/* ---- header names (issue 13 item 8) ---- */

static void header_name_not_a_token_is_400(void **state)
{
	static const char *const bad[] = {
		"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length : 3\r\n\r\nabc",
		"GET /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding\t: chunked\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost : x\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: x\r\nX Y: z\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: x\r\nX(y): z\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: x\r\nX\"y: z\r\n\r\n",
	};
	char out[8192];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(srv_parse_for_test((const uint8_t *)bad[i], strlen(bad[i])), -400);
		assert_int_equal(request(bad[i], out, sizeof(out)), 400);
	}
	/* Every tchar is allowed. */
	static const char ok[] = "GET /x HTTP/1.1\r\nHost: x\r\nX!#$%&'*+-.^_`|~09az: v\r\n\r\n";
	assert_int_equal(srv_parse_for_test((const uint8_t *)ok, strlen(ok)), 1);
}

/* ---- the relay (issue 15 item 3): the request as it goes on ---- */

static void relayed(const char *in, char *out, size_t size)
{
	struct buf b;

	buf_init(&b, 64 * 1024);
	assert_int_equal(srv_relay_request_for_test((const uint8_t *)in, strlen(in), &b), 0);
	assert_true(buf_len(&b) < size);
	memcpy(out, buf_str(&b), buf_len(&b) + 1);
	buf_free(&b);
}

static void relay_request_as_received(void **state)
{
	char out[8192];

	(void)state;
	/* An upgrade: every header as it came, the query, one mark added;
	 * a client's own mark is not passed on twice. */
	relayed("GET /api/v1/sessions/s1/terminal?x=1&y=%20 HTTP/1.1\r\nHost: h:1\r\n"
		"Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
		"Sec-WebSocket-Key: k==\r\nSec-WebSocket-Version: 13\r\n"
		"Sec-WebSocket-Protocol: bastion.v1\r\nOrigin: https://h:1\r\n"
		"Cookie: a=b; c=d\r\nX-Other: v v\r\nX-Bastion-Relayed: 1\r\n\r\n",
		out, sizeof(out));
	assert_string_equal(out,
			    "GET /api/v1/sessions/s1/terminal?x=1&y=%20 HTTP/1.1\r\nHost: h:1\r\n"
			    "Upgrade: websocket\r\nSec-WebSocket-Key: k==\r\n"
			    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: bastion.v1\r\n"
			    "Origin: https://h:1\r\nCookie: a=b; c=d\r\nX-Other: v v\r\n"
			    "X-Bastion-Relayed: 1\r\nConnection: Upgrade\r\n\r\n");
	/* A chunked body goes on whole with its length, and the link closes
	 * after the answer. */
	relayed("POST /api/v1/sessions/s1/answers HTTP/1.1\r\nHost: h\r\n"
		"Transfer-Encoding: chunked\r\nX-CSRF-Token: t\r\n\r\n"
		"5\r\n{\"a\":\r\n3\r\n[]}\r\n0\r\n\r\n",
		out, sizeof(out));
	assert_string_equal(out, "POST /api/v1/sessions/s1/answers HTTP/1.1\r\nHost: h\r\n"
				 "X-CSRF-Token: t\r\nX-Bastion-Relayed: 1\r\n"
				 "Connection: close\r\nContent-Length: 8\r\n\r\n{\"a\":[]}");
	/* No headers at all, and an empty POST. */
	relayed("POST /p HTTP/1.0\r\n\r\n", out, sizeof(out));
	assert_string_equal(out, "POST /p HTTP/1.1\r\nX-Bastion-Relayed: 1\r\n"
				 "Connection: close\r\nContent-Length: 0\r\n\r\n");
}

/* ---- connection caps (issue 13 item 3) ---- */

static struct sockaddr_storage addr_of(const char *ip)
{
	struct sockaddr_storage ss = { 0 };

	if (strchr(ip, ':')) {
		ss.ss_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&ss)->sin6_addr),
				 1);
	} else {
		ss.ss_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr), 1);
	}
	return ss;
}

static enum limits_refusal take(const char *ip, struct limits_node **n)
{
	struct sockaddr_storage ss = addr_of(ip);

	*n = NULL;
	return limits_acquire((struct sockaddr *)&ss, n);
}

/* Per address: IPv6 by its /64, an IPv4-mapped address as its IPv4 one;
 * a release makes room; the total cap counts every address. */
static void limits_per_address_and_total(void **state)
{
	struct limits_node *a, *b, *c, *d, *e, *f, *g;

	srv_limits_set(2, 0);
	assert_int_equal(take("2001:db8::1", &a), LIMITS_OK);
	assert_int_equal(take("2001:db8::2", &b), LIMITS_OK);
	assert_int_equal(take("2001:db8::ffff:1", &c), LIMITS_PER_ADDRESS); /* same /64 */
	assert_int_equal(take("2001:db8:0:1::1", &c), LIMITS_OK);           /* the next /64 */
	assert_int_equal(take("10.9.8.7", &d), LIMITS_OK);
	assert_int_equal(take("::ffff:10.9.8.7", &e), LIMITS_OK);
	assert_int_equal(take("10.9.8.7", &f), LIMITS_PER_ADDRESS);
	assert_int_equal(take("::ffff:10.9.8.7", &f), LIMITS_PER_ADDRESS);
	limits_release(d);
	assert_int_equal(take("10.9.8.7", &d), LIMITS_OK);
	limits_release(a);
	assert_int_equal(take("2001:db8::3", &a), LIMITS_OK);
	/* The total counts every address: five are held here. */
	srv_limits_set(0, 5);
	assert_int_equal(take("192.0.2.1", &g), LIMITS_TOTAL);
	srv_limits_set(0, 0); /* automatic: half of RLIMIT_NOFILE */
	assert_int_equal(take("192.0.2.1", &g), LIMITS_OK);
	limits_release(g);
	struct limits_node *held[] = { a, b, c, d, e };
	for (size_t i = 0; i < 5; i++)
		limits_release(held[i]);
	limits_release(NULL);
	srv_limits_set(SRV_DEFAULT_CONNS_PER_ADDRESS, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(healthz_with_security_headers),
		cmocka_unit_test(keep_alive_serves_two),
		cmocka_unit_test(body_over_limit_is_413),
		cmocka_unit_test(chunked_body_over_limit_is_413),
		cmocka_unit_test(huge_headers_are_431),
		cmocka_unit_test(malformed_is_400),
		cmocka_unit_test(server_errors_are_normative),
		cmocka_unit_test(response_headers_whole_or_refused),
		cmocka_unit_test(answer_later_or_release),
		cmocka_unit_test(duplicate_host_is_400),
		cmocka_unit_test(unknown_path_404_and_method_405),
		cmocka_unit_test(unauthenticated_is_401),
		cmocka_unit_test(portal_served_with_etag),
		cmocka_unit_test(old_tls_refused),
		cmocka_unit_test(terminal_needs_origin),
		cmocka_unit_test(pipelined_in_one_record),
		cmocka_unit_test(pipelined_cut_everywhere),
		cmocka_unit_test(pipelined_record_per_request),
		cmocka_unit_test(pump_every_cut_and_answer_order),
		cmocka_unit_test(header_name_not_a_token_is_400),
		cmocka_unit_test(relay_request_as_received),
		cmocka_unit_test(limits_per_address_and_total),
	};

	/* As the daemon does (main.c): a client that left makes a write fail,
	 * not the process die. */
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, setup, teardown);
}
