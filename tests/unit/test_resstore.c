/* store/sqlite_res.c: resource groups, resources, references between them,
 * transactions, and the host keys that go with a VM. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

#include "store/store.h"

/* Collects IDs (or group names) from a walk, joined by spaces. */
struct seen {
	char text[1024];
	int stop_after; /* > 0: return 42 after that many */
	int n;
};

static void seen_add(struct seen *w, const char *s)
{
	size_t used = strlen(w->text);

	snprintf(w->text + used, sizeof(w->text) - used, "%s%s", used ? " " : "", s);
}

static int seen_group(const char *name, void *ud)
{
	struct seen *w = ud;

	seen_add(w, name);
	return ++w->n == w->stop_after ? 42 : 0;
}

static int seen_res(const char *id, const char *name, json_t *props, void *ud)
{
	struct seen *w = ud;

	assert_true(json_is_object(props));
	assert_non_null(strstr(id, name));
	seen_add(w, id);
	return ++w->n == w->stop_after ? 42 : 0;
}

static json_t *net(const char *prefix)
{
	return json_pack("{s:[s]}", "address_prefixes", prefix);
}

/* Puts a resource whose props are {"v": v} with the given refs. */
static int put(struct store *s, const char *g, const char *type, const char *name, const char *v,
	       const char *ref1, const char *ref2, bool *created)
{
	json_t *p = json_pack("{s:s}", "v", v);
	const char *refs[3] = { ref1, ref1 ? ref2 : NULL, NULL };
	int r = store_res_put(s, g, type, name, p, refs, created);

	json_decref(p);
	return r;
}

static const char *prop_v(struct store *s, const char *id, char *buf, size_t size)
{
	json_t *p = NULL;

	assert_int_equal(store_res_get(s, id, &p), 0);
	snprintf(buf, size, "%s", json_string_value(json_object_get(p, "v")));
	json_decref(p);
	return buf;
}

static void test_groups(void **state)
{
	struct tu_store *f = *state;
	struct seen w = { 0 };
	bool created = false;
	char *blocker = NULL;

	assert_int_equal(store_group_exists(f->s, "prod"), -ENOENT);
	assert_int_equal(store_group_put(f->s, "prod", &created), 0);
	assert_true(created);
	assert_int_equal(store_group_put(f->s, "prod", &created), 0);
	assert_false(created);
	assert_int_equal(store_group_exists(f->s, "prod"), 0);
	/* Case-sensitive: another group. */
	assert_int_equal(store_group_exists(f->s, "Prod"), -ENOENT);
	assert_int_equal(store_group_put(f->s, "Prod", &created), 0);
	assert_true(created);
	assert_int_equal(store_group_put(f->s, "a", NULL), 0);
	assert_int_equal(store_group_put(f->s, "a/b", &created), -EINVAL);
	assert_int_equal(store_group_put(f->s, "", &created), -EINVAL);

	/* Byte order: upper case sorts before lower case. */
	assert_int_equal(store_group_foreach(f->s, seen_group, &w), 0);
	assert_string_equal(w.text, "Prod a prod");
	memset(&w, 0, sizeof(w));
	w.stop_after = 2;
	assert_int_equal(store_group_foreach(f->s, seen_group, &w), 42);
	assert_string_equal(w.text, "Prod a");

	assert_int_equal(store_group_blocker(f->s, "prod", &blocker), -ENOENT);
	assert_int_equal(store_group_delete(f->s, "Prod"), 0);
	assert_int_equal(store_group_delete(f->s, "Prod"), -ENOENT);
	assert_int_equal(store_group_delete(f->s, "nope"), -ENOENT);
	assert_int_equal(store_group_exists(f->s, "prod"), 0);
}

