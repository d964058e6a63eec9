/* REST handlers of second factors (docs/api.md "Second factors",
 * docs/sign-in.md), on a worker:
 *   GET    /auth/mfa                 what the caller has enrolled
 *   POST   /auth/mfa/totp            enrol: {"secret","otpauth_uri"}
 *   POST   /auth/mfa/totp/confirm    {"code"} → {"recovery_codes":[...]}
 *   DELETE /auth/mfa/totp            {"otp"}: a current code or a recovery code
 *   DELETE /users/{name}/mfa         Owner at "/": resets a user's factors
 * and the second step of POST /auth/login (api_mfa_login_step), and the
 * restriction of auth.require_mfa (api_mfa_restricted, from the router).
 *
 * Decisions:
 * - The TOTP key is sealed with the vault's MFA key (vault_mfa_seal),
 *   associated data "mfa/totp/<user id>", so a row copied onto another user
 *   does not open.
 * - Recovery codes carry 80 random bits; they are stored as SHA-256, not
 *   Argon2id: a fast hash is enough when guessing the input is hopeless,
 *   and a sign-in with one then costs no hashing-gate slot.
 * - Removing a confirmed TOTP key needs a current code or a recovery code
 *   (not the password): it proves possession of the factor being removed,
 *   which a stolen session plus a phished password do not. A wrong one is
 *   counted by the sign-in throttle like a wrong sign-in code.
 * No response, log line or audit record carries a key or a code, except the
 * enrolment and confirmation answers that hand them to their owner. */
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
#include "vault/vault.h"

static void user_principal(const char *name, char out[80])
{
	snprintf(out, 80, "user:%s", name);
}

static void totp_ad(int64_t user_id, char out[48])
{
	snprintf(out, 48, "mfa/totp/%lld", (long long)user_id);
}

/* The opened TOTP key of user_id into key (IDENT_TOTP_KEY_BYTES; wiped by
 * the caller) and its row into *m (free m->totp_sealed). -ENOENT: none. */
static int totp_key_open(struct api_call *c, int64_t user_id, uint8_t key[IDENT_TOTP_KEY_BYTES],
			 struct store_mfa *m)
{
	char ad[48];
	size_t n = 0;
	int r = store_mfa_get(c->ctx->store, user_id, m);

	if (r < 0)
		return r;
	if (!c->ctx->vault)
		return -BERR_INTEGRITY;
	totp_ad(user_id, ad);
	r = vault_mfa_open(c->ctx->vault, c->ctx->store, ad, m->totp_sealed, m->totp_sealed_len,
			   key, IDENT_TOTP_KEY_BYTES, &n);
	if (r == 0 && n != IDENT_TOTP_KEY_BYTES)
		r = -BERR_INTEGRITY;
	if (r == -E2BIG)
		r = -BERR_INTEGRITY;
	return r;
}

static void answer_key_error(struct api_call *c, int r)
{
	if (r == -BERR_INTEGRITY) {
		log_error("mfa: a sealed TOTP key does not open (wrong master key or damaged row)");
		api_error(c->resp, 500, "InternalError", "the second factor could not be read");
		return;
	}
	api_store_error(c->resp, r, "second factor");
}

/* A string field of a JSON object, or NULL. */
static const char *field_str(json_t *body, const char *name)
{
	json_t *v = body ? json_object_get(body, name) : NULL;

	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
		return NULL;
	return json_string_value(v);
}

static void wipe_field(json_t *body, const char *name)
{
	json_t *v = body ? json_object_get(body, name) : NULL;

	if (json_is_string(v))
		sodium_memzero((char *)json_string_value(v), json_string_length(v));
}

/* ---- what the caller has ---------------------------------------------- */

