/* The group claims of single sign-on mapped to role assignments (SPEC §9,
 * docs/sign-in.md "Groups to roles"): the `oidc.map` rows, and keeping a
 * user's mapped assignments in step with its groups at each sign-in. */
#pragma once

#include <jansson.h>
#include <stddef.h>

#include "api/api.h"

#define OIDC_MAP_ROWS_MAX 128

struct oidc_map_row {
	char group[257];
	char role[33];
	char scope[257];
};

struct oidc_map {
	struct oidc_map_row *rows;
	size_t n;
};

/* Parses the map text ("GROUP ROLE SCOPE,..."; the config loader checked
 * its shape) into m, checking each role and scope. 0, or -EINVAL / -ENOMEM
 * with err filled. */
int oidc_map_parse(struct oidc_map *m, const char *text, char *err, size_t errlen);
void oidc_map_free(struct oidc_map *m);
/* Assigns principal the rows whose group is in groups, and removes the
 * assignments the mapping made earlier that no row grants any more
 * (assignments made by hand are left alone); each change audited. 0 or a
 * store error. */
int oidc_map_sync(struct api_call *c, const struct oidc_map *m, const char *principal,
		  const json_t *groups);
