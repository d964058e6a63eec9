/* The SSH client's tests' harness (sshctest.h): the callbacks that record a
 * session, the bounded loop runs, the keys and the sshd the group setup
 * makes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "sshctest.h"

#include <dirent.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

char user_name[64];

struct sshd main_sshd;

static pid_t ppid_of(pid_t pid)
{
	char path[64], buf[512];
	FILE *f;
	char *rp;
	long pp = -1;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (f == NULL)
		return -1;
	if (fgets(buf, sizeof(buf), f) != NULL && (rp = strrchr(buf, ')')) != NULL)
		sscanf(rp + 1, " %*c %ld", &pp);
	fclose(f);
	return (pid_t)pp;
}

/* Collects the descendants of root (children first in the list, in tree
 * order). Returns how many were found. */
size_t descendants(pid_t root, pid_t *out, size_t max)
{
	size_t n = 0;

	for (size_t scan = 0; scan <= n && n < max; scan++) {
		pid_t parent = scan == 0 ? root : out[scan - 1];
		DIR *d = opendir("/proc");
		struct dirent *e;

		assert_non_null(d);
		while ((e = readdir(d)) != NULL && n < max) {
			char *end;
			long pid = strtol(e->d_name, &end, 10);

			if (*end != '\0' || pid <= 0)
				continue;
			if (ppid_of((pid_t)pid) == parent)
				out[n++] = (pid_t)pid;
		}
		closedir(d);
	}
	return n;
}

/* ---- loop harness ---- */

/* uv_stop() matters: with UV_RUN_ONCE a timer that fires at the top of an
 * iteration would otherwise leave uv_run blocked in epoll until the next
 * event. */
void t_done(struct tctx *t)
{
	t->done = true;
	uv_stop(&t->loop);
}

/* Offers everything still to send (up to 4 MiB at once, far more than the
 * VM's window) until sshc_write takes less than offered. */
static char *big;

void send_more(struct tctx *t)
{
	const size_t big_len = 4 * 1024 * 1024;

	if (big == NULL) {
		big = malloc(big_len);
		assert_non_null(big);
		memset(big, 'x', big_len);
	}
	while (t->sent < t->to_send) {
		size_t want = t->to_send - t->sent;
		ssize_t n;

		if (want > big_len)
			want = big_len;
		n = sshc_write(t->c, big, want);
		assert_true(n >= 0);
		t->sent += (size_t)n;
		if ((size_t)n < want) {
			t->short_writes++;
			return; /* wait for on_writable */
		}
	}
}

bool out_has(struct tctx *t, const char *s)
{
	return t->out_len > 0 && memmem(t->out, t->out_len, s, strlen(s)) != NULL;
}

static void cb_ready(struct sshc *c, void *ud)
{
	struct tctx *t = ud;

	if (!t->alive) {
		t->after_close_calls++;
		return;
	}
	t->ready = true;
	t->ready_count++;
	if (t->paused)
		sshc_pause_output(c, true);
	if (t->on_ready_write != NULL) {
		size_t n = strlen(t->on_ready_write);

		assert_int_equal(sshc_write(c, t->on_ready_write, n), (ssize_t)n);
	}
	if (t->done_on_ready)
		t_done(t);
}

static void cb_fail(struct sshc *c, int err, const char *msg, void *ud)
{
	struct tctx *t = ud;

	if (!t->alive) {
		t->after_close_calls++;
		return;
	}
	t->failed = true;
	t->fail_err = err;
	snprintf(t->fail_msg, sizeof(t->fail_msg), "%s", msg);
	t->alive = false;
	t_done(t);
}

static void cb_new_key(struct sshc *c, const char *type, const char *b64, void *ud)
{
	struct tctx *t = ud;

	if (!t->alive) {
		t->after_close_calls++;
		return;
	}
	t->new_key_count++;
	snprintf(t->new_type, sizeof(t->new_type), "%s", type);
	snprintf(t->new_b64, sizeof(t->new_b64), "%s", b64);
	if (t->close_in_new_key) {
		sshc_close(c);
		t->alive = false;
		t_done(t);
	}
}

static void cb_data(struct sshc *c, uint8_t *buf, size_t len, void *ud)
{
	struct tctx *t = ud;

	if (!t->alive) {
		t->after_close_calls++;
		return;
	}
	assert_true(len > 0);
	if (t->paused)
		t->data_while_paused += len;
	if (t->out_len + len > t->out_cap) {
		size_t cap = t->out_cap ? t->out_cap * 2 : 65536;

		while (cap < t->out_len + len)
			cap *= 2;
		assert_true(cap <= 16 * 1024 * 1024);
		t->out = realloc(t->out, cap);
		assert_non_null(t->out);
		t->out_cap = cap;
	}
	memcpy(t->out + t->out_len, buf, len);
	t->out_len += len;
	if (t->send_after_seen != NULL && !t->sending && out_has(t, t->send_after_seen)) {
		t->sending = true;
		send_more(t);
	}
	if (t->done_when_seen != NULL && out_has(t, t->done_when_seen))
		t_done(t);
}

static void cb_writable(struct sshc *c, void *ud)
{
	struct tctx *t = ud;

	if (!t->alive) {
		t->after_close_calls++;
		return;
	}
	t->writable_calls++;
	if (t->sending)
		send_more(t);
}

