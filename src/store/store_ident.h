/* Store: users, browser sessions, API tokens, role assignments. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct store;

struct store_user {
	int64_t id;
	char name[65];
	char password_hash[128]; /* Argon2id encoded string (crypto_pwhash_STRBYTES) */
	bool disabled;
	int64_t created_at, updated_at;
};

int store_user_count(struct store *s, int64_t *ret);
int store_user_get(struct store *s, const char *name, struct store_user *ret);
int store_user_get_by_id(struct store *s, int64_t id, struct store_user *ret);
/* Creates or replaces the password; ret_created tells which. A new user is
 * enabled; replacing the password leaves the disabled flag as it was.
 * -EINVAL if name is longer than 64 bytes or the hash than 127. */
int store_user_put(struct store *s, const char *name, const char *password_hash, bool *ret_created,
		   int64_t *ret_id);
/* First run, atomically: if the store holds no user at all, creates name
 * with password_hash and the role assignment {role_id, "user:<name>", role,
 * scope}. -EEXIST (and nothing changes) when a user already exists. */
int store_user_create_first(struct store *s, const char *name, const char *password_hash,
			    const char *role_id, const char *role, const char *scope);
/* -ENOENT if there is no such user. */
int store_user_set_disabled(struct store *s, const char *name, bool disabled);
/* Deletes the user together with everything that names it: its browser
 * sessions, API tokens and role assignments of principal "user:<name>".
 * -ENOENT if there is no such user. */
int store_user_delete(struct store *s, const char *name);
/* Calls fn for each user in name order; fn returning non-zero stops (a
 * negative value is returned to the caller). */
int store_user_foreach(struct store *s, int (*fn)(const struct store_user *u, void *ud), void *ud);

/* Browser sessions and API tokens are looked up by SHA-256 of the secret
 * the client holds; the secret itself is never stored. Adding: -EEXIST for
 * a hash already present, -ENOENT if user_id does not exist. Getting:
 * -ENOENT if absent (expiry is the caller's decision). */
int store_login_add(struct store *s, const uint8_t hash[32], int64_t user_id, const char *csrf,
		    int64_t expires_at);
int store_login_get(struct store *s, const uint8_t hash[32], int64_t *ret_user_id,
		    char ret_csrf[64], int64_t *ret_expires_at);
int store_login_delete(struct store *s, const uint8_t hash[32]);
/* store_login_get and the user it belongs to in one read (authentication
 * by cookie is one round trip): -ENOENT if absent. */
struct store_login {
	int64_t user_id;
	char user[65];
	bool user_disabled;
	char csrf[64];
	int64_t expires_at;
};
int store_login_lookup(struct store *s, const uint8_t hash[32], struct store_login *ret);
/* Deletes every browser session of user_id except the one whose hash is
 * keep (NULL: all of them). */
int store_login_delete_user(struct store *s, int64_t user_id, const uint8_t keep[32]);
/* Keeps only the newest `keep` browser sessions of user_id. */
int store_login_trim(struct store *s, int64_t user_id, int keep);
int store_token_add(struct store *s, const uint8_t hash[32], int64_t user_id, const char *name,
		    int64_t expires_at);
int store_token_get(struct store *s, const uint8_t hash[32], int64_t *ret_user_id,
		    int64_t *ret_expires_at);
int store_token_delete(struct store *s, const uint8_t hash[32]);
/* Number of API tokens of user_id that expire after now. */
int store_token_count(struct store *s, int64_t user_id, int64_t now, int64_t *ret);
/* Deletes browser sessions and API tokens with expires_at <= now. */
int store_ident_purge_expired(struct store *s, int64_t now);

/* Role assignments {principal, role, scope}; id is caller-chosen (at most
 * 128 bytes, principal 80, role 32, scope 256: -EINVAL beyond). */
struct store_role {
	char id[129];
	char principal[81];
	char role[33];
	char scope[257];
	int64_t created_at;
};

int store_role_put(struct store *s, const char *id, const char *principal, const char *role,
		   const char *scope, bool *ret_created);
/* -ENOENT if absent. */
int store_role_get(struct store *s, const char *id, struct store_role *ret);
int store_role_delete(struct store *s, const char *id);
/* Calls fn for every assignment, in id order; fn returning non-zero stops. */
int store_role_foreach(struct store *s, int (*fn)(const struct store_role *ra, void *ud), void *ud);
/* Calls fn for every assignment of principal; fn returning non-zero stops. */
int store_role_foreach_principal(struct store *s, const char *principal,
				 int (*fn)(const char *role, const char *scope, void *ud),
				 void *ud);

/* Guarded changes of role assignments, for the API: each runs in one
 * transaction and changes nothing when it fails.
 * - expect_scope: the scope the caller saw (and was authorized on) when it
 *   read the assignment; NULL means "the id must be unused". -EAGAIN when
 *   the stored assignment no longer matches (created, deleted or moved
 *   meanwhile).
 * - A principal "user:<name>" must name an existing user: -ESRCH if not, so
 *   that no assignment can wait for a future account of that name.
 * - -EMLINK when the change would leave no enabled user holding Owner at
 *   "/" although one held it before (the instance must not lock itself
 *   out).
 * Deleting an id that is gone answers -ENOENT. Other errors as
 * store_role_put / store_role_delete. */
