/* Store core and identity store: migrations, users, browser sessions, API
 * tokens, role assignments, sign-in throttle rows and the append-only audit
 * trail (threads, instances, reconnects and files: test_store_multi.c). */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

#include <libpq-fe.h>

#include "core/err.h"
#include "store/internal.h"
#include "store/store.h"
#include "store/store_ops.h"
#include "store/store_vault.h"

static void hash_of(uint8_t h[32], uint8_t fill)
{
	memset(h, fill, 32);
}

/* 0 when sql ran, -1 when the database refused it. */
static int exec_sql(struct tu_store *f, const char *sql)
{
	int r;

	if (tu_pg()) {
		char url[640];
		PGconn *c;
		PGresult *res;

		assert_int_equal(tu_pg_url(f->dir, url, sizeof(url)), 0);
		c = PQconnectdb(url);
		res = PQexec(c, sql);
		r = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
		PQclear(res);
		PQfinish(c);
	} else {
		r = sqlite3_exec(store_db(f->s), sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
	}
	return r;
}

static const char *version_sql(void)
{
	return tu_pg() ? "SELECT version FROM schema_version" : "PRAGMA user_version";
}

/* ---- store core ----------------------------------------------------- */

static void test_migrations_reopen(void **state)
{
	struct tu_store *f = *state;
	struct store_user u;
	int v = store_schema_version(f->s);

	assert_true(v >= 1);
	assert_int_equal(tu_query_int(f->s, version_sql(), NULL), v);
	assert_int_equal(store_user_put(f->s, "alice", "$argon2id$x", NULL, NULL), 0);

	/* Reopening applies nothing twice and keeps the data. */
	store_free(f->s);
	f->s = NULL;
	assert_int_equal(tu_store_open(f->dir, &f->s), 0);
	assert_int_equal(store_schema_version(f->s), v);
	assert_int_equal(tu_query_int(f->s, version_sql(), NULL), v);
	assert_int_equal(store_user_get(f->s, "alice", &u), 0);
	assert_string_equal(u.password_hash, "$argon2id$x");

	store_free(f->s);
	f->s = NULL;
	assert_int_equal(tu_store_open(f->dir, &f->s), 0);
	assert_int_equal(store_schema_version(f->s), v);
	assert_int_equal(tu_query_int(f->s, "SELECT count(*) FROM users", NULL), 1);
}

static void test_newer_schema_refused(void **state)
{
	struct tu_store *f = *state;
	struct store *s2 = NULL;

	assert_int_equal(exec_sql(f, tu_pg() ? "UPDATE schema_version SET version = 9999"
					     : "PRAGMA user_version=9999"),
			 0);
	assert_true(tu_store_open(f->dir, &s2) < 0);
	assert_null(s2);
}

/* The tools' read-only open (`audit export`, `serve --check-config`):
 * PostgreSQL only, never migrates, never writes, and says when the schema
 * is newer than this binary. */
static void test_open_read_only(void **state)
{
	struct tu_store *f = *state;
	struct store *ro = NULL;
	char url[640];
	int version = -1, known = -1;
	int64_t n = -1;

	if (!tu_pg()) {
		assert_int_equal(store_open_url_ro("", &ro, NULL, NULL), -EINVAL);
		assert_null(ro);
		return;
	}
	assert_int_equal(tu_pg_url(f->dir, url, sizeof(url)), 0);
	assert_int_equal(store_audit(f->s, "user:a", "thing.do", "x", "success", NULL), 0);
	assert_int_equal(store_open_url_ro(url, &ro, &version, &known), 0);
	assert_int_equal(version, store_schema_version(f->s));
	assert_int_equal(known, version);
	assert_int_equal(store_user_count(ro, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_audit(ro, "user:a", "thing.do", "x", "success", NULL), -BERR_STORE);
	store_free(ro);
	assert_int_equal(tu_query_int(f->s, "SELECT count(*) FROM audit", NULL), 1);
	assert_int_equal(exec_sql(f, "UPDATE schema_version SET version = 9999"), 0);
	ro = NULL;
	assert_int_equal(store_open_url_ro(url, &ro, &version, &known), -EPROTO);
	assert_null(ro);
	assert_int_equal(version, 9999);
	/* A database no instance started on: version 0, nothing to read. */
	assert_int_equal(exec_sql(f, "DROP TABLE schema_version"), 0);
	assert_int_equal(store_open_url_ro(url, &ro, &version, &known), 0);
	assert_int_equal(version, 0);
	store_free(ro);
}

/* A record kept while the store was away is written with its own time,
 * and a retry of it (once) never writes it twice; NULL columns compare
 * equal. Without once, identical records are all kept. */
static void test_audit_at_once(void **state)
{
	struct tu_store *f = *state;

	assert_int_equal(store_audit_at(f->s, 1234, true, "user:a", "session.end", NULL, "ended",
					"{\"session\":\"s1\"}"),
			 0);
	assert_int_equal(store_audit_at(f->s, 1234, true, "user:a", "session.end", NULL, "ended",
					"{\"session\":\"s1\"}"),
			 0);
	assert_int_equal(tu_query_int(f->s, "SELECT count(*) FROM audit WHERE ts = 1234", NULL), 1);
	assert_int_equal(store_audit_at(f->s, 1234, true, "user:a", "session.end", NULL, "ended",
					"{\"session\":\"s2\"}"),
			 0);
	assert_int_equal(store_audit_at(f->s, 1235, true, "user:a", "session.end", NULL, "ended",
					"{\"session\":\"s1\"}"),
			 0);
	assert_int_equal(tu_query_int(f->s, "SELECT count(*) FROM audit", NULL), 3);
	assert_int_equal(store_audit_at(f->s, 1234, false, "user:a", "thing", "t", NULL, NULL), 0);
	assert_int_equal(store_audit_at(f->s, 1234, false, "user:a", "thing", "t", NULL, NULL), 0);
	assert_int_equal(store_audit_at(f->s, 1234, true, "user:a", "thing", "t", NULL, NULL), 0);
	assert_int_equal(
		tu_query_int(f->s, "SELECT count(*) FROM audit WHERE action = 'thing'", NULL), 2);
}

static void test_audit_append_only(void **state)
{
	struct tu_store *f = *state;
	assert_int_equal(store_audit(f->s, "user:a", "thing.do", "x", "success", "{\"k\":1}"), 0);
	assert_int_equal(store_audit(f->s, NULL, "thing.do", NULL, NULL, NULL), 0);
	assert_int_equal(tu_query_int(f->s, "SELECT count(*) FROM audit", NULL), 2);
	assert_int_equal(exec_sql(f, "UPDATE audit SET action = 'forged'"), -1);
	assert_int_equal(exec_sql(f, "DELETE FROM audit"), -1);
	if (tu_pg())
		assert_int_equal(exec_sql(f, "TRUNCATE audit"), -1);
	assert_int_equal(tu_query_int(f->s, "SELECT count(*) FROM audit", NULL), 2);
	assert_int_equal(
		tu_query_int(f->s, "SELECT count(*) FROM audit WHERE action = 'forged'", NULL), 0);
}

/* ---- users ---------------------------------------------------------- */

static int collect_names(const struct store_user *u, void *ud)
{
	char *buf = ud;
	size_t used = strlen(buf);

	snprintf(buf + used, 256 - used, "%s,", u->name);
	return 0;
}

static int stop_first(const struct store_user *u, void *ud)
{
	(*(int *)ud)++;
	return 1;
}

static int fail_first(const struct store_user *u, void *ud)
{
	return -E2BIG;
}

static void test_users_crud(void **state)
{
	struct tu_store *f = *state;
	struct store_user u, u2;
	bool created = false;
	int64_t n = -1, id = 0, id2 = 0;
	char names[256] = "";
	int calls = 0;

	assert_int_equal(store_user_count(f->s, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_user_get(f->s, "bob", &u), -ENOENT);

	assert_int_equal(store_user_put(f->s, "bob", "hash1", &created, &id), 0);
	assert_true(created);
	assert_true(id > 0);
	assert_int_equal(store_user_get(f->s, "bob", &u), 0);
	assert_int_equal(u.id, id);
	assert_string_equal(u.name, "bob");
	assert_string_equal(u.password_hash, "hash1");
	assert_false(u.disabled);
	assert_true(u.created_at > 0);
	assert_true(u.updated_at >= u.created_at);

	/* Replacing keeps the id and the creation time. */
	assert_int_equal(store_user_set_disabled(f->s, "bob", true), 0);
	assert_int_equal(store_user_put(f->s, "bob", "hash2", &created, &id2), 0);
	assert_false(created);
	assert_int_equal(id2, id);
	assert_int_equal(store_user_get_by_id(f->s, id, &u2), 0);
	assert_string_equal(u2.password_hash, "hash2");
	assert_int_equal(u2.created_at, u.created_at);
	assert_true(u2.disabled); /* replacing the password leaves the flag */
	assert_int_equal(store_user_set_disabled(f->s, "bob", false), 0);
	assert_int_equal(store_user_get(f->s, "bob", &u2), 0);
	assert_false(u2.disabled);
	assert_int_equal(store_user_set_disabled(f->s, "nobody", true), -ENOENT);

	assert_int_equal(store_user_put(f->s, "alice", "h", NULL, NULL), 0);
	assert_int_equal(store_user_put(f->s, "carol", "h", NULL, NULL), 0);
	assert_int_equal(store_user_count(f->s, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(store_user_foreach(f->s, collect_names, names), 0);
	assert_string_equal(names, "alice,bob,carol,");
	assert_int_equal(store_user_foreach(f->s, stop_first, &calls), 0);
	assert_int_equal(calls, 1);
	assert_int_equal(store_user_foreach(f->s, fail_first, NULL), -E2BIG);

	assert_int_equal(store_user_get_by_id(f->s, 424242, &u), -ENOENT);
	assert_int_equal(store_user_delete(f->s, "alice"), 0);
	assert_int_equal(store_user_delete(f->s, "alice"), -ENOENT);
	assert_int_equal(store_user_get(f->s, "alice", &u), -ENOENT);
	assert_int_equal(store_user_count(f->s, &n), 0);
	assert_int_equal(n, 2);
}

static void test_users_limits(void **state)
{
	struct tu_store *f = *state;
	char longname[70], longhash[200];
	struct store_user u;

	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	memset(longhash, 'h', sizeof(longhash) - 1);
	longhash[sizeof(longhash) - 1] = '\0';
	assert_int_equal(store_user_put(f->s, longname, "h", NULL, NULL), -EINVAL);
	assert_int_equal(store_user_put(f->s, "ok", longhash, NULL, NULL), -EINVAL);
	assert_int_equal(store_user_put(f->s, "", "h", NULL, NULL), -EINVAL);
	assert_int_equal(store_user_get(f->s, longname, &u), -ENOENT);
	assert_int_equal(store_user_delete(f->s, longname), -ENOENT);

	/* A row this code never wrote (an oversized hash) is a store error,
	 * not an overflow. */
	assert_int_equal(
		exec_sql(f, tu_pg() ? "INSERT INTO users (name, password_hash, created_at,"
				      " updated_at) VALUES ('odd', repeat('x', 300), 1, 1)"
				    : "INSERT INTO users (name, password_hash, created_at,"
				      " updated_at) VALUES ('odd', printf('%.300c', 'x'), 1, 1)"),
		0);
	assert_int_equal(store_user_get(f->s, "odd", &u), -BERR_STORE);
}

static void test_create_first(void **state)
{
	struct tu_store *f = *state;
	struct store_role ra;
	struct store_user u;

	assert_int_equal(store_user_create_first(f->s, "admin", "h1", "first", "Owner", "/"), 0);
	assert_int_equal(store_user_get(f->s, "admin", &u), 0);
	assert_int_equal(store_role_get(f->s, "first", &ra), 0);
	assert_string_equal(ra.principal, "user:admin");
	assert_string_equal(ra.role, "Owner");
	assert_string_equal(ra.scope, "/");
	/* Once any user exists, nothing more is created. */
	assert_int_equal(store_user_create_first(f->s, "other", "h2", "second", "Owner", "/"),
			 -EEXIST);
	assert_int_equal(store_user_get(f->s, "other", &u), -ENOENT);
	assert_int_equal(store_role_get(f->s, "second", &ra), -ENOENT);
}

static void test_user_delete_cascades(void **state)
{
	struct tu_store *f = *state;
	uint8_t h1[32], h2[32];
	int64_t uid, other, x, y;
	char csrf[64];

	hash_of(h1, 1);
	hash_of(h2, 2);
	assert_int_equal(store_user_put(f->s, "dave", "h", NULL, &uid), 0);
	assert_int_equal(store_user_put(f->s, "erin", "h", NULL, &other), 0);
	assert_int_equal(store_login_add(f->s, h1, uid, "csrf", store_now() + 100), 0);
	assert_int_equal(store_token_add(f->s, h2, uid, "ci", store_now() + 100), 0);
	assert_int_equal(store_role_put(f->s, "r1", "user:dave", "Reader", "/groups/g", NULL), 0);
	assert_int_equal(store_role_put(f->s, "r2", "user:erin", "Reader", "/groups/g", NULL), 0);

	assert_int_equal(store_user_delete(f->s, "dave"), 0);
	assert_int_equal(store_login_get(f->s, h1, &x, csrf, &y), -ENOENT);
	assert_int_equal(store_token_get(f->s, h2, &x, &y), -ENOENT);
	assert_int_equal(
		tu_query_int(f->s,
			     "SELECT count(*) FROM role_assignments WHERE principal = 'user:dave'",
			     NULL),
		0);
	assert_int_equal(
		tu_query_int(f->s,
			     "SELECT count(*) FROM role_assignments WHERE principal = 'user:erin'",
			     NULL),
		1);

	/* A new account of the same name starts with nothing. */
	assert_int_equal(store_user_put(f->s, "dave", "h", NULL, &uid), 0);
	assert_int_equal(
		tu_query_int(f->s,
			     "SELECT count(*) FROM role_assignments WHERE principal = 'user:dave'",
			     NULL),
		0);
}

/* ---- browser sessions and API tokens -------------------------------- */

static void test_login_sessions(void **state)
{
	struct tu_store *f = *state;
	uint8_t h1[32], h2[32], h3[32];
	int64_t uid, got_uid = 0, exp = 0;
	char csrf[64];

	hash_of(h1, 0xa1);
	hash_of(h2, 0xa2);
	hash_of(h3, 0xa3);
	assert_int_equal(store_user_put(f->s, "frank", "h", NULL, &uid), 0);
	assert_int_equal(store_login_add(f->s, h1, uid, "csrf-one", 1700000000), 0);
	assert_int_equal(store_login_get(f->s, h1, &got_uid, csrf, &exp), 0);
	assert_int_equal(got_uid, uid);
	assert_string_equal(csrf, "csrf-one");
	assert_int_equal(exp, 1700000000);
	assert_int_equal(store_login_get(f->s, h2, &got_uid, csrf, &exp), -ENOENT);

	/* The same hash twice, an unknown user, an oversized CSRF token. */
	assert_int_equal(store_login_add(f->s, h1, uid, "again", 1), -EEXIST);
	assert_int_equal(store_login_add(f->s, h2, 999999, "x", 1), -ENOENT);
	char big[100];
	memset(big, 'c', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(store_login_add(f->s, h2, uid, big, 1), -EINVAL);

	assert_int_equal(store_login_delete(f->s, h1), 0);
	assert_int_equal(store_login_delete(f->s, h1), -ENOENT);
	assert_int_equal(store_login_get(f->s, h1, &got_uid, csrf, &exp), -ENOENT);

	/* Ending all sessions of a user but one. */
	assert_int_equal(store_login_add(f->s, h1, uid, "a", store_now() + 100), 0);
	assert_int_equal(store_login_add(f->s, h2, uid, "b", store_now() + 100), 0);
	assert_int_equal(store_login_add(f->s, h3, uid, "c", store_now() + 100), 0);
	assert_int_equal(store_login_delete_user(f->s, uid, h2), 0);
	assert_int_equal(store_login_get(f->s, h1, &got_uid, csrf, &exp), -ENOENT);
	assert_int_equal(store_login_get(f->s, h2, &got_uid, csrf, &exp), 0);
	assert_int_equal(store_login_get(f->s, h3, &got_uid, csrf, &exp), -ENOENT);
	assert_int_equal(store_login_delete_user(f->s, uid, NULL), 0);
	assert_int_equal(store_login_get(f->s, h2, &got_uid, csrf, &exp), -ENOENT);
}

static void test_login_trim_and_purge(void **state)
{
	struct tu_store *f = *state;
	uint8_t h[32];
	int64_t uid, x, y, n = 0;
	char csrf[64];

	assert_int_equal(store_user_put(f->s, "gina", "h", NULL, &uid), 0);
	for (int i = 0; i < 5; i++) {
		hash_of(h, (uint8_t)(0x10 + i));
		assert_int_equal(store_login_add(f->s, h, uid, "c", store_now() + 100), 0);
	}
	assert_int_equal(store_login_trim(f->s, uid, 2), 0);
	assert_int_equal(tu_query_int(f->s, "SELECT count(*) FROM login_sessions", NULL), 2);
	/* The newest ones stay. */
	hash_of(h, 0x14);
	assert_int_equal(store_login_get(f->s, h, &x, csrf, &y), 0);
	hash_of(h, 0x13);
	assert_int_equal(store_login_get(f->s, h, &x, csrf, &y), 0);

	hash_of(h, 0x20);
	assert_int_equal(store_login_add(f->s, h, uid, "c", store_now() - 1), 0);
	hash_of(h, 0x21);
	assert_int_equal(store_token_add(f->s, h, uid, NULL, store_now() - 1), 0);
	hash_of(h, 0x22);
	assert_int_equal(store_token_add(f->s, h, uid, NULL, store_now() + 100), 0);
	assert_int_equal(store_token_count(f->s, uid, store_now(), &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_ident_purge_expired(f->s, store_now()), 0);
	assert_int_equal(tu_query_int(f->s, "SELECT count(*) FROM login_sessions", NULL), 2);
	assert_int_equal(tu_query_int(f->s, "SELECT count(*) FROM api_tokens", NULL), 1);
}

static void test_tokens(void **state)
{
	struct tu_store *f = *state;
	uint8_t h1[32], h2[32];
	int64_t uid, got_uid = 0, exp = 0, n = -1;

	hash_of(h1, 0xb1);
	hash_of(h2, 0xb2);
	assert_int_equal(store_user_put(f->s, "hank", "h", NULL, &uid), 0);
	assert_int_equal(store_token_add(f->s, h1, uid, "ci", 1800000000), 0);
	assert_int_equal(store_token_add(f->s, h2, uid, NULL, 1800000001), 0);
	assert_int_equal(store_token_get(f->s, h1, &got_uid, &exp), 0);
	assert_int_equal(got_uid, uid);
	assert_int_equal(exp, 1800000000);
	assert_int_equal(store_token_get(f->s, h2, &got_uid, &exp), 0);
	assert_int_equal(exp, 1800000001);
	assert_int_equal(store_token_add(f->s, h1, uid, "dup", 1), -EEXIST);
	assert_int_equal(store_token_add(f->s, (uint8_t[32]){ 7 }, 999999, "x", 1), -ENOENT);
	assert_int_equal(store_token_count(f->s, uid, 0, &n), 0);
	assert_int_equal(n, 2);
	/* Only the hash is stored: no column holds anything else secret. */
	assert_int_equal(
		tu_query_int(f->s, "SELECT count(*) FROM api_tokens WHERE length(token_hash) = 32",
			     NULL),
		2);
	assert_int_equal(store_token_delete(f->s, h1), 0);
	assert_int_equal(store_token_delete(f->s, h1), -ENOENT);
	assert_int_equal(store_token_get(f->s, h1, &got_uid, &exp), -ENOENT);
}

/* ---- role assignments ----------------------------------------------- */

struct seen {
	char buf[512];
	int n;
	int stop_after;
};

static int collect_roles(const char *role, const char *scope, void *ud)
{
	struct seen *s = ud;
	size_t used = strlen(s->buf);

	snprintf(s->buf + used, sizeof(s->buf) - used, "%s@%s;", role, scope);
	return ++s->n == s->stop_after;
}

static int collect_all(const struct store_role *ra, void *ud)
{
	struct seen *s = ud;
	size_t used = strlen(s->buf);

	snprintf(s->buf + used, sizeof(s->buf) - used, "%s=%s:%s@%s;", ra->id, ra->principal,
		 ra->role, ra->scope);
	s->n++;
	return 0;
}

static void test_roles(void **state)
{
	struct tu_store *f = *state;
	struct store_role ra;
	struct seen seen = { 0 };
	bool created = false;
	char longscope[300];

	assert_int_equal(store_role_put(f->s, "a1", "user:ivy", "Reader", "/groups/g1", &created),
			 0);
	assert_true(created);
	assert_int_equal(store_role_put(f->s, "a2", "user:ivy", "Owner", "/", &created), 0);
	assert_int_equal(
		store_role_put(f->s, "a3", "user:jon", "Contributor", "/groups/g2", &created), 0);
	assert_int_equal(store_role_get(f->s, "a1", &ra), 0);
	int64_t first_created = ra.created_at;
	assert_true(first_created > 0);

	/* Replacing an id changes it in place. */
	assert_int_equal(
		store_role_put(f->s, "a1", "user:ivy", "Contributor", "/groups/g1", &created), 0);
	assert_false(created);
	assert_int_equal(store_role_get(f->s, "a1", &ra), 0);
	assert_string_equal(ra.role, "Contributor");
	assert_int_equal(ra.created_at, first_created);

	assert_int_equal(store_role_foreach_principal(f->s, "user:ivy", collect_roles, &seen), 0);
	assert_int_equal(seen.n, 2);
	assert_string_equal(seen.buf, "Contributor@/groups/g1;Owner@/;");

	memset(&seen, 0, sizeof(seen));
	seen.stop_after = 1;
	assert_int_equal(store_role_foreach_principal(f->s, "user:ivy", collect_roles, &seen), 0);
	assert_int_equal(seen.n, 1);

	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_role_foreach_principal(f->s, "user:nobody", collect_roles, &seen),
			 0);
	assert_int_equal(seen.n, 0);

	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_role_foreach(f->s, collect_all, &seen), 0);
	assert_string_equal(seen.buf, "a1=user:ivy:Contributor@/groups/g1;a2=user:ivy:Owner@/;"
				      "a3=user:jon:Contributor@/groups/g2;");

	assert_int_equal(store_role_delete(f->s, "a3"), 0);
	assert_int_equal(store_role_delete(f->s, "a3"), -ENOENT);
	assert_int_equal(store_role_get(f->s, "a3", &ra), -ENOENT);

	memset(longscope, 's', sizeof(longscope) - 1);
	longscope[sizeof(longscope) - 1] = '\0';
	assert_int_equal(store_role_put(f->s, "a4", "user:x", "Reader", longscope, NULL), -EINVAL);
	assert_int_equal(store_role_put(f->s, "", "user:x", "Reader", "/", NULL), -EINVAL);
}

/* Guarded changes: ids in the state the caller saw, principals that exist,
 * and never the last enabled Owner at "/". */
static void test_roles_checked(void **state)
{
	struct tu_store *f = *state;
	struct store_role ra;
	bool created = false;
	int64_t n = -1, uid = 0;

	assert_int_equal(store_user_put(f->s, "root1", "h", NULL, NULL), 0);
	assert_int_equal(store_user_put(f->s, "root2", "h", NULL, &uid), 0);
	assert_int_equal(
		store_role_put_checked(f->s, "o1", "user:root1", "Owner", "/", NULL, &created), 0);
	assert_true(created);
	assert_int_equal(store_role_root_owners(f->s, &n), 0);
	assert_int_equal(n, 1);

	/* Unknown principal: nothing is written. */
	assert_int_equal(
		store_role_put_checked(f->s, "x1", "user:ghost", "Reader", "/", NULL, NULL),
		-ESRCH);
	assert_int_equal(store_role_get(f->s, "x1", &ra), -ENOENT);
	/* The id must be in the state the caller saw. */
	assert_int_equal(store_role_put_checked(f->s, "o1", "user:root2", "Owner", "/", NULL, NULL),
			 -EAGAIN);
	assert_int_equal(
		store_role_put_checked(f->s, "o1", "user:root1", "Owner", "/", "/groups/g", NULL),
		-EAGAIN);
	assert_int_equal(
		store_role_put_checked(f->s, "new", "user:root1", "Reader", "/", "/", NULL),
		-EAGAIN);
	assert_int_equal(store_role_delete_checked(f->s, "o1", "/groups/g"), -EAGAIN);
	assert_int_equal(store_role_delete_checked(f->s, "nope", "/"), -ENOENT);

	/* The last Owner at "/" can be neither removed nor demoted nor moved. */
	assert_int_equal(store_role_delete_checked(f->s, "o1", "/"), -EMLINK);
	assert_int_equal(
		store_role_put_checked(f->s, "o1", "user:root1", "Contributor", "/", "/", NULL),
		-EMLINK);
	assert_int_equal(
		store_role_put_checked(f->s, "o1", "user:root1", "Owner", "/groups/g", "/", NULL),
		-EMLINK);
	assert_int_equal(store_role_get(f->s, "o1", &ra), 0);
	assert_string_equal(ra.role, "Owner");
	assert_string_equal(ra.scope, "/");
	/* An Owner held by a disabled user does not count. */
	assert_int_equal(
		store_role_put_checked(f->s, "o2", "user:root2", "Owner", "/", NULL, &created), 0);
	assert_int_equal(store_user_set_disabled(f->s, "root2", true), 0);
	assert_int_equal(store_role_delete_checked(f->s, "o1", "/"), -EMLINK);
	assert_int_equal(store_user_set_disabled(f->s, "root2", false), 0);
	assert_int_equal(store_role_root_owners(f->s, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(store_role_delete_checked(f->s, "o1", "/"), 0);
	assert_int_equal(store_role_put_checked(f->s, "o2", "user:root2", "Reader", "/", "/", NULL),
			 -EMLINK);
	assert_int_equal(
		store_role_put_checked(f->s, "o2", "user:root2", "Owner", "/", "/", &created), 0);
	assert_false(created);

	/* API tokens of one user go at once. */
	uint8_t h1[32] = { 1 }, h2[32] = { 2 };
	assert_int_equal(store_token_add(f->s, h1, uid, NULL, store_now() + 100), 0);
	assert_int_equal(store_token_add(f->s, h2, uid, NULL, store_now() + 100), 0);
	assert_int_equal(store_token_delete_user(f->s, uid), 0);
	int64_t u2, e2;
	assert_int_equal(store_token_get(f->s, h1, &u2, &e2), -ENOENT);
	assert_int_equal(store_token_get(f->s, h2, &u2, &e2), -ENOENT);
}

static int bump(struct store_throttle *t, bool existed, void *ud)
{
	int *mode = ud;

	if (*mode == 1)
		return 1;
	if (*mode == 2)
		return -EIO;
	t->failures += existed ? 1 : 10;
	t->locked_until = 77;
	return 0;
}

static void test_throttle_rows(void **state)
{
	struct tu_store *f = *state;
	struct store_throttle t;
	int mode = 0;
	char longkey[200];

	assert_int_equal(store_throttle_get(f->s, "acct:a", &t), -ENOENT);
	assert_int_equal(store_throttle_update(f->s, "acct:a", bump, &mode), 0);
	assert_int_equal(store_throttle_update(f->s, "acct:a", bump, &mode), 0);
	assert_int_equal(store_throttle_get(f->s, "acct:a", &t), 0);
	assert_int_equal(t.failures, 11);
	assert_int_equal(t.locked_until, 77);
	mode = 2;
	assert_int_equal(store_throttle_update(f->s, "acct:a", bump, &mode), -EIO);
	mode = 1;
	assert_int_equal(store_throttle_update(f->s, "acct:a", bump, &mode), 0);
	assert_int_equal(store_throttle_get(f->s, "acct:a", &t), -ENOENT);
	memset(longkey, 'k', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	assert_int_equal(store_throttle_update(f->s, longkey, bump, &mode), -EINVAL);

	/* Purge drops rows whose lock and last failure are both old. */
	mode = 0;
	assert_int_equal(store_throttle_update(f->s, "addr:x", bump, &mode), 0);
	assert_int_equal(store_throttle_purge(f->s, 50), 0);
	assert_int_equal(store_throttle_get(f->s, "addr:x", &t), 0);
	assert_int_equal(store_throttle_purge(f->s, 78), 0);
	assert_int_equal(store_throttle_get(f->s, "addr:x", &t), -ENOENT);

	/* Known addresses: newest keep_max per account. */
	for (int i = 0; i < 5; i++) {
		char addr[32];

		snprintf(addr, sizeof(addr), "192.0.2.%d", i);
		assert_int_equal(store_login_known_add(f->s, "ann", addr, 100 + i, 3), 0);
	}
	assert_int_equal(store_login_known(f->s, "ann", "192.0.2.4", 0), 0);
	assert_int_equal(store_login_known(f->s, "ann", "192.0.2.2", 0), 0);
	assert_int_equal(store_login_known(f->s, "ann", "192.0.2.1", 0), -ENOENT);
	assert_int_equal(store_login_known(f->s, "ann", "192.0.2.2", 103), -ENOENT);
	assert_int_equal(store_login_known(f->s, "bob", "192.0.2.4", 0), -ENOENT);
	assert_int_equal(store_login_known_forget(f->s, "ann"), 0);
	assert_int_equal(store_login_known(f->s, "ann", "192.0.2.4", 0), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_migrations_reopen, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_newer_schema_refused, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_audit_append_only, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_users_crud, tu_store_setup, tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_users_limits, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_create_first, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_user_delete_cascades, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_login_sessions, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_login_trim_and_purge, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_tokens, tu_store_setup, tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_roles, tu_store_setup, tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_roles_checked, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_throttle_rows, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_audit_at_once, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_open_read_only, tu_store_setup,
						tu_store_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