void api_mfa_get(struct api_call *c)
{
	struct ident_mfa_factors f;
	int r = ident_mfa_factors(c->ctx->store, c->who->user_id, &f);

	if (r < 0) {
		api_store_error(c->resp, r, "second factors");
		return;
	}
	api_header(c->resp, "Cache-Control", "no-store");
	api_json(c->resp, 200,
		 json_pack("{s:{s:b, s:b}, s:i, s:i, s:b}", "totp", "enrolled",
			   f.totp || f.totp_pending, "confirmed", f.totp, "recovery_codes_left",
			   f.recovery_left, "passkeys", f.passkeys, "required",
			   c->ctx->require_mfa));
}

/* ---- TOTP enrolment ----------------------------------------------------- */

void api_mfa_totp_enrol(struct api_call *c)
{
	uint8_t key[IDENT_TOTP_KEY_BYTES], *blob = NULL;
	char b32[IDENT_TOTP_B32_SIZE], ad[48], principal[80];
	char *uri = NULL;
	size_t blob_len = 0;
	json_t *body;
	int r;

	randombytes_buf(key, sizeof(key));
	ident_base32(key, sizeof(key), b32, sizeof(b32));
	totp_ad(c->who->user_id, ad);
	if (!c->ctx->vault) {
		api_error(c->resp, 503, "ServiceUnavailable", "the vault is not open");
		goto out;
	}
	r = vault_mfa_seal(c->ctx->vault, c->ctx->store, ad, key, sizeof(key), &blob, &blob_len);
	if (r == 0)
		r = store_mfa_totp_put(c->ctx->store, c->who->user_id, blob, blob_len);
	if (r == -EEXIST) {
		api_error(c->resp, 409, "MfaAlreadyEnrolled",
			  "a TOTP key is already active; remove it first");
		goto out;
	}
	if (r < 0) {
		api_store_error(c->resp, r, "second factor");
		goto out;
	}
	if (!(uri = ident_totp_uri(c->who->name, b32))) {
		api_error(c->resp, 500, "InternalError", "out of memory");
		goto out;
	}
	user_principal(c->who->name, principal);
	api_audit(c, principal, "auth.mfa.totp-enrol", principal, "pending", NULL);
	body = json_pack("{s:s, s:s}", "secret", b32, "otpauth_uri", uri);
	api_header(c->resp, "Cache-Control", "no-store");
	api_json(c->resp, 201, body);
out:
	if (uri)
		sodium_memzero(uri, strlen(uri));
	free(uri);
	free(blob);
	sodium_memzero(key, sizeof(key));
	sodium_memzero(b32, sizeof(b32));
}

void api_mfa_totp_confirm(struct api_call *c)
{
	uint8_t key[IDENT_TOTP_KEY_BYTES];
	char codes[IDENT_RECOVERY_CODES][IDENT_RECOVERY_SIZE], principal[80];
	uint8_t hashes[IDENT_RECOVERY_CODES][32];
	struct store_mfa m = { 0 };
	const char *code = field_str(c->body, "code");
	json_t *list = NULL;
	int64_t step = 0;
	int r;

	if (!code) {
		api_error(c->resp, 400, "InvalidRequest", "code is required (a string)");
		return;
	}
	r = totp_key_open(c, c->who->user_id, key, &m);
	if (r == -ENOENT || (r == 0 && m.totp_confirmed)) {
		api_error(
			c->resp, 409, "MfaNotPending",
			"no TOTP enrolment is waiting for confirmation; POST /auth/mfa/totp first");
		goto out;
	}
	if (r < 0) {
		answer_key_error(c, r);
		goto out;
	}
	r = ident_totp_check(key, sizeof(key), code, store_now(), 0, &step);
	if (r < 0) {
		api_error(c->resp, 400, "InvalidOtp",
			  "the code does not match; check the authenticator's clock");
		goto out;
	}
	ident_recovery_generate(codes, hashes);
	r = store_mfa_totp_confirm(c->ctx->store, c->who->user_id, step, &hashes[0][0],
				   IDENT_RECOVERY_CODES);
	if (r == -ENOENT) {
		api_error(c->resp, 409, "MfaNotPending", "the enrolment was confirmed or removed");
		goto out;
	}
	if (r < 0) {
		api_store_error(c->resp, r, "second factor");
		goto out;
	}
	list = json_array();
	for (int i = 0; list && i < IDENT_RECOVERY_CODES; i++)
		json_array_append_new(list, json_string(codes[i]));
	user_principal(c->who->name, principal);
	api_audit(c, principal, "auth.mfa.totp-confirm", principal, "success", NULL);
	api_header(c->resp, "Cache-Control", "no-store");
	api_json(c->resp, 200, json_pack("{s:o}", "recovery_codes", list ? list : json_array()));
out:
	free(m.totp_sealed);
	wipe_field(c->body, "code");
	sodium_memzero(key, sizeof(key));
	sodium_memzero(codes, sizeof(codes));
	sodium_memzero(hashes, sizeof(hashes));
}

