/*
 * tls.c: OpenSSL contexts from the client_tls_* / server_tls_* settings (the two in force are
 * this file's only global state, with the generation of the server one) and the per-connection
 * engine over memory BIOs.
 * Never does socket I/O and never blocks: stream.c moves the ciphertext.
 */
#include "pgusher/tls.h"

#include "pgusher/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

struct tls_ctx {
    SSL_CTX *ssl;
    enum tls_mode mode;
    bool accept;
    unsigned refs;
};

/* Ciphertext buffers (see "ciphertext BIO" below). Input: [in, in + in_len) is the caller's
 * buffer, borrowed between tls_conn_feed and tls_conn_feed_end; what TLS has not consumed by
 * then is kept in hold[hold_off, hold_len). Output: out[0, out_len) waits for tls_conn_out. */
struct tls_conn {
    SSL *ssl;
    BIO *bio; /* read and write side, owned by ssl */
    struct tls_ctx *ctx;
    const uint8_t *in;
    size_t in_len;
    uint8_t *hold;
    size_t hold_off, hold_len, hold_cap;
    uint8_t *out;
    size_t out_len, out_cap;
    bool closed;
    char err[200];
};

static struct tls_ctx *cur_accept, *cur_connect;
/* The server-side settings cur_connect was built from (server_settings_sig), and its
 * generation: bumped only when a tls_apply really changes them, so that a RELOAD that leaves
 * server TLS alone keeps cur_connect and makes no server connection or probe obsolete. */
static char connect_sig[2048];
static uint64_t connect_gen;

/* ---------------------------------------------------------------- setting values */

static const char *const mode_names[] = {"disable", "allow",     "prefer",
                                         "require", "verify-ca", "verify-full"};

bool tls_parse_mode(const char *s, enum tls_mode *out)
{
    for (size_t i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++) {
        if (strcasecmp(s, mode_names[i]) == 0) {
            *out = (enum tls_mode)i;
            return true;
        }
    }
    return false;
}

static const struct {
    const char *name;
    unsigned mask;
} proto_words[] = {
    {"all", TLS_PROTO_1_0 | TLS_PROTO_1_1 | TLS_PROTO_1_2 | TLS_PROTO_1_3},
    {"legacy", TLS_PROTO_1_0 | TLS_PROTO_1_1 | TLS_PROTO_1_2 | TLS_PROTO_1_3},
    {"secure", TLS_PROTO_1_2 | TLS_PROTO_1_3},
    {"default", TLS_PROTO_1_2 | TLS_PROTO_1_3},
    {"tlsv1", TLS_PROTO_1_0},
    {"tlsv1.0", TLS_PROTO_1_0},
    {"tlsv1.1", TLS_PROTO_1_1},
    {"tlsv1.2", TLS_PROTO_1_2},
    {"tlsv1.3", TLS_PROTO_1_3},
};

bool tls_parse_protocols(const char *s, unsigned *mask, char *err, size_t errlen)
{
    unsigned m = 0;
    bool any = false;
    const char *p = s;
    while (*p) {
        size_t n = strcspn(p, ",: \t");
        if (n == 0) {
            p++;
            continue;
        }
        bool neg = (*p == '!' || *p == '-');
        const char *w = p + neg;
        size_t wl = n - neg;
        unsigned bits = 0;
        for (size_t i = 0; i < sizeof(proto_words) / sizeof(proto_words[0]); i++) {
            if (strlen(proto_words[i].name) == wl && strncasecmp(w, proto_words[i].name, wl) == 0)
                bits = proto_words[i].mask;
        }
        if (!bits) {
            snprintf(err, errlen,
                     "unknown protocol \"%.*s\" (expected secure, all, legacy or "
                     "tlsv1.0, tlsv1.1, tlsv1.2, tlsv1.3)",
                     (int)n, p);
            return false;
        }
        m = neg ? (m & ~bits) : (m | bits);
        any = true;
        p += n;
    }
    if (!any || m == 0) {
        snprintf(err, errlen, "no protocol version left");
        return false;
    }
    *mask = m;
    return true;
}

/* PgBouncer 1.25: these keep OpenSSL's system-wide defaults. */
static bool ciphers_are_default(const char *s)
{
    static const char *const words[] = {"", "default", "secure", "fast", "normal"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (strcasecmp(s, words[i]) == 0)
            return true;
    }
    return false;
}

static const char *cipher_list(const char *s)
{
    return strcasecmp(s, "all") == 0 ? "ALL" : s;
}

