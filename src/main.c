/* bastion: command dispatch. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <openssl/ssl.h>
#include <uv.h>

#include "api/api.h"
#include "authz/dest.h"
#include "check.h"
#include "cli/cli.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/util.h"
#include "identity/ident.h"
#include "server/loops.h"
#include "server/srv.h"
#include "store/store.h"
#include "store/store_ops.h"
#include "terminal/term.h"
#include "vault/vault.h"

static void usage(FILE *f)
{
	fputs("usage: bastion <command> [options]\n"
	      "\n"
	      "commands:\n"
	      "  serve       run a bastion instance (HTTPS portal, API and terminals)\n"
	      "  audit export --data DIR [--since T]  print the audit trail as JSON lines\n"
	      "  version     print the version (-o json; --server: the server's too)\n"
	      "  completion bash|zsh  print a shell completion script\n"
	      "  help        this text (also -h and --help, after any command)\n"
	      "client commands (REST API clients; `bastion COMMAND --help` for each):\n"
	      "  login URL [--username NAME] [--password-stdin] [--ca-file FILE | --insecure]\n"
	      "              sign in and store an API token in ~/.config/bastion/config.json\n"
	      "  logout      delete the stored token\n"
	      "  user        list | show U | create U | set-password U | disable U | enable U | delete U\n"
	      "  group       list | show G | create G [--force] | set G | delete G\n"
	      "  network, nic, vm, bastion\n"
	      "              list G | show G NAME | set G NAME [flags | --json JSON] | delete G NAME\n"
	      "              | create G NAME [flags] [--force]  (create refuses to replace)\n"
	      "  role        list [--scope S] [--principal P] | show ID\n"
	      "              | assign [ID] --principal P --role R --scope S | delete ID\n"
	      "  vault       list G | show G V | set G V [--retention-days N] | delete G V\n"
	      "              | policy set G V PRINCIPAL --permissions list,get,set,delete\n"
	      "              | policy list G V | policy delete G V PRINCIPAL | rotate-master-key\n"
	      "  secret      set G V NAME (--file F | --value-stdin) | list G V [--deleted]\n"
	      "              | show G V NAME [--version X] [--value] | versions G V NAME\n"
	      "              | delete G V NAME [--purge] | recover G V NAME\n"
	      "  session     list | end ID\n"
	      "  audit       [list] [--principal P] [--action A] [--target T] [--result R]\n"
	      "              [--since T] [--until T] [--limit N] [--follow [--interval S]]\n"
	      "  every client command takes --output table|json (default table); tables\n"
	      "  show times in UTC (2026-12-07 11:40:02Z), -o json as unix seconds\n"
	      "client exit codes: 0 ok, 1 refused by the API (4xx), 2 usage error,\n"
	      "  3 not logged in or credentials refused (401), 4 not found (404),\n"
	      "  5 connection or TLS failure, 6 server error (5xx)\n"
	      "client environment: BASTION_URL, BASTION_TOKEN (instead of login),\n"
	      "  BASTION_CA_FILE, BASTION_INSECURE=1\n"
	      "\n"
	      "bastion serve [--config FILE] [--check-config] [--listen ADDR:PORT] [--data DIR]\n"
	      "              [--cert FILE --key FILE] [--log-level debug|info|warn|error]\n"
	      "              [--idle-timeout D] [--idle-warning D] [--max-session-duration D]\n"
	      "              [--max-sessions-per-user N] [--max-sessions N] [--drain-timeout D]\n"
	      "              [--ssh-keepalive D] [--browser-ping D] [--user NAME]\n"
	      "              [--allowed-destinations CIDR[,CIDR...]]\n"
	      "              [--log-format text|json]\n"
	      "  --config    an INI file (also BASTION_CONFIG); flags > BASTION_* environment\n"
	      "              > file > defaults; see docs/configuration.md for every key\n"
	      "  --check-config  check what serve would refuse (the file, the listen address,\n"
	      "              the user, the TLS pair, the master key, the store's schema);\n"
	      "              print the verdict, exit 0 or 1; starts and writes nothing\n"
	      "  --log-format  text (default) or json: one object per line, audit records\n"
	      "              as their own \"type\":\"audit\" objects\n"
	      "  signals: SIGTERM drains (sessions are told, closed by --drain-timeout);\n"
	      "              SIGHUP reloads the TLS certificate and the live settings\n"
	      "  --listen    address to serve HTTPS on (default 0.0.0.0:8443)\n"
	      "  --data      state directory (default ./bastion-data), created 0700\n"
	      "  --cert/--key  TLS certificate chain and key in PEM; default: a self-signed\n"
	      "              pair generated into the data directory on first run\n"
	      "  --user      started as root, switch to this account once the port is bound\n"
	      "              (default: 'bastion' if it exists; 'root' keeps root)\n"
	      "  --allowed-destinations  the address ranges the bastion may ever dial (default\n"
	      "              10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7); loopback,\n"
	      "              link-local and metadata addresses only when a listed prefix lies\n"
	      "              inside their range\n"
	      "  --master-key-file FILE  the vault's master key (default DATA/master.key,\n"
	      "              32 random bytes created 0600 on first run)\n"
	      "environment:\n"
	      "  BASTION_ADMIN_PASSWORD  password of the first account, admin (first run only;\n"
	      "              at least 12 characters); without it one is generated and printed\n",
	      f);
}

/* ---------- serve: loops, signals, reload, drain ---------- */

