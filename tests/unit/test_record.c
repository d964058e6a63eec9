/* Session recordings (terminal/record.h, store_rec.h): the asciicast
 * lines, the seal (a flipped byte, a dropped, swapped or trailing chunk,
 * another key: each detected), search in what was shown, the store's rows
 * and retention. Runs on both store backends. The recordings here are
 * made of chunks of asciicast text, as they were stored before raw
 * events: the reader still reads them (the writer's own, raw, are in
 * test_record_write.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "core/buf.h"
#include "core/err.h"
#include "store/store.h"
#include "store/store_ops.h"
#include "store/store_rec.h"
#include "terminal/record.h"
#include "terminal/term.h"
#include "rectest.h"
#include "testutil.h"

/* ---------- asciicast ---------- */

/* Parses the one line in b as [t, type, data]: data's bytes into out. */
static void event_of(const struct buf *b, double *t, char *type, char *out, size_t size)
{
	json_error_t e;
	json_t *v;

	assert_true(b->len > 0 && b->data[b->len - 1] == '\n');
	assert_null(memchr(b->data, '\n', b->len - 1)); /* one line */
	v = json_loadb(b->data, b->len, JSON_ALLOW_NUL, &e);
	assert_non_null(v);
	assert_true(json_is_array(v) && json_array_size(v) == 3);
	*t = json_number_value(json_array_get(v, 0));
	*type = json_string_value(json_array_get(v, 1))[0];
	assert_true(json_string_length(json_array_get(v, 2)) < size);
	memcpy(out, json_string_value(json_array_get(v, 2)),
	       json_string_length(json_array_get(v, 2)) + 1);
	json_decref(v);
}

static void test_cast_header(void **state)
{
	struct buf b;
	json_t *h;

	buf_init(&b, 4096);
	assert_int_equal(rec_cast_header(&b, 120, 40, 1700000000, "xterm-256color"), 0);
	h = json_loads(buf_str(&b), 0, NULL);
	assert_non_null(h);
	assert_int_equal(json_integer_value(json_object_get(h, "version")), 2);
	assert_int_equal(json_integer_value(json_object_get(h, "width")), 120);
	assert_int_equal(json_integer_value(json_object_get(h, "height")), 40);
	assert_int_equal(json_integer_value(json_object_get(h, "timestamp")), 1700000000);
	assert_string_equal(json_string_value(json_object_get(json_object_get(h, "env"), "TERM")),
			    "xterm-256color");
	json_decref(h);
	buf_free(&b);
}

static void test_cast_event_escapes(void **state)
{
	/* Every byte value from 0 to 127, quotes and backslashes included,
	 * comes back as it went in. */
	uint8_t all[128];
	char out[512], type;
	struct buf b;
	uint8_t carry[4];
	size_t nc = 0;
	double t;

	for (int i = 0; i < 128; i++)
		all[i] = (uint8_t)i;
	buf_init(&b, 1 << 16);
	assert_int_equal(rec_cast_event(&b, 1.5, 'o', all + 1, 127, carry, &nc), 0);
	event_of(&b, &t, &type, out, sizeof(out));
	assert_true(t > 1.49 && t < 1.51);
	assert_int_equal(type, 'o');
	assert_memory_equal(out, all + 1, 127);
	assert_int_equal(nc, 0);
	buf_free(&b);
}

/* Runs of plain bytes are scanned 8 at a time: every byte value at every
 * place of a word (and of the tail after the last whole word) is still
 * escaped, or replaced when it is not UTF-8. */
static void test_cast_event_every_place(void **state)
{
	for (int c = 0; c < 256; c++) {
		for (size_t at = 0; at < 19; at++) {
			uint8_t in[19];
			char out[64], want[64], type;
			struct buf b;
			uint8_t carry[4];
			size_t nc = 0;
			double t;

			memset(in, 'a', sizeof(in));
			in[at] = (uint8_t)c;
			memcpy(want, in, sizeof(in));
			want[sizeof(in)] = '\0';
			if (c >= 0x80) { /* alone it is not UTF-8: U+FFFD */
				memcpy(want + at, "\xef\xbf\xbd", 3);
				memset(want + at + 3, 'a', sizeof(in) - at - 1);
				want[sizeof(in) + 2] = '\0';
			}
			buf_init(&b, 1 << 16);
			/* The last byte alone may be the start of a cut sequence:
			 * a run ends with plain bytes so it never is. */
			assert_int_equal(rec_cast_event(&b, 1, 'o', in, sizeof(in),
							at < 18 ? carry : NULL, &nc),
					 0);
			event_of(&b, &t, &type, out, sizeof(out));
			assert_memory_equal(out, want, sizeof(in) + (c >= 0x80 ? 2 : 0) + 1);
			buf_free(&b);
		}
	}
}

