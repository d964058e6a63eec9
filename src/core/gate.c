/* Bounded gates for expensive work on the worker pool: see gate.h. */
#include "core/gate.h"

#include <errno.h>
#include <stdlib.h>

unsigned gate_default_max(void)
{
	const char *env = getenv("UV_THREADPOOL_SIZE");
	unsigned long pool = 4;

	if (env != NULL && *env != '\0') {
		char *end;
		unsigned long v = strtoul(env, &end, 10);

		if (*end == '\0' && v > 0 && v <= 1024)
			pool = v;
	}
	return pool / 2 > 0 ? (unsigned)(pool / 2) : 1;
}

int gate_try_enter(struct gate *g)
{
	int r = 0;

	pthread_mutex_lock(&g->mu);
	if (g->running >= (g->max != 0 ? g->max : gate_default_max())) {
		g->refused++;
		r = -EBUSY;
	} else {
		g->running++;
	}
	pthread_mutex_unlock(&g->mu);
	return r;
}

void gate_leave(struct gate *g)
{
	pthread_mutex_lock(&g->mu);
	if (g->running > 0)
		g->running--;
	pthread_mutex_unlock(&g->mu);
}

void gate_set_max(struct gate *g, unsigned max)
{
	pthread_mutex_lock(&g->mu);
	g->max = max;
	pthread_mutex_unlock(&g->mu);
}

unsigned gate_running(struct gate *g)
{
	unsigned n;

	pthread_mutex_lock(&g->mu);
	n = g->running;
	pthread_mutex_unlock(&g->mu);
	return n;
}

unsigned long gate_refused(struct gate *g)
{
	unsigned long n;

	pthread_mutex_lock(&g->mu);
	n = g->refused;
	pthread_mutex_unlock(&g->mu);
	return n;
}
