/*
 * test_takeover.c: pins the SHOW FDS row format of online restart (takeover.c): the values as
 * PgBouncer 1.25 prints them, the round trip takeover_put_row -> takeover_parse_row, and the
 * rows the parser must refuse. Pure memory; no sockets.
 */
#include "pgusher/takeover.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static struct takeover_row in, out;
static struct pktbuf b;

static void setup(void)
{
    memset(&in, 0, sizeof(in));
    memset(&out, 0, sizeof(out));
    pktbuf_init(&b);
}

static void teardown(void)
{
    pktbuf_free(&b);
}

/* The body of the DataRow in b (after type and length). */
static const uint8_t *body(size_t *len)
{
    ck_assert(!b.failed);
    ck_assert_uint_ge(b.len, 5);
    ck_assert_int_eq(b.data[0], 'D');
    *len = b.len - 5;
    return b.data + 5;
}

/* Column i of the DataRow in b as text ("NULL" for NULL). */
static const char *col(int i)
{
    static char buf[256];
    size_t len;
    const uint8_t *p = body(&len) + 2;
    for (int k = 0;; k++) {
        uint32_t l = pkt_get32(p);
        p += 4;
        if (k == i) {
            if (l == 0xffffffffu)
                return "NULL";
            ck_assert_uint_lt(l, sizeof(buf));
            memcpy(buf, p, l);
            buf[l] = 0;
            return buf;
        }
        if (l != 0xffffffffu)
            p += l;
    }
}

/* A DataRow of 15 columns from texts (NULL for a NULL column). */
static void raw_row(const char *const v[TAKEOVER_NCOLS])
{
    pktbuf_start(&b, 'D');
    pktbuf_put_int16(&b, TAKEOVER_NCOLS);
    for (int i = 0; i < TAKEOVER_NCOLS; i++) {
        if (!v[i]) {
            pktbuf_put_int32(&b, 0xffffffffu);
            continue;
        }
        pktbuf_put_int32(&b, (uint32_t)strlen(v[i]));
        pktbuf_put_bytes(&b, v[i], strlen(v[i]));
    }
    pktbuf_finish(&b);
}

static bool parse_b(void)
{
    size_t len;
    const uint8_t *p = body(&len);
    return takeover_parse_row(p, len, &out);
}

static void client_row(void)
{
    in.fd = 12;
    in.task = TAKEOVER_CLIENT;
    strcpy(in.user, "u_trust");
    strcpy(in.database, "sess");
    strcpy(in.addr, "127.0.0.1");
    in.port = 38048;
    in.has_cancel = true;
    in.cancel_pid = 0x7d7f;
    in.cancel_key = 0xc4d2fb83u;
    in.link = 16;
    strcpy(in.client_encoding, "UTF8");
    strcpy(in.std_strings, "on");
    strcpy(in.datestyle, "ISO, MDY");
    strcpy(in.timezone, "Etc/UTC");
}

START_TEST(cancel_is_one_big_endian_number)
{
    /* A server row of PgBouncer 1.25.2: backend pid 32127 in the high half. */
    ck_assert_uint_eq(takeover_cancel_encode(32127, 0xc4d2fb83u), 137987716479875ull);
    uint32_t pid, key;
    takeover_cancel_decode(137987716479875ull, &pid, &key);
    ck_assert_uint_eq(pid, 32127);
    ck_assert_uint_eq(key, 0xc4d2fb83u);
}
END_TEST

START_TEST(client_row_prints_as_pgbouncer)
{
    client_row();
    takeover_put_row(&b, &in);
    ck_assert_str_eq(col(0), "12");
    ck_assert_str_eq(col(1), "client");
    ck_assert_str_eq(col(2), "u_trust");
    ck_assert_str_eq(col(3), "sess");
    ck_assert_str_eq(col(4), "127.0.0.1");
    ck_assert_str_eq(col(5), "38048");
    ck_assert_str_eq(col(6), "137987716479875");
    ck_assert_str_eq(col(7), "16");
    ck_assert_str_eq(col(8), "UTF8");
    ck_assert_str_eq(col(9), "on");
    ck_assert_str_eq(col(10), "ISO, MDY");
    ck_assert_str_eq(col(11), "Etc/UTC");
    ck_assert_str_eq(col(12), "NULL");
    ck_assert_str_eq(col(13), "NULL");
    ck_assert_str_eq(col(14), "NULL");
}
END_TEST

