/* `bastion ssh VM [--bastion ID] [--port P] [-- SSH-ARGS...]`: runs the
 * system's OpenSSH client with a ProxyCommand of `bastion proxy` and the
 * VM's host key kept under an alias of its ID (docs/native-client.md);
 * and the option parsing the three native commands share. */
#include "cli/native.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/util.h"

static const char ssh_usage[] =
	"usage: bastion ssh VM [--bastion ID] [--port P] [-- SSH-ARGS...]\n"
	"  Runs the system's ssh to VM (/groups/{g}/vms/{name}) through the bastion:\n"
	"  ProxyCommand `bastion proxy VM`, the host key kept under the alias\n"
	"  bastion/groups/{g}/vms/{name}. SSH-ARGS follow the destination (-l user,\n"
	"  -i key, -L ..., a remote command).\n";

enum { OPT_BASTION = 0x2000, OPT_PORT, OPT_LOCAL_PORT, OPT_BIND };

static int opt_value(struct cli_native_opts *o, int opt, const char *v, const char *usage)
{
	const char *what = opt == OPT_PORT ? "--port" : "--local-port";
	long *port = opt == OPT_PORT ? &o->port : &o->local_port;

	if (opt == OPT_BASTION) {
		o->bastion = v;
	} else if (opt == OPT_BIND) {
		o->bind = v;
	} else if (cli_parse_int(v, 1, 65535, port) < 0) {
		return cli_usage_error(usage, "%s: a port number from 1 to 65535", what);
	}
	return CLI_OK;
}

int cli_native_args(struct cli *c, int argc, char **argv, const char *usage,
		    struct cli_native_opts *o, bool *ret_help)
{
	static const struct option opts[] = {
		{ "bastion", required_argument, NULL, OPT_BASTION },
		{ "port", required_argument, NULL, OPT_PORT },
		{ "local-port", required_argument, NULL, OPT_LOCAL_PORT },
		{ "bind", required_argument, NULL, OPT_BIND },
		CLI_COMMON_OPTIONS,
		{ 0 },
	};
	int opt, r;

	optind = 0;
	opterr = 0;
	/* "+": stop at the first operand, so that what follows the VM (ssh's
	 * arguments after "--") is left alone. */
	while ((opt = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		if (opt >= OPT_BASTION && opt <= OPT_BIND) {
			if ((r = opt_value(o, opt, optarg, usage)) != CLI_OK)
				return r;
		} else {
			r = cli_common_option(c, opt, argv, usage, ret_help);
			if (r != CLI_OK || *ret_help)
				return r < 0 ? cli_usage_error(usage, "unknown option") : r;
		}
	}
	if (optind >= argc)
		return cli_usage_error(usage, "a VM ID is required, /groups/{g}/vms/{name}");
	o->vm = argv[optind++];
	/* Options may also follow the VM, before "--". */
	while (optind < argc && strcmp(argv[optind], "--") != 0) {
		static const struct {
			const char *name;
			int opt;
		} after[] = { { "--bastion", OPT_BASTION },
			      { "--port", OPT_PORT },
			      { "--local-port", OPT_LOCAL_PORT },
			      { "--bind", OPT_BIND } };
		const char *a = argv[optind];
		int found = 0;

		for (size_t i = 0; i < sizeof(after) / sizeof(after[0]); i++)
			if (strcmp(a, after[i].name) == 0)
				found = after[i].opt;
		if (!found || optind + 1 >= argc)
			return cli_usage_error(usage, "unexpected argument '%s'", a);
		if ((r = opt_value(o, found, argv[optind + 1], usage)) != CLI_OK)
			return r;
		optind += 2;
	}
	if (optind < argc)
		optind++; /* the "--" */
	{
		char g[65], name[65];

		if (cli_vm_split(o->vm, g, name) < 0)
			return cli_usage_error(usage, "'%s' is not a VM ID, /groups/{g}/vms/{name}",
					       o->vm);
	}
	return CLI_OK;
}

int cli_cmd_ssh(struct cli *c, int argc, char **argv)
{
	struct cli_native_opts o = { 0 };
	char self[4096], **v = NULL;
	bool help = false;
	ssize_t n;
	int r;

	r = cli_native_args(c, argc, argv, ssh_usage, &o, &help);
	if (r != CLI_OK || help)
		return r;
	if (o.local_port || o.bind)
		return cli_usage_error(ssh_usage, "--local-port and --bind are tunnel's");
	/* Not signed in: said here, not as a bare "Connection closed" from ssh. */
	if ((r = cli_connect(c)) != CLI_OK)
		return r;
	/* The proxy is this very binary, wherever it was installed. */
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0 || (size_t)n >= sizeof(self) - 1)
		util_strlcpy(self, "bastion", sizeof(self));
	else
		self[n] = '\0';
	r = cli_ssh_argv(self, &o, argv + optind, argc - optind, &v);
	if (r < 0)
		return cli_usage_error(ssh_usage, "cannot build ssh's command line: %s",
				       r == -EINVAL ? "bad VM ID" : "too long");
	fflush(stdout);
	execvp("ssh", v);
	fprintf(stderr, "bastion: cannot run ssh: %s\n", strerror(errno));
	cli_ssh_argv_free(v);
	return CLI_ECONN;
}
