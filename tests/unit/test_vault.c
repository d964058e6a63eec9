/* vault/ and store/sqlite_vault.c: sealing, the master key file, data keys,
 * secrets with versions, soft delete, tamper detection, rotation, access
 * policies and the audit of reads, against a real SQLite store in a
 * temporary directory. */
#include <errno.h>
#include <pthread.h>
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

#include "core/err.h"
#include "store/store.h"
#include "store/store_vault.h"
#include "store/store_rec.h"
#include "vault/vault.h"

#define V1    "/groups/g/vaults/v1"
#define V2    "/groups/g/vaults/v2"
#define ALICE "user:alice"

struct fx {
	char dir[64];
	char key_path[128];
	struct store *s;
	struct vault *v;
};

static void make_vault(struct store *s, const char *name)
{
	static const char *const no_refs[] = { NULL };
	json_t *props = json_pack("{s:i}", "soft_delete_retention_days", 7);
	bool created;

	assert_int_equal(store_group_put(s, "g", &created), 0);
	assert_int_equal(store_res_put(s, "g", "vaults", name, props, no_refs, &created), 0);
	json_decref(props);
}

static int setup(void **state)
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

static int teardown(void **state)
{
	struct fx *f = *state;

	vault_free(f->v);
	store_free(f->s);
	tu_rm_tree(f->dir);
	free(f);
	return 0;
}

/* Reopens the store and the vault as a restarted daemon would. */
static int reopen(struct fx *f, const char *key_file, const char **ret_reason)
{
	vault_free(f->v);
	f->v = NULL;
	store_free(f->s);
	assert_int_equal(tu_store_open(f->dir, &f->s), 0);
	return vault_open(f->s, f->dir, key_file, &f->v, ret_reason);
}

static void read_file(const char *path, uint8_t *buf, size_t size, size_t *ret_len)
{
	FILE *fp = fopen(path, "rbe");

	assert_non_null(fp);
	*ret_len = fread(buf, 1, size, fp);
	fclose(fp);
}

