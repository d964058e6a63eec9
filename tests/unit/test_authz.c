/* The authorization table: principal × role × scope × action. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"
#include <sodium.h>

#include "api/api.h"
#include "authz/authz.h"
#include "store/store.h"

static char dir[64];
static struct store *st;

static int setup(void **state)
{
	bool created;

	if (!tu_tmpdir(dir, sizeof(dir), "authz") || tu_store_open(dir, &st) < 0)
		return -1;
	store_role_put(st, "a1", "user:root-reader", "Reader", "/", &created);
	store_role_put(st, "a2", "user:prod-contrib", "Contributor", "/groups/prod", &created);
	store_role_put(st, "a3", "user:vm-reader", "Reader", "/groups/prod/vms/web1", &created);
	store_role_put(st, "a4", "user:owner", "Owner", "/", &created);
	store_role_put(st, "a5", "user:mixed", "Reader", "/groups/prod", &created);
	store_role_put(st, "a6", "user:mixed", "Owner", "/groups/prod/vms/web1", &created);
	store_role_put(st, "a7", "user:prod-owner", "Owner", "/groups/prod", &created);
	store_role_put(st, "a8", "user:nic-reader", "Reader", "/groups/prod/nics/web1-nic",
		       &created);
	store_role_put(st, "a9", "user:all3", "Reader", "/groups/prod/vms/web1", &created);
	store_role_put(st, "a10", "user:all3", "Reader", "/groups/prod/nics/web1-nic", &created);
	store_role_put(st, "a11", "user:all3", "Reader", "/groups/prod/bastions/b1", &created);
	store_role_put(st, "a12", "user:bogus-role", "owner", "/", &created);
	store_role_put(st, "a13", "user:root-contrib", "Contributor", "/", &created);
	return 0;
}

static int teardown(void **state)
{
	store_free(st);
	tu_rm_tree(dir);
	return 0;
}

static void scope_covers(void **state)
{
	assert_true(authz_scope_covers("/", "/groups/a"));
	assert_true(authz_scope_covers("/", "/"));
	assert_true(authz_scope_covers("/groups/a", "/groups/a"));
	assert_true(authz_scope_covers("/groups/a", "/groups/a/vms/x"));
	assert_false(authz_scope_covers("/groups/a", "/groups/ab"));
	assert_false(authz_scope_covers("/groups/a", "/groups/ab/vms/x"));
	assert_false(authz_scope_covers("/groups/a/vms/x", "/groups/a"));
	assert_false(authz_scope_covers("/groups/A", "/groups/a"));
	assert_false(authz_scope_covers("/", "groups/a"));
}

static void role_names(void **state)
{
	enum authz_role r;

	assert_int_equal(authz_role_parse("Reader", &r), 0);
	assert_int_equal(r, AUTHZ_READER);
	assert_int_equal(authz_role_parse("Owner", &r), 0);
	assert_int_equal(r, AUTHZ_OWNER);
	assert_int_equal(authz_role_parse("owner", &r), -EINVAL);
	assert_int_equal(authz_role_parse("Admin", &r), -EINVAL);
	assert_string_equal(authz_role_name(AUTHZ_CONTRIBUTOR), "Contributor");
}

struct row {
	const char *who;
	enum authz_role need;
	const char *scope;
	int want;
};

static void table(void **state)
{
	static const struct row rows[] = {
		{ "root-reader", AUTHZ_READER, "/groups/prod/vms/web1", 0 },
		{ "root-reader", AUTHZ_READER, "/", 0 },
		{ "root-reader", AUTHZ_CONTRIBUTOR, "/groups/prod", -EACCES },
		{ "prod-contrib", AUTHZ_READER, "/groups/prod/nics/web1-nic", 0 },
		{ "prod-contrib", AUTHZ_CONTRIBUTOR, "/groups/prod/vms/web1", 0 },
		{ "prod-contrib", AUTHZ_OWNER, "/groups/prod", -EACCES },
		{ "prod-contrib", AUTHZ_READER, "/groups/dev/vms/x", -EACCES },
		{ "prod-contrib", AUTHZ_READER, "/groups/production", -EACCES },
		{ "prod-contrib", AUTHZ_READER, "/", -EACCES },
		{ "vm-reader", AUTHZ_READER, "/groups/prod/vms/web1", 0 },
		{ "vm-reader", AUTHZ_READER, "/groups/prod/nics/web1-nic", -EACCES },
		{ "vm-reader", AUTHZ_READER, "/groups/prod/vms/web10", -EACCES },
		{ "vm-reader", AUTHZ_READER, "/groups/prod", -EACCES },
		{ "owner", AUTHZ_OWNER, "/groups/any/vms/thing", 0 },
		{ "mixed", AUTHZ_OWNER, "/groups/prod/vms/web1", 0 },
		{ "mixed", AUTHZ_CONTRIBUTOR, "/groups/prod/vms/web2", -EACCES },
		{ "mixed", AUTHZ_READER, "/groups/prod/vms/web2", 0 },
		{ "nobody", AUTHZ_READER, "/groups/prod", -EACCES },
		/* An Owner of one group: everything in it, nothing beside or above. */
		{ "prod-owner", AUTHZ_OWNER, "/groups/prod", 0 },
		{ "prod-owner", AUTHZ_OWNER, "/groups/prod/bastions/b1", 0 },
		{ "prod-owner", AUTHZ_CONTRIBUTOR, "/groups/prod/nics/web1-nic", 0 },
		{ "prod-owner", AUTHZ_READER, "/groups/prod/vms/web1", 0 },
		{ "prod-owner", AUTHZ_OWNER, "/", -EACCES },
		{ "prod-owner", AUTHZ_READER, "/", -EACCES },
		{ "prod-owner", AUTHZ_OWNER, "/groups/dev", -EACCES },
		{ "prod-owner", AUTHZ_READER, "/groups/prod2", -EACCES },
		/* Scopes are compared exactly: no case folding, no normalizing. */
		{ "prod-owner", AUTHZ_READER, "/groups/Prod", -EACCES },
		{ "prod-contrib", AUTHZ_READER, "/groups/prod%2Fx", -EACCES },
		/* The connect policy's three scopes (docs/api.md "The checks", rows 3-5). */
		{ "vm-reader", AUTHZ_READER, "/groups/prod/bastions/b1", -EACCES },
		{ "nic-reader", AUTHZ_READER, "/groups/prod/vms/web1", -EACCES },
		{ "nic-reader", AUTHZ_READER, "/groups/prod/nics/web1-nic", 0 },
		{ "all3", AUTHZ_READER, "/groups/prod/vms/web1", 0 },
		{ "all3", AUTHZ_READER, "/groups/prod/nics/web1-nic", 0 },
		{ "all3", AUTHZ_READER, "/groups/prod/bastions/b1", 0 },
		{ "all3", AUTHZ_READER, "/groups/prod/bastions/b2", -EACCES },
		{ "all3", AUTHZ_CONTRIBUTOR, "/groups/prod/vms/web1", -EACCES },
		/* Root Contributor writes anywhere but manages no roles. */
		{ "root-contrib", AUTHZ_CONTRIBUTOR, "/groups/x/vms/y", 0 },
		{ "root-contrib", AUTHZ_OWNER, "/groups/x", -EACCES },
		{ "owner", AUTHZ_OWNER, "/", 0 },
		/* A role name that is not exactly a known one grants nothing. */
		{ "bogus-role", AUTHZ_READER, "/groups/prod", -EACCES },
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct principal p = { .user_id = 1 };

		snprintf(p.name, sizeof(p.name), "%s", rows[i].who);
		if (authz_require(st, &p, rows[i].need, rows[i].scope) != rows[i].want)
			fail_msg("row %zu: %s %s on %s", i, rows[i].who,
				 authz_role_name(rows[i].need), rows[i].scope);
	}
}

