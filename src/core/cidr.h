/* IP addresses and CIDR prefixes: strict parsing, containment and the
 * canonical text form. Pure functions (no I/O, no allocation), in core/ so
 * that every layer can use them: core/config.c validates
 * network.allowed_destinations, authz/dest.c judges a destination, and
 * api/validate.c checks the addresses of resources.
 *
 * Decisions (docs/api.md, "Resources"):
 * - IPv4 is a dotted quad of decimal octets without leading zeros; IPv6
 *   goes through inet_pton() after refusing zone ids ("%eth0"), brackets
 *   and whitespace; a CIDR always has a prefix length, and its host bits
 *   must be zero.
 * - Address families never mix: an IPv4-mapped IPv6 address
 *   (::ffff:198.18.0.5) is not inside an IPv4 prefix. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

/* A CIDR in text form, NUL included. */
#define CIDR_STRLEN (INET6_ADDRSTRLEN + 4)

/* An IP address (v4 or v6) in binary form. */
struct cidr_ip {
	int family;       /* AF_INET or AF_INET6 */
	uint8_t addr[16]; /* network order; 4 bytes used for AF_INET */
};
struct cidr {
	struct cidr_ip ip;
	int prefix;
};

/* Strict parsers: no leading zeros in IPv4 octets, no zone ids, prefix in
 * range, host bits of a CIDR must be zero. -EINVAL on anything else. */
int cidr_ip_parse(const char *s, struct cidr_ip *ret);
int cidr_parse(const char *s, struct cidr *ret);
/* "address/prefix" without looking at host bits: -EINVAL for a bad shape
 * or address, -ERANGE for a prefix length out of range (for messages that
 * say which). */
int cidr_parse_loose(const char *s, struct cidr *ret);
/* Zeroes the host bits of c. */
void cidr_mask(struct cidr *c);
/* Whether the host bits of c are all zero. */
bool cidr_host_bits_zero(const struct cidr *c);
/* Whether ip lies inside net; families never mix. */
bool cidr_contains(const struct cidr *net, const struct cidr_ip *ip);
/* Canonical text form of ip (inet_ntop); out_size >= INET6_ADDRSTRLEN. */
void cidr_ip_str(const struct cidr_ip *ip, char *out, size_t out_size);
/* Canonical "address/prefix"; out_size >= CIDR_STRLEN. */
void cidr_str(const struct cidr *c, char *out, size_t out_size);
/* True for ::ffff:a.b.c.d. */
bool cidr_ip_is_v4mapped(const struct cidr_ip *ip);
/* ::ffff:a.b.c.d reaches a.b.c.d: turns ip into that IPv4 address (other
 * addresses are left alone). */
void cidr_ip_unmap(struct cidr_ip *ip);
/* A prefix inside ::ffff:0:0/96 names IPv4 addresses: turns c into that
 * IPv4 prefix (others are left alone). */
void cidr_unmap(struct cidr *c);

/* The most prefixes a list may hold (a configuration value is at most
 * CFG_MAX_STR bytes anyway). */
#define CIDR_LIST_MAX 64

struct cidr_list {
	size_t n;
	struct cidr v[CIDR_LIST_MAX];
};

/* Parses "CIDR[,CIDR...]" (spaces around entries allowed; a bare address
 * is one host: /32 or /128; a ::ffff:0:0/96-style prefix becomes the IPv4
 * prefix it names). Host bits must be zero. -EINVAL with a one-line reason
 * in why (naming the entry) on an empty list, an empty entry, a bad CIDR
 * or more than CIDR_LIST_MAX entries; ret is untouched then. */
int cidr_list_parse(const char *text, struct cidr_list *ret, char *why, size_t whylen);
