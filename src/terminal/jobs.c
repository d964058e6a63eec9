/* The terminal's work on the worker pool: audit records, a session's row
 * in the store (its start, its end), host keys learnt on first use.
 * Called from the loops by the other files of src/terminal (internal.h). */
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

struct audit_job {
	uv_work_t work;
	char *principal, *action, *target, *result, *detail;
};

static void audit_work(uv_work_t *w)
{
	struct audit_job *j = w->data;

	if (store_audit(term_g.store, j->principal, j->action, j->target, j->result, j->detail) < 0)
		log_error("audit: cannot record %s", j->action);
}

static void audit_done(uv_work_t *w, int status)
{
	struct audit_job *j = w->data;

	free(j->principal);
	free(j->action);
	free(j->target);
	free(j->result);
	free(j->detail);
	free(j);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

void term_queue_audit(const char *principal, const char *action, const char *target,
		      const char *result, json_t *detail)
{
	struct audit_job *j = calloc(1, sizeof(*j));

	if (!j) {
		json_decref(detail);
		return;
	}
	j->principal = dup_or_null(principal);
	j->action = dup_or_null(action);
	j->target = dup_or_null(target);
	j->result = dup_or_null(result);
	j->detail = detail ? json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(detail);
	j->work.data = j;
	if (uv_queue_work(term_here()->loop, &j->work, audit_work, audit_done) < 0)
		audit_done(&j->work, 0);
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

/* A session's row in the store: its start, or its end (with the audit
 * record of the end), written on the worker pool. */
struct rec_job {
	uv_work_t work;
	struct store_session ss;
	bool end;
	bool attached; /* only that a terminal is attached (the listing of other instances) */
	int64_t ended_at;
	char reason[160];
	uint64_t to_vm, from_vm;
};

static void rec_work(uv_work_t *w)
{
	struct rec_job *j = w->data;
	int r;

	if (j->attached) {
		/* The start's job may run after this one, on another worker:
		 * the row is made here too (the start then leaves it). */
		r = store_session_open(term_g.store, &j->ss);
		if (r == 0)
			r = store_session_attached(term_g.store, j->ss.id);
	} else if (!j->end) {
		r = store_session_open(term_g.store, &j->ss);
	} else {
		r = store_session_end(term_g.store, &j->ss, j->ended_at, j->reason, j->to_vm,
				      j->from_vm);
	}
	if (r < 0)
		log_error("store: cannot record the %s of session %s: %s",
			  j->attached ? "attach"
			  : j->end    ? "end"
				      : "start",
			  j->ss.id, err_str(r));
}

static void rec_done(uv_work_t *w, int status)
{
	free(w->data);
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

void sess_record(struct sess *s, const char *end_reason)
{
	struct rec_job *j = calloc(1, sizeof(*j));

	if (!j) {
		log_error("session %s: out of memory recording it", s->id);
		return;
	}
	fill_session(&j->ss, s);
	if (end_reason) {
		j->end = true;
		j->ended_at = store_now();
		util_strlcpy(j->reason, end_reason, sizeof(j->reason));
		j->to_vm = atomic_load_explicit(&s->to_vm, memory_order_relaxed);
		j->from_vm = atomic_load_explicit(&s->from_vm, memory_order_relaxed);
	}
	j->work.data = j;
	if (uv_queue_work(term_here()->loop, &j->work, rec_work, rec_done) < 0)
		free(j);
}

void sess_record_attached(struct sess *s)
{
	struct rec_job *j = calloc(1, sizeof(*j));

	if (!j)
		return;
	fill_session(&j->ss, s);
	j->attached = true;
	j->work.data = j;
	if (uv_queue_work(term_here()->loop, &j->work, rec_work, rec_done) < 0)
		free(j);
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
