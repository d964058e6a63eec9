/* SQLite backend: resource groups, resources and the references between
 * them (tables groups, resources, resource_refs of migration 1).
 *
 * Every write runs in a transaction of its own, or joins the caller's one
 * (store_res_tx) through a savepoint, so that a check and the write it
 * guards cannot be separated by another writer. Comparisons are SQLite's
 * BINARY collation: case-sensitive, byte order. */
#include "store/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

/* ---- plumbing ---- */

int sq_res_tx(struct store *s, int (*fn)(struct store *s, void *ud), void *ud)
{
	sqlite3 *db = store_db(s);
	int r;

	if (!db)
		return -BERR_STORE;
	if (sqlite3_get_autocommit(db))
		return store_tx(s, fn, ud);
	/* Already inside a transaction: a savepoint makes this call's writes
	 * all-or-nothing without ending the caller's transaction. */
	if (sqlite3_exec(db, "SAVEPOINT store_res", NULL, NULL, NULL) != SQLITE_OK)
		return -BERR_STORE;
	r = fn(s, ud);
	if (r >= 0 && sqlite3_exec(db, "RELEASE store_res", NULL, NULL, NULL) == SQLITE_OK)
		return r;
	sqlite3_exec(db, "ROLLBACK TO store_res", NULL, NULL, NULL);
	sqlite3_exec(db, "RELEASE store_res", NULL, NULL, NULL);
	return r < 0 ? r : -BERR_STORE;
}

/* The error for a failed sqlite3_step(): never 0. */
static int step_err(int rc)
{
	int r = store_rc(rc);

	return r < 0 ? r : -BERR_STORE;
}

/* Runs sql with up to three text parameters (NULL binds SQL NULL) and
 * reports whether it produced a row: 1, 0, or a store error. With
 * ret_text, the first column of the first row is malloc'd into it. */
static int query(struct store *s, const char *sql, const char *a, const char *b, const char *c,
		 char **ret_text)
{
	sqlite3_stmt *st = store_prepare(s, sql);
	const char *args[3] = { a, b, c };
	int rc, r;

	if (!st)
		return -BERR_STORE;
	for (int i = 0; i < 3 && i < sqlite3_bind_parameter_count(st); i++)
		sqlite3_bind_text(st, i + 1, args[i], -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		r = 1;
		if (ret_text) {
			const char *t = (const char *)sqlite3_column_text(st, 0);
			char *copy = t ? strdup(t) : NULL;

			if (!copy)
				r = -ENOMEM;
			else
				*ret_text = copy;
		}
	} else {
		r = rc == SQLITE_DONE ? 0 : step_err(rc);
	}
	sqlite3_finalize(st);
	return r;
}

/* Runs a statement that returns no rows, binding text parameters and then
 * the timestamp now as the last parameter when the statement has one more
 * parameter than texts given. */
static int exec_texts(struct store *s, const char *sql, int n, const char *const *texts)
{
	sqlite3_stmt *st = store_prepare(s, sql);
	int rc;

	if (!st)
		return -BERR_STORE;
	for (int i = 0; i < n; i++)
		sqlite3_bind_text(st, i + 1, texts[i], -1, SQLITE_STATIC);
	if (sqlite3_bind_parameter_count(st) > n)
		sqlite3_bind_int64(st, n + 1, store_now());
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : step_err(rc);
}

/* ---- groups ---- */

struct group_put {
	const char *name;
	bool created;
};

static int group_put_fn(struct store *s, void *ud)
{
	struct group_put *g = ud;
	const char *args[1] = { g->name };
	int r = query(s, "SELECT 1 FROM groups WHERE name = ?", g->name, NULL, NULL, NULL);

	if (r < 0)
		return r;
	g->created = r == 0;
	if (g->created)
		return exec_texts(
			s, "INSERT INTO groups (name, created_at, updated_at) VALUES (?1, ?2, ?2)",
			1, args);
	return exec_texts(s, "UPDATE groups SET updated_at = ?2 WHERE name = ?1", 1, args);
}

int sq_group_put(struct store *s, const char *name, bool *ret_created)
{
	struct group_put g = { .name = name };
	int r;

	if (!store_res_name_ok(name))
		return -EINVAL;
	r = sq_res_tx(s, group_put_fn, &g);
	if (r < 0)
		return r;
	if (ret_created)
		*ret_created = g.created;
	return 0;
}

