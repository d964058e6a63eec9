/* Error convention: fallible functions return 0 or a negative code, either
 * -errno for the OS (and for the common cases below) or one of the project
 * codes. err_str() names any of them. */
#pragma once

enum {
	/* Project range, below every errno value. */
	BERR_BASE = 4096,
	BERR_INTEGRITY,     /* stored data failed authentication */
	BERR_HOSTKEY,       /* SSH host key mismatch */
	BERR_SSH_AUTH,      /* SSH user authentication refused */
	BERR_SSH_SHELL,     /* PTY or shell request refused */
	BERR_UNREACHABLE,   /* TCP to the VM failed or timed out */
	BERR_PROTOCOL,      /* peer broke its protocol */
	BERR_BADKEY,        /* private key did not parse or passphrase wrong */
	BERR_STORE,         /* the store failed (busy, full, corrupt) */
	BERR_SSH_HANDSHAKE, /* no algorithm in common with the VM */
	BERR_MAX
};

/* Conventional meanings of errno codes across the project:
 * -ENOENT not found, -EEXIST already exists, -EINVAL invalid input,
 * -EBUSY still referenced, -EACCES not permitted, -ENOMEM out of memory,
 * -E2BIG over a size limit. */

const char *err_str(int code);
