/* What a VM offers in its key exchange, read on a second connection, to
 * explain a handshake that failed while libssh could not say why.
 *
 * A VM that shares no algorithm with us closes the connection as soon as it
 * has read our KEXINIT. When that close (often a reset: our next packet is
 * unread) reaches libssh before it has parsed the VM's KEXINIT, libssh drops
 * the buffered packet with the socket and reports "Socket error" — on a busy
 * machine, one time in several. The VM sends its KEXINIT in the clear right
 * after the version lines, before reading anything of ours but our version,
 * so a second connection that sends a version line and reads one packet
 * learns the VM's lists whatever the timing. The probe runs on the worker
 * pool with socket deadlines; the session waits in ST_PROBE meanwhile. */
#include "ssh/internal.h"

#include "core/err.h"
#include "core/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* RFC 4253 §6.1: a packet is at most 35000 bytes; the VM may send up to
 * 255 lines before its version (§4.2), each at most 255 bytes. */
#define PROBE_BUF_MAX    (64 * 1024)
#define PROBE_TIMEOUT_MS 3000
#define MSG_KEXINIT      20

/* Reads a name-list (uint32 length + bytes) into out, cut at a comma when
 * it does not fit. Returns the bytes consumed, or 0 when the input is
 * short. */
static size_t read_list(const uint8_t *p, size_t len, char *out, size_t size)
{
	uint32_t n;
	size_t keep;

	if (len < 4)
		return 0;
	n = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	if (n > len - 4)
		return 0;
	keep = n < size ? n : size - 1;
	memcpy(out, p + 4, keep);
	out[keep] = '\0';
	if (keep < n) {
		char *comma = strrchr(out, ',');

		if (comma != NULL)
			*comma = '\0';
	}
	return 4 + (size_t)n;
}

int sshc_kexinit_parse(const uint8_t *data, size_t len, struct sshc_kexinit *out)
{
	size_t off = 0, pkt_len, pad;

	memset(out, 0, sizeof(*out));
	/* Lines before the version line, then the version line itself. */
	for (int line = 0; line < 256; line++) {
		const uint8_t *nl = memchr(data + off, '\n', len - off);
		bool version;

		if (nl == NULL)
			return -EAGAIN;
		version = len - off >= 4 && memcmp(data + off, "SSH-", 4) == 0;
		off = (size_t)(nl - data) + 1;
		if (version)
			goto packet;
	}
	return -EPROTO;
packet:
	if (len - off < 6)
		return -EAGAIN;
	pkt_len = (size_t)data[off] << 24 | (size_t)data[off + 1] << 16 |
		  (size_t)data[off + 2] << 8 | data[off + 3];
	pad = data[off + 4];
	if (pkt_len < 1 + 1 + 16 || pkt_len > 35000 || pad >= pkt_len - 1)
		return -EPROTO;
	if (len - off - 4 < pkt_len)
		return -EAGAIN;
	data += off + 5;
	len = pkt_len - 1 - pad; /* the payload */
	if (data[0] != MSG_KEXINIT)
		return -EPROTO;
	off = 1 + 16; /* message number, cookie */
	for (size_t i = 0; i < SSHC_KEX_LISTS; i++) {
		size_t used =
			read_list(data + off, len - off, out->lists[i], sizeof(out->lists[i]));

		if (used == 0)
			return -EPROTO;
		off += used;
	}
	return 0;
}

int sshc_kex_probe(const char *ip, uint16_t port, unsigned timeout_ms, struct sshc_kexinit *out)
{
	static const char version[] = "SSH-2.0-bastion_probe\r\n";
	union {
		struct sockaddr_in v4;
		struct sockaddr_in6 v6;
	} sa;
	socklen_t sa_len;
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
	uint8_t *buf = NULL;
	size_t have = 0;
	int fd = -1, r;

	memset(&sa, 0, sizeof(sa));
	if (inet_pton(AF_INET, ip, &sa.v4.sin_addr) == 1) {
		sa.v4.sin_family = AF_INET;
		sa.v4.sin_port = htons(port);
		sa_len = sizeof(sa.v4);
	} else if (inet_pton(AF_INET6, ip, &sa.v6.sin6_addr) == 1) {
		sa.v6.sin6_family = AF_INET6;
		sa.v6.sin6_port = htons(port);
		sa_len = sizeof(sa.v6);
	} else {
		return -EINVAL;
	}
	r = -ENOMEM;
	buf = malloc(PROBE_BUF_MAX);
	if (buf == NULL)
		goto out;
	fd = socket(sa.v4.sin_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	/* Linux bounds connect() by the send deadline too. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sa_len) < 0 ||
	    send(fd, version, sizeof(version) - 1, MSG_NOSIGNAL) !=
		    (ssize_t)(sizeof(version) - 1)) {
		r = -errno;
		goto out;
	}
	/* Each read waits at most the deadline and the buffer is bounded, so
	 * this ends: at most PROBE_BUF_MAX reads of one byte or more. */
	for (r = -EAGAIN; r == -EAGAIN;) {
		ssize_t n;

		if (have == PROBE_BUF_MAX) {
			r = -EPROTO;
			break;
		}
		n = recv(fd, buf + have, PROBE_BUF_MAX - have, 0);
		if (n <= 0) {
			r = n == 0 ? -ECONNRESET : -errno;
			break;
		}
		have += (size_t)n;
		r = sshc_kexinit_parse(buf, have, out);
	}
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return r;
}

/* ---- the session side ---- */

static void probe_work(uv_work_t *w)
{
	struct sshc *c = w->data;

	c->probe_rc = sshc_kex_probe(c->ip, c->port, PROBE_TIMEOUT_MS, &c->probe_offer);
}

static void probe_done(uv_work_t *w, int status)
{
	struct sshc *c = w->data;

	if (!c->closing) {
		if (status < 0 || c->probe_rc < 0)
			log_debug("sshc %s:%u: probing the VM's algorithms failed: %s", c->ip,
				  c->port, strerror(status < 0 ? -status : -c->probe_rc));
		if (status < 0 || c->probe_rc < 0 || !sshc_explain_offer(c, &c->probe_offer))
			sshc_fail(c, -BERR_PROTOCOL, "SSH handshake with %s port %u failed: %s",
				  c->ip, c->port, c->probe_err);
	}
	sshc_handle_closed(c);
}

void sshc_handshake_failed(struct sshc *c)
{
	const char *err = c->s != NULL ? ssh_get_error(c->s) : "";

	if (sshc_explain_handshake(c, err))
		return;
	/* Only a VM that spoke SSH can have refused our algorithms. */
	if (c->s == NULL || ssh_get_serverbanner(c->s) == NULL) {
		sshc_fail(c, -BERR_PROTOCOL, "SSH handshake with %s port %u failed: %s", c->ip,
			  c->port, err);
		return;
	}
	snprintf(c->probe_err, sizeof(c->probe_err), "%s", err);
	if (c->poll_inited)
		uv_poll_stop(&c->poll);
	sshc_set_state(c, ST_PROBE);
	c->probe_work.data = c;
	c->handles++; /* the struct outlives the probe */
	if (uv_queue_work(c->loop, &c->probe_work, probe_work, probe_done) < 0) {
		c->handles--;
		sshc_fail(c, -BERR_PROTOCOL, "SSH handshake with %s port %u failed: %s", c->ip,
			  c->port, c->probe_err);
	}
}
