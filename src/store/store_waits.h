/* Store: connects that wait for the user's answers (keyboard-interactive
 * prompts, docs/api.md "Questions the VM asks while signing in"), with the
 * instance where each waits (issue 15). Such a connect has no session row
 * yet, so without this an answers POST that a balancer deals to another
 * instance finds it nowhere; with it, that instance relays the POST to the
 * one that waits. A row is only a pointer: the instance it names still
 * checks the caller and the answers itself. Same thread model and error
 * convention as store.h. */
#pragma once

#include <stdint.h>

struct store;

/* Records that the connect id waits on instance until expires_at (unix
 * seconds); the same id again replaces the row. Rows expired at now are
 * removed on the way (an instance that died leaves its rows behind). */
int store_wait_put(struct store *s, const char *id, const char *instance, int64_t now,
		   int64_t expires_at);
/* The instance that holds session id (STORE_INSTANCE_NAME_MAX bytes into
 * ret_instance): the one its open session row names, else the one where a
 * connect of that id waits for answers. One indexed read, whatever the
 * number of sessions. -ENOENT when neither, or when the wait expired
 * before now. */
int store_session_holder(struct store *s, const char *id, int64_t now, char *ret_instance);
/* The connect id no longer waits (answered, refused, or gone). Deleting
 * what is not there is not an error. */
int store_wait_delete(struct store *s, const char *id);
