/* OpenID Connect sign-in (identity/oidc.h): the provider's discovery
 * document and JWKS (fetched with libcurl and cached), the two halves of
 * the authorization code flow with PKCE, and the ID token's verification
 * with libcjose (JWS against a JWK). Runs on worker threads only: every
 * call to the provider blocks, with a 5 s connect and a 10 s total
 * timeout and a cap on what it may answer. */
#include "identity/oidc.h"

#include <cjose/cjose.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "core/util.h"
#include "identity/ident.h"
#include "store/store.h"

struct oidc {
	char *issuer, *client_id, *client_secret, *redirect_url, *ca_file;
	char *username_claim, *groups_claim;
	pthread_mutex_t mu; /* guards what follows */
	json_t *disc;       /* the discovery document, or NULL */
	int64_t disc_at;
	json_t *jwks; /* the "keys" array, or NULL */
	int64_t jwks_at;
};

static char *dup_or_null(const char *s)
{
	return s && s[0] ? strdup(s) : NULL;
}

int oidc_new(const struct oidc_config *cfg, struct oidc **ret)
{
	struct oidc *o;

	if (!cfg->issuer || !cfg->issuer[0] || !cfg->client_id || !cfg->client_id[0] ||
	    !cfg->redirect_url || !cfg->redirect_url[0])
		return -EINVAL;
	/* Once, before any worker uses curl (it is not thread-safe). */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -ENOMEM;
	if (!(o = calloc(1, sizeof(*o))))
		return -ENOMEM;
	pthread_mutex_init(&o->mu, NULL);
	o->issuer = strdup(cfg->issuer);
	o->client_id = strdup(cfg->client_id);
	o->client_secret = dup_or_null(cfg->client_secret);
	o->redirect_url = strdup(cfg->redirect_url);
	o->ca_file = dup_or_null(cfg->ca_file);
	o->username_claim =
		strdup(cfg->username_claim && cfg->username_claim[0] ? cfg->username_claim
								     : "preferred_username");
	o->groups_claim = dup_or_null(cfg->groups_claim);
	if (!o->issuer || !o->client_id || !o->redirect_url || !o->username_claim ||
	    (cfg->client_secret && cfg->client_secret[0] && !o->client_secret)) {
		oidc_free(o);
		return -ENOMEM;
	}
	*ret = o;
	return 0;
}

void oidc_free(struct oidc *o)
{
	if (!o)
		return;
	free(o->issuer);
	free(o->client_id);
	util_free_secret(o->client_secret);
	free(o->redirect_url);
	free(o->ca_file);
	free(o->username_claim);
	free(o->groups_claim);
	json_decref(o->disc);
	json_decref(o->jwks);
	pthread_mutex_destroy(&o->mu);
	free(o);
}

void oidc_result_done(struct oidc_result *r)
{
	free(r->issuer);
	free(r->subject);
	free(r->username);
	json_decref(r->groups);
	json_decref(r->amr);
	free(r->acr);
	json_decref(r->extra);
	memset(r, 0, sizeof(*r));
}

/* ---- HTTP to the provider --------------------------------------------- */

struct capped {
	char *p;
	size_t len;
	bool over;
};

static size_t on_data(char *ptr, size_t size, size_t n, void *ud)
{
	struct capped *b = ud;
	size_t add = size * n;
	char *q;

	if (add > OIDC_HTTP_MAX - b->len) {
		b->over = true;
		return 0; /* curl stops with CURLE_WRITE_ERROR */
	}
	if (!(q = realloc(b->p, b->len + add + 1)))
		return 0;
	memcpy(q + b->len, ptr, add);
	b->p = q;
	b->len += add;
	b->p[b->len] = '\0';
	return add;
}

/* GET url (form NULL) or POST form to it, with the client's credentials
 * as HTTP Basic when user is not NULL. A 200 answer that is a JSON object
 * comes back in *ret. -EIO: not reached; -EPROTO: any other answer. */
