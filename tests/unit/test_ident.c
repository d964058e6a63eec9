/* Identity: Argon2id passwords, the first account, cookie parsing, sign-in,
 * authentication by cookie and by API token, and the REST handlers of
 * src/api/auth.c called directly with a struct api_call. */
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

#define PW "correct horse battery staple"

struct fx {
	char dir[64];
	struct store *s;
	struct api_ctx ctx;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_non_null(tu_tmpdir(f->dir, sizeof(f->dir), "ident"));
	assert_int_equal(tu_store_open(f->dir, &f->s), 0);
	f->ctx.store = f->s;
	f->ctx.instance_name = "test";
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	store_free(f->s);
	tu_rm_tree(f->dir);
	free(f);
	return 0;
}

static int64_t query_int(struct store *s, const char *sql, const char *arg)
{
	return tu_query_int(s, sql, arg);
}

/* Fails the test if secret appears anywhere in the audit trail. */
static void assert_audit_clean(struct store *s, const char *secret)
{
	assert_int_equal(
		query_int(
			s,
			"SELECT count(*) FROM audit WHERE instr(coalesce(principal,'') || coalesce(target,'')"
			" || coalesce(result,'') || coalesce(detail,'') || action, ?1) > 0",
			secret),
		0);
}

static int64_t add_user(struct fx *f, const char *name, const char *pw)
{
	char hash[IDENT_HASH_SIZE];
	int64_t id = 0;

	assert_int_equal(ident_password_hash(pw, hash, sizeof(hash)), 0);
	assert_int_equal(store_user_put(f->s, name, hash, NULL, &id), 0);
	return id;
}

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

static void cookie_header(char *out, size_t size, const char *token)
{
	snprintf(out, size, "theme=dark; " IDENT_COOKIE "=%s; other=1", token);
}

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

/* ident_authenticate on what the router would pass it for req. */
static int authenticate_req(struct store *s, const struct srv_request *req, struct principal *ret)
{
	struct ident_creds creds = api_creds(req);

	return ident_authenticate(s, &creds, ret);
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

/* ---- REST handlers -------------------------------------------------- */

struct call {
	struct srv_request req;
	struct api_resp resp;
	struct api_call c;
	char path[128];
};

static void call_init(struct call *k, struct fx *f, const struct principal *who,
		      const char *body_json, const char *path)
{
	memset(k, 0, sizeof(*k));
	util_strlcpy(k->req.remote_addr, "192.0.2.7", sizeof(k->req.remote_addr));
	k->req.method = "POST";
	k->c.ctx = &f->ctx;
	k->c.req = &k->req;
	k->c.resp = &k->resp;
	k->c.who = who;
	if (body_json) {
		k->c.body = json_loads(body_json, JSON_ALLOW_NUL, NULL);
		assert_non_null(k->c.body);
	}
	if (path) {
		util_strlcpy(k->path, path, sizeof(k->path));
		for (char *p = k->path, *next; p && k->c.nseg < API_MAX_SEGS; p = next) {
			next = strchr(p, '/');
			if (next)
				*next++ = '\0';
			k->c.seg[k->c.nseg++] = p;
		}
	}
}

static void call_done(struct call *k)
{
	json_decref(k->c.body);
	api_resp_done(&k->resp);
}

static const char *header(const struct api_resp *resp, const char *name)
{
	size_t n = strlen(name);

	for (int i = 0; i < resp->n_headers; i++)
		if (strncasecmp(resp->headers[i], name, n) == 0 && resp->headers[i][n] == ':')
			return resp->headers[i] + n + 2;
	return NULL;
}

static const char *err_code(const struct api_resp *resp)
{
	return json_string_value(json_object_get(json_object_get(resp->body, "error"), "code"));
}

/* resp.body.ended[what], or -1. */
static int64_t ended_count(const struct api_resp *resp, const char *what)
{
	json_t *v = json_object_get(json_object_get(resp->body, "ended"), what);

	return json_is_integer(v) ? json_integer_value(v) : -1;
}

static const char *err_msg(const struct api_resp *resp)
{
	return json_string_value(json_object_get(json_object_get(resp->body, "error"), "message"));
}

/* Signs in through the handler; fills p as the router would. */
static void login_as(struct fx *f, const char *name, struct principal *p, char *ret_cookie,
		     size_t size)
{
	struct call k;
	char body[256];
	const char *sc;

	snprintf(body, sizeof(body), "{\"username\":\"%s\",\"password\":\"%s\"}", name, PW);
	call_init(&k, f, NULL, body, "auth/login");
	api_auth_login(&k.c);
	assert_int_equal(k.resp.status, 200);
	sc = header(&k.resp, "Set-Cookie");
	assert_non_null(sc);
	const char *semi = strchr(sc, ';');
	assert_non_null(semi);
	snprintf(ret_cookie, size, "%.*s", (int)(semi - sc), sc);
	call_done(&k);
	struct srv_request req = { .cookie = ret_cookie };
	assert_int_equal(authenticate_req(f->s, &req, p), 0);
}

static void test_api_login(void **state)
{
	struct fx *f = *state;
	struct call k;
	const char *sc, *msg_unknown;
	char msg[256];

	add_user(f, "ida", PW);

	call_init(&k, f, NULL, "{\"password\":\"" PW "\"}", "auth/login");
	api_auth_login(&k.c);
	assert_int_equal(k.resp.status, 400);
	assert_string_equal(err_code(&k.resp), "InvalidRequest");
	assert_non_null(strstr(err_msg(&k.resp), "username"));
	call_done(&k);

	call_init(&k, f, NULL, "{\"username\":\"ida\",\"password\":42}", "auth/login");
	api_auth_login(&k.c);
	assert_int_equal(k.resp.status, 400);
	assert_non_null(strstr(err_msg(&k.resp), "password"));
	call_done(&k);

	call_init(&k, f, NULL, "{\"username\":\"ida\"}", "auth/login");
	api_auth_login(&k.c);
	assert_int_equal(k.resp.status, 400);
	assert_non_null(strstr(err_msg(&k.resp), "password"));
	call_done(&k);

	/* Same answer for an unknown user and a wrong password. */
	call_init(&k, f, NULL, "{\"username\":\"nobody\",\"password\":\"" PW "\"}", "auth/login");
	api_auth_login(&k.c);
	assert_int_equal(k.resp.status, 401);
	assert_string_equal(err_code(&k.resp), "Unauthenticated");
	msg_unknown = err_msg(&k.resp);
	util_strlcpy(msg, msg_unknown, sizeof(msg));
	assert_string_equal(msg, "invalid username or password");
	assert_null(header(&k.resp, "Set-Cookie"));
	call_done(&k);

	call_init(&k, f, NULL, "{\"username\":\"ida\",\"password\":\"not the password\"}",
		  "auth/login");
	api_auth_login(&k.c);
	assert_int_equal(k.resp.status, 401);
	assert_string_equal(err_msg(&k.resp), msg);
	call_done(&k);

	call_init(&k, f, NULL, "{\"username\":\"ida\",\"password\":\"" PW "\"}", "auth/login");
	api_auth_login(&k.c);
	assert_int_equal(k.resp.status, 200);
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(k.resp.body, "user"), "name")),
		"ida");
	const char *csrf = json_string_value(json_object_get(k.resp.body, "csrf_token"));
	assert_non_null(csrf);
	assert_int_equal(strlen(csrf), util_token_len(IDENT_TOKEN_BYTES));
	sc = header(&k.resp, "Set-Cookie");
	assert_non_null(sc);
	assert_int_equal(strncmp(sc, IDENT_COOKIE "=", sizeof(IDENT_COOKIE)), 0);
	assert_non_null(strstr(sc, "; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=43200"));
	call_done(&k);

	/* Audited, with the source address and never the password. */
	assert_int_equal(
		query_int(
			f->s,
			"SELECT count(*) FROM audit WHERE action = 'auth.login' AND principal = 'user:ida'"
			" AND result = 'failure' AND detail = '{\"source\":\"192.0.2.7\"}'",
			NULL),
		1);
	assert_int_equal(
		query_int(
			f->s,
			"SELECT count(*) FROM audit WHERE action = 'auth.login' AND principal = 'user:ida'"
			" AND result = 'success'",
			NULL),
		1);
	assert_int_equal(
		query_int(
			f->s,
			"SELECT count(*) FROM audit WHERE action = 'auth.login' AND principal = 'user:?'"
			" AND target = 'user:?' AND result = 'failure'",
			NULL),
		1);
	/* An unknown name may be a password typed into the wrong field. */
	assert_audit_clean(f->s, "nobody");
	assert_audit_clean(f->s, PW);
	assert_audit_clean(f->s, "not the password");
}

