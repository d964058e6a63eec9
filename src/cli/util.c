/* The pure parts of the command-line client: argument helpers, table and
 * JSON output, the config file and reading a password. Nothing here talks
 * to the network, so the unit tests drive all of it. */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "core/buf.h"
#include "core/file.h"
#include "core/util.h"

/* ---- arguments ------------------------------------------------------- */

int cli_parse_output(const char *s, enum cli_output *ret_out)
{
	if (strcmp(s, "table") == 0)
		*ret_out = CLI_OUT_TABLE;
	else if (strcmp(s, "json") == 0)
		*ret_out = CLI_OUT_JSON;
	else
		return -EINVAL;
	return 0;
}

int cli_parse_int(const char *s, long min, long max, long *ret_v)
{
	char *end;
	long v;

	if (!s || !*s || (*s != '-' && (*s < '0' || *s > '9')))
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*ret_v = v;
	return 0;
}

static const char *const perm_names[CLI_PERM_COUNT] = { "list", "get", "set", "delete", "use" };

const char *cli_perm_name(unsigned bit)
{
	for (unsigned i = 0; i < CLI_PERM_COUNT; i++)
		if (bit == 1u << i)
			return perm_names[i];
	return NULL;
}

int cli_parse_permissions(const char *s, unsigned *ret_perms)
{
	unsigned perms = 0;

	if (!s)
		return -EINVAL;
	for (const char *p = s; *p;) {
		size_t n = strcspn(p, ",");
		unsigned bit = 0;

		for (unsigned i = 0; i < CLI_PERM_COUNT; i++)
			if (strlen(perm_names[i]) == n && strncmp(p, perm_names[i], n) == 0)
				bit = 1u << i;
		/* Unknown, empty ("get,,set") or repeated: refuse rather than guess. */
		if (!bit || (perms & bit))
			return -EINVAL;
		perms |= bit;
		p += n;
		if (*p == ',' && *++p == '\0')
			return -EINVAL; /* a trailing comma */
	}
	*ret_perms = perms;
	return 0;
}

static bool unreserved(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

/* Appends s percent-encoded at out[*n], keeping room for the NUL. */
static int escape_into(const char *s, char *out, size_t size, size_t *n)
{
	static const char hex[] = "0123456789ABCDEF";

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		size_t need = unreserved(*p) ? 1 : 3;

		if (*n + need >= size)
			return -E2BIG;
		if (need == 1) {
			out[(*n)++] = (char)*p;
		} else {
			out[(*n)++] = '%';
			out[(*n)++] = hex[*p >> 4];
			out[(*n)++] = hex[*p & 15];
		}
	}
	return 0;
}

int cli_path(char *out, size_t size, ...)
{
	const char *seg;
	size_t n = 0;
	va_list ap;
	int r = 0;

	if (size == 0)
		return -E2BIG;
	va_start(ap, size);
	while ((seg = va_arg(ap, const char *))) {
		if (!*seg) {
			r = -EINVAL;
			break;
		}
		if (n + 1 >= size) {
			r = -E2BIG;
			break;
		}
		out[n++] = '/';
		if ((r = escape_into(seg, out, size, &n)) < 0)
			break;
	}
	va_end(ap);
	out[r < 0 ? 0 : n] = '\0';
	return r;
}

int cli_query_escape(const char *s, char *out, size_t size)
{
	size_t n = 0;
	int r;

	if (size == 0)
		return -E2BIG;
	r = escape_into(s, out, size, &n);
	out[r < 0 ? 0 : n] = '\0';
	return r;
}