static int http_json(struct oidc *o, const char *url, const char *form, const char *user,
		     const char *pass, json_t **ret, const char **ret_reason)
{
	struct capped b = { 0 };
	struct curl_slist *hdr = NULL;
	CURL *h;
	CURLcode rc;
	long status = 0;
	json_t *v = NULL;
	int r = -EIO;

	if (!cfg_url_ok(url)) {
		*ret_reason = "the provider named an endpoint that is not https://";
		return -EPROTO;
	}
	if (!(h = curl_easy_init()))
		return -ENOMEM;
	hdr = curl_slist_append(hdr, "Accept: application/json");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "bastion/" BASTION_VERSION);
	if (o->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, o->ca_file);
	if (form) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, form);
		if (user) {
			curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
			curl_easy_setopt(h, CURLOPT_USERNAME, user);
			curl_easy_setopt(h, CURLOPT_PASSWORD, pass);
		}
	}
	rc = curl_easy_perform(h);
	if (rc != CURLE_OK) {
		if (b.over) {
			*ret_reason = "the provider's answer was too large";
			r = -EPROTO;
		} else {
			log_warn("oidc: %s: %s", url, curl_easy_strerror(rc));
			*ret_reason = "the identity provider could not be reached";
		}
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	r = -EPROTO;
	if (status != 200) {
		log_warn("oidc: %s answered HTTP %ld", url, status);
		*ret_reason = form ? "the provider refused the code exchange"
				   : "the provider answered with an error";
		goto out;
	}
	v = b.p ? json_loadb(b.p, b.len, JSON_REJECT_DUPLICATES, NULL) : NULL;
	if (!json_is_object(v)) {
		*ret_reason = "the provider's answer is not a JSON object";
		goto out;
	}
	*ret = v;
	v = NULL;
	r = 0;
out:
	json_decref(v);
	if (b.p) {
		/* A token answer holds tokens. */
		sodium_memzero(b.p, b.len);
		free(b.p);
	}
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	return r;
}

/* ---- discovery and keys ------------------------------------------------ */

/* Copies the string field of the cached discovery document; caller holds
 * o->mu. */
static char *disc_str(struct oidc *o, const char *field)
{
	const char *v = json_string_value(json_object_get(o->disc, field));

	return v ? strdup(v) : NULL;
}

struct endpoints {
	char *authorization, *token, *jwks;
	bool post_auth;    /* client_secret_post rather than _basic */
	bool groups_scope; /* the provider lists a "groups" scope */
};

static void endpoints_done(struct endpoints *e)
{
	free(e->authorization);
	free(e->token);
	free(e->jwks);
	memset(e, 0, sizeof(*e));
}

/* The endpoints of the discovery document, fetched when missing or
 * older than OIDC_DISCOVERY_TTL. */
