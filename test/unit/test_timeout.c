/*
 * test_timeout.c: pins timeout_expired(), the one rule every janitor timeout goes through:
 * zero (or unset) timeouts and unset starts never expire, the boundary is strict, and a
 * clock that appears to go backwards never expires anything.
 */
#include "pgusher/runtime.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#define SEC 1000000ULL

START_TEST(zero_timeout_never_expires)
{
    ck_assert(!timeout_expired(1, 1 + 1000 * SEC, 0));
    ck_assert(!timeout_expired(1, UINT64_MAX, 0));
}
END_TEST

START_TEST(negative_timeout_never_expires)
{
    /* CF_UNSET (-1) and any other negative value mean "no timeout". */
    ck_assert(!timeout_expired(1, 1 + 1000 * SEC, CF_UNSET));
    ck_assert(!timeout_expired(1, UINT64_MAX, INT64_MIN));
}
END_TEST

START_TEST(unset_start_never_expires)
{
    ck_assert(!timeout_expired(0, 1000 * SEC, 1));
    ck_assert(!timeout_expired(0, UINT64_MAX, (usec_t)SEC));
}
END_TEST

START_TEST(elapsed_less_than_timeout_is_not_expired)
{
    ck_assert(!timeout_expired(100 * SEC, 100 * SEC + 4 * SEC, (usec_t)(5 * SEC)));
    ck_assert(!timeout_expired(100 * SEC, 100 * SEC, (usec_t)(5 * SEC)));
}
END_TEST

START_TEST(elapsed_exactly_equal_is_not_expired)
{
    ck_assert(!timeout_expired(100 * SEC, 105 * SEC, (usec_t)(5 * SEC)));
    ck_assert(!timeout_expired(1, 2, 1));
}
END_TEST

START_TEST(elapsed_one_past_timeout_is_expired)
{
    ck_assert(timeout_expired(100 * SEC, 105 * SEC + 1, (usec_t)(5 * SEC)));
    ck_assert(timeout_expired(1, 3, 1));
}
END_TEST

START_TEST(long_past_timeout_is_expired)
{
    ck_assert(timeout_expired(1, UINT64_MAX, 1));
    ck_assert(timeout_expired(1, UINT64_MAX, INT64_MAX));
}
END_TEST

START_TEST(clock_going_backwards_is_not_expired)
{
    /* now < since must not wrap around into a huge elapsed time. */
    ck_assert(!timeout_expired(100 * SEC, 99 * SEC, 1));
    ck_assert(!timeout_expired(100 * SEC, 1, 1));
    ck_assert(!timeout_expired(UINT64_MAX, 0, 1));
}
END_TEST

START_TEST(now_usec_is_monotonic_and_nonzero)
{
    uint64_t a = now_usec();
    uint64_t b = now_usec();
    ck_assert_uint_gt(a, 0);
    ck_assert_uint_ge(b, a);
    /* A fresh start is never already expired. */
    ck_assert(!timeout_expired(a, b, 1000 * (usec_t)SEC));
}
END_TEST

static Suite *timeout_suite(void)
{
    Suite *s = suite_create("timeout");
    TCase *tc;

    tc = tcase_create("disabled");
    tcase_add_test(tc, zero_timeout_never_expires);
    tcase_add_test(tc, negative_timeout_never_expires);
    tcase_add_test(tc, unset_start_never_expires);
    suite_add_tcase(s, tc);

    tc = tcase_create("boundary");
    tcase_add_test(tc, elapsed_less_than_timeout_is_not_expired);
    tcase_add_test(tc, elapsed_exactly_equal_is_not_expired);
    tcase_add_test(tc, elapsed_one_past_timeout_is_expired);
    tcase_add_test(tc, long_past_timeout_is_expired);
    suite_add_tcase(s, tc);

    tc = tcase_create("clock");
    tcase_add_test(tc, clock_going_backwards_is_not_expired);
    tcase_add_test(tc, now_usec_is_monotonic_and_nonzero);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(timeout_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
