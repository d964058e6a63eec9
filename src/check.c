/* `bastion serve --check-config`: everything `serve` would refuse at start,
 * found without starting. The configuration itself is parsed by cfg_load
 * before this runs; here come the checks that need the machine: the listen
 * address as the listener parses it, the account to switch to, the TLS pair,
 * the data directory, the vault's master key file and the store (opened
 * read-only, so a running instance is not disturbed and nothing is created).
 *
 * Each check mirrors the code that would fail at start (srv_listen,
 * drop_privileges, srv_tls_ctx, vault_open, store_open); when one of those
 * learns a new refusal, this file should learn it too. Nothing here writes:
 * what a first start creates (the data directory, the self-signed pair, the
 * master key, the store) only has to be creatable. */
#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sqlite3.h>

#include "api/api.h"
#include "server/srv.h"
#include "core/err.h"
#include "store/store.h"
#include "store/store_vault.h"

#define VAULT_KEY_FILE_BYTES 32 /* vault.h: VAULT_KEY_BYTES, stored raw */

struct check {
	int problems;
};

__attribute__((format(printf, 2, 3))) static void problem(struct check *k, const char *fmt, ...)
{
	va_list ap;

	fputs("bastion: configuration: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	k->problems++;
}

/* Has this process CAP_NET_BIND_SERVICE (bit 10) in its effective set? */
static bool can_bind_privileged(void)
{
	char line[256];
	unsigned long long eff = 0;
	bool found = false;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, "CapEff: %llx", &eff) == 1;
	fclose(f);
	return found && (eff & (1ULL << 10));
}

/* A port below net.ipv4.ip_unprivileged_port_start needs root (the bind
 * happens before the switch of user) or CAP_NET_BIND_SERVICE, which the
 * unit grants; run by hand as another user, the start would fail. */
static void check_port_privilege(struct check *k, const char *listen)
{
	const char *colon = strrchr(listen, ':');
	long port, start = 1024;
	char buf[32];
	FILE *f;

	if (!colon || geteuid() == 0)
		return;
	port = strtol(colon + 1, NULL, 10);
	f = fopen("/proc/sys/net/ipv4/ip_unprivileged_port_start", "re");
	if (f) {
		if (fgets(buf, sizeof(buf), f))
			start = strtol(buf, NULL, 10);
		fclose(f);
	}
	if (port > 0 && port < start && !can_bind_privileged())
		problem(k,
			"server.listen port %ld is below %ld: binding it needs root or "
			"CAP_NET_BIND_SERVICE (the systemd unit grants it)",
			port, start);
}

/* As drop_privileges in main.c. */
static void check_user(struct check *k, const char *want)
{
	struct passwd *pw;

	if (want[0] && strcmp(want, "root") != 0 && !getpwnam(want)) {
		problem(k, "server.user: there is no user '%s'", want);
		return;
	}
	if (geteuid() != 0 && want[0]) {
		pw = getpwuid(geteuid());
		if (!pw || strcmp(pw->pw_name, want) != 0)
			problem(k,
				"server.user is '%s' but switching users needs bastion to be "
				"started as root (it runs as %s)",
				want, pw ? pw->pw_name : "another user");
	}
}

/* The data directory exists as a directory, or its parent lets serve create it. */
static void check_data_dir(struct check *k, const char *dir)
{
	char parent[CFG_MAX_STR];
	const char *slash;
	struct stat sb;

	if (stat(dir, &sb) == 0) {
		if (!S_ISDIR(sb.st_mode))
			problem(k, "server.data %s is not a directory", dir);
		else if (access(dir, R_OK | W_OK | X_OK) != 0)
			problem(k, "server.data %s: %s", dir, strerror(errno));
		return;
	}
	if (errno != ENOENT) {
		problem(k, "server.data %s: %s", dir, strerror(errno));
		return;
	}
	/* The parent of "a/b/" is "a", as mkdir sees it. */
	snprintf(parent, sizeof(parent), "%s", dir);
	for (size_t n = strlen(parent); n > 1 && parent[n - 1] == '/'; n--)
		parent[n - 1] = '\0';
	slash = strrchr(parent, '/');
	if (!slash) {
		snprintf(parent, sizeof(parent), ".");
	} else {
		parent[slash == parent ? 1 : slash - parent] = '\0';
	}
	if (access(parent, W_OK | X_OK) != 0)
		problem(k, "server.data %s does not exist and cannot be created in %s: %s", dir,
			parent, strerror(errno));
}

