/* The terminal's control-message parser (term_parse_control): what the
 * browser may send as a text frame, and every refusal. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "terminal/term.h"

static int parse(const char *text, struct term_control *ctl, const char **error)
{
	*error = NULL;
	return term_parse_control(text, strlen(text), ctl, error);
}

static void resize_and_ping(void **state)
{
	struct term_control ctl;
	const char *error;

	assert_int_equal(parse("{\"type\":\"resize\",\"cols\":120,\"rows\":40}", &ctl, &error), 0);
	assert_int_equal(ctl.type, TERM_CTL_RESIZE);
	assert_int_equal(ctl.cols, 120);
	assert_int_equal(ctl.rows, 40);
	assert_int_equal(parse("{\"type\":\"ping\",\"id\":9007199254740991}", &ctl, &error), 0);
	assert_int_equal(ctl.type, TERM_CTL_PING);
	assert_true(ctl.id == 9007199254740991LL);
}

/* Flow control from the page: pause and resume take no arguments; window
 * and ack take a byte count within bounds. */
static void pause_and_resume(void **state)
{
	struct term_control ctl;
	const char *error;

	assert_int_equal(parse("{\"type\":\"pause\"}", &ctl, &error), 0);
	assert_int_equal(ctl.type, TERM_CTL_PAUSE);
	assert_int_equal(parse("{\"type\":\"resume\"}", &ctl, &error), 0);
	assert_int_equal(ctl.type, TERM_CTL_RESUME);
	assert_int_equal(parse("{\"type\":\"pause\",\"type\":\"resume\"}", &ctl, &error), -EINVAL);
	assert_int_equal(parse("{\"type\":\"Pause\"}", &ctl, &error), -EINVAL);
	/* Flush on interrupt: no arguments either. */
	assert_int_equal(parse("{\"type\":\"flush\"}", &ctl, &error), 0);
	assert_int_equal(ctl.type, TERM_CTL_FLUSH);
	assert_int_equal(parse("{\"type\":\"Flush\"}", &ctl, &error), -EINVAL);
	assert_int_equal(parse("{\"type\":\"window\",\"bytes\":262144}", &ctl, &error), 0);
	assert_int_equal(ctl.type, TERM_CTL_WINDOW);
	assert_true(ctl.bytes == 262144);
	assert_int_equal(parse("{\"type\":\"window\",\"bytes\":16384}", &ctl, &error), 0);
	assert_int_equal(parse("{\"type\":\"window\",\"bytes\":67108864}", &ctl, &error), 0);
	assert_int_equal(parse("{\"type\":\"ack\",\"bytes\":1}", &ctl, &error), 0);
	assert_int_equal(ctl.type, TERM_CTL_ACK);
	assert_true(ctl.bytes == 1);
	assert_int_equal(parse("{\"type\":\"ack\",\"bytes\":9007199254740991}", &ctl, &error), 0);
	assert_true(ctl.bytes == 9007199254740991LL);
}

static void refusals(void **state)
{
	static const char *const bad[] = {
		"",
		"null",
		"[]",
		"{}",
		"{\"type\":1}",
		"not json",
		"{\"type\":\"resize\",\"cols\":0,\"rows\":10}",
		"{\"type\":\"resize\",\"cols\":1001,\"rows\":10}",
		"{\"type\":\"resize\",\"cols\":80.5,\"rows\":10}",
		"{\"type\":\"resize\",\"cols\":\"80\",\"rows\":10}",
		"{\"type\":\"resize\",\"cols\":80,\"rows\":24,\"cols\":81}",
		"{\"type\":\"ping\",\"id\":-1}",
		"{\"type\":\"ping\",\"id\":9007199254740992}",
		"{\"type\":\"exit\"}",
		"{\"type\":\"window\"}",
		"{\"type\":\"window\",\"bytes\":16383}",
		"{\"type\":\"window\",\"bytes\":67108865}",
		"{\"type\":\"window\",\"bytes\":\"65536\"}",
		"{\"type\":\"ack\",\"bytes\":0}",
		"{\"type\":\"ack\",\"bytes\":-5}",
		"{\"type\":\"ack\",\"bytes\":1.5}",
		"{\"type\":\"ack\",\"bytes\":9007199254740992}",
	};
	struct term_control ctl = { .type = TERM_CTL_PING, .id = 7 };
	const char *error;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(bad[i], &ctl, &error), -EINVAL);
		assert_non_null(error);
		assert_true(error[0] != '\0');
		/* Untouched on failure. */
		assert_int_equal(ctl.type, TERM_CTL_PING);
		assert_true(ctl.id == 7);
	}
	/* Not NUL-terminated: the length is what counts. */
	assert_int_equal(term_parse_control("{\"type\":\"ping\",\"id\":1}xyz", 22, &ctl, &error),
			 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(resize_and_ping),
		cmocka_unit_test(pause_and_resume),
		cmocka_unit_test(refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
