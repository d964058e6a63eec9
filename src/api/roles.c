/* Role assignments: PUT/GET/DELETE /role-assignments/{id} and
 * GET /role-assignments?scope=...&principal=... Runs on a worker thread.
 *
 * Rules (docs/access-control.md):
 * - {id} is a caller-chosen name ([A-Za-z0-9][A-Za-z0-9._-]{0,63}; a UUID
 *   fits). The body is {principal: "user:<name>", role, scope}; "id",
 *   "type", "name" and "created_at" are ignored so a GET result can be PUT
 *   back; anything else is refused.
 * - A scope is "/", "/groups/{g}" or a resource ID, written exactly
 *   (case-sensitive, no trailing slash, no "..", nothing percent-encoded)
 *   and existing when assigned.
 * - Writing needs Owner on the new scope and, when the id already exists,
 *   on the scope it has now: an Owner of one group can neither create nor
 *   move nor remove an assignment outside it.
 * - Seeing one (GET, list) needs Reader on its scope, or being its
 *   principal. One the caller may not see answers 404 like a missing one;
 *   a PUT on such an id answers 409 (the id is taken) without saying more.
 * - No change may leave the instance without an enabled user holding Owner
 *   at "/" (409 Conflict).
 * - Changes are audited: "role.put" (created/replaced) and "role.delete",
 *   target "/role-assignments/{id}", detail {principal, role, scope}. */
#include "api/api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/validate.h"
#include "authz/authz.h"
#include "core/log.h"
#include "core/util.h"
#include "store/store.h"

#define ID_RULE "must match [A-Za-z0-9][A-Za-z0-9._-]{0,63} (case-sensitive)"
#define SCOPE_RULE                                                                                \
	"must be \"/\", \"/groups/{g}\" or a resource ID \"/groups/{g}/{type}/{name}\", written " \
	"exactly (case-sensitive, no trailing slash)"
#define PRINCIPAL_RULE "must be \"user:<name>\""
#define QUERY_MAX      1024

static bool principal_valid(const char *p)
{
	return strncmp(p, "user:", 5) == 0 && val_name(p + 5);
}

/* 0 if scope names something that exists, -ENOENT if not. */
static int scope_exists(struct store *s, const char *scope)
{
	json_t *props = NULL;
	int r;

	if (strcmp(scope, "/") == 0)
		return 0;
	if (val_res_id(scope, NULL, NULL, NULL, NULL) < 0)
		return store_group_exists(s, scope + 8);
	r = store_res_get(s, scope, &props);
	json_decref(props);
	return r;
}

static json_t *role_json(const struct store_role *ra)
{
	return json_pack("{s:o, s:s, s:s, s:s, s:s, s:s, s:I}", "id",
			 json_sprintf("/role-assignments/%s", ra->id), "type", "role-assignments",
			 "name", ra->id, "principal", ra->principal, "role", ra->role, "scope",
			 ra->scope, "created_at", (json_int_t)ra->created_at);
}

static void audit(struct api_call *c, const char *action, const char *id, const char *result,
		  const char *principal, const char *role, const char *scope,
		  const struct store_role *old)
{
	char who[80], target[160];
	json_t *d =
		json_pack("{s:s, s:s, s:s}", "principal", principal, "role", role, "scope", scope);
	char *detail;

	/* A replace names what changed (issue 19). */
	if (d && old) {
		json_t *changed = json_array();

		if (changed && strcmp(old->principal, principal) != 0)
			json_array_append_new(changed, json_string("principal"));
		if (changed && strcmp(old->role, role) != 0)
			json_array_append_new(changed, json_string("role"));
		if (changed && strcmp(old->scope, scope) != 0)
			json_array_append_new(changed, json_string("scope"));
		json_object_set_new(d, "changed", changed ? changed : json_null());
	}
	detail = d ? json_dumps(d, JSON_COMPACT) : NULL;

	snprintf(who, sizeof(who), "user:%s", c->who->name);
	snprintf(target, sizeof(target), "/role-assignments/%s", id);
	/* The change happened: a failed audit write is logged, not answered. */
	if (store_audit(c->ctx->store, who, action, target, result, detail) < 0)
		log_warn("audit: could not record %s on %s", action, target);
	free(detail);
	json_decref(d);
}

static void not_found(struct api_call *c, const char *id)
{
	api_error(c->resp, 404, "ResourceNotFound", "role assignment '%s' was not found", id);
}

/* Answers 403 (or a store error) unless the caller is Owner on scope. */
static bool require_owner(struct api_call *c, const char *scope)
{
	int r = authz_require(c->ctx->store, c->who, AUTHZ_OWNER, scope);

	if (r == 0)
		return true;
	if (r == -EACCES)
		api_error(c->resp, 403, "AuthorizationFailed", "Owner on %s is required", scope);
	else
		api_store_error(c->resp, r, "role assignments");
	return false;
}

/* Answers a failed checked write of assignment id: -EAGAIN, -EMLINK (with
 * last_owner, the message saying why that change would remove the last
 * Owner on /) or a store error. */
