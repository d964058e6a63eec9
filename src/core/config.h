/* Configuration of `bastion serve`: an INI file (parsed by libinih),
 * BASTION_* environment variables and command-line flags, with the
 * precedence flags > environment > file > defaults. Every key has one row in
 * a table (config.c) that gives its section, flag, environment name, type,
 * default and whether SIGHUP may change it in a running instance; the table
 * is what docs/configuration.md documents.
 *
 * Loading is pure: nothing here touches the process (no logging above debug,
 * no exit); errors come back as text naming FILE:LINE, the variable or the
 * flag. Any thread may call these functions. */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CFG_MAX_STR      1024
#define CFG_MAX_FILE     (1u << 20) /* bytes of a configuration file */
#define CFG_MAX_OIDC_MAP 8192       /* bytes of [oidc] map, all rows together */

/* network.allowed_destinations when nothing sets it: the private ranges
 * (docs/configuration.md). authz/dest.c applies it until a value is set. */
#define CFG_DEST_DEFAULT "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"

struct cfg {
	/* [server] */
	char listen[256];
	char data_dir[CFG_MAX_STR];
	char log_level[16];      /* debug, info, warn, error */
	char log_format[8];      /* text or json (log.c) */
	int64_t drain_timeout_s; /* SIGTERM: sessions get this long to close */
	/* [tls] (empty: the self-signed pair in the data directory) */
	char cert_file[CFG_MAX_STR];
	char key_file[CFG_MAX_STR];
	/* [sessions]; a duration of 0 switches that limit off */
	int64_t idle_timeout_s;
	int64_t idle_warning_s; /* the browser is warned this long before */
	int64_t max_duration_s;
	int64_t max_per_user;
	int64_t max_total;
	/* An SSH keep-alive goes to the VM after this long without a word from
	 * it; the third unanswered one ends the session. 0: off. */
	int64_t ssh_keepalive_s;
	/* A WebSocket ping goes to the browser after this long without a frame
	 * from it; two silent intervals close the terminal. 0: off. */
	int64_t browser_ping_s;
	/* [server] user: the account to run as once the listener is bound (only
	 * when started as root; empty: "bastion" if it exists). */
	char user[64];
	/* [store] url: empty for SQLite in data_dir, or a postgres:// URL
	 * (SPEC §6). May hold a password: cfg_value_str masks it. */
	char store_url[CFG_MAX_STR];
	/* [server] instance_name: this instance's name among those sharing a
	 * store (empty: HOSTNAME:PORT); advertise_url: how the others reach it
	 * (empty: https:// and the listen address, or the host name for a
	 * wildcard). Instances: docs/scaling.md. */
	char instance_name[128];
	char advertise_url[256];
	/* [server] loops: event loops, one thread each (0: one per CPU this
	 * process may run on). */
	int64_t loops;
	/* [network] allowed_destinations: the CIDRs the bastion may ever dial
	 * (authz/dest.h), as text; validated on load. */
	char allowed_destinations[CFG_MAX_STR];
	/* [limits] connections_per_address: open connections from one source
	 * address (an IPv6 /64) at once, 0: no cap; connections: in total, 0:
	 * half of RLIMIT_NOFILE per loop. Over either, a new connection is
	 * closed when accepted. */
	int64_t connections_per_address;
	int64_t connections;
	/* [oidc]: signing in with an OpenID Connect provider (SPEC §9,
	 * docs/sign-in.md); off while issuer is empty. map holds the
	 * group-to-role rows "GROUP ROLE SCOPE", joined by ','. */
	char oidc_issuer[512];
	char oidc_client_id[256];
	char oidc_client_secret_file[CFG_MAX_STR];
	char oidc_redirect_url[512];
	char oidc_display_name[64];
	char oidc_username_claim[64];
	char oidc_groups_claim[64];
	int64_t oidc_auto_create; /* 0 or 1 */
	char oidc_ca_file[CFG_MAX_STR];
	char oidc_map[CFG_MAX_OIDC_MAP];
	/* Retention (issue 19, src/housekeep.c): records older than this many
	 * days are pruned (0: kept for ever); housekeeping runs every
	 * housekeeping_interval_s. */
	int64_t audit_retention_days;
	int64_t sessions_retention_days;
	int64_t housekeeping_interval_s;
	/* [server] access_log: "on" (one info line per request) or "off". */
	char access_log[4];
	/* [sessions] counter_flush: how often open sessions' byte counters are
	 * written to their records (terminal/flush.c). */
	int64_t counter_flush_s;
	/* [auth] require_mfa (0/1): a local user without a second factor is
	 * signed in to enrol one and nothing else (identity/mfa.h). */
	int64_t require_mfa;
	/* [oidc] trust_amr (0/1), mfa_acr: when an OpenID provider's own
	 * second factor counts as bastion's (ident_mfa_oidc_satisfied). */
	int64_t oidc_trust_amr;
	char oidc_mfa_acr[256];
	/* [recording] max_bytes: a session's asciicast stops there (the cast
	 * says so, the session goes on); retention_days: recordings that ended
	 * longer ago are removed, hourly (0: kept). */
	int64_t recording_max_bytes;
	int64_t recording_retention_days;
	/* [server] proxy_protocol: off, v1, v2 or any (both); trusted_proxies:
	 * the balancers' CIDRs, whose connections must begin with a PROXY
	 * header (required when proxy_protocol is not off). */
	char proxy_protocol[8];
	char trusted_proxies[CFG_MAX_STR];
};
/* The PROXY versions proxy_protocol names, as bits 1 (v1) and 2 (v2). */
unsigned cfg_proxy_versions(const struct cfg *c);

/* One flag given on the command line: the key's index and its text. */
struct cfg_arg {
	size_t key;
	const char *value;
};

/* The keys, for building getopt tables and documentation. */
size_t cfg_nkeys(void);
const char *cfg_key_flag(size_t i); /* "idle-timeout" */
const char *cfg_key_name(size_t i); /* "sessions.idle_timeout" */

/* Fills c with the defaults. */
void cfg_defaults(struct cfg *c);

/* Builds the configuration: defaults, then file (NULL: none), then every
 * BASTION_* variable of the table that is set, then args. The result is
 * validated as a whole. On failure returns -EINVAL (or -errno when the file
 * cannot be read), writes a one-line message to err and leaves ret as it
 * was. Unknown sections and keys, a key given twice in the file, and values
 * out of range are errors; BASTION_* variables that are not keys are left
 * alone (the tests and other tools use the prefix too). */
int cfg_load(struct cfg *ret, const char *file, const struct cfg_arg *args, size_t nargs, char *err,
	     size_t errlen);

/* Calls fn for each key whose value differs between a and b, with both
 * values as text and whether a running instance applies the change (live)
 * or needs a restart. */
void cfg_diff(const struct cfg *a, const struct cfg *b,
	      void (*fn)(const char *name, const char *was, const char *now, bool live, void *ud),
	      void *ud);

/* Whether v is a URL bastion may send a provider's secrets to: https://,
 * or http:// on a loopback host (127.0.0.1, [::1], localhost). */
bool cfg_url_ok(const char *v);

/* The value of key i as text, as the file would spell it. */
void cfg_value_str(const struct cfg *c, size_t i, char *out, size_t size);