struct serve_state;

/* What the daemon keeps of each event loop; used on that loop's thread. */
struct loop_state {
	struct serve_state *st;
	unsigned index;
	struct srv *srv;
	uv_timer_t lag; /* event-loop lag probe */
	uint64_t lag_expected_ns;
};

/* Loop 0's (the main thread's), but for what the loops read once. */
struct serve_state {
	struct loop_state loops[LOOPS_MAX];
	unsigned n_loops, n_stopped;
	const struct srv_config *srv_cfg;
	int listen_fd; /* until loop 0's server takes it: it accepts for every loop */
	SSL_CTX *ctx;  /* each server holds a reference */
	uv_signal_t sigterm, sigint, sighup;
	uv_timer_t deadline; /* SIGTERM: the drain's end */
	bool stopping, reloading, stopped;
	struct cfg cfg;          /* what runs */
	const char *config_file; /* NULL: none */
	struct cfg_arg args[32]; /* the flags, kept for every reload */
	size_t nargs;
};

#define LAG_PROBE_MS 500

static enum log_level level_of(const char *name)
{
	if (strcmp(name, "debug") == 0)
		return LOG_DEBUG;
	if (strcmp(name, "warn") == 0)
		return LOG_WARN;
	if (strcmp(name, "error") == 0)
		return LOG_ERROR;
	return LOG_INFO;
}

/* From the start on, before the first line is logged. */
static void apply_log_settings(const struct cfg *c)
{
	log_set_level(level_of(c->log_level));
	log_set_format(strcmp(c->log_format, "json") == 0 ? LOG_FORMAT_JSON : LOG_FORMAT_TEXT);
}

static void apply_limits(const struct cfg *c)
{
	struct term_limits l = {
		.idle_timeout_s = c->idle_timeout_s,
		.idle_warning_s = c->idle_warning_s,
		.max_duration_s = c->max_duration_s,
		.max_per_user = c->max_per_user,
		.max_total = c->max_total,
		.ssh_keepalive_s = c->ssh_keepalive_s,
	};

	apply_log_settings(c);
	term_set_limits(&l);
	/* Validated by cfg_load: the only failure would leave the running list. */
	if (authz_dest_set(c->allowed_destinations) < 0)
		log_error("network.allowed_destinations: cannot apply; the running list stays");
	srv_limits_set((unsigned)c->connections_per_address, (size_t)c->connections);
}

static void srv_config_of(const struct cfg *c, const char *data_dir, struct srv_config *ret)
{
	ret->listen = c->listen;
	ret->data_dir = data_dir;
	ret->cert_file = c->cert_file[0] ? c->cert_file : NULL;
	ret->key_file = c->key_file[0] ? c->key_file : NULL;
}

/* How many loops: the setting, or one per CPU this process may run on. */
static unsigned loops_wanted(const struct cfg *c)
{
	cpu_set_t set;
	int n = 1;

	if (c->loops > 0)
		return (unsigned)c->loops;
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		n = CPU_COUNT(&set);
	return n < 1 ? 1u : n > 16 ? 16u : (unsigned)n;
}

/* Runs fn(ls) on each loop: at once on this one (loop 0), posted to the
 * others. A loop that already ended is skipped. */
