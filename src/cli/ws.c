/* The CLI's WebSocket client for the native client's stream (ws.h): TCP and
 * TLS made ahead of the request (wsdial.c: so that `bastion tunnel` keeps
 * one warm), the HTTP upgrade written by hand, then the stream pumped with poll(2)
 * against local file descriptors. Local input is framed and masked by
 * wsout.c and the bastion's frames read by wsin.c; wslay only sends the
 * CLI's control frames (the eof, pongs, the close).
 *
 * Caps: the answer's head is at most WS_HEAD_MAX bytes and an error body
 * WS_BODY_MAX; a text message from the bastion at most CLI_WSIN_MSG_MAX
 * (binary ones are passed on as they come, never gathered). Local input
 * is read only while less than WS_QUEUE_HIGH bytes wait to be sent, so a
 * slow bastion or VM slows the local reader instead of growing memory. */
#include "cli/ws_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <sodium.h>
#include <wslay/wslay.h>

#include "core/util.h"

void cli_ws_accept_key(const char *key, char *out, size_t size)
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	unsigned char md[EVP_MAX_MD_SIZE], b64[64];
	char in[128];
	unsigned int mdlen = 0;

	snprintf(in, sizeof(in), "%s%s", key, guid);
	EVP_Digest(in, strlen(in), md, &mdlen, EVP_sha1(), NULL);
	EVP_EncodeBlock(b64, md, (int)mdlen);
	util_strlcpy(out, (const char *)b64, size);
}

static int ssl_write_all(struct cli_ws *w, const char *p, size_t n)
{
	while (n > 0) {
		int r = SSL_write(w->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);

		if (r <= 0)
			return -EIO;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* The value of header name in head (lines "Name: value\r\n"), copied. */
static bool header_value(const char *head, const char *name, char *out, size_t size)
{
	size_t n = strlen(name);

	for (const char *l = strstr(head, "\r\n"); l; l = strstr(l, "\r\n")) {
		const char *v, *e;

		l += 2;
		if (strncasecmp(l, name, n) != 0 || l[n] != ':')
			continue;
		v = l + n + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		e = strstr(v, "\r\n");
		if (!e || (size_t)(e - v) >= size)
			return false;
		memcpy(out, v, (size_t)(e - v));
		out[e - v] = '\0';
		return true;
	}
	return false;
}

static int print_error_answer(struct cli_ws *w, long status, const char *head, uint8_t *body,
			      size_t have)
{
	char len_text[32];
	long want = 0;
	json_t *j, *err;

	if (header_value(head, "Content-Length", len_text, sizeof(len_text)) &&
	    cli_parse_int(len_text, 0, WS_BODY_MAX, &want) == 0) {
		while ((long)have < want) {
			int r = SSL_read(w->ssl, body + have, (int)(want - (long)have));

			if (r <= 0)
				break;
			have += (size_t)r;
		}
	}
	j = json_loadb((const char *)body, have, 0, NULL);
	err = json_object_get(j, "error");
	if (json_is_string(json_object_get(err, "code")) &&
	    json_is_string(json_object_get(err, "message"))) {
		cli_print_error(stderr, json_string_value(json_object_get(err, "code")),
				json_string_value(json_object_get(err, "message")));
	} else {
		char what[32];

		snprintf(what, sizeof(what), "HTTP %ld", status);
		cli_print_error(stderr, what, "the server answered without an error body");
	}
	json_decref(j);
	return cli_exit_for_status(status);
}

/* ---- wslay's callbacks ------------------------------------------------- */

static ssize_t ws_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
		       void *ud)
{
	struct cli_ws *w = ud;
	int r = SSL_write(w->ssl, data, len > INT32_MAX ? INT32_MAX : (int)len), e;

	if (r > 0)
		return r;
	e = SSL_get_error(w->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	w->failed = true;
	ERR_clear_error();
	wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	return -1;
}

static int ws_genmask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *ud)
{
	randombytes_buf(buf, len);
	return 0;
}

static void close_out(struct cli_ws *w)
{
	struct stat st;

	if (w->out_closed)
		return;
	w->out_closed = true;
	/* A socket keeps its read side (the local client may still send);
	 * a pipe or file is closed so that its reader sees the end. */
	if (fstat(w->out_fd, &st) == 0 && S_ISSOCK(st.st_mode))
		shutdown(w->out_fd, SHUT_WR);
	else
		close(w->out_fd);
}

static void on_control(struct cli_ws *w, const uint8_t *msg, size_t len)
{
	json_t *j = json_loadb((const char *)msg, len, 0, NULL);
	const char *type = json_string_value(json_object_get(j, "type"));
	const char *text = json_string_value(json_object_get(j, "reason"));

	if (!type) {
		/* Not ours to act on. */
	} else if (strcmp(type, "eof") == 0) {
		w->peer_eof = true;
		close_out(w);
	} else if (strcmp(type, "closed") == 0 && text) {
		util_strlcpy(w->reason, text, sizeof(w->reason));
	} else if (strcmp(type, "warning") == 0 || strcmp(type, "error") == 0) {
		text = json_string_value(json_object_get(j, "message"));
		if (text)
			cli_print_error(stderr, type, text);
	}
	json_decref(j);
}

/* Writes the VM's bytes gathered from a read to the local side at once.
 * A local reader that went away leaves nothing more to carry: the stream
 * is closed. */
static void out_flush(struct cli_ws *w, struct iovec *iov, int *niov)
{
	int n = *niov, i = 0;

	*niov = 0;
	if (w->out_closed || w->write_failed)
		return;
	while (i < n) {
		ssize_t r = writev(w->out_fd, iov + i, n - i);
		size_t done;

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			w->write_failed = true;
			wslay_event_queue_close(w->ws, WSLAY_CODE_NORMAL_CLOSURE, NULL, 0);
			return;
		}
		/* A short write: on from where it stopped. */
		for (done = (size_t)r; i < n && done >= iov[i].iov_len; i++)
			done -= iov[i].iov_len;
		if (i < n) {
			iov[i].iov_base = (uint8_t *)iov[i].iov_base + done;
			iov[i].iov_len -= done;
		}
	}
}