static void test_api_login_replaces_session(void **state)
{
	struct fx *f = *state;
	struct principal p;
	struct call k;
	char cookie[128];

	add_user(f, "jay", PW);
	login_as(f, "jay", &p, cookie, sizeof(cookie));
	assert_int_equal(query_int(f->s, "SELECT count(*) FROM login_sessions", NULL), 1);

	/* Signing in again with the old cookie retires it. */
	call_init(&k, f, NULL, "{\"username\":\"jay\",\"password\":\"" PW "\"}", "auth/login");
	k.req.cookie = cookie;
	api_auth_login(&k.c);
	assert_int_equal(k.resp.status, 200);
	call_done(&k);
	assert_int_equal(query_int(f->s, "SELECT count(*) FROM login_sessions", NULL), 1);
	struct srv_request req = { .cookie = cookie };
	assert_int_equal(authenticate_req(f->s, &req, &p), -ENOENT);
}

static void test_api_session_logout(void **state)
{
	struct fx *f = *state;
	struct principal p, bearer = { 0 };
	struct call k;
	char cookie[128];

	add_user(f, "kay", PW);
	login_as(f, "kay", &p, cookie, sizeof(cookie));

	call_init(&k, f, &p, NULL, "auth/session");
	k.req.cookie = cookie;
	api_auth_session(&k.c);
	assert_int_equal(k.resp.status, 200);
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(k.resp.body, "user"), "name")),
		"kay");
	assert_string_equal(json_string_value(json_object_get(k.resp.body, "csrf_token")), p.csrf);
	call_done(&k);

	bearer.user_id = p.user_id;
	util_strlcpy(bearer.name, "kay", sizeof(bearer.name));
	call_init(&k, f, &bearer, NULL, "auth/session");
	api_auth_session(&k.c);
	assert_int_equal(k.resp.status, 200);
	assert_true(json_is_null(json_object_get(k.resp.body, "csrf_token")));
	call_done(&k);

	call_init(&k, f, &p, "{}", "auth/logout");
	k.req.cookie = cookie;
	api_auth_logout(&k.c);
	assert_int_equal(k.resp.status, 204);
	assert_null(k.resp.body);
	const char *sc = header(&k.resp, "Set-Cookie");
	assert_non_null(sc);
	assert_int_equal(strncmp(sc, IDENT_COOKIE "=;", sizeof(IDENT_COOKIE) + 1), 0);
	assert_non_null(strstr(sc, "Max-Age=0"));
	call_done(&k);
	assert_int_equal(query_int(f->s, "SELECT count(*) FROM login_sessions", NULL), 0);
	struct srv_request req = { .cookie = cookie };
	assert_int_equal(authenticate_req(f->s, &req, &p), -ENOENT);
}

