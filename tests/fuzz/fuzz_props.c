/* JSON request bodies through the resource validators of every type. */
#include <stdint.h>
#include <stdlib.h>

#include <jansson.h>

#include "api/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	const char *type;

	if (!body)
		return 0;
	for (size_t i = 0; (type = val_res_type_at(i)); i++) {
		json_t *props = NULL;
		char **refs = NULL, msg[VAL_MSG];

		if (val_res_props(type, body, &props, &refs, msg) == 0) {
			if (!json_is_object(props))
				abort();
			json_decref(props);
			val_refs_free(refs);
		} else if (msg[0] == '\0') {
			abort(); /* a refusal always says why */
		}
	}
	json_decref(body);
	return 0;
}