static void test_put_get_replace(void **state)
{
	struct tu_store *f = *state;
	json_t *p = net("198.18.0.0/24"), *got = NULL;
	bool created = false;

	/* No group: nothing is written. */
	assert_int_equal(store_res_put(f->s, "prod", "networks", "n1", p, NULL, &created), -ENOENT);
	assert_int_equal(store_res_get(f->s, "/groups/prod/networks/n1", &got), -ENOENT);

	assert_int_equal(store_group_put(f->s, "prod", NULL), 0);
	assert_int_equal(store_res_put(f->s, "prod", "networks", "n1", p, NULL, &created), 0);
	assert_true(created);
	assert_int_equal(store_res_get(f->s, "/groups/prod/networks/n1", &got), 0);
	assert_true(json_equal(got, p));
	json_decref(got);
	/* Idempotent. */
	assert_int_equal(store_res_put(f->s, "prod", "networks", "n1", p, NULL, &created), 0);
	assert_false(created);
	json_decref(p);

	/* Replace. */
	p = net("198.18.0.0/23");
	assert_int_equal(store_res_put(f->s, "prod", "networks", "n1", p, NULL, &created), 0);
	assert_false(created);
	assert_int_equal(store_res_get(f->s, "/groups/prod/networks/n1", &got), 0);
	assert_true(json_equal(got, p));
	json_decref(got);
	json_decref(p);

	/* IDs are exact: no case folding, no other type. */
	assert_int_equal(store_res_get(f->s, "/groups/prod/networks/N1", &got), -ENOENT);
	assert_int_equal(store_res_get(f->s, "/groups/prod/nics/n1", &got), -ENOENT);
	assert_int_equal(store_res_get(f->s, "/groups/Prod/networks/n1", &got), -ENOENT);

	/* Bad arguments. */
	p = json_array();
	assert_int_equal(store_res_put(f->s, "prod", "networks", "x", p, NULL, &created), -EINVAL);
	json_decref(p);
	assert_int_equal(put(f->s, "prod", "networks", "a/b", "x", NULL, NULL, &created), -EINVAL);
	assert_int_equal(put(f->s, "prod", "networks", "", "x", NULL, NULL, &created), -EINVAL);
	/* A resource never refers to itself. */
	assert_int_equal(put(f->s, "prod", "networks", "n1", "self", "/groups/prod/networks/n1",
			     NULL, &created),
			 -EINVAL);
	p = net("198.18.0.0/23");
	assert_int_equal(store_res_get(f->s, "/groups/prod/networks/n1", &got), 0);
	assert_true(json_equal(got, p));
	json_decref(got);
	json_decref(p);
}

static void test_list_order(void **state)
{
	struct tu_store *f = *state;
	struct seen w = { 0 };

	assert_int_equal(store_group_put(f->s, "g", NULL), 0);
	assert_int_equal(store_group_put(f->s, "h", NULL), 0);
	assert_int_equal(put(f->s, "g", "vms", "web2", "1", NULL, NULL, NULL), 0);
	assert_int_equal(put(f->s, "g", "vms", "Web1", "1", NULL, NULL, NULL), 0);
	assert_int_equal(put(f->s, "g", "vms", "web1", "1", NULL, NULL, NULL), 0);
	assert_int_equal(put(f->s, "g", "vms", "web10", "1", NULL, NULL, NULL), 0);
	assert_int_equal(put(f->s, "g", "nics", "aaa", "1", NULL, NULL, NULL), 0);
	assert_int_equal(put(f->s, "h", "vms", "a", "1", NULL, NULL, NULL), 0);

	assert_int_equal(store_res_foreach(f->s, "g", "vms", seen_res, &w), 0);
	assert_string_equal(w.text, "/groups/g/vms/Web1 /groups/g/vms/web1 /groups/g/vms/web10 "
				    "/groups/g/vms/web2");
	memset(&w, 0, sizeof(w));
	assert_int_equal(store_res_foreach(f->s, "g", "bastions", seen_res, &w), 0);
	assert_string_equal(w.text, "");
	assert_int_equal(store_res_foreach(f->s, "nope", "vms", seen_res, &w), 0);
	assert_string_equal(w.text, "");
	memset(&w, 0, sizeof(w));
	w.stop_after = 1;
	assert_int_equal(store_res_foreach(f->s, "g", "vms", seen_res, &w), 42);
	assert_string_equal(w.text, "/groups/g/vms/Web1");

	memset(&w, 0, sizeof(w));
	assert_int_equal(store_res_foreach_type(f->s, "vms", seen_res, &w), 0);
	assert_string_equal(w.text, "/groups/g/vms/Web1 /groups/g/vms/web1 /groups/g/vms/web10 "
				    "/groups/g/vms/web2 /groups/h/vms/a");
}

