/* The pure parts of session recordings (record.h): the asciicast v2 lines,
 * reading a recording back with every chunk verified (record_chunk.c
 * opens each), and search in what was shown. Any thread; nothing here
 * touches a loop. */
#include "terminal/record.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/err.h"
#include "store/store_rec.h"

/* ---------- asciicast v2 ---------- */

int rec_cast_header(struct buf *out, int width, int height, int64_t timestamp, const char *term)
{
	json_t *h = json_pack("{s:i,s:i,s:i,s:I,s:{s:s}}", "version", 2, "width", width, "height",
			      height, "timestamp", (json_int_t)timestamp, "env", "TERM",
			      term ? term : "xterm-256color");
	char *text = h ? json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	int r = -ENOMEM;

	json_decref(h);
	if (text) {
		r = buf_printf(out, "%s\n", text);
		free(text);
	}
	return r;
}

/* Escaped text goes out through a small staging area, not a call per byte. */
struct esc {
	struct buf *out;
	char tmp[4096];
	size_t n;
	int err;
};

static void esc_put(struct esc *e, const char *p, size_t n)
{
	if (e->n + n > sizeof(e->tmp)) {
		if (!e->err)
			e->err = buf_append(e->out, e->tmp, e->n);
		e->n = 0;
		if (n > sizeof(e->tmp)) { /* a long run goes straight through */
			if (!e->err)
				e->err = buf_append(e->out, p, n);
			return;
		}
	}
	memcpy(e->tmp + e->n, p, n);
	e->n += n;
}

/* The bytes that stand for themselves in a JSON string: printable ASCII
 * but '"' and '\\'. Runs of them are copied whole (most terminal output). */
static bool plain_byte(uint8_t c)
{
	return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
}

/* Whether all 8 bytes of v are plain_byte()s, a word at a time: the scan
 * for runs was most of a recording's CPU (BENCHMARKS.md "Recording").
 * Each test says whether some byte is below 0x20, has its top bit, or
 * equals 0x7f, '"' or '\\' (the has-zero-byte trick: no false "plain",
 * and a false "not plain" only sends the word to the byte loop). */
static bool word_plain(uint64_t v)
{
	const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
	uint64_t del = v ^ (ones * 0x7f), quote = v ^ (ones * '"'), bsl = v ^ (ones * '\\');
	uint64_t bad = ((v - ones * 0x20) & ~v) | v | ((del - ones) & ~del) |
		       ((quote - ones) & ~quote) | ((bsl - ones) & ~bsl);

	return (bad & high) == 0;
}

static void esc_ascii(struct esc *e, uint8_t c)
{
	char u[8];

	switch (c) {
	case '"':
		esc_put(e, "\\\"", 2);
		return;
	case '\\':
		esc_put(e, "\\\\", 2);
		return;
	case '\n':
		esc_put(e, "\\n", 2);
		return;
	case '\r':
		esc_put(e, "\\r", 2);
		return;
	case '\t':
		esc_put(e, "\\t", 2);
		return;
	}
	if (c < 0x20 || c == 0x7f) {
		snprintf(u, sizeof(u), "\\u%04x", c);
		esc_put(e, u, 6);
		return;
	}
	esc_put(e, (const char *)&c, 1);
}

/* The length of the UTF-8 sequence at p (n bytes there): L > 0 valid, 0
 * cut short by the end (all there so far is valid), -1 not UTF-8. */
static int utf8_seq(const uint8_t *p, size_t n)
{
	uint8_t c = p[0], lo = 0x80, hi = 0xbf;
	int len;

	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return -1;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	for (int i = 1; i < len; i++) {
		if ((size_t)i >= n)
			return 0;
		if (p[i] < (i == 1 ? lo : 0x80) || p[i] > (i == 1 ? hi : 0xbf))
			return -1;
	}
	return len;
}

