/* A session's start and the requests that reach it on its loop: the
 * continuations the API sets (connect: the limits, the SSH dial, the
 * VM's sign-in questions and answers; attach; disconnect), moving a
 * request to the session's loop, the SSH client's callbacks, and the
 * read-only views workers compute (term_sessions_json, term_counts).
 * Called by api/ (term.h) and by the SSH client (sshc callbacks). */
#include "terminal/internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/util.h"
#include "server/loops.h"
#include "server/srv.h"
#include "store/store.h"
#include "store/store_ops.h"
#include "terminal/challenge.h"

/* ---------- SSH side ---------- */

static void on_attach_timeout(uv_timer_t *t)
{
	struct sess *s = t->data;

	if (s->state != SESS_WAITING)
		return;
	log_info("session %s: not attached within %d s, closed", s->id,
		 TERM_ATTACH_WINDOW_MS / 1000);
	sess_end_audit(s, "not attached within 30 s");
	sess_kill(s, false);
}

static void dial_done(struct sess *s)
{
	metrics_connect_latency((double)(uv_hrtime() - s->dial_start_ns) / 1e9);
}

static void ssh_on_ready(struct sshc *c, void *ud)
{
	struct sess *s = ud;
	struct srv_conn *http;
	char terminal[128];

	dial_done(s);
	if (s->challenged) /* the sign-in is over: no more answers */
		term_challenge_remove(s->id);
	s->challenged = false;
	sess_wait_forget(s);
	/* Before registration: GET /sessions reads rec_id under the lock. A
	 * recording that cannot start ends the session: none goes unrecorded
	 * through a recording bastion. */
	if (term_rec_start(s, s->conn) < 0) {
		term_respond_error(s->http, 503, "ServiceUnavailable",
				   "the session's recording could not be started");
		s->http = NULL;
		sess_kill(s, false);
		return;
	}
	pthread_mutex_lock(&term_g.lock);
	term_g.dialing--;
	s->started = store_now();
	sess_set_state_locked(s, SESS_WAITING);
	term_registry_add(s);
	pthread_mutex_unlock(&term_g.lock);
	term_connect_free(s->conn);
	s->conn = NULL;
	/* Nothing is read from the VM until the browser is there to take it. */
	sshc_pause_output(c, true);
	s->out_paused = true;
	uv_timer_start(&s->timer, on_attach_timeout, TERM_ATTACH_WINDOW_MS, 0);
	snprintf(terminal, sizeof(terminal), "/api/v1/sessions/%s/terminal", s->id);
	http = s->http;
	s->http = NULL;
	term_connect_audit(s, "Created", NULL);
	/* The start recorded, then the 201 (at once on one instance). */
	sess_announce_open(s, http, 201,
			   json_pack("{s:{s:s,s:s,s:s,s:s,s:s,s:s,s:I}}", "session", "id", s->id,
				     "terminal", terminal, "vm", s->vm_id, "bastion", s->bastion_id,
				     "target", s->target, "auth_type", s->auth_type, "created_at",
				     (json_int_t)s->started));
}

/* The mismatch said the way the key came to be trusted (pinned in the VM's
 * host_keys, or recorded on the first connect), with the fingerprints
 * expected and offered, and how to accept a new key on purpose. */
static const char *hostkey_message(const struct sess *s, const char *msg, char *out, size_t size)
{
	const char *offered = msg ? strstr(msg, "it offered ") : NULL;
	char expected[400] = "", fp[160];
	size_t used = 0;

	if (!s->conn || !offered)
		return msg;
	offered += strlen("it offered ");
	for (size_t i = 0; i < s->conn->n_host_keys && i < 3; i++) {
		if (sshc_hostkey_fingerprint(s->conn->host_keys[i], fp, sizeof(fp)) < 0)
			continue;
		used += (size_t)snprintf(expected + used, sizeof(expected) - used, "%s%s",
					 used ? ", " : "", fp);
		if (used >= sizeof(expected))
			break;
	}
	if (s->conn->host_keys_pinned)
		snprintf(out, size,
			 "the VM's host key does not match the keys pinned in its host_keys (%s): "
			 "it offered %s. If the key changed on purpose, put the new key in the "
			 "VM's host_keys",
			 expected, offered);
	else
		snprintf(out, size,
			 "the VM's host key does not match the key recorded on its first connect "
			 "(%s): it offered %s. If the VM was reinstalled, a Contributor on the VM "
			 "forgets the recorded key (Forget recorded keys on the VM's page, or "
			 "DELETE /api/v1%s/host-keys) and the next connect records the new one",
			 expected, offered, s->vm_id);
	return out;
}

