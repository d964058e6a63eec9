/* Behind a load balancer (server.proxy_protocol, server.trusted_proxies):
 * before TLS, a connection from a trusted proxy must begin with a PROXY
 * header (proxyproto.h), whose source address then replaces the peer's —
 * for the per-address connection cap (limits.c), sign-in throttling, the
 * audit trail's `source` and the logs, which all read the connection's
 * remote address. A connection from anyone else that begins with one is
 * closed: the header is never believed from an address that is not
 * configured (docs/security.md).
 *
 * The header is read off the raw socket, before libuv's TCP handle takes
 * it, with a uv_poll_t: recv(MSG_PEEK) shows what has come, and only the
 * header's own bytes are consumed, so the TLS handshake behind it stays in
 * the kernel for the connection proper (conn_start). A header that is
 * malformed, too long (PP_MAX), of a version not accepted, or not complete
 * within SRV_PROXY_TIMEOUT_MS closes the connection and is counted
 * (bastion_connections_refused_total{reason="proxy"}). A connection from an
 * untrusted address is only looked at: its first byte tells a PROXY header
 * from a TLS record.
 *
 * Waiting connections are listed in their loop's server, so that a stop
 * closes them and waits for their handles. */
#include "server/internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include "core/cidr.h"
#include "core/log.h"
#include "core/metrics.h"
#include "server/proxyproto.h"

/* HAProxy writes the header with the connection; this bounds a peer that
 * trickles it (slowloris before TLS). */
#define SRV_PROXY_TIMEOUT_MS 5000u

static struct {
	pthread_mutex_t lock;
	unsigned versions; /* PP_V1 | PP_V2; 0: off */
	struct cidr_list trusted;
} P = { .lock = PTHREAD_MUTEX_INITIALIZER };

struct proxy_wait {
	uv_poll_t poll;
	uv_timer_t timer;
	struct srv *s;
	struct proxy_wait *prev, *next;
	int fd;
	int handles; /* not yet closed */
	bool trusted;
	bool ok; /* header read (or, untrusted, none): the connection goes on */
	unsigned versions;
	struct limits_node *limit;
	struct sockaddr_storage peer;
	struct sockaddr_storage client; /* what the connection counts as */
	uint8_t buf[PP_MAX];
	size_t have; /* header bytes consumed so far */
};

int srv_proxy_set(unsigned versions, const char *trusted)
{
	struct cidr_list list = { 0 };
	char why[160];

	if (versions & ~(PP_V1 | PP_V2))
		return -EINVAL;
	if (versions && cidr_list_parse(trusted ? trusted : "", &list, why, sizeof(why)) < 0) {
		log_error("server.trusted_proxies: %s", why);
		return -EINVAL;
	}
	pthread_mutex_lock(&P.lock);
	P.versions = versions;
	P.trusted = list;
	pthread_mutex_unlock(&P.lock);
	return 0;
}

