/* PostgreSQL backend: OpenID Connect sign-in rows (store_oidc.h): pending
 * flows and CLI codes, taken once by whichever instance asks first, and
 * the provider identity of a user. */
#include "store/pg_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"

int pg_oidc_pending_put(struct store *s, const char *key, const char *kind, const char *data,
			int64_t expires_at, int64_t now, int64_t max_rows)
{
	struct pg_num e, n;
	const char *del[] = { pg_num(&n, now) };
	const char *p[] = { key, kind, data, pg_num(&e, expires_at) };
	PGresult *res = NULL;
	int r;

	if (!store_fits(key, STORE_OIDC_KEY_MAX) || !key[0] || !store_fits(kind, 16) ||
	    !store_fits(data, STORE_OIDC_DATA_MAX))
		return -EINVAL;
	/* Flows abandoned half-way would otherwise stay for ever. */
	if ((r = pg_q(s, NULL, "DELETE FROM oidc_pending WHERE expires_at <= $1", 1, del)) < 0)
		return r;
	/* Two instances may both pass the count at once: the cap bounds the
	 * table, it need not be exact. */
	if ((r = pg_row(s, &res, "SELECT COUNT(*) FROM oidc_pending", 0, NULL)) < 0)
		return r;
	r = pg_i64(res, 0, 0) >= max_rows ? -ENOSPC : 0;
	PQclear(res);
	if (r < 0)
		return r;
	return pg_q(s, NULL,
		    "INSERT INTO oidc_pending (key, kind, data, expires_at)"
		    " VALUES ($1, $2, $3, $4)",
		    4, p);
}

int pg_oidc_pending_take(struct store *s, const char *key, const char *kind, int64_t now,
			 char **ret_data)
{
	const char *p[] = { key, kind };
	PGresult *res = NULL;
	char *copy;
	int r;

	if (!store_fits(key, STORE_OIDC_KEY_MAX) || !store_fits(kind, 16))
		return -ENOENT;
	/* One statement deletes and answers: of two instances taking the
	 * same key at once, one gets the row. */
	r = pg_row(s, &res,
		   "DELETE FROM oidc_pending WHERE key = $1 AND kind = $2"
		   " RETURNING data, expires_at",
		   2, p);
	if (r == 0 && pg_i64(res, 0, 1) <= now)
		r = -ENOENT;
	if (r == 0) {
		copy = strdup(pg_val(res, 0, 0) ? pg_val(res, 0, 0) : "");
		if (!copy)
			r = -ENOMEM;
		else
			*ret_data = copy;
	}
	PQclear(res);
	return r;
}

int pg_oidc_link_get(struct store *s, int64_t user_id, char ret_issuer[STORE_OIDC_ISS_MAX + 1],
		     char ret_subject[STORE_OIDC_SUB_MAX + 1])
{
	struct pg_num u;
	const char *p[] = { pg_num(&u, user_id) };
	PGresult *res = NULL;
	int r = pg_row(s, &res, "SELECT issuer, subject FROM oidc_links WHERE user_id = $1", 1, p);

	if (r == 0 && (pg_copy(ret_issuer, STORE_OIDC_ISS_MAX + 1, pg_val(res, 0, 0)) < 0 ||
		       pg_copy(ret_subject, STORE_OIDC_SUB_MAX + 1, pg_val(res, 0, 1)) < 0))
		r = -BERR_STORE;
	PQclear(res);
	return r;
}

int pg_oidc_link_add(struct store *s, int64_t user_id, const char *issuer, const char *subject)
{
	struct pg_num u, t;
	const char *p[] = { pg_num(&u, user_id), issuer, subject, pg_num(&t, (int64_t)time(NULL)) };

	if (!store_fits(issuer, STORE_OIDC_ISS_MAX) || !store_fits(subject, STORE_OIDC_SUB_MAX))
		return -EINVAL;
	return pg_q(s, NULL,
		    "INSERT INTO oidc_links (user_id, issuer, subject, created_at)"
		    " VALUES ($1, $2, $3, $4)",
		    4, p);
}

static int user_create_tx(struct store *s, void *ud)
{
	struct store_oidc_user *u = ud;
	struct pg_num t;
	const char *p[] = { u->name, u->hash, pg_num(&t, (int64_t)time(NULL)) };
	PGresult *res = NULL;
	int r;

	r = pg_row(s, &res,
		   "INSERT INTO users (name, password_hash, disabled, created_at, updated_at)"
		   " VALUES ($1, $2, false, $3, $3) RETURNING id",
		   3, p);
	if (r < 0)
		return r;
	u->id = pg_i64(res, 0, 0);
	PQclear(res);
	r = pg_oidc_link_add(s, u->id, u->issuer, u->subject);
	return r == -EEXIST ? -EALREADY : r;
}

int pg_oidc_user_create(struct store *s, const char *name, const char *password_hash,
			const char *issuer, const char *subject, int64_t *ret_id)
{
	return store_oidc_user_create_run(s, pg_tx, user_create_tx, name, password_hash, issuer,
					  subject, ret_id);
}
