/*
 * fuzz_pktreader.c: the bounds-checked message reader (pktreader_*) driven by a fuzzer-chosen
 * sequence of reads over a message body held in an exact-size heap buffer, checked against a
 * simple model of where the cursor must be; then the values read are written back with the
 * pktbuf builders and read again, which must give the same values.
 *
 * Input: byte 0 = number of read operations k, then k operation bytes (low 2 bits: int32,
 * byte, string, bytes; the other bits: the byte count for "bytes"), then the body.
 */
#include "fuzz.h"

#include "pgusher/pktbuf.h"

enum { OP_INT32, OP_BYTE, OP_STRING, OP_BYTES };

struct value {
    int op;
    uint32_t num;
    const uint8_t *ptr;
    size_t len;
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t nops = data[0];
    if (nops > size - 1)
        nops = size - 1;
    const uint8_t *ops = data + 1;
    size_t blen = size - 1 - nops;
    uint8_t *body = fuzz_dup(data + 1 + nops, blen);
    struct value *vals = calloc(nops + 1, sizeof(*vals));
    FUZZ_CHECK(vals != NULL);
    int nvals = 0;

    struct pktreader r;
    pktreader_init(&r, body, blen);
    size_t pos = 0; /* the model's cursor */
    bool bad = false;
    for (size_t i = 0; i < nops; i++) {
        int op = ops[i] & 3;
        size_t n = ops[i] >> 2;
        struct value v = {.op = op};
        switch (op) {
        case OP_INT32:
            v.num = pktreader_int32(&r);
            if (!bad && blen - pos >= 4) {
                FUZZ_CHECK(v.num == pkt_get32(body + pos));
                pos += 4;
            } else {
                FUZZ_CHECK(v.num == 0);
                bad = true;
            }
            break;
        case OP_BYTE:
            v.num = pktreader_byte(&r);
            if (!bad && blen - pos >= 1) {
                FUZZ_CHECK(v.num == body[pos]);
                pos += 1;
            } else {
                FUZZ_CHECK(v.num == 0);
                bad = true;
            }
            break;
        case OP_STRING: {
            const char *s = pktreader_string(&r);
            const uint8_t *nul = bad ? NULL : memchr(body + pos, 0, blen - pos);
            if (nul) {
                FUZZ_CHECK((const uint8_t *)s == body + pos);
                v.ptr = (const uint8_t *)s;
                v.len = (size_t)(nul - (body + pos));
                pos += v.len + 1;
            } else {
                FUZZ_CHECK(s == NULL);
                bad = true;
            }
            break;
        }
        case OP_BYTES: {
            const uint8_t *p = pktreader_bytes(&r, n);
            if (!bad && blen - pos >= n) {
                FUZZ_CHECK(p == body + pos);
                v.ptr = p;
                v.len = n;
                pos += n;
            } else {
                FUZZ_CHECK(p == NULL);
                bad = true;
            }
            break;
        }
        }
        FUZZ_CHECK(r.bad == bad);
        FUZZ_CHECK(r.p >= body && r.p <= body + blen && r.end == body + blen);
        if (!bad) {
            FUZZ_CHECK(r.p == body + pos);
            vals[nvals++] = v;
        }
    }

    /* Write what was read back with pktbuf, read it again: the same values. */
    struct pktbuf b;
    pktbuf_init(&b);
    pktbuf_start(&b, 'T');
    for (int i = 0; i < nvals; i++) {
        switch (vals[i].op) {
        case OP_INT32:
            pktbuf_put_int32(&b, vals[i].num);
            break;
        case OP_BYTE:
            pktbuf_put_byte(&b, (uint8_t)vals[i].num);
            break;
        case OP_STRING:
            pktbuf_put_string(&b, (const char *)vals[i].ptr);
            break;
        case OP_BYTES:
            pktbuf_put_bytes(&b, vals[i].ptr, vals[i].len);
            break;
        }
    }
    pktbuf_finish(&b);
    FUZZ_CHECK(!b.failed && b.len == 5 + pos && b.data[0] == 'T');
    FUZZ_CHECK(pkt_get32(b.data + 1) == 4 + pos);
    FUZZ_CHECK(pos == 0 || memcmp(b.data + 5, body, pos) == 0);
    uint8_t *copy = fuzz_dup(b.data + 5, b.len - 5);
    pktreader_init(&r, copy, b.len - 5);
    for (int i = 0; i < nvals; i++) {
        switch (vals[i].op) {
        case OP_INT32:
            FUZZ_CHECK(pktreader_int32(&r) == vals[i].num);
            break;
        case OP_BYTE:
            FUZZ_CHECK(pktreader_byte(&r) == vals[i].num);
            break;
        case OP_STRING: {
            const char *s = pktreader_string(&r);
            FUZZ_CHECK(s && strlen(s) == vals[i].len && memcmp(s, vals[i].ptr, vals[i].len) == 0);
            break;
        }
        case OP_BYTES: {
            const uint8_t *p = pktreader_bytes(&r, vals[i].len);
            FUZZ_CHECK(p && (vals[i].len == 0 || memcmp(p, vals[i].ptr, vals[i].len) == 0));
            break;
        }
        }
    }
    FUZZ_CHECK(!r.bad && r.p == r.end);

    /* The message builders take any strings. */
    pktbuf_reset(&b);
    char *text = fuzz_cstr(body, blen);
    pktbuf_error(&b, "ERROR", "08P01", text);
    pktbuf_notice(&b, "01000", text);
    pktbuf_param_status(&b, text, text);
    pktbuf_ready(&b, 'I');
    pktbuf_auth(&b, 10, body, blen);
    FUZZ_CHECK(!b.failed);
    /* Walk the messages just built by their length fields: they must tile the buffer. */
    size_t off = 0;
    int nmsg = 0;
    while (off < b.len) {
        FUZZ_CHECK(b.len - off >= 5);
        uint32_t len = pkt_get32(b.data + off + 1);
        FUZZ_CHECK(len >= 4 && off + 1 + len <= b.len);
        off += 1 + len;
        nmsg++;
    }
    FUZZ_CHECK(nmsg == 5 && off == b.len);

    free(text);
    free(copy);
    pktbuf_free(&b);
    free(vals);
    free(body);
    return 0;
}
