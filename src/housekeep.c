/* Periodic housekeeping of a running instance (issue 19): a timer on loop
 * 0 queues one job at a time on the worker pool, which prunes what is past
 * its retention — audit records older than audit.retention_days, ended
 * terminal session records older than sessions.retention_days (0: keep
 * for ever) — in batches of PRUNE_BATCH rows, one transaction each, with
 * a pause between (so that a first pruning of years of records does not
 * hold the store's write lock for long), at most PRUNE_MAX_BATCHES per run
 * (the rest waits for the next one). Each pruning that removed something
 * is audited: "audit.pruned" / "sessions.pruned", principal "system",
 * detail {count, before, oldest_kept}. Several instances on PostgreSQL:
 * the store's advisory lock keeps two from pruning at once. Every run also
 * deletes expired browser sessions and API tokens and stale sign-in
 * throttling rows (ident_housekeep), which sign-in no longer does.
 *
 * A second timer writes the byte counters of open sessions to their
 * records every sessions.counter_flush (terminal/flush.c), so that a crash
 * loses at most one interval of them. */
#include "housekeep.h"

#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "core/err.h"
#include "core/log.h"
#include "identity/ident.h"
#include "store/store.h"
#include "store/store_ops.h"
#include "terminal/term.h"

#define PRUNE_BATCH       500
#define PRUNE_PAUSE_MS    50
#define PRUNE_MAX_BATCHES 200
#define DAY_S             86400

static struct {
	uv_timer_t timer;
	uv_work_t work;
	/* The byte counters of open sessions (terminal/flush.c), on a timer
	 * of their own: every sessions.counter_flush. */
	uv_timer_t flush_timer;
	uv_work_t flush_work;
	bool flush_busy;
	int64_t flush_s;
	struct store *store;
	bool started, busy;
	/* Loop 0 writes, the job reads a copy taken when it is queued. */
	int64_t audit_days, sessions_days, interval_s;
	int64_t job_audit_days, job_sessions_days;
	atomic_bool stopping;
} hk;

static void pause_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void prune_one(const char *what, int64_t days,
		      int (*prune)(struct store *s, int64_t before, int batch, int *ret_n,
				   int64_t *ret_oldest))
{
	int64_t before, oldest = 0, total = 0;
	char action[32], detail[160];
	int r = 0, n = 0;

	if (days <= 0)
		return;
	before = store_now() - days * DAY_S;
	for (int i = 0; i < PRUNE_MAX_BATCHES && !atomic_load(&hk.stopping); i++) {
		if ((r = prune(hk.store, before, PRUNE_BATCH, &n, &oldest)) < 0)
			break;
		total += n;
		if (n < PRUNE_BATCH)
			break;
		pause_ms(PRUNE_PAUSE_MS);
	}
	if (r < 0)
		log_warn("retention: pruning the %s records failed: %s (%lld pruned before)", what,
			 err_str(r), (long long)total);
	if (total == 0)
		return;
	log_info("retention: pruned %lld %s record(s) older than %lld day(s)", (long long)total,
		 what, (long long)days);
	snprintf(action, sizeof(action), "%s.pruned", what);
	if (oldest > 0)
		snprintf(detail, sizeof(detail),
			 "{\"count\":%lld,\"before\":%lld,\"oldest_kept\":%lld}", (long long)total,
			 (long long)before, (long long)oldest);
	else
		snprintf(detail, sizeof(detail),
			 "{\"count\":%lld,\"before\":%lld,\"oldest_kept\":null}", (long long)total,
			 (long long)before);
	if (store_audit(hk.store, "system", action, what, "success", detail) < 0)
		log_warn("audit: could not record %s", action);
}

static void on_work(uv_work_t *w)
{
	int r;

	(void)w;
	/* Expired sign-in sessions and tokens, stale throttling rows: once
	 * here rather than on every sign-in (issue 15). */
	if ((r = ident_housekeep(hk.store, store_now())) < 0)
		log_warn("housekeeping: deleting expired sign-in sessions failed: %s", err_str(r));
	prune_one("audit", hk.job_audit_days, store_audit_prune);
	prune_one("sessions", hk.job_sessions_days, store_session_prune);
}

static void on_tick(uv_timer_t *t);

static void arm(void)
{
	if (!atomic_load(&hk.stopping))
		uv_timer_start(&hk.timer, on_tick, (uint64_t)hk.interval_s * 1000, 0);
}

static void on_done(uv_work_t *w, int status)
{
	(void)w;
	(void)status;
	hk.busy = false;
	arm();
}

static void on_tick(uv_timer_t *t)
{
	if (hk.busy) {
		arm();
		return;
	}
	hk.job_audit_days = hk.audit_days;
	hk.job_sessions_days = hk.sessions_days;
	if (uv_queue_work(t->loop, &hk.work, on_work, on_done) < 0) {
		arm();
		return;
	}
	hk.busy = true;
}

static void on_flush_tick(uv_timer_t *t);

static void arm_flush(void)
{
	if (!atomic_load(&hk.stopping))
		uv_timer_start(&hk.flush_timer, on_flush_tick, (uint64_t)hk.flush_s * 1000, 0);
}

static void on_flush_work(uv_work_t *w)
{
	int r = term_flush_counters();

	(void)w;
	if (r < 0)
		log_warn("sessions: could not write the byte counters of open sessions: %s",
			 err_str(r));
}

static void on_flush_done(uv_work_t *w, int status)
{
	(void)w;
	(void)status;
	hk.flush_busy = false;
	arm_flush();
}

static void on_flush_tick(uv_timer_t *t)
{
	if (hk.flush_busy ||
	    uv_queue_work(t->loop, &hk.flush_work, on_flush_work, on_flush_done) < 0) {
		arm_flush();
		return;
	}
	hk.flush_busy = true;
}

void housekeep_set(const struct cfg *cfg)
{
	hk.audit_days = cfg->audit_retention_days;
	hk.sessions_days = cfg->sessions_retention_days;
	hk.interval_s = cfg->housekeeping_interval_s > 0 ? cfg->housekeeping_interval_s : 600;
	hk.flush_s = cfg->counter_flush_s > 0 ? cfg->counter_flush_s : 30;
}

int housekeep_start(uv_loop_t *loop, struct store *store, const struct cfg *cfg)
{
	int r;

	hk.store = store;
	housekeep_set(cfg);
	atomic_store(&hk.stopping, false);
	if ((r = uv_timer_init(loop, &hk.timer)) < 0)
		return r;
	if ((r = uv_timer_init(loop, &hk.flush_timer)) < 0) {
		uv_close((uv_handle_t *)&hk.timer, NULL);
		return r;
	}
	/* They keep nothing alive: the loop ends when the servers have. */
	uv_unref((uv_handle_t *)&hk.timer);
	uv_unref((uv_handle_t *)&hk.flush_timer);
	hk.started = true;
	arm();
	arm_flush();
	return 0;
}

void housekeep_stop(void)
{
	if (!hk.started)
		return;
	atomic_store(&hk.stopping, true);
	uv_close((uv_handle_t *)&hk.timer, NULL);
	uv_close((uv_handle_t *)&hk.flush_timer, NULL);
	hk.started = false;
}
