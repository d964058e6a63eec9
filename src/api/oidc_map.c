/* The group claims of single sign-on mapped to role assignments: parsing
 * the `oidc.map` rows at start, and keeping a user's mapped assignments in
 * step with its groups at each sign-in (called by oidc.c's callback). The
 * assignments the mapping makes carry IDs of their own (a prefix and a hash
 * of principal, role and scope, the same on every instance), so that those
 * made by hand are never touched. */
#include "api/oidc_map.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/validate.h"
#include "authz/authz.h"
#include "core/util.h"
#include "store/store.h"

#define MAP_ID_PREFIX "oidc-map-"

/* Splits the [oidc] map text ("GROUP ROLE SCOPE,...") into rows; the
 * config loader checked the shape, this checks the role and the scope. */
int oidc_map_parse(struct oidc_map *m, const char *text, char *err, size_t errlen)
{
	const char *p = text;
	enum authz_role role;

	if (!m->rows && !(m->rows = calloc(OIDC_MAP_ROWS_MAX, sizeof(*m->rows)))) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	while (*p) {
		struct oidc_map_row row = { 0 };
		char line[600];
		size_t n = strcspn(p, ",");
		int got;

		if (n >= sizeof(line) || m->n == OIDC_MAP_ROWS_MAX) {
			snprintf(err, errlen, "oidc.map: at most %d rows of at most %zu bytes",
				 OIDC_MAP_ROWS_MAX, sizeof(line) - 1);
			return -EINVAL;
		}
		memcpy(line, p, n);
		line[n] = '\0';
		got = sscanf(line, "%256s %32s %256s", row.group, row.role, row.scope);
		if (got != 3 || authz_role_parse(row.role, &role) < 0 || !val_scope(row.scope)) {
			snprintf(err, errlen,
				 "oidc.map: '%.80s' is not 'GROUP ROLE SCOPE' with a role (Reader, "
				 "Contributor, Owner) and a scope (/, /groups/G or a resource ID)",
				 line);
			return -EINVAL;
		}
		m->rows[m->n++] = row;
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}

void oidc_map_free(struct oidc_map *m)
{
	free(m->rows);
	m->rows = NULL;
	m->n = 0;
}

/* The ID of the assignment the mapping makes for (principal, role,
 * scope): recognisable by its prefix, the same on every instance. */
static void map_id(const char *principal, const char *role, const char *scope, char out[64])
{
	char text[600];
	uint8_t h[32];
	char hex[65];

	snprintf(text, sizeof(text), "%s\n%s\n%s", principal, role, scope);
	util_sha256_str(text, h);
	util_hex(h, sizeof(h), hex);
	snprintf(out, 64, MAP_ID_PREFIX "%.40s", hex);
}

struct held {
	char role[33];
	char scope[257];
};
struct held_list {
	struct held *v;
	size_t n;
};

static int collect(const char *role, const char *scope, void *ud)
{
	struct held_list *l = ud;
	struct held *v;

	if (l->n >= 1024)
		return 0;
	if (!(v = realloc(l->v, (l->n + 1) * sizeof(*v))))
		return -ENOMEM;
	l->v = v;
	util_strlcpy(v[l->n].role, role, sizeof(v->role));
	util_strlcpy(v[l->n].scope, scope, sizeof(v->scope));
	l->n++;
	return 0;
}

static bool in_groups(const json_t *groups, const char *g)
{
	size_t i;
	json_t *v;

	json_array_foreach (groups, i, v)
		if (strcmp(json_string_value(v), g) == 0)
			return true;
	return false;
}

/* Keeps the user's mapped role assignments in step with its groups: the
 * rows whose group it is in are assigned, assignments the mapping made
 * earlier (recognised by their ID) that no row grants any more are
 * removed; assignments made by hand are left alone. Each change is
 * audited. */
int oidc_map_sync(struct api_call *c, const struct oidc_map *m, const char *principal,
		  const json_t *groups)
{
	struct held_list held = { 0 };
	struct store_role ra;
	char id[64], target[96];
	bool created;
	int r;

	if ((r = store_role_foreach_principal(c->ctx->store, principal, collect, &held)) < 0)
		goto out;
	for (size_t i = 0; i < held.n; i++) {
		bool wanted = false;

		map_id(principal, held.v[i].role, held.v[i].scope, id);
		r = store_role_get(c->ctx->store, id, &ra);
		if (r == -ENOENT || (r == 0 && strcmp(ra.principal, principal) != 0))
			continue; /* not the mapping's */
		if (r < 0)
			goto out;
		for (size_t k = 0; k < m->n && !wanted; k++)
			wanted = strcmp(m->rows[k].role, ra.role) == 0 &&
				 strcmp(m->rows[k].scope, ra.scope) == 0 &&
				 in_groups(groups, m->rows[k].group);
		if (wanted)
			continue;
		if ((r = store_role_delete(c->ctx->store, id)) < 0 && r != -ENOENT)
			goto out;
		snprintf(target, sizeof(target), "/role-assignments/%s", id);
		api_audit_json(c, principal, "role.delete", target, "deleted",
			       json_pack("{s:s, s:s, s:s, s:s}", "principal", principal, "role",
					 ra.role, "scope", ra.scope, "by", "oidc group mapping"));
	}
	for (size_t k = 0; k < m->n; k++) {
		if (!in_groups(groups, m->rows[k].group))
			continue;
		map_id(principal, m->rows[k].role, m->rows[k].scope, id);
		r = store_role_put(c->ctx->store, id, principal, m->rows[k].role, m->rows[k].scope,
				   &created);
		if (r < 0)
			goto out;
		if (!created)
			continue;
		snprintf(target, sizeof(target), "/role-assignments/%s", id);
		api_audit_json(c, principal, "role.put", target, "created",
			       json_pack("{s:s, s:s, s:s, s:s, s:s}", "principal", principal,
					 "role", m->rows[k].role, "scope", m->rows[k].scope, "by",
					 "oidc group mapping", "group", m->rows[k].group));
	}
	r = 0;
out:
	free(held.v);
	return r;
}
