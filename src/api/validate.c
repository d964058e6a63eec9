/* Validation of names, resource IDs, IP addresses, CIDRs and resource
 * properties. Everything here is pure: no store, no I/O, no logging.
 *
 * Decisions recorded here (and relied on by api/resources.c):
 * - Names, types and IDs are case-sensitive everywhere, and ASCII only:
 *   "Prod" and "prod" are two different groups, and lists sort by bytes.
 * - Addresses are parsed strictly: IPv4 is a dotted quad of decimal octets
 *   without leading zeros; IPv6 goes through inet_pton() after refusing
 *   zone ids ("%eth0"), brackets and whitespace; a CIDR always has a prefix
 *   length, and its host bits must be zero.
 * - Address families never mix: an IPv4-mapped IPv6 address
 *   (::ffff:198.18.0.5) is not inside an IPv4 prefix, and a NIC may not use
 *   one as its private_ip at all (the message says which IPv4 address to
 *   write instead). This keeps "the bastion dials only addresses inside the
 *   networks it serves" true on dual-stack sockets.
 * - Stored values are canonical: addresses and CIDRs as inet_ntop() writes
 *   them, host keys as "type base64". GET shows the canonical form, and
 *   PUTting it back changes nothing.
 * - Duplicates inside one list (prefixes, bastion networks, host keys) are
 *   errors rather than silently merged, so that what is stored is what was
 *   sent. Overlapping (but different) prefixes are allowed.
 * - An optional property given as null takes its default. */
#include "api/validate.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ssh/sshc.h"

#define MAX_PREFIXES             64
#define MAX_BASTION_NETWORKS     64
#define MAX_BASTION_TUNNEL_PORTS 64
#define MAX_HOST_KEYS            16
#define MAX_HOST_KEY_LEN         8192
#define MAX_STRING               1024 /* any other string property */

/* ---- names and types ---- */

