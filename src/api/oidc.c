/* REST handlers of OpenID Connect sign-in (SPEC §9, docs/sign-in.md):
 *   GET  /auth/providers         what the sign-in page offers (anonymous)
 *   GET  /auth/oidc/login        302 to the provider (?return_to, or the
 *                                CLI's ?cli_port&cli_challenge)
 *   GET  /auth/oidc/callback     the provider's redirect back: the user,
 *                                its mapped roles, a browser session
 *   POST /auth/oidc/cli-token    the CLI trades its one-time code for an
 *                                API token
 * The flow itself (provider calls, token checks) is identity/oidc.c. They
 * run on a worker: the provider's endpoints are called with blocking I/O.
 * The callback answers a failure with a plain page that names the check
 * that failed and nothing the provider sent; it is audited and counted by
 * the sign-in throttle of the source address. */
#include "api/api.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/oidc_map.h"
#include "api/validate.h"
#include "authz/authz.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/file.h"
#include "core/log.h"
#include "core/util.h"
#include "identity/ident.h"
#include "identity/mfa.h"
#include "identity/oidc.h"
#include "store/store.h"

#define CLI_CODE_TTL    120 /* seconds the CLI has to trade its code */
#define CLI_TOKEN_TTL   (30 * 24 * 3600)
#define RETURN_TO_MAX   512
#define NO_PASSWORD     "!oidc" /* never an Argon2id string: no password verifies */
#define SECRET_FILE_MAX 4096

struct api_oidc {
	struct oidc *oidc;
	char display_name[64];
	bool auto_create;
	struct oidc_map map;
	bool mapping;      /* groups_claim set: assignments are kept in step */
	bool trust_amr;    /* oidc.trust_amr */
	char mfa_acr[256]; /* oidc.mfa_acr */
};

/* ---- set-up ----------------------------------------------------------- */

int api_oidc_setup(struct api_ctx *ctx, const struct cfg *cfg, char *err, size_t errlen)
{
	struct api_oidc *a;
	struct buf secret;
	struct oidc_config oc = { 0 };
	int r;

	if (!cfg->oidc_issuer[0])
		return 0;
	if (!(a = calloc(1, sizeof(*a)))) {
		free(a);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	buf_init_secret(&secret, SECRET_FILE_MAX);
	util_strlcpy(a->display_name, cfg->oidc_display_name, sizeof(a->display_name));
	a->auto_create = cfg->oidc_auto_create != 0;
	a->mapping = cfg->oidc_groups_claim[0] != '\0';
	a->trust_amr = cfg->oidc_trust_amr != 0;
	util_strlcpy(a->mfa_acr, cfg->oidc_mfa_acr, sizeof(a->mfa_acr));
	if ((r = oidc_map_parse(&a->map, cfg->oidc_map, err, errlen)) < 0)
		goto out;
	if (cfg->oidc_client_secret_file[0]) {
		/* The secret is the file's first line; a private file only. */
		r = file_read(cfg->oidc_client_secret_file, FILE_PRIVATE, &secret);
		if (r < 0) {
			snprintf(err, errlen, "oidc.client_secret_file %s: %s%s",
				 cfg->oidc_client_secret_file, strerror(-r),
				 r == -EPERM ? " (it must not be readable by group or others)"
					     : "");
			goto out;
		}
		((char *)buf_str(&secret))[strcspn(buf_str(&secret), "\r\n")] = '\0';
		oc.client_secret = buf_str(&secret);
	}
	oc.issuer = cfg->oidc_issuer;
	oc.client_id = cfg->oidc_client_id;
	oc.redirect_url = cfg->oidc_redirect_url;
	oc.ca_file = cfg->oidc_ca_file;
	oc.username_claim = cfg->oidc_username_claim;
	oc.groups_claim = cfg->oidc_groups_claim;
	if ((r = oidc_new(&oc, &a->oidc)) < 0) {
		snprintf(err, errlen, "oidc: cannot set up: %s", strerror(-r));
		goto out;
	}
	ctx->oidc = a;
	a = NULL;
	r = 0;
out:
	buf_free(&secret);
	if (a) {
		oidc_map_free(&a->map);
		free(a);
	}
	return r;
}

void api_oidc_free(struct api_ctx *ctx)
{
	if (!ctx->oidc)
		return;
	oidc_free(ctx->oidc->oidc);
	oidc_map_free(&ctx->oidc->map);
	free(ctx->oidc);
	ctx->oidc = NULL;
}

/* ---- helpers ---------------------------------------------------------- */

/* The value of name in the request's query, percent-decoded into out;
 * false when absent, empty, too long or badly encoded. */
static bool query_get(const struct api_call *c, const char *name, char *out, size_t size)
{
	const char *p = c->req->query;
	size_t n = strlen(name);

	while (p && *p) {
		size_t len = strcspn(p, "&");

		if (len > n && strncmp(p, name, n) == 0 && p[n] == '=') {
			if (len - n - 1 == 0 || len - n - 1 >= size)
				return false;
			memcpy(out, p + n + 1, len - n - 1);
			out[len - n - 1] = '\0';
			return util_pct_decode(out) == 0;
		}
		p += len;
		if (*p == '&')
			p++;
	}
	return false;
}

/* A return_to the portal may be sent back to: a path of this origin
 * ("/..."), not "//host" or "/\host" (which browsers read as another
 * host), printable ASCII only. */
static bool return_to_ok(const char *v)
{
	if (v[0] != '/' || v[1] == '/' || v[1] == '\\')
		return false;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f || *p == '\\')
			return false;
	return true;
}

