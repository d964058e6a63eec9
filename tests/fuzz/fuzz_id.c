/* Names, resource IDs and percent-decoding of path segments. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/validate.h"
#include "core/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char in[512], g[VAL_NAME_SIZE], t[VAL_TYPE_SIZE], n[VAL_NAME_SIZE];

	if (size >= sizeof(in))
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';
	if (val_name(in) && (strchr(in, '/') || in[0] == '.' || strlen(in) > 64))
		abort();
	if (val_res_id(in, NULL, g, t, n) == 0) {
		if (!val_name(g) || !val_name(n) || !val_res_type(t))
			abort();
	}
	if (util_pct_decode(in) == 0 && strlen(in) > size)
		abort();
	return 0;
}