static int discover(struct oidc *o, struct endpoints *ret, const char **ret_reason)
{
	char url[1024];
	json_t *d = NULL, *methods;
	int64_t now = store_now();
	int r = 0;
	size_t n = strlen(o->issuer);

	pthread_mutex_lock(&o->mu);
	if (!o->disc || now - o->disc_at >= OIDC_DISCOVERY_TTL) {
		pthread_mutex_unlock(&o->mu);
		/* OIDC Discovery §4: the issuer, without a trailing '/', then
		 * the well-known path. */
		snprintf(url, sizeof(url), "%.*s/.well-known/openid-configuration",
			 (int)(n && o->issuer[n - 1] == '/' ? n - 1 : n), o->issuer);
		if ((r = http_json(o, url, NULL, NULL, NULL, &d, ret_reason)) < 0)
			return r;
		/* §4.3: the document's issuer must be exactly ours, or an
		 * attacker's document could name other endpoints. */
		if (!json_is_string(json_object_get(d, "issuer")) ||
		    strcmp(json_string_value(json_object_get(d, "issuer")), o->issuer) != 0) {
			json_decref(d);
			*ret_reason =
				"the discovery document's issuer is not the configured issuer";
			return -EPROTO;
		}
		pthread_mutex_lock(&o->mu);
		json_decref(o->disc);
		o->disc = d;
		o->disc_at = now;
	}
	ret->authorization = disc_str(o, "authorization_endpoint");
	ret->token = disc_str(o, "token_endpoint");
	ret->jwks = disc_str(o, "jwks_uri");
	/* client_secret_basic is the default when the list is absent. */
	methods = json_object_get(o->disc, "token_endpoint_auth_methods_supported");
	if (json_is_array(methods)) {
		bool basic = false, post = false;
		size_t i;
		json_t *m;

		json_array_foreach (methods, i, m) {
			if (json_is_string(m) &&
			    strcmp(json_string_value(m), "client_secret_basic") == 0)
				basic = true;
			if (json_is_string(m) &&
			    strcmp(json_string_value(m), "client_secret_post") == 0)
				post = true;
		}
		ret->post_auth = post && !basic;
	}
	/* Asked for only where the provider lists it: Google and Entra ID
	 * refuse a scope they do not know, and send groups without one. */
	methods = json_object_get(o->disc, "scopes_supported");
	if (json_is_array(methods)) {
		size_t i;
		json_t *m;

		json_array_foreach (methods, i, m)
			if (json_is_string(m) && strcmp(json_string_value(m), "groups") == 0)
				ret->groups_scope = true;
	}
	pthread_mutex_unlock(&o->mu);
	if (!ret->authorization || !ret->token || !ret->jwks) {
		endpoints_done(ret);
		*ret_reason = "the discovery document lacks an endpoint";
		return -EPROTO;
	}
	return 0;
}

/* The key of the cached JWKS that kid names (any key of the right type
 * when the token names none), imported for cjose; NULL when none fits.
 * Caller holds o->mu. */
static cjose_jwk_t *jwks_find(struct oidc *o, const char *kid, cjose_jwk_kty_t kty)
{
	size_t i;
	json_t *k;
	cjose_err err;

	json_array_foreach (o->jwks, i, k) {
		const char *kk = json_string_value(json_object_get(k, "kid"));
		const char *use = json_string_value(json_object_get(k, "use"));
		char *text;
		cjose_jwk_t *jwk;

		if ((kid && (!kk || strcmp(kk, kid) != 0)) || (use && strcmp(use, "sig") != 0))
			continue;
		if (!(text = json_dumps(k, JSON_COMPACT)))
			continue;
		jwk = cjose_jwk_import(text, strlen(text), &err);
		free(text);
		if (!jwk)
			continue;
		if (cjose_jwk_get_kty(jwk, &err) == kty)
			return jwk;
		cjose_jwk_release(jwk);
	}
	return NULL;
}

/* The verification key for (kid, kty): from the cache, or after one
 * refetch of the JWKS when it is not there (a rotated key), at most once
 * every OIDC_JWKS_REFETCH seconds so that tokens naming unknown keys
 * cannot make us hammer the provider. */
static int jwks_key(struct oidc *o, const char *jwks_uri, const char *kid, cjose_jwk_kty_t kty,
		    cjose_jwk_t **ret, const char **ret_reason)
{
	json_t *set = NULL, *keys;
	int64_t now = store_now();
	int r;

	pthread_mutex_lock(&o->mu);
	if (o->jwks && (*ret = jwks_find(o, kid, kty))) {
		pthread_mutex_unlock(&o->mu);
		return 0;
	}
	if (o->jwks && now - o->jwks_at < OIDC_JWKS_REFETCH) {
		pthread_mutex_unlock(&o->mu);
		*ret_reason = "the ID token is signed with a key the provider does not publish";
		return -EPROTO;
	}
	o->jwks_at = now;
	pthread_mutex_unlock(&o->mu);
	if ((r = http_json(o, jwks_uri, NULL, NULL, NULL, &set, ret_reason)) < 0)
		return r;
	keys = json_object_get(set, "keys");
	if (!json_is_array(keys)) {
		json_decref(set);
		*ret_reason = "the provider's JWKS has no keys";
		return -EPROTO;
	}
	pthread_mutex_lock(&o->mu);
	json_decref(o->jwks);
	o->jwks = json_incref(keys);
	*ret = jwks_find(o, kid, kty);
	pthread_mutex_unlock(&o->mu);
	json_decref(set);
	if (!*ret) {
		*ret_reason = "the ID token is signed with a key the provider does not publish";
		return -EPROTO;
	}
	return 0;
}

