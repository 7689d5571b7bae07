/*
 * metrics.c: the Prometheus endpoint (metrics_listen). Owns its listening socket and its
 * few HTTP connections (capped, with a deadline, one request each, Connection: close) and
 * the rendering: the console's SHOW rows (show_rows: no second copy of its counting)
 * mapped to pgbouncer_exporter's names, plus pgusher's per-host and wait-time metrics.
 * Never changes pooler state; request parsing is http.c's (pure, fuzzed).
 */
#include "pgusher/metrics.h"

#include "pgusher/admin.h"
#include "pgusher/backend.h"
#include "pgusher/http.h"
#include "pgusher/log.h"
#include "pgusher/pool.h"
#include "pgusher/runtime.h"
#include "pgusher/show.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* Connections served at once; more are accepted and closed at once (a scraper retries). */
#define METRICS_MAX_CONNS 16
/* A request must arrive, and its answer leave, within this; then the connection closes. */
#define METRICS_TIMEOUT_MS 5000
/* After the answer, unread input is drained (not reset) for at most this long. */
#define METRICS_LINGER_MS 1000

/* ---------------------------------------------------------------- text buffer */

static void buf_reserve(struct metrics_buf *b, size_t more)
{
    if (b->failed || b->len + more < b->cap)
        return;
    size_t cap = b->cap ? b->cap : 16384;
    while (cap <= b->len + more)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->failed = true;
        return;
    }
    b->p = p;
    b->cap = cap;
}

