/*
 * server.c: connections to PostgreSQL: connect (to an address dns.c resolved), the login exchange
 * (driving proto.c's state machine) after the SSLRequest and TLS handshake that
 * server_tls_sslmode asks for, the server half of the relay (answers to the pooler's own
 * prepared-statement requests dropped, its synthesized ones put in place: prepared.c) and
 * internal queries.
 * It never chooses which client a server serves (pool.c does); cancel.c forwards cancels.
 */
#include "pgusher/server.h"

#include "pgusher/auth_query.h"

#include "pgusher/balance.h"
#include "pgusher/cancel.h"
#include "pgusher/client.h"
#include "pgusher/log.h"
#include "pgusher/pool.h"
#include "pgusher/prepared.h"
#include "pgusher/proto.h"
#include "pgusher/runtime.h"
#include "pgusher/takeover.h"
#include "pgusher/tls.h"
#include "pgusher/varcache.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool server_tls_obsolete(const struct server *s)
{
    return s->tls_gen != tls_connect_gen();
}

void server_log(struct server *s, int level, const char *fmt, ...)
{
    if (!log_enabled((enum log_level)level))
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_msg((enum log_level)level, "S-%p: %s/%s@%s:%d %s", (void *)s, s->pool->db->name,
            s->pool->user, s->host, s->port, msg);
}

static void on_read(struct stream *st);
static void on_error(struct stream *st, int err);
static void on_drain(struct stream *st);
static void on_connect(struct stream *st, int status);
static void on_closed(struct stream *st);
static void on_tls_ready(struct stream *st, bool ok, const char *why);

static const struct stream_ops server_ops = {
    .on_read = on_read,
    .on_error = on_error,
    .on_drain = on_drain,
    .on_connect = on_connect,
    .on_closed = on_closed,
    .on_tls_ready = on_tls_ready,
};

static void start_connect(struct server *s);

static void start_connect(struct server *s)
{
    int r = stream_connect_tcp(&s->st, (const struct sockaddr *)&s->addr);
    if (r != 0)
        server_close(s, "connect failed: %s", uv_strerror(r));
}
/* A server of pool p on backend be, counted, in SV_LOGIN, its stream made but not connected:
 * what a launched and an adopted (online restart) connection both start as. NULL when out of
 * memory or the stream could not be made. */
static struct server *server_new(struct pool *p, struct backend *be)
{
    struct server *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    bool is_unix = be->host[0] == '/';
    int r = is_unix ? stream_init_pipe(&s->st, G.loop, &server_ops, s)
                    : stream_init_tcp(&s->st, G.loop, &server_ops, s);
    if (r != 0) {
        free(s);
        return NULL;
    }
    s->be = be;
    s->host_slot = -1;
    backend_ref(be);
    be->sv_count++;
    snprintf(s->host, sizeof(s->host), "%s", be->host);
    s->port = be->port;
    if (is_unix)
        snprintf(s->unix_path, sizeof(s->unix_path), "%s/.s.PGSQL.%d", be->host, be->port);
    list_init(&s->node);
    s->pool = p;
    s->id = ++G.next_id;
    s->tx_status = 'I';
    s->connect_time = s->request_time = s->last_used = now_usec();
    s->connect_wall = time(NULL);
    pktbuf_init(&s->login_params);
    s->tls_gen = tls_connect_gen();
    server_set_state(s, SV_LOGIN);
    p->db->server_count++;
    p->db->sv_refs++;
    G.server_count++;
    runtime_count_peak();
    return s;
}

struct server *server_launch(struct pool *p)
{
    return server_launch_for(p, NULL);
}

