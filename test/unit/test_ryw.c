/*
 * test_ryw.c: pins ryw.c: a write is remembered per (user, address) pair, for
 * RYW_KEEP_USEC; expiry goes oldest first; the table never holds more than RYW_MAX_ENTRIES
 * (the oldest write is forgotten first) and survives growth.
 */
#include "pgusher/ryw.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#define SEC 1000000LL

static usec_t at_of(const char *user, const char *addr, usec_t now)
{
    const struct ryw_write *w = ryw_find(user, addr, now);
    return w ? w->at : 0;
}

START_TEST(a_new_write_forgets_the_position_of_the_last)
{
    ryw_reset();
    ryw_note_write("alice", "x", SEC);
    ryw_find("alice", "x", SEC)->lsn = 42;
    ck_assert_int_eq((int)ryw_find("alice", "x", SEC)->lsn, 42);
    ryw_note_write("alice", "x", 2 * SEC);
    ck_assert_int_eq((int)ryw_find("alice", "x", 2 * SEC)->lsn, 0);
    ryw_reset();
}
END_TEST

START_TEST(write_is_remembered_per_user_and_address)
{
    ryw_reset();
    ryw_note_write("alice", "10.0.0.1", 5 * SEC);
    ck_assert_int_eq(at_of("alice", "10.0.0.1", 6 * SEC), 5 * SEC);
    ck_assert_int_eq(at_of("alice", "10.0.0.2", 6 * SEC), 0);
    ck_assert_int_eq(at_of("bob", "10.0.0.1", 6 * SEC), 0);
    /* "ab" + "c" is not "a" + "bc" */
    ryw_note_write("ab", "c", 5 * SEC);
    ck_assert_int_eq(at_of("a", "bc", 6 * SEC), 0);
    ryw_note_write("alice", "10.0.0.1", 7 * SEC);
    ck_assert_int_eq(at_of("alice", "10.0.0.1", 8 * SEC), 7 * SEC);
    ck_assert_int_eq((int)ryw_count(), 2);
    ryw_reset();
    ck_assert_int_eq((int)ryw_count(), 0);
}
END_TEST

START_TEST(old_writes_are_forgotten_oldest_first)
{
    ryw_reset();
    ryw_note_write("a", "x", 1 * SEC);
    ryw_note_write("b", "x", 2 * SEC);
    ryw_note_write("a", "x", 3 * SEC); /* a moves behind b */
    ck_assert_int_eq(at_of("b", "x", 2 * SEC + RYW_KEEP_USEC + 1), 0);
    ryw_expire(2 * SEC + RYW_KEEP_USEC + 1);
    ck_assert_int_eq((int)ryw_count(), 1);
    ck_assert_int_eq(at_of("a", "x", 2 * SEC + RYW_KEEP_USEC + 1), 3 * SEC);
    ryw_expire(3 * SEC + RYW_KEEP_USEC + 1);
    ck_assert_int_eq((int)ryw_count(), 0);
    ryw_reset();
}
END_TEST

START_TEST(table_is_bounded_and_keeps_the_newest)
{
    ryw_reset();
    char user[32];
    int total = RYW_MAX_ENTRIES + 1000;
    for (int i = 0; i < total; i++) {
        snprintf(user, sizeof(user), "u%d", i);
        ryw_note_write(user, "127.0.0.1", SEC + i);
    }
    ck_assert_int_eq((int)ryw_count(), RYW_MAX_ENTRIES);
    ck_assert_int_eq(at_of("u0", "127.0.0.1", 2 * SEC), 0);
    ck_assert_int_eq(at_of("u999", "127.0.0.1", 2 * SEC), 0);
    snprintf(user, sizeof(user), "u%d", total - 1);
    ck_assert_int_eq(at_of(user, "127.0.0.1", 2 * SEC), SEC + total - 1);
    ck_assert_int_eq(at_of("u1000", "127.0.0.1", 2 * SEC), SEC + 1000);
    ryw_reset();
}
END_TEST

START_TEST(long_names_are_cut_not_overflowed)
{
    ryw_reset();
    char big[300];
    for (int i = 0; i < 299; i++)
        big[i] = 'n';
    big[299] = '\0';
    ryw_note_write(big, big, SEC);
    ck_assert_int_eq((int)ryw_count(), 1);
    ryw_reset();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ryw");
    TCase *tc = tcase_create("ryw");
    tcase_add_test(tc, write_is_remembered_per_user_and_address);
    tcase_add_test(tc, a_new_write_forgets_the_position_of_the_last);
    tcase_add_test(tc, old_writes_are_forgotten_oldest_first);
    tcase_add_test(tc, table_is_bounded_and_keeps_the_newest);
    tcase_add_test(tc, long_names_are_cut_not_overflowed);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
