/*
 * admin.c: the admin console: who may log in, the command table and its pure parser
 * (admin_parse_command: no client, no loop, fuzzable), the dispatch, and the control commands
 * (PAUSE, RESUME, SUSPEND, RELOAD, KILL, SHUTDOWN, SET...), which act through pool.c. What SHOW
 * prints is show.c's. Simple query protocol only; bad input gets an ErrorResponse and the
 * console stays usable.
 */
#include "pgusher/admin.h"

#include "pgusher/client.h"
#include "pgusher/listener.h"
#include "pgusher/log.h"
#include "pgusher/metrics.h"
#include "pgusher/pool.h"
#include "pgusher/runtime.h"
#include "pgusher/sdnotify.h"
#include "pgusher/secret.h"
#include "pgusher/show.h"
#include "pgusher/server.h"
#include "pgusher/takeover.h"
#include "pgusher/varcache.h"

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

static struct database *console_db;

bool admin_is_console_db(const char *name)
{
    return strcmp(name, "pgbouncer") == 0 || strcmp(name, "pgusher") == 0;
}

void admin_init(void)
{
    console_db = database_find("pgbouncer", false);
    if (console_db) {
        console_db->admin = true;
        return;
    }
    struct database *db = calloc(1, sizeof(*db));
    struct cf_database *cf = calloc(1, sizeof(*cf));
    if (!db || !cf)
        log_fatal("out of memory");
    char err[256];
    if (!config_parse_database("pgbouncer", "", cf, err, sizeof(err)))
        log_fatal("console database: %s", err);
    cf->pool_mode = POOL_STATEMENT;
    db->cf = cf;
    db->name = strdup("pgbouncer");
    db->admin = true;
    list_init(&db->pools);
    database_link_sorted(db);
    console_db = db;
}

/* Is name in a comma/space separated list (admin_users, stats_users)? */
static bool in_list(const char *list, const char *name)
{
    return config_list_has(list, name, false);
}

static void fill_welcome(struct pool *p)
{
    if (p->welcome_ok)
        return;
    static const char *const params[][2] = {
        {"server_version", "15.0 (pgusher " PGUSHER_VERSION ")"},
        {"server_encoding", "UTF8"},
        {"client_encoding", "UTF8"},
        {"DateStyle", "ISO, MDY"},
        {"TimeZone", "UTC"},
        {"standard_conforming_strings", "on"},
        {"integer_datetimes", "on"},
        {"IntervalStyle", "postgres"},
        {"application_name", ""},
    };
    for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
        pktbuf_param_status(&p->welcome, params[i][0], params[i][1]);
        enum var_id id = varcache_lookup(params[i][0]);
        if (id != VAR_COUNT)
            varcache_set(&p->welcome_vars, id, params[i][1]);
    }
    p->welcome_ok = true;
}

/* The credentials of a Unix-socket client's process (SO_PEERCRED). */
static bool peer_cred(struct client *c, struct ucred *cred)
{
    uv_os_fd_t fd;
    socklen_t len = sizeof(*cred);
    return c->st.is_unix && !c->st.closing && uv_fileno(&c->st.h.handle, &fd) == 0 &&
           getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, &len) == 0;
}

int admin_peer_pid(struct client *c)
{
    struct ucred cred;
    return peer_cred(c, &cred) ? cred.pid : 0;
}

bool admin_peer_is_self(struct client *c)
{
    struct ucred cred;
    return peer_cred(c, &cred) && cred.uid == geteuid();
}

bool admin_login_allowed(struct client *c)
{
    const struct cf_global *g = &G.cf->g;
    bool full = in_list(g->admin_users, c->user_name);
    bool stats = in_list(g->stats_users, c->user_name);
    if (!full && !stats && strcmp(c->user_name, "pgbouncer") == 0 && admin_peer_is_self(c))
        full = true; /* the "pgbouncer" user over the Unix socket, from our own OS user */
    if (G.cf->g.auth_type == AUTH_TYPE_ANY)
        full = true; /* PgBouncer: under auth_type = any, anyone is the console's admin */
    if (!full && !stats) {
        client_error_close(c, "28000", "not allowed");
        return false;
    }
    c->admin_readonly = !full;
    fill_welcome(c->pool);
    return true;
}

