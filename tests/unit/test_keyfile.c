/* Tests for what src/ssh/keyfile.c decides before libssh sees a key, through
 * sshc_key_import(): every cipher OpenSSH writes, the KDF work caps, damaged
 * containers, PKCS#8 through OpenSSL, and keys that are not usable private
 * keys named as what they are. Keys are made at test time by ssh-keygen and
 * openssl in a temporary directory. */
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
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SSH_KEYGEN KT_SSH_KEYGEN
#define OPENSSL    "/usr/bin/openssl"
#define SSH        "/usr/bin/ssh"
#define PASS       "correct horse battery"

#define R_NEED_PASS "the key is passphrase-protected: a passphrase is required"
#define R_BAD_PASS  "the passphrase does not fit the key"
#define R_NOT_KEY   "not a private key in a supported format"
#define R_DAMAGED \
	"the key is damaged (truncated or altered): paste or pick the whole key file again"

/* The keys the tests below start from: plain OpenSSH keys of each type
 * (and their .pub files), encrypted PEM and PKCS#8 RSA, plain PEM RSA. */
static int group_setup(void **state)
{
	if (kt_setup("keyfile") < 0)
		return -1;
	kt_keygen("ed25519", "ed25519", NULL, NULL, NULL);
	kt_keygen("ecdsa", "ecdsa", "256", NULL, NULL);
	kt_keygen("rsa", "rsa", "2048", NULL, NULL);
	kt_keygen("rsa_pem", "rsa", "2048", "PEM", NULL);
	kt_keygen("rsa_pem_enc", "rsa", "2048", "PEM", PASS);
	kt_keygen("rsa_pkcs8_enc", "rsa", "2048", "PKCS8", PASS);
	return 0;
}

static int group_teardown(void **state)
{
	return kt_teardown();
}

/* ssh-keygen -q -t TYPE -a ROUNDS -Z CIPHER -N PASS -C test -f DIR/NAME */
static void keygen_enc(const char *name, const char *type, const char *cipher, const char *rounds,
		       const char *pass)
{
	char *argv[] = { SSH_KEYGEN,     "-q",   "-t",           (char *)type,  "-a",
			 (char *)rounds, "-Z",   (char *)cipher, "-N",          (char *)pass,
			 "-C",           "test", "-f",           kt_path(name), NULL };

	assert_int_equal(kt_run(argv, NULL), 0);
}

static void import_bad_has(const char *text, size_t len, const char *pass, const char *want1,
			   const char *want2)
{
	ssh_key key = NULL;
	const char *reason = NULL;

	assert_int_equal(sshc_key_import(text, len, pass, &key, &reason), -BERR_BADKEY);
	assert_null(key);
	assert_non_null(reason);
	if (strstr(reason, want1) == NULL || (want2 != NULL && strstr(reason, want2) == NULL))
		fail_msg("reason \"%s\" lacks \"%s\" / \"%s\"", reason, want1, want2 ? want2 : "");
}

/* Every cipher this OpenSSH lists: those libssh decrypts correctly import
 * (and a wrong passphrase reads as one); the others, which crash libssh
 * 0.10, are refused by name with the command that re-encrypts, whatever
 * the passphrase. */
static void test_openssh_ciphers(void **state)
{
	char *argv[] = { SSH, "-Q", "cipher", NULL };
	char *list, *line, *next, name[96];
	size_t n_ok = 0, n_refused = 0;

	assert_int_equal(kt_run(argv, kt_path("ciphers")), 0);
	list = kt_read_file(kt_path("ciphers"), NULL);
	for (line = list; *line != '\0'; line = next) {
		static const char *const types[] = { "ed25519", "ecdsa" };
		static const enum ssh_keytypes_e kts[] = { SSH_KEYTYPE_ED25519,
							   SSH_KEYTYPE_ECDSA_P256 };

		next = strchr(line, '\n');
		assert_non_null(next);
		*next++ = '\0';
		for (size_t t = 0; t < 2; t++) {
			size_t len;
			char *text;

			snprintf(name, sizeof(name), "z_%s_%s", types[t], line);
			keygen_enc(name, types[t], line, "1", PASS);
			text = kt_read_file(kt_path(name), &len);
			if (keyfile_cipher_ok(line)) {
				kt_import_ok(text, len, PASS, kts[t]);
				kt_import_bad(text, len, "wrong passphrase", R_BAD_PASS);
				kt_import_bad(text, len, NULL, R_NEED_PASS);
				n_ok++;
			} else {
				import_bad_has(text, len, PASS, line,
					       "`ssh-keygen -p -Z aes256-ctr -f KEYFILE`");
				import_bad_has(text, len, "wrong passphrase", line, NULL);
				import_bad_has(text, len, NULL, line, NULL);
				n_refused++;
			}
			free(text);
		}
	}
	/* aes{128,192,256}-{ctr,cbc} and 3des-cbc work; the two GCM
	 * ciphers and chacha20-poly1305 do not. */
	assert_int_equal(n_ok, 2 * 7);
	assert_int_equal(n_refused, 2 * 3);
	free(list);
}

