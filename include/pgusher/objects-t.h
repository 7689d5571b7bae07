/*
 * objects-t.h: the runtime objects (database, pool, client, server) and their states.
 * Types only, so client.c, server.c, pool.c and admin.c can share them without tangling.
 * Every client and server is in exactly one state, and each state is one list.
 */
#ifndef PGUSHER_OBJECTS_T_H
#define PGUSHER_OBJECTS_T_H

#include "pgusher/backend.h"
#include "pgusher/config.h"
#include "pgusher/list.h"
#include "pgusher/pktbuf.h"
#include "pgusher/scram.h"
#include "pgusher/stream.h"

#include <stdbool.h>
#include <stdint.h>

struct proto_login;

/* Parameters PostgreSQL reports that the pooler keeps equal between client and server. */
enum var_id {
    VAR_CLIENT_ENCODING,
    VAR_DATESTYLE,
    VAR_TIMEZONE,
    VAR_STANDARD_CONFORMING_STRINGS,
    VAR_APPLICATION_NAME,
    VAR_INTERVALSTYLE,
    /* Slots for track_extra_parameters beyond these, named once at start-up
     * (varcache_track_extra); an unnamed slot is never set. */
    VAR_EXTRA0,
    VAR_COUNT = VAR_EXTRA0 + 8
};

struct canceller; /* server.c: one cancel request on its way to a server */
struct ps_client; /* prepared.c: a client's statement names */
struct ps_server; /* prepared.c: a server's prepared statements and owed responses */

struct varcache {
    const char *val[VAR_COUNT]; /* NULL = unknown; interned (varcache.c), shared */
};

/* client.log_hide: what client_log prints as "(nodb)" / "(nouser)", as PgBouncer does for a
 * client whose user is unknown or still being looked up. */
#define CLIENT_LOG_NODB 1u
#define CLIENT_LOG_NOUSER 2u

/* client.auth_type values beyond auth_type_t, from auth_hba_file: rejected, no rule matched,
 * the peer method, an ldap rule (refused: not built in). */
#define CLIENT_AUTH_REJECT 100
#define CLIENT_AUTH_NONE 101
#define CLIENT_AUTH_PEER 102
#define CLIENT_AUTH_LDAP 103

/* A replication connection (startup parameter replication): true/on/yes/1 physical,
 * database logical. It gets a server of its own, opened for it with the same parameter,
 * linked for its whole life and closed after it (never idle, never another client's). */
enum replication_kind {
    REPL_NONE,
    REPL_PHYSICAL,
    REPL_LOGICAL,
};

enum client_state {
    CL_NEW,           /* just allocated, in no list: client_set_state puts it in its first */
    CL_LOGIN,         /* G.login_clients (accept order): startup packet and authentication */
    CL_WAITING_LOGIN, /* pool->cl_waiting: authenticated, waiting for the pool's first server */
    CL_WAITING,       /* pool->cl_waiting: wants a server */
    CL_ACTIVE,        /* pool->cl_active: logged in; linked to a server or idle */
    CL_CANCEL,        /* pool->cl_active_cancel_req: a cancel request being forwarded; closed
                       * when the cancel connection to the server is done */
    CL_CLOSING,       /* no list, or client.c's draining list while its last output goes out
                       * (bounded: drained, error or deadline); freed in its close callback */
};

enum server_state {
    SV_NEW,            /* just allocated, in no list: server_set_state puts it in its first */
    SV_LOGIN,          /* pool->sv_login: connecting and logging in */
    SV_IDLE,           /* pool->sv_idle: ready, no client */
    SV_ACTIVE,         /* pool->sv_active: linked to a client, or running an auth_query (IQ_AUTH,
                        * no link) for one logging in, as PgBouncer counts it */
    SV_USED,           /* pool->sv_used: released, must be checked before reuse */
    SV_TESTED,         /* pool->sv_tested: running the reset or check query */
    SV_BEING_CANCELED, /* pool->sv_being_canceled: released by its client, a cancel request
                        * for it still on its way: nobody else may have it yet */
    SV_CLOSING,        /* G.closing_servers: handle closing */
};

