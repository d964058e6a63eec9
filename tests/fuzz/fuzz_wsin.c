/* The CLI's reader of the bastion's frames (src/cli/wsin.c) on any bytes a
 * server could send. The first input byte picks where the stream is cut
 * into reads; the events must be the same as when it comes whole (binary
 * bytes in one run, wherever the reads fall), every event's data must lie
 * in bounds (ASan), control payloads ≤ 125 bytes, text within
 * CLI_WSIN_MSG_MAX. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/wsin.h"

/* A running digest of the events, enough to tell two runs apart: binary
 * bytes hashed as one run (their cuts differ), other events with the
 * count of binary bytes before them. */
struct digest {
	uint64_t h, bin;
	unsigned events;
};

static void mix(struct digest *d, const struct cli_wsin_event *ev)
{
	if (ev->type == CLI_WSIN_NONE)
		return;
	if (ev->type == CLI_WSIN_BINARY) {
		if (ev->len == 0)
			abort();
		for (size_t i = 0; i < ev->len; i++)
			d->bin = (d->bin ^ ev->data[i]) * 0x100000001b3ull;
		return;
	}
	d->events++;
	d->h = (d->h ^ (uint64_t)ev->type) * 0x100000001b3ull;
	d->h = (d->h ^ d->bin) * 0x100000001b3ull;
	d->h = (d->h ^ ev->code) * 0x100000001b3ull;
	d->h = (d->h ^ ev->len) * 0x100000001b3ull;
	for (size_t i = 0; i < ev->len; i++)
		d->h = (d->h ^ ev->data[i]) * 0x100000001b3ull;
	if (ev->len > CLI_WSIN_MSG_MAX)
		abort();
	if ((ev->type == CLI_WSIN_PING || ev->type == CLI_WSIN_PONG) && ev->len > 125)
		abort();
	if (ev->type == CLI_WSIN_CLOSE && ev->len > 123)
		abort();
}

static struct digest run(const uint8_t *in, size_t len, unsigned step_seed)
{
	struct digest d = { 0xcbf29ce484222325ull, 0xcbf29ce484222325ull, 0 };
	uint8_t *copy = malloc(len ? len : 1);
	struct cli_wsin r;
	size_t off = 0;
	unsigned x = step_seed | 1;

	memset(&r, 0, sizeof(r));
	memcpy(copy, in, len);
	while (off < len) {
		/* Reads of 1..64 bytes (or all of it, step_seed 0), each in a
		 * buffer of its own so that ASan sees a read past it. */
		size_t piece = len - off, n;
		uint8_t *p;

		if (step_seed) {
			x = x * 1103515245u + 12345u;
			piece = 1 + (x >> 16) % 64;
			if (piece > len - off)
				piece = len - off;
		}
		p = malloc(piece);
		memcpy(p, copy + off, piece);
		for (size_t at = 0; at < piece;) {
			struct cli_wsin_event ev;

			n = cli_wsin_read(&r, p + at, piece - at, &ev);
			if (n > piece - at || (n == 0 && ev.type == CLI_WSIN_NONE))
				abort(); /* out of bounds, or no progress */
			mix(&d, &ev);
			at += n;
		}
		free(p);
		off += piece;
	}
	cli_wsin_free(&r);
	free(copy);
	return d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct digest whole, cut;

	if (size < 1)
		return 0;
	whole = run(data + 1, size - 1, 0);
	cut = run(data + 1, size - 1, data[0] + 1u);
	if (whole.h != cut.h || whole.bin != cut.bin || whole.events != cut.events)
		abort();
	return 0;
}