/* Take OpenSSL's queued error as text and clear the queue. */
static void ossl_reason(char *buf, size_t len, const char *fallback)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    snprintf(buf, len, "%s", r ? r : fallback);
    ERR_clear_error();
}

bool tls_check_ciphers(const char *s, char *err, size_t errlen)
{
    if (ciphers_are_default(s))
        return true;
    SSL_CTX *c = SSL_CTX_new(TLS_method());
    if (!c) {
        ossl_reason(err, errlen, "cannot create an SSL context");
        return false;
    }
    bool ok = SSL_CTX_set_cipher_list(c, cipher_list(s)) == 1;
    if (!ok)
        ossl_reason(err, errlen, "no cipher match");
    SSL_CTX_free(c);
    return ok;
}

static const char *const tls13_suites[] = {
    "TLS_AES_256_GCM_SHA384",   "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256",
    "TLS_AES_128_CCM_8_SHA256", "TLS_AES_128_CCM_SHA256",
};

/* OpenSSL silently skips unknown TLS 1.3 names, so they are checked here. */
bool tls_check_tls13_ciphers(const char *s, char *err, size_t errlen)
{
    const char *p = s;
    while (*p) {
        size_t n = strcspn(p, ":, ");
        if (n == 0) {
            p++;
            continue;
        }
        bool known = false;
        for (size_t i = 0; i < sizeof(tls13_suites) / sizeof(tls13_suites[0]); i++) {
            if (strlen(tls13_suites[i]) == n && strncmp(p, tls13_suites[i], n) == 0)
                known = true;
        }
        if (!known) {
            snprintf(err, errlen, "unknown TLS 1.3 cipher suite \"%.*s\"", (int)n, p);
            return false;
        }
        p += n;
    }
    return true;
}

static bool curve_is_auto(const char *s)
{
    return *s == '\0' || strcasecmp(s, "auto") == 0 || strcasecmp(s, "none") == 0;
}

bool tls_check_ecdhcurve(const char *s, char *err, size_t errlen)
{
    if (curve_is_auto(s))
        return true;
    SSL_CTX *c = SSL_CTX_new(TLS_method());
    if (!c) {
        ossl_reason(err, errlen, "cannot create an SSL context");
        return false;
    }
    bool ok = SSL_CTX_set1_groups_list(c, s) == 1;
    if (!ok) {
        ERR_clear_error();
        snprintf(err, errlen, "unknown curve \"%s\"", s);
    }
    SSL_CTX_free(c);
    return ok;
}

bool tls_check_dheparams(const char *s, char *err, size_t errlen)
{
    if (strcasecmp(s, "none") == 0 || strcasecmp(s, "auto") == 0 || strcasecmp(s, "legacy") == 0)
        return true;
    snprintf(err, errlen, "expected none, auto or legacy");
    return false;
}

/* ---------------------------------------------------------------- contexts */

struct tls_ctx *tls_ctx_ref(struct tls_ctx *c)
{
    if (c)
        c->refs++;
    return c;
}

void tls_ctx_unref(struct tls_ctx *c)
{
    if (!c || --c->refs > 0)
        return;
    SSL_CTX_free(c->ssl);
    free(c);
}

enum tls_mode tls_ctx_mode(const struct tls_ctx *c)
{
    return c ? c->mode : TLS_DISABLE;
}

bool tls_ctx_is_accept(const struct tls_ctx *c)
{
    return c && c->accept;
}

/* One side's settings, with their names for error messages. */
struct side_cf {
    const char *prefix, *tls13_name; /* "client_tls", "client_tls13_ciphers" */
    const char *sslmode, *key, *cert, *ca, *protocols, *ciphers, *tls13, *ecdhcurve, *dheparams;
};

static const char *nz(const char *s)
{
    return s ? s : "";
}

static bool file_readable(const struct side_cf *sc, const char *what, const char *path, char *err,
                          size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        int e = errno;
        snprintf(err, errlen, "%s_%s %s: %s", sc->prefix, what, path,
                 e == ENOENT ? "no such file" : strerror(e));
        return false;
    }
    fclose(f);
    return true;
}

