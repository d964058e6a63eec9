/* PostgreSQL backend: connections (one per thread, re-opened when broken),
 * statement timeouts, the error mapping, transactions (and the audit lines
 * they hold until COMMIT), migrations under an advisory lock. The audit
 * trail and host keys are in pg_audit.c, users, sign-in sessions and tokens
 * in pg_ident.c, throttling rows in pg_throttle.c, roles in pg_roles.c,
 * resources in pg_res.c, vault rows in pg_vault.c, deleted vaults in
 * pg_vaultdel.c, terminal-session records in pg_ops.c. */
#include "store/pg_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/metrics.h"
#include "store/store_ops.h"

struct pg_conn {
	PGconn *c;
	int depth;        /* open transaction levels (0: autocommit) */
	bool setup_done;  /* the session's SETs ran on this connection */
	struct buf audit; /* audit lines held back until the outermost COMMIT */
	struct pg_conn *next;
};

struct pg_store {
	struct store base; /* base.impl points back here */
	char *url;         /* may hold a password: never logged */
	pthread_key_t key;
	pthread_mutex_t lock; /* guards conns */
	struct pg_conn *conns;
	int version;
	bool read_only; /* pg_open_ro: every transaction read-only */
	/* Whether the server answered the last time anyone asked: set by
	 * every connection attempt and by the probe, read by /healthz on a
	 * loop (store_reachable), which must not wait for the server. */
	atomic_bool up;
	pthread_t probe;
	bool probing;
	bool stop; /* guarded by lock; probe_cv wakes the probe to see it */
	pthread_cond_t probe_cv;
	struct pg_cache *cache; /* pg_open's only (pg_cache.c) */
};

#define PG(s) ((struct pg_store *)(s)->impl)

#define N_MIGRATIONS pg_n_migrations

struct pg_cache *pg_cache_of(struct store *s)
{
	return PG(s)->cache;
}

/* ---------- connections ---------- */

static void conn_forget(void *p)
{
	/* Connections stay on the store's list and are closed by pg_free(). */
	(void)p;
}

/* What every session of ours runs with: nothing waits past 5 s for a lock
 * or a statement, and a transaction left open by a dead worker does not
 * hold its locks for long. */
static int conn_setup(struct pg_store *p, struct pg_conn *c)
{
	PGresult *res =
		pg_exec_wait(&c->c,
			     p->read_only ? "SET default_transaction_read_only = on;"
					    " SET statement_timeout = 5000;"
					    " SET client_min_messages = warning;"
					    " SET TIME ZONE 'UTC'"
					  : "SET statement_timeout = 5000;"
					    " SET lock_timeout = 5000;"
					    " SET idle_in_transaction_session_timeout = 30000;"
					    " SET client_min_messages = warning;"
					    " SET TIME ZONE 'UTC'",
			     -1, NULL);
	bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;

	PQclear(res);
	c->setup_done = ok;
	return ok ? 0 : -BERR_STORE;
}

static PGconn *connect_url(const char *url)
{
	/* Our defaults come first: libpq lets later keywords win, so what the
	 * URL says (dbname, expanded) overrides them. */
	static const char *const keys[] = {
		"connect_timeout",     "keepalives",       "keepalives_idle",
		"keepalives_interval", "keepalives_count", "tcp_user_timeout",
		"application_name",    "dbname",           NULL
	};
	/* application_name names the process, so that an instance can tell
	 * its own connections from its peers' (pg_ops.c). Connecting gives up
	 * after 3 s, so that a request that finds the store gone answers
	 * within 5 s even when the server's host drops packets. */
	char app[32];
	const char *vals[] = { "3", "1", "5", "2", "2", "5000", app, url, NULL };

	snprintf(app, sizeof(app), "bastion:%ld", (long)getpid());
	return PQconnectdbParams(keys, vals, 1);
}

PGconn *pg_connect_new(struct store *s)
{
	return connect_url(PG(s)->url);
}

