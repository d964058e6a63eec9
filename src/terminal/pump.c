/* The pump between a browser's WebSocket and an SSH channel once
 * attached: bytes both ways with back-pressure, the page's flow-control
 * window and its control messages (term_parse_control), the idle and
 * maximum-duration timers with their warnings. Called on the session's
 * loop by the server (the WebSocket callbacks, term_ws_cb), by the SSH
 * client (term_ssh_on_data, term_ssh_on_writable) and by dial.c. Both
 * directions of a keystroke and its echo stay in this file. */
#include "terminal/internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/util.h"
#include "server/loops.h"
#include "server/srv.h"
#include "store/store.h"
#include "store/store_ops.h"
#include "terminal/challenge.h"

/* ---------- limits: idle timeout and maximum duration ---------- */

static void fmt_duration(int64_t secs, char *out, size_t size)
{
	if (secs >= 3600 && secs % 3600 == 0)
		snprintf(out, size, "%lld h", (long long)(secs / 3600));
	else if (secs >= 60 && secs % 60 == 0)
		snprintf(out, size, "%lld min", (long long)(secs / 60));
	else
		snprintf(out, size, "%lld s", (long long)secs);
}

static void send_warning(struct sess *s, const char *what, uint64_t closes_in_ms)
{
	char msg[200];
	int64_t secs = (int64_t)((closes_in_ms + 999) / 1000);

	snprintf(msg, sizeof(msg), "%s: this session closes in %lld s", what, (long long)secs);
	term_send_control(s, json_pack("{s:s,s:s,s:I}", "type", "warning", "message", msg,
				       "closes_in_s", (json_int_t)secs));
}

static void on_limit_timer(uv_timer_t *t)
{
	struct sess *s = t->data;
	const struct term_limits lim = term_limits_now(), *l = &lim;
	uint64_t now = uv_now(s->home->loop), warn = (uint64_t)l->idle_warning_s * 1000;
	char reason[160], d[32];

	if (s->state != SESS_ATTACHED)
		return;
	if (l->max_duration_s > 0) {
		uint64_t at = s->started_ms + (uint64_t)l->max_duration_s * 1000;

		if (now >= at) {
			fmt_duration(l->max_duration_s, d, sizeof(d));
			snprintf(reason, sizeof(reason),
				 "the maximum session duration (%s) was reached", d);
			sess_end(s, reason);
			return;
		}
		if (!s->warned_max && warn && now + warn >= at) {
			s->warned_max = true;
			send_warning(s, "the maximum session duration is almost reached", at - now);
		}
	}
	if (l->idle_timeout_s > 0) {
		uint64_t at = s->last_input_ms + (uint64_t)l->idle_timeout_s * 1000;

		if (now >= at) {
			fmt_duration(l->idle_timeout_s, d, sizeof(d));
			snprintf(reason, sizeof(reason), "idle timeout: no input for %s", d);
			sess_end(s, reason);
			return;
		}
		if (!s->warned_idle && warn && now + warn >= at) {
			s->warned_idle = true;
			send_warning(s, "idle timeout: no input for a while", at - now);
		}
	}
	sess_arm(s);
}

/* Starts the session's timer for the next thing that is due. */
void sess_arm(struct sess *s)
{
	const struct term_limits lim = term_limits_now(), *l = &lim;
	uint64_t now = uv_now(s->home->loop), warn = (uint64_t)l->idle_warning_s * 1000;
	uint64_t next = UINT64_MAX;

	if (s->state != SESS_ATTACHED)
		return;
	if (l->max_duration_s > 0) {
		uint64_t at = s->started_ms + (uint64_t)l->max_duration_s * 1000;

		next = at;
		if (!s->warned_max && warn && at > warn && at - warn < next)
			next = at - warn;
	}
	if (l->idle_timeout_s > 0) {
		uint64_t at = s->last_input_ms + (uint64_t)l->idle_timeout_s * 1000;

		if (at < next)
			next = at;
		if (!s->warned_idle && warn && at > warn && at - warn < next)
			next = at - warn;
	}
	if (next == UINT64_MAX) {
		uv_timer_stop(&s->timer);
		return;
	}
	uv_timer_start(&s->timer, on_limit_timer, next > now ? next - now : 0, 0);
}

