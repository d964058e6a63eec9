/* PostgreSQL backend for store_rec.h: tables recordings and
 * recording_chunks, as sqlite_rec.c. Every instance on the database reads
 * every recording: no shared directory is needed. Binary columns travel as
 * bytea hex text ("\x..."). */
#include "store/pg_internal.h"
#include "store/rec_common.h"
#include "store/store_rec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"

/* "\x" and the hex of len bytes: malloc'd, NULL when out of memory. */
static char *hex_of(const uint8_t *p, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	char *s = malloc(2 + 2 * len + 1);

	if (!s)
		return NULL;
	s[0] = '\\';
	s[1] = 'x';
	for (size_t i = 0; i < len; i++) {
		s[2 + 2 * i] = hex[p[i] >> 4];
		s[3 + 2 * i] = hex[p[i] & 15];
	}
	s[2 + 2 * len] = '\0';
	return s;
}

/* A bytea column's value: malloc'd bytes, NULL for SQL NULL or no memory
 * (*ret_err says which). */
static uint8_t *bytes_of(const PGresult *res, int row, int col, size_t *ret_len, int *ret_err)
{
	const char *v = pg_val(res, row, col);
	unsigned char *u, *copy;
	size_t n = 0;

	*ret_err = 0;
	if (!v)
		return NULL;
	if (!(u = PQunescapeBytea((const unsigned char *)v, &n))) {
		*ret_err = -ENOMEM;
		return NULL;
	}
	copy = malloc(n ? n : 1);
	if (copy && n)
		memcpy(copy, u, n);
	PQfreemem(u);
	if (!copy)
		*ret_err = -ENOMEM;
	*ret_len = n;
	return copy;
}

int pg_rec_open(struct store *s, const struct store_rec *rec)
{
	struct pg_num started;
	char *wrapped = hex_of(rec->wrapped, rec->wrapped_len);
	const char *p[] = { rec->id,
			    rec->session,
			    rec->user,
			    rec->vm,
			    rec->bastion,
			    rec->instance,
			    rec->mode,
			    pg_num(&started, rec->started_at),
			    rec->state[0] ? rec->state : "recording",
			    wrapped };
	int r;

	if (!wrapped)
		return -ENOMEM;
	r = pg_q(s, NULL,
		 "INSERT INTO recordings (id, session, \"user\", vm, bastion, instance, mode,"
		 " started_at, state, wrapped) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)",
		 10, p);
	free(wrapped);
	return r;
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
	struct pg_num seq, bytes, stored, n;
	int64_t sum = 0;
	PGresult *res = NULL;
	int r = 0;

	for (size_t i = 0; i < a->n && r == 0; i++) {
		char *data = hex_of(a->c[i].data, a->c[i].len),
		     *tag = hex_of(a->c[i].tag, STORE_REC_TAG_BYTES);
		const char *p[] = { a->id, pg_num(&seq, a->seq + (int64_t)i), data, tag };

		r = data && tag ? pg_q(s, NULL,
				       "INSERT INTO recording_chunks (rec_id, seq, data, tag)"
				       " VALUES ($1,$2,$3,$4)",
				       4, p)
				: -ENOMEM;
		sum += (int64_t)(a->c[i].len + STORE_REC_TAG_BYTES);
		free(data);
		free(tag);
	}
	if (r < 0)
		return r;
	{
		const char *p[] = { a->id, pg_num(&bytes, a->bytes), pg_num(&stored, sum),
				    pg_num(&n, (int64_t)a->n) };

		r = pg_q(s, &res,
			 "UPDATE recordings SET bytes = $2, stored = stored + $3,"
			 " chunks = chunks + $4 WHERE id = $1 AND state = 'recording'",
			 4, p);
	}
	/* Closed as interrupted by a survivor (or gone): takes no more. */
	if (r == 0 && pg_changes(res) != 1)
		r = -ESTALE;
	PQclear(res);
	return r;
}

int pg_rec_chunks_add(struct store *s, const char *id, int64_t seq, const struct store_rec_chunk *c,
		      size_t n, int64_t bytes)
{
	struct chunk_args a = { id, seq, c, n, bytes };

	return pg_tx(s, chunk_tx, &a);
}

int pg_rec_finish(struct store *s, const char *id, int64_t ended_at, int64_t duration_ms,
		  const char *state, const char *error, const uint8_t *final_tag)
{
	struct pg_num ended, dur;
	char *tag = final_tag ? hex_of(final_tag, STORE_REC_TAG_BYTES) : NULL;
	const char *p[] = { id, pg_num(&ended, ended_at), pg_num(&dur, duration_ms), state, error,
			    tag };
	PGresult *res = NULL;
	int r;

	if (final_tag && !tag)
		return -ENOMEM;
	r = pg_q(s, &res,
		 "UPDATE recordings SET ended_at = $2, duration_ms = $3, state = $4, error = $5,"
		 " final_tag = $6 WHERE id = $1 AND state = 'recording'",
		 6, p);
	if (r == 0 && pg_changes(res) != 1)
		r = -ESTALE;
	PQclear(res);
	free(tag);
	return r;
}

