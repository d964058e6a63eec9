/* PostgreSQL backend for store_vault.h: tables vault_meta, vault_keys,
 * vault_secrets, vault_secret_versions and vault_policies (migration 1 of
 * pg.c). Same contract as sqlite_vault.c. Blobs are ciphertext sealed by
 * vault/ and travel as bytea in hex text; this file never sees a
 * plaintext. Two instances adding a version to one secret at once are
 * serialised by a row lock on the secret, so that sequence numbers stay
 * unique and both versions are kept. */
#include "store/pg_internal.h"
#include "store/store_vault.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"

/* What a sealed blob may weigh, as on SQLite. */
#define PG_BLOB_MAX (1024u * 1024u)

/* A blob as bytea input text ("\x" and hex), malloc'd. */
static char *blob_hex(const uint8_t *v, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	char *out;

	if (len > PG_BLOB_MAX)
		return NULL;
	out = malloc(2 + 2 * len + 1);
	if (!out)
		return NULL;
	out[0] = '\\';
	out[1] = 'x';
	for (size_t i = 0; i < len; i++) {
		out[2 + 2 * i] = hex[v[i] >> 4];
		out[3 + 2 * i] = hex[v[i] & 15];
	}
	out[2 + 2 * len] = '\0';
	return out;
}

int pg_blob_param(const uint8_t *v, size_t len, char **ret)
{
	if (len > PG_BLOB_MAX)
		return -E2BIG;
	*ret = blob_hex(v, len);
	return *ret ? 0 : -ENOMEM;
}

int pg_blob_value(const PGresult *res, int row, int col, uint8_t **ret, size_t *ret_len)
{
	const char *t = pg_val(res, row, col);
	unsigned char *raw;
	uint8_t *copy;
	size_t n = 0;

	if (!t)
		return -BERR_STORE;
	raw = PQunescapeBytea((const unsigned char *)t, &n);
	if (!raw)
		return -ENOMEM;
	if (n == 0) {
		PQfreemem(raw);
		return -BERR_STORE; /* a sealed blob is never empty */
	}
	copy = malloc(n);
	if (copy)
		memcpy(copy, raw, n);
	PQfreemem(raw);
	if (!copy)
		return -ENOMEM;
	*ret = copy;
	*ret_len = n;
	return 0;
}

/* A one-row SELECT of one bytea column. */
static int query_blob(struct store *s, const char *sql, const char *a, uint8_t **ret,
		      size_t *ret_len)
{
	const char *p[] = { a };
	PGresult *res = NULL;
	int r = pg_row(s, &res, sql, 1, p);

	if (r == 0)
		r = pg_blob_value(res, 0, 0, ret, ret_len);
	PQclear(res);
	return r;
}

/* Runs sql; -ENOENT when want_change and no row changed. */
static int exec_n(struct store *s, const char *sql, int n, const char *const *p, bool want_change)
{
	PGresult *res = NULL;
	int r = pg_q(s, &res, sql, n, p);

	if (r == 0 && want_change && pg_changes(res) == 0)
		r = -ENOENT;
	PQclear(res);
	return r;
}

/* The same with the last parameter a blob. */
static int exec_blob(struct store *s, const char *sql, int n, const char **p, const uint8_t *blob,
		     size_t len, bool want_change)
{
	char *hex = NULL;
	int r = pg_blob_param(blob, len, &hex);

	if (r < 0)
		return r;
	p[n - 1] = hex;
	r = exec_n(s, sql, n, p, want_change);
	free(hex);
	return r;
}

/* ---- meta ---- */

int pg_vault_meta_get(struct store *s, const char *name, uint8_t **ret, size_t *ret_len)
{
	return query_blob(s, "SELECT value FROM vault_meta WHERE name = $1", name, ret, ret_len);
}

int pg_vault_meta_put(struct store *s, const char *name, const uint8_t *v, size_t len)
{
	const char *p[] = { name, NULL };

	return exec_blob(s,
			 "INSERT INTO vault_meta (name, value) VALUES ($1, $2::bytea)"
			 " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
			 2, p, v, len, false);
}

/* ---- data keys ---- */

int pg_vault_key_get(struct store *s, const char *vault_id, uint8_t **ret, size_t *ret_len)
{
	return query_blob(s, "SELECT wrapped FROM vault_keys WHERE vault_id = $1", vault_id, ret,
			  ret_len);
}

