/* Store: the vault's rows (migration "vault"): the master-key check value,
 * each vault's wrapped data key, secrets with their sealed versions, and
 * access policies. Nothing here sees a plaintext: blobs are sealed by
 * vault/ before they arrive and opened by vault/ after they leave.
 *
 * Every row belongs to a vault resource (/groups/g/vaults/v) and goes with
 * it (ON DELETE CASCADE); a policy also goes with its user (a trigger on
 * users), so that a later user of the same name inherits nothing.
 *
 * Writes join the caller's transaction when one is open (store_res_tx);
 * run related writes inside one. Errors as in store.h; blobs returned
 * through ret_* are malloc'd (free them; they are ciphertext). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

#define STORE_SECRET_VERSION_SIZE 33 /* 32 hex digits + NUL */
#define STORE_CONTENT_TYPE_SIZE   256

/* Small named blobs (the master-key check value). -ENOENT if absent. */
int store_vault_meta_get(struct store *s, const char *name, uint8_t **ret, size_t *ret_len);
int store_vault_meta_put(struct store *s, const char *name, const uint8_t *v, size_t len);

/* A vault's wrapped data key. Get: -ENOENT if the vault has none yet.
 * Add: -EEXIST if it has one, -ENOENT if the vault resource is missing.
 * Update: -ENOENT if it has none. */
int store_vault_key_get(struct store *s, const char *vault_id, uint8_t **ret, size_t *ret_len);
int store_vault_key_add(struct store *s, const char *vault_id, const uint8_t *w, size_t len);
int store_vault_key_update(struct store *s, const char *vault_id, const uint8_t *w, size_t len);
/* Each wrapped data key, in vault_id order; fn returning non-zero stops. */
int store_vault_key_foreach(struct store *s,
			    int (*fn)(const char *vault_id, const uint8_t *w, size_t len, void *ud),
			    void *ud);

/* A secret's state. deleted_at is 0 for a live secret; purge_at is when a
 * soft-deleted one goes for good. version is the newest version. */
struct store_secret {
	char name[65];
	char version[STORE_SECRET_VERSION_SIZE];
	char content_type[STORE_CONTENT_TYPE_SIZE];
	int64_t created_at, updated_at, deleted_at, purge_at;
	int64_t n_versions;
};

/* One version of a secret; sealed only from store_secret_version_get. */
struct store_secret_version {
	char version[STORE_SECRET_VERSION_SIZE];
	char content_type[STORE_CONTENT_TYPE_SIZE];
	int64_t seq, created_at;
	uint8_t *sealed; /* malloc'd */
	size_t sealed_len;
};

/* -ENOENT if there is no such secret (live or soft-deleted). */
int store_secret_get(struct store *s, const char *vault_id, const char *name,
		     struct store_secret *ret);
/* Live and soft-deleted secrets of a vault. */
int store_secret_count(struct store *s, const char *vault_id, int64_t *ret);
/* Adds a version to a live secret, creating the secret when absent.
 * -EEXIST when the name is soft-deleted. content_type may be NULL. */
int store_secret_add_version(struct store *s, const char *vault_id, const char *name,
			     const char *version, const char *content_type, const uint8_t *sealed,
			     size_t sealed_len);
/* A version of a live secret (version NULL: the newest). -ENOENT when the
 * secret is missing or soft-deleted, or has no such version. Free
 * ret->sealed. */
int store_secret_version_get(struct store *s, const char *vault_id, const char *name,
			     const char *version, struct store_secret_version *ret);
/* Each secret of a vault in name order: live ones, or (deleted) the
 * soft-deleted ones. */
int store_secret_foreach(struct store *s, const char *vault_id, bool deleted,
			 int (*fn)(const struct store_secret *sec, void *ud), void *ud);
/* Each version of a secret, newest first (sealed is NULL). */
int store_secret_versions_foreach(struct store *s, const char *vault_id, const char *name,
				  int (*fn)(const struct store_secret_version *v, void *ud),
				  void *ud);
/* Soft delete (-ENOENT unless live), recover (-ENOENT unless soft-
 * deleted), purge (-ENOENT if absent; removes every version). */
int store_secret_soft_delete(struct store *s, const char *vault_id, const char *name, int64_t now,
			     int64_t purge_at);
int store_secret_recover(struct store *s, const char *vault_id, const char *name);
int store_secret_purge(struct store *s, const char *vault_id, const char *name);
/* Purges the soft-deleted secrets whose purge_at <= now; vault_id NULL:
 * of every vault. */
int store_secret_purge_expired(struct store *s, const char *vault_id, int64_t now);

/* Access policies: permissions is a bit set owned by vault/ (VAULT_PERM_*).
 * Get: -ENOENT if the principal has no policy on the vault. Put: -ENOENT
 * if the vault resource is missing. */
int store_vault_policy_get(struct store *s, const char *vault_id, const char *principal,
			   unsigned *ret_permissions);
int store_vault_policy_put(struct store *s, const char *vault_id, const char *principal,
			   unsigned permissions, bool *ret_created);
int store_vault_policy_delete(struct store *s, const char *vault_id, const char *principal);
int store_vault_policy_foreach(struct store *s, const char *vault_id,
			       int (*fn)(const char *principal, unsigned permissions, void *ud),
			       void *ud);

/* ---- deleted vaults (sqlite_vaultdel.c) ----
 * Deleting a vault resource (store_res_delete) keeps its data key, secrets,
 * versions and policies for its soft_delete_retention_days (default
 * STORE_VAULT_DEFAULT_RETENTION_DAYS, the same as vault.h's), during which
 * its ID is reserved: a store_res_put of a vault with that ID answers
 * -EEXIST. Expired ones are purged on the next look. */
#define STORE_VAULT_DEFAULT_RETENTION_DAYS 7

struct store_deleted_vault {
	char id[320];
	char group[65];
	char name[65];
	int64_t created_at, deleted_at, purge_at;
	int64_t n_secrets; /* live and soft-deleted secrets it held */
};

/* The deleted vaults of group in name order; fn returning non-zero stops. */
int store_vault_deleted_foreach(struct store *s, const char *group, int64_t now,
				int (*fn)(const struct store_deleted_vault *d, void *ud), void *ud);
/* -ENOENT when vault_id is no deleted vault (or its retention ran out). */
int store_vault_deleted_get(struct store *s, const char *vault_id, int64_t now,
			    struct store_deleted_vault *ret);
/* Moves a deleted vault back, whole, under its ID. -ENOENT: no such deleted
 * vault; -EEXIST: a resource of that ID exists; -ESRCH: its group is gone. */
int store_vault_recover(struct store *s, const char *vault_id, int64_t now);
/* Destroys a deleted vault for good. -ENOENT if there is none. */
int store_vault_purge_deleted(struct store *s, const char *vault_id);
/* Purges the deleted vaults whose retention ended at or before now. */
int store_vault_deleted_expire(struct store *s, int64_t now);
