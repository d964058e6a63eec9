/* Tests for src/ssh/sshc.c against a real OpenSSH sshd that the test
 * starts itself on 127.0.0.1 with its own host key and configuration in a
 * temporary directory. Every loop run is bounded by a guard timer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/err.h"
#include "core/log.h"
#include "ssh/sshc.h"
#include "sshdtest.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define GUARD_MS  20000
#define TEST_USER "bastiontest"

static char user_name[64];

static struct sshd main_sshd;

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
static size_t descendants(pid_t root, pid_t *out, size_t max)
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

struct tctx {
	uv_loop_t loop;
	uv_timer_t guard;
	uv_timer_t delay;
	struct sshc *c;
	bool alive;
	bool timed_out;
	bool done;

	bool ready;
	int ready_count;
	bool failed;
	int fail_err;
	char fail_msg[512];
	bool ended;
	int exit_status;
	char end_reason[512];
	int end_count;
	int after_close_calls;
	uint64_t cnt_in, cnt_out;

	int new_key_count;
	char new_type[64];
	char new_b64[1024];

	uint8_t *out;
	size_t out_len, out_cap;

	/* Behaviour knobs. */
	const char *on_ready_write;
	bool done_on_ready;
	bool close_in_new_key;
	const char *done_when_seen;

	/* Keyboard-interactive: the last challenge. */
	int challenge_count;
	struct sshc_challenge challenge;

	/* Pause test. */
	bool paused;
	size_t data_while_paused;

	/* Write back-pressure test. */
	size_t to_send, sent;
	int short_writes, writable_calls;
	bool sending;
	const char *send_after_seen;
};

/* uv_stop() matters: with UV_RUN_ONCE a timer that fires at the top of an
 * iteration would otherwise leave uv_run blocked in epoll until the next
 * event. */
static void t_done(struct tctx *t)
{
	t->done = true;
	uv_stop(&t->loop);
}

/* Offers everything still to send (up to 4 MiB at once, far more than the
 * VM's window) until sshc_write takes less than offered. */
static char *big;

static void send_more(struct tctx *t)
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

static bool out_has(struct tctx *t, const char *s)
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

static const struct sshc_callbacks cbs_challenge = {
	.on_ready = cb_ready,
	.on_fail = cb_fail,
	.on_challenge = cb_challenge,
	.on_new_host_key = cb_new_key,
	.on_data = cb_data,
	.on_writable = cb_writable,
	.on_end = cb_end,
};

static const struct sshc_callbacks cbs = {
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

static void t_init(struct tctx *t)
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
static void t_run(struct tctx *t)
{
	t->done = false;
	while (!t->done && !t->timed_out)
		uv_run(&t->loop, UV_RUN_ONCE);
	assert_false(t->timed_out);
}

/* Closes whatever is left and checks the loop ends with no handle open:
 * sshc released everything it had. */
static void t_finish(struct tctx *t)
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

static void params_key(struct sshc_params *p, uint16_t port, const char *keyname)
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

static void t_start(struct tctx *t, struct sshc_params *p)
{
	assert_int_equal(sshc_start(&t->loop, p, &cbs, t, &t->c), 0);
	assert_null(p->key);
	assert_null(p->password);
	t->alive = true;
}

/* "type b64" of a .pub file, as the host_keys array wants it. */
static char *pub_line(const char *name)
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

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int count_fds(void)
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

static int group_setup(void **state)
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

static int group_teardown(void **state)
{
	DIR *d;
	struct dirent *e;
	char p[512];

	sshd_stop(&main_sshd);
	for (size_t i = 0; i < sizeof(started) / sizeof(started[0]); i++) {
		struct sshd left = { .pid = started[i] };

		if (left.pid > 0)
			sshd_stop(&left);
	}
	free(big);
	big = NULL;
	d = opendir(tmpdir);
	if (d != NULL) {
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(p, sizeof(p), "%s/%s", tmpdir, e->d_name);
			unlink(p);
		}
		closedir(d);
	}
	return rmdir(tmpdir);
}

/* ---- tests ---- */

/* Key auth with the pinned host key; the shell runs a command, its output
 * arrives, and its exit status is reported. */
