/* A recording's chunks (record.h): their tags (HMAC-SHA256, chained), how
 * each is stored (a zstd frame, or raw events as they are when a sample
 * says they do not compress; zlib, as chunks were stored before, read
 * only for those), sealing one and opening one back. Any thread: what is
 * kept across calls (a compressor, the MAC) is per thread. */
#include "terminal/record.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <sodium.h>
#include <zlib.h>
#include <zstd.h>

#include "core/buf.h"
#include "core/err.h"
#include "store/store_rec.h"

static void be64(uint8_t out[8], int64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		out[i] = (uint8_t)(v & 0xff);
}

/* HMAC-SHA256 through OpenSSL, not libsodium: the same tags (chunks
 * sealed before verify as they did), but libsodium's SHA-256 is portable C
 * and OpenSSL's uses the CPU's SHA instructions where there are some:
 * 3.2 against 0.6 s per GiB sealed here, and on output that does not
 * compress the tag covers every byte (BENCHMARKS.md "Recording", the
 * round of the raw chunks). The MAC is fetched once per thread (pool
 * threads live as long as the process); a context per tag, whose free
 * wipes the key's state. */
static _Thread_local EVP_MAC *seal_hmac;

struct mac_part {
	const void *p;
	size_t n;
};

static int hmac_parts(const uint8_t key[REC_KEY_BYTES], const struct mac_part *parts, size_t nparts,
		      uint8_t out[STORE_REC_TAG_BYTES])
{
	OSSL_PARAM params[2];
	EVP_MAC_CTX *ctx = NULL;
	size_t outl = 0;
	int r = -ENOMEM;

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (!seal_hmac && !(seal_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL)))
		return r;
	if (!(ctx = EVP_MAC_CTX_new(seal_hmac)) || !EVP_MAC_init(ctx, key, REC_KEY_BYTES, params))
		goto out;
	for (size_t i = 0; i < nparts; i++)
		if (!EVP_MAC_update(ctx, parts[i].p, parts[i].n))
			goto out;
	if (!EVP_MAC_final(ctx, out, &outl, STORE_REC_TAG_BYTES) || outl != STORE_REC_TAG_BYTES)
		goto out;
	r = 0;
out:
	EVP_MAC_CTX_free(ctx);
	return r;
}

int rec_chunk_tag(const uint8_t key[REC_KEY_BYTES], const char *id, int64_t seq,
		  const uint8_t *prev, const uint8_t *data, size_t len,
		  uint8_t tag[STORE_REC_TAG_BYTES])
{
	static const uint8_t zero[STORE_REC_TAG_BYTES];
	uint8_t n[8];
	const struct mac_part parts[] = {
		{ "bastion-rec-chunk-v1", 21 },
		{ id, strlen(id) + 1 },
		{ n, sizeof(n) },
		{ prev ? prev : zero, STORE_REC_TAG_BYTES },
		{ data, len },
	};

	be64(n, seq);
	return hmac_parts(key, parts, sizeof(parts) / sizeof(parts[0]), tag);
}

int rec_final_tag(const uint8_t key[REC_KEY_BYTES], const char *id, int64_t count,
		  const uint8_t last[STORE_REC_TAG_BYTES], uint8_t out[STORE_REC_TAG_BYTES])
{
	static const uint8_t zero[STORE_REC_TAG_BYTES];
	uint8_t n[8];
	const struct mac_part parts[] = {
		{ "bastion-rec-end-v1", 19 },
		{ id, strlen(id) + 1 },
		{ n, sizeof(n) },
		{ last ? last : zero, STORE_REC_TAG_BYTES },
	};

	be64(n, count);
	return hmac_parts(key, parts, sizeof(parts) / sizeof(parts[0]), out);
}

/* The compressor of this thread, made once: a context per block would
 * allocate and clear its tables each time. Held under a thread key whose
 * destructor frees it when the thread ends: the packer compresses on the
 * loops, whose threads end at shutdown (the pool's live as long as the
 * process). */
static pthread_key_t cctx_key;
static pthread_once_t cctx_once = PTHREAD_ONCE_INIT;
static bool cctx_keyed;

static void cctx_free(void *c)
{
	ZSTD_freeCCtx(c);
}