int cli_url_normalize(const char *url, char *out, size_t size)
{
	static const char scheme[] = "https://";
	const char *host, *p;
	size_t len;

	if (strncasecmp(url, scheme, sizeof(scheme) - 1) != 0)
		return -EINVAL;
	host = url + sizeof(scheme) - 1;
	if (*host == '\0' || *host == '/' || *host == ':')
		return -EINVAL;
	for (p = host; *p; p++) {
		unsigned char ch = (unsigned char)*p;

		/* No userinfo, query, fragment, spaces or control characters:
		 * the URL names a server and, at most, a path prefix. */
		if (ch <= 0x20 || ch >= 0x7f || ch == '@' || ch == '?' || ch == '#' || ch == '\\')
			return -EINVAL;
	}
	len = strlen(url);
	while (len > sizeof(scheme) - 1 && url[len - 1] == '/')
		len--;
	if (len >= size)
		return -E2BIG;
	memcpy(out, scheme, sizeof(scheme) - 1);
	memcpy(out + sizeof(scheme) - 1, host, len - (sizeof(scheme) - 1));
	out[len] = '\0';
	return 0;
}

int cli_exit_for_status(long status)
{
	if (status >= 200 && status < 300)
		return CLI_OK;
	if (status == 401)
		return CLI_EAUTH;
	if (status == 404)
		return CLI_ENOTFOUND;
	if (status >= 400 && status < 500)
		return CLI_EAPI;
	if (status >= 300 && status < 400)
		return CLI_ECONN; /* a redirect: the URL does not point at a bastion */
	return CLI_ESERVER;
}

/* ---- cells and tables ------------------------------------------------ */

struct sbuf {
	char *p;
	size_t size, n;
	bool full;
};

/* Appends s with control characters (C0, DEL and the UTF-8 encoded C1
 * range) replaced by '?'; stops at a character boundary when full. */
static void sb_put(struct sbuf *sb, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p && !sb->full) {
		size_t len = 1;
		bool ctl = false;

		if (*p < 0x20 || *p == 0x7f) {
			ctl = true;
		} else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
			ctl = true;
			len = 2;
		} else if (*p >= 0xc0) {
			while (len < 4 && (p[len] & 0xc0) == 0x80)
				len++;
		}
		if (ctl) {
			if (sb->n + 1 >= sb->size) {
				sb->full = true;
				break;
			}
			sb->p[sb->n++] = '?';
		} else {
			if (sb->n + len >= sb->size) {
				sb->full = true;
				break;
			}
			memcpy(sb->p + sb->n, p, len);
			sb->n += len;
		}
		p += len;
	}
	sb->p[sb->n] = '\0';
}

static void put_scalar(struct sbuf *sb, const json_t *v)
{
	char num[64];
	char *dump;

	switch (json_typeof(v)) {
	case JSON_STRING:
		sb_put(sb, json_string_value(v));
		break;
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		sb_put(sb, num);
		break;
	case JSON_REAL:
		snprintf(num, sizeof(num), "%g", json_real_value(v));
		sb_put(sb, num);
		break;
	case JSON_TRUE:
		sb_put(sb, "true");
		break;
	case JSON_FALSE:
		sb_put(sb, "false");
		break;
	case JSON_NULL:
		break;
	default:
		dump = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		if (dump)
			sb_put(sb, dump);
		cli_json_free_text(dump);
		break;
	}
}

static void rtrim(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && s[n - 1] == ' ')
		s[--n] = '\0';
}

void cli_cell(const json_t *v, bool count, char *out, size_t size)
{
	struct sbuf sb = { .p = out, .size = size };
	char num[32];

	if (size == 0)
		return;
	out[0] = '\0';
	if (v && json_is_array(v)) {
		if (count) {
			snprintf(num, sizeof(num), "%zu", json_array_size(v));
			sb_put(&sb, num);
		} else {
			for (size_t i = 0; i < json_array_size(v); i++) {
				if (i > 0)
					sb_put(&sb, ",");
				put_scalar(&sb, json_array_get(v, i));
			}
		}
	} else if (v) {
		put_scalar(&sb, v);
	}
	rtrim(out);
	if (out[0] == '\0' && size >= 2)
		memcpy(out, "-", 2);
}

/* Terminal columns taken by s: UTF-8 code points (no wide-glyph table). */
static size_t text_width(const char *s)
{
	size_t w = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if ((*p & 0xc0) != 0x80)
			w++;
	return w;
}

struct grid {
	size_t ncols, nrows, cap; /* rows include the header */
	char **cells;
};

