/* `bastion group|network|nic|vm|bastion|vault ...`: one implementation for every
 * resource type, driven by a table that names each type's path segment, its
 * typed flags (which property each sets) and its list columns. */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/file.h"

#define MAX_PROPS 4
#define BODY_MAX  (1u << 20) /* the API's own body limit */

enum prop_kind {
	PROP_STRING, /* the last flag wins */
	PROP_LIST,   /* repeatable: each flag adds an element */
	PROP_PORT,   /* an integer 1..65535 */
	PROP_INT,    /* a whole number; the API checks its range */
};

struct res_prop {
	const char *flag;
	const char *key;
	enum prop_kind kind;
	const char *meta;
	const char *help;
};

struct res_type {
	const char *cmd;
	const char *plural; /* NULL for groups, which sit at the top */
	struct res_prop props[MAX_PROPS];
	struct cli_column cols[MAX_PROPS + 1];
	/* Lines appended to the usage text: actions that another file
	 * handles before handing the rest to this one (vault.c). */
	const char *more_usage;
};

static const struct res_type types[] = {
	{ "group", NULL, { { 0 } }, { { "NAME", "name", false }, { "ID", "id", false } }, NULL },
	{ "network",
	  "networks",
	  { { "prefix", "address_prefixes", PROP_LIST, "CIDR",
	      "an address prefix, IPv4 or IPv6 (repeatable)" } },
	  { { "NAME", "name", false }, { "ADDRESS_PREFIXES", "address_prefixes", false } },
	  NULL },
	{ "nic",
	  "nics",
	  { { "network", "network", PROP_STRING, "ID", "the network, /groups/G/networks/N" },
	    { "ip", "private_ip", PROP_STRING, "IP",
	      "the private IP, inside one of the network's prefixes" } },
	  { { "NAME", "name", false },
	    { "NETWORK", "network", false },
	    { "PRIVATE_IP", "private_ip", false } },
	  NULL },
	{ "vm",
	  "vms",
	  { { "nic", "nic", PROP_STRING, "ID", "the network interface, /groups/G/nics/N" },
	    { "port", "ssh_port", PROP_PORT, "N", "the SSH port (default 22)" },
	    { "host-key", "host_keys", PROP_LIST, "LINE",
	      "a pinned host key, known_hosts format (repeatable)" } },
	  { { "NAME", "name", false },
	    { "NIC", "nic", false },
	    { "SSH_PORT", "ssh_port", false },
	    { "HOST_KEYS", "host_keys", true } },
	  NULL },
	{ "bastion",
	  "bastions",
	  { { "network", "networks", PROP_LIST, "ID",
	      "a network it serves, /groups/G/networks/N (repeatable)" } },
	  { { "NAME", "name", false }, { "NETWORKS", "networks", false } },
	  NULL },
	{ "vault",
	  "vaults",
	  { { "retention-days", "soft_delete_retention_days", PROP_INT, "N",
	      "how long a deleted secret stays recoverable, 7-90 (default 7)" } },
	  { { "NAME", "name", false }, { "RETENTION_DAYS", "soft_delete_retention_days", false } },
	  "       bastion vault policy set|list|show|delete ...  (bastion vault policy --help)\n"
	  "       bastion vault rotate-master-key\n" },
};

#define NTYPES (sizeof(types) / sizeof(types[0]))

bool cli_is_resource_cmd(const char *name)
{
	for (size_t i = 0; i < NTYPES; i++)
		if (strcmp(types[i].cmd, name) == 0)
			return true;
	return false;
}

static size_t nprops(const struct res_type *t)
{
	size_t n = 0;

	while (n < MAX_PROPS && t->props[n].flag)
		n++;
	return n;
}

static size_t ncols(const struct res_type *t)
{
	size_t n = 0;

	while (n < MAX_PROPS + 1 && t->cols[n].header)
		n++;
	return n;
}

