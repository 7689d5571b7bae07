/*
 * show.c: what the console's SHOW commands print: PgBouncer 1.25's exact columns (names,
 * order, types) from the real lists, counters and clocks, as RowDescription/DataRow messages
 * to a console client, or as text cells to another reader (show_rows: the metrics endpoint),
 * from the same builders. It only reads: nothing here changes a pool, a connection or a
 * setting, and secrets are never shown.
 */
#include "pgusher/show.h"

#include "pgusher/admin.h"
#include "pgusher/balance.h"
#include "pgusher/cancel.h"
#include "pgusher/dns.h"
#include "pgusher/pool.h"
#include "pgusher/prepared.h"
#include "pgusher/runtime.h"
#include "pgusher/stats.h"
#include "pgusher/takeover.h"
#include "pgusher/tls.h"
#include "pgusher/version.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TEXTOID 25
#define INT4OID 23
#define INT8OID 20
#define NUMERICOID 1700
#define BYTEAOID 17

/* ---------------------------------------------------------------- result building */

struct col {
    const char *name;
    char type; /* T text, I int4, L int8, N numeric, B bytea */
};

/* A result goes either to the console client (as RowDescription/DataRow messages in b) or,
 * while show_rows runs, to its consumer as text cells: the same builders feed both. */
#define RESULT_MAX_COLS 32

struct result {
    struct pktbuf b;
    int ncols;
    int nrows;
    const struct show_sink *sink; /* NULL: the console */
    int ncells;                   /* cells of the current row (sink only) */
    size_t used;                  /* bytes of cellbuf used by the current row */
    const char *cells[RESULT_MAX_COLS];
    char cellbuf[8192];
};

/* Set by show_rows for the duration of one builder (one loop, no re-entry). */
static const struct show_sink *rows_sink;

static void res_begin(struct result *r, const struct col *cols, int n)
{
    pktbuf_init(&r->b);
    r->ncols = n;
    r->nrows = 0;
    r->sink = rows_sink;
    if (r->sink) {
        const char *names[RESULT_MAX_COLS];
        for (int i = 0; i < n && i < RESULT_MAX_COLS; i++)
            names[i] = cols[i].name;
        r->sink->columns(r->sink->arg, n < RESULT_MAX_COLS ? n : RESULT_MAX_COLS, names);
        return;
    }
    pktbuf_start(&r->b, 'T');
    pktbuf_put_int16(&r->b, (uint16_t)n);
    for (int i = 0; i < n; i++) {
        uint32_t oid = TEXTOID;
        int16_t len = -1;
        switch (cols[i].type) {
        case 'I':
            oid = INT4OID;
            len = 4;
            break;
        case 'L':
            oid = INT8OID;
            len = 8;
            break;
        case 'N':
            oid = NUMERICOID;
            break;
        case 'B':
            oid = BYTEAOID;
            break;
        default:
            break;
        }
        pktbuf_put_string(&r->b, cols[i].name);
        pktbuf_put_int32(&r->b, 0);
        pktbuf_put_int16(&r->b, 0);
        pktbuf_put_int32(&r->b, oid);
        pktbuf_put_int16(&r->b, (uint16_t)len);
        pktbuf_put_int32(&r->b, (uint32_t)-1);
        pktbuf_put_int16(&r->b, 0);
    }
    pktbuf_finish(&r->b);
}

static void row_begin(struct result *r)
{
    if (r->sink) {
        r->ncells = 0;
        r->used = 0;
        r->nrows++;
        return;
    }
    pktbuf_start(&r->b, 'D');
    pktbuf_put_int16(&r->b, (uint16_t)r->ncols);
    r->nrows++;
}

static void row_str(struct result *r, const char *s)
{
    if (r->sink) {
        if (r->ncells >= RESULT_MAX_COLS)
            return;
        const char *cell = NULL;
        if (s) {
            size_t n = strlen(s), room = sizeof(r->cellbuf) - r->used;
            if (n >= room)
                n = room ? room - 1 : 0; /* a cell this long is cut, never overflows */
            if (room) {
                memcpy(r->cellbuf + r->used, s, n);
                r->cellbuf[r->used + n] = '\0';
                cell = r->cellbuf + r->used;
                r->used += n + 1;
            } else {
                cell = "";
            }
        }
        r->cells[r->ncells++] = cell;
        return;
    }
    if (!s) {
        pktbuf_put_int32(&r->b, (uint32_t)-1);
        return;
    }
    size_t n = strlen(s);
    pktbuf_put_int32(&r->b, (uint32_t)n);
    pktbuf_put_bytes(&r->b, s, n);
}

static void row_int(struct result *r, long long v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%lld", v);
    row_str(r, buf);
}

static void row_end(struct result *r)
{
    if (r->sink) {
        r->sink->row(r->sink->arg, r->ncells, r->cells);
        return;
    }
    pktbuf_finish(&r->b);
}

static void res_send(struct client *c, struct result *r)
{
    if (r->sink) {
        pktbuf_free(&r->b);
        return;
    }
    admin_reply(c, &r->b, "SHOW");
}

/* ---------------------------------------------------------------- time helpers */

static void fmt_wall(char *buf, size_t len, time_t t)
{
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M:%S %Z", &tm);
}

static time_t mono_to_wall(uint64_t mono)
{
    uint64_t now = now_usec();
    time_t wall = time(NULL);
    if (!mono || mono > now)
        return wall;
    return wall - (time_t)((now - mono) / 1000000);
}

/* ---------------------------------------------------------------- naming helpers */

static const char *db_pool_mode_name(const struct database *db)
{
    return db->cf->pool_mode != CF_UNSET ? config_pool_mode_name(db->cf->pool_mode) : NULL;
}

static const char *lb_name(const struct database *db)
{
    /* As PgBouncer 1.25 shows it: NULL for a single host, else the policy (round-robin
     * unless set). */
    if (db->cf->nhosts < 2)
        return NULL;
    int lb = db->cf->load_balance_hosts;
    return config_lb_policy_name(lb != CF_UNSET ? lb : LB_ROUND_ROBIN);
}

/* ---------------------------------------------------------------- SHOW commands */

