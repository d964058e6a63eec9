/* Vault data plane and access policies (docs/vault.md), on a worker:
 *
 *   GET    /groups/{g}/vaults/{v}/secrets[?deleted=true]        list
 *   PUT    /groups/{g}/vaults/{v}/secrets/{name}                set
 *   GET    /groups/{g}/vaults/{v}/secrets/{name}[?version=V]    get
 *   DELETE /groups/{g}/vaults/{v}/secrets/{name}[?purge=true]   delete / purge
 *   POST   /groups/{g}/vaults/{v}/secrets/{name}/recover        recover
 *   GET    /groups/{g}/vaults/{v}/secrets/{name}/versions       versions
 *   PUT|GET|DELETE /groups/{g}/vaults/{v}/access-policies/{principal}
 *   GET    /groups/{g}/vaults/{v}/access-policies
 *   POST   /vault/rotate-master-key                             Owner at /
 *
 * The vault resource itself (PUT/GET/DELETE /groups/{g}/vaults/{v}) is a
 * resource type like any other (resources.c, validate.c).
 *
 * Who may do what:
 * - Secrets (the data plane) only through the caller's access policy:
 *   list, get, set, delete (recover needs delete). Roles give nothing here,
 *   so an Owner without a get policy cannot read a value: 403
 *   VaultAccessDenied "get on secrets of ID is required". A caller who may
 *   read the vault (Reader) is told when it does not exist (404); anyone
 *   else gets the same 403 for a missing vault as for a refused one.
 * - Purge: Owner on the vault (a recovery window is a safety net that only
 *   the vault's owner may cut short).
 * - Access policies: Owner on the vault to change them, Reader to see them.
 *
 * Values are never logged; the copy jansson parsed from a PUT body is
 * wiped before it is freed. */
#include "api/api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "api/validate.h"
#include "authz/authz.h"
#include "core/err.h"
#include "core/log.h"
#include "core/util.h"
#include "store/store.h"
#include "store/store_vault.h"
#include "vault/vault.h"

#define PRINCIPAL_SIZE 80
#define SECRET_ID_SIZE (VAL_ID_SIZE + 9 + VAL_NAME_SIZE)

struct vreq {
	char vault_id[VAL_ID_SIZE];
	char secret_id[SECRET_ID_SIZE];
	const char *name; /* secret name (seg[5]) or NULL */
	char principal[PRINCIPAL_SIZE];
};

/* ---- helpers ---- */

/* Fills x from the path; with_name requires seg[5]. False (and answers
 * 404) when the path cannot name one. */
static bool vault_path(struct api_call *c, struct vreq *x, bool with_name)
{
	memset(x, 0, sizeof(*x));
	if (c->nseg < 5 || !val_name(c->seg[1]) || !val_name(c->seg[3])) {
		api_error(c->resp, 404, "ResourceNotFound", "no such vault");
		return false;
	}
	snprintf(x->vault_id, sizeof(x->vault_id), "/groups/%s/vaults/%s", c->seg[1], c->seg[3]);
	if (with_name) {
		if (c->nseg < 6 || !val_name(c->seg[5])) {
			api_error(
				c->resp, 404, "SecretNotFound",
				"no such secret: names are 1 to 64 characters: letters, digits, '.', "
				"'_' and '-', starting with a letter or digit");
			return false;
		}
		x->name = c->seg[5];
		snprintf(x->secret_id, sizeof(x->secret_id), "%s/secrets/%s", x->vault_id, x->name);
	}
	snprintf(x->principal, sizeof(x->principal), "user:%s", c->who->name);
	return true;
}

/* The value of key in a raw query string, percent-decoded into out: 1
 * found, 0 absent, -EINVAL malformed or too long. */
static int query_get(const char *query, const char *key, char *out, size_t size)
{
	size_t klen = strlen(key);

	for (const char *p = query; p && *p;) {
		size_t n = strcspn(p, "&");

		if (n > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
			size_t vlen = n - klen - 1;

			if (vlen >= size)
				return -EINVAL;
			memcpy(out, p + klen + 1, vlen);
			out[vlen] = '\0';
			return util_pct_decode(out) < 0 ? -EINVAL : 1;
		}
		p += n;
		if (*p == '&')
			p++;
	}
	return 0;
}

