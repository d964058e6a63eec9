/* This instance among the others on one store (issue 15 item 2): its row
 * in the instances table (claimed at start, renewed by a heartbeat, marked
 * draining on SIGTERM, removed on a clean stop), the survivors' duty of
 * marking an instance whose lease ran out as lost (store_instance_reap),
 * and the requests other instances write to end a session held here.
 *
 * A timer on loop 0 ticks every CLUSTER_TICK_MS and queues one job on the
 * worker pool (never two at once: a store that hangs holds one worker, for
 * the 5 s the store's timeouts allow). Every tick takes this instance's
 * end requests (the fallback that bounds a disconnect from elsewhere to
 * about a tick); every CLUSTER_BEAT_MS the job also renews the lease and
 * reaps. On SQLite (one instance) only the heartbeat runs.
 *
 * An instance reaps only once it has itself renewed its lease without a
 * gap for a whole lease: after the store was unreachable to everyone (a
 * restart of PostgreSQL), every last_seen is old, and reaping at once would
 * mark every other instance lost; a lease later, those alive have renewed
 * theirs.
 *
 * On PostgreSQL a connection of its own LISTENs for the requests' NOTIFY
 * (opened by a job, on the worker pool); its socket is watched by a poll
 * handle on loop 0, which only reads what arrived (non-blocking) and, on a
 * notification naming this instance, runs a tick at once. A broken
 * listener is dropped and opened again CLUSTER_LISTEN_RETRY_MS later; the
 * ticks go on meanwhile.
 *
 * The lease (CLUSTER_LEASE_S): an instance whose last_seen is older is
 * lost for the others; an instance that has not renewed its own lease for
 * that long stops taking connects and says so on /healthz (fail closed:
 * the others may be ending its sessions in the store), until a heartbeat
 * succeeds again. */
#include "terminal/internal.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/util.h"
#include "server/loops.h"
#include "store/store_cluster.h"

struct end_one {
	char id[48];
	char reason[128];
};

#define CLUSTER_LISTEN_RETRY_MS 5000
#define CLUSTER_CHANNEL         "bastion_session_end"

struct cluster_job {
	uv_work_t work;
	bool open_listener;              /* connect and LISTEN */
	struct store_listener *listener; /* what that made */
	bool beat;                       /* renew the lease this time */
	bool reap;                       /* and look for lost instances */
	uint64_t queued_ns;              /* uv_hrtime when queued */
	bool draining;                   /* the state to write */
	int beat_r;                      /* heartbeat's result */
	int reap_lost;                   /* instances this job marked lost */
	int reap_ended;                  /* their sessions */
	int self_ended;                  /* own sessions recorded ended on re-claim */
	struct end_one *ends;
	size_t n_ends, cap_ends;
};

static struct {
	bool on;
	bool shared; /* several instances may share the store (PostgreSQL) */
	struct store *store;
	struct store_instance me;
	uv_timer_t timer;
	bool busy, closing;
	uint64_t last_beat_ms; /* loop 0's clock: the last tick that beat */
	uint64_t last_ok_ms;   /* the last successful heartbeat */
	uint64_t streak_ms;    /* renewing without a gap since (0: not now) */
	atomic_bool draining;
	atomic_bool store_lost;          /* the lease could not be renewed for CLUSTER_LEASE_S */
	struct store_listener *listener; /* loop 0's, while polled */
	uv_poll_t poll;
	bool listen_pending;     /* a job is opening it */
	uint64_t listen_next_ms; /* no new try before */
	bool again;              /* a notification came while a job ran */
} cl;

const char *term_instance_name(void)
{
	return cl.on ? cl.me.name : "";
}

bool term_cluster_shared(void)
{
	return cl.on && cl.shared;
}

bool term_cluster_store_lost(void)
{
	return atomic_load(&cl.store_lost);
}

bool term_cluster_draining(void)
{
	return atomic_load(&cl.draining);
}

