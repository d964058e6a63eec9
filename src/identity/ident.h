/* Identity: users, password hashing (Argon2id), browser sessions with CSRF
 * tokens, API tokens. Runs on worker threads (hashing is slow by design). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "identity/principal.h"

struct store;

#define IDENT_COOKIE             "__Host-bastion_session"
#define IDENT_SESSION_TTL        (12 * 3600) /* seconds a browser session lives */
#define IDENT_MIN_PASSWORD       12          /* characters (UTF-8 code points) */
#define IDENT_MAX_PASSWORD       1024        /* bytes */
#define IDENT_MAX_SESSIONS       32          /* browser sessions kept per user */
#define IDENT_TOKEN_BYTES        32          /* random bytes in a session, CSRF or API token */
#define IDENT_TOKEN_SIZE         64          /* buffer for one such token as text, with NUL */
#define IDENT_ADMIN_PASSWORD_LEN 24          /* characters of a generated admin password */
#define IDENT_HASH_SIZE          128         /* buffer for an encoded Argon2id hash */

/* Argon2id (libsodium crypto_pwhash_str, interactive limits). hash_size must
 * be at least IDENT_HASH_SIZE (-E2BIG otherwise); -ENOMEM if hashing could
 * not get its memory; -EBUSY when the hashing gate is full. */
int ident_password_hash(const char *password, char *ret_hash, size_t hash_size);
/* 0 if password matches, -EACCES if not, -EBUSY when the hashing gate is
 * full (nothing was checked). */
int ident_password_verify(const char *hash, const char *password);
/* The password policy: at least IDENT_MIN_PASSWORD characters and at most
 * IDENT_MAX_PASSWORD bytes. 0 or -EINVAL. */
int ident_password_check(const char *password);

/* First run: if the store has no user, creates "admin" (Owner at "/") with
 * env_password, or with a generated password returned in *ret_generated
 * (malloc'd, to be printed once and wiped). *ret_generated stays NULL when
 * nothing was created or env_password was used. -EINVAL if env_password
 * breaks the password policy (nothing is created). */
int ident_bootstrap(struct store *s, const char *env_password, char **ret_generated);

/* Resolves the caller from the Authorization: Bearer header or the session
 * cookie. A Bearer header, when present, decides alone: an unknown or
 * expired token does not fall back to the cookie. An expired browser session
 * is deleted. 0 and *ret filled, or -ENOENT when the request carries no
 * valid credential (including a disabled user); other negative codes when
 * the store failed. */
int ident_authenticate(struct store *s, const struct ident_creds *req, struct principal *ret);

/* Returns the value of cookie name from a Cookie header into out (surrounding
 * double quotes removed). -ENOENT if absent or empty, -E2BIG if the value
 * does not fit in out. */
int ident_cookie_value(const char *cookie_header, const char *name, char *out, size_t out_size);

/* A new browser session, filled by ident_login. Holds secrets: wipe it with
 * sodium_memzero when done. */
struct ident_session {
	char token[IDENT_TOKEN_SIZE]; /* the cookie value */
	char csrf[IDENT_TOKEN_SIZE];
	int64_t user_id;
	char name[65];
	int64_t expires_at;
};

/* Checks name and password and opens a new browser session. Always spends
 * one Argon2id verification, whether or not the user exists. -EACCES for an
 * unknown user, a wrong password or a disabled user (the caller must not
 * tell them apart), -EBUSY when the hashing gate is full (nothing was
 * checked), other negative codes for store failures. */
int ident_login(struct store *s, const char *name, const char *password, struct ident_session *ret);

/* A sign-in attempt as the throttle counts it. */
struct ident_attempt {
	const char *account;     /* the throttle's account key; NULL: a name that cannot exist */
	const char *remote_addr; /* the source address */
	bool known;              /* out: name is an existing account (for the audit trail only) */
};
/* ident_login, counted: inside the hashing gate, the attempt is charged to
 * the throttle before the password is verified, and given back on success.
 * -EBUSY (gate full) and a store error charging it mean the password was
 * not checked and nothing was counted. */
