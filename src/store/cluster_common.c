/* What both store backends do alike around the SQL of the instances table
 * and the live-session registry (store_cluster.h): the audit of a session a
 * lost instance leaves, the arguments checked, the transactions run and
 * their answers handed back (backend.h). */
#include "store/backend.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "core/util.h"

int store_session_end_audit(struct store *s, store_audit_fn *audit,
			    const struct store_session_ended *e, const char *instance,
			    const char *reason, int64_t now)
{
	json_t *d = json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:I}", "session", e->id, "reason", reason,
			      "instance", instance, "bastion", e->bastion, "duration_s",
			      (json_int_t)(now - e->started_at), "bytes_to_vm",
			      (json_int_t)e->bytes_to_vm, "bytes_from_vm",
			      (json_int_t)e->bytes_from_vm);
	char *detail = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	char principal[80];
	int r;

	json_decref(d);
	snprintf(principal, sizeof(principal), "user:%s", e->user);
	r = audit(s, principal, "session.end", e->vm, "ended", detail);
	free(detail);
	return r;
}

int store_instance_claim_run(struct store *s, store_tx_fn *tx, int (*fn)(struct store *s, void *ud),
			     const struct store_instance *in, int64_t now, int64_t lease_s,
			     const char *reason, int *ret_ended)
{
	struct store_claim x = { .in = in, .now = now, .lease_s = lease_s, .reason = reason };
	int r;

	if (!in->name[0])
		return -EINVAL;
	r = tx(s, fn, &x);
	if (r == 0 && ret_ended)
		*ret_ended = x.ended;
	return r;
}

int store_instance_reap_run(struct store *s, store_tx_fn *tx, int (*fn)(struct store *s, void *ud),
			    const char *self, int64_t now, int64_t lease_s, int *ret_lost,
			    int *ret_ended)
{
	struct store_reap x = { .self = self, .now = now, .lease_s = lease_s };
	int r = tx(s, fn, &x);

	if (r < 0)
		return r;
	if (ret_lost)
		*ret_lost = x.lost;
	if (ret_ended)
		*ret_ended = x.ended;
	return 0;
}

void store_end_request_found(struct store_end_request *x, const char *instance, const char *user,
			     const char *bastion)
{
	if (x->ret_instance)
		util_strlcpy(x->ret_instance, instance, STORE_INSTANCE_NAME_MAX);
	if (x->ret_user)
		util_strlcpy(x->ret_user, user, 65);
	if (x->ret_bastion)
		util_strlcpy(x->ret_bastion, bastion, 256);
}
