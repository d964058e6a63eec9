/* SQLite backend: second factors (store_mfa.h) — the sealed TOTP key of a
 * user, its last accepted step, and the hashes of unused recovery codes.
 * The policy lives in identity/mfa.c; here each change is made atomic. */
#include "store/internal.h"
#include "store/sqlite_rows.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

/* The count(*) of sql, whose one parameter is the user's ID. */
static int count_of(struct store *s, const char *sql, int64_t user_id, int64_t *ret)
{
	sqlite3_stmt *st = store_prepare(s, sql);
	int r;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 1, user_id);
	if ((r = step_row(st)) == 0)
		*ret = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return r;
}

int sq_mfa_get(struct store *s, int64_t user_id, struct store_mfa *ret)
{
	struct store_mfa m = { 0 };
	sqlite3_stmt *st;
	const void *blob;
	int r, len;

	if ((r = count_of(s, "SELECT count(*) FROM mfa_recovery WHERE user_id = ?", user_id,
			  &m.recovery_left)) < 0 ||
	    (r = count_of(s, "SELECT count(*) FROM webauthn_credentials WHERE user_id = ?", user_id,
			  &m.passkeys)) < 0)
		return r;
	st = store_prepare(s, "SELECT sealed, confirmed, last_step, created_at FROM mfa_totp"
			      " WHERE user_id = ?");
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 1, user_id);
	if ((r = step_row(st)) == 0) {
		blob = sqlite3_column_blob(st, 0);
		len = sqlite3_column_bytes(st, 0);
		if (!blob || len <= 0 || len > STORE_MFA_SEALED_MAX) {
			r = -BERR_STORE;
			goto out;
		}
		if (!(m.totp_sealed = malloc((size_t)len))) {
			r = -ENOMEM;
			goto out;
		}
		memcpy(m.totp_sealed, blob, (size_t)len);
		m.totp_sealed_len = (size_t)len;
		m.totp_confirmed = sqlite3_column_int(st, 1) != 0;
		m.totp_last_step = sqlite3_column_int64(st, 2);
		m.created_at = sqlite3_column_int64(st, 3);
	}
out:
	sqlite3_finalize(st);
	*ret = m;
	return r;
}

struct totp_put {
	int64_t user_id;
	const uint8_t *sealed;
	size_t len;
};

static int totp_put_tx(struct store *s, void *ud)
{
	struct totp_put *p = ud;
	sqlite3_stmt *st;
	int r;

	st = store_prepare(s, "SELECT confirmed FROM mfa_totp WHERE user_id = ?");
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 1, p->user_id);
	r = step_row(st);
	if (r == 0 && sqlite3_column_int(st, 0) != 0)
		r = -EEXIST;
	sqlite3_finalize(st);
	if (r < 0 && r != -ENOENT)
		return r;
	st = store_prepare(s, "INSERT OR REPLACE INTO mfa_totp"
			      " (user_id, sealed, confirmed, last_step, created_at)"
			      " VALUES (?, ?, 0, 0, ?)");
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 1, p->user_id);
	sqlite3_bind_blob(st, 2, p->sealed, (int)p->len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, store_now());
	return exec_change(s, st, NULL);
}

int sq_mfa_totp_put(struct store *s, int64_t user_id, const uint8_t *sealed, size_t len)
{
	struct totp_put p = { user_id, sealed, len };

	if (!sealed || len == 0 || len > STORE_MFA_SEALED_MAX)
		return -EINVAL;
	return tx_run(s, totp_put_tx, &p);
}

static int totp_confirm_tx(struct store *s, void *ud)
{
	struct store_totp_confirm *c = ud;
	sqlite3_stmt *st;
	int r, changed = 0;

	st = store_prepare(s, "UPDATE mfa_totp SET confirmed = 1, last_step = ?"
			      " WHERE user_id = ? AND confirmed = 0");
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 1, c->step);
	sqlite3_bind_int64(st, 2, c->user_id);
	if ((r = exec_change(s, st, &changed)) < 0)
		return r;
	if (changed == 0)
		return -ENOENT;
	st = store_prepare(s, "DELETE FROM mfa_recovery WHERE user_id = ?");
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 1, c->user_id);
	if ((r = exec_change(s, st, NULL)) < 0)
		return r;
	for (int i = 0; i < c->n; i++) {
		st = store_prepare(s, "INSERT OR IGNORE INTO mfa_recovery (user_id, code_hash)"
				      " VALUES (?, ?)");
		if (!st)
			return -BERR_STORE;
		sqlite3_bind_int64(st, 1, c->user_id);
		sqlite3_bind_blob(st, 2, c->hashes + (size_t)i * 32, 32, SQLITE_STATIC);
		if ((r = exec_change(s, st, NULL)) < 0)
			return r;
	}
	return 0;
}

int sq_mfa_totp_confirm(struct store *s, int64_t user_id, int64_t step, const uint8_t *hashes,
			int n)
{
	return store_mfa_totp_confirm_run(s, tx_run, totp_confirm_tx, user_id, step, hashes, n);
}

