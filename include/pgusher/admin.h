/*
 * admin.h: the "pgbouncer" admin console (also reachable as "pgusher"): SHOW commands with
 * PgBouncer 1.25's exact columns, and the control commands (PAUSE, RESUME, RELOAD, KILL...).
 * The console speaks only the simple query protocol.
 */
#ifndef PGUSHER_ADMIN_H
#define PGUSHER_ADMIN_H

#include "pgusher/objects-t.h"

#include <stdbool.h>
#include <stddef.h>

enum admin_wait {
    ADMIN_WAIT_NONE,
    ADMIN_WAIT_PAUSE,   /* PAUSE: until the paused databases have no servers */
    ADMIN_WAIT_CLOSE,   /* WAIT_CLOSE: until no close_needed servers remain */
    ADMIN_WAIT_SUSPEND, /* SUSPEND: until output buffers are flushed */
};

/* Longest console command looked at (longer ones are cut), longest argument kept. */
#define ADMIN_QUERY_MAX 1024
#define ADMIN_ARG_MAX 256

/*
 * One console command, as admin_parse_command read it. Parsing is pure (no client, no
 * config, no event loop): looking the database or client up, checking the SET key and
 * running the command is admin.c's dispatch.
 */
struct admin_cmd {
    bool empty;                 /* only blanks and ';': answered with EmptyQueryResponse */
    const char *name;           /* the command in lower case ("show", "pause"...); NULL: unknown */
    bool readonly_ok;           /* may a stats_users (read-only) user run it? (only SHOW) */
    const char *show;           /* SHOW: what to show, lower case ("pools"...) */
    char text[ADMIN_QUERY_MAX]; /* the command as typed, trimmed of blanks and ';' */
    char arg[ADMIN_ARG_MAX];    /* its first argument in the case typed; "" = none */
    char key[128];              /* SET key = value */
    char value[ADMIN_QUERY_MAX];
    int shutdown_mode; /* SHUTDOWN: SHUTDOWN_NOW / _WAIT_FOR_SERVERS / _WAIT_FOR_CLIENTS */
    unsigned long long client_id; /* KILL_CLIENT */
    bool client_id_ok;            /* arg is a client id (a decimal number) */
    int index, show_index;        /* rows of admin.c's tables, for its dispatch */
};

/*
 * Parse one simple-query string of the console. Always fills out (out->name tells which
 * command it was, even when the arguments are wrong, so the caller can refuse a read-only
 * user first). Returns false with the error message the client gets (SQLSTATE 08P01) in err.
 * An empty command returns true with out->empty set.
 */
bool admin_parse_command(const char *query, struct admin_cmd *out, char *err, size_t errlen);

/* Is this the console's database name ("pgbouncer" or "pgusher")? */
bool admin_is_console_db(const char *name);
/* Create the console pseudo-database (called once at startup). */
void admin_init(void);
/* After authentication: may this user use the console? Sets c->admin_readonly.
 * On refusal the client has been sent an error and closed. */
bool admin_login_allowed(struct client *c);
/* Is this a Unix-socket client running as our own OS user? */
bool admin_peer_is_self(struct client *c);
/* The pid of a Unix-socket client's process (SO_PEERCRED), 0 for TCP or when unknown. */
int admin_peer_pid(struct client *c);
/* A console client has input: handle every complete message. */
void admin_process(struct client *c);
/* Called by the janitor: complete PAUSE/WAIT_CLOSE/SUSPEND waits, shutdown waits. */
void admin_janitor(void);

/* Finish a console reply in b: CommandComplete(tag) and ReadyForQuery, send it, free b. */
struct pktbuf;
void admin_reply(struct client *c, struct pktbuf *b, const char *tag);

/* Operations shared by the console and signals. */
bool admin_reload(char *err, size_t errlen);
void admin_pause(struct database *db); /* NULL = all */
void admin_resume(struct database *db);
/* Close every client (with reason as the error) and server connection of a database. */
void admin_kill_database(struct database *db, const char *reason);
void admin_shutdown(int mode);
/* Re-apply logfile/syslog/verbose from a config (after RELOAD or SET). */
void admin_apply_log_settings(const struct config *cf);

#endif
