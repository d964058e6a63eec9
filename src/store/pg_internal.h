/* Private to src/store: the PostgreSQL plumbing shared by the pg*.c files
 * (connections, queries, transactions, error mapping). */
#pragma once

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/backend.h"

/* pg_advisory_lock keys: arbitrary, fixed, ours ("bastion" in ASCII and
 * a use). */
#define PG_LOCK_MIGRATE 0x62617374696f6e01LL
#define PG_LOCK_STALE   0x62617374696f6e10LL

/* Runs sql with n text parameters (NULL: SQL NULL) on this thread's
 * connection. *ret (when ret is not NULL) receives the result on success;
 * PQclear it. Returns 0, -EEXIST (unique violation), -ENOENT (foreign key
 * pointing at nothing), -ENOMEM, or -BERR_STORE (anything else, a broken
 * connection or a statement that ran past the 5 s timeout included).
 * Outside a transaction a broken connection is re-opened and the statement
 * tried once more. */
int pg_q(struct store *s, PGresult **ret, const char *sql, int n, const char *const *params);

/* As PQexecParams (n >= 0) or PQexec (n < 0: sql may hold several
 * statements; the last result), but giving up when no answer came within
 * 4.5 s: then *pc is closed and set to NULL, and NULL is returned
 * (pg_wait.c). */
PGresult *pg_exec_wait(PGconn **pc, const char *sql, int n, const char *const *params);

/* Runs fn inside a transaction (BEGIN ... COMMIT, or ROLLBACK when fn
 * returns < 0); inside one already open on this thread, inside a savepoint
 * of it. Audit lines written meanwhile reach stderr after the outermost
 * COMMIT only. Returns fn's result or a store error. */
int pg_tx(struct store *s, int (*fn)(struct store *s, void *ud), void *ud);
/* Whether this thread has a transaction open on s (pg_tx). */
bool pg_in_tx(struct store *s);

/* Rows of a result; the text of row r, column c (NULL for SQL NULL). */
const char *pg_val(const PGresult *res, int r, int c);
int64_t pg_i64(const PGresult *res, int r, int c);
/* How many rows a data-changing statement changed. */
int pg_changes(const PGresult *res);

/* Text forms of parameters: an integer, a 32-byte hash as bytea input. */
struct pg_num {
	char s[24];
};
const char *pg_num(struct pg_num *b, int64_t v);
struct pg_hash {
	char s[2 + 64 + 1];
};
const char *pg_hash(struct pg_hash *b, const uint8_t hash[32]);

/* A query that answers at most one row: 0 (res holds it), -ENOENT, or an
 * error as pg_q. */
int pg_row(struct store *s, PGresult **ret, const char *sql, int n, const char *const *params);

/* An audit line (with its '\n') for stderr: held until the outermost
 * COMMIT of this thread's transaction, dropped on its ROLLBACK, or written
 * at once outside one. */
void pg_audit_line(struct store *s, const char *line, size_t len);

/* A new connection of its own (not this thread's), with the store's
 * connection settings: for LISTEN (pg_instances.c). Blocks up to the 5 s
 * connect timeout; check PQstatus; PQfinish it. */
PGconn *pg_connect_new(struct store *s);

/* Copies src into dst (size bytes) or fails with -EOVERFLOW. */
int pg_copy(char *dst, size_t size, const char *src);

/* Blobs as bytea: a parameter (malloc'd "\\x" hex text; -E2BIG past 1 MiB)
 * and a column value copied into a malloc'd buffer (-BERR_STORE when NULL
 * or empty: a sealed blob never is). pg_vault.c. */
int pg_blob_param(const uint8_t *v, size_t len, char **ret);
int pg_blob_value(const PGresult *res, int row, int col, uint8_t **ret, size_t *ret_len);

/* Deleted vaults (pg_vaultdel.c), for pg_res.c: moves a vault resource's
 * rows to the deleted vaults (-ENOENT when id is not a vault), and whether
 * a deleted vault holds id (1), or not (0). */
int pg_vault_archive(struct store *s, const char *vault_id, int64_t now);
int pg_vault_deleted_reserved(struct store *s, const char *vault_id, int64_t now);

/* The PostgreSQL backend's functions, one per entry of STORE_OPS, all in
 * PG_OPS_DONE (store_check_complete finds none missing). */
#define STORE_OPS_PG_DECL(name, params, args) int pg_##name params;
STORE_OPS(STORE_OPS_PG_DECL)
#undef STORE_OPS_PG_DECL

/* What the PostgreSQL backend implements, by file. X(name, params, args)
 * as STORE_OPS, so that a name here that is not in the interface does not
 * compile. */
