/* IP and CIDR parsing: no crash, and what parses survives a round trip
 * through its canonical text unchanged. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char in[128], out[CIDR_STRLEN];
	struct cidr_ip ip, ip2;
	struct cidr net, net2;

	if (size >= sizeof(in))
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';
	if (cidr_ip_parse(in, &ip) == 0) {
		cidr_ip_str(&ip, out, sizeof(out));
		if (cidr_ip_parse(out, &ip2) != 0 || memcmp(&ip, &ip2, sizeof(ip)) != 0)
			abort();
	}
	if (cidr_parse(in, &net) == 0) {
		cidr_str(&net, out, sizeof(out));
		if (cidr_parse(out, &net2) != 0 || net.prefix != net2.prefix ||
		    memcmp(&net.ip, &net2.ip, sizeof(net.ip)) != 0)
			abort();
		/* A network contains its own address. */
		if (!cidr_contains(&net, &net.ip))
			abort();
	}
	return 0;
}
