/* `bastion version [--server]` and `bastion completion bash|zsh`. */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>

static const char version_usage[] =
	"usage: bastion version [--server] [-o json]\n"
	"  prints this client's version; with --server also the version of the bastion\n"
	"  you are logged in to (GET /api/v1/version, any signed-in account)\n"
	"  -o, --output FORMAT  table (default) or json: {\"version\":..., \"server_version\":...}\n";

static const char completion_usage[] =
	"usage: bastion completion bash|zsh\n"
	"  prints a completion script for the shell, made from bastion's own command table:\n"
	"    bash: source <(bastion completion bash)   (e.g. in ~/.bashrc), or save it as\n"
	"          /etc/bash_completion.d/bastion\n"
	"    zsh:  source <(bastion completion zsh)    (after compinit in ~/.zshrc), or save\n"
	"          it as _bastion in a directory of $fpath\n";

int cli_cmd_version(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = { { "server", no_argument, NULL, 's' },
					      CLI_COMMON_OPTIONS,
					      { 0 } };
	json_t *out = NULL, *answer = NULL;
	const char *server = NULL;
	bool help = false, ask = false;
	int opt, r;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
		if (opt == 's') {
			ask = true;
			continue;
		}
		r = cli_common_option(c, opt, argv, version_usage, &help);
		if (r != CLI_OK || help)
			return r < 0 ? cli_usage_error(version_usage, "unknown option") : r;
	}
	if (optind < argc)
		return cli_usage_error(version_usage, "unexpected argument '%s'", argv[optind]);
	if (ask) {
		if ((r = cli_connect(c)) != CLI_OK ||
		    (r = cli_call(c, "GET", "/version", NULL, &answer, NULL)) != CLI_OK)
			goto out;
		server = json_string_value(json_object_get(answer, "version"));
		if (!server) {
			fprintf(stderr, "bastion: the server's answer has no version\n");
			r = CLI_ESERVER;
			goto out;
		}
	}
	r = CLI_OK;
	if (cli_output(c) == CLI_OUT_JSON) {
		out = json_pack("{s:s}", "version", BASTION_VERSION);
		if (out && server)
			json_object_set_new(out, "server_version", json_string(server));
		if (!out || cli_print_json(stdout, out) < 0)
			r = CLI_ESERVER;
	} else {
		printf("bastion %s\n", BASTION_VERSION);
		if (server)
			printf("server %s\n", server);
	}
out:
	json_decref(out);
	json_decref(answer);
	return r;
}

int cli_cmd_completion(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = { { "help", no_argument, NULL, 'h' }, { 0 } };
	const struct cli_command *cmds;
	size_t n;
	int opt;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (opt == 'h') {
			fputs(completion_usage, stdout);
			return CLI_OK;
		}
		return cli_usage_error(completion_usage, "unknown option '%s'", argv[optind - 1]);
	}
	if (argc - optind != 1)
		return cli_usage_error(completion_usage, "completion needs one shell: bash or zsh");
	cmds = cli_commands(&n);
	if (cli_completion_write(stdout, argv[optind], cmds, n) == -EINVAL)
		return cli_usage_error(completion_usage, "no completion for '%s': bash or zsh",
				       argv[optind]);
	return CLI_OK;
}
