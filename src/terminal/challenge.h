/* Connects waiting for the user's answers to the VM's sign-in questions
 * (keyboard-interactive), by session id: which loop holds each, so that
 * POST /sessions/{id}/answers is carried to it. Inside src/terminal/ only.
 * Any thread may look up the home; the entry itself (its sess pointer) is
 * used only on its home loop, which adds and removes it. */
#pragma once

#include <stdbool.h>

/* 0, -ENOMEM, or -EEXIST when id is already there. */
int term_challenge_add(const char *id, unsigned home, void *sess);
void term_challenge_remove(const char *id);
/* The loop of id, or -1 when no connect with that id waits. */
int term_challenge_home(const char *id);
/* The session of id if it waits on loop home, else NULL. */
void *term_challenge_find(const char *id, unsigned home);
