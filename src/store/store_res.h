/* Store: resource groups and the resources inside them. A resource is
 * identified by "/groups/{g}/{type}/{name}" and stored as its JSON
 * properties; refs records which resources a resource points at, so that
 * deleting a referenced resource can be refused.
 *
 * Names are compared byte for byte (case-sensitive) and listed in byte
 * order. The store checks only that names are non-empty and free of '/';
 * the grammar of names and properties is api/validate.c's job.
 *
 * The foreach functions pass props as a borrowed reference (json_incref it
 * to keep it); fn returning non-zero stops the walk and that value is
 * returned. fn must not write to the store. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

struct store;

int store_group_put(struct store *s, const char *name, bool *ret_created);
int store_group_exists(struct store *s, const char *name); /* 0 or -ENOENT */
/* -EBUSY while the group holds resources. */
int store_group_delete(struct store *s, const char *name);
/* Each group, in name order. */
int store_group_foreach(struct store *s, int (*fn)(const char *name, void *ud), void *ud);
/* The ID of one resource inside group (the smallest), which keeps it from
 * being deleted: malloc'd into *ret_id. -ENOENT if the group is empty. */
int store_group_blocker(struct store *s, const char *name, char **ret_id);

/* Creates or replaces resource id with props (not stolen). refs is a NULL-
 * terminated list of resource IDs this one points at; each must exist or
 * -ENOENT is returned and nothing changes. The group must exist. */
int store_res_put(struct store *s, const char *group, const char *type, const char *name,
		  const json_t *props, const char *const *refs, bool *ret_created);
/* ret_props is a new reference to the stored properties. */
int store_res_get(struct store *s, const char *id, json_t **ret_props);
/* Inside store_res_tx: locks resource id's row until the transaction ends,
 * so that a check that spans resources (no two NICs of one network with
 * one address) and the write that follows it are not interleaved with the
 * same on another instance. -ENOENT when id does not exist. On SQLite a
 * write transaction already excludes every other, so it only checks. */
int store_res_lock(struct store *s, const char *id);

/* A resource and the two it leads to, in one read: ret[0] the properties
 * of id, ret[1] those of the resource whose ID is ret[0]'s string field1,
 * ret[2] those of the one ret[1]'s field2 names (a VM, its NIC, the NIC's
 * network: what a connect reads). ret[1] and ret[2] are NULL where the
 * field is missing or names nothing. -ENOENT when id is not there (ret[]
 * all NULL); field1 and field2 are [a-z_] names. */
int store_res_get_chain(struct store *s, const char *id, const char *field1, const char *field2,
			json_t *ret[3]);
/* -EBUSY while another resource refers to id. Deleting also forgets the
 * host keys recorded for id (store_hostkey_add). */
int store_res_delete(struct store *s, const char *id);
/* The ID of one resource that refers to id (the smallest), malloc'd into
 * *ret_id; -ENOENT if nothing refers to id. */
int store_res_blocker(struct store *s, const char *id, char **ret_id);
/* Each resource of type (NULL: any type) that refers to id, in id order. */
int store_res_foreach_referrer(struct store *s, const char *id, const char *type,
			       int (*fn)(const char *id, const char *name, json_t *props, void *ud),
			       void *ud);
/* Each resource of type in group, in name order. */
int store_res_foreach(struct store *s, const char *group, const char *type,
		      int (*fn)(const char *id, const char *name, json_t *props, void *ud),
		      void *ud);
/* Each resource anywhere of type, in id order. */
int store_res_foreach_type(struct store *s, const char *type,
			   int (*fn)(const char *id, const char *name, json_t *props, void *ud),
			   void *ud);

/* Runs fn inside one transaction: everything fn does through store_group_*
 * and store_res_* (and store_audit, store_hostkey_*) commits together, or
 * is rolled back when fn returns < 0. Calls nest: the store_res_* writes
 * open their own transaction only when none is open, and otherwise a
 * savepoint inside the caller's. Returns fn's result or a store error. */
int store_res_tx(struct store *s, int (*fn)(struct store *s, void *ud), void *ud);
