/* The HTTPS server: libuv TCP, OpenSSL through memory BIOs, HTTP/1.1 with
 * http-parser, WebSocket with wslay. Everything here runs on the loop
 * thread. It knows nothing of the application above it (it includes only
 * core/ and server/): each complete request goes to the handler it was
 * given (srv_config.on_request), which answers with srv_respond(),
 * srv_error() or srv_ws_accept(), now or later, or moves the connection to
 * another loop (srv_conn_move) with a callback that runs there. See
 * docs/decisions.md, "The server calls the application through
 * callbacks". */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct srv;
struct srv_conn;

/* A parsed request. Strings are NUL-terminated, owned by the server, and
 * live until the answer is given (srv_respond, srv_error, srv_ws_accept),
 * also across srv_conn_move. Absent headers are NULL. */
struct srv_request {
	const char *method; /* "GET", "PUT", ... */
	const char *path;   /* raw path, without the query string */
	const char *query;  /* raw query string without '?', or NULL */
	const char *body;   /* NUL-terminated; body_len excludes the NUL */
	size_t body_len;
	const char *cookie;        /* the whole Cookie header */
	const char *authorization; /* the whole Authorization header */
	const char *csrf_token;    /* X-CSRF-Token */
	const char *origin;        /* Origin */
	const char *host;          /* Host */
	const char *content_type;
	const char *ws_protocol;   /* Sec-WebSocket-Protocol */
	const char *if_none_match; /* If-None-Match */
	bool websocket;            /* a valid WebSocket upgrade was requested */
	bool relayed;              /* X-Bastion-Relayed: another instance relayed it */
	char remote_addr[64];      /* peer IP as text */
};

/* The largest request body the server reads (413 past it). */
#define SRV_MAX_BODY (1024 * 1024)

/* The application's side of a request: called on the loop thread with a
 * complete request on c. From then on the application owns the answer and
 * gives it exactly once: srv_respond(), srv_error() or srv_ws_accept(), at
 * once or later from the same loop, or srv_conn_move() and then one of
 * those from the loop c arrives on. Until then c is not read further and
 * its memory stays, even if the client leaves (srv_conn_gone tells). */
typedef void srv_request_fn(struct srv_conn *c, const struct srv_request *req, void *ud);

struct srv_config {
	const char *listen;    /* "ADDR:PORT", IPv6 as "[::]:8443" */
	const char *data_dir;  /* for the self-signed pair */
	const char *cert_file; /* NULL: DATA/tls-cert.pem, generated if absent */
	const char *key_file;
	srv_request_fn *on_request;
	void *ud; /* for on_request */
};

/* Parses "ADDR:PORT" as the listener does: a numeric IPv4 address or a
 * bracketed IPv6 one (names are never resolved), then a port 0-65535.
 * -EINVAL otherwise; *ss is then unspecified. */
int srv_parse_listen(const char *listen, struct sockaddr_storage *ss);
/* Binds and listens on cfg->listen ("ADDR:PORT"; port 0 picks one): the
 * socket every loop accepts from. The port bound goes to *ret_port. */
int srv_listen(const char *listen, int *ret_fd, int *ret_port);
/* The server of loop `loop` (loops.h), made before the loops run, with TLS
 * context ctx (it takes a reference). One of them, loop 0's, gets the
 * listening socket (it takes listen_fd, also on failure; -1 for the
 * others): it accepts every connection and deals each to the loop that has
 * the fewest. */
struct ssl_ctx_st;
int srv_new(unsigned loop, const struct srv_config *cfg, int listen_fd, struct ssl_ctx_st *ctx,
	    struct srv **ret);
/* Stops accepting and closes every connection; done runs when all are gone.
 * After srv_drain, closes what the drain left open (done stays the
 * drain's). */
void srv_stop(struct srv *s, void (*done)(void *ud), void *ud);
/* Graceful stop: closes the listener and idle connections at once; a
 * request in progress gets its answer and then its connection closes; a
 * WebSocket stays until its owner closes it. done runs when all are gone. */
