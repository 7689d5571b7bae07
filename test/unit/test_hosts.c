/*
 * test_hosts.c: the pure parts of multi-host support: the fall/rise health state machine
 * (with a fake clock: one call = one check period), eligibility by target_session_attrs and
 * replica lag, the balancing policies, and LSN parsing.
 */
#include "pgusher/balance.h"
#include "pgusher/health.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- fall/rise */

START_TEST(up_needs_fall_consecutive_failures)
{
    struct hc_state h = {.state = BE_UP};
    ck_assert(!hc_feed(&h, false, 2, 3));
    ck_assert(!hc_feed(&h, false, 2, 3));
    ck_assert(!hc_feed(&h, true, 2, 3)); /* a success resets the streak */
    ck_assert(!hc_feed(&h, false, 2, 3));
    ck_assert(!hc_feed(&h, false, 2, 3));
    ck_assert_int_eq(h.state, BE_UP);
    ck_assert(hc_feed(&h, false, 2, 3));
    ck_assert_int_eq(h.state, BE_DOWN);
}
END_TEST

START_TEST(down_needs_rise_consecutive_successes)
{
    struct hc_state h = {.state = BE_DOWN};
    ck_assert(!hc_feed(&h, true, 2, 3));
    ck_assert(!hc_feed(&h, false, 2, 3)); /* a failure resets the streak */
    ck_assert(!hc_feed(&h, true, 2, 3));
    ck_assert_int_eq(h.state, BE_DOWN);
    ck_assert(hc_feed(&h, true, 2, 3));
    ck_assert_int_eq(h.state, BE_UP);
}
END_TEST

START_TEST(startup_host_is_up_after_first_success)
{
    struct hc_state h = {.state = BE_UNKNOWN, .fast_start = true};
    ck_assert(hc_feed(&h, true, 5, 3));
    ck_assert_int_eq(h.state, BE_UP);
    ck_assert(!h.fast_start);
}
END_TEST

START_TEST(added_host_needs_rise_successes)
{
    struct hc_state h = {.state = BE_UNKNOWN};
    ck_assert(!hc_feed(&h, true, 3, 3));
    ck_assert(!hc_feed(&h, true, 3, 3));
    ck_assert_int_eq(h.state, BE_UNKNOWN);
    ck_assert(hc_feed(&h, true, 3, 3));
    ck_assert_int_eq(h.state, BE_UP);
}
END_TEST

START_TEST(rise_and_fall_below_one_count_as_one)
{
    struct hc_state h = {.state = BE_UP};
    ck_assert(hc_feed(&h, false, 0, 0));
    ck_assert_int_eq(h.state, BE_DOWN);
    ck_assert(hc_feed(&h, true, -1, 0));
    ck_assert_int_eq(h.state, BE_UP);
}
END_TEST

START_TEST(force_down_then_rise_again)
{
    struct hc_state h = {.state = BE_UP};
    ck_assert(hc_force_down(&h));
    ck_assert(!hc_force_down(&h));
    ck_assert_int_eq(h.state, BE_DOWN);
    ck_assert(!hc_feed(&h, true, 2, 3));
    ck_assert(hc_feed(&h, true, 2, 3));
    struct hc_state u = {.state = BE_UNKNOWN, .fast_start = true};
    ck_assert(hc_force_down(&u));
    ck_assert(!u.fast_start); /* a passive failure at startup: it must now pass rise */
    ck_assert(!hc_feed(&u, true, 2, 3));
    ck_assert_int_eq(u.state, BE_DOWN);
}
END_TEST

/* A flapping host (alternating results) never changes state with fall=3, rise=2. */
START_TEST(flapping_does_not_flap_state)
{
    struct hc_state h = {.state = BE_UP};
    for (int i = 0; i < 50; i++)
        ck_assert(!hc_feed(&h, i % 2 == 0, 2, 3));
    ck_assert_int_eq(h.state, BE_UP);
}
END_TEST

/* ---------------------------------------------------------------- eligibility */

static struct backend B[4];
static struct backend *P[4];

static void setup_hosts(void)
{
    memset(B, 0, sizeof(B));
    for (int i = 0; i < 4; i++) {
        P[i] = &B[i];
        B[i].hc.state = BE_UP;
        B[i].lag_known = true;
    }
    B[0].role = ROLE_PRIMARY;
    B[0].lsn = 1000;
    B[1].role = ROLE_STANDBY;
    B[1].lsn = 1000;
    B[2].role = ROLE_STANDBY;
    B[2].lsn = 1000;
}

static int elig(int n, int tsa, usec_t lag, int *out, char *why)
{
    return lb_eligible(P, n, tsa, lag, out, why, 128);
}