static void test_api_tokens(void **state)
{
	struct fx *f = *state;
	struct principal p;
	struct call k;
	char cookie[128], auth[128];
	static const char *const bad[] = {
		"{\"expires_in\":59}",
		"{\"expires_in\":31536001}",
		"{\"expires_in\":\"60\"}",
		"{\"expires_in\":600.5}",
		"{\"name\":5}",
		"{\"name\":\"\"}",
		"{\"name\":\"a\\nb\"}",
		"{\"name\":\"0123456789012345678901234567890123456789012345678901234567890123456789\"}",
	};

	add_user(f, "lou", PW);
	login_as(f, "lou", &p, cookie, sizeof(cookie));

	call_init(&k, f, &p, "{}", "tokens");
	api_tokens_create(&k.c);
	assert_int_equal(k.resp.status, 201);
	const char *tok = json_string_value(json_object_get(k.resp.body, "token"));
	assert_non_null(tok);
	assert_true(json_is_null(json_object_get(k.resp.body, "name")));
	json_int_t exp = json_integer_value(json_object_get(k.resp.body, "expires_at"));
	assert_true(exp >= store_now() + 30 * 24 * 3600 - 5 && exp <= store_now() + 30 * 24 * 3600);
	snprintf(auth, sizeof(auth), "Bearer %s", tok);
	assert_audit_clean(f->s, tok);
	call_done(&k);

	struct srv_request req = { .authorization = auth };
	struct principal q;
	assert_int_equal(authenticate_req(f->s, &req, &q), 0);
	assert_string_equal(q.name, "lou");

	call_init(&k, f, &p, "{\"name\":\"ci\",\"expires_in\":60}", "tokens");
	api_tokens_create(&k.c);
	assert_int_equal(k.resp.status, 201);
	assert_string_equal(json_string_value(json_object_get(k.resp.body, "name")), "ci");
	exp = json_integer_value(json_object_get(k.resp.body, "expires_at"));
	assert_true(exp >= store_now() + 55 && exp <= store_now() + 60);
	call_done(&k);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		call_init(&k, f, &p, bad[i], "tokens");
		api_tokens_create(&k.c);
		assert_int_equal(k.resp.status, 400);
		assert_string_equal(err_code(&k.resp), "InvalidRequest");
		assert_true(strstr(err_msg(&k.resp), "expires_in") ||
			    strstr(err_msg(&k.resp), "name"));
		call_done(&k);
	}
	assert_int_equal(query_int(f->s, "SELECT count(*) FROM api_tokens", NULL), 2);
	assert_int_equal(
		query_int(f->s, "SELECT count(*) FROM audit WHERE action = 'token.create'", NULL),
		2);

	/* One account cannot pile up tokens without bound. */
	for (int i = 0; i < 98; i++) {
		uint8_t h[32] = { (uint8_t)i, 0x77 };
		assert_int_equal(store_token_add(f->s, h, p.user_id, NULL, store_now() + 100), 0);
	}
	call_init(&k, f, &p, "{}", "tokens");
	api_tokens_create(&k.c);
	assert_int_equal(k.resp.status, 409);
	call_done(&k);
}

