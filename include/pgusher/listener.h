/*
 * listener.h: the listening sockets (TCP per listen_addr, and the Unix socket).
 * Accepts connections and hands them to client.c; never reads from them.
 */
#ifndef PGUSHER_LISTENER_H
#define PGUSHER_LISTENER_H

#include <stdbool.h>

/* Open every listening socket of the config in force. False (logged) if none could open. */
bool listener_start(void);
/* Stop accepting and remove the Unix socket file. */
void listener_stop(void);

#endif