/* Plaintext into w->rbuf: what came with the answer's head first, then
 * records while TLS has them, up to WS_READ_MAX. 0 when nothing was
 * readable (or it ended: w->closed, w->failed). */
static size_t read_plain(struct cli_ws *w)
{
	size_t have = 0;

	if (w->left_off < w->left_len) {
		have = w->left_len - w->left_off < WS_READ_MAX ? w->left_len - w->left_off
							       : WS_READ_MAX;
		memcpy(w->rbuf, w->left + w->left_off, have);
		w->left_off += have;
		return have;
	}
	while (have < WS_READ_MAX) {
		size_t got = 0;
		int e;

		if (SSL_read_ex(w->ssl, w->rbuf + have, WS_READ_MAX - have, &got) == 1) {
			have += got;
			continue;
		}
		e = SSL_get_error(w->ssl, 0);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
			/* The connection ended without a close frame. */
			if (!w->closed)
				w->failed = true;
			w->closed = true;
		}
		ERR_clear_error();
		break;
	}
	return have;
}

/* Reads what the bastion sent and acts on it: its bytes to out_fd (one
 * writev per read), control messages, pings answered, the close. */
static void ws_read(struct cli_ws *w)
{
	struct iovec iov[WS_READ_IOV];
	int niov = 0;
	size_t len = read_plain(w), off = 0;

	while (off < len) {
		struct cli_wsin_event ev;

		off += cli_wsin_read(&w->in, w->rbuf + off, len - off, &ev);
		if (ev.type == CLI_WSIN_BINARY) {
			if (niov == WS_READ_IOV)
				out_flush(w, iov, &niov);
			iov[niov++] = (struct iovec){ (void *)ev.data, ev.len };
			continue;
		}
		/* What came before goes first (an eof closes the output). */
		out_flush(w, iov, &niov);
		if (ev.type == CLI_WSIN_TEXT) {
			on_control(w, ev.data, ev.len);
		} else if (ev.type == CLI_WSIN_PING) {
			struct wslay_event_msg pong = { WSLAY_PONG, ev.data, ev.len };

			(void)wslay_event_queue_msg(w->ws, &pong);
		} else if (ev.type == CLI_WSIN_CLOSE) {
			w->closed = true;
			(void)wslay_event_queue_close(w->ws, WSLAY_CODE_NORMAL_CLOSURE, NULL, 0);
		} else if (ev.type == CLI_WSIN_ERROR) {
			fprintf(stderr, "bastion: the bastion sent %s\n", ev.why);
			w->failed = w->closed = true;
		}
	}
	out_flush(w, iov, &niov);
}

static const struct wslay_event_callbacks ws_callbacks = {
	.send_callback = ws_send,
	.genmask_callback = ws_genmask,
};

/* spare: the connection waited since cli_ws_dial; its end before the
 * bastion answered anything is CLI_WS_CLOSED, said nowhere (ws.h). */
