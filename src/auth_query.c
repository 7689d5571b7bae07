/*
 * auth_query.c: looks up the secret of a user who is not in auth_file with auth_query, run
 * through a pooled server of (auth_dbname or the client's database) x auth_user, on the loop.
 * It never judges a password (client.c does) and never opens servers (pool.c does, counting
 * the waiting lookups as demand); its messages and log lines are PgBouncer 1.25's.
 *
 * A lookup: auth_query_start() queues the client on the auth pool (pool.aq_waiting); when the
 * pool has an idle server, pool_service() calls auth_query_run(), which sends the query as
 * Parse/Bind/Describe/Execute/Sync with the user name as $1 and marks the server SV_ACTIVE
 * (without a link) with IQ_AUTH; auth_query_process() reads the reply (RowDescription: two
 * columns wanted; the first DataRow: name, secret or NULL; ErrorResponse) and at
 * ReadyForQuery gives the server back to the pool and the answer to client_auth_lookup_done().
 * A client that goes away meanwhile is simply forgotten (auth_query_forget); the server
 * finishes and is kept.
 */
#include "pgusher/auth_query.h"

#include "pgusher/client.h"
#include "pgusher/log.h"
#include "pgusher/pool.h"
#include "pgusher/proto.h"
#include "pgusher/runtime.h"
#include "pgusher/secret.h"
#include "pgusher/server.h"

#include <stdlib.h>
#include <string.h>

/* The longest reply message read whole: a row holds a name and a secret. */
#define AQ_MAX_MSG_LEN (64u * 1024)

static const char *nonempty(const char *s)
{
    return s && *s ? s : NULL;
}

const char *auth_query_user(const struct cf_database *dcf)
{
    const char *u = dcf ? nonempty(dcf->auth_user) : NULL;
    return u ? u : nonempty(G.cf->g.auth_user);
}

static const char *query_of(const struct database *db)
{
    const char *q = nonempty(db->cf->auth_query);
    return q ? q : nonempty(G.cf->g.auth_query);
}

/* Take c off its queue or its server; drops the reference on the auth database. */
static void detach(struct client *c)
{
    if (!c->aq_wait)
        return;
    if (c->aq_server) {
        c->aq_server->aq_client = NULL;
        c->aq_server = NULL;
    } else {
        list_del(&c->aq_node);
        list_init(&c->aq_node);
        c->aq_pool->n_aq_waiting--;
    }
    c->aq_pool->db->cl_refs--;
    c->aq_pool = NULL;
    c->aq_wait = false;
}

bool auth_query_start(struct client *c, const char *auth_user)
{
    const struct cf_database *dcf = c->db->cf;
    const char *dbname = nonempty(dcf->auth_dbname);
    if (!dbname)
        dbname = nonempty(G.cf->g.auth_dbname);
    struct database *adb = c->db;
    if (dbname) {
        adb = database_find(dbname, false);
        if (!adb || adb->admin || adb->removed) {
            c->log_hide = CLIENT_LOG_NODB;
            client_log(c, LOG_LVL_ERROR, "authentication database \"%s\" is not configured.",
                       dbname);
            client_error_close(c, "08P01", "bouncer config error");
            return false;
        }
    }
    if (!query_of(c->db)) {
        client_log(c, LOG_LVL_ERROR, "auth_query is empty");
        client_error_close(c, "08P01", "bouncer config error");
        return false;
    }
    struct pool *p = pool_get(adb, auth_user);
    if (!p) {
        client_error_close(c, "53200", "out of memory");
        return false;
    }
    const char *failing = pool_login_failing(p);
    if (failing) {
        client_error_close(c, "08P01",
                           "server login has been failing, cached error: %s (server_login_retry)",
                           failing);
        return false;
    }
    c->aq_wait = true;
    c->aq_pool = p;
    adb->cl_refs++;
    list_append(&p->aq_waiting, &c->aq_node);
    p->n_aq_waiting++;
    pool_note_busy(p);
    pool_service(p);
    return true;
}

void auth_query_forget(struct client *c)
{
    detach(c);
}

void auth_query_run(struct server *s)
{
    struct pool *p = s->pool;
    struct client *c = container_of(list_first(&p->aq_waiting), struct client, aq_node);
    list_del(&c->aq_node);
    list_init(&c->aq_node);
    p->n_aq_waiting--;
    c->aq_server = s;
    s->aq_client = c;
    s->aq_cols = -1;
    s->aq_error = false;
    server_set_state(s, SV_ACTIVE);
    s->iq = IQ_AUTH;
    s->iq_failed = false;
    s->expect_rfq++;

    struct pktbuf b;
    pktbuf_init(&b);
    pktbuf_start(&b, 'P'); /* unnamed statement, parameter type left to the server */
    pktbuf_put_string(&b, "");
    pktbuf_put_string(&b, query_of(c->db));
    pktbuf_put_int16(&b, 0);
    pktbuf_finish(&b);
    pktbuf_start(&b, 'B'); /* unnamed portal; $1 = the user name, as text */
    pktbuf_put_string(&b, "");
    pktbuf_put_string(&b, "");
    pktbuf_put_int16(&b, 0);
    pktbuf_put_int16(&b, 1);
    pktbuf_put_int32(&b, (uint32_t)strlen(c->user_name));
    pktbuf_put_bytes(&b, c->user_name, strlen(c->user_name));
    pktbuf_put_int16(&b, 0);
    pktbuf_finish(&b);
    pktbuf_start(&b, 'D');
    pktbuf_put_byte(&b, 'P');
    pktbuf_put_string(&b, "");
    pktbuf_finish(&b);
    pktbuf_start(&b, 'E');
    pktbuf_put_string(&b, "");
    pktbuf_put_int32(&b, 0);
    pktbuf_finish(&b);
    pktbuf_start(&b, 'S');
    pktbuf_finish(&b);
    bool ok = stream_write_pktbuf(&s->st, &b);
    pktbuf_free(&b);
    if (!ok) {
        server_close(s, "server write failed"); /* auth_query_server_gone refuses c */
        return;
    }
    server_update_reading(s);
}