void api_mfa_totp_delete(struct api_call *c)
{
	uint8_t key[IDENT_TOTP_KEY_BYTES];
	struct store_mfa m = { 0 };
	struct ident_throttle th;
	char principal[80];
	json_error_t jerr;
	json_t *body = NULL;
	const char *otp;
	bool recovery = false;
	int r, removed = 0;

	user_principal(c->who->name, principal);
	/* DELETE has no body the router parses: read it here. */
	if (c->req->body_len > 0)
		body = json_loadb(c->req->body, c->req->body_len, JSON_REJECT_DUPLICATES, &jerr);
	otp = field_str(body, "otp");
	r = totp_key_open(c, c->who->user_id, key, &m);
	if (r == -ENOENT) {
		api_error(c->resp, 404, "ResourceNotFound", "no TOTP key is enrolled");
		goto out;
	}
	if (r < 0) {
		answer_key_error(c, r);
		goto out;
	}
	if (m.totp_confirmed) {
		if (!otp) {
			api_error(c->resp, 400, "InvalidRequest",
				  "otp is required: a current code or a recovery code");
			goto out;
		}
		if ((r = api_throttle_hold(c, c->who->name, &th)) != 0) {
			if (r > 0)
				api_error(c->resp, 429, "TooManyRequests",
					  "too many wrong codes; try again in %lld seconds",
					  (long long)th.retry_after);
			goto out;
		}
		r = ident_mfa_check_otp(c->ctx->store, c->who->user_id, key, sizeof(key), otp,
					store_now(), &recovery);
		if (r == -EACCES) {
			ident_throttle_failure(c->ctx->store, c->who->name, c->req->remote_addr,
					       store_now());
			api_audit(c, principal, "auth.mfa.totp-remove", principal, "failure", NULL);
			api_error(c->resp, 403, "InvalidOtp", "the code is wrong or was used");
			goto out;
		}
		if (r < 0) {
			api_store_error(c->resp, r, "second factor");
			goto out;
		}
	}
	if ((r = store_mfa_delete(c->ctx->store, c->who->user_id, false, &removed)) < 0) {
		api_store_error(c->resp, r, "second factor");
		goto out;
	}
	api_audit(c, principal, "auth.mfa.totp-remove", principal, "success",
		  recovery ? "{\"with\":\"recovery code\"}" : NULL);
	c->resp->status = 204;
out:
	free(m.totp_sealed);
	wipe_field(body, "otp");
	json_decref(body);
	sodium_memzero(key, sizeof(key));
}

/* ---- an Owner's reset ------------------------------------------------- */