/* Appends one cell; the row count advances when a row is complete. */
static int grid_put(struct grid *g, size_t *filled, const char *text)
{
	size_t at = g->nrows * g->ncols + *filled;

	if (at >= g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 64;
		char **more;

		if (cap < g->cap)
			return -ENOMEM;
		more = reallocarray(g->cells, cap, sizeof(*more));
		if (!more)
			return -ENOMEM;
		g->cells = more;
		g->cap = cap;
	}
	if (!(g->cells[at] = strdup(text)))
		return -ENOMEM;
	if (++*filled == g->ncols) {
		g->nrows++;
		*filled = 0;
	}
	return 0;
}

static void grid_free(struct grid *g, size_t filled)
{
	for (size_t i = 0; i < g->nrows * g->ncols + filled; i++)
		free(g->cells[i]);
	free(g->cells);
}

static int grid_print(FILE *f, const struct grid *g)
{
	size_t *width = calloc(g->ncols, sizeof(*width));

	if (!width)
		return -ENOMEM;
	for (size_t r = 0; r < g->nrows; r++)
		for (size_t col = 0; col < g->ncols; col++) {
			size_t w = text_width(g->cells[r * g->ncols + col]);

			if (w > width[col])
				width[col] = w;
		}
	for (size_t r = 0; r < g->nrows; r++) {
		char **row = g->cells + r * g->ncols;
		size_t last = g->ncols;

		/* Pad only up to the last non-empty cell: no trailing spaces. */
		while (last > 0 && row[last - 1][0] == '\0')
			last--;
		for (size_t col = 0; col < last; col++) {
			fputs(row[col], f);
			if (col + 1 < last)
				fprintf(f, "%*s", (int)(width[col] - text_width(row[col]) + 2), "");
		}
		fputc('\n', f);
	}
	free(width);
	return ferror(f) ? -EIO : 0;
}

int cli_table(FILE *f, const struct cli_column *cols, size_t ncols, const json_t *rows)
{
	struct grid g = { .ncols = ncols };
	char *cell = NULL;
	size_t filled = 0;
	int r = -EINVAL;

	if (!json_is_array(rows) || ncols == 0)
		goto out;
	r = -ENOMEM;
	if (!(cell = malloc(CLI_CELL_MAX)))
		goto out;
	for (size_t col = 0; col < ncols; col++)
		if ((r = grid_put(&g, &filled, cols[col].header)) < 0)
			goto out;
	for (size_t i = 0; i < json_array_size(rows); i++) {
		const json_t *row = json_array_get(rows, i);

		for (size_t col = 0; col < ncols; col++) {
			cli_cell_of(cols[col].key,
				    json_is_object(row) ? json_object_get(row, cols[col].key)
							: NULL,
				    cols[col].count, cell, CLI_CELL_MAX);
			if ((r = grid_put(&g, &filled, cell)) < 0)
				goto out;
		}
	}
	r = grid_print(f, &g);
out:
	grid_free(&g, filled);
	free(cell);
	return r;
}

int cli_object_table(FILE *f, const json_t *obj)
{
	struct grid g = { .ncols = 2 };
	char *cell = NULL;
	size_t filled = 0;
	const char *key;
	json_t *v;
	int r = -EINVAL;

	if (!json_is_object(obj))
		goto out;
	r = -ENOMEM;
	if (!(cell = malloc(CLI_CELL_MAX)))
		goto out;
	if ((r = grid_put(&g, &filled, "PROPERTY")) < 0 || (r = grid_put(&g, &filled, "VALUE")) < 0)
		goto out;
	json_object_foreach ((json_t *)obj, key, v) {
		struct sbuf sb = { .p = cell, .size = CLI_CELL_MAX };
		size_t n = json_is_array(v) && json_array_size(v) > 0 ? json_array_size(v) : 1;

		for (size_t i = 0; i < n; i++) {
			sb.n = 0;
			sb.full = false;
			cell[0] = '\0';
			if (i == 0)
				sb_put(&sb, key);
			if ((r = grid_put(&g, &filled, cell)) < 0)
				goto out;
			cli_cell_of(key,
				    json_is_array(v) && json_array_size(v) > 0
					    ? json_array_get(v, i)
					    : v,
				    false, cell, CLI_CELL_MAX);
			if ((r = grid_put(&g, &filled, cell)) < 0)
				goto out;
		}
	}
	r = grid_print(f, &g);
out:
	grid_free(&g, filled);
	free(cell);
	return r;
}

