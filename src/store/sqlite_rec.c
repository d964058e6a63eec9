/* SQLite backend for store_rec.h: tables recordings and recording_chunks.
 * Bytes in, bytes out: sealing and compression are the terminal's
 * (src/terminal/record_chunk.c). */
#include "store/internal.h"
#include "store/rec_common.h"
#include "store/sqlite_rows.h"
#include "store/store_rec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"

int sq_rec_open(struct store *s, const struct store_rec *rec)
{
	sqlite3_stmt *st = store_prepare(
		s, "INSERT INTO recordings (id, session, user, vm, bastion, instance, mode,"
		   " started_at, state, wrapped) VALUES (?,?,?,?,?,?,?,?,?,?)");
	int rc;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, rec->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, rec->session, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, rec->user, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, rec->vm, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, rec->bastion, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, rec->instance, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, rec->mode, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, rec->started_at);
	sqlite3_bind_text(st, 9, rec->state[0] ? rec->state : "recording", -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 10, rec->wrapped, (int)rec->wrapped_len, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return step_rc(rc);
}

struct chunk_args {
	const char *id;
	int64_t seq;
	const struct store_rec_chunk *c;
	size_t n;
	int64_t bytes;
};

static int chunk_tx(struct store *s, void *ud)
{
	const struct chunk_args *a = ud;
	sqlite3_stmt *st = store_prepare(
		s, "INSERT INTO recording_chunks (rec_id, seq, data, tag) VALUES (?,?,?,?)");
	int64_t stored = 0;
	int rc = SQLITE_DONE;

	if (!st)
		return -BERR_STORE;
	/* One statement for the job's chunks, bound anew for each. */
	for (size_t i = 0; i < a->n && rc == SQLITE_DONE; i++) {
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, a->seq + (int64_t)i);
		sqlite3_bind_blob(st, 3, a->c[i].data, (int)a->c[i].len, SQLITE_STATIC);
		sqlite3_bind_blob(st, 4, a->c[i].tag, STORE_REC_TAG_BYTES, SQLITE_STATIC);
		rc = sqlite3_step(st);
		stored += (int64_t)(a->c[i].len + STORE_REC_TAG_BYTES);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return step_rc(rc);
	/* Only while it is being written: a recording a survivor closed as
	 * interrupted (its instance was taken for lost) takes no more. */
	st = store_prepare(s, "UPDATE recordings SET bytes = ?2, stored = stored + ?3,"
			      " chunks = chunks + ?4 WHERE id = ?1 AND state = 'recording'");
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, a->bytes);
	sqlite3_bind_int64(st, 3, stored);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)a->n);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_rc(rc);
	return sqlite3_changes(store_db(s)) == 1 ? 0 : -ESTALE;
}

int sq_rec_chunks_add(struct store *s, const char *id, int64_t seq, const struct store_rec_chunk *c,
		      size_t n, int64_t bytes)
{
	struct chunk_args a = { id, seq, c, n, bytes };

	for (size_t i = 0; i < n; i++)
		if (c[i].len > INT32_MAX)
			return -E2BIG;
	return tx_run(s, chunk_tx, &a);
}

int sq_rec_finish(struct store *s, const char *id, int64_t ended_at, int64_t duration_ms,
		  const char *state, const char *error, const uint8_t *final_tag)
{
	sqlite3_stmt *st = store_prepare(
		s, "UPDATE recordings SET ended_at = ?2, duration_ms = ?3, state = ?4, error = ?5,"
		   " final_tag = ?6 WHERE id = ?1 AND state = 'recording'");
	int rc;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, ended_at);
	sqlite3_bind_int64(st, 3, duration_ms);
	sqlite3_bind_text(st, 4, state, -1, SQLITE_STATIC);
	if (error)
		sqlite3_bind_text(st, 5, error, -1, SQLITE_STATIC);
	if (final_tag)
		sqlite3_bind_blob(st, 6, final_tag, STORE_REC_TAG_BYTES, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_rc(rc);
	return sqlite3_changes(store_db(s)) == 1 ? 0 : -ESTALE;
}

