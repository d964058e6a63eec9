/* The PROXY protocol header parser (server/proxyproto.h): no crash on any
 * bytes, and the incremental contract the socket side relies on: a
 * complete header's length is within the input and the bounds, every
 * shorter prefix of it asks for more, and a prefix that asks for more is
 * never past PP_MAX. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/proxyproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pp_header h;
	unsigned versions = size ? (data[0] & 3u) : 0;
	int r;

	if (size == 0)
		return 0;
	data++, size--;
	r = pp_parse(data, size, versions, &h);
	if (r > 0) {
		if ((size_t)r > size || (size_t)r > PP_MAX)
			abort();
		for (size_t k = 0; k < (size_t)r; k++)
			if (pp_parse(data, k, versions, &h) != 0)
				abort();
		if (!h.local && h.src.ss_family != 2 && h.src.ss_family != 10)
			abort();
		if (!pp_starts_like(data[0]))
			abort();
	} else if (r == 0 && size >= PP_MAX) {
		abort();
	}
	return 0;
}
