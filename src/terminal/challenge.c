/* The table of connects waiting for answers (challenge.h). A connect waits
 * here only between a 202 and its answers, at most SSHC_ANSWER_TIMEOUT_MS,
 * and counts against the session limits as a dialling connect: the table
 * is small, so one list under one mutex does. */
#include "terminal/challenge.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

struct entry {
	struct entry *next;
	char id[64];
	unsigned home;
	void *sess;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry *head;

/* (lock) */
static struct entry **find(const char *id)
{
	struct entry **pp = &head;

	while (*pp && strcmp((*pp)->id, id) != 0)
		pp = &(*pp)->next;
	return pp;
}

int term_challenge_add(const char *id, unsigned home, void *sess)
{
	struct entry *e = calloc(1, sizeof(*e));
	int r = -ENOMEM;

	if (!e)
		return r;
	util_strlcpy(e->id, id, sizeof(e->id));
	e->home = home;
	e->sess = sess;
	pthread_mutex_lock(&lock);
	if (*find(id)) {
		r = -EEXIST;
	} else {
		e->next = head;
		head = e;
		e = NULL;
		r = 0;
	}
	pthread_mutex_unlock(&lock);
	free(e);
	return r;
}

void term_challenge_remove(const char *id)
{
	struct entry **pp, *e = NULL;

	pthread_mutex_lock(&lock);
	pp = find(id);
	if (*pp) {
		e = *pp;
		*pp = e->next;
	}
	pthread_mutex_unlock(&lock);
	free(e);
}

int term_challenge_home(const char *id)
{
	struct entry *e;
	int home;

	pthread_mutex_lock(&lock);
	e = *find(id);
	home = e ? (int)e->home : -1;
	pthread_mutex_unlock(&lock);
	return home;
}

void *term_challenge_find(const char *id, unsigned home)
{
	struct entry *e;
	void *s;

	pthread_mutex_lock(&lock);
	e = *find(id);
	s = e && e->home == home ? e->sess : NULL;
	pthread_mutex_unlock(&lock);
	return s;
}
