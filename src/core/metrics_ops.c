/* The metrics an operator alerts on (issue 19): the process (CPU seconds,
 * resident memory, open and allowed descriptors, start time, read from
 * /proc/self at each scrape), sign-in failures by reason and lock-outs,
 * the TLS certificate's expiry, and store errors by kind. Counters are
 * atomics bumped from any thread; rendering allocates. */
#include "core/metrics.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/buf.h"

#define OPS_TEXT_MAX (64 * 1024)

static const char *const signin_reasons[] = { "unknown_user", "bad_password", "disabled",
					      "throttled",    "busy",         "other" };
#define N_SIGNIN (sizeof(signin_reasons) / sizeof(signin_reasons[0]))
static const char *const store_kinds[] = { "busy", "timeout", "unavailable", "constraint",
					   "other" };
#define N_STORE (sizeof(store_kinds) / sizeof(store_kinds[0]))

static struct {
	atomic_uint_fast64_t signin[N_SIGNIN];
	atomic_uint_fast64_t lockouts;
	atomic_int_fast64_t cert_expiry;
	atomic_uint_fast64_t store[N_STORE];
} O;

static size_t index_of(const char *const *names, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n - 1; i++)
		if (name && strcmp(name, names[i]) == 0)
			break;
	return i;
}

void metrics_signin_failure(const char *reason)
{
	atomic_fetch_add_explicit(&O.signin[index_of(signin_reasons, N_SIGNIN, reason)], 1,
				  memory_order_relaxed);
}

void metrics_signin_lockout(void)
{
	atomic_fetch_add_explicit(&O.lockouts, 1, memory_order_relaxed);
}

void metrics_tls_cert_expiry(int64_t not_after)
{
	atomic_store_explicit(&O.cert_expiry, not_after, memory_order_relaxed);
}

void metrics_store_error(const char *kind)
{
	atomic_fetch_add_explicit(&O.store[index_of(store_kinds, N_STORE, kind)], 1,
				  memory_order_relaxed);
}

/* The process, from /proc: false when a file could not be read (the
 * sample is then left out rather than reported as 0). */
struct proc {
	bool cpu_ok, rss_ok, fds_ok, start_ok;
	double cpu_s, start_s;
	unsigned long long rss;
	unsigned long fds;
};

static void read_proc(struct proc *p)
{
	long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	char buf[1024], *s;
	unsigned long long utime, stime, start, btime = 0, pages;
	FILE *f;
	DIR *d;

	memset(p, 0, sizeof(*p));
	if ((f = fopen("/proc/self/stat", "re"))) {
		/* The command name (field 2) may hold spaces: parse after the
		 * last ')'. utime, stime are fields 14, 15; starttime 22. */
		if (fgets(buf, sizeof(buf), f) && (s = strrchr(buf, ')')) &&
		    sscanf(s + 2,
			   "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d "
			   "%*d %*d %llu",
			   &utime, &stime, &start) == 3 &&
		    tick > 0) {
			p->cpu_ok = true;
			p->cpu_s = (double)(utime + stime) / (double)tick;
			p->start_s = (double)start / (double)tick;
		}
		fclose(f);
	}
	if (p->cpu_ok && (f = fopen("/proc/stat", "re"))) {
		while (fgets(buf, sizeof(buf), f))
			if (sscanf(buf, "btime %llu", &btime) == 1)
				break;
		fclose(f);
		if (btime) {
			p->start_ok = true;
			p->start_s += (double)btime;
		}
	}
	if ((f = fopen("/proc/self/statm", "re"))) {
		if (fscanf(f, "%*u %llu", &pages) == 1 && page > 0) {
			p->rss_ok = true;
			p->rss = pages * (unsigned long long)page;
		}
		fclose(f);
	}
	/* The descriptor table of this thread (a worker's: loop 0's and the
	 * workers'); each other event loop has a table of its own. */
	if ((d = opendir("/proc/thread-self/fd"))) {
		struct dirent *e;

		while ((e = readdir(d)))
			if (e->d_name[0] != '.')
				p->fds++;
		closedir(d);
		p->fds_ok = p->fds > 0;
		if (p->fds)
			p->fds--; /* the directory's own descriptor */
	}
}