static void test_api_users(void **state)
{
	struct fx *f = *state;
	struct principal admin, mia, mia2;
	struct call k;
	char admin_cookie[128], mia_cookie[128], mia_cookie2[128];
	char *gen = NULL;

	assert_int_equal(ident_bootstrap(f->s, PW, &gen), 0);
	login_as(f, "admin", &admin, admin_cookie, sizeof(admin_cookie));

	/* Create, then replace. */
	call_init(&k, f, &admin, "{\"password\":\"" PW "\"}", "users/mia");
	api_users_put(&k.c);
	assert_int_equal(k.resp.status, 201);
	assert_string_equal(json_string_value(json_object_get(k.resp.body, "id")), "/users/mia");
	assert_string_equal(json_string_value(json_object_get(k.resp.body, "type")), "users");
	assert_string_equal(json_string_value(json_object_get(k.resp.body, "name")), "mia");
	assert_true(json_is_false(json_object_get(k.resp.body, "disabled")));
	assert_true(json_is_integer(json_object_get(k.resp.body, "created_at")));
	assert_null(json_object_get(k.resp.body, "password_hash"));
	assert_null(json_object_get(k.resp.body, "password"));
	call_done(&k);

	login_as(f, "mia", &mia, mia_cookie, sizeof(mia_cookie));
	login_as(f, "mia", &mia2, mia_cookie2, sizeof(mia_cookie2));

	/* A non-Owner may neither create nor delete accounts. */
	call_init(&k, f, &mia, "{\"password\":\"" PW "\"}", "users/ned");
	api_users_put(&k.c);
	assert_int_equal(k.resp.status, 403);
	assert_string_equal(err_code(&k.resp), "AuthorizationFailed");
	assert_string_equal(err_msg(&k.resp), "Owner on / is required");
	call_done(&k);
	call_init(&k, f, &mia, NULL, "users/admin");
	api_users_delete(&k.c);
	assert_int_equal(k.resp.status, 403);
	call_done(&k);

	/* Bad names and passwords. */
	call_init(&k, f, &admin, "{\"password\":\"" PW "\"}", "users/-bad");
	api_users_put(&k.c);
	assert_int_equal(k.resp.status, 400);
	assert_non_null(strstr(err_msg(&k.resp), "name"));
	call_done(&k);
	call_init(&k, f, &admin, "{\"password\":\"short\"}", "users/ned");
	api_users_put(&k.c);
	assert_int_equal(k.resp.status, 400);
	assert_non_null(strstr(err_msg(&k.resp), "password"));
	call_done(&k);
	call_init(&k, f, &admin, "{}", "users/ned");
	api_users_put(&k.c);
	assert_int_equal(k.resp.status, 400);
	assert_non_null(strstr(err_msg(&k.resp), "password"));
	call_done(&k);
	call_init(&k, f, &admin, "{\"password\":\"abcdefghijkl\\u0000mnop\"}", "users/ned");
	api_users_put(&k.c);
	assert_int_equal(k.resp.status, 400);
	call_done(&k);
	assert_int_equal(query_int(f->s, "SELECT count(*) FROM users WHERE name = 'ned'", NULL), 0);

	/* Replacing the password ends the account's browser sessions. */
	call_init(&k, f, &admin, "{\"password\":\"a brand new password\"}", "users/mia");
	api_users_put(&k.c);
	assert_int_equal(k.resp.status, 200);
	call_done(&k);
	struct srv_request req = { .cookie = mia_cookie };
	struct principal q;
	assert_int_equal(authenticate_req(f->s, &req, &q), -ENOENT);
	/* ... but not the Owner's own when it changes its own password. */
	call_init(&k, f, &admin, "{\"password\":\"" PW "\"}", "users/admin");
	k.req.cookie = admin_cookie;
	api_users_put(&k.c);
	assert_int_equal(k.resp.status, 200);
	call_done(&k);
	req.cookie = admin_cookie;
	assert_int_equal(authenticate_req(f->s, &req, &q), 0);
	/* An Owner may not disable itself. */
	call_init(&k, f, &admin, "{\"password\":\"" PW "\",\"disabled\":true}", "users/admin");
	api_users_put(&k.c);
	assert_int_equal(k.resp.status, 409);
	call_done(&k);

	/* Reading: yourself, or anyone as Owner. */
	call_init(&k, f, &mia, NULL, "users/mia");
	api_users_get(&k.c);
	assert_int_equal(k.resp.status, 200);
	assert_string_equal(json_string_value(json_object_get(k.resp.body, "name")), "mia");
	call_done(&k);
	call_init(&k, f, &mia, NULL, "users/admin");
	api_users_get(&k.c);
	assert_int_equal(k.resp.status, 403);
	call_done(&k);
	call_init(&k, f, &admin, NULL, "users/mia");
	api_users_get(&k.c);
	assert_int_equal(k.resp.status, 200);
	call_done(&k);
	call_init(&k, f, &admin, NULL, "users/ghost");
	api_users_get(&k.c);
	assert_int_equal(k.resp.status, 404);
	assert_string_equal(err_code(&k.resp), "ResourceNotFound");
	call_done(&k);

	/* Listing: all for the Owner, only yourself otherwise. */
	call_init(&k, f, &admin, NULL, "users");
	api_users_list(&k.c);
	assert_int_equal(k.resp.status, 200);
	assert_int_equal(json_array_size(json_object_get(k.resp.body, "value")), 2);
	assert_string_equal(
		json_string_value(json_object_get(
			json_array_get(json_object_get(k.resp.body, "value"), 0), "name")),
		"admin");
	char *dump = json_dumps(k.resp.body, 0);
	assert_non_null(dump);
	assert_null(strstr(dump, "argon2"));
	free(dump);
	call_done(&k);
	call_init(&k, f, &mia, NULL, "users");
	api_users_list(&k.c);
	assert_int_equal(k.resp.status, 200);
	assert_int_equal(json_array_size(json_object_get(k.resp.body, "value")), 1);
	assert_string_equal(
		json_string_value(json_object_get(
			json_array_get(json_object_get(k.resp.body, "value"), 0), "name")),
		"mia");
	call_done(&k);

	/* Deleting: never yourself; others go with their sessions. */
	call_init(&k, f, &admin, NULL, "users/admin");
	api_users_delete(&k.c);
	assert_int_equal(k.resp.status, 409);
	assert_string_equal(err_code(&k.resp), "ResourceInUse");
	call_done(&k);
	call_init(&k, f, &admin, NULL, "users/mia");
	api_users_delete(&k.c);
	assert_int_equal(k.resp.status, 204);
	assert_null(k.resp.body);
	call_done(&k);
	call_init(&k, f, &admin, NULL, "users/mia");
	api_users_delete(&k.c);
	assert_int_equal(k.resp.status, 404);
	call_done(&k);

	assert_int_equal(query_int(f->s,
				   "SELECT count(*) FROM audit WHERE action = 'user.create'"
				   " AND principal = 'user:admin' AND target = 'user:mia'",
				   NULL),
			 1);
	assert_int_equal(query_int(f->s,
				   "SELECT count(*) FROM audit WHERE action = 'user.delete'"
				   " AND target = 'user:mia'",
				   NULL),
			 1);
	assert_audit_clean(f->s, PW);
	assert_audit_clean(f->s, "a brand new password");
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

static int64_t retry(struct fx *f, const char *account, const char *addr, int64_t now,
		     bool *ret_acct)
{
	struct ident_throttle th;

	assert_int_equal(ident_throttle_check(f->s, account, addr, now, &th), 0);
	if (ret_acct)
		*ret_acct = th.by_account;
	return th.retry_after;
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

static void test_api_login_throttled(void **state)
{
	struct fx *f = *state;
	struct call k;

	add_user(f, "tia", PW);
	for (int i = 0; i < IDENT_THROTTLE_ACCOUNT_MAX; i++) {
		call_init(&k, f, NULL,
			  "{\"username\":\"tia\",\"password\":\"wrong password here\"}",
			  "auth/login");
		api_auth_login(&k.c);
		assert_int_equal(k.resp.status, 401);
		call_done(&k);
	}
	/* Even the right password is refused now, without a verification. */
	for (int i = 0; i < 2; i++) {
		call_init(&k, f, NULL, "{\"username\":\"tia\",\"password\":\"" PW "\"}",
			  "auth/login");
		api_auth_login(&k.c);
		assert_int_equal(k.resp.status, 429);
		assert_string_equal(err_code(&k.resp), "TooManyRequests");
		assert_non_null(strstr(err_msg(&k.resp), "tia"));
		assert_non_null(strstr(err_msg(&k.resp), "try again in"));
		assert_non_null(header(&k.resp, "Retry-After"));
		long ra = strtol(header(&k.resp, "Retry-After"), NULL, 10);
		assert_true(ra > 0 && ra <= IDENT_THROTTLE_BASE);
		assert_null(header(&k.resp, "Set-Cookie"));
		call_done(&k);
	}
	assert_int_equal(query_int(f->s,
				   "SELECT count(*) FROM audit WHERE action = 'auth.throttled'"
				   " AND principal = 'user:tia' AND result = 'refused'",
				   NULL),
			 1);
	assert_int_equal(query_int(f->s,
				   "SELECT count(*) FROM audit WHERE action = 'auth.login'"
				   " AND principal = 'user:tia' AND result = 'success'",
				   NULL),
			 0);
	/* The same account from the address it last signed in from is not
	 * locked out: none yet, so an Owner's reset is the way back. */
	assert_int_equal(ident_throttle_reset(f->s, "tia", false), 0);
	call_init(&k, f, NULL, "{\"username\":\"tia\",\"password\":\"" PW "\"}", "auth/login");
	api_auth_login(&k.c);
	assert_int_equal(k.resp.status, 200);
	call_done(&k);
	assert_audit_clean(f->s, PW);
}

static void test_api_password(void **state)
{
	struct fx *f = *state;
	struct principal p, p2, q;
	struct call k;
	char cookie[128], cookie2[128];
	struct srv_request req = { 0 };

	char tok[IDENT_TOKEN_SIZE], auth[128];
	int64_t exp;

	add_user(f, "pam", PW);
	login_as(f, "pam", &p, cookie, sizeof(cookie));
	login_as(f, "pam", &p2, cookie2, sizeof(cookie2));
	assert_int_equal(ident_token_create(f->s, p.user_id, NULL, 3600, tok, &exp), 0);
	snprintf(auth, sizeof(auth), "Bearer %s", tok);

	static const char *const bad[][2] = {
		{ "{\"new_password\":\"another long password\"}", "current_password" },
		{ "{\"current_password\":\"" PW "\"}", "new_password" },
		{ "{\"current_password\":\"" PW "\",\"new_password\":\"short\"}", "new_password" },
		{ "{\"current_password\":\"" PW "\",\"new_password\":7}", "new_password" },
		{ "{\"current_password\":\"" PW "\",\"new_password\":\"" PW "\"}", "new_password" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		call_init(&k, f, &p, bad[i][0], "auth/password");
		api_auth_password(&k.c);
		assert_int_equal(k.resp.status, 400);
		assert_string_equal(err_code(&k.resp), "InvalidRequest");
		assert_non_null(strstr(err_msg(&k.resp), bad[i][1]));
		call_done(&k);
	}

	call_init(
		&k, f, &p,
		"{\"current_password\":\"not the password\",\"new_password\":\"another long password\"}",
		"auth/password");
	k.req.cookie = cookie;
	api_auth_password(&k.c);
	assert_int_equal(k.resp.status, 403);
	assert_string_equal(err_code(&k.resp), "InvalidCurrentPassword");
	assert_non_null(strstr(err_msg(&k.resp), "current_password"));
	call_done(&k);

	call_init(&k, f, &p,
		  "{\"current_password\":\"" PW "\",\"new_password\":\"another long password\"}",
		  "auth/password");
	k.req.cookie = cookie;
	api_auth_password(&k.c);
	assert_int_equal(k.resp.status, 200);
	/* One other browser session and the token ended; none kept. */
	assert_int_equal(ended_count(&k.resp, "sessions"), 1);
	assert_int_equal(ended_count(&k.resp, "tokens"), 1);
	assert_int_equal(ended_count(&k.resp, "terminals"), 0);
	call_done(&k);
	req.authorization = auth;
	assert_int_equal(authenticate_req(f->s, &req, &q), -ENOENT);
	req.authorization = NULL;

	/* The session that changed it lives on; the other one ended. */
	req.cookie = cookie;
	assert_int_equal(authenticate_req(f->s, &req, &q), 0);
	req.cookie = cookie2;
	assert_int_equal(authenticate_req(f->s, &req, &q), -ENOENT);
	struct ident_session sess;
	assert_int_equal(ident_login(f->s, "pam", PW, &sess), -EACCES);
	assert_int_equal(ident_login(f->s, "pam", "another long password", &sess), 0);
	sodium_memzero(&sess, sizeof(sess));

	assert_int_equal(query_int(f->s,
				   "SELECT count(*) FROM audit WHERE action = 'user.password'"
				   " AND result = 'success'",
				   NULL),
			 1);
	assert_int_equal(query_int(f->s,
				   "SELECT count(*) FROM audit WHERE action = 'user.password'"
				   " AND result = 'failure'",
				   NULL),
			 1);
	assert_audit_clean(f->s, PW);
	assert_audit_clean(f->s, "another long password");
	assert_audit_clean(f->s, "not the password");

	/* Wrong current passwords are throttled like sign-ins. */
	for (int i = 0; i < IDENT_THROTTLE_ACCOUNT_MAX; i++) {
		call_init(
			&k, f, &p,
			"{\"current_password\":\"guess guess guess\",\"new_password\":\"yet another password\"}",
			"auth/password");
		api_auth_password(&k.c);
		assert_true(k.resp.status == 403);
		call_done(&k);
	}
	/* (From another address: the one pam signed in from stays exempt.) */
	call_init(
		&k, f, &p,
		"{\"current_password\":\"another long password\",\"new_password\":\"yet another password\"}",
		"auth/password");
	util_strlcpy(k.req.remote_addr, "198.51.100.3", sizeof(k.req.remote_addr));
	api_auth_password(&k.c);
	assert_int_equal(k.resp.status, 429);
	assert_non_null(header(&k.resp, "Retry-After"));
	call_done(&k);
	sodium_memzero(tok, sizeof(tok));
}

/* keep_sessions keeps the other sessions and the tokens; a change made
 * with a token keeps that token and ends the others; a wrong type is 400. */
static void test_api_password_keep(void **state)
{
	struct fx *f = *state;
	struct principal p, p2, q, viatok;
	struct call k;
	char cookie[128], cookie2[128], tok[IDENT_TOKEN_SIZE], tok2[IDENT_TOKEN_SIZE];
	char auth[128], auth2[128];
	struct srv_request req = { 0 };
	int64_t exp;

	add_user(f, "kit", PW);
	login_as(f, "kit", &p, cookie, sizeof(cookie));
	login_as(f, "kit", &p2, cookie2, sizeof(cookie2));
	assert_int_equal(ident_token_create(f->s, p.user_id, NULL, 3600, tok, &exp), 0);
	assert_int_equal(ident_token_create(f->s, p.user_id, NULL, 3600, tok2, &exp), 0);
	snprintf(auth, sizeof(auth), "Bearer %s", tok);
	snprintf(auth2, sizeof(auth2), "Bearer %s", tok2);

	call_init(&k, f, &p,
		  "{\"current_password\":\"" PW "\",\"new_password\":\"another long password\","
		  "\"keep_sessions\":\"yes\"}",
		  "auth/password");
	api_auth_password(&k.c);
	assert_int_equal(k.resp.status, 400);
	assert_non_null(strstr(err_msg(&k.resp), "keep_sessions"));
	call_done(&k);

	call_init(&k, f, &p,
		  "{\"current_password\":\"" PW "\",\"new_password\":\"another long password\","
		  "\"keep_sessions\":true}",
		  "auth/password");
	k.req.cookie = cookie;
	api_auth_password(&k.c);
	assert_int_equal(k.resp.status, 200);
	assert_int_equal(ended_count(&k.resp, "sessions"), 0);
	assert_int_equal(ended_count(&k.resp, "tokens"), 0);
	call_done(&k);
	req.cookie = cookie2;
	assert_int_equal(authenticate_req(f->s, &req, &q), 0);
	req.cookie = NULL;
	req.authorization = auth2;
	assert_int_equal(authenticate_req(f->s, &req, &q), 0);

	/* Through a token: that token stays, the other one and both
	 * browser sessions end. */
	req.authorization = auth;
	assert_int_equal(authenticate_req(f->s, &req, &viatok), 0);
	call_init(&k, f, &viatok,
		  "{\"current_password\":\"another long password\","
		  "\"new_password\":\"a third long password\"}",
		  "auth/password");
	k.req.authorization = auth;
	api_auth_password(&k.c);
	assert_int_equal(k.resp.status, 200);
	assert_int_equal(ended_count(&k.resp, "sessions"), 2);
	assert_int_equal(ended_count(&k.resp, "tokens"), 1);
	call_done(&k);
	assert_int_equal(authenticate_req(f->s, &req, &q), 0);
	req.authorization = auth2;
	assert_int_equal(authenticate_req(f->s, &req, &q), -ENOENT);
	req.authorization = NULL;
	req.cookie = cookie;
	assert_int_equal(authenticate_req(f->s, &req, &q), -ENOENT);
	sodium_memzero(tok, sizeof(tok));
	sodium_memzero(tok2, sizeof(tok2));
}

/* With every place of the hashing gate taken, sign-in and password
 * changes answer 503 Retry-After: 1 without checking or counting. */
static void test_api_hash_gate_full(void **state)
{
	struct fx *f = *state;
	struct gate *g = ident_hash_gate();
	struct principal p;
	struct call k;
	char cookie[128];
	unsigned held = 0;

	struct principal admin;
	char admin_cookie[128];
	char *gen = NULL;

	assert_int_equal(ident_bootstrap(f->s, PW, &gen), 0);
	login_as(f, "admin", &admin, admin_cookie, sizeof(admin_cookie));
	add_user(f, "gil", PW);
	login_as(f, "gil", &p, cookie, sizeof(cookie));
	gate_set_max(g, 2);
	while (gate_try_enter(g) == 0 && held < 16)
		held++;
	assert_int_equal(held, 2);

	for (int i = 0; i < IDENT_THROTTLE_ACCOUNT_MAX + 2; i++) {
		call_init(&k, f, NULL, "{\"username\":\"gil\",\"password\":\"wrong wrong wrong\"}",
			  "auth/login");
		api_auth_login(&k.c);
		assert_int_equal(k.resp.status, 503);
		assert_string_equal(err_code(&k.resp), "ServiceUnavailable");
		assert_string_equal(header(&k.resp, "Retry-After"), "1");
		call_done(&k);
	}
	call_init(&k, f, &p,
		  "{\"current_password\":\"" PW "\",\"new_password\":\"another long password\"}",
		  "auth/password");
	api_auth_password(&k.c);
	assert_int_equal(k.resp.status, 503);
	assert_string_equal(header(&k.resp, "Retry-After"), "1");
	call_done(&k);
	/* Creating a user or setting its password hashes too. */
	call_init(&k, f, &admin, "{\"password\":\"a password for hyde\"}", "users/hyde");
	api_users_put(&k.c);
	assert_int_equal(k.resp.status, 503);
	assert_string_equal(header(&k.resp, "Retry-After"), "1");
	call_done(&k);
	call_init(&k, f, &admin, "{\"password\":\"a new password for gil\"}", "users/gil");
	api_users_put(&k.c);
	assert_int_equal(k.resp.status, 503);
	call_done(&k);
	/* Nothing was counted: no throttle row, no failure audited. */
	assert_int_equal(
		query_int(f->s, "SELECT coalesce(sum(failures), 0) FROM login_throttle", NULL), 0);
	assert_int_equal(
		query_int(f->s, "SELECT count(*) FROM audit WHERE result = 'failure'", NULL), 0);

	while (held > 0) {
		gate_leave(g);
		held--;
	}
	gate_set_max(g, 0);
	login_as(f, "gil", &p, cookie, sizeof(cookie));
}

/* When the throttle cannot record an attempt, no password is checked: the
 * right and a wrong password get the same 503 (a throttle that fails open
 * is a password oracle). */
static void test_api_login_store_readonly(void **state)
{
	struct fx *f = *state;
	struct call k;
	static const char *const bodies[] = {
		"{\"username\":\"hal\",\"password\":\"wrong wrong wrong\"}",
		"{\"username\":\"hal\",\"password\":\"" PW "\"}",
		"{\"username\":\"nobody\",\"password\":\"" PW "\"}",
	};

	TU_SQLITE_ONLY("the store made read-only through SQLite's connection");
	add_user(f, "hal", PW);
	/* This thread's connection refuses every write from now on. */
	assert_int_equal(sqlite3_exec(store_db(f->s), "PRAGMA query_only=1", NULL, NULL, NULL),
			 SQLITE_OK);
	for (int round = 0; round < 3; round++) {
		for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
			call_init(&k, f, NULL, bodies[i], "auth/login");
			api_auth_login(&k.c);
			assert_int_equal(k.resp.status, 503);
			assert_string_equal(err_code(&k.resp), "ServiceUnavailable");
			assert_null(header(&k.resp, "Set-Cookie"));
			call_done(&k);
		}
	}
	assert_int_equal(sqlite3_exec(store_db(f->s), "PRAGMA query_only=0", NULL, NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(query_int(f->s, "SELECT count(*) FROM login_sessions", NULL), 0);
}

/* Every attempt is charged before its check; a success gives the charge
 * back, so signing in never counts against the address, even as the
 * attempt that would have reached the address's threshold. */
static void test_api_login_refund(void **state)
{
	struct fx *f = *state;
	struct ident_throttle th;
	struct principal p;
	char cookie[128];

	add_user(f, "ivy", PW);
	for (int i = 0; i < IDENT_THROTTLE_ADDR_MAX - 1; i++)
		assert_int_equal(ident_throttle_failure(f->s, NULL, "192.0.2.7", store_now()), 0);
	login_as(f, "ivy", &p, cookie, sizeof(cookie));
	assert_int_equal(query_int(f->s, "SELECT failures FROM login_throttle WHERE key = ?",
				   "addr:192.0.2.7"),
			 IDENT_THROTTLE_ADDR_MAX - 1);
	assert_int_equal(ident_throttle_check(f->s, "ivy", "192.0.2.7", store_now(), &th), 0);
	assert_int_equal(th.retry_after, 0);
}

/* Owner's reset of another account's password ends all it had open. */
static void test_api_users_reset_ends(void **state)
{
	struct fx *f = *state;
	struct principal admin, bo, q;
	struct call k;
	char admin_cookie[128], bo_cookie[128], tok[IDENT_TOKEN_SIZE], auth[128];
	char *gen = NULL;
	int64_t exp;
	struct srv_request req = { 0 };

	assert_int_equal(ident_bootstrap(f->s, PW, &gen), 0);
	login_as(f, "admin", &admin, admin_cookie, sizeof(admin_cookie));
	add_user(f, "bo", PW);
	login_as(f, "bo", &bo, bo_cookie, sizeof(bo_cookie));
	assert_int_equal(ident_token_create(f->s, bo.user_id, NULL, 3600, tok, &exp), 0);
	snprintf(auth, sizeof(auth), "Bearer %s", tok);

	call_init(&k, f, &admin, "{\"password\":\"a new password for bo\"}", "users/bo");
	k.req.cookie = admin_cookie;
	api_users_put(&k.c);
	assert_int_equal(k.resp.status, 200);
	call_done(&k);
	req.cookie = bo_cookie;
	assert_int_equal(authenticate_req(f->s, &req, &q), -ENOENT);
	req.cookie = NULL;
	req.authorization = auth;
	assert_int_equal(authenticate_req(f->s, &req, &q), -ENOENT);
	/* The Owner's own session is not touched. */
	req.authorization = NULL;
	req.cookie = admin_cookie;
	assert_int_equal(authenticate_req(f->s, &req, &q), 0);
	assert_int_equal(
		query_int(
			f->s,
			"SELECT count(*) FROM audit WHERE action = 'user.update' AND target = 'user:bo'"
			" AND json_extract(detail, '$.ended.sessions') = 1"
			" AND json_extract(detail, '$.ended.tokens') = 1",
			NULL),
		1);
	assert_audit_clean(f->s, "a new password for bo");
	sodium_memzero(tok, sizeof(tok));
}

static void test_api_users_disable(void **state)
{
	struct fx *f = *state;
	struct principal admin, ann, q;
	struct call k;
	char admin_cookie[128], ann_cookie[128], tok[IDENT_TOKEN_SIZE], auth[128];
	char *gen = NULL;
	int64_t exp;
	struct srv_request req = { 0 };

	assert_int_equal(ident_bootstrap(f->s, PW, &gen), 0);
	login_as(f, "admin", &admin, admin_cookie, sizeof(admin_cookie));

	/* Creating needs a password; an existing account keeps its own. */
	call_init(&k, f, &admin, "{\"disabled\":false}", "users/ann");
	api_users_put(&k.c);
	assert_int_equal(k.resp.status, 400);
	assert_non_null(strstr(err_msg(&k.resp), "password"));
	call_done(&k);
	call_init(&k, f, &admin, "{\"password\":\"" PW "\"}", "users/ann");
	api_users_put(&k.c);
	assert_int_equal(k.resp.status, 201);
	call_done(&k);
	login_as(f, "ann", &ann, ann_cookie, sizeof(ann_cookie));
	assert_int_equal(ident_token_create(f->s, ann.user_id, NULL, 3600, tok, &exp), 0);
	snprintf(auth, sizeof(auth), "Bearer %s", tok);

	/* A GET result PUT back changes nothing and ends nothing. */
	call_init(&k, f, &admin,
		  "{\"id\":\"/users/ann\",\"type\":\"users\",\"name\":\"ann\",\"disabled\":false}",
		  "users/ann");
	api_users_put(&k.c);
	assert_int_equal(k.resp.status, 200);
	call_done(&k);
	req.cookie = ann_cookie;
	assert_int_equal(authenticate_req(f->s, &req, &q), 0);

	/* Disabling ends the browser sessions and the API tokens at once. */
	call_init(&k, f, &admin, "{\"disabled\":true}", "users/ann");
	api_users_put(&k.c);
	assert_int_equal(k.resp.status, 200);
	assert_true(json_is_true(json_object_get(k.resp.body, "disabled")));
	call_done(&k);
	req.cookie = ann_cookie;
	assert_int_equal(authenticate_req(f->s, &req, &q), -ENOENT);
	req.cookie = NULL;
	req.authorization = auth;
	assert_int_equal(authenticate_req(f->s, &req, &q), -ENOENT);
	/* Enabling again revives none of them, but the password still works. */
	call_init(&k, f, &admin, "{\"disabled\":false}", "users/ann");
	api_users_put(&k.c);
	assert_int_equal(k.resp.status, 200);
	call_done(&k);
	assert_int_equal(authenticate_req(f->s, &req, &q), -ENOENT);
	req.authorization = NULL;
	req.cookie = ann_cookie;
	assert_int_equal(authenticate_req(f->s, &req, &q), -ENOENT);
	login_as(f, "ann", &ann, ann_cookie, sizeof(ann_cookie));
	sodium_memzero(tok, sizeof(tok));
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
		cmocka_unit_test_setup_teardown(test_api_login, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_login_replaces_session, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_session_logout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_tokens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_users, setup, teardown),
		cmocka_unit_test(test_addr_key),
		cmocka_unit_test_setup_teardown(test_throttle_account, setup, teardown),
		cmocka_unit_test_setup_teardown(test_throttle_success_resets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_throttle_known_address, setup, teardown),
		cmocka_unit_test_setup_teardown(test_throttle_address, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_login_throttled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_password, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_password_keep, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_hash_gate_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_login_store_readonly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_users_reset_ends, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_login_refund, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_users_disable, setup, teardown),
	};
	int r;

	log_set_level(LOG_WARN);
	if (sodium_init() < 0)
		return 1;
	/* Disabling or deleting a user ends its terminals through the
	 * terminal module, which needs a loop to post to (none runs here:
	 * loops_free runs what was posted and closes the rest). */
	if (loops_init(1) < 0 || term_init(NULL) < 0)
		return 1;
	r = cmocka_run_group_tests(tests, NULL, NULL);
	loops_free();
	term_free();
	return r;
}
