/* The command-line client: `bastion login|logout|user|group|network|nic|vm|
 * bastion|role|vault|secret ...`. Every command is a client of the REST API (docs/cli.md): it
 * talks HTTPS to a running instance with an API token stored by `login`.
 *
 * Two layers: util.c holds the pure parts (argument helpers, table and JSON
 * output, the config file, reading a password) and links into the core
 * library so unit tests reach it; cli.c holds the dispatch and the libcurl
 * transport, and one file per command family builds on both. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

/* Exit codes, documented in docs/cli.md and `bastion help`. */
enum cli_exit {
	CLI_OK = 0,        /* success */
	CLI_EAPI = 1,      /* the API refused the request (4xx other than 401/404) */
	CLI_EUSAGE = 2,    /* bad command line; nothing was sent */
	CLI_EAUTH = 3,     /* not logged in, or the credentials were refused (401) */
	CLI_ENOTFOUND = 4, /* the resource does not exist, or is not visible (404) */
	CLI_ECONN = 5,     /* connection, TLS or transport failure */
	CLI_ESERVER = 6,   /* the server failed (5xx) or answered nonsense */
};

#define CLI_URL_MAX      512
#define CLI_PATH_MAX     2048
#define CLI_SECRET_MAX   1025 /* a password of up to 1024 bytes plus NUL */
#define CLI_RESPONSE_MAX (16u << 20)
#define CLI_CONFIG_MAX   (64u << 10)
#define CLI_CELL_MAX     4096

enum cli_output { CLI_OUT_TABLE, CLI_OUT_JSON };

/* The entry point for every command main() does not handle itself.
 * argv[1] is the command. Returns an enum cli_exit value. */
int cli_main(int argc, char **argv);

/* ---- pure helpers (util.c) ------------------------------------------ */

/* "table" or "json"; -EINVAL otherwise. */
int cli_parse_output(const char *s, enum cli_output *ret_out);

/* Writes all n bytes to fd, retrying after EINTR: 0 or -errno. */
int cli_write_all(int fd, const char *p, size_t n);

/* Parses a whole decimal integer in [min, max]; -EINVAL otherwise. */
int cli_parse_int(const char *s, long min, long max, long *ret_v);

/* Checks that url is https://HOST[:PORT][/PREFIX] and copies it to out
 * without a trailing slash. -EINVAL for another scheme or a malformed URL
 * (userinfo, query or fragment included), -E2BIG when it does not fit. */
int cli_url_normalize(const char *url, char *out, size_t size);

/* Joins segments into "/seg1/seg2/..." with every segment percent-encoded
 * (only A-Z a-z 0-9 - . _ ~ stay as they are), so that a name can never add
 * a path segment or a query. The list ends with NULL. -EINVAL for an empty
 * segment, -E2BIG when the path does not fit. */
int cli_path(char *out, size_t size, ...) __attribute__((sentinel));

/* Percent-encodes s for a query value into out (same alphabet). */
int cli_query_escape(const char *s, char *out, size_t size);

/* The exit code for an HTTP status. */
int cli_exit_for_status(long status);

/* A table column: the header and the property shown. With count set, an
 * array cell shows its length instead of its elements. */
struct cli_column {
	const char *header;
	const char *key;
	bool count;
};

/* Renders a JSON value for a table cell into out: strings as they are,
 * numbers, true/false, arrays joined with ",", and "-" for null, a missing
 * value or an empty array. Control characters become '?', so that a server
 * cannot drive the terminal; a cell longer than size-1 bytes is cut. */
void cli_cell(const json_t *v, bool count, char *out, size_t size);

/* Writes rows (an array of objects) as aligned columns under a header row,
 * separated by two spaces, with no trailing spaces. 0, -EINVAL when rows is
 * not an array, -ENOMEM. */
int cli_table(FILE *f, const struct cli_column *cols, size_t ncols, const json_t *rows);

/* Writes one object as a two-column PROPERTY/VALUE table; an array value
 * takes one line per element. */
int cli_object_table(FILE *f, const json_t *obj);

/* Wipes and frees a string from json_dumps(), with jansson's own free
 * function (the client installs a wiping allocator). NULL is fine. */
void cli_json_free_text(char *s);

/* Writes v as indented JSON and a newline. */
int cli_print_json(FILE *f, const json_t *v);

/* Writes "bastion: CODE: message" to f with control characters replaced. */
void cli_print_error(FILE *f, const char *code, const char *message);

/* A vault access policy's secret permissions, as bits (docs/vault.md). */
enum {
	CLI_PERM_LIST = 1u << 0,
	CLI_PERM_GET = 1u << 1,
	CLI_PERM_SET = 1u << 2,
	CLI_PERM_DELETE = 1u << 3,
	CLI_PERM_USE = 1u << 4,
};
#define CLI_PERM_COUNT 5

/* The API's name of one permission bit ("list", "get", "set", "delete", "use"),
 * or NULL for anything else. */
