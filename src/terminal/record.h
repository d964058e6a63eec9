/* Session recordings (SPEC §8): asciicast v2, compressed and sealed in
 * chunks in the store (docs/decisions.md "Where recordings live").
 *
 * A chunk is a zstd frame (zlib before: still read, told apart by zstd's
 * magic number) of some asciicast lines (the header is the start of
 * chunk 0), with a tag
 *   HMAC-SHA256(K, "bastion-rec-chunk-v1" 0 id 0 seq(8, big-endian)
 *               previous tag (32 zero bytes for chunk 0) data)
 * so that a changed byte, a removed chunk or two swapped ones fail the
 * read. The end seals the count: final = HMAC-SHA256(K, "bastion-rec-end-v1"
 * 0 id 0 count(8) last tag), so that chunks dropped from the end fail too.
 * K is 32 random bytes per recording, stored wrapped by the vault's master
 * key (the API wraps and unwraps it: terminal/ cannot call vault/).
 *
 * record_seal.c: the pure parts (the cast's lines, sealing, reading back,
 * search). record.c: the writer on the session's loop and the pool. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* Compresses plain (zstd level 1) and seals it as chunk seq of id after
 * prev (NULL for chunk 0): *ret malloc'd, tag filled. */
int rec_seal_chunk(const uint8_t key[REC_KEY_BYTES], const char *id, int64_t seq,
		   const uint8_t *prev, const uint8_t *plain, size_t len, uint8_t **ret,
		   size_t *ret_len, uint8_t tag[STORE_REC_TAG_BYTES]);
/* The same with a chosen codec: REC_CODEC_ZLIB is how chunks were written
 * before zstd (kept so that tests and fuzzing make such chunks). */
#define REC_CODEC_ZSTD 0
#define REC_CODEC_ZLIB 1
int rec_seal_chunk_codec(const uint8_t key[REC_KEY_BYTES], const char *id, int64_t seq,
			 const uint8_t *prev, const uint8_t *plain, size_t len, int codec,
			 uint8_t **ret, size_t *ret_len, uint8_t tag[STORE_REC_TAG_BYTES]);
/* Checks a stored chunk's tag and decompresses it (zstd, or zlib for the
 * chunks written before) into out (appended, capped by out's cap and
 * REC_CHUNK_PLAIN_MAX). -BERR_INTEGRITY when the tag does not match or the
 * data does not decompress. */
int rec_open_chunk(const uint8_t key[REC_KEY_BYTES], const char *id, int64_t seq,
		   const uint8_t *prev, const uint8_t *data, size_t len,
		   const uint8_t tag[STORE_REC_TAG_BYTES], struct buf *out);
/* The tag of a chunk's stored bytes (the formula above). */
void rec_chunk_tag(const uint8_t key[REC_KEY_BYTES], const char *id, int64_t seq,
		   const uint8_t *prev, const uint8_t *data, size_t len,
		   uint8_t tag[STORE_REC_TAG_BYTES]);
void rec_final_tag(const uint8_t key[REC_KEY_BYTES], const char *id, int64_t count,
		   const uint8_t last[STORE_REC_TAG_BYTES], uint8_t out[STORE_REC_TAG_BYTES]);

/* Reads recording rec back: every chunk verified in order, fn called with
 * each chunk's text (a whole number of lines). A recording that ended
 * has its count checked against its final tag. -BERR_INTEGRITY with
 * *ret_why a static sentence when anything fails to verify; fn's non-zero
 * return stops and is returned. */
int rec_read(struct store *s, const struct store_rec *rec, const uint8_t key[REC_KEY_BYTES],
	     int (*fn)(const char *text, size_t len, void *ud), void *ud, const char **ret_why);

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
