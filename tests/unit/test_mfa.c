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

#include <cbor.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <sodium.h>

#include "testutil.h"

#include "core/util.h"
#include "identity/ident.h"
#include "identity/mfa.h"
#include "identity/webauthn.h"
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
	assert_true(ident_mfa_restricted(f->s, true, id, NULL, &removed));
	/* Confirmed: the step and the recovery codes are in. */
	assert_int_equal(store_mfa_totp_confirm(f->s, id, 1000, &hashes[0][0], 3), 0);
	assert_int_equal(store_mfa_totp_confirm(f->s, id, 1001, &hashes[0][0], 3), -ENOENT);
	assert_int_equal(store_mfa_get(f->s, id, &m), 0);
	assert_true(m.totp_confirmed);
	assert_int_equal(m.totp_last_step, 1000);
	assert_int_equal(m.recovery_left, 3);
	free(m.totp_sealed);
	assert_int_equal(store_mfa_totp_put(f->s, id, blob, sizeof(blob)), -EEXIST);
	assert_false(ident_mfa_restricted(f->s, true, id, NULL, &removed));
	assert_false(ident_mfa_restricted(f->s, false, id + 100, NULL, &removed));
	assert_true(ident_mfa_restricted(f->s, true, id + 100, NULL, &removed));
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
	assert_int_equal(store_mfa_delete(f->s, id, true, &removed), 0);
	assert_int_equal(removed, 1);
	assert_int_equal(store_mfa_delete(f->s, id, true, &removed), 0);
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

/* ---- passkeys: the WebAuthn checks (identity/webauthn.h) ---- */

static void test_wa_count_rule(void **state)
{
	(void)state;
	assert_true(ident_wa_count_ok(0, 0));
	assert_true(ident_wa_count_ok(0, 1));
	assert_true(ident_wa_count_ok(5, 6));
	assert_false(ident_wa_count_ok(5, 5));
	assert_false(ident_wa_count_ok(5, 1));
	assert_false(ident_wa_count_ok(5, 0));
}

static void test_wa_client_data(void **state)
{
	uint8_t ch[32], got[32];
	char b64[64], json[512];
	const char *origin = "https://bastion.example:8443";

	(void)state;
	memset(ch, 7, sizeof(ch));
	assert_int_equal(ident_b64url_encode(ch, sizeof(ch), b64, sizeof(b64)), 0);
	snprintf(json, sizeof(json),
		 "{\"type\":\"webauthn.get\",\"challenge\":\"%s\",\"origin\":\"%s\"}", b64, origin);
	assert_int_equal(
		ident_wa_client_data((uint8_t *)json, strlen(json), "webauthn.get", origin, got),
		0);
	assert_memory_equal(got, ch, 32);
	assert_int_equal(
		ident_wa_client_data((uint8_t *)json, strlen(json), "webauthn.create", origin, got),
		-EACCES);
	assert_int_equal(ident_wa_client_data((uint8_t *)json, strlen(json), "webauthn.get",
					      "https://evil.example", got),
			 -EACCES);
	assert_int_equal(ident_wa_client_data((uint8_t *)"{", 1, "webauthn.get", origin, got),
			 -EINVAL);
	snprintf(json, sizeof(json),
		 "{\"type\":\"webauthn.get\",\"challenge\":\"AAAA\",\"origin\":\"%s\"}", origin);
	assert_int_equal(
		ident_wa_client_data((uint8_t *)json, strlen(json), "webauthn.get", origin, got),
		-EINVAL);
}

/* authData for rp with flags, counter, and (with cose) attested data. */
static size_t auth_data(uint8_t *out, const char *rp, uint8_t flags, uint32_t count,
			const uint8_t *cose, size_t cose_len)
{
	size_t n = 0;

	crypto_hash_sha256(out, (const unsigned char *)rp, strlen(rp));
	n = 32;
	out[n++] = flags;
	out[n++] = (uint8_t)(count >> 24);
	out[n++] = (uint8_t)(count >> 16);
	out[n++] = (uint8_t)(count >> 8);
	out[n++] = (uint8_t)count;
	if (cose) {
		memset(out + n, 0, 16); /* aaguid */
		n += 16;
		out[n++] = 0;
		out[n++] = 4; /* credential ID length */
		memcpy(out + n, "cred", 4);
		n += 4;
		memcpy(out + n, cose, cose_len);
		n += cose_len;
	}
	return n;
}