static bool is_alnum(char c)
{
	/* Not isalnum(): that depends on the locale. */
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool val_name(const char *s)
{
	size_t n;

	if (!s || !is_alnum(s[0]))
		return false;
	for (n = 1; s[n]; n++) {
		if (n >= VAL_NAME_SIZE - 1)
			return false;
		if (!is_alnum(s[n]) && s[n] != '.' && s[n] != '_' && s[n] != '-')
			return false;
	}
	return true;
}

struct refs {
	char **v; /* NULL-terminated once non-empty */
	size_t n;
};

/* One entry per resource type. props lists the properties a PUT body may
 * hold (besides the ignored id, type and name); parse checks and normalizes
 * them into out and collects the IDs the resource refers to. */
struct res_type {
	const char *name;
	const char *const *props;
	int (*parse)(const json_t *body, json_t *out, struct refs *refs, char *msg);
};

static int parse_networks(const json_t *body, json_t *out, struct refs *refs, char *msg);
static int parse_nics(const json_t *body, json_t *out, struct refs *refs, char *msg);
static int parse_vms(const json_t *body, json_t *out, struct refs *refs, char *msg);
static int parse_bastions(const json_t *body, json_t *out, struct refs *refs, char *msg);
static int parse_vaults(const json_t *body, json_t *out, struct refs *refs, char *msg);

static const char *const networks_props[] = { "address_prefixes", NULL };
static const char *const nics_props[] = { "network", "private_ip", NULL };
static const char *const vms_props[] = { "nic", "ssh_port", "host_keys", "ssh_legacy_algorithms",
					 NULL };
static const char *const bastions_props[] = { "networks", "tunnel_ports", "recording", NULL };
static const char *const vaults_props[] = { "soft_delete_retention_days", NULL };

static const struct res_type res_types[] = {
	{ "networks", networks_props, parse_networks },
	{ "nics", nics_props, parse_nics },
	{ "vms", vms_props, parse_vms },
	{ "bastions", bastions_props, parse_bastions },
	{ "vaults", vaults_props, parse_vaults },
};
#define N_TYPES (sizeof(res_types) / sizeof(res_types[0]))

static const struct res_type *type_find(const char *type)
{
	if (!type)
		return NULL;
	for (size_t i = 0; i < N_TYPES; i++)
		if (strcmp(res_types[i].name, type) == 0)
			return &res_types[i];
	return NULL;
}

bool val_res_type(const char *type)
{
	return type_find(type) != NULL;
}

const char *val_res_type_at(size_t i)
{
	return i < N_TYPES ? res_types[i].name : NULL;
}

/* ---- addresses (parsing is core/cidr.c) ---- */

bool val_prefixes_contain(const json_t *prefixes, const struct cidr_ip *ip)
{
	size_t i;
	const json_t *v;

	if (!json_is_array(prefixes))
		return false;
	json_array_foreach (prefixes, i, v) {
		struct cidr c;

		if (json_is_string(v) && cidr_parse(json_string_value(v), &c) == 0 &&
		    cidr_contains(&c, ip))
			return true;
	}
	return false;
}

/* ---- resource IDs ---- */

/* Copies the segment [s, end) into out (size bytes) if it fits. */
static int seg_copy(const char *s, const char *end, char *out, size_t size)
{
	size_t n = (size_t)(end - s);

	if (n == 0 || n >= size)
		return -EINVAL;
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

int val_res_id(const char *id, const char *want_type, char *ret_group, char *ret_type,
	       char *ret_name)
{
	static const char prefix[] = "/groups/";
	char group[VAL_NAME_SIZE], type[VAL_TYPE_SIZE], name[VAL_NAME_SIZE];
	const char *p, *slash;

	if (!id || strncmp(id, prefix, sizeof(prefix) - 1) != 0)
		return -EINVAL;
	p = id + sizeof(prefix) - 1;
	if (!(slash = strchr(p, '/')) || seg_copy(p, slash, group, sizeof(group)) < 0)
		return -EINVAL;
	p = slash + 1;
	if (!(slash = strchr(p, '/')) || seg_copy(p, slash, type, sizeof(type)) < 0)
		return -EINVAL;
	p = slash + 1;
	if (seg_copy(p, p + strlen(p), name, sizeof(name)) < 0)
		return -EINVAL;
	/* val_name() refuses '/', so a fourth segment fails here. */
	if (!val_name(group) || !val_name(name) || !val_res_type(type))
		return -EINVAL;
	if (want_type && strcmp(type, want_type) != 0)
		return -EINVAL;
	if (ret_group)
		memcpy(ret_group, group, sizeof(group));
	if (ret_type)
		memcpy(ret_type, type, sizeof(type));
	if (ret_name)
		memcpy(ret_name, name, sizeof(name));
	return 0;
}

bool val_scope(const char *s)
{
	if (strcmp(s, "/") == 0)
		return true;
	if (strncmp(s, "/groups/", 8) == 0 && val_name(s + 8))
		return true;
	return val_res_id(s, NULL, NULL, NULL, NULL) == 0;
}

/* ---- properties ---- */

static void msgf(char *msg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void msgf(char *msg, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, VAL_MSG, fmt, ap);
	va_end(ap);
}

#define ECHO_SIZE 72

/* User text made safe for a message: bytes outside printable ASCII become
 * '?', and more than 64 characters end in "...". Messages stay ASCII, so
 * cutting one short never splits a UTF-8 sequence. */
static const char *echo(const char *s, char out[ECHO_SIZE])
{
	size_t i;

	for (i = 0; s && s[i] && i < 64; i++)
		out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	if (s && s[i]) {
		memcpy(out + i, "...", 4);
		return out;
	}
	out[i] = '\0';
	return out;
}

static int refs_add(struct refs *r, const char *id)
{
	char **v = reallocarray(r->v, r->n + 2, sizeof(*v));

	if (!v)
		return -ENOMEM;
	r->v = v;
	if (!(v[r->n] = strdup(id)))
		return -ENOMEM;
	v[++r->n] = NULL;
	return 0;
}

void val_refs_free(char **refs)
{
	if (!refs)
		return;
	for (char **p = refs; *p; p++)
		free(*p);
	free(refs);
}

/* The string value of v if it is a string of at most max bytes without an
 * embedded NUL, else NULL. */
static const char *str_of(const json_t *v, size_t max)
{
	const char *s;

	if (!json_is_string(v))
		return NULL;
	s = json_string_value(v);
	if (json_string_length(v) != strlen(s) || strlen(s) > max)
		return NULL;
	return s;
}

static int oom(char *msg)
{
	msgf(msg, "out of memory");
	return -ENOMEM;
}

/* A reference property: a string holding the ID of a resource of type. */
static int ref_field(const json_t *v, const char *field, const char *type, const char *what,
		     const char **ret, char *msg)
{
	const char *s = str_of(v, VAL_ID_SIZE);

	if (!v) {
		msgf(msg, "%s: required: the ID of %s, /groups/{group}/%s/{name}", field, what,
		     type);
		return -EINVAL;
	}
	if (!s || val_res_id(s, type, NULL, NULL, NULL) < 0) {
		msgf(msg,
		     "%s: must be the ID of %s, /groups/{group}/%s/{name} (names: letters, digits, "
		     "'.', '_', '-', starting with a letter or digit, at most 64)",
		     field, what, type);
		return -EINVAL;
	}
	*ret = s;
	return 0;
}

static int parse_networks(const json_t *body, json_t *out, struct refs *refs, char *msg)
{
	const json_t *a = json_object_get(body, "address_prefixes"), *v;
	struct cidr seen[MAX_PREFIXES];
	json_t *norm;
	size_t i;

	if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > MAX_PREFIXES) {
		msgf(msg,
		     "address_prefixes: %s an array of 1 to %d CIDR strings such as "
		     "\"198.18.0.0/24\" or \"2001:db8::/64\"",
		     a ? "must be" : "required:", MAX_PREFIXES);
		return -EINVAL;
	}
	if (!(norm = json_array()))
		return oom(msg);
	json_array_foreach (a, i, v) {
		const char *s = str_of(v, CIDR_STRLEN);
		char text[CIDR_STRLEN], net[CIDR_STRLEN];
		struct cidr c;
		int r;

		if (!s) {
			msgf(msg,
			     "address_prefixes[%zu]: must be a CIDR string such as \"198.18.0.0/24\"",
			     i);
			goto fail;
		}
		r = cidr_parse_loose(s, &c);
		if (r == -ERANGE) {
			bool v6 = strchr(s, ':') != NULL;

			msgf(msg,
			     "address_prefixes[%zu]: \"%s\": the prefix length must be 0 to %d for %s",
			     i, s, v6 ? 128 : 32, v6 ? "IPv6" : "IPv4");
			goto fail;
		}
		if (r < 0) {
			char e[ECHO_SIZE];

			msgf(msg,
			     "address_prefixes[%zu]: \"%s\" is not a CIDR: write an IPv4 address (dotted "
			     "quad, no leading zeros) or an IPv6 address (no zone id), '/', and a prefix "
			     "length",
			     i, echo(s, e));
			goto fail;
		}
		cidr_str(&c, text, sizeof(text));
		if (!cidr_host_bits_zero(&c)) {
			struct cidr m = c;

			cidr_mask(&m);
			cidr_str(&m, net, sizeof(net));
			msgf(msg,
			     "address_prefixes[%zu]: %s has host bits set: the network address would be %s",
			     i, s, net);
			goto fail;
		}
		for (size_t j = 0; j < i; j++) {
			if (seen[j].ip.family == c.ip.family && seen[j].prefix == c.prefix &&
			    memcmp(seen[j].ip.addr, c.ip.addr, sizeof(c.ip.addr)) == 0) {
				msgf(msg,
				     "address_prefixes[%zu]: %s is already listed at address_prefixes[%zu]",
				     i, text, j);
				goto fail;
			}
		}
		seen[i] = c;
		if (json_array_append_new(norm, json_string(text)) < 0) {
			json_decref(norm);
			return oom(msg);
		}
	}
	if (json_object_set_new(out, "address_prefixes", norm) < 0)
		return oom(msg);
	return 0;
fail:
	json_decref(norm);
	return -EINVAL;
}

static int parse_nics(const json_t *body, json_t *out, struct refs *refs, char *msg)
{
	const json_t *v = json_object_get(body, "private_ip");
	const char *network, *s;
	char text[INET6_ADDRSTRLEN], v4[INET6_ADDRSTRLEN];
	struct cidr_ip ip;

	if (ref_field(json_object_get(body, "network"), "network", "networks", "a network",
		      &network, msg) < 0)
		return -EINVAL;
	if (!v) {
		msgf(msg,
		     "private_ip: required: an IPv4 or IPv6 address inside one of the network's "
		     "address_prefixes");
		return -EINVAL;
	}
	if (!(s = str_of(v, INET6_ADDRSTRLEN)) || cidr_ip_parse(s, &ip) < 0) {
		msgf(msg,
		     "private_ip: must be an IP address: IPv4 as a dotted quad without leading zeros "
		     "(198.18.0.5), or IPv6 without zone id or brackets (2001:db8::5)");
		return -EINVAL;
	}
	if (cidr_ip_is_v4mapped(&ip)) {
		struct cidr_ip plain = { .family = AF_INET };

		memcpy(plain.addr, ip.addr + 12, 4);
		cidr_ip_str(&plain, v4, sizeof(v4));
		msgf(msg,
		     "private_ip: %s is an IPv4-mapped IPv6 address, which is not allowed: write %s",
		     s, v4);
		return -EINVAL;
	}
	cidr_ip_str(&ip, text, sizeof(text));
	if (json_object_set_new(out, "network", json_string(network)) < 0 ||
	    json_object_set_new(out, "private_ip", json_string(text)) < 0 ||
	    refs_add(refs, network) < 0)
		return oom(msg);
	return 0;
}

/* ssh_legacy_algorithms: names from the fixed allowlist of src/ssh/algos.c,
 * each once; absent or null is the empty list (modern algorithms only). */
static int parse_legacy_algos(const json_t *v, json_t *out, char *msg)
{
	char names[512] = "";
	size_t i, o = 0;
	json_t *norm, *item;

	for (int k = 0; sshc_legacy_algo_name(k) != NULL; k++)
		o += (size_t)snprintf(names + o, sizeof(names) - o, "%s%s", k ? ", " : "",
				      sshc_legacy_algo_name(k));
	if (v && !json_is_null(v) && !json_is_array(v)) {
		msgf(msg, "ssh_legacy_algorithms: must be an array of names from: %s", names);
		return -EINVAL;
	}
	if (!(norm = json_array()))
		return oom(msg);
	json_array_foreach (v, i, item) {
		const char *name = str_of(item, 64);

		if (!name || sshc_legacy_algo(name) < 0) {
			msgf(msg, "ssh_legacy_algorithms[%zu]: not on the allowlist: %s", i, names);
			json_decref(norm);
			return -EINVAL;
		}
		for (size_t j = 0; j < json_array_size(norm); j++) {
			if (strcmp(json_string_value(json_array_get(norm, j)), name) == 0) {
				msgf(msg, "ssh_legacy_algorithms[%zu]: \"%s\" is listed twice", i,
				     name);
				json_decref(norm);
				return -EINVAL;
			}
		}
		if (json_array_append_new(norm, json_string(name)) < 0) {
			json_decref(norm);
			return oom(msg);
		}
	}
	if (json_object_set_new(out, "ssh_legacy_algorithms", norm) < 0)
		return oom(msg);
	return 0;
}

static int parse_vms(const json_t *body, json_t *out, struct refs *refs, char *msg)
{
	const json_t *port = json_object_get(body, "ssh_port"),
		     *keys = json_object_get(body, "host_keys");
	const json_t *v;
	const char *nic;
	json_int_t p = 22;
	json_t *norm;
	size_t i;

	if (ref_field(json_object_get(body, "nic"), "nic", "nics", "a NIC", &nic, msg) < 0)
		return -EINVAL;
	if (port && !json_is_null(port)) {
		/* A string "22" or a real 22.0 is refused: JSON has integers. */
		if (!json_is_integer(port) || json_integer_value(port) < 1 ||
		    json_integer_value(port) > 65535) {
			msgf(msg,
			     "ssh_port: must be an integer from 1 to 65535 (a JSON number, not a "
			     "string); the default is 22");
			return -EINVAL;
		}
		p = json_integer_value(port);
	}
	if (keys && !json_is_null(keys) &&
	    (!json_is_array(keys) || json_array_size(keys) > MAX_HOST_KEYS)) {
		msgf(msg,
		     "host_keys: must be an array of at most %d strings, each a known_hosts line or "
		     "\"type base64\"",
		     MAX_HOST_KEYS);
		return -EINVAL;
	}
	if (!(norm = json_array()))
		return oom(msg);
	json_array_foreach (keys, i, v) {
		const char *s = str_of(v, MAX_HOST_KEY_LEN);
		char *type = NULL, *b64 = NULL;
		json_t *line;

		if (!s || sshc_hostkey_parse(s, &type, &b64) < 0) {
			msgf(msg,
			     "host_keys[%zu]: not a public host key: give a known_hosts line or "
			     "\"type base64\", e.g. \"ssh-ed25519 AAAAC3Nza...\" (at most %d characters)",
			     i, MAX_HOST_KEY_LEN);
			goto fail;
		}
		line = json_sprintf("%s %s", type, b64);
		free(type);
		free(b64);
		if (!line) {
			json_decref(norm);
			return oom(msg);
		}
		for (size_t j = 0; j < json_array_size(norm); j++) {
			if (json_equal(json_array_get(norm, j), line)) {
				json_decref(line);
				msgf(msg, "host_keys[%zu]: the same key as host_keys[%zu]", i, j);
				goto fail;
			}
		}
		if (json_array_append_new(norm, line) < 0) {
			json_decref(norm);
			return oom(msg);
		}
	}
	if (json_object_set_new(out, "nic", json_string(nic)) < 0 ||
	    json_object_set_new(out, "ssh_port", json_integer(p)) < 0 ||
	    json_object_set_new(out, "host_keys", norm) < 0 || refs_add(refs, nic) < 0)
		return oom(msg);
	return parse_legacy_algos(json_object_get(body, "ssh_legacy_algorithms"), out, msg);
fail:
	json_decref(norm);
	return -EINVAL;
}

/* The ports a native client may open streams to besides each VM's ssh_port
 * (docs/native-client.md): distinct integers 1-65535, default []. */
static int parse_tunnel_ports(const json_t *body, json_t *out, char *msg)
{
	const json_t *a = json_object_get(body, "tunnel_ports"), *v;
	json_t *norm;
	size_t i;

	if (a && !json_is_null(a) &&
	    (!json_is_array(a) || json_array_size(a) > MAX_BASTION_TUNNEL_PORTS)) {
		msgf(msg, "tunnel_ports: must be an array of at most %d port numbers (1 to 65535)",
		     MAX_BASTION_TUNNEL_PORTS);
		return -EINVAL;
	}
	if (!(norm = json_array()))
		return oom(msg);
	json_array_foreach (a, i, v) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > 65535) {
			msgf(msg, "tunnel_ports[%zu]: must be an integer from 1 to 65535", i);
			goto fail;
		}
		for (size_t j = 0; j < i; j++) {
			if (json_integer_value(json_array_get(a, j)) == json_integer_value(v)) {
				msgf(msg,
				     "tunnel_ports[%zu]: %lld is already listed at tunnel_ports[%zu]",
				     i, (long long)json_integer_value(v), j);
				goto fail;
			}
		}
		if (json_array_append_new(norm, json_integer(json_integer_value(v))) < 0) {
			json_decref(norm);
			return oom(msg);
		}
	}
	if (json_object_set_new(out, "tunnel_ports", norm) < 0)
		return oom(msg);
	return 0;
