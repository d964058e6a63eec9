/* REST handlers of passkeys (WebAuthn; docs/api.md "Second factors",
 * docs/sign-in.md "Passkeys"), on a worker:
 *   POST /auth/mfa/webauthn/register/options   creation options (signed in)
 *   POST /auth/mfa/webauthn/register           {id?, clientDataJSON, attestationObject}
 *   POST /auth/webauthn/login/options          {username?} → request options
 *   POST /auth/webauthn/login                  {id, clientDataJSON, authenticatorData,
 *                                               signature, userHandle?} → a session
 * and api_wa_second_factor, the passkey as the second step of a password
 * sign-in ({"webauthn": {...}} beside the password).
 *
 * The relying party is the portal itself: RP ID the request's Host without
 * its port, origin "https://" + Host (the router already refused any other
 * Origin on a state change). Challenges are 32 random bytes kept in the
 * store for 5 minutes and taken once, so a ceremony begun on one instance
 * can end on another. Binary fields travel as base64url, as the browser's
 * PublicKeyCredential JSON does. User verification is preferred, not
 * required: a passkey is a second factor by possession; a password-less
 * sign-in requires UV (possession plus the PIN or biometric). */
#include "api/api.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/validate.h"
#include "core/err.h"
#include "core/log.h"
#include "core/util.h"
#include "identity/ident.h"
#include "identity/mfa.h"
#include "identity/webauthn.h"
#include "store/store.h"

#define CHALLENGE_TTL 300
#define CEREMONY_MS   120000
#define B64_SIZE(n)   (((n) + 2) / 3 * 4 + 1)
#define PURPOSE_REG   "register"
#define PURPOSE_LOGIN "login"

/* The RP ID (Host without its port) and origin of this request. */
static bool relying_party(struct api_call *c, char rp_id[256], char origin[300])
{
	const char *host = c->req->host;
	const char *colon;
	size_t n;

	if (!host || !host[0] || strlen(host) > 250 || host[0] == '[') {
		api_error(c->resp, 400, "InvalidRequest", "passkeys need a host name in Host");
		return false;
	}
	colon = strrchr(host, ':');
	n = colon ? (size_t)(colon - host) : strlen(host);
	memcpy(rp_id, host, n);
	rp_id[n] = '\0';
	snprintf(origin, 300, "https://%s", host);
	return true;
}

static json_t *b64(const uint8_t *v, size_t len)
{
	char out[B64_SIZE(IDENT_WA_CRED_ID_MAX)];

	if (ident_b64url_encode(v, len, out, sizeof(out)) < 0)
		return NULL;
	return json_string(out);
}

/* body[field] as base64url bytes into out; false (answered 400) if not. */
static bool b64_field(struct api_call *c, json_t *obj, const char *field, uint8_t *out, size_t size,
		      size_t *ret_len)
{
	const char *v = json_string_value(obj ? json_object_get(obj, field) : NULL);

	if (!v || ident_b64url_decode(v, out, size, ret_len) < 0 || *ret_len == 0) {
		api_error(c->resp, 400, "InvalidRequest", "%s must be base64url", field);
		return false;
	}
	return true;
}

/* A new challenge for purpose (bound to user_id, 0: anyone), stored; its
 * base64url into out. */
static int new_challenge(struct api_call *c, int64_t user_id, const char *purpose,
			 char out[B64_SIZE(32)])
{
	uint8_t ch[IDENT_WA_CHALLENGE_BYTES];
	int r;

	randombytes_buf(ch, sizeof(ch));
	r = store_wa_challenge_add(c->ctx->store, ch, user_id, purpose,
				   store_now() + CHALLENGE_TTL);
	if (r == 0)
		r = ident_b64url_encode(ch, sizeof(ch), out, B64_SIZE(32));
	return r;
}

static int add_descriptor(const struct store_wa_cred *cr, void *ud)
{
	json_t *d = json_pack("{s:s, s:o}", "type", "public-key", "id", b64(cr->id, cr->id_len));

	return !d || json_array_append_new(ud, d) < 0 ? -ENOMEM : 0;
}

/* ---- registration ------------------------------------------------------ */

