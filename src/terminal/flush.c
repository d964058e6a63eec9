/* The byte counters of open sessions, written to their store records
 * periodically (issue 19): a session's counters otherwise reach the store
 * only at its end, so after a kill -9 the record closed at the next start
 * ("bastion restarted") would say 0 bytes. Called on a worker by the
 * instance's housekeeping timer (src/housekeep.c); only the sessions whose
 * counters moved since the last flush are written. */
#include "terminal/internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "store/store_ops.h"

struct flush_rec {
	char id[48];
	uint64_t to_vm, from_vm;
};

static pthread_mutex_t one_flusher = PTHREAD_MUTEX_INITIALIZER;

/* Under term_g.lock: the sessions whose counters moved, marked as
 * flushed (the caller writes them). *ret malloc'd. */
static size_t snapshot(struct flush_rec **ret)
{
	struct flush_rec *recs = NULL;
	size_t n = 0, cap = 0;

	pthread_mutex_lock(&term_g.lock);
	for (size_t b = 0; b < BUCKETS; b++) {
		for (struct sess *s = term_g.buckets[b]; s; s = s->next_bucket) {
			uint64_t to = atomic_load_explicit(&s->to_vm, memory_order_relaxed);
			uint64_t from = atomic_load_explicit(&s->from_vm, memory_order_relaxed);

			if (to == s->flushed_to && from == s->flushed_from)
				continue;
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 64;
				struct flush_rec *m = realloc(recs, ncap * sizeof(*recs));

				if (!m)
					goto out; /* the rest waits for the next flush */
				recs = m;
				cap = ncap;
			}
			util_strlcpy(recs[n].id, s->id, sizeof(recs[n].id));
			recs[n].to_vm = to;
			recs[n].from_vm = from;
			s->flushed_to = to;
			s->flushed_from = from;
			n++;
		}
	}
out:
	pthread_mutex_unlock(&term_g.lock);
	*ret = recs;
	return n;
}

int term_flush_counters(void)
{
	struct flush_rec *recs = NULL;
	size_t n;
	int r = 0, written = 0;

	if (!term_g.store)
		return 0;
	pthread_mutex_lock(&one_flusher);
	n = snapshot(&recs);
	for (size_t i = 0; i < n; i++) {
		int e = store_session_bytes(term_g.store, recs[i].id, recs[i].to_vm,
					    recs[i].from_vm);

		if (e < 0)
			r = e;
		else
			written++;
	}
	pthread_mutex_unlock(&one_flusher);
	free(recs);
	return r < 0 ? r : written;
}
