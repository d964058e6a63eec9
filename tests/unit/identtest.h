/* The identity tests' fixture (test_ident, test_ident_api): a store (both
 * backends, testutil.h) with the API's context on it, a REST call built by
 * hand (struct call), and the small readers of answers and audit lines. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "api/api.h"
#include "store/store.h"

#define PW "correct horse battery staple"

struct fx {
	char dir[64];
	struct store *s;
	struct api_ctx ctx;
};

struct call {
	struct srv_request req;
	struct api_resp resp;
	struct api_call c;
	char path[128];
};

int setup(void **state);
int teardown(void **state);
int64_t query_int(struct store *s, const char *sql, const char *arg);
void assert_audit_clean(struct store *s, const char *secret);
int64_t add_user(struct fx *f, const char *name, const char *pw);
void cookie_header(char *out, size_t size, const char *token);
int authenticate_req(struct store *s, const struct srv_request *req, struct principal *ret);
void call_init(struct call *k, struct fx *f, const struct principal *who, const char *body_json,
	       const char *path);
void call_done(struct call *k);
const char *header(const struct api_resp *resp, const char *name);
const char *err_code(const struct api_resp *resp);
int64_t ended_count(const struct api_resp *resp, const char *what);
const char *err_msg(const struct api_resp *resp);
void login_as(struct fx *f, const char *name, struct principal *p, char *ret_cookie, size_t size);
int64_t retry(struct fx *f, const char *account, const char *addr, int64_t now, bool *ret_acct);
/* Runs tests with the terminal module set up (disabling or deleting a user
 * ends its terminals through it) and torn down after. */
int ident_run(const struct CMUnitTest *tests, size_t n);