static void for_each_loop(struct serve_state *st, void (*fn)(void *ls))
{
	for (unsigned i = 1; i < st->n_loops; i++)
		loops_post(i, fn, &st->loops[i]);
	fn(&st->loops[0]);
}

static void on_lag_probe(uv_timer_t *t)
{
	struct loop_state *ls = t->data;
	uint64_t now = uv_hrtime();

	metrics_loop_lag(ls->index,
			 now > ls->lag_expected_ns ? (double)(now - ls->lag_expected_ns) / 1e9 : 0);
	ls->lag_expected_ns = now + (uint64_t)LAG_PROBE_MS * 1000000;
	uv_timer_start(&ls->lag, on_lag_probe, LAG_PROBE_MS, 0);
}

/* Each loop's server and lag probe, made before the loops run (no
 * descriptor is made here but loop 0's listener, which it takes). */
static int loops_begin(struct serve_state *st)
{
	int r;

	for (unsigned i = 0; i < st->n_loops; i++) {
		struct loop_state *ls = &st->loops[i];

		*ls = (struct loop_state){ .st = st, .index = i };
		r = srv_new(i, st->srv_cfg, i == 0 ? st->listen_fd : -1, st->ctx, &ls->srv);
		if (i == 0)
			st->listen_fd = -1; /* the server's now, or closed */
		if (r < 0)
			return r;
		srv_set_browser_ping(ls->srv, (unsigned)st->cfg.browser_ping_s * 1000u);
		uv_timer_init(loops_uv(i), &ls->lag);
		ls->lag.data = ls;
		ls->lag_expected_ns = uv_hrtime() + (uint64_t)LAG_PROBE_MS * 1000000;
		uv_timer_start(&ls->lag, on_lag_probe, LAG_PROBE_MS, 0);
	}
	return 0;
}

/* On loop 0: one more loop has stopped; the last closes loop 0's own. */
static void on_loop_stopped(void *arg)
{
	struct serve_state *st = arg;

	if (++st->n_stopped < st->n_loops)
		return;
	st->stopped = true;
	uv_close((uv_handle_t *)&st->sigterm, NULL);
	uv_close((uv_handle_t *)&st->sigint, NULL);
	uv_close((uv_handle_t *)&st->sighup, NULL);
	uv_close((uv_handle_t *)&st->deadline, NULL);
	loops_close(0);
}

/* On each loop: its server has stopped (drained, or stopped at the
 * deadline). Its part of the terminal module and its probe close; a loop
 * other than 0 then takes no more posts and ends. */
static void loop_stopped(void *arg)
{
	struct loop_state *ls = arg;

	uv_close((uv_handle_t *)&ls->lag, NULL);
	term_done();
	if (ls->index == 0) {
		on_loop_stopped(ls->st);
		return;
	}
	if (loops_post(0, on_loop_stopped, ls->st) < 0)
		log_error("loop %u stopped after loop 0", ls->index);
	loops_close(ls->index);
}

static void loop_drain(void *arg)
{
	struct loop_state *ls = arg;

	term_shutdown("the bastion is shutting down");
	srv_drain(ls->srv, loop_stopped, ls);
}

static void loop_stop(void *arg)
{
	struct loop_state *ls = arg;

	log_warn("drain: loop %u: %zu connection(s) still open: closing them", ls->index,
		 srv_conn_count(ls->srv));
	srv_stop(ls->srv, loop_stopped, ls);
}

static void on_deadline(uv_timer_t *t)
{
	struct serve_state *st = t->data;

	log_warn("drain: still open after %llds", (long long)st->cfg.drain_timeout_s);
	for_each_loop(st, loop_stop);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct serve_state *st = h->data;

	if (st->stopping) {
		log_info("received %s again: closing every connection now", strsignal(signum));
		for_each_loop(st, loop_stop);
		return;
	}
	st->stopping = true;
	log_info("received %s: draining (no new connections; open sessions are told and closed; "
		 "at most %llds)",
		 signum == SIGTERM ? "SIGTERM" : "SIGINT", (long long)st->cfg.drain_timeout_s);
	for_each_loop(st, loop_drain);
	if (!st->stopped)
		uv_timer_start(&st->deadline, on_deadline, (uint64_t)st->cfg.drain_timeout_s * 1000,
			       0);
}

