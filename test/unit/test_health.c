/*
 * test_health.c: pins the fall/rise state machine (hc_feed, hc_force_down) by feeding it
 * sequences of check results, as a fake clock would: how many successes bring a backend
 * up, how many failures take it down, what resets a streak, when fast_start applies, and
 * that the return value reports exactly the state changes. Also backend_parse_lsn().
 */
#include "pgusher/backend.h"
#include "pgusher/health.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static struct hc_state fresh(enum be_state st, bool fast_start)
{
    struct hc_state h;
    memset(&h, 0, sizeof(h));
    h.state = st;
    h.fast_start = fast_start;
    return h;
}

/* Feed a sequence ("+" success, "-" failure); returns how many state changes hc_feed
 * reported along the way. */
static int feed(struct hc_state *h, const char *seq, int rise, int fall)
{
    int changes = 0;
    for (const char *c = seq; *c; c++)
        if (hc_feed(h, *c == '+', rise, fall))
            changes++;
    return changes;
}

/* ---------------------------------------------------------------- unknown */

START_TEST(unknown_needs_rise_successes_to_come_up)
{
    struct hc_state h = fresh(BE_UNKNOWN, false);
    ck_assert(!hc_feed(&h, true, 3, 2));
    ck_assert(!hc_feed(&h, true, 3, 2));
    ck_assert_int_eq(h.state, BE_UNKNOWN);
    ck_assert(hc_feed(&h, true, 3, 2));
    ck_assert_int_eq(h.state, BE_UP);
}
END_TEST

START_TEST(unknown_with_fast_start_comes_up_on_first_success)
{
    struct hc_state h = fresh(BE_UNKNOWN, true);
    ck_assert(hc_feed(&h, true, 5, 2));
    ck_assert_int_eq(h.state, BE_UP);
    ck_assert(!h.fast_start);
}
END_TEST

START_TEST(unknown_with_fast_start_still_up_on_success_after_a_failure)
{
    struct hc_state h = fresh(BE_UNKNOWN, true);
    ck_assert(!hc_feed(&h, false, 5, 3));
    ck_assert_int_eq(h.state, BE_UNKNOWN);
    ck_assert(hc_feed(&h, true, 5, 3));
    ck_assert_int_eq(h.state, BE_UP);
}
END_TEST

START_TEST(unknown_goes_down_after_fall_failures)
{
    struct hc_state h = fresh(BE_UNKNOWN, true);
    ck_assert(!hc_feed(&h, false, 2, 3));
    ck_assert(!hc_feed(&h, false, 2, 3));
    ck_assert(hc_feed(&h, false, 2, 3));
    ck_assert_int_eq(h.state, BE_DOWN);
    ck_assert(!h.fast_start);
}
END_TEST

START_TEST(unknown_failure_resets_the_success_streak)
{
    struct hc_state h = fresh(BE_UNKNOWN, false);
    ck_assert_int_eq(feed(&h, "++-++", 3, 5), 0);
    ck_assert_int_eq(h.state, BE_UNKNOWN);
    ck_assert(hc_feed(&h, true, 3, 5));
    ck_assert_int_eq(h.state, BE_UP);
}
END_TEST

/* ---------------------------------------------------------------- up -> down */

START_TEST(up_goes_down_after_exactly_fall_failures)
{
    struct hc_state h = fresh(BE_UP, false);
    ck_assert(!hc_feed(&h, false, 2, 3));
    ck_assert(!hc_feed(&h, false, 2, 3));
    ck_assert_int_eq(h.state, BE_UP);
    ck_assert(hc_feed(&h, false, 2, 3));
    ck_assert_int_eq(h.state, BE_DOWN);
}
END_TEST

START_TEST(up_success_in_between_resets_the_failure_streak)
{
    struct hc_state h = fresh(BE_UP, false);
    ck_assert_int_eq(feed(&h, "--+--+--", 2, 3), 0);
    ck_assert_int_eq(h.state, BE_UP);
    ck_assert(hc_feed(&h, false, 2, 3));
    ck_assert_int_eq(h.state, BE_DOWN);
}
END_TEST

START_TEST(up_successes_report_no_change)
{
    struct hc_state h = fresh(BE_UP, false);
    ck_assert_int_eq(feed(&h, "++++++++++", 2, 3), 0);
    ck_assert_int_eq(h.state, BE_UP);
}
END_TEST

START_TEST(down_failures_report_no_change)
{
    struct hc_state h = fresh(BE_DOWN, false);
    ck_assert_int_eq(feed(&h, "----------", 2, 3), 0);
    ck_assert_int_eq(h.state, BE_DOWN);
}
END_TEST

/* ---------------------------------------------------------------- down -> up */

START_TEST(down_comes_up_after_exactly_rise_successes)
{
    struct hc_state h = fresh(BE_DOWN, false);
    ck_assert(!hc_feed(&h, true, 3, 2));
    ck_assert(!hc_feed(&h, true, 3, 2));
    ck_assert_int_eq(h.state, BE_DOWN);
    ck_assert(hc_feed(&h, true, 3, 2));
    ck_assert_int_eq(h.state, BE_UP);
}
END_TEST

