/* The session registry and the WebSocket ⇄ SSH pump.
 *
 * A session is born when its SSH shell is open (term_next, CONNECT), waits
 * up to 30 s for its creator to attach a WebSocket, then pumps bytes both
 * ways with back-pressure:
 *   VM → browser: when the bytes queued towards the browser pass the high
 *     watermark, the SSH channel is no longer read (the VM's window fills
 *     and it stops sending); reading resumes once the socket drains.
 *   browser → VM: when the channel's window is full, the rest of the frame
 *     waits in `pending` and the browser socket is no longer read.
 * Sessions are never freed inside a callback: they are marked dead and
 * reaped at the end of the loop iteration. */
#include "terminal/term.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "api/api.h"
#include "core/err.h"
#include "core/log.h"
#include "core/util.h"
#include "server/srv.h"
#include "store/store.h"

#define BUCKETS 4096

enum sess_state {
	SESS_DIALING,   /* SSH connect in progress; HTTP request waiting */
	SESS_WAITING,   /* shell open, waiting for the WebSocket */
	SESS_ATTACHED,  /* pumping */
	SESS_DEAD,      /* to be reaped */
};

struct sess {
	struct sess *next_bucket;
	struct sess *next_dead;
	enum sess_state state;
	char id[48];
	int64_t user_id;
	char user[65];
	char vm_id[256];
	char auth_type[16];
	char source[64];
	char target[80];
	int64_t started;
	struct sshc *ssh;
	struct srv_conn *http;   /* the connect request, while dialing */
	struct srv_conn *ws;     /* the terminal, once attached */
	uv_timer_t attach_timer;
	bool timer_inited;
	bool out_paused;         /* SSH reads stopped for back-pressure */
	uint8_t *pending;        /* browser input the channel has not taken */
	size_t pending_len;
	struct term_connect *conn; /* while dialing: the request (host keys) */
};

/* A request from a worker thread to end a user's sessions. */
struct end_req {
	struct end_req *next;
	int64_t user_id;
	char reason[128];
};

static struct {
	uv_loop_t *loop;
	uv_async_t wake;          /* worker → loop: end_reqs is not empty */
	pthread_mutex_t lock;     /* guards end_reqs */
	struct end_req *end_reqs;
	bool closed;
	struct store *store;
	struct sess *buckets[BUCKETS];
	size_t count;
	struct sess *dead;
	uv_check_t reaper;
} T;

static void sess_set_state(struct sess *s, enum sess_state st)
{
	static const char *const names[] = { "dialing", "waiting", "attached", "dead" };

	log_debug("session %s: %s -> %s", s->id[0] ? s->id : "(new)", names[s->state], names[st]);
	s->state = st;
}

static unsigned bucket_of(const char *id)
{
	unsigned h = 2166136261u;

	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 16777619u;
	return h % BUCKETS;
}

static void registry_add(struct sess *s)
{
	unsigned b = bucket_of(s->id);

	s->next_bucket = T.buckets[b];
	T.buckets[b] = s;
	T.count++;
}

static void registry_remove(struct sess *s)
{
	struct sess **pp = &T.buckets[bucket_of(s->id)];

	for (; *pp; pp = &(*pp)->next_bucket) {
		if (*pp == s) {
			*pp = s->next_bucket;
			T.count--;
			return;
		}
	}
}

static struct sess *registry_find(const char *id)
{
	for (struct sess *s = T.buckets[bucket_of(id)]; s; s = s->next_bucket)
		if (strcmp(s->id, id) == 0)
			return s;
	return NULL;
}

size_t term_count(void)
{
	return T.count;
}

/* ---------- audit on the worker pool ---------- */

struct audit_job {
	uv_work_t work;
	char *principal, *action, *target, *result, *detail;
};

static void audit_work(uv_work_t *w)
{
	struct audit_job *j = w->data;

	if (store_audit(T.store, j->principal, j->action, j->target, j->result, j->detail) < 0)
		log_error("audit: cannot record %s", j->action);
}

