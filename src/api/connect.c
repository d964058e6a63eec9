/* POST /groups/{g}/vms/{vm}/connect and GET /sessions/{id}/terminal.
 *
 * The connect handler runs the connect checks (docs/api.md "The checks") in the table's order, on a
 * worker: the first that fails answers. What passes becomes a
 * term_connect that the loop dials (rows 9–12 are answered there). The
 * address dialled is always the NIC's private_ip, re-checked against its
 * network's prefixes and the bastion's networks: never anything taken from
 * the request; and that same address must pass the operator's destination
 * policy (authz/dest.h, 403 DestinationNotAllowed) right after row 6. */
#include "api/api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "api/connect.h"
#include "api/validate.h"
#include "authz/authz.h"
#include "authz/dest.h"
#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/util.h"
#include "identity/ident.h"
#include "ssh/sshc.h"
#include "store/store.h"
#include "terminal/term.h"
#include "vault/vault.h"

#define DEFAULT_COLS 80
#define DEFAULT_ROWS 24

struct connect_req {
	const char *bastion; /* NULL when omitted */
	const char *username;
	const char *auth_type;
	const char *password;
	const char *private_key;
	size_t private_key_len;
	const char *passphrase;
	const char *vault;   /* vault-key: the vault's ID */
	const char *secret;  /* vault-key: the secret's name */
	const char *version; /* vault-key: NULL for the newest */
	int cols, rows;
};

static bool has_only(const json_t *obj, const char *const *allowed, const char **ret_bad)
{
	const char *key;
	json_t *v;

	json_object_foreach ((json_t *)obj, key, v) {
		bool ok = false;

		for (const char *const *a = allowed; *a; a++)
			ok = ok || strcmp(key, *a) == 0;
		if (!ok) {
			*ret_bad = key;
			return false;
		}
	}
	return true;
}

static bool valid_username(const char *u)
{
	size_t n = strlen(u);

	if (n == 0 || n > 64 || u[0] == '-')
		return false;
	for (const char *p = u; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == ':' || *p == '/')
			return false;
	return true;
}

static bool is_version(const char *v)
{
	size_t n = 0;

	for (; v[n]; n++)
		if (!((v[n] >= '0' && v[n] <= '9') || (v[n] >= 'a' && v[n] <= 'f')))
			return false;
	return n == VAULT_VERSION_SIZE - 1;
}

/* Row 2 for vault-key: {vault, secret, version?, passphrase?}. */
static int parse_vault_auth(struct api_call *c, json_t *auth, struct connect_req *r)
{
	static const char *const fields[] = { "type",    "vault",      "secret",
					      "version", "passphrase", NULL };
	const char *bad;
	json_t *v;

	if (!has_only(auth, fields, &bad)) {
		api_error(c->resp, 400, "InvalidRequest",
			  "auth.%s: unknown property for type vault-key", bad);
		return -EINVAL;
	}
	r->vault = json_string_value(json_object_get(auth, "vault"));
	if (!r->vault || val_res_id(r->vault, "vaults", NULL, NULL, NULL) < 0) {
		api_error(c->resp, 400, "InvalidRequest",
			  "auth.vault: required for type vault-key; a vault ID like "
			  "/groups/{g}/vaults/{name}");
		return -EINVAL;
	}
	r->secret = json_string_value(json_object_get(auth, "secret"));
	if (!r->secret || !val_name(r->secret)) {
		api_error(c->resp, 400, "InvalidRequest",
			  "auth.secret: required for type vault-key; the secret's name (1 to 64 "
			  "letters, digits, '.', '_' or '-')");
		return -EINVAL;
	}
	v = json_object_get(auth, "version");
	if (v && !json_is_null(v)) {
		if (!json_is_string(v) || !is_version(json_string_value(v))) {
			api_error(c->resp, 400, "InvalidRequest",
				  "auth.version: must be a secret version ID (32 hex digits)");
			return -EINVAL;
		}
		r->version = json_string_value(v);
	}
	v = json_object_get(auth, "passphrase");
	if (v && !json_is_null(v)) {
		if (!json_is_string(v) || strlen(json_string_value(v)) > 1024) {
			api_error(c->resp, 400, "InvalidRequest",
				  "auth.passphrase: must be a string of at most 1024 bytes");
			return -EINVAL;
		}
		r->passphrase = json_string_value(v);
		if (!r->passphrase[0])
			r->passphrase = NULL;
	}
	return 0;
}

