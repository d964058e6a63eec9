/* Private to src/server: the connection and server objects and the calls
 * between the server's own files. Nothing outside src/server includes it
 * (the tests and fuzz targets of the server do). */
#pragma once

#include <stdatomic.h>
#include <sys/socket.h>

#include <http_parser.h>
#include <openssl/ssl.h>
#include <wslay/wslay.h>

#include "server/wsframe.h"

#include "core/buf.h"
#include "server/srv.h"

#define SRV_MAX_HEADER_BYTES  (16 * 1024)
#define SRV_MAX_HEADERS       64
#define SRV_MAX_IN            (64 * 1024) /* plaintext read ahead of the parser */
#define SRV_HEADER_TIMEOUT_MS 30000       /* a request's headers must arrive by then */
#define SRV_IDLE_TIMEOUT_MS   60000       /* an idle keep-alive connection is closed */

/* Output back-pressure (pump.c): while more than SRV_OUT_HIGH_WATER bytes
 * wait for the socket, the next request is not read; reading resumes below
 * SRV_OUT_LOW_WATER. A WebSocket stops reading frames at
 * SRV_WS_INPUT_STOP (twice the terminal's own high mark, so that only
 * replies the peer provokes while not reading get there) and resumes below
 * SRV_WS_HIGH_WATER. */
#define SRV_OUT_HIGH_WATER (256 * 1024)
#define SRV_OUT_LOW_WATER  (64 * 1024)
#define SRV_WS_INPUT_STOP  (2 * SRV_WS_HIGH_WATER)
/* A body sent by reference (an embedded asset) goes to TLS in pieces of
 * this size, each when the output is below SRV_OUT_HIGH_WATER. */
#define SRV_REF_CHUNK (16 * 1024)

enum conn_state {
	CONN_TLS,     /* TLS handshake */
	CONN_HTTP,    /* reading a request */
	CONN_BUSY,    /* a request is with a worker or a continuation */
	CONN_WS,      /* WebSocket */
	CONN_MOVING,  /* handles closed here, going to another loop (srv_conn_move) */
	CONN_RELAY,   /* joined to another instance's connection (relay.c) */
	CONN_CLOSING, /* uv_close requested */
};

/* Known request headers, by index. */
enum hdr {
	H_HOST,
	H_COOKIE,
	H_AUTHORIZATION,
	H_CSRF,
	H_ORIGIN,
	H_CONTENT_TYPE,
	H_UPGRADE,
	H_CONNECTION,
	H_WS_KEY,
	H_WS_VERSION,
	H_WS_PROTOCOL,
	H_IF_NONE_MATCH,
	H_RELAYED,
	H_COUNT
};

struct srv_conn {
	uv_tcp_t tcp;
	struct srv *srv;
	struct srv_conn *prev, *next;
	enum conn_state state;
	SSL *ssl;
	BIO *rbio, *wbio;
	uv_timer_t timer;
	bool timer_closed;

	bool handles_closed; /* tcp and timer closed: memory may go */
	bool busy_app;       /* the application owns the answer (on_request) */

	/* plaintext received while the consumer could not take it */
	struct buf stash; /* cap SRV_MAX_IN */
	bool pumping;     /* conn_pump is running: a nested call returns at once */
	bool in_blocked;  /* output above its mark: input waits (pump.c) */
	/* tests only (srv_pipeline_for_test): plaintext records instead of
	 * TLS, and a hook instead of dispatch */
	struct pump_test *test;

	/* request being read */
	http_parser parser;
	struct buf hbuf; /* url and header strings, NUL-separated (cap
			    SRV_MAX_HEADER_BYTES) */
	size_t url_off;
	size_t url_len;       /* the request target's bytes at the start of hbuf */
	int hdr_off[H_COUNT]; /* offset of each known header value, -1 if absent */
	int cur_hdr;          /* header whose value is being read, -1 for unknown */
	int field_off;        /* offset of the header name being read, -1 before any */
	bool in_value;
	int n_headers;
	struct buf body; /* cap SRV_MAX_BODY */
	bool message_done;
	int parse_error; /* status to answer with (400, 413, 431) */

	/* the request with the application */
	struct srv_request req;
	bool keep_alive;
	bool close_after_write;
	bool out_error; /* the socket refused TLS output: close */

	size_t out_pending; /* bytes handed to libuv and not yet written */
	/* A response body by reference (an embedded asset): what is left of
	 * it, encrypted only as the socket drains (out.c). */
	const uint8_t *ref_data;
	size_t ref_len;
	/* the connection's entry in the per-address count (limits.c) */
	struct limits_node *limit;

	/* srv_conn_move: the loop it goes to, plus one (0: staying), the socket
	 * on its way, and whether a move failed (it is then not tried again). */
	unsigned move_to;
	int move_fd;
	bool move_failed;
	srv_moved_fn *move_cb; /* runs once on arrival (or when it cannot go) */
	void *move_arg;

