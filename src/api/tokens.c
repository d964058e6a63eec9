/* REST handlers: API tokens (issue 19) — create one with a name and a
 * scope, list your own, revoke one by its public id; an Owner at "/" lists
 * (?user=NAME) and revokes anyone's. No answer, log line or audit record
 * carries a token's secret, except the one answer that creates it. */
#include "api/api.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "authz/authz.h"
#include "core/log.h"
#include "core/util.h"
#include "identity/ident.h"
#include "store/store.h"

#define TOKEN_TTL_DEFAULT (30 * 24 * 3600)
#define TOKEN_TTL_MIN     60
#define TOKEN_TTL_MAX     31536000
#define TOKEN_NAME_MAX    64
#define TOKENS_PER_USER   100
#define TOKENS_LIST_MAX   1000 /* rows one list answers (100 per user, many users) */

static void audit(struct api_call *c, const char *action, const char *target, json_t *detail)
{
	char principal[80], *text = detail ? json_dumps(detail, JSON_COMPACT) : NULL;

	snprintf(principal, sizeof(principal), "user:%s", c->who->name);
	/* The change already happened: a failed audit write is logged, and
	 * the client still learns what took place. */
	if (store_audit(c->ctx->store, principal, action, target, "success", text) < 0)
		log_warn("audit: could not record %s on %s", action, target);
	free(text);
	json_decref(detail);
}

static bool token_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > TOKEN_NAME_MAX)
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

/* An optional string member of the body: true and *ret (NULL when absent
 * or null), or false after answering 400. */
static bool opt_string(struct api_call *c, const char *field, const char **ret)
{
	json_t *v = json_object_get(c->body, field);

	*ret = NULL;
	if (!v || json_is_null(v))
		return true;
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
		api_error(c->resp, 400, "InvalidRequest", "%s must be a string without NUL", field);
		return false;
	}
	*ret = json_string_value(v);
	return true;
}

static json_t *token_json(const struct store_token *t)
{
	return json_pack("{s:s, s:o, s:s, s:s, s:I, s:o, s:I}", "id", t->id, "name",
			 t->name[0] ? json_string(t->name) : json_null(), "user", t->user, "scope",
			 t->scope, "created_at", (json_int_t)t->created_at, "last_used_at",
			 t->last_used_at ? json_integer(t->last_used_at) : json_null(),
			 "expires_at", (json_int_t)t->expires_at);
}

void api_tokens_create(struct api_call *c)
{
	char token[IDENT_TOKEN_SIZE], target[80];
	const char *name, *scope;
	struct store_token t;
	json_t *v, *body;
	int64_t ttl = TOKEN_TTL_DEFAULT, n = 0;
	int r;

	if (!opt_string(c, "name", &name) || !opt_string(c, "scope", &scope))
		return;
	if (name && !token_name_ok(name)) {
		api_error(c->resp, 400, "InvalidRequest",
			  "name must be 1 to %d characters without control characters",
			  TOKEN_NAME_MAX);
		return;
	}
	if (!scope)
		scope = IDENT_SCOPE_ALL;
	if (!ident_scope_valid(scope)) {
		api_error(c->resp, 400, "InvalidRequest", "scope must be \"%s\" or \"%s\"",
			  IDENT_SCOPE_ALL, IDENT_SCOPE_METRICS);
		return;
	}
	/* A narrow token cannot make a wider one (nor any: it reads metrics). */
	if (!ident_scope_permits(c->who, false)) {
		api_error(c->resp, 403, "TokenScope", "this token may only read the metrics");
		return;
	}
	v = json_object_get(c->body, "expires_in");
	if (v && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < TOKEN_TTL_MIN ||
		    json_integer_value(v) > TOKEN_TTL_MAX) {
			api_error(c->resp, 400, "InvalidRequest",
				  "expires_in must be an integer number of seconds from %d to %d",
				  TOKEN_TTL_MIN, TOKEN_TTL_MAX);
			return;
		}
		ttl = json_integer_value(v);
	}
	if ((r = store_token_count(c->ctx->store, c->who->user_id, store_now(), &n)) < 0) {
		api_store_error(c->resp, r, "API tokens");
		return;
	}
	if (n >= TOKENS_PER_USER) {
		api_error(c->resp, 409, "LimitExceeded", "at most %d unexpired API tokens per user",
			  TOKENS_PER_USER);
		return;
	}
	r = ident_token_create_scoped(c->ctx->store, c->who->user_id, name, scope, ttl, token, &t);
	if (r < 0) {
		api_store_error(c->resp, r, "API token");
		return;
	}
	util_strlcpy(t.user, c->who->name, sizeof(t.user));
	snprintf(target, sizeof(target), "token:%s", t.id);
	audit(c, "token.create", target,
	      json_pack("{s:s, s:o, s:s, s:s, s:I}", "id", t.id, "name",
			name ? json_string(name) : json_null(), "user", t.user, "scope", t.scope,
			"expires_at", (json_int_t)t.expires_at));

	body = token_json(&t);
	if (body)
		json_object_set_new(body, "token", json_string(token));
	sodium_memzero(token, sizeof(token));
	api_header(c->resp, "Cache-Control", "no-store");
	api_json(c->resp, 201, body);
}

