/* The login-storm client of test/bench/scale.sh (a bench tool, not a test): N clients connect
 * at once over loopback (epoll, non-blocking), log in (SCRAM-SHA-256, md5, cleartext or trust),
 * run SELECT 1 and leave, cheaply enough that the pooler, not this client, is the bottleneck.
 * It never connects to anything but 127.0.0.0/8 and never runs as part of the product build.
 *
 * usage: swarm --port P --n N --db D --user U [--password PW] [--timeout S] [--host 127.x.y.z]
 *              [--src-first F --src-count C] [--verbose]
 * prints one line, "STORM served=<n> failed=<n> seconds=<from the start until the last client
 * was served>", and exits 0 when none failed. Client i connects from 127.0.0.(F + i % C), so
 * ephemeral ports never run out. The SCRAM salted password (PBKDF2) and the keys derived from it
 * are computed once per (salt, iterations) and reused: the client's key derivation is not what
 * is measured. Passwords are used as given (no SASLprep), as the benchmark's are ASCII.
 *
 * build: cc -O2 -Wall -Wextra -o swarm test/bench/swarm.c -lcrypto
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* A message body larger than this fails its client (nothing a login or SELECT 1 returns comes
 * near it); the input buffer holds one whole message plus the next one's header. */
#define SW_MSG_MAX 16384
#define SW_IN_SIZE (SW_MSG_MAX + 5)
/* Output is a handful of small messages; what the socket does not take at once waits here. */
#define SW_OUT_SIZE 512
#define SW_NONCE_RAW 18 /* client nonce bytes; base64 makes 24 characters */
#define SW_NONCE_LEN 24
#define SW_ERRORS_KEPT 3
#define SW_SALTS_CACHED 8

/* One client's progress; each state says what it waits for. */
enum sw_state {
    SW_CONNECTING,    /* non-blocking connect in flight (EPOLLOUT) */
    SW_AUTH_REQUEST,  /* StartupMessage sent: an authentication request (or AuthOk for trust) */
    SW_SASL_CONTINUE, /* SASLInitialResponse sent: AuthenticationSASLContinue */
    SW_SASL_FINAL,    /* SASLResponse (proof) sent: AuthenticationSASLFinal */
    SW_AUTH_OK,       /* password, md5 or SCRAM done: AuthenticationOk */
    SW_PARAMS,        /* logged in: ParameterStatus, BackendKeyData ... until ReadyForQuery */
    SW_QUERY,         /* SELECT 1 sent: RowDescription, DataRow, CommandComplete, ReadyForQuery */
    SW_SERVED,        /* got its result, sent Terminate, closed */
    SW_FAILED,        /* closed with a reason (counted and maybe kept for stderr) */
    SW_NSTATES
};

static const char *const sw_state_names[SW_NSTATES] = {
    [SW_CONNECTING] = "connecting",
    [SW_AUTH_REQUEST] = "waiting for an auth request",
    [SW_SASL_CONTINUE] = "waiting for SASLContinue",
    [SW_SASL_FINAL] = "waiting for SASLFinal",
    [SW_AUTH_OK] = "waiting for AuthOk",
    [SW_PARAMS] = "waiting for ReadyForQuery",
    [SW_QUERY] = "waiting for the SELECT 1 result",
    [SW_SERVED] = "served",
    [SW_FAILED] = "failed",
};

/* Buffer invariants: in_used <= SW_IN_SIZE holds unparsed input from in[0]; out_used <=
 * SW_OUT_SIZE holds output the socket has not taken yet. The socket is in the epoll set
 * edge-triggered for both directions from the start, so no epoll_ctl per state change: input
 * is read until a short read, output waits for the next EPOLLOUT edge. */
struct sw_conn {
    int fd;
    enum sw_state state;
    unsigned rows;       /* DataRows of SELECT 1 */
    double served_at;    /* seconds since the start */
    bool row_desc, done; /* RowDescription and CommandComplete seen */
    uint32_t in_used, out_used;
    char nonce[SW_NONCE_LEN + 1];
    unsigned char server_sig[32]; /* the SASLFinal we expect */
    unsigned char in[SW_IN_SIZE];
    unsigned char out[SW_OUT_SIZE];
};

/* The keys derived from the password for one (salt, iterations). */
struct sw_salt {
    unsigned char salt[64];
    size_t salt_len;
    long iterations;
    unsigned char client_key[32], stored_key[32], server_key[32];
};