/* A boolean query flag: "true" or "false" (absent: false). */
static int query_flag(struct api_call *c, const char *key, bool *ret)
{
	char v[8];
	int r = query_get(c->req->query, key, v, sizeof(v));

	if (r == 0) {
		*ret = false;
		return 0;
	}
	if (r < 0 || (strcmp(v, "true") != 0 && strcmp(v, "false") != 0)) {
		api_error(c->resp, 400, "InvalidRequest", "%s: must be true or false", key);
		return -EINVAL;
	}
	*ret = strcmp(v, "true") == 0;
	return 0;
}

static bool valid_version(const char *v)
{
	size_t n = 0;

	for (; v[n]; n++)
		if (!((v[n] >= '0' && v[n] <= '9') || (v[n] >= 'a' && v[n] <= 'f')))
			return false;
	return n == VAULT_VERSION_SIZE - 1;
}

/* Answers the error of a role check on scope. */
static bool require_role(struct api_call *c, enum authz_role role, const char *scope)
{
	int r = authz_require(c->ctx->store, c->who, role, scope);

	if (r == 0)
		return true;
	if (r == -EACCES)
		api_error(c->resp, 403, "AuthorizationFailed", "%s on %s is required",
			  authz_role_name(role), scope);
	else
		api_store_error(c->resp, r, scope);
	return false;
}

/* The data-plane check: the caller's access policy on the vault must grant
 * perm. Refused reads of a value are audited too. */
static bool data_access(struct api_call *c, const struct vreq *x, unsigned perm)
{
	json_t *props = NULL;
	int r = vault_policy_check(c->ctx->store, x->vault_id, x->principal, perm);

	if (r == 0)
		return true;
	if (r != -EACCES) {
		api_store_error(c->resp, r, x->vault_id);
		return false;
	}
	if (authz_require(c->ctx->store, c->who, AUTHZ_READER, x->vault_id) == 0 &&
	    store_res_get(c->ctx->store, x->vault_id, &props) == -ENOENT) {
		api_error(c->resp, 404, "ResourceNotFound", "%s was not found", x->vault_id);
		return false;
	}
	json_decref(props);
	if (perm == VAULT_PERM_GET && x->name)
		store_audit(c->ctx->store, x->principal, "secret.get", x->secret_id, "denied",
			    NULL);
	api_error(c->resp, 403, "VaultAccessDenied", "%s on secrets of %s is required",
		  vault_perm_name(perm), x->vault_id);
	return false;
}

/* Answers the error r of a secret operation. */
static void secret_error(struct api_call *c, const struct vreq *x, int r)
{
	switch (r) {
	case -ENOENT:
		api_error(c->resp, 404, "SecretNotFound", "secret %s was not found in %s",
			  x->name ? x->name : "", x->vault_id);
		break;
	case -EEXIST:
		api_error(c->resp, 409, "Conflict",
			  "secret %s is deleted and can still be recovered: recover it (POST "
			  ".../secrets/%s/recover) or purge it (DELETE ...?purge=true) first",
			  x->name, x->name);
		break;
	case -E2BIG:
		api_error(c->resp, 409, "LimitExceeded",
			  "%s holds the most allowed: %d secrets, %d versions each", x->vault_id,
			  VAULT_MAX_SECRETS, VAULT_MAX_VERSIONS);
		break;
	case -BERR_INTEGRITY:
		log_error(
			"vault: %s%s%s failed its integrity check (stored data altered or damaged)",
			x->vault_id, x->name ? " secret " : "", x->name ? x->name : "");
		api_error(
			c->resp, 500, "SecretCorrupted",
			"the stored data of %s failed its integrity check: it was altered or damaged",
			x->name ? x->secret_id : x->vault_id);
		break;
	default:
		api_store_error(c->resp, r, x->vault_id);
		break;
	}
}

