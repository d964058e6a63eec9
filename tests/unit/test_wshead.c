/* core/wshead.c, the WebSocket frame header both readers share: every
 * pattern of the first two bytes in both directions (and with and without
 * the shortest-length rule), each extended length at its edges, fed whole
 * and cut at every byte, against the rules of RFC 6455 §5.2 written out
 * again here; then the fragment rules and the size cap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/wshead.h"

/* What RFC 6455 says of a header, in the order the reader checks it. */
static enum wsh_result rfc(const uint8_t *b, unsigned flags, uint64_t plen)
{
	uint8_t op = b[0] & 0x0f, l7 = b[1] & 0x7f;
	bool masked = b[1] & 0x80;

	if (b[0] & 0x70)
		return WSH_RESERVED;
	if (!(op <= 2 || (op >= 8 && op <= 10)))
		return WSH_OPCODE;
	if ((flags & WSH_MASKED) && !masked)
		return WSH_UNMASKED;
	if (!(flags & WSH_MASKED) && masked)
		return WSH_MASK_FORBIDDEN;
	if (op >= 8 && (!(b[0] & 0x80) || l7 > 125))
		return WSH_CONTROL;
	if (l7 == 127 && plen >= (1ull << 63))
		return WSH_LEN_TOP_BIT;
	if ((flags & WSH_MINIMAL) && ((l7 == 126 && plen < 126) || (l7 == 127 && plen < 65536)))
		return WSH_LEN_FORM;
	return WSH_DONE;
}

/* Feeds hdr[0..n) (then a byte of the next frame) in pieces of step bytes
 * (0: whole); the result, and the parsed header in *out. */
static enum wsh_result feed(const uint8_t *hdr, size_t n, unsigned flags, size_t step,
			    struct wsh *out)
{
	struct wsh h;
	uint8_t in[16];
	size_t off = 0, took;
	enum wsh_result res = WSH_MORE;

	memset(&h, 0, sizeof(h));
	memcpy(in, hdr, n);
	in[n] = 0xee; /* not the header's: never taken */
	while (res == WSH_MORE && off < n) {
		size_t piece = step && step < n - off ? step : n + 1 - off;

		res = wsh_read(&h, flags, in + off, piece, &took);
		assert_true(took <= piece);
		assert_true(took > 0);
		off += took;
	}
	/* An error in the first two bytes is seen with them, before the
	 * length comes; a whole header is taken, nothing past it. */
	if (res >= WSH_RESERVED && res <= WSH_CONTROL)
		assert_int_equal(off, 2);
	else
		assert_int_equal(off, n);
	if (res == WSH_DONE)
		assert_int_equal(h.len, 0); /* the next call starts the next header */
	*out = h;
	return res;
}

static void every_first_two_bytes_both_directions(void **state)
{
	static const uint64_t l16[] = { 0, 125, 126, 65535 };
	static const uint64_t l64[] = { 0,          125,       65535, 65536, (1ull << 63) - 1,
					1ull << 63, UINT64_MAX };
	static const uint8_t key[4] = { 0x37, 0xfa, 0x21, 0x3d };
	unsigned counts[WSH_TOO_BIG + 1] = { 0 };

	(void)state;
	for (unsigned flags = 0; flags < 4; flags++) {
		for (unsigned b01 = 0; b01 < 65536; b01++) {
			uint8_t l7 = b01 & 0x7f;
			const uint64_t *lens = l7 == 126 ? l16 : l64;
			size_t nlens = l7 == 126 ? 4 : l7 == 127 ? 7 : 1;

			for (size_t k = 0; k < nlens; k++) {
				uint8_t hdr[14] = { (uint8_t)(b01 >> 8), (uint8_t)b01 };
				uint64_t plen = l7 < 126 ? l7 : lens[k];
				size_t n = 2, ext = l7 == 126 ? 2 : l7 == 127 ? 8 : 0;
				enum wsh_result want = rfc(hdr, flags, plen), got;
				struct wsh h, h1;

				for (size_t j = 0; j < ext; j++)
					hdr[n++] = (uint8_t)(plen >> (8 * (ext - 1 - j)));
				if (hdr[1] & 0x80) {
					memcpy(hdr + n, key, 4);
					n += 4;
				}
				got = feed(hdr, n, flags, 0, &h);
				if (got != want)
					fail_msg("%02x %02x len %llu flags %u: got %d, want %d",
						 hdr[0], hdr[1], (unsigned long long)plen, flags,
						 got, want);
				counts[got]++;
				/* Byte by byte, and two at a time: the same. */
				assert_int_equal(feed(hdr, n, flags, 1, &h1), want);
				assert_int_equal(feed(hdr, n, flags, 2, &h1), want);
				if (got != WSH_DONE)
					continue;
				assert_int_equal(h.fin, hdr[0] >> 7);
				assert_int_equal(h.opcode, hdr[0] & 0x0f);
				assert_true(h.plen == plen);
				if (flags & WSH_MASKED)
					assert_memory_equal(h.mask, key, 4);
				assert_memory_equal(&h1.plen, &h.plen, sizeof(h.plen));
				assert_memory_equal(h1.mask, h.mask, 4);
			}
		}
	}
	/* Every outcome came up: the loops reached each rule. */
	for (int r = WSH_DONE; r <= WSH_LEN_TOP_BIT; r++)
		if (r != WSH_MORE && counts[r] == 0)
			fail_msg("never saw %d", r);
}

