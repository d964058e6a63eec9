/* Sign-in throttling: exponential back-off per account name and per source
 * address, kept in the store. The policy (thresholds, growth, the known-
 * address exemption) is here; the store only makes each row update atomic.
 *
 * Counted attempts are checked before the password is verified, so a
 * locked key costs no Argon2id. Every attempt is then charged as a failure
 * BEFORE its password is verified, and a success gives the charge back:
 * when the store cannot record the count, the password is never checked
 * (a throttle that fails open is a password oracle), and attempts running
 * at once are all counted before any of them learns its answer. */
#include "identity/ident.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/metrics.h"
#include "core/util.h"
#include "store/store.h"

#define KEY_SIZE 96

void ident_addr_key(const char *remote_addr, char out[IDENT_ADDR_KEY_SIZE])
{
	unsigned char a[16];
	char text[INET6_ADDRSTRLEN];

	if (!remote_addr)
		remote_addr = "";
	if (inet_pton(AF_INET, remote_addr, a) == 1) {
		util_strlcpy(out, remote_addr, IDENT_ADDR_KEY_SIZE);
		return;
	}
	if (inet_pton(AF_INET6, remote_addr, a) == 1) {
		static const unsigned char mapped[12] = {
			0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
		};

		if (memcmp(a, mapped, sizeof(mapped)) == 0) {
			inet_ntop(AF_INET, a + 12, text, sizeof(text));
			util_strlcpy(out, text, IDENT_ADDR_KEY_SIZE);
			return;
		}
		/* One host usually owns a whole /64: count it as one address. */
		memset(a + 8, 0, 8);
		inet_ntop(AF_INET6, a, text, sizeof(text));
		snprintf(out, IDENT_ADDR_KEY_SIZE, "%s/64", text);
		return;
	}
	util_strlcpy(out, remote_addr, IDENT_ADDR_KEY_SIZE);
}

static void key_account(const char *account, char out[KEY_SIZE])
{
	snprintf(out, KEY_SIZE, "acct:%s", account);
}

static void key_addr(const char *addr_key, char out[KEY_SIZE])
{
	snprintf(out, KEY_SIZE, "addr:%s", addr_key);
}

struct check {
	int64_t now;
	int64_t retry_after;
	bool audit;
};

static int check_fn(struct store_throttle *t, bool existed, void *ud)
{
	struct check *c = ud;

	if (!existed)
		return 1;
	if (t->locked_until > c->now) {
		c->retry_after = t->locked_until - c->now;
		/* One audit record per lock, however often it refuses. */
		if (t->audited_until != t->locked_until) {
			t->audited_until = t->locked_until;
			c->audit = true;
		}
	}
	return 0;
}

/* Looks at one key; updates it only to mark a lock as audited. */
static int check_key(struct store *s, const char *key, int64_t now, struct check *ret)
{
	struct store_throttle t;
	int r;

	memset(ret, 0, sizeof(*ret));
	ret->now = now;
	r = store_throttle_get(s, key, &t);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	if (t.locked_until <= now)
		return 0;
	return store_throttle_update(s, key, check_fn, ret);
}

int ident_throttle_check(struct store *s, const char *account, const char *remote_addr, int64_t now,
			 struct ident_throttle *ret)
{
	char addr[IDENT_ADDR_KEY_SIZE], key[KEY_SIZE];
	struct check by_addr, by_acct = { 0 };
	int r;

	ident_addr_key(remote_addr, addr);
	key_addr(addr, key);
	if ((r = check_key(s, key, now, &by_addr)) < 0)
		return r;
	if (account) {
		key_account(account, key);
		if ((r = check_key(s, key, now, &by_acct)) < 0)
			return r;
		if (by_acct.retry_after > 0) {
			r = store_login_known(s, account, addr, now - IDENT_KNOWN_TTL);
			if (r == 0)
				by_acct.retry_after = 0; /* the user's usual place */
			else if (r != -ENOENT)
				return r;
		}
	}
	memset(ret, 0, sizeof(*ret));
	if (by_acct.retry_after >= by_addr.retry_after && by_acct.retry_after > 0) {
		ret->retry_after = by_acct.retry_after;
		ret->by_account = true;
		ret->audit = by_acct.audit;
	} else if (by_addr.retry_after > 0) {
		ret->retry_after = by_addr.retry_after;
		ret->audit = by_addr.audit;
	}
	if (ret->retry_after > 0)
		metrics_signin_failure("throttled");
	return 0;
}

struct fail {
	int64_t now;
	int64_t max;
	/* out: this failure started a lock, and what the row held before */
	bool locked;
	int64_t prev_locked_until, prev_level, new_locked_until;
};

