/* Terminal sessions: the pump between a browser's WebSocket and an SSH
 * channel, the session registry, the attach window. Loop thread only,
 * except where noted. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include <jansson.h>

#include "ssh/sshc.h"

struct srv_conn;
struct api_resp;
struct store;

#define TERM_ATTACH_WINDOW_MS 30000

/* A connect request that passed every check up to the dial (SPEC §2 rows
 * 1–8). Built on a worker by api_connect; owned by the terminal module from
 * term_next() on. */
struct term_connect {
	int64_t user_id;
	char user[65];
	char vm_id[256];
	char bastion_id[256];
	char auth_type[16];
	char source[64];
	bool host_keys_pinned;
	char **host_keys;        /* owned, n_host_keys strings */
	size_t n_host_keys;
	struct sshc_params p;    /* owned secrets: p.password, p.key */
};

/* Frees c, wiping its secrets. NULL is fine. */
void term_connect_free(struct term_connect *c);

/* Attach to, or disconnect, a session: who asks and which. */
struct term_attach {
	int64_t user_id;
	char user[65];
	char session_id[64];
};

int term_init(uv_loop_t *loop, struct store *store);
/* Ends every session with reason (shutdown). */
void term_shutdown(const char *reason);
/* Ends every session of user_id with reason; the browser receives
 * {"type":"closed","reason"}. Any thread may call it (a disabled or deleted
 * user, from a worker): the work is posted to the loop. */
void term_end_user_sessions(int64_t user_id, const char *reason);
/* Active sessions right now. */
size_t term_count(void);

/* Runs the continuation of an API response (API_NEXT_CONNECT or
 * API_NEXT_ATTACH) on connection c; answers with srv_respond() or switches
 * c to WebSocket. client_gone: c is closing; just release resp->next_arg
 * and hand c back with srv_respond(). */
void term_next(struct srv_conn *c, struct api_resp *resp, bool client_gone);

/* Queues an audit record on the worker pool (store writes never run on the
 * loop). Any thread that owns a loop may call it with that loop. */
void term_audit(const char *principal, const char *action, const char *target,
		const char *result, json_t *detail);
