/* GET /sessions and DELETE /sessions/{id}.
 *
 * The sessions live on the loop (terminal/). The worker here
 * authenticates the caller (the router did) and works out which bastions of
 * the live sessions the caller is Owner of; with that answer it lists the
 * sessions itself, from a snapshot of the registry (term_sessions_json),
 * and the loop ends one (term_disconnect_next). A session that starts
 * through another bastion in between is simply not in that listing. */
#include "api/api.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "authz/authz.h"
#include "core/util.h"
#include "terminal/term.h"

static void sessions_next(struct api_call *c, api_next_fn *next, const char *id)
{
	struct term_attach *ta = calloc(1, sizeof(*ta));
	char **in_use = NULL;
	size_t n = 0;
	int r;

	if (!ta || term_bastions_in_use(&in_use, &n) < 0) {
		free(ta);
		api_error(c->resp, 503, "ServiceUnavailable", "out of memory");
		return;
	}
	ta->user_id = c->who->user_id;
	util_strlcpy(ta->user, c->who->name, sizeof(ta->user));
	if (id)
		util_strlcpy(ta->session_id, id, sizeof(ta->session_id));
	/* Keep the bastions the caller owns; the array is reused in place. */
	for (size_t i = 0; i < n; i++) {
		r = authz_require(c->ctx->store, c->who, AUTHZ_OWNER, in_use[i]);
		if (r == 0) {
			in_use[ta->n_owned++] = in_use[i];
			continue;
		}
		free(in_use[i]);
		if (r != -EACCES) {
			for (size_t j = i + 1; j < n; j++)
				free(in_use[j]);
			ta->owned = in_use;
			term_attach_free(ta);
			api_store_error(c->resp, r, "the caller's roles");
			return;
		}
	}
	ta->owned = in_use;
	if (!next) {
		json_t *arr;

		if (term_sessions_json(ta, &arr) < 0)
			api_error(c->resp, 503, "ServiceUnavailable", "out of memory");
		else
			api_json(c->resp, 200, json_pack("{s:o}", "value", arr));
		term_attach_free(ta);
		return;
	}
	c->resp->next = next;
	c->resp->next_arg = ta;
	c->resp->status = 200; /* provisional: the loop answers */
}

void api_sessions_list(struct api_call *c)
{
	sessions_next(c, NULL, NULL);
}

void api_sessions_delete(struct api_call *c)
{
	sessions_next(c, term_disconnect_next, c->seg[1]);
}
