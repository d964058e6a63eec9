/* `bastion vault ...`. A vault is a resource of type "vaults", so list,
 * show, set/create and delete are resource.c's generic implementation
 * (its type table names the vault's properties); this file adds what only
 * vaults have: access policies (`vault policy ...`) and the rotation of
 * the instance's master key (`vault rotate-master-key`). */
#include "cli/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static const char policy_usage[] =
	"usage: bastion vault policy set GROUP VAULT PRINCIPAL --permissions LIST\n"
	"       bastion vault policy list GROUP VAULT\n"
	"       bastion vault policy show GROUP VAULT PRINCIPAL\n"
	"       bastion vault policy delete GROUP VAULT PRINCIPAL\n"
	"  PRINCIPAL           user:NAME (a bare NAME means user:NAME)\n"
	"  --permissions LIST  what PRINCIPAL may do with the vault's secrets: a\n"
	"                      comma-separated list of list, get, set, delete,\n"
	"                      use (connect with a key without reading it)\n"
	"                      (set replaces the whole policy)\n"
	"  --output FORMAT     table (default) or json\n"
	"Changing a policy needs Owner on the vault, reading one needs Reader.\n"
	"Roles give nothing on secrets: even an Owner reads values only through a\n"
	"policy that grants get.\n";

static const char rotate_usage[] =
	"usage: bastion vault rotate-master-key\n"
	"  Makes a new master key and re-wraps every vault's data key under it,\n"
	"  without downtime (Owner at /). Values stay as they are.\n"
	"  --output FORMAT     table (default) or json\n";

static const struct cli_column policy_cols[] = {
	{ "PRINCIPAL", "principal", false },
	{ "PERMISSIONS", "secret_permissions", false },
};

#define PRINCIPAL_MAX 128

static int policy_cmd(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "permissions", required_argument, NULL, 'p' },
		CLI_COMMON_OPTIONS,
		{ 0 },
	};
	char path[CLI_PATH_MAX], principal[PRINCIPAL_MAX];
	const char *action, *perms_arg = NULL;
	json_t *body = NULL, *perms_json = NULL, *answer = NULL;
	unsigned perms = 0;
	bool help = false, one;
	int opt, n, r;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
		if (opt == 'p') {
			perms_arg = optarg;
			continue;
		}
		r = cli_common_option(c, opt, argv, policy_usage, &help);
		if (r != CLI_OK || help)
			return r;
	}
	/* argv[optind] is "policy" itself. */
	if (argc - optind < 2)
		return cli_usage_error(policy_usage, "vault policy needs an action");
	action = argv[optind + 1];
	optind += 2;
	if (strcmp(action, "list") == 0) {
		one = false;
	} else if (strcmp(action, "set") == 0 || strcmp(action, "show") == 0 ||
		   strcmp(action, "delete") == 0) {
		one = true;
	} else {
		return cli_usage_error(policy_usage, "unknown action '%s'", action);
	}
	if (argc - optind != (one ? 3 : 2))
		return cli_usage_error(policy_usage, "vault policy %s takes %s", action,
				       one ? "GROUP VAULT PRINCIPAL" : "GROUP VAULT");
	if (strcmp(action, "set") == 0) {
		if (!perms_arg)
			return cli_usage_error(policy_usage,
					       "vault policy set needs --permissions");
		if (cli_parse_permissions(perms_arg, &perms) < 0)
			return cli_usage_error(
				policy_usage,
				"--permissions must be a comma-separated list of distinct "
				"values from list, get, set, delete, use, not '%s'",
				perms_arg);
	} else if (perms_arg) {
		return cli_usage_error(policy_usage, "--permissions goes with set");
	}
	if (one) {
		const char *p = argv[optind + 2];

		/* A bare name is a user, as in `role assign --principal`. */
		n = snprintf(principal, sizeof(principal), "%s%s",
			     strchr(p, ':') ? "" : "user:", p);
		if (n < 0 || (size_t)n >= sizeof(principal))
			return cli_usage_error(policy_usage, "the principal is too long");
		r = cli_path(path, sizeof(path), "groups", argv[optind], "vaults", argv[optind + 1],
			     "access-policies", principal, (char *)NULL);
	} else {
		r = cli_path(path, sizeof(path), "groups", argv[optind], "vaults", argv[optind + 1],
			     "access-policies", (char *)NULL);
	}
	if (r < 0)
		return cli_usage_error(policy_usage, "names must not be empty");
	if ((r = cli_connect(c)) != CLI_OK)
		return r;
	if ((r = cli_run_action(c, action, path, policy_cols,
				sizeof(policy_cols) / sizeof(policy_cols[0]),
				"Deleted the access policy of %s on /groups/%s/vaults/%s\n",
				principal, argv[optind], argv[optind + 1])) >= 0)
		return r;

	/* Every other action was handled or refused above: this is set. */
	r = CLI_ECONN;
	if (!(perms_json = json_array()))
		goto oom;
	for (unsigned i = 0; i < CLI_PERM_COUNT; i++)
		if ((perms & (1u << i)) &&
		    json_array_append_new(perms_json, json_string(cli_perm_name(1u << i))) < 0)
			goto oom;
	if (!(body = json_pack("{s:O}", "secret_permissions", perms_json)))
		goto oom;
	if ((r = cli_call(c, "PUT", path, body, &answer, NULL)) == CLI_OK)
		r = cli_print_object(c, answer);
	goto out;
oom:
	fprintf(stderr, "bastion: out of memory\n");
out:
	json_decref(perms_json);
	json_decref(body);
	json_decref(answer);
	return r;
}

static int rotate_cmd(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_COMMON_OPTIONS,
		{ 0 },
	};
	json_t *answer = NULL;
	bool help = false;
	int opt, r;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
		r = cli_common_option(c, opt, argv, rotate_usage, &help);
		if (r != CLI_OK || help)
			return r;
	}
	/* argv[optind] is "rotate-master-key" itself. */
	if (argc - optind != 1)
		return cli_usage_error(rotate_usage, "vault rotate-master-key takes no arguments");
	if ((r = cli_connect(c)) != CLI_OK)
		return r;
	if ((r = cli_call(c, "POST", "/vault/rotate-master-key", NULL, &answer, NULL)) == CLI_OK)
		r = cli_print_object(c, answer);
	json_decref(answer);
	return r;
}

int cli_cmd_vault(struct cli *c, int argc, char **argv)
{
	/* Every option any vault action takes, so that the scan below skips
	 * their values; the action's own parser checks which go with it. */
	static const struct option all[] = {
		{ "permissions", required_argument, NULL, 'p' },
		{ "retention-days", required_argument, NULL, 'r' },
		{ "json", required_argument, NULL, 'j' },
		{ "json-file", required_argument, NULL, 'J' },
		CLI_COMMON_OPTIONS,
		{ 0 },
	};
	const char *action = NULL;
	int opt;

	/* Find the action, the first argument that is not an option, without
	 * reordering argv ("-" in front: non-options come back as 1). */
	optind = 0;
	opterr = 0;
	while (!action && (opt = getopt_long(argc, argv, "-:ho:", all, NULL)) != -1)
		if (opt == 1)
			action = optarg;
	if (action && strcmp(action, "policy") == 0)
		return policy_cmd(c, argc, argv);
	if (action && strcmp(action, "rotate-master-key") == 0)
		return rotate_cmd(c, argc, argv);
	/* list, show, set, create, delete, --help and every usage error. */
	return cli_cmd_resource(c, argc, argv);
}
