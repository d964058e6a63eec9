/* `bastion audit export --data DIR | --store URL [filters]`: the audit
 * trail of a data directory (SQLite) or of a PostgreSQL store as JSON
 * lines, oldest first, read straight from the store (store_audit_query_ro,
 * store_open_url_ro: read-only, without a server, safe while instances
 * run). Called by main.c before anything else is set up; the
 * rest of `bastion audit` goes over the API (audit.c). Exit codes: 0, 1
 * when the store cannot be read, 2 for a usage error. */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/err.h"
#include "core/util.h"
#include "store/store.h"
#include "store/store_ops.h"

/* Rows fetched per query from PostgreSQL: an export of millions of records
 * never holds more than this many in memory. */
#define EXPORT_PAGE 1000

struct page {
	int64_t last_id;
	int n;
};

static int print_line(const struct store_audit_rec *r, void *ud);

static int page_line(const struct store_audit_rec *r, void *ud)
{
	struct page *pg = ud;

	pg->last_id = r->id;
	pg->n++;
	return print_line(r, NULL);
}

/* The trail of a PostgreSQL store, page after page by id. */
static int export_pg(const char *url, struct store_audit_filter *f)
{
	struct store *s = NULL;
	int version = 0, known = 0;
	int r = store_open_url_ro(url, &s, &version, &known);

	if (r == -EPROTO) {
		fprintf(stderr,
			"bastion: the PostgreSQL store has schema version %d, newer than this"
			" binary knows (%d): run the newer bastion\n",
			version, known);
		return r;
	}
	/* No instance has started on it yet: no trail. */
	if (r == 0 && version == 0) {
		store_free(s);
		return 0;
	}
	f->limit = EXPORT_PAGE;
	for (struct page pg = { 0 }; r == 0;) {
		pg.n = 0;
		r = store_audit_query(s, f, page_line, &pg);
		if (r < 0 || pg.n < EXPORT_PAGE)
			break;
		f->after_id = pg.last_id;
	}
	store_free(s);
	return r;
}

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

int cli_audit_export_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "store", required_argument, NULL, 'S' },
		{ "since", required_argument, NULL, 's' },
		{ "until", required_argument, NULL, 'u' },
		{ "principal", required_argument, NULL, 'p' },
		{ "action", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static const char usage[] =
		"usage: bastion audit export (--data DIR | --store URL) [--since T] [--until T]\n"
		"                            [--principal P] [--action A]\n"
		"  prints the audit trail of the instance whose data directory is DIR (SQLite), or\n"
		"  of the PostgreSQL store at URL (postgres://..., also BASTION_STORE), as JSON\n"
		"  lines, oldest first; T is unix seconds or a UTC time like 2025-01-31T12:00:00Z.\n"
		"  Reads the store read-only: safe while instances run.\n";
	struct store_audit_filter f = { .ascending = true };
	const char *data = NULL, *url = NULL;
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
		case 'S':
			url = optarg;
			break;
		case 'p':
			f.principal = optarg;
			break;
		case 'a':
			f.action = optarg;
			break;
		case 's':
		case 'u':
			if (util_parse_time(optarg, opt == 's' ? &f.since : &f.until) < 0) {
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
	/* The environment's store when no place is named on the command line. */
	if (!data && !url)
		url = getenv("BASTION_STORE");
	if (url && !url[0])
		url = NULL;
	if ((!data && !url) || optind < argc) {
		fputs(usage, stderr);
		return 2;
	}
	if (url && !store_url_is_pg(url)) {
		/* Not echoed: a URL may carry a password. */
		fputs("bastion: --store must be a postgres:// or postgresql:// URL\n", stderr);
		return 2;
	}
	r = url ? export_pg(url, &f) : store_audit_query_ro(data, &f, print_line, NULL);
	errno = 0;
	if (fflush(stdout) != 0 && r == 0)
		r = errno ? -errno : -EIO;
	/* The reader closed the pipe (`| head`): it has what it wanted. */
	if (r == -EPIPE)
		return 0;
	if (r < 0) {
		fprintf(stderr, "bastion: cannot export the audit trail from %s: %s\n",
			url ? "the PostgreSQL store" : data, err_str(r));
		return 1;
	}
	return 0;
}
