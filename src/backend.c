/*
 * backend.c: the registry of physical servers (host:port) and what follows when one changes
 * state or role: one log line with the reason, idle server connections that can no longer
 * serve their database closed, active ones marked to close on release, waiting clients
 * re-served. It never decides placement itself (pool.c and balance.c do).
 */
#include "pgusher/backend.h"

#include "pgusher/balance.h"
#include "pgusher/health.h"
#include "pgusher/log.h"
#include "pgusher/pool.h"
#include "pgusher/runtime.h"
#include "pgusher/server.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static struct list backends = LIST_INIT(backends);

struct list *backend_list(void)
{
    return &backends;
}

const char *backend_state_name(enum be_state st)
{
    switch (st) {
    case BE_UP:
        return "up";
    case BE_DOWN:
        return "down";
    default:
        return "unknown";
    }
}

const char *backend_role_name(enum be_role role)
{
    switch (role) {
    case ROLE_PRIMARY:
        return "primary";
    case ROLE_STANDBY:
        return "standby";
    default:
        return "unknown";
    }
}

uint64_t backend_parse_lsn(const char *text)
{
    char *end;
    unsigned long long hi = strtoull(text, &end, 16);
    if (end == text || *end != '/')
        return 0;
    const char *lo_s = end + 1;
    unsigned long long lo = strtoull(lo_s, &end, 16);
    if (end == lo_s)
        return 0;
    return ((uint64_t)hi << 32) | (uint64_t)(lo & 0xffffffffULL);
}

struct backend *backend_get(const char *host, int port, const char *name, bool at_startup)
{
    if (!name)
        name = "";
    struct list *it;
    list_for_each(it, &backends)
    {
        struct backend *be = container_of(it, struct backend, node);
        if (be->port == port && !be->unresolved && strcmp(be->host, host) == 0 &&
            strcasecmp(be->name, name) == 0) {
            be->refs++;
            return be;
        }
    }
    struct backend *be = calloc(1, sizeof(*be));
    if (!be)
        return NULL;
    snprintf(be->host, sizeof(be->host), "%s", host);
    snprintf(be->name, sizeof(be->name), "%s", name);
    be->port = port;
    be->refs = 1;
    be->hc.fast_start = at_startup;
    be->last_change = now_usec();
    list_append(&backends, &be->node);
    if (G.cf->g.health_check_period <= 0)
        be->hc.state = BE_UP; /* no health checks: trust the config, as PgBouncer does */
    else
        health_schedule(be, true);
    return be;
}

struct backend *backend_get_unresolved(const char *name, int port, const char *error)
{
    struct backend *be = NULL;
    struct list *it;
    list_for_each(it, &backends)
    {
        struct backend *x = container_of(it, struct backend, node);
        if (x->unresolved && x->port == port && strcasecmp(x->host, name) == 0)
            be = x;
    }
    if (be) {
        be->refs++;
    } else {
        be = calloc(1, sizeof(*be));
        if (!be)
            return NULL;
        snprintf(be->host, sizeof(be->host), "%s", name);
        snprintf(be->name, sizeof(be->name), "%s", name);
        be->port = port;
        be->refs = 1;
        be->unresolved = true;
        be->hc.state = BE_DOWN;
        be->last_change = now_usec();
        list_append(&backends, &be->node);
    }
    snprintf(be->last_error, sizeof(be->last_error), "%s", error);
    return be;
}

static void backend_free_cb(uv_handle_t *h)
{
    free(h->data);
}

void backend_ref(struct backend *be)
{
    be->refs++;
}

void backend_unref(struct backend *be)
{
    if (!be || --be->refs > 0)
        return;
    health_stop(be);
    list_del(&be->node);
    if (be->timer_init) {
        be->timer.data = be;
        uv_close((uv_handle_t *)&be->timer, backend_free_cb);
    } else {
        free(be);
    }
}

/* Which databases use this backend, and may it still serve each of them? */
static void react_to_change(struct backend *be)
{
    struct list *di, *pi, *si, *tmp;
    list_for_each(di, &G.databases)
    {
        struct database *db = container_of(di, struct database, node);
        bool uses = false;
        for (int i = 0; i < db->nbackends; i++)
            uses = uses || db->backends[i] == be;
        if (!uses)
            continue;
        /* A host listed at start-up serves before its first check (BE_UNKNOWN): learning
         * its role first must not throw away the servers it already gave. */
        bool can_serve = be->hc.state != BE_DOWN && database_role_acceptable(db, be->role);
        list_for_each(pi, &db->pools)
        {
            struct pool *p = container_of(pi, struct pool, node);
            if (!can_serve) {
                list_for_each_safe(si, tmp, &p->sv_idle)
                {
                    struct server *s = container_of(si, struct server, node);
                    if (s->be == be)
                        server_close(s, "host %s:%d is %s", be->host, be->port,
                                     be->hc.state != BE_UP ? "down" : backend_role_name(be->role));
                }
                struct list *lists[POOL_SV_NLISTS];
                pool_server_lists(p, lists);
                for (int i = 0; i < POOL_SV_NLISTS; i++) {
                    list_for_each(si, lists[i])
                    {
                        struct server *s = container_of(si, struct server, node);
                        if (s->be == be)
                            s->close_needed = true;
                    }
                }
            }
            pool_service(p);
        }
    }
}

void backend_probe_result(struct backend *be, bool ok, const char *error)
{
    if (!ok) {
        be->failures++;
        snprintf(be->last_error, sizeof(be->last_error), "%s", error ? error : "failed");
    }
    enum be_state before = be->hc.state;
    if (!hc_feed(&be->hc, ok, G.cf->g.health_check_rise, G.cf->g.health_check_fall))
        return;
    be->last_change = now_usec();
    if (be->hc.state == BE_UP)
        log_info("host %s:%d is up (%s, after %s)", be->host, be->port,
                 backend_role_name(be->role), backend_state_name(before));
    else
        log_warning("host %s:%d is down: %s", be->host, be->port, be->last_error);
    react_to_change(be);
}

void backend_set_role(struct backend *be, enum be_role role, const char *why)
{
    if (role == ROLE_UNKNOWN || role == be->role)
        return;
    enum be_role before = be->role;
    be->role = role;
    if (before != ROLE_UNKNOWN)
        log_info("host %s:%d is now %s (was %s; %s)", be->host, be->port,
                 backend_role_name(role), backend_role_name(before), why);
    else
        log_info("host %s:%d is %s (%s)", be->host, be->port, backend_role_name(role), why);
    react_to_change(be);
}

void backend_passive_failure(struct backend *be, const char *why)
{
    be->failures++;
    snprintf(be->last_error, sizeof(be->last_error), "%s", why);
    if (G.cf->g.health_check_period <= 0)
        return; /* nothing would bring it back: rely on server_login_retry */
    if (hc_force_down(&be->hc)) {
        be->last_change = now_usec();
        log_warning("host %s:%d is down: %s", be->host, be->port, why);
        react_to_change(be);
        health_schedule(be, true); /* confirm at once; the timer goes on from there */
    }
}

void backend_request_probe(struct backend *be)
{
    if (G.cf->g.health_check_period > 0)
        health_schedule(be, true);
}
