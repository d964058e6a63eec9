/* PostgreSQL backend: the instances table and the live-session registry
 * (store_cluster.h). Several instances write here at once: a name is
 * claimed under a row lock (or by the primary key when new), a lost
 * instance is marked by one conditional UPDATE (of several survivors, the
 * one whose update changed the row records its sessions' ends, so they
 * are recorded and audited once), and a request to end a session is
 * followed by a NOTIFY on channel "bastion_session_end" with the holder's
 * name as payload, delivered at COMMIT. */
#include "store/pg_internal.h"
#include "store/store_cluster.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"

static const char *val(const PGresult *res, int r, int c)
{
	const char *v = pg_val(res, r, c);

	return v ? v : "";
}

/* Ends the open sessions of instance at now with reason, with an audit
 * record each (inside the caller's transaction). */
static int end_sessions_of(struct store *s, const char *instance, int64_t now, const char *reason,
			   int *ret_n)
{
	struct pg_num t;
	const char *p[] = { instance, pg_num(&t, now), reason };
	PGresult *res = NULL;
	int r = pg_q(s, &res,
		     "UPDATE term_sessions SET ended_at = $2, end_reason = $3 WHERE instance = $1"
		     " AND ended_at IS NULL RETURNING id, \"user\", vm, started_at, bytes_to_vm,"
		     " bytes_from_vm, bastion",
		     3, p);

	for (int i = 0; r == 0 && i < PQntuples(res); i++) {
		struct store_session_ended e = { .id = val(res, i, 0),
						 .user = val(res, i, 1),
						 .vm = val(res, i, 2),
						 .bastion = val(res, i, 6),
						 .started_at = pg_i64(res, i, 3),
						 .bytes_to_vm = pg_i64(res, i, 4),
						 .bytes_from_vm = pg_i64(res, i, 5) };

		if ((r = store_session_end_audit(s, pg_audit, &e, instance, reason, now)) == 0)
			(*ret_n)++;
	}
	PQclear(res);
	/* Its recordings too: closed as interrupted, not "recording" forever. */
	if (r == 0)
		r = pg_rec_interrupt(s, instance, now, reason, NULL);
	return r;
}

static int claim_tx(struct store *s, void *ud)
{
	struct store_claim *x = ud;
	struct pg_num t;
	const char *p[] = { x->in->name, pg_num(&t, x->now), x->in->advertise_url,
			    x->in->cert_sha256 };
	PGresult *res = NULL;
	bool exists;
	int r = pg_row(s, &res, "SELECT state, last_seen FROM instances WHERE name = $1 FOR UPDATE",
		       1, p);

	if (r < 0 && r != -ENOENT)
		return r;
	exists = r == 0;
	if (exists && strcmp(val(res, 0, 0), "lost") != 0 &&
	    pg_i64(res, 0, 1) >= x->now - x->lease_s)
		r = -EEXIST;
	else
		r = 0;
	PQclear(res);
	if (r < 0)
		return r;
	if ((r = end_sessions_of(s, x->in->name, x->now, x->reason, &x->ended)) < 0)
		return r;
	/* A new name: of two processes claiming it at once, the primary key
	 * refuses the second (-EEXIST). */
	r = pg_q(
		s, NULL,
		exists ? "UPDATE instances SET state = 'up', started_at = $2, last_seen = $2,"
			 " advertise_url = $3, cert_sha256 = $4 WHERE name = $1"
		       : "INSERT INTO instances (name, state, started_at, last_seen, advertise_url,"
			 " cert_sha256) VALUES ($1, 'up', $2, $2, $3, $4)",
		4, p);
	return r;
}

int pg_instance_claim(struct store *s, const struct store_instance *in, int64_t now,
		      int64_t lease_s, const char *reason, int *ret_ended)
{
	return store_instance_claim_run(s, pg_tx, claim_tx, in, now, lease_s, reason, ret_ended);
}

int pg_instance_heartbeat(struct store *s, const char *name, const char *state, int64_t now)
{
	struct pg_num t;
	const char *p[] = { name, state, pg_num(&t, now) };
	PGresult *res = NULL;
	int r = pg_q(s, &res,
		     "UPDATE instances SET last_seen = $3, state = $2 WHERE name = $1"
		     " AND state <> 'lost'",
		     3, p);

	if (r == 0 && pg_changes(res) != 1)
		r = -ENOENT;
	PQclear(res);
	return r;
}

