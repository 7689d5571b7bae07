/*
 * fuzz_stream.c: the receive-buffer framing of include/pgusher/stream.h, fed bytes split at
 * fuzzer-chosen boundaries the way libuv delivers them (alloc_cb / read_cb in stream.c are
 * modelled here: compact a full buffer, hand out the free space, release an empty buffer).
 * Two consumers are run over the same bytes:
 *   - whole messages with stream_take_msg (login, console and health-probe readers);
 *   - relay framing: a 5-byte header, then stream_pass over the body (client/server relay).
 * Both must see exactly the messages a one-shot parse of all the bytes sees, never read past
 * rlen, keep rpos <= rlen <= cap, and never stall with a full buffer.
 *
 * Input: byte 0 buffer size, byte 1 max message length, byte 2 consumer, byte 3 number of
 * split sizes k, then k split sizes, then the stream bytes.
 */
#include "fuzz.h"

#include "pgusher/pktbuf.h"
#include "pgusher/stream.h"

/* One message of the one-shot reference parse. */
struct ref_msg {
    size_t off; /* of its type byte in the input */
    uint32_t len;
};

struct ref {
    struct ref_msg *m; /* room for every message the input can hold (5 bytes at least) */
    int n;             /* complete, valid messages */
    bool bad;          /* the header after the n-th message is invalid */
    size_t bad_at;     /* its offset */
};

static void ref_parse(const uint8_t *in, size_t n, uint32_t maxlen, uint32_t cap, bool whole,
                      struct ref *r)
{
    size_t off = 0;
    r->n = 0;
    r->bad = false;
    while (n - off >= 5) {
        uint32_t len = pkt_get32(in + off + 1);
        if (len < 4 || len > maxlen || (whole && len >= cap)) {
            r->bad = true;
            r->bad_at = off;
            return;
        }
        if (n - off < (size_t)len + 1)
            return;
        r->m[r->n].off = off;
        r->m[r->n].len = len;
        r->n++;
        off += (size_t)len + 1;
    }
}

static void check_stream(const struct stream *s)
{
    FUZZ_CHECK(s->rpos <= s->rlen && s->rlen <= s->cap);
    FUZZ_CHECK(s->buf != NULL || (s->cap == 0 && s->rpos == 0 && s->rlen == 0));
}

/* stream.c's alloc_cb: the free space for the next read (allocating a buffer if needed). */
static uint32_t model_alloc(struct stream *s, uint32_t cap)
{
    if (s->buf && s->rpos > 0 && s->rlen == s->cap)
        stream_compact(s);
    if (!s->buf) {
        s->buf = malloc(cap);
        FUZZ_CHECK(s->buf != NULL);
        s->cap = cap;
        s->rpos = s->rlen = 0;
    }
    return s->cap - s->rlen;
}

struct consumer {
    const uint8_t *in; /* the whole input, to compare against */
    const struct ref *ref;
    int got;         /* messages seen so far */
    bool failed;     /* the consumer saw a bad header */
    size_t consumed; /* input bytes the consumer has taken */
    uint32_t remain; /* relay: body bytes still to pass */
    uint32_t maxlen;
};

/* Whole messages: the owner takes what is complete and leaves the rest. */
static void consume_whole(struct consumer *c, struct stream *s)
{
    uint8_t type;
    const uint8_t *body;
    uint32_t blen;
    int r;
    while (!c->failed && (r = stream_take_msg(s, c->maxlen, &type, &body, &blen)) != 0) {
        check_stream(s);
        if (r < 0) {
            FUZZ_CHECK(c->ref->bad && c->ref->bad_at == c->consumed && c->got == c->ref->n);
            c->failed = true;
            return;
        }
        FUZZ_CHECK(c->got < c->ref->n);
        const struct ref_msg *m = &c->ref->m[c->got];
        FUZZ_CHECK(m->off == c->consumed && blen == m->len - 4);
        FUZZ_CHECK(body >= s->buf + 5 && body + blen == s->buf + s->rpos);
        FUZZ_CHECK(type == c->in[m->off]);
        FUZZ_CHECK(blen == 0 || memcmp(body, c->in + m->off + 5, blen) == 0);
        c->consumed += (size_t)m->len + 1;
        c->got++;
    }
    /* A full buffer always holds a whole message or a bad header: never a stall. */
    FUZZ_CHECK(c->failed || !stream_full(s));
}

