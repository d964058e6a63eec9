/* A connection's lifecycle on its loop: opened on a socket dealt to this
 * loop, closed (idempotent), freed once its handles are closed and the
 * application no longer owns an answer (busy_app), and moved whole to
 * another loop (srv_conn_move) with its arrival callback. Called by the
 * other files of src/server (internal.h) and by the application through
 * srv.h. */
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

static void conn_link(struct srv *s, struct srv_conn *c)
{
	atomic_fetch_add_explicit(&s->n_conns, 1, memory_order_relaxed);
	c->srv = s;
	c->prev = NULL;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
}

static void conn_unlink(struct srv_conn *c)
{
	atomic_fetch_sub_explicit(&c->srv->n_conns, 1, memory_order_relaxed);
	if (c->prev)
		c->prev->next = c->next;
	else
		c->srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

void conn_maybe_free(struct srv_conn *c)
{
	struct srv *s = c->srv;

	if (c->state != CONN_CLOSING || !c->handles_closed || c->busy_app)
		return;
	conn_unlink(c);
	limits_release(c->limit);
	ws_free(c);
	SSL_free(c->ssl); /* frees both BIOs */
	buf_free(&c->stash);
	buf_free(&c->hbuf);
	buf_free(&c->body);
	free(c);
	srv_check_stopped(s);
}

static void on_timer_closed(uv_handle_t *h)
{
	struct srv_conn *c = h->data;

	c->handles_closed = true;
	conn_maybe_free(c);
}

static void on_tcp_closed(uv_handle_t *h)
{
	struct srv_conn *c = h->data;

	uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

void conn_close(struct srv_conn *c)
{
	if (c->state == CONN_CLOSING)
		return;
	if (c->state == CONN_WS)
		ws_gone(c, "the browser connection closed");
	if (c->state == CONN_RELAY)
		relay_client_closed(c);
	c->state = CONN_CLOSING;
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
}

void conn_close_timer(uv_timer_t *t)
{
	struct srv_conn *c = t->data;

	if (c->state == CONN_HTTP || c->state == CONN_TLS)
		conn_close(c);
}

/* Links c into s with handles on s's loop, which take the socket fd (this
 * thread's). -1 when fd is -1 or cannot be opened: fd is closed then, and
 * c is closing. */
int conn_take_socket(struct srv *s, struct srv_conn *c, int fd)
{
	conn_link(s, c);
	uv_tcp_init(s->loop, &c->tcp);
	uv_timer_init(s->loop, &c->timer);
	c->tcp.data = c;
	c->timer.data = c;
	if (fd < 0 || uv_tcp_open(&c->tcp, fd) < 0) {
		if (fd >= 0)
			close(fd);
		conn_close(c);
		return -1;
	}
	return 0;
}

void conn_open(struct srv *s, int fd, struct limits_node *limit)
{
	if (!s->stopping && proxy_enabled()) {
		proxy_wait_start(s, fd, limit);
		return;
	}
	conn_start(s, fd, limit, NULL);
}

void conn_start(struct srv *s, int fd, struct limits_node *limit, const char *remote)
{
	struct srv_conn *c = s->stopping ? NULL : calloc(1, sizeof(*c));
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	if (!c) {
		close(fd);
		limits_release(limit);
		return;
	}
	c->limit = limit;
	conn_bufs_init(c);
	if (conn_take_socket(s, c, fd) < 0)
		return;
	uv_tcp_nodelay(&c->tcp, 1);
	if (remote) {
		/* The PROXY header's source (proxywait.c). */
		util_strlcpy(c->remote, remote, sizeof(c->remote));
	} else if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET)
			uv_ip4_name((struct sockaddr_in *)&ss, c->remote, sizeof(c->remote));
		else
			uv_ip6_name((struct sockaddr_in6 *)&ss, c->remote, sizeof(c->remote));
	}
	c->ssl = SSL_new(s->ssl_ctx);
	c->rbio = in_bio_new();
	c->wbio = out_bio_new(c);
	if (!c->ssl || !c->rbio || !c->wbio) {
		BIO_free(c->rbio);
		BIO_free(c->wbio);
		c->rbio = c->wbio = NULL;
		conn_close(c);
		return;
	}
	SSL_set_bio(c->ssl, c->rbio, c->wbio);
	SSL_set_accept_state(c->ssl);
	c->state = CONN_TLS;
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	conn_reset_request(c);
	uv_timer_start(&c->timer, conn_close_timer, SRV_HEADER_TIMEOUT_MS, 0);
	conn_read_resume(c);
}

/* ---------- moving a connection to another loop ---------- */

void conn_move_done(struct srv_conn *c, bool client_gone)
{
	srv_moved_fn *cb = c->move_cb;
	void *arg = c->move_arg;

	c->move_cb = NULL;
	c->move_arg = NULL;
	cb(c, client_gone, arg);
}

/* Gives c, whose handles are closed, the socket fd on s's loop (this
 * thread's), and runs its arrived callback there. fd -1: it could not
 * come; the callback hears that the client is gone. */
static void conn_adopt(struct srv *s, struct srv_conn *c, int fd)
{
	c->state = CONN_BUSY;
	conn_move_done(c, conn_take_socket(s, c, fd) < 0);
}

static void move_arrived(int fd, void *arg)
{
	metrics_conn_moved();
	conn_adopt(srv_by_loop[loops_self()], arg, fd);
}

static void on_move_closed(uv_handle_t *h)
{
	struct srv_conn *c = h->data;
	struct srv *from = c->srv;
	unsigned to = c->move_to - 1;
	int fd = c->move_fd, r;

	c->move_to = 0;
	c->move_fd = -1;
	/* After this succeeds, c is the other loop's. */
	if ((r = loops_send_fd(to, fd, move_arrived, c)) == 0) {
		srv_check_stopped(from);
		return;
	}
	log_warn("cannot hand a connection to loop %u: %s", to, err_str(r));
	c->move_failed = true;
	conn_adopt(from, c, fd);
}

static void on_move_tcp_closed(uv_handle_t *h)
{
	struct srv_conn *c = h->data;

	uv_close((uv_handle_t *)&c->timer, on_move_closed);
}

void conn_start_move(struct srv_conn *c)
{
	conn_unlink(c);
	uv_read_stop((uv_stream_t *)&c->tcp);
	uv_timer_stop(&c->timer);
	c->state = CONN_MOVING;
	uv_close((uv_handle_t *)&c->tcp, on_move_tcp_closed);
}

int srv_conn_move(struct srv_conn *c, unsigned to, srv_moved_fn *arrived, void *arg)
{
	uv_os_fd_t fd;

	if (c->move_failed || c->state != CONN_BUSY || to >= loops_count() || !srv_by_loop[to] ||
	    to == c->srv->index)
		return -EAGAIN;
	if (uv_fileno((uv_handle_t *)&c->tcp, &fd) < 0)
		return -EBADF;
	/* The handle closes here; the socket travels as this duplicate. */
	c->move_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (c->move_fd < 0)
		return -errno;
	c->move_to = to + 1;
	c->move_cb = arrived;
	c->move_arg = arg;
	/* An answer still being written goes out first (on_write). */
	if (c->out_pending == 0)
		conn_start_move(c);
	return 0;
}

uv_loop_t *srv_conn_loop(const struct srv_conn *c)
{
	return c->srv->loop;
}

const char *srv_conn_remote(const struct srv_conn *c)
{
	return c->remote;
}
