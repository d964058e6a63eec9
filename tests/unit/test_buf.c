/* Tests for src/core/buf.c and src/core/file.c: the cap holds exactly,
 * failures leave the contents as they were, secrets are wiped, files are
 * read with a cap and replaced atomically. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/file.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void cap_is_exact_and_failure_changes_nothing(void **state)
{
	struct buf b;

	buf_init(&b, 8);
	assert_string_equal(buf_str(&b), "");
	assert_int_equal(buf_append(&b, "abcd", 4), 0);
	assert_int_equal(buf_append(&b, "efgh", 4), 0);
	assert_int_equal(buf_len(&b), 8);
	assert_string_equal(buf_str(&b), "abcdefgh");
	/* One byte over: refused whole, nothing cut. */
	assert_int_equal(buf_append(&b, "i", 1), -E2BIG);
	assert_int_equal(buf_printf(&b, "%d", 1), -E2BIG);
	assert_string_equal(buf_str(&b), "abcdefgh");
	/* A huge length cannot wrap the arithmetic. */
	assert_int_equal(buf_append(&b, "x", SIZE_MAX), -E2BIG);
	assert_int_equal(b.alloc, 9); /* never more than the cap needs */
	buf_free(&b);
}

static void printf_whole_or_nothing(void **state)
{
	struct buf b;

	buf_init(&b, 16);
	assert_int_equal(buf_printf(&b, "%s=%d", "key", 42), 0);
	assert_string_equal(buf_str(&b), "key=42");
	assert_int_equal(buf_printf(&b, " %s", "0123456789"), -E2BIG);
	assert_string_equal(buf_str(&b), "key=42");
	assert_int_equal(buf_printf(&b, "%s", ""), 0);
	assert_int_equal(buf_len(&b), 6);
	buf_free(&b);
}

static void consume_truncate_take(void **state)
{
	struct buf b;
	size_t n = 99;
	char *t;

	buf_init(&b, 1024);
	assert_int_equal(buf_append_str(&b, "GET / HTTP/1.1\r\n\r\nGET /x"), 0);
	buf_consume(&b, 18);
	assert_string_equal(buf_str(&b), "GET /x");
	buf_truncate(&b, 3);
	assert_string_equal(buf_str(&b), "GET");
	buf_truncate(&b, 10);
	assert_string_equal(buf_str(&b), "GET");
	t = buf_take(&b, &n);
	assert_string_equal(t, "GET");
	assert_int_equal(n, 3);
	free(t);
	assert_int_equal(buf_len(&b), 0);
	assert_null(b.data);
	/* An empty buffer gives an empty string. */
	t = buf_take(&b, &n);
	assert_string_equal(t, "");
	assert_int_equal(n, 0);
	free(t);
	buf_consume(&b, 5);
	assert_int_equal(buf_len(&b), 0);
	buf_free(&b);
	buf_free(&b); /* twice is fine */
}

static void secret_grows_by_copy(void **state)
{
	struct buf b;

	buf_init_secret(&b, 1 << 20);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(buf_append(&b, "secret!!", 8), 0);
	assert_int_equal(buf_len(&b), 8000);
	assert_memory_equal(b.data + 7992, "secret!!", 8);
	buf_consume(&b, 7992);
	assert_string_equal(buf_str(&b), "secret!!");
	buf_free(&b);
}

