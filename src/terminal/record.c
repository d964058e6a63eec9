/* The recording writer's side on the session's loop (record.h): what a
 * recorded session's pump hands it, and the jobs that turn it into sealed
 * chunks in the store on the worker pool (record_write.c does the work);
 * retention, on loop 0.
 *
 * On the loop the output path only appends the bytes, the time and the
 * type to an in-memory buffer as raw events (rec_raw_put: a few bytes of
 * framing and a memcpy), which the writer stores where they are: no
 * formatting, no disk, no store, no second copy.
 * The buffer goes to a worker when it holds REC_FLUSH_BYTES or one second
 * after its first byte, whichever is first; one job per recording at a
 * time, so the chain of tags needs no lock. A store that falls behind
 * does not grow memory without end: past REC_BUF_HIGH the session's SSH
 * reads pause (sess_update_output) until the job has taken the buffer, so
 * nothing shown escapes the recording. */
#include "terminal/internal.h"
#include "terminal/record.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/util.h"
#include "store/store_rec.h"

/* Fewer, larger jobs and transactions: SQLite was 10 % of W2 at 64 KiB,
 * and 1 MiB against 256 KiB took W2's CPU with recording on from 1.3 to
 * 1.0 times that of recording off (BENCHMARKS.md "Recording"). A job of
 * this much and one more read is one chunk (record_write.c), one
 * transaction; 1 MiB made two chunks and a third of a few bytes. */
#define REC_FLUSH_BYTES (896 * 1024)
#define REC_FLUSH_MS    1000
#define REC_BUF_HIGH    (2 * 1024 * 1024) /* output pauses past this */
/* Input past this is not kept (output pauses at REC_BUF_HIGH): counted,
 * and marked in the recording where it was lost. */
#define REC_BUF_HARD (8 * 1024 * 1024)

struct rec {
	/* the loop's */
	uv_loop_t *loop;
	uv_timer_t timer;
	struct sess *sess; /* NULL once the session ended */
	uint8_t *ev;       /* raw events (rec_raw_put) */
	size_t ev_len, ev_cap;
	uint8_t *spare; /* the last job's buffer, kept for the next swap */
	size_t spare_cap;
	uint64_t t0_ms;
	bool job_running, ending, final_queued, final_done, timer_closed;
	struct rec_gap gap; /* dropped since the last job (buffer full, no memory) */
	/* handed to the job in flight */
	uv_work_t work;
	uint8_t *job_ev;
	size_t job_len, job_cap;
	bool job_final;
	struct rec_gap job_gap;
	int64_t duration_ms;
	/* the jobs': one at a time */
	struct rec_writer w;
};

static _Atomic int64_t rec_max_bytes = REC_DEFAULT_MAX_BYTES;
static _Atomic int64_t rec_retention_days;

void term_rec_configure(int64_t max_bytes, int64_t retention_days)
{
	atomic_store(&rec_max_bytes, max_bytes > 0 ? max_bytes : REC_DEFAULT_MAX_BYTES);
	atomic_store(&rec_retention_days, retention_days);
}

/* ---------- on the pool ---------- */

static void rec_work(uv_work_t *work)
{
	struct rec *r = work->data;

	rec_writer_run(&r->w, r->job_ev, r->job_len, &r->job_gap, r->job_final, r->duration_ms);
}

/* ---------- on the loop ---------- */

static void rec_free(struct rec *r)
{
	rec_writer_free(&r->w);
	free(r->ev);
	free(r->spare);
	free(r);
}

static void maybe_free(struct rec *r)
{
	if (r->final_done && r->timer_closed && !r->job_running)
		rec_free(r);
}

static void rec_done(uv_work_t *w, int status);
static void flush_if_due(struct rec *r, bool timer_fired);

static void on_timer(uv_timer_t *t)
{
	flush_if_due(t->data, true);
}

static void queue_job(struct rec *r, bool final)
{
	/* Double buffering: the loop goes on in the spare (the last job's
	 * buffer, already grown), so a steady stream allocates nothing. */
	r->job_ev = r->ev;
	r->job_len = r->ev_len;
	r->job_cap = r->ev_cap;
	r->job_gap = r->gap;
	memset(&r->gap, 0, sizeof(r->gap));
	r->ev = r->spare;
	r->ev_cap = r->spare_cap;
	r->ev_len = 0;
	r->spare = NULL;
	r->spare_cap = 0;
	r->job_final = final;
	r->job_running = true;
	r->work.data = r;
	if (final)
		r->final_queued = true;
	uv_timer_stop(&r->timer);
	if (uv_queue_work(r->loop, &r->work, rec_work, rec_done) < 0) {
		/* Only when the loop is closing: nothing more can be written. */
		log_error("recording %s: cannot queue its work", r->w.row.id);
		rec_done(&r->work, UV_ECANCELED);
		return;
	}
	if (r->sess)
		sess_update_output(r->sess); /* the buffer is empty again */
}

