/*
 * config.h: one immutable snapshot of pgbouncer.ini (+ %include files) and the auth file.
 * Reload builds a new snapshot and swaps it in; nothing ever mutates a loaded snapshot.
 * Parsing never exits the process: errors come back as text with file:line.
 */
#ifndef PGUSHER_CONFIG_H
#define PGUSHER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Time settings are stored in microseconds (PgBouncer accepts seconds, fractions allowed). */
typedef int64_t usec_t;
#define USEC_PER_SEC 1000000LL

struct hba;

/* "unset" marker for per-database / per-user integer overrides. */
#define CF_UNSET (-1)

typedef enum { POOL_SESSION = 0, POOL_TRANSACTION, POOL_STATEMENT } pool_mode_t;

typedef enum {
    AUTH_TYPE_TRUST = 0,
    AUTH_TYPE_PLAIN, /* "plain": cleartext password from the client */
    AUTH_TYPE_MD5,
    AUTH_TYPE_SCRAM, /* "scram-sha-256" */
    AUTH_TYPE_ANY,   /* "any": no auth, user name ignored (needs forced user in db) */
    AUTH_TYPE_CERT,  /* user name = client certificate CN (needs client_tls_sslmode verify-full) */
    AUTH_TYPE_HBA,   /* per connection, from auth_hba_file (hba.h) */
    AUTH_TYPE_PAM,   /* accepted, not implemented yet */
    AUTH_TYPE_LDAP,  /* accepted, not implemented yet */
} auth_type_t;

typedef enum {
    LB_ROUND_ROBIN = 0, /* PgBouncer's default */
    LB_DISABLE,
    LB_RANDOM,
    LB_LEAST_CONNECTIONS,
} lb_policy_t;

/* target_session_attrs (libpq names): which backends may serve a database. */
typedef enum {
    TSA_ANY = 0,
    TSA_READ_WRITE,
    TSA_READ_ONLY,
    TSA_PRIMARY,
    TSA_STANDBY,
    TSA_PREFER_STANDBY,
} tsa_t;

/* The longest host list a [databases] entry may have (a longer one is a config error). */
#define CF_MAX_HOSTS 128

/* One [databases] entry. Integer overrides are CF_UNSET when not given. */
struct cf_database {
    char *name;   /* key in [databases]; "*" is the fallback entry */
    char *dbname; /* real database name on the server; NULL = same as name */
    char **hosts; /* nhosts entries; a host starting with '/' is a Unix socket directory */
    int *ports;   /* nhosts entries (one port given = repeated) */
    int nhosts;   /* 0 = no host given: Unix socket in the default directory */
    char *user;   /* forced server user, or NULL */
    char *password;
    char *auth_user;
    char *auth_dbname;
    char *auth_query;
    int pool_size;
    int min_pool_size;
    int reserve_pool_size;
    char *connect_query;
    int pool_mode; /* pool_mode_t or CF_UNSET */
    int max_db_connections;
    int max_db_client_connections;
    int server_lifetime_sec; /* seconds or CF_UNSET */
    char *client_encoding;
    char *datestyle;
    char *timezone;
    char *application_name;
    int load_balance_hosts;    /* lb_policy_t or CF_UNSET */
    int port;                  /* the port given (or 5432); ports[] repeats it per host; this is
                                * the one to use when nhosts == 0 (Unix socket, default dir) */
    int target_session_attrs;  /* tsa_t or CF_UNSET (= any) */
    usec_t max_replica_lag;    /* standby replay lag limit; CF_UNSET = none given */
    char *read_your_writes;    /* the database whose writes its clients must see, or NULL */
    usec_t query_wait_timeout; /* CF_UNSET = use the user's or the global value */
    char *connstr;             /* the raw value, to detect changes on reload */
    const char *file;          /* where it was defined, for messages */
    int line;
};

/* One [users] entry. */
struct cf_user {
    char *name;
    int pool_mode; /* pool_mode_t or CF_UNSET */
    int pool_size;
    int reserve_pool_size;
    int max_user_connections;
    int max_user_client_connections;
    /* Per-user timeouts (PgBouncer 1.24+); CF_UNSET = use the database's or global value. */
    usec_t query_timeout, query_wait_timeout, idle_transaction_timeout, transaction_timeout;
    usec_t client_idle_timeout;
    char *connstr;
    const char *file;
    int line;
};

