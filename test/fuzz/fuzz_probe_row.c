/*
 * fuzz_probe_row.c: the health probe's DataRow parser (hc_parse_probe_row) on an exact-size
 * body: a hostile or broken server answers the role/lag query. Checks that a row is accepted
 * only when a simple model of the DataRow (2-byte count, then 4-byte length and bytes per
 * column, -1 for NULL) fits the message exactly, and that what it reports is sane.
 *
 * Input: the DataRow body.
 */
#include "fuzz.h"

#include <math.h>

#include "pgusher/health.h"
#include "pgusher/pktbuf.h"

/* The model: does the body hold exactly ncols well-formed columns? First column's bytes. */
static bool model_row(const uint8_t *p, size_t n, unsigned *ncols, const uint8_t **c0,
                      size_t *c0len)
{
    if (n < 2)
        return false;
    *ncols = pkt_get16(p);
    size_t off = 2;
    *c0 = NULL;
    for (unsigned i = 0; i < *ncols; i++) {
        if (n - off < 4)
            return false;
        uint32_t l = pkt_get32(p + off);
        off += 4;
        if (l == 0xffffffffu)
            continue;
        if (n - off < l)
            return false;
        if (i == 0) {
            *c0 = p + off;
            *c0len = l;
        }
        off += l;
    }
    return off == n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *body = fuzz_dup(data, size);
    struct hc_probe_row row;
    memset(&row, 0, sizeof row);
    bool ok = hc_parse_probe_row(body, (uint32_t)size, &row);
    if (ok) {
        unsigned ncols;
        const uint8_t *c0;
        size_t c0len;
        FUZZ_CHECK(model_row(body, size, &ncols, &c0, &c0len) && ncols >= 3);
        FUZZ_CHECK(c0 && c0len == 1 && (c0[0] == 't' || c0[0] == 'f'));
        FUZZ_CHECK(row.role == (c0[0] == 't' ? ROLE_STANDBY : ROLE_PRIMARY));
        FUZZ_CHECK(isfinite(row.replay_age) && row.replay_age >= 0);
    }
    free(body);
    return 0;
}
