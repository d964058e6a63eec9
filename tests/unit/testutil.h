/* Helpers shared by the unit tests. */
#pragma once

#include <stddef.h>

/* Creates /tmp/bastion-test-TAG-XXXXXX into dir (at least 64 bytes);
 * returns dir or NULL. */
char *tu_tmpdir(char *dir, size_t size, const char *tag);

/* Removes dir and the files directly inside it (the tests make no deeper
 * trees). */
void tu_rm_tree(const char *dir);