static int interrupt_tx(struct store *s, void *ud)
{
	struct store_rec_interrupt *a = ud;
	sqlite3_stmt *st = store_prepare(
		s, "SELECT id, session, user, vm, bastion, bytes FROM recordings"
		   " WHERE (?1 IS NULL OR instance = ?1) AND state = 'recording' ORDER BY seq");
	char error[STORE_REC_ERROR_SIZE];
	int rc, r = 0;

	if (!st)
		return -BERR_STORE;
	store_rec_interrupt_error(error, sizeof(error), a->instance, a->reason);
	sqlite3_bind_text(st, 1, a->instance, -1, SQLITE_STATIC);
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *t[5];

		for (int i = 0; i < 5; i++)
			t[i] = (const char *)sqlite3_column_text(st, i) ?: "";
		r = store_rec_interrupt_audit(s, sq_audit, t, error, sqlite3_column_int64(st, 5));
		a->n += r == 0;
	}
	sqlite3_finalize(st);
	if (r < 0)
		return r;
	if (rc != SQLITE_DONE)
		return store_rc(rc);
	st = store_prepare(s, "UPDATE recordings SET state = 'interrupted', ended_at = ?2,"
			      " duration_ms = MAX(0, ?2 - started_at) * 1000, error = ?3"
			      " WHERE (?1 IS NULL OR instance = ?1) AND state = 'recording'");
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, a->instance, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, a->now);
	sqlite3_bind_text(st, 3, error, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : store_rc(rc);
}

int sq_rec_interrupt(struct store *s, const char *instance, int64_t now, const char *reason,
		     int *ret_n)
{
	return store_rec_interrupt_run(s, tx_run, interrupt_tx, instance, now, reason, ret_n);
}

#define REC_COLS                                                                     \
	"seq, id, session, user, vm, bastion, instance, mode, started_at, ended_at," \
	" duration_ms, bytes, stored, chunks, state, error, wrapped, final_tag"

static void text_col(sqlite3_stmt *st, int i, char *dst, size_t size)
{
	const char *v = (const char *)sqlite3_column_text(st, i);

	util_strlcpy(dst, v ? v : "", size);
}

/* One row of REC_COLS into rec; -BERR_STORE for a damaged one. */
static int read_row(sqlite3_stmt *st, struct store_rec *rec, int64_t *ret_seq)
{
	int n;

	memset(rec, 0, sizeof(*rec));
	*ret_seq = sqlite3_column_int64(st, 0);
	text_col(st, 1, rec->id, sizeof(rec->id));
	text_col(st, 2, rec->session, sizeof(rec->session));
	text_col(st, 3, rec->user, sizeof(rec->user));
	text_col(st, 4, rec->vm, sizeof(rec->vm));
	text_col(st, 5, rec->bastion, sizeof(rec->bastion));
	text_col(st, 6, rec->instance, sizeof(rec->instance));
	text_col(st, 7, rec->mode, sizeof(rec->mode));
	rec->started_at = sqlite3_column_int64(st, 8);
	rec->ended_at = sqlite3_column_int64(st, 9);
	rec->duration_ms = sqlite3_column_int64(st, 10);
	rec->bytes = sqlite3_column_int64(st, 11);
	rec->stored = sqlite3_column_int64(st, 12);
	rec->chunks = sqlite3_column_int64(st, 13);
	text_col(st, 14, rec->state, sizeof(rec->state));
	text_col(st, 15, rec->error, sizeof(rec->error));
	n = sqlite3_column_bytes(st, 16);
	if (n <= 0 || (size_t)n > sizeof(rec->wrapped))
		return -BERR_STORE;
	memcpy(rec->wrapped, sqlite3_column_blob(st, 16), (size_t)n);
	rec->wrapped_len = (size_t)n;
	n = sqlite3_column_bytes(st, 17);
	if (n == STORE_REC_TAG_BYTES) {
		memcpy(rec->final_tag, sqlite3_column_blob(st, 17), STORE_REC_TAG_BYTES);
		rec->has_final = 1;
	} else if (n != 0) {
		return -BERR_STORE;
	}
	return 0;
}

int sq_rec_get(struct store *s, const char *id, struct store_rec *ret)
{
	sqlite3_stmt *st = store_prepare(s, "SELECT " REC_COLS " FROM recordings WHERE id = ?");
	int64_t seq;
	int rc, r;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = read_row(st, ret, &seq);
	else
		r = rc == SQLITE_DONE ? -ENOENT : store_rc(rc);
	sqlite3_finalize(st);
	return r;
}

