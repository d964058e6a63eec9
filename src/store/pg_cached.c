/* PostgreSQL backend: the reads answered from the per-instance cache
 * (pg_cache.c says when it may answer and why it stays true). Each entry
 * here asks the cache first; on a miss it reads the store (pg_*_db) and
 * keeps what it read; when the cache may not answer (the store or the
 * LISTEN connection gone, a transaction open on this thread) it reads the
 * store and keeps nothing.
 *
 * Keys and values are sequences of length-prefixed fields (a NULL field
 * has its own length), so that no two keys made of different parts are
 * equal. Keys start with a kind byte: T a token by its hash, L a browser
 * session by its hash, M a session's second-factor mark, R a principal's
 * role assignments, C a resource chain, G a resource, F a group's
 * resources of a type, Y all resources of a type, H a VM's host keys.
 * Only answers are kept: a token, session or resource that is not there
 * is read each time (a stranger's guesses do not fill the cache), except
 * a session's absent second-factor mark (the session itself is known). */
#include "store/pg_internal.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

/* ---------- fields ---------- */

struct enc {
	char *p;
	size_t len, cap;
	bool bad; /* out of memory: nothing is cached */
};

static void enc_add(struct enc *e, const void *v, size_t n, bool null)
{
	uint32_t l = null ? UINT32_MAX : (uint32_t)n;

	if (e->bad)
		return;
	if (e->len + sizeof(l) + n > e->cap) {
		size_t cap = (e->cap ? e->cap * 2 : 256) + sizeof(l) + n;
		char *p = realloc(e->p, cap);

		if (!p) {
			e->bad = true;
			return;
		}
		e->p = p;
		e->cap = cap;
	}
	memcpy(e->p + e->len, &l, sizeof(l));
	e->len += sizeof(l);
	if (n)
		memcpy(e->p + e->len, v, n);
	e->len += n;
}

/* A string with its '\0', so that a decoded field is a C string in place. */
static void enc_str(struct enc *e, const char *s)
{
	enc_add(e, s, s ? strlen(s) + 1 : 0, !s);
}

static void enc_free(struct enc *e)
{
	if (e->p)
		explicit_bzero(e->p, e->len);
	free(e->p);
	memset(e, 0, sizeof(*e));
}

static void enc_json(struct enc *e, const json_t *j)
{
	char *t = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;

	if (j && !t)
		e->bad = true;
	enc_str(e, t);
	free(t);
}

struct dec {
	const char *p, *end;
	bool bad; /* a value this file did not write: treated as a miss */
};

/* The next field (NULL for a NULL field); *ret_len its length. */
static const char *dec_next(struct dec *d, size_t *ret_len)
{
	uint32_t l;
	const char *v;

	if (d->bad || (size_t)(d->end - d->p) < sizeof(l)) {
		d->bad = true;
		return NULL;
	}
	memcpy(&l, d->p, sizeof(l));
	d->p += sizeof(l);
	if (l == UINT32_MAX) {
		if (ret_len)
			*ret_len = 0;
		return NULL;
	}
	if ((size_t)(d->end - d->p) < l) {
		d->bad = true;
		return NULL;
	}
	v = d->p;
	d->p += l;
	if (ret_len)
		*ret_len = l;
	return v;
}

static bool dec_more(const struct dec *d)
{
	return !d->bad && d->p < d->end;
}

/* Looks key up: 1 a hit (d reads its copy; free *val), 0 a miss (f
 * armed), -1 not now. */
static int get(struct store *s, struct enc *key, unsigned mask, char **val, struct dec *d,
	       struct pgc_fill *f)
{
	size_t len = 0;
	int r;

	f->on = false;
	*val = NULL;
	if (key->bad)
		return -1;
	r = pgc_get(s, key->p, key->len, mask, val, &len, f);
	if (r == 1) {
		d->p = *val;
		d->end = *val + len;
		d->bad = false;
	}
	return r;
}

static void put(struct store *s, struct enc *key, struct enc *val, const struct pgc_fill *f)
{
	if (f->on && !key->bad && !val->bad)
		pgc_put(s, key->p, key->len, val->p, val->len, f);
}

static void val_free(char *val, const struct dec *d)
{
	if (val)
		explicit_bzero(val, (size_t)(d->end - val));
	free(val);
}

/* A key's first byte, its kind, as it is (pgc_patch finds entries by it). */
static void enc_kind(struct enc *e, char kind)
{
	if (!e->bad && !(e->p = malloc(e->cap = 256)))
		e->bad = true;
	if (e->bad)
		return;
	e->p[0] = kind;
	e->len = 1;
}

