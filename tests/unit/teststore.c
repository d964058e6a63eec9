/* The store fixture of testutil.h, apart from the rest so that the tests
 * of the modules beneath the store link without it: a store on the backend
 * under test (BASTION_TEST_STORE=postgresql runs the suite on a cluster of
 * its own, started by scripts/pg.sh on first use and stopped at exit), and
 * raw SQL on it for the tests that look beneath the interface. */
#include "testutil.h"

#include "store/internal.h"
#include "store/store.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int tu_store_setup(void **state)
{
	struct tu_store *f = calloc(1, sizeof(*f));

	if (!f || !tu_tmpdir(f->dir, sizeof(f->dir), "store") || tu_store_open(f->dir, &f->s) < 0) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

struct store_session tu_session(const char *id, int64_t started_at)
{
	struct store_session s = { .user = "uma",
				   .vm = "/groups/g/vms/v",
				   .bastion = "/groups/g/bastions/b",
				   .target = "10.0.0.5:22",
				   .source = "192.0.2.1",
				   .auth_type = "password",
				   .started_at = started_at };

	snprintf(s.id, sizeof(s.id), "%s", id);
	return s;
}

int tu_store_teardown(void **state)
{
	struct tu_store *f = *state;

	store_free(f->s);
	tu_rm_tree(f->dir);
	free(f);
	return 0;
}

/* ---------- the backend under test ---------- */

static char pg_dir[64];
static char pg_url[512]; /* postgresql://bastion:PW@127.0.0.1:PORT/bastion */
static bool pg_shared;   /* BASTION_TEST_PG_URL: a cluster this run shares */

bool tu_pg(void)
{
	const char *b = getenv("BASTION_TEST_STORE");

	return b && strcmp(b, "postgresql") == 0;
}

/* Runs `sh SCRIPT VERB DIR`, its standard output into out (NUL-terminated,
 * may be NULL), stderr to /dev/null; its exit status, or -1. */
static int pg_script(const char *verb, char *out, size_t size)
{
	const char *sh = getenv("BASTION_PG_SH");
	int p[2], st = 0;
	size_t n = 0;
	pid_t pid;

	if (!sh || pipe2(p, O_CLOEXEC) < 0)
		return -1;
	if ((pid = fork()) < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		dup2(null, 0);
		dup2(p[1], 1);
		dup2(null, 2);
		execl("/bin/sh", "sh", sh, verb, pg_dir, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	for (;;) {
		char sink[256];
		bool room = out && n + 1 < size;
		ssize_t r =
			room ? read(p[0], out + n, size - 1 - n) : read(p[0], sink, sizeof(sink));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (room)
			n += (size_t)r;
	}
	close(p[0]);
	if (out)
		out[n] = '\0';
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void pg_stop(void)
{
	if (!pg_url[0])
		return;
	if (pg_script("stop", NULL, 0) != 0)
		fprintf(stderr, "testutil: could not stop the cluster in %s\n", pg_dir);
	pg_url[0] = '\0';
}

/* The cluster of this test process, started on first use and stopped at
 * exit. Without PostgreSQL's binaries the whole run is skipped (exit 77,
 * which meson reports as SKIP) with the reason on stderr. */
static int pg_start(void)
{
	glob_t g;
	size_t n;

	const char *shared = getenv("BASTION_TEST_PG_URL");

	if (pg_url[0])
		return 0;
	/* make test starts one cluster for every suite but those that stop
	 * theirs (they set the variable empty). */
	if (shared && strncmp(shared, "postgresql://", 13) == 0 &&
	    strlen(shared) < sizeof(pg_url)) {
		util_strlcpy(pg_url, shared, sizeof(pg_url));
		pg_shared = true;
		return 0;
	}
	if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &g) != 0) {
		fprintf(stderr, "SKIP: PostgreSQL's binaries are not installed (apt-get install"
				" postgresql): the PostgreSQL run of this suite cannot run\n");
		exit(77);
	}
	globfree(&g);
	if (!getenv("BASTION_PG_SH") || !tu_tmpdir(pg_dir, sizeof(pg_dir), "pg"))
		return -1;
	if (pg_script("start", pg_url, sizeof(pg_url)) != 0)
		pg_url[0] = '\0';
	n = strlen(pg_url);
	while (n > 0 && (pg_url[n - 1] == '\n' || pg_url[n - 1] == '\r'))
		pg_url[--n] = '\0';
	if (strncmp(pg_url, "postgresql://", 13) != 0) {
		fprintf(stderr, "testutil: scripts/pg.sh did not start a cluster\n");
		pg_url[0] = '\0';
		return -1;
	}
	atexit(pg_stop);
	return 0;
}

int tu_pg_halt(void)
{
	return pg_url[0] && !pg_shared && pg_script("halt", NULL, 0) == 0 ? 0 : -1;
}

int tu_pg_resume(void)
{
	return pg_url[0] && !pg_shared && pg_script("resume", NULL, 0) == 0 ? 0 : -1;
}

int tu_pg_url(const char *dir, char *out, size_t size)
{
	const char *base = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;
	char db[64], sql[128];
	const char *slash;
	PGconn *c;
	PGresult *res;
	size_t j = 0;
	int r = 0;

	if (pg_start() < 0)
		return -1;
	/* One database per directory: a test that reopens its directory finds
	 * its data, and every new directory starts empty. */
	for (size_t i = 0; base[i] && j < sizeof(db) - 1; i++)
		db[j++] = (char)(base[i] == '-'                     ? '_'
				 : base[i] >= 'A' && base[i] <= 'Z' ? base[i] + 32
								    : base[i]);
	db[j] = '\0';
	/* On a cluster the whole run shares, a directory name another suite
	 * had before must not find its data: the process ID as well. */
	if (pg_shared)
		snprintf(db + j, sizeof(db) - j, "_%d", (int)getpid());
	c = PQconnectdb(pg_url);
	if (PQstatus(c) != CONNECTION_OK) {
		PQfinish(c);
		return -1;
	}
	snprintf(sql, sizeof(sql), "SELECT 1 FROM pg_database WHERE datname = '%s'", db);
	res = PQexec(c, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		r = -1;
	else if (PQntuples(res) == 0) {
		PQclear(res);
		snprintf(sql, sizeof(sql), "CREATE DATABASE \"%s\"", db);
		res = PQexec(c, sql);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			r = -1;
	}
	PQclear(res);
	PQfinish(c);
	slash = strrchr(pg_url, '/');
	if (r == 0 &&
	    snprintf(out, size, "%.*s/%s", (int)(slash - pg_url), pg_url, db) >= (int)size)
		r = -1;
	return r;
}

/* Which directory each open store belongs to, for tu_query_int. */
static struct {
	struct store *s;
	char dir[64];
} opened[32];
static unsigned n_opened;

int tu_store_open(const char *dir, struct store **ret)
{
	char url[640];
	int r;

	if (!tu_pg()) {
		r = store_open(dir, ret);
	} else if (tu_pg_url(dir, url, sizeof(url)) < 0) {
		*ret = NULL;
		r = -1;
	} else {
		r = store_open_url(url, dir, ret);
	}
	if (r == 0) {
		unsigned i = n_opened++ % (sizeof(opened) / sizeof(opened[0]));

		/* A store freed earlier may have had this address: its entry
		 * (another directory) must not answer for this one. */
		for (size_t k = 0; k < sizeof(opened) / sizeof(opened[0]); k++)
			if (opened[k].s == *ret)
				opened[k].s = NULL;

		opened[i].s = *ret;
		snprintf(opened[i].dir, sizeof(opened[i].dir), "%s", dir);
	}
	return r;
}

int64_t tu_query_int(struct store *s, const char *sql, const char *arg)
{
	int64_t v = -1;

	if (tu_pg()) {
		const char *dir = NULL;
		char url[640], q[1024];
		bool quoted = false;
		size_t j = 0;
		PGconn *c;
		PGresult *res;

		for (size_t i = 0; i < sizeof(opened) / sizeof(opened[0]); i++)
			if (opened[i].s == s)
				dir = opened[i].dir;
		if (!dir || tu_pg_url(dir, url, sizeof(url)) < 0)
			return -1;
		/* SQLite's dialect as the tests write it, in PostgreSQL's:
		 * "?" (outside quotes) is "$1", instr() is strpos(),
		 * json_extract(col, '$.a.b') is (col::jsonb #>> '{a,b}')::bigint,
		 * and a token hash compared with text is compared with its
		 * bytes. */
		for (size_t i = 0; sql[i] && j < sizeof(q) - 64; i++) {
			if (sql[i] == '\'')
				quoted = !quoted;
			if (sql[i] == '?' && !quoted) {
				if (j >= 13 && strncmp(q + j - 13, "token_hash = ", 13) == 0) {
					memcpy(q + j, "convert_to($1, 'UTF8')", 22);
					j += 22;
				} else {
					q[j++] = '$';
					q[j++] = '1';
				}
				while (sql[i + 1] >= '0' && sql[i + 1] <= '9')
					i++;
			} else if (!quoted && strncmp(sql + i, "instr(", 6) == 0) {
				memcpy(q + j, "strpos(", 7);
				j += 7;
				i += 5;
			} else if (!quoted && strncmp(sql + i, "json_extract(", 13) == 0) {
				const char *col = sql + i + 13, *comma = strchr(col, ','),
					   *path = comma ? strstr(comma, "'$.") : NULL,
					   *end = path ? strstr(path, "')") : NULL;
				int w;

				if (!end)
					return -1;
				w = snprintf(q + j, sizeof(q) - j, "(%.*s::jsonb #>> '{",
					     (int)(comma - col), col);
				j += (size_t)(w > 0 ? w : 0);
				for (const char *pc = path + 3; pc < end && j < sizeof(q) - 32;
				     pc++)
					q[j++] = *pc == '.' ? ',' : *pc;
				memcpy(q + j, "}')::bigint", 11);
				j += 11;
				i = (size_t)(end - sql) + 1;
			} else {
				q[j++] = sql[i];
			}
		}
		q[j] = '\0';
		c = PQconnectdb(url);
		res = PQexecParams(c, q, arg ? 1 : 0, NULL, &arg, NULL, NULL, 0);
		if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
			v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
		PQfinish(c);
	} else {
		sqlite3_stmt *st = store_prepare(s, sql);

		if (!st)
			return -1;
		if (arg)
			sqlite3_bind_text(st, 1, arg, -1, SQLITE_TRANSIENT);
		if (sqlite3_step(st) == SQLITE_ROW)
			v = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	return v;
}
