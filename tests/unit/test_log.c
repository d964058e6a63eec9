/* The log's two formats: text lines for people, one JSON object per line
 * for shippers, audit records as their own "type":"audit" objects. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/log.h"

/* Runs fn with stderr sent to a temporary file; returns what it wrote. */
static char *capture(void (*fn)(void))
{
	char path[] = "/tmp/test_log.XXXXXX";
	int fd = mkstemp(path), saved = dup(STDERR_FILENO);
	char *text = calloc(1, 65536);
	ssize_t n;

	assert_true(fd >= 0 && saved >= 0 && text);
	unlink(path);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	fn();
	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	n = pread(fd, text, 65535, 0);
	assert_true(n >= 0);
	close(fd);
	return text;
}

static void some_lines(void)
{
	static const char *const kv[] = { "method",  "GET",   "status", "200", "path",
					  "/a b\"c", "empty", "",       NULL };
	json_t *rec = json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)7, "action", "auth.login",
				"result", "success", "principal", "user:a");

	log_info("hello %d", 42);
	log_debug("not shown at info");
	log_warn("a \"quoted\" word and a bad byte \xff here");
	log_fields(LOG_INFO, kv, "request");
	log_audit(rec);
	json_decref(rec);
}

static void text_format(void **state)
{
	char *t;

	log_set_level(LOG_INFO);
	log_set_format(LOG_FORMAT_TEXT);
	t = capture(some_lines);
	assert_non_null(strstr(t, "Z info hello 42\n"));
	assert_null(strstr(t, "not shown"));
	assert_non_null(strstr(t, " warn a \"quoted\" word"));
	assert_non_null(
		strstr(t, " info request method=GET status=200 path=\"/a b\\\"c\" empty=\"\"\n"));
	/* the audit line is the JSON line it always was */
	assert_non_null(strstr(t, "\n{\"audit\":{\"id\":7,"));
	free(t);
}

static void json_format(void **state)
{
	const char *keys[] = { "time", "level", "type" };
	int lines = 0, audits = 0;
	char *t, *save = NULL;

	log_set_level(LOG_INFO);
	log_set_format(LOG_FORMAT_JSON);
	t = capture(some_lines);
	log_set_format(LOG_FORMAT_TEXT);
	for (char *line = strtok_r(t, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		json_error_t e;
		json_t *o = json_loads(line, 0, &e);
		const char *type, *msg;

		if (!o)
			fail_msg("not JSON: %s (%s)", line, e.text);
		for (size_t i = 0; i < 3; i++)
			assert_true(json_is_string(json_object_get(o, keys[i])));
		/* the time first: 2026-12-07T11:40:02.123Z */
		assert_int_equal(strncmp(line, "{\"time\":\"", 9), 0);
		assert_int_equal(strlen(json_string_value(json_object_get(o, "time"))), 24);
		type = json_string_value(json_object_get(o, "type"));
		msg = json_string_value(json_object_get(o, "message"));
		assert_non_null(msg);
		for (const char *p = line; *p; p++)
			assert_true((unsigned char)*p < 0x80);
		if (strcmp(type, "audit") == 0) {
			audits++;
			assert_string_equal(msg, "auth.login success");
			assert_string_equal(json_string_value(json_object_get(
						    json_object_get(o, "audit"), "principal")),
					    "user:a");
			assert_string_equal(json_string_value(json_object_get(o, "level")), "info");
		} else {
			assert_string_equal(type, "log");
			if (strcmp(msg, "request") == 0) {
				json_t *fields = json_object_get(o, "fields");

				assert_string_equal(
					json_string_value(json_object_get(fields, "status")),
					"200");
				assert_string_equal(
					json_string_value(json_object_get(fields, "path")),
					"/a b\"c");
			}
			if (strncmp(msg, "a \"quoted\"", 10) == 0) {
				assert_string_equal(json_string_value(json_object_get(o, "level")),
						    "warn");
				assert_non_null(strstr(msg, "bad byte ? here"));
			}
		}
		lines++;
		json_decref(o);
	}
	assert_int_equal(lines, 4);
	assert_int_equal(audits, 1);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(text_format),
		cmocka_unit_test(json_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
