/* Configuration: one table of keys, filled from defaults, an INI file,
 * BASTION_* variables and flags, in that order. */
#include "core/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <ini.h>

#include "core/buf.h"
#include "core/cidr.h"
#include "core/file.h"
#include "core/util.h"

enum cfg_type {
	T_STR,
	T_PATH,
	T_LEVEL,
	T_LOGFMT,
	T_LISTEN,
	T_DURATION,
	T_INT,
	T_DEST,
	T_STORE,
	T_BOOL,    /* true or false, held as 0 or 1 */
	T_URL,     /* empty, or an https:// URL (http:// on a loopback host only) */
	T_OIDCMAP, /* rows "GROUP ROLE SCOPE", ','-separated; the key may repeat */
	T_ONOFF,
	T_PROXYPROTO, /* off, v1, v2 or any */
	T_CIDRS,      /* a CIDR list, or empty */
};

struct key {
	const char *section, *name, *flag, *env;
	enum cfg_type type;
	size_t off, size; /* where in struct cfg; size for strings */
	const char *def;  /* default, as text */
	int64_t min, max; /* for T_INT and T_DURATION */
	bool live;        /* SIGHUP applies a change without a restart */
};

#define STR(f) offsetof(struct cfg, f), sizeof(((struct cfg *)0)->f)
#define NUM(f) offsetof(struct cfg, f), sizeof(int64_t)
#define DAY    (24 * 3600)