	/* WebSocket */
	wslay_event_context_ptr ws;
	const struct srv_ws_cb *ws_cb;
	void *ws_ud;
	bool ws_paused;
	bool ws_above_high;
	bool ws_close_notified;
	struct wsr wsr;     /* frames from the browser: our reader, not wslay's */
	bool ws_heard;      /* bytes came from the browser since the last ping tick */
	unsigned ws_missed; /* ping ticks in a row without a byte from the browser */

	/* CONN_RELAY, and while a relay connects on the client's behalf */
	struct srv_relay *relay;

	char remote[64];

	/* The access log (access.c): when the request began, and who the
	 * application says made it ("" : nobody signed in). */
	uint64_t req_start_ns;
	char principal[96];
};

/* One access-log line for c's request, answered with status and bytes of
 * body (access.c); nothing when the access log is off. */
void srv_access_log(const struct srv_conn *c, int status, size_t bytes);

#define SRV_ACCEPT_PAUSE_MS 200 /* out of descriptors: accept again after this */

struct srv {
	uv_loop_t *loop;
	unsigned index; /* of its loop (loops.h) */
	/* Loop 0's only: the listening socket, polled; every loop's
	 * connections are accepted there and dealt out. */
	int listen_fd;
	int reserve_fd; /* /dev/null, closed to refuse connections when out of them */
	uv_poll_t listener;
	uv_timer_t accept_pause;
	atomic_size_t n_conns; /* read by loop 0 when it deals connections */
	SSL_CTX *ssl_ctx;
	srv_request_fn *on_request;
	void *ud;
	struct srv_conn *conns;
	bool stopping; /* draining or stopping: nothing new is accepted */
	bool listener_closing;
	bool listener_closed;
	void (*stop_done)(void *ud);
	void *stop_ud;
	/* Browser liveness: one timer for every WebSocket (see ws_ping_tick). */
	uv_timer_t ping;
	unsigned ping_ms; /* 0: off */
	int handles_open; /* listener and ping timer not yet closed */
	/* Connections whose PROXY header is being read (proxywait.c). */
	struct proxy_wait *proxy_waits;
};

/* A WebSocket whose browser sent nothing for this many ping intervals in a
 * row (a ping went out after the first) is closed. */
#define SRV_WS_PING_MAX_MISSED 2

/* out.c: the socket BIO under TLS, queued writes, bodies by reference */
int out_method_init(void);
BIO *out_bio_new(struct srv_conn *c);
/* inbio.c: the BIO under SSL_read. in_bio_lend hands it on_read's bytes,
 * read in place; in_bio_return, before on_read returns, copies what is
 * left of them (-ENOMEM, or -E2BIG past its cap: close the connection). */
int in_method_init(void);
BIO *in_bio_new(void);
void in_bio_lend(BIO *b, const uint8_t *buf, size_t len);
int in_bio_return(BIO *b);
/* Writes what is left of c->ref_data while the output is below its mark;
 * once all of it is with TLS, the response is done (srv_respond_done). */
void out_ref_continue(struct srv_conn *c);

/* proxywait.c: the PROXY header before TLS (server.proxy_protocol).
 * proxy_trusted: whether sa may send one (versions: what is accepted, 0
 * when off). proxy_wait_start: reads it (or, from anyone else, makes sure
 * there is none), then conn_start; limit is the connection's count when
 * accepted (NULL for a trusted proxy: it counts by the header's source).
 * proxy_wait_stop_all: closes the waiting ones (stop). */
struct proxy_wait;
bool proxy_enabled(void);
bool proxy_trusted(const struct sockaddr *sa, unsigned *ret_versions);
void proxy_wait_start(struct srv *s, int fd, struct limits_node *limit);
void proxy_wait_stop_all(struct srv *s);

/* limits.c: connections per source address and in total */
struct limits_node;
enum limits_refusal { LIMITS_OK, LIMITS_PER_ADDRESS, LIMITS_TOTAL };
/* Counts a connection from sa; on LIMITS_OK *ret is its entry, for
 * limits_release. */
enum limits_refusal limits_acquire(const struct sockaddr *sa, struct limits_node **ret);
void limits_release(struct limits_node *n); /* NULL: nothing */

/* pump.c: the read side */
bool conn_can_consume(struct srv_conn *c);
/* Runs conn_pump from the loop, soon, not from inside the caller. */
void conn_pump_later(struct srv_conn *c);
/* on_write: output drained; input that waited for it may go on. */
void conn_output_drained(struct srv_conn *c);

/* srv.c: the server of each loop, and the check that a stopping one is
 * done (its owner hears so once). */
extern struct srv *srv_by_loop[];
void srv_check_stopped(struct srv *s);

