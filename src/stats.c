/*
 * stats.c: stats_period bookkeeping. Counters live in each pool (bumped in the relay); here
 * they are summed per database, turned into per-period averages for SHOW STATS, and logged
 * as PgBouncer's "stats:" line so log analysers read it.
 */
#include "pgusher/stats.h"

#include "pgusher/log.h"
#include "pgusher/runtime.h"

#include <inttypes.h>
#include <string.h>

void stats_db_totals(const struct database *db, struct pool_stats *t)
{
    memset(t, 0, sizeof(*t));
    const struct list *it;
    for (it = db->pools.next; it != &db->pools; it = it->next) {
        const struct pool *p = container_of(it, struct pool, node);
        const uint64_t *src = (const uint64_t *)&p->stats;
        uint64_t *dst = (uint64_t *)t;
        for (size_t i = 0; i < sizeof(*t) / sizeof(uint64_t); i++)
            dst[i] += src[i];
    }
}

static uint64_t per_sec(uint64_t delta, uint64_t elapsed_usec)
{
    return elapsed_usec ? delta * USEC_PER_SEC / elapsed_usec : 0;
}

static uint64_t ratio(uint64_t a, uint64_t b)
{
    return b ? a / b : 0;
}

void stats_compute_avg(const struct pool_stats *prev, const struct pool_stats *cur,
                       uint64_t elapsed, struct stats_avg *avg)
{
    struct pool_stats d;
    const uint64_t *a = (const uint64_t *)prev, *b = (const uint64_t *)cur;
    uint64_t *o = (uint64_t *)&d;
    for (size_t i = 0; i < sizeof(d) / sizeof(uint64_t); i++)
        o[i] = b[i] >= a[i] ? b[i] - a[i] : 0;
    avg->server_assignment_count = per_sec(d.server_assignment_count, elapsed);
    avg->xact_count = per_sec(d.xact_count, elapsed);
    avg->query_count = per_sec(d.query_count, elapsed);
    avg->bytes_received = per_sec(d.bytes_received, elapsed);
    avg->bytes_sent = per_sec(d.bytes_sent, elapsed);
    avg->xact_time = ratio(d.xact_time, d.xact_count);
    avg->query_time = ratio(d.query_time, d.query_count);
    avg->wait_time = ratio(d.wait_time, d.server_assignment_count);
    avg->client_parse_count = per_sec(d.client_parse_count, elapsed);
    avg->server_parse_count = per_sec(d.server_parse_count, elapsed);
    avg->bind_count = per_sec(d.bind_count, elapsed);
    avg->client_login_count = per_sec(d.client_login_count, elapsed);
}

static struct stats_avg total_avg;

const struct stats_avg *stats_total_avg(void)
{
    return &total_avg;
}

void stats_tick(void)
{
    uint64_t now = now_usec();
    usec_t period = G.cf->g.stats_period;
    if (period <= 0 || now - G.last_stats < (uint64_t)period)
        return;
    uint64_t elapsed = now - G.last_stats;
    G.last_stats = now;
    struct pool_stats all_prev = {0}, all_cur = {0};
    struct list *it;
    list_for_each(it, &G.databases)
    {
        struct database *db = container_of(it, struct database, node);
        struct pool_stats cur;
        stats_db_totals(db, &cur);
        stats_compute_avg(&db->prev, &cur, elapsed, &db->avg);
        uint64_t *ap = (uint64_t *)&all_prev, *ac = (uint64_t *)&all_cur;
        const uint64_t *dp = (const uint64_t *)&db->prev, *dc = (const uint64_t *)&cur;
        for (size_t i = 0; i < sizeof(cur) / sizeof(uint64_t); i++) {
            ap[i] += dp[i];
            ac[i] += dc[i];
        }
        db->prev = cur;
    }
    stats_compute_avg(&all_prev, &all_cur, elapsed, &total_avg);
    if (!G.cf->g.log_stats)
        return;
    const struct stats_avg *a = &total_avg;
    log_info("stats: %" PRIu64 " xacts/s, %" PRIu64 " queries/s, %" PRIu64
             " client parses/s, %" PRIu64 " server parses/s, %" PRIu64 " binds/s, in %" PRIu64
             " B/s, out %" PRIu64 " B/s, xact %" PRIu64 " us, query %" PRIu64 " us, wait %" PRIu64
             " us",
             a->xact_count, a->query_count, a->client_parse_count, a->server_parse_count,
             a->bind_count, a->bytes_received, a->bytes_sent, a->xact_time, a->query_time,
             a->wait_time);
}
