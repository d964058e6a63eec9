/* Tests for src/ssh/keys.c: keys are made at test time by ssh-keygen in a
 * temporary directory, in every format the connect API accepts, then
 * imported as pasted (and mangled the ways pasting mangles them). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/err.h"
#include "ssh/keyfile.h"
#include "ssh/sshc.h"

#include "keytest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SSH_KEYGEN KT_SSH_KEYGEN
#define PASS       "correct horse battery"

#define R_NEED_PASS "the key is passphrase-protected: a passphrase is required"
#define R_BAD_PASS  "the passphrase does not fit the key"
#define R_NOT_KEY   "not a private key in a supported format"
#define R_DAMAGED \
	"the key is damaged (truncated or altered): paste or pick the whole key file again"

struct kcase {
	const char *name, *type, *bits, *format;
	bool encrypted;
	const char *begin; /* expected armour */
	enum ssh_keytypes_e kt;
};

static const struct kcase cases[] = {
	{ "ed25519", "ed25519", NULL, NULL, false, "-----BEGIN OPENSSH PRIVATE KEY-----",
	  SSH_KEYTYPE_ED25519 },
	{ "ed25519_enc", "ed25519", NULL, NULL, true, "-----BEGIN OPENSSH PRIVATE KEY-----",
	  SSH_KEYTYPE_ED25519 },
	{ "ecdsa", "ecdsa", "256", NULL, false, "-----BEGIN OPENSSH PRIVATE KEY-----",
	  SSH_KEYTYPE_ECDSA_P256 },
	{ "ecdsa_enc", "ecdsa", "384", NULL, true, "-----BEGIN OPENSSH PRIVATE KEY-----",
	  SSH_KEYTYPE_ECDSA_P384 },
	{ "rsa", "rsa", "2048", NULL, false, "-----BEGIN OPENSSH PRIVATE KEY-----",
	  SSH_KEYTYPE_RSA },
	{ "rsa_enc", "rsa", "2048", NULL, true, "-----BEGIN OPENSSH PRIVATE KEY-----",
	  SSH_KEYTYPE_RSA },
	{ "rsa_pem", "rsa", "2048", "PEM", false, "-----BEGIN RSA PRIVATE KEY-----",
	  SSH_KEYTYPE_RSA },
	{ "rsa_pem_enc", "rsa", "2048", "PEM", true, "-----BEGIN RSA PRIVATE KEY-----",
	  SSH_KEYTYPE_RSA },
	{ "rsa_pkcs8", "rsa", "2048", "PKCS8", false, "-----BEGIN PRIVATE KEY-----",
	  SSH_KEYTYPE_RSA },
	{ "rsa_pkcs8_enc", "rsa", "2048", "PKCS8", true, "-----BEGIN ENCRYPTED PRIVATE KEY-----",
	  SSH_KEYTYPE_RSA },
	{ "ecdsa_pem", "ecdsa", "256", "PEM", false, "-----BEGIN EC PRIVATE KEY-----",
	  SSH_KEYTYPE_ECDSA_P256 },
};
#define N_CASES (sizeof(cases) / sizeof(cases[0]))

static int group_setup(void **state)
{
	if (kt_setup("keys") < 0)
		return -1;
	for (size_t i = 0; i < N_CASES; i++)
		kt_keygen(cases[i].name, cases[i].type, cases[i].bits, cases[i].format,
			  cases[i].encrypted ? PASS : NULL);
	return 0;
}

static int group_teardown(void **state)
{
	return kt_teardown();
}

/* Every format imports; the armour is the one the case says; encrypted
 * keys need the passphrase and name the right problem without it. */
static void test_import_formats(void **state)
{
	for (size_t i = 0; i < N_CASES; i++) {
		const struct kcase *k = &cases[i];
		size_t len;
		char *text = kt_read_file(kt_path(k->name), &len);

		assert_memory_equal(text, k->begin, strlen(k->begin));
		if (k->encrypted) {
			kt_import_ok(text, len, PASS, k->kt);
			kt_import_bad(text, len, NULL, R_NEED_PASS);
			kt_import_bad(text, len, "", R_NEED_PASS);
			kt_import_bad(text, len, "wrong passphrase", R_BAD_PASS);
		} else {
			kt_import_ok(text, len, NULL, k->kt);
			/* A passphrase given for a plain key does no harm. */
			kt_import_ok(text, len, "unused", k->kt);
		}
		free(text);
	}
}