static void test_cast_event_utf8(void **state)
{
	/* "é€😀" cut at every position between two reads joins up again; a
	 * byte that is not UTF-8 becomes U+FFFD. */
	static const uint8_t text[] = "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
	size_t n = sizeof(text) - 1;
	char out[64], type;
	double t;

	for (size_t cut = 0; cut <= n; cut++) {
		struct buf a, b2;
		uint8_t carry[4];
		size_t nc = 0;
		char joined[64];

		buf_init(&a, 4096);
		buf_init(&b2, 4096);
		assert_int_equal(rec_cast_event(&a, 0, 'o', text, cut, carry, &nc), 0);
		assert_int_equal(rec_cast_event(&b2, 0, 'o', text + cut, n - cut, carry, &nc), 0);
		assert_int_equal(nc, 0);
		event_of(&a, &t, &type, out, sizeof(out));
		snprintf(joined, sizeof(joined), "%s", out);
		event_of(&b2, &t, &type, out, sizeof(out));
		snprintf(joined + strlen(joined), sizeof(joined) - strlen(joined), "%s", out);
		assert_string_equal(joined, (const char *)text);
		buf_free(&a);
		buf_free(&b2);
	}
	{
		struct buf b;
		uint8_t carry[4];
		size_t nc = 0;
		static const uint8_t bad[] = "a\xff"
					     "b\xc3(c\xed\xa0\x80";

		buf_init(&b, 4096);
		assert_int_equal(rec_cast_event(&b, 0, 'o', bad, sizeof(bad) - 1, carry, &nc), 0);
		event_of(&b, &t, &type, out, sizeof(out));
		assert_string_equal(out, "a\xef\xbf\xbd"
					 "b\xef\xbf\xbd(c\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
		buf_free(&b);
	}
}

/* ---------- sealing, on the store ---------- */

static const uint8_t key[REC_KEY_BYTES] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };

/* A recording of n chunks, chunk i holding the event "chunk i\r\n" at time
 * i (the header before chunk 0's), ended with its final tag. */
/* How write_rec compresses chunk i: 0 as the writer does now (zstd), 1
 * zlib (how chunks were written before zstd), 2 both in turn (a recording
 * made across an upgrade cannot happen, but the reader must not care). */
static int write_codec;

static int codec_of(int i)
{
	if (write_codec == 2)
		return i % 2 ? REC_CODEC_ZSTD : REC_CODEC_ZLIB;
	return write_codec == 1 ? REC_CODEC_ZLIB : REC_CODEC_ZSTD;
}

static void write_rec(struct store *s, const char *id, const char *bastion, int n, int64_t ended)
{
	struct store_rec rec = { 0 };
	uint8_t prev[STORE_REC_TAG_BYTES], tag[STORE_REC_TAG_BYTES], fin[STORE_REC_TAG_BYTES];
	int64_t bytes = 0;

	snprintf(rec.id, sizeof(rec.id), "%s", id);
	snprintf(rec.session, sizeof(rec.session), "s-%s", id);
	snprintf(rec.user, sizeof(rec.user), "alice");
	snprintf(rec.vm, sizeof(rec.vm), "/groups/g/vms/v");
	snprintf(rec.bastion, sizeof(rec.bastion), "%s", bastion);
	snprintf(rec.instance, sizeof(rec.instance), "test");
	snprintf(rec.mode, sizeof(rec.mode), "output");
	rec.started_at = ended ? ended - 10 : 1000;
	rec.wrapped_len = 41;
	assert_int_equal(store_rec_open(s, &rec), 0);
	for (int i = 0; i < n; i++) {
		struct buf b;
		char line[32];
		uint8_t *z;
		size_t zlen;
		uint8_t carry[4];
		size_t nc = 0;

		buf_init(&b, 1 << 20);
		if (i == 0)
			assert_int_equal(rec_cast_header(&b, 80, 24, rec.started_at, NULL), 0);
		snprintf(line, sizeof(line), "chunk %d\r\n", i);
		assert_int_equal(
			rec_cast_event(&b, i, 'o', (const uint8_t *)line, strlen(line), carry, &nc),
			0);
		assert_int_equal(rec_seal_chunk_codec(key, id, i, i ? prev : NULL,
						      (const uint8_t *)buf_str(&b), b.len,
						      codec_of(i), &z, &zlen, tag),
				 0);
		bytes += (int64_t)b.len;
		assert_int_equal(store_rec_chunk_add(s, id, i, z, zlen, tag, bytes), 0);
		memcpy(prev, tag, sizeof(tag));
		free(z);
		buf_free(&b);
	}
	if (ended) {
		rec_final_tag(key, id, n, n ? prev : NULL, fin);
		assert_int_equal(store_rec_finish(s, id, ended, 10000, "complete", NULL, fin), 0);
	}
}