void srv_drain(struct srv *s, void (*done)(void *ud), void *ud);
/* Browser liveness: every interval_ms, a WebSocket whose browser sent
 * nothing since the last tick gets a ping; one silent for
 * SRV_WS_PING_MAX_MISSED (2) intervals in a row is closed (its owner's
 * on_close runs). So a browser that vanished without a close is noticed
 * within three intervals. 0 switches it off; a change applies at once. */
void srv_set_browser_ping(struct srv *s, unsigned interval_ms);
/* Open connections right now. */
size_t srv_conn_count(const struct srv *s);
/* Caps on connections, for every loop (limits.c): per source address
 * (0: none; an IPv6 source counts by its /64) and in total (0: automatic,
 * half of RLIMIT_NOFILE per loop). A connection over either is closed when
 * accepted. Any thread; applies to connections accepted from then on. */
#define SRV_DEFAULT_CONNS_PER_ADDRESS 256
void srv_limits_set(unsigned per_address, size_t total);
/* The PROXY protocol (server.proxy_protocol, server.trusted_proxies; any
 * thread, applies to connections accepted from now on): versions is
 * PP_V1 | PP_V2 as bits 1 and 2 (0: off), trusted the CIDR list whose
 * connections must begin with a header. -EINVAL (logged) for a bad list;
 * the running settings stay then. */
int srv_proxy_set(unsigned versions, const char *trusted);
/* Replaces the TLS context for connections accepted from now on (SIGHUP);
 * open connections keep theirs. Takes ctx. */
void srv_set_tls_ctx(struct srv *s, struct ssl_ctx_st *ctx);
void srv_free(struct srv *s);

/* An answer. Every response carries the portal's security headers; the
 * server adds Content-Length, Content-Type and Connection. */
struct srv_response {
	int status;
	const char *content_type; /* NULL: none */
	const char *headers;      /* more header lines, each ending in CRLF, or NULL */
	const void *body;
	size_t len;
	bool body_static; /* body lives as long as the process: sent by
			     reference as the socket drains, never copied */
	bool close;       /* the connection closes after this answer */
	bool player_page; /* the recordings player's page: its own CSP, which
			     allows WebAssembly and same-origin framing (http.c) */
};

/* The access log (server/access.c, issue 19): one info line per answered
 * request — method, path with the query's keys but not its values,
 * status, body bytes, duration, principal, source address. Never a
 * secret: no query value, no header. enable: "server.access_log". */
void srv_access_log_enable(bool on);
/* Who c's current request acts as ("user:NAME", "user:NAME token:ID"),
 * for its access-log line; set by the application on c's loop thread. */
void srv_conn_set_principal(struct srv_conn *c, const char *principal);

/* Sends the answer to c's request (the body is copied unless body_static;
 * HEAD gets the headers alone). If the client left meanwhile, the answer
 * is dropped and the connection released. */
void srv_respond(struct srv_conn *c, const struct srv_response *r);
/* Answers status with the normative error body
 * {"error":{"code":code,"message":message}} and closes the connection
 * after it. code and message are plain text without '"', '\\' or control
 * characters (the server's own sentences). */
void srv_error(struct srv_conn *c, int status, const char *code, const char *message);
/* True when c's client has gone (its connection is closing): an answer
 * would only release it. */
bool srv_conn_gone(const struct srv_conn *c);
/* Gives up the answer to c's request without one: for a client that has
 * gone (srv_conn_gone); any other connection is closed. */
void srv_release(struct srv_conn *c);
/* Hands c, whose answer is not given yet, to loop `to`: its socket, TLS
 * and request go there, and arrived(c, client_gone, arg) runs on that
 * loop, exactly once, to give the answer (client_gone: the socket could
 * not follow or the client left; the answer only releases c). 0, or
 * -EAGAIN when c cannot go (a move of it failed before, or `to` has no
 * server): answer here, arrived does not run. */
