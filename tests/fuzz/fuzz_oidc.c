/* The checks of an ID token's claims (identity/oidc_claims.c) on any JSON
 * text: never a crash, and an accepted set of claims really has the
 * issuer, an audience holding the client and the nonce asked for. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "identity/oidc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct oidc_expect ex = { .issuer = "https://op.example",
					       .client_id = "bastion",
					       .nonce = "n-123",
					       .now = 1700000000 };
	const char *reason = NULL;
	json_t *c = json_loadb((const char *)data, size, 0, NULL);
	char out[44];

	if (oidc_check_claims(c, &ex, &reason) == 0) {
		if (strcmp(json_string_value(json_object_get(c, "iss")), ex.issuer) != 0 ||
		    strcmp(json_string_value(json_object_get(c, "nonce")), ex.nonce) != 0)
			abort();
	} else if (!reason) {
		abort();
	}
	json_decref(c);
	if (size < 256) {
		char v[256];

		memcpy(v, data, size);
		v[size] = '\0';
		oidc_pkce_s256(v, out);
		if (strlen(out) != 43)
			abort();
	}
	return 0;
}
