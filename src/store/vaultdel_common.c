/* What both store backends run alike to archive a deleted vault, list it
 * and recover it (store_vault.h, "deleted vaults"): the statements that
 * move its rows between the live and the deleted_vault* tables and that
 * read a deleted vault, the same text on both, each with one parameter $1
 * (a name SQLite binds as its parameter 1). The vault's own row, its
 * retention, the checks and reading a row stay per backend (pg_vaultdel.c,
 * sqlite_vaultdel.c). */
#include "store/backend.h"

#include <stddef.h>

const char *const store_vault_archive_sql[] = {
	"INSERT INTO deleted_vault_secrets SELECT vault_id, name, created_at, updated_at,"
	" deleted_at, purge_at FROM vault_secrets WHERE vault_id = $1",
	"INSERT INTO deleted_vault_secret_versions SELECT vault_id, name, version, seq,"
	" content_type, created_at, sealed FROM vault_secret_versions WHERE vault_id = $1",
	"INSERT INTO deleted_vault_policies SELECT vault_id, principal, permissions, created_at,"
	" updated_at FROM vault_policies WHERE vault_id = $1",
	NULL,
};

const char *const store_vault_recover_sql[] = {
	"INSERT INTO vault_keys (vault_id, wrapped, created_at, rotated_at) SELECT id, wrapped,"
	" key_created_at, key_rotated_at FROM deleted_vaults WHERE id = $1 AND wrapped IS NOT NULL",
	"INSERT INTO vault_secrets (vault_id, name, created_at, updated_at, deleted_at, purge_at)"
	" SELECT vault_id, name, created_at, updated_at, deleted_at, purge_at"
	" FROM deleted_vault_secrets WHERE vault_id = $1",
	"INSERT INTO vault_secret_versions (vault_id, name, version, seq, content_type, created_at,"
	" sealed) SELECT vault_id, name, version, seq, content_type, created_at, sealed"
	" FROM deleted_vault_secret_versions WHERE vault_id = $1",
	"INSERT INTO vault_policies (vault_id, principal, permissions, created_at, updated_at)"
	" SELECT vault_id, principal, permissions, created_at, updated_at"
	" FROM deleted_vault_policies WHERE vault_id = $1",
	"DELETE FROM deleted_vaults WHERE id = $1",
	NULL,
};

#define DELETED_COLS                                                   \
	"d.id, d.grp, d.name, d.created_at, d.deleted_at, d.purge_at," \
	" (SELECT count(*) FROM deleted_vault_secrets s WHERE s.vault_id = d.id)"

const char store_vault_deleted_of_group_sql[] =
	"SELECT " DELETED_COLS " FROM deleted_vaults d WHERE d.grp = $1 ORDER BY d.name";
const char store_vault_deleted_by_id_sql[] =
	"SELECT " DELETED_COLS " FROM deleted_vaults d WHERE d.id = $1";

int store_vault_deleted_copy(const struct store_deleted_vault *d, void *ud)
{
	*(struct store_deleted_vault *)ud = *d;
	return 1;
}
