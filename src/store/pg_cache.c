/* PostgreSQL backend: the per-instance read cache (issue 15 item 5) — the
 * table, its domains and generations, the LISTEN connection that keeps it
 * true across instances, and the rules for when it may answer at all. The
 * cached reads themselves (what each keeps, how a hit is replayed) are in
 * pg_cached.c.
 *
 * Why: a list of VMs or a connect that SQLite answers in-process in
 * 0.2-0.5 ms pays 0.1-0.2 ms per round trip to PostgreSQL; within 1.2x of
 * SQLite leaves room for none. So the reads those requests make before
 * their answer (the token or browser session with its user and role
 * assignments, assignments by principal, the resources a list and a
 * connect read, host keys) are answered from memory in the steady state.
 *
 * How it stays true:
 * - Every table a cached read depends on belongs to a domain (ident,
 *   roles, res, hostkeys). A trigger on each (pg_schema.c) sends NOTIFY
 *   bastion_cache with the domain inside the writing transaction, so every
 *   listening instance gets it at commit, whoever wrote it (another
 *   instance, an operator's psql).
 * - The writing instance does not wait for its own notification: each
 *   store call that may write a cached domain drops every domain here once
 *   it returns (pgc_after), so that the writer's next request reads anew.
 * - A lookup first drains what the LISTEN connection has received
 *   (without blocking), so that a change committed elsewhere before the
 *   request arrived is seen, unless its notification is still in flight
 *   (the bound docs/decisions.md gives).
 * - A fill is stamped with its domains' generations at the start of its
 *   read and kept only if none moved meanwhile: a read that raced a write
 *   is answered but never cached.
 * - Fail closed: answers come from here only while the LISTEN connection
 *   is up and the store answered some statement within PGC_FRESH_MS.
 *   Otherwise the cache is emptied and bypassed (requests reach the store,
 *   and answer 503 when it is gone); after the LISTEN connection comes
 *   back it starts empty, so notifications missed meanwhile cannot matter.
 * - Bounded: PGC_MAX_ENTRIES entries and PGC_MAX_BYTES bytes (emptied
 *   whole when full), PGC_MAX_AGE_MS per entry as a belt. Keys are what the
 *   store is asked (a token or session by its hash, never its secret);
 *   values are wiped when dropped. */
#include "store/pg_internal.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"

#define PGC_BUCKETS     1024
#define PGC_MAX_ENTRIES 4096
#define PGC_MAX_BYTES   (8u * 1024u * 1024u)
#define PGC_MAX_AGE_MS  30000
#define PGC_FRESH_MS    2000
#define PGC_KEY_MAX     600

struct pgc_entry {
	struct pgc_entry *next;
	uint32_t hash;
	unsigned mask;
	int64_t at_ms;
	size_t key_len, val_len;
	char *key;
	char *val;
};

struct pg_cache {
	pthread_mutex_t lock; /* everything below but last_ok_ms */
	PGconn *listen;       /* NULL: down (the probe opens it again) */
	bool notice;          /* the server said something on it: closing */
	uint64_t gen[PGC_NDOM];
	struct pgc_entry *b[PGC_BUCKETS];
	size_t n, bytes;
	atomic_int_fast64_t last_ok_ms;
	atomic_uint_fast64_t hits, misses;
	/* pgc_sync's markers: "sync:NAME:SEQ", NAME this cache's own (every
	 * listener hears every marker: another's is ignored). */
	char sync_name[48];
	uint64_t sync_sent, sync_seen;
};

static const char *const dom_names[PGC_NDOM] = { "ident", "roles", "res", "hostkeys" };

static int64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static uint32_t hash_key(const char *k, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)k[i]) * 16777619u;
	return h;
}

static void entry_free(struct pg_cache *c, struct pgc_entry *e)
{
	c->n--;
	c->bytes -= e->key_len + e->val_len + sizeof(*e);
	/* A token's or session's owner and CSRF value: not left in freed
	 * memory. */
	explicit_bzero(e->val, e->val_len);
	free(e->val);
	free(e->key);
	free(e);
}

/* Frees the entries that depend on any domain of mask (every entry
 * depends on one at least: PGC_ALL frees them all). */
static void evict_locked(struct pg_cache *c, unsigned mask)
{
	for (int i = 0; i < PGC_BUCKETS && c->n; i++) {
		struct pgc_entry **pp = &c->b[i];

		while (*pp) {
			struct pgc_entry *e = *pp;

			if (e->mask & mask) {
				*pp = e->next;
				entry_free(c, e);
			} else {
				pp = &e->next;
			}
		}
	}
}

/* Drops the entries that depend on any domain of mask and moves those
 * domains' generations, so that a fill that began before cannot land. */
