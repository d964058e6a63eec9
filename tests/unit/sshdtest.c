/* See sshdtest.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "sshdtest.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

char tmpdir[64];
pid_t started[16];

/* ---- process helpers ---- */

/* Runs argv with stdin from input (or /dev/null), stdout to out_path (or
 * /dev/null), stderr to /dev/null; returns the exit status or -1. */
int run(char *const argv[], const char *input, const char *out_path)
{
	int in_pipe[2] = { -1, -1 }, st = 0;
	pid_t pid;

	if (input != NULL && pipe2(in_pipe, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int out = open(out_path ? out_path : "/dev/null",
			       O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		if (out < 0 || null < 0)
			_exit(126);
		dup2(input != NULL ? in_pipe[0] : null, 0);
		dup2(out, 1);
		dup2(null, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	if (input != NULL) {
		size_t n = strlen(input);

		close(in_pipe[0]);
		if (write(in_pipe[1], input, n) != (ssize_t)n)
			st = -1;
		close(in_pipe[1]);
	}
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

char *path_of(const char *name)
{
	static char buf[16][256];
	static int i;
	char *p = buf[i++ % 16];

	snprintf(p, 256, "%s/%s", tmpdir, name);
	return p;
}

char *read_file(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t n;

	if (f == NULL)
		return NULL;
	buf = malloc(65536);
	assert_non_null(buf);
	n = fread(buf, 1, 65535, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

void keygen(const char *name)
{
	char *argv[] = { SSH_KEYGEN, "-q",   "-t", "ed25519",     "-N", "",
			 "-C",       "test", "-f", path_of(name), NULL };

	assert_int_equal(run(argv, NULL, NULL), 0);
}

uint16_t free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

bool port_open(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	assert_true(fd >= 0);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

/* Starts sshd -D -e -f CONFIG with a fresh config named after tag. */
void sshd_start(struct sshd *d, const char *tag, const char *extra)
{
	char cfg[2048], cfg_name[64], log_name[64];
	char *cfg_path, *log_path;

	d->port = free_port();
	snprintf(cfg_name, sizeof(cfg_name), "sshd_config.%s", tag);
	snprintf(log_name, sizeof(log_name), "sshd.%s.log", tag);
	cfg_path = path_of(cfg_name);
	log_path = path_of(log_name);
	snprintf(cfg, sizeof(cfg),
		 "Port %u\n"
		 "ListenAddress 127.0.0.1\n"
		 "HostKey %s/host_key\n"
		 "PidFile %s/sshd.%s.pid\n"
		 "AuthorizedKeysFile %s/authorized_keys\n"
		 "StrictModes no\n"
		 "PermitRootLogin yes\n"
		 "PubkeyAuthentication yes\n"
		 "PrintMotd no\n"
		 "PrintLastLog no\n"
		 "LogLevel VERBOSE\n"
		 "%s",
		 d->port, tmpdir, tmpdir, tag, tmpdir, extra);
	write_file(cfg_path, cfg);

	d->pid = fork();
	assert_true(d->pid >= 0);
	if (d->pid == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		int log = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		if (null < 0 || log < 0)
			_exit(126);
		dup2(null, 0);
		dup2(log, 1);
		dup2(log, 2);
		execl(SSHD, SSHD, "-D", "-e", "-f", cfg_path, (char *)NULL);
		_exit(127);
	}
	for (size_t i = 0; i < sizeof(started) / sizeof(started[0]); i++) {
		if (started[i] == 0) {
			started[i] = d->pid;
			break;
		}
	}
	/* Bounded wait until it listens. */
	for (int i = 0; i < 500; i++) {
		if (port_open(d->port))
			return;
		if (waitpid(d->pid, NULL, WNOHANG) == d->pid) {
			d->pid = 0;
			fail_msg("sshd exited at start, see %s", log_path);
		}
		usleep(10000);
	}
	fail_msg("sshd did not listen within 5 s, see %s", log_path);
}

void sshd_stop(struct sshd *d)
{
	for (size_t i = 0; i < sizeof(started) / sizeof(started[0]); i++)
		if (started[i] == d->pid)
			started[i] = 0;
	if (d->pid > 0) {
		kill(d->pid, SIGTERM);
		for (int i = 0; i < 300; i++) {
			if (waitpid(d->pid, NULL, WNOHANG) == d->pid) {
				d->pid = 0;
				return;
			}
			usleep(10000);
		}
		kill(d->pid, SIGKILL);
		waitpid(d->pid, NULL, 0);
		d->pid = 0;
	}
}

int sshd_cleanup(void)
{
	for (size_t i = 0; i < sizeof(started) / sizeof(started[0]); i++) {
		struct sshd left = { .pid = started[i] };

		if (left.pid > 0)
			sshd_stop(&left);
	}
	tu_rm_tree(tmpdir);
	return access(tmpdir, F_OK) == 0 ? -1 : 0;
}
