/* What the files of the SSH client share: the session struct and its
 * states, and the few functions one file calls in another. sshc.c owns the
 * loop, the socket and the open phase; hostkey.c the host key check and the
 * algorithm lists; auth.c user authentication. Nothing outside src/ssh/
 * includes this header. Everything here runs on the session's loop. */
#pragma once

#include "ssh/sshc.h"

#include <libssh/callbacks.h>

enum sshc_state {
	ST_TCP_CONNECT,   /* non-blocking connect() in flight */
	ST_SSH_CONNECT,   /* banner and key exchange (ssh_connect) */
	ST_PROBE,         /* the handshake failed: reading the VM's offer (kexprobe.c) */
	ST_AUTH_PASSWORD, /* ssh_userauth_password */
	ST_AUTH_KBDINT,   /* keyboard-interactive, answered with the password */
	ST_AUTH_KEY,      /* ssh_userauth_publickey */
	ST_AUTH_WAIT,     /* waiting for the user's answers (sshc_answer) */
	ST_CHANNEL_OPEN,  /* ssh_channel_open_session */
	ST_PTY,           /* ssh_channel_request_pty_size */
	ST_ENV,           /* ssh_channel_request_env LANG; a refusal is fine */
	ST_SHELL,         /* ssh_channel_request_shell */
	ST_OPEN,          /* terminal I/O */
	ST_EOF,           /* the shell closed its output; waiting for its status */
	ST_DONE,          /* failed, ended or closed */
};

struct sshc {
	uv_loop_t *loop;
	uv_poll_t poll;
	uv_timer_t timer; /* connect, setup and exit-status deadlines */
	uv_timer_t kick;  /* deferred work on the next loop iteration */
	int handles;      /* libuv handles not yet closed */
	bool poll_inited;
	int poll_events;       /* what the poll handle currently watches */
	bool poll_error;       /* libuv stopped the handle after an error */
	unsigned drain_rounds; /* counts drain rounds: stderr is read every 16th */

	int fd;
	int tcp_err; /* errno of a connect() that finished at once */
	ssh_session s;
	ssh_channel ch;
	enum sshc_state state;
	bool closing;
	bool paused;
	bool pump_held;     /* paused, yet packets are taken off the socket (sshc.c) */
	bool flush_pending; /* libssh holds output the kernel did not take */
	bool want_writable; /* sshc_write() took less than offered */
	bool kbdint_tried;
	bool rsa_sha1_tried; /* the RSA key was offered again with SHA-1 */
	bool password_used;  /* the password answered a keyboard-interactive prompt */
	bool key_used;       /* the key was accepted as one step (partial success) */
	int partial_steps;   /* methods that succeeded partially so far */
	enum { WAIT_NONE, WAIT_KBDINT, WAIT_PASSWORD } wait;
	unsigned challenges;                /* rounds sent to the user */
	size_t wait_n;                      /* answers expected */
	uint8_t wait_map[SSHC_PROMPTS_MAX]; /* answer j -> prompt wait_map[j] */
	int kbdint_rounds;

	struct sshc_callbacks cb;
	void *ud;

	char ip[64];
	uint16_t port;
	char username[256];
	enum sshc_auth_type auth;
	char *password;
	ssh_key key;
	char **host_keys;
	size_t n_host_keys;
	int cols, rows;
	unsigned connect_timeout_ms;
	unsigned keepalive_ms;
	uint32_t legacy_algos;     /* bits of sshc_legacy_algo() */
	unsigned keepalive_missed; /* keep-alives sent since the VM last spoke */
	bool heard;                /* the socket was readable since the last tick */

	/* The VM's pre-login banner, cleaned (sshc_banner_clean), handed to
	 * on_data before the first channel byte; NULL once delivered. */
	uint8_t *banner;
	size_t banner_len;

	/* The host key algorithms offered (hostkey.c), for explaining a
	 * handshake; empty: libssh's default. */
	char hostkey_offer[512];
	/* kexprobe.c: the second connection's work and result. */
	uv_work_t probe_work;
	int probe_rc;
	struct sshc_kexinit probe_offer;
	char probe_err[256]; /* libssh's words, when the probe explains nothing */