static const struct key keys[] = {
	{ "server", "listen", "listen", "BASTION_LISTEN", T_LISTEN, STR(listen), "0.0.0.0:8443", 0,
	  0, false },
	{ "server", "data", "data", "BASTION_DATA", T_PATH, STR(data_dir), "bastion-data", 0, 0,
	  false },
	{ "server", "user", "user", "BASTION_USER", T_STR, STR(user), "", 0, 0, false },
	/* [store] url: empty, SQLite in the data directory; postgres:// or
	 * postgresql://, that PostgreSQL database (store/store.c). May hold a
	 * password: shown with it masked. */
	{ "store", "url", "store", "BASTION_STORE", T_STORE, STR(store_url), "", 0, 0, false },
	/* This instance among others on one store (docs/scaling.md). */
	{ "server", "instance_name", "instance-name", "BASTION_INSTANCE_NAME", T_STR,
	  STR(instance_name), "", 0, 0, false },
	{ "server", "advertise_url", "advertise-url", "BASTION_ADVERTISE_URL", T_STR,
	  STR(advertise_url), "", 0, 0, false },
	{ "server", "loops", "loops", "BASTION_LOOPS", T_INT, NUM(loops), "0", 0, 64, false },
	{ "server", "log_level", "log-level", "BASTION_LOG_LEVEL", T_LEVEL, STR(log_level), "info",
	  0, 0, true },
	/* The log's format: text for people, json for shippers (log.c). */
	{ "server", "log_format", "log-format", "BASTION_LOG_FORMAT", T_LOGFMT, STR(log_format),
	  "text", 0, 0, true },
	{ "server", "drain_timeout", "drain-timeout", "BASTION_DRAIN_TIMEOUT", T_DURATION,
	  NUM(drain_timeout_s), "10s", 0, 3600, true },
	{ "tls", "cert", "cert", "BASTION_TLS_CERT", T_PATH, STR(cert_file), "", 0, 0, true },
	{ "tls", "key", "key", "BASTION_TLS_KEY", T_PATH, STR(key_file), "", 0, 0, true },
	{ "sessions", "idle_timeout", "idle-timeout", "BASTION_IDLE_TIMEOUT", T_DURATION,
	  NUM(idle_timeout_s), "30m", 0, 30 * DAY, true },
	{ "sessions", "idle_warning", "idle-warning", "BASTION_IDLE_WARNING", T_DURATION,
	  NUM(idle_warning_s), "60s", 0, DAY, true },
	{ "sessions", "max_duration", "max-session-duration", "BASTION_MAX_SESSION_DURATION",
	  T_DURATION, NUM(max_duration_s), "8h", 0, 30 * DAY, true },
	{ "sessions", "max_per_user", "max-sessions-per-user", "BASTION_MAX_SESSIONS_PER_USER",
	  T_INT, NUM(max_per_user), "64", 1, 100000, true },
	{ "sessions", "max_total", "max-sessions", "BASTION_MAX_SESSIONS", T_INT, NUM(max_total),
	  "10000", 1, 1000000, true },
	{ "sessions", "ssh_keepalive", "ssh-keepalive", "BASTION_SSH_KEEPALIVE", T_DURATION,
	  NUM(ssh_keepalive_s), "15s", 0, 3600, true },
	{ "sessions", "browser_ping", "browser-ping", "BASTION_BROWSER_PING", T_DURATION,
	  NUM(browser_ping_s), "10s", 0, 3600, true },
	/* [network]: what the bastion may dial, whatever the networks say. */
	{ "network", "allowed_destinations", "allowed-destinations", "BASTION_ALLOWED_DESTINATIONS",
	  T_DEST, STR(allowed_destinations), CFG_DEST_DEFAULT, 0, 0, true },
	/* [limits]: connections, checked when accepted (src/server/limits.c) */
	{ "limits", "connections_per_address", "connections-per-address",
	  "BASTION_CONNECTIONS_PER_ADDRESS", T_INT, NUM(connections_per_address), "256", 0, 1000000,
	  true },
	{ "limits", "connections", "max-connections", "BASTION_MAX_CONNECTIONS", T_INT,
	  NUM(connections), "0", 0, 100000000, true },
	/* [oidc]: sign-in with an OpenID Connect provider (identity/oidc.c,
	 * docs/sign-in.md). Read at start-up: a change needs a restart. */
	{ "oidc", "issuer", "oidc-issuer", "BASTION_OIDC_ISSUER", T_URL, STR(oidc_issuer), "", 0, 0,
	  false },
	{ "oidc", "client_id", "oidc-client-id", "BASTION_OIDC_CLIENT_ID", T_STR,
	  STR(oidc_client_id), "", 0, 0, false },
	{ "oidc", "client_secret_file", "oidc-client-secret-file",
	  "BASTION_OIDC_CLIENT_SECRET_FILE", T_PATH, STR(oidc_client_secret_file), "", 0, 0,
	  false },
	{ "oidc", "redirect_url", "oidc-redirect-url", "BASTION_OIDC_REDIRECT_URL", T_URL,
	  STR(oidc_redirect_url), "", 0, 0, false },
	{ "oidc", "display_name", "oidc-display-name", "BASTION_OIDC_DISPLAY_NAME", T_STR,
	  STR(oidc_display_name), "single sign-on", 0, 0, false },
	{ "oidc", "username_claim", "oidc-username-claim", "BASTION_OIDC_USERNAME_CLAIM", T_STR,
	  STR(oidc_username_claim), "preferred_username", 0, 0, false },
	{ "oidc", "groups_claim", "oidc-groups-claim", "BASTION_OIDC_GROUPS_CLAIM", T_STR,
	  STR(oidc_groups_claim), "", 0, 0, false },
	{ "oidc", "auto_create", "oidc-auto-create", "BASTION_OIDC_AUTO_CREATE", T_BOOL,
	  NUM(oidc_auto_create), "false", 0, 1, false },
	{ "oidc", "ca_file", "oidc-ca-file", "BASTION_OIDC_CA_FILE", T_PATH, STR(oidc_ca_file), "",
	  0, 0, false },
	{ "oidc", "map", "oidc-map", "BASTION_OIDC_MAP", T_OIDCMAP, STR(oidc_map), "", 0, 0,
	  false },
	/* Retention (issue 19, src/housekeep.c): pruning in small batches. */
	{ "audit", "retention_days", "audit-retention-days", "BASTION_AUDIT_RETENTION_DAYS", T_INT,
	  NUM(audit_retention_days), "0", 0, 36500, true },
	{ "sessions", "retention_days", "sessions-retention-days",
	  "BASTION_SESSIONS_RETENTION_DAYS", T_INT, NUM(sessions_retention_days), "0", 0, 36500,
	  true },
	{ "server", "housekeeping_interval", "housekeeping-interval",
	  "BASTION_HOUSEKEEPING_INTERVAL", T_DURATION, NUM(housekeeping_interval_s), "10m", 1, DAY,
	  true },
	/* The access log (issue 19, server/access.c): a line per request. */
	{ "server", "access_log", "access-log", "BASTION_ACCESS_LOG", T_ONOFF, STR(access_log),
	  "on", 0, 0, true },
	/* Open sessions' byte counters to the store (issue 19, terminal/flush.c). */
	{ "sessions", "counter_flush", "counter-flush", "BASTION_COUNTER_FLUSH", T_DURATION,
	  NUM(counter_flush_s), "30s", 1, 3600, true },
	/* [auth] and [oidc]: second factors (identity/mfa.h, docs/sign-in.md).
	 * require_mfa: a local user without a factor may only enrol one.
	 * trust_amr, mfa_acr: an OpenID provider's own second factor counts
	 * (by its amr claim, or an acr equal to mfa_acr). */
	{ "auth", "require_mfa", "require-mfa", "BASTION_REQUIRE_MFA", T_BOOL, NUM(require_mfa),
	  "false", 0, 1, false },
	{ "oidc", "trust_amr", "oidc-trust-amr", "BASTION_OIDC_TRUST_AMR", T_BOOL,
	  NUM(oidc_trust_amr), "false", 0, 1, false },
	{ "oidc", "mfa_acr", "oidc-mfa-acr", "BASTION_OIDC_MFA_ACR", T_STR, STR(oidc_mfa_acr), "",
	  0, 0, false },
	/* [recording]: session recordings (SPEC §8, terminal/record.c) */
	{ "recording", "max_bytes", "recording-max-bytes", "BASTION_RECORDING_MAX_BYTES", T_INT,
	  NUM(recording_max_bytes), "67108864", 65536, 17179869184LL, true },
	{ "recording", "retention_days", "recording-retention-days",
	  "BASTION_RECORDING_RETENTION_DAYS", T_INT, NUM(recording_retention_days), "0", 0, 36500,
	  true },
	/* [server] behind a load balancer: the PROXY protocol from the
	 * balancers only (src/server/proxywait.c, docs/scaling.md) */
	{ "server", "proxy_protocol", "proxy-protocol", "BASTION_PROXY_PROTOCOL", T_PROXYPROTO,
	  STR(proxy_protocol), "off", 0, 0, true },
	{ "server", "trusted_proxies", "trusted-proxies", "BASTION_TRUSTED_PROXIES", T_CIDRS,
	  STR(trusted_proxies), "", 0, 0, true },
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

size_t cfg_nkeys(void)
{
	return NKEYS;
}

const char *cfg_key_flag(size_t i)
{
	return i < NKEYS ? keys[i].flag : NULL;
}

const char *cfg_key_name(size_t i)
{
	static _Thread_local char name[64];

	if (i >= NKEYS)
		return NULL;
	snprintf(name, sizeof(name), "%s.%s", keys[i].section, keys[i].name);
	return name;
}

/* "90", "90s", "15m", "8h", "2d": seconds. */
static int parse_duration(const char *v, int64_t *ret)
{
	char *end;
	long long n;
	int64_t mult = 1;

	if (!isdigit((unsigned char)v[0]))
		return -EINVAL;
	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno || n < 0 || n > 100LL * 365 * DAY)
		return -EINVAL;
	if (*end) {
		if (end[1])
			return -EINVAL;
		switch (*end) {
		case 's':
			mult = 1;
			break;
		case 'm':
			mult = 60;
			break;
		case 'h':
			mult = 3600;
			break;
		case 'd':
			mult = DAY;
			break;
		default:
			return -EINVAL;
		}
	}
	*ret = (int64_t)n * mult;
	return 0;
}