static int interrupt_tx(struct store *s, void *ud)
{
	struct store_rec_interrupt *a = ud;
	char error[STORE_REC_ERROR_SIZE];
	struct pg_num now;
	const char *p[] = { a->instance, pg_num(&now, a->now), error };
	PGresult *res = NULL;
	int r;

	store_rec_interrupt_error(error, sizeof(error), a->instance, a->reason);
	r = pg_q(s, &res,
		 "UPDATE recordings SET state = 'interrupted', ended_at = $2,"
		 " duration_ms = GREATEST(0, $2::bigint - started_at) * 1000, error = $3"
		 " WHERE ($1::text IS NULL OR instance = $1) AND state = 'recording'"
		 " RETURNING id, session, \"user\", vm, bastion, bytes",
		 3, p);
	for (int i = 0; r == 0 && i < PQntuples(res); i++) {
		const char *t[5];

		for (int c = 0; c < 5; c++)
			t[c] = pg_val(res, i, c) ?: "";
		r = store_rec_interrupt_audit(s, pg_audit, t, error, pg_i64(res, i, 5));
		a->n += r == 0;
	}
	PQclear(res);
	return r;
}

int pg_rec_interrupt(struct store *s, const char *instance, int64_t now, const char *reason,
		     int *ret_n)
{
	return store_rec_interrupt_run(s, pg_tx, interrupt_tx, instance, now, reason, ret_n);
}

#define REC_COLS                                                                             \
	"seq, id, session, \"user\", vm, bastion, instance, mode, started_at,"               \
	" COALESCE(ended_at, 0), duration_ms, bytes, stored, chunks, state, error, wrapped," \
	" final_tag"

static void text_col(const PGresult *res, int row, int col, char *dst, size_t size)
{
	const char *v = pg_val(res, row, col);

	util_strlcpy(dst, v ? v : "", size);
}

static int read_row(const PGresult *res, int row, struct store_rec *rec, int64_t *ret_seq)
{
	uint8_t *b;
	size_t n = 0;
	int err;

	memset(rec, 0, sizeof(*rec));
	*ret_seq = pg_i64(res, row, 0);
	text_col(res, row, 1, rec->id, sizeof(rec->id));
	text_col(res, row, 2, rec->session, sizeof(rec->session));
	text_col(res, row, 3, rec->user, sizeof(rec->user));
	text_col(res, row, 4, rec->vm, sizeof(rec->vm));
	text_col(res, row, 5, rec->bastion, sizeof(rec->bastion));
	text_col(res, row, 6, rec->instance, sizeof(rec->instance));
	text_col(res, row, 7, rec->mode, sizeof(rec->mode));
	rec->started_at = pg_i64(res, row, 8);
	rec->ended_at = pg_i64(res, row, 9);
	rec->duration_ms = pg_i64(res, row, 10);
	rec->bytes = pg_i64(res, row, 11);
	rec->stored = pg_i64(res, row, 12);
	rec->chunks = pg_i64(res, row, 13);
	text_col(res, row, 14, rec->state, sizeof(rec->state));
	text_col(res, row, 15, rec->error, sizeof(rec->error));
	b = bytes_of(res, row, 16, &n, &err);
	if (!b || n == 0 || n > sizeof(rec->wrapped)) {
		free(b);
		return err ? err : -BERR_STORE;
	}
	memcpy(rec->wrapped, b, n);
	rec->wrapped_len = n;
	free(b);
	b = bytes_of(res, row, 17, &n, &err);
	if (err)
		return err;
	if (b && n == STORE_REC_TAG_BYTES) {
		memcpy(rec->final_tag, b, n);
		rec->has_final = 1;
	} else if (b) {
		free(b);
		return -BERR_STORE;
	}
	free(b);
	return 0;
}

int pg_rec_get(struct store *s, const char *id, struct store_rec *ret)
{
	const char *p[] = { id };
	PGresult *res = NULL;
	int64_t seq;
	int r = pg_row(s, &res, "SELECT " REC_COLS " FROM recordings WHERE id = $1", 1, p);

	if (r == 0)
		r = read_row(res, 0, ret, &seq);
	PQclear(res);
	return r;
}

