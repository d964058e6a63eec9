/* REST handlers: sign-in and sign-out, the current session, API tokens and
 * user accounts. They run on a worker thread (Argon2id is slow on purpose).
 * No response, log line or audit record carries a password, a session
 * cookie's value or an API token, except the one response that hands the
 * new secret to its owner. */
#include "api/api.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/validate.h"
#include "authz/authz.h"
#include "core/err.h"
#include "core/log.h"
#include "core/util.h"
#include "identity/ident.h"
#include "identity/mfa.h"
#include "store/store.h"
#include "terminal/term.h"

/* The audit principal "user:<name>". */
static void audit_principal(const char *name, char out[80])
{
	snprintf(out, 80, "user:%s", name);
}

/* Audit detail {"source": remote address} as compact JSON text. */
static char *detail_source(const struct api_call *c)
{
	json_t *o = json_pack("{s:s}", "source", c->req->remote_addr);
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return text;
}

/* Fetches body[field] as a string. On failure answers 400 and returns
 * false. A missing optional field gives *ret NULL. Strings with an embedded
 * NUL are refused, so that what is checked is what is used. */
static bool body_string(struct api_call *c, const char *field, bool required, const char **ret)
{
	json_t *v = c->body ? json_object_get(c->body, field) : NULL;

	*ret = NULL;
	if (!v || (json_is_null(v) && !required)) {
		if (!required)
			return true;
		api_error(c->resp, 400, "InvalidRequest", "%s is required (a string)", field);
		return false;
	}
	if (!json_is_string(v)) {
		api_error(c->resp, 400, "InvalidRequest", "%s must be a string", field);
		return false;
	}
	if (strlen(json_string_value(v)) != json_string_length(v)) {
		api_error(c->resp, 400, "InvalidRequest", "%s must not contain a NUL character",
			  field);
		return false;
	}
	*ret = json_string_value(v);
	return true;
}

/* The body held a secret: wipe jansson's copy of field before it is freed. */
static void wipe_field(struct api_call *c, const char *field)
{
	json_t *v = c->body ? json_object_get(c->body, field) : NULL;

	if (json_is_string(v))
		sodium_memzero((char *)json_string_value(v), json_string_length(v));
}

/* Refuses a sign-in (or a password check) that the throttle holds back:
 * answers 429 with Retry-After and audits the first refusal of each lock.
 * Returns true when the attempt may go ahead; false when answered. */
static bool throttle_allows(struct api_call *c, const char *account)
{
	struct ident_throttle th;
	char principal[80];
	json_t *d;
	int r = api_throttle_hold(c, account, &th);

	if (r <= 0)
		return r == 0;
	if (account)
		audit_principal(account, principal);
	else
		util_strlcpy(principal, "user:?", sizeof(principal));
	if (th.audit) {
		d = json_pack("{s:s, s:s, s:I}", "source", c->req->remote_addr, "by",
			      th.by_account ? "account" : "address", "retry_after",
			      (json_int_t)th.retry_after);
		api_audit_json(c, principal, "auth.throttled", principal, "refused", d);
	}
	if (th.by_account)
		api_error(c->resp, 429, "TooManyRequests",
			  "too many failed sign-ins for user '%s'; try again in %lld seconds",
			  account, (long long)th.retry_after);
	else
		api_error(c->resp, 429, "TooManyRequests",
			  "too many failed sign-ins from %s; try again in %lld seconds",
			  c->req->remote_addr, (long long)th.retry_after);
	return false;
}

/* The hashing gate was full: nothing was checked or counted; try again. */
static void answer_busy(struct api_call *c)
{
	api_header(c->resp, "Retry-After", IDENT_HASH_RETRY_AFTER);
	api_error(c->resp, 503, "ServiceUnavailable",
		  "too many password checks are running; try again in %s second",
		  IDENT_HASH_RETRY_AFTER);
}

/* Answers 403 unless the caller is Owner at "/"; true when it is. */
static bool require_root_owner(struct api_call *c)
{
	int r = authz_require(c->ctx->store, c->who, AUTHZ_OWNER, "/");

	if (r == 0)
		return true;
	if (r == -EACCES)
		api_error(c->resp, 403, "AuthorizationFailed", "Owner on / is required");
	else
		api_store_error(c->resp, r, "role assignments");
	return false;
}

