/* core/cidr.c: prefix lists (the configuration's allowed_destinations)
 * and the IPv4-mapped forms. Single addresses and CIDRs are also covered
 * through api/validate.h in test_validate.c. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>

#include <cmocka.h>

#include "core/cidr.h"

static void parse_lists(void **state)
{
	struct cidr_list d = { .n = 99 };
	char why[160], list[2048];
	size_t used = 0;
	static const char *const bad[] = {
		"",
		" ",
		",",
		"10.0.0.0/8,",
		",10.0.0.0/8",
		"10.0.0.0/8,,fc00::/7",
		"10.0.0.1/8",
		"10.0.0.0/33",
		"10.0.0.0/",
		"/8",
		"10.0.0.0/08",
		"010.0.0.0/8",
		"10.0.0/8",
		"fc00::/129",
		"fc00::1/7",
		"fe80::1%eth0",
		"[::1]/128",
		"any",
		"10.0.0.0/8;fc00::/7",
		"10.0.0.0/8 192.168.0.0/16",
		"0.0.0.0/0/0",
	};

	assert_int_equal(cidr_list_parse("10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7", &d,
					 why, sizeof(why)),
			 0);
	assert_int_equal(d.n, 4);
	assert_int_equal(cidr_list_parse(" 127.0.0.0/8 ,\t198.18.0.0/15 ", &d, why, sizeof(why)),
			 0);
	assert_int_equal(d.n, 2);
	assert_int_equal(d.v[1].prefix, 15);
	/* A bare address is one host. */
	assert_int_equal(cidr_list_parse("192.0.2.7,2001:db8::7", &d, why, sizeof(why)), 0);
	assert_int_equal(d.v[0].prefix, 32);
	assert_int_equal(d.v[1].prefix, 128);
	/* A mapped prefix names IPv4 addresses. */
	assert_int_equal(cidr_list_parse("::ffff:10.0.0.0/104", &d, why, sizeof(why)), 0);
	assert_int_equal(d.v[0].ip.family, AF_INET);
	assert_int_equal(d.v[0].prefix, 8);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		d.n = 99;
		why[0] = '\0';
		if (cidr_list_parse(bad[i], &d, why, sizeof(why)) != -EINVAL)
			fail_msg("'%s' was accepted", bad[i]);
		assert_int_equal(d.n, 99); /* untouched */
		assert_true(why[0] != '\0');
	}
	/* At most CIDR_LIST_MAX entries. */
	for (int i = 0; i <= CIDR_LIST_MAX; i++)
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s10.%d.0.0/16",
					 i ? "," : "", i);
	assert_int_equal(cidr_list_parse(list, &d, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "more than"));
	list[strlen(list) - strlen(",10.64.0.0/16")] = '\0';
	assert_int_equal(cidr_list_parse(list, &d, why, sizeof(why)), 0);
	assert_int_equal(d.n, CIDR_LIST_MAX);
}

/* ::ffff:a.b.c.d is turned into a.b.c.d, and a prefix of at least /96
 * inside ::ffff:0:0/96 into the IPv4 prefix it names; nothing else moves. */
static void unmapping(void **state)
{
	static const struct {
		const char *in, *out;
	} cidrs[] = {
		{ "::ffff:10.0.0.0/104", "10.0.0.0/8" },
		{ "::ffff:0.0.0.0/96", "0.0.0.0/0" },
		{ "::ffff:192.0.2.7/128", "192.0.2.7/32" },
		{ "::/0", "::/0" },
		{ "fc00::/7", "fc00::/7" },
		{ "10.0.0.0/8", "10.0.0.0/8" },
	};
	struct cidr_ip ip;
	char text[CIDR_STRLEN];
	(void)state;

	for (size_t i = 0; i < sizeof(cidrs) / sizeof(cidrs[0]); i++) {
		struct cidr c;

		assert_int_equal(cidr_parse(cidrs[i].in, &c), 0);
		cidr_unmap(&c);
		cidr_str(&c, text, sizeof(text));
		assert_string_equal(text, cidrs[i].out);
	}
	assert_int_equal(cidr_ip_parse("::ffff:198.18.0.5", &ip), 0);
	assert_true(cidr_ip_is_v4mapped(&ip));
	cidr_ip_unmap(&ip);
	assert_int_equal(ip.family, AF_INET);
	cidr_ip_str(&ip, text, sizeof(text));
	assert_string_equal(text, "198.18.0.5");
	assert_int_equal(cidr_ip_parse("2001:db8::1", &ip), 0);
	cidr_ip_unmap(&ip);
	assert_int_equal(ip.family, AF_INET6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parse_lists),
		cmocka_unit_test(unmapping),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
