/*
 * pool.c: pools (database x user) and their state lists; who gets which server, when
 * servers are opened, released, reset, checked or closed, and the periodic janitor
 * (timeouts, idle servers, min_pool_size). It owns placement, never the wire protocol;
 * databases themselves (definition, hosts, DNS, read_your_writes memory) are database.c's.
 */
#include "pgusher/pool.h"

#include "pgusher/admin.h"
#include "pgusher/auth_query.h"
#include "pgusher/balance.h"
#include "pgusher/cancel.h"
#include "pgusher/client.h"
#include "pgusher/dns.h"
#include "pgusher/log.h"
#include "pgusher/pktbuf.h"
#include "pgusher/prepared.h"
#include "pgusher/runtime.h"
#include "pgusher/ryw.h"
#include "pgusher/secret.h"
#include "pgusher/server.h"
#include "pgusher/varcache.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------------------------------------------------------------- pools */

void pool_free(struct pool *p)
{
    if (p->busy)
        list_del(&p->busy_node);
    pktbuf_free(&p->welcome);
    varcache_free(&p->welcome_vars);
    free(p->user);
    secret_free_str(p->aq_secret);
    secret_free(p, sizeof(*p)); /* the SCRAM keys learned from clients */
}

struct pool *pool_get(struct database *db, const char *user)
{
    struct list *it;
    list_for_each(it, &db->pools)
    {
        struct pool *p = container_of(it, struct pool, node);
        if (strcmp(p->user, user) == 0)
            return p;
    }
    struct pool *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->user = strdup(user);
    if (!p->user) {
        free(p);
        return NULL;
    }
    p->db = db;
    list_init(&p->cl_active);
    list_init(&p->cl_waiting);
    list_init(&p->sv_active);
    list_init(&p->sv_idle);
    list_init(&p->sv_used);
    list_init(&p->sv_tested);
    list_init(&p->sv_login);
    list_init(&p->sv_being_canceled);
    list_init(&p->cl_active_cancel_req);
    list_init(&p->aq_waiting);
    pktbuf_init(&p->welcome);
    p->launch_hint = -1;
    /* Sorted by user, as PgBouncer keeps them: SHOW POOLS/CLIENTS/SERVERS list in this order. */
    struct list *pos;
    for (pos = db->pools.next; pos != &db->pools; pos = pos->next)
        if (strcmp(container_of(pos, struct pool, node)->user, user) > 0)
            break;
    list_insert_before(pos, &p->node);
    pool_note_busy(p); /* a forced user's pool keeps min_pool_size without clients */
    return p;
}

/* The user's setting, else the database's, else the global one; resolved once per settings
 * generation, since the hot path asks on every transaction. */
static const struct pool *resolve_limits(const struct pool *cp)
{
    if (cp->lim_gen == G.cf_gen && cp->lim_gen != 0)
        return cp;
    struct pool *p = (struct pool *)cp;
    const struct cf_user *u = config_find_user(G.cf, p->user);
    const struct cf_database *d = p->db->cf;
    const struct cf_global *g = &G.cf->g;
    /* An unset value ([users]/[databases] key absent, or no [users] line) falls through. */
#define PICK(user, db, global) ((user) != CF_UNSET ? (user) : (db) != CF_UNSET ? (db) : (global))
#define U(field) (u ? u->field : CF_UNSET)
    p->lim_mode = PICK(U(pool_mode), d->pool_mode, g->pool_mode);
    p->lim_size = PICK(U(pool_size), d->pool_size, g->default_pool_size);
    p->lim_reserve = PICK(U(reserve_pool_size), d->reserve_pool_size, g->reserve_pool_size);
    p->lim_query_wait_timeout =
        PICK(U(query_wait_timeout), d->query_wait_timeout, g->query_wait_timeout);
    /* These exist per user and globally only. */
    p->lim_query_timeout = PICK(U(query_timeout), CF_UNSET, g->query_timeout);
    p->lim_idle_xact_timeout =
        PICK(U(idle_transaction_timeout), CF_UNSET, g->idle_transaction_timeout);
    p->lim_xact_timeout = PICK(U(transaction_timeout), CF_UNSET, g->transaction_timeout);
    p->lim_client_idle_timeout = PICK(U(client_idle_timeout), CF_UNSET, g->client_idle_timeout);
#undef U
#undef PICK
    p->lim_gen = G.cf_gen;
    return p;
}

int pool_mode(const struct pool *p)
{
    return resolve_limits(p)->lim_mode;
}

int pool_pool_size(const struct pool *p)
{
    return resolve_limits(p)->lim_size;
}

static int pool_reserve_size(const struct pool *p)
{
    return resolve_limits(p)->lim_reserve;
}

static int db_min_pool_size(const struct database *db)
{
    return db->cf->min_pool_size != CF_UNSET ? db->cf->min_pool_size : G.cf->g.min_pool_size;
}

/* min_pool_size holds, as in PgBouncer 1.25, for a database with a forced user, and
 * otherwise while at least one client is connected to the pool. */
static int pool_min_size(const struct pool *p)
{
    if (p->db->reaping || p->db->admin)
        return 0;
    if (!p->db->cf->user && p->n_cl_active + p->n_cl_waiting == 0)
        return 0;
    int n = db_min_pool_size(p->db);
    int size = pool_pool_size(p);
    return n > size ? size : n;
}

int pool_server_total(const struct pool *p)
{
    return p->n_sv_active + p->n_sv_idle + p->n_sv_used + p->n_sv_tested + p->n_sv_login +
           p->n_sv_being_canceled;
}

void pool_server_lists(struct pool *p, struct list *out[POOL_SV_NLISTS])
{
    out[0] = &p->sv_active;
    out[1] = &p->sv_idle;
    out[2] = &p->sv_used;
    out[3] = &p->sv_tested;
    out[4] = &p->sv_login;
    out[5] = &p->sv_being_canceled;
}

/* Servers of this user across all databases (max_user_connections). */
static int user_server_total(const char *user)
{
    int n = 0;
    struct list *di, *pi;
    list_for_each(di, &G.databases)
    {
        struct database *db = container_of(di, struct database, node);
        list_for_each(pi, &db->pools)
        {
            struct pool *p = container_of(pi, struct pool, node);
            if (strcmp(p->user, user) == 0)
                n += pool_server_total(p);
        }
    }
    return n;
}

