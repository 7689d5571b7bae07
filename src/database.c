/*
 * database.c: the databases: created from their [databases] entry (or "*"), their hosts as
 * backends (literal addresses or the addresses DNS gives a name, rebuilt when the answer
 * changes), redefinition on RELOAD, reaping unused ones, and which hosts a client that
 * must read its own writes may use. Never hands out servers (pool.c does).
 */
#include "pgusher/pool.h"

#include "pgusher/balance.h"
#include "pgusher/dns.h"
#include "pgusher/log.h"
#include "pgusher/runtime.h"
#include "pgusher/ryw.h"
#include "pgusher/secret.h"
#include "pgusher/server.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------------------------------------------------------------- databases */

/* Host i of a definition and its port; no host = the Unix socket in unix_socket_dir, as
 * PgBouncer. */
const char *database_host(const struct database *db, int i, int *port)
{
    const struct cf_database *cf = db->cf;
    const char *host = NULL;
    *port = cf->port > 0 ? cf->port : 5432;
    if (cf->nhosts > 0) {
        host = cf->hosts[i];
        *port = cf->ports[i];
    }
    if (!host || !*host)
        host =
            G.cf->g.unix_socket_dir && *G.cf->g.unix_socket_dir ? G.cf->g.unix_socket_dir : "/tmp";
    return host;
}

static bool has_backend(struct backend *const *bes, int n, const struct backend *be)
{
    for (int i = 0; i < n; i++)
        if (bes[i] == be)
            return true;
    return false;
}

/* Make db->backends what its hosts are now: literals and socket directories as listed, each
 * name as the addresses dns.c has for it (a stand-in when none). Servers on a backend that
 * left are closed when idle and replaced when released; waiting clients are served again. */
static void rebuild_backends(struct database *db)
{
    struct backend *nb[CF_MAX_HOSTS];
    int k = 0;
    for (int i = 0; i < db->ndns; i++) {
        int port;
        const char *host = database_host(db, i, &port);
        struct dns_name *dn = db->dns[i];
        struct backend *got[DNS_MAX_ADDRS];
        int ng = 0;
        if (!dn) {
            got[ng++] = backend_get(host, port, NULL, !G.started);
        } else if (dn->naddrs > 0) {
            /* The first addresses of a name serve at once, as a host listed at start-up;
             * one that joins a known name later passes health_check_rise checks first. */
            bool fast = !G.started || !db->dns_had[i];
            db->dns_had[i] = true;
            for (int a = 0; a < dn->naddrs; a++) {
                got[ng++] = backend_get(dn->addrs[a], port, dn->name, fast);
            }
        } else {
            char err[200];
            snprintf(err, sizeof(err), "DNS: %s",
                     dn->status == DNS_NEW ? "lookup in progress" : dn->error);
            got[ng++] = backend_get_unresolved(host, port, err);
        }
        for (int j = 0; j < ng; j++) {
            if (!got[j])
                continue;
            if (k >= CF_MAX_HOSTS || has_backend(nb, k, got[j]))
                backend_unref(got[j]);
            else
                nb[k++] = got[j];
        }
    }
    /* A name that stopped resolving keeps the addresses it had; tell SHOW HOSTS why. */
    for (int i = 0; i < db->ndns; i++) {
        struct dns_name *dn = db->dns[i];
        if (!dn || dn->naddrs == 0)
            continue;
        for (int j = 0; j < k; j++) {
            if (nb[j]->unresolved || strcasecmp(nb[j]->name, dn->name) != 0)
                continue;
            if (dn->status != DNS_OK)
                snprintf(nb[j]->last_error, sizeof(nb[j]->last_error), "DNS: %s", dn->error);
            else if (strncmp(nb[j]->last_error, "DNS: ", 5) == 0)
                nb[j]->last_error[0] = '\0';
        }
    }
    struct backend **arr = malloc(sizeof(*arr) * (size_t)(k ? k : 1));
    if (!arr) {
        for (int j = 0; j < k; j++)
            backend_unref(nb[j]);
        return; /* keep the current set */
    }
    memcpy(arr, nb, sizeof(*arr) * (size_t)k);
    struct backend **old = db->backends;
    int nold = db->nbackends;
    db->backends = arr;
    db->nbackends = k;
    struct list *pi, *si, *tmp;
    list_for_each(pi, &db->pools)
    {
        struct pool *p = container_of(pi, struct pool, node);
        p->launch_hint = -1;
        list_for_each_safe(si, tmp, &p->sv_idle)
        {
            struct server *s = container_of(si, struct server, node);
            if (!has_backend(arr, k, s->be))
                server_close(s, "host %s:%d left the DNS answer for %s", s->be->host, s->be->port,
                             s->be->name[0] ? s->be->name : db->name);
        }
        struct list *lists[POOL_SV_NLISTS];
        pool_server_lists(p, lists);
        for (int l = 0; l < POOL_SV_NLISTS; l++) {
            list_for_each(si, lists[l])
            {
                struct server *s = container_of(si, struct server, node);
                if (!has_backend(arr, k, s->be))
                    s->close_needed = true;
            }
        }
    }
    for (int j = 0; j < nold; j++)
        backend_unref(old[j]);
    free(old);
}

