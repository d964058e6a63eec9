/* The recording writer's work (record.h "the writer"): the chunks a
 * recorded session's loop packed (record_pack.c: compressed there, block
 * by block), tagged in their chain and stored, a job's chunks
 * in one transaction, on a pool thread, one job per recording at a time.
 * Kept apart from the loop's side (record.c) so that a unit test runs it
 * on a real store without a session.
 *
 * Nothing escapes the recording silently: what the loop could not keep
 * was marked by the packer where it was lost and is audited here
 * ("recording.gap"); the cap, marked by the packer, ends the recording
 * ("truncated", audited); a store that refuses a chunk marks it "failed"
 * (audited); one closed by another instance (its instance was taken for
 * lost) stops quietly: the survivor audited it. */
#include "terminal/record.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/util.h"
#include "store/store.h"
#include "store/store_rec.h"

void rec_writer_init(struct rec_writer *w, struct store *st, const uint8_t key[REC_KEY_BYTES],
		     int64_t max_bytes)
{
	memset(w, 0, sizeof(*w));
	w->store = st;
	memcpy(w->key, key, REC_KEY_BYTES);
	w->max_bytes = max_bytes > 0 ? max_bytes : REC_DEFAULT_MAX_BYTES;
	atomic_init(&w->stopped, false);
	util_strlcpy(w->row.state, "recording", sizeof(w->row.state));
}

void rec_writer_free(struct rec_writer *w)
{
	sodium_memzero(w->key, sizeof(w->key));
}

static bool writing(const struct rec_writer *w)
{
	return strcmp(w->row.state, "recording") == 0;
}

/* bytes: the cast's size as far as it goes (stored and about to be). */
static void audit(struct rec_writer *w, const char *action, const char *result, const char *error,
		  int64_t bytes)
{
	json_t *d = json_pack("{s:s,s:s,s:s,s:s,s:I}", "recording", w->row.id, "session",
			      w->row.session, "bastion", w->row.bastion, "error", error, "bytes",
			      (json_int_t)bytes);
	char *text = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	if (store_audit(w->store, w->principal, action, w->row.vm, result, text) < 0)
		log_error("audit: cannot record %s of %s", action, w->row.id);
	free(text);
	json_decref(d);
}

/* The recording cannot be written: it says so (state, error) and is
 * audited; the session goes on (docs/decisions.md). */
static void fail(struct rec_writer *w, const char *what, int err)
{
	if (strcmp(w->row.state, "failed") == 0)
		return;
	util_strlcpy(w->row.state, "failed", sizeof(w->row.state));
	snprintf(w->row.error, sizeof(w->row.error), "%s: %s", what, err_str(err));
	atomic_store(&w->stopped, true);
	log_error("recording %s of session %s: %s", w->row.id, w->row.session, w->row.error);
	audit(w, "recording.failed", "failed", w->row.error, w->bytes);
	if (w->opened)
		store_rec_finish(w->store, w->row.id, store_now(), w->row.duration_ms, "failed",
				 w->row.error, NULL);
}

/* The job's chunks, tagged in their chain, in one transaction. < 0:
 * nothing more is written (the state says why). */
static int store_chunks(struct rec_writer *w, const struct rec_job *job)
{
	struct store_rec_chunk *c;
	struct rec_packed p;
	uint8_t prev[STORE_REC_TAG_BYTES];
	size_t off = 0, n = 0;
	int e = 0;

	if (!job->chunks)
		return 0;
	if (!(c = calloc(job->chunks, sizeof(*c)))) {
		fail(w, "a chunk could not be stored", -ENOMEM);
		return -ENOMEM;
	}
	memcpy(prev, w->prev, sizeof(prev));
	while (e == 0 && n < job->chunks && rec_job_next(job, &off, &p)) {
		e = rec_chunk_tag(w->key, w->row.id, w->seq + (int64_t)n,
				  w->seq + (int64_t)n ? prev : NULL, p.data, p.len, c[n].tag);
		c[n].data = p.data;
		c[n].len = p.len;
		memcpy(prev, c[n].tag, sizeof(prev));
		n++;
	}
	if (e == 0)
		e = store_rec_chunks_add(w->store, w->row.id, w->seq, c, n, job->total);
	free(c);
	if (e == -ESTALE) {
		/* Closed as interrupted by another instance, which took this
		 * one for lost and audited it: that end stands. */
		util_strlcpy(w->row.state, "interrupted", sizeof(w->row.state));
		atomic_store(&w->stopped, true);
		log_warn("recording %s of session %s was closed by another instance (this one"
			 " was taken for lost): nothing more is written to it",
			 w->row.id, w->row.session);
		return e;
	}
	if (e < 0) {
		fail(w, "a chunk could not be stored", e);
		return e;
	}
	w->bytes = job->total;
	w->seq += (int64_t)n;
	memcpy(w->prev, prev, sizeof(prev));
	return 0;
}

/* What the loop could not keep, marked where it was lost by the packer:
 * said in the row's error, and audited. */
static void audit_gap(struct rec_writer *w, const struct rec_gap *g)
{
	char msg[256];

	rec_gap_text(g, msg, sizeof(msg));
	w->gap_total += g->in + g->out;
	log_warn("recording %s of session %s: %s", w->row.id, w->row.session, msg);
	audit(w, "recording.gap", "incomplete", msg, w->bytes);
	snprintf(w->row.error, sizeof(w->row.error),
		 "%llu bytes in all were not recorded; the recording marks where",
		 (unsigned long long)w->gap_total);
}

/* The cap, marked by the packer: the recording stops, and says why. */
static void truncated(struct rec_writer *w)
{
	rec_cap_text(w->max_bytes, w->row.error, sizeof(w->row.error));
	util_strlcpy(w->row.state, "truncated", sizeof(w->row.state));
	atomic_store(&w->stopped, true);
	audit(w, "recording.truncated", "truncated", w->row.error, w->bytes);
}

void rec_writer_run(struct rec_writer *w, const struct rec_job *job, bool final,
		    int64_t duration_ms)
{
	int e;

	w->row.duration_ms = duration_ms;
	snprintf(w->principal, sizeof(w->principal), "user:%s", w->row.user);
	if (!w->opened && writing(w)) {
		if ((e = store_rec_open(w->store, &w->row)) < 0)
			fail(w, "the recording could not be created in the store", e);
		else
			w->opened = true;
	}
	if (job && writing(w) && store_chunks(w, job) == 0) {
		if (job->gap.in || job->gap.out)
			audit_gap(w, &job->gap);
		if (job->truncated)
			truncated(w);
	}
	if (final && w->opened && strcmp(w->row.state, "interrupted") != 0 &&
	    strcmp(w->row.state, "failed") != 0) {
		uint8_t fin[STORE_REC_TAG_BYTES];

		if (writing(w))
			util_strlcpy(w->row.state, "complete", sizeof(w->row.state));
		e = rec_final_tag(w->key, w->row.id, w->seq, w->seq ? w->prev : NULL, fin);
		if (e == 0)
			e = store_rec_finish(w->store, w->row.id, store_now(), duration_ms,
					     w->row.state, w->row.error[0] ? w->row.error : NULL,
					     fin);
		if (e == -ESTALE)
			util_strlcpy(w->row.state, "interrupted", sizeof(w->row.state));
		else if (e < 0)
			fail(w, "the recording's end could not be stored", e);
	}
}