struct server *server_launch_for(struct pool *p, struct client *repl)
{
    struct database *db = p->db;
    int elig[CF_MAX_HOSTS], conns[CF_MAX_HOSTS];
    int n = database_eligible(db, elig, NULL, 0);
    if (n == 0)
        return NULL; /* nothing can serve now; clients wait, the health checks will tell */
    for (int i = 0; i < db->nbackends; i++)
        conns[i] = db->backends[i]->sv_count;
    /* pool.c's hint is a host it just chose (eligible, or a primary that a client must read
     * its own writes from): taken unless that host went down since. */
    int pick = -1, hint = p->launch_hint;
    if (hint >= 0 && hint < db->nbackends && db->backends[hint]->hc.state != BE_DOWN)
        pick = hint;
    p->launch_hint = -1;
    if (pick < 0)
        pick = lb_pick(elig, n, database_lb_policy(db), &db->rr_next, conns, (unsigned)rand());
    struct backend *be = db->backends[pick];
    struct server *s = server_new(p, be);
    if (!s)
        return NULL;
    s->host_slot = pick;
    const char *host = be->host;
    int port = be->port;
    bool is_unix = s->unix_path[0] != 0;
    /* Made under the server TLS settings in force now, whatever the server answers. */
    s->tls_ctx = tls_ctx_ref(tls_connect_ctx());
    if (repl) {
        s->replication = repl->replication;
        s->repl_client = repl;
        repl->repl_server = s;
        p->n_repl_login++;
    }

    if (is_unix) {
        stream_connect_unix(&s->st, s->unix_path);
    } else {
        /* Host names were resolved by dns.c: a backend's host is an address. */
        struct sockaddr_in *in4 = (struct sockaddr_in *)&s->addr;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&s->addr;
        if (uv_ip4_addr(host, port, in4) == 0 || uv_ip6_addr(host, port, in6) == 0)
            start_connect(s);
        else
            server_close(s, "server DNS lookup failed: %s is not an address", host);
    }
    return s;
}

static void login_fail(struct server *s, const char *sqlstate, const char *msg, bool auth);
static const char *login_password(struct server *s);

int server_host_slot(struct server *s)
{
    const struct database *db = s->pool->db;
    if (s->host_slot >= 0 && s->host_slot < db->nbackends && db->backends[s->host_slot] == s->be)
        return s->host_slot;
    s->host_slot = -1;
    for (int i = 0; i < db->nbackends && s->host_slot < 0; i++)
        if (db->backends[i] == s->be)
            s->host_slot = i;
    return s->host_slot;
}

/* Start the login exchange (proto.c) and send the startup packet. */
static void send_startup(struct server *s)
{
    struct pool *p = s->pool;
    const struct cf_database *cf = p->db->cf;
    s->login = malloc(sizeof(*s->login));
    if (!s->login || !proto_login_init(s->login, p->user, login_password(s),
                                       p->have_scram_keys ? p->scram_client_key : NULL,
                                       p->have_scram_keys ? p->scram_server_key : NULL,
                                       G.cf->g.server_require_auth_mask)) {
        free(s->login);
        s->login = NULL;
        login_fail(s, "53200", "out of memory", false);
        return;
    }
    /* A replication server is its client's alone: the client's parameters go in the
     * startup packet, as a walsender takes no SET afterwards. */
    const struct varcache *cv = s->repl_client ? &s->repl_client->vars : NULL;
    const char *const params[][2] = {
        {"user", p->user},
        {"database", cf->dbname ? cf->dbname : p->db->name},
        {"client_encoding",
         cv && cv->val[VAR_CLIENT_ENCODING] ? cv->val[VAR_CLIENT_ENCODING] : cf->client_encoding},
        {"datestyle", cv && cv->val[VAR_DATESTYLE] ? cv->val[VAR_DATESTYLE] : cf->datestyle},
        {"timezone", cv && cv->val[VAR_TIMEZONE] ? cv->val[VAR_TIMEZONE] : cf->timezone},
        {"application_name", cv && cv->val[VAR_APPLICATION_NAME] ? cv->val[VAR_APPLICATION_NAME]
                                                                 : cf->application_name},
        {"replication", s->replication == REPL_LOGICAL    ? "database"
                        : s->replication == REPL_PHYSICAL ? "true"
                                                          : NULL},
    };
    struct pktbuf b;
    pktbuf_init(&b);
    proto_startup(&b, params, sizeof(params) / sizeof(params[0]));
    if (!stream_write_pktbuf(&s->st, &b)) {
        pktbuf_free(&b);
        server_close(s, "server write failed");
        return;
    }
    pktbuf_free(&b);
}

