/* Store core and identity store: migrations, users, browser sessions, API
 * tokens, role assignments and the append-only audit trail. */
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

/* Raw SQL on the backend under test, beside the store's functions: the
 * tests check what is in the tables. */
static int64_t query_int(struct tu_store *f, const char *sql)
{
	int64_t v = -1;

	if (tu_pg()) {
		char url[640];
		PGconn *c;
		PGresult *res;

		assert_int_equal(tu_pg_url(f->dir, url, sizeof(url)), 0);
		c = PQconnectdb(url);
		res = PQexec(c, sql);
		if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
			v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
		PQfinish(c);
	} else {
		sqlite3_stmt *st = store_prepare(f->s, sql);

		assert_non_null(st);
		if (sqlite3_step(st) == SQLITE_ROW)
			v = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	return v;
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
	assert_int_equal(query_int(f, version_sql()), v);
	assert_int_equal(store_user_put(f->s, "alice", "$argon2id$x", NULL, NULL), 0);

	/* Reopening applies nothing twice and keeps the data. */
	store_free(f->s);
	f->s = NULL;
	assert_int_equal(tu_store_open(f->dir, &f->s), 0);
	assert_int_equal(store_schema_version(f->s), v);
	assert_int_equal(query_int(f, version_sql()), v);
	assert_int_equal(store_user_get(f->s, "alice", &u), 0);
	assert_string_equal(u.password_hash, "$argon2id$x");

	store_free(f->s);
	f->s = NULL;
	assert_int_equal(tu_store_open(f->dir, &f->s), 0);
	assert_int_equal(store_schema_version(f->s), v);
	assert_int_equal(query_int(f, "SELECT count(*) FROM users"), 1);
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
	assert_int_equal(query_int(f, "SELECT count(*) FROM audit"), 1);
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
	assert_int_equal(query_int(f, "SELECT count(*) FROM audit WHERE ts = 1234"), 1);
	assert_int_equal(store_audit_at(f->s, 1234, true, "user:a", "session.end", NULL, "ended",
					"{\"session\":\"s2\"}"),
			 0);
	assert_int_equal(store_audit_at(f->s, 1235, true, "user:a", "session.end", NULL, "ended",
					"{\"session\":\"s1\"}"),
			 0);
	assert_int_equal(query_int(f, "SELECT count(*) FROM audit"), 3);
	assert_int_equal(store_audit_at(f->s, 1234, false, "user:a", "thing", "t", NULL, NULL), 0);
	assert_int_equal(store_audit_at(f->s, 1234, false, "user:a", "thing", "t", NULL, NULL), 0);
	assert_int_equal(store_audit_at(f->s, 1234, true, "user:a", "thing", "t", NULL, NULL), 0);
	assert_int_equal(query_int(f, "SELECT count(*) FROM audit WHERE action = 'thing'"), 2);
}

static void test_audit_append_only(void **state)
{
	struct tu_store *f = *state;
	assert_int_equal(store_audit(f->s, "user:a", "thing.do", "x", "success", "{\"k\":1}"), 0);
	assert_int_equal(store_audit(f->s, NULL, "thing.do", NULL, NULL, NULL), 0);
	assert_int_equal(query_int(f, "SELECT count(*) FROM audit"), 2);
	assert_int_equal(exec_sql(f, "UPDATE audit SET action = 'forged'"), -1);
	assert_int_equal(exec_sql(f, "DELETE FROM audit"), -1);
	if (tu_pg())
		assert_int_equal(exec_sql(f, "TRUNCATE audit"), -1);
	assert_int_equal(query_int(f, "SELECT count(*) FROM audit"), 2);
	assert_int_equal(query_int(f, "SELECT count(*) FROM audit WHERE action = 'forged'"), 0);
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
		query_int(f, "SELECT count(*) FROM role_assignments WHERE principal = 'user:dave'"),
		0);
	assert_int_equal(
		query_int(f, "SELECT count(*) FROM role_assignments WHERE principal = 'user:erin'"),
		1);

	/* A new account of the same name starts with nothing. */
	assert_int_equal(store_user_put(f->s, "dave", "h", NULL, &uid), 0);
	assert_int_equal(
		query_int(f, "SELECT count(*) FROM role_assignments WHERE principal = 'user:dave'"),
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
	assert_int_equal(query_int(f, "SELECT count(*) FROM login_sessions"), 2);
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
	assert_int_equal(query_int(f, "SELECT count(*) FROM login_sessions"), 2);
	assert_int_equal(query_int(f, "SELECT count(*) FROM api_tokens"), 1);
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
		query_int(f, "SELECT count(*) FROM api_tokens WHERE length(token_hash) = 32"), 2);
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

/* ---- threads -------------------------------------------------------- */

struct thread_arg {
	struct store *s;
	int result;
	int64_t id;
};

static void *reader_thread(void *p)
{
	struct thread_arg *a = p;
	struct store_user u;

	a->result = store_user_get(a->s, "kim", &u);
	if (a->result == 0)
		a->id = u.id;
	if (a->result == 0)
		a->result = store_user_put(a->s, "lee", "h", NULL, NULL);
	return NULL;
}

static void test_threads(void **state)
{
	struct tu_store *f = *state;
	struct thread_arg a = { .s = f->s, .result = -1 };
	struct store_user u;
	pthread_t t;
	int64_t id;

	/* Each thread has its own connection, and all see one database. */
	assert_int_equal(store_user_put(f->s, "kim", "h", NULL, &id), 0);
	assert_int_equal(pthread_create(&t, NULL, reader_thread, &a), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(a.result, 0);
	assert_int_equal(a.id, id);
	assert_int_equal(store_user_get(f->s, "lee", &u), 0);
}

/* The database, its WAL and the WAL index are owner-only whatever the
 * umask, also when an older version left them wider. */
/* Two instances on one store (two handles, as two processes would have),
 * racing: the first user, the same role id, a host key's first use, a
 * throttle counter. One wins each race and the other gets the answer a
 * single instance gives to the second request: never two rows, never a
 * store error. */
struct racer {
	struct store *s;
	pthread_barrier_t *go;
	const char *key_b64;
	int first, role, hostkey, group, res;
};

static int count_fail(struct store_throttle *th, bool existed, void *ud)
{
	(void)existed;
	(void)ud;
	th->failures++;
	return 0;
}

static void *racer_thread(void *p)
{
	struct racer *r = p;
	bool created = false;

	pthread_barrier_wait(r->go);
	r->first = store_user_create_first(r->s, "first", "h", "ra-first", "Owner", "/");
	pthread_barrier_wait(r->go);
	r->role = store_role_put(r->s, "ra-same", "user:first", "Reader", "/", &created);
	pthread_barrier_wait(r->go);
	r->group = store_group_put(r->s, "g", NULL);
	pthread_barrier_wait(r->go);
	{
		json_t *props = json_pack("{s:s}", "by", r->key_b64);

		r->res = store_res_put(r->s, "g", "vms", "v", props, NULL, NULL);
		json_decref(props);
	}
	pthread_barrier_wait(r->go);
	r->hostkey = store_hostkey_add(r->s, "/groups/g/vms/v", "ssh-ed25519", r->key_b64);
	pthread_barrier_wait(r->go);
	for (int i = 0; i < 20; i++)
		if (store_throttle_update(r->s, "acct:first", count_fail, NULL) < 0)
			r->role = -EIO;
	return NULL;
}

/* The same for a vault (store_vault.h): its data key added twice, versions
 * of one secret added by both, the same policy put, and a deleted vault
 * recovered by both. */
struct vracer {
	struct store *s;
	pthread_barrier_t *go;
	char tag;
	int key, versions, policy, recover;
	bool created;
};

static void *vracer_thread(void *p)
{
	struct vracer *r = p;
	const uint8_t blob[4] = { 1, 2, 3, (uint8_t)r->tag };

	pthread_barrier_wait(r->go);
	r->key = store_vault_key_add(r->s, "/groups/g/vaults/v", blob, sizeof(blob));
	pthread_barrier_wait(r->go);
	for (int i = 0; i < 10; i++) {
		char version[STORE_SECRET_VERSION_SIZE];

		snprintf(version, sizeof(version), "%c%031d", r->tag, i);
		if (store_secret_add_version(r->s, "/groups/g/vaults/v", "s", version, NULL, blob,
					     sizeof(blob)) == 0)
			r->versions++;
	}
	pthread_barrier_wait(r->go);
	r->policy = store_vault_policy_put(r->s, "/groups/g/vaults/v", "user:x", 3, &r->created);
	pthread_barrier_wait(r->go);
	pthread_barrier_wait(r->go); /* the vault is deleted meanwhile */
	r->recover = store_vault_recover(r->s, "/groups/g/vaults/v", store_now());
	return NULL;
}

static void test_two_instances_vault_race(void **state)
{
	struct tu_store *f = *state;
	struct store *other = NULL;
	pthread_barrier_t go;
	struct vracer a = { .s = f->s, .go = &go, .tag = 'a' };
	struct vracer b = { .go = &go, .tag = 'b' };
	json_t *props = json_object();
	pthread_t ta, tb;

	assert_int_equal(store_group_put(f->s, "g", NULL), 0);
	assert_int_equal(store_res_put(f->s, "g", "vaults", "v", props, NULL, NULL), 0);
	json_decref(props);
	assert_int_equal(tu_store_open(f->dir, &other), 0);
	b.s = other;
	assert_int_equal(pthread_barrier_init(&go, NULL, 3), 0);
	assert_int_equal(pthread_create(&ta, NULL, vracer_thread, &a), 0);
	assert_int_equal(pthread_create(&tb, NULL, vracer_thread, &b), 0);
	for (int i = 0; i < 4; i++)
		pthread_barrier_wait(&go);
	assert_int_equal(store_res_delete(f->s, "/groups/g/vaults/v"), 0);
	pthread_barrier_wait(&go);
	assert_int_equal(pthread_join(ta, NULL), 0);
	assert_int_equal(pthread_join(tb, NULL), 0);
	pthread_barrier_destroy(&go);

	/* One data key: the second add is told it exists. */
	assert_true((a.key == 0 && b.key == -EEXIST) || (a.key == -EEXIST && b.key == 0));
	/* Every version kept, each with its own sequence number. */
	assert_int_equal(a.versions, 10);
	assert_int_equal(b.versions, 10);
	assert_int_equal(query_int(f, "SELECT count(DISTINCT seq) FROM vault_secret_versions"), 20);
	assert_int_equal(query_int(f, "SELECT max(seq) FROM vault_secret_versions"), 20);
	/* The same policy: both succeed, one row, one of them created it. */
	assert_int_equal(a.policy, 0);
	assert_int_equal(b.policy, 0);
	assert_true(a.created != b.created);
	assert_int_equal(query_int(f, "SELECT count(*) FROM vault_policies"), 1);
	/* One recovery; the other finds no deleted vault. */
	assert_true((a.recover == 0 && b.recover == -ENOENT) ||
		    (a.recover == -ENOENT && b.recover == 0));
	assert_int_equal(query_int(f, "SELECT count(*) FROM resources"), 1);
	assert_int_equal(query_int(f, "SELECT count(*) FROM vault_secret_versions"), 20);
	assert_int_equal(query_int(f, "SELECT count(*) FROM deleted_vaults"), 0);
	store_free(other);
}

static void test_two_instances_race(void **state)
{
	struct tu_store *f = *state;
	struct store *other = NULL;
	pthread_barrier_t go;
	struct racer a = { .s = f->s, .go = &go, .key_b64 = "AAAAkeyA" };
	struct racer b = { .go = &go, .key_b64 = "AAAAkeyB" };
	struct store_throttle th;
	pthread_t ta, tb;
	json_t *keys = NULL;
	int64_t n = 0;

	assert_int_equal(tu_store_open(f->dir, &other), 0);
	b.s = other;
	assert_int_equal(pthread_barrier_init(&go, NULL, 2), 0);
	assert_int_equal(pthread_create(&ta, NULL, racer_thread, &a), 0);
	assert_int_equal(pthread_create(&tb, NULL, racer_thread, &b), 0);
	assert_int_equal(pthread_join(ta, NULL), 0);
	assert_int_equal(pthread_join(tb, NULL), 0);
	pthread_barrier_destroy(&go);

	/* One first user: the other instance is told one exists. */
	assert_true((a.first == 0 && b.first == -EEXIST) || (a.first == -EEXIST && b.first == 0));
	assert_int_equal(store_user_count(f->s, &n), 0);
	assert_int_equal(n, 1);
	/* The same PUT twice: both succeed, one row. */
	assert_int_equal(a.role, 0);
	assert_int_equal(b.role, 0);
	assert_int_equal(query_int(f, "SELECT count(*) FROM role_assignments WHERE id = 'ra-same'"),
			 1);
	/* The same group and resource created at once: both succeed, one
	 * row each, the last write's properties. */
	assert_int_equal(a.group, 0);
	assert_int_equal(b.group, 0);
	assert_int_equal(a.res, 0);
	assert_int_equal(b.res, 0);
	assert_int_equal(query_int(f, "SELECT count(*) FROM groups"), 1);
	assert_int_equal(query_int(f, "SELECT count(*) FROM resources"), 1);
	/* First use recorded once: whichever dialled first; the other keeps
	 * it (and compares against it when it connects). */
	assert_int_equal(a.hostkey, 0);
	assert_int_equal(b.hostkey, 0);
	assert_int_equal(store_hostkey_get(other, "/groups/g/vms/v", &keys), 0);
	assert_int_equal(json_array_size(keys), 1);
	assert_true(
		strcmp(json_string_value(json_array_get(keys, 0)), "ssh-ed25519 AAAAkeyA") == 0 ||
		strcmp(json_string_value(json_array_get(keys, 0)), "ssh-ed25519 AAAAkeyB") == 0);
	json_decref(keys);
	/* Every failure counted by either instance is counted once. */
	assert_int_equal(store_throttle_get(f->s, "acct:first", &th), 0);
	assert_int_equal(th.failures, 40);
	store_free(other);
}

/* PostgreSQL only: a connection the server dropped is re-opened by the
 * next call (a read that met the break is sent again on the new one), and
 * a statement that waits on a lock gives up with a store error after the
 * 5 s timeouts instead of hanging. */
static PGconn *admin_conn(struct tu_store *f)
{
	char url[640];
	PGconn *c;

	assert_int_equal(tu_pg_url(f->dir, url, sizeof(url)), 0);
	c = PQconnectdb(url);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	return c;
}

static void admin_exec(PGconn *c, const char *sql)
{
	PGresult *res = PQexec(c, sql);

	assert_true(PQresultStatus(res) == PGRES_COMMAND_OK ||
		    PQresultStatus(res) == PGRES_TUPLES_OK);
	PQclear(res);
}

static void test_pg_reconnect_and_timeout(void **state)
{
	struct tu_store *f = *state;
	struct store_user u;
	PGconn *admin;
	int64_t n = 0;
	int r;

	if (!tu_pg())
		skip(); /* SQLite has no connection to lose; its busy timeout is
			 * test_api_login_store_readonly's and faults.test.mjs's */
	admin = admin_conn(f);
	assert_int_equal(store_user_put(f->s, "rob", "h", NULL, NULL), 0);

	/* The server ends our session (an admin, a failover, a restart). */
	admin_exec(admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
			  " WHERE application_name = 'bastion' AND pid <> pg_backend_pid()");
	assert_int_equal(store_user_get(f->s, "rob", &u), 0);

	/* A write that meets the break is not sent twice (it may have
	 * committed): it fails once, and the next call works again. */
	admin_exec(admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
			  " WHERE application_name = 'bastion' AND pid <> pg_backend_pid()");
	r = store_user_put(f->s, "sue", "h", NULL, NULL);
	assert_true(r == 0 || r == -BERR_STORE);
	assert_int_equal(store_user_put(f->s, "sue", "h", NULL, NULL), 0);
	assert_int_equal(store_user_count(f->s, &n), 0);
	assert_int_equal(n, 2);

	/* A lock held elsewhere: the call answers a store error (no hang; the
	 * test's own timeout bounds it), and works once the lock is gone. */
	admin_exec(admin, "BEGIN");
	admin_exec(admin, "LOCK TABLE users IN ACCESS EXCLUSIVE MODE");
	assert_int_equal(store_user_count(f->s, &n), -BERR_STORE);
	admin_exec(admin, "ROLLBACK");
	assert_int_equal(store_user_count(f->s, &n), 0);
	PQfinish(admin);
}

/* Terminal sessions as records: a start written twice, an end before its
 * start (another worker was faster), a second end: the first end stays. */
static void test_session_records(void **state)
{
	struct tu_store *f = *state;
	struct store_session a = tu_session("s-a", 1000);
	struct store_session b = a;
	int64_t n = -1;

	snprintf(b.id, sizeof(b.id), "s-b");
	assert_int_equal(store_session_open(f->s, &a), 0);
	assert_int_equal(store_session_open(f->s, &a), 0);
	assert_int_equal(store_term_open_count(f->s, "uma", &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_session_end(f->s, &a, 1100, "closed", 10, 20), 0);
	assert_int_equal(store_session_end(f->s, &a, 1200, "killed", 30, 40), 0);
	assert_int_equal(query_int(f, "SELECT ended_at FROM term_sessions WHERE id = 's-a'"), 1100);
	assert_int_equal(query_int(f, "SELECT bytes_from_vm FROM term_sessions WHERE id = 's-a'"),
			 20);
	assert_int_equal(store_term_open_count(f->s, "uma", &n), 0);
	assert_int_equal(n, 0);

	/* The end first: the row is made ended, and the late start leaves it. */
	assert_int_equal(store_session_end(f->s, &b, 1300, "closed", 1, 2), 0);
	assert_int_equal(store_session_open(f->s, &b), 0);
	assert_int_equal(query_int(f, "SELECT ended_at FROM term_sessions WHERE id = 's-b'"), 1300);
	assert_int_equal(query_int(f, "SELECT count(*) FROM term_sessions"), 2);
	assert_int_equal(store_term_open_count(f->s, "uma", &n), 0);
	assert_int_equal(n, 0);
}

/* The backend says what it lacks, so that `serve` can refuse to start on
 * it: neither lacks anything now (every entry of ops_list.h is there), so
 * no call answers -ENOSYS. */
static void test_backend_complete(void **state)
{
	struct tu_store *f = *state;
	char missing[4096];
	int64_t n = -1;

	assert_int_equal(store_url_check_complete(NULL, missing, sizeof(missing)), 0);
	assert_int_equal(store_url_check_complete("", missing, sizeof(missing)), 0);
	assert_int_equal(store_url_check_complete("postgresql://h/db", missing, sizeof(missing)),
			 0);
	assert_string_equal(missing, "");
	assert_int_equal(store_check_complete(f->s, missing, sizeof(missing)), 0);
	assert_string_equal(missing, "");
	assert_string_equal(store_backend_name(f->s), tu_pg() ? "PostgreSQL" : "SQLite");
	assert_int_equal(store_secret_count(f->s, "/groups/g/vaults/v", &n), 0);
	assert_int_equal(n, 0);
}

/* Sessions a previous run left without an end are recorded as ended at
 * start, each with its audit line; ended ones are not touched. */
static void test_close_stale(void **state)
{
	struct tu_store *f = *state;
	struct store_session a = tu_session("s-a", 1000);
	struct store_session b = a, c = a;
	int n = -1;

	snprintf(b.id, sizeof(b.id), "s-b");
	snprintf(c.id, sizeof(c.id), "s-c");
	assert_int_equal(store_session_open(f->s, &a), 0);
	assert_int_equal(store_session_open(f->s, &b), 0);
	assert_int_equal(store_session_end(f->s, &c, 1100, "closed", 1, 2), 0);
	assert_int_equal(store_session_close_stale(f->s, 2000, "bastion restarted", &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(query_int(f, "SELECT count(*) FROM term_sessions WHERE ended_at = 2000"
				      " AND end_reason = 'bastion restarted'"),
			 2);
	assert_int_equal(query_int(f, "SELECT ended_at FROM term_sessions WHERE id = 's-c'"), 1100);
	assert_int_equal(query_int(f, "SELECT count(*) FROM audit WHERE action = 'session.end'"
				      " AND principal = 'user:uma'"),
			 2);
	/* Nothing left to close. */
	assert_int_equal(store_session_close_stale(f->s, 3000, "bastion restarted", &n), 0);
	assert_int_equal(n, 0);
}

/* PostgreSQL, several instances: while another bastion process is
 * connected to the database, the sessions recorded as open may be its live
 * ones, and an instance starting leaves them alone. */
static void test_close_stale_peers(void **state)
{
	struct tu_store *f = *state;
	struct store_session a = tu_session("s-live", 1000);
	char url[640], conninfo[700];
	PGconn *peer;
	int n = -1;

	if (!tu_pg())
		skip();
	assert_int_equal(tu_pg_url(f->dir, url, sizeof(url)), 0);
	/* A peer as an instance names itself (pg.c): bastion:PID. */
	snprintf(conninfo, sizeof(conninfo), "%s%sapplication_name=bastion:1", url,
		 strchr(url, '?') ? "&" : "?");
	peer = PQconnectdb(conninfo);
	assert_int_equal(PQstatus(peer), CONNECTION_OK);
	assert_int_equal(store_session_open(f->s, &a), 0);
	assert_int_equal(store_session_close_stale(f->s, 2000, "bastion restarted", &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(query_int(f, "SELECT count(*) FROM term_sessions WHERE ended_at IS NULL"),
			 1);
	/* The peer gone, the session is this instance's to close. */
	PQfinish(peer);
	for (int i = 0; i < 50 && n != 1; i++) {
		assert_int_equal(store_session_close_stale(f->s, 2000, "bastion restarted", &n), 0);
		if (n != 1)
			usleep(100 * 1000); /* the server notices the peer's exit */
	}
	assert_int_equal(n, 1);
}

/* Instances starting together on one empty store: each opens it, the
 * schema is migrated once (PostgreSQL: under an advisory lock), and all
 * see the same version. */
struct opener {
	const char *dir;
	pthread_barrier_t *go;
	struct store *s;
	int r;
};

static void *opener_thread(void *p)
{
	struct opener *o = p;

	pthread_barrier_wait(o->go);
	o->r = tu_store_open(o->dir, &o->s);
	return NULL;
}

/* Sixteen openers, five times on SQLite: a new database switches to WAL
 * under a lock that does not wait (seen failing with four, under load).
 * On PostgreSQL, where the race is the migrations' advisory lock, each
 * opener is a pool of connections: four, once. */
#define OPENERS 16

static void test_open_together(void **state)
{
	struct opener o[OPENERS];
	pthread_t t[OPENERS];
	pthread_barrier_t go;
	char dir[64];

	int openers = tu_pg() ? 4 : OPENERS;

	(void)state;
	for (int round = 0; round < (tu_pg() ? 1 : 5); round++) {
		assert_non_null(tu_tmpdir(dir, sizeof(dir), "together"));
		if (tu_pg()) {
			char url[640];

			/* The database exists before the race, as an operator makes it. */
			assert_int_equal(tu_pg_url(dir, url, sizeof(url)), 0);
		}
		assert_int_equal(pthread_barrier_init(&go, NULL, (unsigned)openers), 0);
		for (int i = 0; i < openers; i++) {
			o[i] = (struct opener){ .dir = dir, .go = &go };
			assert_int_equal(pthread_create(&t[i], NULL, opener_thread, &o[i]), 0);
		}
		for (int i = 0; i < openers; i++)
			assert_int_equal(pthread_join(t[i], NULL), 0);
		pthread_barrier_destroy(&go);
		for (int i = 0; i < openers; i++) {
			assert_int_equal(o[i].r, 0);
			assert_int_equal(store_schema_version(o[i].s),
					 store_schema_version(o[0].s));
			assert_true(store_schema_version(o[i].s) >= 1);
		}
		assert_int_equal(store_user_put(o[1].s, "zed", "h", NULL, NULL), 0);
		for (int i = 0; i < openers; i++)
			store_free(o[i].s);
		tu_rm_tree(dir);
	}
}

static void test_file_modes(void **state)
{
	static const char *const files[] = { "bastion.db", "bastion.db-wal", "bastion.db-shm" };
	char dir[64], path[128];
	struct store *s;
	struct stat st;
	mode_t old;

	TU_SQLITE_ONLY("the database files' modes (PostgreSQL keeps its own files)");
	old = umask(022);

	assert_non_null(tu_tmpdir(dir, sizeof(dir), "modes"));
	for (int round = 0; round < 2; round++) {
		assert_int_equal(tu_store_open(dir, &s), 0);
		assert_int_equal(store_user_put(s, "mo", "h", NULL, NULL), 0);
		for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
			snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
			assert_int_equal(stat(path, &st), 0);
			assert_int_equal(st.st_mode & 0777, 0600);
			/* Widened behind its back: the next open narrows it. */
			assert_int_equal(chmod(path, 0644), 0);
		}
		store_free(s);
	}
	umask(old);
	tu_rm_tree(dir);
}

struct tx_audit {
	const char *marker;
	int result;
};

static int audit_tx(struct store *s, void *ud)
{
	struct tx_audit *t = ud;
	int r = store_audit(s, "system", "test.tx", t->marker, "success", NULL);

	return r < 0 ? r : t->result;
}

/* The audit copy on stderr shows committed records only. */
static void test_audit_stderr_after_commit(void **state)
{
	struct tx_audit rolled = { "rolled-back-marker", -EIO };
	struct tx_audit kept = { "tx-committed-marker", 0 };
	char dir[64], log[128], text[8192];
	struct store *s;
	FILE *fp;
	size_t n;
	int saved, fd;

	(void)state;
	assert_non_null(tu_tmpdir(dir, sizeof(dir), "auditlog"));
	snprintf(log, sizeof(log), "%s/stderr.txt", dir);
	store_audit_to_stderr();
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(saved >= 0 && fd >= 0);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	close(fd);

	assert_int_equal(tu_store_open(dir, &s), 0);
	assert_int_equal(store_res_tx(s, audit_tx, &rolled), -EIO);
	assert_int_equal(
		store_audit(s, "system", "test.auto", "autocommit-marker", "success", NULL), 0);
	assert_int_equal(store_res_tx(s, audit_tx, &kept), 0);
	assert_int_equal(store_res_tx(s, audit_tx, &rolled), -EIO);
	store_free(s);

	fflush(stderr);
	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	fp = fopen(log, "r");
	assert_non_null(fp);
	n = fread(text, 1, sizeof(text) - 1, fp);
	fclose(fp);
	text[n] = '\0';
	assert_non_null(strstr(text, "autocommit-marker"));
	assert_non_null(strstr(text, "tx-committed-marker"));
	assert_null(strstr(text, "rolled-back-marker"));
	tu_rm_tree(dir);
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
		cmocka_unit_test_setup_teardown(test_threads, tu_store_setup, tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_two_instances_race, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_pg_reconnect_and_timeout, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_session_records, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_audit_at_once, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_two_instances_vault_race, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_open_read_only, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_close_stale, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_close_stale_peers, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_backend_complete, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test(test_open_together),
		cmocka_unit_test(test_file_modes),
		/* Last: it installs the stderr copy for every later connection. */
		cmocka_unit_test(test_audit_stderr_after_commit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
