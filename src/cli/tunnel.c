/* `bastion tunnel VM --port P --local-port L [--bind ADDR] [--bastion ID]`:
 * listens on ADDR:L (default 127.0.0.1) and carries each accepted TCP
 * connection as its own stream to the VM's port P, many at once
 * (docs/native-client.md).
 *
 * One thread per connection runs the pump (ws.h). A warm spare — TCP and
 * TLS to the bastion, made ahead of time — is kept so that a new local
 * connection costs one request on an open TLS connection: the connection
 * that takes it makes the next one once its own stream is open. Ctrl-C
 * (SIGINT, SIGTERM) writes to a pipe every thread polls: each stream
 * closes its WebSocket, the listener closes, and the command waits for
 * the threads before it exits. */
#include "cli/native.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli/cli.h"
#include "cli/ws.h"

#define TUNNEL_MAX_CONNS 256
/* The bastion closes a connection that sent no request within 30 s: the
 * spare is replaced before that. */
#define SPARE_MAX_AGE_S 20

static const char tunnel_usage[] =
	"usage: bastion tunnel VM --port P --local-port L [--bind ADDR] [--bastion ID]\n"
	"  Listens on ADDR:L (default 127.0.0.1) and carries every accepted connection\n"
	"  to port P of VM (/groups/{g}/vms/{name}) through the bastion, each its own\n"
	"  stream, many at once. Ctrl-C closes them and stops.\n";

static struct {
	pthread_mutex_t lock;
	pthread_cond_t idle;
	size_t active;        /* (lock) connection threads running */
	struct cli_ws *spare; /* (lock) */
	time_t spare_at;      /* (lock) when it was made, CLOCK_BOOTTIME */
	struct cli_ws_target target;
	char path[CLI_PATH_MAX];
	int stop_pipe[2];
} T = { .lock = PTHREAD_MUTEX_INITIALIZER, .idle = PTHREAD_COND_INITIALIZER };

static void on_signal(int sig)
{
	int saved = errno;

	if (write(T.stop_pipe[1], "x", 1) < 0) {
		/* Nothing to do in a handler: the pipe holds a byte already. */
	}
	errno = saved;
}

static time_t boot_now(void)
{
	struct timespec ts;

	/* Boot time, not CLOCK_MONOTONIC: a laptop's sleep counts, the
	 * bastion's idle timer ran through it. */
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return ts.tv_sec;
}

/* The spare if it is young and still open (*spare set), else a new
 * connection (NULL on failure, said on stderr). */
static struct cli_ws *take_connection(bool *spare)
{
	struct cli_ws *w;
	bool young;

	pthread_mutex_lock(&T.lock);
	w = T.spare;
	young = boot_now() - T.spare_at <= SPARE_MAX_AGE_S;
	T.spare = NULL;
	pthread_mutex_unlock(&T.lock);
	*spare = w && young && cli_ws_fresh(w);
	if (w && !*spare) {
		cli_ws_free(w);
		w = NULL;
	}
	if (!w && cli_ws_dial(&T.target, &w) != CLI_OK)
		return NULL;
	return w;
}

/* A connection that carries the stream's upgrade, or NULL (said on
 * stderr). A spare closed by the bastion after cli_ws_fresh passed it and
 * before our request reached it (its idle timeout, a restart) fails
 * before any answer: the request is made once more on a new connection.
 * That is safe: no answer means no stream was opened to us, and nothing
 * of the local client was read yet. A new connection is not tried twice:
 * its failure is the bastion's, said as it is. */
static struct cli_ws *open_stream(void)
{
	bool spare;
	struct cli_ws *w = take_connection(&spare);
	int r;

	if (!w)
		return NULL;
	r = spare ? cli_ws_upgrade_spare(w, T.path) : cli_ws_upgrade(w, T.path);
	if (r == CLI_WS_CLOSED) {
		cli_ws_free(w);
		w = NULL;
		if (cli_ws_dial(&T.target, &w) != CLI_OK)
			return NULL;
		r = cli_ws_upgrade(w, T.path);
	}
	if (r != CLI_OK) {
		cli_ws_free(w);
		return NULL;
	}
	return w;
}

static void refill_spare(void)
{
	struct cli_ws *w = NULL;
	bool need;

	pthread_mutex_lock(&T.lock);
	need = !T.spare;
	pthread_mutex_unlock(&T.lock);
	if (!need || cli_ws_dial(&T.target, &w) != CLI_OK)
		return;
	pthread_mutex_lock(&T.lock);
	if (!T.spare) {
		T.spare = w;
		T.spare_at = boot_now();
		w = NULL;
	}
	pthread_mutex_unlock(&T.lock);
	cli_ws_free(w);
}

/* On the listening thread, between connections: a spare about to be
 * closed by the bastion, or already closed, is replaced. */
