/* bclient: the load client of bastion's benchmarks.
 *
 * One thread, one epoll loop, any number of sessions of one of two kinds:
 *   - bastion: TLS to the daemon, POST .../connect (bearer token), then the
 *     WebSocket upgrade (subprotocol bastion.v1) on the same connection,
 *     terminal bytes in binary frames (wslay does the framing);
 *   - pty: a command (`ssh -tt ...`) under a pseudo-terminal (forkpty), the
 *     floor every figure is compared with.
 * Every workload (W1–W5 of issue 7) drives both kinds through the same code,
 * so the only difference measured is the path.
 *
 * Output: one JSON object on stdout. Bounded: --timeout (default 600 s).
 * It kills only the children it forked. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pty.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <wslay/wslay.h>

enum kind { K_WS, K_PTY };
enum state { S_TCP, S_TLS, S_HTTP_CONNECT, S_HTTP_UPGRADE, S_OPEN, S_DONE, S_FAILED };
enum phase { P_SETUP, P_READY, P_ECHO, P_BULK, P_SLOW, P_CHECK };

struct sess {
	int idx;
	enum kind kind;
	enum state state;
	enum phase phase;
	int fd;
	pid_t pid;
	SSL *ssl;
	wslay_event_context_ptr ws;
	bool want_out;
	bool in_epoll_in;
	/* A frame's header, held until its payload comes, so that a frame goes
	 * out as one TLS record in one segment, as a browser sends it. */
	uint8_t more[16];
	size_t more_len;
	/* HTTP */
	char *req;
	size_t req_len, req_off;
	char resp[8192];
	size_t resp_len;
	const uint8_t *left; /* bytes after the 101's header block */
	size_t left_len;
	/* workload */
	char tail[32];
	size_t tail_len;
	const char *marker;
	uint64_t bytes_in;
	double t_start; /* connect started */
	double t_first; /* first terminal byte */
	double t_sent;  /* keystroke / command sent */
	char key;       /* the keystroke awaited */
	int samples_done;
	int samples_want;
	int warmup_left;
	double next_at; /* next keystroke */
	double *lat;    /* --pair: this session's latencies (ms) */
	int nlat;
	bool typer;
	bool setup_sent;
	bool ready;
	double slow_budget;
};

/* The sessions that type (W1: the one; W3: 50 of N), so that a tick costs
 * O(typists), not O(sessions). */
static struct sess **typers;
static int n_typers, cap_typers;

static void typer_add(struct sess *s)
{
	if (s->typer)
		return;
	if (n_typers == cap_typers) {
		cap_typers = cap_typers ? cap_typers * 2 : 64;
		typers = realloc(typers, sizeof(*typers) * (size_t)cap_typers);
		if (!typers) {
			perror("bclient");
			exit(1);
		}
	}
	s->typer = true;
	typers[n_typers++] = s;
}

static struct {
	enum kind kind;
	const char *host;
	int port;
	const char *token;
	const char *connect_path;
	char *body;
	char **argv; /* pty command */
	const char *work;
	int sessions, conc, typers, samples, warmup;
	bool pair; /* W1: a bastion and a direct session, keystrokes alternating */
	double gap_ms, timeout_s, settle_s, slow_rate, slow_secs;
	const char *cmd;
	int pid;  /* process whose RSS/CPU is sampled (bastion) */
	int pid2; /* a second one whose CPU is sampled (the target) */
	bool check;
} O = {
	.host = "127.0.0.1",
	.sessions = 1,
	.conc = 16,
	.typers = 0,
	.samples = 500,
	.warmup = 50,
	.gap_ms = 10,
	.timeout_s = 600,
	.settle_s = 2,
	.slow_rate = 102400,
	.slow_secs = 30,
};

static int ep;
static SSL_CTX *ctx;
static struct sess **S;
static int n_started, n_ready, n_failed, n_pending;
static double t0;
static json_t *result;
static char origin[128], hosthdr[128];

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *fmt, const char *arg)
{
	fprintf(stderr, "bclient: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	exit(2);
}

/* ---------- the measured process ---------- */

static long proc_rss_kib(int pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			kib = strtol(line + 6, NULL, 10);
	fclose(f);
	return kib;
}

static double proc_cpu_s(int pid)
{
	char path[64], buf[2048], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;
	size_t n;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')');
	if (!p)
		return -1;
	/* after ") ": state(3) ... utime(14) stime(15) */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* ---------- epoll ---------- */

static void ep_set(struct sess *s)
{
	struct epoll_event ev = { .data.ptr = s };

	ev.events = (s->in_epoll_in ? EPOLLIN : 0) | (s->want_out ? EPOLLOUT : 0);
	epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
}

static void sess_fail(struct sess *s, const char *why)
{
	if (s->state == S_FAILED || s->state == S_DONE)
		return;
	if (s->state != S_OPEN)
		n_pending--;
	fprintf(stderr, "bclient: session %d failed: %s\n", s->idx, why);
	s->state = S_FAILED;
	n_failed++;
	if (s->fd >= 0) {
		epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
		close(s->fd);
		s->fd = -1;
	}
}

static void sess_close(struct sess *s)
{
	if (s->fd >= 0) {
		epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
		if (s->ssl)
			SSL_shutdown(s->ssl);
		close(s->fd);
		s->fd = -1;
	}
	if (s->ssl) {
		SSL_free(s->ssl);
		s->ssl = NULL;
	}
	if (s->ws) {
		wslay_event_context_free(s->ws);
		s->ws = NULL;
	}
	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		waitpid(s->pid, NULL, 0);
		s->pid = 0;
	}
	if (s->state != S_FAILED)
		s->state = S_DONE;
}

