/* PostgreSQL backend: connects waiting for the user's answers, and where
 * (store_waits.h). The id is the primary key: a connect waits on one
 * instance only, and a second put of it (a later round) replaces the row. */
#include "store/pg_internal.h"
#include "store/store_cluster.h"
#include "store/store_waits.h"

#include <errno.h>

#include "core/err.h"

int pg_wait_put(struct store *s, const char *id, const char *instance, int64_t now,
		int64_t expires_at)
{
	struct pg_num n, e;
	const char *purge[] = { pg_num(&n, now) };
	const char *p[] = { id, instance, pg_num(&e, expires_at) };
	int r;

	/* Rows an instance left behind when it died: whoever puts next. */
	if ((r = pg_q(s, NULL, "DELETE FROM connect_waits WHERE expires_at <= $1", 1, purge)) < 0)
		return r;
	return pg_q(s, NULL,
		    "INSERT INTO connect_waits (id, instance, expires_at) VALUES ($1, $2, $3)"
		    " ON CONFLICT (id) DO UPDATE SET instance = excluded.instance,"
		    " expires_at = excluded.expires_at",
		    3, p);
}

int pg_session_holder(struct store *s, const char *id, int64_t now, char *ret_instance)
{
	struct pg_num n;
	const char *p[] = { id, pg_num(&n, now) };
	PGresult *res = NULL;
	int r = pg_row(s, &res,
		       "SELECT instance FROM term_sessions WHERE id = $1 AND ended_at IS NULL"
		       " AND instance IS NOT NULL UNION ALL SELECT instance FROM connect_waits"
		       " WHERE id = $1 AND expires_at > $2 LIMIT 1",
		       2, p);

	if (r == 0 && pg_copy(ret_instance, STORE_INSTANCE_NAME_MAX, pg_val(res, 0, 0)) < 0)
		r = -BERR_STORE;
	PQclear(res);
	return r;
}

int pg_wait_delete(struct store *s, const char *id)
{
	const char *p[] = { id };

	return pg_q(s, NULL, "DELETE FROM connect_waits WHERE id = $1", 1, p);
}
