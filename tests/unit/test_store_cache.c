/* The PostgreSQL store's per-instance read cache (store/pg_cache.c): two
 * store handles on one database play two instances, A and B. A change
 * made on A is seen by B's next lookup once its notification has arrived
 * (store_cache_sync waits for that, as a request arriving later would find
 * it); a fill that raced a write is not kept; without its LISTEN
 * connection, or with the server gone, B answers from the store, not from
 * memory. On SQLite the same changes are seen (there is nothing to cache);
 * the cases about the cache's machinery are skipped there. The last case
 * measures how late a notification is (printed, not asserted). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

#include "core/err.h"
#include "core/log.h"
#include "store/backend.h"
#include "store/pg_internal.h"
#include "store/store.h"

struct fx {
	char dir[64];
	struct store *a, *b;
	int64_t uid;
	uint8_t tok[32];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	json_t *vm = json_pack("{s:s}", "nic", "/groups/g/nics/n");

	assert_non_null(f);
	assert_non_null(tu_tmpdir(f->dir, sizeof(f->dir), "cache"));
	assert_int_equal(tu_store_open(f->dir, &f->a), 0);
	assert_int_equal(tu_store_open(f->dir, &f->b), 0);
	assert_int_equal(store_user_put(f->a, "uma", "x", NULL, &f->uid), 0);
	memset(f->tok, 7, sizeof(f->tok));
	assert_int_equal(store_token_add(f->a, f->tok, f->uid, "t", store_now() + 3600), 0);
	assert_int_equal(store_group_put(f->a, "g", NULL), 0);
	assert_int_equal(store_res_put(f->a, "g", "vms", "v1", vm, NULL, NULL), 0);
	assert_int_equal(store_res_put(f->a, "g", "vms", "v2", vm, NULL, NULL), 0);
	assert_int_equal(store_role_put(f->a, "r1", "user:uma", "Reader", "/groups/g", NULL), 0);
	json_decref(vm);
	/* What setup wrote has reached both caches. */
	assert_int_equal(store_cache_sync(f->a), 0);
	assert_int_equal(store_cache_sync(f->b), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	store_free(f->a);
	store_free(f->b);
	tu_rm_tree(f->dir);
	free(f);
	return 0;
}

static int count_role(const char *role, const char *scope, void *ud)
{
	(void)role;
	(void)scope;
	(*(int *)ud)++;
	return 0;
}

/* uma's assignments as s answers them; *ret_stmts: the statements sent. */
static int roles_of_uma(struct store *s, uint64_t *ret_stmts)
{
	uint64_t before = store_statements();
	int n = 0;

	assert_int_equal(store_role_foreach_principal(s, "user:uma", count_role, &n), 0);
	if (ret_stmts)
		*ret_stmts = store_statements() - before;
	return n;
}

static int count_res(const char *id, const char *name, json_t *props, void *ud)
{
	(void)id;
	(void)name;
	(void)props;
	(*(int *)ud)++;
	return 0;
}

static int vms_in_g(struct store *s)
{
	int n = 0;

	assert_int_equal(store_res_foreach(s, "g", "vms", count_res, &n), 0);
	return n;
}

/* B answers from memory once warm: no statement on PostgreSQL. */
static void warm(struct store *b)
{
	uint64_t st;

	/* Notifications of earlier writes in first: none drops the fill. */
	assert_int_equal(store_cache_sync(b), 0);
	roles_of_uma(b, NULL);
	roles_of_uma(b, &st);
	if (tu_pg())
		assert_int_equal(st, 0);
}

