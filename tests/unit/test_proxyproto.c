/* server/proxyproto.c: the PROXY protocol header parser (HAProxy's
 * proxy-protocol.txt, versions 1 and 2), byte by byte as it arrives, and
 * what it refuses. The socket side is covered by tests/e2e/proxy.test.mjs
 * behind a real HAProxy. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>

#include <cmocka.h>

#include "server/proxyproto.h"

#define ANY (PP_V1 | PP_V2)

static const uint8_t SIG[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
				 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };

static const char *src_str(const struct pp_header *h, char *out, size_t size, unsigned *port)
{
	if (h->src.ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)&h->src;

		*port = ntohs(s->sin_port);
		return inet_ntop(AF_INET, &s->sin_addr, out, (socklen_t)size);
	}
	*port = ntohs(((const struct sockaddr_in6 *)&h->src)->sin6_port);
	return inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&h->src)->sin6_addr, out,
			 (socklen_t)size);
}

/* Every proper prefix of a complete header asks for more, and the whole
 * (with anything after it) gives its length. */
static void check_incremental(const uint8_t *buf, size_t hlen, unsigned versions,
			      struct pp_header *h)
{
	uint8_t more[PP_MAX + 8];

	for (size_t k = 0; k < hlen; k++)
		assert_int_equal(pp_parse(buf, k, versions, h), 0);
	assert_int_equal(pp_parse(buf, hlen, versions, h), (int)hlen);
	memcpy(more, buf, hlen);
	memcpy(more + hlen, "\x16\x03\x01", 3); /* the TLS record behind it */
	assert_int_equal(pp_parse(more, hlen + 3, versions, h), (int)hlen);
}

static void v1_headers(void **state)
{
	struct pp_header h;
	char ip[64];
	unsigned port;
	const char *tcp4 = "PROXY TCP4 127.0.0.7 127.0.0.1 40001 8443\r\n";
	const char *tcp6 = "PROXY TCP6 2001:db8::7 2001:db8::1 65535 443\r\n";
	const char *unknown = "PROXY UNKNOWN ffff:f...f:ffff 0 0\r\n";

	check_incremental((const uint8_t *)tcp4, strlen(tcp4), PP_V1, &h);
	assert_int_equal(h.version, PP_V1);
	assert_false(h.local);
	assert_string_equal(src_str(&h, ip, sizeof(ip), &port), "127.0.0.7");
	assert_int_equal(port, 40001);
	check_incremental((const uint8_t *)tcp6, strlen(tcp6), ANY, &h);
	assert_string_equal(src_str(&h, ip, sizeof(ip), &port), "2001:db8::7");
	assert_int_equal(port, 65535);
	check_incremental((const uint8_t *)unknown, strlen(unknown), PP_V1, &h);
	assert_true(h.local);
	assert_int_equal(pp_parse((const uint8_t *)"PROXY UNKNOWN\r\n", 15, PP_V1, &h), 15);
	assert_true(h.local);
	/* v1 when only v2 is accepted */
	assert_int_equal(pp_parse((const uint8_t *)tcp4, strlen(tcp4), PP_V2, &h),
			 -EPROTONOSUPPORT);
}