/* The plain page a failed callback answers with: reason is one of our own
 * static texts, never anything the provider or the browser sent. */
static void fail_page(struct api_call *c, int status, const char *reason)
{
	char *page = NULL;

	if (asprintf(&page,
		     "<!doctype html><html><head><meta charset=\"utf-8\"><title>Sign-in "
		     "failed</title></head><body><h1>Sign-in failed</h1><p>%s.</p><p><a "
		     "href=\"/\">Back to the sign-in page</a></p></body></html>\n",
		     reason) < 0) {
		api_error(c->resp, status, "Unauthenticated", "%s", reason);
		return;
	}
	json_decref(c->resp->body);
	c->resp->body = NULL;
	c->resp->status = status;
	c->resp->raw = page;
	c->resp->raw_len = strlen(page);
	c->resp->raw_type = "text/html; charset=utf-8";
	api_header(c->resp, "Content-Security-Policy", "default-src 'none'");
}

/* A failed sign-in through the provider: audited with its reason,
 * counted against the source address, answered with the page. */
static void callback_failed(struct api_call *c, const char *who, int status, const char *reason)
{
	api_audit_json(c, who ? who : "user:?", "auth.login", who ? who : "user:?", "failure",
		       json_pack("{s:s, s:s, s:s}", "source", c->req->remote_addr, "method", "oidc",
				 "reason", reason));
	if (ident_throttle_failure(c->ctx->store, NULL, c->req->remote_addr, store_now()) < 0)
		log_warn("oidc: could not count a failed sign-in from %s", c->req->remote_addr);
	fail_page(c, status, reason);
}

/* Whether the address may try now; answers 429 itself when not. */
static bool address_allowed(struct api_call *c, bool page)
{
	struct ident_throttle th;
	int r = api_throttle_hold(c, NULL, &th);

	if (r <= 0)
		return r == 0;
	if (page)
		fail_page(c, 429, "too many failed sign-ins from this address; try again later");
	else
		api_error(c->resp, 429, "TooManyRequests",
			  "too many failed sign-ins from %s; try again in %lld seconds",
			  c->req->remote_addr, (long long)th.retry_after);
	return false;
}

static bool oidc_on(struct api_call *c)
{
	if (c->ctx->oidc)
		return true;
	api_error(c->resp, 404, "NotFound", "sign-in with OpenID Connect is not configured");
	return false;
}

/* ---- GET /auth/providers ---------------------------------------------- */

void api_auth_providers(struct api_call *c)
{
	json_t *o = c->ctx->oidc
			    ? json_pack("{s:s, s:s}", "display_name", c->ctx->oidc->display_name,
					"login_url", "/api/v1/auth/oidc/login")
			    : json_null();

	api_json(c->resp, 200, json_pack("{s:o}", "oidc", o));
}

/* ---- GET /auth/oidc/login --------------------------------------------- */