static void on_connect(struct stream *st, int status)
{
    struct server *s = st->owner;
    if (s->state == SV_CLOSING)
        return;
    if (status != 0) {
        server_close(s, "connect failed: %s", uv_strerror(status));
        return;
    }
    if (!st->is_unix) {
        struct tcp_tuning t;
        runtime_tcp_tuning(&t);
        stream_set_tcp_options(st, &t);
    }
    if (G.cf->g.log_connections) {
        char lhost[64];
        int lport;
        stream_local_addr(st, lhost, sizeof(lhost), &lport);
        server_log(s, LOG_LVL_INFO, "new connection to server (from %s:%d)", lhost, lport);
    }
    if (s->tls_ctx && !st->is_unix) {
        /* server_tls_sslmode is not disable: ask for TLS first (not over Unix sockets). */
        struct pktbuf b;
        pktbuf_init(&b);
        proto_request(&b, PROTO_SSL_REQUEST_CODE);
        s->tls_wait = true;
        bool ok = stream_write_pktbuf(&s->st, &b);
        pktbuf_free(&b);
        if (!ok) {
            server_close(s, "server write failed");
            return;
        }
    } else {
        send_startup(s);
    }
    stream_read_start(st);
}

/* The one-byte answer to our SSLRequest. */
static void process_ssl_answer(struct server *s)
{
    struct stream *st = &s->st;
    if (stream_avail(st) < 1)
        return;
    uint8_t answer = st->buf[st->rpos++];
    s->tls_wait = false;
    const char *why;
    switch (proto_ssl_answer(answer, tls_ctx_mode(s->tls_ctx) >= TLS_REQUIRE, &why)) {
    case PROTO_SSL_START:
        if (stream_start_tls(st, s->tls_ctx, s->be && s->be->name[0] ? s->be->name : s->host) !=
            0) {
            char msg[300];
            snprintf(msg, sizeof(msg), "TLS startup failed: %s", stream_tls_error(st));
            server_log(s, LOG_LVL_WARNING, "%s", msg);
            login_fail(s, "08P01", msg, false);
        }
        return; /* on_tls_ready sends the startup packet */
    case PROTO_SSL_PLAIN:
        send_startup(s);
        return;
    case PROTO_SSL_REFUSED:
        /* A configuration mismatch, not an unavailable host: always worth a line. */
        server_log(s, LOG_LVL_WARNING, "login refused: %s (server_tls_sslmode requires TLS)", why);
        login_fail(s, "08P01", why, false);
        return;
    case PROTO_SSL_BAD:
        server_log(s, LOG_LVL_WARNING, "login refused: %s (0x%02x)", why, answer);
        login_fail(s, "08P01", why, false);
        return;
    }
}

static void on_tls_ready(struct stream *st, bool ok, const char *why)
{
    struct server *s = st->owner;
    if (s->state != SV_LOGIN)
        return;
    if (!ok) {
        /* A certificate that does not verify, a protocol or cipher mismatch: the login
         * fails, always with a line saying why. */
        char msg[300];
        snprintf(msg, sizeof(msg), "TLS handshake error: %s", why ? why : "unknown");
        server_log(s, LOG_LVL_WARNING, "login refused: %s", msg);
        login_fail(s, "08006", msg, false);
        return;
    }
    if (G.cf->g.log_connections) {
        char desc[128];
        stream_tls_describe(st, desc, sizeof(desc));
        server_log(s, LOG_LVL_INFO, "SSL established: %s", desc);
    }
    send_startup(s);
}

/* The password to log in with: the database entry's, else the auth file's, else the secret
 * auth_query found for the pool's user. */
static const char *login_password(struct server *s)
{
    const struct cf_database *cf = s->pool->db->cf;
    if (cf->password && (!cf->user || strcmp(cf->user, s->pool->user) == 0))
        return cf->password;
    const struct cf_authuser *au = config_find_authuser(G.cf, s->pool->user);
    return au ? au->secret : s->pool->aq_secret;
}

static void login_free(struct server *s)
{
    if (s->login) {
        proto_login_reset(s->login);
        free(s->login);
        s->login = NULL;
    }
}

static void login_fail(struct server *s, const char *sqlstate, const char *msg, bool auth)
{
    snprintf(s->fail_sqlstate, sizeof(s->fail_sqlstate), "%s", sqlstate);
    s->fail_auth = auth;
    s->fail_msg = msg;
    server_close(s, "server login failed: %s", msg);
}