static json_t *secret_meta(const struct vreq *x, const char *name, const struct store_secret *s)
{
	char id[SECRET_ID_SIZE];
	json_t *o;

	snprintf(id, sizeof(id), "%s/secrets/%s", x->vault_id, name);
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "id", id, "type", "secrets",
		      "name", name, "vault", x->vault_id, "version", s->version, "versions",
		      (json_int_t)s->n_versions, "created_at", (json_int_t)s->created_at,
		      "updated_at", (json_int_t)s->updated_at);
	if (!o)
		return NULL;
	json_object_set_new(o, "content_type",
			    s->content_type[0] ? json_string(s->content_type) : json_null());
	if (s->deleted_at) {
		json_object_set_new(o, "deleted_at", json_integer(s->deleted_at));
		json_object_set_new(o, "scheduled_purge_at", json_integer(s->purge_at));
	}
	return o;
}

/* ---- secrets ---- */

struct list_ctx {
	const struct vreq *x;
	json_t *value;
	int64_t now;
};

static int list_one(const struct store_secret *s, void *ud)
{
	struct list_ctx *l = ud;
	json_t *o;

	if (s->deleted_at && s->purge_at <= l->now)
		return 0; /* past its recovery window: gone */
	if (!(o = secret_meta(l->x, s->name, s)))
		return -ENOMEM;
	return json_array_append_new(l->value, o) < 0 ? -ENOMEM : 0;
}

void api_secrets_list(struct api_call *c)
{
	struct vreq x;
	struct list_ctx l = { .x = &x, .now = store_now() };
	bool deleted;
	int r;

	if (!vault_path(c, &x, false) || query_flag(c, "deleted", &deleted) < 0 ||
	    !data_access(c, &x, VAULT_PERM_LIST))
		return;
	if (!(l.value = json_array())) {
		api_store_error(c->resp, -ENOMEM, x.vault_id);
		return;
	}
	r = store_secret_foreach(c->ctx->store, x.vault_id, deleted, list_one, &l);
	if (r < 0) {
		json_decref(l.value);
		secret_error(c, &x, r);
		return;
	}
	api_json(c->resp, 200, json_pack("{s:o}", "value", l.value));
}

static int versions_one(const struct store_secret_version *v, void *ud)
{
	json_t *arr = ud;

	return json_array_append_new(
		       arr, json_pack("{s:s, s:I, s:o}", "version", v->version, "created_at",
				      (json_int_t)v->created_at, "content_type",
				      v->content_type[0] ? json_string(v->content_type)
							 : json_null())) < 0
		       ? -ENOMEM
		       : 0;
}

void api_secrets_versions(struct api_call *c)
{
	struct vreq x;
	struct store_secret s;
	json_t *arr;
	int r;

	if (!vault_path(c, &x, true) || !data_access(c, &x, VAULT_PERM_LIST))
		return;
	r = store_secret_get(c->ctx->store, x.vault_id, x.name, &s);
	if (r == 0 && s.deleted_at)
		r = -ENOENT;
	if (r < 0) {
		secret_error(c, &x, r);
		return;
	}
	if (!(arr = json_array())) {
		api_store_error(c->resp, -ENOMEM, x.vault_id);
		return;
	}
	r = store_secret_versions_foreach(c->ctx->store, x.vault_id, x.name, versions_one, arr);
	if (r < 0) {
		json_decref(arr);
		secret_error(c, &x, r);
		return;
	}
	api_json(c->resp, 200, json_pack("{s:o}", "value", arr));
}

static void wipe_json_string(json_t *v)
{
	if (json_is_string(v))
		sodium_memzero((char *)json_string_value(v), json_string_length(v));
}

/* The body of a set: {"value", "content_type"?}; id, type and name are
 * ignored so that a GET result can be PUT back. */