static void test_refs(void **state)
{
	struct tu_store *f = *state;
	struct seen w = { 0 };
	bool created = true;
	char buf[64], *blocker = NULL;
	json_t *got = NULL;

	assert_int_equal(store_group_put(f->s, "g", NULL), 0);
	assert_int_equal(store_group_put(f->s, "other", NULL), 0);
	assert_int_equal(put(f->s, "g", "networks", "a", "a1", NULL, NULL, NULL), 0);
	assert_int_equal(put(f->s, "other", "networks", "b", "b1", NULL, NULL, NULL), 0);

	/* Unknown reference: -ENOENT and nothing written. */
	assert_int_equal(
		put(f->s, "g", "nics", "n", "n1", "/groups/g/networks/zzz", NULL, &created),
		-ENOENT);
	assert_int_equal(store_res_get(f->s, "/groups/g/nics/n", &got), -ENOENT);
	assert_int_equal(store_res_blocker(f->s, "/groups/g/networks/zzz", &blocker), -ENOENT);
	/* One good and one unknown: still nothing. */
	assert_int_equal(put(f->s, "g", "bastions", "bh", "x", "/groups/g/networks/a",
			     "/groups/g/networks/zzz", &created),
			 -ENOENT);
	assert_int_equal(store_res_get(f->s, "/groups/g/bastions/bh", &got), -ENOENT);
	assert_int_equal(store_res_blocker(f->s, "/groups/g/networks/a", &blocker), -ENOENT);

	/* A reference across groups. */
	assert_int_equal(
		put(f->s, "g", "nics", "n", "n1", "/groups/other/networks/b", NULL, &created), 0);
	assert_true(created);
	assert_int_equal(store_res_delete(f->s, "/groups/other/networks/b"), -EBUSY);
	assert_int_equal(store_res_blocker(f->s, "/groups/other/networks/b", &blocker), 0);
	assert_string_equal(blocker, "/groups/g/nics/n");
	free(blocker);
	blocker = NULL;
	assert_int_equal(store_group_delete(f->s, "other"), -EBUSY);

	/* A replace whose reference is unknown keeps the old version. */
	assert_int_equal(
		put(f->s, "g", "nics", "n", "n2", "/groups/g/networks/zzz", NULL, &created),
		-ENOENT);
	assert_string_equal(prop_v(f->s, "/groups/g/nics/n", buf, sizeof(buf)), "n1");
	assert_int_equal(store_res_delete(f->s, "/groups/other/networks/b"), -EBUSY);

	/* Re-pointing the NIC releases the old network. */
	assert_int_equal(put(f->s, "g", "nics", "n", "n3", "/groups/g/networks/a", NULL, &created),
			 0);
	assert_false(created);
	assert_int_equal(store_res_delete(f->s, "/groups/g/networks/a"), -EBUSY);
	assert_int_equal(store_res_delete(f->s, "/groups/other/networks/b"), 0);
	assert_int_equal(store_res_get(f->s, "/groups/other/networks/b", &got), -ENOENT);
	assert_int_equal(store_res_delete(f->s, "/groups/other/networks/b"), -ENOENT);

	/* Referrers, filtered by type, in id order. */
	assert_int_equal(put(f->s, "g", "nics", "m", "m1", "/groups/g/networks/a", NULL, NULL), 0);
	assert_int_equal(put(f->s, "g", "bastions", "bh", "x", "/groups/g/networks/a", NULL, NULL),
			 0);
	assert_int_equal(
		store_res_foreach_referrer(f->s, "/groups/g/networks/a", "nics", seen_res, &w), 0);
	assert_string_equal(w.text, "/groups/g/nics/m /groups/g/nics/n");
	memset(&w, 0, sizeof(w));
	assert_int_equal(
		store_res_foreach_referrer(f->s, "/groups/g/networks/a", NULL, seen_res, &w), 0);
	assert_string_equal(w.text, "/groups/g/bastions/bh /groups/g/nics/m /groups/g/nics/n");
	assert_int_equal(store_res_blocker(f->s, "/groups/g/networks/a", &blocker), 0);
	assert_string_equal(blocker, "/groups/g/bastions/bh");
	free(blocker);
	blocker = NULL;

	/* Deleting the referrers, in any order, frees the network. */
	assert_int_equal(store_res_delete(f->s, "/groups/g/nics/n"), 0);
	assert_int_equal(store_res_delete(f->s, "/groups/g/networks/a"), -EBUSY);
	assert_int_equal(store_res_delete(f->s, "/groups/g/bastions/bh"), 0);
	assert_int_equal(store_res_delete(f->s, "/groups/g/nics/m"), 0);
	assert_int_equal(store_res_delete(f->s, "/groups/g/networks/a"), 0);

	/* A group with resources cannot go; an empty one can. */
	assert_int_equal(put(f->s, "g", "vms", "v", "x", NULL, NULL, NULL), 0);
	assert_int_equal(store_group_delete(f->s, "g"), -EBUSY);
	assert_int_equal(store_group_blocker(f->s, "g", &blocker), 0);
	assert_string_equal(blocker, "/groups/g/vms/v");
	free(blocker);
	assert_int_equal(store_group_exists(f->s, "g"), 0);
	assert_int_equal(store_res_delete(f->s, "/groups/g/vms/v"), 0);
	assert_int_equal(store_group_delete(f->s, "g"), 0);
	assert_int_equal(store_group_delete(f->s, "other"), 0);
}