/* ---- the flow ---------------------------------------------------------- */

static void key_of(const char *state, char out[65])
{
	uint8_t h[32];

	util_sha256_str(state, h);
	util_hex(h, sizeof(h), out);
}

/* Appends "name=escaped(value)" to a form (url empty at first: joined by
 * '&') or to a URL (its first parameter after '?'). */
static int add_param(CURL *h, char *url, size_t size, const char *name, const char *value)
{
	char *esc = curl_easy_escape(h, value, 0);
	size_t used = strlen(url);
	bool is_url = strstr(url, "://") != NULL;
	int n;

	if (!esc)
		return -ENOMEM;
	n = snprintf(url + used, size - used, "%s%s=%s",
		     used == 0 ? "" : (is_url && !strchr(url, '?') ? "?" : "&"), name, esc);
	curl_free(esc);
	return n < 0 || (size_t)n >= size - used ? -E2BIG : 0;
}

int oidc_begin(struct oidc *o, struct store *s, const json_t *extra, char **ret_url,
	       const char **ret_reason)
{
	char state[IDENT_TOKEN_SIZE], nonce[IDENT_TOKEN_SIZE], verifier[IDENT_TOKEN_SIZE];
	char challenge[44], key[65], url[4096];
	struct endpoints ep = { 0 };
	json_t *data = NULL;
	char *text = NULL;
	CURL *h = NULL;
	int r;

	*ret_reason = "the sign-in could not be started";
	if ((r = discover(o, &ep, ret_reason)) < 0)
		goto out;
	util_random_token(state, sizeof(state), 32);
	util_random_token(nonce, sizeof(nonce), 32);
	util_random_token(verifier, sizeof(verifier), 32);
	oidc_pkce_s256(verifier, challenge);
	data = json_pack("{s:s, s:s, s:o}", "nonce", nonce, "verifier", verifier, "extra",
			 extra ? json_deep_copy(extra) : json_object());
	text = data ? json_dumps(data, JSON_COMPACT) : NULL;
	if (!text) {
		r = -ENOMEM;
		goto out;
	}
	key_of(state, key);
	r = store_oidc_pending_put(s, key, "flow", text, store_now() + OIDC_FLOW_TTL, store_now(),
				   OIDC_PENDING_MAX);
	if (r < 0)
		goto out;
	if (!(h = curl_easy_init())) {
		r = -ENOMEM;
		goto out;
	}
	if (util_strlcpy(url, ep.authorization, sizeof(url)) < 0) {
		r = -E2BIG;
		goto out;
	}
	if ((r = add_param(h, url, sizeof(url), "response_type", "code")) < 0 ||
	    (r = add_param(h, url, sizeof(url), "client_id", o->client_id)) < 0 ||
	    (r = add_param(h, url, sizeof(url), "redirect_uri", o->redirect_url)) < 0 ||
	    (r = add_param(h, url, sizeof(url), "scope",
			   o->groups_claim && ep.groups_scope ? "openid profile email groups"
							      : "openid profile email")) < 0 ||
	    (r = add_param(h, url, sizeof(url), "state", state)) < 0 ||
	    (r = add_param(h, url, sizeof(url), "nonce", nonce)) < 0 ||
	    (r = add_param(h, url, sizeof(url), "code_challenge", challenge)) < 0 ||
	    (r = add_param(h, url, sizeof(url), "code_challenge_method", "S256")) < 0)
		goto out;
	if (!(*ret_url = strdup(url))) {
		r = -ENOMEM;
		goto out;
	}
	r = 0;
out:
	if (h)
		curl_easy_cleanup(h);
	endpoints_done(&ep);
	json_decref(data);
	util_free_secret(text);
	sodium_memzero(verifier, sizeof(verifier));
	sodium_memzero(nonce, sizeof(nonce));
	sodium_memzero(state, sizeof(state));
	return r;
}

