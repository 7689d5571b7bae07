/*
 * config.c: builds one immutable snapshot (struct config) from pgbouncer.ini, its %include
 * files and the auth_file, driven by the settings table. Never exits and never logs: every
 * problem comes back to the caller as "FILE:LINE: message".
 *
 * Loading works like PgBouncer's: every [pgbouncer] row is first set from its default string
 * through the same parser the ini uses, so the defaults cannot drift from the table; then the
 * ini is applied line by line (last assignment wins); then cross-checks run and the auth file
 * is read. [databases]/[users]/[peers] values are connection strings (connstr.c).
 */
#include "pgusher/config.h"

#include "pgusher/authfile.h"
#include "pgusher/connstr.h"
#include "pgusher/hba.h"
#include "pgusher/ini.h"
#include "pgusher/metrics.h"
#include "pgusher/proto.h"
#include "pgusher/secret.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_AUTH_QUERY                                                                         \
    "SELECT rolname, CASE WHEN rolvaliduntil < now() THEN NULL ELSE rolpassword END FROM "         \
    "pg_authid WHERE rolname=$1 AND rolcanlogin"

#define DEFAULT_DB_PORT 5432
#define DEFAULT_PEER_PORT 6432
#define MAX_PEER_ID 16383
#define MIN_PKT_BUF 512

#define ROW(key, kind, def, reload, impl)                                                          \
    {                                                                                              \
        .name = #key, .type = (kind), .offset = offsetof(struct cf_global, key),                   \
        .default_str = (def), .reloadable = (reload), .implemented = (impl)                        \
    }
/* A setting that is (or may hold) a password: masked wherever it is shown, wiped when freed. */
#define SECRET_ROW(key, def, reload, impl)                                                         \
    {                                                                                              \
        .name = #key, .type = CF_STRING, .offset = offsetof(struct cf_global, key),                \
        .default_str = (def), .reloadable = (reload), .implemented = (impl), .secret = true        \
    }

/* One row per key of PgBouncer 1.25's SHOW CONFIG, in its order. */
const struct cf_setting config_settings[] = {
    ROW(admin_users, CF_STRING, "", true, true),
    ROW(application_name_add_host, CF_BOOL, "0", true, true),
    ROW(auth_dbname, CF_STRING, "", true, true),
    ROW(auth_file, CF_STRING, "", true, true),
    ROW(auth_hba_file, CF_STRING, "", true, true),
    ROW(auth_ident_file, CF_STRING, "", true, true),
    SECRET_ROW(auth_ldap_options, "", true, false), /* may hold ldapbindpasswd= */
    ROW(auth_query, CF_STRING, DEFAULT_AUTH_QUERY, true, true),
    ROW(auth_type, CF_ENUM_AUTH_TYPE, "md5", true, true),
    ROW(auth_user, CF_STRING, "", true, true),
    ROW(autodb_idle_timeout, CF_TIME, "3600", true, true),
    ROW(cancel_wait_timeout, CF_TIME, "10", true, true),
    ROW(client_idle_timeout, CF_TIME, "0", true, true),
    ROW(client_login_timeout, CF_TIME, "60", true, true),
    ROW(client_tls13_ciphers, CF_STRING, "", true, true),
    ROW(client_tls_ca_file, CF_STRING, "", true, true),
    ROW(client_tls_cert_file, CF_STRING, "", true, true),
    ROW(client_tls_ciphers, CF_STRING, "default", true, true),
    ROW(client_tls_dheparams, CF_STRING, "auto", true, true),
    ROW(client_tls_ecdhcurve, CF_STRING, "auto", true, true),
    ROW(client_tls_key_file, CF_STRING, "", true, true),
    ROW(client_tls_protocols, CF_STRING, "secure", true, true),
    ROW(client_tls_sslmode, CF_STRING, "disable", true, true),
    ROW(conffile, CF_STRING, "", true, true),
    ROW(default_pool_size, CF_INT, "20", true, true),
    ROW(disable_pqexec, CF_BOOL, "0", false, true),
    ROW(dns_max_ttl, CF_TIME, "15", true, true),
    ROW(dns_nxdomain_ttl, CF_TIME, "15", true, true),
    ROW(dns_zone_check_period, CF_TIME, "0", true, true),
    /* pgusher's own: backend health checks (not in PgBouncer) */
    ROW(health_check_dbname, CF_STRING, "postgres", true, true),
    ROW(health_check_fall, CF_INT, "3", true, true),
    SECRET_ROW(health_check_password, "", true, true),
    ROW(health_check_period, CF_TIME, "1", true, true),
    ROW(health_check_rise, CF_INT, "2", true, true),
    ROW(health_check_timeout, CF_TIME, "1", true, true),
    ROW(health_check_user, CF_STRING, "", true, true),
    ROW(idle_transaction_timeout, CF_TIME, "0", true, true),
    ROW(ignore_startup_parameters, CF_STRING, "", true, true),
    ROW(job_name, CF_STRING, "pgbouncer", false, true),
    ROW(listen_addr, CF_STRING, "", false, true),
    ROW(listen_backlog, CF_INT, "128", false, true),
    ROW(listen_port, CF_INT, "6432", false, true),
    ROW(log_connections, CF_BOOL, "1", true, true),
    ROW(log_disconnections, CF_BOOL, "1", true, true),
    ROW(log_pooler_errors, CF_BOOL, "1", true, true),
    ROW(log_stats, CF_BOOL, "1", true, true),
    ROW(logfile, CF_STRING, "", true, true),
    ROW(login_notify_message, CF_STRING, "", true, false),
    ROW(max_client_conn, CF_INT, "100", true, true),
    ROW(max_db_client_connections, CF_INT, "0", true, true),
    ROW(max_db_connections, CF_INT, "0", true, true),
    ROW(max_packet_size, CF_INT, "2147483647", true, true),
    ROW(max_prepared_statements, CF_INT, "200", true, true),
    ROW(max_user_client_connections, CF_INT, "0", true, true),
    ROW(max_user_connections, CF_INT, "0", true, true),
    /* pgusher's own: the Prometheus endpoint (metrics.c) */
    ROW(metrics_listen, CF_STRING, "", true, true),
    ROW(min_pool_size, CF_INT, "0", true, true),
    ROW(peer_id, CF_INT, "0", true, true),
    ROW(pidfile, CF_STRING, "", false, true),
    ROW(pkt_buf, CF_INT, "4096", false, true),
    ROW(pool_mode, CF_ENUM_POOL_MODE, "session", true, true),
    ROW(pool_idle_timeout, CF_TIME, "0", true, false),
    ROW(query_timeout, CF_TIME, "0", true, true),
    ROW(query_wait_notify, CF_TIME, "5", true, true),
    ROW(query_wait_timeout, CF_TIME, "120", true, true),
    ROW(reserve_pool_size, CF_INT, "0", true, true),
    ROW(reserve_pool_timeout, CF_TIME, "5", true, true),
    ROW(resolv_conf, CF_STRING, "", false, true),
    ROW(sbuf_loopcnt, CF_INT, "5", true, true),
    ROW(scram_iterations, CF_INT, "4096", true, true),
    ROW(server_check_delay, CF_TIME, "30", true, true),
    ROW(server_check_query, CF_STRING, "<empty>", true, true),
    ROW(server_connect_timeout, CF_TIME, "15", true, true),
    ROW(server_fast_close, CF_BOOL, "0", true, true),
    ROW(server_idle_timeout, CF_TIME, "600", true, true),
    ROW(server_lifetime, CF_TIME, "3600", true, true),
    ROW(server_login_retry, CF_TIME, "15", true, true),
    /* pgusher's own: libpq's require_auth for server logins and health checks */
    ROW(server_require_auth, CF_STRING, "", true, true),
    ROW(server_reset_query, CF_STRING, "DISCARD ALL", true, true),
    ROW(server_reset_query_always, CF_BOOL, "0", true, true),
    ROW(server_round_robin, CF_BOOL, "0", true, true),
    ROW(server_tls13_ciphers, CF_STRING, "", true, true),
    ROW(server_tls_ca_file, CF_STRING, "", true, true),
    ROW(server_tls_cert_file, CF_STRING, "", true, true),
    ROW(server_tls_ciphers, CF_STRING, "default", true, true),
    ROW(server_tls_key_file, CF_STRING, "", true, true),
    ROW(server_tls_protocols, CF_STRING, "secure", true, true),
    ROW(server_tls_sslmode, CF_STRING, "prefer", true, true),
    ROW(so_reuseport, CF_BOOL, "0", false, true),
    ROW(stats_period, CF_TIME, "60", true, true),
    ROW(stats_users, CF_STRING, "", true, true),
    ROW(suspend_timeout, CF_TIME, "10", true, true),
    ROW(syslog, CF_BOOL, "0", true, true),
    ROW(syslog_facility, CF_STRING, "daemon", true, true),
    ROW(syslog_ident, CF_STRING, "pgbouncer", true, true),
    ROW(tcp_defer_accept, CF_BOOL, "1", true, true),
    ROW(tcp_keepalive, CF_BOOL, "1", true, true),
    ROW(tcp_keepcnt, CF_INT, "0", true, true),
    ROW(tcp_keepidle, CF_INT, "0", true, true),
    ROW(tcp_keepintvl, CF_INT, "0", true, true),
    ROW(tcp_socket_buffer, CF_INT, "0", true, true),
    /* PgBouncer takes tcp_user_timeout in milliseconds. */
    {.name = "tcp_user_timeout",
     .type = CF_TIME,
     .offset = offsetof(struct cf_global, tcp_user_timeout),
     .default_str = "0",
     .reloadable = true,
     .implemented = true,
     .unit_usec = 1000},
    ROW(track_extra_parameters, CF_STRING, "IntervalStyle", false, true),
    ROW(transaction_timeout, CF_TIME, "0", true, true),
    ROW(unix_socket_dir, CF_STRING, "/tmp", false, true),
    ROW(unix_socket_group, CF_STRING, "", false, true),
    ROW(unix_socket_mode, CF_INT, "0777", false, true),
    ROW(user, CF_STRING, "", false, true),
    ROW(verbose, CF_INT, "", true, true),
};
const size_t config_nsettings = sizeof(config_settings) / sizeof(config_settings[0]);