static bool is_root_owner(struct api_call *c, int *ret_err)
{
	int r = authz_require(c->ctx->store, c->who, AUTHZ_OWNER, "/");

	*ret_err = r == -EACCES ? 0 : r;
	return r == 0;
}

/* The name in /users/{name}; answers 400 when it is not a valid name. */
static const char *user_name_arg(struct api_call *c)
{
	const char *name = c->nseg >= 2 ? c->seg[1] : NULL;

	if (!name || !val_name(name)) {
		api_error(c->resp, 400, "InvalidRequest",
			  "name must match [A-Za-z0-9][A-Za-z0-9._-]{0,63}");
		return NULL;
	}
	return name;
}

static json_t *user_json(const struct store_user *u)
{
	return json_pack("{s:o, s:s, s:s, s:b, s:I}", "id", json_sprintf("/users/%s", u->name),
			 "type", "users", "name", u->name, "disabled", u->disabled, "created_at",
			 (json_int_t)u->created_at);
}

/* ---- sign-in, sign-out, the current session ------------------------- */

void api_auth_login(struct api_call *c)
{
	struct ident_attempt at = { 0 };
	struct ident_session sess;
	const char *username, *password;
	char principal[80];
	uint8_t old[32];
	char *detail = NULL;
	struct ident_creds creds;
	bool had_cookie, enrol = false;
	int r;

	if (!body_string(c, "username", true, &username) ||
	    !body_string(c, "password", true, &password))
		return;
	/* A cookie sent with the sign-in is never reused: a new session id at
	 * every login defeats session fixation. */
	creds = api_creds(c->req);
	had_cookie = ident_session_hash(&creds, old) == 0;

	at.account = val_name(username) ? username : NULL;
	at.remote_addr = c->req->remote_addr;
	if (!throttle_allows(c, at.account))
		goto out;
	/* Counted before the password is checked: see identity/throttle.c. */
	r = ident_login_counted(c->ctx->store, username, password, &at, &sess);
	if (r == -EBUSY) {
		answer_busy(c);
		goto out;
	}
	/* Only the name of an existing account goes into the audit trail:
	 * anything else may be a password typed into the wrong field. */
	if (at.known)
		audit_principal(username, principal);
	else
		util_strlcpy(principal, "user:?", sizeof(principal));
	detail = detail_source(c);
	if (r == -EACCES) {
		api_audit(c, principal, "auth.login", principal, "failure", detail);
		api_error(c->resp, 401, "Unauthenticated", "invalid username or password");
		goto out;
	}
	if (r < 0) {
		/* Also when the attempt could not be counted: the password was
		 * not checked, so the answer says nothing about it. */
		api_store_error(c->resp, r, "sign-in");
		goto out;
	}
	/* A second factor, when the account has one (api/mfa.c). */
	if (api_mfa_login_step(c, &sess, principal, detail, &enrol) != 0)
		goto out;
	if (ident_throttle_success(c->ctx->store, sess.name, c->req->remote_addr, store_now()) < 0)
		log_warn("auth: could not reset the sign-in throttle of %s", sess.name);
	if (had_cookie)
		store_login_delete(c->ctx->store, old);
	api_audit(c, principal, "auth.login", principal, "success", detail);
	api_signed_in(c, &sess, enrol);
out:
	free(detail);
	wipe_field(c, "password");
	wipe_field(c, "otp");
	sodium_memzero(&sess, sizeof(sess));
}

void api_auth_logout(struct api_call *c)
{
	char principal[80];
	struct ident_creds creds = api_creds(c->req);
	int r;

	/* A cookie ends the browser session; a token revokes itself. */
	r = ident_logout(c->ctx->store, &creds);
	if (r < 0 && r != -ENOENT) {
		api_store_error(c->resp, r, c->who->via_cookie ? "login session" : "API token");
		return;
	}
	audit_principal(c->who->name, principal);
	api_audit(c, principal, "auth.logout", principal, "success",
		  c->who->via_cookie ? NULL : "API token revoked");
	if (c->who->via_cookie)
		api_session_cookie(c->resp, "", 0);
	c->resp->status = 204;
}

static int session_role(const char *role, const char *scope, void *ud)
{
	json_t *one = json_pack("{s:s, s:s}", "role", role, "scope", scope);

	return !one || json_array_append_new(ud, one) < 0 ? -ENOMEM : 0;
}

