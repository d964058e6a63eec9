/* The configuration loader: defaults, the INI file, BASTION_* variables and
 * flags, their precedence, and errors that name FILE:LINE. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/config.h"
#include "testutil.h"

static char dir[128];
static char path[256];
static char err[512];

static const char *write_file(const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static size_t key_index(const char *flag)
{
	for (size_t i = 0; i < cfg_nkeys(); i++)
		if (strcmp(cfg_key_flag(i), flag) == 0)
			return i;
	fail_msg("no flag --%s", flag);
	return 0;
}

static int setup(void **state)
{
	assert_non_null(tu_tmpdir(dir, sizeof(dir), "config"));
	snprintf(path, sizeof(path), "%s/bastion.conf", dir);
	unsetenv("BASTION_IDLE_TIMEOUT");
	unsetenv("BASTION_LISTEN");
	unsetenv("BASTION_MAX_SESSIONS");
	unsetenv("BASTION_ALLOWED_DESTINATIONS");
	unsetenv("BASTION_STORE");
	err[0] = '\0';
	return 0;
}

static int teardown(void **state)
{
	tu_rm_tree(dir);
	unsetenv("BASTION_IDLE_TIMEOUT");
	unsetenv("BASTION_LISTEN");
	unsetenv("BASTION_MAX_SESSIONS");
	unsetenv("BASTION_ALLOWED_DESTINATIONS");
	unsetenv("BASTION_STORE");
	return 0;
}

static void defaults(void **state)
{
	struct cfg c;

	assert_int_equal(cfg_load(&c, NULL, NULL, 0, err, sizeof(err)), 0);
	assert_string_equal(c.listen, "0.0.0.0:8443");
	assert_string_equal(c.data_dir, "bastion-data");
	assert_string_equal(c.log_level, "info");
	assert_string_equal(c.log_format, "text");
	assert_string_equal(c.cert_file, "");
	assert_int_equal(c.idle_timeout_s, 30 * 60);
	assert_int_equal(c.idle_warning_s, 60);
	assert_int_equal(c.max_duration_s, 8 * 3600);
	assert_int_equal(c.max_per_user, 64);
	assert_int_equal(c.max_total, 10000);
	assert_int_equal(c.drain_timeout_s, 10);
	assert_int_equal(c.ssh_keepalive_s, 15);
	assert_int_equal(c.browser_ping_s, 10);
	assert_string_equal(c.user, "");
}

/* The hardening keys (issue 8): liveness intervals and the account to
 * switch to; bounds are errors. */
static void liveness_and_user_keys(void **state)
{
	struct cfg c;

	write_file("[server]\nuser = bastion\n[sessions]\nssh_keepalive = 2s\nbrowser_ping = 0\n");
	assert_int_equal(cfg_load(&c, path, NULL, 0, err, sizeof(err)), 0);
	assert_string_equal(c.user, "bastion");
	assert_int_equal(c.ssh_keepalive_s, 2);
	assert_int_equal(c.browser_ping_s, 0);
	write_file("[sessions]\nssh_keepalive = 2h\n");
	assert_int_equal(cfg_load(&c, path, NULL, 0, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "ssh_keepalive"));
}

static void file_values_and_durations(void **state)
{
	struct cfg c;

	write_file("; a comment\n"
		   "[server]\n"
		   "listen = 127.0.0.1:9443\n"
		   "data = /var/lib/bastion\n"
		   "log_level = debug\n"
		   "log_format = json\n"
		   "drain_timeout = 2m\n"
		   "\n"
		   "[tls]\n"
		   "cert = /etc/bastion/cert.pem\n"
		   "key = /etc/bastion/key.pem\n"
		   "[sessions]\n"
		   "idle_timeout = 15m   ; inline comment\n"
		   "idle_warning = 30\n"
		   "max_duration = 1d\n"
		   "max_per_user = 3\n"
		   "max_total = 50\n");
	assert_int_equal(cfg_load(&c, path, NULL, 0, err, sizeof(err)), 0);
	assert_string_equal(c.listen, "127.0.0.1:9443");
	assert_string_equal(c.data_dir, "/var/lib/bastion");
	assert_string_equal(c.log_level, "debug");
	assert_string_equal(c.log_format, "json");
	assert_int_equal(c.drain_timeout_s, 120);
	assert_string_equal(c.cert_file, "/etc/bastion/cert.pem");
	assert_string_equal(c.key_file, "/etc/bastion/key.pem");
	assert_int_equal(c.idle_timeout_s, 900);
	assert_int_equal(c.idle_warning_s, 30);
	assert_int_equal(c.max_duration_s, 86400);
	assert_int_equal(c.max_per_user, 3);
	assert_int_equal(c.max_total, 50);
}

