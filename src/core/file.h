/* Whole files, read with a cap and written atomically: the CLI's
 * configuration and token, the vault's master key, the TLS pair. Safe from
 * any thread; blocking (never on an event loop). */
#pragma once

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "core/buf.h"

/* Appends the regular file at path (or standard input for "-") to out,
 * whose cap bounds it: 0, -E2BIG when the file is larger than out may
 * hold (out then holds nothing more), -EINVAL for a file that is not
 * regular, -errno. Opened O_CLOEXEC | O_NOCTTY; with FILE_NOFOLLOW a
 * symbolic link is refused (-ELOOP); with FILE_PRIVATE a file readable by
 * group or others is refused (-EPERM); with FILE_STREAM a pipe, a terminal
 * or a device is read too (a path a user named on the command line:
 * /dev/stdin, <(cmd)). */
enum { FILE_NOFOLLOW = 1, FILE_PRIVATE = 2, FILE_STREAM = 4 };
int file_read(const char *path, unsigned flags, struct buf *out);
/* The same, and the file's fstat() in *ret_st (untouched for "-"). */
int file_read_st(const char *path, unsigned flags, struct buf *out, struct stat *ret_st);

/* Creates dir and every missing parent with mode (existing ones are left
 * as they are): 0 or -errno. */
int file_mkdir_p(const char *dir, mode_t mode);

/* Replaces path with data, or creates it: written to a temporary file in
 * the same directory with the given mode, fsync'd, renamed over path, and
 * the directory fsync'd, so that a crash leaves the old file or the new
 * one, never a mix. With exclusive, an existing path is left alone and
 * -EEXIST comes back. */
int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode, int exclusive);

/* fsync of the directory that holds path, so that a create or a rename
 * lasts. */
int file_sync_dir_of(const char *path);
