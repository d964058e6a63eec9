/* SQLite backend: connects waiting for the user's answers, and where
 * (store_waits.h). One instance runs on a SQLite data directory, so the
 * rows only ever name it; the same contract as PostgreSQL's keeps the
 * conformance suite alike. */
#include "store/internal.h"
#include "store/store_cluster.h"
#include "store/store_waits.h"

#include <errno.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"

static int purge_expired(struct store *s, int64_t now)
{
	sqlite3_stmt *st = store_prepare(s, "DELETE FROM connect_waits WHERE expires_at <= ?");
	int rc;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 1, now);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return store_rc(rc);
}

int sq_wait_put(struct store *s, const char *id, const char *instance, int64_t now,
		int64_t expires_at)
{
	sqlite3_stmt *st;
	int r, rc;

	if ((r = purge_expired(s, now)) < 0)
		return r;
	if (!(st = store_prepare(
		      s, "INSERT INTO connect_waits (id, instance, expires_at)"
			 " VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
			 " instance = excluded.instance, expires_at = excluded.expires_at")))
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, instance, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, expires_at);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return store_rc(rc);
}

int sq_session_holder(struct store *s, const char *id, int64_t now, char *ret_instance)
{
	sqlite3_stmt *st = store_prepare(
		s, "SELECT instance FROM term_sessions WHERE id = ?1 AND ended_at IS NULL"
		   " AND instance IS NOT NULL UNION ALL SELECT instance FROM connect_waits"
		   " WHERE id = ?1 AND expires_at > ?2 LIMIT 1");
	int rc, r;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(st, 0);

		r = util_strlcpy(ret_instance, v ? v : "", STORE_INSTANCE_NAME_MAX) < 0
			    ? -BERR_STORE
			    : 0;
	} else {
		r = rc == SQLITE_DONE ? -ENOENT : store_rc(rc);
	}
	sqlite3_finalize(st);
	return r;
}

int sq_wait_delete(struct store *s, const char *id)
{
	sqlite3_stmt *st = store_prepare(s, "DELETE FROM connect_waits WHERE id = ?");
	int rc;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return store_rc(rc);
}