static bool set_protocols(SSL_CTX *c, const struct side_cf *sc, char *err, size_t errlen)
{
    unsigned mask;
    char why[160];
    if (!tls_parse_protocols(nz(sc->protocols), &mask, why, sizeof(why))) {
        snprintf(err, errlen, "%s_protocols \"%s\": %s", sc->prefix, nz(sc->protocols), why);
        return false;
    }
    static const struct {
        unsigned bit;
        int version;
        uint64_t no_op;
    } v[] = {
        {TLS_PROTO_1_0, TLS1_VERSION, SSL_OP_NO_TLSv1},
        {TLS_PROTO_1_1, TLS1_1_VERSION, SSL_OP_NO_TLSv1_1},
        {TLS_PROTO_1_2, TLS1_2_VERSION, SSL_OP_NO_TLSv1_2},
        {TLS_PROTO_1_3, TLS1_3_VERSION, SSL_OP_NO_TLSv1_3},
    };
    int lo = 0, hi = 0;
    uint64_t holes = 0;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        if (mask & v[i].bit) {
            if (!lo)
                lo = v[i].version;
            hi = v[i].version;
        }
    }
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        if (!(mask & v[i].bit) && v[i].version > lo && v[i].version < hi)
            holes |= v[i].no_op;
    }
    SSL_CTX_set_min_proto_version(c, lo);
    SSL_CTX_set_max_proto_version(c, hi);
    if (holes)
        SSL_CTX_set_options(c, holes);
    return true;
}

static bool set_ciphers(SSL_CTX *c, const struct side_cf *sc, char *err, size_t errlen)
{
    const char *ciphers = nz(sc->ciphers);
    if (!ciphers_are_default(ciphers) && SSL_CTX_set_cipher_list(c, cipher_list(ciphers)) != 1) {
        char why[120];
        ossl_reason(why, sizeof(why), "no cipher match");
        snprintf(err, errlen, "%s_ciphers \"%s\": %s", sc->prefix, ciphers, why);
        return false;
    }
    const char *t13 = nz(sc->tls13);
    if (*t13) {
        char why[120];
        if (!tls_check_tls13_ciphers(t13, why, sizeof(why))) {
            snprintf(err, errlen, "%s \"%s\": %s", sc->tls13_name, t13, why);
            return false;
        }
        if (SSL_CTX_set_ciphersuites(c, t13) != 1) {
            ossl_reason(why, sizeof(why), "no cipher match");
            snprintf(err, errlen, "%s \"%s\": %s", sc->tls13_name, t13, why);
            return false;
        }
    }
    return true;
}

static bool set_key_pair(SSL_CTX *c, const struct side_cf *sc, char *err, size_t errlen)
{
    const char *key = nz(sc->key), *cert = nz(sc->cert);
    char why[120];
    if (!*key && !*cert)
        return true;
    if (!*key || !*cert) {
        snprintf(err, errlen, "%s_key_file and %s_cert_file must be set together", sc->prefix,
                 sc->prefix);
        return false;
    }
    if (!file_readable(sc, "cert_file", cert, err, errlen) ||
        !file_readable(sc, "key_file", key, err, errlen))
        return false;
    if (SSL_CTX_use_certificate_chain_file(c, cert) != 1) {
        ossl_reason(why, sizeof(why), "cannot load the certificate");
        snprintf(err, errlen, "%s_cert_file %s: %s", sc->prefix, cert, why);
        return false;
    }
    if (SSL_CTX_use_PrivateKey_file(c, key, SSL_FILETYPE_PEM) != 1) {
        if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH)
            snprintf(why, sizeof(why), "key does not match certificate %s", cert);
        else
            ossl_reason(why, sizeof(why), "cannot load the key");
        ERR_clear_error();
        snprintf(err, errlen, "%s_key_file %s: %s", sc->prefix, key, why);
        return false;
    }
    if (SSL_CTX_check_private_key(c) != 1) {
        ERR_clear_error();
        snprintf(err, errlen, "%s_key_file %s: key does not match certificate %s", sc->prefix, key,
                 cert);
        return false;
    }
    return true;
}

static bool set_ca(SSL_CTX *c, const struct side_cf *sc, bool accept, enum tls_mode mode, char *err,
                   size_t errlen)
{
    const char *ca = nz(sc->ca);
    char why[120];
    if (!*ca) {
        if (mode < TLS_VERIFY_CA)
            return true;
        if (accept) {
            snprintf(err, errlen, "%s_sslmode %s needs %s_ca_file", sc->prefix, mode_names[mode],
                     sc->prefix);
            return false;
        }
        SSL_CTX_set_default_verify_paths(c);
        return true;
    }
    if (!file_readable(sc, "ca_file", ca, err, errlen))
        return false;
    if (SSL_CTX_load_verify_locations(c, ca, NULL) != 1) {
        ossl_reason(why, sizeof(why), "cannot load the CA file");
        snprintf(err, errlen, "%s_ca_file %s: %s", sc->prefix, ca, why);
        return false;
    }
    if (accept && mode >= TLS_VERIFY_CA) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca);
        if (names)
            SSL_CTX_set_client_CA_list(c, names);
        ERR_clear_error();
    }
    return true;
}

