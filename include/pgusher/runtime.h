/*
 * runtime.h: the process-wide state of the running pooler (the loop, the config snapshot in
 * force, global lists) and the clock. Owned by main.c; other modules read it.
 */
#ifndef PGUSHER_RUNTIME_H
#define PGUSHER_RUNTIME_H

#include "pgusher/config.h"
#include "pgusher/list.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct runtime {
    uv_loop_t *loop;
    struct config *cf;
    struct list databases;     /* struct database.node */
    struct list login_clients; /* CL_LOGIN */
    struct list busy_pools;    /* pools with a client, a server or work (pool.c's janitor walk) */
    int client_count;          /* every client connection, logging in or not */
    int server_count;
    int conn_peak; /* most client + server connections since the last trim */
    uint64_t next_id;
    bool started;           /* startup finished: new backends must pass health_check_rise */
    bool shutting_down;     /* no new clients */
    int shutdown_mode;      /* SHUTDOWN_* while waiting to exit */
    bool paused;            /* PAUSE without a database */
    bool suspended;         /* SUSPEND: nothing read but the console, no connection accepted */
    uint64_t suspend_start; /* usec, when SUSPEND began (suspend_timeout counts from it) */
    uint64_t start_time;    /* now_usec() at startup */
    uint64_t last_stats;    /* now_usec() of the last stats period */
    bool log_to_stderr;     /* from the command line (-q, -d) */
    int cli_verbose;        /* -v count */
    uint64_t cf_gen;        /* bumped whenever settings may have changed (pool caches) */
};

enum { SHUTDOWN_NONE, SHUTDOWN_WAIT_FOR_SERVERS, SHUTDOWN_WAIT_FOR_CLIENTS, SHUTDOWN_NOW };

extern struct runtime G;

/* Called where a connection is counted: keeps conn_peak (main.c trims memory after a drop). */
static inline void runtime_count_peak(void)
{
    if (G.client_count + G.server_count > G.conn_peak)
        G.conn_peak = G.client_count + G.server_count;
}

struct tcp_tuning;
/* The TCP settings of the configuration in force. */
void runtime_tcp_tuning(struct tcp_tuning *t);

/* Monotonic clock in microseconds. */
uint64_t now_usec(void);

/* Has a timeout run out? A zero timeout or an unset start (0) never expires. */
bool timeout_expired(uint64_t since, uint64_t now, usec_t timeout);

#endif
