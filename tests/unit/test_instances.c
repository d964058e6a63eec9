/* The store's instances and live-session registry (store_cluster.h), on
 * both backends: claiming a name under a lease, heartbeats, marking an
 * instance lost once (and ending its sessions once, audited), requests to
 * end a session another instance holds. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>

#include <cmocka.h>

#include "testutil.h"

#include "store/store.h"
#include "store/store_cluster.h"
#include "store/store_ops.h"
#include "store/store_waits.h"

#define LEASE 10

static struct store_instance inst(const char *name)
{
	struct store_instance in = { 0 };

	snprintf(in.name, sizeof(in.name), "%s", name);
	snprintf(in.advertise_url, sizeof(in.advertise_url), "https://%s:8443", name);
	snprintf(in.cert_sha256, sizeof(in.cert_sha256), "%064d", 7);
	return in;
}

static void open_session(struct store *s, const char *id, const char *user, const char *instance)
{
	struct store_session ss = { .started_at = 1000 };

	snprintf(ss.id, sizeof(ss.id), "%s", id);
	snprintf(ss.user, sizeof(ss.user), "%s", user);
	snprintf(ss.vm, sizeof(ss.vm), "/groups/g/vms/v");
	snprintf(ss.bastion, sizeof(ss.bastion), "/groups/g/bastions/b");
	snprintf(ss.target, sizeof(ss.target), "10.0.0.5:22");
	snprintf(ss.source, sizeof(ss.source), "192.0.2.1");
	snprintf(ss.auth_type, sizeof(ss.auth_type), "password");
	snprintf(ss.instance, sizeof(ss.instance), "%s", instance);
	assert_int_equal(store_session_open(s, &ss), 0);
}

static int64_t q(struct tu_store *f, const char *sql, const char *arg)
{
	return tu_query_int(f->s, sql, arg);
}

struct listing {
	char names[8][STORE_INSTANCE_NAME_MAX];
	char states[8][16];
	int64_t sessions[8];
	int n;
};

static int collect(const struct store_instance *in, void *ud)
{
	struct listing *l = ud;

	if (l->n == 8)
		return 1;
	snprintf(l->names[l->n], sizeof(l->names[0]), "%s", in->name);
	snprintf(l->states[l->n], sizeof(l->states[0]), "%s", in->state);
	l->sessions[l->n] = in->sessions;
	l->n++;
	return 0;
}

static void test_claim_lease(void **state)
{
	struct tu_store *f = *state;
	struct store_instance a = inst("a:8443");
	struct listing l = { 0 };
	int ended = -1;

	assert_int_equal(store_instance_claim(f->s, &a, 1000, LEASE, "bastion restarted", &ended),
			 0);
	assert_int_equal(ended, 0);
	/* A second process of the same name, while the first's lease lives. */
	assert_int_equal(store_instance_claim(f->s, &a, 1000 + LEASE, LEASE, "r", &ended), -EEXIST);
	assert_int_equal(store_instance_heartbeat(f->s, "a:8443", "up", 1005), 0);
	assert_int_equal(store_instance_claim(f->s, &a, 1005 + LEASE, LEASE, "r", &ended), -EEXIST);
	assert_int_equal(store_instance_heartbeat(f->s, "nobody", "up", 1005), -ENOENT);

	/* The first crashed with a session open: once its lease ran out, a
	 * new process takes the name and records that session's end. */
	open_session(f->s, "s-1", "uma", "a:8443");
	assert_int_equal(
		store_instance_claim(f->s, &a, 1006 + LEASE, LEASE, "bastion restarted", &ended),
		0);
	assert_int_equal(ended, 1);
	assert_int_equal(q(f,
			   "SELECT count(*) FROM term_sessions WHERE id = 's-1' AND"
			   " end_reason = 'bastion restarted' AND ended_at = 1016",
			   NULL),
			 1);
	assert_int_equal(q(f,
			   "SELECT count(*) FROM audit WHERE action = 'session.end' AND"
			   " instr(detail, '\"session\":\"s-1\"') > 0",
			   NULL),
			 1);
	assert_int_equal(store_instance_foreach(f->s, collect, &l), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.names[0], "a:8443");
	assert_string_equal(l.states[0], "up");
	assert_int_equal(q(f, "SELECT started_at FROM instances WHERE name = ?", "a:8443"), 1016);

	/* Draining is a state the heartbeat writes; a clean stop removes the row. */
	assert_int_equal(store_instance_heartbeat(f->s, "a:8443", "draining", 1017), 0);
	assert_int_equal(q(f, "SELECT count(*) FROM instances WHERE state = 'draining'", NULL), 1);
	assert_int_equal(store_instance_delete(f->s, "a:8443"), 0);
	assert_int_equal(store_instance_heartbeat(f->s, "a:8443", "up", 1018), -ENOENT);
	assert_int_equal(store_instance_claim(f->s, &a, 1018, LEASE, "r", &ended), 0);
}

