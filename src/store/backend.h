/* Private to src/store: what a backend is. Every public function of the
 * store that takes a struct store dispatches through s->be (store.c); a
 * backend fills a struct store_backend and makes its struct store with
 * store_init. An entry left NULL is a function the backend does not have
 * yet: calling it answers -ENOSYS, and store_backend_missing names it
 * (test_store checks that neither backend lacks any). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "store/ops_list.h"
#include "store/store.h"
#include "store/store_cluster.h"
#include "store/store_mfa.h"
#include "store/store_ops.h"
#include "store/store_vault.h"
#include "store/store_waits.h"

struct store_backend {
	const char *name; /* "sqlite", "postgresql": for messages */
	void (*free)(struct store *s);
	/* NULL: always (an embedded store has no server to lose). */
	bool (*reachable)(struct store *s);
	/* NULL: nothing to do. Called by the dispatch after each entry
	 * returns, with the entry's name (a cache drops what it may have
	 * changed: pg_cache.c). */
	void (*after)(struct store *s, const char *name);
	/* NULL: no cache (all zero). */
	void (*cache_stats)(struct store *s, struct store_cache_stats *ret);
	int (*cache_sync)(struct store *s);
#define STORE_OPS_MEMBER(name, params, args) int(*name) params;
	STORE_OPS(STORE_OPS_MEMBER)
#undef STORE_OPS_MEMBER
};

/* The part every backend's store starts with: the backend's own state is
 * behind impl. */
struct store {
	const struct store_backend *be;
	void *impl;
};

/* Set by store_audit_to_stderr: every backend copies each committed audit
 * record to stderr while this is true. */
extern bool store_audit_stderr;

/* What a connection holds back of those lines until its transaction
 * commits; a transaction that writes more sends the rest at once. */
#define STORE_AUDIT_HELD_MAX (4u * 1024u * 1024u)

/* A text argument that fits its column: not NULL, at most max bytes, as
 * the backends check it before they write (sqlite_rows.h's fits). */
static inline bool store_fits(const char *v, size_t max)
{
	return v && strlen(v) <= max;
}

/* What both backends do alike with resources (res_common.c). */
#define STORE_RES_ID_SIZE 256
/* A group, type or name part: non-empty, no '/'. */
bool store_res_name_ok(const char *part);
/* out (STORE_RES_ID_SIZE bytes) = "/groups/GROUP/TYPE/NAME"; -EINVAL for a
 * bad part or an ID too long. */
int store_res_id(char *out, const char *group, const char *type, const char *name);
/* Stored properties as a JSON object: a row that is not one is a damaged
 * store (-BERR_STORE); text NULL answers null_err (what NULL means to the
 * backend's reader). */
int store_res_props_load(const char *text, int null_err, json_t **ret);

/* A backend's transaction (pg_tx, store_tx, ...) and its audit writer
 * (pg_audit, sq_audit), for the helpers both backends share (*_common.c):
 * the logic around the SQL lives there once, the SQL stays per backend. */
typedef int store_tx_fn(struct store *s, int (*fn)(struct store *s, void *ud), void *ud);
typedef int store_audit_fn(struct store *s, const char *principal, const char *action,
			   const char *target, const char *result, const char *detail);

/* A resource put: what the backend's transaction body (fn, given a struct
 * store_res_put) reads and sets. store_res_put_run validates the
 * arguments, makes the ID and the stored text and runs fn under tx, as
 * store_res_put. */
struct store_res_put {
	const char *group, *type, *name;
	char id[STORE_RES_ID_SIZE];
	char *props;
	const char *const *refs;
	bool created;
};
int store_res_put_run(struct store *s, store_tx_fn *tx, int (*fn)(struct store *s, void *ud),
		      const char *group, const char *type, const char *name, const json_t *props,
		      const char *const *refs, bool *ret_created);

/* One batch of retention pruning (store_audit_prune, store_session_prune;
 * retention_common.c): fn, the backend's transaction body run by tx,
 * deletes up to batch rows ended before `before` (of the audit trail when
 * audit, else of the terminal sessions) and sets n and oldest. */