/* The usage text, made from the table so that the five stay alike. */
static void make_usage(const struct res_type *t, char *out, size_t size)
{
	const char *name = t->plural ? " NAME" : "";
	size_t n = 0;

#define ADD(...)                                                                \
	do {                                                                    \
		int k_ = snprintf(out + n, size - n, __VA_ARGS__);              \
		if (k_ > 0)                                                     \
			n = (size_t)k_ >= size - n ? size - 1 : n + (size_t)k_; \
	} while (0)
	ADD("usage: bastion %s list%s\n", t->cmd, t->plural ? " GROUP" : "");
	ADD("       bastion %s show %s%s\n", t->cmd, t->plural ? "GROUP" : "NAME", name);
	ADD("       bastion %s %s %s%s", t->cmd, t->plural ? "set|create" : "create|set",
	    t->plural ? "GROUP" : "NAME", name);
	for (size_t i = 0; i < nprops(t); i++)
		ADD(" [--%s %s]%s", t->props[i].flag, t->props[i].meta,
		    t->props[i].kind == PROP_LIST ? "..." : "");
	ADD("\n%*s[--json JSON | --json-file FILE]\n", (int)(strlen(t->cmd) + 20), "");
	ADD("       bastion %s delete %s%s\n", t->cmd, t->plural ? "GROUP" : "NAME", name);
	if (t->more_usage)
		ADD("%s", t->more_usage);
	for (size_t i = 0; i < nprops(t); i++) {
		char left[48];

		snprintf(left, sizeof(left), "--%s %s", t->props[i].flag, t->props[i].meta);
		ADD("  %-18s %s\n", left, t->props[i].help);
	}
	ADD("  %-18s the request body as JSON (the resource's properties);\n"
	    "  %-18s flags given as well replace the properties they set\n",
	    "--json JSON", "");
	ADD("  %-18s the same, read from FILE (- for stdin)\n", "--json-file FILE");
	ADD("  %-18s create: replace the resource when it exists\n", "--force");
	ADD("  %-18s table (default) or json\n", "--output FORMAT");
	ADD("set creates the resource, or replaces it whole (properties not given take\n"
	    "their defaults); create refuses one that exists, unless --force.\n");
#undef ADD
}

/* The body of a create/set: --json or --json-file, then the typed flags
 * on top. Prints why and returns CLI_EUSAGE when it cannot be built. */
static int build_body(const struct res_type *t, const char *json_text, const char *json_file,
		      json_t **vals, const char *usage, json_t **ret_body)
{
	json_error_t jerr;
	json_t *body = NULL;
	int r;

	if (json_text && json_file)
		return cli_usage_error(usage, "--json and --json-file exclude each other");
	if (json_file) {
		/* A file or stdin ("-"), at most BODY_MAX bytes; a pipe or
		 * <(cmd) too. */
		struct buf text;

		buf_init(&text, BODY_MAX);
		if ((r = file_read(json_file, FILE_STREAM, &text)) < 0) {
			buf_free(&text);
			return cli_usage_error(NULL, "cannot read %s: %s", json_file, err_str(r));
		}
		body = json_loadb(buf_str(&text), buf_len(&text), JSON_REJECT_DUPLICATES, &jerr);
		buf_free(&text);
	} else if (json_text) {
		body = json_loads(json_text, JSON_REJECT_DUPLICATES, &jerr);
	} else {
		body = json_object();
	}
	if (!body)
		return cli_usage_error(NULL, "%s: invalid JSON at line %d, column %d: %s",
				       json_file ? json_file : "--json", jerr.line, jerr.column,
				       jerr.text);
	if (!json_is_object(body)) {
		json_decref(body);
		return cli_usage_error(NULL, "%s: the body must be a JSON object",
				       json_file ? json_file : "--json");
	}
	for (size_t i = 0; i < nprops(t); i++)
		if (vals[i] && json_object_set(body, t->props[i].key, vals[i]) < 0) {
			json_decref(body);
			fprintf(stderr, "bastion: out of memory\n");
			return CLI_ECONN;
		}
	*ret_body = body;
	return CLI_OK;
}