int pg_vault_key_add(struct store *s, const char *vault_id, const uint8_t *w, size_t len)
{
	struct pg_num now;
	const char *p[] = { vault_id, pg_num(&now, store_now()), NULL };

	const char *q[] = { vault_id };
	int r;

	/* The key of a vault that does not exist is -ENOENT, and a second key
	 * for one vault (another instance won) -EEXIST, as on SQLite. The
	 * conflict is not an error of the statement (ON CONFLICT DO NOTHING):
	 * it runs inside the caller's transaction, which a unique violation
	 * would abort, and the caller goes on to read the key that won. */
	r = exec_blob(s,
		      "INSERT INTO vault_keys (vault_id, created_at, rotated_at, wrapped)"
		      " SELECT $1, $2, $2, $3::bytea"
		      " WHERE EXISTS (SELECT 1 FROM resources WHERE id = $1)"
		      " ON CONFLICT (vault_id) DO NOTHING",
		      3, p, w, len, true);
	if (r == -ENOENT) {
		r = exec_n(s, "SELECT 1 FROM vault_keys WHERE vault_id = $1", 1, q, true);
		r = r == 0 ? -EEXIST : r;
	}
	return r;
}

int pg_vault_key_update(struct store *s, const char *vault_id, const uint8_t *w, size_t len)
{
	struct pg_num now;
	const char *p[] = { vault_id, pg_num(&now, store_now()), NULL };
	char *hex = NULL;
	int r = pg_blob_param(w, len, &hex);

	if (r < 0)
		return r;
	p[2] = hex;
	r = exec_n(s,
		   "UPDATE vault_keys SET rotated_at = $2, wrapped = $3::bytea WHERE vault_id = $1",
		   3, p, true);
	/* A deleted vault's key is re-wrapped too (pg_vaultdel.c). */
	if (r == -ENOENT)
		r = exec_n(s,
			   "UPDATE deleted_vaults SET key_rotated_at = $2, wrapped = $3::bytea"
			   " WHERE id = $1 AND wrapped IS NOT NULL",
			   3, p, true);
	free(hex);
	return r;
}

int pg_vault_key_foreach(struct store *s,
			 int (*fn)(const char *vault_id, const uint8_t *w, size_t len, void *ud),
			 void *ud)
{
	PGresult *res = NULL;
	int r = pg_q(s, &res,
		     "SELECT vault_id, wrapped FROM vault_keys UNION ALL"
		     " SELECT id, wrapped FROM deleted_vaults WHERE wrapped IS NOT NULL ORDER BY 1",
		     0, NULL);

	for (int i = 0; r == 0 && i < PQntuples(res); i++) {
		uint8_t *w = NULL;
		size_t n = 0;

		if ((r = pg_blob_value(res, i, 1, &w, &n)) < 0)
			break;
		r = fn(PQgetvalue(res, i, 0), w, n, ud);
		free(w);
	}
	PQclear(res);
	return r;
}

/* ---- secrets ---- */

#define SECRET_COLS                                                                               \
	"s.name, s.created_at, s.updated_at, COALESCE(s.deleted_at, 0), COALESCE(s.purge_at, 0)," \
	" (SELECT version FROM vault_secret_versions v WHERE v.vault_id = s.vault_id AND"         \
	"   v.name = s.name ORDER BY seq DESC LIMIT 1),"                                          \
	" (SELECT content_type FROM vault_secret_versions v WHERE v.vault_id = s.vault_id AND"    \
	"   v.name = s.name ORDER BY seq DESC LIMIT 1),"                                          \
	" (SELECT COUNT(*) FROM vault_secret_versions v WHERE v.vault_id = s.vault_id AND"        \
	"   v.name = s.name)"

static void secret_row(const PGresult *res, int i, struct store_secret *out)
{
	memset(out, 0, sizeof(*out));
	util_strlcpy(out->name, PQgetvalue(res, i, 0), sizeof(out->name));
	out->created_at = pg_i64(res, i, 1);
	out->updated_at = pg_i64(res, i, 2);
	out->deleted_at = pg_i64(res, i, 3);
	out->purge_at = pg_i64(res, i, 4);
	util_strlcpy(out->version, PQgetvalue(res, i, 5), sizeof(out->version));
	util_strlcpy(out->content_type, PQgetvalue(res, i, 6), sizeof(out->content_type));
	out->n_versions = pg_i64(res, i, 7);
}

int pg_secret_get(struct store *s, const char *vault_id, const char *name, struct store_secret *ret)
{
	const char *p[] = { vault_id, name };
	PGresult *res = NULL;
	int r = pg_row(s, &res,
		       "SELECT " SECRET_COLS " FROM vault_secrets s"
		       " WHERE s.vault_id = $1 AND s.name = $2",
		       2, p);

	if (r == 0)
		secret_row(res, 0, ret);
	PQclear(res);
	return r;
}

int pg_secret_count(struct store *s, const char *vault_id, int64_t *ret)
{
	const char *p[] = { vault_id };
	PGresult *res = NULL;
	int r = pg_row(s, &res, "SELECT COUNT(*) FROM vault_secrets WHERE vault_id = $1", 1, p);

	if (r == 0)
		*ret = pg_i64(res, 0, 0);
	PQclear(res);
	return r == -ENOENT ? -BERR_STORE : r;
}

