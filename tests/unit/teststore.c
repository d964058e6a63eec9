/* The store fixture of testutil.h, apart from the rest so that the tests
 * of the modules beneath the store link without it. */
#include "testutil.h"

#include "store/store.h"

#include <stdlib.h>

int tu_store_setup(void **state)
{
	struct tu_store *f = calloc(1, sizeof(*f));

	if (!f || !tu_tmpdir(f->dir, sizeof(f->dir), "store") || store_open(f->dir, &f->s) < 0) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

int tu_store_teardown(void **state)
{
	struct tu_store *f = *state;

	store_free(f->s);
	tu_rm_tree(f->dir);
	free(f);
	return 0;
}
