/* The terminal's work on the worker pool: audit records, a session's row
 * in the store (its start, its end), host keys learnt on first use.
 * Called from the loops by the other files of src/terminal (internal.h).
 * Audit records and session rows go through pending.c, which keeps them
 * while the store cannot be reached. */
#include "terminal/internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/util.h"
#include "server/loops.h"
#include "server/srv.h"
#include "store/store.h"
#include "store/store_cluster.h"
#include "store/store_ops.h"
#include "store/store_waits.h"
#include "ssh/sshc.h"
#include "terminal/challenge.h"

/* ---------- audit on the worker pool ---------- */

/* A record for pending.c on its way to a worker. */
struct pend_job {
	uv_work_t work;
	struct pend *p;
};

static void pend_work(uv_work_t *w)
{
	struct pend_job *j = w->data;

	pend_submit(j->p); /* takes it */
	j->p = NULL;
}

static void pend_done(uv_work_t *w, int status)
{
	struct pend_job *j = w->data;

	pend_free(j->p); /* cancelled before it ran */
	free(j);
}

static void queue_pend(struct pend *p)
{
	struct pend_job *j = calloc(1, sizeof(*j));

	if (!j) {
		log_error("store: out of memory recording a %s",
			  p->kind == PEND_AUDIT ? p->action : "session");
		pend_free(p);
		return;
	}
	j->p = p;
	j->work.data = j;
	if (uv_queue_work(term_here()->loop, &j->work, pend_work, pend_done) < 0)
		pend_done(&j->work, 0);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

void term_queue_audit(const char *principal, const char *action, const char *target,
		      const char *result, json_t *detail)
{
	struct pend *p = calloc(1, sizeof(*p));

	if (!p) {
		json_decref(detail);
		return;
	}
	p->kind = PEND_AUDIT;
	/* When it happened: a record kept while the store is away keeps it. */
	p->ts = store_now();
	p->principal = dup_or_null(principal);
	p->action = dup_or_null(action);
	p->target = dup_or_null(target);
	p->result = dup_or_null(result);
	p->detail = detail ? json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(detail);
	if (!p->action) {
		pend_free(p);
		return;
	}
	queue_pend(p);
}

struct hostkey_job {
	uv_work_t work;
	char *vm_id, *type, *b64;
};

static void hostkey_work(uv_work_t *w)
{
	struct hostkey_job *j = w->data;

	if (store_hostkey_add(term_g.store, j->vm_id, j->type, j->b64) < 0)
		log_error("store: cannot record the host key of %s", j->vm_id);
}

static void hostkey_done(uv_work_t *w, int status)
{
	struct hostkey_job *j = w->data;

	free(j->vm_id);
	free(j->type);
	free(j->b64);
	free(j);
}

static void fill_session(struct store_session *ss, const struct sess *s)
{
	util_strlcpy(ss->id, s->id, sizeof(ss->id));
	util_strlcpy(ss->user, s->user, sizeof(ss->user));
	util_strlcpy(ss->vm, s->vm_id, sizeof(ss->vm));
	util_strlcpy(ss->bastion, s->bastion_id, sizeof(ss->bastion));
	util_strlcpy(ss->target, s->target, sizeof(ss->target));
	util_strlcpy(ss->source, s->source, sizeof(ss->source));
	util_strlcpy(ss->auth_type, s->auth_type, sizeof(ss->auth_type));
	util_strlcpy(ss->instance, term_instance_name(), sizeof(ss->instance));
	ss->started_at = s->started;
}

/* A session's row in the store: its start, or its end (the audit record
 * of the end is queued by the caller), written on the worker pool. */
void sess_record(struct sess *s, const char *end_reason)
{
	struct pend *p = calloc(1, sizeof(*p));

	if (!p) {
		log_error("session %s: out of memory recording it", s->id);
		return;
	}
	p->kind = end_reason ? PEND_END : PEND_OPEN;
	fill_session(&p->ss, s);
	if (end_reason) {
		p->ended_at = store_now();
		util_strlcpy(p->reason, end_reason, sizeof(p->reason));
		p->to_vm = atomic_load_explicit(&s->to_vm, memory_order_relaxed);
		p->from_vm = atomic_load_explicit(&s->from_vm, memory_order_relaxed);
	}
	queue_pend(p);
}

void sess_record_attached(struct sess *s)
{
	struct pend *p = calloc(1, sizeof(*p));

	if (!p)
		return;
	p->kind = PEND_ATTACH;
	fill_session(&p->ss, s);
	queue_pend(p);
}

void term_record_host_key(const char *vm_id, const char *type, const char *b64)
{
	struct hostkey_job *j = calloc(1, sizeof(*j));

	if (!j)
		return;
	j->vm_id = strdup(vm_id);
	j->type = strdup(type);
	j->b64 = strdup(b64);
	j->work.data = j;
	if (!j->vm_id || !j->type || !j->b64 ||
	    uv_queue_work(term_here()->loop, &j->work, hostkey_work, hostkey_done) < 0)
		hostkey_done(&j->work, 0);
}

/* ---------- the answer once the registry knows (a shared store) ---------- */

/* How long a connect's row says it waits: a round's answer time, and some
 * slack for the clocks of two instances. Each round writes it again. */
#define WAIT_KEEP_S (SSHC_ANSWER_TIMEOUT_MS / 1000 + 60)

/* A row written on the pool, then the answer given on the loop: behind a
 * balancer without affinity the client's next request (its terminal, its
 * answers, a DELETE) may reach another instance at once, which finds the
 * session, or the connect waiting for answers, only in the store. */
struct announce_job {
	uv_work_t work;
	struct pend *p; /* the session's start; NULL: a wait row */
	bool forget;    /* delete the wait row instead */
	char id[48];    /* the session (connect) id */
	char instance[STORE_INSTANCE_NAME_MAX];
	struct srv_conn *http; /* answered once the row is written; may be NULL */
	int status;
	json_t *body; /* touched on the loop only */
};

static void announce_work(uv_work_t *w)
{
	struct announce_job *j = w->data;
	int64_t now = store_now();
	int r;

	if (j->p) {
		pend_submit(j->p); /* takes it: written, or kept for later */
		j->p = NULL;
		return;
	}
	if (j->forget) {
		/* Failing leaves a row that expires: harmless, it only points. */
		(void)store_wait_delete(term_g.store, j->id);
		return;
	}
	r = store_wait_put(term_g.store, j->id, j->instance, now, now + WAIT_KEEP_S);
	if (r < 0)
		log_warn("store: cannot record where sign-in %s waits for answers (%s): only this "
			 "instance can take them",
			 j->id, err_str(r));
}

static void announce_done(uv_work_t *w, int status)
{
	struct announce_job *j = w->data;

	if (j->http)
		term_respond_json(j->http, j->status, j->body);
	else
		json_decref(j->body);
	pend_free(j->p);
	free(j);
}

/* Queues j; when that fails, does its part here, late but not lost. */
static void announce_queue(struct announce_job *j)
{
	j->work.data = j;
	if (uv_queue_work(term_here()->loop, &j->work, announce_work, announce_done) < 0) {
		announce_work(&j->work);
		announce_done(&j->work, 0);
	}
}

static struct announce_job *announce_new(const struct sess *s, struct srv_conn *http, int status,
					 json_t *body)
{
	struct announce_job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	util_strlcpy(j->id, s->id, sizeof(j->id));
	util_strlcpy(j->instance, term_instance_name(), sizeof(j->instance));
	j->http = http;
	j->status = status;
	j->body = body;
	return j;
}

void sess_announce_open(struct sess *s, struct srv_conn *http, int status, json_t *body)
{
	struct announce_job *j;
	struct pend *p;

	if (!term_cluster_shared() || !(j = announce_new(s, http, status, body))) {
		term_respond_json(http, status, body);
		sess_record(s, NULL);
		return;
	}
	if (!(p = calloc(1, sizeof(*p)))) {
		free(j);
		term_respond_json(http, status, body);
		sess_record(s, NULL);
		return;
	}
	p->kind = PEND_OPEN;
	fill_session(&p->ss, s);
	j->p = p;
	announce_queue(j);
}

void sess_announce_wait(struct sess *s, struct srv_conn *http, int status, json_t *body)
{
	struct announce_job *j;

	if (!term_cluster_shared() || !(j = announce_new(s, http, status, body))) {
		term_respond_json(http, status, body);
		return;
	}
	s->wait_recorded = true;
	announce_queue(j);
}

void sess_wait_forget(struct sess *s)
{
	struct announce_job *j;

	if (!s->wait_recorded)
		return;
	s->wait_recorded = false;
	if ((j = announce_new(s, NULL, 0, NULL))) {
		j->forget = true;
		announce_queue(j);
	}
}
