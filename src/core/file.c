/* Capped whole-file reads and atomic writes: see file.h. */
#include "core/file.h"

#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

int file_read(const char *path, unsigned flags, struct buf *out)
{
	bool std_in = strcmp(path, "-") == 0;
	int fd, r = 0;
	struct stat st;
	char chunk[4096];
	size_t start = out->len;

	if (std_in)
		fd = STDIN_FILENO;
	else if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY |
					  (flags & FILE_NOFOLLOW ? O_NOFOLLOW : 0))) < 0)
		return -errno;
	if (!std_in) {
		if (fstat(fd, &st) < 0) {
			r = -errno;
			goto out;
		}
		if (!S_ISREG(st.st_mode)) {
			r = -EINVAL;
			goto out;
		}
		if ((flags & FILE_PRIVATE) && (st.st_mode & 077)) {
			r = -EPERM;
			goto out;
		}
	}
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		if ((r = buf_append(out, chunk, (size_t)n)) < 0)
			break;
	}
	if (r < 0)
		buf_truncate(out, start); /* nothing of a file that failed stays */
out:
	if (out->secret)
		sodium_memzero(chunk, sizeof(chunk));
	if (!std_in)
		close(fd);
	return r;
}

int file_sync_dir_of(const char *path)
{
	char dir[PATH_MAX];
	char *slash;
	int fd, r = 0;

	if (util_strlcpy(dir, path, sizeof(dir)) < 0)
		return -ENAMETOOLONG;
	slash = strrchr(dir, '/');
	if (!slash)
		util_strlcpy(dir, ".", sizeof(dir));
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -errno;
	if (fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode, int exclusive)
{
	char tmp[PATH_MAX];
	char suffix[24];
	int fd = -1, r = 0;

	util_random_token(suffix, sizeof(suffix), 9);
	if (snprintf(tmp, sizeof(tmp), "%s.%s.tmp", path, suffix) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, mode);
	if (fd < 0)
		return -errno;
	/* The umask may have narrowed the mode; never widen it past mode. */
	if (fchmod(fd, mode) < 0 || (r = write_all(fd, data, len)) < 0 || fsync(fd) < 0) {
		r = r < 0 ? r : -errno;
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		r = -errno;
		goto fail;
	}
	fd = -1;
	/* link(2) refuses an existing name: an exclusive create that cannot
	 * replace what another writer put there meanwhile. */
	if (exclusive ? link(tmp, path) < 0 : rename(tmp, path) < 0) {
		r = -errno;
		goto fail;
	}
	if (exclusive)
		unlink(tmp);
	return file_sync_dir_of(path);
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return r;
}