/* Worker: one request, kept for the loop. */
static int take_one(const char *id, const char *reason, void *ud)
{
	struct cluster_job *j = ud;

	if (j->n_ends == j->cap_ends) {
		size_t cap = j->cap_ends ? j->cap_ends * 2 : 8;
		struct end_one *p = reallocarray(j->ends, cap, sizeof(*p));

		if (!p)
			return -ENOMEM;
		j->ends = p;
		j->cap_ends = cap;
	}
	util_strlcpy(j->ends[j->n_ends].id, id, sizeof(j->ends[0].id));
	util_strlcpy(j->ends[j->n_ends].reason, reason, sizeof(j->ends[0].reason));
	j->n_ends++;
	return 0;
}

static void cluster_work(uv_work_t *w)
{
	struct cluster_job *j = w->data;
	int64_t now = store_now();
	int r;

	if (j->open_listener &&
	    (r = store_listen_open(cl.store, CLUSTER_CHANNEL, &j->listener)) < 0)
		log_warn(
			"cluster: cannot LISTEN for requests to end sessions (the poll goes on): %s",
			err_str(r));
	if (j->beat) {
		j->beat_r = store_instance_heartbeat(cl.store, cl.me.name,
						     j->draining ? "draining" : "up", now);
		if (j->beat_r == -ENOENT) {
			/* Marked lost (or removed) while it could not reach the
			 * store: the others recorded its sessions as ended. The
			 * name is taken again; the loop ends what still runs. */
			j->beat_r = store_instance_claim(cl.store, &cl.me, now, CLUSTER_LEASE_S,
							 "instance lost", &j->self_ended);
			if (j->beat_r == 0)
				j->beat_r = -ENOENT;
			if (j->beat_r == -ENOENT && j->draining)
				store_instance_heartbeat(cl.store, cl.me.name, "draining", now);
		}
		/* The loop decided to reap when it queued the job; a job that
		 * waited (a pool busy with work stuck on the store, or this
		 * heartbeat stuck) acts on an old decision: not this time. */
		if (j->reap && uv_hrtime() - j->queued_ns > (uint64_t)CLUSTER_BEAT_MS * 1000000)
			j->reap = false;
		if (j->reap &&
		    (r = store_instance_reap(cl.store, cl.me.name, store_now(), CLUSTER_LEASE_S,
					     &j->reap_lost, &j->reap_ended)) < 0)
			log_warn("cluster: cannot check the other instances' leases: %s",
				 err_str(r));
	}
	if (cl.shared &&
	    (r = store_session_end_requests_take(cl.store, cl.me.name, take_one, j)) < 0 &&
	    r != -ENOMEM)
		log_warn("cluster: cannot read the requests to end sessions: %s", err_str(r));
}

/* On the session's home loop. */
static void on_end_one(void *arg)
{
	struct end_one *e = arg;
	struct sess *s;

	pthread_mutex_lock(&term_g.lock);
	s = term_registry_find(e->id);
	if (s && s->home != term_here())
		s = NULL;
	pthread_mutex_unlock(&term_g.lock);
	if (s && s->state != SESS_DEAD && s->state != SESS_DIALING) {
		log_info("session %s: ended on request from another instance (%s)", e->id,
			 e->reason);
		sess_end(s, e->reason);
	}
	free(e);
}

/* Any thread: ends session id, wherever on this instance it lives. */
static void end_here(const char *id, const char *reason)
{
	int home = term_home_of(id);
	struct end_one *e;

	if (home < 0 || !(e = calloc(1, sizeof(*e))))
		return;
	util_strlcpy(e->id, id, sizeof(e->id));
	util_strlcpy(e->reason, reason, sizeof(e->reason));
	if (loops_post((unsigned)home, on_end_one, e) < 0)
		free(e);
}

static void on_tick(uv_timer_t *t);

static void on_poll_closed(uv_handle_t *h)
{
	store_listener_free(cl.listener);
	cl.listener = NULL;
}

/* Loop 0: the listener's socket is readable. Reading never waits. */
static void on_notify(uv_poll_t *p, int status, int events)
{
	bool match = false;

	if (status < 0 || store_listener_read(cl.listener, cl.me.name, &match) < 0) {
		log_warn("cluster: the LISTEN connection broke; the poll goes on, LISTEN again"
			 " in %d s",
			 CLUSTER_LISTEN_RETRY_MS / 1000);
		uv_poll_stop(p);
		uv_close((uv_handle_t *)p, on_poll_closed);
		cl.listen_next_ms = uv_now(loops_uv(0)) + CLUSTER_LISTEN_RETRY_MS;
		return;
	}
	if (!match || cl.closing)
		return;
	if (cl.busy)
		cl.again = true;
	else
		uv_timer_start(&cl.timer, on_tick, 0, CLUSTER_TICK_MS);
}

