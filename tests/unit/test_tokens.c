/* The API token lifecycle (issue 19): the store's rows on both backends
 * (insert, lookup, list, last use, revoke by public id) and identity's
 * scoped tokens (a public id not derived from the secret, the scope a
 * Bearer call carries, what a scope permits). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/util.h"
#include "identity/ident.h"
#include "store/store.h"
#include "testutil.h"

static void hash_of(uint8_t h[32], uint8_t fill)
{
	memset(h, fill, 32);
}

static struct store_token tok(int64_t uid, const char *id, const char *name, const char *scope,
			      int64_t expires_at)
{
	struct store_token t;

	memset(&t, 0, sizeof(t));
	t.user_id = uid;
	util_strlcpy(t.id, id, sizeof(t.id));
	util_strlcpy(t.name, name, sizeof(t.name));
	util_strlcpy(t.scope, scope, sizeof(t.scope));
	t.expires_at = expires_at;
	return t;
}

struct seen {
	char ids[512];
	int n, stop_after;
};

static int collect(const struct store_token *t, void *ud)
{
	struct seen *s = ud;
	size_t used = strlen(s->ids);

	snprintf(s->ids + used, sizeof(s->ids) - used, "%s%s:%s", used ? "," : "", t->user, t->id);
	return ++s->n == s->stop_after;
}

static void test_store_rows(void **state)
{
	struct tu_store *f = *state;
	struct store_token t, got;
	struct seen seen = { 0 };
	uint8_t h1[32], h2[32], h3[32], h4[32];
	int64_t ann, bob, far = store_now() + 3600;

	hash_of(h1, 1);
	hash_of(h2, 2);
	hash_of(h3, 3);
	hash_of(h4, 4);
	assert_int_equal(store_user_put(f->s, "ann", "h", NULL, &ann), 0);
	assert_int_equal(store_user_put(f->s, "bob", "h", NULL, &bob), 0);

	t = tok(ann, "00000000000000a1", "ci", "all", far);
	assert_int_equal(store_token_insert(f->s, h1, &t), 0);
	t = tok(ann, "00000000000000a2", "", "metrics", far);
	assert_int_equal(store_token_insert(f->s, h2, &t), 0);
	t = tok(bob, "00000000000000b1", "laptop", "all", far);
	assert_int_equal(store_token_insert(f->s, h3, &t), 0);
	/* Expired: never listed. */
	t = tok(bob, "00000000000000b2", "old", "all", store_now() - 1);
	assert_int_equal(store_token_insert(f->s, h4, &t), 0);

	/* The same id or hash twice, an unknown user, ids and names that do
	 * not fit. */
	t = tok(ann, "00000000000000a1", "x", "all", far);
	assert_int_equal(store_token_insert(f->s, (uint8_t[32]){ 9 }, &t), -EEXIST);
	t = tok(ann, "00000000000000c1", "x", "all", far);
	assert_int_equal(store_token_insert(f->s, h1, &t), -EEXIST);
	t = tok(999999, "00000000000000c2", "x", "all", far);
	assert_int_equal(store_token_insert(f->s, (uint8_t[32]){ 10 }, &t), -ENOENT);
	t = tok(ann, "short", "x", "all", far);
	assert_int_equal(store_token_insert(f->s, (uint8_t[32]){ 11 }, &t), -EINVAL);
	t = tok(ann, "00000000000000c3", "x", "", far);
	assert_int_equal(store_token_insert(f->s, (uint8_t[32]){ 12 }, &t), -EINVAL);

	assert_int_equal(store_token_lookup(f->s, h2, &got), 0);
	assert_string_equal(got.id, "00000000000000a2");
	assert_string_equal(got.user, "ann");
	assert_string_equal(got.name, "");
	assert_string_equal(got.scope, "metrics");
	assert_int_equal(got.user_id, ann);
	assert_int_equal(got.expires_at, far);
	assert_int_equal(got.last_used_at, 0);
	assert_true(got.created_at >= store_now() - 5);
	assert_int_equal(store_token_lookup(f->s, (uint8_t[32]){ 0x77 }, &got), -ENOENT);

	/* Last use: written, then not again within the gap, then again. */
	assert_int_equal(store_token_touch(f->s, "00000000000000a2", 1000, 60), 0);
	assert_int_equal(store_token_lookup(f->s, h2, &got), 0);
	assert_int_equal(got.last_used_at, 1000);
	assert_int_equal(store_token_touch(f->s, "00000000000000a2", 1059, 60), 0);
	assert_int_equal(store_token_lookup(f->s, h2, &got), 0);
	assert_int_equal(got.last_used_at, 1000);
	assert_int_equal(store_token_touch(f->s, "00000000000000a2", 1061, 60), 0);
	assert_int_equal(store_token_lookup(f->s, h2, &got), 0);
	assert_int_equal(got.last_used_at, 1061);

	/* One user's, everybody's, and a stop. */
	assert_int_equal(store_token_foreach(f->s, ann, store_now(), collect, &seen), 0);
	assert_int_equal(seen.n, 2);
	assert_non_null(strstr(seen.ids, "ann:00000000000000a1"));
	assert_non_null(strstr(seen.ids, "ann:00000000000000a2"));
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_token_foreach(f->s, -1, store_now(), collect, &seen), 0);
	assert_int_equal(seen.n, 3);
	assert_null(strstr(seen.ids, "b2"));
	memset(&seen, 0, sizeof(seen));
	seen.stop_after = 1;
	assert_int_equal(store_token_foreach(f->s, -1, store_now(), collect, &seen), 0);
	assert_int_equal(seen.n, 1);

	/* Revoke: not someone else's as that user, unknown ids, then by any. */
	assert_int_equal(store_token_revoke(f->s, "00000000000000b1", ann, &got), -ENOENT);
	assert_int_equal(store_token_revoke(f->s, "nosuchtoken00000", ann, &got), -ENOENT);
	assert_int_equal(store_token_revoke(f->s, "this-id-is-far-too-long", -1, NULL), -ENOENT);
	assert_int_equal(store_token_lookup(f->s, h3, &got), 0);
	assert_int_equal(store_token_revoke(f->s, "00000000000000a1", ann, &got), 0);
	assert_string_equal(got.name, "ci");
	assert_string_equal(got.user, "ann");
	assert_int_equal(store_token_lookup(f->s, h1, &got), -ENOENT);
	assert_int_equal(store_token_revoke(f->s, "00000000000000a1", ann, NULL), -ENOENT);
	assert_int_equal(store_token_revoke(f->s, "00000000000000b1", -1, &got), 0);
	assert_string_equal(got.user, "bob");
	assert_int_equal(store_token_lookup(f->s, h3, &got), -ENOENT);

	/* A token goes with its user. */
	assert_int_equal(store_user_delete(f->s, "ann"), 0);
	assert_int_equal(store_token_lookup(f->s, h2, &got), -ENOENT);
}

