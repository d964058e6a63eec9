/* cli/wsin.c, the CLI's reader of the bastion's frames: the same events
 * whatever the reads the stream is cut into (every cut, one byte at a
 * time), a binary message's bytes handed on in place and in order, text
 * gathered whole, control frames, and every frame RFC 6455 forbids a
 * server to send refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/wsin.h"

struct wire {
	uint8_t *p;
	size_t len, cap;
};

static void put(struct wire *w, const void *p, size_t n)
{
	if (w->len + n > w->cap) {
		w->cap = (w->len + n) * 2;
		w->p = realloc(w->p, w->cap);
		assert_non_null(w->p);
	}
	memcpy(w->p + w->len, p, n);
	w->len += n;
}

/* One frame as a server writes it: unmasked, the minimal length form
 * unless long_form forces 64 bits. */
static void frame(struct wire *w, uint8_t b0, const void *payload, size_t n, bool long_form)
{
	uint8_t h[10];
	size_t hl = 2;

	h[0] = b0;
	if (n < 126 && !long_form) {
		h[1] = (uint8_t)n;
	} else if (n < 65536 && !long_form) {
		h[1] = 126;
		h[2] = (uint8_t)(n >> 8);
		h[3] = (uint8_t)n;
		hl = 4;
	} else {
		h[1] = 127;
		for (int i = 0; i < 8; i++)
			h[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
		hl = 10;
	}
	put(w, h, hl);
	put(w, payload, n);
}

/* A binary frame, its payload also appended to want. */
static void bin(struct wire *w, struct wire *want, uint8_t b0, const void *payload, size_t n,
		bool long_form)
{
	frame(w, b0, payload, n, long_form);
	if (n)
		put(want, payload, n);
}

/* What the reader reported, flattened: binary bytes in one run, each
 * other event as a line. */
struct seen {
	struct wire bin;
	struct wire log;
	unsigned binary_events;
	bool error;
};

static void note(struct seen *s, const struct cli_wsin_event *ev)
{
	char line[64];
	int n;

	switch (ev->type) {
	case CLI_WSIN_NONE:
		return;
	case CLI_WSIN_BINARY:
		assert_true(ev->len > 0);
		put(&s->bin, ev->data, ev->len);
		s->binary_events++;
		return;
	case CLI_WSIN_ERROR:
		assert_non_null(ev->why);
		s->error = true;
		put(&s->log, "E|", 2);
		return;
	default:
		break;
	}
	/* Binary bytes before this event are logged where they stood. */
	n = snprintf(line, sizeof(line), "%d:%zu:%u:%zu|", (int)ev->type, s->bin.len,
		     (unsigned)ev->code, ev->len);
	put(&s->log, line, (size_t)n);
	put(&s->log, ev->data, ev->len);
}

/* Feeds in to a fresh reader in reads of step bytes (0: all at once). */
static void run(const struct wire *in, size_t step, struct seen *s)
{
	struct cli_wsin r;
	size_t off = 0;

	memset(&r, 0, sizeof(r));
	memset(s, 0, sizeof(*s));
	while (off < in->len) {
		size_t piece = step && in->len - off > step ? step : in->len - off;
		/* Bounded: each call takes a byte or reports an event. */
		for (size_t guard = 0; piece > 0; guard++) {
			struct cli_wsin_event ev;
			size_t n = cli_wsin_read(&r, in->p + off, piece, &ev);

			assert_true(guard < 4 * in->len + 8);
			assert_true(n <= piece);
			assert_true(n > 0 || ev.type != CLI_WSIN_NONE);
			note(s, &ev);
			off += n;
			piece -= n;
		}
	}
	cli_wsin_free(&r);
}

static void seen_free(struct seen *s)
{
	free(s->bin.p);
	free(s->log.p);
}

static void same_events_whatever_the_cuts(void **state)
{
	struct wire w = { 0 }, want_bin = { 0 };
	uint8_t *big = malloc(70000);
	const char *text = "{\"type\":\"eof\"}";
	struct seen whole, cut;

	(void)state;
	assert_non_null(big);
	for (size_t i = 0; i < 70000; i++)
		big[i] = (uint8_t)(i * 13 + (i >> 8));
	/* Every length form, empty frames, fragments, control frames among
	 * the fragments, a close with a code and a reason at the end. */
	bin(&w, &want_bin, 0x82, big, 1, false);
	bin(&w, &want_bin, 0x82, big, 125, false);
	bin(&w, &want_bin, 0x82, big, 126, false);
	bin(&w, &want_bin, 0x82, big, 16384, false);
	bin(&w, &want_bin, 0x82, big, 0, false);
	bin(&w, &want_bin, 0x82, big, 70000, false);
	bin(&w, &want_bin, 0x82, big, 300, true); /* 64-bit form for a short length */
	frame(&w, 0x81, text, strlen(text), false);
	bin(&w, &want_bin, 0x02, big, 1000, false); /* binary in three fragments */
	frame(&w, 0x89, "pi", 2, false);            /* a ping between them */
	bin(&w, &want_bin, 0x00, big + 1000, 0, false);
	bin(&w, &want_bin, 0x80, big + 1000, 2000, false);
	frame(&w, 0x01, "{\"type\":", 8, false); /* text in two */
	frame(&w, 0x8a, "", 0, false);
	frame(&w, 0x80, "\"warning\"}", 10, false);
	bin(&w, &want_bin, 0x82, big, 5, false);
	frame(&w, 0x88,
	      "\x03\xe8"
	      "bye",
	      5, false);
	frame(&w, 0x82, big, 9, false); /* after the close: not reported */
	run(&w, 0, &whole);
	assert_false(whole.error);
	/* The bytes of every binary frame, in order. */
	assert_int_equal(whole.bin.len, want_bin.len);
	assert_memory_equal(whole.bin.p, want_bin.p, want_bin.len);
	/* The text whole (in place of the eof), the ping, the pong, the
	 * fragmented text, then the close with its code. */
	{
		char want[512];
		int n = snprintf(want, sizeof(want),
				 "%d:%d:0:14|{\"type\":\"eof\"}"
				 "%d:%d:0:2|pi"
				 "%d:%d:0:0|"
				 "%d:%d:0:18|{\"type\":\"warning\"}"
				 "%d:%d:1000:3|bye",
				 CLI_WSIN_TEXT, 1 + 125 + 126 + 16384 + 70000 + 300, CLI_WSIN_PING,
				 1 + 125 + 126 + 16384 + 70000 + 300 + 1000, CLI_WSIN_PONG,
				 1 + 125 + 126 + 16384 + 70000 + 300 + 3000, CLI_WSIN_TEXT,
				 1 + 125 + 126 + 16384 + 70000 + 300 + 3000, CLI_WSIN_CLOSE,
				 1 + 125 + 126 + 16384 + 70000 + 300 + 3000 + 5);

		assert_int_equal(whole.log.len, (size_t)n);
		assert_memory_equal(whole.log.p, want, (size_t)n);
	}
	/* Every read size from 1 byte to past a frame: the same. */
	for (size_t step = 1; step < 20000; step = step < 40 ? step + 1 : step * 3) {
		run(&w, step, &cut);
		assert_false(cut.error);
		assert_int_equal(cut.bin.len, whole.bin.len);
		assert_memory_equal(cut.bin.p, whole.bin.p, whole.bin.len);
		assert_int_equal(cut.log.len, whole.log.len);
		assert_memory_equal(cut.log.p, whole.log.p, whole.log.len);
		seen_free(&cut);
	}
	/* A whole frame in one read is one event, where it lies. */
	{
		struct wire one = { 0 };
		struct cli_wsin r = { 0 };
		struct cli_wsin_event ev;

		frame(&one, 0x82, big, 16384, false);
		assert_int_equal(cli_wsin_read(&r, one.p, one.len, &ev), one.len);
		assert_int_equal(ev.type, CLI_WSIN_BINARY);
		assert_ptr_equal(ev.data, one.p + 4);
		assert_int_equal(ev.len, 16384);
		cli_wsin_free(&r);
		free(one.p);
	}
	seen_free(&whole);
	free(w.p);
	free(want_bin.p);
	free(big);
}

static void refuses_what_a_server_may_not_send(void **state)
{
	static const struct {
		const char *name;
		uint8_t bytes[12];
		size_t len;
	} bad[] = {
		{ "masked", { 0x82, 0x81, 1, 2, 3, 4, 'x' }, 7 },
		{ "reserved bit", { 0xc2, 0x01, 'x' }, 3 },
		{ "unknown opcode", { 0x83, 0x01, 'x' }, 3 },
		{ "control over 125", { 0x89, 126, 0, 126 }, 4 },
		{ "fragmented control", { 0x09, 0x00 }, 2 },
		{ "continuation of nothing", { 0x80, 0x01, 'x' }, 3 },
		{ "message inside a message", { 0x02, 0x01, 'x', 0x81, 0x01, 'y' }, 6 },
		{ "top bit of a 64-bit length", { 0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1 }, 10 },
		{ "text over 1 MiB", { 0x81, 127, 0, 0, 0, 0, 0, 0x10, 0, 1 }, 10 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct wire w = { 0 };
		struct seen s;

		put(&w, bad[i].bytes, bad[i].len);
		put(&w, "\x82\x01z", 3); /* after the error: nothing more */
		for (size_t step = 0; step < 3; step++) {
			run(&w, step, &s);
			if (!s.error)
				fail_msg("not refused: %s (reads of %zu)", bad[i].name, step);
			assert_int_equal(s.log.len, 2); /* the error alone */
			seen_free(&s);
		}
		free(w.p);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(same_events_whatever_the_cuts),
		cmocka_unit_test(refuses_what_a_server_may_not_send),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