void database_link_sorted(struct database *db)
{
    struct list *pos;
    for (pos = G.databases.next; pos != &G.databases; pos = pos->next)
        if (strcmp(container_of(pos, struct database, node)->name, db->name) > 0)
            break;
    list_insert_before(pos, &db->node);
}

/* Attach the backends (host:port) a definition lists, watching the names among them. */
static void attach_backends(struct database *db)
{
    const struct cf_database *cf = db->cf;
    int n = cf->nhosts > 0 ? cf->nhosts : 1;
    db->dns = calloc((size_t)n, sizeof(*db->dns));
    db->dns_had = calloc((size_t)n, sizeof(*db->dns_had));
    if (!db->dns || !db->dns_had) {
        free(db->dns);
        free(db->dns_had);
        db->dns = NULL;
        db->dns_had = NULL;
        return;
    }
    /* ndns stays 0 while watching: an answer given at once (a hosts file) must not make
     * database_dns_changed rebuild a half-filled database. rebuild_backends reads it. */
    db->ndns = 0;
    for (int i = 0; i < n; i++) {
        int port;
        const char *host = database_host(db, i, &port);
        if (host[0] != '/' && !dns_is_literal(host))
            db->dns[i] = dns_watch(host);
    }
    db->ndns = n;
    rebuild_backends(db);
}

static void detach_backends(struct database *db)
{
    for (int i = 0; i < db->nbackends; i++)
        backend_unref(db->backends[i]);
    for (int i = 0; i < db->ndns; i++)
        dns_unwatch(db->dns[i]);
    free(db->backends);
    free(db->dns);
    free(db->dns_had);
    db->backends = NULL;
    db->dns = NULL;
    db->dns_had = NULL;
    db->nbackends = db->ndns = 0;
}

/* dns.c's listener: a lookup of a name some databases list has completed. */
static void database_dns_changed(struct dns_name *dn, bool changed)
{
    struct list *di, *pi;
    list_for_each(di, &G.databases)
    {
        struct database *db = container_of(di, struct database, node);
        bool uses = false;
        for (int i = 0; i < db->ndns; i++)
            uses = uses || db->dns[i] == dn;
        if (!uses)
            continue;
        rebuild_backends(db);
        list_for_each(pi, &db->pools)
        {
            pool_service(container_of(pi, struct pool, node));
        }
    }
}

void database_dns_init(void)
{
    dns_add_listener(database_dns_changed);
}

/* When every host of db is a name whose lookup failed and none ever gave an address, the
 * reason (for waiting clients); false while any host may still serve or a lookup runs. */
bool database_dns_failed(const struct database *db, char *why, size_t whylen)
{
    if (db->ndns == 0 || db->nbackends == 0)
        return false;
    for (int i = 0; i < db->nbackends; i++)
        if (!db->backends[i]->unresolved)
            return false;
    for (int i = 0; i < db->ndns; i++)
        if (!db->dns[i] || db->dns[i]->status == DNS_NEW || db->dns[i]->querying ||
            db->dns[i]->naddrs > 0)
            return false;
    snprintf(why, whylen, "server DNS lookup failed: %s: %s", db->dns[0]->name, db->dns[0]->error);
    return true;
}

