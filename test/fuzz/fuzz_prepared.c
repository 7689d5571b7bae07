/*
 * fuzz_prepared.c: prepared.c's message rewriting and response bookkeeping, driven as the
 * relay drives it: two clients, two servers, client messages (Parse/Bind/Describe/Close and
 * others, whole or cut short, well-formed or not), server responses in any order, links
 * switched, DISCARD ALL. Checks that every rewrite is well-formed (lengths add up with the
 * part still to stream), that only the pooler's own answers are swallowed, that synthesized
 * answers are ParseComplete/CloseComplete, and that nothing leaks.
 *
 * Input: a stream of operations; each starts with a byte whose low 3 bits pick it:
 * 0-2: client message (next byte: client, type, name/text choice; then body bytes),
 * 3-4: server response (next byte: server and type), 5: synthesized answers due,
 * 6: swap the links (when both servers are quiet), 7: max_prepared_statements from the next byte.
 */
#include "fuzz.h"

#include "pgusher/objects-t.h"
#include "pgusher/pktbuf.h"
#include "pgusher/prepared.h"
#include "pgusher/runtime.h"
#include "pgusher/stream.h"

static struct config cf;
static struct database db;
static struct pool pool;
static struct client cl[2];
static struct server sv[2];

static const char *const names[] = {"", "a", "b", "s1", "PGUSHER_1", "x"};
static const char *const texts[] = {"SELECT 1", "SELECT 2", "SELEC", ""};

/* out holds whole, well-formed messages; returns the length of the last one (0: none). */
static uint32_t check_messages(const struct pktbuf *out, size_t *last_pos)
{
    size_t pos = 0;
    uint32_t last = 0;
    while (pos < out->len) {
        FUZZ_CHECK(out->len - pos >= 5);
        uint32_t len = pkt_get32(out->data + pos + 1);
        FUZZ_CHECK(len >= 4);
        *last_pos = pos;
        last = len;
        if (out->data[pos] == 'B')
            return last; /* the rewritten Bind head ends the output; its rest streams */
        FUZZ_CHECK(pos + 1 + len <= out->len);
        pos += 1 + len;
    }
    return last;
}

static void client_message(const uint8_t **d, size_t *n)
{
    if (*n < 3)
        return;
    struct client *c = &cl[(*d)[0] & 1];
    struct server *s = sv[0].link == c ? &sv[0] : &sv[1]; /* links are a permutation */
    static const char types[] = "PBDCESQH";
    char type = types[(*d)[1] & 7];
    uint8_t pick = (*d)[2];
    *d += 3;
    *n -= 3;
    struct pktbuf msg, out;
    pktbuf_init(&msg);
    pktbuf_init(&out);
    pktbuf_start(&msg, type);
    if (pick & 0x80) {
        /* raw body bytes */
        size_t k = *n < 64 ? *n : 64;
        pktbuf_put_bytes(&msg, *d, k);
        *d += k;
        *n -= k;
    } else if (type == 'P') {
        pktbuf_put_string(&msg, names[pick % 6]);
        pktbuf_put_string(&msg, texts[(pick >> 3) % 4]);
        pktbuf_put_int16(&msg, 0);
    } else if (type == 'B') {
        pktbuf_put_string(&msg, "");
        pktbuf_put_string(&msg, names[pick % 6]);
        pktbuf_put_int16(&msg, 0);
        pktbuf_put_int16(&msg, 0);
        pktbuf_put_int16(&msg, 0);
    } else if (type == 'D' || type == 'C') {
        pktbuf_put_byte(&msg, (pick & 0x40) ? 'P' : 'S');
        pktbuf_put_string(&msg, names[pick % 6]);
    }
    pktbuf_finish(&msg);
    if (msg.failed)
        goto done;
    uint32_t total = (uint32_t)msg.len;
    uint32_t avail = (pick & 0x20) ? total / 2 + 1 : total;
    uint32_t consumed = 0xdead;
    enum ps_verdict v = prepared_client_msg(c, s, msg.data, avail, &out, &consumed);
    if (v == PS_COLLECT) {
        FUZZ_CHECK(type == 'P');
        goto done;
    }
    if (v == PS_REWRITE) {
        FUZZ_CHECK(consumed <= avail && consumed <= total);
        size_t last_pos = 0;
        uint32_t last = check_messages(&out, &last_pos);
        if (last && out.data[last_pos] == 'B')
            FUZZ_CHECK(out.len - last_pos + (total - consumed) == last + 1u);
    } else if (v == PS_MORE) {
        FUZZ_CHECK(avail < total);
    } else if (v == PS_FAIL) {
        FUZZ_CHECK(prepared_error()[0] != '\0');
    }
done:
    pktbuf_free(&msg);
    pktbuf_free(&out);
}

static void server_response(const uint8_t **d, size_t *n)
{
    if (*n < 1)
        return;
    static const char types[] = "123TnCIsEZtDNSAG";
    struct server *s = &sv[(*d)[0] >> 7];
    char type = types[(*d)[0] & 15];
    *d += 1;
    *n -= 1;
    static const char tag[] = "DISCARD ALL";
    bool wipe = type == 'C' && *n > 0 && ((*d)[0] & 1);
    enum ps_response r =
        prepared_server_msg(s, (uint8_t)type, wipe ? (const uint8_t *)tag : NULL, sizeof(tag));
    if (r == PS_SWALLOW)
        FUZZ_CHECK(type == '1' || type == '3');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    memset(&cf, 0, sizeof(cf));
    cf.g.max_prepared_statements = 3;
    G.cf = &cf;
    stream_set_bufsize(4096);
    memset(&pool, 0, sizeof(pool));
    pool.db = &db;
    memset(cl, 0, sizeof(cl));
    memset(sv, 0, sizeof(sv));
    for (int i = 0; i < 2; i++) {
        cl[i].pool = sv[i].pool = &pool;
        sv[i].link = &cl[i];
    }
    while (size > 0) {
        uint8_t op = data[0];
        data++;
        size--;
        switch (op & 7) {
        case 0:
        case 1:
        case 2:
            client_message(&data, &size);
            break;
        case 3:
        case 4:
            server_response(&data, &size);
            break;
        case 5: {
            struct pktbuf out;
            pktbuf_init(&out);
            if (prepared_take_synth(&sv[op >> 7], &out)) {
                FUZZ_CHECK(out.len % 5 == 0 && out.len > 0);
                for (size_t i = 0; i < out.len; i += 5)
                    FUZZ_CHECK((out.data[i] == '1' || out.data[i] == '3') &&
                               pkt_get32(out.data + i + 1) == 4);
            }
            pktbuf_free(&out);
            break;
        }
        case 6:
            /* The relay moves a client only when its server owes it nothing. */
            if (prepared_server_quiet(&sv[0]) && prepared_server_quiet(&sv[1])) {
                struct client *t = sv[0].link;
                sv[0].link = sv[1].link;
                sv[1].link = t;
            }
            break;
        case 7:
            cf.g.max_prepared_statements = 1 + (op >> 5);
            break;
        }
    }
    for (int i = 0; i < 2; i++)
        prepared_server_free(&sv[i]);
    for (int i = 0; i < 2; i++)
        prepared_client_free(&cl[i]);
    FUZZ_CHECK(prepared_stmt_count() == 0);
    return 0;
}