static struct {
    const char *db, *user, *password, *host;
    int port, n, src_first, src_count;
    double timeout;
    bool verbose;
} sw_opt = {.db = "testdb",
            .user = "u_trust",
            .password = "",
            .host = "127.0.0.1",
            .timeout = 60,
            .src_first = 10,
            .src_count = 40};

static struct sw_conn *sw_conns;
static int sw_epoll = -1;
static int sw_open; /* connections not yet served or failed */
static int sw_served, sw_failed;
static double sw_t0, sw_last_served;
static char sw_errors[SW_ERRORS_KEPT][256];
static int sw_nerrors;
static struct sw_salt sw_salts[SW_SALTS_CACHED];
static int sw_nsalts;

static double sw_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sw_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void sw_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("swarm: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

/* The one teardown path of a client: closes it and counts it as served or failed. */
static void sw_close(struct sw_conn *c, enum sw_state final)
{
    if (c->fd >= 0)
        close(c->fd); /* also removes it from the epoll set */
    c->fd = -1;
    c->state = final;
    sw_open--;
    if (final == SW_SERVED) {
        sw_served++;
        c->served_at = sw_last_served = sw_now() - sw_t0;
    } else {
        sw_failed++;
    }
}

static bool sw_fail(struct sw_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool sw_fail(struct sw_conn *c, const char *fmt, ...)
{
    if (sw_nerrors < SW_ERRORS_KEPT) {
        char *e = sw_errors[sw_nerrors++];
        int k = snprintf(e, sizeof sw_errors[0], "client %d (%s): ", (int)(c - sw_conns),
                         sw_state_names[c->state]);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e + k, sizeof sw_errors[0] - (size_t)k, fmt, ap);
        va_end(ap);
    }
    sw_close(c, SW_FAILED);
    return false;
}

/* Sends what is pending; false when the client failed. */
static bool sw_flush(struct sw_conn *c)
{
    while (c->out_used) {
        ssize_t k = send(c->fd, c->out, c->out_used, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EAGAIN || errno == EINTR)
                break;
            return sw_fail(c, "send: %s", strerror(errno));
        }
        memmove(c->out, c->out + k, c->out_used - (size_t)k);
        c->out_used -= (uint32_t)k;
    }
    return true;
}

/* Queues a message (type 0: the untyped StartupMessage) and sends it; false when it failed. */
static bool sw_send(struct sw_conn *c, char type, const void *body, size_t len)
{
    bool was_pending = c->out_used != 0;
    size_t need = (type ? 1 : 0) + 4 + len;
    if (need > SW_OUT_SIZE - c->out_used)
        return sw_fail(c, "output overflow (%zu bytes)", need);
    unsigned char *p = c->out + c->out_used;
    if (type)
        *p++ = (unsigned char)type;
    uint32_t be = htonl((uint32_t)(4 + len));
    memcpy(p, &be, 4);
    memcpy(p + 4, body, len);
    c->out_used += (uint32_t)need;
    return was_pending || sw_flush(c); /* else the next EPOLLOUT edge sends it */
}

static uint32_t sw_be32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return ntohl(v);
}

static bool sw_hmac(const unsigned char *key, size_t klen, const void *data, size_t len,
                    unsigned char out[32])
{
    unsigned int olen = 32;
    return HMAC(EVP_sha256(), key, (int)klen, data, len, out, &olen) != NULL;
}

static bool sw_sha256(const void *data, size_t len, unsigned char out[32])
{
    return EVP_Digest(data, len, out, NULL, EVP_sha256(), NULL) == 1;
}

/* Base64 of len bytes into out (4 * ceil(len / 3) + 1 bytes, NUL-terminated). */
static void sw_b64(const unsigned char *in, size_t len, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

/* Decodes base64 text of len characters into out (cap bytes); the byte count or -1. */
static int sw_unb64(const char *in, size_t len, unsigned char *out, size_t cap)
{
    if (len == 0 || len % 4 || len / 4 * 3 > cap)
        return -1;
    int k = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
    if (k < 0)
        return -1;
    return k - (in[len - 1] == '=') - (in[len - 2] == '=');
}

/* The value of attribute "a=" in a SCRAM message (of len bytes); its length in *vlen. */
static const char *sw_scram_attr(const char *msg, size_t len, char a, size_t *vlen)
{
    const char *p = msg, *end = msg + len;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        if (stop - p >= 2 && p[0] == a && p[1] == '=') {
            *vlen = (size_t)(stop - p - 2);
            return p + 2;
        }
        p = stop + 1;
    }
    return NULL;
}

