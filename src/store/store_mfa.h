/* Store: second factors (identity/mfa.h) — a user's TOTP key (sealed by
 * the caller: the store only keeps the blob), the last TOTP step accepted,
 * and the hashes of unused recovery codes. Rows go with their user. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

#define STORE_MFA_SEALED_MAX 256 /* bytes of a sealed TOTP key */

struct store_mfa {
	uint8_t *totp_sealed; /* malloc'd (ciphertext); free() it */
	size_t totp_sealed_len;
	bool totp_confirmed;
	int64_t totp_last_step; /* the newest step accepted; 0: none yet */
	int64_t recovery_left;  /* unused recovery codes */
	int64_t passkeys;       /* WebAuthn credentials registered */
	int64_t created_at;
};

/* The user's TOTP row and recovery count. -ENOENT when the user has no TOTP
 * key (recovery_left is then still filled: 0). */
int store_mfa_get(struct store *s, int64_t user_id, struct store_mfa *ret);
/* Enrols a new, unconfirmed TOTP key (replacing an unconfirmed one).
 * -EEXIST when a confirmed key exists (remove it first), -ENOENT when the
 * user does not exist, -EINVAL when the blob is empty or too long. */
int store_mfa_totp_put(struct store *s, int64_t user_id, const uint8_t *sealed, size_t len);
/* Atomically: confirms the pending key with its first accepted step and
 * replaces the recovery codes with n hashes (32 bytes each, hashes[i*32]).
 * -ENOENT: nothing pending (no key, or already confirmed). */
int store_mfa_totp_confirm(struct store *s, int64_t user_id, int64_t step, const uint8_t *hashes,
			   int n);
/* Marks step used if it is newer than the last accepted one: 0, or
 * -EALREADY (that step or a later one was already used: a replay),
 * -ENOENT (no confirmed key). Atomic across instances. */
int store_mfa_totp_use(struct store *s, int64_t user_id, int64_t step);
/* Uses one recovery code: 0 (it is deleted) or -ENOENT (unknown or used). */
int store_mfa_recovery_use(struct store *s, int64_t user_id, const uint8_t hash[32]);
/* Removes the TOTP key and every recovery code, and with passkeys every
 * passkey too (an Owner's reset); *ret_removed (may be NULL) is 1 when
 * something of that went. */
int store_mfa_delete(struct store *s, int64_t user_id, bool passkeys, int *ret_removed);

/* ---- passkeys (identity/webauthn.h) ---- */

#define STORE_WA_ID_MAX 1023
#define STORE_WA_PK_MAX 64

struct store_wa_cred {
	uint8_t id[STORE_WA_ID_MAX];
	size_t id_len;
	int64_t user_id;
	int64_t alg; /* COSE: -7 ES256, -8 EdDSA */
	uint8_t pk[STORE_WA_PK_MAX];
	size_t pk_len;
	int64_t sign_count;
	int64_t created_at;
};

/* Registers a credential for c->user_id. -EEXIST: that ID is registered
 * (to anyone); -ENOENT: no such user; -EINVAL: sizes. */
int store_wa_cred_add(struct store *s, const struct store_wa_cred *c);
/* The credential with that ID, or -ENOENT. */
int store_wa_cred_get(struct store *s, const uint8_t *id, size_t id_len, struct store_wa_cred *ret);
/* Calls fn for each credential of user_id (oldest first); fn returning
 * non-zero stops (a negative value is returned). */
int store_wa_cred_foreach(struct store *s, int64_t user_id,
			  int (*fn)(const struct store_wa_cred *c, void *ud), void *ud);
/* Moves the stored sign count from seen_before to count, atomically:
 * -EALREADY when another sign-in changed it meanwhile, -ENOENT when gone. */
int store_wa_cred_count_set(struct store *s, const uint8_t *id, size_t id_len, int64_t seen_before,
			    int64_t count);
/* A challenge handed to a browser, for purpose ("register", "login"),
 * bound to user_id (0: none yet), until expires_at. Expired ones are
 * purged on the way. */
int store_wa_challenge_add(struct store *s, const uint8_t challenge[32], int64_t user_id,
			   const char *purpose, int64_t expires_at);
/* Takes (deletes) a live challenge of purpose: 0 and its user in
 * *ret_user_id, or -ENOENT (unknown, used, expired, other purpose). Single
 * use across instances: the delete decides. */
int store_wa_challenge_take(struct store *s, const uint8_t challenge[32], const char *purpose,
			    int64_t now, int64_t *ret_user_id);

/* ---- sessions whose second factor was proven elsewhere ---- */

/* Marks the browser session with SHA-256 hash as having passed a second
 * factor outside bastion (via: "oidc"); the mark goes with the session.
 * -ENOENT: no such session. */
int store_login_mfa_mark(struct store *s, const uint8_t hash[32], const char *via);
/* 0 when the session is marked, -ENOENT when not. */
int store_login_mfa_marked(struct store *s, const uint8_t hash[32]);
/* The mark's via (at most 16 bytes) into ret_via: 0, or -ENOENT when the
 * session is not marked. via "pending" (STORE_MFA_PENDING) marks a
 * session that must still pass bastion's own second factor. */
#define STORE_MFA_PENDING "pending"
int store_login_mfa_via(struct store *s, const uint8_t hash[32], char ret_via[17]);
