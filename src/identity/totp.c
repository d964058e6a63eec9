/* TOTP arithmetic (RFC 4226 HOTP, RFC 6238 TOTP), base32 and recovery
 * codes: pure functions, no store, no clock of their own, so that the RFC's
 * test vectors check them exactly. HMAC-SHA-1 is OpenSSL's (libsodium has
 * no SHA-1, and every authenticator app speaks SHA-1). */
#include "identity/mfa.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

static const uint32_t pow10[] = { 1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000 };

int ident_hotp(const uint8_t *key, size_t key_len, uint64_t counter, int digits, uint32_t *ret_code)
{
	uint8_t msg[8], mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	uint32_t bin;
	int off;

	if (!key || key_len == 0 || key_len > 64 || digits < 6 || digits > 8)
		return -EINVAL;
	for (int i = 7; i >= 0; i--) {
		msg[i] = (uint8_t)(counter & 0xff);
		counter >>= 8;
	}
	if (!HMAC(EVP_sha1(), key, (int)key_len, msg, sizeof(msg), mac, &mac_len) || mac_len != 20)
		return -EINVAL;
	off = mac[19] & 0x0f;
	bin = ((uint32_t)(mac[off] & 0x7f) << 24) | ((uint32_t)mac[off + 1] << 16) |
	      ((uint32_t)mac[off + 2] << 8) | (uint32_t)mac[off + 3];
	sodium_memzero(mac, sizeof(mac));
	*ret_code = bin % pow10[digits];
	return 0;
}

/* The code's digits without spaces into out (IDENT_TOTP_DIGITS + 1). */
static int code_digits(const char *code, char out[IDENT_TOTP_DIGITS + 1])
{
	size_t n = 0;

	for (const char *p = code; *p; p++) {
		if (*p == ' ')
			continue;
		if (*p < '0' || *p > '9' || n >= IDENT_TOTP_DIGITS)
			return -EINVAL;
		out[n++] = *p;
	}
	out[n] = '\0';
	return n == IDENT_TOTP_DIGITS ? 0 : -EINVAL;
}

int ident_totp_check(const uint8_t *key, size_t key_len, const char *code, int64_t now,
		     int64_t last_step, int64_t *ret_step)
{
	char want[IDENT_TOTP_DIGITS + 1], got[IDENT_TOTP_DIGITS + 1];
	int64_t step, found = -1;
	uint32_t v;
	int r;

	if (!code || strlen(code) > IDENT_OTP_MAX || now < 0)
		return -EINVAL;
	if ((r = code_digits(code, got)) < 0)
		return r;
	step = now / IDENT_TOTP_PERIOD;
	/* Every candidate is computed and compared, so that the time taken
	 * does not tell which step matched (or that a replayed one did). */
	for (int64_t t = step - IDENT_TOTP_SKEW; t <= step + IDENT_TOTP_SKEW; t++) {
		if (t < 0)
			continue;
		if ((r = ident_hotp(key, key_len, (uint64_t)t, IDENT_TOTP_DIGITS, &v)) < 0)
			goto out;
		snprintf(want, sizeof(want), "%0*u", IDENT_TOTP_DIGITS, v);
		if (sodium_memcmp(want, got, IDENT_TOTP_DIGITS) == 0 && t > last_step && found < 0)
			found = t;
	}
	if (found < 0) {
		r = -EACCES;
		goto out;
	}
	*ret_step = found;
	r = 0;
out:
	sodium_memzero(want, sizeof(want));
	sodium_memzero(got, sizeof(got));
	return r;
}

static const char b32_upper[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
static const char b32_lower[] = "abcdefghijklmnopqrstuvwxyz234567";

static int base32_with(const char *alphabet, const uint8_t *in, size_t len, char *out,
		       size_t out_size)
{
	size_t need = (len * 8 + 4) / 5 + 1, n = 0;
	uint32_t acc = 0;
	int bits = 0;

	if (out_size < need)
		return -E2BIG;
	for (size_t i = 0; i < len; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 5) {
			out[n++] = alphabet[(acc >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	if (bits > 0)
		out[n++] = alphabet[(acc << (5 - bits)) & 31];
	out[n] = '\0';
	return 0;
}

int ident_base32(const uint8_t *in, size_t len, char *out, size_t out_size)
{
	return base32_with(b32_upper, in, len, out, out_size);
}

char *ident_totp_uri(const char *user, const char *secret_b32)
{
	static const char fmt[] = "otpauth://totp/bastion:%s?secret=%s&issuer=bastion"
				  "&algorithm=SHA1&digits=%d&period=%d";
	int n = snprintf(NULL, 0, fmt, user, secret_b32, IDENT_TOTP_DIGITS, IDENT_TOTP_PERIOD);
	char *uri;

	if (n < 0 || !(uri = malloc((size_t)n + 1)))
		return NULL;
	snprintf(uri, (size_t)n + 1, fmt, user, secret_b32, IDENT_TOTP_DIGITS, IDENT_TOTP_PERIOD);
	return uri;
}

void ident_recovery_generate(char codes[IDENT_RECOVERY_CODES][IDENT_RECOVERY_SIZE],
			     uint8_t hashes[IDENT_RECOVERY_CODES][32])
{
	uint8_t raw[IDENT_RECOVERY_BYTES];
	char b32[17];

	for (int i = 0; i < IDENT_RECOVERY_CODES; i++) {
		randombytes_buf(raw, sizeof(raw));
		base32_with(b32_lower, raw, sizeof(raw), b32, sizeof(b32));
		/* 16 characters in groups of four: easy to copy by hand. */
		for (int g = 0, o = 0; g < 4; g++) {
			memcpy(codes[i] + o, b32 + g * 4, 4);
			o += 4;
			codes[i][o++] = g < 3 ? '-' : '\0';
		}
		util_sha256_str(b32, hashes[i]);
	}
	sodium_memzero(raw, sizeof(raw));
	sodium_memzero(b32, sizeof(b32));
}

int ident_recovery_hash(const char *typed, uint8_t ret_hash[32])
{
	char norm[17];
	size_t n = 0;
	int r = -EINVAL;

	if (!typed || strlen(typed) > IDENT_OTP_MAX)
		return -EINVAL;
	for (const char *p = typed; *p; p++) {
		char ch = *p;

		if (ch == '-' || ch == ' ')
			continue;
		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '2' && ch <= '7')) || n >= 16)
			goto out;
		norm[n++] = ch;
	}
	if (n != 16)
		goto out;
	norm[n] = '\0';
	util_sha256_str(norm, ret_hash);
	r = 0;
out:
	sodium_memzero(norm, sizeof(norm));
	return r;
}
