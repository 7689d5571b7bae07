/*
 * cancel.c: cancel keys and forwarding CancelRequests: to servers, each over a connection of
 * its own to the server's postmaster, keeping the cancelled server away from other clients
 * until its cancels are done; and to the peer process ([peers]) whose id a key carries, a
 * peer's host name resolved by dns.c (watched while configured). It never decides which
 * server a client gets (pool.c does) and never resolves a name itself.
 */
#include "pgusher/cancel.h"

#include "pgusher/client.h"
#include "pgusher/dns.h"
#include "pgusher/log.h"
#include "pgusher/pool.h"
#include "pgusher/proto.h"
#include "pgusher/runtime.h"
#include "pgusher/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* One cancel request on its way to a server, over a connection of its own to the server's
 * postmaster. While any is on its way the server stays out of the pool (SV_BEING_CANCELED once
 * released): a cancel that arrived after the server went to another client would cancel
 * that client's query. The request's own client connection stays open until it is done, as
 * PgBouncer 1.22+ does (SHOW POOLS counts both sides). */
struct canceller {
    struct stream st;
    struct canceller *next_for_server; /* target->cancels */
    struct list node;                  /* all_cancels, for the janitor's deadline */
    struct server *target;             /* NULL once the server is gone */
    struct client *requester;          /* NULL once it is gone */
    struct pool *pool;                 /* counted in pool->n_sv_active_cancel; NULL for a peer */
    struct peer_link *peer;            /* forwarded to this peer process, or NULL */
    uint64_t start;
    uint8_t pkt[PROTO_CANCEL_LEN];
    int addr_idx;        /* a peer given by host name: which of its addresses */
    bool connect_failed; /* a peer's address did not take the connection */
    bool logging_in;     /* counted in peer->n_login (not yet in n_active) */
    bool sent;           /* the whole request went out */
    char peer_addr[300]; /* "peer-N@host:port", for the log */
};

static struct list all_cancels = LIST_INIT(all_cancels);

/* A [peers] entry's traffic: forwards in flight (at most its pool_size) and requests
 * waiting for one of them to finish or for the first answer about its host name. Kept by
 * peer id across reloads. */
struct peer_link {
    struct peer_link *next;
    int peer_id;
    struct dns_name *dn;   /* its host, when that is a name (cancel_peers_apply watches it) */
    int n_active, n_login; /* connected and sending / still connecting */
    struct list waiting;   /* struct pending_cancel */
    int n_waiting;
};

struct pending_cancel {
    struct list node;
    struct client *requester;
    uint8_t pkt[PROTO_CANCEL_LEN];
    uint64_t since;
};

static struct peer_link *peer_links;

static void peer_start_waiting(struct peer_link *pl);
static bool peer_retry(struct canceller *k, struct client *req);

/* The server no longer waits for this cancel. */
static void cancel_detach_target(struct canceller *k)
{
    struct server *s = k->target;
    if (!s)
        return;
    k->target = NULL;
    for (struct canceller **pp = &s->cancels; *pp; pp = &(*pp)->next_for_server) {
        if (*pp == k) {
            *pp = k->next_for_server;
            break;
        }
    }
    if (!s->cancels && s->state == SV_BEING_CANCELED)
        pool_release_server(s); /* its last cancel is done: the server may serve again */
}

static void cancel_closed(struct stream *st)
{
    struct canceller *k = st->owner;
    if (k->sent && k->target && k->pool) /* PgBouncer 1.25's lines for a delivered cancel */
        log_info("S-%p: %s/%s@%s:%d closing because: successfully sent cancel request (age=%llus)",
                 (void *)k, k->pool->db->name, k->pool->user, k->target->host, k->target->port,
                 (unsigned long long)((now_usec() - k->start) / 1000000));
    cancel_detach_target(k);
    struct client *req = k->requester;
    k->requester = NULL;
    if (k->peer)
        log_info("%s closing because: %s (age=%llus)", k->peer_addr,
                 k->sent ? "successfully sent cancel request" : "cancel request failed",
                 (unsigned long long)((now_usec() - k->start) / 1000000));
    if (req && k->peer && peer_retry(k, req))
        req = NULL; /* the next address of the peer's name carries it */
    if (req)
        client_close(req, k->sent ? "successfully sent cancel request" : "cancel request failed");
    if (k->pool) {
        k->pool->n_sv_active_cancel--;
        k->pool->db->sv_refs--;
    }
    struct peer_link *pl = k->peer;
    bool logging_in = k->logging_in; /* its connection never completed (or failed at once) */
    list_del(&k->node);
    free(k);
    if (pl) {
        if (logging_in)
            pl->n_login--;
        else
            pl->n_active--;
        peer_start_waiting(pl);
    }
}

static void cancel_error(struct stream *st, int err)
{
    stream_close(st);
}

