/* A recording's path for what the VM prints (terminal/record.h): any bytes,
 * cut anywhere into two reads, become asciicast lines that are one JSON
 * array each (valid UTF-8: jansson refuses anything else), whose text is
 * the input with nothing but invalid sequences replaced; and search replays
 * those lines without failing. The chunk layer too: those lines sealed
 * (zstd) open back to the same bytes, and the input itself taken as a
 * stored chunk (with a tag that matches, as only a key holder could make)
 * opens or fails cleanly, never past the cap, whatever the codec. Raw
 * events (record_raw.c, what the writer stores now): the same two reads as
 * raw events in two chunks render to the very same lines, and the input
 * taken as a raw chunk renders to lines that are each valid JSON, or is
 * refused with nothing appended. Raw chunks stored as they are (when they
 * do not compress): those two chunks stored raw open back to the same
 * bytes, and a flipped byte in a stored raw chunk fails; the
 * loop's framing (rec_raw_put) makes the same events, and so does its
 * packer (record_pack.c), under a cap too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/err.h"
#include "terminal/record.h"

static void check_line(const char *p, size_t n)
{
	json_t *v = json_loadb(p, n, JSON_ALLOW_NUL, NULL);

	if (!json_is_array(v) || json_array_size(v) != 3 || !json_is_string(json_array_get(v, 2)))
		abort();
	json_decref(v);
}

static const uint8_t key[REC_KEY_BYTES] = { 1, 2, 3 };

static void check_chunks(const uint8_t *data, size_t size, const struct buf *cast)
{
	uint8_t *z = NULL, tag[STORE_REC_TAG_BYTES];
	size_t zlen = 0;
	struct buf back;
	int r;

	buf_init(&back, REC_CHUNK_PLAIN_MAX);
	if (rec_seal_chunk_codec(key, "r", 0, NULL, (const uint8_t *)cast->data, cast->len,
				 REC_CODEC_ZSTD, &z, &zlen, tag) < 0 ||
	    rec_open_chunk(key, "r", 0, NULL, z, zlen, tag, &back) < 0 || back.len != cast->len ||
	    memcmp(back.data, cast->data, cast->len) != 0)
		abort();
	free(z);
	buf_reset(&back);
	rec_chunk_tag(key, "r", 0, NULL, data, size, tag);
	r = rec_open_chunk(key, "r", 0, NULL, data, size, tag, &back);
	if ((r < 0 && back.len) || back.len > REC_CHUNK_PLAIN_MAX)
		abort();
	buf_free(&back);
}

/* Every line of rendered text is JSON: the header an object, events
 * arrays of three. */
static void check_rendered(const struct buf *b)
{
	for (size_t i = 0; i < b->len;) {
		const char *nl = memchr(b->data + i, '\n', b->len - i);
		json_t *v;

		if (!nl)
			abort();
		v = json_loadb(b->data + i, (size_t)(nl - (b->data + i)), JSON_ALLOW_NUL, NULL);
		if (!json_is_object(v))
			check_line(b->data + i, (size_t)(nl - (b->data + i)));
		json_decref(v);
		i = (size_t)(nl - b->data) + 1;
	}
}

/* A raw chunk stored as it is opens to the same bytes; any flipped byte
 * or a cut fails. */
static void check_stored_raw(const struct buf *raw)
{
	uint8_t *c = NULL, tag[STORE_REC_TAG_BYTES];
	size_t clen = 0;
	struct buf back;

	buf_init(&back, REC_CHUNK_PLAIN_MAX);
	if (rec_seal_chunk_codec(key, "r", 0, NULL, (const uint8_t *)raw->data, raw->len,
				 REC_CODEC_RAW, &c, &clen, tag) < 0 ||
	    clen != raw->len || memcmp(c, raw->data, clen) != 0 ||
	    rec_open_chunk(key, "r", 0, NULL, c, clen, tag, &back) < 0 || back.len != raw->len ||
	    memcmp(back.data, raw->data, raw->len) != 0)
		abort();
	buf_reset(&back);
	c[clen / 2] ^= 0x40;
	if (rec_open_chunk(key, "r", 0, NULL, c, clen, tag, &back) != -BERR_INTEGRITY || back.len)
		abort();
	c[clen / 2] ^= 0x40;
	if (rec_open_chunk(key, "r", 0, NULL, c, clen - 1, tag, &back) != -BERR_INTEGRITY ||
	    back.len)
		abort();
	free(c);
	buf_free(&back);
}

/* What the loop writes (rec_raw_put) is what rec_raw_event makes. */
static void check_put(const uint8_t *data, size_t size)
{
	uint8_t *p = malloc(rec_raw_put_max(size));
	size_t n;
	struct buf b;

	buf_init(&b, REC_CHUNK_PLAIN_MAX);
	if (!p || rec_raw_event(&b, 'o', 1234567, data, size) < 0)
		abort();
	n = rec_raw_put(p, true, 'o', 1234567, data, size);
	if (n > rec_raw_put_max(size) || n != b.len || memcmp(p, b.data, n) != 0)
		abort();
	free(p);
	buf_free(&b);
}

