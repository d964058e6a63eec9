/* Roles on scopes. A scope is "/" or a resource path ("/groups/g",
 * "/groups/g/vms/v"); an assignment applies to its scope and everything
 * below it. This file is the only place that decides. */
#include "authz/authz.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "identity/principal.h"
#include "store/store.h"

static const char *const role_names[] = {
	[AUTHZ_NONE] = "None",   [AUTHZ_READER] = "Reader",   [AUTHZ_CONTRIBUTOR] = "Contributor",
	[AUTHZ_OWNER] = "Owner", [AUTHZ_AUDITOR] = "Auditor",
};

/* The rank a role reads with: Auditor reads as Reader does. */
static enum authz_role rank_of(enum authz_role r)
{
	return r == AUTHZ_AUDITOR ? AUTHZ_READER : r;
}

const char *authz_role_name(enum authz_role r)
{
	if (r < AUTHZ_NONE || r > AUTHZ_AUDITOR)
		return "None";
	return role_names[r];
}

int authz_role_parse(const char *name, enum authz_role *ret)
{
	for (int r = AUTHZ_READER; r <= AUTHZ_AUDITOR; r++) {
		if (strcmp(name, role_names[r]) == 0) {
			*ret = (enum authz_role)r;
			return 0;
		}
	}
	return -EINVAL;
}

bool authz_scope_covers(const char *ancestor, const char *scope)
{
	size_t n = strlen(ancestor);

	if (strcmp(ancestor, "/") == 0)
		return scope[0] == '/';
	if (strncmp(ancestor, scope, n) != 0)
		return false;
	/* "/groups/a" covers "/groups/a" and "/groups/a/...", not "/groups/ab". */
	return scope[n] == '\0' || scope[n] == '/';
}

struct effective_ctx {
	const char *scope;
	enum authz_role best;
};

static int effective_one(const char *role, const char *scope, void *ud)
{
	struct effective_ctx *e = ud;
	enum authz_role r;

	if (authz_role_parse(role, &r) < 0 || !authz_scope_covers(scope, e->scope))
		return 0;
	if (rank_of(r) > e->best)
		e->best = rank_of(r);
	return e->best == AUTHZ_OWNER; /* nothing beats Owner: stop early */
}

int authz_effective(struct store *s, const struct principal *who, const char *scope,
		    enum authz_role *ret)
{
	struct effective_ctx e = { .scope = scope, .best = AUTHZ_NONE };
	char principal[80];
	int r;

	snprintf(principal, sizeof(principal), "user:%s", who->name);
	r = store_role_foreach_principal(s, principal, effective_one, &e);
	if (r < 0)
		return r;
	*ret = e.best;
	return 0;
}

int authz_require(struct store *s, const struct principal *who, enum authz_role role,
		  const char *scope)
{
	enum authz_role have;
	int r = authz_effective(s, who, scope, &have);

	if (r < 0)
		return r;
	return have >= role ? 0 : -EACCES;
}

/* Which roles carry which action. Reader carries none: reading a network
 * does not let one reach into it. */
static const struct {
	const char *name;
	bool carried[AUTHZ_AUDITOR + 1];
} perms[] = {
	[AUTHZ_PERM_NETWORK_JOIN] = { "networks/join",
				      { [AUTHZ_CONTRIBUTOR] = true, [AUTHZ_OWNER] = true } },
	[AUTHZ_PERM_CONNECT] = { "connect",
				 { [AUTHZ_READER] = true,
				   [AUTHZ_CONTRIBUTOR] = true,
				   [AUTHZ_OWNER] = true } },
	[AUTHZ_PERM_RECORDINGS_READ] = { "recordings/read",
					 { [AUTHZ_OWNER] = true, [AUTHZ_AUDITOR] = true } },
	[AUTHZ_PERM_AUDIT_READ] = { "audit/read",
				    { [AUTHZ_OWNER] = true, [AUTHZ_AUDITOR] = true } },
};

#define NPERMS (sizeof(perms) / sizeof(perms[0]))

const char *authz_perm_name(enum authz_perm p)
{
	return (size_t)p < NPERMS ? perms[p].name : "?";
}

bool authz_role_carries(enum authz_role r, enum authz_perm p)
{
	return (size_t)p < NPERMS && r >= AUTHZ_NONE && r <= AUTHZ_AUDITOR && perms[p].carried[r];
}

enum authz_role authz_perm_role(enum authz_perm p)
{
	for (int r = AUTHZ_READER; r <= AUTHZ_OWNER; r++)
		if (authz_role_carries((enum authz_role)r, p))
			return (enum authz_role)r;
	return AUTHZ_OWNER;
}

struct perm_ctx {
	const char *scope;
	enum authz_perm perm;
	bool found;
};

static int perm_one(const char *role, const char *scope, void *ud)
{
	struct perm_ctx *e = ud;
	enum authz_role r;

	if (authz_role_parse(role, &r) < 0 || !authz_scope_covers(scope, e->scope))
		return 0;
	e->found = e->found || authz_role_carries(r, e->perm);
	return e->found; /* one assignment is enough: stop early */
}

int authz_require_perm(struct store *s, const struct principal *who, enum authz_perm p,
		       const char *scope)
{
	struct perm_ctx e = { .scope = scope, .perm = p };
	char principal[80];
	int r;

	snprintf(principal, sizeof(principal), "user:%s", who->name);
	r = store_role_foreach_principal(s, principal, perm_one, &e);
	if (r < 0)
		return r;
	return e.found ? 0 : -EACCES;
}

int authz_assignment_visible(struct store *s, const struct principal *who, const char *principal,
			     const char *scope)
{
	char mine[80];

	snprintf(mine, sizeof(mine), "user:%s", who->name);
	if (strcmp(principal, mine) == 0)
		return 0;
	return authz_require(s, who, AUTHZ_READER, scope);
}
