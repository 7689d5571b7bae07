/*
 * prepared.c: protocol-level named prepared statements across pooled servers: the pooler-wide
 * statement table, each client's names, each server's LRU and its FIFO of owed responses.
 * It never touches sockets or libuv: the relay hands it bytes and sends what it produces.
 *
 * Design. A named Parse is looked up by its text (query + parameter types) in one table; an
 * entry is shared by every client that prepares the same text and is named PGUSHER_<n> on
 * the servers. The client's name maps to the entry. On the client's current server the
 * statement is prepared lazily: a Parse is injected before the first Bind/Describe that needs
 * it (its ParseComplete swallowed), and a Parse the server already has is answered by the
 * pooler. Every message that gets a response pushes one slot on the server's FIFO; a slot
 * says what completes it, whether the response is the pooler's own (swallowed), or whether
 * the pooler answers it itself (synthesized when the slot reaches the head). An
 * ErrorResponse makes PostgreSQL skip everything up to Sync: those slots are dropped, and
 * what they recorded (a statement prepared on the server, a client name) is undone.
 */
#include "pgusher/prepared.h"

#include "pgusher/config.h"
#include "pgusher/list.h"
#include "pgusher/objects-t.h"
#include "pgusher/pktbuf.h"
#include "pgusher/pool.h"
#include "pgusher/runtime.h"
#include "pgusher/stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- hashing */

