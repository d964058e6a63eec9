/* This instance among the others on one store (issue 15 item 2): its row
 * in the instances table (claimed at start, renewed by a heartbeat, marked
 * draining on SIGTERM, removed on a clean stop), the survivors' duty of
 * marking an instance whose lease ran out as lost (store_instance_reap),
 * and the requests other instances write to end a session held here.
 *
 * The store work runs on a thread of its own, not on the worker pool: an
 * instance whose pool is busy (a thousand sign-ins hashing at once) must
 * still renew its lease, or the others would take it for lost and end its
 * sessions. Every CLUSTER_TICK_MS the thread takes this instance's end
 * requests (the fallback that bounds a disconnect from elsewhere to about
 * a tick); every CLUSTER_BEAT_MS it also renews the lease and reaps. What
 * the loops must do (end a session, log) is posted to loop 0. On SQLite
 * (one instance) only the heartbeat runs.
 *
 * The thread reaps only once it has renewed its own lease without a gap
 * for a whole lease, and only right after a heartbeat that took less than
 * a beat: after the store was out of reach for everyone (PostgreSQL
 * restarted or frozen), every last_seen is old, and reaping then would
 * mark every other instance lost; a lease later, those alive have renewed
 * theirs.
 *
 * On PostgreSQL a connection of its own LISTENs for the requests' NOTIFY
 * (opened by the thread); its socket is watched by a poll handle on loop
 * 0, which only reads what arrived (non-blocking) and, on a notification
 * naming this instance, wakes the thread at once. A broken listener is
 * dropped and opened again CLUSTER_LISTEN_RETRY_MS later; the ticks go on
 * meanwhile.
 *
 * The lease (CLUSTER_LEASE_S): an instance whose last_seen is older is
 * lost for the others; an instance that has not renewed its own lease for
 * that long stops taking connects and says so on /healthz (fail closed:
 * the others may be ending its sessions in the store), until a heartbeat
 * succeeds again. Loop 0's timer watches that. */
#include "terminal/internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "core/err.h"
#include "core/log.h"
#include "core/util.h"
#include "server/loops.h"
#include "store/store_cluster.h"
#include "store/store_rec.h"
#include "store/store_waits.h"
#include "terminal/challenge.h"

struct end_one {
	char id[48];
	char reason[128];
};

#define CLUSTER_LISTEN_RETRY_MS 5000
#define CLUSTER_CHANNEL         "bastion_session_end"

/* What one round of the thread found, for loop 0. */
struct cluster_job {
	struct store_listener *listener; /* opened this round */
	bool beat;                       /* the lease was renewed (or tried) */
	int beat_r;                      /* heartbeat's result */
	int reap_lost;                   /* instances this round marked lost */
	int reap_ended;                  /* their sessions */
	struct end_one *ends;
	size_t n_ends, cap_ends;
};

static struct {
	bool on;
	bool shared; /* several instances may share the store (PostgreSQL) */
	struct store *store;
	struct store_instance me;
	/* the thread */
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t mu; /* guards stop, kick, listen_open, listen_next_ms */
	pthread_cond_t cv;
	bool stop, kick;
	bool listen_open;                /* a listener exists (loop 0 polls it) */
	uint64_t listen_next_ms;         /* no new try before */
	atomic_uint_fast64_t last_ok_ms; /* the last successful heartbeat (monotonic) */
	/* loop 0 */
	uv_timer_t timer;
	bool closing;
	bool beat_failing; /* the last heartbeat failed (said once) */
	atomic_bool draining;
	atomic_bool beat_now;            /* write the state at the next round, not a beat later */
	atomic_bool store_lost;          /* the lease could not be renewed for CLUSTER_LEASE_S */
	struct store_listener *listener; /* loop 0's, while polled */
	uv_poll_t poll;
} cl = { .mu = PTHREAD_MUTEX_INITIALIZER };

static uint64_t mono_ms(void)
{
	return uv_hrtime() / 1000000u;
}

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

static void kick(void)
{
	pthread_mutex_lock(&cl.mu);
	cl.kick = true;
	pthread_cond_signal(&cl.cv);
	pthread_mutex_unlock(&cl.mu);
}

/* The thread: one request, kept for the loop. */
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

/* ---------- loop 0 ---------- */

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