int pg_rec_query(struct store *s, const struct store_rec_filter *f,
		 int (*fn)(const struct store_rec *rec, int64_t seq, void *ud), void *ud)
{
	char sql[768];
	const char *p[6];
	struct pg_num nums[3];
	PGresult *res = NULL;
	struct store_rec rec;
	int64_t seq;
	size_t n;
	int i = 0, r;

	n = (size_t)snprintf(sql, sizeof(sql), "SELECT " REC_COLS " FROM recordings WHERE true");
#define FILTER(cond, col, op, val)                                                             \
	if (cond) {                                                                            \
		p[i] = (val);                                                                  \
		i++;                                                                           \
		n += (size_t)snprintf(sql + n, sizeof(sql) - n, " AND " col " " op " $%d", i); \
	}
	FILTER(f->user, "\"user\"", "=", f->user)
	FILTER(f->vm, "vm", "=", f->vm)
	FILTER(f->bastion, "bastion", "=", f->bastion)
	FILTER(f->since, "started_at", ">=", pg_num(&nums[0], f->since))
	FILTER(f->until, "started_at", "<", pg_num(&nums[1], f->until))
	FILTER(f->before_seq, "seq", "<", pg_num(&nums[2], f->before_seq))
#undef FILTER
	n += (size_t)snprintf(sql + n, sizeof(sql) - n, " ORDER BY seq DESC");
	if (f->limit > 0)
		snprintf(sql + n, sizeof(sql) - n, " LIMIT %d", f->limit);
	if ((r = pg_q(s, &res, sql, i, p)) < 0)
		return r;
	for (int row = 0; row < PQntuples(res) && r == 0; row++)
		if ((r = read_row(res, row, &rec, &seq)) == 0)
			r = fn(&rec, seq, ud);
	PQclear(res);
	return r;
}

int pg_rec_chunk_get(struct store *s, const char *id, int64_t seq, uint8_t **ret, size_t *ret_len,
		     uint8_t ret_tag[STORE_REC_TAG_BYTES])
{
	struct pg_num sq;
	const char *p[] = { id, pg_num(&sq, seq) };
	PGresult *res = NULL;
	uint8_t *data = NULL, *tag = NULL;
	size_t n = 0, tn = 0;
	int err, r;

	r = pg_row(s, &res, "SELECT data, tag FROM recording_chunks WHERE rec_id = $1 AND seq = $2",
		   2, p);
	if (r < 0)
		goto out;
	data = bytes_of(res, 0, 0, &n, &err);
	if (!data) {
		r = err ? err : -BERR_STORE;
		goto out;
	}
	tag = bytes_of(res, 0, 1, &tn, &err);
	if (!tag || tn != STORE_REC_TAG_BYTES) {
		r = err ? err : -BERR_STORE;
		goto out;
	}
	memcpy(ret_tag, tag, STORE_REC_TAG_BYTES);
	*ret = data;
	*ret_len = n;
	data = NULL;
out:
	free(data);
	free(tag);
	PQclear(res);
	return r;
}

int pg_rec_prune(struct store *s, int64_t before, int limit, int *ret_n)
{
	struct pg_num b, l;
	const char *p[] = { pg_num(&b, before), pg_num(&l, limit) };
	PGresult *res = NULL;
	int r = pg_q(s, &res,
		     "DELETE FROM recordings WHERE seq IN (SELECT seq FROM recordings"
		     " WHERE ended_at IS NOT NULL AND ended_at < $1 ORDER BY ended_at LIMIT $2)",
		     2, p);

	if (r == 0)
		*ret_n = pg_changes(res);
	PQclear(res);
	return r;
}

int pg_rec_key_foreach(struct store *s,
		       int (*fn)(const char *id, const uint8_t *w, size_t len, void *ud), void *ud)
{
	PGresult *res = NULL;
	int r = pg_q(s, &res, "SELECT id, wrapped FROM recordings ORDER BY seq", 0, NULL);

	for (int row = 0; r == 0 && row < PQntuples(res); row++) {
		size_t n = 0;
		int err;
		uint8_t *w = bytes_of(res, row, 1, &n, &err);

		r = w && n ? fn(pg_val(res, row, 0), w, n, ud) : err ? err : -BERR_STORE;
		free(w);
	}
	PQclear(res);
	return r;
}

int pg_rec_key_update(struct store *s, const char *id, const uint8_t *w, size_t len)
{
	char *hex = hex_of(w, len);
	const char *p[] = { id, hex };
	PGresult *res = NULL;
	int r;

	if (!hex)
		return -ENOMEM;
	r = pg_q(s, &res, "UPDATE recordings SET wrapped = $2 WHERE id = $1", 2, p);
	if (r == 0 && pg_changes(res) != 1)
		r = -ENOENT;
	PQclear(res);
	free(hex);
	return r;
}