static void test_key_auth_exit_status(void **state)
{
	static const char cmd[] = "echo hello-$((6*7)); exit 3\n";
	struct tctx t;
	struct sshc_params p;
	char *hk = pub_line("host_key.pub");
	char *keys[] = { hk };
	int fds = count_fds();

	t_init(&t);
	params_key(&p, main_sshd.port, "id");
	p.host_keys = keys;
	p.n_host_keys = 1;
	t.on_ready_write = cmd;
	t_start(&t, &p);
	/* Nothing is reported from inside sshc_start. */
	assert_false(t.ready || t.failed);
	t_run(&t);
	assert_false(t.failed);
	assert_true(t.ready);
	assert_true(t.ended);
	assert_int_equal(t.ready_count, 1);
	assert_int_equal(t.end_count, 1);
	assert_int_equal(t.new_key_count, 0);
	assert_int_equal(t.exit_status, 3);
	assert_string_equal(t.end_reason, "the shell exited");
	assert_true(out_has(&t, "hello-42"));
	assert_int_equal(t.cnt_out, strlen(cmd));
	assert_true(t.cnt_in >= t.out_len && t.out_len > 0);
	t_finish(&t);
	/* Socket and everything else released. */
	assert_int_equal(count_fds(), fds);
	free(hk);
}

static void test_wrong_key(void **state)
{
	struct tctx t;
	struct sshc_params p;

	t_init(&t);
	params_key(&p, main_sshd.port, "wrong");
	t_start(&t, &p);
	t_run(&t);
	assert_true(t.failed);
	assert_false(t.ready);
	assert_int_equal(t.fail_err, -BERR_SSH_AUTH);
	assert_non_null(strstr(t.fail_msg, "refused the key"));
	assert_non_null(strstr(t.fail_msg, user_name));
	t_finish(&t);
}

/* SHA256:... of a public key file, from ssh-keygen -l. */
static void fingerprint(const char *pubname, char *out, size_t size)
{
	char *argv[] = { SSH_KEYGEN, "-l", "-E", "sha256", "-f", path_of(pubname), NULL };
	char *text, *sp, *end;

	assert_int_equal(run(argv, NULL, path_of("fp.txt")), 0);
	text = read_file(path_of("fp.txt"));
	assert_non_null(text);
	sp = strchr(text, ' ');
	assert_non_null(sp);
	end = strchr(sp + 1, ' ');
	assert_non_null(end);
	*end = '\0';
	snprintf(out, size, "%s", sp + 1);
	assert_memory_equal(out, "SHA256:", 7);
	free(text);
}

/* A pinned key that is not the VM's is refused, and the message names the
 * key the VM offered; pinning the right one (among others) connects. */
static void test_hostkey_pinning(void **state)
{
	struct tctx t;
	struct sshc_params p;
	char *wrong = pub_line("wrong.pub"), *right = pub_line("host_key.pub");
	char fp[128], *only_wrong[] = { wrong }, *both[] = { wrong, right };
	int fds = count_fds();

	fingerprint("host_key.pub", fp, sizeof(fp));

	t_init(&t);
	params_key(&p, main_sshd.port, "id");
	p.host_keys = only_wrong;
	p.n_host_keys = 1;
	t_start(&t, &p);
	t_run(&t);
	assert_true(t.failed);
	assert_int_equal(t.fail_err, -BERR_HOSTKEY);
	assert_non_null(strstr(t.fail_msg, fp));
	assert_non_null(strstr(t.fail_msg, "ssh-ed25519"));
	assert_int_equal(t.new_key_count, 0);
	t_finish(&t);

	t_init(&t);
	params_key(&p, main_sshd.port, "id");
	p.host_keys = both;
	p.n_host_keys = 2;
	t.done_on_ready = true;
	t_start(&t, &p);
	t_run(&t);
	assert_false(t.failed);
	assert_true(t.ready);
	assert_int_equal(t.new_key_count, 0);
	t_finish(&t);

	assert_int_equal(count_fds(), fds);
	free(wrong);
	free(right);
}

/* No pinned key: the VM's key is accepted and reported exactly as in its
 * .pub file. */
static void test_trust_on_first_use(void **state)
{
	struct tctx t;
	struct sshc_params p;
	char *right = pub_line("host_key.pub"), want[1200];

	t_init(&t);
	params_key(&p, main_sshd.port, "id");
	t.done_on_ready = true;
	t_start(&t, &p);
	t_run(&t);
	assert_true(t.ready);
	assert_int_equal(t.new_key_count, 1);
	snprintf(want, sizeof(want), "%s %s", t.new_type, t.new_b64);
	assert_string_equal(want, right);
	t_finish(&t);
	free(right);
}

