/* SQLite backend for store_vault.h: tables vault_meta, vault_keys,
 * vault_secrets, vault_secret_versions and vault_policies (the "vault"
 * migration in sqlite.c). Blobs are ciphertext sealed by vault/; this file
 * never sees a plaintext. Single writes run as they are (one statement is
 * atomic); callers that need several to hold together use store_res_tx. */
#include "store/internal.h"
#include "store/store_vault.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"

/* The error for a failed sqlite3_step(): never 0. */
static int step_err(int rc)
{
	int r = store_rc(rc);

	return r < 0 ? r : -BERR_STORE;
}

/* Runs a statement without rows: binds the texts, then ints, then an
 * optional blob; returns 0, or -ENOENT when want_change and no row
 * changed. */
struct bind {
	const char *t[4];
	int nt;
	int64_t i[3];
	int ni;
	const uint8_t *blob;
	size_t blob_len;
	bool has_blob;
};

static void bind_all(sqlite3_stmt *st, const struct bind *b)
{
	int k = 1;

	for (int j = 0; j < b->nt; j++)
		sqlite3_bind_text(st, k++, b->t[j], -1, SQLITE_STATIC);
	for (int j = 0; j < b->ni; j++)
		sqlite3_bind_int64(st, k++, b->i[j]);
	if (b->has_blob)
		sqlite3_bind_blob(st, k, b->blob, (int)b->blob_len, SQLITE_STATIC);
}

static int exec_bind(struct store *s, const char *sql, const struct bind *b, bool want_change)
{
	sqlite3_stmt *st = store_prepare(s, sql);
	int rc;

	if (!st)
		return -BERR_STORE;
	if (b->has_blob && b->blob_len > 1024 * 1024) {
		sqlite3_finalize(st);
		return -E2BIG;
	}
	bind_all(st, b);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return step_err(rc);
	if (want_change && sqlite3_changes(store_db(s)) == 0)
		return -ENOENT;
	return 0;
}

/* Copies column col of st (a blob) into a malloc'd buffer. */
static int column_blob(sqlite3_stmt *st, int col, uint8_t **ret, size_t *ret_len)
{
	const void *p = sqlite3_column_blob(st, col);
	int n = sqlite3_column_bytes(st, col);
	uint8_t *copy;

	if (n <= 0 || !p)
		return -BERR_STORE; /* a sealed blob is never empty */
	copy = malloc((size_t)n);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, p, (size_t)n);
	*ret = copy;
	*ret_len = (size_t)n;
	return 0;
}

/* Runs a one-row SELECT of one blob column. */
static int query_blob(struct store *s, const char *sql, const char *a, uint8_t **ret,
		      size_t *ret_len)
{
	sqlite3_stmt *st = store_prepare(s, sql);
	int rc, r;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = column_blob(st, 0, ret, ret_len);
	else
		r = rc == SQLITE_DONE ? -ENOENT : step_err(rc);
	sqlite3_finalize(st);
	return r;
}

static void copy_text(sqlite3_stmt *st, int col, char *out, size_t size)
{
	const char *t = (const char *)sqlite3_column_text(st, col);

	util_strlcpy(out, t ? t : "", size);
}

/* ---- meta ---- */

int sq_vault_meta_get(struct store *s, const char *name, uint8_t **ret, size_t *ret_len)
{
	return query_blob(s, "SELECT value FROM vault_meta WHERE name = ?", name, ret, ret_len);
}

int sq_vault_meta_put(struct store *s, const char *name, const uint8_t *v, size_t len)
{
	struct bind b = { .t = { name }, .nt = 1, .blob = v, .blob_len = len, .has_blob = true };

	return exec_bind(s,
			 "INSERT INTO vault_meta (name, value) VALUES (?, ?)"
			 " ON CONFLICT(name) DO UPDATE SET value = excluded.value",
			 &b, false);
}

/* ---- data keys ---- */

int sq_vault_key_get(struct store *s, const char *vault_id, uint8_t **ret, size_t *ret_len)
{
	return query_blob(s, "SELECT wrapped FROM vault_keys WHERE vault_id = ?", vault_id, ret,
			  ret_len);
}

int sq_vault_key_add(struct store *s, const char *vault_id, const uint8_t *w, size_t len)
{
	struct bind b = { .t = { vault_id, vault_id },
			  .nt = 2,
			  .i = { store_now() },
			  .ni = 1,
			  .blob = w,
			  .blob_len = len,
			  .has_blob = true };
	int r = exec_bind(
		s,
		"INSERT INTO vault_keys (vault_id, created_at, rotated_at, wrapped)"
		" SELECT ?1, ?3, ?3, ?4 WHERE EXISTS (SELECT 1 FROM resources WHERE id = ?2)",
		&b, true);

	return r;
}

