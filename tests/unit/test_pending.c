/* terminal/pending.c: what the terminal records while the store cannot be
 * reached — kept in order, capped (counted past the cap), written once
 * when it is back. Runs against a real PostgreSQL cluster that is stopped
 * and started again (the store's `_pg` run); on SQLite, whose store does
 * not go away, the suite is skipped. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

#include "terminal/internal.h"

#define N_CAP 40

static struct pend *audit_rec(int i)
{
	struct pend *p = calloc(1, sizeof(*p));
	char detail[64];

	assert_non_null(p);
	p->kind = PEND_AUDIT;
	p->ts = 1000 + i;
	snprintf(detail, sizeof(detail), "{\"n\":%d}", i);
	p->principal = strdup("user:uma");
	p->action = strdup("session.end");
	p->detail = strdup(detail);
	p->result = strdup("ended");
	return p;
}

static struct pend *end_rec(int i)
{
	struct pend *p = calloc(1, sizeof(*p));

	assert_non_null(p);
	p->kind = PEND_END;
	snprintf(p->ss.id, sizeof(p->ss.id), "s-%d", i);
	snprintf(p->ss.user, sizeof(p->ss.user), "uma");
	snprintf(p->ss.vm, sizeof(p->ss.vm), "/groups/g/vms/v");
	snprintf(p->ss.bastion, sizeof(p->ss.bastion), "/groups/g/bastions/b");
	snprintf(p->ss.target, sizeof(p->ss.target), "10.0.0.5:22");
	snprintf(p->ss.source, sizeof(p->ss.source), "192.0.2.1");
	snprintf(p->ss.auth_type, sizeof(p->ss.auth_type), "password");
	p->ss.started_at = 900;
	p->ended_at = 1000 + i;
	snprintf(p->reason, sizeof(p->reason), "the shell exited");
	return p;
}

static void kept_while_away(void **state)
{
	struct tu_store *f = *state;

	term_g.store = f->s;
	pend_set_max(N_CAP);
	/* Written at once while the store answers. */
	pend_submit(audit_rec(0));
	assert_int_equal(pend_count(), 0);
	assert_int_equal(tu_query_int(f->s, "SELECT count(*) FROM audit WHERE ts = 1000", NULL), 1);

	assert_int_equal(tu_pg_halt(), 0);
	/* Away: kept in order, session ends and audit records alike, up to
	 * the cap; past it dropped. */
	for (int i = 1; i <= N_CAP / 2; i++) {
		pend_submit(end_rec(i));
		pend_submit(audit_rec(i));
	}
	assert_int_equal(pend_count(), N_CAP);
	pend_submit(audit_rec(999));
	pend_submit(end_rec(999));
	assert_int_equal(pend_count(), N_CAP);
	assert_int_equal(tu_pg_resume(), 0);
	/* Back: written by the thread of pending.c within a few retries. */
	for (int i = 0; i < 300 && pend_count() > 0; i++)
		usleep(100 * 1000);
	assert_int_equal(pend_count(), 0);
	/* Every kept record once, in the order it happened; not the dropped. */
	assert_int_equal(tu_query_int(f->s, "SELECT count(*) FROM audit", NULL), 1 + N_CAP / 2);
	assert_int_equal(tu_query_int(f->s,
				      "SELECT count(*) FROM audit a JOIN audit b ON b.id = a.id + 1"
				      " WHERE b.ts <> a.ts + 1",
				      NULL),
			 0);
	assert_int_equal(tu_query_int(f->s, "SELECT count(*) FROM audit WHERE ts = 1999", NULL), 0);
	assert_int_equal(tu_query_int(f->s,
				      "SELECT count(*) FROM term_sessions WHERE ended_at ="
				      " 1000 + CAST(substr(id, 3) AS integer)",
				      NULL),
			 N_CAP / 2);
	assert_int_equal(tu_query_int(f->s, "SELECT count(*) FROM term_sessions", NULL), N_CAP / 2);
	/* A retry of what may have been written already writes nothing more. */
	pend_submit(end_rec(1));
	assert_int_equal(store_audit_at(f->s, 1001, true, "user:uma", "session.end", NULL, "ended",
					"{\"n\":1}"),
			 0);
	assert_int_equal(tu_query_int(f->s, "SELECT count(*) FROM audit", NULL), 1 + N_CAP / 2);
	pend_stop();
	pend_set_max(0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(kept_while_away, tu_store_setup, tu_store_teardown),
	};

	if (!tu_pg()) {
		printf("SKIP: the store goes away only on PostgreSQL (test_pending_pg)\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
