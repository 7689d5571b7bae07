/*
 * listener.h: the listening sockets (TCP per listen_addr, and the Unix socket).
 * Accepts connections and hands them to client.c; never reads from them.
 */
#ifndef PGUSHER_LISTENER_H
#define PGUSHER_LISTENER_H

#include <stdbool.h>

/* Open every listening socket of the config in force. False (logged) if none could open. */
bool listener_start(void);
/* Apply the TCP settings in force to the listeners, from which Linux copies them to each
 * accepted connection (after a reload). */
void listener_retune(void);
/* Stop accepting and remove the Unix socket file. */
void listener_stop(void);

#endif
