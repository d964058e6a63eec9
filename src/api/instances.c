/* GET /api/v1/instances (SPEC §6): the instances sharing this store, from
 * the store's table (terminal/cluster.c keeps this instance's row), for a
 * Reader at "/". */
#include "api/api.h"

#include <errno.h>

#include "authz/authz.h"
#include "store/store_cluster.h"

static int add_instance(const struct store_instance *in, void *ud)
{
	json_t *arr = ud;

	/* How to reach an instance (advertise_url, cert_sha256) is for the
	 * instances themselves, not listed. */
	return json_array_append_new(arr,
				     json_pack("{s:s,s:s,s:I,s:I,s:I}", "name", in->name, "state",
					       in->state, "started_at", (json_int_t)in->started_at,
					       "last_seen", (json_int_t)in->last_seen, "sessions",
					       (json_int_t)in->sessions)) < 0
		       ? -ENOMEM
		       : 0;
}

void api_instances_list(struct api_call *c)
{
	json_t *arr;
	int r = authz_require(c->ctx->store, c->who, AUTHZ_READER, "/");

	if (r == -EACCES) {
		api_error(c->resp, 403, "AuthorizationFailed", "Reader at / is required");
		return;
	}
	if (r < 0) {
		api_store_error(c->resp, r, "the caller's roles");
		return;
	}
	if (!(arr = json_array())) {
		api_error(c->resp, 503, "ServiceUnavailable", "out of memory");
		return;
	}
	r = store_instance_foreach(c->ctx->store, add_instance, arr);
	if (r < 0) {
		json_decref(arr);
		api_store_error(c->resp, r, "the instances");
		return;
	}
	api_json(c->resp, 200, json_pack("{s:o}", "value", arr));
}