static int parse_int(const char *v, int64_t *ret)
{
	char *end;
	long long n;

	if (!isdigit((unsigned char)v[0]) && v[0] != '-')
		return -EINVAL;
	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*ret = n;
	return 0;
}

static bool listen_ok(const char *v)
{
	const char *colon = strrchr(v, ':');
	int64_t port;

	if (!colon || colon == v || parse_int(colon + 1, &port) < 0 || port < 0 || port > 65535)
		return false;
	if (v[0] == '[')
		return colon[-1] == ']';
	return memchr(v, ':', (size_t)(colon - v)) == NULL;
}

bool cfg_url_ok(const char *v)
{
	static const char *const loopback[] = { "127.0.0.1", "[::1]", "localhost" };
	const char *host, *end;
	size_t n;

	if (strncmp(v, "https://", 8) == 0)
		return v[8] != '\0' && v[8] != '/' && !strpbrk(v, " \t\r\n");
	if (strncmp(v, "http://", 7) != 0 || strpbrk(v, " \t\r\n"))
		return false;
	/* Plain HTTP to a provider is only safe when it never leaves this
	 * host: a test's provider, or a proxy on the same machine. */
	host = v + 7;
	end = host + strcspn(host, "/?#");
	for (size_t i = 0; i < sizeof(loopback) / sizeof(loopback[0]); i++) {
		n = strlen(loopback[i]);
		if ((size_t)(end - host) >= n && strncmp(host, loopback[i], n) == 0 &&
		    (host + n == end || host[n] == ':'))
			return true;
	}
	return false;
}

