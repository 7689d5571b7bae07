/*
 * fuzz_fds_row.c: the SHOW FDS row parser of online restart (takeover_parse_row) on an
 * exact-size DataRow body: the new process reads these rows from the old one. A row is
 * accepted only when a model of the DataRow (2-byte count 15, then 4-byte length and bytes
 * per column, -1 for NULL) fits the message exactly; what it reports is sane (strings
 * terminated in their fields, link -1 or an fd, keys only in pairs), and writing it back
 * with takeover_put_row parses to the very same row.
 *
 * Input: the DataRow body.
 */
#include "fuzz.h"

#include "pgusher/pktbuf.h"
#include "pgusher/takeover.h"

/* A row is accepted only when the DataRow model fits with SHOW FDS's column count. */
static bool model_fits(const uint8_t *p, size_t n)
{
    unsigned ncols;
    const uint8_t *c0;
    size_t c0len;
    return fuzz_datarow_model(p, n, &ncols, &c0, &c0len) && ncols == TAKEOVER_NCOLS;
}

static bool terminated(const char *s, size_t cap)
{
    return memchr(s, 0, cap) != NULL;
}

static struct takeover_row row, again;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *body = fuzz_dup(data, size);
    memset(&row, 0, sizeof row);
    if (takeover_parse_row(body, size, &row)) {
        FUZZ_CHECK(model_fits(body, size));
        FUZZ_CHECK(row.task == TAKEOVER_POOLER || row.task == TAKEOVER_CLIENT ||
                   row.task == TAKEOVER_SERVER);
        FUZZ_CHECK(row.fd >= 0 && row.port >= 0 && row.port <= 65535);
        FUZZ_CHECK(row.link == -1 || row.link > 0);
        FUZZ_CHECK(terminated(row.user, sizeof row.user) &&
                   terminated(row.database, sizeof row.database) &&
                   terminated(row.addr, sizeof row.addr) &&
                   terminated(row.client_encoding, sizeof row.client_encoding) &&
                   terminated(row.std_strings, sizeof row.std_strings) &&
                   terminated(row.datestyle, sizeof row.datestyle) &&
                   terminated(row.timezone, sizeof row.timezone) &&
                   terminated(row.password, sizeof row.password));
        FUZZ_CHECK(!row.has_cancel || row.cancel_pid || row.cancel_key);
        struct pktbuf b;
        pktbuf_init(&b);
        takeover_put_row(&b, &row);
        FUZZ_CHECK(!b.failed && b.len >= 5 && b.data[0] == 'D');
        FUZZ_CHECK(pkt_get32(b.data + 1) == b.len - 1);
        memset(&again, 0, sizeof again);
        FUZZ_CHECK(takeover_parse_row(b.data + 5, b.len - 5, &again));
        FUZZ_CHECK(memcmp(&row, &again, sizeof row) == 0);
        pktbuf_free(&b);
    }
    free(body);
    return 0;
}
