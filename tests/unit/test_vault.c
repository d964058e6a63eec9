/* vault/ and the store's vault tables: sealing, the master key file, data
 * keys, secrets with versions, soft delete, tamper detection and rotation,
 * against a real store (both backends, testutil.h). Access policies and
 * the audit of reads are test_vault_access.c. */
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
#include "vaulttest.h"

#include "core/err.h"
#include "store/store.h"
#include "store/store_vault.h"
#include "store/store_rec.h"
#include "vault/vault.h"

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
		cmocka_unit_test_setup_teardown(test_rotation_rewraps_recording_keys, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_first_key_race, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
