/* How a recording's chunks are stored (terminal/record_chunk.c,
 * record_write.c): output that does not compress is stored as it is, a
 * sample deciding per chunk, read back byte-exact and sealed the same (a
 * flipped byte, a cut, a swapped or dropped chunk detected, the cap kept);
 * a job is one chunk, one larger is cut into chunks of about equal size
 * stored from the loop's buffer where they are. Runs on both store
 * backends. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "core/buf.h"
#include "core/err.h"
#include "store/store.h"
#include "store/store_rec.h"
#include "terminal/record.h"
#include "rectest.h"
#include "testutil.h"

static const uint8_t *const key = rectest_key;

/* n bytes of terminal output of a kind: 0 text with repeats (a log), 1
 * base64 of random bytes (lines of 76 and CRLF, as `base64` prints), 2
 * random bytes; seeded, so that a failure repeats. */
static void output_of(int kind, uint8_t *p, size_t n, uint32_t seed)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	uint32_t x = seed | 1;
	size_t i = 0, col = 0;

	while (i < n) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		if (kind == 0) {
			char line[80];
			int k = snprintf(line, sizeof(line),
					 "[%8zu.%03u] eth%u: link up, 1000 Mbps\r\n", i / 64,
					 x % 1000, x % 4);

			for (int j = 0; j < k && i < n; j++)
				p[i++] = (uint8_t)line[j];
		} else if (kind == 1) {
			p[i++] = col == 76 ? '\r' : col == 77 ? '\n' : (uint8_t)b64[x & 63];
			col = col == 77 ? 0 : col + 1;
		} else {
			p[i++] = (uint8_t)x;
		}
	}
}

/* Jobs of output of the kinds given (768 KiB each, in reads of 4095
 * bytes as W2 makes them) through the writer; the kind of each job's
 * chunks ('z' zstd, 'r' raw events as they are: nothing else may be
 * stored), one letter per job when all its chunks are of one kind, '?'
 * when not, into kinds; the output into want. */
static void write_kinds(struct store *s, const char *id, const int *jobs, size_t njobs,
			struct buf *kinds, struct buf *want)
{
	struct rectest_rec t;
	size_t job = 768 * 1024;
	uint8_t *out = malloc(job);
	int64_t ends[16], seq = 0;

	assert_non_null(out);
	assert_true(njobs <= 16);
	rectest_open(&t, s, id, 1LL << 30);
	for (size_t j = 0; j < njobs; j++) {
		output_of(jobs[j], out, job, (uint32_t)j + 7);
		for (size_t off = 0; off < job; off += 4095)
			rectest_ev(&t, 'o', j * 1000 + off / 4095, out + off,
				   job - off < 4095 ? job - off : 4095);
		rectest_run(&t, NULL, j + 1 == njobs, (int64_t)j * 1000);
		ends[j] = t.w.seq;
		if (want)
			assert_int_equal(buf_append(want, out, job), 0);
	}
	assert_string_equal(t.w.row.state, "complete");
	rectest_close(&t);
	for (size_t j = 0; j < njobs; j++) {
		char kind = 0;

		assert_true(ends[j] > seq);
		for (; seq < ends[j]; seq++) {
			uint8_t *d = NULL, tag[STORE_REC_TAG_BYTES];
			size_t len = 0;
			char k;

			assert_int_equal(store_rec_chunk_get(s, id, seq, &d, &len, tag), 0);
			assert_true(len > 4);
			assert_true(d[0] == REC_RAW_V1 || d[0] == 0x28);
			k = d[0] == REC_RAW_V1 ? 'r' : 'z';
			kind = !kind || kind == k ? k : '?';
			free(d);
		}
		assert_int_equal(buf_append(kinds, &kind, 1), 0);
	}
	free(out);
}

/* Output that does not compress (base64 of random bytes, random bytes)
 * is stored raw, output with repeats compressed, chunk by chunk in one
 * recording; read back, the text is the very bytes the VM printed. */