static void v1_refused(void **state)
{
	struct pp_header h;
	char longer[200];
	static const char *const bad[] = {
		"PROXY TCP4 127.0.0.7 127.0.0.1 40001\r\n",        /* a field short */
		"PROXY TCP4 127.0.0.7 127.0.0.1 40001 8443 9\r\n", /* one too many */
		"PROXY TCP4  127.0.0.7 127.0.0.1 40001 8443\r\n",  /* two spaces */
		"PROXY TCP4 127.0.0.7 127.0.0.1 40001 8443 \r\n",  /* trailing space */
		"PROXY TCP4 2001:db8::7 127.0.0.1 40001 8443\r\n", /* family mixed */
		"PROXY TCP6 127.0.0.7 127.0.0.1 40001 8443\r\n",   /* family mixed */
		"PROXY TCP4 127.0.0.07 127.0.0.1 40001 8443\r\n",  /* leading zero */
		"PROXY TCP4 127.0.0.7 127.0.0.1 040001 8443\r\n",  /* leading zero */
		"PROXY TCP4 127.0.0.7 127.0.0.1 65536 8443\r\n",   /* port range */
		"PROXY TCP4 127.0.0.7 127.0.0.1 -1 8443\r\n",      /* sign */
		"PROXY UDP4 127.0.0.7 127.0.0.1 40001 8443\r\n",   /* protocol */
		"PROXY TCP4 localhost 127.0.0.1 40001 8443\r\n",   /* a name */
		"PROXY TCP4 127.0.0.7 127.0.0.1 40001 8443\r\r\n", /* CR alone */
		"PROXY TCP4 127.0.0.7 127.0.0.1 40001 8443\n",     /* LF alone */
		"PROXY TCP4 127.0.0.7\t127.0.0.1 40001 8443\r\n",  /* control */
		"PROXY UNKNOWNX\r\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = pp_parse((const uint8_t *)bad[i], strlen(bad[i]), ANY, &h);

		if (r != -EINVAL)
			fail_msg("%s: %d", bad[i], r);
	}
	/* 107 bytes with the CRLF is the most; one more is over (found by
	 * fuzz_proxy: a CR at index 106 was taken). */
	memset(longer, 'N', sizeof(longer));
	memcpy(longer, "PROXY UNKNOWN ", 14);
	memcpy(longer + 105, "\r\n", 2);
	assert_int_equal(pp_parse((const uint8_t *)longer, 107, ANY, &h), 107);
	memset(longer, 'N', sizeof(longer));
	memcpy(longer, "PROXY UNKNOWN ", 14);
	memcpy(longer + 106, "\r\n", 2);
	assert_int_equal(pp_parse((const uint8_t *)longer, 108, ANY, &h), -E2BIG);
	assert_int_equal(pp_parse((const uint8_t *)longer, 107, ANY, &h), -E2BIG);
	/* No CRLF within 107 bytes: over the limit, however it goes on. */
	memset(longer, 'a', sizeof(longer));
	memcpy(longer, "PROXY UNKNOWN ", 14);
	assert_int_equal(pp_parse((const uint8_t *)longer, 105, ANY, &h), 0);
	assert_int_equal(pp_parse((const uint8_t *)longer, 106, ANY, &h), -E2BIG);
	assert_int_equal(pp_parse((const uint8_t *)longer, sizeof(longer), ANY, &h), -E2BIG);
	/* Not a PROXY header: a TLS record, an HTTP request, a near miss. */
	assert_int_equal(pp_parse((const uint8_t *)"\x16\x03\x01\x02", 4, ANY, &h), -ENOMSG);
	assert_int_equal(pp_parse((const uint8_t *)"GET / HTTP/1.1\r\n", 16, ANY, &h), -ENOMSG);
	assert_int_equal(pp_parse((const uint8_t *)"PROXZ", 5, ANY, &h), -ENOMSG);
	assert_int_equal(pp_parse((const uint8_t *)"PRO", 3, ANY, &h), 0);
	assert_true(pp_starts_like('P'));
	assert_true(pp_starts_like('\r'));
	assert_false(pp_starts_like(0x16));
}

/* A v2 header: signature, version and command, family and transport, the
 * length, then body. */
static size_t v2(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const uint8_t *body, size_t n)
{
	memcpy(out, SIG, 12);
	out[12] = ver_cmd;
	out[13] = fam;
	out[14] = (uint8_t)(n >> 8);
	out[15] = (uint8_t)n;
	memcpy(out + 16, body, n);
	return 16 + n;
}

