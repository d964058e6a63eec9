/* PostgreSQL backend: the audit trail (one ordered sequence, its stderr
 * copy written after the commit) and host keys (first use recorded once). */
#include "store/pg_internal.h"

#include <errno.h>
#include <stdlib.h>

#include "core/err.h"
#include "core/log.h"
#include "store/store_ops.h"

#define PG_LOCK_AUDIT 0x62617374696f6e02LL

/* ---------- audit ---------- */

struct audit_args {
	const char *principal, *action, *target, *result, *detail;
	int64_t ts; /* 0: now */
	bool once;  /* store_audit_at's once */
};

/* The record in one statement that first takes the trail's lock (a
 * transaction-scoped advisory lock, so held until this statement's
 * transaction commits): the ids still go out in commit order, and in
 * autocommit the lock covers the server's own work only, no round trip.
 * The lock is taken in the CTE, which the INSERT's SELECT reads before it
 * makes its row: the identity's nextval runs under the lock. */
#define AUDIT_ONE                                                                        \
	"WITH turn AS MATERIALIZED (SELECT pg_advisory_xact_lock($7) AS l)"              \
	" INSERT INTO audit (ts, principal, action, target, result, detail)"             \
	" SELECT $1::bigint, $2::text, $3::text, $4::text, $5::text, $6::text FROM turn" \
	" RETURNING id"

/* A record written already (store_audit_at's once: the check reads the
 * trail, so it runs as a statement of its own after the lock is held, with
 * a snapshot that sees every record committed before). */
#define AUDIT_ONCE                                                                 \
	"INSERT INTO audit (ts, principal, action, target, result, detail)"        \
	" SELECT $1::bigint, $2::text, $3::text, $4::text, $5::text, $6::text"     \
	" WHERE NOT EXISTS ("                                                      \
	" SELECT 1 FROM audit WHERE ts = $1 AND principal IS NOT DISTINCT FROM $2" \
	" AND action = $3 AND target IS NOT DISTINCT FROM $4"                      \
	" AND result IS NOT DISTINCT FROM $5 AND detail IS NOT DISTINCT FROM $6)"  \
	" RETURNING id"

static int audit_write(struct store *s, void *ud)
{
	const struct audit_args *a = ud;
	struct pg_num k, now;
	const char *p[] = { pg_num(&now, a->ts ? a->ts : store_now()),
			    a->principal,
			    a->action,
			    a->target,
			    a->result,
			    a->detail,
			    pg_num(&k, PG_LOCK_AUDIT) };
	PGresult *res = NULL;
	int r;

	/* One ordered sequence: writers take turns until their commit, so ids
	 * are handed out in commit order and a reader paging by id never
	 * skips a record that commits later with a smaller one. */
	if (!a->once) {
		r = pg_q(s, &res, AUDIT_ONE, 7, p);
	} else {
		r = pg_q(s, NULL, "SELECT pg_advisory_xact_lock($1)", 1, p + 6);
		if (r == 0)
			r = pg_q(s, &res, AUDIT_ONCE, 6, p);
	}
	if (r < 0)
		return r;
	/* Written once already (store_audit_at): nothing new to copy. */
	if (PQntuples(res) == 0) {
		PQclear(res);
		return 0;
	}
	if (store_audit_stderr) {
		struct store_audit_rec rec = {
			.id = pg_i64(res, 0, 0),
			.ts = (int64_t)strtoll(now.s, NULL, 10),
			.principal = a->principal,
			.action = a->action ? a->action : "",
			.target = a->target,
			.result = a->result,
			.detail = a->detail,
		};
		json_t *o = store_audit_json(&rec);
		size_t len;
		char *text = o ? log_audit_line(o, &len) : NULL;

		json_decref(o);
		if (text)
			pg_audit_line(s, text, len);
		free(text);
	}
	PQclear(res);
	return 0;
}

/* Outside a transaction a plain record is one statement in autocommit
 * (its own transaction: the lock goes at its commit, on the server); the
 * stderr copy is written once it returned, i.e. committed. Inside one, or
 * for a record written once, as before: in a transaction (a savepoint of
 * the caller's), the lock held to the outermost commit. */
static int audit(struct store *s, struct audit_args *a)
{
	if (!a->once && !pg_in_tx(s))
		return audit_write(s, a);
	return pg_tx(s, audit_write, a);
}

