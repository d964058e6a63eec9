/* Private-key import: whatever is pasted, a clean refusal or a key. */
#include <stdint.h>
#include <stdlib.h>

#include <libssh/libssh.h>

#include "ssh/sshc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ssh_key key = NULL;
	const char *reason = NULL;
	char *clean = NULL;

	if (sshc_key_normalize((const char *)data, size, &clean) == 0)
		free(clean);
	if (sshc_key_import((const char *)data, size, "fuzz", &key, &reason) == 0)
		ssh_key_free(key);
	else if (!reason)
		abort();
	return 0;
}