int pg_instance_foreach(struct store *s, int (*fn)(const struct store_instance *in, void *ud),
			void *ud)
{
	PGresult *res = NULL;
	int r = pg_q(s, &res,
		     "SELECT i.name, i.state, i.started_at, i.last_seen, i.advertise_url,"
		     " i.cert_sha256, (SELECT count(*) FROM term_sessions t WHERE t.instance ="
		     " i.name AND t.ended_at IS NULL) FROM instances i ORDER BY i.name",
		     0, NULL);

	for (int i = 0; r == 0 && i < PQntuples(res); i++) {
		struct store_instance in = { .started_at = pg_i64(res, i, 2),
					     .last_seen = pg_i64(res, i, 3),
					     .sessions = pg_i64(res, i, 6) };

		util_strlcpy(in.name, val(res, i, 0), sizeof(in.name));
		util_strlcpy(in.state, val(res, i, 1), sizeof(in.state));
		util_strlcpy(in.advertise_url, val(res, i, 4), sizeof(in.advertise_url));
		util_strlcpy(in.cert_sha256, val(res, i, 5), sizeof(in.cert_sha256));
		if ((r = fn(&in, ud)) != 0)
			r = r < 0 ? r : -ECANCELED;
	}
	PQclear(res);
	return r;
}

static int reap_tx(struct store *s, void *ud)
{
	struct store_reap *x = ud;
	struct pg_num t;
	const char *p[] = { x->self, pg_num(&t, x->now - x->lease_s) };
	PGresult *res = NULL;
	/* Row locks make it one winner per instance: a second survivor's
	 * UPDATE waits for the first to commit, then finds the row 'lost'. */
	int r = pg_q(s, &res,
		     "UPDATE instances SET state = 'lost' WHERE state <> 'lost' AND last_seen < $2"
		     " AND name <> $1 RETURNING name",
		     2, p);

	for (int i = 0; r == 0 && i < PQntuples(res); i++) {
		x->lost++;
		r = end_sessions_of(s, val(res, i, 0), x->now, "instance lost", &x->ended);
	}
	PQclear(res);
	return r;
}

int pg_instance_reap(struct store *s, const char *self, int64_t now, int64_t lease_s, int *ret_lost,
		     int *ret_ended)
{
	return store_instance_reap_run(s, pg_tx, reap_tx, self, now, lease_s, ret_lost, ret_ended);
}

int pg_instance_delete(struct store *s, const char *name)
{
	const char *p[] = { name };

	return pg_q(s, NULL, "DELETE FROM instances WHERE name = $1", 1, p);
}

int pg_session_attached(struct store *s, const char *id)
{
	const char *p[] = { id };

	return pg_q(s, NULL, "UPDATE term_sessions SET attached = true WHERE id = $1", 1, p);
}

int pg_session_foreach_open(struct store *s, const char *except,
			    int (*fn)(const struct store_live_session *ls, void *ud), void *ud)
{
	const char *p[] = { except };
	PGresult *res = NULL;
	int r = pg_q(
		s, &res,
		"SELECT id, \"user\", vm, bastion, target, source, auth_type, instance,"
		" started_at, attached FROM term_sessions WHERE ended_at IS NULL AND instance"
		" IS NOT NULL AND ($1::text IS NULL OR instance <> $1) ORDER BY started_at, id",
		1, p);

	for (int i = 0; r == 0 && i < PQntuples(res); i++) {
		struct store_live_session ls = {
			.id = val(res, i, 0),
			.user = val(res, i, 1),
			.vm = val(res, i, 2),
			.bastion = val(res, i, 3),
			.target = val(res, i, 4),
			.source = val(res, i, 5),
			.auth_type = val(res, i, 6),
			.instance = val(res, i, 7),
			.started_at = pg_i64(res, i, 8),
			.attached = strcmp(val(res, i, 9), "t") == 0,
		};

		if ((r = fn(&ls, ud)) != 0)
			r = r < 0 ? r : -ECANCELED;
	}
	PQclear(res);
	return r;
}

static int end_request_tx(struct store *s, void *ud)
{
	struct store_end_request *x = ud;
	struct pg_num t;
	char instance[STORE_INSTANCE_NAME_MAX];
	const char *p[] = { x->id, x->self };
	const char *q[] = { x->id, instance, x->reason, pg_num(&t, store_now()) };
	PGresult *res = NULL;
	int r = pg_row(s, &res,
		       "SELECT instance, \"user\", bastion FROM term_sessions WHERE id = $1"
		       " AND ended_at IS NULL AND instance IS NOT NULL AND instance <> $2",
		       2, p);

	if (r == 0) {
		util_strlcpy(instance, val(res, 0, 0), sizeof(instance));
		store_end_request_found(x, instance, val(res, 0, 1), val(res, 0, 2));
	}
	PQclear(res);
	if (r < 0)
		return r;
	r = pg_q(s, NULL,
		 "INSERT INTO session_end_requests (session_id, instance, reason, requested_at)"
		 " VALUES ($1, $2, $3, $4) ON CONFLICT (session_id) DO NOTHING",
		 4, q);
	if (r == 0)
		r = pg_q(s, NULL, "SELECT pg_notify('bastion_session_end', $1)", 1, q + 1);
	return r;
}

