/* Secrets and access policies: sealing a value as a new version, opening
 * one (audited), soft delete, recover, purge, and the policy check.
 *
 * Decisions:
 * - Version IDs are 32 random hex digits (as Key Vault's), not counters:
 *   they do not tell how often a secret changed, and a client cannot guess
 *   the next one.
 * - A soft-deleted secret keeps its name: setting it answers -EEXIST until
 *   it is recovered or purged (Key Vault answers 409 too). Once its
 *   recovery window has passed it is purged by the next write to the vault.
 * - Every read of a value is audited before the value is handed out; when
 *   the audit record cannot be written the read fails. */
#include "vault/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "core/err.h"
#include "core/util.h"
#include "store/store.h"
#include "store/store_vault.h"

static const char *const perm_names[] = { "list", "get", "set", "delete", "use" };

const char *vault_perm_name(unsigned perm)
{
	for (unsigned i = 0; i < sizeof(perm_names) / sizeof(perm_names[0]); i++)
		if (perm == 1u << i)
			return perm_names[i];
	return NULL;
}

int vault_perm_parse(const char *name, unsigned *ret)
{
	for (unsigned i = 0; name && i < sizeof(perm_names) / sizeof(perm_names[0]); i++) {
		if (strcmp(name, perm_names[i]) == 0) {
			*ret = 1u << i;
			return 0;
		}
	}
	return -EINVAL;
}

/* The associated data of a version: its full ID. */
static int version_ad(char *out, size_t size, const char *vault_id, const char *name,
		      const char *version)
{
	int n = snprintf(out, size, "%s/secrets/%s/%s", vault_id, name, version);

	return n > 0 && (size_t)n < size ? 0 : -EINVAL;
}

int vault_audit(struct store *s, const char *principal, const char *action, const char *target,
		const char *result, const char *vault_id, const char *name, const char *version,
		const char *via)
{
	json_t *d = json_object();
	char *text = NULL;
	int r = -ENOMEM;

	if (!d)
		return -ENOMEM;
	if ((vault_id && json_object_set_new(d, "vault", json_string(vault_id)) < 0) ||
	    (name && json_object_set_new(d, "secret", json_string(name)) < 0) ||
	    (version && json_object_set_new(d, "version", json_string(version)) < 0) ||
	    (via && json_object_set_new(d, "via", json_string(via)) < 0))
		goto out;
	if (!(text = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS)))
		goto out;
	r = store_audit(s, principal, action, target, result, text);
out:
	free(text);
	json_decref(d);
	return r;
}

static void secret_target(char *out, size_t size, const char *vault_id, const char *name)
{
	snprintf(out, size, "%s/secrets/%s", vault_id, name);
}

/* ---- set ---- */

struct set_op {
	struct vault *v;
	const char *principal, *vault_id, *name, *content_type;
	const char *value;
	size_t len;
	char version[VAULT_VERSION_SIZE];
};

static int set_tx(struct store *s, void *ud)
{
	struct set_op *o = ud;
	uint8_t dk[VAULT_KEY_BYTES], rnd[16], *blob = NULL;
	char ad[512], target[300];
	struct store_secret cur;
	int64_t count = 0;
	size_t blob_len = 0;
	int r;

	if ((r = store_secret_purge_expired(s, o->vault_id, store_now())) < 0)
		return r;
	r = store_secret_get(s, o->vault_id, o->name, &cur);
	if (r == 0 && cur.deleted_at)
		return -EEXIST;
	if (r == 0 && cur.n_versions >= VAULT_MAX_VERSIONS)
		return -E2BIG;
	if (r == -ENOENT) {
		if ((r = store_secret_count(s, o->vault_id, &count)) < 0)
			return r;
		if (count >= VAULT_MAX_SECRETS)
			return -E2BIG;
	} else if (r < 0) {
		return r;
	}
	randombytes_buf(rnd, sizeof(rnd));
	util_hex(rnd, sizeof(rnd), o->version);
	if ((r = version_ad(ad, sizeof(ad), o->vault_id, o->name, o->version)) < 0)
		return r;
	if ((r = vault_data_key(o->v, s, o->vault_id, true, dk)) < 0)
		return r;
	r = vault_seal(dk, ad, (const uint8_t *)o->value, o->len, &blob, &blob_len);
	sodium_memzero(dk, sizeof(dk));
	if (r < 0)
		return r;
	r = store_secret_add_version(s, o->vault_id, o->name, o->version, o->content_type, blob,
				     blob_len);
	free(blob);
	if (r < 0)
		return r;
	secret_target(target, sizeof(target), o->vault_id, o->name);
	return vault_audit(s, o->principal, "secret.set", target, "set", o->vault_id, o->name,
			   o->version, NULL);
}

int vault_secret_set(struct vault *v, struct store *s, const char *principal, const char *vault_id,
		     const char *name, const char *value, size_t len, const char *content_type,
		     char ret_version[VAULT_VERSION_SIZE])
{
	struct set_op o = { .v = v,
			    .principal = principal,
			    .vault_id = vault_id,
			    .name = name,
			    .content_type = content_type,
			    .value = value,
			    .len = len };
	json_t *vault = NULL;
	int r;

	if (len > VAULT_MAX_VALUE)
		return -E2BIG;
	if ((r = store_res_get(s, vault_id, &vault)) < 0)
		return r;
	json_decref(vault);
	vault_lock_read(v);
	r = store_res_tx(s, set_tx, &o);
	vault_unlock(v);
	if (r == 0)
		memcpy(ret_version, o.version, VAULT_VERSION_SIZE);
	return r;
}

