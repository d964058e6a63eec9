/* Flush on interrupt: the mark behind an interrupt character (sshc_mark).
 *
 * A tty drops its output queue when the user types INTR (termios, unless
 * NOFLSH), so Ctrl+C stops a flood at once. Through the bastion the flood's
 * tail is elsewhere: libssh 0.10 grants the VM a channel window of 1,280,000
 * bytes (no API sets it) and buffers what the VM sends into it while the
 * page is behind and the bastion does not read. That is what is dropped.
 *
 * Where the VM's old output ends: right after the interrupt character a
 * channel request that wants a reply goes out on the same channel. SSH is
 * one ordered stream each way and sshd answers a channel request when it
 * reads it, so every data byte that arrives before the answer was sent
 * before sshd read the interrupt, i.e. before the shell could react to it.
 * The request is "env" (SSHC_MARK_ENV), which OpenSSH refuses once the
 * shell runs (RFC 4254 puts env before the shell) and which has no effect
 * where it is accepted: either answer is the mark.
 *
 * libssh 0.10 has no callback for the answer, and whatever libssh call
 * reads the socket (a flush, a read) may process it together with data
 * that came after it. So the boundary is taken where it is known: the
 * channel data callback (which consumes nothing) sees libssh's whole
 * buffer after every data packet, hence rx_arrived = rx_taken + buffered;
 * each time the request call answers "again" the answer is still to come,
 * and what had arrived by then (mark_before) came before it. Only that is
 * dropped. Bytes that arrive in the same pass as the answer are kept: at
 * worst a little old output is shown, never the new prompt dropped.
 *
 * Why the boundary holds when the window was exhausted: sshd may send
 * nothing more until we grow the window, and we do not read (so libssh
 * grows nothing) until the answer. sshd reads its PTY only while it has
 * window, so it holds nothing behind the answer — provided TCP did not
 * stop it sending first: a full socket makes sshd keep up to the rest of
 * its window in its own buffer, behind the answer (measured: 300 KB of old
 * output after it). So a paused sshc still takes packets off the socket
 * (pump_held in sshc.c). What follows the answer is what sshd reads from
 * the PTY afterwards: what the program had written into it before the
 * signal (Linux keeps a pty's queue on INTR: measured 4 KiB), the echo of
 * ^C and the prompt. When the window was not exhausted (the page kept
 * acknowledging), sshd kept sending until it read the request, which is
 * before the answer and dropped too; but sshd answers a request as it reads
 * it and writes the ^C into the PTY in a later pass, and what it reads from
 * the PTY in between (32 KiB reads) follows the answer: measured 8-25 KB
 * of old output then, shown.
 *
 * Bounded: SSHC_MARK_WAIT_MS without an answer, or SSHC_MARK_MAX_BYTES
 * buffered meanwhile (cannot happen with libssh's fixed window, checked
 * anyway), and the mark gives up: what is known to be old is dropped and
 * output resumes. libssh still waits for that answer (one channel request
 * at a time), so no mark is sent until it came (MARK_ORPHAN).
 *
 * The mark goes out in the same TCP segment as the keystroke
 * (sshc_write_mark, TCP_CORK): OpenSSH answers a request as it dispatches
 * it and writes channel data into the PTY on a later pass of its loop, so
 * read together, the answer precedes anything the keystroke causes. Sent
 * apart (measured: the flush message a WebSocket frame behind the
 * keystroke), the ^C echo and the new prompt came before the answer and
 * were dropped.
 *
 * While a mark is out, other channel requests wait too: libssh would take
 * a window-change for the pending request's answer, so a resize is kept
 * and sent once the mark is answered. */
#include "ssh/internal.h"

#include <errno.h>
#include <string.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "core/log.h"

#define DROP_CHUNK 16384u

static int on_chan_data(ssh_session session, ssh_channel ch, void *data, uint32_t len,
			int is_stderr, void *ud)
{
	struct sshc *c = ud;
	int e = is_stderr ? 1 : 0;

	(void)session;
	(void)ch;
	(void)data;
	c->rx_arrived[e] = c->rx_taken[e] + len;
	return 0; /* read by drain() or dropped here, never consumed in the callback */
}