void api_wa_register_options(struct api_call *c)
{
	char rp_id[256], origin[300], ch[B64_SIZE(32)];
	uint8_t uid[8];
	json_t *exclude = json_array(), *o;
	int r;

	if (!relying_party(c, rp_id, origin))
		goto out;
	for (int i = 0; i < 8; i++)
		uid[i] = (uint8_t)((uint64_t)c->who->user_id >> (56 - 8 * i));
	if (!exclude ||
	    (r = store_wa_cred_foreach(c->ctx->store, c->who->user_id, add_descriptor, exclude)) <
		    0 ||
	    (r = new_challenge(c, c->who->user_id, PURPOSE_REG, ch)) < 0) {
		api_store_error(c->resp, exclude ? r : -ENOMEM, "passkeys");
		goto out;
	}
	o = json_pack("{s:s, s:{s:s, s:s}, s:{s:o, s:s, s:s}, s:[{s:s, s:i}, {s:s, s:i}],"
		      " s:{s:s, s:b, s:s}, s:s, s:i, s:O}",
		      "challenge", ch, "rp", "id", rp_id, "name", "bastion", "user", "id",
		      b64(uid, sizeof(uid)), "name", c->who->name, "displayName", c->who->name,
		      "pubKeyCredParams", "type", "public-key", "alg", IDENT_WA_ALG_ES256, "type",
		      "public-key", "alg", IDENT_WA_ALG_EDDSA, "authenticatorSelection",
		      "residentKey", "required", "requireResidentKey", 1, "userVerification",
		      "preferred", "attestation", "none", "timeout", CEREMONY_MS,
		      "excludeCredentials", exclude);
	api_header(c->resp, "Cache-Control", "no-store");
	api_json(c->resp, 200, o);
out:
	json_decref(exclude);
}

void api_wa_register(struct api_call *c)
{
	static struct ident_wa_cred cred_zero;
	struct ident_wa_cred cred = cred_zero;
	struct store_wa_cred sc;
	uint8_t cd[IDENT_WA_MAX_INPUT], att[IDENT_WA_MAX_INPUT], ch[IDENT_WA_CHALLENGE_BYTES];
	char rp_id[256], origin[300], principal[80];
	size_t cd_len = 0, att_len = 0;
	int64_t uid = 0;
	json_t *detail;
	char *text;
	int r;

	if (!relying_party(c, rp_id, origin) ||
	    !b64_field(c, c->body, "clientDataJSON", cd, sizeof(cd), &cd_len) ||
	    !b64_field(c, c->body, "attestationObject", att, sizeof(att), &att_len))
		return;
	r = ident_wa_client_data(cd, cd_len, "webauthn.create", origin, ch);
	if (r == 0) {
		r = store_wa_challenge_take(c->ctx->store, ch, PURPOSE_REG, store_now(), &uid);
		if (r == 0 && uid != c->who->user_id)
			r = -EACCES;
		if (r == -ENOENT)
			r = -EACCES;
	}
	if (r == 0)
		r = ident_wa_attestation(att, att_len, rp_id, false, &cred);
	if (r == -ENOTSUP) {
		api_error(c->resp, 400, "InvalidRequest",
			  "only attestation \"none\" and ES256 or EdDSA keys are accepted");
		return;
	}
	if (r == -EACCES || r == -EINVAL) {
		api_error(c->resp, 400, "WebAuthnInvalid",
			  "the registration does not verify (challenge, origin, RP ID or flags)");
		return;
	}
	if (r < 0) {
		api_store_error(c->resp, r, "passkeys");
		return;
	}
	memset(&sc, 0, sizeof(sc));
	memcpy(sc.id, cred.id, cred.id_len);
	sc.id_len = cred.id_len;
	sc.user_id = c->who->user_id;
	sc.alg = cred.alg;
	memcpy(sc.pk, cred.pk, cred.pk_len);
	sc.pk_len = cred.pk_len;
	sc.sign_count = cred.sign_count;
	if ((r = store_wa_cred_add(c->ctx->store, &sc)) == -EEXIST) {
		api_error(c->resp, 409, "ResourceExists", "this passkey is already registered");
		return;
	}
	if (r < 0) {
		api_store_error(c->resp, r, "passkeys");
		return;
	}
	snprintf(principal, sizeof(principal), "user:%s", c->who->name);
	detail = json_pack("{s:o, s:i}", "credential",
			   b64(cred.id, cred.id_len > 8 ? 8 : cred.id_len), "alg", cred.alg);
	text = detail ? json_dumps(detail, JSON_COMPACT) : NULL;
	api_audit(c, principal, "auth.mfa.passkey-register", principal, "success", text);
	free(text);
	json_decref(detail);
	api_json(c->resp, 201, json_pack("{s:o}", "id", b64(cred.id, cred.id_len)));
}

