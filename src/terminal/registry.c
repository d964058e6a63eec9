/* The session registry: every loop's part (term_init, term_shutdown,
 * term_done, term_free), the table of registered sessions by ID and the
 * counts behind the limits (term_g, under its lock), the bastions in use
 * (read by workers), a session's end and reaping, ending a user's sessions
 * from any thread. Called by the other files of src/terminal
 * (internal.h) and, through term.h, by main.c, serve.c and api/. */
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

struct term_global term_g = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.lim = { .idle_timeout_s = 1800,
		 .idle_warning_s = 60,
		 .max_duration_s = 8 * 3600,
		 .max_per_user = 64,
		 .max_total = 10000,
		 .ssh_keepalive_s = 15 },
};

/* The calling loop thread's part. */
struct term_loop *term_here(void)
{
	return &term_g.loops[loops_self()];
}

struct term_limits term_limits_now(void)
{
	struct term_limits l;

	pthread_mutex_lock(&term_g.lock);
	l = term_g.lim;
	pthread_mutex_unlock(&term_g.lock);
	return l;
}

/* (lock) Other loops read the state of registered sessions. */
void sess_set_state_locked(struct sess *s, enum sess_state st)
{
	static const char *const names[] = { "dialing", "waiting", "attached", "dead" };

	log_debug("session %s: %s -> %s", s->id[0] ? s->id : "(new)", names[s->state], names[st]);
	s->state = st;
}

void sess_set_state(struct sess *s, enum sess_state st)
{
	pthread_mutex_lock(&term_g.lock);
	sess_set_state_locked(s, st);
	pthread_mutex_unlock(&term_g.lock);
}

static unsigned bucket_of(const char *id)
{
	unsigned h = 2166136261u;

	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 16777619u;
	return h % BUCKETS;
}

/* (lock) */
void term_registry_add(struct sess *s)
{
	unsigned b = bucket_of(s->id);

	s->next_bucket = term_g.buckets[b];
	term_g.buckets[b] = s;
	term_g.count++;
}

/* (lock) */
static void registry_remove(struct sess *s)
{
	struct sess **pp = &term_g.buckets[bucket_of(s->id)];

	for (; *pp; pp = &(*pp)->next_bucket) {
		if (*pp == s) {
			*pp = s->next_bucket;
			term_g.count--;
			return;
		}
	}
}

/* (lock) */
struct sess *term_registry_find(const char *id)
{
	for (struct sess *s = term_g.buckets[bucket_of(id)]; s; s = s->next_bucket)
		if (strcmp(s->id, id) == 0)
			return s;
	return NULL;
}

/* The loop session id lives on, or -1 when there is no such session. */
int term_home_of(const char *id)
{
	struct sess *s;
	int home;

	pthread_mutex_lock(&term_g.lock);
	s = term_registry_find(id);
	home = s ? (int)s->home->index : -1;
	pthread_mutex_unlock(&term_g.lock);
	return home;
}

/* (lock) */
static struct user_refs *user_refs_find(int64_t user_id)
{
	for (size_t i = 0; i < term_g.n_users; i++)
		if (term_g.users[i].user_id == user_id)
			return &term_g.users[i];
	return NULL;
}

/* (lock) */
size_t term_user_sessions(int64_t user_id)
{
	struct user_refs *u = user_refs_find(user_id);

	return u ? u->refs : 0;
}

/* (lock) */
void term_user_count(struct sess *s)
{
	struct user_refs *u = user_refs_find(s->user_id);

	if (!u) {
		if (term_g.n_users == term_g.cap_users) {
			size_t cap = term_g.cap_users ? term_g.cap_users * 2 : 16;
			struct user_refs *p = reallocarray(term_g.users, cap, sizeof(*p));

			if (!p)
				return; /* the limit then misses this one */
			term_g.users = p;
			term_g.cap_users = cap;
		}
		u = &term_g.users[term_g.n_users++];
		u->user_id = s->user_id;
		u->refs = 0;
	}
	u->refs++;
	s->user_counted = true;
}

/* (lock) */
static void user_uncount(struct sess *s)
{
	struct user_refs *u = s->user_counted ? user_refs_find(s->user_id) : NULL;

	s->user_counted = false;
	if (u && --u->refs == 0)
		*u = term_g.users[--term_g.n_users];
}

void term_mine_add(struct sess *s)
{
	struct term_loop *l = s->home;

	s->next_mine = l->mine;
	if (l->mine)
		l->mine->prev_mine = s;
	l->mine = s;
}

