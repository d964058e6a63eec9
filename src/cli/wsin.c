/* The bastion's frames read by the CLI (see wsin.h): binary payload handed
 * on in place as it comes, text gathered within CLI_WSIN_MSG_MAX, control
 * frames; the header and its rules are core/wshead.c's. The
 * bastion is trusted no more than any peer: every length is checked before
 * it is used. */
#include "cli/wsin.h"

#include <stdlib.h>
#include <string.h>

static size_t fail(struct cli_wsin *r, struct cli_wsin_event *ev, const char *why, size_t len)
{
	cli_wsin_free(r);
	r->done = true;
	ev->type = CLI_WSIN_ERROR;
	ev->why = why;
	return len;
}

/* A frame's last payload byte is in: its event, if it has one. */
static void end_frame(struct cli_wsin *r, struct cli_wsin_event *ev)
{
	r->in_payload = false;
	if (wsh_is_control(r->h.opcode)) {
		ev->data = r->h.ctl;
		ev->len = r->h.ctl_len;
		if (r->h.opcode == WSH_OP_PING) {
			ev->type = CLI_WSIN_PING;
		} else if (r->h.opcode == WSH_OP_PONG) {
			ev->type = CLI_WSIN_PONG;
		} else {
			ev->type = CLI_WSIN_CLOSE;
			if (r->h.ctl_len >= 2) {
				ev->code = (uint16_t)(r->h.ctl[0] << 8 | r->h.ctl[1]);
				ev->data = r->h.ctl + 2;
				ev->len = r->h.ctl_len - 2u;
			}
			r->done = true;
		}
		return;
	}
	if (!r->h.fin)
		return;
	if (r->m.op == WSH_OP_TEXT) {
		ev->type = CLI_WSIN_TEXT;
		ev->data = r->m.p;
		ev->len = r->m.len;
	}
	r->m.op = 0;
}

size_t cli_wsin_read(struct cli_wsin *r, const uint8_t *buf, size_t len, struct cli_wsin_event *ev)
{
	size_t i = 0;

	memset(ev, 0, sizeof(*ev));
	if (r->done)
		return len;
	wsh_msg_release(&r->m); /* the last text was handed out */
	while (i < len) {
		size_t take;
		const uint8_t *p;

		if (!r->in_payload) {
			enum wsh_result res = wsh_read(&r->h, 0, buf + i, len - i, &take);
			uint64_t cap = (r->h.opcode ? r->h.opcode : r->m.op) == WSH_OP_TEXT
					       ? CLI_WSIN_MSG_MAX
					       : UINT64_MAX; /* binary is handed on as it comes */

			i += take;
			if (res == WSH_DONE && !wsh_is_control(r->h.opcode))
				res = wsh_data(&r->h, &r->m, cap);
			if (res == WSH_MORE)
				continue;
			if (res != WSH_DONE)
				return fail(r, ev,
					    res == WSH_TOO_BIG ? "a text message over 1 MiB"
							       : wsh_why(res),
					    len);
			r->in_payload = true;
			if (r->h.plen == 0) {
				end_frame(r, ev);
				if (ev->type != CLI_WSIN_NONE)
					return r->done ? len : i;
			}
			continue;
		}
		take = len - i < r->h.plen - r->h.poff ? len - i : (size_t)(r->h.plen - r->h.poff);
		p = buf + i;
		r->h.poff += take;
		i += take;
		if (wsh_is_control(r->h.opcode)) {
			memcpy(r->h.ctl + r->h.ctl_len, p, take); /* ≤ 125: checked */
			r->h.ctl_len = (uint8_t)(r->h.ctl_len + take);
		} else if (r->m.op == WSH_OP_BINARY) {
			/* As far as it came, where it lies: the VM's bytes need
			 * no gathering. */
			if (r->h.poff == r->h.plen) {
				r->in_payload = false;
				if (r->h.fin)
					r->m.op = 0;
			}
			ev->type = CLI_WSIN_BINARY; /* take > 0: plen > poff here */
			ev->data = p;
			ev->len = take;
			return i;
		} else {
			if (wsh_msg_add(&r->m, p, take, r->h.plen - r->h.poff) < 0)
				return fail(r, ev, "out of memory", len);
		}
		if (r->h.poff == r->h.plen) {
			end_frame(r, ev);
			if (ev->type != CLI_WSIN_NONE)
				return r->done ? len : i;
		}
	}
	return i;
}

void cli_wsin_free(struct cli_wsin *r)
{
	free(r->m.p);
	memset(r, 0, sizeof(*r));
}