static void effective_is_strongest(void **state)
{
	struct principal p = { .user_id = 1, .name = "mixed" };
	enum authz_role r;

	assert_int_equal(authz_effective(st, &p, "/groups/prod/vms/web1", &r), 0);
	assert_int_equal(r, AUTHZ_OWNER);
	assert_int_equal(authz_effective(st, &p, "/groups/prod", &r), 0);
	assert_int_equal(r, AUTHZ_READER);
	assert_int_equal(authz_effective(st, &p, "/groups/dev", &r), 0);
	assert_int_equal(r, AUTHZ_NONE);
}

/* Who may see an assignment: its principal, or Reader on its scope. */
static void assignment_visible(void **state)
{
	static const struct {
		const char *who, *principal, *scope;
		int want;
	} rows[] = {
		{ "owner", "user:anyone", "/", 0 },
		{ "owner", "user:anyone", "/groups/dev/vms/x", 0 },
		{ "prod-owner", "user:x", "/groups/prod", 0 },
		{ "prod-owner", "user:x", "/groups/prod/vms/web1", 0 },
		{ "prod-owner", "user:owner", "/", -EACCES },
		{ "prod-owner", "user:x", "/groups/dev", -EACCES },
		{ "vm-reader", "user:x", "/groups/prod/vms/web1", 0 },
		{ "vm-reader", "user:x", "/groups/prod", -EACCES },
		{ "vm-reader", "user:vm-reader", "/groups/prod/vms/web1", 0 },
		{ "nobody", "user:nobody", "/", 0 },
		{ "nobody", "user:nobody2", "/groups/a", -EACCES },
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct principal p = { .user_id = 1 };

		snprintf(p.name, sizeof(p.name), "%s", rows[i].who);
		if (authz_assignment_visible(st, &p, rows[i].principal, rows[i].scope) !=
		    rows[i].want)
			fail_msg("row %zu: %s sees %s at %s", i, rows[i].who, rows[i].principal,
				 rows[i].scope);
	}
}

