/* What both store backends do around a batch of retention pruning, apart
 * from its SQL: the batch checked, the transaction run, its counts handed
 * back (backend.h). */
#include "store/backend.h"

#include <errno.h>

int store_prune_run(struct store *s, store_tx_fn *tx, int (*fn)(struct store *s, void *ud),
		    bool audit, int64_t before, int batch, int *ret_n, int64_t *ret_oldest)
{
	struct store_prune p = { .audit = audit, .before = before, .batch = batch };
	int r;

	if (batch <= 0)
		return -EINVAL;
	if ((r = tx(s, fn, &p)) < 0)
		return r;
	*ret_n = p.n;
	*ret_oldest = p.oldest;
	return 0;
}
