/* The REST API. A request is parsed on the loop thread by server/, which
 * hands it to api_on_request() (dispatch.c, the server's handler): health,
 * static files and the worker queue. api_handle() runs on a worker thread
 * of the libuv pool: it may block on the store and on Argon2id. Its result
 * is a struct api_resp that dispatch.c sends back on the loop thread; a
 * response may carry a continuation (connect, terminal attach) that the
 * loop runs instead of sending it. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "identity/principal.h"
#include "server/srv.h"

struct store;
struct cfg;
struct api_oidc;

/* Limits on what a peer may send. */
#define API_MAX_BODY        SRV_MAX_BODY
#define API_MAX_PRIVATE_KEY (16 * 1024)

/* A continuation: what the loop does with a request once the worker has
 * finished, instead of sending the response (connect, attach, disconnect,
 * answers; terminal/term.h). It runs exactly once, on the loop thread, and
 * owns arg and the answer to c from then on: it answers with
 * api_respond(), srv_error() or srv_ws_accept(), moves c to another loop
 * with itself as the arrival callback (srv_conn_move), or, when
 * client_gone, frees arg and releases c (srv_release). The same type as
 * srv_moved_fn. */
typedef void api_next_fn(struct srv_conn *c, bool client_gone, void *arg);

#define API_MAX_HEADERS 4

struct api_resp {
	int status;
	json_t *body;                   /* owned; NULL means no body */
	char *headers[API_MAX_HEADERS]; /* owned "Name: value" lines, no CRLF */
	int n_headers;
	/* A body that is not JSON (GET /metrics): owned, sent instead of body
	 * with raw_type as its Content-Type. */
	char *raw;
	size_t raw_len;
	const char *raw_type;
	api_next_fn *next; /* NULL: send status and body as they are */
	void *next_arg;    /* owned by next */
	/* Who made the call, for the access log: "user:NAME" or
	 * "user:NAME,token:ID"; "" before (or without) authentication. */
	char principal[96];
};

/* Shared, read-only after start-up. */
struct api_ctx {
	struct store *store;
	const char *instance_name;
	struct vault *vault;   /* the secret store's keys (vault/vault.h) */
	struct api_oidc *oidc; /* sign-in with OpenID Connect (oidc.c); NULL: off */
	bool require_mfa;      /* auth.require_mfa (api/mfa.c) */
};

/* The credentials and browser-check inputs of req, for identity/. */
static inline struct ident_creds api_creds(const struct srv_request *req)
{
	return (struct ident_creds){ .method = req->method,
				     .cookie = req->cookie,
				     .authorization = req->authorization,
				     .csrf_token = req->csrf_token,
				     .origin = req->origin,
				     .host = req->host };
}

/* Everything a handler gets. seg[] are the percent-decoded path segments
 * after "/api/v1". body is the parsed JSON body for PUT/POST (never NULL
 * there: the router answers 400 itself), NULL otherwise. who is NULL only
 * for handlers registered without authentication. */
#define API_MAX_SEGS 10
struct api_call {
	struct api_ctx *ctx;
	const struct srv_request *req;
	struct api_resp *resp;
	const struct principal *who;
	uint64_t end_gen; /* term_end_generation() before who was authenticated */
	char *seg[API_MAX_SEGS];
	int nseg;
	json_t *body;
};

/* Worker thread: fill resp for req. Never fails: errors become responses. */
void api_handle(struct api_ctx *ctx, const struct srv_request *req, struct api_resp *resp);

/* Frees what resp owns (not next_arg, which belongs to the continuation). */
void api_resp_done(struct api_resp *resp);

/* The server's request handler (dispatch.c; ud is the struct api_ctx):
 * the liveness probe on the loop, API calls on a worker, the portal's
 * files, GET /metrics as /api/v1/metrics. */
void api_on_request(struct srv_conn *c, const struct srv_request *req, void *ud);
/* Loop thread: sends resp (status, headers, JSON or raw body) as the
 * answer to c's request and frees what resp owns. */
void api_respond(struct srv_conn *c, struct api_resp *resp);

