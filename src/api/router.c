/* The API router: path → handler, authentication, CSRF and Origin checks,
 * JSON body parsing, and the shared response helpers. Runs on a worker. */
#include "api/api.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/util.h"
#include "identity/ident.h"
#include "store/store.h"
#include "terminal/term.h"

enum {
	R_AUTH = 1, /* caller must be signed in */
	/* Open to a session restricted by auth.require_mfa (api/mfa.c): the
	 * caller, sign-out and enrolling a second factor. */
	R_ENROL = 2,
	/* Open to a session the OIDC callback left waiting for bastion's own
	 * second factor (api/mfa.c, issue 18): the caller, sign-out, what it
	 * enrolled, and the step that completes it. */
	R_VERIFY = 4,
};

struct route {
	const char *method;
	const char *pattern; /* segments after /api/v1; "*" matches one segment */
	void (*fn)(struct api_call *c);
	int flags;
};

static void api_healthz(struct api_call *c)
{
	api_json(c->resp, 200, json_pack("{s:s}", "status", "ok"));
}

/* The server's version, for any signed-in caller (not for anonymous
 * scanners: a version tells them which advisories to try). */
static void api_version(struct api_call *c)
{
	api_json(c->resp, 200, json_pack("{s:s}", "version", BASTION_VERSION));
}

