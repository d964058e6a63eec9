/* The users' REST handlers of src/api/auth.c called directly with a struct
 * api_call (identtest.c): create, change, list and delete users, a
 * password reset and a disabled account ending the user's sessions and
 * terminals. Both store backends. */
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_api_users, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_users_reset_ends, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_users_disable, setup, teardown),
	};

	return ident_run(tests, sizeof(tests) / sizeof(tests[0]));
}
