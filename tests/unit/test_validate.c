/* api/validate.c: names, types, IP addresses, CIDRs, containment, resource
 * IDs and the properties of each resource type. */
#include <errno.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/validate.h"

/* Real keys (ssh-keygen), so that sshc_hostkey_parse() accepts them. */
#define ED25519 "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFuEoHrB4vFarpDJV/Bnt4Pcvg6UxxKdMfcMbhzTrxuH"
#define ECDSA                                                                                       \
	"ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBHERcMUgQ5aWod0oQ" \
	"9A+eVu8CFDcLrT+dj31JARcaQ9xds3dYSdrfh8oiS54PfEhBmOhgNH61y4MkDXRES9Uy3Q="

/* ---- names and types ---- */

static void test_names(void **state)
{
	char s64[65], s65[66];

	(void)state;
	assert_true(val_name("a"));
	assert_true(val_name("Z"));
	assert_true(val_name("0"));
	assert_true(val_name("web-1.prod_A"));
	assert_true(val_name("a..b"));
	assert_true(val_name("a-"));
	assert_true(val_name("a."));
	memset(s64, 'x', 64);
	s64[64] = '\0';
	assert_true(val_name(s64));
	memset(s65, 'x', 65);
	s65[65] = '\0';
	assert_false(val_name(s65));

	assert_false(val_name(NULL));
	assert_false(val_name(""));
	assert_false(val_name("."));
	assert_false(val_name(".."));
	assert_false(val_name(".a"));
	assert_false(val_name("-a"));
	assert_false(val_name("_a"));
	assert_false(val_name("a/b"));
	assert_false(val_name("a b"));
	assert_false(val_name("a%2F"));
	assert_false(val_name("caf\xc3\xa9"));  /* é */
	assert_false(val_name("\xef\xbc\xa1")); /* fullwidth A */
	assert_false(val_name("a\n"));
	assert_false(val_name("a:b"));
	/* An embedded NUL cannot reach val_name(): C strings end there, and
	 * the router refuses %00. What is before it is judged alone. */
	assert_true(val_name("ab\0/../x"));
}

static void test_types(void **state)
{
	(void)state;
	assert_true(val_res_type("networks"));
	assert_true(val_res_type("nics"));
	assert_true(val_res_type("vms"));
	assert_true(val_res_type("bastions"));
	assert_false(val_res_type("Networks")); /* case-sensitive */
	assert_false(val_res_type("network"));
	assert_false(val_res_type("groups"));
	assert_false(val_res_type(""));
	assert_false(val_res_type(NULL));
	assert_string_equal(val_res_type_at(0), "networks");
	assert_string_equal(val_res_type_at(3), "bastions");
	assert_string_equal(val_res_type_at(4), "vaults");
	assert_null(val_res_type_at(5));
}

/* ---- addresses ---- */

static void ip_ok(const char *s, int family, const char *canon)
{
	struct cidr_ip ip;
	char out[INET6_ADDRSTRLEN];

	assert_int_equal(cidr_ip_parse(s, &ip), 0);
	assert_int_equal(ip.family, family);
	cidr_ip_str(&ip, out, sizeof(out));
	assert_string_equal(out, canon);
}

static void ip_bad(const char *s)
{
	struct cidr_ip ip = { .family = 12345 };

	if (cidr_ip_parse(s, &ip) != -EINVAL)
		fail_msg("accepted \"%s\"", s ? s : "(NULL)");
	assert_int_equal(ip.family, 12345); /* untouched on failure */
}

