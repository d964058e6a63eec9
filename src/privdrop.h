/* Dropping root (privdrop.c). */
#pragma once

#include <stddef.h>

/* Once the listening socket is bound and the files are open: nothing after
 * this needs root. Started as root, switches to `want` (server.user), or to
 * "bastion" when that is empty and such an account exists, after handing
 * data_dir (and what root created in it) to that user; "root" keeps root
 * on purpose. Without a bastion account and without a setting, root is kept
 * with a loud warning. Started as another user, `want` must be empty or
 * that user. 0, or a negative code with the reason in err. */
int privdrop_to_user(const char *want, const char *data_dir, char *err, size_t errlen);