int pool_user_client_count(const char *user)
{
    int n = 0;
    struct list *di, *pi;
    list_for_each(di, &G.databases)
    {
        struct database *db = container_of(di, struct database, node);
        list_for_each(pi, &db->pools)
        {
            struct pool *p = container_of(pi, struct pool, node);
            if (strcmp(p->user, user) == 0)
                n += p->n_cl_active + p->n_cl_waiting;
        }
    }
    return n;
}

void pool_note_busy(struct pool *p)
{
    if (p->busy)
        return;
    p->busy = true;
    list_append(&G.busy_pools, &p->busy_node);
}

/* ---------------------------------------------------------------- state changes */

static int *client_counter(struct client *c)
{
    switch (c->state) {
    case CL_WAITING:
    case CL_WAITING_LOGIN:
        return &c->pool->n_cl_waiting;
    case CL_ACTIVE:
        return &c->pool->n_cl_active;
    case CL_CANCEL:
        return &c->pool->n_cl_active_cancel_req;
    default:
        return NULL;
    }
}

void client_set_state(struct client *c, enum client_state st)
{
    if (c->state == st)
        return;
    int *cnt = client_counter(c);
    if (cnt)
        (*cnt)--;
    if (c->state == CL_WAITING_LOGIN)
        c->pool->n_cl_waiting_login--;
    if (st == CL_WAITING_LOGIN)
        c->pool->n_cl_waiting_login++;
    if (c->replication != REPL_NONE && c->state == CL_WAITING)
        c->pool->n_repl_waiting--;
    if (c->replication != REPL_NONE && st == CL_WAITING)
        c->pool->n_repl_waiting++;
    list_del(&c->node);
    c->state = st;
    if (c->pool)
        pool_note_busy(c->pool);
    switch (st) {
    case CL_LOGIN:
        list_append(&G.login_clients, &c->node);
        break;
    case CL_WAITING:
    case CL_WAITING_LOGIN:
        list_append(&c->pool->cl_waiting, &c->node);
        break;
    case CL_ACTIVE:
        list_append(&c->pool->cl_active, &c->node);
        break;
    case CL_CANCEL:
        list_append(&c->pool->cl_active_cancel_req, &c->node);
        break;
    case CL_NEW:
    case CL_CLOSING:
        break;
    }
    cnt = client_counter(c);
    if (cnt)
        (*cnt)++;
}

static struct list *server_list(struct server *s, int **cnt)
{
    struct pool *p = s->pool;
    switch (s->state) {
    case SV_LOGIN:
        *cnt = &p->n_sv_login;
        return &p->sv_login;
    case SV_IDLE:
        *cnt = &p->n_sv_idle;
        return &p->sv_idle;
    case SV_ACTIVE:
        *cnt = &p->n_sv_active;
        return &p->sv_active;
    case SV_USED:
        *cnt = &p->n_sv_used;
        return &p->sv_used;
    case SV_TESTED:
        *cnt = &p->n_sv_tested;
        return &p->sv_tested;
    case SV_BEING_CANCELED:
        *cnt = &p->n_sv_being_canceled;
        return &p->sv_being_canceled;
    case SV_NEW:
    case SV_CLOSING:
        break;
    }
    *cnt = NULL;
    return NULL;
}

void server_set_state(struct server *s, enum server_state st)
{
    if (s->state == st)
        return;
    int *cnt;
    if (server_list(s, &cnt) && cnt)
        (*cnt)--;
    if (s->be && s->state == SV_ACTIVE)
        s->be->sv_active--;
    if (s->be && st == SV_ACTIVE)
        s->be->sv_active++;
    if (s->replication != REPL_NONE && s->state == SV_LOGIN)
        s->pool->n_repl_login--;
    if (s->replication != REPL_NONE && st == SV_LOGIN)
        s->pool->n_repl_login++;
    list_del(&s->node);
    s->state = st;
    pool_note_busy(s->pool);
    struct list *l = server_list(s, &cnt);
    if (l) {
        list_append(l, &s->node);
        (*cnt)++;
    }
}

/* ---------------------------------------------------------------- assignment */

static bool needs_check(const struct server *s)
{
    const struct cf_global *g = &G.cf->g;
    if (g->server_check_query_disabled)
        return false; /* explicitly empty: checks disabled */
    return now_usec() - s->last_used > (uint64_t)g->server_check_delay;
}

static bool can_launch(struct pool *p, bool use_reserve);
static bool within_connection_limits(const struct pool *p);
static bool in_login_backoff(const struct pool *p);

/* How many of the pool's server connections (any state) are on each of its database's
 * hosts. O(servers): only on the paths where the spread is off. */
static void count_per_host(const struct pool *p, int *count)
{
    const struct database *db = p->db;
    for (int i = 0; i < db->nbackends; i++)
        count[i] = 0;
    struct list *lists[POOL_SV_NLISTS];
    pool_server_lists((struct pool *)p, lists);
    for (int l = 0; l < POOL_SV_NLISTS; l++) {
        struct list *it;
        list_for_each(it, lists[l])
        {
            int i = server_host_slot(container_of(it, struct server, node));
            if (i >= 0)
                count[i]++;
        }
    }
}

/* A full pool whose servers sit mostly on other hosts (the pick just came back, was added,
 * or caught up): open more servers on the pick, above pool_size, before any is closed, up
 * to its share of pool_size (logins in flight count); pool_release_server then closes
 * servers on the hosts above their share as they are released. Never beyond
 * max_db_connections / max_user_connections. */
static bool respread_wanted(struct pool *p, int pick, int n_elig)
{
    if (G.shutdown_mode == SHUTDOWN_NOW || in_login_backoff(p) || n_elig < 2)
        return false;
    int share = pool_pool_size(p) / n_elig;
    if (pool_server_total(p) >= pool_pool_size(p) + share || !within_connection_limits(p))
        return false;
    int count[CF_MAX_HOSTS];
    count_per_host(p, count);
    return count[pick] < share;
}

/* A released server of a pool above pool_size (after respread_wanted, a reserve server or
 * a smaller pool_size after RELOAD) whose host carries more than its share, while nobody
 * waits: close it, so the pool moves to the hosts that have too few. */
static bool surplus_on_busy_host(struct server *s)
{
    struct pool *p = s->pool;
    const struct database *db = p->db;
    int total = pool_server_total(p);
    if (total <= pool_pool_size(p) || p->n_cl_waiting > 0 || db->nbackends < 2 ||
        database_lb_policy(db) == LB_DISABLE)
        return false;
    int elig[CF_MAX_HOSTS], n = database_eligible(db, elig, NULL, 0);
    if (n < 2)
        return false;
    int count[CF_MAX_HOSTS];
    count_per_host(p, count);
    int i = server_host_slot(s);
    return i >= 0 && count[i] * n > total;
}

