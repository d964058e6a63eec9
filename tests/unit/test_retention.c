/* Retention (issue 19), on both backends: pruning takes the oldest audit
 * records below the cutoff in batches and nothing else, the append-only
 * protection stays for every other UPDATE or DELETE, ended session
 * records go by their end and open ones never. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "store/store.h"
#include "store/store_ops.h"
#include "testutil.h"

static int64_t q(struct tu_store *f, const char *sql)
{
	return tu_query_int(f->s, sql, NULL);
}

static void add_audit(struct tu_store *f, int64_t ts)
{
	char sql[160];

	snprintf(sql, sizeof(sql),
		 "INSERT INTO audit (ts, principal, action) VALUES (%lld, 'user:t', 'thing.do')"
		 " RETURNING id",
		 (long long)ts);
	assert_true(q(f, sql) > 0);
}

static void test_audit_prune(void **state)
{
	struct tu_store *f = *state;
	int64_t oldest = -1;
	int n = -1;

	for (int64_t ts = 1000; ts <= 5000; ts += 1000)
		add_audit(f, ts);
	add_audit(f, 1000);
	assert_int_equal(q(f, "SELECT count(*) FROM audit"), 6);

	/* Outside pruning the trail is append-only, old rows included. */
	assert_int_equal(q(f, "DELETE FROM audit WHERE ts < 2000 RETURNING id"), -1);
	assert_int_equal(q(f, "UPDATE audit SET action = 'forged' WHERE ts < 2000 RETURNING id"),
			 -1);
	assert_int_equal(q(f, "SELECT count(*) FROM audit"), 6);

	/* Batches of two below 3500: 1000, 1000, then 2000, 3000, then none. */
	assert_int_equal(store_audit_prune(f->s, 3500, 2, &n, &oldest), 0);
	assert_int_equal(n, 2);
	assert_int_equal(oldest, 1000);
	assert_int_equal(store_audit_prune(f->s, 3500, 2, &n, &oldest), 0);
	assert_int_equal(n, 2);
	assert_int_equal(oldest, 4000);
	assert_int_equal(store_audit_prune(f->s, 3500, 2, &n, &oldest), 0);
	assert_int_equal(n, 0);
	assert_int_equal(oldest, 4000);
	assert_int_equal(q(f, "SELECT count(*) FROM audit"), 2);
	assert_int_equal(q(f, "SELECT count(*) FROM audit WHERE action = 'forged'"), 0);
	assert_int_equal(store_audit_prune(f->s, 3500, 0, &n, &oldest), -EINVAL);

	/* The protection is back after a pruning: nothing left open. */
	assert_int_equal(q(f, "DELETE FROM audit RETURNING id"), -1);
	if (!tu_pg())
		assert_int_equal(q(f, "SELECT count(*) FROM audit_prune_gate"), 0);
	assert_int_equal(q(f, "SELECT count(*) FROM audit"), 2);

	/* Everything old enough: the oldest kept is 0 when none is left. */
	assert_int_equal(store_audit_prune(f->s, 99999, 500, &n, &oldest), 0);
	assert_int_equal(n, 2);
	assert_int_equal(oldest, 0);
}

static void test_session_prune(void **state)
{
	struct tu_store *f = *state;
	struct store_session s = tu_session("old", 1000);
	int64_t oldest = -1;
	int n = -1;

	assert_int_equal(store_session_end(f->s, &s, 1100, "closed", 1, 2), 0);
	snprintf(s.id, sizeof(s.id), "newer");
	s.started_at = 5000;
	assert_int_equal(store_session_end(f->s, &s, 5100, "closed", 1, 2), 0);
	/* Open since long before the cutoff: never pruned. */
	snprintf(s.id, sizeof(s.id), "open");
	s.started_at = 500;
	assert_int_equal(store_session_open(f->s, &s), 0);

	assert_int_equal(store_session_prune(f->s, 5000, 500, &n, &oldest), 0);
	assert_int_equal(n, 1);
	assert_int_equal(oldest, 500);
	assert_int_equal(q(f, "SELECT count(*) FROM term_sessions WHERE id = 'old'"), 0);
	assert_int_equal(q(f, "SELECT count(*) FROM term_sessions"), 2);
	assert_int_equal(store_session_prune(f->s, 5000, 500, &n, &oldest), 0);
	assert_int_equal(n, 0);
}

/* A session's counters while it runs (issue 19): written while it is
 * open, left alone once it ended, and kept by the end a crash leaves. */
static void test_session_bytes(void **state)
{
	struct tu_store *f = *state;
	struct store_session s = tu_session("run", 1000);
	int n = -1;

	/* Not recorded yet: nothing to update, no error. */
	assert_int_equal(store_session_bytes(f->s, "run", 1, 2), 0);
	assert_int_equal(store_session_open(f->s, &s), 0);
	assert_int_equal(store_session_bytes(f->s, "run", 10, 2000), 0);
	assert_int_equal(q(f, "SELECT bytes_from_vm FROM term_sessions WHERE id = 'run'"), 2000);
	assert_int_equal(store_session_bytes(f->s, "run", 11, 3000), 0);
	assert_int_equal(q(f, "SELECT bytes_to_vm FROM term_sessions WHERE id = 'run'"), 11);

	/* A crash: the next start ends it with the last counts written
	 * (store_session_close_stale is not on PostgreSQL yet: an end there). */
	if (tu_pg()) {
		assert_int_equal(store_session_end(f->s, &s, 2000, "closed", 11, 3000), 0);
	} else {
		assert_int_equal(store_session_close_stale(f->s, 2000, "bastion restarted", &n), 0);
		assert_int_equal(n, 1);
		assert_int_equal(q(f, "SELECT bytes_from_vm FROM term_sessions WHERE id = 'run'"),
				 3000);
		assert_int_equal(q(f, "SELECT count(*) FROM audit WHERE action = 'session.end'"
				      " AND detail LIKE '%\"bytes_from_vm\":3000%'"),
				 1);
	}
	/* Ended: a late flush changes nothing. */
	assert_int_equal(store_session_bytes(f->s, "run", 99, 99), 0);
	assert_int_equal(q(f, "SELECT bytes_from_vm FROM term_sessions WHERE id = 'run'"), 3000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_audit_prune, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_session_prune, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_session_bytes, tu_store_setup,
						tu_store_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
