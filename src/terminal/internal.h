/* Private to src/terminal: the session, the loop's part and the shared
 * state (term_g, under its lock), and the calls between the terminal's
 * files. Included by the files of src/terminal only.
 *
 * A session is born when its SSH shell is open (term_connect_next), waits
 * up to 30 s for its creator to attach a WebSocket, then pumps bytes both
 * ways with back-pressure:
 *   VM → browser: when the bytes queued towards the browser pass the high
 *     watermark, the SSH channel is no longer read (the VM's window fills
 *     and it stops sending); reading resumes once the socket drains.
 *   browser → VM: when the channel's window is full, the rest of the frame
 *     waits in `pending` and the browser socket is no longer read.
 *   flow control from the page: the socket drains long before a slow page
 *     has drawn what it read (kernel buffers hold megabytes), so only the
 *     page knows its backlog. {"type":"pause"} stops reading the SSH
 *     channel as the watermark does, until {"type":"resume"}; with
 *     {"type":"window","bytes":W} at most W bytes are sent that the page
 *     has not acknowledged with {"type":"ack","bytes":N} (docs/api.md).
 *     {"type":"flush"} right before an interrupt character drops the VM's
 *     output up to its answer to a mark sent behind that character
 *     (sshc_write_mark), as a tty's INTR flushes its output queue;
 *     {"type":"flushed","bytes":N} follows.
 * Sessions are never freed inside a callback: they are marked dead and
 * reaped at the end of the loop iteration.
 *
 * Limits: before dialling, the caller's sessions and the instance's are
 * counted (dialling ones included) against max_per_user and max_total (429
 * TooManySessions). Once attached, one timer per session watches the idle
 * timeout (no input from the browser: keystrokes or resize) and the maximum
 * duration, sending {"type":"warning"} idle_warning before either closes.
 *
 * Records: each session is a row in the store (start, end, reason, bytes)
 * and its end an audit record, written on the worker pool. The worker
 * that authenticates GET /sessions or DELETE /sessions/{id} works out on
 * which bastions of live sessions the caller is Owner (from
 * term_bastions_in_use(), a snapshot kept under a mutex); it then lists
 * the sessions itself under the registry's lock (term_sessions_json), and
 * a disconnect runs on the session's loop.
 *
 * Loops (loops.h): a session lives on the loop that took its connect and
 * is only touched there; attach and disconnect move their connection to
 * that loop first (srv_conn_move). What every loop needs to see — the
 * registry of session IDs, the counts behind the limits, the bastions in
 * use — is shared under term_g.lock. */
#pragma once

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/util.h"
#include "server/loops.h"
#include "server/srv.h"
#include "store/store.h"
#include "store/store_ops.h"
#include "terminal/challenge.h"
#include "terminal/term.h"

#define BUCKETS 4096

enum sess_state {
	SESS_DIALING,  /* SSH connect in progress; HTTP request waiting */
	SESS_WAITING,  /* shell open, waiting for the WebSocket */
	SESS_ATTACHED, /* pumping */
	SESS_DEAD,     /* to be reaped */
};

struct term_loop;

/* A session lives on one loop, its home: the loop whose thread received the
 * connect. Everything in it is that loop's, except what other loops read
 * under term_g.lock (GET /sessions, attach and disconnect routing): the fields
 * fixed before it is registered, state (changed under the lock) and the
 * byte counters (atomics, written by the home loop only). */
