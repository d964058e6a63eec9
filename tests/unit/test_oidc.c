/* identity/oidc_claims.c: the PKCE S256 challenge, the accepted signature
 * algorithms and every check of an ID token's claims; and the store rows
 * a flow keeps (store_oidc.h), once per backend: a pending item is taken
 * once and not after it expired, a link binds one user to one identity. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "identity/oidc.h"
#include "store/store.h"
#include "testutil.h"

static void pkce_rfc7636_vector(void **state)
{
	char out[44];

	(void)state;
	/* RFC 7636 Appendix B. */
	oidc_pkce_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", out);
	assert_string_equal(out, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
}

static void algorithms(void **state)
{
	static const char *const ok[] = { "RS256", "RS384", "RS512", "PS256", "PS384",
					  "PS512", "ES256", "ES384", "ES512" };
	static const char *const bad[] = { "none",   "HS256", "HS384", "HS512",   "rs256",
					   "RS256 ", "",      "EdDSA", "RSA-OAEP" };

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		assert_true(oidc_alg_ok(ok[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(oidc_alg_ok(bad[i]));
	assert_false(oidc_alg_ok(NULL));
}

#define NOW 1700000000

static json_t *good(void)
{
	return json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "iss", "https://op.example", "aud",
			 "bastion", "sub", "u-1", "exp", (json_int_t)NOW + 300, "iat",
			 (json_int_t)NOW - 5, "nonce", "n-123");
}

static const struct oidc_expect ex = {
	.issuer = "https://op.example", .client_id = "bastion", .nonce = "n-123", .now = NOW
};

/* claims = good() with key set to v (NULL: removed); expects a refusal
 * whose reason holds part. */
static void refused(const char *key, json_t *v, const char *part)
{
	json_t *c = good();
	const char *reason = NULL;

	if (v)
		json_object_set_new(c, key, v);
	else
		json_object_del(c, key);
	assert_int_equal(oidc_check_claims(c, &ex, &reason), -EPROTO);
	assert_non_null(reason);
	if (!strstr(reason, part))
		fail_msg("%s: reason '%s' lacks '%s'", key, reason, part);
	json_decref(c);
}

static void claims_accepted(void **state)
{
	json_t *c = good();
	const char *reason = NULL;

	(void)state;
	assert_int_equal(oidc_check_claims(c, &ex, &reason), 0);
	/* Several audiences with azp = us; skew on both ends. */
	json_object_set_new(c, "aud", json_pack("[s,s]", "other", "bastion"));
	json_object_set_new(c, "azp", json_string("bastion"));
	json_object_set_new(c, "exp", json_integer(NOW - OIDC_SKEW + 1));
	json_object_set_new(c, "iat", json_integer(NOW + OIDC_SKEW));
	assert_int_equal(oidc_check_claims(c, &ex, &reason), 0);
	json_decref(c);
}

static void claims_refused(void **state)
{
	(void)state;
	refused("iss", json_string("https://op.example/"), "iss");
	refused("iss", NULL, "iss");
	refused("iss", json_integer(1), "iss");
	refused("aud", json_string("someone-else"), "aud");
	refused("aud", json_pack("[s]", "someone-else"), "aud");
	refused("aud", json_pack("[s,i]", "bastion", 1), "aud");
	refused("aud", NULL, "aud");
	/* Several audiences need azp, and azp must be us. */
	refused("aud", json_pack("[s,s]", "bastion", "other"), "azp");
	refused("azp", json_string("other"), "azp");
	refused("exp", json_integer(NOW - OIDC_SKEW), "exp");
	refused("exp", NULL, "exp");
	refused("exp", json_string("9999999999"), "exp");
	refused("iat", json_integer(NOW + OIDC_SKEW + 1), "iat");
	refused("iat", NULL, "iat");
	refused("nonce", json_string("n-124"), "nonce");
	refused("nonce", json_string("n-12"), "nonce");
	refused("nonce", NULL, "nonce");
	refused("sub", json_string(""), "sub");
	refused("sub", NULL, "sub");
	refused("sub", json_integer(5), "sub");
}

static void pending_taken_once(void **state)
{
	struct tu_store *t = *state;
	char *data = NULL;

	assert_int_equal(store_oidc_pending_put(t->s, "k1", "flow", "{\"a\":1}", 2000, 1000, 100),
			 0);
	assert_int_equal(store_oidc_pending_put(t->s, "k1", "flow", "{}", 2000, 1000, 100),
			 -EEXIST);
	/* The kind is part of the key: a CLI code is not a flow's state. */
	assert_int_equal(store_oidc_pending_take(t->s, "k1", "cli", 1500, &data), -ENOENT);
	assert_int_equal(store_oidc_pending_take(t->s, "k1", "flow", 1500, &data), 0);
	assert_string_equal(data, "{\"a\":1}");
	free(data);
	data = NULL;
	assert_int_equal(store_oidc_pending_take(t->s, "k1", "flow", 1500, &data), -ENOENT);
	assert_null(data);
}

static void pending_expires(void **state)
{
	struct tu_store *t = *state;
	char *data = NULL;

	assert_int_equal(store_oidc_pending_put(t->s, "k2", "flow", "{}", 2000, 1000, 100), 0);
	assert_int_equal(store_oidc_pending_take(t->s, "k2", "flow", 2000, &data), -ENOENT);
	/* Expired rows go when the next one is put. */
	assert_int_equal(store_oidc_pending_put(t->s, "k3", "flow", "{}", 3000, 1000, 100), 0);
	assert_int_equal(store_oidc_pending_put(t->s, "k4", "flow", "{}", 9000, 3000, 100), 0);
	assert_int_equal(tu_query_int(t->s, "SELECT COUNT(*) FROM oidc_pending", NULL), 1);
	/* Caps. */
	char big[STORE_OIDC_KEY_MAX + 2];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(store_oidc_pending_put(t->s, big, "flow", "{}", 9000, 3000, 100), -EINVAL);
	assert_int_equal(store_oidc_pending_put(t->s, "", "flow", "{}", 9000, 3000, 100), -EINVAL);
	/* The table is bounded: unexpired rows count, expired ones make room. */
	assert_int_equal(store_oidc_pending_put(t->s, "k5", "flow", "{}", 9000, 3000, 2), 0);
	assert_int_equal(store_oidc_pending_put(t->s, "k6", "flow", "{}", 9000, 3000, 2), -ENOSPC);
	assert_int_equal(store_oidc_pending_put(t->s, "k6", "flow", "{}", 9999, 9000, 2), 0);
}

static void links(void **state)
{
	struct tu_store *t = *state;
	char iss[STORE_OIDC_ISS_MAX + 1], sub[STORE_OIDC_SUB_MAX + 1];
	int64_t a = 0, b = 0;
	bool created;

	assert_int_equal(store_user_put(t->s, "ann", "!oidc", &created, &a), 0);
	assert_int_equal(store_user_put(t->s, "ben", "!oidc", &created, &b), 0);
	assert_int_equal(store_oidc_link_get(t->s, a, iss, sub), -ENOENT);
	assert_int_equal(store_oidc_link_add(t->s, a, "https://op", "s-1"), 0);
	assert_int_equal(store_oidc_link_get(t->s, a, iss, sub), 0);
	assert_string_equal(iss, "https://op");
	assert_string_equal(sub, "s-1");
	/* One identity, one user; one user, one identity. */
	assert_int_equal(store_oidc_link_add(t->s, b, "https://op", "s-1"), -EEXIST);
	assert_int_equal(store_oidc_link_add(t->s, a, "https://op", "s-2"), -EEXIST);
	assert_int_equal(store_oidc_link_add(t->s, 999999, "https://op", "s-3"), -ENOENT);
	/* The link goes with its user. */
	assert_int_equal(store_user_delete(t->s, "ann"), 0);
	assert_int_equal(store_oidc_link_add(t->s, b, "https://op", "s-1"), 0);
}

static void user_create(void **state)
{
	struct tu_store *t = *state;
	struct store_user u;
	char iss[STORE_OIDC_ISS_MAX + 1], sub[STORE_OIDC_SUB_MAX + 1];
	bool created;
	int64_t id = 0, id2 = 0;

	assert_int_equal(store_oidc_user_create(t->s, "cat", "!oidc", "https://op", "s-9", &id), 0);
	assert_int_equal(store_user_get(t->s, "cat", &u), 0);
	assert_int_equal(u.id, id);
	assert_string_equal(u.password_hash, "!oidc");
	assert_false(u.disabled);
	assert_int_equal(store_oidc_link_get(t->s, id, iss, sub), 0);
	assert_string_equal(sub, "s-9");
	/* A local user of that name is never overwritten. */
	assert_int_equal(store_user_put(t->s, "dan", "$argon2id$local", &created, &id2), 0);
	assert_int_equal(store_oidc_user_create(t->s, "dan", "!oidc", "https://op", "s-10", &id2),
			 -EEXIST);
	assert_int_equal(store_user_get(t->s, "dan", &u), 0);
	assert_string_equal(u.password_hash, "$argon2id$local");
	/* An identity bound already: nothing is created. */
	assert_int_equal(store_oidc_user_create(t->s, "eve", "!oidc", "https://op", "s-9", &id2),
			 -EALREADY);
	assert_int_equal(store_user_get(t->s, "eve", &u), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pkce_rfc7636_vector),
		cmocka_unit_test(algorithms),
		cmocka_unit_test(claims_accepted),
		cmocka_unit_test(claims_refused),
		cmocka_unit_test_setup_teardown(pending_taken_once, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test_setup_teardown(pending_expires, tu_store_setup, tu_store_teardown),
		cmocka_unit_test_setup_teardown(links, tu_store_setup, tu_store_teardown),
		cmocka_unit_test_setup_teardown(user_create, tu_store_setup, tu_store_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