/* ---------------------------------------------------------------- replies */

void admin_reply(struct client *c, struct pktbuf *b, const char *tag)
{
    pktbuf_start(b, 'C');
    pktbuf_put_string(b, tag);
    pktbuf_finish(b);
    pktbuf_ready(b, 'I');
    if (!b->failed)
        client_send(c, b->data, b->len);
    pktbuf_free(b);
}

static void send_tag(struct client *c, const char *tag)
{
    struct pktbuf b;
    pktbuf_init(&b);
    admin_reply(c, &b, tag);
}

static void send_error(struct client *c, const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void send_error(struct client *c, const char *sqlstate, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (G.cf->g.log_pooler_errors) /* as PgBouncer 1.25 logs every console error */
        client_log(c, LOG_LVL_WARNING, "pooler error: %s", msg);
    struct pktbuf b;
    pktbuf_init(&b);
    pktbuf_error(&b, "ERROR", sqlstate, msg);
    pktbuf_ready(&b, 'I');
    if (!b.failed)
        client_send(c, b.data, b.len);
    pktbuf_free(&b);
}

/* ---------------------------------------------------------------- control commands */

void admin_pause(struct database *db)
{
    if (db)
        db->paused = true;
    else
        G.paused = true;
    /* Idle servers go now; active ones when their clients release them. */
    FOR_EACH_POOL(d, p)
    {
        if (db && d != db)
            continue;
        struct server *s;
        while (!list_empty(&p->sv_idle)) {
            s = container_of(p->sv_idle.next, struct server, node);
            server_close(s, "pause mode");
        }
    }
}

void admin_resume(struct database *db)
{
    if (!db)
        takeover_abort(); /* a new process that gave up says RESUME */
    if (db) {
        db->paused = false;
    } else {
        bool was_suspended = G.suspended;
        G.paused = false;
        G.suspended = false;
        FOR_EACH_DB(d)
        {
            d->paused = false;
        }
        if (was_suspended) {
            listener_pause(false);
            pool_suspend_reading();
        }
    }
    FOR_EACH_POOL(d, p)
    {
        pool_service(p);
    }
}

static bool servers_gone(const struct database *only)
{
    FOR_EACH_POOL(db, p)
    {
        if (only && db != only)
            continue;
        if (db->admin)
            continue;
        if (pool_server_total(p) > 0)
            return false;
    }
    return true;
}

static bool close_needed_gone(const struct database *only)
{
    FOR_EACH_POOL(db, p)
    {
        if (only && db != only)
            continue;
        struct list *lists[POOL_SV_NLISTS];
        pool_server_lists(p, lists);
        for (int i = 0; i < POOL_SV_NLISTS; i++) {
            struct list *it;
            list_for_each(it, lists[i])
            {
                if (container_of(it, struct server, node)->close_needed)
                    return false;
            }
        }
    }
    return true;
}

static void kill_pools(struct database *db, struct client *except, const char *reason)
{
    struct list *pi;
    list_for_each(pi, &db->pools)
    {
        struct pool *p = container_of(pi, struct pool, node);
        while (!list_empty(&p->cl_waiting))
            client_error_close(container_of(p->cl_waiting.next, struct client, node), "08P01", "%s",
                               reason);
        struct list *it, *tmp;
        list_for_each_safe(it, tmp, &p->cl_active)
        {
            struct client *c = container_of(it, struct client, node);
            if (c != except)
                client_error_close(c, "08P01", "%s", reason);
        }
        struct list *lists[POOL_SV_NLISTS];
        pool_server_lists(p, lists);
        for (int i = 0; i < POOL_SV_NLISTS; i++)
            while (!list_empty(lists[i]))
                server_close(container_of(lists[i]->next, struct server, node), "%s", reason);
    }
}

void admin_kill_database(struct database *db, const char *reason)
{
    kill_pools(db, NULL, reason);
}

static void kill_db(struct database *only, struct client *except)
{
    FOR_EACH_DB(db)
    {
        if ((only && db != only) || db->admin)
            continue;
        kill_pools(db, except, "database removed");
    }
}

static struct client *find_client_by_id(uint64_t id)
{
    struct list *it;
    list_for_each(it, &G.login_clients)
    {
        struct client *c = container_of(it, struct client, node);
        if (c->id == id)
            return c;
    }
    FOR_EACH_POOL(db, p)
    {
        struct list *lists[] = {&p->cl_active, &p->cl_waiting};
        for (int i = 0; i < 2; i++) {
            list_for_each(it, lists[i])
            {
                struct client *c = container_of(it, struct client, node);
                if (c->id == id)
                    return c;
            }
        }
    }
    return NULL;
}

void admin_shutdown(int mode)
{
    if (takeover_handed_over())
        takeover_exit(); /* the new process has the sockets: touch none of them */
    sdnotify_stopping("shutting down");
    if (mode == SHUTDOWN_NOW || G.shutdown_mode != SHUTDOWN_NONE) {
        log_info("shutting down immediately");
        G.shutdown_mode = SHUTDOWN_NOW;
        G.shutting_down = true;
        listener_stop();
        uv_stop(G.loop);
        return;
    }
    G.shutdown_mode = mode;
    G.shutting_down = true;
    listener_stop_tcp(); /* the console stays reachable on the Unix socket */
    if (mode == SHUTDOWN_WAIT_FOR_SERVERS)
        admin_pause(NULL);
    /* The janitor ends it (soon): the console that asked gets its answer and may leave. */
}

/* The end of a shutdown that waited: clients still waiting for a server (paused by
 * WAIT_FOR_SERVERS) get PgBouncer 1.25's "server shutting down"; the others are closed
 * without a word, as there. */
static void say_goodbye(void)
{
    FOR_EACH_POOL(db, p)
    {
        while (!list_empty(&p->cl_waiting)) {
            struct client *c = container_of(p->cl_waiting.next, struct client, node);
            client_error_close(c, "08P01", "server shutting down");
        }
    }
}

static int count_clients_non_admin(void)
{
    int n = (int)list_count(&G.login_clients);
    FOR_EACH_POOL(db, p)
    {
        if (!db->admin)
            n += p->n_cl_active + p->n_cl_waiting;
    }
    return n;
}

static bool admin_wait_done(struct client *c)
{
    struct database *db = c->admin_wait_db ? database_find(c->admin_wait_db, false) : NULL;
    switch (c->admin_wait) {
    case ADMIN_WAIT_PAUSE:
        return servers_gone(db);
    case ADMIN_WAIT_CLOSE:
        return close_needed_gone(db);
    case ADMIN_WAIT_SUSPEND:
        /* Every connection flushed, or suspend_timeout over: those that were not are
         * closed, and the console gets its answer. */
        if (!G.suspended)
            return true; /* a RESUME from another console came first */
        return pool_suspend_check(now_usec() - G.suspend_start >=
                                  (uint64_t)G.cf->g.suspend_timeout) == 0;
    default:
        return true;
    }
}

void admin_janitor(void)
{
    if (console_db) {
        struct list *it;
        list_for_each(it, &console_db->pools)
        {
            struct pool *p = container_of(it, struct pool, node);
            struct list *ci, *tmp;
            list_for_each_safe(ci, tmp, &p->cl_active)
            {
                struct client *c = container_of(ci, struct client, node);
                if (c->admin_wait == ADMIN_WAIT_NONE || !admin_wait_done(c))
                    continue;
                static const char *const tags[] = {"", "PAUSE", "WAIT_CLOSE", "SUSPEND"};
                const char *tag = tags[c->admin_wait];
                c->admin_wait = ADMIN_WAIT_NONE;
                free(c->admin_wait_db);
                c->admin_wait_db = NULL;
                send_tag(c, tag);
                client_resume(c);
            }
        }
    }
    if ((G.shutdown_mode == SHUTDOWN_WAIT_FOR_SERVERS && servers_gone(NULL)) ||
        (G.shutdown_mode == SHUTDOWN_WAIT_FOR_CLIENTS && count_clients_non_admin() == 0)) {
        say_goodbye();
        admin_shutdown(SHUTDOWN_NOW);
    }
}

/* ---------------------------------------------------------------- command parsing */

/* Split "word1 word2 rest" at blanks, in place, into at most max words. */
static int split_words(char *q, char **w, int max)
{
    int n = 0;
    char *p = q;
    while (*p && n < max) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        w[n++] = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
        if (*p)
            *p++ = 0;
    }
    return n;
}

