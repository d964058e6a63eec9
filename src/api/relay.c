/* The API's half of the relay (issue 15, item 3): a request for a live
 * session — its terminal, its watch, the answers to its questions — that
 * reached an instance other than the one holding it is handed whole to
 * the holder (server/relay.c), before anything is answered here, so that
 * a load balancer needs no affinity. The holder authenticates the caller
 * itself, from the same store (cookie, token, CSRF token and Origin travel
 * in the request); this instance audits nothing for it. Runs on a worker
 * (the store's registry is read here), then on the loop (the join).
 * Also what every terminal-side WebSocket of a live session checks before
 * that: its origin and its upgrade (api_session_ws_here). */
#include "api/api.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/util.h"
#include "identity/ident.h"
#include "terminal/term.h"

struct relay_to {
	char addr[80]; /* numeric "ADDR:PORT" */
	char fp[72];   /* hex SHA-256 of the holder's certificate */
};

static void relay_next(struct srv_conn *c, bool client_gone, void *arg)
{
	struct relay_to *t = arg;

	if (client_gone)
		srv_release(c);
	else
		srv_relay(c, t->addr, t->fp);
	free(t);
}

bool api_relay_to_holder(struct api_call *c)
{
	const char *id = c->seg[1];
	struct relay_to *t;
	int r;

	/* Here, or asked by another instance already (never relayed twice:
	 * the registry could be a moment behind, and a relay must not loop). */
	if (!term_cluster_shared() || c->req->relayed || term_session_here(id))
		return false;
	if (!(t = calloc(1, sizeof(*t)))) {
		api_error(c->resp, 503, "ServiceUnavailable", "out of memory");
		return true;
	}
	r = term_holder_of_session(id, t->addr, sizeof(t->addr), t->fp, sizeof(t->fp));
	if (r == -ENOENT) {
		free(t);
		return false; /* unknown everywhere: answered here, as on one instance */
	}
	if (r < 0) {
		free(t);
		if (r == -EHOSTUNREACH)
			api_error(c->resp, 502, "InstanceUnreachable",
				  "the instance holding this session cannot be reached");
		else
			api_store_error(c->resp, r, "the registry of live sessions");
		return true;
	}
	c->resp->next = relay_next;
	c->resp->next_arg = t;
	c->resp->status = 204; /* provisional: the holder answers */
	return true;
}

bool api_session_ws_here(struct api_call *c, const char *only_own)
{
	struct ident_creds creds = api_creds(c->req);

	if (api_relay_to_holder(c))
		return false;
	if (!ident_origin_is_own(&creds)) {
		api_error(c->resp, 403, "OriginMismatch", "%s from this bastion's own pages",
			  only_own);
		return false;
	}
	if (!c->req->websocket || !c->req->ws_protocol ||
	    !strstr(c->req->ws_protocol, "bastion.v1")) {
		api_error(c->resp, 400, "InvalidRequest",
			  "this endpoint needs a WebSocket upgrade with subprotocol bastion.v1");
		return false;
	}
	return true;
}
