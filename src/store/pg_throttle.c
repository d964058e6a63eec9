/* PostgreSQL backend: sign-in throttling rows (login_throttle) and the
 * addresses each account signed in from (login_known), shared by every
 * instance. Each update of a row is atomic across instances: the row is
 * created if missing and locked (one INSERT ... ON CONFLICT DO UPDATE) for
 * the caller's read-modify-write, so two failures counted at once on two
 * instances count twice. */
#include "store/pg_internal.h"

#include <errno.h>
#include <string.h>

#include "core/err.h"

#define THROTTLE_COLS "failures, window_start, last_failure, level, locked_until, audited_until"

static void row_throttle(const PGresult *res, struct store_throttle *t)
{
	t->failures = pg_i64(res, 0, 0);
	t->window_start = pg_i64(res, 0, 1);
	t->last_failure = pg_i64(res, 0, 2);
	t->level = pg_i64(res, 0, 3);
	t->locked_until = pg_i64(res, 0, 4);
	t->audited_until = pg_i64(res, 0, 5);
}

int pg_throttle_get(struct store *s, const char *key, struct store_throttle *ret)
{
	const char *p[] = { key };
	PGresult *res = NULL;
	int r;

	if (!store_fits(key, 128))
		return -ENOENT;
	r = pg_row(s, &res, "SELECT " THROTTLE_COLS " FROM login_throttle WHERE key = $1", 1, p);
	if (r == 0)
		row_throttle(res, ret);
	PQclear(res);
	return r;
}

int pg_throttle_delete(struct store *s, const char *key)
{
	const char *p[] = { key };

	if (!store_fits(key, 128))
		return -EINVAL;
	return pg_q(s, NULL, "DELETE FROM login_throttle WHERE key = $1", 1, p);
}

struct throttle_update {
	const char *key;
	int (*fn)(struct store_throttle *t, bool existed, void *ud);
	void *ud;
};

static int throttle_update_tx(struct store *s, void *ud)
{
	struct throttle_update *u = ud;
	const char *k[] = { u->key };
	struct store_throttle t;
	struct pg_num v[6];
	const char *p[7];
	PGresult *res = NULL;
	bool existed;
	int r;

	/* The row made if missing and locked, in one statement: DO UPDATE
	 * (which changes nothing) locks the row as FOR UPDATE would, so two
	 * instances never both see "absent", and RETURNING answers it as it
	 * stands. xmax is 0 in a row this very insert made. */
	r = pg_row(
		s, &res,
		"INSERT INTO login_throttle (key, " THROTTLE_COLS ")"
		" VALUES ($1, 0, 0, 0, 0, 0, 0) ON CONFLICT (key) DO UPDATE SET key = excluded.key"
		" RETURNING " THROTTLE_COLS ", xmax = 0",
		1, k);
	if (r < 0) {
		PQclear(res);
		return r == -ENOENT ? -BERR_STORE : r;
	}
	existed = !(pg_val(res, 0, 6) && pg_val(res, 0, 6)[0] == 't');
	memset(&t, 0, sizeof(t));
	row_throttle(res, &t);
	PQclear(res);
	r = u->fn(&t, existed, u->ud);
	if (r < 0)
		return r;
	if (r == 1)
		return pg_q(s, NULL, "DELETE FROM login_throttle WHERE key = $1", 1, k);
	p[0] = u->key;
	p[1] = pg_num(&v[0], t.failures);
	p[2] = pg_num(&v[1], t.window_start);
	p[3] = pg_num(&v[2], t.last_failure);
	p[4] = pg_num(&v[3], t.level);
	p[5] = pg_num(&v[4], t.locked_until);
	p[6] = pg_num(&v[5], t.audited_until);
	return pg_q(s, NULL,
		    "UPDATE login_throttle SET failures = $2, window_start = $3, last_failure = $4,"
		    " level = $5, locked_until = $6, audited_until = $7 WHERE key = $1",
		    7, p);
}

int pg_throttle_update(struct store *s, const char *key,
		       int (*fn)(struct store_throttle *t, bool existed, void *ud), void *ud)
{
	struct throttle_update u = { .key = key, .fn = fn, .ud = ud };

	if (!store_fits(key, 128) || !key[0])
		return -EINVAL;
	return pg_tx(s, throttle_update_tx, &u);
}

int pg_throttle_purge(struct store *s, int64_t before)
{
	struct pg_num b;
	const char *p[] = { pg_num(&b, before) };

	return pg_q(s, NULL,
		    "DELETE FROM login_throttle WHERE locked_until < $1 AND last_failure < $1", 1,
		    p);
}

struct known_add {
	const char *account, *addr;
	int64_t now;
	int keep_max;
};

static int known_add_tx(struct store *s, void *ud)
{
	struct known_add *k = ud;
	struct pg_num now, keep;
	const char *p[] = { k->account, k->addr, pg_num(&now, k->now) };
	const char *q[] = { k->account, pg_num(&keep, k->keep_max < 1 ? 1 : k->keep_max) };
	int r;

	r = pg_q(s, NULL,
		 "INSERT INTO login_known (account, addr, last_ok) VALUES ($1, $2, $3)"
		 " ON CONFLICT (account, addr) DO UPDATE SET last_ok = excluded.last_ok",
		 3, p);
	if (r < 0)
		return r;
	return pg_q(s, NULL,
		    "DELETE FROM login_known WHERE account = $1 AND addr NOT IN ("
		    " SELECT addr FROM login_known WHERE account = $1"
		    " ORDER BY last_ok DESC, addr LIMIT $2)",
		    2, q);
}

int pg_login_known_add(struct store *s, const char *account, const char *addr, int64_t now,
		       int keep_max)
{
	struct known_add k = { account, addr, now, keep_max };

	if (!store_fits(account, 64) || !account[0] || !store_fits(addr, 63) || !addr[0])
		return -EINVAL;
	return pg_tx(s, known_add_tx, &k);
}

int pg_login_known(struct store *s, const char *account, const char *addr, int64_t since)
{
	struct pg_num t;
	const char *p[] = { account, addr, pg_num(&t, since) };
	PGresult *res = NULL;
	int r;

	if (!store_fits(account, 64) || !store_fits(addr, 63))
		return -ENOENT;
	r = pg_row(s, &res,
		   "SELECT 1 FROM login_known WHERE account = $1 AND addr = $2 AND last_ok >= $3",
		   3, p);
	PQclear(res);
	return r;
}

int pg_login_known_forget(struct store *s, const char *account)
{
	const char *p[] = { account };

	if (!store_fits(account, 64))
		return -EINVAL;
	return pg_q(s, NULL, "DELETE FROM login_known WHERE account = $1", 1, p);
}
