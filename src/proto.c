/*
 * proto.c: what pgusher says to PostgreSQL as a client and how it reads the answers: the
 * startup packet, ErrorResponse fields, server_require_auth lists and the login state
 * machine (proto.h). Pure: never does I/O, never logs, never reads configuration or globals.
 * A server's message can make a login fail; it can never make this code read past the
 * message, send a secret to a method the configuration excludes, or grow memory unbounded.
 *
 * Design notes.
 * - One method per login: once the server has asked for cleartext, md5 or SASL, the only
 *   messages accepted are that method's next step or AuthenticationOk. A second request of
 *   any kind fails the login (a hostile server could otherwise collect several answers, or
 *   make us start SCRAM again and again).
 * - With SASL, AuthenticationOk is accepted only in PROTO_PHASE_SASL_VERIFIED: the server has
 *   proved it knows the secret (SASLFinal's signature), so a server that merely accepts us
 *   cannot pass for the real one.
 * - server_require_auth is checked when the server asks, before any secret is computed or
 *   sent, and at AuthenticationOk for "none" (libpq's require_auth rules).
 */
#include "pgusher/proto.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#define SCRAM_MECHANISM "SCRAM-SHA-256"

/* ---------------------------------------------------------------- server_require_auth */

static const struct {
    const char *name;
    unsigned bit;
} auth_methods[] = {
    {"password", PROTO_METHOD_PASSWORD},   {"md5", PROTO_METHOD_MD5},
    {"scram-sha-256", PROTO_METHOD_SCRAM}, {"gss", PROTO_METHOD_GSS},
    {"sspi", PROTO_METHOD_SSPI},           {"oauth", PROTO_METHOD_OAUTH},
    {"none", PROTO_METHOD_NONE},
};

static unsigned method_bit(const char *name, size_t n)
{
    for (size_t i = 0; i < sizeof(auth_methods) / sizeof(auth_methods[0]); i++)
        if (strlen(auth_methods[i].name) == n && strncasecmp(auth_methods[i].name, name, n) == 0)
            return auth_methods[i].bit;
    return 0;
}

bool proto_require_auth_parse(const char *text, unsigned *mask, char *err, size_t errlen)
{
    if (!text || !*text) {
        *mask = PROTO_METHODS_ALL;
        return true;
    }
    unsigned seen = 0;
    int negated = -1; /* unknown until the first element */
    const char *p = text;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        while (n > 0 && isspace((unsigned char)*p))
            p++, n--;
        while (n > 0 && isspace((unsigned char)p[n - 1]))
            n--;
        bool neg = n > 0 && *p == '!';
        if (neg)
            p++, n--;
        if (n == 0) {
            snprintf(err, errlen, "empty method in list");
            return false;
        }
        if (negated >= 0 && negated != neg) {
            snprintf(err, errlen, "negated (!) and plain methods cannot be mixed");
            return false;
        }
        negated = neg;
        unsigned bit = method_bit(p, n);
        if (!bit) {
            snprintf(err, errlen,
                     "unknown method \"%.*s\" (expected password, md5, scram-sha-256, gss, sspi, "
                     "oauth or none)",
                     (int)(n > 40 ? 40 : n), p);
            return false;
        }
        if (seen & bit) {
            snprintf(err, errlen, "method \"%.*s\" is listed more than once", (int)n, p);
            return false;
        }
        seen |= bit;
        if (!end)
            break;
        p = end + 1;
    }
    *mask = negated ? PROTO_METHODS_ALL & ~seen : seen;
    return true;
}

/* ---------------------------------------------------------------- messages */

void proto_startup(struct pktbuf *b, const char *const (*params)[2], size_t nparams)
{
    pktbuf_start(b, 0);
    pktbuf_put_int32(b, PROTO_V3);
    for (size_t i = 0; i < nparams; i++) {
        if (!params[i][0] || !params[i][1])
            continue;
        pktbuf_put_string(b, params[i][0]);
        pktbuf_put_string(b, params[i][1]);
    }
    pktbuf_put_byte(b, 0);
    pktbuf_finish(b);
}

