/* benchsshd: a lightweight SSH server for bastion's benchmarks.
 *
 * One thread: an epoll set over every connection, and one libssh event
 * per connection that is run only when its socket is readable (a single
 * libssh event over all of them would poll() every socket on each wake-up:
 * O(N) work per keystroke at 10,000 sessions, measured as the target's cost
 * in W3). 10,000 sessions cost a few tens of KiB each here instead of three
 * processes each under OpenSSH. Any password and any public key are accepted for any user
 * (a benchmark target, never a real server: it binds only where told).
 *
 * The "shell" behind a pty request is a fake line discipline:
 *   - every byte received is echoed (CR as CR LF), like a tty with echo on;
 *   - on CR the line is run: "echo ARGS" anywhere in it prints ARGS (up to
 *     a ';', with '"' removed),
 *     "bulk N" prints N bytes as 100-column lines, "exit" ends the session
 *     with exit status 0; anything else is ignored; then the prompt "$ ".
 * That is enough for the bench client's workloads (it waits for "READYX"
 * after typing `echo READY""X`) to run unchanged against sshd and here.
 *
 * usage: benchsshd -k HOSTKEY -a ADDR -p PORT [-t SECONDS]
 *   -t bounds the run (default 3600 s): the server exits by itself. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>

struct conn {
	struct conn *busy_next; /* has "bulk" output to write */
	struct conn *dead_next; /* to be freed at the end of this round */
	ssh_session session;
	ssh_event ev;
	ssh_channel channel;
	struct ssh_server_callbacks_struct scb;
	struct ssh_channel_callbacks_struct ccb;
	char line[256];
	size_t line_len;
	unsigned long long bulk_left;
	int shell;
	int dead;
	int busy;
	int reaped;
};

static struct conn *busy_list, *dead_list;
static int ep;
static ssh_bind sshbind;
static unsigned long n_open, n_total;
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int auth_password(ssh_session s, const char *user, const char *pw, void *ud)
{
	(void)s, (void)user, (void)pw, (void)ud;
	return SSH_AUTH_SUCCESS;
}

static int auth_pubkey(ssh_session s, const char *user, struct ssh_key_struct *key, char state,
		       void *ud)
{
	(void)s, (void)user, (void)key, (void)ud;
	/* A key query and a valid signature both succeed; libssh has already
	 * checked the signature when state is VALID. */
	if (state == SSH_PUBLICKEY_STATE_NONE || state == SSH_PUBLICKEY_STATE_VALID)
		return SSH_AUTH_SUCCESS;
	return SSH_AUTH_DENIED;
}

static void out(struct conn *c, const void *buf, size_t len)
{
	if (c->channel && !c->dead && ssh_channel_write(c->channel, buf, (uint32_t)len) < 0)
		c->dead = 1;
}

static void run_line(struct conn *c)
{
	c->line[c->line_len] = 0;
	const char *echo = strstr(c->line, "echo ");

	if (echo) {
		char buf[256];
		size_t n = 0;

		for (const char *p = echo + 5; *p && *p != ';' && n < sizeof(buf) - 3; p++)
			if (*p != '"')
				buf[n++] = *p;
		buf[n++] = '\r';
		buf[n++] = '\n';
		out(c, buf, n);
	}
	if (strncmp(c->line, "bulk ", 5) == 0) {
		c->bulk_left = strtoull(c->line + 5, NULL, 10);
		if (c->bulk_left && !c->busy && !c->dead) {
			c->busy = 1;
			c->busy_next = busy_list;
			busy_list = c;
		}
	} else if (strcmp(c->line, "exit") == 0) {
		ssh_channel_request_send_exit_status(c->channel, 0);
		ssh_channel_send_eof(c->channel);
		ssh_channel_close(c->channel);
		c->dead = 1;
		return;
	}
	if (!c->bulk_left)
		out(c, "$ ", 2);
	c->line_len = 0;
}

static int on_data(ssh_session s, ssh_channel ch, void *data, uint32_t len, int is_stderr, void *ud)
{
	struct conn *c = ud;
	const char *p = data;
	char echo[512];
	size_t n = 0;

	(void)s, (void)ch, (void)is_stderr;
	for (uint32_t i = 0; i < len && !c->dead; i++) {
		if (p[i] == '\r') {
			echo[n++] = '\r';
			echo[n++] = '\n';
			out(c, echo, n);
			n = 0;
			run_line(c);
			continue;
		}
		echo[n++] = p[i];
		if (c->line_len < sizeof(c->line) - 1)
			c->line[c->line_len++] = p[i];
		if (n >= sizeof(echo) - 2) {
			out(c, echo, n);
			n = 0;
		}
	}
	if (n)
		out(c, echo, n);
	return (int)len;
}