/* networks/join (joining a network): which roles carry it, and the table
 * of every role at every scope level against one network. */
static void join_table(void **state)
{
	static const char *const net = "/groups/net/networks/n";
	static const struct {
		const char *scope;
		bool covers; /* the scope is the network or above it */
	} levels[] = {
		{ "/", true },
		{ "/groups/net", true },
		{ "/groups/net/networks/n", true },
		{ "/groups/net/networks/n2", false },  /* a sibling network */
		{ "/groups/net/networks/n/x", false }, /* below it */
		{ "/groups/net/nics/n", false },       /* same name, other type */
		{ "/groups/ne", false },               /* a prefix of the group's name */
		{ "/groups/other", false },
	};
	static const char *const roles[] = { "Reader", "Contributor", "Owner" };
	bool created;
	int id = 0;

	assert_false(authz_role_carries(AUTHZ_NONE, AUTHZ_PERM_NETWORK_JOIN));
	assert_false(authz_role_carries(AUTHZ_READER, AUTHZ_PERM_NETWORK_JOIN));
	assert_true(authz_role_carries(AUTHZ_CONTRIBUTOR, AUTHZ_PERM_NETWORK_JOIN));
	assert_true(authz_role_carries(AUTHZ_OWNER, AUTHZ_PERM_NETWORK_JOIN));
	assert_int_equal(authz_perm_role(AUTHZ_PERM_NETWORK_JOIN), AUTHZ_CONTRIBUTOR);
	assert_string_equal(authz_perm_name(AUTHZ_PERM_NETWORK_JOIN), "networks/join");

	for (size_t r = 0; r < sizeof(roles) / sizeof(roles[0]); r++) {
		for (size_t l = 0; l < sizeof(levels) / sizeof(levels[0]); l++) {
			struct principal p = { .user_id = 1 };
			char aid[32], principal[80];
			enum authz_role role;
			int want, got;

			snprintf(p.name, sizeof(p.name), "join-%zu-%zu", r, l);
			snprintf(principal, sizeof(principal), "user:%s", p.name);
			snprintf(aid, sizeof(aid), "join%d", id++);
			assert_int_equal(store_role_put(st, aid, principal, roles[r],
							levels[l].scope, &created),
					 0);
			assert_int_equal(authz_role_parse(roles[r], &role), 0);
			want = levels[l].covers && role >= AUTHZ_CONTRIBUTOR ? 0 : -EACCES;
			got = authz_require_perm(st, &p, AUTHZ_PERM_NETWORK_JOIN, net);
			if (got != want)
				fail_msg("%s at %s: join %s gave %d, want %d", roles[r],
					 levels[l].scope, net, got, want);
			/* Reading is not joining: Reader at a covering scope reads. */
			if (levels[l].covers)
				assert_int_equal(authz_require(st, &p, AUTHZ_READER, net), 0);
		}
	}
	/* No assignment at all, and a role name that is not exact. */
	{
		struct principal p = { .user_id = 1, .name = "nobody" };
		struct principal b = { .user_id = 1, .name = "bogus-role" };

		assert_int_equal(authz_require_perm(st, &p, AUTHZ_PERM_NETWORK_JOIN, net), -EACCES);
		assert_int_equal(authz_require_perm(st, &b, AUTHZ_PERM_NETWORK_JOIN, net), -EACCES);
	}
	/* Reader on the network plus Contributor elsewhere (the attack of
	 * issue 13 item 4): still no join. */
	{
		struct principal p = { .user_id = 1, .name = "attacker" };

		assert_int_equal(store_role_put(st, "atk1", "user:attacker", "Contributor",
						"/groups/mine", &created),
				 0);
		assert_int_equal(store_role_put(st, "atk2", "user:attacker", "Reader",
						"/groups/net/networks/n", &created),
				 0);
		assert_int_equal(authz_require_perm(st, &p, AUTHZ_PERM_NETWORK_JOIN, net), -EACCES);
		assert_int_equal(authz_require_perm(st, &p, AUTHZ_PERM_NETWORK_JOIN,
						    "/groups/mine/networks/own"),
				 0);
	}
}

