/* The WebSocket frame header and its rules (see wshead.h). Every byte of
 * it comes from a peer: the length is checked before a reader uses it. */
#include "core/wshead.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The first two bytes: WSH_DONE or the rule broken. */
static enum wsh_result check_start(const uint8_t *b, unsigned flags)
{
	uint8_t op = b[0] & 0x0f;

	if (b[0] & 0x70)
		return WSH_RESERVED; /* no extension is ever agreed */
	if (op > WSH_OP_PONG || (op > WSH_OP_BINARY && op < WSH_OP_CLOSE))
		return WSH_OPCODE;
	if (!(b[1] & 0x80) != !(flags & WSH_MASKED))
		return flags & WSH_MASKED ? WSH_UNMASKED : WSH_MASK_FORBIDDEN;
	if (wsh_is_control(op) && (!(b[0] & 0x80) || (b[1] & 0x7f) > 125))
		return WSH_CONTROL; /* §5.5: ≤ 125 bytes, not fragmented */
	return WSH_DONE;
}

/* The header's length, from its second byte. */
static size_t header_len(uint8_t b1, unsigned flags)
{
	uint8_t l7 = b1 & 0x7f;

	return 2u + (l7 == 126 ? 2u : l7 == 127 ? 8u : 0u) + (flags & WSH_MASKED ? 4u : 0u);
}

/* The whole header is in b (h->b, or where it lies): h's fields, or the
 * rule broken. */
static enum wsh_result parse(struct wsh *h, const uint8_t *b, unsigned flags)
{
	uint8_t l7 = b[1] & 0x7f;
	uint64_t plen = l7;

	h->len = 0;
	h->poff = 0;
	h->ctl_len = 0;
	if (l7 == 126) {
		plen = (uint64_t)b[2] << 8 | b[3];
		if ((flags & WSH_MINIMAL) && plen < 126)
			return WSH_LEN_FORM;
	} else if (l7 == 127) {
		plen = 0;
		for (int j = 0; j < 8; j++)
			plen = plen << 8 | b[2 + j];
		if (plen >> 63)
			return WSH_LEN_TOP_BIT;
		if ((flags & WSH_MINIMAL) && plen < 65536)
			return WSH_LEN_FORM;
	}
	h->fin = b[0] & 0x80;
	h->opcode = b[0] & 0x0f;
	h->plen = plen;
	if (flags & WSH_MASKED)
		memcpy(h->mask, b + (l7 == 126 ? 4 : l7 == 127 ? 10 : 2), 4);
	return WSH_DONE;
}

enum wsh_result wsh_read(struct wsh *h, unsigned flags, const uint8_t *buf, size_t len,
			 size_t *took)
{
	size_t i = 0, n, need;
	enum wsh_result res;

	if (h->len == 0 && len >= 2 && len >= (need = header_len(buf[1], flags))) {
		/* The usual case: the whole header in hand, read where it lies. */
		*took = 2;
		if ((res = check_start(buf, flags)) != WSH_DONE)
			return res;
		*took = need;
		return parse(h, buf, flags);
	}
	if (h->len < 2) {
		while (h->len < 2 && i < len)
			h->b[h->len++] = buf[i++];
		*took = i;
		if (h->len < 2)
			return WSH_MORE;
		if ((res = check_start(h->b, flags)) != WSH_DONE)
			return res;
	}
	/* check_start held the mask bit to flags: 4 bytes of mask or none. */
	need = header_len(h->b[1], flags);
	n = need - h->len < len - i ? need - h->len : len - i;
	memcpy(h->b + h->len, buf + i, n);
	h->len = (uint8_t)(h->len + n);
	*took = i + n;
	if (h->len < need)
		return WSH_MORE;
	return parse(h, h->b, flags);
}

int wsh_msg_add(struct wsh_msg *m, const uint8_t *p, size_t n, uint64_t rest)
{
	size_t want = m->len + n + (size_t)rest;
	uint8_t *q;

	if (want > m->cap) {
		q = realloc(m->p, want);
		if (!q)
			return -ENOMEM;
		m->p = q;
		m->cap = want;
	}
	memcpy(m->p + m->len, p, n);
	m->len += n;
	return 0;
}

void wsh_msg_release(struct wsh_msg *m)
{
	if (!m->op && m->p) {
		free(m->p);
		m->p = NULL;
		m->cap = m->len = 0;
	}
}

const char *wsh_why(enum wsh_result res)
{
	static const char *const why[] = {
		[WSH_RESERVED] = "a frame with reserved bits set",
		[WSH_OPCODE] = "a frame with an unknown opcode",
		[WSH_UNMASKED] = "an unmasked frame from a client",
		[WSH_MASK_FORBIDDEN] = "a masked frame from the server",
		[WSH_CONTROL] = "a control frame fragmented or over 125 bytes",
		[WSH_LEN_FORM] = "a frame length not in its shortest form",
		[WSH_LEN_TOP_BIT] = "a frame length with its top bit set",
		[WSH_ORPHAN] = "a continuation with no message to continue",
		[WSH_NESTED] = "a new message inside a fragmented one",
		[WSH_TOO_BIG] = "a message over its size cap",
	};

	return (size_t)res < sizeof(why) / sizeof(why[0]) && why[res] ? why[res] : "no error";
}
