/* The command-line client's dispatch and transport: one libcurl easy handle
 * per process, HTTPS only, bounded in time and in answer size, JSON through
 * jansson. Errors from the API print as "bastion: CODE: message" and map to
 * the exit codes of enum cli_exit. */
#include "cli/cli.h"
#include "cli/native.h"
#include "cli/ws.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>

#include "core/err.h"
#include "core/util.h"

#define CONNECT_TIMEOUT_S 10L
#define TOTAL_TIMEOUT_S   60L

struct cli {
	CURL *curl;
	char errbuf[CURL_ERROR_SIZE];
	char url[CLI_URL_MAX];
	char *token; /* secret */
	char *ca_file;
	bool insecure;
	enum cli_output out;
	/* Headers set with cli_set_header ("Name: value"), e.g. X-CSRF-Token. */
	struct curl_slist *extra;
	/* The error code of the last non-2xx answer ("" for none), so that
	 * `login` can tell MfaRequired from a wrong password. */
	char last_error[64];
};

/* ---- a jansson allocator that wipes ---------------------------------- */

/* Request and answer bodies hold passwords and tokens; every JSON string
 * in this process is wiped when jansson frees it. The size sits in a
 * header as wide as max_align_t so that the block stays aligned. */
#define WIPE_HDR 16

static void *wipe_malloc(size_t n)
{
	unsigned char *p;

	if (n > SIZE_MAX - WIPE_HDR || !(p = malloc(n + WIPE_HDR)))
		return NULL;
	memcpy(p, &n, sizeof(n));
	return p + WIPE_HDR;
}

static void wipe_free(void *ptr)
{
	unsigned char *p;
	size_t n;

	if (!ptr)
		return;
	p = (unsigned char *)ptr - WIPE_HDR;
	memcpy(&n, p, sizeof(n));
	sodium_memzero(ptr, n);
	free(p);
}

static void wipe_slist(struct curl_slist *l)
{
	for (struct curl_slist *i = l; i; i = i->next)
		sodium_memzero(i->data, strlen(i->data));
	curl_slist_free_all(l);
}

/* ---- options, usage, output ----------------------------------------- */

