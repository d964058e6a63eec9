/* Private key and host key helpers: normalising pasted keys, importing them
 * through libssh without any terminal prompt (after keyfile.c has checked
 * what libssh would be handed), and parsing known_hosts lines. No loop;
 * safe from any thread: the only shared state is the key gate (locked) and
 * a per-thread buffer for reasons. */
#include "ssh/sshc.h"

#include "core/err.h"
#include "core/gate.h"
#include "ssh/keyfile.h"

#include <ctype.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX_LEN  16384u
#define PEM_WRAP     64u
#define OPENSSH_WRAP 70u
#define MAX_HEADERS  4u

#define REASON_NEED_PASS "the key is passphrase-protected: a passphrase is required"
#define REASON_BAD_PASS  "the passphrase does not fit the key"
#define REASON_NOT_KEY   "not a private key in a supported format"
#define REASON_TOO_BIG   "the key is larger than 16 KiB"
#define REASON_DAMAGED                                                            \
	"the key is damaged (truncated or altered): paste or pick the whole key " \
	"file again"
#define REASON_CIPHER                                                                 \
	"the key is encrypted with %s, which the bastion cannot decrypt: re-encrypt " \
	"it with `ssh-keygen -p -Z aes256-ctr -f KEYFILE`"
#define REASON_ROUNDS                                                                \
	"the key's passphrase is stretched with %u bcrypt rounds, more than the %u " \
	"the bastion accepts: re-encrypt it with fewer, e.g. `ssh-keygen -p -a 100 " \
	"-f KEYFILE`"
#define REASON_P8_WORK                                                          \
	"the key's passphrase is stretched with %s the bastion accepts: "       \
	"re-encrypt it with `openssl pkcs8 -topk8 -v2 aes-256-cbc -in KEYFILE " \
	"-out NEWFILE`"
#define REASON_TYPE "%s keys are not supported: use ed25519, ECDSA or RSA"
#define REASON_BUSY                                                                  \
	"the bastion is busy decrypting other passphrase-protected keys: try again " \
	"in a few seconds"

#define BEGIN_OPENSSH   "-----BEGIN OPENSSH PRIVATE KEY-----\n"
#define BEGIN_PKCS8     "-----BEGIN PRIVATE KEY-----\n"
#define BEGIN_PKCS8_ENC "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
#define BEGIN_RSA       "-----BEGIN RSA PRIVATE KEY-----\n"
#define BEGIN_EC        "-----BEGIN EC PRIVATE KEY-----\n"

/* A view into the caller's text: never NUL-terminated. */
struct span {
	const char *p;
	size_t n;
};

static bool is_space(char ch)
{
	return isspace((unsigned char)ch) != 0;
}

static bool is_b64(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '+' || ch == '/' || ch == '=';
}

static const char *find_mem(const char *hay, size_t hay_len, const char *needle)
{
	size_t n = strlen(needle);

	if (n == 0 || hay_len < n)
		return NULL;
	return memmem(hay, hay_len, needle, n);
}

/* Reads the armour label between "BEGIN "/"END " and the closing dashes,
 * collapsing runs of whitespace (a label may have been re-wrapped) into one
 * space. Returns the position after the closing dashes, or NULL. */
