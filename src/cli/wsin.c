/* The bastion's frames read by the CLI (see wsin.h): headers and the rules
 * RFC 6455 sets on a server's frames, binary payload handed on in place as
 * it comes, text gathered within CLI_WSIN_MSG_MAX, control frames. The
 * bastion is trusted no more than any peer: every length is checked before
 * it is used. */
#include "cli/wsin.h"

#include <stdlib.h>
#include <string.h>

#define OP_CONT   0x0
#define OP_TEXT   0x1
#define OP_BINARY 0x2
#define OP_CLOSE  0x8
#define OP_PING   0x9
#define OP_PONG   0xa

static size_t fail(struct cli_wsin *r, struct cli_wsin_event *ev, const char *why, size_t len)
{
	cli_wsin_free(r);
	r->done = true;
	ev->type = CLI_WSIN_ERROR;
	ev->why = why;
	return len;
}

static bool is_control(uint8_t op)
{
	return op & 0x8;
}

/* The header's length once its first two bytes are in (no mask). */
static uint8_t header_len(const struct cli_wsin *r)
{
	uint8_t l7 = r->hdr[1] & 0x7f;

	return (uint8_t)(2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0));
}

/* Checks the first two bytes: NULL or what is wrong. */
static const char *check_start(const struct cli_wsin *r)
{
	uint8_t op = r->hdr[0] & 0x0f;

	if (r->hdr[0] & 0x70)
		return "a frame with reserved bits set";
	if (op != OP_CONT && op != OP_TEXT && op != OP_BINARY && op != OP_CLOSE && op != OP_PING &&
	    op != OP_PONG)
		return "a frame with an unknown opcode";
	if (r->hdr[1] & 0x80)
		return "a masked frame from the server"; /* §5.1 */
	if (is_control(op) && (!(r->hdr[0] & 0x80) || (r->hdr[1] & 0x7f) > 125))
		return "a control frame fragmented or over 125 bytes"; /* §5.5 */
	return NULL;
}

/* The whole header is in: NULL or what is wrong. */
static const char *start_frame(struct cli_wsin *r)
{
	uint8_t l7 = r->hdr[1] & 0x7f;
	uint64_t plen = l7;

	if (l7 == 126) {
		plen = (uint64_t)r->hdr[2] << 8 | r->hdr[3];
	} else if (l7 == 127) {
		plen = 0;
		for (int j = 0; j < 8; j++)
			plen = plen << 8 | r->hdr[2 + j];
		if (plen >> 63)
			return "a frame length with its top bit set";
	}
	r->opcode = r->hdr[0] & 0x0f;
	r->fin = r->hdr[0] & 0x80;
	r->plen = plen;
	r->poff = 0;
	r->ctl_len = 0;
	if (is_control(r->opcode))
		return NULL;
	if (r->opcode == OP_CONT && !r->msg_op)
		return "a continuation with no message to continue";
	if (r->opcode != OP_CONT && r->msg_op)
		return "a new message inside a fragmented one";
	if (r->opcode != OP_CONT) {
		r->msg_op = r->opcode;
		r->msg_len = 0;
	}
	if (r->msg_op == OP_TEXT && plen > CLI_WSIN_MSG_MAX - r->msg_len)
		return "a text message over 1 MiB";
	return NULL;
}

/* A frame's last payload byte is in: its event, if it has one. */
static void end_frame(struct cli_wsin *r, struct cli_wsin_event *ev)
{
	r->in_payload = false;
	r->hlen = 0;
	if (is_control(r->opcode)) {
		ev->data = r->ctl;
		ev->len = r->ctl_len;
		if (r->opcode == OP_PING) {
			ev->type = CLI_WSIN_PING;
		} else if (r->opcode == OP_PONG) {
			ev->type = CLI_WSIN_PONG;
		} else {
			ev->type = CLI_WSIN_CLOSE;
			if (r->ctl_len >= 2) {
				ev->code = (uint16_t)(r->ctl[0] << 8 | r->ctl[1]);
				ev->data = r->ctl + 2;
				ev->len = r->ctl_len - 2u;
			}
			r->done = true;
		}
		return;
	}
	if (!r->fin)
		return;
	if (r->msg_op == OP_TEXT) {
		ev->type = CLI_WSIN_TEXT;
		ev->data = r->msg;
		ev->len = r->msg_len;
	}
	r->msg_op = 0;
}

/* Room in r->msg for the rest of the text frame being read. */
static int msg_reserve(struct cli_wsin *r, size_t more)
{
	size_t want = r->msg_len + more;
	uint8_t *p;

	if (want <= r->msg_cap)
		return 0;
	p = realloc(r->msg, want);
	if (!p)
		return -1;
	r->msg = p;
	r->msg_cap = want;
	return 0;
}

size_t cli_wsin_read(struct cli_wsin *r, const uint8_t *buf, size_t len, struct cli_wsin_event *ev)
{
	size_t i = 0;
	const char *why;

	memset(ev, 0, sizeof(*ev));
	if (r->done)
		return len;
	if (!r->msg_op && r->msg) {
		/* The last text was handed out: an idle stream holds none. */
		free(r->msg);
		r->msg = NULL;
		r->msg_cap = r->msg_len = 0;
	}
	while (i < len) {
		size_t take;
		const uint8_t *p;

		if (!r->in_payload) {
			r->hdr[r->hlen++] = buf[i++];
			if (r->hlen == 2 && (why = check_start(r)) != NULL)
				return fail(r, ev, why, len);
			if (r->hlen < 2 || r->hlen < header_len(r))
				continue;
			if ((why = start_frame(r)) != NULL)
				return fail(r, ev, why, len);
			r->in_payload = true;
			if (r->plen == 0) {
				end_frame(r, ev);
				if (ev->type != CLI_WSIN_NONE)
					return r->done ? len : i;
			}
			continue;
		}
		take = len - i < r->plen - r->poff ? len - i : (size_t)(r->plen - r->poff);
		p = buf + i;
		r->poff += take;
		i += take;
		if (is_control(r->opcode)) {
			memcpy(r->ctl + r->ctl_len, p, take); /* plen ≤ 125: checked */
			r->ctl_len = (uint8_t)(r->ctl_len + take);
		} else if (r->msg_op == OP_BINARY) {
			/* As far as it came, where it lies: the VM's bytes need
			 * no gathering. */
			if (r->poff == r->plen) {
				r->in_payload = false;
				r->hlen = 0;
				if (r->fin)
					r->msg_op = 0;
			}
			ev->type = CLI_WSIN_BINARY; /* take > 0: plen > poff here */
			ev->data = p;
			ev->len = take;
			return i;
		} else {
			if (msg_reserve(r, take) < 0)
				return fail(r, ev, "out of memory", len);
			memcpy(r->msg + r->msg_len, p, take);
			r->msg_len += take;
		}
		if (r->poff == r->plen) {
			end_frame(r, ev);
			if (ev->type != CLI_WSIN_NONE)
				return r->done ? len : i;
		}
	}
	return i;
}

void cli_wsin_free(struct cli_wsin *r)
{
	free(r->msg);
	memset(r, 0, sizeof(*r));
}