static void esc_bytes(struct esc *e, const uint8_t *p, size_t n, uint8_t carry[4], size_t *ncarry)
{
	size_t i = 0;

	while (i < n) {
		size_t j = i;
		int l;

		for (uint64_t v; j + 8 <= n; j += 8) {
			memcpy(&v, p + j, 8);
			if (!word_plain(v))
				break;
		}
		while (j < n && plain_byte(p[j]))
			j++;
		if (j > i) {
			esc_put(e, (const char *)p + i, j - i);
			i = j;
			continue;
		}
		if (p[i] < 0x80) {
			esc_ascii(e, p[i++]);
			continue;
		}
		l = utf8_seq(p + i, n - i);
		if (l == 0 && carry) {
			/* Cut at the end of this read: the rest comes next time. */
			*ncarry = n - i;
			memcpy(carry, p + i, *ncarry);
			return;
		}
		if (l <= 0) {
			esc_put(e, "\xef\xbf\xbd", 3);
			i++;
			continue;
		}
		esc_put(e, (const char *)p + i, (size_t)l);
		i += (size_t)l;
	}
}

int rec_cast_event(struct buf *out, double t, char type, const uint8_t *data, size_t len,
		   uint8_t carry[4], size_t *ncarry)
{
	struct esc e = { .out = out };
	char head[64];
	size_t start = out->len;
	int n = snprintf(head, sizeof(head), "[%.6f, \"%c\", \"", t, type);

	esc_put(&e, head, (size_t)n);
	if (carry && *ncarry) {
		/* Complete the sequence the last read cut, then go on. */
		uint8_t joined[8];
		size_t have = *ncarry, take = len < 4 ? len : 4, used;
		int l;

		memcpy(joined, carry, have);
		memcpy(joined + have, data, take);
		*ncarry = 0;
		l = utf8_seq(joined, have + take);
		if (l > 0) {
			esc_put(&e, (const char *)joined, (size_t)l);
			used = (size_t)l - have;
		} else if (l == 0) {
			/* Still cut short: only possible when len is tiny. */
			memcpy(carry, joined, have + take);
			*ncarry = have + take;
			used = take;
		} else {
			esc_put(&e, "\xef\xbf\xbd", 3);
			esc_bytes(&e, joined + 1, have - 1, NULL, NULL);
			used = 0;
		}
		data += used;
		len -= used;
	}
	esc_bytes(&e, data, len, carry, ncarry);
	esc_put(&e, "\"]\n", 3);
	if (!e.err)
		e.err = buf_append(out, e.tmp, e.n);
	if (e.err)
		buf_truncate(out, start);
	return e.err;
}

/* ---------- reading back ---------- */

int rec_read(struct store *s, const struct store_rec *rec, const uint8_t key[REC_KEY_BYTES],
	     int (*fn)(const char *text, size_t len, void *ud), void *ud, const char **ret_why)
{
	uint8_t prev[STORE_REC_TAG_BYTES], tag[STORE_REC_TAG_BYTES], fin[STORE_REC_TAG_BYTES];
	struct rec_render render = { 0 };
	struct buf text, cast;
	uint8_t *data = NULL;
	size_t len = 0;
	int64_t seq;
	int r = 0;

	*ret_why = NULL;
	buf_init(&text, REC_CHUNK_PLAIN_MAX);
	buf_init(&cast, REC_RENDER_MAX);
	for (seq = 0;; seq++) {
		r = store_rec_chunk_get(s, rec->id, seq, &data, &len, tag);
		if (r == -ENOENT) {
			r = 0;
			break;
		}
		if (r < 0)
			goto out;
		r = rec_open_chunk(key, rec->id, seq, seq ? prev : NULL, data, len, tag, &text);
		free(data);
		data = NULL;
		if (r == -BERR_INTEGRITY || r == -E2BIG) {
			*ret_why = "a chunk of the recording was altered, removed or reordered";
			r = -BERR_INTEGRITY;
			goto out;
		}
		if (r < 0)
			goto out;
		memcpy(prev, tag, sizeof(prev));
		if (text.len && text.data[0] == REC_RAW_V1) {
			/* Raw events: rendered as asciicast here, on read. */
			r = rec_render_chunk(&render, (const uint8_t *)text.data, text.len, &cast);
			if (r == -BERR_INTEGRITY || r == -E2BIG) {
				*ret_why =
					"a chunk of the recording does not hold well-formed events";
				r = -BERR_INTEGRITY;
			}
			if (r == 0)
				r = fn(buf_str(&cast), buf_len(&cast), ud);
			buf_reset(&cast);
		} else {
			/* Asciicast text, as chunks were written before. */
			r = fn(buf_str(&text), buf_len(&text), ud);
		}
		buf_reset(&text);
		if (r != 0)
			goto out;
	}
	if (rec->has_final) {
		if ((r = rec_final_tag(key, rec->id, seq, seq ? prev : NULL, fin)) < 0)
			goto out;
		if (sodium_memcmp(fin, rec->final_tag, sizeof(fin)) != 0) {
			*ret_why = "chunks were removed from the end of the recording";
			r = -BERR_INTEGRITY;
		}
	} else if (strcmp(rec->state, "complete") == 0 || strcmp(rec->state, "truncated") == 0) {
		/* Its writer sealed the end of these; the seal is gone. */
		*ret_why = "the seal of the recording's end was removed";
		r = -BERR_INTEGRITY;
	}
	/* Not ended by its writer (still being written, failed, or interrupted
	 * when its instance stopped): it ends with the last chunk stored, each
	 * one verified, possibly none (rec_ends_early). */
out:
	buf_free(&text);
	buf_free(&cast);
	return r;
}

