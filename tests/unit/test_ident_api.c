/* The REST handlers of src/api/auth.c called directly with a struct
 * api_call (identtest.c): sign-in and its throttle, sessions, tokens,
 * password changes, the hashing gate, a read-only store (users:
 * test_ident_users.c). Both store backends. */
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

/* ---- REST handlers -------------------------------------------------- */

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_api_login, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_login_replaces_session, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_session_logout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_tokens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_login_throttled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_password, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_password_keep, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_hash_gate_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_login_store_readonly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_login_refund, setup, teardown),
	};

	return ident_run(tests, sizeof(tests) / sizeof(tests[0]));
}