int sq_vault_key_update(struct store *s, const char *vault_id, const uint8_t *w, size_t len)
{
	struct bind b = { .t = { vault_id },
			  .nt = 1,
			  .i = { store_now() },
			  .ni = 1,
			  .blob = w,
			  .blob_len = len,
			  .has_blob = true };

	int r = exec_bind(s,
			  "UPDATE vault_keys SET rotated_at = ?2, wrapped = ?3 WHERE vault_id = ?1",
			  &b, true);

	/* A deleted vault's key is re-wrapped too (sqlite_vaultdel.c). */
	if (r == -ENOENT)
		r = exec_bind(s,
			      "UPDATE deleted_vaults SET key_rotated_at = ?2, wrapped = ?3"
			      " WHERE id = ?1 AND wrapped IS NOT NULL",
			      &b, true);
	return r;
}

int sq_vault_key_foreach(struct store *s,
			 int (*fn)(const char *vault_id, const uint8_t *w, size_t len, void *ud),
			 void *ud)
{
	sqlite3_stmt *st =
		store_prepare(s, "SELECT vault_id, wrapped FROM vault_keys UNION ALL"
				 " SELECT id, wrapped FROM deleted_vaults WHERE wrapped IS NOT NULL"
				 " ORDER BY 1");
	int rc, r = 0;

	if (!st)
		return -BERR_STORE;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 0);
		const uint8_t *w = sqlite3_column_blob(st, 1);
		int n = sqlite3_column_bytes(st, 1);

		if (!id || !w || n <= 0) {
			r = -BERR_STORE;
			break;
		}
		if ((r = fn(id, w, (size_t)n, ud)) != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = step_err(rc);
	sqlite3_finalize(st);
	return r;
}

/* ---- secrets ---- */

/* The columns every secret query selects, in this order. */
#define SECRET_COLS                                                                               \
	"s.name, s.created_at, s.updated_at, COALESCE(s.deleted_at, 0), COALESCE(s.purge_at, 0)," \
	" (SELECT version FROM vault_secret_versions v WHERE v.vault_id = s.vault_id AND"         \
	"   v.name = s.name ORDER BY seq DESC LIMIT 1),"                                          \
	" (SELECT content_type FROM vault_secret_versions v WHERE v.vault_id = s.vault_id AND"    \
	"   v.name = s.name ORDER BY seq DESC LIMIT 1),"                                          \
	" (SELECT COUNT(*) FROM vault_secret_versions v WHERE v.vault_id = s.vault_id AND"        \
	"   v.name = s.name)"

static void secret_row(sqlite3_stmt *st, struct store_secret *out)
{
	memset(out, 0, sizeof(*out));
	copy_text(st, 0, out->name, sizeof(out->name));
	out->created_at = sqlite3_column_int64(st, 1);
	out->updated_at = sqlite3_column_int64(st, 2);
	out->deleted_at = sqlite3_column_int64(st, 3);
	out->purge_at = sqlite3_column_int64(st, 4);
	copy_text(st, 5, out->version, sizeof(out->version));
	copy_text(st, 6, out->content_type, sizeof(out->content_type));
	out->n_versions = sqlite3_column_int64(st, 7);
}

int sq_secret_get(struct store *s, const char *vault_id, const char *name, struct store_secret *ret)
{
	sqlite3_stmt *st = store_prepare(s, "SELECT " SECRET_COLS " FROM vault_secrets s"
					    " WHERE s.vault_id = ? AND s.name = ?");
	int rc, r = 0;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, vault_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		secret_row(st, ret);
	else
		r = rc == SQLITE_DONE ? -ENOENT : step_err(rc);
	sqlite3_finalize(st);
	return r;
}

int sq_secret_count(struct store *s, const char *vault_id, int64_t *ret)
{
	sqlite3_stmt *st =
		store_prepare(s, "SELECT COUNT(*) FROM vault_secrets WHERE vault_id = ?");
	int rc, r = 0;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, vault_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int64(st, 0);
	else
		r = step_err(rc);
	sqlite3_finalize(st);
	return r;
}

