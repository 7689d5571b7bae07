/*
 * cancel.h: CancelRequest forwarding. A cancel reaches only the query it was meant for: it is
 * sent only while its client is linked to the server, and a server with a cancel on its way
 * goes to no other client (SV_BEING_CANCELED) until the cancel is done or cancel_wait_timeout
 * gives up on it.
 */
#ifndef PGUSHER_CANCEL_H
#define PGUSHER_CANCEL_H

#include "pgusher/objects-t.h"

/* Forward a CancelRequest for this server's current query over a new connection; the
 * requester (the client connection that sent it, in CL_CANCEL; may be NULL) is closed when it
 * is done. False when no connection could be made. */
bool cancel_send(struct server *s, struct client *requester);
/* The requester of a cancel closed first. */
void cancel_requester_gone(struct client *c);
/* A closing server waits for no cancel (they go on; nothing is released at their end). */
void cancel_forget_server(struct server *s);
/* Cancel requests older than cancel_wait_timeout give up (their servers are released). */
void cancel_janitor(uint64_t now);

#endif