static int set_body(struct api_call *c, const char **ret_value, size_t *ret_len,
		    const char **ret_ct)
{
	const char *key;
	json_t *v;

	json_object_foreach (c->body, key, v) {
		if (strcmp(key, "value") && strcmp(key, "content_type") && strcmp(key, "id") &&
		    strcmp(key, "type") && strcmp(key, "name") && strcmp(key, "vault") &&
		    strcmp(key, "version")) {
			api_error(c->resp, 400, "InvalidRequest",
				  "unknown property; allowed for a secret: value, content_type");
			return -EINVAL;
		}
	}
	v = json_object_get(c->body, "value");
	if (!json_is_string(v)) {
		api_error(c->resp, 400, "InvalidRequest", "value: required; a string");
		return -EINVAL;
	}
	if (json_string_length(v) > VAULT_MAX_VALUE) {
		api_error(c->resp, 400, "InvalidRequest", "value: at most %d bytes",
			  VAULT_MAX_VALUE);
		return -EINVAL;
	}
	*ret_value = json_string_value(v);
	*ret_len = json_string_length(v);
	*ret_ct = NULL;
	v = json_object_get(c->body, "content_type");
	if (v && !json_is_null(v)) {
		const char *ct = json_string_value(v);
		bool ok = ct && json_string_length(v) <= VAULT_MAX_CONTENT_TYPE;

		for (const char *p = ct; ok && *p; p++)
			ok = *p >= 0x20 && *p < 0x7f;
		if (!ok || json_string_length(v) != strlen(ct)) {
			api_error(c->resp, 400, "InvalidRequest",
				  "content_type: a string of at most %d printable ASCII characters",
				  VAULT_MAX_CONTENT_TYPE);
			return -EINVAL;
		}
		*ret_ct = ct[0] ? ct : NULL;
	}
	return 0;
}

void api_secrets_put(struct api_call *c)
{
	struct vreq x;
	struct store_secret s;
	char version[VAULT_VERSION_SIZE];
	const char *value, *ct;
	size_t len;
	bool existed;
	int r;

	if (!vault_path(c, &x, true))
		goto out;
	if (set_body(c, &value, &len, &ct) < 0 || !data_access(c, &x, VAULT_PERM_SET))
		goto out;
	existed = store_secret_get(c->ctx->store, x.vault_id, x.name, &s) == 0;
	r = vault_secret_set(c->ctx->vault, c->ctx->store, x.principal, x.vault_id, x.name, value,
			     len, ct, version);
	if (r == -ENOENT) {
		api_error(c->resp, 404, "ResourceNotFound", "%s was not found", x.vault_id);
		goto out;
	}
	if (r < 0) {
		secret_error(c, &x, r);
		goto out;
	}
	if ((r = store_secret_get(c->ctx->store, x.vault_id, x.name, &s)) < 0) {
		secret_error(c, &x, r);
		goto out;
	}
	/* Created or not is what our write found, not what the read before it
	 * saw: of two first writes at once (two instances), one is the second
	 * version, answered 200 as one instance answers the second PUT. */
	{
		struct store_secret_version sv = { 0 };

		if (store_secret_version_get(c->ctx->store, x.vault_id, x.name, version, &sv) == 0)
			existed = sv.seq > 1;
		free(sv.sealed);
	}
	/* Another writer may have added a version since: answer ours. */
	util_strlcpy(s.version, version, sizeof(s.version));
	util_strlcpy(s.content_type, ct ? ct : "", sizeof(s.content_type));
	api_json(c->resp, existed ? 200 : 201, secret_meta(&x, x.name, &s));
out:
	wipe_json_string(json_object_get(c->body, "value"));
}

