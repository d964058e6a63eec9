/* Logging to stderr: one line per message, whole lines from any thread.
 *
 * Two formats (server.log_format): "text", a line a person reads
 * ("2026-12-07T11:40:02.123Z info message key=value"), and "json", one
 * object per line for a log shipper:
 *   {"time":"2026-12-07T11:40:02.123Z","level":"info","type":"log",
 *    "message":"...","fields":{"key":"value"}}
 * Audit records come through log_audit: in text they stay the JSON line
 * {"audit":{...}} they always were; in json they are their own objects,
 *   {"time":...,"level":"info","type":"audit","message":"ACTION RESULT",
 *    "audit":{...the record...}}
 * so that a shipper routes them apart from the diagnostics. */
#include "core/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Set on a reload, read by every thread. */
static atomic_int min_level = LOG_INFO;
static atomic_int format = LOG_FORMAT_TEXT;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void log_set_level(enum log_level level)
{
	atomic_store_explicit(&min_level, (int)level, memory_order_relaxed);
}
enum log_level log_get_level(void)
{
	return (enum log_level)atomic_load_explicit(&min_level, memory_order_relaxed);
}

void log_set_format(enum log_format f)
{
	atomic_store_explicit(&format, (int)f, memory_order_relaxed);
}
enum log_format log_get_format(void)
{
	return (enum log_format)atomic_load_explicit(&format, memory_order_relaxed);
}

/* "2026-12-07T11:40:02.123Z" */
static void now_text(char *out, size_t size)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, size - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* One write(2) per line keeps lines whole across threads; stderr gone is
 * nothing this process can do anything about. */
static void write_line(char *text, size_t len)
{
	text[len] = '\n'; /* the caller left room: replaces the NUL */
	if (write(STDERR_FILENO, text, len + 1) < 0) {
		/* nothing to do */
	}
}

/* o as one line with its '\n', in a malloc'd block (len with the newline). */
static char *dump_line(const json_t *o, size_t flags, size_t *ret_len)
{
	size_t n = json_dumpb(o, NULL, 0, flags);
	char *line;

	if (n == 0 || !(line = malloc(n + 1)))
		return NULL;
	if (json_dumpb(o, line, n, flags) != n) {
		free(line);
		return NULL;
	}
	line[n] = '\n';
	*ret_len = n + 1;
	return line;
}

/* Writes o as one line, with one write(2) so that lines stay whole across
 * threads; ASCII escapes keep the line plain for any reader. */
static void emit(const json_t *o)
{
	size_t len;
	char *line = dump_line(o, JSON_COMPACT | JSON_ENSURE_ASCII, &len);

	if (line && write(STDERR_FILENO, line, len) < 0) {
		/* nothing to do: stderr is gone */
	}
	free(line);
}

/* A JSON line's object, its time and level first (shippers and people
 * read them first). NULL when out of memory. */
static json_t *json_line(enum log_level level, const char *type)
{
	char when[40];

	now_text(when, sizeof(when));
	return json_pack("{s:s, s:s, s:s}", "time", when, "level", level_names[level], "type",
			 type);
}

/* A message as a JSON string: invalid UTF-8 (a peer's bytes) becomes '?'. */
static json_t *message_json(const char *msg)
{
	json_t *s = json_string(msg);
	char *copy;

	if (s)
		return s;
	copy = strdup(msg);
	if (!copy)
		return json_string("(out of memory)");
	for (unsigned char *p = (unsigned char *)copy; *p; p++)
		if (*p >= 0x80)
			*p = '?';
	s = json_string(copy);
	free(copy);
	return s;
}

/* Appends " key=value" to line (size bytes with the NUL); a value with a
 * space, a quote, an '=' or a control character is quoted, with '"' and
 * '\\' escaped and control characters as '?', so that a line splits back
 * into its fields. Cut at the end of the buffer. */
static void append_field(char *line, size_t size, const char *key, const char *v)
{
	size_t n = strlen(line);
	bool quote = !*v || strpbrk(v, " \"=\\") != NULL;

	for (const unsigned char *p = (const unsigned char *)v; *p && !quote; p++)
		quote = *p < 0x20 || *p == 0x7f;
	n += (size_t)snprintf(line + n, size - n, " %s=%s", key, quote ? "\"" : "");
	for (; *v && n + 3 < size; v++) {
		unsigned char ch = (unsigned char)*v;

		if (ch == '"' || ch == '\\')
			line[n++] = '\\';
		line[n++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
	}
	if (quote && n + 1 < size)
		line[n++] = '"';
	line[n < size ? n : size - 1] = '\0';
}

__attribute__((format(printf, 3, 0))) static void log_v(enum log_level level, const char *const *kv,
							const char *fmt, va_list ap)
{
	char line[1024 + 2];
	json_t *o, *fields = NULL;
	int n;

	if (level < log_get_level())
		return;
	if (log_get_format() == LOG_FORMAT_JSON) {
		vsnprintf(line, sizeof(line) - 1, fmt, ap);
		o = json_line(level, "log");
		if (!o)
			return;
		json_object_set_new(o, "message", message_json(line));
		for (size_t i = 0; kv && kv[i] && kv[i + 1]; i += 2) {
			if (!fields && !(fields = json_object()))
				break;
			json_object_set_new(fields, kv[i], message_json(kv[i + 1]));
		}
		if (fields)
			json_object_set_new(o, "fields", fields);
		emit(o);
		json_decref(o);
		return;
	}
	now_text(line, sizeof(line) - 1);
	n = (int)strlen(line);
	n += snprintf(line + n, sizeof(line) - 1 - (size_t)n, " %s ", level_names[level]);
	vsnprintf(line + n, sizeof(line) - 1 - (size_t)n, fmt, ap);
	for (size_t i = 0; kv && kv[i] && kv[i + 1]; i += 2)
		append_field(line, sizeof(line) - 1, kv[i], kv[i + 1]);
	write_line(line, strlen(line));
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_v(level, NULL, fmt, ap);
	va_end(ap);
}

void log_fields(enum log_level level, const char *const *kv, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_v(level, kv, fmt, ap);
	va_end(ap);
}

char *log_audit_line(const json_t *record, size_t *ret_len)
{
	const char *action = json_string_value(json_object_get(record, "action"));
	const char *result = json_string_value(json_object_get(record, "result"));
	char msg[256];
	char *line = NULL;
	json_t *o;

	if (log_get_format() == LOG_FORMAT_JSON) {
		snprintf(msg, sizeof(msg), "%s %s", action ? action : "?", result ? result : "-");
		if ((o = json_line(LOG_INFO, "audit")) != NULL) {
			json_object_set_new(o, "message", message_json(msg));
			json_object_set(o, "audit", (json_t *)record);
			line = dump_line(o, JSON_COMPACT | JSON_ENSURE_ASCII, ret_len);
		}
		json_decref(o);
		return line;
	}
	o = json_pack("{s:O}", "audit", record);
	if (o)
		line = dump_line(o, JSON_COMPACT, ret_len);
	json_decref(o);
	return line;
}

void log_audit(const json_t *record)
{
	size_t len;
	char *line = log_audit_line(record, &len);

	if (line && write(STDERR_FILENO, line, len) < 0) {
		/* nothing to do: stderr is gone */
	}
	free(line);
}

void log_write_lines(const char *text, size_t len)
{
	while (len > 0) {
		const char *nl = memchr(text, '\n', len);
		size_t n = nl ? (size_t)(nl - text) + 1 : len;

		if (write(STDERR_FILENO, text, n) < 0) {
			/* nothing to do: stderr is gone */
		}
		text += n;
		len -= n;
	}
}
