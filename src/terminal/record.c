/* The recording writer (record.h): what a recorded session's pump hands
 * it, on the session's loop, and the work that turns it into sealed
 * chunks in the store, on the worker pool; retention, on loop 0.
 *
 * On the loop the output path only appends the bytes, the time and the
 * type to an in-memory buffer (a memcpy): no formatting, no disk, no store.
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

#include <sodium.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/util.h"
#include "store/store_rec.h"

/* Fewer, larger jobs and transactions: SQLite was 10 % of W2 at 64 KiB,
 * and 1 MiB against 256 KiB took W2's CPU with recording on from 1.3 to
 * 1.0 times that of recording off (BENCHMARKS.md "Recording"). */
#define REC_FLUSH_BYTES (1024 * 1024)
#define REC_FLUSH_MS    1000
#define REC_BUF_HIGH    (2 * 1024 * 1024) /* output pauses past this */
#define REC_BUF_HARD    (8 * 1024 * 1024) /* input past this is dropped (counted) */
/* A chunk's text is cut here: an output event (a read, at most 64 KiB,
 * 6 bytes a byte at worst once escaped) still fits in REC_CHUNK_PLAIN_MAX. */
#define REC_CHUNK_SPLIT (512 * 1024)
#define REC_EV_HEAD     13 /* type (1), length (4), time in ms (8) */

struct rec {
	/* the loop's */
	uv_loop_t *loop;
	uv_timer_t timer;
	struct sess *sess; /* NULL once the session ended */
	uint8_t *ev;       /* raw events, REC_EV_HEAD + bytes each */
	size_t ev_len, ev_cap;
	uint8_t *spare; /* the last job's buffer, kept for the next swap */
	size_t spare_cap;
	uint64_t t0_ms;
	bool job_running, ending, final_queued, final_done, timer_closed;
	uint64_t lost;       /* input bytes dropped past REC_BUF_HARD */
	atomic_bool stopped; /* set by a job: past the cap, or failed */
	/* handed to the job in flight */
	uv_work_t work;
	uint8_t *job_ev;
	size_t job_len, job_cap;
	bool job_final;
	uint64_t job_lost;
	int64_t duration_ms;
	/* the jobs': one at a time */
	uint8_t key[REC_KEY_BYTES];
	uint8_t prev[STORE_REC_TAG_BYTES];
	int64_t seq, bytes, max_bytes;
	uint8_t carry_o[4], carry_i[4];
	size_t nc_o, nc_i;
	bool opened, header_done;
	struct buf plain; /* the cast text of the chunk being made, kept */
	int width, height;
	char principal[80];
	struct store_rec row; /* its metadata; state and error as they are now */
};

static _Atomic int64_t rec_max_bytes = REC_DEFAULT_MAX_BYTES;
static _Atomic int64_t rec_retention_days;

void term_rec_configure(int64_t max_bytes, int64_t retention_days)
{
	atomic_store(&rec_max_bytes, max_bytes > 0 ? max_bytes : REC_DEFAULT_MAX_BYTES);
	atomic_store(&rec_retention_days, retention_days);
}

/* ---------- on the pool ---------- */

/* bytes: the cast's size as far as it goes (stored and about to be). */
static void job_audit(struct rec *r, const char *action, const char *result, int64_t bytes)
{
	json_t *d = json_pack("{s:s,s:s,s:s,s:s,s:I}", "recording", r->row.id, "session",
			      r->row.session, "bastion", r->row.bastion, "error", r->row.error,
			      "bytes", (json_int_t)bytes);
	char *text = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	if (store_audit(term_g.store, r->principal, action, r->row.vm, result, text) < 0)
		log_error("audit: cannot record %s of %s", action, r->row.id);
	free(text);
	json_decref(d);
}

/* The recording cannot be written: it says so (state, error) and is
 * audited; the session goes on (docs/decisions.md). */
static void job_fail(struct rec *r, const char *what, int err)
{
	if (strcmp(r->row.state, "failed") == 0)
		return;
	util_strlcpy(r->row.state, "failed", sizeof(r->row.state));
	snprintf(r->row.error, sizeof(r->row.error), "%s: %s", what, err_str(err));
	atomic_store(&r->stopped, true);
	log_error("recording %s of session %s: %s", r->row.id, r->row.session, r->row.error);
	job_audit(r, "recording.failed", "failed", r->bytes);
	if (r->opened)
		store_rec_finish(term_g.store, r->row.id, store_now(), r->duration_ms, "failed",
				 r->row.error, NULL);
}