START_TEST(down_failure_in_between_resets_the_success_streak)
{
    struct hc_state h = fresh(BE_DOWN, false);
    ck_assert_int_eq(feed(&h, "++-++-++", 3, 2), 0);
    ck_assert_int_eq(h.state, BE_DOWN);
    ck_assert(hc_feed(&h, true, 3, 2));
    ck_assert_int_eq(h.state, BE_UP);
}
END_TEST

START_TEST(down_ignores_fast_start)
{
    struct hc_state h = fresh(BE_DOWN, true);
    ck_assert(!hc_feed(&h, true, 2, 2));
    ck_assert_int_eq(h.state, BE_DOWN);
    ck_assert(hc_feed(&h, true, 2, 2));
}
END_TEST

START_TEST(flapping_sequence_reports_each_change_once)
{
    /* rise 2, fall 2 */
    struct hc_state h = fresh(BE_UNKNOWN, false);
    const char *seq = "++" /* up */ "-+--" /* down */ "+-++" /* up */ "--" /* down */;
    enum be_state want[] = {BE_UNKNOWN, BE_UP, BE_UP, BE_UP, BE_UP, BE_DOWN, BE_DOWN,
                            BE_DOWN,    BE_DOWN, BE_UP, BE_UP, BE_DOWN};
    bool changed[] = {false, true, false, false, false, true, false,
                      false, false, true, false, true};
    for (int i = 0; seq[i]; i++) {
        ck_assert_int_eq(hc_feed(&h, seq[i] == '+', 2, 2), changed[i]);
        ck_assert_int_eq(h.state, want[i]);
    }
}
END_TEST

START_TEST(after_going_down_fast_start_no_longer_applies)
{
    struct hc_state h = fresh(BE_UNKNOWN, true);
    ck_assert(hc_feed(&h, true, 3, 1));  /* fast start: up */
    ck_assert(hc_feed(&h, false, 3, 1)); /* down */
    ck_assert_int_eq(feed(&h, "++", 3, 1), 0);
    ck_assert(hc_feed(&h, true, 3, 1));
    ck_assert_int_eq(h.state, BE_UP);
}
END_TEST

/* ---------------------------------------------------------------- clamping */

START_TEST(rise_below_one_counts_as_one)
{
    struct hc_state h = fresh(BE_DOWN, false);
    ck_assert(hc_feed(&h, true, 0, 3));
    ck_assert_int_eq(h.state, BE_UP);
    h = fresh(BE_UNKNOWN, false);
    ck_assert(hc_feed(&h, true, -5, 3));
    ck_assert_int_eq(h.state, BE_UP);
}
END_TEST

START_TEST(fall_below_one_counts_as_one)
{
    struct hc_state h = fresh(BE_UP, false);
    ck_assert(hc_feed(&h, false, 3, 0));
    ck_assert_int_eq(h.state, BE_DOWN);
    h = fresh(BE_UP, false);
    ck_assert(hc_feed(&h, false, 3, -1));
    ck_assert_int_eq(h.state, BE_DOWN);
}
END_TEST

/* ---------------------------------------------------------------- force down */

START_TEST(force_down_from_up_reports_a_change)
{
    struct hc_state h = fresh(BE_UP, false);
    ck_assert(hc_force_down(&h));
    ck_assert_int_eq(h.state, BE_DOWN);
}
END_TEST

START_TEST(force_down_from_unknown_reports_a_change)
{
    struct hc_state h = fresh(BE_UNKNOWN, true);
    ck_assert(hc_force_down(&h));
    ck_assert_int_eq(h.state, BE_DOWN);
    ck_assert(!h.fast_start);
}
END_TEST

START_TEST(force_down_when_already_down_reports_no_change)
{
    struct hc_state h = fresh(BE_DOWN, false);
    ck_assert(!hc_force_down(&h));
    ck_assert_int_eq(h.state, BE_DOWN);
}
END_TEST

START_TEST(after_force_down_rise_successes_are_needed)
{
    struct hc_state h = fresh(BE_UNKNOWN, true);
    ck_assert(hc_force_down(&h));
    ck_assert(!hc_feed(&h, true, 3, 2));
    ck_assert(!hc_feed(&h, true, 3, 2));
    ck_assert_int_eq(h.state, BE_DOWN);
    ck_assert(hc_feed(&h, true, 3, 2));
    ck_assert_int_eq(h.state, BE_UP);
}
END_TEST

START_TEST(force_down_discards_a_partial_success_streak)
{
    struct hc_state h = fresh(BE_DOWN, false);
    ck_assert_int_eq(feed(&h, "++", 3, 2), 0);
    ck_assert(!hc_force_down(&h));
    ck_assert_int_eq(feed(&h, "++", 3, 2), 0);
    ck_assert_int_eq(h.state, BE_DOWN);
    ck_assert(hc_feed(&h, true, 3, 2));
}
END_TEST

