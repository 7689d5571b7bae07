/*
 * proto.h: the PostgreSQL protocol as pgusher speaks it to servers: protocol constants (one
 * place), the startup packet, ErrorResponse/NoticeResponse fields, and the client side of
 * login (trust, cleartext, md5, SCRAM-SHA-256) as a pure state machine. No I/O, no libuv,
 * no logging, no globals: server.c and health.c feed it messages and send what it says.
 */
#ifndef PGUSHER_PROTO_H
#define PGUSHER_PROTO_H

#include "pgusher/pktbuf.h"
#include "pgusher/scram.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Codes of the untyped first packet (startup, cancel, encryption requests). */
#define PROTO_V3 196608u                    /* protocol 3.0 */
#define PROTO_CANCEL_REQUEST_CODE 80877102u /* 1234.5678 */
#define PROTO_SSL_REQUEST_CODE 80877103u    /* 1234.5679 */
#define PROTO_GSSENC_REQUEST_CODE 80877104u /* 1234.5680 */

/* Authentication request codes ('R' messages). */
enum proto_auth_code {
    PROTO_AUTH_OK = 0,
    PROTO_AUTH_KERBEROS_V5 = 2,
    PROTO_AUTH_CLEARTEXT = 3,
    PROTO_AUTH_MD5 = 5,
    PROTO_AUTH_GSS = 7,
    PROTO_AUTH_GSS_CONTINUE = 8,
    PROTO_AUTH_SSPI = 9,
    PROTO_AUTH_SASL = 10,
    PROTO_AUTH_SASL_CONTINUE = 11,
    PROTO_AUTH_SASL_FINAL = 12,
};

/* Limits on what a server may send while pgusher logs in. A real PostgreSQL sends a dozen or
 * two ParameterStatus messages of a few dozen bytes each. */
#define PROTO_MAX_LOGIN_MSG_LEN (64u * 1024u)     /* any one message */
#define PROTO_MAX_LOGIN_PARAMS 256u               /* ParameterStatus messages */
#define PROTO_MAX_LOGIN_PARAM_BYTES (64u * 1024u) /* their bodies, together */
#define PROTO_MAX_LOGIN_MSGS 1024u                /* messages of any kind before ReadyForQuery */

/* ---------------------------------------------------------------- server_require_auth */

/* Authentication methods a server may ask for, as libpq's require_auth names them. */
enum proto_auth_method {
    PROTO_METHOD_NONE = 1u << 0,     /* "none": the server asks for nothing (trust) */
    PROTO_METHOD_PASSWORD = 1u << 1, /* "password": cleartext */
    PROTO_METHOD_MD5 = 1u << 2,      /* "md5" */
    PROTO_METHOD_GSS = 1u << 3,      /* "gss" (pgusher never does it) */
    PROTO_METHOD_SSPI = 1u << 4,     /* "sspi" (pgusher never does it) */
    PROTO_METHOD_SCRAM = 1u << 5,    /* "scram-sha-256" */
    PROTO_METHOD_OAUTH = 1u << 6,    /* "oauth" (pgusher never does it) */
};
#define PROTO_METHODS_ALL 0x7fu

/* Parse a require_auth list: "" (every method), "scram-sha-256,none" (only these), or
 * "!password,!md5" (all but these; negation is all-or-none). Returns false with a reason in
 * err for an unknown method, a repeated one, mixed negation or an empty element. */
bool proto_require_auth_parse(const char *text, unsigned *mask, char *err, size_t errlen);

/* ---------------------------------------------------------------- messages */

/* Build the startup packet: protocol 3.0 and the (name, value) pairs; pairs with a NULL
 * value are left out. */
void proto_startup(struct pktbuf *b, const char *const (*params)[2], size_t nparams);
/* The next (name, value) pair of a StartupMessage whose reader r stands after the protocol
 * code: 1 with the pair (pointers into the packet), 0 at the terminating empty name (which
 * must be the packet's last byte), -1 for a malformed packet (no terminator, a name with no
 * value, bytes after the terminator). */
int proto_startup_next(struct pktreader *r, const char **name, const char **value);
/* The next setting of a startup "options" value, PostgreSQL's command-line switches as libpq's
 * PGOPTIONS carries them: words separated by white space, a backslash taking the next
 * character literally; a setting is "-c name=value", "-cname=value" or "--name=value".
 * *cursor (into the NUL-terminated value) advances past it. buf (cap bytes, at least
 * strlen(value) + 1 is always enough) receives the word; *name and *value point into it.
 * Returns 1 for a setting, 0 at the end, -1 for anything else (another switch, "-c" with
 * nothing after it, no '=' or an empty name). */
int proto_options_next(const char **cursor, char *buf, size_t cap, const char **name,
                       const char **value);
/* Build an untyped 8-byte request (PROTO_SSL_REQUEST_CODE, PROTO_GSSENC_REQUEST_CODE). */
void proto_request(struct pktbuf *b, uint32_t code);
/* The 16-byte CancelRequest for (pid, key), into out: what a server cancel and a cancel
 * forwarded to a peer both send. */
#define PROTO_CANCEL_LEN 16
void proto_pack_cancel(uint8_t out[PROTO_CANCEL_LEN], uint32_t pid, uint32_t key);

/* What to do with the one-byte answer to our SSLRequest. required: the sslmode refuses
 * plaintext (require, verify-ca, verify-full). PROTO_SSL_REFUSED and PROTO_SSL_BAD set *why
 * (PgBouncer's words). */
enum proto_ssl_answer {
    PROTO_SSL_START,   /* 'S': start the TLS handshake, then the startup packet */
    PROTO_SSL_PLAIN,   /* 'N' and plaintext allowed: the startup packet in plaintext */
    PROTO_SSL_REFUSED, /* 'N' but TLS is required: the login fails */
    PROTO_SSL_BAD,     /* anything else: a protocol error */
};
enum proto_ssl_answer proto_ssl_answer(uint8_t answer, bool required, const char **why);