/* What ssh-keygen writes is already normal: normalising changes nothing
 * (64 columns for PEM with headers and their blank line, 70 for OpenSSH). */
static void test_normalize_identity(void **state)
{
	for (size_t i = 0; i < N_CASES; i++) {
		size_t len;
		char *text = kt_read_file(kt_path(cases[i].name), &len), *norm = NULL;

		assert_int_equal(sshc_key_normalize(text, len, &norm), 0);
		assert_string_equal(norm, text);
		free(norm);
		free(text);
	}
}

/* Appends with a bound; the mangled texts stay well under 64 KiB. */
static void put(char *dst, size_t *w, size_t size, const char *s, size_t n)
{
	assert_true(*w + n < size);
	memcpy(dst + *w, s, n);
	*w += n;
	dst[*w] = '\0';
}

enum mangle { M_CRLF, M_INDENT, M_ONE_LINE, M_BLANKS, M_NO_NEWLINES_TRAILING_JUNK };

static char *mangle(const char *text, enum mangle how)
{
	size_t size = 65536, w = 0;
	char *out = malloc(size);

	assert_non_null(out);
	out[0] = '\0';
	if (how == M_BLANKS || how == M_NO_NEWLINES_TRAILING_JUNK)
		put(out, &w, size, "\n \t\r\n\n   ", 9);
	for (const char *p = text; *p; p++) {
		if (*p != '\n') {
			put(out, &w, size, p, 1);
			continue;
		}
		switch (how) {
		case M_CRLF:
			put(out, &w, size, "\r\n", 2);
			break;
		case M_INDENT:
			put(out, &w, size, " \t \n    ", 8);
			break;
		case M_ONE_LINE:
			put(out, &w, size, " ", 1);
			break;
		case M_BLANKS:
			put(out, &w, size, "\n\n  \n", 5);
			break;
		case M_NO_NEWLINES_TRAILING_JUNK:
			put(out, &w, size, "\t", 1);
			break;
		}
	}
	if (how == M_BLANKS || how == M_NO_NEWLINES_TRAILING_JUNK)
		put(out, &w, size, "\r\n\t  \n\n", 7);
	return out;
}

/* Pasting damage is repaired: CRLF, indentation, one long line, blank
 * lines, surrounding whitespace. The result is byte-for-byte what
 * ssh-keygen wrote, and it imports. */
static void test_import_mangled(void **state)
{
	static const enum mangle all[] = { M_CRLF, M_INDENT, M_ONE_LINE, M_BLANKS,
					   M_NO_NEWLINES_TRAILING_JUNK };

	for (size_t i = 0; i < N_CASES; i++) {
		const struct kcase *k = &cases[i];
		char *text = kt_read_file(kt_path(k->name), NULL);

		for (size_t m = 0; m < sizeof(all) / sizeof(all[0]); m++) {
			char *bad = mangle(text, all[m]), *norm = NULL;

			assert_string_not_equal(bad, text);
			assert_int_equal(sshc_key_normalize(bad, strlen(bad), &norm), 0);
			assert_string_equal(norm, text);
			free(norm);
			/* Import is slow for encrypted keys (KDF rounds):
			 * check those for the one-line case only. */
			if (!k->encrypted)
				kt_import_ok(bad, strlen(bad), NULL, k->kt);
			else if (all[m] == M_ONE_LINE)
				kt_import_ok(bad, strlen(bad), PASS, k->kt);
			free(bad);
		}
		free(text);
	}
}