int database_tsa(const struct database *db)
{
    return db->cf->target_session_attrs != CF_UNSET ? db->cf->target_session_attrs : TSA_ANY;
}

int database_lb_policy(const struct database *db)
{
    return db->cf->load_balance_hosts != CF_UNSET ? db->cf->load_balance_hosts : LB_ROUND_ROBIN;
}

usec_t database_max_lag(const struct database *db)
{
    return db->cf->max_replica_lag != CF_UNSET ? db->cf->max_replica_lag : 0;
}

int database_eligible(const struct database *db, int *out, char *why, size_t whylen)
{
    const char *hc_user = G.cf->g.health_check_user;
    bool roles_from_logins = !hc_user || !*hc_user || G.cf->g.health_check_period <= 0;
    return lb_eligible_ex(db->backends, db->nbackends, database_tsa(db), database_max_lag(db), out,
                          why, whylen, roles_from_logins);
}

bool database_role_acceptable(const struct database *db, enum be_role role)
{
    return lb_role_acceptable(database_tsa(db), role) ||
           (db->cf->read_your_writes && role == ROLE_PRIMARY);
}

/* ---------------------------------------------------------------- read_your_writes */

static bool database_feeds_ryw(struct database *db)
{
    if (db->ryw_gen != G.cf_gen) {
        db->ryw_gen = G.cf_gen;
        db->ryw_source = false;
        for (int i = 0; i < G.cf->ndbs; i++) {
            const char *w = G.cf->dbs[i].read_your_writes;
            db->ryw_source = db->ryw_source || (w && strcmp(w, db->name) == 0);
        }
    }
    return db->ryw_source;
}

void pool_transaction_ended(const struct client *c)
{
    if (c->db && database_feeds_ryw(c->db))
        ryw_note_write(c->user_name, c->addr, (usec_t)now_usec());
}

/* A client of a read_your_writes database that wrote recently: narrow the eligible hosts to
 * those that have seen its writes (lb_ryw_filter). False (elig untouched) when it has not
 * written, or when no host is known to qualify: then it reads like everybody else. */
bool database_ryw_restrict(const struct database *db, const struct client *c, int *elig, int *n)
{
    if (!c || !db->cf->read_your_writes)
        return false;
    struct ryw_write *w = ryw_find(c->user_name, c->addr, (usec_t)now_usec());
    if (!w)
        return false;
    int allowed[CF_MAX_HOSTS];
    int k = lb_ryw_filter(db->backends, db->nbackends, elig, *n, w->at, &w->lsn, allowed);
    if (k == 0)
        return false;
    memcpy(elig, allowed, (size_t)k * sizeof(*elig));
    *n = k;
    return true;
}

struct database *database_create(const char *name, const char *connstr, bool autodb)
{
    struct database *db = calloc(1, sizeof(*db));
    if (!db)
        return NULL;
    db->cf = calloc(1, sizeof(*db->cf));
    db->name = strdup(name);
    db->connstr = strdup(connstr);
    if (!db->cf || !db->name || !db->connstr) {
        free(db->cf);
        free(db->name);
        secret_free_str(db->connstr); /* may hold password= */
        free(db);
        return NULL;
    }
    char err[256];
    if (!config_parse_database(name, connstr, db->cf, err, sizeof(err))) {
        log_error("database \"%s\": %s", name, err);
        free(db->cf);
        free(db->name);
        secret_free_str(db->connstr); /* may hold password= */
        free(db);
        return NULL;
    }
    if (autodb && !db->cf->dbname)
        db->cf->dbname = strdup(name);
    db->autodb = autodb;
    list_init(&db->pools);
    attach_backends(db);
    database_link_sorted(db);
    G.cf_gen++; /* a new definition: pool.c makes its forced user's pool */
    return db;
}

void database_init_all(void)
{
    for (int i = 0; i < G.cf->ndbs; i++) {
        const struct cf_database *cfd = &G.cf->dbs[i];
        if (strcmp(cfd->name, "*") == 0)
            continue;
        database_create(cfd->name, cfd->connstr ? cfd->connstr : "", false);
    }
}

