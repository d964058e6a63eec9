/* The destination policy: the address ranges the bastion may ever dial,
 * whatever the networks say (docs/security.md "Destination policy", --allowed-destinations). The
 * operator's decision, not a Contributor's: a network may declare
 * 0.0.0.0/0, and this list still decides.
 *
 * Two layers:
 * - authz_dest_allows: pure, on a list the caller holds (parsed by
 *   cidr_list_parse in core/cidr.h, which configuration validation uses).
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

#include "core/cidr.h"
#include "core/config.h"

#define AUTHZ_DEST_DEFAULT CFG_DEST_DEFAULT

/* Whether d lets the bastion dial ip (the rule above). */
bool authz_dest_allows(const struct cidr_list *d, const struct cidr_ip *ip);

/* The name of the special range holding ip ("loopback", "link-local",
 * "unspecified", "metadata"), or NULL for an ordinary address. */
const char *authz_dest_special(const struct cidr_ip *ip);

/* Replaces the running policy with text (already validated by the
 * configuration; -EINVAL leaves the running one). */
int authz_dest_set(const char *text);

/* 0 when the running policy allows ip, else -EACCES with a message for a
 * 403 DestinationNotAllowed in msg (names the address and why, never the
 * list). */
int authz_dest_check(const struct cidr_ip *ip, char *msg, size_t size);