/* Row 7: the caller's access policy on the vault grants get or use (use:
 * connect with the key without being able to read it); then the secret is
 * read on the caller's behalf (audited, never shown). Answers and returns
 * < 0 on failure; *ret_val is the key to use. */
static int read_vault_key(struct api_call *c, const struct connect_req *r,
			  struct vault_value **ret_val)
{
	char principal[80];
	int rc;

	snprintf(principal, sizeof(principal), "user:%s", c->who->name);
	rc = vault_policy_check_any(c->ctx->store, r->vault, principal,
				    VAULT_PERM_GET | VAULT_PERM_USE);
	if (rc == -EACCES) {
		char target[VAL_ID_SIZE + 80];

		snprintf(target, sizeof(target), "%s/secrets/%s", r->vault, r->secret);
		store_audit(c->ctx->store, principal, "secret.get", target, "denied", NULL);
		api_error(c->resp, 403, "VaultAccessDenied",
			  "get or use on secrets of %s is required", r->vault);
		return rc;
	}
	if (rc < 0) {
		api_store_error(c->resp, rc, r->vault);
		return rc;
	}
	rc = vault_secret_read(c->ctx->vault, c->ctx->store, principal, "connect", r->vault,
			       r->secret, r->version, ret_val);
	if (rc == -ENOENT) {
		if (r->version)
			api_error(c->resp, 404, "SecretNotFound",
				  "secret %s has no version %s in %s", r->secret, r->version,
				  r->vault);
		else
			api_error(c->resp, 404, "SecretNotFound", "secret %s was not found in %s",
				  r->secret, r->vault);
	} else if (rc == -BERR_INTEGRITY) {
		log_error("vault: %s secret %s failed its integrity check (stored data altered or "
			  "damaged)",
			  r->vault, r->secret);
		api_error(
			c->resp, 500, "SecretCorrupted",
			"the stored data of %s/secrets/%s failed its integrity check: it was altered "
			"or damaged",
			r->vault, r->secret);
	} else if (rc < 0) {
		api_store_error(c->resp, rc, r->vault);
	}
	return rc;
}

/* Row 2: the body's shape. */
static int parse_body(struct api_call *c, struct connect_req *r)
{
	static const char *const top[] = { "bastion", "username", "auth", "cols", "rows", NULL };
	json_t *b = c->body, *auth, *v;
	const char *bad, *type;

	if (!has_only(b, top, &bad))
		goto unknown;
	v = json_object_get(b, "bastion");
	if (v && !json_is_null(v)) {
		if (!json_is_string(v)) {
			api_error(c->resp, 400, "InvalidRequest",
				  "bastion: must be a bastion ID string");
			return -EINVAL;
		}
		r->bastion = json_string_value(v);
	}
	v = json_object_get(b, "username");
	if (!json_is_string(v) || !valid_username(json_string_value(v))) {
		api_error(c->resp, 400, "InvalidRequest",
			  "username: required; 1 to 64 characters without spaces, ':' or '/'");
		return -EINVAL;
	}
	r->username = json_string_value(v);
	r->cols = DEFAULT_COLS;
	r->rows = DEFAULT_ROWS;
	for (int i = 0; i < 2; i++) {
		const char *name = i ? "rows" : "cols";

		v = json_object_get(b, name);
		if (!v)
			continue;
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > 1000) {
			api_error(c->resp, 400, "InvalidRequest",
				  "%s: must be an integer from 1 to 1000", name);
			return -EINVAL;
		}
		*(i ? &r->rows : &r->cols) = (int)json_integer_value(v);
	}
	auth = json_object_get(b, "auth");
	if (!json_is_object(auth)) {
		api_error(c->resp, 400, "InvalidRequest",
			  "auth: required; an object with a \"type\"");
		return -EINVAL;
	}
	type = json_string_value(json_object_get(auth, "type"));
	if (!type) {
		api_error(c->resp, 400, "InvalidRequest",
			  "auth.type: required; one of password, ssh-key, ssh-key-file, vault-key");
		return -EINVAL;
	}
	r->auth_type = type;
	if (strcmp(type, "password") == 0) {
		static const char *const fields[] = { "type", "password", NULL };

		if (!has_only(auth, fields, &bad))
			goto unknown_auth;
		r->password = json_string_value(json_object_get(auth, "password"));
		if (!r->password || !r->password[0] || strlen(r->password) > 1024) {
			api_error(c->resp, 400, "InvalidRequest",
				  "auth.password: required for type password; 1 to 1024 bytes");
			return -EINVAL;
		}
	} else if (strcmp(type, "ssh-key") == 0 || strcmp(type, "ssh-key-file") == 0) {
		static const char *const fields[] = { "type", "private_key", "passphrase", NULL };

		if (!has_only(auth, fields, &bad))
			goto unknown_auth;
		r->private_key = json_string_value(json_object_get(auth, "private_key"));
		if (!r->private_key || !r->private_key[0]) {
			api_error(c->resp, 400, "InvalidRequest",
				  "auth.private_key: required for type %s", type);
			return -EINVAL;
		}
		if (strlen(r->private_key) > API_MAX_PRIVATE_KEY) {
			api_error(c->resp, 400, "InvalidRequest",
				  "auth.private_key: larger than 16 KiB");
			return -EINVAL;
		}
		r->private_key_len = strlen(r->private_key);
		v = json_object_get(auth, "passphrase");
		if (v && !json_is_null(v)) {
			if (!json_is_string(v) || strlen(json_string_value(v)) > 1024) {
				api_error(
					c->resp, 400, "InvalidRequest",
					"auth.passphrase: must be a string of at most 1024 bytes");
				return -EINVAL;
			}
			r->passphrase = json_string_value(v);
			if (!r->passphrase[0])
				r->passphrase = NULL;
		}
	} else if (strcmp(type, "vault-key") == 0) {
		if (parse_vault_auth(c, auth, r) < 0)
			return -EINVAL;
	} else {
		api_error(c->resp, 400, "InvalidRequest",
			  "auth.type: must be one of password, ssh-key, ssh-key-file, vault-key");
		return -EINVAL;
	}
	return 0;