int metrics_ops_render(char **ret)
{
	struct proc p;
	struct rlimit rl;
	struct buf b;
	int64_t exp = atomic_load_explicit(&O.cert_expiry, memory_order_relaxed);
	int e = 0;

	*ret = NULL;
	read_proc(&p);
	buf_init(&b, OPS_TEXT_MAX);
	if (p.cpu_ok)
		e = e
			    ?: buf_printf(
				       &b,
				       "# HELP process_cpu_seconds_total User and system CPU time "
				       "spent, in seconds.\n"
				       "# TYPE process_cpu_seconds_total counter\n"
				       "process_cpu_seconds_total %.2f\n",
				       p.cpu_s);
	if (p.rss_ok)
		e = e
			    ?: buf_printf(
				       &b,
				       "# HELP process_resident_memory_bytes Resident memory size in "
				       "bytes.\n"
				       "# TYPE process_resident_memory_bytes gauge\n"
				       "process_resident_memory_bytes %llu\n",
				       p.rss);
	if (p.fds_ok)
		e = e
			    ?: buf_printf(
				       &b,
				       "# HELP process_open_fds Open descriptors in the main table "
				       "(loop 0 and the workers; every other loop has its own).\n"
				       "# TYPE process_open_fds gauge\nprocess_open_fds %lu\n",
				       p.fds);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		e = e
			    ?: buf_printf(
				       &b,
				       "# HELP process_max_fds The soft limit of open descriptors (per "
				       "table).\n"
				       "# TYPE process_max_fds gauge\nprocess_max_fds %llu\n",
				       (unsigned long long)rl.rlim_cur);
	if (p.start_ok)
		e = e
			    ?: buf_printf(
				       &b,
				       "# HELP process_start_time_seconds Start time of the process "
				       "since the epoch, in seconds.\n"
				       "# TYPE process_start_time_seconds gauge\n"
				       "process_start_time_seconds %.2f\n",
				       p.start_s);
	e = e
		    ?: buf_append_str(&b,
				      "# HELP bastion_signin_failures_total Failed sign-ins by "
				      "reason.\n# TYPE bastion_signin_failures_total counter\n");
	for (size_t i = 0; i < N_SIGNIN && !e; i++)
		e = buf_printf(&b, "bastion_signin_failures_total{reason=\"%s\"} %llu\n",
			       signin_reasons[i],
			       (unsigned long long)atomic_load_explicit(&O.signin[i],
									memory_order_relaxed));
	e = e
		    ?: buf_printf(&b,
				  "# HELP bastion_signin_lockouts_total Sign-in locks begun (an "
				  "account's or a source address's).\n"
				  "# TYPE bastion_signin_lockouts_total counter\n"
				  "bastion_signin_lockouts_total %llu\n",
				  (unsigned long long)atomic_load_explicit(&O.lockouts,
									   memory_order_relaxed));
	if (exp > 0)
		e = e
			    ?: buf_printf(
				       &b,
				       "# HELP bastion_tls_cert_expiry_timestamp_seconds When the "
				       "serving certificate expires (notAfter), Unix seconds.\n"
				       "# TYPE bastion_tls_cert_expiry_timestamp_seconds gauge\n"
				       "bastion_tls_cert_expiry_timestamp_seconds %lld\n",
				       (long long)exp);
	e = e
		    ?: buf_append_str(&b,
				      "# HELP bastion_store_errors_total Store errors by kind.\n"
				      "# TYPE bastion_store_errors_total counter\n");
	for (size_t i = 0; i < N_STORE && !e; i++)
		e = buf_printf(&b, "bastion_store_errors_total{kind=\"%s\"} %llu\n", store_kinds[i],
			       (unsigned long long)atomic_load_explicit(&O.store[i],
									memory_order_relaxed));
	if (e < 0 || !(*ret = strdup(buf_str(&b)))) {
		buf_free(&b);
		return -ENOMEM;
	}
	buf_free(&b);
	return 0;
}
