/* Identity: Argon2id passwords, the first account, cookie parsing, sign-in,
 * authentication by cookie and by API token, and the sign-in throttle
 * (identity/), on both store backends. The REST handlers of src/api/auth.c
 * are test_ident_api.c. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cmocka.h>

#include "identtest.h"
#include "testutil.h"
#include <sodium.h>

#include "api/api.h"
#include "core/gate.h"
#include "core/log.h"
#include "core/util.h"
#include "identity/ident.h"
#include "store/internal.h"
#include "store/store.h"
#include "server/loops.h"
#include "terminal/term.h"

/* ---- passwords ------------------------------------------------------ */

static void test_password_hash_verify(void **state)
{
	char h1[IDENT_HASH_SIZE], h2[IDENT_HASH_SIZE], small[32];

	assert_int_equal(ident_password_hash(PW, h1, sizeof(h1)), 0);
	assert_int_equal(strncmp(h1, "$argon2id$", 10), 0);
	assert_null(strstr(h1, PW));
	assert_int_equal(ident_password_verify(h1, PW), 0);
	assert_int_equal(ident_password_verify(h1, PW "x"), -EACCES);
	assert_int_equal(ident_password_verify(h1, ""), -EACCES);
	assert_int_equal(ident_password_verify("not a hash", PW), -EACCES);
	/* A fresh salt every time. */
	assert_int_equal(ident_password_hash(PW, h2, sizeof(h2)), 0);
	assert_string_not_equal(h1, h2);
	assert_int_equal(ident_password_verify(h2, PW), 0);
	assert_int_equal(ident_password_hash(PW, small, sizeof(small)), -E2BIG);
}

static void test_password_policy(void **state)
{
	char buf[1100];

	assert_int_equal(ident_password_check(NULL), -EINVAL);
	assert_int_equal(ident_password_check(""), -EINVAL);
	assert_int_equal(ident_password_check("12345678901"), -EINVAL);
	assert_int_equal(ident_password_check("123456789012"), 0);
	/* Characters, not bytes: 11 two-byte characters are too few. */
	assert_int_equal(ident_password_check("ééééééééééé"), -EINVAL);
	assert_int_equal(ident_password_check("éééééééééééé"), 0);
	memset(buf, 'p', 1024);
	buf[1024] = '\0';
	assert_int_equal(ident_password_check(buf), 0);
	buf[1024] = 'p';
	buf[1025] = '\0';
	assert_int_equal(ident_password_check(buf), -EINVAL);
}

/* ---- the first account ---------------------------------------------- */

struct role_seen {
	int n;
	bool owner_root;
};

static int see_role(const char *role, const char *scope, void *ud)
{
	struct role_seen *r = ud;

	r->n++;
	if (strcmp(role, "Owner") == 0 && strcmp(scope, "/") == 0)
		r->owner_root = true;
	return 0;
}