static int on_pty(ssh_session s, ssh_channel ch, const char *term, int w, int h, int pw, int ph,
		  void *ud)
{
	(void)s, (void)ch, (void)term, (void)w, (void)h, (void)pw, (void)ph, (void)ud;
	return 0;
}

static int on_resize(ssh_session s, ssh_channel ch, int w, int h, int pw, int ph, void *ud)
{
	(void)s, (void)ch, (void)w, (void)h, (void)pw, (void)ph, (void)ud;
	return 0;
}

static int on_shell(ssh_session s, ssh_channel ch, void *ud)
{
	struct conn *c = ud;

	(void)s, (void)ch;
	c->shell = 1;
	out(c, "$ ", 2);
	return 0;
}

static void on_channel_close(ssh_session s, ssh_channel ch, void *ud)
{
	struct conn *c = ud;

	(void)s, (void)ch;
	c->dead = 1;
}

static ssh_channel on_channel_open(ssh_session s, void *ud)
{
	struct conn *c = ud;

	if (c->channel)
		return NULL; /* one shell per connection is all the bench needs */
	c->channel = ssh_channel_new(s);
	if (!c->channel)
		return NULL;
	c->ccb.userdata = c;
	c->ccb.channel_data_function = on_data;
	c->ccb.channel_pty_request_function = on_pty;
	c->ccb.channel_pty_window_change_function = on_resize;
	c->ccb.channel_shell_request_function = on_shell;
	c->ccb.channel_close_function = on_channel_close;
	c->ccb.channel_eof_function = on_channel_close;
	ssh_callbacks_init(&c->ccb);
	ssh_set_channel_callbacks(c->channel, &c->ccb);
	return c->channel;
}

static void accept_all(void)
{
	for (int i = 0; i < 64; i++) {
		struct conn *c;
		struct epoll_event ee = { .events = EPOLLIN };
		ssh_session s = ssh_new();

		if (!s)
			return;
		if (ssh_bind_accept(sshbind, s) != SSH_OK) {
			ssh_free(s); /* EAGAIN: nothing more to accept */
			return;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			ssh_disconnect(s);
			ssh_free(s);
			return;
		}
		c->session = s;
		c->scb.userdata = c;
		c->scb.auth_password_function = auth_password;
		c->scb.auth_pubkey_function = auth_pubkey;
		c->scb.channel_open_request_session_function = on_channel_open;
		ssh_callbacks_init(&c->scb);
		ssh_set_server_callbacks(s, &c->scb);
		ssh_set_auth_methods(s, SSH_AUTH_METHOD_PASSWORD | SSH_AUTH_METHOD_PUBLICKEY);
		ssh_set_blocking(s, 0);
		ee.data.ptr = c;
		/* Non-blocking: this sends our banner and arms the state
		 * machine; the loop below completes the key exchange. */
		c->ev = ssh_event_new();
		if (!c->ev || ssh_handle_key_exchange(s) == SSH_ERROR ||
		    ssh_event_add_session(c->ev, s) != SSH_OK ||
		    epoll_ctl(ep, EPOLL_CTL_ADD, ssh_get_fd(s), &ee) < 0) {
			if (c->ev)
				ssh_event_free(c->ev);
			ssh_disconnect(s);
			ssh_free(s);
			free(c);
			continue;
		}
		n_open++;
		n_total++;
	}
}

/* After libssh ran for c: a closed session goes on the dead list, once. */
static void settle(struct conn *c)
{
	if (!c->dead && (ssh_get_status(c->session) & (SSH_CLOSED | SSH_CLOSED_ERROR)))
		c->dead = 1;
	if (c->dead && !c->reaped) {
		c->reaped = 1;
		c->dead_next = dead_list;
		dead_list = c;
	}
}

/* Writes what a "bulk" command still owes, as far as the window allows. */
static void pump_bulk(struct conn *c)
{
	static char chunk[32 * 1010];
	static int ready;

	if (!ready) {
		for (size_t i = 0; i < sizeof(chunk); i++)
			chunk[i] = (i % 101 == 100) ? '\n' : (char)('A' + i % 26);
		ready = 1;
	}
	while (c->bulk_left && !c->dead) {
		uint32_t win = ssh_channel_window_size(c->channel);
		size_t n = sizeof(chunk);
		int w;

		if (win == 0)
			return;
		if (n > win)
			n = win;
		if (n > c->bulk_left)
			n = (size_t)c->bulk_left;
		w = ssh_channel_write(c->channel, chunk, (uint32_t)n);
		if (w <= 0) {
			if (w < 0)
				c->dead = 1;
			return;
		}
		c->bulk_left -= (unsigned)w;
		if (!c->bulk_left)
			out(c, "\r\n$ ", 4);
		if (ssh_blocking_flush(c->session, 0) == SSH_AGAIN)
			return;
	}
}