void api_users_mfa_delete(struct api_call *c)
{
	const char *name = c->nseg >= 2 ? c->seg[1] : NULL;
	struct store_user u;
	char principal[80], target[80];
	int r, removed = 0;

	if (!name || !val_name(name)) {
		api_error(c->resp, 400, "InvalidRequest",
			  "name must match [A-Za-z0-9][A-Za-z0-9._-]{0,63}");
		return;
	}
	r = authz_require(c->ctx->store, c->who, AUTHZ_OWNER, "/");
	if (r == -EACCES) {
		api_error(c->resp, 403, "AuthorizationFailed", "Owner on / is required");
		return;
	}
	if (r < 0) {
		api_store_error(c->resp, r, "role assignments");
		return;
	}
	if ((r = store_user_get(c->ctx->store, name, &u)) < 0) {
		api_store_error(c->resp, r, "user");
		return;
	}
	r = store_mfa_delete(c->ctx->store, u.id, true, &removed);
	sodium_memzero(&u, sizeof(u));
	if (r < 0) {
		api_store_error(c->resp, r, "second factor");
		return;
	}
	user_principal(c->who->name, principal);
	user_principal(name, target);
	api_audit(c, principal, "user.mfa-reset", target, "success",
		  removed ? "{\"removed\":true}" : "{\"removed\":false}");
	c->resp->status = 204;
}

/* ---- the sign-in's second step ---------------------------------------- */

/* The second factor c's body carries for user_id: {"otp"} (a TOTP or a
 * recovery code) or {"webauthn"} (a passkey assertion; not when
 * no_passkey). 0: accepted, *ret_how "totp", "recovery" or "passkey";
 * -ENODATA: the body carries none the user could use; -EACCES: wrong,
 * replayed or used (both unanswered); 1: answered (the store, the key, or
 * an assertion webauthn.c refused itself). The "otp" field is wiped. */
static int second_factor(struct api_call *c, int64_t user_id, const struct ident_mfa_factors *f,
			 bool no_passkey, const char **ret_how)
{
	uint8_t key[IDENT_TOTP_KEY_BYTES];
	struct store_mfa m = { 0 };
	const char *otp = field_str(c->body, "otp");
	bool recovery = false;
	int r;

	*ret_how = NULL;
	if (!no_passkey && f->passkeys > 0 &&
	    json_is_object(json_object_get(c->body, "webauthn"))) {
		/* A passkey as the second step (api/webauthn.c). */
		r = api_wa_second_factor(c, user_id, json_object_get(c->body, "webauthn"));
		if (r == -EACCES || r == -EINVAL)
			r = c->resp->status ? 1 : -EACCES;
		else if (r < 0) {
			api_store_error(c->resp, r, "second factor");
			r = 1;
		}
		*ret_how = "passkey";
		goto out;
	}
	if (!otp || !otp[0] || !f->totp) {
		r = -ENODATA;
		goto out;
	}
	if ((r = totp_key_open(c, user_id, key, &m)) < 0) {
		answer_key_error(c, r);
		r = 1;
		goto out;
	}
	r = ident_mfa_check_otp(c->ctx->store, user_id, key, sizeof(key), otp, store_now(),
				&recovery);
	if (r < 0 && r != -EACCES) {
		api_store_error(c->resp, r, "second factor");
		r = 1;
	}
	*ret_how = recovery ? "recovery" : "totp";
out:
	free(m.totp_sealed);
	wipe_field(c->body, "otp");
	sodium_memzero(key, sizeof(key));
	return r;
}

