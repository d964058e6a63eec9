/* SQLite backend: users, browser sessions, API tokens, role assignments.
 *
 * Every value read back from the database is copied into a bounded buffer;
 * a value that does not fit means the database holds something this code
 * never wrote, and is reported as a store failure. */
#include "store/internal.h"
#include "store/sqlite_rows.h"

#include <errno.h>
#include <stdio.h>
#include <sodium.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"

/* Maps the code that ended a loop over rows: SQLITE_DONE is success, and
 * anything else a failure, never 0. */
static int end_rc(int rc)
{
	int r;

	if (rc == SQLITE_DONE)
		return 0;
	r = store_rc(rc);
	return r < 0 ? r : -BERR_STORE;
}

static sqlite3_stmt *prepare_hash(struct store *s, const char *sql, const uint8_t hash[32])
{
	sqlite3_stmt *st = store_prepare(s, sql);

	if (st && sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC) != SQLITE_OK) {
		sqlite3_finalize(st);
		return NULL;
	}
	return st;
}

/* The functions below (and exec_change, sqlite_rows.h) take a prepared
 * statement and finalize it. They accept NULL, what a failed prepare gives,
 * as -BERR_STORE. */

/* Like exec_change, for a statement that names what it changes: -ENOENT
 * when it changed no row. */
static int exec_found(struct store *s, sqlite3_stmt *st)
{
	int n = 0, r = exec_change(s, st, &n);

	if (r < 0)
		return r;
	return n > 0 ? 0 : -ENOENT;
}

/* Steps a query that yields one integer, such as a count. */
static int get_int64(sqlite3_stmt *st, int64_t *ret)
{
	int rc;

	if (!st)
		return -BERR_STORE;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -BERR_STORE : end_rc(rc);
}

static int col_text(sqlite3_stmt *st, int col, char *dst, size_t size)
{
	const unsigned char *v = sqlite3_column_text(st, col);
	int n = sqlite3_column_bytes(st, col);

	if (!v) {
		dst[0] = '\0';
		return 0;
	}
	if (n < 0 || (size_t)n >= size || memchr(v, '\0', (size_t)n))
		return -BERR_STORE;
	memcpy(dst, v, (size_t)n);
	dst[n] = '\0';
	return 0;
}

/* The column limits of a user, for both ways of creating one. */
static bool user_args_fit(const char *name, const char *password_hash)
{
	return fits(name, 64) && name[0] && fits(password_hash, 127) && password_hash[0];
}

/* ---- users ---------------------------------------------------------- */

#define USER_COLS "id, name, password_hash, disabled, created_at, updated_at"

static int row_user(sqlite3_stmt *st, struct store_user *u)
{
	u->id = sqlite3_column_int64(st, 0);
	if (col_text(st, 1, u->name, sizeof(u->name)) < 0 ||
	    col_text(st, 2, u->password_hash, sizeof(u->password_hash)) < 0)
		return -BERR_STORE;
	u->disabled = sqlite3_column_int(st, 3) != 0;
	u->created_at = sqlite3_column_int64(st, 4);
	u->updated_at = sqlite3_column_int64(st, 5);
	return 0;
}

/* Steps a query that yields at most one user. */
static int get_user(sqlite3_stmt *st, struct store_user *ret)
{
	struct store_user u;
	int r = step_row(st);

	if (r == 0) {
		memset(&u, 0, sizeof(u));
		r = row_user(st, &u);
		if (r == 0)
			*ret = u;
		sodium_memzero(&u, sizeof(u));
	}
	sqlite3_finalize(st);
	return r;
}

int sq_user_count(struct store *s, int64_t *ret)
{
	return get_int64(store_prepare(s, "SELECT count(*) FROM users"), ret);
}

int sq_user_get(struct store *s, const char *name, struct store_user *ret)
{
	sqlite3_stmt *st;

	if (!fits(name, 64))
		return -ENOENT;
	st = prepare_text(s, "SELECT " USER_COLS " FROM users WHERE name = ?", name);
	if (!st)
		return -BERR_STORE;
	return get_user(st, ret);
}

int sq_user_get_by_id(struct store *s, int64_t id, struct store_user *ret)
{
	sqlite3_stmt *st = store_prepare(s, "SELECT " USER_COLS " FROM users WHERE id = ?");

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 1, id);
	return get_user(st, ret);
}

struct user_put {
	const char *name, *hash;
	bool created;
	int64_t id;
};