/* This thread's connection, opened on first use and re-opened when it
 * broke outside a transaction; NULL when the server cannot be reached. */
static struct pg_conn *conn(struct store *s)
{
	struct pg_store *p = PG(s);
	struct pg_conn *c = pthread_getspecific(p->key);

	if (!c) {
		c = calloc(1, sizeof(*c));
		if (!c)
			return NULL;
		buf_init(&c->audit, STORE_AUDIT_HELD_MAX);
		c->c = connect_url(p->url);
		if (!c->c) {
			free(c);
			return NULL;
		}
		pthread_mutex_lock(&p->lock);
		c->next = p->conns;
		p->conns = c;
		pthread_mutex_unlock(&p->lock);
		pthread_setspecific(p->key, c);
	} else if (!c->c && c->depth == 0) {
		/* Dropped after a deadline (pg_exec_wait). */
		c->c = connect_url(p->url);
		c->setup_done = false;
	} else if (PQstatus(c->c) == CONNECTION_BAD && c->depth == 0) {
		PQreset(c->c);
		c->setup_done = false;
	}
	if (PQstatus(c->c) != CONNECTION_OK) {
		/* libpq's message names host and port, never the password. Said
		 * once per outage, not once per request. */
		if (atomic_exchange(&p->up, false))
			log_warn("store: cannot reach PostgreSQL: %s", PQerrorMessage(c->c));
		return NULL;
	}
	if (!c->setup_done && conn_setup(p, c) < 0)
		return NULL;
	return c;
}

/* The kind of a failed statement, for bastion_store_errors_total. */
static const char *pg_error_kind(const char *state, PGconn *pc)
{
	if (PQstatus(pc) == CONNECTION_BAD || (state && strncmp(state, "08", 2) == 0))
		return "unavailable";
	if (!state)
		return "other";
	if (strncmp(state, "23", 2) == 0)
		return "constraint";
	if (strcmp(state, "57014") == 0)
		return "timeout";
	if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
	    strcmp(state, "55P03") == 0)
		return "busy";
	return "other";
}

static int map_error(const PGresult *res, PGconn *pc)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	metrics_store_error(pg_error_kind(state, pc));
	if (state && strcmp(state, "23505") == 0)
		return -EEXIST;
	if (state && strcmp(state, "23503") == 0)
		return -ENOENT;
	/* The primary message only: the detail may quote the values. */
	log_debug("store: PostgreSQL: %s (%s)",
		  res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : PQerrorMessage(pc),
		  state ? state : "no state");
	if (state && strcmp(state, "57014") == 0)
		log_warn("store: a PostgreSQL statement ran past the 5 s timeout");
	return -BERR_STORE;
}

int pg_q(struct store *s, PGresult **ret, const char *sql, int n, const char *const *params)
{
	/* A read may be sent again on a connection re-opened after it broke;
	 * a write may not (it may have committed before the break). */
	bool retry = strncmp(sql, "SELECT", 6) == 0;

	if (ret)
		*ret = NULL;
	for (int attempt = 0;; attempt++) {
		struct pg_conn *c = conn(s);
		PGresult *res;
		ExecStatusType st;
		int r;

		if (!c) {
			metrics_store_error("unavailable");
			return -BERR_STORE;
		}
		res = pg_exec_wait(&c->c, sql, n, params);
		st = PQresultStatus(res);
		if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
			if (!atomic_exchange(&PG(s)->up, true))
				log_info("store: PostgreSQL answers again");
			pgc_answered(s);
			if (ret)
				*ret = res;
			else
				PQclear(res);
			return 0;
		}
		if (PQstatus(c->c) == CONNECTION_BAD && atomic_exchange(&PG(s)->up, false))
			log_warn("store: the connection to PostgreSQL broke");
		if (!res && !c->c) {
			atomic_store(&PG(s)->up, false);
			r = -BERR_STORE; /* no answer in time: dropped, never retried */
		} else if (!res) {
			r = -ENOMEM;
		} else if (PQstatus(c->c) == CONNECTION_BAD && retry && c->depth == 0 &&
			   attempt == 0) {
			PQclear(res);
			continue;
		} else {
			r = map_error(res, c->c);
		}
		PQclear(res);
		return r;
	}
}

