/* Private key and host key helpers: normalising pasted keys, importing them
 * through libssh without any terminal prompt, and parsing known_hosts lines.
 * Everything here is pure (no loop, no globals) and safe from any thread. */
#include "ssh/sshc.h"

#include "core/err.h"

#include <ctype.h>
#include <errno.h>
#include <sodium.h>
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

/* Whether an OpenSSH-format key names a cipher other than "none". Only the
 * public head of the blob is decoded: magic, then the cipher name. */
static bool openssh_encrypted(const char *norm)
{
	static const char magic[] = "openssh-key-v1"; /* followed by a NUL */
	char b64[96];
	uint8_t bin[72];
	size_t n = 0, bin_len = 0;
	const char *p = strchr(norm, '\n');
	uint32_t name_len;

	if (p == NULL)
		return false;
	for (p++; *p != '\0' && *p != '-' && n < sizeof(b64) - 1; p++)
		if (*p != '\n')
			b64[n++] = *p;
	n -= n % 4;
	b64[n] = '\0';
	if (sodium_base642bin(bin, sizeof(bin), b64, n, NULL, &bin_len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0)
		return false;
	if (bin_len < sizeof(magic) + 4 || memcmp(bin, magic, sizeof(magic)) != 0)
		return false;
	name_len = (uint32_t)bin[15] << 24 | (uint32_t)bin[16] << 16 | (uint32_t)bin[17] << 8 |
		   bin[18];
	if (name_len > bin_len - 19)
		return true; /* a long name is not "none" */
	return !(name_len == 4 && memcmp(bin + 19, "none", 4) == 0);
}

static bool key_encrypted(const char *norm)
{
	if (strncmp(norm, "-----BEGIN ENCRYPTED PRIVATE KEY-----", 37) == 0)
		return true;
	if (strncmp(norm, "-----BEGIN OPENSSH PRIVATE KEY-----", 35) == 0)
		return openssh_encrypted(norm);
	return strstr(norm, "\nProc-Type: 4,ENCRYPTED\n") != NULL;
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

int sshc_key_import(const char *text, size_t len, const char *passphrase, ssh_key *ret,
		    const char **ret_reason)
{
	const char *reason = REASON_NOT_KEY;
	char *norm = NULL;
	ssh_key key = NULL;
	bool encrypted;
	int r;

	if (text == NULL || ret == NULL)
		return -EINVAL;
	if (passphrase != NULL && passphrase[0] == '\0')
		passphrase = NULL;

	r = sshc_key_normalize(text, len, &norm);
	if (r == -ENOMEM)
		goto out;
	if (r < 0) {
		reason = r == -E2BIG ? REASON_TOO_BIG : REASON_NOT_KEY;
		r = -BERR_BADKEY;
		goto out;
	}
	encrypted = key_encrypted(norm);
	if (encrypted && passphrase == NULL) {
		reason = REASON_NEED_PASS;
		r = -BERR_BADKEY;
		goto out;
	}
	if (ssh_pki_import_privkey_base64(norm, passphrase, refuse_prompt, NULL, &key) != SSH_OK ||
	    key == NULL) {
		reason = encrypted ? REASON_BAD_PASS : REASON_NOT_KEY;
		r = -BERR_BADKEY;
		goto out;
	}
	if (!ssh_key_is_private(key) || !supported_type(ssh_key_type(key))) {
		reason = REASON_NOT_KEY;
		r = -BERR_BADKEY;
		goto out;
	}
	*ret = key;
	key = NULL;
	reason = NULL;
	r = 0;
out:
	ssh_key_free(key);
	if (norm != NULL) {
		sodium_memzero(norm, strlen(norm));
		free(norm);
	}
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
