/* server/inbio.c, the BIO under SSL_read: bytes lent from the loop's read
 * buffer are read in place; what is left of them when the read callback
 * returns is kept, in order, ahead of the next read's bytes, and freed
 * once read. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "server/internal.h"

static int setup(void **state)
{
	(void)state;
	return in_method_init();
}

/* Reads exactly n bytes, in pieces of at most step. */
static void read_n(BIO *b, uint8_t *out, size_t n, int step)
{
	size_t have = 0;

	while (have < n) {
		int want = n - have < (size_t)step ? (int)(n - have) : step;
		int r = BIO_read(b, out + have, want);

		assert_true(r > 0);
		have += (size_t)r;
	}
}

static void left_bytes_are_kept_in_order(void **state)
{
	uint8_t loop_buf[1000], out[3000], want[3000];
	BIO *b = in_bio_new();
	size_t next = 0;

	(void)state;
	assert_non_null(b);
	for (size_t i = 0; i < sizeof(want); i++)
		want[i] = (uint8_t)(i * 13 + 1);
	/* Nothing lent: a retry, as an empty memory BIO. */
	assert_int_equal(BIO_read(b, out, 10), -1);
	assert_true(BIO_should_retry(b));
	/* Three reads of 1000 bytes; each time only part is taken before the
	 * callback returns, and the loop's buffer is overwritten after. */
	for (int k = 0; k < 3; k++) {
		memcpy(loop_buf, want + 1000 * k, 1000);
		in_bio_lend(b, loop_buf, 1000);
		assert_int_equal(BIO_ctrl_pending(b), 3000 - 1000 * (2 - k) - next);
		read_n(b, out + next, 300, 7);
		next += 300;
		assert_int_equal(in_bio_return(b), 0);
		memset(loop_buf, 0xee, sizeof(loop_buf));
	}
	assert_int_equal(BIO_ctrl_pending(b), 3000 - next);
	read_n(b, out + next, 3000 - next, 512);
	assert_memory_equal(out, want, 3000);
	assert_int_equal(BIO_ctrl_pending(b), 0);
	assert_int_equal(BIO_read(b, out, 10), -1);
	assert_true(BIO_should_retry(b));
	/* All taken during the callback: nothing kept. */
	in_bio_lend(b, loop_buf, 100);
	read_n(b, out, 100, 100);
	assert_int_equal(in_bio_return(b), 0);
	assert_int_equal(BIO_ctrl_pending(b), 0);
	BIO_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(left_bytes_are_kept_in_order),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