/* The binary container of an OpenSSH key text, and back. */
static uint8_t *unwrap(const char *text, size_t *ret_len)
{
	const char *b = strchr(text, '\n') + 1, *e = strstr(text, "-----END");
	uint8_t *bin = malloc(16384);
	size_t n = 0;

	assert_non_null(bin);
	assert_int_equal(sodium_base642bin(bin, 16384, b, (size_t)(e - b), "\n", &n, NULL,
					   sodium_base64_VARIANT_ORIGINAL),
			 0);
	*ret_len = n;
	return bin;
}

static char *wrap_as(const uint8_t *bin, size_t n, const char *label)
{
	size_t b64_size = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
	char *b64 = malloc(b64_size), *out = malloc(b64_size + 128);

	assert_non_null(b64);
	assert_non_null(out);
	sodium_bin2base64(b64, b64_size, bin, n, sodium_base64_VARIANT_ORIGINAL);
	snprintf(out, b64_size + 128, "-----BEGIN %s-----\n%s\n-----END %s-----\n", label, b64,
		 label);
	free(b64);
	return out;
}

static char *wrap(const uint8_t *bin, size_t n)
{
	return wrap_as(bin, n, "OPENSSH PRIVATE KEY");
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Offsets of the fields of a container (PROTOCOL.key). */
struct layout {
	size_t rounds, nkeys, pub, pub_len, priv, priv_len;
};

static struct layout layout_of(const uint8_t *bin, size_t n)
{
	struct layout l = { 0 };
	size_t o = 15;
	uint32_t opts;

	o += 4 + get32(bin + o); /* cipher */
	o += 4 + get32(bin + o); /* kdf */
	opts = get32(bin + o);
	if (opts > 0)
		l.rounds = o + 4 + 4 + get32(bin + o + 4);
	o += 4 + opts;
	l.nkeys = o;
	o += 4;
	l.pub_len = get32(bin + o);
	l.pub = o + 4;
	o = l.pub + l.pub_len;
	l.priv_len = get32(bin + o);
	l.priv = o + 4;
	assert_true(l.priv + l.priv_len <= n);
	return l;
}

static char *with_rounds(const char *text, uint32_t rounds)
{
	size_t n;
	uint8_t *bin = unwrap(text, &n);
	struct layout l = layout_of(bin, n);
	char *out;

	assert_true(l.rounds > 0);
	put32(bin + l.rounds, rounds);
	out = wrap(bin, n);
	free(bin);
	return out;
}

/* Keys up to KEYFILE_ROUNDS_MAX bcrypt rounds import; above it they are
 * refused before any decryption (so at once), naming the rounds, the cap
 * and how to re-encrypt, with or without a passphrase. */
static void test_rounds(void **state)
{
	char rounds[16], want[64], *text;
	static const uint32_t over[] = { KEYFILE_ROUNDS_MAX + 1, 1000, 100000, UINT32_MAX };
	size_t len;

	snprintf(rounds, sizeof(rounds), "%u", KEYFILE_ROUNDS_MAX);
	keygen_enc("r_cap", "ed25519", "aes256-ctr", rounds, PASS);
	text = kt_read_file(kt_path("r_cap"), &len);
	kt_import_ok(text, len, PASS, SSH_KEYTYPE_ED25519);
	for (size_t i = 0; i < sizeof(over) / sizeof(over[0]); i++) {
		char *big = with_rounds(text, over[i]);

		snprintf(want, sizeof(want), "%u bcrypt rounds, more than the %u", over[i],
			 KEYFILE_ROUNDS_MAX);
		import_bad_has(big, strlen(big), PASS, want, "`ssh-keygen -p -a 100 -f KEYFILE`");
		import_bad_has(big, strlen(big), NULL, want, NULL);
		free(big);
	}
	free(text);
}

/* A damaged key reads as damaged, never as a wrong passphrase: truncated
 * anywhere, a line lost, a character altered, the container's fields
 * inconsistent, its public key not the private key's. */
static void test_damaged(void **state)
{
	size_t len, n;
	char *text, *body, *cut, *bad;
	uint8_t *bin;
	struct layout l;

	keygen_enc("d_enc", "ed25519", "aes256-ctr", "1", PASS);
	text = kt_read_file(kt_path("d_enc"), &len);
	kt_import_ok(text, len, PASS, SSH_KEYTYPE_ED25519);

	/* Truncated at every twentieth of the body. */
	body = strchr(text, '\n') + 1;
	cut = malloc(len + 64);
	assert_non_null(cut);
	for (size_t k = 1; k < 20; k++) {
		size_t keep = (size_t)(body - text) + (strstr(text, "-----END") - body) * k / 20;

		memcpy(cut, text, keep);
		snprintf(cut + keep, 64, "\n-----END OPENSSH PRIVATE KEY-----\n");
		kt_import_bad(cut, strlen(cut), PASS, R_DAMAGED);
	}
	/* The second base64 line lost. */
	{
		const char *l2 = strchr(body, '\n') + 1, *l3 = strchr(l2, '\n') + 1;

		memcpy(cut, text, (size_t)(l2 - text));
		memcpy(cut + (l2 - text), l3, len - (size_t)(l3 - text) + 1);
		kt_import_bad(cut, strlen(cut), PASS, R_DAMAGED);
	}
	/* A character that is not base64. */
	memcpy(cut, text, len + 1);
	cut[(body - text) + 30] = '*';
	kt_import_bad(cut, strlen(cut), PASS, R_DAMAGED);
	free(cut);

	/* Inconsistent fields. */
	bin = unwrap(text, &n);
	l = layout_of(bin, n);
	{
		uint8_t *b = malloc(n + 16);

		assert_non_null(b);
		/* two keys */
		memcpy(b, bin, n);
		put32(b + l.nkeys, 2);
		bad = wrap(b, n);
		kt_import_bad(bad, strlen(bad), PASS, R_DAMAGED);
		free(bad);
		/* private section longer than what follows */
		memcpy(b, bin, n);
		put32(b + l.priv - 4, (uint32_t)l.priv_len + 16);
		bad = wrap(b, n);
		kt_import_bad(bad, strlen(bad), PASS, R_DAMAGED);
		free(bad);
		/* not a whole number of cipher blocks */
		memcpy(b, bin, n);
		put32(b + l.priv - 4, (uint32_t)l.priv_len - 8);
		bad = wrap(b, n - 8);
		kt_import_bad(bad, strlen(bad), PASS, R_DAMAGED);
		free(bad);
		/* bytes after the private section */
		memcpy(b, bin, n);
		memset(b + n, 0, 16);
		bad = wrap(b, n + 16);
		kt_import_bad(bad, strlen(bad), PASS, R_DAMAGED);
		free(bad);
		/* another magic */
		memcpy(b, bin, n);
		b[3] ^= 1;
		bad = wrap(b, n);
		kt_import_bad(bad, strlen(bad), PASS, R_DAMAGED);
		free(bad);
		/* the public key altered: the right passphrase decrypts, but
		 * the key is not the one the file says */
		memcpy(b, bin, n);
		b[l.pub + l.pub_len - 1] ^= 1;
		bad = wrap(b, n);
		kt_import_bad(bad, strlen(bad), PASS, R_DAMAGED);
		free(bad);
		free(b);
	}
	free(bin);
	free(text);

	/* Unencrypted: the check words and the public key. */
	text = kt_read_file(kt_path("ed25519"), &len);
	bin = unwrap(text, &n);
	l = layout_of(bin, n);
	bin[l.priv] ^= 1;
	bad = wrap(bin, n);
	kt_import_bad(bad, strlen(bad), NULL, R_DAMAGED);
	free(bad);
	bin[l.priv] ^= 1;
	bin[l.pub + l.pub_len - 1] ^= 1;
	bad = wrap(bin, n);
	kt_import_bad(bad, strlen(bad), NULL, R_DAMAGED);
	free(bad);
	free(bin);
	free(text);

	/* PEM and encrypted PKCS#8, cut mid-line. */
	{
		static const char *const names[] = { "rsa_pem_enc", "rsa_pkcs8_enc", "rsa_pem" };

		for (size_t i = 0; i < 3; i++) {
			char *end;

			text = kt_read_file(kt_path(names[i]), &len);
			end = strstr(text, "-----END");
			bad = malloc(len + 1);
			assert_non_null(bad);
			memcpy(bad, text, (size_t)(end - text) - 6);
			memcpy(bad + (end - text) - 6, "\n", 1);
			memcpy(bad + (end - text) - 5, end, strlen(end) + 1);
			kt_import_bad(bad, strlen(bad), strcmp(names[i], "rsa_pem") ? PASS : NULL,
				      R_DAMAGED);
			free(bad);
			free(text);
		}
	}
}

/* openssl ARGS... (a NULL-terminated list) */
static void openssl(const char *a1, ...)
{
	char *argv[24];
	size_t n = 0;
	va_list ap;

	argv[n++] = OPENSSL;
	argv[n++] = (char *)a1;
	va_start(ap, a1);
	while (n < 23 && (argv[n] = va_arg(ap, char *)) != NULL)
		n++;
	va_end(ap);
	argv[n] = NULL;
	assert_int_equal(kt_run(argv, NULL), 0);
}

/* PKCS#8 as OpenSSL writes it, plain and encrypted: ed25519 (which libssh
 * 0.10 alone reads without its public half), ECDSA, RSA; DSA and ed448
 * named. */
static void test_pkcs8(void **state)
{
	static const char *const pass_arg = "pass:" PASS;
	uint8_t der[256];
	char want[128], *got = NULL, *text;
	size_t len;
	FILE *f;
	size_t n;
	ssh_key key = NULL, pub = NULL;
	const char *reason = NULL;

	openssl("genpkey", "-algorithm", "ed25519", "-out", kt_path("p8_ed"), NULL);
	openssl("pkcs8", "-topk8", "-in", kt_path("p8_ed"), "-out", kt_path("p8_ed_enc"), "-v2",
		"aes-256-cbc", "-passout", pass_arg, NULL);
	openssl("pkey", "-in", kt_path("p8_ed"), "-pubout", "-outform", "DER", "-out",
		kt_path("p8_ed.der"), NULL);
	openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out",
		kt_path("p8_ec"), NULL);
	openssl("pkcs8", "-topk8", "-in", kt_path("p8_ec"), "-out", kt_path("p8_ec_enc"), "-v2",
		"aes-128-cbc", "-passout", pass_arg, NULL);
	openssl("genpkey", "-algorithm", "ed448", "-out", kt_path("p8_ed448"), NULL);
	openssl("genpkey", "-genparam", "-algorithm", "DSA", "-pkeyopt", "dsa_paramgen_bits:1024",
		"-out", kt_path("dsaparam"), NULL);
	openssl("genpkey", "-paramfile", kt_path("dsaparam"), "-out", kt_path("p8_dsa"), NULL);

	/* The ed25519 key carries the public key OpenSSL derives. */
	f = fopen(kt_path("p8_ed.der"), "rbe");
	assert_non_null(f);
	n = fread(der, 1, sizeof(der), f);
	fclose(f);
	assert_true(n > 32);
	{
		uint8_t blob[51] = { 0,   0,   0,   11,  's', 's', 'h', '-', 'e', 'd',
				     '2', '5', '5', '1', '9', 0,   0,   0,   32 };

		memcpy(blob + 19, der + n - 32, 32);
		sodium_bin2base64(want, sizeof(want), blob, sizeof(blob),
				  sodium_base64_VARIANT_ORIGINAL);
	}
	for (int enc = 0; enc < 2; enc++) {
		text = kt_read_file(kt_path(enc ? "p8_ed_enc" : "p8_ed"), &len);
		assert_int_equal(sshc_key_import(text, len, enc ? PASS : NULL, &key, &reason), 0);
		assert_int_equal(ssh_key_type(key), SSH_KEYTYPE_ED25519);
		assert_true(ssh_key_is_private(key));
		assert_int_equal(ssh_pki_export_privkey_to_pubkey(key, &pub), SSH_OK);
		assert_int_equal(ssh_pki_export_pubkey_base64(pub, &got), SSH_OK);
		assert_string_equal(got, want);
		ssh_string_free_char(got);
		ssh_key_free(pub);
		ssh_key_free(key);
		key = pub = NULL;
		if (enc) {
			kt_import_bad(text, len, "wrong passphrase", R_BAD_PASS);
			kt_import_bad(text, len, NULL, R_NEED_PASS);
		}
		free(text);
	}
	text = kt_read_file(kt_path("p8_ec"), &len);
	kt_import_ok(text, len, NULL, SSH_KEYTYPE_ECDSA_P384);
	free(text);
	text = kt_read_file(kt_path("p8_ec_enc"), &len);
	kt_import_ok(text, len, PASS, SSH_KEYTYPE_ECDSA_P384);
	kt_import_bad(text, len, "wrong passphrase", R_BAD_PASS);
	free(text);
	/* The KDF work an encrypted PKCS#8 key asks for is capped: refused
	 * before decryption, naming the work, the cap and the fix. */
	{
		static const uint8_t n_r[] = { 0x02, 0x02, 0x40, 0x00, 0x02, 0x01, 0x08 };
		char it_over[16], want_work[96];
		uint8_t *bin, *at;

		snprintf(it_over, sizeof(it_over), "%u", KEYFILE_PBKDF2_MAX + 1);
		openssl("pkcs8", "-topk8", "-in", kt_path("p8_ec"), "-out", kt_path("p8_iter"),
			"-v2", "aes-256-cbc", "-iter", it_over, "-passout", pass_arg, NULL);
		openssl("pkcs8", "-topk8", "-in", kt_path("p8_ec"), "-out", kt_path("p8_v1"), "-v1",
			"PBE-SHA1-3DES", "-iter", it_over, "-passout", pass_arg, NULL);
		openssl("pkcs8", "-topk8", "-in", kt_path("p8_ec"), "-out", kt_path("p8_scrypt"),
			"-scrypt", "-passout", pass_arg, NULL);
		snprintf(want_work, sizeof(want_work), "%u PBKDF2 iterations, more than the %u",
			 KEYFILE_PBKDF2_MAX + 1, KEYFILE_PBKDF2_MAX);
		for (int v = 0; v < 2; v++) {
			text = kt_read_file(kt_path(v ? "p8_v1" : "p8_iter"), &len);
			import_bad_has(text, len, PASS, want_work,
				       "openssl pkcs8 -topk8 -v2 aes-256-cbc");
			import_bad_has(text, len, NULL, want_work, NULL);
			free(text);
		}
		text = kt_read_file(kt_path("p8_scrypt"), &len);
		kt_import_ok(text, len, PASS, SSH_KEYTYPE_ECDSA_P384);
		/* OpenSSL will not write more than its default memory bound:
		 * raise r from 8 to 127 in the parameters (N = 16384). */
		bin = unwrap(text, &len);
		at = memmem(bin, len, n_r, sizeof(n_r));
		assert_non_null(at);
		at[sizeof(n_r) - 1] = 0x7f;
		free(text);
		text = wrap_as(bin, len, "ENCRYPTED PRIVATE KEY");
		import_bad_has(text, strlen(text), PASS,
			       "scrypt N*r*p = 16384*127*1, more than the", NULL);
		free(text);
		free(bin);
	}
	text = kt_read_file(kt_path("p8_ed448"), &len);
	kt_import_bad(text, len, NULL, R_NOT_KEY);
	free(text);
	text = kt_read_file(kt_path("p8_dsa"), &len);
	kt_import_bad(text, len, NULL, KEYFILE_REASON_DSA);
	free(text);
}

