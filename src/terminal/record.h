/* Session recordings (SPEC §8): asciicast v2, compressed and sealed in
 * chunks in the store (docs/decisions.md "Where recordings live").
 *
 * A chunk is a run of zstd frames, one per block the packer compressed
 * (zlib before: still read, told apart by zstd's magic number), of raw
 * events (record_raw.c; the header is the first of chunk 0), or the raw
 * events as they are when a sample says they do not
 * compress (their first byte, REC_RAW_V1, starts neither a zstd frame nor
 * a zlib stream), rendered as asciicast lines when read (chunks of
 * asciicast text, as written before, are served as they are), with a tag
 *   HMAC-SHA256(K, "bastion-rec-chunk-v1" 0 id 0 seq(8, big-endian)
 *               previous tag (32 zero bytes for chunk 0) data)
 * so that a changed byte, a removed chunk or two swapped ones fail the
 * read. The end seals the count: final = HMAC-SHA256(K, "bastion-rec-end-v1"
 * 0 id 0 count(8) last tag), so that chunks dropped from the end fail too.
 * K is 32 random bytes per recording, stored wrapped by the vault's master
 * key (the API wraps and unwraps it: terminal/ cannot call vault/).
 *
 * record_seal.c: the pure parts (the cast's lines, reading back, search).
 * record_chunk.c: a chunk's tag, how it is stored, sealing and opening.
 * record_raw.c: raw events and their rendering. record_pack.c: events
 * into chunks, compressed block by block, on the session's loop.
 * record_write.c: the writer's work on the pool (packed chunks tagged and
 * stored). record.c: the session's side on its loop. */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "core/buf.h"
#include "store/store_rec.h"

#define REC_KEY_BYTES 32
/* A chunk's asciicast text is at most this long (the reader's cap too). */
#define REC_CHUNK_PLAIN_MAX (1024 * 1024)
/* What a recording reader holds of one chunk's compressed bytes. */
#define REC_CHUNK_STORED_MAX  (REC_CHUNK_PLAIN_MAX + 64 * 1024)
#define REC_DEFAULT_MAX_BYTES (64LL * 1024 * 1024)

/* The asciicast v2 header line (with its '\n') into out. */
int rec_cast_header(struct buf *out, int width, int height, int64_t timestamp, const char *term);
/* One event line `[t, "type", "data"]\n` into out. data is terminal bytes:
 * a UTF-8 sequence cut at the end is kept in carry (*ncarry bytes, up to
 * 3) for the next event of the same stream; a byte that is not UTF-8
 * becomes U+FFFD. type 'o', 'i', 'r', 'm'. */
int rec_cast_event(struct buf *out, double t, char type, const uint8_t *data, size_t len,
		   uint8_t carry[4], size_t *ncarry);

/* Seals plain as chunk seq of id after prev (NULL for chunk 0) with a
 * chosen codec, into *ret (malloc'd, a copy for REC_CODEC_RAW), tag
 * filled (the packer, record_pack.c, makes the chunks a session stores):
 * REC_CODEC_ZLIB is how chunks were written before zstd (kept so that
 * tests and fuzzing make such chunks); REC_CODEC_RAW stores raw events as
 * they are (-EINVAL for anything else). */
#define REC_CODEC_ZSTD 0
#define REC_CODEC_ZLIB 1
#define REC_CODEC_RAW  2
int rec_seal_chunk_codec(const uint8_t key[REC_KEY_BYTES], const char *id, int64_t seq,
			 const uint8_t *prev, const uint8_t *plain, size_t len, int codec,
			 uint8_t **ret, size_t *ret_len, uint8_t tag[STORE_REC_TAG_BYTES]);
/* Checks a stored chunk's tag and decompresses it (zstd, or zlib for the
 * chunks written before; raw events stored as they are are copied) into out (appended, capped by out's cap and
 * REC_CHUNK_PLAIN_MAX). -BERR_INTEGRITY when the tag does not match or the
 * data does not decompress. */
int rec_open_chunk(const uint8_t key[REC_KEY_BYTES], const char *id, int64_t seq,
		   const uint8_t *prev, const uint8_t *data, size_t len,
		   const uint8_t tag[STORE_REC_TAG_BYTES], struct buf *out);
/* The tag of a chunk's stored bytes, and the end's (the formulas above):
 * 0, or -ENOMEM when the MAC cannot be set up (nothing written to tag). */
int rec_chunk_tag(const uint8_t key[REC_KEY_BYTES], const char *id, int64_t seq,
		  const uint8_t *prev, const uint8_t *data, size_t len,
		  uint8_t tag[STORE_REC_TAG_BYTES]);
int rec_final_tag(const uint8_t key[REC_KEY_BYTES], const char *id, int64_t count,
		  const uint8_t last[STORE_REC_TAG_BYTES], uint8_t out[STORE_REC_TAG_BYTES]);

