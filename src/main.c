/* bastion: command dispatch. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <uv.h>

#include "api/api.h"
#include "core/err.h"
#include "core/log.h"
#include "core/util.h"
#include "identity/ident.h"
#include "server/srv.h"
#include "store/store.h"
#include "terminal/term.h"

#define VERSION "0.1.0"

static void usage(FILE *f)
{
	fputs("usage: bastion <command> [options]\n"
	      "\n"
	      "commands:\n"
	      "  serve       run a bastion instance (HTTPS portal, API and terminals)\n"
	      "  version     print the version\n"
	      "  help        this text\n"
	      "\n"
	      "bastion serve [--listen ADDR:PORT] [--data DIR] [--cert FILE --key FILE]\n"
	      "              [--log-level debug|info|warn|error]\n"
	      "  --listen    address to serve HTTPS on (default 0.0.0.0:8443)\n"
	      "  --data      state directory (default ./bastion-data), created 0700\n"
	      "  --cert/--key  TLS certificate chain and key in PEM; default: a self-signed\n"
	      "              pair generated into the data directory on first run\n"
	      "environment:\n"
	      "  BASTION_ADMIN_PASSWORD  password of the first account, admin (first run only;\n"
	      "              at least 12 characters); without it one is generated and printed\n", f);
}

struct serve_state {
	uv_loop_t *loop;
	struct srv *srv;
	uv_signal_t sigterm, sigint;
	bool stopping;
};

static void on_srv_stopped(void *ud)
{
	struct serve_state *st = ud;

	uv_close((uv_handle_t *)&st->sigterm, NULL);
	uv_close((uv_handle_t *)&st->sigint, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct serve_state *st = h->data;

	if (st->stopping)
		return;
	st->stopping = true;
	log_info("received %s: shutting down", signum == SIGTERM ? "SIGTERM" : "SIGINT");
	term_shutdown("the bastion is shutting down");
	srv_stop(st->srv, on_srv_stopped, st);
}

static int ensure_dir(const char *dir)
{
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int cmd_serve(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "data", required_argument, NULL, 'd' },
		{ "cert", required_argument, NULL, 'c' },
		{ "key", required_argument, NULL, 'k' },
		{ "log-level", required_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct srv_config cfg = { .listen = "0.0.0.0:8443", .data_dir = "bastion-data" };
	struct serve_state st = { 0 };
	struct api_ctx api = { .instance_name = "bastion" };
	struct store *store = NULL;
	char *generated = NULL;
	const char *env_pw;
	uv_loop_t loop;
	int opt, r;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'l': cfg.listen = optarg; break;
		case 'd': cfg.data_dir = optarg; break;
		case 'c': cfg.cert_file = optarg; break;
		case 'k': cfg.key_file = optarg; break;
		case 'v':
			if (strcmp(optarg, "debug") == 0) log_set_level(LOG_DEBUG);
			else if (strcmp(optarg, "info") == 0) log_set_level(LOG_INFO);
			else if (strcmp(optarg, "warn") == 0) log_set_level(LOG_WARN);
			else if (strcmp(optarg, "error") == 0) log_set_level(LOG_ERROR);
			else {
				fprintf(stderr, "bastion: unknown log level '%s'\n", optarg);
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!!cfg.cert_file != !!cfg.key_file) {
		fprintf(stderr, "bastion: --cert and --key go together\n");
		return 2;
	}
	if ((r = ensure_dir(cfg.data_dir)) < 0) {
		fprintf(stderr, "bastion: cannot create data directory %s: %s\n", cfg.data_dir, err_str(r));
		return 1;
	}
	if ((r = store_open(cfg.data_dir, &store)) < 0) {
		fprintf(stderr, "bastion: cannot open the store in %s: %s\n", cfg.data_dir, err_str(r));
		return 1;
	}
	env_pw = getenv("BASTION_ADMIN_PASSWORD");
	r = ident_bootstrap(store, env_pw, &generated);
	if (env_pw)
		unsetenv("BASTION_ADMIN_PASSWORD");
	if (r < 0) {
		fprintf(stderr, "bastion: cannot create the first account: %s%s\n", err_str(r),
			r == -EINVAL ? " (BASTION_ADMIN_PASSWORD needs at least 12 characters)" : "");
		store_free(store);
		return 1;
	}
	if (generated) {
		printf("bastion: created the account 'admin' with password: %s\n"
		       "bastion: this password is shown once; change it after signing in.\n", generated);
		fflush(stdout);
		util_free_secret(generated);
	}
	api.store = store;
	cfg.api = &api;

	uv_loop_init(&loop);
	st.loop = &loop;
	if ((r = srv_new(&loop, &cfg, &st.srv)) < 0) {
		uv_loop_close(&loop);
		store_free(store);
		return 1;
	}
	term_init(&loop, store);
	uv_signal_init(&loop, &st.sigterm);
	uv_signal_init(&loop, &st.sigint);
	st.sigterm.data = st.sigint.data = &st;
	uv_signal_start(&st.sigterm, on_signal, SIGTERM);
	uv_signal_start(&st.sigint, on_signal, SIGINT);
	log_info("listening on https://%.*s:%d", (int)(strrchr(cfg.listen, ':') - cfg.listen),
		 cfg.listen, srv_port(st.srv));
	uv_run(&loop, UV_RUN_DEFAULT);
	srv_free(st.srv);
	r = uv_loop_close(&loop);
	if (r < 0)
		log_warn("event loop closed with handles still open");
	store_free(store);
	log_info("stopped");
	return 0;
}

int main(int argc, char **argv)
{
	struct rlimit no_core = { 0, 0 };

	/* A core dump would hold passwords and keys in transit. */
	setrlimit(RLIMIT_CORE, &no_core);
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0) {
		fprintf(stderr, "bastion: libsodium failed to initialise\n");
		return 1;
	}
	/* Argon2id and store writes run on the pool; keep it small but not 1. */
	setenv("UV_THREADPOOL_SIZE", "4", 0);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "serve") == 0)
		return cmd_serve(argc - 1, argv + 1);
	if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("bastion %s\n", VERSION);
		return 0;
	}
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "bastion: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