static void test_seal_roundtrip(void **state)
{
	struct tu_store *f = *state;
	struct buf out;
	struct store_rec rec;
	size_t lines = 0;

	write_rec(f->s, "r-ok", "/groups/g/bastions/b", 5, 5000);
	buf_init(&out, 1 << 20);
	assert_int_equal(rectest_read(f->s, "r-ok", key, &out), 0);
	/* Every line is JSON; the header first, then chunk 0..4 in order. */
	for (const char *p = buf_str(&out); *p; lines++) {
		const char *nl = strchr(p, '\n');
		json_t *v = json_loadb(p, (size_t)(nl - p), 0, NULL);

		assert_non_null(v);
		if (lines == 0) {
			assert_true(json_is_object(v));
		} else {
			char want[32];

			snprintf(want, sizeof(want), "chunk %zu\r\n", lines - 1);
			assert_string_equal(json_string_value(json_array_get(v, 2)), want);
		}
		json_decref(v);
		p = nl + 1;
	}
	assert_int_equal(lines, 6);
	assert_int_equal(store_rec_get(f->s, "r-ok", &rec), 0);
	assert_int_equal(rec.chunks, 5);
	assert_int_equal(rec.bytes, (int64_t)out.len);
	assert_true(rec.has_final);
	assert_string_equal(rec.state, "complete");
	assert_int_equal(rec.ended_at, 5000);
	buf_free(&out);
}

/* Replaces chunk seq of id with data, through raw SQL then the store. */
static void replace_chunk(struct store *s, const char *id, int64_t seq, const uint8_t *data,
			  size_t len, const uint8_t *tag)
{
	char sql[128];

	snprintf(sql, sizeof(sql),
		 "DELETE FROM recording_chunks WHERE rec_id = ? AND seq = %lld RETURNING 1",
		 (long long)seq);
	assert_int_equal(tu_query_int(s, sql, id), 1);
	if (data) {
		/* The store takes chunks only while recording: as one who
		 * writes to the database directly, set it back meanwhile. */
		struct store_rec rec;

		assert_int_equal(store_rec_get(s, id, &rec), 0);
		snprintf(sql, sizeof(sql),
			 "UPDATE recordings SET state = 'recording' WHERE id = ? RETURNING 1");
		assert_int_equal(tu_query_int(s, sql, id), 1);
		assert_int_equal(store_rec_chunk_add(s, id, seq, data, len, tag, 0), 0);
		snprintf(sql, sizeof(sql),
			 "UPDATE recordings SET state = '%s' WHERE id = ? RETURNING 1", rec.state);
		assert_int_equal(tu_query_int(s, sql, id), 1);
	}
}

