/* The algorithms the bastion offers in the SSH handshake: the legacy ones
 * a VM may allow by name (VM property ssh_legacy_algorithms, a fixed
 * allowlist, none by default), the option lists given to libssh when it
 * does, and the explanation of a handshake the two sides could not agree
 * on (which algorithms each side offers, in whole names). */
#include "ssh/internal.h"

#include "core/err.h"
#include "core/log.h"

#include <stdio.h>
#include <string.h>

enum family { F_KEX, F_HOSTKEY, F_CIPHER, F_MAC };

/* Every name here was checked against libssh 0.10 (tests/unit/test_sshc.c
 * sets each one). ssh-dss and hmac-md5 are not built into Debian's libssh,
 * so they cannot be allowed at all. */
static const struct legacy {
	const char *name;
	enum family family;
} legacy[] = {
	{ "diffie-hellman-group14-sha1", F_KEX },
	{ "diffie-hellman-group-exchange-sha1", F_KEX },
	{ "diffie-hellman-group1-sha1", F_KEX },
	{ "ssh-rsa", F_HOSTKEY }, /* also user keys signed with SHA-1 */
	{ "aes256-cbc", F_CIPHER },
	{ "aes192-cbc", F_CIPHER },
	{ "aes128-cbc", F_CIPHER },
	{ "3des-cbc", F_CIPHER },
	{ "hmac-sha1-etm@openssh.com", F_MAC },
	{ "hmac-sha1", F_MAC },
};

_Static_assert(sizeof(legacy) / sizeof(legacy[0]) <= 32, "a bit each in legacy_algos");

/* What libssh 0.10 offers by default, written out because an option
 * replaces the whole list (no "+name" syntax in 0.10). Used only for a VM
 * that allows a legacy algorithm of that family: the others keep libssh's
 * own defaults. */
static const char kex_default[] =
	"curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,"
	"ecdh-sha2-nistp521,diffie-hellman-group18-sha512,diffie-hellman-group16-sha512,"
	"diffie-hellman-group-exchange-sha256,diffie-hellman-group14-sha256";
static const char cipher_default[] = "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,"
				     "aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr";
static const char mac_default[] = "hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,"
				  "hmac-sha2-256,hmac-sha2-512";
static const char pubkey_default[] = "ssh-ed25519,ecdsa-sha2-nistp521,ecdsa-sha2-nistp384,"
				     "ecdsa-sha2-nistp256,rsa-sha2-512,rsa-sha2-256";

int sshc_legacy_algo(const char *name)
{
	for (size_t i = 0; name != NULL && i < sizeof(legacy) / sizeof(legacy[0]); i++)
		if (strcmp(legacy[i].name, name) == 0)
			return (int)i;
	return -EINVAL;
}

const char *sshc_legacy_algo_name(int i)
{
	return i >= 0 && (size_t)i < sizeof(legacy) / sizeof(legacy[0]) ? legacy[i].name : NULL;
}

bool sshc_legacy_allowed(const struct sshc *c, const char *name)
{
	int i = sshc_legacy_algo(name);

	return i >= 0 && (c->legacy_algos & (1u << i)) != 0;
}

/* The default list of a family with the allowed legacy names of that
 * family after it (preferred last). Returns false when none is allowed. */
static bool with_legacy(const struct sshc *c, enum family f, const char *base, char *out,
			size_t size)
{
	bool any = false;

	snprintf(out, size, "%s", base);
	for (size_t i = 0; i < sizeof(legacy) / sizeof(legacy[0]); i++) {
		if (legacy[i].family == f && (c->legacy_algos & (1u << i))) {
			sshc_add_algo(out, size, legacy[i].name);
			any = true;
		}
	}
	return any;
}