/* Relay framing, as client.c/server.c forward: header, then the body in passes. */
static void consume_relay(struct consumer *c, struct stream *s)
{
    while (!c->failed && stream_avail(s) > 0) {
        if (c->remain) {
            uint32_t before = s->rpos, want = c->remain;
            stream_pass(s, &c->remain);
            uint32_t n = s->rpos - before;
            FUZZ_CHECK(n > 0 && n <= want && c->remain == want - n);
            FUZZ_CHECK(memcmp(s->buf + before, c->in + c->consumed, n) == 0);
            c->consumed += n;
            if (c->remain == 0)
                c->got++;
            check_stream(s);
            continue;
        }
        if (stream_avail(s) < 5)
            break;
        const uint8_t *p = s->buf + s->rpos;
        uint32_t len = pkt_get32(p + 1);
        FUZZ_CHECK(memcmp(p, c->in + c->consumed, 5) == 0);
        if (len < 4 || len > c->maxlen) {
            FUZZ_CHECK(c->ref->bad && c->ref->bad_at == c->consumed && c->got == c->ref->n);
            c->failed = true;
            return;
        }
        s->rpos += 5;
        c->consumed += 5;
        c->remain = len - 4;
        if (c->remain == 0)
            c->got++;
    }
    stream_compact(s); /* the relay compacts after forwarding */
    check_stream(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t maxlens[] = {4, 5, 64, 300, 511, 512, 4096, UINT32_MAX};
    if (size < 4)
        return 0;
    uint32_t cap = 16 + (uint32_t)data[0] * 4; /* 16..1036: messages both fit and do not */
    uint32_t maxlen = maxlens[data[1] & 7];
    bool whole = !(data[2] & 1);
    size_t nsplit = data[3];
    data += 4;
    size -= 4;
    if (nsplit > size)
        nsplit = size;
    const uint8_t *splits = data;
    data += nsplit;
    size -= nsplit;
    uint8_t *in = fuzz_dup(data, size);

    struct ref ref = {.m = malloc((size / 5 + 1) * sizeof(struct ref_msg))};
    FUZZ_CHECK(ref.m != NULL);
    ref_parse(in, size, maxlen, cap, whole, &ref);
    struct consumer c = {.in = in, .ref = &ref, .maxlen = maxlen};
    struct stream s;
    memset(&s, 0, sizeof(s));

    size_t off = 0;
    for (size_t i = 0; off < size && !c.failed; i++) {
        size_t want = nsplit ? (size_t)splits[i % nsplit] + 1 : size - off;
        uint32_t room = model_alloc(&s, cap);
        if (room == 0) {
            /* Only the relay may leave a full buffer, and only mid-body (then it forwards). */
            FUZZ_CHECK(!whole);
            consume_relay(&c, &s);
            continue;
        }
        size_t n = want < room ? want : room;
        if (n > size - off)
            n = size - off;
        memcpy(s.buf + s.rlen, in + off, n);
        s.rlen += (uint32_t)n;
        off += n;
        check_stream(&s);
        if (whole)
            consume_whole(&c, &s);
        else
            consume_relay(&c, &s);
        /* read_cb: an empty buffer goes back. */
        if (s.buf && s.rpos == s.rlen)
            stream_compact(&s);
        check_stream(&s);
    }
    if (!c.failed) {
        /* Everything delivered: each complete message was seen, the failure too. */
        FUZZ_CHECK(c.got == ref.n && !ref.bad);
    }
    free(ref.m);
    free(s.buf);
    free(in);
    return 0;
}