static void ssh_on_fail(struct sshc *c, int err, const char *msg, void *ud)
{
	struct sess *s = ud;
	const char *code;
	char text[1024];
	int status;

	switch (err) {
	case -BERR_HOSTKEY:
		status = 502, code = "HostKeyMismatch";
		msg = hostkey_message(s, msg, text, sizeof(text));
		break;
	case -BERR_SSH_AUTH:
		status = 401, code = "SshAuthenticationFailed";
		break;
	case -BERR_SSH_SHELL:
		status = 502, code = "ShellFailed";
		break;
	case -BERR_SSH_HANDSHAKE: /* an addition to docs/api.md "The checks" */
		status = 502, code = "SshHandshakeFailed";
		break;
	default: /* unreachable, or no SSH server answering there */
		status = 504, code = "VmUnreachable";
		break;
	}
	dial_done(s);
	term_connect_audit(s, code, msg);
	if (s->http) /* NULL when nobody answered the VM's questions in time */
		term_respond_error(s->http, status, code, msg);
	s->http = NULL;
	s->ssh = NULL; /* already closing */
	sess_kill(s, true);
}

/* The VM asks the user something while signing in: the request waiting
 * (the connect, or the previous answers) is answered 202 with the
 * questions, and the connect waits in the challenge table for
 * POST /sessions/{id}/answers (docs/api.md). */
static void ssh_on_challenge(struct sshc *c, const struct sshc_challenge *ch, void *ud)
{
	struct sess *s = ud;
	struct srv_conn *http;
	json_t *prompts = json_array(), *body = NULL;
	char answers[128];

	for (size_t i = 0; prompts && i < ch->n_prompts; i++)
		if (json_array_append_new(prompts,
					  json_pack("{s:s,s:b}", "prompt", ch->prompts[i].text,
						    "echo", ch->prompts[i].echo)) < 0)
			break;
	snprintf(answers, sizeof(answers), "/api/v1/sessions/%s/answers", s->id);
	if (prompts && json_array_size(prompts) == ch->n_prompts)
		body = json_pack("{s:{s:s,s:i,s:s,s:s,s:O,s:s,s:i}}", "challenge", "id", s->id,
				 "round", (int)ch->round, "name", ch->name, "instruction",
				 ch->instruction, "prompts", prompts, "answers", answers,
				 "expires_in_s", (int)(SSHC_ANSWER_TIMEOUT_MS / 1000));
	json_decref(prompts);
	if (!s->challenged && body && term_challenge_add(s->id, s->home->index, s) == 0)
		s->challenged = true;
	if (!body || !s->challenged || !s->http) {
		json_decref(body);
		term_connect_audit(s, "ServiceUnavailable", "could not pass on the VM's questions");
		if (s->http)
			term_respond_error(s->http, 503, "ServiceUnavailable",
					   "could not pass on the VM's sign-in questions");
		s->http = NULL;
		sess_kill(s, false);
		return;
	}
	/* Where it waits recorded, then the 202 (at once on one instance):
	 * the answers may reach another instance, which relays them here. */
	http = s->http;
	s->http = NULL;
	sess_announce_wait(s, http, 202, body);
}

static void ssh_on_new_host_key(struct sshc *c, const char *type, const char *b64, void *ud)
{
	struct sess *s = ud;

	term_record_host_key(s->vm_id, type, b64);
}

static void ssh_on_end(struct sshc *c, int exit_status, const char *reason, void *ud)
{
	struct sess *s = ud;

	sess_end_audit(s, exit_status >= 0 ? "the shell exited" : reason);
	if (exit_status >= 0)
		sess_close_ws(s,
			      json_pack("{s:s,s:i}", "type", "exit", "exit_status", exit_status));
	else
		sess_close_ws(s, json_pack("{s:s,s:s}", "type", "closed", "reason", reason));
	s->ssh = NULL;
	sess_kill(s, true);
}

static const struct sshc_callbacks ssh_cb = {
	.on_ready = ssh_on_ready,
	.on_fail = ssh_on_fail,
	.on_challenge = ssh_on_challenge,
	.on_new_host_key = ssh_on_new_host_key,
	.on_data = term_ssh_on_data,
	.on_writable = term_ssh_on_writable,
	.on_mark = term_ssh_on_mark,
	.on_end = ssh_on_end,
};

