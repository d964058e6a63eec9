/* The command-line client's pure parts: argument helpers, URL and path
 * building, table rendering, the config path and file, reading a line. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "cli/cli.h"
#include "cli/native.h"
#include "core/config.h"

/* Renders through fn into a string (caller frees). */
static char *render_table(const struct cli_column *cols, size_t n, const char *rows_json)
{
	json_t *rows = json_loads(rows_json, 0, NULL);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(rows);
	assert_non_null(f);
	assert_int_equal(cli_table(f, cols, n, rows), 0);
	fclose(f);
	json_decref(rows);
	return text;
}

static void no_trailing_spaces(const char *text)
{
	for (const char *p = strchr(text, '\n'); p; p = strchr(p + 1, '\n'))
		if (p > text)
			assert_true(p[-1] != ' ');
}

static void permissions_list(void **state)
{
	unsigned p = 0xff;

	assert_int_equal(cli_parse_permissions("list,get,set,delete", &p), 0);
	assert_int_equal(p, CLI_PERM_LIST | CLI_PERM_GET | CLI_PERM_SET | CLI_PERM_DELETE);
	assert_int_equal(cli_parse_permissions("delete,get", &p), 0);
	assert_int_equal(p, CLI_PERM_DELETE | CLI_PERM_GET);
	assert_int_equal(cli_parse_permissions("get", &p), 0);
	assert_int_equal(p, CLI_PERM_GET);
	assert_int_equal(cli_parse_permissions("use", &p), 0);
	assert_int_equal(p, CLI_PERM_USE);
	assert_int_equal(cli_parse_permissions("list,get,set,delete,use", &p), 0);
	assert_int_equal(p, CLI_PERM_LIST | CLI_PERM_GET | CLI_PERM_SET | CLI_PERM_DELETE |
				    CLI_PERM_USE);
	assert_int_equal(cli_parse_permissions("", &p), 0);
	assert_int_equal(p, 0u);

	p = 0xff;
	assert_int_equal(cli_parse_permissions("read", &p), -EINVAL);
	assert_int_equal(cli_parse_permissions("GET", &p), -EINVAL);
	assert_int_equal(cli_parse_permissions("get,get", &p), -EINVAL);
	assert_int_equal(cli_parse_permissions("get,", &p), -EINVAL);
	assert_int_equal(cli_parse_permissions(",get", &p), -EINVAL);
	assert_int_equal(cli_parse_permissions("get,,set", &p), -EINVAL);
	assert_int_equal(cli_parse_permissions(",", &p), -EINVAL);
	assert_int_equal(cli_parse_permissions("get, set", &p), -EINVAL);
	assert_int_equal(cli_parse_permissions("gets", &p), -EINVAL);
	assert_int_equal(cli_parse_permissions("ge", &p), -EINVAL);
	assert_int_equal(cli_parse_permissions(NULL, &p), -EINVAL);
	assert_int_equal(p, 0xffu); /* untouched on failure */

	assert_string_equal(cli_perm_name(CLI_PERM_LIST), "list");
	assert_string_equal(cli_perm_name(CLI_PERM_DELETE), "delete");
	assert_null(cli_perm_name(0));
	assert_null(cli_perm_name(CLI_PERM_GET | CLI_PERM_SET));
	assert_null(cli_perm_name(1u << CLI_PERM_COUNT));
}

static void parse_output_and_int(void **state)
{
	enum cli_output o = CLI_OUT_TABLE;
	long v = 0;

	assert_int_equal(cli_parse_output("json", &o), 0);
	assert_int_equal(o, CLI_OUT_JSON);
	assert_int_equal(cli_parse_output("table", &o), 0);
	assert_int_equal(o, CLI_OUT_TABLE);
	assert_int_equal(cli_parse_output("yaml", &o), -EINVAL);
	assert_int_equal(cli_parse_output("", &o), -EINVAL);

	assert_int_equal(cli_parse_int("2222", 1, 65535, &v), 0);
	assert_int_equal(v, 2222);
	assert_int_equal(cli_parse_int("0", 1, 65535, &v), -EINVAL);
	assert_int_equal(cli_parse_int("65536", 1, 65535, &v), -EINVAL);
	assert_int_equal(cli_parse_int("22x", 1, 65535, &v), -EINVAL);
	assert_int_equal(cli_parse_int(" 22", 1, 65535, &v), -EINVAL);
	assert_int_equal(cli_parse_int("", 1, 65535, &v), -EINVAL);
	assert_int_equal(cli_parse_int("99999999999999999999999", 1, 65535, &v), -EINVAL);
	assert_int_equal(v, 2222); /* untouched on failure */
}