static void test_reap_lost(void **state)
{
	struct tu_store *f = *state;
	struct store_instance a = inst("a"), b = inst("b");
	struct listing l = { 0 };
	int lost = -1, ended = -1;

	assert_int_equal(store_instance_claim(f->s, &a, 1000, LEASE, "r", NULL), 0);
	assert_int_equal(store_instance_claim(f->s, &b, 1000, LEASE, "r", NULL), 0);
	open_session(f->s, "a-1", "uma", "a");
	open_session(f->s, "a-2", "ulf", "a");
	open_session(f->s, "b-1", "uma", "b");
	assert_int_equal(store_instance_heartbeat(f->s, "b", "up", 1011), 0);

	/* Within the lease nothing is lost. */
	assert_int_equal(store_instance_reap(f->s, "b", 1000 + LEASE, LEASE, &lost, &ended), 0);
	assert_int_equal(lost, 0);
	/* a's lease ran out: b marks it lost and ends a's sessions, not its own. */
	assert_int_equal(store_instance_reap(f->s, "b", 1011, LEASE, &lost, &ended), 0);
	assert_int_equal(lost, 1);
	assert_int_equal(ended, 2);
	assert_int_equal(q(f,
			   "SELECT count(*) FROM term_sessions WHERE end_reason ="
			   " 'instance lost' AND ended_at = 1011",
			   NULL),
			 2);
	assert_int_equal(q(f,
			   "SELECT count(*) FROM term_sessions WHERE id = 'b-1' AND ended_at"
			   " IS NULL",
			   NULL),
			 1);
	assert_int_equal(q(f,
			   "SELECT count(*) FROM audit WHERE action = 'session.end' AND"
			   " instr(detail, 'instance lost') > 0",
			   NULL),
			 2);
	/* Once: a later reap (by anyone) finds nothing, and a reaper never marks itself. */
	assert_int_equal(store_instance_reap(f->s, "b", 1100, LEASE, &lost, &ended), 0);
	assert_int_equal(lost, 0);
	assert_int_equal(store_instance_reap(f->s, "a", 1011, LEASE, &lost, &ended), 0);
	assert_int_equal(lost, 0);
	assert_int_equal(store_instance_foreach(f->s, collect, &l), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.states[0], "lost");
	assert_int_equal(l.sessions[0], 0);
	assert_string_equal(l.states[1], "up");
	assert_int_equal(l.sessions[1], 1);
	/* The lost instance's heartbeat is refused: it learns it was lost. */
	assert_int_equal(store_instance_heartbeat(f->s, "a", "up", 1012), -ENOENT);
	/* Its name may be claimed again at once. */
	assert_int_equal(store_instance_claim(f->s, &a, 1012, LEASE, "r", &ended), 0);
	assert_int_equal(ended, 0);
}

/* Two survivors reap at the same moment: one marks the instance, its
 * sessions are ended and audited once. */
struct reaper {
	struct store *s;
	const char *self;
	pthread_barrier_t *go;
	int r, lost, ended;
};

static void *reaper_thread(void *arg)
{
	struct reaper *x = arg;

	pthread_barrier_wait(x->go);
	x->r = store_instance_reap(x->s, x->self, 2000, LEASE, &x->lost, &x->ended);
	return NULL;
}

