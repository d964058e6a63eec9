/* The dial: a TCP connection to the VM made here without blocking (the
 * address is always an IP literal: nothing is resolved), its failures in
 * words a user can act on, the libssh session configured on that socket
 * (no config files, no known_hosts files, our algorithms and user name),
 * and sshc_start, which begins it all. From the first SSH step on, the
 * state machine in sshc.c takes over (sshc_step, sshc_open_io). */
#include "ssh/internal.h"

#include "core/err.h"
#include "core/log.h"
#include "core/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void timeout_cb(uv_timer_t *t)
{
	struct sshc *c = t->data;

	if (c->closing)
		return;
	if (c->state == ST_TCP_CONNECT)
		sshc_fail(
			c, -BERR_UNREACHABLE,
			"no answer from %s port %u within %u s (the VM is down or a firewall drops the traffic)",
			c->ip, c->port, (c->connect_timeout_ms + 999) / 1000);
	else
		sshc_fail(c, -BERR_PROTOCOL,
			  "the VM at %s port %u did not complete the SSH set-up within %u s", c->ip,
			  c->port, SETUP_TIMEOUT_MS / 1000);
}

void sshc_arm_setup_timer(struct sshc *c)
{
	uv_timer_start(&c->timer, timeout_cb, SETUP_TIMEOUT_MS, 0);
}

static void tcp_failed(struct sshc *c, int err)
{
	switch (err) {
	case ECONNREFUSED:
		sshc_fail(c, -BERR_UNREACHABLE,
			  "%s refused the connection on port %u (no SSH server listening?)", c->ip,
			  c->port);
		break;
	case ETIMEDOUT:
		sshc_fail(c, -BERR_UNREACHABLE, "connecting to %s port %u timed out", c->ip,
			  c->port);
		break;
	case EHOSTUNREACH:
	case ENETUNREACH:
		sshc_fail(c, -BERR_UNREACHABLE, "no route to %s (%s)", c->ip, strerror(err));
		break;
	default:
		sshc_fail(c, -BERR_UNREACHABLE, "could not connect to %s port %u: %s", c->ip,
			  c->port, strerror(err));
		break;
	}
}

