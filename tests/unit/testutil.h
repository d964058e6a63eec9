/* Helpers shared by the unit tests. */
#pragma once

#include <stddef.h>

/* Creates /tmp/bastion-test-TAG-XXXXXX into dir (at least 64 bytes);
 * returns dir or NULL. */
char *tu_tmpdir(char *dir, size_t size, const char *tag);

/* Removes dir and the files directly inside it (the tests make no deeper
 * trees). */
void tu_rm_tree(const char *dir);

/* A store opened on a fresh temporary directory, as a cmocka group or test
 * fixture: *state points at a struct tu_store. */
struct tu_store {
	char dir[64];
	struct store *s;
};
int tu_store_setup(void **state);
int tu_store_teardown(void **state);