/* client_tls_dheparams: auto lets OpenSSL pick by key size (2048 bits or more); legacy
 * offers 1024-bit groups as well; none disables DHE. */
static bool set_dh(SSL_CTX *c, const struct side_cf *sc, char *err, size_t errlen)
{
    const char *d = nz(sc->dheparams);
    char why[80];
    if (!tls_check_dheparams(d, why, sizeof(why))) {
        snprintf(err, errlen, "%s_dheparams \"%s\": %s", sc->prefix, d, why);
        return false;
    }
    if (strcasecmp(d, "none") == 0)
        return true;
    SSL_CTX_set_dh_auto(c, 1);
    if (strcasecmp(d, "legacy") == 0)
        SSL_CTX_set_security_level(c, 1);
    return true;
}

static bool set_curve(SSL_CTX *c, const struct side_cf *sc, char *err, size_t errlen)
{
    const char *e = nz(sc->ecdhcurve);
    if (curve_is_auto(e))
        return true;
    if (SSL_CTX_set1_groups_list(c, e) != 1) {
        ERR_clear_error();
        snprintf(err, errlen, "%s_ecdhcurve \"%s\": unknown curve", sc->prefix, e);
        return false;
    }
    return true;
}

static struct tls_ctx *build_side(const struct side_cf *sc, bool accept, char *err, size_t errlen)
{
    enum tls_mode mode;
    if (!tls_parse_mode(nz(sc->sslmode), &mode)) {
        snprintf(err, errlen, "%s_sslmode \"%s\": unknown mode", sc->prefix, nz(sc->sslmode));
        return NULL;
    }
    struct tls_ctx *t = calloc(1, sizeof(*t));
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->mode = mode;
    t->accept = accept;
    t->refs = 1;
    t->ssl = SSL_CTX_new(accept ? TLS_server_method() : TLS_client_method());
    if (!t->ssl) {
        ossl_reason(err, errlen, "cannot create an SSL context");
        goto fail;
    }
    if (accept && (!*nz(sc->key) || !*nz(sc->cert))) {
        snprintf(err, errlen, "%s_sslmode %s needs %s_key_file and %s_cert_file", sc->prefix,
                 mode_names[mode], sc->prefix, sc->prefix);
        goto fail;
    }
    if (!set_protocols(t->ssl, sc, err, errlen) || !set_ciphers(t->ssl, sc, err, errlen) ||
        !set_key_pair(t->ssl, sc, err, errlen) || !set_ca(t->ssl, sc, accept, mode, err, errlen))
        goto fail;
    if (accept && (!set_dh(t->ssl, sc, err, errlen) || !set_curve(t->ssl, sc, err, errlen)))
        goto fail;
    /* No renegotiation (a cheap CPU attack). */
    SSL_CTX_set_options(t->ssl, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    /* Performance (tls-bench), record buffers: client connections (thousands, mostly idle)
     * give theirs back whenever they are empty; server connections (bounded by the pool sizes,
     * and busy) keep theirs, sparing a malloc and free of ~17 kB per record. */
    if (accept)
        SSL_CTX_set_mode(t->ssl, SSL_MODE_RELEASE_BUFFERS);
    /* Performance (tls-bench), session resumption for clients that reconnect: stateless
     * tickets (OpenSSL's default; their key belongs to the context, so after a RELOAD a client
     * makes a full handshake under the new settings), one per handshake instead of two: one is
     * all a client needs to resume, and for libpq, which never resumes, every ticket is wasted
     * work. Tickets need no session cache on our side: it stays off (no lock, no memory). */
    if (accept) {
        SSL_CTX_set_num_tickets(t->ssl, 1);
        SSL_CTX_set_session_cache_mode(t->ssl, SSL_SESS_CACHE_OFF);
    }
    if (accept) {
        static const unsigned char sid[] = "pgusher";
        SSL_CTX_set_session_id_context(t->ssl, sid, sizeof(sid) - 1);
        SSL_CTX_set_verify(t->ssl,
                           mode >= TLS_VERIFY_CA ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                                                 : SSL_VERIFY_NONE,
                           NULL);
    } else {
        SSL_CTX_set_verify(t->ssl, mode >= TLS_VERIFY_CA ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    }
    return t;
fail:
    ERR_clear_error();
    tls_ctx_unref(t);
    return NULL;
}

bool tls_build(const struct cf_global *g, struct tls_ctx **accept, struct tls_ctx **connect,
               char *err, size_t errlen)
{
    const struct side_cf client = {
        .prefix = "client_tls",
        .tls13_name = "client_tls13_ciphers",
        .sslmode = g->client_tls_sslmode,
        .key = g->client_tls_key_file,
        .cert = g->client_tls_cert_file,
        .ca = g->client_tls_ca_file,
        .protocols = g->client_tls_protocols,
        .ciphers = g->client_tls_ciphers,
        .tls13 = g->client_tls13_ciphers,
        .ecdhcurve = g->client_tls_ecdhcurve,
        .dheparams = g->client_tls_dheparams,
    };
    const struct side_cf server = {
        .prefix = "server_tls",
        .tls13_name = "server_tls13_ciphers",
        .sslmode = g->server_tls_sslmode,
        .key = g->server_tls_key_file,
        .cert = g->server_tls_cert_file,
        .ca = g->server_tls_ca_file,
        .protocols = g->server_tls_protocols,
        .ciphers = g->server_tls_ciphers,
        .tls13 = g->server_tls13_ciphers,
    };
    enum tls_mode cm = TLS_DISABLE, sm = TLS_DISABLE;
    *accept = *connect = NULL;
    const struct side_cf *bad = !tls_parse_mode(nz(client.sslmode), &cm)   ? &client
                                : !tls_parse_mode(nz(server.sslmode), &sm) ? &server
                                                                           : NULL;
    if (bad) {
        snprintf(err, errlen, "%s_sslmode \"%s\": unknown mode", bad->prefix, nz(bad->sslmode));
        return false;
    }
    /* The user name comes from a certificate the handshake checked (PgBouncer's rule). */
    if (g->auth_type == AUTH_TYPE_CERT && cm != TLS_VERIFY_FULL) {
        snprintf(err, errlen, "auth_type cert needs client_tls_sslmode verify-full");
        return false;
    }
    if (cm != TLS_DISABLE && !(*accept = build_side(&client, true, err, errlen)))
        return false;
    if (sm != TLS_DISABLE && !(*connect = build_side(&server, false, err, errlen))) {
        tls_ctx_unref(*accept);
        *accept = NULL;
        return false;
    }
    return true;
}

/* A file by name and identity (device, inode, size, modification time): a key or certificate
 * replaced under the same name is a change. */
static void file_sig(char *buf, size_t len, const char *path)
{
    struct stat stt;
    if (!path || !*path || stat(path, &stt) != 0) {
        snprintf(buf, len, "|%s", nz(path));
        return;
    }
    snprintf(buf, len, "|%s:%llu:%llu:%lld:%lld.%09ld", path, (unsigned long long)stt.st_dev,
             (unsigned long long)stt.st_ino, (long long)stt.st_size, (long long)stt.st_mtim.tv_sec,
             stt.st_mtim.tv_nsec);
}

/* Everything the connect context is built from. */
static void server_settings_sig(const struct cf_global *g, char *buf, size_t len)
{
    char ca[600], key[600], cert[600];
    file_sig(ca, sizeof(ca), g->server_tls_ca_file);
    file_sig(key, sizeof(key), g->server_tls_key_file);
    file_sig(cert, sizeof(cert), g->server_tls_cert_file);
    snprintf(buf, len, "%s|%s|%s|%s%s%s%s", nz(g->server_tls_sslmode), nz(g->server_tls_protocols),
             nz(g->server_tls_ciphers), nz(g->server_tls13_ciphers), ca, key, cert);
}

bool tls_apply(const struct cf_global *g, char *err, size_t errlen)
{
    struct tls_ctx *a, *c;
    if (!tls_build(g, &a, &c, err, errlen))
        return false;
    tls_ctx_unref(cur_accept);
    cur_accept = a;
    char sig[sizeof(connect_sig)];
    server_settings_sig(g, sig, sizeof(sig));
    if (connect_gen > 0 && strcmp(sig, connect_sig) == 0) {
        tls_ctx_unref(c); /* rebuilt from the same settings and files: keep the one in force */
        return true;
    }
    tls_ctx_unref(cur_connect);
    cur_connect = c;
    memcpy(connect_sig, sig, sizeof(sig));
    connect_gen++;
    return true;
}

uint64_t tls_connect_gen(void)
{
    return connect_gen;
}

struct tls_ctx *tls_accept_ctx(void)
{
    return cur_accept;
}

struct tls_ctx *tls_connect_ctx(void)
{
    return cur_connect;
}

void tls_release_all(void)
{
    tls_ctx_unref(cur_accept);
    tls_ctx_unref(cur_connect);
    cur_accept = cur_connect = NULL;
    connect_sig[0] = '\0';
    connect_gen++;
}

/* ---------------------------------------------------------------- ciphertext BIO */

/* Performance (tls-bench): OpenSSL reads and writes ciphertext through this BIO instead of two
 * memory BIOs. Input is read straight from stream.c's receive buffer (no copy into a BIO first),
 * output is appended to one buffer per connection that is emptied by a length reset (a memory
 * BIO's reset clears its whole buffer). callgrind, TLS pgbench -S: see the commit message. */
static BIO_METHOD *cipher_bio_method;

static int cbio_read(BIO *b, char *buf, size_t len, size_t *got)
{
    struct tls_conn *t = BIO_get_data(b);
    size_t n = 0;
    BIO_clear_retry_flags(b);
    if (t->hold_off < t->hold_len) {
        n = t->hold_len - t->hold_off < len ? t->hold_len - t->hold_off : len;
        memcpy(buf, t->hold + t->hold_off, n);
        t->hold_off += n;
        if (t->hold_off == t->hold_len)
            t->hold_off = t->hold_len = 0;
    }
    if (n < len && t->in_len > 0) {
        size_t m = t->in_len < len - n ? t->in_len : len - n;
        memcpy(buf + n, t->in, m);
        t->in += m;
        t->in_len -= m;
        n += m;
    }
    if (n == 0) {
        BIO_set_retry_read(b); /* empty means "wait for more", never end of file */
        return 0;
    }
    *got = n;
    return 1;
}

static bool grow(uint8_t **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return true;
    size_t c = *cap ? *cap : 1024;
    while (c < need)
        c *= 2;
    uint8_t *q = realloc(*p, c);
    if (!q)
        return false;
    *p = q;
    *cap = c;
    return true;
}

static int cbio_write(BIO *b, const char *data, size_t len, size_t *put)
{
    struct tls_conn *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (!grow(&t->out, &t->out_cap, t->out_len + len))
        return 0;
    memcpy(t->out + t->out_len, data, len);
    t->out_len += len;
    *put = len;
    return 1;
}

static long cbio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    struct tls_conn *t = BIO_get_data(b);
    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_PENDING:
        return (long)(t->hold_len - t->hold_off + t->in_len);
    case BIO_CTRL_WPENDING:
        return (long)t->out_len;
    default:
        return 0;
    }
}

