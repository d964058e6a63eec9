/* Process-wide counters for GET /metrics (Prometheus text format).
 *
 * Counters are C11 atomics: any thread may bump them (the HTTP server and
 * the terminal on the loop, the connect checks on workers). The gauges that
 * only the loop knows (active sessions) are passed to metrics_render() by
 * its caller. Nothing here allocates except metrics_render. */
#pragma once

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
/* Event loop `loop` (< METRICS_LOOPS_MAX) woke up lag_seconds later than
 * its timer asked for. */
#define METRICS_LOOPS_MAX 64
void metrics_loop_lag(unsigned loop, double lag_seconds);
/* A connection went to the loop of the session it asked for. */
void metrics_conn_moved(void);
/* A connect was refused with 503 because the key gate was full (as many
 * threads as allowed were decrypting passphrase-protected keys). */
void metrics_key_decrypt_busy(void);
/* n connections were closed when accepted: reason "per_address", "total"
 * (the caps of limits.*) or "descriptors" (out of them). */
void metrics_conn_refused(const char *reason, uint64_t n);

/* The whole exposition as malloc'd text into *ret (caller frees), with
 * the gauges the caller knows. -ENOMEM on failure. */
/* Start-up: this instance's name, rendered as bastion_instance_info{name}. */
void metrics_set_instance(const char *name);
int metrics_render(size_t active_sessions, size_t dialing_sessions, unsigned loops, char **ret,
		   size_t *ret_len);
