/* Store: what several instances on one store share about each other (issue
 * 15, item 2) — the table of instances with their leases, which instance
 * holds each live terminal session, and the requests to end a session that
 * another instance holds. Same thread model and error convention as
 * store.h. On SQLite (one instance per data directory) the same functions
 * work, with one row in the instances table. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct store;

#define STORE_INSTANCE_NAME_MAX 128

/* One instance as recorded. state: "up", "draining" or "lost". */
struct store_instance {
	char name[STORE_INSTANCE_NAME_MAX];
	char state[16];
	int64_t started_at, last_seen; /* unix seconds, by the writer's clock */
	char advertise_url[256];       /* how another instance reaches it */
	char cert_sha256[72];          /* hex SHA-256 of its TLS certificate (DER) */
	int64_t sessions;              /* open sessions it holds (instance_foreach) */
};

/* Takes the name in->name for this process, state "up", last_seen now.
 * -EEXIST when another process holds it: its row is not "lost" and its
 * last_seen is within lease_s of now. A row of a previous process of the
 * same name (stopped, crashed, or lost) is taken over; the sessions that
 * process still had open in the store are recorded as ended at now with
 * reason (and a session.end audit record each), in the same transaction.
 * *ret_ended: how many. */
int store_instance_claim(struct store *s, const struct store_instance *in, int64_t now,
			 int64_t lease_s, const char *reason, int *ret_ended);
/* Renews name's lease: last_seen = now, state = state ("up" or
 * "draining"). -ENOENT when the row is gone or was marked "lost" by
 * another instance (it is left so: the caller decides). */
int store_instance_heartbeat(struct store *s, const char *name, const char *state, int64_t now);
/* Every instance, by name, with the count of open sessions each holds. */
int store_instance_foreach(struct store *s, int (*fn)(const struct store_instance *in, void *ud),
			   void *ud);
/* Marks "lost" every instance other than self whose last_seen is older
 * than now - lease_s, each by a conditional update (of several survivors
 * doing this at once, one wins an instance), and for each one won records
 * its open sessions as ended at now with reason "instance lost" and a
 * session.end audit record each, in the same transaction. *ret_lost: how
 * many instances this call marked; *ret_ended: how many sessions. */
int store_instance_reap(struct store *s, const char *self, int64_t now, int64_t lease_s,
			int *ret_lost, int *ret_ended);
/* A clean stop: name's row goes. */
int store_instance_delete(struct store *s, const char *name);

/* A live session as the registry in the store knows it (GET /sessions). */
struct store_live_session {
	const char *id, *user, *vm, *bastion, *target, *source, *auth_type, *instance;
	int64_t started_at;
	bool attached;
};
/* Every open session (no end recorded) held by an instance other than
 * except (NULL: all), by start. Strings are borrowed for fn's duration. */
int store_session_foreach_open(struct store *s, const char *except,
			       int (*fn)(const struct store_live_session *ls, void *ud), void *ud);
/* Records that the session's shell has a terminal attached. */
int store_session_attached(struct store *s, const char *id);
/* Asks the instance holding session id (open, held by another instance
 * than self) to end it with reason. The holder's name into ret_instance
 * (STORE_INSTANCE_NAME_MAX bytes, may be NULL), its user and bastion into
 * ret_user (65) and ret_bastion (256) when not NULL. -ENOENT when no such
 * open session is held elsewhere. A second request for the same session
 * keeps the first. */
int store_session_end_request(struct store *s, const char *id, const char *self, const char *reason,
			      char *ret_instance, char *ret_user, char *ret_bastion);
/* The same for every open session of user held by another instance than
 * self. *ret_n: how many requests were written. */
int store_session_end_request_user(struct store *s, const char *user, const char *self,
				   const char *reason, int *ret_n);
/* Takes (and deletes) the requests addressed to instance, calling fn for
 * each; fn must not call the store. */
int store_session_end_requests_take(struct store *s, const char *instance,
				    int (*fn)(const char *id, const char *reason, void *ud),
				    void *ud);

/* A connection of its own that LISTENs on channel (PostgreSQL: the
 * requests above NOTIFY "bastion_session_end" with the holder's name).
 * Blocks while it connects (a worker's call). -ENOTSUP on SQLite. */
struct store_listener;
int store_listen_open(struct store *s, const char *channel, struct store_listener **ret);
/* Its socket, to watch for reading (a libuv poll handle). */
int store_listener_fd(const struct store_listener *l);
/* Reads what has arrived, without waiting (the socket is non-blocking):
 * *ret_match is set when a notification whose payload is payload came.
 * -EPIPE when the connection broke: free it and open another. One thread
 * at a time. */
int store_listener_read(struct store_listener *l, const char *payload, bool *ret_match);
void store_listener_free(struct store_listener *l);
