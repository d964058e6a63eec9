/* The WebSocket frame reader (src/server/wsframe.c) on any bytes a browser
 * could send. The first input byte picks where the stream is cut into
 * reads; the events must be the same as when it comes whole (the reader
 * must not depend on where reads fall), every event's data must lie in
 * bounds (ASan), messages stay within WSR_MAX_MSG, text is UTF-8 whole. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/wsframe.h"
#include "wsfuzz.h"

static struct digest run(const uint8_t *in, size_t len, unsigned step_seed)
{
	struct digest d = DIGEST_INIT;
	uint8_t *copy = malloc(len ? len : 1);
	struct wsr r;
	size_t off = 0;
	unsigned x = step_seed | 1;

	memset(&r, 0, sizeof(r));
	memcpy(copy, in, len);
	while (off < len) {
		/* Reads of 1..64 bytes (or all of it, step_seed 0). */
		size_t piece = next_piece(&x, step_seed, len - off), n;
		struct wsr_event ev;

		/* The pump offers what the reader left, with the next read. */
		while (piece > 0) {
			n = wsr_read(&r, copy + off, piece, &ev);
			if (n > piece || (n == 0 && ev.type == WSR_NONE))
				abort(); /* out of bounds, or no progress */
			if (ev.type != WSR_NONE)
				digest_event(&d, ev.type, ev.code, ev.data, ev.len, WSR_MAX_MSG,
					     ev.type == WSR_PING || ev.type == WSR_PONG,
					     ev.type == WSR_CLOSE);
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
	return whole_and_cut(data, size, run);
}