/* Reads recording rec back: every chunk verified in order, fn called with
 * each chunk's text (a whole number of lines). A recording its writer
 * ended ("complete", "truncated") has its count checked against its final
 * tag, which must be there; one it did not end ("recording", "failed",
 * "interrupted") has none and reads as far as its chunks go (maybe none:
 * fn is then never called). -BERR_INTEGRITY with *ret_why a static
 * sentence when anything fails to verify; fn's non-zero return stops and
 * is returned. */
int rec_read(struct store *s, const struct store_rec *rec, const uint8_t key[REC_KEY_BYTES],
	     int (*fn)(const char *text, size_t len, void *ud), void *ud, const char **ret_why);
/* What a cast read back by rec_read (text, len bytes; NULL/0 for none)
 * lacks to say it ends early: for a recording its writer did not end
 * ("failed", "interrupted"), the header when no chunk was stored, and a
 * last "m" event saying where and why it ends, appended to out. Nothing
 * for the others. */
int rec_ends_early(const struct store_rec *rec, const char *text, size_t len, struct buf *out);

/* Search in what was shown: feed cast text (whole lines, header first),
 * output events are replayed into screen lines (escape sequences
 * stripped, \r and \b honoured) and each line containing q is a hit:
 * {"time": seconds of the event that first showed it, "line": the line}.
 * At most max hits; lines are cut at 1000 characters. */
struct rec_search;
int rec_search_new(const char *q, size_t max, struct rec_search **ret);
int rec_search_feed(struct rec_search *rs, const char *text, size_t len);
/* Ends the last line; the hits as a JSON array (a new reference). */
json_t *rec_search_finish(struct rec_search *rs);
void rec_search_free(struct rec_search *rs);

/* ---------- raw events (record_raw.c) ---------- */

/* A chunk's plaintext as the writer stores it: this byte, then events
 * (type, ms since the start, length: varints; the bytes as they came).
 * Asciicast v2 is rendered on read. Chunks of asciicast text (written
 * before) start with '{' or '['. */
#define REC_RAW_V1 0x01
/* One event into out (REC_RAW_V1 first when out is empty). */
int rec_raw_event(struct buf *out, char type, uint64_t ms, const uint8_t *data, size_t len);
/* The header (width, height, unix time of the start) as an event 'h'. */
int rec_raw_header(struct buf *out, int width, int height, int64_t timestamp);
/* The header's bytes (three varints) into b: how many. */
size_t rec_raw_header_bytes(uint8_t b[30], int width, int height, int64_t timestamp);
/* What rendering carries from one chunk to the next: UTF-8 sequences cut
 * between two reads of the same stream. Zeroed to start. */
struct rec_render {
	uint8_t carry_o[4], carry_i[4];
	size_t nc_o, nc_i;
};
/* Renders a raw chunk's plaintext as asciicast lines appended to out.
 * -BERR_INTEGRITY when it is not well formed (nothing appended). */
int rec_render_chunk(struct rec_render *st, const uint8_t *raw, size_t len, struct buf *out);
/* The rendered text of one chunk is at most this long (6 bytes a byte
 * escaped, and the framing of events of one byte). */
#define REC_RENDER_MAX (8 * REC_CHUNK_PLAIN_MAX)

/* Events are written in pieces of at most this many bytes (a keystroke
 * message may be 1 MiB, more than a chunk holds): the same type and time
 * each. */
#define REC_EV_PIECE (64 * 1024)
/* The most bytes rec_raw_put writes for an event of len bytes. */
static inline size_t rec_raw_put_max(size_t len)
{
	return 1 + (len / REC_EV_PIECE + 1) * 21 + len;
}
/* Writes an event at p as raw events (the format byte first when first:
 * p starts a buffer), in pieces of REC_EV_PIECE; at most
 * rec_raw_put_max(len) bytes, how many returned. What the session's loop
 * does to each read it records: a few bytes of framing and a memcpy. */
size_t rec_raw_put(uint8_t *p, bool first, char type, uint64_t ms, const uint8_t *data, size_t len);

/* ---------- the packer (record_pack.c), on the session's loop ---------- */

/* What the loop could not keep (its buffer full, or no memory): the
 * recording marks the place and says how much ("m" event). */
struct rec_gap {
	uint64_t in, out; /* keystroke bytes; output and resize bytes */
	uint64_t ms;      /* when the first was dropped */
	const char *why;  /* static text */
};
/* The marker's text for gap g ("not recorded: ... here (why)"). */
void rec_gap_text(const struct rec_gap *g, char *out, size_t size);
/* The cap's marker text. */
void rec_cap_text(int64_t max_bytes, char *out, size_t size);

/* A job for the writer: sealed-to-be chunks, each as it will be stored
 * (a run of zstd frames, or raw events as they are) behind a head saying
 * its stored and plaintext sizes (rec_job_next walks them). */