/* ---------- sending terminal bytes ---------- */

static void ws_flush(struct sess *s)
{
	if (wslay_event_send(s->ws) != 0) {
		sess_fail(s, "websocket send");
		return;
	}
	bool w = wslay_event_want_write(s->ws);
	if (w != s->want_out) {
		s->want_out = w;
		ep_set(s);
	}
}

static void term_send(struct sess *s, const char *buf, size_t len)
{
	if (s->state != S_OPEN)
		return;
	if (s->kind == K_PTY) {
		ssize_t n = write(s->fd, buf, len);

		if (n != (ssize_t)len)
			sess_fail(s, "pty write");
		return;
	}
	struct wslay_event_msg m = { .opcode = WSLAY_BINARY_FRAME,
				     .msg = (const uint8_t *)buf,
				     .msg_length = len };

	if (wslay_event_queue_msg(s->ws, &m) != 0) {
		sess_fail(s, "websocket queue");
		return;
	}
	ws_flush(s);
}

/* ---------- workloads ---------- */

static bool find_marker(struct sess *s, const uint8_t *buf, size_t len)
{
	size_t ml = strlen(s->marker);
	char join[64];
	size_t take = len < ml ? len : ml;
	bool hit = false;

	memcpy(join, s->tail, s->tail_len);
	memcpy(join + s->tail_len, buf, take);
	if (memmem(join, s->tail_len + take, s->marker, ml))
		hit = true;
	else if (memmem(buf, len, s->marker, ml))
		hit = true;
	if (len >= ml - 1) {
		memcpy(s->tail, buf + len - (ml - 1), ml - 1);
		s->tail_len = ml - 1;
	} else {
		size_t keep = s->tail_len + len > ml - 1 ? ml - 1 - len : s->tail_len;

		memmove(s->tail, s->tail + s->tail_len - keep, keep);
		memcpy(s->tail + keep, buf, len);
		s->tail_len = keep + len;
	}
	return hit;
}

static const char SETUP_ECHO[] = "stty -icanon; echo READY\"\"X; cat >/dev/null\r";
static const char SETUP_SHELL[] = "echo READY\"\"X\r";

static bool workload_is(const char *w)
{
	return strcmp(O.work, w) == 0;
}

static void start_setup(struct sess *s)
{
	const char *line = (workload_is("bulk") || workload_is("slow")) ? SETUP_SHELL : SETUP_ECHO;

	s->marker = "READYX";
	s->tail_len = 0;
	s->setup_sent = true;
	term_send(s, line, strlen(line));
}

static void on_ready(struct sess *s)
{
	s->ready = true;
	s->phase = P_READY;
	n_ready++;
	if (workload_is("bulk")) {
		s->phase = P_BULK;
		s->marker = "BENCH_DONE";
		s->tail_len = 0;
		s->bytes_in = 0;
		s->t_sent = now();
		term_send(s, O.cmd, strlen(O.cmd));
	} else if (workload_is("slow")) {
		s->phase = P_SLOW;
		s->bytes_in = 0;
		s->t_sent = now();
		s->slow_budget = 0;
		term_send(s, O.cmd, strlen(O.cmd));
	} else if (workload_is("echo")) {
		s->phase = P_ECHO;
		typer_add(s);
		s->samples_want = O.samples;
		s->warmup_left = O.warmup;
		s->next_at = now() + 0.2;
	}
}

static void record(double **arr, int *n, double v);
static double *all_lat;
static int n_lat;

static void on_term_bytes(struct sess *s, const uint8_t *buf, size_t len)
{
	double t = now();

	if (!len)
		return;
	if (s->t_first == 0) {
		s->t_first = t;
		if (workload_is("connect"))
			return;
		/* The first prompt byte: the shell is there; type the setup line. */
		if (!s->setup_sent)
			start_setup(s);
	}
	s->bytes_in += len;
	if (s->phase == P_SETUP && s->setup_sent) {
		if (find_marker(s, buf, len))
			on_ready(s);
		return;
	}
	if ((s->phase == P_ECHO || s->phase == P_CHECK) && s->key && memchr(buf, s->key, len)) {
		double ms = (t - s->t_sent) * 1000.0;

		s->key = 0;
		if (s->phase == P_CHECK) {
			record(&all_lat, &n_lat, ms);
			s->phase = P_READY;
			return;
		}
		if (s->warmup_left > 0)
			s->warmup_left--;
		else {
			if (O.pair)
				record(&s->lat, &s->nlat, ms);
			else
				record(&all_lat, &n_lat, ms);
			s->samples_done++;
		}
		s->next_at = t + O.gap_ms / 1000.0 * (0.5 + (double)rand() / RAND_MAX);
		if (O.pair) { /* the other session types next, after the same gap */
			struct sess *o = S[s->idx ^ 1];

			if (o->phase == P_ECHO && o->samples_done < o->samples_want) {
				o->next_at = s->next_at;
				s->next_at = 1e300;
			}
		}
		return;
	}
	if (s->phase == P_BULK && find_marker(s, buf, len)) {
		s->phase = P_READY;
		s->t_first = t; /* reused: bulk end */
	}
}

