/* The vault's keys: sealing, the master key file, per-vault data keys and
 * master-key rotation. See vault.h for the formats.
 *
 * Decisions (docs/vault.md has the operator's view):
 * - The store carries a check value: a constant sealed with the master
 *   key. A key that does not open it is refused at start-up, so a wrong
 *   --master-key-file stops the daemon instead of failing every vault call
 *   later, and a missing key file is never silently replaced while the
 *   store holds data sealed under the old one.
 * - Rotation writes the new key to KEYFILE.new first, commits the re-
 *   wrapped data keys and the new check value in one transaction, then
 *   renames KEYFILE.new over KEYFILE. At start-up, whichever of the two
 *   files opens the check value is the key; a leftover .new that does not
 *   is removed. So a crash at any step loses nothing. */
#include "vault/internal.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/file.h"
#include "core/log.h"
#include "core/util.h"
#include "store/store.h"
#include "store/store_rec.h"
#include "store/store_vault.h"

#define BLOB_FORMAT 0x01
#define NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_BYTES   crypto_aead_xchacha20poly1305_ietf_ABYTES
#define CHECK_NAME  "master_check"
#define CHECK_AD    "bastion:vault:master-check"
static const char check_text[] = "bastion vault master key check v1";

_Static_assert(VAULT_SEAL_OVERHEAD == 1 + NONCE_BYTES + TAG_BYTES, "blob layout");
_Static_assert(VAULT_KEY_BYTES == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "key size");

struct vault {
	pthread_rwlock_t lock;
	uint8_t *master; /* sodium_malloc'd VAULT_KEY_BYTES */
	char path[PATH_MAX];
	char new_path[PATH_MAX];
};

/* ---- sealing ---- */

int vault_seal(const uint8_t key[VAULT_KEY_BYTES], const char *ad, const uint8_t *pt, size_t len,
	       uint8_t **ret_blob, size_t *ret_len)
{
	size_t n;
	uint8_t *blob;
	unsigned long long clen = 0;

	if (len > SIZE_MAX - VAULT_SEAL_OVERHEAD || len > 16 * 1024 * 1024)
		return -E2BIG;
	n = len + VAULT_SEAL_OVERHEAD;
	if (!(blob = malloc(n)))
		return -ENOMEM;
	blob[0] = BLOB_FORMAT;
	randombytes_buf(blob + 1, NONCE_BYTES);
	crypto_aead_xchacha20poly1305_ietf_encrypt(blob + 1 + NONCE_BYTES, &clen, pt, len,
						   (const uint8_t *)ad, strlen(ad), NULL, blob + 1,
						   key);
	*ret_blob = blob;
	*ret_len = 1 + NONCE_BYTES + (size_t)clen;
	return 0;
}

int vault_unseal(const uint8_t key[VAULT_KEY_BYTES], const char *ad, const uint8_t *blob,
		 size_t blob_len, uint8_t *out, size_t out_size, size_t *ret_len)
{
	unsigned long long mlen = 0;
	size_t clen;

	/* out is wiped on every failure: no caller may see a partial
	 * plaintext. */
	sodium_memzero(out, out_size);
	if (blob_len < VAULT_SEAL_OVERHEAD || blob[0] != BLOB_FORMAT)
		return -BERR_INTEGRITY;
	clen = blob_len - 1 - NONCE_BYTES;
	if (out_size < clen - TAG_BYTES)
		return -E2BIG;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &mlen, NULL, blob + 1 + NONCE_BYTES,
						       clen, (const uint8_t *)ad, strlen(ad),
						       blob + 1, key) != 0) {
		sodium_memzero(out, out_size);
		return -BERR_INTEGRITY;
	}
	*ret_len = (size_t)mlen;
	return 0;
}

/* ---- the key file ---- */

/* Reads exactly VAULT_KEY_BYTES from a private regular file that is not a
 * symbolic link: -EPERM when group or others may read it, -EINVAL when it
 * is not a regular file of that size, -errno otherwise. */
static int key_load(const char *path, uint8_t key[VAULT_KEY_BYTES])
{
	struct buf b;
	int r;

	buf_init_secret(&b, VAULT_KEY_BYTES);
	r = file_read(path, FILE_NOFOLLOW | FILE_PRIVATE, &b);
	if (r == -E2BIG || (r == 0 && buf_len(&b) != VAULT_KEY_BYTES))
		r = -EINVAL;
	if (r == 0)
		memcpy(key, b.data, VAULT_KEY_BYTES);
	else
		sodium_memzero(key, VAULT_KEY_BYTES);
	buf_free(&b); /* wiped */
	return r;
}