/* Sets resp to the normative error body {"error":{"code","message"}}. */
void api_error(struct api_resp *resp, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Sets resp to status with body (reference stolen). */
void api_json(struct api_resp *resp, int status, json_t *body);

/* Answers 200 {"value":arr} (reference stolen), with "next" (the cursor
 * as a string) when the page was full: the paging of the audit trail and
 * of recordings. */
void api_json_page(struct api_resp *resp, json_t *arr, bool more, long long next);

/* Adds a header line; the value must be free of CR and LF. */
void api_header(struct api_resp *resp, const char *name, const char *value);

/* Answers the store error r (from a store_* call) in the usual way:
 * -ENOENT 404 ResourceNotFound, -EBUSY 409 ResourceInUse, others 503. */
void api_store_error(struct api_resp *resp, int r, const char *what);

/* Handlers, by family (one file each). */
void api_auth_login(struct api_call *c);
void api_auth_logout(struct api_call *c);
void api_auth_session(struct api_call *c);
/* Whether the request says "If-None-Match: *" (create only: a PUT that
 * would replace an existing resource, user or role assignment answers 412
 * PreconditionFailed instead; issue 19). */
bool api_create_only(const struct api_call *c);

/* GET /readyz (ready.c), on the loop thread: answers c later. */
struct srv_conn;
void api_readyz(struct srv_conn *c, struct api_ctx *ctx);
void api_tokens_create(struct api_call *c);
/* api/tokens.c (issue 19) */
void api_tokens_list(struct api_call *c);
void api_tokens_delete(struct api_call *c);
void api_users_put(struct api_call *c);
void api_users_get(struct api_call *c);
void api_users_list(struct api_call *c);
void api_users_delete(struct api_call *c);
void api_auth_password(struct api_call *c);

/* What every way of signing in shares (signin.c). */
struct ident_session;
struct ident_throttle;
/* An audit line for what already happened: a failed write is logged, not
 * answered. The _json form takes detail's reference. */
void api_audit(struct api_call *c, const char *principal, const char *action, const char *target,
	       const char *result, const char *detail);
void api_audit_json(struct api_call *c, const char *principal, const char *action,
		    const char *target, const char *result, json_t *detail);
/* May account (NULL: the address alone) try now? 0: go ahead; 1: held
 * back (*th says why and for how long; Retry-After is set, the caller
 * answers 429 in its words); -1: answered (the store failed). */
int api_throttle_hold(struct api_call *c, const char *account, struct ident_throttle *th);
/* Set-Cookie for the browser session token (max_age 0: remove it). */
void api_session_cookie(struct api_resp *resp, const char *token, int max_age);
/* The answer to a sign-in that succeeded: the cookie, no-store, 200
 * {"user":{"name"},"csrf_token"} (and "mfa_enrollment_required" when
 * enrol). */
void api_signed_in(struct api_call *c, const struct ident_session *sess, bool enrol);

/* Second factors (mfa.c). */
void api_mfa_get(struct api_call *c);
void api_mfa_totp_enrol(struct api_call *c);
void api_mfa_totp_confirm(struct api_call *c);
void api_mfa_totp_delete(struct api_call *c);
void api_users_mfa_delete(struct api_call *c);
/* The second step of a sign-in whose password was right and whose session
 * sess was opened: 0 when the user may go on (*ret_enrol: signed in to a
 * session restricted to enrolment, auth.require_mfa), 1 when c was
 * answered (MfaRequired, a wrong code, a store error) and the session was
 * deleted. principal and detail are the audit line's. */
int api_mfa_login_step(struct api_call *c, const struct ident_session *sess, const char *principal,
		       const char *detail, bool *ret_enrol);
/* Passkeys (webauthn.c). */
void api_wa_register_options(struct api_call *c);
void api_wa_register(struct api_call *c);
void api_wa_login_options(struct api_call *c);
void api_wa_login(struct api_call *c);
/* A passkey assertion (the JSON of a PublicKeyCredential, binary fields
 * base64url) as user_id's second factor: 0, -EACCES, -EINVAL (c may have
 * been answered 400 then), or a store error. */
int api_wa_second_factor(struct api_call *c, int64_t user_id, json_t *assertion);
/* auth.require_mfa: true (and resp answered 403 MfaEnrollmentRequired, or
 * 503) when who has no second factor and must enrol one first (unless
 * enrol_route). */
bool api_mfa_restricted(struct api_ctx *ctx, const struct principal *who,
			const struct ident_creds *creds, struct api_resp *resp, bool enrol_route,
			bool verify_route);
/* ...and a session the OIDC callback left waiting for bastion's own
 * second factor: 401 MfaRequired except on verify_route (issue 18). */
/* POST /auth/mfa/verify {otp | webauthn}: completes such a session. */
void api_mfa_verify(struct api_call *c);
/* The CLI's second factor at POST /auth/oidc/cli-token: the "otp" of c's
 * body for user (id, name). 0: accepted; -ENODATA: no otp the user could
 * use (nothing answered); 1: answered (a wrong code, counted and audited;
 * 429; a store error). */
int api_mfa_cli_step(struct api_call *c, int64_t user_id, const char *name);

void api_roles_put(struct api_call *c);
void api_roles_get(struct api_call *c);
void api_roles_list(struct api_call *c);
void api_roles_delete(struct api_call *c);

void api_groups_put(struct api_call *c);
void api_groups_get(struct api_call *c);
void api_groups_list(struct api_call *c);
void api_groups_delete(struct api_call *c);
void api_resources_put(struct api_call *c);
void api_resources_get(struct api_call *c);
void api_resources_list(struct api_call *c);
void api_resources_delete(struct api_call *c);

void api_connect(struct api_call *c);
void api_hostkeys_get(struct api_call *c);
void api_hostkeys_delete(struct api_call *c);
void api_terminal(struct api_call *c);
/* Worker: a request for session seg[1] that another live instance holds
 * is relayed there (api/relay.c); true when c->resp says so or says why it
 * cannot be. False: the session is here, or unknown everywhere. */
bool api_relay_to_holder(struct api_call *c);
/* Worker: what a live session's terminal-side WebSocket (its terminal,
 * its watch) checks first: relayed to its holder if held elsewhere, then
 * 403 OriginMismatch unless from this bastion's own pages (only_own: the
 * message's start, "the terminal may only be opened"), then 400 unless a
 * bastion.v1 upgrade. True: the request goes on here. */
bool api_session_ws_here(struct api_call *c, const char *only_own);
/* The native client's TCP stream (stream.c). */
void api_stream(struct api_call *c);
void api_sessions_delete(struct api_call *c);
void api_instances_list(struct api_call *c);
void api_session_answers(struct api_call *c);

void api_secrets_list(struct api_call *c);
void api_secrets_put(struct api_call *c);
void api_secrets_get(struct api_call *c);
void api_secrets_delete(struct api_call *c);
void api_secrets_recover(struct api_call *c);
void api_secrets_versions(struct api_call *c);
void api_vault_policies_put(struct api_call *c);
void api_vault_policies_get(struct api_call *c);
void api_vault_policies_list(struct api_call *c);
void api_vault_policies_delete(struct api_call *c);
void api_vault_rotate(struct api_call *c);
/* Soft-deleted vaults (vaults_deleted.c). */
void api_deleted_vaults_list(struct api_call *c);
void api_deleted_vaults_get(struct api_call *c);
void api_deleted_vaults_recover(struct api_call *c);
void api_deleted_vaults_purge(struct api_call *c);
void api_sessions_list(struct api_call *c);
void api_audit_list(struct api_call *c);
/* Session recordings (recordings.c). */
void api_recordings_list(struct api_call *c);
void api_recordings_get(struct api_call *c);
void api_recordings_cast(struct api_call *c);
void api_recordings_search(struct api_call *c);
void api_sessions_watch(struct api_call *c);
/* For a connect through a bastion whose "recording" is not "off": the
 * recording's ID, mode, key and wrapped key into tc. 0, or answered (503)
 * with tc left to the caller. */
struct term_connect;
int api_recording_prepare(struct api_call *c, const json_t *bastion, struct term_connect *tc);
void api_metrics(struct api_call *c);

/* Sign-in with OpenID Connect (oidc.c). api_oidc_setup reads [oidc] at
 * start-up (the client secret file, the group mapping) and sets
 * ctx->oidc, or leaves it NULL when no issuer is configured; -EINVAL etc.
 * with err filled when the section is wrong. api_oidc_free undoes it. */
int api_oidc_setup(struct api_ctx *ctx, const struct cfg *cfg, char *err, size_t errlen);
void api_oidc_free(struct api_ctx *ctx);
void api_auth_providers(struct api_call *c);
void api_oidc_login(struct api_call *c);
void api_oidc_callback(struct api_call *c);
void api_oidc_cli_token(struct api_call *c);
