/*
 * test_health.c: pins the fall/rise state machine (hc_feed, hc_force_down) by feeding it
 * sequences of check results, as a fake clock would: how many successes bring a backend
 * up, how many failures take it down, what resets a streak, when fast_start applies, and
 * that the return value reports exactly the state changes. Also backend_parse_lsn() and
 * hc_parse_probe_row(), the probe query's DataRow parser, on good rows and hostile ones.
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

/* ---------------------------------------------------------------- probe rows */

struct row {
    uint8_t b[512];
    uint32_t len;
};

static void row_put32(struct row *r, uint32_t v)
{
    r->b[r->len++] = (uint8_t)(v >> 24);
    r->b[r->len++] = (uint8_t)(v >> 16);
    r->b[r->len++] = (uint8_t)(v >> 8);
    r->b[r->len++] = (uint8_t)v;
}

/* A DataRow body from column texts (NULL = SQL NULL). */
static struct row make_row(int n, const char *const *cols)
{
    struct row r = {.len = 0};
    r.b[r.len++] = (uint8_t)(n >> 8);
    r.b[r.len++] = (uint8_t)n;
    for (int i = 0; i < n; i++) {
        if (!cols[i]) {
            row_put32(&r, 0xffffffffu);
            continue;
        }
        uint32_t l = (uint32_t)strlen(cols[i]);
        row_put32(&r, l);
        memcpy(r.b + r.len, cols[i], l);
        r.len += l;
    }
    return r;
}

static const char *const standby_cols[] = {"t", "16/B374D848", "1.5", "16/B3750000"};
static const char *const primary_cols[] = {"f", "0/3000148", "0", NULL};

START_TEST(probe_row_standby_and_primary)
{
    struct hc_probe_row out;
    struct row r = make_row(4, standby_cols);
    ck_assert(hc_parse_probe_row(r.b, r.len, &out));
    ck_assert_int_eq(out.role, ROLE_STANDBY);
    ck_assert_uint_eq(out.lsn, 0x16B374D848ULL);
    ck_assert_uint_eq(out.receive_lsn, 0x16B3750000ULL);
    ck_assert(out.replay_age > 1.49 && out.replay_age < 1.51);
    r = make_row(4, primary_cols);
    ck_assert(hc_parse_probe_row(r.b, r.len, &out));
    ck_assert_int_eq(out.role, ROLE_PRIMARY);
    ck_assert_uint_eq(out.lsn, 0x3000148ULL);
    ck_assert_uint_eq(out.receive_lsn, 0);
    r = make_row(3, primary_cols); /* an older query without the receive position */
    ck_assert(hc_parse_probe_row(r.b, r.len, &out));
}
END_TEST

START_TEST(probe_row_four_byte_datarow_is_refused)
{
    /* The old parser read column lengths past the end of this message. */
    static const uint8_t four[4] = {0, 3, 0, 0};
    struct hc_probe_row out;
    ck_assert(!hc_parse_probe_row(four, sizeof(four), &out));
    ck_assert(!hc_parse_probe_row(four, 0, &out));
    ck_assert(!hc_parse_probe_row(four, 1, &out));
}
END_TEST

START_TEST(probe_row_every_truncation_is_refused)
{
    struct row r = make_row(4, standby_cols);
    struct hc_probe_row out;
    for (uint32_t n = 0; n < r.len; n++) {
        /* A copy of exactly n bytes on the heap: ASan sees any read past it. */
        uint8_t *cut = malloc(n ? n : 1);
        memcpy(cut, r.b, n);
        ck_assert_msg(!hc_parse_probe_row(cut, n, &out), "accepted %u of %u bytes", n, r.len);
        free(cut);
    }
}
END_TEST

START_TEST(probe_row_lengths_beyond_the_message_are_refused)
{
    struct hc_probe_row out;
    struct row r = {.len = 0};
    r.b[r.len++] = 0;
    r.b[r.len++] = 4;
    row_put32(&r, 1);
    r.b[r.len++] = 't';
    row_put32(&r, 0x7fffffffu); /* claims 2 GB */
    r.b[r.len++] = '0';
    ck_assert(!hc_parse_probe_row(r.b, r.len, &out));
    r.len = 0;
    r.b[r.len++] = 0xff; /* 65535 columns */
    r.b[r.len++] = 0xff;
    row_put32(&r, 1);
    r.b[r.len++] = 't';
    ck_assert(!hc_parse_probe_row(r.b, r.len, &out));
}
END_TEST

START_TEST(probe_row_bad_contents_are_refused)
{
    struct hc_probe_row out;
    static const char *const few[] = {"t", "0/1"};
    static const char *const role_null[] = {NULL, "0/1", "0", "0/1"};
    static const char *const role_odd[] = {"yes", "0/1", "0", "0/1"};
    static const char *const age_nan[] = {"t", "0/1", "nan", "0/1"};
    static const char *const age_neg[] = {"t", "0/1", "-5", "0/1"};
    static const char *const age_text[] = {"t", "0/1", "12abc", "0/1"};
    struct row r = make_row(2, few);
    ck_assert(!hc_parse_probe_row(r.b, r.len, &out));
    r = make_row(4, role_null);
    ck_assert(!hc_parse_probe_row(r.b, r.len, &out));
    r = make_row(4, role_odd);
    ck_assert(!hc_parse_probe_row(r.b, r.len, &out));
    r = make_row(4, age_nan);
    ck_assert(!hc_parse_probe_row(r.b, r.len, &out));
    r = make_row(4, age_neg);
    ck_assert(!hc_parse_probe_row(r.b, r.len, &out));
    r = make_row(4, age_text);
    ck_assert(!hc_parse_probe_row(r.b, r.len, &out));
    r = make_row(4, standby_cols);
    r.b[r.len++] = 0; /* trailing garbage */
    ck_assert(!hc_parse_probe_row(r.b, r.len, &out));
}
END_TEST

static Suite *health_suite(void)
{
    Suite *s = suite_create("health");
    TCase *tc;

    tc = tcase_create("probe_row");
    tcase_add_test(tc, probe_row_standby_and_primary);
    tcase_add_test(tc, probe_row_four_byte_datarow_is_refused);
    tcase_add_test(tc, probe_row_every_truncation_is_refused);
    tcase_add_test(tc, probe_row_lengths_beyond_the_message_are_refused);
    tcase_add_test(tc, probe_row_bad_contents_are_refused);
    suite_add_tcase(s, tc);

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
