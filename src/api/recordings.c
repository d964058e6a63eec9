/* Session recordings in the API (SPEC §8, docs/api.md "Recordings"):
 * GET /recordings (filters, paged like /audit), GET /recordings/{id},
 * its .cast and a search in what was shown; and, for a connect through a
 * recording bastion, the recording's ID and key (api_recording_prepare).
 *
 * Who may read one: Owner or Auditor ("recordings/read") at the bastion's
 * scope or above. Anyone else gets 404 for it and never sees it in a list:
 * nobody else learns that it exists. */
#include "api/api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "authz/authz.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/util.h"
#include "identity/ident.h"
#include "store/store.h"
#include "store/store_rec.h"
#include "terminal/record.h"
#include "terminal/term.h"
#include "vault/vault.h"

#define REC_DEFAULT_LIMIT 100
#define REC_MAX_LIMIT     1000
#define REC_SCAN_MAX      10000 /* rows looked at for one page of a list */
#define REC_SEARCH_HITS   1000
#define REC_SEARCH_Q_MAX  200
/* The .cast is built in memory: at most this much (recording.max_bytes
 * bounds what is written; this bounds what one request holds). */
#define REC_CAST_MAX (256LL * 1024 * 1024)

static void key_ad(char *out, size_t size, const char *id)
{
	snprintf(out, size, VAULT_AD_RECORDING "%s", id);
}

/* ---------- the connect ---------- */

int api_recording_prepare(struct api_call *c, const json_t *bastion, struct term_connect *tc)
{
	const char *mode = json_string_value(json_object_get(bastion, "recording"));
	uint8_t rnd[16], *w = NULL;
	char hex[33], ad[96];
	size_t wlen = 0;
	int r;

	if (!mode || strcmp(mode, "off") == 0)
		return 0;
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(hex, sizeof(hex), rnd, sizeof(rnd));
	snprintf(tc->rec_id, sizeof(tc->rec_id), "rec-%s", hex);
	util_strlcpy(tc->rec_mode, mode, sizeof(tc->rec_mode));
	randombytes_buf(tc->rec_key, sizeof(tc->rec_key));
	key_ad(ad, sizeof(ad), tc->rec_id);
	r = c->ctx->vault
		    ? vault_wrap(c->ctx->vault, ad, tc->rec_key, sizeof(tc->rec_key), &w, &wlen)
		    : -ENOSYS;
	if (r == 0 && wlen > sizeof(tc->rec_wrapped))
		r = -E2BIG;
	if (r < 0) {
		free(w);
		log_error("recording: cannot wrap the key of a recording: %s", err_str(r));
		api_error(c->resp, 503, "ServiceUnavailable",
			  "%s records its sessions, and the recording could not be prepared",
			  json_string_value(json_object_get(bastion, "id")) ?: "the bastion");
		return r;
	}
	memcpy(tc->rec_wrapped, w, wlen);
	tc->rec_wrapped_len = wlen;
	free(w);
	return 0;
}

/* ---------- who may read ---------- */

/* A small cache of the caller's answer per bastion, for one request. */
struct seen {
	char bastion[256];
	bool ok;
};

struct reader {
	struct api_call *c;
	struct seen seen[16];
	size_t n_seen;
};

/* 1 may read, 0 may not, < 0 a store error. */
static int may_read(struct reader *rd, const char *bastion)
{
	int r;

	for (size_t i = 0; i < rd->n_seen; i++)
		if (strcmp(rd->seen[i].bastion, bastion) == 0)
			return rd->seen[i].ok;
	r = authz_require_perm(rd->c->ctx->store, rd->c->who, AUTHZ_PERM_RECORDINGS_READ, bastion);
	if (r < 0 && r != -EACCES)
		return r;
	if (rd->n_seen < sizeof(rd->seen) / sizeof(rd->seen[0])) {
		util_strlcpy(rd->seen[rd->n_seen].bastion, bastion, sizeof(rd->seen[0].bastion));
		rd->seen[rd->n_seen++].ok = r == 0;
	}
	return r == 0;
}

