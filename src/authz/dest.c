/* The destination policy (see dest.h): which addresses the bastion may
 * dial. Pure list handling first, then the running policy. */
#include "authz/dest.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* Addresses that reach the bastion's own host or its cloud's control
 * plane: never dialled unless a listed prefix lies inside them. The
 * metadata addresses: 169.254.169.254 (every major cloud's instance
 * metadata), fd00:ec2::254 (AWS over IPv6), 168.63.129.16 (Azure's
 * platform address: the WireServer hands out extension settings) and
 * 100.100.100.200 (Alibaba Cloud). Some lie inside other special ranges
 * (link-local, or fc00::/7 for fd00:ec2::254): the narrowest range wins. */
static const struct {
	const char *cidr, *name;
} specials[] = {
	{ "127.0.0.0/8", "loopback" },        { "::1/128", "loopback" },
	{ "0.0.0.0/8", "unspecified" },       { "::/128", "unspecified" },
	{ "169.254.0.0/16", "link-local" },   { "fe80::/10", "link-local" },
	{ "169.254.169.254/32", "metadata" }, { "fd00:ec2::254/128", "metadata" },
	{ "168.63.129.16/32", "metadata" },   { "100.100.100.200/32", "metadata" },
};

#define NSPECIALS (sizeof(specials) / sizeof(specials[0]))

/* Whether inner lies inside outer (equal counts). */
static bool cidr_inside(const struct cidr *inner, const struct cidr *outer)
{
	return inner->ip.family == outer->ip.family && inner->prefix >= outer->prefix &&
	       cidr_contains(outer, &inner->ip);
}

/* The narrowest special range holding ip (already unmapped), or -1. */
static int special_of(const struct cidr_ip *ip)
{
	int best = -1, best_prefix = -1;

	for (size_t i = 0; i < NSPECIALS; i++) {
		struct cidr c;

		if (cidr_parse(specials[i].cidr, &c) < 0 || !cidr_contains(&c, ip))
			continue;
		if (c.prefix > best_prefix) {
			best = (int)i;
			best_prefix = c.prefix;
		}
	}
	return best;
}

const char *authz_dest_special(const struct cidr_ip *ip)
{
	struct cidr_ip a = *ip;
	int s;

	cidr_ip_unmap(&a);
	s = special_of(&a);
	return s < 0 ? NULL : specials[s].name;
}

bool authz_dest_allows(const struct cidr_list *d, const struct cidr_ip *ip)
{
	struct cidr_ip a = *ip;
	struct cidr range;
	int s;

	cidr_ip_unmap(&a);
	s = special_of(&a);
	if (s >= 0 && cidr_parse(specials[s].cidr, &range) < 0)
		return false;
	for (size_t i = 0; i < d->n; i++) {
		if (!cidr_contains(&d->v[i], &a))
			continue;
		/* A broad prefix (0.0.0.0/0, ::/0, fc00::/7) does not carry a
		 * special address: only one inside its special range does. */
		if (s < 0 || cidr_inside(&d->v[i], &range))
			return true;
	}
	return false;
}

/* ---- the running policy ---- */

static pthread_mutex_t running_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cidr_list running;
static bool running_set;

int authz_dest_set(const char *text)
{
	struct cidr_list d;
	char why[160];

	if (cidr_list_parse(text, &d, why, sizeof(why)) < 0)
		return -EINVAL;
	pthread_mutex_lock(&running_lock);
	running = d;
	running_set = true;
	pthread_mutex_unlock(&running_lock);
	return 0;
}

int authz_dest_check(const struct cidr_ip *ip, char *msg, size_t size)
{
	char addr[INET6_ADDRSTRLEN];
	const char *special;
	bool ok;

	pthread_mutex_lock(&running_lock);
	if (!running_set) {
		char why[160];

		running_set = cidr_list_parse(AUTHZ_DEST_DEFAULT, &running, why, sizeof(why)) == 0;
	}
	ok = running_set && authz_dest_allows(&running, ip);
	pthread_mutex_unlock(&running_lock);
	if (ok)
		return 0;
	cidr_ip_str(ip, addr, sizeof(addr));
	special = authz_dest_special(ip);
	if (special)
		snprintf(
			msg, size,
			"%s is a special address (%s): the bastion dials one only when the operator "
			"lists a prefix inside its range in --allowed-destinations",
			addr, special);
	else
		snprintf(msg, size,
			 "%s is outside the destinations this bastion may dial "
			 "(--allowed-destinations)",
			 addr);
	return -EACCES;
}