/* The fields of an ErrorResponse/NoticeResponse body that pgusher uses. Missing fields get
 * defaults: severity "ERROR", sqlstate "08P01", message "unknown error"; overlong values
 * are cut. */
struct proto_error {
    char severity[16]; /* 'V' (not localized) when present, else 'S' */
    char sqlstate[6];  /* 'C' */
    char message[512]; /* 'M' */
};
void proto_parse_error(const uint8_t *body, uint32_t len, struct proto_error *out);
/* A refusal of the login itself (28xxx authorization, 3D000 no database, 42501 no
 * privilege), as opposed to a server that cannot serve now (57P03, 53300, ...). */
bool proto_sqlstate_is_auth_refusal(const char *sqlstate);

/* ---------------------------------------------------------------- login state machine */

/*
 * How a login exchange proceeds. The caller sends the startup packet, then feeds every
 * message the server sends (type, body without the 5-byte header, body length), acting on
 * each step:
 *   PROTO_LOGIN_CONTINUE  nothing to do; feed the next message
 *   PROTO_LOGIN_REPLY     send lg->reply.data (lg->reply.len bytes, a whole message)
 *   PROTO_LOGIN_PARAM     a ParameterStatus: lg->param_name / lg->param_value (point into body)
 *   PROTO_LOGIN_READY     ReadyForQuery after a complete login: logged in; lg->have_key,
 *                         lg->be_pid, lg->be_key hold the BackendKeyData if one came
 *   PROTO_LOGIN_FAILED    lg->fail (kind), lg->fail_sqlstate, lg->fail_msg; stays failed
 * Rules enforced: the server may ask for one method only; after SASL started, AuthenticationOk
 * counts only after SASLFinal carried the server signature we computed; a method (or no
 * authentication at all) that lg->allowed excludes fails before any secret is sent; the SCRAM
 * iteration count is capped (SCRAM_CLIENT_MAX_ITERATIONS); ParameterStatus and the message
 * count are bounded (PROTO_MAX_LOGIN_*); ReadyForQuery before AuthenticationOk fails.
 */
enum proto_login_step {
    PROTO_LOGIN_CONTINUE,
    PROTO_LOGIN_REPLY,
    PROTO_LOGIN_PARAM,
    PROTO_LOGIN_READY,
    PROTO_LOGIN_FAILED,
};

enum proto_fail {
    PROTO_FAIL_NONE,
    PROTO_FAIL_REFUSED,   /* the server's ErrorResponse refused the login (see above) */
    PROTO_FAIL_NO_METHOD, /* we declined: method not allowed, unsupported, or no usable secret */
    PROTO_FAIL_SERVER,    /* the server's ErrorResponse: it cannot serve (starting up, full) */
    PROTO_FAIL_PROTOCOL,  /* the server broke the protocol or failed a security check */
};

enum proto_login_phase {
    PROTO_PHASE_AUTH,          /* waiting for an authentication request */
    PROTO_PHASE_PASSWORD_SENT, /* cleartext/md5 answer sent, waiting for AuthenticationOk */
    PROTO_PHASE_SASL_FIRST,    /* SASLInitialResponse sent, waiting for SASLContinue */
    PROTO_PHASE_SASL_FINAL,    /* SASLResponse sent, waiting for SASLFinal */
    PROTO_PHASE_SASL_VERIFIED, /* server signature verified, waiting for AuthenticationOk */
    PROTO_PHASE_AUTHENTICATED, /* AuthenticationOk: parameters, key, ReadyForQuery */
    PROTO_PHASE_READY,
    PROTO_PHASE_FAILED,
};

struct proto_login {
    /* Inputs (proto_login_init), owned copies: a reload may free the configuration the
     * password came from while the login runs. */
    char *user;           /* the login user: md5 hashes with it */
    char *password;       /* plain password, md5 secret ("md5..."), SCRAM secret or NULL */
    unsigned allowed;     /* enum proto_auth_method bits the server may ask for */
    bool have_scram_keys; /* SCRAM pass-through: ClientKey/ServerKey learned from a client */
    /* State. */
    enum proto_login_phase phase;
    struct scram_client scram;
    unsigned nmsgs, nparams;
    size_t param_bytes;
    /* Outputs. */
    struct pktbuf reply; /* PROTO_LOGIN_REPLY: the message to send */
    const char *param_name, *param_value;
    bool have_key;
    uint32_t be_pid, be_key;
    enum proto_fail fail;
    char fail_sqlstate[6];
    char fail_msg[512];
};

/* Start a login. scram_client_key/scram_server_key (both or neither, SCRAM_KEY_LEN bytes)
 * are used when password is not a plain password. False when out of memory (lg is then
 * reset already). */
bool proto_login_init(struct proto_login *lg, const char *user, const char *password,
                      const uint8_t *scram_client_key, const uint8_t *scram_server_key,
                      unsigned allowed);
enum proto_login_step proto_login_feed(struct proto_login *lg, uint8_t type, const uint8_t *body,
                                       uint32_t len);
/* Wipe secrets and free buffers; lg may be reused with proto_login_init afterwards. */
void proto_login_reset(struct proto_login *lg);
/* The failure, fit for "server login failed: ..." (a REFUSED failure is the server's text). */
static inline bool proto_login_failed_auth(const struct proto_login *lg)
{
    return lg->fail == PROTO_FAIL_REFUSED || lg->fail == PROTO_FAIL_NO_METHOD ||
           lg->fail == PROTO_FAIL_PROTOCOL;
}

#endif
