/* What a request costs the store, pinned (issue 15 item 5): the number of
 * statements (round trips on PostgreSQL) that a list of VMs, the
 * authentication by token and by cookie, a sign-in and an audit record
 * send, counted by the store itself (store_statements) around api_handle,
 * the router's entry, on both backends. And the per-request view of role
 * assignments that makes a list cost the same whatever the number of VMs:
 * read once, forgotten at the request's end and at the request's first
 * write. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "testutil.h"
#include <sodium.h>

#include "api/api.h"
#include "core/log.h"
#include "core/util.h"
#include "identity/ident.h"
#include "server/loops.h"
#include "store/store.h"
#include "terminal/term.h"

#define PW "correct horse battery staple"

struct fx {
	char dir[64];
	struct store *s;
	struct api_ctx ctx;
	char token[IDENT_TOKEN_SIZE];  /* admin's API token (Owner on /) */
	char rtoken[IDENT_TOKEN_SIZE]; /* reader's: Reader on some VMs only */
	int64_t reader_id;
};

static void add_vm(struct fx *f, const char *name)
{
	json_t *props = json_pack("{s:s,s:i}", "nic", "/groups/g/nics/n", "ssh_port", 22);

	assert_non_null(props);
	assert_int_equal(store_res_put(f->s, "g", "vms", name, props, NULL, NULL), 0);
	json_decref(props);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char hash[IDENT_HASH_SIZE], *gen = NULL;
	struct store_user u;
	int64_t exp;

	assert_non_null(f);
	assert_non_null(tu_tmpdir(f->dir, sizeof(f->dir), "stmts"));
	assert_int_equal(tu_store_open(f->dir, &f->s), 0);
	f->ctx.store = f->s;
	f->ctx.instance_name = "test";
	assert_int_equal(ident_bootstrap(f->s, PW, &gen), 0);
	assert_int_equal(store_user_get(f->s, "admin", &u), 0);
	assert_int_equal(ident_token_create(f->s, u.id, "t", 3600, f->token, &exp), 0);
	assert_int_equal(ident_password_hash(PW, hash, sizeof(hash)), 0);
	assert_int_equal(store_user_put(f->s, "reader", hash, NULL, &f->reader_id), 0);
	assert_int_equal(ident_token_create(f->s, f->reader_id, "r", 3600, f->rtoken, &exp), 0);
	assert_int_equal(store_group_put(f->s, "g", NULL), 0);
	add_vm(f, "vm1");
	add_vm(f, "vm2");
	add_vm(f, "vm3");
	/* The reader holds several assignments, none of them on the group:
	 * every VM is checked against all of them. */
	assert_int_equal(
		store_role_put(f->s, "r1", "user:reader", "Reader", "/groups/g/vms/vm1", NULL), 0);
	assert_int_equal(
		store_role_put(f->s, "r2", "user:reader", "Reader", "/groups/g/vms/vm3", NULL), 0);
	assert_int_equal(store_role_put(f->s, "r3", "user:reader", "Reader", "/groups/other", NULL),
			 0);
	/* On PostgreSQL: what setup wrote has reached the instance's cache
	 * (its notifications would drop what the first request caches). */
	assert_int_equal(store_cache_sync(f->s), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	store_free(f->s);
	tu_rm_tree(f->dir);
	free(f);
	return 0;
}

/* One request through the router; its status, the number of statements it
 * sent, and (when out is not NULL) its body's "value" array size. */
struct outcome {
	int status;
	uint64_t statements;
	size_t n;
	char cookie[160];
};

static struct outcome run(struct fx *f, const char *method, const char *path, const char *bearer,
			  const char *cookie, const char *body)
{
	struct srv_request req = { .method = method, .path = path, .cookie = cookie };
	struct api_resp resp = { 0 };
	struct outcome o = { 0 };
	char auth[128];
	uint64_t before;

	util_strlcpy(req.remote_addr, "192.0.2.7", sizeof(req.remote_addr));
	if (bearer) {
		snprintf(auth, sizeof(auth), "Bearer %s", bearer);
		req.authorization = auth;
	}
	if (body) {
		req.body = body;
		req.body_len = strlen(body);
		req.content_type = "application/json";
	}
	before = store_statements();
	api_handle(&f->ctx, &req, &resp);
	o.statements = store_statements() - before;
	o.status = resp.status;
	o.n = json_array_size(json_object_get(resp.body, "value"));
	for (int i = 0; i < resp.n_headers; i++) {
		const char *h = resp.headers[i];

		if (strncasecmp(h, "Set-Cookie: ", 12) == 0 && strchr(h, ';'))
			snprintf(o.cookie, sizeof(o.cookie), "%.*s", (int)(strchr(h, ';') - h - 12),
				 h + 12);
	}
	api_resp_done(&resp);
	return o;
}

/* The most statements each request may send. On PostgreSQL each is a
 * round trip: a list of VMs is the token with its user and the caller's
 * assignments in one, then the list (the group is read only when the list
 * is empty). On PostgreSQL the instance's cache (store/pg_cache.c) answers
 * both once warm: none. */
#define LIST_MAX 2

static void assert_warm(const struct outcome *o)
{
	if (tu_pg())
		assert_int_equal(o->statements, 0);
	else
		assert_in_range(o->statements, 1, LIST_MAX);
}

static void list_by_token_is_pinned(void **state)
{
	struct fx *f = *state;
	struct outcome o;
	char name[16];

	/* The first use writes the token's time of last use: not counted. */
	o = run(f, "GET", "/api/v1/groups/g/vms", f->token, NULL, NULL);
	assert_int_equal(o.status, 200);
	o = run(f, "GET", "/api/v1/groups/g/vms", f->token, NULL, NULL);
	assert_int_equal(o.status, 200);
	assert_int_equal(o.n, 3);
	print_message("list of 3 VMs (Owner on /): %llu statements\n",
		      (unsigned long long)o.statements);
	assert_warm(&o);

	/* A caller without a role on the group is checked once per VM: the
	 * same count, and the same again with more VMs. */
	run(f, "GET", "/api/v1/groups/g/vms", f->rtoken, NULL, NULL);
	o = run(f, "GET", "/api/v1/groups/g/vms", f->rtoken, NULL, NULL);
	assert_int_equal(o.status, 200);
	assert_int_equal(o.n, 2);
	print_message("list of 3 VMs (Reader on 2): %llu statements\n",
		      (unsigned long long)o.statements);
	assert_warm(&o);
	for (int i = 4; i <= 12; i++) {
		snprintf(name, sizeof(name), "vm%d", i);
		add_vm(f, name);
	}
	/* Cold: the writes emptied this instance's cached resources (their
	 * notifications in first, so that none drops what this run caches);
	 * on PostgreSQL the tokens stay cached (another domain): the list
	 * alone is read. */
	assert_int_equal(store_cache_sync(f->s), 0);
	o = run(f, "GET", "/api/v1/groups/g/vms", f->rtoken, NULL, NULL);
	assert_int_equal(o.status, 200);
	assert_int_equal(o.n, 2);
	if (tu_pg())
		assert_int_equal(o.statements, 1);
	else
		assert_in_range(o.statements, 1, LIST_MAX);
	o = run(f, "GET", "/api/v1/groups/g/vms", f->rtoken, NULL, NULL);
	assert_warm(&o);
	o = run(f, "GET", "/api/v1/groups/g/vms", f->token, NULL, NULL);
	assert_int_equal(o.n, 12);
	assert_warm(&o);
	o = run(f, "GET", "/api/v1/groups/g/vms", f->token, NULL, NULL);
	assert_int_equal(o.n, 12);
	assert_warm(&o);
}

/* A VM added by another instance: this one hears of it (its notification
 * has arrived) and reads the list again, one statement; the token, its
 * user and assignments stay cached (another domain). */
static void list_after_other_instance_write(void **state)
{
	struct fx *f = *state;
	struct store *other;
	json_t *props = json_pack("{s:s}", "nic", "/groups/g/nics/n");
	struct outcome o;

	assert_int_equal(tu_store_open(f->dir, &other), 0);
	run(f, "GET", "/api/v1/groups/g/vms", f->token, NULL, NULL);
	o = run(f, "GET", "/api/v1/groups/g/vms", f->token, NULL, NULL);
	assert_int_equal(o.n, 3);
	assert_warm(&o);
	assert_int_equal(store_res_put(other, "g", "vms", "vm9", props, NULL, NULL), 0);
	assert_int_equal(store_cache_sync(f->s), 0);
	o = run(f, "GET", "/api/v1/groups/g/vms", f->token, NULL, NULL);
	assert_int_equal(o.n, 4);
	print_message("list after another instance's write: %llu statements\n",
		      (unsigned long long)o.statements);
	if (tu_pg())
		assert_int_equal(o.statements, 1);
	o = run(f, "GET", "/api/v1/groups/g/vms", f->token, NULL, NULL);
	assert_warm(&o);
	json_decref(props);
	store_free(other);
}

/* What a connect reads before its first byte (api/connect.c): the token
 * with its user and assignments (the POST and the terminal's upgrade), the
 * VM with its NIC and network, the bastion (named, or the first of its
 * type), the VM's host keys. Warm, on PostgreSQL: none of them a
 * statement; what is left are the connect's writes. */
static int count_rows(const char *role, const char *scope, void *ud);

static int first_res(const char *id, const char *name, json_t *props, void *ud)
{
	(void)id;
	(void)name;
	(void)props;
	(*(int *)ud)++;
	return 1;
}

static void connect_reads_are_cached(void **state)
{
	struct fx *f = *state;
	json_t *b = json_pack("{s:s}", "address", "198.18.0.1");
	json_t *got[3], *keys = NULL, *p = NULL;
	struct store_token t;
	uint8_t hash[32];
	uint64_t before;
	int n = 0;

	memset(hash, 9, sizeof(hash));
	assert_int_equal(store_token_add(f->s, hash, f->reader_id, "c", store_now() + 600), 0);
	assert_int_equal(store_res_put(f->s, "g", "bastions", "b", b, NULL, NULL), 0);
	assert_int_equal(store_hostkey_add(f->s, "/groups/g/vms/vm1", "ssh-ed25519", "AAAA"), 0);
	assert_int_equal(store_cache_sync(f->s), 0);
	for (int round = 0; round < 2; round++) {
		before = store_statements();
		assert_int_equal(store_token_lookup(f->s, hash, &t), 0);
		assert_int_equal(store_role_foreach_principal(f->s, "user:reader", count_rows, &n),
				 0);
		assert_int_equal(
			store_res_get_chain(f->s, "/groups/g/vms/vm1", "nic", "network", got), 0);
		assert_int_equal(store_res_get(f->s, "/groups/g/bastions/b", &p), 0);
		assert_int_equal(store_res_foreach_type(f->s, "bastions", first_res, &n), 1);
		assert_int_equal(store_hostkey_get(f->s, "/groups/g/vms/vm1", &keys), 0);
		assert_int_equal(json_array_size(keys), 1);
		for (int i = 0; i < 3; i++)
			json_decref(got[i]);
		json_decref(p);
		json_decref(keys);
		print_message("a connect's reads, %s: %llu statements\n", round ? "warm" : "cold",
			      (unsigned long long)(store_statements() - before));
	}
	if (tu_pg())
		assert_int_equal(store_statements() - before, 0);
	/* A host key recorded is seen by the next read (the write emptied the
	 * cache). */
	assert_int_equal(store_hostkey_add(f->s, "/groups/g/vms/vm1", "ssh-rsa", "BBBB"), 0);
	assert_int_equal(store_hostkey_get(f->s, "/groups/g/vms/vm1", &keys), 0);
	assert_int_equal(json_array_size(keys), 2);
	json_decref(keys);
	json_decref(b);
}

/* The assignments that come with the token are the request's alone: a
 * change made between two requests is seen by the second; more of them
 * than the view keeps are read when asked, and still decide right. */
static void roles_with_token_are_current(void **state)
{
	struct fx *f = *state;
	struct outcome o;
	char id[16], scope[64];

	o = run(f, "GET", "/api/v1/groups/g/vms", f->rtoken, NULL, NULL);
	assert_int_equal(o.n, 2);
	assert_int_equal(
		store_role_put(f->s, "r5", "user:reader", "Reader", "/groups/g/vms/vm2", NULL), 0);
	o = run(f, "GET", "/api/v1/groups/g/vms", f->rtoken, NULL, NULL);
	assert_int_equal(o.status, 200);
	assert_int_equal(o.n, 3);
	assert_int_equal(store_role_delete(f->s, "r1"), 0);
	assert_int_equal(store_role_delete(f->s, "r5"), 0);
	o = run(f, "GET", "/api/v1/groups/g/vms", f->rtoken, NULL, NULL);
	assert_int_equal(o.n, 1);
	/* 40 assignments: past what the view keeps. */
	for (int i = 0; i < 40; i++) {
		snprintf(id, sizeof(id), "x%d", i);
		snprintf(scope, sizeof(scope), "/groups/other%d", i);
		assert_int_equal(store_role_put(f->s, id, "user:reader", "Reader", scope, NULL), 0);
	}
	o = run(f, "GET", "/api/v1/groups/g/vms", f->rtoken, NULL, NULL);
	assert_int_equal(o.status, 200);
	assert_int_equal(o.n, 1);
	/* (On PostgreSQL the instance's cache keeps them all.) */
	if (!tu_pg())
		assert_true(o.statements > LIST_MAX);
	assert_int_equal(store_role_put(f->s, "r6", "user:reader", "Reader", "/groups/g", NULL), 0);
	o = run(f, "GET", "/api/v1/groups/g/vms", f->rtoken, NULL, NULL);
	assert_int_equal(o.n, 3);
}

/* The list reads its group only when it is empty: the answers stay what
 * they were (404 for a group that is not there, or that the caller may not
 * read and shows nothing; an empty list of a group the caller reads). */
static void list_answers_unchanged(void **state)
{
	struct fx *f = *state;
	struct outcome o;

	o = run(f, "GET", "/api/v1/groups/nope/vms", f->token, NULL, NULL);
	assert_int_equal(o.status, 404);
	o = run(f, "GET", "/api/v1/groups/g/nics", f->token, NULL, NULL);
	assert_int_equal(o.status, 200);
	assert_int_equal(o.n, 0);
	o = run(f, "GET", "/api/v1/groups/g/nics", f->rtoken, NULL, NULL);
	assert_int_equal(o.status, 404);
	o = run(f, "GET", "/api/v1/groups/nope/vms", f->rtoken, NULL, NULL);
	assert_int_equal(o.status, 404);
	o = run(f, "GET", "/api/v1/groups/g/vms", f->rtoken, NULL, NULL);
	assert_int_equal(o.status, 200);
	assert_int_equal(o.n, 2);
}

/* Sign-in: Argon2id aside, what it writes (throttle, session, the address
 * it signed in from, the audit record). The housekeeping that deleted
 * expired rows on every sign-in is the timer's now. */
#define SIGNIN_MAX 26

static void signin_and_cookie_are_pinned(void **state)
{
	struct fx *f = *state;
	struct outcome in, o;
	const char *body = "{\"username\":\"admin\",\"password\":\"" PW "\"}";

	in = run(f, "POST", "/api/v1/auth/login", NULL, NULL, body);
	assert_int_equal(in.status, 200);
	in = run(f, "POST", "/api/v1/auth/login", NULL, NULL, body);
	assert_int_equal(in.status, 200);
	assert_non_null(strstr(in.cookie, "="));
	print_message("sign-in: %llu statements\n", (unsigned long long)in.statements);
	assert_in_range(in.statements, 1, SIGNIN_MAX);

	assert_int_equal(store_cache_sync(f->s), 0);
	/* The browser's list: the session with its user in one read, and
	 * the session's second-factor mark (api/mfa.c) in one more. */
	o = run(f, "GET", "/api/v1/groups/g/vms", NULL, in.cookie, NULL);
	assert_int_equal(o.status, 200);
	assert_int_equal(o.n, 3);
	print_message("list by cookie: %llu statements\n", (unsigned long long)o.statements);
	assert_in_range(o.statements, 1, LIST_MAX + 1);
	/* Warm: the session, its second-factor mark and the list cached. */
	o = run(f, "GET", "/api/v1/groups/g/vms", NULL, in.cookie, NULL);
	assert_int_equal(o.n, 3);
	if (tu_pg())
		assert_int_equal(o.statements, 0);
}

/* Authentication reads the owner with the token or the session: a disabled
 * owner is refused, by token and by cookie, and so is a deleted one. */
static void disabled_owner_is_refused(void **state)
{
	struct fx *f = *state;
	const char *body = "{\"username\":\"reader\",\"password\":\"" PW "\"}";
	struct outcome in = run(f, "POST", "/api/v1/auth/login", NULL, NULL, body);

	assert_int_equal(in.status, 200);
	assert_int_equal(run(f, "GET", "/api/v1/groups/g/vms", NULL, in.cookie, NULL).status, 200);
	assert_int_equal(run(f, "GET", "/api/v1/groups/g/vms", f->rtoken, NULL, NULL).status, 200);
	assert_int_equal(store_user_set_disabled(f->s, "reader", true), 0);
	assert_int_equal(run(f, "GET", "/api/v1/groups/g/vms", NULL, in.cookie, NULL).status, 401);
	assert_int_equal(run(f, "GET", "/api/v1/groups/g/vms", f->rtoken, NULL, NULL).status, 401);
	assert_int_equal(store_user_set_disabled(f->s, "reader", false), 0);
	assert_int_equal(run(f, "GET", "/api/v1/groups/g/vms", f->rtoken, NULL, NULL).status, 200);
}

static int count_rows(const char *role, const char *scope, void *ud)
{
	(void)role;
	(void)scope;
	(*(int *)ud)++;
	return 0;
}

static int stop_at_first(const char *role, const char *scope, void *ud)
{
	(void)role;
	(void)scope;
	(*(int *)ud)++;
	return 1;
}

/* The per-request view: read once; a write on the thread forgets it (the
 * request sees its own change); another principal is read anew; nothing is
 * kept after the request. */
static void role_view_per_request(void **state)
{
	struct fx *f = *state;
	uint64_t before;
	int n = 0;

	store_request_begin();
	before = store_statements();
	assert_int_equal(store_role_foreach_principal(f->s, "user:reader", count_rows, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(store_statements() - before, 1);
	for (int i = 0; i < 5; i++) {
		n = 0;
		assert_int_equal(store_role_foreach_principal(f->s, "user:reader", count_rows, &n),
				 0);
		assert_int_equal(n, 3);
	}
	n = 0;
	assert_int_equal(store_role_foreach_principal(f->s, "user:reader", stop_at_first, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_statements() - before, 1);
	/* Reads of other things keep it (those a connect makes too). */
	assert_int_equal(store_group_exists(f->s, "g"), 0);
	{
		json_t *got[3];

		assert_int_equal(
			store_res_get_chain(f->s, "/groups/g/vms/vm1", "nic", "network", got), 0);
		for (int i = 0; i < 3; i++)
			json_decref(got[i]);
	}
	before = store_statements();
	n = 0;
	assert_int_equal(store_role_foreach_principal(f->s, "user:reader", count_rows, &n), 0);
	assert_int_equal(store_statements() - before, 0);
	/* A write forgets it: the new assignment is seen at once. */
	assert_int_equal(store_role_put(f->s, "r4", "user:reader", "Owner", "/groups/g", NULL), 0);
	n = 0;
	assert_int_equal(store_role_foreach_principal(f->s, "user:reader", count_rows, &n), 0);
	assert_int_equal(n, 4);
	/* So does any other write (an audit record here). */
	assert_int_equal(store_audit(f->s, "user:admin", "test", NULL, "success", NULL), 0);
	assert_int_equal(store_role_delete(f->s, "r4"), 0);
	n = 0;
	assert_int_equal(store_role_foreach_principal(f->s, "user:reader", count_rows, &n), 0);
	assert_int_equal(n, 3);
	/* Another principal is read, not answered from the reader's copy. */
	n = 0;
	assert_int_equal(store_role_foreach_principal(f->s, "user:admin", count_rows, &n), 0);
	assert_int_equal(n, 1);
	store_request_end();

	/* Outside a request every call reads; on PostgreSQL the instance's
	 * cache answers them (filled by the request's last read, after the
	 * write; the write's own notification may come after the fill and
	 * drop it once). */
	store_cache_sync(f->s);
	before = store_statements();
	for (int i = 0; i < 3; i++)
		assert_int_equal(store_role_foreach_principal(f->s, "user:reader", count_rows, &n),
				 0);
	if (tu_pg())
		assert_in_range(store_statements() - before, 0, 1);
	else
		assert_int_equal(store_statements() - before, 3);
}

/* An audit record outside a transaction is one statement on PostgreSQL
 * (the trail's lock taken inside it), and the trail stays in order. */
static void audit_record_is_one_statement(void **state)
{
	struct fx *f = *state;
	uint64_t before = store_statements();
	int64_t a, b;

	assert_int_equal(store_audit(f->s, "user:admin", "test.one", "x", "success", NULL), 0);
	if (tu_pg())
		assert_int_equal(store_statements() - before, 1);
	assert_int_equal(store_audit(f->s, "user:admin", "test.two", "x", "success", NULL), 0);
	a = tu_query_int(f->s, "SELECT max(id) FROM audit WHERE action = 'test.one'", NULL);
	b = tu_query_int(f->s, "SELECT max(id) FROM audit WHERE action = 'test.two'", NULL);
	assert_true(a > 0 && b == a + 1);
}

/* What a connect reads: the VM, its NIC and the NIC's network, one
 * statement; a missing link is NULL, a missing VM -ENOENT. */
static void res_chain_is_one_read(void **state)
{
	struct fx *f = *state;
	json_t *net = json_pack("{s:[s]}", "address_prefixes", "198.18.0.0/24");
	json_t *nic = json_pack("{s:s,s:s}", "network", "/groups/g/networks/w", "private_ip",
				"198.18.0.5");
	json_t *vm = json_pack("{s:s,s:i}", "nic", "/groups/g/nics/c", "ssh_port", 22);
	json_t *got[3];
	uint64_t before;

	assert_int_equal(store_res_put(f->s, "g", "networks", "w", net, NULL, NULL), 0);
	assert_int_equal(store_res_put(f->s, "g", "nics", "c", nic, NULL, NULL), 0);
	assert_int_equal(store_res_put(f->s, "g", "vms", "v", vm, NULL, NULL), 0);
	before = store_statements();
	assert_int_equal(store_res_get_chain(f->s, "/groups/g/vms/v", "nic", "network", got), 0);
	assert_int_equal(store_statements() - before, 1);
	assert_true(json_equal(got[0], vm));
	assert_true(json_equal(got[1], nic));
	assert_true(json_equal(got[2], net));
	for (int i = 0; i < 3; i++)
		json_decref(got[i]);
	/* vm1's NIC is not there: the VM alone. */
	assert_int_equal(store_res_get_chain(f->s, "/groups/g/vms/vm1", "nic", "network", got), 0);
	assert_non_null(got[0]);
	assert_null(got[1]);
	assert_null(got[2]);
	json_decref(got[0]);
	/* A field that names nothing, or is missing. */
	assert_int_equal(store_res_get_chain(f->s, "/groups/g/vms/v", "nic", "nope", got), 0);
	assert_non_null(got[1]);
	assert_null(got[2]);
	for (int i = 0; i < 3; i++)
		json_decref(got[i]);
	assert_int_equal(store_res_get_chain(f->s, "/groups/g/vms/none", "nic", "network", got),
			 -ENOENT);
	assert_null(got[0]);
	json_decref(net);
	json_decref(nic);
	json_decref(vm);
}

static int set_old(struct store_throttle *t, bool existed, void *ud)
{
	(void)existed;
	t->failures = 1;
	t->last_failure = *(int64_t *)ud;
	t->window_start = t->last_failure;
	return 0;
}

/* Sign-in no longer deletes expired rows; the housekeeping timer's job
 * (ident_housekeep) does: expired browser sessions and tokens, throttling
 * rows quiet past the back-off's memory. What is still valid stays. */
static void housekeeping_not_signin_deletes_expired(void **state)
{
	struct fx *f = *state;
	const char *body = "{\"username\":\"admin\",\"password\":\"" PW "\"}";
	uint8_t h1[32], h2[32];
	int64_t now = store_now(), old = now - 2 * IDENT_THROTTLE_DECAY, fresh = now;
	char expired[200];

	snprintf(expired, sizeof(expired),
		 "SELECT (SELECT count(*) FROM login_sessions WHERE expires_at <= %lld) +"
		 " (SELECT count(*) FROM api_tokens WHERE expires_at <= %lld)",
		 (long long)now, (long long)now);
	memset(h1, 1, sizeof(h1));
	memset(h2, 2, sizeof(h2));
	assert_int_equal(store_login_add(f->s, h1, f->reader_id, "c", now - 10), 0);
	assert_int_equal(store_token_add(f->s, h2, f->reader_id, "old", now - 10), 0);
	assert_int_equal(store_throttle_update(f->s, "addr:198.51.100.1", set_old, &old), 0);
	assert_int_equal(store_throttle_update(f->s, "addr:198.51.100.2", set_old, &fresh), 0);
	assert_int_equal(run(f, "POST", "/api/v1/auth/login", NULL, NULL, body).status, 200);
	assert_int_equal(tu_query_int(f->s, expired, NULL), 2);
	assert_int_equal(
		tu_query_int(f->s,
			     "SELECT count(*) FROM login_throttle WHERE key LIKE 'addr:198.51%'",
			     NULL),
		2);
	assert_int_equal(ident_housekeep(f->s, now), 0);
	assert_int_equal(tu_query_int(f->s, expired, NULL), 0);
	assert_int_equal(
		tu_query_int(f->s,
			     "SELECT count(*) FROM login_throttle WHERE key LIKE 'addr:198.51%'",
			     NULL),
		1);
	/* The valid ones stay: admin's session and both API tokens. */
	assert_int_equal(tu_query_int(f->s, "SELECT count(*) FROM login_sessions", NULL), 1);
	assert_int_equal(tu_query_int(f->s, "SELECT count(*) FROM api_tokens", NULL), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(list_by_token_is_pinned, setup, teardown),
		cmocka_unit_test_setup_teardown(list_answers_unchanged, setup, teardown),
		cmocka_unit_test_setup_teardown(list_after_other_instance_write, setup, teardown),
		cmocka_unit_test_setup_teardown(connect_reads_are_cached, setup, teardown),
		cmocka_unit_test_setup_teardown(roles_with_token_are_current, setup, teardown),
		cmocka_unit_test_setup_teardown(signin_and_cookie_are_pinned, setup, teardown),
		cmocka_unit_test_setup_teardown(disabled_owner_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(role_view_per_request, setup, teardown),
		cmocka_unit_test_setup_teardown(audit_record_is_one_statement, setup, teardown),
		cmocka_unit_test_setup_teardown(res_chain_is_one_read, setup, teardown),
		cmocka_unit_test_setup_teardown(housekeeping_not_signin_deletes_expired, setup,
						teardown),
	};
	int r;

	log_set_level(LOG_WARN);
	if (sodium_init() < 0)
		return 1;
	if (loops_init(1) < 0 || term_init(NULL) < 0)
		return 1;
	r = cmocka_run_group_tests(tests, NULL, NULL);
	loops_free();
	term_free();
	return r;
}
