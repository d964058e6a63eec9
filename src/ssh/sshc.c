/* The SSH client state machine on a libuv loop.
 *
 * One TCP socket per session, created and connected here without blocking,
 * then handed to libssh (SSH_OPTIONS_FD). One uv_poll_t watches it for the
 * whole life of the session; each readiness event re-enters the state
 * machine, which calls the libssh step of the current state again while it
 * answers SSH_AGAIN. Write interest exists only while ssh_blocking_flush()
 * says output is still queued; libssh's own poll flags are never used (they
 * stay set and spin the loop).
 *
 * Ownership: the struct is freed in the close callback of its last libuv
 * handle, never inside one of our own callbacks; every path that calls a
 * user callback checks c->closing afterwards, because the callback may have
 * called sshc_close(). */
#include "ssh/internal.h"

#include "core/err.h"
#include "core/log.h"
#include "core/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <libssh/server.h> /* ssh_send_keepalive: a client may send it too */
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* How long to wait for the exit status once the shell closed its output. */
#define EXIT_STATUS_WAIT_MS 3000u
/* Output handed to on_data per loop wake-up before yielding to other
 * sessions; the rest is picked up on the next iteration. */
#define DRAIN_BUDGET  (256u * 1024u)
#define READ_CHUNK    SSHC_DATA_MAX
#define KICK_LATER_MS 1u
#define TERM_TYPE     "xterm-256color"

static const char *const state_names[] = {
	[ST_TCP_CONNECT] = "tcp-connect",
	[ST_SSH_CONNECT] = "ssh-connect",
	[ST_PROBE] = "probe",
	[ST_AUTH_PASSWORD] = "auth-password",
	[ST_AUTH_KBDINT] = "auth-kbdint",
	[ST_AUTH_KEY] = "auth-key",
	[ST_AUTH_WAIT] = "auth-wait",
	[ST_CHANNEL_OPEN] = "channel-open",
	[ST_PTY] = "pty",
	[ST_ENV] = "env",
	[ST_SHELL] = "shell",
	[ST_OPEN] = "open",
	[ST_EOF] = "eof",
	[ST_DONE] = "done",
};

static void on_poll(uv_poll_t *h, int status, int events);
static void keepalive_cb(uv_timer_t *t);

void sshc_set_state(struct sshc *c, enum sshc_state st)
{
	if (c->state == st)
		return;
	log_debug("sshc %s:%u: %s -> %s", c->ip, c->port, state_names[c->state], state_names[st]);
	c->state = st;
}

void sshc_forget_secrets(struct sshc *c)
{
	util_free_secret(c->password);
	c->password = NULL;
	ssh_key_free(c->key);
	c->key = NULL;
}

void sshc_handle_closed(struct sshc *c)
{
	if (--c->handles == 0) {
		sodium_memzero(c, sizeof(*c));
		free(c);
	}
}

static void on_handle_closed(uv_handle_t *h)
{
	sshc_handle_closed(h->data);
}

/* Releases everything; the struct itself goes once libuv has closed the
 * handles. The poll handle is closed first so libuv never watches a closed
 * (or reused) descriptor. libssh (0.10, measured) leaves a descriptor given
 * with SSH_OPTIONS_FD open, so it is always ours to close, last. */