int store_role_put_checked(struct store *s, const char *id, const char *principal, const char *role,
			   const char *scope, const char *expect_scope, bool *ret_created);
int store_role_delete_checked(struct store *s, const char *id, const char *expect_scope);
/* Number of enabled users holding Owner at "/". */
int store_role_root_owners(struct store *s, int64_t *ret);

/* Deletes every API token of user_id (a disabled account). */
int store_token_delete_user(struct store *s, int64_t user_id);

/* After a password change (sqlite_ident_end.c), in one transaction:
 * deletes user_id's browser sessions except keep_login and its API tokens
 * except keep_token (NULL: keep none) and says how many of each went. */
int store_ident_end_user(struct store *s, int64_t user_id, const uint8_t keep_login[32],
			 const uint8_t keep_token[32], int *ret_sessions, int *ret_tokens);
/* How many terminal sessions of user (a name) are recorded as open. */
int store_term_open_count(struct store *s, const char *user, int64_t *ret);

/* Sign-in throttling state, one row per key ("acct:<name>", "addr:<ip>"):
 * the policy lives in identity/throttle.c, the store only keeps rows and
 * makes each update atomic. */
struct store_throttle {
	int64_t failures; /* in the current window */
	int64_t window_start;
	int64_t last_failure;
	int64_t level;         /* how many back-offs in a row */
	int64_t locked_until;  /* 0: not locked */
	int64_t audited_until; /* the lock whose refusal was audited already */
};

/* Reads key into *ret; -ENOENT when there is no row. */
int store_throttle_get(struct store *s, const char *key, struct store_throttle *ret);
/* Atomically: reads key (zeros when absent, *ret_existed false), calls fn,
 * and writes the row back when fn returns 0 or deletes it when fn returns
 * 1. fn < 0 aborts and is returned. key is at most 128 bytes (-EINVAL). */
int store_throttle_update(struct store *s, const char *key,
			  int (*fn)(struct store_throttle *t, bool existed, void *ud), void *ud);
int store_throttle_delete(struct store *s, const char *key);
/* Rows whose lock and last failure are both older than before. */
int store_throttle_purge(struct store *s, int64_t before);

/* Addresses from which an account signed in successfully ("known"), for
 * the exemption from the account-wide back-off. add keeps the newest
 * keep_max per account; known answers 0 when account signed in from addr
 * at or after since, -ENOENT otherwise. forget drops an account's rows. */
int store_login_known_add(struct store *s, const char *account, const char *addr, int64_t now,
			  int keep_max);
int store_login_known(struct store *s, const char *account, const char *addr, int64_t since);
int store_login_known_forget(struct store *s, const char *account);

/* ---- API token lifecycle (issue 19; sqlite_tokens.c, pg_tokens.c) ------
 * A token has a public id (STORE_TOKEN_ID_LEN lowercase hex characters,
 * random, not derived from the secret) by which its owner lists and
 * revokes it, a name, a scope ("all" or "metrics"), and its creation,
 * last use (0: never) and expiry times. */
#define STORE_TOKEN_ID_LEN 16
struct store_token {
	char id[STORE_TOKEN_ID_LEN + 1];
	int64_t user_id;
	char user[65]; /* the owner's name (foreach and revoke fill it) */
	char name[65]; /* "" when the token has none */
	char scope[16];
	int64_t created_at, last_used_at, expires_at;
	/* The owner is disabled (read in the same statement as the token, so
	 * that authentication by token is one round trip). */
	bool user_disabled;
};

/* Inserts t (user_id, id, name ("" none), scope, expires_at; created_at is
 * now) under hash. -EEXIST for a hash or id already present, -ENOENT for
 * an unknown user, -EINVAL for an id, name or scope that does not fit. */
int store_token_insert(struct store *s, const uint8_t hash[32], const struct store_token *t);
/* The token whose secret hashes to hash; -ENOENT if absent. */
int store_token_lookup(struct store *s, const uint8_t hash[32], struct store_token *ret);
/* Records a use at now, written only when the stored time is older than
 * now - min_gap (a busy script does not write on every call). */
int store_token_touch(struct store *s, const char *id, int64_t now, int64_t min_gap);
/* Calls fn for each unexpired (expires_at > now) token of user_id (< 0:
 * of every user), newest first; fn returning non-zero stops. */
int store_token_foreach(struct store *s, int64_t user_id, int64_t now,
			int (*fn)(const struct store_token *t, void *ud), void *ud);
/* Deletes the token id of user_id (< 0: of anyone) and fills *ret (may be
 * NULL) with what it was. -ENOENT when there is no such token (or it is
 * someone else's). */
int store_token_revoke(struct store *s, const char *id, int64_t user_id, struct store_token *ret);