/* SIGHUP: the file, environment and flags are read again and a new TLS
 * context is built on a worker (file reads); each loop then swaps what may
 * change live. */
struct reload_job {
	uv_work_t work;
	struct serve_state *st;
	struct cfg cfg;
	SSL_CTX *ctx;
	int r;
	char err[512];
};

/* What one loop takes from a reload. */
struct loop_reload {
	struct loop_state *ls;
	SSL_CTX *ctx; /* a reference of its own */
	unsigned ping_ms;
};

static void loop_reload(void *arg)
{
	struct loop_reload *lr = arg;

	srv_set_browser_ping(lr->ls->srv, lr->ping_ms);
	srv_set_tls_ctx(lr->ls->srv, lr->ctx);
	free(lr);
}

static void reload_work(uv_work_t *w)
{
	struct reload_job *j = w->data;
	struct srv_config sc = { 0 };

	j->r = cfg_load(&j->cfg, j->st->config_file, j->st->args, j->st->nargs, j->err,
			sizeof(j->err));
	if (j->r < 0)
		return;
	/* The data directory cannot change live: its self-signed pair is used. */
	srv_config_of(&j->cfg, j->st->cfg.data_dir, &sc);
	j->r = srv_tls_ctx(&sc, &j->ctx);
	if (j->r < 0)
		snprintf(j->err, sizeof(j->err), "cannot load the TLS certificate and key");
}

static void log_change(const char *name, const char *was, const char *now, bool live, void *ud)
{
	int *n = ud;

	(*n)++;
	if (live)
		log_info("reload: %s: %s -> %s", name, was, now);
	else
		log_warn("reload: %s: %s -> %s needs a restart; still %s until then", name, was,
			 now, was);
}

static void reload_done(uv_work_t *w, int status)
{
	struct reload_job *j = w->data;
	struct serve_state *st = j->st;
	int changes = 0;

	st->reloading = false;
	if (j->r < 0 || st->stopping) {
		if (j->r < 0)
			log_error("reload: %s; the running configuration stays", j->err);
		SSL_CTX_free(j->ctx);
		free(j);
		return;
	}
	cfg_diff(&st->cfg, &j->cfg, log_change, &changes);
	/* What needs a restart keeps its running value. */
	memcpy(j->cfg.listen, st->cfg.listen, sizeof(j->cfg.listen));
	memcpy(j->cfg.data_dir, st->cfg.data_dir, sizeof(j->cfg.data_dir));
	j->cfg.loops = st->cfg.loops;
	st->cfg = j->cfg;
	apply_limits(&st->cfg);
	for (unsigned i = 0; i < st->n_loops; i++) {
		struct loop_reload *lr = calloc(1, sizeof(*lr));

		if (!lr)
			continue;
		*lr = (struct loop_reload){ &st->loops[i], j->ctx,
					    (unsigned)st->cfg.browser_ping_s * 1000u };
		SSL_CTX_up_ref(j->ctx);
		if (loops_post(i, loop_reload, lr) < 0) {
			SSL_CTX_free(lr->ctx);
			free(lr);
		}
	}
	SSL_CTX_free(j->ctx);
	log_info(
		"reload: done (%d change(s)); TLS certificate reloaded from %s for new connections",
		changes, st->cfg.cert_file[0] ? st->cfg.cert_file : "the data directory");
	free(j);
}

static void on_sighup(uv_signal_t *h, int signum)
{
	struct serve_state *st = h->data;
	struct reload_job *j;

	if (st->stopping || st->reloading)
		return;
	log_info("received SIGHUP: reloading the configuration%s%s and the TLS certificate",
		 st->config_file ? " from " : "", st->config_file ? st->config_file : "");
	j = calloc(1, sizeof(*j));
	if (!j)
		return;
	j->st = st;
	j->work.data = j;
	st->reloading = true;
	if (uv_queue_work(loops_uv(0), &j->work, reload_work, reload_done) < 0) {
		st->reloading = false;
		free(j);
	}
}