int sq_mfa_totp_use(struct store *s, int64_t user_id, int64_t step)
{
	sqlite3_stmt *st;
	int r, changed = 0;

	/* One statement: the comparison and the write cannot be split by
	 * another instance, so a code is accepted once. */
	st = store_prepare(s, "UPDATE mfa_totp SET last_step = ?1"
			      " WHERE user_id = ?2 AND confirmed = 1 AND last_step < ?1");
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 1, step);
	sqlite3_bind_int64(st, 2, user_id);
	if ((r = exec_change(s, st, &changed)) < 0)
		return r;
	if (changed)
		return 0;
	st = store_prepare(s, "SELECT 1 FROM mfa_totp WHERE user_id = ? AND confirmed = 1");
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 1, user_id);
	r = step_row(st);
	sqlite3_finalize(st);
	return r == 0 ? -EALREADY : r;
}

int sq_mfa_recovery_use(struct store *s, int64_t user_id, const uint8_t hash[32])
{
	sqlite3_stmt *st;
	int r, changed = 0;

	st = store_prepare(s, "DELETE FROM mfa_recovery WHERE user_id = ? AND code_hash = ?");
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 1, user_id);
	sqlite3_bind_blob(st, 2, hash, 32, SQLITE_STATIC);
	if ((r = exec_change(s, st, &changed)) < 0)
		return r;
	return changed ? 0 : -ENOENT;
}

static int mfa_delete_tx(struct store *s, void *ud)
{
	const struct store_mfa_delete *m = ud;
	int64_t user_id = m->user_id;
	sqlite3_stmt *st;
	int r, changed = 0, removed;

	st = store_prepare(s, "DELETE FROM mfa_recovery WHERE user_id = ?");
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 1, user_id);
	if ((r = exec_change(s, st, NULL)) < 0)
		return r;
	st = store_prepare(s, "DELETE FROM mfa_totp WHERE user_id = ?");
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 1, user_id);
	if ((r = exec_change(s, st, &changed)) < 0)
		return r;
	removed = changed;
	changed = 0;
	if (!m->passkeys)
		return removed ? 1 : 0;
	st = store_prepare(s, "DELETE FROM webauthn_credentials WHERE user_id = ?");
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 1, user_id);
	if ((r = exec_change(s, st, &changed)) < 0)
		return r;
	return removed || changed ? 1 : 0;
}

int sq_mfa_delete(struct store *s, int64_t user_id, bool passkeys, int *ret_removed)
{
	return store_mfa_delete_run(s, tx_run, mfa_delete_tx, user_id, passkeys, ret_removed);
}

/* ---- passkeys --------------------------------------------------------- */

#define WA_COLS "id, user_id, alg, public_key, sign_count, created_at"

static int row_cred(sqlite3_stmt *st, struct store_wa_cred *c)
{
	const void *id = sqlite3_column_blob(st, 0), *pk = sqlite3_column_blob(st, 3);
	int id_len = sqlite3_column_bytes(st, 0), pk_len = sqlite3_column_bytes(st, 3);

	memset(c, 0, sizeof(*c));
	if (!id || !pk || id_len <= 0 || id_len > STORE_WA_ID_MAX || pk_len <= 0 ||
	    pk_len > STORE_WA_PK_MAX)
		return -BERR_STORE;
	memcpy(c->id, id, (size_t)id_len);
	c->id_len = (size_t)id_len;
	c->user_id = sqlite3_column_int64(st, 1);
	c->alg = sqlite3_column_int64(st, 2);
	memcpy(c->pk, pk, (size_t)pk_len);
	c->pk_len = (size_t)pk_len;
	c->sign_count = sqlite3_column_int64(st, 4);
	c->created_at = sqlite3_column_int64(st, 5);
	return 0;
}

int sq_wa_cred_add(struct store *s, const struct store_wa_cred *c)
{
	sqlite3_stmt *st;

	if (c->id_len == 0 || c->id_len > STORE_WA_ID_MAX || c->pk_len == 0 ||
	    c->pk_len > STORE_WA_PK_MAX)
		return -EINVAL;
	st = store_prepare(s, "INSERT INTO webauthn_credentials (" WA_COLS
			      ") VALUES (?, ?, ?, ?, ?, ?)");
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_blob(st, 1, c->id, (int)c->id_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, c->user_id);
	sqlite3_bind_int64(st, 3, c->alg);
	sqlite3_bind_blob(st, 4, c->pk, (int)c->pk_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, c->sign_count);
	sqlite3_bind_int64(st, 6, store_now());
	return exec_change(s, st, NULL);
}

int sq_wa_cred_get(struct store *s, const uint8_t *id, size_t id_len, struct store_wa_cred *ret)
{
	sqlite3_stmt *st;
	int r;

	if (!id || id_len == 0 || id_len > STORE_WA_ID_MAX)
		return -ENOENT;
	st = store_prepare(s, "SELECT " WA_COLS " FROM webauthn_credentials WHERE id = ?");
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_blob(st, 1, id, (int)id_len, SQLITE_STATIC);
	if ((r = step_row(st)) == 0)
		r = row_cred(st, ret);
	sqlite3_finalize(st);
	return r;
}

