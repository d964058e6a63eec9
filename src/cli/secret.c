/* `bastion secret ...`: a vault's secrets, under
 * /api/v1/groups/{g}/vaults/{v}/secrets (docs/vault.md).
 *
 * A value comes only from a file or from stdin, never from the command
 * line where `ps` and shell history would see it. It is read into locked
 * memory (sodium_malloc) that is wiped when freed, travels in JSON values
 * that the client's allocator wipes (cli.c), and is never printed on
 * stderr. `show` prints the metadata, which it takes from the list (policy
 * `list`), so that no value crosses the network and no read is audited
 * unless asked for; `show --value` fetches the value (policy `get`) and
 * writes exactly its bytes to stdout, and nothing else. */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "core/err.h"

/* The most read from a file or stdin. The API takes values of up to 32 KiB
 * and says so (400) for a longer one; this only bounds the client's memory
 * and what it sends (the API's body limit is 1 MiB). */
#define VALUE_READ_MAX (1u << 20)
#define VERSION_LEN    32 /* a version ID: 32 hex digits */

static const char secret_usage[] =
	"usage: bastion secret set GROUP VAULT NAME (--file PATH | --value-stdin)\n"
	"                          [--content-type TYPE]\n"
	"       bastion secret list GROUP VAULT [--deleted]\n"
	"       bastion secret show GROUP VAULT NAME [--version VERSION] [--value]\n"
	"       bastion secret versions GROUP VAULT NAME\n"
	"       bastion secret delete GROUP VAULT NAME [--purge]\n"
	"       bastion secret recover GROUP VAULT NAME\n"
	"  --file PATH          set: the value is the file's content, byte for byte\n"
	"  --value-stdin        set: the value is all of stdin, byte for byte (a trailing\n"
	"                       newline included); values never come from the command line\n"
	"  --content-type TYPE  set: a free-form hint such as application/x-pem-file\n"
	"  --deleted            list: the soft-deleted secrets, which recover brings back\n"
	"  --version VERSION    show: that version (32 hex digits) instead of the newest\n"
	"  --value              show: print only the value, exactly, on stdout (policy get;\n"
	"                       the read is audited); without it, show prints the metadata\n"
	"                       (policy list)\n"
	"  --purge              delete: delete for good, without a recovery window (Owner\n"
	"                       on the vault)\n"
	"  --output FORMAT      table (default) or json\n"
	"set adds a new version; delete is a soft delete, recoverable for the vault's\n"
	"retention days.\n";

static const struct cli_column list_cols[] = {
	{ "NAME", "name", false },
	{ "VERSION", "version", false },
	{ "VERSIONS", "versions", false },
	{ "CONTENT_TYPE", "content_type", false },
	{ "UPDATED_AT", "updated_at", false },
};

static const struct cli_column deleted_cols[] = {
	{ "NAME", "name", false },
	{ "VERSION", "version", false },
	{ "VERSIONS", "versions", false },
	{ "DELETED_AT", "deleted_at", false },
	{ "SCHEDULED_PURGE_AT", "scheduled_purge_at", false },
};

static const struct cli_column version_cols[] = {
	{ "VERSION", "version", false },
	{ "CREATED_AT", "created_at", false },
	{ "CONTENT_TYPE", "content_type", false },
};

#define NCOLS(a) (sizeof(a) / sizeof((a)[0]))

/* A value read from a file or stdin, in locked memory wiped on free. */
struct value {
	char *p;
	size_t len;
};

static void value_done(struct value *v)
{
	sodium_free(v->p); /* wipes; NULL is fine */
	v->p = NULL;
	v->len = 0;
}

/* Reads all of path (NULL: stdin) into ret, at most VALUE_READ_MAX bytes.
 * -E2BIG over the limit, or -errno. */
static int value_read(const char *path, struct value *ret)
{
	struct value v = { 0 };
	int fd = STDIN_FILENO, r = -ENOMEM;

	if (path && (fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0)
		return -errno;
	if (!(v.p = sodium_malloc(VALUE_READ_MAX + 1)))
		goto out;
	for (;;) {
		ssize_t got = read(fd, v.p + v.len, VALUE_READ_MAX + 1 - v.len);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = -errno;
			goto out;
		}
		if (got == 0)
			break;
		v.len += (size_t)got;
		r = -E2BIG;
		if (v.len > VALUE_READ_MAX)
			goto out;
	}
	*ret = v;
	v.p = NULL;
	r = 0;
out:
	value_done(&v);
	if (path)
		close(fd);
	return r;
}

/* Writes n bytes to stdout's file descriptor directly, so that no stdio
 * buffer keeps a copy of the value. */
