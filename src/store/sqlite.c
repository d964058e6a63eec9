/* SQLite backend: connections, migrations, audit and host keys. */
#include "store/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"

struct conn {
	sqlite3 *db;
	struct conn *next;
};

struct sq_store {
	struct store base; /* base.impl points back here */
	char path[PATH_MAX];
	pthread_key_t key;
	pthread_mutex_t lock; /* guards conns */
	struct conn *conns;   /* every connection opened, closed at free */
	int version;
};

#define SQ(s) ((struct sq_store *)(s)->impl)

/* Each entry moves the schema from version i to i + 1. Never edit a shipped
 * entry: add a new one. */
static const char *const migrations[] = {
	/* 1: initial schema */
	"CREATE TABLE users ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  password_hash TEXT NOT NULL,"
	"  disabled INTEGER NOT NULL DEFAULT 0,"
	"  created_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL);"
	"CREATE TABLE login_sessions ("
	"  token_hash BLOB PRIMARY KEY,"
	"  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	"  csrf_token TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  expires_at INTEGER NOT NULL);"
	"CREATE TABLE api_tokens ("
	"  token_hash BLOB PRIMARY KEY,"
	"  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	"  name TEXT,"
	"  created_at INTEGER NOT NULL,"
	"  expires_at INTEGER NOT NULL);"
	"CREATE TABLE role_assignments ("
	"  id TEXT PRIMARY KEY,"
	"  principal TEXT NOT NULL,"
	"  role TEXT NOT NULL,"
	"  scope TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL);"
	"CREATE INDEX role_assignments_principal ON role_assignments(principal);"
	"CREATE TABLE groups ("
	"  name TEXT PRIMARY KEY,"
	"  created_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL);"
	"CREATE TABLE resources ("
	"  id TEXT PRIMARY KEY,"
	"  grp TEXT NOT NULL REFERENCES groups(name),"
	"  type TEXT NOT NULL,"
	"  name TEXT NOT NULL,"
	"  props TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL);"
	"CREATE INDEX resources_grp_type ON resources(grp, type, name);"
	"CREATE TABLE resource_refs ("
	"  from_id TEXT NOT NULL REFERENCES resources(id) ON DELETE CASCADE,"
	"  to_id TEXT NOT NULL REFERENCES resources(id),"
	"  PRIMARY KEY (from_id, to_id));"
	"CREATE INDEX resource_refs_to ON resource_refs(to_id);"
	"CREATE TABLE host_keys ("
	"  vm_id TEXT NOT NULL,"
	"  key_type TEXT NOT NULL,"
	"  key_b64 TEXT NOT NULL,"
	"  first_seen INTEGER NOT NULL,"
	"  PRIMARY KEY (vm_id, key_type));"
	"CREATE TABLE audit ("
	"  id INTEGER PRIMARY KEY,"
	"  ts INTEGER NOT NULL,"
	"  principal TEXT,"
	"  action TEXT NOT NULL,"
	"  target TEXT,"
	"  result TEXT,"
	"  detail TEXT);"
	"CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
	"  BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;"
	"CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
	"  BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;",
	/* sign-in throttling (identity/throttle.c) and the addresses each
	 * account signed in from */
	"CREATE TABLE login_throttle ("
	"  key TEXT PRIMARY KEY,"
	"  failures INTEGER NOT NULL,"
	"  window_start INTEGER NOT NULL,"
	"  last_failure INTEGER NOT NULL,"
	"  level INTEGER NOT NULL,"
	"  locked_until INTEGER NOT NULL,"
	"  audited_until INTEGER NOT NULL);"
	"CREATE TABLE login_known ("
	"  account TEXT NOT NULL,"
	"  addr TEXT NOT NULL,"
	"  last_ok INTEGER NOT NULL,"
	"  PRIMARY KEY (account, addr));",
	/* the vault (store/sqlite_vault.c): the master-key check value,
	 * wrapped data keys, sealed secret versions, access policies. Rows go
	 * with their vault resource; a policy also goes with its user. */
	"CREATE TABLE vault_meta ("
	"  name TEXT PRIMARY KEY,"
	"  value BLOB NOT NULL);"
	"CREATE TABLE vault_keys ("
	"  vault_id TEXT PRIMARY KEY REFERENCES resources(id) ON DELETE CASCADE,"
	"  wrapped BLOB NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  rotated_at INTEGER NOT NULL);"
	"CREATE TABLE vault_secrets ("
	"  vault_id TEXT NOT NULL REFERENCES resources(id) ON DELETE CASCADE,"
	"  name TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL,"
	"  deleted_at INTEGER,"
	"  purge_at INTEGER,"
	"  PRIMARY KEY (vault_id, name));"
	"CREATE TABLE vault_secret_versions ("
	"  vault_id TEXT NOT NULL,"
	"  name TEXT NOT NULL,"
	"  version TEXT NOT NULL,"
	"  seq INTEGER NOT NULL,"
	"  content_type TEXT,"
	"  created_at INTEGER NOT NULL,"
	"  sealed BLOB NOT NULL,"
	"  PRIMARY KEY (vault_id, name, version),"
	"  UNIQUE (vault_id, name, seq),"
	"  FOREIGN KEY (vault_id, name) REFERENCES vault_secrets(vault_id, name)"
	"    ON DELETE CASCADE);"
	"CREATE TABLE vault_policies ("
	"  vault_id TEXT NOT NULL REFERENCES resources(id) ON DELETE CASCADE,"
	"  principal TEXT NOT NULL,"
	"  permissions INTEGER NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL,"
	"  PRIMARY KEY (vault_id, principal));"
	"CREATE TRIGGER vault_policies_user_gone AFTER DELETE ON users"
	"  BEGIN DELETE FROM vault_policies WHERE principal = 'user:' || OLD.name; END;",
	/* terminal sessions as records (store/sqlite_ops.c); audit queries
	 * filter by these columns */
	"CREATE TABLE term_sessions ("
	"  id TEXT PRIMARY KEY,"
	"  user TEXT NOT NULL,"
	"  vm TEXT NOT NULL,"
	"  bastion TEXT NOT NULL,"
	"  target TEXT NOT NULL,"
	"  source TEXT NOT NULL,"
	"  auth_type TEXT NOT NULL,"
	"  started_at INTEGER NOT NULL,"
	"  ended_at INTEGER,"
	"  end_reason TEXT,"
	"  bytes_to_vm INTEGER NOT NULL DEFAULT 0,"
	"  bytes_from_vm INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX term_sessions_open ON term_sessions(ended_at);"
	"CREATE INDEX audit_ts ON audit(ts);"
	"CREATE INDEX audit_principal ON audit(principal, id);"
	"CREATE INDEX audit_action ON audit(action, id);",
	/* soft-deleted vaults (store/sqlite_vaultdel.c): a deleted vault's
	 * resource row, data key, secrets, versions and policies, kept until
	 * purge_at so that it can be recovered under the same ID (the sealed
	 * blobs are bound to it). A policy still goes with its user. */
	"CREATE TABLE deleted_vaults ("
	"  id TEXT PRIMARY KEY,"
	"  grp TEXT NOT NULL,"
	"  name TEXT NOT NULL,"
	"  props TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  deleted_at INTEGER NOT NULL,"
	"  purge_at INTEGER NOT NULL,"
	"  wrapped BLOB,"
	"  key_created_at INTEGER,"
	"  key_rotated_at INTEGER);"
	"CREATE INDEX deleted_vaults_grp ON deleted_vaults(grp, name);"
	"CREATE TABLE deleted_vault_secrets ("
	"  vault_id TEXT NOT NULL REFERENCES deleted_vaults(id) ON DELETE CASCADE,"
	"  name TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL,"
	"  deleted_at INTEGER,"
	"  purge_at INTEGER,"
	"  PRIMARY KEY (vault_id, name));"
	"CREATE TABLE deleted_vault_secret_versions ("
	"  vault_id TEXT NOT NULL REFERENCES deleted_vaults(id) ON DELETE CASCADE,"
	"  name TEXT NOT NULL,"
	"  version TEXT NOT NULL,"
	"  seq INTEGER NOT NULL,"
	"  content_type TEXT,"
	"  created_at INTEGER NOT NULL,"
	"  sealed BLOB NOT NULL,"
	"  PRIMARY KEY (vault_id, name, version));"
	"CREATE TABLE deleted_vault_policies ("
	"  vault_id TEXT NOT NULL REFERENCES deleted_vaults(id) ON DELETE CASCADE,"
	"  principal TEXT NOT NULL,"
	"  permissions INTEGER NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL,"
	"  PRIMARY KEY (vault_id, principal));"
	"CREATE TRIGGER deleted_vault_policies_user_gone AFTER DELETE ON users"
	"  BEGIN DELETE FROM deleted_vault_policies WHERE principal = 'user:' || OLD.name; END;",
	/* OpenID Connect (store/sqlite_oidc.c): flows under way and the CLI's
	 * one-time codes, single use; the provider identity a user is bound
	 * to, gone with the user. */
	"CREATE TABLE oidc_pending ("
	"  key TEXT PRIMARY KEY,"
	"  kind TEXT NOT NULL,"
	"  data TEXT NOT NULL,"
	"  expires_at INTEGER NOT NULL);"
	"CREATE INDEX oidc_pending_expires ON oidc_pending(expires_at);"
	"CREATE TABLE oidc_links ("
	"  user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,"
	"  issuer TEXT NOT NULL,"
	"  subject TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  UNIQUE (issuer, subject));",
	/* API tokens get a lifecycle (issue 19, store/sqlite_tokens.c): a
	 * public id to list and revoke them by (random, never derived from
	 * the secret), a scope, the time of last use. Tokens of before get an
	 * id of their own and keep the scope they had ("all"). */
	"ALTER TABLE api_tokens ADD COLUMN public_id TEXT;"
	"ALTER TABLE api_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'all';"
	"ALTER TABLE api_tokens ADD COLUMN last_used_at INTEGER;"
	"UPDATE api_tokens SET public_id = lower(hex(randomblob(8)));"
	"CREATE UNIQUE INDEX api_tokens_public_id ON api_tokens(public_id);",
	/* retention (issue 19, store/sqlite_retention.c): the audit trail stays
	 * append-only except for the pruning transaction, which announces its
	 * cutoff in audit_prune_gate (and removes it before it commits, so
	 * that no other connection ever sees it); only rows older than that
	 * cutoff may then go. */
	"CREATE TABLE audit_prune_gate (before INTEGER NOT NULL);"
	"DROP TRIGGER audit_no_delete;"
	"CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
	"  WHEN NOT EXISTS (SELECT 1 FROM audit_prune_gate WHERE OLD.ts < before)"
	"  BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;",
	/* second factors (store/sqlite_mfa.c): a user's sealed TOTP key, the
	 * last step accepted (each code once), the hashes of unused recovery
	 * codes. */
	"CREATE TABLE mfa_totp ("
	"  user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,"
	"  sealed BLOB NOT NULL,"
	"  confirmed INTEGER NOT NULL DEFAULT 0,"
	"  last_step INTEGER NOT NULL DEFAULT 0,"
	"  created_at INTEGER NOT NULL);"
	"CREATE TABLE mfa_recovery ("
	"  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	"  code_hash BLOB NOT NULL,"
	"  PRIMARY KEY (user_id, code_hash));"
	/* passkeys: credentials, and the challenges handed out (single use,
	 * in the store so that another instance can finish the ceremony) */
	"CREATE TABLE webauthn_credentials ("
	"  id BLOB PRIMARY KEY,"
	"  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	"  alg INTEGER NOT NULL,"
	"  public_key BLOB NOT NULL,"
	"  sign_count INTEGER NOT NULL,"
	"  created_at INTEGER NOT NULL);"
	"CREATE INDEX webauthn_credentials_user ON webauthn_credentials(user_id);"
	"CREATE TABLE webauthn_challenges ("
	"  challenge BLOB PRIMARY KEY,"
	"  user_id INTEGER NOT NULL,"
	"  purpose TEXT NOT NULL,"
	"  expires_at INTEGER NOT NULL);"
	/* browser sessions whose second factor was vouched for elsewhere (an
	 * OpenID provider's amr/acr): exempt from auth.require_mfa */
	"CREATE TABLE login_mfa ("
	"  token_hash BLOB PRIMARY KEY REFERENCES login_sessions(token_hash) ON DELETE CASCADE,"
	"  via TEXT NOT NULL);",
	/* instances and the live-session registry (store/sqlite_instances.c):
	 * which instance holds each open session, whether a terminal is
	 * attached, the instances' leases, requests to end a session held
	 * elsewhere */
	"ALTER TABLE term_sessions ADD COLUMN instance TEXT;"
	"ALTER TABLE term_sessions ADD COLUMN attached INTEGER NOT NULL DEFAULT 0;"
	"CREATE INDEX term_sessions_instance ON term_sessions(instance, ended_at);"
	"CREATE TABLE instances ("
	"  name TEXT PRIMARY KEY,"
	"  state TEXT NOT NULL,"
	"  started_at INTEGER NOT NULL,"
	"  last_seen INTEGER NOT NULL,"
	"  advertise_url TEXT NOT NULL,"
	"  cert_sha256 TEXT NOT NULL);"
	"CREATE TABLE session_end_requests ("
	"  session_id TEXT PRIMARY KEY,"
	"  instance TEXT NOT NULL,"
	"  reason TEXT NOT NULL,"
	"  requested_at INTEGER NOT NULL);"
	"CREATE INDEX session_end_requests_instance ON session_end_requests(instance);",
	/* session recordings (store/sqlite_rec.c): a row per recording, its
	 * sealed chunks in order. seq is the paging key. */
	"CREATE TABLE recordings ("
	"  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  id TEXT NOT NULL UNIQUE,"
	"  session TEXT NOT NULL,"
	"  user TEXT NOT NULL,"
	"  vm TEXT NOT NULL,"
	"  bastion TEXT NOT NULL,"
	"  instance TEXT NOT NULL,"
	"  mode TEXT NOT NULL,"
	"  started_at INTEGER NOT NULL,"
	"  ended_at INTEGER,"
	"  duration_ms INTEGER NOT NULL DEFAULT 0,"
	"  bytes INTEGER NOT NULL DEFAULT 0,"
	"  stored INTEGER NOT NULL DEFAULT 0,"
	"  chunks INTEGER NOT NULL DEFAULT 0,"
	"  state TEXT NOT NULL,"
	"  error TEXT,"
	"  wrapped BLOB NOT NULL,"
	"  final_tag BLOB);"
	"CREATE INDEX recordings_started ON recordings(started_at);"
	"CREATE INDEX recordings_ended ON recordings(ended_at);"
	"CREATE TABLE recording_chunks ("
	"  rec_id TEXT NOT NULL REFERENCES recordings(id) ON DELETE CASCADE,"
	"  seq INTEGER NOT NULL,"
	"  data BLOB NOT NULL,"
	"  tag BLOB NOT NULL,"
	"  PRIMARY KEY (rec_id, seq));",
	/* connects waiting for the user's answers, and where
	 * (store/sqlite_waits.c) */
	"CREATE TABLE connect_waits ("
	"  id TEXT PRIMARY KEY,"
	"  instance TEXT NOT NULL,"
	"  expires_at INTEGER NOT NULL);"
	"CREATE INDEX connect_waits_expires ON connect_waits(expires_at);",
	/* issue 17: a lost instance's recordings are found by instance and
	 * state (store_rec_interrupt, at every claim and reap) */
	"CREATE INDEX recordings_open ON recordings(instance) WHERE state = 'recording';",
};