int sq_wa_cred_foreach(struct store *s, int64_t user_id,
		       int (*fn)(const struct store_wa_cred *c, void *ud), void *ud)
{
	struct store_wa_cred c;
	sqlite3_stmt *st;
	int rc, r = 0;

	st = store_prepare(s, "SELECT " WA_COLS " FROM webauthn_credentials WHERE user_id = ?"
			      " ORDER BY created_at, id");
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 1, user_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((r = row_cred(st, &c)) < 0 || (r = fn(&c, ud)) != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_rc(rc);
	sqlite3_finalize(st);
	return r < 0 ? r : 0;
}

int sq_wa_cred_count_set(struct store *s, const uint8_t *id, size_t id_len, int64_t seen_before,
			 int64_t count)
{
	sqlite3_stmt *st;
	int r, changed = 0;

	if (!id || id_len == 0 || id_len > STORE_WA_ID_MAX)
		return -ENOENT;
	st = store_prepare(s, "UPDATE webauthn_credentials SET sign_count = ?"
			      " WHERE id = ? AND sign_count = ?");
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 1, count);
	sqlite3_bind_blob(st, 2, id, (int)id_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, seen_before);
	if ((r = exec_change(s, st, &changed)) < 0)
		return r;
	return changed ? 0 : -EALREADY;
}

int sq_wa_challenge_add(struct store *s, const uint8_t challenge[32], int64_t user_id,
			const char *purpose, int64_t expires_at)
{
	sqlite3_stmt *st;
	int r;

	if (!store_mfa_word_ok(purpose))
		return -EINVAL;
	st = store_prepare(s, "DELETE FROM webauthn_challenges WHERE expires_at < ?");
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 1, store_now());
	if ((r = exec_change(s, st, NULL)) < 0)
		return r;
	st = store_prepare(s, "INSERT INTO webauthn_challenges (challenge, user_id, purpose,"
			      " expires_at) VALUES (?, ?, ?, ?)");
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_blob(st, 1, challenge, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, user_id);
	sqlite3_bind_text(st, 3, purpose, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, expires_at);
	return exec_change(s, st, NULL);
}

struct take {
	const uint8_t *challenge;
	const char *purpose;
	int64_t now, user_id;
};

static int take_tx(struct store *s, void *ud)
{
	struct take *k = ud;
	sqlite3_stmt *st;
	int r;

	st = store_prepare(s, "SELECT user_id, expires_at FROM webauthn_challenges"
			      " WHERE challenge = ? AND purpose = ?");
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_blob(st, 1, k->challenge, 32, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, k->purpose, -1, SQLITE_STATIC);
	r = step_row(st);
	if (r == 0) {
		k->user_id = sqlite3_column_int64(st, 0);
		if (sqlite3_column_int64(st, 1) < k->now)
			r = -ENOENT;
	}
	sqlite3_finalize(st);
	if (r < 0 && r != -ENOENT)
		return r;
	st = store_prepare(s, "DELETE FROM webauthn_challenges WHERE challenge = ?");
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_blob(st, 1, k->challenge, 32, SQLITE_STATIC);
	if (exec_change(s, st, NULL) < 0)
		return -BERR_STORE;
	return r;
}

int sq_wa_challenge_take(struct store *s, const uint8_t challenge[32], const char *purpose,
			 int64_t now, int64_t *ret_user_id)
{
	struct take k = { challenge, purpose, now, 0 };
	int r;

	if (!store_mfa_word_ok(purpose))
		return -ENOENT;
	/* A refusal rolls the delete back: an expired row goes with the next
	 * sq_wa_challenge_add's purge. */
	r = tx_run(s, take_tx, &k);
	if (r == 0)
		*ret_user_id = k.user_id;
	return r;
}

/* ---- sessions whose second factor was proven elsewhere ----------------- */

int sq_login_mfa_mark(struct store *s, const uint8_t hash[32], const char *via)
{
	sqlite3_stmt *st;

	if (!store_mfa_word_ok(via))
		return -EINVAL;
	st = store_prepare(s, "INSERT OR REPLACE INTO login_mfa (token_hash, via) VALUES (?, ?)");
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, via, -1, SQLITE_STATIC);
	return exec_change(s, st, NULL);
}

int sq_login_mfa_marked(struct store *s, const uint8_t hash[32])
{
	sqlite3_stmt *st = store_prepare(s, "SELECT 1 FROM login_mfa WHERE token_hash = ?");
	int r;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
	r = step_row(st);
	sqlite3_finalize(st);
	return r;
}

int sq_login_mfa_via(struct store *s, const uint8_t hash[32], char ret_via[17])
{
	sqlite3_stmt *st = store_prepare(s, "SELECT via FROM login_mfa WHERE token_hash = ?");
	const char *v;
	int r;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
	if ((r = step_row(st)) == 0) {
		v = (const char *)sqlite3_column_text(st, 0);
		if (!v || strlen(v) > 16)
			r = -BERR_STORE;
		else
			memcpy(ret_via, v, strlen(v) + 1);
	}
	sqlite3_finalize(st);
	return r;
}
