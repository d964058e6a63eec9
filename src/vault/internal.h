/* Private to src/vault: the shared state of keys.c and secrets.c. */
#pragma once

#include "vault/vault.h"

/* Read lock on the master key for the duration of one operation. */
void vault_lock_read(struct vault *v);
void vault_unlock(struct vault *v);

/* The data key of vault_id into dk (the caller wipes it with
 * sodium_memzero). With create, a vault without one gets a new random key,
 * stored wrapped (the caller must be inside a store transaction).
 * -ENOENT: no key (or, with create, no such vault); -BERR_INTEGRITY: the
 * wrapped key does not open. The caller holds the read lock. */
int vault_data_key(struct vault *v, struct store *s, const char *vault_id, bool create,
		   uint8_t dk[VAULT_KEY_BYTES]);

/* "user:x" audit helper: detail is a JSON object built from the pairs. */
int vault_audit(struct store *s, const char *principal, const char *action, const char *target,
		const char *result, const char *vault_id, const char *name, const char *version,
		const char *via);