static uint64_t ps_hash(const uint8_t *p, size_t n)
{
    /* FNV-1a over 8-byte words, then a final mix: fast on long query texts. */
    uint64_t h = 0xcbf29ce484222325ull ^ n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    while (n--)
        h = (h ^ *p++) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

/* A chained hash table of nodes embedding struct ps_hnode; grows at load 1. */
struct ps_hnode {
    struct ps_hnode *next;
    uint64_t hash;
};

struct ps_htab {
    struct ps_hnode **b;
    uint32_t nb, n;
};

static bool htab_grow(struct ps_htab *t)
{
    uint32_t nb = t->nb ? t->nb * 2 : 16;
    struct ps_hnode **b = calloc(nb, sizeof(*b));
    if (!b)
        return false;
    for (uint32_t i = 0; i < t->nb; i++) {
        struct ps_hnode *e = t->b[i];
        while (e) {
            struct ps_hnode *next = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = next;
        }
    }
    free(t->b);
    t->b = b;
    t->nb = nb;
    return true;
}

static bool htab_add(struct ps_htab *t, struct ps_hnode *e)
{
    if (t->n >= t->nb && !htab_grow(t) && t->nb == 0)
        return false;
    struct ps_hnode **head = &t->b[e->hash & (t->nb - 1)];
    e->next = *head;
    *head = e;
    t->n++;
    return true;
}

static void htab_del(struct ps_htab *t, struct ps_hnode *e)
{
    if (!t->nb)
        return;
    for (struct ps_hnode **pp = &t->b[e->hash & (t->nb - 1)]; *pp; pp = &(*pp)->next) {
        if (*pp == e) {
            *pp = e->next;
            t->n--;
            return;
        }
    }
}

static struct ps_hnode *htab_first(const struct ps_htab *t, uint64_t hash)
{
    return t->nb ? t->b[hash & (t->nb - 1)] : NULL;
}

/* ---------------------------------------------------------------- pooler-wide statements */

struct ps_stmt {
    struct ps_hnode h; /* stmt_table, keyed on the text */
    uint32_t refs;     /* client names, server entries and FIFO slots pointing here */
    uint32_t blen;
    uint64_t id;
    char name[32];  /* PGUSHER_<id> */
    uint8_t body[]; /* the Parse body after the name: query, parameter count and types */
};

static struct ps_htab stmt_table;
static struct prepared_mem mem; /* the byte and entry counts SHOW MEM reports */
static uint64_t stmt_next_id;

static struct ps_stmt *stmt_get(const uint8_t *body, uint32_t blen)
{
    uint64_t hash = ps_hash(body, blen);
    for (struct ps_hnode *e = htab_first(&stmt_table, hash); e; e = e->next) {
        struct ps_stmt *st = (struct ps_stmt *)e;
        if (e->hash == hash && st->blen == blen && memcmp(st->body, body, blen) == 0) {
            st->refs++;
            return st;
        }
    }
    struct ps_stmt *st = malloc(sizeof(*st) + blen);
    if (!st)
        return NULL;
    st->h.hash = hash;
    st->refs = 1;
    st->blen = blen;
    st->id = ++stmt_next_id;
    snprintf(st->name, sizeof(st->name), "PGUSHER_%llu", (unsigned long long)st->id);
    memcpy(st->body, body, blen);
    if (!htab_add(&stmt_table, &st->h)) {
        free(st);
        return NULL;
    }
    mem.stmt_bytes += sizeof(*st) + blen;
    return st;
}

static void stmt_unref(struct ps_stmt *st)
{
    if (!st || --st->refs > 0)
        return;
    htab_del(&stmt_table, &st->h);
    mem.stmt_bytes -= sizeof(*st) + st->blen;
    free(st);
}

int prepared_stmt_count(void)
{
    return (int)stmt_table.n;
}

/* ---------------------------------------------------------------- per-client names */

struct ps_name {
    struct ps_hnode h;
    struct ps_stmt *stmt;
    uint32_t nlen;
    char name[];
};

struct ps_client {
    struct ps_htab names;
    struct pktbuf big;  /* a named Parse larger than the receive buffer, being collected */
    uint32_t big_total; /* its length with the type byte; 0 when not collecting */
};

static struct ps_client *client_ps(struct client *c)
{
    if (!c->ps)
        c->ps = calloc(1, sizeof(*c->ps));
    return c->ps;
}

static struct ps_name *name_find(struct ps_client *pc, const char *name, uint32_t nlen,
                                 uint64_t hash)
{
    if (!pc)
        return NULL;
    for (struct ps_hnode *e = htab_first(&pc->names, hash); e; e = e->next) {
        struct ps_name *n = (struct ps_name *)e;
        if (e->hash == hash && n->nlen == nlen && memcmp(n->name, name, nlen) == 0)
            return n;
    }
    return NULL;
}

static void name_free(struct ps_client *pc, struct ps_name *n)
{
    htab_del(&pc->names, &n->h);
    mem.names--;
    mem.name_bytes -= sizeof(*n) + n->nlen + 1;
    stmt_unref(n->stmt);
    free(n);
}

/* Undo a client name that a failed or skipped Parse recorded. */
static void name_undo(struct client *c, uint64_t hash, const struct ps_stmt *st)
{
    if (!c || !c->ps)
        return;
    for (struct ps_hnode *e = htab_first(&c->ps->names, hash); e; e = e->next) {
        struct ps_name *n = (struct ps_name *)e;
        if (e->hash == hash && n->stmt == st) {
            name_free(c->ps, n);
            return;
        }
    }
}

static void names_clear(struct ps_client *pc)
{
    for (uint32_t i = 0; i < pc->names.nb; i++) {
        while (pc->names.b[i]) {
            struct ps_name *n = (struct ps_name *)pc->names.b[i];
            name_free(pc, n);
        }
    }
}

void prepared_client_forget(struct client *c)
{
    if (c->ps)
        names_clear(c->ps);
}

void prepared_client_free(struct client *c)
{
    if (!c->ps)
        return;
    names_clear(c->ps);
    free(c->ps->names.b);
    pktbuf_free(&c->ps->big);
    free(c->ps);
    c->ps = NULL;
}

int prepared_client_count(const struct client *c)
{
    return c->ps ? (int)c->ps->names.n : 0;
}

bool prepared_collect_start(struct client *c, uint32_t total)
{
    struct ps_client *pc = client_ps(c);
    if (!pc)
        return false;
    pktbuf_reset(&pc->big);
    pktbuf_put_bytes(&pc->big, NULL, 0);
    pc->big_total = total;
    return true;
}

uint32_t prepared_collect_need(const struct client *c)
{
    return c->ps && c->ps->big_total ? c->ps->big_total - (uint32_t)c->ps->big.len : 0;
}

const uint8_t *prepared_collect(struct client *c, const uint8_t *p, uint32_t n, uint32_t *len)
{
    struct ps_client *pc = c->ps;
    uint32_t need = prepared_collect_need(c);
    if (n > need)
        n = need;
    pktbuf_put_bytes(&pc->big, p, n);
    if (pc->big.failed) {
        pc->big_total = 0; /* nothing more needed: the caller sees NULL and gives up */
        return NULL;
    }
    if (pc->big.len < pc->big_total)
        return NULL;
    *len = pc->big_total;
    return pc->big.data;
}

void prepared_collect_done(struct client *c)
{
    if (c->ps) {
        pktbuf_free(&c->ps->big);
        c->ps->big_total = 0;
    }
}

/* ---------------------------------------------------------------- per-server state */

struct ps_entry {
    struct ps_hnode h; /* hash = statement id */
    struct ps_stmt *stmt;
    struct list lru; /* ps_server.lru, most recently used first */
};

/* What completes a request (the response that pops its slot). */
enum ps_expect {
    EX_PARSE,    /* ParseComplete */
    EX_BIND,     /* BindComplete */
    EX_CLOSE,    /* CloseComplete */
    EX_DESCRIBE, /* RowDescription or NoData (after ParameterDescription) */
    EX_EXECUTE,  /* CommandComplete, EmptyQueryResponse or PortalSuspended */
    EX_SYNC,     /* ReadyForQuery */
    EX_QUERY,    /* ReadyForQuery (Query, FunctionCall: errors inside do not skip) */
};

enum ps_action {
    ACT_PASS,    /* the server answers, the client gets it */
    ACT_SWALLOW, /* the server answers the pooler's own request: dropped */
    ACT_SYNTH,   /* the server is not asked: the pooler answers when the slot is due */
};

enum {
    SL_UNDO_SERVER = 1, /* this request added stmt to the server's LRU */
    SL_UNDO_CLIENT = 2, /* this Parse added the client name (name_hash) for stmt */
    SL_EVICT = 4,       /* the Close of an evicted stmt: if skipped, it is still there */
};

struct ps_slot {
    uint8_t expect, action, flags;
    uint64_t name_hash;
    struct ps_stmt *stmt; /* referenced, or NULL */
};

struct ps_server {
    struct ps_htab stmts; /* struct ps_entry */
    struct list lru;
    struct ps_slot *q; /* ring of qcap slots (a power of two), qlen from qhead */
    uint32_t qcap, qhead, qlen;
};

static struct ps_server *server_ps(struct server *s)
{
    if (!s->ps) {
        s->ps = calloc(1, sizeof(*s->ps));
        if (s->ps)
            list_init(&s->ps->lru);
    }
    return s->ps;
}

static struct ps_entry *entry_find(const struct ps_server *ps, const struct ps_stmt *st)
{
    for (struct ps_hnode *e = htab_first(&ps->stmts, st->id); e; e = e->next)
        if (((struct ps_entry *)e)->stmt == st)
            return (struct ps_entry *)e;
    return NULL;
}

static void entry_free(struct ps_server *ps, struct ps_entry *e)
{
    htab_del(&ps->stmts, &e->h);
    list_del(&e->lru);
    mem.entries--;
    stmt_unref(e->stmt);
    free(e);
}

static bool entry_add(struct ps_server *ps, struct ps_stmt *st)
{
    struct ps_entry *e = malloc(sizeof(*e));
    if (!e)
        return false;
    e->h.hash = st->id;
    e->stmt = st;
    if (!htab_add(&ps->stmts, &e->h)) {
        free(e);
        return false;
    }
    st->refs++;
    mem.entries++;
    list_prepend(&ps->lru, &e->lru);
    return true;
}

void prepared_server_forget(struct server *s)
{
    struct ps_server *ps = s->ps;
    if (!ps)
        return;
    while (!list_empty(&ps->lru))
        entry_free(ps, container_of(ps->lru.next, struct ps_entry, lru));
}

int prepared_server_count(const struct server *s)
{
    return s->ps ? (int)s->ps->stmts.n : 0;
}

static bool slot_push(struct server *s, uint8_t expect, uint8_t action, uint8_t flags,
                      struct ps_stmt *st, uint64_t name_hash)
{
    struct ps_server *ps = server_ps(s);
    if (!ps)
        return false;
    if (ps->qlen == ps->qcap) {
        uint32_t cap = ps->qcap ? ps->qcap * 2 : 64;
        struct ps_slot *q = malloc(cap * sizeof(*q));
        if (!q)
            return false;
        for (uint32_t i = 0; i < ps->qlen; i++)
            q[i] = ps->q[(ps->qhead + i) & (ps->qcap - 1)];
        free(ps->q);
        ps->q = q;
        ps->qcap = cap;
        ps->qhead = 0;
    }
    struct ps_slot *sl = &ps->q[(ps->qhead + ps->qlen) & (ps->qcap - 1)];
    sl->expect = expect;
    sl->action = action;
    sl->flags = flags;
    sl->name_hash = name_hash;
    sl->stmt = st;
    if (st)
        st->refs++;
    ps->qlen++;
    return true;
}

static struct ps_slot *slot_head(const struct server *s)
{
    const struct ps_server *ps = s->ps;
    return ps && ps->qlen ? &ps->q[ps->qhead] : NULL;
}

/* Pop the head slot; failed: its request did not take effect (an error, or skipped). */
static void slot_pop(struct server *s, bool failed)
{
    struct ps_server *ps = s->ps;
    struct ps_slot *sl = &ps->q[ps->qhead];
    if (failed && sl->stmt) {
        if (sl->flags & SL_UNDO_SERVER) {
            struct ps_entry *e = entry_find(ps, sl->stmt);
            if (e)
                entry_free(ps, e);
        }
        if (sl->flags & SL_UNDO_CLIENT)
            name_undo(s->link, sl->name_hash, sl->stmt);
        if (sl->flags & SL_EVICT)
            s->close_needed = true; /* what it holds is not known any more: replace it */
    }
    stmt_unref(sl->stmt);
    ps->qhead = (ps->qhead + 1) & (ps->qcap - 1);
    ps->qlen--;
}

bool prepared_server_quiet(const struct server *s)
{
    return !s->ps || s->ps->qlen == 0;
}

void prepared_server_unlinked(struct server *s)
{
    while (s->ps && s->ps->qlen)
        slot_pop(s, true);
}

void prepared_server_free(struct server *s)
{
    struct ps_server *ps = s->ps;
    if (!ps)
        return;
    s->link = NULL;
    prepared_server_unlinked(s);
    prepared_server_forget(s);
    free(ps->stmts.b);
    free(ps->q);
    free(ps);
    s->ps = NULL;
}

/* ---------------------------------------------------------------- client messages */

static const char *ps_errmsg = "";

const char *prepared_error(void)
{
    return ps_errmsg;
}

bool prepared_enabled(const struct pool *p)
{
    return G.cf->g.max_prepared_statements > 0 && pool_mode(p) != POOL_SESSION;
}

/* Length of the NUL-terminated string at p within n bytes, or -1. */
static int32_t str_len(const uint8_t *p, uint32_t n)
{
    const uint8_t *z = memchr(p, 0, n);
    return z ? (int32_t)(z - p) : -1;
}

static void put_header(struct pktbuf *out, uint8_t type, uint32_t len)
{
    pktbuf_put_byte(out, type);
    pktbuf_put_int32(out, len);
}

/* Make st usable on s: touch it in the LRU, or prepare it (evicting the least recently used
 * statements past max_prepared_statements). False: out of memory. */
static bool ensure_on_server(struct server *s, struct ps_stmt *st, struct pktbuf *out, bool inject,
                             bool *had)
{
    struct ps_server *ps = server_ps(s);
    if (!ps)
        return false;
    struct ps_entry *e = entry_find(ps, st);
    *had = e != NULL;
    if (e) {
        list_del(&e->lru);
        list_prepend(&ps->lru, &e->lru);
        return true;
    }
    int max = G.cf->g.max_prepared_statements;
    while (ps->stmts.n > 0 && (int)ps->stmts.n >= max) {
        struct ps_entry *old = container_of(ps->lru.prev, struct ps_entry, lru);
        size_t nl = strlen(old->stmt->name);
        put_header(out, 'C', (uint32_t)(4 + 1 + nl + 1));
        pktbuf_put_byte(out, 'S');
        pktbuf_put_string(out, old->stmt->name);
        if (!slot_push(s, EX_CLOSE, ACT_SWALLOW, SL_EVICT, old->stmt, 0))
            return false;
        entry_free(ps, old);
    }
    if (!entry_add(ps, st))
        return false;
    if (inject) {
        size_t nl = strlen(st->name);
        put_header(out, 'P', (uint32_t)(4 + nl + 1 + st->blen));
        pktbuf_put_string(out, st->name);
        pktbuf_put_bytes(out, st->body, st->blen);
        s->pool->stats.server_parse_count++;
        if (!slot_push(s, EX_PARSE, ACT_SWALLOW, SL_UNDO_SERVER, st, 0))
            return false;
    }
    return true;
}

static enum ps_verdict fail(const char *msg)
{
    ps_errmsg = msg;
    return PS_FAIL;
}

static enum ps_verdict client_parse(struct client *c, struct server *s, const uint8_t *m,
                                    uint32_t avail, struct pktbuf *out, uint32_t *consumed)
{
    uint32_t len = pkt_get32(m + 1), total = len + 1;
    if (avail >= 6 && m[5] == 0) {
        /* The unnamed statement: the server's own business (not counted, as PgBouncer). */
        return slot_push(s, EX_PARSE, ACT_PASS, 0, NULL, 0) ? PS_PASS : fail("out of memory");
    }
    if (avail < total)
        return total > stream_bufsize() - 1 ? PS_COLLECT : PS_MORE;
    c->pool->stats.client_parse_count++;
    const uint8_t *body = m + 5;
    int32_t nl = str_len(body, len - 4);
    if (nl < 0)
        return fail("invalid Parse message");
    const uint8_t *rest = body + nl + 1;
    uint32_t rlen = len - 4 - (uint32_t)nl - 1;
    int32_t ql = str_len(rest, rlen);
    if (ql < 0 || rlen < (uint32_t)ql + 3 ||
        rlen != (uint32_t)ql + 3 + 4u * pkt_get16(rest + ql + 1))
        return fail("invalid Parse message");
    uint64_t nh = ps_hash(body, (size_t)nl);
    struct ps_client *pc = client_ps(c);
    if (!pc)
        return fail("out of memory");
    if (name_find(pc, (const char *)body, (uint32_t)nl, nh))
        return fail("prepared statement name is already in use");
    struct ps_stmt *st = stmt_get(rest, rlen);
    if (!st)
        return fail("out of memory");
    struct ps_name *n = malloc(sizeof(*n) + (size_t)nl + 1);
    if (!n) {
        stmt_unref(st);
        return fail("out of memory");
    }
    n->h.hash = nh;
    n->stmt = st; /* the reference stmt_get took */
    n->nlen = (uint32_t)nl;
    memcpy(n->name, body, (size_t)nl + 1);
    if (!htab_add(&pc->names, &n->h)) {
        stmt_unref(st);
        free(n);
        return fail("out of memory");
    }
    mem.names++;
    mem.name_bytes += sizeof(*n) + (size_t)nl + 1;
    bool had;
    if (!ensure_on_server(s, st, out, false, &had))
        return fail("out of memory");
    if (had) {
        if (!slot_push(s, EX_PARSE, ACT_SYNTH, SL_UNDO_CLIENT, st, nh))
            return fail("out of memory");
    } else {
        size_t sl = strlen(st->name);
        put_header(out, 'P', (uint32_t)(4 + sl + 1 + rlen));
        pktbuf_put_string(out, st->name);
        pktbuf_put_bytes(out, rest, rlen);
        c->pool->stats.server_parse_count++;
        if (!slot_push(s, EX_PARSE, ACT_PASS, SL_UNDO_CLIENT | SL_UNDO_SERVER, st, nh))
            return fail("out of memory");
    }
    *consumed = total;
    return out->failed ? fail("out of memory") : PS_REWRITE;
}

/* The statement a client name stands for; NULL: unknown (passed on unchanged, so that the
 * server answers as PostgreSQL does). */
static struct ps_stmt *lookup(struct client *c, const uint8_t *name, int32_t nl)
{
    struct ps_name *n =
        name_find(c->ps, (const char *)name, (uint32_t)nl, ps_hash(name, (size_t)nl));
    return n ? n->stmt : NULL;
}

static enum ps_verdict client_bind(struct client *c, struct server *s, const uint8_t *m,
                                   uint32_t avail, struct pktbuf *out, uint32_t *consumed)
{
    uint32_t len = pkt_get32(m + 1), total = len + 1;
    uint32_t have = avail < total ? avail : total;
    int32_t pl = have > 5 ? str_len(m + 5, have - 5) : -1;
    int32_t nl = pl >= 0 ? str_len(m + 5 + pl + 1, have - 5 - (uint32_t)pl - 1) : -1;
    if (nl < 0) {
        if (have == total)
            return slot_push(s, EX_BIND, ACT_PASS, 0, NULL, 0) ? PS_PASS : fail("out of memory");
        /* Names longer than the receive buffer: the message is collected whole. */
        return avail >= stream_bufsize() - 1 ? PS_COLLECT : PS_MORE;
    }
    const uint8_t *name = m + 5 + pl + 1;
    struct ps_stmt *st = nl > 0 ? lookup(c, name, nl) : NULL;
    if (!st)
        return slot_push(s, EX_BIND, ACT_PASS, 0, NULL, 0) ? PS_PASS : fail("out of memory");
    c->pool->stats.bind_count++; /* of tracked statements only, as PgBouncer counts */
    bool had;
    if (!ensure_on_server(s, st, out, true, &had))
        return fail("out of memory");
    size_t sl = strlen(st->name);
    put_header(out, 'B', len - (uint32_t)nl + (uint32_t)sl);
    pktbuf_put_bytes(out, m + 5, (size_t)pl + 1);
    pktbuf_put_string(out, st->name);
    if (!slot_push(s, EX_BIND, ACT_PASS, 0, NULL, 0))
        return fail("out of memory");
    *consumed = 5 + (uint32_t)pl + 1 + (uint32_t)nl + 1;
    return out->failed ? fail("out of memory") : PS_REWRITE;
}

/* Describe or Close: 'S' or 'P' and a name, always small. */
static enum ps_verdict client_describe_close(struct client *c, struct server *s, const uint8_t *m,
                                             uint32_t avail, struct pktbuf *out, uint32_t *consumed)
{
    uint8_t type = m[0];
    uint8_t expect = type == 'D' ? EX_DESCRIBE : EX_CLOSE;
    uint32_t len = pkt_get32(m + 1), total = len + 1;
    if (avail < total)
        return total > stream_bufsize() - 1 ? PS_COLLECT : PS_MORE;
    int32_t nl = len > 5 ? str_len(m + 6, len - 5) : -1;
    struct ps_stmt *st = nl > 0 && m[5] == 'S' ? lookup(c, m + 6, nl) : NULL;
    if (!st)
        return slot_push(s, expect, ACT_PASS, 0, NULL, 0) ? PS_PASS : fail("out of memory");
    if (type == 'C') {
        /* The client forgets its name; the server keeps the statement for others. */
        struct ps_name *n =
            name_find(c->ps, (const char *)m + 6, (uint32_t)nl, ps_hash(m + 6, (size_t)nl));
        name_free(c->ps, n);
        *consumed = total;
        return slot_push(s, EX_CLOSE, ACT_SYNTH, 0, NULL, 0) ? PS_REWRITE : fail("out of memory");
    }
    bool had;
    if (!ensure_on_server(s, st, out, true, &had))
        return fail("out of memory");
    size_t sl = strlen(st->name);
    put_header(out, 'D', (uint32_t)(4 + 1 + sl + 1));
    pktbuf_put_byte(out, 'S');
    pktbuf_put_string(out, st->name);
    if (!slot_push(s, EX_DESCRIBE, ACT_PASS, 0, NULL, 0))
        return fail("out of memory");
    *consumed = total;
    return out->failed ? fail("out of memory") : PS_REWRITE;
}

enum ps_verdict prepared_client_msg(struct client *c, struct server *s, const uint8_t *msg,
                                    uint32_t avail, struct pktbuf *out, uint32_t *consumed)
{
    *consumed = 0;
    if (avail < 5)
        return PS_MORE;
    if (pkt_get32(msg + 1) <= 4) {
        /* No body to look at: the server says what is wrong with it. */
        return prepared_client_note(s, msg[0]) ? PS_PASS : fail("out of memory");
    }
    if (avail < 6)
        return PS_MORE;
    switch (msg[0]) {
    case 'P':
        return client_parse(c, s, msg, avail, out, consumed);
    case 'B':
        return client_bind(c, s, msg, avail, out, consumed);
    case 'D':
    case 'C':
        return client_describe_close(c, s, msg, avail, out, consumed);
    default:
        return prepared_client_note(s, msg[0]) ? PS_PASS : fail("out of memory");
    }
}

bool prepared_client_note(struct server *s, uint8_t type)
{
    static const int8_t expect_of[256] = {
        ['P'] = EX_PARSE + 1,   ['B'] = EX_BIND + 1, ['C'] = EX_CLOSE + 1, ['D'] = EX_DESCRIBE + 1,
        ['E'] = EX_EXECUTE + 1, ['S'] = EX_SYNC + 1, ['Q'] = EX_QUERY + 1, ['F'] = EX_QUERY + 1,
    };
    return !expect_of[type] || slot_push(s, (uint8_t)(expect_of[type] - 1), ACT_PASS, 0, NULL, 0);
}

/* ---------------------------------------------------------------- server messages */

bool prepared_wipes_all(const uint8_t *body, uint32_t blen)
{
    return (blen == sizeof("DISCARD ALL") && memcmp(body, "DISCARD ALL", blen) == 0) ||
           (blen == sizeof("DEALLOCATE ALL") && memcmp(body, "DEALLOCATE ALL", blen) == 0);
}

/* Does a response of this type complete a request of that kind? */
static bool completes(uint8_t expect, uint8_t type)
{
    switch (expect) {
    case EX_PARSE:
        return type == '1';
    case EX_BIND:
        return type == '2';
    case EX_CLOSE:
        return type == '3';
    case EX_DESCRIBE:
        return type == 'T' || type == 'n';
    case EX_EXECUTE:
        return type == 'C' || type == 'I' || type == 's';
    default:
        return type == 'Z';
    }
}

enum ps_response prepared_server_msg(struct server *s, uint8_t type, const uint8_t *body,
                                     uint32_t blen)
{
    if (type == 'C' && body && prepared_wipes_all(body, blen)) {
        prepared_server_forget(s);
        if (s->link)
            prepared_client_forget(s->link);
    }
    struct ps_slot *sl = slot_head(s);
    if (!sl)
        return PS_FORWARD;
    if (type == 'E') {
        if (sl->expect == EX_SYNC || sl->expect == EX_QUERY)
            return PS_FORWARD;
        /* PostgreSQL skips everything up to the next Sync. */
        while ((sl = slot_head(s)) && sl->expect != EX_SYNC)
            slot_pop(s, true);
        return PS_FORWARD;
    }
    if (type == 'Z') {
        /* Whatever is still owed before a Sync is not coming any more. */
        while ((sl = slot_head(s)) && sl->expect != EX_SYNC && sl->expect != EX_QUERY)
            slot_pop(s, true);
        if (sl)
            slot_pop(s, false);
        return PS_FORWARD;
    }
    if (sl->action == ACT_SYNTH || !completes(sl->expect, type))
        return PS_FORWARD;
    bool swallow = sl->action == ACT_SWALLOW;
    slot_pop(s, false);
    return swallow ? PS_SWALLOW : PS_FORWARD;
}

bool prepared_take_synth(struct server *s, struct pktbuf *out)
{
    bool any = false;
    struct ps_slot *sl;
    while ((sl = slot_head(s)) && sl->action == ACT_SYNTH) {
        put_header(out, sl->expect == EX_PARSE ? '1' : '3', 4);
        slot_pop(s, false);
        any = true;
    }
    return any;
}

void prepared_mem(struct prepared_mem *out)
{
    *out = mem;
    out->stmts = stmt_table.n;
    out->stmt_size = sizeof(struct ps_stmt);
    out->name_size = sizeof(struct ps_name);
    out->entry_size = sizeof(struct ps_entry);
}
