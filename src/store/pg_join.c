/* PostgreSQL backend: reads and writes that were two statements, in one
 * (issue 15 item 5): each statement is a round trip to the server, and a
 * request pays them in turn. A browser session with its user (what
 * authentication by cookie needs) and a VM with its NIC and network. (A
 * session's row made attached in one write is pg_ops.c's, beside the
 * plain insert.) */
#include "store/pg_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

/* With ret_roles, the user's role assignments come along as JSON text
 * (malloc'd; NULL: none), as with a token (pg_tokens.c). */
int pg_login_lookup_db(struct store *s, const uint8_t hash[32], struct store_login *ret,
		       char **ret_roles)
{
	struct pg_hash h;
	const char *p[] = { pg_hash(&h, hash) };
	PGresult *res = NULL;
	struct store_login l;
	bool roles = ret_roles != NULL;
	int r = pg_row(
		s, &res,
		roles ? "SELECT l.user_id, u.name, u.disabled, l.csrf_token, l.expires_at, " STORE_PG_ROLES_OF_U
			" FROM login_sessions l JOIN users u ON u.id = l.user_id"
			" WHERE l.token_hash = $1"
		      : "SELECT l.user_id, u.name, u.disabled, l.csrf_token, l.expires_at"
			" FROM login_sessions l JOIN users u ON u.id = l.user_id"
			" WHERE l.token_hash = $1",
		1, p);

	memset(&l, 0, sizeof(l));
	if (r == 0 && (pg_copy(l.user, sizeof(l.user), pg_val(res, 0, 1)) < 0 ||
		       pg_copy(l.csrf, sizeof(l.csrf), pg_val(res, 0, 3)) < 0))
		r = -BERR_STORE;
	if (r == 0) {
		l.user_id = pg_i64(res, 0, 0);
		l.user_disabled = pg_val(res, 0, 2) && pg_val(res, 0, 2)[0] == 't';
		l.expires_at = pg_i64(res, 0, 4);
		*ret = l;
		if (roles && pg_val(res, 0, 5) && !(*ret_roles = strdup(pg_val(res, 0, 5))))
			r = -ENOMEM;
	}
	explicit_bzero(&l, sizeof(l));
	PQclear(res);
	return r;
}

/* One row: the resource, the one its field1 names, the one that one's
 * field2 names (LEFT JOINs: a missing link is NULL). props is JSON text,
 * read as jsonb for the lookup. */
int pg_res_get_chain_db(struct store *s, const char *id, const char *field1, const char *field2,
			json_t *ret[3])
{
	const char *p[] = { id, field1, field2 };
	PGresult *res = NULL;
	int r;

	ret[0] = ret[1] = ret[2] = NULL;
	r = pg_row(s, &res,
		   "SELECT r0.props, r1.props, r2.props FROM resources r0"
		   " LEFT JOIN resources r1 ON r1.id = (r0.props::jsonb ->> $2::text)"
		   " LEFT JOIN resources r2 ON r2.id = (r1.props::jsonb ->> $3::text)"
		   " WHERE r0.id = $1",
		   3, p);
	for (int i = 0; r == 0 && i < 3; i++)
		if ((i == 0 || pg_val(res, 0, i)) &&
		    (r = store_res_props_load(pg_val(res, 0, i), -BERR_STORE, &ret[i])) < 0)
			break;
	PQclear(res);
	if (r < 0)
		for (int i = 0; i < 3; i++) {
			json_decref(ret[i]);
			ret[i] = NULL;
		}
	return r;
}
