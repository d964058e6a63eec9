/* PostgreSQL backend for soft-deleted vaults (store_vault.h, "deleted
 * vaults"). Same contract as sqlite_vaultdel.c: deleting a vault resource
 * moves its row, wrapped data key, secrets, versions and access policies
 * into the deleted_vault* tables, where they stay until the vault's
 * retention runs out, it is recovered (moved back under the same ID: every
 * sealed blob is bound to it) or purged. A deleted vault's data key is
 * still re-wrapped by a master-key rotation (pg_vault.c walks both tables).
 *
 * Two instances recovering the same vault at once: the row lock on the
 * deleted vault makes the second wait, then find nothing (-ENOENT), as the
 * second of two requests to one instance does. */
#include "store/pg_internal.h"
#include "store/store_vault.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

/* 1 when sql (one parameter) answers a row, 0 when not, or an error. */
static int exists(struct store *s, const char *sql, const char *a)
{
	const char *p[] = { a };
	PGresult *res = NULL;
	int r = pg_q(s, &res, sql, 1, p);

	if (r == 0)
		r = PQntuples(res) > 0;
	PQclear(res);
	return r;
}

static int exec_n(struct store *s, const char *sql, int n, const char *const *p, int *ret_changes)
{
	PGresult *res = NULL;
	int r = pg_q(s, &res, sql, n, p);

	if (r == 0 && ret_changes)
		*ret_changes = pg_changes(res);
	PQclear(res);
	return r;
}

int pg_vault_deleted_expire(struct store *s, int64_t now)
{
	struct pg_num n;
	const char *p[] = { pg_num(&n, now) };

	return exec_n(s, "DELETE FROM deleted_vaults WHERE purge_at <= $1", 1, p, NULL);
}

int pg_vault_archive(struct store *s, const char *vault_id, int64_t now)
{
	struct pg_num n, days;
	const char *p[] = { vault_id, pg_num(&n, now),
			    pg_num(&days, STORE_VAULT_DEFAULT_RETENTION_DAYS) };
	const char *id[] = { vault_id };
	int r, moved = 0;

	/* A name is reserved while its vault is deleted (a PUT answers
	 * -EEXIST), so an older deleted vault of this ID can only be one
	 * whose retention ran out. */
	if ((r = pg_vault_deleted_expire(s, now)) < 0)
		return r;
	/* The retention as the resource says it; anything but a number there
	 * counts as unset (the API validates it, this is the store). */
	r = exec_n(
		s,
		"INSERT INTO deleted_vaults (id, grp, name, props, created_at, deleted_at,"
		" purge_at, wrapped, key_created_at, key_rotated_at)"
		" SELECT r.id, r.grp, r.name, r.props, r.created_at, $2, $2 + 86400 * COALESCE("
		"  CASE WHEN jsonb_typeof(r.props::jsonb -> 'soft_delete_retention_days') ="
		"   'number' THEN (r.props::jsonb ->> 'soft_delete_retention_days')::numeric::bigint"
		"  END, $3),"
		"  k.wrapped, k.created_at, k.rotated_at"
		" FROM resources r LEFT JOIN vault_keys k ON k.vault_id = r.id"
		" WHERE r.id = $1 AND r.type = 'vaults'",
		3, p, &moved);
	if (r < 0 || moved == 0)
		return r < 0 ? r : -ENOENT;
	/* The live rows go with the resource (ON DELETE CASCADE). */
	for (const char *const *q = store_vault_archive_sql; r == 0 && *q; q++)
		r = exec_n(s, *q, 1, id, NULL);
	return r;
}

int pg_vault_deleted_reserved(struct store *s, const char *vault_id, int64_t now)
{
	int r = pg_vault_deleted_expire(s, now);

	if (r < 0)
		return r;
	return exists(s, "SELECT 1 FROM deleted_vaults WHERE id = $1", vault_id);
}