/* disable or one host (after < 0): the first eligible host in list order with an idle
 * server. When the policy's pick (after) had none, the next eligible host after it in list
 * order, wrapping, so that the fallback does not favour the first host listed. */
static struct server *idle_after(const int *elig, int n, int after, struct server *const *cand)
{
    int from = 0;
    for (int j = 0; j < n && after >= 0; j++)
        if (elig[j] == after)
            from = j + 1;
    for (int k = 0; k < n; k++) {
        int j = (from + k) % n;
        if (cand[elig[j]])
            return cand[elig[j]];
    }
    return NULL;
}

/* A client that must see its own writes finds no idle server on the hosts that have them:
 * open one on host (unless one is on its way there), making room in a full pool by closing
 * its oldest idle server, which is on another host. */
static void ryw_make_way(struct pool *p, int host)
{
    struct list *it;
    list_for_each(it, &p->sv_login)
    {
        if (container_of(it, struct server, node)->be == p->db->backends[host])
            return;
    }
    if (!can_launch(p, false) && !list_empty(&p->sv_idle) &&
        pool_server_total(p) >= pool_pool_size(p))
        server_close(container_of(p->sv_idle.next, struct server, node),
                     "making room for a client that reads its own writes");
    if (!can_launch(p, false))
        return;
    p->launch_hint = host;
    server_launch(p);
}

/* The idle server to hand out next. With several backends, the database's balancing policy
 * picks the backend first, so transactions spread over hosts, not just connections; within
 * one backend, the most recently used server (PgBouncer's LIFO), or the oldest with
 * server_round_robin. */
static struct server *take_idle(struct pool *p, const struct client *c)
{
    if (list_empty(&p->sv_idle))
        return NULL;
    bool rr = G.cf->g.server_round_robin;
    struct database *db = p->db;
    /* Only servers on hosts that may serve the database now (up, right role, not lagging). */
    int elig[CF_MAX_HOSTS], conns[CF_MAX_HOSTS];
    int n = database_eligible(db, elig, NULL, 0);
    bool ryw = database_ryw_restrict(db, c, elig, &n);
    if (n == 0)
        return NULL;
    struct server *cand[CF_MAX_HOSTS] = {0};
    int last_pick = -1;
    struct list *it;
    list_for_each(it, &p->sv_idle)
    {
        struct server *s = container_of(it, struct server, node);
        int i = server_host_slot(s);
        if (i >= 0 && (!cand[i] || !rr))
            cand[i] = s;
    }
    if (db->nbackends > 1 && database_lb_policy(db) != LB_DISABLE) {
        for (int i = 0; i < db->nbackends; i++)
            conns[i] = db->backends[i]->sv_active;
        int pick = lb_pick(elig, n, database_lb_policy(db), &p->rr_idle, conns, (unsigned)rand());
        last_pick = pick;
        if (cand[pick])
            return cand[pick];
        /* The policy's choice has no idle server in this pool (it just came back, or all of
         * its servers are busy): open one there for the next transactions if the pool may
         * grow (or it is full but has too few servers there: respread_wanted), and serve
         * this one from another host meanwhile. */
        bool pending = false;
        struct list *li;
        list_for_each(li, &p->sv_login)
        {
            pending = pending || container_of(li, struct server, node)->be == db->backends[pick];
        }
        if ((!pending && can_launch(p, false)) || respread_wanted(p, pick, n)) {
            p->launch_hint = pick;
            server_launch(p);
        }
    }
    struct server *s = idle_after(elig, n, last_pick, cand);
    if (!s && ryw)
        ryw_make_way(p, last_pick >= 0 ? last_pick : elig[0]);
    return s;
}

static void run_check(struct server *s)
{
    const char *q = G.cf->g.server_check_query;
    server_set_state(s, SV_TESTED);
    /* PgBouncer's default "<empty>" sends an empty query. */
    server_run_internal(s, IQ_CHECK, q ? q : "");
}

/* From 100 us (a free server) to 30 s (near query_wait_timeout's default range). */
const uint64_t pool_wait_bounds_usec[POOL_WAIT_BUCKETS] = {
    100, 500, 1000, 5000, 10000, 50000, 100000, 500000, 1000000, 5000000, 10000000, 30000000,
};

/* One assignment into the histogram: at most POOL_WAIT_BUCKETS compares, no allocation. */
static void record_wait(struct pool *p, uint64_t waited)
{
    int i = 0;
    while (i < POOL_WAIT_BUCKETS && waited > pool_wait_bounds_usec[i])
        i++;
    p->wait_hist[i]++;
    p->wait_hist_sum += waited;
}

void pool_link(struct client *c, struct server *s)
{
    struct pool *p = c->pool;
    uint64_t now = now_usec();
    server_set_state(s, SV_ACTIVE);
    s->link = c;
    c->link = s;
    client_set_state(c, CL_ACTIVE);
    p->stats.server_assignment_count++;
    uint64_t waited = c->wait_start && now > c->wait_start ? now - c->wait_start : 0;
    if (c->wait_start) {
        p->stats.wait_time += now - c->wait_start;
        c->wait_start = 0;
    }
    record_wait(p, waited);
    char sql[8192] = "";
    /* A replication server got the client's parameters in its startup packet (a walsender
     * takes no SET). */
    if (s->replication == REPL_NONE &&
        varcache_diff_sql(&c->vars, &s->vars, sql, sizeof(sql)) > 0) {
        s->dirty = true;
        server_run_internal(s, IQ_SETVARS, sql);
    }
    server_update_reading(s);
}

bool pool_client_wants_server(struct client *c)
{
    struct pool *p = c->pool;
    struct server *s;
    while (!database_paused(p->db) && (s = take_idle(p, c)) != NULL) {
        if (needs_check(s)) {
            run_check(s);
            continue;
        }
        pool_link(c, s);
        return true;
    }
    c->wait_start = now_usec();
    c->wait_notified = false;
    client_set_state(c, CL_WAITING);
    /* The client stays readable while it waits (a disconnect is seen at once, and no
     * epoll_ctl pair per wait); its buffer bounds what it can send ahead. */
    pool_service(p);
    return false;
}