/* The caller, its CSRF token (browser sessions) and the role assignments
 * it holds ({role, scope}; effective rights follow by inheritance). */
void api_auth_session(struct api_call *c)
{
	char principal[80];
	json_t *roles = json_array();
	struct ident_creds creds = api_creds(c->req);
	uint8_t hash[32];
	bool cookie = c->who->via_cookie && ident_session_hash(&creds, hash) == 0;
	enum ident_mfa_gate gate;
	int r, err = 0;

	/* What the portal must show first (issue 18): the second step of a
	 * single sign-on (mfa_pending), or enrolment (auth.require_mfa). */
	gate = ident_mfa_gate(c->ctx->store, c->ctx->require_mfa, c->who->user_id,
			      cookie ? hash : NULL, &err);
	if (err < 0) {
		json_decref(roles);
		api_store_error(c->resp, err, "second factors");
		return;
	}

	audit_principal(c->who->name, principal);
	r = roles ? store_role_foreach_principal(c->ctx->store, principal, session_role, roles)
		  : -ENOMEM;
	if (r < 0) {
		json_decref(roles);
		api_store_error(c->resp, r, "role assignments");
		return;
	}
	api_header(c->resp, "Cache-Control", "no-store");
	api_json(c->resp, 200,
		 json_pack("{s:{s:s}, s:o, s:o, s:b, s:b}", "user", "name", c->who->name,
			   "csrf_token",
			   c->who->via_cookie ? json_string(c->who->csrf) : json_null(), "roles",
			   roles, "mfa_pending", gate == IDENT_MFA_VERIFY,
			   "mfa_enrollment_required", gate == IDENT_MFA_ENROL));
}

/* API tokens: api/tokens.c. */

/* ---- users ---------------------------------------------------------- */

/* Ends everything an account had open: browser sessions, API tokens (so
 * that re-enabling it does not revive them) and terminals, whose browsers
 * receive {"type":"closed","reason"}. */
static int end_account(struct api_call *c, int64_t id, const char *name, const char *what)
{
	char reason[128];
	int r;

	if ((r = store_login_delete_user(c->ctx->store, id, NULL)) < 0 ||
	    (r = store_token_delete_user(c->ctx->store, id)) < 0)
		return r;
	snprintf(reason, sizeof(reason), "your account was %s by %s", what, c->who->name);
	term_end_user_everywhere(id, name, reason);
	return 0;
}

/* What a new password ended. */
struct ended {
	int sessions, tokens;
	int64_t terminals;
};

/* A new password for user (id, name) ends its browser sessions, API tokens
 * and terminals: a stolen credential must not outlive the password it was
 * got with. When the caller changes its own password, the credential it
 * called with (cookie or token) stays. */
static int end_credentials(struct api_call *c, int64_t id, const char *name, struct ended *ret)
{
	uint8_t keep_login[32], keep_token[32];
	struct ident_creds creds = api_creds(c->req);
	bool own = c->who->user_id == id;
	bool by_cookie = own && c->who->via_cookie && ident_session_hash(&creds, keep_login) == 0;
	bool by_token = own && !c->who->via_cookie && ident_bearer_hash(&creds, keep_token) == 0;
	char reason[128];
	int r;

	memset(ret, 0, sizeof(*ret));
	/* Counted before they are told to end; a terminal that ends by itself
	 * meanwhile is still counted: the number is what was open. */
	if ((r = store_term_open_count(c->ctx->store, name, &ret->terminals)) < 0)
		return r;
	r = store_ident_end_user(c->ctx->store, id, by_cookie ? keep_login : NULL,
				 by_token ? keep_token : NULL, &ret->sessions, &ret->tokens);
	if (r < 0)
		return r;
	if (own)
		snprintf(reason, sizeof(reason), "your password was changed");
	else
		snprintf(reason, sizeof(reason), "your password was reset by %s", c->who->name);
	term_end_user_everywhere(id, name, reason);
	return 0;
}

static json_t *ended_json(const struct ended *e)
{
	return json_pack("{s:i, s:i, s:I}", "sessions", e->sessions, "tokens", e->tokens,
			 "terminals", (json_int_t)e->terminals);
}

