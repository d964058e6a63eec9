/* The PROXY protocol header parser (proxyproto.h): versions 1 (text) and 2
 * (binary) as HAProxy's proxy-protocol.txt defines them. Pure: no I/O, no
 * allocation, any bytes (fuzzed). Reading the header off a socket before
 * TLS is proxywait.c's. */
#include "server/proxyproto.h"

#include <errno.h>
#include <string.h>

#include <netinet/in.h>

#include "core/cidr.h"

static const char V1_SIG[] = "PROXY "; /* 6 bytes */
static const uint8_t V2_SIG[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
				    0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };

bool pp_starts_like(uint8_t first)
{
	return first == (uint8_t)V1_SIG[0] || first == V2_SIG[0];
}

static void set_addr(struct sockaddr_storage *ss, int family, const uint8_t *addr,
		     const uint8_t port[2])
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, addr, 4);
		memcpy(&sin->sin_port, port, 2);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, addr, 16);
		memcpy(&sin6->sin6_port, port, 2);
	}
}

/* A v1 port: 0..65535 in decimal, without leading zeros or sign. */
static int v1_port(const char *s, size_t n, uint8_t ret[2])
{
	unsigned v = 0;

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > 65535)
		return -EINVAL;
	ret[0] = (uint8_t)(v >> 8);
	ret[1] = (uint8_t)v;
	return 0;
}

/* "PROXY TCP4 SRC DST SPORT DPORT" / "... TCP6 ..." / "PROXY UNKNOWN ...",
 * without its CRLF: line[0, n), n < PP_V1_MAX, printable ASCII only. */
static int v1_line(const char *line, size_t n, struct pp_header *ret)
{
	char tok[6][48];
	size_t nt = 0, start = 0;
	struct cidr_ip ip[2];
	uint8_t port[2][2];
	int family;

	if (n >= 13 && memcmp(line, "PROXY UNKNOWN", 13) == 0 && (n == 13 || line[13] == ' ')) {
		/* The balancer could not say (the spec: the rest is ignored). */
		ret->local = true;
		return 0;
	}
	for (size_t i = 0; i <= n; i++) {
		if (i < n && line[i] != ' ')
			continue;
		/* One space between fields, no empty field, at most six. */
		if (i == start || nt == 6 || i - start >= sizeof(tok[0]))
			return -EINVAL;
		memcpy(tok[nt], line + start, i - start);
		tok[nt][i - start] = '\0';
		nt++;
		start = i + 1;
	}
	if (nt != 6)
		return -EINVAL;
	if (strcmp(tok[1], "TCP4") == 0)
		family = AF_INET;
	else if (strcmp(tok[1], "TCP6") == 0)
		family = AF_INET6;
	else
		return -EINVAL;
	for (int i = 0; i < 2; i++) {
		if (cidr_ip_parse(tok[2 + i], &ip[i]) < 0 || ip[i].family != family)
			return -EINVAL;
		if (v1_port(tok[4 + i], strlen(tok[4 + i]), port[i]) < 0)
			return -EINVAL;
	}
	ret->local = false;
	set_addr(&ret->src, family, ip[0].addr, port[0]);
	set_addr(&ret->dst, family, ip[1].addr, port[1]);
	return 0;
}

static int parse_v1(const uint8_t *buf, size_t len, unsigned versions, struct pp_header *ret)
{
	/* The CR at index PP_V1_MAX - 2 at the latest: 107 bytes with the LF. */
	size_t lim = len < PP_V1_MAX - 1 ? len : PP_V1_MAX - 1;

	if (memcmp(buf, V1_SIG, len < 6 ? len : 6) != 0)
		return -ENOMSG;
	if (len < 6)
		return 0;
	if (!(versions & PP_V1))
		return -EPROTONOSUPPORT;
	for (size_t i = 0; i < lim; i++) {
		if (buf[i] == '\r') {
			if (i + 1 == len)
				return 0; /* the LF is still to come */
			if (buf[i + 1] != '\n')
				return -EINVAL;
			ret->version = PP_V1;
			if (v1_line((const char *)buf, i, ret) < 0)
				return -EINVAL;
			return (int)(i + 2);
		}
		if (buf[i] < 0x20 || buf[i] > 0x7e)
			return -EINVAL;
	}
	/* No CR in the first 106 bytes: the CRLF cannot fit any more. */
	return len >= PP_V1_MAX - 1 ? -E2BIG : 0;
}

static int parse_v2(const uint8_t *buf, size_t len, unsigned versions, struct pp_header *ret)
{
	unsigned cmd, family, transport;
	size_t rest;

	if (memcmp(buf, V2_SIG, len < sizeof(V2_SIG) ? len : sizeof(V2_SIG)) != 0)
		return -ENOMSG;
	if (len < PP_V2_FIXED)
		return 0;
	if (buf[12] >> 4 != 2)
		return -EINVAL;
	if (!(versions & PP_V2))
		return -EPROTONOSUPPORT;
	cmd = buf[12] & 0x0f;
	family = buf[13] >> 4;
	transport = buf[13] & 0x0f;
	rest = (size_t)buf[14] << 8 | buf[15];
	if (cmd > 1 || family > 3 || transport > 2)
		return -EINVAL;
	if (rest > PP_V2_MAX_REST)
		return -E2BIG;
	if (len < PP_V2_FIXED + rest)
		return 0;
	ret->version = PP_V2;
	ret->local = true;
	/* LOCAL: the balancer speaks for itself (a health check). UNSPEC and
	 * UNIX families carry no IP address: the connection's own stands. */
	if (cmd == 1 && (family == 1 || family == 2)) {
		const uint8_t *a = buf + PP_V2_FIXED;
		size_t alen = family == 1 ? 4 : 16;
		int af = family == 1 ? AF_INET : AF_INET6;

		if (transport != 1 || rest < 2 * alen + 4)
			return -EINVAL; /* only TCP, and the addresses must fit */
		set_addr(&ret->src, af, a, a + 2 * alen);
		set_addr(&ret->dst, af, a + alen, a + 2 * alen + 2);
		ret->local = false;
	} else if (cmd == 1 && family == 3 && rest < 216) {
		return -EINVAL;
	}
	/* TLVs after the addresses are not needed: skipped. */
	return (int)(PP_V2_FIXED + rest);
}

int pp_parse(const uint8_t *buf, size_t len, unsigned versions, struct pp_header *ret)
{
	struct pp_header h;
	int r;

	if (len == 0)
		return 0;
	memset(&h, 0, sizeof(h));
	if (buf[0] == (uint8_t)V1_SIG[0])
		r = parse_v1(buf, len, versions, &h);
	else if (buf[0] == V2_SIG[0])
		r = parse_v2(buf, len, versions, &h);
	else
		r = -ENOMSG;
	if (r > 0)
		*ret = h;
	return r;
}
