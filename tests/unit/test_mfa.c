/* Second factors (identity/mfa.h, store_mfa.h): TOTP against RFC 6238's
 * test vectors, the ±1 step window, replays refused, recovery codes
 * accepted once, and the store's rows on both backends (this suite runs
 * again on PostgreSQL). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"

#include "identity/mfa.h"
#include "store/store.h"

static const uint8_t rfc_key[20] = "12345678901234567890";

/* RFC 6238 appendix B, SHA-1: (time, 8-digit TOTP). */
static const struct {
	int64_t t;
	uint32_t code;
} rfc_vectors[] = {
	{ 59, 94287082 },         { 1111111109, 7081804 },  { 1111111111, 14050471 },
	{ 1234567890, 89005924 }, { 2000000000, 69279037 }, { 20000000000, 65353130 },
};

static void test_rfc6238_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rfc_vectors) / sizeof(rfc_vectors[0]); i++) {
		uint32_t code = 0;
		char six[8];
		int64_t step = -1;

		assert_int_equal(ident_hotp(rfc_key, sizeof(rfc_key),
					    (uint64_t)(rfc_vectors[i].t / IDENT_TOTP_PERIOD), 8,
					    &code),
				 0);
		assert_int_equal(code, rfc_vectors[i].code);
		/* The 6-digit code is the low six digits of the same value. */
		snprintf(six, sizeof(six), "%06u", rfc_vectors[i].code % 1000000);
		assert_int_equal(
			ident_totp_check(rfc_key, sizeof(rfc_key), six, rfc_vectors[i].t, 0, &step),
			0);
		assert_int_equal(step, rfc_vectors[i].t / IDENT_TOTP_PERIOD);
	}
	/* RFC 4226 appendix D: HOTP counters 0 and 9. */
	uint32_t c0 = 0, c9 = 0;
	assert_int_equal(ident_hotp(rfc_key, sizeof(rfc_key), 0, 6, &c0), 0);
	assert_int_equal(ident_hotp(rfc_key, sizeof(rfc_key), 9, 6, &c9), 0);
	assert_int_equal(c0, 755224);
	assert_int_equal(c9, 520489);
}

static void code_at(int64_t t, char out[8])
{
	uint32_t v = 0;

	assert_int_equal(
		ident_hotp(rfc_key, sizeof(rfc_key), (uint64_t)(t / IDENT_TOTP_PERIOD), 6, &v), 0);
	snprintf(out, 8, "%06u", v);
}

/* Codes of the previous and the next step pass; two steps away fail;
 * a step at or before the last accepted one fails (a replay). */
static void test_window_and_replay(void **state)
{
	const int64_t now = 1700000000 - 1700000000 % 30 + 10;
	char prev[8], cur[8], next[8], far_past[8], far_future[8], spaced[16];
	int64_t step = 0;

	(void)state;
	code_at(now - 30, prev);
	code_at(now, cur);
	code_at(now + 30, next);
	code_at(now - 60, far_past);
	code_at(now + 60, far_future);
	assert_int_equal(ident_totp_check(rfc_key, 20, prev, now, 0, &step), 0);
	assert_int_equal(step, now / 30 - 1);
	assert_int_equal(ident_totp_check(rfc_key, 20, next, now, 0, &step), 0);
	assert_int_equal(step, now / 30 + 1);
	assert_int_equal(ident_totp_check(rfc_key, 20, far_past, now, 0, &step), -EACCES);
	assert_int_equal(ident_totp_check(rfc_key, 20, far_future, now, 0, &step), -EACCES);
	/* Replays: the current step once it (or a later one) was accepted. */
	assert_int_equal(ident_totp_check(rfc_key, 20, cur, now, now / 30, &step), -EACCES);
	assert_int_equal(ident_totp_check(rfc_key, 20, prev, now, now / 30 - 1, &step), -EACCES);
	assert_int_equal(ident_totp_check(rfc_key, 20, cur, now, now / 30 - 1, &step), 0);
	/* Spaces are ignored; anything else is not a code. */
	snprintf(spaced, sizeof(spaced), "%.3s %.3s", cur, cur + 3);
	assert_int_equal(ident_totp_check(rfc_key, 20, spaced, now, 0, &step), 0);
	assert_int_equal(ident_totp_check(rfc_key, 20, "12345", now, 0, &step), -EINVAL);
	assert_int_equal(ident_totp_check(rfc_key, 20, "1234567", now, 0, &step), -EINVAL);
	assert_int_equal(ident_totp_check(rfc_key, 20, "12a456", now, 0, &step), -EINVAL);
}