int pg_session_end_request(struct store *s, const char *id, const char *self, const char *reason,
			   char *ret_instance, char *ret_user, char *ret_bastion)
{
	struct store_end_request x = { id, self, reason, ret_instance, ret_user, ret_bastion };

	return pg_tx(s, end_request_tx, &x);
}

struct endreq_user {
	const char *user, *self, *reason;
	int n;
};

static int end_request_user_tx(struct store *s, void *ud)
{
	struct endreq_user *x = ud;
	struct pg_num t;
	const char *p[] = { x->user, x->self, x->reason, pg_num(&t, store_now()) };
	PGresult *res = NULL;
	int r = pg_q(s, &res,
		     "INSERT INTO session_end_requests (session_id, instance, reason, requested_at)"
		     " SELECT id, instance, $3, $4 FROM term_sessions WHERE \"user\" = $1"
		     " AND ended_at IS NULL AND instance IS NOT NULL AND instance <> $2"
		     " ON CONFLICT (session_id) DO NOTHING RETURNING instance",
		     4, p);

	for (int i = 0; r == 0 && i < PQntuples(res); i++) {
		const char *q[] = { val(res, i, 0) };

		x->n++;
		r = pg_q(s, NULL, "SELECT pg_notify('bastion_session_end', $1)", 1, q);
	}
	PQclear(res);
	return r;
}

int pg_session_end_request_user(struct store *s, const char *user, const char *self,
				const char *reason, int *ret_n)
{
	struct endreq_user x = { user, self, reason, 0 };
	int r = pg_tx(s, end_request_user_tx, &x);

	if (r == 0 && ret_n)
		*ret_n = x.n;
	return r;
}

int pg_session_end_requests_take(struct store *s, const char *instance,
				 int (*fn)(const char *id, const char *reason, void *ud), void *ud)
{
	const char *p[] = { instance };
	PGresult *res = NULL;
	int r = pg_q(s, &res,
		     "DELETE FROM session_end_requests WHERE instance = $1 RETURNING session_id,"
		     " reason",
		     1, p);

	for (int i = 0; r == 0 && i < PQntuples(res); i++)
		if ((r = fn(val(res, i, 0), val(res, i, 1), ud)) > 0)
			r = 0;
	PQclear(res);
	return r;
}

/* ---------- LISTEN ---------- */

struct store_listener {
	PGconn *c;
};

int pg_listen_open(struct store *s, const char *channel, struct store_listener **ret)
{
	struct store_listener *l = calloc(1, sizeof(*l));
	PGresult *res = NULL;
	char *ident = NULL, *sql = NULL;
	int r = -BERR_STORE;

	*ret = NULL;
	if (!l)
		return -ENOMEM;
	l->c = pg_connect_new(s);
	if (!l->c || PQstatus(l->c) != CONNECTION_OK)
		goto out;
	ident = PQescapeIdentifier(l->c, channel, strlen(channel));
	if (!ident || asprintf(&sql, "LISTEN %s", ident) < 0) {
		sql = NULL;
		r = -ENOMEM;
		goto out;
	}
	res = PQexec(l->c, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK || PQsetnonblocking(l->c, 1) != 0)
		goto out;
	*ret = l;
	l = NULL;
	r = 0;
out:
	PQclear(res);
	free(sql);
	PQfreemem(ident);
	store_listener_free(l);
	return r;
}

int store_listener_fd(const struct store_listener *l)
{
	return PQsocket(l->c);
}

int store_listener_read(struct store_listener *l, const char *payload, bool *ret_match)
{
	PGnotify *n;

	*ret_match = false;
	if (PQconsumeInput(l->c) != 1 || PQstatus(l->c) != CONNECTION_OK)
		return -EPIPE;
	while ((n = PQnotifies(l->c)) != NULL) {
		if (n->extra && strcmp(n->extra, payload) == 0)
			*ret_match = true;
		PQfreemem(n);
	}
	return 0;
}

void store_listener_free(struct store_listener *l)
{
	if (!l)
		return;
	if (l->c)
		PQfinish(l->c);
	free(l);
}
