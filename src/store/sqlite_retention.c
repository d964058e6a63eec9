/* SQLite backend: retention (issue 19) — one batch of pruning of the audit
 * trail or of ended terminal session records per transaction. The audit
 * table's delete trigger lets a row go only while audit_prune_gate holds a
 * cutoff newer than the row; the gate row lives inside this transaction
 * only (inserted first, deleted before COMMIT), and SQLite serializes
 * writers, so no other connection ever deletes through it. Also the byte
 * counters of open sessions, written while they run (sq_session_bytes). */
#include "store/internal.h"
#include "store/sqlite_rows.h"

#include <errno.h>

#include "core/err.h"

static int exec_i64(struct store *s, const char *sql, int64_t a, int64_t b, int *ret_changes)
{
	sqlite3_stmt *st = store_prepare(s, sql);

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 1, a);
	if (sqlite3_bind_parameter_count(st) > 1)
		sqlite3_bind_int64(st, 2, b);
	return exec_change(s, st, ret_changes);
}

static int prune_tx(struct store *s, void *ud)
{
	struct store_prune *p = ud;
	sqlite3_stmt *st;
	int r;

	if (p->audit) {
		if ((r = exec_i64(s, "INSERT INTO audit_prune_gate (before) VALUES (?)", p->before,
				  0, NULL)) < 0 ||
		    (r = exec_i64(
			     s,
			     "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE ts < ?1"
			     " ORDER BY id LIMIT ?2)",
			     p->before, p->batch, &p->n)) < 0 ||
		    (r = exec_i64(s, "DELETE FROM audit_prune_gate WHERE before = ?", p->before, 0,
				  NULL)) < 0)
			return r;
		st = store_prepare(s, "SELECT coalesce(min(ts), 0) FROM audit");
	} else {
		if ((r = exec_i64(
			     s,
			     "DELETE FROM term_sessions WHERE id IN (SELECT id FROM term_sessions"
			     " WHERE ended_at IS NOT NULL AND ended_at < ?1 ORDER BY ended_at"
			     " LIMIT ?2)",
			     p->before, p->batch, &p->n)) < 0)
			return r;
		st = store_prepare(s, "SELECT coalesce(min(started_at), 0) FROM term_sessions");
	}
	if (!st)
		return -BERR_STORE;
	if ((r = step_row(st)) == 0)
		p->oldest = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return r;
}

int sq_audit_prune(struct store *s, int64_t before, int batch, int *ret_n, int64_t *ret_oldest)
{
	return store_prune_run(s, store_tx, prune_tx, true, before, batch, ret_n, ret_oldest);
}

int sq_session_prune(struct store *s, int64_t before, int batch, int *ret_n, int64_t *ret_oldest)
{
	return store_prune_run(s, store_tx, prune_tx, false, before, batch, ret_n, ret_oldest);
}

/* ---- a session's byte counters while it is open (issue 19) ---------- */

int sq_session_bytes(struct store *s, const char *id, uint64_t bytes_to_vm, uint64_t bytes_from_vm)
{
	sqlite3_stmt *st =
		prepare_text(s,
			     "UPDATE term_sessions SET bytes_to_vm = ?2, bytes_from_vm = ?3"
			     " WHERE id = ?1 AND ended_at IS NULL",
			     id);

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 2, (int64_t)bytes_to_vm);
	sqlite3_bind_int64(st, 3, (int64_t)bytes_from_vm);
	return exec_change(s, st, NULL);
}
