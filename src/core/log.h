/* Logging to stderr, one line per message, safe from any thread; text for
 * people or JSON for shippers (log.c says the shapes).
 * Never pass a secret to these functions. */
#pragma once

#include <jansson.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
void log_set_format(enum log_format f);
enum log_format log_get_format(void);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A message with fields: kv is "key", "value", ..., NULL. Text appends
 * " key=value" to the line; JSON puts them under "fields". */
void log_fields(enum log_level level, const char *const *kv, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* One audit record (the object store_audit_json makes), at info whatever
 * the level: {"audit":{...}} in text, a "type":"audit" object in JSON. */
void log_audit(const json_t *record);

/* Writes text, whole lines each ending in '\n', to stderr with one
 * write(2) per line (journald keeps a line whole); what stderr refuses is
 * dropped (the audit table has the record). */
void log_write_lines(const char *text, size_t len);

/* The line log_audit would write (with its '\n'; *ret_len counts it), for
 * a caller that writes it later (the store, once its transaction has
 * committed). malloc'd; NULL when out of memory. */
char *log_audit_line(const json_t *record, size_t *ret_len);

#define log_debug(...)                                   \
	do {                                             \
		if (log_get_level() <= LOG_DEBUG)        \
			log_msg(LOG_DEBUG, __VA_ARGS__); \
	} while (0)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
