/* SSH client towards one VM, driven by a libuv loop: dial, host key check,
 * user authentication, PTY and shell, then channel I/O with back-pressure.
 * libssh runs non-blocking with its socket polled by the loop; nothing here
 * blocks. All functions except the key helpers run on the loop thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include <libssh/libssh.h>

struct sshc;

enum sshc_auth_type { SSHC_AUTH_PASSWORD, SSHC_AUTH_KEY };

/* Everything needed to open a shell. sshc_start() takes ownership of
 * password (wiped and freed) and key (freed) in every case. */
struct sshc_params {
	char ip[64]; /* IP literal, never a name */
	uint16_t port;
	char username[256];
	enum sshc_auth_type auth;
	char *password; /* SSHC_AUTH_PASSWORD */
	ssh_key key;    /* SSHC_AUTH_KEY, from sshc_key_import() */
	/* Acceptable host keys as "type base64" strings. If n_host_keys is 0
	 * the first key seen is accepted and reported to on_new_host_key. */
	char **host_keys; /* borrowed; must outlive the connect phase */
	size_t n_host_keys;
	int cols, rows;
	unsigned connect_timeout_ms; /* TCP connect bound; 0 means 10000 */
	/* Open phase: after this long without a byte from the VM a keep-alive
	 * (a global request that wants a reply) is sent; when SSHC_KEEPALIVE_MAX
	 * of them in a row went unanswered the session ends with "the VM
	 * stopped answering". 0: no keep-alives. */
	unsigned keepalive_ms;
};

#define SSHC_KEEPALIVE_MAX 3

/* Writable bytes in front of on_data's buffer, and the most it carries at
 * once: one TLS record's payload (16 KiB) less a WebSocket header of 4
 * bytes, so that a full read becomes one frame in one record. */
#define SSHC_DATA_HEADROOM 16
#define SSHC_DATA_MAX      (16384u - 4u)

struct sshc_callbacks {
	/* Connect phase: exactly one of on_ready or on_fail is called. err is
	 * -BERR_UNREACHABLE, -BERR_HOSTKEY, -BERR_SSH_AUTH, -BERR_SSH_SHELL or
	 * -BERR_PROTOCOL; msg is a short human explanation without secrets.
	 * After on_fail the sshc is already closing: do not touch it. */
	void (*on_ready)(struct sshc *c, void *ud);
	void (*on_fail)(struct sshc *c, int err, const char *msg, void *ud);
	/* Trust on first use: the key accepted because no key was known. */
	void (*on_new_host_key)(struct sshc *c, const char *type, const char *b64, void *ud);
	/* Open phase: terminal output (stdout and stderr merged, in order of
	 * arrival). Not called while output is paused. The SSHC_DATA_HEADROOM
	 * bytes before buf are the callee's to write (a frame header goes there,
	 * so the bytes are framed where they lie). */
	void (*on_data)(struct sshc *c, uint8_t *buf, size_t len, void *ud);
	/* The channel accepts input again after sshc_write() took less than
	 * offered. */
	void (*on_writable)(struct sshc *c, void *ud);
	/* The session ended. exit_status is the shell's status, or -1 when the
	 * connection was lost (reason says why). Called once; afterwards the
	 * sshc is closing: do not touch it. */
	void (*on_end)(struct sshc *c, int exit_status, const char *reason, void *ud);
};

/* Starts connecting. The callbacks are never called from inside this
 * function. Returns 0 or -ENOMEM/-EINVAL (then nothing was started, the
 * params' secrets are already wiped). */
int sshc_start(uv_loop_t *loop, struct sshc_params *p, const struct sshc_callbacks *cb, void *ud,
	       struct sshc **ret);

/* Stops (pause=true) or resumes reading the channel: back-pressure towards
 * the VM when the browser reads slowly. */
void sshc_pause_output(struct sshc *c, bool pause);

/* Writes terminal input. Returns how many bytes the channel took (possibly
 * fewer than len, possibly 0: keep the rest and wait for on_writable), or a
 * negative code if the session is gone. */
ssize_t sshc_write(struct sshc *c, const void *buf, size_t len);

int sshc_resize(struct sshc *c, int cols, int rows);

/* Closes at once; no callback is called afterwards. Memory is released
 * once libuv has closed the poll handle. Safe in any state. */
void sshc_close(struct sshc *c);

/* Bytes since connect, each way. */
void sshc_counters(const struct sshc *c, uint64_t *ret_in, uint64_t *ret_out);

/* ---- key and host key helpers: pure, any thread ---- */

/* Returns a clean copy of a pasted private key: CR removed, stray spaces and
 * blank lines dropped, the base64 body re-wrapped, headers (Proc-Type,
 * DEK-Info) kept. -EINVAL if there is no BEGIN/END armour, -E2BIG over
 * 16 KiB. The result is malloc'd; wipe it before freeing. */
int sshc_key_normalize(const char *text, size_t len, char **ret);

/* Parses a private key in any supported format (PEM RSA/ECDSA, OpenSSH
 * ed25519/ECDSA/RSA, PKCS#8 ed25519/ECDSA/RSA; optionally encrypted).
 * passphrase may be NULL. Nothing reaches libssh that it cannot handle:
 * OpenSSH keys encrypted with a cipher libssh 0.10 mishandles (the AEAD
 * ones) or with more than KEYFILE_ROUNDS_MAX bcrypt rounds are refused
 * before any decryption, and a damaged container is named as such.
 * -BERR_BADKEY with *ret_reason set to a user-readable sentence (a static
 * string, or a per-thread buffer valid until this thread's next call):
 * passphrase required or not fitting, the key damaged, its cipher or
 * rounds refused (with the command that re-encrypts it), a PuTTY key, a
 * public key, a DSA key, an unsupported type, "not a private key in a
 * supported format". -EBUSY (with a reason) when as many threads as the
 * key gate allows (src/core/gate.h: half the worker pool) are decrypting
 * keys already: the caller answers 503 with Retry-After. -ENOMEM. CPU
 * heavy for encrypted keys: call from a worker. */
int sshc_key_import(const char *text, size_t len, const char *passphrase, ssh_key *ret,
		    const char **ret_reason);

/* Parses one OpenSSH known_hosts line or a bare "type base64 [comment]"
 * public key, into malloc'd type and base64 strings. Markers (@cert-
 * authority, @revoked), hashed host names and comments are handled;
 * -EINVAL for anything that is not a valid public key. */
int sshc_hostkey_parse(const char *line, char **ret_type, char **ret_b64);
