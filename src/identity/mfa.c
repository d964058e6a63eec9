/* Second factors: the decisions that read the store (what a user has
 * enrolled, checking the "otp" of a sign-in and marking it used, the
 * restriction of auth.require_mfa, trusting an OpenID provider's amr/acr).
 * The arithmetic is in totp.c; the sealed key is opened by the caller. */
#include "identity/mfa.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "identity/ident.h"
#include "store/store.h"

int ident_mfa_factors(struct store *s, int64_t user_id, struct ident_mfa_factors *ret)
{
	struct store_mfa m;
	int r = store_mfa_get(s, user_id, &m);

	if (r < 0 && r != -ENOENT)
		return r;
	memset(ret, 0, sizeof(*ret));
	ret->totp = r == 0 && m.totp_confirmed;
	ret->totp_pending = r == 0 && !m.totp_confirmed;
	ret->recovery_left = (int)m.recovery_left;
	ret->passkeys = (int)m.passkeys;
	free(m.totp_sealed);
	return 0;
}

/* Does otp look like a TOTP code (digits and spaces only)? */
static bool looks_like_totp(const char *otp)
{
	bool digit = false;

	for (const char *p = otp; *p; p++) {
		if (*p >= '0' && *p <= '9')
			digit = true;
		else if (*p != ' ')
			return false;
	}
	return digit;
}

int ident_mfa_check_otp(struct store *s, int64_t user_id, const uint8_t *totp_key, size_t key_len,
			const char *otp, int64_t now, bool *ret_recovery)
{
	struct store_mfa m;
	uint8_t hash[32];
	int64_t step = 0;
	int r;

	*ret_recovery = false;
	if (!otp || !otp[0] || strlen(otp) > IDENT_OTP_MAX)
		return -EACCES;
	if (looks_like_totp(otp)) {
		if (!totp_key)
			return -EACCES;
		if ((r = store_mfa_get(s, user_id, &m)) < 0)
			return r == -ENOENT ? -EACCES : r;
		free(m.totp_sealed);
		if (!m.totp_confirmed)
			return -EACCES;
		r = ident_totp_check(totp_key, key_len, otp, now, m.totp_last_step, &step);
		if (r < 0)
			return -EACCES;
		/* The step is claimed in the store, not here: another instance
		 * may have taken the same code a moment ago. */
		r = store_mfa_totp_use(s, user_id, step);
		return r == -EALREADY || r == -ENOENT ? -EACCES : r;
	}
	if (ident_recovery_hash(otp, hash) < 0)
		return -EACCES;
	r = store_mfa_recovery_use(s, user_id, hash);
	sodium_memzero(hash, sizeof(hash));
	if (r == 0)
		*ret_recovery = true;
	return r == -ENOENT ? -EACCES : r;
}

bool ident_mfa_oidc_satisfied(bool trust_amr, const char *const *amr, size_t n, const char *acr,
			      const char *mfa_acr)
{
	/* RFC 8176 values that name a second factor (or a proof of
	 * possession the provider checked besides something else). */
	static const char *const strong[] = { "mfa", "otp",  "hwk", "swk", "sc",
					      "fpt", "face", "pin", "sms", "tel" };

	if (mfa_acr && mfa_acr[0] && acr && strcmp(acr, mfa_acr) == 0)
		return true;
	if (!trust_amr || !amr)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!amr[i])
			continue;
		for (size_t k = 0; k < sizeof(strong) / sizeof(strong[0]); k++)
			if (strcmp(amr[i], strong[k]) == 0)
				return true;
	}
	return false;
}

enum ident_mfa_gate ident_mfa_gate(struct store *s, bool require, int64_t user_id,
				   const uint8_t *session_hash, int *ret_err)
{
	struct ident_mfa_factors f;
	char via[17];
	bool marked = false;
	int r;

	*ret_err = 0;
	if (session_hash) {
		r = store_login_mfa_via(s, session_hash, via);
		if (r < 0 && r != -ENOENT) {
			*ret_err = r;
			return IDENT_MFA_VERIFY;
		}
		/* Pending first: the user has a factor, so require_mfa alone
		 * would let the session through. */
		if (r == 0 && strcmp(via, STORE_MFA_PENDING) == 0)
			return IDENT_MFA_VERIFY;
		marked = r == 0;
	}
	if (!require)
		return IDENT_MFA_OPEN;
	if ((r = ident_mfa_factors(s, user_id, &f)) < 0) {
		*ret_err = r;
		return IDENT_MFA_ENROL;
	}
	if (f.totp || f.passkeys > 0 || marked)
		return IDENT_MFA_OPEN;
	return IDENT_MFA_ENROL;
}

bool ident_mfa_restricted(struct store *s, bool require, int64_t user_id,
			  const uint8_t *session_hash, int *ret_err)
{
	return ident_mfa_gate(s, require, user_id, session_hash, ret_err) != IDENT_MFA_OPEN;
}

int ident_mfa_oidc_decide(struct store *s, bool require, int64_t user_id, bool trust_amr,
			  const char *const *amr, size_t n, const char *acr, const char *mfa_acr,
			  enum ident_oidc_mfa *ret)
{
	struct ident_mfa_factors f;
	int r;

	if (ident_mfa_oidc_satisfied(trust_amr, amr, n, acr, mfa_acr)) {
		*ret = IDENT_OIDC_MFA_PROVIDER;
		return 0;
	}
	if ((r = ident_mfa_factors(s, user_id, &f)) < 0)
		return r;
	/* A TOTP key enrolled but not confirmed is no factor yet: its owner
	 * may not have it in an app. */
	if (f.totp || f.passkeys > 0)
		*ret = IDENT_OIDC_MFA_VERIFY;
	else
		*ret = require ? IDENT_OIDC_MFA_ENROL : IDENT_OIDC_MFA_NONE;
	return 0;
}

int ident_mfa_session_pending(struct store *s, const struct ident_session *sess)
{
	return ident_mfa_session_mark(s, sess, STORE_MFA_PENDING);
}

int ident_mfa_session_mark(struct store *s, const struct ident_session *sess, const char *via)
{
	uint8_t hash[32];
	int r;

	util_sha256_str(sess->token, hash);
	r = store_login_mfa_mark(s, hash, via);
	sodium_memzero(hash, sizeof(hash));
	return r;
}

int ident_mfa_session_open(struct store *s, int64_t user_id, const char *name,
			   struct ident_session *ret)
{
	struct ident_session sess;
	uint8_t hash[32];
	int r;

	memset(&sess, 0, sizeof(sess));
	util_random_token(sess.token, sizeof(sess.token), IDENT_TOKEN_BYTES);
	util_random_token(sess.csrf, sizeof(sess.csrf), IDENT_TOKEN_BYTES);
	sess.user_id = user_id;
	util_strlcpy(sess.name, name, sizeof(sess.name));
	sess.expires_at = store_now() + IDENT_SESSION_TTL;
	util_sha256_str(sess.token, hash);
	if ((r = store_login_add(s, hash, user_id, sess.csrf, sess.expires_at)) == 0) {
		store_login_trim(s, user_id, IDENT_MAX_SESSIONS);
		*ret = sess;
	}
	sodium_memzero(&sess, sizeof(sess));
	return r;
}
