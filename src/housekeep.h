/* Periodic housekeeping of a running instance (housekeep.c). */
#pragma once

#include <uv.h>

#include "core/config.h"

struct store;

/* Starts the timer on loop (loop 0's thread): every
 * cfg->housekeeping_interval_s one job runs on the worker pool (never two
 * at once). 0 or -errno. */
int housekeep_start(uv_loop_t *loop, struct store *store, const struct cfg *cfg);
/* A reload's settings, from loop 0's thread; the next run uses them. */
void housekeep_set(const struct cfg *cfg);
/* Stops the timer (loop 0's thread); a job in flight finishes its batch
 * and stops. */
void housekeep_stop(void);