static void change_error(struct api_call *c, int r, const char *id, const char *last_owner)
{
	if (r == -EAGAIN)
		api_error(c->resp, 409, "Conflict",
			  "role assignment '%s' changed meanwhile; read it and try again", id);
	else if (r == -EMLINK)
		api_error(c->resp, 409, "Conflict", "%s", last_owner);
	else
		api_store_error(c->resp, r, "role assignment");
}

/* Reads assignment id into *ret if the caller may see it. Otherwise answers
 * 404 (an invalid id, an absent or an invisible assignment) or the store
 * error, and returns false. */
static bool find_visible(struct api_call *c, const char *id, struct store_role *ret)
{
	int r;

	if (!val_name(id)) {
		not_found(c, id);
		return false;
	}
	r = store_role_get(c->ctx->store, id, ret);
	if (r == 0)
		r = authz_assignment_visible(c->ctx->store, c->who, ret->principal, ret->scope);
	/* An assignment the caller may not see answers like a missing one. */
	if (r == -EACCES)
		r = -ENOENT;
	if (r == -ENOENT)
		not_found(c, id);
	else if (r < 0)
		api_store_error(c->resp, r, "role assignments");
	return r >= 0;
}

/* Fetches body[field] as a string, or answers 400 naming it. */
static const char *body_str(struct api_call *c, const char *field, const char *rule)
{
	json_t *v = json_object_get(c->body, field);

	if (!v) {
		api_error(c->resp, 400, "InvalidRequest", "%s is required: it %s", field, rule);
		return NULL;
	}
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
		api_error(c->resp, 400, "InvalidRequest", "%s must be a string: it %s", field,
			  rule);
		return NULL;
	}
	return json_string_value(v);
}

/* How often a PUT is decided again when the assignment changed between
 * its read and its write (another request, maybe on another instance). */
#define ROLE_PUT_ATTEMPTS 3

void api_roles_put(struct api_call *c)
{
	static const char *const ignored[] = { "id",        "type", "name",  "created_at",
					       "principal", "role", "scope", NULL };
	const char *id = c->seg[1], *principal, *role_name, *scope, *key;
	struct store_role old;
	enum authz_role role;
	bool have_old = false, created = false;
	json_t *v;
	int r;

	if (!val_name(id)) {
		api_error(c->resp, 400, "InvalidRequest", "id: " ID_RULE);
		return;
	}
	json_object_foreach (c->body, key, v) {
		bool known = false;

		for (const char *const *k = ignored; *k; k++)
			known = known || strcmp(key, *k) == 0;
		if (!known) {
			/* The key comes from the peer: quote it only when it is tame. */
			api_error(c->resp, 400, "InvalidRequest",
				  "%s: unknown property; allowed are principal, role and scope",
				  val_name(key) ? key : "a property");
			return;
		}
	}
	if (!(principal = body_str(c, "principal", PRINCIPAL_RULE)) ||
	    !(role_name = body_str(c, "role", "must be Reader, Contributor, Owner or Auditor")) ||
	    !(scope = body_str(c, "scope", SCOPE_RULE)))
		return;
	if (!principal_valid(principal)) {
		api_error(c->resp, 400, "InvalidRequest",
			  "principal " PRINCIPAL_RULE " with a valid user name");
		return;
	}
	if (authz_role_parse(role_name, &role) < 0) {
		api_error(c->resp, 400, "InvalidRequest",
			  "role must be Reader, Contributor, Owner or Auditor (exactly)");
		return;
	}
	if (!val_scope(scope)) {
		api_error(c->resp, 400, "InvalidRequest", "scope " SCOPE_RULE);
		return;
	}
	if (!require_owner(c, scope))
		return;
	/* The write is checked against what was read (expect_scope): when
	 * another request (on another instance) wrote the same id in between,
	 * it answers -EAGAIN, and the PUT is decided again on what is there
	 * now — as if it had come second, which is what one instance answers
	 * (200 for the same assignment), not a 409. */
	for (int attempt = 0;; attempt++) {
		have_old = false;
		r = store_role_get(c->ctx->store, id, &old);
		if (r == 0) {
			have_old = true;
			r = authz_assignment_visible(c->ctx->store, c->who, old.principal,
						     old.scope);
			if (r == -EACCES) {
				api_error(
					c->resp, 409, "Conflict",
					"id: role assignment '%s' already exists and is not yours to change; choose another id",
					id);
				return;
			}
			if (r < 0) {
				api_store_error(c->resp, r, "role assignments");
				return;
			}
			if (!require_owner(c, old.scope))
				return;
		} else if (r != -ENOENT) {
			api_store_error(c->resp, r, "role assignments");
			return;
		}
		if (have_old && api_create_only(c)) {
			api_error(c->resp, 412, "PreconditionFailed",
				  "role assignment '%s' already exists (If-None-Match: *)", id);
			return;
		}
		r = scope_exists(c->ctx->store, scope);
		if (r == -ENOENT) {
			api_error(c->resp, 400, "InvalidRequest", "scope: %s does not exist",
				  scope);
			return;
		}
		if (r < 0) {
			api_store_error(c->resp, r, scope);
			return;
		}
		r = store_role_put_checked(c->ctx->store, id, principal, authz_role_name(role),
					   scope, have_old ? old.scope : NULL, &created);
		if (r != -EAGAIN || attempt == ROLE_PUT_ATTEMPTS - 1)
			break;
	}
	if (r == -ESRCH) {
		api_error(c->resp, 400, "InvalidRequest", "principal: user '%s' does not exist",
			  principal + 5);
		return;
	}
	if (r < 0) {
		change_error(
			c, r, id,
			"this would leave no enabled user with Owner on /; assign Owner on / to another user first");
		return;
	}
	audit(c, "role.put", id, created ? "created" : "replaced", principal, authz_role_name(role),
	      scope, have_old && !created ? &old : NULL);
	r = store_role_get(c->ctx->store, id, &old);
	if (r < 0) {
		api_store_error(c->resp, r, "role assignment");
		return;
	}
	api_json(c->resp, created ? 201 : 200, role_json(&old));
}

