/*
 * pool.h: pools (database x user), the state lists of their clients and servers, and the
 * decisions that move connections between them (who gets which server, when to open or
 * close one). The only place where client/server state changes. Databases: database.h.
 */
#ifndef PGUSHER_POOL_H
#define PGUSHER_POOL_H

#include "pgusher/database.h"
#include "pgusher/objects-t.h"

/* The pool wait-time histogram's bucket bounds (usec, ascending; struct pool.wait_hist). */
extern const uint64_t pool_wait_bounds_usec[POOL_WAIT_BUCKETS];

/* Mark every server of db (NULL = all) close_needed; idle ones close now. */
void pool_reconnect(struct database *db);
/* Effective balancing settings of a database, and its eligible backends right now
 * (indexes into db->backends; 0 with a reason in why when none). */
int database_tsa(const struct database *db);
/* May a server of this role serve the database: target_session_attrs, or a primary for a
 * read_your_writes database (it serves clients whose writes no standby has yet). */
bool database_role_acceptable(const struct database *db, enum be_role role);
/* A client's transaction ended (ReadyForQuery 'I', nothing left in flight): remembered
 * for read_your_writes when another database reads after this one. */
void pool_transaction_ended(const struct client *c);
int database_lb_policy(const struct database *db);
usec_t database_max_lag(const struct database *db);
int database_eligible(const struct database *db, int *out, char *why, size_t whylen);
/* Is the database paused (PAUSE, KILL, or the whole pooler paused)? */
bool database_paused(const struct database *db);
int database_pool_mode(const struct database *db, const char *user);

struct pool *pool_get(struct database *db, const char *user);
/* Free a pool taken off its database (database.c, when the database goes). */
void pool_free(struct pool *p);
/* p has (or is about to have) a client, a server or an auth_query lookup: the janitor
 * looks at it until it has none. O(1); every state change of its clients and servers
 * calls it. */
void pool_note_busy(struct pool *p);
int pool_pool_size(const struct pool *p);
/* The pool's last server login error while server_login_retry holds its logins back after
 * it (PgBouncer's "cached error"), else NULL. */
const char *pool_login_failing(const struct pool *p);
/* Logged-in clients of this (server login) user over all databases. */
int pool_user_client_count(const char *user);
int pool_mode(const struct pool *p);
/* Servers of the pool in any state, and every server-state list (for code that visits all
 * of its servers). */
int pool_server_total(const struct pool *p);
#define POOL_SV_NLISTS 6
void pool_server_lists(struct pool *p, struct list *out[POOL_SV_NLISTS]);

/* State changes: the one function per actor that moves it between lists. */
void client_set_state(struct client *c, enum client_state st);
void server_set_state(struct server *s, enum server_state st);

/* A logged-in client needs a server now (it has a message to send). */
/* Returns true when a server was linked at once; false when the client now waits. */
bool pool_client_wants_server(struct client *c);
/* Link a ready server to a client and start the client's work. */
void pool_link(struct client *c, struct server *s);
/* Has the client nothing in flight on the server (c may be NULL: the server's side only)?
 * Every message it forwarded is closed by a Sync/Query/FunctionCall whose ReadyForQuery came
 * back, none is half forwarded, the transaction is over. Only then may another client have
 * the server. */
bool pool_server_done(const struct server *s, const struct client *c);
/* Unlink a client from its server and release the server (end of transaction, or the client
 * left): a server that is not done is closed, never handed to anyone else. */
void pool_unlink(struct client *c);
/* The server's client is gone (already unlinked): idle, reset, wait for a cancel, or close. */
void pool_release_server(struct server *s);
/* A server finished logging in or finished an internal query and is free. */
void pool_server_idle(struct server *s);
/* Replication: the client c waited for its own server and goes away: that server closes. */
void pool_repl_forget(struct client *c);
/* The server opened for a replication client logged in: it gives the client its welcome and
 * is linked to it for good (or closes if the client went meanwhile). */
void pool_repl_server_ready(struct server *s);
/* A login attempt failed; clients waiting for this pool's first login get the error. */
void pool_login_failed(struct pool *p, const char *sqlstate, const char *msg, bool fatal_auth);
/* Hand idle servers to waiting clients, open servers where allowed. */
void pool_service(struct pool *p);
/* SUSPEND: how many connections (but the console's) still hold input not passed on or
 * output not sent; with force (suspend_timeout is over) those are closed with reason
 * "suspend_timeout", as PgBouncer 1.25 does, and 0 is returned. */
int pool_suspend_check(bool force);
/* G.suspended changed: every connection but the console's stops reading (SUSPEND), or
 * takes what it holds and reads again (RESUME). */
void pool_suspend_reading(void);
/* Periodic upkeep: timeouts, idle server closing, min_pool_size. */
void pool_janitor(void);

#endif
