/* The session registry and the WebSocket ⇄ SSH pump.
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
 * and its end an audit record, written on the worker pool. GET /sessions
 * and DELETE /sessions/{id} run here, on a loop, after the worker has
 * authenticated the caller and worked out on which bastions of live
 * sessions the caller is Owner (from term_bastions_in_use(), a snapshot
 * kept under a mutex).
 *
 * Loops (loops.h): a session lives on the loop that took its connect and
 * is only touched there; attach and disconnect move their connection to
 * that loop first (srv_conn_move). What every loop needs to see — the
 * registry of session IDs, the counts behind the limits, the bastions in
 * use — is shared under T.lock. */
#include "terminal/term.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "api/api.h"
#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/util.h"
#include "server/loops.h"
#include "server/srv.h"
#include "store/store.h"
#include "store/store_ops.h"
#include "terminal/challenge.h"

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
 * under T.lock (GET /sessions, attach and disconnect routing): the fields
 * fixed before it is registered, state (changed under the lock) and the
 * byte counters (atomics, written by the home loop only). */
struct sess {
	struct sess *next_bucket;           /* T.buckets (lock) */
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
	struct sshc *ssh;
	struct srv_conn *http; /* the connect request, while dialing */
	struct srv_conn *ws;   /* the terminal, once attached */
	uv_timer_t timer;      /* attach window, then idle and duration */
	bool timer_inited;
	bool out_paused;  /* SSH reads stopped for back-pressure */
	bool page_paused; /* the page asked for a pause (its own backlog) */
	uint64_t window;  /* flow-control window the page asked for; 0: none */
	uint64_t unacked; /* bytes sent the page has not acknowledged */
	uint8_t *pending; /* browser input the channel has not taken */
	size_t pending_len;
	struct term_connect *conn; /* while dialing: the request (host keys) */
	bool challenged;           /* in the challenge table (challenge.h) */
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

static struct {
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
} T = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.lim = { .idle_timeout_s = 1800,
		 .idle_warning_s = 60,
		 .max_duration_s = 8 * 3600,
		 .max_per_user = 64,
		 .max_total = 10000,
		 .ssh_keepalive_s = 15 },
};

/* The calling loop thread's part. */
static struct term_loop *here(void)
{
	return &T.loops[loops_self()];
}

static struct term_limits limits_now(void)
{
	struct term_limits l;

	pthread_mutex_lock(&T.lock);
	l = T.lim;
	pthread_mutex_unlock(&T.lock);
	return l;
}

/* (lock) Other loops read the state of registered sessions. */
static void set_state(struct sess *s, enum sess_state st)
{
	static const char *const names[] = { "dialing", "waiting", "attached", "dead" };

	log_debug("session %s: %s -> %s", s->id[0] ? s->id : "(new)", names[s->state], names[st]);
	s->state = st;
}

static void sess_set_state(struct sess *s, enum sess_state st)
{
	pthread_mutex_lock(&T.lock);
	set_state(s, st);
	pthread_mutex_unlock(&T.lock);
}

static unsigned bucket_of(const char *id)
{
	unsigned h = 2166136261u;

	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 16777619u;
	return h % BUCKETS;
}

/* (lock) */
static void registry_add(struct sess *s)
{
	unsigned b = bucket_of(s->id);

	s->next_bucket = T.buckets[b];
	T.buckets[b] = s;
	T.count++;
}

/* (lock) */
static void registry_remove(struct sess *s)
{
	struct sess **pp = &T.buckets[bucket_of(s->id)];

	for (; *pp; pp = &(*pp)->next_bucket) {
		if (*pp == s) {
			*pp = s->next_bucket;
			T.count--;
			return;
		}
	}
}

/* (lock) */
static struct sess *registry_find(const char *id)
{
	for (struct sess *s = T.buckets[bucket_of(id)]; s; s = s->next_bucket)
		if (strcmp(s->id, id) == 0)
			return s;
	return NULL;
}

/* The loop session id lives on, or -1 when there is no such session. */
static int home_of(const char *id)
{
	struct sess *s;
	int home;

	pthread_mutex_lock(&T.lock);
	s = registry_find(id);
	home = s ? (int)s->home->index : -1;
	pthread_mutex_unlock(&T.lock);
	return home;
}

/* (lock) */
static struct user_refs *user_refs_find(int64_t user_id)
{
	for (size_t i = 0; i < T.n_users; i++)
		if (T.users[i].user_id == user_id)
			return &T.users[i];
	return NULL;
}

/* (lock) */
static size_t user_sessions(int64_t user_id)
{
	struct user_refs *u = user_refs_find(user_id);

	return u ? u->refs : 0;
}

/* (lock) */
static void user_count(struct sess *s)
{
	struct user_refs *u = user_refs_find(s->user_id);

	if (!u) {
		if (T.n_users == T.cap_users) {
			size_t cap = T.cap_users ? T.cap_users * 2 : 16;
			struct user_refs *p = reallocarray(T.users, cap, sizeof(*p));

			if (!p)
				return; /* the limit then misses this one */
			T.users = p;
			T.cap_users = cap;
		}
		u = &T.users[T.n_users++];
		u->user_id = s->user_id;
		u->refs = 0;
	}
	u->refs++;
	s->user_counted = true;
}

/* (lock) */
static void user_uncount(struct sess *s)
{
	struct user_refs *u = s->user_counted ? user_refs_find(s->user_id) : NULL;

	s->user_counted = false;
	if (u && --u->refs == 0)
		*u = T.users[--T.n_users];
}

static void mine_add(struct sess *s)
{
	struct term_loop *l = s->home;

	s->next_mine = l->mine;
	if (l->mine)
		l->mine->prev_mine = s;
	l->mine = s;
}

static void mine_remove(struct sess *s)
{
	struct term_loop *l = s->home;

	if (s->prev_mine)
		s->prev_mine->next_mine = s->next_mine;
	else if (l->mine == s)
		l->mine = s->next_mine;
	if (s->next_mine)
		s->next_mine->prev_mine = s->prev_mine;
	s->prev_mine = s->next_mine = NULL;
}

/* ---------- bastions in use (read by workers) ---------- */

/* (lock) */
static void in_use_add(struct sess *s)
{
	size_t i;

	for (i = 0; i < T.n_in_use; i++)
		if (strcmp(T.in_use[i].id, s->bastion_id) == 0)
			break;
	if (i == T.n_in_use) {
		if (T.n_in_use == T.cap_in_use) {
			size_t cap = T.cap_in_use ? T.cap_in_use * 2 : 16;
			struct in_use *p = reallocarray(T.in_use, cap, sizeof(*p));

			if (!p)
				return; /* listed to its own user only */
			T.in_use = p;
			T.cap_in_use = cap;
		}
		util_strlcpy(T.in_use[i].id, s->bastion_id, sizeof(T.in_use[i].id));
		T.in_use[i].refs = 0;
		T.n_in_use++;
	}
	T.in_use[i].refs++;
	s->in_use_counted = true;
}