/* Creates path (which must not exist: -EEXIST) holding key, mode 0600,
 * durably: a crash leaves no file or the whole key. */
static int key_write(const char *path, const uint8_t key[VAULT_KEY_BYTES])
{
	return file_write_atomic(path, key, VAULT_KEY_BYTES, 0600, 1);
}

/* ---- the check value ---- */

static int check_open(struct store *s, const uint8_t key[VAULT_KEY_BYTES])
{
	uint8_t *blob = NULL, out[sizeof(check_text)];
	size_t len = 0, n = 0;
	int r = store_vault_meta_get(s, CHECK_NAME, &blob, &len);

	if (r < 0)
		return r;
	r = vault_unseal(key, CHECK_AD, blob, len, out, sizeof(out), &n);
	if (r == 0 && (n != sizeof(check_text) - 1 || sodium_memcmp(out, check_text, n) != 0))
		r = -BERR_INTEGRITY;
	free(blob);
	return r == -E2BIG ? -BERR_INTEGRITY : r;
}

static int check_write(struct store *s, const uint8_t key[VAULT_KEY_BYTES])
{
	uint8_t *blob = NULL;
	size_t len = 0;
	int r = vault_seal(key, CHECK_AD, (const uint8_t *)check_text, sizeof(check_text) - 1,
			   &blob, &len);

	if (r < 0)
		return r;
	r = store_vault_meta_put(s, CHECK_NAME, blob, len);
	free(blob);
	return r;
}

/* ---- open and free ---- */

void vault_free(struct vault *v)
{
	if (!v)
		return;
	sodium_free(v->master);
	pthread_rwlock_destroy(&v->lock);
	free(v);
}

/* The key file did not open the check value (or is missing): a rotation
 * that committed but did not rename leaves the right key in .new. */
static int try_new_file(struct vault *v, struct store *s)
{
	int r = key_load(v->new_path, v->master);

	if (r == 0)
		r = check_open(s, v->master);
	if (r < 0)
		return r;
	if (rename(v->new_path, v->path) < 0)
		return -errno;
	return file_sync_dir_of(v->path);
}

int vault_open(struct store *s, const char *data_dir, const char *key_file, struct vault **ret,
	       const char **ret_reason)
{
	struct vault *v = calloc(1, sizeof(*v));
	const char *reason = "the vault could not be opened";
	int r = -ENOMEM, chk;
	bool has_check;

	if (!v)
		goto fail;
	pthread_rwlock_init(&v->lock, NULL);
	if (!(v->master = sodium_malloc(VAULT_KEY_BYTES)))
		goto fail;
	r = -ENAMETOOLONG;
	reason = "the master key file's path is too long";
	if (key_file) {
		if (util_strlcpy(v->path, key_file, sizeof(v->path)) < 0)
			goto fail;
	} else if (snprintf(v->path, sizeof(v->path), "%s/master.key", data_dir) >=
		   (int)sizeof(v->path)) {
		goto fail;
	}
	if (snprintf(v->new_path, sizeof(v->new_path), "%s.new", v->path) >=
	    (int)sizeof(v->new_path))
		goto fail;

	chk = check_open(s, v->master); /* probes whether a check value exists */
	has_check = chk != -ENOENT;
	if (chk < 0 && chk != -ENOENT && chk != -BERR_INTEGRITY) {
		r = chk;
		reason = "the store could not be read";
		goto fail;
	}
	r = key_load(v->path, v->master);
	if (r == -ENOENT && !has_check) {
		/* First run: a new key, then the check value that binds the
		 * store to it. */
		randombytes_buf(v->master, VAULT_KEY_BYTES);
		reason = "the master key file could not be created";
		if ((r = key_write(v->path, v->master)) < 0)
			goto fail;
		reason = "the store could not be written";
		if ((r = check_write(s, v->master)) < 0)
			goto fail;
		goto done;
	}
	if (r == -EPERM) {
		reason =
			"the master key file is readable or writable by group or others: chmod 600 it";
		goto fail;
	}
	if (r == -EINVAL) {
		reason = "the master key file is not a regular file of exactly 32 bytes";
		goto fail;
	}
	if (r < 0 && r != -ENOENT) {
		reason = "the master key file could not be read";
		goto fail;
	}
	if (!has_check) {
		reason = "the store could not be written";
		if ((r = check_write(s, v->master)) < 0)
			goto fail;
		goto done;
	}
	if (r == 0 && (r = check_open(s, v->master)) == 0) {
		unlink(v->new_path); /* a rotation that did not commit */
		goto done;
	}
	if (try_new_file(v, s) == 0)
		goto done;
	if (r == -ENOENT) {
		reason =
			"the master key file is missing, but the store holds vault data sealed with a "
			"master key: restore the file (or pass --master-key-file)";
		goto fail;
	}
	if (r == -BERR_INTEGRITY)
		reason = "the master key is not the one this store's vault data was sealed with";
	else
		reason = "the store could not be read";
	goto fail;
done:
	*ret = v;
	return 0;
fail:
	vault_free(v);
	if (ret_reason)
		*ret_reason = reason;
	return r < 0 ? r : -EINVAL;
}

