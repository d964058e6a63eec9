/* What both store backends write when they close a lost instance's
 * recordings, and the transaction around it (rec_common.h). */
#include "store/rec_common.h"

#include <errno.h>
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

int store_rec_interrupt_audit(struct store *s, store_audit_fn *audit, const char *const row[5],
			      const char *error, int64_t bytes)
{
	json_t *d = json_pack("{s:s,s:s,s:s,s:s,s:I}", "recording", row[0], "session", row[1],
			      "bastion", row[4], "error", error, "bytes", (json_int_t)bytes);
	char *detail = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	char principal[80];
	int r;

	json_decref(d);
	snprintf(principal, sizeof(principal), "user:%s", row[2]);
	r = detail ? audit(s, principal, "recording.interrupted", row[3], "interrupted", detail)
		   : -ENOMEM;
	free(detail);
	return r;
}

int store_rec_interrupt_run(struct store *s, store_tx_fn *tx, int (*fn)(struct store *s, void *ud),
			    const char *instance, int64_t now, const char *reason, int *ret_n)
{
	struct store_rec_interrupt a = { instance, reason, now, 0 };
	int r = tx(s, fn, &a);

	if (r == 0 && ret_n)
		*ret_n = a.n;
	return r;
}
