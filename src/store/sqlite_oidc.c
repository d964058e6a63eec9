/* SQLite backend: OpenID Connect sign-in rows (store_oidc.h): pending
 * flows and CLI codes, taken once, and the provider identity of a user. */
#include "store/internal.h"
#include "store/sqlite_rows.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/util.h"

int sq_oidc_pending_put(struct store *s, const char *key, const char *kind, const char *data,
			int64_t expires_at, int64_t now, int64_t max_rows)
{
	sqlite3_stmt *st;
	int r;

	if (!fits(key, STORE_OIDC_KEY_MAX) || !key[0] || !fits(kind, 16) ||
	    !fits(data, STORE_OIDC_DATA_MAX))
		return -EINVAL;
	/* Flows abandoned half-way would otherwise stay for ever. */
	st = store_prepare(s, "DELETE FROM oidc_pending WHERE expires_at <= ?");
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 1, now);
	if ((r = exec_change(s, st, NULL)) < 0)
		return r;
	if (!(st = store_prepare(s, "SELECT COUNT(*) FROM oidc_pending")))
		return -BERR_STORE;
	if ((r = step_row(st)) == 0 && sqlite3_column_int64(st, 0) >= max_rows)
		r = -ENOSPC;
	sqlite3_finalize(st);
	if (r < 0)
		return r;
	st = prepare_text(s,
			  "INSERT INTO oidc_pending (key, kind, data, expires_at)"
			  " VALUES (?, ?, ?, ?)",
			  key);
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, data, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, expires_at);
	return exec_change(s, st, NULL);
}

int sq_oidc_pending_take(struct store *s, const char *key, const char *kind, int64_t now,
			 char **ret_data)
{
	sqlite3_stmt *st;
	const unsigned char *text;
	char *copy;
	int r;

	if (!fits(key, STORE_OIDC_KEY_MAX) || !fits(kind, 16))
		return -ENOENT;
	/* One statement deletes and answers: a second taker finds nothing. */
	st = prepare_text(s,
			  "DELETE FROM oidc_pending WHERE key = ? AND kind = ?"
			  " RETURNING data, expires_at",
			  key);
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
	r = step_row(st);
	if (r == 0 && sqlite3_column_int64(st, 1) <= now)
		r = -ENOENT;
	if (r == 0) {
		text = sqlite3_column_text(st, 0);
		copy = text ? strdup((const char *)text) : NULL;
		if (!copy)
			r = -ENOMEM;
		else
			*ret_data = copy;
	}
	/* RETURNING: the delete is done once the statement runs to its end. */
	if (r == 0 || r == -ENOENT)
		while (sqlite3_step(st) == SQLITE_ROW)
			;
	sqlite3_finalize(st);
	return r;
}

int sq_oidc_link_get(struct store *s, int64_t user_id, char ret_issuer[STORE_OIDC_ISS_MAX + 1],
		     char ret_subject[STORE_OIDC_SUB_MAX + 1])
{
	sqlite3_stmt *st = store_prepare(s, "SELECT issuer, subject FROM oidc_links"
					    " WHERE user_id = ?");
	int r;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 1, user_id);
	if ((r = step_row(st)) == 0) {
		const char *iss = (const char *)sqlite3_column_text(st, 0);
		const char *sub = (const char *)sqlite3_column_text(st, 1);

		if (util_strlcpy(ret_issuer, iss ? iss : "", STORE_OIDC_ISS_MAX + 1) < 0 ||
		    util_strlcpy(ret_subject, sub ? sub : "", STORE_OIDC_SUB_MAX + 1) < 0)
			r = -BERR_STORE;
	}
	sqlite3_finalize(st);
	return r;
}

int sq_oidc_link_add(struct store *s, int64_t user_id, const char *issuer, const char *subject)
{
	sqlite3_stmt *st;

	if (!fits(issuer, STORE_OIDC_ISS_MAX) || !fits(subject, STORE_OIDC_SUB_MAX))
		return -EINVAL;
	st = store_prepare(s, "INSERT INTO oidc_links (user_id, issuer, subject, created_at)"
			      " VALUES (?, ?, ?, ?)");
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 1, user_id);
	sqlite3_bind_text(st, 2, issuer, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, subject, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (int64_t)time(NULL));
	return exec_change(s, st, NULL);
}

static int user_create_tx(struct store *s, void *ud)
{
	struct store_oidc_user *u = ud;
	int64_t now = (int64_t)time(NULL);
	sqlite3_stmt *st;
	int r;

	st = prepare_text(
		s,
		"INSERT INTO users (name, password_hash, disabled, created_at, updated_at)"
		" VALUES (?, ?, 0, ?, ?)",
		u->name);
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 2, u->hash, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now);
	sqlite3_bind_int64(st, 4, now);
	if ((r = exec_change(s, st, NULL)) < 0)
		return r;
	u->id = sqlite3_last_insert_rowid(store_db(s));
	r = sq_oidc_link_add(s, u->id, u->issuer, u->subject);
	return r == -EEXIST ? -EALREADY : r;
}

int sq_oidc_user_create(struct store *s, const char *name, const char *password_hash,
			const char *issuer, const char *subject, int64_t *ret_id)
{
	return store_oidc_user_create_run(s, tx_run, user_create_tx, name, password_hash, issuer,
					  subject, ret_id);
}