	uint64_t bytes_in, bytes_out;
	/* Flush on interrupt (mark.c). libssh buffers channel data until it is
	 * read; the channel data callback (which consumes nothing) sees the
	 * whole buffer after each packet, so arrived = taken + buffered. */
	struct ssh_channel_callbacks_struct chcb;
	uint64_t rx_arrived[2]; /* bytes libssh buffered so far: stdout, stderr */
	uint64_t rx_taken[2];   /* bytes read out of those buffers */
	enum {
		MARK_NONE,
		MARK_WAIT,   /* the request is out; output held until its answer */
		MARK_ORPHAN, /* given up; libssh still waits for the answer */
	} mark;
	uint64_t mark_before[2]; /* arrived while the answer was still pending */
	bool mark_done;          /* answered or given up: report on the loop */
	bool mark_answered;
	uint64_t mark_dropped;
	uv_timer_t mark_timer; /* SSHC_MARK_WAIT_MS; made at the first mark */
	bool mark_timer_inited;
	bool resize_deferred; /* a resize waits for the mark's answer */
	char msg[1024];
};

void sshc_set_state(struct sshc *c, enum sshc_state st);
/* Connect phase failure: tears the session down, then calls on_fail. */
void sshc_fail(struct sshc *c, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void sshc_forget_secrets(struct sshc *c);
/* One of the struct's handles (or the probe) is done; frees it after the
 * last. */
void sshc_handle_closed(struct sshc *c);
bool sshc_session_dead(struct sshc *c);

/* The state machine (sshc.c), for the dial: one step of the current
 * connect-phase state; the open phase's I/O; pushing queued output
 * (SSH_OK, SSH_AGAIN or SSH_ERROR, noting whether write interest is
 * needed). */
void sshc_step(struct sshc *c);
void sshc_open_io(struct sshc *c);
int sshc_flush(struct sshc *c);

/* dial.c */
#define CONNECT_TIMEOUT_DEFAULT_MS 10000u
/* Bounds everything after TCP: banner, key exchange, authentication, PTY
 * and shell. A VM that accepts TCP but never speaks SSH must not hold a
 * session forever. */
#define SETUP_TIMEOUT_MS 30000u
/* (Re)starts the set-up deadline on c->timer. */
void sshc_arm_setup_timer(struct sshc *c);
/* The TCP connect finished (or failed): configures libssh on the socket
 * and takes the first SSH step. */
void sshc_tcp_connected(struct sshc *c);
/* Runs the state machine from the loop (never inside a caller's call). */
void sshc_kick(struct sshc *c);
/* Re-arms the poll handle for the current state. */
void sshc_update_poll(struct sshc *c);

/* mark.c: flush on interrupt. Registers the channel data callback once
 * the channel is open; one pass of the mark's work from sshc_open_io
 * (instead of reading output while a mark waits); the amounts read out of
 * libssh's buffers. */
void sshc_mark_attach(struct sshc *c);
void sshc_mark_io(struct sshc *c);
static inline void sshc_mark_taken(struct sshc *c, int is_stderr, size_t n)
{
	c->rx_taken[is_stderr ? 1 : 0] += n;
}
/* hostkey.c */
/* Appends algo to the comma-separated list unless it is there already or
 * would not fit. */
void sshc_add_algo(char *list, size_t size, const char *algo);
void sshc_set_hostkey_algos(struct sshc *c);
/* 0 when the host key is acceptable; otherwise the session has failed (or
 * was closed from on_new_host_key) and -1 comes back. */
int sshc_check_host_key(struct sshc *c);

/* auth.c */
/* Key exchange is done: picks the first authentication state. */
void sshc_auth_begin(struct sshc *c);
/* Runs the current authentication state once. Returns true when the step
 * loop should call again (state changed or more work), false when it waits
 * for the VM or the session failed. */
bool sshc_auth_step(struct sshc *c);

/* algos.c */
bool sshc_legacy_allowed(const struct sshc *c, const char *name);
/* Sets the key exchange, cipher, MAC and user key lists when the VM allows
 * legacy names in them; -EINVAL when libssh refused a list. */
int sshc_set_legacy_algos(struct sshc *c);
/* When err (libssh's) says the handshake found no common algorithm, fails
 * the session with -BERR_SSH_HANDSHAKE and both sides' lists, and returns
 * true; otherwise false and nothing happened. */
bool sshc_explain_handshake(struct sshc *c, const char *err);
/* The same from the VM's own lists (a probe's KEXINIT) against ours: fails
 * the session and returns true when a family has nothing in common. */
bool sshc_explain_offer(struct sshc *c, const struct sshc_kexinit *k);

/* kexprobe.c */
/* ssh_connect failed: explains it from libssh's words, or else from the
 * VM's KEXINIT read on a second connection (on the worker pool), or fails
 * with libssh's words. */
void sshc_handshake_failed(struct sshc *c);