static void test_import_garbage(void **state)
{
	char *text = kt_read_file(kt_path("ed25519"), NULL),
	     *pub = kt_read_file(kt_path("ed25519.pub"), NULL);
	char *half, *big, *norm = NULL;
	size_t tlen = strlen(text);
	char *pem_pub_argv[] = { SSH_KEYGEN, "-e", "-m", "PKCS8", "-f", kt_path("rsa.pub"), NULL };
	char *pem_pub;
	static const char junk[] =
		"-----BEGIN OPENSSH PRIVATE KEY-----\nnot*base64!\n-----END OPENSSH PRIVATE KEY-----\n";
	static const char mismatch[] =
		"-----BEGIN RSA PRIVATE KEY-----\nQUJD\n-----END OPENSSH PRIVATE KEY-----\n";
	static const char empty_body[] =
		"-----BEGIN RSA PRIVATE KEY-----\n\n-----END RSA PRIVATE KEY-----\n";
	static const char b64_junk[] =
		"-----BEGIN RSA PRIVATE KEY-----\nQUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=\n-----END RSA PRIVATE KEY-----\n";

	kt_import_bad("hello world", 11, NULL, R_NOT_KEY);
	kt_import_bad("", 0, NULL, R_NOT_KEY);
	/* A private key's armour around a body that is not one: damaged. */
	kt_import_bad(junk, strlen(junk), NULL, R_DAMAGED);
	kt_import_bad(mismatch, strlen(mismatch), NULL, R_DAMAGED);
	kt_import_bad(empty_body, strlen(empty_body), NULL, R_DAMAGED);
	kt_import_bad(b64_junk, strlen(b64_junk), NULL, R_DAMAGED);
	assert_int_equal(sshc_key_normalize("hello", 5, &norm), -EINVAL);
	assert_int_equal(sshc_key_normalize(mismatch, strlen(mismatch), &norm), -EINVAL);
	assert_int_equal(sshc_key_normalize(junk, strlen(junk), &norm), -EINVAL);
	assert_null(norm);

	/* A public key, in OpenSSH and in PEM (PKCS#8 SubjectPublicKeyInfo)
	 * form, is named as the public half (test_identify has the rest). */
	kt_import_bad(pub, strlen(pub), NULL, KEYFILE_REASON_PUBLIC);
	assert_int_equal(kt_run(pem_pub_argv, kt_path("rsa.pem.pub")), 0);
	pem_pub = kt_read_file(kt_path("rsa.pem.pub"), NULL);
	assert_non_null(strstr(pem_pub, "-----BEGIN PUBLIC KEY-----"));
	kt_import_bad(pem_pub, strlen(pem_pub), NULL, KEYFILE_REASON_PUBLIC);

	/* Truncated body: the first half of the base64, then the armour. */
	half = malloc(tlen + 64);
	assert_non_null(half);
	memcpy(half, text, tlen / 2);
	snprintf(half + tlen / 2, 64, "\n-----END OPENSSH PRIVATE KEY-----\n");
	kt_import_bad(half, strlen(half), NULL, R_DAMAGED);

	/* Over 16 KiB: refused before parsing. */
	big = malloc(20000);
	assert_non_null(big);
	memset(big, ' ', 20000);
	memcpy(big, text, tlen);
	assert_int_equal(sshc_key_normalize(big, 20000, &norm), -E2BIG);
	kt_import_bad(big, 20000, NULL, "the key is larger than 16 KiB");
	/* Exactly 16 KiB of (mostly whitespace) text is still accepted. */
	assert_int_equal(sshc_key_normalize(big, 16384, &norm), 0);
	free(norm);

	free(big);
	free(half);
	free(pem_pub);
	free(pub);
	free(text);
}

static void parse_ok(const char *line, const char *want_type, const char *want_b64)
{
	char *type = NULL, *b64 = NULL;

	assert_int_equal(sshc_hostkey_parse(line, &type, &b64), 0);
	assert_string_equal(type, want_type);
	assert_string_equal(b64, want_b64);
	free(type);
	free(b64);
}

static void parse_bad(const char *line)
{
	char *type = NULL, *b64 = NULL;

	assert_int_equal(sshc_hostkey_parse(line, &type, &b64), -EINVAL);
	assert_null(type);
	assert_null(b64);
}