/* The checks (docs/api.md) run rows 1-8 on the worker; the limits are checked here, before
 * anything is dialled. (lock) NULL when within them, else the message of
 * the 429. */
const char *term_over_limit(int64_t user_id, char *msg, size_t size)
{
	int64_t mine = (int64_t)term_user_sessions(user_id);

	if ((int64_t)(term_g.count + term_g.dialing) >= term_g.lim.max_total) {
		snprintf(msg, size,
			 "this bastion has reached its limit of %lld sessions; try again later",
			 (long long)term_g.lim.max_total);
		return msg;
	}
	if (mine >= term_g.lim.max_per_user) {
		snprintf(msg, size, "you have %lld open sessions, the most allowed; end one first",
			 (long long)mine);
		return msg;
	}
	return NULL;
}

/* Admits s, a new session of s->user_id on loop l whose worker checks
 * passed at generation end_gen: refused (audited, http answered, nothing
 * counted; false) when the user was ended since, the loop shuts down, this
 * instance drains or cannot reach its store, or a limit is reached; else
 * counted (dialing, the user's, in use), given its id and timer and listed
 * among this instance's sessions, with http as its answer to come (true).
 * *ret_keepalive_s: the SSH keep-alive interval in force. The terminal's
 * connect and the native client's stream both come in here. */
bool term_sess_admit(struct term_loop *l, struct sess *s, struct srv_conn *http, uint64_t end_gen,
		     int64_t *ret_keepalive_s)
{
	const char *limit = NULL, *code = NULL;
	char msg[160];
	int status = 0;

	if ((limit = term_ended_since(l, s->user_id, end_gen)) != NULL) {
		/* Disabled or deleted after the worker's checks passed. */
		status = 401;
		code = "Unauthenticated";
	} else if (l->shutting_down) {
		status = 503;
		code = "ServiceUnavailable";
		limit = "the bastion is shutting down";
	} else if (term_cluster_draining()) {
		/* SIGTERM on a shared store: the others take new sessions. */
		status = 503;
		code = "ServiceUnavailable";
		limit = "this instance is draining; connect again (another instance)";
	} else if (term_cluster_store_lost()) {
		/* Fail closed: the others may be ending this instance's
		 * sessions in the store (cluster.c). */
		status = 503;
		code = "ServiceUnavailable";
		limit = "this instance cannot reach its store; try again (another instance)";
	} else {
		/* The check and the count in one step: loops connect at once. */
		pthread_mutex_lock(&term_g.lock);
		if ((limit = term_over_limit(s->user_id, msg, sizeof(msg))) != NULL) {
			status = 429;
			code = "TooManySessions";
		} else {
			term_g.dialing++;
			term_user_count(s);
			term_in_use_add(s);
			*ret_keepalive_s = term_g.lim.ssh_keepalive_s;
		}
		pthread_mutex_unlock(&term_g.lock);
	}
	if (code) {
		term_connect_audit(s, code, limit);
		term_respond_error(http, status, code, limit);
		return false;
	}
	s->http = http;
	util_random_token(s->id, sizeof(s->id), 18);
	uv_timer_init(l->loop, &s->timer);
	s->timer.data = s;
	s->timer_inited = true;
	s->dial_start_ns = uv_hrtime();
	term_mine_add(s);
	return true;
}

static void start_connect(struct srv_conn *http, struct term_connect *tc)
{
	struct term_loop *l = term_here();
	struct sess *s = calloc(1, sizeof(*s));
	int64_t keepalive_s = 0;
	int r;

	if (!s) {
		term_connect_free(tc);
		term_respond_error(http, 503, "ServiceUnavailable", "out of memory");
		return;
	}
	s->home = l;
	s->state = SESS_DIALING;
	s->user_id = tc->user_id;
	util_strlcpy(s->user, tc->user, sizeof(s->user));
	util_strlcpy(s->vm_id, tc->vm_id, sizeof(s->vm_id));
	util_strlcpy(s->bastion_id, tc->bastion_id, sizeof(s->bastion_id));
	util_strlcpy(s->auth_type, tc->auth_type, sizeof(s->auth_type));
	util_strlcpy(s->source, tc->source, sizeof(s->source));
	snprintf(s->target, sizeof(s->target), strchr(tc->p.ip, ':') ? "[%s]:%u" : "%s:%u",
		 tc->p.ip, tc->p.port);
	s->conn = tc;
	if (!term_sess_admit(l, s, http, tc->end_gen, &keepalive_s)) {
		term_connect_free(tc);
		free(s);
		return;
	}
	tc->p.host_keys = tc->host_keys;
	tc->p.n_host_keys = tc->n_host_keys;
	tc->p.keepalive_ms = (unsigned)keepalive_s * 1000u;
	/* sshc_start owns the secrets from here on, whatever it returns. */
	r = sshc_start(l->loop, &tc->p, &ssh_cb, s, &s->ssh);
	tc->p.password = NULL;
	tc->p.key = NULL;
	if (r < 0) {
		term_connect_audit(s, "ServiceUnavailable", "could not start the SSH client");
		term_respond_error(http, 503, "ServiceUnavailable",
				   "could not start the SSH client");
		s->http = NULL;
		s->ssh = NULL;
		sess_kill(s, true);
	}
}

