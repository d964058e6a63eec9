/* GET /audit, GET /metrics (the worker half) and `bastion audit export`.
 *
 * The audit list is newest first. Paging: a full page carries "next", an
 * opaque cursor; pass it back as ?cursor= with the same filters for the
 * page after. */
#include "api/api.h"

#include <errno.h>
#include <getopt.h>
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

/* Unix seconds, or RFC 3339 in UTC ("2025-01-31T12:00:00Z"). */
static int parse_time(const char *v, int64_t *ret)
{
	struct tm tm = { 0 };
	const char *end;
	char *e;
	long long n;

	if (!v[0])
		return -EINVAL;
	errno = 0;
	n = strtoll(v, &e, 10);
	if (!errno && !*e && n >= 0) {
		*ret = n;
		return 0;
	}
	end = strptime(v, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end || strcmp(end, "Z") != 0)
		return -EINVAL;
	*ret = (int64_t)timegm(&tm);
	return 0;
}

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
	json_t *body;
	int r;

	r = authz_require(c->ctx->store, c->who, AUTHZ_OWNER, "/");
	if (r == -EACCES) {
		api_error(c->resp, 403, "AuthorizationFailed",
			  "Owner on / is required to read the audit trail");
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
			if (parse_time(v, part[0] == 's' ? &f.since : &f.until) < 0) {
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
	body = json_pack("{s:o}", "value", p.arr);
	if (body && p.more) {
		char next[32];

		snprintf(next, sizeof(next), "%lld", (long long)p.last_id);
		json_object_set_new(body, "next", json_string(next));
	}
	api_json(c->resp, 200, body);
}

/* GET /metrics: rendered here on the worker, from counters and a
 * snapshot of the session registry. */
void api_metrics(struct api_call *c)
{
	int r = authz_require(c->ctx->store, c->who, AUTHZ_READER, "/");
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
	if (metrics_render(active, dialing, loops, &text, &len) < 0) {
		api_error(c->resp, 503, "ServiceUnavailable", "out of memory");
		return;
	}
	c->resp->status = 200;
	c->resp->raw = text;
	c->resp->raw_len = len;
	c->resp->raw_type = "text/plain; version=0.0.4; charset=utf-8";
}

/* ---------- bastion audit export ---------- */

static int print_line(const struct store_audit_rec *r, void *ud)
{
	json_t *o = store_audit_json(r);
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	int rc = 0;

	json_decref(o);
	if (!text)
		return -ENOMEM;
	errno = 0;
	if (puts(text) < 0)
		rc = errno ? -errno : -EIO;
	free(text);
	return rc;
}

int api_audit_export_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "since", required_argument, NULL, 's' },
		{ "until", required_argument, NULL, 'u' },
		{ "principal", required_argument, NULL, 'p' },
		{ "action", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static const char usage[] =
		"usage: bastion audit export --data DIR [--since T] [--until T] [--principal P] [--action A]\n"
		"  prints the audit trail of the instance whose data directory is DIR as JSON lines,\n"
		"  oldest first; T is unix seconds or a UTC time like 2025-01-31T12:00:00Z.\n"
		"  Reads the store read-only: safe while the instance runs.\n";
	struct store_audit_filter f = { .ascending = true };
	const char *data = NULL;
	int opt, r;

	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0)) {
		fputs(usage, stdout);
		return 0;
	}
	if (argc < 2 || strcmp(argv[1], "export") != 0) {
		fputs(usage, stderr);
		return 2;
	}
	argc--;
	argv++;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			data = optarg;
			break;
		case 'p':
			f.principal = optarg;
			break;
		case 'a':
			f.action = optarg;
			break;
		case 's':
		case 'u':
			if (parse_time(optarg, opt == 's' ? &f.since : &f.until) < 0) {
				fprintf(stderr,
					"bastion: --%s: unix seconds or a UTC time like 2025-01-31T12:00:00Z\n",
					opt == 's' ? "since" : "until");
				return 2;
			}
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (!data || optind < argc) {
		fputs(usage, stderr);
		return 2;
	}
	r = store_audit_query_ro(data, &f, print_line, NULL);
	errno = 0;
	if (fflush(stdout) != 0 && r == 0)
		r = errno ? -errno : -EIO;
	/* The reader closed the pipe (`| head`): it has what it wanted. */
	if (r == -EPIPE)
		return 0;
	if (r < 0) {
		fprintf(stderr, "bastion: cannot export the audit trail from %s: %s\n", data,
			err_str(r));
		return 1;
	}
	return 0;
}
