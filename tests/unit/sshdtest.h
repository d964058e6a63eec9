/* A real OpenSSH sshd for the SSH client's tests: started on 127.0.0.1
 * with its own host key and configuration in a temporary directory, and
 * the small process and file helpers around it (test_sshc, test_kexprobe). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define SSHD       "/usr/sbin/sshd"
#define SSH_KEYGEN "/usr/bin/ssh-keygen"

struct sshd {
	pid_t pid;
	uint16_t port;
};

/* The temporary directory (set by the test's group setup, mkdtemp). */
extern char tmpdir[64];
/* Every sshd started, so teardown stops them even after a failed test. */
extern pid_t started[16];

/* Runs argv with stdin from input (or /dev/null), stdout to out_path (or
 * /dev/null), stderr to /dev/null; returns the exit status or -1. */
int run(char *const argv[], const char *input, const char *out_path);
/* tmpdir/name, in one of 16 rotating buffers. */
char *path_of(const char *name);
char *read_file(const char *path);
void write_file(const char *path, const char *text);
/* An ed25519 key pair tmpdir/name and tmpdir/name.pub. */
void keygen(const char *name);
uint16_t free_port(void);
bool port_open(uint16_t port);
/* Starts sshd -D -e with a fresh config named after tag (host key
 * tmpdir/host_key, keys from tmpdir/authorized_keys) plus extra lines. */
void sshd_start(struct sshd *d, const char *tag, const char *extra);
void sshd_stop(struct sshd *d);
/* A group teardown's work: stops every sshd still started and removes
 * tmpdir with what is in it; 0, or -1 when tmpdir is still there. */
int sshd_cleanup(void);