/* Attach and disconnect run on the session's home loop (attach_or_disconnect moves the
 * connection there first), where nobody else may free it: the session id
 * if it lives on this loop, else NULL. */
static struct sess *find_here(const char *id)
{
	struct sess *s;

	pthread_mutex_lock(&term_g.lock);
	s = term_registry_find(id);
	if (s && s->home != term_here())
		s = NULL;
	pthread_mutex_unlock(&term_g.lock);
	return s;
}

static void attach(struct srv_conn *c, struct term_attach *ta)
{
	struct sess *s;

	s = find_here(ta->session_id);
	if (!s) {
		term_respond_error(c, 404, "ResourceNotFound",
				   "no such session (it may have ended)");
		return;
	}
	if (s->user_id != ta->user_id) {
		term_respond_error(c, 403, "AuthorizationFailed",
				   "only the user who created this session may attach to it");
		return;
	}
	if (s->state != SESS_WAITING) {
		term_respond_error(c, 409, "Conflict",
				   "a terminal is already attached to this session");
		return;
	}
	if (srv_ws_accept(c, "bastion.v1", &term_ws_cb, s) < 0)
		return;
	uv_timer_stop(&s->timer);
	sess_set_state(s, SESS_ATTACHED);
	s->ws = c;
	s->out_paused = false;
	s->page_paused = false;
	s->window = s->unacked = 0;
	sess_update_output(s);
	s->started_ms = s->last_input_ms = uv_now(s->home->loop);
	sess_arm(s);
	sess_record_attached(s);
}

/* The caller may see (and end) s: their own, or through a bastion they own. */
static bool may_manage(const struct term_attach *ta, const struct sess *s)
{
	return s->user_id == ta->user_id || term_owns_bastion(ta, s->bastion_id);
}

static void disconnect(struct srv_conn *c, struct term_attach *ta)
{
	char reason[128], principal[80];
	struct sess *s;

	s = find_here(ta->session_id);

	/* A session the caller may not manage answers like a missing one. */
	if (!s || !may_manage(ta, s)) {
		term_respond_error(c, 404, "ResourceNotFound",
				   "no such session (it may have ended)");
		return;
	}
	snprintf(reason, sizeof(reason), "disconnected by %s", ta->user);
	snprintf(principal, sizeof(principal), "user:%s", ta->user);
	term_queue_audit(principal, "session.disconnect", s->vm_id, "success",
			 json_pack("{s:s,s:s,s:s}", "session", s->id, "user", s->user, "bastion",
				   s->bastion_id));
	sess_end(s, reason);
	term_respond_json(c, 204, NULL);
}

int term_sessions_json(const struct term_attach *ta, json_t **ret)
{
	json_t *arr = json_array();
	int64_t now = store_now();
	static const char *const state_names[] = { "dialing", "waiting", "attached", "dead" };

	/* A snapshot of every loop's sessions, on the caller's thread: what is
	 * read here is fixed, changed under the lock, or atomic. */
	pthread_mutex_lock(&term_g.lock);
	for (unsigned b = 0; arr && b < BUCKETS; b++) {
		for (struct sess *s = term_g.buckets[b]; s; s = s->next_bucket) {
			if (!may_manage(ta, s))
				continue;
			json_t *o = json_pack(
				"{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:s,s:s}", "id",
				s->id, "kind", s->tunnel ? "tunnel" : "terminal", "user", s->user,
				"vm", s->vm_id, "target", s->target, "source", s->source,
				"auth_type", s->auth_type, "bastion", s->bastion_id, "started_at",
				(json_int_t)s->started, "duration_s",
				(json_int_t)(now - s->started), "bytes_to_vm",
				(json_int_t)atomic_load_explicit(&s->to_vm, memory_order_relaxed),
				"bytes_from_vm",
				(json_int_t)atomic_load_explicit(&s->from_vm, memory_order_relaxed),
				"state", state_names[s->state], "instance", term_instance_name());

			/* Its recording's ID (SPEC §8), when the bastion records. */
			if (o && s->rec_id[0])
				json_object_set_new(o, "recording", json_string(s->rec_id));
			json_array_append_new(arr, o);
		}
	}
	pthread_mutex_unlock(&term_g.lock);
	*ret = arr;
	return arr ? 0 : -ENOMEM;
}

