/* Event loops in threads, each with its own descriptor table (loops.h). */
#include "server/loops.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"

struct post {
	struct post *next;
	void (*fn)(void *arg);
	void *arg;
};

/* What goes through a channel: fn and its argument, and one descriptor. */
struct fd_msg {
	void (*fn)(int fd, void *arg);
	void *arg;
};

struct chan_msg {
	struct fd_msg m;
	struct iovec iov;
	struct msghdr mh;
	union { /* last: clang sees CMSG_SPACE as variable-sized */
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
};

static void chan_msg_init(struct chan_msg *c)
{
	memset(c, 0, sizeof(*c));
	c->iov = (struct iovec){ &c->m, sizeof(c->m) };
	c->mh = (struct msghdr){ .msg_iov = &c->iov,
				 .msg_iovlen = 1,
				 .msg_control = c->ctl.buf,
				 .msg_controllen = sizeof(c->ctl.buf) };
}

struct slot {
	uv_loop_t uv;
	uv_async_t wake;      /* posts are queued */
	uv_poll_t chan_poll;  /* chan[0] is readable */
	int chan[2];          /* SOCK_SEQPACKET: [0] read by this loop, [1] written by others */
	pthread_mutex_t lock; /* guards posts, closed, and writes to chan[1] */
	struct post *head, *tail;
	bool closed;
	pthread_t thread;
	bool thread_started;
};

static struct slot *slots;
static unsigned n_slots;
static _Thread_local int self = -1;

/* loops_start() waits until every thread left the shared table. */
static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t start_cond = PTHREAD_COND_INITIALIZER;
static unsigned n_unshared;
static int start_error; /* the first thread's that could not leave the table */
static int main_only_fd = -1;

unsigned loops_count(void)
{
	return n_slots;
}

uv_loop_t *loops_uv(unsigned i)
{
	return i < n_slots ? &slots[i].uv : NULL;
}

int loops_self(void)
{
	return self;
}

static void run_posts(struct slot *s)
{
	struct post *p, *next;

	pthread_mutex_lock(&s->lock);
	p = s->head;
	s->head = s->tail = NULL;
	pthread_mutex_unlock(&s->lock);
	for (; p; p = next) {
		next = p->next;
		p->fn(p->arg);
		free(p);
	}
}

static void on_wake(uv_async_t *a)
{
	run_posts(a->data);
}

/* Takes what other loops sent: at most a bounded number per wake-up (the
 * poll is level-triggered, the rest comes next iteration), or all when
 * closing. */
static void take_fds(struct slot *s, unsigned max)
{
	for (unsigned n = 0; n < max; n++) {
		struct chan_msg c;
		struct cmsghdr *h;
		ssize_t got;
		int fd = -1;

		chan_msg_init(&c);
		got = recvmsg(s->chan[0], &c.mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (got < 0 && errno == EINTR)
			continue;
		if (got != (ssize_t)sizeof(c.m))
			return; /* EAGAIN: nothing more (a short message cannot be sent here) */
		h = CMSG_FIRSTHDR(&c.mh);
		if (h && h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS &&
		    h->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&fd, CMSG_DATA(h), sizeof(fd));
		if (fd < 0)
			log_warn("loop %d: a connection from another loop found no descriptor "
				 "free here",
				 self);
		c.m.fn(fd, c.m.arg);
	}
}

static void on_chan(uv_poll_t *p, int status, int events)
{
	take_fds(p->data, 64);
}

int loops_init(unsigned n)
{
	if (n < 1 || n > LOOPS_MAX || slots)
		return -EINVAL;
	slots = calloc(n, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		struct slot *s = &slots[i];

		s->chan[0] = s->chan[1] = -1;
		pthread_mutex_init(&s->lock, NULL);
		if (uv_loop_init(&s->uv) < 0)
			goto fail;
		n_slots = i + 1;
		uv_async_init(&s->uv, &s->wake, on_wake);
		s->wake.data = s;
		if (n == 1)
			continue; /* nobody to send it a socket */
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, s->chan) <
			    0 ||
		    uv_poll_init_socket(&s->uv, &s->chan_poll, s->chan[0]) < 0)
			goto fail;
		s->chan_poll.data = s;
		uv_poll_start(&s->chan_poll, UV_READABLE, on_chan);
	}
	self = 0;
	return 0;
fail:
	loops_free();
	return -EMFILE;
}

static void *thread_main(void *arg)
{
	unsigned i = (unsigned)(uintptr_t)arg;
	int e = 0;

	self = (int)i;
	if (unshare(CLONE_FILES) < 0)
		e = errno;
	else if (main_only_fd >= 0)
		close(main_only_fd); /* this table's copy */
	pthread_mutex_lock(&start_lock);
	n_unshared++;
	if (e && !start_error)
		start_error = e;
	pthread_cond_signal(&start_cond);
	pthread_mutex_unlock(&start_lock);
	if (e) {
		/* Sharing the table, it would close loop 0's descriptors. */
		log_error("loop %u: cannot have a descriptor table of its own: %s", i, strerror(e));
		return NULL;
	}
	uv_run(&slots[i].uv, UV_RUN_DEFAULT);
	return NULL;
}