struct sess {
	struct sess *next_bucket;           /* term_g.buckets (lock) */
	struct sess *next_dead;             /* home's reaper */
	struct sess *prev_mine, *next_mine; /* home's sessions, dialling too */
	struct term_loop *home;
	enum sess_state state;
	char id[48];
	int64_t user_id;
	bool user_counted;
	char user[65];
	char vm_id[256];
	char bastion_id[256];
	char auth_type[16];
	char source[64];
	char target[80];
	int64_t started;        /* unix seconds, once the shell is open */
	uint64_t dial_start_ns; /* uv_hrtime at the start of the dial */
	uint64_t started_ms;    /* uv_now when attached */
	uint64_t last_input_ms; /* uv_now of the last browser input */
	bool warned_idle, warned_max;
	bool in_use_counted;                 /* bastion_id is in the in-use table */
	atomic_uint_fast64_t to_vm, from_vm; /* terminal bytes relayed */
	/* What the last periodic flush wrote to the store (flush.c; under
	 * term_g.lock, by one flusher at a time). */
	uint64_t flushed_to, flushed_from;
	struct sshc *ssh;
	struct srv_conn *http; /* the connect request, while dialing */
	struct srv_conn *ws;   /* the terminal, once attached */
	uv_timer_t timer;      /* attach window, then idle and duration */
	bool timer_inited;
	bool out_paused;  /* SSH reads stopped for back-pressure */
	bool page_paused; /* the page asked for a pause (its own backlog) */
	uint64_t window;  /* flow-control window the page asked for; 0: none */
	uint64_t unacked; /* bytes sent the page has not acknowledged */
	/* Flush on interrupt ({"type":"flush"} before the interrupt
	 * character): armed for the next binary frame; then waiting while
	 * that frame's bytes are in pending (the mark goes behind them). */
	bool flush_armed;
	bool flush_waiting;
	uint8_t *pending; /* browser input the channel has not taken */
	size_t pending_len;
	struct term_connect *conn; /* while dialing: the request (host keys) */
	bool challenged;           /* in the challenge table (challenge.h) */
	bool wait_recorded;        /* the store says where it waits (store_waits.h) */
	/* A native client's tunnel (stream.c) instead of an SSH shell: its TCP
	 * side lives in its own allocation, closed and freed on its own. */
	bool tunnel;
	struct stream_tcp *tcp;
	struct rec *rec;          /* recording (record.c); NULL: not recorded */
	char rec_id[48];          /* its ID, fixed before registration ("": none) */
	struct watcher *watchers; /* live watchers (watch.c) */
};

/* The bastions live sessions went through, with how many each: read by
 * workers (term_bastions_in_use). */
struct in_use {
	char id[256];
	size_t refs;
};

/* Open sessions of one user, dialling ones too: the per-user limit is
 * checked on every connect, so it reads a count kept here rather than
 * walking every session (which cost 1 ms per connect at 10,000 sessions). */
struct user_refs {
	int64_t user_id;
	size_t refs;
};

/* A request from any thread to end a user's sessions, one copy per loop. */
struct end_req {
	int64_t user_id;
	uint64_t gen; /* term_end_generation() once this user was ended */
	char reason[128];
};

/* A user ended lately, kept for ENDED_KEEP_MS: a connect authorised before
 * the end (its generation is lower) but not yet on the loop is refused. */
struct ended_user {
	int64_t user_id;
	uint64_t gen;
	uint64_t at_ms; /* loop time */
	char reason[128];
};
#define ENDED_KEEP_MS 60000u
#define ENDED_MAX     256u

/* What each loop keeps of its own: no lock. */
struct term_loop {
	unsigned index;
	uv_loop_t *loop;
	struct sess *mine; /* every session at home here, dialling too */
	struct sess *dead;
	uv_check_t reaper;
	bool shutting_down;
	bool done;
	struct ended_user ended[ENDED_MAX];
	size_t n_ended;
};

/* Shared by every loop and by workers: what is marked (lock) only under
 * lock. */
struct term_global {
	pthread_mutex_t lock; /* guards what is marked (lock) */
	struct store *store;
	struct term_loop *loops;
	unsigned n_loops;
	struct sess *buckets[BUCKETS]; /* (lock) sessions waiting or attached */
	size_t count;                  /* (lock) registered: waiting or attached */
	size_t dialing;                /* (lock) */
	struct term_limits lim;        /* (lock) */
	struct in_use *in_use;         /* (lock) */
	size_t n_in_use, cap_in_use;
	struct user_refs *users; /* (lock) */
	size_t n_users, cap_users;
	atomic_uint_fast64_t end_gen; /* bumped by every term_end_user_sessions */
};
extern struct term_global term_g;

/* A record for the store that survives the store's absence (pending.c). */
enum pend_kind { PEND_AUDIT, PEND_OPEN, PEND_ATTACH, PEND_END };
struct pend {
	enum pend_kind kind;
	struct pend *next;
	/* PEND_AUDIT: when it happened, and the record (malloc'd, may be NULL) */
	int64_t ts;
	char *principal, *action, *target, *result, *detail;
	/* PEND_OPEN, PEND_ATTACH, PEND_END */
	struct store_session ss;
	int64_t ended_at;
	char reason[160];
	uint64_t to_vm, from_vm;
};
/* On a worker: writes p now, or — the store unreachable, or records kept
 * before it still waiting — keeps it to be written in order once the store
 * answers. Takes p (calloc'd) in every case. */
void pend_submit(struct pend *p);
void pend_free(struct pend *p);
/* How many records are kept; the cap (0: the default, 10,000), for tests. */
size_t pend_count(void);
void pend_set_max(size_t n);
/* term_free: a last bounded attempt, then what is still kept is logged and
 * freed. */
void pend_stop(void);