/* The cached keys for (salt, iterations), derived on first use. */
static const struct sw_salt *sw_salt_keys(const unsigned char *salt, size_t salt_len, long iter)
{
    for (int i = 0; i < sw_nsalts; i++)
        if (sw_salts[i].iterations == iter && sw_salts[i].salt_len == salt_len &&
            memcmp(sw_salts[i].salt, salt, salt_len) == 0)
            return &sw_salts[i];
    struct sw_salt *s = &sw_salts[sw_nsalts < SW_SALTS_CACHED ? sw_nsalts++ : 0];
    unsigned char salted[32];
    if (salt_len > sizeof s->salt ||
        PKCS5_PBKDF2_HMAC(sw_opt.password, (int)strlen(sw_opt.password), salt, (int)salt_len,
                          (int)iter, EVP_sha256(), 32, salted) != 1 ||
        !sw_hmac(salted, 32, "Client Key", 10, s->client_key) ||
        !sw_hmac(salted, 32, "Server Key", 10, s->server_key) ||
        !sw_sha256(s->client_key, 32, s->stored_key))
        return NULL;
    memcpy(s->salt, salt, salt_len);
    s->salt_len = salt_len;
    s->iterations = iter;
    return s;
}

static bool sw_send_query(struct sw_conn *c)
{
    c->state = SW_QUERY;
    return sw_send(c, 'Q', "SELECT 1", 9);
}

/* The handlers, one per state: a message of type t with body b of len bytes; false when the
 * client failed (it is closed then). ErrorResponse and NoticeResponse never reach them. */
typedef bool sw_handler(struct sw_conn *c, char t, const unsigned char *b, uint32_t len);

static bool sw_sasl_start(struct sw_conn *c, const unsigned char *b, uint32_t len)
{
    /* the mechanism list: NUL-terminated names, an empty one last */
    bool offered = false;
    for (uint32_t i = 4; i < len && b[i];) {
        size_t k = strnlen((const char *)b + i, len - i);
        if (k == 13 && memcmp(b + i, "SCRAM-SHA-256", 13) == 0)
            offered = true;
        i += (uint32_t)k + 1;
    }
    if (!offered)
        return sw_fail(c, "SCRAM-SHA-256 not offered");
    unsigned char raw[SW_NONCE_RAW];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return sw_fail(c, "RAND_bytes failed");
    sw_b64(raw, sizeof raw, c->nonce);
    char msg[128];
    int first = snprintf(msg + 18, sizeof msg - 18, "n,,n=,r=%s", c->nonce);
    memcpy(msg, "SCRAM-SHA-256", 14);
    uint32_t be = htonl((uint32_t)first);
    memcpy(msg + 14, &be, 4);
    c->state = SW_SASL_CONTINUE;
    return sw_send(c, 'p', msg, 18 + (size_t)first);
}