/* The server is closed for a reason of the query's making; then its client is refused with
 * PgBouncer's "bouncer config error" (its log says the rest). */
static void config_error(struct server *s, const char *why)
{
    struct client *c = s->aq_client;
    if (c)
        detach(c);
    server_close(s, "%s", why);
    if (c)
        client_error_close(c, "08P01", "bouncer config error");
}

/* A DataRow: its second column is the secret (NULL: a user without a password, or one whose
 * VALID UNTIL is past with the default query). False: not a row of two columns or more. */
static bool take_row(const uint8_t *body, uint32_t len, char **secret)
{
    struct pktreader r;
    pktreader_init(&r, body, len);
    *secret = NULL;
    if (len < 2 || pkt_get16(body) < 2)
        return false;
    pktreader_bytes(&r, 2);
    uint32_t nlen = pktreader_int32(&r);
    if (nlen != UINT32_MAX && !pktreader_bytes(&r, nlen))
        return false;
    uint32_t slen = pktreader_int32(&r);
    if (r.bad)
        return false;
    if (slen == UINT32_MAX)
        return true;
    const uint8_t *sp = pktreader_bytes(&r, slen);
    if (!sp)
        return false;
    *secret = malloc(slen + 1u);
    if (*secret) {
        memcpy(*secret, sp, slen);
        (*secret)[slen] = '\0';
    }
    return true;
}

void auth_query_process(struct server *s)
{
    struct stream *st = &s->st;
    uint8_t type;
    const uint8_t *body;
    uint32_t blen;
    int r;
    /* A reply can arrive in several reads: the row is kept in the client until 'Z'. */
    while (!st->closing && s->iq == IQ_AUTH &&
           (r = stream_take_msg(st, AQ_MAX_MSG_LEN, &type, &body, &blen)) != 0) {
        if (r < 0) {
            config_error(s, "bad packet from server");
            return;
        }
        struct client *c = s->aq_client;
        switch (type) {
        case 'T': {
            int ncols = blen >= 2 ? (int)pkt_get16(body) : 0;
            s->aq_cols = ncols;
            if (ncols != 2) {
                char why[80];
                snprintf(why, sizeof(why), "expected 2 columns from auth_query, not %d", ncols);
                config_error(s, why);
                return;
            }
            break;
        }
        case 'D':
            if (c && !s->aq_error && !c->aq_found) { /* the first row wins */
                char *secret;
                if (take_row(body, blen, &secret)) {
                    c->aq_found = true;
                    secret_free_str(c->secret_copy);
                    c->secret_copy = secret;
                }
            }
            break;
        case 'E': {
            struct proto_error e;
            proto_parse_error(body, blen, &e);
            log_error("S: error in auth_query: %s: %s", e.severity, e.message);
            s->aq_error = true;
            break;
        }
        case 'Z': {
            s->tx_status = blen >= 1 ? (char)body[0] : 'I';
            if (s->expect_rfq > 0)
                s->expect_rfq--;
            s->iq = IQ_NONE;
            if (s->aq_error) {
                config_error(s, "error response from auth_query");
                return;
            }
            if (c)
                detach(c);
            if (s->close_needed || server_tls_obsolete(s))
                server_close(s, "obsolete connection"); /* RECONNECT or RELOAD meanwhile */
            else
                pool_server_idle(s);
            if (c && !c->st.closing)
                client_auth_lookup_done(c);
            return;
        }
        default: /* ParseComplete, BindComplete, CommandComplete, notices: nothing to keep */
            break;
        }
    }
}

void auth_query_server_gone(struct server *s)
{
    struct client *c = s->aq_client;
    if (!c)
        return;
    detach(c);
    if (!c->st.closing)
        client_error_close(c, "08006", "server conn crashed?");
}

void auth_query_login_failed(struct pool *p, const char *sqlstate, const char *msg)
{
    while (!list_empty(&p->aq_waiting)) {
        struct client *c = container_of(list_first(&p->aq_waiting), struct client, aq_node);
        detach(c);
        client_error_close(c, sqlstate, "%s", msg);
    }
}