static void test_base32_and_uri(void **state)
{
	char out[IDENT_TOTP_B32_SIZE];
	char *uri;

	(void)state;
	/* RFC 4648 section 10 vectors (without padding). */
	assert_int_equal(ident_base32((const uint8_t *)"foobar", 6, out, sizeof(out)), 0);
	assert_string_equal(out, "MZXW6YTBOI");
	assert_int_equal(ident_base32((const uint8_t *)"f", 1, out, sizeof(out)), 0);
	assert_string_equal(out, "MY");
	assert_int_equal(ident_base32(rfc_key, 20, out, sizeof(out)), 0);
	assert_string_equal(out, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
	assert_int_equal(ident_base32(rfc_key, 20, out, 32), -E2BIG);
	uri = ident_totp_uri("alice", out);
	assert_non_null(uri);
	assert_string_equal(uri, "otpauth://totp/bastion:alice?secret="
				 "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=bastion"
				 "&algorithm=SHA1&digits=6&period=30");
	free(uri);
}

static void test_recovery_codes_format(void **state)
{
	char codes[IDENT_RECOVERY_CODES][IDENT_RECOVERY_SIZE];
	uint8_t hashes[IDENT_RECOVERY_CODES][32], h[32];
	char upper[IDENT_RECOVERY_SIZE];

	(void)state;
	ident_recovery_generate(codes, hashes);
	for (int i = 0; i < IDENT_RECOVERY_CODES; i++) {
		assert_int_equal(strlen(codes[i]), 19);
		assert_int_equal(codes[i][4], '-');
		assert_int_equal(ident_recovery_hash(codes[i], h), 0);
		assert_memory_equal(h, hashes[i], 32);
		for (int k = 0; k < i; k++)
			assert_string_not_equal(codes[i], codes[k]);
	}
	/* Typed in capitals, without dashes: the same code. */
	for (size_t k = 0, o = 0; k <= strlen(codes[0]); k++)
		if (codes[0][k] != '-')
			upper[o++] = (char)(codes[0][k] >= 'a' && codes[0][k] <= 'z'
						    ? codes[0][k] - 'a' + 'A'
						    : codes[0][k]);
	assert_int_equal(ident_recovery_hash(upper, h), 0);
	assert_memory_equal(h, hashes[0], 32);
	assert_int_equal(ident_recovery_hash("abcd-efgh", h), -EINVAL);
	assert_int_equal(ident_recovery_hash("abcd-efgh-ijkl-mn01", h), -EINVAL);
}

/* ---- the store and the policy, on the backend under test ---- */

static int64_t make_user(struct store *s, const char *name)
{
	int64_t id = 0;

	assert_int_equal(store_user_put(s, name, "$argon2id$v=19$x", NULL, &id), 0);
	return id;
}

static void test_store_enrol_confirm(void **state)
{
	struct tu_store *f = *state;
	const uint8_t blob[] = "sealed-1", blob2[] = "sealed-2";
	uint8_t hashes[3][32];
	struct store_mfa m;
	struct ident_mfa_factors fac;
	int64_t id = make_user(f->s, "alice");
	int removed = -1;

	memset(hashes, 0, sizeof(hashes));
	hashes[0][0] = 1;
	hashes[1][0] = 2;
	hashes[2][0] = 3;
	assert_int_equal(store_mfa_get(f->s, id, &m), -ENOENT);
	assert_int_equal(m.recovery_left, 0);
	assert_int_equal(ident_mfa_factors(f->s, id, &fac), 0);
	assert_false(fac.totp);
	assert_false(fac.totp_pending);
	assert_int_equal(store_mfa_totp_put(f->s, id + 100, blob, sizeof(blob)), -ENOENT);
	assert_int_equal(store_mfa_totp_put(f->s, id, blob, 0), -EINVAL);
	/* Pending: may be replaced, cannot be used. */
	assert_int_equal(store_mfa_totp_put(f->s, id, blob, sizeof(blob)), 0);
	assert_int_equal(store_mfa_totp_put(f->s, id, blob2, sizeof(blob2)), 0);
	assert_int_equal(store_mfa_get(f->s, id, &m), 0);
	assert_int_equal(m.totp_sealed_len, sizeof(blob2));
	assert_memory_equal(m.totp_sealed, blob2, sizeof(blob2));
	assert_false(m.totp_confirmed);
	free(m.totp_sealed);
	assert_int_equal(store_mfa_totp_use(f->s, id, 5), -ENOENT);
	assert_int_equal(ident_mfa_factors(f->s, id, &fac), 0);
	assert_true(fac.totp_pending);
	assert_true(ident_mfa_restricted(f->s, true, id, &removed));
	/* Confirmed: the step and the recovery codes are in. */
	assert_int_equal(store_mfa_totp_confirm(f->s, id, 1000, &hashes[0][0], 3), 0);
	assert_int_equal(store_mfa_totp_confirm(f->s, id, 1001, &hashes[0][0], 3), -ENOENT);
	assert_int_equal(store_mfa_get(f->s, id, &m), 0);
	assert_true(m.totp_confirmed);
	assert_int_equal(m.totp_last_step, 1000);
	assert_int_equal(m.recovery_left, 3);
	free(m.totp_sealed);
	assert_int_equal(store_mfa_totp_put(f->s, id, blob, sizeof(blob)), -EEXIST);
	assert_false(ident_mfa_restricted(f->s, true, id, &removed));
	assert_false(ident_mfa_restricted(f->s, false, id + 100, &removed));
	assert_true(ident_mfa_restricted(f->s, true, id + 100, &removed));
	/* Steps: each accepted once, never one older than the last. */
	assert_int_equal(store_mfa_totp_use(f->s, id, 1000), -EALREADY);
	assert_int_equal(store_mfa_totp_use(f->s, id, 999), -EALREADY);
	assert_int_equal(store_mfa_totp_use(f->s, id, 1001), 0);
	assert_int_equal(store_mfa_totp_use(f->s, id, 1001), -EALREADY);
	/* Recovery codes: once each. */
	assert_int_equal(store_mfa_recovery_use(f->s, id, hashes[1]), 0);
	assert_int_equal(store_mfa_recovery_use(f->s, id, hashes[1]), -ENOENT);
	assert_int_equal(store_mfa_recovery_use(f->s, id + 100, hashes[0]), -ENOENT);
	assert_int_equal(ident_mfa_factors(f->s, id, &fac), 0);
	assert_int_equal(fac.recovery_left, 2);
	/* Removal takes everything; the user's deletion too. */
	assert_int_equal(store_mfa_delete(f->s, id, &removed), 0);
	assert_int_equal(removed, 1);
	assert_int_equal(store_mfa_delete(f->s, id, &removed), 0);
	assert_int_equal(removed, 0);
	assert_int_equal(store_mfa_get(f->s, id, &m), -ENOENT);
	assert_int_equal(m.recovery_left, 0);
	assert_int_equal(store_mfa_totp_put(f->s, id, blob, sizeof(blob)), 0);
	assert_int_equal(store_mfa_totp_confirm(f->s, id, 1, &hashes[0][0], 3), 0);
	assert_int_equal(store_user_delete(f->s, "alice"), 0);
	assert_int_equal(tu_query_int(f->s, "SELECT count(*) FROM mfa_recovery", NULL), 0);
	assert_int_equal(tu_query_int(f->s, "SELECT count(*) FROM mfa_totp", NULL), 0);
}

/* ident_mfa_check_otp: a TOTP code once, a recovery code once, anything
 * else refused, and a pending key never accepted. */
static void test_check_otp(void **state)
{
	struct tu_store *f = *state;
	char codes[IDENT_RECOVERY_CODES][IDENT_RECOVERY_SIZE];
	uint8_t hashes[IDENT_RECOVERY_CODES][32];
	const uint8_t blob[] = "sealed";
	const int64_t now = 1800000000;
	int64_t id = make_user(f->s, "bob");
	char cur[8], next[8];
	bool rec = true;

	ident_recovery_generate(codes, hashes);
	code_at(now, cur);
	code_at(now + 30, next);
	assert_int_equal(store_mfa_totp_put(f->s, id, blob, sizeof(blob)), 0);
	assert_int_equal(ident_mfa_check_otp(f->s, id, rfc_key, 20, cur, now, &rec), -EACCES);
	assert_int_equal(
		store_mfa_totp_confirm(f->s, id, now / 30 - 5, &hashes[0][0], IDENT_RECOVERY_CODES),
		0);
	assert_int_equal(ident_mfa_check_otp(f->s, id, rfc_key, 20, cur, now, &rec), 0);
	assert_false(rec);
	assert_int_equal(ident_mfa_check_otp(f->s, id, rfc_key, 20, cur, now, &rec), -EACCES);
	assert_int_equal(ident_mfa_check_otp(f->s, id, rfc_key, 20, next, now, &rec), 0);
	assert_int_equal(ident_mfa_check_otp(f->s, id, rfc_key, 20, "000000", now, &rec), -EACCES);
	assert_int_equal(ident_mfa_check_otp(f->s, id, rfc_key, 20, "", now, &rec), -EACCES);
	assert_int_equal(ident_mfa_check_otp(f->s, id, rfc_key, 20, codes[3], now, &rec), 0);
	assert_true(rec);
	assert_int_equal(ident_mfa_check_otp(f->s, id, rfc_key, 20, codes[3], now, &rec), -EACCES);
	assert_int_equal(
		ident_mfa_check_otp(f->s, id, rfc_key, 20, "zzzz-zzzz-zzzz-zzzz", now, &rec),
		-EACCES);
}

static void test_oidc_satisfied(void **state)
{
	const char *pwd[] = { "pwd" }, *mfa[] = { "pwd", "mfa" }, *otp[] = { "otp" };

	(void)state;
	assert_false(ident_mfa_oidc_satisfied(true, pwd, 1, NULL, NULL));
	assert_true(ident_mfa_oidc_satisfied(true, mfa, 2, NULL, NULL));
	assert_true(ident_mfa_oidc_satisfied(true, otp, 1, NULL, ""));
	assert_false(ident_mfa_oidc_satisfied(false, mfa, 2, NULL, NULL));
	assert_false(ident_mfa_oidc_satisfied(true, NULL, 0, NULL, NULL));
	assert_true(ident_mfa_oidc_satisfied(false, NULL, 0, "urn:mfa", "urn:mfa"));
	assert_false(ident_mfa_oidc_satisfied(false, NULL, 0, "urn:pwd", "urn:mfa"));
	assert_false(ident_mfa_oidc_satisfied(false, NULL, 0, "", ""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc6238_vectors),
		cmocka_unit_test(test_window_and_replay),
		cmocka_unit_test(test_base32_and_uri),
		cmocka_unit_test(test_recovery_codes_format),
		cmocka_unit_test(test_oidc_satisfied),
		cmocka_unit_test_setup_teardown(test_store_enrol_confirm, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_check_otp, tu_store_setup, tu_store_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
