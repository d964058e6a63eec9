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
#include "serve.h"
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
	      "  ssh VM [--bastion ID] [--port P] [-- SSH-ARGS...]\n"
	      "              the system's ssh to VM (/groups/G/vms/NAME) through the bastion\n"
	      "  proxy VM [--bastion ID] [--port P]\n"
	      "              stdin and stdout joined to a TCP stream to VM (for ProxyCommand)\n"
	      "  tunnel VM --port P --local-port L [--bind ADDR] [--bastion ID]\n"
	      "              forward local port L to VM's port P, many connections at once\n"
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
	      "  --instance-name NAME  this instance's name among those sharing a store\n"
	      "              (default HOSTNAME:PORT); --advertise-url URL: how they reach it\n"
	      "  --master-key-file FILE  the vault's master key (default DATA/master.key,\n"
	      "              32 random bytes created 0600 on first run)\n"
	      "environment:\n"
	      "  BASTION_ADMIN_PASSWORD  password of the first account, admin (first run only;\n"
	      "              at least 12 characters); without it one is generated and printed\n",
	      f);
}

static int cmd_serve(int argc, char **argv)
{
	enum { OPT_CONFIG = 1, OPT_CHECK, OPT_MASTER_KEY, OPT_HELP, OPT_KEY_BASE = 100 };
	struct option opts[40];
	size_t nopts = 0;
	/* The flags and the configuration, as serve.c keeps them. */
	static struct {
		struct cfg cfg;
		const char *config_file;
		struct cfg_arg args[32];
		size_t nargs;
	} st;
	const char *master_key_file = NULL;
	char err[512];
	bool check = false;
	int opt;

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
	return serve_run(&st.cfg, st.config_file, st.args, st.nargs, master_key_file);
}

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
		return cli_audit_export_main(argc - 1, argv + 1);
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