static void cctx_key_make(void)
{
	cctx_keyed = pthread_key_create(&cctx_key, cctx_free) == 0;
}

static ZSTD_CCtx *cctx(void)
{
	ZSTD_CCtx *c;

	pthread_once(&cctx_once, cctx_key_make);
	if (!cctx_keyed)
		return NULL;
	if ((c = pthread_getspecific(cctx_key)))
		return c;
	if ((c = ZSTD_createCCtx()) && pthread_setspecific(cctx_key, c) != 0) {
		ZSTD_freeCCtx(c);
		c = NULL;
	}
	return c;
}

/* Whether raw events are worth compressing: a sample (four slices of
 * 4 KiB, spread over a chunk's first block) compressed at level 1 predicts
 * the chunk's ratio within a few percent. Output with repeats (text, logs,
 * listings, hex dumps) compresses to 10-55 %; output without (random or
 * compressed bytes, base64 of them) to 75-100 %, where all zstd finds is
 * the entropy of a small alphabet, at 1.2 ns a byte, more than the rest
 * of the writer together (BENCHMARKS.md "Recording", the raw chunks'
 * round). Such a chunk is stored as it is: at most a third larger than
 * compressed, within the cap, which counts recorded bytes. */
#define SAMPLE_SLICE 4096
#define SAMPLE_FROM  (64 * 1024) /* a chunk's smaller first block is compressed */

bool rec_worth_compressing(const uint8_t *plain, size_t len)
{
	uint8_t sample[4 * SAMPLE_SLICE], z[4 * SAMPLE_SLICE + 512];
	ZSTD_CCtx *c;
	size_t n;

	if (len < SAMPLE_FROM || !(c = cctx()))
		return true;
	for (int i = 0; i < 4; i++)
		memcpy(sample + i * SAMPLE_SLICE, plain + (size_t)i * (len / 4), SAMPLE_SLICE);
	n = ZSTD_compressCCtx(c, z, sizeof(z), sample, sizeof(sample), 1);
	/* Stored raw past 70 %: base64 of random bytes makes 75 %, hex dumps
	 * of them 55 %. */
	return ZSTD_isError(n) || n * 10 <= sizeof(sample) * 7;
}

size_t rec_zstd_bound(size_t n)
{
	return ZSTD_compressBound(n);
}

size_t rec_zstd_frame(const uint8_t *p, size_t n, uint8_t *out, size_t cap)
{
	ZSTD_CCtx *c = cctx();
	size_t z;

	if (!c)
		return 0;
	z = ZSTD_compressCCtx(c, out, cap, p, n, 1);
	return ZSTD_isError(z) ? 0 : z;
}

int rec_seal_chunk_codec(const uint8_t key[REC_KEY_BYTES], const char *id, int64_t seq,
			 const uint8_t *prev, const uint8_t *plain, size_t len, int codec,
			 uint8_t **ret, size_t *ret_len, uint8_t tag[STORE_REC_TAG_BYTES])
{
	uint8_t *z = NULL;
	size_t n;
	int r = -ENOMEM;

	if (len > REC_CHUNK_PLAIN_MAX)
		return -E2BIG;
	if (codec == REC_CODEC_RAW) {
		/* Only raw events: their format byte is what tells the reader. */
		if (!len || plain[0] != REC_RAW_V1)
			return -EINVAL;
		if (!(z = malloc(len)))
			goto out;
		memcpy(z, plain, len);
		n = len;
	} else if (codec == REC_CODEC_ZLIB) {
		uLongf zn = compressBound((uLong)len);

		if (!(z = malloc(zn)))
			goto out;
		if (compress2(z, &zn, plain, (uLong)len, Z_BEST_SPEED) != Z_OK)
			goto out;
		n = zn;
	} else {
		ZSTD_CCtx *c = cctx();

		n = ZSTD_compressBound(len);
		if (!c || !(z = malloc(n)))
			goto out;
		/* Level 1: 7-13 times less CPU than zlib's level 1 on terminal
		 * text, and as small or smaller (BENCHMARKS.md "Recording"). */
		n = ZSTD_compressCCtx(c, z, n, plain, len, 1);
		if (ZSTD_isError(n))
			goto out;
	}
	if ((r = rec_chunk_tag(key, id, seq, prev, z, n, tag)) < 0)
		goto out;
	*ret = z;
	*ret_len = n;
	z = NULL;
	r = 0;
out:
	free(z);
	return r;
}