static int user_put_tx(struct store *s, void *ud)
{
	struct user_put *p = ud;
	sqlite3_stmt *st;
	int64_t now = store_now();
	int rc;

	st = prepare_text(s, "SELECT id FROM users WHERE name = ?", p->name);
	if (!st)
		return -BERR_STORE;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		p->id = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_rc(rc);

	if (rc == SQLITE_ROW) {
		p->created = false;
		st = store_prepare(
			s, "UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?");
		if (!st)
			return -BERR_STORE;
		sqlite3_bind_text(st, 1, p->hash, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, now);
		sqlite3_bind_int64(st, 3, p->id);
		return exec_change(s, st, NULL);
	}
	p->created = true;
	st = store_prepare(
		s, "INSERT INTO users (name, password_hash, disabled, created_at, updated_at)"
		   " VALUES (?, ?, 0, ?, ?)");
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, p->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, p->hash, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now);
	sqlite3_bind_int64(st, 4, now);
	rc = exec_change(s, st, NULL);
	if (rc == 0)
		p->id = sqlite3_last_insert_rowid(store_db(s));
	return rc;
}

int sq_user_put(struct store *s, const char *name, const char *password_hash, bool *ret_created,
		int64_t *ret_id)
{
	struct user_put p = { .name = name, .hash = password_hash };
	int r;

	if (!user_args_fit(name, password_hash))
		return -EINVAL;
	r = tx_run(s, user_put_tx, &p);
	if (r < 0)
		return r;
	if (ret_created)
		*ret_created = p.created;
	if (ret_id)
		*ret_id = p.id;
	return 0;
}

struct user_first {
	struct user_put put;
	const char *role_id, *role, *scope;
};

static int user_first_tx(struct store *s, void *ud)
{
	struct user_first *f = ud;
	char principal[80];
	int64_t n = 0;
	int r;

	/* Counting inside the transaction makes two instances starting on one
	 * empty store create one first user, not two. */
	if ((r = sq_user_count(s, &n)) < 0)
		return r;
	if (n > 0)
		return -EEXIST;
	if ((r = user_put_tx(s, &f->put)) < 0)
		return r;
	snprintf(principal, sizeof(principal), "user:%s", f->put.name);
	return sq_role_put(s, f->role_id, principal, f->role, f->scope, NULL);
}

int sq_user_create_first(struct store *s, const char *name, const char *password_hash,
			 const char *role_id, const char *role, const char *scope)
{
	struct user_first f = {
		.put = { .name = name, .hash = password_hash },
		.role_id = role_id,
		.role = role,
		.scope = scope,
	};

	if (!user_args_fit(name, password_hash))
		return -EINVAL;
	return tx_run(s, user_first_tx, &f);
}

int sq_user_set_disabled(struct store *s, const char *name, bool disabled)
{
	sqlite3_stmt *st;

	if (!fits(name, 64))
		return -ENOENT;
	st = store_prepare(s, "UPDATE users SET disabled = ?, updated_at = ? WHERE name = ?");
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int(st, 1, disabled ? 1 : 0);
	sqlite3_bind_int64(st, 2, store_now());
	sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
	return exec_found(s, st);
}

static int user_delete_tx(struct store *s, void *ud)
{
	const char *name = ud;
	char principal[80];
	int r;

	/* Sessions and tokens go with the row (ON DELETE CASCADE); role
	 * assignments name the principal as text, so they go explicitly, or a
	 * later user of the same name would inherit them. */
	r = exec_found(s, prepare_text(s, "DELETE FROM users WHERE name = ?", name));
	if (r < 0)
		return r;
	snprintf(principal, sizeof(principal), "user:%s", name);
	return exec_change(
		s, prepare_text(s, "DELETE FROM role_assignments WHERE principal = ?", principal),
		NULL);
}

int sq_user_delete(struct store *s, const char *name)
{
	if (!fits(name, 64))
		return -ENOENT;
	return tx_run(s, user_delete_tx, (void *)name);
}

int sq_user_foreach(struct store *s, int (*fn)(const struct store_user *u, void *ud), void *ud)
{
	sqlite3_stmt *st = store_prepare(s, "SELECT " USER_COLS " FROM users ORDER BY name");
	struct store_user u;
	int rc, r = 0;

	if (!st)
		return -BERR_STORE;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&u, 0, sizeof(u));
		if ((r = row_user(st, &u)) < 0)
			break;
		r = fn(&u, ud);
		if (r != 0)
			break;
	}
	sodium_memzero(&u, sizeof(u));
	sqlite3_finalize(st);
	if (r != 0)
		return r < 0 ? r : 0;
	return end_rc(rc);
}

