/* The WebSocket frame reader (see wsframe.h): unmasking (util_xor_key),
 * message assembly within WSR_MAX_MSG, UTF-8 of text, control frames; the
 * header and its rules are core/wshead.c's. Every byte a peer sends
 * passes here, so every length is checked before it is used. */
#include "server/wsframe.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"

/* ---- UTF-8, one byte at a time but for runs of ASCII ----------------- */

struct u8state {
	uint8_t need, lo, hi; /* continuation bytes to come, the next one's range */
};

/* False at the first byte that cannot be UTF-8 (RFC 3629: no overlong
 * forms, no surrogates, nothing past U+10FFFF). */
static bool u8_feed(struct u8state *s, const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t b = p[i];

		if (s->need == 0) {
			uint64_t w;

			if (i + 8 <= n) {
				memcpy(&w, p + i, sizeof(w));
				if ((w & 0x8080808080808080ull) == 0) {
					i += 8;
					continue;
				}
			}
			i++;
			if (b < 0x80)
				continue;
			s->lo = 0x80;
			s->hi = 0xbf;
			if (b >= 0xc2 && b <= 0xdf) {
				s->need = 1;
			} else if (b >= 0xe0 && b <= 0xef) {
				s->need = 2;
				if (b == 0xe0)
					s->lo = 0xa0;
				else if (b == 0xed)
					s->hi = 0x9f;
			} else if (b >= 0xf0 && b <= 0xf4) {
				s->need = 3;
				if (b == 0xf0)
					s->lo = 0x90;
				else if (b == 0xf4)
					s->hi = 0x8f;
			} else {
				return false;
			}
			continue;
		}
		if (b < s->lo || b > s->hi)
			return false;
		s->need--;
		s->lo = 0x80;
		s->hi = 0xbf;
		i++;
	}
	return true;
}

/* ---- the reader ------------------------------------------------------- */

static size_t fail(struct wsr *r, struct wsr_event *ev, uint16_t code, size_t len)
{
	wsr_free(r);
	r->done = true;
	ev->type = WSR_ERROR;
	ev->code = code;
	return len;
}

static bool text_ok(struct wsr *r, const uint8_t *p, size_t n)
{
	struct u8state s = { r->u8_need, r->u8_lo, r->u8_hi };
	bool ok = u8_feed(&s, p, n);

	r->u8_need = s.need;
	r->u8_lo = s.lo;
	r->u8_hi = s.hi;
	return ok;
}

static bool close_code_ok(uint16_t code)
{
	/* §7.4: the codes a peer may send; 1004-1006 and 1015 are never on
	 * the wire. */
	return (code >= 1000 && code <= 1011 && code != 1004 && code != 1005 && code != 1006) ||
	       (code >= 3000 && code <= 4999);
}

/* A control frame is complete: its event, or a close code. */
static uint16_t end_control(struct wsr *r, struct wsr_event *ev)
{
	ev->data = r->h.ctl;
	ev->len = r->h.ctl_len;
	if (r->h.opcode == WSH_OP_PING) {
		ev->type = WSR_PING;
	} else if (r->h.opcode == WSH_OP_PONG) {
		ev->type = WSR_PONG;
	} else {
		struct u8state s = { 0, 0, 0 };

		if (r->h.ctl_len == 1)
			return WSR_CLOSE_PROTOCOL;
		if (r->h.ctl_len >= 2) {
			ev->code = (uint16_t)(r->h.ctl[0] << 8 | r->h.ctl[1]);
			ev->data = r->h.ctl + 2;
			ev->len = r->h.ctl_len - 2u;
			if (!close_code_ok(ev->code))
				return WSR_CLOSE_PROTOCOL;
			if (!u8_feed(&s, ev->data, ev->len) || s.need)
				return WSR_CLOSE_BAD_DATA;
		}
		ev->type = WSR_CLOSE;
		r->done = true;
	}
	return 0;
}

