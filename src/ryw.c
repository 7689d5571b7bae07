/*
 * ryw.c: read-your-writes memory. A hash table of (user, client address) -> end of the last
 * transaction on a written-to database, with a list in write order so that expiry and the
 * size bound cost O(1) per entry. Never looks at servers or hosts.
 */
#include "pgusher/ryw.h"

#include "pgusher/list.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ryw_entry {
    struct ryw_entry *hnext;
    struct list order; /* oldest write first */
    uint32_t hash;
    struct ryw_write w;
    char user[64]; /* NAMEDATALEN */
    char addr[48];
};

static struct ryw_entry **buckets;
static size_t nbuckets, nentries;
static struct list by_age = LIST_INIT(by_age);

static uint32_t ryw_hash(const char *user, const char *addr)
{
    uint32_t h = 2166136261u; /* FNV-1a over user, NUL, addr */
    for (const char *p = user; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    h = (h ^ 0u) * 16777619u;
    for (const char *p = addr; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return h;
}

static struct ryw_entry **slot_of(uint32_t hash, const char *user, const char *addr)
{
    struct ryw_entry **pp = &buckets[hash & (nbuckets - 1)];
    for (; *pp; pp = &(*pp)->hnext)
        if ((*pp)->hash == hash && strcmp((*pp)->user, user) == 0 &&
            strcmp((*pp)->addr, addr) == 0)
            return pp;
    return pp;
}

static void remove_entry(struct ryw_entry *e)
{
    struct ryw_entry **pp = slot_of(e->hash, e->user, e->addr);
    if (*pp == e)
        *pp = e->hnext;
    list_del(&e->order);
    nentries--;
    free(e);
}

static void grow(void)
{
    size_t n = nbuckets ? nbuckets * 2 : 256;
    struct ryw_entry **nb = calloc(n, sizeof(*nb));
    if (!nb)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < nbuckets; i++) {
        struct ryw_entry *e = buckets[i];
        while (e) {
            struct ryw_entry *next = e->hnext;
            e->hnext = nb[e->hash & (n - 1)];
            nb[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(buckets);
    buckets = nb;
    nbuckets = n;
}

void ryw_note_write(const char *user, const char *addr, usec_t now)
{
    if (nentries >= nbuckets)
        grow();
    if (!nbuckets)
        return;
    uint32_t h = ryw_hash(user, addr);
    struct ryw_entry **pp = slot_of(h, user, addr);
    struct ryw_entry *e = *pp;
    if (e) {
        list_del(&e->order);
    } else {
        if (nentries >= RYW_MAX_ENTRIES)
            remove_entry(container_of(by_age.next, struct ryw_entry, order));
        e = calloc(1, sizeof(*e));
        if (!e)
            return;
        e->hash = h;
        snprintf(e->user, sizeof(e->user), "%s", user);
        snprintf(e->addr, sizeof(e->addr), "%s", addr);
        pp = slot_of(h, user, addr); /* the eviction may have changed the chain */
        e->hnext = *pp;
        *pp = e;
        nentries++;
    }
    e->w.at = now;
    e->w.lsn = 0;
    list_append(&by_age, &e->order);
}

struct ryw_write *ryw_find(const char *user, const char *addr, usec_t now)
{
    if (!nentries)
        return NULL;
    struct ryw_entry *e = *slot_of(ryw_hash(user, addr), user, addr);
    if (!e || now - e->w.at > RYW_KEEP_USEC)
        return NULL;
    return &e->w;
}

void ryw_expire(usec_t now)
{
    while (!list_empty(&by_age)) {
        struct ryw_entry *e = container_of(by_age.next, struct ryw_entry, order);
        if (now - e->w.at <= RYW_KEEP_USEC)
            break;
        remove_entry(e);
    }
}

size_t ryw_count(void)
{
    return nentries;
}

void ryw_reset(void)
{
    while (!list_empty(&by_age))
        remove_entry(container_of(by_age.next, struct ryw_entry, order));
    free(buckets);
    buckets = NULL;
    nbuckets = 0;
}
