/* Second factors: TOTP (RFC 6238) codes and their one-time use, recovery
 * codes, and the policy that decides whether a sign-in needs a second
 * factor (auth.require_mfa, an OpenID provider's amr/acr). totp.c holds
 * the arithmetic (pure, no store), mfa.c the decisions that read the store.
 *
 * What is secret here: the TOTP key (20 bytes; sealed by the caller with
 * the vault's MFA key before it reaches the store: identity/ cannot call
 * vault/), the codes, the recovery codes. Buffers that held them are wiped
 * with sodium_memzero before they are released. See docs/sign-in.md
 * "Second factors". */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

#define IDENT_TOTP_KEY_BYTES 20 /* RFC 4226's recommended 160-bit key */
#define IDENT_TOTP_PERIOD    30 /* seconds per step */
#define IDENT_TOTP_DIGITS    6
#define IDENT_TOTP_SKEW      1  /* steps accepted either side of now */
#define IDENT_TOTP_B32_SIZE  33 /* base32 of 20 bytes (32 characters) + NUL */
#define IDENT_RECOVERY_CODES 10
#define IDENT_RECOVERY_BYTES 10 /* 80 random bits per recovery code */
#define IDENT_RECOVERY_SIZE  20 /* "xxxx-xxxx-xxxx-xxxx" + NUL */
#define IDENT_OTP_MAX        64 /* bytes of an "otp" field worth looking at */

/* ---- TOTP arithmetic (totp.c) --------------------------------------- */

/* HOTP (RFC 4226) of counter under key: the low `digits` decimal digits
 * (6 to 8) of the dynamically truncated HMAC-SHA-1. -EINVAL for bad
 * arguments. */
int ident_hotp(const uint8_t *key, size_t key_len, uint64_t counter, int digits,
	       uint32_t *ret_code);

/* Checks code (IDENT_TOTP_DIGITS decimal digits; spaces ignored) against
 * key at time now, within ±IDENT_TOTP_SKEW steps, refusing any step at or
 * before last_step (each code is accepted once). Every candidate is
 * computed and compared in constant time. 0 and *ret_step the matching
 * step; -EACCES when no step matches; -EINVAL when code is not digits. */
int ident_totp_check(const uint8_t *key, size_t key_len, const char *code, int64_t now,
		     int64_t last_step, int64_t *ret_step);

/* RFC 4648 base32 without padding, upper case. out must hold
 * ceil(len * 8 / 5) + 1 bytes; -E2BIG otherwise. */
int ident_base32(const uint8_t *in, size_t len, char *out, size_t out_size);

/* "otpauth://totp/bastion:USER?secret=B32&issuer=bastion&algorithm=SHA1&
 * digits=6&period=30", malloc'd. user is a valid user name (no escaping
 * needed: [A-Za-z0-9._-]). NULL when out of memory. */
char *ident_totp_uri(const char *user, const char *secret_b32);

/* Ten fresh recovery codes (xxxx-xxxx-xxxx-xxxx, base32 lower case, 80
 * random bits) into codes, and the SHA-256 of each as stored. */
void ident_recovery_generate(char codes[IDENT_RECOVERY_CODES][IDENT_RECOVERY_SIZE],
			     uint8_t hashes[IDENT_RECOVERY_CODES][32]);
/* The stored form of a typed recovery code: dashes and spaces dropped,
 * lower-cased, SHA-256. -EINVAL when what is left is not 16 base32
 * characters. */
int ident_recovery_hash(const char *typed, uint8_t ret_hash[32]);

/* ---- the policy (mfa.c) --------------------------------------------- */

/* What a user has enrolled, as the sign-in and the router read it. */
struct ident_mfa_factors {
	bool totp;         /* a confirmed TOTP key */
	bool totp_pending; /* enrolled but not confirmed */
	int recovery_left; /* unused recovery codes */
	int passkeys;      /* WebAuthn credentials (identity/webauthn.h) */
};
/* 0 and *ret (all false / 0 for a user without any), or a store error. */
int ident_mfa_factors(struct store *s, int64_t user_id, struct ident_mfa_factors *ret);

/* The second step of a password sign-in that needs one. The TOTP key
 * comes opened from the caller (NULL when the user has none). otp is what
 * the client sent: a TOTP code, or a recovery code. A TOTP step is marked
 * used in the store atomically, so that the same code is refused on every
 * instance afterwards; a recovery code is deleted as it is used.
 * 0: accepted (*ret_recovery true when it was a recovery code); -EACCES:
 * wrong, replayed or used; other negative codes: the store failed. */
