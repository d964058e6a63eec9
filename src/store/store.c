/* The store's dispatch: store_open picks a backend from the URL (none:
 * SQLite in the data directory; postgres:// or postgresql://: PostgreSQL)
 * and every public function that takes a store calls that backend's
 * entry. Nothing here touches a database. */
#include "store/backend.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/log.h"

bool store_audit_stderr;

int64_t store_now(void)
{
	return (int64_t)time(NULL);
}

bool store_url_is_pg(const char *url)
{
	return url && (strncasecmp(url, "postgres://", 11) == 0 ||
		       strncasecmp(url, "postgresql://", 13) == 0);
}

int store_open_url(const char *url, const char *data_dir, struct store **ret)
{
	*ret = NULL;
	if (!url || !url[0])
		return sq_open(data_dir, ret);
	if (store_url_is_pg(url))
		return pg_open(url, ret);
	/* Not echoed: a URL may carry a password. */
	log_error("store: the store URL must start with postgres:// or postgresql://");
	return -EINVAL;
}

int store_open_url_ro(const char *url, struct store **ret, int *ret_version, int *ret_known)
{
	*ret = NULL;
	if (!store_url_is_pg(url))
		return -EINVAL;
	return pg_open_ro(url, ret, ret_version, ret_known);
}

int store_open(const char *data_dir, struct store **ret)
{
	return store_open_url(NULL, data_dir, ret);
}

void store_free(struct store *s)
{
	if (s)
		s->be->free(s);
}

bool store_reachable(struct store *s)
{
	return !s->be->reachable || s->be->reachable(s);
}

const char *store_backend_name(struct store *s)
{
	return s->be->name;
}

int store_cache_sync(struct store *s)
{
	return s->be->cache_sync ? s->be->cache_sync(s) : 0;
}

void store_cache_stats(struct store *s, struct store_cache_stats *ret)
{
	if (s->be->cache_stats)
		s->be->cache_stats(s, ret);
	else
		memset(ret, 0, sizeof(*ret));
}

int store_backend_missing(const struct store_backend *be, char *buf, size_t size)
{
	size_t used = 0;
	int n = 0;

	if (size)
		buf[0] = '\0';
#define STORE_OPS_MISSING(name, params, args)                                                      \
	if (!be->name) {                                                                           \
		int w = snprintf(buf + used, size > used ? size - used : 0, "%s%s", n ? ", " : "", \
				 #name);                                                           \
		if (w > 0 && used + (size_t)w < size)                                              \
			used += (size_t)w;                                                         \
		n++;                                                                               \
	}
	STORE_OPS(STORE_OPS_MISSING)
#undef STORE_OPS_MISSING
	return n;
}

int store_check_complete(struct store *s, char *buf, size_t size)
{
	return store_backend_missing(s->be, buf, size);
}

int store_url_check_complete(const char *url, char *buf, size_t size)
{
	return store_backend_missing(
		store_url_is_pg(url) ? &store_pg_backend : &store_sqlite_backend, buf, size);
}

bool store_op_exists(const char *name)
{
#define STORE_OPS_NAME(name, params, args) #name,
	static const char *const names[] = { STORE_OPS(STORE_OPS_NAME) };
#undef STORE_OPS_NAME

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(names[i], name) == 0)
			return true;
	return false;
}

/* One entry of the backend, or -ENOSYS when it does not have it yet. */
static int missing(struct store *s, const char *name)
{
	log_error("store: store_%s is not yet available on %s", name, s->be->name);
	return -ENOSYS;
}

/* store_request.c defines the public store_role_foreach_principal (a
 * request's assignments read once) on top of the plain dispatch, which is
 * generated here under another name. */
#define store_role_foreach_principal store_role_foreach_principal_uncached
#define STORE_OPS_DISPATCH(name, params, args)    \
	int store_##name params                   \
	{                                         \
		int r_;                           \
		if (!s->be->name)                 \
			return missing(s, #name); \
		store_req_note(#name);            \
		r_ = s->be->name args;            \
		if (s->be->after)                 \
			s->be->after(s, #name);   \
		return r_;                        \
	}
STORE_OPS(STORE_OPS_DISPATCH)
#undef STORE_OPS_DISPATCH
#undef store_role_foreach_principal
