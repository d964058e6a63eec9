/* Accepting: the listening socket (srv_listen, srv_parse_listen), polled
 * on loop 0, which accepts every connection, counts it against the caps
 * (limits.c) and deals it to the loop with the fewest (loops_send_fd); out
 * of descriptors, the waiting connections are refused at once. Called by
 * srv.c (accept_accept_on_listen) and by main.c and check.c (srv_listen,
 * srv_parse_listen). */
#include "server/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <openssl/err.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/util.h"
#include "server/loops.h"

static void dealt_conn(int fd, void *arg)
{
	struct srv *s = srv_by_loop[loops_self()];

	if (fd >= 0)
		conn_open(s, fd, arg);
	else
		limits_release(arg);
}

/* The loop with the fewest connections; this one on a tie. */
static unsigned least_loaded(const struct srv *s)
{
	unsigned best = s->index;
	size_t min = atomic_load_explicit(&s->n_conns, memory_order_relaxed);

	for (unsigned i = 0; i < loops_count(); i++) {
		const struct srv *o = srv_by_loop[i];
		size_t n;

		if (!o || i == s->index)
			continue;
		n = atomic_load_explicit(&o->n_conns, memory_order_relaxed);
		if (n < min) {
			min = n;
			best = i;
		}
	}
	return best;
}

static void on_accept_resume(uv_timer_t *t)
{
	struct srv *s = t->data;

	if (!s->listener_closing)
		uv_poll_start(&s->listener, UV_READABLE, accept_on_listen);
}

/* Out of descriptors (or memory): the connections waiting are refused at
 * once (the client sees the connection close) rather than left to time out
 * in the kernel's queue, with a descriptor kept in reserve for this, as
 * libuv does. Without the reserve, accepting stops for a moment instead of
 * spinning on a listener that stays readable. */
static void refuse_waiting(struct srv *s)
{
	unsigned n = 0;
	int fd;

	if (s->reserve_fd < 0) {
		uv_poll_stop(&s->listener);
		uv_timer_start(&s->accept_pause, on_accept_resume, SRV_ACCEPT_PAUSE_MS, 0);
		log_warn("accept: out of descriptors; accepting again in %d ms",
			 SRV_ACCEPT_PAUSE_MS);
		return;
	}
	close(s->reserve_fd);
	while (n < 1024 && (fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		close(fd);
		n++;
	}
	s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	metrics_conn_refused("descriptors", n);
	log_warn("accept: out of descriptors (RLIMIT_NOFILE) or memory: refused %u connection(s)",
		 n);
}

/* The listener (loop 0's) is readable: accept, and deal each connection to
 * the loop with the fewest (loops_send_fd), so that every loop's
 * descriptor table fills alike. */
void accept_on_listen(uv_poll_t *p, int status, int events)
{
	struct srv *s = p->data;

	for (int n = 0; n < 64 && !s->stopping; n++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(s->listen_fd, (struct sockaddr *)&ss, &sl,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct limits_node *limit = NULL;
		unsigned to;

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				refuse_waiting(s);
			return; /* EAGAIN, or a connection that went away meanwhile */
		}
		/* Over a cap: closed before anything is read or allocated. A
		 * trusted proxy's connections count by the source its PROXY
		 * header names, once read (proxywait.c). */
		if (!proxy_trusted((struct sockaddr *)&ss, NULL) &&
		    limits_acquire((struct sockaddr *)&ss, &limit) != LIMITS_OK) {
			close(fd);
			continue;
		}
		to = least_loaded(s);
		if (to != s->index && loops_send_fd(to, fd, dealt_conn, limit) == 0)
			continue;
		conn_open(s, fd, limit);
	}
}

int srv_parse_listen(const char *listen, struct sockaddr_storage *ss)
{
	char host[128];
	const char *colon = strrchr(listen, ':');
	int port;
	char *end;

	if (!colon || (size_t)(colon - listen) >= sizeof(host))
		return -EINVAL;
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = '\0';
	errno = 0;
	port = (int)strtol(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || port < 0 || port > 65535)
		return -EINVAL;
	if (host[0] == '[') {
		size_t n = strlen(host);

		if (n < 2 || host[n - 1] != ']')
			return -EINVAL;
		host[n - 1] = '\0';
		return uv_ip6_addr(host + 1, port, (struct sockaddr_in6 *)ss) ? -EINVAL : 0;
	}
	return uv_ip4_addr(host, port, (struct sockaddr_in *)ss) ? -EINVAL : 0;
}

int srv_listen(const char *addr, int *ret_fd, int *ret_port)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len = sizeof(ss);
	int fd, one = 1, r;

	if (srv_parse_listen(addr, &ss) < 0) {
		log_error("listen address '%s' is not ADDR:PORT", addr);
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* As libuv's bind did: a restart may bind while old connections linger. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss,
		 ss.ss_family == AF_INET ? sizeof(struct sockaddr_in)
					 : sizeof(struct sockaddr_in6)) < 0 ||
	    listen(fd, 1024) < 0 || getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		r = -errno;
		log_error("cannot listen on %s: %s", addr, strerror(-r));
		close(fd);
		return r;
	}
	*ret_port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
						  : ((struct sockaddr_in6 *)&ss)->sin6_port);
	*ret_fd = fd;
	return 0;
}
