/* Private-key import: whatever is pasted, a clean refusal or a key. The
 * corpus holds keys encrypted with every cipher OpenSSH writes (passphrase
 * "fuzz", 1 round: the rounds cap bounds what a mutation can ask for),
 * PEM and PKCS#8 keys plain and encrypted, PuTTY, public and DSA keys. */
#include <stdint.h>
#include <stdlib.h>

#include <libssh/libssh.h>

#include "ssh/sshc.h"

static void import(const uint8_t *data, size_t size, const char *pass)
{
	ssh_key key = NULL;
	const char *reason = NULL;

	if (sshc_key_import((const char *)data, size, pass, &key, &reason) == 0)
		ssh_key_free(key);
	else if (!reason)
		abort(); /* every refusal says why */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *clean = NULL;

	if (sshc_key_normalize((const char *)data, size, &clean) == 0)
		free(clean);
	import(data, size, "fuzz");
	import(data, size, NULL);
	return 0;
}