const char *cli_perm_name(unsigned bit);

/* Parses a comma-separated list of permission names ("list,get") into
 * bits. The empty string is the empty list. -EINVAL for an unknown name
 * (they are lower case), an empty element or a name given twice. */
int cli_parse_permissions(const char *s, unsigned *ret_perms);

/* The config file: $XDG_CONFIG_HOME/bastion/config.json when
 * XDG_CONFIG_HOME is an absolute path, else $HOME/.config/bastion/config.json.
 * -ENOENT when neither variable gives a home, -E2BIG when too long. */
int cli_config_path(char *out, size_t size);

/* What `login` stores. token is a secret: cli_config_done wipes it. */
struct cli_config {
	char *url;
	char *token;
	char *ca_file;
	bool insecure;
};

/* Reads path into ret_cfg (fields the file lacks stay NULL). -ENOENT when
 * there is no file, -EINVAL when it is not the expected JSON, -E2BIG over
 * CLI_CONFIG_MAX. Sets *ret_loose when group or others may read the file. */
int cli_config_load(const char *path, struct cli_config *ret_cfg, bool *ret_loose);

/* Writes cfg to path atomically: the directory is created (mode 0700),
 * the file written to a temporary 0600 file beside it, synced and renamed. */
int cli_config_save(const char *path, const struct cli_config *cfg);

/* Frees the fields, wiping the token. */
void cli_config_done(struct cli_config *cfg);

/* Reads one line from fd a byte at a time (no stdio buffer keeps a copy),
 * without the line end ("\n" or "\r\n"). -E2BIG when the line does not fit
 * in size-1 bytes (the buffer is wiped), -ENODATA at end of input before
 * any byte, or -errno. */
int cli_read_line(int fd, char *buf, size_t size);

/* Asks for a secret on the terminal with echo off (restored on return and
 * on SIGINT/SIGTERM/SIGHUP). -ENOTTY when there is no terminal. */
int cli_prompt_secret(const char *prompt, char *buf, size_t size);

/* Asks for a line on the terminal with echo on. */
int cli_prompt_line(const char *prompt, char *buf, size_t size);

/* ---- the command table and completion (commands.c) ------------------- */

/* One top-level command: what `bastion completion` offers for it. */
struct cli_command {
	const char *name;
	const char *subcommands; /* space-separated; "" for none */
	const char *flags;       /* space-separated long flags */
	const char *summary;     /* one line (zsh shows it beside the name) */
};

/* Every top-level command, the daemon's (serve, audit export, help) and the
 * client's; cli_main runs nothing that is not in it. */
const struct cli_command *cli_commands(size_t *ret_n);
const struct cli_command *cli_command_find(const char *name);

/* Writes the completion script for shell ("bash" or "zsh") of the n
 * commands to f: 0, -EINVAL for another shell, -EIO on a write error. */
int cli_completion_write(FILE *f, const char *shell, const struct cli_command *cmds, size_t n);

/* `login URL --sso` (login_sso.c): the browser signs in with the
 * bastion's OpenID provider, the CLI receives a one-time code on
 * 127.0.0.1 and trades it for an API token saved in cfg_path. */
struct cli;
/* The token stored in path is revoked with itself (POST /auth/logout);
 * false when there was none or it could not be (said on stderr). */
bool cli_revoke_stored_token(struct cli *c, const char *path);
/* otp: --otp (NULL: asked for on a terminal when the account needs it). */
int cli_login_sso(struct cli *c, const char *url, const char *ca_file, bool insecure,
		  bool no_browser, const char *otp, const char *cfg_path);

/* ---- times ------------------------------------------------------------ */

/* Unix seconds as "2026-12-07 11:40:02Z" (UTC), the form of every time in a
 * table; -o json keeps the seconds. */
void cli_time_str(long long t, char *out, size_t size);

/* Does a table column or property of this name hold Unix seconds? Names
 * ending in "_at", and "ts". */
bool cli_is_time_key(const char *key);

/* cli_cell for the property key: a time as above, anything else as is. */
void cli_cell_of(const char *key, const json_t *v, bool count, char *out, size_t size);

/* ---- the client (cli.c) ---------------------------------------------- */

struct cli;

/* The options every command takes, for getopt_long tables; the ids are
 * above any character so that they never clash with a command's own. */
enum { CLI_OPT_OUTPUT = 0x1000, CLI_OPT_HELP };
#define CLI_COMMON_OPTIONS                                     \
	{ "output", required_argument, NULL, CLI_OPT_OUTPUT }, \
	{                                                      \
		"help", no_argument, NULL, CLI_OPT_HELP        \
	}

/* Handles a common option or an error from getopt_long (opt is its return
 * value). Returns -1 when opt is not one of them, CLI_OK when handled, or
 * an exit code after printing a usage error. With --help, prints usage_text
 * and sets *ret_help. */