static bool sw_md5_hex(const void *a, size_t alen, const void *b, size_t blen, char out[33])
{
    unsigned char d[16];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 &&
              EVP_DigestUpdate(ctx, a, alen) == 1 && EVP_DigestUpdate(ctx, b, blen) == 1 &&
              EVP_DigestFinal_ex(ctx, d, NULL) == 1;
    EVP_MD_CTX_free(ctx);
    for (int i = 0; ok && i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
    return ok;
}

static bool sw_on_auth_request(struct sw_conn *c, char t, const unsigned char *b, uint32_t len)
{
    if (t != 'R' || len < 4)
        return sw_fail(c, "unexpected message '%c'", t);
    uint32_t code = sw_be32(b);
    switch (code) {
    case 0: /* trust */
        c->state = SW_PARAMS;
        return true;
    case 3: /* cleartext */
        c->state = SW_AUTH_OK;
        return sw_send(c, 'p', sw_opt.password, strlen(sw_opt.password) + 1);
    case 5: { /* md5: "md5" + md5(md5(password user) salt) */
        if (len != 8)
            return sw_fail(c, "bad AuthenticationMD5Password");
        char inner[33], outer[36];
        memcpy(outer, "md5", 3);
        if (!sw_md5_hex(sw_opt.password, strlen(sw_opt.password), sw_opt.user, strlen(sw_opt.user),
                        inner) ||
            !sw_md5_hex(inner, 32, b + 4, 4, outer + 3))
            return sw_fail(c, "md5 failed");
        c->state = SW_AUTH_OK;
        return sw_send(c, 'p', outer, 36);
    }
    case 10:
        return sw_sasl_start(c, b, len);
    default:
        return sw_fail(c, "authentication request %u not supported", code);
    }
}

static bool sw_on_sasl_continue(struct sw_conn *c, char t, const unsigned char *b, uint32_t len)
{
    if (t != 'R' || len < 4 || sw_be32(b) != 11)
        return sw_fail(c, "expected SASLContinue, got '%c'", t);
    const char *sf = (const char *)b + 4;
    size_t sflen = len - 4, rlen, slen, ilen;
    const char *r = sw_scram_attr(sf, sflen, 'r', &rlen);
    const char *s = sw_scram_attr(sf, sflen, 's', &slen);
    const char *i = sw_scram_attr(sf, sflen, 'i', &ilen);
    if (!r || !s || !i || ilen == 0 || ilen > 9 || rlen <= SW_NONCE_LEN || rlen > 200 ||
        memcmp(r, c->nonce, SW_NONCE_LEN) != 0)
        return sw_fail(c, "bad server-first-message");
    char digits[10];
    memcpy(digits, i, ilen);
    digits[ilen] = 0;
    char *end;
    long iter = strtol(digits, &end, 10);
    unsigned char salt[64];
    int salt_len = sw_unb64(s, slen, salt, sizeof salt);
    if (*end || iter < 1 || salt_len < 1)
        return sw_fail(c, "bad salt or iteration count");
    const struct sw_salt *keys = sw_salt_keys(salt, (size_t)salt_len, iter);
    if (!keys)
        return sw_fail(c, "key derivation failed");

    /* AuthMessage = client-first-bare "," server-first "," client-final-without-proof */
    char auth[512], final[300];
    int flen = snprintf(final, sizeof final, "c=biws,r=%.*s", (int)rlen, r);
    int alen = snprintf(auth, sizeof auth, "n=,r=%s,%.*s,%s", c->nonce, (int)sflen, sf, final);
    if (alen < 0 || (size_t)alen >= sizeof auth)
        return sw_fail(c, "server-first-message too long");
    unsigned char sig[32], proof[32];
    if (!sw_hmac(keys->stored_key, 32, auth, (size_t)alen, sig) ||
        !sw_hmac(keys->server_key, 32, auth, (size_t)alen, c->server_sig))
        return sw_fail(c, "HMAC failed");
    for (int k = 0; k < 32; k++)
        proof[k] = keys->client_key[k] ^ sig[k];
    memcpy(final + flen, ",p=", 3);
    sw_b64(proof, 32, final + flen + 3);
    c->state = SW_SASL_FINAL;
    return sw_send(c, 'p', final, (size_t)flen + 3 + 44);
}

static bool sw_on_sasl_final(struct sw_conn *c, char t, const unsigned char *b, uint32_t len)
{
    if (t != 'R' || len < 4 || sw_be32(b) != 12)
        return sw_fail(c, "expected SASLFinal, got '%c'", t);
    size_t vlen;
    const char *v = sw_scram_attr((const char *)b + 4, len - 4, 'v', &vlen);
    unsigned char sig[33];
    if (!v || sw_unb64(v, vlen, sig, sizeof sig) != 32 || memcmp(sig, c->server_sig, 32) != 0)
        return sw_fail(c, "server signature does not verify");
    c->state = SW_AUTH_OK;
    return true;
}

static bool sw_on_auth_ok(struct sw_conn *c, char t, const unsigned char *b, uint32_t len)
{
    if (t != 'R' || len < 4 || sw_be32(b) != 0)
        return sw_fail(c, "expected AuthenticationOk, got '%c'", t);
    c->state = SW_PARAMS;
    return true;
}

static bool sw_on_params(struct sw_conn *c, char t, const unsigned char *b, uint32_t len)
{
    (void)b, (void)len;
    switch (t) {
    case 'S': /* ParameterStatus */
    case 'K': /* BackendKeyData */
    case 'v': /* NegotiateProtocolVersion */
        return true;
    case 'Z':
        return sw_send_query(c);
    default:
        return sw_fail(c, "unexpected message '%c' before ReadyForQuery", t);
    }
}

static bool sw_on_query(struct sw_conn *c, char t, const unsigned char *b, uint32_t len)
{
    (void)b, (void)len;
    switch (t) {
    case 'T':
        c->row_desc = true;
        return true;
    case 'D':
        c->rows++;
        return true;
    case 'C':
        c->done = true;
        return true;
    case 'S':
        return true;
    case 'Z':
        if (!c->row_desc || c->rows != 1 || !c->done)
            return sw_fail(c, "SELECT 1 gave %u rows", c->rows);
        /* Terminate, best effort: the client is served either way */
        (void)!send(c->fd, "X\0\0\0\4", 5, MSG_NOSIGNAL | MSG_DONTWAIT);
        sw_close(c, SW_SERVED);
        return false; /* closed: stop parsing */
    default:
        return sw_fail(c, "unexpected message '%c' after SELECT 1", t);
    }
}

static sw_handler *const sw_handlers[SW_NSTATES] = {
    [SW_AUTH_REQUEST] = sw_on_auth_request,
    [SW_SASL_CONTINUE] = sw_on_sasl_continue,
    [SW_SASL_FINAL] = sw_on_sasl_final,
    [SW_AUTH_OK] = sw_on_auth_ok,
    [SW_PARAMS] = sw_on_params,
    [SW_QUERY] = sw_on_query,
};

/* ErrorResponse's severity, SQLSTATE and message fields, as one line. */
static void sw_error_text(const unsigned char *b, uint32_t len, char *out, size_t cap)
{
    static const char keys[] = "SCM"; /* severity, SQLSTATE, message */
    const char *field[3] = {"", "", ""};
    int flen[3] = {0, 0, 0};
    for (uint32_t i = 0; i + 1 < len && b[i];) {
        const char *v = (const char *)b + i + 1;
        size_t k = strnlen(v, len - i - 1);
        const char *which = strchr(keys, (char)b[i]);
        if (which) {
            field[which - keys] = v;
            flen[which - keys] = (int)(k < 150 ? k : 150);
        }
        i += (uint32_t)k + 2;
    }
    snprintf(out, cap, "%.*s %.*s %.*s", flen[0], field[0], flen[1], field[1], flen[2], field[2]);
}

/* Parses the whole messages in c->in and dispatches them; false when the client is closed. */
static bool sw_parse(struct sw_conn *c)
{
    uint32_t at = 0;
    while (c->in_used - at >= 5) {
        char t = (char)c->in[at];
        uint32_t len = sw_be32(c->in + at + 1);
        if (len < 4 || len - 4 > SW_MSG_MAX)
            return sw_fail(c, "message '%c' of %u bytes", t, len);
        if (c->in_used - at < 1 + len)
            break;
        const unsigned char *b = c->in + at + 5;
        at += 1 + len;
        if (t == 'E') {
            char e[200];
            sw_error_text(b, len - 4, e, sizeof e);
            return sw_fail(c, "ErrorResponse: %s", e);
        }
        if (t == 'N')
            continue;
        if (!sw_handlers[c->state](c, t, b, len - 4))
            return false;
    }
    memmove(c->in, c->in + at, c->in_used - at);
    c->in_used -= at;
    return true;
}

/* Reads until a short read (the socket is drained: edge-triggered) or the client is closed. */
static void sw_on_readable(struct sw_conn *c)
{
    for (;;) {
        size_t room = SW_IN_SIZE - c->in_used;
        ssize_t k = recv(c->fd, c->in + c->in_used, room, 0);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                sw_fail(c, "recv: %s", strerror(errno));
            return;
        }
        if (k == 0) {
            sw_fail(c, "server closed the connection");
            return;
        }
        c->in_used += (uint32_t)k;
        if (!sw_parse(c) || (size_t)k < room)
            return;
    }
}

