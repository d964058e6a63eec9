/* The server's request handler (api_on_request, given to server/ in
 * struct srv_config): where each request goes, on the loop thread — the
 * liveness probe answered at once, API calls queued to a worker
 * (api_handle) and their answers sent back or their continuation run, the
 * portal's embedded files, GET /metrics as the API call it is. Also
 * api_respond(), which turns a struct api_resp into the server's response.
 * Called by server/ (api_on_request) and by the continuations of
 * terminal/ (api_respond); nothing here blocks. */
#include "api/api.h"
#include "terminal/term.h"

#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"
#include "api/assets.h"
#include "store/store.h"

/* The extra header lines of an API answer; more is refused (500), never
 * cut. */
#define API_MAX_HEADER_BYTES 6144

static const char no_store[] = "Cache-Control: no-store\r\n";

void api_respond(struct srv_conn *c, struct api_resp *resp)
{
	struct srv_response r = { .status = resp->status, .headers = no_store };
	struct buf h;
	char *body = NULL;

	buf_init(&h, API_MAX_HEADER_BYTES);
	if (resp->n_headers) {
		int e = buf_append_str(&h, no_store);

		for (int i = 0; i < resp->n_headers && !e; i++)
			e = buf_printf(&h, "%s\r\n", resp->headers[i]);
		if (e < 0) {
			log_error("the header lines of a %d answer did not fit in %d bytes",
				  resp->status, API_MAX_HEADER_BYTES);
			api_error(resp, 500, "InternalError", "the answer could not be formed");
			buf_reset(&h);
		} else {
			r.headers = buf_str(&h);
		}
		r.status = resp->status;
	}
	if (resp->raw) {
		r.content_type = resp->raw_type;
		r.body = resp->raw;
		r.len = resp->raw_len;
	} else if (resp->body) {
		body = json_dumps(resp->body, JSON_COMPACT);
		if (body) {
			r.content_type = "application/json";
			r.body = body;
			r.len = strlen(body);
		}
	}
	srv_respond(c, &r);
	free(body);
	buf_free(&h);
	api_resp_done(resp);
}

/* An API call on the worker pool, and its answer. */
struct api_job {
	uv_work_t work;
	struct srv_conn *conn;
	struct api_ctx *ctx;
	struct srv_request req;
	struct api_resp resp;
};

static void on_work(uv_work_t *w)
{
	struct api_job *j = w->data;

	api_handle(j->ctx, &j->req, &j->resp);
}

static void on_after_work(uv_work_t *w, int status)
{
	struct api_job *j = w->data;
	struct srv_conn *c = j->conn;
	api_next_fn *next = j->resp.next;
	void *arg = j->resp.next_arg;

	(void)status;
	srv_conn_set_principal(c, j->resp.principal);
	if (next) {
		/* The continuation owns arg and the answer from here: it runs
		 * once, now, also for a client that left (to free arg). */
		api_resp_done(&j->resp);
		free(j);
		next(c, srv_conn_gone(c), arg);
		return;
	}
	if (srv_conn_gone(c))
		srv_release(c);
	else
		api_respond(c, &j->resp);
	api_resp_done(&j->resp);
	free(j);
}

static void queue_call(struct srv_conn *c, const struct srv_request *sr, const char *path,
		       struct api_ctx *ctx)
{
	struct api_job *j = calloc(1, sizeof(*j));

	if (!j) {
		srv_error(c, 503, "ServiceUnavailable", "the server is busy");
		return;
	}
	j->conn = c;
	j->ctx = ctx;
	j->work.data = j;
	/* The server's request as it is, with the path below /api/v1; its
	 * strings live until the answer is given. */
	j->req = *sr;
	j->req.path = path;
	if (uv_queue_work(srv_conn_loop(c), &j->work, on_work, on_after_work) < 0) {
		free(j);
		srv_error(c, 503, "ServiceUnavailable", "the server is busy");
	}
}

static void serve_asset(struct srv_conn *c, const struct srv_request *req)
{
	const struct asset *a = assets_find(req->path);
	static const char nf[] = "not found\n";
	struct srv_response r = { 0 };
	struct buf extra;

	if (!a) {
		r = (struct srv_response){ .status = 404,
					   .content_type = "text/plain; charset=utf-8",
					   .body = nf,
					   .len = sizeof(nf) - 1 };
		srv_respond(c, &r);
		return;
	}
	buf_init(&extra, 512);
	if (buf_printf(&extra, "Cache-Control: no-cache\r\nETag: %s\r\n", a->etag) < 0) {
		srv_error(c, 500, "InternalError", "the file could not be served");
		goto out;
	}
	r.headers = buf_str(&extra);
	/* Only the player's document gets the policy it needs (http.c). */
	r.player_page = strcmp(a->path, "/player.html") == 0;
	if (req->if_none_match && strcmp(req->if_none_match, a->etag) == 0) {
		r.status = 304;
		srv_respond(c, &r);
		goto out;
	}
	/* By reference: a client asking for it again and again without
	 * reading costs no copy of it (issue 13). */
	r.status = 200;
	r.content_type = a->content_type;
	r.body = a->data;
	r.len = a->len;
	r.body_static = true;
	srv_respond(c, &r);
out:
	buf_free(&extra);
}

void api_on_request(struct srv_conn *c, const struct srv_request *req, void *ud)
{
	const char *path = req->path;

	/* GET /metrics is at the root (where Prometheus looks) but is an API
	 * call like any other: authenticated on a worker. */
	if (strcmp(path, "/metrics") == 0)
		path = "/api/v1/metrics";
	/* The liveness probe is answered here, on the loop: it needs nothing
	 * from the store, and must not queue behind a burst of work on the
	 * pool (a thousand connects at once, measured in faults.test.mjs). */
	if ((strcmp(path, "/api/v1/healthz") == 0 || strcmp(path, "/healthz") == 0) &&
	    strcmp(req->method, "GET") == 0) {
		struct api_resp resp = { 0 };
		struct api_ctx *ctx = ud;

		/* 503 while the instance drains, cannot renew its lease in the
		 * store, or cannot reach the store at all, so that a balancer
		 * sends new connections elsewhere (SPEC §6). Flags only: this
		 * never waits for the database. */
		if (term_cluster_draining())
			api_json(&resp, 503, json_pack("{s:s}", "status", "draining"));
		else if (term_cluster_store_lost() ||
			 (ctx && ctx->store && !store_reachable(ctx->store)))
			api_json(&resp, 503, json_pack("{s:s}", "status", "store unreachable"));
		else
			api_json(&resp, 200, json_pack("{s:s}", "status", "ok"));
		api_respond(c, &resp);
		return;
	}
	/* The readiness probe (ready.c): the store and every loop, checked
	 * from here without authentication. */
	if ((strcmp(path, "/api/v1/readyz") == 0 || strcmp(path, "/readyz") == 0) &&
	    strcmp(req->method, "GET") == 0) {
		api_readyz(c, ud);
		return;
	}
	if (strncmp(path, "/api/", 5) == 0) {
		queue_call(c, req, path, ud);
		return;
	}
	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
		srv_error(c, 405, "MethodNotAllowed", "only GET and HEAD are allowed here");
		return;
	}
	serve_asset(c, req);
}
