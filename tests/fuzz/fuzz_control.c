/* WebSocket control messages (text frames from the browser, docs/api.md):
 * whatever parses is one of the known types with its fields in range. */
#include <stdint.h>
#include <stdlib.h>

#include "terminal/term.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct term_control ctl = { 0 };
	const char *error = NULL;

	if (term_parse_control((const char *)data, size, &ctl, &error) < 0) {
		if (!error || !error[0])
			abort();
		return 0;
	}
	switch (ctl.type) {
	case TERM_CTL_RESIZE:
		if (ctl.cols < 1 || ctl.cols > 1000 || ctl.rows < 1 || ctl.rows > 1000)
			abort();
		break;
	case TERM_CTL_PING:
		if (ctl.id < 0 || ctl.id > 9007199254740991LL)
			abort();
		break;
	case TERM_CTL_PAUSE:
	case TERM_CTL_RESUME:
		break;
	case TERM_CTL_WINDOW:
		if (ctl.bytes < TERM_WINDOW_MIN || ctl.bytes > TERM_WINDOW_MAX)
			abort();
		break;
	case TERM_CTL_ACK:
		if (ctl.bytes < 1 || ctl.bytes > 9007199254740991LL)
			abort();
		break;
	default:
		abort();
	}
	return 0;
}