static void show_pools(struct client *c)
{
    static const struct col cols[] = {
        {"database", 'T'},
        {"user", 'T'},
        {"cl_active", 'I'},
        {"cl_waiting", 'I'},
        {"cl_active_cancel_req", 'I'},
        {"cl_waiting_cancel_req", 'I'},
        {"sv_active", 'I'},
        {"sv_active_cancel", 'I'},
        {"sv_being_canceled", 'I'},
        {"sv_idle", 'I'},
        {"sv_used", 'I'},
        {"sv_tested", 'I'},
        {"sv_login", 'I'},
        {"maxwait", 'I'},
        {"maxwait_us", 'I'},
        {"pool_mode", 'T'},
        {"load_balance_hosts", 'T'},
    };
    struct result r;
    res_begin(&r, cols, (int)(sizeof(cols) / sizeof(cols[0])));
    uint64_t now = now_usec();
    FOR_EACH_POOL(db, p)
    {
        uint64_t maxwait = 0;
        struct list *it;
        list_for_each(it, &p->cl_waiting)
        {
            struct client *w = container_of(it, struct client, node);
            if (w->wait_start && now - w->wait_start > maxwait)
                maxwait = now - w->wait_start;
        }
        row_begin(&r);
        row_str(&r, db->name);
        /* The console has one pool in PgBouncer, of its forced user "pgbouncer". */
        row_str(&r, db->admin ? "pgbouncer" : p->user);
        row_int(&r, p->n_cl_active);
        row_int(&r, p->n_cl_waiting);
        row_int(&r, p->n_cl_active_cancel_req);
        row_int(&r, 0); /* a cancel request is forwarded at once: none waits */
        row_int(&r, p->n_sv_active);
        row_int(&r, p->n_sv_active_cancel);
        row_int(&r, p->n_sv_being_canceled);
        row_int(&r, p->n_sv_idle);
        row_int(&r, p->n_sv_used);
        row_int(&r, p->n_sv_tested);
        row_int(&r, p->n_sv_login);
        row_int(&r, (long long)(maxwait / 1000000));
        row_int(&r, (long long)(maxwait % 1000000));
        row_str(&r, config_pool_mode_name(pool_mode(p)));
        row_str(&r, lb_name(db));
        row_end(&r);
    }
    res_send(c, &r);
}

static const struct col conn_cols[] = {
    {"type", 'T'},
    {"user", 'T'},
    {"database", 'T'},
    {"replication", 'T'},
    {"state", 'T'},
    {"addr", 'T'},
    {"port", 'I'},
    {"local_addr", 'T'},
    {"local_port", 'I'},
    {"connect_time", 'T'},
    {"request_time", 'T'},
    {"wait", 'I'},
    {"wait_us", 'I'},
    {"close_needed", 'I'},
    {"ptr", 'T'},
    {"link", 'T'},
    {"remote_pid", 'I'},
    {"tls", 'T'},
    {"application_name", 'T'},
    {"prepared_statements", 'I'},
    {"id", 'L'},
    /* SOCKETS adds these */
    {"recv_pos", 'I'},
    {"pkt_pos", 'I'},
    {"pkt_remain", 'I'},
    {"send_pos", 'I'},
    {"send_remain", 'I'},
    {"pkt_avail", 'I'},
    {"send_avail", 'I'},
};
#define CONN_COLS 21
#define SOCKET_COLS 28

/* The replication column of SHOW CLIENTS / SERVERS, in 1.25's words. */
static const char *const replication_names[] = {
    [REPL_NONE] = "none", [REPL_PHYSICAL] = "physical", [REPL_LOGICAL] = "logical"};

static const char *client_state_name(const struct client *c)
{
    switch (c->state) {
    case CL_LOGIN:
        return "login";
    case CL_WAITING:
    case CL_WAITING_LOGIN:
        return "waiting";
    case CL_ACTIVE:
        return c->link ? "active" : "idle";
    case CL_CANCEL:
        return "active_cancel_req";
    default:
        return "justfree";
    }
}

static const char *server_state_name(const struct server *s)
{
    switch (s->state) {
    case SV_LOGIN:
        return "login";
    case SV_IDLE:
        return "idle";
    case SV_ACTIVE:
        return "active";
    case SV_USED:
        return "used";
    case SV_TESTED:
        return "tested";
    case SV_BEING_CANCELED:
        return "being_canceled";
    default:
        return "justfree";
    }
}

/* SHOW SOCKETS names the list a connection is on, as PgBouncer 1.25 does. */
static const char *client_list_name(const struct client *c)
{
    switch (c->state) {
    case CL_LOGIN:
        return "cl_login";
    case CL_WAITING:
        return "cl_waiting";
    case CL_WAITING_LOGIN:
        return "cl_waiting_login";
    case CL_ACTIVE:
        return "cl_active";
    case CL_CANCEL:
        return "cl_active_cancel_req";
    default:
        return "cl_justfree";
    }
}

static const char *server_list_name(const struct server *s)
{
    switch (s->state) {
    case SV_LOGIN:
        return "sv_login";
    case SV_IDLE:
        return "sv_idle";
    case SV_ACTIVE:
        return "sv_active";
    case SV_USED:
        return "sv_used";
    case SV_TESTED:
        return "sv_tested";
    case SV_BEING_CANCELED:
        return "sv_being_canceled";
    default:
        return "sv_justfree";
    }
}

static void socket_cols(struct result *r, struct stream *st)
{
    row_int(r, st->rlen);
    row_int(r, st->rpos);
    row_int(r, 0);
    row_int(r, 0);
    row_int(r, (long long)st->queued);
    row_int(r, st->rlen - st->rpos);
    row_int(r, st->cap - st->rlen);
}