int ident_login_counted(struct store *s, const char *name, const char *password,
			struct ident_attempt *at, struct ident_session *ret);
/* The same for a password check that is not a sign-in (the current
 * password of a password change): 0, -EACCES, -EBUSY or a store error. */
int ident_password_verify_counted(struct store *s, const char *hash, const char *password,
				  const struct ident_attempt *at);

/* ---- the hashing gate ------------------------------------------------
 * Every Argon2id hash or verification on a request path runs inside one
 * gate (core/gate.h, default half the worker pool): a flood of sign-ins
 * cannot hold every worker thread, and the rest of the API stays fast.
 * ident_password_hash and ident_password_verify answer -EBUSY when it is
 * full; the API answers 503 with Retry-After: 1. */
#define IDENT_HASH_RETRY_AFTER "1"
struct gate;
/* The gate itself (for tests and metrics). */
struct gate *ident_hash_gate(void);

/* SHA-256 of the session token in req's cookie; -ENOENT without one. */
int ident_session_hash(const struct ident_creds *req, uint8_t out[32]);
/* SHA-256 of the API token in req's "Bearer" header; -ENOENT without one. */
int ident_bearer_hash(const struct ident_creds *req, uint8_t out[32]);

/* Ends what req authenticated with: the API token of its "Bearer" header
 * (revoked for good), else the browser session named by its cookie. 0, or
 * -ENOENT when there was none. */
int ident_logout(struct store *s, const struct ident_creds *req);

/* Creates an API token for user_id living ttl seconds; the token text goes
 * into ret_token (IDENT_TOKEN_SIZE bytes, to be wiped by the caller). */
int ident_token_create(struct store *s, int64_t user_id, const char *name, int64_t ttl,
		       char ret_token[IDENT_TOKEN_SIZE], int64_t *ret_expires_at);

/* ---- the API token lifecycle (tokens.c, issue 19) --------------------
 * A token carries a scope: IDENT_SCOPE_ALL acts as its owner everywhere,
 * IDENT_SCOPE_METRICS reads GET /metrics and nothing else (a Prometheus
 * scraper need not hold a token that reads the inventory). */
#define IDENT_SCOPE_ALL       "all"
#define IDENT_SCOPE_METRICS   "metrics"
#define IDENT_TOKEN_TOUCH_GAP 60 /* seconds: last use is written at most this often */
struct store_token;
/* Whether scope is one of the above. */
bool ident_scope_valid(const char *scope);
/* Whether who may make a call: a browser session or an "all" token may
 * make any; a "metrics" token only the metrics read (is_metrics). */
bool ident_scope_permits(const struct principal *who, bool is_metrics);
/* Creates an API token for user_id with name (NULL: none) and scope,
 * living ttl seconds; the secret goes into ret_token (wiped by the
 * caller), what was stored (public id, times) into *ret. -EINVAL for a bad
 * scope or ttl. */
int ident_token_create_scoped(struct store *s, int64_t user_id, const char *name, const char *scope,
			      int64_t ttl, char ret_token[IDENT_TOKEN_SIZE],
			      struct store_token *ret);

/* True when header (X-CSRF-Token, may be NULL) matches who's session CSRF
 * token, compared in constant time. */
bool ident_csrf_ok(const struct principal *who, const char *header);

/* ---- the browser checks of a request (docs/security.md) ---------------
 * Only a request that may change state (any method but GET and HEAD) is
 * checked. */
bool ident_method_safe(const char *method);
/* The Origin rule: a state-changing request with an Origin header must
 * come from "https://" + its own Host (a script sends no Origin). */
bool ident_origin_ok(const struct ident_creds *req);
/* Whether the request carries an Origin header that is exactly "https://"
 * + its Host: what a WebSocket upgrade must show, whatever its method. */
