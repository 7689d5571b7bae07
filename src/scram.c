/*
 * scram.c: SCRAM-SHA-256 (RFC 5802/7677) the way PostgreSQL speaks it, and PostgreSQL's md5
 * password hashing. Pure computation on caller-owned state: never does I/O or logging, and
 * never trusts a peer's message: malformed input makes a function return false, nothing more.
 *
 * Design notes.
 * - Every message arrives as (pointer, length) straight from the wire. It is copied into a
 *   NUL-terminated buffer first (rejecting embedded NULs and absurd lengths), so the parsers
 *   below can walk it with plain string functions and can never run past its end.
 * - PostgreSQL's dialect: the only mechanism is "SCRAM-SHA-256" (no -PLUS here), so the gs2
 *   header must be "n,," or "y,,"; "p=" channel binding and authzid are refused, as are
 *   mandatory extensions ("m="). The user name in client-first is ignored (PostgreSQL takes it
 *   from the startup packet), so clients usually send "n=,".
 * - SASLprep is deliberately not implemented: passwords are used as raw bytes. PostgreSQL does
 *   the same when the password is not valid UTF-8, and for pure ASCII passwords SASLprep
 *   changes nothing, so the result only differs for non-ASCII UTF-8 passwords that NFKC
 *   normalisation would alter.
 * - Pass-through: a successful scram_server_final() recovers ClientKey = proof XOR
 *   ClientSignature. With ClientKey and ServerKey a scram_client can log in to PostgreSQL
 *   without the plain password (have_keys), provided PostgreSQL holds the same secret.
 */
#include "pgusher/scram.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

/* SASL messages in PostgreSQL are a few hundred bytes; anything beyond this is hostile. */
#define SCRAM_MAX_MSG 4096
#define SCRAM_B64_KEY_LEN 44 /* base64 of SCRAM_KEY_LEN bytes */
#define STR_(x) #x
#define STR(x) STR_(x)

/* ---------------------------------------------------------------- base64 ---- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Writes the padded encoding plus a terminating NUL, so outlen must leave room for it. */
int scram_b64_encode(const uint8_t *in, size_t len, char *out, size_t outlen)
{
    if (len > (size_t)INT_MAX / 4 * 3 - 3)
        return -1;
    size_t need = (len + 2) / 3 * 4;
    if (outlen < need + 1)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        size_t rest = len - i;
        if (rest > 1)
            v |= (uint32_t)in[i + 1] << 8;
        if (rest > 2)
            v |= in[i + 2];
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = rest > 1 ? b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = rest > 2 ? b64_alphabet[v & 63] : '=';
    }
    out[o] = '\0';
    return (int)o;
}

/* Strict decoder: length a multiple of 4, padding only at the very end, no whitespace. */
int scram_b64_decode(const char *in, size_t len, uint8_t *out, size_t outlen)
{
    if (len % 4 != 0 || len > (size_t)INT_MAX)
        return -1;
    size_t pad = 0;
    if (len >= 4 && in[len - 1] == '=')
        pad = in[len - 2] == '=' ? 2 : 1;
    size_t need = len / 4 * 3 - pad;
    if (outlen < need)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        bool last = i + 4 == len;
        int v[4];
        for (size_t k = 0; k < 4; k++) {
            if (last && k >= 4 - pad) {
                v[k] = 0;
                continue;
            }
            v[k] = b64_value((unsigned char)in[i + k]);
            if (v[k] < 0)
                return -1;
        }
        uint32_t bits =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[o++] = (uint8_t)(bits >> 16);
        if (!last || pad < 2)
            out[o++] = (uint8_t)(bits >> 8);
        if (!last || pad < 1)
            out[o++] = (uint8_t)bits;
    }
    return (int)o;
}

/* ------------------------------------------------------------ primitives ---- */

static bool sha256(const void *data, size_t len, uint8_t out[SCRAM_KEY_LEN])
{
    unsigned int n = 0;
    return EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) == 1 && n == SCRAM_KEY_LEN;
}

