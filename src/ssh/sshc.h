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
	/* Legacy algorithms this VM allows (VM property ssh_legacy_algorithms):
	 * bit i for sshc_legacy_algo() == i. 0: modern algorithms only. */
	uint32_t legacy_algos;
};

#define SSHC_KEEPALIVE_MAX 3

/* The locale requested for every shell (env request LANG, before the shell;
 * the VM's sshd needs AcceptEnv LANG and the locale must exist there). */
#define SSHC_LANG "C.UTF-8"

/* Writable bytes in front of on_data's buffer, and the most it carries at
 * once: one TLS record's payload (16 KiB) less a WebSocket header of 4
 * bytes, so that a full read becomes one frame in one record. */
#define SSHC_DATA_HEADROOM 16
#define SSHC_DATA_MAX      (16384u - 4u)

/* Questions the VM asks while signing in (keyboard-interactive: a second
 * factor, a changed password) that the bastion cannot answer itself: they
 * go to the user. Texts are cleaned (valid UTF-8, no control characters
 * but newlines) and cut at a character boundary. */
#define SSHC_PROMPTS_MAX       8
#define SSHC_PROMPT_MAX        512  /* bytes of one prompt, name or instruction */
#define SSHC_ANSWER_MAX        1024 /* bytes of one answer */
#define SSHC_ANSWER_TIMEOUT_MS 120000u

struct sshc_challenge {
	unsigned round; /* 1, 2, ... within this connect */
	char name[SSHC_PROMPT_MAX];
	char instruction[SSHC_PROMPT_MAX];
	size_t n_prompts; /* 1..SSHC_PROMPTS_MAX */
	struct {
		char text[SSHC_PROMPT_MAX];
		bool echo; /* false: a secret, do not show what is typed */
	} prompts[SSHC_PROMPTS_MAX];
};

struct sshc_callbacks {
	/* Connect phase: exactly one of on_ready or on_fail is called. err is
	 * -BERR_UNREACHABLE, -BERR_HOSTKEY, -BERR_SSH_HANDSHAKE (no algorithm in
	 * common: msg names both sides' lists), -BERR_SSH_AUTH, -BERR_SSH_SHELL
	 * or -BERR_PROTOCOL; msg is a short human explanation without secrets.
	 * After on_fail the sshc is already closing: do not touch it. */
	void (*on_ready)(struct sshc *c, void *ud);
	void (*on_fail)(struct sshc *c, int err, const char *msg, void *ud);
	/* Connect phase: the VM asks questions only the user can answer. The
	 * sshc waits (reading nothing from the VM) until sshc_answer() or
	 * SSHC_ANSWER_TIMEOUT_MS, which fails it with -BERR_SSH_AUTH. May be
	 * called several times (one per round); on_ready or on_fail still
	 * comes exactly once. NULL: such a VM fails with -BERR_SSH_AUTH. */
	void (*on_challenge)(struct sshc *c, const struct sshc_challenge *ch, void *ud);
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
	/* Open phase: the mark sent by sshc_mark() was answered (answered
	 * true) or given up (false: SSHC_MARK_WAIT_MS passed or
	 * SSHC_MARK_MAX_BYTES piled up); dropped is how many bytes of output
	 * the VM sent before it were thrown away. Once per sshc_mark() that
	 * returned 0, in order; on_data follows with what came after. */
	void (*on_mark)(struct sshc *c, uint64_t dropped, bool answered, void *ud);
};

/* Starts connecting. The callbacks are never called from inside this
 * function. Returns 0 or -ENOMEM/-EINVAL (then nothing was started, the
 * params' secrets are already wiped). */
int sshc_start(uv_loop_t *loop, struct sshc_params *p, const struct sshc_callbacks *cb, void *ud,
	       struct sshc **ret);

/* Answers the challenge last reported to on_challenge: answers[i] for
 * prompts[i], n of them. Takes every answers[i] (wiped, freed, set to NULL)
 * whatever it returns. Returns 0 (set-up goes on; on_ready, on_fail or
 * another on_challenge follows from the loop), -EINVAL when n is not the
 * number of prompts or an answer is over SSHC_ANSWER_MAX (the challenge
 * still waits), -EPIPE when no challenge waits. */
int sshc_answer(struct sshc *c, char **answers, size_t n);

/* Stops (pause=true) or resumes reading the channel: back-pressure towards
 * the VM when the browser reads slowly. While paused, packets are still
 * taken off the socket into libssh's buffer (up to 512 KiB; held data grows
 * no window), so that the VM's sshd is not left holding output behind a
 * flush mark (sshc_mark). */
void sshc_pause_output(struct sshc *c, bool pause);

/* Writes terminal input. Returns how many bytes the channel took (possibly
 * fewer than len, possibly 0: keep the rest and wait for on_writable), or a
 * negative code if the session is gone. */