static void test_raw_chunks(void **state)
{
	struct tu_store *f = *state;
	static const int jobs[] = { 0, 1, 0, 2, 1 }, jobs2[] = { 1, 0, 1 };
	struct buf kinds, want, got;
	struct store_rec rec;

	buf_init(&kinds, 1024);
	buf_init(&want, 8 << 20);
	buf_init(&got, 64 << 20);
	write_kinds(f->s, "w-kinds", jobs, 5, &kinds, NULL);
	assert_string_equal(buf_str(&kinds), "zrzrr");
	/* A job of less than a chunk's events is one chunk (the header rides
	 * in the first). */
	assert_int_equal(store_rec_get(f->s, "w-kinds", &rec), 0);
	assert_int_equal(rec.chunks, 5);
	/* Byte-exact where the cast carries bytes as they are (UTF-8). */
	buf_reset(&kinds);
	write_kinds(f->s, "w-b64", jobs2, 3, &kinds, &want);
	assert_string_equal(buf_str(&kinds), "rzr");
	rectest_cast_of(f->s, "w-b64", 'o', &got, NULL);
	assert_int_equal(got.len, want.len);
	assert_memory_equal(got.data, want.data, want.len);
	/* What is stored: raw chunks take what was recorded and the events'
	 * framing, the compressed one far less. */
	assert_int_equal(store_rec_get(f->s, "w-b64", &rec), 0);
	assert_true(rec.stored > 2 * 768 * 1024 && rec.stored < 2 * 768 * 1024 + 192 * 1024);
	buf_free(&kinds);
	buf_free(&want);
	buf_free(&got);
}

/* A job of more events than a chunk holds is cut between events into
 * chunks of REC_CHUNK_PLAIN_MAX at most, each full but the last (a
 * compressed one a run of frames, one per block); read back byte-exact.
 * The cap in the middle of such a job stops it there. */
static void test_writer_big_job(void **state)
{
	struct tu_store *f = *state;
	size_t job = 5 * 512 * 1024 + 123;
	uint8_t *out = malloc(job);
	struct buf got, marks;
	struct store_rec rec;

	assert_non_null(out);
	for (int kind = 0; kind < 2; kind++) {
		struct rectest_rec t;
		char id[16];

		snprintf(id, sizeof(id), "w-bigjob-%d", kind);
		output_of(kind, out, job, 99);
		rectest_open(&t, f->s, id, 1LL << 30);
		for (size_t off = 0; off < job; off += 4095)
			rectest_ev(&t, 'o', off / 4095, out + off,
				   job - off < 4095 ? job - off : 4095);
		rectest_run(&t, NULL, true, 1000);
		rectest_close(&t);
		assert_int_equal(store_rec_get(f->s, id, &rec), 0);
		assert_int_equal(rec.chunks, 3);
		for (int64_t seq = 0; seq < rec.chunks; seq++) {
			uint8_t *d = NULL, tag[STORE_REC_TAG_BYTES], prev[STORE_REC_TAG_BYTES];
			size_t len = 0;
			struct buf plain;

			buf_init(&plain, 2 * REC_CHUNK_PLAIN_MAX);
			if (seq) {
				uint8_t *pd = NULL;

				assert_int_equal(
					store_rec_chunk_get(f->s, id, seq - 1, &pd, &len, prev), 0);
				free(pd);
			}
			assert_int_equal(store_rec_chunk_get(f->s, id, seq, &d, &len, tag), 0);
			assert_int_equal(rec_open_chunk(key, id, seq, seq ? prev : NULL, d, len,
							tag, &plain),
					 0);
			/* Full but the last, none past the most a chunk holds. */
			assert_true(plain.len <= REC_CHUNK_PLAIN_MAX);
			if (seq + 1 < rec.chunks)
				assert_true(plain.len > REC_CHUNK_PLAIN_MAX - 8 * 1024);
			assert_int_equal((uint8_t)plain.data[0], REC_RAW_V1);
			buf_free(&plain);
			free(d);
		}
		buf_init(&got, 8 << 20);
		rectest_cast_of(f->s, id, 'o', &got, NULL);
		assert_int_equal(got.len, job);
		assert_memory_equal(got.data, out, job);
		buf_free(&got);
	}
	/* The cap in the middle of the job's second chunk. */
	{
		struct rectest_rec t;

		output_of(1, out, job, 5);
		rectest_open(&t, f->s, "w-bigjob-cap", 1300 * 1024);
		for (size_t off = 0; off < job; off += 4095)
			rectest_ev(&t, 'o', off / 4095, out + off,
				   job - off < 4095 ? job - off : 4095);
		rectest_run(&t, NULL, true, 1000);
		rectest_close(&t);
	}
	buf_init(&got, 8 << 20);
	buf_init(&marks, 4096);
	rectest_cast_of(f->s, "w-bigjob-cap", 'o', &got, &marks);
	assert_true(got.len > 1200 * 1024 && got.len < 1300 * 1024);
	assert_memory_equal(got.data, out, got.len); /* what there is, as it was */
	assert_non_null(strstr(buf_str(&marks), "recording.max_bytes"));
	assert_int_equal(store_rec_get(f->s, "w-bigjob-cap", &rec), 0);
	assert_string_equal(rec.state, "truncated");
	assert_true(rec.bytes <= 1300 * 1024 + 200);
	buf_free(&got);
	buf_free(&marks);
	free(out);
}