int pg_row(struct store *s, PGresult **ret, const char *sql, int n, const char *const *params)
{
	int r = pg_q(s, ret, sql, n, params);

	if (r == 0 && PQntuples(*ret) == 0) {
		PQclear(*ret);
		*ret = NULL;
		return -ENOENT;
	}
	return r;
}

const char *pg_val(const PGresult *res, int r, int c)
{
	return PQgetisnull(res, r, c) ? NULL : PQgetvalue(res, r, c);
}

int64_t pg_i64(const PGresult *res, int r, int c)
{
	const char *v = pg_val(res, r, c);

	return v ? (int64_t)strtoll(v, NULL, 10) : 0;
}

int pg_changes(const PGresult *res)
{
	const char *t = PQcmdTuples((PGresult *)res);

	return t && t[0] ? (int)strtol(t, NULL, 10) : 0;
}

const char *pg_num(struct pg_num *b, int64_t v)
{
	snprintf(b->s, sizeof(b->s), "%" PRId64, v);
	return b->s;
}

const char *pg_hash(struct pg_hash *b, const uint8_t hash[32])
{
	static const char hex[] = "0123456789abcdef";

	b->s[0] = '\\';
	b->s[1] = 'x';
	for (int i = 0; i < 32; i++) {
		b->s[2 + 2 * i] = hex[hash[i] >> 4];
		b->s[3 + 2 * i] = hex[hash[i] & 15];
	}
	b->s[66] = '\0';
	return b->s;
}

int pg_copy(char *dst, size_t size, const char *src)
{
	size_t n = src ? strlen(src) : 0;

	if (n >= size)
		return -EOVERFLOW;
	if (n)
		memcpy(dst, src, n);
	dst[n] = '\0';
	return 0;
}

/* ---------- transactions and the audit lines they hold ---------- */

bool pg_in_tx(struct store *s)
{
	struct pg_conn *c = pthread_getspecific(PG(s)->key);

	return c && c->depth > 0;
}

static bool simple(struct pg_conn *c, const char *sql, const char *expect_tag)
{
	PGresult *res = pg_exec_wait(&c->c, sql, -1, NULL);
	bool ok = PQresultStatus(res) == PGRES_COMMAND_OK &&
		  (!expect_tag || strcmp(PQcmdStatus(res), expect_tag) == 0);

	PQclear(res);
	return ok;
}

int pg_tx(struct store *s, int (*fn)(struct store *s, void *ud), void *ud)
{
	struct pg_conn *c = conn(s);
	char sp[32];
	size_t mark;
	int r, depth;

	if (!c)
		return -BERR_STORE;
	depth = c->depth;
	mark = buf_len(&c->audit);
	snprintf(sp, sizeof(sp), "SAVEPOINT s%d", depth);
	if (!simple(c, depth ? sp : "BEGIN", NULL))
		return -BERR_STORE;
	c->depth++;
	r = fn(s, ud);
	c->depth--;
	if (depth) {
		if (r < 0) {
			snprintf(sp, sizeof(sp), "ROLLBACK TO SAVEPOINT s%d", depth);
			buf_truncate(&c->audit, mark);
			if (!simple(c, sp, NULL))
				return r;
		}
		snprintf(sp, sizeof(sp), "RELEASE SAVEPOINT s%d", depth);
		if (!simple(c, sp, NULL) && r >= 0)
			r = -BERR_STORE;
		return r;
	}
	/* COMMIT of a transaction a statement aborted answers "ROLLBACK". */
	if (r >= 0 && !simple(c, "COMMIT", "COMMIT"))
		r = -BERR_STORE;
	if (r < 0) {
		simple(c, "ROLLBACK", NULL);
		buf_truncate(&c->audit, 0);
		return r;
	}
	/* Committed: now, and only now, the log may show its records. */
	log_write_lines(buf_str(&c->audit), buf_len(&c->audit));
	buf_truncate(&c->audit, 0);
	return r;
}

