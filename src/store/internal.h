/* Private to src/store: the SQLite plumbing shared by the backend files. */
#pragma once

#include <sqlite3.h>

#include "store/store.h"

/* This thread's connection (opened on first use), or NULL on failure. */
sqlite3 *store_db(struct store *s);

/* Prepares sql on this thread's connection; NULL on failure (logged at
 * debug). Finalize with sqlite3_finalize. */
sqlite3_stmt *store_prepare(struct store *s, const char *sql);

/* Maps a SQLite result code to the project's convention. */
int store_rc(int rc);

/* Runs a transaction body: BEGIN IMMEDIATE, fn, COMMIT or ROLLBACK when fn
 * returns < 0. Returns fn's result or a store error. */
int store_tx(struct store *s, int (*fn)(struct store *s, void *ud), void *ud);
