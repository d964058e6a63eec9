/* The vault: encryption at rest for secrets, per-vault data keys, the
 * instance's master key, and access policies (docs/vault.md, docs/access-control.md).
 *
 * Keys: the master key is 32 random bytes in a file (DATA/master.key or
 * --master-key-file, mode 0600). Each vault has its own 32-byte data key,
 * stored wrapped: sealed with the master key, associated data the vault's
 * ID. Each secret version is sealed with its vault's data key, associated
 * data "<vault ID>/secrets/<name>/<version>", so a row copied onto another
 * secret, version or vault fails to open. Sealing is XChaCha20-Poly1305
 * (libsodium) with a random 24-byte nonce; a blob is
 *   0x01 | nonce (24) | ciphertext | tag (16).
 * A blob that fails to open is -BERR_INTEGRITY: never garbage.
 *
 * Plaintext keys live in sodium_malloc'd memory (the master key) or stack
 * buffers wiped before return (data keys); values leave this module only in
 * a struct vault_value, whose buffer is sodium_malloc'd and wiped on free.
 *
 * Thread model: a struct vault is shared by every worker thread. Each
 * operation holds a read lock on the master key for its whole store work;
 * vault_rotate() holds the write lock, so no operation ever sees the store
 * and the key out of step. Lock order: this lock, then a store transaction. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct vault;

#define VAULT_KEY_BYTES              32
#define VAULT_VERSION_SIZE           33 /* 32 hex digits + NUL */
#define VAULT_MAX_VALUE              (32 * 1024)
#define VAULT_MAX_CONTENT_TYPE       255
#define VAULT_MAX_SECRETS            4096 /* per vault, live and soft-deleted */
#define VAULT_MAX_VERSIONS           256  /* per secret */
#define VAULT_DEFAULT_RETENTION_DAYS 7

/* Access-policy permissions on secrets (docs/access-control.md "Vault
 * access policies"). */
enum {
	VAULT_PERM_LIST = 1u << 0,
	VAULT_PERM_GET = 1u << 1,
	VAULT_PERM_SET = 1u << 2,
	VAULT_PERM_DELETE = 1u << 3,
	/* Connect with a secret (a vault-key) without reading its value:
	 * "the key never reaches the user" enforced, not only promised. */
	VAULT_PERM_USE = 1u << 4,
	VAULT_PERM_ALL = 0x1fu,
};

/* "list", "get", "set", "delete", "use" for one bit; NULL otherwise. */
const char *vault_perm_name(unsigned perm);
/* One name to its bit; -EINVAL for anything else (case-sensitive). */
int vault_perm_parse(const char *name, unsigned *ret);

/* ---- sealing (exposed for tests and for the key file) ---- */

#define VAULT_SEAL_OVERHEAD (1 + 24 + 16)

/* Seals len bytes of pt under key with associated data ad (a string).
 * *ret_blob is malloc'd (it is ciphertext). */
int vault_seal(const uint8_t key[VAULT_KEY_BYTES], const char *ad, const uint8_t *pt, size_t len,
	       uint8_t **ret_blob, size_t *ret_len);
/* Opens a blob into out (out_size >= blob_len - VAULT_SEAL_OVERHEAD);
 * -BERR_INTEGRITY if it was altered, sealed under another key or with
 * other associated data. out is wiped on failure. */
int vault_unseal(const uint8_t key[VAULT_KEY_BYTES], const char *ad, const uint8_t *blob,
		 size_t blob_len, uint8_t *out, size_t out_size, size_t *ret_len);

/* ---- the instance ---- */

/* Loads the master key from key_file (NULL: DATA_DIR/master.key), creating
 * it (32 random bytes, 0600, O_EXCL) when it does not exist and the store
 * holds no vault data yet, and checks it against the store. Completes a
 * rotation that was interrupted after its commit (key_file.new).
 * Errors, with *ret_reason a static sentence for the operator:
 *   -EPERM  the file is readable or writable by group or others
 *   -EINVAL the file is not a regular file of exactly 32 bytes
 *   -ENOENT the file is missing but the store holds vault data
 *   -BERR_INTEGRITY the key is not the one the store's data was sealed with
 *   others: I/O or store errors. */
int vault_open(struct store *s, const char *data_dir, const char *key_file, struct vault **ret,
	       const char **ret_reason);
void vault_free(struct vault *v);

