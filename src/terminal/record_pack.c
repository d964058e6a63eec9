/* The packer (record.h "the packer"): a recorded session's events into the
 * chunks the writer stores, on the session's loop, as they come.
 *
 * Why here and not on the pool: the writer used to compress what the loop
 * had gathered (896 KiB of events) on another thread, forty jobs and
 * transactions a second of W2, each a wake-up of the pool and of the
 * loop back, and a third busy thread on two cores; recording cost
 * 13-14 % of W2's CPU (BENCHMARKS.md "Recording"). Now a block of events
 * (REC_BLOCK) is compressed as it fills, and the writer only tags and
 * stores what is, for terminal output, a few KiB per MiB: two or three
 * jobs a second.
 *
 * A job's buffer holds chunks, each behind a head of two 32-bit sizes
 * (stored, plaintext), host order: it never leaves the process. A chunk is
 * a run of zstd frames, one per block (a reader inflates them in turn),
 * or, when a sample of its first block says it does not compress, its
 * events as they are (REC_RAW_V1 first). Events never straddle chunks.
 *
 * The cap is kept here, event by event (a marker's room kept back), and
 * what could not be kept is marked where it was lost: the writer audits
 * both from the job. Pure: no loop, no store; any thread. */
#include "terminal/record.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { K_NONE, K_OPEN, K_ZSTD, K_RAW }; /* the open chunk: none, undecided, ... */

#define HEAD     8   /* a chunk's head in a job: stored and plaintext sizes */
#define MARK_MAX 320 /* an "m" event's room: its text (< 256) and framing */
#define BLK_MIN  (4 * 1024)

void rec_gap_text(const struct rec_gap *g, char *out, size_t size)
{
	char what[96];

	if (g->in && g->out)
		snprintf(what, sizeof(what), "%llu bytes of keystrokes and %llu bytes of output",
			 (unsigned long long)g->in, (unsigned long long)g->out);
	else
		snprintf(what, sizeof(what), "%llu bytes of %s",
			 (unsigned long long)(g->in ? g->in : g->out),
			 g->in ? "keystrokes" : "output");
	snprintf(out, size, "not recorded: %s here (%s)", what, g->why ? g->why : "unknown");
}

void rec_cap_text(int64_t max_bytes, char *out, size_t size)
{
	snprintf(out, size,
		 "recording stopped: it reached recording.max_bytes (%lld bytes);"
		 " the session went on unrecorded",
		 (long long)max_bytes);
}

static void gap_add(struct rec_gap *to, const struct rec_gap *g)
{
	if (!to->in && !to->out)
		to->ms = g->ms;
	to->in += g->in;
	to->out += g->out;
	to->why = g->why;
}

static int grow(struct rec_job *j, size_t extra)
{
	size_t cap = j->cap ? j->cap : 16 * 1024;
	uint8_t *p;

	if (j->len + extra <= j->cap)
		return 0;
	while (cap < j->len + extra)
		cap *= 2;
	if (!(p = realloc(j->buf, cap)))
		return -ENOMEM;
	j->buf = p;
	j->cap = cap;
	return 0;
}

/* Room for need more bytes in the block, grown to what the output needs
 * (an interactive session's block stays small); the caller keeps
 * blk_len + need within REC_BLOCK. */
static int blk_room(struct rec_pack *pk, size_t need)
{
	size_t cap = pk->blk_cap ? pk->blk_cap : BLK_MIN;
	uint8_t *p;

	if (pk->blk && pk->blk_len + need <= pk->blk_cap)
		return 0;
	while (cap < pk->blk_len + need)
		cap *= 2;
	if (cap > REC_BLOCK)
		cap = REC_BLOCK;
	if (!(p = realloc(pk->blk, cap)))
		return -ENOMEM;
	pk->blk = p;
	pk->blk_cap = cap;
	return 0;
}

static int open_chunk(struct rec_pack *pk)
{
	if (grow(&pk->job, HEAD) < 0)
		return -ENOMEM;
	pk->head = pk->job.len;
	pk->job.len += HEAD;
	pk->kind = K_OPEN;
	pk->plain = 0;
	return 0;
}

