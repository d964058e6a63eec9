/* Terminal sessions: the pump between a browser's WebSocket and an SSH
 * channel, the session registry, the attach window. Each session lives on
 * the event loop (loops.h) that received its connect; functions run on a
 * loop thread and act on that loop, except where noted. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include <jansson.h>

#include "ssh/sshc.h"

struct srv_conn;
struct store;

#define TERM_ATTACH_WINDOW_MS 30000

/* A connect request that passed every check up to the dial (docs/api.md "The checks", rows
 * 1–8). Built on a worker by api_connect; owned by the terminal module from
 * term_connect_next() on. */
struct term_connect {
	int64_t user_id;
	uint64_t end_gen; /* term_end_generation() before the caller was authenticated */
	char user[65];
	char vm_id[256];
	char bastion_id[256];
	char auth_type[16];
	char source[64];
	bool host_keys_pinned;
	char **host_keys; /* owned, n_host_keys strings */
	size_t n_host_keys;
	struct sshc_params p; /* owned secrets: p.password, p.key */
	/* The recording (SPEC §8, terminal/record.h): rec_mode "" (off),
	 * "output" or "input_output"; its ID; its sealing key (a secret, wiped
	 * with the connect) and that key wrapped by the master key. */
	char rec_mode[16];
	char rec_id[48];
	uint8_t rec_key[32];
	uint8_t rec_wrapped[128];
	size_t rec_wrapped_len;
};

/* Frees c, wiping its secrets. NULL is fine. */
void term_connect_free(struct term_connect *c);

/* The native client's stream (stream.c, docs/api.md "The native client's
 * stream"): a request that passed rows 1-6 and the port check, built on a
 * worker by api_stream; owned by term_stream_next from then on (free()). */
#define TERM_STREAM_PROTOCOL        "bastion.stream.v1"
#define TERM_STREAM_DIAL_TIMEOUT_MS 10000
struct term_stream {
	int64_t user_id;
	uint64_t end_gen; /* term_end_generation() before the caller was authenticated */
	char user[65];
	char vm_id[256];
	char bastion_id[256];
	char source[64];
	char ip[64]; /* the NIC's private IP: the only address dialled */
	uint16_t port;
	unsigned connect_timeout_ms;
};

/* Attach to, list or disconnect sessions: who asks, which session, and
 * (list, disconnect) the bastions of live sessions on which the caller is
 * Owner, computed on the worker (see term_bastions_in_use). */
struct term_attach {
	int64_t user_id;
	char user[65];
	char session_id[64];
	char **owned; /* owned strings */
	size_t n_owned;
};

void term_attach_free(struct term_attach *ta);

/* The answers to a connect's sign-in questions (POST
 * /sessions/{id}/answers), built on a worker; secrets, wiped when freed. */
struct term_answers {
	int64_t user_id;
	char session_id[64];
	char **answers; /* n strings, owned */
	size_t n;
};

/* Frees ta, wiping the answers. NULL is fine. */
void term_answers_free(struct term_answers *ta);

/* Limits on sessions; 0 durations switch that limit off. */
struct term_limits {
	int64_t idle_timeout_s;
	int64_t idle_warning_s; /* {"type":"warning"} this long before a close */
	int64_t max_duration_s;
	int64_t max_per_user; /* sessions (dialing, waiting or attached) */
	int64_t max_total;
	int64_t ssh_keepalive_s; /* sshc keep-alive interval for new sessions; 0 off */
};

/* Any thread. Applies at once to open sessions (SIGHUP), on every loop. */
void term_set_limits(const struct term_limits *l);

/* Any thread: recording.max_bytes (for recordings started from now on;
 * <= 0: the default) and recording.retention_days (0: keep). */
void term_rec_configure(int64_t max_bytes, int64_t retention_days);
/* Retention (record.c): removes recordings that ended before `before`, in
 * batches of 100 (each audited "recording.prune"), at most max_batches;
 * how many, or a store error. Any thread but a loop's. */