/* The code exchange: the token endpoint's answer in *ret. */
static int exchange(struct oidc *o, const struct endpoints *ep, const char *code,
		    const char *verifier, json_t **ret, const char **ret_reason)
{
	char form[4096] = "";
	CURL *h = curl_easy_init();
	char *user = NULL, *pass = NULL;
	int r;

	if (!h)
		return -ENOMEM;
	if ((r = add_param(h, form, sizeof(form), "grant_type", "authorization_code")) < 0 ||
	    (r = add_param(h, form, sizeof(form), "code", code)) < 0 ||
	    (r = add_param(h, form, sizeof(form), "redirect_uri", o->redirect_url)) < 0 ||
	    (r = add_param(h, form, sizeof(form), "code_verifier", verifier)) < 0)
		goto out;
	if (!o->client_secret || ep->post_auth) {
		if ((r = add_param(h, form, sizeof(form), "client_id", o->client_id)) < 0)
			goto out;
		if (o->client_secret &&
		    (r = add_param(h, form, sizeof(form), "client_secret", o->client_secret)) < 0)
			goto out;
	} else {
		/* RFC 6749 §2.3.1: both form-encoded, then Basic. */
		user = curl_easy_escape(h, o->client_id, 0);
		pass = curl_easy_escape(h, o->client_secret, 0);
		if (!user || !pass) {
			r = -ENOMEM;
			goto out;
		}
	}
	r = http_json(o, ep->token, form, user, pass, ret, ret_reason);
out:
	sodium_memzero(form, sizeof(form));
	if (pass) {
		sodium_memzero(pass, strlen(pass));
		curl_free(pass);
	}
	curl_free(user);
	curl_easy_cleanup(h);
	return r;
}

/* Verifies the compact JWS id_token against the provider's keys and
 * returns its claims. */
static int verify_token(struct oidc *o, const struct endpoints *ep, const char *id_token,
			json_t **ret_claims, const char **ret_reason)
{
	cjose_err err;
	cjose_jws_t *jws = cjose_jws_import(id_token, strlen(id_token), &err);
	cjose_jwk_t *jwk = NULL;
	cjose_header_t *hdr;
	const char *alg, *kid;
	uint8_t *plain = NULL;
	size_t plain_len = 0;
	json_t *claims;
	int r = -EPROTO;

	*ret_reason = "the ID token is not a valid signed JWT";
	if (!jws || !(hdr = cjose_jws_get_protected(jws)))
		goto out;
	alg = cjose_header_get(hdr, CJOSE_HDR_ALG, &err);
	kid = cjose_header_get(hdr, CJOSE_HDR_KID, &err);
	if (!oidc_alg_ok(alg)) {
		*ret_reason = "the ID token's signature algorithm is not accepted";
		goto out;
	}
	r = jwks_key(o, ep->jwks, kid, alg[0] == 'E' ? CJOSE_JWK_KTY_EC : CJOSE_JWK_KTY_RSA, &jwk,
		     ret_reason);
	if (r < 0)
		goto out;
	r = -EPROTO;
	if (!cjose_jws_verify(jws, jwk, &err)) {
		*ret_reason = "the ID token's signature does not verify";
		goto out;
	}
	if (!cjose_jws_get_plaintext(jws, &plain, &plain_len, &err)) {
		*ret_reason = "the ID token has no payload";
		goto out;
	}
	claims = json_loadb((const char *)plain, plain_len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(claims)) {
		json_decref(claims);
		*ret_reason = "the ID token's payload is not a JSON object";
		goto out;
	}
	*ret_claims = claims;
	r = 0;
out:
	if (jwk)
		cjose_jwk_release(jwk);
	if (jws)
		cjose_jws_release(jws);
	return r;
}