static int cbio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static BIO *cipher_bio_new(struct tls_conn *t)
{
    if (!cipher_bio_method) {
        BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "pgusher");
        if (!m || !BIO_meth_set_read_ex(m, cbio_read) || !BIO_meth_set_write_ex(m, cbio_write) ||
            !BIO_meth_set_ctrl(m, cbio_ctrl) || !BIO_meth_set_create(m, cbio_create)) {
            BIO_meth_free(m);
            return NULL;
        }
        cipher_bio_method = m; /* one for the process, like OpenSSL's own methods */
    }
    BIO *b = BIO_new(cipher_bio_method);
    if (b)
        BIO_set_data(b, t);
    return b;
}

/* ---------------------------------------------------------------- memory accounting */

/* What OpenSSL holds (contexts, certificates, and each connection's state and record
 * buffers), for SHOW MEM: its allocations go through these, which count usable sizes. */
static size_t ossl_bytes, ossl_allocs;
static bool ossl_counted;

static void *ossl_malloc(size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    void *p = malloc(n);
    if (p) {
        ossl_bytes += malloc_usable_size(p);
        ossl_allocs++;
    }
    return p;
}

static void *ossl_realloc(void *old, size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    size_t was = old ? malloc_usable_size(old) : 0;
    void *p = realloc(old, n);
    if (!p && n > 0)
        return NULL;   /* old is untouched */
    ossl_bytes -= was; /* realloc(old, 0) freed it */
    ossl_allocs -= old ? 1 : 0;
    if (p) {
        ossl_bytes += malloc_usable_size(p);
        ossl_allocs++;
    }
    return p;
}