/* Records one typed flag's value in vals[i]. */
static int take_flag(const struct res_prop *p, const char *arg, json_t **val, const char *usage)
{
	long port, num;
	json_t *v;

	switch (p->kind) {
	case PROP_PORT:
		if (cli_parse_int(arg, 1, 65535, &port) < 0)
			return cli_usage_error(
				usage, "--%s must be a port number from 1 to 65535, not '%s'",
				p->flag, arg);
		v = json_integer(port);
		break;
	case PROP_INT:
		if (cli_parse_int(arg, -2147483647L, 2147483647L, &num) < 0)
			return cli_usage_error(usage, "--%s must be a whole number, not '%s'",
					       p->flag, arg);
		v = json_integer(num);
		break;
	case PROP_LIST:
		if (!*val && !(*val = json_array()))
			goto oom;
		if (json_array_append_new(*val, json_string(arg)) < 0)
			return cli_usage_error(usage, "--%s: not valid UTF-8", p->flag);
		return CLI_OK;
	default:
		if (!(v = json_string(arg)))
			return cli_usage_error(usage, "--%s: not valid UTF-8", p->flag);
		break;
	}
	if (!v)
		goto oom;
	json_decref(*val);
	*val = v;
	return CLI_OK;
oom:
	fprintf(stderr, "bastion: out of memory\n");
	return CLI_ECONN;
}

/* create: the API's PUT creates or replaces, so the client asks first and
 * refuses to replace what exists (set, or create --force, replaces), and
 * its PUT carries If-None-Match: * so that of two clients creating the
 * same name at once the second gets 412 PreconditionFailed, not a
 * replace. */
static int refuse_existing(struct cli *c, const struct res_type *t, const char *path)
{
	int r = cli_call_quiet404(c, "GET", path, NULL, NULL);

	if (r == CLI_ENOTFOUND)
		return CLI_OK;
	if (r != CLI_OK)
		return r;
	fprintf(stderr,
		"bastion: Conflict: %s already exists; `bastion %s set` or `create --force` "
		"replaces it\n",
		path, t->cmd);
	return CLI_EAPI;
}