void api_oidc_login(struct api_call *c)
{
	char return_to[RETURN_TO_MAX], port_s[8], challenge[64];
	const char *reason = NULL;
	json_t *extra = json_object();
	char *url = NULL, *end;
	long port;
	int r;

	if (!oidc_on(c) || !extra)
		goto out;
	if (query_get(c, "return_to", return_to, sizeof(return_to))) {
		if (!return_to_ok(return_to)) {
			api_error(c->resp, 400, "InvalidRequest",
				  "return_to must be a path on this bastion (\"/...\")");
			goto out;
		}
		json_object_set_new(extra, "return_to", json_string(return_to));
	}
	if (query_get(c, "cli_port", port_s, sizeof(port_s))) {
		port = strtol(port_s, &end, 10);
		/* The challenge is S256 of the CLI's verifier: 43 characters. */
		if (*end || port < 1024 || port > 65535 ||
		    !query_get(c, "cli_challenge", challenge, sizeof(challenge)) ||
		    strlen(challenge) != 43 ||
		    strspn(challenge, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				      "0123456789-_") != 43) {
			api_error(c->resp, 400, "InvalidRequest",
				  "cli_port must be a port 1024-65535 and cli_challenge the "
				  "43-character S256 challenge of the CLI's verifier");
			goto out;
		}
		json_object_set_new(extra, "cli_port", json_integer(port));
		json_object_set_new(extra, "cli_challenge", json_string(challenge));
	}
	r = oidc_begin(c->ctx->oidc->oidc, c->ctx->store, extra, &url, &reason);
	if (r == -EIO || r == -EPROTO) {
		log_warn("oidc: cannot start a sign-in: %s", reason);
		fail_page(c, 502, reason);
		goto out;
	}
	if (r == -ENOSPC) {
		api_header(c->resp, "Retry-After", "60");
		api_error(c->resp, 503, "ServiceUnavailable",
			  "too many sign-ins are under way; try again in a minute");
		goto out;
	}
	if (r < 0) {
		api_store_error(c->resp, r, "sign-in");
		goto out;
	}
	api_header(c->resp, "Location", url);
	c->resp->status = 302;
out:
	free(url);
	json_decref(extra);
}

/* ---- GET /auth/oidc/callback ------------------------------------------ */

/* The local user for a verified identity: an existing user bound to the
 * same (issuer, subject), or (auto_create) a new one bound to it. A local
 * user of that name that is not bound to this identity is refused: a
 * provider must not take over an account it did not make. */
static int resolve_user(struct api_call *c, const struct oidc_result *res, struct store_user *u,
			const char **ret_reason)
{
	char iss[STORE_OIDC_ISS_MAX + 1], sub[STORE_OIDC_SUB_MAX + 1], target[80];
	int64_t id = 0;
	int r;

	r = store_user_get(c->ctx->store, res->username, u);
	if (r == 0) {
		r = store_oidc_link_get(c->ctx->store, u->id, iss, sub);
		if (r == -ENOENT ||
		    (r == 0 && (strcmp(iss, res->issuer) != 0 || strcmp(sub, res->subject) != 0))) {
			*ret_reason = r == -ENOENT ? "a local user of that name exists and was not "
						     "created by single sign-on"
						   : "the user of that name is bound to another "
						     "identity of the provider";
			return -EACCES;
		}
		if (r == 0 && u->disabled) {
			*ret_reason = "the account is disabled";
			return -EACCES;
		}
		return r;
	}
	if (r != -ENOENT)
		return r;
	if (!c->ctx->oidc->auto_create) {
		*ret_reason = "there is no bastion user of that name and auto_create is off";
		return -EACCES;
	}
	/* User and binding in one transaction: a user of that name made
	 * meanwhile (by an Owner, another sign-in) is never overwritten. */
	r = store_oidc_user_create(c->ctx->store, res->username, NO_PASSWORD, res->issuer,
				   res->subject, &id);
	if (r == -EEXIST) {
		*ret_reason = "the user was created at the same time by someone else";
		return -EACCES;
	}
	if (r == -EALREADY) {
		*ret_reason = "this identity of the provider is bound to another user";
		return -EACCES;
	}
	if (r < 0)
		return r;
	snprintf(target, sizeof(target), "user:%s", res->username);
	api_audit_json(c, target, "user.create", target, "success",
		       json_pack("{s:s, s:s, s:s}", "method", "oidc", "issuer", res->issuer,
				 "source", c->req->remote_addr));
	return store_user_get(c->ctx->store, res->username, u);
}

