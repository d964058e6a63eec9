/* Passkey inputs a browser controls (identity/webauthn.h): attestation
 * objects (CBOR, the COSE key inside authData), clientDataJSON, an
 * assertion's authenticatorData and signature, and the TOTP and recovery
 * code parsers of identity/mfa.h. The first byte picks the parser. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "identity/mfa.h"
#include "identity/webauthn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t key[20] = "12345678901234567890";
	struct ident_wa_cred c;
	uint8_t ch[IDENT_WA_CHALLENGE_BYTES], h[32], xy[64];
	char text[128];
	int64_t step;
	uint32_t count;

	if (size < 1 || size > IDENT_WA_MAX_INPUT)
		return 0;
	switch (data[0] % 4) {
	case 0:
		if (ident_wa_attestation(data + 1, size - 1, "bastion.example", false, &c) == 0 &&
		    (c.id_len == 0 || c.id_len > IDENT_WA_CRED_ID_MAX ||
		     c.pk_len > IDENT_WA_PK_MAX))
			abort();
		break;
	case 1:
		ident_wa_client_data(data + 1, size - 1, "webauthn.get", "https://bastion.example",
				     ch);
		break;
	case 2:
		/* A fixed point as the key: what is fuzzed is the parsing of
		 * authData and of the DER signature around libfido2. */
		memset(xy, 0x11, sizeof(xy));
		if (size > 40)
			ident_wa_assertion(IDENT_WA_ALG_ES256, xy, sizeof(xy), data + 1, 37,
					   data + 38, 2, data + 40, size - 40, "bastion.example",
					   false, &count);
		break;
	default:
		if (size - 1 >= sizeof(text))
			return 0;
		memcpy(text, data + 1, size - 1);
		text[size - 1] = '\0';
		if (ident_totp_check(key, sizeof(key), text, 1700000000, 0, &step) == 0 &&
		    (step < 1700000000 / 30 - 1 || step > 1700000000 / 30 + 1))
			abort();
		ident_recovery_hash(text, h);
		break;
	}
	return 0;
}