static void teardown(struct sshc *c)
{
	c->closing = true;
	sshc_set_state(c, ST_DONE);
	if (c->poll_inited)
		uv_close((uv_handle_t *)&c->poll, on_handle_closed);
	uv_close((uv_handle_t *)&c->timer, on_handle_closed);
	uv_close((uv_handle_t *)&c->kick, on_handle_closed);
	if (c->mark_timer_inited)
		uv_close((uv_handle_t *)&c->mark_timer, on_handle_closed);

	if (c->ch != NULL) {
		if (ssh_channel_is_open(c->ch))
			ssh_channel_close(c->ch);
		ssh_channel_free(c->ch);
		c->ch = NULL;
	}
	if (c->s != NULL) {
		ssh_disconnect(c->s);
		ssh_free(c->s);
		c->s = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	sshc_forget_secrets(c);
	free(c->banner);
	c->banner = NULL;
}

/* Connect phase failure: tear down first, then report (the message is
 * copied into the struct because libssh's error text dies with it). */
void sshc_fail(struct sshc *c, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
	va_end(ap);
	log_debug("sshc %s:%u: failed in %s: %s", c->ip, c->port, state_names[c->state], c->msg);
	teardown(c);
	if (c->cb.on_fail != NULL)
		c->cb.on_fail(c, err, c->msg, c->ud);
}

static void end(struct sshc *c, int exit_status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void end(struct sshc *c, int exit_status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
	va_end(ap);
	log_debug("sshc %s:%u: ended (%d): %s", c->ip, c->port, exit_status, c->msg);
	teardown(c);
	if (c->cb.on_end != NULL)
		c->cb.on_end(c, exit_status, c->msg, c->ud);
}

bool sshc_session_dead(struct sshc *c)
{
	return !ssh_is_connected(c->s) ||
	       (ssh_get_status(c->s) & (SSH_CLOSED | SSH_CLOSED_ERROR)) != 0;
}

static void lost(struct sshc *c)
{
	const char *why = c->s != NULL ? ssh_get_error(c->s) : "";

	if (why != NULL && why[0] != '\0')
		end(c, -1, "connection to the VM was lost (%s)", why);
	else
		end(c, -1, "connection to the VM was lost");
}

static void update_poll(struct sshc *c)
{
	int ev = 0;

	if (c->closing || !c->poll_inited)
		return;
	if (c->state == ST_TCP_CONNECT)
		ev = UV_WRITABLE;
	else if (c->state == ST_PROBE)
		ev = 0; /* libssh is done with the socket; the probe has its own */
	/* Waiting for the user: nothing calls libssh, so a readable socket
	 * would wake the loop for ever; the VM is heard again once answered. */
	else if (!(c->state == ST_OPEN && c->paused && c->mark != MARK_WAIT && !c->pump_held) &&
		 c->state != ST_AUTH_WAIT)
		ev = UV_READABLE;
	if (c->flush_pending)
		ev |= UV_WRITABLE;
	/* Each uv_poll_start is an epoll_ctl: only when the mask changes, or
	 * after libuv stopped the handle itself on an error (measured: 3
	 * epoll_ctl per keystroke before, see BENCHMARKS.md). */
	if (ev == c->poll_events && !c->poll_error)
		return;
	c->poll_error = false;
	if (ev == 0) {
		uv_poll_stop(&c->poll);
	} else if (uv_poll_start(&c->poll, ev, on_poll) < 0) {
		log_debug("sshc %s:%u: uv_poll_start failed", c->ip, c->port);
		c->poll_error = true;
	}
	c->poll_events = ev;
}

static void kick_cb(uv_timer_t *t)
{
	struct sshc *c = t->data;

	if (c->closing)
		return;
	if (c->state != ST_AUTH_WAIT && c->state != ST_PROBE && c->state != ST_DONE)
		on_poll(&c->poll, 0, 0);
}

/* Runs deferred work on the next loop iteration: no callback is ever
 * called from inside a function the user called. */
static void kick(struct sshc *c)
{
	if (!c->closing)
		uv_timer_start(&c->kick, kick_cb, 0, 0);
}

/* After we send: libssh reads the socket inside a send only around a key
 * re-exchange, so the look at what it may have buffered waits a
 * millisecond (the VM's answer usually comes first, and its readiness
 * drains and cancels this). Run at once, that look put a poll() and
 * libssh's packet code between our send and the VM's echo on a shared
 * core: the VM's sshd waited for it (docs/decisions.md). */
static void kick_later(struct sshc *c)
{
	if (!c->closing && !uv_is_active((uv_handle_t *)&c->kick))
		uv_timer_start(&c->kick, kick_cb, KICK_LATER_MS, 0);
}

void sshc_kick(struct sshc *c)
{
	kick(c);
}

void sshc_update_poll(struct sshc *c)
{
	update_poll(c);
}

/* Pushes queued output towards the kernel; returns SSH_OK, SSH_AGAIN or
 * SSH_ERROR and records whether write interest is needed. */
int sshc_flush(struct sshc *c)
{
	int rc = ssh_blocking_flush(c->s, 0);

	c->flush_pending = rc == SSH_AGAIN;
	return rc;
}
static void shell_failed(struct sshc *c, const char *what)
{
	if (sshc_session_dead(c))
		sshc_fail(c, -BERR_PROTOCOL,
			  "connection to the VM was lost while requesting %s (%s)", what,
			  ssh_get_error(c->s));
	else
		sshc_fail(c, -BERR_SSH_SHELL, "the VM refused %s for user %s", what, c->username);
}

/* Calls the current state's libssh step until one answers "again" or the
 * session is open (or failed). Bounded: each pass either changes state or
 * returns. */
void sshc_step(struct sshc *c)
{
	for (int guard = 0; guard < 32 && !c->closing; guard++) {
		int rc, fl;

		switch (c->state) {
		case ST_SSH_CONNECT:
			rc = ssh_connect(c->s);
			if (rc == SSH_AGAIN)
				return;
			if (rc != SSH_OK) {
				sshc_handshake_failed(c);
				return;
			}
			/* libssh switches the socket back to blocking when its
			 * connect completes. */
			fl = fcntl(c->fd, F_GETFL);
			if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
				sshc_fail(c, -BERR_PROTOCOL,
					  "could not make the SSH socket non-blocking: %s",
					  strerror(errno));
				return;
			}
			if (sshc_check_host_key(c) < 0)
				return;
			sshc_auth_begin(c);
			break;
		case ST_AUTH_PASSWORD:
		case ST_AUTH_KBDINT:
		case ST_AUTH_KEY:
			if (!sshc_auth_step(c))
				return;
			break;
		case ST_CHANNEL_OPEN:
			if (c->ch == NULL && (c->ch = ssh_channel_new(c->s)) == NULL) {
				sshc_fail(c, -BERR_PROTOCOL, "out of memory opening a channel");
				return;
			}
			rc = ssh_channel_open_session(c->ch);
			if (rc == SSH_AGAIN)
				return;
			if (rc != SSH_OK) {
				shell_failed(c, "a session channel");
				return;
			}
			sshc_mark_attach(c);
			sshc_set_state(c, ST_PTY);
			break;
		case ST_PTY:
			rc = ssh_channel_request_pty_size(c->ch, TERM_TYPE, c->cols, c->rows);
			if (rc == SSH_AGAIN)
				return;
			if (rc != SSH_OK) {
				shell_failed(c, "a terminal (PTY)");
				return;
			}
			sshc_set_state(c, ST_ENV);
			break;
		case ST_ENV:
			/* The bastion has no user locale to pass on as OpenSSH's
			 * SendEnv does; without one, a VM whose default locale
			 * is not UTF-8 makes bash read typed multi-byte
			 * characters as Meta keys. C.UTF-8 exists on every
			 * current Linux. A VM whose sshd lacks AcceptEnv LANG
			 * refuses, and the shell starts with its own default. */
			rc = ssh_channel_request_env(c->ch, "LANG", SSHC_LANG);
			if (rc == SSH_AGAIN)
				return;
			if (rc != SSH_OK && sshc_session_dead(c)) {
				shell_failed(c, "the locale (LANG)");
				return;
			}
			if (rc != SSH_OK)
				log_debug("sshc %s:%u: the VM refused LANG=%s", c->ip, c->port,
					  SSHC_LANG);
			sshc_set_state(c, ST_SHELL);
			break;
		case ST_SHELL:
			rc = ssh_channel_request_shell(c->ch);
			if (rc == SSH_AGAIN)
				return;
			if (rc != SSH_OK) {
				shell_failed(c, "a shell");
				return;
			}
			uv_timer_stop(&c->timer);
			sshc_set_state(c, ST_OPEN);
			if (c->keepalive_ms > 0)
				uv_timer_start(&c->timer, keepalive_cb, c->keepalive_ms,
					       c->keepalive_ms);
			if (c->cb.on_ready != NULL)
				c->cb.on_ready(c, c->ud);
			return;
		default:
			return;
		}
	}
}

/* ---- open phase ---- */

/* Keep-alive tick (open phase, on c->timer): a VM whose link is cut
 * sends nothing, and a TCP socket with nothing to send never notices. Any
 * readable event since the last tick means the VM spoke; otherwise a
 * global request that wants a reply goes out (sshd answers
 * REQUEST_FAILURE to the unknown name, which is an answer). While output
 * is paused the socket is not watched, so silence proves nothing then. */
static bool vm_spoke(struct sshc *c)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	/* The kernel knows when data last arrived, whoever read it since
	 * (libssh reads the socket inside many calls, so a poll event may
	 * never be seen for a reply). */
	memset(&ti, 0, sizeof(ti));
	if (getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 && len >= sizeof(ti) &&
	    ti.tcpi_last_data_recv < c->keepalive_ms)
		return true;
	return c->heard;
}