void api_secrets_get(struct api_call *c)
{
	struct vreq x;
	struct vault_value *val = NULL;
	struct store_secret s;
	char version[VAULT_VERSION_SIZE + 1];
	json_t *o;
	int r;

	if (!vault_path(c, &x, true))
		return;
	r = query_get(c->req->query, "version", version, sizeof(version));
	if (r < 0 || (r == 1 && !valid_version(version))) {
		api_error(c->resp, 400, "InvalidRequest",
			  "version: must be a version ID (32 hex digits)");
		return;
	}
	if (!data_access(c, &x, VAULT_PERM_GET))
		return;
	r = vault_secret_read(c->ctx->vault, c->ctx->store, x.principal, "api", x.vault_id, x.name,
			      r == 1 ? version : NULL, &val);
	if (r == 0)
		r = store_secret_get(c->ctx->store, x.vault_id, x.name, &s);
	if (r < 0) {
		vault_value_free(val);
		secret_error(c, &x, r);
		return;
	}
	util_strlcpy(s.version, val->version, sizeof(s.version));
	util_strlcpy(s.content_type, val->content_type, sizeof(s.content_type));
	o = secret_meta(&x, x.name, &s);
	if (o) {
		json_object_set_new(o, "value", json_stringn(val->data, val->len));
		json_object_set_new(o, "version_created_at", json_integer(val->created_at));
	}
	vault_value_free(val);
	if (!o || !json_object_get(o, "value")) {
		json_decref(o);
		api_store_error(c->resp, -ENOMEM, x.vault_id);
		return;
	}
	api_json(c->resp, 200, o);
}

/* The recovery window of the vault, from its properties. */
static int retention_days(struct api_call *c, const struct vreq *x, int *ret)
{
	json_t *props = NULL;
	int r = store_res_get(c->ctx->store, x->vault_id, &props);
	json_int_t d;

	if (r < 0)
		return r;
	d = json_integer_value(json_object_get(props, "soft_delete_retention_days"));
	json_decref(props);
	*ret = d >= VAL_VAULT_RETENTION_MIN && d <= VAL_VAULT_RETENTION_MAX
		       ? (int)d
		       : VAL_VAULT_RETENTION_DEFAULT;
	return 0;
}

void api_secrets_delete(struct api_call *c)
{
	struct vreq x;
	bool purge;
	int r, days;

	if (!vault_path(c, &x, true) || query_flag(c, "purge", &purge) < 0)
		return;
	if (purge) {
		if (!require_role(c, AUTHZ_OWNER, x.vault_id))
			return;
		r = vault_secret_purge(c->ctx->store, x.principal, x.vault_id, x.name);
	} else {
		if (!data_access(c, &x, VAULT_PERM_DELETE))
			return;
		if ((r = retention_days(c, &x, &days)) == 0)
			r = vault_secret_delete(c->ctx->store, x.principal, x.vault_id, x.name,
						days);
	}
	if (r < 0) {
		secret_error(c, &x, r);
		return;
	}
	api_json(c->resp, 204, NULL);
}

void api_secrets_recover(struct api_call *c)
{
	struct vreq x;
	struct store_secret s;
	int r;

	if (!vault_path(c, &x, true) || !data_access(c, &x, VAULT_PERM_DELETE))
		return;
	r = vault_secret_recover(c->ctx->store, x.principal, x.vault_id, x.name);
	if (r == 0)
		r = store_secret_get(c->ctx->store, x.vault_id, x.name, &s);
	if (r < 0) {
		secret_error(c, &x, r);
		return;
	}
	api_json(c->resp, 200, secret_meta(&x, x.name, &s));
}

/* ---- access policies ---- */

static json_t *perms_json(unsigned perms)
{
	json_t *a = json_array();

	for (unsigned bit = 1; a && bit <= VAULT_PERM_USE; bit <<= 1)
		if (perms & bit)
			json_array_append_new(a, json_string(vault_perm_name(bit)));
	return a;
}

static json_t *policy_json(const char *vault_id, const char *principal, unsigned perms)
{
	char id[VAL_ID_SIZE + 20 + PRINCIPAL_SIZE];

	snprintf(id, sizeof(id), "%s/access-policies/%s", vault_id, principal);
	return json_pack("{s:s, s:s, s:s, s:s, s:o}", "id", id, "type", "access-policies", "vault",
			 vault_id, "principal", principal, "secret_permissions", perms_json(perms));
}

