/* PostgreSQL backend: terminal sessions as records (start, end, reason,
 * bytes). Same contract as sqlite_ops.c: a start arriving after the end
 * leaves the row as it is, an end creates the row when the start has not
 * been written yet, and the first end is kept.
 *
 * store_session_close_stale is deliberately absent: on SQLite it ends every
 * session without an end, which with several instances on one database
 * would end the other instances' live sessions. It waits for the registry
 * of live sessions with the instance holding each (issue 15, item 2). */
#include "store/pg_internal.h"

#include <inttypes.h>
#include <stdio.h>

#include "core/err.h"

#define SESSION_COLS "id, \"user\", vm, bastion, target, source, auth_type, started_at, instance"

int pg_session_open(struct store *s, const struct store_session *ss)
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

	return pg_q(s, NULL,
		    "INSERT INTO term_sessions (" SESSION_COLS ") VALUES ($1, $2, $3, $4, $5, $6,"
		    " $7, $8, $9) ON CONFLICT (id) DO NOTHING",
		    9, p);
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
