/* The store's interface as one list, for the backend table (backend.h),
 * the dispatch (store.c) and the check that a backend has every entry:
 * X(name, (parameters), (arguments)) for each public int store_NAME(struct
 * store *s, ...) of store.h, store_ident.h, store_res.h, store_vault.h and
 * store_ops.h. A new store function gets a line here; store.c defines
 * store_NAME from it, so a line that disagrees with its header's prototype
 * does not compile. */
#pragma once

#include "store/store_rec.h"

#define STORE_OPS(X)                                                                               \
	X(schema_version, (struct store * s), (s))                                                 \
	X(audit,                                                                                   \
	  (struct store * s, const char *principal, const char *action, const char *target,        \
	   const char *result, const char *detail),                                                \
	  (s, principal, action, target, result, detail))                                          \
	X(hostkey_get, (struct store * s, const char *vm_id, json_t **ret_array_of_lines),         \
	  (s, vm_id, ret_array_of_lines))                                                          \
	X(hostkey_add, (struct store * s, const char *vm_id, const char *type, const char *b64),   \
	  (s, vm_id, type, b64))                                                                   \
	X(hostkey_clear, (struct store * s, const char *vm_id, int *ret_removed),                  \
	  (s, vm_id, ret_removed))                                                                 \
	X(user_count, (struct store * s, int64_t * ret), (s, ret))                                 \
	X(user_get, (struct store * s, const char *name, struct store_user *ret), (s, name, ret))  \
	X(user_get_by_id, (struct store * s, int64_t id, struct store_user * ret), (s, id, ret))   \
	X(user_put,                                                                                \
	  (struct store * s, const char *name, const char *password_hash, bool *ret_created,       \
	   int64_t *ret_id),                                                                       \
	  (s, name, password_hash, ret_created, ret_id))                                           \
	X(user_create_first,                                                                       \
	  (struct store * s, const char *name, const char *password_hash, const char *role_id,     \
	   const char *role, const char *scope),                                                   \
	  (s, name, password_hash, role_id, role, scope))                                          \
	X(user_set_disabled, (struct store * s, const char *name, bool disabled),                  \
	  (s, name, disabled))                                                                     \
	X(user_delete, (struct store * s, const char *name), (s, name))                            \
	X(user_foreach,                                                                            \
	  (struct store * s, int (*fn)(const struct store_user *u, void *ud), void *ud),           \
	  (s, fn, ud))                                                                             \
	X(login_add,                                                                               \
	  (struct store * s, const uint8_t hash[32], int64_t user_id, const char *csrf,            \
	   int64_t expires_at),                                                                    \
	  (s, hash, user_id, csrf, expires_at))                                                    \
	X(login_get,                                                                               \
	  (struct store * s, const uint8_t hash[32], int64_t *ret_user_id, char ret_csrf[64],      \
	   int64_t *ret_expires_at),                                                               \
	  (s, hash, ret_user_id, ret_csrf, ret_expires_at))                                        \
	X(login_delete, (struct store * s, const uint8_t hash[32]), (s, hash))                     \
	X(login_delete_user, (struct store * s, int64_t user_id, const uint8_t keep[32]),          \
	  (s, user_id, keep))                                                                      \
	X(login_trim, (struct store * s, int64_t user_id, int keep), (s, user_id, keep))           \
	X(token_add,                                                                               \
	  (struct store * s, const uint8_t hash[32], int64_t user_id, const char *name,            \
	   int64_t expires_at),                                                                    \
	  (s, hash, user_id, name, expires_at))                                                    \
	X(token_get,                                                                               \
	  (struct store * s, const uint8_t hash[32], int64_t *ret_user_id,                         \
	   int64_t *ret_expires_at),                                                               \
	  (s, hash, ret_user_id, ret_expires_at))                                                  \
	X(token_delete, (struct store * s, const uint8_t hash[32]), (s, hash))                     \
	X(token_count, (struct store * s, int64_t user_id, int64_t now, int64_t * ret),            \
	  (s, user_id, now, ret))                                                                  \
	X(ident_purge_expired, (struct store * s, int64_t now), (s, now))                          \
	X(role_put,                                                                                \
	  (struct store * s, const char *id, const char *principal, const char *role,              \
	   const char *scope, bool *ret_created),                                                  \
	  (s, id, principal, role, scope, ret_created))                                            \
	X(role_get, (struct store * s, const char *id, struct store_role *ret), (s, id, ret))      \
	X(role_delete, (struct store * s, const char *id), (s, id))                                \
	X(role_foreach,                                                                            \
	  (struct store * s, int (*fn)(const struct store_role *ra, void *ud), void *ud),          \
	  (s, fn, ud))                                                                             \
	X(role_foreach_principal,                                                                  \
	  (struct store * s, const char *principal,                                                \
	   int (*fn)(const char *role, const char *scope, void *ud), void *ud),                    \
	  (s, principal, fn, ud))                                                                  \
	X(role_put_checked,                                                                        \
	  (struct store * s, const char *id, const char *principal, const char *role,              \
	   const char *scope, const char *expect_scope, bool *ret_created),                        \
	  (s, id, principal, role, scope, expect_scope, ret_created))                              \
	X(role_delete_checked, (struct store * s, const char *id, const char *expect_scope),       \
	  (s, id, expect_scope))                                                                   \
	X(role_root_owners, (struct store * s, int64_t * ret), (s, ret))                           \
	X(token_delete_user, (struct store * s, int64_t user_id), (s, user_id))                    \
	X(ident_end_user,                                                                          \
	  (struct store * s, int64_t user_id, const uint8_t keep_login[32],                        \
	   const uint8_t keep_token[32], int *ret_sessions, int *ret_tokens),                      \
	  (s, user_id, keep_login, keep_token, ret_sessions, ret_tokens))                          \
	X(term_open_count, (struct store * s, const char *user, int64_t *ret), (s, user, ret))     \
	X(throttle_get, (struct store * s, const char *key, struct store_throttle *ret),           \
	  (s, key, ret))                                                                           \
	X(throttle_update,                                                                         \
	  (struct store * s, const char *key,                                                      \
	   int (*fn)(struct store_throttle * t, bool existed, void *ud), void *ud),                \
	  (s, key, fn, ud))                                                                        \
	X(throttle_delete, (struct store * s, const char *key), (s, key))                          \
	X(throttle_purge, (struct store * s, int64_t before), (s, before))                         \
	X(login_known_add,                                                                         \
	  (struct store * s, const char *account, const char *addr, int64_t now, int keep_max),    \
	  (s, account, addr, now, keep_max))                                                       \
	X(login_known, (struct store * s, const char *account, const char *addr, int64_t since),   \
	  (s, account, addr, since))                                                               \
	X(login_known_forget, (struct store * s, const char *account), (s, account))               \
	X(group_put, (struct store * s, const char *name, bool *ret_created),                      \
	  (s, name, ret_created))                                                                  \
	X(group_exists, (struct store * s, const char *name), (s, name))                           \
	X(group_delete, (struct store * s, const char *name), (s, name))                           \
	X(group_foreach, (struct store * s, int (*fn)(const char *name, void *ud), void *ud),      \
	  (s, fn, ud))                                                                             \
	X(group_blocker, (struct store * s, const char *name, char **ret_id), (s, name, ret_id))   \
	X(res_put,                                                                                 \
	  (struct store * s, const char *group, const char *type, const char *name,                \
	   const json_t *props, const char *const *refs, bool *ret_created),                       \
	  (s, group, type, name, props, refs, ret_created))                                        \
	X(res_get, (struct store * s, const char *id, json_t **ret_props), (s, id, ret_props))     \
	X(res_delete, (struct store * s, const char *id), (s, id))                                 \
	X(res_blocker, (struct store * s, const char *id, char **ret_id), (s, id, ret_id))         \
	X(res_foreach_referrer,                                                                    \
	  (struct store * s, const char *id, const char *type,                                     \
	   int (*fn)(const char *id, const char *name, json_t *props, void *ud), void *ud),        \
	  (s, id, type, fn, ud))                                                                   \
	X(res_foreach,                                                                             \
	  (struct store * s, const char *group, const char *type,                                  \
	   int (*fn)(const char *id, const char *name, json_t *props, void *ud), void *ud),        \
	  (s, group, type, fn, ud))                                                                \
	X(res_foreach_type,                                                                        \
	  (struct store * s, const char *type,                                                     \
	   int (*fn)(const char *id, const char *name, json_t *props, void *ud), void *ud),        \
	  (s, type, fn, ud))                                                                       \
	X(res_tx, (struct store * s, int (*fn)(struct store * s, void *ud), void *ud),             \
	  (s, fn, ud))                                                                             \
	X(vault_meta_get, (struct store * s, const char *name, uint8_t **ret, size_t *ret_len),    \
	  (s, name, ret, ret_len))                                                                 \
	X(vault_meta_put, (struct store * s, const char *name, const uint8_t *v, size_t len),      \
	  (s, name, v, len))                                                                       \
	X(vault_key_get, (struct store * s, const char *vault_id, uint8_t **ret, size_t *ret_len), \
	  (s, vault_id, ret, ret_len))                                                             \
	X(vault_key_add, (struct store * s, const char *vault_id, const uint8_t *w, size_t len),   \
	  (s, vault_id, w, len))                                                                   \
	X(vault_key_update,                                                                        \
	  (struct store * s, const char *vault_id, const uint8_t *w, size_t len),                  \
	  (s, vault_id, w, len))                                                                   \
	X(vault_key_foreach,                                                                       \
	  (struct store * s,                                                                       \
	   int (*fn)(const char *vault_id, const uint8_t *w, size_t len, void *ud), void *ud),     \
	  (s, fn, ud))                                                                             \
	X(secret_get,                                                                              \
	  (struct store * s, const char *vault_id, const char *name, struct store_secret *ret),    \
	  (s, vault_id, name, ret))                                                                \
	X(secret_count, (struct store * s, const char *vault_id, int64_t *ret),                    \
	  (s, vault_id, ret))                                                                      \
	X(secret_add_version,                                                                      \
	  (struct store * s, const char *vault_id, const char *name, const char *version,          \
	   const char *content_type, const uint8_t *sealed, size_t sealed_len),                    \
	  (s, vault_id, name, version, content_type, sealed, sealed_len))                          \
	X(secret_version_get,                                                                      \
	  (struct store * s, const char *vault_id, const char *name, const char *version,          \
	   struct store_secret_version *ret),                                                      \
	  (s, vault_id, name, version, ret))                                                       \
	X(secret_foreach,                                                                          \
	  (struct store * s, const char *vault_id, bool deleted,                                   \
	   int (*fn)(const struct store_secret *sec, void *ud), void *ud),                         \
	  (s, vault_id, deleted, fn, ud))                                                          \
	X(secret_versions_foreach,                                                                 \
	  (struct store * s, const char *vault_id, const char *name,                               \
	   int (*fn)(const struct store_secret_version *v, void *ud), void *ud),                   \
	  (s, vault_id, name, fn, ud))                                                             \
	X(secret_soft_delete,                                                                      \
	  (struct store * s, const char *vault_id, const char *name, int64_t now,                  \
	   int64_t purge_at),                                                                      \
	  (s, vault_id, name, now, purge_at))                                                      \
	X(secret_recover, (struct store * s, const char *vault_id, const char *name),              \
	  (s, vault_id, name))                                                                     \
	X(secret_purge, (struct store * s, const char *vault_id, const char *name),                \
	  (s, vault_id, name))                                                                     \
	X(secret_purge_expired, (struct store * s, const char *vault_id, int64_t now),             \
	  (s, vault_id, now))                                                                      \
	X(vault_policy_get,                                                                        \
	  (struct store * s, const char *vault_id, const char *principal,                          \
	   unsigned *ret_permissions),                                                             \
	  (s, vault_id, principal, ret_permissions))                                               \
	X(vault_policy_put,                                                                        \
	  (struct store * s, const char *vault_id, const char *principal, unsigned permissions,    \
	   bool *ret_created),                                                                     \
	  (s, vault_id, principal, permissions, ret_created))                                      \
	X(vault_policy_delete, (struct store * s, const char *vault_id, const char *principal),    \
	  (s, vault_id, principal))                                                                \
	X(vault_policy_foreach,                                                                    \
	  (struct store * s, const char *vault_id,                                                 \
	   int (*fn)(const char *principal, unsigned permissions, void *ud), void *ud),            \
	  (s, vault_id, fn, ud))                                                                   \
	X(vault_deleted_foreach,                                                                   \
	  (struct store * s, const char *group, int64_t now,                                       \
	   int (*fn)(const struct store_deleted_vault *d, void *ud), void *ud),                    \
	  (s, group, now, fn, ud))                                                                 \
	X(vault_deleted_get,                                                                       \
	  (struct store * s, const char *vault_id, int64_t now, struct store_deleted_vault *ret),  \
	  (s, vault_id, now, ret))                                                                 \
	X(vault_recover, (struct store * s, const char *vault_id, int64_t now),                    \
	  (s, vault_id, now))                                                                      \
	X(vault_purge_deleted, (struct store * s, const char *vault_id), (s, vault_id))            \
	X(vault_deleted_expire, (struct store * s, int64_t now), (s, now))                         \
	X(session_open, (struct store * s, const struct store_session *ss), (s, ss))               \
	X(session_end,                                                                             \
	  (struct store * s, const struct store_session *ss, int64_t ended_at, const char *reason, \
	   uint64_t bytes_to_vm, uint64_t bytes_from_vm),                                          \
	  (s, ss, ended_at, reason, bytes_to_vm, bytes_from_vm))                                   \
	X(session_close_stale, (struct store * s, int64_t now, const char *reason, int *ret_n),    \
	  (s, now, reason, ret_n))                                                                 \
	/* instances and the live-session registry (issue 15 item 2, store_cluster.h) */           \
	X(instance_claim,                                                                          \
	  (struct store * s, const struct store_instance *in, int64_t now, int64_t lease_s,        \
	   const char *reason, int *ret_ended),                                                    \
	  (s, in, now, lease_s, reason, ret_ended))                                                \
	X(instance_heartbeat,                                                                      \
	  (struct store * s, const char *name, const char *state, int64_t now),                    \
	  (s, name, state, now))                                                                   \
	X(instance_foreach,                                                                        \
	  (struct store * s, int (*fn)(const struct store_instance *in, void *ud), void *ud),      \
	  (s, fn, ud))                                                                             \
	X(instance_reap,                                                                           \
	  (struct store * s, const char *self, int64_t now, int64_t lease_s, int *ret_lost,        \
	   int *ret_ended),                                                                        \
	  (s, self, now, lease_s, ret_lost, ret_ended))                                            \
	X(instance_delete, (struct store * s, const char *name), (s, name))                        \
	X(session_foreach_open,                                                                    \
	  (struct store * s, const char *except,                                                   \
	   int (*fn)(const struct store_live_session *ls, void *ud), void *ud),                    \
	  (s, except, fn, ud))                                                                     \
	X(session_attached, (struct store * s, const char *id), (s, id))                           \
	X(session_end_request,                                                                     \
	  (struct store * s, const char *id, const char *self, const char *reason,                 \
	   char *ret_instance, char *ret_user, char *ret_bastion),                                 \
	  (s, id, self, reason, ret_instance, ret_user, ret_bastion))                              \
	X(session_end_request_user,                                                                \
	  (struct store * s, const char *user, const char *self, const char *reason, int *ret_n),  \
	  (s, user, self, reason, ret_n))                                                          \
	X(session_end_requests_take,                                                               \
	  (struct store * s, const char *instance,                                                 \
	   int (*fn)(const char *id, const char *reason, void *ud), void *ud),                     \
	  (s, instance, fn, ud))                                                                   \
	X(listen_open, (struct store * s, const char *channel, struct store_listener **ret),       \
	  (s, channel, ret))                                                                       \
	X(audit_query,                                                                             \
	  (struct store * s, const struct store_audit_filter *f,                                   \
	   int (*fn)(const struct store_audit_rec *r, void *ud), void *ud),                        \
	  (s, f, fn, ud))                                                                          \
	/* OpenID Connect sign-in (store_oidc.h; sqlite_oidc.c, pg_oidc.c) */                      \
	X(oidc_pending_put,                                                                        \
	  (struct store * s, const char *key, const char *kind, const char *data,                  \
	   int64_t expires_at, int64_t now, int64_t max_rows),                                     \
	  (s, key, kind, data, expires_at, now, max_rows))                                         \
	X(oidc_pending_take,                                                                       \
	  (struct store * s, const char *key, const char *kind, int64_t now, char **ret_data),     \
	  (s, key, kind, now, ret_data))                                                           \
	X(oidc_link_get,                                                                           \
	  (struct store * s, int64_t user_id, char ret_issuer[STORE_OIDC_ISS_MAX + 1],             \
	   char ret_subject[STORE_OIDC_SUB_MAX + 1]),                                              \
	  (s, user_id, ret_issuer, ret_subject))                                                   \
	X(oidc_link_add,                                                                           \
	  (struct store * s, int64_t user_id, const char *issuer, const char *subject),            \
	  (s, user_id, issuer, subject))                                                           \
	X(oidc_user_create,                                                                        \
	  (struct store * s, const char *name, const char *password_hash, const char *issuer,      \
	   const char *subject, int64_t *ret_id),                                                  \
	  (s, name, password_hash, issuer, subject, ret_id))                                       \
	/* API token lifecycle (issue 19): sqlite_tokens.c, pg_tokens.c */                         \
	X(token_insert, (struct store * s, const uint8_t hash[32], const struct store_token *t),   \
	  (s, hash, t))                                                                            \
	X(token_lookup, (struct store * s, const uint8_t hash[32], struct store_token *ret),       \
	  (s, hash, ret))                                                                          \
	X(token_touch, (struct store * s, const char *id, int64_t now, int64_t min_gap),           \
	  (s, id, now, min_gap))                                                                   \
	X(token_foreach,                                                                           \
	  (struct store * s, int64_t user_id, int64_t now,                                         \
	   int (*fn)(const struct store_token *t, void *ud), void *ud),                            \
	  (s, user_id, now, fn, ud))                                                               \
	X(token_revoke,                                                                            \
	  (struct store * s, const char *id, int64_t user_id, struct store_token *ret),            \
	  (s, id, user_id, ret))                                                                   \
	/* retention (issue 19): sqlite_retention.c, pg_retention.c */                             \
	X(audit_prune,                                                                             \
	  (struct store * s, int64_t before, int batch, int *ret_n, int64_t *ret_oldest),          \
	  (s, before, batch, ret_n, ret_oldest))                                                   \
	X(session_prune,                                                                           \
	  (struct store * s, int64_t before, int batch, int *ret_n, int64_t *ret_oldest),          \
	  (s, before, batch, ret_n, ret_oldest))                                                   \
	X(session_bytes,                                                                           \
	  (struct store * s, const char *id, uint64_t bytes_to_vm, uint64_t bytes_from_vm),        \
	  (s, id, bytes_to_vm, bytes_from_vm))                                                     \
	/* The store unreachable: what the terminal records is written later,          */          \
	/* with its own time, once (sqlite_pending.c, pg_audit.c).                      */         \
	X(audit_at,                                                                                \
	  (struct store * s, int64_t ts, bool once, const char *principal, const char *action,     \
	   const char *target, const char *result, const char *detail),                            \
	  (s, ts, once, principal, action, target, result, detail))                                \
	/* second factors (store_mfa.h; identity/mfa.h) */                                         \
	X(mfa_get, (struct store * s, int64_t user_id, struct store_mfa * ret), (s, user_id, ret)) \
	X(mfa_totp_put, (struct store * s, int64_t user_id, const uint8_t *sealed, size_t len),    \
	  (s, user_id, sealed, len))                                                               \
	X(mfa_totp_confirm,                                                                        \
	  (struct store * s, int64_t user_id, int64_t step, const uint8_t *hashes, int n),         \
	  (s, user_id, step, hashes, n))                                                           \
	X(mfa_totp_use, (struct store * s, int64_t user_id, int64_t step), (s, user_id, step))     \
	X(mfa_recovery_use, (struct store * s, int64_t user_id, const uint8_t hash[32]),           \
	  (s, user_id, hash))                                                                      \
	X(mfa_delete, (struct store * s, int64_t user_id, bool passkeys, int *ret_removed),        \
	  (s, user_id, passkeys, ret_removed))                                                     \
	X(wa_cred_add, (struct store * s, const struct store_wa_cred *c), (s, c))                  \
	X(wa_cred_get,                                                                             \
	  (struct store * s, const uint8_t *id, size_t id_len, struct store_wa_cred *ret),         \
	  (s, id, id_len, ret))                                                                    \
	X(wa_cred_foreach,                                                                         \
	  (struct store * s, int64_t user_id, int (*fn)(const struct store_wa_cred *c, void *ud),  \
	   void *ud),                                                                              \
	  (s, user_id, fn, ud))                                                                    \
	X(wa_cred_count_set,                                                                       \
	  (struct store * s, const uint8_t *id, size_t id_len, int64_t seen_before,                \
	   int64_t count),                                                                         \
	  (s, id, id_len, seen_before, count))                                                     \
	X(wa_challenge_add,                                                                        \
	  (struct store * s, const uint8_t challenge[32], int64_t user_id, const char *purpose,    \
	   int64_t expires_at),                                                                    \
	  (s, challenge, user_id, purpose, expires_at))                                            \
	X(wa_challenge_take,                                                                       \
	  (struct store * s, const uint8_t challenge[32], const char *purpose, int64_t now,        \
	   int64_t *ret_user_id),                                                                  \
	  (s, challenge, purpose, now, ret_user_id))                                               \
	X(login_mfa_mark, (struct store * s, const uint8_t hash[32], const char *via),             \
	  (s, hash, via))                                                                          \
	X(login_mfa_marked, (struct store * s, const uint8_t hash[32]), (s, hash))                 \
	/* session recordings (store_rec.h; sqlite_rec.c, pg_rec.c) */                             \
	X(rec_open, (struct store * s, const struct store_rec *rec), (s, rec))                     \
	X(rec_chunks_add,                                                                          \
	  (struct store * s, const char *id, int64_t seq, const struct store_rec_chunk *c,         \
	   size_t n, int64_t bytes),                                                               \
	  (s, id, seq, c, n, bytes))                                                               \
	X(rec_finish,                                                                              \
	  (struct store * s, const char *id, int64_t ended_at, int64_t duration_ms,                \
	   const char *state, const char *error, const uint8_t *final_tag),                        \
	  (s, id, ended_at, duration_ms, state, error, final_tag))                                 \
	X(rec_get, (struct store * s, const char *id, struct store_rec *ret), (s, id, ret))        \
	X(rec_query,                                                                               \
	  (struct store * s, const struct store_rec_filter *f,                                     \
	   int (*fn)(const struct store_rec *rec, int64_t seq, void *ud), void *ud),               \
	  (s, f, fn, ud))                                                                          \
	X(rec_chunk_get,                                                                           \
	  (struct store * s, const char *id, int64_t seq, uint8_t **ret, size_t *ret_len,          \
	   uint8_t ret_tag[STORE_REC_TAG_BYTES]),                                                  \
	  (s, id, seq, ret, ret_len, ret_tag))                                                     \
	X(rec_prune, (struct store * s, int64_t before, int limit, int *ret_n),                    \
	  (s, before, limit, ret_n))                                                               \
	X(rec_key_foreach,                                                                         \
	  (struct store * s, int (*fn)(const char *id, const uint8_t *w, size_t len, void *ud),    \
	   void *ud),                                                                              \
	  (s, fn, ud))                                                                             \
	X(rec_key_update, (struct store * s, const char *id, const uint8_t *w, size_t len),        \
	  (s, id, w, len))                                                                         \
	/* issue 17, a lost instance's recordings (sqlite_rec.c, pg_rec.c) */                      \
	X(rec_interrupt,                                                                           \
	  (struct store * s, const char *instance, int64_t now, const char *reason, int *ret_n),   \
	  (s, instance, now, reason, ret_n))                                                       \
	/* issue 18, OIDC and MFA: the mark's via ("oidc", or "pending": the   \
	 * sign-in waits for bastion's own second factor) */                   \
	X(login_mfa_via, (struct store * s, const uint8_t hash[32], char ret_via[17]),             \
	  (s, hash, ret_via))                                                                      \
	/* issue 15: connects waiting for answers, and where (store_waits.h; \
	 * sqlite_waits.c, pg_waits.c) */                     \
	X(wait_put,                                                                                \
	  (struct store * s, const char *id, const char *instance, int64_t now,                    \
	   int64_t expires_at),                                                                    \
	  (s, id, instance, now, expires_at))                                                      \
	X(session_holder, (struct store * s, const char *id, int64_t now, char *ret_instance),     \
	  (s, id, now, ret_instance))                                                              \
	X(wait_delete, (struct store * s, const char *id), (s, id))                                \
	X(res_lock, (struct store * s, const char *id), (s, id))                                   \
	/* issue 15 item 5, fewer round trips: a browser session with its     \
	 * user in one read, a session's row made attached in one write */                    \
	X(login_lookup, (struct store * s, const uint8_t hash[32], struct store_login *ret),       \
	  (s, hash, ret))                                                                          \
	X(session_open_attached, (struct store * s, const struct store_session *ss), (s, ss))      \
	X(res_get_chain,                                                                           \
	  (struct store * s, const char *id, const char *field1, const char *field2,               \
	   json_t *ret[3]),                                                                        \
	  (s, id, field1, field2, ret))