int cli_usage_error(const char *usage_text, const char *fmt, ...)
{
	va_list ap;

	fputs("bastion: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (usage_text)
		fputs(usage_text, stderr);
	return CLI_EUSAGE;
}

int cli_common_option(struct cli *c, int opt, char **argv, const char *usage_text, bool *ret_help)
{
	switch (opt) {
	case 'o':
	case CLI_OPT_OUTPUT:
		if (cli_parse_output(optarg, &c->out) < 0)
			return cli_usage_error(NULL, "--output must be table or json, not '%s'",
					       optarg);
		return CLI_OK;
	case 'h':
	case CLI_OPT_HELP:
		fputs(usage_text, stdout);
		*ret_help = true;
		return CLI_OK;
	case ':':
		return cli_usage_error(usage_text, "option '%s' needs a value", argv[optind - 1]);
	case '?':
		return cli_usage_error(usage_text, "unknown option '%s'", argv[optind - 1]);
	default:
		return -1;
	}
}

enum cli_output cli_output(const struct cli *c)
{
	return c->out;
}

/* A write error on stdout: quiet success when the reader closed the pipe
 * (`bastion audit | head`), else said and an error. */
static int output_error(int r)
{
	if (errno == EPIPE)
		return CLI_OK;
	fprintf(stderr, "bastion: cannot write the output: %s\n", err_str(r));
	return CLI_ESERVER;
}

int cli_print_list(struct cli *c, const json_t *answer, const struct cli_column *cols, size_t ncols)
{
	const json_t *value = json_object_get(answer, "value");
	int r;

	if (!json_is_array(value)) {
		fprintf(stderr, "bastion: the server's answer has no \"value\" list\n");
		return CLI_ESERVER;
	}
	errno = 0;
	if (c->out == CLI_OUT_JSON)
		r = cli_print_json(stdout, value);
	else
		r = cli_table(stdout, cols, ncols, value);
	return r < 0 ? output_error(r) : CLI_OK;
}

int cli_print_object(struct cli *c, const json_t *obj)
{
	int r;

	if (!json_is_object(obj)) {
		fprintf(stderr, "bastion: the server's answer is not a JSON object\n");
		return CLI_ESERVER;
	}
	errno = 0;
	r = c->out == CLI_OUT_JSON ? cli_print_json(stdout, obj) : cli_object_table(stdout, obj);
	return r < 0 ? output_error(r) : CLI_OK;
}

int cli_run_action(struct cli *c, const char *action, const char *path,
		   const struct cli_column *cols, size_t ncols, const char *deleted_fmt, ...)
{
	json_t *answer = NULL;
	va_list ap;
	int r;

	if (strcmp(action, "list") == 0) {
		if ((r = cli_call(c, "GET", path, NULL, &answer, NULL)) == CLI_OK)
			r = cli_print_list(c, answer, cols, ncols);
	} else if (strcmp(action, "show") == 0) {
		if ((r = cli_call(c, "GET", path, NULL, &answer, NULL)) == CLI_OK)
			r = cli_print_object(c, answer);
	} else if (strcmp(action, "delete") == 0) {
		if ((r = cli_call(c, "DELETE", path, NULL, NULL, NULL)) == CLI_OK &&
		    c->out == CLI_OUT_TABLE) {
			va_start(ap, deleted_fmt);
			vprintf(deleted_fmt, ap);
			va_end(ap);
		}
	} else {
		return -1;
	}
	json_decref(answer);
	return r;
}

int cli_get_password(const char *prompt, bool from_stdin, bool confirm, char *buf, size_t size)
{
	char *again = NULL;
	int r;

	if (from_stdin) {
		r = cli_read_line(STDIN_FILENO, buf, size);
	} else if (isatty(STDIN_FILENO)) {
		r = cli_prompt_secret(prompt, buf, size);
		if (r == 0 && confirm) {
			if (!(again = sodium_malloc(size)))
				r = -ENOMEM;
			else if ((r = cli_prompt_secret("Again: ", again, size)) == 0 &&
				 strcmp(buf, again) != 0)
				r = -EILSEQ;
			sodium_free(again);
		}
	} else {
		return cli_usage_error(NULL, "no password: pipe it with --password-stdin, "
					     "or run on a terminal to be asked");
	}
	if (r == 0 && buf[0] == '\0')
		r = -ENODATA;
	if (r < 0) {
		sodium_memzero(buf, size);
		if (r == -E2BIG)
			return cli_usage_error(NULL, "the password is longer than %zu bytes",
					       size - 1);
		if (r == -ENODATA)
			return cli_usage_error(NULL, "the password is empty");
		if (r == -EILSEQ)
			return cli_usage_error(NULL, "the passwords do not match");
		return cli_usage_error(NULL, "cannot read the password: %s", err_str(r));
	}
	return CLI_OK;
}

/* ---- the connection -------------------------------------------------- */

static int handle_init(struct cli *c)
{
	CURL *h = curl_easy_init();

	if (!h) {
		fprintf(stderr, "bastion: cannot initialise libcurl\n");
		return CLI_ECONN;
	}
	/* A second target in one process (login revoking the token it
	 * replaces, on the old one's bastion) gets a fresh handle. */
	if (c->curl)
		curl_easy_cleanup(c->curl);
	c->curl = h;
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	/* HTTPS only, redirects never followed: a bastion answers itself. */
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, TOTAL_TIMEOUT_S);
	curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)CLI_RESPONSE_MAX);
	/* Send ".." as typed: the server refuses it as a name instead of the
	 * client quietly resolving it to another path. */
	curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "bastion-cli");
	/* The login's session cookie lives in memory only, for one process. */
	curl_easy_setopt(h, CURLOPT_COOKIEFILE, "");
	if (c->insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	} else {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
		if (c->ca_file)
			curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
	}
	return CLI_OK;
}

int cli_set_target(struct cli *c, const char *url, const char *ca_file, bool insecure)
{
	if (cli_url_normalize(url, c->url, sizeof(c->url)) < 0)
		return cli_usage_error(
			NULL, "the URL must be https://HOST[:PORT] (HTTPS only), not '%s'", url);
	free(c->ca_file);
	c->ca_file = NULL;
	if (ca_file && !(c->ca_file = strdup(ca_file))) {
		fprintf(stderr, "bastion: out of memory\n");
		return CLI_ECONN;
	}
	c->insecure = insecure;
	return handle_init(c);
}

