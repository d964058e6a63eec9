/* Session recordings in the store (SPEC §8): one row per recording and its
 * chunks, each chunk compressed and sealed by src/terminal/record*.c. The
 * store keeps bytes; it neither compresses nor verifies them. Both backends
 * (sqlite_rec.c, pg_rec.c), so that every instance sharing one PostgreSQL
 * reads every recording (docs/decisions.md "Where recordings live"). */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct store;

#define STORE_REC_ID_SIZE     48
#define STORE_REC_TAG_BYTES   32
#define STORE_REC_WRAPPED_MAX 128
#define STORE_REC_ERROR_SIZE  200

/* A recording's row. state: "recording" (being written), "complete",
 * "truncated" (past recording.max_bytes: the cast says so), "failed"
 * (could not be written: error says why), "interrupted" (its instance
 * stopped or was lost before the end: closed by store_rec_interrupt; its
 * chunks read as far as they go, with no end seal). */
struct store_rec {
	char id[STORE_REC_ID_SIZE];
	char session[48];
	char user[65];
	char vm[256];
	char bastion[256];
	char instance[128];
	char mode[16];                /* "output" or "input_output" */
	int64_t started_at, ended_at; /* unix seconds; ended_at 0: not ended */
	int64_t duration_ms;
	int64_t bytes;  /* asciicast bytes written so far */
	int64_t stored; /* bytes stored (compressed chunks) */
	int64_t chunks;
	char state[16];
	char error[STORE_REC_ERROR_SIZE];
	/* The recording's sealing key, wrapped by the vault's master key. */
	uint8_t wrapped[STORE_REC_WRAPPED_MAX];
	size_t wrapped_len;
	/* Seals the chunk count once ended (record_chunk.c); zero until then. */
	uint8_t final_tag[STORE_REC_TAG_BYTES];
	int has_final;
};

/* Which recordings, newest first; NULL or 0 fields do not filter. Paging
 * like the audit trail: before_seq is the `seq` of the last row seen. */
struct store_rec_filter {
	const char *user, *vm, *bastion;
	int64_t since, until; /* started_at >= since, < until */
	int64_t before_seq;
	int limit;
};

/* A new recording's row (state "recording"). -EEXIST: the ID is taken. */
int store_rec_open(struct store *s, const struct store_rec *rec);
/* A chunk to store: its bytes, as sealed, and its tag. */
struct store_rec_chunk {
	const uint8_t *data;
	size_t len;
	uint8_t tag[STORE_REC_TAG_BYTES];
};
/* Appends chunks seq, seq + 1, ... (n of them) of recording id and sets
 * its cast size to bytes, in one transaction. -EEXIST: one of those
 * chunks exists; -ESTALE: no such recording in state "recording" (gone,
 * or closed by another instance). Nothing is stored on failure. */
int store_rec_chunks_add(struct store *s, const char *id, int64_t seq,
			 const struct store_rec_chunk *c, size_t n, int64_t bytes);
/* One chunk, as store_rec_chunks_add. */
static inline int store_rec_chunk_add(struct store *s, const char *id, int64_t seq,
				      const uint8_t *data, size_t len,
				      const uint8_t tag[STORE_REC_TAG_BYTES], int64_t bytes)
{
	struct store_rec_chunk c = { data, len, { 0 } };

	memcpy(c.tag, tag, STORE_REC_TAG_BYTES);
	return store_rec_chunks_add(s, id, seq, &c, 1, bytes);
}
/* Ends a recording still in state "recording": its end, duration, state,
 * error (NULL: none) and the tag sealing its chunk count (NULL: none, as
 * for a failed one). -ESTALE when it is not (gone, or interrupted by
 * another instance: that end stays). */
int store_rec_finish(struct store *s, const char *id, int64_t ended_at, int64_t duration_ms,
		     const char *state, const char *error, const uint8_t *final_tag);
/* Closes every recording of instance (NULL: of any instance, for SQLite,
 * where one process at a time uses the store) still in state "recording"
 * as "interrupted" at now (error says which instance stopped and reason),
 * with a "recording.interrupted" audit record each, in one transaction
 * (or inside the caller's: the instances' claim and reap call it where
 * they end that instance's sessions). *ret_n: how many. */
int store_rec_interrupt(struct store *s, const char *instance, int64_t now, const char *reason,
			int *ret_n);
/* One recording; -ENOENT when there is none. */
int store_rec_get(struct store *s, const char *id, struct store_rec *ret);
/* Recordings matching f, newest first; fn's seq is the paging key. A
 * non-zero return from fn stops the walk and is returned. */
int store_rec_query(struct store *s, const struct store_rec_filter *f,
		    int (*fn)(const struct store_rec *rec, int64_t seq, void *ud), void *ud);
/* Chunk seq of recording id: *ret malloc'd (the caller frees it) and its
 * tag. -ENOENT when there is no such chunk. */
int store_rec_chunk_get(struct store *s, const char *id, int64_t seq, uint8_t **ret,
			size_t *ret_len, uint8_t ret_tag[STORE_REC_TAG_BYTES]);
/* Retention: removes up to limit recordings that ended before `before`
 * (their chunks with them), oldest first, in one transaction; *ret_n: how
 * many. Small batches keep each transaction short. */
int store_rec_prune(struct store *s, int64_t before, int limit, int *ret_n);
/* Master-key rotation (vault_rotate): every recording's wrapped key, in
 * the caller's transaction; and one replaced. */
int store_rec_key_foreach(struct store *s,
			  int (*fn)(const char *id, const uint8_t *w, size_t len, void *ud),
			  void *ud);
int store_rec_key_update(struct store *s, const char *id, const uint8_t *w, size_t len);
