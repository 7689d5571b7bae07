/*
 * client.c: application connections: the startup packet, TLS negotiation (client_tls_sslmode;
 * GSSAPI is refused), cancel requests, client authentication (trust/any/plain/md5/SCRAM/cert)
 * and the client half of the relay (named prepared statements rewritten as prepared.c says).
 * It never chooses servers (pool.c does), never touches a server's socket and never calls
 * OpenSSL for TLS itself (stream.c and tls.c do).
 */
#include "pgusher/client.h"

#include "pgusher/admin.h"
#include "pgusher/auth_query.h"
#include "pgusher/cancel.h"
#include "pgusher/hba.h"
#include "pgusher/log.h"
#include "pgusher/pool.h"
#include "pgusher/prepared.h"
#include "pgusher/proto.h"
#include "pgusher/runtime.h"
#include "pgusher/secret.h"
#include "pgusher/server.h"
#include "pgusher/takeover.h"
#include "pgusher/tls.h"
#include "pgusher/varcache.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MAX_STARTUP_LEN 10000u
#define MAX_AUTH_MSG_LEN 8192u

/* Cancel keys: a chained hash table keyed on (pid, key). */
#define CANCEL_BUCKETS 4096
static struct client *cancel_hash[CANCEL_BUCKETS];

static unsigned cancel_bucket(uint32_t pid, uint32_t key)
{
    return (unsigned)((pid * 2654435761u) ^ key) % CANCEL_BUCKETS;
}

static void cancel_hash_add(struct client *c)
{
    unsigned b = cancel_bucket(c->cancel_pid, c->cancel_key);
    c->hnext = cancel_hash[b];
    cancel_hash[b] = c;
    c->in_hash = true;
}

static void cancel_hash_del(struct client *c)
{
    if (!c->in_hash)
        return;
    struct client **pp = &cancel_hash[cancel_bucket(c->cancel_pid, c->cancel_key)];
    for (; *pp; pp = &(*pp)->hnext) {
        if (*pp == c) {
            *pp = c->hnext;
            break;
        }
    }
    c->in_hash = false;
}

static struct client *cancel_hash_find(uint32_t pid, uint32_t key)
{
    for (struct client *c = cancel_hash[cancel_bucket(pid, key)]; c; c = c->hnext)
        if (c->cancel_pid == pid && c->cancel_key == key)
            return c;
    return NULL;
}

void client_log(struct client *c, int level, const char *fmt, ...)
{
    if (!log_enabled((enum log_level)level))
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const char *db = c->log_hide & CLIENT_LOG_NODB ? NULL : c->db_name;
    const char *user = c->log_hide & CLIENT_LOG_NOUSER ? NULL : c->user_name;
    /* A Unix socket peer as PgBouncer 1.25 writes it: unix(pid):listen_port. */
    char where[80];
    if (strcmp(c->addr, "unix") == 0)
        snprintf(where, sizeof(where), "unix(%d):%d", c->unix_pid, G.cf->g.listen_port);
    else
        snprintf(where, sizeof(where), "%s:%d", c->addr, c->port);
    log_msg((enum log_level)level, "C-%p: %s/%s@%s %s", (void *)c, db ? db : "(nodb)",
            user ? user : "(nouser)", where, msg);
}

static void on_read(struct stream *st);
static void on_error(struct stream *st, int err);
static void on_drain(struct stream *st);
static void on_closed(struct stream *st);
static void on_tls_ready(struct stream *st, bool ok, const char *why);

static const struct stream_ops client_ops = {
    .on_read = on_read,
    .on_error = on_error,
    .on_drain = on_drain,
    .on_closed = on_closed,
    .on_tls_ready = on_tls_ready,
};

/* A client on socket fd, counted, in CL_LOGIN (G.login_clients, accept order): what an
 * accepted and an adopted (online restart) connection both start as. NULL when it could not
 * be made: fd is closed, and a client already made is closed with why. */
static struct client *client_new(int fd, bool is_unix, const char *why)
{
    struct client *c = calloc(1, sizeof(*c));
    if (!c) {
        log_error("out of memory for a client (%s)", why);
        close(fd);
        return NULL;
    }
    int r = is_unix ? stream_init_pipe(&c->st, G.loop, &client_ops, c)
                    : stream_init_tcp(&c->st, G.loop, &client_ops, c);
    if (r != 0) {
        free(c);
        close(fd);
        return NULL;
    }
    list_init(&c->node);
    list_init(&c->aq_node);
    client_set_state(c, CL_LOGIN);
    G.client_count++;
    runtime_count_peak();
    c->id = ++G.next_id;
    c->connect_time = c->request_time = now_usec();
    c->connect_wall = time(NULL);
    if (stream_open_fd(&c->st, fd) != 0) {
        close(fd);
        client_close(c, "%s", why);
        return NULL;
    }
    return c;
}

void client_accept(int fd, bool is_unix, const struct sockaddr *addr)
{
    struct client *c = client_new(fd, is_unix, "accept failed");
    if (!c)
        return;
    stream_addr_text(addr, c->addr, sizeof(c->addr), &c->port);
#ifdef SO_PEERCRED
    if (is_unix) {
        struct ucred cred;
        socklen_t clen = sizeof(cred);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0)
            c->unix_pid = (int)cred.pid;
    }
#endif
    const struct cf_global *g = &G.cf->g;
    /* TCP options: Linux copies them from the listening socket (listener.c sets them). */
#ifndef __linux__
    if (!is_unix) {
        struct tcp_tuning t;
        runtime_tcp_tuning(&t);
        stream_set_tcp_options(&c->st, &t);
    }
#endif
    if (G.client_count > g->max_client_conn) {
        c->reject_msg = strdup("no more connections allowed (max_client_conn)");
        memcpy(c->reject_state, "08P01", 6); /* PgBouncer 1.25's SQLSTATE */
    }
    stream_read_start(&c->st);
    if (!is_unix && g->tcp_defer_accept > 0)
        stream_read_now(&c->st); /* the kernel woke us for data: the startup is there */
}

bool client_send(struct client *c, const void *data, size_t len)
{
    if (c->st.closing)
        return false;
    if (!stream_write(&c->st, data, len)) {
        client_close(c, "client write failed");
        return false;
    }
    return true;
}

static bool client_send_pkt(struct client *c, struct pktbuf *b)
{
    bool ok = !b->failed && client_send(c, b->data, b->len);
    pktbuf_free(b);
    return ok;
}

/* Clients closed with output still queued (an ErrorResponse behind a result the client has
 * not read), oldest first through c->node: each is freed when its output drains, when the
 * socket fails, or CLOSE_DRAIN_USEC after its close, whichever comes first, so a peer that
 * never reads cannot keep its memory, its fd and its max_client_conn slot. Clients that are
 * not closing cost nothing here. */
static struct list draining_clients = LIST_INIT(draining_clients);
#define CLOSE_DRAIN_USEC (1000 * 1000)

static void really_close(struct client *c)
{
    if (c->close_after_flush) {
        list_del(&c->node);
        c->close_after_flush = false;
    }
    stream_close(&c->st);
}

void client_janitor(void)
{
    uint64_t now = now_usec();
    while (!list_empty(&draining_clients)) {
        struct client *c = container_of(draining_clients.next, struct client, node);
        if (now - c->close_start < CLOSE_DRAIN_USEC)
            break; /* the rest closed later */
        client_log(c, LOG_LVL_DEBUG, "output not taken within %d ms of the close: dropped",
                   CLOSE_DRAIN_USEC / 1000);
        really_close(c);
    }
}