static void cb_end(struct sshc *c, int exit_status, const char *reason, void *ud)
{
	struct tctx *t = ud;

	if (!t->alive) {
		t->after_close_calls++;
		return;
	}
	t->ended = true;
	t->end_count++;
	t->exit_status = exit_status;
	snprintf(t->end_reason, sizeof(t->end_reason), "%s", reason);
	/* Still valid inside the callback. */
	sshc_counters(c, &t->cnt_in, &t->cnt_out);
	t->alive = false;
	t_done(t);
}

static void cb_challenge(struct sshc *c, const struct sshc_challenge *ch, void *ud)
{
	struct tctx *t = ud;

	if (!t->alive) {
		t->after_close_calls++;
		return;
	}
	t->challenge_count++;
	t->challenge = *ch;
	t_done(t); /* the test answers from outside the callback */
}

const struct sshc_callbacks cbs_challenge = {
	.on_ready = cb_ready,
	.on_fail = cb_fail,
	.on_challenge = cb_challenge,
	.on_new_host_key = cb_new_key,
	.on_data = cb_data,
	.on_writable = cb_writable,
	.on_end = cb_end,
};

const struct sshc_callbacks cbs = {
	.on_ready = cb_ready,
	.on_fail = cb_fail,
	.on_new_host_key = cb_new_key,
	.on_data = cb_data,
	.on_writable = cb_writable,
	.on_end = cb_end,
};

static void guard_cb(uv_timer_t *h)
{
	struct tctx *t = h->data;

	t->timed_out = true;
	uv_stop(&t->loop);
}

void t_init(struct tctx *t)
{
	memset(t, 0, sizeof(*t));
	assert_int_equal(uv_loop_init(&t->loop), 0);
	uv_timer_init(&t->loop, &t->guard);
	t->guard.data = t;
	uv_timer_init(&t->loop, &t->delay);
	t->delay.data = t;
	uv_timer_start(&t->guard, guard_cb, GUARD_MS, 0);
}

/* Runs the loop until the test says done or the guard fires. */
void t_run(struct tctx *t)
{
	t->done = false;
	while (!t->done && !t->timed_out)
		uv_run(&t->loop, UV_RUN_ONCE);
	assert_false(t->timed_out);
}

/* Closes whatever is left and checks the loop ends with no handle open:
 * sshc released everything it had. */
void t_finish(struct tctx *t)
{
	if (t->alive) {
		sshc_close(t->c);
		t->alive = false;
	}
	uv_close((uv_handle_t *)&t->guard, NULL);
	uv_close((uv_handle_t *)&t->delay, NULL);
	for (int i = 0; i < 100 && uv_run(&t->loop, UV_RUN_NOWAIT) != 0; i++)
		;
	assert_int_equal(uv_loop_close(&t->loop), 0);
	assert_int_equal(t->after_close_calls, 0);
	free(t->out);
}

static ssh_key load_key(const char *name)
{
	char *text = read_file(path_of(name));
	ssh_key key = NULL;
	const char *reason = NULL;

	assert_non_null(text);
	assert_int_equal(sshc_key_import(text, strlen(text), NULL, &key, &reason), 0);
	free(text);
	return key;
}

void params_key(struct sshc_params *p, uint16_t port, const char *keyname)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->ip, sizeof(p->ip), "127.0.0.1");
	p->port = port;
	snprintf(p->username, sizeof(p->username), "%s", user_name);
	p->auth = SSHC_AUTH_KEY;
	p->key = load_key(keyname);
	p->cols = 80;
	p->rows = 24;
}

void t_start(struct tctx *t, struct sshc_params *p)
{
	assert_int_equal(sshc_start(&t->loop, p, &cbs, t, &t->c), 0);
	assert_null(p->key);
	assert_null(p->password);
	t->alive = true;
}

/* "type b64" of a .pub file, as the host_keys array wants it. */
char *pub_line(const char *name)
{
	char *text = read_file(path_of(name));
	char *sp;

	assert_non_null(text);
	sp = strchr(text, ' ');
	assert_non_null(sp);
	sp = strchr(sp + 1, ' ');
	if (sp != NULL)
		*sp = '\0';
	return text;
}

long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* ---- setup ---- */

int group_setup(void **state)
{
	struct passwd *pw = getpwuid(geteuid());
	char *pub;

	if (pw == NULL)
		return -1;
	snprintf(user_name, sizeof(user_name), "%s", pw->pw_name);
	/* libuv opens its process-wide signal pipe with the first loop: do
	 * that now so the per-test descriptor counts compare like with like. */
	{
		uv_loop_t warm;

		if (uv_loop_init(&warm) != 0 || uv_loop_close(&warm) != 0)
			return -1;
	}
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/bastion-sshc-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	chmod(tmpdir, 0755);
	/* sshd's privilege separation directory; only root's sshd needs it. */
	if (mkdir("/run/sshd", 0755) < 0 && errno != EEXIST && geteuid() == 0)
		return -1;
	keygen("host_key");
	keygen("id");
	keygen("wrong");
	pub = read_file(path_of("id.pub"));
	if (pub == NULL)
		return -1;
	write_file(path_of("authorized_keys"), pub);
	chmod(path_of("authorized_keys"), 0644);
	free(pub);
	sshd_start(&main_sshd, "main",
		   "UsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n");
	return 0;
}

int group_teardown(void **state)
{
	sshd_stop(&main_sshd);
	free(big);
	big = NULL;
	return sshd_cleanup();
}

static void delay_cb(uv_timer_t *h)
{
	t_done(h->data);
}

/* Wait in the loop for ms, with the session live. */
void t_sleep(struct tctx *t, unsigned ms)
{
	uv_timer_start(&t->delay, delay_cb, ms, 0);
	t_run(t);
}

double cpu_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
