/* Private to src/store: row helpers shared by the identity store files
 * (sqlite_ident.c, sqlite_throttle.c). Static inline, so that each file
 * keeps its own copy without a second definition to keep in step. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "core/err.h"
#include "store/internal.h"

/* Runs fn inside a transaction, or directly when the caller already opened
 * one on this thread's connection (SQLite does not nest BEGIN). */
static inline int tx_run(struct store *s, int (*fn)(struct store *s, void *ud), void *ud)
{
	sqlite3 *db = store_db(s);

	if (!db)
		return -BERR_STORE;
	if (!sqlite3_get_autocommit(db))
		return fn(s, ud);
	return store_tx(s, fn, ud);
}

/* Maps the result of a data-changing step: a foreign key that points at
 * nothing is "not found", every other constraint "exists". */
static inline int step_rc(int rc)
{
	if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
		return -ENOENT;
	return store_rc(rc);
}

/* Prepares sql and binds text, or the 32-byte hash, to its first
 * parameter; NULL on failure. */
static inline sqlite3_stmt *prepare_text(struct store *s, const char *sql, const char *text)
{
	sqlite3_stmt *st = store_prepare(s, sql);

	if (st && sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC) != SQLITE_OK) {
		sqlite3_finalize(st);
		return NULL;
	}
	return st;
}

/* Steps a query that yields at most one row: 0 when st holds the row,
 * -ENOENT when there is none, or a store error. */
static inline int step_row(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENOENT : store_rc(rc);
}

/* Runs a statement that changes rows. With ret_changes, stores how many
 * rows changed. */
static inline int exec_change(struct store *s, sqlite3_stmt *st, int *ret_changes)
{
	int rc;

	if (!st)
		return -BERR_STORE;
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return step_rc(rc);
	if (ret_changes)
		*ret_changes = sqlite3_changes(store_db(s));
	return 0;
}

static inline bool fits(const char *v, size_t max)
{
	return v && strlen(v) <= max;
}
