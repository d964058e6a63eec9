/* PostgreSQL backend: role assignments, plain and guarded. The guarded
 * changes (the API's) take one lock for the whole transaction, so that two
 * instances removing the last two Owners at "/" at once cannot both see one
 * left: the second waits for the first's commit and then sees none. */
#include "store/pg_internal.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "core/err.h"

#define PG_LOCK_ROLES 0x62617374696f6e03LL

static bool role_args_fit(const char *id, const char *principal, const char *role,
			  const char *scope)
{
	return store_fits(id, 128) && id[0] && store_fits(principal, 80) && store_fits(role, 32) &&
	       store_fits(scope, 256);
}

/* One statement: two instances putting the same new id at once make one
 * row (the second's insert becomes the update). */
static int role_put_one(struct store *s, const char *id, const char *principal, const char *role,
			const char *scope, bool *ret_created)
{
	struct pg_num now;
	const char *p[] = { id, principal, role, scope, pg_num(&now, store_now()) };
	PGresult *res = NULL;
	int r = pg_row(
		s, &res,
		"INSERT INTO role_assignments (id, principal, role, scope, created_at)"
		" VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET"
		" principal = excluded.principal, role = excluded.role, scope = excluded.scope"
		" RETURNING (xmax = 0)",
		5, p);

	if (r == -ENOENT)
		r = -BERR_STORE;
	if (r == 0 && ret_created)
		*ret_created = pg_val(res, 0, 0) && pg_val(res, 0, 0)[0] == 't';
	PQclear(res);
	return r;
}

int pg_role_put(struct store *s, const char *id, const char *principal, const char *role,
		const char *scope, bool *ret_created)
{
	if (!role_args_fit(id, principal, role, scope))
		return -EINVAL;
	return role_put_one(s, id, principal, role, scope, ret_created);
}

#define ROLE_COLS "id, principal, role, scope, created_at"

static int row_role(const PGresult *res, int i, struct store_role *ra)
{
	if (pg_copy(ra->id, sizeof(ra->id), pg_val(res, i, 0)) < 0 ||
	    pg_copy(ra->principal, sizeof(ra->principal), pg_val(res, i, 1)) < 0 ||
	    pg_copy(ra->role, sizeof(ra->role), pg_val(res, i, 2)) < 0 ||
	    pg_copy(ra->scope, sizeof(ra->scope), pg_val(res, i, 3)) < 0)
		return -BERR_STORE;
	ra->created_at = pg_i64(res, i, 4);
	return 0;
}

static int role_get(struct store *s, const char *id, struct store_role *ret, bool lock)
{
	const char *p[] = { id };
	struct store_role ra;
	PGresult *res = NULL;
	int r;

	if (!store_fits(id, 128))
		return -ENOENT;
	r = pg_row(s, &res,
		   lock ? "SELECT " ROLE_COLS " FROM role_assignments WHERE id = $1 FOR UPDATE"
			: "SELECT " ROLE_COLS " FROM role_assignments WHERE id = $1",
		   1, p);
	if (r == 0 && (r = row_role(res, 0, &ra)) == 0)
		*ret = ra;
	PQclear(res);
	return r;
}

int pg_role_get(struct store *s, const char *id, struct store_role *ret)
{
	return role_get(s, id, ret, false);
}

int pg_role_delete(struct store *s, const char *id)
{
	const char *p[] = { id };
	PGresult *res = NULL;
	int r;

	if (!store_fits(id, 128))
		return -ENOENT;
	r = pg_q(s, &res, "DELETE FROM role_assignments WHERE id = $1", 1, p);
	if (r == 0 && pg_changes(res) == 0)
		r = -ENOENT;
	PQclear(res);
	return r;
}

int pg_role_foreach(struct store *s, int (*fn)(const struct store_role *ra, void *ud), void *ud)
{
	PGresult *res = NULL;
	struct store_role ra;
	int r = pg_q(s, &res, "SELECT " ROLE_COLS " FROM role_assignments ORDER BY id", 0, NULL);

	for (int i = 0; r == 0 && i < PQntuples(res); i++)
		if ((r = row_role(res, i, &ra)) == 0)
			r = fn(&ra, ud);
	PQclear(res);
	return r < 0 ? r : 0;
}