int store_rc(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_CONSTRAINT:
		metrics_store_error("constraint");
		return -EEXIST;
	case SQLITE_NOMEM:
		metrics_store_error("other");
		return -ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		metrics_store_error("busy");
		return -BERR_STORE;
	case SQLITE_CANTOPEN:
	case SQLITE_IOERR:
	case SQLITE_FULL:
	case SQLITE_READONLY:
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
		metrics_store_error("unavailable");
		return -BERR_STORE;
	default:
		metrics_store_error("other");
		return -BERR_STORE;
	}
}

static void conn_forget(void *p)
{
	/* Connections stay on SQ(s)->conns and are closed by sq_free(); a thread
	 * that exits earlier simply leaves its connection idle. */
	(void)p;
}

static int count_stmt(unsigned type, void *ctx, void *stmt, void *sql)
{
	(void)type;
	(void)ctx;
	(void)stmt;
	if (strncmp(sql, "--", 2) != 0)
		store_statement_count();
	return 0;
}

static int conn_open(struct store *s, sqlite3 **ret)
{
	sqlite3 *db = NULL;
	int rc;

	rc = sqlite3_open_v2(SQ(s)->path, &db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			     NULL);
	if (rc != SQLITE_OK) {
		log_error("store: cannot open %s: %s", SQ(s)->path,
			  db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return -BERR_STORE;
	}
	sqlite3_busy_timeout(db, 5000);
	sqlite3_extended_result_codes(db, 1);
	/* Switching a new database to WAL takes its lock without the busy
	 * handler: instances opening one new store at the same moment see
	 * "database is locked" and try again, for as long as the busy
	 * timeout would have waited (5 s). */
	for (int tries = 0;; tries++) {
		rc = sqlite3_exec(db,
				  "PRAGMA journal_mode=WAL;"
				  "PRAGMA synchronous=NORMAL;"
				  "PRAGMA foreign_keys=ON;"
				  "PRAGMA secure_delete=ON;",
				  NULL, NULL, NULL);
		if ((rc & 0xff) != SQLITE_BUSY || tries >= 250)
			break;
		usleep(20 * 1000);
	}
	if (rc != SQLITE_OK) {
		log_error("store: cannot configure %s: %s", SQ(s)->path, sqlite3_errmsg(db));
		sqlite3_close(db);
		return -BERR_STORE;
	}
	/* Counts the statements this connection runs (store_statements),
	 * those a trigger runs aside ("--" comments in the trace). */
	sqlite3_trace_v2(db, SQLITE_TRACE_STMT, count_stmt, NULL);
	*ret = db;
	return 0;
}

sqlite3 *store_db(struct store *s)
{
	struct conn *c = pthread_getspecific(SQ(s)->key);

	if (c)
		return c->db;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	if (conn_open(s, &c->db) < 0) {
		free(c);
		return NULL;
	}
	pthread_mutex_lock(&SQ(s)->lock);
	c->next = SQ(s)->conns;
	SQ(s)->conns = c;
	pthread_mutex_unlock(&SQ(s)->lock);
	pthread_setspecific(SQ(s)->key, c);
	return c->db;
}

sqlite3_stmt *store_prepare(struct store *s, const char *sql)
{
	sqlite3 *db = store_db(s);
	sqlite3_stmt *st = NULL;

	if (!db)
		return NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		log_debug("store: prepare failed: %s", sqlite3_errmsg(db));
		return NULL;
	}
	return st;
}