static int job_store_chunk(struct rec *r, struct buf *plain)
{
	uint8_t tag[STORE_REC_TAG_BYTES], *z = NULL;
	size_t zlen = 0;
	int e;

	if (!plain->len)
		return 0;
	e = rec_seal_chunk(r->key, r->row.id, r->seq, r->seq ? r->prev : NULL,
			   (const uint8_t *)buf_str(plain), plain->len, &z, &zlen, tag);
	if (e == 0)
		e = store_rec_chunk_add(term_g.store, r->row.id, r->seq, z, zlen, tag,
					r->bytes + (int64_t)plain->len);
	free(z);
	if (e < 0) {
		job_fail(r, "a chunk could not be stored", e);
		return e;
	}
	r->bytes += (int64_t)plain->len;
	r->seq++;
	memcpy(r->prev, tag, sizeof(tag));
	buf_truncate(plain, 0); /* its memory stays for the next chunk */
	return 0;
}

/* The cap: a last event says the recording stopped, and why. */
static void job_truncate(struct rec *r, struct buf *plain, double t)
{
	char msg[160];

	snprintf(msg, sizeof(msg),
		 "recording stopped: it reached recording.max_bytes (%lld bytes);"
		 " the session went on unrecorded",
		 (long long)r->max_bytes);
	rec_cast_event(plain, t, 'm', (const uint8_t *)msg, strlen(msg), NULL, NULL);
	util_strlcpy(r->row.state, "truncated", sizeof(r->row.state));
	util_strlcpy(r->row.error, msg, sizeof(r->row.error));
	atomic_store(&r->stopped, true);
	job_audit(r, "recording.truncated", "truncated", r->bytes + (int64_t)plain->len);
}

static void rec_work(uv_work_t *w)
{
	struct rec *r = w->data;
	struct buf plain = r->plain; /* kept across jobs: no 1 MiB malloc each */
	double t = 0;
	int e;

	buf_truncate(&plain, 0);
	if (!r->opened) {
		r->opened = true;
		if ((e = store_rec_open(term_g.store, &r->row)) < 0) {
			r->opened = false;
			job_fail(r, "the recording could not be created in the store", e);
		}
	}
	if (!r->header_done && strcmp(r->row.state, "recording") == 0) {
		r->header_done = true;
		rec_cast_header(&plain, r->width, r->height, r->row.started_at, "xterm-256color");
	}
	for (size_t off = 0; off + REC_EV_HEAD <= r->job_len;) {
		const uint8_t *p = r->job_ev + off;
		uint32_t len;
		uint64_t ms;
		size_t before = plain.len;

		memcpy(&len, p + 1, 4);
		memcpy(&ms, p + 5, 8);
		off += REC_EV_HEAD + len;
		t = (double)ms / 1000.0;
		if (strcmp(r->row.state, "recording") != 0)
			continue;
		rec_cast_event(&plain, t, (char)p[0], p + REC_EV_HEAD, len,
			       p[0] == 'i'   ? r->carry_i
			       : p[0] == 'o' ? r->carry_o
					     : NULL,
			       p[0] == 'i' ? &r->nc_i : &r->nc_o);
		if (r->bytes + (int64_t)plain.len > r->max_bytes) {
			buf_truncate(&plain, before);
			job_truncate(r, &plain, t);
		}
		if (plain.len >= REC_CHUNK_SPLIT && job_store_chunk(r, &plain) < 0)
			break;
	}
	if (r->job_lost && strcmp(r->row.state, "recording") == 0)
		snprintf(r->row.error, sizeof(r->row.error),
			 "%llu bytes of input were not recorded: the store fell behind",
			 (unsigned long long)r->job_lost);
	if (strcmp(r->row.state, "failed") != 0)
		job_store_chunk(r, &plain);
	buf_truncate(&plain, 0);
	if (r->job_len < REC_FLUSH_BYTES) {
		/* Output slowed down (the timer flushed): give the memory back
		 * rather than hold it for an idle session. */
		buf_free(&plain);
		buf_init(&plain, REC_CHUNK_PLAIN_MAX);
	}
	r->plain = plain;
	if (r->job_final && r->opened) {
		uint8_t fin[STORE_REC_TAG_BYTES];
		bool failed = strcmp(r->row.state, "failed") == 0;

		if (strcmp(r->row.state, "recording") == 0)
			util_strlcpy(r->row.state, "complete", sizeof(r->row.state));
		rec_final_tag(r->key, r->row.id, r->seq, r->seq ? r->prev : NULL, fin);
		e = store_rec_finish(term_g.store, r->row.id, store_now(), r->duration_ms,
				     r->row.state, r->row.error[0] ? r->row.error : NULL,
				     failed ? NULL : fin);
		if (e < 0 && !failed)
			job_fail(r, "the recording's end could not be stored", e);
	}
}