static void audit_done(uv_work_t *w, int status)
{
	struct audit_job *j = w->data;

	free(j->principal);
	free(j->action);
	free(j->target);
	free(j->result);
	free(j->detail);
	free(j);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

void term_audit(const char *principal, const char *action, const char *target,
		const char *result, json_t *detail)
{
	struct audit_job *j = calloc(1, sizeof(*j));

	if (!j) {
		json_decref(detail);
		return;
	}
	j->principal = dup_or_null(principal);
	j->action = dup_or_null(action);
	j->target = dup_or_null(target);
	j->result = dup_or_null(result);
	j->detail = detail ? json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(detail);
	j->work.data = j;
	if (uv_queue_work(T.loop, &j->work, audit_work, audit_done) < 0)
		audit_done(&j->work, 0);
}

struct hostkey_job {
	uv_work_t work;
	char *vm_id, *type, *b64;
};

static void hostkey_work(uv_work_t *w)
{
	struct hostkey_job *j = w->data;

	if (store_hostkey_add(T.store, j->vm_id, j->type, j->b64) < 0)
		log_error("store: cannot record the host key of %s", j->vm_id);
}

static void hostkey_done(uv_work_t *w, int status)
{
	struct hostkey_job *j = w->data;

	free(j->vm_id);
	free(j->type);
	free(j->b64);
	free(j);
}

/* ---------- lifecycle ---------- */

void term_connect_free(struct term_connect *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_host_keys; i++)
		free(c->host_keys[i]);
	free(c->host_keys);
	util_free_secret(c->p.password);
	if (c->p.key)
		ssh_key_free(c->p.key);
	free(c);
}

static void on_timer_closed(uv_handle_t *h)
{
	free(h->data);
}

static void reap(uv_check_t *h)
{
	while (T.dead) {
		struct sess *s = T.dead;

		T.dead = s->next_dead;
		term_connect_free(s->conn);
		if (s->pending)
			sodium_memzero(s->pending, s->pending_len);
		free(s->pending);
		if (s->timer_inited)
			uv_close((uv_handle_t *)&s->attach_timer, on_timer_closed);
		else
			free(s);
	}
	uv_check_stop(&T.reaper);
}

static void sess_end_audit(struct sess *s, const char *reason)
{
	uint64_t in = 0, out = 0;
	char principal[80];

	if (s->ssh)
		sshc_counters(s->ssh, &in, &out);
	snprintf(principal, sizeof(principal), "user:%s", s->user);
	term_audit(principal, "session.end", s->vm_id, "ended",
		   json_pack("{s:s,s:s,s:I,s:I,s:I}", "session", s->id, "reason", reason,
			     "duration_s", (json_int_t)(store_now() - s->started),
			     "bytes_from_vm", (json_int_t)in, "bytes_to_vm", (json_int_t)out));
}

/* Ends s: closes what is still open and queues it for the reaper. The SSH
 * side is closed unless ssh_done (it ended by itself). */
static void sess_kill(struct sess *s, bool ssh_done)
{
	if (s->state == SESS_DEAD)
		return;
	if (s->state != SESS_DIALING)
		registry_remove(s);
	sess_set_state(s, SESS_DEAD);
	if (s->timer_inited)
		uv_timer_stop(&s->attach_timer);
	if (s->ssh && !ssh_done)
		sshc_close(s->ssh);
	s->ssh = NULL;
	s->next_dead = T.dead;
	T.dead = s;
	uv_check_start(&T.reaper, reap);
}

static void end_user_sessions(int64_t user_id, const char *reason);

static void on_wake(uv_async_t *a)
{
	struct end_req *list, *next;

	pthread_mutex_lock(&T.lock);
	list = T.end_reqs;
	T.end_reqs = NULL;
	pthread_mutex_unlock(&T.lock);
	for (; list; list = next) {
		next = list->next;
		end_user_sessions(list->user_id, list->reason);
		free(list);
	}
}

int term_init(uv_loop_t *loop, struct store *store)
{
	T.loop = loop;
	T.store = store;
	pthread_mutex_init(&T.lock, NULL);
	uv_check_init(loop, &T.reaper);
	uv_unref((uv_handle_t *)&T.reaper);
	uv_async_init(loop, &T.wake, on_wake);
	uv_unref((uv_handle_t *)&T.wake);
	return 0;
}

void term_end_user_sessions(int64_t user_id, const char *reason)
{
	struct end_req *r = calloc(1, sizeof(*r));

	if (!r)
		return;
	r->user_id = user_id;
	util_strlcpy(r->reason, reason, sizeof(r->reason));
	pthread_mutex_lock(&T.lock);
	if (T.closed) {
		pthread_mutex_unlock(&T.lock);
		free(r);
		return;
	}
	r->next = T.end_reqs;
	T.end_reqs = r;
	uv_async_send(&T.wake);
	pthread_mutex_unlock(&T.lock);
}

static void send_control(struct sess *s, json_t *msg)
{
	char *text = json_dumps(msg, JSON_COMPACT);

	json_decref(msg);
	if (text && s->ws)
		srv_ws_send(s->ws, true, text, strlen(text));
	free(text);
}