void cli_json_free_text(char *s)
{
	json_free_t fn;

	if (!s)
		return;
	json_get_alloc_funcs(NULL, &fn);
	sodium_memzero(s, strlen(s));
	fn(s);
}

int cli_print_json(FILE *f, const json_t *v)
{
	if (json_dumpf(v, f, JSON_INDENT(2) | JSON_ENCODE_ANY) < 0)
		return -EIO;
	fputc('\n', f);
	return ferror(f) ? -EIO : 0;
}

void cli_print_error(FILE *f, const char *code, const char *message)
{
	char c[128], m[1024];
	struct sbuf sc = { .p = c, .size = sizeof(c) }, sm = { .p = m, .size = sizeof(m) };

	sb_put(&sc, code ? code : "Error");
	sb_put(&sm, message ? message : "");
	fprintf(f, "bastion: %s: %s\n", c, m);
}

/* ---- the config file ------------------------------------------------- */

int cli_config_path(char *out, size_t size)
{
	const char *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");
	struct passwd pw, *found = NULL;
	char pwbuf[4096];
	int n;

	if (xdg && xdg[0] == '/') {
		n = snprintf(out, size, "%s/bastion/config.json", xdg);
	} else {
		if (!home || home[0] != '/') {
			if (getpwuid_r(getuid(), &pw, pwbuf, sizeof(pwbuf), &found) != 0 ||
			    !found || !pw.pw_dir || pw.pw_dir[0] != '/')
				return -ENOENT;
			home = pw.pw_dir;
		}
		n = snprintf(out, size, "%s/.config/bastion/config.json", home);
	}
	if (n < 0 || (size_t)n >= size)
		return -E2BIG;
	return 0;
}

static int dup_field(const json_t *o, const char *key, char **ret)
{
	const json_t *v = json_object_get(o, key);

	*ret = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return -EINVAL;
	if (!(*ret = strdup(json_string_value(v))))
		return -ENOMEM;
	return 0;
}

int cli_config_load(const char *path, struct cli_config *ret_cfg, bool *ret_loose)
{
	struct cli_config cfg = { 0 };
	json_t *root = NULL;
	const json_t *ins;
	struct buf text;
	struct stat st = { 0 }; /* "-" (stdin) leaves it as is */
	int r;

	buf_init_secret(&text, CLI_CONFIG_MAX); /* holds the token */
	if ((r = file_read_st(path, 0, &text, &st)) < 0)
		goto out;
	r = -EINVAL;
	root = json_loadb(buf_str(&text), buf_len(&text), JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(root))
		goto out;
	if ((r = dup_field(root, "url", &cfg.url)) < 0 ||
	    (r = dup_field(root, "token", &cfg.token)) < 0 ||
	    (r = dup_field(root, "ca_file", &cfg.ca_file)) < 0)
		goto out;
	ins = json_object_get(root, "insecure");
	r = -EINVAL;
	if (ins && !json_is_boolean(ins))
		goto out;
	cfg.insecure = json_is_true(ins);
	if (!cfg.url)
		goto out;
	if (ret_loose)
		*ret_loose = (st.st_mode & 077) != 0;
	*ret_cfg = cfg;
	memset(&cfg, 0, sizeof(cfg));
	r = 0;
out:
	cli_config_done(&cfg);
	json_decref(root);
	buf_free(&text); /* wiped */
	return r;
}