static json_t *rec_json(const struct store_rec *rec)
{
	double dur = (double)rec->duration_ms / 1000.0;
	json_t *o;

	if (!rec->ended_at)
		dur = (double)(store_now() - rec->started_at);
	o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:o,s:f,s:I,s:I,s:s}", "id", rec->id,
		      "session", rec->session, "user", rec->user, "vm", rec->vm, "bastion",
		      rec->bastion, "instance", rec->instance, "mode", rec->mode, "started_at",
		      (json_int_t)rec->started_at, "ended_at",
		      rec->ended_at ? json_integer(rec->ended_at) : json_null(), "duration_s", dur,
		      "bytes", (json_int_t)rec->bytes, "stored_bytes", (json_int_t)rec->stored,
		      "state", rec->state);
	if (o && rec->error[0])
		json_object_set_new(o, "error", json_string(rec->error));
	return o;
}

/* Loads recording seg[1] for the caller: 0, or answered (404 when missing
 * or not the caller's to read, alike). */
static int load(struct api_call *c, struct store_rec *rec)
{
	struct reader rd = { .c = c };
	int r = store_rec_get(c->ctx->store, c->seg[1], rec);

	if (r == 0) {
		r = may_read(&rd, rec->bastion);
		if (r == 0)
			r = -ENOENT;
		else if (r == 1)
			return 0;
	}
	if (r == -ENOENT)
		api_error(c->resp, 404, "ResourceNotFound", "recording %.64s was not found",
			  c->seg[1]);
	else
		api_store_error(c->resp, r, "the recording");
	return r;
}

/* ---------- GET /recordings ---------- */

struct page {
	struct reader rd;
	json_t *arr;
	int limit, scanned;
	int64_t last_seq; /* the last row looked at */
	bool more;
	int err;
};

static int add_row(const struct store_rec *rec, int64_t seq, void *ud)
{
	struct page *p = ud;
	int r;

	if ((int)json_array_size(p->arr) == p->limit) {
		p->more = true;
		return 1;
	}
	p->scanned++;
	p->last_seq = seq;
	if ((r = may_read(&p->rd, rec->bastion)) < 0)
		return r;
	if (r == 1 && json_array_append_new(p->arr, rec_json(rec)) < 0)
		return -ENOMEM;
	return 0;
}

static int parse_pos(const char *v, int64_t *ret)
{
	char *e;
	long long n;

	errno = 0;
	n = strtoll(v, &e, 10);
	if (errno || *e || n <= 0 || !v[0])
		return -EINVAL;
	*ret = n;
	return 0;
}

/* The query string into f and p; 0, or answered 400. q is the copy the
 * filter's strings point into. */
static int parse_query(struct api_call *c, char *q, size_t qsize, struct store_rec_filter *f,
		       struct page *p)
{
	char *part, *rest;

	if (util_strlcpy(q, c->req->query ? c->req->query : "", qsize) < 0) {
		api_error(c->resp, 400, "InvalidRequest", "the query string is too long");
		return -EINVAL;
	}
	for (part = q; part; part = rest) {
		char *eq, *v;
		int64_t n;

		if ((rest = strchr(part, '&')))
			*rest++ = '\0';
		if (!part[0])
			continue;
		if (!(eq = strchr(part, '='))) {
			api_error(c->resp, 400, "InvalidRequest",
				  "query: '%.64s' is not name=value", part);
			return -EINVAL;
		}
		*eq = '\0';
		v = eq + 1;
		for (char *x = v; *x; x++)
			if (*x == '+')
				*x = ' ';
		if (util_pct_decode(part) < 0 || util_pct_decode(v) < 0) {
			api_error(c->resp, 400, "InvalidRequest", "query: bad percent-encoding");
			return -EINVAL;
		}
		if (strcmp(part, "user") == 0) {
			f->user = v;
		} else if (strcmp(part, "vm") == 0) {
			f->vm = v;
		} else if (strcmp(part, "bastion") == 0) {
			f->bastion = v;
		} else if (strcmp(part, "since") == 0 || strcmp(part, "until") == 0) {
			if (util_parse_time(v, part[0] == 's' ? &f->since : &f->until) < 0) {
				api_error(
					c->resp, 400, "InvalidRequest",
					"%s: unix seconds or a UTC time like 2025-01-31T12:00:00Z",
					part);
				return -EINVAL;
			}
		} else if (strcmp(part, "limit") == 0) {
			if (parse_pos(v, &n) < 0 || n > REC_MAX_LIMIT) {
				api_error(c->resp, 400, "InvalidRequest",
					  "limit: an integer from 1 to %d", REC_MAX_LIMIT);
				return -EINVAL;
			}
			p->limit = (int)n;
		} else if (strcmp(part, "cursor") == 0) {
			if (parse_pos(v, &f->before_seq) < 0) {
				api_error(c->resp, 400, "InvalidRequest",
					  "cursor: not a cursor from \"next\"");
				return -EINVAL;
			}
		} else {
			api_error(
				c->resp, 400, "InvalidRequest",
				"%.64s: unknown parameter (user, vm, bastion, since, until, limit, cursor)",
				part);
			return -EINVAL;
		}
	}
	return 0;
}