/* A query the pooler runs on a server for itself; its results never reach a client. */
enum internal_query {
    IQ_NONE,
    IQ_CONNECT, /* the database's connect_query, after login */
    IQ_SETVARS, /* SET client parameters before a client's work */
    IQ_RESET,   /* server_reset_query after release */
    IQ_CHECK,   /* server_check_query before reuse */
    IQ_AUTH,    /* auth_query for a client logging in (auth_query.c reads its results) */
};

/* Upper bounds of the pool wait-time histogram buckets: pool.c's pool_wait_bounds_usec. */
#define POOL_WAIT_BUCKETS 12

struct pool_stats {
    uint64_t xact_count, query_count, server_assignment_count;
    uint64_t bytes_received, bytes_sent;
    uint64_t xact_time, query_time, wait_time; /* usec */
    uint64_t client_parse_count, server_parse_count, bind_count, client_login_count;
};

/* stats_period averages: counts per second, times in usec per transaction/query/assignment. */
struct stats_avg {
    uint64_t server_assignment_count, xact_count, query_count, bytes_received, bytes_sent;
    uint64_t xact_time, query_time, wait_time;
    uint64_t client_parse_count, server_parse_count, bind_count, client_login_count;
};

struct dns_name;

struct database {
    struct list node; /* G.databases */
    char *name;
    struct cf_database *cf; /* owned copy of its definition */
    char *connstr;          /* the definition it was parsed from, to spot changes on reload */
    /* One per address of its hosts (a host name gives one per address dns.c has for it, or
     * a stand-in while it has none), shared with other databases; rebuilt when an answer
     * changes (database_dns_changed). */
    struct backend **backends;
    int nbackends;
    struct dns_name **dns; /* per host of cf: its cache entry when it is a name, else NULL */
    bool *dns_had;         /* per host of cf: its name has had addresses */
    int ndns;
    bool autodb;       /* made from the "*" entry */
    struct list pools; /* struct pool.node */
    int server_count;  /* servers of all pools of this database */
    int client_count;
    unsigned rr_next; /* round-robin cursor over hosts */
    uint64_t last_used;
    bool admin;    /* the "pgbouncer" console pseudo-database */
    bool paused;   /* PAUSE db / KILL db: no new server assignments */
    bool disabled; /* DISABLE db: no new client logins */
    bool removed;  /* gone from the config on reload: refuses new clients */
    /* Client and server structs pointing at this database, until their close callbacks
     * ran: it can be freed (an idle auto-database, a removed one) only at zero. */
    int cl_refs, sv_refs;
    uint64_t idle_since; /* janitor: since when no client refers to it; 0 = in use */
    bool reaping;        /* closing its servers to be freed: min_pool_size does not apply */
    /* Another database names it in read_your_writes (worked out for settings ryw_gen). */
    bool ryw_source;
    uint64_t ryw_gen;
    /* stats_period averages (per second), computed by the janitor */
    struct stats_avg avg;
    struct pool_stats prev; /* totals at the start of the current stats period */
};