static void key_hash(struct enc *k, char kind, const uint8_t hash[32])
{
	enc_kind(k, kind);
	enc_add(k, hash, 32, false);
}

static void prime(struct store *s, const char *user, const char *roles)
{
	char principal[80];

	if (!store_req_wants_roles())
		return;
	snprintf(principal, sizeof(principal), "user:%s", user);
	store_req_prime(s, principal, roles);
}

/* ---------- a token, a browser session, its second-factor mark ---------- */

/* A token's or a browser session's row (kind 'T' or 'L'; ret of size
 * bytes, its owner's name at user_off) with the owner's role assignments,
 * which prime the request's view. db reads both from PostgreSQL (the
 * assignments when roles is not NULL). */
static int with_roles(struct store *s, char kind, const uint8_t hash[32], void *ret, size_t size,
		      size_t user_off,
		      int (*db)(struct store *s, const uint8_t hash[32], void *ret, char **roles))
{
	struct enc k = { 0 }, v = { 0 };
	struct pgc_fill f;
	struct dec d = { 0 };
	char *val, *roles = NULL;
	int c, r;

	key_hash(&k, kind, hash);
	c = get(s, &k, PGC_IDENT | PGC_ROLES, &val, &d, &f);
	if (c == 1) {
		size_t n = 0;
		const char *t = dec_next(&d, &n);
		const char *rj = dec_next(&d, NULL);

		if (!d.bad && t && n == size) {
			memcpy(ret, t, size);
			prime(s, (const char *)ret + user_off, rj);
			val_free(val, &d);
			enc_free(&k);
			return 0;
		}
		val_free(val, &d);
		f.on = false;
	}
	r = db(s, hash, ret, c == 0 || store_req_wants_roles() ? &roles : NULL);
	if (r == 0) {
		prime(s, (const char *)ret + user_off, roles);
		enc_add(&v, ret, size, false);
		enc_str(&v, roles);
		put(s, &k, &v, &f);
	}
	free(roles);
	enc_free(&k);
	enc_free(&v);
	return r;
}

static int token_db(struct store *s, const uint8_t hash[32], void *ret, char **roles)
{
	return pg_token_lookup_db(s, hash, ret, roles);
}

static int login_db(struct store *s, const uint8_t hash[32], void *ret, char **roles)
{
	return pg_login_lookup_db(s, hash, ret, roles);
}

int pg_token_lookup(struct store *s, const uint8_t hash[32], struct store_token *ret)
{
	return with_roles(s, 'T', hash, ret, sizeof(*ret), offsetof(struct store_token, user),
			  token_db);
}

struct touch {
	struct store_token t; /* id, last_used_at: the time written */
	int64_t before;       /* written over an older time only (the UPDATE's) */
};

static bool touched(char *val, size_t len, void *ud)
{
	const struct touch *w = ud;
	const struct store_token *t = &w->t;
	struct dec d = { val, val + len, false };
	size_t n = 0;
	char *p = (char *)dec_next(&d, &n);
	struct store_token cur;

	if (!p || n != sizeof(cur))
		return false;
	memcpy(&cur, p, sizeof(cur));
	if (strcmp(cur.id, t->id) != 0 || (cur.last_used_at && cur.last_used_at >= w->before))
		return false;
	cur.last_used_at = t->last_used_at;
	memcpy(p, &cur, sizeof(cur));
	return true;
}

/* The time of last use is not a domain's change (the trigger leaves it
 * out): the cached token learns it here, so that the next request does
 * not write it again. */
int pg_token_touch(struct store *s, const char *id, int64_t now, int64_t min_gap)
{
	struct touch w = { .t.last_used_at = now, .before = now - min_gap };
	int r = pg_token_touch_db(s, id, now, min_gap);

	if (r == 0 && pg_copy(w.t.id, sizeof(w.t.id), id) == 0)
		pgc_patch(s, 'T', touched, &w);
	return r;
}

int pg_login_lookup(struct store *s, const uint8_t hash[32], struct store_login *ret)
{
	return with_roles(s, 'L', hash, ret, sizeof(*ret), offsetof(struct store_login, user),
			  login_db);
}