/* Tells the browser why the session ends and closes the socket. */
static void sess_close_ws(struct sess *s, json_t *msg)
{
	struct srv_conn *ws = s->ws;

	if (!ws) {
		json_decref(msg);
		return;
	}
	send_control(s, msg);
	s->ws = NULL; /* on_close may follow: it must find nothing to do */
	srv_ws_close(ws, 1000, "session ended");
}

/* Ends s with a reason the browser is told and the audit records. */
static void sess_end(struct sess *s, const char *reason)
{
	sess_end_audit(s, reason);
	sess_close_ws(s, json_pack("{s:s,s:s}", "type", "closed", "reason", reason));
	sess_kill(s, false);
}

static void end_user_sessions(int64_t user_id, const char *reason)
{
	for (unsigned b = 0; b < BUCKETS; b++) {
		struct sess *s = T.buckets[b], *next;

		for (; s; s = next) {
			next = s->next_bucket;
			if (user_id < 0 || s->user_id == user_id)
				sess_end(s, reason);
		}
	}
}

void term_shutdown(const char *reason)
{
	end_user_sessions(-1, reason);
	pthread_mutex_lock(&T.lock);
	T.closed = true; /* later requests have no session to end */
	pthread_mutex_unlock(&T.lock);
	on_wake(&T.wake);
	uv_close((uv_handle_t *)&T.wake, NULL);
	uv_close((uv_handle_t *)&T.reaper, NULL);
	reap(&T.reaper);
}

/* ---------- the pump ---------- */

static void pump_input(struct sess *s)
{
	ssize_t n;

	if (!s->pending_len || !s->ssh)
		return;
	n = sshc_write(s->ssh, s->pending, s->pending_len);
	if (n < 0)
		return; /* on_end follows */
	memmove(s->pending, s->pending + n, s->pending_len - (size_t)n);
	s->pending_len -= (size_t)n;
	if (s->pending_len == 0 && s->ws)
		srv_ws_pause_input(s->ws, false);
}

static void ws_on_binary(void *ud, const uint8_t *buf, size_t len)
{
	struct sess *s = ud;
	ssize_t n = 0;
	uint8_t *p;

	if (s->state != SESS_ATTACHED || !s->ssh)
		return;
	if (s->pending_len == 0) {
		n = sshc_write(s->ssh, buf, len);
		if (n < 0)
			return;
		if ((size_t)n == len)
			return;
	}
	/* The channel's window is full: keep the rest, stop reading the browser. */
	p = realloc(s->pending, s->pending_len + len - (size_t)n);
	if (!p) {
		sess_close_ws(s, json_pack("{s:s,s:s}", "type", "closed", "reason", "out of memory"));
		sess_kill(s, false);
		return;
	}
	memcpy(p + s->pending_len, buf + n, len - (size_t)n);
	s->pending = p;
	s->pending_len += len - (size_t)n;
	if (s->ws)
		srv_ws_pause_input(s->ws, true);
}

static void ws_on_text(void *ud, const char *buf, size_t len)
{
	struct sess *s = ud;
	json_t *msg = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
	const char *type = json_string_value(json_object_get(msg, "type"));

	if (!type) {
		send_control(s, json_pack("{s:s,s:s}", "type", "error", "message",
					  "control messages are JSON objects with a \"type\""));
	} else if (strcmp(type, "resize") == 0) {
		json_t *cols = json_object_get(msg, "cols"), *rows = json_object_get(msg, "rows");

		if (!json_is_integer(cols) || !json_is_integer(rows) ||
		    json_integer_value(cols) < 1 || json_integer_value(cols) > 1000 ||
		    json_integer_value(rows) < 1 || json_integer_value(rows) > 1000)
			send_control(s, json_pack("{s:s,s:s}", "type", "error", "message",
						  "resize needs integer cols and rows between 1 and 1000"));
		else if (s->ssh)
			sshc_resize(s->ssh, (int)json_integer_value(cols), (int)json_integer_value(rows));
	} else {
		send_control(s, json_pack("{s:s,s:s}", "type", "error", "message",
					  "unknown control message type"));
	}
	json_decref(msg);
}

static void ws_on_drain(void *ud)
{
	struct sess *s = ud;

	if (s->out_paused && s->ssh) {
		s->out_paused = false;
		sshc_pause_output(s->ssh, false);
	}
}

