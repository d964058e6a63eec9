/* Process-wide counters for GET /metrics (Prometheus text format).
 *
 * Counters are C11 atomics: any thread may bump them (the HTTP server and
 * the terminal on the loop, the connect checks on workers). The gauges that
 * only the loop knows (active sessions) are passed to metrics_render() by
 * its caller. Nothing here allocates except metrics_render. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One HTTP response with this status went out. */
void metrics_http_status(int status);
/* A connect attempt ended with result code ("Created", "VmUnreachable",
 * ...; the connect checks' codes, docs/api.md, plus TooManySessions). Unknown codes count as
 * "other". */
void metrics_connect_result(const char *code);
/* The dial part of a connect (TCP, host key, auth, shell) took seconds. */
void metrics_connect_latency(double seconds);
/* Terminal bytes relayed. */
void metrics_bytes(uint64_t to_vm, uint64_t from_vm);
/* The native client's tunnels: one opened (+1) or ended (-1); bytes
 * carried. */
void metrics_tunnels_add(int delta);
void metrics_tunnel_bytes(uint64_t to_vm, uint64_t from_vm);
/* Event loop `loop` (< METRICS_LOOPS_MAX) woke up lag_seconds later than
 * its timer asked for. */
#define METRICS_LOOPS_MAX 64
void metrics_loop_lag(unsigned loop, double lag_seconds);
/* A connection went to the loop of the session it asked for. */
void metrics_conn_moved(void);
/* A connection was relayed to the instance holding its session (joined)
 * or could not be (failed: unreachable, wrong certificate, timeout). */
void metrics_relay_connection(bool joined);
/* Plaintext bytes relayed towards the holder (up) and back (down). */
void metrics_relay_bytes(uint64_t up, uint64_t down);
/* A connect was refused with 503 because the key gate was full (as many
 * threads as allowed were decrypting passphrase-protected keys). */
void metrics_key_decrypt_busy(void);
/* n connections were closed when accepted: reason "per_address", "total"
 * (the caps of limits.*) or "descriptors" (out of them). */
void metrics_conn_refused(const char *reason, uint64_t n);
/* The store unreachable (terminal/pending.c): how many records are kept
 * to be written when it is back, and how many were dropped past the cap. */
void metrics_store_pending(int64_t n);
void metrics_store_pending_dropped(void);
/* The PostgreSQL backend's read cache (store/pg_cache.c), as its stats
 * say when the metrics are read: whether it may answer now (its LISTEN
 * connection is up), its entries and bytes, hits and misses so far. All 0
 * on SQLite, which has none. */
void metrics_store_cache(bool up, uint64_t entries, uint64_t bytes, uint64_t hits, uint64_t misses);

/* The whole exposition as malloc'd text into *ret (caller frees), with
 * the gauges the caller knows. -ENOMEM on failure. */
/* Start-up: this instance's name, rendered as bastion_instance_info{name}. */
void metrics_set_instance(const char *name);
int metrics_render(size_t active_sessions, size_t dialing_sessions, unsigned loops, char **ret,
		   size_t *ret_len);

/* ---- what an operator alerts on (metrics_ops.c, issue 19) -------------
 * Sign-in failures by reason: "unknown_user", "bad_password", "disabled",
 * "throttled" (refused while locked), "busy" (the hashing gate was full);
 * anything else counts as "other". */
void metrics_signin_failure(const char *reason);
/* A sign-in lock began (an account's or an address's). */
void metrics_signin_lockout(void);
/* The serving certificate's notAfter (Unix seconds), set when it is
 * loaded (start, SIGHUP). */
void metrics_tls_cert_expiry(int64_t not_after);
/* A store error by kind: "busy", "timeout", "unavailable", "constraint";
 * anything else counts as "other". */
void metrics_store_error(const char *kind);
/* Appends these metrics and the process_* ones (from /proc/self) to the
 * exposition: malloc'd text into *ret, or -ENOMEM. */
int metrics_ops_render(char **ret);