int sq_group_exists(struct store *s, const char *name)
{
	int r = query(s, "SELECT 1 FROM groups WHERE name = ?", name, NULL, NULL, NULL);

	return r < 0 ? r : r == 1 ? 0 : -ENOENT;
}

static int group_delete_fn(struct store *s, void *ud)
{
	const char *name = ud;
	int r;

	if ((r = sq_group_exists(s, name)) < 0)
		return r;
	r = query(s, "SELECT 1 FROM resources WHERE grp = ? LIMIT 1", name, NULL, NULL, NULL);
	if (r != 0)
		return r < 0 ? r : -EBUSY;
	return exec_texts(s, "DELETE FROM groups WHERE name = ?", 1, &name);
}

int sq_group_delete(struct store *s, const char *name)
{
	if (!store_res_name_ok(name))
		return -ENOENT;
	return sq_res_tx(s, group_delete_fn, (void *)name);
}

int sq_group_foreach(struct store *s, int (*fn)(const char *name, void *ud), void *ud)
{
	sqlite3_stmt *st = store_prepare(s, "SELECT name FROM groups ORDER BY name");
	int rc, r = 0;

	if (!st)
		return -BERR_STORE;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);

		if (!name) {
			r = -ENOMEM;
			break;
		}
		if ((r = fn(name, ud)) != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = -BERR_STORE;
	sqlite3_finalize(st);
	return r;
}

int sq_group_blocker(struct store *s, const char *name, char **ret_id)
{
	int r = query(s, "SELECT id FROM resources WHERE grp = ? ORDER BY id LIMIT 1", name, NULL,
		      NULL, ret_id);

	return r < 0 ? r : r == 1 ? 0 : -ENOENT;
}

/* ---- resources ---- */

static int res_put_fn(struct store *s, void *ud)
{
	struct store_res_put *p = ud;
	int r;

	if ((r = sq_group_exists(s, p->group)) < 0)
		return r;
	for (const char *const *ref = p->refs; ref && *ref; ref++) {
		if (strcmp(*ref, p->id) == 0)
			return -EINVAL; /* a resource never points at itself */
		r = query(s, "SELECT 1 FROM resources WHERE id = ?", *ref, NULL, NULL, NULL);
		if (r <= 0)
			return r < 0 ? r : -ENOENT;
	}
	r = query(s, "SELECT 1 FROM resources WHERE id = ?", p->id, NULL, NULL, NULL);
	if (r < 0)
		return r;
	p->created = r == 0;
	/* A deleted vault's ID stays reserved until it is recovered or purged. */
	if (p->created && strcmp(p->type, "vaults") == 0 &&
	    (r = store_vault_deleted_reserved(s, p->id, store_now())) != 0)
		return r < 0 ? r : -EEXIST;
	{
		/* An upsert, not INSERT OR REPLACE: replacing would delete the
		 * row and trip the foreign keys of resources pointing at it. */
		const char *args[5] = { p->id, p->group, p->type, p->name, p->props };

		r = exec_texts(
			s,
			"INSERT INTO resources (id, grp, type, name, props, created_at, updated_at)"
			" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)"
			" ON CONFLICT(id) DO UPDATE SET props = excluded.props,"
			" updated_at = excluded.updated_at",
			5, args);
		if (r < 0)
			return r;
	}
	if ((r = exec_texts(s, "DELETE FROM resource_refs WHERE from_id = ?", 1,
			    (const char *const[]){ p->id })) < 0)
		return r;
	for (const char *const *ref = p->refs; ref && *ref; ref++) {
		const char *args[2] = { p->id, *ref };

		r = exec_texts(s,
			       "INSERT OR IGNORE INTO resource_refs (from_id, to_id) VALUES (?, ?)",
			       2, args);
		if (r < 0)
			return r;
	}
	return 0;
}

int sq_res_put(struct store *s, const char *group, const char *type, const char *name,
	       const json_t *props, const char *const *refs, bool *ret_created)
{
	return store_res_put_run(s, sq_res_tx, res_put_fn, group, type, name, props, refs,
				 ret_created);
}

