/*
 * dns.c: c-ares driven by the libuv loop (uv_poll on its sockets, a uv_timer for its
 * timeouts), and the name cache behind SHOW DNS_HOSTS / DNS_ZONES. It never blocks, never
 * uses the thread pool, and never touches databases, servers or peers: its listeners hear
 * answers.
 *
 * Design: a watched name is looked up when first watched and again whenever its entry
 * expires (dns_max_ttl after an answer, dns_nxdomain_ttl after a failure), by a one-second
 * tick, so new server connections never wait for DNS and a busy pool asks once per period,
 * not once per connection. With dns_zone_check_period > 0 the same tick polls the SOA
 * serial of every zone that has cached names and expires all of a zone's names when it
 * changes. A failed lookup keeps the previous addresses (see dns_cache_store).
 */
#include "pgusher/dns.h"

#include "pgusher/config.h"
#include "pgusher/log.h"
#include "pgusher/runtime.h"

#include <arpa/inet.h>
#include <ares.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#define DNS_TICK_MS 1000
/* Per-try timeout and tries: a server that does not answer fails a lookup in about 3 s
 * (c-ares doubles the timeout on the second try), whatever resolv.conf says. */
#define DNS_TIMEOUT_MS 1000
#define DNS_TRIES 2

static struct list names = LIST_INIT(names);
static struct list zones = LIST_INIT(zones);
static dns_listener_fn listeners[DNS_MAX_LISTENERS];
static int nlisteners;

/* One socket c-ares asked us to watch. */
struct dns_sock {
    struct list node; /* socks */
    uv_poll_t poll;
    ares_socket_t fd;
};

static struct {
    ares_channel channel;
    bool ready;
    uv_timer_t timeout; /* c-ares' next timeout */
    uv_timer_t tick;    /* expiry and zone checks */
    bool timers_init;
    struct list socks;
} R = {.socks = LIST_INIT(R.socks)};

bool dns_add_listener(dns_listener_fn fn)
{
    if (nlisteners >= DNS_MAX_LISTENERS)
        return false;
    listeners[nlisteners++] = fn;
    return true;
}

struct list *dns_names(void)
{
    return &names;
}

struct list *dns_zones(void)
{
    return &zones;
}