static void test_seal_flipped_byte(void **state)
{
	struct tu_store *f = *state;

	/* A flipped bit anywhere in any chunk, or in its tag, fails the read,
	 * with either codec. */
	for (int seq = 0; seq < 6; seq++) {
		for (int where = 0; where < 3; where++) {
			char id[32];
			uint8_t *d, tag[STORE_REC_TAG_BYTES];
			size_t len;
			struct buf out;

			write_codec = seq / 3;
			snprintf(id, sizeof(id), "r-flip-%d-%d", seq, where);
			write_rec(f->s, id, "/groups/g/bastions/b", 3, 5000);
			assert_int_equal(store_rec_chunk_get(f->s, id, seq % 3, &d, &len, tag), 0);
			if (where == 2)
				tag[7] ^= 0x10;
			else
				d[where ? len - 1 : 0] ^= 0x01;
			replace_chunk(f->s, id, seq % 3, d, len, tag);
			free(d);
			buf_init(&out, 1 << 20);
			assert_int_equal(rectest_read(f->s, id, key, &out), -BERR_INTEGRITY);
			buf_free(&out);
		}
	}
	write_codec = 0;
}

/* New chunks are zstd frames; chunks written with zlib (before zstd) read
 * as they did, alone or mixed with zstd ones. */
static void test_seal_codecs(void **state)
{
	struct tu_store *f = *state;
	static const uint8_t zstd_magic[4] = { 0x28, 0xb5, 0x2f, 0xfd };

	for (write_codec = 0; write_codec < 3; write_codec++) {
		char id[32], want[32];
		uint8_t *d, tag[STORE_REC_TAG_BYTES];
		size_t len, lines = 0;
		struct buf out;

		snprintf(id, sizeof(id), "r-codec-%d", write_codec);
		write_rec(f->s, id, "/groups/g/bastions/b", 4, 5000);
		for (int seq = 0; seq < 4; seq++) {
			assert_int_equal(store_rec_chunk_get(f->s, id, seq, &d, &len, tag), 0);
			assert_true(len >= 4);
			if (codec_of(seq) == REC_CODEC_ZSTD)
				assert_memory_equal(d, zstd_magic, 4);
			else
				assert_int_equal(d[0], 0x78); /* zlib, 32 KiB window */
			free(d);
		}
		buf_init(&out, 1 << 20);
		assert_int_equal(rectest_read(f->s, id, key, &out), 0);
		for (const char *p = strchr(buf_str(&out), '\n') + 1; *p; lines++) {
			const char *nl = strchr(p, '\n');
			json_t *v = json_loadb(p, (size_t)(nl - p), 0, NULL);

			snprintf(want, sizeof(want), "chunk %zu\r\n", lines);
			assert_string_equal(json_string_value(json_array_get(v, 2)), want);
			json_decref(v);
			p = nl + 1;
		}
		assert_int_equal(lines, 4);
		buf_free(&out);
	}
	write_codec = 0;
}

/* A zstd frame cut short, or followed by other bytes, fails even with a
 * tag that matches (the writer never makes one: only a key holder can). */
static void test_open_bad_frame(void **state)
{
	const char *text = "[0.5, \"o\", \"hello\"]\n";
	uint8_t *z, tag[STORE_REC_TAG_BYTES], *longer;
	size_t zlen;
	struct buf out;

	(void)state;
	assert_int_equal(rec_seal_chunk_codec(key, "r", 0, NULL, (const uint8_t *)text,
					      strlen(text), REC_CODEC_ZSTD, &z, &zlen, tag),
			 0);
	buf_init(&out, 1 << 20);
	assert_int_equal(rec_open_chunk(key, "r", 0, NULL, z, zlen, tag, &out), 0);
	assert_int_equal(out.len, strlen(text));
	buf_reset(&out);
	for (size_t cut = 4; cut < zlen; cut++) {
		rec_chunk_tag(key, "r", 0, NULL, z, cut, tag);
		assert_int_equal(rec_open_chunk(key, "r", 0, NULL, z, cut, tag, &out),
				 -BERR_INTEGRITY);
		assert_int_equal(out.len, 0);
	}
	longer = malloc(zlen + 1);
	assert_non_null(longer);
	memcpy(longer, z, zlen);
	longer[zlen] = 'x';
	rec_chunk_tag(key, "r", 0, NULL, longer, zlen + 1, tag);
	assert_int_equal(rec_open_chunk(key, "r", 0, NULL, longer, zlen + 1, tag, &out),
			 -BERR_INTEGRITY);
	assert_int_equal(out.len, 0);
	free(longer);
	free(z);
	buf_free(&out);
}

/* The tags are HMAC-SHA256 as libsodium computed them when recordings were
 * sealed with it: those recordings verify as they did. */