static void role_removed_on_a_is_refused_on_b(void **state)
{
	struct fx *f = *state;
	struct store_cache_stats cs;
	uint64_t st;

	warm(f->b);
	assert_int_equal(roles_of_uma(f->b, NULL), 1);
	assert_int_equal(store_role_put(f->a, "r2", "user:uma", "Owner", "/groups/g", NULL), 0);
	assert_int_equal(store_cache_sync(f->b), 0);
	assert_int_equal(roles_of_uma(f->b, &st), 2);
	assert_int_equal(store_role_delete(f->a, "r1"), 0);
	assert_int_equal(store_role_delete(f->a, "r2"), 0);
	assert_int_equal(store_cache_sync(f->b), 0);
	assert_int_equal(roles_of_uma(f->b, &st), 0);
	/* The writer itself sees its write at once, before any notification:
	 * its own cache dropped the domain when the write returned (the
	 * stats do not drain the LISTEN connection: only that emptied it). */
	warm(f->a);
	store_cache_stats(f->a, &cs);
	assert_true(!tu_pg() || cs.entries > 0);
	assert_int_equal(store_role_put(f->a, "r3", "user:uma", "Reader", "/groups/g", NULL), 0);
	store_cache_stats(f->a, &cs);
	assert_int_equal(cs.entries, 0);
	assert_int_equal(roles_of_uma(f->a, NULL), 1);
}

static void disabled_user_and_revoked_token(void **state)
{
	struct fx *f = *state;
	struct store_token t;

	assert_int_equal(store_token_lookup(f->b, f->tok, &t), 0);
	assert_int_equal(store_token_lookup(f->b, f->tok, &t), 0);
	assert_false(t.user_disabled);
	assert_int_equal(store_user_set_disabled(f->a, "uma", true), 0);
	assert_int_equal(store_cache_sync(f->b), 0);
	assert_int_equal(store_token_lookup(f->b, f->tok, &t), 0);
	assert_true(t.user_disabled);
	assert_int_equal(store_user_set_disabled(f->a, "uma", false), 0);
	assert_int_equal(store_cache_sync(f->b), 0);
	assert_int_equal(store_token_lookup(f->b, f->tok, &t), 0);
	assert_false(t.user_disabled);
	assert_int_equal(store_token_delete(f->a, f->tok), 0);
	assert_int_equal(store_cache_sync(f->b), 0);
	assert_int_equal(store_token_lookup(f->b, f->tok, &t), -ENOENT);
}

static void deleted_vm_leaves_b_list(void **state)
{
	struct fx *f = *state;
	json_t *p = NULL;

	assert_int_equal(vms_in_g(f->b), 2);
	assert_int_equal(vms_in_g(f->b), 2);
	assert_int_equal(store_res_get(f->b, "/groups/g/vms/v1", &p), 0);
	json_decref(p);
	assert_int_equal(store_res_delete(f->a, "/groups/g/vms/v1"), 0);
	assert_int_equal(store_cache_sync(f->b), 0);
	assert_int_equal(vms_in_g(f->b), 1);
	assert_int_equal(store_res_get(f->b, "/groups/g/vms/v1", &p), -ENOENT);
}

static size_t entries(struct store *s)
{
	struct store_cache_stats cs;

	store_cache_stats(s, &cs);
	return cs.entries;
}

/* The writing instance drops what its write may change when the write
 * returns, before any notification (the stats do not drain the LISTEN
 * connection): its next read sees the write. A write to one domain keeps
 * the others' entries (a resource written, the token stays cached). */
static void writer_sees_own_writes(void **state)
{
	struct fx *f = *state;
	json_t *vm = json_pack("{s:s}", "nic", "/groups/g/nics/n"), *keys = NULL;
	struct store_token t;
	size_t n;

	assert_int_equal(store_cache_sync(f->a), 0);
	assert_int_equal(store_token_lookup(f->a, f->tok, &t), 0);
	assert_int_equal(vms_in_g(f->a), 2);
	assert_int_equal(store_hostkey_get(f->a, "/groups/g/vms/v1", &keys), 0);
	json_decref(keys);
	roles_of_uma(f->a, NULL);
	n = entries(f->a);
	assert_true(!tu_pg() || n == 4);
	assert_int_equal(store_res_put(f->a, "g", "vms", "v3", vm, NULL, NULL), 0);
	assert_true(!tu_pg() || entries(f->a) == n - 1);
	assert_int_equal(vms_in_g(f->a), 3);
	n = entries(f->a);
	assert_int_equal(store_hostkey_add(f->a, "/groups/g/vms/v1", "ssh-ed25519", "AAAA"), 0);
	assert_true(!tu_pg() || entries(f->a) == n - 1);
	assert_int_equal(store_hostkey_get(f->a, "/groups/g/vms/v1", &keys), 0);
	assert_int_equal(json_array_size(keys), 1);
	json_decref(keys);
	n = entries(f->a);
	assert_int_equal(store_role_put(f->a, "r9", "user:uma", "Owner", "/groups/g", NULL), 0);
	/* The token's entry holds its owner's assignments: it goes too. */
	assert_true(!tu_pg() || entries(f->a) == n - 2);
	assert_int_equal(roles_of_uma(f->a, NULL), 2);
	assert_int_equal(store_token_lookup(f->a, f->tok, &t), 0);
	assert_int_equal(store_user_set_disabled(f->a, "uma", true), 0);
	assert_int_equal(store_token_lookup(f->a, f->tok, &t), 0);
	assert_true(t.user_disabled);
	assert_int_equal(store_token_delete(f->a, f->tok), 0);
	assert_int_equal(store_token_lookup(f->a, f->tok, &t), -ENOENT);
	json_decref(vm);
}