/* The login state machine said no: the server refused us, cannot serve, or was refused. */
static void login_refused(struct server *s)
{
    struct proto_login *lg = s->login;
    if (lg->fail == PROTO_FAIL_NO_METHOD || lg->fail == PROTO_FAIL_PROTOCOL)
        /* Our own refusal (server_require_auth, a broken or hostile server): always worth a
         * line, whatever log_disconnections says. */
        server_log(s, LOG_LVL_WARNING, "login refused: %s", lg->fail_msg);
    login_fail(s, lg->fail_sqlstate, lg->fail_msg, proto_login_failed_auth(lg));
}

/* The SQLSTATE and message of an ErrorResponse body, for logs. */
static void parse_error(const uint8_t *body, uint32_t len, char *msg, size_t msglen,
                        char sqlstate[6])
{
    struct proto_error e;
    proto_parse_error(body, len, &e);
    snprintf(msg, msglen, "%s", e.message);
    memcpy(sqlstate, e.sqlstate, 6);
}

static void handle_param_status(struct server *s, const uint8_t *body, uint32_t len)
{
    struct pktreader r;
    pktreader_init(&r, body, len);
    const char *k = pktreader_string(&r);
    const char *v = pktreader_string(&r);
    if (!k || !v)
        return;
    if (strcmp(k, "in_hot_standby") == 0 && s->be) {
        /* PostgreSQL 14+ reports this at login and when a standby is promoted. */
        backend_set_role(s->be, strcmp(v, "on") == 0 ? ROLE_STANDBY : ROLE_PRIMARY,
                         "in_hot_standby");
        return;
    }
    enum var_id id = varcache_lookup(k);
    if (id == VAR_COUNT)
        return;
    varcache_set(&s->vars, id, v);
    /* A client's own SET changes what it wants from every later server too. */
    if (s->link && s->iq == IQ_NONE)
        varcache_set(&s->link->vars, id, v);
}

static void login_complete(struct server *s)
{
    struct pool *p = s->pool;
    s->ready = true;
    s->login_done = true;
    login_free(s);
    p->last_login_failure = 0;
    if (!p->welcome_ok && s->replication == REPL_NONE) {
        pktbuf_reset(&p->welcome);
        pktbuf_put_bytes(&p->welcome, s->login_params.data, s->login_params.len);
        varcache_copy(&p->welcome_vars, &s->vars);
        p->welcome_ok = !p->welcome.failed;
    }
    if (s->be && !database_role_acceptable(p->db, s->be->role)) {
        /* The role was unknown when this host was picked; now it is known not to fit. */
        s->role_mismatch = true;
        server_close(s, "server is a %s, database %s wants target_session_attrs=%s",
                     backend_role_name(s->be->role), p->db->name,
                     config_tsa_name(database_tsa(p->db)));
        return;
    }
    if (s->replication != REPL_NONE) {
        pool_repl_server_ready(s); /* no connect_query: a walsender may not run it */
        pktbuf_free(&s->login_params);
        return;
    }
    pktbuf_free(&s->login_params);
    const char *cq = p->db->cf->connect_query;
    if (cq && *cq) {
        server_run_internal(s, IQ_CONNECT, cq);
        return;
    }
    pool_server_idle(s);
}

/* Login phase: every message must arrive whole; proto.c decides what each one means. */
static void process_login(struct server *s)
{
    struct stream *st = &s->st;
    uint8_t type;
    const uint8_t *body;
    uint32_t blen;
    int r;
    while (!st->closing && s->state == SV_LOGIN && s->login &&
           (r = stream_take_msg(st, PROTO_MAX_LOGIN_MSG_LEN, &type, &body, &blen)) != 0) {
        if (r < 0) {
            login_fail(s, "08P01", "bad packet from server during login", false);
            return;
        }
        struct proto_login *lg = s->login;
        switch (proto_login_feed(lg, type, body, blen)) {
        case PROTO_LOGIN_CONTINUE:
            break;
        case PROTO_LOGIN_REPLY:
            if (!stream_write(&s->st, lg->reply.data, lg->reply.len)) {
                server_close(s, "server write failed");
                return;
            }
            break;
        case PROTO_LOGIN_PARAM:
            handle_param_status(s, body, blen);
            pktbuf_put_bytes(&s->login_params, body - 5, blen + 5);
            break;
        case PROTO_LOGIN_READY:
            if (lg->have_key) {
                s->be_pid = lg->be_pid;
                s->be_key = lg->be_key;
            }
            login_complete(s);
            return;
        case PROTO_LOGIN_FAILED:
            login_refused(s);
            return;
        }
    }
}

