/* SQLite backend: the instances table and the live-session registry
 * (store_cluster.h). One instance runs on a SQLite data directory, so
 * this keeps one row there; the same code paths as PostgreSQL's keep the
 * API and the conformance suite alike. */
#include "store/internal.h"
#include "store/store_cluster.h"
#include "store/store_ops.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"

static const char *col(sqlite3_stmt *st, int i)
{
	const char *v = (const char *)sqlite3_column_text(st, i);

	return v ? v : "";
}

/* Ends the open sessions of instance at now with reason, with an audit
 * record each (inside the caller's transaction). */
static int end_sessions_of(struct store *s, const char *instance, int64_t now, const char *reason,
			   int *ret_n)
{
	sqlite3_stmt *st = store_prepare(
		s,
		"SELECT id, user, vm, started_at, bytes_to_vm, bytes_from_vm, bastion"
		" FROM term_sessions WHERE instance = ? AND ended_at IS NULL ORDER BY started_at");
	int rc, r = 0, n = 0;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, instance, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_session_ended e = { .id = col(st, 0),
						 .user = col(st, 1),
						 .vm = col(st, 2),
						 .bastion = col(st, 6),
						 .started_at = sqlite3_column_int64(st, 3),
						 .bytes_to_vm = sqlite3_column_int64(st, 4),
						 .bytes_from_vm = sqlite3_column_int64(st, 5) };

		if ((r = store_session_end_audit(s, sq_audit, &e, instance, reason, now)) < 0)
			break;
		n++;
	}
	sqlite3_finalize(st);
	if (r < 0)
		return r;
	if (rc != SQLITE_DONE)
		return -BERR_STORE;
	st = store_prepare(s, "UPDATE term_sessions SET ended_at = ?, end_reason = ?"
			      " WHERE instance = ? AND ended_at IS NULL");
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_text(st, 2, reason, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, instance, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return -BERR_STORE;
	*ret_n += n;
	/* Its recordings too: closed as interrupted, not "recording" forever. */
	return sq_rec_interrupt(s, instance, now, reason, NULL);
}

static int claim_tx(struct store *s, void *ud)
{
	struct store_claim *x = ud;
	sqlite3_stmt *st =
		store_prepare(s, "SELECT state, last_seen FROM instances WHERE name = ?");
	int rc, r;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, x->in->name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	r = rc == SQLITE_ROW && strcmp(col(st, 0), "lost") != 0 &&
			    sqlite3_column_int64(st, 1) >= x->now - x->lease_s
		    ? -EEXIST
		    : 0;
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return -BERR_STORE;
	if (r < 0)
		return r;
	if ((r = end_sessions_of(s, x->in->name, x->now, x->reason, &x->ended)) < 0)
		return r;
	st = store_prepare(s,
			   "INSERT OR REPLACE INTO instances (name, state, started_at, last_seen,"
			   " advertise_url, cert_sha256) VALUES (?, 'up', ?, ?, ?, ?)");
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, x->in->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, x->now);
	sqlite3_bind_int64(st, 3, x->now);
	sqlite3_bind_text(st, 4, x->in->advertise_url, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, x->in->cert_sha256, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return store_rc(rc);
}

int sq_instance_claim(struct store *s, const struct store_instance *in, int64_t now,
		      int64_t lease_s, const char *reason, int *ret_ended)
{
	return store_instance_claim_run(s, store_tx, claim_tx, in, now, lease_s, reason, ret_ended);
}

int sq_instance_heartbeat(struct store *s, const char *name, const char *state, int64_t now)
{
	sqlite3_stmt *st = store_prepare(s, "UPDATE instances SET last_seen = ?, state = ?"
					    " WHERE name = ? AND state != 'lost'");
	int rc;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_rc(rc) < 0 ? store_rc(rc) : -BERR_STORE;
	return sqlite3_changes(store_db(s)) == 1 ? 0 : -ENOENT;
}

int sq_instance_foreach(struct store *s, int (*fn)(const struct store_instance *in, void *ud),
			void *ud)
{
	sqlite3_stmt *st = store_prepare(
		s, "SELECT i.name, i.state, i.started_at, i.last_seen, i.advertise_url,"
		   " i.cert_sha256, (SELECT count(*) FROM term_sessions t WHERE t.instance = i.name"
		   " AND t.ended_at IS NULL) FROM instances i ORDER BY i.name");
	int rc, r = 0;

	if (!st)
		return -BERR_STORE;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_instance in = { .started_at = sqlite3_column_int64(st, 2),
					     .last_seen = sqlite3_column_int64(st, 3),
					     .sessions = sqlite3_column_int64(st, 6) };

		util_strlcpy(in.name, col(st, 0), sizeof(in.name));
		util_strlcpy(in.state, col(st, 1), sizeof(in.state));
		util_strlcpy(in.advertise_url, col(st, 4), sizeof(in.advertise_url));
		util_strlcpy(in.cert_sha256, col(st, 5), sizeof(in.cert_sha256));
		if ((r = fn(&in, ud)) != 0)
			break;
	}
	sqlite3_finalize(st);
	if (r != 0)
		return r < 0 ? r : -ECANCELED;
	return rc == SQLITE_DONE ? 0 : -BERR_STORE;
}

