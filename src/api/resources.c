/* Handlers for resource groups (/groups/{g}) and the resources inside them
 * (/groups/{g}/{type}/{name}). Runs on a worker thread.
 *
 * Order of checks, so that answers never reveal more than the caller may
 * know:
 * - PUT: the path and body are validated first (400 InvalidRequest naming
 *   the field), then Contributor on the ID being written (403
 *   AuthorizationFailed, whether or not it exists), then, inside one store
 *   transaction, the group's existence (404), the references and the rules
 *   that span resources, and the write itself. A refused PUT changes
 *   nothing, and PUTting the same body again changes nothing.
 * - GET: a path that cannot name a resource, a resource the caller may not
 *   read and a missing resource all answer the same 404.
 * - DELETE: Contributor first (403), then existence (404), then references
 *   (409 ResourceInUse naming one referrer).
 *
 * Decisions:
 * - A reference (a NIC's network, a VM's NIC, a bastion's networks) must
 *   name a resource the caller may read; one it may not read is reported
 *   exactly like a missing one ("network: /groups/... does not exist").
 * - A NIC or a bastion joins the networks it references: each needs the
 *   networks/join permission (Contributor) on the network, checked after
 *   the references, on every PUT (403 AuthorizationFailed naming the
 *   field, the role and the network). See docs/access-control.md.
 * - Two NICs with the same private_ip in one network answer 409 Conflict:
 *   the body is well-formed, it clashes with another resource's state.
 *   Addresses are compared in binary, so "2001:DB8::5" equals
 *   "2001:db8::5".
 * - Conflict and in-use messages name the other resource's ID even when the
 *   caller may not read it, as Azure does: whoever may change a resource
 *   needs to know what holds it.
 * - A list of a group's resources answers 404 when the group is missing,
 *   and also when the caller may read neither the group nor any resource
 *   listed, so that it does not tell whether the group exists. The group
 *   list shows the groups on which the caller holds Reader, and those in
 *   which it holds a role on something inside (Reader on one VM only):
 *   otherwise nothing would lead a client to that VM. Such a group's name
 *   is in the caller's own assignment, so listing it tells nothing new.
 * - A resource PUT whose group segment is not a valid name answers 400
 *   naming "group"; one whose type segment is unknown answers 400 naming
 *   "type" (GET and DELETE answer 404 for both).
 * - Successful writes are audited in the same transaction: actions
 *   "group.put", "group.delete", "resource.put", "resource.delete", target
 *   the ID, result "created", "replaced" or "deleted". */
#include "api/api.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/validate.h"
#include "authz/authz.h"
#include "core/err.h"
#include "store/store.h"
#include "store/store_ident.h"

#define NAME_RULE                                                                                   \
	"must be 1 to 64 characters: letters, digits, '.', '_' and '-', starting with a letter or " \
	"digit (case-sensitive)"
#define OUTCOME_MSG 448

/* A refusal decided inside a transaction, answered after it rolled back. */
struct outcome {
	int status;
	const char *code;
	char msg[OUTCOME_MSG];
};