struct store_prune {
	bool audit;
	int64_t before;
	int batch;
	int n;
	int64_t oldest;
};
int store_prune_run(struct store *s, store_tx_fn *tx, int (*fn)(struct store *s, void *ud),
		    bool audit, int64_t before, int batch, int *ret_n, int64_t *ret_oldest);

/* What both backends do alike around the SQL of the instances table and
 * the live-session registry (cluster_common.c). The session.end audit
 * record of one open session an instance's end closes (inside the
 * caller's transaction). */
struct store_session_ended {
	const char *id, *user, *vm, *bastion;
	int64_t started_at, bytes_to_vm, bytes_from_vm;
};
int store_session_end_audit(struct store *s, store_audit_fn *audit,
			    const struct store_session_ended *e, const char *instance,
			    const char *reason, int64_t now);
/* store_instance_claim and store_instance_reap: fn, the backend's
 * transaction body run by tx, claims in->name (counting the sessions it
 * ends), or marks the instances but self silent for lease_s lost. */
struct store_claim {
	const struct store_instance *in;
	int64_t now, lease_s;
	const char *reason;
	int ended;
};
int store_instance_claim_run(struct store *s, store_tx_fn *tx, int (*fn)(struct store *s, void *ud),
			     const struct store_instance *in, int64_t now, int64_t lease_s,
			     const char *reason, int *ret_ended);
struct store_reap {
	const char *self;
	int64_t now, lease_s;
	int lost, ended;
};
int store_instance_reap_run(struct store *s, store_tx_fn *tx, int (*fn)(struct store *s, void *ud),
			    const char *self, int64_t now, int64_t lease_s, int *ret_lost,
			    int *ret_ended);
/* store_session_end_request: its transaction body, having found the
 * session held elsewhere, hands back what the caller asked for. */
struct store_end_request {
	const char *id, *self, *reason;
	char *ret_instance, *ret_user, *ret_bastion;
};
void store_end_request_found(struct store_end_request *x, const char *instance, const char *user,
			     const char *bastion);

/* The statements that archive a deleted vault's rows after its own, and
 * that recover them after its resource row: NULL-terminated, each with the
 * vault's ID as $1 (vaultdel_common.c). */
extern const char *const store_vault_archive_sql[];
extern const char *const store_vault_recover_sql[];
/* The deleted vaults of group $1 by name, the one of ID $1: the columns of
 * struct store_deleted_vault in order. store_vault_deleted_copy, a row
 * callback, copies the row into ud and stops (1). */
extern const char store_vault_deleted_of_group_sql[];
extern const char store_vault_deleted_by_id_sql[];
int store_vault_deleted_copy(const struct store_deleted_vault *d, void *ud);

/* What both backends do alike around the SQL of second factors
 * (mfa_common.c). A challenge's purpose or a session's "via": at most 16
 * characters (login_mfa_via's buffer). */
bool store_mfa_word_ok(const char *w);
/* store_mfa_totp_confirm: fn, the backend's transaction body run by tx,
 * confirms the key and replaces the recovery codes. store_mfa_delete: fn
 * answers 1 when it removed anything, 0 when not. */
struct store_totp_confirm {
	int64_t user_id, step;
	const uint8_t *hashes;
	int n;
};
int store_mfa_totp_confirm_run(struct store *s, store_tx_fn *tx,
			       int (*fn)(struct store *s, void *ud), int64_t user_id, int64_t step,
			       const uint8_t *hashes, int n);
struct store_mfa_delete {
	int64_t user_id;
	bool passkeys;
};
int store_mfa_delete_run(struct store *s, store_tx_fn *tx, int (*fn)(struct store *s, void *ud),
			 int64_t user_id, bool passkeys, int *ret_removed);

/* store_ident_end_user (ident_common.c): del, the backend's, runs sql
 * with user_id as $1 and the hash keep as $2 (all zeros when NULL: keep
 * nothing) and counts the rows it deleted. */
