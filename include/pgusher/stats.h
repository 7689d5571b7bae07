/*
 * stats.h: per-database counters summed over pools, stats_period averages and the periodic
 * "stats:" log line in PgBouncer's format. Reads pools; never changes connection state.
 */
#ifndef PGUSHER_STATS_H
#define PGUSHER_STATS_H

#include "pgusher/objects-t.h"

/* Sum the counters of every pool of a database. */
void stats_db_totals(const struct database *db, struct pool_stats *out);
/* Averages for one period: counts per second, times per transaction/query/assignment. */
void stats_compute_avg(const struct pool_stats *prev, const struct pool_stats *cur,
                       uint64_t elapsed_usec, struct stats_avg *out);
/* The last period's averages over all databases (SHOW TOTALS, the "stats:" log line):
 * rates add up; times are weighted by the transactions/queries/assignments behind them. */
const struct stats_avg *stats_total_avg(void);
/* Janitor hook: at each stats_period, compute averages and log the stats line. */
void stats_tick(void);

#endif
