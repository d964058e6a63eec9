/* PostgreSQL backend: second factors (store_mfa.h), the same contract as
 * sqlite_mfa.c. A TOTP step is marked used by one conditional UPDATE, so
 * that two instances given the same code at once accept it once. */
#include "store/pg_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

/* bytea input in hex form ("\x..."), malloc'd; NULL when out of memory
 * (pg_blob_param's: every value here is far below its cap). */
static char *bytea_hex(const uint8_t *v, size_t len)
{
	char *hex = NULL;

	return pg_blob_param(v, len, &hex) == 0 ? hex : NULL;
}

/* The count(*) of sql, whose one parameter is p[0]. */
static int count_of(struct store *s, const char *sql, const char *const *p, int64_t *ret)
{
	PGresult *res = NULL;
	int r = pg_row(s, &res, sql, 1, p);

	if (r == 0)
		*ret = pg_i64(res, 0, 0);
	PQclear(res);
	return r == -ENOENT ? -BERR_STORE : r;
}

int pg_mfa_get(struct store *s, int64_t user_id, struct store_mfa *ret)
{
	struct store_mfa m = { 0 };
	struct pg_num id;
	const char *p[] = { pg_num(&id, user_id) };
	PGresult *res = NULL;
	unsigned char *raw = NULL;
	size_t len = 0;
	const char *confirmed;
	int r;

	if ((r = count_of(s, "SELECT count(*) FROM mfa_recovery WHERE user_id = $1", p,
			  &m.recovery_left)) < 0 ||
	    (r = count_of(s, "SELECT count(*) FROM webauthn_credentials WHERE user_id = $1", p,
			  &m.passkeys)) < 0)
		goto out;
	r = pg_row(
		s, &res,
		"SELECT sealed, confirmed, last_step, created_at FROM mfa_totp WHERE user_id = $1",
		1, p);
	if (r < 0)
		goto out;
	raw = PQunescapeBytea((const unsigned char *)pg_val(res, 0, 0), &len);
	if (!raw || len == 0 || len > STORE_MFA_SEALED_MAX) {
		r = raw ? -BERR_STORE : -ENOMEM;
		goto out;
	}
	if (!(m.totp_sealed = malloc(len))) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(m.totp_sealed, raw, len);
	m.totp_sealed_len = len;
	confirmed = pg_val(res, 0, 1);
	m.totp_confirmed = confirmed && confirmed[0] == 't';
	m.totp_last_step = pg_i64(res, 0, 2);
	m.created_at = pg_i64(res, 0, 3);
out:
	if (raw)
		PQfreemem(raw);
	PQclear(res);
	*ret = m;
	return r;
}

int pg_mfa_totp_put(struct store *s, int64_t user_id, const uint8_t *sealed, size_t len)
{
	struct pg_num id, now;
	char *hex;
	PGresult *res = NULL;
	int r;

	if (!sealed || len == 0 || len > STORE_MFA_SEALED_MAX)
		return -EINVAL;
	if (!(hex = bytea_hex(sealed, len)))
		return -ENOMEM;
	const char *p[] = { pg_num(&id, user_id), hex, pg_num(&now, store_now()) };
	/* Replaces an unconfirmed key only: a confirmed one stays, and the
	 * statement then changes nothing. */
	r = pg_q(s, &res,
		 "INSERT INTO mfa_totp (user_id, sealed, confirmed, last_step, created_at)"
		 " VALUES ($1, $2, FALSE, 0, $3) ON CONFLICT (user_id) DO UPDATE"
		 " SET sealed = EXCLUDED.sealed, last_step = 0, created_at = EXCLUDED.created_at"
		 " WHERE NOT mfa_totp.confirmed",
		 3, p);
	if (r == 0 && pg_changes(res) == 0)
		r = -EEXIST;
	PQclear(res);
	free(hex);
	return r;
}