static int ensure_dir(const char *dir)
{
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Hands the data directory (and what root created in it) to uid:gid, so
 * that the store, the vault key and the self-signed pair stay writable
 * after the switch. Only entries owned by root are changed, symbolic links
 * are never followed, and nothing below the first level is touched (the
 * directory holds no subdirectories). */
static int chown_data_dir(const char *dir, uid_t uid, gid_t gid)
{
	struct dirent *e;
	struct stat sb;
	DIR *d;
	int fd, r = 0;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) < 0 || (sb.st_uid == 0 && fchown(fd, uid, gid) < 0)) {
		r = -errno;
		close(fd);
		return r;
	}
	d = fdopendir(fd);
	if (!d) {
		r = -errno;
		close(fd);
		return r;
	}
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (fstatat(fd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(sb.st_mode) ||
		    sb.st_uid != 0)
			continue;
		if (fchownat(fd, e->d_name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0 && r == 0)
			r = -errno;
	}
	closedir(d);
	return r;
}

/* Runs once the listener is bound, the TLS key read and the store open:
 * nothing after this needs root. Started as root, switches to `want`
 * (server.user), or to "bastion" when that is empty and such an account
 * exists; "root" keeps root on purpose. Without a bastion account and
 * without a setting, root is kept with a loud warning (refusing would
 * break first runs on machines nobody prepared; the warning says how to
 * fix it). Started as another user, `want` must be empty or that user.
 * Returns 0 or a negative code with the reason in err. */
static int drop_privileges(const char *want, const char *data_dir, char *err, size_t errlen)
{
	const char *name = want[0] ? want : "bastion";
	struct passwd *pw;
	uid_t uid;
	gid_t gid;
	int r;

	if (geteuid() != 0) {
		pw = getpwuid(geteuid());
		if (want[0] && (!pw || strcmp(pw->pw_name, want) != 0)) {
			snprintf(err, errlen,
				 "server.user is '%s' but switching users needs bastion to be "
				 "started as root (it runs as %s)",
				 want, pw ? pw->pw_name : "another user");
			return -EPERM;
		}
		return 0;
	}
	if (strcmp(want, "root") == 0) {
		log_warn("running as root because server.user is root");
		return 0;
	}
	errno = 0;
	pw = getpwnam(name);
	if (!pw) {
		if (want[0]) {
			snprintf(err, errlen, "server.user: there is no user '%s'", want);
			return -ENOENT;
		}
		log_warn(
			"RUNNING AS ROOT: there is no user 'bastion' to switch to after binding. "
			"Create one (useradd --system --no-create-home bastion) or set server.user "
			"(--user NAME); set it to root to keep root on purpose");
		return 0;
	}
	uid = pw->pw_uid;
	gid = pw->pw_gid;
	if (uid == 0)
		return 0;
	if ((r = chown_data_dir(data_dir, uid, gid)) < 0) {
		snprintf(err, errlen, "cannot give the data directory %s to user %s: %s", data_dir,
			 name, strerror(-r));
		return r;
	}
	/* Groups first (they need root), then the group, then the user. */
	if (initgroups(name, gid) < 0 || setgid(gid) < 0 || setuid(uid) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot switch to user %s: %s", name, strerror(-r));
		return r;
	}
	if (setuid(0) == 0 || geteuid() != uid || getegid() != gid) {
		snprintf(err, errlen, "switching to user %s did not take", name);
		return -EPERM;
	}
	log_info("running as user %s (uid %u, gid %u); the data directory %s belongs to it", name,
		 (unsigned)uid, (unsigned)gid, data_dir);
	return 0;
}