static int walk(struct store *s, const char *sql, const char *a,
		int (*fn)(const struct store_deleted_vault *d, void *ud), void *ud)
{
	const char *p[] = { a };
	struct store_deleted_vault d;
	PGresult *res = NULL;
	int r = pg_q(s, &res, sql, 1, p);

	for (int i = 0; r == 0 && i < PQntuples(res); i++) {
		memset(&d, 0, sizeof(d));
		if (pg_copy(d.id, sizeof(d.id), PQgetvalue(res, i, 0)) < 0 ||
		    pg_copy(d.group, sizeof(d.group), PQgetvalue(res, i, 1)) < 0 ||
		    pg_copy(d.name, sizeof(d.name), PQgetvalue(res, i, 2)) < 0) {
			r = -BERR_STORE;
			break;
		}
		d.created_at = pg_i64(res, i, 3);
		d.deleted_at = pg_i64(res, i, 4);
		d.purge_at = pg_i64(res, i, 5);
		d.n_secrets = pg_i64(res, i, 6);
		r = fn(&d, ud);
	}
	PQclear(res);
	return r;
}

int pg_vault_deleted_foreach(struct store *s, const char *group, int64_t now,
			     int (*fn)(const struct store_deleted_vault *d, void *ud), void *ud)
{
	int r = pg_vault_deleted_expire(s, now);

	if (r < 0)
		return r;
	return walk(s, store_vault_deleted_of_group_sql, group, fn, ud);
}

int pg_vault_deleted_get(struct store *s, const char *vault_id, int64_t now,
			 struct store_deleted_vault *ret)
{
	int r = pg_vault_deleted_expire(s, now);

	if (r < 0)
		return r;
	r = walk(s, store_vault_deleted_by_id_sql, vault_id, store_vault_deleted_copy, ret);
	return r == 1 ? 0 : r < 0 ? r : -ENOENT;
}

struct recover {
	const char *id;
	int64_t now;
};

static int recover_tx(struct store *s, void *ud)
{
	const struct recover *o = ud;
	struct pg_num n;
	const char *id[] = { o->id };
	const char *idn[] = { o->id, pg_num(&n, o->now) };
	int r;

	if ((r = pg_vault_deleted_expire(s, o->now)) < 0)
		return r;
	if ((r = exists(s, "SELECT 1 FROM deleted_vaults WHERE id = $1 FOR UPDATE", o->id)) <= 0)
		return r < 0 ? r : -ENOENT;
	if ((r = exists(s, "SELECT 1 FROM resources WHERE id = $1", o->id)) != 0)
		return r < 0 ? r : -EEXIST;
	/* The group locked as a resource put locks it: a delete of the group
	 * waits for the recovery. */
	if ((r = exists(s,
			"SELECT 1 FROM groups g JOIN deleted_vaults d ON d.grp = g.name"
			" WHERE d.id = $1 FOR SHARE OF g",
			o->id)) <= 0)
		return r < 0 ? r : -ESRCH;
	if ((r = exec_n(s,
			"INSERT INTO resources (id, grp, type, name, props, created_at, updated_at)"
			" SELECT id, grp, 'vaults', name, props, created_at, $2 FROM deleted_vaults"
			" WHERE id = $1",
			2, idn, NULL)) < 0)
		return r;
	for (const char *const *q = store_vault_recover_sql; r == 0 && *q; q++)
		r = exec_n(s, *q, 1, id, NULL);
	return r;
}

int pg_vault_recover(struct store *s, const char *vault_id, int64_t now)
{
	struct recover o = { vault_id, now };

	return pg_tx(s, recover_tx, &o);
}

int pg_vault_purge_deleted(struct store *s, const char *vault_id)
{
	const char *id[] = { vault_id };
	int n = 0, r;

	/* Archived rows go with it (ON DELETE CASCADE). */
	r = exec_n(s, "DELETE FROM deleted_vaults WHERE id = $1", 1, id, &n);
	return r < 0 ? r : n > 0 ? 0 : -ENOENT;
}
