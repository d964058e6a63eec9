/* Times in tables: every Unix-seconds value a table shows is printed as a
 * UTC date and time, "2026-12-07 11:40:02Z" (absolute, so that it means the
 * same in a scrollback or a ticket an hour later; UTC, so that two
 * operators in two time zones quote the same text). -o json keeps the
 * seconds for scripts. Which values are times is told by the property's
 * name (the API's convention: "created_at", "started_at", "ts"), so a new
 * column of a new command follows without a change here. */
#include "cli/cli.h"

#include <string.h>
#include <time.h>

void cli_time_str(long long t, char *out, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (size == 0)
		return;
	if (t < 0 || !gmtime_r(&tt, &tm) || strftime(out, size, "%Y-%m-%d %H:%M:%SZ", &tm) == 0)
		snprintf(out, size, "%lld", t);
}

bool cli_is_time_key(const char *key)
{
	size_t n = key ? strlen(key) : 0;

	return (n > 3 && strcmp(key + n - 3, "_at") == 0) || (key && strcmp(key, "ts") == 0);
}

void cli_cell_of(const char *key, const json_t *v, bool count, char *out, size_t size)
{
	if (cli_is_time_key(key) && json_is_integer(v))
		cli_time_str((long long)json_integer_value(v), out, size);
	else
		cli_cell(v, count, out, size);
}
