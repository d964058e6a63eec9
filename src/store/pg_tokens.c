/* PostgreSQL backend: the API token lifecycle (issue 19), the same
 * contract as sqlite_tokens.c. A revoke is one DELETE ... RETURNING, so
 * that two instances revoking the same token at once answer one success
 * and one -ENOENT. */
#include "store/pg_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

#define TOKEN_COLS                                                       \
	"t.public_id, t.user_id, u.name, t.name, t.scope, t.created_at," \
	" COALESCE(t.last_used_at, 0), t.expires_at, u.disabled"
#define TOKEN_FROM " FROM api_tokens t JOIN users u ON u.id = t.user_id"

static bool fits(const char *v, size_t max)
{
	return v && strlen(v) <= max;
}

static int row_token(const PGresult *res, int i, struct store_token *t)
{
	const char *id = pg_val(res, i, 0), *name = pg_val(res, i, 3);

	memset(t, 0, sizeof(*t));
	if ((id && pg_copy(t->id, sizeof(t->id), id) < 0) ||
	    pg_copy(t->user, sizeof(t->user), pg_val(res, i, 2)) < 0 ||
	    (name && pg_copy(t->name, sizeof(t->name), name) < 0) ||
	    pg_copy(t->scope, sizeof(t->scope), pg_val(res, i, 4)) < 0)
		return -BERR_STORE;
	t->user_id = pg_i64(res, i, 1);
	t->created_at = pg_i64(res, i, 5);
	t->last_used_at = pg_i64(res, i, 6);
	t->expires_at = pg_i64(res, i, 7);
	t->user_disabled = pg_val(res, i, 8) && pg_val(res, i, 8)[0] == 't';
	return 0;
}

int pg_token_insert(struct store *s, const uint8_t hash[32], const struct store_token *t)
{
	struct pg_hash h;
	struct pg_num uid, now, exp;
	const char *p[] = { pg_hash(&h, hash),
			    pg_num(&uid, t->user_id),
			    t->name[0] ? t->name : NULL,
			    pg_num(&now, store_now()),
			    pg_num(&exp, t->expires_at),
			    t->id,
			    t->scope };

	if (strlen(t->id) != STORE_TOKEN_ID_LEN || !fits(t->name, 64) || !t->scope[0] ||
	    !fits(t->scope, sizeof(t->scope) - 1))
		return -EINVAL;
	return pg_q(s, NULL,
		    "INSERT INTO api_tokens (token_hash, user_id, name, created_at, expires_at,"
		    " public_id, scope) VALUES ($1, $2, $3, $4, $5, $6, $7)",
		    7, p);
}

/* With ret_roles, the owner's role assignments come along as JSON text
 * (malloc'd; NULL: none): a request's authorization would read them next,
 * and the cache keeps them with the token (pg_cached.c). */
int pg_token_lookup_db(struct store *s, const uint8_t hash[32], struct store_token *ret,
		       char **ret_roles)
{
	struct pg_hash h;
	const char *p[] = { pg_hash(&h, hash) };
	PGresult *res = NULL;
	int r = pg_row(s, &res,
		       ret_roles ? "SELECT " TOKEN_COLS ", " STORE_PG_ROLES_OF_U TOKEN_FROM
				   " WHERE t.token_hash = $1"
				 : "SELECT " TOKEN_COLS TOKEN_FROM " WHERE t.token_hash = $1",
		       1, p);

	if (r == 0)
		r = row_token(res, 0, ret);
	if (r == 0 && ret_roles && pg_val(res, 0, 9) && !(*ret_roles = strdup(pg_val(res, 0, 9))))
		r = -ENOMEM;
	PQclear(res);
	return r;
}

int pg_token_touch_db(struct store *s, const char *id, int64_t now, int64_t min_gap)
{
	struct pg_num n, g;
	const char *p[] = { id, pg_num(&n, now), pg_num(&g, now - min_gap) };

	if (!fits(id, STORE_TOKEN_ID_LEN))
		return -EINVAL;
	return pg_q(s, NULL,
		    "UPDATE api_tokens SET last_used_at = $2 WHERE public_id = $1"
		    " AND (last_used_at IS NULL OR last_used_at < $3)",
		    3, p);
}

int pg_token_foreach(struct store *s, int64_t user_id, int64_t now,
		     int (*fn)(const struct store_token *t, void *ud), void *ud)
{
	struct pg_num uid, n;
	const char *p[] = { pg_num(&uid, user_id), pg_num(&n, now) };
	PGresult *res = NULL;
	struct store_token t;
	int r = pg_q(s, &res,
		     "SELECT " TOKEN_COLS TOKEN_FROM
		     " WHERE ($1::bigint < 0 OR t.user_id = $1) AND t.expires_at > $2"
		     " ORDER BY t.created_at DESC, t.public_id DESC",
		     2, p);

	for (int i = 0; r == 0 && i < PQntuples(res); i++) {
		if ((r = row_token(res, i, &t)) < 0)
			break;
		r = fn(&t, ud);
	}
	PQclear(res);
	return r < 0 ? r : 0;
}

int pg_token_revoke(struct store *s, const char *id, int64_t user_id, struct store_token *ret)
{
	struct pg_num uid;
	const char *p[] = { id, pg_num(&uid, user_id) };
	PGresult *res = NULL;
	struct store_token t;
	int r;

	if (!fits(id, STORE_TOKEN_ID_LEN))
		return -ENOENT;
	r = pg_row(s, &res,
		   "WITH gone AS (DELETE FROM api_tokens WHERE public_id = $1"
		   " AND ($2::bigint < 0 OR user_id = $2) RETURNING *)"
		   " SELECT t.public_id, t.user_id, u.name, t.name, t.scope, t.created_at,"
		   " COALESCE(t.last_used_at, 0), t.expires_at"
		   " FROM gone t JOIN users u ON u.id = t.user_id",
		   2, p);
	if (r == 0 && (r = row_token(res, 0, &t)) == 0 && ret)
		*ret = t;
	PQclear(res);
	return r;
}