/* The connect finished (EPOLLOUT, or EPOLLERR if it failed): send the StartupMessage. */
static void sw_on_connected(struct sw_conn *c, uint32_t events)
{
    if (events & (EPOLLERR | EPOLLHUP)) {
        int err = 0;
        socklen_t elen = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
            err = errno;
        sw_fail(c, "connect: %s", strerror(err ? err : ECONNRESET));
        return;
    }
    /* StartupMessage: protocol 3.0, user, database */
    char body[600];
    int k = snprintf(body + 4, sizeof body - 4, "user%c%s%cdatabase%c%s%c", 0, sw_opt.user, 0, 0,
                     sw_opt.db, 0);
    uint32_t proto = htonl(196608);
    memcpy(body, &proto, 4);
    body[4 + k] = 0;
    c->state = SW_AUTH_REQUEST;
    sw_send(c, 0, body, 4 + (size_t)k + 1);
}

static void sw_on_event(struct sw_conn *c, uint32_t events)
{
    if (c->state == SW_CONNECTING) {
        sw_on_connected(c, events);
        return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        sw_on_readable(c);
        if (c->fd < 0)
            return;
    }
    if ((events & EPOLLOUT) && c->out_used)
        sw_flush(c);
}

static void sw_connect(struct sw_conn *c, int i, const struct sockaddr_in *dst)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        sw_fail(c, "socket: %s", strerror(errno));
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    struct sockaddr_in src = {.sin_family = AF_INET};
    src.sin_addr.s_addr = htonl(0x7f000000u | (uint32_t)(sw_opt.src_first + i % sw_opt.src_count));
    if (bind(c->fd, (const struct sockaddr *)&src, sizeof src) < 0) {
        sw_fail(c, "bind: %s", strerror(errno));
        return;
    }
    if (connect(c->fd, (const struct sockaddr *)dst, sizeof *dst) < 0 && errno != EINPROGRESS) {
        sw_fail(c, "connect: %s", strerror(errno));
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.u32 = (uint32_t)i};
    if (epoll_ctl(sw_epoll, EPOLL_CTL_ADD, c->fd, &ev) < 0)
        sw_die("epoll_ctl: %s", strerror(errno));
}