static bool flush_to_client(struct server *s, uint32_t from)
{
    struct client *c = s->link;
    uint32_t n = s->st.rpos - from;
    if (n == 0 || !c)
        return true;
    s->pool->stats.bytes_sent += n;
    return client_send(c, s->st.buf + from, n);
}

static void internal_done(struct server *s)
{
    enum internal_query iq = s->iq;
    bool failed = s->iq_failed;
    s->iq = IQ_NONE;
    s->iq_failed = false;
    switch (iq) {
    case IQ_CONNECT:
        /* As PgBouncer 1.25: a failing connect_query does not fail the login (the error was
         * logged above); the server is handed out all the same. */
        pool_server_idle(s);
        return;
    case IQ_CHECK:
        /* The check asks "is this connection alive?": a server that answered, even with an
         * error (a server_check_query that does not work), and is out of any transaction,
         * is alive. PgBouncer 1.25 keeps it too; closing it would reconnect in a loop. */
        failed = false;
        /* fall through */
    case IQ_RESET:
        if (failed || s->tx_status != 'I') {
            server_close(s, "%s failed", iq == IQ_RESET ? "reset query" : "check query");
            return;
        }
        s->dirty = false;
        s->last_used = now_usec(); /* checked just now: no new check for server_check_delay */
        pool_server_idle(s);
        return;
    case IQ_SETVARS:
        if (s->link)
            client_resume(s->link);
        return;
    case IQ_AUTH: /* auth_query.c reads its own results */
    case IQ_NONE:
        return;
    }
}

/* A failing server_check_query fails on every check (with server_check_delay = 0, on
 * every transaction): say so once a minute, not each time. */
static bool check_warning_due(void)
{
    static uint64_t last;
    uint64_t now = now_usec();
    if (last && now - last < 60 * USEC_PER_SEC)
        return false;
    last = now;
    return true;
}

/* Results of an internal query: swallowed, only their effects are kept. */
static void process_internal(struct server *s)
{
    struct stream *st = &s->st;
    while (!st->closing && s->iq != IQ_NONE && stream_avail(st) > 0) {
        if (s->pkt_remain) {
            stream_pass(st, &s->pkt_remain);
            continue;
        }
        if (stream_avail(st) < 5)
            return;
        const uint8_t *p = st->buf + st->rpos;
        uint8_t type = p[0];
        uint32_t len = pkt_get32(p + 1);
        if (len < 4) {
            server_close(s, "bad packet from server");
            return;
        }
        bool small = len < st->cap;
        if ((type == 'Z' || type == 'S' || type == 'E' || type == 'C') && small) {
            if (stream_avail(st) < len + 1)
                return;
            st->rpos += len + 1;
            if (type == 'C') {
                /* server_reset_query = DISCARD ALL: nothing is prepared on it any more. */
                if (prepared_wipes_all(p + 5, len - 4))
                    prepared_server_forget(s);
            } else if (type == 'S') {
                handle_param_status(s, p + 5, len - 4);
            } else if (type == 'E') {
                char msg[512], state[6];
                parse_error(p + 5, len - 4, msg, sizeof(msg), state);
                if (s->iq != IQ_CHECK || check_warning_due())
                    server_log(s, LOG_LVL_WARNING, "internal query failed: %s", msg);
                s->iq_failed = true;
            } else {
                s->tx_status = len >= 5 ? (char)p[5] : 'I';
                if (s->expect_rfq > 0)
                    s->expect_rfq--;
                if (s->expect_rfq == 0) {
                    internal_done(s);
                    return;
                }
            }
            continue;
        }
        st->rpos += 5;
        s->pkt_remain = len - 4;
    }
}