static void drop_locked(struct pg_cache *c, unsigned mask)
{
	for (int d = 0; d < PGC_NDOM; d++)
		if (mask & (1u << d))
			c->gen[d]++;
	evict_locked(c, mask);
}

static void listen_close_locked(struct pg_cache *c)
{
	if (c->listen)
		PQfinish(c->listen);
	c->listen = NULL;
	c->notice = false;
	drop_locked(c, PGC_ALL);
}

/* Anything the server says on the LISTEN connection outside a query is
 * its last words (a FATAL before it closes): the connection is done. */
static void on_notice(void *arg, const char *message)
{
	struct pg_cache *c = arg;

	(void)message;
	c->notice = true;
}

/* Reads what the LISTEN connection holds, without blocking, and applies
 * it. false: the connection is gone (closed here; the cache emptied). */
static bool drain_locked(struct pg_cache *c)
{
	PGnotify *n;

	if (!c->listen)
		return false;
	if (PQconsumeInput(c->listen) != 1 || PQstatus(c->listen) != CONNECTION_OK)
		goto lost;
	while ((n = PQnotifies(c->listen)) != NULL) {
		unsigned mask = 0;

		if (n->extra && strncmp(n->extra, "sync:", 5) == 0) {
			size_t k = strlen(c->sync_name);

			if (strncmp(n->extra + 5, c->sync_name, k) == 0 && n->extra[5 + k] == ':') {
				uint64_t seq = strtoull(n->extra + 6 + k, NULL, 10);

				if (seq > c->sync_seen)
					c->sync_seen = seq;
			}
			PQfreemem(n);
			continue;
		}
		for (int d = 0; d < PGC_NDOM; d++)
			if (n->extra && strcmp(n->extra, dom_names[d]) == 0)
				mask = 1u << d;
		/* A payload this binary does not know: a newer peer's domain. */
		drop_locked(c, mask ? mask : PGC_ALL);
		PQfreemem(n);
	}
	if (c->notice || PQstatus(c->listen) != CONNECTION_OK)
		goto lost;
	return true;
lost:
	log_warn("store: the cache's LISTEN connection to PostgreSQL is gone: reads go to the"
		 " store until it is back");
	listen_close_locked(c);
	return false;
}

/* Whether the cache may answer now; drains the LISTEN connection. When it
 * may not, it is emptied. */
static bool serving_locked(struct store *s, struct pg_cache *c)
{
	bool fresh = now_ms() - atomic_load(&c->last_ok_ms) <= PGC_FRESH_MS;

	if (!fresh || !pg_reachable(s)) {
		if (c->n)
			drop_locked(c, PGC_ALL);
		return false;
	}
	return drain_locked(c);
}

int pgc_get(struct store *s, const char *key, size_t key_len, unsigned mask, char **ret_val,
	    size_t *ret_len, struct pgc_fill *f)
{
	struct pg_cache *c = pg_cache_of(s);
	struct pgc_entry *e;
	uint32_t h;
	int r = -1;

	f->on = false;
	/* Inside a transaction a read must see the transaction's own writes. */
	if (!c || key_len > PGC_KEY_MAX || pg_in_tx(s))
		return -1;
	h = hash_key(key, key_len);
	pthread_mutex_lock(&c->lock);
	if (!serving_locked(s, c))
		goto out;
	for (e = c->b[h % PGC_BUCKETS]; e; e = e->next)
		if (e->hash == h && e->key_len == key_len && memcmp(e->key, key, key_len) == 0)
			break;
	if (e && now_ms() - e->at_ms <= PGC_MAX_AGE_MS) {
		*ret_val = malloc(e->val_len ? e->val_len : 1);
		if (!*ret_val)
			goto out;
		memcpy(*ret_val, e->val, e->val_len);
		*ret_len = e->val_len;
		atomic_fetch_add(&c->hits, 1);
		r = 1;
		goto out;
	}
	memcpy(f->gen, c->gen, sizeof(f->gen));
	f->mask = mask;
	f->on = true;
	atomic_fetch_add(&c->misses, 1);
	r = 0;
out:
	pthread_mutex_unlock(&c->lock);
	return r;
}

