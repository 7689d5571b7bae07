/*
 * database.h: the databases (database.c): made from [databases] entries, their hosts as
 * backends (DNS names followed), redefined on RELOAD, reaped when unused. Their balancing
 * settings and eligibility helpers are declared in pool.h, beside the placement using them.
 */
#ifndef PGUSHER_DATABASE_H
#define PGUSHER_DATABASE_H

#include "pgusher/objects-t.h"
#include "pgusher/runtime.h"

/* Every database still defined, and every pool of those (the console's and the metrics'
 * view): databases removed by a reload are kept while connections point at them, but are
 * skipped here. */
#define FOR_EACH_DB(db)                                                                            \
    for (struct list *db##_it = G.databases.next; db##_it != &G.databases;                         \
         db##_it = db##_it->next)                                                                  \
        for (struct database *db = container_of(db##_it, struct database, node);                   \
             db && !db->removed; db = NULL)

#define FOR_EACH_POOL(db, p)                                                                       \
    FOR_EACH_DB(db)                                                                                \
    for (struct list *p##_it = db->pools.next; p##_it != &db->pools; p##_it = p##_it->next)        \
        for (struct pool *p = container_of(p##_it, struct pool, node); p; p = NULL)

/* Create the runtime databases for every [databases] entry of the config in force. */
void database_init_all(void);
/* Find a database by name, creating it from the "*" entry when allowed. NULL if unknown. */
struct database *database_find(const char *name, bool create_auto);
/* Create a runtime database from a connection string (NULL on error, logged). */
struct database *database_create(const char *name, const char *connstr, bool autodb);
/* Put db on G.databases, which is kept sorted by name (PgBouncer's SHOW order). */
void database_link_sorted(struct database *db);
/* Have databases follow their host names' DNS answers (dns.c's listener); once at start. */
void database_dns_init(void);
/* Replace the database's definition; its servers are closed as soon as they are released. */
void database_redefine(struct database *db, struct cf_database *cf, const char *connstr);
/* Host i of a definition and its port (no host: the Unix socket in unix_socket_dir). */
const char *database_host(const struct database *db, int i, int *port);
/* Every host of the database is a name whose lookup failed: true, with the reason. */
bool database_dns_failed(const struct database *db, char *why, size_t whylen);
/* read_your_writes: narrow the eligible hosts elig[0..*n) to those that have this client's
 * last write (false, untouched, when it wrote nothing recently or no host is known to). */
bool database_ryw_restrict(const struct database *db, const struct client *c, int *elig, int *n);
/* Free auto-databases idle for autodb_idle_timeout and removed ones no longer used. */
void database_reap(uint64_t now);

#endif
