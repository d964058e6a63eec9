/* The pure parts of OpenID Connect sign-in (identity/oidc.h): the PKCE
 * S256 challenge and the checks an ID token's claims must pass once its
 * signature is verified. No I/O, no store: unit-tested on their own. */
#include "identity/oidc.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "core/util.h"

void oidc_pkce_s256(const char *verifier, char out[44])
{
	uint8_t h[32];

	/* RFC 7636 §4.2: BASE64URL-ENCODE(SHA256(ASCII(code_verifier))). */
	util_sha256_str(verifier, h);
	sodium_bin2base64(out, 44, h, sizeof(h), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

bool oidc_alg_ok(const char *alg)
{
	static const char *const ok[] = { "RS256", "RS384", "RS512", "PS256", "PS384",
					  "PS512", "ES256", "ES384", "ES512" };

	for (size_t i = 0; alg && i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strcmp(alg, ok[i]) == 0)
			return true;
	return false;
}

static bool aud_holds(const json_t *aud, const char *client_id, size_t *ret_n)
{
	size_t i;
	json_t *v;
	bool found = false;

	*ret_n = 0;
	if (json_is_string(aud)) {
		*ret_n = 1;
		return strcmp(json_string_value(aud), client_id) == 0;
	}
	if (!json_is_array(aud))
		return false;
	json_array_foreach (aud, i, v) {
		if (!json_is_string(v))
			return false;
		if (strcmp(json_string_value(v), client_id) == 0)
			found = true;
	}
	*ret_n = json_array_size(aud);
	return found;
}

int oidc_check_claims(const json_t *claims, const struct oidc_expect *e, const char **ret_reason)
{
	const json_t *iss = json_object_get(claims, "iss");
	const json_t *aud = json_object_get(claims, "aud");
	const json_t *azp = json_object_get(claims, "azp");
	const json_t *exp = json_object_get(claims, "exp");
	const json_t *iat = json_object_get(claims, "iat");
	const json_t *nonce = json_object_get(claims, "nonce");
	const json_t *sub = json_object_get(claims, "sub");
	size_t n_aud;

	if (!json_is_object(claims)) {
		*ret_reason = "the ID token's claims are not a JSON object";
		return -EPROTO;
	}
	if (!json_is_string(iss) || strcmp(json_string_value(iss), e->issuer) != 0) {
		*ret_reason = "the ID token's issuer (iss) is not the configured issuer";
		return -EPROTO;
	}
	if (!aud_holds(aud, e->client_id, &n_aud)) {
		*ret_reason = "the ID token's audience (aud) is not this bastion's client_id";
		return -EPROTO;
	}
	/* OIDC Core §3.1.3.7: with several audiences, the party it was issued
	 * to must be us; when azp is there it must be us in any case. */
	if ((n_aud > 1 || azp) &&
	    (!json_is_string(azp) || strcmp(json_string_value(azp), e->client_id) != 0)) {
		*ret_reason = "the ID token's authorized party (azp) is not this bastion";
		return -EPROTO;
	}
	if (!json_is_integer(exp) && !json_is_real(exp)) {
		*ret_reason = "the ID token has no expiry (exp)";
		return -EPROTO;
	}
	if (json_number_value(exp) <= (double)(e->now - OIDC_SKEW)) {
		*ret_reason = "the ID token has expired (exp)";
		return -EPROTO;
	}
	if (!json_is_integer(iat) && !json_is_real(iat)) {
		*ret_reason = "the ID token has no issue time (iat)";
		return -EPROTO;
	}
	if (json_number_value(iat) > (double)(e->now + OIDC_SKEW)) {
		*ret_reason = "the ID token was issued in the future (iat)";
		return -EPROTO;
	}
	if (!json_is_string(nonce) || !e->nonce ||
	    !util_streq_ct(json_string_value(nonce), e->nonce)) {
		*ret_reason = "the ID token's nonce is not the one this sign-in sent";
		return -EPROTO;
	}
	if (!json_is_string(sub) || json_string_length(sub) == 0 || json_string_length(sub) > 255) {
		*ret_reason = "the ID token has no valid subject (sub)";
		return -EPROTO;
	}
	return 0;
}