struct pool {
    struct list node; /* db->pools */
    /* In G.busy_pools from its first client or server until the janitor finds it with none
     * (pool_note_busy): the janitor walks these, not every pool. */
    struct list busy_node;
    bool busy;
    struct database *db;
    char *user; /* server login user */
    struct list cl_active, cl_waiting;
    struct list sv_active, sv_idle, sv_used, sv_tested, sv_login, sv_being_canceled;
    struct list cl_active_cancel_req;
    int n_cl_active, n_cl_waiting, n_cl_active_cancel_req;
    int n_sv_active_cancel; /* cancel connections to the servers of this pool, in flight */
    int n_cl_waiting_login; /* of n_cl_waiting, those in CL_WAITING_LOGIN */
    /* Of n_cl_waiting, replication clients (waiting for a server of their own); of
     * n_sv_login, the servers being opened for them. */
    int n_repl_waiting, n_repl_login;
    /* pool_mode/size/reserve and the client timeouts resolved (user, database, global)
     * for settings G.cf_gen. */
    uint64_t lim_gen;
    int lim_mode, lim_size, lim_reserve;
    usec_t lim_query_timeout, lim_query_wait_timeout, lim_idle_xact_timeout, lim_xact_timeout;
    usec_t lim_client_idle_timeout;
    int n_sv_active, n_sv_idle, n_sv_used, n_sv_tested, n_sv_login, n_sv_being_canceled;
    struct pktbuf welcome; /* the ParameterStatus messages of the first login */
    struct varcache welcome_vars;
    bool welcome_ok;
    uint64_t last_login_failure; /* usec, 0 = none */
    uint64_t last_dns_fail_log;  /* usec: "server DNS lookup failed" said for this pool */
    unsigned rr_idle;            /* round-robin cursor when choosing idle servers */
    int launch_hint;             /* backend index the next new server should go to, or -1 */
    char last_login_error[256];
    char last_login_sqlstate[6];
    bool last_login_auth; /* the last failure was the server refusing our credentials */
    /* SCRAM keys learned from a client's proof, to log in to the server as that user. */
    uint8_t scram_client_key[SCRAM_KEY_LEN], scram_server_key[SCRAM_KEY_LEN];
    bool have_scram_keys;
    /* auth_query.c: clients whose user is being looked up through this pool's servers,
     * oldest first (struct client.aq_node), waiting for an idle server. */
    struct list aq_waiting;
    int n_aq_waiting;
    /* The secret auth_query last found for this pool's user (no auth_file entry), for
     * server logins as that user; wiped when replaced or freed. */
    char *aq_secret;
    struct pool_stats stats;
    /* How long each server assignment waited (0 when a server was free at once), counted
     * per bucket of pool_wait_bounds_usec (the last: beyond them all); not cumulative. */
    uint64_t wait_hist[POOL_WAIT_BUCKETS + 1];
    uint64_t wait_hist_sum; /* usec */
};

struct client {
    struct stream st;
    struct list node;     /* the list of its state */
    struct client *hnext; /* cancel-key hash chain */
    enum client_state state;
    uint64_t id;
    struct pool *pool;
    struct database *db;
    struct server *link;
    const char *user_name; /* as the client sent it (interned: str_intern) */
    const char *db_name;
    struct varcache vars; /* what the client wants */
    uint32_t cancel_pid, cancel_key;
    char addr[48]; /* INET6_ADDRSTRLEN, or "unix" */
    int port;
    int unix_pid; /* Unix socket: the peer's pid (SO_PEERCRED), 0 if unknown; for logs */
    /* authentication */
    const char *secret; /* = secret_copy, or NULL */
    uint8_t md5_salt[4];
    int auth_step; /* 0 = no password asked yet; else the PROTO_AUTH_* request sent */
    struct scram_server *scram;
    bool startup_done;
    /* SSLRequest / GSSENCRequest answered: PostgreSQL takes at most one of each. */
    bool ssl_answered, gss_answered;
    bool peer_cancel; /* its CancelRequest is being forwarded to a peer process */
    /* replication: its kind, and the server opened for it (in SV_LOGIN while the client is
     * CL_WAITING, then its link); NULL before the launch and after the server went. */
    enum replication_kind replication;
    struct server *repl_server;
    /* relay */
    uint32_t pkt_remain;  /* body bytes of the current message still to pass through */
    struct ps_client *ps; /* named prepared statements (prepared.c), or NULL */
    bool in_hash;
    bool close_after_flush; /* CL_CLOSING, on client.c's draining list until freed */
    bool wait_notified;     /* the query_wait_notify notice went out for this wait */
    char *reject_msg;       /* set when the client must be refused once its startup is read */
    char *secret_copy;      /* the auth file secret, copied so a reload cannot free it */
    /* admin console */
    bool admin_readonly; /* a stats_users member: SHOW only */
    int admin_wait;      /* admin_wait_t: a command that completes later */
    char *admin_wait_db; /* the database it waits for, or NULL for all */
    char reject_state[6];
    /* auth_query lookup (auth_query.c): queued on aq_pool->aq_waiting, then running on
     * aq_server; aq_wait is true for both, and login input waits meanwhile. */
    bool aq_wait;
    bool aq_found; /* auth_query found the user; its secret is secret_copy */
    struct list aq_node;
    struct pool *aq_pool; /* holds a cl_refs reference on aq_pool->db while set */
    struct server *aq_server;
    int auth_type;    /* auth_type_t for this login, or a CLIENT_AUTH_* verdict */
    char *auth_map;   /* the hba rule's map= (peer), or NULL */
    bool scram_md5;   /* SCRAM asked of a user whose secret is md5: cannot succeed */
    uint8_t log_hide; /* CLIENT_LOG_NODB / CLIENT_LOG_NOUSER: as PgBouncer prints it */
    /* times, usec on the monotonic clock */
    uint64_t connect_time, request_time, wait_start, xact_start, query_start;
    uint64_t close_start; /* close_after_flush: when the close began (its deadline counts) */
    time_t connect_wall;
};