static size_t cbor_out(cbor_item_t *item, uint8_t *out, size_t size)
{
	size_t n = cbor_serialize(item, out, size);

	assert_true(n > 0);
	cbor_decref(&item);
	return n;
}

static void map_add(cbor_item_t *m, cbor_item_t *k, cbor_item_t *v)
{
	assert_true(
		cbor_map_add(m, (struct cbor_pair){ .key = cbor_move(k), .value = cbor_move(v) }));
}

static size_t es256_cose(const uint8_t xy[64], uint8_t *out, size_t size)
{
	cbor_item_t *m = cbor_new_definite_map(5);

	map_add(m, cbor_build_uint8(1), cbor_build_uint8(2));
	map_add(m, cbor_build_uint8(3), cbor_build_negint8(6)); /* -7 */
	map_add(m, cbor_build_negint8(0), cbor_build_uint8(1)); /* crv P-256 */
	map_add(m, cbor_build_negint8(1), cbor_build_bytestring(xy, 32));
	map_add(m, cbor_build_negint8(2), cbor_build_bytestring(xy + 32, 32));
	return cbor_out(m, out, size);
}

static size_t attestation(const char *fmt, const uint8_t *ad, size_t ad_len, uint8_t *out,
			  size_t size)
{
	cbor_item_t *m = cbor_new_definite_map(3);

	map_add(m, cbor_build_string("fmt"), cbor_build_string(fmt));
	map_add(m, cbor_build_string("attStmt"), cbor_new_definite_map(0));
	map_add(m, cbor_build_string("authData"), cbor_build_bytestring(ad, ad_len));
	return cbor_out(m, out, size);
}

/* A P-256 key pair: the private key, and its x||y. */
static EVP_PKEY *p256(uint8_t xy[64])
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	uint8_t pub[65];
	size_t n = 0;

	assert_non_null(k);
	assert_int_equal(
		EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub), &n),
		1);
	assert_int_equal(n, 65);
	memcpy(xy, pub + 1, 64);
	return k;
}

static void test_wa_attestation(void **state)
{
	uint8_t xy[64], cose[128], ad[512], att[1024];
	struct ident_wa_cred c;
	size_t cose_len, ad_len, att_len;
	EVP_PKEY *k = p256(xy);

	(void)state;
	cose_len = es256_cose(xy, cose, sizeof(cose));
	ad_len = auth_data(ad, "bastion.example", 0x41 | 0x04, 0, cose, cose_len);
	att_len = attestation("none", ad, ad_len, att, sizeof(att));
	assert_int_equal(ident_wa_attestation(att, att_len, "bastion.example", true, &c), 0);
	assert_int_equal(c.alg, IDENT_WA_ALG_ES256);
	assert_int_equal(c.pk_len, 64);
	assert_memory_equal(c.pk, xy, 64);
	assert_int_equal(c.id_len, 4);
	assert_memory_equal(c.id, "cred", 4);
	assert_true(c.uv);
	/* Another RP, or no user presence, or UV missing when required. */
	assert_int_equal(ident_wa_attestation(att, att_len, "evil.example", false, &c), -EACCES);
	ad_len = auth_data(ad, "bastion.example", 0x40, 0, cose, cose_len);
	att_len = attestation("none", ad, ad_len, att, sizeof(att));
	assert_int_equal(ident_wa_attestation(att, att_len, "bastion.example", false, &c), -EACCES);
	ad_len = auth_data(ad, "bastion.example", 0x41, 0, cose, cose_len);
	att_len = attestation("none", ad, ad_len, att, sizeof(att));
	assert_int_equal(ident_wa_attestation(att, att_len, "bastion.example", true, &c), -EACCES);
	assert_int_equal(ident_wa_attestation(att, att_len, "bastion.example", false, &c), 0);
	/* Another format; a truncated object. */
	att_len = attestation("packed", ad, ad_len, att, sizeof(att));
	assert_int_equal(ident_wa_attestation(att, att_len, "bastion.example", false, &c),
			 -ENOTSUP);
	assert_int_equal(ident_wa_attestation(att, att_len / 2, "bastion.example", false, &c),
			 -EINVAL);
	/* Heads that declare more items than there are bytes (an array of
	 * 2^31 entries in 9 bytes) are refused before anything is allocated. */
	static const uint8_t huge_array[] = { 0xa1, 0x61, 'x', 0x9a, 0x88, 0x7f, 0xa0, 0x8e, 0x00 };
	static const uint8_t huge_map[] = { 0xbb, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00 };
	assert_int_equal(
		ident_wa_attestation(huge_array, sizeof(huge_array), "bastion.example", false, &c),
		-EINVAL);
	assert_int_equal(
		ident_wa_attestation(huge_map, sizeof(huge_map), "bastion.example", false, &c),
		-EINVAL);
	EVP_PKEY_free(k);
}