fail:
	json_decref(norm);
	return -EINVAL;
}

static int parse_bastions(const json_t *body, json_t *out, struct refs *refs, char *msg)
{
	const json_t *a = json_object_get(body, "networks"), *v;
	json_t *norm;
	size_t i;

	if (!json_is_array(a) || json_array_size(a) == 0 ||
	    json_array_size(a) > MAX_BASTION_NETWORKS) {
		msgf(msg,
		     "networks: %s an array of 1 to %d network IDs, /groups/{group}/networks/{name}",
		     a ? "must be" : "required:", MAX_BASTION_NETWORKS);
		return -EINVAL;
	}
	if (!(norm = json_array()))
		return oom(msg);
	json_array_foreach (a, i, v) {
		const char *s = str_of(v, VAL_ID_SIZE);

		if (!s || val_res_id(s, "networks", NULL, NULL, NULL) < 0) {
			msgf(msg,
			     "networks[%zu]: must be the ID of a network, /groups/{group}/networks/{name}",
			     i);
			goto fail;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(json_string_value(json_array_get(a, j)), s) == 0) {
				msgf(msg, "networks[%zu]: %s is already listed at networks[%zu]", i,
				     s, j);
				goto fail;
			}
		}
		if (json_array_append_new(norm, json_string(s)) < 0 || refs_add(refs, s) < 0) {
			json_decref(norm);
			return oom(msg);
		}
	}
	if (json_object_set_new(out, "networks", norm) < 0)
		return oom(msg);
	/* SPEC §8: absent means "off"; kept as given when given. */
	if ((v = json_object_get(body, "recording"))) {
		const char *m = json_string_value(v);

		if (!m || (strcmp(m, "off") != 0 && strcmp(m, "output") != 0 &&
			   strcmp(m, "input_output") != 0)) {
			msgf(msg, "recording: must be \"off\", \"output\" or \"input_output\"");
			return -EINVAL;
		}
		if (json_object_set_new(out, "recording", json_string(m)) < 0)
			return oom(msg);
	}
	return parse_tunnel_ports(body, out, msg);