static void url_is_https_only(void **state)
{
	char out[64];

	assert_int_equal(cli_url_normalize("https://127.0.0.1:8443", out, sizeof(out)), 0);
	assert_string_equal(out, "https://127.0.0.1:8443");
	assert_int_equal(cli_url_normalize("HTTPS://bastion.example//", out, sizeof(out)), 0);
	assert_string_equal(out, "https://bastion.example");
	assert_int_equal(cli_url_normalize("https://[::1]:8443/prefix/", out, sizeof(out)), 0);
	assert_string_equal(out, "https://[::1]:8443/prefix");
	assert_int_equal(cli_url_normalize("http://127.0.0.1:8443", out, sizeof(out)), -EINVAL);
	assert_int_equal(cli_url_normalize("127.0.0.1:8443", out, sizeof(out)), -EINVAL);
	assert_int_equal(cli_url_normalize("https://", out, sizeof(out)), -EINVAL);
	assert_int_equal(cli_url_normalize("https:///x", out, sizeof(out)), -EINVAL);
	assert_int_equal(cli_url_normalize("https://user:pw@host", out, sizeof(out)), -EINVAL);
	assert_int_equal(cli_url_normalize("https://host/?a=b", out, sizeof(out)), -EINVAL);
	assert_int_equal(cli_url_normalize("https://host/#x", out, sizeof(out)), -EINVAL);
	assert_int_equal(cli_url_normalize("https://ho st", out, sizeof(out)), -EINVAL);
	assert_int_equal(cli_url_normalize("https://host\r\nX: y", out, sizeof(out)), -EINVAL);
	assert_int_equal(
		cli_url_normalize("https://a-very-long-host-name-that-does-not-fit.example:8443/x",
				  out, 32),
		-E2BIG);
}

static void path_segments_are_escaped(void **state)
{
	char out[128], q[64];

	assert_int_equal(cli_path(out, sizeof(out), "groups", "prod", "vms", "web1", (char *)NULL),
			 0);
	assert_string_equal(out, "/groups/prod/vms/web1");
	/* A name can add neither a segment nor a query. */
	assert_int_equal(cli_path(out, sizeof(out), "groups", "a/b", "x?y#z", (char *)NULL), 0);
	assert_string_equal(out, "/groups/a%2Fb/x%3Fy%23z");
	assert_int_equal(cli_path(out, sizeof(out), "groups", "é %", (char *)NULL), 0);
	assert_string_equal(out, "/groups/%C3%A9%20%25");
	assert_int_equal(cli_path(out, sizeof(out), "groups", "..", (char *)NULL), 0);
	assert_string_equal(out, "/groups/..");
	assert_int_equal(cli_path(out, sizeof(out), "groups", "", (char *)NULL), -EINVAL);
	assert_string_equal(out, "");
	assert_int_equal(cli_path(out, 10, "groups", "long-name", (char *)NULL), -E2BIG);
	assert_int_equal(cli_path(out, 12, "groups", "/", (char *)NULL), 0);
	assert_string_equal(out, "/groups/%2F");
	assert_int_equal(cli_path(out, 12, "groups", "//", (char *)NULL), -E2BIG);

	assert_int_equal(cli_query_escape("/groups/g1", q, sizeof(q)), 0);
	assert_string_equal(q, "%2Fgroups%2Fg1");
	assert_int_equal(cli_query_escape("user:a&b=c", q, sizeof(q)), 0);
	assert_string_equal(q, "user%3Aa%26b%3Dc");
}