static void test_bootstrap_env(void **state)
{
	struct fx *f = *state;
	struct store_user u, u2;
	struct store_role ra;
	struct role_seen seen = { 0 };
	char *gen = NULL;
	int64_t n = 0;

	assert_int_equal(ident_bootstrap(f->s, PW, &gen), 0);
	assert_null(gen);
	assert_int_equal(store_user_get(f->s, "admin", &u), 0);
	assert_false(u.disabled);
	assert_int_equal(ident_password_verify(u.password_hash, PW), 0);
	assert_int_equal(store_role_get(f->s, "bootstrap-admin-owner", &ra), 0);
	assert_string_equal(ra.principal, "user:admin");
	assert_string_equal(ra.role, "Owner");
	assert_string_equal(ra.scope, "/");
	assert_int_equal(store_role_foreach_principal(f->s, "user:admin", see_role, &seen), 0);
	assert_true(seen.owner_root);
	assert_int_equal(
		query_int(
			f->s,
			"SELECT count(*) FROM audit WHERE principal = 'system' AND action = 'user.create'"
			" AND target = 'user:admin' AND result = 'success'",
			NULL),
		1);
	assert_audit_clean(f->s, PW);

	/* Second start: nothing new, the password is untouched. */
	assert_int_equal(ident_bootstrap(f->s, "another long password", &gen), 0);
	assert_null(gen);
	assert_int_equal(ident_bootstrap(f->s, NULL, &gen), 0);
	assert_null(gen);
	assert_int_equal(store_user_count(f->s, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_user_get(f->s, "admin", &u2), 0);
	assert_string_equal(u2.password_hash, u.password_hash);
	assert_int_equal(query_int(f->s, "SELECT count(*) FROM audit", NULL), 1);
}

static void test_bootstrap_env_too_short(void **state)
{
	struct fx *f = *state;
	char *gen = NULL;
	int64_t n = -1;

	assert_int_equal(ident_bootstrap(f->s, "short", &gen), -EINVAL);
	assert_int_equal(ident_bootstrap(f->s, "", &gen), -EINVAL);
	assert_null(gen);
	assert_int_equal(store_user_count(f->s, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(query_int(f->s, "SELECT count(*) FROM role_assignments", NULL), 0);
}

static void test_bootstrap_generated(void **state)
{
	struct fx *f = *state;
	struct store_user u;
	char *gen = NULL, *again = NULL;
	int64_t n = 0;

	assert_int_equal(ident_bootstrap(f->s, NULL, &gen), 0);
	assert_non_null(gen);
	assert_true(strlen(gen) >= 16);
	assert_int_equal(strlen(gen), IDENT_ADMIN_PASSWORD_LEN);
	assert_int_equal(ident_password_check(gen), 0);
	assert_int_equal(store_user_get(f->s, "admin", &u), 0);
	assert_int_equal(ident_password_verify(u.password_hash, gen), 0);
	assert_audit_clean(f->s, gen);

	/* Printed once: the next start creates and returns nothing. */
	assert_int_equal(ident_bootstrap(f->s, NULL, &again), 0);
	assert_null(again);
	assert_int_equal(store_user_count(f->s, &n), 0);
	assert_int_equal(n, 1);
	util_free_secret(gen);
}

/* ---- cookies -------------------------------------------------------- */

static void test_cookie_parsing(void **state)
{
	char out[64], tiny[4];
	char big[200];

	assert_int_equal(ident_cookie_value("a=1; __Host-bastion_session=xyz; b=2", IDENT_COOKIE,
					    out, sizeof(out)),
			 0);
	assert_string_equal(out, "xyz");
	assert_int_equal(
		ident_cookie_value("__Host-bastion_session=first", IDENT_COOKIE, out, sizeof(out)),
		0);
	assert_string_equal(out, "first");
	assert_int_equal(ident_cookie_value("a=1;__Host-bastion_session=tight;b=2", IDENT_COOKIE,
					    out, sizeof(out)),
			 0);
	assert_string_equal(out, "tight");
	assert_int_equal(ident_cookie_value("  a=1 ;   __Host-bastion_session  =  spaced  ; b=2",
					    IDENT_COOKIE, out, sizeof(out)),
			 0);
	assert_string_equal(out, "spaced");
	assert_int_equal(ident_cookie_value("__Host-bastion_session=\"quoted\"", IDENT_COOKIE, out,
					    sizeof(out)),
			 0);
	assert_string_equal(out, "quoted");
	assert_int_equal(
		ident_cookie_value("__Host-bastion_session=\"", IDENT_COOKIE, out, sizeof(out)), 0);
	assert_string_equal(out, "\"");
	assert_int_equal(ident_cookie_value("x=a=b; __Host-bastion_session=v=w", IDENT_COOKIE, out,
					    sizeof(out)),
			 0);
	assert_string_equal(out, "v=w");
	/* The first of two wins. */
	assert_int_equal(
		ident_cookie_value("__Host-bastion_session=one; __Host-bastion_session=two",
				   IDENT_COOKIE, out, sizeof(out)),
		0);
	assert_string_equal(out, "one");
	/* A name that merely ends or starts with ours is another cookie. */
	assert_int_equal(
		ident_cookie_value("x__Host-bastion_session=evil", IDENT_COOKIE, out, sizeof(out)),
		-ENOENT);
	assert_int_equal(
		ident_cookie_value("x__Host-bastion_session=evil; __Host-bastion_session=good",
				   IDENT_COOKIE, out, sizeof(out)),
		0);
	assert_string_equal(out, "good");
	assert_int_equal(
		ident_cookie_value("__Host-bastion_session2=evil", IDENT_COOKIE, out, sizeof(out)),
		-ENOENT);
	assert_int_equal(
		ident_cookie_value("a=__Host-bastion_session=evil", IDENT_COOKIE, out, sizeof(out)),
		-ENOENT);
	/* Absent, empty, malformed. */
	assert_int_equal(ident_cookie_value(NULL, IDENT_COOKIE, out, sizeof(out)), -ENOENT);
	assert_int_equal(ident_cookie_value("", IDENT_COOKIE, out, sizeof(out)), -ENOENT);
	assert_int_equal(ident_cookie_value("a=1; b=2", IDENT_COOKIE, out, sizeof(out)), -ENOENT);
	assert_int_equal(
		ident_cookie_value("__Host-bastion_session=", IDENT_COOKIE, out, sizeof(out)),
		-ENOENT);
	assert_int_equal(
		ident_cookie_value("__Host-bastion_session=\"\"", IDENT_COOKIE, out, sizeof(out)),
		-ENOENT);
	assert_int_equal(
		ident_cookie_value("__Host-bastion_session", IDENT_COOKIE, out, sizeof(out)),
		-ENOENT);
	assert_int_equal(ident_cookie_value(";;;", IDENT_COOKIE, out, sizeof(out)), -ENOENT);
	/* Oversize. */
	assert_int_equal(
		ident_cookie_value("__Host-bastion_session=abcd", IDENT_COOKIE, tiny, sizeof(tiny)),
		-E2BIG);
	assert_int_equal(
		ident_cookie_value("__Host-bastion_session=abc", IDENT_COOKIE, tiny, sizeof(tiny)),
		0);
	assert_string_equal(tiny, "abc");
	memcpy(big, IDENT_COOKIE "=", sizeof(IDENT_COOKIE));
	memset(big + sizeof(IDENT_COOKIE), 'z', sizeof(big) - sizeof(IDENT_COOKIE) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(ident_cookie_value(big, IDENT_COOKIE, out, sizeof(out)), -E2BIG);
}

/* ---- sign-in and authentication ------------------------------------- */

static void test_login(void **state)
{
	struct fx *f = *state;
	struct ident_session a, b;
	uint8_t h[32];
	int64_t uid, got, exp;
	char csrf[64];
	char big[1100];

	uid = add_user(f, "alice", PW);
	assert_int_equal(ident_login(f->s, "alice", "wrong password!!", &a), -EACCES);
	assert_int_equal(ident_login(f->s, "nobody", PW, &a), -EACCES);
	assert_int_equal(ident_login(f->s, "", PW, &a), -EACCES);
	memset(big, 'n', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(ident_login(f->s, big, PW, &a), -EACCES);
	assert_int_equal(ident_login(f->s, "alice", big, &a), -EACCES);

	assert_int_equal(ident_login(f->s, "alice", PW, &a), 0);
	assert_int_equal(a.user_id, uid);
	assert_string_equal(a.name, "alice");
	assert_int_equal(strlen(a.token), util_token_len(IDENT_TOKEN_BYTES));
	assert_int_equal(strlen(a.csrf), util_token_len(IDENT_TOKEN_BYTES));
	assert_true(a.expires_at >= store_now() + IDENT_SESSION_TTL - 5);
	assert_true(a.expires_at <= store_now() + IDENT_SESSION_TTL);

	/* Stored as a hash only, with its CSRF token and expiry. */
	util_sha256_str(a.token, h);
	assert_int_equal(store_login_get(f->s, h, &got, csrf, &exp), 0);
	assert_int_equal(got, uid);
	assert_string_equal(csrf, a.csrf);
	assert_int_equal(exp, a.expires_at);
	assert_int_equal(query_int(f->s,
				   "SELECT count(*) FROM login_sessions WHERE token_hash = ?1",
				   a.token),
			 0);

	/* A new session id at every login. */
	assert_int_equal(ident_login(f->s, "alice", PW, &b), 0);
	assert_string_not_equal(a.token, b.token);
	assert_string_not_equal(a.csrf, b.csrf);
	assert_int_equal(query_int(f->s, "SELECT count(*) FROM login_sessions", NULL), 2);
}

static void test_login_session_cap(void **state)
{
	struct fx *f = *state;
	struct ident_session sess;
	uint8_t h[32];
	int64_t uid;

	uid = add_user(f, "bob", PW);
	/* Pre-existing sessions beyond the cap are trimmed at the next login. */
	for (int i = 0; i < IDENT_MAX_SESSIONS + 5; i++) {
		memset(h, 0, sizeof(h));
		h[0] = (uint8_t)i;
		h[1] = 0x5a;
		assert_int_equal(store_login_add(f->s, h, uid, "c", store_now() + 100), 0);
	}
	assert_int_equal(ident_login(f->s, "bob", PW, &sess), 0);
	assert_int_equal(query_int(f->s, "SELECT count(*) FROM login_sessions", NULL),
			 IDENT_MAX_SESSIONS);
	util_sha256_str(sess.token, h);
	int64_t got, exp;
	char csrf[64];
	assert_int_equal(store_login_get(f->s, h, &got, csrf, &exp), 0);
}

static void test_authenticate_cookie(void **state)
{
	struct fx *f = *state;
	struct ident_session sess;
	struct ident_creds req = { 0 };
	struct principal p;
	char cookie[256];
	int64_t uid;

	uid = add_user(f, "carol", PW);
	assert_int_equal(ident_login(f->s, "carol", PW, &sess), 0);
	cookie_header(cookie, sizeof(cookie), sess.token);
	req.cookie = cookie;
	assert_int_equal(ident_authenticate(f->s, &req, &p), 0);
	assert_int_equal(p.user_id, uid);
	assert_string_equal(p.name, "carol");
	assert_true(p.via_cookie);
	assert_string_equal(p.csrf, sess.csrf);
	assert_true(ident_csrf_ok(&p, sess.csrf));
	assert_false(ident_csrf_ok(&p, "nope"));
	assert_false(ident_csrf_ok(&p, NULL));
	assert_false(ident_csrf_ok(NULL, sess.csrf));

	/* Quoted cookie values are accepted too. */
	snprintf(cookie, sizeof(cookie), IDENT_COOKIE "=\"%s\"", sess.token);
	assert_int_equal(ident_authenticate(f->s, &req, &p), 0);

	/* After logout the cookie is worthless. */
	assert_int_equal(ident_logout(f->s, &req), 0);
	assert_int_equal(ident_authenticate(f->s, &req, &p), -ENOENT);
	assert_int_equal(ident_logout(f->s, &req), -ENOENT);
}

static void test_authenticate_bearer(void **state)
{
	struct fx *f = *state;
	struct ident_session sess;
	struct ident_creds req = { 0 };
	struct principal p;
	char token[IDENT_TOKEN_SIZE], auth[128], cookie[256];
	int64_t uid, other, exp = 0;

	uid = add_user(f, "dan", PW);
	other = add_user(f, "eve", PW);
	assert_int_equal(ident_token_create(f->s, uid, "ci", 3600, token, &exp), 0);
	assert_true(exp >= store_now() + 3600 - 5);
	assert_int_equal(strlen(token), util_token_len(IDENT_TOKEN_BYTES));

	snprintf(auth, sizeof(auth), "Bearer %s", token);
	req.authorization = auth;
	assert_int_equal(ident_authenticate(f->s, &req, &p), 0);
	assert_int_equal(p.user_id, uid);
	assert_string_equal(p.name, "dan");
	assert_false(p.via_cookie);
	assert_string_equal(p.csrf, "");
	assert_false(ident_csrf_ok(&p, ""));

	/* Scheme is case-insensitive; surrounding blanks are ignored. */
	snprintf(auth, sizeof(auth), "bearer   %s  ", token);
	assert_int_equal(ident_authenticate(f->s, &req, &p), 0);
	assert_int_equal(p.user_id, uid);

	/* The token takes precedence over a cookie of someone else. */
	assert_int_equal(ident_login(f->s, "eve", PW, &sess), 0);
	cookie_header(cookie, sizeof(cookie), sess.token);
	req.cookie = cookie;
	snprintf(auth, sizeof(auth), "Bearer %s", token);
	assert_int_equal(ident_authenticate(f->s, &req, &p), 0);
	assert_int_equal(p.user_id, uid);
	assert_false(p.via_cookie);

	/* A bad token does not fall back to the cookie. */
	snprintf(auth, sizeof(auth), "Bearer %sX", token);
	assert_int_equal(ident_authenticate(f->s, &req, &p), -ENOENT);

	/* Another scheme is ignored, and the cookie counts. */
	snprintf(auth, sizeof(auth), "Basic ZGFuOnB3");
	assert_int_equal(ident_authenticate(f->s, &req, &p), 0);
	assert_int_equal(p.user_id, other);
	assert_true(p.via_cookie);

	/* Tokens are stored hashed. */
	assert_int_equal(
		query_int(f->s,
			  "SELECT count(*) FROM api_tokens WHERE token_hash = ?1 OR name = ?1",
			  token),
		0);
}

static void test_authenticate_expired(void **state)
{
	struct fx *f = *state;
	struct ident_creds req = { 0 };
	struct principal p;
	char token[IDENT_TOKEN_SIZE], auth[128], cookie[128];
	uint8_t h[32];
	int64_t uid, x, y;
	char csrf[64];

	uid = add_user(f, "fay", PW);
	util_random_token(token, sizeof(token), IDENT_TOKEN_BYTES);
	util_sha256_str(token, h);
	assert_int_equal(store_login_add(f->s, h, uid, "csrf", store_now() - 1), 0);
	snprintf(cookie, sizeof(cookie), IDENT_COOKIE "=%s", token);
	req.cookie = cookie;
	assert_int_equal(ident_authenticate(f->s, &req, &p), -ENOENT);
	/* An expired session is deleted when seen. */
	assert_int_equal(store_login_get(f->s, h, &x, csrf, &y), -ENOENT);

	req.cookie = NULL;
	util_random_token(token, sizeof(token), IDENT_TOKEN_BYTES);
	util_sha256_str(token, h);
	assert_int_equal(store_token_add(f->s, h, uid, NULL, store_now() - 1), 0);
	snprintf(auth, sizeof(auth), "Bearer %s", token);
	req.authorization = auth;
	assert_int_equal(ident_authenticate(f->s, &req, &p), -ENOENT);
	assert_int_equal(ident_token_create(f->s, uid, NULL, 0, token, &x), -EINVAL);
}

static void test_authenticate_disabled(void **state)
{
	struct fx *f = *state;
	struct ident_session sess;
	struct ident_creds req = { 0 };
	struct principal p;
	char token[IDENT_TOKEN_SIZE], auth[128], cookie[256];
	int64_t uid, exp;

	uid = add_user(f, "gus", PW);
	assert_int_equal(ident_login(f->s, "gus", PW, &sess), 0);
	assert_int_equal(ident_token_create(f->s, uid, NULL, 3600, token, &exp), 0);
	assert_int_equal(store_user_set_disabled(f->s, "gus", true), 0);

	cookie_header(cookie, sizeof(cookie), sess.token);
	req.cookie = cookie;
	assert_int_equal(ident_authenticate(f->s, &req, &p), -ENOENT);
	req.cookie = NULL;
	snprintf(auth, sizeof(auth), "Bearer %s", token);
	req.authorization = auth;
	assert_int_equal(ident_authenticate(f->s, &req, &p), -ENOENT);
	assert_int_equal(ident_login(f->s, "gus", PW, &sess), -EACCES);

	assert_int_equal(store_user_set_disabled(f->s, "gus", false), 0);
	assert_int_equal(ident_authenticate(f->s, &req, &p), 0);
}

static void test_authenticate_garbage(void **state)
{
	struct fx *f = *state;
	struct ident_creds req = { 0 };
	struct principal p;
	char huge[2048];
	static const char *const auths[] = {
		"",
		"Bearer",
		"Bearer ",
		"Bearer    ",
		"Bearerxyz",
		"Bearer \t",
		"Bearer not-a-token",
		"Bearer a b c",
		"Bearer \"\"",
	};
	static const char *const cookies[] = {
		"",
		";",
		"=",
		"__Host-bastion_session",
		"__Host-bastion_session=",
		"__Host-bastion_session=garbage",
		"__Host-bastion_session=\"unterminated",
		"x__Host-bastion_session=x",
		"\x01\x02\xff=\xfe",
	};

	add_user(f, "hal", PW);
	assert_int_equal(ident_authenticate(f->s, &req, &p), -ENOENT);
	for (size_t i = 0; i < sizeof(auths) / sizeof(auths[0]); i++) {
		req.authorization = auths[i];
		assert_int_equal(ident_authenticate(f->s, &req, &p), -ENOENT);
	}
	req.authorization = NULL;
	for (size_t i = 0; i < sizeof(cookies) / sizeof(cookies[0]); i++) {
		req.cookie = cookies[i];
		assert_int_equal(ident_authenticate(f->s, &req, &p), -ENOENT);
	}
	memcpy(huge, "Bearer ", 7);
	memset(huge + 7, 'A', sizeof(huge) - 8);
	huge[sizeof(huge) - 1] = '\0';
	req.authorization = huge;
	assert_int_equal(ident_authenticate(f->s, &req, &p), -ENOENT);
	req.authorization = NULL;
	memcpy(huge, IDENT_COOKIE "=", sizeof(IDENT_COOKIE));
	req.cookie = huge;
	assert_int_equal(ident_authenticate(f->s, &req, &p), -ENOENT);
}

/* ---- sign-in throttling --------------------------------------------- */

static void test_addr_key(void **state)
{
	char k[IDENT_ADDR_KEY_SIZE];

	ident_addr_key("192.0.2.1", k);
	assert_string_equal(k, "192.0.2.1");
	ident_addr_key("::ffff:192.0.2.1", k);
	assert_string_equal(k, "192.0.2.1");
	ident_addr_key("2001:db8:1:2:3:4:5:6", k);
	assert_string_equal(k, "2001:db8:1:2::/64");
	ident_addr_key("2001:db8:1:2:ffff::1", k);
	assert_string_equal(k, "2001:db8:1:2::/64");
	ident_addr_key("not an address", k);
	assert_string_equal(k, "not an address");
}

static void test_throttle_account(void **state)
{
	struct fx *f = *state;
	struct ident_throttle th;
	int64_t t = 1000000;
	bool by_acct = false;

	for (int i = 0; i < IDENT_THROTTLE_ACCOUNT_MAX - 1; i++) {
		assert_int_equal(ident_throttle_failure(f->s, "zoe", "192.0.2.1", t + i), 0);
		assert_int_equal(retry(f, "zoe", "192.0.2.1", t + i, NULL), 0);
	}
	t += IDENT_THROTTLE_ACCOUNT_MAX - 1;
	assert_int_equal(ident_throttle_failure(f->s, "zoe", "192.0.2.1", t), 0);
	/* Locked for the base time, whatever address asks next. */
	assert_int_equal(retry(f, "zoe", "192.0.2.1", t, &by_acct), IDENT_THROTTLE_BASE);
	assert_true(by_acct);
	assert_int_equal(retry(f, "zoe", "198.51.100.9", t + 10, NULL), IDENT_THROTTLE_BASE - 10);
	/* Other accounts are not affected. */
	assert_int_equal(retry(f, "amy", "192.0.2.1", t, NULL), 0);
	/* Only the first refusal of a lock is to be audited. */
	assert_int_equal(ident_throttle_check(f->s, "zoe", "203.0.113.1", t, &th), 0);
	assert_false(th.audit);

	/* Each failure after a lock doubles the next one, up to the cap. */
	int64_t want = IDENT_THROTTLE_BASE;
	for (int i = 0; i < 6; i++) {
		t += want;
		assert_int_equal(retry(f, "zoe", "192.0.2.1", t, NULL), 0);
		assert_int_equal(ident_throttle_failure(f->s, "zoe", "192.0.2.1", t), 0);
		want = want * 2 > IDENT_THROTTLE_CAP ? IDENT_THROTTLE_CAP : want * 2;
		assert_int_equal(retry(f, "zoe", "192.0.2.1", t, NULL), want);
		assert_int_equal(ident_throttle_check(f->s, "zoe", "192.0.2.1", t, &th), 0);
	}
	assert_int_equal(want, IDENT_THROTTLE_CAP);
	/* An Owner setting a new password lifts the lock. */
	assert_int_equal(ident_throttle_reset(f->s, "zoe", false), 0);
	assert_int_equal(retry(f, "zoe", "192.0.2.1", t, NULL), 0);

	/* A quiet window starts the count again. */
	for (int i = 0; i < IDENT_THROTTLE_ACCOUNT_MAX - 1; i++)
		assert_int_equal(ident_throttle_failure(f->s, "ben", "192.0.2.1", t), 0);
	t += IDENT_THROTTLE_WINDOW + 1;
	assert_int_equal(ident_throttle_failure(f->s, "ben", "192.0.2.1", t), 0);
	assert_int_equal(retry(f, "ben", "192.0.2.1", t, NULL), 0);
}

static void test_throttle_success_resets(void **state)
{
	struct fx *f = *state;
	int64_t t = 2000000;

	for (int i = 0; i < IDENT_THROTTLE_ACCOUNT_MAX - 1; i++)
		assert_int_equal(ident_throttle_failure(f->s, "yan", "192.0.2.2", t), 0);
	assert_int_equal(ident_throttle_success(f->s, "yan", "192.0.2.2", t), 0);
	for (int i = 0; i < IDENT_THROTTLE_ACCOUNT_MAX - 1; i++)
		assert_int_equal(ident_throttle_failure(f->s, "yan", "192.0.2.2", t), 0);
	assert_int_equal(retry(f, "yan", "192.0.2.2", t, NULL), 0);
}

static void test_throttle_known_address(void **state)
{
	struct fx *f = *state;
	int64_t t = 3000000;
	bool by_acct = false;

	/* kim signs in from home; an attacker elsewhere locks the account... */
	assert_int_equal(ident_throttle_success(f->s, "kim", "192.0.2.10", t), 0);
	for (int i = 0; i < IDENT_THROTTLE_ACCOUNT_MAX; i++)
		assert_int_equal(ident_throttle_failure(f->s, "kim", "203.0.113.66", t + 1), 0);
	assert_true(retry(f, "kim", "203.0.113.66", t + 2, &by_acct) > 0);
	assert_true(by_acct);
	assert_true(retry(f, "kim", "198.51.100.1", t + 2, NULL) > 0);
	/* ... but not for kim at home. */
	assert_int_equal(retry(f, "kim", "192.0.2.10", t + 2, NULL), 0);
	/* A home address not used for IDENT_KNOWN_TTL is no longer known. */
	for (int i = 0; i < IDENT_THROTTLE_ACCOUNT_MAX; i++)
		assert_int_equal(
			ident_throttle_failure(f->s, "kim", "203.0.113.66", t + IDENT_KNOWN_TTL),
			0);
	assert_true(retry(f, "kim", "192.0.2.10", t + IDENT_KNOWN_TTL + 2, NULL) > 0);
	/* Deleting the account forgets its addresses. */
	assert_int_equal(ident_throttle_reset(f->s, "kim", true), 0);
	assert_int_equal(
		query_int(f->s, "SELECT count(*) FROM login_known WHERE account = ?", "kim"), 0);
}

static void test_throttle_address(void **state)
{
	struct fx *f = *state;
	int64_t t = 4000000;
	bool by_acct = true;
	char name[16];

	/* Spraying many accounts from one address locks the address. */
	for (int i = 0; i < IDENT_THROTTLE_ADDR_MAX; i++) {
		assert_int_equal(retry(f, NULL, "2001:db8:5:6::1", t, NULL), 0);
		snprintf(name, sizeof(name), "u%d", i);
		assert_int_equal(
			ident_throttle_failure(f->s, i % 2 ? name : NULL, "2001:db8:5:6::1", t), 0);
	}
	/* The whole /64 is one address. */
	assert_int_equal(retry(f, "someone", "2001:db8:5:6:abcd::2", t, &by_acct),
			 IDENT_THROTTLE_BASE);
	assert_false(by_acct);
	assert_int_equal(retry(f, "someone", "2001:db8:5:7::1", t, NULL), 0);
	/* A success there does not reset the address. */
	assert_int_equal(ident_throttle_success(f->s, "u1", "2001:db8:5:6::1", t), 0);
	assert_true(retry(f, "u1", "2001:db8:5:6::1", t, NULL) > 0);
}

/* The browser checks of identity/: Origin and CSRF apply to every method
 * that may change state, never to GET and HEAD; a Bearer token needs no
 * CSRF token; an Origin must be exactly https:// + Host. */
static void test_browser_checks(void **state)
{
	static const char *const unsafe[] = { "PUT", "POST", "DELETE", "PATCH" };
	static const char *const safe[] = { "GET", "HEAD" };
	struct principal cookie = { .user_id = 1, .name = "a", .via_cookie = true, .csrf = "tok" };
	struct principal bearer = { .user_id = 1, .name = "a" };
	char long_host[400], origin[420];
	(void)state;

	memset(long_host, 'h', sizeof(long_host) - 1);
	long_host[sizeof(long_host) - 1] = '\0';
	for (size_t i = 0; i < sizeof(safe) / sizeof(safe[0]); i++) {
		struct ident_creds c = { .method = safe[i], .origin = "https://evil", .host = "b" };

		assert_true(ident_method_safe(safe[i]));
		assert_true(ident_origin_ok(&c));
		assert_true(ident_csrf_passes(&cookie, &c));
	}
	for (size_t i = 0; i < sizeof(unsafe) / sizeof(unsafe[0]); i++) {
		struct ident_creds c = { .method = unsafe[i], .host = "b.example:8443" };

		assert_false(ident_method_safe(unsafe[i]));
		/* No Origin: a script; the right one; anything else. */
		assert_true(ident_origin_ok(&c));
		c.origin = "https://b.example:8443";
		assert_true(ident_origin_ok(&c));
		c.origin = "http://b.example:8443";
		assert_false(ident_origin_ok(&c));
		c.origin = "https://b.example:8443x";
		assert_false(ident_origin_ok(&c));
		c.origin = "https://b.example";
		assert_false(ident_origin_ok(&c));
		c.host = NULL;
		assert_false(ident_origin_ok(&c));
		/* A long Host compares whole: an Origin that matches only a
		 * prefix of it (what a clamped copy would hold) fails. */
		c.host = long_host;
		for (size_t cut = 1; cut < sizeof(long_host) - 1; cut += 97) {
			snprintf(origin, sizeof(origin), "https://%.*s", (int)cut, long_host);
			c.origin = origin;
			assert_false(ident_origin_ok(&c));
		}
		snprintf(origin, sizeof(origin), "https://%s", long_host);
		c.origin = origin;
		assert_true(ident_origin_ok(&c));
		c.csrf_token = NULL;
		assert_false(ident_csrf_passes(&cookie, &c));
		assert_true(ident_csrf_passes(&bearer, &c));
		c.csrf_token = "tok";
		assert_true(ident_csrf_passes(&cookie, &c));
		c.csrf_token = "tok2";
		assert_false(ident_csrf_passes(&cookie, &c));
		c.csrf_token = "";
		assert_false(ident_csrf_passes(&cookie, &c));
	}
	/* A WebSocket upgrade (any method) must show its own Origin: absent,
	 * another or a clamped one is refused. */
	for (size_t i = 0; i < 3; i++) {
		const char *method = i == 0 ? "GET" : i == 1 ? "POST" : NULL;
		struct ident_creds c = { .method = method, .host = "b.example" };

		assert_false(ident_origin_is_own(&c));
		c.origin = "https://b.example";
		assert_true(ident_origin_is_own(&c));
		c.origin = "https://b.example.evil";
		assert_false(ident_origin_is_own(&c));
		c.origin = "http://b.example";
		assert_false(ident_origin_is_own(&c));
		c.host = NULL;
		assert_false(ident_origin_is_own(&c));
		c.host = long_host;
		snprintf(origin, sizeof(origin), "https://%.291s", long_host);
		c.origin = origin;
		assert_false(ident_origin_is_own(&c));
		snprintf(origin, sizeof(origin), "https://%s", long_host);
		assert_true(ident_origin_is_own(&c));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_password_hash_verify),
		cmocka_unit_test(test_password_policy),
		cmocka_unit_test_setup_teardown(test_bootstrap_env, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bootstrap_env_too_short, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bootstrap_generated, setup, teardown),
		cmocka_unit_test(test_cookie_parsing),
		cmocka_unit_test(test_browser_checks),
		cmocka_unit_test_setup_teardown(test_login, setup, teardown),
		cmocka_unit_test_setup_teardown(test_login_session_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_authenticate_cookie, setup, teardown),
		cmocka_unit_test_setup_teardown(test_authenticate_bearer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_authenticate_expired, setup, teardown),
		cmocka_unit_test_setup_teardown(test_authenticate_disabled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_authenticate_garbage, setup, teardown),
		cmocka_unit_test(test_addr_key),
		cmocka_unit_test_setup_teardown(test_throttle_account, setup, teardown),
		cmocka_unit_test_setup_teardown(test_throttle_success_resets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_throttle_known_address, setup, teardown),
		cmocka_unit_test_setup_teardown(test_throttle_address, setup, teardown),
	};

	return ident_run(tests, sizeof(tests) / sizeof(tests[0]));
}