/* The block into the open chunk: a zstd frame, or the events as they are
 * (decided by the chunk's first block). */
static int flush_block(struct rec_pack *pk)
{
	struct rec_job *j = &pk->job;

	if (!pk->blk_len)
		return 0;
	if (pk->kind == K_OPEN)
		pk->kind = rec_worth_compressing(pk->blk, pk->blk_len) ? K_ZSTD : K_RAW;
	if (pk->kind == K_RAW) {
		if (grow(j, pk->blk_len) < 0)
			return -ENOMEM;
		memcpy(j->buf + j->len, pk->blk, pk->blk_len);
		j->len += pk->blk_len;
	} else {
		size_t bound = rec_zstd_bound(pk->blk_len), n;

		if (grow(j, bound) < 0 ||
		    !(n = rec_zstd_frame(pk->blk, pk->blk_len, j->buf + j->len, bound)))
			return -ENOMEM;
		j->len += n;
	}
	pk->blk_len = 0;
	return 0;
}

/* A block that could not be flushed (no memory) is lost, and marked so;
 * a chunk left with nothing stored is dropped whole (its format byte was
 * in that block). */
static void lose_block(struct rec_pack *pk)
{
	rec_pack_drop(pk, 'o', pk->last_ms, pk->blk_len, "out of memory");
	pk->total -= (int64_t)pk->blk_len;
	pk->plain -= pk->blk_len;
	pk->blk_len = 0;
	if (pk->kind == K_OPEN || !pk->plain) {
		pk->job.len = pk->head;
		pk->kind = K_NONE;
	}
}

static void close_chunk(struct rec_pack *pk)
{
	uint32_t h[2];

	if (pk->kind == K_NONE)
		return;
	if (flush_block(pk) < 0)
		lose_block(pk);
	if (pk->kind == K_NONE)
		return;
	if (!pk->plain) { /* opened, nothing packed */
		pk->job.len = pk->head;
		pk->kind = K_NONE;
		return;
	}
	h[0] = (uint32_t)(pk->job.len - pk->head - HEAD);
	h[1] = (uint32_t)pk->plain;
	memcpy(pk->job.buf + pk->head, h, HEAD);
	pk->job.chunks++;
	pk->kind = K_NONE;
}

/* One piece (at most REC_EV_PIECE bytes) as an event, the cap not checked. */
static int put_piece(struct rec_pack *pk, char type, uint64_t ms, const uint8_t *data, size_t n)
{
	size_t need = rec_raw_put_max(n), k;
	uint8_t *dst;

	if (pk->kind != K_NONE && pk->plain + need > REC_CHUNK_PLAIN_MAX)
		close_chunk(pk);
	if (pk->kind == K_NONE && open_chunk(pk) < 0)
		return -ENOMEM;
	if (pk->kind != K_RAW && pk->blk_len + need > REC_BLOCK && flush_block(pk) < 0) {
		lose_block(pk);
		if (pk->kind == K_NONE && open_chunk(pk) < 0)
			return -ENOMEM;
	}
	if (pk->kind == K_RAW) {
		if (grow(&pk->job, need) < 0)
			return -ENOMEM;
		dst = pk->job.buf + pk->job.len;
	} else {
		if (blk_room(pk, need) < 0)
			return -ENOMEM;
		dst = pk->blk + pk->blk_len;
	}
	k = rec_raw_put(dst, pk->plain == 0, type, ms, data, n);
	if (pk->kind == K_RAW)
		pk->job.len += k;
	else
		pk->blk_len += k;
	pk->plain += k;
	pk->total += (int64_t)k;
	pk->last_ms = ms;
	return 0;
}

static bool fits(const struct rec_pack *pk, size_t need)
{
	return pk->total + (int64_t)need + MARK_MAX <= pk->max;
}

/* The cap: a last event says the recording stopped, and why (in the room
 * kept back for it). */
static void stop_at_cap(struct rec_pack *pk, uint64_t ms)
{
	char msg[200];

	rec_cap_text(pk->max, msg, sizeof(msg));
	put_piece(pk, 'm', ms, (const uint8_t *)msg, strlen(msg)); /* no memory: audited */
	pk->stopped = true;
	pk->job.truncated = true;
}