int term_rec_prune(struct store *st, int64_t before, int max_batches);

/* Any thread: the distinct bastion IDs that live sessions went through, as
 * a malloc'd array of malloc'd strings (a snapshot under a mutex). */
int term_bastions_in_use(char ***ret, size_t *ret_n);

/* On a worker (flush.c, issue 19): writes to the store the byte counters
 * of every registered session whose counters moved since the last flush
 * (one flusher at a time), so that a crash loses at most one interval of
 * them. Returns how many were written, or a store error. */
int term_flush_counters(void);

/* After loops_init(), before the loops run: a part for each loop. */
int term_init(struct store *store);
/* On each loop (SIGTERM): ends this loop's sessions with reason and refuses
 * new ones: each browser receives {"type":"closed","reason"}; connects
 * still dialling are answered 503. Handles stay open until term_done. */
void term_shutdown(const char *reason);
/* On each loop, once its server has stopped: closes this loop's handles. */
void term_done(void);
/* After every loop ended (loops_free): frees what the loops shared. */
void term_free(void);
/* Ends every session of user_id with reason; the browser receives
 * {"type":"closed","reason"}. Any thread may call it (a disabled or deleted
 * user, from a worker): the work is posted to every loop. */
void term_end_user_sessions(int64_t user_id, const char *reason);
/* How many times users were ended so far (any thread). A request reads it
 * before authenticating its caller; a connect whose user was ended after
 * that reading is refused on the loop (the worker's checks came too early
 * to see it). */
uint64_t term_end_generation(void);

/* The continuations an API handler sets (api_next_fn in api/api.h, the same type as srv_moved_fn): each
 * runs once on a loop, owns arg (the struct named) and answers c. Attach,
 * disconnect and answers of a session on another loop move c there first
 * (srv_conn_move, with themselves as the arrival callback) and run again
 * there. client_gone: c is closing; they free arg and release c.
 *   term_connect_next: a struct term_connect: dial, then 201, 202 (the
 *     VM's questions) or the error of docs/api.md "The checks";
 *   term_attach_next: a struct term_attach: the terminal WebSocket, or an
 *     error;
 *   term_disconnect_next: a struct term_attach: end that session if the
 *     caller may, 204;
 *   term_answers_next: a struct term_answers: answer the waiting
 *     connect's questions, then 201, 202 or the §2 error. */
void term_connect_next(struct srv_conn *c, bool client_gone, void *arg);
void term_attach_next(struct srv_conn *c, bool client_gone, void *arg);
void term_disconnect_next(struct srv_conn *c, bool client_gone, void *arg);
void term_answers_next(struct srv_conn *c, bool client_gone, void *arg);
/*   term_stream_next: a struct term_stream: the limits, the TCP dial
 *     (504 VmUnreachable on failure), then 101 and the stream. */
void term_stream_next(struct srv_conn *c, bool client_gone, void *arg);
/* GET /sessions/{id}/watch (watch.c): a struct term_attach whose owned[]
 * are the bastions on which the caller carries recordings/read: the
 * read-only WebSocket on the session's loop, or 404. */
void term_watch_next(struct srv_conn *c, bool client_gone, void *arg);

/* Any thread (a worker): the sessions of every loop that ta's caller may
 * see (their own, or through a bastion in ta->owned), as the JSON array of
 * GET /sessions, from a snapshot taken under the registry's lock. 0 or
 * -ENOMEM. */
int term_sessions_json(const struct term_attach *ta, json_t **ret);
/* Any thread: sessions open and dialling now, on every loop, and the
 * number of loops (for GET /metrics), read under the registry's lock. */
void term_counts(size_t *ret_active, size_t *ret_dialing, unsigned *ret_loops);

/* ---------- this instance among others on one store (cluster.c) ---------- */

/* An instance that has not renewed its lease for this long is lost to the
 * others; the heartbeat renews it every CLUSTER_BEAT_MS; requests to end
 * a session held here are read every CLUSTER_TICK_MS. */
