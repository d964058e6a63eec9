/* Session recordings, the writer's side (terminal/record_write.c,
 * record_raw.c) and what happens to them when their instance dies
 * (store_rec_interrupt): nothing silently lost (a 1 MiB keystroke event
 * recorded whole, gaps marked and audited, the cap, a store refusing a
 * chunk), raw events rendered as asciicast on read (and a changed byte
 * still detected), a lost or restarted instance's recordings closed as
 * interrupted and read as ending early (how chunks are stored:
 * test_record_chunks.c). Runs on both store backends. */
#include <errno.h>
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
#include "store/store_cluster.h"
#include "store/store_ops.h"
#include "store/store_rec.h"
#include "terminal/record.h"
#include "rectest.h"
#include "testutil.h"

static const uint8_t *const key = rectest_key;

/* ---------- the writer (record_write.c): nothing silently lost ---------- */

/* A recording made by the writer: n jobs of one event "chunk i\r\n" at
 * i seconds (a chunk each, the header in chunk 0), ended or not. */
static void writer_rec(struct store *s, const char *id, int n, bool end)
{
	struct rectest_rec t;

	rectest_open(&t, s, id, 0);
	for (int i = 0; i < n; i++) {
		char line[32];
		int k = snprintf(line, sizeof(line), "chunk %d\r\n", i);

		rectest_ev(&t, 'o', (uint64_t)i * 1000, line, (size_t)k);
		rectest_run(&t, NULL, false, 0);
	}
	if (end)
		rectest_run(&t, NULL, true, (int64_t)n * 1000);
	assert_string_equal(t.w.row.state, end ? "complete" : "recording");
	rectest_close(&t);
}

/* A keystroke message as large as a WebSocket message may be (1 MiB), of
 * bytes that grow 6 times once escaped, and larger ones: recorded whole,
 * in order, between the events around it. */
static void test_writer_large_event(void **state)
{
	struct tu_store *f = *state;
	static const size_t sizes[] = { 1024 * 1024, 3 * 1024 * 1024 + 7 };

	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		struct rectest_rec t;
		struct buf in, out, marks;
		uint8_t *big = malloc(sizes[k]);
		char id[16];
		struct store_rec rec;

		snprintf(id, sizeof(id), "w-big-%zu", k);
		for (size_t i = 0; i < sizes[k]; i++) /* control bytes, quotes, UTF-8 */
			big[i] = i % 5 == 0 ? 0x01 : i % 5 == 1 ? '"' : "a\xc3\xa9x"[i % 5 - 2];
		rectest_open(&t, f->s, id, 256LL << 20);
		rectest_ev(&t, 'o', 10, "before\r\n", 8);
		rectest_ev(&t, 'i', 20, big, sizes[k]);
		rectest_ev(&t, 'o', 30, "after\r\n", 7);
		rectest_run(&t, NULL, true, 30);
		assert_string_equal(t.w.row.state, "complete");
		assert_true(t.w.seq > 1); /* it took several chunks */
		rectest_close(&t);
		buf_init(&in, 64 << 20);
		buf_init(&out, 64 << 20);
		buf_init(&marks, 1 << 20);
		rectest_cast_of(f->s, id, 'i', &in, &marks);
		rectest_cast_of(f->s, id, 'o', &out, NULL);
		/* The bytes as the cast carries them (valid UTF-8 kept). */
		assert_int_equal(in.len, sizes[k]);
		assert_memory_equal(in.data, big, sizes[k]);
		assert_string_equal(buf_str(&out), "before\r\nafter\r\n");
		assert_int_equal(marks.len, 0);
		assert_int_equal(store_rec_get(f->s, id, &rec), 0);
		assert_string_equal(rec.state, "complete");
		buf_free(&in);
		buf_free(&out);
		buf_free(&marks);
		free(big);
	}
}

/* What the loop could not keep (its buffer full, no memory) is marked
 * where it was lost, said in the row's error, and audited. */
