/*
 * test_pktbuf.c: pins the protocol message builder (length fields, exact bytes of the messages
 * the pooler generates) and the bounds-checked reader. Pure memory; no sockets.
 */
#include "pgusher/pktbuf.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static struct pktbuf b;

static void setup(void)
{
    pktbuf_init(&b);
}

static void teardown(void)
{
    pktbuf_free(&b);
}

/* Asserts the buffer holds exactly the n bytes of want, showing the first difference. */
static void assert_bytes(const struct pktbuf *pb, const void *want, size_t n)
{
    const uint8_t *w = want;
    ck_assert(!pb->failed);
    ck_assert_uint_eq(pb->len, n);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(pb->data[i] == w[i], "byte %zu: got 0x%02x, want 0x%02x", i, pb->data[i],
                      w[i]);
}

/* ---- building ---- */

START_TEST(init_is_empty_and_not_failed)
{
    ck_assert_uint_eq(b.len, 0);
    ck_assert(!b.failed);
}
END_TEST

START_TEST(put_ints_are_big_endian)
{
    pktbuf_put_byte(&b, 0xab);
    pktbuf_put_int16(&b, 0x1234);
    pktbuf_put_int32(&b, 0xdeadbeef);
    static const uint8_t want[] = {0xab, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef};
    assert_bytes(&b, want, sizeof(want));
}
END_TEST

START_TEST(put_string_includes_terminating_nul)
{
    pktbuf_put_string(&b, "ab");
    pktbuf_put_string(&b, "");
    static const uint8_t want[] = {'a', 'b', 0, 0};
    assert_bytes(&b, want, sizeof(want));
}
END_TEST

START_TEST(put_bytes_zero_length_adds_nothing)
{
    pktbuf_put_bytes(&b, "x", 0);
    pktbuf_put_bytes(&b, NULL, 0);
    ck_assert_uint_eq(b.len, 0);
    ck_assert(!b.failed);
}
END_TEST

START_TEST(typed_message_length_counts_itself_not_type)
{
    pktbuf_start(&b, 'Q');
    pktbuf_put_string(&b, "SELECT 1");
    pktbuf_finish(&b);
    ck_assert_uint_eq(b.len, 1 + 4 + 9);
    ck_assert_int_eq(b.data[0], 'Q');
    ck_assert_uint_eq(pkt_get32(b.data + 1), 4 + 9);
    ck_assert_str_eq((const char *)b.data + 5, "SELECT 1");
}
END_TEST

START_TEST(empty_typed_message_has_length_four)
{
    pktbuf_start(&b, 'S'); /* Sync */
    pktbuf_finish(&b);
    static const uint8_t want[] = {'S', 0, 0, 0, 4};
    assert_bytes(&b, want, sizeof(want));
}
END_TEST

START_TEST(untyped_startup_message_has_no_type_byte)
{
    pktbuf_start(&b, 0);
    pktbuf_put_int32(&b, 196608); /* protocol 3.0 */
    pktbuf_put_string(&b, "user");
    pktbuf_put_string(&b, "bob");
    pktbuf_put_byte(&b, 0);
    pktbuf_finish(&b);
    /* length 4 + version 4 + "user\0" 5 + "bob\0" 4 + terminator 1 = 18 */
    static const uint8_t want[] = {0,   0,   0,   0x12, 0,   3,   0,   0, 'u',
                                   's', 'e', 'r', 0,    'b', 'o', 'b', 0, 0};
    assert_bytes(&b, want, sizeof(want));
}
END_TEST

START_TEST(second_message_gets_its_own_length)
{
    pktbuf_start(&b, 'Q');
    pktbuf_put_string(&b, "x");
    pktbuf_finish(&b);
    pktbuf_start(&b, 'Q');
    pktbuf_put_string(&b, "yyyy");
    pktbuf_finish(&b);
    static const uint8_t want[] = {'Q', 0, 0, 0, 6, 'x', 0, 'Q', 0, 0, 0, 9, 'y', 'y', 'y', 'y', 0};
    assert_bytes(&b, want, sizeof(want));
}
END_TEST