int store_tx(struct store *s, int (*fn)(struct store *s, void *ud), void *ud)
{
	sqlite3 *db = store_db(s);
	int r, rc;

	if (!db)
		return -BERR_STORE;
	/* store_rc counts the failure by kind (bastion_store_errors_total). */
	if ((rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL)) != SQLITE_OK)
		return store_rc(rc) == -ENOMEM ? -ENOMEM : -BERR_STORE;
	r = fn(s, ud);
	if (r < 0) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return r;
	}
	if ((rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK) {
		store_rc(rc);
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return -BERR_STORE;
	}
	return r;
}

int store_schema_known(void)
{
	return (int)(sizeof(migrations) / sizeof(migrations[0]));
}

/* The schema version as the database says it now; -1 on failure. */
static int user_version(struct store *s)
{
	sqlite3_stmt *st = store_prepare(s, "PRAGMA user_version");
	int version = -1;

	if (!st)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return version;
}

static int migrate(struct store *s)
{
	sqlite3 *db = store_db(s);
	int version, n = (int)(sizeof(migrations) / sizeof(migrations[0]));

	if (!db)
		return -BERR_STORE;
	for (;;) {
		char pragma[64];

		/* The version is read again inside each write transaction:
		 * another process opening the same store at the same moment may
		 * have applied this migration while we waited for the lock. */
		if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
			return -BERR_STORE;
		version = user_version(s);
		if (version < 0 || version >= n) {
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			if (version < 0)
				return -BERR_STORE;
			break;
		}
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version=%d", version + 1);
		if (sqlite3_exec(db, migrations[version], NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(db, pragma, NULL, NULL, NULL) != SQLITE_OK) {
			log_error("store: migration %d failed: %s", version + 1,
				  sqlite3_errmsg(db));
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			return -BERR_STORE;
		}
		if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
			return -BERR_STORE;
		log_info("store: migrated schema to version %d", version + 1);
	}
	if (version > n) {
		log_error("store: schema version %d is newer than this binary knows (%d)", version,
			  n);
		return -BERR_STORE;
	}
	SQ(s)->version = version;
	return 0;
}

/* The database, its WAL and the WAL index hold password hashes and sealed
 * secrets: owner only, whatever the umask. SQLite creates the WAL and its
 * index with the database file's mode, so the file is created 0600 before
 * SQLite opens it; files an older version left 0644 are narrowed. */
static int owner_only(const char *db_path)
{
	static const char *const suffixes[] = { "-wal", "-shm" };
	char path[PATH_MAX];
	int fd = open(db_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600), r = 0;

	if (fd < 0 || fchmod(fd, 0600) < 0) {
		r = -errno;
		log_error("store: cannot create %s owner-only: %s", db_path, strerror(-r));
		goto out;
	}
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		if (snprintf(path, sizeof(path), "%s%s", db_path, suffixes[i]) >=
		    (int)sizeof(path)) {
			r = -ENAMETOOLONG;
			goto out;
		}
		if (chmod(path, 0600) < 0 && errno != ENOENT) {
			r = -errno;
			log_error("store: cannot make %s owner-only: %s", path, strerror(-r));
			goto out;
		}
	}
out:
	if (fd >= 0)
		close(fd);
	return r;
}

