/* PostgreSQL backend: users, browser sessions, API tokens, and ending what
 * an account has open. Same contract as sqlite_ident.c: every value read
 * back is copied into a bounded buffer, and a value that does not fit is a
 * store failure. Uniqueness (a user's name, a token's hash) is the
 * database's constraints' job, so that two instances inserting at once get
 * one row and -EEXIST, never two rows. */
#include "store/pg_internal.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"

static bool fits(const char *v, size_t max)
{
	return v && strlen(v) <= max;
}

static bool user_args_fit(const char *name, const char *password_hash)
{
	return fits(name, 64) && name[0] && fits(password_hash, 127) && password_hash[0];
}

/* A statement that names what it changes: -ENOENT when it changed none. */
static int change_found(struct store *s, const char *sql, int n, const char *const *p)
{
	PGresult *res = NULL;
	int r = pg_q(s, &res, sql, n, p);

	if (r == 0 && pg_changes(res) == 0)
		r = -ENOENT;
	PQclear(res);
	return r;
}

static int get_count(struct store *s, const char *sql, int n, const char *const *p, int64_t *ret)
{
	PGresult *res = NULL;
	int r = pg_row(s, &res, sql, n, p);

	if (r == -ENOENT)
		r = -BERR_STORE; /* a count always answers a row */
	if (r == 0)
		*ret = pg_i64(res, 0, 0);
	PQclear(res);
	return r;
}

/* ---- users ---------------------------------------------------------- */

#define USER_COLS "id, name, password_hash, disabled, created_at, updated_at"

static int row_user(const PGresult *res, int i, struct store_user *u)
{
	const char *disabled = pg_val(res, i, 3);

	memset(u, 0, sizeof(*u));
	u->id = pg_i64(res, i, 0);
	if (pg_copy(u->name, sizeof(u->name), pg_val(res, i, 1)) < 0 ||
	    pg_copy(u->password_hash, sizeof(u->password_hash), pg_val(res, i, 2)) < 0)
		return -BERR_STORE;
	u->disabled = disabled && disabled[0] == 't';
	u->created_at = pg_i64(res, i, 4);
	u->updated_at = pg_i64(res, i, 5);
	return 0;
}

static int get_user(struct store *s, const char *sql, const char *param, struct store_user *ret)
{
	const char *p[] = { param };
	struct store_user u;
	PGresult *res = NULL;
	int r = pg_row(s, &res, sql, 1, p);

	if (r == 0 && (r = row_user(res, 0, &u)) == 0)
		*ret = u;
	sodium_memzero(&u, sizeof(u));
	PQclear(res);
	return r;
}

int pg_user_count(struct store *s, int64_t *ret)
{
	return get_count(s, "SELECT count(*) FROM users", 0, NULL, ret);
}

int pg_user_get(struct store *s, const char *name, struct store_user *ret)
{
	if (!fits(name, 64))
		return -ENOENT;
	return get_user(s, "SELECT " USER_COLS " FROM users WHERE name = $1", name, ret);
}

int pg_user_get_by_id(struct store *s, int64_t id, struct store_user *ret)
{
	struct pg_num n;

	return get_user(s, "SELECT " USER_COLS " FROM users WHERE id = $1", pg_num(&n, id), ret);
}

/* One statement, so that two instances putting the same new name at once
 * create one user: the second one's insert becomes the update. xmax = 0
 * tells a row this statement inserted from one it updated. */
static int user_put_one(struct store *s, const char *name, const char *hash, bool *ret_created,
			int64_t *ret_id)
{
	struct pg_num now;
	const char *p[] = { name, hash, pg_num(&now, store_now()) };
	PGresult *res = NULL;
	int r = pg_row(
		s, &res,
		"INSERT INTO users (name, password_hash, disabled, created_at, updated_at)"
		" VALUES ($1, $2, false, $3, $3) ON CONFLICT (name) DO UPDATE"
		" SET password_hash = excluded.password_hash, updated_at = excluded.updated_at"
		" RETURNING id, (xmax = 0)",
		3, p);

	if (r == -ENOENT)
		r = -BERR_STORE;
	if (r == 0) {
		const char *created = pg_val(res, 0, 1);

		if (ret_created)
			*ret_created = created && created[0] == 't';
		if (ret_id)
			*ret_id = pg_i64(res, 0, 0);
	}
	PQclear(res);
	return r;
}

int pg_user_put(struct store *s, const char *name, const char *password_hash, bool *ret_created,
		int64_t *ret_id)
{
	if (!user_args_fit(name, password_hash))
		return -EINVAL;
	return user_put_one(s, name, password_hash, ret_created, ret_id);
}

struct user_first {
	const char *name, *hash, *role_id, *role, *scope;
};

