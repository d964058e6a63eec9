/* The recording writer's side on the session's loop (record.h): what a
 * recorded session's pump hands it goes to the packer (record_pack.c:
 * events into chunks, compressed block by block as they come), and the
 * packed chunks to jobs that seal and store them
 * on the worker pool (record_write.c does the work); retention, on loop 0.
 *
 * On the loop the output path appends the bytes, the time and the type
 * to the packer's block (a few bytes of framing and a memcpy), and every
 * REC_BLOCK of them is compressed (level-1 zstd: 0.3 s per GiB of W2,
 * about 40 µs a block); no disk, no store. The packed chunks go to a worker when they hold
 * REC_FLUSH_BYTES, REC_FLUSH_CHUNKS chunks, or one second after the first
 * byte, whichever is first; one job per recording at a time, so the
 * chain of tags needs no lock. A store that falls behind does not grow
 * memory without end: past REC_BUF_HIGH the session's SSH reads pause
 * (sess_update_output) until the job has taken the buffer, so nothing
 * shown escapes the recording. */
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

/* Fewer, larger jobs and transactions (BENCHMARKS.md "Recording"): a job
 * is what the packer made of 896 KiB stored (output that does not
 * compress: about one chunk), or of 16 chunks of events (terminal output
 * that does: 16 MiB shown, a few KiB stored), or of one second. */
#define REC_FLUSH_BYTES  (896 * 1024)
#define REC_FLUSH_CHUNKS 16
#define REC_FLUSH_MS     1000
#define REC_BUF_HIGH     (2 * 1024 * 1024) /* output pauses past this */
/* Input past this is not kept (output pauses at REC_BUF_HIGH): counted,
 * and marked in the recording where it was lost. */
#define REC_BUF_HARD (8 * 1024 * 1024)

struct rec {
	/* the loop's */
	uv_loop_t *loop;
	uv_timer_t timer;
	struct sess *sess; /* NULL once the session ended */
	struct rec_pack pk;
	uint64_t t0_ms;
	bool job_running, ending, final_queued, final_done, timer_closed;
	/* handed to the job in flight; its buffer, once done, is the next
	 * swap's (kept while output flows) */
	uv_work_t work;
	struct rec_job job;
	bool job_final;
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

	rec_writer_run(&r->w, &r->job, r->job_final, r->duration_ms);
}

/* ---------- on the loop ---------- */

static void rec_free(struct rec *r)
{
	rec_writer_free(&r->w);
	rec_pack_free(&r->pk);
	free(r->job.buf);
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

static bool due(const struct rec *r)
{
	return rec_pack_held(&r->pk) >= REC_FLUSH_BYTES || r->pk.job.chunks >= REC_FLUSH_CHUNKS;
}

static void queue_job(struct rec *r, bool final)
{
	bool by_size = due(r);

	rec_pack_take(&r->pk, &r->job);
	r->job.by_size = by_size;
	if (!by_size) /* output slowed down: the block's memory goes back */
		rec_pack_trim(&r->pk);
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
	if (due(r) || (timer_fired && rec_pack_held(&r->pk)))
		queue_job(r, false);
}

static void rec_done(uv_work_t *w, int status)
{
	struct rec *r = w->data;

	/* Its buffer is the next swap's for a steady stream only: a flush by
	 * the timer means the output slowed down, and an idle session holds
	 * no spare. */
	r->job.len = 0;
	r->job.chunks = 0;
	if (r->job_final || !r->job.by_size || r->job.cap > REC_BUF_HIGH) {
		free(r->job.buf);
		r->job.buf = NULL;
		r->job.cap = 0;
	}
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
	if (!r->job_running && rec_pack_held(&r->pk) && !uv_is_active((uv_handle_t *)&r->timer))
		uv_timer_start(&r->timer, on_timer, REC_FLUSH_MS, 0);
}

static void on_timer_closed(uv_handle_t *h)
{
	struct rec *r = h->data;

	r->timer_closed = true;
	maybe_free(r);
}

static void append(struct rec *r, char type, const void *data, size_t len)
{
	uint64_t ms = uv_now(r->loop) - r->t0_ms;

	if (r->pk.stopped || atomic_load_explicit(&r->w.stopped, memory_order_relaxed))
		return;
	if (rec_pack_held(&r->pk) + len > REC_BUF_HARD) {
		/* Bytes that cannot be kept are counted, to be marked where
		 * they were lost, never dropped silently. */
		rec_pack_drop(&r->pk, type, ms, len,
			      "the store fell behind: more than 8 MiB waited to be written");
		return;
	}
	rec_pack_event(&r->pk, type, ms, data, len); /* no memory: a gap, marked */
	if (r->job_running) {
		if (rec_pack_held(&r->pk) >= REC_BUF_HIGH && r->sess)
			sess_update_output(r->sess);
		return;
	}
	if (due(r))
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
	rec_writer_init(&r->w, term_g.store, tc->rec_key, atomic_load(&rec_max_bytes));
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
	rec_pack_init(&r->pk, r->w.max_bytes, tc->p.cols > 0 ? tc->p.cols : 80,
		      tc->p.rows > 0 ? tc->p.rows : 24, row->started_at);
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
	return s->rec && rec_pack_held(&s->rec->pk) >= REC_BUF_HIGH && s->rec->job_running;
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