/* Browser input (or a tunnel's bytes, either way): the idle clock starts
 * again. */
void sess_activity(struct sess *s)
{
	s->last_input_ms = uv_now(s->home->loop);
	if (s->warned_idle) {
		s->warned_idle = false;
		sess_arm(s);
	}
}

/* A post from term_set_limits, on each loop: its open sessions follow the
 * new values from now on. */
static void rearm_all(void *arg)
{
	for (struct sess *s = term_here()->mine; s; s = s->next_mine) {
		if (s->state != SESS_ATTACHED)
			continue;
		s->warned_idle = s->warned_max = false;
		sess_arm(s);
	}
}

void term_set_limits(const struct term_limits *l)
{
	pthread_mutex_lock(&term_g.lock);
	term_g.lim = *l;
	pthread_mutex_unlock(&term_g.lock);
	for (unsigned i = 0; i < term_g.n_loops; i++)
		loops_post(i, rearm_all, NULL);
}

/* ---------- the pump ---------- */

/* Only the home loop writes a counter; GET /sessions reads it elsewhere. */
static void count_bytes(atomic_uint_fast64_t *counter, uint64_t n)
{
	atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

/* The SSH channel is read only while neither the socket towards the
 * browser nor the page itself is behind. */
void sess_update_output(struct sess *s)
{
	if (s->ssh)
		sshc_pause_output(s->ssh, s->out_paused || s->page_paused ||
						  (s->window && s->unacked >= s->window) ||
						  term_rec_behind(s));
}

/* A flush whose mark could not go out is answered at once: nothing was
 * dropped. */
static void flushed_nothing(struct sess *s)
{
	term_send_control(s, json_pack("{s:s,s:I}", "type", "flushed", "bytes", (json_int_t)0));
}

void term_pump_input(struct sess *s)
{
	int mark = -EAGAIN;
	ssize_t n;

	if (!s->pending_len || !s->ssh)
		return;
	/* A flush waits for the end of the input it came with. */
	if (s->flush_waiting)
		n = sshc_write_mark(s->ssh, s->pending, s->pending_len, &mark);
	else
		n = sshc_write(s->ssh, s->pending, s->pending_len);
	if (n < 0)
		return; /* on_end follows */
	count_bytes(&s->to_vm, (uint64_t)n);
	metrics_bytes((uint64_t)n, 0);
	memmove(s->pending, s->pending + n, s->pending_len - (size_t)n);
	s->pending_len -= (size_t)n;
	if (s->pending_len == 0 && s->ws)
		srv_ws_pause_input(s->ws, false);
	if (s->pending_len == 0 && s->flush_waiting) {
		s->flush_waiting = false;
		if (mark < 0)
			flushed_nothing(s);
	}
}

static void ws_on_binary(void *ud, const uint8_t *buf, size_t len)
{
	struct sess *s = ud;
	bool flush = s->flush_armed;
	int mark = -EAGAIN;
	ssize_t n = 0;
	uint8_t *p;

	if (s->state != SESS_ATTACHED || !s->ssh)
		return;
	sess_activity(s);
	if (s->rec)
		term_rec_input(s, buf, len);
	/* {"type":"flush"} came first: the mark goes right behind these bytes
	 * (the interrupt character), or behind the input waiting with them. */
	s->flush_armed = false;
	if (flush && s->flush_waiting)
		flushed_nothing(s); /* one mark at a time: this one is behind it */
	else if (flush)
		s->flush_waiting = true;
	if (s->pending_len == 0) {
		n = s->flush_waiting ? sshc_write_mark(s->ssh, buf, len, &mark)
				     : sshc_write(s->ssh, buf, len);
		if (n < 0)
			return;
		count_bytes(&s->to_vm, (uint64_t)n);
		metrics_bytes((uint64_t)n, 0);
		if ((size_t)n == len) {
			if (s->flush_waiting) {
				s->flush_waiting = false;
				if (mark < 0)
					flushed_nothing(s);
			}
			return;
		}
	}
	/* The channel's window is full: keep the rest, stop reading the browser. */
	p = realloc(s->pending, s->pending_len + len - (size_t)n);
	if (!p) {
		sess_end(s, "out of memory");
		return;
	}
	memcpy(p + s->pending_len, buf + n, len - (size_t)n);
	s->pending = p;
	s->pending_len += len - (size_t)n;
	if (s->ws)
		srv_ws_pause_input(s->ws, true);
}

int term_parse_control(const char *buf, size_t len, struct term_control *ret,
		       const char **ret_error)
{
	json_t *msg = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
	const char *type = json_string_value(json_object_get(msg, "type"));
	struct term_control ctl = { 0 };
	const char *error = NULL;

	if (!type) {
		error = "control messages are JSON objects with a \"type\"";
	} else if (strcmp(type, "resize") == 0) {
		json_t *cols = json_object_get(msg, "cols"), *rows = json_object_get(msg, "rows");

		if (!json_is_integer(cols) || !json_is_integer(rows) ||
		    json_integer_value(cols) < 1 || json_integer_value(cols) > 1000 ||
		    json_integer_value(rows) < 1 || json_integer_value(rows) > 1000) {
			error = "resize needs integer cols and rows between 1 and 1000";
		} else {
			ctl.type = TERM_CTL_RESIZE;
			ctl.cols = (int)json_integer_value(cols);
			ctl.rows = (int)json_integer_value(rows);
		}
	} else if (strcmp(type, "ping") == 0) {
		/* An addition to the terminal stream (docs/api.md) for the portal's round-trip time. */
		json_t *id = json_object_get(msg, "id");

		if (!json_is_integer(id) || json_integer_value(id) < 0 ||
		    json_integer_value(id) > 9007199254740991LL) {
			error = "ping needs an integer id between 0 and 2^53-1";
		} else {
			ctl.type = TERM_CTL_PING;
			ctl.id = (int64_t)json_integer_value(id);
		}
	} else if (strcmp(type, "pause") == 0) {
		/* Flow control from the page (docs/api.md "Flow control"). */
		ctl.type = TERM_CTL_PAUSE;
	} else if (strcmp(type, "resume") == 0) {
		ctl.type = TERM_CTL_RESUME;
	} else if (strcmp(type, "flush") == 0) {
		/* Flush on interrupt (docs/api.md "Flow control"). */
		ctl.type = TERM_CTL_FLUSH;
	} else if (strcmp(type, "window") == 0 || strcmp(type, "ack") == 0) {
		bool window = type[0] == 'w';
		json_t *bytes = json_object_get(msg, "bytes");
		json_int_t lo = window ? TERM_WINDOW_MIN : 1;
		json_int_t hi = window ? TERM_WINDOW_MAX : 9007199254740991LL;

		if (!json_is_integer(bytes) || json_integer_value(bytes) < lo ||
		    json_integer_value(bytes) > hi) {
			error = window ? "window needs an integer bytes between 16384 and 67108864"
				       : "ack needs an integer bytes between 1 and 2^53-1";
		} else {
			ctl.type = window ? TERM_CTL_WINDOW : TERM_CTL_ACK;
			ctl.bytes = (int64_t)json_integer_value(bytes);
		}
	} else {
		error = "unknown control message type";
	}
	json_decref(msg);
	if (error) {
		*ret_error = error;
		return -EINVAL;
	}
	*ret = ctl;
	return 0;
}

static void ws_on_text(void *ud, const char *buf, size_t len)
{
	struct sess *s = ud;
	struct term_control ctl;
	const char *error;

	if (term_parse_control(buf, len, &ctl, &error) < 0) {
		term_send_control(s, json_pack("{s:s,s:s}", "type", "error", "message", error));
		return;
	}
	switch (ctl.type) {
	case TERM_CTL_RESIZE:
		if (s->ssh) {
			sess_activity(s);
			sshc_resize(s->ssh, ctl.cols, ctl.rows);
			if (s->rec)
				term_rec_resize(s, ctl.cols, ctl.rows);
		}
		break;
	case TERM_CTL_PING:
		/* Echo the id at once. Not activity: a tab left open must still
		 * go idle. */
		term_send_control(s,
				  json_pack("{s:s,s:I}", "type", "pong", "id", (json_int_t)ctl.id));
		break;
	case TERM_CTL_PAUSE:
	case TERM_CTL_RESUME:
		/* Not activity either: output is not input. A page paused for
		 * good holds nothing here but a blocked channel, and still
		 * meets the idle timeout. */
		s->page_paused = ctl.type == TERM_CTL_PAUSE;
		sess_update_output(s);
		break;
	case TERM_CTL_WINDOW:
		/* What was sent before counts from here on too: the page
		 * acknowledges every byte it draws. */
		s->window = (uint64_t)ctl.bytes;
		sess_update_output(s);
		break;
	case TERM_CTL_ACK:
		/* More than was sent is a confused page, not credit to hoard. */
		s->unacked -= (uint64_t)ctl.bytes < s->unacked ? (uint64_t)ctl.bytes : s->unacked;
		sess_update_output(s);
		break;
	case TERM_CTL_FLUSH:
		/* Armed for the next binary frame, the interrupt character:
		 * whoever asks gets it (the portal asks only while held back).
		 * Not activity: the keystroke after it is. Each flush gets one
		 * "flushed". */
		if (s->flush_armed)
			flushed_nothing(s);
		s->flush_armed = true;
		break;
	}
}

static void ws_on_drain(void *ud)
{
	struct sess *s = ud;

	if (s->out_paused) {
		s->out_paused = false;
		sess_update_output(s);
	}
}

static void ws_on_close(void *ud, const char *why)
{
	struct sess *s = ud;

	if (!s->ws)
		return; /* we closed it ourselves */
	s->ws = NULL;
	sess_end_audit(s, "the browser disconnected");
	sess_kill(s, false);
}

/* The SSH channel's side of the pump (sshc callbacks, set in dial.c). */
_Static_assert(SSHC_DATA_HEADROOM >= SRV_WS_HEADROOM, "room for a frame header");
_Static_assert(SSHC_DATA_MAX <= 0xffff, "what srv_ws_send_binary frames");

void term_ssh_on_data(struct sshc *c, uint8_t *buf, size_t len, void *ud)
{
	struct sess *s = ud;
	int r;

	if (!s->ws)
		return;
	count_bytes(&s->from_vm, len);
	metrics_bytes(0, len);
	if (s->rec) /* a memcpy: formatting and the store are the pool's */
		term_rec_output(s, buf, len);
	s->unacked += len;
	r = srv_ws_send_binary(s->ws, buf, len);
	if (s->watchers) /* after the session's own: never before it, never waited for */
		term_watch_output(s, buf, len);
	if (r > 0 && !s->out_paused) {
		s->out_paused = true;
		sess_update_output(s);
	} else if (s->window && s->unacked >= s->window) {
		sess_update_output(s);
	}
}

void term_ssh_on_writable(struct sshc *c, void *ud)
{
	term_pump_input(ud);
}

/* The mark was answered (or given up): what the VM sent before it is gone.
 * The session's counters count what the VM sent, dropped or not; the page
 * is told in order, before anything that came after. Not audited: what a
 * terminal showed is not recorded either. */
void term_ssh_on_mark(struct sshc *c, uint64_t dropped, bool answered, void *ud)
{
	struct sess *s = ud;

	(void)c;
	(void)answered;
	count_bytes(&s->from_vm, dropped);
	if (s->ws)
		term_send_control(
			s, json_pack("{s:s,s:I}", "type", "flushed", "bytes", (json_int_t)dropped));
}

const struct srv_ws_cb term_ws_cb = {
	.on_binary = ws_on_binary,
	.on_text = ws_on_text,
	.on_drain = ws_on_drain,
	.on_close = ws_on_close,
};
