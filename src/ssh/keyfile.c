/* Reading private-key containers before libssh sees them: the
 * "openssh-key-v1" container (PROTOCOL.key in OpenSSH) through bounded
 * getters, PKCS#8 through OpenSSL, and naming what is not a private key.
 * See keyfile.h for why; keys.c decides what to do with the answers. */
#include "ssh/keyfile.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC         "openssh-key-v1" /* followed by its NUL */
#define NAME_MAX_LEN  64u
#define SALT_MAX_LEN  64u
#define PUB_MAX_LEN   8192u
#define ED25519_LEN   32u
#define OPENSSH_WRAP  70u
#define CONTAINER_MAX 512u /* an unencrypted ed25519 container */
#define BIN_MAX       16384u

/* A read cursor over bytes that came from the user: every getter fails on
 * short input and leaves the cursor where it was. */
struct rd {
	const uint8_t *p;
	size_t n;
};

static int rd_u32(struct rd *r, uint32_t *v)
{
	if (r->n < 4)
		return -EINVAL;
	*v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 | r->p[3];
	r->p += 4;
	r->n -= 4;
	return 0;
}

static int rd_string(struct rd *r, struct rd *s)
{
	struct rd save = *r;
	uint32_t len;

	if (rd_u32(r, &len) < 0 || len > r->n) {
		*r = save;
		return -EINVAL;
	}
	s->p = r->p;
	s->n = len;
	r->p += len;
	r->n -= len;
	return 0;
}

/* Copies a name for a message: only [A-Za-z0-9@._-], at most size - 1
 * bytes, else "?". */
static void name_copy(const struct rd *s, char *dst, size_t size)
{
	bool ok = s->n > 0 && s->n < size;

	for (size_t i = 0; ok && i < s->n; i++) {
		uint8_t c = s->p[i];

		ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		     c == '@' || c == '.' || c == '_' || c == '-';
	}
	if (!ok) {
		memcpy(dst, "?", 2);
		return;
	}
	memcpy(dst, s->p, s->n);
	dst[s->n] = '\0';
}

bool keyfile_cipher_ok(const char *cipher)
{
	static const char *const ok[] = { "aes128-ctr", "aes192-ctr", "aes256-ctr", "aes128-cbc",
					  "aes192-cbc", "aes256-cbc", "3des-cbc" };

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strcmp(cipher, ok[i]) == 0)
			return true;
	return false;
}

static size_t cipher_block(const char *cipher)
{
	return strncmp(cipher, "aes", 3) == 0 ? 16 : 8;
}

/* The base64 between the armour lines of a normalised text: after the
 * headers' blank line when there are headers, else after the BEGIN line. */
static int body_span(const char *norm, const char **ret_p, size_t *ret_n)
{
	const char *p = strchr(norm, '\n'), *end, *blank;

	if (p == NULL)
		return -EINVAL;
	p++;
	end = strstr(p, "-----END ");
	if (end == NULL)
		return -EINVAL;
	blank = strstr(p, "\n\n");
	if (blank != NULL && blank < end)
		p = blank + 2;
	*ret_p = p;
	*ret_n = (size_t)(end - p);
	return 0;
}

/* Decodes the body into a malloc'd buffer that the caller wipes and frees.
 * -EINVAL when it is not base64, -E2BIG, -ENOMEM. */