/* Splits "type b64 comment" from a .pub file. */
static void pub_parts(const char *name, char *type, size_t tsize, char *b64, size_t bsize)
{
	char *text = kt_read_file(kt_path(name), NULL);
	char *sp1 = strchr(text, ' '), *sp2;

	assert_non_null(sp1);
	sp2 = strchr(sp1 + 1, ' ');
	assert_non_null(sp2);
	assert_true((size_t)(sp1 - text) < tsize && (size_t)(sp2 - sp1 - 1) < bsize);
	memcpy(type, text, (size_t)(sp1 - text));
	type[sp1 - text] = '\0';
	memcpy(b64, sp1 + 1, (size_t)(sp2 - sp1 - 1));
	b64[sp2 - sp1 - 1] = '\0';
	free(text);
}

static void test_hostkey_parse(void **state)
{
	static const char *const pubs[] = { "ed25519.pub", "ecdsa.pub", "ecdsa_enc.pub",
					    "rsa.pub" };
	static const char *const types[] = { "ssh-ed25519", "ecdsa-sha2-nistp256",
					     "ecdsa-sha2-nistp384", "ssh-rsa" };
	char type[64], b64[1024], ed_b64[1024], rsa_b64[1024], line[2048];

	for (size_t i = 0; i < 4; i++) {
		pub_parts(pubs[i], type, sizeof(type), b64, sizeof(b64));
		assert_string_equal(type, types[i]);
		snprintf(line, sizeof(line), "%s %s", type, b64);
		parse_ok(line, type, b64);
		snprintf(line, sizeof(line), "%s %s a comment with spaces\r\n", type, b64);
		parse_ok(line, type, b64);
		snprintf(line, sizeof(line), "  \t%s\t%s\n", type, b64);
		parse_ok(line, type, b64);
		snprintf(line, sizeof(line), "host1,host2,10.0.0.4 %s %s comment", type, b64);
		parse_ok(line, type, b64);
		snprintf(line, sizeof(line), "[10.0.0.4]:2222 %s %s", type, b64);
		parse_ok(line, type, b64);
		snprintf(line, sizeof(line),
			 "|1|F1E1KeoE/eEWhi10WpGv4OdiO6Y=|3988QV0VE8wmZL7suNrYQLITLCg= %s %s", type,
			 b64);
		parse_ok(line, type, b64);
		snprintf(line, sizeof(line), "@cert-authority *.example.com %s %s", type, b64);
		parse_bad(line);
		snprintf(line, sizeof(line), "@revoked host1 %s %s", type, b64);
		parse_bad(line);
		snprintf(line, sizeof(line), "# host1 %s %s", type, b64);
		parse_bad(line);
	}
	pub_parts("ed25519.pub", type, sizeof(type), ed_b64, sizeof(ed_b64));
	pub_parts("rsa.pub", type, sizeof(type), rsa_b64, sizeof(rsa_b64));

	/* The type must be the one inside the blob. */
	snprintf(line, sizeof(line), "ssh-rsa %s", ed_b64);
	parse_bad(line);
	snprintf(line, sizeof(line), "host ssh-ed25519 %s", rsa_b64);
	parse_bad(line);
	/* A damaged blob, a truncated one, non-base64, missing parts. */
	snprintf(line, sizeof(line), "ssh-ed25519 %s", ed_b64);
	line[strlen(line) - 8] = '\0';
	parse_bad(line);
	snprintf(line, sizeof(line), "ssh-ed25519 %.30s", ed_b64);
	parse_bad(line);
	parse_bad("ssh-ed25519 AAAA$$$$");
	parse_bad("ssh-ed25519");
	parse_bad("host ssh-ed25519");
	parse_bad("");
	parse_bad("   \t\r\n");
	parse_bad("host1 unknown-type AAAAC3NzaC1lZDI1NTE5");
	/* A certificate is not a host key to pin. */
	snprintf(line, sizeof(line), "ssh-ed25519-cert-v01@openssh.com %s", ed_b64);
	parse_bad(line);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_import_formats), cmocka_unit_test(test_normalize_identity),
		cmocka_unit_test(test_import_mangled), cmocka_unit_test(test_import_garbage),
		cmocka_unit_test(test_hostkey_parse),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