/* ---- assertions -------------------------------------------------------- */

void api_wa_login_options(struct api_call *c)
{
	char rp_id[256], origin[300], ch[B64_SIZE(32)];
	const char *name = json_string_value(c->body ? json_object_get(c->body, "username") : NULL);
	json_t *allow = json_array();
	struct store_user u;
	int r = 0;

	if (!relying_party(c, rp_id, origin))
		goto out;
	if (!allow) {
		api_store_error(c->resp, -ENOMEM, "passkeys");
		goto out;
	}
	/* With a name (the second step of a password sign-in): its
	 * credentials. An unknown name gets an empty list, as a known one
	 * without passkeys does. */
	if (name && val_name(name) && store_user_get(c->ctx->store, name, &u) == 0)
		r = store_wa_cred_foreach(c->ctx->store, u.id, add_descriptor, allow);
	if (r == 0)
		r = new_challenge(c, 0, PURPOSE_LOGIN, ch);
	if (r < 0) {
		api_store_error(c->resp, r, "passkeys");
		goto out;
	}
	api_header(c->resp, "Cache-Control", "no-store");
	api_json(c->resp, 200,
		 json_pack("{s:s, s:s, s:s, s:i, s:O}", "challenge", ch, "rpId", rp_id,
			   "userVerification", "preferred", "timeout", CEREMONY_MS,
			   "allowCredentials", allow));
out:
	json_decref(allow);
}

/* Verifies the assertion in a (a JSON object) for a user: want_user 0 for
 * anyone (the credential decides), require_uv for a password-less
 * sign-in. 0 and *ret_user_id; -EACCES for anything that does not verify
 * (the audit is written here for a sign count that went backwards);
 * -EINVAL when malformed; store errors. */
