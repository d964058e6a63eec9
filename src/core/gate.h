/* A gate bounds how many threads may do one kind of expensive work at once
 * (Argon2id password hashing, decrypting a passphrase-protected private
 * key), so that work a client can start at will never occupies every
 * thread of the worker pool that also answers the rest of the API.
 *
 * A gate never waits: a thread that finds it full is told so at once and
 * answers the client (503 with Retry-After), instead of holding a worker
 * thread in a queue. Safe from any thread; a gate lives as long as the
 * process (a static, initialised with GATE_INIT). */
#pragma once

#include <pthread.h>
#include <stdbool.h>

struct gate {
	pthread_mutex_t mu;
	unsigned running; /* threads inside now */
	unsigned max;     /* 0: the default, gate_default_max() */
	unsigned long refused;
};

#define GATE_INIT(max_)                                 \
	{                                               \
		PTHREAD_MUTEX_INITIALIZER, 0, (max_), 0 \
	}

/* Takes a place: 0, or -EBUSY when `max` threads are already inside (the
 * refusal is counted). Every 0 is paired with one gate_leave(). */
int gate_try_enter(struct gate *g);
void gate_leave(struct gate *g);

/* Changes the bound (for tests and configuration); 0 restores the default:
 * half the worker pool, at least one. */
void gate_set_max(struct gate *g, unsigned max);

/* How many threads are inside, and how many were refused since start. */
unsigned gate_running(struct gate *g);
unsigned long gate_refused(struct gate *g);

/* Half of libuv's worker pool (UV_THREADPOOL_SIZE, default 4), at least 1. */
unsigned gate_default_max(void);
