/* Private to src/ssh: reading private-key containers before libssh sees
 * them (keyfile.c). libssh 0.10 trusts what it is given: it calls a NULL
 * function pointer for AEAD ciphers, runs as many bcrypt rounds as a file
 * asks for, and reads an ed25519 PKCS#8 key into a key without its public
 * half. These helpers look first, so that keys.c hands libssh only what it
 * handles correctly. Pure, no globals: safe from any thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The most bcrypt rounds an OpenSSH key may ask for: ≈ 1.7 s of one core
 * here (docs/security.md), 2.5 times the widely recommended `-a 100`. */
#define KEYFILE_ROUNDS_MAX 256u

/* What the public head of an "openssh-key-v1" container says. Strings are
 * NUL-terminated and hold only [A-Za-z0-9@._-] (anything else reads "?"),
 * so that they may go into a message. */
struct keyfile_openssh {
	char cipher[48]; /* "" when the container ended before it */
	char kdf[16];
	uint32_t rounds;  /* bcrypt rounds; 0 for kdf "none" */
	char keytype[48]; /* the public key's type, "" if not reached */
	char *pub_b64;    /* the public key blob in base64, malloc'd */
};

/* Whether libssh 0.10 decrypts this cipher correctly (each was checked
 * with `ssh-keygen -Z`; the AEAD ones crash it). "none" is not a cipher. */
bool keyfile_cipher_ok(const char *cipher);

/* Reads the container in a normalised "OPENSSH PRIVATE KEY" text through
 * getters that fail on short input: magic, cipher, KDF and its options,
 * one key, the public key, the private section (a whole number of cipher
 * blocks, nothing after it; unencrypted: its two check words agree).
 * 0, -EINVAL when the structure is damaged (the fields read so far are
 * filled in), -ENOMEM. keyfile_openssh_done() frees in every case. */
int keyfile_openssh_read(const char *norm, struct keyfile_openssh *ret);
void keyfile_openssh_done(struct keyfile_openssh *k);

/* Whether the base64 body of a normalised PEM text (after its headers)
 * decodes, and for an encrypted one is a whole number of 8-byte blocks. */
bool keyfile_pem_body_ok(const char *norm, bool encrypted);

/* Whether OpenSSL reads a normalised unencrypted PEM text as some private
 * key (to tell a damaged key from a type libssh does not take). */
bool keyfile_pem_parses(const char *norm);

/* Caps on the work an encrypted PKCS#8 key may ask for, chosen like
 * KEYFILE_ROUNDS_MAX (docs/security.md): PBKDF2 iterations (OWASP's
 * 600 000 for PBKDF2-HMAC-SHA256, ≈ 1.2 s here; OpenSSL writes 2048), and
 * scrypt's N*r*p (twice `openssl pkcs8 -scrypt`'s 16384*8*1, ≈ 0.9 s). */
#define KEYFILE_PBKDF2_MAX 600000u
#define KEYFILE_SCRYPT_MAX 262144u

/* Reads an encrypted PKCS#8 text's outer structure (algorithm, KDF
 * parameters, encrypted data) without decrypting. 0 when intact and within
 * the caps; -E2BIG with `why` filled in ("N PBKDF2 iterations, more than
 * the M") when over; -EINVAL when damaged; -ENOMEM. */
int keyfile_pkcs8_check(const char *norm, char *why, size_t why_size);

enum keyfile_pkcs8_result {
	KEYFILE_P8_OK,
	KEYFILE_P8_BAD_PASS,    /* encrypted and OpenSSL could not decrypt it */
	KEYFILE_P8_DAMAGED,     /* unencrypted and not a key */
	KEYFILE_P8_DSA,         /* a DSA key */
	KEYFILE_P8_UNSUPPORTED, /* another type (ed448, X25519, ...) */
};

/* Reads a PKCS#8 text (plain or encrypted with `pass`, which may be NULL)
 * with OpenSSL and writes into *ret_text an unencrypted text libssh reads
 * correctly: an OpenSSH container for ed25519, PKCS#8 for RSA and ECDSA.
 * *ret_text is malloc'd, NUL-terminated, and holds a secret: the caller
 * wipes it (strlen) and frees it. -ENOMEM, or 0 with *ret_result telling
 * whether there is a text (KEYFILE_P8_OK). CPU heavy when encrypted. */
int keyfile_pkcs8_convert(const char *norm, const char *pass, char **ret_text,
			  enum keyfile_pkcs8_result *ret_result);

/* Names what a text that is not a usable private key looks like: a PuTTY
 * key, a public key, a DSA key; NULL when it looks like none of them. The
 * text need not be normalised (len bytes, not NUL-terminated). */
const char *keyfile_identify(const char *text, size_t len);

#define KEYFILE_REASON_PPK                                                  \
	"this is a PuTTY key (.ppk): convert it with `puttygen KEY.ppk -O " \
	"private-openssh -o KEY` and use KEY"
#define KEYFILE_REASON_PUBLIC                                                 \
	"this is a public key: the bastion needs the private half (the file " \
	"without .pub, e.g. ~/.ssh/id_ed25519)"
#define KEYFILE_REASON_DSA                                                   \
	"DSA keys are not supported (OpenSSH removed DSA): make an ed25519 " \
	"key with `ssh-keygen -t ed25519`"
