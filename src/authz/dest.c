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

/* ::ffff:a.b.c.d reaches a.b.c.d: judge it as that. */
static void unmap(struct val_ip *ip)
{
	if (ip->family != AF_INET6 || !val_ip_is_v4mapped(ip))
		return;
	memmove(ip->addr, ip->addr + 12, 4);
	memset(ip->addr + 4, 0, 12);
	ip->family = AF_INET;
}

/* A listed prefix inside ::ffff:0:0/96 names IPv4 addresses. */
static void unmap_cidr(struct val_cidr *c)
{
	if (c->ip.family != AF_INET6 || c->prefix < 96 || !val_ip_is_v4mapped(&c->ip))
		return;
	unmap(&c->ip);
	c->prefix -= 96;
}

/* Whether inner lies inside outer (equal counts). */
static bool cidr_inside(const struct val_cidr *inner, const struct val_cidr *outer)
{
	return inner->ip.family == outer->ip.family && inner->prefix >= outer->prefix &&
	       val_cidr_contains(outer, &inner->ip);
}

/* The narrowest special range holding ip (already unmapped), or -1. */
static int special_of(const struct val_ip *ip)
{
	int best = -1, best_prefix = -1;

	for (size_t i = 0; i < NSPECIALS; i++) {
		struct val_cidr c;

		if (val_cidr_parse(specials[i].cidr, &c) < 0 || !val_cidr_contains(&c, ip))
			continue;
		if (c.prefix > best_prefix) {
			best = (int)i;
			best_prefix = c.prefix;
		}
	}
	return best;
}

static int parse_one(const char *s, size_t len, struct val_cidr *ret)
{
	char buf[VAL_CIDR_STRLEN + 1];
	struct val_ip ip;

	if (len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (!memchr(buf, '/', len)) {
		/* A bare address is one host. */
		if (val_ip_parse(buf, &ip) < 0)
			return -EINVAL;
		ret->ip = ip;
		ret->prefix = ip.family == AF_INET ? 32 : 128;
		return 0;
	}
	return val_cidr_parse(buf, ret);
}

int authz_dest_parse(const char *text, struct authz_dest *ret, char *why, size_t whylen)
{
	struct authz_dest d = { 0 };
	const char *p = text;

	if (!text) {
		snprintf(why, whylen, "must list at least one CIDR");
		return -EINVAL;
	}
	for (;;) {
		const char *end = strchr(p, ','), *a = p, *b;

		if (!end)
			end = p + strlen(p);
		b = end;
		while (a < b && (*a == ' ' || *a == '\t'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
			b--;
		if (a == b) {
			snprintf(why, whylen, "%s",
				 d.n == 0 && !*end ? "must list at least one CIDR"
						   : "has an empty entry (two commas, or a comma "
						     "at an end)");
			return -EINVAL;
		}
		if (d.n == AUTHZ_DEST_MAX) {
			snprintf(why, whylen, "lists more than %d prefixes", AUTHZ_DEST_MAX);
			return -EINVAL;
		}
		if (parse_one(a, (size_t)(b - a), &d.v[d.n]) < 0) {
			snprintf(
				why, whylen,
				"'%.*s' is not a CIDR like 10.0.0.0/8 or fc00::/7 (host bits zero)",
				(int)(b - a > 64 ? 64 : b - a), a);
			return -EINVAL;
		}
		unmap_cidr(&d.v[d.n]);
		d.n++;
		if (!*end)
			break;
		p = end + 1;
	}
	*ret = d;
	return 0;
}

const char *authz_dest_special(const struct val_ip *ip)
{
	struct val_ip a = *ip;
	int s;

	unmap(&a);
	s = special_of(&a);
	return s < 0 ? NULL : specials[s].name;
}

bool authz_dest_allows(const struct authz_dest *d, const struct val_ip *ip)
{
	struct val_ip a = *ip;
	struct val_cidr range;
	int s;

	unmap(&a);
	s = special_of(&a);
	if (s >= 0 && val_cidr_parse(specials[s].cidr, &range) < 0)
		return false;
	for (size_t i = 0; i < d->n; i++) {
		if (!val_cidr_contains(&d->v[i], &a))
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
static struct authz_dest running;
static bool running_set;

int authz_dest_set(const char *text)
{
	struct authz_dest d;
	char why[160];

	if (authz_dest_parse(text, &d, why, sizeof(why)) < 0)
		return -EINVAL;
	pthread_mutex_lock(&running_lock);
	running = d;
	running_set = true;
	pthread_mutex_unlock(&running_lock);
	return 0;
}

int authz_dest_check(const struct val_ip *ip, char *msg, size_t size)
{
	char addr[INET6_ADDRSTRLEN];
	const char *special;
	bool ok;

	pthread_mutex_lock(&running_lock);
	if (!running_set) {
		char why[160];

		running_set = authz_dest_parse(AUTHZ_DEST_DEFAULT, &running, why, sizeof(why)) == 0;
	}
	ok = running_set && authz_dest_allows(&running, ip);
	pthread_mutex_unlock(&running_lock);
	if (ok)
		return 0;
	val_ip_str(ip, addr, sizeof(addr));
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
