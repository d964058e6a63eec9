/* `bastion proxy VM [--bastion ID] [--port P]`: standard input and output
 * joined to a TCP stream to the VM (docs/native-client.md), for ssh's
 * ProxyCommand, scp, sftp and rsync -e. End of standard input is a
 * half-close; the command exits when the stream ends. */
#include "cli/native.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/ws.h"
#include "cli/wsout.h"

static const char proxy_usage[] =
	"usage: bastion proxy VM [--bastion ID] [--port P]\n"
	"  Joins standard input and output to a TCP stream to VM (/groups/{g}/vms/{name})\n"
	"  through the bastion: port P (default: the VM's ssh_port). For\n"
	"  ssh -o ProxyCommand='bastion proxy /groups/g/vms/web1' user@web1.\n";

int cli_cmd_proxy(struct cli *c, int argc, char **argv)
{
	struct cli_native_opts o = { 0 };
	struct cli_ws_target t;
	struct cli_ws *w = NULL;
	char path[CLI_PATH_MAX];
	bool help = false;
	int r;

	r = cli_native_args(c, argc, argv, proxy_usage, &o, &help);
	if (r != CLI_OK || help)
		return r;
	if (optind != argc)
		return cli_usage_error(proxy_usage, "proxy takes no arguments after --");
	if (o.local_port || o.bind)
		return cli_usage_error(proxy_usage, "--local-port and --bind are tunnel's");
	if (cli_stream_path(&o, path, sizeof(path)) < 0)
		return cli_usage_error(proxy_usage, "the VM ID or --bastion is not valid");
	if ((r = cli_connect(c)) != CLI_OK)
		return r;
	/* A reader that went away is seen as a failed write, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	/* ssh's ProxyCommand pipes: see cli_pipe_grow. Best effort. */
	(void)cli_pipe_grow(STDIN_FILENO);
	(void)cli_pipe_grow(STDOUT_FILENO);
	cli_stream_target(c, &t);
	if ((r = cli_ws_dial(&t, &w)) != CLI_OK)
		return r;
	r = cli_ws_upgrade(w, path);
	if (r == CLI_OK)
		r = cli_ws_pump(w, STDIN_FILENO, STDOUT_FILENO, -1);
	cli_ws_free(w);
	return r;
}