int api_mfa_login_step(struct api_call *c, const struct ident_session *sess, const char *principal,
		       const char *detail, bool *ret_enrol)
{
	struct ident_mfa_factors f;
	const char *how = NULL;
	uint8_t hash[32];
	int r;

	*ret_enrol = false;
	if ((r = ident_mfa_factors(c->ctx->store, sess->user_id, &f)) < 0) {
		api_store_error(c->resp, r, "second factors");
		goto refuse;
	}
	if (!f.totp && f.passkeys == 0) {
		*ret_enrol = c->ctx->require_mfa;
		wipe_field(c->body, "otp");
		return 0;
	}
	r = second_factor(c, sess->user_id, &f, false, &how);
	if (r == -ENODATA) {
		api_audit(c, principal, "auth.login", principal, "mfa-required", detail);
		api_error(c->resp, 401, "MfaRequired",
			  "this account needs a second factor: send otp (a TOTP or recovery code) "
			  "or webauthn (a passkey assertion) with the password");
		goto refuse;
	}
	if (r == -EACCES) {
		/* The password was right, the code not: a failure like any
		 * other for the throttle. The account's share was charged with
		 * the password and stays (only a full sign-in clears it); the
		 * address's was given back then, so it is counted again here. */
		if (ident_throttle_failure(c->ctx->store, NULL, c->req->remote_addr, store_now()) <
		    0)
			log_warn("auth: could not count a failed code for %s", sess->name);
		api_audit(c, principal, "auth.login", principal, "failure", detail);
		api_error(c->resp, 401, "Unauthenticated", "invalid or already used code");
		goto refuse;
	}
	if (r != 0)
		goto refuse;
	if (strcmp(how, "recovery") == 0)
		api_audit(c, principal, "auth.mfa.recovery-used", principal, "success", detail);
	return 0;
refuse:
	/* The session was opened with the password; without its second
	 * factor it goes (its cookie was never sent). */
	util_sha256_str(sess->token, hash);
	store_login_delete(c->ctx->store, hash);
	sodium_memzero(hash, sizeof(hash));
	return 1;
}

/* ---- the second step after single sign-on (docs/sign-in.md) ----------- */

/* Whether user name may try a code now from this address; answers 429
 * itself when not (or the store's error). */
static bool code_allowed(struct api_call *c, const char *name)
{
	struct ident_throttle th;
	int r = api_throttle_hold(c, name, &th);

	if (r <= 0)
		return r == 0;
	api_error(c->resp, 429, "TooManyRequests",
		  "too many failed sign-ins; try again in %lld seconds", (long long)th.retry_after);
	return false;
}

/* A wrong code after single sign-on: counted against the account and the
 * address (the provider's sign-in cleared neither: see the callback),
 * audited, answered 401. */
static void code_wrong(struct api_call *c, const char *name, const char *principal,
		       const char *detail)
{
	if (ident_throttle_failure(c->ctx->store, name, c->req->remote_addr, store_now()) < 0)
		log_warn("auth: could not count a failed code for %s", name);
	api_audit(c, principal, "auth.login", principal, "failure", detail);
	api_error(c->resp, 401, "Unauthenticated", "invalid or already used code");
}

/* Audit detail {"source", "method", "second_factor"?} as compact JSON. */
static char *step_detail(const struct api_call *c, const char *method, const char *how)
{
	json_t *o = json_pack("{s:s, s:s}", "source", c->req->remote_addr, "method", method);
	char *text;

	if (o && how)
		json_object_set_new(o, "second_factor", json_string(how));
	text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return text;
}

