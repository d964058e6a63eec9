/* `bastion user ...`: accounts, through /api/v1/users (Owner at "/").
 * PUT /users/{name} takes {password?, disabled?} and treats a missing
 * "disabled" as false, so every change here reads the account first and
 * keeps what it does not mean to change. */
#include "cli/cli.h"

#include <getopt.h>
#include <string.h>

#include <sodium.h>

static const char user_usage[] =
	"usage: bastion user list\n"
	"       bastion user show NAME\n"
	"       bastion user create NAME [--password-stdin]\n"
	"       bastion user set-password NAME [--password-stdin]\n"
	"       bastion user disable NAME\n"
	"       bastion user enable NAME\n"
	"       bastion user delete NAME\n"
	"  --password-stdin  read the password from the first line of stdin; without it\n"
	"                    the password is asked for (twice) on the terminal\n"
	"  --output FORMAT   table (default) or json\n"
	"Passwords have at least 12 characters. Disabling an account ends its sessions.\n";

static const struct cli_column user_cols[] = {
	{ "NAME", "name", false },
	{ "DISABLED", "disabled", false },
	{ "CREATED_AT", "created_at", false },
};

/* GET /users/{name}; prints the API's error (404 included) on failure. */
static int get_user(struct cli *c, const char *path, json_t **ret)
{
	return cli_call(c, "GET", path, NULL, ret, NULL);
}

int cli_cmd_user(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "password-stdin", no_argument, NULL, 'p' },
		CLI_COMMON_OPTIONS,
		{ 0 },
	};
	char path[CLI_PATH_MAX];
	json_t *body = NULL, *answer = NULL, *cur = NULL;
	char *password = NULL;
	const char *action, *name = NULL;
	bool from_stdin = false, help = false, needs_pw;
	int opt, r;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
		if (opt == 'p') {
			from_stdin = true;
			continue;
		}
		r = cli_common_option(c, opt, argv, user_usage, &help);
		if (r != CLI_OK || help)
			return r;
	}
	if (optind >= argc)
		return cli_usage_error(user_usage, "user needs an action");
	action = argv[optind++];
	if (strcmp(action, "list") == 0) {
		if (optind != argc)
			return cli_usage_error(user_usage, "user list takes no arguments");
	} else if (strcmp(action, "show") == 0 || strcmp(action, "create") == 0 ||
		   strcmp(action, "set-password") == 0 || strcmp(action, "disable") == 0 ||
		   strcmp(action, "enable") == 0 || strcmp(action, "delete") == 0) {
		if (optind != argc - 1)
			return cli_usage_error(user_usage, "user %s takes one NAME", action);
		name = argv[optind];
	} else {
		return cli_usage_error(user_usage, "unknown action '%s'", action);
	}
	needs_pw = strcmp(action, "create") == 0 || strcmp(action, "set-password") == 0;
	if (from_stdin && !needs_pw)
		return cli_usage_error(user_usage,
				       "--password-stdin goes with create and set-password");
	if (name ? cli_path(path, sizeof(path), "users", name, (char *)NULL) < 0
		 : cli_path(path, sizeof(path), "users", (char *)NULL) < 0)
		return cli_usage_error(user_usage, "the name must not be empty");
	if ((r = cli_connect(c)) != CLI_OK)
		return r;

	if (strcmp(action, "list") == 0) {
		if ((r = cli_call(c, "GET", path, NULL, &answer, NULL)) == CLI_OK)
			r = cli_print_list(c, answer, user_cols,
					   sizeof(user_cols) / sizeof(user_cols[0]));
		goto out;
	}
	if (strcmp(action, "show") == 0) {
		if ((r = get_user(c, path, &answer)) == CLI_OK)
			r = cli_print_object(c, answer);
		goto out;
	}
	if (strcmp(action, "delete") == 0) {
		if ((r = cli_call(c, "DELETE", path, NULL, NULL, NULL)) == CLI_OK &&
		    cli_output(c) == CLI_OUT_TABLE)
			printf("Deleted user %s\n", name);
		goto out;
	}
	if (strcmp(action, "create") == 0) {
		/* PUT would replace an existing account's password: refuse. */
		r = cli_call_quiet404(c, "GET", path, NULL, NULL);
		if (r == CLI_OK) {
			fprintf(stderr,
				"bastion: Conflict: user '%s' already exists "
				"(use `bastion user set-password`)\n",
				name);
			r = CLI_EAPI;
			goto out;
		}
		if (r != CLI_ENOTFOUND)
			goto out;
		/* Created meanwhile by someone else: 412, never a replace. */
		if (cli_set_header(c, "If-None-Match", "*") < 0) {
			r = CLI_ECONN;
			goto out;
		}
		body = json_object();
	} else {
		/* The account must exist, and keeps the state it has. */
		if ((r = get_user(c, path, &cur)) != CLI_OK)
			goto out;
		if (strcmp(action, "set-password") == 0)
			body = json_pack("{s:O?}", "disabled", json_object_get(cur, "disabled"));
		else
			body = json_pack("{s:b}", "disabled", strcmp(action, "disable") == 0);
	}
	r = CLI_ECONN;
	if (!body)
		goto out;
	if (needs_pw) {
		if (!(password = sodium_malloc(CLI_SECRET_MAX)))
			goto out;
		if ((r = cli_get_password("New password: ", from_stdin, true, password,
					  CLI_SECRET_MAX)) != CLI_OK)
			goto out;
		r = json_object_set_new(body, "password", json_string(password)) < 0 ? CLI_EUSAGE
										     : CLI_OK;
		sodium_memzero(password, CLI_SECRET_MAX);
		if (r != CLI_OK) {
			fprintf(stderr, "bastion: the password is not valid UTF-8\n");
			goto out;
		}
	}
	if ((r = cli_call(c, "PUT", path, body, &answer, NULL)) == CLI_OK)
		r = cli_print_object(c, answer);
out:
	json_decref(body);
	json_decref(answer);
	json_decref(cur);
	sodium_free(password);
	return r;
}
