/* The destination policy (authz/dest.h): the matcher (the list parser
 * is core/cidr.c's, tested in test_cidr.c) on every
 * special range, IPv4-mapped addresses, IPv6, and the running policy. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "authz/dest.h"

static struct cidr_ip ip_of(const char *s)
{
	struct cidr_ip ip;

	if (cidr_ip_parse(s, &ip) < 0)
		fail_msg("test address %s does not parse", s);
	return ip;
}

static bool allows(const char *list, const char *addr)
{
	struct cidr_list d;
	struct cidr_ip ip = ip_of(addr);
	char why[160];

	if (cidr_list_parse(list, &d, why, sizeof(why)) < 0)
		fail_msg("list %s: %s", list, why);
	return authz_dest_allows(&d, &ip);
}

/* The default: the private ranges, nothing else. */
static void default_list(void **state)
{
	static const struct {
		const char *addr;
		bool want;
	} rows[] = {
		{ "10.0.0.1", true },
		{ "10.255.255.255", true },
		{ "172.16.0.1", true },
		{ "172.31.255.254", true },
		{ "192.168.1.1", true },
		{ "fc00::1", true },
		{ "fd12:3456::1", true },
		{ "11.0.0.1", false },
		{ "172.32.0.1", false },
		{ "172.15.255.255", false },
		{ "192.169.0.1", false },
		{ "198.18.0.5", false },
		{ "8.8.8.8", false },
		{ "2001:db8::1", false },
		{ "fe00::1", false },
		{ "127.0.0.1", false },
		{ "::1", false },
		{ "0.0.0.0", false },
		{ "::", false },
		{ "169.254.1.1", false },
		{ "169.254.169.254", false },
		{ "fe80::1", false },
		{ "fd00:ec2::254", false }, /* inside fc00::/7 */
		{ "::ffff:10.0.0.1", true },
		{ "::ffff:127.0.0.1", false },
		{ "::ffff:169.254.169.254", false },
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (allows(AUTHZ_DEST_DEFAULT, rows[i].addr) != rows[i].want)
			fail_msg("default list, %s: want %s", rows[i].addr,
				 rows[i].want ? "allowed" : "refused");
}

/* Every special range: a broad prefix holding it does not carry it, a
 * prefix inside it does, and the metadata addresses need their own. */
static void special_ranges(void **state)
{
	static const struct {
		const char *list, *addr;
		bool want;
	} rows[] = {
		/* everything, written broadly: only ordinary addresses */
		{ "0.0.0.0/0,::/0", "203.0.113.9", true },
		{ "0.0.0.0/0,::/0", "2001:db8::9", true },
		{ "0.0.0.0/0,::/0", "127.0.0.1", false },
		{ "0.0.0.0/0,::/0", "127.255.255.254", false },
		{ "0.0.0.0/0,::/0", "::1", false },
		{ "0.0.0.0/0,::/0", "0.0.0.0", false },
		{ "0.0.0.0/0,::/0", "0.1.2.3", false },
		{ "0.0.0.0/0,::/0", "::", false },
		{ "0.0.0.0/0,::/0", "169.254.0.1", false },
		{ "0.0.0.0/0,::/0", "169.254.169.254", false },
		{ "0.0.0.0/0,::/0", "fe80::1", false },
		{ "0.0.0.0/0,::/0", "febf:ffff::1", false },
		{ "0.0.0.0/0,::/0", "fd00:ec2::254", false },
		{ "0.0.0.0/0,::/0", "::ffff:127.0.0.1", false },
		{ "0.0.0.0/0,::/0", "::ffff:0.0.0.0", false },
		{ "0.0.0.0/0,::/0", "::ffff:169.254.169.254", false },
		{ "0.0.0.0/0,::/0", "168.63.129.16", false },
		{ "0.0.0.0/0,::/0", "100.100.100.200", false },
		{ "100.64.0.0/10", "100.100.100.200", false },
		{ "100.64.0.0/10", "100.100.100.201", true },
		{ "168.63.129.16/32", "168.63.129.16", true },
		{ "100.100.100.200", "100.100.100.200", true },
		{ "0.0.0.0/0", "168.63.129.17", true },
		{ "0.0.0.0/1", "127.0.0.1", false },
		{ "96.0.0.0/3", "127.0.0.1", false },
		{ "::/1", "::1", false },
		{ "fe80::/9", "fe80::1", false }, /* broader than fe80::/10 */
		/* listed exactly, or inside: allowed */
		{ "127.0.0.0/8", "127.0.0.1", true },
		{ "127.0.0.0/8", "127.1.2.3", true },
		{ "127.0.0.2/32", "127.0.0.2", true },
		{ "127.0.0.2/32", "127.0.0.1", false },
		{ "127.0.0.0/8", "::ffff:127.0.0.1", true },
		{ "::ffff:127.0.0.0/104", "127.0.0.1", true },
		{ "::1/128", "::1", true },
		{ "::1", "::1", true },
		{ "127.0.0.0/8", "::1", false }, /* families stay apart */
		{ "::1/128", "127.0.0.1", false },
		{ "0.0.0.0/8", "0.0.0.0", true },
		{ "::/128", "::", true },
		{ "169.254.0.0/16", "169.254.10.10", true },
		{ "169.254.10.0/24", "169.254.10.10", true },
		{ "fe80::/10", "fe80::1", true },
		{ "fe80::/64", "fe80::1", true },
		/* metadata: link-local and fc00::/7 do not carry it */
		{ "169.254.0.0/16", "169.254.169.254", false },
		{ "169.254.169.0/24", "169.254.169.254", false },
		{ "169.254.169.254/32", "169.254.169.254", true },
		{ "169.254.169.254", "::ffff:169.254.169.254", true },
		{ "fc00::/7", "fd00:ec2::254", false },
		{ "fd00:ec2::/64", "fd00:ec2::254", false },
		{ "fd00:ec2::254/128", "fd00:ec2::254", true },
		{ "fc00::/7", "fd00:ec2::253", true },
		/* ordinary addresses next to the special ranges */
		{ "0.0.0.0/0", "126.255.255.255", true },
		{ "0.0.0.0/0", "128.0.0.0", true },
		{ "0.0.0.0/0", "1.0.0.0", true },
		{ "0.0.0.0/0", "169.253.255.255", true },
		{ "0.0.0.0/0", "169.255.0.0", true },
		{ "::/0", "::2", true },
		{ "::/0", "fec0::1", true },
		{ "198.18.0.0/15", "198.18.10.2", true },
		{ "198.18.0.0/15", "198.20.0.1", false },
		/* a mapped address is judged as IPv4, never by an IPv6 prefix */
		{ "::/0", "::ffff:203.0.113.9", false },
		{ "0.0.0.0/0", "::ffff:203.0.113.9", true },
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (allows(rows[i].list, rows[i].addr) != rows[i].want)
			fail_msg("row %zu: %s with %s: want %s", i, rows[i].addr, rows[i].list,
				 rows[i].want ? "allowed" : "refused");
}

static void special_names(void **state)
{
	struct cidr_ip ip;

	ip = ip_of("127.0.0.1");
	assert_string_equal(authz_dest_special(&ip), "loopback");
	ip = ip_of("::ffff:127.0.0.1");
	assert_string_equal(authz_dest_special(&ip), "loopback");
	ip = ip_of("169.254.169.254");
	assert_string_equal(authz_dest_special(&ip), "metadata");
	ip = ip_of("169.254.1.1");
	assert_string_equal(authz_dest_special(&ip), "link-local");
	ip = ip_of("::");
	assert_string_equal(authz_dest_special(&ip), "unspecified");
	ip = ip_of("10.0.0.1");
	assert_null(authz_dest_special(&ip));
}

/* The running policy: the default until set; a bad list keeps the old. */
static void running_policy(void **state)
{
	struct cidr_ip ten = ip_of("10.1.2.3"), test = ip_of("198.18.3.4"), lo = ip_of("127.0.0.1");
	char msg[256];

	assert_int_equal(authz_dest_check(&ten, msg, sizeof(msg)), 0);
	assert_int_equal(authz_dest_check(&test, msg, sizeof(msg)), -EACCES);
	assert_non_null(strstr(msg, "198.18.3.4"));
	assert_non_null(strstr(msg, "--allowed-destinations"));
	assert_int_equal(authz_dest_check(&lo, msg, sizeof(msg)), -EACCES);
	assert_non_null(strstr(msg, "loopback"));
	assert_int_equal(authz_dest_set("198.18.0.0/15"), 0);
	assert_int_equal(authz_dest_check(&test, msg, sizeof(msg)), 0);
	assert_int_equal(authz_dest_check(&ten, msg, sizeof(msg)), -EACCES);
	assert_int_equal(authz_dest_set("198.18.0.1/15"), -EINVAL);
	assert_int_equal(authz_dest_check(&test, msg, sizeof(msg)), 0);
	assert_int_equal(authz_dest_set(AUTHZ_DEST_DEFAULT), 0);
	assert_int_equal(authz_dest_check(&test, msg, sizeof(msg)), -EACCES);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(default_list),
		cmocka_unit_test(special_ranges),
		cmocka_unit_test(special_names),
		cmocka_unit_test(running_policy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
