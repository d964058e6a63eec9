/* known_hosts lines and bare public keys, as pinned in a VM's host_keys. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ssh/sshc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char in[4096], *type = NULL, *b64 = NULL;

	if (size >= sizeof(in))
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';
	if (sshc_hostkey_parse(in, &type, &b64) == 0) {
		if (!type || !b64 || !type[0] || !b64[0])
			abort();
	}
	free(type);
	free(b64);
	return 0;
}