static int refuse(struct outcome *o, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int refuse(struct outcome *o, int status, const char *code, const char *fmt, ...)
{
	va_list ap;

	o->status = status;
	o->code = code;
	va_start(ap, fmt);
	vsnprintf(o->msg, sizeof(o->msg), fmt, ap);
	va_end(ap);
	return -ECANCELED;
}

/* Answers the outcome of a transaction: the refusal if there was one, else
 * the store error r. */
static void answer_failure(struct api_resp *resp, const struct outcome *o, int r, const char *id)
{
	if (o->status)
		api_error(resp, o->status, o->code, "%s", o->msg);
	else
		api_store_error(resp, r, id);
}

static void not_found(struct api_resp *resp, const char *id)
{
	if (id)
		api_error(resp, 404, "ResourceNotFound", "%s was not found", id);
	else
		api_error(resp, 404, "ResourceNotFound", "no such resource: names " NAME_RULE);
}

/* Whether the caller may read scope: 0, -EACCES, or a store error. */
static int may_read(struct api_call *c, const char *scope)
{
	if (!c->who)
		return -EACCES;
	return authz_require(c->ctx->store, c->who, AUTHZ_READER, scope);
}

/* Answers 403 (or a store error) and returns false unless the caller holds
 * Contributor on scope. */
static bool require_write(struct api_call *c, const char *scope)
{
	int r = c->who ? authz_require(c->ctx->store, c->who, AUTHZ_CONTRIBUTOR, scope) : -EACCES;

	if (r == 0)
		return true;
	if (r == -EACCES)
		api_error(c->resp, 403, "AuthorizationFailed", "Contributor on %s is required",
			  scope);
	else
		api_store_error(c->resp, r, scope);
	return false;
}

/* Records a successful write. Called inside the write's transaction: a
 * write that cannot be audited does not happen. */
static int audit(struct store *s, const struct principal *who, const char *action,
		 const char *target, const char *result)
{
	char principal[80];

	snprintf(principal, sizeof(principal), "user:%s", who ? who->name : "");
	return store_audit(s, principal, action, target, result, NULL);
}

/* The audit detail of a replacing PUT: {"changed":[the top-level property
 * names whose values differ, in either direction]}, NULL when none did. */
static char *changed_detail(const json_t *old, const json_t *now)
{
	json_t *names = json_array(), *o;
	const char *k;
	json_t *v;
	char *text = NULL;

	if (!names)
		return NULL;
	json_object_foreach ((json_t *)old, k, v)
		if (!json_equal(v, json_object_get(now, k)))
			json_array_append_new(names, json_string(k));
	json_object_foreach ((json_t *)now, k, v)
		if (!json_object_get(old, k))
			json_array_append_new(names, json_string(k));
	o = json_pack("{s:o}", "changed", names);
	if (o)
		text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return text;
}

/* {"id", "type", "name"} followed by props (may be NULL); the three
 * always win over a stored property of the same name. */
static json_t *res_body(const char *id, const char *type, const char *name, const json_t *props)
{
	json_t *o = json_pack("{s:s, s:s, s:s}", "id", id, "type", type, "name", name);

	if (o && props)
		json_object_update_missing(o, (json_t *)props);
	return o;
}

/* ---- groups ---- */

struct group_list {
	struct api_call *c;
	json_t *value;
};

struct inside {
	const char *gid;
	bool found;
};

/* Stops at an assignment strictly inside the group. */
static int inside_group(const char *role, const char *scope, void *ud)
{
	struct inside *in = ud;

	(void)role;
	in->found = strcmp(scope, in->gid) != 0 && authz_scope_covers(in->gid, scope);
	return in->found;
}

/* Whether the caller holds a role on something inside group gid: 0,
 * -EACCES, or a store error. Every role includes reading. */
static int holds_inside(struct api_call *c, const char *gid)
{
	struct inside in = { .gid = gid };
	char principal[80];
	int r;

	if (!c->who)
		return -EACCES;
	snprintf(principal, sizeof(principal), "user:%s", c->who->name);
	r = store_role_foreach_principal(c->ctx->store, principal, inside_group, &in);
	if (r < 0)
		return r;
	return in.found ? 0 : -EACCES;
}

static int group_list_one(const char *name, void *ud)
{
	struct group_list *l = ud;
	char id[VAL_ID_SIZE];
	int r;

	snprintf(id, sizeof(id), "/groups/%s", name);
	r = may_read(l->c, id);
	if (r == -EACCES)
		r = holds_inside(l->c, id);
	if (r == -EACCES)
		return 0;
	if (r < 0)
		return r;
	return json_array_append_new(l->value, res_body(id, "groups", name, NULL)) < 0 ? -ENOMEM
										       : 0;
}

void api_groups_list(struct api_call *c)
{
	struct group_list l = { .c = c, .value = json_array() };
	int r;

	if (!l.value) {
		api_store_error(c->resp, -ENOMEM, "/groups");
		return;
	}
	r = store_group_foreach(c->ctx->store, group_list_one, &l);
	if (r < 0) {
		json_decref(l.value);
		api_store_error(c->resp, r, "/groups");
		return;
	}
	api_json(c->resp, 200, json_pack("{s:o}", "value", l.value));
}

/* The group named by seg[1] as an ID into id, or false for a name that
 * cannot exist. */
static bool group_id(struct api_call *c, char id[VAL_ID_SIZE])
{
	if (c->nseg < 2 || !val_name(c->seg[1]))
		return false;
	snprintf(id, VAL_ID_SIZE, "/groups/%s", c->seg[1]);
	return true;
}

void api_groups_get(struct api_call *c)
{
	char id[VAL_ID_SIZE];
	int r;

	if (!group_id(c, id)) {
		not_found(c->resp, NULL);
		return;
	}
	r = may_read(c, id);
	if (r == 0)
		r = store_group_exists(c->ctx->store, c->seg[1]);
	if (r == -EACCES || r == -ENOENT) {
		not_found(c->resp, id);
		return;
	}
	if (r < 0) {
		api_store_error(c->resp, r, id);
		return;
	}
	api_json(c->resp, 200, res_body(id, "groups", c->seg[1], NULL));
}

struct group_op {
	struct api_call *c;
	const char *name;
	const char *id;
	bool created;
	struct outcome o;
};

static int group_put_tx(struct store *s, void *ud)
{
	struct group_op *g = ud;
	int r;

	if (api_create_only(g->c) && (r = store_group_exists(s, g->name)) != -ENOENT)
		return r < 0 ? r
			     : refuse(&g->o, 412, "PreconditionFailed",
				      "%s already exists (If-None-Match: *)", g->id);
	r = store_group_put(s, g->name, &g->created);

	if (r < 0)
		return r;
	return audit(s, g->c->who, "group.put", g->id, g->created ? "created" : "replaced");
}

void api_groups_put(struct api_call *c)
{
	char id[VAL_ID_SIZE], msg[VAL_MSG];
	struct group_op g = { .c = c, .id = id };
	int r;

	if (!group_id(c, id)) {
		api_error(c->resp, 400, "InvalidRequest", "name: " NAME_RULE);
		return;
	}
	if (val_group_body(c->body, msg) < 0) {
		api_error(c->resp, 400, "InvalidRequest", "%s", msg);
		return;
	}
	if (!require_write(c, id))
		return;
	g.name = c->seg[1];
	r = store_res_tx(c->ctx->store, group_put_tx, &g);
	if (r < 0) {
		answer_failure(c->resp, &g.o, r, id);
		return;
	}
	api_json(c->resp, g.created ? 201 : 200, res_body(id, "groups", g.name, NULL));
}

static int group_delete_tx(struct store *s, void *ud)
{
	struct group_op *g = ud;
	char *blocker = NULL;
	int r = store_group_delete(s, g->name);

	if (r == -EBUSY && store_group_blocker(s, g->name, &blocker) == 0) {
		refuse(&g->o, 409, "ResourceInUse",
		       "%s still holds %s: delete the group's resources first", g->id, blocker);
		free(blocker);
		return -ECANCELED;
	}
	if (r < 0)
		return r;
	return audit(s, g->c->who, "group.delete", g->id, "deleted");
}

void api_groups_delete(struct api_call *c)
{
	char id[VAL_ID_SIZE];
	struct group_op g = { .c = c, .id = id };
	int r;

	if (!group_id(c, id)) {
		not_found(c->resp, NULL);
		return;
	}
	if (!require_write(c, id))
		return;
	g.name = c->seg[1];
	r = store_res_tx(c->ctx->store, group_delete_tx, &g);
	if (r < 0) {
		answer_failure(c->resp, &g.o, r, id);
		return;
	}
	api_json(c->resp, 204, NULL);
}

/* ---- resources ---- */

/* Everything one resource PUT works on. */
struct res_op {
	struct api_call *c;
	const char *group, *type, *name;
	char id[VAL_ID_SIZE];
	json_t *props; /* normalized by val_res_props */
	char **refs;
	bool created;
	struct outcome o;
};

/* The property of props that holds ref, as "key" or "key[i]", for
 * messages. */
static void ref_field(const json_t *props, const char *ref, char *out, size_t size)
{
	const char *key;
	json_t *v, *e;
	size_t i;

	json_object_foreach ((json_t *)props, key, v) {
		if (json_is_string(v) && strcmp(json_string_value(v), ref) == 0) {
			snprintf(out, size, "%s", key);
			return;
		}
		json_array_foreach (v, i, e) {
			if (json_is_string(e) && strcmp(json_string_value(e), ref) == 0) {
				snprintf(out, size, "%s[%zu]", key, i);
				return;
			}
		}
	}
	snprintf(out, size, "reference");
}

/* Every reference must exist and be readable by the caller. */
static int check_refs(struct store *s, struct res_op *p)
{
	for (char **ref = p->refs; *ref; ref++) {
		json_t *props = NULL;
		char field[80];
		int r = may_read(p->c, *ref);

		if (r == 0)
			r = store_res_get(s, *ref, &props);
		json_decref(props);
		if (r == -EACCES || r == -ENOENT) {
			ref_field(p->props, *ref, field, sizeof(field));
			return refuse(&p->o, 400, "InvalidRequest", "%s: %s does not exist", field,
				      *ref);
		}
		if (r < 0)
			return r;
	}
	return 0;
}

/* Joining a network: a NIC or a bastion that references a network lets the
 * bastion dial into it, so each network it references needs the
 * networks/join permission (Contributor or Owner on the network or above),
 * not only Reader. Checked on every PUT of such a resource, also when the
 * network does not change: a NIC's private_ip may move inside it. Runs
 * after check_refs, so a network the caller cannot read is still reported
 * as missing. */
static int check_joins(struct store *s, struct res_op *p)
{
	if (strcmp(p->type, "nics") != 0 && strcmp(p->type, "bastions") != 0)
		return 0;
	for (char **ref = p->refs; *ref; ref++) {
		char field[80];
		int r;

		if (val_res_id(*ref, "networks", NULL, NULL, NULL) < 0)
			continue;
		r = authz_require_perm(s, p->c->who, AUTHZ_PERM_NETWORK_JOIN, *ref);
		if (r == -EACCES) {
			ref_field(p->props, *ref, field, sizeof(field));
			return refuse(&p->o, 403, "AuthorizationFailed",
				      "%s: %s on %s is required to join that network (%s)", field,
				      authz_role_name(authz_perm_role(AUTHZ_PERM_NETWORK_JOIN)),
				      *ref, authz_perm_name(AUTHZ_PERM_NETWORK_JOIN));
		}
		if (r < 0)
			return r;
	}
	return 0;
}

/* Appends the strings of arr to out as "a, b, c", cut short with "..."
 * when out is full. */
static void join(const json_t *arr, char *out, size_t size)
{
	size_t used = 0, i;
	json_t *v;

	out[0] = '\0';
	json_array_foreach (arr, i, v) {
		const char *t = json_string_value(v);
		int w = snprintf(out + used, size - used, "%s%s", i ? ", " : "", t ? t : "?");

		if (w < 0 || (size_t)w >= size - used) {
			if (size > 4)
				memcpy(out + size - 4, "...", 4);
			return;
		}
		used += (size_t)w;
	}
}

struct nic_walk {
	struct res_op *p;
	const json_t *prefixes; /* check_network: the new prefixes */
	struct cidr_ip ip;      /* check_nic: the new NIC's address */
	const char *network;
};

/* A NIC of the network being replaced must stay inside its prefixes. */
static int network_nic_one(const char *id, const char *name, json_t *props, void *ud)
{
	struct nic_walk *w = ud;
	struct cidr_ip ip;

	if (cidr_ip_parse(json_string_value(json_object_get(props, "private_ip")), &ip) < 0)
		return 0;
	if (val_prefixes_contain(w->prefixes, &ip))
		return 0;
	return refuse(&w->p->o, 400, "InvalidRequest",
		      "address_prefixes: %s (private_ip %s) would lie outside every prefix: keep a "
		      "prefix that holds it, or move or delete that NIC first",
		      id, json_string_value(json_object_get(props, "private_ip")));
}

static int check_network(struct store *s, struct res_op *p)
{
	struct nic_walk w = { .p = p, .prefixes = json_object_get(p->props, "address_prefixes") };

	return store_res_foreach_referrer(s, p->id, "nics", network_nic_one, &w);
}

/* No other NIC of the network may hold the same address. */
static int nic_dup_one(const char *id, const char *name, json_t *props, void *ud)
{
	struct nic_walk *w = ud;
	struct cidr_ip ip;

	if (strcmp(id, w->p->id) == 0 ||
	    cidr_ip_parse(json_string_value(json_object_get(props, "private_ip")), &ip) < 0)
		return 0;
	if (ip.family != w->ip.family || memcmp(ip.addr, w->ip.addr, sizeof(ip.addr)) != 0)
		return 0;
	return refuse(&w->p->o, 409, "Conflict", "private_ip: %s is already used by %s in %s",
		      json_string_value(json_object_get(w->p->props, "private_ip")), id,
		      w->network);
}

static int check_nic(struct store *s, struct res_op *p)
{
	struct nic_walk w = { .p = p };
	const char *ip = json_string_value(json_object_get(p->props, "private_ip"));
	json_t *net = NULL;
	char prefixes[256];
	int r;

	w.network = json_string_value(json_object_get(p->props, "network"));
	if (!w.network || cidr_ip_parse(ip, &w.ip) < 0)
		return -EINVAL; /* val_res_props guarantees both */
	/* The network's row locked until the write commits: two NICs with one
	 * address written at once (two instances of one store) are checked
	 * one after the other, and the second sees the first (409). */
	if ((r = store_res_lock(s, w.network)) < 0 || (r = store_res_get(s, w.network, &net)) < 0)
		return r;
	if (!val_prefixes_contain(json_object_get(net, "address_prefixes"), &w.ip)) {
		join(json_object_get(net, "address_prefixes"), prefixes, sizeof(prefixes));
		json_decref(net);
		return refuse(&p->o, 400, "InvalidRequest",
			      "private_ip: %s is not inside the address_prefixes of %s (%s)", ip,
			      w.network, prefixes);
	}
	json_decref(net);
	return store_res_foreach_referrer(s, w.network, "nics", nic_dup_one, &w);
}

/* Checks that span resources, by type; a type without an entry needs
 * none beyond its references existing. */
static const struct {
	const char *type;
	int (*check)(struct store *s, struct res_op *p);
} type_checks[] = {
	{ "networks", check_network },
	{ "nics", check_nic },
};

static int res_put_tx(struct store *s, void *ud)
{
	struct res_op *p = ud;
	json_t *old = NULL;
	char gid[VAL_ID_SIZE];
	int r = store_group_exists(s, p->group);

	if (r == -ENOENT) {
		snprintf(gid, sizeof(gid), "/groups/%s", p->group);
		return refuse(&p->o, 404, "ResourceNotFound", "%s was not found", gid);
	}
	if (r < 0 || (r = check_refs(s, p)) < 0 || (r = check_joins(s, p)) < 0)
		return r;
	for (size_t i = 0; i < sizeof(type_checks) / sizeof(type_checks[0]); i++)
		if (strcmp(type_checks[i].type, p->type) == 0 &&
		    (r = type_checks[i].check(s, p)) < 0)
			return r;
	/* What it was, for If-None-Match and for the audit of a replace. */
	if ((r = store_res_get(s, p->id, &old)) < 0 && r != -ENOENT)
		return r;
	if (r == 0 && api_create_only(p->c)) {
		json_decref(old);
		return refuse(
			&p->o, 412, "PreconditionFailed",
			"%s already exists (If-None-Match: *); replace it without that header",
			p->id);
	}
	r = store_res_put(s, p->group, p->type, p->name, p->props, (const char *const *)p->refs,
			  &p->created);
	if (r == 0) {
		char principal[80],
			*detail = old && !p->created ? changed_detail(old, p->props) : NULL;

		snprintf(principal, sizeof(principal), "user:%s", p->c->who ? p->c->who->name : "");
		r = store_audit(s, principal, "resource.put", p->id,
				p->created ? "created" : "replaced", detail);
		free(detail);
	}
	json_decref(old);
	return r;
}

/* Fills group/type/name/id from seg[1..3]; false if they cannot name a
 * resource. */
static bool res_path(struct api_call *c, struct res_op *p)
{
	if (c->nseg < 4 || !val_name(c->seg[1]) || !val_res_type(c->seg[2]) || !val_name(c->seg[3]))
		return false;
	p->group = c->seg[1];
	p->type = c->seg[2];
	p->name = c->seg[3];
	snprintf(p->id, sizeof(p->id), "/groups/%s/%s/%s", p->group, p->type, p->name);
	return true;
}

void api_resources_put(struct api_call *c)
{
	struct res_op p = { .c = c };
	char msg[VAL_MSG];
	int r;

	if (!res_path(c, &p)) {
		if (c->nseg < 4 || !val_name(c->seg[1]))
			api_error(c->resp, 400, "InvalidRequest", "group: " NAME_RULE);
		else if (!val_res_type(c->seg[2]))
			api_error(
				c->resp, 400, "InvalidRequest",
				"type: not a resource type; allowed: networks, nics, vms, bastions, vaults");
		else
			api_error(c->resp, 400, "InvalidRequest", "name: " NAME_RULE);
		return;
	}
	r = val_res_props(p.type, c->body, &p.props, &p.refs, msg);
	if (r == -EINVAL) {
		api_error(c->resp, 400, "InvalidRequest", "%s", msg);
		return;
	}
	if (r < 0) {
		api_store_error(c->resp, r, p.id);
		return;
	}
	if (!require_write(c, p.id))
		goto out;
	r = store_res_tx(c->ctx->store, res_put_tx, &p);
	if (r < 0) {
		answer_failure(c->resp, &p.o, r, p.id);
		goto out;
	}
	api_json(c->resp, p.created ? 201 : 200, res_body(p.id, p.type, p.name, p.props));
out:
	json_decref(p.props);
	val_refs_free(p.refs);
}

void api_resources_get(struct api_call *c)
{
	struct res_op p = { .c = c };
	json_t *props = NULL;
	int r;

	if (!res_path(c, &p)) {
		not_found(c->resp, NULL);
		return;
	}
	r = may_read(c, p.id);
	if (r == 0)
		r = store_res_get(c->ctx->store, p.id, &props);
	if (r == -EACCES || r == -ENOENT) {
		not_found(c->resp, p.id);
		return;
	}
	if (r < 0) {
		api_store_error(c->resp, r, p.id);
		return;
	}
	api_json(c->resp, 200, res_body(p.id, p.type, p.name, props));
	json_decref(props);
}

struct res_list {
	struct api_call *c;
	const char *type;
	json_t *value;
};

static int res_list_one(const char *id, const char *name, json_t *props, void *ud)
{
	struct res_list *l = ud;
	int r = may_read(l->c, id);

	if (r == -EACCES)
		return 0;
	if (r < 0)
		return r;
	return json_array_append_new(l->value, res_body(id, l->type, name, props)) < 0 ? -ENOMEM
										       : 0;
}

void api_resources_list(struct api_call *c)
{
	struct res_list l = { .c = c };
	char gid[VAL_ID_SIZE];
	int r, group_readable = -EACCES;

	if (c->nseg < 3 || !group_id(c, gid) || !val_res_type(c->seg[2])) {
		not_found(c->resp, NULL);
		return;
	}
	l.type = c->seg[2];
	r = group_readable = may_read(c, gid);
	if (r < 0 && r != -EACCES) {
		api_store_error(c->resp, r, gid);
		return;
	}
	if (!(l.value = json_array())) {
		api_store_error(c->resp, -ENOMEM, gid);
		return;
	}
	/* The list first: a group with resources exists (they reference it),
	 * so its existence is read only when the list is empty (one round
	 * trip less on PostgreSQL). */
	r = store_res_foreach(c->ctx->store, c->seg[1], l.type, res_list_one, &l);
	if (r == 0 && json_array_size(l.value) == 0)
		r = group_readable == 0 ? store_group_exists(c->ctx->store, c->seg[1]) : -ENOENT;
	if (r == -ENOENT) {
		/* No such group, or nothing to show and no right to the
		 * group: answer as if it did not exist. */
		json_decref(l.value);
		not_found(c->resp, gid);
		return;
	}
	if (r < 0) {
		json_decref(l.value);
		api_store_error(c->resp, r, gid);
		return;
	}
	api_json(c->resp, 200, json_pack("{s:o}", "value", l.value));
}

struct res_del {
	struct api_call *c;
	const char *id;
	struct outcome o;
};

static int res_delete_tx(struct store *s, void *ud)
{
	struct res_del *d = ud;
	char *blocker = NULL;
	int r = store_res_delete(s, d->id);

	if (r == -EBUSY && store_res_blocker(s, d->id, &blocker) == 0) {
		refuse(&d->o, 409, "ResourceInUse",
		       "%s is used by %s: delete or change that resource first", d->id, blocker);
		free(blocker);
		return -ECANCELED;
	}
	if (r < 0)
		return r;
	return audit(s, d->c->who, "resource.delete", d->id, "deleted");
}

void api_resources_delete(struct api_call *c)
{
	struct res_op p = { .c = c };
	struct res_del d = { .c = c, .id = p.id };
	int r;

	if (!res_path(c, &p)) {
		not_found(c->resp, NULL);
		return;
	}
	if (!require_write(c, p.id))
		return;
	r = store_res_tx(c->ctx->store, res_delete_tx, &d);
	if (r < 0) {
		answer_failure(c->resp, &d.o, r, p.id);
		return;
	}
	api_json(c->resp, 204, NULL);
}
