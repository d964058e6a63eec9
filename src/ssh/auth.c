/* User authentication towards the VM: password (falling back to
 * keyboard-interactive, as PAM set-ups want), public key, and the messages
 * that say why the VM refused. Runs inside the connect-phase state machine
 * of sshc.c (sshc_auth_step), on the session's loop. */
#include "ssh/internal.h"

#include "core/err.h"
#include "core/log.h"
#include "core/util.h"

#include <errno.h>
#include <sodium.h>
#include <strings.h>

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

static void auth_denied(struct sshc *c)
{
	int methods = ssh_userauth_list(c->s, NULL);
	char m[96];

	if (c->state == ST_AUTH_KEY && methods == 0 && is_rsa(c)) {
		/* libssh refused to sign before asking the VM: the VM does not
		 * announce rsa-sha2 (server-sig-algs), and SHA-1 ssh-rsa
		 * signatures are off unless the VM allows them. */
		sshc_fail(
			c, -BERR_SSH_AUTH,
			"the VM accepts RSA keys only with SHA-1 signatures (ssh-rsa), which are "
			"off by default; an Owner may allow them for this VM with the property "
			"\"ssh_legacy_algorithms\": [\"ssh-rsa\"], or use an ed25519 or ECDSA key");
	} else if (c->state == ST_AUTH_KEY && !(methods & SSH_AUTH_METHOD_PUBLICKEY)) {
		sshc_fail(c, -BERR_SSH_AUTH,
			  "the VM does not accept keys for user %s (it offers: %s)", c->username,
			  methods_text(methods, m, sizeof(m)));
	} else if (c->state == ST_AUTH_KEY && is_rsa(c) && !sshc_legacy_allowed(c, "ssh-rsa")) {
		sshc_fail(
			c, -BERR_SSH_AUTH,
			"the VM refused the key for user %s (an RSA key: a VM that takes only "
			"SHA-1 ssh-rsa signatures needs \"ssh-rsa\" in its ssh_legacy_algorithms)",
			c->username);
	} else if (c->state == ST_AUTH_KEY) {
		sshc_fail(c, -BERR_SSH_AUTH, "the VM refused the key for user %s", c->username);
	} else if (c->state == ST_AUTH_PASSWORD && !c->kbdint_tried &&
		   !(methods & (SSH_AUTH_METHOD_PASSWORD | SSH_AUTH_METHOD_INTERACTIVE))) {
		sshc_fail(c, -BERR_SSH_AUTH,
			  "the VM does not accept passwords for user %s (it offers: %s)",
			  c->username, methods_text(methods, m, sizeof(m)));
	} else if (c->state == ST_AUTH_KBDINT && c->challenges > 0) {
		sshc_fail(c, -BERR_SSH_AUTH,
			  "the VM refused the answers given for user %s (a wrong code or "
			  "password, or a new password it does not accept)",
			  c->username);
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

/* How many methods in a row a VM may ask for (AuthenticationMethods
 * publickey,password,keyboard-interactive is three). */
#define PARTIAL_MAX 4

static bool looks_like_password(const char *prompt)
{
	for (const char *p = prompt; *p; p++)
		if (strncasecmp(p, "password", 8) == 0)
			return true;
	return false;
}

static void answer_timeout_cb(uv_timer_t *t)
{
	struct sshc *c = t->data;

	if (!c->closing && c->state == ST_AUTH_WAIT)
		sshc_fail(c, -BERR_SSH_AUTH,
			  "nobody answered the VM's sign-in questions for user %s within %u s",
			  c->username, SSHC_ANSWER_TIMEOUT_MS / 1000);
}

/* Hands the challenge to the user and waits. Returns false: the step loop
 * stops here (also when it failed). */
static bool ask_user(struct sshc *c, const struct sshc_challenge *ch)
{
	if (c->cb.on_challenge == NULL) {
		sshc_fail(c, -BERR_SSH_AUTH,
			  "the VM asks questions while signing in user %s (\"%s\") that this "
			  "client cannot pass on",
			  c->username, ch->prompts[0].text);
		return false;
	}
	c->challenges++;
	sshc_set_state(c, ST_AUTH_WAIT);
	uv_timer_start(&c->timer, answer_timeout_cb, SSHC_ANSWER_TIMEOUT_MS, 0);
	sshc_update_poll(c);
	c->cb.on_challenge(c, ch, c->ud);
	return false;
}

/* One keyboard-interactive round: the password answers the first prompt
 * that looks like a password prompt (echo off) in the first round, as the
 * user typed it for that; every other prompt goes to the user, as
 * OpenSSH's client shows each to its user. */
static bool kbdint_round(struct sshc *c)
{
	struct sshc_challenge *ch = NULL;
	int n = ssh_userauth_kbdint_getnprompts(c->s);
	size_t user_n = 0;
	bool ok = false;

	if (++c->kbdint_rounds > KBDINT_MAX_ROUNDS || n < 0 || n > SSHC_PROMPTS_MAX) {
		sshc_fail(c, -BERR_SSH_AUTH,
			  "the VM asked too many questions while signing in user %s", c->username);
		return false;
	}
	if ((ch = calloc(1, sizeof(*ch))) == NULL) {
		sshc_fail(c, -BERR_SSH_AUTH, "out of memory signing in user %s", c->username);
		return false;
	}
	for (int i = 0; i < n; i++) {
		char echo = 0;
		const char *prompt = ssh_userauth_kbdint_getprompt(c->s, (unsigned)i, &echo);

		if (prompt == NULL)
			prompt = "";
		if (c->password != NULL && !c->password_used && c->kbdint_rounds == 1 && !echo &&
		    looks_like_password(prompt)) {
			c->password_used = true;
			if (ssh_userauth_kbdint_setanswer(c->s, (unsigned)i, c->password) < 0)
				goto setanswer_failed;
			continue;
		}
		sshc_text_clean(prompt, strlen(prompt), ch->prompts[user_n].text, SSHC_PROMPT_MAX);
		ch->prompts[user_n].echo = echo != 0;
		c->wait_map[user_n++] = (uint8_t)i;
	}
	if (user_n == 0) {
		ok = true; /* all answered (or nothing asked): send and go on */
		goto out;
	}
	{
		const char *name = ssh_userauth_kbdint_getname(c->s);
		const char *instr = ssh_userauth_kbdint_getinstruction(c->s);

		sshc_text_clean(name, name ? strlen(name) : 0, ch->name, SSHC_PROMPT_MAX);
		sshc_text_clean(instr, instr ? strlen(instr) : 0, ch->instruction, SSHC_PROMPT_MAX);
	}
	ch->n_prompts = user_n;
	ch->round = c->challenges + 1;
	c->wait = WAIT_KBDINT;
	c->wait_n = user_n;
	ask_user(c, ch);
	goto out;
setanswer_failed:
	sshc_fail(c, -BERR_SSH_AUTH, "could not answer the VM's sign-in prompt for user %s",
		  c->username);
out:
	sodium_memzero(ch, sizeof(*ch));
	free(ch);
	return ok;
}

/* The VM accepted one method and wants another (AuthenticationMethods
 * with a comma). Returns true when the step loop goes on. */
static bool next_method(struct sshc *c)
{
	int methods = ssh_userauth_list(c->s, NULL);
	char m[96];

	if (c->state == ST_AUTH_KEY)
		c->key_used = true;
	if (++c->partial_steps > PARTIAL_MAX) {
		sshc_fail(c, -BERR_SSH_AUTH, "the VM asked for too many sign-in steps for user %s",
			  c->username);
		return false;
	}
	if (methods & SSH_AUTH_METHOD_INTERACTIVE) {
		c->kbdint_tried = true;
		c->kbdint_rounds = 0;
		sshc_set_state(c, ST_AUTH_KBDINT);
		return true;
	}
	if (methods & SSH_AUTH_METHOD_PASSWORD) {
		struct sshc_challenge *ch;

		if (c->password != NULL && c->state != ST_AUTH_PASSWORD) {
			sshc_set_state(c, ST_AUTH_PASSWORD);
			return true;
		}
		/* A key first, a password next: the user was not asked for one
		 * yet, so ask as sshd would through keyboard-interactive. */
		if ((ch = calloc(1, sizeof(*ch))) == NULL) {
			sshc_fail(c, -BERR_SSH_AUTH, "out of memory signing in user %s",
				  c->username);
			return false;
		}
		snprintf(ch->instruction, sizeof(ch->instruction),
			 "The VM wants the password of %s as well.", c->username);
		snprintf(ch->prompts[0].text, sizeof(ch->prompts[0].text), "Password: ");
		ch->n_prompts = 1;
		ch->round = c->challenges + 1;
		c->wait = WAIT_PASSWORD;
		c->wait_n = 1;
		ask_user(c, ch);
		free(ch);
		return false;
	}
	if ((methods & SSH_AUTH_METHOD_PUBLICKEY) && c->key != NULL && !c->key_used) {
		sshc_set_state(c, ST_AUTH_KEY);
		return true;
	}
	if (methods & SSH_AUTH_METHOD_PUBLICKEY)
		sshc_fail(c, -BERR_SSH_AUTH,
			  "the VM wants a key as well for user %s: connect with the key instead, "
			  "and the bastion asks for the password when the VM wants it",
			  c->username);
	else
		sshc_fail(c, -BERR_SSH_AUTH,
			  "the VM wants another sign-in step for user %s that the bastion cannot "
			  "do (it offers: %s)",
			  c->username, methods_text(methods, m, sizeof(m)));
	return false;
}

/* Maps a libssh userauth answer; returns true when the step loop goes on. */
static bool auth_result(struct sshc *c, int rc)
{
	switch (rc) {
	case SSH_AUTH_SUCCESS:
		sshc_forget_secrets(c);
		keep_banner(c);
		sshc_set_state(c, ST_CHANNEL_OPEN);
		return true;
	case SSH_AUTH_PARTIAL:
		return next_method(c);
	case SSH_AUTH_DENIED:
		auth_denied(c);
		return false;
	default:
		sshc_fail(c, sshc_session_dead(c) ? -BERR_PROTOCOL : -BERR_SSH_AUTH,
			  "SSH authentication as %s failed: %s", c->username, ssh_get_error(c->s));
		return false;
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
		if (rc == SSH_AUTH_PARTIAL)
			c->password_used = true;
		return auth_result(c, rc);
	case ST_AUTH_KBDINT:
		rc = ssh_userauth_kbdint(c->s, c->username, NULL);
		if (rc == SSH_AUTH_AGAIN)
			return false;
		if (rc == SSH_AUTH_INFO)
			return kbdint_round(c);
		return auth_result(c, rc);
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
		return auth_result(c, rc);
	default:
		return false;
	}
}

int sshc_answer(struct sshc *c, char **answers, size_t n)
{
	int r = -EPIPE;

	if (c == NULL || c->closing || c->state != ST_AUTH_WAIT)
		goto out;
	r = -EINVAL;
	if (answers == NULL || n != c->wait_n)
		goto out;
	for (size_t j = 0; j < n; j++)
		if (answers[j] == NULL || strlen(answers[j]) > SSHC_ANSWER_MAX)
			goto out;
	if (c->wait == WAIT_PASSWORD) {
		util_free_secret(c->password);
		c->password = answers[0];
		answers[0] = NULL;
		sshc_set_state(c, ST_AUTH_PASSWORD);
	} else {
		for (size_t j = 0; j < n; j++) {
			if (ssh_userauth_kbdint_setanswer(c->s, c->wait_map[j], answers[j]) < 0) {
				/* Reported from the loop: the next kbdint call fails. */
				log_debug("sshc %s:%u: could not set answer %zu", c->ip, c->port,
					  j);
			}
		}
		sshc_set_state(c, ST_AUTH_KBDINT);
	}
	c->wait = WAIT_NONE;
	c->wait_n = 0;
	sshc_arm_setup_timer(c);
	sshc_update_poll(c);
	sshc_kick(c);
	r = 0;
out:
	for (size_t j = 0; answers != NULL && j < n; j++) {
		util_free_secret(answers[j]);
		answers[j] = NULL;
	}
	return r;
}