unknown:
	api_error(c->resp, 400, "InvalidRequest", "%s: unknown property", bad);
	return -EINVAL;
unknown_auth:
	api_error(c->resp, 400, "InvalidRequest", "auth.%s: unknown property for type %s", bad,
		  type);
	return -EINVAL;
}

/* Reader, Contributor or Owner ("connect"): an Auditor reads the VM but
 * gets the same refusal as someone without a role (docs/access-control.md). */
static int require_reader(struct api_call *c, const char *id)
{
	int r = authz_require_perm(c->ctx->store, c->who, AUTHZ_PERM_CONNECT, id);

	if (r == -EACCES)
		api_error(c->resp, 403, "AuthorizationFailed", "Reader on %s is required", id);
	else if (r < 0)
		api_store_error(c->resp, r, id);
	return r;
}

static bool bastion_serves(const json_t *bastion, const char *network_id)
{
	size_t i;
	json_t *n;

	json_array_foreach (json_object_get(bastion, "networks"), i, n)
		if (json_is_string(n) && strcmp(json_string_value(n), network_id) == 0)
			return true;
	return false;
}

struct pick {
	struct api_call *c;
	const char *network;
	char found[256];
	int n;
	int hidden;        /* bastions serving the network the caller cannot read */
	char hidden1[256]; /* the first of them */
};

static int pick_one(const char *id, const char *name, json_t *props, void *ud)
{
	struct pick *p = ud;

	if (!bastion_serves(props, p->network))
		return 0;
	if (authz_require_perm(p->c->ctx->store, p->c->who, AUTHZ_PERM_CONNECT, id) != 0) {
		if (p->hidden++ == 0)
			util_strlcpy(p->hidden1, id, sizeof(p->hidden1));
		return 0;
	}
	if (p->n++ == 0)
		util_strlcpy(p->found, id, sizeof(p->found));
	return 0;
}