static void keepalive_cb(uv_timer_t *t)
{
	struct sshc *c = t->data;

	if (c->closing || c->state != ST_OPEN)
		return;
	if (vm_spoke(c) || c->paused) {
		c->heard = false;
		c->keepalive_missed = 0;
		return;
	}
	if (c->keepalive_missed >= SSHC_KEEPALIVE_MAX) {
		end(c, -1, "the VM stopped answering (no reply to %u keep-alives in %u s)",
		    SSHC_KEEPALIVE_MAX, (SSHC_KEEPALIVE_MAX + 1) * c->keepalive_ms / 1000);
		return;
	}
	c->keepalive_missed++;
	log_debug("sshc %s:%u: keep-alive %u", c->ip, c->port, c->keepalive_missed);
	ssh_send_keepalive(c->s);
	if (sshc_flush(c) == SSH_ERROR) {
		lost(c);
		return;
	}
	update_poll(c);
	kick_later(c);
}

static void exit_wait_cb(uv_timer_t *t)
{
	struct sshc *c = t->data;

	if (!c->closing && c->state == ST_EOF)
		end(c, -1, "the shell closed its output without reporting an exit status");
}

/* The shell closed its output: report its status as soon as it is known
 * (the exit-status message may come before or after the EOF). */
static void eof_check(struct sshc *c)
{
	int st;

	if (c->state != ST_EOF) {
		sshc_set_state(c, ST_EOF);
		uv_timer_start(&c->timer, exit_wait_cb, EXIT_STATUS_WAIT_MS, 0);
	}
	st = ssh_channel_get_exit_status(c->ch);
	if (st >= 0) {
		end(c, st, "the shell exited");
		return;
	}
	if (ssh_channel_is_closed(c->ch) || sshc_session_dead(c))
		end(c, -1, "the shell ended without reporting an exit status");
}