/* ---------------------------------------------------------------------------------------- */
/* small helpers                                                                             */

static void put_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void put_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Replaces *dst with a copy of value; an empty value becomes NULL ("not set"). The old value
 * is wiped: it may have been a password (health_check_password, a password= in [databases]). */
static bool set_str(char **dst, const char *value)
{
    char *copy = NULL;

    if (value && *value) {
        copy = strdup(value);
        if (!copy)
            return false;
    }
    secret_free_str(*dst);
    *dst = copy;
    return true;
}

static bool parse_int(const char *value, int base, long long min, long long max, int *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(value, &end, base);
    if (end == value || *end != '\0' || errno != 0 || v < min || v > max)
        return false;
    *out = (int)v;
    return true;
}

static bool parse_bool(const char *value, int *out)
{
    static const char *const yes[] = {"1", "yes", "on", "true", "y", "t"};
    static const char *const no[] = {"0", "no", "off", "false", "n", "f"};

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(value, yes[i]) == 0) {
            *out = 1;
            return true;
        }
        if (strcasecmp(value, no[i]) == 0) {
            *out = 0;
            return true;
        }
    }
    return false;
}

/* Seconds (or units of unit_usec), fractions allowed, no suffixes (PgBouncer takes none). */
static bool parse_time(const char *value, usec_t unit_usec, usec_t *out)
{
    char *end;
    double v;

    if (unit_usec <= 0)
        unit_usec = USEC_PER_SEC;
    errno = 0;
    v = strtod(value, &end);
    if (end == value || *end != '\0' || errno != 0 || !isfinite(v) || v < 0)
        return false;
    v *= (double)unit_usec;
    if (v > 9e15) /* ~285 years; keeps the product far from overflowing int64 */
        return false;
    *out = (usec_t)(v + 0.5);
    return true;
}

struct name_value {
    const char *name;
    int value;
};

static const struct name_value pool_modes[] = {{"session", POOL_SESSION},
                                               {"transaction", POOL_TRANSACTION},
                                               {"statement", POOL_STATEMENT},
                                               {NULL, 0}};

static const struct name_value auth_types[] = {
    {"trust", AUTH_TYPE_TRUST}, {"plain", AUTH_TYPE_PLAIN},
    {"md5", AUTH_TYPE_MD5},     {"scram-sha-256", AUTH_TYPE_SCRAM},
    {"any", AUTH_TYPE_ANY},     {"cert", AUTH_TYPE_CERT},
    {"hba", AUTH_TYPE_HBA},     {"pam", AUTH_TYPE_PAM},
    {"ldap", AUTH_TYPE_LDAP},   {NULL, 0}};

static const struct name_value lb_policies[] = {{"round-robin", LB_ROUND_ROBIN},
                                                {"disable", LB_DISABLE},
                                                {"random", LB_RANDOM},
                                                {"least-connections", LB_LEAST_CONNECTIONS},
                                                {NULL, 0}};

static const struct name_value tsa_values[] = {{"any", TSA_ANY},
                                               {"read-write", TSA_READ_WRITE},
                                               {"read-only", TSA_READ_ONLY},
                                               {"primary", TSA_PRIMARY},
                                               {"standby", TSA_STANDBY},
                                               {"prefer-standby", TSA_PREFER_STANDBY},
                                               {NULL, 0}};

static bool lookup_enum(const struct name_value *table, const char *value, int *out)
{
    for (; table->name; table++) {
        if (strcasecmp(table->name, value) == 0) {
            *out = table->value;
            return true;
        }
    }
    return false;
}