static void finish_transaction(struct server *s)
{
    struct client *c = s->link;
    struct pool *p = s->pool;
    uint64_t now = now_usec();
    if (c)
        pool_transaction_ended(c);
    if (c && c->xact_start) {
        p->stats.xact_count++;
        if (s->be)
            s->be->xacts++;
        p->stats.xact_time += now - c->xact_start;
        c->xact_start = 0;
    }
}

/* Synthesized answers (ParseComplete, CloseComplete) now due go to the client, after the
 * server bytes in [*from, rpos). False: the client write failed. */
static struct pktbuf synth_out;

static bool send_synth_at(struct server *s, uint32_t *from)
{
    pktbuf_reset(&synth_out);
    if (!prepared_take_synth(s, &synth_out))
        return true;
    if (!flush_to_client(s, *from))
        return false;
    *from = s->st.rpos;
    s->pool->stats.bytes_sent += synth_out.len;
    return !s->link || client_send(s->link, synth_out.data, synth_out.len);
}

void server_send_synth(struct server *s)
{
    if (s->pkt_remain == 0 && s->link && !s->st.closing) {
        uint32_t from = s->st.rpos;
        send_synth_at(s, &from);
    }
}

/* Linked to a client: pass everything through, watching ReadyForQuery and ParameterStatus. */
static void process_active(struct server *s)
{
    struct stream *st = &s->st;
    struct client *c = s->link;
    uint32_t from = st->rpos;
    while (stream_avail(st) > 0) {
        if (s->pkt_remain) {
            stream_pass(st, &s->pkt_remain);
            continue;
        }
        if (stream_avail(st) < 5)
            break;
        const uint8_t *p = st->buf + st->rpos;
        uint8_t type = p[0];
        uint32_t len = pkt_get32(p + 1);
        if (len < 4) {
            flush_to_client(s, from);
            server_close(s, "bad packet from server");
            return;
        }
        if (!prepared_server_quiet(s) && type != 'S') {
            /* Prepared-statement tracking: answers the pooler owes come first, and
             * responses to the pooler's own requests are dropped. */
            bool small = len < st->cap, whole = stream_avail(st) >= len + 1;
            if (small && !whole && (type == '1' || type == '3' || type == 'C' || type == 'Z'))
                break;
            if (!send_synth_at(s, &from))
                return;
            if (prepared_server_msg(s, type, small && whole ? p + 5 : NULL, len - 4) ==
                PS_SWALLOW) {
                if (!flush_to_client(s, from))
                    return;
                st->rpos += len + 1; /* ParseComplete or CloseComplete: 5 bytes */
                from = st->rpos;
                continue;
            }
        }
        if ((type == 'Z' || type == 'S') && len < st->cap) {
            if (stream_avail(st) < len + 1)
                break;
            st->rpos += len + 1;
            if (type == 'S') {
                handle_param_status(s, p + 5, len - 4);
                continue;
            }
            s->tx_status = len >= 5 ? (char)p[5] : 'I';
            if (s->expect_rfq > 0)
                s->expect_rfq--;
            if (c->query_start && s->expect_rfq == 0) {
                s->pool->stats.query_time += now_usec() - c->query_start;
                c->query_start = 0;
            }
            if (s->tx_status == 'I' && s->expect_rfq == 0)
                finish_transaction(s);
            /* A replication connection is a session whatever the pool's mode. */
            int mode = s->replication != REPL_NONE ? POOL_SESSION : pool_mode(s->pool);
            if (mode != POOL_SESSION && s->expect_rfq == 0) {
                if (mode == POOL_STATEMENT && s->tx_status != 'I') {
                    /* Everything before this ReadyForQuery reaches the client; the 'T' or 'E'
                     * itself does not (PgBouncer's behaviour), the error replaces it. */
                    st->rpos -= len + 1;
                    flush_to_client(s, from);
                    st->rpos += len + 1;
                    if (!c->st.closing)
                        client_error_close(c, "08P01",
                                           "transaction blocks not allowed in statement pooling "
                                           "mode");
                    return;
                }
                if (stream_avail(st) == 0 && pool_server_done(s, c)) {
                    if (!flush_to_client(s, from))
                        return;
                    s->last_used = now_usec();
                    pool_unlink(c);
                    /* The client may already have sent its next transaction. */
                    client_resume(c);
                    return;
                }
            }
            continue;
        }
        if (type == 'E' && s->be)
            s->be->errors++;
        st->rpos += 5;
        s->pkt_remain = len - 4;
    }
    if (!flush_to_client(s, from))
        return;
    if (s->pkt_remain == 0 && !send_synth_at(s, &from))
        return;
    server_update_reading(s);
}

