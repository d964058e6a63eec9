/* GET /groups/{g}/vms/{vm}/stream?port=P[&bastion=ID]: the native client's
 * TCP stream to a VM's port (docs/api.md "The native client's stream").
 *
 * On a worker: the connect checks that apply (rows 1-6 of docs/api.md
 * "The checks", shared with connect through api_connect_target, so the two
 * can never drift apart), then 403 PortNotAllowed unless the port is the
 * VM's ssh_port or in the bastion's tunnel_ports. What passes becomes a
 * term_stream that the loop dials (row 9) before it answers 101. There is
 * no body and no secret: SSH, if that is what the stream carries, runs end
 * to end between the user's client and the VM. */
#include "api/api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/connect.h"
#include "api/validate.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/util.h"
#include "identity/ident.h"
#include "store/store.h"
#include "terminal/term.h"

#define STREAM_QUERY_MAX 1024

struct stream_req {
	const char *bastion; /* NULL when omitted */
	int port;            /* 0 when omitted: the VM's ssh_port */
};

/* Row 2 for a stream: the upgrade and the query string. */
static int parse_query(struct api_call *c, char *q, struct stream_req *r)
{
	char *part, *rest;

	if (!c->req->websocket || !c->req->ws_protocol ||
	    !strstr(c->req->ws_protocol, TERM_STREAM_PROTOCOL)) {
		api_error(c->resp, 400, "InvalidRequest",
			  "this endpoint needs a WebSocket upgrade with subprotocol "
			  "bastion.stream.v1");
		return -EINVAL;
	}
	if (util_strlcpy(q, c->req->query ? c->req->query : "", STREAM_QUERY_MAX) < 0) {
		api_error(c->resp, 400, "InvalidRequest", "the query string is too long");
		return -EINVAL;
	}
	for (part = q; part; part = rest) {
		char *eq, *v, *end;
		long port;

		rest = strchr(part, '&');
		if (rest)
			*rest++ = '\0';
		if (!part[0])
			continue;
		eq = strchr(part, '=');
		if (!eq) {
			api_error(c->resp, 400, "InvalidRequest",
				  "query: '%.64s' is not name=value", part);
			return -EINVAL;
		}
		*eq = '\0';
		v = eq + 1;
		if (util_pct_decode(part) < 0 || util_pct_decode(v) < 0) {
			api_error(c->resp, 400, "InvalidRequest", "query: bad percent-encoding");
			return -EINVAL;
		}
		if (strcmp(part, "bastion") == 0 && !r->bastion) {
			r->bastion = v;
		} else if (strcmp(part, "port") == 0 && !r->port) {
			errno = 0;
			port = strtol(v, &end, 10);
			if (v[0] < '1' || v[0] > '9' || *end || errno || port > 65535) {
				api_error(c->resp, 400, "InvalidRequest",
					  "port: must be an integer from 1 to 65535");
				return -EINVAL;
			}
			r->port = (int)port;
		} else {
			api_error(c->resp, 400, "InvalidRequest",
				  "query: %.64s is unknown or given twice (allowed: port, bastion)",
				  part);
			return -EINVAL;
		}
	}
	return 0;
}

static bool port_listed(const json_t *bastion, int port)
{
	size_t i;
	json_t *p;

	json_array_foreach (json_object_get(bastion, "tunnel_ports"), i, p)
		if (json_is_integer(p) && json_integer_value(p) == port)
			return true;
	return false;
}

/* A stream refused here is audited as a refused connect is. */
static void audit_refusal(struct api_call *c, const char *vm_id, const char *bastion, int port)
{
	api_connect_refused(
		c, vm_id,
		json_pack("{s:s,s:s?,s:i}", "kind", "tunnel", "bastion", bastion, "port", port));
}

void api_stream(struct api_call *c)
{
	struct ident_creds creds = api_creds(c->req);
	struct stream_req r = { 0 };
	struct connect_target t = { 0 };
	struct term_stream *ts = NULL;
	char q[STREAM_QUERY_MAX];
	int ssh_port;

	/* A browser sends its cookie with a WebSocket from any page: a
	 * cookie-signed stream must come from the bastion's own pages. Tokens
	 * (the CLI) are not sent by browsers on their own. */
	if (!c->req->authorization && !ident_origin_is_own(&creds)) {
		api_error(c->resp, 403, "OriginMismatch",
			  "a stream signed in with a cookie may only be opened from this bastion's "
			  "own pages");
		goto out;
	}
	if (parse_query(c, q, &r) < 0)
		goto out;
	if (api_connect_target(c, r.bastion, &t) < 0)
		goto out;
	ssh_port = (int)json_integer_value(json_object_get(t.vm, "ssh_port"));
	if (ssh_port == 0)
		ssh_port = 22;
	if (!r.port)
		r.port = ssh_port;
	if (r.port != ssh_port && !port_listed(t.bastion, r.port)) {
		api_error(c->resp, 403, "PortNotAllowed",
			  "port %d: a stream may go to the VM's ssh_port (%d) or a port in the "
			  "tunnel_ports of %s",
			  r.port, ssh_port, t.bastion_id);
		goto out;
	}
	ts = calloc(1, sizeof(*ts));
	if (!ts) {
		api_error(c->resp, 503, "ServiceUnavailable", "out of memory");
		goto out;
	}
	ts->user_id = c->who->user_id;
	ts->end_gen = c->end_gen;
	util_strlcpy(ts->user, c->who->name, sizeof(ts->user));
	util_strlcpy(ts->vm_id, t.vm_id, sizeof(ts->vm_id));
	util_strlcpy(ts->bastion_id, t.bastion_id, sizeof(ts->bastion_id));
	util_strlcpy(ts->source, c->req->remote_addr, sizeof(ts->source));
	util_strlcpy(ts->ip, t.ip, sizeof(ts->ip));
	ts->port = (uint16_t)r.port;
	ts->connect_timeout_ms = TERM_STREAM_DIAL_TIMEOUT_MS;
	c->resp->next = term_stream_next;
	c->resp->next_arg = ts;
	c->resp->status = 101; /* provisional: the loop answers */
out:
	if (c->resp->status >= 400)
		audit_refusal(c, t.vm_id, t.bastion_id[0] ? t.bastion_id : r.bastion, r.port);
	api_connect_target_done(&t);
}
