/*
 * metrics.h: the optional Prometheus endpoint (metrics_listen): GET /metrics on the event
 * loop, metric names of prometheus-community/pgbouncer_exporter plus pgusher's own. Reads
 * what the console shows (show_rows) and the pools' and backends' counters; never
 * changes pooler state.
 */
#ifndef PGUSHER_METRICS_H
#define PGUSHER_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* metrics_listen's syntax: "host:port" with a literal IPv4 address or "[v6]:port"; false if
 * malformed. Pure (config.c validates the setting with it). */
bool metrics_parse_listen(const char *s, struct sockaddr_storage *ss);

/* Listen on G.cf's metrics_listen if it changed since the last call (startup, RELOAD): the
 * old socket closes, a new one opens; empty turns the endpoint off. False (and a log line)
 * when the address is bad or cannot be bound; the endpoint is then off. It keeps serving
 * through a graceful shutdown (the drain can be watched) and never holds the loop open. */
bool metrics_apply(void);

/* A growable text buffer. */
struct metrics_buf {
    char *p;
    size_t len, cap;
    bool failed;      /* out of memory: the text is incomplete */
    bool openmetrics; /* set before metrics_render: OpenMetrics 1.0.0 instead of 0.0.4 */
};
/* Render the whole exposition into out (appended): the Prometheus text format 0.0.4, or
 * OpenMetrics 1.0.0 (counter and info families named without their _total / _info sample
 * suffix, "# EOF" at the end; the same samples, so the same series either way). */
void metrics_render(struct metrics_buf *out);
void metrics_buf_free(struct metrics_buf *b);

#endif