static int sw_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* --verbose: the client's own CPU per client and when clients were served (to stderr). */
static void sw_report(const struct rusage *ru0, double connected)
{
    struct rusage ru1;
    getrusage(RUSAGE_SELF, &ru1);
    double user = (ru1.ru_utime.tv_sec - ru0->ru_utime.tv_sec) * 1e6 +
                  (ru1.ru_utime.tv_usec - ru0->ru_utime.tv_usec);
    double sys = (ru1.ru_stime.tv_sec - ru0->ru_stime.tv_sec) * 1e6 +
                 (ru1.ru_stime.tv_usec - ru0->ru_stime.tv_usec);
    fprintf(stderr,
            "swarm: %d connects issued in %.3f s; client CPU %.1f us per client (user %.1f, "
            "sys %.1f); %d salt(s) derived\n",
            sw_opt.n, connected, (user + sys) / sw_opt.n, user / sw_opt.n, sys / sw_opt.n,
            sw_nsalts);
    double *t = calloc((size_t)sw_served + 1, sizeof *t);
    int k = 0;
    for (int i = 0; t && i < sw_opt.n; i++)
        if (sw_conns[i].state == SW_SERVED)
            t[k++] = sw_conns[i].served_at;
    if (t && k) {
        qsort(t, (size_t)k, sizeof *t, sw_cmp_double);
        fprintf(stderr,
                "swarm: served after (s): first %.3f, 10%% %.3f, 50%% %.3f, 90%% %.3f, last %.3f\n",
                t[0], t[k / 10], t[k / 2], t[k * 9 / 10], t[k - 1]);
    }
    free(t);
}

static long sw_int_arg(const char *name, const char *v, long lo, long hi)
{
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < lo || x > hi)
        sw_die("%s must be an integer in %ld..%ld", name, lo, hi);
    return x;
}