static void strip_quotes(char *s)
{
    size_t n = strlen(s);
    if (n >= 2 && ((s[0] == '\'' && s[n - 1] == '\'') || (s[0] == '"' && s[n - 1] == '"'))) {
        memmove(s, s + 1, n - 2);
        s[n - 2] = 0;
    }
}

/* What a command takes after its name. */
enum admin_args {
    ARGS_NONE,      /* nothing; one extra word is ignored (as it always was), two are an error */
    ARGS_OPT_DB,    /* an optional database name */
    ARGS_DB,        /* a database name */
    ARGS_CLIENT_ID, /* a client id (SHOW CLIENTS' id column) */
    ARGS_SHOW,      /* exactly one word naming a SHOW_TABLE row */
    ARGS_SET,       /* key = value, the value optionally quoted */
    ARGS_SHUTDOWN,  /* nothing, WAIT_FOR_SERVERS or WAIT_FOR_CLIENTS */
};

static void cmd_show(struct client *c, const struct admin_cmd *cmd, struct database *db);
static void cmd_set(struct client *c, const struct admin_cmd *cmd, struct database *db);
static void cmd_pause(struct client *c, const struct admin_cmd *cmd, struct database *db);
static void cmd_resume(struct client *c, const struct admin_cmd *cmd, struct database *db);
static void cmd_suspend(struct client *c, const struct admin_cmd *cmd, struct database *db);
static void cmd_disable(struct client *c, const struct admin_cmd *cmd, struct database *db);
static void cmd_enable(struct client *c, const struct admin_cmd *cmd, struct database *db);
static void cmd_reconnect(struct client *c, const struct admin_cmd *cmd, struct database *db);
static void cmd_kill(struct client *c, const struct admin_cmd *cmd, struct database *db);
static void cmd_kill_client(struct client *c, const struct admin_cmd *cmd, struct database *db);
static void cmd_wait_close(struct client *c, const struct admin_cmd *cmd, struct database *db);
static void cmd_reload(struct client *c, const struct admin_cmd *cmd, struct database *db);
static void cmd_shutdown(struct client *c, const struct admin_cmd *cmd, struct database *db);