void term_answers_free(struct term_answers *ta)
{
	if (!ta)
		return;
	for (size_t i = 0; i < ta->n; i++)
		util_free_secret(ta->answers[i]);
	free(ta->answers);
	free(ta);
}

/* On the waiting connect's home loop: the answers go to the VM, and c
 * waits for what follows (201, another 202, or the error). */
static void answer(struct srv_conn *c, struct term_answers *ta)
{
	struct sess *s = term_challenge_find(ta->session_id, term_here()->index);
	int r;

	if (!s || s->user_id != ta->user_id || s->state != SESS_DIALING) {
		term_respond_error(
			c, 404, "ResourceNotFound",
			"no sign-in waits for answers under this id (it may have timed out)");
		return;
	}
	if (s->http) {
		term_respond_error(c, 409, "Conflict",
				   "the previous answers are still being checked");
		return;
	}
	r = sshc_answer(s->ssh, ta->answers, ta->n);
	ta->n = 0; /* sshc_answer took and wiped them */
	if (r == -EINVAL) {
		term_respond_error(
			c, 400, "InvalidRequest",
			"answers: one answer for each prompt, of at most 1024 bytes each");
		return;
	}
	if (r < 0) {
		term_respond_error(
			c, 404, "ResourceNotFound",
			"no sign-in waits for answers under this id (it may have timed out)");
		return;
	}
	s->http = c;
	/* The connect-latency metric measures the bastion and the VM, not how
	 * long the user took to answer. */
	s->dial_start_ns = uv_hrtime();
}

void term_counts(size_t *ret_active, size_t *ret_dialing, unsigned *ret_loops)
{
	/* Every loop's sessions. */
	pthread_mutex_lock(&term_g.lock);
	*ret_active = term_g.count;
	*ret_dialing = term_g.dialing;
	pthread_mutex_unlock(&term_g.lock);
	*ret_loops = term_g.n_loops;
}

/* The session is another loop's: the connection moves there with its
 * continuation next, which runs again on that loop (true). When the move
 * fails the client is answered 503 here (false) and the caller frees arg. */
static bool move_home(struct srv_conn *c, srv_moved_fn *next, void *arg, unsigned home)
{
	if (srv_conn_move(c, home, next, arg) == 0)
		return true;
	term_respond_error(c, 503, "ServiceUnavailable",
			   "the session's event loop could not take the connection; try again");
	return false;
}

void term_connect_next(struct srv_conn *c, bool client_gone, void *arg)
{
	if (client_gone) {
		term_connect_free(arg);
		srv_release(c);
		return;
	}
	start_connect(c, arg);
}

void term_answers_next(struct srv_conn *c, bool client_gone, void *arg)
{
	struct term_answers *ta = arg;
	int home = client_gone ? -1 : term_challenge_home(ta->session_id);

	if (home >= 0 && home != loops_self()) {
		if (move_home(c, term_answers_next, arg, (unsigned)home))
			return;
	} else if (client_gone) {
		srv_release(c);
	} else {
		answer(c, ta);
	}
	term_answers_free(ta);
}

/* Attach and disconnect: on the session's home loop, where the
 * connection moves first. */
static void attach_or_disconnect(struct srv_conn *c, bool client_gone, struct term_attach *ta,
				 srv_moved_fn *self,
				 void (*run)(struct srv_conn *, struct term_attach *))
{
	if (client_gone) {
		srv_release(c);
	} else {
		int home = term_home_of(ta->session_id);

		if (home >= 0 && home != loops_self()) {
			if (move_home(c, self, ta, (unsigned)home))
				return;
		} else {
			run(c, ta);
		}
	}
	term_attach_free(ta);
}

void term_attach_next(struct srv_conn *c, bool client_gone, void *arg)
{
	attach_or_disconnect(c, client_gone, arg, term_attach_next, attach);
}

void term_disconnect_next(struct srv_conn *c, bool client_gone, void *arg)
{
	attach_or_disconnect(c, client_gone, arg, term_disconnect_next, disconnect);
}
