/* Tests for src/ssh/sshc.c's flow: pausing the VM's output, resizing, the
 * write back-pressure, a refused PTY and an idle session that must not
 * spin, against a real OpenSSH sshd (sshctest.c). Every loop run is
 * bounded by a guard timer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/err.h"
#include "core/log.h"
#include "sshctest.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
		cmocka_unit_test(test_idle_no_spin),       cmocka_unit_test(test_pause_output),
		cmocka_unit_test(test_pause_toggle),       cmocka_unit_test(test_resize),
		cmocka_unit_test(test_write_backpressure), cmocka_unit_test(test_pty_refused),
	};

	signal(SIGPIPE, SIG_IGN);
	if (getenv("BASTION_TEST_DEBUG") != NULL)
		log_set_level(LOG_DEBUG);
	if (getenv("BASTION_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("BASTION_TEST_FILTER"));
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