START_TEST(pooler_row_has_zero_cancel_and_link)
{
    in.fd = 7;
    in.task = TAKEOVER_POOLER;
    strcpy(in.addr, "unix");
    in.port = 6432;
    in.link = -1;
    takeover_put_row(&b, &in);
    ck_assert_str_eq(col(1), "pooler");
    ck_assert_str_eq(col(2), "NULL");
    ck_assert_str_eq(col(3), "NULL");
    ck_assert_str_eq(col(6), "0");
    ck_assert_str_eq(col(7), "0");
    ck_assert(parse_b());
    ck_assert_int_eq(out.task, TAKEOVER_POOLER);
    ck_assert(!out.has_cancel);
    ck_assert_int_eq(out.link, -1);
    ck_assert_int_eq(out.port, 6432);
}
END_TEST

START_TEST(round_trip_with_scram_keys)
{
    client_row();
    in.task = TAKEOVER_SERVER;
    strcpy(in.password, "SCRAM-SHA-256$4096:c2FsdA==$AAAA:BBBB");
    in.has_scram_keys = true;
    for (int i = 0; i < SCRAM_KEY_LEN; i++) {
        in.scram_client_key[i] = (uint8_t)i;
        in.scram_server_key[i] = (uint8_t)(0xff - i);
    }
    takeover_put_row(&b, &in);
    ck_assert_str_eq(col(13), "\\x000102030405060708090a0b0c0d0e0f"
                              "101112131415161718191a1b1c1d1e1f");
    ck_assert(parse_b());
    ck_assert(memcmp(&in, &out, sizeof(in)) == 0);
}
END_TEST

START_TEST(pgbouncer_row_parses)
{
    /* As PgBouncer 1.25.2 sent it (client of a SCRAM user, idle: link 0). */
    const char *v[TAKEOVER_NCOLS] = {
        "9",
        "client",
        "u_scram",
        "sess",
        "127.0.0.1",
        "57474",
        "1839538039208280784",
        "0",
        "UTF8",
        "on",
        "ISO, MDY",
        "Etc/UTC",
        NULL,
        "\\xa779238f4a0e288a71d21250a0a5cd34b9218d40f176f7a3d03b9eae32bda5ec",
        "\\x8609ff3c5f2b5173c76ee7ae5a5f8cd3845ed9aaeba9db4a1889a26097a92e53"};
    raw_row(v);
    ck_assert(parse_b());
    ck_assert_int_eq(out.fd, 9);
    ck_assert_int_eq(out.link, -1);
    ck_assert(out.has_cancel);
    ck_assert_uint_eq(takeover_cancel_encode(out.cancel_pid, out.cancel_key),
                      1839538039208280784ull);
    ck_assert(out.has_scram_keys);
    ck_assert_uint_eq(out.scram_client_key[0], 0xa7);
    ck_assert_uint_eq(out.scram_server_key[31], 0x53);
    ck_assert_str_eq(out.password, "");
}
END_TEST

START_TEST(cancel_above_int64_and_negative_spelling)
{
    const char *v[TAKEOVER_NCOLS] = {
        "9",  "client", "u",  "d",  "unix", "0", "18446744073709551615", "0", NULL,
        NULL, NULL,     NULL, NULL, NULL,   NULL};
    raw_row(v);
    ck_assert(parse_b());
    ck_assert_uint_eq(out.cancel_pid, 0xffffffffu);
    ck_assert_uint_eq(out.cancel_key, 0xffffffffu);
    pktbuf_reset(&b);
    v[6] = "-1";
    raw_row(v);
    ck_assert(parse_b());
    ck_assert_uint_eq(out.cancel_pid, 0xffffffffu);
    pktbuf_reset(&b);
    v[6] = "18446744073709551616";
    raw_row(v);
    ck_assert(!parse_b());
}
END_TEST