void api_recordings_list(struct api_call *c)
{
	struct store_rec_filter f = { 0 };
	struct page p = { .rd.c = c, .limit = REC_DEFAULT_LIMIT };
	char q[2048];
	int r = 0;

	if (parse_query(c, q, sizeof(q), &f, &p) < 0)
		return;
	if (!(p.arr = json_array())) {
		api_error(c->resp, 503, "ServiceUnavailable", "out of memory");
		return;
	}
	/* Rows the caller may not read are skipped, so a page is read in
	 * batches until it is full, the rows end, or REC_SCAN_MAX were seen
	 * (then "next" goes on from there). */
	for (;;) {
		int before = p.scanned;

		f.limit = 200;
		r = store_rec_query(c->ctx->store, &f, add_row, &p);
		if (r < 0 || p.more || p.scanned == before || p.scanned - before < 200)
			break;
		if (p.scanned >= REC_SCAN_MAX) {
			p.more = true;
			break;
		}
		f.before_seq = p.last_seq;
	}
	if (r < 0) {
		json_decref(p.arr);
		api_store_error(c->resp, r, "the recordings");
		return;
	}
	api_json_page(c->resp, p.arr, p.more, (long long)p.last_seq);
}

void api_recordings_get(struct api_call *c)
{
	struct store_rec rec;

	if (load(c, &rec) == 0)
		api_json(c->resp, 200, rec_json(&rec));
}

/* ---------- reading it back ---------- */

static int read_back(struct api_call *c, const struct store_rec *rec,
		     int (*fn)(const char *text, size_t len, void *ud), void *ud)
{
	uint8_t key[REC_KEY_BYTES];
	char ad[96];
	const char *why = NULL;
	size_t n = 0;
	int r;

	key_ad(ad, sizeof(ad), rec->id);
	r = c->ctx->vault ? vault_unwrap(c->ctx->vault, ad, rec->wrapped, rec->wrapped_len, key,
					 sizeof(key), &n)
			  : -ENOSYS;
	if (r == 0 && n != sizeof(key))
		r = -BERR_INTEGRITY;
	if (r < 0) {
		why = "its key does not open with this instance's master key";
	} else {
		r = rec_read(c->ctx->store, rec, key, fn, ud, &why);
	}
	sodium_memzero(key, sizeof(key));
	if (r == -BERR_INTEGRITY) {
		log_error("recording %s failed verification: %s", rec->id, why);
		api_error(c->resp, 500, "RecordingDamaged", "recording %s failed verification: %s",
			  rec->id, why);
	} else if (r == -E2BIG) {
		api_error(c->resp, 413, "RecordingTooLarge",
			  "recording %s is larger than one request may read (%lld bytes)", rec->id,
			  (long long)REC_CAST_MAX);
	} else if (r < 0) {
		api_store_error(c->resp, r, "the recording");
	}
	return r;
}

static int cast_chunk(const char *text, size_t len, void *ud)
{
	return buf_append(ud, text, len);
}

