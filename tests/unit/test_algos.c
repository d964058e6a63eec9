/* Tests for the legacy algorithm allowlist (src/ssh/algos.c): every name a
 * VM may allow is one this libssh accepts, and nothing else is on it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ssh/sshc.h"

#include <errno.h>
#include <string.h>

static void test_every_name_is_accepted_by_libssh(void **state)
{
	static const enum ssh_options_e opts[] = {
		SSH_OPTIONS_KEY_EXCHANGE,
		SSH_OPTIONS_HOSTKEYS,
		SSH_OPTIONS_CIPHERS_C_S,
		SSH_OPTIONS_HMAC_C_S,
	};
	int n = 0;

	(void)state;
	for (int i = 0; sshc_legacy_algo_name(i) != NULL; i++, n++) {
		const char *name = sshc_legacy_algo_name(i);
		bool ok = false;

		assert_int_equal(sshc_legacy_algo(name), i);
		for (size_t k = 0; k < sizeof(opts) / sizeof(opts[0]) && !ok; k++) {
			ssh_session s = ssh_new();

			assert_non_null(s);
			ok = ssh_options_set(s, opts[k], name) == 0;
			ssh_free(s);
		}
		if (!ok)
			fail_msg("libssh accepts no option with %s", name);
	}
	assert_true(n >= 8 && n <= 32);
}

static void test_other_names_refused(void **state)
{
	static const char *const bad[] = {
		"",         "ssh-dss",  "hmac-md5", "curve25519-sha256", "SSH-RSA",
		"ssh-rsa,", "ssh-rsa ", "none",     "arcfour",           "rsa-sha2-256",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(sshc_legacy_algo(bad[i]), -EINVAL);
	assert_int_equal(sshc_legacy_algo(NULL), -EINVAL);
	assert_null(sshc_legacy_algo_name(-1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_name_is_accepted_by_libssh),
		cmocka_unit_test(test_other_names_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