void api_roles_get(struct api_call *c)
{
	struct store_role ra;

	if (find_visible(c, c->seg[1], &ra))
		api_json(c->resp, 200, role_json(&ra));
}

void api_roles_delete(struct api_call *c)
{
	const char *id = c->seg[1];
	struct store_role ra;
	int r;

	if (!find_visible(c, id, &ra) || !require_owner(c, ra.scope))
		return;
	r = store_role_delete_checked(c->ctx->store, id, ra.scope);
	if (r == -ENOENT) {
		not_found(c, id);
		return;
	}
	if (r < 0) {
		change_error(
			c, r, id,
			"the last Owner on / cannot be removed; assign Owner on / to another user first");
		return;
	}
	audit(c, "role.delete", id, "deleted", ra.principal, ra.role, ra.scope, NULL);
	c->resp->status = 204;
}

struct list {
	struct api_call *c;
	const char *scope, *principal;
	json_t *value;
};

static int list_one(const struct store_role *ra, void *ud)
{
	struct list *l = ud;
	int r;

	if (l->principal && strcmp(ra->principal, l->principal) != 0)
		return 0;
	/* The assignments that bear on the scope: at it, above it (inherited
	 * by it) and below it. */
	if (l->scope && !authz_scope_covers(ra->scope, l->scope) &&
	    !authz_scope_covers(l->scope, ra->scope))
		return 0;
	r = authz_assignment_visible(l->c->ctx->store, l->c->who, ra->principal, ra->scope);
	if (r == -EACCES)
		return 0;
	if (r < 0)
		return r;
	return json_array_append_new(l->value, role_json(ra)) < 0 ? -ENOMEM : 0;
}

/* Parses the query string into scope and principal (both optional, each at
 * most once). Answers 400 and returns false on anything else. */
static bool parse_query(struct api_call *c, char *buf, const char **ret_scope,
			const char **ret_principal)
{
	char *p = buf;

	*ret_scope = *ret_principal = NULL;
	if (!c->req->query || !c->req->query[0])
		return true;
	if (util_strlcpy(buf, c->req->query, QUERY_MAX) < 0) {
		api_error(c->resp, 400, "InvalidRequest", "query: longer than %d bytes",
			  QUERY_MAX - 1);
		return false;
	}
	while (p) {
		char *amp = strchr(p, '&'), *eq;
		const char **slot;

		if (amp)
			*amp++ = '\0';
		if (!*p) {
			p = amp;
			continue;
		}
		eq = strchr(p, '=');
		if (eq)
			*eq++ = '\0';
		if (strcmp(p, "scope") == 0) {
			slot = ret_scope;
		} else if (strcmp(p, "principal") == 0) {
			slot = ret_principal;
		} else {
			api_error(c->resp, 400, "InvalidRequest",
				  "query: unknown parameter; use scope and principal");
			return false;
		}
		if (*slot) {
			api_error(c->resp, 400, "InvalidRequest", "%s: given more than once", p);
			return false;
		}
		if (!eq || util_pct_decode(eq) < 0) {
			api_error(c->resp, 400, "InvalidRequest",
				  "%s: needs a percent-encoded value", p);
			return false;
		}
		*slot = eq;
		p = amp;
	}
	if (*ret_scope && !val_scope(*ret_scope)) {
		api_error(c->resp, 400, "InvalidRequest", "scope " SCOPE_RULE);
		return false;
	}
	if (*ret_principal && !principal_valid(*ret_principal)) {
		api_error(c->resp, 400, "InvalidRequest", "principal " PRINCIPAL_RULE);
		return false;
	}
	return true;
}

void api_roles_list(struct api_call *c)
{
	char buf[QUERY_MAX];
	struct list l = { .c = c };
	int r;

	if (!parse_query(c, buf, &l.scope, &l.principal))
		return;
	if (!(l.value = json_array())) {
		api_store_error(c->resp, -ENOMEM, "role assignments");
		return;
	}
	r = store_role_foreach(c->ctx->store, list_one, &l);
	if (r < 0) {
		json_decref(l.value);
		api_store_error(c->resp, r, "role assignments");
		return;
	}
	api_json(c->resp, 200, json_pack("{s:o}", "value", l.value));
}
