/*
 * pktbuf.c: message building and bounds-checked reading of protocol messages.
 * Never touches sockets; an allocation failure marks the buffer failed instead of aborting.
 */
#include "pgusher/pktbuf.h"

#include <stdlib.h>
#include <string.h>

void pktbuf_init(struct pktbuf *b)
{
    memset(b, 0, sizeof(*b));
}

void pktbuf_free(struct pktbuf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

void pktbuf_reset(struct pktbuf *b)
{
    b->len = 0;
    b->msg_start = 0;
    b->failed = false;
}

static bool reserve(struct pktbuf *b, size_t n)
{
    if (b->failed)
        return false;
    if (b->len + n <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n)
        cap *= 2;
    uint8_t *d = realloc(b->data, cap);
    if (!d) {
        b->failed = true;
        return false;
    }
    b->data = d;
    b->cap = cap;
    return true;
}

void pktbuf_put_bytes(struct pktbuf *b, const void *p, size_t n)
{
    if (!reserve(b, n))
        return;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
}

void pktbuf_put_byte(struct pktbuf *b, uint8_t v)
{
    pktbuf_put_bytes(b, &v, 1);
}

void pktbuf_put_int16(struct pktbuf *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    pktbuf_put_bytes(b, x, 2);
}

void pktbuf_put_int32(struct pktbuf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    pktbuf_put_bytes(b, x, 4);
}

void pktbuf_put_string(struct pktbuf *b, const char *s)
{
    pktbuf_put_bytes(b, s, strlen(s) + 1);
}

void pktbuf_start(struct pktbuf *b, char type)
{
    if (type)
        pktbuf_put_byte(b, (uint8_t)type);
    b->msg_start = b->len;
    pktbuf_put_int32(b, 0);
}

void pktbuf_finish(struct pktbuf *b)
{
    if (b->failed)
        return;
    uint32_t len = (uint32_t)(b->len - b->msg_start);
    uint8_t *p = b->data + b->msg_start;
    p[0] = (uint8_t)(len >> 24);
    p[1] = (uint8_t)(len >> 16);
    p[2] = (uint8_t)(len >> 8);
    p[3] = (uint8_t)len;
}

void pktbuf_error(struct pktbuf *b, const char *severity, const char *sqlstate, const char *msg)
{
    pktbuf_start(b, 'E');
    pktbuf_put_byte(b, 'S');
    pktbuf_put_string(b, severity);
    pktbuf_put_byte(b, 'V');
    pktbuf_put_string(b, severity);
    pktbuf_put_byte(b, 'C');
    pktbuf_put_string(b, sqlstate);
    pktbuf_put_byte(b, 'M');
    pktbuf_put_string(b, msg);
    pktbuf_put_byte(b, 0);
    pktbuf_finish(b);
}

void pktbuf_notice(struct pktbuf *b, const char *sqlstate, const char *msg)
{
    pktbuf_start(b, 'N');
    pktbuf_put_byte(b, 'S');
    pktbuf_put_string(b, "NOTICE");
    pktbuf_put_byte(b, 'V');
    pktbuf_put_string(b, "NOTICE");
    pktbuf_put_byte(b, 'C');
    pktbuf_put_string(b, sqlstate);
    pktbuf_put_byte(b, 'M');
    pktbuf_put_string(b, msg);
    pktbuf_put_byte(b, 0);
    pktbuf_finish(b);
}

void pktbuf_param_status(struct pktbuf *b, const char *key, const char *val)
{
    pktbuf_start(b, 'S');
    pktbuf_put_string(b, key);
    pktbuf_put_string(b, val);
    pktbuf_finish(b);
}

void pktbuf_ready(struct pktbuf *b, char status)
{
    pktbuf_start(b, 'Z');
    pktbuf_put_byte(b, (uint8_t)status);
    pktbuf_finish(b);
}

void pktbuf_auth(struct pktbuf *b, uint32_t code, const void *extra, size_t extra_len)
{
    pktbuf_start(b, 'R');
    pktbuf_put_int32(b, code);
    pktbuf_put_bytes(b, extra, extra_len);
    pktbuf_finish(b);
}

void pktreader_init(struct pktreader *r, const uint8_t *body, size_t len)
{
    r->p = body;
    r->end = body + len;
    r->bad = false;
}

const uint8_t *pktreader_bytes(struct pktreader *r, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    return p;
}

uint32_t pktreader_int32(struct pktreader *r)
{
    const uint8_t *p = pktreader_bytes(r, 4);
    return p ? pkt_get32(p) : 0;
}

uint8_t pktreader_byte(struct pktreader *r)
{
    const uint8_t *p = pktreader_bytes(r, 1);
    return p ? *p : 0;
}

const char *pktreader_string(struct pktreader *r)
{
    if (r->bad)
        return NULL;
    const uint8_t *nul = memchr(r->p, 0, (size_t)(r->end - r->p));
    if (!nul) {
        r->bad = true;
        return NULL;
    }
    const char *s = (const char *)r->p;
    r->p = nul + 1;
    return s;
}