static void test_ip(void **state)
{
	(void)state;
	ip_ok("0.0.0.0", AF_INET, "0.0.0.0");
	ip_ok("198.18.0.5", AF_INET, "198.18.0.5");
	ip_ok("255.255.255.255", AF_INET, "255.255.255.255");
	ip_ok("10.0.0.10", AF_INET, "10.0.0.10");
	ip_ok("::", AF_INET6, "::");
	ip_ok("::1", AF_INET6, "::1");
	ip_ok("2001:DB8:0:0::5", AF_INET6, "2001:db8::5");
	ip_ok("fe80::1", AF_INET6, "fe80::1");
	ip_ok("::ffff:198.18.0.5", AF_INET6, "::ffff:198.18.0.5");
	ip_ok("2001:db8:1:2:3:4:5:6", AF_INET6, "2001:db8:1:2:3:4:5:6");

	ip_bad(NULL);
	ip_bad("");
	ip_bad("198.18.0.05"); /* leading zero */
	ip_bad("010.0.0.1");
	ip_bad("00.0.0.1");
	ip_bad("198.18.0.256");
	ip_bad("256.0.0.0");
	ip_bad("1999.0.0.1");
	ip_bad("198.18.0."); /* trailing dot */
	ip_bad("198.18.0.5.");
	ip_bad(".198.18.0.5");
	ip_bad("198.18.0");
	ip_bad("198.18..5");
	ip_bad("198.18.0.5.1");
	ip_bad("3322250245"); /* one integer */
	ip_bad("0x7f.0.0.1");
	ip_bad(" 198.18.0.5");
	ip_bad("198.18.0.5 ");
	ip_bad("198.18.0.5\n");
	ip_bad("198.18.0.+5");
	ip_bad("fe80::1%eth0"); /* zone id */
	ip_bad("fe80::1%25eth0");
	ip_bad("[::1]");
	ip_bad("[2001:db8::5]");
	ip_bad(":: 1");
	ip_bad(" ::1");
	ip_bad("2001:db8::g");
	ip_bad("2001:db8:::5");
	ip_bad("1:2:3:4:5:6:7:8:9");
	ip_bad("::ffff:198.18.0.05"); /* the IPv4 tail obeys the IPv4 rules */
	ip_bad("::ffff:198.18.0.256");
	ip_bad("2001:0db8:0000:0000:0000:0000:0000:00005");
	ip_bad("localhost");
}

static void cidr_ok(const char *s, const char *canon)
{
	struct cidr c;
	char out[CIDR_STRLEN];

	if (cidr_parse(s, &c) != 0)
		fail_msg("refused \"%s\"", s);
	cidr_str(&c, out, sizeof(out));
	assert_string_equal(out, canon);
}

static void cidr_bad(const char *s)
{
	struct cidr c;

	if (cidr_parse(s, &c) != -EINVAL)
		fail_msg("accepted \"%s\"", s ? s : "(NULL)");
}

static void test_cidr(void **state)
{
	(void)state;
	cidr_ok("198.18.0.0/24", "198.18.0.0/24");
	cidr_ok("198.18.0.0/15", "198.18.0.0/15");
	cidr_ok("0.0.0.0/0", "0.0.0.0/0");
	cidr_ok("198.18.0.1/32", "198.18.0.1/32");
	cidr_ok("2001:DB8::/32", "2001:db8::/32");
	cidr_ok("::/0", "::/0");
	cidr_ok("2001:db8::1/128", "2001:db8::1/128");
	cidr_ok("2001:db8:0:1::/64", "2001:db8:0:1::/64");

	cidr_bad("198.18.0.1/24"); /* host bits */
	cidr_bad("198.19.0.0/15");
	cidr_bad("2001:db8::1/64");
	cidr_bad("::1/0");
	cidr_bad("198.18.0.0/33"); /* prefix bounds */
	cidr_bad("2001:db8::/129");
	cidr_bad("198.18.0.0/-1");
	cidr_bad("198.18.0.0/024"); /* leading zero in the prefix */
	cidr_bad("198.18.0.0/");
	cidr_bad("198.18.0.0"); /* a CIDR always has a prefix */
	cidr_bad("/24");
	cidr_bad("198.18.0.0/24/1");
	cidr_bad("198.18.0.0/ 24");
	cidr_bad("198.18.0.0 /24");
	cidr_bad("198.18.0.00/24");
	cidr_bad("fe80::%eth0/64");
	cidr_bad("[2001:db8::]/32");
	cidr_bad("198.18.0.0/99999999999");
	cidr_bad(NULL);
}

static struct cidr cidr(const char *s)
{
	struct cidr c;

	assert_int_equal(cidr_parse(s, &c), 0);
	return c;
}

static struct cidr_ip ip(const char *s)
{
	struct cidr_ip a;

	assert_int_equal(cidr_ip_parse(s, &a), 0);
	return a;
}

static bool in(const char *net, const char *addr)
{
	struct cidr c = cidr(net);
	struct cidr_ip a = ip(addr);

	return cidr_contains(&c, &a);
}
#define IN(net, addr) in(net, addr)

static bool mapped(const char *addr)
{
	struct cidr_ip a = ip(addr);

	return cidr_ip_is_v4mapped(&a);
}

