/* `bastion audit export --data DIR [filters]`: the audit trail of a data
 * directory as JSON lines, oldest first, read straight from the store
 * (store_audit_query_ro: read-only, without a server, safe while an
 * instance runs). Called by main.c before anything else is set up; the
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
#include "store/store_ops.h"

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
