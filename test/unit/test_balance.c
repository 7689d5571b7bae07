/*
 * test_balance.c: pins lb_eligible() and lb_pick(): which backends may serve a
 * target_session_attrs (best tier only: known role match, then role unknown, then
 * prefer-standby's primary fallback), which standbys max_replica_lag excludes (old replay
 * age AND WAL left to replay), the "why" text when nothing is eligible, and how each
 * load_balance_hosts policy picks among the eligible, and lb_role_acceptable(). Backends are
 * plain structs in memory.
 */
#include "pgusher/balance.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#define SEC 1000000LL
#define MAXB 8

static struct backend be[MAXB];
static struct backend *bes[MAXB];
static int out[MAXB];
static char why[256];

static void reset(void)
{
    memset(be, 0, sizeof(be));
    for (int i = 0; i < MAXB; i++)
        bes[i] = &be[i];
    memset(out, -1, sizeof(out));
    why[0] = '\0';
}

/* A backend with a health state and a role; lag data from a probe when lsn is given. */
static void set(int i, enum be_state st, enum be_role role)
{
    be[i].hc.state = st;
    be[i].role = role;
}

/* Probe data; a standby that received WAL it has not replayed has been so for age seconds
 * (two probes age apart), as a paused replay would show. */
static void set_lag(int i, double age, uint64_t lsn, uint64_t receive_lsn)
{
    be[i].lag_known = true;
    be[i].replay_age_sec = age;
    be[i].lsn = lsn;
    be[i].receive_lsn = receive_lsn;
    be[i].behind.n = 0;
    lb_behind_note(&be[i], 0, receive_lsn, lsn);
    lb_behind_note(&be[i], (usec_t)(age * 1e6), receive_lsn, lsn);
}

static int eligible(int n, int tsa, usec_t max_lag)
{
    return lb_eligible(bes, n, tsa, max_lag, out, why, sizeof(why));
}

/* ---------------------------------------------------------------- health */

START_TEST(any_takes_every_up_backend_in_order)
{
    reset();
    set(0, BE_UP, ROLE_PRIMARY);
    set(1, BE_UP, ROLE_STANDBY);
    set(2, BE_UP, ROLE_UNKNOWN);
    ck_assert_int_eq(eligible(3, TSA_ANY, 0), 3);
    ck_assert_int_eq(out[0], 0);
    ck_assert_int_eq(out[1], 1);
    ck_assert_int_eq(out[2], 2);
}
END_TEST

START_TEST(down_backends_are_never_eligible)
{
    reset();
    set(0, BE_DOWN, ROLE_PRIMARY);
    set(1, BE_UP, ROLE_STANDBY);
    set(2, BE_DOWN, ROLE_STANDBY);
    ck_assert_int_eq(eligible(3, TSA_ANY, 0), 1);
    ck_assert_int_eq(out[0], 1);
}
END_TEST

START_TEST(unknown_state_is_eligible_only_with_fast_start)
{
    reset();
    set(0, BE_UNKNOWN, ROLE_UNKNOWN); /* added by a reload: must pass rise checks first */
    set(1, BE_UNKNOWN, ROLE_UNKNOWN);
    be[1].hc.fast_start = true; /* listed since startup: used at once */
    ck_assert_int_eq(eligible(2, TSA_ANY, 0), 1);
    ck_assert_int_eq(out[0], 1);
}
END_TEST

START_TEST(unchecked_startup_host_is_usable_added_host_is_not)
{
    reset();
    set(0, BE_UP, ROLE_PRIMARY);
    set(1, BE_UNKNOWN, ROLE_STANDBY);
    be[1].hc.fast_start = true; /* listed since startup, not checked yet: used at once */
    set(2, BE_UNKNOWN, ROLE_STANDBY); /* added by a reload: must pass rise checks first */
    ck_assert_int_eq(eligible(3, TSA_STANDBY, 0), 1);
    ck_assert_int_eq(out[0], 1);
}
END_TEST

START_TEST(all_down_says_no_server_is_up)
{
    reset();
    set(0, BE_DOWN, ROLE_PRIMARY);
    set(1, BE_UNKNOWN, ROLE_STANDBY);
    ck_assert_int_eq(eligible(2, TSA_READ_WRITE, 0), 0);
    ck_assert_ptr_nonnull(strstr(why, "no server is up"));
}
END_TEST

START_TEST(no_backends_at_all_is_empty_with_reason)
{
    reset();
    ck_assert_int_eq(eligible(0, TSA_ANY, 0), 0);
    ck_assert_ptr_nonnull(strstr(why, "no server is up"));
}
END_TEST

