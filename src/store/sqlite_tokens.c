/* SQLite backend: the API token lifecycle (issue 19) — tokens with a
 * public id, a name, a scope and a time of last use, listed and revoked by
 * that id. The secret is only ever its SHA-256 (token_hash), as in
 * sqlite_ident.c. */
#include "store/internal.h"
#include "store/sqlite_rows.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"

#define TOKEN_COLS                                                                       \
	"t.public_id, t.user_id, u.name, t.name, t.scope, t.created_at, t.last_used_at," \
	" t.expires_at, u.disabled"
#define TOKEN_FROM " FROM api_tokens t JOIN users u ON u.id = t.user_id"

/* A row of TOKEN_COLS into *t; a value that does not fit is a damaged
 * store. */
static int row_token(sqlite3_stmt *st, struct store_token *t)
{
	const char *id = (const char *)sqlite3_column_text(st, 0);
	const char *user = (const char *)sqlite3_column_text(st, 2);
	const char *name = (const char *)sqlite3_column_text(st, 3);
	const char *scope = (const char *)sqlite3_column_text(st, 4);

	memset(t, 0, sizeof(*t));
	/* A token made by store_token_add (tests, older code) has no id. */
	if ((id && util_strlcpy(t->id, id, sizeof(t->id)) < 0) || !user ||
	    util_strlcpy(t->user, user, sizeof(t->user)) < 0 ||
	    (name && util_strlcpy(t->name, name, sizeof(t->name)) < 0) || !scope ||
	    util_strlcpy(t->scope, scope, sizeof(t->scope)) < 0)
		return -BERR_STORE;
	t->user_id = sqlite3_column_int64(st, 1);
	t->created_at = sqlite3_column_int64(st, 5);
	t->last_used_at = sqlite3_column_int64(st, 6);
	t->expires_at = sqlite3_column_int64(st, 7);
	t->user_disabled = sqlite3_column_int(st, 8) != 0;
	return 0;
}

static bool token_fits(const struct store_token *t)
{
	return strlen(t->id) == STORE_TOKEN_ID_LEN && fits(t->name, 64) && t->scope[0] &&
	       fits(t->scope, sizeof(t->scope) - 1);
}

int sq_token_insert(struct store *s, const uint8_t hash[32], const struct store_token *t)
{
	sqlite3_stmt *st;

	if (!token_fits(t))
		return -EINVAL;
	st = store_prepare(s, "INSERT INTO api_tokens (token_hash, user_id, name, created_at,"
			      " expires_at, public_id, scope) VALUES (?, ?, ?, ?, ?, ?, ?)");
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, t->user_id);
	if (t->name[0])
		sqlite3_bind_text(st, 3, t->name, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 3);
	sqlite3_bind_int64(st, 4, store_now());
	sqlite3_bind_int64(st, 5, t->expires_at);
	sqlite3_bind_text(st, 6, t->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, t->scope, -1, SQLITE_STATIC);
	return exec_change(s, st, NULL);
}

int sq_token_lookup(struct store *s, const uint8_t hash[32], struct store_token *ret)
{
	bool roles = store_req_wants_roles();
	/* Inside a request, the owner's role assignments come along, as on
	 * PostgreSQL (pg_tokens.c). */
	sqlite3_stmt *st =
		store_prepare(s, roles ? "SELECT " TOKEN_COLS ", " STORE_SQ_ROLES_OF_U TOKEN_FROM
					 " WHERE t.token_hash = ?"
				       : "SELECT " TOKEN_COLS TOKEN_FROM " WHERE t.token_hash = ?");
	int r;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
	if ((r = step_row(st)) == 0)
		r = row_token(st, ret);
	if (r == 0 && roles) {
		char principal[80];

		snprintf(principal, sizeof(principal), "user:%s", ret->user);
		store_req_prime(s, principal, (const char *)sqlite3_column_text(st, 9));
	}
	sqlite3_finalize(st);
	return r;
}

int sq_token_touch(struct store *s, const char *id, int64_t now, int64_t min_gap)
{
	sqlite3_stmt *st;

	if (!fits(id, STORE_TOKEN_ID_LEN))
		return -EINVAL;
	st = prepare_text(s,
			  "UPDATE api_tokens SET last_used_at = ?2 WHERE public_id = ?1"
			  " AND (last_used_at IS NULL OR last_used_at < ?3)",
			  id);
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_int64(st, 3, now - min_gap);
	return exec_change(s, st, NULL);
}

int sq_token_foreach(struct store *s, int64_t user_id, int64_t now,
		     int (*fn)(const struct store_token *t, void *ud), void *ud)
{
	sqlite3_stmt *st =
		store_prepare(s, "SELECT " TOKEN_COLS TOKEN_FROM
				 " WHERE (?1 < 0 OR t.user_id = ?1) AND t.expires_at > ?2"
				 " ORDER BY t.created_at DESC, t.rowid DESC");
	struct store_token t;
	int rc, r = 0;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 1, user_id);
	sqlite3_bind_int64(st, 2, now);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((r = row_token(st, &t)) < 0 || (r = fn(&t, ud)) != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_rc(rc);
	sqlite3_finalize(st);
	return r < 0 ? r : 0;
}

struct revoke {
	const char *id;
	int64_t user_id;
	struct store_token *ret;
};

static int revoke_tx(struct store *s, void *ud)
{
	struct revoke *rv = ud;
	struct store_token t;
	sqlite3_stmt *st = prepare_text(s,
					"SELECT " TOKEN_COLS TOKEN_FROM
					" WHERE t.public_id = ?1 AND (?2 < 0 OR t.user_id = ?2)",
					rv->id);
	int r;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 2, rv->user_id);
	if ((r = step_row(st)) == 0)
		r = row_token(st, &t);
	sqlite3_finalize(st);
	if (r < 0)
		return r;
	st = prepare_text(s, "DELETE FROM api_tokens WHERE public_id = ?", rv->id);
	if ((r = exec_change(s, st, NULL)) < 0)
		return r;
	if (rv->ret)
		*rv->ret = t;
	return 0;
}

int sq_token_revoke(struct store *s, const char *id, int64_t user_id, struct store_token *ret)
{
	struct revoke rv = { .id = id, .user_id = user_id, .ret = ret };

	if (!fits(id, STORE_TOKEN_ID_LEN))
		return -ENOENT;
	return tx_run(s, revoke_tx, &rv);
}