static void listener_retry_later(void)
{
	pthread_mutex_lock(&cl.mu);
	cl.listen_open = false;
	cl.listen_next_ms = mono_ms() + CLUSTER_LISTEN_RETRY_MS;
	pthread_mutex_unlock(&cl.mu);
}

static void on_poll_closed(uv_handle_t *h)
{
	store_listener_free(cl.listener);
	cl.listener = NULL;
	listener_retry_later();
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
		return;
	}
	if (match && !cl.closing)
		kick();
}

static void listener_start(struct store_listener *l)
{
	if (cl.closing || cl.listener ||
	    uv_poll_init_socket(loops_uv(0), &cl.poll, store_listener_fd(l)) < 0) {
		store_listener_free(l);
		listener_retry_later();
		return;
	}
	cl.listener = l;
	uv_poll_start(&cl.poll, UV_READABLE, on_notify);
}

/* Loop 0: what a round of the thread found. */
static void on_round(void *arg)
{
	struct cluster_job *j = arg;

	if (j->listener)
		listener_start(j->listener);
	if (j->beat) {
		if (j->beat_r == -ENOENT) {
			log_error("cluster: this instance (%s) was marked lost by another one while"
				  " it could not renew its lease: its sessions were recorded as"
				  " ended; ending them here too",
				  cl.me.name);
			term_end_user_sessions(-1, "instance lost");
		} else if (j->beat_r < 0 && !cl.beat_failing) {
			/* Said once per outage; the lease's loss is said by on_tick. */
			log_warn("cluster: cannot renew the lease of %s: %s", cl.me.name,
				 err_str(j->beat_r));
		}
		cl.beat_failing = j->beat_r < 0 && j->beat_r != -ENOENT;
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

/* Loop 0's timer: is the lease still ours? */
static void on_tick(uv_timer_t *t)
{
	uint64_t since = mono_ms() - atomic_load(&cl.last_ok_ms);

	if (since > (uint64_t)CLUSTER_LEASE_S * 1000) {
		if (!atomic_exchange(&cl.store_lost, true))
			log_error(
				"cluster: the lease of %s was not renewed for %d s: no new connects"
				" until the store answers again (open terminals go on)",
				cl.me.name, CLUSTER_LEASE_S);
	} else if (atomic_exchange(&cl.store_lost, false)) {
		log_warn("cluster: the lease is renewed again: taking connects");
	}
}

/* ---------- the thread ---------- */

static void job_free(struct cluster_job *j)
{
	if (!j)
		return;
	store_listener_free(j->listener);
	free(j->ends);
	free(j);
}

static void *cluster_thread(void *arg)
{
	uint64_t last_beat = 0, streak = mono_ms();
	bool take_failing = false, forced;
	int r;

	pthread_mutex_lock(&cl.mu);
	while (!cl.stop) {
		struct cluster_job *j;
		uint64_t now = mono_ms(), t0;
		bool open_listener = cl.shared && !cl.listen_open && now >= cl.listen_next_ms;
		struct timespec until;

		if (open_listener)
			cl.listen_open = true; /* until loop 0 says otherwise */
		cl.kick = false;
		pthread_mutex_unlock(&cl.mu);

		j = calloc(1, sizeof(*j));
		if (j && open_listener &&
		    (r = store_listen_open(cl.store, CLUSTER_CHANNEL, &j->listener)) < 0) {
			log_warn(
				"cluster: cannot LISTEN for requests to end sessions (the poll goes"
				" on): %s",
				err_str(r));
			listener_retry_later();
		} else if (!j && open_listener) {
			listener_retry_later();
		}
		forced = atomic_exchange(&cl.beat_now, false);
		if (j && (forced || now - last_beat >= CLUSTER_BEAT_MS)) {
			int64_t wall = store_now();

			j->beat = true;
			last_beat = now;
			t0 = mono_ms();
			j->beat_r = store_instance_heartbeat(
				cl.store, cl.me.name, atomic_load(&cl.draining) ? "draining" : "up",
				wall);
			if (j->beat_r == -ENOENT) {
				/* Marked lost (or removed) while it could not reach
				 * the store: the others recorded its sessions as
				 * ended. The name is taken again; loop 0 ends what
				 * still runs. */
				int ended = 0;

				r = store_instance_claim(cl.store, &cl.me, wall, CLUSTER_LEASE_S,
							 "instance lost", &ended);
				if (r < 0)
					j->beat_r = r;
				else if (atomic_load(&cl.draining))
					store_instance_heartbeat(cl.store, cl.me.name, "draining",
								 wall);
			}
			now = mono_ms();
			if (j->beat_r == 0 || j->beat_r == -ENOENT) {
				/* A gap (a heartbeat that hung or failed) starts
				 * the streak again. */
				if (now - atomic_load(&cl.last_ok_ms) > 2 * CLUSTER_BEAT_MS + 1000)
					streak = now;
				atomic_store(&cl.last_ok_ms, now);
			}
			/* Reap after a whole lease of renewals, right after a
			 * prompt one. */
			if (cl.shared && j->beat_r == 0 && now - t0 < CLUSTER_BEAT_MS &&
			    now - streak >= (uint64_t)CLUSTER_LEASE_S * 1000 &&
			    (r = store_instance_reap(cl.store, cl.me.name, store_now(),
						     CLUSTER_LEASE_S, &j->reap_lost,
						     &j->reap_ended)) < 0)
				log_warn("cluster: cannot check the other instances' leases: %s",
					 err_str(r));
		}
		/* Said once per outage, not every tick. */
		if (j && cl.shared) {
			r = store_session_end_requests_take(cl.store, cl.me.name, take_one, j);
			if (r < 0 && r != -ENOMEM && !take_failing)
				log_warn("cluster: cannot read the requests to end sessions: %s",
					 err_str(r));
			take_failing = r < 0 && r != -ENOMEM;
		}
		if (j && (j->beat || j->n_ends || j->listener) && loops_post(0, on_round, j) == 0)
			j = NULL;
		job_free(j);

		pthread_mutex_lock(&cl.mu);
		if (cl.stop || cl.kick)
			continue;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += (long)CLUSTER_TICK_MS * 1000000L;
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		while (!cl.stop && !cl.kick &&
		       pthread_cond_timedwait(&cl.cv, &cl.mu, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&cl.mu);
	return NULL;
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
	/* SQLite: one process at a time, so what is still being recorded is
	 * a previous run's, whatever name (host:port) it had; the claim above
	 * closed those of this name (and on PostgreSQL a survivor closes a
	 * lost instance's). */
	if (!cl.shared &&
	    (r = store_rec_interrupt(store, NULL, store_now(), "bastion restarted", &ended)) < 0)
		log_warn("store: cannot close the recordings of a previous run: %s", err_str(r));
	else if (!cl.shared && ended > 0)
		log_info("store: %d recording(s) of a previous run closed as interrupted", ended);
	atomic_store(&cl.last_ok_ms, mono_ms());
	uv_timer_init(loops_uv(0), &cl.timer);
	uv_timer_start(&cl.timer, on_tick, CLUSTER_TICK_MS, CLUSTER_TICK_MS);
	cl.on = true;
	log_info("cluster: this instance is '%s' (lease %d s, heartbeat every %d ms%s)", cl.me.name,
		 CLUSTER_LEASE_S, CLUSTER_BEAT_MS,
		 cl.shared ? "" : "; SQLite: one instance, no requests from others");
	return 0;
}

int term_cluster_run(void)
{
	pthread_condattr_t ca;
	int r;

	if (!cl.on || cl.thread_started)
		return 0;
	atomic_store(&cl.last_ok_ms, mono_ms());
	/* The thread's waits are on the monotonic clock (mono_ms). */
	if (pthread_condattr_init(&ca) != 0)
		return -ENOMEM;
	r = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (r == 0)
		r = pthread_cond_init(&cl.cv, &ca);
	pthread_condattr_destroy(&ca);
	if (r != 0)
		return -r;
	if ((r = pthread_create(&cl.thread, NULL, cluster_thread, NULL)) != 0) {
		pthread_cond_destroy(&cl.cv);
		return -r;
	}
	cl.thread_started = true;
	return 0;
}

void term_cluster_set_draining(void)
{
	if (!cl.on || atomic_exchange(&cl.draining, true))
		return;
	/* The state is written now, not a heartbeat later. */
	atomic_store(&cl.beat_now, true);
	kick();
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
	if (cl.thread_started) {
		pthread_mutex_lock(&cl.mu);
		cl.stop = true;
		pthread_cond_signal(&cl.cv);
		pthread_mutex_unlock(&cl.mu);
		pthread_join(cl.thread, NULL);
		cl.thread_started = false;
		pthread_cond_destroy(&cl.cv);
	}
	/* This thread's connection may be one PostgreSQL dropped long ago (a
	 * restart while we ran): the store does not retry a write on the new
	 * one, but removing our row twice does no harm, so one more try. */
	if ((r = store_instance_delete(cl.store, cl.me.name)) == -BERR_STORE)
		r = store_instance_delete(cl.store, cl.me.name);
	if (r < 0)
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

/* ---------- who holds a session (the relay, issue 15 item 3) ---------- */

struct holder_find {
	char instance[STORE_INSTANCE_NAME_MAX];
	struct store_instance in;
	bool found;
};

static int holder_instance(const struct store_instance *in, void *ud)
{
	struct holder_find *h = ud;

	if (strcmp(in->name, h->instance) != 0)
		return 0;
	h->in = *in;
	h->found = true;
	return 1;
}

/* "https://HOST:PORT[/...]" to a numeric "ADDR:PORT" (IPv6 bracketed):
 * a name is resolved here, on a worker, so that the loop never waits on
 * DNS. */
static int advertised_addr(const char *url, char *ret, size_t size)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV },
			*ai = NULL;
	char host[256], ip[INET6_ADDRSTRLEN];
	const char *p, *end, *port;
	size_t hlen;
	int r = -EINVAL;

	if (strncmp(url, "https://", 8) != 0)
		return -EINVAL;
	p = url + 8;
	end = p + strcspn(p, "/?#");
	if (*p == '[') {
		const char *close = memchr(p, ']', (size_t)(end - p));

		if (!close || close + 1 >= end || close[1] != ':')
			return -EINVAL;
		hlen = (size_t)(close - p - 1);
		p++;
		port = close + 2;
	} else {
		const char *colon = memchr(p, ':', (size_t)(end - p));

		if (!colon)
			return -EINVAL;
		hlen = (size_t)(colon - p);
		port = colon + 1;
	}
	if (hlen == 0 || hlen >= sizeof(host) || end - port < 1 || end - port > 5 ||
	    strspn(port, "0123456789") != (size_t)(end - port))
		return -EINVAL;
	memcpy(host, p, hlen);
	host[hlen] = '\0';
	{
		char portbuf[6];

		memcpy(portbuf, port, (size_t)(end - port));
		portbuf[end - port] = '\0';
		if (getaddrinfo(host, portbuf, &hints, &ai) != 0 || !ai)
			return -EHOSTUNREACH;
		if (ai->ai_family == AF_INET &&
		    inet_ntop(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, ip,
			      sizeof(ip)))
			r = snprintf(ret, size, "%s:%s", ip, portbuf);
		else if (ai->ai_family == AF_INET6 &&
			 inet_ntop(AF_INET6, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, ip,
				   sizeof(ip)))
			r = snprintf(ret, size, "[%s]:%s", ip, portbuf);
		else
			r = -EHOSTUNREACH;
		freeaddrinfo(ai);
	}
	if (r >= (int)size)
		return -ENAMETOOLONG;
	return r < 0 ? r : 0;
}

bool term_session_here(const char *id)
{
	return term_home_of(id) >= 0 || term_challenge_home(id) >= 0;
}

int term_holder_of_session(const char *id, char *ret_addr, size_t addr_size, char *ret_fp,
			   size_t fp_size)
{
	struct holder_find h = { 0 };
	int r;

	if (!cl.on || !cl.shared || !cl.store)
		return -ENOENT;
	/* Its open session row, or the row of a connect waiting for the
	 * user's answers: one indexed read. */
	r = store_session_holder(cl.store, id, store_now(), h.instance);
	if (r < 0)
		return r;
	if (strcmp(h.instance, cl.me.name) == 0)
		return -ENOENT; /* ours, and no longer here */
	r = store_instance_foreach(cl.store, holder_instance, &h);
	if (r < 0 && r != -ECANCELED)
		return r;
	/* A lost instance's sessions are being ended: nobody to relay to. */
	if (!h.found || strcmp(h.in.state, "lost") == 0)
		return -ENOENT;
	if ((r = advertised_addr(h.in.advertise_url, ret_addr, addr_size)) < 0) {
		log_warn("cluster: instance %s advertises an unusable URL (%s): %s", h.in.name,
			 h.in.advertise_url, err_str(r));
		return -EHOSTUNREACH;
	}
	if (util_strlcpy(ret_fp, h.in.cert_sha256, fp_size) < 0)
		return -ENAMETOOLONG;
	return 0;
}