/* "user:<name>" naming an existing user; the path segment seg[5]. */
static int policy_principal(struct api_call *c, const char **ret, bool must_exist)
{
	const char *p = c->nseg >= 6 ? c->seg[5] : "";
	struct store_user u;
	int r;

	if (strncmp(p, "user:", 5) != 0 || strlen(p + 5) == 0 || strlen(p + 5) > 64) {
		api_error(c->resp, 400, "InvalidRequest",
			  "principal: must be user:{name} (groups of users may come later)");
		return -EINVAL;
	}
	if (must_exist) {
		r = store_user_get(c->ctx->store, p + 5, &u);
		sodium_memzero(&u, sizeof(u));
		if (r == -ENOENT) {
			api_error(c->resp, 400, "InvalidRequest",
				  "principal: user %s does not exist", p + 5);
			return r;
		}
		if (r < 0) {
			api_store_error(c->resp, r, "users");
			return r;
		}
	}
	*ret = p;
	return 0;
}

static int policy_body(struct api_call *c, unsigned *ret)
{
	json_t *a = json_object_get(c->body, "secret_permissions"), *v;
	const char *key;
	unsigned perms = 0, bit;
	size_t i;

	json_object_foreach (c->body, key, v) {
		if (strcmp(key, "secret_permissions") && strcmp(key, "id") && strcmp(key, "type") &&
		    strcmp(key, "vault") && strcmp(key, "principal")) {
			api_error(
				c->resp, 400, "InvalidRequest",
				"unknown property; allowed for an access policy: secret_permissions");
			return -EINVAL;
		}
	}
	if (!json_is_array(a) || json_array_size(a) > 5)
		goto bad;
	json_array_foreach (a, i, v) {
		if (vault_perm_parse(json_string_value(v), &bit) < 0 || (perms & bit))
			goto bad;
		perms |= bit;
	}
	*ret = perms;
	return 0;
bad:
	api_error(c->resp, 400, "InvalidRequest",
		  "secret_permissions: required; an array of distinct values from list, get, set, "
		  "delete, use");
	return -EINVAL;
}

struct policy_op {
	const char *vault_id, *principal, *actor;
	unsigned perms;
	bool created;
};

static int policy_put_tx(struct store *s, void *ud)
{
	struct policy_op *o = ud;
	char target[VAL_ID_SIZE + 20 + PRINCIPAL_SIZE], detail[128];
	int r = store_vault_policy_put(s, o->vault_id, o->principal, o->perms, &o->created);

	if (r < 0)
		return r;
	snprintf(target, sizeof(target), "%s/access-policies/%s", o->vault_id, o->principal);
	snprintf(detail, sizeof(detail), "{\"secret_permissions\":%u}", o->perms);
	return store_audit(s, o->actor, "vault.policy.put", target,
			   o->created ? "created" : "replaced", detail);
}

static int policy_delete_tx(struct store *s, void *ud)
{
	struct policy_op *o = ud;
	char target[VAL_ID_SIZE + 20 + PRINCIPAL_SIZE];
	int r = store_vault_policy_delete(s, o->vault_id, o->principal);

	if (r < 0)
		return r;
	snprintf(target, sizeof(target), "%s/access-policies/%s", o->vault_id, o->principal);
	return store_audit(s, o->actor, "vault.policy.delete", target, "deleted", NULL);
}

void api_vault_policies_put(struct api_call *c)
{
	struct vreq x;
	struct policy_op o = { 0 };
	int r;

	if (!vault_path(c, &x, false) || policy_principal(c, &o.principal, false) < 0 ||
	    policy_body(c, &o.perms) < 0 || !require_role(c, AUTHZ_OWNER, x.vault_id) ||
	    policy_principal(c, &o.principal, true) < 0)
		return;
	o.vault_id = x.vault_id;
	o.actor = x.principal;
	r = store_res_tx(c->ctx->store, policy_put_tx, &o);
	if (r < 0) {
		api_store_error(c->resp, r, x.vault_id);
		return;
	}
	api_json(c->resp, o.created ? 201 : 200, policy_json(x.vault_id, o.principal, o.perms));
}