static void listener_start(struct store_listener *l)
{
	cl.listen_pending = false;
	if (!l) {
		cl.listen_next_ms = uv_now(loops_uv(0)) + CLUSTER_LISTEN_RETRY_MS;
		return;
	}
	if (cl.closing || cl.listener ||
	    uv_poll_init_socket(loops_uv(0), &cl.poll, store_listener_fd(l)) < 0) {
		store_listener_free(l);
		cl.listen_next_ms = uv_now(loops_uv(0)) + CLUSTER_LISTEN_RETRY_MS;
		return;
	}
	cl.listener = l;
	uv_poll_start(&cl.poll, UV_READABLE, on_notify);
}

static void cluster_done(uv_work_t *w, int status)
{
	struct cluster_job *j = w->data;
	uint64_t now = uv_now(loops_uv(0));

	cl.busy = false;
	if (j->open_listener)
		listener_start(j->listener);
	if (cl.again && !cl.closing) {
		cl.again = false;
		uv_timer_start(&cl.timer, on_tick, 0, CLUSTER_TICK_MS);
	}
	if (j->beat) {
		if (j->beat_r == 0 || j->beat_r == -ENOENT) {
			/* A gap (a heartbeat that hung or failed) starts the
			 * streak again. */
			if (!cl.streak_ms || now - cl.last_ok_ms > 2 * CLUSTER_BEAT_MS + 1000)
				cl.streak_ms = now;
			cl.last_ok_ms = now;
			if (atomic_exchange(&cl.store_lost, false))
				log_warn("cluster: the lease is renewed again: taking connects");
		}
		if (j->beat_r == -ENOENT) {
			log_error("cluster: this instance (%s) was marked lost by another one while"
				  " it could not renew its lease: its sessions were recorded as"
				  " ended; ending them here too",
				  cl.me.name);
			term_end_user_sessions(-1, "instance lost");
		} else if (j->beat_r < 0) {
			cl.streak_ms = 0;
			log_warn("cluster: cannot renew the lease of %s: %s", cl.me.name,
				 err_str(j->beat_r));
		}
		if (j->reap_lost > 0)
			log_warn(
				"cluster: %d instance(s) stopped renewing their lease: marked lost,"
				" %d session(s) recorded as ended (instance lost)",
				j->reap_lost, j->reap_ended);
	}
	for (size_t i = 0; i < j->n_ends; i++)
		end_here(j->ends[i].id, j->ends[i].reason);
	free(j->ends);
	free(j);
}

static void on_tick(uv_timer_t *t)
{
	uint64_t now = uv_now(t->loop);
	struct cluster_job *j;

	if (now - cl.last_ok_ms > (uint64_t)CLUSTER_LEASE_S * 1000 &&
	    !atomic_exchange(&cl.store_lost, true))
		log_error("cluster: the lease of %s was not renewed for %d s: no new connects"
			  " until the store answers again (open terminals go on)",
			  cl.me.name, CLUSTER_LEASE_S);
	if (cl.busy || cl.closing || !(j = calloc(1, sizeof(*j))))
		return;
	j->beat = now - cl.last_beat_ms >= CLUSTER_BEAT_MS;
	/* No renewal for longer than two beats: the store was out of reach
	 * (a job of any kind may have hung meanwhile); the streak restarts. */
	if (now - cl.last_ok_ms > 2 * CLUSTER_BEAT_MS + 1000)
		cl.streak_ms = 0;
	j->reap = j->beat && cl.shared && cl.streak_ms &&
		  now - cl.streak_ms >= (uint64_t)CLUSTER_LEASE_S * 1000;
	if (j->beat)
		cl.last_beat_ms = now;
	j->queued_ns = uv_hrtime();
	j->draining = atomic_load(&cl.draining);
	if (cl.shared && !cl.listener && !cl.listen_pending && now >= cl.listen_next_ms) {
		j->open_listener = true;
		cl.listen_pending = true;
	}
	j->work.data = j;
	if (!j->beat && !cl.shared) {
		free(j);
		return;
	}
	if (uv_queue_work(t->loop, &j->work, cluster_work, cluster_done) < 0) {
		if (j->open_listener)
			cl.listen_pending = false;
		free(j);
		return;
	}
	cl.busy = true;
}