static void mine_remove(struct sess *s)
{
	struct term_loop *l = s->home;

	if (s->prev_mine)
		s->prev_mine->next_mine = s->next_mine;
	else if (l->mine == s)
		l->mine = s->next_mine;
	if (s->next_mine)
		s->next_mine->prev_mine = s->prev_mine;
	s->prev_mine = s->next_mine = NULL;
}

/* ---------- bastions in use (read by workers) ---------- */

/* (lock) */
void term_in_use_add(struct sess *s)
{
	size_t i;

	for (i = 0; i < term_g.n_in_use; i++)
		if (strcmp(term_g.in_use[i].id, s->bastion_id) == 0)
			break;
	if (i == term_g.n_in_use) {
		if (term_g.n_in_use == term_g.cap_in_use) {
			size_t cap = term_g.cap_in_use ? term_g.cap_in_use * 2 : 16;
			struct in_use *p = reallocarray(term_g.in_use, cap, sizeof(*p));

			if (!p)
				return; /* listed to its own user only */
			term_g.in_use = p;
			term_g.cap_in_use = cap;
		}
		util_strlcpy(term_g.in_use[i].id, s->bastion_id, sizeof(term_g.in_use[i].id));
		term_g.in_use[i].refs = 0;
		term_g.n_in_use++;
	}
	term_g.in_use[i].refs++;
	s->in_use_counted = true;
}

/* (lock) */
static void in_use_remove(struct sess *s)
{
	if (!s->in_use_counted)
		return;
	s->in_use_counted = false;
	for (size_t i = 0; i < term_g.n_in_use; i++) {
		if (strcmp(term_g.in_use[i].id, s->bastion_id) != 0)
			continue;
		if (--term_g.in_use[i].refs == 0)
			term_g.in_use[i] = term_g.in_use[--term_g.n_in_use];
		break;
	}
}

int term_bastions_in_use(char ***ret, size_t *ret_n)
{
	char **v;
	size_t n;
	int r = 0;

	pthread_mutex_lock(&term_g.lock);
	n = term_g.n_in_use;
	v = calloc(n + 1, sizeof(*v));
	for (size_t i = 0; v && i < n; i++) {
		v[i] = strdup(term_g.in_use[i].id);
		if (!v[i])
			r = -ENOMEM;
	}
	pthread_mutex_unlock(&term_g.lock);
	if (!v)
		return -ENOMEM;
	if (r < 0) {
		for (size_t i = 0; i < n; i++)
			free(v[i]);
		free(v);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

void term_attach_free(struct term_attach *ta)
{
	if (!ta)
		return;
	for (size_t i = 0; i < ta->n_owned; i++)
		free(ta->owned[i]);
	free(ta->owned);
	free(ta);
}

bool term_owns_bastion(const struct term_attach *ta, const char *bastion_id)
{
	for (size_t i = 0; i < ta->n_owned; i++)
		if (strcmp(ta->owned[i], bastion_id) == 0)
			return true;
	return false;
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
	sodium_memzero(c->rec_key, sizeof(c->rec_key));
	free(c);
}

static void on_timer_closed(uv_handle_t *h)
{
	free(h->data);
}

static void reap(uv_check_t *h)
{
	struct term_loop *l = h->data;

	while (l->dead) {
		struct sess *s = l->dead;

		l->dead = s->next_dead;
		term_rec_stop(s);
		term_connect_free(s->conn);
		if (s->pending)
			sodium_memzero(s->pending, s->pending_len);
		free(s->pending);
		if (s->timer_inited)
			uv_close((uv_handle_t *)&s->timer, on_timer_closed);
		else
			free(s);
	}
	uv_check_stop(&l->reaper);
}

/* The end of a session whose shell was open: its row and audit record. */
void sess_end_audit(struct sess *s, const char *reason)
{
	char principal[80];

	snprintf(principal, sizeof(principal), "user:%s", s->user);
	term_queue_audit(
		principal, "session.end", s->vm_id, "ended",
		json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I}", "session", s->id, "kind",
			  s->tunnel ? "tunnel" : "terminal", "reason", reason, "instance",
			  term_instance_name(), "bastion", s->bastion_id, "duration_s",
			  (json_int_t)(store_now() - s->started), "bytes_from_vm",
			  (json_int_t)atomic_load_explicit(&s->from_vm, memory_order_relaxed),
			  "bytes_to_vm",
			  (json_int_t)atomic_load_explicit(&s->to_vm, memory_order_relaxed)));
	sess_record(s, reason);
}