bool pool_server_done(const struct server *s, const struct client *c)
{
    return s->ready && s->expect_rfq == 0 && !s->open_batch && s->pkt_remain == 0 &&
           s->tx_status == 'I' && s->iq == IQ_NONE && (!c || c->pkt_remain == 0);
}

void pool_unlink(struct client *c)
{
    struct server *s = c->link;
    if (!s)
        return;
    if (c->pkt_remain > 0 || prepared_collect_need(c))
        s->open_batch = true;    /* it holds part of a message: nobody else can use it */
    prepared_server_unlinked(s); /* responses still owed will not reach this client */
    s->link = NULL;
    c->link = NULL;
    c->repl_server = NULL;
    s->repl_client = NULL;
    pool_release_server(s);
}

void pool_repl_forget(struct client *c)
{
    struct server *s = c->repl_server;
    if (!s)
        return;
    c->repl_server = NULL;
    s->repl_client = NULL;
    server_close(s, "replication client was closed");
}

void pool_repl_server_ready(struct server *s)
{
    struct client *c = s->repl_client;
    if (!c || c->state != CL_WAITING) {
        server_close(s, "replication client was closed");
        return;
    }
    /* The client's welcome is its own server's parameters, then it is linked for good. */
    client_finish_login_from(c, &s->login_params, &s->vars);
    if (c->st.closing)
        return; /* the write failed: client_close closed the server too */
    pool_link(c, s);
    client_resume(c);
}

void pool_release_server(struct server *s)
{
    if (s->state == SV_CLOSING)
        return;
    struct pool *p = s->pool;
    const struct cf_global *g = &G.cf->g;
    if (!pool_server_done(s, NULL)) {
        server_close(s, "client disconnect while server was not ready");
        return;
    }
    if (s->replication != REPL_NONE) {
        /* Its own client's alone: never idle, never anyone else's. */
        server_close(s, "replication client was closed");
        return;
    }
    if (s->cancels) {
        /* A cancel for its last client is still on its way: whoever got the server next
         * would have their query cancelled. server.c releases it again when it is done. */
        server_set_state(s, SV_BEING_CANCELED);
        return;
    }
    if (s->close_needed || server_tls_obsolete(s)) {
        server_close(s, "obsolete connection");
        return;
    }
    if (database_paused(p->db) && !G.suspended) {
        server_close(s, "pause mode");
        return;
    }
    int lifetime_sec = p->db->cf->server_lifetime_sec;
    uint64_t lifetime = lifetime_sec != CF_UNSET ? (uint64_t)lifetime_sec * USEC_PER_SEC
                                                 : (uint64_t)g->server_lifetime;
    if (lifetime > 0 && now_usec() - s->connect_time > lifetime) {
        server_close(s, "server lifetime over");
        return;
    }
    s->last_used = now_usec();
    int mode = pool_mode(p);
    const char *reset = g->server_reset_query;
    if (s->dirty && reset && *reset && (mode == POOL_SESSION || g->server_reset_query_always)) {
        server_set_state(s, SV_TESTED);
        server_run_internal(s, IQ_RESET, reset);
        return;
    }
    if (surplus_on_busy_host(s)) {
        server_close(s, "rebalancing onto another host");
        return;
    }
    pool_server_idle(s);
}

void pool_server_idle(struct server *s)
{
    struct pool *p = s->pool;
    s->link = NULL;
    server_set_state(s, SV_IDLE);
    server_update_reading(s);
    pool_service(p);
}

void pool_login_failed(struct pool *p, const char *sqlstate, const char *msg, bool fatal_auth)
{
    snprintf(p->last_login_error, sizeof(p->last_login_error), "%s", msg);
    snprintf(p->last_login_sqlstate, sizeof(p->last_login_sqlstate), "%s", sqlstate);
    p->last_login_auth = fatal_auth;
    /* A host that is not there is marked down by the health checks, so the other hosts keep
     * serving; only a refusal of our credentials (or no health checks) holds the pool back. */
    if (fatal_auth || G.cf->g.health_check_period <= 0)
        p->last_login_failure = now_usec();
    if (!fatal_auth)
        return;
    /* The server refused us: lookups of auth_query through this pool fail with its words. */
    auth_query_login_failed(p, sqlstate, msg);
    /* Clients waiting for this pool's first login get its error. */
    struct client *c;
    while ((c = NULL, !list_empty(&p->cl_waiting))) {
        struct list *it;
        list_for_each(it, &p->cl_waiting)
        {
            struct client *w = container_of(it, struct client, node);
            if (w->state == CL_WAITING_LOGIN) {
                c = w;
                break;
            }
        }
        if (!c)
            break;
        client_error_close(c, sqlstate, "%s", msg);
    }
}

static bool in_login_backoff(const struct pool *p)
{
    if (!p->last_login_failure)
        return false;
    return now_usec() - p->last_login_failure < (uint64_t)G.cf->g.server_login_retry;
}

const char *pool_login_failing(const struct pool *p)
{
    return in_login_backoff(p) && p->last_login_error[0] ? p->last_login_error : NULL;
}

enum launch_verdict {
    LAUNCH_OK,
    LAUNCH_NO,        /* pool full, backoff, shutting down */
    LAUNCH_DB_FULL,   /* max_db_connections reached */
    LAUNCH_USER_FULL, /* max_user_connections reached */
};

static enum launch_verdict limits_verdict(const struct pool *p);

/* May this pool open one more server connection now? If not, which limit says no. */
static enum launch_verdict launch_verdict(struct pool *p, bool use_reserve)
{
    if (G.shutdown_mode == SHUTDOWN_NOW || in_login_backoff(p))
        return LAUNCH_NO;
    int total = pool_server_total(p);
    int limit = pool_pool_size(p) + (use_reserve ? pool_reserve_size(p) : 0);
    if (total >= limit)
        return LAUNCH_NO;
    return limits_verdict(p);
}

/* max_db_connections and max_user_connections: which one, if any, refuses this pool one
 * more server. */
static enum launch_verdict limits_verdict(const struct pool *p)
{
    const struct cf_database *cf = p->db->cf;
    int max_db =
        cf->max_db_connections != CF_UNSET ? cf->max_db_connections : G.cf->g.max_db_connections;
    if (max_db > 0 && p->db->server_count >= max_db)
        return LAUNCH_DB_FULL;
    const struct cf_user *u = config_find_user(G.cf, p->user);
    int max_user = (u && u->max_user_connections != CF_UNSET) ? u->max_user_connections
                                                              : G.cf->g.max_user_connections;
    if (max_user > 0 && user_server_total(p->user) >= max_user)
        return LAUNCH_USER_FULL;
    return LAUNCH_OK;
}