static const char *enum_name(const struct name_value *table, int value)
{
    for (; table->name; table++) {
        if (table->value == value)
            return table->name;
    }
    return NULL;
}

/* "a, b, c" listing the names of an enum table, for error messages. */
static const char *enum_choices(const struct name_value *table, char *buf, size_t buflen)
{
    size_t used = 0;

    buf[0] = '\0';
    for (; table->name && used < buflen; table++) {
        int n = snprintf(buf + used, buflen - used, "%s%s", used ? ", " : "", table->name);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    return buf;
}

const char *config_pool_mode_name(int mode)
{
    const char *n = enum_name(pool_modes, mode);
    return n ? n : "unknown";
}

const char *config_auth_type_name(int type)
{
    const char *n = enum_name(auth_types, type);
    return n ? n : "unknown";
}

const char *config_lb_policy_name(int policy)
{
    const char *n = enum_name(lb_policies, policy);
    return n ? n : "unknown";
}

const char *config_tsa_name(int tsa)
{
    const char *n = enum_name(tsa_values, tsa);
    return n ? n : "unknown";
}

/* Renders microseconds in units of unit_usec: "15", "0.5"; never exponent notation. */
static const char *format_time(usec_t v, usec_t unit_usec, char *buf, size_t buflen)
{
    if (unit_usec <= 0)
        unit_usec = USEC_PER_SEC;
    if (v % unit_usec == 0) {
        snprintf(buf, buflen, "%lld", (long long)(v / unit_usec));
    } else {
        size_t len;
        snprintf(buf, buflen, "%.6f", (double)v / (double)unit_usec);
        len = strlen(buf);
        while (len > 0 && buf[len - 1] == '0')
            buf[--len] = '\0';
        if (len > 0 && buf[len - 1] == '.')
            buf[--len] = '\0';
    }
    return buf;
}

/* ---------------------------------------------------------------------------------------- */
/* the settings table                                                                        */

const struct cf_setting *config_find_setting(const char *name)
{
    if (strcasecmp(name, "service_name") == 0) /* PgBouncer's alias of job_name */
        name = "job_name";
    for (size_t i = 0; i < config_nsettings; i++) {
        if (strcasecmp(config_settings[i].name, name) == 0)
            return &config_settings[i];
    }
    return NULL;
}

static bool is_setting(const struct cf_setting *s, size_t offset)
{
    return s->offset == offset;
}

#define IS(s, field) is_setting((s), offsetof(struct cf_global, field))

/* Range checks PgBouncer applies (or that keep the core safe), for integer settings. */
static bool check_int_range(const struct cf_setting *s, int v, char *err, size_t errlen)
{
    if (IS(s, listen_port) && (v < 1 || v > 65535)) {
        put_err(err, errlen, "must be between 1 and 65535");
        return false;
    }
    if (IS(s, pkt_buf) && v < MIN_PKT_BUF) {
        put_err(err, errlen, "must be at least %d", MIN_PKT_BUF);
        return false;
    }
    if (IS(s, unix_socket_mode) && v > 07777) {
        put_err(err, errlen, "not a file mode (use octal, e.g. 0777)");
        return false;
    }
    if (IS(s, peer_id) && v > MAX_PEER_ID) {
        put_err(err, errlen, "must be between 0 and %d", MAX_PEER_ID);
        return false;
    }
    if ((IS(s, scram_iterations) || IS(s, max_client_conn)) && v < 1) {
        put_err(err, errlen, "must be at least 1");
        return false;
    }
    return true;
}

static bool is_sslmode(const char *v)
{
    static const char *const modes[] = {"disable", "allow",     "prefer",
                                        "require", "verify-ca", "verify-full"};
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        if (strcasecmp(v, modes[i]) == 0)
            return true;
    }
    return false;
}

/*
 * Parse value into the row's field of g. is_default allows the table's own default strings
 * ("" for verbose, "<empty>" for server_check_query). On failure g is unchanged and err says
 * why in the form PgBouncer uses: invalid value "x" for parameter y: reason.
 */
static bool setting_set(struct cf_global *g, const struct cf_setting *s, const char *value,
                        bool is_default, char *err, size_t errlen)
{
    char *field = (char *)g + s->offset;
    char why[256] = "";
    char choices[160];
    int iv;
    usec_t tv;

    switch (s->type) {
    case CF_INT:
        if (is_default && *value == '\0') {
            *(int *)field = 0;
            return true;
        }
        /* base 0 as in PgBouncer: 0777 is octal, 0x10 hex */
        if (!parse_int(value, 0, 0, INT_MAX, &iv)) {
            snprintf(why, sizeof(why), "expected a non-negative integer");
            break;
        }
        if (!check_int_range(s, iv, why, sizeof(why)))
            break;
        *(int *)field = iv;
        return true;
    case CF_BOOL:
        if (!parse_bool(value, &iv)) {
            snprintf(why, sizeof(why), "expected a boolean (0/1, yes/no, on/off, true/false)");
            break;
        }
        *(int *)field = iv;
        return true;
    case CF_TIME:
        if (!parse_time(value, s->unit_usec, &tv)) {
            snprintf(why, sizeof(why), "expected a non-negative number of %s",
                     s->unit_usec == 1000 ? "milliseconds" : "seconds");
            break;
        }
        *(usec_t *)field = tv;
        return true;
    case CF_ENUM_POOL_MODE:
        if (!lookup_enum(pool_modes, value, &iv)) {
            snprintf(why, sizeof(why), "expected one of %s",
                     enum_choices(pool_modes, choices, sizeof(choices)));
            break;
        }
        *(int *)field = iv;
        return true;
    case CF_ENUM_AUTH_TYPE:
        if (!lookup_enum(auth_types, value, &iv)) {
            snprintf(why, sizeof(why), "expected one of %s",
                     enum_choices(auth_types, choices, sizeof(choices)));
            break;
        }
        *(int *)field = iv;
        return true;
    case CF_STRING:
        if (IS(s, server_check_query)) {
            /* PgBouncer: "<empty>" sends an empty query; "" disables the check. */
            bool empty_query = strcmp(value, "<empty>") == 0;
            if (!set_str((char **)field, empty_query ? "" : value))
                goto oom;
            g->server_check_query_disabled = (*value == '\0');
            return true;
        }
        if (IS(s, server_require_auth)) {
            unsigned mask;
            if (!proto_require_auth_parse(value, &mask, why, sizeof(why)))
                break;
            if (!set_str((char **)field, value))
                goto oom;
            g->server_require_auth_mask = mask;
            return true;
        }
        if (IS(s, metrics_listen) && *value) {
            struct sockaddr_storage ss;
            if (!metrics_parse_listen(value, &ss)) {
                snprintf(why, sizeof(why), "expected host:port, e.g. 127.0.0.1:9127");
                break;
            }
        }
        if ((IS(s, client_tls_sslmode) || IS(s, server_tls_sslmode)) && !is_sslmode(value)) {
            snprintf(why, sizeof(why),
                     "expected one of disable, allow, prefer, require, verify-ca, verify-full");
            break;
        }
        if (!set_str((char **)field, value))
            goto oom;
        return true;
    }
    put_err(err, errlen, "invalid value \"%s\" for parameter %s: %s", value, s->name, why);
    return false;
oom:
    put_err(err, errlen, "out of memory");
    return false;
}

