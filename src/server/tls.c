/* TLS context and the self-signed pair generated on first run. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/buf.h"
#include "core/file.h"
#include "core/log.h"
#include "core/metrics.h"
#include "server/srv.h"

static void log_ssl_errors(const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	ERR_error_string_n(e, buf, sizeof(buf));
	log_error("tls: %s: %s", what, e ? buf : "unknown error");
	ERR_clear_error();
}

static int add_ext(X509 *cert, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ex;

	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
	ex = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (!ex)
		return -EINVAL;
	X509_add_ext(cert, ex, -1);
	X509_EXTENSION_free(ex);
	return 0;
}

/* Writes key (or cert) to path as PEM with exactly mode, atomically (a
 * crash leaves no half-written key). The key's PEM text passes only
 * through memory that is wiped when freed. */
static int write_pem(const char *path, mode_t mode, EVP_PKEY *key, X509 *cert)
{
	BIO *mem = BIO_new(key ? BIO_s_secmem() : BIO_s_mem());
	struct buf text;
	char *p;
	long n;
	int r = -EIO;

	buf_init_secret(&text, 64 * 1024);
	if (!mem)
		goto out;
	if (!(key ? PEM_write_bio_PrivateKey(mem, key, NULL, NULL, 0, NULL, NULL)
		  : PEM_write_bio_X509(mem, cert)))
		goto out;
	n = BIO_get_mem_data(mem, &p);
	if (n <= 0 || (r = buf_append(&text, p, (size_t)n)) < 0)
		goto out;
	r = file_write_atomic(path, buf_str(&text), buf_len(&text), mode, 0);
out:
	BIO_free(mem);
	buf_free(&text);
	return r;
}

/* An ECDSA P-256 certificate for localhost and the machine's name, valid for
 * 825 days (the longest browsers accept). Good for a first start; operators
 * bring their own with --cert/--key. */
static int generate_pair(const char *cert_path, const char *key_path)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *cert = X509_new();
	X509_NAME *name;
	char host[256] = "localhost", san[400];
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	int r = -EIO;

	if (!key || !cert)
		goto out;
	gethostname(host, sizeof(host) - 1);
	X509_set_version(cert, 2);
	RAND_bytes(serial, sizeof(serial));
	serial[0] &= 0x7f;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
	X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
	X509_gmtime_adj(X509_getm_notAfter(cert), 825L * 24 * 3600);
	X509_set_pubkey(cert, key);
	name = X509_get_subject_name(cert);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"bastion", -1,
				   -1, 0);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
				   (const unsigned char *)"bastion self-signed", -1, -1, 0);
	X509_set_issuer_name(cert, name);
	snprintf(san, sizeof(san), "DNS:localhost,DNS:%s,IP:127.0.0.1,IP:::1", host);
	if (add_ext(cert, NID_subject_alt_name, san) < 0 ||
	    add_ext(cert, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    add_ext(cert, NID_ext_key_usage, "serverAuth") < 0)
		goto out;
	if (!X509_sign(cert, key, EVP_sha256()))
		goto out;
	if ((r = write_pem(key_path, 0600, key, NULL)) < 0 ||
	    (r = write_pem(cert_path, 0644, NULL, cert)) < 0)
		goto out;
	log_info("tls: generated a self-signed certificate in %s", cert_path);
	r = 0;
out:
	if (r < 0)
		log_ssl_errors("cannot generate the self-signed certificate");
	BN_free(bn);
	X509_free(cert);
	EVP_PKEY_free(key);
	return r;
}

/* bastion_tls_cert_expiry_timestamp_seconds: the notAfter of the
 * certificate just loaded (at start and at every SIGHUP). */
static void cert_expiry_metric(SSL_CTX *ctx)
{
	X509 *cert = SSL_CTX_get0_certificate(ctx);
	const ASN1_TIME *na = cert ? X509_get0_notAfter(cert) : NULL;
	struct tm tm;

	if (na && ASN1_TIME_to_tm(na, &tm) == 1)
		metrics_tls_cert_expiry((int64_t)timegm(&tm));
}

int srv_tls_ctx(const struct srv_config *cfg, SSL_CTX **ret)
{
	char cert_path[PATH_MAX], key_path[PATH_MAX];
	SSL_CTX *ctx;
	int r;

	if (cfg->cert_file && cfg->key_file) {
		snprintf(cert_path, sizeof(cert_path), "%s", cfg->cert_file);
		snprintf(key_path, sizeof(key_path), "%s", cfg->key_file);
	} else {
		snprintf(cert_path, sizeof(cert_path), "%s/tls-cert.pem", cfg->data_dir);
		snprintf(key_path, sizeof(key_path), "%s/tls-key.pem", cfg->data_dir);
		if (access(cert_path, R_OK) != 0 || access(key_path, R_OK) != 0) {
			if ((r = generate_pair(cert_path, key_path)) < 0)
				return r;
		}
	}
	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx)
		return -ENOMEM;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* TLS 1.2: forward-secret AEAD suites only. TLS 1.3 suites are all AEAD. */
	SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20");
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
					 SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* Idle connections give their read and write buffers back. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key_path, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		log_ssl_errors("cannot load the certificate or key");
		SSL_CTX_free(ctx);
		return -EINVAL;
	}
	cert_expiry_metric(ctx);
	*ret = ctx;
	return 0;
}