static int body_decode(const char *norm, uint8_t **ret, size_t *ret_len)
{
	const char *b64;
	size_t b64_len, cap, n = 0;
	uint8_t *bin;

	if (body_span(norm, &b64, &b64_len) < 0)
		return -EINVAL;
	cap = b64_len / 4 * 3 + 3;
	if (cap > BIN_MAX)
		return -E2BIG;
	bin = malloc(cap);
	if (bin == NULL)
		return -ENOMEM;
	if (sodium_base642bin(bin, cap, b64, b64_len, "\n", &n, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    n == 0) {
		sodium_memzero(bin, cap);
		free(bin);
		return -EINVAL;
	}
	*ret = bin;
	*ret_len = n;
	return 0;
}

static int read_container(struct rd *r, struct keyfile_openssh *k)
{
	struct rd s, opts, pub, priv, type;
	uint32_t nkeys, check1, check2;
	bool none;

	if (r->n < sizeof(MAGIC) || memcmp(r->p, MAGIC, sizeof(MAGIC)) != 0)
		return -EINVAL;
	r->p += sizeof(MAGIC);
	r->n -= sizeof(MAGIC);
	if (rd_string(r, &s) < 0 || s.n > NAME_MAX_LEN)
		return -EINVAL;
	name_copy(&s, k->cipher, sizeof(k->cipher));
	none = strcmp(k->cipher, "none") == 0;
	if (rd_string(r, &s) < 0 || s.n > NAME_MAX_LEN)
		return -EINVAL;
	name_copy(&s, k->kdf, sizeof(k->kdf));
	if (rd_string(r, &opts) < 0)
		return -EINVAL;
	if (none) {
		/* Unencrypted: no KDF, no options. */
		if (strcmp(k->kdf, "none") != 0 || opts.n != 0)
			return -EINVAL;
	} else {
		if (strcmp(k->kdf, "bcrypt") != 0 || rd_string(&opts, &s) < 0 || s.n == 0 ||
		    s.n > SALT_MAX_LEN || rd_u32(&opts, &k->rounds) < 0 || opts.n != 0)
			return -EINVAL;
	}
	if (rd_u32(r, &nkeys) < 0 || nkeys != 1)
		return -EINVAL;
	if (rd_string(r, &pub) < 0 || pub.n > PUB_MAX_LEN)
		return -EINVAL;
	type = pub;
	if (rd_string(&type, &s) < 0 || s.n > NAME_MAX_LEN)
		return -EINVAL;
	name_copy(&s, k->keytype, sizeof(k->keytype));
	k->pub_b64 = malloc(sodium_base64_ENCODED_LEN(pub.n, sodium_base64_VARIANT_ORIGINAL));
	if (k->pub_b64 == NULL)
		return -ENOMEM;
	sodium_bin2base64(k->pub_b64,
			  sodium_base64_ENCODED_LEN(pub.n, sodium_base64_VARIANT_ORIGINAL), pub.p,
			  pub.n, sodium_base64_VARIANT_ORIGINAL);
	if (rd_string(r, &priv) < 0)
		return -EINVAL;
	if (!none && !keyfile_cipher_ok(k->cipher))
		return 0; /* AEAD: a tag follows; refused by name anyway */
	if (r->n != 0 || priv.n < 8 || priv.n % (none ? 8 : cipher_block(k->cipher)) != 0)
		return -EINVAL;
	/* Unencrypted, the check words must agree; encrypted, only the right
	 * passphrase tells. */
	if (none && (rd_u32(&priv, &check1) < 0 || rd_u32(&priv, &check2) < 0 || check1 != check2))
		return -EINVAL;
	return 0;
}

int keyfile_openssh_read(const char *norm, struct keyfile_openssh *ret)
{
	uint8_t *bin = NULL;
	size_t bin_len = 0;
	struct rd r;
	int rc;

	memset(ret, 0, sizeof(*ret));
	rc = body_decode(norm, &bin, &bin_len);
	if (rc < 0)
		return rc == -ENOMEM ? rc : -EINVAL;
	r = (struct rd){ bin, bin_len };
	rc = read_container(&r, ret);
	sodium_memzero(bin, bin_len);
	free(bin);
	return rc;
}

void keyfile_openssh_done(struct keyfile_openssh *k)
{
	free(k->pub_b64);
	k->pub_b64 = NULL;
}

bool keyfile_pem_body_ok(const char *norm, bool encrypted)
{
	uint8_t *bin = NULL;
	size_t n = 0;
	bool ok;

	if (body_decode(norm, &bin, &n) < 0)
		return false;
	ok = !encrypted || n % 8 == 0;
	sodium_memzero(bin, n);
	free(bin);
	return ok;
}

/* OpenSSL asks this for a passphrase: the one given, or a refusal (never a
 * prompt on the terminal). */
static int pass_cb(char *buf, int size, int rwflag, void *u)
{
	size_t n;

	(void)rwflag;
	if (u == NULL || size <= 0)
		return -1;
	n = strlen(u);
	if (n > (size_t)size)
		return -1;
	memcpy(buf, u, n);
	return (int)n;
}

bool keyfile_pem_parses(const char *norm)
{
	BIO *bio = BIO_new_mem_buf(norm, -1);
	EVP_PKEY *pkey;

	if (bio == NULL)
		return false;
	pkey = PEM_read_bio_PrivateKey(bio, NULL, pass_cb, NULL);
	BIO_free(bio);
	EVP_PKEY_free(pkey);
	ERR_clear_error(); /* the thread's queue is not ours to fill */
	return pkey != NULL;
}

/* The work an encrypted PKCS#8 key asks for: PBKDF2 (or PKCS#5 v1 / #12
 * PBE) iterations, or scrypt's N*r*p. 0 when within the caps, -E2BIG with
 * why filled in when over, -EINVAL when the parameters do not parse (as
 * OpenSSL would not decrypt them either). */
static int pkcs8_work(const X509_ALGOR *alg, char *why, size_t why_size)
{
	const ASN1_OBJECT *obj = NULL, *kobj = NULL;
	const void *pval = NULL, *kval = NULL;
	int ptype = 0, ktype = 0, r = -EINVAL;
	PBE2PARAM *pbe2 = NULL;
	PBKDF2PARAM *pbkdf2 = NULL;
	SCRYPT_PARAMS *sp = NULL;
	PBEPARAM *pbe = NULL;
	uint64_t iter = 0, n = 0, rb = 0, p = 0;

	X509_ALGOR_get0(&obj, &ptype, &pval, alg);
	if (ptype != V_ASN1_SEQUENCE || pval == NULL)
		return -EINVAL;
	if (OBJ_obj2nid(obj) != NID_pbes2) {
		/* PKCS#5 v1 and PKCS#12 PBE: salt and iterations. */
		pbe = ASN1_item_unpack(pval, ASN1_ITEM_rptr(PBEPARAM));
		if (pbe == NULL || ASN1_INTEGER_get_uint64(&iter, pbe->iter) != 1)
			goto out;
		goto iterations;
	}
	pbe2 = ASN1_item_unpack(pval, ASN1_ITEM_rptr(PBE2PARAM));
	if (pbe2 == NULL || pbe2->keyfunc == NULL)
		goto out;
	X509_ALGOR_get0(&kobj, &ktype, &kval, pbe2->keyfunc);
	if (ktype != V_ASN1_SEQUENCE || kval == NULL)
		goto out;
	switch (OBJ_obj2nid(kobj)) {
	case NID_id_pbkdf2:
		pbkdf2 = ASN1_item_unpack(kval, ASN1_ITEM_rptr(PBKDF2PARAM));
		if (pbkdf2 == NULL || ASN1_INTEGER_get_uint64(&iter, pbkdf2->iter) != 1)
			goto out;
		goto iterations;
	case NID_id_scrypt:
		sp = ASN1_item_unpack(kval, ASN1_ITEM_rptr(SCRYPT_PARAMS));
		if (sp == NULL || ASN1_INTEGER_get_uint64(&n, sp->costParameter) != 1 ||
		    ASN1_INTEGER_get_uint64(&rb, sp->blockSize) != 1 ||
		    ASN1_INTEGER_get_uint64(&p, sp->parallelizationParameter) != 1)
			goto out;
		/* Each factor is checked before the product can overflow. */
		if (n > KEYFILE_SCRYPT_MAX || rb > KEYFILE_SCRYPT_MAX || p > KEYFILE_SCRYPT_MAX ||
		    n * rb > KEYFILE_SCRYPT_MAX || n * rb * p > KEYFILE_SCRYPT_MAX) {
			snprintf(why, why_size, "scrypt N*r*p = %llu*%llu*%llu, more than the %u",
				 (unsigned long long)n, (unsigned long long)rb,
				 (unsigned long long)p, KEYFILE_SCRYPT_MAX);
			r = -E2BIG;
			goto out;
		}
		r = 0;
		goto out;
	default:
		r = 0; /* OpenSSL knows no other KDF in PBES2: it will refuse */
		goto out;
	}
iterations:
	if (iter > KEYFILE_PBKDF2_MAX) {
		snprintf(why, why_size, "%llu PBKDF2 iterations, more than the %u",
			 (unsigned long long)iter, KEYFILE_PBKDF2_MAX);
		r = -E2BIG;
		goto out;
	}
	r = 0;
out:
	PBEPARAM_free(pbe);
	SCRYPT_PARAMS_free(sp);
	PBKDF2PARAM_free(pbkdf2);
	PBE2PARAM_free(pbe2);
	return r;
}

int keyfile_pkcs8_check(const char *norm, char *why, size_t why_size)
{
	BIO *bio = BIO_new_mem_buf(norm, -1);
	X509_SIG *sig;
	const X509_ALGOR *alg = NULL;
	const ASN1_OCTET_STRING *data = NULL;
	int r = -EINVAL;

	if (bio == NULL)
		return -ENOMEM;
	sig = PEM_read_bio_PKCS8(bio, NULL, pass_cb, NULL);
	if (sig != NULL) {
		X509_SIG_get0(sig, &alg, &data);
		/* Every PKCS#8 cipher is a block cipher in CBC: whole blocks. */
		if (alg != NULL && data != NULL && ASN1_STRING_length(data) > 0 &&
		    ASN1_STRING_length(data) % 8 == 0)
			r = pkcs8_work(alg, why, why_size);
	}
	X509_SIG_free(sig);
	BIO_free(bio);
	ERR_clear_error();
	return r;
}

/* A bounded writer for the container built below. */
struct wr {
	uint8_t *p;
	size_t cap, n;
	bool err;
};

static void wr_u32(struct wr *w, uint32_t v)
{
	if (w->err || w->cap - w->n < 4) {
		w->err = true;
		return;
	}
	w->p[w->n++] = (uint8_t)(v >> 24);
	w->p[w->n++] = (uint8_t)(v >> 16);
	w->p[w->n++] = (uint8_t)(v >> 8);
	w->p[w->n++] = (uint8_t)v;
}

static void wr_raw(struct wr *w, const void *p, size_t n)
{
	if (w->err || w->cap - w->n < n) {
		w->err = true;
		return;
	}
	memcpy(w->p + w->n, p, n);
	w->n += n;
}

static void wr_str(struct wr *w, const void *p, size_t n)
{
	wr_u32(w, (uint32_t)n);
	wr_raw(w, p, n);
}

/* An unencrypted "openssh-key-v1" text for an ed25519 key, as ssh-keygen
 * writes it (comment empty), into a malloc'd string. Every intermediate
 * buffer is wiped. */
static int ed25519_text(const uint8_t seed[ED25519_LEN], const uint8_t pk[ED25519_LEN], char **ret)
{
	static const char begin[] = "-----BEGIN OPENSSH PRIVATE KEY-----\n";
	static const char end[] = "-----END OPENSSH PRIVATE KEY-----\n";
	static const char type[] = "ssh-ed25519";
	uint8_t bin[CONTAINER_MAX], pub[64], priv[256], sk[2 * ED25519_LEN], check[4];
	char b64[sodium_base64_ENCODED_LEN(CONTAINER_MAX, sodium_base64_VARIANT_ORIGINAL)];
	struct wr w = { bin, sizeof(bin), 0, false }, wp = { pub, sizeof(pub), 0, false },
		  wk = { priv, sizeof(priv), 0, false };
	size_t b64_len, out_len, o = 0;
	char *out = NULL;
	int r = -ENOMEM;

	memcpy(sk, seed, ED25519_LEN);
	memcpy(sk + ED25519_LEN, pk, ED25519_LEN);
	randombytes_buf(check, sizeof(check));

	wr_str(&wp, type, strlen(type));
	wr_str(&wp, pk, ED25519_LEN);

	wr_raw(&wk, check, 4);
	wr_raw(&wk, check, 4);
	wr_str(&wk, type, strlen(type));
	wr_str(&wk, pk, ED25519_LEN);
	wr_str(&wk, sk, sizeof(sk));
	wr_str(&wk, "", 0);
	for (uint8_t pad = 1; wk.n % 8 != 0; pad++)
		wr_raw(&wk, &pad, 1);

	wr_raw(&w, MAGIC, sizeof(MAGIC));
	wr_str(&w, "none", 4);
	wr_str(&w, "none", 4);
	wr_str(&w, "", 0);
	wr_u32(&w, 1);
	wr_str(&w, pub, wp.n);
	wr_str(&w, priv, wk.n);
	if (w.err || wp.err || wk.err) {
		r = -EINVAL; /* cannot happen: the sizes are fixed */
		goto out;
	}
	sodium_bin2base64(b64, sizeof(b64), bin, w.n, sodium_base64_VARIANT_ORIGINAL);
	b64_len = strlen(b64);
	out_len = sizeof(begin) + b64_len + b64_len / OPENSSH_WRAP + 1 + sizeof(end);
	out = malloc(out_len);
	if (out == NULL)
		goto out;
	memcpy(out, begin, sizeof(begin) - 1);
	o = sizeof(begin) - 1;
	for (size_t i = 0; i < b64_len; i += OPENSSH_WRAP) {
		size_t n = b64_len - i < OPENSSH_WRAP ? b64_len - i : OPENSSH_WRAP;

		memcpy(out + o, b64 + i, n);
		o += n;
		out[o++] = '\n';
	}
	memcpy(out + o, end, sizeof(end));
	*ret = out;
	r = 0;
out:
	sodium_memzero(bin, sizeof(bin));
	sodium_memzero(priv, sizeof(priv));
	sodium_memzero(sk, sizeof(sk));
	sodium_memzero(b64, sizeof(b64));
	return r;
}

/* An unencrypted PKCS#8 PEM text of pkey. OpenSSL's memory BIO wipes its
 * buffer as it grows and when freed (BUF_MEM_grow_clean, clear_free). */
static int pkcs8_text(EVP_PKEY *pkey, char **ret)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data = NULL, *out = NULL;
	long n;
	int r = -ENOMEM;

	if (bio == NULL)
		return -ENOMEM;
	if (PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) != 1)
		goto out;
	n = BIO_get_mem_data(bio, &data);
	if (n <= 0 || data == NULL)
		goto out;
	out = malloc((size_t)n + 1);
	if (out == NULL)
		goto out;
	memcpy(out, data, (size_t)n);
	out[n] = '\0';
	*ret = out;
	r = 0;