static int user_first_tx(struct store *s, void *ud)
{
	struct user_first *f = ud;
	char principal[80];
	struct pg_num now;
	const char *p[5];
	int64_t n = 0;
	int r;

	/* Two instances starting on one empty store create one first user:
	 * the table lock makes the second wait for the first's commit, and
	 * its count then sees the user. */
	r = pg_q(s, NULL, "LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE", 0, NULL);
	if (r == 0)
		r = pg_user_count(s, &n);
	if (r < 0)
		return r;
	if (n > 0)
		return -EEXIST;
	if ((r = user_put_one(s, f->name, f->hash, NULL, NULL)) < 0)
		return r;
	snprintf(principal, sizeof(principal), "user:%s", f->name);
	p[0] = f->role_id;
	p[1] = principal;
	p[2] = f->role;
	p[3] = f->scope;
	p[4] = pg_num(&now, store_now());
	return pg_q(s, NULL,
		    "INSERT INTO role_assignments (id, principal, role, scope, created_at)"
		    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET"
		    " principal = excluded.principal, role = excluded.role, scope = excluded.scope",
		    5, p);
}

int pg_user_create_first(struct store *s, const char *name, const char *password_hash,
			 const char *role_id, const char *role, const char *scope)
{
	struct user_first f = { name, password_hash, role_id, role, scope };

	if (!user_args_fit(name, password_hash))
		return -EINVAL;
	if (!fits(role_id, 128) || !fits(role, 32) || !fits(scope, 256))
		return -EINVAL;
	return pg_tx(s, user_first_tx, &f);
}

int pg_user_set_disabled(struct store *s, const char *name, bool disabled)
{
	struct pg_num now;
	const char *p[] = { disabled ? "true" : "false", pg_num(&now, store_now()), name };

	if (!fits(name, 64))
		return -ENOENT;
	return change_found(s, "UPDATE users SET disabled = $1, updated_at = $2 WHERE name = $3", 3,
			    p);
}

static int user_delete_tx(struct store *s, void *ud)
{
	const char *name = ud;
	const char *p[] = { name };
	char principal[80];
	const char *q[] = { principal };
	int r;

	/* Sessions and tokens go with the row (ON DELETE CASCADE), vault
	 * policies by trigger; role assignments name the principal as text,
	 * so they go explicitly, or a later user of the same name would
	 * inherit them. */
	r = change_found(s, "DELETE FROM users WHERE name = $1", 1, p);
	if (r < 0)
		return r;
	snprintf(principal, sizeof(principal), "user:%s", name);
	return pg_q(s, NULL, "DELETE FROM role_assignments WHERE principal = $1", 1, q);
}

int pg_user_delete(struct store *s, const char *name)
{
	if (!fits(name, 64))
		return -ENOENT;
	return pg_tx(s, user_delete_tx, (void *)name);
}

int pg_user_foreach(struct store *s, int (*fn)(const struct store_user *u, void *ud), void *ud)
{
	PGresult *res = NULL;
	struct store_user u;
	int r = pg_q(s, &res, "SELECT " USER_COLS " FROM users ORDER BY name", 0, NULL);

	memset(&u, 0, sizeof(u));
	for (int i = 0; r == 0 && i < PQntuples(res); i++) {
		if ((r = row_user(res, i, &u)) < 0)
			break;
		r = fn(&u, ud);
	}
	sodium_memzero(&u, sizeof(u));
	PQclear(res);
	return r < 0 ? r : 0;
}

/* ---- browser sessions and API tokens -------------------------------- */

int pg_login_add(struct store *s, const uint8_t hash[32], int64_t user_id, const char *csrf,
		 int64_t expires_at)
{
	struct pg_hash h;
	struct pg_num uid, now, exp;
	const char *p[] = { pg_hash(&h, hash), pg_num(&uid, user_id), csrf,
			    pg_num(&now, store_now()), pg_num(&exp, expires_at) };

	if (!fits(csrf, 63))
		return -EINVAL;
	return pg_q(s, NULL,
		    "INSERT INTO login_sessions (token_hash, user_id, csrf_token, created_at,"
		    " expires_at) VALUES ($1, $2, $3, $4, $5)",
		    5, p);
}

int pg_login_get(struct store *s, const uint8_t hash[32], int64_t *ret_user_id, char ret_csrf[64],
		 int64_t *ret_expires_at)
{
	struct pg_hash h;
	const char *p[] = { pg_hash(&h, hash) };
	PGresult *res = NULL;
	char csrf[64];
	int r = pg_row(s, &res,
		       "SELECT user_id, csrf_token, expires_at FROM login_sessions"
		       " WHERE token_hash = $1",
		       1, p);

	if (r == 0 && (r = pg_copy(csrf, sizeof(csrf), pg_val(res, 0, 1))) < 0)
		r = -BERR_STORE;
	if (r == 0) {
		*ret_user_id = pg_i64(res, 0, 0);
		memcpy(ret_csrf, csrf, sizeof(csrf));
		*ret_expires_at = pg_i64(res, 0, 2);
	}
	PQclear(res);
	return r;
}

