/*
 * health.c: active health checks. Each backend has a libuv timer; every health_check_period a
 * probe asks for role and replay position within health_check_timeout. The probe logs in as
 * health_check_user once (proto.c's login, the same exchange and the same server_require_auth
 * rules as server connections) and keeps its connection for the next checks: no backend fork
 * and no login per check. A connection the server drops is
 * replaced at once (a refused reconnect marks the host down). Without a health_check_user an
 * SSLRequest answered by the postmaster proves liveness (and leaves no line in its log).
 * Probes speak the server connections' TLS (tls_connect_ctx, server_tls_sslmode): SSLRequest,
 * handshake, certificate checks; a refusal or a certificate failure fails the check.
 * Results go to backend.c; nothing here touches pools.
 */
#include "pgusher/health.h"

#include "pgusher/balance.h"
#include "pgusher/config.h"
#include "pgusher/log.h"
#include "pgusher/pktbuf.h"
#include "pgusher/proto.h"
#include "pgusher/runtime.h"
#include "pgusher/scram.h"
#include "pgusher/server.h"
#include "pgusher/stream.h"
#include "pgusher/tls.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Role; replay (standby) or current (primary) LSN; seconds since the last replayed
 * transaction (since startup when none was replayed yet); received LSN (standby). */
#define PROBE_QUERY                                                                                \
    "SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() "     \
    "ELSE pg_current_wal_insert_lsn() END, COALESCE(EXTRACT(EPOCH FROM now() - "                   \
    "COALESCE(pg_last_xact_replay_timestamp(), pg_postmaster_start_time())), 0), "                 \
    "pg_last_wal_receive_lsn()"

bool hc_feed(struct hc_state *h, bool ok, int rise, int fall)
{
    if (rise < 1)
        rise = 1;
    if (fall < 1)
        fall = 1;
    enum be_state before = h->state;
    if (ok) {
        h->fail_streak = 0;
        if (h->state != BE_UP) {
            h->ok_streak++;
            if (h->ok_streak >= rise || (h->state == BE_UNKNOWN && h->fast_start)) {
                h->state = BE_UP;
                h->ok_streak = 0;
            }
        }
    } else {
        h->ok_streak = 0;
        if (h->state != BE_DOWN) {
            h->fail_streak++;
            if (h->fail_streak >= fall) {
                h->state = BE_DOWN;
                h->fail_streak = 0;
            }
        }
    }
    if (h->state != BE_UNKNOWN)
        h->fast_start = false;
    return h->state != before;
}

bool hc_force_down(struct hc_state *h)
{
    bool changed = h->state != BE_DOWN;
    h->state = BE_DOWN;
    h->ok_streak = 0;
    h->fail_streak = 0;
    h->fast_start = false;
    return changed;
}

/* ---------------------------------------------------------------- probes */

struct probe {
    struct stream st;
    struct backend *be; /* NULL once the backend has forgotten us */
    uv_timer_t timeout;
    struct proto_login lg; /* the login exchange, until logged_in */
    bool logged_in;
    bool busy;   /* a check is in flight (the timeout runs) */
    bool closed; /* probe_close ran */
    bool have_row;
    bool bad_row;            /* a DataRow that hc_parse_probe_row refused: the check fails */
    bool liveness_only;      /* no health_check_user: SSLRequest, one byte back, done */
    bool refused;            /* the connect was refused */
    bool tls_wait;           /* SSLRequest sent, its one-byte answer not read yet */
    struct tls_ctx *tls_ctx; /* tls_connect_ctx() when it connected (referenced) */
    uint64_t tls_gen;        /* tls_connect_gen() then */
    int closing_handles;
    enum be_role role; /* from in_hot_standby, or the row */
    struct hc_probe_row row;
    uint64_t connected_at;
    uint64_t query_sent_at; /* when the check query went out: its positions are from later */
    char *login; /* "user/dbname" it logged in with: a reload that changes it reconnects */
    char sockpath[300];
};

