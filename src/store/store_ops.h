/* Store: what operating an instance needs — terminal sessions as records
 * (start, end, reason, bytes), queries over the audit trail, and the audit
 * trail's copy on stderr. Same thread model and error convention as
 * store.h. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct store;

/* A terminal session as recorded. Strings are bounded like the API's. */
struct store_session {
	char id[48];
	char user[65];
	char vm[256];
	char bastion[256];
	char target[80];
	char source[64];
	char auth_type[16];
	char instance[128]; /* the instance holding it (store_cluster.h); "" on none */
	int64_t started_at;
};

/* Records a session whose shell just opened. A session already recorded
 * (its end arrived first, from another worker) is left as it is. */
int store_session_open(struct store *s, const struct store_session *ss);
/* store_session_open and store_session_attached in one write: the row made
 * (when its start has not been written yet) and marked attached. */
int store_session_open_attached(struct store *s, const struct store_session *ss);
/* Records its end, creating the row if its start has not been written yet.
 * A session already ended keeps its first end. */
int store_session_end(struct store *s, const struct store_session *ss, int64_t ended_at,
		      const char *reason, uint64_t bytes_to_vm, uint64_t bytes_from_vm);
/* Start-up: every session without an end belonged to a process that is
 * gone. Marks each ended at now with reason and appends a session.end audit
 * record for it, in one transaction. *ret_n: how many. */
int store_session_close_stale(struct store *s, int64_t now, const char *reason, int *ret_n);

/* One audit record, as read back. Strings are borrowed for the callback's
 * duration; principal, target, result and detail may be NULL. */
struct store_audit_rec {
	int64_t id, ts;
	const char *principal, *action, *target, *result, *detail;
};

/* Which records, newest first (or oldest first with ascending). NULL or 0
 * fields do not filter. after_id/before_id page: ids strictly between. */
struct store_audit_filter {
	const char *principal, *action, *target, *result;
	int64_t since, until; /* ts >= since, ts < until */
	int64_t before_id, after_id;
	int limit; /* 0: no limit */
	bool ascending;
};

/* Calls fn for each matching record; fn returning non-zero stops the walk
 * (a negative value is returned). */
int store_audit_query(struct store *s, const struct store_audit_filter *f,
		      int (*fn)(const struct store_audit_rec *r, void *ud), void *ud);
/* The same over DIR/bastion.db opened read-only, without migrations, for
 * `bastion audit export` (safe while an instance runs). */
int store_audit_query_ro(const char *data_dir, const struct store_audit_filter *f,
			 int (*fn)(const struct store_audit_rec *r, void *ud), void *ud);
/* The record as the API, the export and the log show it:
 * {"id","time" (RFC 3339 UTC),"ts","principal","action","target","result","detail"}. */
json_t *store_audit_json(const struct store_audit_rec *r);

/* From now on, every audit record inserted by any connection this process
 * opens is also written to stderr as one JSON line {"audit":{...}} (one
 * write(2) per line, for journald). Call before store_open. */
void store_audit_to_stderr(void);

/* ---- retention (issue 19; sqlite_retention.c, pg_retention.c) ---------
 * One batch of pruning, in one transaction: deletes at most batch of the
 * oldest audit records with ts < before (the only delete the audit
 * table's append-only protection lets through: SQLite's trigger and
 * PostgreSQL's trigger function allow it for rows older than the cutoff
 * this transaction announces, and nothing else), or of the ended terminal
 * session records with ended_at < before. *ret_n: how many went (0 when
 * another instance holds the pruning lock: PostgreSQL); *ret_oldest: the
 * oldest ts (started_at) kept, 0 when none is left. */
int store_audit_prune(struct store *s, int64_t before, int batch, int *ret_n, int64_t *ret_oldest);
int store_session_prune(struct store *s, int64_t before, int batch, int *ret_n,
			int64_t *ret_oldest);
/* The byte counters of an open session so far (issue 19): written to its
 * record while it has no end, so that the record of a session ended by a
 * crash (store_session_close_stale) keeps them. A session already ended,
 * or not recorded yet, is left as it is (0). */
int store_session_bytes(struct store *s, const char *id, uint64_t bytes_to_vm,
			uint64_t bytes_from_vm);