/* One row of [oidc] map: "GROUP ROLE SCOPE", three words; the scope starts
 * with '/'. The role's name is checked when the API starts (authz/). */
static bool map_row_ok(const char *row, size_t len)
{
	size_t words = 0, i = 0;
	const char *third = NULL;

	while (i < len) {
		while (i < len && (row[i] == ' ' || row[i] == '\t'))
			i++;
		if (i == len)
			break;
		if (++words == 3)
			third = row + i;
		while (i < len && row[i] != ' ' && row[i] != '\t')
			i++;
	}
	return words == 3 && third && third[0] == '/';
}

/* [oidc] map: each value adds its rows (','-separated) to what is there,
 * so that the key may repeat in the file. */
static int set_map(char *field, size_t size, const char *v, char *why, size_t whylen)
{
	size_t used = strlen(field), n;
	const char *p = v, *comma;

	if (!v[0])
		return 0;
	for (;;) {
		comma = strchr(p, ',');
		n = comma ? (size_t)(comma - p) : strlen(p);
		if (!map_row_ok(p, n)) {
			snprintf(why, whylen,
				 "rows must be 'GROUP ROLE SCOPE' (the scope "
				 "starting with '/'), separated by ','");
			return -EINVAL;
		}
		if (!comma)
			break;
		p = comma + 1;
	}
	if (used + (used ? 1 : 0) + strlen(v) >= size) {
		snprintf(why, whylen, "holds more than %zu bytes of rows", size - 1);
		return -EINVAL;
	}
	if (used)
		field[used++] = ',';
	memcpy(field + used, v, strlen(v) + 1);
	return 0;
}

/* Sets key k of c from text v. On failure writes why (without the key's
 * name, which the caller knows how to say) to why. */