bool config_setting_set(struct config *cf, const struct cf_setting *s, const char *value, char *err,
                        size_t errlen)
{
    return setting_set(&cf->g, s, value, false, err, errlen);
}

const char *config_setting_shown(const struct config *cf, const struct cf_setting *s, char *buf,
                                 size_t buflen)
{
    if (!s->secret)
        return config_setting_value(cf, s, buf, buflen);
    const char *v = *(char *const *)((const char *)&cf->g + s->offset);
    return v && *v ? CONFIG_SECRET_MASK : "";
}

const char *config_setting_value(const struct config *cf, const struct cf_setting *s, char *buf,
                                 size_t buflen)
{
    const char *field = (const char *)&cf->g + s->offset;
    const char *str;

    if (!buf || buflen == 0)
        return "";
    buf[0] = '\0';
    switch (s->type) {
    case CF_INT:
        if (IS(s, unix_socket_mode))
            snprintf(buf, buflen, "0%o", (unsigned)*(const int *)field);
        else
            snprintf(buf, buflen, "%d", *(const int *)field);
        break;
    case CF_BOOL:
        snprintf(buf, buflen, "%d", *(const int *)field ? 1 : 0);
        break;
    case CF_TIME:
        format_time(*(const usec_t *)field, s->unit_usec, buf, buflen);
        break;
    case CF_ENUM_POOL_MODE:
        snprintf(buf, buflen, "%s", config_pool_mode_name(*(const int *)field));
        break;
    case CF_ENUM_AUTH_TYPE:
        snprintf(buf, buflen, "%s", config_auth_type_name(*(const int *)field));
        break;
    case CF_STRING:
        str = *(char *const *)field;
        if (IS(s, server_check_query)) {
            if (cf->g.server_check_query_disabled)
                str = "";
            else if (!str || !*str)
                str = "<empty>";
        }
        snprintf(buf, buflen, "%s", str ? str : "");
        break;
    }
    return buf;
}

static bool apply_defaults(struct cf_global *g, char *err, size_t errlen)
{
    for (size_t i = 0; i < config_nsettings; i++) {
        if (!setting_set(g, &config_settings[i], config_settings[i].default_str, true, err, errlen))
            return false;
    }
    return true;
}

static void free_global(struct cf_global *g)
{
    for (size_t i = 0; i < config_nsettings; i++) {
        if (config_settings[i].type == CF_STRING) {
            char **p = (char **)((char *)g + config_settings[i].offset);
            if (config_settings[i].secret)
                secret_free_str(*p);
            else
                free(*p);
            *p = NULL;
        }
    }
    free(g->service_name);
    g->service_name = NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* [databases]                                                                               */

struct db_parse {
    struct cf_database *db;
    char *host_list; /* raw host= value, split at the end */
    char *port_list; /* raw port= value */
};

static bool set_override_int(const char *key, const char *value, int *out, char *err, size_t errlen)
{
    if (!parse_int(value, 10, 0, INT_MAX, out)) {
        put_err(err, errlen, "invalid value \"%s\" for %s: expected a non-negative integer", value,
                key);
        return false;
    }
    return true;
}

/* Time overrides: seconds with fractions, or -1 meaning "not set" (PgBouncer's convention). */
static bool set_override_time(const char *key, const char *value, usec_t *out, char *err,
                              size_t errlen)
{
    if (strcmp(value, "-1") == 0) {
        *out = CF_UNSET;
        return true;
    }
    if (!parse_time(value, USEC_PER_SEC, out)) {
        put_err(err, errlen,
                "invalid value \"%s\" for %s: expected a non-negative number of "
                "seconds",
                value, key);
        return false;
    }
    return true;
}

static bool set_override_enum(const struct name_value *table, const char *key, const char *value,
                              int *out, char *err, size_t errlen)
{
    char choices[160];

    if (!lookup_enum(table, value, out)) {
        put_err(err, errlen, "invalid value \"%s\" for %s: expected one of %s", value, key,
                enum_choices(table, choices, sizeof(choices)));
        return false;
    }
    return true;
}

static bool db_pair(void *arg, const char *key, const char *value, char *err, size_t errlen)
{
    struct db_parse *dp = arg;
    struct cf_database *db = dp->db;
    static const struct {
        const char *key;
        size_t offset;
    } strings[] = {
        {"dbname", offsetof(struct cf_database, dbname)},
        {"user", offsetof(struct cf_database, user)},
        {"password", offsetof(struct cf_database, password)},
        {"auth_user", offsetof(struct cf_database, auth_user)},
        {"auth_dbname", offsetof(struct cf_database, auth_dbname)},
        {"auth_query", offsetof(struct cf_database, auth_query)},
        {"connect_query", offsetof(struct cf_database, connect_query)},
        {"client_encoding", offsetof(struct cf_database, client_encoding)},
        {"datestyle", offsetof(struct cf_database, datestyle)},
        {"timezone", offsetof(struct cf_database, timezone)},
        {"application_name", offsetof(struct cf_database, application_name)},
        {"read_your_writes", offsetof(struct cf_database, read_your_writes)},
    };
    static const struct {
        const char *key;
        size_t offset;
    } ints[] = {
        {"pool_size", offsetof(struct cf_database, pool_size)},
        {"min_pool_size", offsetof(struct cf_database, min_pool_size)},
        {"reserve_pool_size", offsetof(struct cf_database, reserve_pool_size)},
        {"reserve_pool", offsetof(struct cf_database, reserve_pool_size)},
        {"max_db_connections", offsetof(struct cf_database, max_db_connections)},
        {"max_db_client_connections", offsetof(struct cf_database, max_db_client_connections)},
        {"server_lifetime", offsetof(struct cf_database, server_lifetime_sec)},
    };

    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        if (strcasecmp(key, strings[i].key) == 0) {
            if (!set_str((char **)((char *)db + strings[i].offset), value)) {
                put_err(err, errlen, "out of memory");
                return false;
            }
            return true;
        }
    }
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        if (strcasecmp(key, ints[i].key) == 0)
            return set_override_int(key, value, (int *)((char *)db + ints[i].offset), err, errlen);
    }
    if (strcasecmp(key, "host") == 0 || strcasecmp(key, "port") == 0) {
        char **dst = strcasecmp(key, "host") == 0 ? &dp->host_list : &dp->port_list;
        if (!set_str(dst, value)) {
            put_err(err, errlen, "out of memory");
            return false;
        }
        return true;
    }
    if (strcasecmp(key, "pool_mode") == 0)
        return set_override_enum(pool_modes, key, value, &db->pool_mode, err, errlen);
    if (strcasecmp(key, "load_balance_hosts") == 0)
        return set_override_enum(lb_policies, key, value, &db->load_balance_hosts, err, errlen);
    if (strcasecmp(key, "target_session_attrs") == 0)
        return set_override_enum(tsa_values, key, value, &db->target_session_attrs, err, errlen);
    if (strcasecmp(key, "max_replica_lag") == 0)
        return set_override_time(key, value, &db->max_replica_lag, err, errlen);
    if (strcasecmp(key, "query_wait_timeout") == 0)
        return set_override_time(key, value, &db->query_wait_timeout, err, errlen);
    put_err(err, errlen, "unknown parameter \"%s\"", key);
    return false;
}