/* Not linked: a server should be silent; an error means it is going away. */
static void process_idle(struct server *s)
{
    struct stream *st = &s->st;
    uint8_t type;
    const uint8_t *body;
    uint32_t blen;
    int r;
    while (!st->closing && (r = stream_take_msg(st, UINT32_MAX, &type, &body, &blen)) != 0) {
        if (r < 0) {
            server_close(s, "bad packet from idle server");
            return;
        }
        if (type == 'E') {
            char msg[512], state[6];
            parse_error(body, blen, msg, sizeof(msg), state);
            server_close(s, "server sent error while idle: %s", msg);
            return;
        }
        if (type == 'S')
            handle_param_status(s, body, blen);
    }
}

static void process(struct server *s)
{
    if (s->tls_wait) {
        process_ssl_answer(s);
        if (s->tls_wait || s->st.closing || stream_tls_handshaking(&s->st))
            return; /* more to come, failed, or the handshake runs */
    }
    if (s->state == SV_LOGIN && s->login)
        process_login(s);
    else if (s->iq == IQ_AUTH)
        auth_query_process(s);
    else if (s->iq != IQ_NONE) /* also connect_query, still in SV_LOGIN */
        process_internal(s);
    else if (s->state == SV_ACTIVE && s->link)
        process_active(s);
    else
        process_idle(s);
}

static void on_read(struct stream *st)
{
    struct server *s = st->owner;
    process(s);
    if (!st->closing)
        stream_compact(st);
}

void server_update_reading(struct server *s)
{
    if (s->st.closing || s->state == SV_CLOSING)
        return;
    bool want = true;
    if (s->state == SV_ACTIVE && s->link && s->iq == IQ_NONE)
        want = s->link->st.queued == 0;
    if (want && (stream_full(&s->st) || G.suspended || takeover_handed_over()))
        want = false; /* full, or SUSPEND: what it sends stays in the kernel until RESUME (or
                       * for the process that takes over) */
    if (want)
        stream_read_start(&s->st);
    else
        stream_read_stop(&s->st);
}

void server_resume(struct server *s)
{
    if (s->st.closing || s->state == SV_CLOSING)
        return;
    if (stream_avail(&s->st) > 0)
        process(s);
    if (!s->st.closing) {
        stream_compact(&s->st);
        server_update_reading(s);
    }
}

static void on_error(struct stream *st, int err)
{
    struct server *s = st->owner;
    if (s->state == SV_LOGIN) {
        char msg[256];
        snprintf(msg, sizeof(msg), "server closed the connection during login: %s",
                 err == UV_EOF ? "EOF" : uv_strerror(err));
        login_fail(s, "08006", msg, false);
        return;
    }
    if (s->be)
        backend_request_probe(s->be); /* is the host still there? */
    if (err == UV_EOF)
        server_close(s, "server closed the connection unexpectedly");
    else
        server_close(s, "server connection error: %s", uv_strerror(err));
}

static void on_drain(struct stream *st)
{
    struct server *s = st->owner;
    /* The server took what the client sent: the client may send more. */
    if (s->link)
        client_resume(s->link);
}

bool server_run_internal(struct server *s, enum internal_query iq, const char *sql)
{
    struct pktbuf b;
    pktbuf_init(&b);
    pktbuf_start(&b, 'Q');
    pktbuf_put_string(&b, sql);
    pktbuf_finish(&b);
    s->iq = iq;
    s->iq_failed = false;
    s->expect_rfq++;
    bool ok = stream_write_pktbuf(&s->st, &b);
    pktbuf_free(&b);
    if (!ok) {
        server_close(s, "server write failed");
        return false;
    }
    server_update_reading(s);
    return true;
}

