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
        FUZZ_CHECK(fuzz_datarow_model(body, size, &ncols, &c0, &c0len) && ncols >= 3);
        FUZZ_CHECK(c0 && c0len == 1 && (c0[0] == 't' || c0[0] == 'f'));
        FUZZ_CHECK(row.role == (c0[0] == 't' ? ROLE_STANDBY : ROLE_PRIMARY));
        FUZZ_CHECK(isfinite(row.replay_age) && row.replay_age >= 0);
    }
    free(body);
    return 0;
}