out:
	BIO_free(bio);
	return r;
}

int keyfile_pkcs8_convert(const char *norm, const char *pass, char **ret_text,
			  enum keyfile_pkcs8_result *ret_result)
{
	bool encrypted = strncmp(norm, "-----BEGIN ENCRYPTED PRIVATE KEY-----", 37) == 0;
	BIO *bio = BIO_new_mem_buf(norm, -1);
	EVP_PKEY *pkey = NULL;
	uint8_t seed[ED25519_LEN], pk[ED25519_LEN];
	size_t seed_len = sizeof(seed), pk_len = sizeof(pk);
	int r = -ENOMEM;

	if (bio == NULL)
		return -ENOMEM;
	pkey = PEM_read_bio_PrivateKey(bio, NULL, pass_cb, (void *)pass);
	r = 0;
	if (pkey == NULL) {
		*ret_result = encrypted ? KEYFILE_P8_BAD_PASS : KEYFILE_P8_DAMAGED;
		goto out;
	}
	switch (EVP_PKEY_get_base_id(pkey)) {
	case EVP_PKEY_ED25519:
		if (EVP_PKEY_get_raw_private_key(pkey, seed, &seed_len) != 1 ||
		    EVP_PKEY_get_raw_public_key(pkey, pk, &pk_len) != 1 ||
		    seed_len != ED25519_LEN || pk_len != ED25519_LEN) {
			*ret_result = KEYFILE_P8_DAMAGED;
			goto out;
		}
		r = ed25519_text(seed, pk, ret_text);
		break;
	case EVP_PKEY_RSA:
	case EVP_PKEY_EC:
		r = pkcs8_text(pkey, ret_text);
		break;
	case EVP_PKEY_DSA:
		*ret_result = KEYFILE_P8_DSA;
		goto out;
	default:
		*ret_result = KEYFILE_P8_UNSUPPORTED;
		goto out;
	}
	if (r == 0)
		*ret_result = KEYFILE_P8_OK;
out:
	sodium_memzero(seed, sizeof(seed));
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	ERR_clear_error();
	return r;
}

