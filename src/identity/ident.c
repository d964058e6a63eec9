/* Identity: Argon2id passwords, the first account, browser sessions and API
 * tokens. Secrets handed to clients (session cookies, API tokens) are stored
 * only as their SHA-256; a lookup by that hash reveals nothing useful through
 * timing, and the CSRF token is compared in constant time. */
#include "identity/ident.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "core/gate.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/util.h"
#include "store/store.h"

#define BOOTSTRAP_USER    "admin"
#define BOOTSTRAP_ROLE_ID "bootstrap-admin-owner"

/* An Argon2id hash with the same limits as real ones, of a password nobody
 * knows: a login for an unknown user verifies against it, so that the answer
 * takes as long as for a known user. */
static const char dummy_hash[] = "$argon2id$v=19$m=65536,t=2,p=1$rwsonLHwd0aOeli+8O3Q0g$"
				 "ijynLRjY2GzchpT8QzVgjP5OJl/FmdjK82bL0JtCQ74";

/* Every Argon2id hash and verification of a request holds a place here:
 * see ident.h. */
static struct gate hash_gate = GATE_INIT(0);

struct gate *ident_hash_gate(void)
{
	return &hash_gate;
}

static int sodium_ready(void)
{
	/* Idempotent and thread-safe; picks the fast Argon2 implementation. */
	return sodium_init() < 0 ? -ENOMEM : 0;
}

