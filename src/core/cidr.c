/* IP address and CIDR parsing (core/cidr.h says what and why). */
#include "core/cidr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Exactly four decimal octets 0..255 separated by dots, no leading zeros,
 * nothing before or after. */
static int parse_v4(const char *s, size_t len, uint8_t out[4])
{
	uint8_t tmp[4];
	size_t i = 0;

	for (int part = 0; part < 4; part++) {
		size_t start = i;
		unsigned v = 0;

		if (part > 0) {
			if (i >= len || s[i] != '.')
				return -EINVAL;
			start = ++i;
		}
		while (i < len && is_digit(s[i]) && i - start < 3)
			v = v * 10 + (unsigned)(s[i++] - '0');
		if (i == start || (i < len && is_digit(s[i])))
			return -EINVAL; /* empty, or more than three digits */
		if (i - start > 1 && s[start] == '0')
			return -EINVAL; /* leading zero: octal to some parsers */
		if (v > 255)
			return -EINVAL;
		tmp[part] = (uint8_t)v;
	}
	if (i != len)
		return -EINVAL;
	memcpy(out, tmp, sizeof(tmp));
	return 0;
}

static int parse_v6(const char *s, size_t len, uint8_t out[16])
{
	char buf[INET6_ADDRSTRLEN];
	const char *last_colon = NULL;

	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	/* This refuses zone ids, brackets, whitespace and anything else that
	 * some inet_pton() might tolerate. */
	for (size_t i = 0; i < len; i++) {
		if (!is_hex(s[i]) && s[i] != ':' && s[i] != '.')
			return -EINVAL;
		if (s[i] == ':')
			last_colon = s + i;
	}
	if (!last_colon)
		return -EINVAL;
	if (memchr(s, '.', len)) {
		/* An embedded IPv4 tail obeys the IPv4 rules. */
		uint8_t v4[4];
		size_t tail = len - (size_t)(last_colon + 1 - s);

		if (parse_v4(last_colon + 1, tail, v4) < 0)
			return -EINVAL;
	}
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET6, buf, out) != 1)
		return -EINVAL;
	return 0;
}

static int ip_parse_n(const char *s, size_t len, struct cidr_ip *ret)
{
	struct cidr_ip ip = { 0 };

	if (memchr(s, ':', len)) {
		if (parse_v6(s, len, ip.addr) < 0)
			return -EINVAL;
		ip.family = AF_INET6;
	} else {
		if (parse_v4(s, len, ip.addr) < 0)
			return -EINVAL;
		ip.family = AF_INET;
	}
	*ret = ip;
	return 0;
}

int cidr_ip_parse(const char *s, struct cidr_ip *ret)
{
	if (!s)
		return -EINVAL;
	return ip_parse_n(s, strlen(s), ret);
}

static int ip_bits(int family)
{
	return family == AF_INET ? 32 : 128;
}

int cidr_parse_loose(const char *s, struct cidr *ret)
{
	const char *slash, *p;
	struct cidr c = { 0 };
	int prefix = 0;

	if (!s || !(slash = strchr(s, '/')))
		return -EINVAL;
	p = slash + 1;
	if (!is_digit(p[0]) || (p[0] == '0' && p[1] != '\0'))
		return -EINVAL;
	for (; *p; p++) {
		if (!is_digit(*p) || prefix > 999)
			return -EINVAL;
		prefix = prefix * 10 + (*p - '0');
	}
	if (ip_parse_n(s, (size_t)(slash - s), &c.ip) < 0)
		return -EINVAL;
	if (prefix > ip_bits(c.ip.family))
		return -ERANGE;
	c.prefix = prefix;
	*ret = c;
	return 0;
}

void cidr_mask(struct cidr *c)
{
	int bytes = ip_bits(c->ip.family) / 8;

	for (int i = 0; i < bytes; i++) {
		int keep = c->prefix - i * 8;

		if (keep <= 0)
			c->ip.addr[i] = 0;
		else if (keep < 8)
			c->ip.addr[i] &= (uint8_t)(0xff << (8 - keep));
	}
}

bool cidr_host_bits_zero(const struct cidr *c)
{
	struct cidr m = *c;

	cidr_mask(&m);
	return memcmp(m.ip.addr, c->ip.addr, sizeof(m.ip.addr)) == 0;
}

int cidr_parse(const char *s, struct cidr *ret)
{
	struct cidr c;

	if (cidr_parse_loose(s, &c) < 0 || !cidr_host_bits_zero(&c))
		return -EINVAL;
	*ret = c;
	return 0;
}

bool cidr_contains(const struct cidr *net, const struct cidr_ip *ip)
{
	struct cidr probe;

	/* Families never mix: see core/cidr.h. */
	if (net->ip.family != ip->family || net->prefix < 0 || net->prefix > ip_bits(ip->family))
		return false;
	probe.ip = *ip;
	probe.prefix = net->prefix;
	cidr_mask(&probe);
	return memcmp(probe.ip.addr, net->ip.addr, (size_t)ip_bits(ip->family) / 8) == 0;
}

void cidr_ip_str(const struct cidr_ip *ip, char *out, size_t out_size)
{
	if (out_size == 0)
		return;
	if (!inet_ntop(ip->family, ip->addr, out, (socklen_t)out_size))
		out[0] = '\0';
}

void cidr_str(const struct cidr *c, char *out, size_t out_size)
{
	char addr[INET6_ADDRSTRLEN];

	cidr_ip_str(&c->ip, addr, sizeof(addr));
	snprintf(out, out_size, "%s/%d", addr, c->prefix);
}

bool cidr_ip_is_v4mapped(const struct cidr_ip *ip)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	return ip->family == AF_INET6 && memcmp(ip->addr, mapped, sizeof(mapped)) == 0;
}

void cidr_ip_unmap(struct cidr_ip *ip)
{
	if (ip->family != AF_INET6 || !cidr_ip_is_v4mapped(ip))
		return;
	memmove(ip->addr, ip->addr + 12, 4);
	memset(ip->addr + 4, 0, 12);
	ip->family = AF_INET;
}

void cidr_unmap(struct cidr *c)
{
	if (c->ip.family != AF_INET6 || c->prefix < 96 || !cidr_ip_is_v4mapped(&c->ip))
		return;
	cidr_ip_unmap(&c->ip);
	c->prefix -= 96;
}

static int parse_one(const char *s, size_t len, struct cidr *ret)
{
	char buf[CIDR_STRLEN + 1];
	struct cidr_ip ip;

	if (len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (!memchr(buf, '/', len)) {
		/* A bare address is one host. */
		if (cidr_ip_parse(buf, &ip) < 0)
			return -EINVAL;
		ret->ip = ip;
		ret->prefix = ip.family == AF_INET ? 32 : 128;
		return 0;
	}
	return cidr_parse(buf, ret);
}

int cidr_list_parse(const char *text, struct cidr_list *ret, char *why, size_t whylen)
{
	struct cidr_list d = { 0 };
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
		if (d.n == CIDR_LIST_MAX) {
			snprintf(why, whylen, "lists more than %d prefixes", CIDR_LIST_MAX);
			return -EINVAL;
		}
		if (parse_one(a, (size_t)(b - a), &d.v[d.n]) < 0) {
			snprintf(
				why, whylen,
				"'%.*s' is not a CIDR like 10.0.0.0/8 or fc00::/7 (host bits zero)",
				(int)(b - a > 64 ? 64 : b - a), a);
			return -EINVAL;
		}
		cidr_unmap(&d.v[d.n]);
		d.n++;
		if (!*end)
			break;
		p = end + 1;
	}
	*ret = d;
	return 0;
}