/* (lock) */
static void in_use_remove(struct sess *s)
{
	if (!s->in_use_counted)
		return;
	s->in_use_counted = false;
	for (size_t i = 0; i < T.n_in_use; i++) {
		if (strcmp(T.in_use[i].id, s->bastion_id) != 0)
			continue;
		if (--T.in_use[i].refs == 0)
			T.in_use[i] = T.in_use[--T.n_in_use];
		break;
	}
}

int term_bastions_in_use(char ***ret, size_t *ret_n)
{
	char **v;
	size_t n;
	int r = 0;

	pthread_mutex_lock(&T.lock);
	n = T.n_in_use;
	v = calloc(n + 1, sizeof(*v));
	for (size_t i = 0; v && i < n; i++) {
		v[i] = strdup(T.in_use[i].id);
		if (!v[i])
			r = -ENOMEM;
	}
	pthread_mutex_unlock(&T.lock);
	if (!v)
		return -ENOMEM;
	if (r < 0) {
		for (size_t i = 0; i < n; i++)
			free(v[i]);
		free(v);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

void term_attach_free(struct term_attach *ta)
{
	if (!ta)
		return;
	for (size_t i = 0; i < ta->n_owned; i++)
		free(ta->owned[i]);
	free(ta->owned);
	free(ta);
}

static bool owns_bastion(const struct term_attach *ta, const char *bastion_id)
{
	for (size_t i = 0; i < ta->n_owned; i++)
		if (strcmp(ta->owned[i], bastion_id) == 0)
			return true;
	return false;
}

/* ---------- audit on the worker pool ---------- */

struct audit_job {
	uv_work_t work;
	char *principal, *action, *target, *result, *detail;
};

static void audit_work(uv_work_t *w)
{
	struct audit_job *j = w->data;

	if (store_audit(T.store, j->principal, j->action, j->target, j->result, j->detail) < 0)
		log_error("audit: cannot record %s", j->action);
}

static void audit_done(uv_work_t *w, int status)
{
	struct audit_job *j = w->data;

	free(j->principal);
	free(j->action);
	free(j->target);
	free(j->result);
	free(j->detail);
	free(j);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void queue_audit(const char *principal, const char *action, const char *target,
			const char *result, json_t *detail)
{
	struct audit_job *j = calloc(1, sizeof(*j));

	if (!j) {
		json_decref(detail);
		return;
	}
	j->principal = dup_or_null(principal);
	j->action = dup_or_null(action);
	j->target = dup_or_null(target);
	j->result = dup_or_null(result);
	j->detail = detail ? json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(detail);
	j->work.data = j;
	if (uv_queue_work(here()->loop, &j->work, audit_work, audit_done) < 0)
		audit_done(&j->work, 0);
}

struct hostkey_job {
	uv_work_t work;
	char *vm_id, *type, *b64;
};

static void hostkey_work(uv_work_t *w)
{
	struct hostkey_job *j = w->data;

	if (store_hostkey_add(T.store, j->vm_id, j->type, j->b64) < 0)
		log_error("store: cannot record the host key of %s", j->vm_id);
}

static void hostkey_done(uv_work_t *w, int status)
{
	struct hostkey_job *j = w->data;

	free(j->vm_id);
	free(j->type);
	free(j->b64);
	free(j);
}

/* A session's row in the store: its start, or its end (with the audit
 * record of the end), written on the worker pool. */
struct rec_job {
	uv_work_t work;
	struct store_session ss;
	bool end;
	int64_t ended_at;
	char reason[160];
	uint64_t to_vm, from_vm;
};

static void rec_work(uv_work_t *w)
{
	struct rec_job *j = w->data;
	int r;

	if (!j->end)
		r = store_session_open(T.store, &j->ss);
	else
		r = store_session_end(T.store, &j->ss, j->ended_at, j->reason, j->to_vm,
				      j->from_vm);
	if (r < 0)
		log_error("store: cannot record the %s of session %s: %s", j->end ? "end" : "start",
			  j->ss.id, err_str(r));
}

static void rec_done(uv_work_t *w, int status)
{
	free(w->data);
}

static void sess_record(struct sess *s, const char *end_reason)
{
	struct rec_job *j = calloc(1, sizeof(*j));

	if (!j) {
		log_error("session %s: out of memory recording it", s->id);
		return;
	}
	util_strlcpy(j->ss.id, s->id, sizeof(j->ss.id));
	util_strlcpy(j->ss.user, s->user, sizeof(j->ss.user));
	util_strlcpy(j->ss.vm, s->vm_id, sizeof(j->ss.vm));
	util_strlcpy(j->ss.bastion, s->bastion_id, sizeof(j->ss.bastion));
	util_strlcpy(j->ss.target, s->target, sizeof(j->ss.target));
	util_strlcpy(j->ss.source, s->source, sizeof(j->ss.source));
	util_strlcpy(j->ss.auth_type, s->auth_type, sizeof(j->ss.auth_type));
	j->ss.started_at = s->started;
	if (end_reason) {
		j->end = true;
		j->ended_at = store_now();
		util_strlcpy(j->reason, end_reason, sizeof(j->reason));
		j->to_vm = atomic_load_explicit(&s->to_vm, memory_order_relaxed);
		j->from_vm = atomic_load_explicit(&s->from_vm, memory_order_relaxed);
	}
	j->work.data = j;
	if (uv_queue_work(here()->loop, &j->work, rec_work, rec_done) < 0)
		free(j);
}

/* ---------- lifecycle ---------- */

void term_connect_free(struct term_connect *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_host_keys; i++)
		free(c->host_keys[i]);
	free(c->host_keys);
	util_free_secret(c->p.password);
	if (c->p.key)
		ssh_key_free(c->p.key);
	free(c);
}

static void on_timer_closed(uv_handle_t *h)
{
	free(h->data);
}

static void reap(uv_check_t *h)
{
	struct term_loop *l = h->data;

	while (l->dead) {
		struct sess *s = l->dead;

		l->dead = s->next_dead;
		term_connect_free(s->conn);
		if (s->pending)
			sodium_memzero(s->pending, s->pending_len);
		free(s->pending);
		if (s->timer_inited)
			uv_close((uv_handle_t *)&s->timer, on_timer_closed);
		else
			free(s);
	}
	uv_check_stop(&l->reaper);
}

/* The end of a session whose shell was open: its row and audit record. */
static void sess_end_audit(struct sess *s, const char *reason)
{
	char principal[80];

	snprintf(principal, sizeof(principal), "user:%s", s->user);
	queue_audit(principal, "session.end", s->vm_id, "ended",
		    json_pack("{s:s,s:s,s:s,s:I,s:I,s:I}", "session", s->id, "reason", reason,
			      "bastion", s->bastion_id, "duration_s",
			      (json_int_t)(store_now() - s->started), "bytes_from_vm",
			      (json_int_t)atomic_load_explicit(&s->from_vm, memory_order_relaxed),
			      "bytes_to_vm",
			      (json_int_t)atomic_load_explicit(&s->to_vm, memory_order_relaxed)));
	sess_record(s, reason);
}

/* A connect attempt that ended on the loop (rows 9-12, limits). */
static void connect_audit(struct sess *s, const char *code, const char *msg)
{
	char principal[80];

	snprintf(principal, sizeof(principal), "user:%s", s->user);
	metrics_connect_result(code);
	queue_audit(principal, "connect", s->vm_id, code,
		    json_pack("{s:s,s:s,s:s,s:s,s:s*,s:s*}", "auth_type", s->auth_type, "target",
			      s->target, "source", s->source, "bastion", s->bastion_id, "session",
			      strcmp(code, "Created") == 0 ? s->id : NULL, "message", msg));
}

/* Ends s: closes what is still open and queues it for the reaper. The SSH
 * side is closed unless ssh_done (it ended by itself). */
static void sess_kill(struct sess *s, bool ssh_done)
{
	struct term_loop *l = s->home;

	if (s->state == SESS_DEAD)
		return;
	pthread_mutex_lock(&T.lock);
	if (s->state != SESS_DIALING)
		registry_remove(s);
	else
		T.dialing--;
	user_uncount(s);
	in_use_remove(s);
	set_state(s, SESS_DEAD);
	pthread_mutex_unlock(&T.lock);
	mine_remove(s);
	if (s->challenged)
		term_challenge_remove(s->id);
	s->challenged = false;
	if (s->timer_inited)
		uv_timer_stop(&s->timer);
	if (s->ssh && !ssh_done)
		sshc_close(s->ssh);
	s->ssh = NULL;
	s->next_dead = l->dead;
	l->dead = s;
	if (!l->done)
		uv_check_start(&l->reaper, reap);
}

static void end_user_sessions(int64_t user_id, const char *reason);

static void remember_ended(struct term_loop *l, const struct end_req *r)
{
	uint64_t now = uv_now(l->loop);
	size_t keep = 0;

	for (size_t i = 0; i < l->n_ended; i++)
		if (now - l->ended[i].at_ms < ENDED_KEEP_MS)
			l->ended[keep++] = l->ended[i];
	l->n_ended = keep;
	if (l->n_ended == ENDED_MAX) /* the oldest goes */
		memmove(l->ended, l->ended + 1, --l->n_ended * sizeof(l->ended[0]));
	l->ended[l->n_ended] =
		(struct ended_user){ .user_id = r->user_id, .gen = r->gen, .at_ms = now };
	util_strlcpy(l->ended[l->n_ended].reason, r->reason, sizeof(l->ended[0].reason));
	l->n_ended++;
}

/* The reason user_id was ended after generation gen, else NULL. */
static const char *ended_since(struct term_loop *l, int64_t user_id, uint64_t gen)
{
	for (size_t i = l->n_ended; i-- > 0;)
		if (l->ended[i].user_id == user_id && l->ended[i].gen > gen &&
		    uv_now(l->loop) - l->ended[i].at_ms < ENDED_KEEP_MS)
			return l->ended[i].reason;
	return NULL;
}

/* A post from term_end_user_sessions, on each loop. */
static void on_end_req(void *arg)
{
	struct end_req *r = arg;

	remember_ended(here(), r);
	end_user_sessions(r->user_id, r->reason);
	free(r);
}

int term_init(struct store *store)
{
	unsigned n = loops_count();

	if (n == 0 || T.loops)
		return -EINVAL;
	T.loops = calloc(n, sizeof(*T.loops));
	if (!T.loops)
		return -ENOMEM;
	T.n_loops = n;
	T.store = store;
	for (unsigned i = 0; i < n; i++) {
		struct term_loop *l = &T.loops[i];

		l->index = i;
		l->loop = loops_uv(i);
		uv_check_init(l->loop, &l->reaper);
		l->reaper.data = l;
		uv_unref((uv_handle_t *)&l->reaper);
	}
	return 0;
}

void term_end_user_sessions(int64_t user_id, const char *reason)
{
	/* After the store change that ended the user, before the loops hear:
	 * a request that read a lower generation was authorised before it. */
	uint64_t gen = atomic_fetch_add(&T.end_gen, 1) + 1;

	for (unsigned i = 0; i < T.n_loops; i++) {
		struct end_req *r = calloc(1, sizeof(*r));

		if (!r)
			return;
		r->user_id = user_id;
		r->gen = gen;
		util_strlcpy(r->reason, reason, sizeof(r->reason));
		/* A loop that closed has no session left to end. */
		if (loops_post(i, on_end_req, r) < 0)
			free(r);
	}
}

static void send_control(struct sess *s, json_t *msg)
{
	char *text = json_dumps(msg, JSON_COMPACT);

	json_decref(msg);
	if (text && s->ws)
		srv_ws_send(s->ws, true, text, strlen(text));
	free(text);
}

/* Tells the browser why the session ends and closes the socket. */
static void sess_close_ws(struct sess *s, json_t *msg)
{
	struct srv_conn *ws = s->ws;

	if (!ws) {
		json_decref(msg);
		return;
	}
	send_control(s, msg);
	s->ws = NULL; /* on_close may follow: it must find nothing to do */
	srv_ws_close(ws, 1000, "session ended");
}

/* Ends s with a reason the browser is told and the audit records. */
static void sess_end(struct sess *s, const char *reason)
{
	sess_end_audit(s, reason);
	sess_close_ws(s, json_pack("{s:s,s:s}", "type", "closed", "reason", reason));
	sess_kill(s, false);
}

static void respond_error(struct srv_conn *http, int status, const char *code, const char *msg)
{
	struct api_resp resp = { 0 };

	api_error(&resp, status, code, "%s", msg);
	api_respond(http, &resp);
}

/* Answers this loop's connects still dialling (of user_id, or all when it
 * is -1) with the error, and drops them: they never open. */
static void refuse_dialing(int64_t user_id, int status, const char *code, const char *msg)
{
	struct sess *s, *next;

	for (s = here()->mine; s; s = next) {
		next = s->next_mine;
		if (s->state != SESS_DIALING || (user_id >= 0 && s->user_id != user_id))
			continue;
		connect_audit(s, code, msg);
		if (s->http) /* NULL while the user answers the VM's questions */
			respond_error(s->http, status, code, msg);
		s->http = NULL;
		sess_kill(s, false);
	}
}

/* Ends this loop's sessions of user_id (all when it is -1). */
static void end_user_sessions(int64_t user_id, const char *reason)
{
	struct sess *s, *next;

	for (s = here()->mine; s; s = next) {
		next = s->next_mine;
		if (s->state != SESS_DIALING && (user_id < 0 || s->user_id == user_id))
			sess_end(s, reason);
	}
	if (user_id >= 0) /* term_shutdown answers the dialling ones itself */
		refuse_dialing(user_id, 401, "Unauthenticated", reason);
}

uint64_t term_end_generation(void)
{
	return atomic_load(&T.end_gen);
}

void term_shutdown(const char *reason)
{
	here()->shutting_down = true;
	end_user_sessions(-1, reason);
	/* Connects still dialling: answered now, not after the drain. */
	refuse_dialing(-1, 503, "ServiceUnavailable", reason);
}

void term_done(void)
{
	struct term_loop *l = here();

	if (l->done)
		return;
	if (!l->shutting_down)
		term_shutdown("the bastion is shutting down");
	l->done = true;
	reap(&l->reaper);
	uv_close((uv_handle_t *)&l->reaper, NULL);
}

void term_free(void)
{
	pthread_mutex_lock(&T.lock);
	free(T.in_use);
	T.in_use = NULL;
	T.n_in_use = T.cap_in_use = 0;
	free(T.users);
	T.users = NULL;
	T.n_users = T.cap_users = 0;
	pthread_mutex_unlock(&T.lock);
	free(T.loops);
	T.loops = NULL;
	T.n_loops = 0;
}

/* ---------- limits: idle timeout and maximum duration ---------- */

static void fmt_duration(int64_t secs, char *out, size_t size)
{
	if (secs >= 3600 && secs % 3600 == 0)
		snprintf(out, size, "%lld h", (long long)(secs / 3600));
	else if (secs >= 60 && secs % 60 == 0)
		snprintf(out, size, "%lld min", (long long)(secs / 60));
	else
		snprintf(out, size, "%lld s", (long long)secs);
}

static void sess_arm(struct sess *s);

static void send_warning(struct sess *s, const char *what, uint64_t closes_in_ms)
{
	char msg[200];
	int64_t secs = (int64_t)((closes_in_ms + 999) / 1000);

	snprintf(msg, sizeof(msg), "%s: this session closes in %lld s", what, (long long)secs);
	send_control(s, json_pack("{s:s,s:s,s:I}", "type", "warning", "message", msg, "closes_in_s",
				  (json_int_t)secs));
}

static void on_limit_timer(uv_timer_t *t)
{
	struct sess *s = t->data;
	const struct term_limits lim = limits_now(), *l = &lim;
	uint64_t now = uv_now(s->home->loop), warn = (uint64_t)l->idle_warning_s * 1000;
	char reason[160], d[32];

	if (s->state != SESS_ATTACHED)
		return;
	if (l->max_duration_s > 0) {
		uint64_t at = s->started_ms + (uint64_t)l->max_duration_s * 1000;

		if (now >= at) {
			fmt_duration(l->max_duration_s, d, sizeof(d));
			snprintf(reason, sizeof(reason),
				 "the maximum session duration (%s) was reached", d);
			sess_end(s, reason);
			return;
		}
		if (!s->warned_max && warn && now + warn >= at) {
			s->warned_max = true;
			send_warning(s, "the maximum session duration is almost reached", at - now);
		}
	}
	if (l->idle_timeout_s > 0) {
		uint64_t at = s->last_input_ms + (uint64_t)l->idle_timeout_s * 1000;

		if (now >= at) {
			fmt_duration(l->idle_timeout_s, d, sizeof(d));
			snprintf(reason, sizeof(reason), "idle timeout: no input for %s", d);
			sess_end(s, reason);
			return;
		}
		if (!s->warned_idle && warn && now + warn >= at) {
			s->warned_idle = true;
			send_warning(s, "idle timeout: no input for a while", at - now);
		}
	}
	sess_arm(s);
}

/* Starts the session's timer for the next thing that is due. */
static void sess_arm(struct sess *s)
{
	const struct term_limits lim = limits_now(), *l = &lim;
	uint64_t now = uv_now(s->home->loop), warn = (uint64_t)l->idle_warning_s * 1000;
	uint64_t next = UINT64_MAX;

	if (s->state != SESS_ATTACHED)
		return;
	if (l->max_duration_s > 0) {
		uint64_t at = s->started_ms + (uint64_t)l->max_duration_s * 1000;

		next = at;
		if (!s->warned_max && warn && at > warn && at - warn < next)
			next = at - warn;
	}
	if (l->idle_timeout_s > 0) {
		uint64_t at = s->last_input_ms + (uint64_t)l->idle_timeout_s * 1000;

		if (at < next)
			next = at;
		if (!s->warned_idle && warn && at > warn && at - warn < next)
			next = at - warn;
	}
	if (next == UINT64_MAX) {
		uv_timer_stop(&s->timer);
		return;
	}
	uv_timer_start(&s->timer, on_limit_timer, next > now ? next - now : 0, 0);
}

/* Browser input: the idle clock starts again. */
static void sess_activity(struct sess *s)
{
	s->last_input_ms = uv_now(s->home->loop);
	if (s->warned_idle) {
		s->warned_idle = false;
		sess_arm(s);
	}
}

/* A post from term_set_limits, on each loop: its open sessions follow the
 * new values from now on. */
static void rearm_all(void *arg)
{
	for (struct sess *s = here()->mine; s; s = s->next_mine) {
		if (s->state != SESS_ATTACHED)
			continue;
		s->warned_idle = s->warned_max = false;
		sess_arm(s);
	}
}

void term_set_limits(const struct term_limits *l)
{
	pthread_mutex_lock(&T.lock);
	T.lim = *l;
	pthread_mutex_unlock(&T.lock);
	for (unsigned i = 0; i < T.n_loops; i++)
		loops_post(i, rearm_all, NULL);
}

/* ---------- the pump ---------- */

/* Only the home loop writes a counter; GET /sessions reads it elsewhere. */
static void count_bytes(atomic_uint_fast64_t *counter, uint64_t n)
{
	atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

/* The SSH channel is read only while neither the socket towards the
 * browser nor the page itself is behind. */
static void sess_update_output(struct sess *s)
{
	if (s->ssh)
		sshc_pause_output(s->ssh, s->out_paused || s->page_paused ||
						  (s->window && s->unacked >= s->window));
}

static void pump_input(struct sess *s)
{
	ssize_t n;

	if (!s->pending_len || !s->ssh)
		return;
	n = sshc_write(s->ssh, s->pending, s->pending_len);
	if (n < 0)
		return; /* on_end follows */
	count_bytes(&s->to_vm, (uint64_t)n);
	metrics_bytes((uint64_t)n, 0);
	memmove(s->pending, s->pending + n, s->pending_len - (size_t)n);
	s->pending_len -= (size_t)n;
	if (s->pending_len == 0 && s->ws)
		srv_ws_pause_input(s->ws, false);
}

static void ws_on_binary(void *ud, const uint8_t *buf, size_t len)
{
	struct sess *s = ud;
	ssize_t n = 0;
	uint8_t *p;

	if (s->state != SESS_ATTACHED || !s->ssh)
		return;
	sess_activity(s);
	if (s->pending_len == 0) {
		n = sshc_write(s->ssh, buf, len);
		if (n < 0)
			return;
		count_bytes(&s->to_vm, (uint64_t)n);
		metrics_bytes((uint64_t)n, 0);
		if ((size_t)n == len)
			return;
	}
	/* The channel's window is full: keep the rest, stop reading the browser. */
	p = realloc(s->pending, s->pending_len + len - (size_t)n);
	if (!p) {
		sess_end(s, "out of memory");
		return;
	}
	memcpy(p + s->pending_len, buf + n, len - (size_t)n);
	s->pending = p;
	s->pending_len += len - (size_t)n;
	if (s->ws)
		srv_ws_pause_input(s->ws, true);
}

int term_parse_control(const char *buf, size_t len, struct term_control *ret,
		       const char **ret_error)
{
	json_t *msg = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
	const char *type = json_string_value(json_object_get(msg, "type"));
	struct term_control ctl = { 0 };
	const char *error = NULL;

	if (!type) {
		error = "control messages are JSON objects with a \"type\"";
	} else if (strcmp(type, "resize") == 0) {
		json_t *cols = json_object_get(msg, "cols"), *rows = json_object_get(msg, "rows");

		if (!json_is_integer(cols) || !json_is_integer(rows) ||
		    json_integer_value(cols) < 1 || json_integer_value(cols) > 1000 ||
		    json_integer_value(rows) < 1 || json_integer_value(rows) > 1000) {
			error = "resize needs integer cols and rows between 1 and 1000";
		} else {
			ctl.type = TERM_CTL_RESIZE;
			ctl.cols = (int)json_integer_value(cols);
			ctl.rows = (int)json_integer_value(rows);
		}
	} else if (strcmp(type, "ping") == 0) {
		/* An addition to SPEC §3 for the portal's round-trip time. */
		json_t *id = json_object_get(msg, "id");

		if (!json_is_integer(id) || json_integer_value(id) < 0 ||
		    json_integer_value(id) > 9007199254740991LL) {
			error = "ping needs an integer id between 0 and 2^53-1";
		} else {
			ctl.type = TERM_CTL_PING;
			ctl.id = (int64_t)json_integer_value(id);
		}
	} else if (strcmp(type, "pause") == 0) {
		/* An addition to SPEC §3: flow control from the page. */
		ctl.type = TERM_CTL_PAUSE;
	} else if (strcmp(type, "resume") == 0) {
		ctl.type = TERM_CTL_RESUME;
	} else if (strcmp(type, "window") == 0 || strcmp(type, "ack") == 0) {
		bool window = type[0] == 'w';
		json_t *bytes = json_object_get(msg, "bytes");
		json_int_t lo = window ? TERM_WINDOW_MIN : 1;
		json_int_t hi = window ? TERM_WINDOW_MAX : 9007199254740991LL;

		if (!json_is_integer(bytes) || json_integer_value(bytes) < lo ||
		    json_integer_value(bytes) > hi) {
			error = window ? "window needs an integer bytes between 16384 and 67108864"
				       : "ack needs an integer bytes between 1 and 2^53-1";
		} else {
			ctl.type = window ? TERM_CTL_WINDOW : TERM_CTL_ACK;
			ctl.bytes = (int64_t)json_integer_value(bytes);
		}
	} else {
		error = "unknown control message type";
	}
	json_decref(msg);
	if (error) {
		*ret_error = error;
		return -EINVAL;
	}
	*ret = ctl;
	return 0;
}

static void ws_on_text(void *ud, const char *buf, size_t len)
{
	struct sess *s = ud;
	struct term_control ctl;
	const char *error;

	if (term_parse_control(buf, len, &ctl, &error) < 0) {
		send_control(s, json_pack("{s:s,s:s}", "type", "error", "message", error));
		return;
	}
	switch (ctl.type) {
	case TERM_CTL_RESIZE:
		if (s->ssh) {
			sess_activity(s);
			sshc_resize(s->ssh, ctl.cols, ctl.rows);
		}
		break;
	case TERM_CTL_PING:
		/* Echo the id at once. Not activity: a tab left open must still
		 * go idle. */
		send_control(s, json_pack("{s:s,s:I}", "type", "pong", "id", (json_int_t)ctl.id));
		break;
	case TERM_CTL_PAUSE:
	case TERM_CTL_RESUME:
		/* Not activity either: output is not input. A page paused for
		 * good holds nothing here but a blocked channel, and still
		 * meets the idle timeout. */
		s->page_paused = ctl.type == TERM_CTL_PAUSE;
		sess_update_output(s);
		break;
	case TERM_CTL_WINDOW:
		/* What was sent before counts from here on too: the page
		 * acknowledges every byte it draws. */
		s->window = (uint64_t)ctl.bytes;
		sess_update_output(s);
		break;
	case TERM_CTL_ACK:
		/* More than was sent is a confused page, not credit to hoard. */
		s->unacked -= (uint64_t)ctl.bytes < s->unacked ? (uint64_t)ctl.bytes : s->unacked;
		sess_update_output(s);
		break;
	}
}

static void ws_on_drain(void *ud)
{
	struct sess *s = ud;

	if (s->out_paused) {
		s->out_paused = false;
		sess_update_output(s);
	}
}

static void ws_on_close(void *ud, const char *why)
{
	struct sess *s = ud;

	if (!s->ws)
		return; /* we closed it ourselves */
	s->ws = NULL;
	sess_end_audit(s, "the browser disconnected");
	sess_kill(s, false);
}

static const struct srv_ws_cb ws_cb = {
	.on_binary = ws_on_binary,
	.on_text = ws_on_text,
	.on_drain = ws_on_drain,
	.on_close = ws_on_close,
};

/* ---------- SSH side ---------- */

static void on_attach_timeout(uv_timer_t *t)
{
	struct sess *s = t->data;

	if (s->state != SESS_WAITING)
		return;
	log_info("session %s: not attached within %d s, closed", s->id,
		 TERM_ATTACH_WINDOW_MS / 1000);
	sess_end_audit(s, "not attached within 30 s");
	sess_kill(s, false);
}

static void dial_done(struct sess *s)
{
	metrics_connect_latency((double)(uv_hrtime() - s->dial_start_ns) / 1e9);
}

static void ssh_on_ready(struct sshc *c, void *ud)
{
	struct sess *s = ud;
	struct api_resp resp = { 0 };
	char terminal[128];

	dial_done(s);
	if (s->challenged) /* the sign-in is over: no more answers */
		term_challenge_remove(s->id);
	s->challenged = false;
	pthread_mutex_lock(&T.lock);
	T.dialing--;
	s->started = store_now();
	set_state(s, SESS_WAITING);
	registry_add(s);
	pthread_mutex_unlock(&T.lock);
	term_connect_free(s->conn);
	s->conn = NULL;
	/* Nothing is read from the VM until the browser is there to take it. */
	sshc_pause_output(c, true);
	s->out_paused = true;
	uv_timer_start(&s->timer, on_attach_timeout, TERM_ATTACH_WINDOW_MS, 0);
	snprintf(terminal, sizeof(terminal), "/api/v1/sessions/%s/terminal", s->id);
	api_json(&resp, 201,
		 json_pack("{s:{s:s,s:s,s:s,s:s,s:s,s:s,s:I}}", "session", "id", s->id, "terminal",
			   terminal, "vm", s->vm_id, "bastion", s->bastion_id, "target", s->target,
			   "auth_type", s->auth_type, "created_at", (json_int_t)s->started));
	api_respond(s->http, &resp);
	s->http = NULL;
	connect_audit(s, "Created", NULL);
	sess_record(s, NULL);
}

/* The mismatch said the way the key came to be trusted (pinned in the VM's
 * host_keys, or recorded on the first connect), with the fingerprints
 * expected and offered, and how to accept a new key on purpose. */
static const char *hostkey_message(const struct sess *s, const char *msg, char *out, size_t size)
{
	const char *offered = msg ? strstr(msg, "it offered ") : NULL;
	char expected[400] = "", fp[160];
	size_t used = 0;

	if (!s->conn || !offered)
		return msg;
	offered += strlen("it offered ");
	for (size_t i = 0; i < s->conn->n_host_keys && i < 3; i++) {
		if (api_hostkey_fingerprint(s->conn->host_keys[i], fp, sizeof(fp)) < 0)
			continue;
		used += (size_t)snprintf(expected + used, sizeof(expected) - used, "%s%s",
					 used ? ", " : "", fp);
		if (used >= sizeof(expected))
			break;
	}
	if (s->conn->host_keys_pinned)
		snprintf(out, size,
			 "the VM's host key does not match the keys pinned in its host_keys (%s): "
			 "it offered %s. If the key changed on purpose, put the new key in the "
			 "VM's host_keys",
			 expected, offered);
	else
		snprintf(out, size,
			 "the VM's host key does not match the key recorded on its first connect "
			 "(%s): it offered %s. If the VM was reinstalled, a Contributor on the VM "
			 "forgets the recorded key (Forget recorded keys on the VM's page, or "
			 "DELETE /api/v1%s/host-keys) and the next connect records the new one",
			 expected, offered, s->vm_id);
	return out;
}

static void ssh_on_fail(struct sshc *c, int err, const char *msg, void *ud)
{
	struct sess *s = ud;
	const char *code;
	char text[1024];
	int status;

	switch (err) {
	case -BERR_HOSTKEY:
		status = 502, code = "HostKeyMismatch";
		msg = hostkey_message(s, msg, text, sizeof(text));
		break;
	case -BERR_SSH_AUTH:
		status = 401, code = "SshAuthenticationFailed";
		break;
	case -BERR_SSH_SHELL:
		status = 502, code = "ShellFailed";
		break;
	case -BERR_SSH_HANDSHAKE: /* an addition to SPEC §2's table, docs/api.md */
		status = 502, code = "SshHandshakeFailed";
		break;
	default: /* unreachable, or no SSH server answering there */
		status = 504, code = "VmUnreachable";
		break;
	}
	dial_done(s);
	connect_audit(s, code, msg);
	if (s->http) /* NULL when nobody answered the VM's questions in time */
		respond_error(s->http, status, code, msg);
	s->http = NULL;
	s->ssh = NULL; /* already closing */
	sess_kill(s, true);
}

/* The VM asks the user something while signing in: the request waiting
 * (the connect, or the previous answers) is answered 202 with the
 * questions, and the connect waits in the challenge table for
 * POST /sessions/{id}/answers (docs/api.md). */
static void ssh_on_challenge(struct sshc *c, const struct sshc_challenge *ch, void *ud)
{
	struct sess *s = ud;
	struct api_resp resp = { 0 };
	json_t *prompts = json_array(), *body = NULL;
	char answers[128];

	for (size_t i = 0; prompts && i < ch->n_prompts; i++)
		if (json_array_append_new(prompts,
					  json_pack("{s:s,s:b}", "prompt", ch->prompts[i].text,
						    "echo", ch->prompts[i].echo)) < 0)
			break;
	snprintf(answers, sizeof(answers), "/api/v1/sessions/%s/answers", s->id);
	if (prompts && json_array_size(prompts) == ch->n_prompts)
		body = json_pack("{s:{s:s,s:i,s:s,s:s,s:O,s:s,s:i}}", "challenge", "id", s->id,
				 "round", (int)ch->round, "name", ch->name, "instruction",
				 ch->instruction, "prompts", prompts, "answers", answers,
				 "expires_in_s", (int)(SSHC_ANSWER_TIMEOUT_MS / 1000));
	json_decref(prompts);
	if (!s->challenged && body && term_challenge_add(s->id, s->home->index, s) == 0)
		s->challenged = true;
	if (!body || !s->challenged || !s->http) {
		json_decref(body);
		connect_audit(s, "ServiceUnavailable", "could not pass on the VM's questions");
		if (s->http)
			respond_error(s->http, 503, "ServiceUnavailable",
				      "could not pass on the VM's sign-in questions");
		s->http = NULL;
		sess_kill(s, false);
		return;
	}
	api_json(&resp, 202, body);
	api_respond(s->http, &resp);
	s->http = NULL;
}

static void ssh_on_new_host_key(struct sshc *c, const char *type, const char *b64, void *ud)
{
	struct sess *s = ud;
	struct hostkey_job *j = calloc(1, sizeof(*j));

	if (!j)
		return;
	j->vm_id = strdup(s->vm_id);
	j->type = strdup(type);
	j->b64 = strdup(b64);
	j->work.data = j;
	if (!j->vm_id || !j->type || !j->b64 ||
	    uv_queue_work(here()->loop, &j->work, hostkey_work, hostkey_done) < 0)
		hostkey_done(&j->work, 0);
}

_Static_assert(SSHC_DATA_HEADROOM >= SRV_WS_HEADROOM, "room for a frame header");
_Static_assert(SSHC_DATA_MAX <= 0xffff, "what srv_ws_send_binary frames");

static void ssh_on_data(struct sshc *c, uint8_t *buf, size_t len, void *ud)
{
	struct sess *s = ud;
	int r;

	if (!s->ws)
		return;
	count_bytes(&s->from_vm, len);
	metrics_bytes(0, len);
	s->unacked += len;
	r = srv_ws_send_binary(s->ws, buf, len);
	if (r > 0 && !s->out_paused) {
		s->out_paused = true;
		sess_update_output(s);
	} else if (s->window && s->unacked >= s->window) {
		sess_update_output(s);
	}
}

static void ssh_on_writable(struct sshc *c, void *ud)
{
	pump_input(ud);
}

static void ssh_on_end(struct sshc *c, int exit_status, const char *reason, void *ud)
{
	struct sess *s = ud;

	sess_end_audit(s, exit_status >= 0 ? "the shell exited" : reason);
	if (exit_status >= 0)
		sess_close_ws(s,
			      json_pack("{s:s,s:i}", "type", "exit", "exit_status", exit_status));
	else
		sess_close_ws(s, json_pack("{s:s,s:s}", "type", "closed", "reason", reason));
	s->ssh = NULL;
	sess_kill(s, true);
}

static const struct sshc_callbacks ssh_cb = {
	.on_ready = ssh_on_ready,
	.on_fail = ssh_on_fail,
	.on_challenge = ssh_on_challenge,
	.on_new_host_key = ssh_on_new_host_key,
	.on_data = ssh_on_data,
	.on_writable = ssh_on_writable,
	.on_end = ssh_on_end,
};

/* SPEC §2 runs rows 1-8 on the worker; the limits are checked here, before
 * anything is dialled. (lock) NULL when within them, else the message of
 * the 429. */
static const char *over_limit(const struct term_connect *tc, char *msg, size_t size)
{
	int64_t mine = (int64_t)user_sessions(tc->user_id);

	if ((int64_t)(T.count + T.dialing) >= T.lim.max_total) {
		snprintf(msg, size,
			 "this bastion has reached its limit of %lld sessions; try again later",
			 (long long)T.lim.max_total);
		return msg;
	}
	if (mine >= T.lim.max_per_user) {
		snprintf(msg, size, "you have %lld open sessions, the most allowed; end one first",
			 (long long)mine);
		return msg;
	}
	return NULL;
}

static void start_connect(struct srv_conn *http, struct term_connect *tc)
{
	struct term_loop *l = here();
	struct sess *s = calloc(1, sizeof(*s));
	char msg[160];
	const char *limit = NULL, *code = NULL;
	int64_t keepalive_s = 0;
	int r, status = 0;

	if (!s) {
		term_connect_free(tc);
		respond_error(http, 503, "ServiceUnavailable", "out of memory");
		return;
	}
	s->home = l;
	s->state = SESS_DIALING;
	s->user_id = tc->user_id;
	util_strlcpy(s->user, tc->user, sizeof(s->user));
	util_strlcpy(s->vm_id, tc->vm_id, sizeof(s->vm_id));
	util_strlcpy(s->bastion_id, tc->bastion_id, sizeof(s->bastion_id));
	util_strlcpy(s->auth_type, tc->auth_type, sizeof(s->auth_type));
	util_strlcpy(s->source, tc->source, sizeof(s->source));
	snprintf(s->target, sizeof(s->target), strchr(tc->p.ip, ':') ? "[%s]:%u" : "%s:%u",
		 tc->p.ip, tc->p.port);
	if ((limit = ended_since(l, tc->user_id, tc->end_gen)) != NULL) {
		/* Disabled or deleted after the worker's checks passed. */
		status = 401;
		code = "Unauthenticated";
	} else if (l->shutting_down) {
		status = 503;
		code = "ServiceUnavailable";
		limit = "the bastion is shutting down";
	} else {
		/* The check and the count in one step: loops connect at once. */
		pthread_mutex_lock(&T.lock);
		if ((limit = over_limit(tc, msg, sizeof(msg))) != NULL) {
			status = 429;
			code = "TooManySessions";
		} else {
			T.dialing++;
			user_count(s);
			in_use_add(s);
			keepalive_s = T.lim.ssh_keepalive_s;
		}
		pthread_mutex_unlock(&T.lock);
	}
	if (code) {
		connect_audit(s, code, limit);
		respond_error(http, status, code, limit);
		term_connect_free(tc);
		free(s);
		return;
	}
	s->http = http;
	s->conn = tc;
	util_random_token(s->id, sizeof(s->id), 18);
	uv_timer_init(l->loop, &s->timer);
	s->timer.data = s;
	s->timer_inited = true;
	s->dial_start_ns = uv_hrtime();
	mine_add(s);
	tc->p.host_keys = tc->host_keys;
	tc->p.n_host_keys = tc->n_host_keys;
	tc->p.keepalive_ms = (unsigned)keepalive_s * 1000u;
	/* sshc_start owns the secrets from here on, whatever it returns. */
	r = sshc_start(l->loop, &tc->p, &ssh_cb, s, &s->ssh);
	tc->p.password = NULL;
	tc->p.key = NULL;
	if (r < 0) {
		connect_audit(s, "ServiceUnavailable", "could not start the SSH client");
		respond_error(http, 503, "ServiceUnavailable", "could not start the SSH client");
		s->http = NULL;
		s->ssh = NULL;
		sess_kill(s, true);
	}
}

/* Attach and disconnect run on the session's home loop (attach_or_disconnect moves the
 * connection there first), where nobody else may free it: the session id
 * if it lives on this loop, else NULL. */
static struct sess *find_here(const char *id)
{
	struct sess *s;

	pthread_mutex_lock(&T.lock);
	s = registry_find(id);
	if (s && s->home != here())
		s = NULL;
	pthread_mutex_unlock(&T.lock);
	return s;
}

static void attach(struct srv_conn *c, struct term_attach *ta)
{
	struct sess *s;

	s = find_here(ta->session_id);
	if (!s) {
		respond_error(c, 404, "ResourceNotFound", "no such session (it may have ended)");
		return;
	}
	if (s->user_id != ta->user_id) {
		respond_error(c, 403, "AuthorizationFailed",
			      "only the user who created this session may attach to it");
		return;
	}
	if (s->state != SESS_WAITING) {
		respond_error(c, 409, "Conflict", "a terminal is already attached to this session");
		return;
	}
	if (srv_ws_accept(c, "bastion.v1", &ws_cb, s) < 0)
		return;
	uv_timer_stop(&s->timer);
	sess_set_state(s, SESS_ATTACHED);
	s->ws = c;
	s->out_paused = false;
	s->page_paused = false;
	s->window = s->unacked = 0;
	sess_update_output(s);
	s->started_ms = s->last_input_ms = uv_now(s->home->loop);
	sess_arm(s);
}

/* The caller may see (and end) s: their own, or through a bastion they own. */
static bool may_manage(const struct term_attach *ta, const struct sess *s)
{
	return s->user_id == ta->user_id || owns_bastion(ta, s->bastion_id);
}

static void disconnect(struct srv_conn *c, struct term_attach *ta)
{
	struct api_resp resp = { .status = 204 };
	char reason[128], principal[80];
	struct sess *s;

	s = find_here(ta->session_id);

	/* A session the caller may not manage answers like a missing one. */
	if (!s || !may_manage(ta, s)) {
		respond_error(c, 404, "ResourceNotFound", "no such session (it may have ended)");
		return;
	}
	snprintf(reason, sizeof(reason), "disconnected by %s", ta->user);
	snprintf(principal, sizeof(principal), "user:%s", ta->user);
	queue_audit(principal, "session.disconnect", s->vm_id, "success",
		    json_pack("{s:s,s:s,s:s}", "session", s->id, "user", s->user, "bastion",
			      s->bastion_id));
	sess_end(s, reason);
	api_respond(c, &resp);
}

int term_sessions_json(const struct term_attach *ta, json_t **ret)
{
	json_t *arr = json_array();
	int64_t now = store_now();
	static const char *const state_names[] = { "dialing", "waiting", "attached", "dead" };

	/* A snapshot of every loop's sessions, on the caller's thread: what is
	 * read here is fixed, changed under the lock, or atomic. */
	pthread_mutex_lock(&T.lock);
	for (unsigned b = 0; arr && b < BUCKETS; b++) {
		for (struct sess *s = T.buckets[b]; s; s = s->next_bucket) {
			if (!may_manage(ta, s))
				continue;
			json_array_append_new(
				arr, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:s}",
					       "id", s->id, "user", s->user, "vm", s->vm_id,
					       "target", s->target, "source", s->source,
					       "auth_type", s->auth_type, "bastion", s->bastion_id,
					       "started_at", (json_int_t)s->started, "duration_s",
					       (json_int_t)(now - s->started), "bytes_to_vm",
					       (json_int_t)atomic_load_explicit(
						       &s->to_vm, memory_order_relaxed),
					       "bytes_from_vm",
					       (json_int_t)atomic_load_explicit(
						       &s->from_vm, memory_order_relaxed),
					       "state", state_names[s->state]));
		}
	}
	pthread_mutex_unlock(&T.lock);
	*ret = arr;
	return arr ? 0 : -ENOMEM;
}

void term_answers_free(struct term_answers *ta)
{
	if (!ta)
		return;
	for (size_t i = 0; i < ta->n; i++)
		util_free_secret(ta->answers[i]);
	free(ta->answers);
	free(ta);
}

/* On the waiting connect's home loop: the answers go to the VM, and c
 * waits for what follows (201, another 202, or the error). */
static void answer(struct srv_conn *c, struct term_answers *ta)
{
	struct sess *s = term_challenge_find(ta->session_id, here()->index);
	int r;

	if (!s || s->user_id != ta->user_id || s->state != SESS_DIALING) {
		respond_error(c, 404, "ResourceNotFound",
			      "no sign-in waits for answers under this id (it may have timed out)");
		return;
	}
	if (s->http) {
		respond_error(c, 409, "Conflict", "the previous answers are still being checked");
		return;
	}
	r = sshc_answer(s->ssh, ta->answers, ta->n);
	ta->n = 0; /* sshc_answer took and wiped them */
	if (r == -EINVAL) {
		respond_error(c, 400, "InvalidRequest",
			      "answers: one answer for each prompt, of at most 1024 bytes each");
		return;
	}
	if (r < 0) {
		respond_error(c, 404, "ResourceNotFound",
			      "no sign-in waits for answers under this id (it may have timed out)");
		return;
	}
	s->http = c;
	/* The connect-latency metric measures the bastion and the VM, not how
	 * long the user took to answer. */
	s->dial_start_ns = uv_hrtime();
}

void term_counts(size_t *ret_active, size_t *ret_dialing, unsigned *ret_loops)
{
	/* Every loop's sessions. */
	pthread_mutex_lock(&T.lock);
	*ret_active = T.count;
	*ret_dialing = T.dialing;
	pthread_mutex_unlock(&T.lock);
	*ret_loops = T.n_loops;
}

/* The session is another loop's: the connection moves there with its
 * continuation next, which runs again on that loop (true). When the move
 * fails the client is answered 503 here (false) and the caller frees arg. */
static bool move_home(struct srv_conn *c, api_next_fn *next, void *arg, unsigned home)
{
	if (srv_conn_move(c, home, next, arg) == 0)
		return true;
	respond_error(c, 503, "ServiceUnavailable",
		      "the session's event loop could not take the connection; try again");
	return false;
}

void term_connect_next(struct srv_conn *c, bool client_gone, void *arg)
{
	if (client_gone) {
		term_connect_free(arg);
		srv_release(c);
		return;
	}
	start_connect(c, arg);
}

void term_answers_next(struct srv_conn *c, bool client_gone, void *arg)
{
	struct term_answers *ta = arg;
	int home = client_gone ? -1 : term_challenge_home(ta->session_id);

	if (home >= 0 && home != loops_self()) {
		if (move_home(c, term_answers_next, arg, (unsigned)home))
			return;
	} else if (client_gone) {
		srv_release(c);
	} else {
		answer(c, ta);
	}
	term_answers_free(ta);
}

/* Attach and disconnect: on the session's home loop, where the
 * connection moves first. */
static void attach_or_disconnect(struct srv_conn *c, bool client_gone, struct term_attach *ta,
				 api_next_fn *self,
				 void (*run)(struct srv_conn *, struct term_attach *))
{
	if (client_gone) {
		srv_release(c);
	} else {
		int home = home_of(ta->session_id);

		if (home >= 0 && home != loops_self()) {
			if (move_home(c, self, ta, (unsigned)home))
				return;
		} else {
			run(c, ta);
		}
	}
	term_attach_free(ta);
}

void term_attach_next(struct srv_conn *c, bool client_gone, void *arg)
{
	attach_or_disconnect(c, client_gone, arg, term_attach_next, attach);
}

void term_disconnect_next(struct srv_conn *c, bool client_gone, void *arg)
{
	attach_or_disconnect(c, client_gone, arg, term_disconnect_next, disconnect);
}