void vault_lock_read(struct vault *v)
{
	pthread_rwlock_rdlock(&v->lock);
}

void vault_unlock(struct vault *v)
{
	pthread_rwlock_unlock(&v->lock);
}

/* ---- data keys ---- */

static int dk_open(const uint8_t master[VAULT_KEY_BYTES], const char *vault_id, const uint8_t *w,
		   size_t len, uint8_t dk[VAULT_KEY_BYTES])
{
	size_t n = 0;
	int r = vault_unseal(master, vault_id, w, len, dk, VAULT_KEY_BYTES, &n);

	if (r == 0 && n != VAULT_KEY_BYTES)
		r = -BERR_INTEGRITY;
	if (r == -E2BIG)
		r = -BERR_INTEGRITY;
	if (r < 0)
		sodium_memzero(dk, VAULT_KEY_BYTES);
	return r;
}

int vault_data_key(struct vault *v, struct store *s, const char *vault_id, bool create,
		   uint8_t dk[VAULT_KEY_BYTES])
{
	uint8_t *w = NULL;
	size_t len = 0;
	int r = store_vault_key_get(s, vault_id, &w, &len);

	if (r == 0) {
		r = dk_open(v->master, vault_id, w, len, dk);
		free(w);
		return r;
	}
	if (r != -ENOENT || !create)
		return r;
	randombytes_buf(dk, VAULT_KEY_BYTES);
	if ((r = vault_seal(v->master, vault_id, dk, VAULT_KEY_BYTES, &w, &len)) < 0)
		goto out;
	r = store_vault_key_add(s, vault_id, w, len);
	free(w);
	/* Another request (maybe on another instance) made the vault's key
	 * meanwhile: one key per vault, so ours goes and theirs is used. */
	if (r == -EEXIST) {
		sodium_memzero(dk, VAULT_KEY_BYTES);
		return vault_data_key(v, s, vault_id, false, dk);
	}
out:
	if (r < 0)
		sodium_memzero(dk, VAULT_KEY_BYTES);
	return r;
}

/* ---- other modules' keys ---- */

int vault_wrap(struct vault *v, const char *ad, const uint8_t *pt, size_t len, uint8_t **ret_blob,
	       size_t *ret_len)
{
	int r;

	vault_lock_read(v);
	r = vault_seal(v->master, ad, pt, len, ret_blob, ret_len);
	vault_unlock(v);
	return r;
}

int vault_unwrap(struct vault *v, const char *ad, const uint8_t *blob, size_t blob_len,
		 uint8_t *out, size_t out_size, size_t *ret_len)
{
	int r;

	vault_lock_read(v);
	r = vault_unseal(v->master, ad, blob, blob_len, out, out_size, ret_len);
	vault_unlock(v);
	return r;
}

/* ---- rotation ---- */

struct rewrap;
static int mfa_key_rewrap(struct store *s, const struct rewrap *rw);

struct rewrap {
	const uint8_t *old_key, *new_key;
	const char *principal;
	char **ids;
	uint8_t **blobs;
	size_t *lens;
	size_t n;
};

