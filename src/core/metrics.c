/* Counters and histograms for GET /metrics. */
#include "core/metrics.h"
#include "core/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_STATUS 100
#define MAX_STATUS 599

static const char *const connect_codes[] = {
	"Created",
	"InvalidRequest",
	"AuthorizationFailed",
	"NetworkNotServed",
	"DestinationNotAllowed",
	"VaultAccessDenied",
	"InvalidPrivateKey",
	"VmUnreachable",
	"HostKeyMismatch",
	"SshAuthenticationFailed",
	"ShellFailed",
	"TooManySessions",
	"PortNotAllowed",
	"ResourceNotFound",
	"ServiceUnavailable",
	"other",
};
#define N_CODES (sizeof(connect_codes) / sizeof(connect_codes[0]))

/* Histogram upper bounds in seconds; one more bucket for +Inf. */
static const double latency_bounds[] = { 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30 };
#define N_LAT (sizeof(latency_bounds) / sizeof(latency_bounds[0]))
static const double lag_bounds[] = { 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1 };
#define N_LAG (sizeof(lag_bounds) / sizeof(lag_bounds[0]))

struct histo {
	atomic_uint_fast64_t bucket[16]; /* non-cumulative; [n] is +Inf */
	atomic_uint_fast64_t count;
	atomic_uint_fast64_t sum_us; /* microseconds: atomics on integers */
};

static struct {
	atomic_uint_fast64_t http[MAX_STATUS - MIN_STATUS + 1];
	atomic_uint_fast64_t connects[N_CODES];
	atomic_uint_fast64_t to_vm, from_vm;
	struct histo latency, lag;
	atomic_uint_fast64_t lag_last_us[METRICS_LOOPS_MAX];
	atomic_uint_fast64_t moved;
	/* relay to the instance holding a session (server/relay.c) */
	atomic_uint_fast64_t relayed, relayed_failed, relay_up, relay_down;
	atomic_uint_fast64_t key_busy;
	atomic_uint_fast64_t refused[4]; /* per_address, total, descriptors, proxy */
	/* The native client's tunnels (terminal/stream.c). */
	atomic_int_fast64_t tunnels;
	atomic_uint_fast64_t tunnel_to_vm, tunnel_from_vm;
	atomic_int_fast64_t store_pending;
	atomic_uint_fast64_t store_dropped;
	atomic_uint_fast64_t cache_up, cache_entries, cache_bytes, cache_hits, cache_misses;
} M;

static const char *const refusal_reasons[] = { "per_address", "total", "descriptors", "proxy" };

void metrics_http_status(int status)
{
	if (status >= MIN_STATUS && status <= MAX_STATUS)
		atomic_fetch_add_explicit(&M.http[status - MIN_STATUS], 1, memory_order_relaxed);
}

void metrics_connect_result(const char *code)
{
	size_t i;

	for (i = 0; i < N_CODES - 1; i++)
		if (code && strcmp(code, connect_codes[i]) == 0)
			break;
	atomic_fetch_add_explicit(&M.connects[i], 1, memory_order_relaxed);
}

static void histo_add(struct histo *h, const double *bounds, size_t n, double v)
{
	size_t i;

	if (v < 0)
		v = 0;
	for (i = 0; i < n; i++)
		if (v <= bounds[i])
			break;
	atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_us, (uint_fast64_t)(v * 1e6), memory_order_relaxed);
}

void metrics_connect_latency(double seconds)
{
	histo_add(&M.latency, latency_bounds, N_LAT, seconds);
}

void metrics_bytes(uint64_t to_vm, uint64_t from_vm)
{
	if (to_vm)
		atomic_fetch_add_explicit(&M.to_vm, to_vm, memory_order_relaxed);
	if (from_vm)
		atomic_fetch_add_explicit(&M.from_vm, from_vm, memory_order_relaxed);
}

void metrics_tunnels_add(int delta)
{
	atomic_fetch_add_explicit(&M.tunnels, delta, memory_order_relaxed);
}

void metrics_tunnel_bytes(uint64_t to_vm, uint64_t from_vm)
{
	if (to_vm)
		atomic_fetch_add_explicit(&M.tunnel_to_vm, to_vm, memory_order_relaxed);
	if (from_vm)
		atomic_fetch_add_explicit(&M.tunnel_from_vm, from_vm, memory_order_relaxed);
}