void pgc_put(struct store *s, const char *key, size_t key_len, const char *val, size_t val_len,
	     const struct pgc_fill *f)
{
	struct pg_cache *c = pg_cache_of(s);
	struct pgc_entry *e, **pp;
	uint32_t h;
	size_t cost = key_len + val_len + sizeof(*e);

	if (!c || !f->on || cost > PGC_MAX_BYTES / 16)
		return;
	h = hash_key(key, key_len);
	pthread_mutex_lock(&c->lock);
	/* Not kept when a domain it read moved since its read began (a write
	 * raced it), or when the cache stopped serving meanwhile. */
	for (int d = 0; d < PGC_NDOM; d++)
		if ((f->mask & (1u << d)) && c->gen[d] != f->gen[d])
			goto out;
	if (!c->listen)
		goto out;
	for (pp = &c->b[h % PGC_BUCKETS]; *pp; pp = &(*pp)->next)
		if ((*pp)->hash == h && (*pp)->key_len == key_len &&
		    memcmp((*pp)->key, key, key_len) == 0) {
			e = *pp;
			*pp = e->next;
			entry_free(c, e);
			break;
		}
	/* Full: emptied whole; the generations stay (nothing raced). */
	if (c->n >= PGC_MAX_ENTRIES || c->bytes + cost > PGC_MAX_BYTES)
		evict_locked(c, PGC_ALL);
	e = calloc(1, sizeof(*e));
	if (!e)
		goto out;
	e->key = malloc(key_len);
	e->val = malloc(val_len ? val_len : 1);
	if (!e->key || !e->val) {
		free(e->key);
		free(e->val);
		free(e);
		goto out;
	}
	memcpy(e->key, key, key_len);
	if (val_len)
		memcpy(e->val, val, val_len);
	e->key_len = key_len;
	e->val_len = val_len;
	e->hash = h;
	e->mask = f->mask;
	e->at_ms = now_ms();
	e->next = c->b[h % PGC_BUCKETS];
	c->b[h % PGC_BUCKETS] = e;
	c->n++;
	c->bytes += cost;
out:
	pthread_mutex_unlock(&c->lock);
}

void pgc_patch(struct store *s, char kind, bool (*fn)(char *val, size_t len, void *ud), void *ud)
{
	struct pg_cache *c = pg_cache_of(s);

	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < PGC_BUCKETS && c->n; i++)
		for (struct pgc_entry *e = c->b[i]; e; e = e->next)
			if (e->key_len && e->key[0] == kind)
				fn(e->val, e->val_len, ud);
	pthread_mutex_unlock(&c->lock);
}

void pgc_answered(struct store *s)
{
	struct pg_cache *c = pg_cache_of(s);

	if (c)
		atomic_store(&c->last_ok_ms, now_ms());
}

/* The store's entries that write nothing a cached read depends on (a
 * token's time of last use is patched into the cache by pg_cached.c).
 * Reads are store_req_is_read's list. Any other entry, a new one
 * included, drops the whole cache when it returns (the safe default),
 * but for those in narrow[] below. */
static const char *const harmless[] = {
	"audit",
	"audit_at",
	"token_touch",
	"session_open",
	"session_open_attached",
	"session_end",
	"session_close_stale",
	"session_attached",
	"session_end_request",
	"session_end_request_user",
	"session_end_requests_take",
	"session_bytes",
	"session_prune",
	"audit_prune",
	"instance_claim",
	"instance_heartbeat",
	"instance_reap",
	"instance_delete",
	"listen_open",
	"wait_put",
	"wait_delete",
	"res_lock",
	"rec_open",
	"rec_chunks_add",
	"rec_finish",
	"rec_prune",
	"rec_key_update",
	"rec_interrupt",
	"throttle_update",
	"throttle_delete",
	"throttle_purge",
	"login_known_add",
	"login_known_forget",
	"wa_challenge_add",
	"wa_challenge_take",
	"wa_cred_count_set",
	"mfa_totp_use",
	"mfa_recovery_use",
	"oidc_pending_put",
	"oidc_pending_take",
};

/* Writes that touch the tables of one domain only (checked against
 * their SQL): they drop that domain. A mixed workload's resource write
 * then leaves the callers' tokens cached. */
static const struct {
	const char *name;
	unsigned mask;
} narrow[] = {
	{ "role_put", PGC_ROLES },
	{ "role_delete", PGC_ROLES },
	{ "role_put_checked", PGC_ROLES },
	{ "role_delete_checked", PGC_ROLES },
	{ "group_put", PGC_RES },
	{ "res_put", PGC_RES },
	{ "hostkey_add", PGC_HOSTKEYS },
	{ "hostkey_clear", PGC_HOSTKEYS },
	{ "user_put", PGC_IDENT },
	{ "user_set_disabled", PGC_IDENT },
	{ "login_add", PGC_IDENT },
	{ "login_delete", PGC_IDENT },
	{ "login_delete_user", PGC_IDENT },
	{ "login_trim", PGC_IDENT },
	{ "login_mfa_mark", PGC_IDENT },
	{ "token_add", PGC_IDENT },
	{ "token_insert", PGC_IDENT },
	{ "token_delete", PGC_IDENT },
	{ "token_delete_user", PGC_IDENT },
	{ "token_revoke", PGC_IDENT },
	{ "ident_purge_expired", PGC_IDENT },
};

