/* The pure helpers of the native client's commands (native.h): the VM's
 * ID, the stream's path, the host key alias and ssh's command line. No
 * network and no process: linked into the unit-tested CLI library. */
#include "cli/native.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/util.h"

static bool name_ok(const char *s, size_t n)
{
	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
			return false;
	}
	return true;
}

int cli_vm_split(const char *vm, char g[65], char name[65])
{
	static const char pre[] = "/groups/";
	const char *gs, *ge, *ns;

	if (!vm || strncmp(vm, pre, sizeof(pre) - 1) != 0)
		return -EINVAL;
	gs = vm + sizeof(pre) - 1;
	ge = strchr(gs, '/');
	if (!ge || strncmp(ge, "/vms/", 5) != 0)
		return -EINVAL;
	ns = ge + 5;
	if (!name_ok(gs, (size_t)(ge - gs)) || !name_ok(ns, strlen(ns)))
		return -EINVAL;
	memcpy(g, gs, (size_t)(ge - gs));
	g[ge - gs] = '\0';
	util_strlcpy(name, ns, 65);
	return 0;
}

int cli_stream_path(const struct cli_native_opts *o, char *out, size_t size)
{
	char g[65], name[65], esc[3 * 256 + 1];
	size_t n;
	int r;

	if (cli_vm_split(o->vm, g, name) < 0)
		return -EINVAL;
	if ((r = cli_path(out, size, "groups", g, "vms", name, "stream", (char *)NULL)) < 0)
		return r;
	n = strlen(out);
	if (o->port) {
		r = snprintf(out + n, size - n, "?port=%ld", o->port);
		if (r < 0 || (size_t)r >= size - n)
			return -E2BIG;
		n += (size_t)r;
	}
	if (o->bastion) {
		if (strlen(o->bastion) > 255 || cli_query_escape(o->bastion, esc, sizeof(esc)) < 0)
			return -EINVAL;
		r = snprintf(out + n, size - n, "%sbastion=%s", o->port ? "&" : "?", esc);
		if (r < 0 || (size_t)r >= size - n)
			return -E2BIG;
	}
	return 0;
}

int cli_ssh_alias(const char *vm, char *out, size_t size)
{
	char g[65], name[65];
	int r;

	if (cli_vm_split(vm, g, name) < 0)
		return -EINVAL;
	r = snprintf(out, size, "bastion/groups/%s/vms/%s", g, name);
	return r < 0 || (size_t)r >= size ? -E2BIG : 0;
}

int cli_ssh_quote(const char *s, char *out, size_t size, size_t *n)
{
	size_t i = *n;

#define PUT(ch)                        \
	do {                           \
		if (i + 1 >= size)     \
			return -E2BIG; \
		out[i++] = (ch);       \
	} while (0)
	PUT('\'');
	for (; *s; s++) {
		if (*s == '\'') {
			/* Close the quote, an escaped quote, open again. */
			PUT('\'');
			PUT('\\');
			PUT('\'');
			PUT('\'');
		} else if (*s == '%') {
			PUT('%');
			PUT('%');
		} else {
			PUT(*s);
		}
	}
	PUT('\'');
#undef PUT
	out[i] = '\0';
	*n = i;
	return 0;
}

void cli_ssh_argv_free(char **argv)
{
	if (!argv)
		return;
	/* argv[0] is a literal; the rest the function added, up to the extras. */
	for (size_t i = 1; argv[i] && i < 6; i++)
		free(argv[i]);
	free(argv);
}

int cli_ssh_argv(const char *self, const struct cli_native_opts *o, char **extra, int n_extra,
		 char ***ret)
{
	char g[65], name[65], alias[160], cmd[4096], port[32];
	char **v;
	size_t n = 0;
	int r;

	if (cli_vm_split(o->vm, g, name) < 0 || cli_ssh_alias(o->vm, alias, sizeof(alias)) < 0 ||
	    n_extra < 0)
		return -EINVAL;
	n = (size_t)snprintf(cmd, sizeof(cmd), "ProxyCommand=");
	if ((r = cli_ssh_quote(self, cmd, sizeof(cmd), &n)) < 0)
		return r;
	if (n + 7 >= sizeof(cmd))
		return -E2BIG;
	memcpy(cmd + n, " proxy ", 8);
	n += 7;
	if ((r = cli_ssh_quote(o->vm, cmd, sizeof(cmd), &n)) < 0)
		return r;
	if (o->bastion) {
		if (n + 11 >= sizeof(cmd))
			return -E2BIG;
		memcpy(cmd + n, " --bastion ", 12);
		n += 11;
		if ((r = cli_ssh_quote(o->bastion, cmd, sizeof(cmd), &n)) < 0)
			return r;
	}
	if (o->port) {
		r = snprintf(port, sizeof(port), " --port %ld", o->port);
		if (n + (size_t)r >= sizeof(cmd))
			return -E2BIG;
		memcpy(cmd + n, port, (size_t)r + 1);
	}
	v = calloc((size_t)n_extra + 7, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v[0] = "ssh";
	v[1] = strdup("-o");
	v[2] = strdup(cmd);
	v[3] = strdup("-o");
	if (v[3])
		v[4] = malloc(strlen(alias) + sizeof("HostKeyAlias="));
	if (v[4])
		snprintf(v[4], strlen(alias) + sizeof("HostKeyAlias="), "HostKeyAlias=%s", alias);
	v[5] = strdup(name);
	if (!v[1] || !v[2] || !v[3] || !v[4] || !v[5]) {
		cli_ssh_argv_free(v);
		return -ENOMEM;
	}
	for (int i = 0; i < n_extra; i++)
		v[6 + i] = extra[i];
	*ret = v;
	return 0;
}
