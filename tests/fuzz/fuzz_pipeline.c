/* Pipelining: a random sequence of valid requests, cut into TLS records at
 * random places, the records arriving in random groups, each request
 * answered at once (from inside the pump) or later (as a worker would).
 * Every request must be seen once, in order (issue 13 item 7). Runs the
 * server's real pump and parser (srv_pipeline_for_test), without TLS. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/internal.h"

#define MAX_REQS 24
#define MAX_RECS 512

struct check {
	int n, bad;
	const char *methods[MAX_REQS];
};

static void seen(void *ud, const char *method, const char *path)
{
	struct check *k = ud;
	char want[32];

	snprintf(want, sizeof(want), "/p%d", k->n);
	if (k->n >= MAX_REQS || strcmp(path, want) != 0 || strcmp(method, k->methods[k->n]) != 0)
		k->bad = 1;
	k->n++;
}

static uint8_t take(const uint8_t **data, size_t *size)
{
	uint8_t b;

	if (*size == 0)
		return 0;
	b = **data;
	(*data)++;
	(*size)--;
	return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const methods[] = { "GET", "POST", "HEAD", "PUT" };
	static char stream[MAX_REQS * 160];
	const uint8_t *recs[MAX_RECS];
	size_t lens[MAX_RECS], arrive[MAX_RECS];
	struct check k = { 0 };
	uint64_t async = 0;
	size_t len = 0, off = 0, n_recs = 0, n_arrive = 0;
	int n_reqs, r;

	for (int i = 0; i < 8; i++)
		async = async << 8 | take(&data, &size);
	n_reqs = 1 + take(&data, &size) % MAX_REQS;
	for (int i = 0; i < n_reqs; i++) {
		uint8_t b = take(&data, &size);
		const char *m = methods[b & 3];
		int body = (b >> 2) & 1 ? (b >> 3) : -1, chunked = body >= 0 && (b & 0x80);

		k.methods[i] = m;
		if (chunked && (body & 15) == 0)
			len += (size_t)snprintf(stream + len, sizeof(stream) - len,
						"%s /p%d HTTP/1.1\r\nHost: x\r\n"
						"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
						m, i);
		else if (chunked)
			len += (size_t)snprintf(
				stream + len, sizeof(stream) - len,
				"%s /p%d HTTP/1.1\r\nHost: x\r\n"
				"Transfer-Encoding: chunked\r\n\r\n%x\r\n%.*s\r\n0\r\n\r\n",
				m, i, body & 15, body & 15, "0123456789abcdef");
		else if (body >= 0)
			len += (size_t)snprintf(
				stream + len, sizeof(stream) - len,
				"%s /p%d HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%.*s", m,
				i, body & 15, body & 15, "0123456789abcdef");
		else
			len += (size_t)snprintf(stream + len, sizeof(stream) - len,
						"%s /p%d HTTP/1.1\r\nHost: x\r\n\r\n", m, i);
	}
	/* Records of random lengths (1..128 bytes), the last takes the rest. */
	while (off < len && n_recs < MAX_RECS - 1) {
		size_t l = 1 + take(&data, &size) % 128;

		if (size == 0)
			l = len - off;
		if (l > len - off)
			l = len - off;
		recs[n_recs] = (const uint8_t *)stream + off;
		lens[n_recs++] = l;
		off += l;
	}
	if (off < len) {
		recs[n_recs] = (const uint8_t *)stream + off;
		lens[n_recs++] = len - off;
	}
	for (size_t got = 0; got < n_recs;) {
		size_t a = 1 + take(&data, &size) % 8;

		arrive[n_arrive++] = a;
		got += a;
	}
	r = srv_pipeline_for_test(recs, lens, n_recs, arrive, n_arrive, async, seen, &k);
	if (r == -12 /* -ENOMEM */)
		return 0;
	if (r != n_reqs || k.n != n_reqs || k.bad)
		abort();
	return 0;
}