/* Splits a comma list into trimmed items. Empty items are an error. */
static bool split_list(const char *list, char ***items_out, int *n_out, const char *what, char *err,
                       size_t errlen)
{
    char **items = NULL;
    int n = 0;
    const char *p = list;

    for (;;) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        const char *start = p;
        char **grown;

        while (start < end && (*start == ' ' || *start == '\t'))
            start++;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if (end == start) {
            put_err(err, errlen, "empty entry in %s list \"%s\"", what, list);
            goto fail;
        }
        grown = realloc(items, sizeof(*items) * (size_t)(n + 1));
        if (!grown)
            goto oom;
        items = grown;
        items[n] = strndup(start, (size_t)(end - start));
        if (!items[n])
            goto oom;
        n++;
        if (!comma)
            break;
        p = comma + 1;
    }
    *items_out = items;
    *n_out = n;
    return true;
oom:
    put_err(err, errlen, "out of memory");
fail:
    for (int i = 0; i < n; i++)
        free(items[i]);
    free(items);
    return false;
}

static bool finish_hosts(struct db_parse *dp, char *err, size_t errlen)
{
    struct cf_database *db = dp->db;
    char **port_strs = NULL;
    int nports = 0;
    int *ports = NULL;
    bool ok = false;

    db->port = DEFAULT_DB_PORT;
    if (dp->port_list) {
        if (!split_list(dp->port_list, &port_strs, &nports, "port", err, errlen))
            return false;
        ports = calloc((size_t)nports, sizeof(*ports));
        if (!ports) {
            put_err(err, errlen, "out of memory");
            goto done;
        }
        for (int i = 0; i < nports; i++) {
            if (!parse_int(port_strs[i], 10, 1, 65535, &ports[i])) {
                put_err(err, errlen, "invalid port \"%s\": expected a number from 1 to 65535",
                        port_strs[i]);
                goto done;
            }
        }
        db->port = ports[0];
    }
    if (dp->host_list) {
        if (!split_list(dp->host_list, &db->hosts, &db->nhosts, "host", err, errlen))
            goto done;
        if (db->nhosts > CF_MAX_HOSTS) {
            put_err(err, errlen, "host list has %d entries, at most %d are supported",
                    db->nhosts, CF_MAX_HOSTS);
            goto done;
        }
    }
    if (nports > 1 && nports != db->nhosts) {
        if (db->nhosts == 0)
            put_err(err, errlen, "port list has %d entries but no host is given", nports);
        else
            put_err(err, errlen, "port list has %d entries but host list has %d", nports,
                    db->nhosts);
        goto done;
    }
    if (db->nhosts > 0) {
        db->ports = calloc((size_t)db->nhosts, sizeof(*db->ports));
        if (!db->ports) {
            put_err(err, errlen, "out of memory");
            goto done;
        }
        for (int i = 0; i < db->nhosts; i++)
            db->ports[i] = nports > 1 ? ports[i] : db->port;
    }
    ok = true;
done:
    for (int i = 0; i < nports; i++)
        free(port_strs[i]);
    free(port_strs);
    free(ports);
    return ok;
}

void config_free_database(struct cf_database *db)
{
    if (!db)
        return;
    free(db->name);
    free(db->dbname);
    for (int i = 0; i < db->nhosts; i++)
        free(db->hosts[i]);
    free(db->hosts);
    free(db->ports);
    free(db->user);
    secret_free_str(db->password);
    free(db->auth_user);
    free(db->auth_dbname);
    free(db->auth_query);
    free(db->connect_query);
    free(db->read_your_writes);
    free(db->client_encoding);
    free(db->datestyle);
    free(db->timezone);
    free(db->application_name);
    secret_free_str(db->connstr); /* it holds the password= too */
    memset(db, 0, sizeof(*db));
}

bool config_parse_database(const char *name, const char *connstr, struct cf_database *out,
                           char *err, size_t errlen)
{
    struct db_parse dp = {.db = out};
    bool ok = false;

    memset(out, 0, sizeof(*out));
    out->pool_size = CF_UNSET;
    out->min_pool_size = CF_UNSET;
    out->reserve_pool_size = CF_UNSET;
    out->pool_mode = CF_UNSET;
    out->max_db_connections = CF_UNSET;
    out->max_db_client_connections = CF_UNSET;
    out->server_lifetime_sec = CF_UNSET;
    out->load_balance_hosts = CF_UNSET;
    out->target_session_attrs = CF_UNSET;
    out->max_replica_lag = CF_UNSET;
    out->query_wait_timeout = CF_UNSET;
    out->port = DEFAULT_DB_PORT;
    out->name = strdup(name);
    out->connstr = strdup(connstr);
    if (!out->name || !out->connstr) {
        put_err(err, errlen, "out of memory");
        goto done;
    }
    if (!connstr_parse(connstr, db_pair, &dp, err, errlen))
        goto done;
    if (!finish_hosts(&dp, err, errlen))
        goto done;
    ok = true;
done:
    free(dp.host_list);
    free(dp.port_list);
    if (!ok)
        config_free_database(out);
    return ok;
}

/* ---------------------------------------------------------------------------------------- */
/* [users] and [peers]                                                                       */

static void free_user(struct cf_user *u)
{
    free(u->name);
    free(u->connstr);
    memset(u, 0, sizeof(*u));
}

static bool user_pair(void *arg, const char *key, const char *value, char *err, size_t errlen)
{
    struct cf_user *u = arg;

    if (strcasecmp(key, "pool_mode") == 0)
        return set_override_enum(pool_modes, key, value, &u->pool_mode, err, errlen);
    if (strcasecmp(key, "pool_size") == 0)
        return set_override_int(key, value, &u->pool_size, err, errlen);
    if (strcasecmp(key, "reserve_pool_size") == 0 || strcasecmp(key, "reserve_pool") == 0)
        return set_override_int(key, value, &u->reserve_pool_size, err, errlen);
    if (strcasecmp(key, "max_user_connections") == 0)
        return set_override_int(key, value, &u->max_user_connections, err, errlen);
    if (strcasecmp(key, "max_user_client_connections") == 0)
        return set_override_int(key, value, &u->max_user_client_connections, err, errlen);
    if (strcasecmp(key, "query_timeout") == 0)
        return set_override_time(key, value, &u->query_timeout, err, errlen);
    if (strcasecmp(key, "query_wait_timeout") == 0)
        return set_override_time(key, value, &u->query_wait_timeout, err, errlen);
    if (strcasecmp(key, "idle_transaction_timeout") == 0)
        return set_override_time(key, value, &u->idle_transaction_timeout, err, errlen);
    if (strcasecmp(key, "transaction_timeout") == 0)
        return set_override_time(key, value, &u->transaction_timeout, err, errlen);
    if (strcasecmp(key, "client_idle_timeout") == 0)
        return set_override_time(key, value, &u->client_idle_timeout, err, errlen);
    put_err(err, errlen, "unknown parameter \"%s\"", key);
    return false;
}

