/*
 * auth_query.h: looking up, with auth_query through a server of the auth_user's pool, the
 * secret of a user who is not in auth_file. The lookup runs on the loop; its client waits
 * (still CL_LOGIN) and everybody else is served meanwhile.
 */
#ifndef PGUSHER_AUTH_QUERY_H
#define PGUSHER_AUTH_QUERY_H

#include "pgusher/objects-t.h"

#include <stdbool.h>

/* The auth_user for clients of database definition dcf (its own, else the global one), or
 * NULL when users not in auth_file are not looked up. */
const char *auth_query_user(const struct cf_database *dcf);

/* Queue a lookup of c->user_name for c, whose database (c->db) is attached: the query runs
 * in the auth_dbname database (or c's) as auth_user once that pool has an idle server.
 * client_auth_lookup_done() gets the answer. False: c was closed with the error (an
 * auth_dbname that is not configured, a pool whose logins keep failing). */
bool auth_query_start(struct client *c, const char *auth_user);

/* c goes away: forget its lookup, queued or running (the server finishes it and is kept). */
void auth_query_forget(struct client *c);

/* pool.c: an idle server of p for the oldest waiting lookup: the query goes out on it. */
void auth_query_run(struct server *s);

/* server.c: input of a server running IQ_AUTH. */
void auth_query_process(struct server *s);

/* server.c: s closes while running IQ_AUTH: its client (if any) is refused. */
void auth_query_server_gone(struct server *s);

/* pool.c: the pool's server login was refused (sqlstate, msg): its waiting lookups fail. */
void auth_query_login_failed(struct pool *p, const char *sqlstate, const char *msg);

#endif