fail:
	json_decref(norm);
	return -EINVAL;
}

/* A vault (vault/, docs/vault.md): its secrets and keys live in their own
 * tables; the resource holds only the recovery window of deleted secrets. */
static int parse_vaults(const json_t *body, json_t *out, struct refs *refs, char *msg)
{
	const json_t *v = json_object_get(body, "soft_delete_retention_days");
	json_int_t days = VAL_VAULT_RETENTION_DEFAULT;

	if (v && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < VAL_VAULT_RETENTION_MIN ||
		    json_integer_value(v) > VAL_VAULT_RETENTION_MAX) {
			msgf(msg,
			     "soft_delete_retention_days: must be an integer from %d to %d (days a "
			     "deleted secret can be recovered); the default is %d",
			     VAL_VAULT_RETENTION_MIN, VAL_VAULT_RETENTION_MAX,
			     VAL_VAULT_RETENTION_DEFAULT);
			return -EINVAL;
		}
		days = json_integer_value(v);
	}
	if (json_object_set_new(out, "soft_delete_retention_days", json_integer(days)) < 0)
		return oom(msg);
	return 0;
}

static bool is_ignored(const char *key)
{
	/* GET output carries these; accepting them lets it be PUT back. */
	return strcmp(key, "id") == 0 || strcmp(key, "type") == 0 || strcmp(key, "name") == 0;
}