int pg_login_mfa_via(struct store *s, const uint8_t hash[32], char ret_via[17])
{
	struct enc k = { 0 }, v = { 0 };
	struct pgc_fill f;
	struct dec d = { 0 };
	char *val;
	int c, r;

	key_hash(&k, 'M', hash);
	c = get(s, &k, PGC_IDENT, &val, &d, &f);
	if (c == 1) {
		size_t n = 0;
		const char *via = dec_next(&d, &n);

		if (!d.bad && (!via || (n >= 1 && n <= 17 && via[n - 1] == '\0'))) {
			r = via ? 0 : -ENOENT;
			if (via)
				memcpy(ret_via, via, n);
			val_free(val, &d);
			enc_free(&k);
			return r;
		}
		val_free(val, &d);
		f.on = false;
	}
	r = pg_login_mfa_via_db(s, hash, ret_via);
	if (r == 0 || r == -ENOENT) {
		enc_str(&v, r == 0 ? ret_via : NULL);
		put(s, &k, &v, &f);
	}
	enc_free(&k);
	enc_free(&v);
	return r;
}

/* ---------- role assignments ---------- */

static int collect_role(const char *role, const char *scope, void *ud)
{
	enc_str(ud, role);
	enc_str(ud, scope);
	return ((struct enc *)ud)->bad ? -ENOMEM : 0;
}

int pg_role_foreach_principal(struct store *s, const char *principal,
			      int (*fn)(const char *role, const char *scope, void *ud), void *ud)
{
	struct enc k = { 0 }, v = { 0 };
	struct pgc_fill f;
	struct dec d = { 0 };
	char *val = NULL, kind = 'R';
	int c, r = 0;

	enc_kind(&k, kind);
	enc_str(&k, principal);
	c = get(s, &k, PGC_ROLES, &val, &d, &f);
	if (c < 0) {
		enc_free(&k);
		return pg_role_foreach_principal_db(s, principal, fn, ud);
	}
	if (c == 0) {
		/* Read whole first, then replayed: fn may call the store. */
		r = pg_role_foreach_principal_db(s, principal, collect_role, &v);
		if (r < 0)
			goto out;
		put(s, &k, &v, &f);
		d.p = v.p;
		d.end = v.p ? v.p + v.len : v.p;
	}
	while (r == 0 && dec_more(&d)) {
		const char *role = dec_next(&d, NULL), *scope = dec_next(&d, NULL);

		if (d.bad || !role || !scope)
			r = -BERR_STORE;
		else
			r = fn(role, scope, ud);
	}
out:
	if (c == 1)
		val_free(val, &d);
	enc_free(&k);
	enc_free(&v);
	return r < 0 ? r : 0;
}

/* ---------- resources and host keys ---------- */

static void key_parts(struct enc *k, char kind, const char *a, const char *b, const char *c)
{
	enc_kind(k, kind);
	enc_str(k, a);
	enc_str(k, b);
	enc_str(k, c);
}

int pg_res_get_chain(struct store *s, const char *id, const char *field1, const char *field2,
		     json_t *ret[3])
{
	struct enc k = { 0 }, v = { 0 };
	struct pgc_fill f;
	struct dec d = { 0 };
	char *val;
	int c, r;

	key_parts(&k, 'C', id, field1, field2);
	c = get(s, &k, PGC_RES, &val, &d, &f);
	if (c == 1) {
		r = 0;
		ret[0] = ret[1] = ret[2] = NULL;
		for (int i = 0; r == 0 && i < 3; i++) {
			const char *t = dec_next(&d, NULL);

			if (d.bad || (i == 0 && !t))
				r = -BERR_STORE;
			else if (t)
				r = store_res_props_load(t, -BERR_STORE, &ret[i]);
		}
		val_free(val, &d);
		if (r == 0) {
			enc_free(&k);
			return 0;
		}
		for (int i = 0; i < 3; i++) {
			json_decref(ret[i]);
			ret[i] = NULL;
		}
		f.on = false;
	}
	r = pg_res_get_chain_db(s, id, field1, field2, ret);
	if (r == 0) {
		for (int i = 0; i < 3; i++)
			enc_json(&v, ret[i]);
		put(s, &k, &v, &f);
	}
	enc_free(&k);
	enc_free(&v);
	return r;
}

/* One JSON value for id (kind 'G': a resource's properties, 'H': a VM's
 * host keys): from the cache, read back by load; else read by db and
 * kept. */
static int one_json(struct store *s, char kind, const char *id, unsigned mask, json_t **ret,
		    int (*load)(const char *text, json_t **ret),
		    int (*db)(struct store *s, const char *id, json_t **ret))
{
	struct enc k = { 0 }, v = { 0 };
	struct pgc_fill f;
	struct dec d = { 0 };
	char *val;
	int c, r;

	key_parts(&k, kind, id, NULL, NULL);
	c = get(s, &k, mask, &val, &d, &f);
	if (c == 1) {
		const char *t = dec_next(&d, NULL);

		r = d.bad || !t ? -BERR_STORE : load(t, ret);
		val_free(val, &d);
		if (r == 0) {
			enc_free(&k);
			return 0;
		}
		f.on = false;
	}
	r = db(s, id, ret);
	if (r == 0) {
		enc_json(&v, *ret);
		put(s, &k, &v, &f);
	}
	enc_free(&k);
	enc_free(&v);
	return r;
}