/* Closing from inside a callback during the connect phase: nothing else is
 * called, everything is released (ASan checks the memory). Closing right
 * after start works too. */
static void test_close_early(void **state)
{
	struct tctx t;
	struct sshc_params p;
	int fds = count_fds();

	t_init(&t);
	params_key(&p, main_sshd.port, "id");
	t.close_in_new_key = true;
	t_start(&t, &p);
	t_run(&t);
	assert_int_equal(t.new_key_count, 1);
	assert_false(t.ready || t.failed || t.ended);
	t_finish(&t);

	t_init(&t);
	params_key(&p, main_sshd.port, "id");
	t_start(&t, &p);
	sshc_close(t.c);
	t.alive = false;
	for (int i = 0; i < 20; i++)
		uv_run(&t.loop, UV_RUN_NOWAIT);
	assert_false(t.ready || t.failed || t.ended || t.new_key_count);
	t_finish(&t);
	assert_int_equal(count_fds(), fds);
}

static void test_closed_port(void **state)
{
	struct tctx t;
	struct sshc_params p;
	long long t0;

	t_init(&t);
	params_key(&p, free_port(), "id");
	t0 = now_ms();
	t_start(&t, &p);
	t_run(&t);
	assert_true(now_ms() - t0 < 2000);
	assert_true(t.failed);
	assert_int_equal(t.fail_err, -BERR_UNREACHABLE);
	assert_non_null(strstr(t.fail_msg, "refused"));
	t_finish(&t);
}

static void test_bad_params(void **state)
{
	struct tctx t;
	struct sshc_params p;
	struct sshc *c = NULL;

	t_init(&t);
	params_key(&p, main_sshd.port, "id");
	snprintf(p.ip, sizeof(p.ip), "localhost"); /* names are never looked up */
	assert_int_equal(sshc_start(&t.loop, &p, &cbs, &t, &c), -EINVAL);
	assert_null(p.key); /* taken and freed even on failure */
	assert_null(c);
	t_finish(&t);
}

static void delay_cb(uv_timer_t *h)
{
	t_done(h->data);
}

/* Wait in the loop for ms, with the session live. */
static void t_sleep(struct tctx *t, unsigned ms)
{
	uv_timer_start(&t->delay, delay_cb, ms, 0);
	t_run(t);
}

/* The sshd process serving our session is killed: the session ends with
 * -1 and a reason. */
static void test_connection_lost(void **state)
{
	struct tctx t;
	struct sshc_params p;
	pid_t kids[64];
	size_t n;

	t_init(&t);
	params_key(&p, main_sshd.port, "id");
	t.on_ready_write = "echo up-$((1+1))\n";
	t.done_when_seen = "up-2";
	t_start(&t, &p);
	t_run(&t);
	assert_true(t.ready);
	t.done_when_seen = NULL;

	n = descendants(main_sshd.pid, kids, 64);
	assert_true(n >= 1);
	/* Only processes under the sshd this test started. */
	for (size_t i = 0; i < n; i++)
		kill(kids[i], SIGKILL);
	t_run(&t);
	assert_true(t.ended);
	assert_int_equal(t.exit_status, -1);
	assert_non_null(strstr(t.end_reason, "lost"));
	t_finish(&t);
	/* Reap nothing here: they are sshd's children, it reaps them. */
}

/* While paused no output is delivered; on resume every byte of 1 MiB
 * arrives exactly once and in order. */
static void test_pause_output(void **state)
{
	static const char cmd[] =
		"echo BEG-$((1+1)); head -c 1048576 /dev/zero | tr '\\0' a; echo; echo END-$((2+1)); exit 0\n";
	struct tctx t;
	struct sshc_params p;
	uint8_t *beg, *end;
	size_t count = 0;

	t_init(&t);
	params_key(&p, main_sshd.port, "id");
	t.paused = true; /* cb_ready pauses before writing */
	t.on_ready_write = cmd;
	t.done_on_ready = true;
	t_start(&t, &p);
	t_run(&t);
	assert_true(t.ready);

	t_sleep(&t, 1500);
	assert_int_equal(t.data_while_paused, 0);
	assert_int_equal(t.out_len, 0);
	assert_false(t.ended);

	t.paused = false;
	sshc_pause_output(t.c, false);
	t_run(&t); /* until the shell ends */
	assert_true(t.ended);
	assert_int_equal(t.exit_status, 0);

	beg = memmem(t.out, t.out_len, "BEG-2\r\n", 7);
	assert_non_null(beg);
	end = memmem(beg, t.out_len - (size_t)(beg - t.out), "\r\nEND-3", 7);
	assert_non_null(end);
	for (uint8_t *q = beg + 7; q < end; q++) {
		assert_int_equal(*q, 'a');
		count++;
	}
	assert_int_equal(count, 1048576);
	t_finish(&t);
}