static int rewrap_one(const char *vault_id, const uint8_t *w, size_t len, void *ud)
{
	struct rewrap *rw = ud;
	uint8_t dk[VAULT_KEY_BYTES];
	char **ids;
	uint8_t **blobs;
	size_t *lens;
	int r;

	if (!(ids = reallocarray(rw->ids, rw->n + 1, sizeof(*ids))))
		return -ENOMEM;
	rw->ids = ids;
	if (!(blobs = reallocarray(rw->blobs, rw->n + 1, sizeof(*blobs))))
		return -ENOMEM;
	rw->blobs = blobs;
	if (!(lens = reallocarray(rw->lens, rw->n + 1, sizeof(*lens))))
		return -ENOMEM;
	rw->lens = lens;
	if ((r = dk_open(rw->old_key, vault_id, w, len, dk)) < 0)
		return r;
	r = vault_seal(rw->new_key, vault_id, dk, VAULT_KEY_BYTES, &rw->blobs[rw->n],
		       &rw->lens[rw->n]);
	sodium_memzero(dk, sizeof(dk));
	if (r < 0)
		return r;
	if (!(rw->ids[rw->n] = strdup(vault_id))) {
		free(rw->blobs[rw->n]);
		return -ENOMEM;
	}
	rw->n++;
	return 0;
}

/* A recording's key (terminal/record.h), re-wrapped and stored at once:
 * the store's cursor is on another statement, which SQLite allows. */
struct rec_rewrap {
	const uint8_t *old_key, *new_key;
	struct store *s;
	size_t n, skipped;
};

static int rec_rewrap_one(const char *id, const uint8_t *w, size_t len, void *ud)
{
	struct rec_rewrap *rr = ud;
	uint8_t k[VAULT_KEY_BYTES], *blob = NULL;
	char ad[128];
	size_t n = 0, blen = 0;
	int r;

	snprintf(ad, sizeof(ad), VAULT_AD_RECORDING "%s", id);
	r = vault_unseal(rr->old_key, ad, w, len, k, sizeof(k), &n);
	if (r == -BERR_INTEGRITY || r == -E2BIG || (r == 0 && n != sizeof(k))) {
		/* Already unreadable: left as it is rather than blocking rotation. */
		log_warn("vault: the key of recording %s does not open; not re-wrapped", id);
		sodium_memzero(k, sizeof(k));
		rr->skipped++;
		return 0;
	}
	if (r == 0)
		r = vault_seal(rr->new_key, ad, k, sizeof(k), &blob, &blen);
	sodium_memzero(k, sizeof(k));
	if (r == 0)
		r = store_rec_key_update(rr->s, id, blob, blen);
	free(blob);
	if (r == 0)
		rr->n++;
	return r;
}

static int rotate_tx(struct store *s, void *ud)
{
	struct rewrap *rw = ud;
	struct rec_rewrap rr = { .old_key = rw->old_key, .new_key = rw->new_key, .s = s };
	char detail[96];
	int r = store_vault_key_foreach(s, rewrap_one, rw);

	if (r < 0)
		return r;
	for (size_t i = 0; i < rw->n; i++)
		if ((r = store_vault_key_update(s, rw->ids[i], rw->blobs[i], rw->lens[i])) < 0)
			return r;
	if ((r = mfa_key_rewrap(s, rw)) < 0)
		return r;
	if ((r = store_rec_key_foreach(s, rec_rewrap_one, &rr)) < 0)
		return r;
	if ((r = check_write(s, rw->new_key)) < 0)
		return r;
	snprintf(detail, sizeof(detail), "{\"data_keys\":%zu,\"recording_keys\":%zu}", rw->n, rr.n);
	return store_audit(s, rw->principal, "vault.rotate-master-key", "/", "rotated", detail);
}

int vault_rotate(struct vault *v, struct store *s, const char *principal, int64_t *ret_count)
{
	struct rewrap rw = { .old_key = v->master, .principal = principal };
	uint8_t *fresh = sodium_malloc(VAULT_KEY_BYTES);
	int r;

	if (!fresh)
		return -ENOMEM;
	randombytes_buf(fresh, VAULT_KEY_BYTES);
	rw.new_key = fresh;
	pthread_rwlock_wrlock(&v->lock);
	if (unlink(v->new_path) < 0 && errno != ENOENT) {
		r = -errno;
		goto out;
	}
	if ((r = key_write(v->new_path, fresh)) < 0)
		goto out;
	if ((r = store_res_tx(s, rotate_tx, &rw)) < 0) {
		unlink(v->new_path);
		goto out;
	}
	/* Committed: from here the store needs the new key, whatever the
	 * rename does (vault_open() finds it in .new otherwise). */
	r = rename(v->new_path, v->path) < 0 ? -errno : file_sync_dir_of(v->path);
	memcpy(v->master, fresh, VAULT_KEY_BYTES);
	if (r == 0 && ret_count)
		*ret_count = (int64_t)rw.n;
out:
	pthread_rwlock_unlock(&v->lock);
	for (size_t i = 0; i < rw.n; i++) {
		free(rw.ids[i]);
		free(rw.blobs[i]);
	}
	free(rw.ids);
	free(rw.blobs);
	free(rw.lens);
	sodium_free(fresh);
	return r;
}

