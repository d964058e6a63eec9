/* The readiness probe (issue 19): GET /readyz (and /api/v1/readyz), for
 * anyone, answers whether this instance can do its work now — the store
 * answers a trivial query (on a worker) and every event loop runs a
 * wake-up posted to it, each within READY_TIMEOUT_MS. 200
 * {"store":"ok","loops":"ok"}, or 503 with what is not: "store":
 * "error" (the query failed) or "timeout", "loops": "timeout" plus
 * "loops_late": how many did not answer. Unlike /healthz (liveness: the
 * process runs its loop), a load balancer takes an instance that is not
 * ready out of rotation without restarting it.
 *
 * The probe's state is shared by the requesting loop (its timer, the
 * answer), a worker (the store query) and every loop (the wake-ups), and
 * freed by whichever of them is last (refs). The answer is given on the
 * requesting loop, when everything answered or at the deadline. */
#include "api/api.h"

#include <stdatomic.h>
#include <stdlib.h>

#include <uv.h>

#include "server/loops.h"
#include "store/store.h"

#define READY_TIMEOUT_MS 1000
#define READY_POLL_MS    10

enum { PENDING = 0, OK = 1, FAILED = 2 };

struct ready {
	struct srv_conn *conn;
	struct store *store;
	uv_timer_t timer;
	uv_work_t work;
	uint64_t started_ms;
	unsigned n_loops;
	atomic_uint loops_answered;
	atomic_int store_state;
	atomic_int refs;
	bool answered;
};

static void unref(struct ready *r)
{
	if (atomic_fetch_sub(&r->refs, 1) == 1)
		free(r);
}

static void on_wakeup(void *arg)
{
	struct ready *r = arg;

	atomic_fetch_add(&r->loops_answered, 1);
	unref(r);
}

static void on_work(uv_work_t *w)
{
	struct ready *r = w->data;
	int64_t n;

	atomic_store(&r->store_state, store_user_count(r->store, &n) == 0 ? OK : FAILED);
}

static void on_work_done(uv_work_t *w, int status)
{
	(void)status;
	unref(w->data);
}

static void on_timer_closed(uv_handle_t *h)
{
	unref(h->data);
}

static void answer(struct ready *r, bool deadline)
{
	int store = atomic_load(&r->store_state);
	unsigned late = r->n_loops - atomic_load(&r->loops_answered);
	const char *store_s = store == OK ? "ok" : store == FAILED ? "error" : "timeout";
	struct api_resp resp = { 0 };
	json_t *body;

	(void)deadline;
	r->answered = true;
	body = json_pack("{s:s, s:s}", "store", store_s, "loops", late ? "timeout" : "ok");
	if (body && late)
		json_object_set_new(body, "loops_late", json_integer(late));
	api_json(&resp, store == OK && !late ? 200 : 503, body);
	if (srv_conn_gone(r->conn))
		srv_release(r->conn);
	else
		api_respond(r->conn, &resp);
	api_resp_done(&resp);
	uv_close((uv_handle_t *)&r->timer, on_timer_closed);
}

static void on_tick(uv_timer_t *t)
{
	struct ready *r = t->data;
	bool done = atomic_load(&r->store_state) != PENDING &&
		    atomic_load(&r->loops_answered) == r->n_loops;

	if (done || uv_now(t->loop) - r->started_ms >= READY_TIMEOUT_MS)
		answer(r, !done);
}

void api_readyz(struct srv_conn *c, struct api_ctx *ctx)
{
	uv_loop_t *loop = srv_conn_loop(c);
	struct ready *r = calloc(1, sizeof(*r));

	if (!r) {
		srv_error(c, 503, "ServiceUnavailable", "the server is busy");
		return;
	}
	r->conn = c;
	r->store = ctx->store;
	r->n_loops = loops_count();
	r->started_ms = uv_now(loop);
	/* One reference for the timer handle, one for the store query. */
	atomic_store(&r->refs, 2);
	uv_timer_init(loop, &r->timer);
	r->timer.data = r;
	r->work.data = r;
	if (uv_queue_work(loop, &r->work, on_work, on_work_done) < 0) {
		atomic_store(&r->store_state, FAILED);
		unref(r);
	}
	for (unsigned i = 0; i < r->n_loops; i++) {
		atomic_fetch_add(&r->refs, 1);
		if (loops_post(i, on_wakeup, r) < 0)
			unref(r); /* a loop that takes no posts stays late */
	}
	uv_timer_start(&r->timer, on_tick, READY_POLL_MS, READY_POLL_MS);
}