/* Row 8 and the hand-over to the loop. */
static void build_connect(struct api_call *c, const struct connect_req *r, const char *vm_id,
			  const char *bastion_id, const json_t *vm, const char *ip)
{
	struct term_connect *tc = calloc(1, sizeof(*tc));
	json_t *keys = json_object_get(vm, "host_keys"), *recorded = NULL, *k;
	const char *reason = NULL;
	size_t i;
	int rc;

	if (!tc)
		goto oom;
	tc->user_id = c->who->user_id;
	tc->end_gen = c->end_gen;
	util_strlcpy(tc->user, c->who->name, sizeof(tc->user));
	util_strlcpy(tc->vm_id, vm_id, sizeof(tc->vm_id));
	util_strlcpy(tc->bastion_id, bastion_id, sizeof(tc->bastion_id));
	util_strlcpy(tc->auth_type, r->auth_type, sizeof(tc->auth_type));
	util_strlcpy(tc->source, c->req->remote_addr, sizeof(tc->source));
	util_strlcpy(tc->p.ip, ip, sizeof(tc->p.ip));
	util_strlcpy(tc->p.username, r->username, sizeof(tc->p.username));
	tc->p.port = (uint16_t)json_integer_value(json_object_get(vm, "ssh_port"));
	if (tc->p.port == 0)
		tc->p.port = 22;
	tc->p.cols = r->cols;
	tc->p.rows = r->rows;
	tc->p.connect_timeout_ms = 10000;
	json_array_foreach (json_object_get(vm, "ssh_legacy_algorithms"), i, k) {
		int bit = sshc_legacy_algo(json_string_value(k));

		if (bit >= 0)
			tc->p.legacy_algos |= 1u << bit;
	}

	if (r->password) {
		tc->p.auth = SSHC_AUTH_PASSWORD;
		tc->p.password = strdup(r->password);
		if (!tc->p.password)
			goto oom;
	} else {
		tc->p.auth = SSHC_AUTH_KEY;
		rc = r->private_key_len > API_MAX_PRIVATE_KEY
			     ? -BERR_BADKEY
			     : sshc_key_import(r->private_key, r->private_key_len, r->passphrase,
					       &tc->p.key, &reason);
		if (rc == -ENOMEM)
			goto oom;
		if (rc == -EBUSY) {
			/* The key gate is full: answer now rather than queue a
			 * worker thread behind other decryptions. */
			metrics_key_decrypt_busy();
			api_header(c->resp, "Retry-After", "2");
			api_error(c->resp, 503, "ServiceUnavailable", "%s", reason);
			term_connect_free(tc);
			return;
		}
		if (rc < 0) {
			api_error(c->resp, 400, "InvalidPrivateKey", "auth.%s: %s",
				  r->vault ? "secret" : "private_key",
				  reason ? reason : "not a private key in a supported format");
			term_connect_free(tc);
			return;
		}
	}

	/* Pinned keys win; otherwise the keys recorded on first use. */
	tc->host_keys_pinned = json_array_size(keys) > 0;
	if (!tc->host_keys_pinned) {
		if ((rc = store_hostkey_get(c->ctx->store, vm_id, &recorded)) < 0) {
			api_store_error(c->resp, rc, vm_id);
			term_connect_free(tc);
			return;
		}
		keys = recorded;
	}
	tc->host_keys = calloc(json_array_size(keys) + 1, sizeof(char *));
	if (!tc->host_keys)
		goto oom;
	json_array_foreach (keys, i, k) {
		if (!json_is_string(k))
			continue;
		tc->host_keys[tc->n_host_keys] = strdup(json_string_value(k));
		if (!tc->host_keys[tc->n_host_keys])
			goto oom;
		tc->n_host_keys++;
	}
	json_decref(recorded);
	c->resp->next = term_connect_next;
	c->resp->next_arg = tc;
	c->resp->status = 201; /* provisional: the loop answers */
	return;
oom:
	json_decref(recorded);
	term_connect_free(tc);
	api_error(c->resp, 503, "ServiceUnavailable", "out of memory");
}

static void wipe_json_string(json_t *v)
{
	/* The body held a secret: wipe jansson's copy before it is freed. */
	if (json_is_string(v))
		sodium_memzero((char *)json_string_value(v), json_string_length(v));
}

void api_connect_refused(struct api_call *c, const char *vm_id, json_t *d)
{
	json_t *err = json_object_get(c->resp->body, "error");
	const char *code = json_string_value(json_object_get(err, "code"));
	const char *msg = json_string_value(json_object_get(err, "message"));
	char principal[80], *detail = NULL;

	code = code ? code : "InternalError";
	metrics_connect_result(code);
	snprintf(principal, sizeof(principal), "user:%s", c->who->name);
	if (d) {
		json_object_set_new(d, "source", json_string(c->req->remote_addr));
		if (msg)
			json_object_set_new(d, "message", json_string(msg));
		detail = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
		json_decref(d);
	}
	if (store_audit(c->ctx->store, principal, "connect", vm_id[0] ? vm_id : NULL, code,
			detail) < 0)
		log_warn("audit: could not record a refused connect to %s", vm_id);
	free(detail);
}

/* A connect refused here (rows 2-8) is audited like one refused on the
 * loop: result code, auth type, source. Never anything from auth but its
 * type. */