static int reap_tx(struct store *s, void *ud)
{
	struct store_reap *x = ud;
	sqlite3_stmt *st = store_prepare(s, "SELECT name FROM instances WHERE state != 'lost'"
					    " AND last_seen < ? AND name != ? ORDER BY name");
	char **names = NULL;
	size_t n = 0;
	int rc, r = 0;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 1, x->now - x->lease_s);
	sqlite3_bind_text(st, 2, x->self, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		char **p = reallocarray(names, n + 1, sizeof(*p));

		if (!p || !(p[n] = strdup(col(st, 0)))) {
			names = p ? p : names;
			r = -ENOMEM;
			break;
		}
		names = p;
		n++;
	}
	sqlite3_finalize(st);
	if (r == 0 && rc != SQLITE_DONE)
		r = -BERR_STORE;
	for (size_t i = 0; r == 0 && i < n; i++) {
		st = store_prepare(s, "UPDATE instances SET state = 'lost' WHERE name = ?"
				      " AND state != 'lost' AND last_seen < ?");
		if (!st) {
			r = -BERR_STORE;
			break;
		}
		sqlite3_bind_text(st, 1, names[i], -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, x->now - x->lease_s);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE) {
			r = -BERR_STORE;
			break;
		}
		if (sqlite3_changes(store_db(s)) != 1)
			continue; /* another survivor won it */
		x->lost++;
		r = end_sessions_of(s, names[i], x->now, "instance lost", &x->ended);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return r;
}

int sq_instance_reap(struct store *s, const char *self, int64_t now, int64_t lease_s, int *ret_lost,
		     int *ret_ended)
{
	return store_instance_reap_run(s, store_tx, reap_tx, self, now, lease_s, ret_lost,
				       ret_ended);
}

static int exec_text(struct store *s, const char *sql, const char *a)
{
	sqlite3_stmt *st = store_prepare(s, sql);
	int rc;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return store_rc(rc);
}

int sq_instance_delete(struct store *s, const char *name)
{
	return exec_text(s, "DELETE FROM instances WHERE name = ?", name);
}

int sq_session_attached(struct store *s, const char *id)
{
	return exec_text(s, "UPDATE term_sessions SET attached = 1 WHERE id = ?", id);
}

int sq_session_foreach_open(struct store *s, const char *except,
			    int (*fn)(const struct store_live_session *ls, void *ud), void *ud)
{
	sqlite3_stmt *st = store_prepare(
		s, "SELECT id, user, vm, bastion, target, source, auth_type, instance, started_at,"
		   " attached FROM term_sessions WHERE ended_at IS NULL AND instance IS NOT NULL"
		   " AND (?1 IS NULL OR instance != ?1) ORDER BY started_at, id");
	int rc, r = 0;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, except, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_live_session ls = {
			.id = col(st, 0),
			.user = col(st, 1),
			.vm = col(st, 2),
			.bastion = col(st, 3),
			.target = col(st, 4),
			.source = col(st, 5),
			.auth_type = col(st, 6),
			.instance = col(st, 7),
			.started_at = sqlite3_column_int64(st, 8),
			.attached = sqlite3_column_int(st, 9) != 0,
		};

		if ((r = fn(&ls, ud)) != 0)
			break;
	}
	sqlite3_finalize(st);
	if (r != 0)
		return r < 0 ? r : -ECANCELED;
	return rc == SQLITE_DONE ? 0 : -BERR_STORE;
}

static int end_request_tx(struct store *s, void *ud)
{
	struct store_end_request *x = ud;
	sqlite3_stmt *st =
		store_prepare(s, "SELECT instance, user, bastion FROM term_sessions"
				 " WHERE id = ? AND ended_at IS NULL AND instance IS NOT NULL"
				 " AND instance != ?");
	char instance[STORE_INSTANCE_NAME_MAX];
	int rc;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, x->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, x->self, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		util_strlcpy(instance, col(st, 0), sizeof(instance));
		store_end_request_found(x, instance, col(st, 1), col(st, 2));
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	if (rc != SQLITE_ROW)
		return -BERR_STORE;
	st = store_prepare(s, "INSERT OR IGNORE INTO session_end_requests"
			      " (session_id, instance, reason, requested_at) VALUES (?, ?, ?, ?)");
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, x->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, instance, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, x->reason, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, store_now());
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return store_rc(rc);
}

int sq_session_end_request(struct store *s, const char *id, const char *self, const char *reason,
			   char *ret_instance, char *ret_user, char *ret_bastion)
{
	struct store_end_request x = { id, self, reason, ret_instance, ret_user, ret_bastion };

	return store_tx(s, end_request_tx, &x);
}

int sq_session_end_request_user(struct store *s, const char *user, const char *self,
				const char *reason, int *ret_n)
{
	sqlite3_stmt *st = store_prepare(
		s, "INSERT OR IGNORE INTO session_end_requests (session_id, instance, reason,"
		   " requested_at) SELECT id, instance, ?, ? FROM term_sessions WHERE user = ?"
		   " AND ended_at IS NULL AND instance IS NOT NULL AND instance != ?");
	int rc;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, reason, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, store_now());
	sqlite3_bind_text(st, 3, user, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, self, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return -BERR_STORE;
	if (ret_n)
		*ret_n = sqlite3_changes(store_db(s));
	return 0;
}

int sq_session_end_requests_take(struct store *s, const char *instance,
				 int (*fn)(const char *id, const char *reason, void *ud), void *ud)
{
	sqlite3_stmt *st = store_prepare(s, "DELETE FROM session_end_requests WHERE instance = ?"
					    " RETURNING session_id, reason");
	int rc, r = 0;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, instance, -1, SQLITE_STATIC);
	/* fn runs between steps of the DELETE: it must not use the store. */
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (r == 0)
			r = fn(col(st, 0), col(st, 1), ud);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return -BERR_STORE;
	return r < 0 ? r : 0;
}

int sq_listen_open(struct store *s, const char *channel, struct store_listener **ret)
{
	/* One instance per SQLite file: nobody else writes requests. */
	*ret = NULL;
	return -ENOTSUP;
}
