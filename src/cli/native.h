/* The native client's commands (docs/native-client.md): `bastion proxy`,
 * `bastion ssh`, `bastion tunnel`, and the pure helpers they share
 * (ssh.c: the VM's ID, the stream's path, ssh's arguments), which link into
 * the unit-tested CLI library. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct cli;

/* The options the three commands share, parsed from argv. */
struct cli_native_opts {
	const char *vm;      /* /groups/{g}/vms/{name} */
	const char *bastion; /* NULL: the only one serving the VM's network */
	long port;           /* 0: the VM's ssh_port */
	long local_port;     /* tunnel: --local-port; 0 when not given */
	const char *bind;    /* tunnel: --bind; NULL when not given */
};

/* Checks that vm is a VM ID, /groups/{g}/vms/{name}, and copies its group
 * and name (each at most 64 bytes and 65 with the NUL) to g and name.
 * -EINVAL otherwise. */
int cli_vm_split(const char *vm, char g[65], char name[65]);

/* The stream's path under /api/v1 for o: the VM's path, then
 * "/stream", then "?port=P" and "&bastion=ID" (percent-encoded) when
 * given. -EINVAL for a bad VM ID, -E2BIG when it does not fit. */
int cli_stream_path(const struct cli_native_opts *o, char *out, size_t size);

/* The host key alias of a VM: "bastion" followed by its ID, so that two
 * VMs with the same private IP (different networks) never share a
 * known_hosts line. -EINVAL for a bad VM ID. */
int cli_ssh_alias(const char *vm, char *out, size_t size);

/* Quotes s for sh (single quotes) and for ssh's own %-expansion of
 * ProxyCommand (% doubled), appending to out at *n. -E2BIG when it does
 * not fit. */
int cli_ssh_quote(const char *s, char *out, size_t size, size_t *n);

/* The argument vector `bastion ssh` runs: ssh, -o ProxyCommand=SELF proxy
 * VM [--bastion ID] [--port P], -o HostKeyAlias=ALIAS, the VM's name as
 * the destination, then extra (n_extra arguments) after it. A NULL-ended
 * malloc'd array (the strings it adds are malloc'd too; free with
 * cli_ssh_argv_free). -EINVAL, -E2BIG or -ENOMEM. */
int cli_ssh_argv(const char *self, const struct cli_native_opts *o, char **extra, int n_extra,
		 char ***ret);
void cli_ssh_argv_free(char **argv);

int cli_cmd_proxy(struct cli *c, int argc, char **argv);
int cli_cmd_ssh(struct cli *c, int argc, char **argv);
int cli_cmd_tunnel(struct cli *c, int argc, char **argv);

/* Parses VM, --bastion and --port (before or after VM) and the common
 * options; argv[optind] onwards is what followed "--". CLI_OK, or the
 * exit code of a usage error; with --help, *ret_help. */
int cli_native_args(struct cli *c, int argc, char **argv, const char *usage,
		    struct cli_native_opts *o, bool *ret_help);