static bool in_list(const char *const *list, const char *key)
{
	for (; list && *list; list++)
		if (strcmp(*list, key) == 0)
			return true;
	return false;
}

/* Fails naming every property of body that is neither ignored nor in
 * allowed; what describes the allowed set for the message. */
static int check_unknown(const json_t *body, const char *const *allowed, const char *what,
			 char *msg)
{
	char names[VAL_MSG] = "";
	size_t used = 0;
	int n = 0;
	const char *key;
	const json_t *v;

	json_object_foreach ((json_t *)body, key, v) {
		if (is_ignored(key) || in_list(allowed, key))
			continue;
		if (used < sizeof(names)) {
			char e[ECHO_SIZE];
			int w = snprintf(names + used, sizeof(names) - used, "%s\"%s\"",
					 n ? ", " : "", echo(key, e));

			used += w > 0 ? (size_t)w : 0;
		}
		n++;
	}
	if (n == 0)
		return 0;
	msgf(msg, "unknown propert%s %s; %s", n == 1 ? "y" : "ies", names, what);
	return -EINVAL;
}

static void allowed_text(const char *const *props, char *out, size_t size)
{
	size_t used = 0;

	out[0] = '\0';
	for (const char *const *p = props; *p && used < size; p++) {
		int w = snprintf(out + used, size - used, "%s%s", p == props ? "" : ", ", *p);

		used += w > 0 ? (size_t)w : 0;
	}
}

