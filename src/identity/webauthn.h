/* Passkeys (WebAuthn level 2): the checks of a registration and of an
 * assertion, pure (no store): the caller takes the challenge from the
 * store (single use) and keeps the credential. CBOR is read with libcbor,
 * signatures are verified with libfido2 (fido_assert_verify), so no
 * signature or CBOR code is written here. Attestation: format "none" only
 * (bastion trusts the user who registers a key, not its maker), so
 * attestation statements are not verified. Algorithms: ES256 (-7) and EdDSA
 * (-8), what platform and roaming authenticators offer. See docs/sign-in.md
 * "Passkeys". */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IDENT_WA_CHALLENGE_BYTES 32
#define IDENT_WA_CRED_ID_MAX     1023 /* bytes of a credential ID (WebAuthn: at most 1023) */
#define IDENT_WA_PK_MAX          64   /* ES256 x||y, or an Ed25519 key */
#define IDENT_WA_MAX_INPUT       8192 /* bytes of a decoded clientDataJSON, attestation, ... */
#define IDENT_WA_ALG_ES256       (-7)
#define IDENT_WA_ALG_EDDSA       (-8)

/* What a registration yields, to be stored. */
struct ident_wa_cred {
	uint8_t id[IDENT_WA_CRED_ID_MAX];
	size_t id_len;
	int alg;
	uint8_t pk[IDENT_WA_PK_MAX];
	size_t pk_len;
	uint32_t sign_count;
	bool uv; /* the user was verified at registration */
};

/* Checks clientDataJSON: its type ("webauthn.create" or "webauthn.get"),
 * its origin (exactly origin), and hands back its challenge. -EINVAL for
 * anything malformed, -EACCES for a wrong type or origin. */
int ident_wa_client_data(const uint8_t *json, size_t len, const char *type, const char *origin,
			 uint8_t ret_challenge[IDENT_WA_CHALLENGE_BYTES]);

/* Reads an attestation object (CBOR) of format "none": rpIdHash must be
 * SHA-256(rp_id), UP set (UV too when require_uv), attested credential data
 * present with an ES256 or EdDSA COSE key. -EINVAL malformed, -EACCES a
 * check failed, -ENOTSUP another format or algorithm. */
int ident_wa_attestation(const uint8_t *att, size_t len, const char *rp_id, bool require_uv,
			 struct ident_wa_cred *ret);

/* Verifies an assertion: signature over authenticatorData || SHA-256
 * (clientDataJSON) with the stored key, rpIdHash, UP (and UV when
 * require_uv). *ret_sign_count is the authenticator's counter. 0, -EACCES
 * (does not verify), -EINVAL (malformed). */
int ident_wa_assertion(int alg, const uint8_t *pk, size_t pk_len, const uint8_t *auth_data,
		       size_t ad_len, const uint8_t *client_data, size_t cd_len, const uint8_t *sig,
		       size_t sig_len, const char *rp_id, bool require_uv,
		       uint32_t *ret_sign_count);

/* The sign-count rule (WebAuthn §6.1.1): a counter that is non-zero must
 * grow; otherwise the authenticator may have been cloned. True when the
 * new value is acceptable. */
bool ident_wa_count_ok(uint32_t stored, uint32_t seen);

/* base64url without padding: decode into out (-E2BIG if it does not fit,
 * -EINVAL for a bad character); encode into out (out_size >= 4 * ceil(len
 * / 3) + 1). */
int ident_b64url_decode(const char *in, uint8_t *out, size_t out_size, size_t *ret_len);
int ident_b64url_encode(const uint8_t *in, size_t len, char *out, size_t out_size);