START_TEST(read_write_picks_the_primary_only)
{
    int out[4];
    char why[128];
    ck_assert_int_eq(elig(3, TSA_READ_WRITE, 0, out, why), 1);
    ck_assert_int_eq(out[0], 0);
    ck_assert_int_eq(elig(3, TSA_PRIMARY, 0, out, why), 1);
    B[0].hc.state = BE_DOWN;
    ck_assert_int_eq(elig(3, TSA_READ_WRITE, 0, out, why), 0);
    ck_assert_str_eq(why, "no primary is up");
}
END_TEST

START_TEST(standby_targets_skip_primary_and_down_hosts)
{
    int out[4];
    char why[128];
    ck_assert_int_eq(elig(3, TSA_STANDBY, 0, out, why), 2);
    ck_assert_int_eq(out[0], 1);
    ck_assert_int_eq(out[1], 2);
    B[1].hc.state = BE_DOWN;
    ck_assert_int_eq(elig(3, TSA_READ_ONLY, 0, out, why), 1);
    ck_assert_int_eq(out[0], 2);
    B[2].hc.state = BE_DOWN;
    ck_assert_int_eq(elig(3, TSA_STANDBY, 0, out, why), 0);
    ck_assert_str_eq(why, "no standby is up");
}
END_TEST

START_TEST(any_takes_every_up_host)
{
    int out[4];
    ck_assert_int_eq(elig(3, TSA_ANY, 0, out, NULL), 3);
    B[1].hc.state = BE_DOWN;
    ck_assert_int_eq(elig(3, TSA_ANY, 0, out, NULL), 2);
}
END_TEST

START_TEST(prefer_standby_falls_back_to_primary)
{
    int out[4];
    ck_assert_int_eq(elig(3, TSA_PREFER_STANDBY, 0, out, NULL), 2);
    B[1].hc.state = BE_DOWN;
    B[2].hc.state = BE_DOWN;
    ck_assert_int_eq(elig(3, TSA_PREFER_STANDBY, 0, out, NULL), 1);
    ck_assert_int_eq(out[0], 0);
}
END_TEST

START_TEST(unknown_role_is_a_fallback_unless_first_class)
{
    int out[4];
    B[3].hc.state = BE_UP;
    B[3].role = ROLE_UNKNOWN;
    ck_assert_int_eq(elig(4, TSA_STANDBY, 0, out, NULL), 2); /* known standbys win */
    B[1].hc.state = BE_DOWN;
    B[2].hc.state = BE_DOWN;
    ck_assert_int_eq(elig(4, TSA_STANDBY, 0, out, NULL), 1); /* then the unknown one */
    ck_assert_int_eq(out[0], 3);
    B[1].hc.state = BE_UP;
    ck_assert_int_eq(lb_eligible_ex(P, 4, TSA_STANDBY, 0, out, NULL, 0, true), 2);
}
END_TEST

START_TEST(unchecked_startup_host_is_usable_added_host_is_not)
{
    int out[4];
    B[1].hc.state = BE_UNKNOWN;
    B[1].hc.fast_start = true;
    B[2].hc.state = BE_UNKNOWN;
    B[2].hc.fast_start = false;
    ck_assert_int_eq(elig(3, TSA_STANDBY, 0, out, NULL), 1);
    ck_assert_int_eq(out[0], 1);
}
END_TEST

START_TEST(lagging_standby_is_skipped_only_with_unreplayed_wal)
{
    int out[4];
    char why[128];
    B[1].replay_age_sec = 30;
    B[1].lsn = 500; /* behind the primary's 1000 */
    B[2].replay_age_sec = 30;
    B[2].lsn = 1000; /* old timestamp, nothing to replay: idle primary, not lag */
    ck_assert_int_eq(elig(3, TSA_STANDBY, 10 * 1000000LL, out, why), 1);
    ck_assert_int_eq(out[0], 2);
    ck_assert_int_eq(elig(3, TSA_STANDBY, 0, out, why), 2); /* no limit */
    ck_assert_int_eq(elig(3, TSA_STANDBY, 60 * 1000000LL, out, why), 2); /* within limit */
    B[2].lsn = 900;
    ck_assert_int_eq(elig(3, TSA_STANDBY, 10 * 1000000LL, out, why), 0);
    ck_assert_ptr_nonnull(strstr(why, "max_replica_lag"));
}
END_TEST

/* A database of standbys only: "behind" means received but not yet replayed WAL. */
START_TEST(lag_without_primary_uses_received_wal)
{
    int out[4];
    B[1].replay_age_sec = 300; /* idle primary: old timestamp */
    B[1].lsn = B[1].receive_lsn = 500;
    B[2].replay_age_sec = 300;
    B[2].lsn = 500;
    B[2].receive_lsn = 800; /* replay paused */
    ck_assert_int_eq(lb_eligible(&P[1], 2, TSA_STANDBY, 10 * 1000000LL, out, NULL, 0), 1);
    ck_assert_int_eq(out[0], 0);
}
END_TEST