static void cancel_drain(struct stream *st)
{
    ((struct canceller *)st->owner)->sent = true;
    /* PostgreSQL closes the connection after reading the request. */
    stream_read_start(st);
}

static void cancel_read(struct stream *st)
{
    st->rpos = st->rlen;
}

static void cancel_connect(struct stream *st, int status)
{
    struct canceller *k = st->owner;
    if (k->peer && k->logging_in) {
        k->logging_in = false;
        k->peer->n_login--;
        k->peer->n_active++;
    }
    if (k->peer && status != 0) {
        k->connect_failed = true;
        log_warning("cancel request to peer %d (%s): %s", k->peer->peer_id, k->peer_addr,
                    uv_strerror(status));
    }
    if (status != 0 || !stream_write(st, k->pkt, sizeof(k->pkt))) {
        stream_close(st);
        return;
    }
    if (st->queued == 0)
        cancel_drain(st);
}

static const struct stream_ops cancel_ops = {
    .on_read = cancel_read,
    .on_error = cancel_error,
    .on_drain = cancel_drain,
    .on_connect = cancel_connect,
    .on_closed = cancel_closed,
};

bool cancel_send(struct server *s, struct client *requester)
{
    struct canceller *k = calloc(1, sizeof(*k));
    if (!k)
        return false;
    bool is_unix = s->unix_path[0] != 0;
    int r = is_unix ? stream_init_pipe(&k->st, G.loop, &cancel_ops, k)
                    : stream_init_tcp(&k->st, G.loop, &cancel_ops, k);
    if (r != 0) {
        free(k);
        return false;
    }
    proto_pack_cancel(k->pkt, s->be_pid, s->be_key);
    k->target = s;
    k->next_for_server = s->cancels;
    s->cancels = k;
    k->requester = requester;
    k->pool = s->pool;
    k->pool->n_sv_active_cancel++;
    k->pool->db->sv_refs++;
    k->start = now_usec();
    list_append(&all_cancels, &k->node);
    if (is_unix)
        r = stream_connect_unix(&k->st, s->unix_path);
    else
        r = stream_connect_tcp(&k->st, (const struct sockaddr *)&s->addr);
    if (r != 0)
        stream_close(&k->st);
    return true;
}

void cancel_forget_server(struct server *s)
{
    while (s->cancels) {
        struct canceller *k = s->cancels;
        s->cancels = k->next_for_server;
        k->target = NULL;
    }
}

void cancel_requester_gone(struct client *c)
{
    struct list *it, *tmp;
    list_for_each(it, &all_cancels)
    {
        struct canceller *k = container_of(it, struct canceller, node);
        if (k->requester == c)
            k->requester = NULL;
    }
    for (struct peer_link *pl = peer_links; pl; pl = pl->next) {
        list_for_each_safe(it, tmp, &pl->waiting)
        {
            struct pending_cancel *pc = container_of(it, struct pending_cancel, node);
            if (pc->requester == c) {
                list_del(&pc->node);
                pl->n_waiting--;
                free(pc);
            }
        }
    }
}

static void peer_janitor(uint64_t now);

void cancel_janitor(uint64_t now)
{
    peer_janitor(now);
    usec_t limit = G.cf->g.cancel_wait_timeout;
    struct list *it;
    list_for_each(it, &all_cancels)
    {
        struct canceller *k = container_of(it, struct canceller, node);
        if (timeout_expired(k->start, now, limit) && !k->st.closing) {
            if (k->target)
                server_log(k->target, LOG_LVL_WARNING,
                           "cancel request timed out "
                           "(cancel_wait_timeout)");
            stream_close(&k->st); /* the server is released when the close completes */
        }
    }
}

/* ---------------------------------------------------------------- keys and peers
 * With peer_id set, a cancel key carries it as PgBouncer 1.21+ does, so that PgBouncer and
 * pgusher processes can be peered: bytes 1-2 of the 8-byte key hold the peer id (14 bits,
 * little-endian), the low 2 bits of byte 7 how many more times the request may be
 * forwarded (3 in a new key, one less at each hop). Keys are matched without those 2 bits. */

#define KEY_TTL_MASK 3u

void cancel_key_encode(uint32_t *pid, uint32_t *key, int peer_id)
{
    *pid = (*pid & 0xff0000ffu) | ((uint32_t)(peer_id & 0xff) << 16) |
           ((uint32_t)((peer_id >> 8) & 0x3f) << 8);
    *key |= KEY_TTL_MASK;
}

int cancel_key_decode(uint32_t pid)
{
    return (int)(((pid >> 16) & 0xffu) | (((pid >> 8) & 0x3fu) << 8));
}

void cancel_new_key(uint32_t *pid, uint32_t *key, uint32_t (*rnd)(void))
{
    *pid = rnd();
    *key = rnd();
    if (G.cf->g.peer_id > 0)
        cancel_key_encode(pid, key, G.cf->g.peer_id);
}

