/* `bastion login URL --sso`: sign in with the bastion's OpenID provider in
 * a browser and keep an API token (docs/sign-in.md "The command line").
 *
 * The provider only knows the bastion's own redirect URL, so the CLI never
 * talks to it: it listens on 127.0.0.1 (a port the kernel picks), opens
 * (or prints) GET /api/v1/auth/oidc/login?cli_port=N&cli_challenge=C, where
 * C is the S256 hash of a verifier only this process knows. After the
 * sign-in, the bastion sends the browser to http://127.0.0.1:N/callback
 * with a one-time code; the CLI trades code and verifier for an API token
 * (POST /auth/oidc/cli-token). A code caught by anyone else on the way is
 * useless without the verifier. */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "core/err.h"

#define SSO_WAIT_S      300 /* seconds the CLI waits for the browser */
#define SSO_REQUEST_MAX 8192

extern char **environ;

static int listen_loopback(int *ret_fd, int *ret_port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 4) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	*ret_fd = fd;
	*ret_port = ntohs(a.sin_port);
	return 0;
}

/* Opens url with xdg-open, without a shell; false when it could not. */
static bool open_browser(const char *url)
{
	char *argv[] = { "xdg-open", (char *)url, NULL };
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int st, r;

	posix_spawn_file_actions_init(&fa);
	/* xdg-open's chatter would mix with ours. */
	posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
	r = posix_spawnp(&pid, "xdg-open", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0)
		return false;
	return waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* Waits for the browser's GET /callback?code=... on fd and answers it.
 * The code goes into code (size bytes). -ETIMEDOUT after SSO_WAIT_S. */
static int wait_callback(int lfd, char *code, size_t size)
{
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
				 "Connection: close\r\nCache-Control: no-store\r\n\r\n"
				 "<!doctype html><title>bastion</title><p>Signed in. You may close "
				 "this tab and go back to the terminal.</p>\n";
	static const char bad[] = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n";
	char req[SSO_REQUEST_MAX];
	time_t end = time(NULL) + SSO_WAIT_S;

	for (;;) {
		struct pollfd p = { .fd = lfd, .events = POLLIN };
		int left = (int)(end - time(NULL)), cfd, n;
		size_t used = 0;
		const char *q, *stop;

		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&p, 1, left * 1000) <= 0)
			continue;
		if ((cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0)
			continue;
		/* Only the request line matters; a slow or silent peer gets
		 * 5 s. */
		struct pollfd cp = { .fd = cfd, .events = POLLIN };

		while (used < sizeof(req) - 1 && !memchr(req, '\n', used) &&
		       poll(&cp, 1, 5000) > 0 &&
		       (n = (int)read(cfd, req + used, sizeof(req) - 1 - used)) > 0)
			used += (size_t)n;
		req[used] = '\0';
		q = strncmp(req, "GET /callback?", 14) == 0 ? strstr(req, "code=") : NULL;
		if (q) {
			q += 5;
			stop = q + strcspn(q, "& \r\n");
			if (stop > q && (size_t)(stop - q) < size) {
				memcpy(code, q, (size_t)(stop - q));
				code[stop - q] = '\0';
				cli_write_all(cfd, ok, sizeof(ok) - 1);
				close(cfd);
				sodium_memzero(req, sizeof(req));
				return 0;
			}
		}
		/* Something else knocked (a favicon, a scanner): keep waiting. */
		cli_write_all(cfd, bad, sizeof(bad) - 1);
		close(cfd);
	}
}

/* POST /auth/oidc/cli-token {code, verifier, otp?}. An account that must
 * give bastion's own second factor is answered MfaRequired without
 * spending the code: without otp, the code is asked for on the terminal
 * and the exchange made again (docs/sign-in.md "OpenID Connect users and
 * MFA"). */
