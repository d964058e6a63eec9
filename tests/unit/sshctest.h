/* The SSH client's tests' harness (test_sshc, test_sshc_flow): a real
 * OpenSSH sshd the group setup starts (sshdtest.c), a context that records
 * every callback of one src/ssh/sshc.c session, and a loop run that a
 * guard timer always ends. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "ssh/sshc.h"
#include "sshdtest.h"

#define GUARD_MS  20000 /* no loop run of a test lasts longer */
#define TEST_USER "bastiontest"

/* The account this process runs as, and the sshd every test may use. */
extern char user_name[64];
extern struct sshd main_sshd;

struct tctx {
	uv_loop_t loop;
	uv_timer_t guard;
	uv_timer_t delay;
	struct sshc *c;
	bool alive;
	bool timed_out;
	bool done;

	bool ready;
	int ready_count;
	bool failed;
	int fail_err;
	char fail_msg[512];
	bool ended;
	int exit_status;
	char end_reason[512];
	int end_count;
	int after_close_calls;
	uint64_t cnt_in, cnt_out;

	int new_key_count;
	char new_type[64];
	char new_b64[1024];

	uint8_t *out;
	size_t out_len, out_cap;

	/* Behaviour knobs. */
	const char *on_ready_write;
	bool done_on_ready;
	bool close_in_new_key;
	const char *done_when_seen;

	/* Keyboard-interactive: the last challenge. */
	int challenge_count;
	struct sshc_challenge challenge;

	/* Pause test. */
	bool paused;
	size_t data_while_paused;

	/* Write back-pressure test. */
	size_t to_send, sent;
	int short_writes, writable_calls;
	bool sending;
	const char *send_after_seen;
};

/* Callbacks that fill a struct tctx (ud); _challenge also stops the loop
 * at a keyboard-interactive challenge. */
extern const struct sshc_callbacks cbs, cbs_challenge;

void t_init(struct tctx *t);
/* Runs the loop until the test says done (t_done) or the guard fires. */
void t_run(struct tctx *t);
void t_done(struct tctx *t);
/* Waits in the loop for ms, with the session live. */
void t_sleep(struct tctx *t, unsigned ms);
/* Closes what is left and checks the loop ends with no handle open. */
void t_finish(struct tctx *t);
/* Key auth as this process's user with tmpdir/keyname, 80x24. */
void params_key(struct sshc_params *p, uint16_t port, const char *keyname);
void t_start(struct tctx *t, struct sshc_params *p);
/* Offers t->to_send bytes until sshc_write takes less than offered. */
void send_more(struct tctx *t);
bool out_has(struct tctx *t, const char *s);
/* "type b64" of tmpdir/name (a .pub file). */
char *pub_line(const char *name);
long long now_ms(void);
int count_fds(void);
/* This process's CPU time, user and system, in seconds. */
double cpu_seconds(void);
/* The descendants of root, children first; how many were found. */
size_t descendants(pid_t root, pid_t *out, size_t max);
/* cmocka group setup: keys, authorized_keys and main_sshd in a new
 * tmpdir; teardown stops every sshd and removes it. */
int group_setup(void **state);
int group_teardown(void **state);