int pg_role_foreach_principal_db(struct store *s, const char *principal,
				 int (*fn)(const char *role, const char *scope, void *ud), void *ud)
{
	const char *p[] = { principal };
	PGresult *res = NULL;
	char role[33], scope[257];
	int r = pg_q(s, &res,
		     "SELECT role, scope FROM role_assignments WHERE principal = $1 ORDER BY id", 1,
		     p);

	for (int i = 0; r == 0 && i < PQntuples(res); i++) {
		if (pg_copy(role, sizeof(role), pg_val(res, i, 0)) < 0 ||
		    pg_copy(scope, sizeof(scope), pg_val(res, i, 1)) < 0)
			r = -BERR_STORE;
		else
			r = fn(role, scope, ud);
	}
	PQclear(res);
	return r < 0 ? r : 0;
}

int pg_role_root_owners(struct store *s, int64_t *ret)
{
	PGresult *res = NULL;
	int r = pg_row(s, &res,
		       "SELECT count(DISTINCT u.id) FROM role_assignments r JOIN users u"
		       " ON r.principal = 'user:' || u.name"
		       " WHERE r.role = 'Owner' AND r.scope = '/' AND NOT u.disabled",
		       0, NULL);

	if (r == -ENOENT)
		r = -BERR_STORE;
	if (r == 0)
		*ret = pg_i64(res, 0, 0);
	PQclear(res);
	return r;
}

struct role_checked {
	const char *id, *principal, *role, *scope, *expect_scope;
	bool is_delete, created;
};

static int role_checked_tx(struct store *s, void *ud)
{
	struct role_checked *p = ud;
	struct pg_num k;
	const char *lock[] = { pg_num(&k, PG_LOCK_ROLES) };
	struct store_role ra;
	int64_t before = 0, after = 0;
	int r;

	if ((r = pg_q(s, NULL, "SELECT pg_advisory_xact_lock($1)", 1, lock)) < 0)
		return r;
	r = role_get(s, p->id, &ra, true);
	if (r < 0 && r != -ENOENT)
		return r;
	if (r == -ENOENT) {
		/* Deleting what is gone already is "not found", not a clash. */
		if (p->expect_scope)
			return p->is_delete ? -ENOENT : -EAGAIN;
	} else if (!p->expect_scope || strcmp(ra.scope, p->expect_scope) != 0) {
		return -EAGAIN;
	}
	if (!p->is_delete && strncmp(p->principal, "user:", 5) == 0) {
		struct store_user u;

		r = pg_user_get(s, p->principal + 5, &u);
		sodium_memzero(&u, sizeof(u));
		if (r == -ENOENT)
			return -ESRCH;
		if (r < 0)
			return r;
	}
	if ((r = pg_role_root_owners(s, &before)) < 0)
		return r;
	if (p->is_delete)
		r = pg_role_delete(s, p->id);
	else
		r = role_put_one(s, p->id, p->principal, p->role, p->scope, &p->created);
	if (r < 0)
		return r;
	if ((r = pg_role_root_owners(s, &after)) < 0)
		return r;
	if (before > 0 && after == 0)
		return -EMLINK;
	return 0;
}

int pg_role_put_checked(struct store *s, const char *id, const char *principal, const char *role,
			const char *scope, const char *expect_scope, bool *ret_created)
{
	struct role_checked p = { .id = id,
				  .principal = principal,
				  .role = role,
				  .scope = scope,
				  .expect_scope = expect_scope };
	int r;

	if (!role_args_fit(id, principal, role, scope))
		return -EINVAL;
	r = pg_tx(s, role_checked_tx, &p);
	if (r < 0)
		return r;
	if (ret_created)
		*ret_created = p.created;
	return 0;
}

int pg_role_delete_checked(struct store *s, const char *id, const char *expect_scope)
{
	struct role_checked p = { .id = id, .expect_scope = expect_scope, .is_delete = true };

	if (!store_fits(id, 128) || !expect_scope)
		return -ENOENT;
	return pg_tx(s, role_checked_tx, &p);
}

/* The caller's transaction, for resources: the plumbing is pg_tx's. */
int pg_res_tx(struct store *s, int (*fn)(struct store *s, void *ud), void *ud)
{
	return pg_tx(s, fn, ud);
}