START_TEST(large_message_grows_and_length_is_exact)
{
    size_t n = 100000;
    char *big = malloc(n);
    ck_assert_ptr_nonnull(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    pktbuf_start(&b, 'd');
    pktbuf_put_bytes(&b, big, n);
    pktbuf_finish(&b);
    ck_assert(!b.failed);
    ck_assert_uint_eq(b.len, 1 + 4 + n);
    ck_assert_uint_ge(b.cap, b.len);
    ck_assert_uint_eq(pkt_get32(b.data + 1), 4 + n);
    ck_assert_int_eq(memcmp(b.data + 5, big, n), 0);
    free(big);
}
END_TEST

START_TEST(reset_empties_and_keeps_building)
{
    pktbuf_ready(&b, 'I');
    pktbuf_reset(&b);
    ck_assert_uint_eq(b.len, 0);
    pktbuf_ready(&b, 'T');
    static const uint8_t want[] = {'Z', 0, 0, 0, 5, 'T'};
    assert_bytes(&b, want, sizeof(want));
}
END_TEST

START_TEST(failed_buffer_ignores_further_writes)
{
    pktbuf_put_byte(&b, 1);
    b.failed = true;
    size_t len = b.len;
    pktbuf_put_int32(&b, 7);
    pktbuf_start(&b, 'Q');
    pktbuf_finish(&b);
    ck_assert_uint_eq(b.len, len);
    ck_assert(b.failed);
    pktbuf_reset(&b);
    ck_assert(!b.failed);
}
END_TEST

/* ---- convenience builders: exact bytes ---- */

START_TEST(error_message_exact_bytes)
{
    pktbuf_error(&b, "FATAL", "08P01", "bad");
    static const uint8_t want[] = {
        'E', 0,   0,   0,   31,          /* type, length */
        'S', 'F', 'A', 'T', 'A', 'L', 0, /* severity */
        'V', 'F', 'A', 'T', 'A', 'L', 0, /* non-localized severity */
        'C', '0', '8', 'P', '0', '1', 0, /* sqlstate */
        'M', 'b', 'a', 'd', 0,           /* message */
        0,                               /* terminator */
    };
    assert_bytes(&b, want, sizeof(want));
    ck_assert_uint_eq(pkt_get32(b.data + 1), sizeof(want) - 1);
}
END_TEST

START_TEST(notice_message_exact_bytes)
{
    pktbuf_notice(&b, "00000", "hi");
    static const uint8_t want[] = {
        'N', 0,   0,   0,   32,               /* type, length */
        'S', 'N', 'O', 'T', 'I', 'C', 'E', 0, /* severity */
        'V', 'N', 'O', 'T', 'I', 'C', 'E', 0, /* non-localized */
        'C', '0', '0', '0', '0', '0', 0,      /* sqlstate */
        'M', 'h', 'i', 0,                     /* message */
        0,                                    /* terminator */
    };
    assert_bytes(&b, want, sizeof(want));
    ck_assert_uint_eq(pkt_get32(b.data + 1), sizeof(want) - 1);
}
END_TEST

START_TEST(param_status_exact_bytes)
{
    pktbuf_param_status(&b, "TimeZone", "UTC");
    static const uint8_t want[] = {'S', 0,   0,   0,   17, 'T', 'i', 'm', 'e',
                                   'Z', 'o', 'n', 'e', 0,  'U', 'T', 'C', 0};
    assert_bytes(&b, want, sizeof(want));
}
END_TEST

START_TEST(param_status_empty_value)
{
    pktbuf_param_status(&b, "a", "");
    static const uint8_t want[] = {'S', 0, 0, 0, 7, 'a', 0, 0};
    assert_bytes(&b, want, sizeof(want));
}
END_TEST

START_TEST(ready_for_query_exact_bytes)
{
    pktbuf_ready(&b, 'I');
    pktbuf_ready(&b, 'E');
    static const uint8_t want[] = {'Z', 0, 0, 0, 5, 'I', 'Z', 0, 0, 0, 5, 'E'};
    assert_bytes(&b, want, sizeof(want));
}
END_TEST

START_TEST(auth_ok_exact_bytes)
{
    pktbuf_auth(&b, 0, NULL, 0);
    static const uint8_t want[] = {'R', 0, 0, 0, 8, 0, 0, 0, 0};
    assert_bytes(&b, want, sizeof(want));
}
END_TEST

START_TEST(auth_md5_with_salt_exact_bytes)
{
    static const uint8_t salt[4] = {0x01, 0xff, 0x80, 0x7f};
    pktbuf_auth(&b, 5, salt, sizeof(salt));
    static const uint8_t want[] = {'R', 0, 0, 0, 12, 0, 0, 0, 5, 0x01, 0xff, 0x80, 0x7f};
    assert_bytes(&b, want, sizeof(want));
}
END_TEST

START_TEST(auth_sasl_mechanism_list_exact_bytes)
{
    static const char mech[] = "SCRAM-SHA-256\0"; /* sizeof includes both NULs */
    pktbuf_auth(&b, 10, mech, sizeof(mech));
    ck_assert_uint_eq(b.len, 1 + 4 + 4 + 15);
    ck_assert_int_eq(b.data[0], 'R');
    ck_assert_uint_eq(pkt_get32(b.data + 1), 4 + 4 + 15);
    ck_assert_uint_eq(pkt_get32(b.data + 5), 10);
    ck_assert_int_eq(memcmp(b.data + 9, "SCRAM-SHA-256\0\0", 15), 0);
}
END_TEST

/* ---- reader ---- */

START_TEST(reader_reads_fields_in_order)
{
    static const uint8_t body[] = {0, 3, 0, 0, 'u', 's', 'e', 'r', 0, 'x', 0, 0x7f, 9, 8};
    struct pktreader r;
    pktreader_init(&r, body, sizeof(body));
    ck_assert_uint_eq(pktreader_int32(&r), 196608);
    ck_assert_str_eq(pktreader_string(&r), "user");
    ck_assert_str_eq(pktreader_string(&r), "x");
    ck_assert_uint_eq(pktreader_byte(&r), 0x7f);
    const uint8_t *p = pktreader_bytes(&r, 2);
    ck_assert_ptr_eq(p, body + 12);
    ck_assert(!r.bad);
    ck_assert_ptr_eq(r.p, r.end);
}
END_TEST

START_TEST(reader_int32_high_bit_is_unsigned)
{
    static const uint8_t body[] = {0x80, 0, 0, 1};
    struct pktreader r;
    pktreader_init(&r, body, sizeof(body));
    ck_assert_uint_eq(pktreader_int32(&r), 0x80000001u);
    ck_assert(!r.bad);
}
END_TEST

START_TEST(reader_truncated_int32_is_bad_and_returns_zero)
{
    /* Heap copy of exactly 3 bytes so ASan catches any read past the end. */
    uint8_t *body = malloc(3);
    ck_assert_ptr_nonnull(body);
    body[0] = 1;
    body[1] = 2;
    body[2] = 3;
    struct pktreader r;
    pktreader_init(&r, body, 3);
    ck_assert_uint_eq(pktreader_int32(&r), 0);
    ck_assert(r.bad);
    ck_assert_ptr_eq(r.p, body); /* cursor did not move */
    free(body);
}
END_TEST

START_TEST(reader_unterminated_string_is_bad_and_null)
{
    uint8_t *body = malloc(3);
    ck_assert_ptr_nonnull(body);
    memcpy(body, "abc", 3);
    struct pktreader r;
    pktreader_init(&r, body, 3);
    ck_assert_ptr_null(pktreader_string(&r));
    ck_assert(r.bad);
    free(body);
}
END_TEST

START_TEST(reader_string_at_end_is_bad)
{
    static const uint8_t body[] = {'a', 0};
    struct pktreader r;
    pktreader_init(&r, body, sizeof(body));
    ck_assert_str_eq(pktreader_string(&r), "a");
    ck_assert(!r.bad);
    ck_assert_ptr_null(pktreader_string(&r));
    ck_assert(r.bad);
}
END_TEST

START_TEST(reader_empty_string_is_fine)
{
    static const uint8_t body[] = {0};
    struct pktreader r;
    pktreader_init(&r, body, sizeof(body));
    ck_assert_str_eq(pktreader_string(&r), "");
    ck_assert(!r.bad);
}
END_TEST

START_TEST(reader_nul_past_length_is_not_used)
{
    /* The NUL lives in memory after the body but outside its length. */
    static const uint8_t mem[] = {'a', 'b', 0};
    struct pktreader r;
    pktreader_init(&r, mem, 2);
    ck_assert_ptr_null(pktreader_string(&r));
    ck_assert(r.bad);
}
END_TEST

START_TEST(reader_byte_past_end_is_bad)
{
    static const uint8_t body[] = {42};
    struct pktreader r;
    pktreader_init(&r, body, sizeof(body));
    ck_assert_uint_eq(pktreader_byte(&r), 42);
    ck_assert(!r.bad);
    ck_assert_uint_eq(pktreader_byte(&r), 0);
    ck_assert(r.bad);
}
END_TEST

START_TEST(reader_bytes_more_than_remaining_is_bad)
{
    static const uint8_t body[] = {1, 2, 3, 4, 5};
    struct pktreader r;
    pktreader_init(&r, body, sizeof(body));
    ck_assert_ptr_eq(pktreader_bytes(&r, 2), body);
    ck_assert_ptr_null(pktreader_bytes(&r, 4));
    ck_assert(r.bad);
}
END_TEST

START_TEST(reader_bytes_huge_count_does_not_wrap)
{
    static const uint8_t body[] = {1, 2, 3, 4};
    struct pktreader r;
    pktreader_init(&r, body, sizeof(body));
    pktreader_byte(&r);
    ck_assert_ptr_null(pktreader_bytes(&r, SIZE_MAX));
    ck_assert(r.bad);
}
END_TEST

START_TEST(reader_bytes_exact_remaining_is_fine)
{
    static const uint8_t body[] = {1, 2, 3};
    struct pktreader r;
    pktreader_init(&r, body, sizeof(body));
    ck_assert_ptr_eq(pktreader_bytes(&r, 3), body);
    ck_assert(!r.bad);
    ck_assert_ptr_eq(pktreader_bytes(&r, 0), body + 3);
    ck_assert(!r.bad);
}
END_TEST

START_TEST(reader_bad_is_sticky)
{
    static const uint8_t body[] = {1, 2, 'a', 0, 0, 0, 0, 9};
    struct pktreader r;
    pktreader_init(&r, body, sizeof(body));
    ck_assert_ptr_null(pktreader_bytes(&r, 100));
    ck_assert(r.bad);
    /* Everything after the first failure fails, even reads that would fit. */
    ck_assert_uint_eq(pktreader_byte(&r), 0);
    ck_assert_ptr_null(pktreader_string(&r));
    ck_assert_uint_eq(pktreader_int32(&r), 0);
    ck_assert_ptr_null(pktreader_bytes(&r, 1));
    ck_assert_ptr_eq(r.p, body);
}
END_TEST

START_TEST(reader_empty_body)
{
    static const uint8_t body[1] = {0};
    struct pktreader r;
    pktreader_init(&r, body, 0);
    ck_assert_ptr_null(pktreader_string(&r));
    ck_assert(r.bad);
    pktreader_init(&r, body, 0);
    ck_assert_uint_eq(pktreader_int32(&r), 0);
    ck_assert(r.bad);
}
END_TEST

START_TEST(reader_round_trips_built_error)
{
    pktbuf_error(&b, "ERROR", "42P01", "no such table");
    ck_assert(!b.failed);
    uint32_t len = pkt_get32(b.data + 1);
    ck_assert_uint_eq(len + 1, b.len);
    struct pktreader r;
    pktreader_init(&r, b.data + 5, len - 4);
    const char *want[][2] = {
        {"S", "ERROR"}, {"V", "ERROR"}, {"C", "42P01"}, {"M", "no such table"}};
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(pktreader_byte(&r), want[i][0][0]);
        ck_assert_str_eq(pktreader_string(&r), want[i][1]);
    }
    ck_assert_int_eq(pktreader_byte(&r), 0);
    ck_assert(!r.bad);
    ck_assert_ptr_eq(r.p, r.end);
}
END_TEST