static int cmd_serve(int argc, char **argv)
{
	enum { OPT_CONFIG = 1, OPT_CHECK, OPT_MASTER_KEY, OPT_HELP, OPT_KEY_BASE = 100 };
	struct option opts[40];
	size_t nopts = 0;
	struct srv_config cfg = { 0 };
	static struct serve_state st; /* the loops read it until they end */
	struct api_ctx api = { .instance_name = "bastion" };
	struct store *store = NULL;
	struct vault *vault = NULL;
	const char *master_key_file = NULL, *vault_reason = NULL;
	char *generated = NULL;
	const char *env_pw;
	char err[512];
	bool check = false;
	uv_loop_t *loop;
	int opt, r, port = 0, listener, closed_n = 0;

	opts[nopts++] = (struct option){ "config", required_argument, NULL, OPT_CONFIG };
	opts[nopts++] = (struct option){ "check-config", no_argument, NULL, OPT_CHECK };
	opts[nopts++] =
		(struct option){ "master-key-file", required_argument, NULL, OPT_MASTER_KEY };
	opts[nopts++] = (struct option){ "help", no_argument, NULL, OPT_HELP };
	for (size_t i = 0; i < cfg_nkeys() && nopts < sizeof(opts) / sizeof(opts[0]) - 1; i++)
		opts[nopts++] = (struct option){ cfg_key_flag(i), required_argument, NULL,
						 OPT_KEY_BASE + (int)i };
	opts[nopts] = (struct option){ 0 };
	st.config_file = getenv("BASTION_CONFIG");
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case OPT_CONFIG:
			st.config_file = optarg;
			break;
		case OPT_CHECK:
			check = true;
			break;
		case OPT_MASTER_KEY:
			master_key_file = optarg;
			break;
		case 'h':
		case OPT_HELP:
			usage(stdout);
			return 0;
		default:
			if (opt >= OPT_KEY_BASE && opt < OPT_KEY_BASE + (int)cfg_nkeys() &&
			    st.nargs < sizeof(st.args) / sizeof(st.args[0])) {
				st.args[st.nargs++] =
					(struct cfg_arg){ (size_t)(opt - OPT_KEY_BASE), optarg };
				break;
			}
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "bastion: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (st.config_file && !st.config_file[0])
		st.config_file = NULL;
	if (cfg_load(&st.cfg, st.config_file, st.args, st.nargs, err, sizeof(err)) < 0) {
		fprintf(stderr, "bastion: configuration: %s\n", err);
		return check ? 1 : 2;
	}
	if (check) {
		if (check_serve(&st.cfg, master_key_file) > 0)
			return 1;
		printf("bastion: configuration OK%s%s\n", st.config_file ? " in " : "",
		       st.config_file ? st.config_file
				      : " (no file; defaults, environment and flags)");
		return 0;
	}
	apply_log_settings(&st.cfg);
	srv_config_of(&st.cfg, st.cfg.data_dir, &cfg);
	if ((r = ensure_dir(cfg.data_dir)) < 0) {
		fprintf(stderr, "bastion: cannot create data directory %s: %s\n", cfg.data_dir,
			err_str(r));
		return 1;
	}
	/* Every audit record, whoever writes it, also goes to stderr (journald). */
	store_audit_to_stderr();
	{
		/* No half-working daemon on a backend that lacks functions:
		 * refused before the database is touched. */
		char missing[4096];

		if (store_url_check_complete(st.cfg.store_url, missing, sizeof(missing)) > 0) {
			fprintf(stderr,
				"bastion: the PostgreSQL store cannot run an instance yet; not yet"
				" available on it: %s\n",
				missing);
			return 1;
		}
	}
	if ((r = store_open_url(st.cfg.store_url, cfg.data_dir, &store)) < 0) {
		fprintf(stderr, "bastion: cannot open the store %s%s: %s\n",
			st.cfg.store_url[0] ? "(PostgreSQL)" : "in ",
			st.cfg.store_url[0] ? "" : cfg.data_dir, err_str(r));
		return 1;
	}
	if ((r = store_session_close_stale(store, store_now(), "bastion restarted", &closed_n)) < 0)
		log_warn("store: cannot close the sessions of the previous run: %s", err_str(r));
	else if (closed_n > 0)
		log_info(
			"store: %d session(s) of the previous run recorded as ended (bastion restarted)",
			closed_n);
	if ((r = vault_open(store, cfg.data_dir, master_key_file, &vault, &vault_reason)) < 0) {
		fprintf(stderr, "bastion: vault: %s (%s)\n", vault_reason, err_str(r));
		store_free(store);
		return 1;
	}
	api.vault = vault;
	env_pw = getenv("BASTION_ADMIN_PASSWORD");
	r = ident_bootstrap(store, env_pw, &generated);
	if (env_pw)
		unsetenv("BASTION_ADMIN_PASSWORD");
	if (r < 0) {
		fprintf(stderr, "bastion: cannot create the first account: %s%s\n", err_str(r),
			r == -EINVAL ? " (BASTION_ADMIN_PASSWORD needs at least 12 characters)"
				     : "");
		vault_free(vault);
		store_free(store);
		return 1;
	}
	if (generated) {
		printf("bastion: created the account 'admin' with password: %s\n"
		       "bastion: this password is shown once; change it after signing in.\n",
		       generated);
		fflush(stdout);
		util_free_secret(generated);
	}
	api.store = store;
	cfg.api = &api;

	/* The loops and their wake-ups first: they are in every loop's
	 * descriptor table (loops.h). The listening socket is loop 0's. */
	st.n_loops = loops_wanted(&st.cfg);
	st.listen_fd = -1;
	if ((r = loops_init(st.n_loops)) < 0 ||
	    (r = srv_listen(cfg.listen, &st.listen_fd, &port)) < 0 ||
	    (r = srv_tls_ctx(&cfg, &st.ctx)) < 0 || (r = term_init(store)) < 0) {
		fprintf(stderr, "bastion: cannot start: %s\n", err_str(r));
		goto fail;
	}
	loop = loops_uv(0);
	st.srv_cfg = &cfg;
	listener = st.listen_fd; /* loops_begin gives it to loop 0's server */
	if ((r = loops_begin(&st)) < 0) {
		fprintf(stderr, "bastion: cannot serve: %s\n", err_str(r));
		goto fail;
	}
	if ((r = drop_privileges(st.cfg.user, cfg.data_dir, err, sizeof(err))) < 0) {
		fprintf(stderr, "bastion: %s\n", err);
		goto fail;
	}
	/* No core file, and no other process of this user may attach with
	 * ptrace or read /proc/PID/mem (setuid resets the flag, so again after
	 * the switch). */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	apply_limits(&st.cfg);
	uv_signal_init(loop, &st.sigterm);
	uv_signal_init(loop, &st.sigint);
	uv_signal_init(loop, &st.sighup);
	uv_timer_init(loop, &st.deadline);
	st.sigterm.data = st.sigint.data = st.sighup.data = &st;
	st.deadline.data = &st;
	uv_signal_start(&st.sigterm, on_signal, SIGTERM);
	uv_signal_start(&st.sigint, on_signal, SIGINT);
	uv_signal_start(&st.sighup, on_sighup, SIGHUP);
	if ((r = loops_start(listener)) < 0) {
		/* Threads may run: no orderly way back. */
		log_error("cannot start the event loops: %s", err_str(r));
		_exit(1);
	}
	log_info("listening on https://%.*s:%d (%u event loop%s)",
		 (int)(strrchr(cfg.listen, ':') - cfg.listen), cfg.listen, port, st.n_loops,
		 st.n_loops == 1 ? "" : "s");
	loops_run(0);
	r = 0;
fail:
	/* Joins the loop threads; after a failure, closes what the loops hold
	 * (none of them ran). */
	loops_free();
	if (st.listen_fd >= 0)
		close(st.listen_fd);
	for (unsigned i = 0; i < st.n_loops; i++)
		srv_free(st.loops[i].srv);
	SSL_CTX_free(st.ctx);
	term_free();
	vault_free(vault);
	store_free(store);
	if (r < 0)
		return 1;
	log_info("stopped");
	return 0;
}

