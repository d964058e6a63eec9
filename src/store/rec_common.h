/* Private to src/store: what both backends write when they close a lost
 * instance's recordings (store_rec_interrupt), so that the text and the
 * audit detail are the same on SQLite and PostgreSQL. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* The recordings' error: which instance stopped, why, and what is left. */
void store_rec_interrupt_error(char *out, size_t size, const char *instance, const char *reason);
/* The audit detail of one (JSON, malloc'd; NULL when out of memory). */
char *store_rec_interrupt_detail(const char *id, const char *session, const char *bastion,
				 const char *error, int64_t bytes);
