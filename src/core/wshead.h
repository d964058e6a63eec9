/* A WebSocket frame's header (RFC 6455 §5.2) and the rules on it, read
 * the same way by both ends: the daemon's reader of a browser's frames
 * (server/wsframe.c, masked) and the CLI's reader of the bastion's
 * (cli/wsin.c, unmasked). Bytes in, a parsed header or the exact rule
 * broken out; then the fragment rules and the message being gathered.
 * What a reader does with the payload stays in the reader. Pure: no I/O;
 * only wsh_msg allocates. */
#ifndef BASTION_CORE_WSHEAD_H
#define BASTION_CORE_WSHEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WSH_OP_CONT   0x0
#define WSH_OP_TEXT   0x1
#define WSH_OP_BINARY 0x2
#define WSH_OP_CLOSE  0x8
#define WSH_OP_PING   0x9
#define WSH_OP_PONG   0xa

/* wsh_read's flags. */
#define WSH_MASKED  1u /* a client's frames: masked (§5.1); without it a mask is refused */
#define WSH_MINIMAL 2u /* refuse a length not in its shortest form (§5.2) */

enum wsh_result {
	WSH_DONE, /* the header is whole (or, wsh_data: the frame may start) */
	WSH_MORE, /* the input ran out inside the header */
	WSH_RESERVED,
	WSH_OPCODE,
	WSH_UNMASKED,
	WSH_MASK_FORBIDDEN,
	WSH_CONTROL,
	WSH_LEN_FORM,
	WSH_LEN_TOP_BIT,
	WSH_ORPHAN,
	WSH_NESTED,
	WSH_TOO_BIG,
};

struct wsh {
	uint8_t b[14]; /* the header as far as it came */
	uint8_t len;
	/* Once wsh_read said WSH_DONE: */
	bool fin;
	uint8_t opcode;
	uint8_t mask[4]; /* WSH_MASKED only */
	uint64_t plen;
	uint64_t poff;    /* payload bytes read: 0 here, the reader counts */
	uint8_t ctl[125]; /* a control frame's payload, for the reader */
	uint8_t ctl_len;
};

/* A data message gathered (fragmented, or split across reads). */
struct wsh_msg {
	uint8_t op; /* its opcode; 0: none in progress */
	uint8_t *p;
	size_t len, cap;
};

static inline bool wsh_is_control(uint8_t opcode)
{
	return opcode & 0x8;
}

/* Takes the header's bytes from buf, no more than it needs (*took says how
 * many): WSH_DONE once it is whole (h's fields set, and the next call
 * starts the next header), WSH_MORE when buf ran out first, or the rule
 * the frame breaks. The first two bytes are checked as soon as they are
 * in, so that a bad frame is refused before its length comes. */
enum wsh_result wsh_read(struct wsh *h, unsigned flags, const uint8_t *buf, size_t len,
			 size_t *took);

/* §5.4 for the data frame h heads, with m the message in progress: a
 * continuation needs one, a new message cannot start inside it (and
 * starts m afresh), and m stays within cap bytes. WSH_DONE or the rule
 * broken. */
static inline enum wsh_result wsh_data(const struct wsh *h, struct wsh_msg *m, uint64_t cap)
{
	if (h->opcode == WSH_OP_CONT && !m->op)
		return WSH_ORPHAN;
	if (h->opcode != WSH_OP_CONT && m->op)
		return WSH_NESTED;
	if (h->opcode != WSH_OP_CONT) {
		m->op = h->opcode;
		m->len = 0;
	}
	if (m->len > cap || h->plen > cap - m->len)
		return WSH_TOO_BIG;
	return WSH_DONE;
}

/* Appends n bytes to m with room made for rest more (what is left of the
 * frame: one realloc a frame, within wsh_data's cap). 0 or -ENOMEM. */
int wsh_msg_add(struct wsh_msg *m, const uint8_t *p, size_t n, uint64_t rest);

/* m was handed out (op 0): its buffer is freed, so that an idle stream
 * holds none. */
void wsh_msg_release(struct wsh_msg *m);

/* What is wrong, as a sentence ("a frame with reserved bits set"). */
const char *wsh_why(enum wsh_result res);

#endif
