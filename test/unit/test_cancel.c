/*
 * test_cancel.c: pins the cancel-key encoding of peer ids (PgBouncer 1.21+'s, which
 * t_peers.sh checks against PgBouncer 1.25.2 itself): bytes 1-2 carry the id little-endian,
 * the low 2 bits of byte 7 the hops left, and the rest of the key is untouched.
 */
#include "pgusher/cancel.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>

static void wire(uint32_t pid, uint32_t key, uint8_t b[8])
{
    for (int i = 0; i < 4; i++) {
        b[i] = (uint8_t)(pid >> (24 - 8 * i));
        b[4 + i] = (uint8_t)(key >> (24 - 8 * i));
    }
}

START_TEST(peer_id_goes_to_bytes_1_and_2_little_endian)
{
    /* as PgBouncer 1.25.2 sends them: peer 5 -> xx 05 00 ..., 300 -> xx 2c 01, 16383 -> xx ff 3f */
    const int ids[] = {5, 300, 16383, 1};
    const uint8_t lo[] = {0x05, 0x2c, 0xff, 0x01}, hi[] = {0x00, 0x01, 0x3f, 0x00};
    for (int i = 0; i < 4; i++) {
        uint32_t pid = 0xa1b2c3d4u, key = 0xe5f60718u;
        cancel_key_encode(&pid, &key, ids[i]);
        uint8_t b[8];
        wire(pid, key, b);
        ck_assert_int_eq(b[0], 0xa1);
        ck_assert_int_eq(b[1], lo[i]);
        ck_assert_int_eq(b[2], hi[i]);
        ck_assert_int_eq(b[3], 0xd4);
        ck_assert_int_eq(b[7] & 3, 3); /* three hops left */
        ck_assert_int_eq(b[7] & ~3, 0x18);
        ck_assert_int_eq(cancel_key_decode(pid), ids[i]);
    }
}
END_TEST

START_TEST(every_peer_id_round_trips)
{
    for (int id = 1; id <= 16383; id++) {
        uint32_t pid = (uint32_t)rand(), key = (uint32_t)rand();
        cancel_key_encode(&pid, &key, id);
        ck_assert_int_eq(cancel_key_decode(pid), id);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cancel");
    TCase *tc = tcase_create("keys");
    tcase_add_test(tc, peer_id_goes_to_bytes_1_and_2_little_endian);
    tcase_add_test(tc, every_peer_id_round_trips);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
