/* PostgreSQL backend: a statement sent and its answer awaited with a
 * deadline of the client's own. A server that stopped answering without
 * closing (frozen, or gone behind a link whose kernel still acknowledges)
 * never fires statement_timeout, and a blocking PQexec would wait for it
 * for ever: here the wait ends after PG_ANSWER_MS, under the 5 s a request
 * may take, and the connection (whose state is then unknown) is dropped,
 * to be opened anew by the next call (pg.c, conn()). */
#include "store/pg_internal.h"

#include <errno.h>
#include <poll.h>
#include <time.h>

#include "core/log.h"

#define PG_ANSWER_MS 4500

static int64_t mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

PGresult *pg_exec_wait(PGconn **pc, const char *sql, int n, const char *const *params)
{
	int64_t deadline = mono_ms() + PG_ANSWER_MS;
	PGresult *last = NULL, *res;
	PGconn *c = *pc;
	bool sent;

	if (!c)
		return NULL;
	store_statement_count();
	sent = n >= 0 ? PQsendQueryParams(c, sql, n, NULL, params, NULL, NULL, 0)
		      : PQsendQuery(c, sql);
	if (!sent) /* the error as a result, as PQexec gives it */
		return PQmakeEmptyPGresult(c, PGRES_FATAL_ERROR);
	for (;;) {
		while (PQisBusy(c)) {
			struct pollfd pfd = { .fd = PQsocket(c), .events = POLLIN };
			int64_t left = deadline - mono_ms();
			int pr = left > 0 ? poll(&pfd, 1, (int)left) : 0;

			if (pr < 0 && errno == EINTR)
				continue;
			if (pr == 0) {
				log_warn(
					"store: PostgreSQL did not answer within %d ms: the connection"
					" is dropped",
					PG_ANSWER_MS);
				PQclear(last);
				PQfinish(c);
				*pc = NULL;
				return NULL;
			}
			if (pr < 0 || !PQconsumeInput(c))
				break; /* PQgetResult reports the broken connection */
		}
		res = PQgetResult(c);
		if (!res)
			break;
		PQclear(last);
		last = res;
		if (PQstatus(c) == CONNECTION_BAD)
			break;
	}
	return last;
}
