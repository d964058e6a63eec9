/* Authorization: roles on scopes, inherited downward. One place decides. */
#pragma once

#include <stdbool.h>

struct store;
struct principal;

/* Owner > Contributor > Reader in rank. Auditor stands beside them: it
 * reads what Reader reads (its rank, for authz_require) and carries
 * "recordings/read" and "audit/read" (as Owner does), but not "connect":
 * the permissions below say what it may do beyond reading. */
enum authz_role {
	AUTHZ_NONE = 0,
	AUTHZ_READER = 1,
	AUTHZ_CONTRIBUTOR = 2,
	AUTHZ_OWNER = 3,
	AUTHZ_AUDITOR = 4,
};

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

/* Actions that are not simply "read" or "write the resource itself": each
 * is carried by the roles that authz.c's table lists, so that a later role
 * can carry one without being Contributor on everything.
 * - AUTHZ_PERM_NETWORK_JOIN ("networks/join"): attach something to a
 *   network, so that the bastion may dial into it: a NIC whose network is
 *   N, a bastion whose networks include N, needs it on N. Reading a
 *   network is not enough to reach the addresses in it. */
/* - AUTHZ_PERM_CONNECT ("connect"): open a terminal session to a VM (its
 *   connect checks): Reader, Contributor, Owner; never Auditor.
 * - AUTHZ_PERM_RECORDINGS_READ ("recordings/read"): list, read, search
 *   recordings and watch live sessions of bastions in the scope: Owner,
 *   Auditor.
 * - AUTHZ_PERM_AUDIT_READ ("audit/read"): read the audit trail: Owner,
 *   Auditor (at "/"). */
enum authz_perm {
	AUTHZ_PERM_NETWORK_JOIN = 0,
	AUTHZ_PERM_CONNECT,
	AUTHZ_PERM_RECORDINGS_READ,
	AUTHZ_PERM_AUDIT_READ,
};

/* "networks/join". */
const char *authz_perm_name(enum authz_perm p);
/* Whether role r carries p. */
bool authz_role_carries(enum authz_role r, enum authz_perm p);
/* The weakest built-in role that carries p, for messages ("Contributor"). */
enum authz_role authz_perm_role(enum authz_perm p);
/* 0 if a role assignment of who at scope or above carries p, -EACCES if
 * none does, <0 on store error. */
int authz_require_perm(struct store *s, const struct principal *who, enum authz_perm p,
		       const char *scope);

/* 0 if who holds at least role on scope, -EACCES if not, <0 on store error. */
int authz_require(struct store *s, const struct principal *who, enum authz_role role,
		  const char *scope);

/* Who may see a role assignment {principal, scope}: its own principal, and
 * whoever holds Reader on its scope (so a list leaks no assignment at a
 * scope the caller cannot read). 0, -EACCES, or a store error. Managing
 * one needs Owner on its scope: authz_require(AUTHZ_OWNER, scope). */
int authz_assignment_visible(struct store *s, const struct principal *who, const char *principal,
			     const char *scope);