static void audit_refusal(struct api_call *c, const char *vm_id, const struct connect_req *r)
{
	api_connect_refused(
		c, vm_id,
		json_pack("{s:s?,s:s?}", "auth_type", r->auth_type, "bastion", r->bastion));
}

/* Rows 3-6 and the destination policy, shared by connect and the native
 * client's stream (stream.c): see connect.h. */
int api_connect_target(struct api_call *c, const char *bastion_arg, struct connect_target *t)
{
	struct pick p = { .c = c };
	const char *nic_id, *ip;
	json_t *nic = NULL, *net = NULL, *chain[3];
	struct cidr_ip addr;
	char why[256];
	int rc = -EACCES;

	/* Row 3: the VM. The role is checked before existence, so that only a
	 * caller who may read the scope learns whether the VM is there. */
	snprintf(t->vm_id, sizeof(t->vm_id), "/groups/%s/vms/%s", c->seg[1], c->seg[3]);
	if (require_reader(c, t->vm_id) < 0)
		goto out;
	if (!val_name(c->seg[1]) || !val_name(c->seg[3])) {
		api_error(c->resp, 404, "ResourceNotFound", "VM %s was not found", t->vm_id);
		goto out;
	}
	/* The VM, its NIC and the NIC's network in one read (one round trip
	 * on PostgreSQL); each is still checked in its row's turn. */
	if ((rc = store_res_get_chain(c->ctx->store, t->vm_id, "nic", "network", chain)) < 0) {
		api_store_error(c->resp, rc, t->vm_id);
		goto out;
	}
	t->vm = chain[0];
	nic = chain[1];
	net = chain[2];
	rc = -EACCES;
	/* Row 4: its NIC. */
	nic_id = json_string_value(json_object_get(t->vm, "nic"));
	if (!nic_id || !nic) {
		api_error(c->resp, 404, "ResourceNotFound", "the NIC of %s was not found",
			  t->vm_id);
		goto out;
	}
	if (require_reader(c, nic_id) < 0)
		goto out;
	util_strlcpy(t->net_id, json_string_value(json_object_get(nic, "network")) ?: "",
		     sizeof(t->net_id));
	/* Row 5: the bastion, named or the only one serving the network. */
	if (bastion_arg) {
		if (val_res_id(bastion_arg, "bastions", NULL, NULL, NULL) < 0) {
			api_error(c->resp, 400, "InvalidRequest",
				  "bastion: must be an ID like /groups/{g}/bastions/{name}");
			goto out;
		}
		if (require_reader(c, bastion_arg) < 0)
			goto out;
		if ((rc = store_res_get(c->ctx->store, bastion_arg, &t->bastion)) < 0) {
			if (rc == -ENOENT)
				api_error(c->resp, 400, "InvalidRequest",
					  "bastion: %s does not exist", bastion_arg);
			else
				api_store_error(c->resp, rc, bastion_arg);
			goto out;
		}
		rc = -EACCES;
		util_strlcpy(t->bastion_id, bastion_arg, sizeof(t->bastion_id));
	} else {
		p.network = t->net_id;
		if ((rc = store_res_foreach_type(c->ctx->store, "bastions", pick_one, &p)) < 0) {
			api_store_error(c->resp, rc, "bastions");
			goto out;
		}
		rc = -EACCES;
		/* docs/api.md "Connect": omitting it works only when exactly one fits. None
		 * the caller may read, but some serve the network: name the
		 * role and the bastion, as rows 3 and 4 do (the caller reads
		 * the VM and NIC, so it may learn what serves their network). */
		if (p.n == 0 && p.hidden == 1) {
			api_error(c->resp, 403, "AuthorizationFailed",
				  "Reader on %s is required (the bastion that serves network %s)",
				  p.hidden1, t->net_id);
			goto out;
		}
		if (p.n == 0 && p.hidden > 1) {
			api_error(c->resp, 403, "AuthorizationFailed",
				  "Reader on one of the %d bastions that serve network %s is "
				  "required (e.g. %s); then name it in bastion",
				  p.hidden, t->net_id, p.hidden1);
			goto out;
		}
		if (p.n == 0) {
			api_error(c->resp, 400, "InvalidRequest",
				  "bastion: required; no bastion serves network %s", t->net_id);
			goto out;
		}
		if (p.n > 1) {
			api_error(c->resp, 400, "InvalidRequest",
				  "bastion: required; %d bastions serve network %s, name one", p.n,
				  t->net_id);
			goto out;
		}
		util_strlcpy(t->bastion_id, p.found, sizeof(t->bastion_id));
		if ((rc = store_res_get(c->ctx->store, t->bastion_id, &t->bastion)) < 0) {
			api_store_error(c->resp, rc, t->bastion_id);
			goto out;
		}
		rc = -EACCES;
	}
	/* Row 6: the bastion serves the NIC's network, and the NIC's address
	 * really lies in that network (checked again: never dial elsewhere). */
	if (!bastion_serves(t->bastion, t->net_id)) {
		api_error(c->resp, 409, "NetworkNotServed", "%s does not serve network %s",
			  t->bastion_id, t->net_id);
		goto out;
	}
	ip = json_string_value(json_object_get(nic, "private_ip"));
	if (!ip || cidr_ip_parse(ip, &addr) < 0 || !net) {
		api_error(c->resp, 409, "NetworkNotServed", "the NIC %s has no usable address",
			  nic_id);
		goto out;
	} else {
		bool inside = false;
		size_t i;
		json_t *pfx;
		struct cidr cidr;

		json_array_foreach (json_object_get(net, "address_prefixes"), i, pfx)
			inside = inside || (json_is_string(pfx) &&
					    cidr_parse(json_string_value(pfx), &cidr) == 0 &&
					    cidr_contains(&cidr, &addr));
		if (!inside) {
			api_error(c->resp, 409, "NetworkNotServed",
				  "the address of %s is outside network %s", nic_id, t->net_id);
			goto out;
		}
	}
	/* Between rows 6 and 7: the operator's destination policy, on the
	 * address that will be dialled (docs/security.md "Destination policy"), before any secret is read. */
	if (authz_dest_check(&addr, why, sizeof(why)) < 0) {
		api_error(c->resp, 403, "DestinationNotAllowed", "%s", why);
		goto out;
	}
	cidr_ip_str(&addr, t->ip, sizeof(t->ip));
	rc = 0;
out:
	json_decref(nic);
	json_decref(net);
	return rc;
}

