/*
 * fuzz_proto_parse.c: proto.c's small parsers and builders: server_require_auth lists
 * (proto_require_auth_parse), ErrorResponse/NoticeResponse fields (proto_parse_error, on an
 * exact-size body: what reaches logs and clients), and the startup packet (proto_startup)
 * read back pair by pair with proto_startup_next, the reader client.c uses on what clients
 * send (and that reader alone on raw bytes).
 *
 * Input: byte 0 picks the parser (0: require_auth, 1: error fields, 2: startup packet built
 * and read back, 3: a client's startup packet body, 4: an options startup parameter for
 * proto_options_next), the rest is its input (for 2: NUL-separated names and values).
 */
#include "fuzz.h"

#include <ctype.h>

#include "pgusher/proto.h"

static void fuzz_require_auth(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    char err[256] = "";
    unsigned mask = 0xdead;
    if (proto_require_auth_parse(text, &mask, err, sizeof err)) {
        FUZZ_CHECK(mask != 0 && (mask & ~PROTO_METHODS_ALL) == 0);
        if (text[0] == '\0')
            FUZZ_CHECK(mask == PROTO_METHODS_ALL);
    } else {
        FUZZ_CHECK(err[0] != '\0' && memchr(err, 0, sizeof err));
    }
    free(text);
}

static void check_text(const char *s, size_t cap)
{
    FUZZ_CHECK(memchr(s, 0, cap) != NULL);
    for (; *s; s++)
        FUZZ_CHECK((unsigned char)*s >= 0x20 && *s != 0x7f); /* no control characters */
}

static void fuzz_error(const uint8_t *data, size_t size)
{
    uint8_t *body = fuzz_dup(data, size);
    struct proto_error e;
    memset(&e, 0x55, sizeof e);
    proto_parse_error(body, (uint32_t)size, &e);
    check_text(e.severity, sizeof e.severity);
    check_text(e.message, sizeof e.message);
    FUZZ_CHECK(strlen(e.sqlstate) == 5);
    for (int i = 0; i < 5; i++)
        FUZZ_CHECK(isdigit((unsigned char)e.sqlstate[i]) || isupper((unsigned char)e.sqlstate[i]));
    (void)proto_sqlstate_is_auth_refusal(e.sqlstate);
    free(body);
}

static void fuzz_startup(const uint8_t *data, size_t size)
{
    enum { MAXP = 32 };
    const char *params[MAXP][2];
    char *parts[2 * MAXP];
    size_t np = 0, nparts = 0;
    const uint8_t *part;
    size_t plen;
    while (nparts < 2 * MAXP && fuzz_next_part(&data, &size, 0, &part, &plen))
        parts[nparts++] = fuzz_cstr(part, plen);
    for (size_t i = 0; i + 1 < nparts; i += 2) {
        params[np][0] = parts[i][0] ? parts[i] : NULL; /* an empty name stands for NULL */
        params[np][1] = parts[i + 1];
        np++;
    }
    struct pktbuf b;
    pktbuf_init(&b);
    proto_startup(&b, params, np);
    FUZZ_CHECK(!b.failed && b.len >= 9 && pkt_get32(b.data) == b.len);
    struct pktreader r;
    uint8_t *copy = fuzz_dup(b.data + 4, b.len - 4);
    pktreader_init(&r, copy, b.len - 4);
    FUZZ_CHECK(pktreader_int32(&r) == PROTO_V3);
    const char *k, *v;
    for (size_t i = 0; i < np; i++) {
        if (!params[i][0])
            continue;
        if (!params[i][0][0]) /* an empty name would end the packet: the reader stops */
            break;
        FUZZ_CHECK(proto_startup_next(&r, &k, &v) == 1);
        FUZZ_CHECK(strcmp(k, params[i][0]) == 0 && strcmp(v, params[i][1]) == 0);
    }
    free(copy);
    pktbuf_free(&b);
    for (size_t i = 0; i < nparts; i++)
        free(parts[i]);
}

/* What a client sends after the protocol code, read as client.c reads it: every pair lies
 * inside the packet, NUL-terminated there; the end is reported only at a terminator that
 * is the last byte; a malformed packet is reported, never read past. */
static void fuzz_startup_packet(const uint8_t *data, size_t size)
{
    uint8_t *body = fuzz_dup(data, size);
    struct pktreader r;
    pktreader_init(&r, body, (uint32_t)size);
    const char *k, *v;
    int got;
    size_t pairs = 0;
    while ((got = proto_startup_next(&r, &k, &v)) > 0) {
        FUZZ_CHECK((const uint8_t *)k >= body && (const uint8_t *)v > (const uint8_t *)k);
        FUZZ_CHECK((const uint8_t *)v + strlen(v) < body + size && *k != '\0');
        FUZZ_CHECK(++pairs <= size / 3);
    }
    FUZZ_CHECK(got == 0 || got == -1);
    if (got == 0)
        FUZZ_CHECK(size > 0 && body[size - 1] == 0 && r.p == r.end);
    free(body);
}

/* A client's options startup parameter, split by proto_options_next: every setting has a
 * name without '=' and lies inside the word buffer; the cursor only moves forward and the
 * loop ends. */
static void fuzz_options(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    size_t cap = strlen(text) + 1;
    char *buf = malloc(cap);
    const char *cur = text, *k, *v;
    int r, n = 0;
    while ((r = proto_options_next(&cur, buf, cap, &k, &v)) > 0) {
        FUZZ_CHECK(k >= buf && k < buf + cap && v > k && v < buf + cap);
        FUZZ_CHECK(*k != '\0' && strchr(k, '=') == NULL);
        FUZZ_CHECK(cur >= text && cur <= text + cap - 1);
        FUZZ_CHECK(++n <= (int)cap);
    }
    FUZZ_CHECK(r == 0 || r == -1);
    free(buf);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    switch (data[0] % 5) {
    case 0:
        fuzz_require_auth(data + 1, size - 1);
        break;
    case 1:
        fuzz_error(data + 1, size - 1);
        break;
    case 2:
        fuzz_startup(data + 1, size - 1);
        break;
    case 3:
        fuzz_startup_packet(data + 1, size - 1);
        break;
    default:
        fuzz_options(data + 1, size - 1);
        break;
    }
    return 0;
}