/* ---- browser sessions and API tokens -------------------------------- */

/* Inserts a browser session or an API token: sql's parameters are the
 * token's hash, the user, one text column, the creation time and the
 * expiry, in that order. */
static int add_hashed(struct store *s, const char *sql, const uint8_t hash[32], int64_t user_id,
		      const char *text, int64_t expires_at)
{
	sqlite3_stmt *st = prepare_hash(s, sql, hash);

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 2, user_id);
	sqlite3_bind_text(st, 3, text, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, store_now());
	sqlite3_bind_int64(st, 5, expires_at);
	return exec_change(s, st, NULL);
}

int sq_login_add(struct store *s, const uint8_t hash[32], int64_t user_id, const char *csrf,
		 int64_t expires_at)
{
	if (!fits(csrf, 63))
		return -EINVAL;
	return add_hashed(
		s,
		"INSERT INTO login_sessions (token_hash, user_id, csrf_token, created_at, expires_at)"
		" VALUES (?, ?, ?, ?, ?)",
		hash, user_id, csrf, expires_at);
}

int sq_login_get(struct store *s, const uint8_t hash[32], int64_t *ret_user_id, char ret_csrf[64],
		 int64_t *ret_expires_at)
{
	sqlite3_stmt *st = prepare_hash(
		s,
		"SELECT user_id, csrf_token, expires_at FROM login_sessions WHERE token_hash = ?",
		hash);
	char csrf[64];
	int r;

	if (!st)
		return -BERR_STORE;
	if ((r = step_row(st)) == 0 && (r = col_text(st, 1, csrf, sizeof(csrf))) == 0) {
		*ret_user_id = sqlite3_column_int64(st, 0);
		memcpy(ret_csrf, csrf, sizeof(csrf));
		*ret_expires_at = sqlite3_column_int64(st, 2);
	}
	sqlite3_finalize(st);
	return r;
}

int sq_login_delete(struct store *s, const uint8_t hash[32])
{
	return exec_found(s,
			  prepare_hash(s, "DELETE FROM login_sessions WHERE token_hash = ?", hash));
}

int sq_login_delete_user(struct store *s, int64_t user_id, const uint8_t keep[32])
{
	static const uint8_t none[32];
	sqlite3_stmt *st = store_prepare(
		s, "DELETE FROM login_sessions WHERE user_id = ? AND token_hash <> ?");

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 1, user_id);
	/* No real session hashes to all zeros. */
	sqlite3_bind_blob(st, 2, keep ? keep : none, 32, SQLITE_STATIC);
	return exec_change(s, st, NULL);
}

int sq_login_trim(struct store *s, int64_t user_id, int keep)
{
	sqlite3_stmt *st = store_prepare(
		s, "DELETE FROM login_sessions WHERE user_id = ?1 AND token_hash NOT IN ("
		   " SELECT token_hash FROM login_sessions WHERE user_id = ?1"
		   " ORDER BY created_at DESC, rowid DESC LIMIT ?2)");

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 1, user_id);
	sqlite3_bind_int(st, 2, keep < 0 ? 0 : keep);
	return exec_change(s, st, NULL);
}

int sq_token_add(struct store *s, const uint8_t hash[32], int64_t user_id, const char *name,
		 int64_t expires_at)
{
	if (name && !fits(name, 255))
		return -EINVAL;
	return add_hashed(
		s,
		"INSERT INTO api_tokens (token_hash, user_id, name, created_at, expires_at)"
		" VALUES (?, ?, ?, ?, ?)",
		hash, user_id, name, expires_at);
}

int sq_token_get(struct store *s, const uint8_t hash[32], int64_t *ret_user_id,
		 int64_t *ret_expires_at)
{
	sqlite3_stmt *st = prepare_hash(
		s, "SELECT user_id, expires_at FROM api_tokens WHERE token_hash = ?", hash);
	int r;

	if (!st)
		return -BERR_STORE;
	if ((r = step_row(st)) == 0) {
		*ret_user_id = sqlite3_column_int64(st, 0);
		*ret_expires_at = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	return r;
}

int sq_token_delete(struct store *s, const uint8_t hash[32])
{
	return exec_found(s, prepare_hash(s, "DELETE FROM api_tokens WHERE token_hash = ?", hash));
}

int sq_token_count(struct store *s, int64_t user_id, int64_t now, int64_t *ret)
{
	sqlite3_stmt *st = store_prepare(
		s, "SELECT count(*) FROM api_tokens WHERE user_id = ? AND expires_at > ?");

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 1, user_id);
	sqlite3_bind_int64(st, 2, now);
	return get_int64(st, ret);
}

