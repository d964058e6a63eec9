/* The host keys of a VM, for the people who must decide whether a changed
 * key is an attack or a reinstall (issue 12):
 *   GET    /groups/{g}/vms/{vm}/host-keys  (Reader on the VM)
 *     → {"pinned":[{key,type,fingerprint}], "recorded":[...]}: the VM's
 *       own host_keys, and the keys recorded on first use (used only while
 *       nothing is pinned);
 *   DELETE /groups/{g}/vms/{vm}/host-keys  (Contributor on the VM) → 204:
 *       forgets the recorded keys, so the next connect records what the VM
 *       offers then; audited as "vm.host_keys.clear". Pinned keys are the
 *       VM's property and change with a PUT of the VM.
 * A VM the caller may not read answers 404 like a missing one, as GET of a
 * resource does. Also the SHA-256 fingerprint that the mismatch message
 * shows (sshc_hostkey_fingerprint, in ssh/). */
#include "api/api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "api/validate.h"
#include "authz/authz.h"
#include "core/err.h"
#include "ssh/sshc.h"
#include "store/store.h"

/* [{key, type, fingerprint}] for an array of key lines; unparsable lines
 * are left out (they match nothing either). */
static json_t *describe(const json_t *lines)
{
	json_t *arr = json_array(), *k;
	size_t i;

	json_array_foreach (lines, i, k) {
		char fp[160], *type = NULL, *b64 = NULL;

		if (!json_is_string(k) ||
		    sshc_hostkey_fingerprint(json_string_value(k), fp, sizeof(fp)) < 0 ||
		    sshc_hostkey_parse(json_string_value(k), &type, &b64) < 0)
			continue;
		json_array_append_new(arr,
				      json_pack("{s:s++,s:s,s:s}", "key", type, " ", b64, "type",
						type, "fingerprint", strchr(fp, ' ') + 1));
		free(type);
		free(b64);
	}
	return arr;
}

/* The VM's ID into id, or false (answered 404) for a path that cannot name
 * one or a VM the caller may not read. */
static bool vm_path(struct api_call *c, char id[VAL_ID_SIZE])
{
	int r;

	if (c->nseg != 5 || !val_name(c->seg[1]) || !val_name(c->seg[3])) {
		api_error(c->resp, 404, "ResourceNotFound", "no such VM");
		return false;
	}
	snprintf(id, VAL_ID_SIZE, "/groups/%s/vms/%s", c->seg[1], c->seg[3]);
	r = c->who ? authz_require(c->ctx->store, c->who, AUTHZ_READER, id) : -EACCES;
	if (r == -EACCES) {
		api_error(c->resp, 404, "ResourceNotFound", "%s was not found", id);
		return false;
	}
	if (r < 0) {
		api_store_error(c->resp, r, id);
		return false;
	}
	return true;
}

void api_hostkeys_get(struct api_call *c)
{
	char id[VAL_ID_SIZE];
	json_t *vm = NULL, *recorded = NULL;
	int r;

	if (!vm_path(c, id))
		return;
	if ((r = store_res_get(c->ctx->store, id, &vm)) < 0 ||
	    (r = store_hostkey_get(c->ctx->store, id, &recorded)) < 0) {
		api_store_error(c->resp, r, id);
		goto out;
	}
	api_json(c->resp, 200,
		 json_pack("{s:o,s:o}", "pinned", describe(json_object_get(vm, "host_keys")),
			   "recorded", describe(recorded)));
out:
	json_decref(vm);
	json_decref(recorded);
}

struct clear {
	const char *id;
	const struct principal *who;
	int removed;
};

static int clear_tx(struct store *s, void *ud)
{
	struct clear *cl = ud;
	char principal[80], detail[64];
	json_t *vm = NULL;
	int r = store_res_get(s, cl->id, &vm);

	json_decref(vm);
	if (r < 0)
		return r;
	if ((r = store_hostkey_clear(s, cl->id, &cl->removed)) < 0)
		return r;
	snprintf(principal, sizeof(principal), "user:%s", cl->who->name);
	snprintf(detail, sizeof(detail), "{\"removed\":%d}", cl->removed);
	return store_audit(s, principal, "vm.host_keys.clear", cl->id, "deleted", detail);
}

void api_hostkeys_delete(struct api_call *c)
{
	char id[VAL_ID_SIZE];
	struct clear cl = { .id = id, .who = c->who };
	int r;

	if (!vm_path(c, id))
		return;
	r = authz_require(c->ctx->store, c->who, AUTHZ_CONTRIBUTOR, id);
	if (r == -EACCES) {
		api_error(c->resp, 403, "AuthorizationFailed", "Contributor on %s is required", id);
		return;
	}
	if (r < 0 || (r = store_res_tx(c->ctx->store, clear_tx, &cl)) < 0) {
		api_store_error(c->resp, r, id);
		return;
	}
	api_json(c->resp, 204, NULL);
}