/* ---------- WebSocket (wslay) ---------- */

static ssize_t ws_recv_cb(wslay_event_context_ptr c, uint8_t *buf, size_t len, int flags, void *ud)
{
	struct sess *s = ud;
	int n;

	(void)flags;
	if (s->left_len) {
		size_t k = len < s->left_len ? len : s->left_len;

		memcpy(buf, s->left, k);
		s->left += k;
		s->left_len -= k;
		return (ssize_t)k;
	}
	if (s->phase == P_SLOW) {
		if (s->slow_budget < 1) {
			wslay_event_set_error(c, WSLAY_ERR_WOULDBLOCK);
			return -1;
		}
		if (len > (size_t)s->slow_budget)
			len = (size_t)s->slow_budget;
	}
	ERR_clear_error();
	n = SSL_read(s->ssl, buf, (int)len);
	if (n > 0) {
		if (s->phase == P_SLOW)
			s->slow_budget -= n;
		return n;
	}
	switch (SSL_get_error(s->ssl, n)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		wslay_event_set_error(c, WSLAY_ERR_WOULDBLOCK);
		return -1;
	default:
		wslay_event_set_error(c, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
}

static ssize_t ws_send_cb(wslay_event_context_ptr c, const uint8_t *data, size_t len, int flags,
			  void *ud)
{
	struct sess *s = ud;
	uint8_t one[4096];
	const uint8_t *out = data;
	size_t n_out = len;
	int n;

	if ((flags & WSLAY_MSG_MORE) && s->more_len + len <= sizeof(s->more)) {
		memcpy(s->more + s->more_len, data, len);
		s->more_len += len;
		return (ssize_t)len;
	}
	if (s->more_len) {
		if (s->more_len + len > sizeof(one))
			n_out = sizeof(one) - s->more_len; /* the rest goes next call */
		memcpy(one, s->more, s->more_len);
		memcpy(one + s->more_len, data, n_out);
		out = one;
		n_out += s->more_len;
	}
	ERR_clear_error();
	n = SSL_write(s->ssl, out, (int)n_out);
	if (n > 0) {
		size_t held = s->more_len;

		if ((size_t)n < held) {
			memmove(s->more, s->more + n, held - (size_t)n);
			s->more_len = held - (size_t)n;
		} else {
			s->more_len = 0;
			if ((size_t)n > held)
				return n - (ssize_t)held;
		}
		wslay_event_set_error(c, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	switch (SSL_get_error(s->ssl, n)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		wslay_event_set_error(c, WSLAY_ERR_WOULDBLOCK);
		return -1;
	default:
		wslay_event_set_error(c, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
}

static int ws_genmask_cb(wslay_event_context_ptr c, uint8_t *buf, size_t len, void *ud)
{
	(void)c, (void)ud;
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)rand();
	return 0;
}

static void ws_msg_cb(wslay_event_context_ptr c, const struct wslay_event_on_msg_recv_arg *a,
		      void *ud)
{
	struct sess *s = ud;

	(void)c;
	if (a->opcode == WSLAY_BINARY_FRAME)
		on_term_bytes(s, a->msg, a->msg_length);
	else if (a->opcode == WSLAY_CONNECTION_CLOSE && s->state == S_OPEN &&
		 !workload_is("connect"))
		fprintf(stderr, "bclient: session %d: server closed the terminal\n", s->idx);
}

static const struct wslay_event_callbacks ws_cbs = {
	.recv_callback = ws_recv_cb,
	.send_callback = ws_send_cb,
	.genmask_callback = ws_genmask_cb,
	.on_msg_recv_callback = ws_msg_cb,
};

/* ---------- HTTP over TLS ---------- */

static void http_queue(struct sess *s, const char *method, const char *path, const char *body,
		       bool upgrade)
{
	size_t blen = body ? strlen(body) : 0;
	size_t cap = 1024 + strlen(path) + blen + strlen(O.token);

	free(s->req);
	s->req = malloc(cap);
	if (upgrade)
		s->req_len = (size_t)snprintf(
			s->req, cap,
			"%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nOrigin: %s\r\n"
			"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: bastion.v1\r\n\r\n",
			method, path, hosthdr, O.token, origin);
	else
		s->req_len = (size_t)snprintf(
			s->req, cap,
			"%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
			"Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			method, path, hosthdr, O.token, blen, body ? body : "");
	s->req_off = 0;
	s->resp_len = 0;
}

static int http_write(struct sess *s)
{
	while (s->req_off < s->req_len) {
		int n;

		ERR_clear_error();
		n = SSL_write(s->ssl, s->req + s->req_off, (int)(s->req_len - s->req_off));
		if (n > 0) {
			s->req_off += (size_t)n;
			continue;
		}
		int e = SSL_get_error(s->ssl, n);
		if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
			if (!s->want_out) {
				s->want_out = true;
				ep_set(s);
			}
			return 0;
		}
		return -1;
	}
	if (s->want_out) {
		s->want_out = false;
		ep_set(s);
	}
	return 0;
}

/* Reads an HTTP answer; returns 1 when complete (status in ret_status and
 * the body starting at ret_body), 0 for more, -1 on error. */
static int http_read(struct sess *s, int *ret_status, char **ret_body, size_t *ret_hlen)
{
	for (;;) {
		char *end;
		int n;

		s->resp[s->resp_len] = 0;
		end = strstr(s->resp, "\r\n\r\n");
		if (end) {
			size_t hlen = (size_t)(end + 4 - s->resp);
			char *cl = strcasestr(s->resp, "\r\nContent-Length:");
			size_t blen = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;

			if (sscanf(s->resp, "HTTP/1.1 %d", ret_status) != 1)
				return -1;
			if (*ret_status == 101 || s->resp_len >= hlen + blen) {
				*ret_body = s->resp + hlen;
				*ret_hlen = hlen;
				return 1;
			}
		}
		if (s->resp_len >= sizeof(s->resp) - 1)
			return -1;
		ERR_clear_error();
		n = SSL_read(s->ssl, s->resp + s->resp_len,
			     (int)(sizeof(s->resp) - 1 - s->resp_len));
		if (n > 0) {
			s->resp_len += (size_t)n;
			continue;
		}
		int e = SSL_get_error(s->ssl, n);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			return 0;
		return -1;
	}
}

static void start_connect_request(struct sess *s)
{
	s->state = S_HTTP_CONNECT;
	if (s->t_start == 0 || workload_is("connect"))
		s->t_start = now();
	http_queue(s, "POST", O.connect_path, O.body, false);
	if (http_write(s) < 0)
		sess_fail(s, "POST connect: write");
}

static void on_ws_readable(struct sess *s)
{
	if (wslay_event_recv(s->ws) != 0) {
		if (s->state == S_OPEN)
			sess_fail(s, "websocket closed or broken");
		return;
	}
	if (s->state == S_OPEN)
		ws_flush(s);
}

static void on_http_event(struct sess *s)
{
	int status = 0;
	char *body = NULL;
	size_t hlen = 0;
	int r;

	if (s->req_off < s->req_len) {
		if (http_write(s) < 0) {
			sess_fail(s, "HTTP write");
			return;
		}
		if (s->req_off < s->req_len)
			return;
	}
	r = http_read(s, &status, &body, &hlen);
	if (r < 0) {
		sess_fail(s, "HTTP read");
		return;
	}
	if (r == 0)
		return;
	if (s->state == S_HTTP_CONNECT) {
		json_t *j, *term;
		char path[256];

		if (status != 201) {
			char why[300];

			snprintf(why, sizeof(why), "connect answered %d: %.200s", status, body);
			sess_fail(s, why);
			return;
		}
		j = json_loads(body, 0, NULL);
		term = json_object_get(json_object_get(j, "session"), "terminal");
		if (!json_is_string(term)) {
			json_decref(j);
			sess_fail(s, "connect: no session.terminal");
			return;
		}
		snprintf(path, sizeof(path), "%s", json_string_value(term));
		json_decref(j);
		s->state = S_HTTP_UPGRADE;
		http_queue(s, "GET", path, NULL, true);
		if (http_write(s) < 0)
			sess_fail(s, "upgrade: write");
		return;
	}
	if (status != 101) {
		sess_fail(s, "upgrade refused");
		return;
	}
	s->left = (const uint8_t *)s->resp + hlen;
	s->left_len = s->resp_len - hlen;
	wslay_event_context_client_init(&s->ws, &ws_cbs, s);
	s->state = S_OPEN;
	n_pending--;
	on_ws_readable(s);
}

static void on_tls_event(struct sess *s)
{
	int r;

	ERR_clear_error();
	r = SSL_connect(s->ssl);
	if (r == 1) {
		start_connect_request(s);
		return;
	}
	switch (SSL_get_error(s->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		if (s->want_out) {
			s->want_out = false;
			ep_set(s);
		}
		return;
	case SSL_ERROR_WANT_WRITE:
		if (!s->want_out) {
			s->want_out = true;
			ep_set(s);
		}
		return;
	default:
		sess_fail(s, "TLS handshake");
	}
}

/* ---------- starting sessions ---------- */

static void sess_start(struct sess *s)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = s };

	s->state = S_TCP;
	s->phase = P_SETUP;
	s->in_epoll_in = true;
	s->t_first = 0;
	s->setup_sent = false;
	s->ready = false;
	n_pending++;
	n_started++;
	if (s->kind == K_PTY) {
		struct winsize wsz = { .ws_row = 40, .ws_col = 120 };
		int master;

		s->t_start = now();
		s->pid = forkpty(&master, NULL, NULL, &wsz);
		if (s->pid < 0) {
			sess_fail(s, "forkpty");
			return;
		}
		if (s->pid == 0) {
			execvp(O.argv[0], O.argv);
			_exit(127);
		}
		s->fd = master;
		fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
		s->state = S_OPEN;
		n_pending--;
		epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
		return;
	}
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)O.port) };
	int one = 1;

	inet_pton(AF_INET, O.host, &a.sin_addr);
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		sess_fail(s, "socket");
		return;
	}
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(s->fd, (struct sockaddr *)&a, sizeof(a)) < 0 && errno != EINPROGRESS) {
		sess_fail(s, "connect");
		return;
	}
	s->ssl = SSL_new(ctx);
	SSL_set_fd(s->ssl, s->fd);
	SSL_set_mode(s->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	s->state = S_TLS;
	s->want_out = true;
	ev.events |= EPOLLOUT;
	epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
}

