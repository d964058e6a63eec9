/* Helpers for the unit tests that make keys with ssh-keygen and import
 * them (test_keys.c, test_keyfile.c): a temporary directory per test
 * group, running a program there, and importing with an expected result. */
#pragma once

#include <libssh/libssh.h>
#include <stddef.h>

#define KT_SSH_KEYGEN "/usr/bin/ssh-keygen"

/* The group's directory, made by kt_setup and removed by kt_teardown. */
extern char kt_dir[64];

/* Makes /tmp/bastion-TAG-XXXXXX into kt_dir: 0, or -1. */
int kt_setup(const char *tag);
/* Removes kt_dir and what is in it; 0. */
int kt_teardown(void);

/* Runs argv[0] with argv, stdin and stderr on /dev/null, stdout to
 * out_path (or /dev/null); the exit status, or -1. */
int kt_run(char *const argv[], const char *out_path);

/* kt_dir/name, in one of eight rotating static buffers. */
char *kt_path(const char *name);

/* The whole file (at most 64 KiB - 1), NUL-terminated, malloc'd; asserts
 * that it opens. Its length goes to *ret_len when given. */
char *kt_read_file(const char *path, size_t *ret_len);

/* ssh-keygen -q -t TYPE [-b BITS] [-m FORMAT] -N PASS -C test -f kt_dir/NAME;
 * asserts that it succeeds. */
void kt_keygen(const char *name, const char *type, const char *bits, const char *format,
	       const char *pass);

/* sshc_key_import succeeds with a private key of type kt... */
void kt_import_ok(const char *text, size_t len, const char *pass, enum ssh_keytypes_e kt);
/* ... or fails with -BERR_BADKEY and, when want_reason is given, that reason. */
void kt_import_bad(const char *text, size_t len, const char *pass, const char *want_reason);