int main(int argc, char **argv)
{
	const char *key = NULL, *addr = "127.0.0.1", *port = "2222";
	long limit_s = 3600;
	time_t t0 = time(NULL), last_report = 0;
	int opt;

	while ((opt = getopt(argc, argv, "k:a:p:t:")) != -1) {
		switch (opt) {
		case 'k':
			key = optarg;
			break;
		case 'a':
			addr = optarg;
			break;
		case 'p':
			port = optarg;
			break;
		case 't':
			limit_s = strtol(optarg, NULL, 10);
			break;
		default:
			fprintf(stderr,
				"usage: benchsshd -k HOSTKEY -a ADDR -p PORT [-t SECONDS]\n");
			return 2;
		}
	}
	if (!key) {
		fprintf(stderr, "benchsshd: -k HOSTKEY is required\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	ssh_init();
	if (getenv("BENCHSSHD_DEBUG"))
		ssh_set_log_level(SSH_LOG_PACKET);
	sshbind = ssh_bind_new();
	if (!sshbind || ssh_bind_options_set(sshbind, SSH_BIND_OPTIONS_HOSTKEY, key) < 0 ||
	    ssh_bind_options_set(sshbind, SSH_BIND_OPTIONS_BINDADDR, addr) < 0 ||
	    ssh_bind_options_set(sshbind, SSH_BIND_OPTIONS_BINDPORT_STR, port) < 0 ||
	    ssh_bind_listen(sshbind) < 0) {
		fprintf(stderr, "benchsshd: cannot listen on %s:%s: %s\n", addr, port,
			sshbind ? ssh_get_error(sshbind) : "out of memory");
		return 1;
	}
	/* ssh_bind_set_blocking() only sets a flag: accept() would still
	 * block on the second connection of a burst without O_NONBLOCK. */
	ssh_bind_set_blocking(sshbind, 0);
	fcntl(ssh_bind_get_fd(sshbind), F_SETFL,
	      fcntl(ssh_bind_get_fd(sshbind), F_GETFL) | O_NONBLOCK);
	ep = epoll_create1(EPOLL_CLOEXEC);
	{
		struct epoll_event ee = { .events = EPOLLIN, .data.ptr = NULL };

		if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, ssh_bind_get_fd(sshbind), &ee) < 0) {
			perror("benchsshd: epoll");
			return 1;
		}
	}
	fprintf(stderr, "benchsshd: listening on %s:%s\n", addr, port);
	while (!stop && time(NULL) - t0 < limit_s) {
		struct epoll_event evs[256];
		struct conn *busy;
		int n = epoll_wait(ep, evs, 256, busy_list ? 0 : 100);

		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (!c) {
				accept_all();
				continue;
			}
			ssh_event_dopoll(c->ev, 0);
			settle(c);
		}
		/* Bulk output: written as the window and the socket allow. */
		busy = busy_list;
		busy_list = NULL;
		while (busy) {
			struct conn *c = busy;

			busy = c->busy_next;
			if (!c->dead) {
				pump_bulk(c);
				ssh_event_dopoll(c->ev, 0);
			}
			settle(c);
			if (c->bulk_left && !c->dead) {
				c->busy_next = busy_list;
				busy_list = c;
			} else {
				c->busy = 0;
			}
		}
		while (dead_list) {
			struct conn *c = dead_list;

			dead_list = c->dead_next;
			if (c->busy) { /* back here when it leaves the busy list */
				c->reaped = 0;
				continue;
			}
			epoll_ctl(ep, EPOLL_CTL_DEL, ssh_get_fd(c->session), NULL);
			ssh_event_remove_session(c->ev, c->session);
			ssh_event_free(c->ev);
			if (c->channel)
				ssh_channel_free(c->channel);
			ssh_disconnect(c->session);
			ssh_free(c->session);
			free(c);
			n_open--;
		}
		if (time(NULL) != last_report && time(NULL) % 10 == 0) {
			last_report = time(NULL);
			fprintf(stderr, "benchsshd: %lu open, %lu accepted\n", n_open, n_total);
		}
	}
	fprintf(stderr, "benchsshd: exiting (%lu open, %lu accepted)\n", n_open, n_total);
	return 0;
}
