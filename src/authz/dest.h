/* The destination policy: the address ranges the bastion may ever dial,
 * whatever the networks say (SPEC §5, --allowed-destinations). The
 * operator's decision, not a Contributor's: a network may declare
 * 0.0.0.0/0, and this list still decides.
 *
 * Two layers:
 * - authz_dest_parse/authz_dest_allows: pure, on a list the caller holds
 *   (configuration validation, tests).
 * - authz_dest_set/authz_dest_check: the running policy of this process,
 *   set at start and on SIGHUP by the loop thread, read by workers at
 *   connect time. A mutex guards it; until authz_dest_set is called the
 *   default list applies.
 *
 * Special ranges (loopback, unspecified, link-local, the metadata
 * addresses) are allowed only by a listed prefix that lies inside the
 * narrowest special range holding the address: 127.0.0.0/8 allows
 * 127.0.0.1, 0.0.0.0/0 does not; 169.254.0.0/16 allows link-local
 * addresses but not 169.254.169.254, which needs 169.254.169.254/32. An
 * IPv4-mapped IPv6 address (::ffff:a.b.c.d) is judged as the IPv4 address
 * it reaches, and a listed ::ffff:0:0/96-style prefix as the IPv4 prefix it
 * names. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "api/validate.h"

/* The most prefixes a list may hold (the configuration value is at most
 * CFG_MAX_STR bytes anyway). */
#define AUTHZ_DEST_MAX 64

#define AUTHZ_DEST_DEFAULT "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"

struct authz_dest {
	size_t n;
	struct val_cidr v[AUTHZ_DEST_MAX];
};

/* Parses "CIDR[,CIDR...]" (spaces around entries allowed; a bare address
 * is one host: /32 or /128). Host bits must be zero. -EINVAL with a
 * one-line reason in why (naming the entry) on an empty list, an empty
 * entry, a bad CIDR or more than AUTHZ_DEST_MAX entries; ret is untouched
 * then. */
int authz_dest_parse(const char *text, struct authz_dest *ret, char *why, size_t whylen);

/* Whether d lets the bastion dial ip (the rule above). */
bool authz_dest_allows(const struct authz_dest *d, const struct val_ip *ip);

/* The name of the special range holding ip ("loopback", "link-local",
 * "unspecified", "metadata"), or NULL for an ordinary address. */
const char *authz_dest_special(const struct val_ip *ip);

/* Replaces the running policy with text (already validated by the
 * configuration; -EINVAL leaves the running one). */
int authz_dest_set(const char *text);

/* 0 when the running policy allows ip, else -EACCES with a message for a
 * 403 DestinationNotAllowed in msg (names the address and why, never the
 * list). */
int authz_dest_check(const struct val_ip *ip, char *msg, size_t size);
