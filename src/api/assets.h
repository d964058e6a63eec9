/* The portal's files, embedded at build time by tools/embed.py. */
#pragma once

#include <stddef.h>

struct asset {
	const char *path; /* "/", "/app.js", ... */
	const char *content_type;
	const unsigned char *data;
	size_t len;
	const char *etag; /* quoted strong ETag of the content */
};

/* NULL when path is not an embedded file. */
const struct asset *assets_find(const char *path);