static bool parse_user(const char *name, const char *connstr, struct cf_user *u, char *err,
                       size_t errlen)
{
    memset(u, 0, sizeof(*u));
    u->pool_mode = CF_UNSET;
    u->pool_size = CF_UNSET;
    u->reserve_pool_size = CF_UNSET;
    u->max_user_connections = CF_UNSET;
    u->max_user_client_connections = CF_UNSET;
    u->query_timeout = CF_UNSET;
    u->query_wait_timeout = CF_UNSET;
    u->idle_transaction_timeout = CF_UNSET;
    u->transaction_timeout = CF_UNSET;
    u->client_idle_timeout = CF_UNSET;
    u->name = strdup(name);
    u->connstr = strdup(connstr);
    if (!u->name || !u->connstr) {
        put_err(err, errlen, "out of memory");
        free_user(u);
        return false;
    }
    if (!connstr_parse(connstr, user_pair, u, err, errlen)) {
        free_user(u);
        return false;
    }
    return true;
}

static void free_peer(struct cf_peer *p)
{
    free(p->host);
    memset(p, 0, sizeof(*p));
}

static bool peer_pair(void *arg, const char *key, const char *value, char *err, size_t errlen)
{
    struct cf_peer *p = arg;

    if (strcasecmp(key, "host") == 0) {
        if (!set_str(&p->host, value)) {
            put_err(err, errlen, "out of memory");
            return false;
        }
        return true;
    }
    if (strcasecmp(key, "port") == 0) {
        if (!parse_int(value, 10, 1, 65535, &p->port)) {
            put_err(err, errlen, "invalid port \"%s\": expected a number from 1 to 65535", value);
            return false;
        }
        return true;
    }
    if (strcasecmp(key, "pool_size") == 0)
        return set_override_int(key, value, &p->pool_size, err, errlen);
    put_err(err, errlen, "unknown parameter \"%s\"", key);
    return false;
}

static bool parse_peer(const char *key, const char *connstr, struct cf_peer *p, char *err,
                       size_t errlen)
{
    memset(p, 0, sizeof(*p));
    p->port = DEFAULT_PEER_PORT;
    p->pool_size = CF_UNSET;
    if (!parse_int(key, 10, 1, MAX_PEER_ID, &p->peer_id)) {
        put_err(err, errlen, "invalid peer id \"%s\": expected a number from 1 to %d", key,
                MAX_PEER_ID);
        return false;
    }
    if (!connstr_parse(connstr, peer_pair, p, err, errlen)) {
        free_peer(p);
        return false;
    }
    if (!p->host) {
        put_err(err, errlen, "peer %d: host is required", p->peer_id);
        free_peer(p);
        return false;
    }
    return true;
}

/* ---------------------------------------------------------------------------------------- */
/* loading                                                                                   */

enum section { SEC_NONE, SEC_PGBOUNCER, SEC_DATABASES, SEC_USERS, SEC_PEERS };

struct loader {
    struct config *cf;
    enum section sec;
    bool seen_main;
    const char **set_file; /* per settings row: where it was last set explicitly, or NULL */
    int *set_line;
};

static const char *intern_file(struct config *cf, const char *file)
{
    char **grown;

    for (int i = 0; i < cf->nfiles; i++) {
        if (strcmp(cf->files[i], file) == 0)
            return cf->files[i];
    }
    grown = realloc(cf->files, sizeof(*grown) * (size_t)(cf->nfiles + 1));
    if (!grown)
        return NULL;
    cf->files = grown;
    cf->files[cf->nfiles] = strdup(file);
    if (!cf->files[cf->nfiles])
        return NULL;
    return cf->files[cf->nfiles++];
}

static bool start_section(struct loader *ld, const char *name, char *err, size_t errlen)
{
    if (strcasecmp(name, "pgbouncer") == 0) {
        ld->sec = SEC_PGBOUNCER;
        ld->seen_main = true;
    } else if (strcasecmp(name, "databases") == 0) {
        ld->sec = SEC_DATABASES;
    } else if (strcasecmp(name, "users") == 0) {
        ld->sec = SEC_USERS;
    } else if (strcasecmp(name, "peers") == 0) {
        ld->sec = SEC_PEERS;
    } else {
        put_err(err, errlen,
                "unknown section [%s] (expected [pgbouncer], [databases], [users] or [peers])",
                name);
        return false;
    }
    return true;
}

/* Appends to or replaces in an array of entries keyed by name: a later definition of the same
 * name replaces the earlier one, as a PgBouncer reload would. */
static bool add_database(struct config *cf, struct cf_database *db)
{
    struct cf_database *grown;

    for (int i = 0; i < cf->ndbs; i++) {
        if (strcmp(cf->dbs[i].name, db->name) == 0) {
            config_free_database(&cf->dbs[i]);
            cf->dbs[i] = *db;
            return true;
        }
    }
    grown = realloc(cf->dbs, sizeof(*grown) * (size_t)(cf->ndbs + 1));
    if (!grown)
        return false;
    cf->dbs = grown;
    cf->dbs[cf->ndbs++] = *db;
    return true;
}

static bool add_user(struct config *cf, struct cf_user *u)
{
    struct cf_user *grown;

    for (int i = 0; i < cf->nusers; i++) {
        if (strcmp(cf->users[i].name, u->name) == 0) {
            free_user(&cf->users[i]);
            cf->users[i] = *u;
            return true;
        }
    }
    grown = realloc(cf->users, sizeof(*grown) * (size_t)(cf->nusers + 1));
    if (!grown)
        return false;
    cf->users = grown;
    cf->users[cf->nusers++] = *u;
    return true;
}

static bool add_peer(struct config *cf, struct cf_peer *p)
{
    struct cf_peer *grown;

    for (int i = 0; i < cf->npeers; i++) {
        if (cf->peers[i].peer_id == p->peer_id) {
            free_peer(&cf->peers[i]);
            cf->peers[i] = *p;
            return true;
        }
    }
    grown = realloc(cf->peers, sizeof(*grown) * (size_t)(cf->npeers + 1));
    if (!grown)
        return false;
    cf->peers = grown;
    cf->peers[cf->npeers++] = *p;
    return true;
}