static void v2_headers(void **state)
{
	uint8_t buf[PP_MAX + 16], body[PP_MAX] = { 0 };
	struct pp_header h;
	char ip[64];
	unsigned port;
	size_t n;
	/* 127.0.0.7:40001 -> 127.0.0.1:8443 */
	const uint8_t in4[12] = { 127, 0, 0, 7, 127, 0, 0, 1, 0x9c, 0x41, 0x20, 0xfb };

	n = v2(buf, 0x21, 0x11, in4, sizeof(in4));
	check_incremental(buf, n, PP_V2, &h);
	assert_int_equal(h.version, PP_V2);
	assert_false(h.local);
	assert_string_equal(src_str(&h, ip, sizeof(ip), &port), "127.0.0.7");
	assert_int_equal(port, 40001);
	/* TLVs after the addresses are skipped */
	memcpy(body, in4, sizeof(in4));
	memcpy(body + 12,
	       "\x04\x00\x03"
	       "abc",
	       6); /* PP2_TYPE_NOOP */
	n = v2(buf, 0x21, 0x11, body, 18);
	check_incremental(buf, n, ANY, &h);
	assert_false(h.local);
	/* IPv6 */
	memset(body, 0, sizeof(body));
	body[0] = 0x20, body[1] = 0x01, body[2] = 0x0d, body[3] = 0xb8, body[15] = 7;
	body[32] = 0xff, body[33] = 0xff;
	n = v2(buf, 0x21, 0x21, body, 36);
	check_incremental(buf, n, PP_V2, &h);
	assert_string_equal(src_str(&h, ip, sizeof(ip), &port), "2001:db8::7");
	assert_int_equal(port, 65535);
	/* LOCAL (a health check), UNSPEC and UNIX: the connection's own address */
	n = v2(buf, 0x20, 0x00, body, 0);
	check_incremental(buf, n, PP_V2, &h);
	assert_true(h.local);
	n = v2(buf, 0x21, 0x00, body, 0);
	assert_int_equal(pp_parse(buf, n, PP_V2, &h), (int)n);
	assert_true(h.local);
	n = v2(buf, 0x21, 0x31, body, 216);
	assert_int_equal(pp_parse(buf, n, PP_V2, &h), (int)n);
	assert_true(h.local);
	/* the largest accepted */
	n = v2(buf, 0x20, 0x00, body, PP_V2_MAX_REST);
	assert_int_equal(pp_parse(buf, n, PP_V2, &h), (int)PP_MAX);
	/* v2 when only v1 is accepted */
	n = v2(buf, 0x21, 0x11, in4, sizeof(in4));
	assert_int_equal(pp_parse(buf, n, PP_V1, &h), -EPROTONOSUPPORT);
}

static void v2_refused(void **state)
{
	uint8_t buf[PP_MAX + 64], body[64] = { 0 };
	struct pp_header h;
	size_t n;

	n = v2(buf, 0x11, 0x11, body, 12); /* version 1 in the binary form */
	assert_int_equal(pp_parse(buf, n, PP_V2, &h), -EINVAL);
	n = v2(buf, 0x22, 0x11, body, 12); /* command 2 */
	assert_int_equal(pp_parse(buf, n, PP_V2, &h), -EINVAL);
	n = v2(buf, 0x21, 0x41, body, 12); /* family 4 */
	assert_int_equal(pp_parse(buf, n, PP_V2, &h), -EINVAL);
	n = v2(buf, 0x21, 0x12, body, 12); /* UDP */
	assert_int_equal(pp_parse(buf, n, PP_V2, &h), -EINVAL);
	n = v2(buf, 0x21, 0x11, body, 11); /* addresses cut short */
	assert_int_equal(pp_parse(buf, n, PP_V2, &h), -EINVAL);
	n = v2(buf, 0x21, 0x21, body, 35);
	assert_int_equal(pp_parse(buf, n, PP_V2, &h), -EINVAL);
	n = v2(buf, 0x21, 0x31, body, 64); /* UNIX addresses are 216 bytes */
	assert_int_equal(pp_parse(buf, n, PP_V2, &h), -EINVAL);
	/* over the size limit: refused from the fixed part on */
	memcpy(buf, SIG, 12);
	buf[12] = 0x21, buf[13] = 0x11, buf[14] = 0x03, buf[15] = 0xf1; /* 1009 */
	assert_int_equal(pp_parse(buf, 16, PP_V2, &h), -E2BIG);
	buf[14] = 0xff, buf[15] = 0xff;
	assert_int_equal(pp_parse(buf, 16, PP_V2, &h), -E2BIG);
	/* a near miss of the signature */
	memcpy(buf, SIG, 12);
	buf[11] = 0x0b;
	assert_int_equal(pp_parse(buf, 12, ANY, &h), -ENOMSG);
	assert_int_equal(pp_parse(buf, 11, ANY, &h), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(v1_headers),
		cmocka_unit_test(v1_refused),
		cmocka_unit_test(v2_headers),
		cmocka_unit_test(v2_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