static int set_value(struct cfg *c, const struct key *k, const char *v, char *why, size_t whylen)
{
	char *field = (char *)c + k->off;
	int64_t n;

	switch (k->type) {
	case T_LEVEL:
		if (strcmp(v, "debug") && strcmp(v, "info") && strcmp(v, "warn") &&
		    strcmp(v, "error")) {
			snprintf(why, whylen, "must be debug, info, warn or error, not '%.64s'", v);
			return -EINVAL;
		}
		break;
	case T_LOGFMT:
		if (strcmp(v, "text") && strcmp(v, "json")) {
			snprintf(why, whylen, "must be text or json, not '%.64s'", v);
			return -EINVAL;
		}
		break;
	case T_ONOFF:
		if (strcmp(v, "on") && strcmp(v, "off")) {
			snprintf(why, whylen, "must be on or off, not '%.64s'", v);
			return -EINVAL;
		}
		break;
	case T_LISTEN:
		if (!listen_ok(v)) {
			snprintf(why, whylen,
				 "must be ADDR:PORT (IPv6 as [ADDR]:PORT), not '%.64s'", v);
			return -EINVAL;
		}
		break;
	case T_DEST: {
		/* Parsed here so that a bad CIDR is named with its FILE:LINE;
		 * authz_dest_set (authz/dest.c) parses the same text again
		 * when it applies. */
		struct cidr_list d;
		char dwhy[160];

		if (cidr_list_parse(v, &d, dwhy, sizeof(dwhy)) < 0) {
			snprintf(why, whylen, "%s", dwhy);
			return -EINVAL;
		}
		break;
	}
	case T_PROXYPROTO:
		if (strcmp(v, "off") && strcmp(v, "v1") && strcmp(v, "v2") && strcmp(v, "any")) {
			snprintf(why, whylen, "must be off, v1, v2 or any, not '%.64s'", v);
			return -EINVAL;
		}
		break;
	case T_CIDRS: {
		struct cidr_list d;
		char dwhy[160];

		if (v[0] && cidr_list_parse(v, &d, dwhy, sizeof(dwhy)) < 0) {
			snprintf(why, whylen, "%s", dwhy);
			return -EINVAL;
		}
		break;
	}
	case T_STORE:
		/* Not quoted back: the URL may hold a password. */
		if (v[0] && strncasecmp(v, "postgres://", 11) != 0 &&
		    strncasecmp(v, "postgresql://", 13) != 0) {
			snprintf(why, whylen,
				 "must be a postgres:// or postgresql:// URL, or empty");
			return -EINVAL;
		}
		break;
	case T_URL:
		if (v[0] && !cfg_url_ok(v)) {
			snprintf(why, whylen,
				 "must be an https:// URL (http:// only on a loopback address), "
				 "not '%.64s'",
				 v);
			return -EINVAL;
		}
		break;
	case T_OIDCMAP:
		return set_map(field, k->size, v, why, whylen);
	case T_PATH:
	case T_STR:
		break;
	case T_DURATION:
		if (parse_duration(v, &n) < 0) {
			snprintf(why, whylen,
				 "must be a duration like 90s, 30m, 8h or 1d, not '%.64s'", v);
			return -EINVAL;
		}
		if (n < k->min || n > k->max) {
			snprintf(why, whylen, "must be between %llds and %llds", (long long)k->min,
				 (long long)k->max);
			return -EINVAL;
		}
		memcpy(field, &n, sizeof(n));
		return 0;
	case T_BOOL:
		if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on") || !strcmp(v, "1"))
			n = 1;
		else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off") ||
			 !strcmp(v, "0"))
			n = 0;
		else {
			snprintf(why, whylen, "must be true or false, not '%.64s'", v);
			return -EINVAL;
		}
		memcpy(field, &n, sizeof(n));
		return 0;
	case T_INT:
		if (parse_int(v, &n) < 0) {
			snprintf(why, whylen, "must be an integer, not '%.64s'", v);
			return -EINVAL;
		}
		if (n < k->min || n > k->max) {
			snprintf(why, whylen, "must be between %lld and %lld", (long long)k->min,
				 (long long)k->max);
			return -EINVAL;
		}
		memcpy(field, &n, sizeof(n));
		return 0;
	}
	if (util_strlcpy(field, v, k->size) < 0) {
		snprintf(why, whylen, "is longer than %zu bytes", k->size - 1);
		return -EINVAL;
	}
	return 0;
}

