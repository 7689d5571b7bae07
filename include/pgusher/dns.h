/*
 * dns.h: host names resolved by c-ares on the event loop and cached as PgBouncer documents it
 * (dns_max_ttl, dns_nxdomain_ttl, dns_zone_check_period): the cache behind SHOW DNS_HOSTS and
 * SHOW DNS_ZONES. It never connects to PostgreSQL nor decides what a changed answer means
 * for the databases or the peers: it tells its listeners (database.c, cancel.c) and they
 * follow.
 */
#ifndef PGUSHER_DNS_H
#define PGUSHER_DNS_H

#include "pgusher/list.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#define DNS_MAX_ADDRS 16
#define DNS_ADDRLEN INET6_ADDRSTRLEN

enum dns_status {
    DNS_NEW,      /* asked, no answer yet */
    DNS_OK,       /* addrs[] is the last answer */
    DNS_NXDOMAIN, /* the name (or any address of it) does not exist */
    DNS_FAILED,   /* no answer: timeout, refused, server failure */
};

struct dns_zone {
    struct list node; /* dns_zones() */
    char *name;
    uint32_t serial;
    bool have_serial;
    int count;           /* cached names in the zone */
    bool querying;       /* an SOA query is in flight */
    uint64_t next_check; /* usec: next SOA query */
};

/* One cached name. Addresses are kept through a failed lookup (status says what happened),
 * so a name that stops resolving keeps serving its last good addresses. */
struct dns_name {
    struct list node; /* dns_names() */
    char *name;
    enum dns_status status;
    int naddrs;
    char addrs[DNS_MAX_ADDRS][DNS_ADDRLEN]; /* sorted, distinct */
    uint64_t expires;                       /* usec: when to ask again (0 = at once) */
    char error[160];                        /* the last failure, "" after a success */
    bool querying;
    int refs; /* databases and peers watching it; unwatched, it stays cached until it expires */
    struct dns_zone *zone;
};

/* Called after every lookup of a watched name completes; changed = the address set is not
 * what it was. Listeners are added once at start-up (database.c, cancel.c) and called in the
 * order added; each finds out itself whether it watches dn. False: the table is full. */
typedef void (*dns_listener_fn)(struct dns_name *dn, bool changed);
#define DNS_MAX_LISTENERS 4
bool dns_add_listener(dns_listener_fn fn);

/* Start the resolver (resolv_conf from the settings in force); false with a log line when
 * c-ares cannot be set up. dns_watch still works without it: every name fails. */
bool dns_init(void);
/* Stop the resolver: pending lookups end, handles close (the loop may then exit). */
void dns_shutdown(void);

/* Is host an IPv4 or IPv6 address literal (never looked up)? */
bool dns_is_literal(const char *host);
/* Watch a name: find or create its cache entry (a new or expired one is looked up now) and
 * take a reference; dns_unwatch drops it. */
struct dns_name *dns_watch(const char *name);
void dns_unwatch(struct dns_name *dn);

/* The cache, for SHOW DNS_HOSTS / DNS_ZONES. */
struct list *dns_names(void);
struct list *dns_zones(void);

/* SHOW LISTS' dns_* rows: cached names, zones with names, lookups in flight (names and SOA
 * queries), and names with no answer yet. */
struct dns_counts {
    int names, zones, queries, pending;
};
void dns_count(struct dns_counts *out);

/* ---- pure cache logic (no I/O; now is the caller's clock), unit-tested. */

/* Record a lookup's outcome at now. OK takes addrs (sorted and made distinct here) and is
 * kept for max_ttl; NXDOMAIN/FAILED keep the previous addresses, remember error and are
 * asked again after nx_ttl. Returns whether the address set changed. */
bool dns_cache_store(struct dns_name *dn, enum dns_status st, char (*addrs)[DNS_ADDRLEN], int n,
                     const char *error, uint64_t now, int64_t max_ttl, int64_t nx_ttl);
/* Must the name be asked again at now? (Not while a lookup is in flight.) */
bool dns_cache_due(const struct dns_name *dn, uint64_t now);
/* Seconds left before the entry expires (SHOW DNS_HOSTS' ttl), 0 when due. */
int64_t dns_cache_ttl_left(const struct dns_name *dn, uint64_t now);
/* Record a zone's SOA serial; true when it differs from a serial seen before (the first one
 * is not a change). */
bool dns_zone_store_serial(struct dns_zone *z, uint32_t serial);
/* The zone of a name: what follows its first dot ("db.example.com" -> "example.com"); NULL
 * for a single label. */
const char *dns_zone_of(const char *name);
/* Is dn's first answer still to come (no address yet, a lookup not over)? A user of the
 * name may wait for the listener then; otherwise no address means the lookup failed. */
bool dns_name_waiting(const struct dns_name *dn);
/* Make every name of zone z in cache (a list of struct dns_name, dns_names()) due now: its
 * serial changed. Returns how many. */
int dns_zone_expire_names(struct list *cache, struct dns_zone *z);

#endif