#define CLUSTER_LEASE_S 10
#define CLUSTER_BEAT_MS 2000
#define CLUSTER_TICK_MS 500

struct term_cluster_config {
	const char *name;          /* --instance-name */
	const char *advertise_url; /* how the others reach this instance */
	const char *cert_sha256;   /* hex SHA-256 of its TLS certificate */
	bool shared;               /* the store is PostgreSQL: others may share it */
};

/* Start-up, after loops_init and before the loops run (main thread):
 * claims the name in the store (waits on it: start-up only) and starts
 * the heartbeat on loop 0. -EEXIST (with err said for the operator) when
 * a live instance holds the name. */
int term_cluster_start(struct store *store, const struct term_cluster_config *cfg, char *err,
		       size_t errsize);
/* Then, once the process runs as its own user (privdrop): the thread that
 * renews the lease. 0 or -errno. */
int term_cluster_run(void);
/* Loop 0, on SIGTERM: the instance is "draining" (written at once). */
void term_cluster_set_draining(void);
/* Loop 0, once its loops stopped: the heartbeat's timer closes. */
void term_cluster_stop(void);
/* After the loops ended (main thread): a clean stop removes the row. */
void term_cluster_leave(void);
/* Any thread: this instance's name ("" before term_cluster_start). */
const char *term_instance_name(void);
/* Any thread: the store is shared with other instances (PostgreSQL). */
bool term_cluster_shared(void);
/* Any thread: the lease could not be renewed for CLUSTER_LEASE_S (no new
 * connects; /healthz 503), or the instance drains. */
bool term_cluster_store_lost(void);
bool term_cluster_draining(void);
/* A worker: ends user's sessions on this instance (term_end_user_sessions)
 * and asks every other instance holding one to end it (the store's
 * requests, read within CLUSTER_TICK_MS). */
void term_end_user_everywhere(int64_t user_id, const char *name, const char *reason);
/* Any thread: the loop holding session id here, or -1 (not on this
 * instance, or dialling). */
int term_home_of_session(const char *id);
/* Any thread: session id is held here, or its connect waits here for
 * the answers to its questions. */
bool term_session_here(const char *id);
/* A worker: the instance other than this one that holds open session id,
 * as the store's registry says (or, for a connect that waits for the
 * user's answers, the row saying where: store_waits.h): its numeric address "ADDR:PORT" (its
 * advertised URL, resolved here) and its certificate's SHA-256 (hex).
 * -ENOENT when no other live instance holds it (also on SQLite),
 * -EHOSTUNREACH when its advertised URL is unusable, or the store's
 * -errno. */
int term_holder_of_session(const char *id, char *ret_addr, size_t addr_size, char *ret_fp,
			   size_t fp_size);

/* A text frame from the browser (docs/api.md "The terminal stream"), parsed. */
enum term_ctl_type {
	TERM_CTL_RESIZE = 1,
	TERM_CTL_PING,
	TERM_CTL_PAUSE,
	TERM_CTL_RESUME,
	TERM_CTL_WINDOW,
	TERM_CTL_ACK,
	TERM_CTL_FLUSH,
};

/* Flow-control window a page may ask for (TERM_CTL_WINDOW). */
#define TERM_WINDOW_MIN (16 * 1024)
#define TERM_WINDOW_MAX (64 * 1024 * 1024)
struct term_control {
	enum term_ctl_type type;
	int cols, rows; /* RESIZE: 1..1000 each */
	int64_t id;     /* PING: 0..2^53-1, echoed in the pong */
	int64_t bytes;  /* WINDOW: TERM_WINDOW_MIN..MAX; ACK: 1..2^53-1 */
};

/* Parses one control message: pure, any thread, any bytes (fuzzed in
 * tests/fuzz/fuzz_control.c). Returns 0 and fills ret, or -EINVAL with
 * *ret_error a static sentence for the browser. */
int term_parse_control(const char *buf, size_t len, struct term_control *ret,
		       const char **ret_error);
