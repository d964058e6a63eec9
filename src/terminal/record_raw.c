/* How a recording's chunks hold its events (record.h "raw events"): what
 * the writer stores is the terminal's bytes as they came, not asciicast
 * text, so that the write path does no JSON escaping (most of the
 * writer's CPU: BENCHMARKS.md "Recording"); asciicast v2 is rendered when
 * a recording is read (/cast, /search, the player), which is rare.
 *
 * A chunk's plaintext: REC_RAW_V1, then records of
 *   type (1 byte: 'h' header, 'o', 'i', 'r', 'm'), ms (LEB128 varint:
 *   milliseconds since the start), length (varint), the bytes
 * where the header's bytes are three varints: width, height, timestamp.
 * Chunks written before hold asciicast text (they start with '{' or '[')
 * and are served as they are. Pure: any thread. */
#include "terminal/record.h"

#include <errno.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"

/* A varint holds at most 10 bytes (64 bits, 7 a byte). */
#define VARINT_MAX 10

static size_t varint_put(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/* 0 with *ret and *off moved past it, or -BERR_INTEGRITY (cut short, too
 * long, or more than 64 bits). */
static int varint_get(const uint8_t *p, size_t len, size_t *off, uint64_t *ret)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < VARINT_MAX && *off < len; i++) {
		uint8_t b = p[(*off)++];

		if (i == VARINT_MAX - 1 && b > 1)
			return -BERR_INTEGRITY;
		v |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			*ret = v;
			return 0;
		}
	}
	return -BERR_INTEGRITY;
}

int rec_raw_event(struct buf *out, char type, uint64_t ms, const uint8_t *data, size_t len)
{
	uint8_t head[1 + 1 + 2 * VARINT_MAX];
	size_t n = 0, start = out->len;
	int r;

	if (!out->len)
		head[n++] = REC_RAW_V1; /* every chunk says its format */
	head[n++] = (uint8_t)type;
	n += varint_put(head + n, ms);
	n += varint_put(head + n, len);
	if ((r = buf_append(out, head, n)) == 0 && len)
		r = buf_append(out, data, len);
	if (r < 0)
		buf_truncate(out, start);
	return r;
}

size_t rec_raw_put(uint8_t *p, bool first, char type, uint64_t ms, const uint8_t *data, size_t len)
{
	size_t n = 0, off = 0;

	if (first)
		p[n++] = REC_RAW_V1;
	do {
		size_t piece = len - off < REC_EV_PIECE ? len - off : REC_EV_PIECE;

		p[n++] = (uint8_t)type;
		n += varint_put(p + n, ms);
		n += varint_put(p + n, piece);
		if (piece)
			memcpy(p + n, data + off, piece);
		n += piece;
		off += piece;
	} while (off < len);
	return n;
}

size_t rec_raw_header_bytes(uint8_t b[3 * VARINT_MAX], int width, int height, int64_t timestamp)
{
	size_t n = 0;

	n += varint_put(b + n, (uint64_t)(width > 0 ? width : 80));
	n += varint_put(b + n, (uint64_t)(height > 0 ? height : 24));
	n += varint_put(b + n, (uint64_t)(timestamp > 0 ? timestamp : 0));
	return n;
}

int rec_raw_header(struct buf *out, int width, int height, int64_t timestamp)
{
	uint8_t b[3 * VARINT_MAX];

	return rec_raw_event(out, 'h', 0, b, rec_raw_header_bytes(b, width, height, timestamp));
}

/* The header's three numbers into its asciicast line. */
static int render_header(const uint8_t *p, size_t len, struct buf *out)
{
	uint64_t w, h, ts;
	size_t off = 0;

	if (varint_get(p, len, &off, &w) < 0 || varint_get(p, len, &off, &h) < 0 ||
	    varint_get(p, len, &off, &ts) < 0 || off != len || w == 0 || h == 0 || w > 10000 ||
	    h > 10000 || ts > INT64_MAX)
		return -BERR_INTEGRITY;
	return rec_cast_header(out, (int)w, (int)h, (int64_t)ts, "xterm-256color");
}

int rec_render_chunk(struct rec_render *st, const uint8_t *raw, size_t len, struct buf *out)
{
	size_t off = 1, start = out->len;
	int r = 0;

	if (!len || raw[0] != REC_RAW_V1)
		return -BERR_INTEGRITY;
	while (r == 0 && off < len) {
		uint8_t type = raw[off++];
		uint64_t ms, n;

		if ((r = varint_get(raw, len, &off, &ms)) < 0 ||
		    (r = varint_get(raw, len, &off, &n)) < 0)
			break;
		if (n > len - off) {
			r = -BERR_INTEGRITY;
			break;
		}
		switch (type) {
		case 'h':
			r = render_header(raw + off, (size_t)n, out);
			break;
		case 'o':
		case 'i':
			r = rec_cast_event(out, (double)ms / 1000.0, (char)type, raw + off,
					   (size_t)n, type == 'o' ? st->carry_o : st->carry_i,
					   type == 'o' ? &st->nc_o : &st->nc_i);
			break;
		case 'r':
		case 'm':
			r = rec_cast_event(out, (double)ms / 1000.0, (char)type, raw + off,
					   (size_t)n, NULL, NULL);
			break;
		default:
			r = -BERR_INTEGRITY;
		}
		off += (size_t)n;
	}
	if (r < 0)
		buf_truncate(out, start);
	return r;
}