struct rec_job {
	uint8_t *buf;
	size_t len, cap;
	size_t chunks;
	int64_t total;      /* plaintext packed since the start, to this job's end */
	struct rec_gap gap; /* the gaps marked in it: audited */
	bool truncated;     /* it ends with the cap's marker */
	bool by_size;       /* taken full, not by the timer: output is flowing */
};
struct rec_packed {
	const uint8_t *data; /* as stored */
	size_t len, plain;
};
/* The chunk at *off of job (0 to start), and *off moved past it: true, or
 * false at the end. */
bool rec_job_next(const struct rec_job *job, size_t *off, struct rec_packed *ret);

/* The packer: events into chunks as they come, on the session's loop.
 * Each chunk's events go into a block (REC_BLOCK) that is compressed as
 * it fills, on the loop, into a zstd frame of
 * the chunk (a chunk is a run of frames, at most REC_CHUNK_PLAIN_MAX of
 * events); a chunk whose first block a sample says does not compress
 * takes its events as they are instead. The cap (max bytes of events)
 * is kept here, event by event: the event that would pass it is replaced
 * by a marker saying so, and nothing more is packed. */
#define REC_BLOCK (128 * 1024)
struct rec_pack {
	struct rec_job job; /* being filled */
	uint8_t *blk;       /* the open chunk's block of events (REC_BLOCK) */
	size_t blk_len, blk_cap;
	int kind;           /* of the open chunk (record_pack.c) */
	size_t head;        /* where the open chunk's head is in job.buf */
	size_t plain;       /* the open chunk's plaintext so far */
	uint64_t last_ms;   /* of the last event packed */
	int64_t total, max; /* plaintext packed; the cap */
	struct rec_gap gap; /* dropped and not marked yet */
	bool stopped;       /* past the cap */
};
/* A packer whose first event is the header (width, height, start). */
void rec_pack_init(struct rec_pack *pk, int64_t max_bytes, int width, int height,
		   int64_t started_at);
/* An event (cut in pieces of REC_EV_PIECE). Past the cap: the marker,
 * then nothing. -ENOMEM: not packed; the caller counts it as a gap. */
int rec_pack_event(struct rec_pack *pk, char type, uint64_t ms, const uint8_t *data, size_t len);
/* len bytes of type that could not be kept at ms: marked before the next
 * event packed, or at the end of the job. */
void rec_pack_drop(struct rec_pack *pk, char type, uint64_t ms, size_t len, const char *why);
/* Bytes held: the job's and the block's. */
static inline size_t rec_pack_held(const struct rec_pack *pk)
{
	return pk->job.len + pk->blk_len;
}
/* Closes the open chunk and hands the job over: *job becomes what was
 * packed, and its buffer before (emptied) is what the packer fills next
 * (double buffering: a steady stream allocates nothing). */
void rec_pack_take(struct rec_pack *pk, struct rec_job *job);
/* Gives back the memory of an empty block and job (output slowed down). */
void rec_pack_trim(struct rec_pack *pk);
void rec_pack_free(struct rec_pack *pk);

/* Level-1 zstd of n bytes at p as one frame into out (cap bytes, at least
 * ZSTD_compressBound(n)), with this thread's compressor: its size, or 0
 * on failure. And whether events are worth it, from a sample. Any thread. */
size_t rec_zstd_frame(const uint8_t *p, size_t n, uint8_t *out, size_t cap);
size_t rec_zstd_bound(size_t n);
bool rec_worth_compressing(const uint8_t *plain, size_t len);

/* ---------- the writer (record_write.c), on the pool ---------- */

/* One recording's writer: one job at a time runs it (the chain of tags
 * needs no lock). row is filled by the caller before the first run. */
struct rec_writer {
	struct store *store;
	uint8_t key[REC_KEY_BYTES];
	uint8_t prev[STORE_REC_TAG_BYTES];
	int64_t seq, bytes, max_bytes;
	bool opened;
	uint64_t gap_total;   /* bytes not recorded, in all */
	char principal[80];   /* "user:NAME", for the audit trail */
	struct store_rec row; /* its metadata; state and error as they are now */
	atomic_bool stopped;  /* failed or interrupted: appends stop */
};

void rec_writer_init(struct rec_writer *w, struct store *st, const uint8_t key[REC_KEY_BYTES],
		     int64_t max_bytes);
/* Seals and stores job's chunks (rec_pack_take) in one transaction, the
 * row first, on the first run; audits what the job says was not recorded
 * (its gaps) and the cap. final: the recording's end is sealed and
 * stored. Nothing is dropped without an "m" event in the cast and an
 * audit record, or the recording's state saying why it stopped. */
void rec_writer_run(struct rec_writer *w, const struct rec_job *job, bool final,
		    int64_t duration_ms);
/* Wipes the key. */
void rec_writer_free(struct rec_writer *w);