static void ossl_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    if (p) {
        ossl_bytes -= malloc_usable_size(p);
        ossl_allocs--;
    }
    free(p);
}

void tls_mem_init(void)
{
    ossl_counted = CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free) == 1;
}

long long tls_mem_bytes(size_t *allocs)
{
    *allocs = ossl_allocs;
    return ossl_counted ? (long long)ossl_bytes : -1;
}

/* ---------------------------------------------------------------- connections */

size_t tls_conn_size(void)
{
    return sizeof(struct tls_conn);
}

struct tls_conn *tls_conn_new(struct tls_ctx *ctx, const char *verify_host, char *err,
                              size_t errlen)
{
    struct tls_conn *t = calloc(1, sizeof(*t));
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->ssl = SSL_new(ctx->ssl);
    t->bio = cipher_bio_new(t);
    if (!t->ssl || !t->bio) {
        BIO_free(t->bio);
        SSL_free(t->ssl);
        free(t);
        ossl_reason(err, errlen, "out of memory");
        return NULL;
    }
    SSL_set_bio(t->ssl, t->bio, t->bio); /* one reference for both sides */
    t->ctx = tls_ctx_ref(ctx);
    if (ctx->accept) {
        SSL_set_accept_state(t->ssl);
        return t;
    }
    SSL_set_connect_state(t->ssl);
    const char *host = verify_host ? verify_host : "";
    unsigned char ipbuf[16];
    bool is_ip = inet_pton(AF_INET, host, ipbuf) == 1 || inet_pton(AF_INET6, host, ipbuf) == 1;
    if (*host && !is_ip)
        SSL_set_tlsext_host_name(t->ssl, host);
    if (ctx->mode == TLS_VERIFY_FULL) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);
        int ok = 0;
        if (*host && is_ip) {
            ok = X509_VERIFY_PARAM_set1_ip_asc(vp, host);
        } else if (*host) {
            X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            ok = X509_VERIFY_PARAM_set1_host(vp, host, 0);
        }
        if (ok != 1) {
            snprintf(err, errlen, "verify-full needs a host name or address to check, got \"%s\"",
                     host);
            ERR_clear_error();
            tls_conn_free(t);
            return NULL;
        }
    }
    return t;
}