typedef void srv_moved_fn(struct srv_conn *c, bool client_gone, void *arg);
int srv_conn_move(struct srv_conn *c, unsigned to, srv_moved_fn *arrived, void *arg);

/* ---- Relay to another instance (relay.c) ---- */

/* Joins c, whose answer is not given yet, to a new TLS connection to
 * `to` ("ADDR:PORT" as srv_parse_listen reads it: numeric, never
 * resolved) whose certificate's SHA-256 (DER, hex) must equal
 * cert_sha256: the request goes there as it was received (plus
 * X-Bastion-Relayed: 1, and Connection: close unless it is an upgrade),
 * and then bytes both ways until either side ends. The relay knows
 * nothing of what it carries and authenticates nobody: the other side
 * does. Within SRV_RELAY_TIMEOUT_MS the other side must be connected and
 * verified, or c is answered 502 InstanceUnreachable (also at once when
 * the connect is refused or the certificate differs). c's answer is the
 * relay's from this call on. */
#define SRV_RELAY_TIMEOUT_MS 5000
void srv_relay(struct srv_conn *c, const char *to, const char *cert_sha256);

/* ---- WebSocket (terminal) ---- */

struct srv_ws_cb {
	/* buf stays valid until on_input_done, when that is set, and only
	 * until on_binary returns otherwise. */
	void (*on_binary)(void *ud, const uint8_t *buf, size_t len);
	/* Optional: the binary messages read so far were all handed over and
	 * their bytes are about to be reused (called before the connection
	 * reads more, at least once per socket read): a consumer that kept
	 * pointers to them acts on them now (a tunnel writes a read's frames
	 * to the VM in one writev). */
	void (*on_input_done)(void *ud);
	void (*on_text)(void *ud, const char *buf, size_t len);
	/* Outbound bytes fell below the low watermark after being above it. */
	void (*on_drain)(void *ud);
	/* The socket is gone (peer close, error, or srv_ws_close finished).
	 * Called once; the srv_conn must not be used afterwards. */
	void (*on_close)(void *ud, const char *why);
};

#define SRV_WS_HIGH_WATER (256 * 1024)
#define SRV_WS_LOW_WATER  (64 * 1024)

/* Answers 101 with subprotocol and switches the connection to WebSocket.
 * -EINVAL if the request was no valid upgrade (then an error was sent). */
int srv_ws_accept(struct srv_conn *c, const char *subprotocol, const struct srv_ws_cb *cb,
		  void *ud);
int srv_ws_send(struct srv_conn *c, bool text, const void *buf, size_t len);
/* Like srv_ws_send for a binary message of at most 65,535 bytes (else
 * -EMSGSIZE), framed where it lies: the SRV_WS_HEADROOM bytes before buf
 * are overwritten with the frame header, and header and payload go to TLS
 * as one record, with no copy. */
#define SRV_WS_HEADROOM 4
int srv_ws_send_binary(struct srv_conn *c, uint8_t *buf, size_t len);
/* Bytes queued towards the browser and not yet written to the socket. */
size_t srv_ws_outbound(const struct srv_conn *c);
/* Stops (true) or resumes reading frames from the browser. */
void srv_ws_pause_input(struct srv_conn *c, bool pause);
/* Sends a close frame and closes once it is written. on_close follows. */
void srv_ws_close(struct srv_conn *c, uint16_t code, const char *reason);
/* The same for an owner that forgets the connection at once and may be
 * freed before the close frame is written: no callback (on_close
 * included) reaches it any more. */
void srv_ws_close_detach(struct srv_conn *c, uint16_t code, const char *reason);
/* The loop c is on (for work queued on its behalf). */
uv_loop_t *srv_conn_loop(const struct srv_conn *c);
/* The remote address of the connection. */
const char *srv_conn_remote(const struct srv_conn *c);

/* ---- TLS (tls.c) ---- */
struct ssl_ctx_st;
/* Builds the server context: TLS 1.2+, AEAD ciphers; loads or generates
 * the certificate. */
int srv_tls_ctx(const struct srv_config *cfg, struct ssl_ctx_st **ret);