static void exit_codes(void **state)
{
	assert_int_equal(cli_exit_for_status(200), CLI_OK);
	assert_int_equal(cli_exit_for_status(204), CLI_OK);
	assert_int_equal(cli_exit_for_status(400), CLI_EAPI);
	assert_int_equal(cli_exit_for_status(403), CLI_EAPI);
	assert_int_equal(cli_exit_for_status(409), CLI_EAPI);
	assert_int_equal(cli_exit_for_status(401), CLI_EAUTH);
	assert_int_equal(cli_exit_for_status(404), CLI_ENOTFOUND);
	assert_int_equal(cli_exit_for_status(500), CLI_ESERVER);
	assert_int_equal(cli_exit_for_status(503), CLI_ESERVER);
	assert_int_equal(cli_exit_for_status(302), CLI_ECONN);
}

static void cells(void **state)
{
	char out[32];
	json_t *v;

	cli_cell(NULL, false, out, sizeof(out));
	assert_string_equal(out, "-");
	v = json_loads("[\"a\", 2, true, null]", 0, NULL);
	cli_cell(v, false, out, sizeof(out));
	assert_string_equal(out, "a,2,true,");
	cli_cell(v, true, out, sizeof(out));
	assert_string_equal(out, "4");
	json_decref(v);
	v = json_array();
	cli_cell(v, false, out, sizeof(out));
	assert_string_equal(out, "-");
	json_decref(v);
	/* Control characters (C0, DEL, C1) cannot drive the terminal. */
	v = json_string("a\x1b[31mb\x7f\xc2\x9b"
			"c\n");
	cli_cell(v, false, out, sizeof(out));
	assert_string_equal(out, "a?[31mb??c?");
	json_decref(v);
	/* Cut at a character boundary. */
	v = json_string("ééééé");
	cli_cell(v, false, out, 6);
	assert_string_equal(out, "éé");
	json_decref(v);
	v = json_string("   ");
	cli_cell(v, false, out, sizeof(out));
	assert_string_equal(out, "-");
	json_decref(v);
}

static void table_aligns_columns(void **state)
{
	static const struct cli_column cols[] = {
		{ "NAME", "name", false },
		{ "PREFIXES", "address_prefixes", false },
		{ "KEYS", "keys", true },
	};
	char *t = render_table(
		cols, 3,
		"[{\"name\":\"n1\",\"address_prefixes\":[\"198.18.0.0/24\",\"10.0.0.0/8\"],\"keys\":[]},"
		" {\"name\":\"network-two\",\"address_prefixes\":[],\"keys\":[\"a\",\"b\"]}]");

	assert_string_equal(t, "NAME         PREFIXES                  KEYS\n"
			       "n1           198.18.0.0/24,10.0.0.0/8  0\n"
			       "network-two  -                         2\n");
	no_trailing_spaces(t);
	free(t);

	t = render_table(cols, 3, "[]");
	assert_string_equal(t, "NAME  PREFIXES  KEYS\n");
	free(t);
}

static void table_width_counts_characters(void **state)
{
	static const struct cli_column cols[] = { { "A", "a", false }, { "B", "b", false } };
	char *t = render_table(cols, 2, "[{\"a\":\"é\",\"b\":\"x\"},{\"a\":\"ab\",\"b\":\"y\"}]");

	assert_string_equal(t, "A   B\né   x\nab  y\n");
	free(t);
}

static void table_refuses_non_arrays(void **state)
{
	static const struct cli_column cols[] = { { "A", "a", false } };
	json_t *o = json_object();

	assert_int_equal(cli_table(stdout, cols, 1, o), -EINVAL);
	json_decref(o);
}

static void object_table_lists_arrays_one_per_line(void **state)
{
	json_t *o =
		json_loads("{\"id\":\"/groups/g/vms/v\",\"ssh_port\":22,"
			   "\"host_keys\":[\"ssh-ed25519 AAAA1\",\"ssh-rsa BBBB2\"],\"none\":[]}",
			   0, NULL);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_int_equal(cli_object_table(f, o), 0);
	fclose(f);
	assert_string_equal(text, "PROPERTY   VALUE\n"
				  "id         /groups/g/vms/v\n"
				  "ssh_port   22\n"
				  "host_keys  ssh-ed25519 AAAA1\n"
				  "           ssh-rsa BBBB2\n"
				  "none       -\n");
	no_trailing_spaces(text);
	free(text);
	json_decref(o);
}

