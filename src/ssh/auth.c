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

static void auth_denied(struct sshc *c, int rc)
{
	int methods = ssh_userauth_list(c->s, NULL);
	char m[96];

	if (rc == SSH_AUTH_PARTIAL) {
		sshc_fail(
			c, -BERR_SSH_AUTH,
			"the VM wants a second authentication step for user %s, which is not supported",
			c->username);
	} else if (c->auth == SSHC_AUTH_KEY && !(methods & SSH_AUTH_METHOD_PUBLICKEY)) {
		sshc_fail(c, -BERR_SSH_AUTH,
			  "the VM does not accept keys for user %s (it offers: %s)", c->username,
			  methods_text(methods, m, sizeof(m)));
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
		rc = ssh_userauth_password(c->s, NULL, c->password);
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
		rc = ssh_userauth_kbdint(c->s, NULL, NULL);
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
		rc = ssh_userauth_publickey(c->s, NULL, c->key);
		if (rc == SSH_AUTH_AGAIN)
			return false;
		auth_result(c, rc);
		return !c->closing;
	default:
		return false;
	}
}
