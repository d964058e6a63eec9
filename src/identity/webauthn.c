/* Passkeys: the WebAuthn checks of webauthn.h. libcbor reads the
 * attestation object and the COSE key, libfido2 verifies assertion
 * signatures, libsodium does base64url and SHA-256, jansson reads
 * clientDataJSON. */
#include "identity/webauthn.h"

#include <cbor.h>
#include <errno.h>
#include <fido.h>
#include <fido/eddsa.h>
#include <fido/es256.h>
#include <jansson.h>
#include <sodium.h>
#include <string.h>

/* authenticatorData flags (WebAuthn §6.1). */
#define FLAG_UP 0x01
#define FLAG_UV 0x04
#define FLAG_AT 0x40

int ident_b64url_decode(const char *in, uint8_t *out, size_t out_size, size_t *ret_len)
{
	size_t n = 0;

	if (!in)
		return -EINVAL;
	if (strlen(in) / 4 * 3 > out_size + 3)
		return -E2BIG;
	if (sodium_base642bin(out, out_size, in, strlen(in), NULL, &n, NULL,
			      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
		return -EINVAL;
	*ret_len = n;
	return 0;
}

int ident_b64url_encode(const uint8_t *in, size_t len, char *out, size_t out_size)
{
	if (out_size < sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING))
		return -E2BIG;
	sodium_bin2base64(out, out_size, in, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return 0;
}

int ident_wa_client_data(const uint8_t *json, size_t len, const char *type, const char *origin,
			 uint8_t ret_challenge[IDENT_WA_CHALLENGE_BYTES])
{
	json_t *o = NULL;
	const char *t, *ch, *org;
	size_t n = 0;
	int r = -EINVAL;

	if (!json || len == 0 || len > IDENT_WA_MAX_INPUT)
		return -EINVAL;
	if (!(o = json_loadb((const char *)json, len, 0, NULL)) || !json_is_object(o))
		goto out;
	t = json_string_value(json_object_get(o, "type"));
	ch = json_string_value(json_object_get(o, "challenge"));
	org = json_string_value(json_object_get(o, "origin"));
	if (!t || !ch || !org)
		goto out;
	if (strcmp(t, type) != 0 || strcmp(org, origin) != 0) {
		r = -EACCES;
		goto out;
	}
	if (ident_b64url_decode(ch, ret_challenge, IDENT_WA_CHALLENGE_BYTES, &n) < 0 ||
	    n != IDENT_WA_CHALLENGE_BYTES)
		goto out;
	r = 0;
out:
	json_decref(o);
	return r;
}

/* ---- a bounded cbor_load ----
 * cbor_load allocates a definite array or map for the count its head
 * declares before reading the items, so a 9-byte head could ask for
 * gigabytes (found by fuzz_webauthn). The input is first walked with the
 * streaming decoder: every declared count must fit in what is left (an
 * item takes at least one byte, a map entry two), and all the heads
 * together declare at most MAX_ITEMS items. */
#define MAX_ITEMS 4096

struct scan {
	size_t left; /* bytes after the head just decoded */
	size_t items;
	bool bad;
};

static void scan_array(void *ud, size_t n)
{
	struct scan *s = ud;

	if (n > s->left || (s->items += n) > MAX_ITEMS)
		s->bad = true;
}

static void scan_map(void *ud, size_t n)
{
	struct scan *s = ud;

	if (n > s->left / 2 || (s->items += 2 * n) > MAX_ITEMS)
		s->bad = true;
}

static cbor_item_t *load_bounded(const uint8_t *data, size_t len, size_t *ret_read)
{
	struct cbor_callbacks cb = cbor_empty_callbacks;
	struct cbor_load_result res;
	struct scan s = { 0 };
	cbor_item_t *item;
	size_t off = 0;

	cb.array_start = scan_array;
	cb.map_start = scan_map;
	while (off < len && !s.bad) {
		struct cbor_decoder_result d;

		s.left = len - off;
		d = cbor_stream_decode(data + off, len - off, &cb, &s);
		if (d.status != CBOR_DECODER_FINISHED || d.read == 0)
			break; /* the end of what is parsable: cbor_load judges */
		s.left = len - off - d.read;
		off += d.read;
	}
	if (s.bad)
		return NULL;
	item = cbor_load(data, len, &res);
	if (item && res.error.code != CBOR_ERR_NONE) {
		cbor_decref(&item);
		return NULL;
	}
	if (ret_read && item)
		*ret_read = res.read;
	return item;
}

/* The value of integer key k in a CBOR map (COSE keys use small ints). */
static cbor_item_t *map_get_int(const cbor_item_t *map, int64_t k)
{
	struct cbor_pair *p = cbor_map_handle(map);

	for (size_t i = 0; i < cbor_map_size(map); i++) {
		const cbor_item_t *key = p[i].key;
		int64_t v;

		if (cbor_isa_uint(key))
			v = (int64_t)cbor_get_int(key);
		else if (cbor_isa_negint(key))
			v = -1 - (int64_t)cbor_get_int(key);
		else
			continue;
		if (v == k)
			return p[i].value;
	}
	return NULL;
}

static cbor_item_t *map_get_str(const cbor_item_t *map, const char *k)
{
	struct cbor_pair *p = cbor_map_handle(map);

	for (size_t i = 0; i < cbor_map_size(map); i++) {
		const cbor_item_t *key = p[i].key;

		if (cbor_isa_string(key) && cbor_string_is_definite(key) &&
		    cbor_string_length(key) == strlen(k) &&
		    memcmp(cbor_string_handle(key), k, strlen(k)) == 0)
			return p[i].value;
	}
	return NULL;
}

static bool int_is(const cbor_item_t *v, int64_t want)
{
	if (!v)
		return false;
	if (cbor_isa_uint(v))
		return want >= 0 && cbor_get_int(v) == (uint64_t)want;
	if (cbor_isa_negint(v))
		return want < 0 && cbor_get_int(v) == (uint64_t)(-1 - want);
	return false;
}

static bool bytes_of(const cbor_item_t *v, size_t len)
{
	return v && cbor_isa_bytestring(v) && cbor_bytestring_is_definite(v) &&
	       cbor_bytestring_length(v) == len;
}

/* The COSE key at data (what is left of authData): ES256 (kty 2, crv 1,
 * x and y of 32 bytes) or EdDSA (kty 1, crv 6 Ed25519, x of 32 bytes). */
static int cose_key(const uint8_t *data, size_t len, struct ident_wa_cred *c)
{
	cbor_item_t *k = load_bounded(data, len, NULL);
	cbor_item_t *x, *y;
	int r = -EINVAL;

	if (!k || !cbor_isa_map(k))
		goto out;
	x = map_get_int(k, -2);
	y = map_get_int(k, -3);
	if (int_is(map_get_int(k, 1), 2) && int_is(map_get_int(k, 3), IDENT_WA_ALG_ES256)) {
		if (!int_is(map_get_int(k, -1), 1) || !bytes_of(x, 32) || !bytes_of(y, 32))
			goto out;
		memcpy(c->pk, cbor_bytestring_handle(x), 32);
		memcpy(c->pk + 32, cbor_bytestring_handle(y), 32);
		c->pk_len = 64;
		c->alg = IDENT_WA_ALG_ES256;
	} else if (int_is(map_get_int(k, 1), 1) && int_is(map_get_int(k, 3), IDENT_WA_ALG_EDDSA)) {
		if (!int_is(map_get_int(k, -1), 6) || !bytes_of(x, 32))
			goto out;
		memcpy(c->pk, cbor_bytestring_handle(x), 32);
		c->pk_len = 32;
		c->alg = IDENT_WA_ALG_EDDSA;
	} else {
		r = -ENOTSUP;
		goto out;
	}
	r = 0;
out:
	if (k)
		cbor_decref(&k);
	return r;
}

int ident_wa_attestation(const uint8_t *att, size_t len, const char *rp_id, bool require_uv,
			 struct ident_wa_cred *ret)
{
	cbor_item_t *top = NULL, *fmt, *ad;
	const uint8_t *a;
	uint8_t want[32];
	size_t n, id_len;
	int r = -EINVAL;

	memset(ret, 0, sizeof(*ret));
	if (!att || len == 0 || len > IDENT_WA_MAX_INPUT)
		return -EINVAL;
	top = load_bounded(att, len, NULL);
	if (!top || !cbor_isa_map(top))
		goto out;
	fmt = map_get_str(top, "fmt");
	ad = map_get_str(top, "authData");
	if (!fmt || !cbor_isa_string(fmt) || !cbor_string_is_definite(fmt) || !ad ||
	    !cbor_isa_bytestring(ad) || !cbor_bytestring_is_definite(ad))
		goto out;
	if (cbor_string_length(fmt) != 4 || memcmp(cbor_string_handle(fmt), "none", 4) != 0) {
		r = -ENOTSUP;
		goto out;
	}
	a = cbor_bytestring_handle(ad);
	n = cbor_bytestring_length(ad);
	/* rpIdHash (32) flags (1) signCount (4) aaguid (16) idLen (2) id key */
	if (n < 32 + 1 + 4 + 16 + 2)
		goto out;
	crypto_hash_sha256(want, (const unsigned char *)rp_id, strlen(rp_id));
	if (sodium_memcmp(a, want, 32) != 0 || !(a[32] & FLAG_UP) ||
	    (require_uv && !(a[32] & FLAG_UV))) {
		r = -EACCES;
		goto out;
	}
	if (!(a[32] & FLAG_AT))
		goto out;
	ret->uv = (a[32] & FLAG_UV) != 0;
	ret->sign_count =
		((uint32_t)a[33] << 24) | ((uint32_t)a[34] << 16) | ((uint32_t)a[35] << 8) | a[36];
	id_len = ((size_t)a[53] << 8) | a[54];
	if (id_len == 0 || id_len > IDENT_WA_CRED_ID_MAX || 55 + id_len >= n)
		goto out;
	memcpy(ret->id, a + 55, id_len);
	ret->id_len = id_len;
	r = cose_key(a + 55 + id_len, n - 55 - id_len, ret);
out:
	if (top)
		cbor_decref(&top);
	return r;
}

int ident_wa_assertion(int alg, const uint8_t *pk, size_t pk_len, const uint8_t *auth_data,
		       size_t ad_len, const uint8_t *client_data, size_t cd_len, const uint8_t *sig,
		       size_t sig_len, const char *rp_id, bool require_uv, uint32_t *ret_sign_count)
{
	fido_assert_t *a = NULL;
	es256_pk_t *es = NULL;
	eddsa_pk_t *ed = NULL;
	const void *key;
	int cose, r = -EINVAL;

	if (!auth_data || ad_len < 37 || ad_len > IDENT_WA_MAX_INPUT || !client_data ||
	    cd_len == 0 || cd_len > IDENT_WA_MAX_INPUT || !sig || sig_len == 0 ||
	    sig_len > IDENT_WA_MAX_INPUT)
		return -EINVAL;
	if (alg == IDENT_WA_ALG_ES256) {
		if (!(es = es256_pk_new()) || es256_pk_from_ptr(es, pk, pk_len) != FIDO_OK)
			goto out;
		key = es;
		cose = COSE_ES256;
	} else if (alg == IDENT_WA_ALG_EDDSA) {
		if (!(ed = eddsa_pk_new()) || eddsa_pk_from_ptr(ed, pk, pk_len) != FIDO_OK)
			goto out;
		key = ed;
		cose = COSE_EDDSA;
	} else {
		goto out;
	}
	/* libfido2 checks the rpIdHash against rp, the UP/UV flags as set,
	 * and the signature over authData || SHA-256(clientDataJSON). */
	if (!(a = fido_assert_new()) || fido_assert_set_count(a, 1) != FIDO_OK ||
	    fido_assert_set_rp(a, rp_id) != FIDO_OK ||
	    fido_assert_set_clientdata(a, client_data, cd_len) != FIDO_OK ||
	    fido_assert_set_authdata_raw(a, 0, auth_data, ad_len) != FIDO_OK ||
	    fido_assert_set_sig(a, 0, sig, sig_len) != FIDO_OK ||
	    fido_assert_set_up(a, FIDO_OPT_TRUE) != FIDO_OK ||
	    fido_assert_set_uv(a, require_uv ? FIDO_OPT_TRUE : FIDO_OPT_OMIT) != FIDO_OK)
		goto out;
	if (fido_assert_verify(a, 0, cose, key) != FIDO_OK) {
		r = -EACCES;
		goto out;
	}
	*ret_sign_count = fido_assert_sigcount(a, 0);
	r = 0;
out:
	fido_assert_free(&a);
	es256_pk_free(&es);
	eddsa_pk_free(&ed);
	return r;
}

bool ident_wa_count_ok(uint32_t stored, uint32_t seen)
{
	/* Both zero: an authenticator without a counter (most passkeys). */
	if (stored == 0 && seen == 0)
		return true;
	return seen > stored;
}