/* What is not a usable private key is named: PuTTY keys, public keys in
 * every form ssh-keygen and OpenSSL write, DSA keys; the rest keeps the
 * generic sentence. */
static void test_identify(void **state)
{
	static const char ppk2[] = "PuTTY-User-Key-File-2: ssh-ed25519\r\nEncryption: none\r\n"
				   "Comment: x\r\nPublic-Lines: 2\r\nAAAAC3NzaC1lZDI1NTE5AAAAIH\r\n"
				   "Private-Lines: 1\r\nAAAAIB\r\nPrivate-MAC: 00\r\n";
	static const char ppk3[] = "PuTTY-User-Key-File-3: ssh-rsa\nEncryption: aes256-cbc\n"
				   "Key-Derivation: Argon2id\nPublic-Lines: 1\nAAAAB3Nza\n";
	static const char ossh_pub[] = "-----BEGIN OPENSSH PUBLIC KEY-----\nAAAAC3NzaC1lZDI1NTE5\n"
				       "-----END OPENSSH PUBLIC KEY-----\n";
	static const char cert[] = "-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n";
	char *argv_rfc[] = { SSH_KEYGEN, "-e", "-f", kt_path("ed25519.pub"), NULL };
	char *argv_pem[] = { SSH_KEYGEN, "-e", "-m", "PEM", "-f", kt_path("rsa.pub"), NULL };
	static const char *const pubs[] = { "ed25519.pub", "ecdsa.pub", "rsa.pub", "i_rfc",
					    "i_pem" };
	char line[4096], *text;
	size_t len;

	kt_import_bad(ppk2, strlen(ppk2), NULL, KEYFILE_REASON_PPK);
	kt_import_bad(ppk3, strlen(ppk3), PASS, KEYFILE_REASON_PPK);
	assert_non_null(strstr(KEYFILE_REASON_PPK, "puttygen KEY.ppk -O private-openssh -o KEY"));

	assert_int_equal(kt_run(argv_rfc, kt_path("i_rfc")), 0);
	assert_int_equal(kt_run(argv_pem, kt_path("i_pem")), 0);
	for (size_t i = 0; i < sizeof(pubs) / sizeof(pubs[0]); i++) {
		text = kt_read_file(kt_path(pubs[i]), &len);
		kt_import_bad(text, len, NULL, KEYFILE_REASON_PUBLIC);
		kt_import_bad(text, len, PASS, KEYFILE_REASON_PUBLIC);
		/* as an authorized_keys line with options */
		snprintf(line, sizeof(line), "from=\"10.0.0.0/8\",no-pty %s", text);
		kt_import_bad(line, strlen(line), NULL, KEYFILE_REASON_PUBLIC);
		free(text);
	}
	kt_import_bad(ossh_pub, strlen(ossh_pub), NULL, KEYFILE_REASON_PUBLIC);

	kt_keygen("dsa_openssh", "dsa", NULL, NULL, NULL);
	kt_keygen("dsa_pem", "dsa", NULL, "PEM", NULL);
	keygen_enc("dsa_enc", "dsa", "aes256-ctr", "1", PASS);
	text = kt_read_file(kt_path("dsa_openssh"), &len);
	kt_import_bad(text, len, NULL, KEYFILE_REASON_DSA);
	free(text);
	text = kt_read_file(kt_path("dsa_pem"), &len);
	assert_non_null(strstr(text, "-----BEGIN DSA PRIVATE KEY-----"));
	kt_import_bad(text, len, NULL, KEYFILE_REASON_DSA);
	free(text);
	text = kt_read_file(kt_path("dsa_enc"), &len);
	kt_import_bad(text, len, PASS, KEYFILE_REASON_DSA);
	free(text);

	kt_import_bad(cert, strlen(cert), NULL, R_NOT_KEY);
	kt_import_bad("ssh-ed25519", 11, NULL, R_NOT_KEY);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_openssh_ciphers), cmocka_unit_test(test_rounds),
		cmocka_unit_test(test_damaged),         cmocka_unit_test(test_pkcs8),
		cmocka_unit_test(test_identify),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
