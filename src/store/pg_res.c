/* PostgreSQL backend: resource groups, resources and the references between
 * them. Same contract as sqlite_res.c. Every write runs in a transaction of
 * its own or inside the caller's (store_res_tx, a savepoint). Two instances
 * writing at once get what one instance gives the second of two requests:
 * a put of the same ID is an upsert (one row, both succeed), a reference to
 * a resource deleted meanwhile is -ENOENT (foreign key), and deleting what
 * another instance just started to reference is -EBUSY.
 *
 * Deleting a vault moves it to the deleted vaults (pg_vaultdel.c), and its
 * ID stays reserved there until it is recovered or purged. */
#include "store/pg_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"

/* 1 when sql (one parameter) answers a row, 0 when not, or an error; with
 * ret_text, the first column of the first row is malloc'd into it. */
static int exists(struct store *s, const char *sql, const char *a, char **ret_text)
{
	const char *p[] = { a };
	PGresult *res = NULL;
	int r = pg_q(s, &res, sql, 1, p);

	if (r == 0) {
		r = PQntuples(res) > 0;
		if (r && ret_text) {
			const char *v = pg_val(res, 0, 0);

			*ret_text = v ? strdup(v) : NULL;
			if (!*ret_text)
				r = -ENOMEM;
		}
	}
	PQclear(res);
	return r;
}

/* ---- groups ---- */

int pg_group_put(struct store *s, const char *name, bool *ret_created)
{
	struct pg_num now;
	const char *p[] = { name, pg_num(&now, store_now()) };
	PGresult *res = NULL;
	int r;

	if (!store_res_name_ok(name))
		return -EINVAL;
	r = pg_row(s, &res,
		   "INSERT INTO groups (name, created_at, updated_at) VALUES ($1, $2, $2)"
		   " ON CONFLICT (name) DO UPDATE SET updated_at = excluded.updated_at"
		   " RETURNING (xmax = 0)",
		   2, p);
	if (r == -ENOENT)
		r = -BERR_STORE;
	if (r == 0 && ret_created)
		*ret_created = pg_val(res, 0, 0) && pg_val(res, 0, 0)[0] == 't';
	PQclear(res);
	return r;
}

int pg_group_exists(struct store *s, const char *name)
{
	int r = exists(s, "SELECT 1 FROM groups WHERE name = $1", name, NULL);

	return r < 0 ? r : r == 1 ? 0 : -ENOENT;
}

static int group_delete_fn(struct store *s, void *ud)
{
	const char *name = ud;
	const char *p[] = { name };
	PGresult *res = NULL;
	int r;

	/* Locked, so that a resource put into it meanwhile waits for us (and
	 * then finds no group) or is seen here. */
	r = exists(s, "SELECT 1 FROM groups WHERE name = $1 FOR UPDATE", name, NULL);
	if (r <= 0)
		return r < 0 ? r : -ENOENT;
	r = exists(s, "SELECT 1 FROM resources WHERE grp = $1 LIMIT 1", name, NULL);
	if (r != 0)
		return r < 0 ? r : -EBUSY;
	r = pg_q(s, &res, "DELETE FROM groups WHERE name = $1", 1, p);
	PQclear(res);
	/* A resource that got in all the same holds the foreign key. */
	return r == -ENOENT ? -EBUSY : r;
}

int pg_group_delete(struct store *s, const char *name)
{
	if (!store_res_name_ok(name))
		return -ENOENT;
	return pg_tx(s, group_delete_fn, (void *)name);
}

int pg_group_foreach(struct store *s, int (*fn)(const char *name, void *ud), void *ud)
{
	PGresult *res = NULL;
	int r = pg_q(s, &res, "SELECT name FROM groups ORDER BY name", 0, NULL);

	for (int i = 0; r == 0 && i < PQntuples(res); i++)
		r = fn(PQgetvalue(res, i, 0), ud);
	PQclear(res);
	return r;
}

int pg_group_blocker(struct store *s, const char *name, char **ret_id)
{
	int r = exists(s, "SELECT id FROM resources WHERE grp = $1 ORDER BY id LIMIT 1", name,
		       ret_id);

	return r < 0 ? r : r == 1 ? 0 : -ENOENT;
}

/* ---- resources ---- */

static int res_put_fn(struct store *s, void *ud)
{
	struct store_res_put *p = ud;
	struct pg_num now;
	const char *row[] = {
		p->id, p->group, p->type, p->name, p->props, pg_num(&now, store_now())
	};
	const char *id[] = { p->id };
	PGresult *res = NULL;
	int r;

	/* Shared-locked: a delete of the group waits for this put. */
	r = exists(s, "SELECT 1 FROM groups WHERE name = $1 FOR SHARE", p->group, NULL);
	if (r <= 0)
		return r < 0 ? r : -ENOENT;
	for (const char *const *ref = p->refs; ref && *ref; ref++) {
		if (strcmp(*ref, p->id) == 0)
			return -EINVAL; /* a resource never points at itself */
		r = exists(s, "SELECT 1 FROM resources WHERE id = $1 FOR SHARE", *ref, NULL);
		if (r <= 0)
			return r < 0 ? r : -ENOENT;
	}
	/* A deleted vault's ID stays reserved until it is recovered or purged. */
	if (strcmp(p->type, "vaults") == 0) {
		r = exists(s, "SELECT 1 FROM resources WHERE id = $1", p->id, NULL);
		if (r == 0)
			r = pg_vault_deleted_reserved(s, p->id, store_now()) == 1 ? -EEXIST : 0;
		if (r < 0)
			return r;
	}
	r = pg_row(s, &res,
		   "INSERT INTO resources (id, grp, type, name, props, created_at, updated_at)"
		   " VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (id) DO UPDATE SET"
		   " props = excluded.props, updated_at = excluded.updated_at RETURNING (xmax = 0)",
		   6, row);
	if (r == 0)
		p->created = pg_val(res, 0, 0) && pg_val(res, 0, 0)[0] == 't';
	PQclear(res);
	if (r < 0)
		return r == -ENOENT ? -ENOENT : r;
	if ((r = pg_q(s, NULL, "DELETE FROM resource_refs WHERE from_id = $1", 1, id)) < 0)
		return r;
	for (const char *const *ref = p->refs; ref && *ref; ref++) {
		const char *q[] = { p->id, *ref };

		r = pg_q(s, NULL,
			 "INSERT INTO resource_refs (from_id, to_id) VALUES ($1, $2)"
			 " ON CONFLICT DO NOTHING",
			 2, q);
		if (r < 0)
			return r;
	}
	return 0;
}

