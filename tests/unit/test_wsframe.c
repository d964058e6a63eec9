/* Tests for src/server/wsframe.c, the WebSocket frame reader: every frame
 * kind and every rule, each stream fed whole, split in two at every byte
 * boundary, and one byte at a time; the result must not depend on where
 * the reads fell. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/util.h"
#include "server/wsframe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t key[4] = { 0x37, 0xfa, 0x21, 0x3d };

/* Appends one masked frame; len_form 0 picks the shortest length form,
 * 126 or 127 forces that one (even when not minimal). */
static size_t frame(uint8_t *out, int fin, int rsv, int op, int masked, const void *payload,
		    size_t n, int len_form)
{
	size_t h = 0;
	int form = len_form ? len_form : n < 126 ? 0 : n < 65536 ? 126 : 127;

	out[h++] = (uint8_t)((fin ? 0x80 : 0) | (rsv << 4) | op);
	if (form == 0) {
		out[h++] = (uint8_t)((masked ? 0x80 : 0) | n);
	} else if (form == 126) {
		out[h++] = (uint8_t)((masked ? 0x80 : 0) | 126);
		out[h++] = (uint8_t)(n >> 8);
		out[h++] = (uint8_t)n;
	} else {
		out[h++] = (uint8_t)((masked ? 0x80 : 0) | 127);
		for (int j = 7; j >= 0; j--)
			out[h++] = (uint8_t)((uint64_t)n >> (8 * j));
	}
	if (masked) {
		memcpy(out + h, key, 4);
		h += 4;
	}
	for (size_t i = 0; i < n; i++)
		out[h + i] = (uint8_t)(((const uint8_t *)payload)[i] ^ (masked ? key[i & 3] : 0));
	return h + n;
}

/* What the reader reported, as text: "T:hi B:3 P:x C1000:bye E1002". */
struct log {
	char s[4096];
	size_t len;
};

static void log_event(struct log *l, const struct wsr_event *ev)
{
	char one[256];
	int n = 0;

	switch (ev->type) {
	case WSR_NONE:
		return;
	case WSR_TEXT:
		n = snprintf(one, sizeof(one), "T:%.*s ", ev->len > 40 ? 40 : (int)ev->len,
			     (const char *)ev->data);
		break;
	case WSR_BINARY: {
		unsigned sum = 0;

		for (size_t i = 0; i < ev->len; i++)
			sum = sum * 31 + ev->data[i];
		n = snprintf(one, sizeof(one), "B:%zu/%08x ", ev->len, sum);
		break;
	}
	case WSR_PING:
		n = snprintf(one, sizeof(one), "P:%.*s ", (int)ev->len, (const char *)ev->data);
		break;
	case WSR_PONG:
		n = snprintf(one, sizeof(one), "O:%.*s ", (int)ev->len, (const char *)ev->data);
		break;
	case WSR_CLOSE:
		n = snprintf(one, sizeof(one), "C%u:%.*s ", ev->code, (int)ev->len,
			     (const char *)ev->data);
		break;
	case WSR_ERROR:
		n = snprintf(one, sizeof(one), "E%u ", ev->code);
		break;
	}
	assert_true(l->len + (size_t)n < sizeof(l->s));
	memcpy(l->s + l->len, one, (size_t)n);
	l->len += (size_t)n;
	l->s[l->len] = '\0';
}

/* Feeds stream[0..len) in pieces cut at cuts[] (ascending), as the pump
 * would: each piece until the reader took all of it. */
static void feed(const uint8_t *stream, size_t len, const size_t *cuts, size_t ncuts, struct log *l)
{
	uint8_t *copy = malloc(len ? len : 1);
	struct wsr r;
	size_t from = 0;

	memset(&r, 0, sizeof(r));
	memcpy(copy, stream, len);
	l->len = 0;
	l->s[0] = '\0';
	for (size_t k = 0; k <= ncuts; k++) {
		size_t to = k < ncuts ? cuts[k] : len, off = from;
		int guard = 0;

		while (off < to) {
			struct wsr_event ev;
			size_t n = wsr_read(&r, copy + off, to - off, &ev);

			assert_true(n <= to - off);
			/* Progress or an event, each call: no loop forever. */
			assert_true(n > 0 || ev.type != WSR_NONE);
			assert_true(++guard < 1000000);
			log_event(l, &ev);
			if (k & 1)
				wsr_release(&r); /* as the server does; or left to the next read */
			off += n;
		}
		from = to;
	}
	wsr_free(&r);
	free(copy);
}