static bool handle_database(struct loader *ld, const char *file, int line, const char *key,
                            const char *value, char *err, size_t errlen)
{
    struct cf_database db;
    char why[768];

    if (strcmp(key, "pgbouncer") == 0) {
        put_err(err, errlen, "database name \"pgbouncer\" is reserved for the admin console");
        return false;
    }
    if (!config_parse_database(key, value, &db, why, sizeof(why))) {
        put_err(err, errlen, "database \"%s\": %s", key, why);
        return false;
    }
    db.file = intern_file(ld->cf, file);
    db.line = line;
    if (!db.file || !add_database(ld->cf, &db)) {
        config_free_database(&db);
        put_err(err, errlen, "out of memory");
        return false;
    }
    return true;
}

static bool handle_user(struct loader *ld, const char *file, int line, const char *key,
                        const char *value, char *err, size_t errlen)
{
    struct cf_user u;
    char why[768];

    if (!parse_user(key, value, &u, why, sizeof(why))) {
        put_err(err, errlen, "user \"%s\": %s", key, why);
        return false;
    }
    u.file = intern_file(ld->cf, file);
    u.line = line;
    if (!u.file || !add_user(ld->cf, &u)) {
        free_user(&u);
        put_err(err, errlen, "out of memory");
        return false;
    }
    return true;
}

static bool handle_peer(struct loader *ld, const char *file, int line, const char *key,
                        const char *value, char *err, size_t errlen)
{
    struct cf_peer p;
    char why[768];

    if (!parse_peer(key, value, &p, why, sizeof(why))) {
        put_err(err, errlen, "peer \"%s\": %s", key, why);
        return false;
    }
    p.file = intern_file(ld->cf, file);
    p.line = line;
    if (!p.file || !add_peer(ld->cf, &p)) {
        free_peer(&p);
        put_err(err, errlen, "out of memory");
        return false;
    }
    return true;
}

static bool ini_line(void *arg, const char *file, int line, const char *section, const char *key,
                     const char *value, char *err, size_t errlen)
{
    struct loader *ld = arg;
    const struct cf_setting *s;

    if (!key)
        return start_section(ld, section, err, errlen);
    switch (ld->sec) {
    case SEC_NONE:
        put_err(err, errlen, "parameter \"%s\" outside of any section", key);
        return false;
    case SEC_PGBOUNCER:
        s = config_find_setting(key);
        if (!s) {
            put_err(err, errlen, "unknown parameter \"%s\"", key);
            return false;
        }
        if (!setting_set(&ld->cf->g, s, value, false, err, errlen))
            return false;
        ld->set_file[s - config_settings] = intern_file(ld->cf, file);
        ld->set_line[s - config_settings] = line;
        return true;
    case SEC_DATABASES:
        return handle_database(ld, file, line, key, value, err, errlen);
    case SEC_USERS:
        return handle_user(ld, file, line, key, value, err, errlen);
    case SEC_PEERS:
        return handle_peer(ld, file, line, key, value, err, errlen);
    }
    return false;
}

/* Cross-setting checks, reported at the line that set the later of the two. */
static bool check_global(struct loader *ld, char *err, size_t errlen)
{
    const struct cf_global *g = &ld->cf->g;
    const struct cf_setting *mps = config_find_setting("max_packet_size");
    const struct cf_setting *pkt = config_find_setting("pkt_buf");
    size_t i_mps = (size_t)(mps - config_settings), i_pkt = (size_t)(pkt - config_settings);

    if (g->max_packet_size < g->pkt_buf) {
        size_t at = ld->set_line[i_mps] ? i_mps : i_pkt;
        put_err(err, errlen, "%s:%d: max_packet_size (%d) must not be smaller than pkt_buf (%d)",
                ld->set_file[at] ? ld->set_file[at] : ld->cf->path, ld->set_line[at],
                g->max_packet_size, g->pkt_buf);
        return false;
    }
    return true;
}

static int cmp_authuser(const void *a, const void *b)
{
    const struct cf_authuser *x = a, *y = b;
    return strcmp(x->name, y->name);
}

static bool auth_entry(void *arg, const char *file, int line, const char *user, const char *secret,
                       char *err, size_t errlen)
{
    struct config *cf = arg;
    struct cf_authuser *grown;

    (void)file;
    (void)line;
    grown = realloc(cf->authusers, sizeof(*grown) * (size_t)(cf->nauthusers + 1));
    if (!grown) {
        put_err(err, errlen, "out of memory");
        return false;
    }
    cf->authusers = grown;
    grown[cf->nauthusers].name = strdup(user);
    grown[cf->nauthusers].secret = strdup(secret);
    if (!grown[cf->nauthusers].name || !grown[cf->nauthusers].secret) {
        free(grown[cf->nauthusers].name);
        secret_free_str(grown[cf->nauthusers].secret);
        put_err(err, errlen, "out of memory");
        return false;
    }
    cf->nauthusers++;
    return true;
}

struct tagged_authuser {
    struct cf_authuser u;
    int order; /* line order in the file */
};

static int cmp_tagged(const void *a, const void *b)
{
    const struct tagged_authuser *x = a, *y = b;
    int c = strcmp(x->u.name, y->u.name);
    return c ? c : (x->order > y->order) - (x->order < y->order);
}

/* Reads auth_file, sorts by name and keeps only the last line for a repeated name (a later
 * line overrides an earlier one, as in PgBouncer). qsort is not stable, so entries carry
 * their line order. */
static bool load_authfile(struct loader *ld, char *err, size_t errlen)
{
    struct config *cf = ld->cf;
    const struct cf_setting *s = config_find_setting("auth_file");
    size_t idx = (size_t)(s - config_settings);
    struct tagged_authuser *t;
    char why[1024];
    int kept = 0;

    if (!cf->g.auth_file)
        return true;
    if (!authfile_parse_file(cf->g.auth_file, auth_entry, cf, why, sizeof(why))) {
        put_err(err, errlen, "%s:%d: auth_file: %s", ld->set_file[idx] ? ld->set_file[idx] : "",
                ld->set_line[idx], why);
        return false;
    }
    if (cf->nauthusers < 2)
        return true;
    t = calloc((size_t)cf->nauthusers, sizeof(*t));
    if (!t) {
        put_err(err, errlen, "out of memory");
        return false;
    }
    for (int i = 0; i < cf->nauthusers; i++) {
        t[i].u = cf->authusers[i];
        t[i].order = i;
    }
    qsort(t, (size_t)cf->nauthusers, sizeof(*t), cmp_tagged);
    for (int i = 0; i < cf->nauthusers; i++) {
        if (i + 1 < cf->nauthusers && strcmp(t[i].u.name, t[i + 1].u.name) == 0) {
            free(t[i].u.name);
            secret_free_str(t[i].u.secret);
            continue;
        }
        cf->authusers[kept++] = t[i].u;
    }
    cf->nauthusers = kept;
    free(t);
    return true;
}

/* auth_type = hba: auth_hba_file (and auth_ident_file) are part of the snapshot, so a broken
 * one refuses to start and a RELOAD keeps the running rules. Unlike PgBouncer, which skips a
 * line it cannot parse: a skipped "reject" would let in whom it was meant to keep out. */