struct server {
    struct stream st;
    struct list node;
    enum server_state state;
    uint64_t id;
    struct pool *pool;
    struct client *link;
    struct varcache vars; /* what the server reports */
    uint32_t be_pid, be_key;
    struct backend *be; /* the physical server it is connected to */
    int host_slot;      /* be's index in pool->db->backends when last looked (server_host_slot) */
    bool role_mismatch; /* logged in to a server whose role the database does not want */
    /* A replication server: its kind, and the client it was opened for (NULL once that
     * client went away); such a server is never idle and is closed when released. */
    enum replication_kind replication;
    struct client *repl_client;
    char host[256];
    int port;
    enum internal_query iq;
    int expect_rfq; /* ReadyForQuery messages still owed for forwarded work */
    /* The client forwarded extended-protocol messages (Parse, Bind, Execute, Describe,
     * Close) that no Sync, Query or FunctionCall has closed yet: the server holds the
     * client's unsynced work and must stay with it, whatever ReadyForQuery says. */
    bool open_batch;
    struct canceller *cancels; /* cancel requests for this server still on their way */
    char tx_status;            /* from the last ReadyForQuery: 'I', 'T' or 'E' */
    uint32_t pkt_remain;
    struct ps_server *ps; /* prepared statements on it, responses owed (prepared.c), or NULL */
    bool login_done;
    bool ready; /* logged in (welcome received) */
    bool close_needed;
    bool dirty; /* used by a client since its last reset */
    bool iq_failed;
    /* why a login failed, for the pool (set before server_close of a SV_LOGIN server);
     * fail_msg (borrowed, only during that server_close) is what waiting clients are told:
     * the server's own message, as PgBouncer forwards it */
    char fail_sqlstate[6];
    bool fail_auth;
    const char *fail_msg;
    /* The server TLS context (tls_connect_ctx) this connection was made under, referenced
     * (NULL: server_tls_sslmode=disable), also when the server answered 'N'; tls_gen is
     * tls_connect_gen() of that moment (server_tls_obsolete compares it). */
    struct tls_ctx *tls_ctx;
    uint64_t tls_gen;
    bool tls_wait;             /* SSLRequest sent, its one-byte answer not read yet */
    struct proto_login *login; /* the login exchange (proto.c), while SV_LOGIN */
    /* IQ_AUTH: the client whose user it looks up (NULL once that client went away), the
     * columns its RowDescription announced (-1: none yet), whether an ErrorResponse came. */
    struct client *aq_client;
    int aq_cols;
    bool aq_error;
    struct pktbuf login_params;   /* ParameterStatus messages seen during login */
    struct sockaddr_storage addr; /* resolved address (TCP), reused for cancel requests */
    char unix_path[300];          /* Unix socket path when host is a directory */
    uint64_t connect_time, request_time, last_used;
    time_t connect_wall;
};

#endif