static void test_reap_race(void **state)
{
	struct tu_store *f = *state;
	struct store_instance a = inst("a"), b = inst("b"), c = inst("c");
	struct store *other = NULL;
	pthread_barrier_t go;
	struct reaper rb = { .s = f->s, .self = "b", .go = &go };
	struct reaper rc = { .self = "c", .go = &go };
	pthread_t tb, tc;
	char id[16];

	assert_int_equal(tu_store_open(f->dir, &other), 0);
	rc.s = other;
	assert_int_equal(store_instance_claim(f->s, &a, 1000, LEASE, "r", NULL), 0);
	assert_int_equal(store_instance_claim(f->s, &b, 2000, LEASE, "r", NULL), 0);
	assert_int_equal(store_instance_claim(f->s, &c, 2000, LEASE, "r", NULL), 0);
	for (int i = 0; i < 20; i++) {
		snprintf(id, sizeof(id), "a-%d", i);
		open_session(f->s, id, "uma", "a");
	}
	assert_int_equal(pthread_barrier_init(&go, NULL, 2), 0);
	assert_int_equal(pthread_create(&tb, NULL, reaper_thread, &rb), 0);
	assert_int_equal(pthread_create(&tc, NULL, reaper_thread, &rc), 0);
	assert_int_equal(pthread_join(tb, NULL), 0);
	assert_int_equal(pthread_join(tc, NULL), 0);
	pthread_barrier_destroy(&go);
	/* On SQLite a writer may find the database locked: the other did it all. */
	assert_true(rb.r == 0 || rc.r == 0);
	assert_int_equal((rb.r == 0 ? rb.lost : 0) + (rc.r == 0 ? rc.lost : 0), 1);
	assert_int_equal((rb.r == 0 ? rb.ended : 0) + (rc.r == 0 ? rc.ended : 0), 20);
	assert_int_equal(q(f, "SELECT count(*) FROM audit WHERE action = 'session.end'", NULL), 20);
	store_free(other);
}

struct taken {
	char ids[8][256];
	char reasons[8][256];
	int n;
};

static int take(const char *id, const char *reason, void *ud)
{
	struct taken *t = ud;

	if (t->n == 8)
		return 1;
	snprintf(t->ids[t->n], sizeof(t->ids[0]), "%s", id);
	snprintf(t->reasons[t->n], sizeof(t->reasons[0]), "%s", reason);
	t->n++;
	return 0;
}

struct open_list {
	char ids[8][256];
	char instances[8][STORE_INSTANCE_NAME_MAX];
	bool attached[8];
	int n;
};

static int collect_open(const struct store_live_session *ls, void *ud)
{
	struct open_list *o = ud;

	if (o->n == 8)
		return 1;
	snprintf(o->ids[o->n], sizeof(o->ids[0]), "%s", ls->id);
	snprintf(o->instances[o->n], sizeof(o->instances[0]), "%s", ls->instance);
	o->attached[o->n] = ls->attached;
	o->n++;
	return 0;
}