int cli_common_option(struct cli *c, int opt, char **argv, const char *usage_text, bool *ret_help);

/* Prints "bastion: message" and the usage text to stderr; returns CLI_EUSAGE. */
int cli_usage_error(const char *usage_text, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

enum cli_output cli_output(const struct cli *c);

/* Connects the client to the configured bastion: env BASTION_URL,
 * BASTION_TOKEN, BASTION_CA_FILE, BASTION_INSECURE override the config
 * file. Returns CLI_OK, or prints why and returns CLI_EAUTH (not logged in)
 * or CLI_EUSAGE/CLI_ECONN. */
int cli_connect(struct cli *c);

/* Where the connected client points and its credentials, for the native
 * client's own TLS connections (ws.h); valid while c lives. */
struct cli_ws_target;
void cli_stream_target(const struct cli *c, struct cli_ws_target *t);

/* Points the client at url with the TLS options of a login (no token). */
int cli_set_target(struct cli *c, const char *url, const char *ca_file, bool insecure);

/* Like cli_set_target, with token sent as the bearer of every request. */
int cli_set_login(struct cli *c, const char *url, const char *token, const char *ca_file,
		  bool insecure);

/* Sets or clears (NULL) a header sent with every following request,
 * e.g. X-CSRF-Token. The value is copied. */
int cli_set_header(struct cli *c, const char *name, const char *value);

/* Sends one request to /api/v1{path} with body (may be NULL) as JSON.
 * On 2xx returns CLI_OK and the parsed body in *ret_body (NULL when empty;
 * ret_body may be NULL). Otherwise prints "bastion: CODE: message" and
 * returns the exit code for the status or the transport failure.
 * When *ret_status is given it receives the HTTP status (0 for none). */
int cli_call(struct cli *c, const char *method, const char *path, const json_t *body,
	     json_t **ret_body, long *ret_status);

/* The error code ("MfaRequired", ...) of cli_call's last non-2xx answer,
 * "" when it had none. An MfaRequired answer is not printed: the caller
 * (login) asks for the code. */
const char *cli_last_error(const struct cli *c);

/* Like cli_call but prints nothing for a 404 (returns CLI_ENOTFOUND). */
int cli_call_quiet404(struct cli *c, const char *method, const char *path, const json_t *body,
		      json_t **ret_body);

/* Prints a list answer ({"value":[...]}) as a table or as the JSON array. */
int cli_print_list(struct cli *c, const json_t *answer, const struct cli_column *cols,
		   size_t ncols);

/* Prints one object as a property table or as JSON. */
int cli_print_object(struct cli *c, const json_t *obj);

/* Runs the action "list", "show" or "delete" on path, for a connected
 * client: prints the list answer with cols, the object shown, or (for a
 * table) the message deleted_fmt makes. Returns -1 when action is none of
 * the three (nothing is sent), or an enum cli_exit value. */
int cli_run_action(struct cli *c, const char *action, const char *path,
		   const struct cli_column *cols, size_t ncols, const char *deleted_fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* Reads a password from stdin (from_stdin) or the terminal (asking twice
 * when confirm is set) into buf. Prints why and returns CLI_EUSAGE when
 * there is neither, or the line is empty or too long. */
int cli_get_password(const char *prompt, bool from_stdin, bool confirm, char *buf, size_t size);

/* Command families, one file each. argv[0] is the family's name. */
int cli_cmd_login(struct cli *c, int argc, char **argv);
int cli_cmd_logout(struct cli *c, int argc, char **argv);
int cli_cmd_user(struct cli *c, int argc, char **argv);
int cli_cmd_resource(struct cli *c, int argc, char **argv);
int cli_cmd_role(struct cli *c, int argc, char **argv);
/* `bastion vault ...`: the vault resource (through cli_cmd_resource),
 * access policies and the master key's rotation (vault.c). */
int cli_cmd_vault(struct cli *c, int argc, char **argv);
/* `bastion secret ...`: a vault's secrets (secret.c). */
int cli_cmd_secret(struct cli *c, int argc, char **argv);

/* `bastion session list|end` (session.c). */
int cli_cmd_session(struct cli *c, int argc, char **argv);
/* `bastion audit [list]` over the API (audit.c). */
int cli_cmd_audit(struct cli *c, int argc, char **argv);
/* `bastion audit export --data DIR [filters]` (export.c): argv[0] is
 * "audit". Reads the store of DIR, needs no server; main.c calls it. */
int cli_audit_export_main(int argc, char **argv);
/* `bastion version` and `bastion completion` (misc.c). */
int cli_cmd_version(struct cli *c, int argc, char **argv);
int cli_cmd_completion(struct cli *c, int argc, char **argv);
/* `bastion token list|create|revoke` (token.c). */
int cli_cmd_token(struct cli *c, int argc, char **argv);

/* For resource.c: is argv[0] one of its families? */
bool cli_is_resource_cmd(const char *name);