int proto_startup_next(struct pktreader *r, const char **name, const char **value)
{
    *name = *value = NULL;
    const char *k = pktreader_string(r);
    if (!k)
        return -1; /* no terminator */
    if (!*k)
        return r->p == r->end ? 0 : -1; /* the terminator must be the last byte */
    const char *v = pktreader_string(r);
    if (!v)
        return -1; /* a name without a value */
    *name = k;
    *value = v;
    return 1;
}

/* One white-space separated word of an options value into buf; 0 at the end, -1 if it
 * does not fit. */
static int options_word(const char **cursor, char *buf, size_t cap)
{
    const char *p = *cursor;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f' || *p == '\v')
        p++;
    if (!*p) {
        *cursor = p;
        return 0;
    }
    size_t n = 0;
    while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != '\f' && *p != '\v') {
        if (*p == '\\' && p[1])
            p++;
        if (n + 1 >= cap)
            return -1;
        buf[n++] = *p++;
    }
    buf[n] = 0;
    *cursor = p;
    return 1;
}

int proto_options_next(const char **cursor, char *buf, size_t cap, const char **name,
                       const char **value)
{
    *name = *value = NULL;
    int r = options_word(cursor, buf, cap);
    if (r <= 0)
        return r;
    char *setting;
    if (strncmp(buf, "--", 2) == 0) {
        setting = buf + 2;
    } else if (strncmp(buf, "-c", 2) == 0 && buf[2]) {
        setting = buf + 2;
    } else if (strcmp(buf, "-c") == 0) {
        if (options_word(cursor, buf, cap) <= 0)
            return -1;
        setting = buf;
    } else {
        return -1;
    }
    char *eq = strchr(setting, '=');
    if (!eq || eq == setting)
        return -1;
    *eq = 0;
    *name = setting;
    *value = eq + 1;
    return 1;
}

void proto_request(struct pktbuf *b, uint32_t code)
{
    pktbuf_start(b, 0);
    pktbuf_put_int32(b, code);
    pktbuf_finish(b);
}

void proto_pack_cancel(uint8_t out[PROTO_CANCEL_LEN], uint32_t pid, uint32_t key)
{
    const uint32_t v[4] = {PROTO_CANCEL_LEN, PROTO_CANCEL_REQUEST_CODE, pid, key};
    for (int i = 0; i < 4; i++) {
        out[4 * i] = (uint8_t)(v[i] >> 24);
        out[4 * i + 1] = (uint8_t)(v[i] >> 16);
        out[4 * i + 2] = (uint8_t)(v[i] >> 8);
        out[4 * i + 3] = (uint8_t)v[i];
    }
}

enum proto_ssl_answer proto_ssl_answer(uint8_t answer, bool required, const char **why)
{
    *why = NULL;
    if (answer == 'S')
        return PROTO_SSL_START;
    if (answer == 'N' && !required)
        return PROTO_SSL_PLAIN;
    *why = answer == 'N' ? "server refused SSL" : "bad sslreq answer";
    return answer == 'N' ? PROTO_SSL_REFUSED : PROTO_SSL_BAD;
}

/* Copy a server-supplied string, control characters replaced: it goes to logs and clients. */
static void copy_text(char *dst, size_t dstlen, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < dstlen; i++) {
        unsigned char ch = (unsigned char)src[i];
        dst[i] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
    }
    dst[i] = '\0';
}

static bool sqlstate_valid(const char *s)
{
    if (strlen(s) != 5)
        return false;
    for (int i = 0; i < 5; i++)
        if (!isdigit((unsigned char)s[i]) && !isupper((unsigned char)s[i]))
            return false;
    return true;
}

