/* Live watching (SPEC §8): GET /sessions/{id}/watch, a read-only copy of a
 * session's output for an Owner or Auditor of its bastion. Owns the
 * watchers of each session, on the session's loop.
 *
 * A watcher gets the VM's output as the session's own browser gets it,
 * framed from the same buffer (srv_ws_send_binary encrypts it at once, so
 * one read serves every socket), and nothing it sends is read: frames
 * from it are dropped. Watching never slows the session: a watcher whose
 * socket holds more than SRV_WS_HIGH_WATER unsent is dropped at once,
 * never waited for. The watched browser is told who watches, and when they
 * stop ({"type":"notice"}); both are audited. */
#include "terminal/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "server/loops.h"
#include "server/srv.h"

struct watcher {
	struct watcher *next; /* the session's list (NULL once unlinked) */
	struct sess *s;       /* NULL once unlinked */
	struct srv_conn *ws;
	char name[65];
};

static void notice(struct sess *s, const char *name, const char *what)
{
	char msg[128];

	snprintf(msg, sizeof(msg), "%s %s", name, what);
	term_send_control(s, json_pack("{s:s,s:s}", "type", "notice", "message", msg));
}

static void audit_watch(struct sess *s, const char *name, const char *result, const char *why)
{
	char principal[80];

	snprintf(principal, sizeof(principal), "user:%s", name);
	term_queue_audit(principal, "session.watch", s->vm_id, result,
			 json_pack("{s:s,s:s,s:s,s:s?}", "session", s->id, "user", s->user,
				   "bastion", s->bastion_id, "reason", why));
}

static void unlink_watcher(struct watcher *w)
{
	struct watcher **pp;

	if (!w->s)
		return;
	for (pp = &w->s->watchers; *pp; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
	w->s = NULL;
	w->next = NULL;
}

/* Stops w: unlinked, its socket told why and closed; freed by on_close. */
static void drop(struct watcher *w, const char *why, bool tell_session)
{
	struct sess *s = w->s;
	char *text;
	json_t *msg = json_pack("{s:s,s:s}", "type", "closed", "reason", why);

	unlink_watcher(w);
	if (s && tell_session) {
		notice(s, w->name, "stopped watching");
		audit_watch(s, w->name, "stopped", why);
	}
	text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
	json_decref(msg);
	if (text && w->ws)
		srv_ws_send(w->ws, true, text, strlen(text));
	free(text);
	if (w->ws)
		srv_ws_close(w->ws, 1000, "watching stopped");
}

static void w_on_binary(void *ud, const uint8_t *buf, size_t len)
{
	/* Output only: a watcher types nothing into the session. */
}

static void w_on_text(void *ud, const char *buf, size_t len)
{
}

static void w_on_drain(void *ud)
{
}

static void w_on_close(void *ud, const char *why)
{
	struct watcher *w = ud;

	w->ws = NULL;
	if (w->s) {
		struct sess *s = w->s;

		unlink_watcher(w);
		notice(s, w->name, "stopped watching");
		audit_watch(s, w->name, "stopped", "the watcher closed");
	}
	free(w);
}

static const struct srv_ws_cb watch_cb = {
	.on_binary = w_on_binary,
	.on_text = w_on_text,
	.on_drain = w_on_drain,
	.on_close = w_on_close,
};

void term_watch_output(struct sess *s, uint8_t *buf, size_t len)
{
	struct watcher *w = s->watchers, *next;

	for (; w; w = next) {
		int r;

		next = w->next;
		r = srv_ws_send_binary(w->ws, buf, len);
		if (r > 0)
			drop(w, "the watcher fell behind the session's output", true);
		else if (r < 0)
			unlink_watcher(w); /* the socket is going: on_close frees it */
	}
}

void term_watch_end(struct sess *s, const char *reason)
{
	while (s->watchers)
		drop(s->watchers, reason ? reason : "the session ended", false);
}

/* On the session's home loop. */
static void watch(struct srv_conn *c, struct term_attach *ta)
{
	struct sess *s = NULL;
	struct watcher *w;

	pthread_mutex_lock(&term_g.lock);
	s = term_registry_find(ta->session_id);
	if (s && s->home != term_here())
		s = NULL;
	pthread_mutex_unlock(&term_g.lock);
	/* Not the caller's to watch answers like a missing one. */
	if (!s || !term_owns_bastion(ta, s->bastion_id) || s->state != SESS_ATTACHED) {
		term_respond_error(
			c, 404, "ResourceNotFound",
			"no such session to watch (it may have ended or not be attached yet)");
		return;
	}
	if (!(w = calloc(1, sizeof(*w)))) {
		term_respond_error(c, 503, "ServiceUnavailable", "out of memory");
		return;
	}
	util_strlcpy(w->name, ta->user, sizeof(w->name));
	if (srv_ws_accept(c, "bastion.v1", &watch_cb, w) < 0) {
		free(w);
		return;
	}
	w->ws = c;
	w->s = s;
	w->next = s->watchers;
	s->watchers = w;
	notice(s, w->name, "is watching");
	audit_watch(s, w->name, "started", NULL);
}

void term_watch_next(struct srv_conn *c, bool client_gone, void *arg)
{
	struct term_attach *ta = arg;

	if (client_gone) {
		srv_release(c);
	} else {
		int home = term_home_of(ta->session_id);

		if (home >= 0 && home != loops_self()) {
			if (srv_conn_move(c, (unsigned)home, term_watch_next, ta) == 0)
				return;
			term_respond_error(
				c, 503, "ServiceUnavailable",
				"the session's event loop could not take the connection; try again");
		} else {
			watch(c, ta);
		}
	}
	term_attach_free(ta);
}
