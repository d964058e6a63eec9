/* The recording tests' shared reader (rectest.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "rectest.h"

#include "core/buf.h"
#include "core/err.h"
#include "store/store_rec.h"
#include "terminal/record.h"

int rectest_collect(const char *text, size_t len, void *ud)
{
	return buf_append(ud, text, len);
}

int rectest_read(struct store *s, const char *id, const uint8_t *k, struct buf *out)
{
	struct store_rec rec;
	const char *why = NULL;
	int r;

	assert_int_equal(store_rec_get(s, id, &rec), 0);
	r = rec_read(s, &rec, k, rectest_collect, out, &why);
	if (r == -BERR_INTEGRITY)
		assert_non_null(why);
	return r;
}