struct database *database_find(const char *name, bool create_auto)
{
    struct list *it;
    list_for_each(it, &G.databases)
    {
        struct database *db = container_of(it, struct database, node);
        if (strcmp(db->name, name) == 0)
            return db;
    }
    if (strcmp(name, "pgusher") == 0)
        return database_find("pgbouncer", false);
    if (!create_auto)
        return NULL;
    const struct cf_database *star = config_find_database(G.cf, "*");
    if (!star)
        return NULL;
    struct database *db = database_create(name, star->connstr ? star->connstr : "", true);
    if (db)
        log_info("registered new auto-database: db=%s", name);
    return db;
}

/* Free a database nothing refers to any more, with its pools. */
static void database_destroy(struct database *db)
{
    while (!list_empty(&db->pools)) {
        struct pool *p = container_of(db->pools.next, struct pool, node);
        list_del(&p->node);
        pool_free(p);
    }
    detach_backends(db);
    config_free_database(db->cf);
    free(db->cf);
    free(db->name);
    secret_free_str(db->connstr); /* may hold password= */
    list_del(&db->node);
    free(db);
}

/* autodb_idle_timeout: an auto-created database ("*") that no client has used for that
 * long closes its servers and, once they are gone, is freed (stats with it, as
 * PgBouncer). A database removed by a reload is freed as soon as nothing refers to it. */
void database_reap(uint64_t now)
{
    usec_t timeout = G.cf->g.autodb_idle_timeout;
    struct list *it, *next;
    for (it = G.databases.next; it != &G.databases; it = next) {
        next = it->next;
        struct database *db = container_of(it, struct database, node);
        if (db->admin || (!db->autodb && !db->removed))
            continue;
        if (db->cl_refs > 0) {
            db->idle_since = 0;
            db->reaping = false;
            continue;
        }
        if (db->idle_since == 0)
            db->idle_since = now;
        if (!db->removed && !timeout_expired(db->idle_since, now, timeout))
            continue;
        db->reaping = true;
        if (db->sv_refs > 0) {
            struct list *pi;
            list_for_each(pi, &db->pools)
            {
                struct pool *p = container_of(pi, struct pool, node);
                struct list *lists[POOL_SV_NLISTS];
                pool_server_lists(p, lists);
                for (int i = 0; i < POOL_SV_NLISTS; i++)
                    while (!list_empty(lists[i]))
                        server_close(container_of(lists[i]->next, struct server, node),
                                     db->removed ? "database removed" : "unused auto-database");
            }
            continue; /* freed once their close callbacks have run */
        }
        if (db->autodb)
            log_info("freeing unused auto-database: db=%s", db->name);
        database_destroy(db);
    }
}

/* Mark every server of only (NULL = all) close_needed; idle ones close now, with reason
 * (PgBouncer 1.25's words differ between RECONNECT and a reload). */
static void mark_reconnect(struct database *only, const char *reason)
{
    struct list *di, *pi, *it;
    list_for_each(di, &G.databases)
    {
        struct database *db = container_of(di, struct database, node);
        if (only && db != only)
            continue;
        list_for_each(pi, &db->pools)
        {
            struct pool *p = container_of(pi, struct pool, node);
            struct list *lists[POOL_SV_NLISTS];
            pool_server_lists(p, lists);
            for (int i = 0; i < POOL_SV_NLISTS; i++) {
                list_for_each(it, lists[i])
                {
                    container_of(it, struct server, node)->close_needed = true;
                }
            }
            while (!list_empty(&p->sv_idle))
                server_close(container_of(p->sv_idle.next, struct server, node), "%s", reason);
        }
    }
}

void pool_reconnect(struct database *only)
{
    mark_reconnect(only, "database configuration changed");
}

void database_redefine(struct database *db, struct cf_database *cf, const char *connstr)
{
    detach_backends(db);
    config_free_database(db->cf);
    free(db->cf);
    db->cf = cf;
    G.cf_gen++;
    attach_backends(db);
    secret_free_str(db->connstr); /* may hold password= */
    db->connstr = strdup(connstr);
    db->rr_next = 0;
    mark_reconnect(db, "obsolete connection");
}

bool database_paused(const struct database *db)
{
    return G.paused || db->paused;
}