static void on_closed(struct stream *st)
{
    struct server *s = st->owner;
    list_del(&s->node);
    s->pool->db->sv_refs--;
    if (s->be) {
        s->be->sv_count--;
        backend_unref(s->be);
    }
    varcache_free(&s->vars);
    prepared_server_free(s);
    pktbuf_free(&s->login_params);
    login_free(s);
    tls_ctx_unref(s->tls_ctx);
    free(s);
}

void server_close(struct server *s, const char *fmt, ...)
{
    if (s->state == SV_CLOSING)
        return;
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    if (G.cf->g.log_disconnections)
        server_log(s, LOG_LVL_INFO, "closing because: %s (age=%llus)", reason,
                   (unsigned long long)((now_usec() - s->connect_time) / 1000000));
    struct pool *p = s->pool;
    struct client *c = s->link;
    bool was_login = s->state == SV_LOGIN && !s->role_mismatch;
    if (was_login && s->replication == REPL_NONE) {
        /* Set before pool_service runs, so a failing host is not hammered: a refusal of
         * our credentials holds the pool back (server_login_retry); an unavailable host is
         * marked down instead, so the other hosts keep serving. */
        if (s->fail_auth || G.cf->g.health_check_period <= 0)
            p->last_login_failure = now_usec();
        if (!s->fail_sqlstate[0])
            memcpy(s->fail_sqlstate, "08006", 6);
    }
    if (s->aq_client)
        auth_query_server_gone(s);
    /* A replication client still waiting for this server: its login failed (as 1.25 tells
     * it, without the server's words); it is not the pool's failure (no backoff, nobody
     * else told). */
    struct client *rc = s->state == SV_LOGIN && !s->link ? s->repl_client : NULL;
    if (s->repl_client) {
        s->repl_client->repl_server = NULL;
        s->repl_client = NULL;
    }
    bool pool_failure = was_login && s->replication == REPL_NONE;
    server_set_state(s, SV_CLOSING);
    cancel_forget_server(s);
    p->db->server_count--;
    G.server_count--;
    if (c) {
        s->link = NULL;
        c->link = NULL;
        if (!c->st.closing)
            client_error_close(c, "08006", "server conn crashed?");
    }
    if (s->ready && !s->st.closing && !s->st.error_reported) {
        /* Say goodbye politely: a Terminate message. */
        static const uint8_t term[5] = {'X', 0, 0, 0, 4};
        stream_write(&s->st, term, sizeof(term)); /* stream_close pushes it out */
    }
    stream_close(&s->st);
    if (was_login) {
        /* Not there, starting up, shutting down or full: the host is unavailable. */
        if (s->be && !s->fail_auth)
            backend_passive_failure(s->be, reason);
        if (pool_failure)
            pool_login_failed(p, s->fail_sqlstate, s->fail_msg ? s->fail_msg : reason,
                              s->fail_auth);
        s->fail_msg = NULL;
    }
    if (rc && !rc->st.closing)
        client_error_close(rc, "08P01", "login failed");
    pool_service(p);
}

/* ---------------------------------------------------------------- online restart */

struct server *server_adopt(int fd, struct pool *p, struct backend *be,
                            const struct takeover_row *row)
{
    struct server *s = server_new(p, be);
    if (!s) {
        close(fd);
        return NULL;
    }
    bool is_unix = s->unix_path[0] != 0;
    /* Plaintext (TLS connections are not handed over), as if made under the settings in
     * force, so that server_tls_obsolete does not close it on release (server_new's
     * generation). */
    if (stream_open_fd(&s->st, fd) != 0) {
        close(fd);
        server_close(s, "takeover: could not adopt the socket");
        return NULL;
    }
    if (!is_unix) {
        struct sockaddr_in *in4 = (struct sockaddr_in *)&s->addr;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&s->addr;
        if (uv_ip4_addr(be->host, be->port, in4) != 0)
            uv_ip6_addr(be->host, be->port, in6);
    }
    s->be_pid = row->cancel_pid;
    s->be_key = row->cancel_key;
    takeover_row_vars(row, &s->vars);
    s->ready = true;
    s->login_done = true;
    server_set_state(s, SV_IDLE);
    server_update_reading(s);
    return s;
}