/* OpenSSL's first queued error as text, and the queue emptied. */
static const char *ssl_reason(char *buf, size_t size)
{
	unsigned long e = ERR_peek_last_error();

	if (e)
		ERR_error_string_n(e, buf, size);
	else
		snprintf(buf, size, "unknown error");
	ERR_clear_error();
	return buf;
}

/* The pair loads as srv_tls_ctx loads it, and the key is the certificate's. */
static void check_tls_pair(struct check *k, const char *cert, const char *key, const char *what)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char why[256];

	if (!ctx) {
		problem(k, "out of memory");
		return;
	}
	if (access(cert, R_OK) != 0)
		problem(k, "%s certificate %s: %s", what, cert, strerror(errno));
	else if (access(key, R_OK) != 0)
		problem(k, "%s key %s: %s", what, key, strerror(errno));
	else if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
		problem(k, "%s certificate %s is not a PEM certificate chain (%s)", what, cert,
			ssl_reason(why, sizeof(why)));
	else if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		problem(k, "%s key %s is not a PEM private key, or not the certificate's (%s)",
			what, key, ssl_reason(why, sizeof(why)));
	else if (SSL_CTX_check_private_key(ctx) != 1)
		problem(k, "%s key %s does not belong to the certificate %s", what, key, cert);
	ERR_clear_error();
	SSL_CTX_free(ctx);
}

static void check_tls(struct check *k, const struct cfg *c)
{
	char cert[CFG_MAX_STR + 16], key[CFG_MAX_STR + 16];

	if (c->cert_file[0]) {
		check_tls_pair(k, c->cert_file, c->key_file, "tls:");
		return;
	}
	/* The self-signed pair: loaded when both are there, else generated. */
	snprintf(cert, sizeof(cert), "%s/tls-cert.pem", c->data_dir);
	snprintf(key, sizeof(key), "%s/tls-key.pem", c->data_dir);
	if (access(cert, F_OK) == 0 && access(key, F_OK) == 0)
		check_tls_pair(k, cert, key, "the self-signed pair:");
}

/* As vault_open's key_load: a private regular file of exactly 32 bytes. A
 * missing file is created at start unless the store holds vault data
 * (has_check), which needs the old key. */
static void check_master_key(struct check *k, const char *path, bool has_check)
{
	struct stat sb;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);

	if (fd < 0) {
		if (errno != ENOENT)
			problem(k, "the master key file %s: %s", path, strerror(errno));
		else if (has_check)
			problem(k,
				"the master key file %s is missing, but the store holds vault data "
				"sealed with a master key: restore the file (or pass "
				"--master-key-file)",
				path);
		return;
	}
	if (fstat(fd, &sb) < 0)
		problem(k, "the master key file %s: %s", path, strerror(errno));
	else if (!S_ISREG(sb.st_mode) || sb.st_size != VAULT_KEY_FILE_BYTES)
		problem(k, "the master key file %s is not a regular file of exactly %d bytes", path,
			VAULT_KEY_FILE_BYTES);
	else if (sb.st_mode & 077)
		problem(k,
			"the master key file %s is readable or writable by group or others: "
			"chmod 600 it",
			path);
	close(fd);
}

/* Opens DATA/bastion.db read-only: a database, of a schema this binary
 * knows. Sets *ret_has_check when it holds the vault's master-key check. */
