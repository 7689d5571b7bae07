/*
 * ryw.h: read-your-writes memory. When each (user, client address) last ended a transaction
 * on a database that another database names in read_your_writes. Bounded in size and age;
 * never routes anything itself (pool.c asks, balance.c filters).
 */
#ifndef PGUSHER_RYW_H
#define PGUSHER_RYW_H

#include "pgusher/config.h"

#include <stddef.h>

/* How long a write is remembered: a standby that has not caught up after this long is
 * lagging, which max_replica_lag is for. */
#define RYW_KEEP_USEC (60 * 1000000LL)
/* At most this many (user, address) pairs; the oldest write is forgotten first. */
#define RYW_MAX_ENTRIES 65536

/* A remembered write: when it ended, and the WAL position standbys must have replayed to
 * have it (0 until a health check of the primary after the write tells; the reader side
 * fills it in once, so later writes of others do not move it). */
struct ryw_write {
    usec_t at;
    uint64_t lsn;
};

/* user's transaction from addr on a written-to database ended at now. */
void ryw_note_write(const char *user, const char *addr, usec_t now);
/* Its last such write within RYW_KEEP_USEC of now, or NULL. Valid until the next
 * ryw_note_write, ryw_expire or ryw_reset. */
struct ryw_write *ryw_find(const char *user, const char *addr, usec_t now);
/* Forget writes older than RYW_KEEP_USEC (the janitor calls it). */
void ryw_expire(usec_t now);
size_t ryw_count(void);
/* Forget everything (shutdown, unit tests). */
void ryw_reset(void);

#endif