/* ---------- on the loop ---------- */

static void rec_free(struct rec *r)
{
	sodium_memzero(r->key, sizeof(r->key));
	buf_free(&r->plain);
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
	r->job_lost = r->lost;
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
		log_error("recording %s: cannot queue its work", r->row.id);
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

static void append(struct rec *r, char type, const void *data, size_t len)
{
	uint64_t ms = uv_now(r->loop) - r->t0_ms;
	uint32_t n = (uint32_t)len;
	size_t need = r->ev_len + REC_EV_HEAD + len;

	if (atomic_load_explicit(&r->stopped, memory_order_relaxed))
		return;
	if (need > REC_BUF_HARD) {
		r->lost += len;
		return;
	}
	if (need > r->ev_cap) {
		size_t cap = r->ev_cap ? r->ev_cap : 16 * 1024;
		uint8_t *p;

		while (cap < need)
			cap *= 2;
		if (!(p = realloc(r->ev, cap))) {
			r->lost += len;
			return;
		}
		r->ev = p;
		r->ev_cap = cap;
	}
	r->ev[r->ev_len] = (uint8_t)type;
	memcpy(r->ev + r->ev_len + 1, &n, 4);
	memcpy(r->ev + r->ev_len + 5, &ms, 8);
	memcpy(r->ev + r->ev_len + REC_EV_HEAD, data, len);
	r->ev_len = need;
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
	char host[64] = "";

	if (!tc->rec_mode[0])
		return 0;
	if (!(r = calloc(1, sizeof(*r))))
		return -ENOMEM;
	r->loop = s->home->loop;
	r->sess = s;
	r->t0_ms = uv_now(r->loop);
	r->max_bytes = atomic_load(&rec_max_bytes);
	r->width = tc->p.cols > 0 ? tc->p.cols : 80;
	r->height = tc->p.rows > 0 ? tc->p.rows : 24;
	memcpy(r->key, tc->rec_key, sizeof(r->key));
	buf_init(&r->plain, REC_CHUNK_PLAIN_MAX);
	snprintf(r->principal, sizeof(r->principal), "user:%s", s->user);
	util_strlcpy(r->row.id, tc->rec_id, sizeof(r->row.id));
	util_strlcpy(r->row.session, s->id, sizeof(r->row.session));
	util_strlcpy(r->row.user, s->user, sizeof(r->row.user));
	util_strlcpy(r->row.vm, s->vm_id, sizeof(r->row.vm));
	util_strlcpy(r->row.bastion, s->bastion_id, sizeof(r->row.bastion));
	gethostname(host, sizeof(host) - 1);
	util_strlcpy(r->row.instance, host[0] ? host : "bastion", sizeof(r->row.instance));
	util_strlcpy(r->row.mode, tc->rec_mode, sizeof(r->row.mode));
	util_strlcpy(r->row.state, "recording", sizeof(r->row.state));
	r->row.started_at = store_now();
	memcpy(r->row.wrapped, tc->rec_wrapped, tc->rec_wrapped_len);
	r->row.wrapped_len = tc->rec_wrapped_len;
	uv_timer_init(r->loop, &r->timer);
	r->timer.data = r;
	s->rec = r;
	util_strlcpy(s->rec_id, r->row.id, sizeof(s->rec_id));
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
	if (strcmp(s->rec->row.mode, "input_output") == 0)
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