static bool hmac_sha256(const uint8_t *key, size_t keylen, const void *data, size_t len,
                        uint8_t out[SCRAM_KEY_LEN])
{
    unsigned int n = 0;
    if (keylen > INT_MAX)
        return false;
    return HMAC(EVP_sha256(), key, (int)keylen, data, len, out, &n) != NULL && n == SCRAM_KEY_LEN;
}

static bool salted_password(const char *password, const uint8_t *salt, size_t salt_len,
                            int iterations, uint8_t out[SCRAM_KEY_LEN])
{
    size_t pwlen = strlen(password);
    if (pwlen > INT_MAX || salt_len > INT_MAX || iterations <= 0)
        return false;
    return PKCS5_PBKDF2_HMAC(password, (int)pwlen, salt, (int)salt_len, iterations, EVP_sha256(),
                             SCRAM_KEY_LEN, out) == 1;
}

/* ClientKey and ServerKey from a SaltedPassword (RFC 5802 section 3). */
static bool derive_keys(const uint8_t salted[SCRAM_KEY_LEN], uint8_t client_key[SCRAM_KEY_LEN],
                        uint8_t server_key[SCRAM_KEY_LEN])
{
    return hmac_sha256(salted, SCRAM_KEY_LEN, "Client Key", 10, client_key) &&
           hmac_sha256(salted, SCRAM_KEY_LEN, "Server Key", 10, server_key);
}

static char *str_dup_n(const char *s, size_t n)
{
    char *r = malloc(n + 1);
    if (r) {
        memcpy(r, s, n);
        r[n] = '\0';
    }
    return r;
}

/* Heap copy of a wire message as a C string; NULL for NULs inside or oversized input. */
static char *message_copy(const char *msg, size_t len)
{
    if (!msg || len == 0 || len > SCRAM_MAX_MSG || memchr(msg, '\0', len))
        return NULL;
    return str_dup_n(msg, len);
}

static char *concat3(const char *a, const char *b, const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *r = malloc(la + lb + lc + 3);
    if (!r)
        return NULL;
    memcpy(r, a, la);
    r[la] = ',';
    memcpy(r + la + 1, b, lb);
    r[la + 1 + lb] = ',';
    memcpy(r + la + lb + 2, c, lc);
    r[la + lb + lc + 2] = '\0';
    return r;
}

/* RFC 5802 nonce: printable ASCII except ','. */
static bool nonce_valid(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c > 0x7e || c == ',')
            return false;
    }
    return true;
}

static bool random_nonce(char *out, size_t outlen)
{
    uint8_t raw[SCRAM_NONCE_LEN];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return false;
    bool ok = scram_b64_encode(raw, sizeof raw, out, outlen) > 0;
    OPENSSL_cleanse(raw, sizeof raw);
    return ok;
}

/*
 * Attribute cursor over a NUL-terminated message: "a=value,b=value,...". take_attr() accepts
 * the attribute named `name` at *pos, returns its value span and leaves *pos after the
 * separating comma (or at the terminating NUL).
 */
static bool take_attr(const char **pos, char name, const char **val, size_t *vlen)
{
    const char *p = *pos;
    if (p[0] != name || p[1] != '=')
        return false;
    p += 2;
    const char *end = strchr(p, ',');
    if (!end)
        end = p + strlen(p);
    *val = p;
    *vlen = (size_t)(end - p);
    *pos = *end == ',' ? end + 1 : end;
    return true;
}

/* Optional trailing extensions: each must look like "<letter>=<anything but ','>". */
static bool extensions_valid(const char *p, const char *end)
{
    while (p < end) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')) || p + 1 >= end || p[1] != '=')
            return false;
        const char *comma = memchr(p, ',', (size_t)(end - p));
        if (!comma)
            return true;
        p = comma + 1;
        if (p == end)
            return false; /* trailing comma */
    }
    return true;
}

/* Strict positive decimal int, as in "i=4096" or the secret's iteration count. */
static bool parse_positive_int(const char *s, size_t n, int *out)
{
    if (n == 0 || n > 10)
        return false;
    long long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v <= 0 || v > INT_MAX)
        return false;
    *out = (int)v;
    return true;
}

