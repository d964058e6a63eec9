/* How many connections the server holds per source address and in total
 * (limits.connections_per_address, limits.connections), checked when loop 0
 * accepts, before any TLS: a connection over either cap is closed at once
 * and counted in bastion_connections_refused_total. As sshd's MaxStartups
 * and PerSourceMaxStartups, but for every connection, not only the
 * unauthenticated ones: an idle keep-alive connection costs the same
 * descriptor and TLS state whoever holds it.
 *
 * An IPv6 source counts by its /64 (what one subscriber is given, so one
 * host cannot take a fresh address per connection); an IPv4-mapped IPv6
 * address counts as the IPv4 address. Entries live in a hash table keyed
 * with a random key (SipHash), so that no peer can pick addresses that
 * collide; accept (loop 0) and release (any loop) take one mutex. */
#include "server/internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <netinet/in.h>
#include <sodium.h>

#include "core/metrics.h"
#include "server/loops.h"

#define BUCKETS 4096

struct limits_node {
	struct limits_node *next;
	uint8_t key[16];
	uint8_t key_len;
	unsigned count;
	unsigned bucket;
};

static struct {
	pthread_mutex_t lock;
	struct limits_node *buckets[BUCKETS];
	unsigned char hash_key[crypto_shorthash_KEYBYTES];
	bool keyed;
	size_t total;
	unsigned per_address; /* 0: no cap */
	size_t max_total;     /* 0: automatic */
} L = { .lock = PTHREAD_MUTEX_INITIALIZER, .per_address = SRV_DEFAULT_CONNS_PER_ADDRESS };

void srv_limits_set(unsigned per_address, size_t total)
{
	pthread_mutex_lock(&L.lock);
	L.per_address = per_address;
	L.max_total = total;
	pthread_mutex_unlock(&L.lock);
}

/* Automatic total: half of every loop's descriptors, the other half for
 * the SSH sockets of the terminals those connections may open. */
static size_t auto_total(void)
{
	struct rlimit rl;
	size_t per_loop = 1024;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		per_loop = (size_t)rl.rlim_cur;
	return per_loop / 2 * (loops_count() ? loops_count() : 1);
}

static void key_of(const struct sockaddr *sa, uint8_t key[16], uint8_t *len)
{
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a)) {
			memcpy(key, a->s6_addr + 12, 4);
			*len = 4;
		} else {
			memcpy(key, a->s6_addr, 8); /* the /64 */
			*len = 8;
		}
	} else if (sa->sa_family == AF_INET) {
		memcpy(key, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		*len = 4;
	} else {
		*len = 0; /* unknown family: all such share one entry */
	}
}

enum limits_refusal limits_acquire(const struct sockaddr *sa, struct limits_node **ret)
{
	struct limits_node *n;
	uint8_t key[16] = { 0 }, len;
	unsigned char h[crypto_shorthash_BYTES];
	unsigned b;
	enum limits_refusal r = LIMITS_OK;

	key_of(sa, key, &len);
	pthread_mutex_lock(&L.lock);
	if (!L.keyed) {
		randombytes_buf(L.hash_key, sizeof(L.hash_key));
		L.keyed = true;
	}
	crypto_shorthash(h, key, len, L.hash_key);
	b = (unsigned)(h[0] | h[1] << 8) % BUCKETS;
	for (n = L.buckets[b]; n; n = n->next)
		if (n->key_len == len && memcmp(n->key, key, len) == 0)
			break;
	if (L.total >= (L.max_total ? L.max_total : auto_total())) {
		r = LIMITS_TOTAL;
		goto out;
	}
	if (L.per_address && n && n->count >= L.per_address) {
		r = LIMITS_PER_ADDRESS;
		goto out;
	}
	if (!n) {
		n = calloc(1, sizeof(*n));
		if (!n) {
			r = LIMITS_TOTAL; /* out of memory: refused like a full server */
			goto out;
		}
		memcpy(n->key, key, len);
		n->key_len = len;
		n->bucket = b;
		n->next = L.buckets[b];
		L.buckets[b] = n;
	}
	n->count++;
	L.total++;
	*ret = n;
out:
	pthread_mutex_unlock(&L.lock);
	if (r != LIMITS_OK)
		metrics_conn_refused(r == LIMITS_TOTAL ? "total" : "per_address", 1);
	return r;
}

void limits_release(struct limits_node *n)
{
	struct limits_node **p;

	if (!n)
		return;
	pthread_mutex_lock(&L.lock);
	L.total--;
	if (--n->count == 0) {
		for (p = &L.buckets[n->bucket]; *p && *p != n; p = &(*p)->next)
			;
		if (*p)
			*p = n->next;
		free(n);
	}
	pthread_mutex_unlock(&L.lock);
}
