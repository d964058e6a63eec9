/* What both store backends write when they close a lost instance's
 * recordings (rec_common.h). */
#include "store/rec_common.h"

#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

void store_rec_interrupt_error(char *out, size_t size, const char *instance, const char *reason)
{
	if (instance)
		snprintf(out, size,
			 "interrupted: its instance %.64s stopped before the session ended (%.40s);"
			 " the recording ends early, with the last chunk it stored",
			 instance, reason);
	else
		snprintf(out, size,
			 "interrupted: the bastion recording it stopped before the session ended"
			 " (%.40s); the recording ends early, with the last chunk it stored",
			 reason);
}

char *store_rec_interrupt_detail(const char *id, const char *session, const char *bastion,
				 const char *error, int64_t bytes)
{
	json_t *d = json_pack("{s:s,s:s,s:s,s:s,s:I}", "recording", id, "session", session,
			      "bastion", bastion, "error", error, "bytes", (json_int_t)bytes);
	char *text = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	json_decref(d);
	return text;
}
