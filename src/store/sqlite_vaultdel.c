/* SQLite backend for soft-deleted vaults (store_vault.h, "deleted vaults"):
 * deleting a vault resource moves its row, wrapped data key, secrets,
 * versions and access policies into the deleted_vault* tables, where they
 * stay until the vault's retention runs out, it is recovered (moved back
 * under the same ID: every sealed blob is bound to it) or purged.
 *
 * Nothing here sees a plaintext. A deleted vault's data key is still
 * re-wrapped by a master-key rotation (sqlite_vault.c walks both tables),
 * so that a vault recovered after a rotation still opens. */
#include "store/internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "store/store_vault.h"

/* The error for a failed sqlite3_step(): never 0. */
static int step_err(int rc)
{
	int r = store_rc(rc);

	return r < 0 ? r : -BERR_STORE;
}

/* Runs sql binding text parameters first, then int64 ones; with
 * ret_changes, how many rows it changed. */
static int exec_ti(struct store *s, const char *sql, const char *const *texts, int nt,
		   const int64_t *ints, int ni, int *ret_changes)
{
	sqlite3_stmt *st = store_prepare(s, sql);
	int rc, k = 1;

	if (!st)
		return -BERR_STORE;
	for (int i = 0; i < nt; i++)
		sqlite3_bind_text(st, k++, texts[i], -1, SQLITE_STATIC);
	for (int i = 0; i < ni; i++)
		sqlite3_bind_int64(st, k++, ints[i]);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return step_err(rc);
	if (ret_changes)
		*ret_changes = sqlite3_changes(store_db(s));
	return 0;
}

/* 1 when sql (one text parameter) yields a row, 0 when not, or an error. */
static int exists(struct store *s, const char *sql, const char *id)
{
	sqlite3_stmt *st = store_prepare(s, sql);
	int rc;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : step_err(rc);
}

int sq_vault_deleted_expire(struct store *s, int64_t now)
{
	return exec_ti(s, "DELETE FROM deleted_vaults WHERE purge_at <= ?", NULL, 0, &now, 1, NULL);
}

int store_vault_archive(struct store *s, const char *vault_id, int64_t now)
{
	const char *id[1] = { vault_id };
	const int64_t t[2] = { now, STORE_VAULT_DEFAULT_RETENTION_DAYS };
	int r, n = 0;

	/* A name is reserved while its vault is deleted (a PUT answers
	 * -EEXIST), so an older deleted vault of this ID can only be one
	 * whose retention ran out. */
	if ((r = sq_vault_deleted_expire(s, now)) < 0)
		return r;
	r = exec_ti(s,
		    "INSERT INTO deleted_vaults (id, grp, name, props, created_at, deleted_at,"
		    " purge_at, wrapped, key_created_at, key_rotated_at)"
		    " SELECT r.id, r.grp, r.name, r.props, r.created_at, ?2, ?2 + 86400 *"
		    "  COALESCE(json_extract(r.props, '$.soft_delete_retention_days'), ?3),"
		    "  k.wrapped, k.created_at, k.rotated_at"
		    " FROM resources r LEFT JOIN vault_keys k ON k.vault_id = r.id"
		    " WHERE r.id = ?1 AND r.type = 'vaults'",
		    id, 1, t, 2, &n);
	if (r < 0 || n == 0)
		return r < 0 ? r : -ENOENT;
	/* The live rows go with the resource (ON DELETE CASCADE). */
	for (const char *const *q = store_vault_archive_sql; r == 0 && *q; q++)
		r = exec_ti(s, *q, id, 1, NULL, 0, NULL);
	return r;
}

int store_vault_deleted_reserved(struct store *s, const char *vault_id, int64_t now)
{
	int r = sq_vault_deleted_expire(s, now);

	if (r < 0)
		return r;
	return exists(s, "SELECT 1 FROM deleted_vaults WHERE id = ?", vault_id);
}