static void unknown_key_names_file_and_line(void **state)
{
	struct cfg c;

	cfg_defaults(&c);
	c.max_total = 77; /* untouched on failure */
	write_file("[sessions]\nmax_total = 5\n\nidle_timeot = 3s\n");
	assert_int_equal(cfg_load(&c, path, NULL, 0, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":4:"));
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "unknown key 'idle_timeot'"));
	assert_int_equal(c.max_total, 77);

	write_file("[server]\nlisten = 127.0.0.1:1\n[nope]\nx = 1\n");
	assert_int_equal(cfg_load(&c, path, NULL, 0, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":4: unknown section [nope]"));

	write_file("listen = 127.0.0.1:1\n");
	assert_int_equal(cfg_load(&c, path, NULL, 0, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":1: 'listen' is outside a section"));

	write_file("[server]\nthis line has no equals sign\n");
	assert_int_equal(cfg_load(&c, path, NULL, 0, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":2:"));
}

static void proxy_protocol_keys(void **state)
{
	struct cfg c;

	write_file("[server]\nproxy_protocol = v1\ntrusted_proxies = 10.0.0.10, fd00::/64\n");
	assert_int_equal(cfg_load(&c, path, NULL, 0, err, sizeof(err)), 0);
	assert_int_equal(cfg_proxy_versions(&c), 1);
	assert_string_equal(c.trusted_proxies, "10.0.0.10, fd00::/64");
	write_file("[server]\nproxy_protocol = any\ntrusted_proxies = 10.0.0.10\n");
	assert_int_equal(cfg_load(&c, path, NULL, 0, err, sizeof(err)), 0);
	assert_int_equal(cfg_proxy_versions(&c), 3);
	write_file("[server]\nproxy_protocol = v2\ntrusted_proxies = 10.0.0.10\n");
	assert_int_equal(cfg_load(&c, path, NULL, 0, err, sizeof(err)), 0);
	assert_int_equal(cfg_proxy_versions(&c), 2);
	/* off by default, with or without a list */
	write_file("[server]\ntrusted_proxies = 10.0.0.10\n");
	assert_int_equal(cfg_load(&c, path, NULL, 0, err, sizeof(err)), 0);
	assert_int_equal(cfg_proxy_versions(&c), 0);
}