/* The frame's last payload byte is in (a data frame's is in r->m). */
static uint16_t end_frame(struct wsr *r, struct wsr_event *ev)
{
	r->in_payload = false;
	if (wsh_is_control(r->h.opcode))
		return end_control(r, ev);
	if (!r->h.fin)
		return 0;
	if (r->m.op == WSH_OP_TEXT && r->u8_need)
		return WSR_CLOSE_BAD_DATA; /* a character cut off at the end */
	ev->type = r->m.op == WSH_OP_TEXT ? WSR_TEXT : WSR_BINARY;
	ev->data = r->m.p;
	ev->len = r->m.len;
	r->m.op = 0; /* r->m.p is freed on the next call */
	return 0;
}

void wsr_release(struct wsr *r)
{
	wsh_msg_release(&r->m);
}

size_t wsr_read(struct wsr *r, uint8_t *buf, size_t len, struct wsr_event *ev)
{
	size_t i = 0;
	uint16_t code;

	memset(ev, 0, sizeof(*ev));
	if (r->done)
		return len;
	wsr_release(r);
	while (i < len) {
		size_t take;
		uint8_t *p;

		if (!r->in_payload) {
			enum wsh_result res =
				wsh_read(&r->h, WSH_MASKED | WSH_MINIMAL, buf + i, len - i, &take);

			i += take;
			if (res == WSH_MORE)
				continue;
			if (res == WSH_DONE && !wsh_is_control(r->h.opcode))
				res = wsh_data(&r->h, &r->m, WSR_MAX_MSG);
			if (res != WSH_DONE)
				return fail(r, ev,
					    res == WSH_TOO_BIG ? WSR_CLOSE_TOO_BIG
							       : WSR_CLOSE_PROTOCOL,
					    len);
			/* A text message starts with u8_need 0: the last one
			 * ended on a whole character or closed the stream. */
			r->in_payload = true;
			if (r->h.plen == 0) {
				if ((code = end_frame(r, ev)) != 0)
					return fail(r, ev, code, len);
				if (ev->type != WSR_NONE)
					return r->done ? len : i;
			}
			continue;
		}
		take = len - i < r->h.plen - r->h.poff ? len - i : (size_t)(r->h.plen - r->h.poff);
		p = buf + i;
		util_xor_key(p, take, r->h.mask, r->h.poff);
		if (r->h.opcode == WSH_OP_TEXT ||
		    (r->h.opcode == WSH_OP_CONT && r->m.op == WSH_OP_TEXT)) {
			if (!text_ok(r, p, take))
				return fail(r, ev, WSR_CLOSE_BAD_DATA, len);
		}
		if (wsh_is_control(r->h.opcode)) {
			memcpy(r->h.ctl + r->h.ctl_len, p, take); /* ≤ 125: checked */
			r->h.ctl_len = (uint8_t)(r->h.ctl_len + take);
		} else if (r->h.fin && r->h.opcode != WSH_OP_CONT && r->h.poff == 0 &&
			   take == r->h.plen) {
			/* The usual case: a whole unfragmented frame in hand,
			 * handed out where it lies, no copy. */
			i += take;
			r->in_payload = false;
			if (r->h.opcode == WSH_OP_TEXT && r->u8_need)
				return fail(r, ev, WSR_CLOSE_BAD_DATA, len);
			ev->type = r->h.opcode == WSH_OP_TEXT ? WSR_TEXT : WSR_BINARY;
			ev->data = p;
			ev->len = take;
			r->m.op = 0;
			return i;
		} else {
			if (wsh_msg_add(&r->m, p, take, r->h.plen - r->h.poff - take) < 0)
				return fail(r, ev, WSR_CLOSE_INTERNAL, len);
		}
		r->h.poff += take;
		i += take;
		if (r->h.poff == r->h.plen) {
			if ((code = end_frame(r, ev)) != 0)
				return fail(r, ev, code, len);
			if (ev->type != WSR_NONE)
				return r->done ? len : i;
		}
	}
	return i;
}

void wsr_free(struct wsr *r)
{
	free(r->m.p);
	memset(r, 0, sizeof(*r));
}