static void test_end_requests(void **state)
{
	struct tu_store *f = *state;
	char holder[STORE_INSTANCE_NAME_MAX], user[65], bastion[256];
	struct taken t = { 0 };
	struct open_list o = { 0 };
	int n = -1;

	open_session(f->s, "a-1", "uma", "a");
	open_session(f->s, "a-2", "uma", "a");
	open_session(f->s, "a-3", "ulf", "a");
	open_session(f->s, "b-1", "uma", "b");
	assert_int_equal(store_session_attached(f->s, "a-1"), 0);

	/* The registry: every open session with its holder, or those of others. */
	assert_int_equal(store_session_foreach_open(f->s, NULL, collect_open, &o), 0);
	assert_int_equal(o.n, 4);
	o.n = 0;
	assert_int_equal(store_session_foreach_open(f->s, "a", collect_open, &o), 0);
	assert_int_equal(o.n, 1);
	assert_string_equal(o.ids[0], "b-1");
	assert_string_equal(o.instances[0], "b");
	assert_false(o.attached[0]);
	o.n = 0;
	assert_int_equal(store_session_foreach_open(f->s, "b", collect_open, &o), 0);
	assert_int_equal(o.n, 3);
	assert_string_equal(o.ids[0], "a-1");
	assert_true(o.attached[0]);

	/* b asks a to end a-1: the holder, user and bastion come back. */
	assert_int_equal(store_session_end_request(f->s, "a-1", "b", "disconnected by uma", holder,
						   user, bastion),
			 0);
	assert_string_equal(holder, "a");
	assert_string_equal(user, "uma");
	assert_string_equal(bastion, "/groups/g/bastions/b");
	/* Twice: the first stays. Its own sessions, unknown or ended ones: none. */
	assert_int_equal(store_session_end_request(f->s, "a-1", "b", "again", NULL, NULL, NULL), 0);
	assert_int_equal(store_session_end_request(f->s, "a-1", "a", "x", NULL, NULL, NULL),
			 -ENOENT);
	assert_int_equal(store_session_end_request(f->s, "nope", "b", "x", NULL, NULL, NULL),
			 -ENOENT);
	/* A user's sessions held elsewhere: a-2 (a-1 is asked already), not b-1. */
	assert_int_equal(store_session_end_request_user(f->s, "uma", "b", "user disabled", &n), 0);
	assert_int_equal(n, 1);

	assert_int_equal(store_session_end_requests_take(f->s, "b", take, &t), 0);
	assert_int_equal(t.n, 0);
	assert_int_equal(store_session_end_requests_take(f->s, "a", take, &t), 0);
	assert_int_equal(t.n, 2);
	for (int i = 0; i < 2; i++) {
		if (strcmp(t.ids[i], "a-1") == 0)
			assert_string_equal(t.reasons[i], "disconnected by uma");
		else
			assert_string_equal(t.reasons[i], "user disabled");
	}
	/* Taken once. */
	t.n = 0;
	assert_int_equal(store_session_end_requests_take(f->s, "a", take, &t), 0);
	assert_int_equal(t.n, 0);
	/* An ended session is asked for no more. */
	assert_int_equal(q(f, "SELECT count(*) FROM session_end_requests", NULL), 0);
}

/* PostgreSQL: a request is announced to a listener at once (NOTIFY, with
 * the holder's name); SQLite has no listener. */
static void test_listen(void **state)
{
	struct tu_store *f = *state;
	struct store_listener *l = NULL;
	struct pollfd pfd;
	bool match = false;
	int n;

	if (!tu_pg()) {
		assert_int_equal(store_listen_open(f->s, "bastion_session_end", &l), -ENOTSUP);
		assert_null(l);
		return;
	}
	assert_int_equal(store_listen_open(f->s, "bastion_session_end", &l), 0);
	open_session(f->s, "a-1", "uma", "a");
	open_session(f->s, "c-1", "uma", "c");
	/* Nothing yet: a read finds nothing and does not wait. */
	assert_int_equal(store_listener_read(l, "a", &match), 0);
	assert_false(match);
	assert_int_equal(store_session_end_request(f->s, "c-1", "b", "x", NULL, NULL, NULL), 0);
	assert_int_equal(store_session_end_request(f->s, "a-1", "b", "x", NULL, NULL, NULL), 0);
	/* Both notifications arrive; one is for "a". Bounded: a few reads. */
	for (n = 0; n < 50 && !match; n++) {
		pfd = (struct pollfd){ .fd = store_listener_fd(l), .events = POLLIN };
		assert_true(poll(&pfd, 1, 5000) >= 0);
		assert_int_equal(store_listener_read(l, "a", &match), 0);
	}
	assert_true(match);
	/* The user variant announces too. */
	open_session(f->s, "a-2", "ulf", "a");
	assert_int_equal(store_session_end_request_user(f->s, "ulf", "b", "y", &n), 0);
	assert_int_equal(n, 1);
	match = false;
	for (n = 0; n < 50 && !match; n++) {
		pfd = (struct pollfd){ .fd = store_listener_fd(l), .events = POLLIN };
		assert_true(poll(&pfd, 1, 5000) >= 0);
		assert_int_equal(store_listener_read(l, "a", &match), 0);
	}
	assert_true(match);
	store_listener_free(l);
}