static void probe_finish(struct probe *pr, bool ok, const char *error);

static void probe_handle_closed(uv_handle_t *h)
{
    struct probe *pr = h->data;
    if (--pr->closing_handles == 0) {
        proto_login_reset(&pr->lg);
        tls_ctx_unref(pr->tls_ctx);
        free(pr->login);
        free(pr);
    }
}

static void stream_closed(struct stream *st)
{
    probe_handle_closed((uv_handle_t *)&((struct probe *)st->owner)->timeout);
}

/* The check in flight is over: tell the backend, stop the timeout. */
static void probe_report(struct probe *pr, bool ok, const char *error)
{
    if (!pr->busy)
        return;
    pr->busy = false;
    uv_timer_stop(&pr->timeout);
    struct backend *be = pr->be;
    if (!be)
        return;
    if (ok && pr->have_row) {
        be->lag_known = true;
        be->lsn = pr->row.lsn;
        be->receive_lsn = pr->row.receive_lsn;
        be->replay_age_sec = pr->row.replay_age;
        /* The positions were read after the query went out: whatever committed before
         * that is in them (read_your_writes relies on it). */
        be->lsn_at = (int64_t)pr->query_sent_at;
        lb_behind_note(be, (usec_t)now_usec(), be->receive_lsn, be->lsn);
    }
    if (ok && pr->role != ROLE_UNKNOWN)
        backend_set_role(be, pr->role, "health check");
    if (!ok && pr->refused)
        backend_passive_failure(be, error); /* nobody listens: down at once */
    else
        backend_probe_result(be, ok, error);
    if (!ok)
        log_debug("health check of %s:%d failed: %s", be->host, be->port, error);
}

/* Drop the connection (saying goodbye when logged in) and forget the backend. */
static void probe_close(struct probe *pr)
{
    if (pr->closed)
        return;
    pr->closed = true;
    if (pr->be && pr->be->probe == pr)
        pr->be->probe = NULL;
    pr->be = NULL;
    uv_timer_stop(&pr->timeout);
    pr->closing_handles = 2;
    pr->timeout.data = pr;
    uv_close((uv_handle_t *)&pr->timeout, probe_handle_closed);
    if (pr->logged_in && !pr->st.closing && !pr->st.error_reported) {
        static const uint8_t term[5] = {'X', 0, 0, 0, 4};
        stream_write(&pr->st, term, sizeof(term)); /* stream_close pushes it out */
    }
    stream_close(&pr->st);
}

static void probe_finish(struct probe *pr, bool ok, const char *error)
{
    probe_report(pr, ok, error);
    probe_close(pr);
}

static void probe_start(struct backend *be);

/* The server dropped (or errored on) a connection we were keeping between checks: not a
 * failed check by itself; replace it now, so a server that went away is seen at once (its
 * reconnect is refused). At most once per period, in case a server drops every session. */
static void probe_lost_idle(struct probe *pr)
{
    struct backend *be = pr->be;
    uint64_t age = now_usec() - pr->connected_at;
    probe_close(pr);
    if (be && G.cf->g.health_check_period > 0 && age >= (uint64_t)G.cf->g.health_check_period)
        probe_start(be);
}

static const char *probe_password(void)
{
    const struct cf_global *g = &G.cf->g;
    if (g->health_check_password && *g->health_check_password)
        return g->health_check_password;
    if (g->health_check_user && *g->health_check_user) {
        const struct cf_authuser *au = config_find_authuser(G.cf, g->health_check_user);
        if (au && au->secret && !scram_is_secret(au->secret))
            return au->secret;
    }
    return NULL;
}

static const char *probe_user(void)
{
    const char *u = G.cf->g.health_check_user;
    return u && *u ? u : "pgusher_health_check";
}

static bool probe_send(struct probe *pr, struct pktbuf *b)
{
    bool ok = !b->failed && stream_write(&pr->st, b->data, b->len);
    pktbuf_free(b);
    if (!ok)
        probe_finish(pr, false, "write failed");
    return ok;
}

