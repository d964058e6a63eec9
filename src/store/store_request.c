/* What one request costs the store, and what it need not ask twice: the
 * per-thread count of statements (store_statements) and the request's view
 * of role assignments (store_request_begin/end). Authorization asks for
 * the caller's assignments once per check: a list of VMs checks the group
 * and then every VM, a connect the VM and each bastion it may use. On
 * PostgreSQL each ask was a round trip; here the first one of a request
 * reads them and the rest replay that copy.
 *
 * The copy is safe because it is short-lived and forgets itself: it lives
 * on the thread that runs the request, for that request only, and any
 * call of a store function other than a known read (a write of any kind:
 * a role assignment, a group deleted with its assignments, a transaction)
 * drops it, so that what a request changed itself is read again. */
#include "store/backend.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static _Thread_local uint64_t statements;

void store_statement_count(void)
{
	statements++;
}

uint64_t store_statements(void)
{
	return statements;
}

/* More assignments than this for one principal are not cached (read each
 * time, as before): the copy stays small. */
#define ROLE_CACHE_MAX 32

struct role_cache {
	bool on;   /* between store_request_begin and store_request_end */
	bool held; /* rows are principal's assignments in store s */
	const struct store *s;
	char principal[128];
	int n;
	struct {
		char role[33];
		char scope[257];
	} rows[ROLE_CACHE_MAX];
};

static _Thread_local struct role_cache rc;

void store_request_begin(void)
{
	rc.on = true;
	rc.held = false;
}

void store_request_end(void)
{
	rc.on = false;
	rc.held = false;
}

/* The store's entries that only read: calling them keeps the copy. Any
 * other (a new entry included) forgets it: the safe default. */
static const char *const reads[] = {
	"schema_version",
	"hostkey_get",
	"user_count",
	"user_get",
	"user_get_by_id",
	"user_foreach",
	"login_get",
	"login_lookup",
	"token_get",
	"token_count",
	"role_get",
	"role_foreach",
	"role_foreach_principal",
	"role_root_owners",
	"group_exists",
	"group_foreach",
	"group_blocker",
	"res_get",
	"res_get_chain",
	"res_blocker",
	"res_foreach",
	"res_foreach_referrer",
	"res_foreach_type",
	"token_lookup",
	"token_foreach",
	"throttle_get",
	"login_known",
	"mfa_get",
	"wa_cred_get",
	"wa_cred_foreach",
	"login_mfa_marked",
	"login_mfa_via",
	"audit_query",
	"term_open_count",
	"oidc_link_get",
	"instance_foreach",
	"session_foreach_open",
	"session_holder",
	"secret_get",
	"secret_count",
	"secret_version_get",
	"secret_foreach",
	"secret_versions_foreach",
	"vault_meta_get",
	"vault_key_get",
	"vault_key_foreach",
	"vault_policy_get",
	"vault_policy_foreach",
	"vault_deleted_foreach",
	"vault_deleted_get",
	"rec_get",
	"rec_query",
	"rec_chunk_get",
};

const char *store_req_unknown_name(void)
{
	for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++)
		if (!store_op_exists(reads[i]))
			return reads[i];
	return NULL;
}

bool store_req_is_read(const char *name)
{
	for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++)
		if (strcmp(name, reads[i]) == 0)
			return true;
	return false;
}

void store_req_note(const char *name)
{
	if (rc.held && !store_req_is_read(name))
		rc.held = false;
}

static int collect(const char *role, const char *scope, void *ud);

bool store_req_wants_roles(void)
{
	return rc.on;
}

void store_req_prime(struct store *s, const char *principal, const char *rows_json)
{
	json_t *rows = rows_json ? json_loads(rows_json, 0, NULL) : json_array();
	size_t i;
	json_t *row;

	if (!rc.on || strlen(principal) >= sizeof(rc.principal) || !json_is_array(rows))
		goto out;
	rc.held = false;
	rc.n = 0;
	json_array_foreach (rows, i, row) {
		const char *role = json_string_value(json_array_get(row, 0));
		const char *scope = json_string_value(json_array_get(row, 1));

		if (!role || !scope || collect(role, scope, &rc) != 0)
			goto out; /* not primed: read when asked */
	}
	rc.s = s;
	memcpy(rc.principal, principal, strlen(principal) + 1);
	rc.held = true;
out:
	json_decref(rows);
}

static int collect(const char *role, const char *scope, void *ud)
{
	struct role_cache *c = ud;

	if (c->n == ROLE_CACHE_MAX || strlen(role) >= sizeof(c->rows[0].role) ||
	    strlen(scope) >= sizeof(c->rows[0].scope)) {
		c->n = -1; /* too many (or too long) to keep: not cached */
		return 1;
	}
	memcpy(c->rows[c->n].role, role, strlen(role) + 1);
	memcpy(c->rows[c->n].scope, scope, strlen(scope) + 1);
	c->n++;
	return 0;
}

int store_role_foreach_principal(struct store *s, const char *principal,
				 int (*fn)(const char *role, const char *scope, void *ud), void *ud)
{
	int r;

	if (!rc.on || strlen(principal) >= sizeof(rc.principal))
		return store_role_foreach_principal_uncached(s, principal, fn, ud);
	if (!rc.held || rc.s != s || strcmp(rc.principal, principal) != 0) {
		rc.held = false;
		rc.n = 0;
		r = store_role_foreach_principal_uncached(s, principal, collect, &rc);
		if (r < 0)
			return r;
		if (rc.n < 0)
			return store_role_foreach_principal_uncached(s, principal, fn, ud);
		rc.s = s;
		memcpy(rc.principal, principal, strlen(principal) + 1);
		rc.held = true;
	}
	/* As the backends do: fn's non-zero stops; a negative one is the
	 * answer. fn may call the store (and so forget or refill the copy):
	 * it is walked from a copy of its own. */
	struct role_cache mine;
	int n = rc.n;

	memcpy(mine.rows, rc.rows, (size_t)n * sizeof(rc.rows[0]));
	for (int i = 0; i < n; i++)
		if ((r = fn(mine.rows[i].role, mine.rows[i].scope, ud)) != 0)
			return r < 0 ? r : 0;
	return 0;
}