/* Each session holds two descriptors (browser and VM): a stock soft limit of
 * 1024 would cap an instance near 500 sessions. Take what the hard limit
 * allows. */
static void raise_fd_limit(void)
{
	struct rlimit lim;

	if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
		lim.rlim_cur = lim.rlim_max;
		setrlimit(RLIMIT_NOFILE, &lim);
	}
}

int main(int argc, char **argv)
{
	struct rlimit no_core = { 0, 0 };

	/* A core dump would hold passwords and keys in transit. */
	setrlimit(RLIMIT_CORE, &no_core);
	raise_fd_limit();
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0) {
		fprintf(stderr, "bastion: libsodium failed to initialise\n");
		return 1;
	}
	util_json_wipe_on_free();
	if (util_openssl_use_getrandom() < 0)
		fprintf(stderr,
			"bastion: OpenSSL keeps its own random generator (no RAND method hook)\n");
	/* Argon2id and store writes run on the pool; keep it small but not 1. */
	setenv("UV_THREADPOOL_SIZE", "4", 0);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "serve") == 0)
		return cmd_serve(argc - 1, argv + 1);
	/* `audit export` reads a data directory; `audit` alone is the API's. */
	if (strcmp(argv[1], "audit") == 0 && argc > 2 && strcmp(argv[2], "export") == 0)
		return api_audit_export_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "--version") == 0) {
		printf("bastion %s\n", BASTION_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	/* Everything else is a client command (login, user, group, ...). */
	return cli_main(argc, argv);
}