void client_close(struct client *c, const char *fmt, ...)
{
    if (c->state == CL_CLOSING)
        return;
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);

    if (c->startup_done && G.cf->g.log_disconnections)
        client_log(c, LOG_LVL_INFO, "closing because: %s (age=%llus)", reason,
                   (unsigned long long)((now_usec() - c->connect_time) / 1000000));
    else if (!c->startup_done)
        client_log(c, LOG_LVL_DEBUG, "closing because: %s", reason);

    cancel_hash_del(c);
    auth_query_forget(c);
    takeover_console_gone(c);
    struct server *s = c->link;
    struct pool *p = c->pool;
    bool counted = c->state != CL_LOGIN && c->state != CL_CANCEL && c->db;
    if (c->state == CL_CANCEL || c->peer_cancel)
        cancel_requester_gone(c);
    client_set_state(c, CL_CLOSING);
    if (s)
        pool_unlink(c);
    else if (c->repl_server)
        pool_repl_forget(c);
    if (counted)
        c->db->client_count--;
    stream_flush(&c->st); /* batched output joins the queue that must drain first */
    if (c->st.queued > 0 && !c->st.error_reported) {
        /* Let an error message reach the client before the socket goes, for a while. */
        c->close_after_flush = true;
        c->close_start = now_usec();
        list_append(&draining_clients, &c->node);
        stream_read_stop(&c->st);
    } else {
        really_close(c);
    }
    if (p)
        pool_service(p);
}

void client_error_close(struct client *c, const char *sqlstate, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* A refusal is logged ("closing because: ...") also before the startup packet was taken,
     * as PgBouncer 1.25 does; a peer that just goes away then is not (client_close). */
    c->startup_done = true;
    /* In the middle of a TLS handshake (client_login_timeout) nothing can be said. */
    if (!stream_tls_handshaking(&c->st)) {
        struct pktbuf b;
        pktbuf_init(&b);
        pktbuf_error(&b, "FATAL", sqlstate, msg);
        client_send_pkt(c, &b);
    }
    bool was_closing = c->state == CL_CLOSING;
    client_close(c, "%s", msg);
    /* After the "closing because" line, as PgBouncer orders them (c is freed only in the
     * stream's close callback, later). */
    if (G.cf->g.log_pooler_errors && !was_closing)
        client_log(c, LOG_LVL_WARNING, "pooler error: %s", msg);
}

static void on_closed(struct stream *st)
{
    struct client *c = st->owner;
    list_del(&c->node);
    G.client_count--;
    if (c->db)
        c->db->cl_refs--;
    str_release(c->user_name);
    str_release(c->db_name);
    free(c->reject_msg);
    free(c->auth_map);
    secret_free_str(c->secret_copy);
    free(c->admin_wait_db);
    varcache_free(&c->vars);
    prepared_client_free(c);
    if (c->scram) {
        scram_server_reset(c->scram);
        free(c->scram);
    }
    free(c);
}

static void on_error(struct stream *st, int err)
{
    struct client *c = st->owner;
    if (c->close_after_flush) {
        /* Closed already, its last output cannot go out: free it now. */
        really_close(c);
        return;
    }
    if (err == UV_EOF)
        client_close(c, "client unexpected eof");
    else
        client_close(c, "client connection error: %s", uv_strerror(err));
}

static void on_drain(struct stream *st)
{
    struct client *c = st->owner;
    if (c->close_after_flush) {
        really_close(c);
        return;
    }
    /* The client took what its server sent: let the server talk again. */
    if (c->link)
        server_resume(c->link);
    else if (c->state == CL_LOGIN)
        client_update_reading(c); /* read again now that its answers went out */
    else if (c->state == CL_ACTIVE && c->pool->db->admin)
        client_resume(c); /* the same, after any commands still buffered */
}

/* ---------------------------------------------------------------- cancel requests */

static void handle_cancel(struct client *c, const uint8_t *pkt)
{
    uint32_t pid = pkt_get32(pkt + 8), key = pkt_get32(pkt + 12);
    int owner = cancel_key_peer(pid);
    if (owner != G.cf->g.peer_id) {
        /* Another process of the group handed out this key ([peers], peer_id). */
        stream_read_stop(&c->st);
        c->peer_cancel = true;
        if (cancel_to_peer(c, owner, pid, key))
            return;
        c->peer_cancel = false;
        client_close(c, "cancel request for unknown peer");
        return;
    }
    struct client *target = cancel_hash_find(pid, cancel_key_local(key));
    if (target && target->link && target->link->ready) {
        /* Held open until the cancel is done (SHOW POOLS: cl_active_cancel_req). */
        c->pool = target->pool;
        c->db = target->db;
        c->db->cl_refs++;
        /* Logged as PgBouncer 1.25 does: "db/(nouser) closing because: ..." */
        c->db_name = str_intern(target->db_name);
        c->startup_done = true;
        client_set_state(c, CL_CANCEL);
        if (cancel_send(target->link, c))
            return;
    } else if (target) {
        c->startup_done = true; /* logged, as in PgBouncer 1.25 */
        client_close(c, "cancel request for idle client");
        return;
    } else {
        log_debug("cancel request for unknown client");
    }
    /* PostgreSQL answers a cancel request by closing the connection. */
    client_close(c, "cancel request");
}

/* ---------------------------------------------------------------- startup */

static bool param_ignored(const char *name)
{
    return config_list_has(G.cf->g.ignore_startup_parameters, name, true);
}

/* Cancel keys: drawn from OpenSSL's CSPRNG in blocks, since every RAND_bytes call costs
 * system calls (its fork check) and a new connection needs a key. */
static uint32_t random_u32(void)
{
    static uint8_t pool[1024];
    static size_t left;
    uint32_t v = 0;
    if (left < sizeof(v)) {
        if (RAND_bytes(pool, sizeof(pool)) != 1) {
            v = (uint32_t)now_usec() ^ (uint32_t)(uintptr_t)&v ^ (uint32_t)rand();
            return v;
        }
        left = sizeof(pool);
    }
    left -= sizeof(v);
    memcpy(&v, pool + left, sizeof(v));
    memset(pool + left, 0, sizeof(v));
    return v;
}

static void start_auth(struct client *c);
static void auth_ok(struct client *c);
static bool attach_database(struct client *c, struct database *db);
static bool take_any_user(struct client *c);
static void choose_auth_type(struct client *c);

/* The replication startup parameter as PgBouncer 1.25 reads it: "database" (exactly) is
 * logical; a boolean in PostgreSQL's spelling (any case, prefixes of true/false/yes/no, on,
 * off, 1, 0) physical or none; anything else none, as 1.25 lets it pass. */