const char *pgc_unknown_name(void)
{
	for (size_t i = 0; i < sizeof(harmless) / sizeof(harmless[0]); i++)
		if (!store_op_exists(harmless[i]))
			return harmless[i];
	for (size_t i = 0; i < sizeof(narrow) / sizeof(narrow[0]); i++)
		if (!store_op_exists(narrow[i].name))
			return narrow[i].name;
	return NULL;
}

void pgc_after(struct store *s, const char *name)
{
	struct pg_cache *c = pg_cache_of(s);
	unsigned mask = PGC_ALL;

	if (!c || store_req_is_read(name))
		return;
	for (size_t i = 0; i < sizeof(harmless) / sizeof(harmless[0]); i++)
		if (strcmp(name, harmless[i]) == 0)
			return;
	for (size_t i = 0; i < sizeof(narrow) / sizeof(narrow[0]); i++)
		if (strcmp(name, narrow[i].name) == 0)
			mask = narrow[i].mask;
	pthread_mutex_lock(&c->lock);
	drop_locked(c, mask);
	pthread_mutex_unlock(&c->lock);
}

/* Opens the LISTEN connection (blocking: up to the connect timeout and
 * PG_ANSWER_MS), outside the lock; the cache starts empty once it is up. */
static void listen_open(struct store *s, struct pg_cache *c)
{
	PGconn *l = pg_connect_new(s);
	PGresult *res = NULL;
	bool ok = l && PQstatus(l) == CONNECTION_OK;

	if (ok) {
		PQsetNoticeProcessor(l, on_notice, c);
		res = pg_exec_wait(&l, "LISTEN bastion_cache", -1, NULL);
		ok = l && PQresultStatus(res) == PGRES_COMMAND_OK && PQsetnonblocking(l, 1) == 0;
		PQclear(res);
	}
	if (!ok) {
		if (l)
			PQfinish(l);
		return;
	}
	pthread_mutex_lock(&c->lock);
	if (c->listen)
		PQfinish(c->listen);
	c->listen = l;
	c->notice = false;
	drop_locked(c, PGC_ALL);
	pthread_mutex_unlock(&c->lock);
	log_info("store: the cache listens for changes made by other instances");
}

int pgc_open(struct pg_cache **ret)
{
	struct pg_cache *c = calloc(1, sizeof(*c));

	*ret = NULL;
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	atomic_init(&c->last_ok_ms, now_ms());
	snprintf(c->sync_name, sizeof(c->sync_name), "%ld.%p", (long)getpid(), (void *)c);
	*ret = c;
	return 0;
}

void pgc_tick(struct store *s)
{
	struct pg_cache *c = pg_cache_of(s);
	bool up;

	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	up = drain_locked(c);
	pthread_mutex_unlock(&c->lock);
	if (!up && pg_reachable(s))
		listen_open(s, c);
}

void pgc_free(struct pg_cache *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	listen_close_locked(c);
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

int pgc_sync(struct store *s)
{
	struct pg_cache *c = pg_cache_of(s);
	int64_t until = now_ms() + 2000;
	uint64_t mine;
	char payload[96];
	const char *p[] = { payload };
	int r = -ETIMEDOUT;

	if (!c)
		return 0;
	pthread_mutex_lock(&c->lock);
	mine = ++c->sync_sent;
	snprintf(payload, sizeof(payload), "sync:%s:%llu", c->sync_name, (unsigned long long)mine);
	pthread_mutex_unlock(&c->lock);
	if (pg_q(s, NULL, "SELECT pg_notify('bastion_cache', $1)", 1, p) < 0)
		return -BERR_STORE;
	while (now_ms() < until) {
		struct pollfd pfd = { .fd = -1, .events = POLLIN };
		bool up;

		pthread_mutex_lock(&c->lock);
		up = drain_locked(c);
		if (c->sync_seen >= mine)
			r = 0;
		if (up)
			pfd.fd = PQsocket(c->listen);
		pthread_mutex_unlock(&c->lock);
		if (r == 0)
			break;
		if (!up) {
			r = -EPIPE;
			break;
		}
		poll(&pfd, 1, 10);
	}
	return r;
}

void pgc_stats(struct store *s, struct store_cache_stats *ret)
{
	struct pg_cache *c = pg_cache_of(s);

	memset(ret, 0, sizeof(*ret));
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	ret->entries = c->n;
	ret->bytes = c->bytes;
	ret->listening = c->listen != NULL;
	ret->listen_pid = c->listen ? PQbackendPID(c->listen) : 0;
	pthread_mutex_unlock(&c->lock);
	ret->hits = atomic_load(&c->hits);
	ret->misses = atomic_load(&c->misses);
}