void tls_conn_free(struct tls_conn *t)
{
    if (!t)
        return;
    SSL_free(t->ssl); /* frees the BIO */
    tls_ctx_unref(t->ctx);
    free(t->hold);
    free(t->out);
    free(t);
}

/* Keep [p, p + len) for later reads: after what is held already. */
static bool hold_bytes(struct tls_conn *t, const uint8_t *p, size_t len)
{
    if (t->hold_off > 0) {
        memmove(t->hold, t->hold + t->hold_off, t->hold_len - t->hold_off);
        t->hold_len -= t->hold_off;
        t->hold_off = 0;
    }
    if (!grow(&t->hold, &t->hold_cap, t->hold_len + len)) {
        snprintf(t->err, sizeof(t->err), "out of memory");
        return false;
    }
    memcpy(t->hold + t->hold_len, p, len);
    t->hold_len += len;
    return true;
}

bool tls_conn_feed(struct tls_conn *t, const void *data, size_t len)
{
    if (t->in_len > 0 && !tls_conn_feed_end(t))
        return false;
    t->in = data;
    t->in_len = len;
    return true;
}

bool tls_conn_feed_end(struct tls_conn *t)
{
    bool ok = t->in_len == 0 || hold_bytes(t, t->in, t->in_len);
    t->in = NULL;
    t->in_len = 0;
    if (t->hold_len == 0 && t->hold_cap > 0) {
        free(t->hold); /* rare (the owner stopped reading): give it back once used up */
        t->hold = NULL;
        t->hold_cap = 0;
    }
    return ok;
}

