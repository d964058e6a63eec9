/* The recording tests' shared reader and writer helpers (rectest.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "rectest.h"

#include "core/buf.h"
#include "core/err.h"
#include "store/store_rec.h"
#include "terminal/record.h"
#include "testutil.h"

const uint8_t rectest_key[REC_KEY_BYTES] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };

int rectest_collect(const char *text, size_t len, void *ud)
{
	return buf_append(ud, text, len);
}

int rectest_read(struct store *s, const char *id, const uint8_t *k, struct buf *out)
{
	struct store_rec rec;
	const char *why = NULL;
	int r;

	assert_int_equal(store_rec_get(s, id, &rec), 0);
	r = rec_read(s, &rec, k, rectest_collect, out, &why);
	if (r == -BERR_INTEGRITY)
		assert_non_null(why);
	return r;
}

void rectest_open(struct rectest_rec *t, struct store *s, const char *id, int64_t max)
{
	memset(t, 0, sizeof(*t));
	rec_writer_init(&t->w, s, rectest_key, max);
	snprintf(t->w.row.id, sizeof(t->w.row.id), "%s", id);
	snprintf(t->w.row.session, sizeof(t->w.row.session), "s-%s", id);
	snprintf(t->w.row.user, sizeof(t->w.row.user), "alice");
	snprintf(t->w.row.vm, sizeof(t->w.row.vm), "/groups/g/vms/v");
	snprintf(t->w.row.bastion, sizeof(t->w.row.bastion), "/groups/g/bastions/b");
	snprintf(t->w.row.instance, sizeof(t->w.row.instance), "test");
	snprintf(t->w.row.mode, sizeof(t->w.row.mode), "input_output");
	t->w.row.started_at = 1000;
	t->w.row.wrapped_len = 41;
	rec_pack_init(&t->pk, t->w.max_bytes, 80, 24, t->w.row.started_at);
}

void rectest_ev(struct rectest_rec *t, char type, uint64_t ms, const void *data, size_t len)
{
	assert_int_equal(rec_pack_event(&t->pk, type, ms, data, len), 0);
}

void rectest_run(struct rectest_rec *t, const struct rec_gap *g, bool final, int64_t duration_ms)
{
	if (g && g->in)
		rec_pack_drop(&t->pk, 'i', g->ms, g->in, g->why);
	if (g && g->out)
		rec_pack_drop(&t->pk, 'o', g->ms, g->out, g->why);
	rec_pack_take(&t->pk, &t->job);
	rec_writer_run(&t->w, &t->job, final, duration_ms);
}

void rectest_close(struct rectest_rec *t)
{
	rec_writer_free(&t->w);
	rec_pack_free(&t->pk);
	free(t->job.buf);
}

/* The cast of id, its events of type into data (concatenated) and the "m"
 * markers' texts into marks (one per line). */
void rectest_cast_of(struct store *s, const char *id, char type, struct buf *data,
		     struct buf *marks)
{
	struct buf out;
	size_t lines = 0;

	buf_init(&out, 64 << 20);
	assert_int_equal(rectest_read(s, id, rectest_key, &out), 0);
	for (const char *p = buf_str(&out); *p; lines++) {
		const char *nl = strchr(p, '\n');
		json_t *v = json_loadb(p, (size_t)(nl - p), JSON_ALLOW_NUL, NULL);

		assert_non_null(v);
		if (lines > 0) {
			const char *t = json_string_value(json_array_get(v, 1));
			json_t *d = json_array_get(v, 2);

			if (t[0] == type && data)
				assert_int_equal(buf_append(data, json_string_value(d),
							    json_string_length(d)),
						 0);
			if (t[0] == 'm' && marks) {
				assert_int_equal(buf_append(marks, json_string_value(d),
							    json_string_length(d)),
						 0);
				assert_int_equal(buf_append(marks, "\n", 1), 0);
			}
		}
		json_decref(v);
		p = nl + 1;
	}
	assert_true(lines > 0);
	buf_free(&out);
}

/* Replaces chunk seq of id, as one who writes to the database directly
 * (the store takes chunks only while a recording is being written). */
void rectest_put_chunk(struct store *s, const char *id, int64_t seq, const uint8_t *data,
		       size_t len, const uint8_t *tag)
{
	char sql[128];

	assert_int_equal(tu_query_int(s,
				      "UPDATE recordings SET state = 'recording' WHERE id = ?"
				      " RETURNING 1",
				      id),
			 1);
	snprintf(sql, sizeof(sql),
		 "DELETE FROM recording_chunks WHERE rec_id = ? AND seq = %lld RETURNING 1",
		 (long long)seq);
	assert_int_equal(tu_query_int(s, sql, id), 1);
	assert_int_equal(store_rec_chunk_add(s, id, seq, data, len, tag, 0), 0);
	assert_int_equal(tu_query_int(s,
				      "UPDATE recordings SET state = 'complete' WHERE id = ?"
				      " RETURNING 1",
				      id),
			 1);
}
