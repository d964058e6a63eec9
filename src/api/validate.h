/* Validation of names, IDs, addresses and resource properties. Pure
 * functions: every error message names the offending field and says what
 * is allowed, ready to go into a 400 InvalidRequest. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/cidr.h"

#define VAL_MSG 256

/* Buffer sizes, NUL included: a name, a type, a resource ID
 * ("/groups/" name "/" type "/" name). Addresses and CIDRs: core/cidr.h. */
#define VAL_NAME_SIZE 65
#define VAL_TYPE_SIZE 16
#define VAL_ID_SIZE   (8 + 64 + 1 + 15 + 1 + 64 + 1)

/* Resource and group names: [A-Za-z0-9][A-Za-z0-9._-]{0,63}, ASCII only.
 * Names, types and IDs are case-sensitive everywhere: "Prod" and "prod"
 * are two groups. */
bool val_name(const char *s);

/* A vault's soft_delete_retention_days: range and default. */
#define VAL_VAULT_RETENTION_MIN     7
#define VAL_VAULT_RETENTION_MAX     90
#define VAL_VAULT_RETENTION_DEFAULT 7

/* Resource types a group may hold: "networks", "nics", "vms", "bastions",
 * "vaults".
 * Each type is one entry of a table in validate.c. */
bool val_res_type(const char *type);
/* The i-th known type (0-based), NULL past the end: for listings and
 * messages. */
const char *val_res_type_at(size_t i);

/* True if ip lies inside one of the CIDR strings of the JSON array
 * prefixes (a network's stored address_prefixes). Entries that do not
 * parse are skipped. An IPv4-mapped IPv6 address is never inside an IPv4
 * prefix: families must match (see validate.c). */
bool val_prefixes_contain(const json_t *prefixes, const struct cidr_ip *ip);

/* A role assignment's scope: "/", "/groups/{g}" or a resource ID, exactly. */
bool val_scope(const char *s);

/* Parses "/groups/{g}/{type}/{name}" (type may be restricted with want_type,
 * NULL for any) into its parts; -EINVAL otherwise. Each ret_* may be NULL;
 * otherwise ret_group and ret_name hold VAL_NAME_SIZE bytes and ret_type
 * VAL_TYPE_SIZE. Only known types are accepted. */
int val_res_id(const char *id, const char *want_type, char *ret_group, char *ret_type,
	       char *ret_name);

/* Validates and normalizes the properties of a PUT of a resource of type.
 * On success *ret_props is a new object holding only known properties with
 * defaults filled in (vms: ssh_port 22, host_keys []) and values in
 * canonical form (addresses via inet_ntop, host keys as "type base64"),
 * and *ret_refs a NULL-terminated malloc'd array of the referenced IDs
 * (malloc'd strings; free with val_refs_free). "id", "type" and "name" in
 * body are ignored; any other unknown property is an error naming it.
 * On failure returns -EINVAL (or -ENOMEM), writes the message into msg and
 * leaves ret_* untouched. Messages are ASCII: user text in them is
 * sanitized. References are checked for shape only here; existence is the
 * store's job. */
int val_res_props(const char *type, const json_t *body, json_t **ret_props, char ***ret_refs,
		  char msg[VAL_MSG]);
void val_refs_free(char **refs);

/* A group PUT body: an object holding nothing but the ignored "id", "type"
 * and "name". -EINVAL with msg otherwise. */
int val_group_body(const json_t *body, char msg[VAL_MSG]);