/* Audit detail {"source", "ended"} as compact JSON text. */
static char *detail_ended(const struct api_call *c, const struct ended *e)
{
	json_t *o = json_pack("{s:s, s:o}", "source", c->req->remote_addr, "ended", ended_json(e));
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return text;
}

/* PUT /users/{name} {password?, disabled?}: password is required to create
 * an account and optional afterwards (absent: unchanged), so a GET result
 * can be PUT back; disabled absent means false. */
void api_users_put(struct api_call *c)
{
	char hash[IDENT_HASH_SIZE];
	char principal[80], target[80];
	const char *name, *password;
	struct store_user u;
	bool created = false, disabled = false, exists, was_disabled;
	struct ended ended;
	json_t *v, *detail_obj = NULL;
	char *detail = NULL;
	int64_t id = 0;
	int r;

	memset(&u, 0, sizeof(u));
	if (!require_root_owner(c) || !(name = user_name_arg(c)))
		goto out;
	if (!body_string(c, "password", false, &password))
		goto out;
	if (password && ident_password_check(password) < 0) {
		api_error(c->resp, 400, "InvalidRequest",
			  "password must be at least %d characters and at most %d bytes",
			  IDENT_MIN_PASSWORD, IDENT_MAX_PASSWORD);
		goto out;
	}
	v = json_object_get(c->body, "disabled");
	if (v && !json_is_null(v)) {
		if (!json_is_boolean(v)) {
			api_error(c->resp, 400, "InvalidRequest", "disabled must be true or false");
			goto out;
		}
		disabled = json_is_true(v);
	}
	if (disabled && strcmp(name, c->who->name) == 0) {
		api_error(c->resp, 409, "ResourceInUse", "you cannot disable your own account");
		goto out;
	}
	r = store_user_get(c->ctx->store, name, &u);
	if (r < 0 && r != -ENOENT) {
		api_store_error(c->resp, r, "user");
		goto out;
	}
	exists = r == 0;
	was_disabled = exists && u.disabled;
	/* If-None-Match: * (issue 19): create only, never replace. */
	if (exists && api_create_only(c)) {
		api_error(c->resp, 412, "PreconditionFailed",
			  "user %s already exists (If-None-Match: *)", name);
		goto out;
	}
	if (exists && password) {
		/* A user of single sign-on has no password (issue 18): one set
		 * here would be a way in the provider no longer decides (a
		 * user removed there would still sign in, without its MFA). */
		char iss[STORE_OIDC_ISS_MAX + 1], sub[STORE_OIDC_SUB_MAX + 1];

		r = store_oidc_link_get(c->ctx->store, u.id, iss, sub);
		if (r == 0) {
			api_error(c->resp, 409, "Conflict",
				  "user %s signs in with single sign-on and has no password; "
				  "delete the user to make a local one of that name",
				  name);
			goto out;
		}
		if (r != -ENOENT) {
			api_store_error(c->resp, r, "user");
			goto out;
		}
	}
	id = u.id;
	if (!exists && !password) {
		api_error(c->resp, 400, "InvalidRequest",
			  "password is required (a string) to create a user");
		goto out;
	}
	r = 0;
	if (password) {
		if ((r = ident_password_hash(password, hash, sizeof(hash))) == -EBUSY) {
			answer_busy(c);
			goto out;
		}
		if (r < 0) {
			api_error(c->resp, 503, "ServiceUnavailable",
				  "could not hash the password, try again");
			goto out;
		}
		r = store_user_put(c->ctx->store, name, hash, &created, &id);
		sodium_memzero(hash, sizeof(hash));
	}
	if (r == 0)
		r = store_user_set_disabled(c->ctx->store, name, disabled);
	if (r == 0 && !created && password) {
		/* An Owner's reset ends everything the account had open (but
		 * the credential of an Owner resetting its own), and lifts a
		 * sign-in lock. */
		r = end_credentials(c, id, name, &ended);
		if (r == 0)
			r = ident_throttle_reset(c->ctx->store, name, false);
		if (r == 0)
			detail_obj = json_pack("{s:o}", "ended", ended_json(&ended));
	}
	if (r == 0 && disabled && !created)
		r = end_account(c, id, name, "disabled");
	if (r == 0)
		r = store_user_get(c->ctx->store, name, &u);
	if (r < 0) {
		api_store_error(c->resp, r, "user");
		goto out;
	}
	audit_principal(c->who->name, principal);
	audit_principal(name, target);
	if (disabled && (detail_obj || (detail_obj = json_object())))
		json_object_set_new(detail_obj, "disabled", json_true());
	/* A replacing PUT says what it changed, as resources' do (issue 19);
	 * never the password itself. */
	if (!created && (detail_obj || (detail_obj = json_object()))) {
		json_t *changed = json_array();

		if (password)
			json_array_append_new(changed, json_string("password"));
		if (disabled != was_disabled)
			json_array_append_new(changed, json_string("disabled"));
		json_object_set_new(detail_obj, "changed", changed);
	}
	detail = detail_obj ? json_dumps(detail_obj, JSON_COMPACT) : NULL;
	api_audit(c, principal, created ? "user.create" : "user.update", target, "success", detail);
	api_json(c->resp, created ? 201 : 200, user_json(&u));
out:
	json_decref(detail_obj);
	free(detail);
	wipe_field(c, "password");
	sodium_memzero(&u, sizeof(u));
}