void api_mfa_verify(struct api_call *c)
{
	struct ident_creds creds = api_creds(c->req);
	struct ident_mfa_factors f;
	struct ident_session sess = { 0 };
	char principal[80], via[17];
	const char *how = NULL;
	char *detail = NULL, *done = NULL;
	uint8_t old[32];
	int r;

	user_principal(c->who->name, principal);
	/* Only a browser session the OIDC callback left waiting: a complete
	 * session or an API token has nothing to finish. */
	r = c->who->via_cookie && ident_session_hash(&creds, old) == 0
		    ? store_login_mfa_via(c->ctx->store, old, via)
		    : -ENOENT;
	if (r < 0 && r != -ENOENT) {
		api_store_error(c->resp, r, "login session");
		goto out;
	}
	if (r == -ENOENT || strcmp(via, STORE_MFA_PENDING) != 0) {
		api_error(c->resp, 409, "MfaNotPending",
			  "this session is not waiting for a second factor");
		goto out;
	}
	if (!code_allowed(c, c->who->name))
		goto out;
	if ((r = ident_mfa_factors(c->ctx->store, c->who->user_id, &f)) < 0) {
		api_store_error(c->resp, r, "second factors");
		goto out;
	}
	detail = step_detail(c, "oidc", NULL);
	r = second_factor(c, c->who->user_id, &f, false, &how);
	if (r == -ENODATA) {
		api_error(c->resp, 400, "InvalidRequest",
			  "send otp (a TOTP or recovery code) or webauthn (a passkey assertion)");
		goto out;
	}
	if (r == -EACCES) {
		code_wrong(c, c->who->name, principal, detail);
		goto out;
	}
	if (r != 0)
		goto out;
	/* A new session id for the complete session: the waiting one's
	 * cookie (which the browser has held since the callback) goes. */
	r = ident_mfa_session_open(c->ctx->store, c->who->user_id, c->who->name, &sess);
	if (r < 0) {
		api_store_error(c->resp, r, "sign-in");
		goto out;
	}
	store_login_delete(c->ctx->store, old);
	if (ident_throttle_success(c->ctx->store, c->who->name, c->req->remote_addr, store_now()) <
	    0)
		log_warn("auth: could not reset the sign-in throttle of %s", c->who->name);
	done = step_detail(c, "oidc", how);
	if (strcmp(how, "recovery") == 0)
		api_audit(c, principal, "auth.mfa.recovery-used", principal, "success", done);
	api_audit(c, principal, "auth.login", principal, "success", done);
	api_signed_in(c, &sess, false);
out:
	free(detail);
	free(done);
	sodium_memzero(old, sizeof(old));
	sodium_memzero(&sess, sizeof(sess));
}

int api_mfa_cli_step(struct api_call *c, int64_t user_id, const char *name)
{
	struct ident_mfa_factors f;
	char principal[80];
	const char *how = NULL;
	char *detail = NULL;
	int r;

	user_principal(name, principal);
	if (!field_str(c->body, "otp"))
		return -ENODATA;
	if (!code_allowed(c, name))
		return 1;
	if ((r = ident_mfa_factors(c->ctx->store, user_id, &f)) < 0) {
		api_store_error(c->resp, r, "second factors");
		return 1;
	}
	detail = step_detail(c, "oidc-cli", NULL);
	r = second_factor(c, user_id, &f, true, &how);
	if (r == -ENODATA) {
		wipe_field(c->body, "otp");
		free(detail);
		return -ENODATA;
	}
	if (r == -EACCES)
		code_wrong(c, name, principal, detail);
	if (r == 0) {
		free(detail);
		detail = step_detail(c, "oidc-cli", how);
		if (strcmp(how, "recovery") == 0)
			api_audit(c, principal, "auth.mfa.recovery-used", principal, "success",
				  detail);
		/* The callback audited "mfa-required"; this completes it. */
		api_audit(c, principal, "auth.login", principal, "success", detail);
	}
	free(detail);
	return r == 0 ? 0 : 1;
}

/* ---- auth.require_mfa ----------------------------------------------- */

bool api_mfa_restricted(struct api_ctx *ctx, const struct principal *who,
			const struct ident_creds *creds, struct api_resp *resp, bool enrol_route,
			bool verify_route)
{
	uint8_t hash[32];
	bool cookie = who->via_cookie && ident_session_hash(creds, hash) == 0;
	int err = 0;
	enum ident_mfa_gate g = ident_mfa_gate(ctx->store, ctx->require_mfa, who->user_id,
					       cookie ? hash : NULL, &err);

	if (g == IDENT_MFA_OPEN || (g == IDENT_MFA_ENROL && enrol_route) ||
	    (g == IDENT_MFA_VERIFY && verify_route && err == 0))
		return false;
	if (err < 0)
		api_store_error(resp, err, "second factors");
	else if (g == IDENT_MFA_VERIFY)
		api_error(resp, 401, "MfaRequired",
			  "the sign-in needs a second factor: send it to POST "
			  "/api/v1/auth/mfa/verify first");
	else
		api_error(resp, 403, "MfaEnrollmentRequired",
			  "this bastion requires a second factor: enrol one at "
			  "POST /api/v1/auth/mfa/totp first");
	return true;
}
