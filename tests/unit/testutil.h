/* Helpers shared by the unit tests. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

/* Creates /tmp/bastion-test-TAG-XXXXXX into dir (at least 64 bytes);
 * returns dir or NULL. */
char *tu_tmpdir(char *dir, size_t size, const char *tag);

/* Removes dir and the files directly inside it (the tests make no deeper
 * trees). */
void tu_rm_tree(const char *dir);

/* A store opened on a fresh temporary directory, as a cmocka group or test
 * fixture: *state points at a struct tu_store. */
struct tu_store {
	char dir[64];
	struct store *s;
};
int tu_store_setup(void **state);
int tu_store_teardown(void **state);
/* A terminal session row as the store's tests write them: user uma on
 * /groups/g/vms/v through /groups/g/bastions/b, by password, with this id
 * and start. */
struct store_session;
struct store_session tu_session(const char *id, int64_t started_at);

/* The store's conformance suite runs once per backend: meson runs the
 * store's test binaries a second time with BASTION_TEST_STORE=postgresql
 * (and BASTION_PG_SH naming scripts/pg.sh). tu_store_open opens dir's
 * store on the backend under test: SQLite in dir, or a database of its own
 * (named after dir) in a PostgreSQL cluster this process starts on first
 * use (scripts/pg.sh) and stops at exit. */
bool tu_pg(void);
int tu_store_open(const char *dir, struct store **ret);
/* One integer from raw SQL on a store tu_store_open opened, on its backend
 * (arg: the one "?" parameter, or NULL); -1 when there is no row. */
int64_t tu_query_int(struct store *s, const char *sql, const char *arg);
/* The URL of dir's database (created when missing). */
int tu_pg_url(const char *dir, char *out, size_t size);
/* PostgreSQL runs: stop this process's cluster keeping its data (the store
 * goes away), and start it again on the same port (scripts/pg.sh halt,
 * resume). 0, or -1. */
int tu_pg_halt(void);
int tu_pg_resume(void);

/* A test of something only SQLite has (its files, its pragmas), or of a
 * function the PostgreSQL backend does not implement yet: skipped on
 * PostgreSQL, with the reason. */
#define TU_SQLITE_ONLY(why)                                             \
	do {                                                            \
		if (tu_pg()) {                                          \
			print_message("SKIP on PostgreSQL: %s\n", why); \
			skip();                                         \
		}                                                       \
	} while (0)
