/* The vault's tests' fixture (test_vault, test_vault_access): a store in a
 * temporary directory (or a PostgreSQL database, testutil.h) with a vault
 * on it, and the helpers that write, read, tamper with and reopen it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "store/store.h"
#include "vault/vault.h"

#define V1    "/groups/g/vaults/v1"
#define V2    "/groups/g/vaults/v2"
#define ALICE "user:alice"

struct fx {
	char dir[64];
	char key_path[128];
	struct store *s;
	struct vault *v;
};

void make_vault(struct store *s, const char *name);
int setup(void **state);
int teardown(void **state);
int reopen(struct fx *f, const char *key_file, const char **ret_reason);
void read_file(const char *path, uint8_t *buf, size_t size, size_t *ret_len);
void write_file(const char *path, const void *buf, size_t len, mode_t mode);
void set_ok(struct fx *f, const char *vault, const char *name, const char *value,
	    char version[VAULT_VERSION_SIZE]);
void read_expect(struct fx *f, const char *vault, const char *name, const char *version,
		 const char *want);
int read_err(struct fx *f, const char *vault, const char *name, const char *version);
void exec_sql(struct fx *f, const char *sql);
void flip_blob(struct fx *f, const char *table, const char *col, const char *where, long offset);
