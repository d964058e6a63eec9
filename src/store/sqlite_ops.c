/* SQLite backend: terminal session records, audit queries, and the audit
 * trail's copy on stderr. */
/* Debian's libsqlite3 is built with it; the header declares the pre-update
 * hook only when asked. */
#define SQLITE_ENABLE_PREUPDATE_HOOK 1
#include "store/internal.h"
#include "store/store_ops.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"

/* ---------- sessions ---------- */

static void bind_session(sqlite3_stmt *st, const struct store_session *ss)
{
	sqlite3_bind_text(st, 1, ss->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, ss->user, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, ss->vm, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, ss->bastion, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, ss->target, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, ss->source, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, ss->auth_type, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, ss->started_at);
	if (ss->instance[0])
		sqlite3_bind_text(st, 13, ss->instance, -1, SQLITE_STATIC);
}

/* Runs sql, an INSERT of a session's row whose values are bind_session's. */
static int session_insert(struct store *s, const struct store_session *ss, const char *sql)
{
	sqlite3_stmt *st = store_prepare(s, sql);
	int rc;

	if (!st)
		return -BERR_STORE;
	bind_session(st, ss);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return store_rc(rc);
}

int sq_session_open(struct store *s, const struct store_session *ss)
{
	return session_insert(s, ss,
			      "INSERT OR IGNORE INTO term_sessions"
			      " (id, user, vm, bastion, target, source, auth_type, started_at,"
			      " instance) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?13)");
}

int sq_session_open_attached(struct store *s, const struct store_session *ss)
{
	return session_insert(
		s, ss,
		"INSERT INTO term_sessions (id, user, vm, bastion, target, source,"
		" auth_type, started_at, instance, attached) VALUES"
		" (?1,?2,?3,?4,?5,?6,?7,?8,?13,1) ON CONFLICT(id) DO UPDATE SET attached = 1");
}

int sq_session_end(struct store *s, const struct store_session *ss, int64_t ended_at,
		   const char *reason, uint64_t bytes_to_vm, uint64_t bytes_from_vm)
{
	sqlite3_stmt *st = store_prepare(
		s,
		"INSERT INTO term_sessions (id, user, vm, bastion, target, source, auth_type, started_at,"
		"  ended_at, end_reason, bytes_to_vm, bytes_from_vm, instance)"
		" VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
		" ON CONFLICT(id) DO UPDATE SET ended_at = excluded.ended_at,"
		"  end_reason = excluded.end_reason, bytes_to_vm = excluded.bytes_to_vm,"
		"  bytes_from_vm = excluded.bytes_from_vm WHERE ended_at IS NULL");
	int rc;

	if (!st)
		return -BERR_STORE;
	bind_session(st, ss);
	sqlite3_bind_int64(st, 9, ended_at);
	sqlite3_bind_text(st, 10, reason, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 11, (sqlite3_int64)bytes_to_vm);
	sqlite3_bind_int64(st, 12, (sqlite3_int64)bytes_from_vm);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return store_rc(rc);
}

struct stale {
	int64_t now;
	const char *reason;
	int n;
};

static int close_stale_tx(struct store *s, void *ud)
{
	struct stale *x = ud;
	sqlite3_stmt *st = store_prepare(
		s, "SELECT id, user, vm, started_at, bytes_to_vm, bytes_from_vm FROM term_sessions"
		   " WHERE ended_at IS NULL ORDER BY started_at");
	int rc, r = 0;

	if (!st)
		return -BERR_STORE;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *d =
			json_pack("{s:s,s:s,s:I,s:I,s:I}", "session",
				  (const char *)sqlite3_column_text(st, 0), "reason", x->reason,
				  "duration_s", (json_int_t)(x->now - sqlite3_column_int64(st, 3)),
				  "bytes_to_vm", (json_int_t)sqlite3_column_int64(st, 4),
				  "bytes_from_vm", (json_int_t)sqlite3_column_int64(st, 5));
		char *detail = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		char principal[80];

		json_decref(d);
		snprintf(principal, sizeof(principal), "user:%s",
			 (const char *)sqlite3_column_text(st, 1));
		r = sq_audit(s, principal, "session.end", (const char *)sqlite3_column_text(st, 2),
			     "ended", detail);
		free(detail);
		if (r < 0)
			break;
		x->n++;
	}
	sqlite3_finalize(st);
	if (r < 0)
		return r;
	if (rc != SQLITE_DONE)
		return -BERR_STORE;
	st = store_prepare(
		s, "UPDATE term_sessions SET ended_at = ?, end_reason = ? WHERE ended_at IS NULL");
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 1, x->now);
	sqlite3_bind_text(st, 2, x->reason, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -BERR_STORE;
}