// clang-format off
#define PG_OPS_DONE(X) \
	X(schema_version, , ) X(audit, , ) X(audit_query, , ) X(audit_at, , ) \
	X(hostkey_get, , ) X(hostkey_add, , ) X(hostkey_clear, , ) \
	PG_OPS_IDENT(X) PG_OPS_THROTTLE(X) PG_OPS_ROLES(X) PG_OPS_RES(X) \
	PG_OPS_VAULT(X) PG_OPS_VAULTDEL(X) \
	X(session_open, , ) X(session_end, , ) X(session_close_stale, , ) \
	PG_OPS_OIDC(X) PG_OPS_TOKENS(X) PG_OPS_MFA(X) PG_OPS_INSTANCES(X) PG_OPS_REC(X) \
	PG_OPS_WAITS(X) PG_OPS_JOIN(X)
/* pg_waits.c, and pg_res_lock in pg_res.c (issue 15, item 4) */
#define PG_OPS_WAITS(X) X(wait_put, , ) X(session_holder, , ) X(wait_delete, , ) X(res_lock, , )
/* issue 15 item 5: pg_join.c; session_open_attached in pg_ops.c */
#define PG_OPS_JOIN(X) X(login_lookup, , ) X(session_open_attached, , ) X(res_get_chain, , )
/* pg_tokens.c, pg_retention.c (issue 19) */
#define PG_OPS_TOKENS(X) \
	X(token_insert, , ) X(token_lookup, , ) X(token_touch, , ) \
	X(token_foreach, , ) X(token_revoke, , ) \
	X(audit_prune, , ) X(session_prune, , ) X(session_bytes, , )
/* pg_instances.c */
#define PG_OPS_INSTANCES(X) \
	X(instance_claim, , ) X(instance_heartbeat, , ) X(instance_foreach, , ) \
	X(instance_reap, , ) X(instance_delete, , ) X(session_foreach_open, , ) \
	X(session_attached, , ) X(session_end_request, , ) \
	X(session_end_request_user, , ) X(session_end_requests_take, , ) \
	X(listen_open, , )
/* pg_rec.c */
#define PG_OPS_REC(X) \
	X(rec_open, , ) X(rec_chunks_add, , ) X(rec_finish, , ) X(rec_get, , ) \
	X(rec_query, , ) X(rec_chunk_get, , ) X(rec_prune, , ) X(rec_key_foreach, , ) \
	X(rec_key_update, , ) X(rec_interrupt, , )
/* pg_ident.c */
#define PG_OPS_IDENT(X) \
	X(user_count, , ) X(user_get, , ) X(user_get_by_id, , ) X(user_put, , ) \
	X(user_create_first, , ) X(user_set_disabled, , ) X(user_delete, , ) \
	X(user_foreach, , ) X(login_add, , ) X(login_get, , ) X(login_delete, , ) \
	X(login_delete_user, , ) X(login_trim, , ) X(token_add, , ) X(token_get, , ) \
	X(token_delete, , ) X(token_count, , ) X(ident_purge_expired, , ) \
	X(token_delete_user, , ) X(ident_end_user, , ) X(term_open_count, , )
/* pg_throttle.c */
#define PG_OPS_THROTTLE(X) \
	X(throttle_get, , ) X(throttle_update, , ) X(throttle_delete, , ) \
	X(throttle_purge, , ) X(login_known_add, , ) X(login_known, , ) \
	X(login_known_forget, , )
/* pg_roles.c */
#define PG_OPS_ROLES(X) \
	X(role_put, , ) X(role_get, , ) X(role_delete, , ) X(role_foreach, , ) \
	X(role_foreach_principal, , ) X(role_root_owners, , ) \
	X(role_put_checked, , ) X(role_delete_checked, , ) X(res_tx, , )
/* pg_res.c */
#define PG_OPS_RES(X) \
	X(group_put, , ) X(group_exists, , ) X(group_delete, , ) \
	X(group_foreach, , ) X(group_blocker, , ) X(res_put, , ) X(res_get, , ) \
	X(res_delete, , ) X(res_blocker, , ) X(res_foreach_referrer, , ) \
	X(res_foreach, , ) X(res_foreach_type, , )
/* pg_oidc.c */
#define PG_OPS_OIDC(X) \
	X(oidc_pending_put, , ) X(oidc_pending_take, , ) X(oidc_link_get, , ) \
	X(oidc_link_add, , ) X(oidc_user_create, , )
/* pg_vault.c */
#define PG_OPS_VAULT(X) \
	X(vault_meta_get, , ) X(vault_meta_put, , ) X(vault_key_get, , ) \
	X(vault_key_add, , ) X(vault_key_update, , ) X(vault_key_foreach, , ) \
	X(secret_get, , ) X(secret_count, , ) X(secret_add_version, , ) \
	X(secret_version_get, , ) X(secret_foreach, , ) \
	X(secret_versions_foreach, , ) X(secret_soft_delete, , ) \
	X(secret_recover, , ) X(secret_purge, , ) X(secret_purge_expired, , ) \
	X(vault_policy_get, , ) X(vault_policy_put, , ) \
	X(vault_policy_delete, , ) X(vault_policy_foreach, , )