static int write_raw(const char *p, size_t n)
{
	if (fflush(stdout) != 0)
		return -EIO;
	return cli_write_all(STDOUT_FILENO, p, n);
}

static bool valid_version(const char *v)
{
	size_t n = 0;

	for (; v[n]; n++)
		if (!((v[n] >= '0' && v[n] <= '9') || (v[n] >= 'a' && v[n] <= 'f')))
			return false;
	return n == VERSION_LEN;
}

/* Appends "?key=value" (or "&...") to path, the value percent-encoded. */
static int add_query(char *path, size_t size, const char *key, const char *value)
{
	char esc[256];
	size_t n = strlen(path);
	int k;

	if (cli_query_escape(value, esc, sizeof(esc)) < 0)
		return -E2BIG;
	k = snprintf(path + n, size - n, "%c%s=%s", strchr(path, '?') ? '&' : '?', key, esc);
	return k < 0 || (size_t)k >= size - n ? -E2BIG : 0;
}

/* The element of a list answer whose key is want; NULL when none. */
static json_t *find_in(const json_t *answer, const char *key, const char *want)
{
	const json_t *value = json_object_get(answer, "value");
	json_t *el;
	size_t i;

	json_array_foreach (value, i, el) {
		const char *s = json_string_value(json_object_get(el, key));

		if (s && strcmp(s, want) == 0)
			return el;
	}
	return NULL;
}

/* The metadata of a secret, or of one of its versions, without its value:
 * the list entry (policy list) with the version's fields put in. */
static int show_meta(struct cli *c, const char *path_list, const char *path_versions,
		     const char *vault_id, const char *name, const char *version)
{
	json_t *list = NULL, *versions = NULL, *meta, *ver;
	char msg[CLI_PATH_MAX + 64];
	int r;

	if ((r = cli_call(c, "GET", path_list, NULL, &list, NULL)) != CLI_OK)
		goto out;
	if (!json_is_array(json_object_get(list, "value"))) {
		fprintf(stderr, "bastion: the server's answer has no \"value\" list\n");
		r = CLI_ESERVER;
		goto out;
	}
	/* The message the API gives for GET .../secrets/NAME. */
	snprintf(msg, sizeof(msg), "secret %s was not found in %s", name, vault_id);
	if (!(meta = find_in(list, "name", name))) {
		cli_print_error(stderr, "SecretNotFound", msg);
		r = CLI_ENOTFOUND;
		goto out;
	}
	if (version) {
		if ((r = cli_call(c, "GET", path_versions, NULL, &versions, NULL)) != CLI_OK)
			goto out;
		if (!(ver = find_in(versions, "version", version))) {
			cli_print_error(stderr, "SecretNotFound", msg);
			r = CLI_ENOTFOUND;
			goto out;
		}
		if (json_object_set(meta, "version", json_object_get(ver, "version")) < 0 ||
		    json_object_set(meta, "content_type", json_object_get(ver, "content_type")) <
			    0 ||
		    json_object_set(meta, "version_created_at",
				    json_object_get(ver, "created_at")) < 0) {
			fprintf(stderr, "bastion: the server's answer is not the expected JSON\n");
			r = CLI_ESERVER;
			goto out;
		}
	}
	r = cli_print_object(c, meta);
out:
	json_decref(list);
	json_decref(versions);
	return r;
}

/* `show --value`: the value's bytes on stdout, nothing else. */
static int show_value(struct cli *c, const char *path)
{
	json_t *answer = NULL;
	const json_t *v;
	int r;

	if ((r = cli_call(c, "GET", path, NULL, &answer, NULL)) != CLI_OK)
		goto out;
	v = json_object_get(answer, "value");
	if (!json_is_string(v)) {
		fprintf(stderr, "bastion: the server's answer has no value\n");
		r = CLI_ESERVER;
		goto out;
	}
	if ((r = write_raw(json_string_value(v), json_string_length(v))) < 0) {
		fprintf(stderr, "bastion: cannot write the value: %s\n", err_str(r));
		r = CLI_ESERVER;
		goto out;
	}
	r = CLI_OK;
out:
	json_decref(answer); /* the allocator wipes the value */
	return r;
}

/* The body of a set. Prints why and returns CLI_EUSAGE for a value the
 * API cannot take as a JSON string; the message never quotes the value. */