/* The login failed. A server that refuses our credentials, or asks for a method we cannot or
 * may not use, is alive and accepting connections; one that cannot serve now (starting up,
 * shutting down, full) or breaks the protocol (a bad SCRAM signature, say) fails the check. */
static void probe_login_failed(struct probe *pr)
{
    const struct proto_login *lg = &pr->lg;
    const char *st = lg->fail_sqlstate;
    bool unavailable = !strcmp(st, "57P03") || !strcmp(st, "57P01") || !strcmp(st, "57P02") ||
                       !strcmp(st, "53300") || !strcmp(st, "08006");
    char msg[600];
    snprintf(msg, sizeof(msg), "login failed: %s", lg->fail_msg);
    if (lg->fail == PROTO_FAIL_PROTOCOL)
        probe_finish(pr, false, msg); /* backend.c logs it when the host goes down */
    else if (lg->fail == PROTO_FAIL_SERVER && unavailable)
        probe_finish(pr, false, lg->fail_msg);
    else
        probe_finish(pr, true, NULL);
}

static void probe_send_query(struct probe *pr);

/* One message of the login exchange. */
static void probe_login_step(struct probe *pr, uint8_t type, const uint8_t *body, uint32_t len)
{
    struct proto_login *lg = &pr->lg;
    switch (proto_login_feed(lg, type, body, len)) {
    case PROTO_LOGIN_CONTINUE:
        return;
    case PROTO_LOGIN_REPLY:
        if (!stream_write(&pr->st, lg->reply.data, lg->reply.len))
            probe_finish(pr, false, "write failed");
        return;
    case PROTO_LOGIN_PARAM:
        if (strcmp(lg->param_name, "in_hot_standby") == 0)
            pr->role = strcmp(lg->param_value, "on") == 0 ? ROLE_STANDBY : ROLE_PRIMARY;
        return;
    case PROTO_LOGIN_READY:
        pr->logged_in = true;
        proto_login_reset(lg); /* no secrets kept for the life of the connection */
        probe_send_query(pr);
        return;
    case PROTO_LOGIN_FAILED:
        probe_login_failed(pr);
        return;
    }
}

/* An ErrorResponse after login. */
static void probe_error(struct probe *pr, const uint8_t *body, uint32_t len)
{
    struct proto_error e;
    proto_parse_error(body, len, &e);
    if (!pr->busy)
        probe_lost_idle(pr); /* e.g. 57P01 on the kept connection: the server stops */
    else
        probe_finish(pr, false, e.message);
}

bool hc_parse_probe_row(const uint8_t *body, uint32_t len, struct hc_probe_row *out)
{
    struct pktreader r;
    pktreader_init(&r, body, len);
    const uint8_t *np = pktreader_bytes(&r, 2);
    if (!np)
        return false;
    unsigned n = pkt_get16(np);
    if (n < 3)
        return false;
    char vals[4][64] = {"", "", "", ""};
    bool null[4] = {true, true, true, true};
    for (unsigned i = 0; i < n; i++) {
        uint32_t l = pktreader_int32(&r);
        if (r.bad)
            return false;
        if (l == 0xffffffffu)
            continue; /* NULL */
        const uint8_t *v = pktreader_bytes(&r, l);
        if (!v)
            return false;
        if (i < 4) {
            size_t k = l < sizeof(vals[i]) - 1 ? l : sizeof(vals[i]) - 1;
            if (memchr(v, 0, k))
                return false;
            memcpy(vals[i], v, k);
            vals[i][k] = '\0';
            null[i] = false;
        }
    }
    if (r.p != r.end || null[0] || vals[0][1] != '\0' || (vals[0][0] != 't' && vals[0][0] != 'f'))
        return false;
    char *end;
    double age = null[2] ? 0 : strtod(vals[2], &end);
    if (!null[2] && (end == vals[2] || *end != '\0'))
        return false;
    if (!isfinite(age) || age < 0)
        return false;
    out->role = vals[0][0] == 't' ? ROLE_STANDBY : ROLE_PRIMARY;
    out->lsn = backend_parse_lsn(vals[1]);
    out->replay_age = age;
    out->receive_lsn = backend_parse_lsn(vals[3]);
    return true;
}

