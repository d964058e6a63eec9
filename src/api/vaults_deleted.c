/* REST handlers for soft-deleted vaults (docs/vault.md, "Deleted vaults"):
 *   GET    /groups/{g}/deleted-vaults              list (Reader)
 *   GET    /groups/{g}/deleted-vaults/{v}          one (Reader)
 *   POST   /groups/{g}/deleted-vaults/{v}/recover  back, whole (Contributor)
 *   DELETE /groups/{g}/deleted-vaults/{v}          purge for good (Owner)
 * Roles are checked on the vault's own ID (/groups/{g}/vaults/{v}) and so
 * inherited from the group and "/", as for the live vault: whoever could
 * delete it can bring it back; only an Owner can cut the retention short.
 * A deleted vault the caller may not read answers 404 like a missing one.
 * The deletion itself is DELETE /groups/{g}/vaults/{v} (resources.c). */
#include "api/api.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api/validate.h"
#include "authz/authz.h"
#include "core/err.h"
#include "store/store.h"
#include "store/store_vault.h"

struct dreq {
	const char *group, *name;
	char vault_id[VAL_ID_SIZE];
	char principal[80];
};

/* Fills x from /groups/{g}/deleted-vaults/{v}; answers 404 and returns
 * false when the names cannot be. */
static bool dv_path(struct api_call *c, struct dreq *x, bool with_name)
{
	memset(x, 0, sizeof(*x));
	x->group = c->nseg >= 2 ? c->seg[1] : NULL;
	x->name = with_name && c->nseg >= 4 ? c->seg[3] : NULL;
	if (!x->group || !val_name(x->group) || (with_name && (!x->name || !val_name(x->name)))) {
		api_error(c->resp, 404, "ResourceNotFound", "no such deleted vault");
		return false;
	}
	if (with_name)
		snprintf(x->vault_id, sizeof(x->vault_id), "/groups/%s/vaults/%s", x->group,
			 x->name);
	snprintf(x->principal, sizeof(x->principal), "user:%s", c->who->name);
	return true;
}

static json_t *dv_json(const struct store_deleted_vault *d)
{
	return json_pack("{s:o, s:s, s:s, s:s, s:I, s:I, s:I, s:I}", "id",
			 json_sprintf("/groups/%s/deleted-vaults/%s", d->group, d->name), "type",
			 "deleted-vaults", "name", d->name, "vault_id", d->id, "created_at",
			 (json_int_t)d->created_at, "deleted_at", (json_int_t)d->deleted_at,
			 "scheduled_purge_at", (json_int_t)d->purge_at, "secrets",
			 (json_int_t)d->n_secrets);
}

static void not_found(struct api_call *c, const struct dreq *x)
{
	api_error(c->resp, 404, "ResourceNotFound", "deleted vault %s was not found", x->vault_id);
}

/* Loads the deleted vault and checks the caller's role on its ID: true,
 * or answered (404 when it is missing or unreadable, 403 when readable but
 * the role is short). */
static bool dv_load(struct api_call *c, const struct dreq *x, enum authz_role role,
		    struct store_deleted_vault *ret)
{
	int r = authz_require(c->ctx->store, c->who, AUTHZ_READER, x->vault_id);

	if (r == -EACCES) {
		not_found(c, x);
		return false;
	}
	if (r == 0)
		r = store_vault_deleted_get(c->ctx->store, x->vault_id, store_now(), ret);
	if (r == -ENOENT) {
		not_found(c, x);
		return false;
	}
	if (r == 0 && role > AUTHZ_READER)
		r = authz_require(c->ctx->store, c->who, role, x->vault_id);
	if (r == -EACCES) {
		api_error(c->resp, 403, "AuthorizationFailed", "%s on %s is required",
			  authz_role_name(role), x->vault_id);
		return false;
	}
	if (r < 0) {
		api_store_error(c->resp, r, x->vault_id);
		return false;
	}
	return true;
}

struct dv_list {
	struct api_call *c;
	json_t *value;
};

static int list_one(const struct store_deleted_vault *d, void *ud)
{
	struct dv_list *l = ud;
	int r = authz_require(l->c->ctx->store, l->c->who, AUTHZ_READER, d->id);

	if (r == -EACCES)
		return 0;
	if (r < 0)
		return r;
	return json_array_append_new(l->value, dv_json(d)) < 0 ? -ENOMEM : 0;
}