/* The same result whole, cut once anywhere, and byte by byte. */
static void expect(const uint8_t *stream, size_t len, const char *want)
{
	struct log l;
	size_t cut;

	feed(stream, len, NULL, 0, &l);
	assert_string_equal(l.s, want);
	for (cut = 1; cut < len; cut++) {
		feed(stream, len, &cut, 1, &l);
		if (strcmp(l.s, want) != 0)
			fail_msg("cut at %zu: got \"%s\", want \"%s\"", cut, l.s, want);
	}
	if (len <= 200000) {
		size_t *cuts = malloc(len * sizeof(*cuts));

		for (cut = 1; cut < len; cut++)
			cuts[cut - 1] = cut;
		feed(stream, len, cuts, len ? len - 1 : 0, &l);
		free(cuts);
		assert_string_equal(l.s, want);
	}
}

static void unmask_matches_bytewise_at_every_offset_and_length(void **state)
{
	uint8_t a[80], b[80];

	for (uint64_t off = 0; off < 9; off++) {
		for (size_t n = 0; n <= 70; n++) {
			for (size_t start = 0; start < 8; start++) {
				for (size_t i = 0; i < sizeof(a); i++)
					a[i] = b[i] = (uint8_t)(i * 7 + 1);
				util_xor_key(a + start, n, key, off);
				for (size_t i = 0; i < n; i++)
					b[start + i] ^= key[(off + i) & 3];
				assert_memory_equal(a, b, sizeof(a));
			}
		}
	}
}

static void every_frame_kind_at_every_split(void **state)
{
	static uint8_t s[300000];
	static uint8_t big[70000];
	size_t n = 0;

	n += frame(s + n, 1, 0, 1, 1, "hello", 5, 0);
	n += frame(s + n, 1, 0, 2, 1, "\x00\x01\x02", 3, 0);
	n += frame(s + n, 1, 0, 1, 1, "", 0, 0);
	n += frame(s + n, 1, 0, 9, 1, "pi", 2, 0);
	n += frame(s + n, 1, 0, 10, 1, "po", 2, 0);
	/* Fragmented text, a ping between its fragments, a character cut
	 * across fragments (é = c3 a9). */
	n += frame(s + n, 0, 0, 1, 1, "ab\xc3", 3, 0);
	n += frame(s + n, 1, 0, 9, 1, "mid", 3, 0);
	n += frame(s + n, 0, 0, 0, 1, "\xa9", 1, 0);
	n += frame(s + n, 1, 0, 0, 1, "cd", 2, 0);
	n += frame(s + n, 1, 0, 1, 1, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14, 0);
	n += frame(s + n, 1, 0, 1, 1, "ok", 2, 0);
	n += frame(s + n, 1, 0, 8, 1,
		   "\x03\xe8"
		   "bye",
		   5, 0);
	/* After the close, nothing more is read. */
	n += frame(s + n, 1, 0, 1, 1, "late", 4, 0);
	expect(s, n,
	       "T:hello B:3/00000021 T: P:pi O:po P:mid T:ab\xc3\xa9"
	       "cd "
	       "T:caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 T:ok C1000:bye ");

	/* The 16- and 64-bit length forms; one byte at a time is skipped
	 * past 200000 bytes (the two-piece cuts cover every boundary). */
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 13 + i / 251);
	n = frame(s, 1, 0, 2, 1, big, 300, 0);
	n += frame(s + n, 1, 0, 2, 1, big, 65535, 0);
	n += frame(s + n, 1, 0, 2, 1, big, sizeof(big), 0);
	n += frame(s + n, 0, 0, 2, 1, big, 1000, 0);
	n += frame(s + n, 1, 0, 0, 1, big + 1000, 2000, 0);
	n += frame(s + n, 1, 0, 8, 1, "", 0, 0);
	{
		struct log l;
		char want[256];
		unsigned sums[4] = { 0, 0, 0, 0 };
		size_t lens[4] = { 300, 65535, sizeof(big), 3000 };

		for (int k = 0; k < 4; k++)
			for (size_t i = 0; i < lens[k]; i++)
				sums[k] = sums[k] * 31 + big[i];
		snprintf(want, sizeof(want),
			 "B:300/%08x B:65535/%08x B:70000/%08x B:3000/%08x C0: ", sums[0], sums[1],
			 sums[2], sums[3]);
		feed(s, n, NULL, 0, &l);
		assert_string_equal(l.s, want);
		for (size_t cut = 1; cut < n; cut += 1) {
			feed(s, n, &cut, 1, &l);
			if (strcmp(l.s, want) != 0)
				fail_msg("cut at %zu: got \"%s\"", cut, l.s);
			if (cut > 400 && cut < n - 400)
				cut += 97; /* the middle of a payload: sampled */
		}
	}
}

