/* What the store's backends do alike with resources, apart from SQL: the
 * parts of a resource ID and its stored properties (backend.h). */
#include "store/backend.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"

bool store_res_name_ok(const char *part)
{
	return part && part[0] && !strchr(part, '/');
}

int store_res_id(char *out, const char *group, const char *type, const char *name)
{
	int n;

	if (!store_res_name_ok(group) || !store_res_name_ok(type) || !store_res_name_ok(name))
		return -EINVAL;
	n = snprintf(out, STORE_RES_ID_SIZE, "/groups/%s/%s/%s", group, type, name);
	return n > 0 && n < STORE_RES_ID_SIZE ? 0 : -EINVAL;
}

int store_res_props_load(const char *text, int null_err, json_t **ret)
{
	json_t *j;

	if (!text)
		return null_err;
	j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return -BERR_STORE;
	}
	*ret = j;
	return 0;
}