static void on_pty_readable(struct sess *s)
{
	uint8_t buf[65536];

	for (int i = 0; i < 64; i++) {
		size_t want = sizeof(buf);
		ssize_t n;

		if (s->phase == P_SLOW) {
			if (s->slow_budget < 1)
				return;
			if (want > (size_t)s->slow_budget)
				want = (size_t)s->slow_budget;
		}
		n = read(s->fd, buf, want);
		if (n > 0) {
			if (s->phase == P_SLOW)
				s->slow_budget -= (double)n;
			on_term_bytes(s, buf, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EAGAIN)
			return;
		sess_fail(s, "pty closed");
		return;
	}
}

static void on_event(struct sess *s, uint32_t events)
{
	switch (s->state) {
	case S_TCP:
	case S_TLS:
		on_tls_event(s);
		break;
	case S_HTTP_CONNECT:
	case S_HTTP_UPGRADE:
		on_http_event(s);
		break;
	case S_OPEN:
		if (s->kind == K_PTY) {
			on_pty_readable(s);
		} else {
			if (events & EPOLLOUT)
				ws_flush(s);
			if (s->state == S_OPEN && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				on_ws_readable(s);
		}
		break;
	default:
		break;
	}
}

/* ---------- statistics ---------- */

static void record(double **arr, int *n, double v)
{
	if ((*n & (*n - 1)) == 0 || *n == 0) {
		double *p = realloc(*arr, sizeof(double) * (size_t)(*n ? *n * 2 : 64));

		if (!p)
			return;
		*arr = p;
	}
	(*arr)[(*n)++] = v;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
	int i;

	if (n == 0)
		return NAN;
	qsort(v, (size_t)n, sizeof(double), cmp_d);
	i = (int)ceil(p / 100.0 * n) - 1;
	if (i < 0)
		i = 0;
	if (i >= n)
		i = n - 1;
	return v[i];
}

static void put_lat(const char *prefix, double *v, int n)
{
	char k[64];

	snprintf(k, sizeof(k), "%s_n", prefix);
	json_object_set_new(result, k, json_integer(n));
	if (!n)
		return;
	snprintf(k, sizeof(k), "%s_p50_ms", prefix);
	json_object_set_new(result, k, json_real(pct(v, n, 50)));
	snprintf(k, sizeof(k), "%s_p99_ms", prefix);
	json_object_set_new(result, k, json_real(pct(v, n, 99)));
	snprintf(k, sizeof(k), "%s_max_ms", prefix);
	json_object_set_new(result, k, json_real(pct(v, n, 100)));
}

/* ---------- the loop ---------- */

static bool timed_out(void)
{
	return now() - t0 > O.timeout_s;
}

/* Runs the loop until done() says so or the time bound passes. */
/* When the tick next has work (0: none): the loop sleeps until then, so a
 * typist's keystroke leaves when it is due, not at the next 5 ms tick. */
static double tick_due;

static bool loop_until(bool (*done)(void), void (*tick)(double), double max_s)
{
	struct epoll_event evs[256];
	double until = now() + max_s;

	while (!done()) {
		struct timespec ts = { 0, 5000000 };
		double t = now();
		int n;

		if (t > until || timed_out())
			return false;
		tick_due = 0;
		if (tick)
			tick(t);
		if (tick_due > 0) {
			double wait = tick_due - now();

			if (wait < 0.005)
				ts.tv_nsec = wait > 0 ? (long)(wait * 1e9) : 0;
		}
		n = epoll_pwait2(ep, evs, 256, &ts, NULL);
		for (int i = 0; i < n; i++)
			on_event(evs[i].data.ptr, evs[i].events);
	}
	return true;
}

static int next_to_start;

static void opener_tick(double t)
{
	(void)t;
	while (next_to_start < O.sessions && n_pending < O.conc)
		sess_start(S[next_to_start++]);
}

static bool all_ready(void)
{
	return n_ready + n_failed >= O.sessions;
}

static void typer_tick(double t)
{
	/* --pair: one keystroke in flight at a time, the sessions taking
	 * turns (on_term_bytes hands the next one over). */
	if (O.pair)
		for (int i = 0; i < n_typers; i++)
			if (typers[i]->key)
				return;
	for (int i = 0; i < n_typers; i++) {
		struct sess *s = typers[i];

		if (!s->typer || s->state != S_OPEN || s->phase != P_ECHO || s->key)
			continue;
		if (s->samples_done >= s->samples_want) {
			s->phase = P_READY;
			continue;
		}
		if (t >= s->next_at) {
			s->key = (char)('a' + (s->samples_done + s->warmup_left) % 26);
			s->t_sent = now();
			term_send(s, &s->key, 1);
			if (O.pair)
				return;
		} else if (tick_due == 0 || s->next_at < tick_due) {
			tick_due = s->next_at;
		}
	}
}

static bool typers_done(void)
{
	for (int i = 0; i < n_typers; i++)
		if (typers[i]->state == S_OPEN && typers[i]->phase == P_ECHO)
			return false;
	return true;
}

static bool bulk_done(void)
{
	return S[0]->state != S_OPEN || S[0]->phase == P_READY;
}

static bool never(void)
{
	return false;
}

static bool first_byte(void)
{
	return S[0]->t_first != 0 || S[0]->state == S_FAILED;
}

static double slow_last;
static long rss_max;
static json_t *rss_series;

static void slow_tick(double t)
{
	struct sess *s = S[0];

	if (slow_last == 0)
		slow_last = t;
	if (s->phase == P_SLOW && s->state == S_OPEN) {
		s->slow_budget += (t - slow_last) * O.slow_rate;
		if (s->slow_budget > O.slow_rate / 10)
			s->slow_budget = O.slow_rate / 10; /* at most 100 ms of burst */
		if (s->kind == K_PTY)
			on_pty_readable(s);
		else
			on_ws_readable(s);
	}
	slow_last = t;
}

static _Noreturn void usage(void)
{
	fprintf(stderr,
		"usage: bclient --work echo|bulk|connect|hold|slow [options] (--bastion | --pty -- CMD...)\n"
		"       bclient --work echo --pair [options] -- CMD...   (W1: bastion and CMD, keystrokes alternating)\n"
		"  --host H --port P --token T --path /api/v1/groups/G/vms/V/connect --body FILE\n"
		"  --sessions N --conc C --typers M --samples S --warmup W --gap MS --cmd LINE\n"
		"  --pid PID (sampled RSS/CPU) --pid2 PID (CPU) --settle S --rate BYTES/S --secs S --check --timeout S\n");
	exit(2);
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf;
	long n;

	if (!f)
		die("cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	if (fread(buf, 1, (size_t)n, f) != (size_t)n)
		die("cannot read %s", path);
	fclose(f);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = 0;
	return buf;
}

static char *unescape_cmd(const char *in)
{
	/* The command line is given with \r (and \n) spelt out. */
	char *out = malloc(strlen(in) + 1), *o = out;

	for (; *in; in++) {
		if (in[0] == '\\' && in[1] == 'r') {
			*o++ = '\r';
			in++;
		} else if (in[0] == '\\' && in[1] == 'n') {
			*o++ = '\n';
			in++;
		} else {
			*o++ = *in;
		}
	}
	*o = 0;
	return out;
}

/* A flag's whole value as a non-negative int; anything else is a usage error. */
static int flag_int(const char *arg)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || v < 0 || v > INT_MAX)
		usage();
	return (int)v;
}

/* A flag's whole value as a finite non-negative number. */
static double flag_double(const char *arg)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	if (errno != 0 || end == arg || *end != '\0' || !(v >= 0 && v < 1e12))
		usage();
	return v;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "bastion", no_argument, NULL, 'B' },
		{ "pty", no_argument, NULL, 'Y' },
		{ "pair", no_argument, NULL, '2' },
		{ "host", required_argument, NULL, 'h' },
		{ "port", required_argument, NULL, 'p' },
		{ "token", required_argument, NULL, 't' },
		{ "path", required_argument, NULL, 'P' },
		{ "body", required_argument, NULL, 'b' },
		{ "work", required_argument, NULL, 'w' },
		{ "sessions", required_argument, NULL, 'n' },
		{ "conc", required_argument, NULL, 'c' },
		{ "typers", required_argument, NULL, 'm' },
		{ "samples", required_argument, NULL, 's' },
		{ "warmup", required_argument, NULL, 'W' },
		{ "gap", required_argument, NULL, 'g' },
		{ "cmd", required_argument, NULL, 'C' },
		{ "pid", required_argument, NULL, 'i' },
		{ "settle", required_argument, NULL, 'S' },
		{ "rate", required_argument, NULL, 'r' },
		{ "secs", required_argument, NULL, 'd' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "check", no_argument, NULL, 'k' },
		{ "pid2", required_argument, NULL, 'I' },
		{ 0 },
	};
	int opt, rc = 0;
	bool ok = true;

	O.kind = K_WS;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'B':
			O.kind = K_WS;
			break;
		case 'Y':
			O.kind = K_PTY;
			break;
		case '2':
			O.pair = true;
			break;
		case 'h':
			O.host = optarg;
			break;
		case 'p':
			O.port = flag_int(optarg);
			break;
		case 't':
			O.token = optarg;
			break;
		case 'P':
			O.connect_path = optarg;
			break;
		case 'b':
			O.body = read_file(optarg);
			break;
		case 'w':
			O.work = optarg;
			break;
		case 'n':
			O.sessions = flag_int(optarg);
			break;
		case 'c':
			O.conc = flag_int(optarg);
			break;
		case 'm':
			O.typers = flag_int(optarg);
			break;
		case 's':
			O.samples = flag_int(optarg);
			break;
		case 'W':
			O.warmup = flag_int(optarg);
			break;
		case 'g':
			O.gap_ms = flag_double(optarg);
			break;
		case 'C':
			O.cmd = unescape_cmd(optarg);
			break;
		case 'i':
			O.pid = flag_int(optarg);
			break;
		case 'S':
			O.settle_s = flag_double(optarg);
			break;
		case 'r':
			O.slow_rate = flag_double(optarg);
			break;
		case 'd':
			O.slow_secs = flag_double(optarg);
			break;
		case 'T':
			O.timeout_s = flag_double(optarg);
			break;
		case 'k':
			O.check = true;
			break;
		case 'I':
			O.pid2 = flag_int(optarg);
			break;
		default:
			usage();
		}
	}
	if (!O.work)
		usage();
	if (O.kind == K_PTY || O.pair) {
		if (optind >= argc)
			usage();
		O.argv = argv + optind;
	}
	if ((O.kind == K_WS || O.pair) && (!O.port || !O.token || !O.connect_path || !O.body))
		usage();
	if (O.pair && !workload_is("echo"))
		usage();
	signal(SIGPIPE, SIG_IGN);
	srand((unsigned)getpid());
	{
		struct rlimit rl;

		getrlimit(RLIMIT_NOFILE, &rl);
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	snprintf(origin, sizeof(origin), "https://%s:%d", O.host, O.port);
	snprintf(hosthdr, sizeof(hosthdr), "%s:%d", O.host, O.port);
	ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* the daemon's self-signed pair */
	/* One read() per record and what follows it, as a browser reads, not
	 * a 5-byte header read and then the body. */
	SSL_CTX_set_read_ahead(ctx, 1);
	ep = epoll_create1(EPOLL_CLOEXEC);
	result = json_object();
	json_object_set_new(result, "work", json_string(O.work));
	json_object_set_new(result, "path",
			    json_string(O.pair            ? "pair"
					: O.kind == K_PTY ? "direct"
							  : "bastion"));
	t0 = now();

	if (workload_is("connect")) {
		/* W4: O.samples sequential sessions, request → first byte. For
		 * bastion the TLS connection is open first (the portal is). */
		double *v = NULL;
		int nv = 0;

		O.sessions = 1;
		S = calloc(1, sizeof(*S));
		for (int i = 0; i < O.samples && !timed_out(); i++) {
			struct sess *s = calloc(1, sizeof(*s));

			S[0] = s;
			s->fd = -1;
			s->kind = O.kind;
			n_pending = 0;
			n_failed = 0;
			sess_start(s);
			if (!loop_until(first_byte, NULL, 30) || s->state == S_FAILED) {
				ok = false;
				sess_close(s);
				free(s);
				S[0] = NULL; /* out: closes what S still holds */
				break;
			}
			record(&v, &nv, (s->t_first - s->t_start) * 1000.0);
			sess_close(s);
			free(s->req);
			free(s);
			S[0] = NULL;
			usleep(100000); /* let the server reap the session */
		}
		put_lat("connect", v, nv);
		goto out;
	}

	if (O.pair)
		O.sessions = 2;
	S = calloc((size_t)O.sessions, sizeof(*S));
	for (int i = 0; i < O.sessions; i++) {
		S[i] = calloc(1, sizeof(**S));
		S[i]->idx = i;
		S[i]->fd = -1;
		S[i]->kind = O.pair ? (i == 0 ? K_WS : K_PTY) : O.kind;
	}
	long rss0 = proc_rss_kib(O.pid);
	double open_t0 = now(), open_cpu0 = proc_cpu_s(O.pid), open_cpu0_2 = proc_cpu_s(O.pid2);

	json_object_set_new(result, "rss_before_kib", json_integer(rss0));
	ok = loop_until(all_ready, opener_tick, O.timeout_s);
	json_object_set_new(result, "sessions", json_integer(O.sessions));
	json_object_set_new(result, "ready", json_integer(n_ready));
	json_object_set_new(result, "failed", json_integer(n_failed));
	json_object_set_new(result, "open_s", json_real(now() - open_t0));
	/* Whether opening them was bastion-bound: its CPU-s over the wall time. */
	json_object_set_new(result, "cpu_s_open", json_real(proc_cpu_s(O.pid) - open_cpu0));
	if (O.pid2)
		json_object_set_new(result, "target_cpu_s_open",
				    json_real(proc_cpu_s(O.pid2) - open_cpu0_2));
	if (!ok || n_failed)
		goto out;

	if (workload_is("echo")) {
		ok = loop_until(typers_done, typer_tick, O.timeout_s);
		if (O.pair) {
			put_lat("echo", S[0]->lat, S[0]->nlat);
			put_lat("direct_echo", S[1]->lat, S[1]->nlat);
		} else {
			put_lat("echo", all_lat, n_lat);
		}
	} else if (workload_is("bulk")) {
		double cpu0 = proc_cpu_s(O.pid);

		ok = loop_until(bulk_done, NULL, O.timeout_s);
		double secs = S[0]->t_first - S[0]->t_sent;
		double cpu = proc_cpu_s(O.pid) - cpu0;

		json_object_set_new(result, "bytes", json_integer((json_int_t)S[0]->bytes_in));
		json_object_set_new(result, "seconds", json_real(secs));
		json_object_set_new(result, "mib_s", json_real(S[0]->bytes_in / 1048576.0 / secs));
		if (O.pid > 0) {
			json_object_set_new(result, "cpu_s", json_real(cpu));
			json_object_set_new(result, "cpu_s_per_gib",
					    json_real(cpu / (S[0]->bytes_in / 1073741824.0)));
		}
	} else if (workload_is("hold")) {
		/* W3 / 10k: N idle sessions, RSS per session; then M type. */
		loop_until(never, NULL, O.settle_s);
		long rss1 = proc_rss_kib(O.pid);

		json_object_set_new(result, "rss_idle_kib", json_integer(rss1));
		if (O.sessions && rss0 > 0)
			json_object_set_new(result, "kib_per_session",
					    json_real((double)(rss1 - rss0) / O.sessions));
		double cpu0 = proc_cpu_s(O.pid), cpu0_2 = proc_cpu_s(O.pid2), tt0 = now();
		for (int i = 0; i < O.typers && i < O.sessions; i++) {
			int k = (int)((long)i * O.sessions / O.typers); /* spread over the set */

			typer_add(S[k]);
			S[k]->phase = P_ECHO;
			S[k]->samples_want = O.samples;
			S[k]->warmup_left = O.warmup;
			S[k]->next_at = now() + O.gap_ms / 1000.0 * (double)rand() / RAND_MAX;
		}
		if (O.typers)
			ok = loop_until(typers_done, typer_tick, O.timeout_s);
		put_lat("echo", all_lat, n_lat);
		json_object_set_new(result, "cpu_s_typing", json_real(proc_cpu_s(O.pid) - cpu0));
		json_object_set_new(result, "typing_s", json_real(now() - tt0));
		if (O.pid2 > 0)
			json_object_set_new(result, "target_cpu_s_typing",
					    json_real(proc_cpu_s(O.pid2) - cpu0_2));
		if (ok && O.check) {
			/* Every session answers one keystroke: waves of 200. */
			double *keep = all_lat;
			int answered = 0;

			all_lat = NULL;
			n_lat = 0;
			for (int base = 0; base < O.sessions && !timed_out(); base += 200) {
				int end = base + 200 < O.sessions ? base + 200 : O.sessions;

				for (int i = base; i < end; i++) {
					struct sess *s = S[i];

					if (s->state != S_OPEN)
						continue;
					s->phase = P_CHECK;
					s->key = 'q';
					s->t_sent = now();
					term_send(s, "q", 1);
				}
				bool wave_done(void);
				loop_until(wave_done, NULL, 10);
				for (int i = base; i < end; i++)
					if (S[i]->phase == P_READY)
						answered++;
			}
			json_object_set_new(result, "check_answered", json_integer(answered));
			put_lat("check", all_lat, n_lat);
			all_lat = keep;
		}
		json_object_set_new(result, "rss_end_kib", json_integer(proc_rss_kib(O.pid)));
	} else if (workload_is("slow")) {
		/* W5: read at O.slow_rate for O.slow_secs while the VM prints. */
		double end = now() + O.slow_secs, next_sample = now() + 1;
		long r0 = proc_rss_kib(O.pid);

		rss_series = json_array();
		rss_max = r0;
		while (now() < end && S[0]->state == S_OPEN && !timed_out()) {
			loop_until(never, slow_tick, 0.05);
			if (now() >= next_sample) {
				long r = proc_rss_kib(O.pid);

				if (r > rss_max)
					rss_max = r;
				json_array_append_new(rss_series, json_integer(r));
				next_sample += 1;
			}
		}
		json_object_set_new(result, "rss_start_kib", json_integer(r0));
		json_object_set_new(result, "rss_max_kib", json_integer(rss_max));
		json_object_set_new(result, "rss_growth_kib", json_integer(rss_max - r0));
		json_object_set_new(result, "bytes_read", json_integer((json_int_t)S[0]->bytes_in));
		json_object_set_new(result, "read_rate_kib_s",
				    json_real(S[0]->bytes_in / 1024.0 / O.slow_secs));
		json_object_set_new(result, "rss_series_kib", rss_series);
		ok = S[0]->state == S_OPEN;
	}
out:
	json_object_set_new(result, "ok", json_boolean(ok && n_failed == 0));
	json_object_set_new(result, "elapsed_s", json_real(now() - t0));
	if (O.pid > 0)
		json_object_set_new(result, "rss_final_kib", json_integer(proc_rss_kib(O.pid)));
	{
		char *txt = json_dumps(result, JSON_COMPACT | JSON_REAL_PRECISION(6));

		puts(txt);
		free(txt);
	}
	fflush(stdout);
	if (!ok || n_failed)
		rc = 1;
	for (int i = 0; S && i < O.sessions; i++)
		if (S[i])
			sess_close(S[i]);
	return rc;
}

bool wave_done(void)
{
	for (int i = 0; i < O.sessions; i++)
		if (S[i]->phase == P_CHECK && S[i]->state == S_OPEN)
			return false;
	return true;
}