int sq_res_get(struct store *s, const char *id, json_t **ret_props)
{
	char *text = NULL;
	int r = query(s, "SELECT props FROM resources WHERE id = ?", id, NULL, NULL, &text);

	if (r == 1)
		r = store_res_props_load(text, -ENOMEM, ret_props);
	else if (r == 0)
		r = -ENOENT;
	free(text);
	return r;
}

static int res_delete_fn(struct store *s, void *ud)
{
	const char *id = ud;
	int r = query(s, "SELECT 1 FROM resources WHERE id = ?", id, NULL, NULL, NULL);

	if (r <= 0)
		return r < 0 ? r : -ENOENT;
	r = query(s, "SELECT 1 FROM resource_refs WHERE to_id = ? LIMIT 1", id, NULL, NULL, NULL);
	if (r != 0)
		return r < 0 ? r : -EBUSY;
	/* Host keys recorded on first use belong to the VM: a new VM of the
	 * same name must not inherit them. */
	if ((r = exec_texts(s, "DELETE FROM host_keys WHERE vm_id = ?", 1, &id)) < 0)
		return r;
	/* A vault is kept for its retention days, recoverable, before the
	 * cascade below takes its live rows. */
	if ((r = store_vault_archive(s, id, store_now())) < 0 && r != -ENOENT)
		return r;
	/* Its own references go with it (ON DELETE CASCADE). */
	return exec_texts(s, "DELETE FROM resources WHERE id = ?", 1, &id);
}

int sq_res_delete(struct store *s, const char *id)
{
	if (!id)
		return -ENOENT;
	return sq_res_tx(s, res_delete_fn, (void *)id);
}

int sq_res_blocker(struct store *s, const char *id, char **ret_id)
{
	int r = query(s,
		      "SELECT from_id FROM resource_refs WHERE to_id = ? ORDER BY from_id LIMIT 1",
		      id, NULL, NULL, ret_id);

	return r < 0 ? r : r == 1 ? 0 : -ENOENT;
}

/* Calls fn for each row (id, name, props) of st, which is finalized. */
static int walk(sqlite3_stmt *st,
		int (*fn)(const char *id, const char *name, json_t *props, void *ud), void *ud)
{
	int rc, r = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 0);
		const char *name = (const char *)sqlite3_column_text(st, 1);
		json_t *props = NULL;

		if (!id || !name) {
			r = -ENOMEM;
			break;
		}
		if ((r = store_res_props_load((const char *)sqlite3_column_text(st, 2), -ENOMEM,
					      &props)) < 0)
			break;
		r = fn(id, name, props, ud);
		json_decref(props);
		if (r != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = -BERR_STORE;
	sqlite3_finalize(st);
	return r;
}

int sq_res_foreach_referrer(struct store *s, const char *id, const char *type,
			    int (*fn)(const char *id, const char *name, json_t *props, void *ud),
			    void *ud)
{
	sqlite3_stmt *st = store_prepare(
		s,
		"SELECT r.id, r.name, r.props FROM resource_refs f JOIN resources r ON r.id = f.from_id"
		" WHERE f.to_id = ?1 AND (?2 IS NULL OR r.type = ?2) ORDER BY r.id");

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
	return walk(st, fn, ud);
}

int sq_res_foreach(struct store *s, const char *group, const char *type,
		   int (*fn)(const char *id, const char *name, json_t *props, void *ud), void *ud)
{
	sqlite3_stmt *st = store_prepare(
		s,
		"SELECT id, name, props FROM resources WHERE grp = ? AND type = ? ORDER BY name");

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, group, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
	return walk(st, fn, ud);
}

int sq_res_foreach_type(struct store *s, const char *type,
			int (*fn)(const char *id, const char *name, json_t *props, void *ud),
			void *ud)
{
	sqlite3_stmt *st = store_prepare(
		s, "SELECT id, name, props FROM resources WHERE type = ? ORDER BY id");

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
	return walk(st, fn, ud);
}

/* The caller's BEGIN IMMEDIATE already holds the only write lock. */
int sq_res_lock(struct store *s, const char *id)
{
	int r = query(s, "SELECT 1 FROM resources WHERE id = ?", id, NULL, NULL, NULL);

	return r < 0 ? r : r ? 0 : -ENOENT;
}
