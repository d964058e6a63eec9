/* Small helpers shared by every module. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Fills out with a random URL-safe token of nbytes random bytes (base64url,
 * no padding). out_size must be at least util_token_len(nbytes) + 1. */
void util_random_token(char *out, size_t out_size, size_t nbytes);
size_t util_token_len(size_t nbytes);

/* SHA-256 of a NUL-terminated string. */
void util_sha256_str(const char *s, uint8_t out[32]);

/* Lower-case hex of len bytes into out (2*len+1 bytes). */
void util_hex(const uint8_t *in, size_t len, char *out);

/* Constant-time comparison of two NUL-terminated strings of any length. */
bool util_streq_ct(const char *a, const char *b);

/* Copies src into dst (always NUL-terminated); -E2BIG if it did not fit
 * (dst then holds a truncated copy). */
int util_strlcpy(char *dst, const char *src, size_t size);

/* Percent-decodes in place; -EINVAL on a bad escape or an encoded NUL. */
int util_pct_decode(char *s);

/* Frees s after wiping it (NULL is fine). */
void util_free_secret(char *s);

/* Makes jansson wipe every block it frees: request bodies and secret values
 * pass through its strings. Call once, before any JSON is made. Blocks stay
 * plain malloc blocks, so free() on json_dumps() output remains right. */
void util_json_wipe_on_free(void);

/* Makes OpenSSL's RAND_bytes (TLS, libssh's packet padding, keys) read the
 * kernel's CSPRNG with getrandom(2) instead of OpenSSL 3's DRBG, whose
 * generic parameter machinery cost a keystroke more instructions than the
 * rest of bastion's path for it (docs/decisions.md). Call once, first, before
 * any thread uses OpenSSL. -ENOTSUP where OpenSSL was built without the
 * hook; OpenSSL's own DRBG then stays. */
int util_openssl_use_getrandom(void);

/* A time given by a person or a script: Unix seconds, or RFC 3339 in UTC
 * ("2025-01-31T12:00:00Z"). 0 or -EINVAL. */
int util_parse_time(const char *v, int64_t *ret);

/* XORs n bytes at p with the 4-byte key repeated, p[0] being at offset off
 * of the keyed stream: a WebSocket's masking (RFC 6455 §5.3), by the
 * server's frame reader and the native client's writer. 32 bytes a turn. */
void util_xor_key(uint8_t *p, size_t n, const uint8_t key[4], uint64_t off);