/* ---------- open, migrate, free ---------- */

static int migrate_locked(struct store *s)
{
	PGresult *res = NULL;
	int version = 0, r;

	r = pg_q(s, NULL, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)", 0,
		 NULL);
	if (r == 0)
		r = pg_q(s, &res, "SELECT version FROM schema_version", 0, NULL);
	if (r < 0)
		return r;
	if (PQntuples(res) > 0)
		version = (int)pg_i64(res, 0, 0);
	PQclear(res);
	if (version > N_MIGRATIONS) {
		log_error("store: schema version %d is newer than this binary knows (%d)", version,
			  N_MIGRATIONS);
		return -BERR_STORE;
	}
	for (; version < N_MIGRATIONS; version++) {
		struct pg_conn *c = conn(s);
		struct pg_num v;
		const char *p[] = { pg_num(&v, version + 1) };
		PGresult *m;
		bool ok;

		if (!c || !simple(c, "BEGIN", NULL))
			return -BERR_STORE;
		m = PQexec(c->c, pg_migrations[version]);
		ok = PQresultStatus(m) == PGRES_COMMAND_OK;
		if (!ok)
			log_error("store: PostgreSQL migration %d failed: %s", version + 1,
				  PQresultErrorField(m, PG_DIAG_MESSAGE_PRIMARY));
		PQclear(m);
		if (ok)
			ok = pg_q(s, NULL, "DELETE FROM schema_version", 0, NULL) == 0 &&
			     pg_q(s, NULL, "INSERT INTO schema_version (version) VALUES ($1)", 1,
				  p) == 0;
		if (!ok || !simple(c, "COMMIT", "COMMIT")) {
			simple(c, "ROLLBACK", NULL);
			return -BERR_STORE;
		}
		log_info("store: migrated the PostgreSQL schema to version %d", version + 1);
	}
	PG(s)->version = version;
	return 0;
}

/* Instances starting together: the first takes the lock and migrates, the
 * others wait for it (at most the statement timeout per attempt) and then
 * find nothing left to do. */
static int migrate(struct store *s)
{
	struct pg_num k;
	const char *p[] = { pg_num(&k, PG_LOCK_MIGRATE) };
	int r = -BERR_STORE;

	for (int attempt = 0; attempt < 6 && r == -BERR_STORE; attempt++)
		r = pg_q(s, NULL, "SELECT pg_advisory_lock($1)", 1, p);
	if (r < 0) {
		log_error("store: cannot take PostgreSQL's migration lock");
		return r;
	}
	r = migrate_locked(s);
	if (pg_q(s, NULL, "SELECT pg_advisory_unlock($1)", 1, p) < 0 && r == 0)
		r = -BERR_STORE;
	return r;
}

static struct pg_store *pg_new(const char *url)
{
	struct pg_store *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->base.be = &store_pg_backend;
	p->base.impl = p;
	p->url = strdup(url);
	if (!p->url) {
		free(p);
		return NULL;
	}
	if (pthread_key_create(&p->key, conn_forget) != 0) {
		free(p->url);
		free(p);
		return NULL;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->probe_cv, NULL);
	atomic_init(&p->up, true);
	return p;
}

/* ---------- the probe ---------- */

/* How often the probe asks the server whether it is there: a load
 * balancer sees /healthz turn within about this long of the store going
 * away or coming back, without any request having to fail first. */
#define PG_PROBE_MS 1000

static void *probe_main(void *arg)
{
	struct store *s = arg;
	struct pg_store *p = PG(s);

	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += (long)PG_PROBE_MS * 1000000L;
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&p->probe_cv, &p->lock, &until);
		if (p->stop)
			break;
		pthread_mutex_unlock(&p->lock);
		/* A read: on a connection found broken it is retried once on a
		 * new one; either way conn() and pg_q set p->up. */
		pg_q(s, NULL, "SELECT 1", 0, NULL);
		pgc_tick(s);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