int sshc_set_legacy_algos(struct sshc *c)
{
	char list[768];

	if (with_legacy(c, F_KEX, kex_default, list, sizeof(list)) &&
	    ssh_options_set(c->s, SSH_OPTIONS_KEY_EXCHANGE, list) < 0)
		return -EINVAL;
	if (with_legacy(c, F_CIPHER, cipher_default, list, sizeof(list)) &&
	    (ssh_options_set(c->s, SSH_OPTIONS_CIPHERS_C_S, list) < 0 ||
	     ssh_options_set(c->s, SSH_OPTIONS_CIPHERS_S_C, list) < 0))
		return -EINVAL;
	if (with_legacy(c, F_MAC, mac_default, list, sizeof(list)) &&
	    (ssh_options_set(c->s, SSH_OPTIONS_HMAC_C_S, list) < 0 ||
	     ssh_options_set(c->s, SSH_OPTIONS_HMAC_S_C, list) < 0))
		return -EINVAL;
	/* ssh-rsa also lets an RSA user key sign with SHA-1, for a VM whose
	 * sshd predates rsa-sha2 (the host key list is in hostkey.c). */
	if (with_legacy(c, F_HOSTKEY, pubkey_default, list, sizeof(list)) &&
	    ssh_options_set(c->s, SSH_OPTIONS_PUBLICKEY_ACCEPTED_TYPES, list) < 0)
		return -EINVAL;
	return 0;
}

/* ---- a handshake the two sides could not agree on ---- */

static const struct {
	const char *libssh; /* ssh_kex_descriptions[] of libssh 0.10 */
	const char *what;
	enum family family;
} methods[] = {
	{ "kex algos", "key-exchange algorithm", F_KEX },
	{ "server host key algo", "host key algorithm", F_HOSTKEY },
	{ "encryption client->server", "cipher", F_CIPHER },
	{ "encryption server->client", "cipher", F_CIPHER },
	{ "mac algo client->server", "MAC algorithm", F_MAC },
	{ "mac algo server->client", "MAC algorithm", F_MAC },
};

/* Copies the comma-separated list [p, end) into out as "a, b, c", whole
 * names only: what does not fit becomes "and N more". */
static void list_text(const char *p, const char *end, char *out, size_t size)
{
	size_t o = 0, left = 0;
	char more[32];

	out[0] = '\0';
	while (p < end) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		size_t n = (size_t)((comma ? comma : end) - p);

		/* Protocol markers, not algorithms anyone chooses. */
		if ((n >= 9 && memcmp(p, "ext-info-", 9) == 0) ||
		    (n >= 11 && memcmp(p, "kex-strict-", 11) == 0)) {
			p = comma ? comma + 1 : end;
			continue;
		}

		/* Room for ", " + the name + the longest "and N more". */
		if (left == 0 && o + n + 2 + sizeof(more) < size) {
			if (o > 0) {
				memcpy(out + o, ", ", 2);
				o += 2;
			}
			memcpy(out + o, p, n);
			o += n;
			out[o] = '\0';
		} else if (n > 0) {
			left++;
		}
		p = comma ? comma + 1 : end;
	}
	if (left > 0) {
		snprintf(more, sizeof(more), " and %zu more", left);
		snprintf(out + o, size - o, "%s", more);
	}
	if (o == 0 && left == 0)
		snprintf(out, size, "nothing");
}

/* The legacy names the VM offers that this VM does not allow yet, as a
 * JSON-ish list for the message; empty when there are none. */
static void legacy_offered(const struct sshc *c, const char *p, const char *end, char *out,
			   size_t size)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < sizeof(legacy) / sizeof(legacy[0]); i++) {
		size_t n = strlen(legacy[i].name);
		const char *q = p;
		bool found = false;

		while (!found && q < end && (q = memmem(q, (size_t)(end - q), legacy[i].name, n))) {
			found = (q == p || q[-1] == ',' || q[-1] == '[') &&
				(q + n == end || q[n] == ',');
			q += n;
		}
		if (!found || (c->legacy_algos & (1u << i)) || o + n + 5 >= size)
			continue;
		o += (size_t)snprintf(out + o, size - o, "%s\"%s\"", o ? ", " : "", legacy[i].name);
	}
}

/* Fails the session: method i found nothing in common between the VM's
 * list [srv, srv_end) and ours [cli, cli_end). */
