/* `bastion serve` once its flags are parsed (main.c): the store, the vault
 * and the first account, the event loops and their servers, the signals —
 * SIGTERM/SIGINT drain and stop, SIGHUP reloads the configuration and the
 * TLS pair — and the event-loop lag probe. Called by main.c (serve_run),
 * once. */
#include "serve.h"

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
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <uv.h>

#include "api/api.h"
#include "authz/dest.h"
#include "core/config.h"
#include "core/err.h"
#include "core/file.h"
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
#include "housekeep.h"
#include "privdrop.h"

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
	bool handing_over;       /* SIGTERM on a shared store: serving on, 503 on /healthz */
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
	housekeep_set(c);
	srv_access_log_enable(strcmp(c->access_log, "on") == 0);
	term_rec_configure(c->recording_max_bytes, c->recording_retention_days);
	/* Validated by cfg_load: the only failure would leave the running list. */
	if (authz_dest_set(c->allowed_destinations) < 0)
		log_error("network.allowed_destinations: cannot apply; the running list stays");
	srv_limits_set((unsigned)c->connections_per_address, (size_t)c->connections);
	/* Validated by cfg_load as well. */
	srv_proxy_set(cfg_proxy_versions(c), c->trusted_proxies);
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
	term_cluster_stop();
	uv_close((uv_handle_t *)&st->sigterm, NULL);
	uv_close((uv_handle_t *)&st->sigint, NULL);
	uv_close((uv_handle_t *)&st->sighup, NULL);
	uv_close((uv_handle_t *)&st->deadline, NULL);
	housekeep_stop();
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

/* The hand-over's end (a shared store): the drain proper, with a short
 * bound of its own. */
#define HANDOVER_FINAL_S 5