static const struct route routes[] = {
	{ "GET", "healthz", api_healthz, 0 },
	{ "GET", "version", api_version, R_AUTH },
	{ "POST", "auth/login", api_auth_login, 0 },
	{ "POST", "auth/logout", api_auth_logout, R_AUTH | R_ENROL | R_VERIFY },
	{ "GET", "auth/session", api_auth_session, R_AUTH | R_ENROL | R_VERIFY },
	/* second factors (api/mfa.c) */
	{ "GET", "auth/mfa", api_mfa_get, R_AUTH | R_ENROL | R_VERIFY },
	{ "POST", "auth/mfa/verify", api_mfa_verify, R_AUTH | R_VERIFY },
	{ "POST", "auth/mfa/totp", api_mfa_totp_enrol, R_AUTH | R_ENROL },
	{ "POST", "auth/mfa/totp/confirm", api_mfa_totp_confirm, R_AUTH | R_ENROL },
	{ "DELETE", "auth/mfa/totp", api_mfa_totp_delete, R_AUTH | R_ENROL },
	{ "POST", "auth/mfa/webauthn/register/options", api_wa_register_options, R_AUTH | R_ENROL },
	{ "POST", "auth/mfa/webauthn/register", api_wa_register, R_AUTH | R_ENROL },
	{ "POST", "auth/webauthn/login/options", api_wa_login_options, 0 },
	{ "POST", "auth/webauthn/login", api_wa_login, 0 },
	{ "DELETE", "users/*/mfa", api_users_mfa_delete, R_AUTH },
	/* API tokens (issue 19, api/tokens.c) */
	{ "POST", "tokens", api_tokens_create, R_AUTH },
	{ "GET", "tokens", api_tokens_list, R_AUTH },
	{ "DELETE", "tokens/*", api_tokens_delete, R_AUTH },
	{ "GET", "users", api_users_list, R_AUTH },
	{ "PUT", "users/*", api_users_put, R_AUTH },
	{ "GET", "users/*", api_users_get, R_AUTH },
	{ "DELETE", "users/*", api_users_delete, R_AUTH },
	{ "GET", "groups", api_groups_list, R_AUTH },
	{ "PUT", "groups/*", api_groups_put, R_AUTH },
	{ "GET", "groups/*", api_groups_get, R_AUTH },
	{ "DELETE", "groups/*", api_groups_delete, R_AUTH },
	{ "GET", "groups/*/deleted-vaults", api_deleted_vaults_list, R_AUTH },
	{ "GET", "groups/*/deleted-vaults/*", api_deleted_vaults_get, R_AUTH },
	{ "DELETE", "groups/*/deleted-vaults/*", api_deleted_vaults_purge, R_AUTH },
	{ "POST", "groups/*/deleted-vaults/*/recover", api_deleted_vaults_recover, R_AUTH },
	{ "GET", "groups/*/*", api_resources_list, R_AUTH },
	{ "PUT", "groups/*/*/*", api_resources_put, R_AUTH },
	{ "GET", "groups/*/*/*", api_resources_get, R_AUTH },
	{ "DELETE", "groups/*/*/*", api_resources_delete, R_AUTH },
	{ "POST", "groups/*/vms/*/connect", api_connect, R_AUTH },
	/* The native client: a TCP stream to a VM's port (stream.c). Before
	 * groups/x/y/z's GET would not match anyway: it has 5 segments. */
	{ "GET", "groups/*/vms/*/stream", api_stream, R_AUTH },
	{ "GET", "groups/*/vms/*/host-keys", api_hostkeys_get, R_AUTH },
	{ "DELETE", "groups/*/vms/*/host-keys", api_hostkeys_delete, R_AUTH },
	{ "GET", "sessions/*/terminal", api_terminal, R_AUTH },
	{ "DELETE", "sessions/*", api_sessions_delete, R_AUTH },
	{ "POST", "sessions/*/answers", api_session_answers, R_AUTH },
	{ "GET", "groups/*/vaults/*/secrets", api_secrets_list, R_AUTH },
	{ "PUT", "groups/*/vaults/*/secrets/*", api_secrets_put, R_AUTH },
	{ "GET", "groups/*/vaults/*/secrets/*", api_secrets_get, R_AUTH },
	{ "DELETE", "groups/*/vaults/*/secrets/*", api_secrets_delete, R_AUTH },
	{ "POST", "groups/*/vaults/*/secrets/*/recover", api_secrets_recover, R_AUTH },
	{ "GET", "groups/*/vaults/*/secrets/*/versions", api_secrets_versions, R_AUTH },
	{ "GET", "groups/*/vaults/*/access-policies", api_vault_policies_list, R_AUTH },
	{ "PUT", "groups/*/vaults/*/access-policies/*", api_vault_policies_put, R_AUTH },
	{ "GET", "groups/*/vaults/*/access-policies/*", api_vault_policies_get, R_AUTH },
	{ "DELETE", "groups/*/vaults/*/access-policies/*", api_vault_policies_delete, R_AUTH },
	{ "POST", "vault/rotate-master-key", api_vault_rotate, R_AUTH },
	{ "GET", "sessions", api_sessions_list, R_AUTH },
	{ "GET", "audit", api_audit_list, R_AUTH },
	/* session recordings (SPEC §8, recordings.c) */
	{ "GET", "recordings", api_recordings_list, R_AUTH },
	{ "GET", "recordings/*", api_recordings_get, R_AUTH },
	{ "GET", "recordings/*/cast", api_recordings_cast, R_AUTH },
	{ "GET", "recordings/*/search", api_recordings_search, R_AUTH },
	{ "GET", "sessions/*/watch", api_sessions_watch, R_AUTH },
	{ "GET", "metrics", api_metrics, R_AUTH },
	{ "POST", "auth/password", api_auth_password, R_AUTH },
	{ "GET", "role-assignments", api_roles_list, R_AUTH },
	{ "PUT", "role-assignments/*", api_roles_put, R_AUTH },
	{ "GET", "role-assignments/*", api_roles_get, R_AUTH },
	{ "DELETE", "role-assignments/*", api_roles_delete, R_AUTH },
	/* Sign-in with OpenID Connect (oidc.c): anonymous by nature. */
	{ "GET", "auth/providers", api_auth_providers, 0 },
	{ "GET", "auth/oidc/login", api_oidc_login, 0 },
	{ "GET", "auth/oidc/callback", api_oidc_callback, 0 },
	{ "POST", "auth/oidc/cli-token", api_oidc_cli_token, 0 },
	/* instances sharing the store (issue 15, api/instances.c) */
	{ "GET", "instances", api_instances_list, R_AUTH },
};