/* pg_vaultdel.c */
#define PG_OPS_VAULTDEL(X) \
	X(vault_deleted_foreach, , ) X(vault_deleted_get, , ) X(vault_recover, , ) \
	X(vault_purge_deleted, , ) X(vault_deleted_expire, , )
/* pg_mfa.c */
#define PG_OPS_MFA(X) \
	X(mfa_get, , ) X(mfa_totp_put, , ) X(mfa_totp_confirm, , ) X(mfa_totp_use, , ) \
	X(mfa_recovery_use, , ) X(mfa_delete, , ) \
	X(wa_cred_add, , ) X(wa_cred_get, , ) X(wa_cred_foreach, , ) X(wa_cred_count_set, , ) \
	X(wa_challenge_add, , ) X(wa_challenge_take, , ) X(login_mfa_mark, , ) X(login_mfa_marked, , ) \
	X(login_mfa_via, , )
// clang-format on

/* pg_cache.c: the per-instance read cache (what it is, why it stays
 * true: the file's opening comment). Domains: what a cached read depends
 * on; a write to a domain's tables drops its entries. */
enum { PGC_IDENT = 1, PGC_ROLES = 2, PGC_RES = 4, PGC_HOSTKEYS = 8, PGC_ALL = 15 };
#define PGC_NDOM 4
/* A fill armed by a miss: the generations its read started from. */
struct pgc_fill {
	bool on;
	unsigned mask;
	uint64_t gen[PGC_NDOM];
};
struct pg_cache;
/* The store's cache, or NULL (read-only stores have none). */
struct pg_cache *pg_cache_of(struct store *s);
int pgc_open(struct pg_cache **ret);
/* The first name in the cache's lists of writes (harmless, one domain's)
 * that is no store entry, or NULL (store_op_exists). */
const char *pgc_unknown_name(void);
void pgc_free(struct pg_cache *c);
/* The probe's second: drains the LISTEN connection, opens it again when
 * it is down. */
void pgc_tick(struct store *s);
/* A statement was answered (pg_q): the store is there. */
void pgc_answered(struct store *s);
/* 1: a hit, *ret_val a malloc'd copy of the value (free it); 0: a miss, f
 * armed (read, then pgc_put with f); -1: the cache may not answer now
 * (read, keep nothing). key: kind byte first. */
int pgc_get(struct store *s, const char *key, size_t key_len, unsigned mask, char **ret_val,
	    size_t *ret_len, struct pgc_fill *f);
void pgc_put(struct store *s, const char *key, size_t key_len, const char *val, size_t val_len,
	     const struct pgc_fill *f);
/* Calls fn on the value of each entry whose key starts with kind, under
 * the cache's lock (fn changes it in place, keeping its length). */
void pgc_patch(struct store *s, char kind, bool (*fn)(char *val, size_t len, void *ud), void *ud);
void pgc_after(struct store *s, const char *name);
void pgc_stats(struct store *s, struct store_cache_stats *ret);
int pgc_sync(struct store *s);

/* The reads pg_cached.c answers from the cache, as the store reads them. */
int pg_token_lookup_db(struct store *s, const uint8_t hash[32], struct store_token *ret,
		       char **ret_roles);
int pg_login_lookup_db(struct store *s, const uint8_t hash[32], struct store_login *ret,
		       char **ret_roles);
int pg_login_mfa_via_db(struct store *s, const uint8_t hash[32], char ret_via[17]);
int pg_token_touch_db(struct store *s, const char *id, int64_t now, int64_t min_gap);
int pg_role_foreach_principal_db(struct store *s, const char *principal,
				 int (*fn)(const char *role, const char *scope, void *ud),
				 void *ud);
int pg_res_get_chain_db(struct store *s, const char *id, const char *field1, const char *field2,
			json_t *ret[3]);
int pg_res_get_db(struct store *s, const char *id, json_t **ret_props);
int pg_res_foreach_db(struct store *s, const char *group, const char *type,
		      int (*fn)(const char *id, const char *name, json_t *props, void *ud),
		      void *ud);
int pg_res_foreach_type_db(struct store *s, const char *type,
			   int (*fn)(const char *id, const char *name, json_t *props, void *ud),
			   void *ud);
int pg_hostkey_get_db(struct store *s, const char *vm_id, json_t **ret_array_of_lines);

/* pg_schema.c: the migrations, version i to i + 1 at index i. */
extern const char *const pg_migrations[];
extern const int pg_n_migrations;