/* Hands buffered output to on_data. stderr is read before stdout in each
 * round so that the last call of a round, which may read the socket, is the
 * stdout read that would return what it read. With a PTY the shell's stderr
 * arrives on stdout, and an empty stderr read still costs a poll(2) inside
 * libssh, so stderr is read every 16th round only (and always once stdout
 * has ended): what waits there is bounded by the channel window. Reads are
 * gathered up to READ_CHUNK so that one on_data — one WebSocket frame, one
 * TLS record — carries several SSH packets (measured: 4 KiB frames before). */
_Static_assert(SSHC_BANNER_MAX <= READ_CHUNK, "the banner fits one on_data call");

static void drain(struct sshc *c)
{
	uint8_t space[SSHC_DATA_HEADROOM + READ_CHUNK], *buf = space + SSHC_DATA_HEADROOM;
	size_t total = 0;
	bool eof[2] = { false, false };

	if (c->banner != NULL && !c->closing && !c->paused && c->state == ST_OPEN) {
		/* The banner goes first: the top of the terminal. */
		uint8_t *b = c->banner;

		memcpy(buf, b, c->banner_len);
		c->banner = NULL;
		if (c->cb.on_data != NULL)
			c->cb.on_data(c, buf, c->banner_len, c->ud);
		free(b);
		if (c->closing || c->paused)
			return;
	}
	while (!c->closing && !c->paused && c->state == ST_OPEN) {
		bool got = false;

		for (int e = 1; e >= 0; e--) {
			size_t filled = 0;

			if (eof[e] || (e == 1 && !eof[0] && c->drain_rounds++ % 16 != 0))
				continue;
			while (filled < READ_CHUNK) {
				int n = ssh_channel_read_nonblocking(
					c->ch, buf + filled, (uint32_t)(READ_CHUNK - filled), e);

				if (n == SSH_EOF) {
					eof[e] = true;
					break;
				}
				if (n < 0) {
					lost(c);
					return;
				}
				if (n == 0)
					break;
				filled += (size_t)n;
			}
			if (filled == 0)
				continue;
			got = true;
			total += filled;
			sshc_mark_taken(c, e, filled);
			c->bytes_in += (uint64_t)filled;
			if (c->cb.on_data != NULL)
				c->cb.on_data(c, buf, filled, c->ud);
			if (c->closing || c->paused)
				return;
		}
		if ((eof[0] && eof[1]) || (!got && ssh_channel_is_closed(c->ch))) {
			eof_check(c);
			return;
		}
		if (!got)
			return;
		if (total >= DRAIN_BUDGET) {
			kick(c);
			return;
		}
	}
}