static enum replication_kind replication_kind(const char *v)
{
    if (strcmp(v, "database") == 0)
        return REPL_LOGICAL;
    size_t n = strlen(v);
    static const char *const yes[] = {"true", "yes"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        if (n > 0 && strncasecmp(v, yes[i], n) == 0 && n <= strlen(yes[i]))
            return REPL_PHYSICAL;
    if (strcasecmp(v, "on") == 0 || strcmp(v, "1") == 0)
        return REPL_PHYSICAL;
    return REPL_NONE;
}

static const char *const replication_log_names[] = {
    [REPL_NONE] = "no", [REPL_PHYSICAL] = "yes", [REPL_LOGICAL] = "database"};

static void log_login_attempt(struct client *c)
{
    if (!G.cf->g.log_connections)
        return;
    char tls[128];
    stream_tls_describe(&c->st, tls, sizeof(tls));
    client_log(c, LOG_LVL_INFO, "login attempt: db=%s user=%s tls=%s replication=%s", c->db_name,
               c->user_name, tls[0] ? tls : "no", replication_log_names[c->replication]);
}

/* auth_type = hba: what the first matching rule of auth_hba_file says, as an auth_type_t, or
 * CLIENT_AUTH_REJECT / _NONE (no rule) / _PEER (its map= in c->auth_map). */
static const int hba_auth_types[] = {
    [HBA_TRUST] = AUTH_TYPE_TRUST, [HBA_REJECT] = CLIENT_AUTH_REJECT, [HBA_MD5] = AUTH_TYPE_MD5,
    [HBA_SCRAM] = AUTH_TYPE_SCRAM, [HBA_PASSWORD] = AUTH_TYPE_PLAIN,  [HBA_PEER] = CLIENT_AUTH_PEER,
    [HBA_CERT] = AUTH_TYPE_CERT,   [HBA_LDAP] = CLIENT_AUTH_LDAP,
};

/* auth_type = any: the user name given does not count. The client becomes its database's
 * forced user (as PgBouncer logs it), or the console's "pgbouncer" admin; a database without
 * a forced user is PgBouncer's "bouncer config error". False: closed. */
static bool take_any_user(struct client *c)
{
    const char *as = NULL;
    const struct cf_database *dcf = config_find_database(G.cf, c->db_name);
    if (!dcf && !admin_is_console_db(c->db_name))
        dcf = config_find_database(G.cf, "*");
    if (admin_is_console_db(c->db_name) && !(dcf && dcf->user))
        as = "pgbouncer";
    else if (dcf && dcf->user)
        as = dcf->user;
    if (!as) {
        c->log_hide = CLIENT_LOG_NODB | CLIENT_LOG_NOUSER;
        client_log(c, LOG_LVL_ERROR, "auth_type=any requires forced user");
        client_error_close(c, "08P01", "bouncer config error");
        return false;
    }
    const char *name = str_intern(as);
    if (!name) {
        client_error_close(c, "53200", "out of memory");
        return false;
    }
    str_release(c->user_name);
    c->user_name = name;
    return true;
}

static void choose_auth_type(struct client *c)
{
    c->auth_type = G.cf->g.auth_type;
    if (c->auth_type != AUTH_TYPE_HBA)
        return;
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    bool have_addr =
        !c->st.is_unix && uv_tcp_getpeername(&c->st.h.tcp, (struct sockaddr *)&ss, &len) == 0;
    struct hba_login lg = {.is_unix = c->st.is_unix,
                           .tls = stream_tls_active(&c->st),
                           /* as PostgreSQL: only physical replication is "replication" */
                           .replication = c->replication == REPL_PHYSICAL,
                           .addr = have_addr ? (const struct sockaddr *)&ss : NULL,
                           .db = c->db_name,
                           .user = c->user_name};
    const struct hba_rule *r = hba_match(G.cf->hba, &lg);
    c->auth_type = r ? hba_auth_types[r->method] : CLIENT_AUTH_NONE;
    if (r && r->map) {
        free(c->auth_map);
        c->auth_map = strdup(r->map);
    }
}

/* The peer method: the OS user at the other end of the Unix socket must be the user it logs
 * in as, or be allowed to by the rule's ident map. PgBouncer's words on failure. */
static void auth_peer(struct client *c)
{
    struct ucred cred;
    uv_os_fd_t fd;
    socklen_t clen = sizeof(cred);
    char buf[1024];
    struct passwd pw, *pwp = NULL;
    if (!c->st.is_unix || uv_fileno(&c->st.h.handle, &fd) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0 ||
        getpwuid_r(cred.uid, &pw, buf, sizeof(buf), &pwp) != 0 || !pwp) {
        client_error_close(c, "08P01", "unix socket login rejected");
        return;
    }
    bool ok = c->auth_map ? hba_ident_allows(G.cf->hba, c->auth_map, pw.pw_name, c->user_name)
                          : strcmp(pw.pw_name, c->user_name) == 0;
    if (!ok) {
        if (c->auth_map)
            client_log(c, LOG_LVL_ERROR, "ident map %s cannot be matched", c->auth_map);
        client_error_close(c, "08P01", "unix socket login rejected");
        return;
    }
    client_log(c, LOG_LVL_DEBUG, "peer login as OS user %s", pw.pw_name);
    auth_ok(c);
}

/* Is the client's user in auth_file (or is it the console's own user, let in by peer)? */
static bool user_known(const struct client *c)
{
    if (config_find_authuser(G.cf, c->user_name))
        return true;
    int type = c->auth_type;
    if (type == AUTH_TYPE_CERT || type == CLIENT_AUTH_PEER ||
        (type == AUTH_TYPE_TRUST && !G.cf->g.auth_file))
        return true; /* not looked up in auth_file at all */
    return strcmp(c->db_name, "pgbouncer") == 0 && strcmp(c->user_name, "pgbouncer") == 0;
}

/* PgBouncer's refusal of a startup parameter: a warning with its value, then the error; the
 * close is logged although the startup packet was not taken. where: "" or " in options". */
static void refuse_param(struct client *c, const char *where, const char *k, const char *v)
{
    char val[128];
    log_escape(v, strlen(v), val, sizeof(val));
    client_log(c, LOG_LVL_WARNING, "unsupported startup parameter%s: %s=%s", where, k, val);
    c->startup_done = true;
    client_error_close(c, "08P01", "unsupported startup parameter%s: %s", where, k);
}

/* The options startup parameter (-c name=value, --name=value): tracked parameters are taken
 * as if sent on their own, ignore_startup_parameters ones are dropped, anything else refuses
 * the client, as in PgBouncer 1.25. False if the client was refused. */
static bool take_options(struct client *c, const char *opts, struct varcache *vars)
{
    size_t cap = strlen(opts) + 1;
    char *buf = malloc(cap);
    if (!buf) {
        client_error_close(c, "53200", "out of memory");
        return false;
    }
    const char *cur = opts, *k, *v;
    int r;
    while ((r = proto_options_next(&cur, buf, cap, &k, &v)) > 0) {
        enum var_id id = varcache_lookup(k);
        if (id != VAR_COUNT) {
            varcache_set(vars, id, v);
        } else if (!param_ignored(k)) {
            refuse_param(c, " in options", k, v);
            free(buf);
            return false;
        }
    }
    free(buf);
    if (r < 0) {
        c->startup_done = true;
        client_error_close(c, "08P01",
                           "unsupported options startup parameter: only '-c "
                           "config=val' and '--config=val' are allowed");
        return false;
    }
    return true;
}

static void handle_startup(struct client *c, const uint8_t *pkt, uint32_t len)
{
    struct pktreader r;
    pktreader_init(&r, pkt + 8, len - 8);
    const char *user = NULL, *dbname = NULL, *appname = NULL, *fallback_app = NULL;
    struct varcache vars = {{0}};
    const char *k, *v;
    int got;
    while ((got = proto_startup_next(&r, &k, &v)) > 0) {
        if (strcmp(k, "user") == 0) {
            user = v;
        } else if (strcmp(k, "database") == 0) {
            dbname = v;
        } else if (strcmp(k, "application_name") == 0) {
            appname = v;
        } else if (strcmp(k, "fallback_application_name") == 0) {
            fallback_app = v;
        } else if (varcache_lookup(k) != VAR_COUNT) {
            varcache_set(&vars, varcache_lookup(k), v);
        } else if (strcmp(k, "options") == 0 && !param_ignored(k)) {
            if (!take_options(c, v, &vars)) {
                varcache_free(&vars);
                return;
            }
        } else if (strcmp(k, "replication") == 0) {
            c->replication = replication_kind(v);
        } else if (!param_ignored(k)) {
            varcache_free(&vars);
            refuse_param(c, "", k, v);
            return;
        }
    }
    if (got < 0) {
        varcache_free(&vars);
        client_error_close(c, "08P01",
                           "invalid startup packet layout: expected terminator as last byte");
        return;
    }
    if (!user || !*user) {
        varcache_free(&vars);
        client_error_close(c, "08P01", "no username supplied"); /* 1.25's SQLSTATE */
        return;
    }
    if (!dbname || !*dbname)
        dbname = user;
    c->user_name = str_intern(user);
    c->db_name = str_intern(dbname);
    if (!c->user_name || !c->db_name) {
        varcache_free(&vars);
        client_error_close(c, "53200", "out of memory");
        return;
    }
    if (!appname)
        appname = fallback_app;
    char appbuf[512];
    if (G.cf->g.application_name_add_host) {
        snprintf(appbuf, sizeof(appbuf), "%s - %s:%d", appname ? appname : "", c->addr, c->port);
        appname = appbuf;
    }
    if (appname)
        varcache_set(&vars, VAR_APPLICATION_NAME, appname);
    c->vars = vars;
    c->startup_done = true;

    choose_auth_type(c);
    if (c->auth_type == AUTH_TYPE_ANY && !c->reject_msg && !take_any_user(c))
        return;
    /* A user auth_query will look up is named in the log once found, as PgBouncer does. */
    const struct cf_database *dcf = config_find_database(G.cf, c->db_name);
    if (!dcf)
        dcf = config_find_database(G.cf, "*");
    c->log_hide = 0;
    if (!c->reject_msg && !user_known(c) && c->auth_type != AUTH_TYPE_ANY) {
        if (dcf && auth_query_user(dcf)) {
            c->log_hide = CLIENT_LOG_NOUSER;
        } else {
            /* PgBouncer makes up a user that cannot log in, of no database in its log. */
            c->log_hide = CLIENT_LOG_NODB | CLIENT_LOG_NOUSER;
            client_log(c, LOG_LVL_INFO, "no such user: %s", c->user_name);
            c->log_hide = CLIENT_LOG_NODB;
        }
    }
    if (!(c->log_hide & CLIENT_LOG_NOUSER))
        log_login_attempt(c);

    if (c->reject_msg) {
        client_error_close(c, c->reject_state, "%s", c->reject_msg);
        return;
    }
    /* A shutdown that waits keeps the console reachable (on the Unix socket, the only
     * listener left); everything else is refused. */
    if (G.shutting_down && strcmp(c->db_name, "pgbouncer") != 0) {
        client_error_close(c, "57P01", "pgbouncer is shutting down");
        return;
    }

    /* A name that would become an auto-database stays without c->db until the client has
     * authenticated (against the "*" entry), so unauthenticated names cost nothing. */
    struct database *db = database_find(c->db_name, false);
    if (!db && !config_find_database(G.cf, "*")) {
        client_error_close(c, "08P01", "no such database: %s", c->db_name);
        return;
    }
    if (db && !attach_database(c, db))
        return;
    start_auth(c);
}

/* The client logs in to db: refused (and closed) when db cannot take new clients. */
static bool attach_database(struct client *c, struct database *db)
{
    if (db->removed) {
        client_error_close(c, "08P01", "no such database: %s", c->db_name);
        return false;
    }
    if (db->disabled) {
        client_error_close(c, "08P01", "database \"%s\" is disabled", c->db_name);
        return false;
    }
    c->db = db;
    db->cl_refs++;
    return true;
}

/* ---------------------------------------------------------------- authentication */

/* a is what the client sent, b the stored secret: see secret_equal. */
static bool constant_eq(const char *a, const char *b)
{
    return secret_equal(a, b);
}

/* PgBouncer 1.25's words and SQLSTATE, whether the user is unknown or the password wrong,
 * so that the answer tells nothing about which; a SCRAM exchange says why in the log. */
static void auth_failed(struct client *c)
{
    if (c->auth_step == PROTO_AUTH_SASL || c->auth_step == PROTO_AUTH_SASL_CONTINUE) {
        client_log(c, LOG_LVL_ERROR, "%s",
                   c->scram_md5 ? "SCRAM authentication failed: user has MD5 secret"
                                : "password authentication failed");
        client_error_close(c, "08P01", "SASL authentication failed");
        return;
    }
    client_error_close(c, "08P01", "password authentication failed");
}

static void auth_ok(struct client *c);

/* auth_type=cert (or an hba cert rule, whose map= may map the common name to the user):
 * the user name must be the common name of the client certificate, which
 * the handshake verified (client_tls_sslmode verify-full, tls_build insists). The client
 * only learns that it failed; the log says why (PgBouncer's wording on both). */
static void auth_cert(struct client *c)
{
    char cn[256];
    const char *why = NULL;
    if (!stream_tls_active(&c->st))
        why = "TLS connection required";
    else if (!stream_tls_peer_cn(&c->st, cn, sizeof(cn)))
        why = "TLS client certificate required";
    else if (c->auth_map && !hba_ident_allows(G.cf->hba, c->auth_map, cn, c->user_name))
        why = "TLS certificate name cannot be matched by the ident map";
    else if (!c->auth_map && strcmp(cn, c->user_name) != 0)
        why = "TLS certificate name mismatch";
    if (why) {
        client_log(c, LOG_LVL_ERROR, "%s", why);
        client_error_close(c, "08P01", "certificate authentication failed");
        return;
    }
    client_log(c, LOG_LVL_DEBUG, "TLS cert login: %s", cn);
    auth_ok(c);
}

static void request_password(struct client *c, uint32_t code)
{
    struct pktbuf b;
    pktbuf_init(&b);
    if (code == PROTO_AUTH_MD5) {
        if (RAND_bytes(c->md5_salt, 4) != 1) {
            uint32_t v = random_u32();
            memcpy(c->md5_salt, &v, 4);
        }
        pktbuf_auth(&b, PROTO_AUTH_MD5, c->md5_salt, 4);
    } else if (code == PROTO_AUTH_SASL) {
        static const char mech[] = "SCRAM-SHA-256\0";
        pktbuf_auth(&b, PROTO_AUTH_SASL, mech, sizeof(mech));
    } else {
        pktbuf_auth(&b, code, NULL, 0);
    }
    c->auth_step = (int)code;
    client_send_pkt(c, &b);
}

static void continue_auth(struct client *c, bool known);

static void start_auth(struct client *c)
{
    const struct config *cf = G.cf;
    int type = c->auth_type;
    const struct cf_authuser *au = config_find_authuser(cf, c->user_name);
    if (au && au->secret) {
        c->secret_copy = strdup(au->secret);
        if (!c->secret_copy) {
            client_error_close(c, "53200", "out of memory");
            return;
        }
    }
    c->secret = c->secret_copy;

    if (type == AUTH_TYPE_ANY) {
        auth_ok(c);
        return;
    }
    if (c->db && c->db->admin && strcmp(c->user_name, "pgbouncer") == 0 && admin_peer_is_self(c)) {
        /* The console's own user, over the Unix socket, from our own OS user. */
        auth_ok(c);
        return;
    }
    if (!au && (c->log_hide & CLIENT_LOG_NOUSER)) {
        /* Not in auth_file, and its database has an auth_user: ask PostgreSQL. The name of
         * an auto-database is made a database now, since the lookup runs in it. */
        const struct cf_database *dcf = c->db ? c->db->cf : config_find_database(cf, "*");
        const char *auth_user = auth_query_user(dcf);
        if (auth_user && !(c->db && c->db->admin)) {
            if (!c->db) {
                struct database *made = database_find(c->db_name, true);
                if (!made) {
                    client_error_close(c, "3D000", "no such database: %s", c->db_name);
                    return;
                }
                if (!attach_database(c, made))
                    return;
            }
            auth_query_start(c, auth_user);
            return;
        }
        c->log_hide = 0;
        log_login_attempt(c);
    }
    continue_auth(c, au != NULL);
}

void client_auth_lookup_done(struct client *c)
{
    if (!c->aq_found) {
        client_log(c, LOG_LVL_INFO, "login failed: db=%s", c->db_name);
        client_error_close(c, "08P01", "no such user");
        return;
    }
    c->log_hide = 0;
    log_login_attempt(c);
    c->secret = c->secret_copy; /* NULL: no password, nothing will match */
    continue_auth(c, true);
    client_update_reading(c);
}

/* The user is known (auth_file, auth_query) or not: ask for what auth_type wants. */
static void continue_auth(struct client *c, bool known)
{
    const struct config *cf = G.cf;
    int type = c->auth_type;
    if (type == CLIENT_AUTH_NONE) {
        client_error_close(c, "08P01", "no authentication method is found");
        return;
    }
    if (type == CLIENT_AUTH_REJECT) {
        client_error_close(c, "08P01", "login rejected");
        return;
    }
    if (type == CLIENT_AUTH_LDAP) {
        client_error_close(c, "08P01", "ldap is not supported by this build");
        return;
    }
    if (type == CLIENT_AUTH_PEER) {
        auth_peer(c);
        return;
    }
    if (type == AUTH_TYPE_TRUST) {
        /* PgBouncer: no password check, but the user must be known when an auth_file is set. */
        if (!known && cf->g.auth_file && *cf->g.auth_file) {
            client_error_close(c, "08P01", "\"trust\" authentication failed");
            return;
        }
        auth_ok(c);
        return;
    }
    if (type == AUTH_TYPE_CERT) {
        auth_cert(c);
        return;
    }
    if (type != AUTH_TYPE_PLAIN && type != AUTH_TYPE_MD5 && type != AUTH_TYPE_SCRAM) {
        client_error_close(c, "28000", "auth_type %s is not supported by pgusher yet",
                           config_auth_type_name(type));
        return;
    }
    /* Unknown users still get a password prompt, so user names cannot be probed. */
    if (type == AUTH_TYPE_PLAIN) {
        request_password(c, PROTO_AUTH_CLEARTEXT);
    } else if (type == AUTH_TYPE_MD5 && !(c->secret && scram_is_secret(c->secret))) {
        request_password(c, PROTO_AUTH_MD5);
    } else {
        request_password(c, PROTO_AUTH_SASL);
    }
}

static bool check_plain_password(struct client *c, const char *pw)
{
    const char *secret = c->secret;
    if (!secret)
        return false;
    if (scram_is_secret(secret)) {
        struct scram_secret want, got;
        if (!scram_parse_secret(secret, &want))
            return false;
        if (!scram_secret_from_password(pw, want.salt, want.salt_len, want.iterations, &got))
            return false;
        return CRYPTO_memcmp(want.stored_key, got.stored_key, SCRAM_KEY_LEN) == 0 &&
               CRYPTO_memcmp(want.server_key, got.server_key, SCRAM_KEY_LEN) == 0;
    }
    if (pg_is_md5_secret(secret)) {
        char h[MD5_PASSWD_LEN + 1];
        pg_md5_encrypt(pw, c->user_name, h);
        return constant_eq(h, secret);
    }
    return constant_eq(pw, secret);
}

static void handle_sasl(struct client *c, const uint8_t *body, uint32_t len)
{
    struct pktreader r;
    pktreader_init(&r, body, len);
    char *out = NULL;
    if (!c->scram) {
        const char *mech = pktreader_string(&r);
        uint32_t dlen = pktreader_int32(&r);
        const uint8_t *data = r.bad ? NULL : pktreader_bytes(&r, dlen);
        if (!mech || !data) {
            client_error_close(c, "08P01", "malformed SASLInitialResponse");
            return;
        }
        if (strcmp(mech, "SCRAM-SHA-256") != 0) {
            client_error_close(c, "08P01", "unsupported SASL mechanism: %s", mech);
            return;
        }
        c->scram = calloc(1, sizeof(*c->scram));
        if (!c->scram) {
            client_error_close(c, "53200", "out of memory");
            return;
        }
        bool have_secret = false;
        int iters = G.cf->g.scram_iterations > 0 ? G.cf->g.scram_iterations : 4096;
        if (c->secret && scram_is_secret(c->secret)) {
            have_secret = scram_parse_secret(c->secret, &c->scram->secret);
        } else if (c->secret && !pg_is_md5_secret(c->secret)) {
            have_secret = scram_secret_for_user(c->user_name, c->secret, iters, &c->scram->secret);
        }
        if (!have_secret) {
            /* Unknown user or an md5 secret: run a fake exchange that cannot succeed. */
            c->scram_md5 = c->secret && pg_is_md5_secret(c->secret);
            scram_mock_secret(c->user_name, iters, &c->scram->secret);
            c->secret = NULL;
        }
        if (!scram_server_first(c->scram, (const char *)data, dlen, &out)) {
            client_error_close(c, "08P01", "malformed SCRAM message");
            return;
        }
        struct pktbuf b;
        pktbuf_init(&b);
        pktbuf_auth(&b, PROTO_AUTH_SASL_CONTINUE, out, strlen(out));
        free(out);
        client_send_pkt(c, &b);
        return;
    }
    if (!scram_server_final(c->scram, (const char *)body, len, &out) || !c->secret) {
        free(out);
        auth_failed(c);
        return;
    }
    struct pktbuf b;
    pktbuf_init(&b);
    pktbuf_auth(&b, PROTO_AUTH_SASL_FINAL, out, strlen(out));
    free(out);
    if (!client_send_pkt(c, &b))
        return;
    auth_ok(c); /* keeps the keys for the pool's logins as this user */
}

static void handle_password_msg(struct client *c, const uint8_t *body, uint32_t len)
{
    if (c->auth_step == PROTO_AUTH_SASL || c->auth_step == PROTO_AUTH_SASL_CONTINUE) {
        c->auth_step = PROTO_AUTH_SASL_CONTINUE;
        handle_sasl(c, body, len);
        return;
    }
    struct pktreader r;
    pktreader_init(&r, body, len);
    const char *pw = pktreader_string(&r);
    if (!pw) {
        client_error_close(c, "08P01", "malformed password packet");
        return;
    }
    bool ok = false;
    if (c->auth_step == PROTO_AUTH_CLEARTEXT) {
        ok = check_plain_password(c, pw);
    } else if (c->auth_step == PROTO_AUTH_MD5 && c->secret) {
        char want[MD5_PASSWD_LEN + 1];
        pg_md5_response(c->secret, c->user_name, c->md5_salt, want);
        ok = constant_eq(pw, want);
    }
    if (!ok) {
        auth_failed(c);
        return;
    }
    auth_ok(c);
}

static void auth_ok(struct client *c)
{
    /* Its database's definition, or for a name that becomes an auto-database once the
     * client is in, the "*" entry's (looked up again: a reload may have removed it). */
    const struct cf_database *dcf = c->db ? c->db->cf : config_find_database(G.cf, "*");
    if (!dcf) {
        client_error_close(c, "08P01", "no such database: %s", c->db_name);
        return;
    }
    if (G.cf->g.auth_type == AUTH_TYPE_ANY && !dcf->user && !(c->db && c->db->admin)) {
        client_error_close(c, "28000", "auth_type=any requires forced user in database entry");
        return;
    }
    if (!c->db) {
        struct database *made = database_find(c->db_name, true);
        if (!made) {
            client_error_close(c, "08P01", "no such database: %s", c->db_name);
            return;
        }
        if (!attach_database(c, made))
            return;
    }
    struct database *db = c->db;
    const char *pool_user = db->cf->user ? db->cf->user : c->user_name;
    int max_db_clients = db->cf->max_db_client_connections != CF_UNSET
                             ? db->cf->max_db_client_connections
                             : G.cf->g.max_db_client_connections;
    if (max_db_clients > 0 && db->client_count >= max_db_clients) {
        client_error_close(c, "08P01", "client connections exceeded (max_db_client_connections)");
        return;
    }
    const struct cf_user *u = config_find_user(G.cf, pool_user);
    int max_user_clients = u && u->max_user_client_connections != CF_UNSET
                               ? u->max_user_client_connections
                               : G.cf->g.max_user_client_connections;
    if (max_user_clients > 0 && pool_user_client_count(pool_user) >= max_user_clients) {
        client_error_close(c, "08P01", "client connections exceeded (max_user_client_connections)");
        return;
    }
    struct pool *p = pool_get(db, pool_user);
    if (!p) {
        client_error_close(c, "53200", "out of memory");
        return;
    }
    if (c->aq_found && !db->cf->user && c->secret_copy &&
        (!p->aq_secret || strcmp(p->aq_secret, c->secret_copy) != 0)) {
        /* What auth_query found logs the pool in to the server as this user, like a secret
         * in auth_file would. */
        char *copy = strdup(c->secret_copy);
        if (copy) {
            secret_free_str(p->aq_secret);
            p->aq_secret = copy;
        }
    }
    if (c->scram) {
        /* Remember the keys so the pool can log in to the server as this user. */
        if (c->scram->have_client_key && !db->cf->user) {
            memcpy(p->scram_client_key, c->scram->client_key, SCRAM_KEY_LEN);
            memcpy(p->scram_server_key, c->scram->secret.server_key, SCRAM_KEY_LEN);
            p->have_scram_keys = true;
        }
        scram_server_reset(c->scram);
        free(c->scram);
        c->scram = NULL;
    }
    c->secret = NULL;
    secret_free_str(c->secret_copy); /* authenticated: the secret is not needed any more */
    c->secret_copy = NULL;
    c->pool = p;
    if (db->admin && !admin_login_allowed(c))
        return;
    if (db->admin)
        c->replication = REPL_NONE; /* the console ignores it, as PgBouncer's does */
    db->client_count++;
    p->stats.client_login_count++;
    do {
        cancel_new_key(&c->cancel_pid, &c->cancel_key, random_u32);
    } while (cancel_hash_find(c->cancel_pid, c->cancel_key));
    cancel_hash_add(c);
    if (c->replication != REPL_NONE) {
        /* A server of its own (pool.c opens it); the welcome is that server's. */
        c->wait_start = now_usec();
        client_set_state(c, CL_WAITING);
        pool_service(p);
    } else if (p->welcome_ok) {
        client_set_state(c, CL_ACTIVE);
        client_finish_login(c);
    } else {
        /* Wait for the pool's first server login to learn the server's parameters. */
        client_set_state(c, CL_WAITING_LOGIN);
        c->wait_start = now_usec();
        pool_service(p);
    }
}

void client_finish_login(struct client *c)
{
    client_finish_login_from(c, &c->pool->welcome, &c->pool->welcome_vars);
}

void client_finish_login_from(struct client *c, const struct pktbuf *welcome,
                              const struct varcache *welcome_vars)
{
    /* Parameters the client did not ask for take the server's initial values. */
    for (int i = 0; i < VAR_COUNT; i++)
        if (!c->vars.val[i] && welcome_vars->val[i])
            varcache_set(&c->vars, (enum var_id)i, welcome_vars->val[i]);

    struct pktbuf b;
    pktbuf_init(&b);
    pktbuf_auth(&b, PROTO_AUTH_OK, NULL, 0);
    /* The welcome, with the client's own values for the tracked parameters. */
    struct pktreader r;
    pktreader_init(&r, welcome->data, welcome->len);
    while (r.p < r.end && !r.bad) {
        pktreader_byte(&r);
        uint32_t len = pktreader_int32(&r);
        const uint8_t *body = pktreader_bytes(&r, len >= 4 ? len - 4 : 0);
        if (!body)
            break;
        struct pktreader kr;
        pktreader_init(&kr, body, len - 4);
        const char *k = pktreader_string(&kr);
        const char *v = pktreader_string(&kr);
        if (!k || !v)
            continue;
        enum var_id id = varcache_lookup(k);
        pktbuf_param_status(&b, k, (id != VAR_COUNT && c->vars.val[id]) ? c->vars.val[id] : v);
    }
    pktbuf_start(&b, 'K');
    pktbuf_put_int32(&b, c->cancel_pid);
    pktbuf_put_int32(&b, c->cancel_key);
    pktbuf_finish(&b);
    pktbuf_ready(&b, 'I');
    if (!client_send_pkt(c, &b))
        return;
    c->request_time = now_usec();
    client_update_reading(c);
}

/* ---------------------------------------------------------------- input processing */

/* SSLRequest / GSSENCRequest, at most one of each per connection (libpq may ask for GSSAPI
 * and then TLS on one connection). Nothing may follow the request before our answer: after
 * an 'S' such bytes would pass for bytes that came through TLS (CVE-2021-23214), so they
 * are refused with PgBouncer's message. TLS is offered ('S', then the handshake) on TCP when
 * client_tls_sslmode is not disable; the startup packet is read once on_tls_ready said ok.
 * GSSAPI, and TLS on the Unix socket (libpq never asks there), get 'N'. False: closed. */
static bool answer_encryption_request(struct client *c, uint32_t code)
{
    bool ssl = code == PROTO_SSL_REQUEST_CODE;
    if (stream_avail(&c->st) > 0) {
        client_error_close(c, "08P01", "received unencrypted data after %s",
                           ssl ? "SSL request" : "GSSAPI encryption request");
        return false;
    }
    if (ssl)
        c->ssl_answered = true;
    else
        c->gss_answered = true;
    struct tls_ctx *ctx = ssl && !c->st.is_unix ? tls_accept_ctx() : NULL;
    if (!ctx)
        return client_send(c, "N", 1);
    if (!client_send(c, "S", 1))
        return false;
    if (stream_start_tls(&c->st, ctx, NULL) != 0) {
        client_log(c, LOG_LVL_WARNING, "TLS setup failed: %s", stream_tls_error(&c->st));
        client_close(c, "TLS setup failed");
        return false;
    }
    return true;
}

/* The handshake an 'S' started is over. A failure (garbage instead of a ClientHello, a
 * missing or unverifiable client certificate, a peer gone mid-way) closes the client: the
 * alert that says why went out already. A stalled one is client_login_timeout's. */
static void on_tls_ready(struct stream *st, bool ok, const char *why)
{
    struct client *c = st->owner;
    if (!ok) {
        client_log(c, LOG_LVL_WARNING, "TLS handshake error: %s", why ? why : "unknown");
        client_close(c, "TLS handshake failed");
        return;
    }
    if (log_enabled(LOG_LVL_DEBUG)) {
        char tls[128];
        stream_tls_describe(st, tls, sizeof(tls));
        client_log(c, LOG_LVL_DEBUG, "TLS established: %s", tls);
    }
}

/* client_tls_sslmode require and stricter: a TCP client must have come through TLS before
 * its startup packet (the Unix socket is exempt, as in PgBouncer). */
static bool plaintext_refused(const struct client *c)
{
    const struct tls_ctx *ctx = tls_accept_ctx();
    return ctx && tls_ctx_mode(ctx) >= TLS_REQUIRE && !c->st.is_unix && !stream_tls_active(&c->st);
}

/* Login phase: the startup packet (untyped) or a password message. */
static void process_login(struct client *c)
{
    struct stream *st = &c->st;
    while (!st->closing && c->state == CL_LOGIN && !c->aq_wait && stream_avail(st) > 0) {
        const uint8_t *p = st->buf + st->rpos;
        uint32_t avail = stream_avail(st);
        if (!c->startup_done) {
            if (avail < 4)
                return;
            uint32_t len = pkt_get32(p);
            if (len < 8 || len > MAX_STARTUP_LEN) {
                client_error_close(c, "08P01", "bad packet header");
                return;
            }
            if (avail < len)
                return;
            uint32_t code = pkt_get32(p + 4);
            st->rpos += len;
            /* A repeated request falls through to the version check, as in PostgreSQL. */
            if ((code == PROTO_SSL_REQUEST_CODE && !c->ssl_answered) ||
                (code == PROTO_GSSENC_REQUEST_CODE && !c->gss_answered)) {
                if (len != 8) {
                    client_error_close(c, "08P01", "bad packet header");
                    return;
                }
                if (!answer_encryption_request(c, code))
                    return;
                continue;
            }
            if (code == PROTO_CANCEL_REQUEST_CODE) {
                if (len != 16) {
                    client_error_close(c, "08P01", "bad packet header");
                    return;
                }
                handle_cancel(c, p);
                return;
            }
            if (code >> 16 == 2) {
                client_error_close(c, "08P01", "old V2 protocol not supported"); /* 1.25's */
                return;
            }
            if (code >> 16 != 3) {
                client_error_close(c, "08P01", "unsupported protocol version: %u.%u", code >> 16,
                                   code & 0xffff);
                return;
            }
            if (plaintext_refused(c)) {
                client_error_close(c, "08P01", "SSL required");
                return;
            }
            if ((code & 0xffff) != 0) {
                /* Newer minor version: say we speak 3.0 and no protocol extensions. */
                struct pktbuf b;
                pktbuf_init(&b);
                pktbuf_start(&b, 'v');
                pktbuf_put_int32(&b, PROTO_V3);
                pktbuf_put_int32(&b, 0);
                pktbuf_finish(&b);
                if (!client_send_pkt(c, &b))
                    return;
            }
            handle_startup(c, p, len);
            continue;
        }
        /* A typed message during authentication. */
        if (avail < 5)
            return;
        uint8_t type = p[0];
        uint32_t len = pkt_get32(p + 1);
        if (type == 'X') {
            client_close(c, "client close request");
            return;
        }
        if (type != 'p' || c->auth_step == 0) {
            client_error_close(c, "08P01", "unexpected message type '%c' during login",
                               type >= 32 && type < 127 ? type : '?');
            return;
        }
        if (len < 4 || len > MAX_AUTH_MSG_LEN) {
            client_error_close(c, "08P01", "bad packet header");
            return;
        }
        if (avail < len + 1)
            return;
        st->rpos += len + 1;
        handle_password_msg(c, p + 5, len - 4);
    }
}

static bool flush_to_server(struct client *c, uint32_t from)
{
    struct server *s = c->link;
    uint32_t n = c->st.rpos - from;
    if (n == 0 || !s)
        return true;
    c->pool->stats.bytes_received += n;
    if (!stream_write(&s->st, c->st.buf + from, n)) {
        server_close(s, "server write failed");
        return false;
    }
    return true;
}

/* Rewritten client messages for the server; reused, so no allocation per message. */
static struct pktbuf ps_out;

/* A Parse/Bind/Describe/Close under prepared-statement tracking: msg (total bytes long, avail
 * of them at hand) is shown to prepared.c, and what it says is done. msg is at st->rpos, the
 * bytes from *from on not yet forwarded; or (from NULL) it is a collected copy, freed here.
 * Returns 1 when the message was consumed (its replacement sent, the rest left to stream
 * through, or being collected), 0 when it passes unchanged, 2 when its head is not all here
 * yet, and -1 when the client was closed. */
static int relay_tracked(struct client *c, struct server *s, const uint8_t *msg, uint32_t avail,
                         uint32_t total, uint32_t *from)
{
    struct stream *st = &c->st;
    uint32_t consumed = 0;
    int r = 1;
    pktbuf_reset(&ps_out);
    enum ps_verdict v = prepared_client_msg(c, s, msg, avail, &ps_out, &consumed);
    switch (v) {
    case PS_PASS:
        if (from)
            return 0;
        /* A collected message passed on as it came (prepared.c rewrites every named one). */
        pktbuf_put_bytes(&ps_out, msg, total);
        break;
    case PS_MORE:
        if (from)
            return 2;
        client_error_close(c, "08P01", "invalid Parse message");
        r = -1;
        break;
    case PS_COLLECT:
        if (from && flush_to_server(c, *from) && prepared_collect_start(c, total)) {
            *from = st->rpos;
            return 1;
        }
        if (!st->closing)
            client_error_close(c, "53200", "out of memory");
        r = -1;
        break;
    case PS_FAIL:
        if (from)
            flush_to_server(c, *from);
        if (!st->closing)
            client_error_close(c, "08P01", "%s", prepared_error());
        r = -1;
        break;
    case PS_REWRITE:
        if (!from) {
            /* The rest of a collected message goes after its rewritten head. */
            pktbuf_put_bytes(&ps_out, msg + consumed, total - consumed);
            if (ps_out.failed) {
                client_error_close(c, "53200", "out of memory");
                r = -1;
            }
            break;
        }
        if (!flush_to_server(c, *from))
            return -1;
        st->rpos += consumed;
        *from = st->rpos;
        c->pool->stats.bytes_received += consumed;
        c->pkt_remain = total - consumed;
        break;
    }
    if (r > 0 && ps_out.len > 0 && !stream_write(&s->st, ps_out.data, ps_out.len)) {
        server_close(s, "server write failed");
        r = -1;
    }
    if (!from)
        prepared_collect_done(c);
    if (ps_out.cap > 65536)
        pktbuf_free(&ps_out); /* a huge Parse went through: do not keep its copy around */
    return r;
}

/* Logged in: relay messages to the linked server, asking for one when needed. */
static void process_active(struct client *c)
{
    struct stream *st = &c->st;
    uint32_t max_pkt = (uint32_t)G.cf->g.max_packet_size;
    if (c->pool->db->admin) {
        admin_process(c);
        if (!st->closing)
            client_update_reading(c);
        return;
    }
    while (!st->closing && c->state == CL_ACTIVE && stream_avail(st) > 0) {
        if (!c->link) {
            if (c->pkt_remain == 0 && st->buf[st->rpos] == 'X') {
                client_close(c, "client close request");
                return;
            }
            if (c->pkt_remain == 0 && st->buf[st->rpos] == 'Q' && G.cf->g.disable_pqexec) {
                client_error_close(c, "08P01", "PQexec disallowed");
                return;
            }
            if (!pool_client_wants_server(c))
                return; /* waiting; pool_service resumes us */
            if (st->closing || !c->link)
                return;
        }
        struct server *s = c->link;
        if (s->iq != IQ_NONE || s->st.queued > 0)
            return; /* resumed when the server is ready / drained */
        uint32_t from = st->rpos;
        uint64_t now = now_usec();
        /* Named prepared statements are tracked while enabled, and until every response
         * owed under tracking has come back (a reload may have turned it off). */
        bool track =
            (prepared_enabled(c->pool) || !prepared_server_quiet(s)) && c->replication == REPL_NONE;
        bool need_more = false;
        while (stream_avail(st) > 0) {
            if (c->pkt_remain) {
                stream_pass(st, &c->pkt_remain);
                continue;
            }
            if (prepared_collect_need(c)) {
                /* A message larger than the buffer that prepared.c must see whole. */
                uint32_t n = stream_avail(st), mlen = 0;
                if (n > prepared_collect_need(c))
                    n = prepared_collect_need(c);
                const uint8_t *m = prepared_collect(c, st->buf + st->rpos, n, &mlen);
                st->rpos += n;
                from = st->rpos;
                c->pool->stats.bytes_received += n;
                if (!m && prepared_collect_need(c))
                    continue;
                if (!m) {
                    client_error_close(c, "53200", "out of memory");
                    return;
                }
                if (relay_tracked(c, s, m, mlen, mlen, NULL) < 0)
                    return;
                continue;
            }
            if (stream_avail(st) < 5)
                break;
            const uint8_t *p = st->buf + st->rpos;
            uint8_t type = p[0];
            uint32_t len = pkt_get32(p + 1);
            if (len < 4 || len > max_pkt) {
                if (!flush_to_server(c, from))
                    return;
                client_error_close(c, "08P01",
                                   len < 4 ? "bad packet header" : "max_packet_size exceeded");
                return;
            }
            if (type == 'X') {
                if (!flush_to_server(c, from))
                    return;
                st->rpos += 5;
                client_close(c, "client close request");
                return;
            }
            if (type == 'Q' && G.cf->g.disable_pqexec) {
                client_error_close(c, "08P01", "PQexec disallowed");
                return;
            }
            bool tracked = track && (type == 'P' || type == 'B' || type == 'D' || type == 'C');
            if (track && !tracked && !prepared_client_note(s, type)) {
                client_error_close(c, "53200", "out of memory");
                return;
            }
            switch (type) {
            case 'Q':
                c->pool->stats.query_count++;
                /* fallthrough */
            case 'S':
            case 'F':
                if (s->expect_rfq == 0)
                    c->query_start = now;
                s->expect_rfq++;
                s->open_batch = false;
                break;
            case 'P':
            case 'B':
                /* Parse/bind counts are those of tracked statements (prepared.c counts),
                 * as in PgBouncer: none in session pooling. */
                s->open_batch = true;
                break;
            case 'E':
                c->pool->stats.query_count++;
                s->open_batch = true;
                break;
            case 'D':
            case 'C':
                s->open_batch = true;
                break;
            default:
                break;
            }
            if (s->tx_status == 'I' && s->expect_rfq <= 1 && c->xact_start == 0)
                c->xact_start = now;
            if (tracked) {
                int r = relay_tracked(c, s, p, stream_avail(st), len + 1, &from);
                if (r < 0)
                    return;
                if (r == 2) {
                    need_more = true;
                    break;
                }
                if (r == 1)
                    continue; /* consumed (rewritten, answered or being collected) */
            }
            st->rpos += 5;
            c->pkt_remain = len - 4;
        }
        c->request_time = now;
        s->request_time = now;
        s->dirty = true;
        if (!flush_to_server(c, from))
            return;
        if (track)
            server_send_synth(s);
        if (st->closing || c->link != s)
            return;
        stream_compact(st);
        if (need_more && stream_full(st)) {
            client_error_close(c, "08P01", "prepared statement name too long");
            return;
        }
        if (need_more)
            break;
        if (s->st.queued > 0)
            break; /* wait for the server socket to drain */
        if (stream_avail(st) > 0 && stream_avail(st) < 5)
            break; /* a partial header: wait for more */
    }
    client_update_reading(c);
}

static void on_read(struct stream *st)
{
    struct client *c = st->owner;
    if (c->state == CL_LOGIN)
        process_login(c);
    else if (c->state == CL_ACTIVE)
        process_active(c);
    if (!st->closing) {
        stream_compact(st);
        /* A login client's answers go out now, so that reading stops while they cannot. */
        if (c->state == CL_LOGIN && !stream_flush(st))
            return; /* on_error closed it */
        if (c->state == CL_WAITING || c->state == CL_WAITING_LOGIN || c->state == CL_LOGIN)
            client_update_reading(c); /* kept until the buffer is full */
    }
}

void client_update_reading(struct client *c)
{
    if (c->st.closing || c->close_after_flush)
        return;
    bool want = false;
    /* A client still logging in, or on the console, is not read while its answers are
     * queued: one that sends and never reads costs a buffer, not an unbounded queue.
     * on_drain reads it again. */
    if (c->state == CL_LOGIN) {
        want = c->st.queued == 0;
    } else if (c->state == CL_WAITING || c->state == CL_WAITING_LOGIN) {
        want = true;
    } else if (c->state == CL_ACTIVE && c->pool->db->admin) {
        want = c->admin_wait == 0 && c->st.queued == 0;
    } else if (c->state == CL_ACTIVE) {
        if (!c->link)
            want = stream_avail(&c->st) == 0;
        else
            want = c->link->iq == IQ_NONE && c->link->st.queued == 0;
    }
    if (want && stream_full(&c->st))
        want = false;
    /* SUSPEND: only the console is read (pool_suspend_check waits for the rest to flush);
     * handed over to the process that replaces this one: its bytes are that one's now. */
    if (want && (G.suspended || takeover_handed_over()) &&
        !(c->state == CL_ACTIVE && c->pool->db->admin))
        want = false;
    if (want)
        stream_read_start(&c->st);
    else
        stream_read_stop(&c->st);
}

void client_resume(struct client *c)
{
    if (c->st.closing)
        return;
    if (stream_avail(&c->st) > 0 && c->state == CL_ACTIVE)
        process_active(c);
    if (!c->st.closing) {
        stream_compact(&c->st);
        client_update_reading(c);
    }
}

/* ---------------------------------------------------------------- online restart */

struct client *client_adopt(int fd, struct pool *p, const struct takeover_row *row)
{
    bool is_unix = strcmp(row->addr, "unix") == 0;
    struct client *c = client_new(fd, is_unix, "takeover: could not adopt the socket");
    if (!c)
        return NULL;
    c->user_name = str_intern(row->user);
    c->db_name = str_intern(row->database);
    snprintf(c->addr, sizeof(c->addr), "%.*s", (int)sizeof(c->addr) - 1, row->addr);
    c->port = row->port;
    if (!c->user_name || !c->db_name) {
        client_close(c, "out of memory");
        return NULL;
    }
    c->startup_done = true;
    c->db = p->db;
    p->db->cl_refs++;
    c->pool = p;
    p->db->client_count++;
    takeover_row_vars(row, &c->vars);
    /* Its key as the old process gave it out (a duplicate would be a broken old process:
     * then it gets a fresh one, and cancels with the old key no longer reach it). */
    c->cancel_pid = row->cancel_pid;
    c->cancel_key = row->cancel_key;
    if (!row->has_cancel || cancel_hash_find(c->cancel_pid, c->cancel_key)) {
        do {
            cancel_new_key(&c->cancel_pid, &c->cancel_key, random_u32);
        } while (cancel_hash_find(c->cancel_pid, c->cancel_key));
    }
    cancel_hash_add(c);
    client_set_state(c, CL_ACTIVE);
    return c;
}