unsigned cfg_proxy_versions(const struct cfg *c)
{
	if (strcmp(c->proxy_protocol, "v1") == 0)
		return 1u;
	if (strcmp(c->proxy_protocol, "v2") == 0)
		return 2u;
	if (strcmp(c->proxy_protocol, "any") == 0)
		return 3u;
	return 0;
}

void cfg_defaults(struct cfg *c)
{
	char why[16];

	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < NKEYS; i++)
		set_value(c, &keys[i], keys[i].def, why, sizeof(why));
}

/* ---------- the file ---------- */

struct file_state {
	struct cfg *c;
	const char *path;
	const char *p, *end; /* what is left of the file's text */
	int line;            /* of the line inih is looking at */
	bool long_line;
	bool seen[NKEYS];
	char *err;
	size_t errlen;
	int r;
};

/* inih takes "key: value" as well as "key = value"; the documented form
 * is the second only, so a ':' before any '=' on a key line is refused
 * here (a value may hold colons: "listen = 127.0.0.1:8443"). Comment,
 * section and blank lines are inih's to judge. */
static void colon_check(struct file_state *st, const char *line)
{
	const char *p = line;

	while (*p == ' ' || *p == '\t')
		p++;
	if (!*p || strchr(";#[\r\n", *p) || st->r < 0)
		return;
	p = strpbrk(p, ":=");
	if (p && *p == ':') {
		snprintf(st->err, st->errlen,
			 "%s:%d: write 'key = value'; a ':' between key and value is not allowed",
			 st->path, st->line);
		st->r = -EINVAL;
	}
}

/* inih's reader: fgets over the file's text that counts lines and
 * notices one longer than inih's buffer (it would otherwise read the rest
 * as another line). */
static char *file_reader(char *str, int num, void *stream)
{
	struct file_state *st = stream;
	const char *nl;
	size_t n, avail = (size_t)(st->end - st->p);

	if (avail == 0 || num < 2)
		return NULL;
	st->line++;
	nl = memchr(st->p, '\n', avail);
	n = nl ? (size_t)(nl - st->p) + 1 : avail;
	if (n > (size_t)num - 1)
		n = (size_t)num - 1;
	memcpy(str, st->p, n);
	str[n] = '\0';
	st->p += n;
	if (n == (size_t)num - 1 && str[n - 1] != '\n' && st->p < st->end && !st->long_line) {
		st->long_line = true;
		if (st->r == 0) {
			snprintf(st->err, st->errlen, "%s:%d: line longer than %d bytes", st->path,
				 st->line, INI_MAX_LINE - 2);
			st->r = -EINVAL;
		}
		/* Skip the rest of the line. */
		nl = memchr(st->p, '\n', (size_t)(st->end - st->p));
		st->p = nl ? nl + 1 : st->end;
		str[0] = '\0';
	} else {
		st->long_line = false;
		colon_check(st, str);
	}
	return str;
}

