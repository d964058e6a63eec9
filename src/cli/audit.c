/* `bastion audit [list] [filters] [--follow]`: the audit trail over the API
 * (GET /audit, Owner at /). A list is one page, newest first, as a table;
 * --follow prints the latest records oldest first and then polls for new
 * ones every --interval seconds (bounded: 1 to 60) until Ctrl-C, one line
 * per record (a JSON line each with -o json). `bastion audit export`, which
 * reads a data directory without a server, is export.c's. */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <string.h>
#include <time.h>

static const char audit_usage[] =
	"usage: bastion audit [list] [--principal P] [--action A] [--target T] [--result R]\n"
	"                     [--since T] [--until T] [--limit N] [--follow [--interval S]]\n"
	"       bastion audit export --data DIR [--since T] [--until T] [--principal P] [--action A]\n"
	"  list            the newest records first (Owner at /); TIME in UTC, seconds in -o json\n"
	"  --principal P   user:NAME (a bare NAME means user:NAME); --action, --target and\n"
	"                  --result match exactly\n"
	"  --since/--until T  unix seconds or 2025-01-31T12:00:00Z (since inclusive)\n"
	"  --limit N       at most N records (1-1000; default 100, 10 with --follow)\n"
	"  -f, --follow    the latest records oldest first, then new ones as they come,\n"
	"                  until Ctrl-C; -o json prints one JSON object per line\n"
	"  --interval S    seconds between two polls with --follow (1-60, default 2)\n"
	"  export          read DIR's store directly, without a server (see --help there)\n"
	"  -o, --output FORMAT  table (default) or json\n";

static const struct cli_column audit_cols[] = {
	{ "TIME", "ts", false },       { "PRINCIPAL", "principal", false },
	{ "ACTION", "action", false }, { "TARGET", "target", false },
	{ "RESULT", "result", false },
};
#define NCOLS (sizeof(audit_cols) / sizeof(audit_cols[0]))

#define FOLLOW_PAGES_MAX 50 /* pages read per poll: 50,000 records */
#define QUERY_MAX        1024

static volatile sig_atomic_t stop_following;

static void on_interrupt(int sig)
{
	(void)sig;
	stop_following = 1;
}

/* Appends "&key=escaped" (or "?key=...") to path. */
static int add_query(char *path, size_t size, const char *key, const char *value)
{
	char esc[QUERY_MAX];
	size_t n = strlen(path);
	int k;

	if (cli_query_escape(value, esc, sizeof(esc)) < 0)
		return -1;
	k = snprintf(path + n, size - n, "%c%s=%s", strchr(path, '?') ? '&' : '?', key, esc);
	return k < 0 || (size_t)k >= size - n ? -1 : 0;
}

/* One record as a line: the table's columns, two spaces apart. */
static int print_line(struct cli *c, const json_t *rec)
{
	char cell[CLI_CELL_MAX];
	char *text;

	if (cli_output(c) == CLI_OUT_JSON) {
		if (!(text = json_dumps(rec, JSON_COMPACT)))
			return -ENOMEM;
		fprintf(stdout, "%s\n", text);
		cli_json_free_text(text);
	} else {
		for (size_t i = 0; i < NCOLS; i++) {
			cli_cell_of(audit_cols[i].key, json_object_get(rec, audit_cols[i].key),
				    false, cell, sizeof(cell));
			fprintf(stdout, "%s%s", i ? "  " : "", cell);
		}
		fputc('\n', stdout);
	}
	return ferror(stdout) ? (errno ? -errno : -EIO) : 0;
}

/* Prints the records of the array newer than *last_id, oldest first
 * (the array is newest first), and moves *last_id and *last_ts on. */