static void json_output_is_indented(void **state)
{
	json_t *v = json_loads("[{\"a\":1}]", 0, NULL);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_int_equal(cli_print_json(f, v), 0);
	fclose(f);
	assert_string_equal(text, "[\n  {\n    \"a\": 1\n  }\n]\n");
	free(text);
	json_decref(v);
}

static void error_line(void **state)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	cli_print_error(f, "InvalidRequest", "address_prefixes: bad\x1b]0;x\x07");
	fclose(f);
	assert_string_equal(text, "bastion: InvalidRequest: address_prefixes: bad?]0;x?\n");
	free(text);
}

/* Entries in dir other than "." and "..". */
static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static void config_path_follows_xdg(void **state)
{
	char out[256];
	char *old_xdg = getenv("XDG_CONFIG_HOME") ? strdup(getenv("XDG_CONFIG_HOME")) : NULL;
	char *old_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;

	setenv("XDG_CONFIG_HOME", "/tmp/xdg", 1);
	setenv("HOME", "/home/alice", 1);
	assert_int_equal(cli_config_path(out, sizeof(out)), 0);
	assert_string_equal(out, "/tmp/xdg/bastion/config.json");
	/* A relative XDG_CONFIG_HOME is ignored, as the XDG spec says. */
	setenv("XDG_CONFIG_HOME", "relative", 1);
	assert_int_equal(cli_config_path(out, sizeof(out)), 0);
	assert_string_equal(out, "/home/alice/.config/bastion/config.json");
	unsetenv("XDG_CONFIG_HOME");
	assert_int_equal(cli_config_path(out, sizeof(out)), 0);
	assert_string_equal(out, "/home/alice/.config/bastion/config.json");
	assert_int_equal(cli_config_path(out, 10), -E2BIG);

	if (old_xdg)
		setenv("XDG_CONFIG_HOME", old_xdg, 1);
	if (old_home)
		setenv("HOME", old_home, 1);
	else
		unsetenv("HOME");
	free(old_xdg);
	free(old_home);
}

static void config_round_trip_is_private(void **state)
{
	char dir[] = "/tmp/test_cli.XXXXXX", path[320], sub[256];
	struct cli_config in = { .url = "https://127.0.0.1:8443",
				 .token = "tok-secret",
				 .ca_file = "/x/ca.pem" };
	struct cli_config out = { 0 };
	bool loose = true;
	struct stat st;
	int fd;

	assert_non_null(mkdtemp(dir));
	snprintf(sub, sizeof(sub), "%s/cfg/bastion", dir);
	snprintf(path, sizeof(path), "%s/config.json", sub);
	assert_int_equal(cli_config_load(path, &out, &loose), -ENOENT);
	assert_int_equal(cli_config_save(path, &in), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(sub, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(cli_config_load(path, &out, &loose), 0);
	assert_false(loose);
	assert_string_equal(out.url, in.url);
	assert_string_equal(out.token, in.token);
	assert_string_equal(out.ca_file, in.ca_file);
	assert_false(out.insecure);
	cli_config_done(&out);

	/* Saving again replaces the file; no temporary file is left over. */
	in.ca_file = NULL;
	in.insecure = true;
	assert_int_equal(cli_config_save(path, &in), 0);
	assert_int_equal(cli_config_load(path, &out, &loose), 0);
	assert_null(out.ca_file);
	assert_true(out.insecure);
	cli_config_done(&out);
	assert_int_equal(count_entries(sub), 1);

	/* A file others may read loads, with a warning flag. */
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(cli_config_load(path, &out, &loose), 0);
	assert_true(loose);
	cli_config_done(&out);

	/* Not the expected JSON. */
	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "[1]", 3), 3);
	close(fd);
	assert_int_equal(cli_config_load(path, &out, &loose), -EINVAL);
	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	assert_int_equal(write(fd, "{\"token\":\"x\"}", 13), 13);
	close(fd);
	assert_int_equal(cli_config_load(path, &out, &loose), -EINVAL); /* no url */

	unlink(path);
	rmdir(sub);
	snprintf(sub, sizeof(sub), "%s/cfg", dir);
	rmdir(sub);
	rmdir(dir);
}