static bool within_connection_limits(const struct pool *p)
{
    return limits_verdict(p) == LAUNCH_OK;
}

static bool can_launch(struct pool *p, bool use_reserve)
{
    return launch_verdict(p, use_reserve) == LAUNCH_OK;
}

/* The least recently used server of list l that is older than *best (NULL: any). */
static struct server *lru_server(struct list *l, struct server *best)
{
    struct list *it;
    list_for_each(it, l)
    {
        struct server *s = container_of(it, struct server, node);
        if (!best || s->last_used < best->last_used)
            best = s;
    }
    return best;
}

/* A pool held back by max_db_connections (same_db) or max_user_connections takes the slot
 * of an unused server of another pool of that database (or of that user), as PgBouncer
 * does: otherwise its clients would wait for servers that nobody uses. Idle servers go
 * first, then released ones not yet checked. True if one was closed. */
static bool evict_for(struct pool *p, bool same_db)
{
    struct server *victim = NULL;
    struct list *di, *pi;
    for (int pass = 0; pass < 2 && !victim; pass++) {
        list_for_each(di, &G.databases)
        {
            struct database *db = container_of(di, struct database, node);
            if (same_db && db != p->db)
                continue;
            list_for_each(pi, &db->pools)
            {
                struct pool *o = container_of(pi, struct pool, node);
                if (o == p || (!same_db && strcmp(o->user, p->user) != 0))
                    continue;
                victim = lru_server(pass == 0 ? &o->sv_idle : &o->sv_used, victim);
            }
        }
    }
    if (!victim)
        return false;
    server_close(victim, "evicted");
    return true;
}

/* The oldest client in state st (CL_WAITING or CL_WAITING_LOGIN) that is not a replication
 * client. The counts answer "none" without a walk: a storm of clients waiting for a fresh
 * pool's first login must not make every pool_service O(waiting). */
static struct client *first_waiting(struct pool *p, enum client_state st)
{
    int n_login = p->n_cl_waiting_login;
    int n = st == CL_WAITING_LOGIN ? n_login : p->n_cl_waiting - n_login - p->n_repl_waiting;
    if (n <= 0)
        return NULL;
    struct list *it;
    list_for_each(it, &p->cl_waiting)
    {
        struct client *c = container_of(it, struct client, node);
        if (c->state == st && c->replication == REPL_NONE)
            return c;
    }
    return NULL;
}

/* Open a server for each replication client still without one, as PgBouncer 1.25: it
 * counts in pool_size (an idle server of the pool makes way for it) and in the connection
 * limits. */
static void launch_for_replication(struct pool *p)
{
    /* From the head again after each launch: a launch that fails at once closes its
     * client (and pool_service runs again inside); each round gives one client a server or
     * closes it, so this ends. */
    while (p->n_repl_waiting > 0) {
        struct client *c = NULL;
        struct list *it;
        list_for_each(it, &p->cl_waiting)
        {
            struct client *w = container_of(it, struct client, node);
            if (w->replication != REPL_NONE && !w->repl_server && w->state == CL_WAITING) {
                c = w;
                break;
            }
        }
        if (!c)
            return;
        enum launch_verdict v = launch_verdict(p, false);
        if (v == LAUNCH_NO && !in_login_backoff(p) && G.shutdown_mode != SHUTDOWN_NOW &&
            !list_empty(&p->sv_idle)) {
            server_close(lru_server(&p->sv_idle, NULL), "evicted");
            v = launch_verdict(p, false);
        }
        if ((v == LAUNCH_DB_FULL || v == LAUNCH_USER_FULL) && evict_for(p, v == LAUNCH_DB_FULL))
            v = launch_verdict(p, false);
        if (v != LAUNCH_OK)
            return;
        if (!server_launch_for(p, c))
            return; /* nothing can serve now: it waits (query_wait_timeout) */
    }
}

void pool_service(struct pool *p)
{
    if (p->db->admin)
        return;
    /* Clients waiting for the first login get their welcome. */
    if (p->welcome_ok && p->n_cl_waiting_login > 0) {
        struct client *c;
        while ((c = first_waiting(p, CL_WAITING_LOGIN)) != NULL) {
            client_set_state(c, CL_ACTIVE);
            client_finish_login(c);
            client_resume(c);
        }
    }
    if (database_paused(p->db))
        return;
    /* Lookups of auth_query go first: their clients cannot even log in before. */
    struct server *s;
    while (p->n_aq_waiting > 0 && (s = take_idle(p, NULL)) != NULL) {
        if (needs_check(s)) {
            run_check(s);
            continue;
        }
        auth_query_run(s);
    }
    /* Before the idle servers are handed out: under load an idle server is the only way
     * to make room for a replication client's own. */
    launch_for_replication(p);
    /* Idle servers go to waiting clients, oldest waiter first. */
    struct client *c;
    while ((c = first_waiting(p, CL_WAITING)) != NULL) {
        s = take_idle(p, c);
        if (!s)
            break;
        if (needs_check(s)) {
            run_check(s);
            continue;
        }
        pool_link(c, s);
        client_resume(c);
    }
    /* A database whose only hosts are names that do not resolve: waiting clients get the
     * lookup's error now rather than query_wait_timeout later. */
    char why[300];
    if (p->n_cl_waiting > 0 && database_dns_failed(p->db, why, sizeof(why))) {
        uint64_t t = now_usec();
        if (!p->last_dns_fail_log ||
            t - p->last_dns_fail_log >= (uint64_t)G.cf->g.dns_nxdomain_ttl) {
            /* As PgBouncer 1.25 says it, once per dns_nxdomain_ttl and pool. */
            p->last_dns_fail_log = t;
            int port;
            const char *host = database_host(p->db, 0, &port);
            log_info("%s/%s@%s:%d closing because: server DNS lookup failed (%s)", p->db->name,
                     p->user, host, port, why + strlen("server DNS lookup failed: "));
        }
        while ((c = first_waiting(p, CL_WAITING_LOGIN)) != NULL ||
               (c = first_waiting(p, CL_WAITING)) != NULL)
            client_error_close(c, "08006", "%s", why);
        return;
    }
    /* Open servers for clients still waiting (a first one to learn the welcome). */
    int pending = p->n_sv_login - p->n_repl_login + p->n_sv_tested;
    int waiting = p->n_cl_waiting - p->n_repl_waiting + p->n_aq_waiting;
    if (!p->welcome_ok && waiting > 0 && pool_server_total(p) == 0)
        waiting = waiting > 1 ? waiting : 1;
    uint64_t now = now_usec();
    while (waiting > pending) {
        struct client *oldest = first_waiting(p, CL_WAITING);
        bool reserve = oldest && oldest->wait_start &&
                       now - oldest->wait_start > (uint64_t)G.cf->g.reserve_pool_timeout;
        enum launch_verdict v = launch_verdict(p, reserve);
        if ((v == LAUNCH_DB_FULL || v == LAUNCH_USER_FULL) && evict_for(p, v == LAUNCH_DB_FULL))
            v = launch_verdict(p, reserve);
        if (v != LAUNCH_OK)
            break;
        if (reserve && pool_server_total(p) >= pool_pool_size(p))
            client_log(oldest, LOG_LVL_WARNING, "taking connection from reserve_pool");
        if (!server_launch(p))
            break;
        pending++;
    }
    /* Keep min_pool_size servers around (a forced user's pool also before its first login:
     * one server first, to learn the welcome). */
    while (pool_server_total(p) < pool_min_size(p) &&
           (p->welcome_ok || pool_server_total(p) == 0) && can_launch(p, false)) {
        if (!server_launch(p))
            break;
    }
}