/* One [peers] entry. */
struct cf_peer {
    int peer_id;
    char *host;
    int port;      /* default 6432 */
    int pool_size; /* max cancel requests in flight; CF_UNSET = default_pool_size */
    const char *file;
    int line;
};

/* One userlist.txt line: "user" "secret". The secret is kept as given: plain text,
 * "md5<32 hex>" or "SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>". */
struct cf_authuser {
    char *name;
    char *secret;
};

/* Every [pgbouncer] setting PgBouncer 1.25 documents. Booleans are ints (0/1).
 * String settings that are empty / not set are NULL. */
struct cf_global {
    /* generic */
    char *logfile, *pidfile, *listen_addr, *unix_socket_dir, *unix_socket_group, *user;
    int listen_port, listen_backlog, unix_socket_mode, so_reuseport;
    char *auth_file, *auth_hba_file, *auth_ident_file, *auth_user, *auth_query, *auth_dbname;
    char *auth_ldap_options;
    int auth_type; /* auth_type_t */
    int pool_mode; /* pool_mode_t */
    int max_client_conn, default_pool_size, min_pool_size, reserve_pool_size;
    usec_t reserve_pool_timeout;
    int max_db_connections, max_db_client_connections;
    int max_user_connections, max_user_client_connections;
    int server_round_robin;
    char *track_extra_parameters, *ignore_startup_parameters;
    int peer_id;
    int disable_pqexec, application_name_add_host;
    char *conffile, *service_name, *job_name;
    usec_t stats_period;
    int max_prepared_statements;
    int scram_iterations;
    /* logging */
    int syslog;
    char *syslog_ident, *syslog_facility;
    int log_connections, log_disconnections, log_pooler_errors, log_stats, verbose;
    /* console */
    char *admin_users, *stats_users;
    /* the HTTP metrics endpoint ("host:port"; NULL = off; pgusher's own) */
    char *metrics_listen;
    /* backend health checks (pgusher's own settings) */
    usec_t health_check_period, health_check_timeout;
    int health_check_fall, health_check_rise;
    char *health_check_user, *health_check_password, *health_check_dbname;
    /* which methods a server may make pgusher log in with (libpq's require_auth list) */
    char *server_require_auth;
    unsigned server_require_auth_mask; /* proto.h's PROTO_METHOD_* bits, from the list */
    /* connection sanity */
    char *server_reset_query;
    int server_reset_query_always;
    char *server_check_query;        /* NULL/"" = empty query (PgBouncer's <empty>) */
    int server_check_query_disabled; /* 1: set to "" in the ini = no sanity check at all */
    usec_t server_check_delay;
    int server_fast_close;
    usec_t server_lifetime, server_idle_timeout, server_connect_timeout, server_login_retry;
    usec_t client_login_timeout, autodb_idle_timeout, dns_max_ttl, dns_nxdomain_ttl;
    usec_t dns_zone_check_period;
    char *resolv_conf;
    /* dangerous timeouts */
    usec_t query_timeout, query_wait_timeout, cancel_wait_timeout, client_idle_timeout;
    usec_t idle_transaction_timeout, transaction_timeout, suspend_timeout, pool_idle_timeout;
    usec_t query_wait_notify;
    /* low level network */
    int pkt_buf, max_packet_size, sbuf_loopcnt, tcp_defer_accept;
    int tcp_socket_buffer, tcp_keepalive, tcp_keepcnt, tcp_keepidle, tcp_keepintvl;
    usec_t tcp_user_timeout;
    char *login_notify_message;
    /* TLS */
    char *client_tls_sslmode, *client_tls_key_file, *client_tls_cert_file, *client_tls_ca_file;
    char *client_tls_protocols, *client_tls_ciphers, *client_tls13_ciphers;
    char *client_tls_ecdhcurve, *client_tls_dheparams;
    char *server_tls_sslmode, *server_tls_ca_file, *server_tls_key_file, *server_tls_cert_file;
    char *server_tls_protocols, *server_tls_ciphers, *server_tls13_ciphers;
};