/* A zstd chunk: the frame's magic number (little-endian 0xFD2FB528) says
 * so; a zlib stream cannot start with it (its first byte is 0x?8). */
static bool is_zstd(const uint8_t *data, size_t len)
{
	return len >= 4 && data[0] == 0x28 && data[1] == 0xb5 && data[2] == 0x2f && data[3] == 0xfd;
}

/* Inflates a run of zstd frames (the packer writes one per block) into
 * out, at most REC_CHUNK_PLAIN_MAX bytes. */
static int open_zstd(const uint8_t *data, size_t len, struct buf *out)
{
	ZSTD_DStream *d = ZSTD_createDStream();
	ZSTD_inBuffer in = { data, len, 0 };
	uint8_t *tmp = malloc(64 * 1024);
	size_t total = 0, zr = 1;
	int r = 0;

	if (!d || !tmp) {
		r = -ENOMEM;
		goto out;
	}
	/* zr 0: a frame ended; the stream starts the next by itself. */
	while (zr != 0 || in.pos < in.size) {
		ZSTD_outBuffer o = { tmp, 64 * 1024, 0 };

		zr = ZSTD_decompressStream(d, &o, &in);
		if (ZSTD_isError(zr)) {
			r = -BERR_INTEGRITY;
			goto out;
		}
		total += o.pos;
		if (total > REC_CHUNK_PLAIN_MAX) {
			r = -E2BIG;
			goto out;
		}
		if ((r = buf_append(out, tmp, o.pos)) < 0)
			goto out;
		/* All input read, nothing more came out, and the frame is not
		 * done: it was cut short. */
		if (zr != 0 && in.pos == in.size && o.pos < o.size) {
			r = -BERR_INTEGRITY;
			goto out;
		}
	}
out:
	ZSTD_freeDStream(d);
	free(tmp);
	return r;
}

int rec_open_chunk(const uint8_t key[REC_KEY_BYTES], const char *id, int64_t seq,
		   const uint8_t *prev, const uint8_t *data, size_t len,
		   const uint8_t tag[STORE_REC_TAG_BYTES], struct buf *out)
{
	uint8_t want[STORE_REC_TAG_BYTES];
	z_stream z = { 0 };
	uint8_t *tmp = NULL;
	size_t start = out->len, total = 0;
	int zr, r = 0;

	if ((r = rec_chunk_tag(key, id, seq, prev, data, len, want)) < 0)
		return r;
	if (sodium_memcmp(want, tag, STORE_REC_TAG_BYTES) != 0)
		return -BERR_INTEGRITY;
	if (len && data[0] == REC_RAW_V1) {
		/* Raw events stored as they are (they did not compress). */
		if (len > REC_CHUNK_PLAIN_MAX)
			return -E2BIG;
		return buf_append(out, data, len);
	}
	if (is_zstd(data, len)) {
		if ((r = open_zstd(data, len, out)) < 0)
			buf_truncate(out, start);
		return r;
	}
	/* A chunk written before zstd (docs/decisions.md): zlib. */
	if (inflateInit(&z) != Z_OK)
		return -ENOMEM;
	if (!(tmp = malloc(64 * 1024))) {
		r = -ENOMEM;
		goto out;
	}
	z.next_in = (Bytef *)data;
	z.avail_in = (uInt)len;
	do {
		z.next_out = tmp;
		z.avail_out = 64 * 1024;
		zr = inflate(&z, Z_NO_FLUSH);
		if (zr != Z_OK && zr != Z_STREAM_END) {
			r = -BERR_INTEGRITY;
			goto out;
		}
		total += 64 * 1024 - z.avail_out;
		if (total > REC_CHUNK_PLAIN_MAX) {
			r = -E2BIG;
			goto out;
		}
		if ((r = buf_append(out, tmp, 64 * 1024 - z.avail_out)) < 0)
			goto out;
	} while (zr != Z_STREAM_END && (z.avail_in > 0 || z.avail_out == 0));
	if (zr != Z_STREAM_END)
		r = -BERR_INTEGRITY;
out:
	inflateEnd(&z);
	free(tmp);
	if (r < 0)
		buf_truncate(out, start);
	return r;
}