/* accept.c: the listener is readable (loop 0). */
void accept_on_listen(uv_poll_t *p, int status, int events);

/* conn.c: lifecycle */
/* Links c into s with handles on s's loop, which take the socket fd (this
 * thread's). -1 when fd is -1 or cannot be opened: fd is closed then, and
 * c is closing. */
int conn_take_socket(struct srv *s, struct srv_conn *c, int fd);
/* A new connection on this loop: socket fd (this thread's) is its, and so
 * is its count in limits.c (limit; NULL from a trusted proxy). With the
 * PROXY protocol on, its header is read first (proxywait.c). */
void conn_open(struct srv *s, int fd, struct limits_node *limit);
/* ... then it starts: TLS and HTTP. remote: the address it counts as
 * (NULL: the socket's peer). */
void conn_start(struct srv *s, int fd, struct limits_node *limit, const char *remote);

/* http.c, used by pump.c */
/* Feeds plaintext to the HTTP parser; returns how much it took. */
size_t srv_http_consume(struct srv_conn *c, const uint8_t *buf, size_t len);
void conn_start_move(struct srv_conn *c);
/* A move ends: c is this loop's now (or could not go; client_gone), and
 * its arrived callback runs, once. */
void conn_move_done(struct srv_conn *c, bool client_gone);
void conn_reset_request(struct srv_conn *c);
/* A new connection's buffers with their caps, before its first request. */
void conn_bufs_init(struct srv_conn *c);

/* conn.c, http.c, pump.c: shared by the files of src/server */
/* TLS output is already on its way (the socket BIO); this closes the
 * connection after a failed write, or once a last answer is out. */
void conn_flush(struct srv_conn *c);
void conn_close(struct srv_conn *c); /* starts closing; idempotent */
int conn_ssl_write(struct srv_conn *c, const void *buf, size_t len);
void conn_read_resume(struct srv_conn *c);
void conn_pump(struct srv_conn *c);
void conn_maybe_free(struct srv_conn *c);
const char *srv_conn_header(const struct srv_conn *c, int h);
void conn_read_pause(struct srv_conn *c);
void conn_close_timer(uv_timer_t *t);
void conn_pump_timer(uv_timer_t *t);
/* The answer to the current request is on its way: read the next one. */
void srv_respond_done(struct srv_conn *c);

/* relay.c: a connection joined to one towards another instance */
struct srv_relay;
/* The client's plaintext for the other instance; returns how much it took
 * (0 while that side's output is above its mark). */
size_t relay_consume(struct srv_conn *c, const uint8_t *buf, size_t len);
bool relay_can_take(const struct srv_conn *c);
/* c's output drained: the other side may be read again. */
void relay_client_drained(struct srv_conn *c);
/* c closes: the other side closes too. */
void relay_client_closed(struct srv_conn *c);
/* c's parsed request as it goes to the other instance (out capped by the
 * caller). 0 or -E2BIG. */
int relay_request_bytes(const struct srv_conn *c, struct buf *out);
/* http.c: the first request of buf parsed as a connection would, then
 * written as the relay sends it (tests/unit/test_http.c). 0, or -status
 * for a request the server refuses. */
int srv_relay_request_for_test(const uint8_t *buf, size_t len, struct buf *out);

/* ws.c, used by srv.c */
/* Reads plaintext frames (unmasking them in place in buf); returns how
 * many bytes it took. */
size_t ws_consume(struct srv_conn *c, uint8_t *buf, size_t len);
void ws_after_write(struct srv_conn *c); /* outbound shrank */
void ws_gone(struct srv_conn *c, const char *why);
void ws_free(struct srv_conn *c);
/* One ping interval passed: pings a silent browser, closes one that stayed
 * silent for SRV_WS_PING_MAX_MISSED intervals. */
void ws_ping_tick(struct srv_conn *c, unsigned interval_ms);

/* http.c: the request parser without a connection (tests/fuzz/fuzz_http.c). */
int srv_parse_for_test(const uint8_t *buf, size_t len);

/* pump.c: the real pump and parser on plaintext records, without TLS or a
 * socket (tests/fuzz/fuzz_pipeline.c, tests/unit/test_http.c). Each record
 * is what one SSL_read would return; arrive[i] records are made readable
 * at once before the pump runs (sum of arrive = n). Every complete request
 * calls seen(ud, method, path); requests whose index has bit (i % 64) of
 * async set are answered later (as a worker would), the others at once,
 * from inside the pump. Returns the number of requests answered, or
 * -errno. */
struct pump_test;
int srv_pipeline_for_test(const uint8_t *const *recs, const size_t *lens, size_t n,
			  const size_t *arrive, size_t n_arrive, uint64_t async,
			  void (*seen)(void *ud, const char *method, const char *path), void *ud);
/* dispatch's hook for srv_pipeline_for_test */
void pump_test_dispatch(struct srv_conn *c);