static int file_handler(void *ud, const char *section, const char *name, const char *value)
{
	struct file_state *st = ud;
	char why[160];
	bool section_known = false;

	if (st->r < 0)
		return 1; /* the first error is the one reported */
	for (size_t i = 0; i < NKEYS; i++) {
		if (strcmp(keys[i].section, section) != 0)
			continue;
		section_known = true;
		if (strcmp(keys[i].name, name) != 0)
			continue;
		if (st->seen[i] && keys[i].type != T_OIDCMAP) {
			snprintf(st->err, st->errlen, "%s:%d: [%s] %s is set twice", st->path,
				 st->line, section, name);
			st->r = -EINVAL;
			return 1;
		}
		st->seen[i] = true;
		if (set_value(st->c, &keys[i], value, why, sizeof(why)) < 0) {
			snprintf(st->err, st->errlen, "%s:%d: [%s] %s %s", st->path, st->line,
				 section, name, why);
			st->r = -EINVAL;
		}
		return 1;
	}
	if (!section[0])
		snprintf(st->err, st->errlen,
			 "%s:%d: '%.64s' is outside a section ([server], [tls], [sessions], "
			 "[network], [oidc])",
			 st->path, st->line, name);
	else if (!section_known)
		snprintf(st->err, st->errlen, "%s:%d: unknown section [%.64s]", st->path, st->line,
			 section);
	else
		snprintf(st->err, st->errlen, "%s:%d: unknown key '%.64s' in section [%s]",
			 st->path, st->line, name, section);
	st->r = -EINVAL;
	return 1;
}

static int load_file(struct cfg *c, const char *path, char *err, size_t errlen)
{
	struct file_state st = { .c = c, .path = path, .err = err, .errlen = errlen };
	struct buf text;
	int r;

	/* FILE_STREAM: --config may name a pipe (<(cmd), /dev/stdin). */
	buf_init(&text, CFG_MAX_FILE);
	if ((r = file_read(path, FILE_STREAM, &text)) < 0) {
		if (r == -E2BIG)
			snprintf(err, errlen, "%s: the configuration file is larger than %u bytes",
				 path, CFG_MAX_FILE);
		else
			snprintf(err, errlen, "%s: cannot read the configuration file: %s", path,
				 strerror(-r));
		goto out;
	}
	st.p = buf_str(&text);
	st.end = st.p + buf_len(&text);
	r = ini_parse_stream(file_reader, &st, file_handler, &st);
	if (st.r < 0) {
		r = st.r;
		goto out;
	}
	if (r != 0) {
		/* A line inih could not parse (no '=' or an unclosed section). */
		snprintf(err, errlen, "%s:%d: not 'key = value' or '[section]'", path, r);
		r = -EINVAL;
		goto out;
	}
out:
	buf_free(&text);
	return r;
}

/* ---------- the whole ---------- */

static int validate(const struct cfg *c, char *err, size_t errlen)
{
	if (!!c->cert_file[0] != !!c->key_file[0]) {
		snprintf(err, errlen, "tls.cert and tls.key go together (--cert and --key)");
		return -EINVAL;
	}
	if (!c->data_dir[0]) {
		snprintf(err, errlen, "server.data must not be empty");
		return -EINVAL;
	}
	if (c->oidc_issuer[0] && (!c->oidc_client_id[0] || !c->oidc_redirect_url[0])) {
		snprintf(err, errlen, "oidc.issuer needs oidc.client_id and oidc.redirect_url");
		return -EINVAL;
	}
	if (strcmp(c->proxy_protocol, "off") != 0 && !c->trusted_proxies[0]) {
		snprintf(err, errlen,
			 "server.proxy_protocol = %s needs server.trusted_proxies: the balancers' "
			 "addresses (a header is believed from them only)",
			 c->proxy_protocol);
		return -EINVAL;
	}
	if (c->idle_timeout_s > 0 && c->idle_warning_s >= c->idle_timeout_s) {
		snprintf(
			err, errlen,
			"sessions.idle_warning (%llds) must be shorter than sessions.idle_timeout (%llds)",
			(long long)c->idle_warning_s, (long long)c->idle_timeout_s);
		return -EINVAL;
	}
	return 0;
}