static int totp_confirm_tx(struct store *s, void *ud)
{
	struct store_totp_confirm *c = ud;
	struct pg_num id, step;
	struct pg_hash h;
	PGresult *res = NULL;
	const char *p[] = { pg_num(&id, c->user_id), pg_num(&step, c->step) };
	int r;

	r = pg_q(s, &res,
		 "UPDATE mfa_totp SET confirmed = TRUE, last_step = $2"
		 " WHERE user_id = $1 AND NOT confirmed",
		 2, p);
	if (r == 0 && pg_changes(res) == 0)
		r = -ENOENT;
	PQclear(res);
	if (r < 0)
		return r;
	if ((r = pg_q(s, NULL, "DELETE FROM mfa_recovery WHERE user_id = $1", 1, p)) < 0)
		return r;
	for (int i = 0; i < c->n; i++) {
		const char *q[] = { p[0], pg_hash(&h, c->hashes + (size_t)i * 32) };

		r = pg_q(s, NULL,
			 "INSERT INTO mfa_recovery (user_id, code_hash) VALUES ($1, $2)"
			 " ON CONFLICT DO NOTHING",
			 2, q);
		if (r < 0)
			return r;
	}
	return 0;
}

int pg_mfa_totp_confirm(struct store *s, int64_t user_id, int64_t step, const uint8_t *hashes,
			int n)
{
	return store_mfa_totp_confirm_run(s, pg_tx, totp_confirm_tx, user_id, step, hashes, n);
}

int pg_mfa_totp_use(struct store *s, int64_t user_id, int64_t step)
{
	struct pg_num id, st;
	const char *p[] = { pg_num(&id, user_id), pg_num(&st, step) };
	PGresult *res = NULL;
	int r;

	r = pg_q(s, &res,
		 "UPDATE mfa_totp SET last_step = $2"
		 " WHERE user_id = $1 AND confirmed AND last_step < $2",
		 2, p);
	if (r == 0 && pg_changes(res) == 0)
		r = 1;
	PQclear(res);
	res = NULL;
	if (r <= 0)
		return r;
	r = pg_row(s, &res, "SELECT 1 FROM mfa_totp WHERE user_id = $1 AND confirmed", 1, p);
	PQclear(res);
	return r == 0 ? -EALREADY : r;
}

int pg_mfa_recovery_use(struct store *s, int64_t user_id, const uint8_t hash[32])
{
	struct pg_num id;
	struct pg_hash h;
	const char *p[] = { pg_num(&id, user_id), pg_hash(&h, hash) };
	PGresult *res = NULL;
	int r;

	r = pg_q(s, &res, "DELETE FROM mfa_recovery WHERE user_id = $1 AND code_hash = $2", 2, p);
	if (r == 0 && pg_changes(res) == 0)
		r = -ENOENT;
	PQclear(res);
	return r;
}

static int mfa_delete_tx(struct store *s, void *ud)
{
	const struct store_mfa_delete *m = ud;
	struct pg_num id;
	const char *p[] = { pg_num(&id, m->user_id) };
	PGresult *res = NULL;
	int r;

	if ((r = pg_q(s, NULL, "DELETE FROM mfa_recovery WHERE user_id = $1", 1, p)) < 0)
		return r;
	if ((r = pg_q(s, &res, "DELETE FROM mfa_totp WHERE user_id = $1", 1, p)) == 0)
		r = pg_changes(res) > 0 ? 1 : 0;
	PQclear(res);
	res = NULL;
	if (r < 0 || !m->passkeys)
		return r;
	if (pg_q(s, &res, "DELETE FROM webauthn_credentials WHERE user_id = $1", 1, p) < 0)
		r = -BERR_STORE;
	else if (pg_changes(res) > 0)
		r = 1;
	PQclear(res);
	return r;
}

int pg_mfa_delete(struct store *s, int64_t user_id, bool passkeys, int *ret_removed)
{
	return store_mfa_delete_run(s, pg_tx, mfa_delete_tx, user_id, passkeys, ret_removed);
}