void proto_parse_error(const uint8_t *body, uint32_t len, struct proto_error *out)
{
    snprintf(out->severity, sizeof(out->severity), "ERROR");
    snprintf(out->sqlstate, sizeof(out->sqlstate), "08P01");
    snprintf(out->message, sizeof(out->message), "unknown error");
    bool have_v = false;
    struct pktreader r;
    pktreader_init(&r, body, len);
    while (!r.bad && r.p < r.end) {
        uint8_t f = pktreader_byte(&r);
        if (f == 0)
            break;
        const char *v = pktreader_string(&r);
        if (!v)
            break;
        switch (f) {
        case 'M':
            copy_text(out->message, sizeof(out->message), v);
            break;
        case 'C':
            if (sqlstate_valid(v))
                memcpy(out->sqlstate, v, 6);
            break;
        case 'V':
            copy_text(out->severity, sizeof(out->severity), v);
            have_v = true;
            break;
        case 'S':
            if (!have_v)
                copy_text(out->severity, sizeof(out->severity), v);
            break;
        default:
            break;
        }
    }
}

bool proto_sqlstate_is_auth_refusal(const char *sqlstate)
{
    return strncmp(sqlstate, "28", 2) == 0 || strcmp(sqlstate, "3D000") == 0 ||
           strcmp(sqlstate, "42501") == 0;
}

/* ---------------------------------------------------------------- login */

bool proto_login_init(struct proto_login *lg, const char *user, const char *password,
                      const uint8_t *scram_client_key, const uint8_t *scram_server_key,
                      unsigned allowed)
{
    memset(lg, 0, sizeof(*lg));
    pktbuf_init(&lg->reply);
    lg->user = strdup(user ? user : "");
    lg->password = password ? strdup(password) : NULL;
    if (!lg->user || (password && !lg->password)) {
        proto_login_reset(lg);
        return false;
    }
    lg->allowed = allowed;
    if (scram_client_key && scram_server_key) {
        memcpy(lg->scram.client_key, scram_client_key, SCRAM_KEY_LEN);
        memcpy(lg->scram.server_key, scram_server_key, SCRAM_KEY_LEN);
        lg->have_scram_keys = true;
    }
    return true;
}

static void reply_clear(struct proto_login *lg)
{
    if (lg->reply.data)
        OPENSSL_cleanse(lg->reply.data, lg->reply.cap);
    pktbuf_reset(&lg->reply);
}

