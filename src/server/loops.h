/* Event loops, one per thread, each thread with a descriptor table of its
 * own.
 *
 * Loop 0 is run by the thread that called loops_init() (the daemon's main
 * thread, which also shares its descriptor table with libuv's worker pool);
 * loops 1..n-1 run in threads started by loops_start(), each of which first
 * leaves the shared table (unshare(CLONE_FILES)). RLIMIT_NOFILE bounds each
 * table, not the process: with n loops an instance holds n times as many
 * sockets (two per terminal session).
 *
 * The rule that keeps this safe: a descriptor is used only in the table it
 * was made in. Everything loops_init() and loops_start()'s caller made
 * before the threads started (stderr, the listener, each loop's wake-ups)
 * is in every table under the same number; anything made later belongs to
 * the loop (or, for the main table, the workers) that made it. So loop
 * threads never touch the store (SQLite runs on workers), and a socket goes
 * from one loop to another only through loops_send_fd().
 *
 * Work crosses loops as posts: fn(arg) queued for a loop and run on its
 * thread. */
#pragma once

#include <stdbool.h>
#include <uv.h>

#define LOOPS_MAX 64

/* Makes n (1..LOOPS_MAX) loops on the calling thread's descriptor table,
 * each with its wake-ups; the calling thread becomes loop 0's. Also starts
 * libuv's worker pool here, so that its threads share this table. */
int loops_init(unsigned n);
unsigned loops_count(void);
uv_loop_t *loops_uv(unsigned i);
/* The loop this thread runs, or -1 (a worker, or a thread that runs none). */
int loops_self(void);

/* Starts a thread for each of loops 1..n-1: it leaves the shared descriptor
 * table, closes its copy of main_only (a descriptor that must stay loop
 * 0's alone, such as the listening socket, which would otherwise stay open
 * after loop 0 closed it; -1: none), and runs its loop until loops_close()
 * was called on it and its handles are closed. Returns once every thread
 * has its own table (nothing made after that is copied into theirs).
 * Signals are blocked in them. A thread that cannot have its own table
 * fails the start (-errno): the caller cannot go on safely. */
int loops_start(int main_only);
/* Runs loop i on the calling thread until it has nothing left. */
void loops_run(unsigned i);
/* On loop i: takes no more posts, runs those queued, and closes the
 * wake-up handles; the loop then ends once the rest of its handles close. */
void loops_close(unsigned i);
/* Waits for the threads, then closes every loop. */
void loops_free(void);

/* Runs fn(arg) on loop i, from any thread. -ESHUTDOWN once loop i was
 * closed, -ENOMEM: fn does not run and arg stays the caller's. */
int loops_post(unsigned i, void (*fn)(void *arg), void *arg);
/* From a loop's thread to loop i: the socket fd (of this thread's table)
 * goes over, and fn(fd there, arg) runs on loop i, which then owns it. On
 * success fd is closed here; on failure (-ESHUTDOWN, -EAGAIN, ...) it stays
 * the caller's and fn does not run. fn gets -1 if loop i's table had no
 * room for it. */
int loops_send_fd(unsigned i, int fd, void (*fn)(int fd, void *arg), void *arg);