static void ws_on_close(void *ud, const char *why)
{
	struct sess *s = ud;

	if (!s->ws)
		return; /* we closed it ourselves */
	s->ws = NULL;
	sess_end_audit(s, "the browser disconnected");
	sess_kill(s, false);
}

static const struct srv_ws_cb ws_cb = {
	.on_binary = ws_on_binary,
	.on_text = ws_on_text,
	.on_drain = ws_on_drain,
	.on_close = ws_on_close,
};

/* ---------- SSH side ---------- */

static void respond_error(struct srv_conn *http, int status, const char *code, const char *msg)
{
	struct api_resp resp = { 0 };

	api_error(&resp, status, code, "%s", msg);
	srv_respond(http, &resp);
}

static void on_attach_timeout(uv_timer_t *t)
{
	struct sess *s = t->data;

	if (s->state != SESS_WAITING)
		return;
	log_info("session %s: not attached within %d s, closed", s->id, TERM_ATTACH_WINDOW_MS / 1000);
	sess_end_audit(s, "not attached within 30 s");
	sess_kill(s, false);
}

static void ssh_on_ready(struct sshc *c, void *ud)
{
	struct sess *s = ud;
	struct api_resp resp = { 0 };
	char principal[80], terminal[128];

	sess_set_state(s, SESS_WAITING);
	registry_add(s);
	term_connect_free(s->conn);
	s->conn = NULL;
	s->started = store_now();
	/* Nothing is read from the VM until the browser is there to take it. */
	sshc_pause_output(c, true);
	s->out_paused = true;
	uv_timer_start(&s->attach_timer, on_attach_timeout, TERM_ATTACH_WINDOW_MS, 0);
	snprintf(terminal, sizeof(terminal), "/api/v1/sessions/%s/terminal", s->id);
	api_json(&resp, 201, json_pack("{s:{s:s,s:s,s:s,s:s,s:s,s:I}}", "session",
				       "id", s->id, "terminal", terminal, "vm", s->vm_id,
				       "target", s->target, "auth_type", s->auth_type,
				       "created_at", (json_int_t)s->started));
	srv_respond(s->http, &resp);
	s->http = NULL;
	snprintf(principal, sizeof(principal), "user:%s", s->user);
	term_audit(principal, "connect", s->vm_id, "Created",
		   json_pack("{s:s,s:s,s:s,s:s}", "session", s->id, "auth_type", s->auth_type,
			     "target", s->target, "source", s->source));
}

static void ssh_on_fail(struct sshc *c, int err, const char *msg, void *ud)
{
	struct sess *s = ud;
	const char *code;
	char principal[80];
	int status;

	switch (err) {
	case -BERR_HOSTKEY:
		status = 502, code = "HostKeyMismatch";
		break;
	case -BERR_SSH_AUTH:
		status = 401, code = "SshAuthenticationFailed";
		break;
	case -BERR_SSH_SHELL:
		status = 502, code = "ShellFailed";
		break;
	default: /* unreachable, or no SSH server answering there */
		status = 504, code = "VmUnreachable";
		break;
	}
	snprintf(principal, sizeof(principal), "user:%s", s->user);
	term_audit(principal, "connect", s->vm_id, code,
		   json_pack("{s:s,s:s,s:s,s:s}", "auth_type", s->auth_type, "target", s->target,
			     "source", s->source, "message", msg));
	respond_error(s->http, status, code, msg);
	s->http = NULL;
	s->ssh = NULL; /* already closing */
	sess_kill(s, true);
}

static void ssh_on_new_host_key(struct sshc *c, const char *type, const char *b64, void *ud)
{
	struct sess *s = ud;
	struct hostkey_job *j = calloc(1, sizeof(*j));

	if (!j)
		return;
	j->vm_id = strdup(s->vm_id);
	j->type = strdup(type);
	j->b64 = strdup(b64);
	j->work.data = j;
	if (!j->vm_id || !j->type || !j->b64 ||
	    uv_queue_work(T.loop, &j->work, hostkey_work, hostkey_done) < 0)
		hostkey_done(&j->work, 0);
}

static void ssh_on_data(struct sshc *c, const uint8_t *buf, size_t len, void *ud)
{
	struct sess *s = ud;
	int r;

	if (!s->ws)
		return;
	r = srv_ws_send(s->ws, false, buf, len);
	if (r > 0 && !s->out_paused && s->ssh) {
		s->out_paused = true;
		sshc_pause_output(s->ssh, true);
	}
}

static void ssh_on_writable(struct sshc *c, void *ud)
{
	pump_input(ud);
}