static void buf_printf(struct metrics_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void buf_printf(struct metrics_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[512];
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    buf_reserve(b, (size_t)n + 1);
    if (b->failed)
        return;
    if ((size_t)n < sizeof(tmp)) {
        memcpy(b->p + b->len, tmp, (size_t)n + 1);
    } else {
        va_start(ap, fmt);
        vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

static void buf_puts(struct metrics_buf *b, const char *s)
{
    size_t n = strlen(s);
    buf_reserve(b, n + 1);
    if (b->failed)
        return;
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

void metrics_buf_free(struct metrics_buf *b)
{
    free(b->p);
    *b = (struct metrics_buf){0};
}

/* Length of the well-formed UTF-8 sequence at s (1-4), or 0 if the bytes there are not one
 * (overlong forms, surrogates and code points above U+10FFFF included). */
static int utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    int n = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
    if (n == 0 || s[0] > 0xf4)
        return 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0; /* also stops at the terminating NUL */
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
        (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
        return 0;
    return n;
}

/* A label value as the text format wants it: backslash, double quote and newline escaped,
 * and valid UTF-8 (Prometheus drops a whole scrape over one bad byte, and database and user
 * names of auto-databases come from clients): a bad byte becomes U+FFFD. */
static void put_label_value(struct metrics_buf *b, const char *v)
{
    buf_puts(b, "\"");
    const unsigned char *s = (const unsigned char *)(v ? v : "");
    while (*s) {
        int n = utf8_len(s);
        char out[5] = {0};
        if (n == 0) {
            buf_puts(b, "\xef\xbf\xbd");
            s++;
            continue;
        }
        if (*s == '\\' || *s == '"')
            out[0] = '\\', out[1] = (char)*s;
        else if (*s == '\n')
            out[0] = '\\', out[1] = 'n';
        else
            memcpy(out, s, (size_t)n);
        buf_puts(b, out);
        s += n;
    }
    buf_puts(b, "\"");
}

static void put_value(struct metrics_buf *b, double v)
{
    if (isnan(v))
        buf_puts(b, " NaN\n");
    else if (v == floor(v) && fabs(v) < 1e15)
        buf_printf(b, " %.0f\n", v);
    else
        buf_printf(b, " %.9g\n", v);
}

/* The HELP and TYPE lines of a family. OpenMetrics names a counter family without the
 * _total of its samples, and a gauge of constant 1 named *_info is an info family. */
static void put_family(struct metrics_buf *b, const char *name, const char *type, const char *help)
{
    size_t n = strlen(name);
    int famlen = (int)n;
    if (b->openmetrics && strcmp(type, "counter") == 0 && n > 6 &&
        strcmp(name + n - 6, "_total") == 0) {
        famlen -= 6;
    } else if (b->openmetrics && n > 5 && strcmp(name + n - 5, "_info") == 0) {
        famlen -= 5;
        type = "info";
    }
    buf_printf(b, "# HELP %.*s %s\n# TYPE %.*s %s\n", famlen, name, help, famlen, name, type);
}

/* ---------------------------------------------------------------- SHOW tables */

#define TABLE_MAX_COLS 32

/* One SHOW result, copied: each row is one allocation (cells pointers, then the text). */
struct table {
    int ncols;
    char names[TABLE_MAX_COLS][48];
    int nrows, caprows;
    char ***rows;
    bool failed;
};

static void tab_columns(void *arg, int n, const char *const *names)
{
    struct table *t = arg;
    t->ncols = n < TABLE_MAX_COLS ? n : TABLE_MAX_COLS;
    for (int i = 0; i < t->ncols; i++)
        snprintf(t->names[i], sizeof(t->names[i]), "%s", names[i]);
}

static void tab_row(void *arg, int n, const char *const *cells)
{
    struct table *t = arg;
    if (t->failed)
        return;
    if (t->nrows == t->caprows) {
        int cap = t->caprows ? t->caprows * 2 : 16;
        char ***rows = realloc(t->rows, (size_t)cap * sizeof(*rows));
        if (!rows) {
            t->failed = true;
            return;
        }
        t->rows = rows;
        t->caprows = cap;
    }
    size_t text = 0;
    for (int i = 0; i < t->ncols; i++)
        text += i < n && cells[i] ? strlen(cells[i]) + 1 : 0;
    char **row = malloc((size_t)t->ncols * sizeof(char *) + text);
    if (!row) {
        t->failed = true;
        return;
    }
    char *s = (char *)(row + t->ncols);
    for (int i = 0; i < t->ncols; i++) {
        row[i] = NULL;
        if (i < n && cells[i]) {
            size_t len = strlen(cells[i]);
            memcpy(s, cells[i], len + 1);
            row[i] = s;
            s += len + 1;
        }
    }
    t->rows[t->nrows++] = row;
}

static bool tab_load(struct table *t, const char *show)
{
    memset(t, 0, sizeof(*t));
    const struct show_sink sink = {tab_columns, tab_row, t};
    return show_rows(show, &sink) && !t->failed;
}

static void tab_free(struct table *t)
{
    for (int i = 0; i < t->nrows; i++)
        free(t->rows[i]);
    free(t->rows);
}

static int tab_col(const struct table *t, const char *name)
{
    for (int i = 0; i < t->ncols; i++)
        if (strcmp(t->names[i], name) == 0)
            return i;
    return -1;
}

/* ---------------------------------------------------------------- metric tables */

/* How a cell becomes a sample value. */
enum conv {
    CV_NUM, /* the number times scale (NULL or not a number: NaN) */
    CV_EQ,  /* 1 if the cell equals arg, else 0 */
};

/* One metric family per row: from column `column` of every row of SHOW `show`. */
struct col_metric {
    const char *column;
    const char *name;
    const char *type;
    enum conv conv;
    double scale;
    const char *arg;
    const char *help;
};

/* A SHOW, the columns that become labels (label name = column name unless renamed). */
struct show_map {
    const char *show;
    const char *const *labels;
    const struct col_metric *metrics;
    size_t nmetrics;
};

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define US 1e-6

/* pgbouncer_exporter's, from the same columns with the same scale. */
static const char *const POOL_LABELS[] = {"database", "user", NULL};
static const struct col_metric POOL_METRICS[] = {
    {"cl_active", "pgbouncer_pools_client_active_connections", "gauge", CV_NUM, 1, NULL,
     "Client connections linked to server connection and able to process queries"},
    {"cl_waiting", "pgbouncer_pools_client_waiting_connections", "gauge", CV_NUM, 1, NULL,
     "Client connections waiting on a server connection"},
    {"cl_active_cancel_req", "pgbouncer_pools_client_active_cancel_connections", "gauge", CV_NUM, 1,
     NULL, "Client connections that have forwarded query cancellations to the server"},
    {"cl_waiting_cancel_req", "pgbouncer_pools_client_waiting_cancel_connections", "gauge", CV_NUM,
     1, NULL, "Client connections that have not forwarded query cancellations yet"},
    {"sv_active", "pgbouncer_pools_server_active_connections", "gauge", CV_NUM, 1, NULL,
     "Server connections linked to a client connection"},
    {"sv_active_cancel", "pgbouncer_pools_server_active_cancel_connections", "gauge", CV_NUM, 1,
     NULL, "Server connections currently forwarding a cancel request"},
    {"sv_being_canceled", "pgbouncer_pools_server_being_canceled_connections", "gauge", CV_NUM, 1,
     NULL, "Servers waiting for in-flight cancel requests to complete before becoming idle"},
    {"sv_idle", "pgbouncer_pools_server_idle_connections", "gauge", CV_NUM, 1, NULL,
     "Server connections idle and ready for a client query"},
    {"sv_used", "pgbouncer_pools_server_used_connections", "gauge", CV_NUM, 1, NULL,
     "Server connections idle more than server_check_delay, needing server_check_query"},
    {"sv_tested", "pgbouncer_pools_server_testing_connections", "gauge", CV_NUM, 1, NULL,
     "Server connections running server_reset_query or server_check_query"},
    {"sv_login", "pgbouncer_pools_server_login_connections", "gauge", CV_NUM, 1, NULL,
     "Server connections currently logging in"},
    {"maxwait", "pgbouncer_pools_client_maxwait_seconds", "gauge", CV_NUM, 1, NULL,
     "Age of the oldest unserved client connection, in seconds"},
};

static const char *const STATS_LABELS[] = {"database", NULL};
static const struct col_metric STATS_METRICS[] = {
    {"total_query_count", "pgbouncer_stats_queries_pooled_total", "counter", CV_NUM, 1, NULL,
     "Total number of SQL queries pooled"},
    {"total_query_time", "pgbouncer_stats_queries_duration_seconds_total", "counter", CV_NUM, US,
     NULL, "Total seconds spent actively connected to PostgreSQL, executing queries"},
    {"total_received", "pgbouncer_stats_received_bytes_total", "counter", CV_NUM, 1, NULL,
     "Total bytes of network traffic received from clients"},
    {"total_sent", "pgbouncer_stats_sent_bytes_total", "counter", CV_NUM, 1, NULL,
     "Total bytes of network traffic sent to clients"},
    {"total_wait_time", "pgbouncer_stats_client_wait_seconds_total", "counter", CV_NUM, US, NULL,
     "Time spent by clients waiting for a server, in seconds"},
    {"total_xact_count", "pgbouncer_stats_sql_transactions_pooled_total", "counter", CV_NUM, 1,
     NULL, "Total number of SQL transactions pooled"},
    {"total_xact_time", "pgbouncer_stats_server_in_transaction_seconds_total", "counter", CV_NUM,
     US, NULL, "Total seconds spent connected to PostgreSQL in a transaction"},
    {"total_server_assignment_count", "pgbouncer_stats_server_assignments_total", "counter", CV_NUM,
     1, NULL, "Times a server was assigned to a client"},
    {"total_client_parse_count", "pgbouncer_stats_client_parses_total", "counter", CV_NUM, 1, NULL,
     "Prepared statement Parse messages received from clients"},
    {"total_server_parse_count", "pgbouncer_stats_server_parses_total", "counter", CV_NUM, 1, NULL,
     "Prepared statement Parse messages sent to PostgreSQL"},
    {"total_bind_count", "pgbouncer_stats_binds_total", "counter", CV_NUM, 1, NULL,
     "Prepared statements readied for execution with a Bind message"},
};

/* The same counters under the names pgbouncer_exporter uses since it reads SHOW STATS_TOTALS
 * (2025, "pgbouncer_stats_totals_" prefix): dashboards of either era work. */
static const struct col_metric STATS_TOTALS_METRICS[] = {
    {"total_query_count", "pgbouncer_stats_totals_queries_pooled_total", "counter", CV_NUM, 1, NULL,
     "Total number of SQL queries pooled"},
    {"total_query_time", "pgbouncer_stats_totals_queries_duration_seconds_total", "counter", CV_NUM,
     US, NULL, "Total seconds spent actively connected to PostgreSQL, executing queries"},
    {"total_received", "pgbouncer_stats_totals_received_bytes_total", "counter", CV_NUM, 1, NULL,
     "Total bytes of network traffic received from clients"},
    {"total_sent", "pgbouncer_stats_totals_sent_bytes_total", "counter", CV_NUM, 1, NULL,
     "Total bytes of network traffic sent to clients"},
    {"total_wait_time", "pgbouncer_stats_totals_client_wait_seconds_total", "counter", CV_NUM, US,
     NULL, "Time spent by clients waiting for a server, in seconds"},
    {"total_xact_count", "pgbouncer_stats_totals_sql_transactions_pooled_total", "counter", CV_NUM,
     1, NULL, "Total number of SQL transactions pooled"},
    {"total_xact_time", "pgbouncer_stats_totals_server_in_transaction_seconds_total", "counter",
     CV_NUM, US, NULL, "Total seconds spent connected to PostgreSQL in a transaction"},
    {"total_client_parse_count", "pgbouncer_stats_totals_client_parses_total", "counter", CV_NUM, 1,
     NULL, "Prepared statement Parse messages received from clients"},
    {"total_server_parse_count", "pgbouncer_stats_totals_server_parses_total", "counter", CV_NUM, 1,
     NULL, "Prepared statement Parse messages sent to PostgreSQL"},
    {"total_bind_count", "pgbouncer_stats_totals_binds_total", "counter", CV_NUM, 1, NULL,
     "Prepared statements readied for execution with a Bind message"},
};

static const char *const DB_LABELS[] = {"name",       "host",      "port", "database",
                                        "force_user", "pool_mode", NULL};
static const struct col_metric DB_METRICS[] = {
    {"pool_size", "pgbouncer_databases_pool_size", "gauge", CV_NUM, 1, NULL,
     "Maximum number of server connections"},
    {"reserve_pool_size", "pgbouncer_databases_reserve_pool", "gauge", CV_NUM, 1, NULL,
     "Maximum number of additional connections for this database"},
    {"max_connections", "pgbouncer_databases_max_connections", "gauge", CV_NUM, 1, NULL,
     "Maximum number of allowed connections for this database"},
    {"current_connections", "pgbouncer_databases_current_connections", "gauge", CV_NUM, 1, NULL,
     "Current number of connections for this database"},
    {"paused", "pgbouncer_databases_paused", "gauge", CV_NUM, 1, NULL,
     "1 if this database is currently paused, else 0"},
    {"disabled", "pgbouncer_databases_disabled", "gauge", CV_NUM, 1, NULL,
     "1 if this database is currently disabled, else 0"},
};

/* pgusher's own, from SHOW HOSTS (one series per database and host it lists). */
static const char *const HOST_LABELS[] = {"database", "host", "port", NULL};
static const struct col_metric HOST_METRICS[] = {
    {"state", "pgusher_host_up", "gauge", CV_EQ, 1, "up",
     "1 if the host is up (health checks and passive signals), else 0"},
    {"state", "pgusher_host_down", "gauge", CV_EQ, 1, "down", "1 if the host is marked down"},
    {"role", "pgusher_host_primary", "gauge", CV_EQ, 1, "primary", "1 if the host is a primary"},
    {"role", "pgusher_host_standby", "gauge", CV_EQ, 1, "standby", "1 if the host is a standby"},
    {"eligible", "pgusher_host_eligible", "gauge", CV_NUM, 1, NULL,
     "1 if the database would place a new server connection on this host now"},
    {"lag", "pgusher_host_lag_seconds", "gauge", CV_NUM, 1, NULL,
     "Replication lag of a standby, in seconds"},
    {"lag_bytes", "pgusher_host_lag_bytes", "gauge", CV_NUM, 1, NULL,
     "Replication lag of a standby, in bytes of WAL"},
    {"sv_active", "pgusher_host_server_active_connections", "gauge", CV_NUM, 1, NULL,
     "Server connections of this database on this host linked to a client"},
    {"sv_idle", "pgusher_host_server_idle_connections", "gauge", CV_NUM, 1, NULL,
     "Server connections of this database on this host idle"},
    {"sv_login", "pgusher_host_server_login_connections", "gauge", CV_NUM, 1, NULL,
     "Server connections of this database on this host logging in"},
    {"checks", "pgusher_host_checks_total", "counter", CV_NUM, 1, NULL,
     "Health checks run against the host"},
    {"failures", "pgusher_host_failures_total", "counter", CV_NUM, 1, NULL,
     "Failed health checks and passive failures (refused, reset, login errors) of the host"},
};

static const struct show_map SHOW_MAPS[] = {
    {"pools", POOL_LABELS, POOL_METRICS, N_ELEMS(POOL_METRICS)},
    {"stats", STATS_LABELS, STATS_METRICS, N_ELEMS(STATS_METRICS)},
    {"stats", STATS_LABELS, STATS_TOTALS_METRICS, N_ELEMS(STATS_TOTALS_METRICS)},
    {"databases", DB_LABELS, DB_METRICS, N_ELEMS(DB_METRICS)},
    {"hosts", HOST_LABELS, HOST_METRICS, N_ELEMS(HOST_METRICS)},
};

/* SHOW LISTS / SHOW CONFIG: one row per key; the exporter's names. */
struct key_metric {
    const char *key;
    const char *name;
    const char *help;
};

static const struct key_metric LIST_METRICS[] = {
    {"databases", "pgbouncer_databases", "Count of databases"},
    {"users", "pgbouncer_users", "Count of users"},
    {"pools", "pgbouncer_pools", "Count of pools"},
    {"free_clients", "pgbouncer_free_clients", "Count of free clients"},
    {"used_clients", "pgbouncer_used_clients", "Count of used clients"},
    {"login_clients", "pgbouncer_login_clients", "Count of clients in login state"},
    {"free_servers", "pgbouncer_free_servers", "Count of free servers"},
    {"used_servers", "pgbouncer_used_servers", "Count of used servers"},
    {"dns_names", "pgbouncer_cached_dns_names", "Count of DNS names in the cache"},
    {"dns_zones", "pgbouncer_cached_dns_zones", "Count of DNS zones in the cache"},
    {"dns_queries", "pgbouncer_in_flight_dns_queries", "Count of in-flight DNS queries"},
};

static const struct key_metric CONFIG_METRICS[] = {
    {"max_client_conn", "pgbouncer_config_max_client_connections",
     "Config maximum number of client connections"},
    {"max_user_connections", "pgbouncer_config_max_user_connections",
     "Config maximum number of server connections per user"},
};

static double cell_number(const char *cell, double scale)
{
    if (!cell || !*cell)
        return NAN;
    char *end;
    double v = strtod(cell, &end);
    return *end ? NAN : v * scale;
}

static void render_show(struct metrics_buf *b, const struct show_map *m)
{
    struct table t;
    if (!tab_load(&t, m->show)) {
        tab_free(&t);
        return;
    }
    int lcol[8], nl = 0;
    for (; m->labels[nl] && nl < 8; nl++)
        lcol[nl] = tab_col(&t, m->labels[nl]);
    for (size_t k = 0; k < m->nmetrics; k++) {
        const struct col_metric *cm = &m->metrics[k];
        int col = tab_col(&t, cm->column);
        if (col < 0)
            continue;
        put_family(b, cm->name, cm->type, cm->help);
        for (int r = 0; r < t.nrows; r++) {
            char **row = t.rows[r];
            buf_puts(b, cm->name);
            for (int l = 0; l < nl; l++) {
                buf_printf(b, "%s%s=", l ? "," : "{", m->labels[l]);
                put_label_value(b, lcol[l] >= 0 ? row[lcol[l]] : "");
            }
            if (nl)
                buf_puts(b, "}");
            double v = cm->conv == CV_EQ ? (row[col] && strcmp(row[col], cm->arg) == 0)
                                         : cell_number(row[col], cm->scale);
            put_value(b, v);
        }
    }
    tab_free(&t);
}

static void render_keys(struct metrics_buf *b, const char *show, const struct key_metric *km,
                        size_t n, const char *keycol, const char *valcol)
{
    struct table t;
    if (!tab_load(&t, show)) {
        tab_free(&t);
        return;
    }
    int kc = tab_col(&t, keycol), vc = tab_col(&t, valcol);
    for (size_t i = 0; i < n && kc >= 0 && vc >= 0; i++) {
        for (int r = 0; r < t.nrows; r++) {
            if (!t.rows[r][kc] || strcmp(t.rows[r][kc], km[i].key) != 0)
                continue;
            put_family(b, km[i].name, "gauge", km[i].help);
            buf_puts(b, km[i].name);
            put_value(b, cell_number(t.rows[r][vc], 1));
            break;
        }
    }
    tab_free(&t);
}

static void render_version(struct metrics_buf *b)
{
    struct table t;
    if (tab_load(&t, "version") && t.nrows > 0 && t.ncols > 0) {
        put_family(b, "pgbouncer_version_info", "gauge", "The pooler version info");
        buf_puts(b, "pgbouncer_version_info{version=");
        put_label_value(b, t.rows[0][0]);
        buf_puts(b, "} 1\n");
    }
    tab_free(&t);
}

/* Per backend (host:port, shared by the databases listing it): counters bumped on the relay
 * path. */
static void render_backends(struct metrics_buf *b)
{
    static const struct {
        const char *name, *help;
        size_t offset;
    } BE_COUNTERS[] = {
        {"pgusher_backend_transactions_total", "Transactions finished on the host's servers",
         offsetof(struct backend, xacts)},
        {"pgusher_backend_errors_total", "ErrorResponses the host's servers sent to clients",
         offsetof(struct backend, errors)},
    };
    for (size_t k = 0; k < N_ELEMS(BE_COUNTERS); k++) {
        put_family(b, BE_COUNTERS[k].name, "counter", BE_COUNTERS[k].help);
        struct list *it;
        list_for_each(it, backend_list())
        {
            struct backend *be = container_of(it, struct backend, node);
            if (be->unresolved)
                continue;
            uint64_t v = *(const uint64_t *)((const char *)be + BE_COUNTERS[k].offset);
            buf_printf(b, "%s{host=", BE_COUNTERS[k].name);
            put_label_value(b, be->host);
            buf_printf(b, ",port=\"%d\"} %llu\n", be->port, (unsigned long long)v);
        }
    }
}

static void put_pool_labels(struct metrics_buf *b, const char *name, const char *suffix,
                            const struct pool *p)
{
    buf_printf(b, "%s%s{database=", name, suffix);
    put_label_value(b, p->db->name);
    buf_puts(b, ",user=");
    put_label_value(b, p->user);
}

static void render_wait_histogram(struct metrics_buf *b)
{
    static const char name[] = "pgusher_pool_wait_seconds";
    put_family(b, name, "histogram",
               "How long clients waited for a server, per assignment (0 when one was free)");
    struct list *di, *pi;
    list_for_each(di, &G.databases)
    {
        struct database *db = container_of(di, struct database, node);
        if (db->removed || db->admin)
            continue;
        list_for_each(pi, &db->pools)
        {
            struct pool *p = container_of(pi, struct pool, node);
            uint64_t cum = 0;
            for (int i = 0; i <= POOL_WAIT_BUCKETS; i++) {
                cum += p->wait_hist[i];
                put_pool_labels(b, name, "_bucket", p);
                if (i < POOL_WAIT_BUCKETS)
                    buf_printf(b, ",le=\"%g\"} %llu\n", (double)pool_wait_bounds_usec[i] * US,
                               (unsigned long long)cum);
                else
                    buf_printf(b, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
            }
            put_pool_labels(b, name, "_sum", p);
            buf_puts(b, "}");
            put_value(b, (double)p->wait_hist_sum * US);
            put_pool_labels(b, name, "_count", p);
            buf_printf(b, "} %llu\n", (unsigned long long)cum);
        }
    }
}

void metrics_render(struct metrics_buf *b)
{
    put_family(b, "pgbouncer_up", "gauge", "The pooler answered this scrape");
    buf_puts(b, "pgbouncer_up 1\n");
    render_version(b);
    render_keys(b, "lists", LIST_METRICS, N_ELEMS(LIST_METRICS), "list", "items");
    render_keys(b, "config", CONFIG_METRICS, N_ELEMS(CONFIG_METRICS), "key", "value");
    for (size_t i = 0; i < N_ELEMS(SHOW_MAPS); i++)
        render_show(b, &SHOW_MAPS[i]);
    render_backends(b);
    render_wait_histogram(b);
    if (b->openmetrics)
        buf_puts(b, "# EOF\n");
}

/* ---------------------------------------------------------------- HTTP connections */

struct mconn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wreq;
    uv_shutdown_t sreq;
    char in[HTTP_HEAD_MAX];
    size_t inlen;
    bool answered; /* a response is written or on its way: input is drained, not parsed */
    bool written;  /* the response has left */
    bool peer_eof; /* the client half-closed after its request: close once written */
    int open_handles;
    struct metrics_buf out;
};

static struct {
    uv_tcp_t *tcp; /* the listening socket (NULL: none); freed in its close callback */
    char *addr;    /* the metrics_listen it was opened for (NULL: none) */
    int nconns;
} M;

static void conn_handle_closed(uv_handle_t *h)
{
    struct mconn *mc = h->data;
    if (--mc->open_handles > 0)
        return;
    metrics_buf_free(&mc->out);
    free(mc);
    M.nconns--;
}

/* The one teardown path of a connection. */
static void conn_close(struct mconn *mc)
{
    if (uv_is_closing((uv_handle_t *)&mc->tcp))
        return;
    uv_close((uv_handle_t *)&mc->timer, conn_handle_closed);
    uv_close((uv_handle_t *)&mc->tcp, conn_handle_closed);
}

static void on_conn_timer(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct mconn *mc = req->data;
    if (status < 0)
        conn_close(mc);
    /* else: wait for the peer's EOF (on_read) or the linger timer */
}

static void on_written(uv_write_t *req, int status)
{
    struct mconn *mc = req->data;
    mc->written = true;
    if (status < 0 || mc->peer_eof || uv_is_closing((uv_handle_t *)&mc->tcp)) {
        conn_close(mc);
        return;
    }
    mc->sreq.data = mc;
    if (uv_shutdown(&mc->sreq, (uv_stream_t *)&mc->tcp, on_shutdown) < 0) {
        conn_close(mc);
        return;
    }
    uv_timer_start(&mc->timer, on_conn_timer, METRICS_LINGER_MS, 0);
}

static void respond(struct mconn *mc, int status, const char *ctype, bool head_only,
                    struct metrics_buf *body)
{
    mc->answered = true;
    size_t blen = body ? body->len : 0;
    char hdr[512];
    snprintf(hdr, sizeof(hdr),
             "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
             "Connection: close\r\n%s\r\n",
             status, http_reason(status), ctype, blen, status == 405 ? "Allow: GET, HEAD\r\n" : "");
    buf_puts(&mc->out, hdr);
    if (body && !head_only && body->len) {
        buf_reserve(&mc->out, body->len + 1);
        if (!mc->out.failed) {
            memcpy(mc->out.p + mc->out.len, body->p, body->len);
            mc->out.len += body->len;
        }
    }
    if (mc->out.failed) {
        conn_close(mc);
        return;
    }
    uv_buf_t ub = uv_buf_init(mc->out.p, (unsigned)mc->out.len);
    mc->wreq.data = mc;
    if (uv_write(&mc->wreq, (uv_stream_t *)&mc->tcp, &ub, 1, on_written) < 0)
        conn_close(mc);
}

static void respond_text(struct mconn *mc, int status, const char *text)
{
    struct metrics_buf body = {0};
    buf_puts(&body, text);
    respond(mc, status, "text/plain; charset=utf-8", false, &body);
    metrics_buf_free(&body);
}

static void handle_request(struct mconn *mc, const struct http_request *req)
{
    bool head = strcmp(req->method, "HEAD") == 0;
    if (strcmp(req->method, "GET") != 0 && !head) {
        respond_text(mc, 405, "only GET and HEAD are served\n");
        return;
    }
    if (strcmp(req->path, "/metrics") != 0) {
        respond_text(mc, 404, "not found: try /metrics\n");
        return;
    }
    /* Content negotiation kept simple: an Accept naming OpenMetrics gets it (Prometheus
     * lists it first when it prefers it), anything else the 0.0.4 text format. */
    struct metrics_buf body = {.openmetrics = req->accept_openmetrics};
    metrics_render(&body);
    if (body.failed) {
        metrics_buf_free(&body);
        respond_text(mc, 500, "out of memory\n");
        return;
    }
    respond(mc, 200,
            body.openmetrics ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                             : "text/plain; version=0.0.4; charset=utf-8",
            head, &body);
    metrics_buf_free(&body);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct mconn *mc = h->data;
    static char drain[4096]; /* after the answer: input is read and dropped */
    if (mc->answered || mc->inlen >= sizeof(mc->in)) {
        *buf = uv_buf_init(drain, sizeof(drain));
        return;
    }
    *buf = uv_buf_init(mc->in + mc->inlen, (unsigned)(sizeof(mc->in) - mc->inlen));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct mconn *mc = s->data;
    if (nread < 0) {
        if (nread == UV_EOF && mc->answered && !mc->written) {
            /* A client that half-closed after its request still gets the answer. */
            mc->peer_eof = true;
            uv_read_stop(s);
            return;
        }
        conn_close(mc); /* EOF or error: a half-sent request gets nothing */
        return;
    }
    if (nread == 0 || mc->answered)
        return;
    mc->inlen += (size_t)nread;
    struct http_request req;
    int r = http_parse_request(mc->in, mc->inlen, &req);
    if (r == HTTP_MORE)
        return;
    if (r == HTTP_DONE)
        handle_request(mc, &req);
    else
        respond_text(mc, r, "bad request\n");
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    struct mconn *mc = M.nconns < METRICS_MAX_CONNS ? calloc(1, sizeof(*mc)) : NULL;
    if (!mc) {
        /* Over the cap (or out of memory): take the connection off the backlog and drop it. */
        uv_tcp_t *t = malloc(sizeof(*t));
        if (!t)
            return;
        uv_tcp_init(G.loop, t);
        if (uv_accept(server, (uv_stream_t *)t) == 0)
            uv_tcp_nodelay(t, 1);
        uv_close((uv_handle_t *)t, (uv_close_cb)free);
        return;
    }
    M.nconns++;
    uv_tcp_init(G.loop, &mc->tcp);
    uv_timer_init(G.loop, &mc->timer);
    mc->tcp.data = mc->timer.data = mc;
    mc->open_handles = 2;
    uv_unref((uv_handle_t *)&mc->tcp);
    uv_unref((uv_handle_t *)&mc->timer);
    if (uv_accept(server, (uv_stream_t *)&mc->tcp) < 0 ||
        uv_read_start((uv_stream_t *)&mc->tcp, on_alloc, on_read) < 0) {
        conn_close(mc);
        return;
    }
    uv_timer_start(&mc->timer, on_conn_timer, METRICS_TIMEOUT_MS, 0);
}

/* ---------------------------------------------------------------- listening */

bool metrics_parse_listen(const char *s, struct sockaddr_storage *ss)
{
    char host[256];
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || !colon[1])
        return false;
    size_t hl = (size_t)(colon - s);
    const char *h = s;
    if (s[0] == '[') {
        if (hl < 3 || s[hl - 1] != ']')
            return false;
        h = s + 1;
        hl -= 2;
    }
    if (hl >= sizeof(host))
        return false;
    memcpy(host, h, hl);
    host[hl] = '\0';
    if (h == s && strchr(host, ':'))
        return false; /* an IPv6 address needs its brackets: "[::1]:9127" */
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 1 || port > 65535)
        return false;
    memset(ss, 0, sizeof(*ss));
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0)
        return true;
    return uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) == 0;
}