static bool env_true(const char *v)
{
	return v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "yes") == 0);
}

int cli_connect(struct cli *c)
{
	struct cli_config cfg = { 0 };
	char path[CLI_PATH_MAX];
	const char *env_url = getenv("BASTION_URL"), *env_token = getenv("BASTION_TOKEN");
	const char *env_ca = getenv("BASTION_CA_FILE"), *env_insecure = getenv("BASTION_INSECURE");
	const char *url, *token, *ca;
	bool loose = false, insecure;
	int r, lr = -ENOENT;

	if (env_url && !*env_url)
		env_url = NULL;
	if (env_token && !*env_token)
		env_token = NULL;
	if (!(env_url && env_token)) {
		if ((r = cli_config_path(path, sizeof(path))) < 0) {
			fprintf(stderr,
				"bastion: no config directory (set HOME or XDG_CONFIG_HOME): %s\n",
				err_str(r));
			return CLI_EAUTH;
		}
		lr = cli_config_load(path, &cfg, &loose);
		if (lr < 0 && lr != -ENOENT) {
			fprintf(stderr,
				"bastion: cannot read %s: %s; run `bastion login URL` again\n",
				path, err_str(lr));
			return CLI_EAUTH;
		}
		if (loose)
			fprintf(stderr,
				"bastion: warning: %s may be read by other users; "
				"run chmod 600 on it\n",
				path);
	}
	url = env_url ? env_url : cfg.url;
	token = env_token ? env_token : cfg.token;
	ca = env_ca && *env_ca ? env_ca : cfg.ca_file;
	insecure = env_insecure ? env_true(env_insecure) : cfg.insecure;
	if (!url || !token) {
		fprintf(stderr, "bastion: not logged in: run `bastion login URL`, "
				"or set BASTION_URL and BASTION_TOKEN\n");
		r = CLI_EAUTH;
		goto out;
	}
	r = cli_set_login(c, url, token, ca, insecure);
out:
	cli_config_done(&cfg);
	return r;
}

int cli_set_login(struct cli *c, const char *url, const char *token, const char *ca_file,
		  bool insecure)
{
	util_free_secret(c->token);
	if (!(c->token = strdup(token))) {
		fprintf(stderr, "bastion: out of memory\n");
		return CLI_ECONN;
	}
	return cli_set_target(c, url, ca_file, insecure);
}

void cli_stream_target(const struct cli *c, struct cli_ws_target *t)
{
	t->url = c->url;
	t->token = c->token;
	t->ca_file = c->ca_file;
	t->insecure = c->insecure;
}

int cli_set_header(struct cli *c, const char *name, const char *value)
{
	struct curl_slist *keep = NULL;
	size_t nlen = strlen(name);
	char *line = NULL;
	int r = -ENOMEM;

	/* Rebuild the list without name, then add the new value. */
	for (struct curl_slist *i = c->extra; i; i = i->next) {
		if (strncasecmp(i->data, name, nlen) == 0 && i->data[nlen] == ':')
			continue;
		struct curl_slist *n = curl_slist_append(keep, i->data);

		if (!n)
			goto out;
		keep = n;
	}
	if (value) {
		struct curl_slist *n;

		if (strpbrk(value, "\r\n")) {
			r = -EINVAL;
			goto out;
		}
		if (asprintf(&line, "%s: %s", name, value) < 0) {
			line = NULL;
			goto out;
		}
		if (!(n = curl_slist_append(keep, line)))
			goto out;
		keep = n;
	}
	wipe_slist(c->extra);
	c->extra = keep;
	keep = NULL;
	r = 0;
out:
	wipe_slist(keep);
	util_free_secret(line);
	return r;
}

/* ---- requests -------------------------------------------------------- */

struct answer {
	char *p;
	size_t n, cap;
	bool over;
};