static void bad_values_are_errors(void **state)
{
	static const char *const cases[][2] = {
		{ "[sessions]\nidle_timeout = soon\n",
		  ":2: [sessions] idle_timeout must be a duration" },
		{ "[sessions]\nidle_timeout = 5x\n",
		  ":2: [sessions] idle_timeout must be a duration" },
		{ "[sessions]\nmax_per_user = 0\n",
		  ":2: [sessions] max_per_user must be between 1" },
		{ "[sessions]\nmax_total = 12abc\n",
		  ":2: [sessions] max_total must be an integer" },
		{ "[server]\nlog_level = loud\n", ":2: [server] log_level must be debug" },
		{ "[server]\nlisten = 8443\n", ":2: [server] listen must be ADDR:PORT" },
		{ "[server]\nlisten = 1.2.3.4:70000\n", ":2: [server] listen must be ADDR:PORT" },
		{ "[server]\n\nlisten = 1.2.3.4:1\nlisten = 1.2.3.4:2\n",
		  ":4: [server] listen is set twice" },
		{ "[tls]\ncert = /x.pem\n", "tls.cert and tls.key go together" },
		{ "[server]\nlog_format = yaml\n", ":2: [server] log_format must be text or json" },
		{ "[server]\nlisten: 127.0.0.1:9743\n", ":2: write 'key = value'" },
		{ "[server]\n  log_level:debug\n", ":2: write 'key = value'" },
		{ "[sessions]\n# a comment: fine\nidle_timeout : 5s\n", ":3: write 'key = value'" },
		{ "[sessions]\nidle_timeout = 60s\nidle_warning = 60s\n",
		  "must be shorter than sessions.idle_timeout" },
		/* The PROXY protocol: a version, and never without the list of
		 * balancers it is believed from. */
		{ "[server]\nproxy_protocol = yes\n",
		  ":2: [server] proxy_protocol must be off, v1, v2 or any" },
		{ "[server]\nproxy_protocol = v2\n",
		  "server.proxy_protocol = v2 needs server.trusted_proxies" },
		{ "[server]\nproxy_protocol = any\ntrusted_proxies = 10.0.0.1/8\n",
		  ":3: [server] trusted_proxies" },
		{ "[server]\ntrusted_proxies = 10.0.0.1,,10.0.0.2\n",
		  ":2: [server] trusted_proxies" },
	};
	struct cfg c;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		write_file(cases[i][0]);
		assert_int_equal(cfg_load(&c, path, NULL, 0, err, sizeof(err)), -EINVAL);
		if (!strstr(err, cases[i][1]))
			fail_msg("case %zu: '%s' does not contain '%s'", i, err, cases[i][1]);
	}
}

static void overlong_line_is_an_error(void **state)
{
	char text[600];
	struct cfg c;

	snprintf(text, sizeof(text), "[tls]\ncert = /%0400d\nkey = /k\n", 0);
	write_file(text);
	assert_int_equal(cfg_load(&c, path, NULL, 0, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":2: line longer than"));
}

/* The file is read with a cap: one byte past CFG_MAX_FILE is refused
 * with a message that says so; a long file of comments under it loads. A
 * line that is long at the very end of the file (no newline) is still
 * named. */
static void file_size_is_capped(void **state)
{
	struct cfg c;
	FILE *f;

	for (int over = 0; over < 2; over++) {
		f = fopen(path, "w");
		assert_non_null(f);
		fputs("[server]\nlisten = 127.0.0.1:9443\n", f);
		for (long n = 32; n + 100 <= (long)CFG_MAX_FILE; n += 100)
			fprintf(f, "; %096d\n", 0);
		while (ftell(f) < (long)CFG_MAX_FILE - 1)
			fputc('\n', f);
		fputs(over ? "\n\n" : "\n", f);
		fclose(f);
		if (over) {
			assert_int_equal(cfg_load(&c, path, NULL, 0, err, sizeof(err)), -E2BIG);
			assert_non_null(strstr(err, "larger than"));
			assert_non_null(strstr(err, "bastion.conf"));
		} else {
			assert_int_equal(cfg_load(&c, path, NULL, 0, err, sizeof(err)), 0);
			assert_string_equal(c.listen, "127.0.0.1:9443");
		}
	}
	{
		char text[600];

		snprintf(text, sizeof(text), "[tls]\nkey = /k\ncert = /%0400d", 0);
		write_file(text);
		assert_int_equal(cfg_load(&c, path, NULL, 0, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, ":3: "));
	}
}

static void missing_file_is_an_error(void **state)
{
	struct cfg c;
	char nofile[300];

	snprintf(nofile, sizeof(nofile), "%s/absent.conf", dir);
	assert_int_equal(cfg_load(&c, nofile, NULL, 0, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "absent.conf"));
}

