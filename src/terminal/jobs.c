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