bool api_create_only(const struct api_call *c)
{
	const char *v = c->req->if_none_match;

	if (!v)
		return false;
	v += strspn(v, " \t");
	return v[0] == '*' && v[1 + strspn(v + 1, " \t")] == '\0';
}

void api_error(struct api_resp *resp, int status, const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	api_json(resp, status, json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg));
}

void api_json(struct api_resp *resp, int status, json_t *body)
{
	json_decref(resp->body);
	resp->status = status;
	resp->body = body;
}

void api_json_page(struct api_resp *resp, json_t *arr, bool more, long long next)
{
	json_t *body = json_pack("{s:o}", "value", arr);

	if (body && more) {
		char buf[32];

		snprintf(buf, sizeof(buf), "%lld", next);
		json_object_set_new(body, "next", json_string(buf));
	}
	api_json(resp, 200, body);
}

void api_header(struct api_resp *resp, const char *name, const char *value)
{
	char *line;

	if (resp->n_headers >= API_MAX_HEADERS || strpbrk(value, "\r\n"))
		return;
	if (asprintf(&line, "%s: %s", name, value) < 0)
		return;
	resp->headers[resp->n_headers++] = line;
}

/* What is wrong with a body that is not JSON, in words of our own: the
 * parser's text quotes the body ("invalid token near '...'"), and a body
 * may hold a secret. */
static const char *json_problem(const json_error_t *e)
{
	switch (json_error_code(e)) {
	case json_error_invalid_utf8:
		return "not valid UTF-8";
	case json_error_premature_end_of_input:
		return "the text ends too early";
	case json_error_end_of_input_expected:
		return "text after the end of the value";
	case json_error_null_character:
	case json_error_null_byte_in_key:
		return "a NUL character";
	case json_error_duplicate_key:
		return "a key appears twice in an object";
	case json_error_numeric_overflow:
		return "a number out of range";
	case json_error_stack_overflow:
		return "nested too deeply";
	case json_error_out_of_memory:
		return "out of memory";
	default:
		return "invalid syntax";
	}
}

void api_store_error(struct api_resp *resp, int r, const char *what)
{
	switch (r) {
	case -ENOENT:
		api_error(resp, 404, "ResourceNotFound", "%s was not found", what);
		break;
	case -EBUSY:
		api_error(resp, 409, "ResourceInUse", "%s is still referenced", what);
		break;
	case -EEXIST:
		api_error(resp, 409, "Conflict", "%s conflicts with an existing resource", what);
		break;
	default:
		log_error("api: store failure on %s: %s", what, err_str(r));
		api_error(resp, 503, "ServiceUnavailable", "the store is unavailable; try again");
		break;
	}
}

void api_resp_done(struct api_resp *resp)
{
	json_decref(resp->body);
	resp->body = NULL;
	free(resp->raw);
	resp->raw = NULL;
	resp->raw_len = 0;
	for (int i = 0; i < resp->n_headers; i++)
		free(resp->headers[i]);
	resp->n_headers = 0;
}

/* Splits "a/b/c" (already without the /api/v1/ prefix) into decoded
 * segments in place. Empty segments (a trailing or doubled slash) count as
 * a mismatch later, since no route has them. */
static int split_path(char *p, char **seg, int *ret_n)
{
	int n = 0;

	for (;;) {
		char *slash = strchr(p, '/');

		if (n == API_MAX_SEGS)
			return -E2BIG;
		if (slash)
			*slash = '\0';
		if (util_pct_decode(p) < 0)
			return -EINVAL;
		seg[n++] = p;
		if (!slash)
			break;
		p = slash + 1;
	}
	*ret_n = n;
	return 0;
}

static bool route_matches(const struct route *rt, char **seg, int nseg)
{
	const char *p = rt->pattern;
	int i = 0;

	for (; *p; i++) {
		size_t n = strcspn(p, "/");

		if (i >= nseg || seg[i][0] == '\0')
			return false;
		if (!(n == 1 && p[0] == '*') && (strlen(seg[i]) != n || strncmp(p, seg[i], n) != 0))
			return false;
		p += n;
		if (*p == '/')
			p++;
	}
	return i == nseg;
}