static void test_tag_same_as_before(void **state)
{
	static const uint8_t seq_be[8] = { 0, 0, 0, 0, 0, 0, 0x12, 0x34 };
	uint8_t prev[STORE_REC_TAG_BYTES], data[3000], want[STORE_REC_TAG_BYTES],
		got[STORE_REC_TAG_BYTES];
	crypto_auth_hmacsha256_state st;

	(void)state;
	randombytes_buf(prev, sizeof(prev));
	randombytes_buf(data, sizeof(data));
	crypto_auth_hmacsha256_init(&st, key, REC_KEY_BYTES);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)"bastion-rec-chunk-v1", 21);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)"rec-id", 7);
	crypto_auth_hmacsha256_update(&st, seq_be, 8);
	crypto_auth_hmacsha256_update(&st, prev, sizeof(prev));
	crypto_auth_hmacsha256_update(&st, data, sizeof(data));
	crypto_auth_hmacsha256_final(&st, want);
	assert_int_equal(rec_chunk_tag(key, "rec-id", 0x1234, prev, data, sizeof(data), got), 0);
	assert_memory_equal(got, want, sizeof(want));
	crypto_auth_hmacsha256_init(&st, key, REC_KEY_BYTES);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)"bastion-rec-end-v1", 19);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)"rec-id", 7);
	crypto_auth_hmacsha256_update(&st, seq_be, 8);
	crypto_auth_hmacsha256_update(&st, prev, sizeof(prev));
	crypto_auth_hmacsha256_final(&st, want);
	assert_int_equal(rec_final_tag(key, "rec-id", 0x1234, prev, got), 0);
	assert_memory_equal(got, want, sizeof(want));
}

static void test_seal_dropped_swapped(void **state)
{
	struct tu_store *f = *state;
	uint8_t *d1, *d2, t1[STORE_REC_TAG_BYTES], t2[STORE_REC_TAG_BYTES];
	size_t l1, l2;
	struct buf out;
	uint8_t other[REC_KEY_BYTES] = { 9 };

	buf_init(&out, 1 << 20);
	/* A chunk removed from the middle. */
	write_rec(f->s, "r-drop", "/groups/g/bastions/b", 4, 5000);
	replace_chunk(f->s, "r-drop", 2, NULL, 0, NULL);
	assert_int_equal(rectest_read(f->s, "r-drop", key, &out), -BERR_INTEGRITY);
	/* The last one removed: only the final tag can tell. */
	write_rec(f->s, "r-tail", "/groups/g/bastions/b", 4, 5000);
	replace_chunk(f->s, "r-tail", 3, NULL, 0, NULL);
	assert_int_equal(rectest_read(f->s, "r-tail", key, &out), -BERR_INTEGRITY);
	/* Two swapped. */
	write_rec(f->s, "r-swap", "/groups/g/bastions/b", 4, 5000);
	assert_int_equal(store_rec_chunk_get(f->s, "r-swap", 1, &d1, &l1, t1), 0);
	assert_int_equal(store_rec_chunk_get(f->s, "r-swap", 2, &d2, &l2, t2), 0);
	replace_chunk(f->s, "r-swap", 1, d2, l2, t2);
	replace_chunk(f->s, "r-swap", 2, d1, l1, t1);
	free(d1);
	free(d2);
	assert_int_equal(rectest_read(f->s, "r-swap", key, &out), -BERR_INTEGRITY);
	/* A chunk copied from another recording (same seq, valid there). */
	write_rec(f->s, "r-a", "/groups/g/bastions/b", 2, 5000);
	write_rec(f->s, "r-b", "/groups/g/bastions/b", 2, 5000);
	assert_int_equal(store_rec_chunk_get(f->s, "r-a", 1, &d1, &l1, t1), 0);
	replace_chunk(f->s, "r-b", 1, d1, l1, t1);
	free(d1);
	assert_int_equal(rectest_read(f->s, "r-b", key, &out), -BERR_INTEGRITY);
	/* Another key. */
	assert_int_equal(rectest_read(f->s, "r-a", other, &out), -BERR_INTEGRITY);
	/* Untouched, it still reads. */
	buf_reset(&out);
	assert_int_equal(rectest_read(f->s, "r-a", key, &out), 0);
	buf_free(&out);
}

