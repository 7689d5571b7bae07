/*
 * listener.h: the listening sockets (TCP per listen_addr, and the Unix socket).
 * Accepts connections and hands them to client.c; never reads from them.
 */
#ifndef PGUSHER_LISTENER_H
#define PGUSHER_LISTENER_H

#include "pgusher/config.h"

#include <stdbool.h>

/* Raise the soft RLIMIT_NOFILE (up to the hard one) to what max_client_conn and the pools
 * may need, log what it is (PgBouncer's line) and warn when it is still too low; keep a
 * spare descriptor for refusing connections when none is left. Start-up and RELOAD. */
void listener_size_fd_limit(const struct config *cf);
/* Open every listening socket of the config in force. False (logged) if none could open. */
bool listener_start(void);
/* Online restart: listen on a socket the old process handed over (logged). */
bool listener_adopt(int fd);
/* The descriptors of the open listeners (up to max); how many. */
int listener_fds(int *fds, int max);
/* Apply the TCP settings in force to the listeners, from which Linux copies them to each
 * accepted connection (after a reload). */
void listener_retune(void);
/* SUSPEND (true) / RESUME: stop accepting, the sockets stay open (new connections wait in
 * their queues, as with PgBouncer 1.25), or accept again. */
void listener_pause(bool paused);
/* Stop accepting and remove the Unix socket file. */
void listener_stop(void);
/* Stop accepting on TCP only: a shutdown that waits keeps the Unix socket, so the console
 * stays reachable there, as in PgBouncer 1.25. */
void listener_stop_tcp(void);

#endif