/* ---- the MFA key (identity/mfa.h: TOTP keys) ----
 * A data key of its own, kept wrapped by the master key in vault_meta
 * under MFA_KEY_NAME, so that a TOTP key is sealed like a secret without
 * belonging to any vault, and a master-key rotation re-wraps it with the
 * vaults' data keys (rotate_tx). Created on first use, inside a store
 * transaction so that two instances enrolling at once agree on one key. */
#define MFA_KEY_NAME "mfa_key"

struct mfa_key_job {
	struct vault *v;
	uint8_t *dk; /* VAULT_KEY_BYTES, wiped by the caller */
	bool create;
};

static int mfa_key_tx(struct store *s, void *ud)
{
	struct mfa_key_job *j = ud;
	uint8_t *w = NULL;
	size_t len = 0;
	int r = store_vault_meta_get(s, MFA_KEY_NAME, &w, &len);

	if (r == 0) {
		r = dk_open(j->v->master, MFA_KEY_NAME, w, len, j->dk);
		free(w);
		return r;
	}
	if (r != -ENOENT || !j->create)
		return r;
	randombytes_buf(j->dk, VAULT_KEY_BYTES);
	if ((r = vault_seal(j->v->master, MFA_KEY_NAME, j->dk, VAULT_KEY_BYTES, &w, &len)) < 0)
		return r;
	r = store_vault_meta_put(s, MFA_KEY_NAME, w, len);
	free(w);
	return r;
}

int vault_mfa_seal(struct vault *v, struct store *s, const char *ad, const uint8_t *pt, size_t len,
		   uint8_t **ret_blob, size_t *ret_len)
{
	uint8_t dk[VAULT_KEY_BYTES];
	struct mfa_key_job j = { .v = v, .dk = dk, .create = true };
	int r;

	vault_lock_read(v);
	if ((r = store_res_tx(s, mfa_key_tx, &j)) == 0)
		r = vault_seal(dk, ad, pt, len, ret_blob, ret_len);
	vault_unlock(v);
	sodium_memzero(dk, sizeof(dk));
	return r;
}

int vault_mfa_open(struct vault *v, struct store *s, const char *ad, const uint8_t *blob,
		   size_t blob_len, uint8_t *out, size_t out_size, size_t *ret_len)
{
	uint8_t dk[VAULT_KEY_BYTES];
	struct mfa_key_job j = { .v = v, .dk = dk, .create = false };
	int r;

	vault_lock_read(v);
	if ((r = mfa_key_tx(s, &j)) == 0)
		r = vault_unseal(dk, ad, blob, blob_len, out, out_size, ret_len);
	else if (r == -ENOENT)
		r = -BERR_INTEGRITY; /* a sealed blob without its key */
	vault_unlock(v);
	sodium_memzero(dk, sizeof(dk));
	return r;
}

/* Inside rotate_tx: the MFA key re-wrapped under the new master key. */
static int mfa_key_rewrap(struct store *s, const struct rewrap *rw)
{
	uint8_t dk[VAULT_KEY_BYTES], *w = NULL;
	size_t len = 0;
	int r = store_vault_meta_get(s, MFA_KEY_NAME, &w, &len);

	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	r = dk_open(rw->old_key, MFA_KEY_NAME, w, len, dk);
	free(w);
	w = NULL;
	if (r == 0)
		r = vault_seal(rw->new_key, MFA_KEY_NAME, dk, VAULT_KEY_BYTES, &w, &len);
	sodium_memzero(dk, sizeof(dk));
	if (r == 0)
		r = store_vault_meta_put(s, MFA_KEY_NAME, w, len);
	free(w);
	return r;
}
