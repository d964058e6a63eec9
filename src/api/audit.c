/* GET /audit and GET /metrics (the worker half). `bastion audit export`
 * is a CLI command (cli/export.c).
 *
 * The audit list is newest first. Paging: a full page carries "next", an
 * opaque cursor; pass it back as ?cursor= with the same filters for the
 * page after. */
#include "api/api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "authz/authz.h"
#include "core/err.h"
#include "core/metrics.h"
#include "core/util.h"
#include "store/store.h"
#include "store/store_ops.h"
#include "terminal/term.h"

#define AUDIT_DEFAULT_LIMIT 100
#define AUDIT_MAX_LIMIT     1000

static int parse_id(const char *v, int64_t *ret)
{
	char *e;
	long long n;

	errno = 0;
	n = strtoll(v, &e, 10);
	if (errno || *e || n <= 0 || !v[0])
		return -EINVAL;
	*ret = n;
	return 0;
}

struct page {
	json_t *arr;
	int limit;
	int64_t last_id;
	bool more;
};

static int add_rec(const struct store_audit_rec *r, void *ud)
{
	struct page *p = ud;
	json_t *o;

	if ((int)json_array_size(p->arr) == p->limit) {
		p->more = true;
		return 1;
	}
	o = store_audit_json(r);
	if (!o || json_array_append_new(p->arr, o) < 0)
		return -ENOMEM;
	p->last_id = r->id;
	return 0;
}

void api_audit_list(struct api_call *c)
{
	struct store_audit_filter f = { 0 };
	struct page p = { .limit = AUDIT_DEFAULT_LIMIT };
	char q[2048], *part, *rest;
	int r;

	/* Owner or Auditor (audit/read) on "/": the trail spans every scope. */
	r = authz_require_perm(c->ctx->store, c->who, AUTHZ_PERM_AUDIT_READ, "/");
	if (r == -EACCES) {
		api_error(c->resp, 403, "AuthorizationFailed",
			  "Owner or Auditor on / is required to read the audit trail");
		return;
	}
	if (r < 0) {
		api_store_error(c->resp, r, "the caller's roles");
		return;
	}
	if (util_strlcpy(q, c->req->query ? c->req->query : "", sizeof(q)) < 0) {
		api_error(c->resp, 400, "InvalidRequest", "the query string is too long");
		return;
	}
	for (part = q; part; part = rest) {
		char *eq, *v;

		rest = strchr(part, '&');
		if (rest)
			*rest++ = '\0';
		if (!part[0])
			continue;
		eq = strchr(part, '=');
		if (!eq) {
			api_error(c->resp, 400, "InvalidRequest",
				  "query: '%.64s' is not name=value", part);
			return;
		}
		*eq = '\0';
		v = eq + 1;
		for (char *x = v; *x; x++)
			if (*x == '+')
				*x = ' ';
		if (util_pct_decode(part) < 0 || util_pct_decode(v) < 0) {
			api_error(c->resp, 400, "InvalidRequest", "query: bad percent-encoding");
			return;
		}
		if (strcmp(part, "principal") == 0) {
			f.principal = v;
		} else if (strcmp(part, "action") == 0) {
			f.action = v;
		} else if (strcmp(part, "target") == 0) {
			f.target = v;
		} else if (strcmp(part, "result") == 0) {
			f.result = v;
		} else if (strcmp(part, "since") == 0 || strcmp(part, "until") == 0) {
			if (util_parse_time(v, part[0] == 's' ? &f.since : &f.until) < 0) {
				api_error(
					c->resp, 400, "InvalidRequest",
					"%s: unix seconds or a UTC time like 2025-01-31T12:00:00Z",
					part);
				return;
			}
		} else if (strcmp(part, "limit") == 0) {
			int64_t n;

			if (parse_id(v, &n) < 0 || n > AUDIT_MAX_LIMIT) {
				api_error(c->resp, 400, "InvalidRequest",
					  "limit: an integer from 1 to %d", AUDIT_MAX_LIMIT);
				return;
			}
			p.limit = (int)n;
		} else if (strcmp(part, "cursor") == 0) {
			if (parse_id(v, &f.before_id) < 0) {
				api_error(c->resp, 400, "InvalidRequest",
					  "cursor: not a cursor from \"next\"");
				return;
			}
		} else {
			api_error(
				c->resp, 400, "InvalidRequest",
				"%.64s: unknown parameter (principal, action, target, result, since, until, limit, cursor)",
				part);
			return;
		}
	}
	f.limit = p.limit + 1; /* one more tells whether there is a next page */
	p.arr = json_array();
	if (!p.arr) {
		api_error(c->resp, 503, "ServiceUnavailable", "out of memory");
		return;
	}
	r = store_audit_query(c->ctx->store, &f, add_rec, &p);
	if (r < 0) {
		json_decref(p.arr);
		api_store_error(c->resp, r, "the audit trail");
		return;
	}
	api_json_page(c->resp, p.arr, p.more, (long long)p.last_id);
}

/* GET /metrics: rendered here on the worker, from counters and a
 * snapshot of the session registry. */
void api_metrics(struct api_call *c)
{
	int r = authz_require(c->ctx->store, c->who, AUTHZ_READER, "/");
	struct store_cache_stats cs;
	size_t active, dialing, len = 0;
	unsigned loops;
	char *text = NULL;

	if (r == -EACCES) {
		api_error(c->resp, 403, "AuthorizationFailed",
			  "Reader on / is required to read the metrics");
		return;
	}
	if (r < 0) {
		api_store_error(c->resp, r, "the caller's roles");
		return;
	}
	term_counts(&active, &dialing, &loops);
	store_cache_stats(c->ctx->store, &cs);
	metrics_store_cache(cs.listening, cs.entries, cs.bytes, cs.hits, cs.misses);
	if (metrics_render(active, dialing, loops, &text, &len) < 0) {
		api_error(c->resp, 503, "ServiceUnavailable", "out of memory");
		return;
	}
	c->resp->status = 200;
	c->resp->raw = text;
	c->resp->raw_len = len;
	c->resp->raw_type = "text/plain; version=0.0.4; charset=utf-8";
}