bool ident_origin_is_own(const struct ident_creds *req);
/* The CSRF rule: a state-changing request that who authenticated with a
 * browser session cookie must carry that session's token in X-CSRF-Token
 * (compared in constant time). A Bearer token needs none. */
bool ident_csrf_passes(const struct principal *who, const struct ident_creds *req);

/* ---- sign-in throttling (throttle.c) ----------------------------------
 * Failed sign-ins are counted per account name and per source address,
 * in the store (so the state survives a restart and is shared by the
 * instances of one deployment). IDENT_THROTTLE_*_MAX failures whose gaps
 * are at most IDENT_THROTTLE_WINDOW seconds lock the key for
 * IDENT_THROTTLE_BASE seconds; every further failure after a lock doubles
 * the next lock, up to IDENT_THROTTLE_CAP. A success resets the account's
 * counter (never the address's). The account-wide lock does not apply to
 * an address the account signed in from within IDENT_KNOWN_TTL: an
 * attacker elsewhere cannot lock the real user out of their usual place.
 * See docs/access-control.md. */
#define IDENT_THROTTLE_WINDOW      900
#define IDENT_THROTTLE_ACCOUNT_MAX 5
#define IDENT_THROTTLE_ADDR_MAX    20
#define IDENT_THROTTLE_BASE        60
#define IDENT_THROTTLE_CAP         900
#define IDENT_THROTTLE_DECAY       3600 /* a quiet hour forgets the back-off level */
#define IDENT_KNOWN_TTL            (30 * 86400)
#define IDENT_KNOWN_MAX            16 /* known addresses kept per account */
#define IDENT_ADDR_KEY_SIZE        64

struct ident_throttle {
	int64_t retry_after; /* seconds until an attempt may be made; 0: go ahead */
	bool by_account;     /* the account's lock decided (else the address's) */
	bool audit;          /* the first refusal under this lock: audit it */
};

/* The throttling key of a source address: IPv4 as is (also when IPv4-mapped
 * in IPv6), IPv6 as its /64, anything unparsable as given (truncated). */
void ident_addr_key(const char *remote_addr, char out[IDENT_ADDR_KEY_SIZE]);
/* May account (NULL: a name that cannot exist) try to sign in from
 * remote_addr at now? Fills *ret; 0 or a store error. */
int ident_throttle_check(struct store *s, const char *account, const char *remote_addr, int64_t now,
			 struct ident_throttle *ret);
/* Records a failed attempt for account (may be NULL) and remote_addr. */
int ident_throttle_failure(struct store *s, const char *account, const char *remote_addr,
			   int64_t now);
/* What ident_throttle_charge did to the address's row, so that a success
 * can give it back. */
struct ident_charge {
	bool charged;
	bool addr_locked; /* this attempt started the address's lock */
	int64_t addr_prev_locked_until, addr_prev_level, addr_locked_until;
};
/* Charges an attempt as a failure before its password is checked (for
 * account, may be NULL, and remote_addr). Fails closed: an error means
 * the attempt was not counted and the password must not be checked. */
int ident_throttle_charge(struct store *s, const char *account, const char *remote_addr,
			  int64_t now, struct ident_charge *ret);
/* Gives a successful attempt's charge back to its address (the account's
 * counter is cleared by ident_throttle_success). */
int ident_throttle_refund(struct store *s, const char *remote_addr, const struct ident_charge *c);
/* Records a success: clears the account's counter and remembers the
 * address as known for it. */
int ident_throttle_success(struct store *s, const char *account, const char *remote_addr,
			   int64_t now);
/* Deletes expired browser sessions and API tokens and forgotten throttling
 * rows (the housekeeping timer calls it; sign-in does not). */
int ident_housekeep(struct store *s, int64_t now);
/* Clears the account's lock (an Owner set a new password) and, with
 * forget_known, its known addresses (the account is deleted). */
int ident_throttle_reset(struct store *s, const char *account, bool forget_known);