int pg_res_put(struct store *s, const char *group, const char *type, const char *name,
	       const json_t *props, const char *const *refs, bool *ret_created)
{
	return store_res_put_run(s, pg_tx, res_put_fn, group, type, name, props, refs, ret_created);
}

int pg_res_get_db(struct store *s, const char *id, json_t **ret_props)
{
	char *text = NULL;
	int r = exists(s, "SELECT props FROM resources WHERE id = $1", id, &text);

	if (r == 1)
		r = store_res_props_load(text, -BERR_STORE, ret_props);
	else if (r == 0)
		r = -ENOENT;
	free(text);
	return r;
}

static int res_delete_fn(struct store *s, void *ud)
{
	const char *id = ud;
	const char *p[] = { id };
	char *type = NULL;
	int r;

	r = exists(s, "SELECT type FROM resources WHERE id = $1 FOR UPDATE", id, &type);
	if (r <= 0)
		return r < 0 ? r : -ENOENT;
	r = exists(s, "SELECT 1 FROM resource_refs WHERE to_id = $1 LIMIT 1", id, NULL);
	if (r != 0) {
		r = r < 0 ? r : -EBUSY;
		goto out;
	}
	/* Host keys recorded on first use belong to the VM: a new VM of the
	 * same name must not inherit them. */
	if ((r = pg_q(s, NULL, "DELETE FROM host_keys WHERE vm_id = $1", 1, p)) < 0)
		goto out;
	/* A vault is kept for its retention days, recoverable, before the
	 * cascade below takes its live rows. */
	if (strcmp(type, "vaults") == 0 && (r = pg_vault_archive(s, id, store_now())) < 0)
		goto out;
	r = pg_q(s, NULL, "DELETE FROM resources WHERE id = $1", 1, p);
	/* A reference another instance added meanwhile holds the foreign key. */
	if (r == -ENOENT)
		r = -EBUSY;
out:
	free(type);
	return r;
}

int pg_res_delete(struct store *s, const char *id)
{
	if (!id)
		return -ENOENT;
	return pg_tx(s, res_delete_fn, (void *)id);
}

int pg_res_blocker(struct store *s, const char *id, char **ret_id)
{
	int r = exists(
		s, "SELECT from_id FROM resource_refs WHERE to_id = $1 ORDER BY from_id LIMIT 1",
		id, ret_id);

	return r < 0 ? r : r == 1 ? 0 : -ENOENT;
}

/* Calls fn for each row (id, name, props) of the query. */
static int walk(struct store *s, const char *sql, int n, const char *const *p,
		int (*fn)(const char *id, const char *name, json_t *props, void *ud), void *ud)
{
	PGresult *res = NULL;
	int r = pg_q(s, &res, sql, n, p);

	for (int i = 0; r == 0 && i < PQntuples(res); i++) {
		json_t *props = NULL;

		if ((r = store_res_props_load(pg_val(res, i, 2), -BERR_STORE, &props)) < 0)
			break;
		r = fn(PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), props, ud);
		json_decref(props);
	}
	PQclear(res);
	return r;
}

int pg_res_foreach_referrer(struct store *s, const char *id, const char *type,
			    int (*fn)(const char *id, const char *name, json_t *props, void *ud),
			    void *ud)
{
	const char *p[] = { id, type };

	return walk(s,
		    "SELECT r.id, r.name, r.props FROM resource_refs f JOIN resources r"
		    " ON r.id = f.from_id WHERE f.to_id = $1 AND ($2::text IS NULL OR r.type = $2)"
		    " ORDER BY r.id",
		    2, p, fn, ud);
}

int pg_res_foreach_db(struct store *s, const char *group, const char *type,
		      int (*fn)(const char *id, const char *name, json_t *props, void *ud),
		      void *ud)
{
	const char *p[] = { group, type };

	return walk(s,
		    "SELECT id, name, props FROM resources WHERE grp = $1 AND type = $2"
		    " ORDER BY name",
		    2, p, fn, ud);
}

int pg_res_foreach_type_db(struct store *s, const char *type,
			   int (*fn)(const char *id, const char *name, json_t *props, void *ud),
			   void *ud)
{
	const char *p[] = { type };

	return walk(s, "SELECT id, name, props FROM resources WHERE type = $1 ORDER BY id", 1, p,
		    fn, ud);
}

/* FOR UPDATE: a second transaction locking the same row waits for the
 * first to end, then reads what it committed (READ COMMITTED). */
int pg_res_lock(struct store *s, const char *id)
{
	int r = exists(s, "SELECT 1 FROM resources WHERE id = $1 FOR UPDATE", id, NULL);

	return r < 0 ? r : r ? 0 : -ENOENT;
}