static void probe_row(struct probe *pr, const uint8_t *body, uint32_t len)
{
    struct hc_probe_row row;
    if (!hc_parse_probe_row(body, len, &row)) {
        pr->bad_row = true; /* a broken (or hostile) server: do not trust its answer */
        return;
    }
    pr->row = row;
    pr->role = row.role;
    pr->have_row = true;
}

static void probe_send_query(struct probe *pr)
{
    pr->have_row = false;
    pr->bad_row = false;
    pr->role = ROLE_UNKNOWN;
    pr->query_sent_at = now_usec();
    struct pktbuf b;
    pktbuf_init(&b);
    pktbuf_start(&b, 'Q');
    pktbuf_put_string(&b, PROBE_QUERY);
    pktbuf_finish(&b);
    probe_send(pr, &b);
}

static bool probe_send_startup(struct probe *pr);

/* The one-byte answer to the SSLRequest. */
static void probe_ssl_answer(struct probe *pr)
{
    struct stream *st = &pr->st;
    uint8_t answer = st->buf[st->rpos++];
    pr->tls_wait = false;
    enum tls_mode mode = tls_ctx_mode(pr->tls_ctx);
    const char *why;
    char msg[300];
    switch (proto_ssl_answer(answer, mode >= TLS_REQUIRE, &why)) {
    case PROTO_SSL_START:
        if (pr->liveness_only && mode < TLS_VERIFY_CA) {
            /* Alive, and no certificate to check: no handshake the postmaster would log. */
            st->rpos = st->rlen;
            probe_finish(pr, true, NULL);
            return;
        }
        /* A backend reached through a host name is verified against that name. */
        const char *verify = "";
        if (pr->be)
            verify = pr->be->name[0] ? pr->be->name : pr->be->host;
        if (stream_start_tls(st, pr->tls_ctx, verify) != 0) {
            snprintf(msg, sizeof(msg), "TLS startup failed: %s", stream_tls_error(st));
            probe_finish(pr, false, msg);
        }
        return; /* probe_tls_ready goes on */
    case PROTO_SSL_PLAIN:
        if (pr->liveness_only) {
            st->rpos = st->rlen;
            probe_finish(pr, true, NULL);
            return;
        }
        probe_send_startup(pr);
        return;
    case PROTO_SSL_REFUSED:
        snprintf(msg, sizeof(msg), "%s (server_tls_sslmode=%s)", why,
                 G.cf->g.server_tls_sslmode ? G.cf->g.server_tls_sslmode : "");
        probe_finish(pr, false, msg);
        return;
    case PROTO_SSL_BAD:
        probe_finish(pr, false, why);
        return;
    }
}

static void probe_tls_ready(struct stream *st, bool ok, const char *why)
{
    struct probe *pr = st->owner;
    if (pr->closed)
        return;
    if (!ok) {
        char msg[300];
        snprintf(msg, sizeof(msg), "TLS handshake error: %s", why ? why : "unknown");
        probe_finish(pr, false, msg);
        return;
    }
    if (pr->liveness_only) {
        probe_finish(pr, true, NULL); /* the certificate verified */
        return;
    }
    probe_send_startup(pr);
}