/* ---------------------------------------------------------------- roles */

START_TEST(read_write_and_primary_take_only_primaries)
{
    int tsas[] = {TSA_READ_WRITE, TSA_PRIMARY};
    for (int t = 0; t < 2; t++) {
        reset();
        set(0, BE_UP, ROLE_STANDBY);
        set(1, BE_UP, ROLE_PRIMARY);
        set(2, BE_UP, ROLE_STANDBY);
        ck_assert_int_eq(eligible(3, tsas[t], 0), 1);
        ck_assert_int_eq(out[0], 1);
    }
}
END_TEST

START_TEST(read_only_and_standby_take_only_standbys)
{
    int tsas[] = {TSA_READ_ONLY, TSA_STANDBY};
    for (int t = 0; t < 2; t++) {
        reset();
        set(0, BE_UP, ROLE_STANDBY);
        set(1, BE_UP, ROLE_PRIMARY);
        set(2, BE_UP, ROLE_STANDBY);
        ck_assert_int_eq(eligible(3, tsas[t], 0), 2);
        ck_assert_int_eq(out[0], 0);
        ck_assert_int_eq(out[1], 2);
    }
}
END_TEST

START_TEST(unknown_role_is_not_used_when_a_known_match_is_up)
{
    reset();
    set(0, BE_UP, ROLE_UNKNOWN);
    set(1, BE_UP, ROLE_PRIMARY);
    ck_assert_int_eq(eligible(2, TSA_READ_WRITE, 0), 1);
    ck_assert_int_eq(out[0], 1);
}
END_TEST

START_TEST(unknown_role_is_the_fallback_when_no_known_match_is_up)
{
    reset();
    set(0, BE_UP, ROLE_UNKNOWN);
    set(1, BE_UP, ROLE_STANDBY);
    set(2, BE_DOWN, ROLE_PRIMARY);
    set(3, BE_UP, ROLE_UNKNOWN);
    ck_assert_int_eq(eligible(4, TSA_READ_WRITE, 0), 2);
    ck_assert_int_eq(out[0], 0);
    ck_assert_int_eq(out[1], 3);
}
END_TEST

START_TEST(only_wrong_role_up_says_no_primary_is_up)
{
    reset();
    set(0, BE_UP, ROLE_STANDBY);
    set(1, BE_DOWN, ROLE_PRIMARY);
    ck_assert_int_eq(eligible(2, TSA_PRIMARY, 0), 0);
    ck_assert_str_eq(why, "no primary is up");
}
END_TEST

START_TEST(only_wrong_role_up_says_no_standby_is_up)
{
    reset();
    set(0, BE_UP, ROLE_PRIMARY);
    set(1, BE_DOWN, ROLE_STANDBY);
    ck_assert_int_eq(eligible(2, TSA_STANDBY, 0), 0);
    ck_assert_str_eq(why, "no standby is up");
}
END_TEST

START_TEST(prefer_standby_takes_standbys_over_primary)
{
    reset();
    set(0, BE_UP, ROLE_PRIMARY);
    set(1, BE_UP, ROLE_STANDBY);
    set(2, BE_UP, ROLE_STANDBY);
    ck_assert_int_eq(eligible(3, TSA_PREFER_STANDBY, 0), 2);
    ck_assert_int_eq(out[0], 1);
    ck_assert_int_eq(out[1], 2);
}
END_TEST

START_TEST(prefer_standby_takes_unknown_role_over_primary)
{
    reset();
    set(0, BE_UP, ROLE_PRIMARY);
    set(1, BE_DOWN, ROLE_STANDBY);
    set(2, BE_UP, ROLE_UNKNOWN);
    ck_assert_int_eq(eligible(3, TSA_PREFER_STANDBY, 0), 1);
    ck_assert_int_eq(out[0], 2);
}
END_TEST

START_TEST(prefer_standby_takes_known_standbys_over_unknown_role)
{
    reset();
    set(0, BE_UP, ROLE_UNKNOWN);
    set(1, BE_UP, ROLE_PRIMARY);
    set(2, BE_UP, ROLE_STANDBY);
    ck_assert_int_eq(eligible(3, TSA_PREFER_STANDBY, 0), 1);
    ck_assert_int_eq(out[0], 2);
}
END_TEST

START_TEST(prefer_standby_falls_back_to_primary_when_no_standby_is_up)
{
    reset();
    set(0, BE_DOWN, ROLE_STANDBY);
    set(1, BE_UP, ROLE_PRIMARY);
    set(2, BE_DOWN, ROLE_UNKNOWN);
    ck_assert_int_eq(eligible(3, TSA_PREFER_STANDBY, 0), 1);
    ck_assert_int_eq(out[0], 1);
}
END_TEST