static void check_store(struct check *k, const char *dir, bool *ret_has_check)
{
	char path[CFG_MAX_STR + 16];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int version = -1;

	*ret_has_check = false;
	snprintf(path, sizeof(path), "%s/bastion.db", dir);
	if (access(path, F_OK) != 0 && errno == ENOENT)
		return; /* created at the first start */
	if (access(path, R_OK) != 0) {
		problem(k, "the store %s: %s", path, strerror(errno));
		return;
	}
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		problem(k, "the store %s cannot be opened: %s", path,
			db ? sqlite3_errmsg(db) : "out of memory");
		goto out;
	}
	sqlite3_busy_timeout(db, 5000);
	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		problem(k, "the store %s cannot be read: %s", path, sqlite3_errmsg(db));
		goto out;
	}
	version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	st = NULL;
	if (version > store_schema_known()) {
		problem(k,
			"the store %s has schema version %d, newer than this binary knows (%d): "
			"run the newer bastion, or restore a backup made for this one",
			path, version, store_schema_known());
		goto out;
	}
	/* No table yet (an old schema) is no check value. */
	if (sqlite3_prepare_v2(db, "SELECT 1 FROM vault_meta WHERE name = 'master_check'", -1, &st,
			       NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		*ret_has_check = true;
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* [oidc]: what api_oidc_setup refuses at start (a role or scope of map,
 * the client secret file); the provider itself is not contacted. */
static void check_oidc(struct check *k, const struct cfg *c)
{
	struct api_ctx ctx = { 0 };
	char err[512];

	if (api_oidc_setup(&ctx, c, err, sizeof(err)) < 0)
		problem(k, "%s", err);
	api_oidc_free(&ctx);
}

/* A PostgreSQL store (store.url): reachable, of a schema this binary
 * knows, opened read-only (no migration: that is `serve`'s). Sets
 * *ret_has_check when it holds the vault's master-key check. */
static void check_store_pg(struct check *k, const char *url, bool *ret_has_check)
{
	struct store *s = NULL;
	int version = 0, known = 0;
	uint8_t *v = NULL;
	size_t len = 0;
	int r = store_open_url_ro(url, &s, &version, &known);

	*ret_has_check = false;
	/* The URL is never echoed: it may carry a password. */
	if (r == -EPROTO) {
		problem(k,
			"the PostgreSQL store has schema version %d, newer than this binary knows"
			" (%d): run the newer bastion",
			version, known);
		return;
	}
	if (r < 0) {
		problem(k,
			"the PostgreSQL store (store.url) cannot be reached or read: %s (the log"
			" at debug level has PostgreSQL's message)",
			err_str(r));
		return;
	}
	r = store_vault_meta_get(s, "master_check", &v, &len);
	if (r == 0)
		*ret_has_check = true;
	else if (r != -ENOENT && version > 0)
		problem(k, "the PostgreSQL store cannot be read: %s", err_str(r));
	free(v);
	store_free(s);
}

int check_serve(const struct cfg *c, const char *master_key_file)
{
	struct check k = { 0 };
	char key_path[CFG_MAX_STR + 16];
	bool has_check = false;

	if (srv_parse_listen(c->listen, &(struct sockaddr_storage){ 0 }) < 0)
		problem(&k,
			"server.listen '%s' is not a numeric IPv4 ADDR:PORT or [IPv6]:PORT "
			"(host names are not resolved)",
			c->listen);
	else
		check_port_privilege(&k, c->listen);
	check_user(&k, c->user);
	check_data_dir(&k, c->data_dir);
	check_tls(&k, c);
	if (store_url_is_pg(c->store_url))
		check_store_pg(&k, c->store_url, &has_check);
	else
		check_store(&k, c->data_dir, &has_check);
	if (master_key_file)
		snprintf(key_path, sizeof(key_path), "%s", master_key_file);
	else
		snprintf(key_path, sizeof(key_path), "%s/master.key", c->data_dir);
	check_master_key(&k, key_path, has_check);
	check_oidc(&k, c);
	return k.problems;
}