int cli_write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int cli_config_save(const char *path, const struct cli_config *cfg)
{
	char dir[PATH_MAX];
	json_t *root = NULL;
	struct buf text;
	char *dumped = NULL, *slash;
	struct stat st;
	int r;

	buf_init_secret(&text, CLI_CONFIG_MAX); /* holds the token */
	if (util_strlcpy(dir, path, sizeof(dir)) < 0) {
		r = -E2BIG;
		goto out;
	}
	r = -EINVAL;
	if (!(slash = strrchr(dir, '/')) || slash == dir)
		goto out;
	*slash = '\0';
	if ((r = file_mkdir_p(dir, 0700)) < 0)
		goto out;
	/* The directory holds a credential: only its owner may look inside. */
	if (stat(dir, &st) < 0 || ((st.st_mode & 077) && chmod(dir, 0700) < 0)) {
		r = -errno;
		goto out;
	}
	r = -ENOMEM;
	root = json_pack("{s:s, s:o, s:o, s:b}", "url", cfg->url, "token",
			 cfg->token ? json_string(cfg->token) : json_null(), "ca_file",
			 cfg->ca_file ? json_string(cfg->ca_file) : json_null(), "insecure",
			 cfg->insecure);
	if (!root || !(dumped = json_dumps(root, JSON_INDENT(2))))
		goto out;
	if ((r = buf_append_str(&text, dumped)) < 0 || (r = buf_append_str(&text, "\n")) < 0)
		goto out;
	r = file_write_atomic(path, buf_str(&text), buf_len(&text), 0600, 0);
out:
	cli_json_free_text(dumped);
	json_decref(root);
	buf_free(&text); /* wiped */
	return r;
}

void cli_config_done(struct cli_config *cfg)
{
	free(cfg->url);
	if (cfg->token) {
		sodium_memzero(cfg->token, strlen(cfg->token));
		free(cfg->token);
	}
	free(cfg->ca_file);
	memset(cfg, 0, sizeof(*cfg));
}

/* ---- reading secrets ------------------------------------------------- */

int cli_read_line(int fd, char *buf, size_t size)
{
	size_t n = 0;
	bool any = false;
	char ch;

	if (size == 0)
		return -E2BIG;
	for (;;) {
		ssize_t got = read(fd, &ch, 1);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			int r = -errno;

			sodium_memzero(buf, size);
			return r;
		}
		if (got == 0) {
			if (!any)
				return -ENODATA;
			break;
		}
		any = true;
		if (ch == '\n')
			break;
		if (n + 1 >= size) {
			sodium_memzero(buf, size);
			sodium_memzero(&ch, sizeof(ch));
			return -E2BIG;
		}
		buf[n++] = ch;
	}
	sodium_memzero(&ch, sizeof(ch));
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return 0;
}

/* The terminal whose echo is off, for the signal handler to restore. */
static volatile sig_atomic_t tty_fd = -1;
static struct termios tty_saved;

static void restore_tty(int sig)
{
	if (tty_fd >= 0)
		tcsetattr(tty_fd, TCSAFLUSH, &tty_saved);
	signal(sig, SIG_DFL);
	raise(sig);
}

static int prompt(const char *text, bool echo, char *buf, size_t size)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
	struct sigaction sa = { .sa_handler = restore_tty }, old[4];
	struct termios t;
	int fd, r;

	fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -ENOTTY;
	if (!echo) {
		if (tcgetattr(fd, &tty_saved) < 0) {
			r = -ENOTTY;
			goto out;
		}
		sigemptyset(&sa.sa_mask);
		for (size_t i = 0; i < 4; i++)
			sigaction(sigs[i], &sa, &old[i]);
		tty_fd = fd;
		t = tty_saved;
		t.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK);
		t.c_lflag |= ECHONL | ICANON;
		if (tcsetattr(fd, TCSAFLUSH, &t) < 0) {
			r = -errno;
			goto restore;
		}
	}
	if ((r = cli_write_all(fd, text, strlen(text))) == 0)
		r = cli_read_line(fd, buf, size);
restore:
	if (!echo) {
		tcsetattr(fd, TCSAFLUSH, &tty_saved);
		tty_fd = -1;
		for (size_t i = 0; i < 4; i++)
			sigaction(sigs[i], &old[i], NULL);
	}
out:
	close(fd);
	return r;
}

int cli_prompt_secret(const char *text, char *buf, size_t size)
{
	return prompt(text, false, buf, size);
}

int cli_prompt_line(const char *text, char *buf, size_t size)
{
	return prompt(text, true, buf, size);
}