static void read_line_from_a_pipe(void **state)
{
	char buf[8];
	int p[2];

	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "secret\r\nnext\n", 13), 13);
	assert_int_equal(cli_read_line(p[0], buf, sizeof(buf)), 0);
	assert_string_equal(buf, "secret");
	assert_int_equal(cli_read_line(p[0], buf, sizeof(buf)), 0);
	assert_string_equal(buf, "next");
	assert_int_equal(write(p[1], "12345678\n", 9), 9);
	assert_int_equal(cli_read_line(p[0], buf, sizeof(buf)), -E2BIG);
	assert_int_equal(buf[0], '\0'); /* wiped */
	close(p[1]);
	/* What is left of the long line (its end), then end of input. */
	assert_int_equal(cli_read_line(p[0], buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	assert_int_equal(cli_read_line(p[0], buf, sizeof(buf)), -ENODATA);
	close(p[0]);

	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "no-newline", 10), 10);
	close(p[1]);
	{
		char big[32];

		assert_int_equal(cli_read_line(p[0], big, sizeof(big)), 0);
		assert_string_equal(big, "no-newline");
	}
	close(p[0]);
}

/* Each space-separated word of list is a whole word of text. */
static void assert_words_in(const char *text, const char *list, const char *what)
{
	char buf[1024];
	char *save = NULL;

	assert_true(strlen(list) < sizeof(buf));
	memcpy(buf, list, strlen(list) + 1);
	for (char *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		const char *p = text;
		bool found = false;
		size_t n = strlen(w);

		while ((p = strstr(p, w)) != NULL && !found) {
			char before = p == text ? ' ' : p[-1], after = p[n];

			found = strchr(" '(\t\n=", before) && strchr(" ')\n;:", after);
			p += n;
		}
		if (!found)
			fail_msg("%s: '%s' is not completed", what, w);
	}
}

static char *completion_text(const char *shell, const struct cli_command *cmds, size_t n)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	assert_int_equal(cli_completion_write(f, shell, cmds, n), 0);
	fclose(f);
	return text;
}

static void completion_offers_every_command(void **state)
{
	static const char *const shells[] = { "bash", "zsh" };
	/* A command added tomorrow: completed without another change. */
	static const struct cli_command extra[] = {
		{ "frobnicate", "twist turn", "--hard --output", "it's the future: soon" },
	};
	size_t n;
	const struct cli_command *cmds = cli_commands(&n);

	assert_true(n >= 17);
	assert_non_null(cli_command_find("session"));
	assert_non_null(cli_command_find("serve"));
	assert_null(cli_command_find("nosuch"));
	for (size_t s = 0; s < 2; s++) {
		char *text = completion_text(shells[s], cmds, n);

		for (size_t i = 0; i < n; i++) {
			assert_words_in(text, cmds[i].name, shells[s]);
			assert_words_in(text, cmds[i].subcommands, cmds[i].name);
			assert_words_in(text, cmds[i].flags, cmds[i].name);
		}
		/* serve's flags come from the configuration table. */
		for (size_t i = 0; i < cfg_nkeys(); i++) {
			char flag[80];

			snprintf(flag, sizeof(flag), "--%s", cfg_key_flag(i));
			assert_words_in(text, flag, "serve");
		}
		free(text);
		text = completion_text(shells[s], extra, 1);
		assert_words_in(text, "frobnicate twist turn --hard", shells[s]);
		if (s == 1) /* a quote and a colon in a description stay inside it */
			assert_non_null(strstr(text, "'frobnicate:it'\\''s the future\\: soon'"));
		free(text);
	}
	assert_int_equal(cli_completion_write(stdout, "fish", cmds, n), -EINVAL);
}