/* A stored raw chunk: a flipped byte anywhere (its format byte too) or in
 * its tag, a byte cut from its end, two raw chunks swapped or one dropped:
 * each detected; put back, it reads again. */
static void test_raw_chunk_tamper(void **state)
{
	struct tu_store *f = *state;
	static const int jobs[] = { 1, 1, 1 };
	uint8_t *d1 = NULL, *d2 = NULL, t1[STORE_REC_TAG_BYTES], t2[STORE_REC_TAG_BYTES];
	size_t l1 = 0, l2 = 0;
	struct buf kinds, out;

	buf_init(&kinds, 1024);
	buf_init(&out, 64 << 20);
	write_kinds(f->s, "w-rt", jobs, 3, &kinds, NULL);
	assert_string_equal(buf_str(&kinds), "rrr");
	assert_int_equal(store_rec_chunk_get(f->s, "w-rt", 1, &d1, &l1, t1), 0);
	assert_int_equal(store_rec_chunk_get(f->s, "w-rt", 2, &d2, &l2, t2), 0);
	for (size_t i = 0; i < l1; i += l1 / 5) {
		d1[i] ^= 0x04;
		rectest_put_chunk(f->s, "w-rt", 1, d1, l1, t1);
		buf_reset(&out);
		assert_int_equal(rectest_read(f->s, "w-rt", key, &out), -BERR_INTEGRITY);
		d1[i] ^= 0x04;
	}
	t1[31] ^= 0x01;
	rectest_put_chunk(f->s, "w-rt", 1, d1, l1, t1);
	assert_int_equal(rectest_read(f->s, "w-rt", key, &out), -BERR_INTEGRITY);
	t1[31] ^= 0x01;
	rectest_put_chunk(f->s, "w-rt", 1, d1, l1 - 1, t1);
	assert_int_equal(rectest_read(f->s, "w-rt", key, &out), -BERR_INTEGRITY);
	rectest_put_chunk(f->s, "w-rt", 1, d2, l2, t2); /* swapped */
	rectest_put_chunk(f->s, "w-rt", 2, d1, l1, t1);
	assert_int_equal(rectest_read(f->s, "w-rt", key, &out), -BERR_INTEGRITY);
	rectest_put_chunk(f->s, "w-rt", 1, d1, l1, t1);
	rectest_put_chunk(f->s, "w-rt", 2, d2, l2, t2);
	buf_reset(&out);
	assert_int_equal(rectest_read(f->s, "w-rt", key, &out), 0);
	assert_int_equal(tu_query_int(f->s,
				      "DELETE FROM recording_chunks WHERE rec_id = ? AND seq = 2"
				      " RETURNING 1",
				      "w-rt"),
			 1);
	assert_int_equal(rectest_read(f->s, "w-rt", key, &out), -BERR_INTEGRITY);
	free(d1);
	free(d2);
	buf_free(&kinds);
	buf_free(&out);
}

