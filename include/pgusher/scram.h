/*
 * scram.h: SCRAM-SHA-256 (RFC 5802/7677, as PostgreSQL speaks it) and PostgreSQL's md5
 * password hashing, on OpenSSL. Pure computations: no I/O, no sockets, no logging.
 * Both sides: the pooler as a SCRAM server (authenticating clients) and as a SCRAM client
 * (logging in to PostgreSQL).
 */
#ifndef PGUSHER_SCRAM_H
#define PGUSHER_SCRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCRAM_KEY_LEN 32
#define SCRAM_NONCE_LEN 18 /* raw random bytes before base64 */
#define MD5_PASSWD_LEN 35  /* "md5" + 32 hex digits */

/* PostgreSQL md5: "md5" + hex(md5(password || user)). out gets MD5_PASSWD_LEN+1 bytes. */
void pg_md5_encrypt(const char *password, const char *user, char out[MD5_PASSWD_LEN + 1]);
/* The reply to AuthenticationMD5Password: "md5" + hex(md5(hexpart(stored) || salt)), where
 * stored is an md5 secret ("md5...") or a plain password (hashed with user first). */
void pg_md5_response(const char *stored_or_plain, const char *user, const uint8_t salt[4],
                     char out[MD5_PASSWD_LEN + 1]);

/* A parsed SCRAM secret: "SCRAM-SHA-256$<iter>:<b64 salt>$<b64 StoredKey>:<b64 ServerKey>". */
struct scram_secret {
    int iterations;
    uint8_t salt[64];
    size_t salt_len;
    uint8_t stored_key[SCRAM_KEY_LEN];
    uint8_t server_key[SCRAM_KEY_LEN];
};
bool scram_parse_secret(const char *text, struct scram_secret *out);
/* Build a secret from a plain password with a given salt and iteration count. */
bool scram_secret_from_password(const char *password, const uint8_t *salt, size_t salt_len,
                                int iterations, struct scram_secret *out);
bool scram_is_secret(const char *text);
/* The secret for a user whose auth-file entry is a plain password: computed with a random
 * salt the first time, then reused while the password and iteration count stay the same
 * (one PBKDF2 per user instead of one per login). */
bool scram_secret_for_user(const char *user, const char *password, int iterations,
                           struct scram_secret *out);
/* A secret for an exchange that must fail (unknown user, md5 secret): the salt is fixed per
 * user name, as a real user's, and the keys are random; no PBKDF2. */
void scram_mock_secret(const char *user, int iterations, struct scram_secret *out);
/* Forget every cached secret (used by the unit tests). */
void scram_cache_clear(void);
/* True for an md5 secret: "md5" followed by exactly 32 hex digits. */
bool pg_is_md5_secret(const char *text);
/* Format a secret back into PostgreSQL's text form; false if out is too small (~200 bytes
 * always suffice). */
bool scram_secret_format(const struct scram_secret *secret, char *out, size_t outlen);

/* ---- pooler as SCRAM server (client authentication) ---- */
struct scram_server {
    struct scram_secret secret;
    char *client_first_bare;           /* malloc'd */
    char *server_first;                /* malloc'd */
    char nonce[128];                   /* client nonce + server nonce */
    uint8_t client_key[SCRAM_KEY_LEN]; /* recovered from the proof on success */
    bool have_client_key;
    char cbind_flag; /* 'n' or 'y' from the client-first gs2 header */
};
/* Handle SASLInitialResponse data (client-first-message). On success *out is a malloc'd
 * server-first-message. Returns false on malformed input or channel binding demands. */
bool scram_server_first(struct scram_server *st, const char *client_first, size_t len, char **out);
/* Handle SASLResponse data (client-final-message). Returns true only when the proof is
 * valid; then *out is the malloc'd server-final-message ("v=...") and client_key is set. */
bool scram_server_final(struct scram_server *st, const char *client_final, size_t len, char **out);
/* Frees the exchange state and wipes the whole struct, secret included. Start from a zeroed
 * struct, install the secret (e.g. scram_parse_secret(text, &st->secret)), then call
 * scram_server_first(); reset after every exchange, successful or not. */
void scram_server_reset(struct scram_server *st);
/* scram_server_first() with a fixed server nonce (printable, no ','), for tests. */
bool scram_server_first_with_nonce(struct scram_server *st, const char *client_first, size_t len,
                                   const char *server_nonce, char **out);

/* ---- pooler as SCRAM client (server login) ---- */
/* The highest iteration count a server may ask for: PBKDF2 runs on the event loop (100000
 * iterations take ~50 ms; PostgreSQL's default is 4096). Not applied with have_keys, where
 * no PBKDF2 runs. */
#define SCRAM_CLIENT_MAX_ITERATIONS 100000
struct scram_client {
    char client_nonce[64];
    char *client_first_bare;
    char *server_first;
    uint8_t salted_password[SCRAM_KEY_LEN];
    uint8_t client_key[SCRAM_KEY_LEN];
    uint8_t server_key[SCRAM_KEY_LEN];
    bool have_keys; /* keys given directly (pass-through of a client's proof) */
    char expected_server_sig[64];
    const char *error; /* why the last call failed (a static string), or NULL */
};
/* Start: fill *out with a malloc'd client-first-message ("n,,n=,r=<nonce>"). */
bool scram_client_first(struct scram_client *st, char **out);
/* Handle server-first-message; compute proof from password (or from client_key/server_key
 * when st->have_keys). *out = malloc'd client-final-message. */
bool scram_client_final(struct scram_client *st, const char *password, const char *server_first,
                        size_t len, char **out);
/* (With have_keys, salt and iteration count from server-first are ignored: the keys only
 * work if PostgreSQL holds the same secret the pooler recovered them against.)
 * Passwords are used as raw bytes, without SASLprep; see scram.c. */
/* Verify server-final-message ("v=..."); an "e=..." error reply returns false. */
bool scram_client_verify(struct scram_client *st, const char *server_final, size_t len);
/* Frees and wipes everything, keys and have_keys included. Start from a zeroed struct; for
 * pass-through set client_key, server_key and have_keys before scram_client_final(). */
void scram_client_reset(struct scram_client *st);
/* scram_client_first() with a given user name (NULL = empty, which PostgreSQL expects) and a
 * fixed nonce (printable, no ','), for tests. */
bool scram_client_first_with_nonce(struct scram_client *st, const char *user, const char *nonce,
                                   char **out);

/* Base64 helpers (standard alphabet, padded). Return output length or -1. Encoding writes a
 * terminating NUL (outlen must allow for it); decoding is strict (no whitespace, length a
 * multiple of 4, padding only at the end) and needs outlen >= decoded length. */
int scram_b64_encode(const uint8_t *in, size_t len, char *out, size_t outlen);
int scram_b64_decode(const char *in, size_t len, uint8_t *out, size_t outlen);

#endif