static void times_are_utc_text_in_tables(void **state)
{
	static const struct cli_column cols[] = {
		{ "ID", "id", false },
		{ "STARTED_AT", "started_at", false },
		{ "TIME", "ts", false },
	};
	char out[64], *t, *text = NULL;
	size_t len = 0;
	json_t *obj;
	FILE *f;

	cli_time_str(0, out, sizeof(out));
	assert_string_equal(out, "1970-01-01 00:00:00Z");
	cli_time_str(1796643353, out, sizeof(out));
	assert_string_equal(out, "2026-12-07 11:35:53Z");
	cli_time_str(-5, out, sizeof(out));
	assert_string_equal(out, "-5");
	assert_true(cli_is_time_key("created_at"));
	assert_true(cli_is_time_key("expires_at"));
	assert_true(cli_is_time_key("ts"));
	assert_false(cli_is_time_key("duration_s"));
	assert_false(cli_is_time_key("_at"));
	assert_false(cli_is_time_key("status"));
	/* Integers under a time key become dates; anything else stays. */
	t = render_table(cols, 3,
			 "[{\"id\":1796643353,\"started_at\":1796643353,\"ts\":86400},"
			 " {\"id\":2,\"started_at\":\"soon\",\"ts\":null}]");
	assert_string_equal(t, "ID          STARTED_AT            TIME\n"
			       "1796643353  2026-12-07 11:35:53Z  1970-01-02 00:00:00Z\n"
			       "2           soon                  -\n");
	free(t);
	/* show: the property table too. */
	obj = json_pack("{s:I, s:I}", "created_at", (json_int_t)1796643353, "count", (json_int_t)7);
	assert_non_null(obj);
	f = open_memstream(&text, &len);
	assert_non_null(f);
	assert_int_equal(cli_object_table(f, obj), 0);
	fclose(f);
	assert_string_equal(text, "PROPERTY    VALUE\n"
				  "created_at  2026-12-07 11:35:53Z\n"
				  "count       7\n");
	free(text);
	json_decref(obj);
}

/* The native client: a VM ID is /groups/{g}/vms/{name} and nothing else. */
static void native_vm_ids(void **state)
{
	char g[65], name[65];

	(void)state;
	assert_int_equal(cli_vm_split("/groups/g-1/vms/web.1_a", g, name), 0);
	assert_string_equal(g, "g-1");
	assert_string_equal(name, "web.1_a");
	static const char *const bad[] = {
		"",
		"groups/g/vms/a",
		"/groups/g/nics/a",
		"/groups//vms/a",
		"/groups/g/vms/",
		"/groups/g/vms/a/b",
		"/groups/g/vms/a b",
		"/groups/g/vms/a'b",
		"/groups/g/vms/a%b",
		"/groups/g/vms/"
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", /* 65 */
		NULL,
	};
	for (const char *const *b = bad; *b; b++)
		assert_int_equal(cli_vm_split(*b, g, name), -EINVAL);
	assert_int_equal(cli_vm_split(NULL, g, name), -EINVAL);
}

static void native_stream_path(void **state)
{
	struct cli_native_opts o = { .vm = "/groups/g/vms/web1" };
	char out[512];

	(void)state;
	assert_int_equal(cli_stream_path(&o, out, sizeof(out)), 0);
	assert_string_equal(out, "/groups/g/vms/web1/stream");
	o.port = 5432;
	assert_int_equal(cli_stream_path(&o, out, sizeof(out)), 0);
	assert_string_equal(out, "/groups/g/vms/web1/stream?port=5432");
	/* The bastion's ID is a query value: its slashes are encoded, and
	 * nothing in it can add a parameter. */
	o.bastion = "/groups/g/bastions/b1&port=1";
	assert_int_equal(cli_stream_path(&o, out, sizeof(out)), 0);
	assert_string_equal(out, "/groups/g/vms/web1/stream?port=5432&bastion=%2Fgroups%2Fg%2F"
				 "bastions%2Fb1%26port%3D1");
	o.port = 0;
	assert_int_equal(cli_stream_path(&o, out, sizeof(out)), 0);
	assert_string_equal(out, "/groups/g/vms/web1/stream?bastion=%2Fgroups%2Fg%2Fbastions%2Fb1%"
				 "26port%3D1");
	assert_int_equal(cli_stream_path(&o, out, 20), -E2BIG);
	o.vm = "/groups/g/vms/../x";
	assert_int_equal(cli_stream_path(&o, out, sizeof(out)), -EINVAL);
}

/* Two VMs with the same private IP never share a known_hosts entry: the
 * alias is the ID, and different IDs give different aliases. */