/* A new browser session for u, as a password sign-in makes it. */
static int open_session(struct api_call *c, const struct store_user *u, struct ident_session *ret)
{
	uint8_t h[32];
	int r;

	store_ident_purge_expired(c->ctx->store, store_now());
	util_random_token(ret->token, sizeof(ret->token), IDENT_TOKEN_BYTES);
	util_random_token(ret->csrf, sizeof(ret->csrf), IDENT_TOKEN_BYTES);
	ret->user_id = u->id;
	util_strlcpy(ret->name, u->name, sizeof(ret->name));
	ret->expires_at = store_now() + IDENT_SESSION_TTL;
	util_sha256_str(ret->token, h);
	if ((r = store_login_add(c->ctx->store, h, u->id, ret->csrf, ret->expires_at)) < 0)
		return r;
	store_login_trim(c->ctx->store, u->id, IDENT_MAX_SESSIONS);
	return 0;
}

/* The CLI's half: a one-time code bound to its challenge, and the browser
 * sent to the CLI's listener on the loopback with it. */
static int hand_to_cli(struct api_call *c, const struct store_user *u, const json_t *extra,
		       bool need_otp)
{
	char code[IDENT_TOKEN_SIZE], key[65], loc[256];
	uint8_t h[32];
	int64_t exp = store_now() + CLI_CODE_TTL;
	/* mfa: the exchange must carry bastion's code (the user's own
	 * second factor); exp: the code's end, kept when an exchange without
	 * the code puts it back. */
	json_t *d = json_pack("{s:I, s:O, s:b, s:I}", "user_id", (json_int_t)u->id, "challenge",
			      json_object_get(extra, "cli_challenge"), "mfa", need_otp, "exp",
			      (json_int_t)exp);
	char *text = d ? json_dumps(d, JSON_COMPACT) : NULL;
	int r = -ENOMEM;

	json_decref(d);
	if (!text)
		return r;
	util_random_token(code, sizeof(code), IDENT_TOKEN_BYTES);
	util_sha256_str(code, h);
	util_hex(h, sizeof(h), key);
	r = store_oidc_pending_put(c->ctx->store, key, "cli", text, exp, store_now(),
				   OIDC_PENDING_MAX);
	free(text);
	if (r < 0)
		goto out;
	snprintf(loc, sizeof(loc), "http://127.0.0.1:%lld/callback?code=%s",
		 (long long)json_integer_value(json_object_get(extra, "cli_port")), code);
	api_header(c->resp, "Location", loc);
	c->resp->status = 302;
	r = 0;
out:
	sodium_memzero(code, sizeof(code));
	sodium_memzero(loc, sizeof(loc));
	return r;
}

/* What the audit line's "mfa" says of each decision. */
static const char *const mfa_names[] = {
	[IDENT_OIDC_MFA_NONE] = "none",
	[IDENT_OIDC_MFA_PROVIDER] = "provider",
	[IDENT_OIDC_MFA_VERIFY] = "required",
	[IDENT_OIDC_MFA_ENROL] = "enrol",
};

#define AMR_MAX 16 /* amr strings looked at; RFC 8176 defines 18 values */

/* The second-factor decision of a verified sign-in (identity/mfa.c): the
 * provider's amr/acr, else the user's own factors, else require_mfa. */
static int mfa_decide(struct api_call *c, const struct store_user *u, const struct oidc_result *res,
		      enum ident_oidc_mfa *ret)
{
	const char *amr[AMR_MAX];
	size_t n = 0, i;
	json_t *v;

	json_array_foreach (res->amr, i, v) {
		if (n == AMR_MAX)
			break;
		if (json_is_string(v))
			amr[n++] = json_string_value(v);
	}
	return ident_mfa_oidc_decide(c->ctx->store, c->ctx->require_mfa, u->id,
				     c->ctx->oidc->trust_amr, n ? amr : NULL, n, res->acr,
				     c->ctx->oidc->mfa_acr, ret);
}