static size_t sign(EVP_PKEY *k, const uint8_t *ad, size_t ad_len, const uint8_t *cd, size_t cd_len,
		   uint8_t *sig, size_t size)
{
	uint8_t msg[600];
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	size_t n = size;

	memcpy(msg, ad, ad_len);
	crypto_hash_sha256(msg + ad_len, cd, cd_len);
	assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k), 1);
	assert_int_equal(EVP_DigestSign(md, sig, &n, msg, ad_len + 32), 1);
	EVP_MD_CTX_free(md);
	return n;
}

static void test_wa_assertion(void **state)
{
	uint8_t xy[64], ad[64], sig[128];
	const uint8_t cd[] = "{\"type\":\"webauthn.get\"}";
	size_t ad_len, sig_len;
	uint32_t count = 0;
	EVP_PKEY *k = p256(xy);

	(void)state;
	ad_len = auth_data(ad, "bastion.example", 0x05, 42, NULL, 0);
	sig_len = sign(k, ad, ad_len, cd, sizeof(cd) - 1, sig, sizeof(sig));
	assert_int_equal(ident_wa_assertion(IDENT_WA_ALG_ES256, xy, 64, ad, ad_len, cd,
					    sizeof(cd) - 1, sig, sig_len, "bastion.example", true,
					    &count),
			 0);
	assert_int_equal(count, 42);
	/* Another RP ID, another client data, a changed signature. */
	assert_int_equal(ident_wa_assertion(IDENT_WA_ALG_ES256, xy, 64, ad, ad_len, cd,
					    sizeof(cd) - 1, sig, sig_len, "evil.example", false,
					    &count),
			 -EACCES);
	assert_int_equal(ident_wa_assertion(IDENT_WA_ALG_ES256, xy, 64, ad, ad_len, cd,
					    sizeof(cd) - 2, sig, sig_len, "bastion.example", false,
					    &count),
			 -EACCES);
	sig[sig_len - 1] ^= 1;
	assert_int_equal(ident_wa_assertion(IDENT_WA_ALG_ES256, xy, 64, ad, ad_len, cd,
					    sizeof(cd) - 1, sig, sig_len, "bastion.example", false,
					    &count),
			 -EACCES);
	sig[sig_len - 1] ^= 1;
	/* UV required but absent; UP absent. */
	ad_len = auth_data(ad, "bastion.example", 0x01, 43, NULL, 0);
	sig_len = sign(k, ad, ad_len, cd, sizeof(cd) - 1, sig, sizeof(sig));
	assert_int_equal(ident_wa_assertion(IDENT_WA_ALG_ES256, xy, 64, ad, ad_len, cd,
					    sizeof(cd) - 1, sig, sig_len, "bastion.example", true,
					    &count),
			 -EACCES);
	assert_int_equal(ident_wa_assertion(IDENT_WA_ALG_ES256, xy, 64, ad, ad_len, cd,
					    sizeof(cd) - 1, sig, sig_len, "bastion.example", false,
					    &count),
			 0);
	ad_len = auth_data(ad, "bastion.example", 0x00, 44, NULL, 0);
	sig_len = sign(k, ad, ad_len, cd, sizeof(cd) - 1, sig, sizeof(sig));
	assert_int_equal(ident_wa_assertion(IDENT_WA_ALG_ES256, xy, 64, ad, ad_len, cd,
					    sizeof(cd) - 1, sig, sig_len, "bastion.example", false,
					    &count),
			 -EACCES);
	EVP_PKEY_free(k);
}