int cancel_key_peer(uint32_t pid)
{
    return G.cf->g.peer_id > 0 ? cancel_key_decode(pid) : 0;
}

uint32_t cancel_key_local(uint32_t key)
{
    return G.cf->g.peer_id > 0 ? key | KEY_TTL_MASK : key;
}

static struct peer_link *peer_link_get(int peer_id)
{
    for (struct peer_link *pl = peer_links; pl; pl = pl->next)
        if (pl->peer_id == peer_id)
            return pl;
    struct peer_link *pl = calloc(1, sizeof(*pl));
    if (!pl)
        return NULL;
    pl->peer_id = peer_id;
    list_init(&pl->waiting);
    pl->next = peer_links;
    peer_links = pl;
    return pl;
}

static const struct cf_peer *peer_config(int peer_id)
{
    for (int i = 0; i < G.cf->npeers; i++)
        if (G.cf->peers[i].peer_id == peer_id)
            return &G.cf->peers[i];
    return NULL;
}

static int peer_pool_size(const struct cf_peer *cp)
{
    return cp->pool_size != CF_UNSET && cp->pool_size > 0 ? cp->pool_size
                                                          : G.cf->g.default_pool_size;
}

/* A host that dns.c resolves: neither a socket directory nor an address literal. */
static bool peer_host_is_name(const char *host)
{
    return host[0] != '/' && !dns_is_literal(host);
}

/* Open the connection that carries pkt to the peer (its addr_idx-th address when its host is
 * a name); the requester is closed when done. start: when the request began (timeouts). */
static void peer_connect(struct peer_link *pl, const struct cf_peer *cp, struct client *req,
                         const uint8_t pkt[16], int addr_idx, uint64_t start)
{
    struct canceller *k = calloc(1, sizeof(*k));
    bool is_unix = cp->host[0] == '/';
    if (!k || (is_unix ? stream_init_pipe(&k->st, G.loop, &cancel_ops, k)
                       : stream_init_tcp(&k->st, G.loop, &cancel_ops, k)) != 0) {
        free(k);
        if (req)
            client_close(req, "cancel request to peer failed: out of resources");
        return;
    }
    /* A name's address as PgBouncer names a peer connection: where it goes. */
    const char *host = cp->host;
    if (!is_unix && pl->dn && addr_idx < pl->dn->naddrs)
        host = pl->dn->addrs[addr_idx];
    memcpy(k->pkt, pkt, sizeof(k->pkt));
    snprintf(k->peer_addr, sizeof(k->peer_addr), "peer-%d@%s:%d", pl->peer_id, host, cp->port);
    k->peer = pl;
    k->requester = req;
    k->start = start;
    k->addr_idx = addr_idx;
    list_append(&all_cancels, &k->node);
    pl->n_login++;
    k->logging_in = true;
    int r;
    if (is_unix) {
        char path[300];
        snprintf(path, sizeof(path), "%s/.s.PGSQL.%d", cp->host, cp->port);
        r = stream_connect_unix(&k->st, path);
    } else {
        struct sockaddr_storage ss;
        r = uv_ip4_addr(host, cp->port, (struct sockaddr_in *)&ss);
        if (r != 0)
            r = uv_ip6_addr(host, cp->port, (struct sockaddr_in6 *)&ss);
        if (r == 0)
            r = stream_connect_tcp(&k->st, (const struct sockaddr *)&ss);
    }
    if (r != 0) {
        log_warning("cancel request to peer %d (%s:%d): %s", pl->peer_id, host, cp->port,
                    uv_strerror(r));
        stream_close(&k->st);
    }
}

/* A forward whose connection failed tries the peer's name's next address, within
 * cancel_wait_timeout of the request's start. True when it went on its way. */
static bool peer_retry(struct canceller *k, struct client *req)
{
    struct peer_link *pl = k->peer;
    const struct cf_peer *cp = peer_config(pl->peer_id);
    if (!k->connect_failed || !cp || !pl->dn || !peer_host_is_name(cp->host) ||
        k->addr_idx + 1 >= pl->dn->naddrs ||
        timeout_expired(k->start, now_usec(), G.cf->g.cancel_wait_timeout))
        return false;
    peer_connect(pl, cp, req, k->pkt, k->addr_idx + 1, k->start);
    return true;
}

/* A waiting request the peer's name gives no address for: dropped, with the reason. */
static void peer_drop_unresolved(struct peer_link *pl, const struct cf_peer *cp,
                                 struct pending_cancel *pc)
{
    log_warning("cancel request to peer %d (%s:%d): DNS lookup failed: %s: dropped", pl->peer_id,
                cp->host, cp->port, pl->dn ? pl->dn->error : "name not watched");
    if (pc->requester)
        client_close(pc->requester, "cancel request to peer failed: DNS lookup failed");
}