/* The pending gap's marker, where the next event goes; kept pending when
 * there is no memory for it. */
static void mark_gap(struct rec_pack *pk)
{
	char msg[256];
	uint64_t ms = pk->gap.ms > pk->last_ms ? pk->gap.ms : pk->last_ms; /* never back */
	size_t n;

	if (!pk->gap.in && !pk->gap.out)
		return;
	rec_gap_text(&pk->gap, msg, sizeof(msg));
	n = strlen(msg);
	if (!pk->stopped) {
		if (!fits(pk, rec_raw_put_max(n)))
			stop_at_cap(pk, ms);
		else if (put_piece(pk, 'm', ms, (const uint8_t *)msg, n) < 0)
			return;
	}
	gap_add(&pk->job.gap, &pk->gap);
	memset(&pk->gap, 0, sizeof(pk->gap));
}

void rec_pack_init(struct rec_pack *pk, int64_t max_bytes, int width, int height,
		   int64_t started_at)
{
	uint8_t b[30];

	memset(pk, 0, sizeof(*pk));
	pk->max = max_bytes > 0 ? max_bytes : REC_DEFAULT_MAX_BYTES;
	if (put_piece(pk, 'h', 0, b, rec_raw_header_bytes(b, width, height, started_at)) < 0)
		rec_pack_drop(pk, 'o', 0, 1, "out of memory"); /* the header: audited */
}

int rec_pack_event(struct rec_pack *pk, char type, uint64_t ms, const uint8_t *data, size_t len)
{
	size_t off = 0;

	if (pk->stopped)
		return 0;
	mark_gap(pk);
	if (pk->gap.in || pk->gap.out) {
		rec_pack_drop(pk, type, ms, len, "out of memory");
		return -ENOMEM;
	}
	do {
		size_t n = len - off < REC_EV_PIECE ? len - off : REC_EV_PIECE;

		if (pk->stopped)
			return 0;
		if (!fits(pk, rec_raw_put_max(n))) {
			stop_at_cap(pk, ms);
			return 0;
		}
		if (put_piece(pk, type, ms, data + off, n) < 0) {
			rec_pack_drop(pk, type, ms, len - off, "out of memory");
			return -ENOMEM;
		}
		off += n;
	} while (off < len);
	return 0;
}

void rec_pack_drop(struct rec_pack *pk, char type, uint64_t ms, size_t len, const char *why)
{
	if (pk->stopped || !len)
		return;
	if (!pk->gap.in && !pk->gap.out)
		pk->gap.ms = ms;
	*(type == 'i' ? &pk->gap.in : &pk->gap.out) += len;
	pk->gap.why = why;
}

void rec_pack_take(struct rec_pack *pk, struct rec_job *job)
{
	struct rec_job next = { .buf = job->buf, .cap = job->cap };

	mark_gap(pk);
	if (pk->gap.in || pk->gap.out) { /* no room for its marker: audited */
		gap_add(&pk->job.gap, &pk->gap);
		memset(&pk->gap, 0, sizeof(pk->gap));
	}
	close_chunk(pk);
	pk->job.total = pk->total;
	*job = pk->job;
	pk->job = next;
}

bool rec_job_next(const struct rec_job *job, size_t *off, struct rec_packed *ret)
{
	uint32_t h[2];

	if (*off + HEAD > job->len)
		return false;
	memcpy(h, job->buf + *off, HEAD);
	ret->data = job->buf + *off + HEAD;
	ret->len = h[0];
	ret->plain = h[1];
	*off += HEAD + h[0];
	return true;
}

void rec_pack_trim(struct rec_pack *pk)
{
	if (!pk->blk_len) {
		free(pk->blk);
		pk->blk = NULL;
		pk->blk_cap = 0;
	}
	if (!pk->job.len) {
		free(pk->job.buf);
		pk->job.buf = NULL;
		pk->job.cap = 0;
	}
}

void rec_pack_free(struct rec_pack *pk)
{
	free(pk->job.buf);
	free(pk->blk);
	memset(pk, 0, sizeof(*pk));
}
