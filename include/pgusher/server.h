/*
 * server.h: connections to PostgreSQL: connect, login (trust/cleartext/md5/SCRAM), the
 * server half of the relay, and internal queries. Never picks which client it serves.
 */
#ifndef PGUSHER_SERVER_H
#define PGUSHER_SERVER_H

#include "pgusher/objects-t.h"

/* Open a new server connection for the pool (state SV_LOGIN). */
struct server *server_launch(struct pool *p);
/* The same for a replication client (non-NULL): the server is that client's alone (its
 * repl_server), logs in with its replication kind and parameters, and is handed to it
 * (pool_repl_server_ready) instead of going idle. */
struct server *server_launch_for(struct pool *p, struct client *repl);
void server_close(struct server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Run an internal query; the server's results are swallowed; pool_server_idle or the
 * link's resume follows when it completes. */
bool server_run_internal(struct server *s, enum internal_query iq, const char *sql);
/* The index of s's backend in its database's host list, -1 when it is no longer listed:
 * O(1) (the index it was opened at, checked, since a RELOAD may change the list). */
int server_host_slot(struct server *s);
void server_update_reading(struct server *s);
void server_resume(struct server *s);
/* Send the client the answers the pooler owes it now (prepared.c), when nothing the server
 * sent is half forwarded. */
void server_send_synth(struct server *s);
/* The server was made under other server TLS settings than those in force (its tls_gen is
 * not tls_connect_gen()): close it on release rather than reuse it. */
bool server_tls_obsolete(const struct server *s);
struct takeover_row;
/* Online restart (takeover.c): a logged-in server connection the process this one replaces
 * handed over, fd its socket (taken), to be, in p, an idle server on be with the row's
 * cancel key and parameters. NULL (fd closed, logged) when it cannot be. */
struct server *server_adopt(int fd, struct pool *p, struct backend *be,
                            const struct takeover_row *row);
void server_log(struct server *s, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