static void handle(struct api_ctx *ctx, const struct srv_request *req, struct api_resp *resp)
{
	static const char prefix[] = "/api/v1/";
	const struct route *rt = NULL;
	struct principal who;
	struct ident_creds creds = api_creds(req);
	struct api_call c = { .ctx = ctx, .req = req, .resp = resp };
	char path[2048], allow[128] = "";
	bool path_known = false;
	json_error_t jerr;

	if (strncmp(req->path, prefix, sizeof(prefix) - 1) != 0 ||
	    util_strlcpy(path, req->path + sizeof(prefix) - 1, sizeof(path)) < 0 ||
	    split_path(path, c.seg, &c.nseg) < 0) {
		api_error(resp, 404, "NotFound", "no such API path");
		return;
	}
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (!route_matches(&routes[i], c.seg, c.nseg))
			continue;
		path_known = true;
		if (strcmp(routes[i].method, req->method) == 0) {
			rt = &routes[i];
			break;
		}
		size_t used = strlen(allow);

		snprintf(allow + used, sizeof(allow) - used, "%s%s", used ? ", " : "",
			 routes[i].method);
	}
	if (!rt) {
		if (path_known) {
			api_header(resp, "Allow", allow);
			api_error(resp, 405, "MethodNotAllowed", "%s is not allowed here; use %s",
				  req->method, allow);
		} else {
			api_error(resp, 404, "NotFound", "no such API path");
		}
		return;
	}
	if (!ident_origin_ok(&creds)) {
		api_error(resp, 403, "OriginMismatch", "the request's Origin is not this bastion");
		return;
	}
	if (rt->flags & R_AUTH) {
		int r;

		c.end_gen = term_end_generation();
		r = ident_authenticate(ctx->store, &creds, &who);

		if (r == -ENOENT) {
			api_error(resp, 401, "Unauthenticated",
				  "sign in or present a valid API token");
			return;
		}
		if (r < 0) {
			api_store_error(resp, r, "the caller's session");
			return;
		}
		if (!ident_csrf_passes(&who, &creds)) {
			api_error(
				resp, 403, "CsrfTokenInvalid",
				"the X-CSRF-Token header is missing or does not match the session");
			return;
		}
		snprintf(resp->principal, sizeof(resp->principal), "user:%s%s%s", who.name,
			 who.token_id[0] ? ",token:" : "", who.token_id);
		/* A narrow token (scope "metrics") makes no other call. */
		if (!ident_scope_permits(&who, rt->fn == api_metrics)) {
			api_error(resp, 403, "TokenScope",
				  "this API token's scope (%s) does not allow this call",
				  who.token_scope);
			return;
		}
		c.who = &who;
		if (api_mfa_restricted(ctx, &who, &creds, resp, rt->flags & R_ENROL,
				       rt->flags & R_VERIFY))
			return;
	}
	if (strcmp(req->method, "PUT") == 0 || strcmp(req->method, "POST") == 0) {
		if (req->body_len == 0) {
			c.body = json_object();
		} else {
			c.body =
				json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
			if (!c.body) {
				api_error(resp, 400, "InvalidRequest",
					  "body: invalid JSON at line %d, column %d: %s", jerr.line,
					  jerr.column, json_problem(&jerr));
				return;
			}
			if (!json_is_object(c.body)) {
				json_decref(c.body);
				api_error(resp, 400, "InvalidRequest",
					  "body: must be a JSON object");
				return;
			}
		}
	}
	rt->fn(&c);
	json_decref(c.body);
	if (resp->status == 0)
		api_error(resp, 500, "InternalError", "the request could not be handled");
}

void api_handle(struct api_ctx *ctx, const struct srv_request *req, struct api_resp *resp)
{
	/* The caller's role assignments are read once per request, however
	 * many checks it makes (store/store_request.c). */
	store_request_begin();
	handle(ctx, req, resp);
	store_request_end();
}