/* The groups claim as an array of strings: absent is empty; a string is
 * one group (some providers send one group so). */
static json_t *groups_of(const json_t *claims, const char *name)
{
	json_t *v = name ? json_object_get(claims, name) : NULL, *out = json_array(), *g;
	size_t i;

	if (!out)
		return NULL;
	if (json_is_string(v))
		json_array_append(out, v);
	json_array_foreach (v, i, g)
		if (json_is_string(g) && json_string_length(g) <= 256)
			json_array_append(out, g);
	return out;
}

int oidc_finish(struct oidc *o, struct store *s, const char *state, const char *code,
		struct oidc_result *ret, const char **ret_reason)
{
	char key[65];
	char *text = NULL;
	json_t *data = NULL, *tok = NULL, *claims = NULL, *amr;
	const char *nonce, *verifier, *id_token, *uname, *acr;
	struct endpoints ep = { 0 };
	struct oidc_expect ex;
	struct oidc_result res = { 0 };
	int r;

	*ret_reason = "the sign-in could not be completed";
	if (!state || !state[0] || strlen(state) > 256) {
		*ret_reason = "the provider's answer lacks a valid state";
		return -EPROTO;
	}
	key_of(state, key);
	/* Taken before anything else: a state is good for one try, whatever
	 * happens next (a replayed callback finds nothing). */
	r = store_oidc_pending_take(s, key, "flow", store_now(), &text);
	if (r == -ENOENT) {
		*ret_reason = "unknown, used or expired state";
		return r;
	}
	if (r < 0)
		return r;
	if (!code || !code[0] || strlen(code) > 2048) {
		*ret_reason = "the provider did not sign the user in";
		r = -EPROTO;
		goto out;
	}
	data = json_loads(text, 0, NULL);
	nonce = json_string_value(json_object_get(data, "nonce"));
	verifier = json_string_value(json_object_get(data, "verifier"));
	if (!nonce || !verifier) {
		r = -EPROTO;
		goto out;
	}
	if ((r = discover(o, &ep, ret_reason)) < 0 ||
	    (r = exchange(o, &ep, code, verifier, &tok, ret_reason)) < 0)
		goto out;
	id_token = json_string_value(json_object_get(tok, "id_token"));
	if (!id_token) {
		*ret_reason = "the token endpoint answered without an ID token";
		r = -EPROTO;
		goto out;
	}
	if ((r = verify_token(o, &ep, id_token, &claims, ret_reason)) < 0)
		goto out;
	ex = (struct oidc_expect){
		.issuer = o->issuer, .client_id = o->client_id, .nonce = nonce, .now = store_now()
	};
	if ((r = oidc_check_claims(claims, &ex, ret_reason)) < 0)
		goto out;
	uname = json_string_value(json_object_get(claims, o->username_claim));
	if (!uname) {
		*ret_reason = "the ID token lacks the configured username claim";
		r = -EPROTO;
		goto out;
	}
	amr = json_object_get(claims, "amr");
	acr = json_string_value(json_object_get(claims, "acr"));
	res.issuer = strdup(o->issuer);
	res.subject = strdup(json_string_value(json_object_get(claims, "sub")));
	res.username = strdup(uname);
	res.groups = groups_of(claims, o->groups_claim);
	res.amr = json_is_array(amr) ? json_deep_copy(amr) : NULL;
	res.acr = acr ? strdup(acr) : NULL;
	res.extra = json_incref(json_object_get(data, "extra"));
	if (!res.extra)
		res.extra = json_object();
	if (!res.issuer || !res.subject || !res.username || !res.groups || !res.extra ||
	    (acr && !res.acr)) {
		oidc_result_done(&res);
		r = -ENOMEM;
		goto out;
	}
	*ret = res;
	r = 0;
out:
	endpoints_done(&ep);
	json_decref(claims);
	json_decref(tok);
	json_decref(data);
	util_free_secret(text);
	return r;
}