static void test_hostkeys_go_with_vm(void **state)
{
	struct tu_store *f = *state;
	json_t *keys = NULL;

	assert_int_equal(store_group_put(f->s, "g", NULL), 0);
	assert_int_equal(put(f->s, "g", "vms", "v1", "x", NULL, NULL, NULL), 0);
	assert_int_equal(put(f->s, "g", "vms", "v2", "x", NULL, NULL, NULL), 0);
	assert_int_equal(store_hostkey_add(f->s, "/groups/g/vms/v1", "ssh-ed25519", "AAAA1"), 0);
	assert_int_equal(
		store_hostkey_add(f->s, "/groups/g/vms/v1", "ecdsa-sha2-nistp256", "AAAA2"), 0);
	assert_int_equal(store_hostkey_add(f->s, "/groups/g/vms/v2", "ssh-ed25519", "AAAA3"), 0);

	/* Replacing the VM keeps what was recorded. */
	assert_int_equal(put(f->s, "g", "vms", "v1", "y", NULL, NULL, NULL), 0);
	assert_int_equal(store_hostkey_get(f->s, "/groups/g/vms/v1", &keys), 0);
	assert_int_equal(json_array_size(keys), 2);
	json_decref(keys);

	assert_int_equal(store_res_delete(f->s, "/groups/g/vms/v1"), 0);
	assert_int_equal(store_hostkey_get(f->s, "/groups/g/vms/v1", &keys), 0);
	assert_int_equal(json_array_size(keys), 0);
	json_decref(keys);
	assert_int_equal(store_hostkey_get(f->s, "/groups/g/vms/v2", &keys), 0);
	assert_int_equal(json_array_size(keys), 1);
	assert_string_equal(json_string_value(json_array_get(keys, 0)), "ssh-ed25519 AAAA3");
	json_decref(keys);

	/* A new VM of the same name starts with no keys. */
	assert_int_equal(put(f->s, "g", "vms", "v1", "z", NULL, NULL, NULL), 0);
	assert_int_equal(store_hostkey_get(f->s, "/groups/g/vms/v1", &keys), 0);
	assert_int_equal(json_array_size(keys), 0);
	json_decref(keys);
}

/* ---- transactions ---- */

struct tx_job {
	int fail_with; /* returned after the writes when non-zero */
	bool nested;   /* run the writes inside a second store_res_tx */
};

static int tx_writes(struct store *s, void *ud)
{
	struct tx_job *j = ud;
	int r;

	if ((r = put(s, "g", "networks", "t1", "x", NULL, NULL, NULL)) < 0)
		return r;
	if ((r = put(s, "g", "nics", "t2", "x", "/groups/g/networks/t1", NULL, NULL)) < 0)
		return r;
	return j->fail_with ? j->fail_with : 7;
}

static int tx_outer(struct store *s, void *ud)
{
	struct tx_job *j = ud;
	int r;

	if (!j->nested)
		return tx_writes(s, ud);
	if ((r = put(s, "g", "vms", "outer", "x", NULL, NULL, NULL)) < 0)
		return r;
	/* The inner call fails; the outer one goes on and commits. */
	r = store_res_tx(s, tx_writes, ud);
	assert_int_equal(r, j->fail_with);
	/* A failing write inside the transaction leaves no trace either. */
	assert_int_equal(put(s, "g", "nics", "bad", "x", "/groups/g/networks/none", NULL, NULL),
			 -ENOENT);
	return 0;
}

