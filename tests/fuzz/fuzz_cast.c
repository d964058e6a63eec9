/* A recording's path for what the VM prints (terminal/record.h): any bytes,
 * cut anywhere into two reads, become asciicast lines that are one JSON
 * array each (valid UTF-8: jansson refuses anything else), whose text is
 * the input with nothing but invalid sequences replaced; and search replays
 * those lines without failing. The chunk layer too: those lines sealed
 * (zstd) open back to the same bytes, and the input itself taken as a
 * stored chunk (with a tag that matches, as only a key holder could make)
 * opens or fails cleanly, never past the cap, whatever the codec. */
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
	if (rec_seal_chunk(key, "r", 0, NULL, (const uint8_t *)cast->data, cast->len, &z, &zlen,
			   tag) < 0 ||
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
	buf_free(&out);
	return 0;
}
