/* `bastion session list|end`: the terminal sessions open now (GET
 * /sessions: the caller's own, and every one through a bastion the caller
 * owns) and ending one (DELETE /sessions/{id}; the terminal is told who
 * ended it). */
#include "cli/cli.h"

#include <getopt.h>
#include <string.h>

static const char session_usage[] =
	"usage: bastion session list\n"
	"       bastion session end ID\n"
	"  list            your open sessions, and every session through a bastion you own\n"
	"                  (Owner at / sees all); STARTED_AT in UTC, seconds in -o json\n"
	"  end ID          end one: its terminal is told who ended it; audited\n"
	"  -o, --output FORMAT  table (default) or json\n";

static const struct cli_column session_cols[] = {
	{ "ID", "id", false },
	{ "KIND", "kind", false },
	{ "USER", "user", false },
	{ "VM", "vm", false },
	{ "TARGET", "target", false },
	{ "SOURCE", "source", false },
	{ "STATE", "state", false },
	{ "STARTED_AT", "started_at", false },
	{ "DURATION_S", "duration_s", false },
	{ "BYTES_TO_VM", "bytes_to_vm", false },
	{ "BYTES_FROM_VM", "bytes_from_vm", false },
};

/* Accepts the bare id or the API's "/api/v1/sessions/{id}" and "/sessions/{id}". */
static const char *id_arg(const char *in)
{
	static const char *const prefixes[] = { "/api/v1/sessions/", "/sessions/" };

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (strncmp(in, prefixes[i], strlen(prefixes[i])) == 0)
			return in + strlen(prefixes[i]);
	return in;
}

int cli_cmd_session(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = { CLI_COMMON_OPTIONS, { 0 } };
	char path[CLI_PATH_MAX];
	const char *action, *id = NULL;
	bool help = false;
	int opt, r;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
		r = cli_common_option(c, opt, argv, session_usage, &help);
		if (r != CLI_OK || help)
			return r < 0 ? cli_usage_error(session_usage, "unknown option") : r;
	}
	if (optind >= argc)
		return cli_usage_error(session_usage, "session needs an action: list or end");
	action = argv[optind++];
	if (strcmp(action, "list") == 0) {
		if (optind != argc)
			return cli_usage_error(session_usage, "session list takes no argument");
		if (cli_path(path, sizeof(path), "sessions", (char *)NULL) < 0)
			return CLI_EUSAGE;
	} else if (strcmp(action, "end") == 0) {
		if (optind != argc - 1)
			return cli_usage_error(session_usage, "session end takes one ID");
		id = id_arg(argv[optind]);
		if (cli_path(path, sizeof(path), "sessions", id, (char *)NULL) < 0)
			return cli_usage_error(session_usage, "the ID must not be empty");
		action = "delete";
	} else {
		return cli_usage_error(session_usage, "unknown action '%s'", action);
	}
	if ((r = cli_connect(c)) != CLI_OK)
		return r;
	return cli_run_action(c, action, path, session_cols,
			      sizeof(session_cols) / sizeof(session_cols[0]), "Ended session %s\n",
			      id);
}
