/* User authentication towards the VM: password (falling back to
 * keyboard-interactive, as PAM set-ups want), public key, and the messages
 * that say why the VM refused. Runs inside the connect-phase state machine
 * of sshc.c (sshc_auth_step), on the session's loop. */
#include "ssh/internal.h"

#include "core/err.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KBDINT_MAX_ROUNDS 8

static const char *methods_text(int m, char *buf, size_t size)
{
	buf[0] = '\0';
	if (m & SSH_AUTH_METHOD_PUBLICKEY)
		sshc_add_algo(buf, size, "publickey");
	if (m & SSH_AUTH_METHOD_PASSWORD)
		sshc_add_algo(buf, size, "password");
	if (m & SSH_AUTH_METHOD_INTERACTIVE)
		sshc_add_algo(buf, size, "keyboard-interactive");
	if (m & SSH_AUTH_METHOD_GSSAPI_MIC)
		sshc_add_algo(buf, size, "gssapi-with-mic");
	if (buf[0] == '\0')
		snprintf(buf, size, "none");
	return buf;
}

static bool is_rsa(const struct sshc *c)
{
	return c->key != NULL && ssh_key_type(c->key) == SSH_KEYTYPE_RSA;
}

static void auth_denied(struct sshc *c, int rc)
{
	int methods = ssh_userauth_list(c->s, NULL);
	char m[96];

	if (rc == SSH_AUTH_PARTIAL) {
		sshc_fail(
			c, -BERR_SSH_AUTH,
			"the VM wants a second authentication step for user %s, which is not supported",
			c->username);
	} else if (c->auth == SSHC_AUTH_KEY && methods == 0 && is_rsa(c)) {
		/* libssh refused to sign before asking the VM: the VM does not
		 * announce rsa-sha2 (server-sig-algs), and SHA-1 ssh-rsa
		 * signatures are off unless the VM allows them. */
		sshc_fail(
			c, -BERR_SSH_AUTH,
			"the VM accepts RSA keys only with SHA-1 signatures (ssh-rsa), which are "
			"off by default; an Owner may allow them for this VM with the property "
			"\"ssh_legacy_algorithms\": [\"ssh-rsa\"], or use an ed25519 or ECDSA key");
	} else if (c->auth == SSHC_AUTH_KEY && !(methods & SSH_AUTH_METHOD_PUBLICKEY)) {
		sshc_fail(c, -BERR_SSH_AUTH,
			  "the VM does not accept keys for user %s (it offers: %s)", c->username,
			  methods_text(methods, m, sizeof(m)));
	} else if (c->auth == SSHC_AUTH_KEY && is_rsa(c) && !sshc_legacy_allowed(c, "ssh-rsa")) {
		sshc_fail(
			c, -BERR_SSH_AUTH,
			"the VM refused the key for user %s (an RSA key: a VM that takes only "
			"SHA-1 ssh-rsa signatures needs \"ssh-rsa\" in its ssh_legacy_algorithms)",
			c->username);
	} else if (c->auth == SSHC_AUTH_KEY) {
		sshc_fail(c, -BERR_SSH_AUTH, "the VM refused the key for user %s", c->username);
	} else if (!(methods & (SSH_AUTH_METHOD_PASSWORD | SSH_AUTH_METHOD_INTERACTIVE)) &&
		   !c->kbdint_tried) {
		sshc_fail(c, -BERR_SSH_AUTH,
			  "the VM does not accept passwords for user %s (it offers: %s)",
			  c->username, methods_text(methods, m, sizeof(m)));
	} else {
		sshc_fail(c, -BERR_SSH_AUTH, "the VM refused the password for user %s",
			  c->username);
	}
}

/* The banner arrives during authentication (sshd sends it before its
 * first answer); libssh keeps the last one. Shown only once signed in: a
 * refused connect answers with its error alone. */
static void keep_banner(struct sshc *c)
{
	char *raw = ssh_get_issue_banner(c->s);
	uint8_t *buf;
	size_t n;

	if (raw == NULL)
		return;
	buf = malloc(SSHC_BANNER_MAX);
	if (buf != NULL) {
		n = sshc_banner_clean(raw, strlen(raw), buf);
		if (n > 0) {
			c->banner = buf;
			c->banner_len = n;
			buf = NULL;
		}
	}
	free(buf);
	ssh_string_free_char(raw);
}

