/* The identity tests' fixture (identtest.h). */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cmocka.h>

#include "identtest.h"
#include "testutil.h"
#include <sodium.h>

#include "api/api.h"
#include "core/gate.h"
#include "core/log.h"
#include "core/util.h"
#include "identity/ident.h"
#include "store/internal.h"
#include "store/store.h"
#include "server/loops.h"
#include "terminal/term.h"

int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_non_null(tu_tmpdir(f->dir, sizeof(f->dir), "ident"));
	assert_int_equal(tu_store_open(f->dir, &f->s), 0);
	f->ctx.store = f->s;
	f->ctx.instance_name = "test";
	*state = f;
	return 0;
}
int teardown(void **state)
{
	struct fx *f = *state;

	store_free(f->s);
	tu_rm_tree(f->dir);
	free(f);
	return 0;
}
int64_t query_int(struct store *s, const char *sql, const char *arg)
{
	return tu_query_int(s, sql, arg);
}
/* Fails the test if secret appears anywhere in the audit trail. */
void assert_audit_clean(struct store *s, const char *secret)
{
	assert_int_equal(
		query_int(
			s,
			"SELECT count(*) FROM audit WHERE instr(coalesce(principal,'') || coalesce(target,'')"
			" || coalesce(result,'') || coalesce(detail,'') || action, ?1) > 0",
			secret),
		0);
}
int64_t add_user(struct fx *f, const char *name, const char *pw)
{
	char hash[IDENT_HASH_SIZE];
	int64_t id = 0;

	assert_int_equal(ident_password_hash(pw, hash, sizeof(hash)), 0);
	assert_int_equal(store_user_put(f->s, name, hash, NULL, &id), 0);
	return id;
}
void cookie_header(char *out, size_t size, const char *token)
{
	snprintf(out, size, "theme=dark; " IDENT_COOKIE "=%s; other=1", token);
}
/* ident_authenticate on what the router would pass it for req. */
int authenticate_req(struct store *s, const struct srv_request *req, struct principal *ret)
{
	struct ident_creds creds = api_creds(req);

	return ident_authenticate(s, &creds, ret);
}

void call_init(struct call *k, struct fx *f, const struct principal *who, const char *body_json,
	       const char *path)
{
	memset(k, 0, sizeof(*k));
	util_strlcpy(k->req.remote_addr, "192.0.2.7", sizeof(k->req.remote_addr));
	k->req.method = "POST";
	k->c.ctx = &f->ctx;
	k->c.req = &k->req;
	k->c.resp = &k->resp;
	k->c.who = who;
	if (body_json) {
		k->c.body = json_loads(body_json, JSON_ALLOW_NUL, NULL);
		assert_non_null(k->c.body);
	}
	if (path) {
		util_strlcpy(k->path, path, sizeof(k->path));
		for (char *p = k->path, *next; p && k->c.nseg < API_MAX_SEGS; p = next) {
			next = strchr(p, '/');
			if (next)
				*next++ = '\0';
			k->c.seg[k->c.nseg++] = p;
		}
	}
}
void call_done(struct call *k)
{
	json_decref(k->c.body);
	api_resp_done(&k->resp);
}
const char *header(const struct api_resp *resp, const char *name)
{
	size_t n = strlen(name);

	for (int i = 0; i < resp->n_headers; i++)
		if (strncasecmp(resp->headers[i], name, n) == 0 && resp->headers[i][n] == ':')
			return resp->headers[i] + n + 2;
	return NULL;
}
const char *err_code(const struct api_resp *resp)
{
	return json_string_value(json_object_get(json_object_get(resp->body, "error"), "code"));
}
/* resp.body.ended[what], or -1. */
int64_t ended_count(const struct api_resp *resp, const char *what)
{
	json_t *v = json_object_get(json_object_get(resp->body, "ended"), what);

	return json_is_integer(v) ? json_integer_value(v) : -1;
}
const char *err_msg(const struct api_resp *resp)
{
	return json_string_value(json_object_get(json_object_get(resp->body, "error"), "message"));
}
/* Signs in through the handler; fills p as the router would. */
void login_as(struct fx *f, const char *name, struct principal *p, char *ret_cookie, size_t size)
{
	struct call k;
	char body[256];
	const char *sc;

	snprintf(body, sizeof(body), "{\"username\":\"%s\",\"password\":\"%s\"}", name, PW);
	call_init(&k, f, NULL, body, "auth/login");
	api_auth_login(&k.c);
	assert_int_equal(k.resp.status, 200);
	sc = header(&k.resp, "Set-Cookie");
	assert_non_null(sc);
	const char *semi = strchr(sc, ';');
	assert_non_null(semi);
	snprintf(ret_cookie, size, "%.*s", (int)(semi - sc), sc);
	call_done(&k);
	struct srv_request req = { .cookie = ret_cookie };
	assert_int_equal(authenticate_req(f->s, &req, p), 0);
}
int64_t retry(struct fx *f, const char *account, const char *addr, int64_t now, bool *ret_acct)
{
	struct ident_throttle th;

	assert_int_equal(ident_throttle_check(f->s, account, addr, now, &th), 0);
	if (ret_acct)
		*ret_acct = th.by_account;
	return th.retry_after;
}

int ident_run(const struct CMUnitTest *tests, size_t n)
{
	int r;

	log_set_level(LOG_WARN);
	if (sodium_init() < 0)
		return 1;
	/* Disabling or deleting a user ends its terminals through the
	 * terminal module, which needs a loop to post to (none runs here:
	 * loops_free runs what was posted and closes the rest). */
	if (loops_init(1) < 0 || term_init(NULL) < 0)
		return 1;
	r = _cmocka_run_group_tests("ident", tests, n, NULL, NULL);
	loops_free();
	term_free();
	return r;
}