int cfg_load(struct cfg *ret, const char *file, const struct cfg_arg *args, size_t nargs, char *err,
	     size_t errlen)
{
	struct cfg *c = malloc(sizeof(*c));
	char why[160];
	int r = -EINVAL;

	if (!c) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	cfg_defaults(c);
	if (file && (r = load_file(c, file, err, errlen)) < 0)
		goto out;
	for (size_t i = 0; i < NKEYS; i++) {
		const char *v = getenv(keys[i].env);

		if (!v)
			continue;
		/* A variable replaces the file's rows of a repeatable key. */
		if (keys[i].type == T_OIDCMAP)
			((char *)c + keys[i].off)[0] = '\0';
		if ((r = set_value(c, &keys[i], v, why, sizeof(why))) < 0) {
			snprintf(err, errlen, "environment %s %s", keys[i].env, why);
			goto out;
		}
	}
	for (size_t i = 0; i < nargs; i++) {
		if (args[i].key >= NKEYS) {
			snprintf(err, errlen, "unknown flag");
			r = -EINVAL;
			goto out;
		}
		if ((r = set_value(c, &keys[args[i].key], args[i].value, why, sizeof(why))) < 0) {
			snprintf(err, errlen, "--%s %s", keys[args[i].key].flag, why);
			goto out;
		}
	}
	if ((r = validate(c, err, errlen)) < 0)
		goto out;
	*ret = *c;
	r = 0;
out:
	free(c);
	return r;
}

/* A store URL as it may be shown (a reload's diff goes to the log): the
 * password of "scheme://user:PASSWORD@host" and of "password=..." in the
 * query become "***". */
static void mask_url(const char *url, char *out, size_t size)
{
	const char *p = strstr(url, "://"), *at, *slash, *colon, *pw;
	size_t n = 0;

	if (!size)
		return;
	out[0] = '\0';
	if (!p) {
		snprintf(out, size, "%s", url);
		return;
	}
	p += 3;
	slash = strchr(p, '/');
	at = memchr(p, '@', slash ? (size_t)(slash - p) : strlen(p));
	colon = at ? memchr(p, ':', (size_t)(at - p)) : NULL;
	if (colon)
		n = (size_t)snprintf(out, size, "%.*s:***%s", (int)(colon - url), url, at);
	else
		n = (size_t)snprintf(out, size, "%s", url);
	if (n >= size)
		return;
	/* In the query: password=VALUE up to the next '&'. */
	for (pw = strstr(out, "password="); pw; pw = strstr(pw, "password=")) {
		char *v = (char *)pw + 9, *end = strchr(v, '&');
		size_t tail = end ? strlen(end) : 0;

		if ((size_t)(v - out) + 3 + tail >= size)
			break;
		memmove(v + 3, end ? end : v + strlen(v), tail + 1);
		memcpy(v, "***", 3);
		pw = v + 3;
	}
}

void cfg_value_str(const struct cfg *c, size_t i, char *out, size_t size)
{
	const char *field;
	int64_t n;

	if (i >= NKEYS) {
		snprintf(out, size, "?");
		return;
	}
	field = (const char *)c + keys[i].off;
	switch (keys[i].type) {
	case T_DURATION:
		memcpy(&n, field, sizeof(n));
		snprintf(out, size, "%llds", (long long)n);
		break;
	case T_INT:
		memcpy(&n, field, sizeof(n));
		snprintf(out, size, "%lld", (long long)n);
		break;
	case T_BOOL:
		memcpy(&n, field, sizeof(n));
		snprintf(out, size, "%s", n ? "true" : "false");
		break;
	case T_STORE:
		mask_url(field, out, size);
		break;
	default:
		snprintf(out, size, "%s", field);
		break;
	}
}

void cfg_diff(const struct cfg *a, const struct cfg *b,
	      void (*fn)(const char *name, const char *was, const char *now, bool live, void *ud),
	      void *ud)
{
	char was[CFG_MAX_STR + 8], now[CFG_MAX_STR + 8], name[64];

	for (size_t i = 0; i < NKEYS; i++) {
		cfg_value_str(a, i, was, sizeof(was));
		cfg_value_str(b, i, now, sizeof(now));
		if (strcmp(was, now) == 0)
			continue;
		snprintf(name, sizeof(name), "%s.%s", keys[i].section, keys[i].name);
		fn(name, was, now, keys[i].live, ud);
	}
}