static void fail_family(struct sshc *c, size_t i, const char *srv, const char *srv_end,
			const char *cli, const char *cli_end)
{
	char theirs[200], ours[200], allow[200];

	list_text(srv, srv_end, theirs, sizeof(theirs));
	list_text(cli, cli_end, ours, sizeof(ours));
	legacy_offered(c, srv, srv_end, allow, sizeof(allow));
	sshc_fail(c, -BERR_SSH_HANDSHAKE,
		  "the VM at %s port %u and the bastion share no %s: the VM offers %s; "
		  "the bastion offers %s%s%s%s",
		  c->ip, c->port, methods[i].what, theirs, ours,
		  allow[0] ? ". The VM offers only legacy algorithms: if it cannot be "
			     "updated, an Owner may allow them for this VM with the property "
			     "\"ssh_legacy_algorithms\": ["
			   : "",
		  allow, allow[0] ? "]" : "");
}

bool sshc_explain_handshake(struct sshc *c, const char *err)
{
	const char *m, *srv, *srv_end, *cli, *cli_end;

	if (err == NULL || (m = strstr(err, "no match for method ")) == NULL)
		return false;
	m += strlen("no match for method ");
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		size_t n = strlen(methods[i].libssh);

		if (strncmp(m, methods[i].libssh, n) != 0 || m[n] != ':')
			continue;
		if ((srv = strstr(m, "server [")) == NULL || (cli = strstr(m, "client [")) == NULL)
			return false;
		srv += strlen("server [");
		cli += strlen("client [");
		srv_end = strchr(srv, ']');
		cli_end = strchr(cli, ']');
		if (srv_end == NULL || cli_end == NULL)
			return false;
		fail_family(c, i, srv, srv_end, cli, cli_end);
		return true;
	}
	return false;
}

/* The first name of ours (comma-separated) that the VM's list has too, as
 * the client picks it (RFC 4253 §7.1); NULL when none. */
static const char *first_common(const char *ours, const char *theirs, size_t *ret_len)
{
	for (const char *p = ours; *p != '\0';) {
		size_t n = strcspn(p, ",");

		for (const char *q = theirs; *q != '\0';) {
			size_t m = strcspn(q, ",");

			if (m == n && memcmp(p, q, n) == 0) {
				*ret_len = n;
				return p;
			}
			q += m + (q[m] == ',');
		}
		p += n + (p[n] == ',');
	}
	return NULL;
}

bool sshc_explain_offer(struct sshc *c, const struct sshc_kexinit *k)
{
	char lists[2][768];
	const char *ours[SSHC_KEX_LISTS], *cipher;
	size_t len = 0;

	_Static_assert(sizeof(methods) / sizeof(methods[0]) == SSHC_KEX_LISTS, "one per list");
	if (!with_legacy(c, F_KEX, kex_default, lists[0], sizeof(lists[0])))
		snprintf(lists[0], sizeof(lists[0]), "%s", kex_default);
	ours[0] = lists[0];
	ours[1] = c->hostkey_offer[0] != '\0' ? c->hostkey_offer : pubkey_default;
	if (!with_legacy(c, F_CIPHER, cipher_default, lists[1], sizeof(lists[1])))
		snprintf(lists[1], sizeof(lists[1]), "%s", cipher_default);
	ours[2] = ours[3] = lists[1];
	ours[4] = ours[5] = NULL; /* built below: the buffers are reused */
	for (size_t i = 0; i < 4; i++) {
		if (first_common(ours[i], k->lists[i], &len) == NULL) {
			fail_family(c, i, k->lists[i], k->lists[i] + strlen(k->lists[i]), ours[i],
				    ours[i] + strlen(ours[i]));
			return true;
		}
	}
	/* An AEAD cipher brings its own integrity: no MAC is negotiated. */
	cipher = first_common(ours[2], k->lists[2], &len);
	if (cipher != NULL && (memmem(cipher, len, "-gcm@", 5) != NULL ||
			       memmem(cipher, len, "chacha20-poly1305", 17) != NULL))
		return false;
	if (!with_legacy(c, F_MAC, mac_default, lists[0], sizeof(lists[0])))
		snprintf(lists[0], sizeof(lists[0]), "%s", mac_default);
	for (size_t i = 4; i < SSHC_KEX_LISTS; i++) {
		if (first_common(lists[0], k->lists[i], &len) == NULL) {
			fail_family(c, i, k->lists[i], k->lists[i] + strlen(k->lists[i]), lists[0],
				    lists[0] + strlen(lists[0]));
			return true;
		}
	}
	return false;
}