/* The time of the last event in cast text (whole lines): 0 when there is
 * none (the header alone). */
static double last_time(const char *text, size_t len)
{
	size_t end = len, start;
	json_t *ev;
	double t = 0;

	while (end > 0 && text[end - 1] == '\n')
		end--;
	start = end;
	while (start > 0 && text[start - 1] != '\n')
		start--;
	ev = json_loadb(text + start, end - start, JSON_ALLOW_NUL, NULL);
	if (json_is_array(ev) && json_is_number(json_array_get(ev, 0)))
		t = json_number_value(json_array_get(ev, 0));
	json_decref(ev);
	return t;
}

int rec_ends_early(const struct store_rec *rec, const char *text, size_t len, struct buf *out)
{
	char msg[STORE_REC_ERROR_SIZE + 64];
	double t = 0;
	int n, r = 0;

	if (strcmp(rec->state, "failed") != 0 && strcmp(rec->state, "interrupted") != 0)
		return 0;
	if (len)
		t = last_time(text, len);
	else
		r = rec_cast_header(out, 80, 24, rec->started_at, NULL);
	n = snprintf(msg, sizeof(msg), "the recording ends here (%s): %s", rec->state,
		     rec->error[0] ? rec->error : "its writer did not end it");
	if (r == 0)
		r = rec_cast_event(out, t, 'm', (const uint8_t *)msg, (size_t)n, NULL, NULL);
	return r;
}

/* ---------- search in what was shown ---------- */

#define LINE_MAX_CHARS 1000

enum esc_state { ES_NONE, ES_ESC, ES_CSI, ES_OSC, ES_OSC_ESC, ES_ONE };

struct rec_search {
	char *q;
	size_t max;
	json_t *hits;
	char line[LINE_MAX_CHARS + 1];
	size_t len, col;
	enum esc_state es;
	char csi[16];
	size_t ncsi;
	double hit_time; /* < 0: this line has no hit yet */
	double t;
	bool header_seen;
	struct buf partial; /* a cast line cut between two feeds */
};

int rec_search_new(const char *q, size_t max, struct rec_search **ret)
{
	struct rec_search *rs = calloc(1, sizeof(*rs));

	if (!rs || !(rs->q = strdup(q)) || !(rs->hits = json_array())) {
		rec_search_free(rs);
		return -ENOMEM;
	}
	rs->max = max;
	rs->hit_time = -1;
	buf_init(&rs->partial, REC_CHUNK_PLAIN_MAX);
	*ret = rs;
	return 0;
}

void rec_search_free(struct rec_search *rs)
{
	if (!rs)
		return;
	free(rs->q);
	json_decref(rs->hits);
	buf_free(&rs->partial);
	free(rs);
}

static void line_check(struct rec_search *rs)
{
	if (rs->hit_time >= 0 || !rs->q[0])
		return;
	rs->line[rs->len] = '\0';
	if (strcasestr(rs->line, rs->q))
		rs->hit_time = rs->t;
}

static void line_end(struct rec_search *rs)
{
	line_check(rs);
	if (rs->hit_time >= 0 && json_array_size(rs->hits) < rs->max) {
		rs->line[rs->len] = '\0';
		json_array_append_new(rs->hits, json_pack("{s:f,s:s%}", "time", rs->hit_time,
							  "line", rs->line, rs->len));
	}
	rs->len = rs->col = 0;
	rs->hit_time = -1;
}