void sshc_mark_attach(struct sshc *c)
{
	memset(&c->chcb, 0, sizeof(c->chcb));
	ssh_callbacks_init(&c->chcb);
	c->chcb.userdata = c;
	c->chcb.channel_data_function = on_chan_data;
	if (ssh_set_channel_callbacks(c->ch, &c->chcb) != SSH_OK)
		log_debug("sshc %s:%u: no channel callbacks: a flush drops nothing", c->ip,
			  c->port);
}

/* Makes rx_arrived exact. The callback's count can lag (measured: a read
 * found 9 KB more than it had reported, libssh buffering data without
 * calling it), never lead, so arrived > taken proves the buffer is not
 * empty, and ssh_channel_poll() then returns its length without touching
 * the socket. An empty buffer is polled only when io_ok (no request out:
 * nothing read then can follow an answer). */
static void refresh(struct sshc *c, bool io_ok)
{
	for (int e = 0; e < 2; e++) {
		int n;

		if (!io_ok && c->rx_arrived[e] <= c->rx_taken[e])
			continue;
		n = ssh_channel_poll(c->ch, e);
		if (n >= 0 && c->rx_taken[e] + (uint64_t)n > c->rx_arrived[e])
			c->rx_arrived[e] = c->rx_taken[e] + (uint64_t)n;
	}
}

/* Reads out and throws away what arrived before the answer. */
static void drop_before(struct sshc *c)
{
	uint8_t junk[DROP_CHUNK];

	for (int e = 0; e < 2; e++) {
		/* 8 MiB / 16 KiB reads at most: the guard is never what stops. */
		for (unsigned guard = 0; guard < 4096 && c->rx_taken[e] < c->mark_before[e];
		     guard++) {
			uint64_t want = c->mark_before[e] - c->rx_taken[e];
			int n = ssh_channel_read_nonblocking(
				c->ch, junk, want < DROP_CHUNK ? (uint32_t)want : DROP_CHUNK, e);

			if (n <= 0)
				break; /* EOF or loss: the open pass reports it */
			c->rx_taken[e] += (uint64_t)n;
			c->bytes_in += (uint64_t)n;
			c->mark_dropped += (uint64_t)n;
		}
	}
}

static void mark_timer_cb(uv_timer_t *t)
{
	struct sshc *c = t->data;

	if (c->closing || c->mark != MARK_WAIT || c->mark_done)
		return;
	log_debug("sshc %s:%u: no answer to the flush mark in %u ms", c->ip, c->port,
		  SSHC_MARK_WAIT_MS);
	c->mark_done = true;
	c->mark_answered = false;
	sshc_kick(c);
}

/* Sends the request; 0 (waiting, or answered at once: mark_done) or
 * -EPIPE. */
static int start_mark(struct sshc *c)
{
	int rc;

	refresh(c, true);
	c->mark_before[0] = c->rx_arrived[0];
	c->mark_before[1] = c->rx_arrived[1];
	c->mark_dropped = 0;
	c->mark_done = false;
	rc = ssh_channel_request_env(c->ch, SSHC_MARK_ENV, "1");
	if (rc == SSH_ERROR && sshc_session_dead(c))
		return -EPIPE;
	c->mark = MARK_WAIT;
	log_debug("sshc %s:%u: flush mark sent, %llu bytes held", c->ip, c->port,
		  (unsigned long long)(c->mark_before[0] - c->rx_taken[0]));
	if (rc == SSH_AGAIN) {
		refresh(c, false);
		c->mark_before[0] = c->rx_arrived[0];
		c->mark_before[1] = c->rx_arrived[1];
		if (!c->mark_timer_inited) {
			uv_timer_init(c->loop, &c->mark_timer);
			c->mark_timer.data = c;
			c->mark_timer_inited = true;
			c->handles++;
		}
		uv_timer_start(&c->mark_timer, mark_timer_cb, SSHC_MARK_WAIT_MS, 0);
	} else {
		c->mark_done = true;
		c->mark_answered = true;
		sshc_kick(c);
	}
	return 0;
}