int sq_open(const char *data_dir, struct store **ret)
{
	struct sq_store *sq;
	struct store *s;
	int r;

	sq = calloc(1, sizeof(*sq));
	if (!sq)
		return -ENOMEM;
	s = &sq->base;
	s->be = &store_sqlite_backend;
	s->impl = sq;
	if (snprintf(SQ(s)->path, sizeof(SQ(s)->path), "%s/bastion.db", data_dir) >=
	    (int)sizeof(SQ(s)->path)) {
		free(sq);
		return -ENAMETOOLONG;
	}
	if (pthread_key_create(&SQ(s)->key, conn_forget) != 0) {
		free(sq);
		return -ENOMEM;
	}
	pthread_mutex_init(&SQ(s)->lock, NULL);
	r = owner_only(SQ(s)->path);
	if (r == 0)
		r = migrate(s);
	if (r < 0) {
		sq_free(s);
		return r;
	}
	*ret = s;
	return 0;
}

void sq_free(struct store *s)
{
	struct conn *c, *next;

	if (!s)
		return;
	for (c = SQ(s)->conns; c; c = next) {
		next = c->next;
		sqlite3_close(c->db);
		free(c);
	}
	pthread_setspecific(SQ(s)->key, NULL);
	pthread_key_delete(SQ(s)->key);
	pthread_mutex_destroy(&SQ(s)->lock);
	free(SQ(s));
}