static void probe_read(struct stream *st)
{
    struct probe *pr = st->owner;
    if (pr->tls_wait) {
        if (stream_avail(st) < 1)
            return;
        probe_ssl_answer(pr);
        if (pr->closed || pr->tls_wait || stream_tls_handshaking(st))
            return;
    }
    if (pr->liveness_only) {
        /* 'S' or 'N': the postmaster answered. Closing now leaves no trace in its log. */
        st->rpos = st->rlen;
        probe_finish(pr, true, NULL);
        return;
    }
    uint8_t type;
    const uint8_t *body;
    uint32_t blen;
    int got;
    while (!pr->closed &&
           (got = stream_take_msg(st, pr->logged_in ? UINT32_MAX : PROTO_MAX_LOGIN_MSG_LEN, &type,
                                  &body, &blen)) != 0) {
        if (got < 0) {
            probe_finish(pr, false, "bad packet from server");
            return;
        }
        if (!pr->logged_in) {
            probe_login_step(pr, type, body, blen);
            continue;
        }
        switch (type) {
        case 'E':
            probe_error(pr, body, blen);
            return;
        case 'S': {
            struct pktreader r;
            pktreader_init(&r, body, blen);
            const char *k = pktreader_string(&r), *v = pktreader_string(&r);
            if (k && v && strcmp(k, "in_hot_standby") == 0)
                pr->role = strcmp(v, "on") == 0 ? ROLE_STANDBY : ROLE_PRIMARY;
            break;
        }
        case 'D':
            probe_row(pr, body, blen);
            break;
        case 'Z':
            if (pr->busy && pr->bad_row) {
                probe_finish(pr, false, "malformed health check result");
                return;
            }
            if (pr->busy) {
                probe_report(pr, true, NULL);
                /* Kept for the next check, unless nobody wants it any more. */
                if (!pr->be || G.cf->g.health_check_period <= 0) {
                    probe_close(pr);
                    return;
                }
            }
            break;
        default:
            break;
        }
    }
}

static void probe_error_cb(struct stream *st, int err)
{
    struct probe *pr = st->owner;
    char msg[128];
    snprintf(msg, sizeof(msg), "%s", err == UV_EOF ? "connection closed" : uv_strerror(err));
    if (!pr->busy)
        probe_lost_idle(pr);
    else
        probe_finish(pr, false, msg);
}

static void probe_connect(struct stream *st, int status)
{
    struct probe *pr = st->owner;
    if (pr->closed)
        return;
    pr->connected_at = now_usec();
    if (status != 0) {
        pr->refused = status == UV_ECONNREFUSED || status == UV_ENOENT;
        probe_finish(pr, false, uv_strerror(status));
        return;
    }
    const struct cf_global *g = &G.cf->g;
    struct pktbuf b;
    pktbuf_init(&b);
    /* Without credentials a login would only fill the server log with failures. */
    pr->liveness_only = !g->health_check_user || !*g->health_check_user;
    if (pr->liveness_only || (pr->tls_ctx && !st->is_unix)) {
        /* The liveness check, or TLS first as server connections do (not over Unix). */
        pr->tls_wait = pr->tls_ctx && !st->is_unix;
        proto_request(&b, PROTO_SSL_REQUEST_CODE);
        if (probe_send(pr, &b))
            stream_read_start(st);
        return;
    }
    if (probe_send_startup(pr))
        stream_read_start(st);
}

static bool probe_send_startup(struct probe *pr)
{
    const struct cf_global *g = &G.cf->g;
    struct pktbuf b;
    pktbuf_init(&b);
    if (!proto_login_init(&pr->lg, probe_user(), probe_password(), NULL, NULL,
                          g->server_require_auth_mask)) {
        probe_finish(pr, false, "out of memory");
        return false;
    }
    const char *const params[][2] = {
        {"user", probe_user()},
        {"database",
         g->health_check_dbname && *g->health_check_dbname ? g->health_check_dbname : "postgres"},
        {"application_name", "pgusher health check"},
    };
    proto_startup(&b, params, sizeof(params) / sizeof(params[0]));
    return probe_send(pr, &b);
}

static void probe_timeout(uv_timer_t *t)
{
    probe_finish(t->data, false, "health check timeout");
}

static const struct stream_ops probe_ops = {
    .on_read = probe_read,
    .on_error = probe_error_cb,
    .on_connect = probe_connect,
    .on_closed = stream_closed,
    .on_tls_ready = probe_tls_ready,
};