static int count_cred(const struct store_wa_cred *c, void *ud)
{
	(void)c;
	(*(int *)ud)++;
	return 0;
}

/* The passkey rows and challenges, on the backend under test. */
static void test_store_passkeys(void **state)
{
	struct tu_store *f = *state;
	struct store_wa_cred c, got;
	struct ident_mfa_factors fac;
	uint8_t ch[32], other[32];
	int64_t id = make_user(f->s, "carol"), uid = -1, now = store_now();
	int n = 0, removed = 0;

	memset(&c, 0, sizeof(c));
	memcpy(c.id, "cred-1", 6);
	c.id_len = 6;
	c.user_id = id;
	c.alg = -7;
	memset(c.pk, 9, 64);
	c.pk_len = 64;
	c.sign_count = 3;
	assert_int_equal(store_wa_cred_add(f->s, &c), 0);
	assert_int_equal(store_wa_cred_add(f->s, &c), -EEXIST);
	c.user_id = id + 100;
	memcpy(c.id, "cred-2", 6);
	assert_int_equal(store_wa_cred_add(f->s, &c), -ENOENT);
	c.user_id = id;
	assert_int_equal(store_wa_cred_add(f->s, &c), 0);
	assert_int_equal(store_wa_cred_get(f->s, (const uint8_t *)"cred-1", 6, &got), 0);
	assert_int_equal(got.user_id, id);
	assert_int_equal(got.alg, -7);
	assert_int_equal(got.pk_len, 64);
	assert_int_equal(got.sign_count, 3);
	assert_int_equal(store_wa_cred_get(f->s, (const uint8_t *)"cred-9", 6, &got), -ENOENT);
	assert_int_equal(store_wa_cred_foreach(f->s, id, count_cred, &n), 0);
	assert_int_equal(n, 2);
	/* The counter moves only from the value the caller saw. */
	assert_int_equal(store_wa_cred_count_set(f->s, (const uint8_t *)"cred-1", 6, 3, 4), 0);
	assert_int_equal(store_wa_cred_count_set(f->s, (const uint8_t *)"cred-1", 6, 3, 5),
			 -EALREADY);
	assert_int_equal(store_wa_cred_get(f->s, (const uint8_t *)"cred-1", 6, &got), 0);
	assert_int_equal(got.sign_count, 4);
	assert_int_equal(ident_mfa_factors(f->s, id, &fac), 0);
	assert_int_equal(fac.passkeys, 2);
	assert_false(ident_mfa_restricted(f->s, true, id, NULL, &n));
	/* Challenges: once, for their purpose, before they expire. */
	memset(ch, 1, sizeof(ch));
	memset(other, 2, sizeof(other));
	assert_int_equal(store_wa_challenge_add(f->s, ch, id, "register", now + 300), 0);
	assert_int_equal(store_wa_challenge_add(f->s, other, 0, "login", now - 1), 0);
	assert_int_equal(store_wa_challenge_take(f->s, ch, "login", now, &uid), -ENOENT);
	assert_int_equal(store_wa_challenge_take(f->s, ch, "register", now, &uid), 0);
	assert_int_equal(uid, id);
	assert_int_equal(store_wa_challenge_take(f->s, ch, "register", now, &uid), -ENOENT);
	assert_int_equal(store_wa_challenge_take(f->s, other, "login", now, &uid), -ENOENT);
	/* Removing TOTP keeps the passkeys; a reset takes them; so does the
	 * user's deletion. */
	assert_int_equal(store_mfa_delete(f->s, id, false, &removed), 0);
	assert_int_equal(removed, 0);
	assert_int_equal(store_wa_cred_get(f->s, (const uint8_t *)"cred-1", 6, &got), 0);
	assert_int_equal(store_mfa_delete(f->s, id, true, &removed), 0);
	assert_int_equal(removed, 1);
	assert_int_equal(store_wa_cred_get(f->s, (const uint8_t *)"cred-1", 6, &got), -ENOENT);
	assert_int_equal(store_wa_cred_add(f->s, &c), 0);
	assert_int_equal(store_user_delete(f->s, "carol"), 0);
	assert_int_equal(tu_query_int(f->s, "SELECT count(*) FROM webauthn_credentials", NULL), 0);
}