void api_recordings_cast(struct api_call *c)
{
	struct store_rec rec;
	struct buf out;

	if (load(c, &rec) < 0)
		return;
	buf_init(&out, (size_t)REC_CAST_MAX);
	if (read_back(c, &rec, cast_chunk, &out) == 0) {
		char disp[128];

		/* A recording that stopped before its session ended (failed,
		 * or its instance lost) says so at its end. */
		if (rec_ends_early(&rec, buf_str(&out), buf_len(&out), &out) < 0) {
			buf_free(&out);
			api_error(c->resp, 503, "ServiceUnavailable", "out of memory");
			return;
		}

		c->resp->status = 200;
		c->resp->raw = buf_take(&out, &c->resp->raw_len);
		c->resp->raw_type = "application/x-asciicast";
		snprintf(disp, sizeof(disp), "attachment; filename=\"%s.cast\"", rec.id);
		api_header(c->resp, "Content-Disposition", disp);
		if (!c->resp->raw)
			api_error(c->resp, 503, "ServiceUnavailable", "out of memory");
	}
	buf_free(&out);
}

static int search_chunk(const char *text, size_t len, void *ud)
{
	return rec_search_feed(ud, text, len);
}

void api_recordings_search(struct api_call *c)
{
	struct store_rec rec;
	struct rec_search *rs = NULL;
	char q[2048], *v = NULL;

	if (load(c, &rec) < 0)
		return;
	/* ?q=TEXT, the only parameter. */
	if (util_strlcpy(q, c->req->query ? c->req->query : "", sizeof(q)) == 0 &&
	    strncmp(q, "q=", 2) == 0 && !strchr(q, '&')) {
		v = q + 2;
		for (char *x = v; *x; x++)
			if (*x == '+')
				*x = ' ';
		if (util_pct_decode(v) < 0)
			v = NULL;
	}
	if (!v || !v[0] || strlen(v) > REC_SEARCH_Q_MAX) {
		api_error(c->resp, 400, "InvalidRequest", "q: the text to find, 1 to %d bytes",
			  REC_SEARCH_Q_MAX);
		return;
	}
	if (rec_search_new(v, REC_SEARCH_HITS, &rs) < 0) {
		api_error(c->resp, 503, "ServiceUnavailable", "out of memory");
		return;
	}
	if (read_back(c, &rec, search_chunk, rs) == 0)
		api_json(c->resp, 200, json_pack("{s:o}", "value", rec_search_finish(rs)));
	rec_search_free(rs);
}

/* ---------- GET /sessions/{id}/watch ---------- */

/* The live sessions' bastions on which the caller carries recordings/read
 * (Owner or Auditor), worked out here on the worker; the loop checks the
 * session's against them (term_watch_next). */
void api_sessions_watch(struct api_call *c)
{
	struct term_attach *ta;
	char **in_use = NULL;
	size_t n = 0;
	int r = 0;

	if (!api_session_ws_here(c, "a session may only be watched"))
		return;
	if (!(ta = calloc(1, sizeof(*ta))) || term_bastions_in_use(&in_use, &n) < 0) {
		free(ta);
		api_error(c->resp, 503, "ServiceUnavailable", "out of memory");
		return;
	}
	ta->user_id = c->who->user_id;
	util_strlcpy(ta->user, c->who->name, sizeof(ta->user));
	util_strlcpy(ta->session_id, c->seg[1], sizeof(ta->session_id));
	for (size_t i = 0; i < n; i++) {
		if (r == 0 || r == -EACCES)
			r = authz_require_perm(c->ctx->store, c->who, AUTHZ_PERM_RECORDINGS_READ,
					       in_use[i]);
		if (r == 0) {
			in_use[ta->n_owned++] = in_use[i];
			continue;
		}
		free(in_use[i]);
	}
	ta->owned = in_use;
	if (r < 0 && r != -EACCES) {
		term_attach_free(ta);
		api_store_error(c->resp, r, "the caller's roles");
		return;
	}
	c->resp->next = term_watch_next;
	c->resp->next_arg = ta;
	c->resp->status = 204; /* provisional: the loop answers */
}