int pg_login_delete(struct store *s, const uint8_t hash[32])
{
	struct pg_hash h;
	const char *p[] = { pg_hash(&h, hash) };

	return change_found(s, "DELETE FROM login_sessions WHERE token_hash = $1", 1, p);
}

/* No real session or token hashes to all zeros: "keep nothing". */
static const uint8_t none[32];

static int delete_except(struct store *s, const char *sql, int64_t user_id, const uint8_t *keep,
			 int *ret_n)
{
	struct pg_num uid;
	struct pg_hash h;
	const char *p[] = { pg_num(&uid, user_id), pg_hash(&h, keep ? keep : none) };
	PGresult *res = NULL;
	int r = pg_q(s, &res, sql, 2, p);

	if (r == 0 && ret_n)
		*ret_n = pg_changes(res);
	PQclear(res);
	return r;
}

int pg_login_delete_user(struct store *s, int64_t user_id, const uint8_t keep[32])
{
	return delete_except(s,
			     "DELETE FROM login_sessions WHERE user_id = $1 AND token_hash <> $2",
			     user_id, keep, NULL);
}

int pg_login_trim(struct store *s, int64_t user_id, int keep)
{
	struct pg_num uid, k;
	const char *p[] = { pg_num(&uid, user_id), pg_num(&k, keep < 0 ? 0 : keep) };

	return pg_q(s, NULL,
		    "DELETE FROM login_sessions WHERE user_id = $1 AND token_hash NOT IN ("
		    " SELECT token_hash FROM login_sessions WHERE user_id = $1"
		    " ORDER BY created_at DESC, seq DESC LIMIT $2)",
		    2, p);
}

int pg_token_add(struct store *s, const uint8_t hash[32], int64_t user_id, const char *name,
		 int64_t expires_at)
{
	struct pg_hash h;
	struct pg_num uid, now, exp;
	const char *p[] = { pg_hash(&h, hash), pg_num(&uid, user_id), name,
			    pg_num(&now, store_now()), pg_num(&exp, expires_at) };

	if (name && !fits(name, 255))
		return -EINVAL;
	return pg_q(s, NULL,
		    "INSERT INTO api_tokens (token_hash, user_id, name, created_at, expires_at)"
		    " VALUES ($1, $2, $3, $4, $5)",
		    5, p);
}

int pg_token_get(struct store *s, const uint8_t hash[32], int64_t *ret_user_id,
		 int64_t *ret_expires_at)
{
	struct pg_hash h;
	const char *p[] = { pg_hash(&h, hash) };
	PGresult *res = NULL;
	int r = pg_row(s, &res, "SELECT user_id, expires_at FROM api_tokens WHERE token_hash = $1",
		       1, p);

	if (r == 0) {
		*ret_user_id = pg_i64(res, 0, 0);
		*ret_expires_at = pg_i64(res, 0, 1);
	}
	PQclear(res);
	return r;
}

int pg_token_delete(struct store *s, const uint8_t hash[32])
{
	struct pg_hash h;
	const char *p[] = { pg_hash(&h, hash) };

	return change_found(s, "DELETE FROM api_tokens WHERE token_hash = $1", 1, p);
}

int pg_token_count(struct store *s, int64_t user_id, int64_t now, int64_t *ret)
{
	struct pg_num uid, t;
	const char *p[] = { pg_num(&uid, user_id), pg_num(&t, now) };

	return get_count(s,
			 "SELECT count(*) FROM api_tokens WHERE user_id = $1 AND expires_at > $2",
			 2, p, ret);
}

int pg_token_delete_user(struct store *s, int64_t user_id)
{
	struct pg_num uid;
	const char *p[] = { pg_num(&uid, user_id) };

	return pg_q(s, NULL, "DELETE FROM api_tokens WHERE user_id = $1", 1, p);
}

static int purge_tx(struct store *s, void *ud)
{
	const char *const *p = ud;
	int r = pg_q(s, NULL, "DELETE FROM login_sessions WHERE expires_at <= $1", 1, p);

	return r < 0 ? r : pg_q(s, NULL, "DELETE FROM api_tokens WHERE expires_at <= $1", 1, p);
}

int pg_ident_purge_expired(struct store *s, int64_t now)
{
	struct pg_num t;
	const char *p[] = { pg_num(&t, now) };

	return pg_tx(s, purge_tx, (void *)p);
}

int pg_ident_end_user(struct store *s, int64_t user_id, const uint8_t keep_login[32],
		      const uint8_t keep_token[32], int *ret_sessions, int *ret_tokens)
{
	return store_ident_end_user_run(s, pg_tx, delete_except, user_id, keep_login, keep_token,
					ret_sessions, ret_tokens);
}

int pg_term_open_count(struct store *s, const char *user, int64_t *ret)
{
	const char *p[] = { user };

	return get_count(
		s, "SELECT count(*) FROM term_sessions WHERE \"user\" = $1 AND ended_at IS NULL", 1,
		p, ret);
}