static int set_body(const struct value *v, const char *content_type, json_t **ret_body)
{
	json_t *body, *s;

	if (v->len == 0)
		return cli_usage_error(NULL, "the value is empty");
	if (memchr(v->p, '\0', v->len))
		return cli_usage_error(
			NULL, "the value contains a NUL byte: values are text "
			      "(e.g. a PEM key), not binary; encode binary data as base64");
	if (!(s = json_stringn(v->p, v->len)))
		return cli_usage_error(
			NULL, "the value is not valid UTF-8: values are text "
			      "(e.g. a PEM key), not binary; encode binary data as base64");
	if (!(body = json_object()) || json_object_set_new(body, "value", s) < 0) {
		json_decref(body);
		fprintf(stderr, "bastion: out of memory\n");
		return CLI_ECONN;
	}
	if (content_type) {
		if (!(s = json_string(content_type))) {
			json_decref(body);
			return cli_usage_error(NULL, "--content-type must be valid UTF-8");
		}
		if (json_object_set_new(body, "content_type", s) < 0) {
			json_decref(body);
			fprintf(stderr, "bastion: out of memory\n");
			return CLI_ECONN;
		}
	}
	*ret_body = body;
	return CLI_OK;
}

enum action { A_SET, A_LIST, A_SHOW, A_VERSIONS, A_DELETE, A_RECOVER };

static const struct {
	const char *name;
	enum action a;
	bool named; /* takes NAME after GROUP VAULT */
} actions[] = {
	{ "set", A_SET, true },       { "list", A_LIST, false },
	{ "show", A_SHOW, true },     { "versions", A_VERSIONS, true },
	{ "delete", A_DELETE, true }, { "recover", A_RECOVER, true },
};

/* Which options go with which action, for the usage errors. */
enum { O_FILE = 0x2000, O_STDIN, O_CTYPE, O_DELETED, O_VERSION, O_VALUE, O_PURGE };

static const struct {
	int opt;
	const char *flag;
	enum action a;
} option_action[] = {
	{ O_FILE, "--file", A_SET },          { O_STDIN, "--value-stdin", A_SET },
	{ O_CTYPE, "--content-type", A_SET }, { O_DELETED, "--deleted", A_LIST },
	{ O_VERSION, "--version", A_SHOW },   { O_VALUE, "--value", A_SHOW },
	{ O_PURGE, "--purge", A_DELETE },
};

