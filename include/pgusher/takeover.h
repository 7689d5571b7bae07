/*
 * takeover.h: online restart (-R), both sides. The running process answers SHOW FDS with
 * one row per socket and, to its own OS user on the Unix socket while suspended, passes each
 * socket along (SCM_RIGHTS); the new process reads those rows, adopts the sockets and tells
 * the old one to exit. Never touches a socket it did not get from the old process.
 */
#ifndef PGUSHER_TAKEOVER_H
#define PGUSHER_TAKEOVER_H

#include "pgusher/config.h"
#include "pgusher/objects-t.h"
#include "pgusher/pktbuf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum takeover_task { TAKEOVER_POOLER, TAKEOVER_CLIENT, TAKEOVER_SERVER };

#define TAKEOVER_NCOLS 15
#define TAKEOVER_NAME_MAX 256
#define TAKEOVER_VAR_MAX 128
#define TAKEOVER_PASSWORD_MAX 1024

/* One row of SHOW FDS (PgBouncer 1.25's columns, in its order), as takeover_parse_row read
 * it: strings NUL-terminated copies ("" and has_* false for NULL). */
struct takeover_row {
    int fd; /* in the old process */
    enum takeover_task task;
    char user[TAKEOVER_NAME_MAX], database[TAKEOVER_NAME_MAX], addr[TAKEOVER_NAME_MAX];
    int port;
    bool has_cancel;
    uint32_t cancel_pid, cancel_key; /* the BackendKeyData pair behind the cancel column */
    int link; /* the linked connection's fd in the old process, or -1 (the column's 0) */
    char client_encoding[TAKEOVER_VAR_MAX], std_strings[TAKEOVER_VAR_MAX];
    char datestyle[TAKEOVER_VAR_MAX], timezone[TAKEOVER_VAR_MAX];
    char password[TAKEOVER_PASSWORD_MAX];
    bool has_scram_keys;
    uint8_t scram_client_key[SCRAM_KEY_LEN], scram_server_key[SCRAM_KEY_LEN];
};

/* The cancel column: the 8 bytes of BackendKeyData (pid, key) as one big-endian unsigned
 * number, as PgBouncer 1.25 prints it (0: none). */
uint64_t takeover_cancel_encode(uint32_t pid, uint32_t key);
void takeover_cancel_decode(uint64_t v, uint32_t *pid, uint32_t *key);

/* Parse the body of one DataRow of SHOW FDS. False (out unspecified) when it is not a
 * well-formed row: wrong column count, a value too long, a bad number or task, a key that is
 * not SCRAM_KEY_LEN bytes. Pure: no sockets, no globals. */
bool takeover_parse_row(const uint8_t *body, size_t len, struct takeover_row *out);

/* The row's client_encoding, standard_conforming_strings, DateStyle and TimeZone into vc
 * (empty ones left out): what an adopted client or server starts with. */
struct varcache;
void takeover_row_vars(const struct takeover_row *row, struct varcache *vc);

/* Append one DataRow of SHOW FDS ("" written as NULL; has_cancel false and link -1 as 0, as
 * PgBouncer prints them). takeover_parse_row reads back the same row. */
void takeover_put_row(struct pktbuf *b, const struct takeover_row *row);

/* Old process. SHOW FDS on the console: b holds the RowDescription; the rows, CommandComplete
 * and ReadyForQuery are appended and sent. To the "pgbouncer" user of our own OS user on the
 * Unix socket while SUSPENDed, each row carries its socket; from then on this process reads
 * and writes none of them and exits at SHUTDOWN (takeover_exit). */
void takeover_show_fds(struct client *c, struct pktbuf *b);
/* The sockets were handed over: SHUTDOWN exits at once, touching none of them. */
bool takeover_handed_over(void);
_Noreturn void takeover_exit(void);
/* The new process gave up (RESUME, or its console connection closed before SHUTDOWN): the
 * sockets are ours again (admin_resume, which calls this first, reads and accepts again).
 * No-op unless handed over. */
void takeover_abort(void);
/* client.c: a client is closing (the one the sockets went to: takeover_abort). */
void takeover_console_gone(struct client *c);

/* New process, before the event loop: connect to the running process's console (Unix socket
 * of cf), SUSPEND it, read SHOW FDS with the sockets, send SHUTDOWN and wait for it to exit.
 * False when no process answers there (boot normally); a failure after SUSPEND is fatal. */
bool takeover_fetch(const struct config *cf);
/* On the loop: turn what takeover_fetch got into listeners, clients and servers. False when
 * no listening socket came (the caller opens its own). */
bool takeover_adopt(void);

#endif