/* Pausing and resuming while output flows loses and duplicates nothing. */
static void test_pause_toggle(void **state)
{
	static const char cmd[] =
		"echo BEG-$((1+1)); head -c 2000000 /dev/zero | tr '\\0' b; echo; echo END-$((2+1)); exit 0\n";
	struct tctx t;
	struct sshc_params p;
	uint8_t *beg, *end;
	size_t count = 0;
	int toggles = 0;

	t_init(&t);
	params_key(&p, main_sshd.port, "id");
	t.on_ready_write = cmd;
	t.done_on_ready = true;
	t_start(&t, &p);
	t_run(&t);
	assert_true(t.ready);
	/* Short runs of output, then short pauses, until the shell ends. */
	while (!t.ended && toggles < 2000) {
		t_sleep(&t, 3);
		if (t.ended)
			break;
		t.paused = true;
		sshc_pause_output(t.c, true);
		t_sleep(&t, 3);
		assert_int_equal(t.data_while_paused, 0);
		t.paused = false;
		sshc_pause_output(t.c, false);
		toggles++;
	}
	if (!t.ended)
		t_run(&t);
	assert_true(t.ended);
	assert_true(toggles > 2);
	beg = memmem(t.out, t.out_len, "BEG-2\r\n", 7);
	assert_non_null(beg);
	end = memmem(beg, t.out_len - (size_t)(beg - t.out), "\r\nEND-3", 7);
	assert_non_null(end);
	for (uint8_t *q = beg + 7; q < end; q++) {
		assert_int_equal(*q, 'b');
		count++;
	}
	assert_int_equal(count, 2000000);
	t_finish(&t);
}

/* The new size reaches the PTY. */
static void test_resize(void **state)
{
	struct tctx t;
	struct sshc_params p;

	t_init(&t);
	params_key(&p, main_sshd.port, "id");
	t.done_on_ready = true;
	t_start(&t, &p);
	assert_int_equal(sshc_resize(t.c, 0, 10), -EINVAL);
	t_run(&t);
	assert_true(t.ready);
	assert_int_equal(sshc_resize(t.c, 133, 41), 0);
	assert_int_equal(sshc_write(t.c, "stty size; exit 0\n", 18), 18);
	t_run(&t);
	assert_true(t.ended);
	assert_true(out_has(&t, "41 133"));
	t_finish(&t);
}

/* More input than the VM's window takes: sshc_write takes part, on_writable
 * comes later, and every byte arrives (the remote side counts them). */
static void test_write_backpressure(void **state)
{
	struct tctx t;
	struct sshc_params p;

	t_init(&t);
	params_key(&p, main_sshd.port, "id");
	t.on_ready_write =
		"stty raw -echo; echo rdy-$((2+3)); head -c 6000000 | wc -c; echo got-$((1+1))\n";
	t.send_after_seen = "rdy-5";
	t.to_send = 6000000;
	t.done_when_seen = "got-2";
	t_start(&t, &p);
	t_run(&t);
	assert_true(t.ready);
	assert_false(t.ended);
	assert_int_equal(t.sent, 6000000);
	assert_true(t.short_writes >= 1);
	assert_true(t.writable_calls >= 1);
	assert_true(out_has(&t, "6000000"));
	t_finish(&t);
}

static void test_pty_refused(void **state)
{
	struct sshd d = { 0 };
	struct tctx t;
	struct sshc_params p;

	sshd_start(&d, "notty", "UsePAM no\nPasswordAuthentication no\nPermitTTY no\n");
	t_init(&t);
	params_key(&p, d.port, "id");
	t_start(&t, &p);
	t_run(&t);
	assert_true(t.failed);
	assert_int_equal(t.fail_err, -BERR_SSH_SHELL);
	assert_non_null(strstr(t.fail_msg, "PTY"));
	t_finish(&t);
	sshd_stop(&d);
}

