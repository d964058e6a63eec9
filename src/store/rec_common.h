/* Private to src/store: what both backends write when they close a lost
 * instance's recordings (store_rec_interrupt), so that the text and the
 * audit detail are the same on SQLite and PostgreSQL. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "store/backend.h"

/* The recordings' error: which instance stopped, why, and what is left. */
void store_rec_interrupt_error(char *out, size_t size, const char *instance, const char *reason);
/* The audit record of one recording closed (inside the caller's
 * transaction); row: its id, session, user, vm and bastion, never NULL. */
int store_rec_interrupt_audit(struct store *s, store_audit_fn *audit, const char *const row[5],
			      const char *error, int64_t bytes);
/* store_rec_interrupt: fn, the backend's transaction body run by tx, closes
 * the recordings and counts them in n. */
struct store_rec_interrupt {
	const char *instance, *reason;
	int64_t now;
	int n;
};
int store_rec_interrupt_run(struct store *s, store_tx_fn *tx, int (*fn)(struct store *s, void *ud),
			    const char *instance, int64_t now, const char *reason, int *ret_n);