/* Reader on the vault, and the vault exists: else 404 (as for resources). */
static bool vault_readable(struct api_call *c, const struct vreq *x)
{
	json_t *props = NULL;
	int r = authz_require(c->ctx->store, c->who, AUTHZ_READER, x->vault_id);

	if (r == 0)
		r = store_res_get(c->ctx->store, x->vault_id, &props);
	json_decref(props);
	if (r == -EACCES || r == -ENOENT) {
		api_error(c->resp, 404, "ResourceNotFound", "%s was not found", x->vault_id);
		return false;
	}
	if (r < 0) {
		api_store_error(c->resp, r, x->vault_id);
		return false;
	}
	return true;
}

void api_vault_policies_get(struct api_call *c)
{
	struct vreq x;
	const char *principal;
	unsigned perms;
	int r;

	if (!vault_path(c, &x, false) || !vault_readable(c, &x) ||
	    policy_principal(c, &principal, false) < 0)
		return;
	r = store_vault_policy_get(c->ctx->store, x.vault_id, principal, &perms);
	if (r == -ENOENT) {
		api_error(c->resp, 404, "ResourceNotFound", "%s has no access policy for %s",
			  x.vault_id, principal);
		return;
	}
	if (r < 0) {
		api_store_error(c->resp, r, x.vault_id);
		return;
	}
	api_json(c->resp, 200, policy_json(x.vault_id, principal, perms));
}

struct policy_list {
	const char *vault_id;
	json_t *value;
};

static int policy_list_one(const char *principal, unsigned perms, void *ud)
{
	struct policy_list *l = ud;

	return json_array_append_new(l->value, policy_json(l->vault_id, principal, perms)) < 0
		       ? -ENOMEM
		       : 0;
}

void api_vault_policies_list(struct api_call *c)
{
	struct vreq x;
	struct policy_list l = { 0 };
	int r;

	if (!vault_path(c, &x, false) || !vault_readable(c, &x))
		return;
	l.vault_id = x.vault_id;
	if (!(l.value = json_array())) {
		api_store_error(c->resp, -ENOMEM, x.vault_id);
		return;
	}
	r = store_vault_policy_foreach(c->ctx->store, x.vault_id, policy_list_one, &l);
	if (r < 0) {
		json_decref(l.value);
		api_store_error(c->resp, r, x.vault_id);
		return;
	}
	api_json(c->resp, 200, json_pack("{s:o}", "value", l.value));
}

void api_vault_policies_delete(struct api_call *c)
{
	struct vreq x;
	struct policy_op o = { 0 };
	int r;

	if (!vault_path(c, &x, false) || policy_principal(c, &o.principal, false) < 0 ||
	    !require_role(c, AUTHZ_OWNER, x.vault_id))
		return;
	o.vault_id = x.vault_id;
	o.actor = x.principal;
	r = store_res_tx(c->ctx->store, policy_delete_tx, &o);
	if (r == -ENOENT) {
		api_error(c->resp, 404, "ResourceNotFound", "%s has no access policy for %s",
			  x.vault_id, o.principal);
		return;
	}
	if (r < 0) {
		api_store_error(c->resp, r, x.vault_id);
		return;
	}
	api_json(c->resp, 204, NULL);
}

/* ---- master key ---- */

void api_vault_rotate(struct api_call *c)
{
	char principal[PRINCIPAL_SIZE];
	int64_t n = 0;
	int r;

	if (!require_role(c, AUTHZ_OWNER, "/"))
		return;
	snprintf(principal, sizeof(principal), "user:%s", c->who->name);
	r = vault_rotate(c->ctx->vault, c->ctx->store, principal, &n);
	if (r == -BERR_INTEGRITY) {
		log_error(
			"vault: master key rotation refused: a wrapped data key failed its integrity "
			"check");
		api_error(c->resp, 500, "SecretCorrupted",
			  "a vault's data key failed its integrity check; nothing was changed");
		return;
	}
	if (r < 0) {
		log_error("vault: master key rotation failed: %s", err_str(r));
		api_error(c->resp, 503, "ServiceUnavailable",
			  "the master key could not be rotated; see the log");
		return;
	}
	log_info("vault: master key rotated by %s (%lld data keys re-wrapped)", principal,
		 (long long)n);
	api_json(c->resp, 200, json_pack("{s:I}", "rotated_data_keys", (json_int_t)n));
}