/* ---- read ---- */

void vault_value_free(struct vault_value *val)
{
	if (!val)
		return;
	sodium_free(val->data); /* wipes */
	sodium_memzero(val, sizeof(*val));
	free(val);
}

int vault_secret_read(struct vault *v, struct store *s, const char *principal, const char *via,
		      const char *vault_id, const char *name, const char *version,
		      struct vault_value **ret)
{
	struct store_secret_version sv = { 0 };
	struct vault_value *val = NULL;
	uint8_t dk[VAULT_KEY_BYTES];
	char ad[512], target[300];
	size_t cap;
	int r;

	vault_lock_read(v);
	if ((r = store_secret_version_get(s, vault_id, name, version, &sv)) < 0)
		goto out;
	r = -BERR_INTEGRITY;
	if (sv.sealed_len < VAULT_SEAL_OVERHEAD)
		goto out;
	cap = sv.sealed_len - VAULT_SEAL_OVERHEAD;
	r = -ENOMEM;
	if (!(val = calloc(1, sizeof(*val))) || !(val->data = sodium_malloc(cap + 1)))
		goto out;
	if ((r = version_ad(ad, sizeof(ad), vault_id, name, sv.version)) < 0)
		goto out;
	/* A vault whose secrets exist always has a data key: its absence is
	 * damage too. */
	r = vault_data_key(v, s, vault_id, false, dk);
	if (r == -ENOENT)
		r = -BERR_INTEGRITY;
	if (r < 0)
		goto out;
	r = vault_unseal(dk, ad, sv.sealed, sv.sealed_len, (uint8_t *)val->data, cap, &val->len);
	sodium_memzero(dk, sizeof(dk));
	if (r < 0)
		goto out;
	val->data[val->len] = '\0';
	memcpy(val->version, sv.version, sizeof(val->version));
	util_strlcpy(val->content_type, sv.content_type, sizeof(val->content_type));
	val->created_at = sv.created_at;
	secret_target(target, sizeof(target), vault_id, name);
	if ((r = vault_audit(s, principal, "secret.get", target, "read", vault_id, name, sv.version,
			     via)) < 0)
		goto out;
	*ret = val;
	val = NULL;
out:
	vault_unlock(v);
	vault_value_free(val);
	free(sv.sealed);
	return r;
}

/* ---- delete, recover, purge ---- */

struct life_op {
	const char *principal, *vault_id, *name;
	int retention_days;
	int kind; /* 0 delete, 1 recover, 2 purge */
};

static int life_tx(struct store *s, void *ud)
{
	static const char *const actions[] = { "secret.delete", "secret.recover", "secret.purge" };
	static const char *const results[] = { "deleted", "recovered", "purged" };
	struct life_op *o = ud;
	char target[300];
	int64_t now = store_now();
	int r;

	if ((r = store_secret_purge_expired(s, o->vault_id, now)) < 0)
		return r;
	switch (o->kind) {
	case 0:
		r = store_secret_soft_delete(s, o->vault_id, o->name, now,
					     now + (int64_t)o->retention_days * 86400);
		break;
	case 1:
		r = store_secret_recover(s, o->vault_id, o->name);
		break;
	default:
		r = store_secret_purge(s, o->vault_id, o->name);
		break;
	}
	if (r < 0)
		return r;
	secret_target(target, sizeof(target), o->vault_id, o->name);
	return vault_audit(s, o->principal, actions[o->kind], target, results[o->kind], o->vault_id,
			   o->name, NULL, NULL);
}

static int life(struct store *s, struct life_op *o)
{
	return store_res_tx(s, life_tx, o);
}

int vault_secret_delete(struct store *s, const char *principal, const char *vault_id,
			const char *name, int retention_days)
{
	struct life_op o = { principal, vault_id, name, retention_days, 0 };

	return life(s, &o);
}

int vault_secret_recover(struct store *s, const char *principal, const char *vault_id,
			 const char *name)
{
	struct life_op o = { principal, vault_id, name, 0, 1 };

	return life(s, &o);
}

int vault_secret_purge(struct store *s, const char *principal, const char *vault_id,
		       const char *name)
{
	struct life_op o = { principal, vault_id, name, 0, 2 };

	return life(s, &o);
}

/* ---- policies ---- */

int vault_policy_check(struct store *s, const char *vault_id, const char *principal, unsigned perm)
{
	unsigned have = 0;
	int r = store_vault_policy_get(s, vault_id, principal, &have);

	if (r == -ENOENT)
		return -EACCES;
	if (r < 0)
		return r;
	return (have & perm) == perm ? 0 : -EACCES;
}

int vault_policy_check_any(struct store *s, const char *vault_id, const char *principal,
			   unsigned any)
{
	unsigned have = 0;
	int r = store_vault_policy_get(s, vault_id, principal, &have);

	if (r == -ENOENT)
		return -EACCES;
	if (r < 0)
		return r;
	return (have & any) != 0 ? 0 : -EACCES;
}