static int check_assertion(struct api_call *c, json_t *a, int64_t want_user, bool require_uv,
			   int64_t *ret_user_id)
{
	uint8_t id[IDENT_WA_CRED_ID_MAX], cd[IDENT_WA_MAX_INPUT], ad[IDENT_WA_MAX_INPUT];
	uint8_t sig[1024], ch[IDENT_WA_CHALLENGE_BYTES];
	char rp_id[256], origin[300], principal[80];
	size_t id_len = 0, cd_len = 0, ad_len = 0, sig_len = 0;
	struct store_wa_cred cred;
	struct store_user u;
	uint32_t count = 0;
	int64_t ignored = 0;
	int r;

	if (!json_is_object(a) || !relying_party(c, rp_id, origin))
		return -EINVAL;
	if (ident_b64url_decode(json_string_value(json_object_get(a, "id")), id, sizeof(id),
				&id_len) < 0 ||
	    ident_b64url_decode(json_string_value(json_object_get(a, "clientDataJSON")), cd,
				sizeof(cd), &cd_len) < 0 ||
	    ident_b64url_decode(json_string_value(json_object_get(a, "authenticatorData")), ad,
				sizeof(ad), &ad_len) < 0 ||
	    ident_b64url_decode(json_string_value(json_object_get(a, "signature")), sig,
				sizeof(sig), &sig_len) < 0)
		return -EINVAL;
	if ((r = ident_wa_client_data(cd, cd_len, "webauthn.get", origin, ch)) < 0)
		return r == -EINVAL ? -EINVAL : -EACCES;
	/* The challenge first: a replayed assertion dies here, whatever else. */
	if ((r = store_wa_challenge_take(c->ctx->store, ch, PURPOSE_LOGIN, store_now(), &ignored)) <
	    0)
		return r == -ENOENT ? -EACCES : r;
	if ((r = store_wa_cred_get(c->ctx->store, id, id_len, &cred)) < 0)
		return r == -ENOENT ? -EACCES : r;
	if (want_user && cred.user_id != want_user)
		return -EACCES;
	/* A discoverable credential names its user too: it must be the
	 * credential's owner (8 bytes, big-endian, as registered). */
	const char *uh = json_string_value(json_object_get(a, "userHandle"));
	if (uh && uh[0]) {
		uint8_t handle[64];
		size_t hl = 0;
		uint64_t v = 0;

		if (ident_b64url_decode(uh, handle, sizeof(handle), &hl) < 0 || hl != 8)
			return -EACCES;
		for (size_t i = 0; i < 8; i++)
			v = (v << 8) | handle[i];
		if ((int64_t)v != cred.user_id)
			return -EACCES;
	}
	r = ident_wa_assertion((int)cred.alg, cred.pk, cred.pk_len, ad, ad_len, cd, cd_len, sig,
			       sig_len, rp_id, require_uv, &count);
	if (r < 0)
		return r == -EINVAL ? -EINVAL : -EACCES;
	if (!ident_wa_count_ok((uint32_t)cred.sign_count, count)) {
		/* A counter that did not grow: two copies of one
		 * authenticator may exist. Refused and audited. */
		if (store_user_get_by_id(c->ctx->store, cred.user_id, &u) == 0)
			snprintf(principal, sizeof(principal), "user:%s", u.name);
		else
			util_strlcpy(principal, "user:?", sizeof(principal));
		char detail[160];
		snprintf(detail, sizeof(detail),
			 "{\"source\":\"%.64s\",\"stored_count\":%lld,\"seen_count\":%u}",
			 c->req->remote_addr, (long long)cred.sign_count, count);
		api_audit(c, principal, "auth.passkey.clone-suspected", principal, "refused",
			  detail);
		return -EACCES;
	}
	if (count != 0 &&
	    (r = store_wa_cred_count_set(c->ctx->store, id, id_len, cred.sign_count, count)) < 0)
		return r == -EALREADY ? -EACCES : r;
	*ret_user_id = cred.user_id;
	return 0;
}

int api_wa_second_factor(struct api_call *c, int64_t user_id, json_t *assertion)
{
	int64_t got = 0;

	return check_assertion(c, assertion, user_id, false, &got);
}

void api_wa_login(struct api_call *c)
{
	struct ident_throttle th;
	struct ident_session sess;
	struct store_user u;
	char principal[80], detail[128];
	int64_t uid = 0;
	int r;

	memset(&sess, 0, sizeof(sess));
	if ((r = api_throttle_hold(c, NULL, &th)) != 0) {
		if (r > 0)
			api_error(c->resp, 429, "TooManyRequests",
				  "too many failed sign-ins from %s; try again in %lld seconds",
				  c->req->remote_addr, (long long)th.retry_after);
		return;
	}
	r = check_assertion(c, c->body, 0, true, &uid);
	if (r == 0 && (r = store_user_get_by_id(c->ctx->store, uid, &u)) == 0 && u.disabled)
		r = -EACCES;
	snprintf(detail, sizeof(detail), "{\"source\":\"%.64s\",\"method\":\"passkey\"}",
		 c->req->remote_addr);
	if (r == -EACCES || r == -EINVAL || r == -ENOENT) {
		if (c->resp->status)
			return; /* relying_party answered */
		ident_throttle_failure(c->ctx->store, NULL, c->req->remote_addr, store_now());
		api_audit(c, "user:?", "auth.login", "user:?", "failure", detail);
		api_error(c->resp, 401, "Unauthenticated", "the passkey was not accepted");
		return;
	}
	if (r < 0) {
		api_store_error(c->resp, r, "sign-in");
		return;
	}
	if ((r = ident_mfa_session_open(c->ctx->store, u.id, u.name, &sess)) < 0) {
		api_store_error(c->resp, r, "sign-in");
		goto out;
	}
	ident_throttle_success(c->ctx->store, u.name, c->req->remote_addr, store_now());
	snprintf(principal, sizeof(principal), "user:%s", u.name);
	api_audit(c, principal, "auth.login", principal, "success", detail);
	api_signed_in(c, &sess, false);
out:
	sodium_memzero(&sess, sizeof(sess));
	sodium_memzero(&u, sizeof(u));
}
