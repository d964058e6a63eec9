/* The recording writer's work (record.h "the writer"): what a recorded
 * session's loop gathered into raw events (record_raw.c: no escaping
 * here; asciicast is rendered on read), compressed, sealed chunks in the
 * store, on a pool thread, one job per recording at a
 * time. Kept apart from the loop's side (record.c) so that a unit test
 * runs it on a real store without a session.
 *
 * The events are stored from the loop's buffer where they are (no copy
 * here but the header's, once), a job's worth as one chunk.
 *
 * Nothing escapes the recording silently: an event larger than a chunk
 * may hold was written by the loop as several events (rec_raw_put); bytes
 * the loop could not keep are marked where they were lost (an "m" event
 * saying how many and why) and audited ("recording.gap"); the cap ends the recording
 * with a marker ("truncated"); a store that refuses a chunk marks it
 * "failed" (audited); one closed by another instance (its instance was
 * taken for lost) stops quietly: the survivor audited it. */
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

/* A job's events are cut into chunks of about the same size, at most this
 * big before their last event: with that event (a piece and its head)
 * and the header, a chunk still fits in REC_CHUNK_PLAIN_MAX, and its
 * rendering in REC_RENDER_MAX. A job (record.c: REC_FLUSH_BYTES) is one
 * chunk, one transaction, unless the store fell behind. */
#define REC_CHUNK_SPLIT (REC_CHUNK_PLAIN_MAX - REC_EV_PIECE - 1024)

void rec_writer_init(struct rec_writer *w, struct store *st, const uint8_t key[REC_KEY_BYTES],
		     int width, int height, int64_t max_bytes)
{
	memset(w, 0, sizeof(*w));
	w->store = st;
	memcpy(w->key, key, REC_KEY_BYTES);
	w->width = width;
	w->height = height;
	w->max_bytes = max_bytes > 0 ? max_bytes : REC_DEFAULT_MAX_BYTES;
	buf_init(&w->plain, REC_CHUNK_PLAIN_MAX);
	atomic_init(&w->stopped, false);
	util_strlcpy(w->row.state, "recording", sizeof(w->row.state));
}