/* Connects waiting for answers (store_waits.h): where each waits, until
 * its row expires; a later round replaces it; a put clears what expired. */
static void test_waits(void **state)
{
	struct tu_store *f = *state;
	char who[STORE_INSTANCE_NAME_MAX] = "untouched";

	assert_int_equal(store_session_holder(f->s, "c-1", 1000, who), -ENOENT);
	assert_string_equal(who, "untouched");
	assert_int_equal(store_wait_put(f->s, "c-1", "a:8443", 1000, 1120), 0);
	assert_int_equal(store_wait_put(f->s, "c-2", "b:8443", 1000, 1050), 0);
	assert_int_equal(store_session_holder(f->s, "c-1", 1001, who), 0);
	assert_string_equal(who, "a:8443");
	assert_int_equal(store_session_holder(f->s, "c-2", 1049, who), 0);
	assert_string_equal(who, "b:8443");
	/* Expired: not found, and gone once someone puts. */
	assert_int_equal(store_session_holder(f->s, "c-2", 1050, who), -ENOENT);
	assert_int_equal(q(f, "SELECT count(*) FROM connect_waits WHERE id = ?", "c-2"), 1);
	assert_int_equal(store_wait_put(f->s, "c-1", "a:8443", 1060, 1180), 0);
	assert_int_equal(q(f, "SELECT count(*) FROM connect_waits WHERE id = ?", "c-2"), 0);
	/* The next round of the same connect: one row, the new expiry. */
	assert_int_equal(q(f, "SELECT count(*) FROM connect_waits WHERE id = ?", "c-1"), 1);
	assert_int_equal(store_session_holder(f->s, "c-1", 1150, who), 0);
	assert_int_equal(store_wait_delete(f->s, "c-1"), 0);
	assert_int_equal(store_session_holder(f->s, "c-1", 1150, who), -ENOENT);
	assert_int_equal(store_wait_delete(f->s, "c-1"), 0);
}

/* The holder of a session (what a request for it on another instance is
 * relayed to): its open row names it, whatever else is open; a wait of the
 * same id elsewhere does not hide it; once ended, only a wait is left;
 * sessions without an instance (a single instance's) are nobody's. */
static void test_session_holder(void **state)
{
	struct tu_store *f = *state;
	char who[STORE_INSTANCE_NAME_MAX] = "";
	struct store_session ss = tu_session("s-1", 1000);
	char id[16];

	for (int i = 0; i < 20; i++) {
		snprintf(id, sizeof(id), "o-%d", i);
		open_session(f->s, id, "ulf", i % 2 ? "a:8443" : "c:8443");
	}
	open_session(f->s, "s-1", "ulf", "b:8443");
	assert_int_equal(store_session_holder(f->s, "s-1", 1001, who), 0);
	assert_string_equal(who, "b:8443");
	assert_int_equal(store_session_holder(f->s, "o-7", 1001, who), 0);
	assert_string_equal(who, "a:8443");
	assert_int_equal(store_wait_put(f->s, "s-1", "a:8443", 1000, 1120), 0);
	assert_int_equal(store_session_holder(f->s, "s-1", 1001, who), 0);
	assert_string_equal(who, "b:8443");
	assert_int_equal(store_session_end(f->s, &ss, 1002, "closed", 0, 0), 0);
	assert_int_equal(store_session_holder(f->s, "s-1", 1003, who), 0);
	assert_string_equal(who, "a:8443");
	assert_int_equal(store_wait_delete(f->s, "s-1"), 0);
	assert_int_equal(store_session_holder(f->s, "s-1", 1003, who), -ENOENT);
	assert_int_equal(store_session_holder(f->s, "nobody", 1003, who), -ENOENT);
	open_session(f->s, "s-2", "ulf", "");
	assert_int_equal(store_session_holder(f->s, "s-2", 1003, who), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_claim_lease, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_reap_lost, tu_store_setup, tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_reap_race, tu_store_setup, tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_end_requests, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_listen, tu_store_setup, tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_session_holder, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_waits, tu_store_setup, tu_store_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