static int purge_tx(struct store *s, void *ud)
{
	static const char *const sql[] = {
		"DELETE FROM login_sessions WHERE expires_at <= ?",
		"DELETE FROM api_tokens WHERE expires_at <= ?",
	};
	int64_t now = *(const int64_t *)ud;

	for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
		sqlite3_stmt *st = store_prepare(s, sql[i]);
		int r;

		if (!st)
			return -BERR_STORE;
		sqlite3_bind_int64(st, 1, now);
		if ((r = exec_change(s, st, NULL)) < 0)
			return r;
	}
	return 0;
}

int sq_ident_purge_expired(struct store *s, int64_t now)
{
	return tx_run(s, purge_tx, &now);
}

/* ---- role assignments ----------------------------------------------- */

struct role_put {
	const char *id, *principal, *role, *scope;
	bool created;
};

static int role_put_tx(struct store *s, void *ud)
{
	struct role_put *p = ud;
	sqlite3_stmt *st;
	int rc;

	st = prepare_text(s, "SELECT 1 FROM role_assignments WHERE id = ?", p->id);
	if (!st)
		return -BERR_STORE;
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_rc(rc);
	p->created = rc == SQLITE_DONE;
	if (p->created)
		st = store_prepare(
			s, "INSERT INTO role_assignments (principal, role, scope, id, created_at)"
			   " VALUES (?, ?, ?, ?, ?)");
	else
		st = store_prepare(s,
				   "UPDATE role_assignments SET principal = ?, role = ?, scope = ?"
				   " WHERE id = ?");
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, p->principal, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, p->role, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, p->scope, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, p->id, -1, SQLITE_STATIC);
	if (p->created)
		sqlite3_bind_int64(st, 5, store_now());
	return exec_change(s, st, NULL);
}

/* The column limits of a role assignment, for both ways of writing one. */
static bool role_args_fit(const char *id, const char *principal, const char *role,
			  const char *scope)
{
	return fits(id, 128) && id[0] && fits(principal, 80) && fits(role, 32) && fits(scope, 256);
}

int sq_role_put(struct store *s, const char *id, const char *principal, const char *role,
		const char *scope, bool *ret_created)
{
	struct role_put p = { .id = id, .principal = principal, .role = role, .scope = scope };
	int r;

	if (!role_args_fit(id, principal, role, scope))
		return -EINVAL;
	r = tx_run(s, role_put_tx, &p);
	if (r < 0)
		return r;
	if (ret_created)
		*ret_created = p.created;
	return 0;
}

#define ROLE_COLS "id, principal, role, scope, created_at"

static int row_role(sqlite3_stmt *st, struct store_role *ra)
{
	if (col_text(st, 0, ra->id, sizeof(ra->id)) < 0 ||
	    col_text(st, 1, ra->principal, sizeof(ra->principal)) < 0 ||
	    col_text(st, 2, ra->role, sizeof(ra->role)) < 0 ||
	    col_text(st, 3, ra->scope, sizeof(ra->scope)) < 0)
		return -BERR_STORE;
	ra->created_at = sqlite3_column_int64(st, 4);
	return 0;
}

int sq_role_get(struct store *s, const char *id, struct store_role *ret)
{
	sqlite3_stmt *st;
	struct store_role ra;
	int r;

	if (!fits(id, 128))
		return -ENOENT;
	st = prepare_text(s, "SELECT " ROLE_COLS " FROM role_assignments WHERE id = ?", id);
	if (!st)
		return -BERR_STORE;
	if ((r = step_row(st)) == 0 && (r = row_role(st, &ra)) == 0)
		*ret = ra;
	sqlite3_finalize(st);
	return r;
}

int sq_role_delete(struct store *s, const char *id)
{
	if (!fits(id, 128))
		return -ENOENT;
	return exec_found(s, prepare_text(s, "DELETE FROM role_assignments WHERE id = ?", id));
}

