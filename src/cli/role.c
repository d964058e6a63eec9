/* `bastion role ...`: role assignments through /api/v1/role-assignments.
 * An assignment's id is a name the caller picks; `assign` without one
 * makes a random UUID. A principal given without a kind ("alice") means
 * the user ("user:alice"). */
#include "cli/cli.h"

#include <getopt.h>
#include <string.h>

#include <sodium.h>

static const char role_usage[] =
	"usage: bastion role list [--scope SCOPE] [--principal PRINCIPAL]\n"
	"       bastion role show ID\n"
	"       bastion role assign [ID] --principal PRINCIPAL --role ROLE --scope SCOPE\n"
	"       bastion role delete ID\n"
	"  --principal P     user:NAME (a bare NAME means user:NAME)\n"
	"  --role ROLE       Reader, Contributor or Owner\n"
	"  --scope SCOPE     /, /groups/G or a resource ID such as /groups/G/vms/V;\n"
	"                    list shows the assignments at, above and below it\n"
	"  ID                the assignment's name; assign makes a UUID when omitted\n"
	"  --output FORMAT   table (default) or json\n";

static const struct cli_column role_cols[] = {
	{ "ID", "name", false },
	{ "PRINCIPAL", "principal", false },
	{ "ROLE", "role", false },
	{ "SCOPE", "scope", false },
};

#define PRINCIPAL_MAX 128

static int principal_arg(const char *in, char *out, size_t size)
{
	int n = snprintf(out, size, "%s%s", strchr(in, ':') ? "" : "user:", in);

	return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* Accepts the bare id or the API's "/role-assignments/{id}". */
static const char *id_arg(const char *in)
{
	static const char prefix[] = "/role-assignments/";

	return strncmp(in, prefix, sizeof(prefix) - 1) == 0 ? in + sizeof(prefix) - 1 : in;
}

static void random_uuid(char out[37])
{
	unsigned char b[16];

	randombytes_buf(b, sizeof(b));
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
}

/* Appends "&key=escaped" (or "?key=...") to path. */
static int add_query(char *path, size_t size, const char *key, const char *value)
{
	char esc[1024];
	size_t n = strlen(path);
	int k;

	if (cli_query_escape(value, esc, sizeof(esc)) < 0)
		return -1;
	k = snprintf(path + n, size - n, "%c%s=%s", strchr(path, '?') ? '&' : '?', key, esc);
	return k < 0 || (size_t)k >= size - n ? -1 : 0;
}

int cli_cmd_role(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "principal", required_argument, NULL, 'p' },
		{ "role", required_argument, NULL, 'r' },
		{ "scope", required_argument, NULL, 's' },
		CLI_COMMON_OPTIONS,
		{ 0 },
	};
	char path[CLI_PATH_MAX], principal[PRINCIPAL_MAX], uuid[37];
	const char *action, *id = NULL, *p_opt = NULL, *role = NULL, *scope = NULL;
	json_t *body = NULL, *answer = NULL;
	bool help = false;
	int opt, r;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			p_opt = optarg;
			break;
		case 'r':
			role = optarg;
			break;
		case 's':
			scope = optarg;
			break;
		default:
			r = cli_common_option(c, opt, argv, role_usage, &help);
			if (r != CLI_OK || help)
				return r;
		}
	}
	if (optind >= argc)
		return cli_usage_error(role_usage, "role needs an action");
	action = argv[optind++];
	if (p_opt && principal_arg(p_opt, principal, sizeof(principal)) < 0)
		return cli_usage_error(role_usage, "--principal is too long");

	if (strcmp(action, "list") == 0) {
		if (optind != argc || role)
			return cli_usage_error(role_usage,
					       "role list takes only --scope and --principal");
		if (cli_path(path, sizeof(path), "role-assignments", (char *)NULL) < 0 ||
		    (scope && add_query(path, sizeof(path), "scope", scope) < 0) ||
		    (p_opt && add_query(path, sizeof(path), "principal", principal) < 0))
			return cli_usage_error(role_usage, "--scope or --principal is too long");
	} else if (strcmp(action, "assign") == 0) {
		if (argc - optind > 1)
			return cli_usage_error(role_usage, "role assign takes at most one ID");
		if (!p_opt || !role || !scope)
			return cli_usage_error(role_usage,
					       "role assign needs --principal, --role and --scope");
		if (optind < argc) {
			id = id_arg(argv[optind]);
		} else {
			random_uuid(uuid);
			id = uuid;
		}
	} else if (strcmp(action, "show") == 0 || strcmp(action, "delete") == 0) {
		if (optind != argc - 1 || p_opt || role || scope)
			return cli_usage_error(role_usage, "role %s takes one ID and no options",
					       action);
		id = id_arg(argv[optind]);
	} else {
		return cli_usage_error(role_usage, "unknown action '%s'", action);
	}
	if (id && cli_path(path, sizeof(path), "role-assignments", id, (char *)NULL) < 0)
		return cli_usage_error(role_usage, "the ID must not be empty");
	if ((r = cli_connect(c)) != CLI_OK)
		return r;
	if ((r = cli_run_action(c, action, path, role_cols,
				sizeof(role_cols) / sizeof(role_cols[0]),
				"Deleted role assignment %s\n", id)) >= 0)
		return r;

	/* Every other action was handled or refused above: this is assign. */
	body = json_pack("{s:s, s:s, s:s}", "principal", principal, "role", role, "scope", scope);
	if (!body)
		return cli_usage_error(NULL, "--principal, --role and --scope must be valid UTF-8");
	if ((r = cli_call(c, "PUT", path, body, &answer, NULL)) == CLI_OK)
		r = cli_print_object(c, answer);
	json_decref(body);
	json_decref(answer);
	return r;
}
