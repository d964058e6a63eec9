/* The WebSocket frame reader (src/server/wsframe.c) on any bytes a browser
 * could send. The first input byte picks where the stream is cut into
 * reads; the events must be the same as when it comes whole (the reader
 * must not depend on where reads fall), every event's data must lie in
 * bounds (ASan), messages stay within WSR_MAX_MSG, text is UTF-8 whole. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/wsframe.h"

/* A running digest of the events, enough to tell two runs apart. */
struct digest {
	uint64_t h;
	unsigned events;
};

static void mix(struct digest *d, const struct wsr_event *ev)
{
	if (ev->type == WSR_NONE)
		return;
	d->events++;
	d->h = (d->h ^ (uint64_t)ev->type) * 0x100000001b3ull;
	d->h = (d->h ^ ev->code) * 0x100000001b3ull;
	d->h = (d->h ^ ev->len) * 0x100000001b3ull;
	for (size_t i = 0; i < ev->len; i++)
		d->h = (d->h ^ ev->data[i]) * 0x100000001b3ull;
	if (ev->len > WSR_MAX_MSG)
		abort();
	if ((ev->type == WSR_PING || ev->type == WSR_PONG) && ev->len > 125)
		abort();
	if (ev->type == WSR_CLOSE && ev->len > 123)
		abort();
}

static struct digest run(const uint8_t *in, size_t len, unsigned step_seed)
{
	struct digest d = { 0xcbf29ce484222325ull, 0 };
	uint8_t *copy = malloc(len ? len : 1);
	struct wsr r;
	size_t off = 0;
	unsigned x = step_seed | 1;

	memset(&r, 0, sizeof(r));
	memcpy(copy, in, len);
	while (off < len) {
		/* Reads of 1..64 bytes (or all of it, step_seed 0). */
		size_t piece = len - off, n;
		struct wsr_event ev;

		if (step_seed) {
			x = x * 1103515245u + 12345u;
			piece = 1 + (x >> 16) % 64;
			if (piece > len - off)
				piece = len - off;
		}
		/* The pump offers what the reader left, with the next read. */
		while (piece > 0) {
			n = wsr_read(&r, copy + off, piece, &ev);
			if (n > piece || (n == 0 && ev.type == WSR_NONE))
				abort(); /* out of bounds, or no progress */
			mix(&d, &ev);
			off += n;
			piece -= n;
		}
	}
	wsr_free(&r);
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
	if (whole.h != cut.h || whole.events != cut.events)
		abort();
	return 0;
}