int store_ident_end_user_run(struct store *s, store_tx_fn *tx,
			     int (*del)(struct store *s, const char *sql, int64_t user_id,
					const uint8_t *keep, int *ret_n),
			     int64_t user_id, const uint8_t *keep_login, const uint8_t *keep_token,
			     int *ret_sessions, int *ret_tokens);

/* store_oidc_user_create (ident_common.c): fn, the backend's transaction
 * body run by tx, adds the user and its link and sets id. */
struct store_oidc_user {
	const char *name, *hash, *issuer, *subject;
	int64_t id;
};
int store_oidc_user_create_run(struct store *s, store_tx_fn *tx,
			       int (*fn)(struct store *s, void *ud), const char *name,
			       const char *password_hash, const char *issuer, const char *subject,
			       int64_t *ret_id);

/* The backends. */
extern const struct store_backend store_sqlite_backend;
extern const struct store_backend store_pg_backend;

int sq_open(const char *data_dir, struct store **ret);
void sq_free(struct store *s);
int pg_open(const char *url, struct store **ret);
bool pg_reachable(struct store *s);
int pg_open_ro(const char *url, struct store **ret, int *ret_version, int *ret_known);
void pg_free(struct store *s);

/* The SQLite backend's functions, one per entry of STORE_OPS, for the
 * SQLite files that call each other directly. */
#define STORE_OPS_SQ_DECL(name, params, args) int sq_##name params;
STORE_OPS(STORE_OPS_SQ_DECL)
#undef STORE_OPS_SQ_DECL

/* store_request.c: the per-request view of role assignments. A call of
 * the store's entry name on this thread (every dispatched call says it):
 * anything but a read forgets what the request has cached. The dispatch of
 * role_foreach_principal without the cache. */
void store_req_note(const char *name);
/* Whether the entry name only reads (the list store_req_note keeps the
 * request's view for). */
bool store_req_is_read(const char *name);
/* Whether name is one of the store's entries (STORE_OPS). The lists that
 * classify entries by name (store_request.c's reads, pg_cache.c's) are
 * checked against it by the tests: a renamed entry must not leave a stale
 * name behind while its new name falls to the default. */
bool store_op_exists(const char *name);
/* The first name in store_request.c's list of reads that is no entry,
 * or NULL. */
const char *store_req_unknown_name(void);
int store_role_foreach_principal_uncached(struct store *s, const char *principal,
					  int (*fn)(const char *role, const char *scope, void *ud),
					  void *ud);
/* Whether this thread is inside a request's view (store_request_begin):
 * then a backend that reads a token or a browser session may read the
 * owner's role assignments in the same statement and hand them over with
 * store_req_prime: rows_json is a JSON array of [role, scope] pairs (NULL:
 * none), principal "user:NAME". A text that does not parse, or too many
 * rows, primes nothing (they are read when asked, as without it). */
bool store_req_wants_roles(void);
void store_req_prime(struct store *s, const char *principal, const char *rows_json);
/* The SQL of that subquery, per backend, for a users row aliased u. */
#define STORE_PG_ROLES_OF_U                                                    \
	"(SELECT json_agg(json_build_array(ra.role, ra.scope) ORDER BY ra.id)" \
	" FROM role_assignments ra WHERE ra.principal = 'user:' || u.name)"
#define STORE_SQ_ROLES_OF_U                                                          \
	"(SELECT json_group_array(json_array(role, scope)) FROM (SELECT role, scope" \
	" FROM role_assignments WHERE principal = 'user:' || u.name ORDER BY id))"

/* Every backend calls this once per statement it sends or runs (BEGIN and
 * COMMIT included): store_statements() counts them per thread. */
void store_statement_count(void);

/* The names (without "store_") of the entries be lacks, comma-separated,
 * into buf; 0 when it has every one, or how many are missing. */
int store_backend_missing(const struct store_backend *be, char *buf, size_t size);
