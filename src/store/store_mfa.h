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
/* Removes the TOTP key and every recovery code; *ret_removed (may be NULL)
 * is 1 when there was a key. */
int store_mfa_delete(struct store *s, int64_t user_id, int *ret_removed);
