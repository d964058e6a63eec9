/* SQLite backend: sign-in throttling state (login_throttle) and the
 * addresses each account signed in from (login_known). The policy lives in
 * identity/throttle.c; here each row update is only made atomic. */
#include "store/internal.h"
#include "store/sqlite_rows.h"

#include <errno.h>
#include <string.h>

#include "core/err.h"

/* ---- sign-in throttling --------------------------------------------- */

#define THROTTLE_COLS "failures, window_start, last_failure, level, locked_until, audited_until"

int sq_throttle_get(struct store *s, const char *key, struct store_throttle *ret)
{
	sqlite3_stmt *st;
	int r;

	if (!fits(key, 128))
		return -ENOENT;
	st = prepare_text(s, "SELECT " THROTTLE_COLS " FROM login_throttle WHERE key = ?", key);
	if (!st)
		return -BERR_STORE;
	if ((r = step_row(st)) == 0) {
		ret->failures = sqlite3_column_int64(st, 0);
		ret->window_start = sqlite3_column_int64(st, 1);
		ret->last_failure = sqlite3_column_int64(st, 2);
		ret->level = sqlite3_column_int64(st, 3);
		ret->locked_until = sqlite3_column_int64(st, 4);
		ret->audited_until = sqlite3_column_int64(st, 5);
	}
	sqlite3_finalize(st);
	return r;
}

int sq_throttle_delete(struct store *s, const char *key)
{
	if (!fits(key, 128))
		return -EINVAL;
	return exec_change(s, prepare_text(s, "DELETE FROM login_throttle WHERE key = ?", key),
			   NULL);
}

struct throttle_update {
	const char *key;
	int (*fn)(struct store_throttle *t, bool existed, void *ud);
	void *ud;
};

static int throttle_update_tx(struct store *s, void *ud)
{
	struct throttle_update *u = ud;
	struct store_throttle t;
	sqlite3_stmt *st;
	bool existed;
	int r;

	memset(&t, 0, sizeof(t));
	r = sq_throttle_get(s, u->key, &t);
	if (r < 0 && r != -ENOENT)
		return r;
	existed = r == 0;
	r = u->fn(&t, existed, u->ud);
	if (r < 0)
		return r;
	if (r == 1)
		return existed ? sq_throttle_delete(s, u->key) : 0;
	st = prepare_text(s,
			  "INSERT OR REPLACE INTO login_throttle (key, " THROTTLE_COLS ")"
			  " VALUES (?, ?, ?, ?, ?, ?, ?)",
			  u->key);
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 2, t.failures);
	sqlite3_bind_int64(st, 3, t.window_start);
	sqlite3_bind_int64(st, 4, t.last_failure);
	sqlite3_bind_int64(st, 5, t.level);
	sqlite3_bind_int64(st, 6, t.locked_until);
	sqlite3_bind_int64(st, 7, t.audited_until);
	return exec_change(s, st, NULL);
}

int sq_throttle_update(struct store *s, const char *key,
		       int (*fn)(struct store_throttle *t, bool existed, void *ud), void *ud)
{
	struct throttle_update u = { .key = key, .fn = fn, .ud = ud };

	if (!fits(key, 128) || !key[0])
		return -EINVAL;
	return tx_run(s, throttle_update_tx, &u);
}

int sq_throttle_purge(struct store *s, int64_t before)
{
	sqlite3_stmt *st = store_prepare(
		s, "DELETE FROM login_throttle WHERE locked_until < ?1 AND last_failure < ?1");

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 1, before);
	return exec_change(s, st, NULL);
}

struct known_add {
	const char *account, *addr;
	int64_t now;
	int keep_max;
};

static int known_add_tx(struct store *s, void *ud)
{
	struct known_add *k = ud;
	sqlite3_stmt *st;
	int r;

	st = store_prepare(
		s, "INSERT OR REPLACE INTO login_known (account, addr, last_ok) VALUES (?, ?, ?)");
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, k->account, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, k->addr, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, k->now);
	if ((r = exec_change(s, st, NULL)) < 0)
		return r;
	st = store_prepare(
		s,
		"DELETE FROM login_known WHERE account = ?1 AND addr NOT IN ("
		" SELECT addr FROM login_known WHERE account = ?1 ORDER BY last_ok DESC, addr LIMIT ?2)");
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, k->account, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, k->keep_max < 1 ? 1 : k->keep_max);
	return exec_change(s, st, NULL);
}

int sq_login_known_add(struct store *s, const char *account, const char *addr, int64_t now,
		       int keep_max)
{
	struct known_add k = { .account = account, .addr = addr, .now = now, .keep_max = keep_max };

	if (!fits(account, 64) || !account[0] || !fits(addr, 63) || !addr[0])
		return -EINVAL;
	return tx_run(s, known_add_tx, &k);
}

int sq_login_known(struct store *s, const char *account, const char *addr, int64_t since)
{
	sqlite3_stmt *st;
	int r;

	if (!fits(account, 64) || !fits(addr, 63))
		return -ENOENT;
	st = prepare_text(
		s, "SELECT 1 FROM login_known WHERE account = ? AND addr = ? AND last_ok >= ?",
		account);
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 2, addr, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, since);
	r = step_row(st);
	sqlite3_finalize(st);
	return r;
}

int sq_login_known_forget(struct store *s, const char *account)
{
	if (!fits(account, 64))
		return -EINVAL;
	return exec_change(s, prepare_text(s, "DELETE FROM login_known WHERE account = ?", account),
			   NULL);
}
