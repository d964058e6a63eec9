/* Event loops in threads with descriptor tables of their own (loops.h):
 * posts run on the loop they were posted to, a socket sent to another loop
 * arrives as the same socket, each table holds RLIMIT_NOFILE descriptors
 * of its own, and a closed loop takes nothing more. Real threads, real
 * sockets. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/loops.h"

/* What the callbacks saw, checked by the test (on its own thread, where
 * cmocka's assertions belong) once the loops ended. */
static struct {
	int ran_on[4];
	int n_ran;
	int r[4]; /* return values of calls made on a loop */
	char got[16];
	int sent_fd_after; /* fcntl(F_GETFD) of a sent descriptor, in the sender */
	int opened_on_1;   /* descriptors loop 1 could open in its table */
	int errno_1;
	int fds_1[256];
} seen;

static void finish(void *arg)
{
	loops_close((unsigned)(uintptr_t)arg);
}

static void record(void *arg)
{
	seen.ran_on[seen.n_ran++] = loops_self();
}

/* On loop 1: says where it runs, then ends loop 1 and, through a post,
 * loop 0. */
static void on_one(void *arg)
{
	record(NULL);
	seen.r[0] = loops_post(0, record, NULL);
	seen.r[1] = loops_post(0, finish, (void *)0);
	loops_close(1);
}

static void test_post_runs_on_its_loop(void **state)
{
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(loops_init(2), 0);
	assert_int_equal(loops_count(), 2);
	assert_int_equal(loops_self(), 0);
	assert_int_equal(loops_start(-1), 0);
	assert_int_equal(loops_post(1, on_one, NULL), 0);
	loops_run(0);
	loops_free();
	assert_int_equal(seen.r[0], 0);
	assert_int_equal(seen.r[1], 0);
	assert_int_equal(seen.n_ran, 2);
	assert_int_equal(seen.ran_on[0], 1);
	assert_int_equal(seen.ran_on[1], 0);
}

/* On loop 0: the socket sent by loop 1 carries what loop 1 wrote. */
static void on_fd(int fd, void *arg)
{
	if (fd >= 0 && read(fd, seen.got, 5) == 5)
		close(fd);
	record(NULL);
	loops_close(0);
}

static void send_from_one(void *arg)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
	    write(sv[1], "hello", 5) != 5) {
		seen.r[0] = -errno;
		loops_post(0, finish, (void *)0);
		loops_close(1);
		return;
	}
	seen.r[0] = loops_send_fd(0, sv[0], on_fd, NULL);
	/* Sent: closed in this table. */
	seen.sent_fd_after = fcntl(sv[0], F_GETFD);
	close(sv[1]);
	loops_close(1);
}

static void test_send_fd_to_another_loop(void **state)
{
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(loops_init(2), 0);
	assert_int_equal(loops_start(-1), 0);
	assert_int_equal(loops_post(1, send_from_one, NULL), 0);
	loops_run(0);
	loops_free();
	assert_int_equal(seen.r[0], 0);
	assert_int_equal(seen.sent_fd_after, -1);
	assert_string_equal(seen.got, "hello");
	assert_int_equal(seen.ran_on[0], 0);
}

/* On loop 1: as many descriptors as its table takes, kept open. */
static void fill_one(void *arg)
{
	int fd;

	while (seen.opened_on_1 < 256 && (fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
		seen.fds_1[seen.opened_on_1++] = fd;
	seen.errno_1 = errno;
	loops_post(0, finish, (void *)0);
}

static void close_one(void *arg)
{
	for (int i = 0; i < seen.opened_on_1; i++)
		close(seen.fds_1[i]);
	loops_close(1);
}

static void test_each_loop_has_its_own_table(void **state)
{
	struct rlimit old, low;
	int fds[256], n0 = 0, fd;

	memset(&seen, 0, sizeof(seen));
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = 64;
	assert_int_equal(loops_init(2), 0);
	assert_int_equal(loops_start(-1), 0);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	assert_int_equal(loops_post(1, fill_one, NULL), 0);
	loops_run(0); /* until fill_one has filled loop 1's table */
	/* This table still has room: loop 1 took none of it. */
	while (n0 < 256 && (fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
		fds[n0++] = fd;
	assert_int_equal(loops_post(1, close_one, NULL), 0);
	loops_free();
	for (int i = 0; i < n0; i++)
		close(fds[i]);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_int_equal(seen.errno_1, EMFILE);
	/* Each table was filled to the limit: together, far past it. */
	assert_true(seen.opened_on_1 > 40);
	assert_true(n0 > 40);
	assert_true(seen.opened_on_1 + n0 > 64 + 16);
}

static void never(void *arg)
{
	fail_msg("a post to a closed loop ran");
}

static void never_fd(int fd, void *arg)
{
	fail_msg("a descriptor sent to a closed loop arrived");
}

static void test_closed_loop_takes_nothing(void **state)
{
	int sv[2];

	assert_int_equal(loops_init(2), 0);
	loops_close(1);
	assert_int_equal(loops_post(1, never, NULL), -ESHUTDOWN);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(loops_send_fd(1, sv[0], never_fd, NULL), -ESHUTDOWN);
	/* Not sent: still the caller's. */
	assert_int_equal(fcntl(sv[0], F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	close(sv[0]);
	close(sv[1]);
	/* Never started: loops_free closes what they hold. */
	loops_free();
	assert_int_equal(loops_count(), 0);
	assert_int_equal(loops_self(), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_post_runs_on_its_loop),
		cmocka_unit_test(test_send_fd_to_another_loop),
		cmocka_unit_test(test_each_loop_has_its_own_table),
		cmocka_unit_test(test_closed_loop_takes_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