static void client_row(struct result *r, struct client *c, bool sockets)
{
    char lhost[64] = "", ptr[32], link[32] = "", ct[64], rt[64], tls[128];
    int lport = 0;
    if (!c->st.closing)
        stream_local_addr(&c->st, lhost, sizeof(lhost), &lport);
    stream_tls_describe(&c->st, tls, sizeof(tls));
    snprintf(ptr, sizeof(ptr), "%p", (void *)c);
    if (c->link)
        snprintf(link, sizeof(link), "%p", (void *)c->link);
    fmt_wall(ct, sizeof(ct), c->connect_wall);
    fmt_wall(rt, sizeof(rt), mono_to_wall(c->request_time));
    uint64_t wait = c->wait_start ? now_usec() - c->wait_start : 0;
    row_begin(r);
    row_str(r, "C");
    row_str(r, c->user_name);
    row_str(r, c->db_name);
    row_str(r, replication_names[c->replication]);
    row_str(r, sockets ? client_list_name(c) : client_state_name(c));
    row_str(r, c->addr);
    row_int(r, c->port);
    row_str(r, lhost);
    row_int(r, lport);
    row_str(r, ct);
    row_str(r, rt);
    row_int(r, (long long)(wait / 1000000));
    row_int(r, (long long)(wait % 1000000));
    row_int(r, 0);
    row_str(r, ptr);
    row_str(r, link);
    row_int(r, admin_peer_pid(c)); /* remote_pid: Unix-socket clients */
    row_str(r, tls);
    row_str(r, c->vars.val[VAR_APPLICATION_NAME] ? c->vars.val[VAR_APPLICATION_NAME] : "");
    row_int(r, prepared_client_count(c));
    row_int(r, (long long)c->id);
    if (sockets)
        socket_cols(r, &c->st);
    row_end(r);
}

static void server_row(struct result *r, struct server *s, bool sockets)
{
    char lhost[64] = "", ptr[32], link[32] = "", ct[64], rt[64], tls[128];
    int lport = 0;
    stream_tls_describe(&s->st, tls, sizeof(tls));
    if (s->state != SV_LOGIN || s->ready)
        stream_local_addr(&s->st, lhost, sizeof(lhost), &lport);
    snprintf(ptr, sizeof(ptr), "%p", (void *)s);
    if (s->link)
        snprintf(link, sizeof(link), "%p", (void *)s->link);
    fmt_wall(ct, sizeof(ct), s->connect_wall);
    fmt_wall(rt, sizeof(rt), mono_to_wall(s->request_time));
    row_begin(r);
    row_str(r, "S");
    row_str(r, s->pool->user);
    row_str(r, s->pool->db->name);
    row_str(r, replication_names[s->replication]);
    row_str(r, sockets ? server_list_name(s) : server_state_name(s));
    row_str(r, s->host);
    row_int(r, s->port);
    row_str(r, lhost);
    row_int(r, lport);
    row_str(r, ct);
    row_str(r, rt);
    row_int(r, 0);
    row_int(r, 0);
    row_int(r, s->close_needed);
    row_str(r, ptr);
    row_str(r, link);
    row_int(r, s->be_pid);
    row_str(r, tls);
    row_str(r, s->vars.val[VAR_APPLICATION_NAME] ? s->vars.val[VAR_APPLICATION_NAME] : "");
    row_int(r, prepared_server_count(s));
    row_int(r, (long long)s->id);
    if (sockets)
        socket_cols(r, &s->st);
    row_end(r);
}

static bool socket_shown(const struct stream *st, bool active_only)
{
    return !active_only || stream_avail(st) > 0 || st->queued > 0;
}

static void add_login_clients(struct result *r, bool sockets, bool active_only)
{
    struct list *it;
    list_for_each(it, &G.login_clients)
    {
        struct client *c = container_of(it, struct client, node);
        if (socket_shown(&c->st, active_only))
            client_row(r, c, sockets);
    }
}

static void add_pool_clients(struct result *r, struct pool *p, bool sockets, bool active_only)
{
    struct list *it;
    struct list *lists[] = {&p->cl_active, &p->cl_waiting, &p->cl_active_cancel_req};
    for (int i = 0; i < 3; i++) {
        list_for_each(it, lists[i])
        {
            struct client *c = container_of(it, struct client, node);
            if (socket_shown(&c->st, active_only))
                client_row(r, c, sockets);
        }
    }
}

/* Idle servers newest first: the order PgBouncer 1.25 keeps them in (it hands out the most
 * recently used one, as take_idle does from the other end of sv_idle). */
static void add_pool_servers(struct result *r, struct pool *p, bool sockets, bool active_only)
{
    struct list *lists[POOL_SV_NLISTS];
    pool_server_lists(p, lists);
    for (int i = 0; i < POOL_SV_NLISTS; i++) {
        bool newest_first = lists[i] == &p->sv_idle;
        for (struct list *it = newest_first ? lists[i]->prev : lists[i]->next; it != lists[i];
             it = newest_first ? it->prev : it->next) {
            struct server *s = container_of(it, struct server, node);
            if (socket_shown(&s->st, active_only))
                server_row(r, s, sockets);
        }
    }
}

static void add_clients(struct result *r, bool sockets, bool active_only)
{
    add_login_clients(r, sockets, active_only);
    FOR_EACH_POOL(db, p)
    {
        add_pool_clients(r, p, sockets, active_only);
    }
}

static void add_servers(struct result *r, bool sockets, bool active_only)
{
    FOR_EACH_POOL(db, p)
    {
        add_pool_servers(r, p, sockets, active_only);
    }
}

static void show_clients(struct client *c)
{
    struct result r;
    res_begin(&r, conn_cols, CONN_COLS);
    add_clients(&r, false, false);
    res_send(c, &r);
}

static void show_servers(struct client *c)
{
    struct result r;
    res_begin(&r, conn_cols, CONN_COLS);
    add_servers(&r, false, false);
    res_send(c, &r);
}

static void show_sockets(struct client *c, bool active_only)
{
    struct result r;
    res_begin(&r, conn_cols, SOCKET_COLS);
    /* Pool by pool, its clients then its servers, as PgBouncer 1.25 lists them. */
    add_login_clients(&r, true, active_only);
    FOR_EACH_POOL(db, p)
    {
        add_pool_clients(&r, p, true, active_only);
        add_pool_servers(&r, p, true, active_only);
    }
    res_send(c, &r);
}

static int setting_or(int v, int dflt)
{
    return v != CF_UNSET ? v : dflt;
}