static void flush_if_due(struct rec *r, bool timer_fired)
{
	if (r->job_running)
		return;
	if (r->ending) {
		if (!r->final_queued)
			queue_job(r, true);
		return;
	}
	if (r->ev_len >= REC_FLUSH_BYTES || (timer_fired && r->ev_len))
		queue_job(r, false);
}

static void rec_done(uv_work_t *w, int status)
{
	struct rec *r = w->data;

	/* Kept for a steady stream only: a flush by the timer means the
	 * output slowed down, and an idle session holds no spare. */
	if (!r->job_final && !r->spare && r->job_len >= REC_FLUSH_BYTES &&
	    r->job_cap <= REC_BUF_HIGH) {
		r->spare = r->job_ev;
		r->spare_cap = r->job_cap;
	} else {
		free(r->job_ev);
	}
	r->job_ev = NULL;
	r->job_running = false;
	if (r->job_final) {
		r->final_done = true;
		maybe_free(r);
		return;
	}
	flush_if_due(r, false);
	if (r->sess) /* reads paused for this job may go on */
		sess_update_output(r->sess);
	/* What arrived meanwhile waits at most REC_FLUSH_MS more. */
	if (!r->job_running && r->ev_len && !uv_is_active((uv_handle_t *)&r->timer))
		uv_timer_start(&r->timer, on_timer, REC_FLUSH_MS, 0);
}

static void on_timer_closed(uv_handle_t *h)
{
	struct rec *r = h->data;

	r->timer_closed = true;
	maybe_free(r);
}

/* Bytes that cannot be kept are counted, to be marked where they were
 * lost (record_write.c), never dropped silently. */
static void drop(struct rec *r, char type, uint64_t ms, size_t len, const char *why)
{
	if (!r->gap.in && !r->gap.out)
		r->gap.ms = ms;
	*(type == 'i' ? &r->gap.in : &r->gap.out) += len;
	r->gap.why = why;
}

static void append(struct rec *r, char type, const void *data, size_t len)
{
	uint64_t ms = uv_now(r->loop) - r->t0_ms;
	size_t need = r->ev_len + rec_raw_put_max(len);

	if (atomic_load_explicit(&r->w.stopped, memory_order_relaxed))
		return;
	if (need > REC_BUF_HARD) {
		drop(r, type, ms, len,
		     "the store fell behind: more than 8 MiB waited to be written");
		return;
	}
	if (need > r->ev_cap) {
		size_t cap = r->ev_cap ? r->ev_cap : 16 * 1024;
		uint8_t *p;

		while (cap < need)
			cap *= 2;
		if (!(p = realloc(r->ev, cap))) {
			drop(r, type, ms, len, "out of memory");
			return;
		}
		r->ev = p;
		r->ev_cap = cap;
	}
	r->ev_len += rec_raw_put(r->ev + r->ev_len, r->ev_len == 0, type, ms, data, len);
	if (r->job_running) {
		if (r->ev_len >= REC_BUF_HIGH && r->sess)
			sess_update_output(r->sess);
		return;
	}
	if (r->ev_len >= REC_FLUSH_BYTES)
		queue_job(r, false);
	else if (!uv_is_active((uv_handle_t *)&r->timer))
		uv_timer_start(&r->timer, on_timer, REC_FLUSH_MS, 0);
}

