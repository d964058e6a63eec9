/* `bastion serve` (serve.c). */
#pragma once

#include <stddef.h>

#include "core/config.h"

/* Where the generated first password goes when serve has no terminal
 * (in the data directory, mode 0600). */
#define SERVE_ADMIN_PASSWORD_FILE "initial-admin-password"

/* Serves with the configuration loaded (from config_file, NULL: none, and
 * the flags args, kept for every reload) until SIGTERM or SIGINT. The exit
 * code: 0 after an orderly stop, 1 when it cannot start. */
int serve_run(const struct cfg *loaded, const char *config_file, const struct cfg_arg *args,
	      size_t nargs, const char *master_key_file);