START_TEST(force_down_discards_a_partial_failure_streak)
{
    /* Up with one failure pending, forced down, back up: the old failure is forgotten. */
    struct hc_state h = fresh(BE_UP, false);
    ck_assert(!hc_feed(&h, false, 1, 2));
    ck_assert(hc_force_down(&h));
    ck_assert(hc_feed(&h, true, 1, 2));
    ck_assert(!hc_feed(&h, false, 1, 2));
    ck_assert_int_eq(h.state, BE_UP);
}
END_TEST

/* ---------------------------------------------------------------- lsn */

START_TEST(parse_lsn_combines_high_and_low_halves)
{
    ck_assert_uint_eq(backend_parse_lsn("16/B374D848"), 0x16B374D848ULL);
    ck_assert_uint_eq(backend_parse_lsn("1/0"), 0x100000000ULL);
    ck_assert_uint_eq(backend_parse_lsn("0/1"), 1);
    ck_assert_uint_eq(backend_parse_lsn("FFFFFFFF/FFFFFFFF"), UINT64_MAX);
}
END_TEST

START_TEST(parse_lsn_zero_is_zero)
{
    ck_assert_uint_eq(backend_parse_lsn("0/0"), 0);
}
END_TEST

START_TEST(parse_lsn_accepts_lower_case)
{
    ck_assert_uint_eq(backend_parse_lsn("a/bc"), 0xA000000BCULL);
}
END_TEST

START_TEST(parse_lsn_low_half_never_spills_into_the_high_half)
{
    ck_assert_uint_eq(backend_parse_lsn("0/100000000") >> 32, 0);
    ck_assert_uint_eq(backend_parse_lsn("2/1FFFFFFFF") >> 32, 2);
}
END_TEST

START_TEST(parse_lsn_garbage_is_zero)
{
    ck_assert_uint_eq(backend_parse_lsn(""), 0);
    ck_assert_uint_eq(backend_parse_lsn("garbage"), 0);
    ck_assert_uint_eq(backend_parse_lsn("16"), 0);
    ck_assert_uint_eq(backend_parse_lsn("16/"), 0);
    ck_assert_uint_eq(backend_parse_lsn("/B374D848"), 0);
    ck_assert_uint_eq(backend_parse_lsn("16-B374D848"), 0);
}
END_TEST

static Suite *health_suite(void)
{
    Suite *s = suite_create("health");
    TCase *tc;

    tc = tcase_create("unknown");
    tcase_add_test(tc, unknown_needs_rise_successes_to_come_up);
    tcase_add_test(tc, unknown_with_fast_start_comes_up_on_first_success);
    tcase_add_test(tc, unknown_with_fast_start_still_up_on_success_after_a_failure);
    tcase_add_test(tc, unknown_goes_down_after_fall_failures);
    tcase_add_test(tc, unknown_failure_resets_the_success_streak);
    suite_add_tcase(s, tc);

    tc = tcase_create("fall");
    tcase_add_test(tc, up_goes_down_after_exactly_fall_failures);
    tcase_add_test(tc, up_success_in_between_resets_the_failure_streak);
    tcase_add_test(tc, up_successes_report_no_change);
    tcase_add_test(tc, down_failures_report_no_change);
    suite_add_tcase(s, tc);

    tc = tcase_create("rise");
    tcase_add_test(tc, down_comes_up_after_exactly_rise_successes);
    tcase_add_test(tc, down_failure_in_between_resets_the_success_streak);
    tcase_add_test(tc, down_ignores_fast_start);
    tcase_add_test(tc, flapping_sequence_reports_each_change_once);
    tcase_add_test(tc, after_going_down_fast_start_no_longer_applies);
    suite_add_tcase(s, tc);

    tc = tcase_create("clamp");
    tcase_add_test(tc, rise_below_one_counts_as_one);
    tcase_add_test(tc, fall_below_one_counts_as_one);
    suite_add_tcase(s, tc);

    tc = tcase_create("force_down");
    tcase_add_test(tc, force_down_from_up_reports_a_change);
    tcase_add_test(tc, force_down_from_unknown_reports_a_change);
    tcase_add_test(tc, force_down_when_already_down_reports_no_change);
    tcase_add_test(tc, after_force_down_rise_successes_are_needed);
    tcase_add_test(tc, force_down_discards_a_partial_success_streak);
    tcase_add_test(tc, force_down_discards_a_partial_failure_streak);
    suite_add_tcase(s, tc);

    tc = tcase_create("lsn");
    tcase_add_test(tc, parse_lsn_combines_high_and_low_halves);
    tcase_add_test(tc, parse_lsn_zero_is_zero);
    tcase_add_test(tc, parse_lsn_accepts_lower_case);
    tcase_add_test(tc, parse_lsn_low_half_never_spills_into_the_high_half);
    tcase_add_test(tc, parse_lsn_garbage_is_zero);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(health_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