/* Stored raw, a chunk is still capped, and must be raw events: with a tag
 * that matches (only a key holder makes one), more than a chunk holds
 * fails, and so do events that are not well formed, nothing appended. */
static void test_raw_chunk_bounds(void **state)
{
	uint8_t *big = calloc(1, REC_CHUNK_PLAIN_MAX + 1), tag[STORE_REC_TAG_BYTES], *c = NULL;
	size_t clen = 0;
	struct buf out;

	(void)state;
	assert_non_null(big);
	big[0] = REC_RAW_V1;
	buf_init(&out, 2 * REC_CHUNK_PLAIN_MAX);
	assert_int_equal(rec_chunk_tag(key, "r", 0, NULL, big, REC_CHUNK_PLAIN_MAX + 1, tag), 0);
	assert_int_equal(rec_open_chunk(key, "r", 0, NULL, big, REC_CHUNK_PLAIN_MAX + 1, tag, &out),
			 -E2BIG);
	assert_int_equal(out.len, 0);
	/* Only raw events are stored raw: asciicast text is refused. */
	assert_int_equal(rec_seal_chunk_codec(key, "r", 0, NULL, (const uint8_t *)"[1]\n", 4,
					      REC_CODEC_RAW, &c, &clen, tag),
			 -EINVAL);
	assert_null(c);
	free(big);
	buf_free(&out);
}

/* A compressed chunk is a run of zstd frames (the packer writes one per
 * block): read in turn, byte-exact; bytes after the last frame that do not
 * make one, a last frame cut short, or frames holding more than a chunk
 * may: each fails with nothing appended. */
static void test_frames(void **state)
{
	size_t blk = 128 * 1024, zcap = 10 * rec_zstd_bound(blk), zn = 0, n;
	uint8_t *plain = malloc(9 * blk), *z = malloc(zcap + 8), tag[STORE_REC_TAG_BYTES];
	size_t ends[9];
	struct buf out;

	(void)state;
	assert_non_null(plain);
	assert_non_null(z);
	output_of(0, plain, 9 * blk, 3);
	for (int i = 0; i < 9; i++) {
		n = rec_zstd_frame(plain + (size_t)i * blk, blk, z + zn, zcap - zn);
		assert_true(n > 0);
		zn += n;
		ends[i] = zn;
	}
	buf_init(&out, 2 * REC_CHUNK_PLAIN_MAX);
	/* Three frames: the three blocks. */
	assert_int_equal(rec_chunk_tag(key, "f", 0, NULL, z, ends[2], tag), 0);
	assert_int_equal(rec_open_chunk(key, "f", 0, NULL, z, ends[2], tag, &out), 0);
	assert_int_equal(out.len, 3 * blk);
	assert_memory_equal(out.data, plain, 3 * blk);
	/* Bytes after the last frame. */
	memmove(z + ends[2] + 4, z + ends[2], zn - ends[2]);
	memcpy(z + ends[2], "junk", 4);
	for (size_t extra = 1; extra <= 4; extra++) {
		buf_reset(&out);
		assert_int_equal(rec_chunk_tag(key, "f", 0, NULL, z, ends[2] + extra, tag), 0);
		assert_int_equal(rec_open_chunk(key, "f", 0, NULL, z, ends[2] + extra, tag, &out),
				 -BERR_INTEGRITY);
		assert_int_equal(out.len, 0);
	}
	memmove(z + ends[2], z + ends[2] + 4, zn - ends[2]);
	/* The last frame cut short, anywhere. */
	for (size_t cut = ends[1] + 1; cut < ends[2]; cut += (ends[2] - ends[1]) / 7 + 1) {
		buf_reset(&out);
		assert_int_equal(rec_chunk_tag(key, "f", 0, NULL, z, cut, tag), 0);
		assert_int_equal(rec_open_chunk(key, "f", 0, NULL, z, cut, tag, &out),
				 -BERR_INTEGRITY);
		assert_int_equal(out.len, 0);
	}
	/* Nine blocks: more than a chunk holds. */
	buf_reset(&out);
	assert_int_equal(rec_chunk_tag(key, "f", 0, NULL, z, zn, tag), 0);
	assert_int_equal(rec_open_chunk(key, "f", 0, NULL, z, zn, tag, &out), -E2BIG);
	assert_int_equal(out.len, 0);
	buf_free(&out);
	free(plain);
	free(z);
}