int term_cluster_start(struct store *store, const struct term_cluster_config *cfg, char *err,
		       size_t errsize)
{
	int ended = 0, r;

	cl.store = store;
	cl.shared = cfg->shared;
	memset(&cl.me, 0, sizeof(cl.me));
	if (util_strlcpy(cl.me.name, cfg->name, sizeof(cl.me.name)) < 0 ||
	    util_strlcpy(cl.me.advertise_url, cfg->advertise_url, sizeof(cl.me.advertise_url)) <
		    0 ||
	    util_strlcpy(cl.me.cert_sha256, cfg->cert_sha256, sizeof(cl.me.cert_sha256)) < 0) {
		snprintf(err, errsize, "the instance name or advertised URL is too long");
		return -ENAMETOOLONG;
	}
	/* Start-up, before the loops run: the one wait on the store here. */
	r = store_instance_claim(store, &cl.me, store_now(), CLUSTER_LEASE_S, "bastion restarted",
				 &ended);
	if (r == -EEXIST) {
		snprintf(err, errsize,
			 "another instance named '%s' is running on this store (its lease is"
			 " renewed); give this one another --instance-name, or stop that one"
			 " (a crashed one's lease runs out within %d s)",
			 cl.me.name, CLUSTER_LEASE_S);
		return r;
	}
	if (r < 0) {
		snprintf(err, errsize, "cannot record the instance '%s' in the store: %s",
			 cl.me.name, err_str(r));
		return r;
	}
	if (ended > 0)
		log_info("store: %d session(s) of the previous run of %s recorded as ended"
			 " (bastion restarted)",
			 ended, cl.me.name);
	uv_timer_init(loops_uv(0), &cl.timer);
	cl.last_ok_ms = cl.last_beat_ms = cl.streak_ms = uv_now(loops_uv(0));
	uv_timer_start(&cl.timer, on_tick, CLUSTER_TICK_MS, CLUSTER_TICK_MS);
	cl.on = true;
	log_info("cluster: this instance is '%s' (lease %d s, heartbeat every %d ms%s)", cl.me.name,
		 CLUSTER_LEASE_S, CLUSTER_BEAT_MS,
		 cl.shared ? "" : "; SQLite: one instance, no requests from others");
	return 0;
}

void term_cluster_set_draining(void)
{
	if (!cl.on || atomic_exchange(&cl.draining, true))
		return;
	/* The state is written at the next tick, not a heartbeat later. */
	cl.last_beat_ms = 0;
	uv_timer_start(&cl.timer, on_tick, 0, CLUSTER_TICK_MS);
}

void term_cluster_stop(void)
{
	if (!cl.on || cl.closing)
		return;
	cl.closing = true;
	uv_close((uv_handle_t *)&cl.timer, NULL);
	if (cl.listener) {
		uv_poll_stop(&cl.poll);
		uv_close((uv_handle_t *)&cl.poll, on_poll_closed);
	}
}

void term_cluster_leave(void)
{
	int r;

	if (!cl.on)
		return;
	if ((r = store_instance_delete(cl.store, cl.me.name)) < 0)
		log_warn("cluster: cannot remove %s from the instances: %s", cl.me.name,
			 err_str(r));
	cl.on = false;
}

/* ---------- from the API's workers ---------- */

int term_home_of_session(const char *id)
{
	return term_home_of(id);
}

void term_end_user_everywhere(int64_t user_id, const char *name, const char *reason)
{
	int n = 0, r;

	term_end_user_sessions(user_id, reason);
	if (!term_cluster_shared() || !name)
		return;
	if ((r = store_session_end_request_user(cl.store, name, cl.me.name, reason, &n)) < 0)
		log_error("cluster: cannot ask the other instances to end the sessions of %s: %s",
			  name, err_str(r));
	else if (n > 0)
		log_info("cluster: asked the other instances to end %d session(s) of %s", n, name);
}