/* The Auditor (SPEC §8): reads as Reader does, carries recordings/read
 * and audit/read like Owner, never connect nor write; every role against
 * every new permission at a scope that covers and one that does not. */
static void auditor_table(void **state)
{
	static const char *const bastion = "/groups/aud/bastions/b";
	static const struct {
		const char *role;
		bool connect, recordings, audit, write;
	} roles[] = {
		{ "Reader", true, false, false, false },
		{ "Contributor", true, false, false, true },
		{ "Owner", true, true, true, true },
		{ "Auditor", false, true, true, false },
	};
	bool created;
	enum authz_role r;

	assert_int_equal(authz_role_parse("Auditor", &r), 0);
	assert_int_equal(r, AUTHZ_AUDITOR);
	assert_string_equal(authz_role_name(AUTHZ_AUDITOR), "Auditor");
	assert_int_equal(authz_role_parse("auditor", &r), -EINVAL);
	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
		for (int covers = 0; covers < 2; covers++) {
			struct principal p = { .user_id = 1 };
			char aid[32], principal[80];
			const char *scope = covers ? "/groups/aud" : "/groups/other";
			enum authz_role eff;

			snprintf(p.name, sizeof(p.name), "aud-%zu-%d", i, covers);
			snprintf(principal, sizeof(principal), "user:%s", p.name);
			snprintf(aid, sizeof(aid), "aud%zu-%d", i, covers);
			assert_int_equal(
				store_role_put(st, aid, principal, roles[i].role, scope, &created),
				0);
#define WANT(b) ((covers && (b)) ? 0 : -EACCES)
			assert_int_equal(authz_require(st, &p, AUTHZ_READER, bastion), WANT(true));
			assert_int_equal(authz_require(st, &p, AUTHZ_CONTRIBUTOR, bastion),
					 WANT(roles[i].write));
			assert_int_equal(authz_require_perm(st, &p, AUTHZ_PERM_CONNECT, bastion),
					 WANT(roles[i].connect));
			assert_int_equal(
				authz_require_perm(st, &p, AUTHZ_PERM_RECORDINGS_READ, bastion),
				WANT(roles[i].recordings));
			assert_int_equal(authz_require_perm(st, &p, AUTHZ_PERM_AUDIT_READ, bastion),
					 WANT(roles[i].audit));
			assert_int_equal(
				authz_require_perm(st, &p, AUTHZ_PERM_NETWORK_JOIN, bastion),
				WANT(roles[i].write));
#undef WANT
			/* The Auditor's rank is Reader's: never above Owner. */
			assert_int_equal(authz_effective(st, &p, bastion, &eff), 0);
			if (covers && strcmp(roles[i].role, "Auditor") == 0)
				assert_int_equal(eff, AUTHZ_READER);
		}
	}
	/* Auditor beside Contributor: writes by Contributor, reads recordings
	 * by Auditor. */
	{
		struct principal p = { .user_id = 1, .name = "aud-both" };

		assert_int_equal(
			store_role_put(st, "audb1", "user:aud-both", "Auditor", "/", &created), 0);
		assert_int_equal(store_role_put(st, "audb2", "user:aud-both", "Contributor",
						"/groups/aud", &created),
				 0);
		assert_int_equal(authz_require(st, &p, AUTHZ_CONTRIBUTOR, bastion), 0);
		assert_int_equal(authz_require(st, &p, AUTHZ_CONTRIBUTOR, "/groups/x"), -EACCES);
		assert_int_equal(
			authz_require_perm(st, &p, AUTHZ_PERM_RECORDINGS_READ, "/groups/x"), 0);
		assert_int_equal(authz_require_perm(st, &p, AUTHZ_PERM_CONNECT, "/groups/x/vms/v"),
				 -EACCES);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(scope_covers),
		cmocka_unit_test(role_names),
		cmocka_unit_test(table),
		cmocka_unit_test(effective_is_strongest),
		cmocka_unit_test(assignment_visible),
		cmocka_unit_test(join_table),
		cmocka_unit_test(auditor_table),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, setup, teardown);
}
