/* Store: ending what an account has open after its password changed — its
 * browser sessions and API tokens, except the one credential the caller
 * keeps — in one transaction, with the counts the API answers
 * (ident_common.c runs it), and how many of its terminal sessions were
 * open. */
#include "store/internal.h"

#include <errno.h>

#include "core/err.h"

/* No real session or token hashes to all zeros: "keep nothing". */
static const uint8_t none[32];

static int delete_except(struct store *s, const char *sql, int64_t user_id, const uint8_t *keep,
			 int *ret_n)
{
	sqlite3_stmt *st = store_prepare(s, sql);
	int rc;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 1, user_id);
	sqlite3_bind_blob(st, 2, keep ? keep : none, 32, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_rc(rc) < 0 ? store_rc(rc) : -BERR_STORE;
	*ret_n = sqlite3_changes(store_db(s));
	return 0;
}

int sq_ident_end_user(struct store *s, int64_t user_id, const uint8_t keep_login[32],
		      const uint8_t keep_token[32], int *ret_sessions, int *ret_tokens)
{
	return store_ident_end_user_run(s, store_tx, delete_except, user_id, keep_login, keep_token,
					ret_sessions, ret_tokens);
}

int sq_term_open_count(struct store *s, const char *user, int64_t *ret)
{
	sqlite3_stmt *st = store_prepare(
		s, "SELECT count(*) FROM term_sessions WHERE user = ? AND ended_at IS NULL");
	int rc;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 0;
	return store_rc(rc) < 0 ? store_rc(rc) : -BERR_STORE;
}