int ident_mfa_check_otp(struct store *s, int64_t user_id, const uint8_t *totp_key, size_t key_len,
			const char *otp, int64_t now, bool *ret_recovery);

/* The OpenID Connect sign-in's question (for the oidc callback): a user
 * signed in by the provider, whose ID token carried amr (the "amr" claim's
 * strings, n of them; may be NULL) and acr (may be NULL). trust_amr is
 * oidc.trust_amr, mfa_acr oidc.mfa_acr (empty or NULL: none trusted by acr).
 * True when the provider's own second factor counts as bastion's: amr
 * holds "mfa", "otp", "hwk", "swk", "sc", "fpt", "face" or "pin" beside
 * something else (RFC 8176), or acr equals mfa_acr. False: bastion asks
 * its own (TOTP or a passkey), exactly as for a local user. */
bool ident_mfa_oidc_satisfied(bool trust_amr, const char *const *amr, size_t n, const char *acr,
			      const char *mfa_acr);

/* A browser session for user_id/name opened without a password (a
 * passkey sign-in): the same as ident_login's (ident.h). 0 or a store
 * error. */
struct ident_session;
int ident_mfa_session_open(struct store *s, int64_t user_id, const char *name,
			   struct ident_session *ret);

/* For the OIDC callback: once ident_mfa_oidc_satisfied() said the
 * provider's second factor counts, marks the browser session it opened
 * (sess, from ident_mfa_session_open or its OIDC equivalent) so that
 * auth.require_mfa does not restrict it. via names the proof ("oidc").
 * 0, -ENOENT (no such session) or a store error. */
int ident_mfa_session_mark(struct store *s, const struct ident_session *sess, const char *via);

/* What a browser session (or an API token) may do, as the router asks
 * it at every authenticated request. */
enum ident_mfa_gate {
	IDENT_MFA_OPEN,   /* everything its roles allow */
	IDENT_MFA_ENROL,  /* auth.require_mfa: only enrolling a second factor */
	IDENT_MFA_VERIFY, /* an OIDC sign-in waiting for bastion's own second
			   * factor: only POST /auth/mfa/verify (and sign-out) */
};
/* The gate of a request of user_id made with the browser session whose
 * SHA-256 is session_hash (NULL for an API token); require is
 * auth.require_mfa. A session marked pending (ident_mfa_session_pending)
 * is VERIFY whatever require says; otherwise ENROL as
 * ident_mfa_restricted describes. Fails closed (VERIFY, *ret_err set) on
 * a store error. */
enum ident_mfa_gate ident_mfa_gate(struct store *s, bool require, int64_t user_id,
				   const uint8_t *session_hash, int *ret_err);

/* The OpenID Connect callback's decision for a user it signed in. */
enum ident_oidc_mfa {
	IDENT_OIDC_MFA_NONE,     /* no second factor asked: the session is complete */
	IDENT_OIDC_MFA_PROVIDER, /* the provider's amr/acr counts: mark the
				  * session "oidc" */
	IDENT_OIDC_MFA_VERIFY,   /* the user has a confirmed TOTP key or a
				  * passkey: bastion asks it before the
				  * session is complete */
	IDENT_OIDC_MFA_ENROL,    /* no factor and auth.require_mfa: the
				  * restricted enrolment session */
};
/* The provider's claims first (ident_mfa_oidc_satisfied), then the
 * user's own factors, then auth.require_mfa (require). 0 and *ret, or a
 * store error. */
int ident_mfa_oidc_decide(struct store *s, bool require, int64_t user_id, bool trust_amr,
			  const char *const *amr, size_t n, const char *acr, const char *mfa_acr,
			  enum ident_oidc_mfa *ret);

/* Marks sess as waiting for bastion's own second factor (the gate
 * VERIFY). 0 or a store error. */
int ident_mfa_session_pending(struct store *s, const struct ident_session *sess);

/* auth.require_mfa's restriction: true when a request of user_id (made
 * with the browser session whose SHA-256 is session_hash, NULL for an API
 * token) must be answered 403 MfaEnrollmentRequired unless it is one of
 * the enrolment routes (require is the configured value): the user has no
 * TOTP key and no passkey, and the session is not marked by
 * ident_mfa_session_mark. Fails closed to "restricted" on a store error
 * (*ret_err set then). */
bool ident_mfa_restricted(struct store *s, bool require, int64_t user_id,
			  const uint8_t *session_hash, int *ret_err);