static void finish(struct sshc *c)
{
	uint64_t dropped;
	bool answered = c->mark_answered;

	if (c->mark_timer_inited)
		uv_timer_stop(&c->mark_timer);
	drop_before(c);
	dropped = c->mark_dropped;
	c->mark_dropped = 0;
	c->mark_done = false;
	c->mark = answered ? MARK_NONE : MARK_ORPHAN;
	log_debug("sshc %s:%u: flush mark %s, %llu bytes dropped, %llu kept (%llu arrived)", c->ip,
		  c->port, answered ? "answered" : "given up", (unsigned long long)dropped,
		  (unsigned long long)(c->rx_arrived[0] > c->rx_taken[0]
					       ? c->rx_arrived[0] - c->rx_taken[0]
					       : 0),
		  (unsigned long long)c->rx_arrived[0]);
	if (c->cb.on_mark != NULL)
		c->cb.on_mark(c, dropped, answered, c->ud);
	if (c->closing)
		return;
	if (c->mark == MARK_NONE && c->resize_deferred) {
		c->resize_deferred = false;
		if (ssh_channel_change_pty_size(c->ch, c->cols, c->rows) != SSH_OK)
			log_debug("sshc %s:%u: deferred resize failed", c->ip, c->port);
	}
}

void sshc_mark_io(struct sshc *c)
{
	int rc;

	if (c->mark == MARK_NONE || c->closing)
		return;
	if (c->mark == MARK_WAIT && c->mark_done) {
		finish(c);
		return;
	}
	rc = ssh_channel_request_env(c->ch, SSHC_MARK_ENV, "1");
	if (rc == SSH_AGAIN) {
		uint64_t held;

		if (c->mark == MARK_ORPHAN)
			return;
		refresh(c, false);
		c->mark_before[0] = c->rx_arrived[0];
		c->mark_before[1] = c->rx_arrived[1];
		held = 0;
		for (int e = 0; e < 2; e++)
			if (c->rx_arrived[e] > c->rx_taken[e])
				held += c->rx_arrived[e] - c->rx_taken[e];
		if (held > SSHC_MARK_MAX_BYTES) {
			c->mark_answered = false;
			finish(c);
		}
		return;
	}
	if (rc == SSH_ERROR && sshc_session_dead(c))
		return; /* the open pass reports the loss */
	if (c->mark == MARK_ORPHAN) {
		/* The late answer: marks may go out again. */
		c->mark = MARK_NONE;
		if (c->resize_deferred) {
			c->resize_deferred = false;
			ssh_channel_change_pty_size(c->ch, c->cols, c->rows);
		}
		return;
	}
	c->mark_answered = true;
	finish(c);
}

int sshc_mark(struct sshc *c)
{
	int r;

	if (c == NULL || c->closing || c->state != ST_OPEN)
		return -EPIPE;
	/* One at a time: a second mark could only be answered after the
	 * first, and what comes between is the VM's answer to the first
	 * interrupt (its prompt), not old output. */
	if (c->mark != MARK_NONE)
		return -EBUSY;
	r = start_mark(c);
	if (r < 0) {
		sshc_kick(c);
		return r;
	}
	if (sshc_flush(c) == SSH_ERROR)
		sshc_kick(c);
	sshc_update_poll(c);
	return 0;
}

ssize_t sshc_write_mark(struct sshc *c, const void *buf, size_t len, int *ret_mark)
{
	int on = 1, off = 0;
	bool corked = false;
	ssize_t n;

	*ret_mark = -EAGAIN;
	/* The keystroke and the request in one TCP segment: sshd then reads
	 * them together and answers before the PTY has the keystroke. Sent
	 * apart, sshd could echo ^C and print the prompt before it read the
	 * request, and that prompt would be dropped. */
	if (c != NULL && !c->closing && c->fd >= 0)
		corked = setsockopt(c->fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on)) == 0;
	n = sshc_write(c, buf, len);
	if (n >= 0 && (size_t)n == len)
		*ret_mark = sshc_mark(c);
	if (corked && c->fd >= 0)
		setsockopt(c->fd, IPPROTO_TCP, TCP_CORK, &off, sizeof(off));
	return n;
}