/* A fill whose read began before a write to its domain is answered but
 * not kept: its generation moved meanwhile. */
static void write_racing_fill_is_not_kept(void **state)
{
	struct fx *f = *state;
	struct pgc_fill fill, again;
	char *val = NULL;
	size_t len = 0;
	const char key[] = "Xrace";

	if (!tu_pg())
		skip();
	assert_int_equal(pgc_get(f->b, key, sizeof(key), PGC_ROLES, &val, &len, &fill), 0);
	/* ... the read runs; A writes meanwhile and B hears of it ... */
	assert_int_equal(store_role_delete(f->a, "r1"), 0);
	assert_int_equal(store_cache_sync(f->b), 0);
	pgc_put(f->b, key, sizeof(key), "old", 4, &fill);
	assert_int_equal(pgc_get(f->b, key, sizeof(key), PGC_ROLES, &val, &len, &again), 0);
	/* A fill that nothing raced is kept; one of another domain too. */
	pgc_put(f->b, key, sizeof(key), "new", 4, &again);
	assert_int_equal(pgc_get(f->b, key, sizeof(key), PGC_ROLES, &val, &len, &fill), 1);
	assert_string_equal(val, "new");
	free(val);
	assert_int_equal(store_role_put(f->a, "r1", "user:uma", "Reader", "/groups/g", NULL), 0);
	assert_int_equal(store_cache_sync(f->b), 0);
	assert_int_equal(pgc_get(f->b, key, sizeof(key), PGC_ROLES, &val, &len, &fill), 0);
}

/* Waits (bounded) until server process pid is gone: what it said last is
 * then in the client's socket. */
static void wait_gone(struct store *s, int pid)
{
	char arg[16];

	snprintf(arg, sizeof(arg), "%d", pid);
	for (int i = 0; i < 500; i++) {
		if (tu_query_int(s, "SELECT count(*) FROM pg_stat_activity WHERE pid = ?::int",
				 arg) == 0)
			return;
		usleep(10000);
	}
	fail_msg("server process %d did not end", pid);
}

/* B's LISTEN connection ends: a change A makes meanwhile (whose
 * notification B cannot get) is seen by B all the same, because B no
 * longer answers from memory (and when it listens again, starts empty). */
static void listener_lost_no_cached_answers(void **state)
{
	struct fx *f = *state;
	struct store_cache_stats cs;
	char arg[16];
	uint64_t st;

	if (!tu_pg())
		skip();
	warm(f->b);
	store_cache_stats(f->b, &cs);
	assert_true(cs.listening && cs.listen_pid > 0 && cs.entries > 0);
	snprintf(arg, sizeof(arg), "%d", cs.listen_pid);
	assert_int_equal(tu_query_int(f->a, "SELECT pg_terminate_backend(?::int)::int", arg), 1);
	wait_gone(f->a, cs.listen_pid);
	assert_int_equal(store_role_delete(f->a, "r1"), 0);
	assert_int_equal(roles_of_uma(f->b, &st), 0);
	assert_true(st >= 1);
	/* Listening again (the probe's next second), it starts empty. */
	for (int i = 0; i < 500; i++) {
		store_cache_stats(f->b, &cs);
		if (cs.listening)
			break;
		usleep(10000);
	}
	assert_true(cs.listening);
	assert_int_equal(store_cache_sync(f->b), 0);
	assert_int_equal(roles_of_uma(f->b, &st), 0);
	assert_int_equal(st, 1);
	assert_int_equal(roles_of_uma(f->b, &st), 0);
	assert_int_equal(st, 0);
}

