/* server/tls.c: the self-signed pair made on a first start. The key is
 * written 0600 and the certificate 0644 whatever the umask, each whole
 * (atomically: no temporary file is left beside them), and a second start
 * uses the pair it finds instead of making another. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <openssl/ssl.h>

#include "server/srv.h"
#include "testutil.h"

static size_t count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static void read_all(const char *path, char *out, size_t size)
{
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(out, 1, size - 1, f);
	out[n] = '\0';
	fclose(f);
}

static void generated_pair_modes(void **state)
{
	static const mode_t masks[] = { 022, 077, 0 };
	(void)state;

	for (size_t i = 0; i < sizeof(masks) / sizeof(masks[0]); i++) {
		char dir[64], cert[128], key[128], first[8192], again[8192];
		struct srv_config cfg = { 0 };
		SSL_CTX *ctx = NULL;
		struct stat st;
		mode_t old;

		assert_non_null(tu_tmpdir(dir, sizeof(dir), "tls"));
		snprintf(cert, sizeof(cert), "%s/tls-cert.pem", dir);
		snprintf(key, sizeof(key), "%s/tls-key.pem", dir);
		cfg.data_dir = dir;
		old = umask(masks[i]);
		assert_int_equal(srv_tls_ctx(&cfg, &ctx), 0);
		umask(old);
		SSL_CTX_free(ctx);
		assert_int_equal(stat(key, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
		assert_int_equal(stat(cert, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0644);
		assert_int_equal(count_entries(dir), 2);
		read_all(key, first, sizeof(first));
		assert_non_null(strstr(first, "-----BEGIN PRIVATE KEY-----"));
		read_all(cert, first, sizeof(first));
		assert_non_null(strstr(first, "-----BEGIN CERTIFICATE-----"));

		/* A second start keeps the pair. */
		ctx = NULL;
		assert_int_equal(srv_tls_ctx(&cfg, &ctx), 0);
		SSL_CTX_free(ctx);
		read_all(cert, again, sizeof(again));
		assert_string_equal(first, again);
		tu_rm_tree(dir);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(generated_pair_modes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