static void on_handover_end(uv_timer_t *t)
{
	struct serve_state *st = t->data;

	st->handing_over = false;
	log_info("drain: %llds passed: open sessions are told and closed (at most %ds more)",
		 (long long)st->cfg.drain_timeout_s, HANDOVER_FINAL_S);
	for_each_loop(st, loop_drain);
	if (!st->stopped)
		uv_timer_start(&st->deadline, on_deadline, HANDOVER_FINAL_S * 1000, 0);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct serve_state *st = h->data;

	if (st->stopping) {
		log_info("received %s again: closing every connection now", strsignal(signum));
		if (st->handing_over) /* the sessions are told first */
			for_each_loop(st, loop_drain);
		st->handing_over = false;
		for_each_loop(st, loop_stop);
		return;
	}
	st->stopping = true;
	term_cluster_set_draining();
	/* Several instances (SPEC §6): a rolling upgrade. /healthz answers 503
	 * at once and connects are refused, so that the balancer sends users
	 * to the others, while this instance's sessions go on until the drain
	 * timeout; then they are told and closed. */
	if (term_cluster_shared() && st->cfg.drain_timeout_s > 0) {
		st->handing_over = true;
		log_info("received %s: draining: /healthz answers 503 and new connects are refused;"
			 " open sessions go on for %llds, then are told and closed",
			 signum == SIGTERM ? "SIGTERM" : "SIGINT",
			 (long long)st->cfg.drain_timeout_s);
		uv_timer_start(&st->deadline, on_handover_end,
			       (uint64_t)st->cfg.drain_timeout_s * 1000, 0);
		return;
	}
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

/* A name of letters, digits and ".-_:", 1-127 bytes: shown in lists,
 * logs and audit details. */
static bool instance_name_ok(const char *n)
{
	size_t len = strlen(n);

	if (len == 0 || len > 127)
		return false;
	for (; *n; n++)
		if (!((*n >= 'a' && *n <= 'z') || (*n >= 'A' && *n <= 'Z') ||
		      (*n >= '0' && *n <= '9') || strchr(".-_:", *n)))
			return false;
	return true;
}

/* This instance in the store: its name (default HOSTNAME:PORT), the URL
 * the others reach it at (default from the listen address), its TLS
 * certificate's SHA-256; claimed now, renewed from loop 0. */
static int cluster_begin(struct serve_state *st, struct store *store, int port, char *err,
			 size_t errsize)
{
	char host[256] = "localhost", name[128], url[256], fp[72];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	X509 *x = SSL_CTX_get0_certificate(st->ctx);
	const char *colon = strrchr(st->cfg.listen, ':');
	size_t hlen = colon ? (size_t)(colon - st->cfg.listen) : 0;
	struct term_cluster_config cc;

	if (gethostname(host, sizeof(host)) < 0)
		util_strlcpy(host, "localhost", sizeof(host));
	host[sizeof(host) - 1] = '\0';
	if (st->cfg.instance_name[0])
		util_strlcpy(name, st->cfg.instance_name, sizeof(name));
	else
		snprintf(name, sizeof(name), "%.100s:%d", host, port);
	if (!instance_name_ok(name)) {
		snprintf(err, errsize,
			 "server.instance_name: 1-127 letters, digits and '.', '-', '_', ':' (got"
			 " '%.127s')",
			 name);
		return -EINVAL;
	}
	if (st->cfg.advertise_url[0])
		util_strlcpy(url, st->cfg.advertise_url, sizeof(url));
	else if (hlen == 0 || strncmp(st->cfg.listen, "0.0.0.0", hlen) == 0 ||
		 strncmp(st->cfg.listen, "[::]", hlen) == 0)
		snprintf(url, sizeof(url), "https://%.200s:%d", host, port);
	else
		snprintf(url, sizeof(url), "https://%.*s:%d", (int)(hlen > 200 ? 200 : hlen),
			 st->cfg.listen, port);
	fp[0] = '\0';
	if (x && X509_digest(x, EVP_sha256(), md, &mdlen) == 1)
		for (unsigned int i = 0; i < mdlen && 2 * i + 2 < sizeof(fp); i++)
			snprintf(fp + 2 * i, 3, "%02x", md[i]);
	cc = (struct term_cluster_config){ .name = name,
					   .advertise_url = url,
					   .cert_sha256 = fp,
					   .shared = store_url_is_pg(st->cfg.store_url) };
	return term_cluster_start(store, &cc, err, errsize);
}

static int ensure_dir(const char *dir)
{
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* The generated first password never reaches a log (journald keeps logs
 * for months, and ships them): on a terminal it is shown once on stderr;
 * otherwise (a service) it goes into DATA/initial-admin-password, mode
 * 0600, created exclusively, and the log says only where. */
static int tell_admin_password(const char *data_dir, const char *pw)
{
	char path[4096], text[128];
	int r, n;

	if (isatty(STDERR_FILENO)) {
		fprintf(stderr,
			"bastion: created the account 'admin' with password: %s\n"
			"bastion: this password is shown once; change it after signing in.\n",
			pw);
		return 0;
	}
	n = snprintf(text, sizeof(text), "%s\n", pw);
	if (snprintf(path, sizeof(path), "%s/" SERVE_ADMIN_PASSWORD_FILE, data_dir) >=
		    (int)sizeof(path) ||
	    n < 0 || n >= (int)sizeof(text)) {
		r = -ENAMETOOLONG;
	} else {
		/* Replaced, not appended to: a file left by an earlier first
		 * run (of a data directory since emptied) is not this password. */
		r = file_write_atomic(path, text, (size_t)n, 0600, 0);
	}
	sodium_memzero(text, sizeof(text));
	if (r < 0) {
		fprintf(stderr, "bastion: cannot write the first password to %s: %s\n", path,
			err_str(r));
		return r;
	}
	log_info("created the account 'admin'; its generated password is in %s (mode 0600):"
		 " sign in, change it, then delete the file",
		 path);
	return 0;
}

int serve_run(const struct cfg *loaded, const char *config_file, const struct cfg_arg *args,
	      size_t nargs, const char *master_key_file)
{
	struct srv_config cfg = { 0 };
	static struct serve_state st; /* the loops read it until they end */
	struct api_ctx api = { .instance_name = "bastion" };
	struct store *store = NULL;
	struct vault *vault = NULL;
	const char *vault_reason = NULL;
	char *generated = NULL;
	const char *env_pw;
	char err[512];
	uv_loop_t *loop;
	int r, port = 0, listener, closed_n = 0;

	st.cfg = *loaded;
	st.config_file = config_file;
	if (nargs > sizeof(st.args) / sizeof(st.args[0]))
		return 2;
	for (size_t i = 0; i < nargs; i++)
		st.args[i] = args[i];
	st.nargs = nargs;
	apply_log_settings(&st.cfg);
	srv_config_of(&st.cfg, st.cfg.data_dir, &cfg);
	if ((r = ensure_dir(cfg.data_dir)) < 0) {
		fprintf(stderr, "bastion: cannot create data directory %s: %s\n", cfg.data_dir,
			err_str(r));
		return 1;
	}
	/* Every audit record, whoever writes it, also goes to stderr (journald). */
	store_audit_to_stderr();
	if ((r = store_open_url(st.cfg.store_url, cfg.data_dir, &store)) < 0) {
		fprintf(stderr, "bastion: cannot open the store %s%s: %s\n",
			st.cfg.store_url[0] ? "(PostgreSQL)" : "in ",
			st.cfg.store_url[0] ? "" : cfg.data_dir, err_str(r));
		return 1;
	}
	/* On SQLite every session without an end is this data directory's;
	 * on a shared store only those of this instance's name are (ended
	 * when it claims its name, term_cluster_start). */
	if (store_url_is_pg(st.cfg.store_url))
		closed_n = 0;
	else if ((r = store_session_close_stale(store, store_now(), "bastion restarted",
						&closed_n)) < 0)
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
	api.require_mfa = loaded->require_mfa != 0; /* auth.require_mfa (api/mfa.c) */
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
		r = tell_admin_password(cfg.data_dir, generated);
		util_free_secret(generated);
		if (r < 0) {
			vault_free(vault);
			store_free(store);
			return 1;
		}
	}
	api.store = store;
	/* [oidc]: read now, before privileges are dropped (the client secret
	 * file may be root's). */
	if (api_oidc_setup(&api, &st.cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "bastion: %s\n", err);
		vault_free(vault);
		store_free(store);
		return 1;
	}
	cfg.on_request = api_on_request;
	cfg.ud = &api;

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
	if ((r = cluster_begin(&st, store, port, err, sizeof(err))) < 0) {
		fprintf(stderr, "bastion: %s\n", err);
		goto fail;
	}
	api.instance_name = term_instance_name();
	metrics_set_instance(api.instance_name);
	loop = loops_uv(0);
	st.srv_cfg = &cfg;
	listener = st.listen_fd; /* loops_begin gives it to loop 0's server */
	if ((r = loops_begin(&st)) < 0) {
		fprintf(stderr, "bastion: cannot serve: %s\n", err_str(r));
		goto fail;
	}
	if ((r = privdrop_to_user(st.cfg.user, cfg.data_dir, err, sizeof(err))) < 0) {
		fprintf(stderr, "bastion: %s\n", err);
		goto fail;
	}
	/* No core file, and no other process of this user may attach with
	 * ptrace or read /proc/PID/mem (setuid resets the flag, so again after
	 * the switch). */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	/* The heartbeat's thread opens store connections of its own: only
	 * once the data directory and the process are the service user's. */
	if ((r = term_cluster_run()) < 0) {
		fprintf(stderr, "bastion: cannot start the instance's heartbeat: %s\n", err_str(r));
		goto fail;
	}
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
	if ((r = housekeep_start(loop, store, &st.cfg)) < 0)
		log_warn("housekeeping (retention) is off: %s", err_str(r));
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
	/* The heartbeat's thread first (it posts to loop 0, which has closed
	 * by now), and this instance's row. */
	term_cluster_leave();
	/* Joins the loop threads; after a failure, closes what the loops hold
	 * (none of them ran). */
	loops_free();
	if (st.listen_fd >= 0)
		close(st.listen_fd);
	for (unsigned i = 0; i < st.n_loops; i++)
		srv_free(st.loops[i].srv);
	SSL_CTX_free(st.ctx);
	term_free();
	api_oidc_free(&api);
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
