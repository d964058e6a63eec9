/* What every way of signing in shares (password: auth.c, second factors:
 * mfa.c, passkeys: webauthn.c, single sign-on: oidc.c): the audit line
 * written after the fact, the throttle's hold (Retry-After), the session
 * cookie, and the 200 that hands the browser its session and CSRF token. */
#include "api/api.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/log.h"
#include "identity/ident.h"
#include "store/store.h"

#define COOKIE_ATTRS "; Path=/; HttpOnly; Secure; SameSite=Strict"

void api_audit(struct api_call *c, const char *principal, const char *action, const char *target,
	       const char *result, const char *detail)
{
	/* The action already happened; a failed audit write is logged, not
	 * answered, so that the client sees what really took place. */
	if (store_audit(c->ctx->store, principal, action, target, result, detail) < 0)
		log_warn("audit: could not record %s on %s", action, target ? target : "-");
}

void api_audit_json(struct api_call *c, const char *principal, const char *action,
		    const char *target, const char *result, json_t *detail)
{
	char *text = detail ? json_dumps(detail, JSON_COMPACT) : NULL;

	api_audit(c, principal, action, target, result, text);
	free(text);
	json_decref(detail);
}

int api_throttle_hold(struct api_call *c, const char *account, struct ident_throttle *th)
{
	char retry[32];
	int r = ident_throttle_check(c->ctx->store, account, c->req->remote_addr, store_now(), th);

	if (r < 0) {
		api_store_error(c->resp, r, "sign-in throttle");
		return -1;
	}
	if (th->retry_after <= 0)
		return 0;
	snprintf(retry, sizeof(retry), "%lld", (long long)th->retry_after);
	api_header(c->resp, "Retry-After", retry);
	return 1;
}

void api_session_cookie(struct api_resp *resp, const char *token, int max_age)
{
	char line[256];

	snprintf(line, sizeof(line), IDENT_COOKIE "=%s" COOKIE_ATTRS "; Max-Age=%d", token,
		 max_age);
	api_header(resp, "Set-Cookie", line);
	sodium_memzero(line, sizeof(line));
}

void api_signed_in(struct api_call *c, const struct ident_session *sess, bool enrol)
{
	json_t *body;

	api_session_cookie(c->resp, sess->token, IDENT_SESSION_TTL);
	api_header(c->resp, "Cache-Control", "no-store");
	body = json_pack("{s:{s:s}, s:s}", "user", "name", sess->name, "csrf_token", sess->csrf);
	if (body && enrol)
		json_object_set_new(body, "mfa_enrollment_required", json_true());
	api_json(c->resp, 200, body);
}
