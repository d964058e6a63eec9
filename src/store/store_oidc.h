/* Store: what signing in with an OpenID Connect provider keeps (identity/
 * oidc*.c). Pending items are single use and short lived: the state of a
 * flow under way (so that it may start on one instance and end on another,
 * SPEC §6) and the one-time codes handed to `bastion login --sso`. A link
 * binds a local user to the provider's (issuer, subject). */
#pragma once

#include <stdint.h>

struct store;

#define STORE_OIDC_KEY_MAX  128  /* bytes of a pending item's key */
#define STORE_OIDC_DATA_MAX 4096 /* bytes of its data */
#define STORE_OIDC_ISS_MAX  512  /* bytes of an issuer */
#define STORE_OIDC_SUB_MAX  255  /* bytes of a subject (OIDC Core §2) */

/* Keeps data under (key, kind) until expires_at; rows already expired at
 * now go at the same time. -EEXIST for a key already present, -EINVAL for
 * a key, kind or data over its cap, -ENOSPC when max_rows unexpired items
 * are kept already (anonymous requests make them: the table is bounded). */
int store_oidc_pending_put(struct store *s, const char *key, const char *kind, const char *data,
			   int64_t expires_at, int64_t now, int64_t max_rows);
/* Removes (key, kind) and returns its data (malloc'd) when it has not
 * expired at now: each item is taken once, also by two instances racing.
 * -ENOENT when absent, taken already or expired. */
int store_oidc_pending_take(struct store *s, const char *key, const char *kind, int64_t now,
			    char **ret_data);
/* The (issuer, subject) user_id is bound to; -ENOENT when it has none. */
int store_oidc_link_get(struct store *s, int64_t user_id, char ret_issuer[STORE_OIDC_ISS_MAX + 1],
			char ret_subject[STORE_OIDC_SUB_MAX + 1]);
/* Creates the user name, with no usable password (password_hash is a
 * marker that no password verifies against), bound to (issuer, subject),
 * in one transaction. -EEXIST when a user of that name exists, -EALREADY
 * when the identity is bound to another user; nothing changes then. */
int store_oidc_user_create(struct store *s, const char *name, const char *password_hash,
			   const char *issuer, const char *subject, int64_t *ret_id);
/* Binds user_id to (issuer, subject); -EEXIST when the user or the pair is
 * bound already, -ENOENT when there is no such user. */
int store_oidc_link_add(struct store *s, int64_t user_id, const char *issuer, const char *subject);