static void test_writer_gap(void **state)
{
	struct tu_store *f = *state;
	struct rectest_rec t;
	struct rec_gap g = { .in = 5000, .ms = 25, .why = "the store fell behind" };
	struct rec_gap g2 = { .in = 7, .out = 9, .ms = 5, .why = "out of memory" };
	struct buf marks;
	struct store_rec rec;

	rectest_open(&t, f->s, "w-gap", 0);
	rectest_ev(&t, 'o', 10, "one\r\n", 5);
	rectest_ev(&t, 'i', 20, "x", 1);
	rectest_run(&t, &g, false, 0);
	/* A later gap whose time is before the last event: the cast's times
	 * do not go back. */
	rectest_ev(&t, 'o', 10, "one\r\n", 5);
	rectest_ev(&t, 'i', 20, "x", 1);
	rectest_run(&t, &g2, true, 40);
	rectest_close(&t);
	buf_init(&marks, 1 << 20);
	rectest_cast_of(f->s, "w-gap", 'o', NULL, &marks);
	assert_string_equal(buf_str(&marks),
			    "not recorded: 5000 bytes of keystrokes here (the store fell behind)\n"
			    "not recorded: 7 bytes of keystrokes and 9 bytes of output here (out"
			    " of memory)\n");
	assert_int_equal(store_rec_get(f->s, "w-gap", &rec), 0);
	assert_string_equal(rec.state, "complete");
	assert_string_equal(rec.error,
			    "5016 bytes in all were not recorded; the recording marks where");
	assert_int_equal(
		tu_query_int(f->s, "SELECT count(*) FROM audit WHERE action = ?", "recording.gap"),
		2);
	buf_free(&marks);
}

/* Past the cap: a marker says so, the rest is not written, audited. */
static void test_writer_cap(void **state)
{
	struct tu_store *f = *state;
	struct rectest_rec t;
	struct buf out, marks;
	struct store_rec rec;
	char line[64];

	rectest_open(&t, f->s, "w-cap", 4096);
	for (int i = 0; i < 1000; i++) { /* ~12 KiB recorded */
		int n = snprintf(line, sizeof(line), "line %d\r\n", i);

		rectest_ev(&t, 'o', (uint64_t)i, line, (size_t)n);
	}
	rectest_run(&t, NULL, true, 1000);
	rectest_close(&t);
	buf_init(&out, 1 << 20);
	buf_init(&marks, 1 << 20);
	rectest_cast_of(f->s, "w-cap", 'o', &out, &marks);
	assert_non_null(strstr(buf_str(&out), "line 0\r\n"));
	assert_null(strstr(buf_str(&out), "line 999"));
	assert_non_null(strstr(buf_str(&marks), "recording.max_bytes"));
	assert_int_equal(store_rec_get(f->s, "w-cap", &rec), 0);
	assert_string_equal(rec.state, "truncated");
	assert_true(rec.bytes <= 4096 + 200); /* and the marker */
	assert_int_equal(tu_query_int(f->s, "SELECT count(*) FROM audit WHERE action = ?",
				      "recording.truncated"),
			 1);
	buf_free(&out);
	buf_free(&marks);
}

/* The store refusing a chunk: the recording says "failed" and why, and
 * is audited; closed by another instance: that end stays, and the writer
 * stops. */
static void test_writer_store_refuses(void **state)
{
	struct tu_store *f = *state;
	struct rectest_rec t;
	struct store_rec rec;
	uint8_t tag[STORE_REC_TAG_BYTES] = { 0 };
	int n = 0;

	rectest_open(&t, f->s, "w-fail", 0);
	rectest_ev(&t, 'o', 10, "one\r\n", 5);
	rectest_run(&t, NULL, false, 0);
	/* Chunk 1 exists already: the store refuses the writer's. */
	assert_int_equal(store_rec_chunk_add(f->s, "w-fail", 1, (const uint8_t *)"x", 1, tag, 0),
			 0);
	rectest_ev(&t, 'o', 10, "one\r\n", 5);
	rectest_run(&t, NULL, false, 0);
	assert_string_equal(t.w.row.state, "failed");
	assert_true(atomic_load(&t.w.stopped));
	rectest_ev(&t, 'o', 10, "one\r\n", 5);
	rectest_run(&t, NULL, true, 20);
	rectest_close(&t);
	assert_int_equal(store_rec_get(f->s, "w-fail", &rec), 0);
	assert_string_equal(rec.state, "failed");
	assert_non_null(strstr(rec.error, "a chunk could not be stored"));
	assert_int_equal(tu_query_int(f->s, "SELECT count(*) FROM audit WHERE action = ?",
				      "recording.failed"),
			 1);

	rectest_open(&t, f->s, "w-lost", 0);
	rectest_ev(&t, 'o', 10, "one\r\n", 5);
	rectest_run(&t, NULL, false, 0);
	assert_int_equal(store_rec_interrupt(f->s, "test", 2000, "instance lost", &n), 0);
	assert_int_equal(n, 1);
	rectest_ev(&t, 'o', 10, "one\r\n", 5);
	rectest_run(&t, NULL, false, 0);
	assert_string_equal(t.w.row.state, "interrupted");
	assert_true(atomic_load(&t.w.stopped));
	rectest_ev(&t, 'o', 10, "one\r\n", 5);
	rectest_run(&t, NULL, true, 20);
	rectest_close(&t);
	assert_int_equal(store_rec_get(f->s, "w-lost", &rec), 0);
	assert_string_equal(rec.state, "interrupted");
	assert_int_equal(rec.chunks, 1);
	assert_int_equal(tu_query_int(f->s, "SELECT count(*) FROM audit WHERE action = ?",
				      "recording.failed"),
			 1); /* not this one */
}

