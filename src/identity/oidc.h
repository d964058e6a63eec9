/* Signing in with an OpenID Connect provider (SPEC §9, docs/sign-in.md):
 * the authorization code flow with PKCE (S256), state and nonce.
 *
 * oidc.c talks to the provider with libcurl (discovery, JWKS, the token
 * endpoint): every call blocks, so everything here runs on a worker
 * thread, never on an event loop. A struct oidc is made once at start-up
 * and shared by the workers; its caches (discovery document, JWKS) are
 * behind a mutex. What a flow must remember between its two halves is in
 * the store (store_oidc.h), so that it may start on one instance and end
 * on another.
 *
 * oidc_claims.c holds the pure parts (PKCE, the checks of an ID token's
 * claims) that the unit tests drive. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct oidc;

#define OIDC_FLOW_TTL      600          /* seconds from the redirect to the callback */
#define OIDC_SKEW          60           /* seconds of clock skew allowed on iat and exp */
#define OIDC_HTTP_MAX      (256 * 1024) /* bytes of any answer from the provider */
#define OIDC_JWKS_REFETCH  5    /* an unknown kid refetches the JWKS at most this often (s) */
#define OIDC_DISCOVERY_TTL 3600 /* seconds the discovery document is kept */
/* Flows and CLI codes kept at once (each anonymous GET /auth/oidc/login
 * makes one for OIDC_FLOW_TTL): past it, a new sign-in answers 503. */
#define OIDC_PENDING_MAX 10000

/* What the provider's side is; strings are copied. */
struct oidc_config {
	const char *issuer;
	const char *client_id;
	const char *client_secret; /* may be NULL: a public client */
	const char *redirect_url;
	const char *ca_file; /* NULL or "": the system's CAs */
	const char *username_claim;
	const char *groups_claim; /* NULL or "": none */
};

/* -ENOMEM, or -EINVAL for a config without issuer, client_id or
 * redirect_url. Nothing is fetched yet (the provider may be down at
 * start-up). */
int oidc_new(const struct oidc_config *cfg, struct oidc **ret);
void oidc_free(struct oidc *o);

/* Starts a flow: a fresh state, nonce and PKCE verifier, kept in the store
 * for OIDC_FLOW_TTL with extra (a JSON object the caller gets back from
 * oidc_finish: return_to, the CLI's port and challenge; may be NULL), and
 * the provider's authorization URL for it in *ret_url (malloc'd). Fetches
 * the discovery document when it is not cached. Errors: -ENOSPC
 * (OIDC_PENDING_MAX flows under way), -EPROTO (the
 * provider answered nonsense, *ret_reason says what), -EIO (could not
 * reach it), a store error. */
int oidc_begin(struct oidc *o, struct store *s, const json_t *extra, char **ret_url,
	       const char **ret_reason);

/* What a verified ID token says. Free with oidc_result_done. */
struct oidc_result {
	char *issuer, *subject;
	char *username; /* the username_claim's value, as the provider gave it */
	json_t *groups; /* array of strings (empty when there is no groups claim) */
	/* What the provider says of how the user authenticated, verified
	 * with the rest of the token, for the MFA policy: amr an array of
	 * strings or NULL, acr NULL when absent. */
	json_t *amr;
	char *acr;
	json_t *extra; /* what oidc_begin was given (an object, maybe empty) */
};
void oidc_result_done(struct oidc_result *r);

/* Ends a flow: takes state from the store (single use), exchanges code at
 * the token endpoint with the verifier and the client secret, verifies the
 * ID token (signature against the JWKS, iss, aud, azp, exp, iat, nonce).
 * code NULL (the provider answered with an error) only spends the state.
 * 0 and *ret filled, or: -ENOENT (state unknown, used or expired), -EPROTO
 * (the token or the provider's answer failed a check), -EIO (provider not
 * reachable), a store error. *ret_reason is always set on failure: a short
 * static text that names the check and carries nothing from the token. */
int oidc_finish(struct oidc *o, struct store *s, const char *state, const char *code,
		struct oidc_result *ret, const char **ret_reason);

/* ---- the pure parts (oidc_claims.c) ---------------------------------- */

/* The S256 code challenge of verifier: base64url(SHA-256(verifier)),
 * no padding, 43 characters and a NUL. */
void oidc_pkce_s256(const char *verifier, char out[44]);

/* What an ID token's claims must show. */
struct oidc_expect {
	const char *issuer;
	const char *client_id;
	const char *nonce;
	int64_t now;
};
/* Checks iss (equal), aud (a string equal to client_id, or an array that
 * holds it; with several audiences azp must be client_id), exp (later
 * than now - OIDC_SKEW), iat (not later than now + OIDC_SKEW), nonce
 * (equal, in constant time) and sub (a non-empty string). 0, or -EPROTO
 * with *ret_reason naming the first check that failed. */
int oidc_check_claims(const json_t *claims, const struct oidc_expect *e, const char **ret_reason);

/* Whether alg is one bastion accepts for an ID token (RS256/384/512,
 * PS256/384/512, ES256/384/512; never "none" or a MAC). */
bool oidc_alg_ok(const char *alg);
