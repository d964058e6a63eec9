/* What the fuzz targets of the two WebSocket readers (fuzz_wsframe.c,
 * fuzz_wsin.c) share: a digest of the events a stream gives, where reads
 * cut the stream, and the property itself: the same events whole and cut
 * (a reader must not depend on where reads fall). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

/* A running digest of the events, enough to tell two runs apart: binary
 * bytes handed on in place are hashed as one run (their cuts differ),
 * other events with the digest of the binary bytes before them. */
struct digest {
	uint64_t h, bin;
	unsigned events;
};

#define DIGEST_INIT                                             \
	{                                                       \
		0xcbf29ce484222325ull, 0xcbf29ce484222325ull, 0 \
	}

static inline uint64_t fnv(uint64_t h, uint64_t x)
{
	return (h ^ x) * 0x100000001b3ull;
}

/* One event; its data within max, a ping's or pong's within 125 bytes, a
 * close reason within 123. */
static inline void digest_event(struct digest *d, int type, uint16_t code, const uint8_t *data,
				size_t len, size_t max, bool ping_pong, bool close)
{
	d->events++;
	d->h = fnv(fnv(fnv(fnv(d->h, (uint64_t)type), d->bin), code), len);
	for (size_t i = 0; i < len; i++)
		d->h = fnv(d->h, data[i]);
	if (len > max || (ping_pong && len > 125) || (close && len > 123))
		abort();
}

/* The next read's size: 1..64 bytes, or all that is left (seed 0). */
static inline size_t next_piece(unsigned *x, unsigned seed, size_t left)
{
	size_t piece;

	if (!seed)
		return left;
	*x = *x * 1103515245u + 12345u;
	piece = 1 + (*x >> 16) % 64;
	return piece < left ? piece : left;
}

/* The stream after the first byte read whole, then cut into reads the
 * first byte picks: the same events. */
static inline int whole_and_cut(const uint8_t *data, size_t size,
				struct digest (*run)(const uint8_t *, size_t, unsigned))
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