/* Creates the local test user with a fresh random password (root only). */
static bool make_test_user(char *pw, size_t size)
{
	uint8_t raw[12];
	char input[128];
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

	if (geteuid() != 0 || fd < 0) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	assert_int_equal(read(fd, raw, sizeof(raw)), (ssize_t)sizeof(raw));
	close(fd);
	for (size_t i = 0; i < sizeof(raw) && 2 * i + 2 < size; i++)
		snprintf(pw + 2 * i, 3, "%02x", raw[i]);
	if (getpwnam(TEST_USER) == NULL) {
		char *argv[] = { "/usr/sbin/useradd", "-m", "-s", "/bin/sh", TEST_USER, NULL };

		assert_int_equal(run(argv, NULL, NULL), 0);
	}
	snprintf(input, sizeof(input), "%s:%s\n", TEST_USER, pw);
	{
		char *argv[] = { "/usr/sbin/chpasswd", NULL };

		assert_int_equal(run(argv, input, NULL), 0);
	}
	return true;
}

static void params_password(struct sshc_params *p, uint16_t port, const char *pw)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->ip, sizeof(p->ip), "127.0.0.1");
	p->port = port;
	snprintf(p->username, sizeof(p->username), TEST_USER);
	p->auth = SSHC_AUTH_PASSWORD;
	p->password = strdup(pw);
	assert_non_null(p->password);
	p->cols = 80;
	p->rows = 24;
}

static double cpu_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool file_has(const char *name, const char *needle)
{
	char *text = read_file(path_of(name));
	bool ok = text != NULL && strstr(text, needle) != NULL;

	free(text);
	return ok;
}

static void password_case(uint16_t port, const char *pw)
{
	struct tctx t;
	struct sshc_params p;

	t_init(&t);
	params_password(&p, port, pw);
	t.on_ready_write = "echo I-am-$(id -un); exit 0\n";
	t_start(&t, &p);
	t_run(&t);
	assert_false(t.failed);
	assert_true(t.ended);
	assert_int_equal(t.exit_status, 0);
	assert_true(out_has(&t, "I-am-" TEST_USER));
	t_finish(&t);

	t_init(&t);
	params_password(&p, port, "not-the-password-1234");
	t_start(&t, &p);
	t_run(&t);
	assert_true(t.failed);
	assert_int_equal(t.fail_err, -BERR_SSH_AUTH);
	assert_null(strstr(t.fail_msg, "not-the-password-1234"));
	assert_null(strstr(t.fail_msg, pw));
	t_finish(&t);
}

/* Password sign-in, with sshd's "password" method. */
static void test_password(void **state)
{
	struct sshd d = { 0 };
	char pw[64];

	if (!make_test_user(pw, sizeof(pw)))
		skip();
	sshd_start(&d, "password",
		   "UsePAM no\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\n");
	password_case(d.port, pw);
	sshd_stop(&d);
	assert_true(file_has("sshd.password.log", "Accepted password for " TEST_USER));
}

/* Password sign-in where sshd only offers keyboard-interactive (PAM). */
static void test_password_kbdint(void **state)
{
	struct sshd d = { 0 };
	char pw[64];

	if (!make_test_user(pw, sizeof(pw)) || access("/etc/pam.d/sshd", R_OK) != 0)
		skip();
	sshd_start(&d, "kbdint",
		   "UsePAM yes\nPasswordAuthentication no\nKbdInteractiveAuthentication yes\n");
	password_case(d.port, pw);
	sshd_stop(&d);
	/* sshd refused the "password" method, so this went through PAM. */
	assert_true(
		file_has("sshd.kbdint.log", "Accepted keyboard-interactive/pam for " TEST_USER));
	assert_false(file_has("sshd.kbdint.log", "Accepted password"));
}

static char **one_answer(const char *a)
{
	char **v = calloc(2, sizeof(char *));

	assert_non_null(v);
	v[0] = strdup(a);
	v[1] = strdup(a);
	assert_non_null(v[0]);
	assert_non_null(v[1]);
	return v;
}

/* AuthenticationMethods publickey,password: the key is accepted as one
 * step, the password is asked for through on_challenge (echo off), and
 * sshc_answer() keeps its contract: a wrong count or no waiting challenge
 * is refused, answers are taken in every case. Without on_challenge such a
 * VM fails at once instead of waiting. */