/* registry.c: the registry, the counts behind the limits, a session's end */
struct term_loop *term_here(void);
struct term_limits term_limits_now(void);
void sess_set_state_locked(struct sess *s, enum sess_state st);
void term_registry_add(struct sess *s);
struct sess *term_registry_find(const char *id);
int term_home_of(const char *id);
void term_user_count(struct sess *s);
size_t term_user_sessions(int64_t user_id);
void term_mine_add(struct sess *s);
void term_in_use_add(struct sess *s);
bool term_owns_bastion(const struct term_attach *ta, const char *bastion_id);
void term_connect_audit(struct sess *s, const char *code, const char *msg);
const char *term_ended_since(struct term_loop *l, int64_t user_id, uint64_t gen);
/* Answers c with status and body (compact JSON, taken; NULL: none), as
 * the API answers. */
void term_respond_json(struct srv_conn *c, int status, json_t *body);
void term_respond_error(struct srv_conn *http, int status, const char *code, const char *msg);
void term_send_control(struct sess *s, json_t *msg);
void sess_close_ws(struct sess *s, json_t *msg);
void sess_end(struct sess *s, const char *reason);
void sess_end_audit(struct sess *s, const char *reason);
void sess_kill(struct sess *s, bool ssh_done);
void sess_set_state(struct sess *s, enum sess_state st);

/* jobs.c: store and audit work on the pool */
void term_queue_audit(const char *principal, const char *action, const char *target,
		      const char *result, json_t *detail);
void sess_record(struct sess *s, const char *end_reason);
/* jobs.c: the store learns that s has its terminal attached. */
void sess_record_attached(struct sess *s);
/* Records a host key learnt on first use (trust on first use), on the
 * pool. */
void term_record_host_key(const char *vm_id, const char *type, const char *b64);
/* jobs.c: answers http with status and body (taken) — on a shared store
 * only once the store knows of the session (its start, as sess_record) or
 * of the connect waiting for answers here (store_waits.h), so that the
 * client's next request may reach any instance. sess_wait_forget: the
 * connect no longer waits (the row goes). On the session's loop. */
void sess_announce_open(struct sess *s, struct srv_conn *http, int status, json_t *body);
void sess_announce_wait(struct sess *s, struct srv_conn *http, int status, json_t *body);
void sess_wait_forget(struct sess *s);

/* dial.c: (lock) NULL when a new session of user_id is within the limits,
 * else the message of the 429. */
const char *term_over_limit(int64_t user_id, char *msg, size_t size);
/* dial.c: admits a new session, terminal or tunnel: false when refused
 * (audited, http answered, nothing counted), else counted, given its id
 * and timer and listed; *ret_keepalive_s the SSH keep-alive in force. */
bool term_sess_admit(struct term_loop *l, struct sess *s, struct srv_conn *http, uint64_t end_gen,
		     int64_t *ret_keepalive_s);

/* stream.c: the tunnel's TCP side, let go when its session is killed */
void term_stream_kill(struct sess *s);

/* pump.c: data both ways, flow control, idle and duration timers */
void term_pump_input(struct sess *s);
extern const struct srv_ws_cb term_ws_cb;
/* The SSH client's data callbacks (struct sshc_callbacks): the VM's output
 * to the browser, and the channel writable again for pending input. */
void term_ssh_on_data(struct sshc *c, uint8_t *buf, size_t len, void *ud);
void term_ssh_on_writable(struct sshc *c, void *ud);
void term_ssh_on_mark(struct sshc *c, uint64_t dropped, bool answered, void *ud);
void sess_arm(struct sess *s);
/* Input from the user: the idle clock starts again. */
void sess_activity(struct sess *s);
void sess_update_output(struct sess *s);

/* record.c: the recording of a session (record.h), on its loop. start:
 * from the connect's rec_* fields (nothing when rec_mode is ""); output,
 * input, resize: from the pump, only when s->rec; behind: the recording's
 * buffer is full, SSH reads wait; stop: at the reap, the last flush and the
 * recording's end follow on the pool. */
int term_rec_start(struct sess *s, const struct term_connect *tc);
void term_rec_output(struct sess *s, const uint8_t *buf, size_t len);
void term_rec_input(struct sess *s, const uint8_t *buf, size_t len);
void term_rec_resize(struct sess *s, int cols, int rows);
bool term_rec_behind(const struct sess *s);
void term_rec_stop(struct sess *s);
/* watch.c: the session's output to its watchers (from the pump, only
 * when s->watchers); at the session's end, every watcher is closed. */
void term_watch_output(struct sess *s, uint8_t *buf, size_t len);
void term_watch_end(struct sess *s, const char *reason);
/* Retention's hourly timer, on loop 0 (term_init, term_done). */
void term_rec_loop_init(struct term_loop *l);
void term_rec_loop_done(struct term_loop *l);