static void show_databases(struct client *c)
{
    static const struct col cols[] = {
        {"name", 'T'},
        {"host", 'T'},
        {"port", 'I'},
        {"database", 'T'},
        {"force_user", 'T'},
        {"pool_size", 'I'},
        {"min_pool_size", 'I'},
        {"reserve_pool_size", 'I'},
        {"server_lifetime", 'I'},
        {"pool_mode", 'T'},
        {"load_balance_hosts", 'T'},
        {"max_connections", 'I'},
        {"current_connections", 'I'},
        {"max_client_connections", 'I'},
        {"current_client_connections", 'I'},
        {"paused", 'I'},
        {"disabled", 'I'},
    };
    const struct cf_global *g = &G.cf->g;
    struct result r;
    res_begin(&r, cols, (int)(sizeof(cols) / sizeof(cols[0])));
    FOR_EACH_DB(db)
    {
        const struct cf_database *cf = db->cf;
        char hosts[1024] = "";
        size_t hl = 0;
        for (int i = 0; i < cf->nhosts && hl < sizeof(hosts); i++)
            hl += (size_t)snprintf(hosts + hl, sizeof(hosts) - hl, "%s%s", i ? "," : "",
                                   cf->hosts[i]);
        row_begin(&r);
        row_str(&r, db->name);
        row_str(&r, db->admin || cf->nhosts == 0 ? NULL : hosts);
        row_int(&r, db->admin ? g->listen_port : (cf->nhosts ? cf->ports[0] : cf->port));
        row_str(&r, db->admin ? "pgbouncer" : (cf->dbname ? cf->dbname : db->name));
        row_str(&r, db->admin ? "pgbouncer" : cf->user);
        row_int(&r, db->admin ? 2 : setting_or(cf->pool_size, g->default_pool_size));
        row_int(&r, setting_or(cf->min_pool_size, g->min_pool_size));
        row_int(&r, setting_or(cf->reserve_pool_size, g->reserve_pool_size));
        row_int(&r, setting_or(cf->server_lifetime_sec, (int)(g->server_lifetime / USEC_PER_SEC)));
        row_str(&r, db->admin ? "statement" : db_pool_mode_name(db));
        row_str(&r, db->admin ? NULL : lb_name(db));
        row_int(&r, setting_or(cf->max_db_connections, g->max_db_connections));
        row_int(&r, db->server_count);
        row_int(&r, setting_or(cf->max_db_client_connections, g->max_db_client_connections));
        row_int(&r, db->client_count);
        row_int(&r, db->paused || G.paused);
        row_int(&r, db->disabled);
        row_end(&r);
    }
    res_send(c, &r);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void row_opt_int(struct result *r, int v)
{
    if (v == CF_UNSET)
        row_str(r, "");
    else
        row_int(r, v);
}

/* Users: the auth file's, the [users] section's and every pool's, each once. */
static void show_users(struct client *c)
{
    static const struct col cols[] = {
        {"name", 'T'},
        {"pool_size", 'I'},
        {"reserve_pool_size", 'I'},
        {"pool_mode", 'T'},
        {"max_user_connections", 'I'},
        {"current_connections", 'I'},
        {"max_user_client_connections", 'I'},
        {"current_client_connections", 'I'},
    };
    const struct config *cf = G.cf;
    size_t cap = (size_t)cf->nauthusers + (size_t)cf->nusers + 16, n = 0;
    const char **names = calloc(cap, sizeof(*names));
    struct result r;
    res_begin(&r, cols, (int)(sizeof(cols) / sizeof(cols[0])));
    if (!names) {
        res_send(c, &r);
        return;
    }
#define ADD_NAME(nm)                                                                               \
    do {                                                                                           \
        bool dup = false;                                                                          \
        for (size_t k = 0; k < n; k++)                                                             \
            if (strcmp(names[k], (nm)) == 0)                                                       \
                dup = true;                                                                        \
        if (!dup) {                                                                                \
            if (n == cap) {                                                                        \
                const char **nn = realloc(names, 2 * cap * sizeof(*names));                        \
                if (!nn)                                                                           \
                    break;                                                                         \
                names = nn;                                                                        \
                cap *= 2;                                                                          \
            }                                                                                      \
            names[n++] = (nm);                                                                     \
        }                                                                                          \
    } while (0)
    ADD_NAME("pgbouncer"); /* the console's forced user, listed by PgBouncer too */
    for (int i = 0; i < cf->nauthusers; i++)
        ADD_NAME(cf->authusers[i].name);
    for (int i = 0; i < cf->nusers; i++)
        ADD_NAME(cf->users[i].name);
    FOR_EACH_POOL(db, p)
    {
        ADD_NAME(p->user);
    }
#undef ADD_NAME
    qsort(names, n, sizeof(*names), cmp_names); /* PgBouncer's user tree is sorted */
    for (size_t i = 0; i < n; i++) {
        const struct cf_user *u = config_find_user(cf, names[i]);
        int servers = 0, clients = 0;
        FOR_EACH_POOL(db, p)
        {
            if (strcmp(p->user, names[i]) == 0) {
                servers += pool_server_total(p);
                clients += p->n_cl_active + p->n_cl_waiting;
            }
        }
        row_begin(&r);
        row_str(&r, names[i]);
        /* Unset: an empty value, as PgBouncer 1.25 shows it. */
        row_opt_int(&r, u ? u->pool_size : CF_UNSET);
        row_opt_int(&r, u ? u->reserve_pool_size : CF_UNSET);
        row_str(&r, u && u->pool_mode != CF_UNSET ? config_pool_mode_name(u->pool_mode) : NULL);
        row_int(&r, u ? setting_or(u->max_user_connections, cf->g.max_user_connections)
                      : cf->g.max_user_connections);
        row_int(&r, servers);
        row_int(&r,
                u ? setting_or(u->max_user_client_connections, cf->g.max_user_client_connections)
                  : cf->g.max_user_client_connections);
        row_int(&r, clients);
        row_end(&r);
    }
    free(names);
    res_send(c, &r);
}

static void put_totals(struct result *r, const struct pool_stats *t)
{
    row_int(r, (long long)t->server_assignment_count);
    row_int(r, (long long)t->xact_count);
    row_int(r, (long long)t->query_count);
    row_int(r, (long long)t->bytes_received);
    row_int(r, (long long)t->bytes_sent);
    row_int(r, (long long)t->xact_time);
    row_int(r, (long long)t->query_time);
    row_int(r, (long long)t->wait_time);
    row_int(r, (long long)t->client_parse_count);
    row_int(r, (long long)t->server_parse_count);
    row_int(r, (long long)t->bind_count);
}

/* PgBouncer 1.25's SHOW STATS/TOTALS have eleven counters: the logins pgusher counts too
 * (client_login_count, in the stats log line) are not shown. */
#define SHOWN_STATS 11

/* The averages in SHOW STATS column order (stat_names). */
static void avg_values(const struct stats_avg *a, uint64_t v[12])
{
    const uint64_t vals[12] = {
        a->server_assignment_count,
        a->xact_count,
        a->query_count,
        a->bytes_received,
        a->bytes_sent,
        a->xact_time,
        a->query_time,
        a->wait_time,
        a->client_parse_count,
        a->server_parse_count,
        a->bind_count,
        a->client_login_count,
    };
    memcpy(v, vals, sizeof(vals));
}

static void put_avgs(struct result *r, const struct database *db)
{
    uint64_t v[12];
    avg_values(&db->avg, v);
    for (int i = 0; i < SHOWN_STATS; i++)
        row_int(r, (long long)v[i]);
}

static const char *const stat_names[SHOWN_STATS] = {
    "server_assignment_count",
    "xact_count",
    "query_count",
    "received",
    "sent",
    "xact_time",
    "query_time",
    "wait_time",
    "client_parse_count",
    "server_parse_count",
    "bind_count",
};

/* SHOW TOTALS names them differently. */
static const char *const totals_names[SHOWN_STATS] = {
    "server_assignment_count",
    "xact_count",
    "query_count",
    "client_bytes",
    "server_bytes",
    "xact_time",
    "query_time",
    "wait_time",
    "ps_client_parse_count",
    "ps_server_parse_count",
    "ps_bind_count",
};

static void show_stats(struct client *c, int kind)
{
    /* kind 0: STATS, 1: STATS_TOTALS, 2: STATS_AVERAGES */
    struct col cols[25];
    char names[25][48];
    int n = 0;
    cols[n++] = (struct col){"database", 'T'};
    for (int pass = 0; pass < 2; pass++) {
        if ((kind == 1 && pass == 1) || (kind == 2 && pass == 0))
            continue;
        for (int i = 0; i < SHOWN_STATS; i++) {
            const char *base = stat_names[i];
            if (kind == 0)
                snprintf(names[n], sizeof(names[n]), "%s_%s", pass ? "avg" : "total",
                         i == 3 && pass ? "recv" : base);
            else if (i == 3)
                snprintf(names[n], sizeof(names[n]), "bytes_received");
            else if (i == 4)
                snprintf(names[n], sizeof(names[n]), "bytes_sent");
            else if (kind == 2 && i >= 8)
                snprintf(names[n], sizeof(names[n]), "avg_%s", base);
            else
                snprintf(names[n], sizeof(names[n]), "%s", base);
            cols[n] = (struct col){names[n], 'N'};
            n++;
        }
    }
    struct result r;
    res_begin(&r, cols, n);
    FOR_EACH_DB(db)
    {
        struct pool_stats t;
        stats_db_totals(db, &t);
        row_begin(&r);
        row_str(&r, db->name);
        if (kind != 2)
            put_totals(&r, &t);
        if (kind != 1)
            put_avgs(&r, db);
        row_end(&r);
    }
    res_send(c, &r);
}

static void show_totals(struct client *c)
{
    static const struct col cols[] = {{"name", 'T'}, {"value", 'N'}};
    struct result r;
    res_begin(&r, cols, 2);
    struct pool_stats all = {0};
    FOR_EACH_DB(db)
    {
        struct pool_stats t;
        stats_db_totals(db, &t);
        uint64_t *a = (uint64_t *)&all, *b = (uint64_t *)&t;
        for (size_t i = 0; i < sizeof(all) / sizeof(uint64_t); i++)
            a[i] += b[i];
    }
    uint64_t avg[12];
    avg_values(stats_total_avg(), avg);
    const uint64_t tot[12] = {
        all.server_assignment_count,
        all.xact_count,
        all.query_count,
        all.bytes_received,
        all.bytes_sent,
        all.xact_time,
        all.query_time,
        all.wait_time,
        all.client_parse_count,
        all.server_parse_count,
        all.bind_count,
        all.client_login_count,
    };
    char name[64];
    for (int i = 0; i < SHOWN_STATS; i++) {
        snprintf(name, sizeof(name), "total_%s", totals_names[i]);
        row_begin(&r);
        row_str(&r, name);
        row_int(&r, (long long)tot[i]);
        row_end(&r);
    }
    for (int i = 0; i < SHOWN_STATS; i++) {
        snprintf(name, sizeof(name), "avg_%s", totals_names[i]);
        row_begin(&r);
        row_str(&r, name);
        row_int(&r, (long long)avg[i]);
        row_end(&r);
    }
    res_send(c, &r);
}

static void list_row(struct result *r, const char *name, long long v)
{
    row_begin(r);
    row_str(r, name);
    row_int(r, v);
    row_end(r);
}

static void show_lists(struct client *c)
{
    static const struct col cols[] = {{"list", 'T'}, {"items", 'I'}};
    struct result r;
    res_begin(&r, cols, 2);
    int ndb = 0, npools = 0, used_clients = 0, used_servers = 0;
    FOR_EACH_DB(db)
    {
        ndb++;
    }
    FOR_EACH_POOL(db, p)
    {
        npools++;
        used_clients += p->n_cl_active + p->n_cl_waiting;
        used_servers += pool_server_total(p);
    }
    int login = (int)list_count(&G.login_clients);
    list_row(&r, "databases", ndb);
    list_row(&r, "users", G.cf->nauthusers + G.cf->nusers);
    list_row(&r, "peers", G.cf->npeers);
    list_row(&r, "pools", npools);
    list_row(&r, "peer_pools", 0);
    list_row(&r, "free_clients", 0);
    list_row(&r, "used_clients", used_clients + login);
    list_row(&r, "login_clients", login);
    list_row(&r, "free_servers", 0);
    list_row(&r, "used_servers", used_servers);
    struct dns_counts dc;
    dns_count(&dc);
    list_row(&r, "dns_names", dc.names);
    list_row(&r, "dns_zones", dc.zones);
    list_row(&r, "dns_queries", dc.queries);
    list_row(&r, "dns_pending", dc.pending);
    res_send(c, &r);
}

/* Settings whose default PgBouncer 1.25 shows as NULL (and an unset value too). */
static const char *const config_null_defaults[] = {
    "auth_dbname",
    "auth_file",
    "auth_ident_file",
    "auth_ldap_options",
    "auth_user",
    "client_tls13_ciphers",
    "conffile",
    "server_tls13_ciphers",
    "user",
    "verbose",
};

static bool config_null_default(const char *name)
{
    for (size_t i = 0; i < sizeof(config_null_defaults) / sizeof(config_null_defaults[0]); i++)
        if (strcmp(name, config_null_defaults[i]) == 0)
            return true;
    return false;
}

static void show_config(struct client *c)
{
    static const struct col cols[] = {
        {"key", 'T'}, {"value", 'T'}, {"default", 'T'}, {"changeable", 'T'}};
    struct result r;
    res_begin(&r, cols, 4);
    char buf[1024];
    for (size_t i = 0; i < config_nsettings; i++) {
        const struct cf_setting *s = &config_settings[i];
        bool null_default = config_null_default(s->name);
        const char *v = config_setting_shown(G.cf, s, buf, sizeof(buf));
        if (strcmp(s->name, "unix_socket_mode") == 0 && v) {
            /* PgBouncer 1.25 shows the value in decimal, the default as written. */
            snprintf(buf, sizeof(buf), "%ld", strtol(v, NULL, 8));
            v = buf;
        }
        row_begin(&r);
        row_str(&r, s->name);
        row_str(&r, null_default && v && !*v ? NULL : v);
        row_str(&r, null_default ? NULL : s->default_str);
        row_str(&r, s->reloadable ? "yes" : "no");
        row_end(&r);
    }
    res_send(c, &r);
}

static void show_version(struct client *c)
{
    static const struct col cols[] = {{"version", 'T'}};
    struct result r;
    res_begin(&r, cols, 1);
    char v[256];
    version_summary(v, sizeof(v));
    row_begin(&r);
    row_str(&r, v);
    row_end(&r);
    res_send(c, &r);
}

static void show_state(struct client *c)
{
    static const struct col cols[] = {{"key", 'T'}, {"value", 'T'}};
    struct result r;
    res_begin(&r, cols, 2);
    const char *rows[][2] = {
        {"active", (!G.paused && !G.suspended) ? "yes" : "no"},
        {"paused", G.paused && !G.suspended ? "yes" : "no"}, /* 1.25: one or the other */
        {"suspended", G.suspended ? "yes" : "no"},
    };
    for (size_t i = 0; i < 3; i++) {
        row_begin(&r);
        row_str(&r, rows[i][0]);
        row_str(&r, rows[i][1]);
        row_end(&r);
    }
    res_send(c, &r);
}

/* One SHOW MEM row: memtotal is size x (used + free) for objects of one size, as PgBouncer
 * counts its slabs, or the bytes held (bytes >= 0) for those with a variable part. */
static void mem_row(struct result *r, const char *name, size_t size, size_t used, size_t nfree,
                    long long bytes)
{
    row_begin(r);
    row_str(r, name);
    row_int(r, (long long)size);
    row_int(r, (long long)used);
    row_int(r, (long long)nfree);
    row_int(r, bytes >= 0 ? bytes : (long long)(size * (used + nfree)));
    row_end(r);
}

/* PgBouncer 1.25's rows for what pgusher has too, then pgusher's own: buffers are per
 * connection only while it has bytes in them, so an idle client holds client_cache alone. */
static void show_mem(struct client *c)
{
    static const struct col cols[] = {
        {"name", 'T'}, {"size", 'I'}, {"used", 'I'}, {"free", 'I'}, {"memtotal", 'I'}};
    struct result r;
    res_begin(&r, cols, 5);
    size_t ndb = 0, npools = 0;
    FOR_EACH_DB(db)
    {
        ndb++;
    }
    FOR_EACH_POOL(db, p)
    {
        npools++;
    }
    struct stream_mem sm;
    stream_mem(&sm);
    struct prepared_mem pm;
    prepared_mem(&pm);
    struct dns_counts dc;
    dns_count(&dc);
    mem_row(&r, "user_cache", sizeof(struct cf_user), (size_t)(G.cf->nusers + G.cf->nauthusers), 0,
            -1);
    mem_row(&r, "db_cache", sizeof(struct database), ndb, 0, -1);
    mem_row(&r, "pool_cache", sizeof(struct pool), npools, 0, -1);
    mem_row(&r, "server_cache", sizeof(struct server), (size_t)G.server_count, 0, -1);
    mem_row(&r, "client_cache", sizeof(struct client), (size_t)G.client_count, 0, -1);
    mem_row(&r, "iobuf_cache", stream_bufsize(), sm.bufs_used, sm.bufs_free, -1);
    mem_row(&r, "server_prepared_statement_cache", pm.entry_size, pm.entries, 0, -1);
    mem_row(&r, "write_request_cache", 0, sm.writes, 0, (long long)sm.write_bytes);
    mem_row(&r, "tls_cache", stream_tls_size(), sm.tls_streams, 0, -1);
    size_t ossl_allocs;
    long long ossl = tls_mem_bytes(&ossl_allocs);
    if (ossl >= 0)
        mem_row(&r, "openssl", 0, ossl_allocs, 0, ossl);
    mem_row(&r, "prepared_statement_cache", pm.stmt_size, pm.stmts, 0, (long long)pm.stmt_bytes);
    mem_row(&r, "client_prepared_statement_cache", pm.name_size, pm.names, 0,
            (long long)pm.name_bytes);
    mem_row(&r, "dns_cache", sizeof(struct dns_name), (size_t)dc.names, 0, -1);
    res_send(c, &r);
}

static void show_fds(struct client *c)
{
    static const struct col cols[] = {
        {"fd", 'I'},
        {"task", 'T'},
        {"user", 'T'},
        {"database", 'T'},
        {"addr", 'T'},
        {"port", 'I'},
        {"cancel", 'L'},
        {"link", 'I'},
        {"client_encoding", 'T'},
        {"std_strings", 'T'},
        {"datestyle", 'T'},
        {"timezone", 'T'},
        {"password", 'T'},
        {"scram_client_key", 'B'},
        {"scram_server_key", 'B'},
    };
    /* The rows, and the sockets with them for an online restart: takeover.c. */
    struct result r;
    res_begin(&r, cols, (int)(sizeof(cols) / sizeof(cols[0])));
    takeover_show_fds(c, &r.b);
}

static void show_peers(struct client *c)
{
    static const struct col cols[] = {
        {"peer_id", 'I'}, {"host", 'T'}, {"port", 'I'}, {"pool_size", 'I'}};
    struct result r;
    res_begin(&r, cols, 4);
    for (int i = 0; i < G.cf->npeers; i++) {
        const struct cf_peer *p = &G.cf->peers[i];
        row_begin(&r);
        row_int(&r, p->peer_id);
        row_str(&r, p->host);
        row_int(&r, p->port);
        row_int(&r, p->pool_size != CF_UNSET ? p->pool_size : G.cf->g.default_pool_size);
        row_end(&r);
    }
    res_send(c, &r);
}

/* pgusher's own: one row per backend and database that lists it. */
static void show_hosts(struct client *c)
{
    static const struct col cols[] = {
        {"database", 'T'},  {"host", 'T'},       {"port", 'I'},       {"state", 'T'},
        {"role", 'T'},      {"lag", 'N'},        {"lag_bytes", 'N'},  {"eligible", 'I'},
        {"sv_active", 'I'}, {"sv_idle", 'I'},    {"sv_login", 'I'},   {"checks", 'N'},
        {"failures", 'N'},  {"last_error", 'T'}, {"replay_age", 'N'}, {"hostname", 'T'},
    };
    struct result r;
    res_begin(&r, cols, (int)(sizeof(cols) / sizeof(cols[0])));
    FOR_EACH_DB(db)
    {
        if (db->admin)
            continue;
        int elig[CF_MAX_HOSTS];
        int ne = database_eligible(db, elig, NULL, 0);
        bool have_primary;
        uint64_t primary_lsn = lb_primary_lsn(db->backends, db->nbackends, &have_primary);
        for (int i = 0; i < db->nbackends; i++) {
            struct backend *be = db->backends[i];
            int active = 0, idle = 0, login = 0;
            struct list *pi;
            list_for_each(pi, &db->pools)
            {
                struct pool *p = container_of(pi, struct pool, node);
                struct list *it;
                list_for_each(it, &p->sv_active)
                {
                    active += container_of(it, struct server, node)->be == be;
                }
                list_for_each(it, &p->sv_idle)
                {
                    idle += container_of(it, struct server, node)->be == be;
                }
                list_for_each(it, &p->sv_login)
                {
                    login += container_of(it, struct server, node)->be == be;
                }
            }
            bool is_elig = false;
            for (int j = 0; j < ne; j++)
                is_elig = is_elig || elig[j] == i;
            char lag[32], replay_age[32];
            bool standby = be->role == ROLE_STANDBY && be->lag_known;
            snprintf(lag, sizeof(lag), "%.3f", lb_lag_sec(be, primary_lsn, have_primary));
            snprintf(replay_age, sizeof(replay_age), "%.3f", standby ? be->replay_age_sec : 0.0);
            uint64_t ahead = have_primary ? primary_lsn : be->receive_lsn;
            long long lag_bytes = standby && ahead > be->lsn ? (long long)(ahead - be->lsn) : 0;
            row_begin(&r);
            row_str(&r, db->name);
            row_str(&r, be->host);
            row_int(&r, be->port);
            row_str(&r, backend_state_name(be->hc.state));
            row_str(&r, backend_role_name(be->role));
            row_str(&r, lag);
            row_int(&r, lag_bytes);
            row_int(&r, is_elig);
            row_int(&r, active);
            row_int(&r, idle);
            row_int(&r, login);
            row_int(&r, (long long)be->checks);
            row_int(&r, (long long)be->failures);
            row_str(&r, be->last_error);
            row_str(&r, replay_age);
            row_str(&r, be->name);
            row_end(&r);
        }
    }
    res_send(c, &r);
}

static void show_help(struct client *c)
{
    struct pktbuf b;
    pktbuf_init(&b);
    static const char *const lines[] = {
        "\tSHOW HELP|CONFIG|DATABASES|POOLS|CLIENTS|SERVERS|USERS|VERSION",
        "\tSHOW PEERS|PEER_POOLS",
        "\tSHOW FDS|SOCKETS|ACTIVE_SOCKETS|LISTS|MEM|STATE",
        "\tSHOW DNS_HOSTS|DNS_ZONES",
        "\tSHOW HOSTS",
        "\tSHOW STATS|STATS_TOTALS|STATS_AVERAGES|TOTALS",
        "\tSET key = arg",
        "\tRELOAD",
        "\tPAUSE [<db>]",
        "\tRESUME [<db>]",
        "\tDISABLE <db>",
        "\tENABLE <db>",
        "\tRECONNECT [<db>]",
        "\tKILL [<db>]",
        "\tKILL_CLIENT <client_id>",
        "\tSUSPEND",
        "\tSHUTDOWN",
        "\tSHUTDOWN WAIT_FOR_SERVERS|WAIT_FOR_CLIENTS",
        "\tWAIT_CLOSE [<db>]",
    };
    /* One NOTICE, the commands in its DETAIL, as PgBouncer 1.25 sends it. */
    pktbuf_start(&b, 'N');
    static const char *const fields[][2] = {
        {"S", "NOTICE"}, {"V", "NOTICE"}, {"C", "00000"}, {"M", "Console usage"}};
    for (size_t i = 0; i < 4; i++) {
        pktbuf_put_byte(&b, (uint8_t)fields[i][0][0]);
        pktbuf_put_string(&b, fields[i][1]);
    }
    pktbuf_put_byte(&b, 'D');
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        pktbuf_put_byte(&b, '\n');
        pktbuf_put_bytes(&b, lines[i], strlen(lines[i]));
    }
    pktbuf_put_byte(&b, 0);
    pktbuf_put_byte(&b, 0);
    pktbuf_finish(&b);
    admin_reply(c, &b, "SHOW");
}

