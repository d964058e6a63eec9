/* The configuration file: libinih with our line reader, handler and value
 * parsers (cfg_load), fed through a memfd so that the real file path runs. */
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/cidr.h"
#include "core/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	struct cfg c;
	char err[512];

	if (fd < 0) {
		fd = memfd_create("fuzz_config", MFD_CLOEXEC);
		if (fd < 0)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	err[0] = '\0';
	if (cfg_load(&c, path, NULL, 0, err, sizeof(err)) < 0) {
		if (!err[0] || !memchr(err, '\0', sizeof(err)))
			abort();
		return 0;
	}
	/* What loaded is within the table's bounds. */
	if (c.idle_timeout_s < 0 || c.max_per_user < 1 ||
	    !memchr(c.listen, '\0', sizeof(c.listen)) || !memchr(c.user, '\0', sizeof(c.user)) ||
	    c.ssh_keepalive_s > 3600 || c.browser_ping_s > 3600)
		abort();
	/* A destination list that loaded is one the running policy accepts. */
	{
		struct cidr_list d;

		if (cidr_list_parse(c.allowed_destinations, &d, err, sizeof(err)) < 0 || d.n == 0 ||
		    d.n > CIDR_LIST_MAX)
			abort();
	}
	return 0;
}
