/* What both store backends do alike around the SQL of second factors
 * (store_mfa.h): the words they refuse, the arguments of the transactions
 * checked, the transactions run and their answers handed back (backend.h). */
#include "store/backend.h"

#include <errno.h>
#include <string.h>

bool store_mfa_word_ok(const char *w)
{
	return w && strlen(w) <= 16;
}

int store_mfa_totp_confirm_run(struct store *s, store_tx_fn *tx,
			       int (*fn)(struct store *s, void *ud), int64_t user_id, int64_t step,
			       const uint8_t *hashes, int n)
{
	struct store_totp_confirm c = { user_id, step, hashes, n };

	if (n < 0 || n > 64 || (n > 0 && !hashes))
		return -EINVAL;
	return tx(s, fn, &c);
}

int store_mfa_delete_run(struct store *s, store_tx_fn *tx, int (*fn)(struct store *s, void *ud),
			 int64_t user_id, bool passkeys, int *ret_removed)
{
	struct store_mfa_delete m = { user_id, passkeys };
	int r = tx(s, fn, &m);

	if (r < 0)
		return r;
	if (ret_removed)
		*ret_removed = r;
	return 0;
}
