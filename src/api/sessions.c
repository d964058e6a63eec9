/* GET /sessions and DELETE /sessions/{id}.
 *
 * This instance's sessions live on its loops (terminal/). The worker here
 * authenticates the caller (the router did) and works out which bastions of
 * the live sessions the caller is Owner of; with that answer it lists the
 * sessions itself, from a snapshot of the registry (term_sessions_json),
 * and the loop ends one (term_disconnect_next). A session that starts
 * through another bastion in between is simply not in that listing.
 *
 * On a shared store (PostgreSQL, several instances), the sessions the
 * other instances hold are listed from the store's registry
 * (store_session_foreach_open), each with the instance holding it, and a
 * DELETE of one of them writes a request the holder reads within
 * CLUSTER_TICK_MS (terminal/cluster.c); the caller is authorised here, from
 * the stored row, before the request is written. */
#include "api/api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz/authz.h"
#include "core/log.h"
#include "core/util.h"
#include "store/store.h"
#include "store/store_cluster.h"
#include "terminal/term.h"

/* Bastions already asked about, for one request: Owner or not. */
#define OWNED_CACHE 32
struct owned_cache {
	char ids[OWNED_CACHE][256];
	bool owner[OWNED_CACHE];
	size_t n;
};

/* 1 when the caller may manage a session of user through bastion (their
 * own, or Owner of the bastion), 0 when not, or a store error. */
static int may_manage(struct api_call *c, struct owned_cache *oc, const char *user,
		      const char *bastion)
{
	int r;

	if (strcmp(user, c->who->name) == 0)
		return 1;
	for (size_t i = 0; i < oc->n; i++)
		if (strcmp(oc->ids[i], bastion) == 0)
			return oc->owner[i];
	r = authz_require(c->ctx->store, c->who, AUTHZ_OWNER, bastion);
	if (r < 0 && r != -EACCES)
		return r;
	if (oc->n < OWNED_CACHE) {
		util_strlcpy(oc->ids[oc->n], bastion, sizeof(oc->ids[0]));
		oc->owner[oc->n++] = r == 0;
	}
	return r == 0;
}

struct remote_list {
	struct api_call *c;
	struct owned_cache oc;
	json_t *arr;
	int64_t now;
};

static int list_remote(const struct store_live_session *ls, void *ud)
{
	struct remote_list *x = ud;
	int r = may_manage(x->c, &x->oc, ls->user, ls->bastion);

	if (r <= 0)
		return r;
	/* Bytes are counted by the holder, not written to the store while
	 * the session runs: a session held elsewhere is listed without them. */
	json_array_append_new(x->arr, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:s,s:s,s:s}",
						"id", ls->id, "user", ls->user, "vm", ls->vm,
						"target", ls->target, "source", ls->source,
						"auth_type", ls->auth_type, "bastion", ls->bastion,
						"started_at", (json_int_t)ls->started_at,
						"duration_s", (json_int_t)(x->now - ls->started_at),
						"state", ls->attached ? "attached" : "waiting",
						"instance", ls->instance, "kind", "terminal"));
	return 0;
}

/* The caller, its session id, and the bastions of this instance's live
 * sessions it owns. NULL after answering the error. */
static struct term_attach *attach_of(struct api_call *c, const char *id)
{
	struct term_attach *ta = calloc(1, sizeof(*ta));
	char **in_use = NULL;
	size_t n = 0;
	int r;

	if (!ta || term_bastions_in_use(&in_use, &n) < 0) {
		free(ta);
		api_error(c->resp, 503, "ServiceUnavailable", "out of memory");
		return NULL;
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
			return NULL;
		}
	}
	ta->owned = in_use;
	return ta;
}