int sq_role_foreach(struct store *s, int (*fn)(const struct store_role *ra, void *ud), void *ud)
{
	sqlite3_stmt *st =
		store_prepare(s, "SELECT " ROLE_COLS " FROM role_assignments ORDER BY id");
	struct store_role ra;
	int rc, r = 0;

	if (!st)
		return -BERR_STORE;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((r = row_role(st, &ra)) < 0)
			break;
		if ((r = fn(&ra, ud)) != 0)
			break;
	}
	sqlite3_finalize(st);
	if (r != 0)
		return r < 0 ? r : 0;
	return end_rc(rc);
}

int sq_role_foreach_principal(struct store *s, const char *principal,
			      int (*fn)(const char *role, const char *scope, void *ud), void *ud)
{
	sqlite3_stmt *st = store_prepare(
		s, "SELECT role, scope FROM role_assignments WHERE principal = ? ORDER BY id");
	char role[33], scope[257];
	int rc, r = 0;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, principal, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (col_text(st, 0, role, sizeof(role)) < 0 ||
		    col_text(st, 1, scope, sizeof(scope)) < 0) {
			r = -BERR_STORE;
			break;
		}
		if ((r = fn(role, scope, ud)) != 0)
			break;
	}
	sqlite3_finalize(st);
	if (r != 0)
		return r < 0 ? r : 0;
	return end_rc(rc);
}

/* ---- guarded role changes ------------------------------------------- */

int sq_role_root_owners(struct store *s, int64_t *ret)
{
	return get_int64(
		store_prepare(s, "SELECT count(DISTINCT u.id) FROM role_assignments r JOIN users u"
				 " ON r.principal = 'user:' || u.name"
				 " WHERE r.role = 'Owner' AND r.scope = '/' AND u.disabled = 0"),
		ret);
}

/* -EAGAIN unless the assignment id is in the state the caller saw. */
static int role_expect(struct store *s, const char *id, const char *expect_scope)
{
	struct store_role ra;
	int r = sq_role_get(s, id, &ra);

	if (r == -ENOENT)
		return expect_scope ? -EAGAIN : 0;
	if (r < 0)
		return r;
	if (!expect_scope || strcmp(ra.scope, expect_scope) != 0)
		return -EAGAIN;
	return 0;
}

struct role_checked {
	struct role_put put;
	const char *expect_scope;
	bool is_delete;
};

static int role_checked_tx(struct store *s, void *ud)
{
	struct role_checked *p = ud;
	int64_t before = 0, after = 0;
	int r;

	if ((r = role_expect(s, p->put.id, p->expect_scope)) < 0) {
		struct store_role gone;

		/* Deleting what is gone already is "not found", not a clash. */
		if (r == -EAGAIN && p->is_delete && sq_role_get(s, p->put.id, &gone) == -ENOENT)
			return -ENOENT;
		return r;
	}
	if (!p->is_delete && strncmp(p->put.principal, "user:", 5) == 0) {
		struct store_user u;

		r = sq_user_get(s, p->put.principal + 5, &u);
		sodium_memzero(&u, sizeof(u));
		if (r == -ENOENT)
			return -ESRCH;
		if (r < 0)
			return r;
	}
	if ((r = sq_role_root_owners(s, &before)) < 0)
		return r;
	if (p->is_delete)
		r = sq_role_delete(s, p->put.id);
	else
		r = role_put_tx(s, &p->put);
	if (r < 0)
		return r;
	if ((r = sq_role_root_owners(s, &after)) < 0)
		return r;
	if (before > 0 && after == 0)
		return -EMLINK;
	return 0;
}

int sq_role_put_checked(struct store *s, const char *id, const char *principal, const char *role,
			const char *scope, const char *expect_scope, bool *ret_created)
{
	struct role_checked p = {
		.put = { .id = id, .principal = principal, .role = role, .scope = scope },
		.expect_scope = expect_scope,
	};
	int r;

	if (!role_args_fit(id, principal, role, scope))
		return -EINVAL;
	r = tx_run(s, role_checked_tx, &p);
	if (r < 0)
		return r;
	if (ret_created)
		*ret_created = p.put.created;
	return 0;
}

int sq_role_delete_checked(struct store *s, const char *id, const char *expect_scope)
{
	struct role_checked p = { .put = { .id = id },
				  .expect_scope = expect_scope,
				  .is_delete = true };

	if (!fits(id, 128) || !expect_scope)
		return -ENOENT;
	return tx_run(s, role_checked_tx, &p);
}

int sq_token_delete_user(struct store *s, int64_t user_id)
{
	sqlite3_stmt *st = store_prepare(s, "DELETE FROM api_tokens WHERE user_id = ?");

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 1, user_id);
	return exec_change(s, st, NULL);
}