/* ---- passkeys --------------------------------------------------------- */

#define WA_COLS "id, user_id, alg, public_key, sign_count, created_at"

static int unhex_into(const char *v, uint8_t *out, size_t max, size_t *ret_len)
{
	size_t n = 0;
	unsigned char *raw = PQunescapeBytea((const unsigned char *)(v ? v : ""), &n);
	int r = 0;

	if (!raw)
		return -ENOMEM;
	if (n == 0 || n > max)
		r = -BERR_STORE;
	else {
		memcpy(out, raw, n);
		*ret_len = n;
	}
	PQfreemem(raw);
	return r;
}

static int row_cred(const PGresult *res, int i, struct store_wa_cred *c)
{
	int r;

	memset(c, 0, sizeof(*c));
	if ((r = unhex_into(pg_val(res, i, 0), c->id, STORE_WA_ID_MAX, &c->id_len)) < 0 ||
	    (r = unhex_into(pg_val(res, i, 3), c->pk, STORE_WA_PK_MAX, &c->pk_len)) < 0)
		return r;
	c->user_id = pg_i64(res, i, 1);
	c->alg = pg_i64(res, i, 2);
	c->sign_count = pg_i64(res, i, 4);
	c->created_at = pg_i64(res, i, 5);
	return 0;
}

int pg_wa_cred_add(struct store *s, const struct store_wa_cred *c)
{
	struct pg_num uid, alg, count, now;
	char *id = NULL, *pk = NULL;
	int r = -ENOMEM;

	if (c->id_len == 0 || c->id_len > STORE_WA_ID_MAX || c->pk_len == 0 ||
	    c->pk_len > STORE_WA_PK_MAX)
		return -EINVAL;
	if ((id = bytea_hex(c->id, c->id_len)) && (pk = bytea_hex(c->pk, c->pk_len))) {
		const char *p[] = { id, pg_num(&uid, c->user_id),      pg_num(&alg, c->alg),
				    pk, pg_num(&count, c->sign_count), pg_num(&now, store_now()) };

		r = pg_q(s, NULL,
			 "INSERT INTO webauthn_credentials (" WA_COLS
			 ") VALUES ($1, $2, $3, $4, $5, $6)",
			 6, p);
	}
	free(id);
	free(pk);
	return r;
}

int pg_wa_cred_get(struct store *s, const uint8_t *id, size_t id_len, struct store_wa_cred *ret)
{
	PGresult *res = NULL;
	char *hex;
	int r;

	if (!id || id_len == 0 || id_len > STORE_WA_ID_MAX)
		return -ENOENT;
	if (!(hex = bytea_hex(id, id_len)))
		return -ENOMEM;
	const char *p[] = { hex };
	r = pg_row(s, &res, "SELECT " WA_COLS " FROM webauthn_credentials WHERE id = $1", 1, p);
	if (r == 0)
		r = row_cred(res, 0, ret);
	PQclear(res);
	free(hex);
	return r;
}

int pg_wa_cred_foreach(struct store *s, int64_t user_id,
		       int (*fn)(const struct store_wa_cred *c, void *ud), void *ud)
{
	struct pg_num uid;
	const char *p[] = { pg_num(&uid, user_id) };
	struct store_wa_cred c;
	PGresult *res = NULL;
	int r = pg_q(s, &res,
		     "SELECT " WA_COLS " FROM webauthn_credentials WHERE user_id = $1"
		     " ORDER BY created_at, id",
		     1, p);

	for (int i = 0; r == 0 && i < PQntuples(res); i++)
		if ((r = row_cred(res, i, &c)) == 0)
			r = fn(&c, ud);
	PQclear(res);
	return r < 0 ? r : 0;
}