struct add_version {
	const char *p[6]; /* vault_id, name, version, content_type, now, sealed hex */
};

static int add_version_fn(struct store *s, void *ud)
{
	struct add_version *a = ud;
	PGresult *res = NULL;
	int r;

	/* Created or touched, then locked: a second instance adding a version
	 * of the same secret waits here, and then numbers after ours. */
	r = pg_row(
		s, &res,
		"INSERT INTO vault_secrets (vault_id, name, created_at, updated_at)"
		" VALUES ($1, $2, $3, $3) ON CONFLICT (vault_id, name) DO UPDATE SET"
		" updated_at = CASE WHEN vault_secrets.deleted_at IS NULL THEN excluded.updated_at"
		" ELSE vault_secrets.updated_at END RETURNING deleted_at",
		3, (const char *const[]){ a->p[0], a->p[1], a->p[4] });
	if (r == 0 && pg_val(res, 0, 0))
		r = -EEXIST; /* soft-deleted: recover or purge it first */
	PQclear(res);
	if (r < 0)
		return r == -ENOENT ? -BERR_STORE : r;
	return exec_n(s,
		      "INSERT INTO vault_secret_versions"
		      " (vault_id, name, version, content_type, seq, created_at, sealed)"
		      " SELECT $1, $2, $3, $4, COALESCE(MAX(seq), 0) + 1, $5, $6::bytea"
		      " FROM vault_secret_versions WHERE vault_id = $1 AND name = $2",
		      6, a->p, false);
}

int pg_secret_add_version(struct store *s, const char *vault_id, const char *name,
			  const char *version, const char *content_type, const uint8_t *sealed,
			  size_t sealed_len)
{
	struct pg_num now;
	struct add_version a = { { vault_id, name, version, content_type, pg_num(&now, store_now()),
				   NULL } };
	char *hex = NULL;
	int r = pg_blob_param(sealed, sealed_len, &hex);

	if (r < 0)
		return r;
	a.p[5] = hex;
	r = pg_tx(s, add_version_fn, &a);
	free(hex);
	return r;
}

int pg_secret_version_get(struct store *s, const char *vault_id, const char *name,
			  const char *version, struct store_secret_version *ret)
{
	const char *p[] = { vault_id, name, version };
	struct store_secret_version out = { 0 };
	PGresult *res = NULL;
	int r = pg_row(
		s, &res,
		"SELECT v.version, COALESCE(v.content_type, ''), v.seq, v.created_at, v.sealed"
		" FROM vault_secret_versions v JOIN vault_secrets s"
		"   ON s.vault_id = v.vault_id AND s.name = v.name"
		" WHERE v.vault_id = $1 AND v.name = $2 AND s.deleted_at IS NULL"
		"   AND ($3::text IS NULL OR v.version = $3)"
		" ORDER BY v.seq DESC LIMIT 1",
		3, p);

	if (r == 0) {
		util_strlcpy(out.version, PQgetvalue(res, 0, 0), sizeof(out.version));
		util_strlcpy(out.content_type, PQgetvalue(res, 0, 1), sizeof(out.content_type));
		out.seq = pg_i64(res, 0, 2);
		out.created_at = pg_i64(res, 0, 3);
		r = pg_blob_value(res, 0, 4, &out.sealed, &out.sealed_len);
		if (r == 0)
			*ret = out;
	}
	PQclear(res);
	return r;
}

int pg_secret_foreach(struct store *s, const char *vault_id, bool deleted,
		      int (*fn)(const struct store_secret *sec, void *ud), void *ud)
{
	const char *p[] = { vault_id };
	PGresult *res = NULL;
	struct store_secret sec;
	int r = pg_q(s, &res,
		     deleted ? "SELECT " SECRET_COLS " FROM vault_secrets s WHERE s.vault_id = $1"
			       " AND s.deleted_at IS NOT NULL ORDER BY s.name"
			     : "SELECT " SECRET_COLS " FROM vault_secrets s WHERE s.vault_id = $1"
			       " AND s.deleted_at IS NULL ORDER BY s.name",
		     1, p);

	for (int i = 0; r == 0 && i < PQntuples(res); i++) {
		secret_row(res, i, &sec);
		r = fn(&sec, ud);
	}
	PQclear(res);
	return r;
}

