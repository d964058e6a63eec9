/* SQLite backend for store_audit_at: an audit record with its own time,
 * written once when asked (store.h). One statement, so the check and the
 * insert are atomic; the stderr copy comes from the connection's hooks
 * (sqlite_ops.c) as for any audit insert. */
#include "store/internal.h"

#include "core/err.h"

int sq_audit_at(struct store *s, int64_t ts, bool once, const char *principal, const char *action,
		const char *target, const char *result, const char *detail)
{
	sqlite3_stmt *st = store_prepare(
		s, "INSERT INTO audit (ts, principal, action, target, result, detail)"
		   " SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE NOT ?7 OR NOT EXISTS (SELECT 1 FROM audit"
		   " WHERE ts = ?1 AND principal IS ?2 AND action = ?3 AND target IS ?4"
		   " AND result IS ?5 AND detail IS ?6)");
	int rc;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 1, ts);
	sqlite3_bind_text(st, 2, principal, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, action, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, target, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, result, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, detail, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 7, once);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return store_rc(rc);
}