/* The hash itself; the caller holds a place in the gate. */
static int hash_inside(const char *password, char *ret_hash, size_t hash_size)
{
	char hash[crypto_pwhash_STRBYTES];
	int r;

	if (hash_size < sizeof(hash))
		return -E2BIG;
	if ((r = sodium_ready()) < 0)
		return r;
	if (crypto_pwhash_str(hash, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
			      crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
		return -ENOMEM;
	memcpy(ret_hash, hash, sizeof(hash));
	return 0;
}

static int verify_inside(const char *hash, const char *password)
{
	if (sodium_ready() < 0)
		return -EACCES;
	if (crypto_pwhash_str_verify(hash, password, strlen(password)) != 0)
		return -EACCES;
	return 0;
}

int ident_password_hash(const char *password, char *ret_hash, size_t hash_size)
{
	int r;

	if (hash_size < crypto_pwhash_STRBYTES)
		return -E2BIG;
	if (gate_try_enter(&hash_gate) < 0)
		return -EBUSY;
	r = hash_inside(password, ret_hash, hash_size);
	gate_leave(&hash_gate);
	return r;
}

int ident_password_verify(const char *hash, const char *password)
{
	int r;

	if (gate_try_enter(&hash_gate) < 0)
		return -EBUSY;
	r = verify_inside(hash, password);
	gate_leave(&hash_gate);
	return r;
}

/* Verifies inside the gate; with at, charges the attempt to the throttle
 * first and gives the charge back when the password matched. */
static int verify_counted(struct store *s, const char *hash, const char *password,
			  const struct ident_attempt *at)
{
	struct ident_charge charge;
	int r;

	memset(&charge, 0, sizeof(charge));
	if (gate_try_enter(&hash_gate) < 0)
		return -EBUSY;
	/* Fail closed: an attempt the store cannot count is not checked. */
	if (at &&
	    (r = ident_throttle_charge(s, at->account, at->remote_addr, store_now(), &charge)) < 0)
		goto out;
	r = verify_inside(hash, password);
	if (r == 0 && at && ident_throttle_refund(s, at->remote_addr, &charge) < 0)
		log_warn("identity: could not give back a successful attempt's throttle charge");
out:
	gate_leave(&hash_gate);
	return r;
}

int ident_password_verify_counted(struct store *s, const char *hash, const char *password,
				  const struct ident_attempt *at)
{
	return verify_counted(s, hash, password, at);
}

int ident_password_check(const char *password)
{
	size_t bytes = 0, chars = 0;

	if (!password)
		return -EINVAL;
	for (const unsigned char *p = (const unsigned char *)password; *p; p++) {
		if (++bytes > IDENT_MAX_PASSWORD)
			return -EINVAL;
		/* Count UTF-8 code points: every byte but continuation bytes. */
		if ((*p & 0xc0) != 0x80)
			chars++;
	}
	return chars >= IDENT_MIN_PASSWORD ? 0 : -EINVAL;
}

int ident_bootstrap(struct store *s, const char *env_password, char **ret_generated)
{
	char hash[IDENT_HASH_SIZE];
	char *generated = NULL;
	const char *password;
	int64_t n = 0;
	int r;

	if ((r = store_user_count(s, &n)) < 0)
		return r;
	if (n > 0)
		return 0;
	if (env_password) {
		if (ident_password_check(env_password) < 0)
			return -EINVAL;
		password = env_password;
	} else {
		/* 18 random bytes are exactly 24 base64url characters. */
		size_t len = util_token_len(IDENT_ADMIN_PASSWORD_LEN * 3 / 4);

		generated = malloc(len + 1);
		if (!generated)
			return -ENOMEM;
		util_random_token(generated, len + 1, IDENT_ADMIN_PASSWORD_LEN * 3 / 4);
		password = generated;
	}
	if ((r = ident_password_hash(password, hash, sizeof(hash))) < 0)
		goto out;
	r = store_user_create_first(s, BOOTSTRAP_USER, hash, BOOTSTRAP_ROLE_ID, "Owner", "/");
	if (r == -EEXIST) {
		/* Another instance on the same store was first. */
		r = 0;
		goto out;
	}
	if (r < 0)
		goto out;
	if (store_audit(s, "system", "user.create", "user:" BOOTSTRAP_USER, "success", NULL) < 0)
		log_warn("identity: could not audit the creation of the first account");
	if (generated && ret_generated) {
		*ret_generated = generated;
		generated = NULL;
	}
	r = 0;
out:
	sodium_memzero(hash, sizeof(hash));
	util_free_secret(generated);
	return r;
}

int ident_cookie_value(const char *cookie_header, const char *name, char *out, size_t out_size)
{
	size_t nlen = strlen(name);
	const char *p = cookie_header;

	if (!p || nlen == 0 || out_size == 0)
		return -ENOENT;
	while (*p) {
		const char *end = strchr(p, ';'), *eq, *k, *ke, *v, *ve;

		if (!end)
			end = p + strlen(p);
		k = p;
		p = *end ? end + 1 : end;
		while (k < end && (*k == ' ' || *k == '\t'))
			k++;
		eq = memchr(k, '=', (size_t)(end - k));
		if (!eq)
			continue;
		ke = eq;
		while (ke > k && (ke[-1] == ' ' || ke[-1] == '\t'))
			ke--;
		if ((size_t)(ke - k) != nlen || memcmp(k, name, nlen) != 0)
			continue;
		v = eq + 1;
		ve = end;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		if (ve - v >= 2 && *v == '"' && ve[-1] == '"') {
			v++;
			ve--;
		}
		/* The first cookie of that name decides (the browser sends the
		 * most specific one first). */
		if (ve == v)
			return -ENOENT;
		if ((size_t)(ve - v) >= out_size)
			return -E2BIG;
		memcpy(out, v, (size_t)(ve - v));
		out[ve - v] = '\0';
		return 0;
	}
	return -ENOENT;
}

int ident_session_hash(const struct ident_creds *req, uint8_t out[32])
{
	char token[IDENT_TOKEN_SIZE];
	int r;

	r = ident_cookie_value(req->cookie, IDENT_COOKIE, token, sizeof(token));
	if (r < 0)
		return -ENOENT;
	util_sha256_str(token, out);
	sodium_memzero(token, sizeof(token));
	return 0;
}

static bool is_bearer(const char *authorization)
{
	return authorization && strncasecmp(authorization, "Bearer", 6) == 0 &&
	       (authorization[6] == ' ' || authorization[6] == '\t');
}

/* The hash of the token in an Authorization header's "Bearer" value, or
 * -ENOENT when req carries none. */
static int bearer_hash(const struct ident_creds *req, uint8_t hash[32])
{
	const char *value = req->authorization;
	char token[IDENT_TOKEN_SIZE];
	size_t len;

	if (!is_bearer(value))
		return -ENOENT;
	value += 7;
	while (*value == ' ' || *value == '\t')
		value++;
	len = strlen(value);
	while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t'))
		len--;
	if (len == 0 || len >= sizeof(token))
		return -ENOENT;
	memcpy(token, value, len);
	token[len] = '\0';
	util_sha256_str(token, hash);
	sodium_memzero(token, sizeof(token));
	return 0;
}

int ident_bearer_hash(const struct ident_creds *req, uint8_t out[32])
{
	return bearer_hash(req, out);
}

static int auth_bearer(struct store *s, const struct ident_creds *req, struct principal *ret)
{
	struct store_token t;
	uint8_t hash[32];
	int r;

	if (bearer_hash(req, hash) < 0)
		return -ENOENT;
	/* The token and its owner come in one read (one round trip). */
	r = store_token_lookup(s, hash, &t);
	if (r < 0)
		return r;
	if (t.expires_at <= store_now() || t.user_disabled)
		return -ENOENT;
	memset(ret, 0, sizeof(*ret));
	ret->user_id = t.user_id;
	util_strlcpy(ret->name, t.user, sizeof(ret->name));
	ret->via_cookie = false;
	util_strlcpy(ret->token_id, t.id, sizeof(ret->token_id));
	util_strlcpy(ret->token_scope, t.scope, sizeof(ret->token_scope));
	/* The time of last use is for the owner's list; a failure to write it
	 * does not refuse the call. */
	/* Checked here first: a busy script's calls take no write lock. */
	if (t.id[0] && t.last_used_at < store_now() - IDENT_TOKEN_TOUCH_GAP &&
	    store_token_touch(s, t.id, store_now(), IDENT_TOKEN_TOUCH_GAP) < 0)
		log_warn("identity: could not record the use of API token %s", t.id);
	return 0;
}

static int auth_cookie(struct store *s, const struct ident_creds *req, struct principal *ret)
{
	struct principal p;
	struct store_login l;
	uint8_t hash[32];
	int r;

	if (ident_session_hash(req, hash) < 0)
		return -ENOENT;
	/* The session and its user come in one read (one round trip). */
	r = store_login_lookup(s, hash, &l);
	if (r < 0)
		return r;
	if (l.expires_at <= store_now()) {
		store_login_delete(s, hash);
		r = -ENOENT;
		goto out;
	}
	if (l.user_disabled) {
		r = -ENOENT;
		goto out;
	}
	memset(&p, 0, sizeof(p));
	p.user_id = l.user_id;
	util_strlcpy(p.name, l.user, sizeof(p.name));
	p.via_cookie = true;
	util_strlcpy(p.csrf, l.csrf, sizeof(p.csrf));
	*ret = p;
	r = 0;
out:
	sodium_memzero(&l, sizeof(l));
	sodium_memzero(&p, sizeof(p));
	return r;
}

int ident_authenticate(struct store *s, const struct ident_creds *req, struct principal *ret)
{
	/* A script's token decides alone: mixing it with a browser's cookie
	 * would make the CSRF rules depend on which one happened to win. */
	if (is_bearer(req->authorization))
		return auth_bearer(s, req, ret);
	if (req->cookie)
		return auth_cookie(s, req, ret);
	return -ENOENT;
}

int ident_login(struct store *s, const char *name, const char *password, struct ident_session *ret)
{
	return ident_login_counted(s, name, password, NULL, ret);
}

int ident_login_counted(struct store *s, const char *name, const char *password,
			struct ident_attempt *at, struct ident_session *ret)
{
	struct store_user u;
	struct ident_session sess;
	const char *hash = dummy_hash;
	uint8_t token_hash[32];
	bool found = false, ok;
	int r;

	memset(&u, 0, sizeof(u));
	memset(&sess, 0, sizeof(sess));
	if (!name || !password || strlen(password) > IDENT_MAX_PASSWORD)
		password = NULL;
	else if ((r = store_user_get(s, name, &u)) == 0)
		found = true;
	else if (r != -ENOENT)
		goto out;
	if (found)
		hash = u.password_hash;
	if (at)
		at->known = found;
	/* Always one verification, so that timing does not tell whether the
	 * user exists, is disabled, or sent an oversized password. */
	r = verify_counted(s, hash, password ? password : "", at);
	if (r == -EBUSY)
		metrics_signin_failure("busy");
	if (r < 0 && r != -EACCES)
		goto out; /* the gate was full or the attempt could not be counted */
	ok = r == 0;
	if (!found || !ok || !password || u.disabled) {
		metrics_signin_failure(!found             ? "unknown_user"
				       : !ok || !password ? "bad_password"
							  : "disabled");
		r = -EACCES;
		goto out;
	}
	if (crypto_pwhash_str_needs_rehash(u.password_hash, crypto_pwhash_OPSLIMIT_INTERACTIVE,
					   crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
		char fresh[IDENT_HASH_SIZE];

		/* The limits changed since this hash was made: upgrade it now
		 * that the password is at hand. Failure only delays that. */
		if (ident_password_hash(password, fresh, sizeof(fresh)) == 0)
			store_user_put(s, u.name, fresh, NULL, NULL);
		sodium_memzero(fresh, sizeof(fresh));
	}

	/* Expired sessions and tokens are deleted by the housekeeping timer
	 * (ident_housekeep), not here: a sign-in pays no round trips for it. */
	util_random_token(sess.token, sizeof(sess.token), IDENT_TOKEN_BYTES);
	util_random_token(sess.csrf, sizeof(sess.csrf), IDENT_TOKEN_BYTES);
	sess.user_id = u.id;
	util_strlcpy(sess.name, u.name, sizeof(sess.name));
	sess.expires_at = store_now() + IDENT_SESSION_TTL;
	util_sha256_str(sess.token, token_hash);
	if ((r = store_login_add(s, token_hash, u.id, sess.csrf, sess.expires_at)) < 0)
		goto out;
	/* Bound the sessions one account can pile up. */
	store_login_trim(s, u.id, IDENT_MAX_SESSIONS);
	*ret = sess;
	r = 0;
out:
	sodium_memzero(&u, sizeof(u));
	sodium_memzero(&sess, sizeof(sess));
	return r;
}

int ident_logout(struct store *s, const struct ident_creds *req)
{
	uint8_t hash[32];

	if (bearer_hash(req, hash) == 0)
		return store_token_delete(s, hash);
	if (ident_session_hash(req, hash) < 0)
		return -ENOENT;
	return store_login_delete(s, hash);
}

int ident_token_create(struct store *s, int64_t user_id, const char *name, int64_t ttl,
		       char ret_token[IDENT_TOKEN_SIZE], int64_t *ret_expires_at)
{
	struct store_token t;
	int r = ident_token_create_scoped(s, user_id, name, IDENT_SCOPE_ALL, ttl, ret_token, &t);

	if (r == 0)
		*ret_expires_at = t.expires_at;
	return r;
}

bool ident_csrf_ok(const struct principal *who, const char *header)
{
	if (!who || !who->via_cookie || !header || !who->csrf[0])
		return false;
	return util_streq_ct(header, who->csrf);
}

bool ident_method_safe(const char *method)
{
	return method && (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0);
}

bool ident_origin_is_own(const struct ident_creds *req)
{
	static const char scheme[] = "https://";

	if (!req->origin || !req->host)
		return false;
	/* Compared in place: a formatted copy could be clamped. */
	return strncmp(req->origin, scheme, sizeof(scheme) - 1) == 0 &&
	       strcmp(req->origin + sizeof(scheme) - 1, req->host) == 0;
}

bool ident_origin_ok(const struct ident_creds *req)
{
	if (ident_method_safe(req->method) || !req->origin)
		return true;
	return ident_origin_is_own(req);
}

bool ident_csrf_passes(const struct principal *who, const struct ident_creds *req)
{
	if (!who->via_cookie || ident_method_safe(req->method))
		return true;
	return req->csrf_token && util_streq_ct(req->csrf_token, who->csrf);
}