static void check_raw(const uint8_t *data, size_t size, size_t cut, const struct buf *cast)
{
	struct rec_render st = { 0 }, st2 = { 0 };
	struct buf a, b, text;
	int r;

	buf_init(&a, REC_CHUNK_PLAIN_MAX);
	buf_init(&b, REC_CHUNK_PLAIN_MAX);
	buf_init(&text, REC_RENDER_MAX);
	if (rec_raw_header(&a, 80, 24, 0) < 0 || rec_raw_event(&a, 'o', 500, data, cut) < 0 ||
	    rec_raw_event(&b, 'o', 1500, data + cut, size - cut) < 0 ||
	    rec_render_chunk(&st, (const uint8_t *)a.data, a.len, &text) < 0 ||
	    rec_render_chunk(&st, (const uint8_t *)b.data, b.len, &text) < 0)
		abort();
	/* The header differs only in TERM ("xterm" above). */
	if (text.len < 20 || cast->len < 20 ||
	    strcmp(strchr(buf_str(&text), '\n'), strchr(buf_str(cast), '\n')) != 0)
		abort();
	check_stored_raw(&a);
	check_stored_raw(&b);
	check_put(data, size);
	buf_reset(&a);
	buf_reset(&text);
	if (buf_append(&a, "\x01", 1) < 0 || buf_append(&a, data, size) < 0)
		abort();
	r = rec_render_chunk(&st2, (const uint8_t *)a.data, a.len, &text);
	if (r < 0 && (r != -BERR_INTEGRITY || text.len))
		abort();
	if (r == 0)
		check_rendered(&text);
	buf_free(&a);
	buf_free(&b);
	buf_free(&text);
}

/* The packer (what the loop does with each read it records): the two
 * reads packed, each chunk opened back with its tag, make the very events
 * rec_raw_event makes (a chunk after the first starts with its own format
 * byte); under a cap the input sets, it never packs past it and ends with
 * its marker. */
static void check_pack(const uint8_t *data, size_t size, size_t cut)
{
	for (int capped = 0; capped < 2; capped++) {
		int64_t max = capped ? 320 + (int64_t)(size ? data[size - 1] : 0) * 4 : 1LL << 40;
		struct rec_pack pk;
		struct rec_job job = { 0 };
		struct rec_packed p;
		struct buf want, got;
		size_t off = 0;
		uint8_t tag[STORE_REC_TAG_BYTES];

		buf_init(&want, 4 * REC_CHUNK_PLAIN_MAX);
		buf_init(&got, 4 * REC_CHUNK_PLAIN_MAX);
		rec_pack_init(&pk, max, 80, 24, 0);
		if (rec_pack_event(&pk, 'o', 500, data, cut) < 0 ||
		    rec_pack_event(&pk, 'o', 1500, data + cut, size - cut) < 0)
			abort();
		rec_pack_take(&pk, &job);
		if (rec_raw_header(&want, 80, 24, 0) < 0 ||
		    rec_raw_event(&want, 'o', 500, data, cut) < 0 ||
		    rec_raw_event(&want, 'o', 1500, data + cut, size - cut) < 0)
			abort();
		while (rec_job_next(&job, &off, &p)) {
			size_t at = got.len;

			if (rec_chunk_tag(key, "r", 0, NULL, p.data, p.len, tag) < 0 ||
			    rec_open_chunk(key, "r", 0, NULL, p.data, p.len, tag, &got) < 0 ||
			    got.len - at != p.plain || (uint8_t)got.data[at] != REC_RAW_V1)
				abort();
			if (at) { /* one format byte for the whole */
				memmove(got.data + at, got.data + at + 1, got.len - at - 1);
				got.len--;
			}
		}
		if (off != job.len || (int64_t)got.len != pk.total || job.total != pk.total)
			abort();
		if (!capped && (got.len != want.len || memcmp(got.data, want.data, want.len) != 0))
			abort();
		if (capped && (pk.total > max || (job.truncated && !pk.stopped)))
			abort();
		rec_pack_free(&pk);
		free(job.buf);
		buf_free(&want);
		buf_free(&got);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf out;
	struct rec_search *rs = NULL;
	uint8_t carry[4];
	size_t nc = 0, cut = size ? data[0] % (size + 1) : 0, start;
	json_t *hits;

	buf_init(&out, 1 << 20);
	if (rec_cast_header(&out, 80, 24, 0, "xterm") < 0)
		abort();
	start = out.len;
	if (rec_cast_event(&out, 0.5, 'o', data, cut, carry, &nc) < 0)
		abort();
	check_line(out.data + start, out.len - start - 1);
	start = out.len;
	if (rec_cast_event(&out, 1.5, 'o', data + cut, size - cut, carry, &nc) < 0)
		abort();
	check_line(out.data + start, out.len - start - 1);
	if (nc > 3)
		abort();
	if (rec_search_new(size > 2 ? "ab" : "x", 10, &rs) < 0)
		abort();
	if (rec_search_feed(rs, buf_str(&out), out.len) < 0)
		abort();
	hits = rec_search_finish(rs);
	if (!json_is_array(hits) || json_array_size(hits) > 10)
		abort();
	json_decref(hits);
	rec_search_free(rs);
	check_chunks(data, size, &out);
	check_raw(data, size, cut, &out);
	check_pack(data, size, cut);
	buf_free(&out);
	return 0;
}
