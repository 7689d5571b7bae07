/*
 * pktbuf.h: build PostgreSQL protocol messages into a growable byte buffer, and read
 * big-endian fields out of received ones. Pure memory work: no sockets, no logging.
 */
#ifndef PGUSHER_PKTBUF_H
#define PGUSHER_PKTBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pktbuf {
    uint8_t *data;
    size_t len, cap;
    size_t msg_start; /* offset of the message being built (for its length field) */
    bool failed;      /* an allocation failed; the contents are unusable */
};

void pktbuf_init(struct pktbuf *b);
void pktbuf_free(struct pktbuf *b);
void pktbuf_reset(struct pktbuf *b);
/* Start a message of the given type; type 0 starts an untyped (startup-style) message. */
void pktbuf_start(struct pktbuf *b, char type);
void pktbuf_put_byte(struct pktbuf *b, uint8_t v);
void pktbuf_put_int16(struct pktbuf *b, uint16_t v);
void pktbuf_put_int32(struct pktbuf *b, uint32_t v);
void pktbuf_put_bytes(struct pktbuf *b, const void *p, size_t n);
void pktbuf_put_string(struct pktbuf *b, const char *s); /* with the terminating NUL */
/* Patch the length field of the message begun by pktbuf_start. */
void pktbuf_finish(struct pktbuf *b);

/* Convenience builders for messages the pooler generates itself. */
void pktbuf_error(struct pktbuf *b, const char *severity, const char *sqlstate, const char *msg);
void pktbuf_notice(struct pktbuf *b, const char *sqlstate, const char *msg);
void pktbuf_param_status(struct pktbuf *b, const char *key, const char *val);
void pktbuf_ready(struct pktbuf *b, char status);
void pktbuf_auth(struct pktbuf *b, uint32_t code, const void *extra, size_t extra_len);

static inline uint32_t pkt_get32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline uint16_t pkt_get16(const uint8_t *p)
{
    return (uint16_t)(((uint16_t)p[0] << 8) | p[1]);
}

/* A read cursor over one received message body; all reads are bounds-checked. */
struct pktreader {
    const uint8_t *p, *end;
    bool bad;
};
void pktreader_init(struct pktreader *r, const uint8_t *body, size_t len);
uint32_t pktreader_int32(struct pktreader *r);
uint8_t pktreader_byte(struct pktreader *r);
/* A NUL-terminated string inside the message, or NULL (and r->bad) if unterminated. */
const char *pktreader_string(struct pktreader *r);
const uint8_t *pktreader_bytes(struct pktreader *r, size_t n);

#endif