/* ---------- search ---------- */

static json_t *search(const char *cast, const char *q, size_t max)
{
	struct rec_search *rs;
	json_t *hits;

	assert_int_equal(rec_search_new(q, max, &rs), 0);
	/* Fed in pieces of every size: lines cut between feeds join up. */
	for (size_t i = 0, step = 1; cast[i]; i += step, step = step % 7 + 1) {
		size_t n = strnlen(cast + i, step);

		assert_int_equal(rec_search_feed(rs, cast + i, n), 0);
		if (n < step)
			break;
	}
	hits = rec_search_finish(rs);
	rec_search_free(rs);
	return hits;
}

static void test_search(void **state)
{
	const char *cast = "{\"version\":2,\"width\":80,\"height\":24}\n"
			   "[0.5, \"o\", \"$ echo \\u001b[1;32mhello\\u001b[0m wor\"]\n"
			   "[0.7, \"o\", \"ld\\r\\n\"]\n"
			   "[1.0, \"i\", \"secretword\\r\"]\n"
			   "[2.25, \"o\", \"\\u001b]0;title\\u0007typ\\b\\bypo: NEEDLE\\r\\n\"]\n"
			   "[3.0, \"o\", \"xxxxxxxx\\rneedle over\\r\\n\"]\n"
			   "[4.0, \"o\", \"gone\\u001b[2K\\rnone\\r\\n\"]\n"
			   "[5.0, \"o\", \"nul\\u0000byte\\r\\n\"]\n";
	json_t *hits = search(cast, "hello world", 10), *h;

	/* Colours stripped, the line split across two events: the time is
	 * when all of it was on screen. */
	assert_int_equal(json_array_size(hits), 1);
	h = json_array_get(hits, 0);
	assert_true(json_number_value(json_object_get(h, "time")) > 0.69);
	assert_string_equal(json_string_value(json_object_get(h, "line")), "$ echo hello world");
	json_decref(hits);
	/* Input is not what was shown. */
	hits = search(cast, "secretword", 10);
	assert_int_equal(json_array_size(hits), 0);
	json_decref(hits);
	/* Case-insensitive; \r and \b overwrite; the title is not text. */
	hits = search(cast, "needle", 10);
	assert_int_equal(json_array_size(hits), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(hits, 0), "line")),
			    "typo: NEEDLE");
	assert_true(json_number_value(json_object_get(json_array_get(hits, 0), "time")) == 2.25);
	assert_string_equal(json_string_value(json_object_get(json_array_get(hits, 1), "line")),
			    "needle over");
	json_decref(hits);
	hits = search(cast, "title", 10);
	assert_int_equal(json_array_size(hits), 0);
	json_decref(hits);
	/* Erased within the same output as it was printed: never on screen. */
	hits = search(cast, "gone", 10);
	assert_int_equal(json_array_size(hits), 0);
	json_decref(hits);
	/* A NUL the VM printed does not stop the search. */
	hits = search(cast, "byte", 10);
	assert_int_equal(json_array_size(hits), 1);
	json_decref(hits);
	/* The cap. */
	hits = search(cast, "o", 2);
	assert_int_equal(json_array_size(hits), 2);
	json_decref(hits);
}

/* ---------- the store's rows and retention ---------- */

struct names {
	char ids[64][48];
	int n;
	int64_t last;
};

static int add_name(const struct store_rec *rec, int64_t seq, void *ud)
{
	struct names *n = ud;

	snprintf(n->ids[n->n++], sizeof(n->ids[0]), "%s", rec->id);
	n->last = seq;
	return 0;
}