static size_t on_data(char *data, size_t size, size_t nmemb, void *ud)
{
	struct answer *a = ud;
	size_t len = size * nmemb;

	if (len > CLI_RESPONSE_MAX - a->n) {
		a->over = true;
		return 0;
	}
	if (a->n + len + 1 > a->cap) {
		size_t cap = a->cap ? a->cap : 4096;
		char *p;

		while (cap < a->n + len + 1)
			cap *= 2;
		/* Grow by copying, so that no unwiped old block is left behind. */
		if (!(p = malloc(cap)))
			return 0;
		if (a->p) {
			memcpy(p, a->p, a->n);
			sodium_memzero(a->p, a->cap);
			free(a->p);
		}
		a->p = p;
		a->cap = cap;
	}
	memcpy(a->p + a->n, data, len);
	a->n += len;
	a->p[a->n] = '\0';
	return len;
}

static const char *tls_hint(CURLcode res)
{
	switch (res) {
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
		return " (a bastion with its self-signed certificate: log in with "
		       "--ca-file DATA/tls-cert.pem)";
	default:
		return "";
	}
}

static int request(struct cli *c, const char *method, const char *path, const json_t *body,
		   json_t **ret_body, long *ret_status, bool quiet404)
{
	char url[CLI_URL_MAX + CLI_PATH_MAX + 16];
	struct curl_slist *hdrs = NULL, *n;
	struct answer a = { 0 };
	const json_t *err, *code, *msg;
	json_t *parsed = NULL;
	char *payload = NULL, *auth = NULL;
	long status = 0;
	CURLcode res;
	int r = CLI_ECONN;

	if (ret_status)
		*ret_status = 0;
	if (!c->curl) {
		fprintf(stderr, "bastion: not connected\n");
		return CLI_ECONN;
	}
	if (snprintf(url, sizeof(url), "%s/api/v1%s", c->url, path) >= (int)sizeof(url))
		return cli_usage_error(NULL, "the request path is too long");
	if (body && !(payload = json_dumps(body, JSON_COMPACT)))
		goto oom;
	/* The headers: ours first, then the persistent extras. */
	if (!(n = curl_slist_append(hdrs, "Accept: application/json")))
		goto oom;
	hdrs = n;
	if (!(n = curl_slist_append(hdrs, "Expect:")))
		goto oom;
	hdrs = n;
	if (payload) {
		if (!(n = curl_slist_append(hdrs, "Content-Type: application/json")))
			goto oom;
		hdrs = n;
	}
	if (c->token) {
		if (asprintf(&auth, "Authorization: Bearer %s", c->token) < 0) {
			auth = NULL;
			goto oom;
		}
		if (!(n = curl_slist_append(hdrs, auth)))
			goto oom;
		hdrs = n;
	}
	for (struct curl_slist *i = c->extra; i; i = i->next) {
		if (!(n = curl_slist_append(hdrs, i->data)))
			goto oom;
		hdrs = n;
	}

	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, NULL);
	if (strcmp(method, "PUT") == 0 || strcmp(method, "POST") == 0 || payload) {
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE,
				 (long)(payload ? strlen(payload) : 0));
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, payload ? payload : "");
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
		curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &a);
	c->errbuf[0] = '\0';
	res = curl_easy_perform(c->curl);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, NULL);
	if (res != CURLE_OK) {
		if (a.over || res == CURLE_FILESIZE_EXCEEDED)
			fprintf(stderr, "bastion: the answer from %s is larger than %u MiB\n",
				c->url, CLI_RESPONSE_MAX >> 20);
		else
			fprintf(stderr, "bastion: cannot talk to %s: %s%s\n", c->url,
				c->errbuf[0] ? c->errbuf : curl_easy_strerror(res), tls_hint(res));
		r = CLI_ECONN;
		goto out;
	}
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	if (ret_status)
		*ret_status = status;
	if (a.n > 0)
		parsed = json_loadb(a.p, a.n, 0, NULL);
	if (status >= 200 && status < 300) {
		if (a.n > 0 && !parsed) {
			fprintf(stderr, "bastion: the answer from %s is not JSON (HTTP %ld)\n",
				c->url, status);
			r = CLI_ESERVER;
			goto out;
		}
		if (ret_body) {
			*ret_body = parsed;
			parsed = NULL;
		}
		r = CLI_OK;
		goto out;
	}
	r = cli_exit_for_status(status);
	if (quiet404 && status == 404)
		goto out;
	err = json_object_get(parsed, "error");
	code = json_object_get(err, "code");
	msg = json_object_get(err, "message");
	if (json_is_string(code))
		util_strlcpy(c->last_error, json_string_value(code), sizeof(c->last_error));
	/* login asks for the code itself (login.c). */
	if (json_is_string(code) && strcmp(json_string_value(code), "MfaRequired") == 0)
		goto out;
	if (json_is_string(code) && json_is_string(msg)) {
		cli_print_error(stderr, json_string_value(code), json_string_value(msg));
	} else {
		char what[32];

		snprintf(what, sizeof(what), "HTTP %ld", status);
		cli_print_error(stderr, what, "the server answered without an error body");
	}
	goto out;