static const char *find_in(const char *text, size_t len, const char *needle)
{
	size_t n = strlen(needle);

	return len >= n ? memmem(text, len, needle, n) : NULL;
}

/* Whether the text holds "TYPE AAAA" for an SSH public key type: a line of
 * a .pub file or of authorized_keys. */
static bool has_ssh_public_line(const char *text, size_t len)
{
	static const char *const types[] = { "ssh-ed25519 AAAA",
					     "ssh-rsa AAAA",
					     "ssh-dss AAAA",
					     "ecdsa-sha2-nistp",
					     "sk-ssh-ed25519@openssh.com AAAA",
					     "sk-ecdsa-sha2-nistp256@openssh.com AAAA",
					     "-cert-v01@openssh.com AAAA" };

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (find_in(text, len, types[i]) != NULL)
			return true;
	return false;
}

const char *keyfile_identify(const char *text, size_t len)
{
	if (find_in(text, len, "PuTTY-User-Key-File-") != NULL)
		return KEYFILE_REASON_PPK;
	if (find_in(text, len, "PRIVATE KEY-----") == NULL &&
	    (find_in(text, len, "PUBLIC KEY-----") != NULL ||
	     find_in(text, len, "---- BEGIN SSH2 PUBLIC KEY ----") != NULL ||
	     has_ssh_public_line(text, len)))
		return KEYFILE_REASON_PUBLIC;
	if (find_in(text, len, "-----BEGIN DSA PRIVATE KEY-----") != NULL)
		return KEYFILE_REASON_DSA;
	return NULL;
}
