/* What both store backends do alike with accounts around their SQL
 * (backend.h): ending what an account has open after its password changed
 * (store_ident_end_user: the two statements, the same text on both, $1 and
 * $2 being SQLite's parameters 1 and 2 too, run in one transaction with the
 * counts handed back; how a statement binds the kept credential is the
 * backend's del), and an OpenID Connect user's arguments checked. */
#include "store/backend.h"

#include <errno.h>

#include "store/store_oidc.h"

struct end_user {
	int (*del)(struct store *s, const char *sql, int64_t user_id, const uint8_t *keep,
		   int *ret_n);
	int64_t user_id;
	const uint8_t *keep_login, *keep_token;
	int sessions, tokens;
};

static int end_user_tx(struct store *s, void *ud)
{
	struct end_user *e = ud;
	int r;

	r = e->del(s, "DELETE FROM login_sessions WHERE user_id = $1 AND token_hash <> $2",
		   e->user_id, e->keep_login, &e->sessions);
	if (r == 0)
		r = e->del(s, "DELETE FROM api_tokens WHERE user_id = $1 AND token_hash <> $2",
			   e->user_id, e->keep_token, &e->tokens);
	return r;
}

int store_ident_end_user_run(struct store *s, store_tx_fn *tx,
			     int (*del)(struct store *s, const char *sql, int64_t user_id,
					const uint8_t *keep, int *ret_n),
			     int64_t user_id, const uint8_t *keep_login, const uint8_t *keep_token,
			     int *ret_sessions, int *ret_tokens)
{
	struct end_user e = {
		.del = del, .user_id = user_id, .keep_login = keep_login, .keep_token = keep_token
	};
	int r = tx(s, end_user_tx, &e);

	if (r < 0)
		return r;
	*ret_sessions = e.sessions;
	*ret_tokens = e.tokens;
	return 0;
}

int store_oidc_user_create_run(struct store *s, store_tx_fn *tx,
			       int (*fn)(struct store *s, void *ud), const char *name,
			       const char *password_hash, const char *issuer, const char *subject,
			       int64_t *ret_id)
{
	struct store_oidc_user u = { name, password_hash, issuer, subject, 0 };
	int r;

	if (!store_fits(name, 64) || !store_fits(password_hash, 127) ||
	    !store_fits(issuer, STORE_OIDC_ISS_MAX) || !store_fits(subject, STORE_OIDC_SUB_MAX))
		return -EINVAL;
	if ((r = tx(s, fn, &u)) == 0)
		*ret_id = u.id;
	return r;
}
