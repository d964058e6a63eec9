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
#include "wsfuzz.h"

static struct digest run(const uint8_t *in, size_t len, unsigned step_seed)
{
	struct digest d = DIGEST_INIT;
	uint8_t *copy = malloc(len ? len : 1);
	struct cli_wsin r;
	size_t off = 0;
	unsigned x = step_seed | 1;

	memset(&r, 0, sizeof(r));
	memcpy(copy, in, len);
	while (off < len) {
		/* Reads of 1..64 bytes (or all of it, step_seed 0), each in a
		 * buffer of its own so that ASan sees a read past it. */
		size_t piece = next_piece(&x, step_seed, len - off), n;
		uint8_t *p = malloc(piece);

		memcpy(p, copy + off, piece);
		for (size_t at = 0; at < piece;) {
			struct cli_wsin_event ev;

			n = cli_wsin_read(&r, p + at, piece - at, &ev);
			if (n > piece - at || (n == 0 && ev.type == CLI_WSIN_NONE))
				abort(); /* out of bounds, or no progress */
			if (ev.type == CLI_WSIN_BINARY) {
				if (ev.len == 0)
					abort();
				for (size_t i = 0; i < ev.len; i++)
					d.bin = fnv(d.bin, ev.data[i]);
			} else if (ev.type != CLI_WSIN_NONE) {
				digest_event(&d, ev.type, ev.code, ev.data, ev.len,
					     CLI_WSIN_MSG_MAX,
					     ev.type == CLI_WSIN_PING || ev.type == CLI_WSIN_PONG,
					     ev.type == CLI_WSIN_CLOSE);
			}
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
	return whole_and_cut(data, size, run);
}