int pg_secret_versions_foreach(struct store *s, const char *vault_id, const char *name,
			       int (*fn)(const struct store_secret_version *v, void *ud), void *ud)
{
	const char *p[] = { vault_id, name };
	struct store_secret_version v;
	PGresult *res = NULL;
	int r = pg_q(
		s, &res,
		"SELECT version, COALESCE(content_type, ''), seq, created_at"
		" FROM vault_secret_versions WHERE vault_id = $1 AND name = $2 ORDER BY seq DESC",
		2, p);

	for (int i = 0; r == 0 && i < PQntuples(res); i++) {
		memset(&v, 0, sizeof(v));
		util_strlcpy(v.version, PQgetvalue(res, i, 0), sizeof(v.version));
		util_strlcpy(v.content_type, PQgetvalue(res, i, 1), sizeof(v.content_type));
		v.seq = pg_i64(res, i, 2);
		v.created_at = pg_i64(res, i, 3);
		r = fn(&v, ud);
	}
	PQclear(res);
	return r;
}

int pg_secret_soft_delete(struct store *s, const char *vault_id, const char *name, int64_t now,
			  int64_t purge_at)
{
	struct pg_num n, pa;
	const char *p[] = { vault_id, name, pg_num(&n, now), pg_num(&pa, purge_at) };

	return exec_n(s,
		      "UPDATE vault_secrets SET deleted_at = $3, purge_at = $4, updated_at = $3"
		      " WHERE vault_id = $1 AND name = $2 AND deleted_at IS NULL",
		      4, p, true);
}

int pg_secret_recover(struct store *s, const char *vault_id, const char *name)
{
	struct pg_num n;
	const char *p[] = { vault_id, name, pg_num(&n, store_now()) };

	return exec_n(s,
		      "UPDATE vault_secrets SET deleted_at = NULL, purge_at = NULL, updated_at = $3"
		      " WHERE vault_id = $1 AND name = $2 AND deleted_at IS NOT NULL",
		      3, p, true);
}

int pg_secret_purge(struct store *s, const char *vault_id, const char *name)
{
	const char *p[] = { vault_id, name };

	/* The versions go with it (ON DELETE CASCADE). */
	return exec_n(s, "DELETE FROM vault_secrets WHERE vault_id = $1 AND name = $2", 2, p, true);
}

int pg_secret_purge_expired(struct store *s, const char *vault_id, int64_t now)
{
	struct pg_num n;
	const char *p[] = { vault_id, pg_num(&n, now) };

	return exec_n(s,
		      "DELETE FROM vault_secrets WHERE ($1::text IS NULL OR vault_id = $1)"
		      " AND deleted_at IS NOT NULL AND purge_at <= $2",
		      2, p, false);
}

/* ---- access policies ---- */

int pg_vault_policy_get(struct store *s, const char *vault_id, const char *principal,
			unsigned *ret_permissions)
{
	const char *p[] = { vault_id, principal };
	PGresult *res = NULL;
	int r = pg_row(
		s, &res,
		"SELECT permissions FROM vault_policies WHERE vault_id = $1 AND principal = $2", 2,
		p);

	if (r == 0)
		*ret_permissions = (unsigned)pg_i64(res, 0, 0);
	PQclear(res);
	return r;
}

int pg_vault_policy_put(struct store *s, const char *vault_id, const char *principal,
			unsigned permissions, bool *ret_created)
{
	struct pg_num perm, now;
	const char *p[] = { vault_id, principal, pg_num(&perm, permissions),
			    pg_num(&now, store_now()) };
	PGresult *res = NULL;
	/* One statement: the upsert says whether it inserted (xmax = 0), so
	 * two instances putting the same policy both succeed, one created. */
	int r = pg_row(s, &res,
		       "INSERT INTO vault_policies (vault_id, principal, permissions, created_at,"
		       " updated_at) SELECT $1, $2, $3, $4, $4"
		       " WHERE EXISTS (SELECT 1 FROM resources WHERE id = $1)"
		       " ON CONFLICT (vault_id, principal) DO UPDATE SET"
		       " permissions = excluded.permissions, updated_at = excluded.updated_at"
		       " RETURNING (xmax = 0)",
		       4, p);

	if (r == 0 && ret_created)
		*ret_created = pg_val(res, 0, 0) && pg_val(res, 0, 0)[0] == 't';
	PQclear(res);
	return r;
}

int pg_vault_policy_delete(struct store *s, const char *vault_id, const char *principal)
{
	const char *p[] = { vault_id, principal };

	return exec_n(s, "DELETE FROM vault_policies WHERE vault_id = $1 AND principal = $2", 2, p,
		      true);
}

int pg_vault_policy_foreach(struct store *s, const char *vault_id,
			    int (*fn)(const char *principal, unsigned permissions, void *ud),
			    void *ud)
{
	const char *p[] = { vault_id };
	PGresult *res = NULL;
	int r = pg_q(s, &res,
		     "SELECT principal, permissions FROM vault_policies WHERE vault_id = $1"
		     " ORDER BY principal",
		     1, p);

	for (int i = 0; r == 0 && i < PQntuples(res); i++)
		r = fn(PQgetvalue(res, i, 0), (unsigned)pg_i64(res, i, 1), ud);
	PQclear(res);
	return r;
}
