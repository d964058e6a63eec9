/* Tests for sshc_banner_clean (src/ssh/banner.c): the VM's pre-login
 * banner becomes terminal bytes: CRLF line ends, no control characters,
 * valid UTF-8, at most SSHC_BANNER_MAX bytes cut at a character boundary. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ssh/sshc.h"

#include <stdlib.h>
#include <string.h>

static uint8_t out[SSHC_BANNER_MAX];

static void expect_clean(const char *raw, size_t len, const char *want)
{
	size_t n = sshc_banner_clean(raw, len, out);

	assert_int_equal(n, strlen(want));
	assert_memory_equal(out, want, n);
}

static void test_line_ends(void **state)
{
	(void)state;
	expect_clean("a\nb\n", 4, "a\r\nb\r\n");
	expect_clean("a\r\nb\r\n", 6, "a\r\nb\r\n");
	expect_clean("a\rb", 3, "a\r\nb\r\n");
	expect_clean("no newline", 10, "no newline\r\n");
	expect_clean("a\n\nb", 4, "a\r\n\r\nb\r\n");
}

static void test_controls_dropped(void **state)
{
	(void)state;
	/* ESC, BEL, NUL, DEL dropped; TAB kept. */
	expect_clean("\x1b[2Jx\ty\a\x7f", 9, "[2Jx\ty\r\n");
	expect_clean("a\0b", 3, "ab\r\n");
	/* C1 controls (U+009B is CSI) dropped, whole. */
	expect_clean("a\xc2\x9b"
		     "31mb",
		     7, "a31mb\r\n");
}

static void test_utf8(void **state)
{
	(void)state;
	expect_clean("f\xc3\xbcr \xe6\xbc\xa2 \xf0\x9f\x94\x92", 13,
		     "f\xc3\xbcr \xe6\xbc\xa2 \xf0\x9f\x94\x92\r\n");
	/* A stray continuation byte, a truncated sequence, an overlong form
	 * and a surrogate each become '?'. */
	expect_clean("a\x80z", 3, "a?z\r\n");
	expect_clean("a\xe6\xbc", 3, "a??\r\n");
	expect_clean("\xc0\xafx", 3, "??x\r\n");
	expect_clean("\xed\xa0\x80x", 4, "???x\r\n");
}

static void test_nothing_printable(void **state)
{
	(void)state;
	assert_int_equal(sshc_banner_clean("", 0, out), 0);
	assert_int_equal(sshc_banner_clean("\n\r\n \t\n", 6, out), 0);
	assert_int_equal(sshc_banner_clean("\x1b\x07", 2, out), 0);
	assert_int_equal(sshc_banner_clean(NULL, 0, out), 0);
}

/* Any length, any mix: never over the cap, a cut banner says so and ends
 * on a character boundary. */
static void test_cap(void **state)
{
	static const char unit[] = "\xe6\xbc\xa2-line\n";
	size_t len = 64 * 1024, n;
	char *raw = malloc(len);

	(void)state;
	assert_non_null(raw);
	for (size_t off = 0; off < 8; off++) {
		for (size_t i = 0; i < len; i++)
			raw[i] = unit[(i + off) % (sizeof(unit) - 1)];
		n = sshc_banner_clean(raw, len, out);
		assert_true(n > 7000 && n <= SSHC_BANNER_MAX);
		assert_non_null(memmem(out, n, "longer than 8 KiB", 17));
		for (size_t i = 0; i < n; i++) {
			/* No lone LF, no broken three-byte character. */
			if (out[i] == '\n')
				assert_true(i > 0 && out[i - 1] == '\r');
			if (out[i] == 0xe6)
				assert_true(i + 2 < n && out[i + 1] == 0xbc && out[i + 2] == 0xa2);
		}
	}
	/* Exactly at the cap's edge without a cut: no note. */
	memset(raw, 'x', len);
	n = sshc_banner_clean(raw, 4000, out);
	assert_int_equal(n, 4002);
	assert_null(memmem(out, n, "longer", 6));
	free(raw);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_ends), cmocka_unit_test(test_controls_dropped),
		cmocka_unit_test(test_utf8),      cmocka_unit_test(test_nothing_printable),
		cmocka_unit_test(test_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
