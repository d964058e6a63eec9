/* Authorization: roles on scopes, inherited downward. One place decides. */
#pragma once

#include <stdbool.h>

struct store;
struct principal;

enum authz_role { AUTHZ_NONE = 0, AUTHZ_READER = 1, AUTHZ_CONTRIBUTOR = 2, AUTHZ_OWNER = 3 };

const char *authz_role_name(enum authz_role r);
/* -EINVAL for an unknown name; names are the normative "Reader" etc. */
int authz_role_parse(const char *name, enum authz_role *ret);

/* True if scope equals ancestor or lies under it ("/" covers all;
 * "/groups/a" covers "/groups/a/vms/x" but not "/groups/ab"). */
bool authz_scope_covers(const char *ancestor, const char *scope);

/* The strongest role the principal holds on scope, counting assignments
 * at the scope and every ancestor. */
int authz_effective(struct store *s, const struct principal *who, const char *scope,
		    enum authz_role *ret);

/* 0 if who holds at least role on scope, -EACCES if not, <0 on store error. */
int authz_require(struct store *s, const struct principal *who, enum authz_role role,
		  const char *scope);

/* Who may see a role assignment {principal, scope}: its own principal, and
 * whoever holds Reader on its scope (so a list leaks no assignment at a
 * scope the caller cannot read). 0, -EACCES, or a store error. Managing
 * one needs Owner on its scope: authz_require(AUTHZ_OWNER, scope). */
int authz_assignment_visible(struct store *s, const struct principal *who, const char *principal,
			     const char *scope);