/* ---------------------------------------------------------------- janitor */

/* What a tick costs: a few counters per pool, plus the connections that can time out: the
 * pools' active servers (their clients' query, transaction and idle-transaction timeouts),
 * waiting clients, idle and logging-in servers, and login clients up to the first still in
 * time. Every client of a pool is looked at only when client_idle_timeout is set, so idle
 * clients of a transaction pool cost nothing by default. */

struct victim {
    void *obj;
    bool is_server;
    bool server_first;    /* client: close its server first, with the same reason */
    const char *sqlstate; /* client: send this error first; NULL = just close */
    const char *reason;
};

#define FAST_CLOSE_REASON "database configuration changed"

struct victims {
    struct victim *v;
    size_t n, cap;
};

static void victim_add(struct victims *vs, void *obj, bool is_server, const char *sqlstate,
                       const char *reason)
{
    if (vs->n == vs->cap) {
        size_t cap = vs->cap ? vs->cap * 2 : 64;
        struct victim *nv = realloc(vs->v, cap * sizeof(*nv));
        if (!nv)
            return;
        vs->v = nv;
        vs->cap = cap;
    }
    vs->v[vs->n++] = (struct victim){obj, is_server, false, sqlstate, reason};
}

/* A client whose server goes first, then the client (08P01), both with the reason: PgBouncer
 * 1.25's order and words for transaction timeout, query timeout, idle transaction timeout and
 * server_fast_close. */
static void victim_add_pair(struct victims *vs, struct client *c, const char *reason)
{
    victim_add(vs, c, false, "08P01", reason);
    if (vs->n > 0 && vs->v[vs->n - 1].obj == c)
        vs->v[vs->n - 1].server_first = true;
}

/* Idle servers on hosts that may no longer serve the database (lagging, wrong role) free
 * their slot; and a full pool whose servers all sit on some hosts while another eligible
 * host has none gives one idle server up, so the next transactions open one there (a host
 * that came back, or a standby again after prefer-standby fell back to the primary). */
static void check_balance(struct pool *p, struct victims *vs)
{
    struct database *db = p->db;
    if (db->nbackends < 1 || db->admin || list_empty(&p->sv_idle))
        return; /* every verdict below is about an idle server */
    int elig[CF_MAX_HOSTS], n = database_eligible(db, elig, NULL, 0);
    bool ok[CF_MAX_HOSTS] = {false};
    int count[CF_MAX_HOSTS] = {0};
    for (int j = 0; j < n; j++)
        ok[elig[j]] = true;
    for (int i = 0; i < db->nbackends && db->cf->read_your_writes; i++)
        ok[i] =
            ok[i] || (db->backends[i]->hc.state == BE_UP && db->backends[i]->role == ROLE_PRIMARY);
    struct list *lists[POOL_SV_NLISTS];
    pool_server_lists(p, lists);
    for (int l = 0; l < POOL_SV_NLISTS; l++) {
        struct list *it;
        list_for_each(it, lists[l])
        {
            int i = server_host_slot(container_of(it, struct server, node));
            if (i >= 0)
                count[i]++;
        }
    }
    struct list *it;
    struct server *from_busiest = NULL;
    int busiest = 0;
    list_for_each(it, &p->sv_idle)
    {
        struct server *s = container_of(it, struct server, node);
        int idx = server_host_slot(s);
        if (n > 0 && (idx < 0 || !ok[idx])) {
            victim_add(vs, s, true, NULL, "host no longer eligible for this database");
            continue;
        }
        if (idx >= 0 && count[idx] > busiest) {
            busiest = count[idx];
            from_busiest = s;
        }
    }
    if (!from_busiest || database_lb_policy(db) == LB_DISABLE || n < 2 ||
        pool_server_total(p) < pool_pool_size(p))
        return;
    for (int j = 0; j < n; j++) {
        if (count[elig[j]] == 0 && busiest > 1) {
            victim_add(vs, from_busiest, true, NULL, "rebalancing onto another host");
            return;
        }
    }
}

/* A client victim: false if it is already closing; else its server goes first when the
 * victim says so (unlinked, closed with the same reason), and the caller closes the client. */
static bool victim_client_first_steps(const struct victim *v)
{
    struct client *c = v->obj;
    if (c->state == CL_CLOSING)
        return false;
    if (v->server_first && c->link) {
        struct server *s = c->link;
        s->link = NULL;
        c->link = NULL;
        server_close(s, "%s", v->reason);
    }
    return true;
}

/* query_wait_notify: tell a logged-in client, once per wait, that it is queued. */
static void notify_waiting(struct client *c)
{
    struct pktbuf b;
    pktbuf_init(&b);
    pktbuf_notice(&b, "00000",
                  "No server connection available in postgres backend, client "
                  "being queued");
    c->wait_notified = true;
    if (!b.failed)
        client_send(c, b.data, b.len);
    pktbuf_free(&b);
}

