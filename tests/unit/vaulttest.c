/* The vault's tests' fixture (vaulttest.h). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "testutil.h"
#include "vaulttest.h"

#include "core/err.h"
#include "store/store.h"
#include "store/store_vault.h"
#include "store/store_rec.h"
#include "vault/vault.h"
void make_vault(struct store *s, const char *name)
{
	static const char *const no_refs[] = { NULL };
	json_t *props = json_pack("{s:i}", "soft_delete_retention_days", 7);
	bool created;

	assert_int_equal(store_group_put(s, "g", &created), 0);
	assert_int_equal(store_res_put(s, "g", "vaults", name, props, no_refs, &created), 0);
	json_decref(props);
}

int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	const char *reason = NULL;

	assert_non_null(f);
	assert_int_equal(sodium_init() >= 0, 1);
	assert_non_null(tu_tmpdir(f->dir, sizeof(f->dir), "vault"));
	snprintf(f->key_path, sizeof(f->key_path), "%s/master.key", f->dir);
	assert_int_equal(tu_store_open(f->dir, &f->s), 0);
	assert_int_equal(vault_open(f->s, f->dir, NULL, &f->v, &reason), 0);
	make_vault(f->s, "v1");
	make_vault(f->s, "v2");
	*state = f;
	return 0;
}

int teardown(void **state)
{
	struct fx *f = *state;

	vault_free(f->v);
	store_free(f->s);
	tu_rm_tree(f->dir);
	free(f);
	return 0;
}

/* Reopens the store and the vault as a restarted daemon would. */
int reopen(struct fx *f, const char *key_file, const char **ret_reason)
{
	vault_free(f->v);
	f->v = NULL;
	store_free(f->s);
	assert_int_equal(tu_store_open(f->dir, &f->s), 0);
	return vault_open(f->s, f->dir, key_file, &f->v, ret_reason);
}

void read_file(const char *path, uint8_t *buf, size_t size, size_t *ret_len)
{
	FILE *fp = fopen(path, "rbe");

	assert_non_null(fp);
	*ret_len = fread(buf, 1, size, fp);
	fclose(fp);
}

void write_file(const char *path, const void *buf, size_t len, mode_t mode)
{
	int fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

void set_ok(struct fx *f, const char *vault, const char *name, const char *value,
	    char version[VAULT_VERSION_SIZE])
{
	assert_int_equal(vault_secret_set(f->v, f->s, ALICE, vault, name, value, strlen(value),
					  "text/plain", version),
			 0);
}

void read_expect(struct fx *f, const char *vault, const char *name, const char *version,
		 const char *want)
{
	struct vault_value *val = NULL;
	int r = vault_secret_read(f->v, f->s, ALICE, "test", vault, name, version, &val);

	if (r != 0)
		fail_msg("read %s %s %s: %s", vault, name, version ? version : "(newest)",
			 err_str(r));
	assert_int_equal(val->len, strlen(want));
	assert_memory_equal(val->data, want, val->len);
	assert_int_equal(val->data[val->len], '\0');
	vault_value_free(val);
}

int read_err(struct fx *f, const char *vault, const char *name, const char *version)
{
	struct vault_value *val = (struct vault_value *)1;
	int r = vault_secret_read(f->v, f->s, ALICE, "test", vault, name, version, &val);

	assert_true(r < 0);
	assert_ptr_equal(val, (struct vault_value *)1); /* untouched on failure */
	return r;
}

void exec_sql(struct fx *f, const char *sql)
{
	char path[128];
	sqlite3 *db;

	if (tu_pg()) {
		char url[640];
		PGconn *c;
		PGresult *res;

		assert_int_equal(tu_pg_url(f->dir, url, sizeof(url)), 0);
		c = PQconnectdb(url);
		assert_int_equal(PQstatus(c), CONNECTION_OK);
		res = PQexec(c, sql);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			fail_msg("%s: %s", sql, PQerrorMessage(c));
		PQclear(res);
		PQfinish(c);
		return;
	}
	snprintf(path, sizeof(path), "%s/bastion.db", f->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	sqlite3_close(db);
}

/* Flips one byte of a blob column in the store, through a connection of
 * its own (as an attacker with the file would). offset < 0 counts from the
 * end. */
void flip_blob(struct fx *f, const char *table, const char *col, const char *where, long offset)
{
	char path[128], sql[512];
	sqlite3 *db;
	sqlite3_stmt *st;
	uint8_t buf[70000];
	int n;

	if (tu_pg()) {
		/* The same flip in SQL, on a connection of its own. */
		snprintf(sql, sizeof(sql),
			 "UPDATE %s SET %s = set_byte(%s, (%ld + CASE WHEN %ld < 0 THEN length(%s)"
			 " ELSE 0 END)::int, get_byte(%s, (%ld + CASE WHEN %ld < 0 THEN length(%s)"
			 " ELSE 0 END)::int) # 1) WHERE %s",
			 table, col, col, offset, offset, col, col, offset, offset, col, where);
		exec_sql(f, sql);
		return;
	}
	snprintf(path, sizeof(path), "%s/bastion.db", f->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	snprintf(sql, sizeof(sql), "SELECT %s FROM %s WHERE %s", col, table, where);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	n = sqlite3_column_bytes(st, 0);
	assert_true(n > 0 && n <= (int)sizeof(buf));
	memcpy(buf, sqlite3_column_blob(st, 0), (size_t)n);
	sqlite3_finalize(st);
	if (offset < 0)
		offset += n;
	buf[offset] ^= 0x01;
	snprintf(sql, sizeof(sql), "UPDATE %s SET %s = ? WHERE %s", table, col, where);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_blob(st, 1, buf, n, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(db);
}