static bool load_hba(struct loader *ld, char *err, size_t errlen)
{
    struct config *cf = ld->cf;
    if (cf->g.auth_type != AUTH_TYPE_HBA)
        return true;
    if (!cf->g.auth_hba_file) {
        put_err(err, errlen, "%s: auth_type = hba needs auth_hba_file", cf->path);
        return false;
    }
    char why[600];
    cf->hba = hba_load(cf->g.auth_hba_file, cf->g.auth_ident_file, why, sizeof(why));
    if (!cf->hba) {
        put_err(err, errlen, "%s", why);
        return false;
    }
    return true;
}

static bool add_unimplemented(struct config *cf, const char *name)
{
    char **grown = realloc(cf->unimplemented, sizeof(*grown) * (size_t)(cf->nunimplemented + 1));
    if (!grown)
        return false;
    cf->unimplemented = grown;
    grown[cf->nunimplemented] = strdup(name);
    if (!grown[cf->nunimplemented])
        return false;
    cf->nunimplemented++;
    return true;
}

/* Lists unimplemented settings the ini set to something other than their default. */
static bool collect_unimplemented(struct loader *ld, char *err, size_t errlen)
{
    struct config defaults;
    char a[512], b[512];
    bool ok = false;

    memset(&defaults, 0, sizeof(defaults));
    if (!apply_defaults(&defaults.g, err, errlen))
        goto done;
    for (size_t i = 0; i < config_nsettings; i++) {
        const struct cf_setting *s = &config_settings[i];
        if (s->implemented || ld->set_line[i] == 0)
            continue;
        if (strcmp(config_setting_value(ld->cf, s, a, sizeof(a)),
                   config_setting_value(&defaults, s, b, sizeof(b))) == 0)
            continue;
        if (!add_unimplemented(ld->cf, s->name)) {
            put_err(err, errlen, "out of memory");
            goto done;
        }
    }
    ok = true;
done:
    free_global(&defaults.g);
    return ok;
}

/* read_your_writes names another [databases] entry (not "*", not itself). */
static bool check_read_your_writes(const struct config *cf, char *err, size_t errlen)
{
    for (int i = 0; i < cf->ndbs; i++) {
        const struct cf_database *db = &cf->dbs[i];
        const char *w = db->read_your_writes;
        if (!w)
            continue;
        if (strcmp(w, db->name) == 0 || strcmp(w, "*") == 0 || !config_find_database(cf, w)) {
            put_err(err, errlen, "%s:%d: database \"%s\": read_your_writes names no other "
                                 "database: \"%s\"",
                    db->file ? db->file : "", db->line, db->name, w);
            return false;
        }
    }
    return true;
}

struct config *config_load(const char *path, char *err, size_t errlen)
{
    struct config *cf = calloc(1, sizeof(*cf));
    struct loader ld = {.cf = cf};

    if (err && errlen)
        err[0] = '\0';
    if (!cf) {
        put_err(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    ld.set_file = calloc(config_nsettings, sizeof(*ld.set_file));
    ld.set_line = calloc(config_nsettings, sizeof(*ld.set_line));
    cf->path = strdup(path);
    if (!ld.set_file || !ld.set_line || !cf->path) {
        put_err(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    if (!apply_defaults(&cf->g, err, errlen))
        goto fail;
    if (!ini_parse_file(path, ini_line, &ld, err, errlen))
        goto fail;
    if (!ld.seen_main) {
        put_err(err, errlen, "%s: no [pgbouncer] section", path);
        goto fail;
    }
    if (!check_global(&ld, err, errlen))
        goto fail;
    if (!cf->g.conffile && !(cf->g.conffile = strdup(path)))
        goto oom;
    if (cf->g.job_name && !(cf->g.service_name = strdup(cf->g.job_name)))
        goto oom;
    if (!check_read_your_writes(cf, err, errlen))
        goto fail;
    if (!load_authfile(&ld, err, errlen))
        goto fail;
    if (!load_hba(&ld, err, errlen))
        goto fail;
    if (!collect_unimplemented(&ld, err, errlen))
        goto fail;
    free(ld.set_file);
    free(ld.set_line);
    return cf;
oom:
    put_err(err, errlen, "%s: out of memory", path);
fail:
    free(ld.set_file);
    free(ld.set_line);
    config_free(cf);
    return NULL;
}

void config_free(struct config *cf)
{
    if (!cf)
        return;
    free_global(&cf->g);
    hba_free(cf->hba);
    for (int i = 0; i < cf->ndbs; i++)
        config_free_database(&cf->dbs[i]);
    free(cf->dbs);
    for (int i = 0; i < cf->nusers; i++)
        free_user(&cf->users[i]);
    free(cf->users);
    for (int i = 0; i < cf->npeers; i++)
        free_peer(&cf->peers[i]);
    free(cf->peers);
    for (int i = 0; i < cf->nauthusers; i++) {
        free(cf->authusers[i].name);
        secret_free_str(cf->authusers[i].secret);
    }
    free(cf->authusers);
    for (int i = 0; i < cf->nunimplemented; i++)
        free(cf->unimplemented[i]);
    free(cf->unimplemented);
    for (int i = 0; i < cf->nfiles; i++)
        free(cf->files[i]);
    free(cf->files);
    free(cf->path);
    free(cf);
}

const char *config_list_next(const char **cursor, size_t *len)
{
    const char *p = *cursor;
    while (*p == ',' || isspace((unsigned char)*p))
        p++;
    const char *e = p;
    while (*e && *e != ',' && !isspace((unsigned char)*e))
        e++;
    *cursor = e;
    *len = (size_t)(e - p);
    return e > p ? p : NULL;
}

bool config_list_has(const char *list, const char *name, bool nocase)
{
    size_t nlen = strlen(name), len;
    const char *cur = list ? list : "", *item;
    while ((item = config_list_next(&cur, &len)) != NULL)
        if (len == nlen && (nocase ? strncasecmp(item, name, len) : strncmp(item, name, len)) == 0)
            return true;
    return false;
}

const struct cf_database *config_find_database(const struct config *cf, const char *name)
{
    for (int i = 0; i < cf->ndbs; i++) {
        if (strcmp(cf->dbs[i].name, name) == 0)
            return &cf->dbs[i];
    }
    return NULL;
}

const struct cf_user *config_find_user(const struct config *cf, const char *name)
{
    for (int i = 0; i < cf->nusers; i++) {
        if (strcmp(cf->users[i].name, name) == 0)
            return &cf->users[i];
    }
    return NULL;
}

const struct cf_authuser *config_find_authuser(const struct config *cf, const char *name)
{
    struct cf_authuser key = {.name = (char *)name};

    if (cf->nauthusers == 0)
        return NULL;
    return bsearch(&key, cf->authusers, (size_t)cf->nauthusers, sizeof(*cf->authusers),
                   cmp_authuser);
}