void api_deleted_vaults_list(struct api_call *c)
{
	struct dreq x;
	struct dv_list l = { .c = c };
	char gid[VAL_ID_SIZE];
	int r, group_readable;

	if (!dv_path(c, &x, false))
		return;
	snprintf(gid, sizeof(gid), "/groups/%s", x.group);
	group_readable = authz_require(c->ctx->store, c->who, AUTHZ_READER, gid);
	if (group_readable < 0 && group_readable != -EACCES) {
		api_store_error(c->resp, group_readable, gid);
		return;
	}
	if (!(l.value = json_array())) {
		api_store_error(c->resp, -ENOMEM, gid);
		return;
	}
	r = store_vault_deleted_foreach(c->ctx->store, x.group, store_now(), list_one, &l);
	if (r < 0) {
		json_decref(l.value);
		api_store_error(c->resp, r, gid);
		return;
	}
	if (group_readable != 0 && json_array_size(l.value) == 0) {
		/* Nothing to show and no right to the group: as if it did not
		 * exist. */
		json_decref(l.value);
		api_error(c->resp, 404, "ResourceNotFound", "%s was not found", gid);
		return;
	}
	api_json(c->resp, 200, json_pack("{s:o}", "value", l.value));
}

void api_deleted_vaults_get(struct api_call *c)
{
	struct store_deleted_vault d;
	struct dreq x;

	if (!dv_path(c, &x, true) || !dv_load(c, &x, AUTHZ_READER, &d))
		return;
	api_json(c->resp, 200, dv_json(&d));
}

struct dv_op {
	const char *vault_id, *principal;
	bool purge;
};

static int op_tx(struct store *s, void *ud)
{
	const struct dv_op *o = ud;
	int r = o->purge ? store_vault_purge_deleted(s, o->vault_id)
			 : store_vault_recover(s, o->vault_id, store_now());

	if (r < 0)
		return r;
	/* In the same transaction: no change without its record. */
	return store_audit(s, o->principal, o->purge ? "vault.purge" : "vault.recover", o->vault_id,
			   o->purge ? "purged" : "recovered", NULL);
}

void api_deleted_vaults_recover(struct api_call *c)
{
	struct store_deleted_vault d;
	struct dreq x;
	struct dv_op o;
	json_t *props = NULL;
	int r;

	if (!dv_path(c, &x, true) || !dv_load(c, &x, AUTHZ_CONTRIBUTOR, &d))
		return;
	o = (struct dv_op){ x.vault_id, x.principal, false };
	r = store_res_tx(c->ctx->store, op_tx, &o);
	if (r == -ENOENT) {
		not_found(c, &x);
		return;
	}
	if (r == -EEXIST) {
		api_error(c->resp, 409, "Conflict", "%s exists again: delete it first", x.vault_id);
		return;
	}
	if (r == -ESRCH) {
		api_error(c->resp, 409, "Conflict", "group %s is gone: create it first", x.group);
		return;
	}
	if (r == 0)
		r = store_res_get(c->ctx->store, x.vault_id, &props);
	if (r < 0) {
		api_store_error(c->resp, r, x.vault_id);
		return;
	}
	json_object_set_new(props, "id", json_string(x.vault_id));
	json_object_set_new(props, "type", json_string("vaults"));
	json_object_set_new(props, "name", json_string(x.name));
	api_json(c->resp, 200, props);
}

void api_deleted_vaults_purge(struct api_call *c)
{
	struct store_deleted_vault d;
	struct dreq x;
	struct dv_op o;
	int r;

	if (!dv_path(c, &x, true) || !dv_load(c, &x, AUTHZ_OWNER, &d))
		return;
	o = (struct dv_op){ x.vault_id, x.principal, true };
	r = store_res_tx(c->ctx->store, op_tx, &o);
	if (r == -ENOENT) {
		not_found(c, &x);
		return;
	}
	if (r < 0) {
		api_store_error(c->resp, r, x.vault_id);
		return;
	}
	c->resp->status = 204;
}