/* A connect attempt that ended on the loop (rows 9-12, limits). */
void term_connect_audit(struct sess *s, const char *code, const char *msg)
{
	char principal[80];

	snprintf(principal, sizeof(principal), "user:%s", s->user);
	metrics_connect_result(code);
	term_queue_audit(principal, "connect", s->vm_id, code,
			 json_pack("{s:s,s:s,s:s,s:s,s:s,s:s*,s:s*}", "auth_type", s->auth_type,
				   "target", s->target, "source", s->source, "instance",
				   term_instance_name(), "bastion", s->bastion_id, "session",
				   strcmp(code, "Created") == 0 ? s->id : NULL, "message", msg));
}

/* Ends s: closes what is still open and queues it for the reaper. The SSH
 * side is closed unless ssh_done (it ended by itself). */
void sess_kill(struct sess *s, bool ssh_done)
{
	struct term_loop *l = s->home;

	if (s->state == SESS_DEAD)
		return;
	pthread_mutex_lock(&term_g.lock);
	if (s->state != SESS_DIALING)
		registry_remove(s);
	else
		term_g.dialing--;
	user_uncount(s);
	in_use_remove(s);
	sess_set_state_locked(s, SESS_DEAD);
	pthread_mutex_unlock(&term_g.lock);
	mine_remove(s);
	term_watch_end(s, NULL);
	if (s->challenged)
		term_challenge_remove(s->id);
	s->challenged = false;
	sess_wait_forget(s);
	if (s->timer_inited)
		uv_timer_stop(&s->timer);
	if (s->ssh && !ssh_done)
		sshc_close(s->ssh);
	s->ssh = NULL;
	if (s->tunnel)
		term_stream_kill(s);
	s->next_dead = l->dead;
	l->dead = s;
	if (!l->done)
		uv_check_start(&l->reaper, reap);
}

static void end_user_sessions(int64_t user_id, const char *reason);

static void remember_ended(struct term_loop *l, const struct end_req *r)
{
	uint64_t now = uv_now(l->loop);
	size_t keep = 0;

	for (size_t i = 0; i < l->n_ended; i++)
		if (now - l->ended[i].at_ms < ENDED_KEEP_MS)
			l->ended[keep++] = l->ended[i];
	l->n_ended = keep;
	if (l->n_ended == ENDED_MAX) /* the oldest goes */
		memmove(l->ended, l->ended + 1, --l->n_ended * sizeof(l->ended[0]));
	l->ended[l->n_ended] =
		(struct ended_user){ .user_id = r->user_id, .gen = r->gen, .at_ms = now };
	util_strlcpy(l->ended[l->n_ended].reason, r->reason, sizeof(l->ended[0].reason));
	l->n_ended++;
}

/* The reason user_id was ended after generation gen, else NULL. */
const char *term_ended_since(struct term_loop *l, int64_t user_id, uint64_t gen)
{
	for (size_t i = l->n_ended; i-- > 0;)
		if (l->ended[i].user_id == user_id && l->ended[i].gen > gen &&
		    uv_now(l->loop) - l->ended[i].at_ms < ENDED_KEEP_MS)
			return l->ended[i].reason;
	return NULL;
}

/* A post from term_end_user_sessions, on each loop. */
static void on_end_req(void *arg)
{
	struct end_req *r = arg;

	remember_ended(term_here(), r);
	end_user_sessions(r->user_id, r->reason);
	free(r);
}

int term_init(struct store *store)
{
	unsigned n = loops_count();

	if (n == 0 || term_g.loops)
		return -EINVAL;
	term_g.loops = calloc(n, sizeof(*term_g.loops));
	if (!term_g.loops)
		return -ENOMEM;
	term_g.n_loops = n;
	term_g.store = store;
	for (unsigned i = 0; i < n; i++) {
		struct term_loop *l = &term_g.loops[i];

		l->index = i;
		l->loop = loops_uv(i);
		uv_check_init(l->loop, &l->reaper);
		l->reaper.data = l;
		uv_unref((uv_handle_t *)&l->reaper);
		term_rec_loop_init(l);
	}
	return 0;
}