/* --------------------------------------------------------------- md5 -------- */

static void md5_hex(const void *data, size_t len, char out[33])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_Digest(data, len, md, &n, EVP_md5(), NULL) != 1 || n != 16) {
        out[0] = '\0';
        return;
    }
    for (unsigned int i = 0; i < 16; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[32] = '\0';
}

/* On digest failure (e.g. md5 disabled by a FIPS provider) out is left empty. */
void pg_md5_encrypt(const char *password, const char *user, char out[MD5_PASSWD_LEN + 1])
{
    size_t lp = strlen(password), lu = strlen(user);
    char *buf = malloc(lp + lu + 1);
    out[0] = '\0';
    if (!buf)
        return;
    memcpy(buf, password, lp);
    memcpy(buf + lp, user, lu);
    char hex[33];
    md5_hex(buf, lp + lu, hex);
    OPENSSL_cleanse(buf, lp + lu);
    free(buf);
    if (hex[0] == '\0')
        return;
    memcpy(out, "md5", 3);
    memcpy(out + 3, hex, 33);
}

static bool is_md5_secret(const char *s)
{
    if (strncmp(s, "md5", 3) != 0 || strlen(s) != MD5_PASSWD_LEN)
        return false;
    for (const char *p = s + 3; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

void pg_md5_response(const char *stored_or_plain, const char *user, const uint8_t salt[4],
                     char out[MD5_PASSWD_LEN + 1])
{
    char secret[MD5_PASSWD_LEN + 1];
    out[0] = '\0';
    if (is_md5_secret(stored_or_plain))
        memcpy(secret, stored_or_plain, sizeof secret);
    else
        pg_md5_encrypt(stored_or_plain, user, secret);
    if (secret[0] == '\0')
        return;
    uint8_t buf[32 + 4];
    memcpy(buf, secret + 3, 32);
    memcpy(buf + 32, salt, 4);
    char hex[33];
    md5_hex(buf, sizeof buf, hex);
    OPENSSL_cleanse(secret, sizeof secret);
    if (hex[0] == '\0')
        return;
    memcpy(out, "md5", 3);
    memcpy(out + 3, hex, 33);
}

/* ------------------------------------------------------------- secrets ------ */

bool scram_parse_secret(const char *text, struct scram_secret *out)
{
    static const char prefix[] = "SCRAM-SHA-256$";
    struct scram_secret s;
    memset(&s, 0, sizeof s);
    if (!text || strncmp(text, prefix, sizeof prefix - 1) != 0)
        return false;
    const char *p = text + sizeof prefix - 1;
    const char *colon = strchr(p, ':');
    if (!colon || !parse_positive_int(p, (size_t)(colon - p), &s.iterations))
        return false;
    p = colon + 1;
    const char *dollar = strchr(p, '$');
    if (!dollar)
        return false;
    int n = scram_b64_decode(p, (size_t)(dollar - p), s.salt, sizeof s.salt);
    if (n <= 0)
        return false;
    s.salt_len = (size_t)n;
    p = dollar + 1;
    colon = strchr(p, ':');
    if (!colon || colon - p != SCRAM_B64_KEY_LEN || strlen(colon + 1) != SCRAM_B64_KEY_LEN)
        return false;
    if (scram_b64_decode(p, SCRAM_B64_KEY_LEN, s.stored_key, SCRAM_KEY_LEN) != SCRAM_KEY_LEN ||
        scram_b64_decode(colon + 1, SCRAM_B64_KEY_LEN, s.server_key, SCRAM_KEY_LEN) !=
            SCRAM_KEY_LEN)
        return false;
    *out = s;
    OPENSSL_cleanse(&s, sizeof s);
    return true;
}

bool pg_is_md5_secret(const char *text)
{
    if (!text || strncmp(text, "md5", 3) != 0 || strlen(text) != MD5_PASSWD_LEN)
        return false;
    for (const char *p = text + 3; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F')))
            return false;
    return true;
}

bool scram_is_secret(const char *text)
{
    struct scram_secret s;
    bool ok = scram_parse_secret(text, &s);
    OPENSSL_cleanse(&s, sizeof s);
    return ok;
}

bool scram_secret_from_password(const char *password, const uint8_t *salt, size_t salt_len,
                                int iterations, struct scram_secret *out)
{
    struct scram_secret s;
    uint8_t salted[SCRAM_KEY_LEN], client_key[SCRAM_KEY_LEN];
    bool ok = false;
    memset(&s, 0, sizeof s);
    if (!password || !salt || salt_len == 0 || salt_len > sizeof s.salt || iterations <= 0)
        return false;
    s.iterations = iterations;
    memcpy(s.salt, salt, salt_len);
    s.salt_len = salt_len;
    if (!salted_password(password, salt, salt_len, iterations, salted) ||
        !derive_keys(salted, client_key, s.server_key) ||
        !sha256(client_key, SCRAM_KEY_LEN, s.stored_key))
        goto fail;
    *out = s;
    ok = true;
fail:
    OPENSSL_cleanse(salted, sizeof salted);
    OPENSSL_cleanse(client_key, sizeof client_key);
    OPENSSL_cleanse(&s, sizeof s);
    return ok;
}

/* ---------------------------------------------------------------- secrets for plain passwords */

/* One computed secret per user: the same salt at every login, as with a stored secret, so
 * PBKDF2 runs once per user and password instead of once per login. */
struct cache_entry {
    char *user;
    uint8_t pw_digest[SCRAM_KEY_LEN]; /* SHA-256 of the password it was computed from */
    struct scram_secret secret;
};
static struct cache_entry *cache;
static size_t cache_cap, cache_used;
#define CACHE_MAX 65536 /* users; beyond this the cache starts over */

static size_t cache_slot(const char *user)
{
    size_t h = 5381;
    for (const unsigned char *p = (const unsigned char *)user; *p; p++)
        h = h * 33 + *p;
    return h & (cache_cap - 1);
}

void scram_cache_clear(void)
{
    for (size_t i = 0; i < cache_cap; i++) {
        free(cache[i].user);
        OPENSSL_cleanse(&cache[i], sizeof cache[i]);
    }
    free(cache);
    cache = NULL;
    cache_cap = cache_used = 0;
}

static struct cache_entry *cache_find_or_add(const char *user)
{
    if (cache_used * 2 >= cache_cap) {
        if (cache_used >= CACHE_MAX)
            scram_cache_clear();
        size_t ncap = cache_cap ? cache_cap * 2 : 64;
        struct cache_entry *n = calloc(ncap, sizeof(*n));
        if (!n)
            return NULL;
        struct cache_entry *old = cache;
        size_t ocap = cache_cap;
        cache = n;
        cache_cap = ncap;
        for (size_t i = 0; i < ocap; i++) {
            if (!old[i].user)
                continue;
            size_t j = cache_slot(old[i].user);
            while (cache[j].user)
                j = (j + 1) & (cache_cap - 1);
            cache[j] = old[i];
        }
        OPENSSL_cleanse(old, ocap * sizeof(*old));
        free(old);
    }
    size_t j = cache_slot(user);
    while (cache[j].user) {
        if (strcmp(cache[j].user, user) == 0)
            return &cache[j];
        j = (j + 1) & (cache_cap - 1);
    }
    cache[j].user = strdup(user);
    if (!cache[j].user)
        return NULL;
    cache_used++;
    return &cache[j];
}

bool scram_secret_for_user(const char *user, const char *password, int iterations,
                           struct scram_secret *out)
{
    uint8_t digest[SCRAM_KEY_LEN];
    if (!user || !password || iterations <= 0 || !sha256(password, strlen(password), digest))
        return false;
    struct cache_entry *e = cache_find_or_add(user);
    if (e && e->secret.iterations == iterations &&
        CRYPTO_memcmp(e->pw_digest, digest, sizeof digest) == 0) {
        *out = e->secret;
        return true;
    }
    uint8_t salt[16];
    if (RAND_bytes(salt, sizeof salt) != 1 ||
        !scram_secret_from_password(password, salt, sizeof salt, iterations, out))
        return false;
    if (e) {
        memcpy(e->pw_digest, digest, sizeof digest);
        e->secret = *out;
    }
    OPENSSL_cleanse(digest, sizeof digest);
    return true;
}

void scram_mock_secret(const char *user, int iterations, struct scram_secret *out)
{
    static uint8_t key[32];
    static bool have_key;
    uint8_t mac[SCRAM_KEY_LEN];
    if (!have_key)
        have_key = RAND_bytes(key, sizeof key) == 1;
    memset(out, 0, sizeof(*out));
    out->iterations = iterations > 0 ? iterations : 4096;
    out->salt_len = 16;
    if (!hmac_sha256(key, sizeof key, user ? user : "", user ? strlen(user) : 0, mac))
        RAND_bytes(mac, sizeof mac);
    memcpy(out->salt, mac, out->salt_len);
    RAND_bytes(out->stored_key, sizeof out->stored_key);
    RAND_bytes(out->server_key, sizeof out->server_key);
}

bool scram_secret_format(const struct scram_secret *secret, char *out, size_t outlen)
{
    char salt[((sizeof secret->salt + 2) / 3) * 4 + 1];
    char stored[SCRAM_B64_KEY_LEN + 1], server[SCRAM_B64_KEY_LEN + 1];
    if (secret->iterations <= 0 || secret->salt_len == 0 ||
        secret->salt_len > sizeof secret->salt ||
        scram_b64_encode(secret->salt, secret->salt_len, salt, sizeof salt) < 0 ||
        scram_b64_encode(secret->stored_key, SCRAM_KEY_LEN, stored, sizeof stored) < 0 ||
        scram_b64_encode(secret->server_key, SCRAM_KEY_LEN, server, sizeof server) < 0)
        return false;
    int n = snprintf(out, outlen, "SCRAM-SHA-256$%d:%s$%s:%s", secret->iterations, salt, stored,
                     server);
    return n > 0 && (size_t)n < outlen;
}

/* ------------------------------------------------------- SCRAM server ------- */

void scram_server_reset(struct scram_server *st)
{
    free(st->client_first_bare);
    free(st->server_first);
    OPENSSL_cleanse(st, sizeof *st);
}

/* Frees only the per-exchange state, keeping the secret the caller installed. */
static void server_clear_exchange(struct scram_server *st)
{
    free(st->client_first_bare);
    free(st->server_first);
    st->client_first_bare = NULL;
    st->server_first = NULL;
    memset(st->nonce, 0, sizeof st->nonce);
    OPENSSL_cleanse(st->client_key, sizeof st->client_key);
    st->have_client_key = false;
    st->cbind_flag = '\0';
}

bool scram_server_first_with_nonce(struct scram_server *st, const char *client_first, size_t len,
                                   const char *server_nonce, char **out)
{
    char salt_b64[((sizeof st->secret.salt + 2) / 3) * 4 + 1];
    const char *val;
    size_t vlen;
    bool ok = false;

    *out = NULL;
    server_clear_exchange(st);
    if (st->secret.iterations <= 0 || st->secret.salt_len == 0 ||
        st->secret.salt_len > sizeof st->secret.salt || !server_nonce ||
        !nonce_valid(server_nonce, strlen(server_nonce)))
        return false;
    char *msg = message_copy(client_first, len);
    if (!msg)
        return false;

    /* gs2-header: cbind flag, then an empty authzid. */
    const char *p = msg;
    if ((p[0] != 'n' && p[0] != 'y') || p[1] != ',')
        goto fail; /* includes "p=...": channel binding we never advertised */
    char flag = p[0];
    p += 2;
    if (*p != ',')
        goto fail; /* authzid ("a=..."), unsupported like in PostgreSQL */
    p++;
    const char *bare = p;

    /* client-first-bare: n=<user>,r=<nonce>[,extensions]; "m=" would be mandatory. */
    if (!take_attr(&p, 'n', &val, &vlen) || *p == '\0')
        goto fail;
    if (!take_attr(&p, 'r', &val, &vlen) || !nonce_valid(val, vlen))
        goto fail;
    if (p[-1] == ',' && (*p == '\0' || !extensions_valid(p, p + strlen(p))))
        goto fail;
    size_t snlen = strlen(server_nonce);
    if (vlen + snlen >= sizeof st->nonce)
        goto fail;
    memcpy(st->nonce, val, vlen);
    memcpy(st->nonce + vlen, server_nonce, snlen + 1);

    if (scram_b64_encode(st->secret.salt, st->secret.salt_len, salt_b64, sizeof salt_b64) < 0)
        goto fail;
    size_t need = 2 + strlen(st->nonce) + 3 + strlen(salt_b64) + 3 + 11 + 1;
    st->server_first = malloc(need);
    st->client_first_bare = str_dup_n(bare, strlen(bare));
    if (!st->server_first || !st->client_first_bare)
        goto fail;
    snprintf(st->server_first, need, "r=%s,s=%s,i=%d", st->nonce, salt_b64, st->secret.iterations);
    *out = str_dup_n(st->server_first, strlen(st->server_first));
    if (!*out)
        goto fail;
    st->cbind_flag = flag;
    ok = true;
fail:
    free(msg);
    if (!ok)
        server_clear_exchange(st);
    return ok;
}

bool scram_server_first(struct scram_server *st, const char *client_first, size_t len, char **out)
{
    char server_nonce[((SCRAM_NONCE_LEN + 2) / 3) * 4 + 1];
    *out = NULL;
    if (!random_nonce(server_nonce, sizeof server_nonce))
        return false;
    return scram_server_first_with_nonce(st, client_first, len, server_nonce, out);
}

bool scram_server_final(struct scram_server *st, const char *client_final, size_t len, char **out)
{
    uint8_t proof[SCRAM_KEY_LEN], client_sig[SCRAM_KEY_LEN], client_key[SCRAM_KEY_LEN];
    uint8_t stored[SCRAM_KEY_LEN], server_sig[SCRAM_KEY_LEN], cbind[8];
    char sig_b64[SCRAM_B64_KEY_LEN + 1];
    char *auth = NULL;
    const char *val;
    size_t vlen;
    bool ok = false;

    *out = NULL;
    if (!st->client_first_bare || !st->server_first || st->have_client_key)
        return false;
    char *msg = message_copy(client_final, len);
    if (!msg)
        return false;

    /* The proof is the last attribute; everything before it is signed. */
    char *last = strrchr(msg, ',');
    if (!last || last[1] != 'p' || last[2] != '=')
        goto fail;
    if (scram_b64_decode(last + 3, strlen(last + 3), proof, sizeof proof) != SCRAM_KEY_LEN)
        goto fail;
    *last = '\0'; /* msg is now client-final-message-without-proof */

    const char *p = msg;
    if (!take_attr(&p, 'c', &val, &vlen) || scram_b64_decode(val, vlen, cbind, sizeof cbind) != 3 ||
        cbind[0] != st->cbind_flag || cbind[1] != ',' || cbind[2] != ',')
        goto fail;
    if (*p == '\0' || !take_attr(&p, 'r', &val, &vlen) || vlen != strlen(st->nonce) ||
        memcmp(val, st->nonce, vlen) != 0)
        goto fail;
    if (p[-1] == ',' && (*p == '\0' || !extensions_valid(p, p + strlen(p))))
        goto fail;

    auth = concat3(st->client_first_bare, st->server_first, msg);
    if (!auth || !hmac_sha256(st->secret.stored_key, SCRAM_KEY_LEN, auth, strlen(auth), client_sig))
        goto fail;
    for (size_t i = 0; i < SCRAM_KEY_LEN; i++)
        client_key[i] = proof[i] ^ client_sig[i];
    if (!sha256(client_key, SCRAM_KEY_LEN, stored) ||
        CRYPTO_memcmp(stored, st->secret.stored_key, SCRAM_KEY_LEN) != 0)
        goto fail;
    if (!hmac_sha256(st->secret.server_key, SCRAM_KEY_LEN, auth, strlen(auth), server_sig) ||
        scram_b64_encode(server_sig, SCRAM_KEY_LEN, sig_b64, sizeof sig_b64) < 0)
        goto fail;
    *out = malloc(2 + SCRAM_B64_KEY_LEN + 1);
    if (!*out)
        goto fail;
    memcpy(*out, "v=", 2);
    memcpy(*out + 2, sig_b64, SCRAM_B64_KEY_LEN + 1);
    memcpy(st->client_key, client_key, SCRAM_KEY_LEN);
    st->have_client_key = true;
    ok = true;
fail:
    free(msg);
    free(auth);
    OPENSSL_cleanse(proof, sizeof proof);
    OPENSSL_cleanse(client_sig, sizeof client_sig);
    OPENSSL_cleanse(client_key, sizeof client_key);
    return ok;
}

/* ------------------------------------------------------- SCRAM client ------- */

void scram_client_reset(struct scram_client *st)
{
    free(st->client_first_bare);
    free(st->server_first);
    OPENSSL_cleanse(st, sizeof *st);
}

/* saslname escaping (RFC 5802 section 5.1): ',' -> "=2C", '=' -> "=3D". */
static char *escape_saslname(const char *user)
{
    size_t n = 0;
    for (const char *p = user; *p; p++)
        n += (*p == ',' || *p == '=') ? 3 : 1;
    char *r = malloc(n + 1), *o = r;
    if (!r)
        return NULL;
    for (const char *p = user; *p; p++) {
        if (*p == ',' || *p == '=') {
            memcpy(o, *p == ',' ? "=2C" : "=3D", 3);
            o += 3;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return r;
}

bool scram_client_first_with_nonce(struct scram_client *st, const char *user, const char *nonce,
                                   char **out)
{
    *out = NULL;
    free(st->client_first_bare);
    free(st->server_first);
    st->client_first_bare = NULL;
    st->server_first = NULL;
    st->expected_server_sig[0] = '\0';
    size_t nlen = nonce ? strlen(nonce) : 0;
    if (!nonce_valid(nonce, nlen) || nlen >= sizeof st->client_nonce)
        return false;
    memcpy(st->client_nonce, nonce, nlen + 1);
    char *name = escape_saslname(user ? user : "");
    if (!name)
        return false;
    size_t need = 3 + 2 + strlen(name) + 3 + nlen + 1;
    char *msg = malloc(need);
    if (msg) {
        snprintf(msg, need, "n,,n=%s,r=%s", name, nonce);
        st->client_first_bare = str_dup_n(msg + 3, strlen(msg + 3));
    }
    free(name);
    if (!msg || !st->client_first_bare) {
        free(msg);
        return false;
    }
    *out = msg;
    return true;
}

bool scram_client_first(struct scram_client *st, char **out)
{
    char nonce[((SCRAM_NONCE_LEN + 2) / 3) * 4 + 1];
    *out = NULL;
    if (!random_nonce(nonce, sizeof nonce))
        return false;
    return scram_client_first_with_nonce(st, "", nonce, out);
}

bool scram_client_final(struct scram_client *st, const char *password, const char *server_first,
                        size_t len, char **out)
{
    uint8_t stored[SCRAM_KEY_LEN], client_sig[SCRAM_KEY_LEN], proof[SCRAM_KEY_LEN];
    uint8_t server_sig[SCRAM_KEY_LEN];
    char proof_b64[SCRAM_B64_KEY_LEN + 1];
    uint8_t *salt = NULL;
    char *without_proof = NULL, *auth = NULL;
    const char *nonce, *salt_b64, *iter;
    size_t nonce_len, salt_b64_len, iter_len;
    int iterations;
    bool ok = false;

    *out = NULL;
    st->error = "malformed server-first-message";
    if (!st->client_first_bare || st->server_first || (!st->have_keys && !password)) {
        st->error = "SCRAM exchange out of order";
        return false;
    }
    char *msg = message_copy(server_first, len);
    if (!msg)
        return false;

    /* server-first: r=<client nonce + server nonce>,s=<salt>,i=<iterations>[,extensions] */
    const char *p = msg;
    size_t cn_len = strlen(st->client_nonce);
    if (!take_attr(&p, 'r', &nonce, &nonce_len) || !nonce_valid(nonce, nonce_len) ||
        nonce_len <= cn_len || memcmp(nonce, st->client_nonce, cn_len) != 0)
        goto fail;
    if (*p == '\0' || !take_attr(&p, 's', &salt_b64, &salt_b64_len))
        goto fail;
    if (*p == '\0' || !take_attr(&p, 'i', &iter, &iter_len) ||
        !parse_positive_int(iter, iter_len, &iterations))
        goto fail;
    if (p[-1] == ',' && (*p == '\0' || !extensions_valid(p, p + strlen(p))))
        goto fail;
    if (!st->have_keys && iterations > SCRAM_CLIENT_MAX_ITERATIONS) {
        st->error =
            "server asks for more than " STR(SCRAM_CLIENT_MAX_ITERATIONS) " SCRAM iterations";
        goto fail;
    }
    size_t salt_cap = salt_b64_len / 4 * 3 + 1;
    salt = malloc(salt_cap);
    if (!salt)
        goto fail;
    int salt_len = scram_b64_decode(salt_b64, salt_b64_len, salt, salt_cap);
    if (salt_len <= 0)
        goto fail;

    if (!st->have_keys) {
        if (!salted_password(password, salt, (size_t)salt_len, iterations, st->salted_password) ||
            !derive_keys(st->salted_password, st->client_key, st->server_key))
            goto fail;
    }
    if (!sha256(st->client_key, SCRAM_KEY_LEN, stored))
        goto fail;

    size_t need = strlen("c=biws,r=") + nonce_len + 1;
    without_proof = malloc(need);
    if (!without_proof)
        goto fail;
    snprintf(without_proof, need, "c=biws,r=%.*s", (int)nonce_len, nonce);
    st->server_first = str_dup_n(server_first, len);
    if (!st->server_first)
        goto fail;
    auth = concat3(st->client_first_bare, st->server_first, without_proof);
    if (!auth || !hmac_sha256(stored, SCRAM_KEY_LEN, auth, strlen(auth), client_sig) ||
        !hmac_sha256(st->server_key, SCRAM_KEY_LEN, auth, strlen(auth), server_sig))
        goto fail;
    for (size_t i = 0; i < SCRAM_KEY_LEN; i++)
        proof[i] = st->client_key[i] ^ client_sig[i];
    if (scram_b64_encode(proof, SCRAM_KEY_LEN, proof_b64, sizeof proof_b64) < 0 ||
        scram_b64_encode(server_sig, SCRAM_KEY_LEN, st->expected_server_sig,
                         sizeof st->expected_server_sig) < 0)
        goto fail;
    need = strlen(without_proof) + 3 + SCRAM_B64_KEY_LEN + 1;
    *out = malloc(need);
    if (!*out)
        goto fail;
    snprintf(*out, need, "%s,p=%s", without_proof, proof_b64);
    st->error = NULL;
    ok = true;
fail:
    if (!ok) {
        free(st->server_first);
        st->server_first = NULL;
        st->expected_server_sig[0] = '\0';
    }
    free(msg);
    free(salt);
    free(without_proof);
    free(auth);
    OPENSSL_cleanse(stored, sizeof stored);
    OPENSSL_cleanse(client_sig, sizeof client_sig);
    return ok;
}

bool scram_client_verify(struct scram_client *st, const char *server_final, size_t len)
{
    const char *val;
    size_t vlen;
    bool ok = false;
    size_t expected_len = strlen(st->expected_server_sig);
    if (expected_len == 0)
        return false;
    char *msg = message_copy(server_final, len);
    if (!msg)
        return false;
    const char *p = msg;
    /* "e=..." (server error) fails here too, as it is not "v=". */
    if (take_attr(&p, 'v', &val, &vlen) && vlen == expected_len &&
        CRYPTO_memcmp(val, st->expected_server_sig, vlen) == 0)
        ok = p[-1] != ',' || (*p != '\0' && extensions_valid(p, p + strlen(p)));
    free(msg);
    return ok;
}
