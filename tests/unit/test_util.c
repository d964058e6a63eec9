#define OPENSSL_SUPPRESS_DEPRECATED /* RAND_get_rand_method, RAND_OpenSSL */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <sodium.h>

#include "core/err.h"
#include "core/gate.h"
#include "core/util.h"

static void token_has_length_and_alphabet(void **state)
{
	char a[64], b[64];

	util_random_token(a, sizeof(a), 32);
	util_random_token(b, sizeof(b), 32);
	assert_int_equal(strlen(a), util_token_len(32));
	assert_int_equal(strlen(a), 43);
	assert_string_not_equal(a, b);
	for (const char *p = a; *p; p++)
		assert_non_null(strchr(
			"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *p));
}

static void hex_and_sha256(void **state)
{
	uint8_t h[32];
	char hex[65];

	util_sha256_str("abc", h);
	util_hex(h, sizeof(h), hex);
	assert_string_equal(hex,
			    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void streq_ct_compares(void **state)
{
	assert_true(util_streq_ct("secret", "secret"));
	assert_false(util_streq_ct("secret", "secreT"));
	assert_false(util_streq_ct("secret", "secret2"));
	assert_false(util_streq_ct("", "x"));
	assert_true(util_streq_ct("", ""));
}

static void strlcpy_bounds(void **state)
{
	char buf[4];

	assert_int_equal(util_strlcpy(buf, "abc", sizeof(buf)), 0);
	assert_string_equal(buf, "abc");
	assert_int_equal(util_strlcpy(buf, "abcd", sizeof(buf)), -E2BIG);
	assert_string_equal(buf, "abc");
	assert_int_equal(util_strlcpy(buf, "x", 0), -E2BIG);
}

static void pct_decode_cases(void **state)
{
	char a[] = "web%2Dvm", b[] = "a%2Fb", c[] = "bad%2", d[] = "nul%00x", e[] = "bad%zz",
	     f[] = "%41%62";

	assert_int_equal(util_pct_decode(a), 0);
	assert_string_equal(a, "web-vm");
	/* An encoded slash decodes into the segment, where name rules reject it. */
	assert_int_equal(util_pct_decode(b), 0);
	assert_string_equal(b, "a/b");
	assert_int_equal(util_pct_decode(c), -EINVAL);
	assert_int_equal(util_pct_decode(d), -EINVAL);
	assert_int_equal(util_pct_decode(e), -EINVAL);
	assert_int_equal(util_pct_decode(f), 0);
	assert_string_equal(f, "Ab");
}

static void err_str_names_codes(void **state)
{
	assert_string_equal(err_str(-BERR_HOSTKEY), "host key mismatch");
	assert_string_equal(err_str(0), "success");
	assert_non_null(strstr(err_str(-ENOENT), "No such file"));
}

static void openssl_random_comes_from_getrandom(void **state)
{
	static unsigned char a[32], b[32], zero[32], big[1 << 20];

	(void)state;
	assert_ptr_equal(RAND_get_rand_method(), RAND_OpenSSL());
	assert_int_equal(util_openssl_use_getrandom(), 0);
	assert_ptr_not_equal(RAND_get_rand_method(), RAND_OpenSSL());
	assert_int_equal(RAND_bytes(a, sizeof(a)), 1);
	assert_int_equal(RAND_priv_bytes(b, sizeof(b)), 1);
	assert_memory_not_equal(a, zero, sizeof(a));
	assert_memory_not_equal(a, b, sizeof(a));
	assert_int_equal(RAND_bytes(big, sizeof(big)), 1);
	assert_memory_not_equal(big + sizeof(big) - 32, zero, 32);
	assert_int_equal(RAND_status(), 1);
}

static void json_wipe_allocator_is_malloc_compatible(void **state)
{
	json_malloc_t m = NULL;
	json_free_t f = NULL;
	json_t *o;
	char *text;

	util_json_wipe_on_free();
	json_get_alloc_funcs(&m, &f);
	assert_ptr_equal(m, malloc);
	assert_ptr_not_equal(f, free);
	o = json_pack("{s:s}", "password", "correct horse battery staple");
	text = json_dumps(o, JSON_COMPACT);
	assert_string_equal(text, "{\"password\":\"correct horse battery staple\"}");
	/* json_dumps output is a plain malloc block: free() is still right. */
	free(text);
	json_decref(o);
}

static void gate_bounds_and_refuses(void **state)
{
	static struct gate g = GATE_INIT(2);

	assert_int_equal(gate_try_enter(&g), 0);
	assert_int_equal(gate_try_enter(&g), 0);
	assert_int_equal(gate_try_enter(&g), -EBUSY);
	assert_int_equal(gate_running(&g), 2);
	assert_int_equal(gate_refused(&g), 1);
	gate_leave(&g);
	assert_int_equal(gate_try_enter(&g), 0);
	gate_leave(&g);
	gate_leave(&g);
	assert_int_equal(gate_running(&g), 0);
	/* The default is half the worker pool, at least one. */
	setenv("UV_THREADPOOL_SIZE", "1", 1);
	assert_int_equal(gate_default_max(), 1);
	setenv("UV_THREADPOOL_SIZE", "8", 1);
	assert_int_equal(gate_default_max(), 4);
	unsetenv("UV_THREADPOOL_SIZE");
	assert_int_equal(gate_default_max(), 2);
	gate_set_max(&g, 0);
	assert_int_equal(gate_try_enter(&g), 0);
	assert_int_equal(gate_try_enter(&g), 0);
	assert_int_equal(gate_try_enter(&g), -EBUSY);
	gate_leave(&g);
	gate_leave(&g);
}

/* Times for --since/--until and ?since=: Unix seconds or RFC 3339 UTC
 * with a Z, nothing else. */
static void parse_time_forms(void **state)
{
	static const char *const bad[] = { "",
					   "-1",
					   "12x",
					   "2025-01-31T12:00:00",
					   "2025-01-31T12:00:00+01:00",
					   "2025-01-31 12:00:00Z",
					   "2025-01-31T12:00:00Zjunk",
					   "yesterday" };
	int64_t t = -7;
	(void)state;

	assert_int_equal(util_parse_time("0", &t), 0);
	assert_int_equal(t, 0);
	assert_int_equal(util_parse_time("1738324800", &t), 0);
	assert_int_equal(t, 1738324800);
	assert_int_equal(util_parse_time("2025-01-31T12:00:00Z", &t), 0);
	assert_int_equal(t, 1738324800);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		t = -7;
		if (util_parse_time(bad[i], &t) != -EINVAL)
			fail_msg("'%s' was accepted", bad[i]);
		assert_int_equal(t, -7);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(token_has_length_and_alphabet),
		cmocka_unit_test(hex_and_sha256),
		cmocka_unit_test(parse_time_forms),
		cmocka_unit_test(streq_ct_compares),
		cmocka_unit_test(strlcpy_bounds),
		cmocka_unit_test(pct_decode_cases),
		cmocka_unit_test(err_str_names_codes),
		cmocka_unit_test(json_wipe_allocator_is_malloc_compatible),
		cmocka_unit_test(openssl_random_comes_from_getrandom),
		cmocka_unit_test(gate_bounds_and_refuses),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