/* The value of name in the query string (decoded into out), or "" when
 * absent: 0, or -EINVAL for a malformed or oversized query. */
static int query_value(const char *query, const char *name, char *out, size_t out_size)
{
	char q[512], *part, *rest;

	out[0] = '\0';
	if (util_strlcpy(q, query ? query : "", sizeof(q)) < 0)
		return -EINVAL;
	for (part = q; part && *part; part = rest) {
		char *eq;

		if ((rest = strchr(part, '&')))
			*rest++ = '\0';
		if (!(eq = strchr(part, '=')))
			continue;
		*eq = '\0';
		if (strcmp(part, name) != 0)
			continue;
		if (util_pct_decode(eq + 1) < 0 || util_strlcpy(out, eq + 1, out_size) < 0)
			return -EINVAL;
	}
	return 0;
}

/* Whether the caller holds Owner at "/": 1, 0, or a store error answered. */
static int root_owner(struct api_call *c)
{
	int r = authz_require(c->ctx->store, c->who, AUTHZ_OWNER, "/");

	if (r == -EACCES)
		return 0;
	if (r < 0) {
		api_store_error(c->resp, r, "the caller's roles");
		return r;
	}
	return 1;
}

struct list {
	json_t *arr;
	int n;
};

static int add_token(const struct store_token *t, void *ud)
{
	struct list *l = ud;
	json_t *o;

	if (++l->n > TOKENS_LIST_MAX)
		return 1;
	o = token_json(t);
	return !o || json_array_append_new(l->arr, o) < 0 ? -ENOMEM : 0;
}

void api_tokens_list(struct api_call *c)
{
	char user[65];
	struct store_user u;
	int64_t uid = c->who->user_id;
	struct list l = { .arr = json_array() };
	int r;

	if (!ident_scope_permits(c->who, false)) {
		api_error(c->resp, 403, "TokenScope", "this token may only read the metrics");
		goto out;
	}
	if (query_value(c->req->query, "user", user, sizeof(user)) < 0) {
		api_error(c->resp, 400, "InvalidRequest", "query: user must be a user name");
		goto out;
	}
	if (user[0] && strcmp(user, c->who->name) != 0) {
		if ((r = root_owner(c)) < 0)
			goto out;
		if (r == 0) {
			api_error(c->resp, 403, "AuthorizationFailed",
				  "Owner on / is required to list another user's tokens");
			goto out;
		}
		if ((r = store_user_get(c->ctx->store, user, &u)) < 0) {
			api_store_error(c->resp, r, "the user");
			goto out;
		}
		uid = u.id;
		sodium_memzero(&u, sizeof(u));
	}
	if (!l.arr) {
		api_error(c->resp, 503, "ServiceUnavailable", "out of memory");
		goto out;
	}
	r = store_token_foreach(c->ctx->store, uid, store_now(), add_token, &l);
	if (r < 0) {
		api_store_error(c->resp, r, "API tokens");
		goto out;
	}
	api_header(c->resp, "Cache-Control", "no-store");
	api_json(c->resp, 200, json_pack("{s:O}", "value", l.arr));
out:
	json_decref(l.arr);
}

void api_tokens_delete(struct api_call *c)
{
	const char *id = c->seg[1];
	struct store_token t;
	char target[80];
	int r;

	if (!ident_scope_permits(c->who, false)) {
		api_error(c->resp, 403, "TokenScope", "this token may only read the metrics");
		return;
	}
	/* Your own first; someone else's only as Owner at "/" (and a caller
	 * without that learns nothing about other users' ids: 404). */
	r = store_token_revoke(c->ctx->store, id, c->who->user_id, &t);
	if (r == -ENOENT) {
		if ((r = root_owner(c)) < 0)
			return;
		r = r ? store_token_revoke(c->ctx->store, id, -1, &t) : -ENOENT;
	}
	if (r < 0) {
		api_store_error(c->resp, r, "the API token");
		return;
	}
	snprintf(target, sizeof(target), "token:%s", t.id);
	audit(c, "token.revoke", target,
	      json_pack("{s:s, s:o, s:s, s:s}", "id", t.id, "name",
			t.name[0] ? json_string(t.name) : json_null(), "user", t.user, "scope",
			t.scope));
	c->resp->status = 204;
}