static void test_scoped_tokens(void **state)
{
	struct tu_store *f = *state;
	struct store_token t, t2;
	struct principal p;
	struct ident_creds req = { 0 };
	char token[IDENT_TOKEN_SIZE], token2[IDENT_TOKEN_SIZE], auth[128], hex[65];
	uint8_t h[32];
	int64_t uid;

	assert_int_equal(store_user_put(f->s, "cat", "h", NULL, &uid), 0);
	assert_int_equal(ident_token_create_scoped(f->s, uid, "prom", "root", 3600, token, &t),
			 -EINVAL);
	assert_int_equal(ident_token_create_scoped(f->s, uid, "prom", NULL, 3600, token, &t),
			 -EINVAL);
	assert_int_equal(ident_token_create_scoped(f->s, uid, "prom", "metrics", 0, token, &t),
			 -EINVAL);
	assert_int_equal(ident_token_create_scoped(f->s, uid, "prom", "metrics", 3600, token, &t),
			 0);
	assert_int_equal(ident_token_create_scoped(f->s, uid, NULL, "all", 3600, token2, &t2), 0);
	assert_int_equal(strlen(t.id), STORE_TOKEN_ID_LEN);
	assert_int_equal(strspn(t.id, "0123456789abcdef"), STORE_TOKEN_ID_LEN);
	assert_string_not_equal(t.id, t2.id);
	assert_string_equal(t.scope, "metrics");
	assert_string_equal(t.name, "prom");
	assert_string_equal(t2.name, "");
	/* The id is not a piece of the secret or of its hash. */
	assert_null(strstr(token, t.id));
	util_sha256_str(token, h);
	util_hex(h, sizeof(h), hex);
	assert_null(strstr(hex, t.id));

	/* The scope and the id travel with the caller; the use is recorded. */
	snprintf(auth, sizeof(auth), "Bearer %s", token);
	req.authorization = auth;
	assert_int_equal(ident_authenticate(f->s, &req, &p), 0);
	assert_string_equal(p.token_scope, "metrics");
	assert_string_equal(p.token_id, t.id);
	assert_int_equal(store_token_lookup(f->s, h, &t2), 0);
	assert_true(t2.last_used_at >= store_now() - 5);
	assert_false(ident_scope_permits(&p, false));
	assert_true(ident_scope_permits(&p, true));

	snprintf(auth, sizeof(auth), "Bearer %s", token2);
	assert_int_equal(ident_authenticate(f->s, &req, &p), 0);
	assert_string_equal(p.token_scope, "all");
	assert_true(ident_scope_permits(&p, false));
	assert_true(ident_scope_permits(&p, true));

	/* A browser session has no scope: it may do anything its roles allow;
	 * a scope this build does not know permits nothing but what it names. */
	memset(&p, 0, sizeof(p));
	assert_true(ident_scope_permits(&p, false));
	util_strlcpy(p.token_scope, "admin", sizeof(p.token_scope));
	assert_false(ident_scope_permits(&p, false));
	assert_false(ident_scope_permits(&p, true));
	assert_true(ident_scope_valid("all") && ident_scope_valid("metrics"));
	assert_false(ident_scope_valid("") || ident_scope_valid("ALL") ||
		     ident_scope_valid("metrics "));

	/* Revoked: the secret no longer authenticates. */
	assert_int_equal(store_token_revoke(f->s, t.id, uid, NULL), 0);
	snprintf(auth, sizeof(auth), "Bearer %s", token);
	assert_int_equal(ident_authenticate(f->s, &req, &p), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_store_rows, tu_store_setup, tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_scoped_tokens, tu_store_setup,
						tu_store_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