/* A loaded snapshot. Everything it points to is owned by it. */
struct config {
    char *path; /* the main ini file */
    struct cf_global g;
    struct cf_database *dbs;
    int ndbs;
    struct cf_user *users;
    int nusers;
    struct cf_peer *peers;
    int npeers;
    struct cf_authuser *authusers; /* from auth_file, sorted by name */
    int nauthusers;
    struct hba *hba; /* auth_type = hba: auth_hba_file + auth_ident_file (hba.h), else NULL */
    /* Names of settings given in the ini that pgusher accepts but does not implement yet
     * (one warning each is logged by the caller at startup/reload). */
    char **unimplemented;
    int nunimplemented;
    int refcount; /* connections hold references to a snapshot via its databases */
    char **files; /* names of the files read (cf_database.file etc. point here) */
    int nfiles;
};

/*
 * Load the ini at path (and its %include files, and the auth_file it names).
 * On success returns a new snapshot. On failure returns NULL and writes a message
 * "FILE:LINE: what is wrong" into err (errlen bytes).
 */
struct config *config_load(const char *path, char *err, size_t errlen);

/* Free a snapshot (all its strings and arrays). NULL is fine. */
void config_free(struct config *cf);

/* List settings ("a, b c": items split at commas and white space). config_list_next: the
 * next item at *cursor (its length in *len), NULL at the end; *cursor moves past it.
 * config_list_has: is name an item of list (NULL = empty), case-insensitively if nocase. */
const char *config_list_next(const char **cursor, size_t *len);
bool config_list_has(const char *list, const char *name, bool nocase);

/* Look up entries. Return NULL when absent (config_find_database does NOT fall back to "*"). */
const struct cf_database *config_find_database(const struct config *cf, const char *name);
const struct cf_user *config_find_user(const struct config *cf, const char *name);
const struct cf_authuser *config_find_authuser(const struct config *cf, const char *name);

/* Parse a database connection string ("host=a port=5432 dbname=x ...") into out.
 * Used by config_load and by the auto-database ("*") path. Returns false with err filled. */
bool config_parse_database(const char *name, const char *connstr, struct cf_database *out,
                           char *err, size_t errlen);
void config_free_database(struct cf_database *db);

/* Names for enum values, as PgBouncer prints them ("session", "md5", "round-robin"...). */
const char *config_pool_mode_name(int mode);
const char *config_auth_type_name(int type);
const char *config_lb_policy_name(int policy);
const char *config_tsa_name(int tsa);

/*
 * The settings table (PgBouncer's CfKey): one row per [pgbouncer] key, in PgBouncer's
 * SHOW CONFIG order. Parsing, SHOW CONFIG, SET and reload all come from it.
 */
enum cf_type { CF_INT, CF_BOOL, CF_TIME, CF_STRING, CF_ENUM_POOL_MODE, CF_ENUM_AUTH_TYPE };
struct cf_setting {
    const char *name;
    enum cf_type type;
    size_t offset;           /* into struct cf_global */
    const char *default_str; /* as SHOW CONFIG prints it */
    bool reloadable;         /* PgBouncer's "changeable" column */
    bool implemented;        /* false: accepted, a warning is logged when set */
    usec_t unit_usec;        /* CF_TIME: microseconds per unit written; 0 = seconds */
    bool secret;             /* a password (or holds one): never shown, wiped when freed */
};
extern const struct cf_setting config_settings[];
extern const size_t config_nsettings;

/* The row for a [pgbouncer] key (case-insensitive; "service_name" finds job_name), or NULL. */
const struct cf_setting *config_find_setting(const char *name);

/* Parse value (as the ini would give it) into that setting of cf->g, e.g. for a snapshot
 * being built for the admin console's SET. Returns false with a message in err. */
bool config_setting_set(struct config *cf, const struct cf_setting *s, const char *value, char *err,
                        size_t errlen);

/* Render a setting's current value (into buf), the real one: for comparing snapshots. */
const char *config_setting_value(const struct config *cf, const struct cf_setting *s, char *buf,
                                 size_t buflen);

/* What SHOW CONFIG, SET's reply and the log print: the value, except that a secret setting
 * prints CONFIG_SECRET_MASK when set and "" when not. */
#define CONFIG_SECRET_MASK "********"
const char *config_setting_shown(const struct config *cf, const struct cf_setting *s, char *buf,
                                 size_t buflen);

#endif
