/* The part of the connect checks (docs/api.md "The checks") that a
 * terminal's connect (connect.c) and a native client's stream (stream.c)
 * share: rows 3 to 6 and the operator's destination policy, in that order,
 * on a worker. */
#pragma once

#include <jansson.h>

#include "api/api.h"

struct connect_target {
	char vm_id[256];
	char bastion_id[256]; /* set once known (named, or the only one fitting) */
	char net_id[256];
	char ip[64];     /* the NIC's private IP, canonical text: what is dialled */
	json_t *vm;      /* owned: the VM's properties */
	json_t *bastion; /* owned: the bastion's properties */
};

/* Rows 3-6 and the destination policy for the VM c->seg[1]/c->seg[3]
 * through bastion_arg (NULL: the only one serving the VM's network that
 * the caller may read). 0 with t filled, or < 0 with c->resp answered.
 * Either way, api_connect_target_done(t) afterwards. */
int api_connect_target(struct api_call *c, const char *bastion_arg, struct connect_target *t);
void api_connect_target_done(struct connect_target *t);

/* Audits the connect c->resp refused (its error code as the result; d's
 * fields, stolen, with the source address and the error's message added
 * as details) and counts it: a terminal's and a stream's refusals are one
 * kind of record. Never anything of the request's credentials in d. */
void api_connect_refused(struct api_call *c, const char *vm_id, json_t *d);
