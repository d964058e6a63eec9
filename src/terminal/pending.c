/* What the terminal writes to the store — a session's start and end, the
 * terminal's audit records — when the store cannot be reached (PostgreSQL
 * stopped or out of reach): kept here in memory, in the order it happened,
 * and written by a thread of its own once the store answers again. The
 * loops never wait for this: the workers that failed to write hand their
 * record over and return.
 *
 * Order: while anything is queued, a new record goes behind it rather than
 * to the store, so the trail keeps the order of events. Never twice: a
 * session's start and end are idempotent in the store (the start of a
 * recorded session and a second end change nothing), and an audit record
 * is retried with store_audit_at(once), which does not write a record the
 * failed attempt may have committed after all.
 *
 * The cap: PEND_MAX records (a session end and its audit line are two).
 * Past it a record is dropped, counted (bastion_store_pending_dropped_total),
 * and logged with what it was (never a secret: nothing here holds one). */
#include "terminal/internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"
#include "store/store.h"
#include "store/store_cluster.h"
#include "store/store_ops.h"

#define PEND_MAX      10000
#define PEND_RETRY_MS 1000
/* At shutdown, how long the last attempt to write what is queued may take. */
#define PEND_FINAL_MS 5000

static size_t pend_max = PEND_MAX;

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	struct pend *head, *tail;
	size_t n;
	bool started, stop;
	pthread_t thread;
} Q = { .lock = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

void pend_free(struct pend *p)
{
	if (!p)
		return;
	free(p->principal);
	free(p->action);
	free(p->target);
	free(p->result);
	free(p->detail);
	free(p);
}

/* One attempt; retry: the record failed before (its write may have
 * committed all the same). */
static int pend_write(struct store *s, const struct pend *p, bool retry)
{
	switch (p->kind) {
	case PEND_AUDIT:
		return store_audit_at(s, p->ts, retry, p->principal, p->action, p->target,
				      p->result, p->detail);
	case PEND_OPEN:
		return store_session_open(s, &p->ss);
	case PEND_END:
		return store_session_end(s, &p->ss, p->ended_at, p->reason, p->to_vm, p->from_vm);
	case PEND_ATTACH:
		/* The start may be written after this, on another worker: the
		 * row is made here too (the start then leaves it), in the same
		 * statement that marks it attached. */
		return store_session_open_attached(s, &p->ss);
	}
	return -EINVAL;
}

static const char *pend_what(const struct pend *p)
{
	return p->kind == PEND_AUDIT    ? p->action
	       : p->kind == PEND_OPEN   ? "session start"
	       : p->kind == PEND_ATTACH ? "session attach"
					: "session end";
}

static void deadline_in(struct timespec *t, long ms)
{
	clock_gettime(CLOCK_REALTIME, t);
	t->tv_nsec += ms * 1000000L;
	t->tv_sec += t->tv_nsec / 1000000000L;
	t->tv_nsec %= 1000000000L;
}

/* Writes the head of the queue until it is empty or the store fails again;
 * called with Q.lock held, returns with it held. */
static void drain_locked(struct store *s)
{
	while (Q.head) {
		struct pend *p = Q.head;
		int r;

		pthread_mutex_unlock(&Q.lock);
		r = pend_write(s, p, true);
		pthread_mutex_lock(&Q.lock);
		if (r == -BERR_STORE)
			return; /* still away: the head stays first */
		if (r < 0)
			log_error(
				"store: a kept %s (session %s) could not be written and is dropped:"
				" %s",
				pend_what(p), p->ss.id[0] ? p->ss.id : "-", err_str(r));
		Q.head = p->next;
		if (!Q.head)
			Q.tail = NULL;
		Q.n--;
		metrics_store_pending((int64_t)Q.n);
		pend_free(p);
		if (!Q.head) {
			log_info("store: every record kept while the store was away is written");
			pthread_cond_broadcast(&Q.cv); /* pend_stop may be waiting */
		}
	}
}

static void *pend_main(void *arg)
{
	struct store *s = arg;

	pthread_mutex_lock(&Q.lock);
	while (!Q.stop) {
		struct timespec until;

		if (Q.head) {
			deadline_in(&until, PEND_RETRY_MS);
			pthread_cond_timedwait(&Q.cv, &Q.lock, &until);
		} else {
			pthread_cond_wait(&Q.cv, &Q.lock);
		}
		/* Whether or not the probe has seen the store back: a write is
		 * as good a probe as any. */
		if (!Q.stop && Q.head)
			drain_locked(s);
	}
	pthread_mutex_unlock(&Q.lock);
	return NULL;
}

/* Appends p (Q.lock held); false when over the cap (p dropped). */
static bool append_locked(struct pend *p)
{
	if (Q.n >= pend_max) {
		metrics_store_pending_dropped();
		log_error("store: %u records already kept while the store is away: a %s (session"
			  " %s) is dropped",
			  (unsigned)Q.n, pend_what(p), p->ss.id[0] ? p->ss.id : "-");
		pend_free(p);
		return false;
	}
	p->next = NULL;
	if (Q.tail)
		Q.tail->next = p;
	else
		Q.head = p;
	Q.tail = p;
	Q.n++;
	metrics_store_pending((int64_t)Q.n);
	if (!Q.started && !Q.stop) {
		if (pthread_create(&Q.thread, NULL, pend_main, term_g.store) == 0)
			Q.started = true;
		else
			log_error("store: cannot start the thread that writes kept records");
	}
	pthread_cond_signal(&Q.cv);
	return true;
}

void pend_submit(struct pend *p)
{
	int r;

	pthread_mutex_lock(&Q.lock);
	if (Q.head) {
		/* Behind what is kept already: the trail keeps its order. */
		append_locked(p);
		pthread_mutex_unlock(&Q.lock);
		return;
	}
	pthread_mutex_unlock(&Q.lock);
	r = pend_write(term_g.store, p, false);
	if (r != -BERR_STORE) {
		if (r < 0)
			log_error("store: cannot record the %s of session %s: %s", pend_what(p),
				  p->ss.id[0] ? p->ss.id : "-", err_str(r));
		pend_free(p);
		return;
	}
	pthread_mutex_lock(&Q.lock);
	if (append_locked(p) && Q.n == 1)
		log_warn("store: unreachable; what sessions record is kept (at most %u records)"
			 " and written when it is back",
			 (unsigned)pend_max);
	pthread_mutex_unlock(&Q.lock);
}

void pend_set_max(size_t n)
{
	pthread_mutex_lock(&Q.lock);
	pend_max = n ? n : PEND_MAX;
	pthread_mutex_unlock(&Q.lock);
}

size_t pend_count(void)
{
	size_t n;

	pthread_mutex_lock(&Q.lock);
	n = Q.n;
	pthread_mutex_unlock(&Q.lock);
	return n;
}

void pend_stop(void)
{
	struct timespec until;

	pthread_mutex_lock(&Q.lock);
	/* A last chance for what is kept, bounded: the store may be back. */
	deadline_in(&until, PEND_FINAL_MS);
	while (Q.head && Q.started) {
		pthread_cond_signal(&Q.cv);
		if (pthread_cond_timedwait(&Q.cv, &Q.lock, &until) == ETIMEDOUT)
			break;
	}
	Q.stop = true;
	pthread_cond_broadcast(&Q.cv);
	pthread_mutex_unlock(&Q.lock);
	if (Q.started)
		pthread_join(Q.thread, NULL);
	pthread_mutex_lock(&Q.lock);
	if (Q.n)
		log_error("store: %u records kept while the store was away are lost at shutdown",
			  (unsigned)Q.n);
	while (Q.head) {
		struct pend *p = Q.head;

		Q.head = p->next;
		pend_free(p);
	}
	Q.tail = NULL;
	Q.n = 0;
	Q.started = false;
	Q.stop = false;
	pthread_mutex_unlock(&Q.lock);
}