/* The packer's memory follows the output: an interactive session's block
 * stays small, and what a quiet session holds is given back. */
static void test_pack_memory(void **state)
{
	struct rec_pack pk;
	struct rec_job job = { 0 };
	uint8_t big[4095];

	(void)state;
	memset(big, 'A', sizeof(big));
	rec_pack_init(&pk, 1LL << 30, 80, 24, 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(
			rec_pack_event(&pk, 'o', (uint64_t)i, (const uint8_t *)"ls\r\n", 4), 0);
	assert_true(pk.blk_cap <= 4096);
	for (int i = 0; i < 1000; i++) /* 3.9 MiB of output: blocks compressed as they fill */
		assert_int_equal(rec_pack_event(&pk, 'o', 200, big, sizeof(big)), 0);
	assert_int_equal(pk.blk_cap, REC_BLOCK);
	assert_true(pk.blk_len < REC_BLOCK);
	assert_true(pk.job.len < 16 * 1024); /* 3.9 MiB of repeats, compressed: little */
	rec_pack_take(&pk, &job);
	assert_int_equal(job.chunks, 4); /* 3.9 MiB: 1 MiB of events at most each */
	assert_int_equal(pk.blk_len, 0);
	rec_pack_trim(&pk);
	assert_null(pk.blk);
	assert_null(pk.job.buf);
	assert_int_equal(rec_pack_held(&pk), 0);
	rec_pack_free(&pk);
	free(job.buf);
}

/* The packer compresses on the loops' threads, which end at shutdown:
 * each thread's compressor goes with it (under ASan a thread's compressor
 * left behind is a leak report at exit, as it was on the loops), and works
 * while it lives. */
static void *compress_in_thread(void *arg)
{
	uint8_t *plain = arg, z[8192];
	size_t n = rec_zstd_frame(plain, 4096, z, sizeof(z));
	struct buf out;
	uint8_t tag[STORE_REC_TAG_BYTES];
	bool ok;

	buf_init(&out, REC_CHUNK_PLAIN_MAX);
	ok = n > 0 && rec_chunk_tag(key, "t", 0, NULL, z, n, tag) == 0 &&
	     rec_open_chunk(key, "t", 0, NULL, z, n, tag, &out) == 0 && out.len == 4096 &&
	     memcmp(out.data, plain, 4096) == 0;
	buf_free(&out);
	return ok ? arg : NULL;
}

static void test_compressor_per_thread(void **state)
{
	uint8_t plain[4096];
	pthread_t t[4];

	(void)state;
	output_of(0, plain, sizeof(plain), 11);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, compress_in_thread, plain), 0);
	for (int i = 0; i < 4; i++) {
		void *r = NULL;

		assert_int_equal(pthread_join(t[i], &r), 0);
		assert_ptr_equal(r, plain);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_raw_chunks, tu_store_setup, tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_writer_big_job, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_raw_chunk_tamper, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test(test_raw_chunk_bounds),
		cmocka_unit_test(test_frames),
		cmocka_unit_test(test_pack_memory),
		cmocka_unit_test(test_compressor_per_thread),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