/* Maps a libssh userauth answer; returns true when the step is over
 * (success moves on, anything else has failed the session). */
static bool auth_result(struct sshc *c, int rc)
{
	switch (rc) {
	case SSH_AUTH_SUCCESS:
		sshc_forget_secrets(c);
		keep_banner(c);
		sshc_set_state(c, ST_CHANNEL_OPEN);
		return true;
	case SSH_AUTH_DENIED:
	case SSH_AUTH_PARTIAL:
		auth_denied(c, rc);
		return true;
	default:
		sshc_fail(c, sshc_session_dead(c) ? -BERR_PROTOCOL : -BERR_SSH_AUTH,
			  "SSH authentication as %s failed: %s", c->username, ssh_get_error(c->s));
		return true;
	}
}

void sshc_auth_begin(struct sshc *c)
{
	sshc_set_state(c, c->auth == SSHC_AUTH_KEY ? ST_AUTH_KEY : ST_AUTH_PASSWORD);
}

bool sshc_auth_step(struct sshc *c)
{
	int rc;

	switch (c->state) {
	case ST_AUTH_PASSWORD:
		rc = ssh_userauth_password(c->s, c->username, c->password);
		if (rc == SSH_AUTH_AGAIN)
			return false;
		if (rc == SSH_AUTH_DENIED && !c->kbdint_tried &&
		    (ssh_userauth_list(c->s, NULL) & SSH_AUTH_METHOD_INTERACTIVE)) {
			/* Many sshd set-ups only take passwords through
			 * keyboard-interactive (PAM). */
			c->kbdint_tried = true;
			sshc_set_state(c, ST_AUTH_KBDINT);
			return true;
		}
		auth_result(c, rc);
		return !c->closing;
	case ST_AUTH_KBDINT:
		rc = ssh_userauth_kbdint(c->s, c->username, NULL);
		if (rc == SSH_AUTH_AGAIN)
			return false;
		if (rc == SSH_AUTH_INFO) {
			int n = ssh_userauth_kbdint_getnprompts(c->s);

			if (++c->kbdint_rounds > KBDINT_MAX_ROUNDS || n < 0 || n > 8) {
				sshc_fail(
					c, -BERR_SSH_AUTH,
					"the VM asked too many questions while signing in user %s",
					c->username);
				return false;
			}
			for (int i = 0; i < n; i++) {
				if (ssh_userauth_kbdint_setanswer(c->s, (unsigned)i, c->password) <
				    0) {
					sshc_fail(
						c, -BERR_SSH_AUTH,
						"could not answer the VM's sign-in prompt for user %s",
						c->username);
					return false;
				}
			}
			return true;
		}
		auth_result(c, rc);
		return !c->closing;
	case ST_AUTH_KEY:
		rc = ssh_userauth_publickey(c->s, c->username, c->key);
		if (rc == SSH_AUTH_AGAIN)
			return false;
		if (rc == SSH_AUTH_DENIED && is_rsa(c) && !c->rsa_sha1_tried &&
		    sshc_legacy_allowed(c, "ssh-rsa") &&
		    (ssh_userauth_list(c->s, NULL) & SSH_AUTH_METHOD_PUBLICKEY)) {
			/* A VM allowed ssh-rsa may announce rsa-sha2 and still
			 * take only SHA-1 signatures (PubkeyAcceptedAlgorithms
			 * ssh-rsa): once more with SHA-1, as OpenSSH's client
			 * tries each algorithm it may use. libssh signs with
			 * SHA-1 only when no rsa-sha2 is acceptable. */
			c->rsa_sha1_tried = true;
			if (ssh_options_set(c->s, SSH_OPTIONS_PUBLICKEY_ACCEPTED_TYPES,
					    "ssh-rsa") == 0)
				return true;
		}
		auth_result(c, rc);
		return !c->closing;
	default:
		return false;
	}
}
