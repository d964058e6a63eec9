/* sshc_hostkey_fingerprint: the SHA-256 fingerprint that the host-key page
 * and the HostKeyMismatch message show must be what `ssh-keygen -l` prints
 * for the same key (the expected values below are ssh-keygen's), for a bare
 * "type base64 [comment]" key and a known_hosts line; anything else is
 * refused, and a short buffer is an error, never a truncated fingerprint. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "ssh/sshc.h"

#define ED25519    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGhlCTR+5H/qHo/zQXjJCsz5f7OMqOBWOQIpvTsLTPyp"
#define ED25519_FP "ssh-ed25519 SHA256:qkUZXADQLQ+tsFHUHRLn8izWywy26il/+zGg4DkwGxs"
#define RSA                                                                                          \
	"ssh-rsa "                                                                                   \
	"AAAAB3NzaC1yc2EAAAADAQABAAAAgQCrQv6zjYwfaqH2zO2QR1Y+WGBJhT5sPFq/gtmNYtvaf3QMYeNYCaNESe/"    \
	"rk22n48Pk5S/7875n4Ud2XWbxGXGQUhXdKH4vFNLTbgOjZ6OTastLit+KffWfwgyoIyhNw+58Jqzk4lZ1sc9ejBdO7" \
	"Z7pQD+c+fbsB3o+qolHZVAQ8w=="
#define RSA_FP "ssh-rsa SHA256:PrbAzdNtpOi94gU8/PjijJiVLc97ja4FAYSVqVcvC6Q"

static void as_ssh_keygen(void **state)
{
	char fp[160];

	assert_int_equal(sshc_hostkey_fingerprint(ED25519, fp, sizeof(fp)), 0);
	assert_string_equal(fp, ED25519_FP);
	assert_int_equal(sshc_hostkey_fingerprint(ED25519 " a comment", fp, sizeof(fp)), 0);
	assert_string_equal(fp, ED25519_FP);
	assert_int_equal(sshc_hostkey_fingerprint("[10.0.0.5]:2222 " ED25519, fp, sizeof(fp)), 0);
	assert_string_equal(fp, ED25519_FP);
	assert_int_equal(sshc_hostkey_fingerprint(RSA, fp, sizeof(fp)), 0);
	assert_string_equal(fp, RSA_FP);
}

static void refusals(void **state)
{
	static const char *const bad[] = {
		"",
		"ssh-ed25519",
		"ssh-ed25519 !!!notbase64!!!",
		"-----BEGIN OPENSSH PRIVATE KEY-----",
		"not a key at all",
	};
	char fp[160];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_true(sshc_hostkey_fingerprint(bad[i], fp, sizeof(fp)) < 0);
	/* One byte short of what the answer needs. */
	assert_int_equal(sshc_hostkey_fingerprint(ED25519, fp, strlen(ED25519_FP)), -ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(as_ssh_keygen),
		cmocka_unit_test(refusals),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