int sq_session_close_stale(struct store *s, int64_t now, const char *reason, int *ret_n)
{
	struct stale x = { .now = now, .reason = reason };
	int r = store_tx(s, close_stale_tx, &x);

	if (r < 0)
		return r;
	if (ret_n)
		*ret_n = x.n;
	return 0;
}

/* ---------- audit queries ---------- */

static int audit_query(sqlite3 *db, const struct store_audit_filter *f,
		       int (*fn)(const struct store_audit_rec *r, void *ud), void *ud)
{
	char sql[768];
	size_t n;
	sqlite3_stmt *st = NULL;
	int rc, i = 1, r = 0;

	n = (size_t)snprintf(
		sql, sizeof(sql),
		"SELECT id, ts, principal, action, target, result, detail FROM audit WHERE 1");
	if (f->principal)
		n += (size_t)snprintf(sql + n, sizeof(sql) - n, " AND principal = ?");
	if (f->action)
		n += (size_t)snprintf(sql + n, sizeof(sql) - n, " AND action = ?");
	if (f->target)
		n += (size_t)snprintf(sql + n, sizeof(sql) - n, " AND target = ?");
	if (f->result)
		n += (size_t)snprintf(sql + n, sizeof(sql) - n, " AND result = ?");
	if (f->since)
		n += (size_t)snprintf(sql + n, sizeof(sql) - n, " AND ts >= ?");
	if (f->until)
		n += (size_t)snprintf(sql + n, sizeof(sql) - n, " AND ts < ?");
	if (f->before_id)
		n += (size_t)snprintf(sql + n, sizeof(sql) - n, " AND id < ?");
	if (f->after_id)
		n += (size_t)snprintf(sql + n, sizeof(sql) - n, " AND id > ?");
	n += (size_t)snprintf(sql + n, sizeof(sql) - n, " ORDER BY id %s",
			      f->ascending ? "ASC" : "DESC");
	if (f->limit > 0)
		snprintf(sql + n, sizeof(sql) - n, " LIMIT %d", f->limit);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -BERR_STORE;
	if (f->principal)
		sqlite3_bind_text(st, i++, f->principal, -1, SQLITE_STATIC);
	if (f->action)
		sqlite3_bind_text(st, i++, f->action, -1, SQLITE_STATIC);
	if (f->target)
		sqlite3_bind_text(st, i++, f->target, -1, SQLITE_STATIC);
	if (f->result)
		sqlite3_bind_text(st, i++, f->result, -1, SQLITE_STATIC);
	if (f->since)
		sqlite3_bind_int64(st, i++, f->since);
	if (f->until)
		sqlite3_bind_int64(st, i++, f->until);
	if (f->before_id)
		sqlite3_bind_int64(st, i++, f->before_id);
	if (f->after_id)
		sqlite3_bind_int64(st, i++, f->after_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_audit_rec rec = {
			.id = sqlite3_column_int64(st, 0),
			.ts = sqlite3_column_int64(st, 1),
			.principal = (const char *)sqlite3_column_text(st, 2),
			.action = (const char *)sqlite3_column_text(st, 3),
			.target = (const char *)sqlite3_column_text(st, 4),
			.result = (const char *)sqlite3_column_text(st, 5),
			.detail = (const char *)sqlite3_column_text(st, 6),
		};

		if (!rec.action)
			rec.action = "";
		if ((r = fn(&rec, ud)) != 0)
			break;
	}
	sqlite3_finalize(st);
	if (r != 0)
		return r;
	return rc == SQLITE_DONE ? 0 : -BERR_STORE;
}

int sq_audit_query(struct store *s, const struct store_audit_filter *f,
		   int (*fn)(const struct store_audit_rec *r, void *ud), void *ud)
{
	sqlite3 *db = store_db(s);

	if (!db)
		return -BERR_STORE;
	return audit_query(db, f, fn, ud);
}