static void noop_work(uv_work_t *w)
{
}

static void noop_done(uv_work_t *w, int status)
{
	free(w);
}

int loops_start(int main_only)
{
	sigset_t all, old;
	uv_work_t *w;
	int r = 0;

	if (n_slots < 2)
		return 0;
	main_only_fd = main_only;
	/* libuv starts its worker threads on the first work queued: here, so
	 * that they share this thread's table (the store's files are theirs). */
	w = malloc(sizeof(*w));
	if (!w || uv_queue_work(&slots[0].uv, w, noop_work, noop_done) < 0) {
		free(w);
		return -ENOMEM;
	}
	/* Signals go to loop 0 (libuv's handlers write to its descriptors). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (unsigned i = 1; i < n_slots; i++) {
		if ((r = -pthread_create(&slots[i].thread, NULL, thread_main,
					 (void *)(uintptr_t)i)) < 0)
			break;
		slots[i].thread_started = true;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_mutex_lock(&start_lock);
	for (unsigned i = 1; i < n_slots; i++)
		if (slots[i].thread_started)
			while (n_unshared < i)
				pthread_cond_wait(&start_cond, &start_lock);
	if (r == 0 && start_error)
		r = -start_error;
	pthread_mutex_unlock(&start_lock);
	return r;
}

void loops_run(unsigned i)
{
	self = (int)i;
	uv_run(&slots[i].uv, UV_RUN_DEFAULT);
}

void loops_close(unsigned i)
{
	struct slot *s = &slots[i];

	pthread_mutex_lock(&s->lock);
	if (s->closed) {
		pthread_mutex_unlock(&s->lock);
		return;
	}
	s->closed = true;
	pthread_mutex_unlock(&s->lock);
	/* Nothing can be queued now: what was, runs. */
	run_posts(s);
	uv_close((uv_handle_t *)&s->wake, NULL);
	if (s->chan[0] >= 0) {
		take_fds(s, UINT32_MAX);
		uv_close((uv_handle_t *)&s->chan_poll, NULL);
	}
}

static void close_handle(uv_handle_t *h, void *arg)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

void loops_free(void)
{
	for (unsigned i = 0; i < n_slots; i++)
		if (slots[i].thread_started)
			pthread_join(slots[i].thread, NULL);
	for (unsigned i = 0; i < n_slots; i++) {
		struct slot *s = &slots[i];

		if (!s->closed) {
			/* Never run, or not to its end (a failed start, a test): what
			 * is queued runs, and every handle still open closes. */
			s->closed = true;
			run_posts(s);
			uv_walk(&s->uv, close_handle, NULL);
		}
		uv_run(&s->uv, UV_RUN_NOWAIT);
		if (uv_loop_close(&s->uv) < 0)
			log_warn("loop %u closed with handles still open", i);
		if (s->chan[0] >= 0)
			close(s->chan[0]);
		if (s->chan[1] >= 0)
			close(s->chan[1]);
		pthread_mutex_destroy(&s->lock);
	}
	free(slots);
	slots = NULL;
	n_slots = 0;
	n_unshared = 0;
	start_error = 0;
	main_only_fd = -1;
	self = -1;
}

int loops_post(unsigned i, void (*fn)(void *arg), void *arg)
{
	struct slot *s;
	struct post *p;

	if (i >= n_slots)
		return -EINVAL;
	s = &slots[i];
	p = malloc(sizeof(*p));
	if (!p)
		return -ENOMEM;
	*p = (struct post){ .fn = fn, .arg = arg };
	pthread_mutex_lock(&s->lock);
	if (s->closed) {
		pthread_mutex_unlock(&s->lock);
		free(p);
		return -ESHUTDOWN;
	}
	if (s->tail)
		s->tail->next = p;
	else
		s->head = p;
	s->tail = p;
	uv_async_send(&s->wake);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

int loops_send_fd(unsigned i, int fd, void (*fn)(int fd, void *arg), void *arg)
{
	struct chan_msg c;
	struct cmsghdr *h;
	struct slot *s;
	ssize_t sent;
	int r = 0;

	if (i >= n_slots || slots[i].chan[1] < 0)
		return -EINVAL;
	s = &slots[i];
	chan_msg_init(&c);
	c.m = (struct fd_msg){ fn, arg };
	h = CMSG_FIRSTHDR(&c.mh);
	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_RIGHTS;
	h->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(h), &fd, sizeof(fd));
	/* Under the lock: loops_close() takes whatever was sent before it. */
	pthread_mutex_lock(&s->lock);
	if (s->closed) {
		r = -ESHUTDOWN;
	} else {
		do
			sent = sendmsg(s->chan[1], &c.mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		while (sent < 0 && errno == EINTR);
		if (sent < 0)
			r = -errno;
	}
	pthread_mutex_unlock(&s->lock);
	if (r == 0)
		close(fd);
	return r;
}