/* Paused: the VM's output is not read, so it fills the channel window and
 * stops. But the packets are still taken off the socket (into libssh's
 * buffer, which grows no window while it is held), so that the VM's sshd
 * can send its whole window: with TCP full instead, sshd keeps up to the
 * rest of the window in its own buffer, behind everything it would answer
 * — and a flush mark (mark.c) could not tell that old output from the
 * new. An empty stderr poll is the one libssh call that reads the socket
 * once and consumes nothing (with a PTY stderr stays empty); when stderr
 * holds data or libssh already holds SSHC_HOLD_MAX, the socket is left
 * alone as before (the kernel holds the rest of the window then). */
/* 512 KiB: the rest of libssh's 1,280,000-byte window fits the kernel's
 * socket buffers (measured: about 1 MB), and a slow reader costs the
 * bastion under 1 MiB (bench W5: 924 KiB of RSS growth, 432 before; 4 MiB
 * here went over). */
#define SSHC_HOLD_MAX (512u * 1024u)

static void pump_held(struct sshc *c)
{
	int n;

	if (!c->pump_held)
		return;
	/* arrived may lag behind taken (mark.c): no wrap-around here. */
	if (c->rx_arrived[0] > c->rx_taken[0] &&
	    c->rx_arrived[0] - c->rx_taken[0] >= SSHC_HOLD_MAX) {
		c->pump_held = false;
		return;
	}
	n = ssh_channel_poll(c->ch, 1);
	if (n == SSH_ERROR) {
		lost(c);
		return;
	}
	if (n != 0) {
		log_debug("sshc %s:%u: paused, socket left alone (stderr poll %d)", c->ip, c->port,
			  n);
		c->pump_held = false; /* stderr waits, or EOF: read once resumed */
	}
}

/* One pass of open-phase work: flush, read, report writability, re-arm. */
void sshc_open_io(struct sshc *c)
{
	uv_timer_stop(&c->kick); /* this pass does what a kick would */
	if (sshc_flush(c) == SSH_ERROR) {
		lost(c);
		return;
	}
	/* A flush mark first: until its answer nothing is read (mark.c). */
	if (c->mark != MARK_NONE) {
		sshc_mark_io(c);
		if (c->closing)
			return;
	}
	if (c->state == ST_EOF) {
		eof_check(c);
	} else if (c->mark == MARK_WAIT) {
		/* the mark's request call read the socket */
	} else if (!c->paused) {
		drain(c);
	} else {
		pump_held(c);
	}
	if (c->closing)
		return;
	/* Reading may have queued window adjustments. */
	if (sshc_flush(c) == SSH_ERROR) {
		lost(c);
		return;
	}
	if (c->state == ST_OPEN && c->want_writable && !c->flush_pending &&
	    ssh_channel_window_size(c->ch) > 0) {
		c->want_writable = false;
		if (c->cb.on_writable != NULL)
			c->cb.on_writable(c, c->ud);
		if (c->closing)
			return;
	}
	update_poll(c);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct sshc *c = h->data;

	if (c->closing)
		return;
	if (status < 0)
		c->poll_error = true;
	if (c->state == ST_TCP_CONNECT) {
		/* An error status still carries the reason in SO_ERROR. */
		sshc_tcp_connected(c);
		return;
	}
	if (status < 0) {
		if (c->state >= ST_OPEN)
			lost(c);
		else
			sshc_fail(c, -BERR_PROTOCOL,
				  "connection to %s port %u was lost during SSH set-up", c->ip,
				  c->port);
		return;
	}
	if (c->state >= ST_OPEN) {
		if (events & UV_READABLE)
			c->heard = true;
		sshc_open_io(c);
		return;
	}
	/* Connect phase: push pending output first (it may also take in
	 * packets), then let the state step read, then see whether output is
	 * queued again. */
	if (c->flush_pending && sshc_flush(c) == SSH_ERROR) {
		sshc_fail(c, -BERR_PROTOCOL, "connection to %s port %u was lost during SSH set-up",
			  c->ip, c->port);
		return;
	}
	sshc_step(c);
	if (c->closing)
		return;
	if (c->state >= ST_OPEN) {
		sshc_open_io(c);
		return;
	}
	if (sshc_flush(c) == SSH_ERROR) {
		sshc_fail(c, -BERR_PROTOCOL, "connection to %s port %u was lost during SSH set-up",
			  c->ip, c->port);
		return;
	}
	update_poll(c);
}