void rec_writer_free(struct rec_writer *w)
{
	sodium_memzero(w->key, sizeof(w->key));
	buf_free(&w->plain);
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

/* Stores len bytes of raw events at p (p[0] is the format byte) as the
 * next chunk. < 0: nothing more is written (the state says why). */
static int store_chunk(struct rec_writer *w, const uint8_t *p, size_t len)
{
	uint8_t tag[STORE_REC_TAG_BYTES], *z = NULL;
	const uint8_t *data = NULL;
	size_t zlen = 0;
	int e;

	if (!len)
		return 0;
	e = rec_seal_chunk(w->key, w->row.id, w->seq, w->seq ? w->prev : NULL, p, len, &z, &data,
			   &zlen, tag);
	if (e == 0)
		e = store_rec_chunk_add(w->store, w->row.id, w->seq, data, zlen, tag,
					w->bytes + (int64_t)len);
	free(z);
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
	w->bytes += (int64_t)len;
	w->seq++;
	memcpy(w->prev, tag, sizeof(tag));
	return 0;
}

/* What the writer added itself (the header, markers) as a chunk. */
static int store_plain(struct rec_writer *w)
{
	int e = store_chunk(w, (const uint8_t *)buf_str(&w->plain), w->plain.len);

	buf_truncate(&w->plain, 0); /* its memory stays for the next one */
	return e;
}

/* The cap: a last event says the recording stopped, and why. */
static void truncate_here(struct rec_writer *w, uint64_t ms)
{
	char msg[160];

	snprintf(msg, sizeof(msg),
		 "recording stopped: it reached recording.max_bytes (%lld bytes);"
		 " the session went on unrecorded",
		 (long long)w->max_bytes);
	rec_raw_event(&w->plain, 'm', ms, (const uint8_t *)msg, strlen(msg));
	util_strlcpy(w->row.state, "truncated", sizeof(w->row.state));
	util_strlcpy(w->row.error, msg, sizeof(w->row.error));
	atomic_store(&w->stopped, true);
	audit(w, "recording.truncated", "truncated", w->row.error,
	      w->bytes + (int64_t)w->plain.len);
}

/* The events ev[fb + 1, end) as a chunk, ev[fb] its format byte: the
 * loop's own for a job's first chunk, else the last byte of the chunk
 * before, stored already. Stored where they are, but behind what the
 * writer holds (the header of a recording's first chunk), copied. */
static int put_chunk(struct rec_writer *w, uint8_t *ev, size_t fb, size_t end)
{
	int e;

	if (end <= fb + 1)
		return 0;
	if (w->plain.len) {
		if ((e = buf_append(&w->plain, ev + fb + 1, end - fb - 1)) < 0) {
			fail(w, "the recording's first chunk could not be made", e);
			return e;
		}
		return store_plain(w);
	}
	ev[fb] = REC_RAW_V1;
	return store_chunk(w, ev + fb, end - fb);
}

/* A job's events into chunks of about equal size, cut between events, up
 * to the cap. */
static void put_events(struct rec_writer *w, uint8_t *ev, size_t len)
{
	size_t target = len / (len / REC_CHUNK_SPLIT + 1) + 1, fb = 0, off = 1;

	if (ev[0] != REC_RAW_V1) {
		fail(w, "the recording's events could not be read", -BERR_INTEGRITY);
		return;
	}
	while (off < len) {
		size_t end;
		uint64_t ms;

		if (rec_raw_next(ev, len, off, &end, &ms) < 0) {
			/* Cannot happen: the loop wrote them (rec_raw_put). */
			fail(w, "the recording's events could not be read", -BERR_INTEGRITY);
			return;
		}
		if (w->bytes + (int64_t)(w->plain.len + end - fb) > w->max_bytes) {
			if (put_chunk(w, ev, fb, off) == 0)
				truncate_here(w, ms);
			return;
		}
		w->last_ms = ms;
		off = end;
		if (end - fb >= target) {
			if (put_chunk(w, ev, fb, end) < 0)
				return;
			fb = end - 1;
		}
	}
	put_chunk(w, ev, fb, len);
}

/* Marks what the loop could not keep where it
 * was lost, says so in the row's error, and audits it. */
static void put_gap(struct rec_writer *w, const struct rec_gap *g)
{
	char msg[256], what[96];
	uint64_t ms = g->ms > w->last_ms ? g->ms : w->last_ms; /* times never go back */
	size_t before = w->plain.len;

	if (g->in && g->out)
		snprintf(what, sizeof(what), "%llu bytes of keystrokes and %llu bytes of output",
			 (unsigned long long)g->in, (unsigned long long)g->out);
	else
		snprintf(what, sizeof(what), "%llu bytes of %s",
			 (unsigned long long)(g->in ? g->in : g->out),
			 g->in ? "keystrokes" : "output");
	snprintf(msg, sizeof(msg), "not recorded: %s here (%s)", what, g->why);
	w->gap_total += g->in + g->out;
	log_warn("recording %s of session %s: %s", w->row.id, w->row.session, msg);
	audit(w, "recording.gap", "incomplete", msg, w->bytes + (int64_t)w->plain.len);
	snprintf(w->row.error, sizeof(w->row.error),
		 "%llu bytes in all were not recorded; the recording marks where",
		 (unsigned long long)w->gap_total);
	if (rec_raw_event(&w->plain, 'm', ms, (const uint8_t *)msg, strlen(msg)) < 0)
		return; /* no memory: the row's error and the audit trail say it */
	if (w->bytes + (int64_t)w->plain.len > w->max_bytes) {
		buf_truncate(&w->plain, before);
		truncate_here(w, ms);
	}
}

void rec_writer_run(struct rec_writer *w, uint8_t *ev, size_t len, const struct rec_gap *gap,
		    bool final, int64_t duration_ms)
{
	int e;

	buf_truncate(&w->plain, 0);
	w->row.duration_ms = duration_ms;
	snprintf(w->principal, sizeof(w->principal), "user:%s", w->row.user);
	if (!w->opened && writing(w)) {
		if ((e = store_rec_open(w->store, &w->row)) < 0)
			fail(w, "the recording could not be created in the store", e);
		else
			w->opened = true;
	}
	if (!w->header_done && writing(w)) {
		w->header_done = true;
		if ((e = rec_raw_header(&w->plain, w->width, w->height, w->row.started_at)) < 0)
			fail(w, "the recording's header could not be made", e);
	}
	if (len > 1 && writing(w))
		put_events(w, ev, len);
	if (writing(w) && gap && (gap->in || gap->out))
		put_gap(w, gap);
	if (writing(w) || strcmp(w->row.state, "truncated") == 0)
		store_plain(w);
	if (w->plain.alloc > 4096) {
		/* The first chunk's copy: not kept for markers. */
		buf_free(&w->plain);
		buf_init(&w->plain, REC_CHUNK_PLAIN_MAX);
	}
	buf_truncate(&w->plain, 0);
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