/* auth.require_mfa and a session marked by the OIDC callback: the mark
 * exempts that session only, and goes with it. */
static void test_session_mark(void **state)
{
	struct tu_store *f = *state;
	struct ident_session sess, other;
	uint8_t hash[32], hash2[32];
	int64_t id = make_user(f->s, "dave");
	int err = 0;

	assert_int_equal(ident_mfa_session_open(f->s, id, "dave", &sess), 0);
	assert_int_equal(ident_mfa_session_open(f->s, id, "dave", &other), 0);
	util_sha256_str(sess.token, hash);
	util_sha256_str(other.token, hash2);
	assert_true(ident_mfa_restricted(f->s, true, id, hash, &err));
	assert_int_equal(err, 0);
	assert_int_equal(ident_mfa_session_mark(f->s, &sess, "oidc"), 0);
	assert_false(ident_mfa_restricted(f->s, true, id, hash, &err));
	assert_true(ident_mfa_restricted(f->s, true, id, hash2, &err));
	assert_true(ident_mfa_restricted(f->s, true, id, NULL, &err));
	assert_int_equal(store_login_mfa_marked(f->s, hash), 0);
	assert_int_equal(store_login_delete(f->s, hash), 0);
	assert_int_equal(store_login_mfa_marked(f->s, hash), -ENOENT);
	assert_int_equal(ident_mfa_session_mark(f->s, &sess, "oidc"), -ENOENT);
}

/* Issue 18: the OIDC callback's decision for each kind of user, and the
 * gate of a session it left waiting for bastion's own second factor. */