int sq_schema_version(struct store *s)
{
	return SQ(s)->version;
}

int sq_audit(struct store *s, const char *principal, const char *action, const char *target,
	     const char *result, const char *detail)
{
	sqlite3_stmt *st = store_prepare(
		s,
		"INSERT INTO audit (ts, principal, action, target, result, detail) VALUES (?,?,?,?,?,?)");
	int rc;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_int64(st, 1, store_now());
	sqlite3_bind_text(st, 2, principal, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, action, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, target, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, result, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, detail, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return store_rc(rc);
}

int sq_hostkey_get(struct store *s, const char *vm_id, json_t **ret_array_of_lines)
{
	sqlite3_stmt *st = store_prepare(
		s, "SELECT key_type, key_b64 FROM host_keys WHERE vm_id = ? ORDER BY key_type");
	json_t *arr;
	int rc;

	if (!st)
		return -BERR_STORE;
	arr = json_array();
	if (!arr) {
		sqlite3_finalize(st);
		return -ENOMEM;
	}
	sqlite3_bind_text(st, 1, vm_id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		json_array_append_new(arr, json_sprintf("%s %s", sqlite3_column_text(st, 0),
							sqlite3_column_text(st, 1)));
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		json_decref(arr);
		return -BERR_STORE;
	}
	*ret_array_of_lines = arr;
	return 0;
}

int sq_hostkey_add(struct store *s, const char *vm_id, const char *type, const char *b64)
{
	/* First use wins: a key already recorded for this type is kept. */
	sqlite3_stmt *st = store_prepare(
		s,
		"INSERT OR IGNORE INTO host_keys (vm_id, key_type, key_b64, first_seen) VALUES (?,?,?,?)");
	int rc;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, vm_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, b64, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, store_now());
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return store_rc(rc);
}

int sq_hostkey_clear(struct store *s, const char *vm_id, int *ret_removed)
{
	sqlite3_stmt *st = store_prepare(s, "DELETE FROM host_keys WHERE vm_id = ?");
	int rc;

	if (!st)
		return -BERR_STORE;
	sqlite3_bind_text(st, 1, vm_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		*ret_removed = sqlite3_changes(store_db(s));
	return store_rc(rc);
}

#define STORE_OPS_SQ_ENTRY(name, params, args) .name = sq_##name,
const struct store_backend store_sqlite_backend = { .name = "SQLite",
						    .free = sq_free,
						    STORE_OPS(STORE_OPS_SQ_ENTRY) };
#undef STORE_OPS_SQ_ENTRY