static void show_stats_plain(struct client *c)
{
    show_stats(c, 0);
}
static void show_stats_totals(struct client *c)
{
    show_stats(c, 1);
}
static void show_stats_averages(struct client *c)
{
    show_stats(c, 2);
}
static void show_all_sockets(struct client *c)
{
    show_sockets(c, false);
}
static void show_active_sockets(struct client *c)
{
    show_sockets(c, true);
}
static void show_peer_pools(struct client *c)
{
    static const struct col cols[] = {{"peer_id", 'I'},
                                      {"cl_active_cancel_req", 'I'},
                                      {"cl_waiting_cancel_req", 'I'},
                                      {"sv_active_cancel", 'I'},
                                      {"sv_login", 'I'}};
    struct result r;
    res_begin(&r, cols, 5);
    for (int i = 0; i < G.cf->npeers; i++) {
        int id = G.cf->peers[i].peer_id, active, waiting, sv_active, sv_login;
        if (id == G.cf->g.peer_id)
            continue; /* this process's own entry is ignored, as PgBouncer does */
        cancel_peer_counts(id, &active, &waiting, &sv_active, &sv_login);
        row_begin(&r);
        row_int(&r, id);
        row_int(&r, active);
        row_int(&r, waiting);
        row_int(&r, sv_active);
        row_int(&r, sv_login);
        row_end(&r);
    }
    res_send(c, &r);
}
/* PgBouncer 1.25's: every cached name, seconds left before it is asked again, and its
 * addresses as "addr:0" (PgBouncer prints the port of the sockaddr, which DNS leaves 0). */
