/* `bastion serve --check-config` beyond parsing (check.c). */
#pragma once

#include "core/config.h"

/* Checks, without starting and without writing anything, what `serve`
 * would refuse at start with configuration c and the --master-key-file
 * given (NULL: DATA/master.key). Prints one "bastion: configuration: ..."
 * line per problem to stderr; returns how many there were. */
int check_serve(const struct cfg *c, const char *master_key_file);