static void sw_parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--verbose") == 0) {
            sw_opt.verbose = true;
            continue;
        }
        if (i + 1 >= argc)
            sw_die("%s needs a value", a);
        const char *v = argv[++i];
        if (strcmp(a, "--port") == 0)
            sw_opt.port = (int)sw_int_arg(a, v, 1, 65535);
        else if (strcmp(a, "--n") == 0)
            sw_opt.n = (int)sw_int_arg(a, v, 1, 1000000);
        else if (strcmp(a, "--db") == 0)
            sw_opt.db = v;
        else if (strcmp(a, "--user") == 0)
            sw_opt.user = v;
        else if (strcmp(a, "--password") == 0)
            sw_opt.password = v;
        else if (strcmp(a, "--host") == 0)
            sw_opt.host = v;
        else if (strcmp(a, "--timeout") == 0)
            sw_opt.timeout = (double)sw_int_arg(a, v, 1, 3600);
        else if (strcmp(a, "--src-first") == 0)
            sw_opt.src_first = (int)sw_int_arg(a, v, 1, 254);
        else if (strcmp(a, "--src-count") == 0)
            sw_opt.src_count = (int)sw_int_arg(a, v, 1, 254);
        else
            sw_die("unknown option %s", a);
    }
    if (!sw_opt.port || !sw_opt.n)
        sw_die("usage: swarm --port P --n N [--db D] [--user U] [--password PW] [--timeout S] "
               "[--host 127.x.y.z] [--src-first F --src-count C] [--verbose]");
    if (sw_opt.src_first + sw_opt.src_count - 1 > 254)
        sw_die("source addresses 127.0.0.%d.. go past 127.0.0.254", sw_opt.src_first);
    if (strlen(sw_opt.user) > 200 || strlen(sw_opt.db) > 200 || strlen(sw_opt.password) > 200)
        sw_die("user, database and password are at most 200 bytes");
}

int main(int argc, char **argv)
{
    sw_parse_args(argc, argv);
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)sw_opt.port)};
    if (inet_pton(AF_INET, sw_opt.host, &dst.sin_addr) != 1 ||
        (ntohl(dst.sin_addr.s_addr) >> 24) != 127)
        sw_die("--host must be a loopback address 127.x.y.z, not %s", sw_opt.host);
    signal(SIGPIPE, SIG_IGN);

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (rlim_t)sw_opt.n + 16 > rl.rlim_cur)
        sw_die("%d clients need more file descriptors than the limit of %lu", sw_opt.n,
               (unsigned long)rl.rlim_cur);

    sw_conns = calloc((size_t)sw_opt.n, sizeof *sw_conns);
    struct epoll_event *evs = calloc(1024, sizeof *evs);
    sw_epoll = epoll_create1(EPOLL_CLOEXEC);
    if (!sw_conns || !evs || sw_epoll < 0)
        sw_die("out of memory or epoll_create1 failed");
    struct rusage ru0;
    getrusage(RUSAGE_SELF, &ru0);

    sw_t0 = sw_now();
    double deadline = sw_t0 + sw_opt.timeout;
    sw_open = sw_opt.n;
    for (int i = 0; i < sw_opt.n; i++) {
        sw_conns[i].state = SW_CONNECTING;
        sw_connect(&sw_conns[i], i, &dst);
    }
    double connected = sw_now() - sw_t0;
    while (sw_open > 0) {
        double left = deadline - sw_now();
        if (left <= 0)
            break;
        int k = epoll_wait(sw_epoll, evs, 1024, (int)(left * 1000) + 1);
        if (k < 0 && errno != EINTR)
            sw_die("epoll_wait: %s", strerror(errno));
        for (int j = 0; j < k; j++) {
            struct sw_conn *c = &sw_conns[evs[j].data.u32];
            if (c->fd >= 0) /* events of a client closed earlier in this batch are stale */
                sw_on_event(c, evs[j].events);
        }
    }

    /* Whoever is still open at the deadline failed; say where they were stuck. */
    int stuck[SW_NSTATES] = {0};
    for (int i = 0; i < sw_opt.n; i++)
        if (sw_conns[i].fd >= 0) {
            stuck[sw_conns[i].state]++;
            close(sw_conns[i].fd);
            sw_conns[i].fd = -1;
            sw_failed++;
        }
    for (int s = 0; s < SW_NSTATES; s++)
        if (stuck[s])
            fprintf(stderr, "swarm: timeout after %.0f s: %d clients %s\n", sw_opt.timeout,
                    stuck[s], sw_state_names[s]);
    for (int e = 0; e < sw_nerrors; e++)
        fprintf(stderr, "swarm: %s\n", sw_errors[e]);
    if (sw_opt.verbose)
        sw_report(&ru0, connected);
    printf("STORM served=%d failed=%d seconds=%.3f\n", sw_served, sw_failed, sw_last_served);
    fflush(stdout);
    close(sw_epoll);
    free(evs);
    free(sw_conns);
    return sw_failed == 0 ? 0 : 1;
}