int term_rec_start(struct sess *s, const struct term_connect *tc)
{
	struct rec *r;
	struct store_rec *row;
	char host[64] = "";

	if (!tc->rec_mode[0])
		return 0;
	if (!(r = calloc(1, sizeof(*r))))
		return -ENOMEM;
	r->loop = s->home->loop;
	r->sess = s;
	r->t0_ms = uv_now(r->loop);
	rec_writer_init(&r->w, term_g.store, tc->rec_key, tc->p.cols > 0 ? tc->p.cols : 80,
			tc->p.rows > 0 ? tc->p.rows : 24, atomic_load(&rec_max_bytes));
	row = &r->w.row;
	util_strlcpy(row->id, tc->rec_id, sizeof(row->id));
	util_strlcpy(row->session, s->id, sizeof(row->session));
	util_strlcpy(row->user, s->user, sizeof(row->user));
	util_strlcpy(row->vm, s->vm_id, sizeof(row->vm));
	util_strlcpy(row->bastion, s->bastion_id, sizeof(row->bastion));
	/* The instance's name among those sharing the store: a survivor
	 * closes this recording by it if this instance is lost. */
	if (term_instance_name()[0])
		util_strlcpy(row->instance, term_instance_name(), sizeof(row->instance));
	else if (gethostname(host, sizeof(host) - 1) == 0 && host[0])
		util_strlcpy(row->instance, host, sizeof(row->instance));
	else
		util_strlcpy(row->instance, "bastion", sizeof(row->instance));
	util_strlcpy(row->mode, tc->rec_mode, sizeof(row->mode));
	row->started_at = store_now();
	memcpy(row->wrapped, tc->rec_wrapped, tc->rec_wrapped_len);
	row->wrapped_len = tc->rec_wrapped_len;
	uv_timer_init(r->loop, &r->timer);
	r->timer.data = r;
	s->rec = r;
	util_strlcpy(s->rec_id, row->id, sizeof(s->rec_id));
	/* The row and the header now: the recording is listed from the start. */
	queue_job(r, false);
	return 0;
}

void term_rec_output(struct sess *s, const uint8_t *buf, size_t len)
{
	append(s->rec, 'o', buf, len);
}

void term_rec_input(struct sess *s, const uint8_t *buf, size_t len)
{
	if (strcmp(s->rec->w.row.mode, "input_output") == 0)
		append(s->rec, 'i', buf, len);
}

void term_rec_resize(struct sess *s, int cols, int rows)
{
	char size[32];
	int n = snprintf(size, sizeof(size), "%dx%d", cols, rows);

	append(s->rec, 'r', size, (size_t)n);
}

bool term_rec_behind(const struct sess *s)
{
	return s->rec && s->rec->ev_len >= REC_BUF_HIGH && s->rec->job_running;
}

void term_rec_stop(struct sess *s)
{
	struct rec *r = s->rec;

	if (!r)
		return;
	s->rec = NULL;
	r->sess = NULL;
	r->ending = true;
	r->duration_ms = (int64_t)(uv_now(r->loop) - r->t0_ms);
	uv_timer_stop(&r->timer);
	uv_close((uv_handle_t *)&r->timer, on_timer_closed);
	flush_if_due(r, false);
}

/* ---------- retention, on loop 0 ---------- */

#define PRUNE_EVERY_MS (3600 * 1000)
#define PRUNE_BATCH    100
#define PRUNE_BATCHES  50 /* per run: 5,000 recordings, then the next hour */

static uv_timer_t prune_timer;
static bool prune_inited, prune_running;
static uv_work_t prune_work;

static void prune_run(uv_work_t *w)
{
	int64_t days = atomic_load(&rec_retention_days);

	if (days > 0)
		term_rec_prune(term_g.store, store_now() - days * 86400, PRUNE_BATCHES);
}

int term_rec_prune(struct store *st, int64_t before, int max_batches)
{
	int total = 0;

	for (int b = 0; b < max_batches; b++) {
		char detail[96];
		int n = 0, e = store_rec_prune(st, before, PRUNE_BATCH, &n);

		if (e < 0) {
			log_error("recordings: retention could not remove old recordings: %s",
				  err_str(e));
			return e;
		}
		if (n == 0)
			break;
		total += n;
		snprintf(detail, sizeof(detail), "{\"removed\":%d,\"ended_before\":%lld}", n,
			 (long long)before);
		store_audit(st, "system", "recording.prune", "/", "removed", detail);
		if (n < PRUNE_BATCH)
			break;
	}
	return total;
}

static void prune_done(uv_work_t *w, int status)
{
	prune_running = false;
}

static void on_prune_timer(uv_timer_t *t)
{
	if (prune_running || atomic_load(&rec_retention_days) <= 0)
		return;
	prune_running = true;
	if (uv_queue_work(t->loop, &prune_work, prune_run, prune_done) < 0)
		prune_running = false;
}

void term_rec_loop_init(struct term_loop *l)
{
	if (l->index != 0 || prune_inited)
		return;
	uv_timer_init(l->loop, &prune_timer);
	uv_unref((uv_handle_t *)&prune_timer);
	/* The first run a minute after the start, then hourly. */
	uv_timer_start(&prune_timer, on_prune_timer, 60 * 1000, PRUNE_EVERY_MS);
	prune_inited = true;
}

void term_rec_loop_done(struct term_loop *l)
{
	if (l->index != 0 || !prune_inited)
		return;
	uv_close((uv_handle_t *)&prune_timer, NULL);
	prune_inited = false;
}