static void test_query(void **state)
{
	struct tu_store *f = *state;
	struct store_rec_filter flt = { 0 };
	struct names n = { 0 };

	write_rec(f->s, "q1", "/groups/g/bastions/b1", 1, 2000);
	write_rec(f->s, "q2", "/groups/g/bastions/b2", 1, 3000);
	write_rec(f->s, "q3", "/groups/g/bastions/b1", 1, 4000);
	write_rec(f->s, "q4", "/groups/g/bastions/b1", 0, 0); /* still recording */
	flt.bastion = "/groups/g/bastions/b1";
	assert_int_equal(store_rec_query(f->s, &flt, add_name, &n), 0);
	assert_int_equal(n.n, 3);
	assert_string_equal(n.ids[0], "q4"); /* newest first */
	assert_string_equal(n.ids[2], "q1");
	/* Paging. */
	memset(&n, 0, sizeof(n));
	flt.limit = 2;
	assert_int_equal(store_rec_query(f->s, &flt, add_name, &n), 0);
	assert_int_equal(n.n, 2);
	flt.before_seq = n.last;
	memset(&n, 0, sizeof(n));
	assert_int_equal(store_rec_query(f->s, &flt, add_name, &n), 0);
	assert_int_equal(n.n, 1);
	assert_string_equal(n.ids[0], "q1");
	/* Times: started_at is ended - 10 (1000 for q4). */
	memset(&flt, 0, sizeof(flt));
	memset(&n, 0, sizeof(n));
	flt.since = 2990;
	flt.until = 3991;
	assert_int_equal(store_rec_query(f->s, &flt, add_name, &n), 0);
	assert_int_equal(n.n, 2);
	assert_string_equal(n.ids[0], "q3");
	assert_string_equal(n.ids[1], "q2");
	memset(&flt, 0, sizeof(flt));
	memset(&n, 0, sizeof(n));
	flt.user = "bob";
	assert_int_equal(store_rec_query(f->s, &flt, add_name, &n), 0);
	assert_int_equal(n.n, 0);
	{
		struct store_rec rec;

		assert_int_equal(store_rec_get(f->s, "nope", &rec), -ENOENT);
		assert_int_equal(store_rec_get(f->s, "q4", &rec), 0);
		assert_int_equal(rec.ended_at, 0);
		assert_false(rec.has_final);
		assert_string_equal(rec.state, "recording");
		/* A failed one says why. */
		assert_int_equal(store_rec_finish(f->s, "q4", 5000, 1, "failed", "the disk", NULL),
				 0);
		assert_int_equal(store_rec_get(f->s, "q4", &rec), 0);
		assert_string_equal(rec.state, "failed");
		assert_string_equal(rec.error, "the disk");
	}
}

static void test_prune(void **state)
{
	struct tu_store *f = *state;
	struct store_rec rec;
	char id[32];
	int n;

	/* 230 old recordings, one recent, one still going: the old go in
	 * batches of 100 (each audited), chunks with them. */
	for (int i = 0; i < 230; i++) {
		snprintf(id, sizeof(id), "old-%d", i);
		write_rec(f->s, id, "/groups/g/bastions/b", 2, 1000 + i);
	}
	write_rec(f->s, "recent", "/groups/g/bastions/b", 1, 900000);
	write_rec(f->s, "live", "/groups/g/bastions/b", 1, 0);
	assert_int_equal(term_rec_prune(f->s, 500000, 2), 200); /* two batches at most */
	assert_int_equal(term_rec_prune(f->s, 500000, 50), 30);
	assert_int_equal(term_rec_prune(f->s, 500000, 50), 0);
	assert_int_equal(store_rec_get(f->s, "old-0", &rec), -ENOENT);
	assert_int_equal(store_rec_get(f->s, "old-229", &rec), -ENOENT);
	assert_int_equal(store_rec_get(f->s, "recent", &rec), 0);
	assert_int_equal(store_rec_get(f->s, "live", &rec), 0);
	assert_int_equal(tu_query_int(f->s,
				      "SELECT count(*) FROM recording_chunks WHERE rec_id LIKE ?",
				      "old-%"),
			 0);
	assert_int_equal(tu_query_int(f->s, "SELECT count(*) FROM audit WHERE action = ?",
				      "recording.prune"),
			 3);
	(void)n;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cast_header),
		cmocka_unit_test(test_cast_event_escapes),
		cmocka_unit_test(test_cast_event_every_place),
		cmocka_unit_test(test_cast_event_utf8),
		cmocka_unit_test(test_search),
		cmocka_unit_test_setup_teardown(test_seal_roundtrip, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_seal_flipped_byte, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_seal_codecs, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test(test_open_bad_frame),
		cmocka_unit_test(test_tag_same_as_before),
		cmocka_unit_test_setup_teardown(test_seal_dropped_swapped, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_query, tu_store_setup, tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_prune, tu_store_setup, tu_store_teardown),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