static int load_props(const char *text, json_t **ret)
{
	return store_res_props_load(text, -BERR_STORE, ret);
}

int pg_res_get(struct store *s, const char *id, json_t **ret_props)
{
	return one_json(s, 'G', id, PGC_RES, ret_props, load_props, pg_res_get_db);
}

static int collect_res(const char *id, const char *name, json_t *props, void *ud)
{
	enc_str(ud, id);
	enc_str(ud, name);
	enc_json(ud, props);
	return ((struct enc *)ud)->bad ? -ENOMEM : 0;
}

typedef int (*res_fn)(const char *id, const char *name, json_t *props, void *ud);

/* A list of resources (rows id, name, props) from the cache or read
 * whole by rd and kept; then replayed to fn as the store's walk does (its
 * non-zero answer stops the walk and is returned). */
static int res_list(struct store *s, struct enc *k, int (*rd)(struct store *s, void *arg),
		    void *arg, struct enc *v, res_fn fn, void *ud)
{
	struct pgc_fill f;
	struct dec d = { 0 };
	char *val = NULL;
	int c = get(s, k, PGC_RES, &val, &d, &f), r = 0;

	/* A miss, or the cache not answering now (f not armed: kept by none). */
	if (c != 1) {
		if ((r = rd(s, arg)) < 0)
			return r;
		put(s, k, v, &f);
		d.p = v->p;
		d.end = v->p ? v->p + v->len : v->p;
	}
	while (r == 0 && dec_more(&d)) {
		const char *id = dec_next(&d, NULL), *name = dec_next(&d, NULL);
		const char *t = dec_next(&d, NULL);
		json_t *props = NULL;

		if (d.bad || !id || !name || !t ||
		    (r = store_res_props_load(t, -BERR_STORE, &props)) < 0) {
			r = r < 0 ? r : -BERR_STORE;
			break;
		}
		r = fn(id, name, props, ud);
		json_decref(props);
	}
	if (c == 1)
		val_free(val, &d);
	return r;
}

struct list_arg {
	const char *group, *type;
	struct enc *v;
};

static int rd_foreach(struct store *s, void *arg)
{
	struct list_arg *a = arg;

	return pg_res_foreach_db(s, a->group, a->type, collect_res, a->v);
}

static int rd_foreach_type(struct store *s, void *arg)
{
	struct list_arg *a = arg;

	return pg_res_foreach_type_db(s, a->type, collect_res, a->v);
}

int pg_res_foreach(struct store *s, const char *group, const char *type, res_fn fn, void *ud)
{
	struct enc k = { 0 }, v = { 0 };
	struct list_arg a = { group, type, &v };
	int r;

	key_parts(&k, 'F', group, type, NULL);
	if (k.bad || pg_in_tx(s)) {
		enc_free(&k);
		return pg_res_foreach_db(s, group, type, fn, ud);
	}
	r = res_list(s, &k, rd_foreach, &a, &v, fn, ud);
	enc_free(&k);
	enc_free(&v);
	return r;
}

int pg_res_foreach_type(struct store *s, const char *type, res_fn fn, void *ud)
{
	struct enc k = { 0 }, v = { 0 };
	struct list_arg a = { NULL, type, &v };
	int r;

	key_parts(&k, 'Y', type, NULL, NULL);
	if (k.bad || pg_in_tx(s)) {
		enc_free(&k);
		return pg_res_foreach_type_db(s, type, fn, ud);
	}
	r = res_list(s, &k, rd_foreach_type, &a, &v, fn, ud);
	enc_free(&k);
	enc_free(&v);
	return r;
}

static int load_lines(const char *text, json_t **ret)
{
	json_t *a = json_loads(text, 0, NULL);

	if (!json_is_array(a)) {
		json_decref(a);
		return -BERR_STORE;
	}
	*ret = a;
	return 0;
}

int pg_hostkey_get(struct store *s, const char *vm_id, json_t **ret_array_of_lines)
{
	return one_json(s, 'H', vm_id, PGC_HOSTKEYS, ret_array_of_lines, load_lines,
			pg_hostkey_get_db);
}
