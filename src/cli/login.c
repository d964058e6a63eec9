/* `bastion login URL` and `bastion logout`: sign in once with a password,
 * trade the browser-style session for an API token, keep the token in the
 * user's config file (0600), and forget it again. */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "core/err.h"

#define USERNAME_MAX   256
#define TOKEN_NAME_MAX 64

static const char login_usage[] =
	"usage: bastion login URL [--username NAME] [--password-stdin] [--otp CODE]\n"
	"                         [--ca-file FILE | --insecure]\n"
	"       bastion login URL --sso [--no-browser] [--otp CODE]\n"
	"                         [--ca-file FILE | --insecure]\n"
	"  URL               the bastion: https://HOST[:PORT] (HTTPS only)\n"
	"  --username NAME   the account (asked for on a terminal when omitted)\n"
	"  --password-stdin  read the password from the first line of stdin;\n"
	"                    without it the password is asked for on the terminal\n"
	"  --otp CODE        the second factor (a TOTP code or a recovery code); without\n"
	"                    it the code is asked for on the terminal when the account\n"
	"                    has one\n"
	"  --ca-file FILE    trust this certificate (PEM), e.g. the self-signed\n"
	"                    DATA/tls-cert.pem the bastion generated: the recommended way\n"
	"  --insecure        do not verify the server's certificate at all\n"
	"  --sso             sign in with the bastion's identity provider in a browser\n"
	"  --no-browser      with --sso: print the URL to open instead of opening it\n"
	"Stores the URL, an API token and the TLS choice in\n"
	"$XDG_CONFIG_HOME/bastion/config.json (default ~/.config/bastion/), mode 0600.\n";

static const char logout_usage[] =
	"usage: bastion logout\n"
	"  Revokes the stored API token on the bastion, then deletes the stored token\n"
	"  and URL (the config file written by login).\n";

/* A token name the API accepts: "bastion-cli@HOST", printable, bounded. */
static void token_name(char *out, size_t size)
{
	char host[HOST_NAME_MAX + 1] = "";
	size_t n;

	if (gethostname(host, sizeof(host)) < 0)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	snprintf(out, size, "bastion-cli@%s", host[0] ? host : "unknown");
	for (n = 0; out[n]; n++)
		if ((unsigned char)out[n] < 0x20 || (unsigned char)out[n] >= 0x7f)
			out[n] = '?';
}

static void print_expiry(const json_t *answer, char *out, size_t size)
{
	const json_t *v = json_object_get(answer, "expires_at");
	struct tm tm;
	time_t t;

	out[0] = '\0';
	if (!json_is_integer(v))
		return;
	t = (time_t)json_integer_value(v);
	if (gmtime_r(&t, &tm))
		strftime(out, size, "%Y-%m-%d %H:%M UTC", &tm);
}

/* POST /auth/login with the password and, when given, the code. An
 * MfaRequired answer without a code asks for one on the terminal and sends
 * both again (docs/sign-in.md "Second factors"). */
static int login_call(struct cli *c, const char *username, const char *password, const char *otp,
		      json_t **ret_answer)
{
	char *code = NULL;
	json_t *body = NULL;
	int r;

	for (int round = 0; round < 2; round++) {
		body = json_pack("{s:s, s:s}", "username", username, "password", password);
		if (body && otp && json_object_set_new(body, "otp", json_string(otp)) < 0) {
			json_decref(body);
			body = NULL;
		}
		if (!body) {
			fprintf(stderr,
				"bastion: the username, password or code is not valid UTF-8\n");
			r = CLI_EUSAGE;
			goto out;
		}
		r = cli_call(c, "POST", "/auth/login", body, ret_answer, NULL);
		json_decref(body);
		body = NULL;
		if (r == CLI_OK || strcmp(cli_last_error(c), "MfaRequired") != 0)
			goto out;
		if (otp || !isatty(STDIN_FILENO)) {
			fprintf(stderr,
				"bastion: this account needs a second factor: give --otp CODE "
				"(a TOTP code or a recovery code)\n");
			goto out;
		}
		if (!(code = sodium_malloc(CLI_SECRET_MAX))) {
			r = CLI_ECONN;
			goto out;
		}
		if ((r = cli_get_password("Code (TOTP or recovery code): ", false, false, code,
					  CLI_SECRET_MAX)) != CLI_OK)
			goto out;
		otp = code;
	}
out:
	if (code)
		sodium_free(code);
	return r;
}