/* ---- public API ---- */

void sshc_pause_output(struct sshc *c, bool pause)
{
	if (c == NULL || c->closing || c->paused == pause)
		return;
	c->paused = pause;
	c->pump_held = true;
	if (c->state < ST_OPEN)
		return;
	update_poll(c);
	/* libssh may already hold output that no fd event will announce. */
	if (!pause)
		kick(c);
}

ssize_t sshc_write(struct sshc *c, const void *buf, size_t len)
{
	uint32_t window, n;
	int rc;

	if (c == NULL || c->closing)
		return -EPIPE;
	if (c->state != ST_OPEN)
		return c->state < ST_OPEN ? -EAGAIN : -EPIPE;
	if (len == 0)
		return 0;
	/* Input credit: what the VM's window allows and only once libssh's
	 * own output has reached the kernel, so nothing piles up here. */
	window = ssh_channel_window_size(c->ch);
	if (window == 0 || c->flush_pending) {
		c->want_writable = true;
		return 0;
	}
	n = len < window ? (uint32_t)len : window;
	rc = ssh_channel_write(c->ch, buf, n);
	if (rc < 0) {
		kick(c); /* the next pass reports the loss */
		return -EPIPE;
	}
	c->bytes_out += (uint64_t)rc;
	if ((size_t)rc < len)
		c->want_writable = true;
	if (sshc_flush(c) == SSH_ERROR) {
		kick(c);
		return rc;
	}
	update_poll(c);
	kick_later(c);
	return rc;
}

int sshc_resize(struct sshc *c, int cols, int rows)
{
	if (c == NULL || c->closing || c->state > ST_OPEN)
		return -EPIPE;
	if (cols <= 0 || rows <= 0 || cols > 10000 || rows > 10000)
		return -EINVAL;
	c->cols = cols;
	c->rows = rows;
	if (c->state < ST_OPEN)
		return 0; /* applied when the PTY is requested */
	if (c->mark != MARK_NONE) {
		/* libssh would take it for the mark's answer (mark.c). */
		c->resize_deferred = true;
		return 0;
	}
	if (ssh_channel_change_pty_size(c->ch, cols, rows) != SSH_OK) {
		kick(c);
		return -EPIPE;
	}
	if (sshc_flush(c) != SSH_ERROR)
		update_poll(c);
	kick_later(c);
	return 0;
}

void sshc_close(struct sshc *c)
{
	if (c == NULL || c->closing)
		return;
	log_debug("sshc %s:%u: closed by the caller in %s", c->ip, c->port, state_names[c->state]);
	teardown(c);
}

void sshc_counters(const struct sshc *c, uint64_t *ret_in, uint64_t *ret_out)
{
	if (ret_in != NULL)
		*ret_in = c != NULL ? c->bytes_in : 0;
	if (ret_out != NULL)
		*ret_out = c != NULL ? c->bytes_out : 0;
}