static void precedence_flags_env_file_default(void **state)
{
	struct cfg c;
	struct cfg_arg args[] = { { key_index("idle-timeout"), "5s" } };

	write_file("[sessions]\nidle_timeout = 40s\nidle_warning = 2s\nmax_total = 400\n"
		   "[server]\nlisten = 127.0.0.1:1000\n");
	/* file over default */
	assert_int_equal(cfg_load(&c, path, NULL, 0, err, sizeof(err)), 0);
	assert_int_equal(c.idle_timeout_s, 40);
	assert_int_equal(c.max_per_user, 64);
	/* environment over file */
	setenv("BASTION_IDLE_TIMEOUT", "20s", 1);
	setenv("BASTION_LISTEN", "127.0.0.1:2000", 1);
	assert_int_equal(cfg_load(&c, path, NULL, 0, err, sizeof(err)), 0);
	assert_int_equal(c.idle_timeout_s, 20);
	assert_string_equal(c.listen, "127.0.0.1:2000");
	assert_int_equal(c.max_total, 400);
	/* flags over environment */
	assert_int_equal(cfg_load(&c, path, args, 1, err, sizeof(err)), 0);
	assert_int_equal(c.idle_timeout_s, 5);
	assert_string_equal(c.listen, "127.0.0.1:2000");
	/* a bad environment value names the variable */
	setenv("BASTION_MAX_SESSIONS", "lots", 1);
	assert_int_equal(cfg_load(&c, path, args, 1, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "BASTION_MAX_SESSIONS"));
	unsetenv("BASTION_MAX_SESSIONS");
	/* a bad flag names the flag */
	args[0].value = "-3s";
	assert_int_equal(cfg_load(&c, path, args, 1, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--idle-timeout"));
}

struct seen {
	char names[8][64];
	bool live[8];
	int n;
};

static void on_diff(const char *name, const char *was, const char *now, bool live, void *ud)
{
	struct seen *s = ud;

	assert_true(s->n < 8);
	snprintf(s->names[s->n], sizeof(s->names[0]), "%s:%s>%s", name, was, now);
	s->live[s->n++] = live;
}

static void diff_tells_live_from_restart(void **state)
{
	struct cfg a, b;
	struct seen s = { 0 };

	cfg_defaults(&a);
	b = a;
	b.idle_timeout_s = 3;
	snprintf(b.listen, sizeof(b.listen), "127.0.0.1:9");
	cfg_diff(&a, &b, on_diff, &s);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.names[0], "server.listen:0.0.0.0:8443>127.0.0.1:9");
	assert_false(s.live[0]);
	assert_string_equal(s.names[1], "sessions.idle_timeout:1800s>3s");
	assert_true(s.live[1]);
}

/* network.allowed_destinations: the private ranges by default; file, env
 * and flag; a bad CIDR named with FILE:LINE, the variable or the flag;
 * SIGHUP applies it. */
static void allowed_destinations_key(void **state)
{
	struct cfg c, d;
	struct cfg_arg args[] = { { key_index("allowed-destinations"), "198.18.0.0/15" } };
	struct seen s = { 0 };
	static const char *const bad[] = {
		"10.0.0.1/8",  /* host bits */
		"10.0.0.0/33", /* prefix out of range */
		"10.0.0.0/8,", /* empty entry */
		",10.0.0.0/8", /* empty entry */
		"10.0.0.0/8,,fc00::/7",
		"",              /* nothing */
		"   ",           /* nothing */
		"010.0.0.0/8",   /* leading zero */
		"example.com/8", /* not an address */
		"fe80::1%eth0/64",
		"10.0.0.0/8 192.168.0.0/16", /* a space is not a separator */
	};

	assert_int_equal(cfg_load(&c, NULL, NULL, 0, err, sizeof(err)), 0);
	assert_string_equal(c.allowed_destinations,
			    "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7");
	write_file("[server]\nlisten = 127.0.0.1:1000\n"
		   "[network]\nallowed_destinations = 127.0.0.0/8, 198.18.0.0/15\n");
	assert_int_equal(cfg_load(&c, path, NULL, 0, err, sizeof(err)), 0);
	assert_string_equal(c.allowed_destinations, "127.0.0.0/8, 198.18.0.0/15");
	setenv("BASTION_ALLOWED_DESTINATIONS", "10.1.0.0/16", 1);
	assert_int_equal(cfg_load(&c, path, NULL, 0, err, sizeof(err)), 0);
	assert_string_equal(c.allowed_destinations, "10.1.0.0/16");
	assert_int_equal(cfg_load(&c, path, args, 1, err, sizeof(err)), 0);
	assert_string_equal(c.allowed_destinations, "198.18.0.0/15");
	setenv("BASTION_ALLOWED_DESTINATIONS", "10.1.0.1/16", 1);
	assert_int_equal(cfg_load(&c, path, NULL, 0, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "BASTION_ALLOWED_DESTINATIONS"));
	assert_non_null(strstr(err, "10.1.0.1/16"));
	unsetenv("BASTION_ALLOWED_DESTINATIONS");
	unsetenv("BASTION_STORE");
	args[0].value = "0.0.0.0/-1";
	assert_int_equal(cfg_load(&c, path, args, 1, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--allowed-destinations"));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[256], want[300];

		snprintf(text, sizeof(text),
			 "[server]\nlisten = 127.0.0.1:1000\n\n[network]\n"
			 "allowed_destinations = %s\n",
			 bad[i]);
		write_file(text);
		if (cfg_load(&c, path, NULL, 0, err, sizeof(err)) != -EINVAL)
			fail_msg("'%s' was accepted", bad[i]);
		snprintf(want, sizeof(want), "%s:5: [network] allowed_destinations", path);
		if (!strstr(err, want))
			fail_msg("'%s': %s", bad[i], err);
	}
	/* A running instance takes a new list on SIGHUP. */
	cfg_defaults(&c);
	d = c;
	snprintf(d.allowed_destinations, sizeof(d.allowed_destinations), "10.0.0.0/8");
	cfg_diff(&c, &d, on_diff, &s);
	assert_int_equal(s.n, 1);
	assert_non_null(strstr(s.names[0], "network.allowed_destinations:"));
	assert_true(s.live[0]);
}

/* [store] url: the file, BASTION_STORE and --store set it; anything but a
 * postgres:// URL is refused without quoting it back; shown (a reload's
 * diff, the log) with its password masked. */
static void store_url(void **state)
{
	static const char *const good[] = {
		"postgres://bastion:s3cret-pw@db.example:5432/bastion",
		"postgresql://bastion@127.0.0.1/b?password=s3cret-pw&sslmode=require",
	};
	struct cfg c;
	char shown[CFG_MAX_STR + 8];
	size_t k = key_index("store");
	struct cfg_arg args[] = { { k, "postgres://u:s3cret-pw@flag/db" } };

	(void)state;
	assert_int_equal(cfg_load(&c, NULL, NULL, 0, err, sizeof(err)), 0);
	assert_string_equal(c.store_url, "");
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char text[256];

		snprintf(text, sizeof(text), "[store]\nurl = %s\n", good[i]);
		write_file(text);
		assert_int_equal(cfg_load(&c, path, NULL, 0, err, sizeof(err)), 0);
		assert_string_equal(c.store_url, good[i]);
		cfg_value_str(&c, k, shown, sizeof(shown));
		assert_null(strstr(shown, "s3cret-pw"));
		assert_non_null(strstr(shown, "***"));
	}
	cfg_value_str(&c, k, shown, sizeof(shown));
	assert_string_equal(shown, "postgresql://bastion@127.0.0.1/b?password=***&sslmode=require");
	write_file("[store]\nurl = postgres://bastion:s3cret-pw@db.example:5432/bastion\n");
	assert_int_equal(cfg_load(&c, path, NULL, 0, err, sizeof(err)), 0);
	cfg_value_str(&c, k, shown, sizeof(shown));
	assert_string_equal(shown, "postgres://bastion:***@db.example:5432/bastion");

	setenv("BASTION_STORE", "postgresql://env/db", 1);
	assert_int_equal(cfg_load(&c, path, NULL, 0, err, sizeof(err)), 0);
	assert_string_equal(c.store_url, "postgresql://env/db");
	assert_int_equal(cfg_load(&c, path, args, 1, err, sizeof(err)), 0);
	assert_string_equal(c.store_url, "postgres://u:s3cret-pw@flag/db");

	setenv("BASTION_STORE", "mysql://u:s3cret-pw@h/db", 1);
	assert_int_equal(cfg_load(&c, path, NULL, 0, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "BASTION_STORE"));
	assert_null(strstr(err, "s3cret-pw"));
	unsetenv("BASTION_STORE");
}

/* [oidc]: the section, map rows (the key repeats), the URL rule (https,
 * or http on loopback only), auto_create as a boolean, and the keys that
 * go together. */
static void oidc_section(void **state)
{
	static const char *const bad_urls[] = {
		"http://op.example",    "http://127.0.0.1.evil.example/",
		"ftp://127.0.0.1/",     "https://",
		"http://localhostx:80", "127.0.0.1",
		"https://a b.example",
	};
	static const char *const good_urls[] = {
		"https://login.example.com/tenant/v2.0",
		"http://127.0.0.1:9000",
		"http://localhost/realms/x",
		"http://[::1]:8080/",
	};
	struct cfg c;
	char text[512];

	(void)state;
	assert_int_equal(cfg_load(&c, NULL, NULL, 0, err, sizeof(err)), 0);
	assert_string_equal(c.oidc_issuer, "");
	assert_string_equal(c.oidc_username_claim, "preferred_username");
	assert_int_equal(c.oidc_auto_create, 0);
	write_file("[oidc]\nissuer = https://op.example\nclient_id = b\n"
		   "redirect_url = https://bastion.example/api/v1/auth/oidc/callback\n"
		   "auto_create = true\ngroups_claim = groups\n"
		   "map = ops Reader /\nmap = admins Owner /, ops Contributor /groups/ops\n");
	assert_int_equal(cfg_load(&c, path, NULL, 0, err, sizeof(err)), 0);
	assert_int_equal(c.oidc_auto_create, 1);
	assert_string_equal(c.oidc_map, "ops Reader /,admins Owner /, ops Contributor /groups/ops");
	/* A variable replaces the file's rows. */
	setenv("BASTION_OIDC_MAP", "x Reader /", 1);
	assert_int_equal(cfg_load(&c, path, NULL, 0, err, sizeof(err)), 0);
	unsetenv("BASTION_OIDC_MAP");
	assert_string_equal(c.oidc_map, "x Reader /");
	write_file("[oidc]\nmap = ops Reader\n");
	assert_int_equal(cfg_load(&c, path, NULL, 0, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "GROUP ROLE SCOPE"));
	write_file("[oidc]\nmap = ops Reader groups/x\n");
	assert_int_equal(cfg_load(&c, path, NULL, 0, err, sizeof(err)), -EINVAL);
	write_file("[oidc]\nauto_create = maybe\n");
	assert_int_equal(cfg_load(&c, path, NULL, 0, err, sizeof(err)), -EINVAL);
	write_file("[oidc]\nissuer = https://op.example\n");
	assert_int_equal(cfg_load(&c, path, NULL, 0, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "client_id"));
	for (size_t i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++) {
		snprintf(text, sizeof(text), "[oidc]\nissuer = %s\n", bad_urls[i]);
		write_file(text);
		if (cfg_load(&c, path, NULL, 0, err, sizeof(err)) != -EINVAL)
			fail_msg("issuer %s was accepted", bad_urls[i]);
	}
	for (size_t i = 0; i < sizeof(good_urls) / sizeof(good_urls[0]); i++)
		if (!cfg_url_ok(good_urls[i]))
			fail_msg("%s was refused", good_urls[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(file_size_is_capped, setup, teardown),
		cmocka_unit_test_setup_teardown(file_values_and_durations, setup, teardown),
		cmocka_unit_test_setup_teardown(liveness_and_user_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(unknown_key_names_file_and_line, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_values_are_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(proxy_protocol_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(overlong_line_is_an_error, setup, teardown),
		cmocka_unit_test_setup_teardown(missing_file_is_an_error, setup, teardown),
		cmocka_unit_test_setup_teardown(precedence_flags_env_file_default, setup, teardown),
		cmocka_unit_test_setup_teardown(diff_tells_live_from_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(allowed_destinations_key, setup, teardown),
		cmocka_unit_test_setup_teardown(store_url, setup, teardown),
		cmocka_unit_test_setup_teardown(oidc_section, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