static void write_path(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void file_read_caps_and_refuses(void **state)
{
	char dir[64], path[128], link_path[128];
	struct buf b;

	assert_non_null(tu_tmpdir(dir, sizeof(dir), "buf"));
	snprintf(path, sizeof(path), "%s/f", dir);
	snprintf(link_path, sizeof(link_path), "%s/l", dir);
	write_path(path, "0123456789", 0644);
	assert_int_equal(symlink(path, link_path), 0);

	buf_init(&b, 10);
	assert_int_equal(file_read(path, 0, &b), 0);
	assert_string_equal(buf_str(&b), "0123456789");
	buf_free(&b);

	buf_init(&b, 9); /* one byte short: refused, nothing kept */
	assert_int_equal(buf_append_str(&b, "a"), 0);
	assert_int_equal(file_read(path, 0, &b), -E2BIG);
	assert_string_equal(buf_str(&b), "a");
	buf_free(&b);

	buf_init(&b, 64);
	assert_int_equal(file_read(link_path, FILE_NOFOLLOW, &b), -ELOOP);
	assert_int_equal(file_read(link_path, 0, &b), 0);
	buf_reset(&b);
	assert_int_equal(file_read(path, FILE_PRIVATE, &b), -EPERM);
	assert_int_equal(file_read(dir, 0, &b), -EINVAL);
	assert_int_equal(file_read("/nonexistent/x", 0, &b), -ENOENT);
	assert_int_equal(buf_len(&b), 0);
	buf_free(&b);
	tu_rm_tree(dir);
}

/* FILE_STREAM reads a pipe (a path a user named: /dev/stdin, <(cmd));
 * without it only a regular file is read. file_read_st gives the mode. */
static void file_read_streams_and_stat(void **state)
{
	char dir[64], path[128], fdpath[64];
	struct buf b;
	struct stat st;
	int p[2];

	assert_non_null(tu_tmpdir(dir, sizeof(dir), "buf"));
	snprintf(path, sizeof(path), "%s/f", dir);
	write_path(path, "abc", 0640);
	buf_init(&b, 64);
	memset(&st, 0, sizeof(st));
	assert_int_equal(file_read_st(path, 0, &b, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	assert_int_equal(st.st_size, 3);
	buf_reset(&b);

	for (int stream = 0; stream < 2; stream++) {
		assert_int_equal(pipe(p), 0);
		assert_int_equal(write(p[1], "piped", 5), 5);
		close(p[1]);
		snprintf(fdpath, sizeof(fdpath), "/dev/fd/%d", p[0]);
		if (stream) {
			assert_int_equal(file_read(fdpath, FILE_STREAM, &b), 0);
			assert_string_equal(buf_str(&b), "piped");
		} else {
			assert_int_equal(file_read(fdpath, 0, &b), -EINVAL);
			assert_int_equal(buf_len(&b), 0);
		}
		close(p[0]);
		buf_reset(&b);
	}
	/* A directory is never read, stream or not. */
	assert_int_equal(file_read(dir, FILE_STREAM, &b), -EISDIR);
	buf_free(&b);
	tu_rm_tree(dir);
}

/* file_mkdir_p makes every missing level with the mode, leaves existing
 * ones alone, and says why it cannot. */
static void file_mkdir_p_makes_levels(void **state)
{
	char dir[64], path[160], file[160];
	struct stat st;

	assert_non_null(tu_tmpdir(dir, sizeof(dir), "buf"));
	snprintf(path, sizeof(path), "%s/a/b/c", dir);
	assert_int_equal(file_mkdir_p(path, 0700), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	snprintf(file, sizeof(file), "%s/a/b", dir);
	assert_int_equal(stat(file, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(file_mkdir_p(path, 0700), 0); /* all there already */
	snprintf(file, sizeof(file), "%s/a/f", dir);
	write_path(file, "x", 0600);
	snprintf(path, sizeof(path), "%s/a/f/sub", dir);
	assert_int_equal(file_mkdir_p(path, 0700), -ENOTDIR);
	assert_int_equal(file_mkdir_p("", 0700), -EINVAL);
	tu_rm_tree(dir);
}

static void file_write_atomic_replaces_and_creates(void **state)
{
	char dir[64], path[128];
	struct buf b;
	struct stat st;

	assert_non_null(tu_tmpdir(dir, sizeof(dir), "buf"));
	snprintf(path, sizeof(path), "%s/config", dir);
	assert_int_equal(file_write_atomic(path, "one", 3, 0600, 1), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* Exclusive: an existing file stays as it is. */
	assert_int_equal(file_write_atomic(path, "two", 3, 0600, 1), -EEXIST);
	buf_init(&b, 64);
	assert_int_equal(file_read(path, FILE_PRIVATE, &b), 0);
	assert_string_equal(buf_str(&b), "one");
	buf_reset(&b);
	assert_int_equal(file_write_atomic(path, "three", 5, 0640, 0), 0);
	assert_int_equal(file_read(path, 0, &b), 0);
	assert_string_equal(buf_str(&b), "three");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	buf_free(&b);
	/* No temporary file is left beside it. */
	tu_rm_tree(dir);
	assert_int_equal(access(dir, F_OK), -1);
	/* A directory that does not exist: an error, nothing written. */
	assert_int_equal(file_write_atomic("/nonexistent/dir/x", "a", 1, 0600, 0), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(cap_is_exact_and_failure_changes_nothing),
		cmocka_unit_test(printf_whole_or_nothing),
		cmocka_unit_test(consume_truncate_take),
		cmocka_unit_test(secret_grows_by_copy),
		cmocka_unit_test(file_read_caps_and_refuses),
		cmocka_unit_test(file_read_streams_and_stat),
		cmocka_unit_test(file_mkdir_p_makes_levels),
		cmocka_unit_test(file_write_atomic_replaces_and_creates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
