/* PostgreSQL backend: retention (issue 19), as sqlite_retention.c. The
 * audit trigger function lets a DELETE through only for rows older than
 * the cutoff this transaction sets for itself (set_config(..., true)).
 * Several instances share the database: each batch first takes a
 * transaction-level advisory lock without waiting; an instance that does
 * not get it prunes nothing this time (another one is at it), so that two
 * never prune at once. Also the byte counters of open sessions
 * (pg_session_bytes). */
#include "store/pg_internal.h"

#include <errno.h>

#include "core/err.h"

/* The advisory lock's key: "bastion retention" as a number of our own. */
#define PRUNE_LOCK "7310455122701"

static int prune_tx(struct store *s, void *ud)
{
	struct store_prune *p = ud;
	struct pg_num b, n;
	const char *params[] = { pg_num(&b, p->before), pg_num(&n, p->batch) };
	PGresult *res = NULL;
	const char *v;
	bool locked;
	int r;

	r = pg_row(s, &res, "SELECT pg_try_advisory_xact_lock(" PRUNE_LOCK ")", 0, NULL);
	v = r == 0 ? pg_val(res, 0, 0) : NULL;
	locked = v && v[0] == 't';
	PQclear(res);
	res = NULL;
	if (r < 0)
		return r;
	if (!locked)
		return 0; /* another instance is pruning */
	if (p->audit) {
		if ((r = pg_q(s, NULL, "SELECT set_config('bastion.audit_prune_before', $1, true)",
			      1, params)) < 0 ||
		    (r = pg_q(s, &res,
			      "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE ts < $1"
			      " ORDER BY id LIMIT $2)",
			      2, params)) < 0)
			goto out;
		p->n = pg_changes(res);
		PQclear(res);
		res = NULL;
		r = pg_row(s, &res, "SELECT coalesce(min(ts), 0) FROM audit", 0, NULL);
	} else {
		if ((r = pg_q(s, &res,
			      "DELETE FROM term_sessions WHERE id IN (SELECT id FROM term_sessions"
			      " WHERE ended_at IS NOT NULL AND ended_at < $1 ORDER BY ended_at"
			      " LIMIT $2)",
			      2, params)) < 0)
			goto out;
		p->n = pg_changes(res);
		PQclear(res);
		res = NULL;
		r = pg_row(s, &res, "SELECT coalesce(min(started_at), 0) FROM term_sessions", 0,
			   NULL);
	}
	if (r == 0)
		p->oldest = pg_i64(res, 0, 0);
out:
	PQclear(res);
	return r;
}

int pg_audit_prune(struct store *s, int64_t before, int batch, int *ret_n, int64_t *ret_oldest)
{
	return store_prune_run(s, pg_tx, prune_tx, true, before, batch, ret_n, ret_oldest);
}

int pg_session_prune(struct store *s, int64_t before, int batch, int *ret_n, int64_t *ret_oldest)
{
	return store_prune_run(s, pg_tx, prune_tx, false, before, batch, ret_n, ret_oldest);
}

/* ---- a session's byte counters while it is open (issue 19) ---------- */

int pg_session_bytes(struct store *s, const char *id, uint64_t bytes_to_vm, uint64_t bytes_from_vm)
{
	struct pg_num t, f;
	const char *p[] = { id, pg_num(&t, (int64_t)bytes_to_vm),
			    pg_num(&f, (int64_t)bytes_from_vm) };

	return pg_q(s, NULL,
		    "UPDATE term_sessions SET bytes_to_vm = $2, bytes_from_vm = $3"
		    " WHERE id = $1 AND ended_at IS NULL",
		    3, p);
}