/* The console's commands. db is the database named by an ARGS_(OPT_)DB argument, looked up
 * by the dispatch (NULL when none was given). */
static const struct {
    const char *name;
    enum admin_args args;
    bool readonly_ok; /* a stats_users user may run it */
    void (*run)(struct client *c, const struct admin_cmd *cmd, struct database *db);
} COMMANDS[] = {
    {"show", ARGS_SHOW, true, cmd_show},
    {"set", ARGS_SET, false, cmd_set},
    {"pause", ARGS_OPT_DB, false, cmd_pause},
    {"resume", ARGS_OPT_DB, false, cmd_resume},
    {"suspend", ARGS_NONE, false, cmd_suspend},
    {"disable", ARGS_DB, false, cmd_disable},
    {"enable", ARGS_DB, false, cmd_enable},
    {"reconnect", ARGS_OPT_DB, false, cmd_reconnect},
    {"kill", ARGS_OPT_DB, false, cmd_kill},
    {"kill_client", ARGS_CLIENT_ID, false, cmd_kill_client},
    {"wait_close", ARGS_OPT_DB, false, cmd_wait_close},
    {"reload", ARGS_NONE, false, cmd_reload},
    {"shutdown", ARGS_SHUTDOWN, false, cmd_shutdown},
};

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static bool parse_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool parse_error(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return false;
}

static bool invalid_command(const struct admin_cmd *out, char *err, size_t errlen)
{
    return parse_error(err, errlen, "invalid command '%s', use SHOW HELP;", out->text);
}