static int ws_upgrade(struct cli_ws *w, const char *path, bool spare)
{
	char *req = malloc(WS_REQUEST_MAX), key[32], accept[64], got[64], proto[64];
	uint8_t raw[16], *head = malloc(WS_HEAD_MAX + WS_BODY_MAX + 1);
	size_t have = 0, hlen;
	char *end = NULL;
	long status;
	int n, r = CLI_ECONN;

	if (!req || !head) {
		fprintf(stderr, "bastion: out of memory\n");
		goto out;
	}
	randombytes_buf(raw, sizeof(raw));
	EVP_EncodeBlock((unsigned char *)key, raw, sizeof(raw));
	n = snprintf(req, WS_REQUEST_MAX,
		     "GET %s/api/v1%s HTTP/1.1\r\n"
		     "Host: %s\r\n"
		     "User-Agent: bastion-cli\r\n"
		     "Upgrade: websocket\r\n"
		     "Connection: Upgrade\r\n"
		     "Sec-WebSocket-Key: %s\r\n"
		     "Sec-WebSocket-Version: 13\r\n"
		     "Sec-WebSocket-Protocol: " WS_PROTOCOL "\r\n"
		     "Authorization: Bearer %s\r\n\r\n",
		     w->prefix, path, w->host, key, w->token);
	if (n < 0 || n >= WS_REQUEST_MAX) {
		fprintf(stderr, "bastion: the request is too long\n");
		r = CLI_EUSAGE;
		goto out;
	}
	if (ssl_write_all(w, req, (size_t)n) < 0) {
		if (spare) {
			ERR_clear_error();
			r = CLI_WS_CLOSED;
			goto out;
		}
		cli_ws_ssl_error("the connection to the bastion failed");
		goto out;
	}
	while (!end) {
		int got_n;

		if (have >= WS_HEAD_MAX) {
			fprintf(stderr, "bastion: the answer's head is too long\n");
			r = CLI_ESERVER;
			goto out;
		}
		got_n = SSL_read(w->ssl, head + have, (int)(WS_HEAD_MAX - have));
		if (got_n <= 0) {
			if (spare && have == 0) {
				ERR_clear_error();
				r = CLI_WS_CLOSED;
				goto out;
			}
			cli_ws_ssl_error("the bastion closed the connection before answering");
			goto out;
		}
		have += (size_t)got_n;
		head[have] = '\0';
		end = memmem(head, have, "\r\n\r\n", 4);
	}
	hlen = (size_t)(end - (char *)head) + 4;
	end[2] = '\0'; /* the head keeps its last CRLF for header_value */
	if (sscanf((char *)head, "HTTP/1.%*c %ld", &status) != 1) {
		fprintf(stderr, "bastion: the bastion answered something else than HTTP\n");
		r = CLI_ESERVER;
		goto out;
	}
	if (status != 101) {
		/* The body follows the head; the buffer has room for WS_BODY_MAX. */
		r = print_error_answer(w, status, (const char *)head, head + hlen, have - hlen);
		goto out;
	}
	cli_ws_accept_key(key, accept, sizeof(accept));
	if (!header_value((char *)head, "Sec-WebSocket-Accept", got, sizeof(got)) ||
	    strcmp(got, accept) != 0 ||
	    !header_value((char *)head, "Sec-WebSocket-Protocol", proto, sizeof(proto)) ||
	    strcmp(proto, WS_PROTOCOL) != 0) {
		fprintf(stderr, "bastion: the bastion's WebSocket answer is not valid\n");
		r = CLI_ESERVER;
		goto out;
	}
	if (have > hlen) {
		if (!(w->left = malloc(have - hlen))) {
			fprintf(stderr, "bastion: out of memory\n");
			goto out;
		}
		memcpy(w->left, head + hlen, have - hlen);
		w->left_len = have - hlen;
	}
	if (wslay_event_context_client_init(&w->ws, &ws_callbacks, w) != 0) {
		fprintf(stderr, "bastion: out of memory\n");
		goto out;
	}
	r = CLI_OK;
out:
	if (req) {
		sodium_memzero(req, WS_REQUEST_MAX); /* it held the token */
		free(req);
	}
	free(head);
	return r;
}

int cli_ws_upgrade(struct cli_ws *w, const char *path)
{
	return ws_upgrade(w, path, false);
}

int cli_ws_upgrade_spare(struct cli_ws *w, const char *path)
{
	return ws_upgrade(w, path, true);
}

/* ---- the pump ------------------------------------------------------------ */