static void ssh_on_end(struct sshc *c, int exit_status, const char *reason, void *ud)
{
	struct sess *s = ud;

	sess_end_audit(s, exit_status >= 0 ? "the shell exited" : reason);
	if (exit_status >= 0)
		sess_close_ws(s, json_pack("{s:s,s:i}", "type", "exit", "exit_status", exit_status));
	else
		sess_close_ws(s, json_pack("{s:s,s:s}", "type", "closed", "reason", reason));
	s->ssh = NULL;
	sess_kill(s, true);
}

static const struct sshc_callbacks ssh_cb = {
	.on_ready = ssh_on_ready,
	.on_fail = ssh_on_fail,
	.on_new_host_key = ssh_on_new_host_key,
	.on_data = ssh_on_data,
	.on_writable = ssh_on_writable,
	.on_end = ssh_on_end,
};

static void start_connect(struct srv_conn *http, struct term_connect *tc)
{
	struct sess *s = calloc(1, sizeof(*s));
	int r;

	if (!s) {
		term_connect_free(tc);
		respond_error(http, 503, "ServiceUnavailable", "out of memory");
		return;
	}
	s->state = SESS_DIALING;
	s->http = http;
	s->conn = tc;
	s->user_id = tc->user_id;
	util_strlcpy(s->user, tc->user, sizeof(s->user));
	util_strlcpy(s->vm_id, tc->vm_id, sizeof(s->vm_id));
	util_strlcpy(s->auth_type, tc->auth_type, sizeof(s->auth_type));
	util_strlcpy(s->source, tc->source, sizeof(s->source));
	snprintf(s->target, sizeof(s->target), strchr(tc->p.ip, ':') ? "[%s]:%u" : "%s:%u",
		 tc->p.ip, tc->p.port);
	util_random_token(s->id, sizeof(s->id), 18);
	uv_timer_init(T.loop, &s->attach_timer);
	s->attach_timer.data = s;
	s->timer_inited = true;
	tc->p.host_keys = tc->host_keys;
	tc->p.n_host_keys = tc->n_host_keys;
	/* sshc_start owns the secrets from here on, whatever it returns. */
	r = sshc_start(T.loop, &tc->p, &ssh_cb, s, &s->ssh);
	tc->p.password = NULL;
	tc->p.key = NULL;
	if (r < 0) {
		respond_error(http, 503, "ServiceUnavailable", "could not start the SSH client");
		s->http = NULL;
		s->ssh = NULL;
		sess_kill(s, true);
	}
}

static void attach(struct srv_conn *c, struct term_attach *ta)
{
	struct sess *s = registry_find(ta->session_id);

	if (!s) {
		respond_error(c, 404, "ResourceNotFound", "no such session (it may have ended)");
		return;
	}
	if (s->user_id != ta->user_id) {
		respond_error(c, 403, "AuthorizationFailed",
			      "only the user who created this session may attach to it");
		return;
	}
	if (s->state != SESS_WAITING) {
		respond_error(c, 409, "Conflict", "a terminal is already attached to this session");
		return;
	}
	if (srv_ws_accept(c, "bastion.v1", &ws_cb, s) < 0)
		return;
	uv_timer_stop(&s->attach_timer);
	sess_set_state(s, SESS_ATTACHED);
	s->ws = c;
	s->out_paused = false;
	sshc_pause_output(s->ssh, false);
}

static void disconnect(struct srv_conn *c, struct term_attach *ta)
{
	struct sess *s = registry_find(ta->session_id);
	struct api_resp resp = { .status = 204 };
	char reason[128];

	/* Someone else's session answers like a missing one: no probing. */
	if (!s || s->user_id != ta->user_id) {
		respond_error(c, 404, "ResourceNotFound", "no such session (it may have ended)");
		return;
	}
	snprintf(reason, sizeof(reason), "disconnected by %s", ta->user);
	sess_end(s, reason);
	srv_respond(c, &resp);
}

void term_next(struct srv_conn *c, struct api_resp *resp, bool client_gone)
{
	enum api_next next = resp->next;
	void *arg = resp->next_arg;

	resp->next = API_NEXT_NONE;
	resp->next_arg = NULL;
	if (next == API_NEXT_CONNECT) {
		if (client_gone) {
			term_connect_free(arg);
			srv_respond(c, resp);
			return;
		}
		start_connect(c, arg);
	} else {
		if (client_gone)
			srv_respond(c, resp);
		else if (next == API_NEXT_ATTACH)
			attach(c, arg);
		else
			disconnect(c, arg);
		free(arg);
	}
}