int sq_rec_query(struct store *s, const struct store_rec_filter *f,
		 int (*fn)(const struct store_rec *rec, int64_t seq, void *ud), void *ud)
{
	char sql[768];
	const char *texts[3];
	int64_t nums[3];
	int nt = 0, ni = 0, r = 0, rc;
	size_t n;
	sqlite3_stmt *st;
	struct store_rec rec;
	int64_t seq;

	n = (size_t)snprintf(sql, sizeof(sql), "SELECT " REC_COLS " FROM recordings WHERE 1");
#define TFILTER(v, col)                                                                    \
	if (v) {                                                                           \
		texts[nt++] = (v);                                                         \
		n += (size_t)snprintf(sql + n, sizeof(sql) - n, " AND " col " = ?%d", nt); \
	}
	TFILTER(f->user, "user")
	TFILTER(f->vm, "vm")
	TFILTER(f->bastion, "bastion")
#undef TFILTER
#define NFILTER(v, col, op)                                                                \
	if (v) {                                                                           \
		nums[ni++] = (v);                                                          \
		n += (size_t)snprintf(sql + n, sizeof(sql) - n, " AND " col " " op " ?%d", \
				      3 + ni);                                             \
	}
	NFILTER(f->since, "started_at", ">=")
	NFILTER(f->until, "started_at", "<")
	NFILTER(f->before_seq, "seq", "<")
#undef NFILTER
	n += (size_t)snprintf(sql + n, sizeof(sql) - n, " ORDER BY seq DESC");
	if (f->limit > 0)
		snprintf(sql + n, sizeof(sql) - n, " LIMIT %d", f->limit);
	if (!(st = store_prepare(s, sql)))
		return -BERR_STORE;
	for (int i = 0; i < nt; i++)
		sqlite3_bind_text(st, i + 1, texts[i], -1, SQLITE_STATIC);
	for (int i = 0; i < ni; i++)
		sqlite3_bind_int64(st, 4 + i, nums[i]);
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((r = read_row(st, &rec, &seq)) == 0)
			r = fn(&rec, seq, ud);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_rc(rc);
	sqlite3_finalize(st);
	return r;
}

int sq_rec_chunk_get(struct store *s, const char *id, int64_t seq, uint8_t **ret, size_t *ret_len,
		     uint8_t ret_tag[STORE_REC_TAG_BYTES])
{
	sqlite3_stmt *st = store_prepare(
		s, "SELECT data, tag FROM recording_chunks WHERE rec_id = ? AND seq = ?");
	int rc, r = 0, n;
	uint8_t *p;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, seq);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		r = rc == SQLITE_DONE ? -ENOENT : store_rc(rc);
		goto out;
	}
	n = sqlite3_column_bytes(st, 0);
	if (n < 0 || sqlite3_column_bytes(st, 1) != STORE_REC_TAG_BYTES) {
		r = -BERR_STORE;
		goto out;
	}
	if (!(p = malloc(n ? (size_t)n : 1))) {
		r = -ENOMEM;
		goto out;
	}
	if (n)
		memcpy(p, sqlite3_column_blob(st, 0), (size_t)n);
	memcpy(ret_tag, sqlite3_column_blob(st, 1), STORE_REC_TAG_BYTES);
	*ret = p;
	*ret_len = (size_t)n;
out:
	sqlite3_finalize(st);
	return r;
}

struct prune_args {
	int64_t before;
	int limit, n;
};

static int prune_tx(struct store *s, void *ud)
{
	struct prune_args *a = ud;
	sqlite3_stmt *st = store_prepare(
		s, "DELETE FROM recordings WHERE seq IN (SELECT seq FROM recordings"
		   " WHERE ended_at IS NOT NULL AND ended_at < ? ORDER BY ended_at LIMIT ?)");
	int rc;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 1, a->before);
	sqlite3_bind_int(st, 2, a->limit);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_rc(rc);
	a->n = sqlite3_changes(store_db(s));
	return 0;
}

int sq_rec_prune(struct store *s, int64_t before, int limit, int *ret_n)
{
	struct prune_args a = { before, limit, 0 };
	int r = tx_run(s, prune_tx, &a);

	if (r == 0)
		*ret_n = a.n;
	return r;
}

int sq_rec_key_foreach(struct store *s,
		       int (*fn)(const char *id, const uint8_t *w, size_t len, void *ud), void *ud)
{
	sqlite3_stmt *st = store_prepare(s, "SELECT id, wrapped FROM recordings ORDER BY seq");
	int rc, r = 0;

	if (!st)
		return -BERR_STORE;
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 0);
		int n = sqlite3_column_bytes(st, 1);

		if (!id || n <= 0)
			r = -BERR_STORE;
		else
			r = fn(id, sqlite3_column_blob(st, 1), (size_t)n, ud);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_rc(rc);
	sqlite3_finalize(st);
	return r;
}

int sq_rec_key_update(struct store *s, const char *id, const uint8_t *w, size_t len)
{
	sqlite3_stmt *st = store_prepare(s, "UPDATE recordings SET wrapped = ?2 WHERE id = ?1");
	int rc;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, w, (int)len, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_rc(rc);
	return sqlite3_changes(store_db(s)) == 1 ? 0 : -ENOENT;
}