static void test_tx(void **state)
{
	struct tu_store *f = *state;
	struct tx_job j = { .fail_with = -EINVAL };
	json_t *got = NULL;

	assert_int_equal(store_group_put(f->s, "g", NULL), 0);

	/* A failing body rolls every write back. */
	assert_int_equal(store_res_tx(f->s, tx_outer, &j), -EINVAL);
	assert_int_equal(store_res_get(f->s, "/groups/g/networks/t1", &got), -ENOENT);
	assert_int_equal(store_res_get(f->s, "/groups/g/nics/t2", &got), -ENOENT);

	/* Nested: the inner failure is undone, the outer writes stay. */
	j.nested = true;
	assert_int_equal(store_res_tx(f->s, tx_outer, &j), 0);
	assert_int_equal(store_res_get(f->s, "/groups/g/networks/t1", &got), -ENOENT);
	assert_int_equal(store_res_get(f->s, "/groups/g/nics/bad", &got), -ENOENT);
	assert_int_equal(store_res_get(f->s, "/groups/g/vms/outer", &got), 0);
	json_decref(got);

	/* Success commits and returns the body's value. */
	j.nested = false;
	j.fail_with = 0;
	assert_int_equal(store_res_tx(f->s, tx_outer, &j), 7);
	assert_int_equal(store_res_get(f->s, "/groups/g/nics/t2", &got), 0);
	json_decref(got);
	assert_int_equal(store_res_delete(f->s, "/groups/g/networks/t1"), -EBUSY);
}

/* The store survives a reopen: data is durable and migrations idempotent. */
/* store_res_lock inside a transaction: an existing resource locks (and the
 * transaction goes on to write), a missing one is -ENOENT; both backends. */
static int tx_lock(struct store *s, void *ud)
{
	int r;

	(void)ud;
	if ((r = store_res_lock(s, "/groups/prod/networks/n9")) != -ENOENT)
		return r < 0 ? r : -EINVAL;
	if ((r = store_res_lock(s, "/groups/prod/networks/n1")) < 0)
		return r;
	return put(s, "prod", "nics", "c1", "x", "/groups/prod/networks/n1", NULL, NULL);
}

static void test_res_lock(void **state)
{
	struct tu_store *f = *state;
	char buf[16];

	assert_int_equal(store_group_put(f->s, "prod", NULL), 0);
	assert_int_equal(put(f->s, "prod", "networks", "n1", "n", NULL, NULL, NULL), 0);
	assert_int_equal(store_res_tx(f->s, tx_lock, NULL), 0);
	assert_string_equal(prop_v(f->s, "/groups/prod/nics/c1", buf, sizeof(buf)), "x");
}

static void test_reopen(void **state)
{
	struct tu_store *f = *state;
	json_t *got = NULL;
	char *blocker = NULL;

	assert_int_equal(store_group_put(f->s, "g", NULL), 0);
	assert_int_equal(put(f->s, "g", "networks", "a", "x", NULL, NULL, NULL), 0);
	assert_int_equal(put(f->s, "g", "nics", "n", "x", "/groups/g/networks/a", NULL, NULL), 0);
	store_free(f->s);
	f->s = NULL;
	assert_int_equal(tu_store_open(f->dir, &f->s), 0);
	assert_int_equal(store_res_get(f->s, "/groups/g/nics/n", &got), 0);
	json_decref(got);
	assert_int_equal(store_res_delete(f->s, "/groups/g/networks/a"), -EBUSY);
	assert_int_equal(store_res_blocker(f->s, "/groups/g/networks/a", &blocker), 0);
	assert_string_equal(blocker, "/groups/g/nics/n");
	free(blocker);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_groups, tu_store_setup, tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_put_get_replace, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_list_order, tu_store_setup, tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_refs, tu_store_setup, tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_hostkeys_go_with_vm, tu_store_setup,
						tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_tx, tu_store_setup, tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_reopen, tu_store_setup, tu_store_teardown),
		cmocka_unit_test_setup_teardown(test_res_lock, tu_store_setup, tu_store_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