/* Text for a failed SSL call: the certificate check first (its reason is the useful one). */
static void set_failure(struct tls_conn *t, int ssl_err)
{
    long vr = SSL_get_verify_result(t->ssl);
    unsigned long e = ERR_peek_last_error();
    if (vr != X509_V_OK) {
        snprintf(t->err, sizeof(t->err), "certificate verify failed: %s",
                 X509_verify_cert_error_string(vr));
    } else if (e) {
        const char *r = ERR_reason_error_string(e);
        snprintf(t->err, sizeof(t->err), "%s", r ? r : "TLS error");
    } else if (ssl_err == SSL_ERROR_ZERO_RETURN) {
        snprintf(t->err, sizeof(t->err), "peer closed the TLS connection");
    } else {
        snprintf(t->err, sizeof(t->err), "TLS error %d", ssl_err);
    }
    ERR_clear_error();
}

int tls_conn_handshake(struct tls_conn *t)
{
    int r = SSL_do_handshake(t->ssl);
    if (r == 1)
        return 1;
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    set_failure(t, e);
    return -1;
}

int tls_conn_read(struct tls_conn *t, void *buf, size_t cap)
{
    if (cap == 0)
        return 0;
    int n = SSL_read(t->ssl, buf, cap > INT32_MAX ? INT32_MAX : (int)cap);
    if (n > 0)
        return n;
    int e = SSL_get_error(t->ssl, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    if (e == SSL_ERROR_ZERO_RETURN)
        t->closed = true;
    set_failure(t, e);
    return -1;
}

bool tls_conn_pending(const struct tls_conn *t)
{
    return SSL_pending(t->ssl) > 0 || t->in_len > 0 || t->hold_off < t->hold_len;
}

bool tls_conn_closed(const struct tls_conn *t)
{
    return t->closed;
}

bool tls_conn_write(struct tls_conn *t, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len > 0) {
        int chunk = len > INT32_MAX ? INT32_MAX : (int)len;
        int n = SSL_write(t->ssl, p, chunk);
        if (n <= 0) {
            set_failure(t, SSL_get_error(t->ssl, n));
            return false;
        }
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* stream.c's graceful close (tls-bench): one SSL_shutdown puts our close_notify in the output
 * BIO and returns at once (0: the peer's not seen, which is not awaited). */
void tls_conn_close_notify(struct tls_conn *t)
{
    if (SSL_is_init_finished(t->ssl) && SSL_shutdown(t->ssl) < 0)
        ERR_clear_error();
}

size_t tls_conn_out(struct tls_conn *t, const uint8_t **p)
{
    *p = t->out;
    return t->out_len;
}

void tls_conn_out_done(struct tls_conn *t)
{
    t->out_len = 0;
    if (t->out_cap > 65536) {
        free(t->out); /* after bulk output: a connection keeps a small buffer only */
        t->out = NULL;
        t->out_cap = 0;
    }
}

const char *tls_conn_error(const struct tls_conn *t)
{
    return t->err[0] ? t->err : "TLS error";
}

void tls_conn_describe(const struct tls_conn *t, char *buf, size_t len)
{
    const char *proto = SSL_get_version(t->ssl);
    const SSL_CIPHER *c = SSL_get_current_cipher(t->ssl);
    const char *cipher = c ? SSL_CIPHER_get_name(c) : "NONE";
    EVP_PKEY *k = NULL;
    /* As PgBouncer: the key exchange group is shown for server connections only (its
     * library asks for the server's temporary key, which a TLS server does not have). */
    if (SSL_is_server(t->ssl) || SSL_get_peer_tmp_key(t->ssl, &k) != 1 || !k) {
        snprintf(buf, len, "%s/%s", proto, cipher);
        return;
    }
    int id = EVP_PKEY_get_base_id(k);
    char group[64];
    size_t gl = 0;
    if (id == EVP_PKEY_DH) {
        snprintf(buf, len, "%s/%s/DH=%d", proto, cipher, EVP_PKEY_get_bits(k));
    } else if (id == EVP_PKEY_EC &&
               EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof(group), &gl) == 1) {
        snprintf(buf, len, "%s/%s/ECDH=%s", proto, cipher, group);
    } else if (id == EVP_PKEY_X25519 || id == EVP_PKEY_X448) {
        snprintf(buf, len, "%s/%s/ECDH=%s", proto, cipher, OBJ_nid2sn(id));
    } else {
        snprintf(buf, len, "%s/%s", proto, cipher);
    }
    EVP_PKEY_free(k);
}

bool tls_conn_peer_cn(const struct tls_conn *t, char *buf, size_t len)
{
    X509 *x = SSL_get0_peer_certificate(t->ssl);
    if (!x || len == 0)
        return false;
    int n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, (int)len);
    return n > 0 && (size_t)n < len && strlen(buf) == (size_t)n; /* no embedded NUL */
}