void api_connect_target_done(struct connect_target *t)
{
	json_decref(t->vm);
	json_decref(t->bastion);
	t->vm = t->bastion = NULL;
}

void api_connect(struct api_call *c)
{
	struct connect_req r = { 0 };
	struct connect_target t = { 0 };
	json_t *auth;
	struct vault_value *key = NULL;

	/* Row 2. */
	if (parse_body(c, &r) < 0)
		goto out;
	/* Rows 3-6 and the destination policy. */
	if (api_connect_target(c, r.bastion, &t) < 0) {
		if (t.bastion_id[0])
			r.bastion = t.bastion_id;
		goto out;
	}
	r.bastion = t.bastion_id;
	/* Row 7: a key from the vault. */
	if (r.vault) {
		if (read_vault_key(c, &r, &key) < 0)
			goto out;
		r.private_key = key->data;
		r.private_key_len = key->len;
	}
	/* Row 8 and on: */
	build_connect(c, &r, t.vm_id, t.bastion_id, t.vm, t.ip);
	/* A recording bastion: no recording, no session (SPEC §8). */
	if (c->resp->next == term_connect_next &&
	    api_recording_prepare(c, t.bastion, c->resp->next_arg) < 0) {
		term_connect_free(c->resp->next_arg);
		c->resp->next = NULL;
		c->resp->next_arg = NULL;
	}
out:
	if (c->resp->status >= 400)
		audit_refusal(c, t.vm_id, &r);
	auth = json_object_get(c->body, "auth");
	wipe_json_string(json_object_get(auth, "password"));
	wipe_json_string(json_object_get(auth, "private_key"));
	wipe_json_string(json_object_get(auth, "passphrase"));
	vault_value_free(key);
	api_connect_target_done(&t);
}

static void session_next(struct api_call *c, api_next_fn *next)
{
	struct term_attach *ta = calloc(1, sizeof(*ta));

	if (!ta) {
		api_error(c->resp, 503, "ServiceUnavailable", "out of memory");
		return;
	}
	ta->user_id = c->who->user_id;
	util_strlcpy(ta->user, c->who->name, sizeof(ta->user));
	util_strlcpy(ta->session_id, c->seg[1], sizeof(ta->session_id));
	c->resp->next = next;
	c->resp->next_arg = ta;
	c->resp->status = 204; /* provisional: the loop answers */
}

void api_terminal(struct api_call *c)
{
	if (!api_session_ws_here(c, "the terminal may only be opened"))
		return;
	session_next(c, term_attach_next);
}