oom:
	fprintf(stderr, "bastion: out of memory\n");
	r = CLI_ECONN;
out:
	json_decref(parsed);
	wipe_slist(hdrs);
	util_free_secret(auth);
	cli_json_free_text(payload);
	if (a.p) {
		sodium_memzero(a.p, a.cap);
		free(a.p);
	}
	return r;
}

const char *cli_last_error(const struct cli *c)
{
	return c->last_error;
}

int cli_call(struct cli *c, const char *method, const char *path, const json_t *body,
	     json_t **ret_body, long *ret_status)
{
	c->last_error[0] = '\0';
	return request(c, method, path, body, ret_body, ret_status, false);
}

int cli_call_quiet404(struct cli *c, const char *method, const char *path, const json_t *body,
		      json_t **ret_body)
{
	return request(c, method, path, body, ret_body, NULL, true);
}

/* ---- dispatch -------------------------------------------------------- */

/* Each client command's function; the command must also be in the table
 * of commands.c, which is what cli_main accepts and completion offers. */
static const struct {
	const char *name;
	int (*fn)(struct cli *c, int argc, char **argv);
} commands[] = {
	{ "login", cli_cmd_login },
	{ "logout", cli_cmd_logout },
	{ "user", cli_cmd_user },
	{ "role", cli_cmd_role },
	{ "vault", cli_cmd_vault },
	{ "secret", cli_cmd_secret },
	{ "session", cli_cmd_session },
	{ "audit", cli_cmd_audit },
	{ "version", cli_cmd_version },
	{ "completion", cli_cmd_completion },
	/* The native client (native.h). */
	{ "proxy", cli_cmd_proxy },
	{ "ssh", cli_cmd_ssh },
	{ "tunnel", cli_cmd_tunnel },
	{ "token", cli_cmd_token },
};

int cli_main(int argc, char **argv)
{
	int (*fn)(struct cli * c, int argc, char **argv) = NULL;
	struct cli c = { .out = CLI_OUT_TABLE };
	int r;

	if (argc < 2)
		return CLI_EUSAGE;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			fn = commands[i].fn;
	if (!fn && cli_is_resource_cmd(argv[1]))
		fn = cli_cmd_resource;
	if (!cli_command_find(argv[1]))
		fn = NULL;
	if (!fn) {
		fprintf(stderr, "bastion: unknown command '%s' (see `bastion help`)\n", argv[1]);
		return CLI_EUSAGE;
	}
	/* Before any JSON value exists: every one of them is wiped on free. */
	json_set_alloc_funcs(wipe_malloc, wipe_free);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "bastion: cannot initialise libcurl\n");
		return CLI_ECONN;
	}
	r = fn(&c, argc - 1, argv + 1);
	if (c.curl)
		curl_easy_cleanup(c.curl);
	wipe_slist(c.extra);
	util_free_secret(c.token);
	free(c.ca_file);
	curl_global_cleanup();
	errno = 0;
	/* A reader that closed the pipe (`| head`) has what it wanted. */
	if (fflush(stdout) != 0 && r == CLI_OK && errno != EPIPE) {
		fprintf(stderr, "bastion: cannot write the output\n");
		r = CLI_ESERVER;
	}
	return r;
}
