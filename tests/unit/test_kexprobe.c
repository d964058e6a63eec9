/* Tests for src/ssh/kexprobe.c: reading what a VM offers from its KEXINIT,
 * against real sshds limited to one algorithm of each family, and the
 * parser against what a peer may send instead (short, long, not SSH). A
 * session against such a VM answers with both sides' lists whether libssh
 * or the probe explains it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/err.h"
#include "ssh/sshc.h"
#include "sshdtest.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool has_name(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; (p = strstr(p, name)) != NULL; p += n)
		if ((p == list || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
			return true;
	return false;
}

/* Each family limited on the VM: the probe reads exactly that list. */
static void test_probe_real_sshd(void **state)
{
	static const struct {
		const char *config;
		int list;
		const char *only;
	} cases[] = {
		{ "KexAlgorithms diffie-hellman-group14-sha1\n", 0, "diffie-hellman-group14-sha1" },
		{ "Ciphers aes128-cbc\n", 2, "aes128-cbc" },
		{ "MACs hmac-sha1\n", 4, "hmac-sha1" },
		{ "HostKeyAlgorithms ssh-ed25519\n", 1, "ssh-ed25519" },
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sshd d = { 0 };
		struct sshc_kexinit k;
		char tag[16];

		snprintf(tag, sizeof(tag), "c%zu", i);
		sshd_start(&d, tag, cases[i].config);
		assert_int_equal(sshc_kex_probe("127.0.0.1", d.port, 3000, &k), 0);
		assert_true(has_name(k.lists[cases[i].list], cases[i].only));
		/* Only that one (and the protocol's markers). */
		for (const char *p = k.lists[cases[i].list]; *p != '\0';) {
			size_t n = strcspn(p, ",");

			assert_true(
				(n == strlen(cases[i].only) && memcmp(p, cases[i].only, n) == 0) ||
				strncmp(p, "ext-info-", 9) == 0 ||
				strncmp(p, "kex-strict-", 11) == 0);
			p += n + (p[n] == ',');
		}
		/* The other families are the VM's usual ones. */
		assert_true(has_name(k.lists[3], "aes256-ctr") || i == 1);
		sshd_stop(&d);
	}
}

/* Nothing listening: an error, quickly, never a hang. */
static void test_probe_closed_port(void **state)
{
	struct sshc_kexinit k;
	(void)state;

	assert_true(sshc_kex_probe("127.0.0.1", free_port(), 1000, &k) < 0);
	assert_int_equal(sshc_kex_probe("not-an-ip", 22, 1000, &k), -EINVAL);
}

static size_t put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return 4;
}

/* Builds "lines + version + KEXINIT with lists" into buf. */
static size_t build(uint8_t *buf, const char *pre, const char *const lists[10], uint8_t msg)
{
	size_t o = 0, start, pad = 4;

	o += (size_t)snprintf((char *)buf, 512, "%sSSH-2.0-OpenSSH_9.2\r\n", pre);
	start = o;
	o += 4; /* packet length, below */
	buf[o++] = (uint8_t)pad;
	buf[o++] = msg;
	memset(buf + o, 0xab, 16);
	o += 16;
	for (int i = 0; i < 10; i++) {
		size_t n = strlen(lists[i]);

		o += put_u32(buf + o, (uint32_t)n);
		memcpy(buf + o, lists[i], n);
		o += n;
	}
	buf[o++] = 0; /* first_kex_packet_follows */
	o += put_u32(buf + o, 0);
	memset(buf + o, 0, pad);
	o += pad;
	put_u32(buf + start, (uint32_t)(o - start - 4));
	return o;
}

static void test_parse(void **state)
{
	static const char *const lists[10] = {
		"curve25519-sha256,kex-strict-s-v00@openssh.com",
		"ssh-ed25519",
		"aes256-ctr",
		"aes128-ctr",
		"hmac-sha2-256",
		"hmac-sha2-512",
		"none",
		"none",
		"",
		"",
	};
	static uint8_t buf[4096];
	struct sshc_kexinit k;
	size_t n;
	(void)state;

	/* Lines before the version are allowed (RFC 4253 §4.2). */
	n = build(buf, "Welcome\r\nanother line\r\n", lists, 20);
	assert_int_equal(sshc_kexinit_parse(buf, n, &k), 0);
	assert_string_equal(k.lists[0], lists[0]);
	assert_string_equal(k.lists[1], "ssh-ed25519");
	assert_string_equal(k.lists[5], "hmac-sha2-512");
	/* Every shorter prefix asks for more, never reads past the end. */
	for (size_t i = 0; i < n; i++) {
		uint8_t *copy = malloc(i + 1);

		assert_non_null(copy);
		memcpy(copy, buf, i);
		assert_int_equal(sshc_kexinit_parse(copy, i, &k), -EAGAIN);
		free(copy);
	}
	/* Not a KEXINIT, or a length beyond the protocol's bound. */
	n = build(buf, "", lists, 21);
	assert_int_equal(sshc_kexinit_parse(buf, n, &k), -EPROTO);
	n = build(buf, "", lists, 20);
	put_u32(buf + strlen("SSH-2.0-OpenSSH_9.2\r\n"), 40000);
	assert_int_equal(sshc_kexinit_parse(buf, n, &k), -EPROTO);
	/* A list longer than its field is cut at a name. */
	{
		static char lng[3000];
		const char *l2[10];

		memcpy(l2, lists, sizeof(l2));
		for (size_t o = 0; o + 12 < sizeof(lng); o += 11)
			memcpy(lng + o, o ? ",abcdefghij" : "abcdefghijk", 11);
		l2[0] = lng;
		n = build(buf, "", l2, 20);
		assert_int_equal(sshc_kexinit_parse(buf, n, &k), 0);
		assert_true(strlen(k.lists[0]) < sizeof(k.lists[0]));
		assert_int_equal(strlen(k.lists[0]) % 11, 0);
		assert_string_equal(k.lists[1], "ssh-ed25519");
	}
}

static int group_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/bastion-kexprobe-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	chmod(tmpdir, 0755);
	if (mkdir("/run/sshd", 0755) < 0 && errno != EEXIST && geteuid() == 0)
		return -1;
	keygen("host_key");
	write_file(path_of("authorized_keys"), "");
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	return sshd_cleanup();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_probe_real_sshd),
		cmocka_unit_test(test_probe_closed_port),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
