/* `bastion token list|create|revoke` (issue 19): the caller's API tokens
 * through /api/v1/tokens — listed by public id (never the secret), made
 * with a name and a scope (a "metrics" token for a Prometheus scraper
 * reads GET /metrics and nothing else), revoked by id. An Owner at "/"
 * lists anyone's (--user) and revokes anyone's by id. */
#include "cli/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char token_usage[] =
	"usage: bastion token list [--user NAME]\n"
	"       bastion token create [--name NAME] [--scope all|metrics] [--expires-in SECONDS]\n"
	"       bastion token revoke ID\n"
	"  list            your unexpired tokens (Owner at /: --user NAME for another's);\n"
	"                  times in UTC, seconds in -o json\n"
	"  create          a new token, printed once: keep it (default scope all, 30 days)\n"
	"  --scope metrics the token reads GET /metrics and nothing else\n"
	"  revoke ID       revoke one (yours; Owner at /: anyone's); audited\n"
	"  -o, --output FORMAT  table (default) or json\n";

static const struct cli_column token_cols[] = {
	{ "ID", "id", false },
	{ "NAME", "name", false },
	{ "USER", "user", false },
	{ "SCOPE", "scope", false },
	{ "CREATED_AT", "created_at", false },
	{ "LAST_USED_AT", "last_used_at", false },
	{ "EXPIRES_AT", "expires_at", false },
};

enum { OPT_NAME = 1000, OPT_SCOPE, OPT_USER, OPT_EXPIRES };

static int create(struct cli *c, const char *name, const char *scope, const char *expires)
{
	json_t *body = json_object(), *answer = NULL;
	char *end = NULL;
	long long secs = 0;
	int r = CLI_ECONN;

	if (expires) {
		secs = strtoll(expires, &end, 10);
		if (!*expires || *end || secs <= 0) {
			json_decref(body);
			return cli_usage_error(token_usage, "--expires-in takes whole seconds");
		}
	}
	if (!body || (name && json_object_set_new(body, "name", json_string(name)) < 0) ||
	    (scope && json_object_set_new(body, "scope", json_string(scope)) < 0) ||
	    (expires && json_object_set_new(body, "expires_in", json_integer(secs)) < 0)) {
		fprintf(stderr, "bastion: --name and --scope must be valid UTF-8\n");
		json_decref(body);
		return CLI_EUSAGE;
	}
	if ((r = cli_connect(c)) == CLI_OK &&
	    (r = cli_call(c, "POST", "/tokens", body, &answer, NULL)) == CLI_OK) {
		r = cli_print_object(c, answer);
		fprintf(stderr, "bastion: the token is shown only now; store it safely\n");
	}
	json_decref(body);
	json_decref(answer);
	return r;
}

int cli_cmd_token(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, OPT_NAME },
		{ "scope", required_argument, NULL, OPT_SCOPE },
		{ "user", required_argument, NULL, OPT_USER },
		{ "expires-in", required_argument, NULL, OPT_EXPIRES },
		CLI_COMMON_OPTIONS,
		{ 0 },
	};
	char path[CLI_PATH_MAX], esc[256];
	const char *action, *id = NULL, *name = NULL, *scope = NULL, *user = NULL, *expires = NULL;
	bool help = false;
	int opt, r;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
		switch (opt) {
		case OPT_NAME:
			name = optarg;
			break;
		case OPT_SCOPE:
			scope = optarg;
			break;
		case OPT_USER:
			user = optarg;
			break;
		case OPT_EXPIRES:
			expires = optarg;
			break;
		default:
			r = cli_common_option(c, opt, argv, token_usage, &help);
			if (r != CLI_OK || help)
				return r;
		}
	}
	if (optind >= argc)
		return cli_usage_error(token_usage,
				       "token needs an action: list, create or revoke");
	action = argv[optind++];
	if (strcmp(action, "create") == 0) {
		if (optind != argc || user)
			return cli_usage_error(token_usage,
					       "token create takes --name, --scope, --expires-in");
		return create(c, name, scope, expires);
	}
	if (name || scope || expires)
		return cli_usage_error(token_usage,
				       "--name, --scope and --expires-in are for create");
	if (strcmp(action, "list") == 0) {
		if (optind != argc)
			return cli_usage_error(token_usage, "token list takes no argument");
		if (cli_path(path, sizeof(path), "tokens", (char *)NULL) < 0)
			return CLI_EUSAGE;
		if (user) {
			size_t n = strlen(path);

			if (cli_query_escape(user, esc, sizeof(esc)) < 0 ||
			    snprintf(path + n, sizeof(path) - n, "?user=%s", esc) >=
				    (int)(sizeof(path) - n))
				return cli_usage_error(token_usage, "--user is too long");
		}
	} else if (strcmp(action, "revoke") == 0) {
		if (optind != argc - 1 || user)
			return cli_usage_error(token_usage, "token revoke takes one ID");
		id = argv[optind];
		if (cli_path(path, sizeof(path), "tokens", id, (char *)NULL) < 0)
			return cli_usage_error(token_usage, "the ID must not be empty");
		action = "delete";
	} else {
		return cli_usage_error(token_usage, "unknown action '%s'", action);
	}
	if ((r = cli_connect(c)) != CLI_OK)
		return r;
	return cli_run_action(c, action, path, token_cols,
			      sizeof(token_cols) / sizeof(token_cols[0]), "Revoked API token %s\n",
			      id);
}