void term_end_user_sessions(int64_t user_id, const char *reason)
{
	/* After the store change that ended the user, before the loops hear:
	 * a request that read a lower generation was authorised before it. */
	uint64_t gen = atomic_fetch_add(&term_g.end_gen, 1) + 1;

	for (unsigned i = 0; i < term_g.n_loops; i++) {
		struct end_req *r = calloc(1, sizeof(*r));

		if (!r)
			return;
		r->user_id = user_id;
		r->gen = gen;
		util_strlcpy(r->reason, reason, sizeof(r->reason));
		/* A loop that closed has no session left to end. */
		if (loops_post(i, on_end_req, r) < 0)
			free(r);
	}
}

void term_send_control(struct sess *s, json_t *msg)
{
	char *text = json_dumps(msg, JSON_COMPACT);

	json_decref(msg);
	if (text && s->ws)
		srv_ws_send(s->ws, true, text, strlen(text));
	free(text);
}

/* Tells the browser why the session ends and closes the socket. */
void sess_close_ws(struct sess *s, json_t *msg)
{
	struct srv_conn *ws = s->ws;

	if (!ws) {
		json_decref(msg);
		return;
	}
	term_send_control(s, msg);
	/* s may be reaped before the close frame is written (a slow or
	 * relayed socket): the connection must not call back into it. */
	s->ws = NULL;
	srv_ws_close_detach(ws, 1000, "session ended");
}

/* Ends s with a reason the browser is told and the audit records. */
void sess_end(struct sess *s, const char *reason)
{
	sess_end_audit(s, reason);
	sess_close_ws(s, json_pack("{s:s,s:s}", "type", "closed", "reason", reason));
	sess_kill(s, false);
}

void term_respond_json(struct srv_conn *c, int status, json_t *body)
{
	struct srv_response r = { .status = status, .headers = "Cache-Control: no-store\r\n" };
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;

	/* As the API answers (api_respond): compact JSON, never stored. */
	if (text) {
		r.content_type = "application/json";
		r.body = text;
		r.len = strlen(text);
	}
	srv_respond(c, &r);
	free(text);
	json_decref(body);
}

void term_respond_error(struct srv_conn *http, int status, const char *code, const char *msg)
{
	term_respond_json(http, status,
			  json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg));
}

/* Answers this loop's connects still dialling (of user_id, or all when it
 * is -1) with the error, and drops them: they never open. */
static void refuse_dialing(int64_t user_id, int status, const char *code, const char *msg)
{
	struct sess *s, *next;

	for (s = term_here()->mine; s; s = next) {
		next = s->next_mine;
		if (s->state != SESS_DIALING || (user_id >= 0 && s->user_id != user_id))
			continue;
		term_connect_audit(s, code, msg);
		if (s->http) /* NULL while the user answers the VM's questions */
			term_respond_error(s->http, status, code, msg);
		s->http = NULL;
		sess_kill(s, false);
	}
}

/* Ends this loop's sessions of user_id (all when it is -1). */
static void end_user_sessions(int64_t user_id, const char *reason)
{
	struct sess *s, *next;

	for (s = term_here()->mine; s; s = next) {
		next = s->next_mine;
		if (s->state != SESS_DIALING && (user_id < 0 || s->user_id == user_id))
			sess_end(s, reason);
	}
	if (user_id >= 0) /* term_shutdown answers the dialling ones itself */
		refuse_dialing(user_id, 401, "Unauthenticated", reason);
}

uint64_t term_end_generation(void)
{
	return atomic_load(&term_g.end_gen);
}

void term_shutdown(const char *reason)
{
	term_here()->shutting_down = true;
	end_user_sessions(-1, reason);
	/* Connects still dialling: answered now, not after the drain. */
	refuse_dialing(-1, 503, "ServiceUnavailable", reason);
}

void term_done(void)
{
	struct term_loop *l = term_here();

	if (l->done)
		return;
	if (!l->shutting_down)
		term_shutdown("the bastion is shutting down");
	l->done = true;
	reap(&l->reaper);
	uv_close((uv_handle_t *)&l->reaper, NULL);
	term_rec_loop_done(l);
}

void term_free(void)
{
	/* The loops are gone, their workers done: what the store could not
	 * take meanwhile gets a last chance. */
	pend_stop();
	pthread_mutex_lock(&term_g.lock);
	free(term_g.in_use);
	term_g.in_use = NULL;
	term_g.n_in_use = term_g.cap_in_use = 0;
	free(term_g.users);
	term_g.users = NULL;
	term_g.n_users = term_g.cap_users = 0;
	pthread_mutex_unlock(&term_g.lock);
	free(term_g.loops);
	term_g.loops = NULL;
	term_g.n_loops = 0;
}