static void keep_spare_warm(void)
{
	struct cli_ws *old = NULL;

	pthread_mutex_lock(&T.lock);
	if (T.spare && (boot_now() - T.spare_at > SPARE_MAX_AGE_S || !cli_ws_fresh(T.spare))) {
		old = T.spare;
		T.spare = NULL;
	}
	pthread_mutex_unlock(&T.lock);
	cli_ws_free(old);
	refill_spare();
}

static void *conn_thread(void *arg)
{
	int fd = (int)(intptr_t)arg;
	struct cli_ws *w = open_stream();

	if (w) {
		refill_spare();
		cli_ws_pump(w, fd, fd, T.stop_pipe[0]);
	}
	cli_ws_free(w);
	close(fd);
	/* OpenSSL keeps error state per thread: freed here, not at exit. */
	OPENSSL_thread_stop();
	pthread_mutex_lock(&T.lock);
	if (--T.active == 0)
		pthread_cond_signal(&T.idle);
	pthread_mutex_unlock(&T.lock);
	return NULL;
}

static int listen_on(const char *bind_addr, long port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV },
			*res;
	char port_text[16];
	int fd, one = 1, r;

	snprintf(port_text, sizeof(port_text), "%ld", port);
	r = getaddrinfo(bind_addr, port_text, &hints, &res);
	if (r != 0) {
		fprintf(stderr, "bastion: --bind: '%s' is not an IP address: %s\n", bind_addr,
			gai_strerror(r));
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 128) < 0) {
		fprintf(stderr, "bastion: cannot listen on %s port %ld: %s\n", bind_addr, port,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

int cli_cmd_tunnel(struct cli *c, int argc, char **argv)
{
	struct cli_native_opts o = { 0 };
	struct sigaction sa = { .sa_handler = on_signal };
	pthread_attr_t attr;
	bool help = false;
	int r, lfd = -1;

	r = cli_native_args(c, argc, argv, tunnel_usage, &o, &help);
	if (r != CLI_OK || help)
		return r;
	if (optind != argc)
		return cli_usage_error(tunnel_usage, "tunnel takes no arguments after --");
	if (!o.port || !o.local_port)
		return cli_usage_error(tunnel_usage, "--port and --local-port are required");
	if (!o.bind)
		o.bind = "127.0.0.1";
	if (cli_stream_path(&o, T.path, sizeof(T.path)) < 0)
		return cli_usage_error(tunnel_usage, "the VM ID or --bastion is not valid");
	if ((r = cli_connect(c)) != CLI_OK)
		return r;
	/* The sign-in is checked before anything listens. */
	if ((r = cli_call(c, "GET", "/version", NULL, NULL, NULL)) != CLI_OK)
		return r;
	cli_stream_target(c, &T.target);
	if (pipe2(T.stop_pipe, O_CLOEXEC) < 0) {
		fprintf(stderr, "bastion: cannot make a pipe: %s\n", strerror(errno));
		return CLI_ECONN;
	}
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if ((r = cli_ws_dial(&T.target, &T.spare)) != CLI_OK)
		goto out;
	T.spare_at = boot_now();
	lfd = listen_on(o.bind, o.local_port);
	if (lfd < 0) {
		r = CLI_EUSAGE;
		goto out;
	}
	fprintf(stderr, "bastion: forwarding %s port %ld to %s port %ld; Ctrl-C stops\n", o.bind,
		o.local_port, o.vm, o.port);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	for (;;) {
		struct pollfd p[2] = { { .fd = lfd, .events = POLLIN },
				       { .fd = T.stop_pipe[0], .events = POLLIN } };
		pthread_t th;
		int fd;

		r = poll(p, 2, 5000);
		if (r < 0 && errno != EINTR)
			break;
		if (r >= 0 && p[1].revents)
			break;
		if (r <= 0 || !p[0].revents) {
			keep_spare_warm();
			continue;
		}
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		pthread_mutex_lock(&T.lock);
		if (T.active >= TUNNEL_MAX_CONNS) {
			pthread_mutex_unlock(&T.lock);
			fprintf(stderr, "bastion: %d connections are open, the most; one refused\n",
				TUNNEL_MAX_CONNS);
			close(fd);
			continue;
		}
		T.active++;
		pthread_mutex_unlock(&T.lock);
		if (pthread_create(&th, &attr, conn_thread, (void *)(intptr_t)fd) != 0) {
			close(fd);
			pthread_mutex_lock(&T.lock);
			T.active--;
			pthread_mutex_unlock(&T.lock);
		}
	}
	pthread_attr_destroy(&attr);
	close(lfd);
	/* Every stream sees the pipe, closes its WebSocket and ends. */
	pthread_mutex_lock(&T.lock);
	while (T.active > 0)
		pthread_cond_wait(&T.idle, &T.lock);
	pthread_mutex_unlock(&T.lock);
	fprintf(stderr, "bastion: tunnel closed\n");
	r = CLI_OK;
out:
	cli_ws_free(T.spare);
	T.spare = NULL;
	close(T.stop_pipe[0]);
	close(T.stop_pipe[1]);
	return r;
}