static void test_two_methods_challenge(void **state)
{
	struct sshd d = { 0 };
	struct tctx t;
	struct sshc_params p;
	char pw[64], **ans;

	if (!make_test_user(pw, sizeof(pw)))
		skip();
	sshd_start(&d, "twostep",
		   "UsePAM no\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\n"
		   "AuthenticationMethods publickey,password\n");

	t_init(&t);
	params_key(&p, d.port, "id");
	snprintf(p.username, sizeof(p.username), TEST_USER);
	t.on_ready_write = "echo two-$((1+1)); exit 0\n";
	assert_int_equal(sshc_start(&t.loop, &p, &cbs_challenge, &t, &t.c), 0);
	t.alive = true;
	ans = one_answer(pw);
	assert_int_equal(sshc_answer(t.c, ans, 1), -EPIPE); /* nothing asked yet */
	assert_null(ans[0]);
	free(ans[1]);
	free(ans);
	t_run(&t);
	assert_false(t.failed);
	assert_int_equal(t.challenge_count, 1);
	assert_int_equal(t.challenge.n_prompts, 1);
	assert_false(t.challenge.prompts[0].echo);
	assert_non_null(strstr(t.challenge.prompts[0].text, "Password"));
	assert_int_equal(t.challenge.round, 1);
	ans = one_answer(pw);
	assert_int_equal(sshc_answer(t.c, ans, 2), -EINVAL); /* one prompt, two answers */
	assert_null(ans[0]);
	assert_null(ans[1]);
	free(ans);
	ans = one_answer(pw);
	assert_int_equal(sshc_answer(t.c, ans, 1), 0);
	free(ans[1]);
	free(ans);
	assert_false(t.ready); /* reported from the loop, not from sshc_answer */
	t_run(&t);
	assert_false(t.failed);
	assert_true(t.ready);
	assert_true(t.ended);
	assert_true(out_has(&t, "two-2"));
	t_finish(&t);

	/* Without on_challenge: refused at once, not left waiting. */
	t_init(&t);
	params_key(&p, d.port, "id");
	snprintf(p.username, sizeof(p.username), TEST_USER);
	t_start(&t, &p);
	t_run(&t);
	assert_true(t.failed);
	assert_int_equal(t.fail_err, -BERR_SSH_AUTH);
	t_finish(&t);
	sshd_stop(&d);
	assert_true(file_has("sshd.twostep.log", "Accepted password for " TEST_USER));
}

/* An open, idle session costs no CPU: write interest is not left on and
 * nothing polls in a loop. Same while output is paused. */
static void test_idle_no_spin(void **state)
{
	struct tctx t;
	struct sshc_params p;
	double c0;

	t_init(&t);
	params_key(&p, main_sshd.port, "id");
	t.done_on_ready = true;
	t_start(&t, &p);
	t_run(&t);
	assert_true(t.ready);
	t_sleep(&t, 300); /* let the prompt arrive */
	c0 = cpu_seconds();
	t_sleep(&t, 1000);
	assert_true(cpu_seconds() - c0 < 0.1);
	sshc_pause_output(t.c, true);
	c0 = cpu_seconds();
	t_sleep(&t, 1000);
	assert_true(cpu_seconds() - c0 < 0.1);
	sshc_pause_output(t.c, false);
	assert_int_equal(sshc_write(t.c, "exit 7\n", 7), 7);
	t_run(&t);
	assert_true(t.ended);
	assert_int_equal(t.exit_status, 7);
	t_finish(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_auth_exit_status),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_hostkey_pinning),
		cmocka_unit_test(test_trust_on_first_use),
		cmocka_unit_test(test_close_early),
		cmocka_unit_test(test_closed_port),
		cmocka_unit_test(test_bad_params),
		cmocka_unit_test(test_connection_lost),
		cmocka_unit_test(test_idle_no_spin),
		cmocka_unit_test(test_pause_output),
		cmocka_unit_test(test_pause_toggle),
		cmocka_unit_test(test_resize),
		cmocka_unit_test(test_write_backpressure),
		cmocka_unit_test(test_pty_refused),
		cmocka_unit_test(test_password),
		cmocka_unit_test(test_password_kbdint),
		cmocka_unit_test(test_two_methods_challenge),
	};

	signal(SIGPIPE, SIG_IGN);
	if (getenv("BASTION_TEST_DEBUG") != NULL)
		log_set_level(LOG_DEBUG);
	if (getenv("BASTION_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("BASTION_TEST_FILTER"));
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