void sshc_tcp_connected(struct sshc *c)
{
	int err = c->tcp_err, one = 1;
	socklen_t len = sizeof(err);
	bool no = false;

	if (err == 0 && getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err == EINPROGRESS || err == EALREADY)
		return; /* spurious wake-up */
	if (err != 0) {
		tcp_failed(c, err);
		return;
	}
	sshc_arm_setup_timer(c);
	/* SSH_OPTIONS_NODELAY only acts on sockets libssh connects itself. */
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	c->s = ssh_new();
	if (c->s == NULL) {
		sshc_fail(c, -BERR_PROTOCOL, "out of memory starting SSH");
		return;
	}
	/* No config files, no name lookups, no home directory look-up (the
	 * known_hosts options would read files during key exchange). */
	if (ssh_options_set(c->s, SSH_OPTIONS_PROCESS_CONFIG, &no) < 0 ||
	    ssh_options_set(c->s, SSH_OPTIONS_HOST, c->ip) < 0 ||
	    ssh_options_set(c->s, SSH_OPTIONS_SSH_DIR, "/nonexistent") < 0 ||
	    ssh_options_set(c->s, SSH_OPTIONS_KNOWNHOSTS, "/dev/null") < 0 ||
	    ssh_options_set(c->s, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null") < 0 ||
	    ssh_options_set(c->s, SSH_OPTIONS_NODELAY, &one) < 0 ||
	    ssh_options_set(c->s, SSH_OPTIONS_FD, &c->fd) < 0) {
		sshc_fail(c, -BERR_PROTOCOL, "could not configure SSH: %s", ssh_get_error(c->s));
		return;
	}
	/* libssh 0.10.6 refuses user names with characters a ProxyCommand
	 * shell could misread (\ ' " $ ; , and more), which real fleets use
	 * (CORP\user, o'brien). We run no ProxyCommand and give the name to
	 * every userauth call ourselves, so the option only has to keep libssh
	 * from looking up the local user; the name sent is always ours. */
	if (ssh_options_set(c->s, SSH_OPTIONS_USER, c->username) < 0 &&
	    ssh_options_set(c->s, SSH_OPTIONS_USER, "nobody") < 0) {
		sshc_fail(c, -BERR_PROTOCOL, "could not configure SSH: %s", ssh_get_error(c->s));
		return;
	}
	sshc_set_hostkey_algos(c);
	if (sshc_set_legacy_algos(c) < 0) {
		sshc_fail(c, -BERR_PROTOCOL, "could not configure the VM's legacy algorithms: %s",
			  ssh_get_error(c->s));
		return;
	}
	ssh_set_blocking(c->s, 0);
	sshc_set_state(c, ST_SSH_CONNECT);
	sshc_step(c);
	if (c->closing)
		return;
	if (c->state >= ST_OPEN) {
		sshc_open_io(c);
		return;
	}
	if (sshc_flush(c) == SSH_ERROR) {
		sshc_handshake_failed(c);
		return;
	}
	sshc_update_poll(c);
}

static void wipe_params(struct sshc_params *p)
{
	util_free_secret(p->password);
	p->password = NULL;
	ssh_key_free(p->key);
	p->key = NULL;
}

int sshc_start(uv_loop_t *loop, struct sshc_params *p, const struct sshc_callbacks *cb, void *ud,
	       struct sshc **ret)
{
	union {
		struct sockaddr_in v4;
		struct sockaddr_in6 v6;
	} sa;
	socklen_t sa_len;
	struct sshc *c = NULL;
	int r = -EINVAL, family;

	if (loop == NULL || p == NULL || cb == NULL || ret == NULL)
		goto err;
	memset(&sa, 0, sizeof(sa));
	if (memchr(p->ip, '\0', sizeof(p->ip)) == NULL ||
	    memchr(p->username, '\0', sizeof(p->username)) == NULL)
		goto err;
	if (inet_pton(AF_INET, p->ip, &sa.v4.sin_addr) == 1) {
		family = AF_INET;
		sa.v4.sin_family = AF_INET;
		sa.v4.sin_port = htons(p->port);
		sa_len = sizeof(sa.v4);
	} else if (inet_pton(AF_INET6, p->ip, &sa.v6.sin6_addr) == 1) {
		family = AF_INET6;
		sa.v6.sin6_family = AF_INET6;
		sa.v6.sin6_port = htons(p->port);
		sa_len = sizeof(sa.v6);
	} else {
		goto err;
	}
	if (p->port == 0 || p->username[0] == '\0' || (p->n_host_keys > 0 && p->host_keys == NULL))
		goto err;
	if ((p->auth == SSHC_AUTH_PASSWORD && p->password == NULL) ||
	    (p->auth == SSHC_AUTH_KEY && p->key == NULL) ||
	    (p->auth != SSHC_AUTH_PASSWORD && p->auth != SSHC_AUTH_KEY))
		goto err;

	r = -ENOMEM;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		goto err;
	c->loop = loop;
	c->fd = -1;
	c->cb = *cb;
	c->ud = ud;
	memcpy(c->ip, p->ip, sizeof(c->ip));
	c->port = p->port;
	memcpy(c->username, p->username, sizeof(c->username));
	c->auth = p->auth;
	c->host_keys = p->host_keys;
	c->n_host_keys = p->n_host_keys;
	c->cols = p->cols > 0 && p->cols <= 10000 ? p->cols : 80;
	c->rows = p->rows > 0 && p->rows <= 10000 ? p->rows : 24;
	c->connect_timeout_ms =
		p->connect_timeout_ms ? p->connect_timeout_ms : CONNECT_TIMEOUT_DEFAULT_MS;
	c->keepalive_ms = p->keepalive_ms;
	c->legacy_algos = p->legacy_algos;
	c->state = ST_TCP_CONNECT;

	c->fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		r = -errno;
		goto err;
	}
	if (connect(c->fd, (struct sockaddr *)&sa, sa_len) == 0)
		c->tcp_err = 0;
	else if (errno != EINPROGRESS)
		c->tcp_err = errno;
	else
		c->tcp_err = -1; /* in flight */
	if ((r = uv_poll_init_socket(loop, &c->poll, c->fd)) < 0)
		goto err;
	/* From here on the struct is freed only through the handles. */
	c->poll_inited = true;
	c->poll.data = c;
	uv_timer_init(loop, &c->timer);
	c->timer.data = c;
	uv_timer_init(loop, &c->kick);
	c->kick.data = c;
	c->handles = 3;

	c->password = p->password;
	c->key = p->key;
	p->password = NULL;
	p->key = NULL;

	uv_timer_start(&c->timer, timeout_cb, c->connect_timeout_ms, 0);
	if (c->tcp_err == -1) {
		c->tcp_err = 0;
		sshc_update_poll(c);
	} else {
		/* connect() finished at once (loopback can): report from the
		 * loop, never from inside this function. */
		sshc_kick(c);
	}
	log_debug("sshc %s:%u: connecting as %s", c->ip, c->port, c->username);
	*ret = c;
	return 0;

err:
	if (p != NULL)
		wipe_params(p);
	if (c != NULL) {
		if (c->fd >= 0)
			close(c->fd);
		free(c);
	}
	return r;
}