static int print_new(struct cli *c, const json_t *recs, long long *last_id, long long *last_ts)
{
	for (size_t i = json_array_size(recs); i-- > 0;) {
		const json_t *rec = json_array_get(recs, i);
		long long id = (long long)json_integer_value(json_object_get(rec, "id"));
		int r;

		if (id <= *last_id)
			continue;
		if ((r = print_line(c, rec)) < 0)
			return r;
		*last_id = id;
		*last_ts = (long long)json_integer_value(json_object_get(rec, "ts"));
	}
	errno = 0;
	return fflush(stdout) == 0 ? 0 : errno ? -errno : -EIO;
}

/* Sleeps s seconds in short steps, so that Ctrl-C ends it at once. */
static void nap(long s)
{
	struct timespec step = { 0, 100 * 1000 * 1000 };

	for (long i = 0; i < s * 10 && !stop_following; i++)
		nanosleep(&step, NULL);
}

/* One poll: every record newer than *last_id, page after page (newest
 * first) until one reaches back to it, then printed oldest first.
 * Returns an enum cli_exit value, or -EPIPE when the reader went away. */
static int poll_once(struct cli *c, const char *filters, long long *last_id, long long *last_ts)
{
	char path[CLI_PATH_MAX + 64], since[32];
	json_t *all = json_array(), *answer = NULL;
	const json_t *next;
	bool reached = false;
	int r = CLI_OK;

	if (!all)
		return CLI_ESERVER;
	snprintf(since, sizeof(since), "%lld", *last_ts);
	for (int page = 0; page < FOLLOW_PAGES_MAX && !reached; page++) {
		const json_t *value;

		snprintf(path, sizeof(path), "%s", filters);
		/* Nothing seen yet: the filters' own since still holds. */
		if ((*last_ts > 0 && add_query(path, sizeof(path), "since", since) < 0) ||
		    add_query(path, sizeof(path), "limit", "1000") < 0) {
			r = CLI_EUSAGE;
			break;
		}
		next = json_object_get(answer, "next");
		if (page > 0 &&
		    add_query(path, sizeof(path), "cursor", json_string_value(next)) < 0) {
			r = CLI_EUSAGE;
			break;
		}
		json_decref(answer);
		answer = NULL;
		if ((r = cli_call(c, "GET", path, NULL, &answer, NULL)) != CLI_OK)
			break;
		value = json_object_get(answer, "value");
		for (size_t i = 0; i < json_array_size(value); i++) {
			json_t *rec = json_array_get(value, i);

			if (json_integer_value(json_object_get(rec, "id")) <= *last_id) {
				reached = true;
				break;
			}
			json_array_append(all, rec);
		}
		if (!json_is_string(json_object_get(answer, "next")))
			reached = true;
	}
	if (r == CLI_OK && (r = print_new(c, all, last_id, last_ts)) < 0 && r != -EPIPE)
		r = CLI_ESERVER;
	json_decref(answer);
	json_decref(all);
	return r;
}

static int follow(struct cli *c, const char *filters, const char *first_page, long interval)
{
	struct sigaction sa = { .sa_handler = on_interrupt };
	long long last_id = 0, last_ts = 0;
	json_t *answer = NULL;
	int r;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if ((r = cli_call(c, "GET", first_page, NULL, &answer, NULL)) != CLI_OK)
		return r;
	r = print_new(c, json_object_get(answer, "value"), &last_id, &last_ts);
	json_decref(answer);
	while (r == 0 && !stop_following) {
		nap(interval);
		if (stop_following)
			break;
		r = poll_once(c, filters, &last_id, &last_ts);
	}
	/* Ctrl-C, or a reader that went away (`| head`), ends it quietly. */
	if (r == -EPIPE)
		return CLI_OK;
	return r < 0 ? CLI_ESERVER : r;
}