static int add_version_fn(struct store *s, void *ud)
{
	const struct bind *b = ud; /* t: vault_id, name, version, content_type */
	struct store_secret cur;
	struct bind row = { .t = { b->t[0], b->t[1] }, .nt = 2, .i = { store_now() }, .ni = 1 };
	int r = sq_secret_get(s, b->t[0], b->t[1], &cur);

	if (r == 0 && cur.deleted_at)
		return -EEXIST;
	if (r == -ENOENT)
		r = exec_bind(s,
			      "INSERT INTO vault_secrets (vault_id, name, created_at, updated_at)"
			      " VALUES (?1, ?2, ?3, ?3)",
			      &row, false);
	else if (r == 0)
		r = exec_bind(
			s,
			"UPDATE vault_secrets SET updated_at = ?3 WHERE vault_id = ?1 AND name = ?2",
			&row, false);
	if (r < 0)
		return r;
	return exec_bind(s,
			 "INSERT INTO vault_secret_versions"
			 " (vault_id, name, version, content_type, seq, created_at, sealed)"
			 " SELECT ?1, ?2, ?3, ?4, COALESCE(MAX(seq), 0) + 1, ?5, ?6"
			 " FROM vault_secret_versions WHERE vault_id = ?1 AND name = ?2",
			 b, false);
}

int sq_secret_add_version(struct store *s, const char *vault_id, const char *name,
			  const char *version, const char *content_type, const uint8_t *sealed,
			  size_t sealed_len)
{
	struct bind b = { .t = { vault_id, name, version, content_type },
			  .nt = 4,
			  .i = { store_now() },
			  .ni = 1,
			  .blob = sealed,
			  .blob_len = sealed_len,
			  .has_blob = true };

	return sq_res_tx(s, add_version_fn, &b);
}

int sq_secret_version_get(struct store *s, const char *vault_id, const char *name,
			  const char *version, struct store_secret_version *ret)
{
	sqlite3_stmt *st = store_prepare(
		s, "SELECT v.version, COALESCE(v.content_type, ''), v.seq, v.created_at, v.sealed"
		   " FROM vault_secret_versions v JOIN vault_secrets s"
		   "   ON s.vault_id = v.vault_id AND s.name = v.name"
		   " WHERE v.vault_id = ?1 AND v.name = ?2 AND s.deleted_at IS NULL"
		   "   AND (?3 IS NULL OR v.version = ?3)"
		   " ORDER BY v.seq DESC LIMIT 1");
	struct store_secret_version out = { 0 };
	int rc, r;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, vault_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, version, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		copy_text(st, 0, out.version, sizeof(out.version));
		copy_text(st, 1, out.content_type, sizeof(out.content_type));
		out.seq = sqlite3_column_int64(st, 2);
		out.created_at = sqlite3_column_int64(st, 3);
		r = column_blob(st, 4, &out.sealed, &out.sealed_len);
		if (r == 0)
			*ret = out;
	} else {
		r = rc == SQLITE_DONE ? -ENOENT : step_err(rc);
	}
	sqlite3_finalize(st);
	return r;
}