static Suite *pktbuf_suite(void)
{
    Suite *s = suite_create("pktbuf");
    TCase *tc;

    tc = tcase_create("build");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, init_is_empty_and_not_failed);
    tcase_add_test(tc, put_ints_are_big_endian);
    tcase_add_test(tc, put_string_includes_terminating_nul);
    tcase_add_test(tc, put_bytes_zero_length_adds_nothing);
    tcase_add_test(tc, typed_message_length_counts_itself_not_type);
    tcase_add_test(tc, empty_typed_message_has_length_four);
    tcase_add_test(tc, untyped_startup_message_has_no_type_byte);
    tcase_add_test(tc, second_message_gets_its_own_length);
    tcase_add_test(tc, large_message_grows_and_length_is_exact);
    tcase_add_test(tc, reset_empties_and_keeps_building);
    tcase_add_test(tc, failed_buffer_ignores_further_writes);
    suite_add_tcase(s, tc);

    tc = tcase_create("builders");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, error_message_exact_bytes);
    tcase_add_test(tc, notice_message_exact_bytes);
    tcase_add_test(tc, param_status_exact_bytes);
    tcase_add_test(tc, param_status_empty_value);
    tcase_add_test(tc, ready_for_query_exact_bytes);
    tcase_add_test(tc, auth_ok_exact_bytes);
    tcase_add_test(tc, auth_md5_with_salt_exact_bytes);
    tcase_add_test(tc, auth_sasl_mechanism_list_exact_bytes);
    suite_add_tcase(s, tc);

    tc = tcase_create("reader");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, reader_reads_fields_in_order);
    tcase_add_test(tc, reader_int32_high_bit_is_unsigned);
    tcase_add_test(tc, reader_truncated_int32_is_bad_and_returns_zero);
    tcase_add_test(tc, reader_unterminated_string_is_bad_and_null);
    tcase_add_test(tc, reader_string_at_end_is_bad);
    tcase_add_test(tc, reader_empty_string_is_fine);
    tcase_add_test(tc, reader_nul_past_length_is_not_used);
    tcase_add_test(tc, reader_byte_past_end_is_bad);
    tcase_add_test(tc, reader_bytes_more_than_remaining_is_bad);
    tcase_add_test(tc, reader_bytes_huge_count_does_not_wrap);
    tcase_add_test(tc, reader_bytes_exact_remaining_is_fine);
    tcase_add_test(tc, reader_bad_is_sticky);
    tcase_add_test(tc, reader_empty_body);
    tcase_add_test(tc, reader_round_trips_built_error);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(pktbuf_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