static char *login_key(void)
{
    const struct cf_global *g = &G.cf->g;
    const char *db =
        g->health_check_dbname && *g->health_check_dbname ? g->health_check_dbname : "postgres";
    size_t n = strlen(probe_user()) + strlen(db) + 2;
    char *k = malloc(n);
    if (k)
        snprintf(k, n, "%s/%s", probe_user(), db);
    return k;
}

static void arm_timeout(struct probe *pr)
{
    usec_t to = G.cf->g.health_check_timeout;
    uv_timer_start(&pr->timeout, probe_timeout, to > 0 ? (uint64_t)(to / 1000) : 1000, 0);
}

static void probe_start(struct backend *be)
{
    struct probe *pr = be->probe;
    if (pr && pr->busy)
        return; /* the last check is still running (its timeout ends it) */
    if (pr) {
        /* A kept connection: ask again on it, unless the login settings changed. */
        char *key = login_key();
        bool same = key && pr->login && strcmp(key, pr->login) == 0 && pr->logged_in &&
                    !pr->st.closing && !pr->st.error_reported &&
                    pr->tls_gen == tls_connect_gen(); /* server TLS settings unchanged */
        free(key);
        if (same) {
            be->checks++;
            pr->busy = true;
            arm_timeout(pr);
            probe_send_query(pr);
            return;
        }
        probe_close(pr);
    }
    pr = calloc(1, sizeof(*pr));
    if (!pr)
        return;
    pr->be = be;
    bool is_unix = be->host[0] == '/';
    int r = is_unix ? stream_init_pipe(&pr->st, G.loop, &probe_ops, pr)
                    : stream_init_tcp(&pr->st, G.loop, &probe_ops, pr);
    if (r != 0) {
        free(pr);
        return;
    }
    pr->login = login_key();
    pr->tls_ctx = tls_ctx_ref(tls_connect_ctx());
    pr->tls_gen = tls_connect_gen();
    uv_timer_init(G.loop, &pr->timeout);
    pr->timeout.data = pr;
    be->probe = pr;
    be->checks++;
    pr->busy = true;
    arm_timeout(pr);
    if (is_unix) {
        snprintf(pr->sockpath, sizeof(pr->sockpath), "%s/.s.PGSQL.%d", be->host, be->port);
        stream_connect_unix(&pr->st, pr->sockpath);
        return;
    }
    struct sockaddr_storage ss;
    if (uv_ip4_addr(be->host, be->port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(be->host, be->port, (struct sockaddr_in6 *)&ss) != 0) {
        /* Not reached: host names become backends per address (dns.c) and a name with no
         * address yet is never probed. Kept as a guard: treat as alive. */
        probe_finish(pr, true, NULL);
        return;
    }
    r = stream_connect_tcp(&pr->st, (struct sockaddr *)&ss);
    if (r != 0)
        probe_finish(pr, false, uv_strerror(r));
}

static void on_timer(uv_timer_t *t)
{
    struct backend *be = t->data;
    probe_start(be);
    health_schedule(be, false);
}

void health_schedule(struct backend *be, bool probe_now)
{
    if (be->unresolved)
        return; /* no address to probe: dns.c tells when there is one */
    if (!be->timer_init) {
        uv_timer_init(G.loop, &be->timer);
        be->timer.data = be;
        be->timer_init = true;
    }
    usec_t period = G.cf->g.health_check_period;
    if (period <= 0) {
        uv_timer_stop(&be->timer);
        if (be->probe && !be->probe->busy)
            probe_close(be->probe);
        return;
    }
    if (probe_now)
        probe_start(be);
    uv_timer_start(&be->timer, on_timer, (uint64_t)(period / 1000), 0);
}

void health_stop(struct backend *be)
{
    if (be->probe) {
        struct probe *pr = be->probe;
        be->probe = NULL;
        pr->be = NULL;
        if (!pr->busy)
            probe_close(pr); /* a check in flight closes when it ends */
    }
    if (be->timer_init)
        uv_timer_stop(&be->timer);
}
