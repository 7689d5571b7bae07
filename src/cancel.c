/*
 * cancel.c: forwarding CancelRequests to servers, each over a connection of its own to the
 * server's postmaster, and keeping the cancelled server away from other clients until its
 * cancels are done. It never decides which server a client gets (pool.c does).
 */
#include "pgusher/cancel.h"

#include "pgusher/client.h"
#include "pgusher/log.h"
#include "pgusher/pool.h"
#include "pgusher/proto.h"
#include "pgusher/runtime.h"
#include "pgusher/server.h"

#include <stdlib.h>

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
    struct pool *pool;                 /* counted in pool->n_sv_active_cancel */
    uint64_t start;
    uint8_t pkt[16];
};

static struct list all_cancels = LIST_INIT(all_cancels);

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
    cancel_detach_target(k);
    struct client *req = k->requester;
    k->requester = NULL;
    if (req)
        client_close(req, "cancel request done");
    k->pool->n_sv_active_cancel--;
    k->pool->db->sv_refs--;
    list_del(&k->node);
    free(k);
}

static void cancel_error(struct stream *st, int err)
{
    stream_close(st);
}

static void cancel_drain(struct stream *st)
{
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
    uint8_t *p = k->pkt;
    const uint32_t v[4] = {16, PROTO_CANCEL_REQUEST_CODE, s->be_pid, s->be_key};
    for (int i = 0; i < 4; i++) {
        p[4 * i] = (uint8_t)(v[i] >> 24);
        p[4 * i + 1] = (uint8_t)(v[i] >> 16);
        p[4 * i + 2] = (uint8_t)(v[i] >> 8);
        p[4 * i + 3] = (uint8_t)v[i];
    }
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
    struct list *it;
    list_for_each(it, &all_cancels)
    {
        struct canceller *k = container_of(it, struct canceller, node);
        if (k->requester == c)
            k->requester = NULL;
    }
}

void cancel_janitor(uint64_t now)
{
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