static void show_dns_hosts(struct client *c)
{
    static const struct col cols[] = {{"hostname", 'T'}, {"ttl", 'L'}, {"addrs", 'T'}};
    struct result r;
    res_begin(&r, cols, 3);
    uint64_t now = now_usec();
    struct list *it;
    list_for_each(it, dns_names())
    {
        const struct dns_name *dn = container_of(it, struct dns_name, node);
        char addrs[DNS_MAX_ADDRS * (DNS_ADDRLEN + 3)] = "";
        size_t al = 0;
        for (int i = 0; i < dn->naddrs && al < sizeof(addrs); i++)
            al += (size_t)snprintf(addrs + al, sizeof(addrs) - al, "%s%s:0", i ? "," : "",
                                   dn->addrs[i]);
        row_begin(&r);
        row_str(&r, dn->name);
        row_int(&r, dns_cache_ttl_left(dn, now));
        row_str(&r, addrs);
        row_end(&r);
    }
    res_send(c, &r);
}

/* PgBouncer 1.25's: every zone with cached names, its last SOA serial (0 until known or
 * without dns_zone_check_period) and how many names it has. */
static void show_dns_zones(struct client *c)
{
    static const struct col cols[] = {{"zonename", 'T'}, {"serial", 'L'}, {"count", 'I'}};
    struct result r;
    res_begin(&r, cols, 3);
    struct list *it;
    list_for_each(it, dns_zones())
    {
        const struct dns_zone *z = container_of(it, struct dns_zone, node);
        if (z->count == 0)
            continue;
        row_begin(&r);
        row_str(&r, z->name);
        row_int(&r, (long long)z->serial);
        row_int(&r, z->count);
        row_end(&r);
    }
    res_send(c, &r);
}