int cli_cmd_login(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "username", required_argument, NULL, 'u' },
		{ "password-stdin", no_argument, NULL, 'p' },
		{ "otp", required_argument, NULL, 't' },
		{ "ca-file", required_argument, NULL, 'c' },
		{ "insecure", no_argument, NULL, 'k' },
		{ "sso", no_argument, NULL, 'S' },
		{ "no-browser", no_argument, NULL, 'B' },
		CLI_COMMON_OPTIONS,
		{ 0 },
	};
	struct cli_config cfg = { 0 };
	char username[USERNAME_MAX], tname[TOKEN_NAME_MAX + 1], expiry[64];
	char cfg_path[CLI_PATH_MAX], url[CLI_URL_MAX];
	const char *user_opt = NULL, *ca_opt = NULL, *otp_opt = NULL;
	char *password = NULL, *ca_abs = NULL;
	json_t *body = NULL, *answer = NULL;
	const json_t *v;
	bool from_stdin = false, insecure = false, help = false, sso = false, no_browser = false;
	bool replaced = false;
	int opt, r;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":ho:u:k", opts, NULL)) != -1) {
		switch (opt) {
		case 'u':
			user_opt = optarg;
			break;
		case 'p':
			from_stdin = true;
			break;
		case 't':
			otp_opt = optarg;
			break;
		case 'c':
			ca_opt = optarg;
			break;
		case 'k':
			insecure = true;
			break;
		case 'S':
			sso = true;
			break;
		case 'B':
			no_browser = true;
			break;
		default:
			r = cli_common_option(c, opt, argv, login_usage, &help);
			if (r != CLI_OK || help)
				return r;
		}
	}
	if (optind != argc - 1)
		return cli_usage_error(login_usage, "login takes one URL");
	if (insecure && ca_opt)
		return cli_usage_error(login_usage, "--insecure and --ca-file exclude each other");
	if (cli_url_normalize(argv[optind], url, sizeof(url)) < 0)
		return cli_usage_error(login_usage,
				       "the URL must be https://HOST[:PORT] (HTTPS only), not '%s'",
				       argv[optind]);
	if ((r = cli_config_path(cfg_path, sizeof(cfg_path))) < 0) {
		fprintf(stderr, "bastion: no config directory (set HOME or XDG_CONFIG_HOME): %s\n",
			err_str(r));
		return CLI_EUSAGE;
	}
	if (ca_opt) {
		/* Stored absolute, so that later commands find it from anywhere. */
		int fd;

		if (!(ca_abs = realpath(ca_opt, NULL)) ||
		    (fd = open(ca_abs, O_RDONLY | O_CLOEXEC)) < 0) {
			r = cli_usage_error(NULL, "cannot read the CA file %s: %s", ca_opt,
					    err_str(-errno));
			goto out;
		}
		close(fd);
	}
	if (sso || no_browser) {
		/* Single sign-on (login_sso.c): no name or password here. */
		if (!sso || user_opt || from_stdin)
			r = cli_usage_error(login_usage,
					    "--no-browser goes with --sso, and --sso "
					    "with neither --username nor --password-stdin");
		else
			r = cli_login_sso(c, url, ca_abs, insecure, no_browser, otp_opt, cfg_path);
		goto out;
	}
	if (user_opt) {
		if (strlen(user_opt) >= sizeof(username)) {
			r = cli_usage_error(NULL, "the username is too long");
			goto out;
		}
		memcpy(username, user_opt, strlen(user_opt) + 1);
	} else if (!from_stdin && isatty(STDIN_FILENO)) {
		if (cli_prompt_line("Username: ", username, sizeof(username)) < 0 || !username[0]) {
			r = cli_usage_error(NULL, "no username");
			goto out;
		}
	} else {
		r = cli_usage_error(login_usage,
				    "--username is required when the password comes from stdin");
		goto out;
	}
	r = CLI_ECONN;
	if (!(password = sodium_malloc(CLI_SECRET_MAX))) {
		fprintf(stderr, "bastion: out of memory\n");
		goto out;
	}
	if ((r = cli_get_password("Password: ", from_stdin, false, password, CLI_SECRET_MAX)) !=
	    CLI_OK)
		goto out;
	if ((r = cli_set_target(c, url, ca_abs, insecure)) != CLI_OK)
		goto out;

	r = login_call(c, username, password, otp_opt, &answer);
	sodium_memzero(password, CLI_SECRET_MAX);
	if (r != CLI_OK)
		goto out;
	v = json_object_get(answer, "csrf_token");
	if (!json_is_string(v) || cli_set_header(c, "X-CSRF-Token", json_string_value(v)) < 0) {
		fprintf(stderr, "bastion: the login answer carries no usable csrf_token\n");
		r = CLI_ESERVER;
		goto out;
	}
	json_decref(answer);
	answer = NULL;

	token_name(tname, sizeof(tname));
	if (!(body = json_pack("{s:s}", "name", tname))) {
		r = CLI_ECONN;
		goto out;
	}
	if ((r = cli_call(c, "POST", "/tokens", body, &answer, NULL)) != CLI_OK)
		goto out;
	v = json_object_get(answer, "token");
	if (!json_is_string(v) || json_string_length(v) == 0) {
		fprintf(stderr, "bastion: the token answer carries no token\n");
		r = CLI_ESERVER;
		goto out;
	}
	cfg.insecure = insecure;
	if (!(cfg.url = strdup(url)) || !(cfg.token = strdup(json_string_value(v))) ||
	    (ca_abs && !(cfg.ca_file = strdup(ca_abs)))) {
		fprintf(stderr, "bastion: out of memory\n");
		r = CLI_ECONN;
		goto out;
	}
	print_expiry(answer, expiry, sizeof(expiry));
	/* The token is what stays; end the password session right away. The
	 * answer does not matter: the session expires by itself anyway. */
	cli_call_quiet404(c, "POST", "/auth/logout", NULL, NULL);
	/* The token this login replaces would otherwise stay valid, unseen,
	 * until it expires: revoked with itself before the file is replaced. */
	replaced = cli_revoke_stored_token(c, cfg_path);
	if ((r = cli_config_save(cfg_path, &cfg)) < 0) {
		fprintf(stderr, "bastion: cannot write %s: %s\n", cfg_path, err_str(r));
		r = CLI_EUSAGE;
		goto out;
	}
	printf("Logged in to %s as %s; the API token is stored in %s%s%s%s\n", url, username,
	       cfg_path, expiry[0] ? " (it expires " : "", expiry, expiry[0] ? ")" : "");
	if (replaced)
		printf("Revoked the API token this login replaces\n");
	r = CLI_OK;