static void two_headers_in_a_row_and_a_short_input(void **state)
{
	/* A ping header (masked), then a binary one: the first call stops at
	 * the end of the first. */
	const uint8_t in[] = { 0x89, 0x80, 1, 2, 3, 4, 0x82, 0xfe, 0x01, 0x00, 5, 6, 7, 8 };
	struct wsh h;
	size_t took;

	(void)state;
	memset(&h, 0, sizeof(h));
	assert_int_equal(wsh_read(&h, WSH_MASKED, in, sizeof(in), &took), WSH_DONE);
	assert_int_equal(took, 6);
	assert_int_equal(h.opcode, WSH_OP_PING);
	assert_true(h.plen == 0);
	assert_int_equal(wsh_read(&h, WSH_MASKED, in + 6, 3, &took), WSH_MORE);
	assert_int_equal(took, 3);
	assert_int_equal(wsh_read(&h, WSH_MASKED, in + 9, 0, &took), WSH_MORE);
	assert_int_equal(took, 0);
	assert_int_equal(wsh_read(&h, WSH_MASKED, in + 9, 5, &took), WSH_DONE);
	assert_int_equal(took, 5);
	assert_int_equal(h.opcode, WSH_OP_BINARY);
	assert_true(h.plen == 256);
	assert_memory_equal(h.mask, "\5\6\7\x8", 4);
}

static void fragments_and_the_cap(void **state)
{
	static const struct {
		uint8_t opcode, msg_op;
		uint64_t msg_len, plen, cap;
		enum wsh_result want;
	} cases[] = {
		{ WSH_OP_TEXT, 0, 0, 10, 100, WSH_DONE },
		{ WSH_OP_BINARY, 0, 0, 100, 100, WSH_DONE }, /* at the cap */
		{ WSH_OP_BINARY, 0, 0, 101, 100, WSH_TOO_BIG },
		{ WSH_OP_CONT, 0, 0, 1, 100, WSH_ORPHAN },
		{ WSH_OP_CONT, WSH_OP_TEXT, 60, 40, 100, WSH_DONE },
		{ WSH_OP_CONT, WSH_OP_TEXT, 60, 41, 100, WSH_TOO_BIG },
		{ WSH_OP_CONT, WSH_OP_BINARY, 100, 0, 100, WSH_DONE },
		{ WSH_OP_CONT, WSH_OP_BINARY, 0, (1ull << 63) - 1, UINT64_MAX, WSH_DONE },
		{ WSH_OP_CONT, WSH_OP_BINARY, 200, 0, 100, WSH_TOO_BIG },
		{ WSH_OP_TEXT, WSH_OP_TEXT, 0, 1, 100, WSH_NESTED },
		{ WSH_OP_BINARY, WSH_OP_TEXT, 0, 1, 100, WSH_NESTED },
		{ WSH_OP_TEXT, WSH_OP_BINARY, 0, 1, 100, WSH_NESTED },
		/* A new message starts from nothing, whatever came before. */
		{ WSH_OP_TEXT, 0, 99, 100, 100, WSH_DONE },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct wsh h = { .opcode = cases[i].opcode, .plen = cases[i].plen };
		struct wsh_msg m = { .op = cases[i].msg_op, .len = cases[i].msg_len };

		assert_int_equal(wsh_data(&h, &m, cases[i].cap), cases[i].want);
		/* A new message starts: its opcode, nothing gathered yet. */
		if (cases[i].want == WSH_DONE) {
			assert_int_equal(m.op, h.opcode ? h.opcode : cases[i].msg_op);
			assert_int_equal(m.len, h.opcode ? 0 : cases[i].msg_len);
		}
	}
	/* Every rule has a sentence of its own. */
	for (int r = WSH_RESERVED; r <= WSH_TOO_BIG; r++) {
		assert_string_not_equal(wsh_why((enum wsh_result)r), "no error");
		for (int q = WSH_RESERVED; q < r; q++)
			assert_string_not_equal(wsh_why((enum wsh_result)q),
						wsh_why((enum wsh_result)r));
	}
	assert_string_equal(wsh_why(WSH_DONE), "no error");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_first_two_bytes_both_directions),
		cmocka_unit_test(two_headers_in_a_row_and_a_short_input),
		cmocka_unit_test(fragments_and_the_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