/* Replaces the master key: a new random key is written to key_file.new,
 * every data key (and every recording's key: a key that does not open is
 * left as it is and logged) is re-wrapped and the check value replaced in one store
 * transaction, the new file is renamed over the old one, and the key in
 * memory is swapped; operations wait meanwhile (milliseconds). *ret_count
 * is the number of data keys re-wrapped. A crash at any point leaves a
 * state vault_open() recovers. -BERR_INTEGRITY if a wrapped data key does
 * not open (nothing changes then). Audited as "vault.rotate-master-key"
 * for principal in the same transaction. */
int vault_rotate(struct vault *v, struct store *s, const char *principal, int64_t *ret_count);

/* ---- other modules' keys, wrapped by the master key ---- */

/* Seals a small key another module stores (a recording's sealing key,
 * terminal/record.h) with the master key, associated data ad: *ret_blob
 * malloc'd, VAULT_SEAL_OVERHEAD longer than pt. vault_unwrap opens it
 * (-BERR_INTEGRITY when altered or under another key). vault_rotate
 * re-wraps recordings' keys too: their ad must be VAULT_AD_RECORDING
 * followed by the recording's ID. */
#define VAULT_AD_RECORDING "bastion:recording:"
int vault_wrap(struct vault *v, const char *ad, const uint8_t *pt, size_t len, uint8_t **ret_blob,
	       size_t *ret_len);
int vault_unwrap(struct vault *v, const char *ad, const uint8_t *blob, size_t blob_len,
		 uint8_t *out, size_t out_size, size_t *ret_len);

/* ---- secrets ---- */

struct vault_value {
	char *data; /* sodium_malloc'd, len bytes plus a NUL; wiped on free */
	size_t len;
	char version[VAULT_VERSION_SIZE];
	char content_type[VAULT_MAX_CONTENT_TYPE + 1];
	int64_t created_at;
};
void vault_value_free(struct vault_value *val);

/* Seals value as a new version of secret name of vault_id, creating the
 * vault's data key on first use, and records the audit entry
 * "secret.set" for principal, all in one transaction. The version's ID is
 * written to ret_version. -ENOENT: the vault does not exist; -EEXIST: the
 * name is soft-deleted (recover or purge it first); -E2BIG: a limit
 * (VAULT_MAX_*). */
int vault_secret_set(struct vault *v, struct store *s, const char *principal, const char *vault_id,
		     const char *name, const char *value, size_t len, const char *content_type,
		     char ret_version[VAULT_VERSION_SIZE]);

/* Opens a version of a live secret (version NULL: the newest) and records
 * the read ("secret.get": principal, vault, secret, version, via) before
 * handing it out; a read that cannot be audited fails. -ENOENT when the
 * secret is missing or soft-deleted or has no such version;
 * -BERR_INTEGRITY when the stored blob or the vault's data key fails to
 * open. */
int vault_secret_read(struct vault *v, struct store *s, const char *principal, const char *via,
		      const char *vault_id, const char *name, const char *version,
		      struct vault_value **ret);

/* Soft delete with a recovery window of retention_days; recover; purge.
 * Each audited ("secret.delete", "secret.recover", "secret.purge"). */
int vault_secret_delete(struct store *s, const char *principal, const char *vault_id,
			const char *name, int retention_days);
int vault_secret_recover(struct store *s, const char *principal, const char *vault_id,
			 const char *name);
int vault_secret_purge(struct store *s, const char *principal, const char *vault_id,
		       const char *name);

/* ---- access policies ---- */

/* 0 if principal's policy on vault_id grants perm, -EACCES if not (no
 * policy, or one without that bit), or a store error. */
int vault_policy_check(struct store *s, const char *vault_id, const char *principal, unsigned perm);
/* 0 when principal's policy grants at least one of the bits in any
 * (connect: get or use), -EACCES otherwise, or a store error. */
int vault_policy_check_any(struct store *s, const char *vault_id, const char *principal,
			   unsigned any);

/* ---- the MFA key: sealing TOTP keys (identity/mfa.h) ----
 * Seals or opens with a data key of its own (created on first use,
 * wrapped by the master key, re-wrapped by vault_rotate), associated data
 * ad (e.g. "mfa/totp/<user id>"). Errors as vault_seal/vault_unseal;
 * opening before any key exists is -BERR_INTEGRITY. */
int vault_mfa_seal(struct vault *v, struct store *s, const char *ad, const uint8_t *pt, size_t len,
		   uint8_t **ret_blob, size_t *ret_len);
int vault_mfa_open(struct vault *v, struct store *s, const char *ad, const uint8_t *blob,
		   size_t blob_len, uint8_t *out, size_t out_size, size_t *ret_len);