void api_sessions_list(struct api_call *c)
{
	struct term_attach *ta = attach_of(c, NULL);
	struct remote_list *x = NULL;
	json_t *arr = NULL;
	int r;

	if (!ta)
		return;
	if (term_sessions_json(ta, &arr) < 0) {
		api_error(c->resp, 503, "ServiceUnavailable", "out of memory");
		goto out;
	}
	if (term_cluster_shared()) {
		if (!(x = calloc(1, sizeof(*x)))) {
			api_error(c->resp, 503, "ServiceUnavailable", "out of memory");
			goto out;
		}
		*x = (struct remote_list){ .c = c, .arr = arr, .now = store_now() };
		r = store_session_foreach_open(c->ctx->store, term_instance_name(), list_remote, x);
		if (r < 0) {
			api_store_error(c->resp, r, "the sessions of the other instances");
			goto out;
		}
	}
	api_json(c->resp, 200, json_pack("{s:O}", "value", arr));
out:
	free(x);
	json_decref(arr);
	term_attach_free(ta);
}

/* The stored row of a session held by another instance. */
struct remote_one {
	const char *id;
	bool found;
	char user[65], vm[256], bastion[256], instance[STORE_INSTANCE_NAME_MAX];
};

static int find_remote(const struct store_live_session *ls, void *ud)
{
	struct remote_one *x = ud;

	if (strcmp(ls->id, x->id) != 0)
		return 0;
	x->found = true;
	util_strlcpy(x->user, ls->user, sizeof(x->user));
	util_strlcpy(x->vm, ls->vm, sizeof(x->vm));
	util_strlcpy(x->bastion, ls->bastion, sizeof(x->bastion));
	util_strlcpy(x->instance, ls->instance, sizeof(x->instance));
	return 1;
}

/* A session another instance holds: authorised from its stored row, then
 * asked of its holder. */
static void delete_remote(struct api_call *c, const char *id)
{
	struct remote_one *x = calloc(1, sizeof(*x));
	struct owned_cache *oc = calloc(1, sizeof(*oc));
	char reason[128], principal[80];
	json_t *d;
	char *detail;
	int r;

	if (!x || !oc) {
		api_error(c->resp, 503, "ServiceUnavailable", "out of memory");
		goto out;
	}
	x->id = id;
	r = store_session_foreach_open(c->ctx->store, term_instance_name(), find_remote, x);
	if (r < 0 && r != -ECANCELED) {
		api_store_error(c->resp, r, "the sessions of the other instances");
		goto out;
	}
	r = x->found ? may_manage(c, oc, x->user, x->bastion) : 0;
	if (r < 0) {
		api_store_error(c->resp, r, "the caller's roles");
		goto out;
	}
	snprintf(reason, sizeof(reason), "disconnected by %s", c->who->name);
	if (r == 1)
		r = store_session_end_request(c->ctx->store, id, term_instance_name(), reason, NULL,
					      NULL, NULL);
	else
		r = -ENOENT;
	/* A session the caller may not manage answers like a missing one. */
	if (r == -ENOENT) {
		api_error(c->resp, 404, "ResourceNotFound", "no such session (it may have ended)");
		goto out;
	}
	if (r < 0) {
		api_store_error(c->resp, r, "the session");
		goto out;
	}
	snprintf(principal, sizeof(principal), "user:%s", c->who->name);
	d = json_pack("{s:s,s:s,s:s,s:s}", "session", id, "user", x->user, "bastion", x->bastion,
		      "instance", x->instance);
	detail = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(d);
	if (store_audit(c->ctx->store, principal, "session.disconnect", x->vm, "success", detail) <
	    0)
		log_error("audit: cannot record session.disconnect");
	free(detail);
	api_json(c->resp, 204, NULL);
out:
	free(x);
	free(oc);
}

void api_sessions_delete(struct api_call *c)
{
	const char *id = c->seg[1];
	struct term_attach *ta;

	/* Held elsewhere: not on any of this instance's loops. A session that
	 * ends here between the two looks is answered 404 by its loop. */
	if (term_cluster_shared() && term_home_of_session(id) < 0) {
		delete_remote(c, id);
		return;
	}
	if (!(ta = attach_of(c, id)))
		return;
	c->resp->next = term_disconnect_next;
	c->resp->next_arg = ta;
	c->resp->status = 200; /* provisional: the loop answers */
}