static int exchange(struct cli *c, const char *code, const char *verifier, const char *otp,
		    json_t **ret_answer)
{
	char *typed = NULL;
	json_t *body = NULL;
	int r = CLI_ECONN;

	for (int round = 0; round < 2; round++) {
		body = json_pack("{s:s, s:s}", "code", code, "verifier", verifier);
		if (body && otp && json_object_set_new(body, "otp", json_string(otp)) < 0) {
			json_decref(body);
			body = NULL;
		}
		if (!body) {
			fprintf(stderr, "bastion: the code is not valid UTF-8\n");
			r = CLI_EUSAGE;
			goto out;
		}
		r = cli_call(c, "POST", "/auth/oidc/cli-token", body, ret_answer, NULL);
		json_decref(body);
		body = NULL;
		if (r == CLI_OK || strcmp(cli_last_error(c), "MfaRequired") != 0)
			goto out;
		if (otp || !isatty(STDIN_FILENO)) {
			fprintf(stderr, "bastion: this account needs its second factor: give --otp "
					"CODE (a TOTP code or a recovery code)\n");
			goto out;
		}
		if (!(typed = sodium_malloc(CLI_SECRET_MAX))) {
			r = CLI_ECONN;
			goto out;
		}
		if ((r = cli_get_password("Code (TOTP or recovery code): ", false, false, typed,
					  CLI_SECRET_MAX)) != CLI_OK)
			goto out;
		otp = typed;
	}
out:
	if (typed)
		sodium_free(typed);
	return r;
}

int cli_login_sso(struct cli *c, const char *url, const char *ca_file, bool insecure,
		  bool no_browser, const char *otp, const char *cfg_path)
{
	char verifier[64], challenge[64], code[256], start[CLI_URL_MAX + 128], expiry[64];
	unsigned char raw[32], h[crypto_hash_sha256_BYTES];
	struct cli_config cfg = { 0 };
	json_t *answer = NULL;
	const json_t *v, *name;
	int lfd = -1, port = 0, r;
	bool replaced = false;

	if ((r = listen_loopback(&lfd, &port)) < 0) {
		fprintf(stderr, "bastion: cannot listen on 127.0.0.1 for the browser: %s\n",
			err_str(r));
		return CLI_ECONN;
	}
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(verifier, sizeof(verifier), raw, sizeof(raw),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	crypto_hash_sha256(h, (const unsigned char *)verifier, strlen(verifier));
	sodium_bin2base64(challenge, sizeof(challenge), h, sizeof(h),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	snprintf(start, sizeof(start), "%s/api/v1/auth/oidc/login?cli_port=%d&cli_challenge=%s",
		 url, port, challenge);
	if (no_browser || !open_browser(start))
		printf("Open this URL in a browser to sign in:\n  %s\n", start);
	else
		printf("Signing in in your browser; waiting for it (if nothing opened, visit:\n"
		       "  %s )\n",
		       start);
	fflush(stdout);
	if ((r = wait_callback(lfd, code, sizeof(code))) < 0) {
		fprintf(stderr, "bastion: no sign-in came back within %d seconds\n", SSO_WAIT_S);
		r = CLI_EAUTH;
		goto out;
	}
	if ((r = cli_set_target(c, url, ca_file, insecure)) != CLI_OK)
		goto out;
	r = exchange(c, code, verifier, otp, &answer);
	sodium_memzero(code, sizeof(code));
	if (r != CLI_OK)
		goto out;
	v = json_object_get(answer, "token");
	name = json_object_get(json_object_get(answer, "user"), "name");
	if (!json_is_string(v) || json_string_length(v) == 0 || !json_is_string(name)) {
		fprintf(stderr, "bastion: the token answer carries no token\n");
		r = CLI_ESERVER;
		goto out;
	}
	cfg.insecure = insecure;
	if (!(cfg.url = strdup(url)) || !(cfg.token = strdup(json_string_value(v))) ||
	    (ca_file && !(cfg.ca_file = strdup(ca_file)))) {
		fprintf(stderr, "bastion: out of memory\n");
		r = CLI_ECONN;
		goto out;
	}
	/* As a password login does: the token replaced is revoked first. */
	replaced = cli_revoke_stored_token(c, cfg_path);
	if ((r = cli_config_save(cfg_path, &cfg)) < 0) {
		fprintf(stderr, "bastion: cannot write %s: %s\n", cfg_path, err_str(r));
		r = CLI_EUSAGE;
		goto out;
	}
	expiry[0] = '\0';
	v = json_object_get(answer, "expires_at");
	if (json_is_integer(v))
		cli_time_str((long long)json_integer_value(v), expiry, sizeof(expiry));
	printf("Logged in to %s as %s (single sign-on); the API token is stored in %s%s%s%s\n", url,
	       json_string_value(name), cfg_path, expiry[0] ? " (it expires " : "", expiry,
	       expiry[0] ? ")" : "");
	if (replaced)
		printf("Revoked the API token this login replaces\n");
	r = CLI_OK;
out:
	sodium_memzero(verifier, sizeof(verifier));
	sodium_memzero(code, sizeof(code));
	json_decref(answer);
	cli_config_done(&cfg);
	if (lfd >= 0)
		close(lfd);
	return r;
}
