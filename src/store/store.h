/* The store: every durable thing bastion knows. The functions below are the
 * whole interface; each dispatches to the backend store_open_url chose
 * (store.c): embedded SQLite in WAL mode (sqlite*.c, the default) or
 * PostgreSQL (pg*.c, several instances sharing one database).
 *
 * Thread model: any thread may call any function. Each thread gets its own
 * connection on first use. Writes must not run on the loop thread (the API
 * runs on the worker pool, so handlers may call anything here).
 *
 * Errors: 0 or negative: -ENOENT not found, -EEXIST exists, -EBUSY still
 * referenced, -EINVAL bad argument, -BERR_STORE for database failures. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

/* Opens (creating if needed) DIR/bastion.db and applies pending migrations. */
int store_open(const char *data_dir, struct store **ret);
/* url NULL or "": store_open(data_dir). A postgres:// or postgresql:// URL
 * (libpq's syntax): that database, migrated under an advisory lock so that
 * instances starting together do not race. Anything else: -EINVAL. The URL
 * is never logged (it may hold a password). */
int store_open_url(const char *url, const char *data_dir, struct store **ret);
bool store_url_is_pg(const char *url);
/* A PostgreSQL store opened for tools that must not change it (`audit
 * export`, `serve --check-config`): no migration, every transaction
 * read-only. -EINVAL for a URL that is not postgres://, -BERR_STORE when the
 * server cannot be reached or read, -EPROTO when its schema is newer than
 * this binary knows; *ret_version and *ret_known (either may be NULL) say
 * the database's version and this binary's. */
int store_open_url_ro(const char *url, struct store **ret, int *ret_version, int *ret_known);
void store_free(struct store *s);
/* Whether the store's server answered when last asked (a PostgreSQL
 * store asks every second on a thread of its own, and every call tells);
 * SQLite: always. Never waits: /healthz calls it on a loop. */
bool store_reachable(struct store *s);
/* "SQLite" or "PostgreSQL", for messages. */
const char *store_backend_name(struct store *s);
/* The PostgreSQL store's read cache (store/pg_cache.c): what it holds,
 * whether it listens for other instances' changes (it answers only then),
 * and its hits and misses since the store opened. SQLite: all zero (it
 * reads in-process; nothing is cached). */
struct store_cache_stats {
	size_t entries, bytes;
	bool listening;
	int listen_pid; /* its server process (pg_stat_activity.pid), or 0 */
	uint64_t hits, misses;
};
void store_cache_stats(struct store *s, struct store_cache_stats *ret);
/* Waits (at most 2 s) until every change committed before the call has
 * reached s's cache: a notification of its own, sent after them, is back
 * (PostgreSQL delivers them in commit order). For tests and measurements;
 * 0, -ETIMEDOUT, -EPIPE (not listening), or a store error. SQLite: 0. */
int store_cache_sync(struct store *s);
/* 0 when s's backend implements every function of the interface;
 * otherwise how many it lacks, their names (without "store_") comma-
 * separated into buf. Calling a missing one answers -ENOSYS. */
int store_check_complete(struct store *s, char *buf, size_t size);
/* The same for the backend url would open (NULL or "": SQLite), before
 * opening it. */
int store_url_check_complete(const char *url, char *buf, size_t size);

/* Current schema version after migrations. */
int store_schema_version(struct store *s);

/* The schema version this binary migrates to (the number of migrations):
 * `serve --check-config` refuses a store that is newer. */
int store_schema_known(void);

int64_t store_now(void); /* unix seconds */

/* How many statements this thread has sent to the store's database so far
 * (each one a round trip on PostgreSQL; BEGIN and COMMIT count): what a
 * request costs, for tests that pin it and for the bench. */
uint64_t store_statements(void);

/* One request's view of role assignments (store_request.c): between
 * store_request_begin() and store_request_end() on one thread,
 * store_role_foreach_principal reads a principal's assignments once and
 * answers the request's later calls from that copy, until the thread calls
 * a store function that may write (any but a read), which forgets it. A
 * change made meanwhile by another request is seen by the next request,
 * as before; nothing is kept from one request to the next. */
void store_request_begin(void);
void store_request_end(void);

/* Audit trail: one append-only record. principal, target and detail may be
 * NULL. detail is JSON text (an object) or NULL. Never pass a secret. */
int store_audit(struct store *s, const char *principal, const char *action, const char *target,
		const char *result, const char *detail);
/* The same with the record's own time ts (when it happened, not when it is
 * written: a record kept while the store was unreachable). once: written
 * only when no identical record (same ts, principal, action, target,
 * result and detail) is there already, so that a write retried after an
 * attempt whose outcome is unknown (the connection broke after the
 * COMMIT went out) is not in the trail twice. */
int store_audit_at(struct store *s, int64_t ts, bool once, const char *principal,
		   const char *action, const char *target, const char *result, const char *detail);

/* Host keys seen for a VM on first use (trust on first use). type is the
 * OpenSSH key type name ("ssh-ed25519"), b64 the public key blob. */
int store_hostkey_get(struct store *s, const char *vm_id, json_t **ret_array_of_lines);
int store_hostkey_add(struct store *s, const char *vm_id, const char *type, const char *b64);
/* Forgets them (the VM was reinstalled): the next connect records anew.
 * *ret_removed: how many there were. */
int store_hostkey_clear(struct store *s, const char *vm_id, int *ret_removed);

#include "store/store_ident.h"
#include "store/store_res.h"
#include "store/store_oidc.h"
#include "store/store_mfa.h"