/* Forwards the peer has room for now, oldest waiting first. */
static void peer_start_waiting(struct peer_link *pl)
{
    const struct cf_peer *cp = peer_config(pl->peer_id);
    while (!list_empty(&pl->waiting)) {
        struct pending_cancel *pc = container_of(pl->waiting.next, struct pending_cancel, node);
        bool named = cp && peer_host_is_name(cp->host);
        if (named && pl->dn && dns_name_waiting(pl->dn))
            return; /* its first answer comes (the listener) or the janitor gives up */
        if (cp && pl->n_active + pl->n_login >= peer_pool_size(cp))
            return;
        list_del(&pc->node);
        pl->n_waiting--;
        if (named && (!pl->dn || pl->dn->naddrs == 0))
            peer_drop_unresolved(pl, cp, pc);
        else if (cp)
            peer_connect(pl, cp, pc->requester, pc->pkt, 0, pc->since);
        else if (pc->requester) /* the peer left the config while the request waited */
            client_close(pc->requester, "cancel request for unknown peer");
        free(pc);
    }
}

bool cancel_to_peer(struct client *requester, int peer_id, uint32_t pid, uint32_t key)
{
    const struct cf_peer *cp = peer_config(peer_id);
    if (!cp) {
        log_warning("cancel request for unknown peer %d: dropped", peer_id);
        return false;
    }
    if ((key & KEY_TTL_MASK) == 0) {
        log_warning("cancel request for peer %d forwarded too many times: dropped", peer_id);
        return false;
    }
    struct peer_link *pl = peer_link_get(peer_id);
    struct pending_cancel *pc = pl ? calloc(1, sizeof(*pc)) : NULL;
    if (!pc)
        return false;
    proto_pack_cancel(pc->pkt, pid, key - 1);
    pc->requester = requester;
    pc->since = now_usec();
    list_append(&pl->waiting, &pc->node);
    pl->n_waiting++;
    peer_start_waiting(pl);
    return true;
}

void cancel_peer_counts(int peer_id, int *cl_active, int *cl_waiting, int *sv_active, int *sv_login)
{
    *cl_active = *cl_waiting = *sv_active = *sv_login = 0;
    for (struct peer_link *pl = peer_links; pl; pl = pl->next) {
        if (pl->peer_id != peer_id)
            continue;
        *cl_waiting = pl->n_waiting;
        *sv_active = pl->n_active;
        *sv_login = pl->n_login;
        *cl_active = pl->n_active + pl->n_login;
    }
}

/* Requests that waited cancel_wait_timeout for a slot give up. */
static void peer_janitor(uint64_t now)
{
    usec_t limit = G.cf->g.cancel_wait_timeout;
    for (struct peer_link *pl = peer_links; pl; pl = pl->next) {
        struct list *it, *tmp;
        list_for_each_safe(it, tmp, &pl->waiting)
        {
            struct pending_cancel *pc = container_of(it, struct pending_cancel, node);
            if (!timeout_expired(pc->since, now, limit))
                continue;
            list_del(&pc->node);
            pl->n_waiting--;
            struct client *req = pc->requester;
            free(pc);
            if (req)
                client_close(req, "cancel request timed out (cancel_wait_timeout)");
        }
    }
}

/* dns.c's listener: a peer's name has an answer; requests waiting for it go on (or drop). */
static void peer_dns_answered(struct dns_name *dn, bool changed)
{
    for (struct peer_link *pl = peer_links; pl; pl = pl->next)
        if (pl->dn == dn)
            peer_start_waiting(pl);
}

void cancel_peers_apply(void)
{
    static bool listening;
    if (!listening)
        listening = dns_add_listener(peer_dns_answered);
    for (int i = 0; i < G.cf->npeers; i++)
        if (G.cf->peers[i].peer_id != G.cf->g.peer_id && peer_host_is_name(G.cf->peers[i].host))
            peer_link_get(G.cf->peers[i].peer_id);
    for (struct peer_link *pl = peer_links; pl; pl = pl->next) {
        const struct cf_peer *cp = peer_config(pl->peer_id);
        /* This process's own entry is ignored (see man pgusher.5): nothing to resolve. */
        const char *want =
            cp && cp->peer_id != G.cf->g.peer_id && peer_host_is_name(cp->host) ? cp->host : NULL;
        if (pl->dn && (!want || strcasecmp(pl->dn->name, want) != 0)) {
            dns_unwatch(pl->dn);
            pl->dn = NULL;
        }
        if (want && !pl->dn)
            pl->dn = dns_watch(want); /* an answer given at once finds pl->dn unset: below */
    }
    for (struct peer_link *pl = peer_links; pl; pl = pl->next)
        peer_start_waiting(pl);
}
