/* The server object of each loop: made before the loops run (srv_new),
 * its browser-ping timer, the drain and the stop, the TLS context swapped
 * on SIGHUP. Called by main.c through srv.h; srv_by_loop and
 * srv_check_stopped by the other files of src/server. */
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

/* The server of each loop, for connections dealt or moving between loops. */
struct srv *srv_by_loop[LOOPS_MAX];

/* A stopping server whose listener and connections are all gone is done:
 * its owner hears so once. */
void srv_check_stopped(struct srv *s)
{
	void (*done)(void *ud) = s->stop_done;

	if (!s->stopping || s->conns || s->proxy_waits || !s->listener_closed || !done)
		return;
	s->stop_done = NULL;
	done(s->stop_ud);
}

int srv_new(unsigned loop, const struct srv_config *cfg, int listen_fd, struct ssl_ctx_st *ctx,
	    struct srv **ret)
{
	struct srv *s;
	int r;

	if (loop >= loops_count() || srv_by_loop[loop])
		return -EINVAL;
	if (in_method_init() < 0 || out_method_init() < 0)
		return -ENOMEM;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->loop = loops_uv(loop);
	s->index = loop;
	s->on_request = cfg->on_request;
	s->ud = cfg->ud;
	s->listen_fd = listen_fd;
	s->reserve_fd = -1;
	SSL_CTX_up_ref(ctx);
	s->ssl_ctx = ctx;
	uv_timer_init(s->loop, &s->ping);
	s->ping.data = s;
	s->handles_open = 1;
	if (listen_fd >= 0) {
		if ((r = uv_poll_init_socket(s->loop, &s->listener, listen_fd)) < 0) {
			log_error("cannot accept on the listening socket: %s", uv_strerror(r));
			close(listen_fd);
			uv_close((uv_handle_t *)&s->ping, NULL);
			uv_run(s->loop, UV_RUN_NOWAIT);
			SSL_CTX_free(s->ssl_ctx);
			free(s);
			return r;
		}
		s->listener.data = s;
		s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		uv_timer_init(s->loop, &s->accept_pause);
		s->accept_pause.data = s;
		s->handles_open += 2;
		uv_poll_start(&s->listener, UV_READABLE, accept_on_listen);
	}
	srv_by_loop[loop] = s;
	*ret = s;
	return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
	struct srv *s = h->data;

	if (--s->handles_open > 0)
		return;
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->reserve_fd >= 0)
		close(s->reserve_fd);
	s->listen_fd = s->reserve_fd = -1;
	s->listener_closed = true;
	srv_check_stopped(s);
}

static void close_listener(struct srv *s)
{
	if (s->listener_closing)
		return;
	s->listener_closing = true;
	uv_close((uv_handle_t *)&s->ping, on_listener_closed);
	if (s->listen_fd >= 0) {
		uv_close((uv_handle_t *)&s->listener, on_listener_closed);
		uv_close((uv_handle_t *)&s->accept_pause, on_listener_closed);
	}
}

static void on_ping_tick(uv_timer_t *t)
{
	struct srv *s = t->data;
	struct srv_conn *c, *next;

	for (c = s->conns; c; c = next) {
		next = c->next;
		if (c->state == CONN_WS)
			ws_ping_tick(c, s->ping_ms);
	}
}

void srv_set_browser_ping(struct srv *s, unsigned interval_ms)
{
	if (s->listener_closing || s->ping_ms == interval_ms)
		return;
	s->ping_ms = interval_ms;
	if (interval_ms == 0)
		uv_timer_stop(&s->ping);
	else
		uv_timer_start(&s->ping, on_ping_tick, interval_ms, interval_ms);
}

void srv_drain(struct srv *s, void (*done)(void *ud), void *ud)
{
	struct srv_conn *c, *next;

	if (s->stopping)
		return;
	s->stopping = true;
	s->stop_done = done;
	s->stop_ud = ud;
	close_listener(s);
	proxy_wait_stop_all(s);
	for (c = s->conns; c; c = next) {
		next = c->next;
		/* Between requests, or not yet past the handshake: nothing to lose. */
		if (c->state == CONN_TLS || (c->state == CONN_HTTP && buf_len(&c->hbuf) == 0))
			conn_close(c);
	}
}

void srv_stop(struct srv *s, void (*done)(void *ud), void *ud)
{
	struct srv_conn *c, *next;

	if (!s->stopping) {
		s->stopping = true;
		s->stop_done = done;
		s->stop_ud = ud;
	}
	close_listener(s);
	proxy_wait_stop_all(s);
	for (c = s->conns; c; c = next) {
		next = c->next;
		conn_close(c);
	}
}

size_t srv_conn_count(const struct srv *s)
{
	return atomic_load_explicit(&s->n_conns, memory_order_relaxed);
}

void srv_set_tls_ctx(struct srv *s, SSL_CTX *ctx)
{
	/* SSL_new took a reference for every open connection: freeing ours
	 * leaves theirs alive. */
	SSL_CTX_free(s->ssl_ctx);
	s->ssl_ctx = ctx;
}

void srv_free(struct srv *s)
{
	if (!s)
		return;
	if (srv_by_loop[s->index] == s)
		srv_by_loop[s->index] = NULL;
	SSL_CTX_free(s->ssl_ctx);
	free(s);
}
