/* What the store's backends do alike with resources, apart from SQL: the
 * parts of a resource ID, its stored properties, and what a put does
 * around its transaction (backend.h). */
#include "store/backend.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
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

int store_res_put_run(struct store *s, store_tx_fn *tx, int (*fn)(struct store *s, void *ud),
		      const char *group, const char *type, const char *name, const json_t *props,
		      const char *const *refs, bool *ret_created)
{
	struct store_res_put p = { .group = group, .type = type, .name = name, .refs = refs };
	int r;

	if (!json_is_object(props) || store_res_id(p.id, group, type, name) < 0)
		return -EINVAL;
	/* Sorted keys keep the stored text stable for identical PUTs. */
	p.props = json_dumps(props, JSON_COMPACT | JSON_SORT_KEYS);
	if (!p.props)
		return -ENOMEM;
	r = tx(s, fn, &p);
	free(p.props);
	if (r < 0)
		return r;
	if (ret_created)
		*ret_created = p.created;
	return 0;
}