void metrics_loop_lag(unsigned loop, double lag_seconds)
{
	histo_add(&M.lag, lag_bounds, N_LAG, lag_seconds);
	if (loop < METRICS_LOOPS_MAX)
		atomic_store_explicit(&M.lag_last_us[loop],
				      (uint_fast64_t)(lag_seconds > 0 ? lag_seconds * 1e6 : 0),
				      memory_order_relaxed);
}

void metrics_conn_moved(void)
{
	atomic_fetch_add_explicit(&M.moved, 1, memory_order_relaxed);
}

void metrics_relay_connection(bool joined)
{
	atomic_fetch_add_explicit(joined ? &M.relayed : &M.relayed_failed, 1, memory_order_relaxed);
}

void metrics_relay_bytes(uint64_t up, uint64_t down)
{
	if (up)
		atomic_fetch_add_explicit(&M.relay_up, up, memory_order_relaxed);
	if (down)
		atomic_fetch_add_explicit(&M.relay_down, down, memory_order_relaxed);
}

void metrics_key_decrypt_busy(void)
{
	atomic_fetch_add_explicit(&M.key_busy, 1, memory_order_relaxed);
}

void metrics_store_pending(int64_t n)
{
	atomic_store_explicit(&M.store_pending, n, memory_order_relaxed);
}

void metrics_store_cache(bool up, uint64_t entries, uint64_t bytes, uint64_t hits, uint64_t misses)
{
	atomic_store_explicit(&M.cache_up, up, memory_order_relaxed);
	atomic_store_explicit(&M.cache_entries, entries, memory_order_relaxed);
	atomic_store_explicit(&M.cache_bytes, bytes, memory_order_relaxed);
	atomic_store_explicit(&M.cache_hits, hits, memory_order_relaxed);
	atomic_store_explicit(&M.cache_misses, misses, memory_order_relaxed);
}

void metrics_store_pending_dropped(void)
{
	atomic_fetch_add_explicit(&M.store_dropped, 1, memory_order_relaxed);
}

void metrics_conn_refused(const char *reason, uint64_t n)
{
	for (size_t i = 0; i < sizeof(M.refused) / sizeof(M.refused[0]); i++) {
		if (strcmp(reason, refusal_reasons[i]) == 0) {
			atomic_fetch_add_explicit(&M.refused[i], n, memory_order_relaxed);
			return;
		}
	}
}

/* A growing text buffer; a failed append poisons it. */
struct out {
	char *buf;
	size_t len, cap;
	bool failed;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->failed = true;
			return;
		}
		if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		size_t cap = o->cap * 2 + (size_t)n;
		char *p = realloc(o->buf, cap);

		if (!p) {
			o->failed = true;
			return;
		}
		o->buf = p;
		o->cap = cap;
	}
}

