/* POST /sessions/{id}/answers: the user's answers to the questions a VM
 * asked while signing in (keyboard-interactive: a one-time code, a new
 * password), carried to the loop that holds the waiting connect
 * (term_answers_next). The answers are secrets: copied into wiped buffers,
 * jansson's copies wiped, never logged or audited. */
#include "api/api.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "ssh/sshc.h"
#include "terminal/term.h"

static void wipe_answers(json_t *arr)
{
	size_t i;
	json_t *v;

	json_array_foreach (arr, i, v)
		if (json_is_string(v))
			sodium_memzero((char *)json_string_value(v), json_string_length(v));
}

void api_session_answers(struct api_call *c)
{
	json_t *arr = json_object_get(c->body, "answers"), *v;
	struct term_answers *ta = NULL;
	const char *key;
	size_t i;

	if (api_relay_to_holder(c)) {
		wipe_answers(arr);
		return;
	}
	json_object_foreach (c->body, key, v) {
		if (strcmp(key, "answers") != 0) {
			api_error(c->resp, 400, "InvalidRequest",
				  "%.64s: unknown field; the body is {\"answers\": [...]}", key);
			goto out;
		}
	}
	if (!json_is_array(arr) || json_array_size(arr) < 1 ||
	    json_array_size(arr) > SSHC_PROMPTS_MAX) {
		api_error(c->resp, 400, "InvalidRequest",
			  "answers: required; an array of 1 to %d strings, one for each prompt",
			  SSHC_PROMPTS_MAX);
		goto out;
	}
	json_array_foreach (arr, i, v) {
		if (!json_is_string(v) || json_string_length(v) > SSHC_ANSWER_MAX ||
		    strlen(json_string_value(v)) != json_string_length(v)) {
			api_error(c->resp, 400, "InvalidRequest",
				  "answers[%zu]: must be a string of at most %d bytes", i,
				  SSHC_ANSWER_MAX);
			goto out;
		}
	}
	if (!(ta = calloc(1, sizeof(*ta))) ||
	    !(ta->answers = calloc(json_array_size(arr), sizeof(char *))))
		goto oom;
	ta->user_id = c->who->user_id;
	util_strlcpy(ta->session_id, c->seg[1], sizeof(ta->session_id));
	json_array_foreach (arr, i, v) {
		if (!(ta->answers[i] = strdup(json_string_value(v))))
			goto oom;
		ta->n++;
	}
	c->resp->next = term_answers_next;
	c->resp->next_arg = ta;
	c->resp->status = 202; /* provisional: the loop answers */
	ta = NULL;
	goto out;
oom:
	api_error(c->resp, 503, "ServiceUnavailable", "out of memory");
out:
	term_answers_free(ta);
	wipe_answers(arr);
}