static void check_pool(struct pool *p, uint64_t now, struct victims *vs)
{
    /* A pool with neither servers nor waiting clients has nothing below to look at unless
     * client_idle_timeout must walk its clients: the counters say so without the lists. */
    if (p->n_cl_waiting == 0 && p->n_sv_active == 0 && p->n_sv_idle == 0 && p->n_sv_login == 0 &&
        (p->n_cl_active == 0 || resolve_limits(p)->lim_client_idle_timeout == 0))
        return;
    const struct cf_global *g = &G.cf->g;
    const struct pool *lim = resolve_limits(p); /* user, else database, else global */
    struct list *it;
    list_for_each(it, &p->cl_waiting)
    {
        struct client *c = container_of(it, struct client, node);
        /* As PgBouncer 1.25: query_timeout, when set, also bounds the wait, and is looked
         * at first. */
        if (timeout_expired(c->wait_start, now, lim->lim_query_timeout))
            victim_add(vs, c, false, "08P01", "query_timeout");
        else if (timeout_expired(c->wait_start, now, lim->lim_query_wait_timeout))
            victim_add(vs, c, false, "08P01", NULL);
        /* A waiting replication client has not had its AuthenticationOk yet: libpq takes no
         * NoticeResponse before it. */
        else if (c->state == CL_WAITING && !c->wait_notified && c->replication == REPL_NONE &&
                 timeout_expired(c->wait_start, now, g->query_wait_notify))
            notify_waiting(c);
    }
    /* The timeouts of a client with a server are checked through the pool's active servers
     * (the linked clients: sv_active holds every server with s->link, and a few running an
     * auth_query without one), so the idle clients of a transaction pool cost nothing here. */
    int mode = lim->lim_mode;
    list_for_each(it, &p->sv_active)
    {
        struct server *s = container_of(it, struct server, node);
        struct client *c = s->link;
        if (!c || c->state != CL_ACTIVE)
            continue;
        if (c->xact_start && timeout_expired(c->xact_start, now, lim->lim_xact_timeout)) {
            victim_add_pair(vs, c, "transaction timeout");
        } else if (s->iq == IQ_NONE && s->expect_rfq > 0) {
            if (timeout_expired(c->query_start, now, lim->lim_query_timeout))
                victim_add_pair(vs, c, "query timeout");
        } else if (s->tx_status != 'I' && s->expect_rfq == 0) {
            if (timeout_expired(c->request_time, now, lim->lim_idle_xact_timeout))
                victim_add_pair(vs, c, "idle transaction timeout");
        } else if (mode == POOL_SESSION && s->close_needed && g->server_fast_close &&
                   s->tx_status == 'I' && s->expect_rfq == 0 && s->iq == IQ_NONE) {
            /* server_fast_close: end the session between transactions instead of keeping
             * a server that RECONNECT or a changed definition wants replaced. */
            victim_add_pair(vs, c, FAST_CLOSE_REASON);
        }
    }
    /* Only a client without a server, as in PgBouncer 1.25: a session-mode client keeps its
     * server and is never idle-timed out. The walk over every client happens only when
     * client_idle_timeout is set (it is off by default). */
    if (lim->lim_client_idle_timeout > 0) {
        list_for_each(it, &p->cl_active)
        {
            struct client *c = container_of(it, struct client, node);
            if (!c->link && timeout_expired(c->request_time, now, lim->lim_client_idle_timeout))
                victim_add(vs, c, false, "08P01", "client_idle_timeout");
        }
    }
    int total = pool_server_total(p);
    int min = pool_min_size(p);
    int lifetime_sec = p->db->cf->server_lifetime_sec;
    usec_t lifetime =
        lifetime_sec != CF_UNSET ? (usec_t)lifetime_sec * USEC_PER_SEC : g->server_lifetime;
    list_for_each(it, &p->sv_idle)
    {
        struct server *s = container_of(it, struct server, node);
        if (server_tls_obsolete(s)) {
            /* RELOAD changed the server TLS settings it was made under. */
            victim_add(vs, s, true, NULL, "obsolete connection");
            total--;
        } else if (timeout_expired(s->connect_time, now, lifetime)) {
            victim_add(vs, s, true, NULL, "server lifetime over");
            total--;
        } else if (total > min && timeout_expired(s->last_used, now, g->server_idle_timeout)) {
            victim_add(vs, s, true, NULL, "server idle timeout");
            total--;
        }
    }
    list_for_each(it, &p->sv_login)
    {
        struct server *s = container_of(it, struct server, node);
        if (timeout_expired(s->connect_time, now, g->server_connect_timeout))
            victim_add(vs, s, true, NULL, "connect timeout");
    }
    check_balance(p, vs);
}

/* Nothing for the janitor to look at: no client, no server, no lookup, and not a forced
 * user's pool that min_pool_size keeps filled. */
static bool pool_unoccupied(const struct pool *p)
{
    return p->n_cl_active + p->n_cl_waiting + p->n_cl_active_cancel_req == 0 &&
           pool_server_total(p) == 0 && p->n_aq_waiting == 0 &&
           !(p->db->cf->user && db_min_pool_size(p->db) > 0);
}

/* A forced user's pool exists without clients, so that min_pool_size can hold: made when
 * the definitions may have changed (G.cf_gen: RELOAD, SET, a new database), and again
 * after a failure, not at every tick. */
static void make_forced_user_pools(void)
{
    static uint64_t done_gen;
    if (done_gen == G.cf_gen)
        return;
    bool all = true;
    struct list *it;
    list_for_each(it, &G.databases)
    {
        struct database *db = container_of(it, struct database, node);
        if (!db->cf->user || db->admin || db->removed || db->reaping || db_min_pool_size(db) <= 0)
            continue;
        struct pool *p = pool_get(db, db->cf->user);
        if (p) {
            pool_note_busy(p); /* min_pool_size may just have been raised (SET, RELOAD) */
        } else {
            log_warning("database %s: no memory for the pool of user %s", db->name, db->cf->user);
            all = false;
        }
    }
    if (all)
        done_gen = G.cf_gen;
}