void api_oidc_callback(struct api_call *c)
{
	enum ident_oidc_mfa mfa = IDENT_OIDC_MFA_NONE;
	char state[300], code[2100], principal[80];
	struct oidc_result res = { 0 };
	struct ident_session sess = { 0 };
	struct store_user u = { 0 };
	const char *reason = "the sign-in could not be completed", *rt;
	int r;

	if (!oidc_on(c) || !address_allowed(c, true))
		return;
	if (!query_get(c, "state", state, sizeof(state)))
		state[0] = '\0';
	if (query_get(c, "error", code, sizeof(code)) ||
	    !query_get(c, "code", code, sizeof(code))) {
		/* The state is spent either way: a refused sign-in is over. */
		if (state[0])
			oidc_finish(c->ctx->oidc->oidc, c->ctx->store, state, NULL, &res, &reason);
		callback_failed(c, NULL, 403, "the provider did not sign the user in");
		goto out;
	}
	r = oidc_finish(c->ctx->oidc->oidc, c->ctx->store, state, code, &res, &reason);
	sodium_memzero(code, sizeof(code));
	if (r == -EIO) {
		callback_failed(c, NULL, 502, reason);
		goto out;
	}
	if (r == -ENOENT || r == -EPROTO) {
		callback_failed(c, NULL, 403, reason);
		goto out;
	}
	if (r < 0) {
		api_store_error(c->resp, r, "sign-in");
		goto out;
	}
	if (!val_name(res.username)) {
		callback_failed(c, NULL, 403,
				"the provider's user name is not a valid bastion user name "
				"([A-Za-z0-9][A-Za-z0-9._-]{0,63})");
		goto out;
	}
	snprintf(principal, sizeof(principal), "user:%s", res.username);
	r = resolve_user(c, &res, &u, &reason);
	if (r == -EACCES) {
		callback_failed(c, principal, 403, reason);
		goto out;
	}
	if (r == 0 && c->ctx->oidc->mapping)
		r = oidc_map_sync(c, &c->ctx->oidc->map, principal, res.groups);
	if (r < 0) {
		api_store_error(c->resp, r, "sign-in");
		goto out;
	}
	if ((r = mfa_decide(c, &u, &res, &mfa)) < 0) {
		api_store_error(c->resp, r, "second factors");
		goto out;
	}
	/* A sign-in that still needs bastion's code clears nothing yet: the
	 * provider's sign-in alone must not reset the count of wrong codes
	 * (POST /auth/mfa/verify clears it when the code is right). */
	if (mfa != IDENT_OIDC_MFA_VERIFY &&
	    ident_throttle_success(c->ctx->store, u.name, c->req->remote_addr, store_now()) < 0)
		log_warn("oidc: could not reset the sign-in throttle of %s", u.name);
	api_audit_json(c, principal, "auth.login", principal,
		       mfa == IDENT_OIDC_MFA_VERIFY ? "mfa-required" : "success",
		       json_pack("{s:s, s:s, s:s}", "source", c->req->remote_addr, "method", "oidc",
				 "mfa", mfa_names[mfa]));
	if (json_object_get(res.extra, "cli_port")) {
		if ((r = hand_to_cli(c, &u, res.extra, mfa == IDENT_OIDC_MFA_VERIFY)) < 0)
			api_store_error(c->resp, r, "sign-in");
		goto out;
	}
	if ((r = open_session(c, &u, &sess)) < 0) {
		api_store_error(c->resp, r, "sign-in");
		goto out;
	}
	/* The session's MFA state goes with it into the store, so that any
	 * instance reads it at the next request. */
	if (mfa == IDENT_OIDC_MFA_PROVIDER)
		r = ident_mfa_session_mark(c->ctx->store, &sess, "oidc");
	else if (mfa == IDENT_OIDC_MFA_VERIFY)
		r = ident_mfa_session_pending(c->ctx->store, &sess);
	if (r < 0) {
		uint8_t h[32];

		util_sha256_str(sess.token, h);
		store_login_delete(c->ctx->store, h);
		api_store_error(c->resp, r, "sign-in");
		goto out;
	}
	api_session_cookie(c->resp, sess.token, IDENT_SESSION_TTL);
	rt = json_string_value(json_object_get(res.extra, "return_to"));
	api_header(c->resp, "Location", rt ? rt : "/");
	c->resp->status = 302;
out:
	sodium_memzero(&sess, sizeof(sess));
	sodium_memzero(&u, sizeof(u));
	oidc_result_done(&res);
}