static void write_file(const char *path, const void *buf, size_t len, mode_t mode)
{
	int fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void set_ok(struct fx *f, const char *vault, const char *name, const char *value,
		   char version[VAULT_VERSION_SIZE])
{
	assert_int_equal(vault_secret_set(f->v, f->s, ALICE, vault, name, value, strlen(value),
					  "text/plain", version),
			 0);
}

static void read_expect(struct fx *f, const char *vault, const char *name, const char *version,
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

static int read_err(struct fx *f, const char *vault, const char *name, const char *version)
{
	struct vault_value *val = (struct vault_value *)1;
	int r = vault_secret_read(f->v, f->s, ALICE, "test", vault, name, version, &val);

	assert_true(r < 0);
	assert_ptr_equal(val, (struct vault_value *)1); /* untouched on failure */
	return r;
}

static void exec_sql(struct fx *f, const char *sql)
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
static void flip_blob(struct fx *f, const char *table, const char *col, const char *where,
		      long offset)
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

/* ---- sealing ---- */

static void test_seal_round_trip(void **state)
{
	uint8_t key[VAULT_KEY_BYTES], other[VAULT_KEY_BYTES], *blob, *blob2, out[40000];
	size_t sizes[] = { 0, 1, 31, 32, 33, 4096, VAULT_MAX_VALUE }, len, len2, n;
	uint8_t *pt = malloc(VAULT_MAX_VALUE);

	(void)state;
	assert_non_null(pt);
	randombytes_buf(key, sizeof(key));
	randombytes_buf(other, sizeof(other));
	randombytes_buf(pt, VAULT_MAX_VALUE);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		assert_int_equal(vault_seal(key, "ad", pt, sizes[i], &blob, &len), 0);
		assert_int_equal(len, sizes[i] + VAULT_SEAL_OVERHEAD);
		assert_int_equal(vault_unseal(key, "ad", blob, len, out, sizeof(out), &n), 0);
		assert_int_equal(n, sizes[i]);
		if (n)
			assert_memory_equal(out, pt, n);
		/* A fresh nonce each time: the same plaintext never seals
		 * to the same blob. */
		assert_int_equal(vault_seal(key, "ad", pt, sizes[i], &blob2, &len2), 0);
		assert_memory_not_equal(blob, blob2, len);
		free(blob2);
		assert_int_equal(vault_unseal(other, "ad", blob, len, out, sizeof(out), &n),
				 -BERR_INTEGRITY);
		assert_int_equal(vault_unseal(key, "ae", blob, len, out, sizeof(out), &n),
				 -BERR_INTEGRITY);
		assert_int_equal(vault_unseal(key, "ad", blob, len - 1, out, sizeof(out), &n),
				 -BERR_INTEGRITY);
		free(blob);
	}
	free(pt);
}

static void test_seal_tamper_every_byte(void **state)
{
	static const char msg[] = "-----BEGIN OPENSSH PRIVATE KEY-----";
	uint8_t key[VAULT_KEY_BYTES], *blob, out[64];
	size_t len, n;

	(void)state;
	randombytes_buf(key, sizeof(key));
	assert_int_equal(vault_seal(key, "id", (const uint8_t *)msg, sizeof(msg) - 1, &blob, &len),
			 0);
	/* Format byte, every nonce byte, every ciphertext and tag byte. */
	for (size_t i = 0; i < len; i++) {
		blob[i] ^= 0x80;
		memset(out, 0x55, sizeof(out));
		assert_int_equal(vault_unseal(key, "id", blob, len, out, sizeof(out), &n),
				 -BERR_INTEGRITY);
		/* Nothing of the plaintext is left in the output buffer. */
		for (size_t j = 0; j < sizeof(out); j++)
			assert_int_equal(out[j], 0);
		blob[i] ^= 0x80;
	}
	assert_int_equal(vault_unseal(key, "id", blob, len, out, sizeof(out), &n), 0);
	assert_int_equal(vault_unseal(key, "id", blob, 3, out, sizeof(out), &n), -BERR_INTEGRITY);
	free(blob);
}

/* ---- the master key file ---- */

static void test_master_key_file(void **state)
{
	struct fx *f = *state;
	struct stat st;
	uint8_t key[64], again[64];
	size_t len, len2;
	const char *reason = NULL;

	assert_int_equal(stat(f->key_path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, VAULT_KEY_BYTES);
	read_file(f->key_path, key, sizeof(key), &len);
	assert_int_equal(len, VAULT_KEY_BYTES);
	/* A restart keeps the key. */
	assert_int_equal(reopen(f, NULL, &reason), 0);
	read_file(f->key_path, again, sizeof(again), &len2);
	assert_memory_equal(key, again, VAULT_KEY_BYTES);

	/* Group- or world-accessible: refused. */
	assert_int_equal(chmod(f->key_path, 0640), 0);
	assert_int_equal(reopen(f, NULL, &reason), -EPERM);
	assert_non_null(strstr(reason, "group or others"));
	assert_int_equal(chmod(f->key_path, 0604), 0);
	assert_int_equal(reopen(f, NULL, &reason), -EPERM);
	assert_int_equal(chmod(f->key_path, 0600), 0);
	assert_int_equal(reopen(f, NULL, &reason), 0);

	/* Wrong size: refused, not padded or cut. */
	write_file(f->key_path, key, 31, 0600);
	assert_int_equal(reopen(f, NULL, &reason), -EINVAL);
	assert_non_null(strstr(reason, "32 bytes"));
	memcpy(again, key, 32);
	again[32] = '\n';
	write_file(f->key_path, again, 33, 0600);
	assert_int_equal(reopen(f, NULL, &reason), -EINVAL);
	write_file(f->key_path, key, 32, 0600);
	assert_int_equal(reopen(f, NULL, &reason), 0);

	/* A symbolic link to the right key, or a directory: refused. */
	{
		char real[PATH_MAX + 8];

		snprintf(real, sizeof(real), "%s.real", f->key_path);
		assert_int_equal(rename(f->key_path, real), 0);
		assert_int_equal(symlink(real, f->key_path), 0);
		assert_int_equal(reopen(f, NULL, &reason), -ELOOP);
		assert_int_equal(unlink(f->key_path), 0);
		assert_int_equal(mkdir(f->key_path, 0700), 0);
		assert_int_equal(reopen(f, NULL, &reason), -EINVAL);
		assert_int_equal(rmdir(f->key_path), 0);
		assert_int_equal(rename(real, f->key_path), 0);
		assert_int_equal(reopen(f, NULL, &reason), 0);
	}
}

static void test_wrong_master_key(void **state)
{
	struct fx *f = *state;
	uint8_t key[VAULT_KEY_BYTES], other[VAULT_KEY_BYTES];
	char ver[VAULT_VERSION_SIZE], alt[160];
	size_t len;
	const char *reason = NULL;

	set_ok(f, V1, "ssh", "the value", ver);
	read_file(f->key_path, key, sizeof(key), &len);
	randombytes_buf(other, sizeof(other));
	write_file(f->key_path, other, sizeof(other), 0600);
	assert_int_equal(reopen(f, NULL, &reason), -BERR_INTEGRITY);
	assert_non_null(strstr(reason, "not the one"));
	/* The wrong key was not "fixed" by overwriting anything. */
	read_file(f->key_path, other, sizeof(other), &len);
	assert_memory_not_equal(other, key, sizeof(key));

	/* A missing key file is never replaced while the store holds data. */
	unlink(f->key_path);
	assert_int_equal(reopen(f, NULL, &reason), -ENOENT);
	assert_non_null(strstr(reason, "missing"));
	assert_int_equal(access(f->key_path, F_OK), -1);

	/* --master-key-file elsewhere, with the right key. */
	snprintf(alt, sizeof(alt), "%s/elsewhere.key", f->dir);
	write_file(alt, key, sizeof(key), 0600);
	assert_int_equal(reopen(f, alt, &reason), 0);
	read_expect(f, V1, "ssh", NULL, "the value");
}

static void test_master_key_file_flag_first_run(void **state)
{
	char dir[64], alt[128];
	struct store *s;
	struct vault *v = NULL;
	struct stat st;
	const char *reason = NULL;

	(void)state;
	assert_non_null(tu_tmpdir(dir, sizeof(dir), "vaultkf"));
	snprintf(alt, sizeof(alt), "%s/custom.key", dir);
	assert_int_equal(tu_store_open(dir, &s), 0);
	assert_int_equal(vault_open(s, dir, alt, &v, &reason), 0);
	assert_int_equal(stat(alt, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, VAULT_KEY_BYTES);
	snprintf(alt, sizeof(alt), "%s/master.key", dir);
	assert_int_equal(access(alt, F_OK), -1); /* the default was not created */
	vault_free(v);
	store_free(s);
	tu_rm_tree(dir);
}

/* ---- secrets ---- */

static void test_versions(void **state)
{
	struct fx *f = *state;
	char v1[VAULT_VERSION_SIZE], v2[VAULT_VERSION_SIZE], v3[VAULT_VERSION_SIZE];
	struct store_secret sec;
	struct vault_value *val = NULL;

	set_ok(f, V1, "db", "first", v1);
	set_ok(f, V1, "db", "second", v2);
	set_ok(f, V1, "db", "", v3);
	assert_int_equal(strlen(v1), 32);
	assert_string_not_equal(v1, v2);
	read_expect(f, V1, "db", NULL, "");
	read_expect(f, V1, "db", v1, "first");
	read_expect(f, V1, "db", v2, "second");
	assert_int_equal(read_err(f, V1, "db", "00000000000000000000000000000000"), -ENOENT);
	assert_int_equal(read_err(f, V1, "nope", NULL), -ENOENT);
	/* Same name in another vault: another secret. */
	assert_int_equal(read_err(f, V2, "db", NULL), -ENOENT);
	assert_int_equal(store_secret_get(f->s, V1, "db", &sec), 0);
	assert_int_equal(sec.n_versions, 3);
	assert_string_equal(sec.version, v3);
	assert_string_equal(sec.content_type, "text/plain");
	/* Values with NUL bytes survive. */
	assert_int_equal(vault_secret_set(f->v, f->s, ALICE, V1, "bin", "a\0b", 3, NULL, v1), 0);
	assert_int_equal(vault_secret_read(f->v, f->s, ALICE, "test", V1, "bin", NULL, &val), 0);
	assert_int_equal(val->len, 3);
	assert_memory_equal(val->data, "a\0b", 3);
	assert_string_equal(val->content_type, "");
	vault_value_free(val);
	/* Limits. */
	assert_int_equal(
		vault_secret_set(f->v, f->s, ALICE, V1, "big", "x", VAULT_MAX_VALUE + 1, NULL, v1),
		-E2BIG);
	assert_int_equal(
		vault_secret_set(f->v, f->s, ALICE, "/groups/g/vaults/none", "x", "x", 1, NULL, v1),
		-ENOENT);
}

static void test_soft_delete_recover_purge(void **state)
{
	struct fx *f = *state;
	char v1[VAULT_VERSION_SIZE];
	struct store_secret sec;

	set_ok(f, V1, "k", "value-1", v1);
	assert_int_equal(vault_secret_delete(f->s, ALICE, V1, "k", 7), 0);
	assert_int_equal(read_err(f, V1, "k", NULL), -ENOENT);
	assert_int_equal(read_err(f, V1, "k", v1), -ENOENT);
	assert_int_equal(store_secret_get(f->s, V1, "k", &sec), 0);
	assert_true(sec.deleted_at > 0);
	assert_int_equal(sec.purge_at - sec.deleted_at, 7 * 86400);
	/* The name is taken while it can be recovered. */
	assert_int_equal(vault_secret_set(f->v, f->s, ALICE, V1, "k", "x", 1, NULL, v1), -EEXIST);
	assert_int_equal(vault_secret_delete(f->s, ALICE, V1, "k", 7), -ENOENT);
	assert_int_equal(vault_secret_recover(f->s, ALICE, V1, "k"), 0);
	read_expect(f, V1, "k", NULL, "value-1");
	assert_int_equal(vault_secret_recover(f->s, ALICE, V1, "k"), -ENOENT);
	/* Purge: gone with every version. */
	assert_int_equal(vault_secret_purge(f->s, ALICE, V1, "k"), 0);
	assert_int_equal(store_secret_get(f->s, V1, "k", &sec), -ENOENT);
	assert_int_equal(vault_secret_purge(f->s, ALICE, V1, "k"), -ENOENT);
	/* Past its recovery window a deleted secret is gone for good. */
	set_ok(f, V1, "old", "v", v1);
	assert_int_equal(vault_secret_delete(f->s, ALICE, V1, "old", 7), 0);
	exec_sql(f, "UPDATE vault_secrets SET purge_at = 1 WHERE name = 'old'");
	assert_int_equal(vault_secret_recover(f->s, ALICE, V1, "old"), -ENOENT);
	set_ok(f, V1, "old", "new life", v1);
	read_expect(f, V1, "old", NULL, "new life");
}

/* ---- tampering in the store ---- */

static void test_tamper_secret(void **state)
{
	struct fx *f = *state;
	char a[VAULT_VERSION_SIZE], b[VAULT_VERSION_SIZE], where[160];

	set_ok(f, V1, "s", "alpha", a);
	set_ok(f, V1, "s", "bravo", b);
	snprintf(where, sizeof(where), "version = '%s'", b);
	flip_blob(f, "vault_secret_versions", "sealed", where, -3); /* the tag */
	assert_int_equal(read_err(f, V1, "s", NULL), -BERR_INTEGRITY);
	flip_blob(f, "vault_secret_versions", "sealed", where, -3);
	read_expect(f, V1, "s", NULL, "bravo");
	flip_blob(f, "vault_secret_versions", "sealed", where, 5); /* the nonce */
	assert_int_equal(read_err(f, V1, "s", NULL), -BERR_INTEGRITY);
	flip_blob(f, "vault_secret_versions", "sealed", where, 5);
	flip_blob(f, "vault_secret_versions", "sealed", where, 26); /* the ciphertext */
	assert_int_equal(read_err(f, V1, "s", NULL), -BERR_INTEGRITY);
	/* The other version is untouched. */
	read_expect(f, V1, "s", a, "alpha");
}

static void test_tamper_swap_rows(void **state)
{
	struct fx *f = *state;
	char a[VAULT_VERSION_SIZE], b[VAULT_VERSION_SIZE], c[VAULT_VERSION_SIZE], sql[512];

	set_ok(f, V1, "one", "value one", a);
	set_ok(f, V1, "two", "value two", b);
	set_ok(f, V1, "one", "value one again", c);
	/* Another secret's sealed value copied over this one: refused. */
	snprintf(
		sql, sizeof(sql),
		"UPDATE vault_secret_versions SET sealed = (SELECT sealed FROM vault_secret_versions"
		" WHERE version = '%s') WHERE version = '%s'",
		b, c);
	exec_sql(f, sql);
	assert_int_equal(read_err(f, V1, "one", NULL), -BERR_INTEGRITY);
	/* An older version of the same secret copied over the newest. */
	snprintf(
		sql, sizeof(sql),
		"UPDATE vault_secret_versions SET sealed = (SELECT sealed FROM vault_secret_versions"
		" WHERE version = '%s') WHERE version = '%s'",
		a, c);
	exec_sql(f, sql);
	assert_int_equal(read_err(f, V1, "one", NULL), -BERR_INTEGRITY);
	read_expect(f, V1, "one", a, "value one");
}

static void test_tamper_data_key(void **state)
{
	struct fx *f = *state;
	char a[VAULT_VERSION_SIZE], b[VAULT_VERSION_SIZE];

	set_ok(f, V1, "s", "in v1", a);
	set_ok(f, V2, "s", "in v2", b);
	flip_blob(f, "vault_keys", "wrapped", "vault_id = '" V1 "'", 30);
	assert_int_equal(read_err(f, V1, "s", NULL), -BERR_INTEGRITY);
	assert_int_equal(vault_secret_set(f->v, f->s, ALICE, V1, "s", "x", 1, NULL, a),
			 -BERR_INTEGRITY);
	read_expect(f, V2, "s", NULL, "in v2");
	flip_blob(f, "vault_keys", "wrapped", "vault_id = '" V1 "'", 30);
	read_expect(f, V1, "s", NULL, "in v1");
	/* Vault 2's wrapped key copied onto vault 1: refused (the vault ID
	 * is bound in). */
	exec_sql(
		f,
		"UPDATE vault_keys SET wrapped = (SELECT wrapped FROM vault_keys WHERE vault_id = '" V2
		"') WHERE vault_id = '" V1 "'");
	assert_int_equal(read_err(f, V1, "s", NULL), -BERR_INTEGRITY);
	/* A vault whose key row vanished but whose secrets remain. */
	exec_sql(f, "DELETE FROM vault_keys WHERE vault_id = '" V1 "'");
	assert_int_equal(read_err(f, V1, "s", NULL), -BERR_INTEGRITY);
}

/* ---- rotation ---- */

static void test_rotation(void **state)
{
	struct fx *f = *state;
	char ver[6][VAULT_VERSION_SIZE], new_path[160];
	uint8_t before[VAULT_KEY_BYTES], after[VAULT_KEY_BYTES];
	int64_t n = -1;
	size_t len;
	struct stat st;
	const char *reason = NULL;

	set_ok(f, V1, "a", "a-1", ver[0]);
	set_ok(f, V1, "a", "a-2", ver[1]);
	set_ok(f, V1, "b", "b-1", ver[2]);
	set_ok(f, V2, "a", "v2-a-1", ver[3]);
	set_ok(f, V2, "a", "v2-a-2", ver[4]);
	assert_int_equal(vault_secret_delete(f->s, ALICE, V2, "a", 7), 0);
	read_file(f->key_path, before, sizeof(before), &len);
	assert_int_equal(vault_rotate(f->v, f->s, "user:admin", &n), 0);
	assert_int_equal(n, 2);
	read_file(f->key_path, after, sizeof(after), &len);
	assert_int_equal(len, VAULT_KEY_BYTES);
	assert_memory_not_equal(before, after, sizeof(before));
	assert_int_equal(stat(f->key_path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(new_path, sizeof(new_path), "%s.new", f->key_path);
	assert_int_equal(access(new_path, F_OK), -1);
	/* Every version readable, in the running instance and after a
	 * restart; a soft-deleted secret recovers readable. */
	for (int round = 0; round < 2; round++) {
		read_expect(f, V1, "a", ver[0], "a-1");
		read_expect(f, V1, "a", ver[1], "a-2");
		read_expect(f, V1, "b", NULL, "b-1");
		if (round == 0) {
			assert_int_equal(reopen(f, NULL, &reason), 0);
			continue;
		}
		assert_int_equal(vault_secret_recover(f->s, ALICE, V2, "a"), 0);
		read_expect(f, V2, "a", ver[3], "v2-a-1");
		read_expect(f, V2, "a", NULL, "v2-a-2");
	}
	/* New secrets after rotation, and a second rotation. */
	set_ok(f, V1, "c", "c-1", ver[5]);
	assert_int_equal(vault_rotate(f->v, f->s, "user:admin", &n), 0);
	read_expect(f, V1, "c", NULL, "c-1");
	read_expect(f, V1, "a", ver[0], "a-1");
	/* The old key no longer opens the store. */
	write_file(f->key_path, before, sizeof(before), 0600);
	assert_int_equal(reopen(f, NULL, &reason), -BERR_INTEGRITY);
}

static void test_rotation_crash_recovery(void **state)
{
	struct fx *f = *state;
	char ver[VAULT_VERSION_SIZE], new_path[160];
	uint8_t old_key[VAULT_KEY_BYTES], new_key[VAULT_KEY_BYTES], junk[VAULT_KEY_BYTES], now[64];
	int64_t n;
	size_t len;
	const char *reason = NULL;

	snprintf(new_path, sizeof(new_path), "%s.new", f->key_path);
	set_ok(f, V1, "a", "kept", ver);
	/* A crash before the commit leaves a .new the store does not know:
	 * removed at start, the old key stays. */
	randombytes_buf(junk, sizeof(junk));
	write_file(new_path, junk, sizeof(junk), 0600);
	assert_int_equal(reopen(f, NULL, &reason), 0);
	assert_int_equal(access(new_path, F_OK), -1);
	read_expect(f, V1, "a", NULL, "kept");

	/* A crash after the commit but before the rename: the old key is
	 * still in the file, the committed one in .new. */
	read_file(f->key_path, old_key, sizeof(old_key), &len);
	assert_int_equal(vault_rotate(f->v, f->s, "user:admin", &n), 0);
	read_file(f->key_path, new_key, sizeof(new_key), &len);
	write_file(new_path, new_key, sizeof(new_key), 0600);
	write_file(f->key_path, old_key, sizeof(old_key), 0600);
	assert_int_equal(reopen(f, NULL, &reason), 0);
	read_file(f->key_path, now, sizeof(now), &len);
	assert_int_equal(len, VAULT_KEY_BYTES);
	assert_memory_equal(now, new_key, VAULT_KEY_BYTES);
	assert_int_equal(access(new_path, F_OK), -1);
	read_expect(f, V1, "a", NULL, "kept");
}

/* Recordings' keys (vault_wrap, issue 17) are re-wrapped by a rotation,
 * so recordings made before it still open; one already damaged is left
 * alone and does not block the rotation. */
static void add_recording(struct fx *f, const char *id, const char *ad_id, uint8_t key[32])
{
	struct store_rec rec = { 0 };
	char ad[96];
	uint8_t *w = NULL;
	size_t wlen = 0;

	randombytes_buf(key, 32);
	snprintf(ad, sizeof(ad), VAULT_AD_RECORDING "%s", ad_id);
	assert_int_equal(vault_wrap(f->v, ad, key, 32, &w, &wlen), 0);
	snprintf(rec.id, sizeof(rec.id), "%s", id);
	snprintf(rec.session, sizeof(rec.session), "s");
	snprintf(rec.user, sizeof(rec.user), "alice");
	snprintf(rec.vm, sizeof(rec.vm), "/groups/g/vms/v");
	snprintf(rec.bastion, sizeof(rec.bastion), "/groups/g/bastions/b");
	snprintf(rec.instance, sizeof(rec.instance), "i");
	snprintf(rec.mode, sizeof(rec.mode), "output");
	memcpy(rec.wrapped, w, wlen);
	rec.wrapped_len = wlen;
	free(w);
	assert_int_equal(store_rec_open(f->s, &rec), 0);
}

static int unwrap_rec(struct fx *f, const char *id, uint8_t out[32])
{
	struct store_rec rec;
	char ad[96];
	size_t n = 0;
	int r;

	assert_int_equal(store_rec_get(f->s, id, &rec), 0);
	snprintf(ad, sizeof(ad), VAULT_AD_RECORDING "%s", id);
	r = vault_unwrap(f->v, ad, rec.wrapped, rec.wrapped_len, out, 32, &n);
	if (r == 0)
		assert_int_equal(n, 32);
	return r;
}

static void test_rotation_rewraps_recording_keys(void **state)
{
	struct fx *f = *state;
	uint8_t k1[32], k2[32], bad[32], got[32];
	int64_t n = -1;
	const char *reason = NULL;
	char ver[VAULT_VERSION_SIZE];

	set_ok(f, V1, "a", "x", ver);
	add_recording(f, "rec-1", "rec-1", k1);
	add_recording(f, "rec-2", "rec-2", k2);
	add_recording(f, "rec-bad", "rec-other", bad); /* wrapped for another ID */
	assert_int_equal(unwrap_rec(f, "rec-bad", got), -BERR_INTEGRITY);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(vault_rotate(f->v, f->s, "user:admin", &n), 0);
		assert_int_equal(n, 1); /* data keys only */
		assert_int_equal(unwrap_rec(f, "rec-1", got), 0);
		assert_memory_equal(got, k1, 32);
		assert_int_equal(unwrap_rec(f, "rec-2", got), 0);
		assert_memory_equal(got, k2, 32);
		assert_int_equal(unwrap_rec(f, "rec-bad", got), -BERR_INTEGRITY);
	}
	assert_int_equal(tu_query_int(f->s, "SELECT count(*) FROM audit WHERE detail LIKE ?",
				      "%\"recording_keys\":2%"),
			 2);
	assert_int_equal(reopen(f, NULL, &reason), 0);
	assert_int_equal(unwrap_rec(f, "rec-1", got), 0);
	assert_memory_equal(got, k1, 32);
}

static void test_rotation_refused_on_damage(void **state)
{
	struct fx *f = *state;
	char ver[VAULT_VERSION_SIZE], new_path[160];
	uint8_t before[VAULT_KEY_BYTES], after[VAULT_KEY_BYTES];
	int64_t n = -1;
	size_t len;

	set_ok(f, V1, "a", "x", ver);
	set_ok(f, V2, "a", "y", ver);
	flip_blob(f, "vault_keys", "wrapped", "vault_id = '" V2 "'", 10);
	read_file(f->key_path, before, sizeof(before), &len);
	assert_int_equal(vault_rotate(f->v, f->s, "user:admin", &n), -BERR_INTEGRITY);
	assert_int_equal(n, -1);
	read_file(f->key_path, after, sizeof(after), &len);
	assert_memory_equal(before, after, sizeof(before));
	snprintf(new_path, sizeof(new_path), "%s.new", f->key_path);
	assert_int_equal(access(new_path, F_OK), -1);
	read_expect(f, V1, "a", NULL, "x");
}

/* ---- policies ---- */

static void test_policy_matrix(void **state)
{
	struct fx *f = *state;
	static const unsigned all[] = { VAULT_PERM_LIST, VAULT_PERM_GET, VAULT_PERM_SET,
					VAULT_PERM_DELETE, VAULT_PERM_USE };
	const size_t n_all = sizeof(all) / sizeof(all[0]);
	unsigned p, got;
	bool created;

	assert_string_equal(vault_perm_name(VAULT_PERM_GET), "get");
	assert_null(vault_perm_name(3));
	assert_int_equal(vault_perm_parse("delete", &p), 0);
	assert_int_equal(p, VAULT_PERM_DELETE);
	assert_int_equal(vault_perm_parse("Get", &p), -EINVAL);
	assert_int_equal(vault_perm_parse("purge", &p), -EINVAL);
	assert_int_equal(vault_perm_parse("use", &p), 0);
	assert_int_equal(p, VAULT_PERM_USE);
	assert_string_equal(vault_perm_name(VAULT_PERM_USE), "use");
	/* No policy: nothing. */
	assert_int_equal(
		vault_policy_check_any(f->s, V1, "user:bob", VAULT_PERM_GET | VAULT_PERM_USE),
		-EACCES);
	for (size_t i = 0; i < n_all; i++)
		assert_int_equal(vault_policy_check(f->s, V1, "user:bob", all[i]), -EACCES);
	/* Every subset grants exactly its members, on its vault only. */
	for (unsigned set = 0; set <= VAULT_PERM_ALL; set++) {
		assert_int_equal(store_vault_policy_put(f->s, V1, "user:bob", set, &created), 0);
		assert_int_equal(created, set == 0);
		assert_int_equal(store_vault_policy_get(f->s, V1, "user:bob", &got), 0);
		assert_int_equal(got, set);
		/* Connect's check: get or use, either one is enough. */
		assert_int_equal(vault_policy_check_any(f->s, V1, "user:bob",
							VAULT_PERM_GET | VAULT_PERM_USE),
				 (set & (VAULT_PERM_GET | VAULT_PERM_USE)) ? 0 : -EACCES);
		for (size_t i = 0; i < n_all; i++) {
			assert_int_equal(vault_policy_check(f->s, V1, "user:bob", all[i]),
					 (set & all[i]) ? 0 : -EACCES);
			assert_int_equal(vault_policy_check(f->s, V2, "user:bob", all[i]), -EACCES);
			assert_int_equal(vault_policy_check(f->s, V1, "user:bobby", all[i]),
					 -EACCES);
		}
	}
	/* A policy needs its vault. */
	assert_int_equal(
		store_vault_policy_put(f->s, "/groups/g/vaults/none", "user:bob", 1, &created),
		-ENOENT);
	assert_int_equal(store_vault_policy_delete(f->s, V1, "user:bob"), 0);
	assert_int_equal(store_vault_policy_delete(f->s, V1, "user:bob"), -ENOENT);
	assert_int_equal(vault_policy_check(f->s, V1, "user:bob", VAULT_PERM_LIST), -EACCES);
}

static void test_policy_goes_with_user_and_vault(void **state)
{
	static const char *const no_refs[] = { NULL };
	struct fx *f = *state;
	json_t *empty = json_object();
	bool created;
	int64_t id;
	unsigned got;
	char ver[VAULT_VERSION_SIZE];

	assert_int_equal(store_user_put(f->s, "carol", "$argon2id$placeholder", &created, &id), 0);
	assert_int_equal(store_vault_policy_put(f->s, V1, "user:carol", VAULT_PERM_GET, &created),
			 0);
	assert_int_equal(store_user_delete(f->s, "carol"), 0);
	assert_int_equal(store_vault_policy_get(f->s, V1, "user:carol", &got), -ENOENT);
	/* A new carol inherits nothing. */
	assert_int_equal(store_user_put(f->s, "carol", "$argon2id$placeholder", &created, &id), 0);
	assert_int_equal(vault_policy_check(f->s, V1, "user:carol", VAULT_PERM_GET), -EACCES);

	/* Deleting the vault keeps it, reserved, until purged; purging takes
	 * its secrets, keys and policies for good. */
	set_ok(f, V1, "s", "x", ver);
	assert_int_equal(store_vault_policy_put(f->s, V1, "user:carol", VAULT_PERM_GET, &created),
			 0);
	assert_int_equal(store_res_delete(f->s, V1), 0);
	assert_int_equal(store_res_put(f->s, "g", "vaults", "v1", empty, no_refs, &created),
			 -EEXIST);
	assert_int_equal(store_vault_purge_deleted(f->s, V1), 0);
	assert_int_equal(store_vault_purge_deleted(f->s, V1), -ENOENT);
	make_vault(f->s, "v1");
	assert_int_equal(read_err(f, V1, "s", NULL), -ENOENT);
	assert_int_equal(store_vault_policy_get(f->s, V1, "user:carol", &got), -ENOENT);
	assert_int_equal(store_vault_key_get(f->s, V1, &(uint8_t *){ NULL }, &(size_t){ 0 }),
			 -ENOENT);
	json_decref(empty);
}

/* A deleted vault comes back whole (secrets, soft-deleted ones, versions,
 * policies), also after a master-key rotation, under its own ID; a policy
 * whose user went meanwhile does not come back; an expired one is gone. */
static void test_deleted_vault(void **state)
{
	struct fx *f = *state;
	struct store_deleted_vault d;
	char v1[VAULT_VERSION_SIZE], v2[VAULT_VERSION_SIZE], ver[VAULT_VERSION_SIZE];
	unsigned got;
	bool created;
	int64_t id, n = 0, now = store_now();

	assert_int_equal(store_user_put(f->s, "dan", "$argon2id$placeholder", &created, &id), 0);
	assert_int_equal(store_user_put(f->s, "eve", "$argon2id$placeholder", &created, &id), 0);
	set_ok(f, V1, "a", "first", v1);
	set_ok(f, V1, "a", "second", v2);
	set_ok(f, V1, "gone", "soft-deleted", ver);
	assert_int_equal(vault_secret_delete(f->s, ALICE, V1, "gone", 7), 0);
	assert_int_equal(store_vault_policy_put(f->s, V1, "user:dan", VAULT_PERM_GET, &created), 0);
	assert_int_equal(store_vault_policy_put(f->s, V1, "user:eve", VAULT_PERM_USE, &created), 0);

	assert_int_equal(store_vault_deleted_get(f->s, V1, now, &d), -ENOENT);
	assert_int_equal(store_res_delete(f->s, V1), 0);
	assert_int_equal(read_err(f, V1, "a", NULL), -ENOENT);
	assert_int_equal(store_vault_deleted_get(f->s, V1, now, &d), 0);
	assert_string_equal(d.name, "v1");
	assert_string_equal(d.group, "g");
	assert_int_equal(d.n_secrets, 2);
	assert_true(d.purge_at - d.deleted_at == 7 * 86400);
	/* Only vaults are kept. */
	assert_int_equal(store_vault_deleted_get(f->s, V2, now, &d), -ENOENT);

	/* Meanwhile: the master key changes and a user goes. */
	assert_int_equal(vault_rotate(f->v, f->s, "user:admin", &n), 0);
	assert_int_equal(n, 1); /* v2 has no key yet: v1's deleted one is re-wrapped */
	assert_int_equal(store_user_delete(f->s, "eve"), 0);

	assert_int_equal(store_vault_recover(f->s, V1, now), 0);
	assert_int_equal(store_vault_recover(f->s, V1, now), -ENOENT);
	read_expect(f, V1, "a", NULL, "second");
	read_expect(f, V1, "a", v1, "first");
	assert_int_equal(read_err(f, V1, "gone", NULL), -ENOENT);
	assert_int_equal(vault_secret_recover(f->s, ALICE, V1, "gone"), 0);
	read_expect(f, V1, "gone", NULL, "soft-deleted");
	assert_int_equal(store_vault_policy_get(f->s, V1, "user:dan", &got), 0);
	assert_int_equal(got, VAULT_PERM_GET);
	assert_int_equal(store_vault_policy_get(f->s, V1, "user:eve", &got), -ENOENT);

	/* Past its retention it is purged at the next look, its name free. */
	assert_int_equal(store_res_delete(f->s, V1), 0);
	assert_int_equal(store_vault_deleted_get(f->s, V1, now + 7 * 86400 + 1, &d), -ENOENT);
	assert_int_equal(store_vault_recover(f->s, V1, now), -ENOENT);
	make_vault(f->s, "v1");
	assert_int_equal(read_err(f, V1, "a", NULL), -ENOENT);
}

/* ---- audit, and nothing in plaintext on disk ---- */

static void test_read_is_audited(void **state)
{
	struct fx *f = *state;
	char ver[VAULT_VERSION_SIZE], want[320];

	set_ok(f, V1, "audited", "do-not-log-this-value", ver);
	read_expect(f, V1, "audited", NULL, "do-not-log-this-value");
	/* One record, with what a reader needs and no value: compared as one
	 * text, so that the same SQL runs on both backends. */
	assert_int_equal(
		tu_query_int(f->s, "SELECT COUNT(*) FROM audit WHERE action = 'secret.get'", NULL),
		1);
	snprintf(want, sizeof(want),
		 ALICE "|" V1 "/secrets/audited|read|{\"secret\":\"audited\",\"vault\":\"" V1
		       "\",\"version\":\"%s\",\"via\":\"test\"}",
		 ver);
	assert_int_equal(
		tu_query_int(f->s,
			     "SELECT COUNT(*) FROM audit WHERE action = 'secret.get' AND"
			     " principal || '|' || target || '|' || result || '|' || detail"
			     " = ?",
			     want),
		1);
	/* No audit row anywhere holds the value. */
	assert_int_equal(tu_query_int(f->s,
				      "SELECT COUNT(*) FROM audit WHERE COALESCE(detail,'') LIKE"
				      " '%do-not-log%' OR COALESCE(target,'') LIKE '%do-not-log%'",
				      NULL),
			 0);
}

static bool file_contains(const char *path, const void *needle, size_t n)
{
	FILE *fp = fopen(path, "rbe");
	uint8_t *buf;
	size_t len;
	bool found = false;

	if (!fp)
		return false;
	buf = malloc(64 << 20);
	assert_non_null(buf);
	len = fread(buf, 1, 64 << 20, fp);
	fclose(fp);
	found = len >= n && memmem(buf, len, needle, n) != NULL;
	free(buf);
	return found;
}

static void test_no_plaintext_on_disk(void **state)
{
	struct fx *f = *state;
	char ver[VAULT_VERSION_SIZE], value[200], db[128], wal[128];
	uint8_t key[VAULT_KEY_BYTES];
	size_t len;

	snprintf(value, sizeof(value), "PLAINTEXT-MARKER-%08x-%08x", randombytes_random(),
		 randombytes_random());
	set_ok(f, V1, "marker", value, ver);
	set_ok(f, V1, "marker", value, ver);
	read_file(f->key_path, key, sizeof(key), &len);
	if (tu_pg()) {
		/* The cluster's files are the server's: what the store holds is
		 * checked through it instead, every blob and text column where
		 * a value or a key could land. */
		char hexkey[2 * VAULT_KEY_BYTES + 1];

		sodium_bin2hex(hexkey, sizeof(hexkey), key, sizeof(key));
		assert_int_equal(
			tu_query_int(
				f->s,
				"SELECT COUNT(*) FROM vault_secret_versions WHERE name = 'marker'",
				NULL),
			2);
		assert_int_equal(tu_query_int(f->s,
					      "SELECT COUNT(*) FROM vault_secret_versions WHERE"
					      " position(convert_to(?, 'UTF8') in sealed) > 0",
					      value),
				 0);
		assert_int_equal(
			tu_query_int(f->s,
				     "SELECT COUNT(*) FROM audit WHERE strpos(COALESCE(detail,"
				     " '') || COALESCE(target, ''), ?) > 0",
				     value),
			0);
		assert_int_equal(
			tu_query_int(f->s,
				     "SELECT COUNT(*) FROM (SELECT wrapped AS b FROM vault_keys"
				     " UNION ALL SELECT value FROM vault_meta) t WHERE"
				     " position(decode(?, 'hex') in b) > 0",
				     hexkey),
			0);
		return;
	}
	snprintf(db, sizeof(db), "%s/bastion.db", f->dir);
	snprintf(wal, sizeof(wal), "%s/bastion.db-wal", f->dir);
	assert_true(file_contains(db, "marker", 6) || file_contains(wal, "marker", 6)); /* sanity */
	assert_false(file_contains(db, value, strlen(value)));
	assert_false(file_contains(wal, value, strlen(value)));
	assert_false(file_contains(db, key, sizeof(key)));
	assert_false(file_contains(wal, key, sizeof(key)));
}

/* The MFA key (TOTP keys of identity/mfa.h): a blob opens only with its
 * associated data, survives a restart and a master-key rotation, and a
 * store without the key yet refuses to open anything. */
static void test_mfa_key(void **state)
{
	struct fx *f = *state;
	static const uint8_t totp[20] = "12345678901234567890";
	uint8_t *blob = NULL, out[64];
	const char *reason = NULL;
	size_t blob_len = 0, n = 0;
	int64_t count = -1;

	assert_int_equal(
		vault_mfa_open(f->v, f->s, "mfa/totp/1", totp, sizeof(totp), out, sizeof(out), &n),
		-BERR_INTEGRITY);
	assert_int_equal(
		vault_mfa_seal(f->v, f->s, "mfa/totp/1", totp, sizeof(totp), &blob, &blob_len), 0);
	assert_int_equal(blob_len, sizeof(totp) + VAULT_SEAL_OVERHEAD);
	assert_int_equal(
		vault_mfa_open(f->v, f->s, "mfa/totp/2", blob, blob_len, out, sizeof(out), &n),
		-BERR_INTEGRITY);
	for (int round = 0; round < 3; round++) {
		memset(out, 0, sizeof(out));
		assert_int_equal(vault_mfa_open(f->v, f->s, "mfa/totp/1", blob, blob_len, out,
						sizeof(out), &n),
				 0);
		assert_int_equal(n, sizeof(totp));
		assert_memory_equal(out, totp, sizeof(totp));
		if (round == 0)
			assert_int_equal(vault_rotate(f->v, f->s, "user:admin", &count), 0);
		else if (round == 1)
			assert_int_equal(reopen(f, NULL, &reason), 0);
	}
	free(blob);
}

/* The first secrets of a fresh vault written at once (two instances, or
 * two workers): each write makes the vault's data key if there is none;
 * one key is stored, the others use it, and every write succeeds. */
#define RACERS 6
struct racer {
	struct fx *f;
	pthread_barrier_t *go;
	const char *vault;
	int idx, r;
};

static void *racer_run(void *arg)
{
	struct racer *x = arg;
	char name[16], version[VAULT_VERSION_SIZE];

	snprintf(name, sizeof(name), "s%d", x->idx);
	pthread_barrier_wait(x->go);
	x->r = vault_secret_set(x->f->v, x->f->s, ALICE, x->vault, name, "v", 1, NULL, version);
	return NULL;
}

static void test_first_key_race(void **state)
{
	struct fx *f = *state;

	for (int round = 0; round < 8; round++) {
		pthread_barrier_t go;
		pthread_t th[RACERS];
		struct racer x[RACERS];
		char vname[16], vid[64];

		snprintf(vname, sizeof(vname), "race%d", round);
		snprintf(vid, sizeof(vid), "/groups/g/vaults/%s", vname);
		make_vault(f->s, vname);
		assert_int_equal(pthread_barrier_init(&go, NULL, RACERS), 0);
		for (int i = 0; i < RACERS; i++) {
			x[i] = (struct racer){ .f = f, .go = &go, .vault = vid, .idx = i };
			assert_int_equal(pthread_create(&th[i], NULL, racer_run, &x[i]), 0);
		}
		for (int i = 0; i < RACERS; i++) {
			pthread_join(th[i], NULL);
			assert_int_equal(x[i].r, 0);
		}
		pthread_barrier_destroy(&go);
		for (int i = 0; i < RACERS; i++) {
			char name[16];

			snprintf(name, sizeof(name), "s%d", i);
			read_expect(f, vid, name, NULL, "v");
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seal_round_trip),
		cmocka_unit_test(test_seal_tamper_every_byte),
		cmocka_unit_test_setup_teardown(test_master_key_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mfa_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_master_key, setup, teardown),
		cmocka_unit_test(test_master_key_file_flag_first_run),
		cmocka_unit_test_setup_teardown(test_versions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_soft_delete_recover_purge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tamper_secret, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tamper_swap_rows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tamper_data_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation_crash_recovery, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation_refused_on_damage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_policy_matrix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_policy_goes_with_user_and_vault, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_deleted_vault, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation_rewraps_recording_keys, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_read_is_audited, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_plaintext_on_disk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_first_key_race, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