/* What SHOW can show. */
static const struct {
    const char *name;
    void (*run)(struct client *c);
} SHOW_TABLE[] = {
    {"pools", show_pools},
    {"clients", show_clients},
    {"servers", show_servers},
    {"databases", show_databases},
    {"users", show_users},
    {"stats", show_stats_plain},
    {"stats_totals", show_stats_totals},
    {"stats_averages", show_stats_averages},
    {"totals", show_totals},
    {"lists", show_lists},
    {"config", show_config},
    {"version", show_version},
    {"state", show_state},
    {"mem", show_mem},
    {"fds", show_fds},
    {"sockets", show_all_sockets},
    {"active_sockets", show_active_sockets},
    {"peers", show_peers},
    {"peer_pools", show_peer_pools},
    {"dns_hosts", show_dns_hosts},
    {"dns_zones", show_dns_zones},
    {"help", show_help},
    {"hosts", show_hosts},
};

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* The SHOWs whose builders use their client only to send the result (so they may run with
 * none): what the metrics endpoint reads. */
static const char *const ROWS_SHOWS[] = {"pools",  "stats",   "databases", "lists",
                                         "config", "version", "hosts"};

bool show_rows(const char *what, const struct show_sink *out)
{
    bool allowed = false;
    for (size_t i = 0; i < N_ELEMS(ROWS_SHOWS); i++)
        allowed = allowed || strcmp(what, ROWS_SHOWS[i]) == 0;
    if (!allowed || rows_sink)
        return false;
    for (size_t i = 0; i < N_ELEMS(SHOW_TABLE); i++) {
        if (strcmp(SHOW_TABLE[i].name, what) != 0)
            continue;
        rows_sink = out;
        SHOW_TABLE[i].run(NULL);
        rows_sink = NULL;
        return true;
    }
    return false;
}

int show_find(const char *name)
{
    for (size_t i = 0; i < N_ELEMS(SHOW_TABLE); i++)
        if (strcmp(SHOW_TABLE[i].name, name) == 0)
            return (int)i;
    return -1;
}

const char *show_name(int index)
{
    return SHOW_TABLE[index].name;
}

void show_run(struct client *c, int index)
{
    SHOW_TABLE[index].run(c);
}