bool pg_reachable(struct store *s)
{
	return atomic_load(&PG(s)->up);
}

int pg_open_ro(const char *url, struct store **ret, int *ret_version, int *ret_known)
{
	struct pg_store *p = pg_new(url);
	PGresult *res = NULL;
	int r;

	*ret = NULL;
	if (ret_known)
		*ret_known = N_MIGRATIONS;
	if (!p)
		return -ENOMEM;
	p->read_only = true;
	/* No schema yet (a database no instance has started on) is version 0:
	 * the first `serve` migrates it. */
	r = pg_row(&p->base, &res, "SELECT to_regclass('schema_version') IS NOT NULL", 0, NULL);
	if (r == 0 && pg_val(res, 0, 0) && pg_val(res, 0, 0)[0] == 't') {
		PQclear(res);
		res = NULL;
		r = pg_row(&p->base, &res, "SELECT COALESCE(max(version), 0) FROM schema_version",
			   0, NULL);
		if (r == 0)
			p->version = (int)pg_i64(res, 0, 0);
	}
	if (r == -ENOENT)
		r = -BERR_STORE;
	PQclear(res);
	if (r == 0 && ret_version)
		*ret_version = p->version;
	if (r == 0 && p->version > N_MIGRATIONS)
		r = -EPROTO;
	if (r < 0) {
		pg_free(&p->base);
		return r;
	}
	*ret = &p->base;
	return 0;
}

int pg_open(const char *url, struct store **ret)
{
	struct pg_store *p = pg_new(url);
	struct store *s;
	int r;

	if (!p)
		return -ENOMEM;
	s = &p->base;
	r = migrate(s);
	if (r == 0)
		r = pgc_open(&p->cache);
	/* Listening before the first request: the cache answers only then. */
	if (r == 0)
		pgc_tick(s);
	if (r == 0 && pthread_create(&p->probe, NULL, probe_main, s) != 0)
		r = -ENOMEM;
	if (r < 0) {
		pg_free(s);
		return r;
	}
	p->probing = true;
	*ret = s;
	return 0;
}

void pg_free(struct store *s)
{
	struct pg_store *p = PG(s);
	struct pg_conn *c, *next;

	if (p->probing) {
		pthread_mutex_lock(&p->lock);
		p->stop = true;
		pthread_cond_signal(&p->probe_cv);
		pthread_mutex_unlock(&p->lock);
		pthread_join(p->probe, NULL);
	}
	pgc_free(p->cache);
	for (c = p->conns; c; c = next) {
		next = c->next;
		PQfinish(c->c);
		buf_free(&c->audit);
		free(c);
	}
	pthread_setspecific(p->key, NULL);
	pthread_key_delete(p->key);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->probe_cv);
	/* The URL may hold a password. */
	explicit_bzero(p->url, strlen(p->url));
	free(p->url);
	free(p);
}

int pg_schema_version(struct store *s)
{
	return PG(s)->version;
}

/* ---------- audit lines held for the commit ---------- */

void pg_audit_line(struct store *s, const char *line, size_t len)
{
	struct pg_conn *c = conn(s);

	/* Outside a transaction (or out of memory) it goes out at once: the
	 * insert it describes has committed by the time this runs. */
	if (!c || c->depth == 0 || buf_append(&c->audit, line, len) < 0)
		log_write_lines(line, len);
}

/* ---------- the table ---------- */

const struct store_backend store_pg_backend = { .name = "PostgreSQL",
						.free = pg_free,
						.reachable = pg_reachable,
						.after = pgc_after,
						.cache_stats = pgc_stats,
						.cache_sync = pgc_sync,
#define PG_ENTRY(name, params, args) .name = pg_##name,
						PG_OPS_DONE(PG_ENTRY)
#undef PG_ENTRY
};