int cli_cmd_secret(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "file", required_argument, NULL, O_FILE },
		{ "value-stdin", no_argument, NULL, O_STDIN },
		{ "content-type", required_argument, NULL, O_CTYPE },
		{ "deleted", no_argument, NULL, O_DELETED },
		{ "version", required_argument, NULL, O_VERSION },
		{ "value", no_argument, NULL, O_VALUE },
		{ "purge", no_argument, NULL, O_PURGE },
		CLI_COMMON_OPTIONS,
		{ 0 },
	};
	char path[CLI_PATH_MAX], vpath[CLI_PATH_MAX], vault_id[CLI_PATH_MAX];
	const char *file = NULL, *ctype = NULL, *version = NULL, *group, *vault, *name = NULL;
	bool seen[NCOLS(option_action)] = { 0 }, help = false, named = false;
	bool from_stdin = false, deleted = false, want_value = false, purge = false;
	struct value val = { 0 };
	json_t *body = NULL, *answer = NULL;
	enum action a = A_LIST;
	const char *action;
	size_t i;
	int opt, r;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
		for (i = 0; i < NCOLS(option_action); i++)
			if (option_action[i].opt == opt)
				seen[i] = true;
		switch (opt) {
		case O_FILE:
			file = optarg;
			break;
		case O_STDIN:
			from_stdin = true;
			break;
		case O_CTYPE:
			ctype = optarg;
			break;
		case O_DELETED:
			deleted = true;
			break;
		case O_VERSION:
			version = optarg;
			break;
		case O_VALUE:
			want_value = true;
			break;
		case O_PURGE:
			purge = true;
			break;
		default:
			r = cli_common_option(c, opt, argv, secret_usage, &help);
			if (r != CLI_OK || help)
				return r;
		}
	}
	if (optind >= argc)
		return cli_usage_error(secret_usage, "secret needs an action");
	action = argv[optind++];
	for (i = 0; i < NCOLS(actions); i++)
		if (strcmp(actions[i].name, action) == 0)
			break;
	if (i == NCOLS(actions))
		return cli_usage_error(secret_usage, "unknown action '%s'", action);
	a = actions[i].a;
	named = actions[i].named;
	if (argc - optind != (named ? 3 : 2))
		return cli_usage_error(secret_usage, "secret %s takes %s", action,
				       named ? "GROUP VAULT NAME" : "GROUP VAULT");
	for (i = 0; i < NCOLS(option_action); i++)
		if (seen[i] && option_action[i].a != a)
			return cli_usage_error(secret_usage, "%s does not go with %s",
					       option_action[i].flag, action);
	group = argv[optind];
	vault = argv[optind + 1];
	if (named)
		name = argv[optind + 2];
	if (a == A_SET && !!file == from_stdin)
		return cli_usage_error(secret_usage,
				       "secret set needs one of --file PATH and --value-stdin");
	if (version && !valid_version(version))
		return cli_usage_error(secret_usage,
				       "--version must be a version ID (32 hex digits), not '%s'",
				       version);
	if (want_value && cli_output(c) == CLI_OUT_JSON)
		return cli_usage_error(secret_usage, "--value prints the value alone; "
						     "it does not go with --output json");

	/* name is NULL for list: the path ends at .../secrets. */
	if (cli_path(path, sizeof(path), "groups", group, "vaults", vault, "secrets", name,
		     (char *)NULL) < 0)
		return cli_usage_error(secret_usage, "names must not be empty");
	/* For messages: the vault as the API names it. */
	if ((size_t)snprintf(vault_id, sizeof(vault_id), "/groups/%s/vaults/%s", group, vault) >=
	    sizeof(vault_id))
		return cli_usage_error(secret_usage, "the names are too long");
	vpath[0] = '\0';
	r = 0;
	switch (a) {
	case A_LIST:
		if (deleted)
			r = add_query(path, sizeof(path), "deleted", "true");
		break;
	case A_SHOW:
		if (want_value && version) {
			r = add_query(path, sizeof(path), "version", version);
		} else if (!want_value) {
			/* The metadata comes from the list and the versions. */
			r = cli_path(vpath, sizeof(vpath), "groups", group, "vaults", vault,
				     "secrets", name, "versions", (char *)NULL);
			if (r == 0)
				r = cli_path(path, sizeof(path), "groups", group, "vaults", vault,
					     "secrets", (char *)NULL);
		}
		break;
	case A_VERSIONS:
		r = cli_path(path, sizeof(path), "groups", group, "vaults", vault, "secrets", name,
			     "versions", (char *)NULL);
		break;
	case A_DELETE:
		if (purge)
			r = add_query(path, sizeof(path), "purge", "true");
		break;
	case A_RECOVER:
		r = cli_path(path, sizeof(path), "groups", group, "vaults", vault, "secrets", name,
			     "recover", (char *)NULL);
		break;
	case A_SET:
		break;
	}
	if (r < 0)
		return cli_usage_error(secret_usage, "the names are too long");

	if (a == A_SET) {
		if (from_stdin && isatty(STDIN_FILENO))
			return cli_usage_error(
				NULL, "--value-stdin reads a pipe or a redirected file, not a "
				      "terminal (it would echo the value); use --file PATH");
		if ((r = value_read(file, &val)) < 0) {
			if (r == -E2BIG)
				return cli_usage_error(NULL, "the value is longer than %u bytes",
						       VALUE_READ_MAX);
			return cli_usage_error(NULL, "cannot read %s: %s", file ? file : "stdin",
					       err_str(r));
		}
		r = set_body(&val, ctype, &body);
		/* The JSON string holds its own (wiped) copy from here on. */
		value_done(&val);
		if (r != CLI_OK)
			goto out;
	}
	if ((r = cli_connect(c)) != CLI_OK)
		goto out;

	switch (a) {
	case A_SET:
		if ((r = cli_call(c, "PUT", path, body, &answer, NULL)) == CLI_OK)
			r = cli_print_object(c, answer);
		break;
	case A_LIST:
		if ((r = cli_call(c, "GET", path, NULL, &answer, NULL)) == CLI_OK)
			r = deleted ? cli_print_list(c, answer, deleted_cols, NCOLS(deleted_cols))
				    : cli_print_list(c, answer, list_cols, NCOLS(list_cols));
		break;
	case A_SHOW:
		r = want_value ? show_value(c, path)
			       : show_meta(c, path, vpath, vault_id, name, version);
		break;
	case A_VERSIONS:
		if ((r = cli_call(c, "GET", path, NULL, &answer, NULL)) == CLI_OK)
			r = cli_print_list(c, answer, version_cols, NCOLS(version_cols));
		break;
	case A_DELETE:
		if ((r = cli_call(c, "DELETE", path, NULL, NULL, NULL)) == CLI_OK &&
		    cli_output(c) == CLI_OUT_TABLE) {
			if (purge)
				printf("Purged secret %s/secrets/%s\n", vault_id, name);
			else
				printf("Deleted secret %s/secrets/%s (recoverable: bastion secret recover "
				       "%s %s %s)\n",
				       vault_id, name, group, vault, name);
		}
		break;
	case A_RECOVER:
		if ((r = cli_call(c, "POST", path, NULL, &answer, NULL)) == CLI_OK)
			r = cli_print_object(c, answer);
		break;
	}
out:
	value_done(&val);
	json_decref(body);
	json_decref(answer);
	return r;
}