static void listener_closed(uv_handle_t *h)
{
    free(h);
}

static void stop_listening(void)
{
    if (M.tcp)
        uv_close((uv_handle_t *)M.tcp, listener_closed);
    M.tcp = NULL;
}

bool metrics_apply(void)
{
    const char *want = G.cf->g.metrics_listen;
    if (want && !*want)
        want = NULL;
    if ((!want && !M.addr) || (want && M.addr && strcmp(want, M.addr) == 0))
        return true;
    stop_listening();
    free(M.addr);
    M.addr = NULL;
    if (!want) {
        log_info("metrics: endpoint off");
        return true;
    }
    struct sockaddr_storage ss;
    if (!metrics_parse_listen(want, &ss)) {
        log_error("metrics: metrics_listen = %s: want host:port (e.g. 127.0.0.1:9127)", want);
        return false;
    }
    uv_tcp_t *t = malloc(sizeof(*t));
    if (!t) {
        log_error("metrics: out of memory");
        return false;
    }
    uv_tcp_init(G.loop, t);
    int r = uv_tcp_bind(t, (const struct sockaddr *)&ss, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)t, 64, on_connection);
    if (r < 0) {
        log_error("metrics: cannot listen on %s: %s", want, uv_strerror(r));
        uv_close((uv_handle_t *)t, listener_closed);
        return false;
    }
    /* The endpoint alone never keeps the loop (and so the process) alive. A failure above
     * leaves M.addr unset, so the next RELOAD tries again. */
    uv_unref((uv_handle_t *)t);
    M.tcp = t;
    M.addr = strdup(want);
    log_info("metrics: listening on %s (GET /metrics)", want);
    return true;
}