void pool_janitor(void)
{
    uint64_t now = now_usec();
    ryw_expire((usec_t)now);
    const struct cf_global *g = &G.cf->g;
    struct victims vs = {0};
    struct list *it, *pi;
    /* Clients enter G.login_clients only when accepted, so it is in connect_time order: the
     * walk ends at the first one still within client_login_timeout. */
    list_for_each(it, &G.login_clients)
    {
        struct client *c = container_of(it, struct client, node);
        if (!timeout_expired(c->connect_time, now, g->client_login_timeout))
            break;
        victim_add(&vs, c, false, "08P01", "client_login_timeout");
    }
    list_for_each(pi, &G.busy_pools)
    {
        check_pool(container_of(pi, struct pool, busy_node), now, &vs);
    }
    /* Act after looking: closing one connection can move others between lists. */
    for (size_t i = 0; i < vs.n; i++) {
        struct victim *v = &vs.v[i];
        if (v->is_server) {
            struct server *s = v->obj;
            if (s->state == SV_IDLE || s->state == SV_LOGIN)
                server_close(s, "%s", v->reason);
        } else {
            struct client *c = v->obj;
            if (!victim_client_first_steps(v))
                continue;
            if (v->reason) {
                client_error_close(c, v->sqlstate, "%s", v->reason);
                continue;
            }
            /* query_wait_timeout: say why no server could be had, when we know. */
            int elig[CF_MAX_HOSTS];
            char why[160];
            if (c->pool && database_eligible(c->pool->db, elig, why, sizeof(why)) == 0)
                client_error_close(c, v->sqlstate,
                                   "query_wait_timeout: no server available for "
                                   "database %s: %s",
                                   c->pool->db->name, why);
            else
                client_error_close(c, v->sqlstate, "query_wait_timeout");
        }
    }
    free(vs.v);
    cancel_janitor(now);
    /* Unused auto-databases go after autodb_idle_timeout (seconds): once a second is
     * enough, and the walk over every database stays out of the 4 Hz tick; at the first
     * tick after a RELOAD (G.cf_gen) too, for the databases it removed. */
    static uint64_t last_reap, reap_gen;
    if (now - last_reap >= USEC_PER_SEC || reap_gen != G.cf_gen) {
        last_reap = now;
        reap_gen = G.cf_gen;
        database_reap(now);
    }
    make_forced_user_pools();
    struct list *next;
    for (pi = G.busy_pools.next; pi != &G.busy_pools; pi = next) {
        struct pool *p = container_of(pi, struct pool, busy_node);
        /* pool_service acts only for waiting clients, auth_query lookups or a pool
         * below min_pool_size: an idle pool costs these three counters. */
        if (p->n_cl_waiting > 0 || p->n_aq_waiting > 0 || pool_server_total(p) < pool_min_size(p))
            pool_service(p);
        next = pi->next; /* pool_service may add pools at the tail, never removes one */
        if (pool_unoccupied(p)) {
            list_del(&p->busy_node);
            p->busy = false;
        }
    }
}

/* ---------------------------------------------------------------- SUSPEND */

/* Nothing received is left to pass on, nothing to send is left to go. */
static bool stream_flushed(const struct stream *st)
{
    return st->closing || (stream_avail(st) == 0 && st->queued == 0 && st->olen == 0);
}

int pool_suspend_check(bool force)
{
    struct victims vs = {0};
    int left = 0;
    struct list *it, *di, *pi;
    list_for_each(it, &G.login_clients)
    {
        struct client *c = container_of(it, struct client, node);
        if (!stream_flushed(&c->st)) {
            left++;
            victim_add(&vs, c, false, "08P01", "suspend_timeout");
        }
    }
    list_for_each(di, &G.databases)
    {
        struct database *db = container_of(di, struct database, node);
        if (db->admin)
            continue; /* the console that asked, and any other, stays usable */
        list_for_each(pi, &db->pools)
        {
            struct pool *p = container_of(pi, struct pool, node);
            struct list *cls[] = {&p->cl_active, &p->cl_waiting, &p->cl_active_cancel_req};
            for (size_t i = 0; i < sizeof(cls) / sizeof(cls[0]); i++) {
                list_for_each(it, cls[i])
                {
                    struct client *c = container_of(it, struct client, node);
                    if (stream_flushed(&c->st) && (!c->link || stream_flushed(&c->link->st)))
                        continue;
                    left++;
                    /* As 1.25: the server goes first, then its client with the reason. */
                    victim_add_pair(&vs, c, "suspend_timeout");
                }
            }
            struct list *svs[POOL_SV_NLISTS];
            pool_server_lists(p, svs);
            for (int l = 0; l < POOL_SV_NLISTS; l++) {
                list_for_each(it, svs[l])
                {
                    struct server *s = container_of(it, struct server, node);
                    if (s->link || stream_flushed(&s->st))
                        continue; /* a linked one was judged with its client */
                    left++;
                    victim_add(&vs, s, true, NULL, "suspend_timeout");
                }
            }
        }
    }
    for (size_t i = 0; force && i < vs.n; i++) {
        struct victim *v = &vs.v[i];
        if (v->is_server) {
            struct server *s = v->obj;
            if (s->state != SV_CLOSING)
                server_close(s, "%s", v->reason);
            continue;
        }
        struct client *c = v->obj;
        if (victim_client_first_steps(v))
            client_error_close(c, v->sqlstate, "%s", v->reason);
    }
    free(vs.v);
    return force ? 0 : left;
}

void pool_suspend_reading(void)
{
    /* Looked at first, acted on after: resuming one connection can move or close others
     * (nothing is freed before the loop runs again). */
    struct victims vs = {0};
    struct list *it, *di, *pi;
    list_for_each(it, &G.login_clients)
    {
        victim_add(&vs, container_of(it, struct client, node), false, NULL, NULL);
    }
    list_for_each(di, &G.databases)
    {
        struct database *db = container_of(di, struct database, node);
        if (db->admin)
            continue;
        list_for_each(pi, &db->pools)
        {
            struct pool *p = container_of(pi, struct pool, node);
            struct list *cls[] = {&p->cl_active, &p->cl_waiting, &p->cl_active_cancel_req};
            for (size_t i = 0; i < sizeof(cls) / sizeof(cls[0]); i++) {
                list_for_each(it, cls[i])
                {
                    victim_add(&vs, container_of(it, struct client, node), false, NULL, NULL);
                }
            }
            struct list *svs[POOL_SV_NLISTS];
            pool_server_lists(p, svs);
            for (int l = 0; l < POOL_SV_NLISTS; l++) {
                list_for_each(it, svs[l])
                {
                    victim_add(&vs, container_of(it, struct server, node), true, NULL, NULL);
                }
            }
        }
    }
    for (size_t i = 0; i < vs.n; i++) {
        if (vs.v[i].is_server) {
            struct server *s = vs.v[i].obj;
            if (G.suspended)
                server_update_reading(s);
            else
                server_resume(s); /* what it sent meanwhile, then reading again */
        } else {
            struct client *c = vs.v[i].obj;
            if (G.suspended || c->state != CL_ACTIVE)
                client_update_reading(c);
            else
                client_resume(c);
        }
    }
    free(vs.v);
}