/* ---------- a lost instance's recordings ---------- */

static void set_instance(struct store *s, const char *id, const char *instance)
{
	char sql[128];

	snprintf(sql, sizeof(sql), "UPDATE recordings SET instance = '%s' WHERE id = ? RETURNING 1",
		 instance);
	assert_int_equal(tu_query_int(s, sql, id), 1);
}

static void test_interrupt(void **state)
{
	struct tu_store *f = *state;
	struct store_rec rec;
	struct buf out, early;
	uint8_t tag[STORE_REC_TAG_BYTES] = { 0 };
	const char *why = NULL;
	int n = -1;

	writer_rec(f->s, "i-live", 3, false); /* instance "test" */
	{
		struct rectest_rec t; /* its row, no chunk yet */

		rectest_open(&t, f->s, "i-none", 0);
		assert_int_equal(store_rec_open(f->s, &t.w.row), 0);
		rectest_close(&t);
	}
	writer_rec(f->s, "i-done", 2, true); /* ended: stays */
	writer_rec(f->s, "i-other", 1, false);
	set_instance(f->s, "i-other", "other");
	assert_int_equal(store_rec_interrupt(f->s, "test", 5000, "instance lost", &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(store_rec_get(f->s, "i-live", &rec), 0);
	assert_string_equal(rec.state, "interrupted");
	assert_int_equal(rec.ended_at, 5000);
	assert_false(rec.has_final);
	assert_non_null(strstr(rec.error, "instance test stopped"));
	assert_non_null(strstr(rec.error, "instance lost"));
	assert_int_equal(store_rec_get(f->s, "i-done", &rec), 0);
	assert_string_equal(rec.state, "complete");
	assert_int_equal(store_rec_get(f->s, "i-other", &rec), 0);
	assert_string_equal(rec.state, "recording");
	assert_int_equal(tu_query_int(f->s, "SELECT count(*) FROM audit WHERE action = ?",
				      "recording.interrupted"),
			 2);
	/* Its writer, if it is alive after all, writes no more, and its end
	 * does not replace this one. */
	assert_int_equal(store_rec_chunk_add(f->s, "i-live", 3, (const uint8_t *)"x", 1, tag, 9),
			 -ESTALE);
	assert_int_equal(store_rec_finish(f->s, "i-live", 6000, 1, "complete", NULL, tag), -ESTALE);
	/* Any instance's (SQLite at start: one process at a time). */
	assert_int_equal(store_rec_interrupt(f->s, NULL, 5001, "bastion restarted", &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_rec_get(f->s, "i-other", &rec), 0);
	assert_string_equal(rec.state, "interrupted");
	assert_non_null(strstr(rec.error, "the bastion recording it stopped"));
	assert_int_equal(store_rec_get(f->s, "i-live", &rec), 0);
	assert_string_equal(rec.state, "interrupted");
	assert_int_equal(rec.chunks, 3);
	/* What was stored reads and verifies; it says it ends early. */
	buf_init(&out, 1 << 20);
	buf_init(&early, 1 << 20);
	assert_int_equal(rectest_read(f->s, "i-live", key, &out), 0);
	assert_non_null(strstr(buf_str(&out), "chunk 2"));
	assert_int_equal(rec_ends_early(&rec, buf_str(&out), out.len, &early), 0);
	assert_non_null(strstr(buf_str(&early), "[2.000000, \"m\", \"the recording ends here"
						" (interrupted): interrupted: its instance test"));
	buf_reset(&out);
	buf_reset(&early);
	/* None stored: a header and the marker. */
	assert_int_equal(rectest_read(f->s, "i-none", key, &out), 0);
	assert_int_equal(out.len, 0);
	assert_int_equal(store_rec_get(f->s, "i-none", &rec), 0);
	assert_int_equal(rec_ends_early(&rec, NULL, 0, &early), 0);
	assert_non_null(strstr(buf_str(&early), "{\"version\":2,"));
	assert_non_null(strstr(buf_str(&early), "[0.000000, \"m\", \"the recording ends here"));
	/* A complete one is not "early"; without its end seal it is damaged. */
	assert_int_equal(store_rec_get(f->s, "i-done", &rec), 0);
	buf_reset(&early);
	assert_int_equal(rec_ends_early(&rec, "x\n", 2, &early), 0);
	assert_int_equal(early.len, 0);
	assert_int_equal(
		tu_query_int(f->s,
			     "UPDATE recordings SET final_tag = NULL WHERE id = ? RETURNING 1",
			     "i-done"),
		1);
	assert_int_equal(store_rec_get(f->s, "i-done", &rec), 0);
	buf_reset(&out);
	assert_int_equal(rec_read(f->s, &rec, key, rectest_collect, &out, &why), -BERR_INTEGRITY);
	assert_string_equal(why, "the seal of the recording's end was removed");
	buf_free(&out);
	buf_free(&early);
}

/* The instances' claim (a restart under the same name) and reap (a
 * survivor marking one lost) close that instance's recordings. */
static void test_interrupt_by_instances(void **state)
{
	struct tu_store *f = *state;
	struct store_instance me = { .name = "test" }, other = { .name = "other" };
	struct store_rec rec;
	int ended = -1, lost = -1;

	assert_int_equal(store_instance_claim(f->s, &other, 1000, 15, "bastion restarted", &ended),
			 0);
	writer_rec(f->s, "c-mine", 1, false);
	writer_rec(f->s, "c-other", 1, false);
	set_instance(f->s, "c-other", "other");
	/* "test" restarts (crashed before: its row is not there, or stale). */
	assert_int_equal(store_instance_claim(f->s, &me, 1010, 15, "bastion restarted", &ended), 0);
	assert_int_equal(store_rec_get(f->s, "c-mine", &rec), 0);
	assert_string_equal(rec.state, "interrupted");
	assert_non_null(strstr(rec.error, "bastion restarted"));
	assert_int_equal(store_rec_get(f->s, "c-other", &rec), 0);
	assert_string_equal(rec.state, "recording");
	/* "other" stops renewing its lease: "test" reaps it. */
	assert_int_equal(store_instance_heartbeat(f->s, "test", "up", 1100), 0);
	assert_int_equal(store_instance_reap(f->s, "test", 1100, 15, &lost, &ended), 0);
	assert_int_equal(lost, 1);
	assert_int_equal(store_rec_get(f->s, "c-other", &rec), 0);
	assert_string_equal(rec.state, "interrupted");
	assert_non_null(strstr(rec.error, "instance other stopped"));
	assert_int_equal(rec.ended_at, 1100);
	assert_int_equal(tu_query_int(f->s, "SELECT count(*) FROM audit WHERE action = ?",
				      "recording.interrupted"),
			 2);
}

/* ---------- raw events, rendered on read ---------- */

/* Raw chunks render as the asciicast the same events make directly, a
 * UTF-8 sequence cut between two chunks included; what is not well
 * formed is refused, nothing appended. */
static void test_raw_render(void **state)
{
	struct rec_render st = { 0 };
	struct buf raw1, raw2, got, want;
	uint8_t carry[4];
	size_t nc = 0;
	static const uint8_t bad[][8] = {
		{ 'o', 0, 0 },                    /* no format byte */
		{ REC_RAW_V1, 'x', 0, 0 },        /* unknown type */
		{ REC_RAW_V1, 'o', 0, 5, 'a' },   /* length past the end */
		{ REC_RAW_V1, 'o', 0x80 },        /* varint cut short */
		{ REC_RAW_V1, 'h', 0, 2, 0, 24 }, /* width 0 */
	};
	static const size_t bad_len[] = { 3, 4, 5, 3, 6 };

	buf_init(&raw1, 1 << 20);
	buf_init(&raw2, 1 << 20);
	buf_init(&got, 1 << 20);
	buf_init(&want, 1 << 20);
	assert_int_equal(rec_raw_header(&raw1, 100, 30, 1700000000), 0);
	assert_int_equal(rec_raw_event(&raw1, 'o', 1500, (const uint8_t *)"caf\xc3", 4), 0);
	assert_int_equal(rec_raw_event(&raw2, 'o', 2250, (const uint8_t *)"\xa9 \"q\"\r\n", 7), 0);
	assert_int_equal(rec_raw_event(&raw2, 'r', 3000, (const uint8_t *)"90x20", 5), 0);
	assert_int_equal(rec_raw_event(&raw2, 'i', 123456789, (const uint8_t *)"\x01\x1b[A", 4), 0);
	assert_int_equal(rec_raw_event(&raw2, 'm', 123456789, (const uint8_t *)"mark", 4), 0);
	assert_int_equal(rec_raw_event(&raw2, 'o', 123456790, NULL, 0), 0);
	assert_int_equal(raw1.data[0], REC_RAW_V1);
	assert_int_equal(raw2.data[0], REC_RAW_V1);
	assert_int_equal(rec_render_chunk(&st, (const uint8_t *)raw1.data, raw1.len, &got), 0);
	assert_int_equal(rec_render_chunk(&st, (const uint8_t *)raw2.data, raw2.len, &got), 0);
	assert_int_equal(rec_cast_header(&want, 100, 30, 1700000000, "xterm-256color"), 0);
	assert_int_equal(rec_cast_event(&want, 1.5, 'o', (const uint8_t *)"caf\xc3", 4, carry, &nc),
			 0);
	assert_int_equal(
		rec_cast_event(&want, 2.25, 'o', (const uint8_t *)"\xa9 \"q\"\r\n", 7, carry, &nc),
		0);
	assert_int_equal(rec_cast_event(&want, 3, 'r', (const uint8_t *)"90x20", 5, NULL, NULL), 0);
	assert_int_equal(rec_cast_event(&want, 123456.789, 'i', (const uint8_t *)"\x01\x1b[A", 4,
					NULL, NULL),
			 0);
	assert_int_equal(
		rec_cast_event(&want, 123456.789, 'm', (const uint8_t *)"mark", 4, NULL, NULL), 0);
	assert_int_equal(rec_cast_event(&want, 123456.790, 'o', NULL, 0, carry, &nc), 0);
	assert_string_equal(buf_str(&got), buf_str(&want));
	assert_non_null(strstr(buf_str(&got), "[2.250000, \"o\", \"\xc3\xa9 \\\"q\\\"\\r\\n\"]\n"));
	for (size_t i = 0; i < sizeof(bad_len) / sizeof(bad_len[0]); i++) {
		struct rec_render st2 = { 0 };

		buf_reset(&got);
		assert_int_equal(rec_render_chunk(&st2, bad[i], bad_len[i], &got), -BERR_INTEGRITY);
		assert_int_equal(got.len, 0);
	}
	buf_free(&raw1);
	buf_free(&raw2);
	buf_free(&got);
	buf_free(&want);
}

/* A recording the writer made: a changed byte of any chunk is detected;
 * put back, it reads again. */
static void test_raw_flipped_byte(void **state)
{
	struct tu_store *f = *state;
	struct buf out;

	writer_rec(f->s, "raw-flip", 3, true);
	buf_init(&out, 1 << 20);
	assert_int_equal(rectest_read(f->s, "raw-flip", key, &out), 0);
	assert_non_null(strstr(buf_str(&out), "[2.000000, \"o\", \"chunk 2\\r\\n\"]\n"));
	for (int64_t seq = 0; seq < 3; seq++) {
		uint8_t *data = NULL, tag[STORE_REC_TAG_BYTES];
		size_t len = 0;

		assert_int_equal(store_rec_chunk_get(f->s, "raw-flip", seq, &data, &len, tag), 0);
		for (size_t i = 0; i < len; i += len / 4 + 1) {
			data[i] ^= 0x20;
			rectest_put_chunk(f->s, "raw-flip", seq, data, len, tag);
			buf_reset(&out);
			assert_int_equal(rectest_read(f->s, "raw-flip", key, &out),
					 -BERR_INTEGRITY);
			data[i] ^= 0x20;
		}
		rectest_put_chunk(f->s, "raw-flip", seq, data, len, tag);
		buf_reset(&out);
		assert_int_equal(rectest_read(f->s, "raw-flip", key, &out), 0);
		free(data);
	}
	buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_raw_render),
		cmocka_unit_test_setup_teardown(test_raw_flipped_byte, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_writer_large_event, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_writer_gap, tu_store_setup, tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_writer_cap, tu_store_setup, tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_writer_store_refuses, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_interrupt, tu_store_setup, tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_interrupt_by_instances, tu_store_setup,
						tu_store_teardown),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