/* A stream that ends in a protocol error: the error at every split, and
 * what came before it. */
static void rule(const uint8_t *pre, size_t prelen, const uint8_t *bad, size_t badlen,
		 const char *want)
{
	static uint8_t s[2 * 1024 * 1024];

	memcpy(s, pre, prelen);
	memcpy(s + prelen, bad, badlen);
	/* Bytes after the error are not read as frames. */
	s[prelen + badlen] = 0x81;
	s[prelen + badlen + 1] = 0x80;
	memset(s + prelen + badlen + 2, 0, 4);
	if (prelen + badlen < 4096) {
		expect(s, prelen + badlen + 6, want);
	} else {
		struct log l;

		feed(s, prelen + badlen + 6, NULL, 0, &l);
		assert_string_equal(l.s, want);
	}
}

static void every_rule_closes_with_its_code(void **state)
{
	static uint8_t big[WSR_MAX_MSG + 1];
	uint8_t f[300], g[300], pre[64];
	size_t n, m, p = frame(pre, 1, 0, 1, 1, "ok", 2, 0);

	/* Reserved bits: no extension was negotiated. */
	for (int rsv = 1; rsv < 8; rsv++) {
		n = frame(f, 1, rsv, 1, 1, "x", 1, 0);
		rule(pre, p, f, n, "T:ok E1002 ");
	}
	/* Opcodes 3-7 and 11-15 are reserved. */
	for (int op = 3; op < 16; op++) {
		if (op >= 8 && op <= 10)
			continue;
		n = frame(f, 1, 0, op, 1, "x", 1, 0);
		rule(pre, p, f, n, "T:ok E1002 ");
	}
	/* A client's frames are masked, every kind. */
	for (int op = 0; op < 11; op++) {
		if (op > 2 && op < 8)
			continue;
		n = frame(f, 1, 0, op, 0, "x", op == 8 ? 0 : 1, 0);
		rule(pre, p, f, n, "T:ok E1002 ");
	}
	/* Control frames: at most 125 bytes, never fragmented. */
	memset(g, 'a', sizeof(g));
	for (int op = 8; op <= 10; op++) {
		n = frame(f, 1, 0, op, 1, g, 126, 0);
		rule(pre, p, f, n, "T:ok E1002 ");
		n = frame(f, 0, 0, op, 1, "\x03\xe8", 2, 0);
		rule(pre, p, f, n, "T:ok E1002 ");
	}
	n = frame(f, 1, 0, 9, 1, g, 125, 0);
	n += frame(f + n, 1, 0, 1, 1, "after", 5, 0);
	{
		char want[200];

		snprintf(want, sizeof(want), "T:ok P:%.125s T:after T: ", (const char *)g);
		rule(pre, p, f, n, want);
	}
	/* Lengths in their shortest form, and below 2^63. */
	n = frame(f, 1, 0, 2, 1, "x", 1, 126);
	rule(pre, p, f, n, "T:ok E1002 ");
	n = frame(f, 1, 0, 2, 1, g, 125, 126);
	rule(pre, p, f, n, "T:ok E1002 ");
	n = frame(f, 1, 0, 2, 1, g, 200, 127);
	rule(pre, p, f, n, "T:ok E1002 ");
	n = frame(f, 1, 0, 2, 1, "", 0, 127);
	f[2] = 0x80; /* 2^63 and up */
	rule(pre, p, f, n, "T:ok E1002 ");
	/* Fragments: a continuation needs a message, a message cannot start
	 * inside another. */
	n = frame(f, 1, 0, 0, 1, "x", 1, 0);
	rule(pre, p, f, n, "T:ok E1002 ");
	n = frame(f, 0, 0, 1, 1, "x", 1, 0);
	n += frame(f + n, 1, 0, 2, 1, "y", 1, 0);
	rule(pre, p, f, n, "T:ok E1002 ");
	n = frame(f, 0, 0, 2, 1, "x", 1, 0);
	n += frame(f + n, 0, 0, 1, 1, "y", 1, 0);
	rule(pre, p, f, n, "T:ok E1002 ");
	/* Size: one frame over, or fragments that add up to over. The
	 * header alone is refused: the payload never has to come. */
	n = frame(f, 1, 0, 2, 1, "", 0, 127);
	f[2 + 5] = 0x10;
	f[2 + 7] = 0x01; /* 1 MiB + 1 */
	rule(pre, p, f, 14, "T:ok E1009 ");
	n = frame(f, 1, 0, 2, 1, "", 0, 127);
	memset(f + 2, 0x7f, 1); /* 2^63 - ... */
	rule(pre, p, f, 14, "T:ok E1009 ");
	memset(big, 'b', sizeof(big));
	{
		static uint8_t s[WSR_MAX_MSG + 64];
		struct log l;

		n = frame(s, 0, 0, 2, 1, big, WSR_MAX_MSG / 2, 0);
		n += frame(s + n, 1, 0, 0, 1, big, WSR_MAX_MSG / 2 + 1, 0);
		rule(pre, p, s, n, "T:ok E1009 ");
		/* Exactly at the cap is fine. */
		n = frame(s, 0, 0, 2, 1, big, WSR_MAX_MSG / 2, 0);
		n += frame(s + n, 1, 0, 0, 1, big, WSR_MAX_MSG / 2, 0);
		feed(s, n, NULL, 0, &l);
		assert_memory_equal(l.s, "B:1048576/", 10);
	}
	/* Text is UTF-8: overlong, surrogate, past U+10FFFF, a stray
	 * continuation, a bad byte, cut off at the end, cut off before a
	 * new character. */
	{
		static const char *const bad[] = { "\xc0\x80",
						   "\xc1\xbf",
						   "\xe0\x80\xaf",
						   "\xed\xa0\x80",
						   "\xf0\x80\x80\x80",
						   "\xf4\x90\x80\x80",
						   "\xf5\x80\x80\x80",
						   "\x80",
						   "a\xff",
						   "\xe2\x82",
						   "\xc3\x61",
						   "\xf0\x9f\x98" };

		for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
			n = frame(f, 1, 0, 1, 1, bad[k], strlen(bad[k]), 0);
			rule(pre, p, f, n, "T:ok E1007 ");
			/* The same, the last fragment of a message. */
			n = frame(f, 0, 0, 1, 1, "z", 1, 0);
			n += frame(f + n, 1, 0, 0, 1, bad[k], strlen(bad[k]), 0);
			rule(pre, p, f, n, "T:ok E1007 ");
		}
		/* Binary is not checked. */
		n = frame(f, 1, 0, 2, 1, "\xc0\x80", 2, 0);
		rule(pre, p, f, n, "T:ok B:2/000017c0 T: ");
	}
	/* Close: a one-byte body, codes that never go on the wire, a reason
	 * that is not UTF-8. */
	n = frame(f, 1, 0, 8, 1, "\x03", 1, 0);
	rule(pre, p, f, n, "T:ok E1002 ");
	{
		static const uint16_t codes[] = {
			0, 999, 1004, 1005, 1006, 1012, 1015, 2999, 5000
		};

		for (size_t k = 0; k < sizeof(codes) / sizeof(codes[0]); k++) {
			uint8_t body[2] = { (uint8_t)(codes[k] >> 8), (uint8_t)codes[k] };

			n = frame(f, 1, 0, 8, 1, body, 2, 0);
			rule(pre, p, f, n, "T:ok E1002 ");
		}
	}
	n = frame(f, 1, 0, 8, 1,
		  "\x0f\xa0"
		  "\xc3",
		  3, 0);
	rule(pre, p, f, n, "T:ok E1007 ");
	n = frame(f, 1, 0, 8, 1,
		  "\x0b\xb8"
		  "app",
		  5, 0);
	rule(pre, p, f, n, "T:ok C3000:app ");
	m = frame(f, 1, 0, 8, 1, "\x03\xf3", 2, 0);
	rule(pre, p, f, m, "T:ok C1011: ");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(unmask_matches_bytewise_at_every_offset_and_length),
		cmocka_unit_test(every_frame_kind_at_every_split),
		cmocka_unit_test(every_rule_closes_with_its_code),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