static void free_secret(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

void proto_login_reset(struct proto_login *lg)
{
    free_secret(lg->password);
    free_secret(lg->user);
    reply_clear(lg);
    pktbuf_free(&lg->reply);
    scram_client_reset(&lg->scram);
    OPENSSL_cleanse(lg, sizeof(*lg));
}

static enum proto_login_step fail(struct proto_login *lg, enum proto_fail kind,
                                  const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static enum proto_login_step fail(struct proto_login *lg, enum proto_fail kind,
                                  const char *sqlstate, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(lg->fail_msg, sizeof(lg->fail_msg), fmt, ap);
    va_end(ap);
    snprintf(lg->fail_sqlstate, sizeof(lg->fail_sqlstate), "%s", sqlstate);
    lg->fail = kind;
    lg->phase = PROTO_PHASE_FAILED;
    reply_clear(lg);
    scram_client_reset(&lg->scram); /* no keys kept in a dead exchange */
    return PROTO_LOGIN_FAILED;
}

static enum proto_login_step protocol_violation(struct proto_login *lg, const char *what)
{
    return fail(lg, PROTO_FAIL_PROTOCOL, "08P01", "%s", what);
}

static enum proto_login_step not_allowed(struct proto_login *lg, const char *what)
{
    return fail(lg, PROTO_FAIL_NO_METHOD, "28000",
                "server requested %s, which server_require_auth does not allow", what);
}

static enum proto_login_step send_reply(struct proto_login *lg, enum proto_login_phase next)
{
    if (lg->reply.failed)
        return fail(lg, PROTO_FAIL_SERVER, "53200", "out of memory");
    lg->phase = next;
    return PROTO_LOGIN_REPLY;
}

static bool plain_password(const struct proto_login *lg)
{
    const char *pw = lg->password;
    return pw && !scram_is_secret(pw) && !pg_is_md5_secret(pw);
}

/* Any authentication request after the method was chosen. */
static enum proto_login_step second_request(struct proto_login *lg, uint32_t code)
{
    if (code == PROTO_AUTH_SASL && lg->phase >= PROTO_PHASE_SASL_FIRST &&
        lg->phase <= PROTO_PHASE_SASL_VERIFIED)
        return protocol_violation(lg, "server sent AuthenticationSASL twice");
    return fail(lg, PROTO_FAIL_PROTOCOL, "08P01",
                "server sent an unexpected authentication request (code %u)", code);
}

static enum proto_login_step auth_cleartext(struct proto_login *lg)
{
    if (!(lg->allowed & PROTO_METHOD_PASSWORD))
        return not_allowed(lg, "a cleartext password");
    if (!plain_password(lg))
        return fail(lg, PROTO_FAIL_NO_METHOD, "28P01",
                    "cannot do cleartext authentication without a plain password");
    pktbuf_start(&lg->reply, 'p');
    pktbuf_put_string(&lg->reply, lg->password);
    pktbuf_finish(&lg->reply);
    return send_reply(lg, PROTO_PHASE_PASSWORD_SENT);
}

static enum proto_login_step auth_md5(struct proto_login *lg, struct pktreader *r)
{
    if (!(lg->allowed & PROTO_METHOD_MD5))
        return not_allowed(lg, "an md5-hashed password");
    const uint8_t *salt = pktreader_bytes(r, 4);
    if (!salt)
        return protocol_violation(lg, "malformed AuthenticationMD5Password");
    if (!lg->password || scram_is_secret(lg->password))
        return fail(lg, PROTO_FAIL_NO_METHOD, "28P01",
                    "cannot do md5 authentication without a password");
    char resp[MD5_PASSWD_LEN + 1];
    pg_md5_response(lg->password, lg->user, salt, resp);
    pktbuf_start(&lg->reply, 'p');
    pktbuf_put_string(&lg->reply, resp);
    pktbuf_finish(&lg->reply);
    OPENSSL_cleanse(resp, sizeof(resp));
    return send_reply(lg, PROTO_PHASE_PASSWORD_SENT);
}

static enum proto_login_step auth_sasl(struct proto_login *lg, struct pktreader *r)
{
    if (!(lg->allowed & PROTO_METHOD_SCRAM))
        return not_allowed(lg, "SASL authentication");
    bool found = false, terminated = false;
    while (!r->bad && r->p < r->end) {
        const char *mech = pktreader_string(r);
        if (!mech)
            break;
        if (!*mech) {
            terminated = true;
            break;
        }
        if (strcmp(mech, SCRAM_MECHANISM) == 0)
            found = true;
    }
    if (!terminated)
        return protocol_violation(lg, "malformed SASL mechanism list");
    if (!found)
        return fail(lg, PROTO_FAIL_NO_METHOD, "28000",
                    "server offers no supported SASL mechanism (pgusher speaks SCRAM-SHA-256)");
    bool plain = plain_password(lg);
    if (!plain && !lg->have_scram_keys)
        return fail(lg, PROTO_FAIL_NO_METHOD, "28P01",
                    "cannot do SCRAM authentication: no plain password and no client SCRAM "
                    "keys for this user");
    lg->scram.have_keys = !plain;
    char *first = NULL;
    if (!scram_client_first(&lg->scram, &first))
        return fail(lg, PROTO_FAIL_SERVER, "53200", "SCRAM client-first failed");
    size_t n = strlen(first);
    pktbuf_start(&lg->reply, 'p');
    pktbuf_put_string(&lg->reply, SCRAM_MECHANISM);
    pktbuf_put_int32(&lg->reply, (uint32_t)n);
    pktbuf_put_bytes(&lg->reply, first, n);
    pktbuf_finish(&lg->reply);
    free(first);
    return send_reply(lg, PROTO_PHASE_SASL_FIRST);
}

static enum proto_login_step auth_sasl_continue(struct proto_login *lg, struct pktreader *r)
{
    if (lg->phase != PROTO_PHASE_SASL_FIRST)
        return protocol_violation(lg, "server sent an unexpected SASLContinue");
    char *final = NULL;
    const char *pw = lg->scram.have_keys ? NULL : lg->password;
    if (!scram_client_final(&lg->scram, pw, (const char *)r->p, (size_t)(r->end - r->p), &final)) {
        const char *why = lg->scram.error ? lg->scram.error : "malformed server-first-message";
        return fail(lg, PROTO_FAIL_PROTOCOL, "08P01", "SCRAM authentication failed: %s", why);
    }
    pktbuf_start(&lg->reply, 'p');
    pktbuf_put_bytes(&lg->reply, final, strlen(final));
    pktbuf_finish(&lg->reply);
    OPENSSL_cleanse(final, strlen(final));
    free(final);
    return send_reply(lg, PROTO_PHASE_SASL_FINAL);
}

static enum proto_login_step auth_sasl_final(struct proto_login *lg, struct pktreader *r)
{
    if (lg->phase != PROTO_PHASE_SASL_FINAL)
        return protocol_violation(lg, "server sent an unexpected SASLFinal");
    if (!scram_client_verify(&lg->scram, (const char *)r->p, (size_t)(r->end - r->p)))
        return protocol_violation(lg, "invalid SCRAM server signature");
    lg->phase = PROTO_PHASE_SASL_VERIFIED;
    return PROTO_LOGIN_CONTINUE;
}

static enum proto_login_step auth_ok(struct proto_login *lg)
{
    switch (lg->phase) {
    case PROTO_PHASE_AUTH:
        if (!(lg->allowed & PROTO_METHOD_NONE))
            return fail(lg, PROTO_FAIL_NO_METHOD, "28000",
                        "server did not ask for authentication, which server_require_auth does "
                        "not allow");
        break;
    case PROTO_PHASE_PASSWORD_SENT:
    case PROTO_PHASE_SASL_VERIFIED:
        break;
    case PROTO_PHASE_SASL_FIRST:
    case PROTO_PHASE_SASL_FINAL:
        return protocol_violation(lg, "server sent AuthenticationOk before completing SCRAM "
                                      "authentication (its signature was not verified)");
    default:
        return protocol_violation(lg, "server sent an unexpected AuthenticationOk");
    }
    scram_client_reset(&lg->scram); /* done with the keys */
    lg->phase = PROTO_PHASE_AUTHENTICATED;
    return PROTO_LOGIN_CONTINUE;
}

static enum proto_login_step on_auth(struct proto_login *lg, const uint8_t *body, uint32_t len)
{
    struct pktreader r;
    pktreader_init(&r, body, len);
    uint32_t code = pktreader_int32(&r);
    if (r.bad)
        return protocol_violation(lg, "malformed authentication request");
    switch (code) {
    case PROTO_AUTH_OK:
        return auth_ok(lg);
    case PROTO_AUTH_SASL_CONTINUE:
        return auth_sasl_continue(lg, &r);
    case PROTO_AUTH_SASL_FINAL:
        return auth_sasl_final(lg, &r);
    default:
        break;
    }
    if (lg->phase != PROTO_PHASE_AUTH)
        return second_request(lg, code);
    switch (code) {
    case PROTO_AUTH_CLEARTEXT:
        return auth_cleartext(lg);
    case PROTO_AUTH_MD5:
        return auth_md5(lg, &r);
    case PROTO_AUTH_SASL:
        return auth_sasl(lg, &r);
    case PROTO_AUTH_GSS:
        if (!(lg->allowed & PROTO_METHOD_GSS))
            return not_allowed(lg, "GSSAPI authentication");
        break;
    case PROTO_AUTH_SSPI:
        if (!(lg->allowed & PROTO_METHOD_SSPI))
            return not_allowed(lg, "SSPI authentication");
        break;
    default:
        break;
    }
    return fail(lg, PROTO_FAIL_NO_METHOD, "28000",
                "unsupported authentication method requested by server (code %u)", code);
}

static enum proto_login_step on_param(struct proto_login *lg, const uint8_t *body, uint32_t len)
{
    if (lg->phase != PROTO_PHASE_AUTHENTICATED)
        return protocol_violation(lg, "server sent ParameterStatus before authentication "
                                      "completed");
    lg->nparams++;
    lg->param_bytes += len;
    if (lg->nparams > PROTO_MAX_LOGIN_PARAMS)
        return fail(lg, PROTO_FAIL_PROTOCOL, "08P01",
                    "server sent more than %u ParameterStatus messages during login",
                    PROTO_MAX_LOGIN_PARAMS);
    if (lg->param_bytes > PROTO_MAX_LOGIN_PARAM_BYTES)
        return fail(lg, PROTO_FAIL_PROTOCOL, "08P01",
                    "server sent more than %u bytes of ParameterStatus during login",
                    PROTO_MAX_LOGIN_PARAM_BYTES);
    struct pktreader r;
    pktreader_init(&r, body, len);
    const char *k = pktreader_string(&r);
    const char *v = pktreader_string(&r);
    if (!k || !v || r.p != r.end)
        return protocol_violation(lg, "malformed ParameterStatus");
    lg->param_name = k;
    lg->param_value = v;
    return PROTO_LOGIN_PARAM;
}

enum proto_login_step proto_login_feed(struct proto_login *lg, uint8_t type, const uint8_t *body,
                                       uint32_t len)
{
    if (lg->phase == PROTO_PHASE_FAILED)
        return PROTO_LOGIN_FAILED;
    reply_clear(lg);
    lg->param_name = lg->param_value = NULL;
    if (lg->phase == PROTO_PHASE_READY)
        return protocol_violation(lg, "login already complete");
    if (++lg->nmsgs > PROTO_MAX_LOGIN_MSGS)
        return fail(lg, PROTO_FAIL_PROTOCOL, "08P01",
                    "server sent more than %u messages during login", PROTO_MAX_LOGIN_MSGS);
    if (len > PROTO_MAX_LOGIN_MSG_LEN)
        return protocol_violation(lg, "server sent an oversized message during login");
    switch (type) {
    case 'R':
        return on_auth(lg, body, len);
    case 'S':
        return on_param(lg, body, len);
    case 'K':
        if (lg->phase != PROTO_PHASE_AUTHENTICATED || len != 8)
            return protocol_violation(lg, "unexpected or malformed BackendKeyData");
        lg->be_pid = pkt_get32(body);
        lg->be_key = pkt_get32(body + 4);
        lg->have_key = true;
        return PROTO_LOGIN_CONTINUE;
    case 'E': {
        struct proto_error e;
        proto_parse_error(body, len, &e);
        enum proto_fail kind =
            proto_sqlstate_is_auth_refusal(e.sqlstate) ? PROTO_FAIL_REFUSED : PROTO_FAIL_SERVER;
        return fail(lg, kind, e.sqlstate, "%s", e.message);
    }
    case 'N': /* a notice: nothing to do */
    case 'v': /* NegotiateProtocolVersion: we ask for 3.0 without options, it only narrows */
        return PROTO_LOGIN_CONTINUE;
    case 'Z':
        if (lg->phase != PROTO_PHASE_AUTHENTICATED)
            return protocol_violation(lg, "server sent ReadyForQuery before authentication "
                                          "completed");
        lg->phase = PROTO_PHASE_READY;
        return PROTO_LOGIN_READY;
    default:
        if (isprint(type))
            return fail(lg, PROTO_FAIL_PROTOCOL, "08P01",
                        "server sent an unexpected message ('%c') during login", type);
        return fail(lg, PROTO_FAIL_PROTOCOL, "08P01",
                    "server sent an unexpected message (0x%02x) during login", type);
    }
}