int cli_ws_pump(struct cli_ws *w, int in_fd, int out_fd, int stop_fd)
{
	bool in_eof = false, stopped = false;
	int r = CLI_OK, fl;

	if (cli_wsout_init(&w->out, w->ssl) < 0 || !(w->rbuf = malloc(WS_READ_MAX))) {
		fprintf(stderr, "bastion: out of memory\n");
		return CLI_ECONN;
	}
	w->out_fd = out_fd;
	fl = fcntl(w->fd, F_GETFL);
	fcntl(w->fd, F_SETFL, fl | O_NONBLOCK);
	/* The first frames may already be in hand (read with the head). */
	while (w->left_off < w->left_len && !w->closed)
		ws_read(w);
	while (!w->closed && !w->failed) {
		struct pollfd p[3];
		nfds_t np = 0;
		int sock_i, in_i = -1, stop_i = -1, fr;
		bool pending = cli_wsout_pending(&w->out);
		/* A batch at a time: the socket's buffer is the queue. */
		bool want_in = !in_eof && !w->write_failed && !pending &&
			       !wslay_event_want_write(w->ws) &&
			       wslay_event_get_queued_msg_length(w->ws) < WS_QUEUE_HIGH &&
			       !wslay_event_get_close_sent(w->ws);

		sock_i = (int)np;
		p[np++] = (struct pollfd){ .fd = w->fd,
					   .events = (short)(POLLIN | (pending ? POLLOUT : 0)) };
		if (want_in) {
			in_i = (int)np;
			p[np++] = (struct pollfd){ .fd = in_fd, .events = POLLIN };
		}
		if (stop_fd >= 0) {
			stop_i = (int)np;
			p[np++] = (struct pollfd){ .fd = stop_fd, .events = POLLIN };
		}
		/* What OpenSSL already holds (read ahead) needs no wait. */
		if (!SSL_has_pending(w->ssl) && poll(p, np, -1) < 0) {
			if (errno == EINTR)
				continue;
			r = CLI_ECONN;
			break;
		}
		if (stop_i >= 0 && p[stop_i].revents) {
			stopped = true;
			/* Frames in the buffer are whole: the close follows them. */
			wslay_event_queue_close(w->ws, WSLAY_CODE_GOING_AWAY, NULL, 0);
			wslay_event_send(w->ws);
			cli_wsout_flush(&w->out, w->fd);
			break;
		}
		if (SSL_has_pending(w->ssl) || p[sock_i].revents & (POLLIN | POLLHUP | POLLERR))
			ws_read(w);
		if (in_i >= 0 && p[in_i].revents) {
			ssize_t n = cli_wsout_read(&w->out, w->ssl, in_fd);

			if (n == -EIO) {
				w->failed = true;
				break;
			}
			if (n == 0 || (n < 0 && n != -EINTR && n != -EAGAIN)) {
				/* The end of local input: a half-close, the VM reads EOF. */
				static const char eof[] = "{\"type\":\"eof\"}";
				struct wslay_event_msg m = { WSLAY_TEXT_FRAME, (const uint8_t *)eof,
							     sizeof(eof) - 1 };

				in_eof = true;
				if (wslay_event_queue_msg(w->ws, &m) != 0)
					break;
			}
		}
		/* wslay's frames (pongs, the eof, the close) go after the batch
		 * in the same buffer, in order. */
		if (wslay_event_want_write(w->ws) && wslay_event_send(w->ws) != 0)
			break;
		fr = cli_wsout_flush(&w->out, w->fd);
		if (fr < 0) {
			w->failed = true;
			break;
		}
	}
	cli_wsout_free(&w->out);
	if (stopped)
		return CLI_OK;
	if (w->reason[0] && strcmp(w->reason, WS_NORMAL_END) != 0) {
		cli_print_error(stderr, "SessionEnded", w->reason);
		return CLI_EAPI;
	}
	if (w->failed && !w->reason[0] && !(in_eof && w->peer_eof)) {
		fprintf(stderr, "bastion: the connection to the bastion was lost\n");
		return CLI_ECONN;
	}
	return r;
}

void cli_ws_free(struct cli_ws *w)
{
	if (!w)
		return;
	if (w->ws)
		wslay_event_context_free(w->ws);
	if (w->ssl)
		SSL_free(w->ssl);
	if (w->ctx)
		SSL_CTX_free(w->ctx);
	if (w->fd >= 0)
		close(w->fd);
	util_free_secret(w->token);
	cli_wsout_free(&w->out);
	cli_wsin_free(&w->in);
	free(w->rbuf);
	free(w->left);
	free(w);
}