/* POST /auth/password {current_password, new_password, keep_sessions?}:
 * the caller's own password. The current one is checked like a sign-in (and
 * throttled and counted like one). Unless keep_sessions is true, the
 * caller's other browser sessions, its API tokens (but the one it called
 * with) and its terminals end; the answer says how many:
 * 200 {"ended":{"sessions","tokens","terminals"}}. */
void api_auth_password(struct api_call *c)
{
	char hash[IDENT_HASH_SIZE];
	char principal[80];
	const char *current, *fresh;
	struct ident_attempt at = { .account = c->who->name, .remote_addr = c->req->remote_addr };
	struct store_user u;
	struct ended ended;
	bool keep_sessions = false;
	char *detail = NULL;
	json_t *v;
	int r;

	memset(&u, 0, sizeof(u));
	memset(&ended, 0, sizeof(ended));
	if (!body_string(c, "current_password", true, &current) ||
	    !body_string(c, "new_password", true, &fresh))
		goto out;
	v = json_object_get(c->body, "keep_sessions");
	if (v && !json_is_null(v)) {
		if (!json_is_boolean(v)) {
			api_error(c->resp, 400, "InvalidRequest",
				  "keep_sessions must be true or false");
			goto out;
		}
		keep_sessions = json_is_true(v);
	}
	if (ident_password_check(fresh) < 0) {
		api_error(c->resp, 400, "InvalidRequest",
			  "new_password must be at least %d characters and at most %d bytes",
			  IDENT_MIN_PASSWORD, IDENT_MAX_PASSWORD);
		goto out;
	}
	if (util_streq_ct(current, fresh)) {
		api_error(c->resp, 400, "InvalidRequest",
			  "new_password must differ from current_password");
		goto out;
	}
	if (!throttle_allows(c, c->who->name))
		goto out;
	if ((r = store_user_get_by_id(c->ctx->store, c->who->user_id, &u)) < 0) {
		api_store_error(c->resp, r, "user");
		goto out;
	}
	audit_principal(c->who->name, principal);
	detail = detail_source(c);
	/* An oversized password cannot match: it is counted without costing
	 * an Argon2id verification. */
	if (strlen(current) > IDENT_MAX_PASSWORD) {
		r = ident_throttle_failure(c->ctx->store, c->who->name, c->req->remote_addr,
					   store_now());
		r = r < 0 ? r : -EACCES;
	} else {
		r = ident_password_verify_counted(c->ctx->store, u.password_hash, current, &at);
	}
	if (r == -EBUSY) {
		answer_busy(c);
		goto out;
	}
	if (r == -EACCES) {
		api_audit(c, principal, "user.password", principal, "failure", detail);
		api_error(c->resp, 403, "InvalidCurrentPassword",
			  "current_password is not correct");
		goto out;
	}
	if (r < 0) {
		api_store_error(c->resp, r, "password check");
		goto out;
	}
	if ((r = ident_password_hash(fresh, hash, sizeof(hash))) == -EBUSY) {
		answer_busy(c);
		goto out;
	}
	if (r < 0) {
		api_error(c->resp, 503, "ServiceUnavailable",
			  "could not hash the password, try again");
		goto out;
	}
	r = store_user_put(c->ctx->store, u.name, hash, NULL, NULL);
	sodium_memzero(hash, sizeof(hash));
	if (r == 0 && !keep_sessions)
		r = end_credentials(c, u.id, u.name, &ended);
	if (r < 0) {
		api_store_error(c->resp, r, "user");
		goto out;
	}
	if (ident_throttle_success(c->ctx->store, u.name, c->req->remote_addr, store_now()) < 0)
		log_warn("auth: could not reset the sign-in throttle of %s", u.name);
	free(detail);
	detail = detail_ended(c, &ended);
	api_audit(c, principal, "user.password", principal, "success", detail);
	api_header(c->resp, "Cache-Control", "no-store");
	api_json(c->resp, 200, json_pack("{s:o}", "ended", ended_json(&ended)));
out:
	free(detail);
	wipe_field(c, "current_password");
	wipe_field(c, "new_password");
	sodium_memzero(&u, sizeof(u));
}

