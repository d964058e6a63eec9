/* Host keys of the VM: which host key algorithms to ask for (the pinned
 * key types first) and the check of the key the VM presented against the
 * pinned keys, or trust on first use. Compared in memory: libssh's
 * known_hosts functions do blocking file I/O. */
#include "ssh/internal.h"

#include "core/err.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sshc_add_algo(char *list, size_t size, const char *algo)
{
	size_t n = strlen(algo), len = strlen(list);
	const char *p = list;

	while ((p = strstr(p, algo)) != NULL) {
		if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
			return;
		p += n;
	}
	if (len + n + 2 > size)
		return;
	if (len > 0)
		list[len++] = ',';
	memcpy(list + len, algo, n + 1);
}

/* Pinned key types first, so a VM with several host keys offers the one we
 * know instead of the one libssh prefers. */
void sshc_set_hostkey_algos(struct sshc *c)
{
	static const char *const defaults[] = {
		"ssh-ed25519",         "ecdsa-sha2-nistp521", "ecdsa-sha2-nistp384",
		"ecdsa-sha2-nistp256", "rsa-sha2-512",        "rsa-sha2-256",
	};
	char list[512] = "";

	for (size_t i = 0; i < c->n_host_keys; i++) {
		char *type = NULL, *b64 = NULL;

		if (c->host_keys[i] == NULL || sshc_hostkey_parse(c->host_keys[i], &type, &b64) < 0)
			continue;
		if (strcmp(type, "ssh-rsa") == 0) {
			sshc_add_algo(list, sizeof(list), "rsa-sha2-512");
			sshc_add_algo(list, sizeof(list), "rsa-sha2-256");
			if (sshc_legacy_allowed(c, "ssh-rsa"))
				sshc_add_algo(list, sizeof(list), "ssh-rsa");
		} else {
			sshc_add_algo(list, sizeof(list), type);
		}
		free(type);
		free(b64);
	}
	/* Without pinned keys and legacy names, libssh's own default. */
	if (list[0] == '\0' && !sshc_legacy_allowed(c, "ssh-rsa"))
		return;
	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
		sshc_add_algo(list, sizeof(list), defaults[i]);
	if (sshc_legacy_allowed(c, "ssh-rsa"))
		sshc_add_algo(list, sizeof(list), "ssh-rsa"); /* SHA-1: preferred last */
	snprintf(c->hostkey_offer, sizeof(c->hostkey_offer), "%s", list);
	if (ssh_options_set(c->s, SSH_OPTIONS_HOSTKEYS, list) < 0)
		log_debug("sshc %s:%u: could not set host key algorithms", c->ip, c->port);
}

/* Returns 0 when the host key is acceptable; otherwise the session has
 * failed (or was closed from on_new_host_key) and -1 comes back. */
int sshc_check_host_key(struct sshc *c)
{
	ssh_key key = NULL;
	char *b64 = NULL, *fp = NULL;
	unsigned char *hash = NULL;
	size_t hash_len = 0;
	const char *type;
	bool match = false;
	int r = -1;

	if (ssh_get_server_publickey(c->s, &key) != SSH_OK || key == NULL) {
		sshc_fail(c, -BERR_PROTOCOL, "the VM did not present a host key");
		goto out;
	}
	type = ssh_key_type_to_char(ssh_key_type(key));
	if (type == NULL || ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK) {
		sshc_fail(c, -BERR_PROTOCOL, "the VM presented an unsupported host key");
		goto out;
	}
	if (c->n_host_keys == 0) {
		log_debug("sshc %s:%u: first host key %s accepted", c->ip, c->port, type);
		if (c->cb.on_new_host_key != NULL)
			c->cb.on_new_host_key(c, type, b64, c->ud);
		r = c->closing ? -1 : 0;
		goto out;
	}
	for (size_t i = 0; i < c->n_host_keys && !match; i++) {
		char *ptype = NULL, *pb64 = NULL;

		if (c->host_keys[i] == NULL ||
		    sshc_hostkey_parse(c->host_keys[i], &ptype, &pb64) < 0)
			continue;
		match = strcmp(ptype, type) == 0 && strcmp(pb64, b64) == 0;
		free(ptype);
		free(pb64);
	}
	if (match) {
		r = 0;
		goto out;
	}
	if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hash_len) == 0)
		fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hash_len);
	sshc_fail(c, -BERR_HOSTKEY,
		  "the VM's host key does not match the pinned key: it offered %s %s", type,
		  fp != NULL ? fp : "(fingerprint unavailable)");
out:
	if (hash != NULL)
		ssh_clean_pubkey_hash(&hash);
	ssh_string_free_char(fp);
	ssh_string_free_char(b64);
	ssh_key_free(key);
	return r;
}