out:
	json_decref(body);
	json_decref(answer);
	cli_config_done(&cfg);
	sodium_free(password);
	free(ca_abs);
	return r;
}

/* Revokes the token stored in path (POST /auth/logout with it), not a
 * BASTION_TOKEN of the environment: logout is about the stored login. The
 * file goes either way; a token that could not be revoked is said. */
bool cli_revoke_stored_token(struct cli *c, const char *path)
{
	struct cli_config cfg = { 0 };
	bool loose = false, revoked = false;
	int r;

	if (cli_config_load(path, &cfg, &loose) < 0 || !cfg.url || !cfg.token)
		goto out;
	r = cli_set_login(c, cfg.url, cfg.token, cfg.ca_file, cfg.insecure);
	if (r == CLI_OK)
		r = cli_call(c, "POST", "/auth/logout", NULL, NULL, NULL);
	revoked = r == CLI_OK;
	if (r == CLI_EAUTH)
		fprintf(stderr, "bastion: the stored token was no longer valid\n");
	else if (!revoked)
		fprintf(stderr, "bastion: warning: the stored token could not be revoked; "
				"it stays valid until it expires\n");
out:
	cli_config_done(&cfg);
	return revoked;
}

int cli_cmd_logout(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_COMMON_OPTIONS,
		{ 0 },
	};
	char path[CLI_PATH_MAX];
	bool help = false, revoked;
	int opt, r;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
		r = cli_common_option(c, opt, argv, logout_usage, &help);
		if (r != CLI_OK || help)
			return r;
	}
	if (optind != argc)
		return cli_usage_error(logout_usage, "logout takes no arguments");
	if ((r = cli_config_path(path, sizeof(path))) < 0) {
		fprintf(stderr, "bastion: no config directory (set HOME or XDG_CONFIG_HOME): %s\n",
			err_str(r));
		return CLI_EUSAGE;
	}
	revoked = cli_revoke_stored_token(c, path);
	if (unlink(path) < 0) {
		if (errno == ENOENT) {
			fprintf(stderr, "bastion: not logged in (no %s)\n", path);
			return CLI_OK;
		}
		fprintf(stderr, "bastion: cannot delete %s: %s\n", path, err_str(-errno));
		return CLI_EUSAGE;
	}
	printf("Logged out: %sdeleted %s\n", revoked ? "revoked the API token, " : "", path);
	return CLI_OK;
}