/* SET key = value: the text after "SET"; the key is checked against the settings table by
 * the dispatch, not here. */
static bool parse_set(struct admin_cmd *out, char *err, size_t errlen)
{
    const char *p = out->text + 3;
    while (isspace((unsigned char)*p))
        p++;
    const char *eq = strchr(p, '=');
    if (!eq)
        return parse_error(err, errlen, "SET: expected key = value");
    size_t kl = (size_t)(eq - p);
    while (kl > 0 && isspace((unsigned char)p[kl - 1]))
        kl--;
    if (kl == 0 || kl >= sizeof(out->key))
        return parse_error(err, errlen, "SET: bad key");
    memcpy(out->key, p, kl);
    out->key[kl] = 0;
    const char *v = eq + 1;
    while (isspace((unsigned char)*v))
        v++;
    snprintf(out->value, sizeof(out->value), "%s", v);
    size_t vl = strlen(out->value);
    while (vl > 0 && (isspace((unsigned char)out->value[vl - 1]) || out->value[vl - 1] == ';'))
        out->value[--vl] = 0;
    strip_quotes(out->value);
    return true;
}

bool admin_parse_command(const char *query, struct admin_cmd *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    out->index = out->show_index = -1;
    out->shutdown_mode = SHUTDOWN_NOW;
    if (err && errlen)
        err[0] = 0;

    /* The text: at most ADMIN_QUERY_MAX - 1 bytes of the query, trimmed of blanks (and of
     * trailing ';') on both ends. */
    char buf[ADMIN_QUERY_MAX];
    snprintf(buf, sizeof(buf), "%s", query);
    size_t n = strlen(buf);
    while (n > 0 && (isspace((unsigned char)buf[n - 1]) || buf[n - 1] == ';'))
        buf[--n] = 0;
    const char *start = buf;
    while (isspace((unsigned char)*start))
        start++;
    if (!*start) {
        out->empty = true;
        return true;
    }
    snprintf(out->text, sizeof(out->text), "%s", start);

    /* Up to four words; the first two compared case-insensitively. */
    char words[ADMIN_QUERY_MAX], *w[4] = {0};
    snprintf(words, sizeof(words), "%s", out->text);
    int nw = split_words(words, w, 4);
    snprintf(out->arg, sizeof(out->arg), "%s", nw > 1 ? w[1] : "");
    for (int i = 0; i < nw && i < 2; i++)
        for (char *p = w[i]; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    for (size_t i = 0; i < N_ELEMS(COMMANDS); i++) {
        if (strcmp(w[0], COMMANDS[i].name) == 0) {
            out->index = (int)i;
            out->name = COMMANDS[i].name;
            out->readonly_ok = COMMANDS[i].readonly_ok;
            break;
        }
    }
    if (!out->name)
        return invalid_command(out, err, errlen);

    switch (COMMANDS[out->index].args) {
    case ARGS_SHOW:
        if (nw != 2)
            return invalid_command(out, err, errlen);
        out->show_index = show_find(w[1]);
        if (out->show_index < 0)
            return invalid_command(out, err, errlen);
        out->show = show_name(out->show_index);
        return true;
    case ARGS_SET:
        return parse_set(out, err, errlen);
    case ARGS_SHUTDOWN:
        if (nw == 2 && strcmp(w[1], "wait_for_servers") == 0)
            out->shutdown_mode = SHUTDOWN_WAIT_FOR_SERVERS;
        else if (nw == 2 && strcmp(w[1], "wait_for_clients") == 0)
            out->shutdown_mode = SHUTDOWN_WAIT_FOR_CLIENTS;
        else if (nw != 1)
            return invalid_command(out, err, errlen);
        return true;
    case ARGS_DB:
        if (nw > 2)
            return invalid_command(out, err, errlen);
        if (!out->arg[0])
            return parse_error(err, errlen, "%s requires a database name", out->name);
        return true;
    case ARGS_CLIENT_ID:
        if (nw > 2)
            return invalid_command(out, err, errlen);
        /* A word (letters, digits, _) or nothing; anything else is no command at all, as in
         * PgBouncer 1.25 ("KILL_CLIENT -1"). */
        for (const char *q = out->arg; *q; q++)
            if (!isalnum((unsigned char)*q) && *q != '_')
                return invalid_command(out, err, errlen);
        if (out->arg[0] && isdigit((unsigned char)out->arg[0])) {
            char *end = NULL;
            errno = 0;
            out->client_id = strtoull(out->arg, &end, 10);
            out->client_id_ok = end && !*end && errno == 0;
        }
        return true;
    case ARGS_NONE:
    case ARGS_OPT_DB:
        if (nw > 2)
            return invalid_command(out, err, errlen);
        return true;
    }
    return invalid_command(out, err, errlen);
}

/* ---------------------------------------------------------------- command handlers */

static void cmd_show(struct client *c, const struct admin_cmd *cmd, struct database *db)
{
    show_run(c, cmd->show_index);
}

static bool is_log_setting(const char *name)
{
    static const char *const names[] = {"verbose", "logfile", "syslog", "syslog_ident",
                                        "syslog_facility"};
    for (size_t i = 0; i < N_ELEMS(names); i++)
        if (strcmp(name, names[i]) == 0)
            return true;
    return false;
}

static void cmd_set(struct client *c, const struct admin_cmd *cmd, struct database *db)
{
    const struct cf_setting *s = config_find_setting(cmd->key);
    if (!s) {
        send_error(c, "08P01", "unknown parameter: %s", cmd->key);
        return;
    }
    if (!s->reloadable) {
        send_error(c, "08P01", "parameter %s cannot be changed at run time", s->name);
        return;
    }
    char err[512];
    if (!config_setting_set(G.cf, s, cmd->value, err, sizeof(err))) {
        send_error(c, "08P01", "%s", err);
        return;
    }
    G.cf_gen++;
    if (strncmp(s->name, "tcp_", 4) == 0)
        listener_retune();
    if (strcmp(s->name, "metrics_listen") == 0)
        metrics_apply(); /* an unbindable address is logged and turns the endpoint off */
    /* A secret setting is shown masked: in the log and in the reply. */
    char buf[512];
    const char *shown = config_setting_shown(G.cf, s, buf, sizeof(buf));
    log_info("SET %s = %s", s->name, s->secret ? shown : cmd->value);
    if (is_log_setting(s->name))
        admin_apply_log_settings(G.cf);
    char tag[256];
    snprintf(tag, sizeof(tag), "SET %s=%s", s->name, shown);
    send_tag(c, tag);
    secret_wipe(buf, sizeof(buf));
    secret_wipe(tag, sizeof(tag));
}

/* "KILL 'db' command issued" / "KILL command issued", PgBouncer 1.25's line. */
static void log_command(const char *cmd, const struct database *db)
{
    if (db)
        log_info("%s '%s' command issued", cmd, db->name);
    else
        log_info("%s command issued", cmd);
}

static void start_wait(struct client *c, int what, const char *db)
{
    c->admin_wait = what;
    free(c->admin_wait_db);
    c->admin_wait_db = db ? strdup(db) : NULL;
    admin_janitor();
}

static void cmd_pause(struct client *c, const struct admin_cmd *cmd, struct database *db)
{
    if (G.paused || G.suspended) {
        send_error(c, "08P01", "already suspended/paused");
        return;
    }
    if (db && db->paused) {
        send_tag(c, "PAUSE"); /* PgBouncer 1.25 answers a repeated PAUSE db so */
        return;
    }
    log_command("PAUSE", db);
    admin_pause(db);
    start_wait(c, ADMIN_WAIT_PAUSE, db ? db->name : NULL);
}

static void cmd_resume(struct client *c, const struct admin_cmd *cmd, struct database *db)
{
    if (G.shutting_down) {
        log_info("RESUME command issued");
        send_error(c, "08P01", "pooler is shutting down");
        return;
    }
    if (!db && !G.paused && !G.suspended) {
        bool any = false;
        FOR_EACH_DB(d)
        {
            any = any || d->paused;
        }
        if (!any) {
            send_error(c, "08P01", "pooler is not paused/suspended");
            return;
        }
    } else if (db && !db->paused) {
        send_error(c, "08P01", "database %s is not paused", db->name);
        return;
    }
    log_command("RESUME", db);
    admin_resume(db);
    send_tag(c, "RESUME");
}

static void cmd_suspend(struct client *c, const struct admin_cmd *cmd, struct database *db)
{
    if (G.paused || G.suspended) {
        send_error(c, "08P01", "already suspended/paused");
        return;
    }
    log_info("SUSPEND command issued");
    /* Nothing new starts, but the server connections stay (PgBouncer 1.25 keeps them for
     * the process that takes over after an online restart). No connection is accepted and
     * none but the console's is read any more; the answer comes when every buffer has been
     * passed on and sent (admin_wait_done), or suspend_timeout closed those that were not. */
    G.suspended = true;
    G.paused = true;
    G.suspend_start = now_usec();
    listener_pause(true);
    pool_suspend_reading();
    start_wait(c, ADMIN_WAIT_SUSPEND, NULL);
}

static void cmd_disable(struct client *c, const struct admin_cmd *cmd, struct database *db)
{
    db->disabled = true;
    send_tag(c, "DISABLE");
}

static void cmd_enable(struct client *c, const struct admin_cmd *cmd, struct database *db)
{
    db->disabled = false;
    send_tag(c, "ENABLE");
}

static void cmd_reconnect(struct client *c, const struct admin_cmd *cmd, struct database *db)
{
    log_command("RECONNECT", db);
    pool_reconnect(db);
    send_tag(c, "RECONNECT");
}

static void cmd_kill(struct client *c, const struct admin_cmd *cmd, struct database *db)
{
    log_command("KILL", db);
    /* KILL alone (PgBouncer 1.25) kills every database; all wait for RESUME. */
    FOR_EACH_DB(d)
    {
        if (!d->admin && (!db || d == db))
            d->paused = true;
    }
    kill_db(db, c);
    send_tag(c, "KILL");
}

static void cmd_kill_client(struct client *c, const struct admin_cmd *cmd, struct database *db)
{
    if (!cmd->client_id_ok) {
        log_error("invalid client pointer supplied");
        send_error(c, "08P01", "invalid client pointer supplied");
        return;
    }
    struct client *victim = find_client_by_id(cmd->client_id);
    if (!victim) {
        send_error(c, "08P01", "client not found");
        return;
    }
    if (victim == c) {
        send_error(c, "08P01", "cannot kill the current connection");
        return;
    }
    client_error_close(victim, "08P01", "client killed by admin");
    send_tag(c, "KILL_CLIENT");
}

static void cmd_wait_close(struct client *c, const struct admin_cmd *cmd, struct database *db)
{
    log_command("WAIT_CLOSE", db);
    start_wait(c, ADMIN_WAIT_CLOSE, db ? db->name : NULL);
}

static void cmd_reload(struct client *c, const struct admin_cmd *cmd, struct database *db)
{
    char err[1024];
    log_info("RELOAD command issued");
    if (!admin_reload(err, sizeof(err))) {
        /* PgBouncer's words, and why (file:line) as the error's DETAIL. */
        static const char msg[] = "RELOAD failed, see logs for additional details";
        if (G.cf->g.log_pooler_errors)
            client_log(c, LOG_LVL_WARNING, "pooler error: %s", msg);
        struct pktbuf b;
        pktbuf_init(&b);
        pktbuf_start(&b, 'E');
        static const char *const fields[][2] = {{"S", "ERROR"}, {"V", "ERROR"}, {"C", "F0000"}};
        for (size_t i = 0; i < 3; i++) {
            pktbuf_put_byte(&b, (uint8_t)fields[i][0][0]);
            pktbuf_put_string(&b, fields[i][1]);
        }
        pktbuf_put_byte(&b, 'M');
        pktbuf_put_string(&b, msg);
        pktbuf_put_byte(&b, 'D');
        pktbuf_put_string(&b, err);
        pktbuf_put_byte(&b, 0);
        pktbuf_finish(&b);
        pktbuf_ready(&b, 'I');
        if (!b.failed)
            client_send(c, b.data, b.len);
        pktbuf_free(&b);
        return;
    }
    send_tag(c, "RELOAD");
}

static void cmd_shutdown(struct client *c, const struct admin_cmd *cmd, struct database *db)
{
    static const char *const modes[] = {
        [SHUTDOWN_WAIT_FOR_SERVERS] = " WAIT_FOR_SERVERS",
        [SHUTDOWN_WAIT_FOR_CLIENTS] = " WAIT_FOR_CLIENTS",
    };
    const char *m = cmd->shutdown_mode == SHUTDOWN_WAIT_FOR_SERVERS ||
                            cmd->shutdown_mode == SHUTDOWN_WAIT_FOR_CLIENTS
                        ? modes[cmd->shutdown_mode]
                        : "";
    log_info("SHUTDOWN%s command issued", m);
    send_tag(c, "SHUTDOWN");
    admin_shutdown(cmd->shutdown_mode);
}

/* Parse, check access, look the database argument up, run. */
static void handle_query(struct client *c, const char *query)
{
    struct admin_cmd cmd;
    char err[512];
    bool ok = admin_parse_command(query, &cmd, err, sizeof(err));
    if (cmd.empty) {
        /* An empty query: EmptyQueryResponse, as PostgreSQL does. */
        struct pktbuf b;
        pktbuf_init(&b);
        pktbuf_start(&b, 'I');
        pktbuf_finish(&b);
        pktbuf_ready(&b, 'I');
        if (!b.failed)
            client_send(c, b.data, b.len);
        pktbuf_free(&b);
    } else if (c->admin_readonly && !cmd.readonly_ok) {
        send_error(c, "42501", "admin access needed");
    } else if (!ok) {
        log_error("%s", err);
        send_error(c, "08P01", "%s", err);
    } else {
        enum admin_args args = COMMANDS[cmd.index].args;
        struct database *db = NULL;
        if ((args == ARGS_OPT_DB || args == ARGS_DB) && cmd.arg[0]) {
            db = database_find(cmd.arg, false);
            if (!db || db->admin) {
                send_error(c, "08P01", "no such database: %s", cmd.arg);
                db = NULL;
                goto done;
            }
        }
        COMMANDS[cmd.index].run(c, &cmd, db);
    }
done:
    secret_wipe(&cmd, sizeof(cmd)); /* SET may have carried a password */
    secret_wipe(err, sizeof(err));
}

void admin_process(struct client *c)
{
    struct stream *st = &c->st;
    uint8_t type;
    const uint8_t *body;
    uint32_t blen;
    int r;
    /* A console client that does not read its answers gets no more of them: commands wait
     * in its buffer until the queued output has drained (on_drain resumes it). */
    while (!st->closing && c->state == CL_ACTIVE && c->admin_wait == ADMIN_WAIT_NONE &&
           st->queued == 0 && (r = stream_take_msg(st, UINT32_MAX, &type, &body, &blen)) != 0) {
        if (r < 0) {
            client_error_close(c, "08P01", "bad packet header or admin command too long");
            return;
        }
        c->request_time = now_usec();
        if (type == 'X') {
            client_close(c, "client close request");
            return;
        }
        if (type == 'Q' && c->pool) {
            /* SHOW STATS counts console commands under pgbouncer, as PgBouncer 1.25 does. */
            c->pool->stats.xact_count++;
            c->pool->stats.query_count++;
        }
        if (type != 'Q') {
            /* Extended protocol: refuse; Sync gets the ReadyForQuery it is owed. */
            if (type == 'S')
                send_error(c, "08P01", "extended query protocol not supported by admin console");
            else if (type != 'P' && type != 'B' && type != 'D' && type != 'E' && type != 'H' &&
                     type != 'C')
                client_error_close(c, "08P01", "unsupported message type for admin console");
            if (st->closing)
                return;
            continue;
        }
        if (blen == 0 || body[blen - 1] != 0) {
            send_error(c, "08P01", "malformed query message");
            continue;
        }
        handle_query(c, (const char *)body);
    }
}
