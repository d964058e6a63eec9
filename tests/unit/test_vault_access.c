/* The vault's access policies, a deleted vault, the audit of reads and
 * nothing in plaintext on disk, against a real store (both backends,
 * testutil.h; fixture vaulttest.c). */
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_policy_matrix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_policy_goes_with_user_and_vault, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_deleted_vault, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_is_audited, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_plaintext_on_disk, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
