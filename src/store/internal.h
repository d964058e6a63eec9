/* Private to src/store: the SQLite plumbing shared by the backend files. */
#pragma once

#include <sqlite3.h>

#include "store/backend.h"
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

/* Inside the transaction deleting vault_id's resource row: copies the
 * vault's rows into the deleted_vault* tables (sqlite_vaultdel.c).
 * -ENOENT when vault_id is not a vault. */
int store_vault_archive(struct store *s, const char *vault_id, int64_t now);
/* 1 when vault_id names a deleted vault still within its retention (its
 * ID is reserved), 0 when not, or a store error. */
int store_vault_deleted_reserved(struct store *s, const char *vault_id, int64_t now);
