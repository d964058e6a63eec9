/* What both store backends do alike to end what an account has open after
 * its password changed (store_ident_end_user): the two statements, the
 * same text on both ($1 and $2 are SQLite's parameters 1 and 2 too), run in
 * one transaction with the counts handed back (backend.h). How a statement
 * binds the kept credential is the backend's (its del). */
#include "store/backend.h"

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