static int fail_fn(struct store_throttle *t, bool existed, void *ud)
{
	struct fail *f = ud;

	f->locked = false;
	f->prev_locked_until = existed ? t->locked_until : 0;
	f->prev_level = existed ? t->level : 0;

	if (!existed || f->now - t->last_failure > IDENT_THROTTLE_WINDOW) {
		t->failures = 0;
		t->window_start = f->now;
	}
	if (!existed || f->now - t->last_failure > IDENT_THROTTLE_DECAY)
		t->level = 0;
	t->failures++;
	t->last_failure = f->now;
	/* An attempt already under way when the lock began does not extend it. */
	if (t->failures >= f->max && t->locked_until <= f->now) {
		int64_t d = IDENT_THROTTLE_BASE;

		for (int64_t i = 0; i < t->level && d < IDENT_THROTTLE_CAP; i++)
			d *= 2;
		if (d > IDENT_THROTTLE_CAP)
			d = IDENT_THROTTLE_CAP;
		t->locked_until = f->now + d;
		if (t->level < 64)
			t->level++;
		f->locked = true;
		f->new_locked_until = t->locked_until;
	}
	return 0;
}

/* bastion_signin_lockouts_total: this failure began a lock. */
static void count_lock(const struct fail *f)
{
	if (f->locked)
		metrics_signin_lockout();
}

int ident_throttle_failure(struct store *s, const char *account, const char *remote_addr,
			   int64_t now)
{
	char addr[IDENT_ADDR_KEY_SIZE], key[KEY_SIZE];
	struct fail f = { .now = now, .max = IDENT_THROTTLE_ADDR_MAX };
	int r;

	ident_addr_key(remote_addr, addr);
	key_addr(addr, key);
	if ((r = store_throttle_update(s, key, fail_fn, &f)) < 0)
		return r;
	count_lock(&f);
	if (!account)
		return 0;
	f.max = IDENT_THROTTLE_ACCOUNT_MAX;
	key_account(account, key);
	if ((r = store_throttle_update(s, key, fail_fn, &f)) == 0)
		count_lock(&f);
	return r;
}

int ident_throttle_charge(struct store *s, const char *account, const char *remote_addr,
			  int64_t now, struct ident_charge *ret)
{
	char addr[IDENT_ADDR_KEY_SIZE], key[KEY_SIZE];
	struct fail f = { .now = now, .max = IDENT_THROTTLE_ADDR_MAX };
	int r;

	memset(ret, 0, sizeof(*ret));
	ident_addr_key(remote_addr, addr);
	key_addr(addr, key);
	if ((r = store_throttle_update(s, key, fail_fn, &f)) < 0)
		return r;
	ret->charged = true;
	count_lock(&f);
	ret->addr_locked = f.locked;
	ret->addr_prev_locked_until = f.prev_locked_until;
	ret->addr_prev_level = f.prev_level;
	ret->addr_locked_until = f.new_locked_until;
	if (!account)
		return 0;
	f.max = IDENT_THROTTLE_ACCOUNT_MAX;
	key_account(account, key);
	if ((r = store_throttle_update(s, key, fail_fn, &f)) == 0)
		count_lock(&f);
	return r;
}

static int refund_fn(struct store_throttle *t, bool existed, void *ud)
{
	const struct ident_charge *c = ud;

	if (!existed)
		return 1; /* purged meanwhile: nothing to give back */
	if (t->failures > 0)
		t->failures--;
	/* The lock this very attempt started goes with it; a lock another
	 * attempt started since (a later locked_until) stays. */
	if (c->addr_locked && t->locked_until == c->addr_locked_until) {
		t->locked_until = c->addr_prev_locked_until;
		t->level = c->addr_prev_level;
	}
	return 0;
}

int ident_throttle_refund(struct store *s, const char *remote_addr, const struct ident_charge *c)
{
	char addr[IDENT_ADDR_KEY_SIZE], key[KEY_SIZE];

	if (!c->charged)
		return 0;
	ident_addr_key(remote_addr, addr);
	key_addr(addr, key);
	return store_throttle_update(s, key, refund_fn, (void *)c);
}

int ident_throttle_success(struct store *s, const char *account, const char *remote_addr,
			   int64_t now)
{
	char addr[IDENT_ADDR_KEY_SIZE], key[KEY_SIZE];
	int r;

	ident_addr_key(remote_addr, addr);
	key_account(account, key);
	if ((r = store_throttle_delete(s, key)) < 0)
		return r;
	return store_login_known_add(s, account, addr, now, IDENT_KNOWN_MAX);
}

/* What sign-in used to delete on every success, on the housekeeping timer
 * instead (issue 15: each was a round trip on PostgreSQL): expired browser
 * sessions and API tokens, and throttling rows quiet for longer than the
 * back-off's memory. A row left meanwhile changes nothing: an expired
 * session or token is refused when presented, a stale throttling row
 * restarts its window when next touched. Failure is harmless. */
int ident_housekeep(struct store *s, int64_t now)
{
	int r = store_ident_purge_expired(s, now);
	int r2 = store_throttle_purge(s, now - IDENT_THROTTLE_DECAY);

	return r < 0 ? r : r2;
}

int ident_throttle_reset(struct store *s, const char *account, bool forget_known)
{
	char key[KEY_SIZE];
	int r;

	key_account(account, key);
	if ((r = store_throttle_delete(s, key)) < 0)
		return r;
	return forget_known ? store_login_known_forget(s, account) : 0;
}