int cli_cmd_resource(struct cli *c, int argc, char **argv)
{
	enum { OPT_PROP = 0x2000, OPT_JSON = 0x2100, OPT_JSON_FILE, OPT_FORCE };
	const struct res_type *t = NULL;
	struct option opts[MAX_PROPS + 6];
	json_t *vals[MAX_PROPS] = { 0 };
	json_t *body = NULL, *answer = NULL;
	char usage[2048], path[CLI_PATH_MAX];
	const char *json_text = NULL, *json_file = NULL, *action, *group, *name = NULL;
	size_t np, no = 0, want;
	bool help = false, writes, force = false;
	int opt, r;

	for (size_t i = 0; i < NTYPES; i++)
		if (strcmp(types[i].cmd, argv[0]) == 0)
			t = &types[i];
	if (!t)
		return CLI_EUSAGE;
	make_usage(t, usage, sizeof(usage));
	np = nprops(t);
	for (size_t i = 0; i < np; i++)
		opts[no++] = (struct option){ t->props[i].flag, required_argument, NULL,
					      OPT_PROP + (int)i };
	opts[no++] = (struct option){ "json", required_argument, NULL, OPT_JSON };
	opts[no++] = (struct option){ "json-file", required_argument, NULL, OPT_JSON_FILE };
	opts[no++] = (struct option){ "force", no_argument, NULL, OPT_FORCE };
	opts[no++] = (struct option){ "output", required_argument, NULL, CLI_OPT_OUTPUT };
	opts[no++] = (struct option){ "help", no_argument, NULL, CLI_OPT_HELP };
	opts[no] = (struct option){ 0 };

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
		if (opt >= OPT_PROP && opt < OPT_PROP + (int)np) {
			if ((r = take_flag(&t->props[opt - OPT_PROP], optarg, &vals[opt - OPT_PROP],
					   usage)) != CLI_OK)
				goto out;
		} else if (opt == OPT_JSON) {
			json_text = optarg;
		} else if (opt == OPT_JSON_FILE) {
			json_file = optarg;
		} else if (opt == OPT_FORCE) {
			force = true;
		} else {
			r = cli_common_option(c, opt, argv, usage, &help);
			if (r != CLI_OK || help)
				goto out;
		}
	}
	r = CLI_EUSAGE;
	if (optind >= argc) {
		cli_usage_error(usage, "%s needs an action", t->cmd);
		goto out;
	}
	action = argv[optind++];
	if (strcmp(action, "list") == 0) {
		want = t->plural ? 1 : 0;
	} else if (strcmp(action, "show") == 0 || strcmp(action, "delete") == 0 ||
		   strcmp(action, "set") == 0 || strcmp(action, "create") == 0) {
		want = t->plural ? 2 : 1;
	} else {
		cli_usage_error(usage, "unknown action '%s'", action);
		goto out;
	}
	writes = strcmp(action, "set") == 0 || strcmp(action, "create") == 0;
	if ((size_t)(argc - optind) != want) {
		cli_usage_error(usage, "%s %s takes %s", t->cmd, action,
				want == 0   ? "no arguments"
				: want == 1 ? (t->plural ? "GROUP" : "NAME")
					    : "GROUP NAME");
		goto out;
	}
	if (force && strcmp(action, "create") != 0) {
		cli_usage_error(usage, "--force goes with create");
		goto out;
	}
	if (!writes && (json_text || json_file)) {
		cli_usage_error(usage, "--json and --json-file go with %s",
				t->plural ? "set" : "create");
		goto out;
	}
	for (size_t i = 0; i < np; i++)
		if (vals[i] && !writes) {
			cli_usage_error(usage, "--%s goes with %s", t->props[i].flag,
					t->plural ? "set" : "create");
			goto out;
		}
	group = want > 0 ? argv[optind] : NULL;
	if (want > 1)
		name = argv[optind + 1];
	if (!group)
		r = cli_path(path, sizeof(path), "groups", (char *)NULL);
	else if (!t->plural)
		r = cli_path(path, sizeof(path), "groups", group, (char *)NULL);
	else if (!name)
		r = cli_path(path, sizeof(path), "groups", group, t->plural, (char *)NULL);
	else
		r = cli_path(path, sizeof(path), "groups", group, t->plural, name, (char *)NULL);
	if (r < 0) {
		r = cli_usage_error(usage, "names must not be empty");
		goto out;
	}
	if (writes && (r = build_body(t, json_text, json_file, vals, usage, &body)) != CLI_OK)
		goto out;
	if ((r = cli_connect(c)) != CLI_OK)
		goto out;

	if (!writes) {
		r = cli_run_action(c, action, path, t->cols, ncols(t),
				   "Deleted /groups/%s%s%s%s%s\n", group, t->plural ? "/" : "",
				   t->plural ? t->plural : "", name ? "/" : "", name ? name : "");
		goto out;
	}
	if (strcmp(action, "create") == 0 && !force &&
	    ((r = refuse_existing(c, t, path)) != CLI_OK ||
	     (r = cli_set_header(c, "If-None-Match", "*") < 0 ? CLI_ECONN : CLI_OK) != CLI_OK))
		goto out;
	if ((r = cli_call(c, "PUT", path, body, &answer, NULL)) == CLI_OK)
		r = cli_print_object(c, answer);
out:
	for (size_t i = 0; i < MAX_PROPS; i++)
		json_decref(vals[i]);
	json_decref(body);
	json_decref(answer);
	return r;
}