void api_users_get(struct api_call *c)
{
	struct store_user u;
	const char *name = c->nseg >= 2 ? c->seg[1] : NULL;
	int r, err;

	/* Everybody may read their own account; other accounts need Owner. */
	if (!name || strcmp(name, c->who->name) != 0) {
		if (!is_root_owner(c, &err)) {
			if (err < 0)
				api_store_error(c->resp, err, "role assignments");
			else
				api_error(c->resp, 403, "AuthorizationFailed",
					  "Owner on / is required");
			return;
		}
	}
	if (!(name = user_name_arg(c)))
		return;
	r = store_user_get(c->ctx->store, name, &u);
	if (r == -ENOENT) {
		api_error(c->resp, 404, "ResourceNotFound", "user '%s' not found", name);
		return;
	}
	if (r < 0) {
		api_store_error(c->resp, r, "user");
		return;
	}
	api_json(c->resp, 200, user_json(&u));
	sodium_memzero(&u, sizeof(u));
}

static int list_one(const struct store_user *u, void *ud)
{
	json_t *one = user_json(u);

	if (!one || json_array_append_new(ud, one) < 0)
		return -ENOMEM;
	return 0;
}

void api_users_list(struct api_call *c)
{
	json_t *arr = json_array();
	struct store_user u;
	int r, err;

	if (!arr) {
		api_error(c->resp, 503, "ServiceUnavailable", "out of memory");
		return;
	}
	/* An Owner at "/" sees every account; anybody else just their own. */
	if (is_root_owner(c, &err)) {
		r = store_user_foreach(c->ctx->store, list_one, arr);
	} else if (err < 0) {
		r = err;
	} else {
		r = store_user_get_by_id(c->ctx->store, c->who->user_id, &u);
		if (r == 0)
			r = list_one(&u, arr);
		sodium_memzero(&u, sizeof(u));
	}
	if (r < 0) {
		json_decref(arr);
		api_store_error(c->resp, r, "users");
		return;
	}
	api_json(c->resp, 200, json_pack("{s:o}", "value", arr));
}

void api_users_delete(struct api_call *c)
{
	char principal[80], target[80], reason[128];
	struct store_user u;
	const char *name;
	int r;

	if (!require_root_owner(c) || !(name = user_name_arg(c)))
		return;
	if (strcmp(name, c->who->name) == 0) {
		api_error(c->resp, 409, "ResourceInUse", "you cannot delete your own account");
		return;
	}
	r = store_user_get(c->ctx->store, name, &u);
	if (r == 0)
		r = store_user_delete(c->ctx->store, name);
	if (r == -ENOENT) {
		api_error(c->resp, 404, "ResourceNotFound", "user '%s' not found", name);
		goto out;
	}
	if (r < 0) {
		api_store_error(c->resp, r, "user");
		goto out;
	}
	/* Sessions and tokens went with the row; the terminals end now. */
	snprintf(reason, sizeof(reason), "your account was deleted by %s", c->who->name);
	term_end_user_everywhere(u.id, name, reason);
	if (ident_throttle_reset(c->ctx->store, name, true) < 0)
		log_warn("auth: could not forget the sign-in state of %s", name);
	audit_principal(c->who->name, principal);
	audit_principal(name, target);
	api_audit(c, principal, "user.delete", target, "success", NULL);
	c->resp->status = 204;
out:
	sodium_memzero(&u, sizeof(u));
}