/* The server stopped: B's requests reach the store and fail (the API's
 * 503), none is answered from memory; once it is back, B reads anew. */
static void server_stopped_requests_reach_store(void **state)
{
	struct fx *f = *state;
	struct store_cache_stats cs;
	struct store_token t;
	uint64_t st;

	if (!tu_pg())
		skip();
	warm(f->b);
	assert_int_equal(store_token_lookup(f->b, f->tok, &t), 0);
	assert_int_equal(store_token_lookup(f->b, f->tok, &t), 0);
	if (tu_pg_halt() < 0) {
		print_message("SKIP: this run's cluster is shared (cannot stop it)\n");
		skip();
	}
	assert_int_equal(store_token_lookup(f->b, f->tok, &t), -BERR_STORE);
	{
		int n = 0;

		assert_int_equal(store_role_foreach_principal(f->b, "user:uma", count_role, &n),
				 -BERR_STORE);
	}
	assert_int_equal(tu_pg_resume(), 0);
	for (int i = 0; i < 1000; i++) {
		store_cache_stats(f->b, &cs);
		if (cs.listening && store_reachable(f->b))
			break;
		usleep(10000);
	}
	assert_true(cs.listening);
	assert_int_equal(roles_of_uma(f->b, &st), 1);
	assert_true(st >= 1);
}

/* Every change on A reaches B: B, warm, asks again until its answer
 * shows A's change (a role added, then removed, ten times each); without
 * the notifications B would answer from its copy for the entry's whole
 * life (30 s) and the bounded loop would fail. How late it is, measured
 * through HTTP on two running instances: bench/api_bench.py visible. */
static void every_change_reaches_b(void **state)
{
	struct fx *f = *state;

	if (!tu_pg())
		skip();
	for (int i = 0; i < 20; i++) {
		bool add = i % 2 == 0;
		int want = add ? 2 : 1, n = 0;

		warm(f->b);
		if (add)
			assert_int_equal(
				store_role_put(f->a, "rl", "user:uma", "Owner", "/groups/g", NULL),
				0);
		else
			assert_int_equal(store_role_delete(f->a, "rl"), 0);
		for (int spin = 0; spin < 2000000 && n != want; spin++)
			n = roles_of_uma(f->b, NULL);
		assert_int_equal(n, want);
	}
}

/* The lists that sort the store's entries by name (the reads that keep a
 * request's copy and that the cache may answer; the writes that leave the
 * cache or one domain of it alone) name entries that exist: a renamed
 * entry would otherwise leave its old name behind while the new one falls
 * to the default (dropping the whole cache on every call). */
static void lists_name_store_entries(void **state)
{
	(void)state;
	assert_null(store_req_unknown_name());
	assert_null(pgc_unknown_name());
	assert_false(store_op_exists("wait_holder"));
	assert_true(store_op_exists("session_holder"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(lists_name_store_entries),
		cmocka_unit_test_setup_teardown(role_removed_on_a_is_refused_on_b, setup, teardown),
		cmocka_unit_test_setup_teardown(disabled_user_and_revoked_token, setup, teardown),
		cmocka_unit_test_setup_teardown(deleted_vm_leaves_b_list, setup, teardown),
		cmocka_unit_test_setup_teardown(writer_sees_own_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(write_racing_fill_is_not_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(listener_lost_no_cached_answers, setup, teardown),
		cmocka_unit_test_setup_teardown(server_stopped_requests_reach_store, setup,
						teardown),
		cmocka_unit_test_setup_teardown(every_change_reaches_b, setup, teardown),
	};

	log_set_level(LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