static bool to_ip(const struct sockaddr *sa, struct cidr_ip *ip)
{
	memset(ip, 0, sizeof(*ip));
	if (sa->sa_family == AF_INET) {
		ip->family = AF_INET;
		memcpy(ip->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		ip->family = AF_INET6;
		memcpy(ip->addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		cidr_ip_unmap(ip);
	} else {
		return false;
	}
	return true;
}

/* Whether PROXY headers are expected at all, and from sa; versions gets
 * what is accepted. */
bool proxy_trusted(const struct sockaddr *sa, unsigned *ret_versions)
{
	struct cidr_ip ip;
	bool trusted = false;

	pthread_mutex_lock(&P.lock);
	if (ret_versions)
		*ret_versions = P.versions;
	if (P.versions && to_ip(sa, &ip))
		for (size_t i = 0; i < P.trusted.n && !trusted; i++)
			trusted = cidr_contains(&P.trusted.v[i], &ip);
	pthread_mutex_unlock(&P.lock);
	return trusted;
}

bool proxy_enabled(void)
{
	unsigned v;

	pthread_mutex_lock(&P.lock);
	v = P.versions;
	pthread_mutex_unlock(&P.lock);
	return v != 0;
}

static void unlink_wait(struct proxy_wait *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else if (w->s->proxy_waits == w)
		w->s->proxy_waits = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->prev = w->next = NULL;
}

static void on_wait_closed(uv_handle_t *h)
{
	struct proxy_wait *w = h->data;
	struct srv *s = w->s;
	char remote[64] = "";

	if (--w->handles > 0)
		return;
	unlink_wait(w);
	if (w->ok && !s->stopping) {
		if (w->client.ss_family == AF_INET)
			uv_ip4_name((struct sockaddr_in *)&w->client, remote, sizeof(remote));
		else
			uv_ip6_name((struct sockaddr_in6 *)&w->client, remote, sizeof(remote));
		conn_start(s, w->fd, w->limit, remote);
	} else {
		close(w->fd);
		limits_release(w->limit);
	}
	free(w);
	srv_check_stopped(s);
}

/* Ends the wait: the handles close, then the connection goes on (ok) or
 * is closed. */
static void finish(struct proxy_wait *w, bool ok, const char *why)
{
	if (w->handles < 2 || uv_is_closing((uv_handle_t *)&w->poll))
		return;
	w->ok = ok;
	if (!ok && why) {
		char peer[64] = "";

		if (w->peer.ss_family == AF_INET)
			uv_ip4_name((struct sockaddr_in *)&w->peer, peer, sizeof(peer));
		else if (w->peer.ss_family == AF_INET6)
			uv_ip6_name((struct sockaddr_in6 *)&w->peer, peer, sizeof(peer));
		log_info("connection from %s closed: %s", peer, why);
		metrics_conn_refused("proxy", 1);
	}
	uv_close((uv_handle_t *)&w->poll, on_wait_closed);
	uv_close((uv_handle_t *)&w->timer, on_wait_closed);
}

static void on_wait_timeout(uv_timer_t *t)
{
	finish(t->data, false, "no complete PROXY header in time");
}

/* The header is read: the connection counts as its source from now on. */
static void header_done(struct proxy_wait *w, const struct pp_header *h)
{
	w->client = h->local ? w->peer : h->src;
	if (limits_acquire((struct sockaddr *)&w->client, &w->limit) != LIMITS_OK) {
		w->limit = NULL;
		finish(w, false, NULL); /* counted by limits.c */
		return;
	}
	finish(w, true, NULL);
}

static void on_wait_readable(uv_poll_t *p, int status, int events)
{
	struct proxy_wait *w = p->data;
	uint8_t *room = w->buf + w->have;
	size_t space = sizeof(w->buf) - w->have;
	struct pp_header h;
	ssize_t n;
	int r;

	if (status < 0) {
		finish(w, false, "socket error before the PROXY header");
		return;
	}
	n = recv(w->fd, room, space, MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		finish(w, false, NULL); /* gone: nothing to count */
		return;
	}
	if (!w->trusted) {
		/* Never believed from here; TLS starts 0x16. */
		if (pp_starts_like(room[0]))
			finish(w, false,
			       "a PROXY header from an address not in server.trusted_proxies");
		else
			finish(w, true, NULL);
		return;
	}
	r = pp_parse(w->buf, w->have + (size_t)n, w->versions, &h);
	if (r < 0) {
		finish(w, false,
		       r == -ENOMSG ? "no PROXY header from a trusted proxy"
		       : r == -EPROTONOSUPPORT
			       ? "a PROXY header of a version server.proxy_protocol does not accept"
		       : r == -E2BIG ? "a PROXY header over the size limit"
				     : "a malformed PROXY header");
		return;
	}
	/* Take the header's bytes only: what follows is the TLS handshake. */
	n = r > 0 ? (ssize_t)((size_t)r - w->have) : n;
	if (recv(w->fd, room, (size_t)n, 0) != n) {
		finish(w, false, "socket error in the PROXY header");
		return;
	}
	w->have += (size_t)n;
	if (r > 0)
		header_done(w, &h);
}

void proxy_wait_start(struct srv *s, int fd, struct limits_node *limit)
{
	struct proxy_wait *w = calloc(1, sizeof(*w));
	socklen_t len = sizeof(struct sockaddr_storage);

	if (!w) {
		close(fd);
		limits_release(limit);
		return;
	}
	w->s = s;
	w->fd = fd;
	if (getpeername(fd, (struct sockaddr *)&w->peer, &len) < 0) {
		close(fd);
		limits_release(limit);
		free(w);
		return;
	}
	w->trusted = proxy_trusted((struct sockaddr *)&w->peer, &w->versions);
	if (w->trusted) {
		/* Counted by the header's source, not by the proxy's address. */
		limits_release(limit);
	} else {
		w->limit = limit;
		w->client = w->peer;
		if (!limit && limits_acquire((struct sockaddr *)&w->peer, &w->limit) != LIMITS_OK) {
			close(fd); /* trusted when accepted, no longer (SIGHUP) */
			free(w);
			return;
		}
	}
	if (uv_poll_init_socket(s->loop, &w->poll, fd) < 0) {
		close(fd);
		limits_release(w->limit);
		free(w);
		return;
	}
	w->poll.data = w;
	uv_timer_init(s->loop, &w->timer);
	w->timer.data = w;
	w->handles = 2;
	w->next = s->proxy_waits;
	if (w->next)
		w->next->prev = w;
	s->proxy_waits = w;
	uv_timer_start(&w->timer, on_wait_timeout, SRV_PROXY_TIMEOUT_MS, 0);
	uv_poll_start(&w->poll, UV_READABLE, on_wait_readable);
}

void proxy_wait_stop_all(struct srv *s)
{
	for (struct proxy_wait *w = s->proxy_waits; w; w = w->next)
		finish(w, false, NULL);
}