/* ---- POST /auth/oidc/cli-token {code, verifier} ----------------------- */

void api_oidc_cli_token(struct api_call *c)
{
	const char *code = json_string_value(json_object_get(c->body, "code"));
	const char *verifier = json_string_value(json_object_get(c->body, "verifier"));
	char key[65], challenge[44], token[IDENT_TOKEN_SIZE], principal[80];
	const char *want;
	struct store_user u = { 0 };
	json_t *d = NULL;
	char *text = NULL;
	uint8_t h[32];
	int64_t expires_at;
	int r;

	if (!oidc_on(c) || !address_allowed(c, false))
		return;
	if (!code || !verifier || strlen(code) > 128 || strlen(verifier) < 43 ||
	    strlen(verifier) > 128) {
		api_error(c->resp, 400, "InvalidRequest",
			  "code and verifier (43 to 128 characters) are required strings");
		return;
	}
	util_sha256_str(code, h);
	util_hex(h, sizeof(h), key);
	r = store_oidc_pending_take(c->ctx->store, key, "cli", store_now(), &text);
	if (r < 0 && r != -ENOENT) {
		api_store_error(c->resp, r, "sign-in");
		goto out;
	}
	d = text ? json_loads(text, 0, NULL) : NULL;
	want = json_string_value(json_object_get(d, "challenge"));
	oidc_pkce_s256(verifier, challenge);
	/* The code is spent whatever follows; a wrong verifier is a failed
	 * sign-in like a wrong password. */
	if (!want || !util_streq_ct(want, challenge) ||
	    store_user_get_by_id(c->ctx->store, json_integer_value(json_object_get(d, "user_id")),
				 &u) < 0 ||
	    u.disabled) {
		ident_throttle_failure(c->ctx->store, NULL, c->req->remote_addr, store_now());
		api_audit_json(c, "user:?", "auth.login", "user:?", "failure",
			       json_pack("{s:s, s:s, s:s}", "source", c->req->remote_addr, "method",
					 "oidc-cli", "reason",
					 "unknown, used or expired code, or wrong verifier"));
		api_error(c->resp, 401, "Unauthenticated",
			  "the code is unknown, used or expired, or the verifier does not match");
		goto out;
	}
	if (json_is_true(json_object_get(d, "mfa"))) {
		/* The callback found the user has bastion's own factor and the
		 * provider's did not count: the exchange carries the code. */
		r = api_mfa_cli_step(c, u.id, u.name);
		if (r == -ENODATA) {
			/* Not spent by this answer: only the holder of the
			 * verifier gets here, and it comes back with the code
			 * before the code's original end. */
			r = store_oidc_pending_put(c->ctx->store, key, "cli", text,
						   json_integer_value(json_object_get(d, "exp")),
						   store_now(), OIDC_PENDING_MAX);
			if (r < 0) {
				api_store_error(c->resp, r, "sign-in");
				goto out;
			}
			api_error(c->resp, 401, "MfaRequired",
				  "this account needs its second factor: send otp (a TOTP or "
				  "recovery code) with the code and the verifier");
			goto out;
		}
		if (r != 0)
			goto out; /* a wrong code spends the one-time code */
		if (ident_throttle_success(c->ctx->store, u.name, c->req->remote_addr,
					   store_now()) < 0)
			log_warn("oidc: could not reset the sign-in throttle of %s", u.name);
	}
	r = ident_token_create(c->ctx->store, u.id, "bastion-cli-sso", CLI_TOKEN_TTL, token,
			       &expires_at);
	if (r < 0) {
		api_store_error(c->resp, r, "API token");
		goto out;
	}
	snprintf(principal, sizeof(principal), "user:%s", u.name);
	api_audit_json(c, principal, "token.create", principal, "success",
		       json_pack("{s:s, s:I, s:s}", "name", "bastion-cli-sso", "expires_at",
				 (json_int_t)expires_at, "method", "oidc"));
	api_header(c->resp, "Cache-Control", "no-store");
	api_json(c->resp, 201,
		 json_pack("{s:s, s:I, s:{s:s}}", "token", token, "expires_at",
			   (json_int_t)expires_at, "user", "name", u.name));
out:
	sodium_memzero(token, sizeof(token));
	sodium_memzero(&u, sizeof(u));
	json_decref(d);
	util_free_secret(text);
}