int cli_cmd_audit(struct cli *c, int argc, char **argv)
{
	enum {
		O_PRINCIPAL = 1,
		O_ACTION,
		O_TARGET,
		O_RESULT,
		O_SINCE,
		O_UNTIL,
		O_LIMIT,
		O_INTERVAL
	};
	static const struct option opts[] = {
		{ "principal", required_argument, NULL, O_PRINCIPAL },
		{ "action", required_argument, NULL, O_ACTION },
		{ "target", required_argument, NULL, O_TARGET },
		{ "result", required_argument, NULL, O_RESULT },
		{ "since", required_argument, NULL, O_SINCE },
		{ "until", required_argument, NULL, O_UNTIL },
		{ "limit", required_argument, NULL, O_LIMIT },
		{ "follow", no_argument, NULL, 'f' },
		{ "interval", required_argument, NULL, O_INTERVAL },
		CLI_COMMON_OPTIONS,
		{ 0 },
	};
	static const char *const names[] = { NULL,     "principal", "action", "target",
					     "result", "since",     "until" };
	char filters[CLI_PATH_MAX], first[CLI_PATH_MAX + 32], principal[256], limit_text[16];
	const char *vals[7] = { 0 }, *limit_arg = NULL;
	long limit = 0, interval = 2;
	bool help = false, follow_mode = false;
	json_t *answer = NULL;
	int opt, r;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":fho:", opts, NULL)) != -1) {
		switch (opt) {
		case O_PRINCIPAL:
		case O_ACTION:
		case O_TARGET:
		case O_RESULT:
		case O_SINCE:
		case O_UNTIL:
			vals[opt] = optarg;
			break;
		case O_LIMIT:
			if (cli_parse_int(optarg, 1, 1000, &limit) < 0)
				return cli_usage_error(audit_usage, "--limit must be 1 to 1000");
			limit_arg = optarg;
			break;
		case O_INTERVAL:
			if (cli_parse_int(optarg, 1, 60, &interval) < 0)
				return cli_usage_error(audit_usage,
						       "--interval must be 1 to 60 seconds");
			break;
		case 'f':
			follow_mode = true;
			break;
		default:
			r = cli_common_option(c, opt, argv, audit_usage, &help);
			if (r != CLI_OK || help)
				return r < 0 ? cli_usage_error(audit_usage, "unknown option") : r;
		}
	}
	if (optind < argc && strcmp(argv[optind], "list") == 0)
		optind++;
	if (optind < argc)
		return cli_usage_error(audit_usage, "unexpected argument '%s'", argv[optind]);
	if (follow_mode && vals[O_UNTIL])
		return cli_usage_error(audit_usage, "--follow and --until do not go together");
	if (vals[O_PRINCIPAL] && !strchr(vals[O_PRINCIPAL], ':')) {
		int k = snprintf(principal, sizeof(principal), "user:%s", vals[O_PRINCIPAL]);

		/* Refused, not cut: a shortened name would filter for another. */
		if (k < 0 || (size_t)k >= sizeof(principal))
			return cli_usage_error(NULL, "--principal: at most %zu bytes",
					       sizeof(principal) - 6);
		vals[O_PRINCIPAL] = principal;
	}
	if (cli_path(filters, sizeof(filters), "audit", (char *)NULL) < 0)
		return CLI_EUSAGE;
	for (int i = O_PRINCIPAL; i <= O_UNTIL; i++)
		if (vals[i] && add_query(filters, sizeof(filters), names[i], vals[i]) < 0)
			return cli_usage_error(audit_usage, "--%s is too long", names[i]);
	snprintf(limit_text, sizeof(limit_text), "%ld", limit ? limit : follow_mode ? 10 : 100);
	snprintf(first, sizeof(first), "%s", filters);
	if ((limit_arg || follow_mode) && add_query(first, sizeof(first), "limit", limit_text) < 0)
		return CLI_EUSAGE;
	if ((r = cli_connect(c)) != CLI_OK)
		return r;
	if (follow_mode)
		return follow(c, filters, first, interval);
	if ((r = cli_call(c, "GET", first, NULL, &answer, NULL)) == CLI_OK)
		r = cli_print_list(c, answer, audit_cols, NCOLS);
	json_decref(answer);
	return r;
}
