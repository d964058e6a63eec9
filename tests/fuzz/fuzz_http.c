/* HTTP request handling: bytes from a browser after TLS, through
 * http-parser and the server's callbacks (header table, caps, pipelining,
 * request-target split), as a connection reads them. */
#include <stdint.h>
#include <stdlib.h>

#include "server/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int r = srv_parse_for_test(data, size);

	if (r < 0 && r != -400 && r != -413 && r != -431 && r != -12 /* -ENOMEM */)
		abort();
	return 0;
}
