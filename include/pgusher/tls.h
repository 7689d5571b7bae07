/*
 * tls.h: OpenSSL contexts built from the client_tls_* / server_tls_* settings, and the
 * per-connection TLS engine (memory BIOs, no socket I/O) that stream.c drives.
 * Never touches sockets or the loop; never interprets PostgreSQL protocol bytes.
 *
 * How the wiring is meant to use it:
 * - At start and on every RELOAD, call tls_apply(&cf->g, err, len). It builds both contexts
 *   and swaps them in only when both built; on failure the running ones stay and err names the
 *   setting, the file and OpenSSL's reason (log it; at start-up, refuse to start).
 * - client.c, on SSLRequest: tls_accept_ctx() is NULL when client_tls_sslmode is disable (answer
 *   'N'); otherwise answer 'S' (answer_encryption_request) and call stream_start_tls(&c->st,
 *   tls_accept_ctx(), NULL). Wait for ops->on_tls_ready before reading the startup packet.
 *   tls_ctx_mode(tls_accept_ctx()) >= TLS_REQUIRE means a plaintext startup is refused.
 *   auth_type=cert: stream_tls_peer_cn() after the handshake.
 * - server.c and health.c, after the server answered 'S' to their SSLRequest:
 *   stream_start_tls(st, tls_connect_ctx(), host) where host is the name or address connected
 *   to (checked in verify-full). Keep a ref (tls_ctx_ref) to the context a server connection
 *   was made under and the tls_connect_gen() of that moment; when it is released and the
 *   generation moved on, close it (it was made under other server TLS settings).
 * - SHOW CLIENTS/SERVERS: stream_tls_describe() for the tls column ("" when plaintext).
 * Errors: builders return bool with the reason in err; the engine reports -1 with the reason in
 * tls_conn_error().
 */
#ifndef PGUSHER_TLS_H
#define PGUSHER_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cf_global;

/* The sslmode values, in PgBouncer's order (a larger value is stricter). */
enum tls_mode {
    TLS_DISABLE,
    TLS_ALLOW,
    TLS_PREFER,
    TLS_REQUIRE,
    TLS_VERIFY_CA,
    TLS_VERIFY_FULL,
};

/* Protocol versions as a bit mask (tls_parse_protocols). */
enum {
    TLS_PROTO_1_0 = 1u << 0,
    TLS_PROTO_1_1 = 1u << 1,
    TLS_PROTO_1_2 = 1u << 2,
    TLS_PROTO_1_3 = 1u << 3,
};

/* "disable" ... "verify-full", case-insensitive. */
bool tls_parse_mode(const char *s, enum tls_mode *out);
/* "secure", "all", "legacy", "default" or a list of tlsv1.0..tlsv1.3 separated by ',', ':' or
 * blanks, each optionally negated with '!' or '-' (libtls syntax, which PgBouncer uses). */
bool tls_parse_protocols(const char *s, unsigned *mask, char *err, size_t errlen);
/* Check a *_tls_ciphers / *_tls13_ciphers / client_tls_ecdhcurve / client_tls_dheparams
 * value the way the context builder will use it (for config load). */
bool tls_check_ciphers(const char *s, char *err, size_t errlen);
bool tls_check_tls13_ciphers(const char *s, char *err, size_t errlen);
bool tls_check_ecdhcurve(const char *s, char *err, size_t errlen);
bool tls_check_dheparams(const char *s, char *err, size_t errlen);

/* A reference-counted SSL context for one side. Each TLS connection holds a reference, so one
 * made under a context that a RELOAD replaced keeps it until it closes. */
struct tls_ctx;
struct tls_ctx *tls_ctx_ref(struct tls_ctx *c);
void tls_ctx_unref(struct tls_ctx *c);
enum tls_mode tls_ctx_mode(const struct tls_ctx *c);
bool tls_ctx_is_accept(const struct tls_ctx *c);

/* Build the accept (client_tls_*) and connect (server_tls_*) contexts. Either is NULL when its
 * sslmode is disable. On failure both are NULL and err says which setting and why. */
bool tls_build(const struct cf_global *g, struct tls_ctx **accept, struct tls_ctx **connect,
               char *err, size_t errlen) __attribute__((warn_unused_result));
/* Build and, only when that worked, replace the contexts in force. The connect context is
 * replaced (and tls_connect_gen bumped) only when the server_tls_* settings, or the identity
 * of a file they name, differ from those it was built from; otherwise the running one stays. */
bool tls_apply(const struct cf_global *g, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* The generation of tls_connect_ctx(): changes exactly when a tls_apply (or tls_release_all)
 * replaced it with one built from other settings. */
uint64_t tls_connect_gen(void);
/* The contexts in force (borrowed; NULL: TLS disabled on that side). */
struct tls_ctx *tls_accept_ctx(void);
struct tls_ctx *tls_connect_ctx(void);
/* Drop the contexts in force (shutdown). */
void tls_release_all(void);

/* ---- The per-connection engine, used by stream.c only. ---- */
struct tls_conn;
/* verify_host: for a connect-side context in verify-full, the name or IP literal the peer's
 * certificate must match (NULL or "" there is an error). Ignored otherwise. */
/* Count what OpenSSL allocates from now on: call first thing, before any OpenSSL use (else
 * nothing is counted). tls_mem_bytes: the bytes it holds now (-1 when not counted), and in
 * *allocs how many blocks. */
void tls_mem_init(void);
long long tls_mem_bytes(size_t *allocs);
/* sizeof(struct tls_conn), for SHOW MEM. */
size_t tls_conn_size(void);
struct tls_conn *tls_conn_new(struct tls_ctx *ctx, const char *verify_host, char *err,
                              size_t errlen);
void tls_conn_free(struct tls_conn *t);
/* Ciphertext received from the peer: borrowed (not copied) until tls_conn_feed_end, which
 * copies what TLS has not consumed by then. Between the two, the caller's buffer must stay as
 * it is. False: out of memory. */
bool tls_conn_feed(struct tls_conn *t, const void *data, size_t len);
bool tls_conn_feed_end(struct tls_conn *t);
/* Drive the handshake: 1 done, 0 needs more input, -1 failed (tls_conn_error). */
int tls_conn_handshake(struct tls_conn *t);
/* Decrypt into buf: > 0 bytes, 0 needs more input, -1 failed or closed (TLS_CLOSED below). */
int tls_conn_read(struct tls_conn *t, void *buf, size_t cap);
/* Decrypted or undecrypted input is still held (more tls_conn_read may produce bytes). */
bool tls_conn_pending(const struct tls_conn *t);
/* True when the last -1 of tls_conn_read was the peer's close_notify. */
bool tls_conn_closed(const struct tls_conn *t);
/* Encrypt plaintext (whole, after the handshake). */
bool tls_conn_write(struct tls_conn *t, const void *data, size_t len);
/* Queue a close_notify alert for the peer (tls_conn_out has it); does not wait for the
 * peer's. Only after the handshake. */
void tls_conn_close_notify(struct tls_conn *t);
/* Ciphertext to send: pointer and length; then tls_conn_out_done once it was all taken. */
size_t tls_conn_out(struct tls_conn *t, const uint8_t **p);
void tls_conn_out_done(struct tls_conn *t);
const char *tls_conn_error(const struct tls_conn *t);
/* PgBouncer's tls column: "TLSv1.3/TLS_AES_256_GCM_SHA384/ECDH=X25519". */
void tls_conn_describe(const struct tls_conn *t, char *buf, size_t len);
/* The peer certificate's common name (false: none). */
bool tls_conn_peer_cn(const struct tls_conn *t, char *buf, size_t len);

#endif