START_TEST(role_acceptance)
{
    ck_assert(lb_role_acceptable(TSA_READ_WRITE, ROLE_PRIMARY));
    ck_assert(!lb_role_acceptable(TSA_READ_WRITE, ROLE_STANDBY));
    ck_assert(!lb_role_acceptable(TSA_STANDBY, ROLE_PRIMARY));
    ck_assert(lb_role_acceptable(TSA_STANDBY, ROLE_UNKNOWN));
    ck_assert(lb_role_acceptable(TSA_ANY, ROLE_STANDBY));
    ck_assert(lb_role_acceptable(TSA_PREFER_STANDBY, ROLE_PRIMARY));
}
END_TEST

/* ---------------------------------------------------------------- choosing */

START_TEST(round_robin_spreads_evenly)
{
    int e[3] = {0, 2, 3};
    int conns[4] = {0};
    int hits[4] = {0};
    unsigned rr = 0;
    for (int i = 0; i < 300; i++)
        hits[lb_pick(e, 3, LB_ROUND_ROBIN, &rr, conns, 0)]++;
    ck_assert_int_eq(hits[0], 100);
    ck_assert_int_eq(hits[1], 0);
    ck_assert_int_eq(hits[2], 100);
    ck_assert_int_eq(hits[3], 100);
}
END_TEST

START_TEST(disable_takes_first_eligible)
{
    int e[2] = {2, 3};
    int conns[4] = {0};
    unsigned rr = 0;
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(lb_pick(e, 2, LB_DISABLE, &rr, conns, (unsigned)i), 2);
}
END_TEST

START_TEST(least_connections_and_random)
{
    int e[3] = {0, 1, 2};
    int conns[3] = {5, 2, 2};
    unsigned rr = 0;
    ck_assert_int_eq(lb_pick(e, 3, LB_LEAST_CONNECTIONS, &rr, conns, 0), 1); /* tie: first */
    conns[2] = 1;
    ck_assert_int_eq(lb_pick(e, 3, LB_LEAST_CONNECTIONS, &rr, conns, 0), 2);
    ck_assert_int_eq(lb_pick(e, 3, LB_RANDOM, &rr, conns, 7), 1);
    ck_assert_int_eq(lb_pick(e, 0, LB_RANDOM, &rr, conns, 7), -1);
}
END_TEST

START_TEST(lsn_parsing)
{
    ck_assert(backend_parse_lsn("16/B374D848") == 0x16B374D848ULL);
    ck_assert(backend_parse_lsn("0/0") == 0);
    ck_assert(backend_parse_lsn("garbage") == 0);
    ck_assert(backend_parse_lsn("1/") == 0);
    ck_assert(backend_parse_lsn("0/3000060") > backend_parse_lsn("0/3000000"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hosts");
    TCase *t = tcase_create("health");
    tcase_add_test(t, up_needs_fall_consecutive_failures);
    tcase_add_test(t, down_needs_rise_consecutive_successes);
    tcase_add_test(t, startup_host_is_up_after_first_success);
    tcase_add_test(t, added_host_needs_rise_successes);
    tcase_add_test(t, rise_and_fall_below_one_count_as_one);
    tcase_add_test(t, force_down_then_rise_again);
    tcase_add_test(t, flapping_does_not_flap_state);
    suite_add_tcase(s, t);
    t = tcase_create("eligibility");
    tcase_add_checked_fixture(t, setup_hosts, NULL);
    tcase_add_test(t, read_write_picks_the_primary_only);
    tcase_add_test(t, standby_targets_skip_primary_and_down_hosts);
    tcase_add_test(t, any_takes_every_up_host);
    tcase_add_test(t, prefer_standby_falls_back_to_primary);
    tcase_add_test(t, unknown_role_is_a_fallback_unless_first_class);
    tcase_add_test(t, unchecked_startup_host_is_usable_added_host_is_not);
    tcase_add_test(t, lagging_standby_is_skipped_only_with_unreplayed_wal);
    tcase_add_test(t, lag_without_primary_uses_received_wal);
    tcase_add_test(t, role_acceptance);
    suite_add_tcase(s, t);
    t = tcase_create("choosing");
    tcase_add_test(t, round_robin_spreads_evenly);
    tcase_add_test(t, disable_takes_first_eligible);
    tcase_add_test(t, least_connections_and_random);
    tcase_add_test(t, lsn_parsing);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