static int walk(sqlite3_stmt *st, int (*fn)(const struct store_deleted_vault *d, void *ud),
		void *ud)
{
	struct store_deleted_vault d;
	int rc, r = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 0);
		const char *grp = (const char *)sqlite3_column_text(st, 1);
		const char *name = (const char *)sqlite3_column_text(st, 2);

		memset(&d, 0, sizeof(d));
		if (!id || !grp || !name || strlen(id) >= sizeof(d.id) ||
		    strlen(grp) >= sizeof(d.group) || strlen(name) >= sizeof(d.name)) {
			r = -BERR_STORE;
			break;
		}
		memcpy(d.id, id, strlen(id) + 1);
		memcpy(d.group, grp, strlen(grp) + 1);
		memcpy(d.name, name, strlen(name) + 1);
		d.created_at = sqlite3_column_int64(st, 3);
		d.deleted_at = sqlite3_column_int64(st, 4);
		d.purge_at = sqlite3_column_int64(st, 5);
		d.n_secrets = sqlite3_column_int64(st, 6);
		if ((r = fn(&d, ud)) != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = step_err(rc);
	sqlite3_finalize(st);
	return r;
}

int sq_vault_deleted_foreach(struct store *s, const char *group, int64_t now,
			     int (*fn)(const struct store_deleted_vault *d, void *ud), void *ud)
{
	sqlite3_stmt *st;
	int r = sq_vault_deleted_expire(s, now);

	if (r < 0)
		return r;
	st = store_prepare(s, store_vault_deleted_of_group_sql);
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, group, -1, SQLITE_STATIC);
	return walk(st, fn, ud);
}

int sq_vault_deleted_get(struct store *s, const char *vault_id, int64_t now,
			 struct store_deleted_vault *ret)
{
	sqlite3_stmt *st;
	int r = sq_vault_deleted_expire(s, now);

	if (r < 0)
		return r;
	st = store_prepare(s, store_vault_deleted_by_id_sql);
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, vault_id, -1, SQLITE_STATIC);
	r = walk(st, store_vault_deleted_copy, ret);
	return r == 1 ? 0 : r < 0 ? r : -ENOENT;
}

struct recover {
	const char *id;
	int64_t now;
};

static int recover_tx(struct store *s, void *ud)
{
	const struct recover *o = ud;
	const char *id[1] = { o->id };
	int r;

	if ((r = sq_vault_deleted_expire(s, o->now)) < 0)
		return r;
	if ((r = exists(s, "SELECT 1 FROM deleted_vaults WHERE id = ?", o->id)) <= 0)
		return r < 0 ? r : -ENOENT;
	if ((r = exists(s, "SELECT 1 FROM resources WHERE id = ?", o->id)) != 0)
		return r < 0 ? r : -EEXIST;
	if ((r = exists(s,
			"SELECT 1 FROM groups g JOIN deleted_vaults d ON d.grp = g.name"
			" WHERE d.id = ?",
			o->id)) <= 0)
		return r < 0 ? r : -ESRCH;
	if ((r = exec_ti(
		     s,
		     "INSERT INTO resources (id, grp, type, name, props, created_at, updated_at)"
		     " SELECT id, grp, 'vaults', name, props, created_at, ?2 FROM deleted_vaults"
		     " WHERE id = ?1",
		     id, 1, &o->now, 1, NULL)) < 0)
		return r;
	for (const char *const *q = store_vault_recover_sql; r == 0 && *q; q++)
		r = exec_ti(s, *q, id, 1, NULL, 0, NULL);
	return r;
}

int sq_vault_recover(struct store *s, const char *vault_id, int64_t now)
{
	struct recover o = { vault_id, now };

	return sq_res_tx(s, recover_tx, &o);
}

int sq_vault_purge_deleted(struct store *s, const char *vault_id)
{
	const char *id[1] = { vault_id };
	int n = 0, r;

	/* Archived rows go with it (ON DELETE CASCADE). */
	r = exec_ti(s, "DELETE FROM deleted_vaults WHERE id = ?", id, 1, NULL, 0, &n);
	return r < 0 ? r : n > 0 ? 0 : -ENOENT;
}
