/* Who a request acts as, and the credentials it carries. Owned by
 * identity/: ident_authenticate() turns a struct ident_creds into a
 * struct principal; authz/ decides what that principal may do; api/ fills
 * the creds from a request's headers (api_creds() in api/api.h) and hands
 * the principal to its handlers. Nothing here knows HTTP beyond header
 * values. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* The identity a request acts as. */
struct principal {
	int64_t user_id;
	char name[65];
	bool via_cookie; /* browser session: CSRF and Origin apply */
	char csrf[64];   /* the session's CSRF token when via_cookie */
	/* With an API token: its public id and scope ("all", "metrics");
	 * both "" for a browser session. */
	char token_id[17];
	char token_scope[16];
};

/* The header values authentication and the browser checks read. Strings
 * are NUL-terminated and owned by the caller; an absent header is NULL. */
struct ident_creds {
	const char *method;        /* "GET", "PUT", ... */
	const char *cookie;        /* the whole Cookie header */
	const char *authorization; /* the whole Authorization header */
	const char *csrf_token;    /* X-CSRF-Token */
	const char *origin;        /* Origin */
	const char *host;          /* Host */
};