int pg_audit(struct store *s, const char *principal, const char *action, const char *target,
	     const char *result, const char *detail)
{
	struct audit_args a = { principal, action, target, result, detail, 0, false };

	return audit(s, &a);
}

int pg_audit_at(struct store *s, int64_t ts, bool once, const char *principal, const char *action,
		const char *target, const char *result, const char *detail)
{
	struct audit_args a = { principal, action, target, result, detail, ts, once };

	return audit(s, &a);
}

int pg_audit_query(struct store *s, const struct store_audit_filter *f,
		   int (*fn)(const struct store_audit_rec *r, void *ud), void *ud)
{
	char sql[768];
	const char *p[8];
	struct pg_num nums[4];
	PGresult *res = NULL;
	size_t n;
	int i = 0, r;

	n = (size_t)snprintf(
		sql, sizeof(sql),
		"SELECT id, ts, principal, action, target, result, detail FROM audit WHERE true");
#define FILTER(cond, col, op, val)                                                             \
	if (cond) {                                                                            \
		p[i] = (val);                                                                  \
		i++;                                                                           \
		n += (size_t)snprintf(sql + n, sizeof(sql) - n, " AND " col " " op " $%d", i); \
	}
	FILTER(f->principal, "principal", "=", f->principal)
	FILTER(f->action, "action", "=", f->action)
	FILTER(f->target, "target", "=", f->target)
	FILTER(f->result, "result", "=", f->result)
	FILTER(f->since, "ts", ">=", pg_num(&nums[0], f->since))
	FILTER(f->until, "ts", "<", pg_num(&nums[1], f->until))
	FILTER(f->before_id, "id", "<", pg_num(&nums[2], f->before_id))
	FILTER(f->after_id, "id", ">", pg_num(&nums[3], f->after_id))
#undef FILTER
	n += (size_t)snprintf(sql + n, sizeof(sql) - n, " ORDER BY id %s",
			      f->ascending ? "ASC" : "DESC");
	if (f->limit > 0)
		snprintf(sql + n, sizeof(sql) - n, " LIMIT %d", f->limit);
	if ((r = pg_q(s, &res, sql, i, p)) < 0)
		return r;
	for (int row = 0; row < PQntuples(res) && r == 0; row++) {
		struct store_audit_rec rec = {
			.id = pg_i64(res, row, 0),
			.ts = pg_i64(res, row, 1),
			.principal = pg_val(res, row, 2),
			.action = pg_val(res, row, 3),
			.target = pg_val(res, row, 4),
			.result = pg_val(res, row, 5),
			.detail = pg_val(res, row, 6),
		};

		if (!rec.action)
			rec.action = "";
		r = fn(&rec, ud);
	}
	PQclear(res);
	return r;
}

/* ---------- host keys ---------- */

int pg_hostkey_get_db(struct store *s, const char *vm_id, json_t **ret_array_of_lines)
{
	const char *p[] = { vm_id };
	PGresult *res = NULL;
	json_t *arr;
	int r;

	r = pg_q(s, &res,
		 "SELECT key_type, key_b64 FROM host_keys WHERE vm_id = $1 ORDER BY key_type", 1,
		 p);
	if (r < 0)
		return r;
	arr = json_array();
	if (!arr) {
		PQclear(res);
		return -ENOMEM;
	}
	for (int i = 0; i < PQntuples(res); i++)
		json_array_append_new(arr,
				      json_sprintf("%s %s", pg_val(res, i, 0), pg_val(res, i, 1)));
	PQclear(res);
	*ret_array_of_lines = arr;
	return 0;
}

int pg_hostkey_add(struct store *s, const char *vm_id, const char *type, const char *b64)
{
	struct pg_num now;
	const char *p[] = { vm_id, type, b64, pg_num(&now, store_now()) };

	/* First use wins, across instances: the primary key decides. */
	return pg_q(s, NULL,
		    "INSERT INTO host_keys (vm_id, key_type, key_b64, first_seen)"
		    " VALUES ($1, $2, $3, $4) ON CONFLICT (vm_id, key_type) DO NOTHING",
		    4, p);
}

int pg_hostkey_clear(struct store *s, const char *vm_id, int *ret_removed)
{
	const char *p[] = { vm_id };
	PGresult *res = NULL;
	int r = pg_q(s, &res, "DELETE FROM host_keys WHERE vm_id = $1", 1, p);

	if (r == 0)
		*ret_removed = pg_changes(res);
	PQclear(res);
	return r;
}
