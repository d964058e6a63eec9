/* The PROXY protocol (HAProxy's proxy-protocol.txt, versions 1 and 2): the
 * header a TCP load balancer puts in front of a connection to say whose it
 * is. The parser is pure (any thread, any bytes; fuzzed in
 * tests/fuzz/fuzz_proxy.c); reading it off a socket is proxyproto.c's, and
 * only from server.trusted_proxies (docs/security.md). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Versions a listener accepts (server.proxy_protocol). */
#define PP_V1 1u
#define PP_V2 2u

/* v1: at most 107 bytes with the CRLF (the spec's bound). v2: the 16-byte
 * fixed part and at most PP_V2_MAX_REST more (addresses, 216 bytes for
 * UNIX ones, plus TLVs, which are skipped): HAProxy sends none unless told
 * to, and a balancer that sends kilobytes is refused rather than
 * buffered. */
#define PP_V1_MAX      107u
#define PP_V2_FIXED    16u
#define PP_V2_MAX_REST 1008u
#define PP_MAX         (PP_V2_FIXED + PP_V2_MAX_REST)

struct pp_header {
	unsigned version; /* PP_V1 or PP_V2 */
	/* v2 LOCAL (the balancer's own health check), v1 UNKNOWN, or an
	 * address family that is not IP: the connection's own addresses
	 * stand. */
	bool local;
	struct sockaddr_storage src, dst; /* AF_INET or AF_INET6, when !local */
};

/* Parses the start of a connection, buf[0, len). Returns the header's
 * length (> 0, at most PP_MAX) with *ret filled; 0 when buf is the start
 * of a header that is not complete yet (every byte of buf belongs to it);
 * -ENOMSG when buf does not start like a PROXY header; -EPROTONOSUPPORT for
 * a version not in `versions`; -E2BIG past the bounds above; -EINVAL for
 * anything else malformed. */
int pp_parse(const uint8_t *buf, size_t len, unsigned versions, struct pp_header *ret);

/* Whether a connection whose first byte is `first` begins with a PROXY
 * header ('P' of v1, CR of v2's signature; a TLS record starts 0x16). */
bool pp_starts_like(uint8_t first);