static const char *read_label(const char *p, const char *end, char *label, size_t label_size)
{
	const char *close = find_mem(p, (size_t)(end - p), "-----");
	size_t w = 0;
	bool space = false;

	if (close == NULL)
		return NULL;
	for (const char *q = p; q < close; q++) {
		if (is_space(*q)) {
			space = w > 0;
			continue;
		}
		if (!((*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9')))
			return NULL;
		if (w + (space ? 2 : 1) >= label_size)
			return NULL;
		if (space)
			label[w++] = ' ';
		space = false;
		label[w++] = *q;
	}
	label[w] = '\0';
	if (w == 0)
		return NULL;
	return close + 5;
}

/* The next whitespace-separated token in [*pos, end), or false at the end. */
static bool next_token(const char **pos, const char *end, struct span *tok)
{
	const char *p = *pos;

	while (p < end && is_space(*p))
		p++;
	if (p == end)
		return false;
	tok->p = p;
	while (p < end && !is_space(*p))
		p++;
	tok->n = (size_t)(p - tok->p);
	*pos = p;
	return true;
}

int sshc_key_normalize(const char *text, size_t len, char **ret)
{
	char label[64], end_label[64];
	struct span hname[MAX_HEADERS], hval[MAX_HEADERS];
	size_t n_headers = 0, body_len = 0, wrap, out_len, w = 0;
	const char *tend, *p, *begin, *body, *body_end, *q;
	char *out = NULL;
	struct span tok;

	if (text == NULL || ret == NULL)
		return -EINVAL;
	if (len > KEY_MAX_LEN)
		return -E2BIG;
	tend = text + len;

	begin = find_mem(text, len, "-----BEGIN ");
	if (begin == NULL)
		return -EINVAL;
	body = read_label(begin + 11, tend, label, sizeof(label));
	if (body == NULL)
		return -EINVAL;
	body_end = find_mem(body, (size_t)(tend - body), "-----END ");
	if (body_end == NULL)
		return -EINVAL;
	if (read_label(body_end + 9, tend, end_label, sizeof(end_label)) == NULL ||
	    strcmp(label, end_label) != 0)
		return -EINVAL;

	/* Headers come first: a token holding ':' (base64 never does), its
	 * value either after the colon or as the next token. Then only base64
	 * may follow. */
	p = body;
	while (next_token(&p, body_end, &tok)) {
		const char *colon = memchr(tok.p, ':', tok.n);

		if (colon == NULL) {
			for (size_t i = 0; i < tok.n; i++)
				if (!is_b64(tok.p[i]))
					return -EINVAL;
			body_len += tok.n;
			continue;
		}
		if (body_len > 0 || n_headers == MAX_HEADERS || colon == tok.p)
			return -EINVAL;
		hname[n_headers] = (struct span){ tok.p, (size_t)(colon - tok.p) };
		if (colon + 1 < tok.p + tok.n) {
			hval[n_headers] =
				(struct span){ colon + 1, tok.n - (size_t)(colon + 1 - tok.p) };
		} else if (!next_token(&p, body_end, &hval[n_headers])) {
			return -EINVAL;
		}
		n_headers++;
	}
	if (body_len == 0)
		return -EINVAL;

	wrap = strcmp(label, "OPENSSH PRIVATE KEY") == 0 ? OPENSSH_WRAP : PEM_WRAP;
	/* Every part is bounded by the 16 KiB input, so these sums cannot
	 * overflow. */
	out_len = 2 * (strlen(label) + 17) + body_len + body_len / wrap + 2;
	for (size_t i = 0; i < n_headers; i++)
		out_len += hname[i].n + hval[i].n + 3;
	out_len += n_headers > 0 ? 1 : 0;
	out = malloc(out_len + 1);
	if (out == NULL)
		return -ENOMEM;

	w += (size_t)snprintf(out + w, out_len + 1 - w, "-----BEGIN %s-----\n", label);
	for (size_t i = 0; i < n_headers; i++) {
		memcpy(out + w, hname[i].p, hname[i].n);
		w += hname[i].n;
		out[w++] = ':';
		out[w++] = ' ';
		memcpy(out + w, hval[i].p, hval[i].n);
		w += hval[i].n;
		out[w++] = '\n';
	}
	if (n_headers > 0)
		out[w++] = '\n';

	/* Second pass: copy the base64 characters, re-wrapped. The header
	 * tokens are skipped exactly as above. */
	{
		size_t col = 0, skip_values = 0;

		q = body;
		while (next_token(&q, body_end, &tok)) {
			const char *colon = memchr(tok.p, ':', tok.n);

			if (skip_values > 0) {
				skip_values--;
				continue;
			}
			if (colon != NULL) {
				if (colon + 1 == tok.p + tok.n)
					skip_values = 1;
				continue;
			}
			for (size_t i = 0; i < tok.n; i++) {
				out[w++] = tok.p[i];
				if (++col == wrap) {
					out[w++] = '\n';
					col = 0;
				}
			}
		}
		if (col != 0)
			out[w++] = '\n';
	}
	w += (size_t)snprintf(out + w, out_len + 1 - w, "-----END %s-----\n", label);
	out[w] = '\0';
	*ret = out;
	return 0;
}

/* libssh asks this for a passphrase when none was given: refusing keeps it
 * from ever prompting on a terminal. */
static int refuse_prompt(const char *prompt, char *buf, size_t len, int echo, int verify,
			 void *userdata)
{
	if (buf != NULL && len > 0)
		buf[0] = '\0';
	return -1;
}

static bool supported_type(enum ssh_keytypes_e t)
{
	switch (t) {
	case SSH_KEYTYPE_RSA:
	case SSH_KEYTYPE_ECDSA_P256:
	case SSH_KEYTYPE_ECDSA_P384:
	case SSH_KEYTYPE_ECDSA_P521:
	case SSH_KEYTYPE_ED25519:
		return true;
	default:
		return false;
	}
}

/* Decrypting a passphrase-protected key costs up to ≈ 2 s of a worker
 * thread (KEYFILE_ROUNDS_MAX): at most half the pool may do it at once. */
static struct gate key_gate = GATE_INIT(0);

/* Reasons that name a number are written here: valid until the thread's
 * next call, which is after the caller has copied it into its answer. */
static _Thread_local char reason_buf[320];

enum key_format { FMT_OPENSSH, FMT_PKCS8, FMT_PEM };

/* The checks made before any decryption: what the container says, and
 * whether it is intact. Sets *ret_encrypted. 0, -BERR_BADKEY with *reason,
 * or -ENOMEM. */
static int precheck(const char *norm, enum key_format fmt, struct keyfile_openssh *kf,
		    bool *ret_encrypted, const char **reason)
{
	int r;

	switch (fmt) {
	case FMT_OPENSSH:
		r = keyfile_openssh_read(norm, kf);
		if (r == -ENOMEM)
			return r;
		if (kf->cipher[0] != '\0' && strcmp(kf->cipher, "none") != 0 &&
		    !keyfile_cipher_ok(kf->cipher)) {
			/* libssh 0.10 crashes on the AEAD ciphers: never
			 * hand it a cipher not known to work. */
			snprintf(reason_buf, sizeof(reason_buf), REASON_CIPHER,
				 strcmp(kf->cipher, "?") == 0 ? "an unknown cipher" : kf->cipher);
			*reason = reason_buf;
			return -BERR_BADKEY;
		}
		if (r < 0) {
			*reason = REASON_DAMAGED;
			return -BERR_BADKEY;
		}
		if (strcmp(kf->keytype, "ssh-dss") == 0) {
			*reason = KEYFILE_REASON_DSA;
			return -BERR_BADKEY;
		}
		*ret_encrypted = strcmp(kf->cipher, "none") != 0;
		if (*ret_encrypted && kf->rounds > KEYFILE_ROUNDS_MAX) {
			snprintf(reason_buf, sizeof(reason_buf), REASON_ROUNDS,
				 (unsigned)kf->rounds, KEYFILE_ROUNDS_MAX);
			*reason = reason_buf;
			return -BERR_BADKEY;
		}
		return 0;
	case FMT_PKCS8: {
		char why[128];

		*ret_encrypted = strncmp(norm, BEGIN_PKCS8_ENC, strlen(BEGIN_PKCS8_ENC)) == 0;
		if (!*ret_encrypted) {
			if (keyfile_pem_body_ok(norm, false))
				return 0;
			*reason = REASON_DAMAGED;
			return -BERR_BADKEY;
		}
		r = keyfile_pkcs8_check(norm, why, sizeof(why));
		if (r == -ENOMEM)
			return r;
		if (r == -E2BIG) {
			snprintf(reason_buf, sizeof(reason_buf), REASON_P8_WORK, why);
			*reason = reason_buf;
			return -BERR_BADKEY;
		}
		if (r < 0) {
			*reason = REASON_DAMAGED;
			return -BERR_BADKEY;
		}
		return 0;
	}
	case FMT_PEM:
	default:
		*ret_encrypted = strstr(norm, "\nProc-Type: 4,ENCRYPTED\n") != NULL;
		if (!keyfile_pem_body_ok(norm, *ret_encrypted)) {
			*reason = REASON_DAMAGED;
			return -BERR_BADKEY;
		}
		return 0;
	}
}

/* Why libssh refused a key that passed precheck(). */
static const char *import_failure(const char *norm, enum key_format fmt,
				  const struct keyfile_openssh *kf, bool encrypted)
{
	if (encrypted)
		return REASON_BAD_PASS; /* intact, so most likely the passphrase */
	if (fmt == FMT_OPENSSH && kf->keytype[0] != '\0' &&
	    ssh_key_type_from_name(kf->keytype) == SSH_KEYTYPE_UNKNOWN) {
		snprintf(reason_buf, sizeof(reason_buf), REASON_TYPE, kf->keytype);
		return reason_buf;
	}
	if (fmt == FMT_PEM && keyfile_pem_parses(norm))
		return REASON_NOT_KEY; /* a key, of a kind libssh does not take */
	return REASON_DAMAGED;
}

static const char *pkcs8_reason(enum keyfile_pkcs8_result res)
{
	switch (res) {
	case KEYFILE_P8_BAD_PASS:
		return REASON_BAD_PASS;
	case KEYFILE_P8_DSA:
		return KEYFILE_REASON_DSA;
	case KEYFILE_P8_UNSUPPORTED:
		return REASON_NOT_KEY;
	case KEYFILE_P8_DAMAGED:
	default:
		return REASON_DAMAGED;
	}
}

/* Whether the public key in the container is the one the private part
 * makes: OpenSSH checks this, libssh 0.10 does not. */
static bool public_matches(ssh_key key, const char *want_b64)
{
	ssh_key pub = NULL;
	char *b64 = NULL;
	bool ok;

	if (want_b64 == NULL)
		return true;
	ok = ssh_pki_export_privkey_to_pubkey(key, &pub) == SSH_OK &&
	     ssh_pki_export_pubkey_base64(pub, &b64) == SSH_OK && strcmp(b64, want_b64) == 0;
	ssh_string_free_char(b64);
	ssh_key_free(pub);
	return ok;
}

static void free_secret_text(char *s)
{
	if (s != NULL) {
		sodium_memzero(s, strlen(s));
		free(s);
	}
}

int sshc_key_import(const char *text, size_t len, const char *passphrase, ssh_key *ret,
		    const char **ret_reason)
{
	const char *reason = REASON_NOT_KEY, *named;
	char *norm = NULL, *conv = NULL;
	struct keyfile_openssh kf = { 0 };
	enum keyfile_pkcs8_result p8 = KEYFILE_P8_OK;
	enum key_format fmt;
	ssh_key key = NULL;
	bool encrypted = false, gated = false;
	int r;

	if (text == NULL || ret == NULL)
		return -EINVAL;
	if (passphrase != NULL && passphrase[0] == '\0')
		passphrase = NULL;

	r = sshc_key_normalize(text, len, &norm);
	if (r == -ENOMEM)
		goto out;
	if (r < 0) {
		if (r == -E2BIG)
			reason = REASON_TOO_BIG;
		else if ((named = keyfile_identify(text, len)) != NULL)
			reason = named;
		else if (find_mem(text, len, "-----BEGIN ") != NULL &&
			 find_mem(text, len, " PRIVATE KEY-----") != NULL)
			reason = REASON_DAMAGED; /* its armour, but not its body */
		r = -BERR_BADKEY;
		goto out;
	}
	r = -BERR_BADKEY;
	if ((named = keyfile_identify(norm, strlen(norm))) != NULL) {
		reason = named;
		goto out;
	}
	if (strncmp(norm, BEGIN_OPENSSH, strlen(BEGIN_OPENSSH)) == 0)
		fmt = FMT_OPENSSH;
	else if (strncmp(norm, BEGIN_PKCS8, strlen(BEGIN_PKCS8)) == 0 ||
		 strncmp(norm, BEGIN_PKCS8_ENC, strlen(BEGIN_PKCS8_ENC)) == 0)
		fmt = FMT_PKCS8;
	else if (strncmp(norm, BEGIN_RSA, strlen(BEGIN_RSA)) == 0 ||
		 strncmp(norm, BEGIN_EC, strlen(BEGIN_EC)) == 0)
		fmt = FMT_PEM;
	else
		goto out; /* not a private key we know */

	if ((r = precheck(norm, fmt, &kf, &encrypted, &reason)) < 0)
		goto out;
	r = -BERR_BADKEY;
	if (encrypted && passphrase == NULL) {
		reason = REASON_NEED_PASS;
		goto out;
	}
	if (encrypted) {
		if (gate_try_enter(&key_gate) < 0) {
			reason = REASON_BUSY;
			r = -EBUSY;
			goto out;
		}
		gated = true;
	}
	if (fmt == FMT_PKCS8) {
		/* OpenSSL reads every PKCS#8 key; libssh gets it back
		 * unencrypted, as an OpenSSH container for ed25519 (libssh
		 * 0.10 loses its public half from PKCS#8). */
		if ((r = keyfile_pkcs8_convert(norm, passphrase, &conv, &p8)) < 0)
			goto out;
		r = -BERR_BADKEY;
		if (p8 != KEYFILE_P8_OK) {
			reason = pkcs8_reason(p8);
			goto out;
		}
	}
	if (ssh_pki_import_privkey_base64(conv != NULL ? conv : norm,
					  conv != NULL ? NULL : passphrase, refuse_prompt, NULL,
					  &key) != SSH_OK ||
	    key == NULL) {
		reason = conv != NULL ? REASON_DAMAGED : import_failure(norm, fmt, &kf, encrypted);
		goto out;
	}
	if (!ssh_key_is_private(key) || !supported_type(ssh_key_type(key))) {
		reason = REASON_NOT_KEY;
		goto out;
	}
	if (!public_matches(key, kf.pub_b64)) {
		reason = REASON_DAMAGED;
		goto out;
	}
	*ret = key;
	key = NULL;
	reason = NULL;
	r = 0;
out:
	if (gated)
		gate_leave(&key_gate);
	ssh_key_free(key);
	keyfile_openssh_done(&kf);
	free_secret_text(norm);
	free_secret_text(conv);
	if (r < 0 && ret_reason != NULL)
		*ret_reason = reason;
	return r;
}

/* Host key types we pin: plain keys only (no certificates, no FIDO). */
static bool hostkey_type_ok(const char *name)
{
	return strcmp(name, "ssh-ed25519") == 0 || strcmp(name, "ssh-rsa") == 0 ||
	       strcmp(name, "ecdsa-sha2-nistp256") == 0 ||
	       strcmp(name, "ecdsa-sha2-nistp384") == 0 || strcmp(name, "ecdsa-sha2-nistp521") == 0;
}

static char *span_dup(struct span s)
{
	char *d = malloc(s.n + 1);

	if (d != NULL) {
		memcpy(d, s.p, s.n);
		d[s.n] = '\0';
	}
	return d;
}

/* The blob must start with the same type name the line claims: libssh's
 * importer trusts the type it is given. */
static bool blob_type_matches(const char *b64, const char *type)
{
	size_t b64_len = strlen(b64), bin_len = 0, tlen = strlen(type);
	uint8_t *bin;
	bool ok = false;

	if (b64_len > 8192)
		return false;
	bin = malloc(b64_len);
	if (bin == NULL)
		return false;
	if (sodium_base642bin(bin, b64_len, b64, b64_len, NULL, &bin_len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) == 0 &&
	    bin_len >= 4 + tlen) {
		uint32_t n = (uint32_t)bin[0] << 24 | (uint32_t)bin[1] << 16 |
			     (uint32_t)bin[2] << 8 | bin[3];

		ok = n == tlen && memcmp(bin + 4, type, tlen) == 0;
	}
	free(bin);
	return ok;
}

int sshc_hostkey_parse(const char *line, char **ret_type, char **ret_b64)
{
	struct span t0, t1, t2, ty, kb;
	const char *p, *end;
	char *type = NULL, *b64 = NULL;
	ssh_key key = NULL;
	int r = -EINVAL;

	if (line == NULL || ret_type == NULL || ret_b64 == NULL)
		return -EINVAL;
	p = line;
	end = line + strlen(line);
	if (!next_token(&p, end, &t0) || t0.p[0] == '#' || t0.p[0] == '@')
		goto out; /* blank, comment, or a marker: @cert-authority and
			   * @revoked lines are not keys to pin */
	if (!next_token(&p, end, &t1))
		goto out;
	{
		char name[64];

		if (t0.n < sizeof(name)) {
			memcpy(name, t0.p, t0.n);
			name[t0.n] = '\0';
		}
		if (t0.n < sizeof(name) && ssh_key_type_from_name(name) != SSH_KEYTYPE_UNKNOWN) {
			ty = t0; /* bare "type base64 [comment]" */
			kb = t1;
		} else {
			/* known_hosts: host patterns (plain, [host]:port or
			 * hashed |1|salt|hash), then type and key. */
			if (!next_token(&p, end, &t2))
				goto out;
			ty = t1;
			kb = t2;
		}
	}
	if (ty.n >= 64 || kb.n > 8192)
		goto out;
	for (size_t i = 0; i < kb.n; i++)
		if (!is_b64(kb.p[i]))
			goto out;
	r = -ENOMEM;
	type = span_dup(ty);
	b64 = span_dup(kb);
	if (type == NULL || b64 == NULL)
		goto out;
	r = -EINVAL;
	if (!hostkey_type_ok(type) || !blob_type_matches(b64, type))
		goto out;
	if (ssh_pki_import_pubkey_base64(b64, ssh_key_type_from_name(type), &key) != SSH_OK)
		goto out;
	if (strcmp(ssh_key_type_to_char(ssh_key_type(key)), type) != 0)
		goto out;
	*ret_type = type;
	*ret_b64 = b64;
	type = b64 = NULL;
	r = 0;
out:
	ssh_key_free(key);
	free(type);
	free(b64);
	return r;
}

/* The largest key blob we fingerprint: RSA 16384 is about 2 KiB. */
#define BLOB_MAX 8192

int sshc_hostkey_fingerprint(const char *line, char *out, size_t size)
{
	unsigned char *blob = NULL, hash[crypto_hash_sha256_BYTES];
	char *type = NULL, *b64 = NULL,
	     enc[sodium_base64_ENCODED_LEN(crypto_hash_sha256_BYTES,
					   sodium_base64_VARIANT_ORIGINAL_NO_PADDING)];
	size_t len = 0;
	int r = sshc_hostkey_parse(line, &type, &b64);

	if (r < 0)
		goto out;
	r = -EINVAL;
	if (!(blob = malloc(BLOB_MAX))) {
		r = -ENOMEM;
		goto out;
	}
	if (sodium_base642bin(blob, BLOB_MAX, b64, strlen(b64), NULL, &len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0)
		goto out;
	crypto_hash_sha256(hash, blob, len);
	sodium_bin2base64(enc, sizeof(enc), hash, sizeof(hash),
			  sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
	r = snprintf(out, size, "%s SHA256:%s", type, enc) < (int)size ? 0 : -ENOSPC;
out:
	free(blob);
	free(type);
	free(b64);
	return r;
}