static void native_ssh_alias(void **state)
{
	char a[160], b[160];

	(void)state;
	assert_int_equal(cli_ssh_alias("/groups/g/vms/web1", a, sizeof(a)), 0);
	assert_string_equal(a, "bastion/groups/g/vms/web1");
	assert_int_equal(cli_ssh_alias("/groups/g2/vms/web1", b, sizeof(b)), 0);
	assert_string_not_equal(a, b);
	assert_int_equal(cli_ssh_alias("/groups/g/vms/web1", a, 10), -E2BIG);
	assert_int_equal(cli_ssh_alias("10.0.0.4", a, sizeof(a)), -EINVAL);
}

/* ProxyCommand goes through sh and through ssh's %-expansion. */
static void native_ssh_quote(void **state)
{
	char out[64];
	size_t n = 0;

	(void)state;
	assert_int_equal(cli_ssh_quote("/opt/my bin/bastion", out, sizeof(out), &n), 0);
	assert_string_equal(out, "'/opt/my bin/bastion'");
	n = 0;
	assert_int_equal(cli_ssh_quote("it's 100%", out, sizeof(out), &n), 0);
	assert_string_equal(out, "'it'\\''s 100%%'");
	n = 0;
	assert_int_equal(cli_ssh_quote("$(reboot)`x`", out, sizeof(out), &n), 0);
	assert_string_equal(out, "'$(reboot)`x`'");
	n = 0;
	assert_int_equal(cli_ssh_quote("0123456789", out, 8, &n), -E2BIG);
}

static void native_ssh_argv(void **state)
{
	struct cli_native_opts o = { .vm = "/groups/g/vms/web1" };
	char *extra[] = { "-l", "azureuser", "-L", "8080:localhost:80", "uptime", NULL };
	char **v;

	(void)state;
	assert_int_equal(cli_ssh_argv("/usr/bin/bastion", &o, extra, 5, &v), 0);
	assert_string_equal(v[0], "ssh");
	assert_string_equal(v[1], "-o");
	assert_string_equal(v[2], "ProxyCommand='/usr/bin/bastion' proxy '/groups/g/vms/web1'");
	assert_string_equal(v[3], "-o");
	assert_string_equal(v[4], "HostKeyAlias=bastion/groups/g/vms/web1");
	assert_string_equal(v[5], "web1");
	/* SSH-ARGS follow the destination, in order, untouched. */
	for (int i = 0; i < 5; i++)
		assert_ptr_equal(v[6 + i], extra[i]);
	assert_null(v[11]);
	cli_ssh_argv_free(v);

	o.bastion = "/groups/g/bastions/b1";
	o.port = 2222;
	assert_int_equal(cli_ssh_argv("bastion", &o, NULL, 0, &v), 0);
	assert_string_equal(v[2], "ProxyCommand='bastion' proxy '/groups/g/vms/web1' --bastion "
				  "'/groups/g/bastions/b1' --port 2222");
	assert_string_equal(v[5], "web1");
	assert_null(v[6]);
	cli_ssh_argv_free(v);

	o.vm = "web1";
	assert_int_equal(cli_ssh_argv("bastion", &o, NULL, 0, &v), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parse_output_and_int),
		cmocka_unit_test(permissions_list),
		cmocka_unit_test(url_is_https_only),
		cmocka_unit_test(path_segments_are_escaped),
		cmocka_unit_test(exit_codes),
		cmocka_unit_test(cells),
		cmocka_unit_test(table_aligns_columns),
		cmocka_unit_test(table_width_counts_characters),
		cmocka_unit_test(table_refuses_non_arrays),
		cmocka_unit_test(object_table_lists_arrays_one_per_line),
		cmocka_unit_test(json_output_is_indented),
		cmocka_unit_test(error_line),
		cmocka_unit_test(config_path_follows_xdg),
		cmocka_unit_test(config_round_trip_is_private),
		cmocka_unit_test(read_line_from_a_pipe),
		cmocka_unit_test(completion_offers_every_command),
		cmocka_unit_test(times_are_utc_text_in_tables),
		cmocka_unit_test(native_vm_ids),
		cmocka_unit_test(native_stream_path),
		cmocka_unit_test(native_ssh_alias),
		cmocka_unit_test(native_ssh_quote),
		cmocka_unit_test(native_ssh_argv),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