int val_group_body(const json_t *body, char msg[VAL_MSG])
{
	if (!json_is_object(body)) {
		msgf(msg, "body: must be a JSON object");
		return -EINVAL;
	}
	return check_unknown(body, NULL, "a group has no properties: send {}", msg);
}

int val_res_props(const char *type, const json_t *body, json_t **ret_props, char ***ret_refs,
		  char msg[VAL_MSG])
{
	const struct res_type *t = type_find(type);
	struct refs refs = { 0 };
	char allowed[128], what[160], e[ECHO_SIZE];
	json_t *out = NULL;
	int r;

	if (!t) {
		msgf(msg,
		     "type: \"%s\" is not a resource type; allowed: networks, nics, vms, bastions, vaults",
		     echo(type, e));
		return -EINVAL;
	}
	if (!json_is_object(body)) {
		msgf(msg, "body: must be a JSON object");
		return -EINVAL;
	}
	allowed_text(t->props, allowed, sizeof(allowed));
	snprintf(what, sizeof(what), "allowed for %s: %s", t->name, allowed);
	if ((r = check_unknown(body, t->props, what, msg)) < 0)
		return r;
	if (!(out = json_object()))
		return oom(msg);
	if ((r = t->parse(body, out, &refs, msg)) < 0)
		goto fail;
	if (!refs.v && !(refs.v = calloc(1, sizeof(*refs.v)))) {
		r = oom(msg);
		goto fail;
	}
	*ret_props = out;
	*ret_refs = refs.v;
	return 0;
fail:
	json_decref(out);
	val_refs_free(refs.v);
	return r;
}
