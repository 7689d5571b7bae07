/*
 * backend.h: one physical PostgreSQL server (host:port), shared by every database that lists
 * it: health state (fall/rise), role (primary/standby), replay lag, counters. The registry
 * and the reactions to state changes live here; probing lives in health.c, choosing in
 * balance.c.
 */
#ifndef PGUSHER_BACKEND_H
#define PGUSHER_BACKEND_H

#include "pgusher/list.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

enum be_state { BE_UNKNOWN, BE_UP, BE_DOWN };
enum be_role { ROLE_UNKNOWN, ROLE_PRIMARY, ROLE_STANDBY };

/* The fall/rise state machine of one backend (pure data; see hc_feed in health.h). */
struct hc_state {
    enum be_state state;
    int ok_streak;   /* consecutive successes while not up */
    int fail_streak; /* consecutive failures while not down */
    bool fast_start; /* created at startup: the first success counts as "up" */
};

struct probe;

struct backend {
    struct list node; /* G.backends */
    char host[256];   /* an address, a Unix socket directory, or (unresolved) a host name */
    int port;
    char name[256]; /* the host name it was resolved from ("" for a literal): TLS checks it */
    /* A stand-in for a host name with no address yet (first lookup pending or failed): never
     * up, never probed, shown by SHOW HOSTS with the DNS error in last_error. */
    bool unresolved;
    struct hc_state hc;
    enum be_role role;
    /* From the last successful probe. */
    bool lag_known;
    double replay_age_sec; /* standby: now() - pg_last_xact_replay_timestamp() */
    uint64_t lsn;          /* primary: pg_current_wal_insert_lsn(); standby: replay LSN */
    int64_t lsn_at;        /* usec (monotonic): lsn was read after this (its query went out) */
    uint64_t receive_lsn;  /* standby: WAL received (replayed or not) */
    /* standby: probe times at which it had received WAL it has not replayed yet, oldest
     * first, each with that received position; dropped once replay passes it. */
    struct {
        int n;
        int64_t at[16];
        uint64_t lsn[16];
    } behind;
    double behind_sec; /* at the last probe: seconds since the oldest entry (0 = none) */
    uint64_t checks, failures;
    /* Transactions finished on its servers, ErrorResponses its servers relayed to clients
     * (the metrics endpoint shows them; bumped on the relay path, O(1)). */
    uint64_t xacts, errors;
    char last_error[256];
    uint64_t last_change; /* usec */
    int sv_count;         /* live server connections (any state) */
    int sv_active;        /* of those, linked to a client */
    int refs;             /* databases listing it */
    struct probe *probe;  /* in flight, or NULL */
    uv_timer_t timer;     /* next probe */
    bool timer_init;
    bool reprobe_asap;
};

/* Find or create the backend for host:port reached as name (the host name it was resolved
 * from, NULL or "" for a literal): an address two names share is one backend per name, so
 * each is checked (TLS verify-full) and shown under its own name. A new one is probed at
 * once. */
struct backend *backend_get(const char *host, int port, const char *name, bool at_startup);
/* The stand-in for a name that has no address (see unresolved); error goes to last_error. */
struct backend *backend_get_unresolved(const char *name, int port, const char *error);
/* References: every database listing it and every server connection to it holds one, so a
 * backend dropped by a reload lives until its last server connection is gone. */
void backend_ref(struct backend *be);
void backend_unref(struct backend *be);

/* Probe results and passive signals. */
void backend_probe_result(struct backend *be, bool ok, const char *error);
void backend_set_role(struct backend *be, enum be_role role, const char *why);
/* A connection failed in a way that means "not available": mark down now, re-probe. */
void backend_passive_failure(struct backend *be, const char *why);
/* Something odd happened (a server died mid-flight): probe again soon. */
void backend_request_probe(struct backend *be);

/* Every backend, for SHOW HOSTS. */
struct list *backend_list(void);

const char *backend_state_name(enum be_state st);
const char *backend_role_name(enum be_role role);

/* Parse "16/B374D848" into a number; 0 on error. */
uint64_t backend_parse_lsn(const char *text);

#endif