/* One bad value per case, on an otherwise good row. */
START_TEST(bad_values_are_refused)
{
    static const struct {
        int col;
        const char *val;
    } bad[] = {
        {0, NULL},
        {0, "-1"},
        {0, "x"},
        {0, ""},
        {0, "99999999999"},
        {1, "listener"},
        {1, NULL},
        {5, "65536"},
        {5, "-3"},
        {6, "12a"},
        {6, "-"},
        {7, "-2"},
        {13, "\\x00"},
        {13, "nothex"},
        {14, NULL},
        {13, "\\xzz779238f4a0e288a71d21250a0a5cd34b9218d40f176f7a3d03b9eae32bda5"},
    };
    const char *good[TAKEOVER_NCOLS] = {
        "9",
        "client",
        "u",
        "d",
        "127.0.0.1",
        "5",
        "1",
        "0",
        "UTF8",
        "on",
        "ISO",
        "UTC",
        NULL,
        "\\xa779238f4a0e288a71d21250a0a5cd34b9218d40f176f7a3d03b9eae32bda5ec",
        "\\x8609ff3c5f2b5173c76ee7ae5a5f8cd3845ed9aaeba9db4a1889a26097a92e53"};
    raw_row(good);
    ck_assert(parse_b());
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *v[TAKEOVER_NCOLS];
        memcpy(v, good, sizeof(v));
        v[bad[i].col] = bad[i].val;
        pktbuf_reset(&b);
        raw_row(v);
        ck_assert_msg(!parse_b(), "case %zu (column %d = %s) accepted", i, bad[i].col,
                      bad[i].val ? bad[i].val : "NULL");
    }
}
END_TEST

START_TEST(wrong_shape_is_refused)
{
    client_row();
    takeover_put_row(&b, &in);
    size_t len;
    const uint8_t *p = body(&len);
    ck_assert(takeover_parse_row(p, len, &out));
    ck_assert(!takeover_parse_row(p, len - 1, &out)); /* cut short */
    ck_assert(!takeover_parse_row(p, 1, &out));
    ck_assert(!takeover_parse_row(p, 0, &out));
    uint8_t *extra = malloc(len + 1);
    memcpy(extra, p, len);
    extra[len] = 0;
    ck_assert(!takeover_parse_row(extra, len + 1, &out)); /* trailing byte */
    extra[1] = TAKEOVER_NCOLS - 1;
    ck_assert(!takeover_parse_row(extra, len, &out)); /* column count */
    free(extra);
    /* A value too long for its field, and one with a NUL inside. */
    const char *v[TAKEOVER_NCOLS] = {"9",  "client", "u",  "d",  "unix", "0",  "0", "0",
                                     NULL, NULL,     NULL, NULL, NULL,   NULL, NULL};
    char longname[TAKEOVER_NAME_MAX + 1];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[TAKEOVER_NAME_MAX] = 0;
    v[2] = longname;
    pktbuf_reset(&b);
    raw_row(v);
    ck_assert(!parse_b());
    v[2] = "u";
    pktbuf_reset(&b);
    raw_row(v);
    ck_assert(parse_b());
    b.data[5 + 2 + 4 + 1 + 4 + 6 + 4] = 0; /* the user's only byte */
    ck_assert(!parse_b());
}
END_TEST

static Suite *takeover_suite(void)
{
    Suite *s = suite_create("takeover");
    TCase *tc = tcase_create("rows");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, cancel_is_one_big_endian_number);
    tcase_add_test(tc, client_row_prints_as_pgbouncer);
    tcase_add_test(tc, pooler_row_has_zero_cancel_and_link);
    tcase_add_test(tc, round_trip_with_scram_keys);
    tcase_add_test(tc, pgbouncer_row_parses);
    tcase_add_test(tc, cancel_above_int64_and_negative_spelling);
    tcase_add_test(tc, bad_values_are_refused);
    tcase_add_test(tc, wrong_shape_is_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(takeover_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