static void put_char(struct rec_search *rs, char c)
{
	if (rs->col >= LINE_MAX_CHARS)
		return;
	while (rs->len < rs->col)
		rs->line[rs->len++] = ' ';
	rs->line[rs->col++] = c;
	if (rs->col > rs->len)
		rs->len = rs->col;
}

/* The end of a CSI sequence: only erasing in the line changes its text. */
static void csi_done(struct rec_search *rs, char final)
{
	if (final == 'K') {
		if (rs->ncsi == 0 || (rs->ncsi == 1 && rs->csi[0] == '0'))
			rs->len = rs->col < rs->len ? rs->col : rs->len;
		else if (rs->ncsi == 1 && rs->csi[0] == '2')
			rs->len = 0;
	} else if (final == 'G' || final == 'H') {
		/* Cursor moves within or across lines: start the column over. */
		rs->col = 0;
	}
}

static void screen_byte(struct rec_search *rs, uint8_t c)
{
	switch (rs->es) {
	case ES_ESC:
		rs->es = c == '['                 ? ES_CSI
			 : c == ']'               ? ES_OSC
			 : (c == '(' || c == ')') ? ES_ONE
						  : ES_NONE;
		rs->ncsi = 0;
		return;
	case ES_ONE:
		rs->es = ES_NONE;
		return;
	case ES_CSI:
		if (c >= 0x40 && c <= 0x7e) {
			csi_done(rs, (char)c);
			rs->es = ES_NONE;
		} else if (rs->ncsi < sizeof(rs->csi)) {
			rs->csi[rs->ncsi++] = (char)c;
		}
		return;
	case ES_OSC:
		if (c == 0x07)
			rs->es = ES_NONE;
		else if (c == 0x1b)
			rs->es = ES_OSC_ESC;
		return;
	case ES_OSC_ESC:
		rs->es = c == '\\' ? ES_NONE : ES_OSC;
		return;
	case ES_NONE:
		break;
	}
	switch (c) {
	case 0x1b:
		rs->es = ES_ESC;
		return;
	case '\n':
		line_end(rs);
		return;
	case '\r':
		rs->col = 0;
		return;
	case '\b':
		if (rs->col > 0)
			rs->col--;
		return;
	case '\t':
		do
			put_char(rs, ' ');
		while (rs->col % 8 && rs->col < LINE_MAX_CHARS);
		return;
	}
	if (c >= 0x20 && c != 0x7f)
		put_char(rs, (char)c);
}

static int search_line(struct rec_search *rs, const char *p, size_t n)
{
	json_t *ev, *data;
	const char *type, *s;

	if (!rs->header_seen) {
		rs->header_seen = true; /* the header: width, height, nothing shown */
		return 0;
	}
	ev = json_loadb(p, n, JSON_ALLOW_NUL, NULL); /* NUL is output too */
	type = json_string_value(json_array_get(ev, 1));
	data = json_array_get(ev, 2);
	if (!json_is_array(ev) || !json_is_number(json_array_get(ev, 0)) || !type ||
	    !json_is_string(data)) {
		json_decref(ev);
		return -EINVAL;
	}
	if (strcmp(type, "o") == 0) {
		rs->t = json_number_value(json_array_get(ev, 0));
		s = json_string_value(data);
		for (size_t i = 0; i < json_string_length(data); i++)
			screen_byte(rs, (uint8_t)s[i]);
		line_check(rs);
	}
	json_decref(ev);
	return 0;
}

int rec_search_feed(struct rec_search *rs, const char *text, size_t len)
{
	size_t i = 0;
	int r;

	while (i < len) {
		const char *nl = memchr(text + i, '\n', len - i);
		size_t n = nl ? (size_t)(nl - (text + i)) : len - i;

		if (!nl)
			return buf_append(&rs->partial, text + i, n);
		if (rs->partial.len) {
			if ((r = buf_append(&rs->partial, text + i, n)) < 0)
				return r;
			r = search_line(rs, buf_str(&rs->partial), buf_len(&rs->partial));
			buf_reset(&rs->partial);
		} else {
			r = search_line(rs, text + i, n);
		}
		if (r < 0)
			return r;
		i += n + 1;
	}
	return 0;
}

json_t *rec_search_finish(struct rec_search *rs)
{
	if (rs->len)
		line_end(rs);
	return json_incref(rs->hits);
}
