/* Tests for src/ssh/sshc.c against a real OpenSSH sshd that the test
 * starts itself on 127.0.0.1 with its own host key and configuration in a
 * temporary directory (sshctest.c): connecting, authenticating (key,
 * password, keyboard-interactive, two methods), host keys, and the ways a
 * session fails or ends. Flow control is test_sshc_flow.c. Every loop run
 * is bounded by a guard timer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/err.h"
#include "core/log.h"
#include "ssh/sshc.h"
#include "sshctest.h"

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
