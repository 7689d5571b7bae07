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

/* The peer id in a key (pid: its first 4 bytes, key: the last 4, as on the wire): bytes 1-2
 * little-endian, 14 bits; the low 2 bits of the last byte set (hops left: 3). */
void cancel_key_encode(uint32_t *pid, uint32_t *key, int peer_id);
int cancel_key_decode(uint32_t pid);
/* A new cancel key for a client (rnd: the key source); with peer_id set it carries the
 * peer id and a forwarding budget, as PgBouncer 1.21+ keys do. */
void cancel_new_key(uint32_t *pid, uint32_t *key, uint32_t (*rnd)(void));
/* The peer id a key names (0 when peering is off: every key is local). */
int cancel_key_peer(uint32_t pid);
/* The key as stored for a local client (the forwarding budget bits set again). */
uint32_t cancel_key_local(uint32_t key);
/* Forward a CancelRequest to peer peer_id ([peers]), one hop less; the requester (kept open,
 * not read) is closed when it is done or given up. False: unknown peer or no hop left (the
 * caller closes the requester). */
bool cancel_to_peer(struct client *requester, int peer_id, uint32_t pid, uint32_t key);
/* Have the [peers] in force watch their host names (dns.c) and drop the watches of peers
 * that left or changed; at start-up after dns_init and after every RELOAD. */
void cancel_peers_apply(void);
/* SHOW PEER_POOLS figures of one peer. */
void cancel_peer_counts(int peer_id, int *cl_active, int *cl_waiting, int *sv_active,
                        int *sv_login);

#endif