int sq_secret_foreach(struct store *s, const char *vault_id, bool deleted,
		      int (*fn)(const struct store_secret *sec, void *ud), void *ud)
{
	sqlite3_stmt *st = store_prepare(
		s, deleted ? "SELECT " SECRET_COLS " FROM vault_secrets s WHERE s.vault_id = ?"
			     " AND s.deleted_at IS NOT NULL ORDER BY s.name"
			   : "SELECT " SECRET_COLS " FROM vault_secrets s WHERE s.vault_id = ?"
			     " AND s.deleted_at IS NULL ORDER BY s.name");
	struct store_secret sec;
	int rc, r = 0;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, vault_id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		secret_row(st, &sec);
		if ((r = fn(&sec, ud)) != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = step_err(rc);
	sqlite3_finalize(st);
	return r;
}

int sq_secret_versions_foreach(struct store *s, const char *vault_id, const char *name,
			       int (*fn)(const struct store_secret_version *v, void *ud), void *ud)
{
	sqlite3_stmt *st = store_prepare(
		s,
		"SELECT version, COALESCE(content_type, ''), seq, created_at FROM vault_secret_versions"
		" WHERE vault_id = ? AND name = ? ORDER BY seq DESC");
	struct store_secret_version v;
	int rc, r = 0;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, vault_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&v, 0, sizeof(v));
		copy_text(st, 0, v.version, sizeof(v.version));
		copy_text(st, 1, v.content_type, sizeof(v.content_type));
		v.seq = sqlite3_column_int64(st, 2);
		v.created_at = sqlite3_column_int64(st, 3);
		if ((r = fn(&v, ud)) != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = step_err(rc);
	sqlite3_finalize(st);
	return r;
}

int sq_secret_soft_delete(struct store *s, const char *vault_id, const char *name, int64_t now,
			  int64_t purge_at)
{
	struct bind b = { .t = { vault_id, name }, .nt = 2, .i = { now, purge_at }, .ni = 2 };

	return exec_bind(s,
			 "UPDATE vault_secrets SET deleted_at = ?3, purge_at = ?4, updated_at = ?3"
			 " WHERE vault_id = ?1 AND name = ?2 AND deleted_at IS NULL",
			 &b, true);
}

int sq_secret_recover(struct store *s, const char *vault_id, const char *name)
{
	struct bind b = { .t = { vault_id, name }, .nt = 2, .i = { store_now() }, .ni = 1 };

	return exec_bind(
		s,
		"UPDATE vault_secrets SET deleted_at = NULL, purge_at = NULL, updated_at = ?3"
		" WHERE vault_id = ?1 AND name = ?2 AND deleted_at IS NOT NULL",
		&b, true);
}

int sq_secret_purge(struct store *s, const char *vault_id, const char *name)
{
	struct bind b = { .t = { vault_id, name }, .nt = 2 };

	/* The versions go with it (ON DELETE CASCADE); secure_delete zeroes
	 * the freed pages. */
	return exec_bind(s, "DELETE FROM vault_secrets WHERE vault_id = ?1 AND name = ?2", &b,
			 true);
}

int sq_secret_purge_expired(struct store *s, const char *vault_id, int64_t now)
{
	struct bind b = { .t = { vault_id }, .nt = 1, .i = { now }, .ni = 1 };

	return exec_bind(s,
			 "DELETE FROM vault_secrets WHERE (?1 IS NULL OR vault_id = ?1)"
			 " AND deleted_at IS NOT NULL AND purge_at <= ?2",
			 &b, false);
}

/* ---- access policies ---- */

int sq_vault_policy_get(struct store *s, const char *vault_id, const char *principal,
			unsigned *ret_permissions)
{
	sqlite3_stmt *st = store_prepare(s, "SELECT permissions FROM vault_policies"
					    " WHERE vault_id = ? AND principal = ?");
	int rc, r = 0;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, vault_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, principal, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret_permissions = (unsigned)sqlite3_column_int64(st, 0);
	else
		r = rc == SQLITE_DONE ? -ENOENT : step_err(rc);
	sqlite3_finalize(st);
	return r;
}

struct policy_put {
	const char *vault_id, *principal;
	unsigned permissions;
	bool created;
};

static int policy_put_fn(struct store *s, void *ud)
{
	struct policy_put *p = ud;
	unsigned old;
	struct bind b = { .t = { p->vault_id, p->principal, p->vault_id },
			  .nt = 3,
			  .i = { p->permissions, store_now() },
			  .ni = 2 };
	int r = sq_vault_policy_get(s, p->vault_id, p->principal, &old);

	if (r < 0 && r != -ENOENT)
		return r;
	p->created = r == -ENOENT;
	return exec_bind(s,
			 "INSERT INTO vault_policies (vault_id, principal, permissions, created_at,"
			 " updated_at) SELECT ?1, ?2, ?4, ?5, ?5"
			 " WHERE EXISTS (SELECT 1 FROM resources WHERE id = ?3)"
			 " ON CONFLICT(vault_id, principal) DO UPDATE SET"
			 " permissions = excluded.permissions, updated_at = excluded.updated_at",
			 &b, true);
}

int sq_vault_policy_put(struct store *s, const char *vault_id, const char *principal,
			unsigned permissions, bool *ret_created)
{
	struct policy_put p = { .vault_id = vault_id,
				.principal = principal,
				.permissions = permissions };
	int r = sq_res_tx(s, policy_put_fn, &p);

	if (r < 0)
		return r;
	if (ret_created)
		*ret_created = p.created;
	return 0;
}

int sq_vault_policy_delete(struct store *s, const char *vault_id, const char *principal)
{
	struct bind b = { .t = { vault_id, principal }, .nt = 2 };

	return exec_bind(s, "DELETE FROM vault_policies WHERE vault_id = ? AND principal = ?", &b,
			 true);
}

int sq_vault_policy_foreach(struct store *s, const char *vault_id,
			    int (*fn)(const char *principal, unsigned permissions, void *ud),
			    void *ud)
{
	sqlite3_stmt *st = store_prepare(s, "SELECT principal, permissions FROM vault_policies"
					    " WHERE vault_id = ? ORDER BY principal");
	int rc, r = 0;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, vault_id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *p = (const char *)sqlite3_column_text(st, 0);

		if (!p) {
			r = -ENOMEM;
			break;
		}
		if ((r = fn(p, (unsigned)sqlite3_column_int64(st, 1), ud)) != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = step_err(rc);
	sqlite3_finalize(st);
	return r;
}