static void test_oidc_decide_and_gate(void **state)
{
	struct tu_store *f = *state;
	const char *mfa_amr[] = { "pwd", "mfa" }, *pwd_amr[] = { "pwd" };
	const uint8_t blob[] = "sealed-1";
	uint8_t rec[1][32] = { { 7 } }, hash[32], hash2[32], hash3[32];
	struct ident_session sess, other, third;
	enum ident_oidc_mfa d;
	char via[17];
	int64_t id = make_user(f->s, "erin");
	int err = 0;

	/* No factor: the provider's claim, then require_mfa decide. */
	assert_int_equal(ident_mfa_oidc_decide(f->s, false, id, true, mfa_amr, 2, NULL, NULL, &d),
			 0);
	assert_int_equal(d, IDENT_OIDC_MFA_PROVIDER);
	assert_int_equal(ident_mfa_oidc_decide(f->s, true, id, false, mfa_amr, 2, NULL, NULL, &d),
			 0);
	assert_int_equal(d, IDENT_OIDC_MFA_ENROL);
	assert_int_equal(ident_mfa_oidc_decide(f->s, false, id, true, pwd_amr, 1, NULL, NULL, &d),
			 0);
	assert_int_equal(d, IDENT_OIDC_MFA_NONE);
	assert_int_equal(ident_mfa_oidc_decide(f->s, false, id, false, NULL, 0, "gold", "gold", &d),
			 0);
	assert_int_equal(d, IDENT_OIDC_MFA_PROVIDER);
	/* An enrolment not confirmed is no factor yet; a confirmed one is
	 * asked for unless the provider's counts. */
	assert_int_equal(store_mfa_totp_put(f->s, id, blob, sizeof(blob)), 0);
	assert_int_equal(ident_mfa_oidc_decide(f->s, false, id, true, pwd_amr, 1, NULL, NULL, &d),
			 0);
	assert_int_equal(d, IDENT_OIDC_MFA_NONE);
	assert_int_equal(store_mfa_totp_confirm(f->s, id, 1, &rec[0][0], 1), 0);
	for (int require = 0; require < 2; require++) {
		assert_int_equal(
			ident_mfa_oidc_decide(f->s, require, id, true, pwd_amr, 1, NULL, NULL, &d),
			0);
		assert_int_equal(d, IDENT_OIDC_MFA_VERIFY);
		assert_int_equal(
			ident_mfa_oidc_decide(f->s, require, id, false, mfa_amr, 2, NULL, NULL, &d),
			0);
		assert_int_equal(d, IDENT_OIDC_MFA_VERIFY);
		assert_int_equal(
			ident_mfa_oidc_decide(f->s, require, id, true, mfa_amr, 2, NULL, NULL, &d),
			0);
		assert_int_equal(d, IDENT_OIDC_MFA_PROVIDER);
	}
	/* A pending session is VERIFY whatever require_mfa says; the user's
	 * other sessions and its API tokens are not held. */
	assert_int_equal(ident_mfa_session_open(f->s, id, "erin", &sess), 0);
	assert_int_equal(ident_mfa_session_open(f->s, id, "erin", &other), 0);
	assert_int_equal(ident_mfa_session_open(f->s, id, "erin", &third), 0);
	util_sha256_str(sess.token, hash);
	util_sha256_str(other.token, hash2);
	util_sha256_str(third.token, hash3);
	assert_int_equal(store_login_mfa_via(f->s, hash, via), -ENOENT);
	assert_int_equal(ident_mfa_session_pending(f->s, &sess), 0);
	assert_int_equal(ident_mfa_session_mark(f->s, &third, "oidc"), 0);
	assert_int_equal(store_login_mfa_via(f->s, hash, via), 0);
	assert_string_equal(via, STORE_MFA_PENDING);
	assert_int_equal(store_login_mfa_via(f->s, hash3, via), 0);
	assert_string_equal(via, "oidc");
	for (int require = 0; require < 2; require++) {
		assert_int_equal(ident_mfa_gate(f->s, require, id, hash, &err), IDENT_MFA_VERIFY);
		assert_int_equal(err, 0);
		assert_true(ident_mfa_restricted(f->s, require, id, hash, &err));
		assert_int_equal(ident_mfa_gate(f->s, require, id, hash2, &err), IDENT_MFA_OPEN);
		assert_int_equal(ident_mfa_gate(f->s, require, id, hash3, &err), IDENT_MFA_OPEN);
		assert_int_equal(ident_mfa_gate(f->s, require, id, NULL, &err), IDENT_MFA_OPEN);
	}
	/* Without a factor, require_mfa's enrolment; a pending mark still
	 * wins over it. */
	assert_int_equal(store_mfa_delete(f->s, id, true, &err), 0);
	assert_int_equal(ident_mfa_gate(f->s, true, id, hash2, &err), IDENT_MFA_ENROL);
	assert_int_equal(ident_mfa_gate(f->s, true, id, hash3, &err), IDENT_MFA_OPEN);
	assert_int_equal(ident_mfa_gate(f->s, true, id, hash, &err), IDENT_MFA_VERIFY);
	assert_int_equal(ident_mfa_gate(f->s, false, id, hash2, &err), IDENT_MFA_OPEN);
	/* The mark goes with its session. */
	assert_int_equal(store_login_delete(f->s, hash), 0);
	assert_int_equal(store_login_mfa_via(f->s, hash, via), -ENOENT);
	assert_int_equal(ident_mfa_gate(f->s, false, id, hash, &err), IDENT_MFA_OPEN);
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
		cmocka_unit_test_setup_teardown(test_session_mark, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_oidc_decide_and_gate, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test(test_wa_count_rule),
		cmocka_unit_test(test_wa_client_data),
		cmocka_unit_test(test_wa_attestation),
		cmocka_unit_test(test_wa_assertion),
		cmocka_unit_test_setup_teardown(test_store_passkeys, tu_store_setup,
						tu_store_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