START_TEST(unknown_first_class_puts_unknown_role_with_known_matches)
{
    reset();
    set(0, BE_UP, ROLE_UNKNOWN);
    set(1, BE_UP, ROLE_PRIMARY);
    set(2, BE_UP, ROLE_STANDBY);
    int k = lb_eligible_ex(bes, 3, TSA_READ_WRITE, 0, out, why, sizeof(why), true);
    ck_assert_int_eq(k, 2);
    ck_assert_int_eq(out[0], 0);
    ck_assert_int_eq(out[1], 1);
}
END_TEST

START_TEST(unknown_role_is_a_fallback_unless_first_class)
{
    reset();
    set(0, BE_UP, ROLE_PRIMARY);
    set(1, BE_UP, ROLE_STANDBY);
    set(2, BE_UP, ROLE_STANDBY);
    set(3, BE_UP, ROLE_UNKNOWN);
    ck_assert_int_eq(eligible(4, TSA_STANDBY, 0), 2); /* known standbys win */
    ck_assert_int_eq(out[0], 1);
    ck_assert_int_eq(out[1], 2);
    be[1].hc.state = BE_DOWN;
    be[2].hc.state = BE_DOWN;
    ck_assert_int_eq(eligible(4, TSA_STANDBY, 0), 1); /* then the unknown one */
    ck_assert_int_eq(out[0], 3);
    be[1].hc.state = BE_UP;
    ck_assert_int_eq(lb_eligible_ex(bes, 4, TSA_STANDBY, 0, out, why, sizeof(why), true), 2);
    ck_assert_int_eq(out[0], 1);
    ck_assert_int_eq(out[1], 3);
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

/* ---------------------------------------------------------------- behind tracking */

START_TEST(behind_is_zero_when_everything_received_is_replayed)
{
    reset();
    set(0, BE_UP, ROLE_STANDBY);
    for (int t = 0; t < 5; t++)
        lb_behind_note(&be[0], t * SEC, 1000 + (uint64_t)t, 1000 + (uint64_t)t);
    ck_assert(be[0].behind_sec == 0.0);
    ck_assert_int_eq(be[0].behind.n, 0);
}
END_TEST

START_TEST(behind_stays_zero_for_a_stream_replayed_between_probes)
{
    /* Always something in flight at the probe, but each probe finds the position of the
     * previous one replayed: a busy, healthy standby. */
    reset();
    set(0, BE_UP, ROLE_STANDBY);
    for (int t = 0; t < 20; t++) {
        uint64_t replayed = 1000 * (uint64_t)t, received = replayed + 500;
        lb_behind_note(&be[0], t * SEC, received, replayed + 600 > received ? replayed : 0);
    }
    ck_assert(be[0].behind_sec < 1.01);
}
END_TEST

START_TEST(behind_grows_from_the_first_unreplayed_position)
{
    reset();
    set(0, BE_UP, ROLE_STANDBY);
    lb_behind_note(&be[0], 10 * SEC, 100, 100);
    lb_behind_note(&be[0], 11 * SEC, 200, 100); /* replay paused from here */
    lb_behind_note(&be[0], 12 * SEC, 300, 100);
    lb_behind_note(&be[0], 14 * SEC, 400, 100);
    ck_assert(be[0].behind_sec == 3.0);
    lb_behind_note(&be[0], 15 * SEC, 400, 250); /* passed 200: behind since 12 s (300) */
    ck_assert(be[0].behind_sec == 3.0);
    lb_behind_note(&be[0], 16 * SEC, 400, 400); /* caught up */
    ck_assert(be[0].behind_sec == 0.0);
}
END_TEST

START_TEST(behind_memory_is_bounded_and_keeps_the_oldest)
{
    reset();
    set(0, BE_UP, ROLE_STANDBY);
    for (int t = 0; t < 100; t++)
        lb_behind_note(&be[0], t * SEC, 1000 + 10 * (uint64_t)t, 1000);
    ck_assert_int_le(be[0].behind.n, (int)(sizeof(be[0].behind.at) / sizeof(be[0].behind.at[0])));
    ck_assert(be[0].behind_sec == 98.0); /* t = 0 had nothing unreplayed */
    /* Replay passes everything but the newest position: still behind, but only since the
     * entry that took the newest positions' place. */
    lb_behind_note(&be[0], 100 * SEC, 1000 + 10 * 100, 1000 + 10 * 98);
    ck_assert(be[0].behind_sec > 0.0);
    ck_assert(be[0].behind_sec <= 100.0);
}
END_TEST

START_TEST(lag_is_zero_for_a_caught_up_standby_with_an_old_replay)
{
    reset();
    set(0, BE_UP, ROLE_STANDBY);
    set_lag(0, 3.6, 5000, 5000); /* idle cluster: last transaction replayed long ago */
    ck_assert(lb_lag_sec(&be[0], 0, false) == 0.0);
    ck_assert(lb_lag_sec(&be[0], 5000, true) == 0.0);
}
END_TEST

START_TEST(lag_of_wal_not_received_yet_is_the_replay_age)
{
    reset();
    set(0, BE_UP, ROLE_STANDBY);
    set_lag(0, 42, 5000, 5000);
    ck_assert(lb_lag_sec(&be[0], 9000, true) == 42.0); /* primary ahead, nothing received */
    ck_assert(lb_lag_sec(&be[0], 0, false) == 0.0);
}
END_TEST

START_TEST(primary_has_no_lag)
{
    reset();
    set(0, BE_UP, ROLE_PRIMARY);
    set_lag(0, 100, 100, 900);
    ck_assert(lb_lag_sec(&be[0], 9000, true) == 0.0);
}
END_TEST

/* ---------------------------------------------------------------- read_your_writes */

START_TEST(ryw_without_a_primary_check_after_the_write_allows_only_the_primary)
{
    reset();
    set(0, BE_UP, ROLE_PRIMARY);
    set_lag(0, 0, 5000, 0);
    be[0].lsn_at = 10 * SEC; /* checked before the write */
    set(1, BE_UP, ROLE_STANDBY);
    set_lag(1, 0, 5000, 5000);
    set(2, BE_UP, ROLE_STANDBY);
    set_lag(2, 0, 5000, 5000);
    int elig[2] = {1, 2}, allowed[3];
    uint64_t req = 0;
    ck_assert_int_eq(lb_ryw_filter(bes, 3, elig, 2, 11 * SEC, &req, allowed), 1);
    ck_assert_int_eq(allowed[0], 0);
}
END_TEST

START_TEST(ryw_allows_standbys_that_replayed_the_primary_position_after_the_write)
{
    reset();
    set(0, BE_UP, ROLE_PRIMARY);
    set_lag(0, 0, 7000, 0);
    be[0].lsn_at = 12 * SEC; /* checked after the write: 7000 covers it */
    set(1, BE_UP, ROLE_STANDBY);
    set_lag(1, 0, 7000, 7000);
    set(2, BE_UP, ROLE_STANDBY);
    set_lag(2, 0, 6999, 7000);
    int elig[2] = {1, 2}, allowed[3];
    uint64_t req = 0;
    ck_assert_int_eq(lb_ryw_filter(bes, 3, elig, 2, 11 * SEC, &req, allowed), 1);
    ck_assert_int_eq(allowed[0], 1); /* the primary only when no standby has it */
}
END_TEST

START_TEST(ryw_position_is_frozen_at_the_first_check_after_the_write)
{
    reset();
    set(0, BE_UP, ROLE_PRIMARY);
    set_lag(0, 0, 7000, 0);
    be[0].lsn_at = 12 * SEC;
    set(1, BE_UP, ROLE_STANDBY);
    set_lag(1, 0, 7000, 7000);
    int elig[1] = {1}, allowed[2];
    uint64_t req = 0;
    ck_assert_int_eq(lb_ryw_filter(bes, 2, elig, 1, 11 * SEC, &req, allowed), 1);
    ck_assert_int_eq((int)req, 7000);
    be[0].lsn = 9000; /* others write on: this client still needs only 7000 */
    be[0].lsn_at = 13 * SEC;
    ck_assert_int_eq(lb_ryw_filter(bes, 2, elig, 1, 11 * SEC, &req, allowed), 1);
    ck_assert_int_eq(allowed[0], 1);
    ck_assert_int_eq((int)req, 7000);
}
END_TEST

START_TEST(ryw_with_no_usable_primary_and_nothing_known_allows_none)
{
    reset();
    set(0, BE_DOWN, ROLE_PRIMARY);
    set_lag(0, 0, 7000, 0);
    be[0].lsn_at = 12 * SEC;
    set(1, BE_UP, ROLE_STANDBY);
    set_lag(1, 0, 7000, 7000);
    int elig[1] = {1}, allowed[2];
    uint64_t req = 0;
    ck_assert_int_eq(lb_ryw_filter(bes, 2, elig, 1, 11 * SEC, &req, allowed), 0);
}
END_TEST

START_TEST(ryw_only_narrows_eligible_standbys)
{
    /* A standby that is not eligible (lagging, excluded) stays out even if it replayed. */
    reset();
    set(0, BE_UP, ROLE_PRIMARY);
    set_lag(0, 0, 7000, 0);
    be[0].lsn_at = 12 * SEC;
    set(1, BE_UP, ROLE_STANDBY);
    set_lag(1, 0, 7000, 7000);
    set(2, BE_UP, ROLE_STANDBY);
    set_lag(2, 0, 7000, 7000);
    int elig[1] = {2}, allowed[3];
    uint64_t req = 0;
    ck_assert_int_eq(lb_ryw_filter(bes, 3, elig, 1, 11 * SEC, &req, allowed), 1);
    ck_assert_int_eq(allowed[0], 2);
}
END_TEST

/* ---------------------------------------------------------------- max_replica_lag */

START_TEST(standby_behind_primary_with_old_replay_is_lagging)
{
    reset();
    set(0, BE_UP, ROLE_PRIMARY);
    set_lag(0, 0, 2000, 0);
    set(1, BE_UP, ROLE_STANDBY);
    set_lag(1, 60, 1000, 1000);
    set(2, BE_UP, ROLE_STANDBY);
    set_lag(2, 1, 1999, 1999);
    ck_assert_int_eq(eligible(3, TSA_STANDBY, 10 * SEC), 1);
    ck_assert_int_eq(out[0], 2);
}
END_TEST

START_TEST(idle_primary_with_old_replay_age_is_not_lag)
{
    /* Nothing written for a minute: the standby has replayed all the primary has. */
    reset();
    set(0, BE_UP, ROLE_PRIMARY);
    set_lag(0, 0, 5000, 0);
    set(1, BE_UP, ROLE_STANDBY);
    set_lag(1, 60, 5000, 5000);
    ck_assert_int_eq(eligible(2, TSA_STANDBY, 10 * SEC), 1);
    ck_assert_int_eq(out[0], 1);
}
END_TEST

START_TEST(standby_behind_but_recent_replay_is_not_lag)
{
    reset();
    set(0, BE_UP, ROLE_PRIMARY);
    set_lag(0, 0, 9000, 0);
    set(1, BE_UP, ROLE_STANDBY);
    set_lag(1, 2, 1000, 1000);
    ck_assert_int_eq(eligible(2, TSA_STANDBY, 10 * SEC), 1);
    ck_assert_int_eq(out[0], 1);
}
END_TEST

START_TEST(replay_age_exactly_at_limit_is_not_lag)
{
    reset();
    set(0, BE_UP, ROLE_PRIMARY);
    set_lag(0, 0, 9000, 0);
    set(1, BE_UP, ROLE_STANDBY);
    set_lag(1, 10.0, 1000, 1000);
    ck_assert_int_eq(eligible(2, TSA_STANDBY, 10 * SEC), 1);
    set_lag(1, 10.001, 1000, 1000);
    ck_assert_int_eq(eligible(2, TSA_STANDBY, 10 * SEC), 0);
}
END_TEST

START_TEST(zero_max_lag_disables_the_lag_check)
{
    reset();
    set(0, BE_UP, ROLE_PRIMARY);
    set_lag(0, 0, 9000, 0);
    set(1, BE_UP, ROLE_STANDBY);
    set_lag(1, 3600, 1, 1);
    ck_assert_int_eq(eligible(2, TSA_STANDBY, 0), 1);
    ck_assert_int_eq(out[0], 1);
}
END_TEST

START_TEST(standby_without_probe_data_is_not_lagging)
{
    reset();
    set(0, BE_UP, ROLE_PRIMARY);
    set_lag(0, 0, 9000, 0);
    set(1, BE_UP, ROLE_STANDBY); /* lag_known false: no successful probe yet */
    be[1].replay_age_sec = 3600;
    ck_assert_int_eq(eligible(2, TSA_STANDBY, 10 * SEC), 1);
    ck_assert_int_eq(out[0], 1);
}
END_TEST

START_TEST(without_primary_old_replay_with_unreplayed_wal_is_lag)
{
    reset();
    set(0, BE_UP, ROLE_STANDBY);
    set_lag(0, 60, 1000, 4000);
    set(1, BE_UP, ROLE_STANDBY);
    set_lag(1, 1, 1000, 4000);
    ck_assert_int_eq(eligible(2, TSA_STANDBY, 10 * SEC), 1);
    ck_assert_int_eq(out[0], 1);
}
END_TEST

START_TEST(without_primary_fully_replayed_standby_is_not_lag)
{
    /* No primary listed: lag is judged against the WAL the standby itself received
     * (commit 4b4552d), so an old replay age with nothing left to replay is idle. */
    reset();
    set(0, BE_UP, ROLE_STANDBY);
    set_lag(0, 60, 3000, 3000);
    ck_assert_int_eq(eligible(1, TSA_STANDBY, 10 * SEC), 1);
    ck_assert_int_eq(out[0], 0);
}
END_TEST

/* A database of standbys only: "behind" means received but not yet replayed WAL, each
 * standby judged against its own received WAL. */
START_TEST(lag_without_primary_uses_received_wal)
{
    reset();
    set(0, BE_UP, ROLE_STANDBY);
    set_lag(0, 300, 500, 500); /* idle primary: old timestamp, nothing to replay */
    set(1, BE_UP, ROLE_STANDBY);
    set_lag(1, 300, 500, 800); /* replay paused */
    ck_assert_int_eq(lb_eligible(bes, 2, TSA_STANDBY, 10 * SEC, out, NULL, 0), 1);
    ck_assert_int_eq(out[0], 0);
}
END_TEST

START_TEST(down_primary_does_not_count_as_known_primary_for_lag)
{
    /* The down primary's lsn is ahead, but only what the standby received counts. */
    reset();
    set(0, BE_DOWN, ROLE_PRIMARY);
    set_lag(0, 0, 9000, 0);
    set(1, BE_UP, ROLE_STANDBY);
    set_lag(1, 60, 1000, 1000);
    set(2, BE_UP, ROLE_STANDBY);
    set_lag(2, 60, 1000, 2000);
    ck_assert_int_eq(eligible(3, TSA_STANDBY, 10 * SEC), 1);
    ck_assert_int_eq(out[0], 1);
}
END_TEST

START_TEST(lag_applies_to_standbys_under_any_and_prefer_standby)
{
    reset();
    set(0, BE_UP, ROLE_PRIMARY);
    set_lag(0, 0, 9000, 0);
    set(1, BE_UP, ROLE_STANDBY);
    set_lag(1, 60, 1000, 1000);
    ck_assert_int_eq(eligible(2, TSA_ANY, 10 * SEC), 1);
    ck_assert_int_eq(out[0], 0);
    /* The only standby lags: prefer-standby falls back to the primary. */
    ck_assert_int_eq(eligible(2, TSA_PREFER_STANDBY, 10 * SEC), 1);
    ck_assert_int_eq(out[0], 0);
}
END_TEST

START_TEST(all_standbys_lagging_says_max_replica_lag)
{
    reset();
    set(0, BE_UP, ROLE_PRIMARY);
    set_lag(0, 0, 9000, 0);
    set(1, BE_UP, ROLE_STANDBY);
    set_lag(1, 60, 1000, 1000);
    set(2, BE_UP, ROLE_STANDBY);
    set_lag(2, 30, 2000, 2000);
    ck_assert_int_eq(eligible(3, TSA_STANDBY, 10 * SEC), 0);
    ck_assert_ptr_nonnull(strstr(why, "max_replica_lag"));
    ck_assert_ptr_nonnull(strstr(why, "no standby"));
    ck_assert_ptr_nonnull(strstr(why, "2 lagging"));
}
END_TEST

START_TEST(why_is_untouched_when_something_is_eligible)
{
    reset();
    set(0, BE_UP, ROLE_PRIMARY);
    strcpy(why, "sentinel");
    ck_assert_int_eq(eligible(1, TSA_ANY, 0), 1);
    ck_assert_str_eq(why, "sentinel");
}
END_TEST

/* ---------------------------------------------------------------- lb_pick */

START_TEST(pick_with_nothing_eligible_is_minus_one)
{
    unsigned rr = 0;
    int conns[1] = {0};
    ck_assert_int_eq(lb_pick(NULL, 0, LB_ROUND_ROBIN, &rr, conns, 0), -1);
    ck_assert_int_eq(lb_pick(NULL, 0, LB_DISABLE, &rr, conns, 0), -1);
    ck_assert_int_eq(lb_pick(NULL, 0, LB_RANDOM, &rr, conns, 7), -1); /* no modulo by zero */
}
END_TEST

START_TEST(disable_always_picks_the_first_eligible)
{
    int el[] = {2, 0, 3};
    int conns[4] = {9, 0, 9, 0};
    unsigned rr = 0;
    for (unsigned r = 0; r < 10; r++)
        ck_assert_int_eq(lb_pick(el, 3, LB_DISABLE, &rr, conns, r), 2);
}
END_TEST

START_TEST(round_robin_cycles_in_order_from_the_cursor)
{
    int el[] = {1, 3, 4};
    int conns[5] = {0};
    unsigned rr = 0;
    int want[] = {1, 3, 4, 1, 3, 4, 1};
    for (int i = 0; i < 7; i++)
        ck_assert_int_eq(lb_pick(el, 3, LB_ROUND_ROBIN, &rr, conns, 0), want[i]);
    ck_assert_uint_eq(rr, 7);
}
END_TEST

START_TEST(round_robin_starts_where_the_cursor_is)
{
    int el[] = {0, 1, 2};
    int conns[3] = {0};
    unsigned rr = 5; /* 5 % 3 = 2 */
    ck_assert_int_eq(lb_pick(el, 3, LB_ROUND_ROBIN, &rr, conns, 0), 2);
    ck_assert_int_eq(lb_pick(el, 3, LB_ROUND_ROBIN, &rr, conns, 0), 0);
}
END_TEST

START_TEST(round_robin_is_even_over_many_picks)
{
    int el[] = {0, 2, 5};
    int conns[6] = {0};
    int hits[6] = {0};
    unsigned rr = 0;
    for (int i = 0; i < 3000; i++)
        hits[lb_pick(el, 3, LB_ROUND_ROBIN, &rr, conns, 0)]++;
    ck_assert_int_eq(hits[0], 1000);
    ck_assert_int_eq(hits[2], 1000);
    ck_assert_int_eq(hits[5], 1000);
    ck_assert_int_eq(hits[1] + hits[3] + hits[4], 0);
}
END_TEST

START_TEST(round_robin_survives_cursor_wraparound)
{
    int el[] = {0, 1};
    int conns[2] = {0};
    unsigned rr = 0xffffffffu;
    ck_assert_int_eq(lb_pick(el, 2, LB_ROUND_ROBIN, &rr, conns, 0), 1);
    ck_assert_uint_eq(rr, 0);
    ck_assert_int_eq(lb_pick(el, 2, LB_ROUND_ROBIN, &rr, conns, 0), 0);
}
END_TEST

START_TEST(random_uses_rnd_modulo_the_eligible_count)
{
    int el[] = {4, 6, 7};
    int conns[8] = {0};
    unsigned rr = 0;
    ck_assert_int_eq(lb_pick(el, 3, LB_RANDOM, &rr, conns, 0), 4);
    ck_assert_int_eq(lb_pick(el, 3, LB_RANDOM, &rr, conns, 1), 6);
    ck_assert_int_eq(lb_pick(el, 3, LB_RANDOM, &rr, conns, 5), 7);
    ck_assert_int_eq(lb_pick(el, 3, LB_RANDOM, &rr, conns, 0xffffffffu), 4);
    ck_assert_uint_eq(rr, 0); /* the round-robin cursor is not touched */
}
END_TEST

START_TEST(least_connections_picks_the_fewest)
{
    int el[] = {0, 1, 2, 3};
    int conns[4] = {5, 3, 1, 4};
    unsigned rr = 0;
    ck_assert_int_eq(lb_pick(el, 4, LB_LEAST_CONNECTIONS, &rr, conns, 0), 2);
}
END_TEST

START_TEST(least_connections_ties_go_to_the_first)
{
    int el[] = {3, 1, 2};
    int conns[4] = {0, 2, 2, 2}; /* index 0 is not eligible */
    unsigned rr = 0;
    ck_assert_int_eq(lb_pick(el, 3, LB_LEAST_CONNECTIONS, &rr, conns, 7), 3);
}
END_TEST

START_TEST(least_connections_ignores_ineligible_backends)
{
    int el[] = {1, 3};
    int conns[4] = {0, 7, 0, 6};
    unsigned rr = 0;
    ck_assert_int_eq(lb_pick(el, 2, LB_LEAST_CONNECTIONS, &rr, conns, 0), 3);
}
END_TEST

static Suite *balance_suite(void)
{
    Suite *s = suite_create("balance");
    TCase *tc;

    tc = tcase_create("health");
    tcase_add_test(tc, any_takes_every_up_backend_in_order);
    tcase_add_test(tc, down_backends_are_never_eligible);
    tcase_add_test(tc, unknown_state_is_eligible_only_with_fast_start);
    tcase_add_test(tc, unchecked_startup_host_is_usable_added_host_is_not);
    tcase_add_test(tc, all_down_says_no_server_is_up);
    tcase_add_test(tc, no_backends_at_all_is_empty_with_reason);
    suite_add_tcase(s, tc);

    tc = tcase_create("roles");
    tcase_add_test(tc, read_write_and_primary_take_only_primaries);
    tcase_add_test(tc, read_only_and_standby_take_only_standbys);
    tcase_add_test(tc, unknown_role_is_not_used_when_a_known_match_is_up);
    tcase_add_test(tc, unknown_role_is_the_fallback_when_no_known_match_is_up);
    tcase_add_test(tc, only_wrong_role_up_says_no_primary_is_up);
    tcase_add_test(tc, only_wrong_role_up_says_no_standby_is_up);
    tcase_add_test(tc, prefer_standby_takes_standbys_over_primary);
    tcase_add_test(tc, prefer_standby_takes_unknown_role_over_primary);
    tcase_add_test(tc, prefer_standby_takes_known_standbys_over_unknown_role);
    tcase_add_test(tc, prefer_standby_falls_back_to_primary_when_no_standby_is_up);
    tcase_add_test(tc, unknown_first_class_puts_unknown_role_with_known_matches);
    tcase_add_test(tc, unknown_role_is_a_fallback_unless_first_class);
    tcase_add_test(tc, role_acceptance);
    suite_add_tcase(s, tc);

    tc = tcase_create("read_your_writes");
    tcase_add_test(tc, ryw_without_a_primary_check_after_the_write_allows_only_the_primary);
    tcase_add_test(tc, ryw_allows_standbys_that_replayed_the_primary_position_after_the_write);
    tcase_add_test(tc, ryw_position_is_frozen_at_the_first_check_after_the_write);
    tcase_add_test(tc, ryw_with_no_usable_primary_and_nothing_known_allows_none);
    tcase_add_test(tc, ryw_only_narrows_eligible_standbys);
    suite_add_tcase(s, tc);

    tc = tcase_create("behind");
    tcase_add_test(tc, behind_is_zero_when_everything_received_is_replayed);
    tcase_add_test(tc, behind_stays_zero_for_a_stream_replayed_between_probes);
    tcase_add_test(tc, behind_grows_from_the_first_unreplayed_position);
    tcase_add_test(tc, behind_memory_is_bounded_and_keeps_the_oldest);
    tcase_add_test(tc, lag_is_zero_for_a_caught_up_standby_with_an_old_replay);
    tcase_add_test(tc, lag_of_wal_not_received_yet_is_the_replay_age);
    tcase_add_test(tc, primary_has_no_lag);
    suite_add_tcase(s, tc);

    tc = tcase_create("lag");
    tcase_add_test(tc, standby_behind_primary_with_old_replay_is_lagging);
    tcase_add_test(tc, idle_primary_with_old_replay_age_is_not_lag);
    tcase_add_test(tc, standby_behind_but_recent_replay_is_not_lag);
    tcase_add_test(tc, replay_age_exactly_at_limit_is_not_lag);
    tcase_add_test(tc, zero_max_lag_disables_the_lag_check);
    tcase_add_test(tc, standby_without_probe_data_is_not_lagging);
    tcase_add_test(tc, without_primary_old_replay_with_unreplayed_wal_is_lag);
    tcase_add_test(tc, without_primary_fully_replayed_standby_is_not_lag);
    tcase_add_test(tc, lag_without_primary_uses_received_wal);
    tcase_add_test(tc, down_primary_does_not_count_as_known_primary_for_lag);
    tcase_add_test(tc, lag_applies_to_standbys_under_any_and_prefer_standby);
    tcase_add_test(tc, all_standbys_lagging_says_max_replica_lag);
    tcase_add_test(tc, why_is_untouched_when_something_is_eligible);
    suite_add_tcase(s, tc);

    tc = tcase_create("pick");
    tcase_add_test(tc, pick_with_nothing_eligible_is_minus_one);
    tcase_add_test(tc, disable_always_picks_the_first_eligible);
    tcase_add_test(tc, round_robin_cycles_in_order_from_the_cursor);
    tcase_add_test(tc, round_robin_starts_where_the_cursor_is);
    tcase_add_test(tc, round_robin_is_even_over_many_picks);
    tcase_add_test(tc, round_robin_survives_cursor_wraparound);
    tcase_add_test(tc, random_uses_rnd_modulo_the_eligible_count);
    tcase_add_test(tc, least_connections_picks_the_fewest);
    tcase_add_test(tc, least_connections_ties_go_to_the_first);
    tcase_add_test(tc, least_connections_ignores_ineligible_backends);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(balance_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
