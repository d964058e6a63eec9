/* The access log (issue 19): one line at info per answered request, for
 * an operator's shipper — method, path, status, body bytes, duration in
 * milliseconds, principal ("-" when nobody signed in) and the source
 * address (the connection's recorded peer). JSON with log_format = json
 * (the fields under "fields"). The query string keeps its keys and drops
 * its values, no header is read, and every byte outside printable ASCII
 * becomes '?': a line never carries a secret and cannot forge another
 * line. */
#include "server/internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"

#define ACCESS_PATH_MAX 512

static atomic_bool enabled = true;

void srv_access_log_enable(bool on)
{
	atomic_store(&enabled, on);
}

void srv_conn_set_principal(struct srv_conn *c, const char *principal)
{
	util_strlcpy(c->principal, principal ? principal : "", sizeof(c->principal));
}

/* Appends s[0..n) to out (at *used, size bytes) with unsafe bytes as '?'. */
static void put_safe(char *out, size_t size, size_t *used, const char *s, size_t n)
{
	for (size_t i = 0; i < n && *used + 1 < size; i++) {
		unsigned char ch = (unsigned char)s[i];

		out[(*used)++] = ch > 0x20 && ch < 0x7f && ch != '"' && ch != '\\' ? (char)ch : '?';
	}
	out[*used] = '\0';
}

/* path, then "?k1&k2" — the query's keys without their values. A path
 * longer than the buffer ends in "...". */
static void path_of(const struct srv_request *req, char *out, size_t size)
{
	size_t used = 0;
	const char *q = req->query;

	out[0] = '\0';
	put_safe(out, size, &used, req->path ? req->path : "-", req->path ? strlen(req->path) : 1);
	for (bool first = true; q && *q; first = false) {
		size_t part = strcspn(q, "&"), key = strcspn(q, "=&");

		if (part > 0) {
			put_safe(out, size, &used, first ? "?" : "&", 1);
			put_safe(out, size, &used, q, key);
		}
		q += part;
		if (*q == '&')
			q++;
	}
	if (used + 1 >= size && size > 4)
		memcpy(out + size - 4, "...", 4);
}

void srv_access_log(const struct srv_conn *c, int status, size_t bytes)
{
	char path[ACCESS_PATH_MAX], st[8], len[24], ms[24], method[16];
	size_t used = 0;
	uint64_t dur = 0;

	if (!atomic_load(&enabled))
		return;
	if (c->req_start_ns)
		dur = (uv_hrtime() - c->req_start_ns) / 1000000u;
	path_of(&c->req, path, sizeof(path));
	method[0] = '\0';
	put_safe(method, sizeof(method), &used, c->req.method ? c->req.method : "-",
		 c->req.method ? strlen(c->req.method) : 1);
	snprintf(st, sizeof(st), "%d", status);
	snprintf(len, sizeof(len), "%zu", bytes);
	snprintf(ms, sizeof(ms), "%llu", (unsigned long long)dur);
	const char *kv[] = { "method",    method,
			     "path",      path,
			     "status",    st,
			     "bytes",     len,
			     "ms",        ms,
			     "principal", c->principal[0] ? c->principal : "-",
			     "source",    c->remote[0] ? c->remote : "-",
			     NULL };
	log_fields(LOG_INFO, kv, "access");
}
