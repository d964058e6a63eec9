/* Helpers for the key tests: see keytest.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "keytest.h"
#include "testutil.h"

#include "core/err.h"
#include "ssh/sshc.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

char kt_dir[64];

int kt_setup(const char *tag)
{
	return tu_tmpdir(kt_dir, sizeof(kt_dir), tag) ? 0 : -1;
}

int kt_teardown(void)
{
	tu_rm_tree(kt_dir);
	return 0;
}

int kt_run(char *const argv[], const char *out_path)
{
	pid_t pid = fork();
	int st = 0;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int out = open(out_path ? out_path : "/dev/null",
			       O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		if (out < 0 || null < 0)
			_exit(126);
		dup2(null, 0);
		dup2(out, 1);
		dup2(null, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

char *kt_path(const char *name)
{
	static char buf[8][256];
	static int i;
	char *p = buf[i++ % 8];

	snprintf(p, 256, "%s/%s", kt_dir, name);
	return p;
}

char *kt_read_file(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t n;

	assert_non_null(f);
	buf = malloc(65536);
	assert_non_null(buf);
	n = fread(buf, 1, 65535, f);
	fclose(f);
	buf[n] = '\0';
	if (ret_len != NULL)
		*ret_len = n;
	return buf;
}

void kt_keygen(const char *name, const char *type, const char *bits, const char *format,
	       const char *pass)
{
	char *argv[16];
	int n = 0;

	argv[n++] = KT_SSH_KEYGEN;
	argv[n++] = "-q";
	argv[n++] = "-t";
	argv[n++] = (char *)type;
	if (bits != NULL) {
		argv[n++] = "-b";
		argv[n++] = (char *)bits;
	}
	if (format != NULL) {
		argv[n++] = "-m";
		argv[n++] = (char *)format;
	}
	argv[n++] = "-N";
	argv[n++] = (char *)(pass ? pass : "");
	argv[n++] = "-C";
	argv[n++] = "test";
	argv[n++] = "-f";
	argv[n++] = kt_path(name);
	argv[n] = NULL;
	assert_int_equal(kt_run(argv, NULL), 0);
}

void kt_import_ok(const char *text, size_t len, const char *pass, enum ssh_keytypes_e kt)
{
	ssh_key key = NULL;
	const char *reason = NULL;

	assert_int_equal(sshc_key_import(text, len, pass, &key, &reason), 0);
	assert_non_null(key);
	assert_true(ssh_key_is_private(key));
	assert_int_equal(ssh_key_type(key), kt);
	ssh_key_free(key);
}

void kt_import_bad(const char *text, size_t len, const char *pass, const char *want_reason)
{
	ssh_key key = NULL;
	const char *reason = NULL;

	assert_int_equal(sshc_key_import(text, len, pass, &key, &reason), -BERR_BADKEY);
	assert_null(key);
	assert_non_null(reason);
	if (want_reason != NULL)
		assert_string_equal(reason, want_reason);
}
