/* RAND_set_rand_method is the one hook OpenSSL 3 keeps for replacing where
 * RAND_bytes draws from; it is marked deprecated, not removed. */
#define OPENSSL_SUPPRESS_DEPRECATED

#include "core/util.h"

#include <errno.h>
#include <openssl/rand.h>
#include <sys/random.h>
#include <jansson.h>
#include <malloc.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

size_t util_token_len(size_t nbytes)
{
	return sodium_base64_ENCODED_LEN(nbytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING) - 1;
}

void util_random_token(char *out, size_t out_size, size_t nbytes)
{
	uint8_t raw[64];

	if (nbytes > sizeof(raw))
		nbytes = sizeof(raw);
	randombytes_buf(raw, nbytes);
	sodium_bin2base64(out, out_size, raw, nbytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
}

void util_sha256_str(const char *s, uint8_t out[32])
{
	crypto_hash_sha256(out, (const unsigned char *)s, strlen(s));
}

void util_hex(const uint8_t *in, size_t len, char *out)
{
	sodium_bin2hex(out, len * 2 + 1, in, len);
}

bool util_streq_ct(const char *a, const char *b)
{
	uint8_t ha[32], hb[32];

	/* Hashing first makes the comparison independent of both lengths. */
	util_sha256_str(a, ha);
	util_sha256_str(b, hb);
	return sodium_memcmp(ha, hb, sizeof(ha)) == 0;
}

int util_strlcpy(char *dst, const char *src, size_t size)
{
	size_t n = strlen(src);

	if (size == 0)
		return -E2BIG;
	if (n >= size) {
		memcpy(dst, src, size - 1);
		dst[size - 1] = '\0';
		return -E2BIG;
	}
	memcpy(dst, src, n + 1);
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int util_pct_decode(char *s)
{
	char *w = s;

	for (const char *r = s; *r; r++) {
		if (*r != '%') {
			*w++ = *r;
			continue;
		}
		int hi = hexval(r[1]), lo = hi < 0 ? -1 : hexval(r[2]);
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
			return -EINVAL;
		*w++ = (char)(hi << 4 | lo);
		r += 2;
	}
	*w = '\0';
	return 0;
}

void util_free_secret(char *s)
{
	if (!s)
		return;
	sodium_memzero(s, strlen(s));
	free(s);
}

static void wipe_free(void *p)
{
	if (!p)
		return;
	sodium_memzero(p, malloc_usable_size(p));
	free(p);
}

void util_json_wipe_on_free(void)
{
	json_set_alloc_funcs(malloc, wipe_free);
}

static int kernel_bytes(unsigned char *buf, int num)
{
	while (num > 0) {
		ssize_t n = getrandom(buf, (size_t)num, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return 0;
		}
		buf += n;
		num -= (int)n;
	}
	return num == 0;
}

/* The kernel mixes in its own entropy: what OpenSSL would add is dropped. */
static int kernel_seed(const void *buf, int num)
{
	(void)buf, (void)num;
	return 1;
}

static int kernel_add(const void *buf, int num, double entropy)
{
	(void)buf, (void)num, (void)entropy;
	return 1;
}

static int kernel_status(void)
{
	return 1;
}

#ifndef OPENSSL_NO_DEPRECATED_3_0
static const RAND_METHOD kernel_rand = {
	.seed = kernel_seed,
	.bytes = kernel_bytes,
	.add = kernel_add,
	.pseudorand = kernel_bytes,
	.status = kernel_status,
};
#endif

int util_openssl_use_getrandom(void)
{
#ifndef OPENSSL_NO_DEPRECATED_3_0
	return RAND_set_rand_method(&kernel_rand) == 1 ? 0 : -ENOTSUP;
#else
	return -ENOTSUP;
#endif
}

/* Unix seconds, or RFC 3339 in UTC ("2025-01-31T12:00:00Z"). */
int util_parse_time(const char *v, int64_t *ret)
{
	struct tm tm = { 0 };
	const char *end;
	char *e;
	long long n;

	if (!v[0])
		return -EINVAL;
	errno = 0;
	n = strtoll(v, &e, 10);
	if (!errno && !*e && n >= 0) {
		*ret = n;
		return 0;
	}
	end = strptime(v, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end || strcmp(end, "Z") != 0)
		return -EINVAL;
	*ret = (int64_t)timegm(&tm);
	return 0;
}

/* Two 8-byte words: GCC's and Clang's generic vectors, one SSE register
 * on x86-64 (whatever the target has elsewhere). */
typedef uint64_t util_u64x2 __attribute__((vector_size(16)));

void util_xor_key(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t off)
{
	uint8_t m[8];
	uint64_t k, w;
	util_u64x2 kv, a, b;
	size_t i = 0;

	/* The key rotated so that m[0] lines up with p[0]; an 8-byte word
	 * holds it twice. memcpy loads and stores are single unaligned moves
	 * on the machines we build for, and keep the compiler's aliasing
	 * rules. 32 bytes a turn: every byte the tunnel carries passes here
	 * (BENCHMARKS.md, "scp through the bastion"), both ways. */
	for (int j = 0; j < 8; j++)
		m[j] = mask[(off + (uint64_t)j) & 3];
	memcpy(&k, m, sizeof(k));
	kv = (util_u64x2){ k, k };
	for (; i + 32 <= n; i += 32) {
		memcpy(&a, p + i, sizeof(a));
		memcpy(&b, p + i + 16, sizeof(b));
		a ^= kv;
		b ^= kv;
		memcpy(p + i, &a, sizeof(a));
		memcpy(p + i + 16, &b, sizeof(b));
	}
	for (; i + 8 <= n; i += 8) {
		memcpy(&w, p + i, sizeof(w));
		w ^= k;
		memcpy(p + i, &w, sizeof(w));
	}
	for (; i < n; i++)
		p[i] ^= m[i & 3];
}