bool dns_is_literal(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

void dns_count(struct dns_counts *out)
{
    memset(out, 0, sizeof(*out));
    struct list *it;
    list_for_each(it, &names)
    {
        const struct dns_name *dn = container_of(it, struct dns_name, node);
        out->names++;
        out->queries += dn->querying;
        out->pending += dn->status == DNS_NEW;
    }
    list_for_each(it, &zones)
    {
        const struct dns_zone *z = container_of(it, struct dns_zone, node);
        out->zones += z->count > 0;
        out->queries += z->querying;
    }
}

/* ---------------------------------------------------------------- pure cache logic */

static int addr_cmp(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

bool dns_cache_store(struct dns_name *dn, enum dns_status st, char (*addrs)[DNS_ADDRLEN], int n,
                     const char *error, uint64_t now, int64_t max_ttl, int64_t nx_ttl)
{
    if (st == DNS_OK && n > 0) {
        char sorted[DNS_MAX_ADDRS][DNS_ADDRLEN];
        int m = n < DNS_MAX_ADDRS ? n : DNS_MAX_ADDRS;
        memcpy(sorted, addrs, sizeof(sorted[0]) * (size_t)m);
        qsort(sorted, (size_t)m, sizeof(sorted[0]), addr_cmp);
        int k = 0;
        for (int i = 0; i < m; i++)
            if (k == 0 || strcmp(sorted[k - 1], sorted[i]) != 0)
                memmove(sorted[k++], sorted[i], sizeof(sorted[0]));
        bool changed = k != dn->naddrs;
        for (int i = 0; i < k && !changed; i++)
            changed = strcmp(sorted[i], dn->addrs[i]) != 0;
        memcpy(dn->addrs, sorted, sizeof(sorted[0]) * (size_t)k);
        dn->naddrs = k;
        dn->status = DNS_OK;
        dn->error[0] = '\0';
        dn->expires = now + (uint64_t)(max_ttl > 0 ? max_ttl : 0);
        return changed;
    }
    dn->status = st == DNS_OK || st == DNS_NEW ? DNS_NXDOMAIN : st;
    snprintf(dn->error, sizeof(dn->error), "%s", error && *error ? error : "no address");
    dn->expires = now + (uint64_t)(nx_ttl > 0 ? nx_ttl : 0);
    return false;
}

bool dns_cache_due(const struct dns_name *dn, uint64_t now)
{
    return !dn->querying && now >= dn->expires;
}

int64_t dns_cache_ttl_left(const struct dns_name *dn, uint64_t now)
{
    return dn->expires > now ? (int64_t)((dn->expires - now + 999999) / 1000000) : 0;
}

bool dns_zone_store_serial(struct dns_zone *z, uint32_t serial)
{
    bool changed = z->have_serial && z->serial != serial;
    z->serial = serial;
    z->have_serial = true;
    return changed;
}

const char *dns_zone_of(const char *name)
{
    const char *dot = strchr(name, '.');
    return dot && dot[1] ? dot + 1 : NULL;
}

bool dns_name_waiting(const struct dns_name *dn)
{
    return dn->naddrs == 0 && (dn->status == DNS_NEW || dn->querying);
}

int dns_zone_expire_names(struct list *cache, struct dns_zone *z)
{
    int n = 0;
    struct list *it;
    list_for_each(it, cache)
    {
        struct dns_name *dn = container_of(it, struct dns_name, node);
        if (dn->zone == z) {
            dn->expires = 0;
            n++;
        }
    }
    return n;
}

/* ---------------------------------------------------------------- c-ares on the loop */

static void rearm_timeout(void);

static void sock_free_cb(uv_handle_t *h)
{
    free(h->data);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct dns_sock *ds = h->data;
    ares_socket_t fd = ds->fd;
    if (status < 0) /* let c-ares find the error on the socket */
        ares_process_fd(R.channel, fd, fd);
    else
        ares_process_fd(R.channel, (events & UV_READABLE) ? fd : ARES_SOCKET_BAD,
                        (events & UV_WRITABLE) ? fd : ARES_SOCKET_BAD);
    rearm_timeout();
}

/* c-ares tells which of its sockets to watch for what; (0, 0) just before it closes one. */
static void sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
    struct dns_sock *ds = NULL;
    struct list *it;
    list_for_each(it, &R.socks)
    {
        struct dns_sock *x = container_of(it, struct dns_sock, node);
        if (x->fd == fd)
            ds = x;
    }
    if (!readable && !writable) {
        if (ds) {
            list_del(&ds->node);
            uv_poll_stop(&ds->poll);
            uv_close((uv_handle_t *)&ds->poll, sock_free_cb);
        }
        return;
    }
    if (!ds) {
        ds = calloc(1, sizeof(*ds));
        if (!ds)
            return; /* c-ares times the query out */
        if (uv_poll_init_socket(G.loop, &ds->poll, fd) != 0) {
            free(ds);
            return;
        }
        ds->fd = fd;
        ds->poll.data = ds;
        list_append(&R.socks, &ds->node);
    }
    uv_poll_start(&ds->poll, (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0), on_poll);
}

static void on_timeout(uv_timer_t *t)
{
    ares_process_fd(R.channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    rearm_timeout();
}

static void rearm_timeout(void)
{
    if (!R.ready)
        return;
    struct timeval tv, *tvp = ares_timeout(R.channel, NULL, &tv);
    if (!tvp) {
        uv_timer_stop(&R.timeout);
        return;
    }
    uint64_t ms = (uint64_t)tvp->tv_sec * 1000 + (uint64_t)(tvp->tv_usec + 999) / 1000;
    uv_timer_start(&R.timeout, on_timeout, ms ? ms : 1, 0);
}

/* ---------------------------------------------------------------- lookups */

static void lookup_done(struct dns_name *dn, enum dns_status st, char (*addrs)[DNS_ADDRLEN], int n,
                        const char *error)
{
    const struct cf_global *g = &G.cf->g;
    char before[DNS_MAX_ADDRS * (DNS_ADDRLEN + 1)] = "";
    size_t bl = 0;
    for (int i = 0; i < dn->naddrs && bl < sizeof(before); i++)
        bl +=
            (size_t)snprintf(before + bl, sizeof(before) - bl, "%s%s", i ? "," : "", dn->addrs[i]);
    bool had = dn->naddrs > 0;
    bool changed =
        dns_cache_store(dn, st, addrs, n, error, now_usec(), g->dns_max_ttl, g->dns_nxdomain_ttl);
    if (dn->status != DNS_OK) {
        /* Once per lookup, and a failing name is looked up once per dns_nxdomain_ttl. */
        log_warning("DNS lookup failed: %s: %s%s", dn->name, dn->error,
                    had ? " (keeping its last addresses)" : "");
    } else if (changed) {
        char now_s[sizeof(before)] = "";
        size_t nl = 0;
        for (int i = 0; i < dn->naddrs && nl < sizeof(now_s); i++)
            nl += (size_t)snprintf(now_s + nl, sizeof(now_s) - nl, "%s%s", i ? "," : "",
                                   dn->addrs[i]);
        if (had)
            log_info("DNS: %s now resolves to %s (was %s)", dn->name, now_s, before);
        else
            log_debug("DNS: %s resolves to %s", dn->name, now_s);
    }
    for (int i = 0; i < nlisteners && dn->refs > 0; i++)
        listeners[i](dn, changed);
}

static void on_addrinfo(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    struct dns_name *dn = arg;
    dn->querying = false;
    if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) {
        ares_freeaddrinfo(res);
        return;
    }
    char addrs[DNS_MAX_ADDRS][DNS_ADDRLEN];
    int n = 0;
    for (struct ares_addrinfo_node *ai = res ? res->nodes : NULL; ai && n < DNS_MAX_ADDRS;
         ai = ai->ai_next) {
        const void *a = NULL;
        if (ai->ai_family == AF_INET)
            a = &((const struct sockaddr_in *)ai->ai_addr)->sin_addr;
        else if (ai->ai_family == AF_INET6)
            a = &((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
        if (a && inet_ntop(ai->ai_family, a, addrs[n], DNS_ADDRLEN))
            n++;
    }
    ares_freeaddrinfo(res);
    if (status == ARES_SUCCESS && n > 0)
        lookup_done(dn, DNS_OK, addrs, n, NULL);
    else if (status == ARES_SUCCESS || status == ARES_ENOTFOUND || status == ARES_ENODATA)
        lookup_done(dn, DNS_NXDOMAIN, NULL, 0,
                    status == ARES_SUCCESS ? "no address" : ares_strerror(status));
    else
        lookup_done(dn, DNS_FAILED, NULL, 0, ares_strerror(status));
}

static void start_lookup(struct dns_name *dn)
{
    if (dn->querying)
        return;
    if (!R.ready) {
        lookup_done(dn, DNS_FAILED, NULL, 0, "resolver not available");
        return;
    }
    struct ares_addrinfo_hints hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    dn->querying = true;
    ares_getaddrinfo(R.channel, dn->name, NULL, &hints, on_addrinfo, dn); /* may answer now */
    rearm_timeout();
}

static void on_soa(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct dns_zone *z = arg;
    z->querying = false;
    if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED)
        return;
    struct ares_soa_reply *soa = NULL;
    if (status == ARES_SUCCESS)
        status = ares_parse_soa_reply(abuf, alen, &soa);
    if (status != ARES_SUCCESS) {
        log_warning("DNS zone check failed: %s: %s", z->name, ares_strerror(status));
        return;
    }
    uint32_t old = z->serial;
    if (dns_zone_store_serial(z, soa->serial)) {
        int n = dns_zone_expire_names(&names, z);
        log_info("zone '%s' serial changed: old=%u new=%u (%d name%s to look up again)", z->name,
                 old, soa->serial, n, n == 1 ? "" : "s");
    }
    ares_free_data(soa);
}

static void free_name(struct dns_name *dn)
{
    if (dn->zone)
        dn->zone->count--;
    list_del(&dn->node);
    free(dn->name);
    free(dn);
}

static void on_tick(uv_timer_t *t)
{
    uint64_t now = now_usec();
    struct list *it, *tmp;
    list_for_each_safe(it, tmp, &names)
    {
        struct dns_name *dn = container_of(it, struct dns_name, node);
        if (!dns_cache_due(dn, now))
            continue;
        if (dn->refs > 0)
            start_lookup(dn);
        else
            free_name(dn); /* nobody uses it and it expired */
    }
    usec_t period = G.cf->g.dns_zone_check_period;
    list_for_each_safe(it, tmp, &zones)
    {
        struct dns_zone *z = container_of(it, struct dns_zone, node);
        if (z->querying)
            continue;
        if (z->count == 0) {
            list_del(&z->node);
            free(z->name);
            free(z);
            continue;
        }
        if (period <= 0 || !R.ready || now < z->next_check)
            continue;
        z->next_check = now + (uint64_t)period;
        z->querying = true;
        ares_query(R.channel, z->name, 1 /* C_IN */, 6 /* T_SOA */, on_soa, z);
        rearm_timeout();
    }
}

static struct dns_zone *zone_get(const char *name)
{
    const char *zn = dns_zone_of(name);
    if (!zn)
        return NULL;
    struct list *it;
    list_for_each(it, &zones)
    {
        struct dns_zone *z = container_of(it, struct dns_zone, node);
        if (strcasecmp(z->name, zn) == 0) {
            z->count++;
            return z;
        }
    }
    struct dns_zone *z = calloc(1, sizeof(*z));
    if (!z || !(z->name = strdup(zn))) {
        free(z);
        return NULL;
    }
    z->count = 1;
    struct list *at = &zones;
    list_for_each(it, &zones)
    {
        if (strcasecmp(container_of(it, struct dns_zone, node)->name, zn) > 0) {
            at = it;
            break;
        }
    }
    list_append(at, &z->node); /* in name order */
    return z;
}

struct dns_name *dns_watch(const char *name)
{
    struct list *it;
    list_for_each(it, &names)
    {
        struct dns_name *dn = container_of(it, struct dns_name, node);
        if (strcasecmp(dn->name, name) == 0) {
            dn->refs++;
            if (dns_cache_due(dn, now_usec()))
                start_lookup(dn);
            return dn;
        }
    }
    struct dns_name *dn = calloc(1, sizeof(*dn));
    if (!dn || !(dn->name = strdup(name))) {
        free(dn);
        return NULL;
    }
    dn->refs = 1;
    dn->zone = zone_get(name);
    /* Kept in name order, as PgBouncer lists SHOW DNS_HOSTS. */
    struct list *at = &names;
    list_for_each(it, &names)
    {
        if (strcasecmp(container_of(it, struct dns_name, node)->name, name) > 0) {
            at = it;
            break;
        }
    }
    list_append(at, &dn->node); /* just before at */
    start_lookup(dn);
    return dn;
}

void dns_unwatch(struct dns_name *dn)
{
    if (dn && dn->refs > 0)
        dn->refs--; /* freed by the tick once expired: SHOW DNS_HOSTS still lists it */
}

bool dns_init(void)
{
    if (!R.timers_init) {
        uv_timer_init(G.loop, &R.timeout);
        uv_timer_init(G.loop, &R.tick);
        uv_unref((uv_handle_t *)&R.timeout);
        uv_unref((uv_handle_t *)&R.tick);
        R.timers_init = true;
    }
    uv_timer_start(&R.tick, on_tick, DNS_TICK_MS, DNS_TICK_MS);
    int r = ares_library_init(ARES_LIB_INIT_ALL);
    if (r != ARES_SUCCESS) {
        log_error("DNS: c-ares initialisation failed: %s", ares_strerror(r));
        return false;
    }
    struct ares_options opts = {0};
    int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
    opts.sock_state_cb = sock_state_cb;
    opts.timeout = DNS_TIMEOUT_MS;
    opts.tries = DNS_TRIES;
    const char *rc = G.cf->g.resolv_conf;
    if (rc && *rc) {
        opts.resolvconf_path = (char *)rc;
        mask |= ARES_OPT_RESOLVCONF;
    }
    r = ares_init_options(&R.channel, &opts, mask);
    if (r != ARES_SUCCESS) {
        log_error("DNS: resolver setup failed (resolv_conf=%s): %s", rc && *rc ? rc : "default",
                  ares_strerror(r));
        return false;
    }
    R.ready = true;
    return true;
}

void dns_shutdown(void)
{
    if (R.ready) {
        R.ready = false;
        ares_destroy(R.channel); /* pending lookups end with ARES_EDESTRUCTION */
        ares_library_cleanup();
    }
    if (R.timers_init) {
        uv_close((uv_handle_t *)&R.timeout, NULL);
        uv_close((uv_handle_t *)&R.tick, NULL);
        R.timers_init = false;
    }
    while (!list_empty(&names))
        free_name(container_of(names.next, struct dns_name, node));
    while (!list_empty(&zones)) {
        struct dns_zone *z = container_of(zones.next, struct dns_zone, node);
        list_del(&z->node);
        free(z->name);
        free(z);
    }
}
