/* SQLite backend: second factors (store_mfa.h) — the sealed TOTP key of a
 * user, its last accepted step, and the hashes of unused recovery codes.
 * The policy lives in identity/mfa.c; here each change is made atomic. */
#include "store/internal.h"
#include "store/sqlite_rows.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

static int recovery_count(struct store *s, int64_t user_id, int64_t *ret)
{
	sqlite3_stmt *st = store_prepare(s, "SELECT count(*) FROM mfa_recovery WHERE user_id = ?");
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

	if ((r = recovery_count(s, user_id, &m.recovery_left)) < 0)
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

struct totp_confirm {
	int64_t user_id, step;
	const uint8_t *hashes;
	int n;
};

static int totp_confirm_tx(struct store *s, void *ud)
{
	struct totp_confirm *c = ud;
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
	struct totp_confirm c = { user_id, step, hashes, n };

	if (n < 0 || n > 64 || (n > 0 && !hashes))
		return -EINVAL;
	return tx_run(s, totp_confirm_tx, &c);
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
	int64_t user_id = *(int64_t *)ud;
	sqlite3_stmt *st;
	int r, changed = 0;

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
	return changed;
}

int sq_mfa_delete(struct store *s, int64_t user_id, int *ret_removed)
{
	int r = tx_run(s, mfa_delete_tx, &user_id);

	if (r < 0)
		return r;
	if (ret_removed)
		*ret_removed = r;
	return 0;
}
