/*
 * admin.h: the "pgbouncer" admin console (also reachable as "pgusher"): SHOW commands with
 * PgBouncer 1.25's exact columns, and the control commands (PAUSE, RESUME, RELOAD, KILL...).
 * The console speaks only the simple query protocol.
 */
#ifndef PGUSHER_ADMIN_H
#define PGUSHER_ADMIN_H

#include "pgusher/objects-t.h"

#include <stdbool.h>

enum admin_wait {
    ADMIN_WAIT_NONE,
    ADMIN_WAIT_PAUSE,      /* PAUSE: until the paused databases have no servers */
    ADMIN_WAIT_CLOSE,      /* WAIT_CLOSE: until no close_needed servers remain */
    ADMIN_WAIT_SUSPEND,    /* SUSPEND: until output buffers are flushed */
};

/* Is this the console's database name ("pgbouncer" or "pgusher")? */
bool admin_is_console_db(const char *name);
/* Create the console pseudo-database (called once at startup). */
void admin_init(void);
/* After authentication: may this user use the console? Sets c->admin_readonly.
 * On refusal the client has been sent an error and closed. */
bool admin_login_allowed(struct client *c);
/* Is this a Unix-socket client running as our own OS user? */
bool admin_peer_is_self(struct client *c);
/* A console client has input: handle every complete message. */
void admin_process(struct client *c);
/* Called by the janitor: complete PAUSE/WAIT_CLOSE/SUSPEND waits, shutdown waits. */
void admin_janitor(void);

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
