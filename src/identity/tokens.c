/* Identity: the API token lifecycle (issue 19) — creating a token with a
 * public id and a scope, and what a scope permits. The secret is handed
 * out once and stored only as its SHA-256; the public id is random (not
 * derived from the secret), so that listing, revoking and auditing a token
 * by its id reveals nothing about the secret. */
#include "identity/ident.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "core/util.h"
#include "store/store.h"

bool ident_scope_valid(const char *scope)
{
	return scope &&
	       (strcmp(scope, IDENT_SCOPE_ALL) == 0 || strcmp(scope, IDENT_SCOPE_METRICS) == 0);
}

bool ident_scope_permits(const struct principal *who, bool is_metrics)
{
	/* Anything but "all" is narrower: an unknown scope (a newer
	 * instance's, read by an older one) permits nothing beyond metrics. */
	if (!who->token_scope[0] || strcmp(who->token_scope, IDENT_SCOPE_ALL) == 0)
		return true;
	return is_metrics && strcmp(who->token_scope, IDENT_SCOPE_METRICS) == 0;
}

int ident_token_create_scoped(struct store *s, int64_t user_id, const char *name, const char *scope,
			      int64_t ttl, char ret_token[IDENT_TOKEN_SIZE],
			      struct store_token *ret)
{
	char token[IDENT_TOKEN_SIZE];
	uint8_t hash[32], raw[STORE_TOKEN_ID_LEN / 2];
	struct store_token t;
	int r = -EEXIST;

	if (ttl <= 0 || !ident_scope_valid(scope))
		return -EINVAL;
	memset(&t, 0, sizeof(t));
	t.user_id = user_id;
	t.expires_at = store_now() + ttl;
	if ((name && util_strlcpy(t.name, name, sizeof(t.name)) < 0) ||
	    util_strlcpy(t.scope, scope, sizeof(t.scope)) < 0)
		return -EINVAL;
	store_ident_purge_expired(s, store_now());
	util_random_token(token, sizeof(token), IDENT_TOKEN_BYTES);
	util_sha256_str(token, hash);
	/* 64 random bits: a collision is one in billions of tokens, and then
	 * the unique index refuses it; one more try settles it. */
	for (int i = 0; i < 2 && r == -EEXIST; i++) {
		randombytes_buf(raw, sizeof(raw));
		util_hex(raw, sizeof(raw), t.id);
		r = store_token_insert(s, hash, &t);
	}
	if (r == 0) {
		memcpy(ret_token, token, sizeof(token));
		t.created_at = store_now();
		*ret = t;
	}
	sodium_memzero(token, sizeof(token));
	sodium_memzero(hash, sizeof(hash));
	return r;
}