int store_audit_query_ro(const char *data_dir, const struct store_audit_filter *f,
			 int (*fn)(const struct store_audit_rec *r, void *ud), void *ud)
{
	char path[PATH_MAX];
	sqlite3 *db = NULL;
	int r;

	if (snprintf(path, sizeof(path), "%s/bastion.db", data_dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	if (access(path, R_OK) != 0)
		return -errno;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		sqlite3_close(db);
		return -BERR_STORE;
	}
	sqlite3_busy_timeout(db, 5000);
	r = audit_query(db, f, fn, ud);
	sqlite3_close(db);
	return r;
}

json_t *store_audit_json(const struct store_audit_rec *r)
{
	char when[32];
	time_t t = (time_t)r->ts;
	struct tm tm;
	json_t *o, *detail = NULL;

	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (r->detail) {
		detail = json_loads(r->detail, 0, NULL);
		if (!detail)
			detail = json_string(r->detail);
	}
	o = json_pack("{s:I,s:s,s:I,s:s?,s:s,s:s?,s:s?,s:o?}", "id", (json_int_t)r->id, "time",
		      when, "ts", (json_int_t)r->ts, "principal", r->principal, "action", r->action,
		      "target", r->target, "result", r->result, "detail", detail);
	return o;
}

/* ---------- the copy on stderr ----------
 *
 * Every audit record goes through an INSERT into `audit`, from whichever
 * module writes it. SQLite's pre-update hook sees each row as it is
 * inserted, on the thread and connection that inserts it, so one hook
 * installed on every connection (sqlite3_auto_extension) copies every record
 * to stderr without each writer having to remember.
 *
 * A line is held back until its transaction has committed: the WAL hook
 * runs after every commit (the store is in WAL mode), the rollback hook
 * drops what a rolled-back transaction inserted. So the log never shows a
 * record the table lacks. The lines wait in a buffer of the connection,
 * freed with it (the destructor of a function registered on it). */

struct audit_pending {
	struct buf lines; /* whole lines, each ending in '\n' */
};

static void pending_free(void *p)
{
	struct audit_pending *a = p;

	buf_free(&a->lines);
	free(a);
}

static int on_wal_commit(void *ctx, sqlite3 *db, const char *zdb, int frames)
{
	struct audit_pending *a = ctx;

	log_write_lines(buf_str(&a->lines), buf_len(&a->lines));
	buf_truncate(&a->lines, 0);
	/* A WAL hook replaces SQLite's automatic checkpoint: do what it did
	 * (a passive checkpoint once the WAL holds 1000 pages). */
	if (frames >= 1000)
		sqlite3_wal_checkpoint(db, zdb);
	return SQLITE_OK;
}

static void on_rollback(void *ctx)
{
	struct audit_pending *a = ctx;

	buf_truncate(&a->lines, 0);
}

static const char *preupdate_text(sqlite3 *db, int col)
{
	sqlite3_value *v = NULL;

	if (sqlite3_preupdate_new(db, col, &v) != SQLITE_OK || !v ||
	    sqlite3_value_type(v) == SQLITE_NULL)
		return NULL;
	return (const char *)sqlite3_value_text(v);
}

static void on_preupdate(void *ctx, sqlite3 *db, int op, const char *zdb, const char *table,
			 sqlite3_int64 key1, sqlite3_int64 key2)
{
	struct store_audit_rec rec = { .id = key2 };
	sqlite3_value *v = NULL;
	json_t *o;
	char *text;
	size_t len;

	if (op != SQLITE_INSERT || strcmp(table, "audit") != 0 || strcmp(zdb, "main") != 0)
		return;
	if (sqlite3_preupdate_new(db, 1, &v) == SQLITE_OK && v)
		rec.ts = sqlite3_value_int64(v);
	/* Each text pointer stays valid until the next call for the same column. */
	rec.principal = preupdate_text(db, 2);
	rec.action = preupdate_text(db, 3);
	rec.target = preupdate_text(db, 4);
	rec.result = preupdate_text(db, 5);
	rec.detail = preupdate_text(db, 6);
	if (!rec.action)
		rec.action = "";
	/* In the log's format (log.c), held back until the commit. */
	o = store_audit_json(&rec);
	text = o ? log_audit_line(o, &len) : NULL;
	json_decref(o);
	if (!text)
		return;
	if (ctx && buf_append(&((struct audit_pending *)ctx)->lines, text, len) == 0)
		/* Installed here, not with the other hooks: opening a connection
		 * sets SQLite's own WAL hook (the automatic checkpoint) after the
		 * extensions ran. */
		sqlite3_wal_hook(db, on_wal_commit, ctx);
	else
		log_write_lines(text, len);
	free(text);
}

static void no_op(sqlite3_context *c, int argc, sqlite3_value **argv)
{
	(void)argc;
	(void)argv;
	sqlite3_result_null(c);
}

static int audit_hook_ext(sqlite3 *db, const char **err, const void *api)
{
	struct audit_pending *a = calloc(1, sizeof(*a));

	if (a)
		buf_init(&a->lines, STORE_AUDIT_HELD_MAX);
	/* The function exists only so that its destructor frees the buffer
	 * when the connection closes (and at once if registering fails). */
	if (a && sqlite3_create_function_v2(db, "bastion_audit_pending", 0, SQLITE_UTF8, a, no_op,
					    NULL, NULL, pending_free) != SQLITE_OK)
		a = NULL;
	if (a)
		sqlite3_rollback_hook(db, on_rollback, a);
	/* Without a buffer, lines are written as they are inserted. */
	sqlite3_preupdate_hook(db, on_preupdate, a);
	return SQLITE_OK;
}

void store_audit_to_stderr(void)
{
	/* PostgreSQL's backend looks at the flag; SQLite installs its hooks on
	 * every connection opened from now on. */
	store_audit_stderr = true;
	/* void (*)(void) is the type every function pointer may pass through. */
	sqlite3_auto_extension((void (*)(void))audit_hook_ext);
}