static void put_histo(struct out *o, const char *name, const char *help, struct histo *h,
		      const double *bounds, size_t n)
{
	uint_fast64_t cum = 0;

	put(o, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (size_t i = 0; i <= n; i++) {
		cum += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
		if (i < n)
			put(o, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i],
			    (unsigned long long)cum);
		else
			put(o, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
	}
	put(o, "%s_sum %.6f\n%s_count %llu\n", name,
	    (double)atomic_load_explicit(&h->sum_us, memory_order_relaxed) / 1e6, name,
	    (unsigned long long)atomic_load_explicit(&h->count, memory_order_relaxed));
}

/* Set once at start-up, before any render (serve.c): letters, digits and
 * ".-_:" only, so it needs no escaping in a label. */
static char instance_name[128];

void metrics_set_instance(const char *name)
{
	util_strlcpy(instance_name, name, sizeof(instance_name));
}

int metrics_render(size_t active_sessions, size_t dialing_sessions, unsigned loops, char **ret,
		   size_t *ret_len)
{
	struct out o = { .cap = 8192 };

	o.buf = malloc(o.cap);
	if (!o.buf)
		return -ENOMEM;
	o.buf[0] = '\0';
	put(&o,
	    "# HELP bastion_build_info The running binary's version (always 1).\n"
	    "# TYPE bastion_build_info gauge\nbastion_build_info{version=\"%s\"} 1\n",
	    BASTION_VERSION);
	if (instance_name[0])
		put(&o,
		    "# HELP bastion_instance_info This instance's name among those sharing a"
		    " store (always 1).\n"
		    "# TYPE bastion_instance_info gauge\nbastion_instance_info{name=\"%s\"} 1\n",
		    instance_name);
	put(&o,
	    "# HELP bastion_sessions_active Sessions open now: terminals (shell open, attached or waiting) and tunnels.\n"
	    "# TYPE bastion_sessions_active gauge\nbastion_sessions_active %zu\n",
	    active_sessions);
	put(&o,
	    "# HELP bastion_sessions_dialing Connect requests dialling a VM now.\n"
	    "# TYPE bastion_sessions_dialing gauge\nbastion_sessions_dialing %zu\n",
	    dialing_sessions);
	put(&o, "# HELP bastion_connects_total Connect attempts by result code.\n"
		"# TYPE bastion_connects_total counter\n");
	for (size_t i = 0; i < N_CODES; i++)
		put(&o, "bastion_connects_total{result=\"%s\"} %llu\n", connect_codes[i],
		    (unsigned long long)atomic_load_explicit(&M.connects[i], memory_order_relaxed));
	put(&o,
	    "# HELP bastion_session_bytes_total Terminal bytes relayed, by direction.\n"
	    "# TYPE bastion_session_bytes_total counter\n"
	    "bastion_session_bytes_total{direction=\"to_vm\"} %llu\n"
	    "bastion_session_bytes_total{direction=\"from_vm\"} %llu\n",
	    (unsigned long long)atomic_load_explicit(&M.to_vm, memory_order_relaxed),
	    (unsigned long long)atomic_load_explicit(&M.from_vm, memory_order_relaxed));
	put(&o,
	    "# HELP bastion_tunnels_active Native-client streams (tunnels) open now.\n"
	    "# TYPE bastion_tunnels_active gauge\nbastion_tunnels_active %lld\n"
	    "# HELP bastion_tunnel_bytes_total Bytes carried by tunnels, by direction.\n"
	    "# TYPE bastion_tunnel_bytes_total counter\n"
	    "bastion_tunnel_bytes_total{direction=\"to_vm\"} %llu\n"
	    "bastion_tunnel_bytes_total{direction=\"from_vm\"} %llu\n",
	    (long long)atomic_load_explicit(&M.tunnels, memory_order_relaxed),
	    (unsigned long long)atomic_load_explicit(&M.tunnel_to_vm, memory_order_relaxed),
	    (unsigned long long)atomic_load_explicit(&M.tunnel_from_vm, memory_order_relaxed));
	put_histo(&o, "bastion_connect_latency_seconds",
		  "Time from the start of the dial to the shell being open (or failing).",
		  &M.latency, latency_bounds, N_LAT);
	put(&o, "# HELP bastion_http_requests_total HTTP responses sent, by status code.\n"
		"# TYPE bastion_http_requests_total counter\n");
	for (int s = MIN_STATUS; s <= MAX_STATUS; s++) {
		uint_fast64_t v =
			atomic_load_explicit(&M.http[s - MIN_STATUS], memory_order_relaxed);

		if (v)
			put(&o, "bastion_http_requests_total{code=\"%d\"} %llu\n", s,
			    (unsigned long long)v);
	}
	put(&o,
	    "# HELP bastion_event_loops Event loops (threads) serving connections.\n"
	    "# TYPE bastion_event_loops gauge\nbastion_event_loops %u\n",
	    loops);
	put(&o,
	    "# HELP bastion_connections_moved_total Connections handed to the loop that holds "
	    "the session they asked for.\n"
	    "# TYPE bastion_connections_moved_total counter\nbastion_connections_moved_total %llu\n",
	    (unsigned long long)atomic_load_explicit(&M.moved, memory_order_relaxed));
	put(&o,
	    "# HELP bastion_relayed_connections_total Connections relayed to the instance that "
	    "holds the session they asked for, by result.\n"
	    "# TYPE bastion_relayed_connections_total counter\n"
	    "bastion_relayed_connections_total{result=\"joined\"} %llu\n"
	    "bastion_relayed_connections_total{result=\"failed\"} %llu\n",
	    (unsigned long long)atomic_load_explicit(&M.relayed, memory_order_relaxed),
	    (unsigned long long)atomic_load_explicit(&M.relayed_failed, memory_order_relaxed));
	put(&o,
	    "# HELP bastion_relayed_bytes_total Plaintext bytes relayed between clients and "
	    "the instances holding their sessions.\n"
	    "# TYPE bastion_relayed_bytes_total counter\n"
	    "bastion_relayed_bytes_total{direction=\"to_holder\"} %llu\n"
	    "bastion_relayed_bytes_total{direction=\"from_holder\"} %llu\n",
	    (unsigned long long)atomic_load_explicit(&M.relay_up, memory_order_relaxed),
	    (unsigned long long)atomic_load_explicit(&M.relay_down, memory_order_relaxed));
	put(&o,
	    "# HELP bastion_key_decrypt_busy_total Connects refused (503) because as many "
	    "threads as allowed were decrypting passphrase-protected keys.\n"
	    "# TYPE bastion_key_decrypt_busy_total counter\nbastion_key_decrypt_busy_total %llu\n",
	    (unsigned long long)atomic_load_explicit(&M.key_busy, memory_order_relaxed));
	put(&o,
	    "# HELP bastion_store_pending Records (session starts and ends, their audit) kept "
	    "in memory while the store cannot be reached, to be written when it is back.\n"
	    "# TYPE bastion_store_pending gauge\nbastion_store_pending %lld\n"
	    "# HELP bastion_store_pending_dropped_total Records dropped because too many were "
	    "kept while the store was away.\n"
	    "# TYPE bastion_store_pending_dropped_total counter\n"
	    "bastion_store_pending_dropped_total %llu\n",
	    (long long)atomic_load_explicit(&M.store_pending, memory_order_relaxed),
	    (unsigned long long)atomic_load_explicit(&M.store_dropped, memory_order_relaxed));
	put(&o,
	    "# HELP bastion_store_cache_up 1 while the PostgreSQL read cache may answer (its "
	    "LISTEN connection is up); 0 otherwise, and on SQLite.\n"
	    "# TYPE bastion_store_cache_up gauge\nbastion_store_cache_up %llu\n"
	    "# HELP bastion_store_cache_entries Reads kept in the PostgreSQL read cache.\n"
	    "# TYPE bastion_store_cache_entries gauge\nbastion_store_cache_entries %llu\n"
	    "# HELP bastion_store_cache_bytes Bytes of the reads kept in the read cache.\n"
	    "# TYPE bastion_store_cache_bytes gauge\nbastion_store_cache_bytes %llu\n"
	    "# HELP bastion_store_cache_lookups_total Cached reads asked for, by outcome.\n"
	    "# TYPE bastion_store_cache_lookups_total counter\n"
	    "bastion_store_cache_lookups_total{result=\"hit\"} %llu\n"
	    "bastion_store_cache_lookups_total{result=\"miss\"} %llu\n",
	    (unsigned long long)atomic_load_explicit(&M.cache_up, memory_order_relaxed),
	    (unsigned long long)atomic_load_explicit(&M.cache_entries, memory_order_relaxed),
	    (unsigned long long)atomic_load_explicit(&M.cache_bytes, memory_order_relaxed),
	    (unsigned long long)atomic_load_explicit(&M.cache_hits, memory_order_relaxed),
	    (unsigned long long)atomic_load_explicit(&M.cache_misses, memory_order_relaxed));
	put(&o, "# HELP bastion_connections_refused_total Connections closed when accepted: over "
		"limits.connections_per_address, over limits.connections, out of descriptors, or "
		"(proxy) a PROXY header missing, malformed, late or from an untrusted address.\n"
		"# TYPE bastion_connections_refused_total counter\n");
	for (size_t i = 0; i < sizeof(M.refused) / sizeof(M.refused[0]); i++)
		put(&o, "bastion_connections_refused_total{reason=\"%s\"} %llu\n",
		    refusal_reasons[i],
		    (unsigned long long)atomic_load_explicit(&M.refused[i], memory_order_relaxed));
	put(&o, "# HELP bastion_event_loop_lag_seconds How late each event loop ran its last "
		"probe timer.\n"
		"# TYPE bastion_event_loop_lag_seconds gauge\n");
	for (unsigned i = 0; i < loops && i < METRICS_LOOPS_MAX; i++)
		put(&o, "bastion_event_loop_lag_seconds{loop=\"%u\"} %.6f\n", i,
		    (double)atomic_load_explicit(&M.lag_last_us[i], memory_order_relaxed) / 1e6);
	put_histo(&o, "bastion_event_loop_lag_distribution_seconds",
		  "How late the event loop ran its probe timer, every probe.", &M.lag, lag_bounds,
		  N_LAG);
	{
		/* The process and what an operator alerts on (metrics_ops.c). */
		char *ops = NULL;

		if (metrics_ops_render(&ops) < 0)
			o.failed = true;
		else
			put(&o, "%s", ops);
		free(ops);
	}
	if (o.failed) {
		free(o.buf);
		return -ENOMEM;
	}
	*ret = o.buf;
	*ret_len = o.len;
	return 0;
}