int pg_wa_cred_count_set(struct store *s, const uint8_t *id, size_t id_len, int64_t seen_before,
			 int64_t count)
{
	struct pg_num a, b;
	PGresult *res = NULL;
	char *hex;
	int r;

	if (!id || id_len == 0 || id_len > STORE_WA_ID_MAX)
		return -ENOENT;
	if (!(hex = bytea_hex(id, id_len)))
		return -ENOMEM;
	const char *p[] = { pg_num(&a, count), hex, pg_num(&b, seen_before) };
	r = pg_q(
		s, &res,
		"UPDATE webauthn_credentials SET sign_count = $1 WHERE id = $2 AND sign_count = $3",
		3, p);
	if (r == 0 && pg_changes(res) == 0)
		r = -EALREADY;
	PQclear(res);
	free(hex);
	return r;
}

int pg_wa_challenge_add(struct store *s, const uint8_t challenge[32], int64_t user_id,
			const char *purpose, int64_t expires_at)
{
	struct pg_num now, uid, exp;
	struct pg_hash h;
	const char *purge[] = { pg_num(&now, store_now()) };
	const char *p[] = { pg_hash(&h, challenge), pg_num(&uid, user_id), purpose,
			    pg_num(&exp, expires_at) };
	int r;

	if (!store_mfa_word_ok(purpose))
		return -EINVAL;
	if ((r = pg_q(s, NULL, "DELETE FROM webauthn_challenges WHERE expires_at < $1", 1, purge)) <
	    0)
		return r;
	return pg_q(s, NULL,
		    "INSERT INTO webauthn_challenges (challenge, user_id, purpose, expires_at)"
		    " VALUES ($1, $2, $3, $4)",
		    4, p);
}

int pg_wa_challenge_take(struct store *s, const uint8_t challenge[32], const char *purpose,
			 int64_t now, int64_t *ret_user_id)
{
	struct pg_num n;
	struct pg_hash h;
	const char *p[] = { pg_hash(&h, challenge), purpose, pg_num(&n, now) };
	PGresult *res = NULL;
	int r;

	if (!store_mfa_word_ok(purpose))
		return -ENOENT;
	/* One DELETE ... RETURNING: of two instances given the same
	 * challenge, one gets the row. */
	r = pg_row(s, &res,
		   "DELETE FROM webauthn_challenges WHERE challenge = $1 AND purpose = $2"
		   " AND expires_at >= $3 RETURNING user_id",
		   3, p);
	if (r == 0)
		*ret_user_id = pg_i64(res, 0, 0);
	PQclear(res);
	return r;
}

/* ---- sessions whose second factor was proven elsewhere ----------------- */

int pg_login_mfa_mark(struct store *s, const uint8_t hash[32], const char *via)
{
	struct pg_hash h;
	const char *p[] = { pg_hash(&h, hash), via };

	if (!store_mfa_word_ok(via))
		return -EINVAL;
	return pg_q(s, NULL,
		    "INSERT INTO login_mfa (token_hash, via) VALUES ($1, $2)"
		    " ON CONFLICT (token_hash) DO UPDATE SET via = EXCLUDED.via",
		    2, p);
}

int pg_login_mfa_marked(struct store *s, const uint8_t hash[32])
{
	struct pg_hash h;
	const char *p[] = { pg_hash(&h, hash) };
	PGresult *res = NULL;
	int r = pg_row(s, &res, "SELECT 1 FROM login_mfa WHERE token_hash = $1", 1, p);

	PQclear(res);
	return r;
}

int pg_login_mfa_via_db(struct store *s, const uint8_t hash[32], char ret_via[17])
{
	struct pg_hash h;
	const char *p[] = { pg_hash(&h, hash) };
	PGresult *res = NULL;
	const char *v;
	int r = pg_row(s, &res, "SELECT via FROM login_mfa WHERE token_hash = $1", 1, p);

	if (r == 0) {
		v = PQgetvalue(res, 0, 0);
		if (!v || strlen(v) > 16)
			r = -BERR_STORE;
		else
			memcpy(ret_via, v, strlen(v) + 1);
	}
	PQclear(res);
	return r;
}
