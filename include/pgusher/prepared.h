/*
 * prepared.h: protocol-level named prepared statements in transaction and statement pooling
 * (max_prepared_statements). A pooler-wide table of statements (query text + parameter types,
 * shared and refcounted, each with a pooler-wide name PGUSHER_<n>), per client the map of its
 * own names, per server the LRU of statements prepared on it and the FIFO of responses still
 * owed, so that synthesized and swallowed messages land in the right place.
 *
 * It never touches a socket: the relay (client.c, server.c) hands it message bytes and sends
 * what it produces. It allocates only when a statement, a client name or a server entry is
 * first seen (and when the FIFO must grow), never per relayed message.
 */
#ifndef PGUSHER_PREPARED_H
#define PGUSHER_PREPARED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct client;
struct server;
struct pool;
struct pktbuf;

/* What the relay does with a client message after prepared_client_msg looked at it. */
enum ps_verdict {
    PS_PASS,    /* forward it unchanged (its response is accounted for) */
    PS_REWRITE, /* the first *consumed bytes are replaced by what was put in out; the rest of
                 * the message (if any) is forwarded unchanged */
    PS_MORE,    /* its head is not complete in the bytes given: call again with more */
    PS_COLLECT, /* a message prepared.c must see whole (a named Parse, a Describe/Close, a
                 * Bind whose names do not fit) larger than the receive buffer: collect it */
    PS_FAIL,    /* a protocol violation: close the client with prepared_error() */
};

/* What the relay does with a server message after prepared_server_msg looked at it. */
enum ps_response {
    PS_FORWARD, /* pass it to the client */
    PS_SWALLOW, /* the pooler's own (an injected Parse or Close): drop it */
};

/* Tracking is on for this pool now (max_prepared_statements > 0, not session pooling). */
bool prepared_enabled(const struct pool *p);

/* Client message (type P, B, D or C), whole or its head: msg points at the type byte,
 * avail bytes of it are at hand. May record the client's statement, update the server's LRU,
 * queue expected responses on s, put messages for the server in out (closes of evicted
 * statements, a Parse the server lacks, the rewritten head) and count parse/bind stats. */
enum ps_verdict prepared_client_msg(struct client *c, struct server *s, const uint8_t *msg,
                                    uint32_t avail, struct pktbuf *out, uint32_t *consumed);
/* PS_COLLECT: a buffer for the whole message (total bytes, type byte included) is made;
 * prepared_collect takes bytes until it holds them all and then returns the message (and
 * its length) for prepared_client_msg; NULL while more are needed. prepared_collect_done
 * frees it. False: out of memory. */
bool prepared_collect_start(struct client *c, uint32_t total);
uint32_t prepared_collect_need(const struct client *c);
const uint8_t *prepared_collect(struct client *c, const uint8_t *p, uint32_t n, uint32_t *len);
void prepared_collect_done(struct client *c);
/* Any other client message (E, S, Q, F, H, ...): what response it is owed, if any. False:
 * out of memory (the responses could not be accounted for: close the client). */
bool prepared_client_note(struct server *s, uint8_t type);
/* The message prepared_client_msg failed on, for the client's ErrorResponse. */
const char *prepared_error(void);

/* A server message's header (type) and, for small messages, its body (NULL when the body is
 * not at hand; blen is its length). Pops the FIFO when the message completes a request, and
 * undoes what a failed or skipped request recorded. */
enum ps_response prepared_server_msg(struct server *s, uint8_t type, const uint8_t *body,
                                     uint32_t blen);
/* Messages the pooler answers itself that are now due (the responses before them are out):
 * appended to out (ParseComplete, CloseComplete). False when none. */
bool prepared_take_synth(struct server *s, struct pktbuf *out);
/* True when the FIFO is empty. */
bool prepared_server_quiet(const struct server *s);
/* A CommandComplete tag (DISCARD ALL, DEALLOCATE ALL) that wipes a session's statements. */
bool prepared_wipes_all(const uint8_t *body, uint32_t blen);
/* The server's statements are gone (DISCARD ALL / DEALLOCATE ALL ran on it). */
void prepared_server_forget(struct server *s);
/* The client's DISCARD ALL / DEALLOCATE ALL: its names are gone. */
void prepared_client_forget(struct client *c);
/* The server leaves its client: any expected responses left are dropped. */
void prepared_server_unlinked(struct server *s);

/* SHOW CLIENTS / SHOW SERVERS prepared_statements. */
int prepared_client_count(const struct client *c);
int prepared_server_count(const struct server *s);
/* Statements in the pooler-wide table (for tests and memory accounting). */
int prepared_stmt_count(void);
/* SHOW MEM: the shared statements (count and bytes with their text), the clients' names for
 * them and the servers' entries (each statement a server has prepared), with the fixed size
 * of each kind. */
struct prepared_mem {
    size_t stmts, stmt_bytes, stmt_size;
    size_t names, name_bytes, name_size;
    size_t entries, entry_size;
};
void prepared_mem(struct prepared_mem *out);

/* Freeing a connection frees its prepared-statement state. */
void prepared_client_free(struct client *c);
void prepared_server_free(struct server *s);

#endif
