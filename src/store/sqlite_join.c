/* SQLite backend: the reads and writes the PostgreSQL backend does in one
 * statement where they were two (pg_join.c), the same contract: a browser
 * session with its user, a VM with its NIC and network (a session's row
 * made attached is sqlite_ops.c's, beside the plain insert). */
#include "store/internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"

int sq_login_lookup(struct store *s, const uint8_t hash[32], struct store_login *ret)
{
	bool roles = store_req_wants_roles();
	/* Inside a request, the user's role assignments come along, as on
	 * PostgreSQL (pg_join.c). */
	sqlite3_stmt *st = store_prepare(
		s,
		roles ? "SELECT l.user_id, u.name, u.disabled, l.csrf_token, l.expires_at, " STORE_SQ_ROLES_OF_U
			" FROM login_sessions l JOIN users u ON u.id = l.user_id WHERE l.token_hash = ?"
		      : "SELECT l.user_id, u.name, u.disabled, l.csrf_token, l.expires_at"
			" FROM login_sessions l JOIN users u ON u.id = l.user_id WHERE l.token_hash = ?");
	struct store_login l;
	const char *user, *csrf;
	int rc, r;

	if (!st)
		return -BERR_STORE;
	memset(&l, 0, sizeof(l));
	sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		r = -ENOENT;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		r = store_rc(rc);
		goto out;
	}
	user = (const char *)sqlite3_column_text(st, 1);
	csrf = (const char *)sqlite3_column_text(st, 3);
	if (!user || !csrf || util_strlcpy(l.user, user, sizeof(l.user)) < 0 ||
	    util_strlcpy(l.csrf, csrf, sizeof(l.csrf)) < 0) {
		r = -BERR_STORE;
		goto out;
	}
	l.user_id = sqlite3_column_int64(st, 0);
	l.user_disabled = sqlite3_column_int(st, 2) != 0;
	l.expires_at = sqlite3_column_int64(st, 4);
	*ret = l;
	if (roles) {
		char principal[80];

		snprintf(principal, sizeof(principal), "user:%s", l.user);
		store_req_prime(s, principal, (const char *)sqlite3_column_text(st, 5));
	}
	r = 0;
out:
	sqlite3_finalize(st);
	return r;
}

/* As pg_res_get_chain: one row of LEFT JOINs, the links read with
 * json_extract ("$.FIELD": the fields are plain names). */
int sq_res_get_chain(struct store *s, const char *id, const char *field1, const char *field2,
		     json_t *ret[3])
{
	sqlite3_stmt *st = store_prepare(
		s, "SELECT r0.props, r1.props, r2.props FROM resources r0"
		   " LEFT JOIN resources r1 ON r1.id = json_extract(r0.props, '$.' || ?2)"
		   " LEFT JOIN resources r2 ON r2.id = json_extract(r1.props, '$.' || ?3)"
		   " WHERE r0.id = ?1");
	int rc, r = 0;

	ret[0] = ret[1] = ret[2] = NULL;
	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, field1, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, field2, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		r = -ENOENT;
	else if (rc != SQLITE_ROW)
		r = store_rc(rc);
	for (int i = 0; r == 0 && i < 3; i++) {
		const char *text = (const char *)sqlite3_column_text(st, i);

		if ((i == 0 || text) && (r = store_res_props_load(text, -ENOMEM, &ret[i])) < 0)
			break;
	}
	sqlite3_finalize(st);
	if (r < 0)
		for (int i = 0; i < 3; i++) {
			json_decref(ret[i]);
			ret[i] = NULL;
		}
	return r;
}
