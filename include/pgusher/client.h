/*
 * client.h: application connections: startup, authentication, and the client half of the
 * relay. Owns the client protocol; never decides pool placement (pool.c does).
 */
#ifndef PGUSHER_CLIENT_H
#define PGUSHER_CLIENT_H

#include "pgusher/objects-t.h"

#include <sys/socket.h>
#include <uv.h>

/* A new connection from a listener: fd is non-blocking, addr its peer (AF_UNIX for the Unix
 * socket). Takes ownership of fd. */
void client_accept(int fd, bool is_unix, const struct sockaddr *addr);
/* Close with a reason (logged as PgBouncer does: "closing because: <reason>"). */
void client_close(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Called by the janitor: free closed clients whose last output was not taken in time. */
void client_janitor(void);
/* Send an ErrorResponse, then close. */
void client_error_close(struct client *c, const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Send bytes; on failure the client is closed and false returned. */
bool client_send(struct client *c, const void *data, size_t len);
/* The pool has its welcome parameters: finish the client's login. */
void client_finish_login(struct client *c);
/* The same with another welcome: a replication client's, from its own server's login. */
void client_finish_login_from(struct client *c, const struct pktbuf *welcome,
                              const struct varcache *welcome_vars);
/* auth_query.c: the lookup of c's user is over: c->aq_found, and its secret in
 * c->secret_copy (NULL: the user has no password). Authentication goes on. */
void client_auth_lookup_done(struct client *c);
/* Process buffered input and re-evaluate whether to read (after a state change). */
void client_resume(struct client *c);
void client_update_reading(struct client *c);
struct takeover_row;
/* Online restart (takeover.c): a logged-in client the process this one replaces handed over,
 * fd its socket (taken), placed in p as an idle CL_ACTIVE client with the row's names,
 * address, cancel key and parameters. NULL (fd closed, logged) when it cannot be. */
struct client *client_adopt(int fd, struct pool *p, const struct takeover_row *row);
void client_log(struct client *c, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