static void test_contains(void **state)
{
	(void)state;
	assert_true(IN("198.18.0.0/24", "198.18.0.0"));
	assert_true(IN("198.18.0.0/24", "198.18.0.5"));
	assert_true(IN("198.18.0.0/24", "198.18.0.255"));
	assert_false(IN("198.18.0.0/24", "198.18.1.0"));
	assert_false(IN("198.18.0.0/24", "198.17.255.255"));
	assert_true(IN("198.18.0.0/15", "198.19.255.255"));
	assert_false(IN("198.18.0.0/15", "198.20.0.0"));
	assert_true(IN("198.18.0.0/23", "198.18.1.7")); /* partial byte */
	assert_false(IN("198.18.0.0/23", "198.18.2.7"));
	assert_true(IN("0.0.0.0/0", "255.255.255.255"));
	assert_true(IN("0.0.0.0/0", "0.0.0.0"));
	assert_true(IN("198.18.0.7/32", "198.18.0.7"));
	assert_false(IN("198.18.0.7/32", "198.18.0.6"));

	assert_true(IN("2001:db8::/32", "2001:db8:ffff::1"));
	assert_false(IN("2001:db8::/32", "2001:db9::"));
	assert_true(IN("2001:db8::/127", "2001:db8::1"));
	assert_false(IN("2001:db8::/127", "2001:db8::2"));
	assert_true(IN("2001:db8::5/128", "2001:db8::5"));
	assert_false(IN("2001:db8::5/128", "2001:db8::4"));
	assert_true(IN("::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));

	/* Families never mix, not even through /0 or a mapped address. */
	assert_false(IN("0.0.0.0/0", "::1"));
	assert_false(IN("::/0", "198.18.0.5"));
	assert_false(IN("198.18.0.0/24", "::ffff:198.18.0.5"));
	assert_false(IN("0.0.0.0/0", "::ffff:198.18.0.5"));
	assert_true(IN("::ffff:0:0/96", "::ffff:198.18.0.5"));

	assert_true(mapped("::ffff:198.18.0.5"));
	assert_false(mapped("198.18.0.5"));
	assert_false(mapped("::198.18.0.5"));
}

static void test_prefixes_contain(void **state)
{
	json_t *p = json_pack("[s,s,i,s]", "198.18.0.0/24", "2001:db8::/64", 7, "garbage");
	struct cidr_ip a = ip("2001:db8::9"), b = ip("198.18.0.1"), d = ip("198.18.1.1");

	(void)state;
	assert_true(val_prefixes_contain(p, &a));
	assert_true(val_prefixes_contain(p, &b));
	assert_false(val_prefixes_contain(p, &d));
	assert_false(val_prefixes_contain(NULL, &b));
	json_decref(p);
}

/* ---- resource IDs ---- */

static void test_res_id(void **state)
{
	char g[VAL_NAME_SIZE], t[VAL_TYPE_SIZE], n[VAL_NAME_SIZE], long_id[256];

	(void)state;
	assert_int_equal(val_res_id("/groups/prod/nics/web1-nic", NULL, g, t, n), 0);
	assert_string_equal(g, "prod");
	assert_string_equal(t, "nics");
	assert_string_equal(n, "web1-nic");
	assert_int_equal(val_res_id("/groups/prod/networks/net", "networks", NULL, NULL, NULL), 0);
	assert_int_equal(val_res_id("/groups/prod/nics/x", "networks", g, t, n), -EINVAL);

	assert_int_equal(val_res_id(NULL, NULL, g, t, n), -EINVAL);
	assert_int_equal(val_res_id("", NULL, g, t, n), -EINVAL);
	assert_int_equal(val_res_id("/groups/prod", NULL, g, t, n), -EINVAL);
	assert_int_equal(val_res_id("/groups/prod/nics", NULL, g, t, n), -EINVAL);
	assert_int_equal(val_res_id("/groups/prod/nics/", NULL, g, t, n), -EINVAL);
	assert_int_equal(val_res_id("/groups/prod/nics/a/b", NULL, g, t, n), -EINVAL);
	assert_int_equal(val_res_id("/groups/prod/nics/a/", NULL, g, t, n), -EINVAL);
	assert_int_equal(val_res_id("groups/prod/nics/a", NULL, g, t, n), -EINVAL);
	assert_int_equal(val_res_id("/Groups/prod/nics/a", NULL, g, t, n), -EINVAL);
	assert_int_equal(val_res_id("/groups/prod/NICS/a", NULL, g, t, n), -EINVAL);
	assert_int_equal(val_res_id("/groups/prod/things/a", NULL, g, t, n), -EINVAL);
	assert_int_equal(val_res_id("/groups//nics/a", NULL, g, t, n), -EINVAL);
	assert_int_equal(val_res_id("/groups/../nics/a", NULL, g, t, n), -EINVAL);
	assert_int_equal(val_res_id("/groups/prod/nics/.a", NULL, g, t, n), -EINVAL);
	assert_int_equal(val_res_id("//groups/prod/nics/a", NULL, g, t, n), -EINVAL);
	assert_int_equal(val_res_id("/groups/prod/nics/a ", NULL, g, t, n), -EINVAL);
	snprintf(long_id, sizeof(long_id), "/groups/g/nics/%065d", 0);
	assert_int_equal(val_res_id(long_id, NULL, g, t, n), -EINVAL);
	snprintf(long_id, sizeof(long_id), "/groups/g/nics/1%063d", 0);
	assert_int_equal(val_res_id(long_id, NULL, g, t, n), 0);
	assert_int_equal(strlen(n), 64);
}

/* ---- properties ---- */

/* Runs val_res_props on JSON text; on success returns the properties and
 * refs, on failure checks that the message contains each needle. */
static json_t *props_ok(const char *type, const char *text, char ***ret_refs)
{
	json_t *body = json_loads(text, 0, NULL), *out = NULL;
	char msg[VAL_MSG] = "", **refs = NULL;

	assert_non_null(body);
	if (val_res_props(type, body, &out, &refs, msg) != 0)
		fail_msg("%s %s refused: %s", type, text, msg);
	json_decref(body);
	if (ret_refs)
		*ret_refs = refs;
	else
		val_refs_free(refs);
	return out;
}

static void props_bad(const char *type, const char *text, const char *needle1, const char *needle2)
{
	json_t *body = json_loads(text, 0, NULL), *out = (json_t *)1;
	char msg[VAL_MSG] = "", **refs = (char **)1;

	assert_non_null(body);
	if (val_res_props(type, body, &out, &refs, msg) != -EINVAL)
		fail_msg("%s %s accepted", type, text);
	assert_ptr_equal(out, (json_t *)1); /* untouched */
	assert_ptr_equal(refs, (char **)1);
	if (!strstr(msg, needle1) || (needle2 && !strstr(msg, needle2)))
		fail_msg("%s %s: message \"%s\" lacks \"%s\"/\"%s\"", type, text, msg, needle1,
			 needle2 ? needle2 : "");
	json_decref(body);
}

static void assert_json(const json_t *j, const char *want)
{
	json_t *w = json_loads(want, 0, NULL);
	char *got = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);

	assert_non_null(w);
	if (!json_equal((json_t *)j, w))
		fail_msg("got %s, want %s", got, want);
	free(got);
	json_decref(w);
}

static void test_props_common(void **state)
{
	json_t *arr = json_array(), *out = NULL;
	char msg[VAL_MSG], **refs = NULL;

	(void)state;
	props_bad("things", "{}", "type:", "networks, nics, vms, bastions");
	props_bad("Networks", "{}", "type:", NULL);
	assert_int_equal(val_res_props("networks", arr, &out, &refs, msg), -EINVAL);
	assert_non_null(strstr(msg, "body: must be a JSON object"));
	json_decref(arr);
	/* Unknown properties are named, all of them. */
	props_bad("networks", "{\"address_prefixes\":[\"198.18.0.0/24\"],\"foo\":1,\"bar\":2}",
		  "\"foo\", \"bar\"", "address_prefixes");
	props_bad("vms", "{\"nic\":\"/groups/g/nics/n\",\"sshPort\":22}",
		  "unknown property \"sshPort\"", "nic, ssh_port, host_keys");
	/* Unprintable or huge keys are not echoed raw. */
	props_bad("networks", "{\"\\u00e9\\n\":1}", "unknown property \"???\"", NULL);
	/* id, type and name are ignored, so GET output can be PUT back. */
	out = props_ok("networks",
		       "{\"id\":\"/groups/g/networks/other\",\"type\":\"nics\",\"name\":\"x\","
		       "\"address_prefixes\":[\"198.18.0.0/24\"]}",
		       NULL);
	assert_json(out, "{\"address_prefixes\":[\"198.18.0.0/24\"]}");
	json_decref(out);
}

static void test_props_group(void **state)
{
	json_t *b = json_pack("{s:s,s:s,s:s}", "id", "/groups/x", "type", "groups", "name", "x");
	char msg[VAL_MSG];

	(void)state;
	assert_int_equal(val_group_body(b, msg), 0);
	json_object_set_new(b, "location", json_string("eu"));
	assert_int_equal(val_group_body(b, msg), -EINVAL);
	assert_non_null(strstr(msg, "\"location\""));
	assert_non_null(strstr(msg, "a group has no properties"));
	json_decref(b);
	b = json_array();
	assert_int_equal(val_group_body(b, msg), -EINVAL);
	json_decref(b);
}

static void test_props_networks(void **state)
{
	char **refs;
	json_t *out;
	char many[64 * 24 + 64];
	size_t used;

	(void)state;
	out = props_ok("networks", "{\"address_prefixes\":[\"198.18.0.0/24\",\"2001:DB8::/64\"]}",
		       &refs);
	assert_json(out, "{\"address_prefixes\":[\"198.18.0.0/24\",\"2001:db8::/64\"]}");
	assert_null(refs[0]);
	val_refs_free(refs);
	json_decref(out);

	props_bad("networks", "{}", "address_prefixes: required", NULL);
	props_bad("networks", "{\"address_prefixes\":[]}", "address_prefixes: must be", "1 to 64");
	props_bad("networks", "{\"address_prefixes\":\"198.18.0.0/24\"}",
		  "address_prefixes: must be", NULL);
	props_bad("networks", "{\"address_prefixes\":null}", "address_prefixes: must be", NULL);
	props_bad("networks", "{\"address_prefixes\":[\"198.18.0.1/24\"]}",
		  "address_prefixes[0]: 198.18.0.1/24 has host bits set",
		  "the network address would be 198.18.0.0/24");
	props_bad("networks", "{\"address_prefixes\":[\"2001:db8::/64\",\"2001:db8::1/48\"]}",
		  "address_prefixes[1]", "2001:db8::/48");
	props_bad("networks", "{\"address_prefixes\":[\"198.18.0.0/33\"]}", "address_prefixes[0]",
		  "0 to 32 for IPv4");
	props_bad("networks", "{\"address_prefixes\":[\"::/129\"]}", "address_prefixes[0]",
		  "0 to 128 for IPv6");
	props_bad("networks", "{\"address_prefixes\":[\"198.18.0.0\"]}", "address_prefixes[0]",
		  "is not a CIDR");
	props_bad("networks", "{\"address_prefixes\":[\"010.0.0.0/8\"]}", "address_prefixes[0]",
		  "no leading zeros");
	props_bad("networks", "{\"address_prefixes\":[24]}", "address_prefixes[0]: must be a CIDR",
		  NULL);
	props_bad("networks", "{\"address_prefixes\":[\"198.18.0.0/24\",\"198.18.0.0/24\"]}",
		  "address_prefixes[1]: 198.18.0.0/24 is already listed at address_prefixes[0]",
		  NULL);
	/* Duplicates are found after normalization. */
	props_bad("networks", "{\"address_prefixes\":[\"2001:db8::/64\",\"2001:DB8:0::/64\"]}",
		  "address_prefixes[1]", "already listed");

	/* 64 prefixes are fine, 65 are not. */
	used = (size_t)snprintf(many, sizeof(many), "{\"address_prefixes\":[");
	for (int i = 0; i < 64; i++)
		used += (size_t)snprintf(many + used, sizeof(many) - used, "%s\"10.%d.0.0/16\"",
					 i ? "," : "", i);
	snprintf(many + used, sizeof(many) - used, "]}");
	json_decref(props_ok("networks", many, NULL));
	snprintf(many + used, sizeof(many) - used, ",\"10.200.0.0/16\"]}");
	props_bad("networks", many, "address_prefixes: must be", "1 to 64");
}

static void test_props_nics(void **state)
{
	char **refs;
	json_t *out, *body;
	char msg[VAL_MSG];

	(void)state;
	out = props_ok("nics",
		       "{\"network\":\"/groups/g/networks/n\",\"private_ip\":\"2001:DB8::5\"}",
		       &refs);
	assert_json(out, "{\"network\":\"/groups/g/networks/n\",\"private_ip\":\"2001:db8::5\"}");
	assert_string_equal(refs[0], "/groups/g/networks/n");
	assert_null(refs[1]);
	val_refs_free(refs);
	json_decref(out);

	props_bad("nics", "{\"private_ip\":\"198.18.0.5\"}", "network: required", NULL);
	props_bad("nics", "{\"network\":\"/groups/g/nics/n\",\"private_ip\":\"198.18.0.5\"}",
		  "network: must be the ID of a network", "/groups/{group}/networks/{name}");
	props_bad("nics", "{\"network\":\"n\",\"private_ip\":\"198.18.0.5\"}", "network:", NULL);
	props_bad("nics", "{\"network\":[\"/groups/g/networks/n\"],\"private_ip\":\"198.18.0.5\"}",
		  "network:", NULL);
	props_bad("nics", "{\"network\":\"/groups/g/networks/n\"}", "private_ip: required", NULL);
	props_bad("nics", "{\"network\":\"/groups/g/networks/n\",\"private_ip\":\"198.18.0.05\"}",
		  "private_ip: must be an IP address", NULL);
	props_bad("nics", "{\"network\":\"/groups/g/networks/n\",\"private_ip\":\"198.18.0.0/24\"}",
		  "private_ip:", NULL);
	props_bad("nics", "{\"network\":\"/groups/g/networks/n\",\"private_ip\":\"fe80::1%eth0\"}",
		  "private_ip:", "zone");
	props_bad("nics", "{\"network\":\"/groups/g/networks/n\",\"private_ip\":5}",
		  "private_ip:", NULL);
	props_bad("nics",
		  "{\"network\":\"/groups/g/networks/n\",\"private_ip\":\"::ffff:198.18.0.5\"}",
		  "private_ip: ::ffff:198.18.0.5 is an IPv4-mapped", "write 198.18.0.5");

	/* An embedded NUL (which the router's parser refuses anyway). */
	body = json_pack("{s:s,s:o}", "network", "/groups/g/networks/n", "private_ip",
			 json_stringn("198.18.0.5\0x", 12));
	out = (json_t *)1;
	assert_int_equal(val_res_props("nics", body, &out, &refs, msg), -EINVAL);
	assert_non_null(strstr(msg, "private_ip:"));
	json_decref(body);
}

static void test_props_vms(void **state)
{
	char **refs;
	json_t *out;

	(void)state;
	out = props_ok("vms", "{\"nic\":\"/groups/g/nics/n\"}", &refs);
	assert_json(out, "{\"nic\":\"/groups/g/nics/n\",\"ssh_port\":22,\"host_keys\":[],"
			 "\"ssh_legacy_algorithms\":[]}");
	assert_string_equal(refs[0], "/groups/g/nics/n");
	assert_null(refs[1]);
	val_refs_free(refs);
	json_decref(out);

	out = props_ok("vms", "{\"nic\":\"/groups/g/nics/n\",\"ssh_port\":null,\"host_keys\":null}",
		       NULL);
	assert_json(out, "{\"nic\":\"/groups/g/nics/n\",\"ssh_port\":22,\"host_keys\":[],"
			 "\"ssh_legacy_algorithms\":[]}");
	json_decref(out);

	/* known_hosts lines and bare keys, stored as "type base64". */
	out = props_ok("vms",
		       "{\"nic\":\"/groups/g/nics/n\",\"ssh_port\":2222,\"host_keys\":["
		       "\"198.18.0.5 " ED25519 "\",\"" ECDSA " root@vm\"]}",
		       NULL);
	assert_json(out, "{\"nic\":\"/groups/g/nics/n\",\"ssh_port\":2222,\"host_keys\":[\"" ED25519
			 "\",\"" ECDSA "\"],\"ssh_legacy_algorithms\":[]}");
	json_decref(out);

	/* Legacy algorithms: names from the allowlist, each once. */
	out = props_ok("vms",
		       "{\"nic\":\"/groups/g/nics/n\",\"ssh_legacy_algorithms\":[\"ssh-rsa\","
		       "\"diffie-hellman-group14-sha1\"]}",
		       NULL);
	assert_json(out,
		    "{\"nic\":\"/groups/g/nics/n\",\"ssh_port\":22,\"host_keys\":[],"
		    "\"ssh_legacy_algorithms\":[\"ssh-rsa\",\"diffie-hellman-group14-sha1\"]}");
	json_decref(out);
	props_bad("vms", "{\"nic\":\"/groups/g/nics/n\",\"ssh_legacy_algorithms\":\"ssh-rsa\"}",
		  "ssh_legacy_algorithms:", "ssh-rsa");
	props_bad("vms", "{\"nic\":\"/groups/g/nics/n\",\"ssh_legacy_algorithms\":[\"hmac-md5\"]}",
		  "ssh_legacy_algorithms[0]: not on the allowlist", "aes128-cbc");
	props_bad("vms", "{\"nic\":\"/groups/g/nics/n\",\"ssh_legacy_algorithms\":[\"ssh-rsa\",1]}",
		  "ssh_legacy_algorithms[1]:", NULL);
	props_bad(
		"vms",
		"{\"nic\":\"/groups/g/nics/n\",\"ssh_legacy_algorithms\":[\"ssh-rsa\",\"ssh-rsa\"]}",
		"ssh_legacy_algorithms[1]: \"ssh-rsa\" is listed twice", NULL);
	json_decref(props_ok("vms", "{\"nic\":\"/groups/g/nics/n\",\"ssh_port\":1}", NULL));
	json_decref(props_ok("vms", "{\"nic\":\"/groups/g/nics/n\",\"ssh_port\":65535}", NULL));

	props_bad("vms", "{}", "nic: required", NULL);
	props_bad("vms", "{\"nic\":\"/groups/g/vms/n\"}", "nic: must be the ID of a NIC", NULL);
	props_bad("vms", "{\"nic\":\"/groups/g/nics/n\",\"ssh_port\":\"22\"}",
		  "ssh_port:", "not a string");
	props_bad("vms", "{\"nic\":\"/groups/g/nics/n\",\"ssh_port\":0}",
		  "ssh_port:", "1 to 65535");
	props_bad("vms", "{\"nic\":\"/groups/g/nics/n\",\"ssh_port\":65536}", "ssh_port:", NULL);
	props_bad("vms", "{\"nic\":\"/groups/g/nics/n\",\"ssh_port\":-22}", "ssh_port:", NULL);
	props_bad("vms", "{\"nic\":\"/groups/g/nics/n\",\"ssh_port\":22.0}", "ssh_port:", NULL);
	props_bad("vms", "{\"nic\":\"/groups/g/nics/n\",\"ssh_port\":true}", "ssh_port:", NULL);
	props_bad("vms", "{\"nic\":\"/groups/g/nics/n\",\"host_keys\":\"" ED25519 "\"}",
		  "host_keys:", "at most 16");
	props_bad("vms",
		  "{\"nic\":\"/groups/g/nics/n\",\"host_keys\":[\"ssh-ed25519 AAAAnotakey\"]}",
		  "host_keys[0]: not a public host key", NULL);
	props_bad("vms", "{\"nic\":\"/groups/g/nics/n\",\"host_keys\":[\"" ED25519 "\",7]}",
		  "host_keys[1]:", NULL);
	props_bad("vms", "{\"nic\":\"/groups/g/nics/n\",\"host_keys\":[\"\"]}",
		  "host_keys[0]:", NULL);
	props_bad("vms",
		  "{\"nic\":\"/groups/g/nics/n\",\"host_keys\":[\"" ED25519 "\",\"vm1 " ED25519
		  "\"]}",
		  "host_keys[1]: the same key as host_keys[0]", NULL);
	props_bad("vms",
		  "{\"nic\":\"/groups/g/nics/n\",\"host_keys\":[\"" ED25519 "\",\"" ED25519
		  "\",\"" ED25519 "\",\"" ED25519 "\",\"" ED25519 "\",\"" ED25519 "\",\"" ED25519
		  "\",\"" ED25519 "\",\"" ED25519 "\",\"" ED25519 "\",\"" ED25519 "\",\"" ED25519
		  "\",\"" ED25519 "\",\"" ED25519 "\",\"" ED25519 "\",\"" ED25519 "\",\"" ED25519
		  "\"]}",
		  "host_keys:", "at most 16");
}

static void test_props_bastions(void **state)
{
	char **refs;
	json_t *out;

	(void)state;
	out = props_ok("bastions",
		       "{\"networks\":[\"/groups/g/networks/a\",\"/groups/h/networks/b\"]}", &refs);
	assert_json(out, "{\"networks\":[\"/groups/g/networks/a\",\"/groups/h/networks/b\"],"
			 "\"tunnel_ports\":[]}");
	assert_string_equal(refs[0], "/groups/g/networks/a");
	assert_string_equal(refs[1], "/groups/h/networks/b");
	assert_null(refs[2]);
	val_refs_free(refs);
	json_decref(out);

	props_bad("bastions", "{}", "networks: required", NULL);
	props_bad("bastions", "{\"networks\":[]}", "networks: must be", "1 to 64");
	props_bad("bastions", "{\"networks\":\"/groups/g/networks/a\"}", "networks: must be", NULL);
	props_bad("bastions", "{\"networks\":[\"/groups/g/nics/a\"]}",
		  "networks[0]: must be the ID of a network", NULL);
	props_bad("bastions", "{\"networks\":[\"/groups/g/networks/a\",\"/groups/g/networks/a\"]}",
		  "networks[1]: /groups/g/networks/a is already listed at networks[0]", NULL);
	/* tunnel_ports: distinct ports 1-65535, [] by default. */
	out = props_ok("bastions",
		       "{\"networks\":[\"/groups/g/networks/a\"],\"tunnel_ports\":[5432,80]}",
		       NULL);
	assert_json(out, "{\"networks\":[\"/groups/g/networks/a\"],\"tunnel_ports\":[5432,80]}");
	json_decref(out);
	props_bad("bastions", "{\"networks\":[\"/groups/g/networks/a\"],\"tunnel_ports\":80}",
		  "tunnel_ports: must be an array", NULL);
	props_bad("bastions", "{\"networks\":[\"/groups/g/networks/a\"],\"tunnel_ports\":[0]}",
		  "tunnel_ports[0]: must be an integer from 1 to 65535", NULL);
	props_bad("bastions",
		  "{\"networks\":[\"/groups/g/networks/a\"],\"tunnel_ports\":[22,65536]}",
		  "tunnel_ports[1]: must be an integer from 1 to 65535", NULL);
	props_bad("bastions", "{\"networks\":[\"/groups/g/networks/a\"],\"tunnel_ports\":[\"80\"]}",
		  "tunnel_ports[0]: must be an integer", NULL);
	props_bad("bastions", "{\"networks\":[\"/groups/g/networks/a\"],\"tunnel_ports\":[80,80]}",
		  "tunnel_ports[1]: 80 is already listed at tunnel_ports[0]", NULL);
	/* recording (SPEC §8): one of three words, absent meaning off. */
	out = props_ok("bastions",
		       "{\"networks\":[\"/groups/g/networks/a\"],\"recording\":\"input_output\"}",
		       NULL);
	assert_json(out, "{\"networks\":[\"/groups/g/networks/a\"],\"recording\":\"input_output\","
			 "\"tunnel_ports\":[]}");
	json_decref(out);
	json_decref(props_ok("bastions",
			     "{\"networks\":[\"/groups/g/networks/a\"],\"recording\":\"off\"}",
			     NULL));
	json_decref(props_ok("bastions",
			     "{\"networks\":[\"/groups/g/networks/a\"],\"recording\":\"output\"}",
			     NULL));
	props_bad("bastions", "{\"networks\":[\"/groups/g/networks/a\"],\"recording\":\"on\"}",
		  "recording: must be", NULL);
	props_bad("bastions", "{\"networks\":[\"/groups/g/networks/a\"],\"recording\":true}",
		  "recording: must be", NULL);
	props_bad("bastions", "{\"networks\":[\"/groups/g/networks/a\"],\"recording\":\"Output\"}",
		  "recording: must be", NULL);
	/* IDs are case-sensitive: these are two networks. */
	json_decref(props_ok("bastions",
			     "{\"networks\":[\"/groups/g/networks/a\",\"/groups/g/networks/A\"]}",
			     NULL));
}

static void test_props_vaults(void **state)
{
	json_t *p = props_ok("vaults", "{}", NULL);

	(void)state;
	assert_json(p, "{\"soft_delete_retention_days\":7}");
	json_decref(p);
	p = props_ok("vaults", "{\"soft_delete_retention_days\":90,\"id\":\"x\"}", NULL);
	assert_json(p, "{\"soft_delete_retention_days\":90}");
	json_decref(p);
	p = props_ok("vaults", "{\"soft_delete_retention_days\":null}", NULL);
	assert_json(p, "{\"soft_delete_retention_days\":7}");
	json_decref(p);
	props_bad("vaults", "{\"soft_delete_retention_days\":6}", "soft_delete_retention_days",
		  "7 to 90");
	props_bad("vaults", "{\"soft_delete_retention_days\":91}", "soft_delete_retention_days",
		  NULL);
	props_bad("vaults", "{\"soft_delete_retention_days\":\"7\"}", "soft_delete_retention_days",
		  NULL);
	props_bad("vaults", "{\"secrets\":[]}", "unknown property", "soft_delete_retention_days");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_types),
		cmocka_unit_test(test_ip),
		cmocka_unit_test(test_cidr),
		cmocka_unit_test(test_contains),
		cmocka_unit_test(test_prefixes_contain),
		cmocka_unit_test(test_res_id),
		cmocka_unit_test(test_props_common),
		cmocka_unit_test(test_props_group),
		cmocka_unit_test(test_props_networks),
		cmocka_unit_test(test_props_nics),
		cmocka_unit_test(test_props_vms),
		cmocka_unit_test(test_props_bastions),
		cmocka_unit_test(test_props_vaults),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
