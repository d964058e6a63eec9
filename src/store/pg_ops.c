/* PostgreSQL backend: terminal sessions as records (start, end, reason,
 * bytes). Same contract as sqlite_ops.c: a start arriving after the end
 * leaves the row as it is, an end creates the row when the start has not
 * been written yet, and the first end is kept.
 *
 * store_session_close_stale: on SQLite it ends every session without an
 * end. With several instances on one database that would end the others'
 * live sessions, and term_sessions does not say which instance holds what
 * (the registry of live sessions will, issue 15 item 2). Until then it
 * ends them only when no other bastion process is connected to the
 * database (pg_stat_activity, application_name "bastion:PID", see pg.c):
 * a lone instance restarting closes what it left open; one starting among
 * live peers closes nothing and says so. */
#include "store/pg_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"

#define SESSION_COLS "id, \"user\", vm, bastion, target, source, auth_type, started_at, instance"

/* Runs sql, an INSERT of a session's row with SESSION_COLS as $1-$9. */
static int session_insert(struct store *s, const struct store_session *ss, const char *sql)
{
	struct pg_num started;
	const char *p[] = { ss->id,
			    ss->user,
			    ss->vm,
			    ss->bastion,
			    ss->target,
			    ss->source,
			    ss->auth_type,
			    pg_num(&started, ss->started_at),
			    ss->instance[0] ? ss->instance : NULL };

	return pg_q(s, NULL, sql, 9, p);
}

int pg_session_open(struct store *s, const struct store_session *ss)
{
	return session_insert(s, ss,
			      "INSERT INTO term_sessions (" SESSION_COLS
			      ") VALUES ($1, $2, $3, $4, $5,"
			      " $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING");
}

int pg_session_open_attached(struct store *s, const struct store_session *ss)
{
	return session_insert(s, ss,
			      "INSERT INTO term_sessions (" SESSION_COLS
			      ", attached) VALUES ($1, $2,"
			      " $3, $4, $5, $6, $7, $8, $9, true) ON CONFLICT (id) DO UPDATE SET"
			      " attached = true");
}

int pg_session_end(struct store *s, const struct store_session *ss, int64_t ended_at,
		   const char *reason, uint64_t bytes_to_vm, uint64_t bytes_from_vm)
{
	struct pg_num started, ended, to, from;
	const char *p[] = {
		ss->id,
		ss->user,
		ss->vm,
		ss->bastion,
		ss->target,
		ss->source,
		ss->auth_type,
		pg_num(&started, ss->started_at),
		pg_num(&ended, ended_at),
		reason,
		pg_num(&to, (int64_t)(bytes_to_vm > INT64_MAX ? INT64_MAX : bytes_to_vm)),
		pg_num(&from, (int64_t)(bytes_from_vm > INT64_MAX ? INT64_MAX : bytes_from_vm)),
		ss->instance[0] ? ss->instance : NULL
	};

	return pg_q(
		s, NULL,
		"INSERT INTO term_sessions (" SESSION_COLS ", ended_at, end_reason, bytes_to_vm,"
		" bytes_from_vm) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $13, $9, $10, $11, $12)"
		" ON CONFLICT (id) DO UPDATE SET ended_at = excluded.ended_at,"
		" end_reason = excluded.end_reason, bytes_to_vm = excluded.bytes_to_vm,"
		" bytes_from_vm = excluded.bytes_from_vm WHERE term_sessions.ended_at IS NULL",
		13, p);
}

struct stale {
	int64_t now;
	const char *reason;
	int n;
	bool peers;
};

static int close_stale_tx(struct store *s, void *ud)
{
	struct stale *x = ud;
	struct pg_num lock, now;
	char me[32];
	const char *pl[] = { pg_num(&lock, PG_LOCK_STALE) };
	const char *pm[] = { me };
	const char *pu[] = { pg_num(&now, x->now), x->reason };
	PGresult *res = NULL;
	int r;

	/* Two instances starting together: one at a time, each sees the
	 * other's connection. */
	if ((r = pg_q(s, NULL, "SELECT pg_advisory_xact_lock($1)", 1, pl)) < 0)
		return r;
	snprintf(me, sizeof(me), "bastion:%ld", (long)getpid());
	r = pg_row(s, &res,
		   "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
		   " AND application_name LIKE 'bastion:%' AND application_name <> $1",
		   1, pm);
	x->peers = r == 0 && pg_i64(res, 0, 0) > 0;
	PQclear(res);
	res = NULL;
	if (r < 0 || x->peers)
		return r;
	r = pg_q(
		s, &res,
		"SELECT id, \"user\", vm, started_at, bytes_to_vm, bytes_from_vm FROM term_sessions"
		" WHERE ended_at IS NULL ORDER BY started_at FOR UPDATE",
		0, NULL);
	for (int i = 0; r == 0 && i < PQntuples(res); i++) {
		json_t *d = json_pack("{s:s,s:s,s:I,s:I,s:I}", "session", PQgetvalue(res, i, 0),
				      "reason", x->reason, "duration_s",
				      (json_int_t)(x->now - pg_i64(res, i, 3)), "bytes_to_vm",
				      (json_int_t)pg_i64(res, i, 4), "bytes_from_vm",
				      (json_int_t)pg_i64(res, i, 5));
		char *detail = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		char principal[80];

		json_decref(d);
		snprintf(principal, sizeof(principal), "user:%s", PQgetvalue(res, i, 1));
		r = detail ? pg_audit(s, principal, "session.end", PQgetvalue(res, i, 2), "ended",
				      detail)
			   : -ENOMEM;
		free(detail);
		if (r == 0)
			x->n++;
	}
	PQclear(res);
	if (r < 0)
		return r;
	return pg_q(
		s, NULL,
		"UPDATE term_sessions SET ended_at = $1, end_reason = $2 WHERE ended_at IS NULL", 2,
		pu);
}

int pg_session_close_stale(struct store *s, int64_t now, const char *reason, int *ret_n)
{
	struct stale x = { .now = now, .reason = reason };
	int r = pg_tx(s, close_stale_tx, &x);

	if (r < 0)
		return r;
	if (x.peers)
		log_info("store: other bastion instances are connected to PostgreSQL: the"
			 " sessions recorded as open are left to them");
	if (ret_n)
		*ret_n = x.n;
	return 0;
}