ssize_t sshc_write(struct sshc *c, const void *buf, size_t len);

int sshc_resize(struct sshc *c, int cols, int rows);

/* Flush on interrupt (docs/api.md "flush"), as a tty drops its output
 * queue on INTR. sshc_write_mark() writes the interrupt character like
 * sshc_write() and, when all of len was taken, sends right behind it, in
 * the same TCP segment, a channel request that wants a reply (env
 * SSHC_MARK_ENV, which sshd refuses once the shell runs: any answer will
 * do); *ret_mark is sshc_mark()'s result, or -EAGAIN when not all bytes
 * were taken (write the rest with it again). The VM's sshd answers
 * requests in order, as it reads them, so every output byte it sent before
 * the answer predates the interrupt; output stops (whatever
 * sshc_pause_output says) until the answer, then what came before it is
 * dropped and on_mark reports how much. Bounded: after SSHC_MARK_WAIT_MS
 * or SSHC_MARK_MAX_BYTES held, only what is known to precede the answer is
 * dropped and output resumes. sshc_mark() returns 0 (on_mark follows),
 * -EPIPE (not open), -EBUSY (a mark is out, or an earlier one went
 * unanswered: nothing is dropped, on_mark is not called). */
#define SSHC_MARK_ENV       "BASTION_FLUSH_MARK"
#define SSHC_MARK_WAIT_MS   3000u
#define SSHC_MARK_MAX_BYTES (8u * 1024u * 1024u)
int sshc_mark(struct sshc *c);
ssize_t sshc_write_mark(struct sshc *c, const void *buf, size_t len, int *ret_mark);

/* Closes at once; no callback is called afterwards. Memory is released
 * once libuv has closed the poll handle. Safe in any state. */
void sshc_close(struct sshc *c);

/* Bytes since connect, each way. */
void sshc_counters(const struct sshc *c, uint64_t *ret_in, uint64_t *ret_out);

/* ---- key and host key helpers: pure, any thread ---- */

/* The legacy algorithms a VM may allow by name, a fixed allowlist (SHA-1
 * key exchange, ssh-rsa host keys and signatures, CBC ciphers, hmac-sha1).
 * Returns the bit index for sshc_params.legacy_algos, or -EINVAL for a name
 * not on the list. sshc_legacy_algo_name(i) gives the names back, NULL
 * past the end. */
int sshc_legacy_algo(const char *name);
const char *sshc_legacy_algo_name(int i);

/* The pre-login banner (sshd_config Banner: the legal notice hardened
 * fleets show) is shown at the top of the terminal, at most this many
 * bytes once cleaned; a longer one is cut at a character boundary and says
 * so. 8 KiB holds the CIS and DoD notices several times over and fits one
 * on_data call. */
#define SSHC_BANNER_MAX 8192

/* Turns a banner as the VM sent it into terminal bytes: line ends become
 * CRLF, control characters other than TAB (escape sequences included) are
 * dropped so the VM's text cannot drive the terminal before login,
 * invalid UTF-8 becomes '?', and the text ends with CRLF. Writes at most
 * SSHC_BANNER_MAX bytes to out (which holds that many) and returns how
 * many; 0 for a banner with nothing printable. */
size_t sshc_banner_clean(const char *raw, size_t len, uint8_t *out);

/* A prompt, name or instruction from the VM as JSON-safe text: valid UTF-8
 * ('?' for what is not), control characters dropped except newline, CRLF
 * and CR made newline, at most size-1 bytes cut at a character boundary,
 * NUL-terminated. Returns the length. */
size_t sshc_text_clean(const char *raw, size_t len, char *out, size_t size);

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

/* "TYPE SHA256:BASE64" (as ssh-keygen -l shows it) of a known_hosts line
 * or bare public key, into out: 0, -EINVAL (not a key), -ENOSPC, -ENOMEM. */
int sshc_hostkey_fingerprint(const char *line, char *out, size_t size);

/* The algorithm lists of a VM's KEXINIT, in the protocol's order: key
 * exchange, host key, cipher and MAC each way (kexprobe.c). A list too
 * long for its field is cut at a name boundary. */
#define SSHC_KEX_LISTS 6
struct sshc_kexinit {
	char lists[SSHC_KEX_LISTS][1024];
};

/* Parses what a VM sent first — lines up to its version line, then its
 * KEXINIT packet (in the clear). -EAGAIN when more bytes are needed,
 * -EPROTO when it is not a KEXINIT. */
int sshc_kexinit_parse(const uint8_t *data, size_t len, struct sshc_kexinit *out);
/* Connects to ip:port, sends a version line and reads the VM's KEXINIT.
 * Blocking, each step bounded by timeout_ms: call on a worker. */
int sshc_kex_probe(const char *ip, uint16_t port, unsigned timeout_ms, struct sshc_kexinit *out);
