/*
 * test_varcache.c: pins the tracked-parameter cache: case-insensitive lookup, set/copy/free
 * ownership, and the SET statements varcache_diff_sql builds (which vars, literal quoting,
 * and that a too-small buffer is never overrun and never left holding half a SET).
 */
#include "pgusher/varcache.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct varcache cl, sv;

static void setup(void)
{
    memset(&cl, 0, sizeof(cl));
    memset(&sv, 0, sizeof(sv));
}

static void teardown(void)
{
    varcache_free(&cl);
    varcache_free(&sv);
}

/* ---- lookup ---- */

START_TEST(lookup_finds_each_tracked_name)
{
    ck_assert_int_eq(varcache_lookup("client_encoding"), VAR_CLIENT_ENCODING);
    ck_assert_int_eq(varcache_lookup("DateStyle"), VAR_DATESTYLE);
    ck_assert_int_eq(varcache_lookup("TimeZone"), VAR_TIMEZONE);
    ck_assert_int_eq(varcache_lookup("standard_conforming_strings"),
                     VAR_STANDARD_CONFORMING_STRINGS);
    ck_assert_int_eq(varcache_lookup("application_name"), VAR_APPLICATION_NAME);
    ck_assert_int_eq(varcache_lookup("IntervalStyle"), VAR_INTERVALSTYLE);
}
END_TEST

START_TEST(lookup_is_case_insensitive)
{
    ck_assert_int_eq(varcache_lookup("datestyle"), VAR_DATESTYLE);
    ck_assert_int_eq(varcache_lookup("DATESTYLE"), VAR_DATESTYLE);
    ck_assert_int_eq(varcache_lookup("timezone"), VAR_TIMEZONE);
    ck_assert_int_eq(varcache_lookup("CLIENT_ENCODING"), VAR_CLIENT_ENCODING);
    ck_assert_int_eq(varcache_lookup("Application_Name"), VAR_APPLICATION_NAME);
}
END_TEST

START_TEST(lookup_unknown_name_is_var_count)
{
    ck_assert_int_eq(varcache_lookup("search_path"), VAR_COUNT);
    ck_assert_int_eq(varcache_lookup(""), VAR_COUNT);
    ck_assert_int_eq(varcache_lookup("client_encodingx"), VAR_COUNT);
    ck_assert_int_eq(varcache_lookup("client_encodin"), VAR_COUNT);
}
END_TEST

START_TEST(name_round_trips_and_unknown_is_question_mark)
{
    for (int i = 0; i < VAR_EXTRA0; i++)
        ck_assert_int_eq(varcache_lookup(varcache_name((enum var_id)i)), i);
    ck_assert_str_eq(varcache_name(VAR_EXTRA0), "?"); /* no track_extra_parameters named */
    ck_assert_str_eq(varcache_name(VAR_DATESTYLE), "DateStyle");
    ck_assert_str_eq(varcache_name(VAR_COUNT), "?");
}
END_TEST

/* ---- set / copy / free ---- */

START_TEST(set_stores_a_private_copy)
{
    char v[] = "UTF8";
    varcache_set(&cl, VAR_CLIENT_ENCODING, v);
    ck_assert_ptr_nonnull(cl.val[VAR_CLIENT_ENCODING]);
    ck_assert_ptr_ne(cl.val[VAR_CLIENT_ENCODING], v);
    v[0] = 'X';
    ck_assert_str_eq(cl.val[VAR_CLIENT_ENCODING], "UTF8");
}
END_TEST

START_TEST(set_replaces_value)
{
    varcache_set(&cl, VAR_TIMEZONE, "UTC");
    varcache_set(&cl, VAR_TIMEZONE, "Europe/Paris");
    ck_assert_str_eq(cl.val[VAR_TIMEZONE], "Europe/Paris");
}
END_TEST

START_TEST(set_same_value_keeps_pointer)
{
    varcache_set(&cl, VAR_TIMEZONE, "UTC");
    const char *before = cl.val[VAR_TIMEZONE];
    varcache_set(&cl, VAR_TIMEZONE, "UTC");
    ck_assert_ptr_eq(cl.val[VAR_TIMEZONE], before);
}
END_TEST

START_TEST(equal_values_are_stored_once_and_freed_with_the_last_holder)
{
    size_t base = varcache_interned_count();
    varcache_set(&cl, VAR_CLIENT_ENCODING, "UTF8");
    varcache_set(&sv, VAR_CLIENT_ENCODING, "UTF8");
    ck_assert_ptr_eq(cl.val[VAR_CLIENT_ENCODING], sv.val[VAR_CLIENT_ENCODING]);
    ck_assert_uint_eq(varcache_interned_count(), base + 1);
    struct varcache third = {0};
    varcache_copy(&third, &cl);
    ck_assert_ptr_eq(third.val[VAR_CLIENT_ENCODING], cl.val[VAR_CLIENT_ENCODING]);
    varcache_set(&cl, VAR_CLIENT_ENCODING, "LATIN1");
    ck_assert_str_eq(sv.val[VAR_CLIENT_ENCODING], "UTF8"); /* the others keep theirs */
    ck_assert_uint_eq(varcache_interned_count(), base + 2);
    varcache_free(&third);
    varcache_free(&sv);
    ck_assert_uint_eq(varcache_interned_count(), base + 1); /* UTF8 gone with its last holder */
    varcache_free(&cl);
    ck_assert_uint_eq(varcache_interned_count(), base);
    /* Many distinct values (the table grows) all come back. */
    struct varcache many[300];
    memset(many, 0, sizeof(many));
    for (int i = 0; i < 300; i++) {
        char v[32];
        snprintf(v, sizeof(v), "app-%d", i % 150);
        varcache_set(&many[i], VAR_APPLICATION_NAME, v);
    }
    ck_assert_uint_eq(varcache_interned_count(), base + 150);
    ck_assert_ptr_eq(many[7].val[VAR_APPLICATION_NAME], many[157].val[VAR_APPLICATION_NAME]);
    for (int i = 0; i < 300; i++)
        varcache_free(&many[i]);
    ck_assert_uint_eq(varcache_interned_count(), base);
}
END_TEST

START_TEST(set_null_clears)
{
    varcache_set(&cl, VAR_TIMEZONE, "UTC");
    varcache_set(&cl, VAR_TIMEZONE, NULL);
    ck_assert_ptr_null(cl.val[VAR_TIMEZONE]);
}
END_TEST

START_TEST(set_unknown_id_is_ignored)
{
    varcache_set(&cl, VAR_COUNT, "x");
    for (int i = 0; i < VAR_COUNT; i++)
        ck_assert_ptr_null(cl.val[i]);
}
END_TEST

START_TEST(copy_shares_every_value_and_clears_missing)
{
    varcache_set(&sv, VAR_CLIENT_ENCODING, "UTF8");
    varcache_set(&sv, VAR_APPLICATION_NAME, "psql");
    varcache_set(&cl, VAR_TIMEZONE, "UTC"); /* src has no TimeZone */
    varcache_copy(&cl, &sv);
    ck_assert_str_eq(cl.val[VAR_CLIENT_ENCODING], "UTF8");
    ck_assert_str_eq(cl.val[VAR_APPLICATION_NAME], "psql");
    ck_assert_ptr_null(cl.val[VAR_TIMEZONE]);
    ck_assert_ptr_eq(cl.val[VAR_CLIENT_ENCODING], sv.val[VAR_CLIENT_ENCODING]); /* interned */
    /* Independent: changing the source leaves the copy alone. */
    varcache_set(&sv, VAR_APPLICATION_NAME, "other");
    ck_assert_str_eq(cl.val[VAR_APPLICATION_NAME], "psql");
}
END_TEST

/* track_extra_parameters: named slots behave like the built-in ones, except that a SET is
 * emitted only when the server's value is known (PgBouncer 1.25). */
START_TEST(extra_parameters_are_tracked_and_restored_only_when_reported)
{
    char err[128] = "";
    ck_assert_int_eq(varcache_track_extra("IntervalStyle, search_path,work_mem", err, sizeof err),
                     2);
    enum var_id sp = varcache_lookup("SEARCH_PATH");
    ck_assert_int_eq(sp, VAR_EXTRA0);
    ck_assert_str_eq(varcache_name(sp), "search_path");
    ck_assert_int_eq(varcache_lookup("work_mem"), VAR_EXTRA0 + 1);
    ck_assert_int_eq(varcache_lookup("IntervalStyle"), VAR_INTERVALSTYLE);
    varcache_set(&cl, sp, "public");
    char buf[256] = "";
    ck_assert_int_eq(varcache_diff_sql(&cl, &sv, buf, sizeof buf), 0); /* server's unknown */
    varcache_set(&sv, sp, "\"$user\", public");
    ck_assert_int_eq(varcache_diff_sql(&cl, &sv, buf, sizeof buf), 1);
    ck_assert_str_eq(buf, "SET search_path='public';");
    ck_assert_int_eq(varcache_track_extra("", err, sizeof err), 0);
    ck_assert_int_eq(varcache_lookup("search_path"), VAR_COUNT);
}
END_TEST

START_TEST(extra_parameters_refuse_too_many_and_too_long)
{
    char err[128] = "";
    ck_assert_int_eq(varcache_track_extra("a,b,c,d,e,f,g,h,i", err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "more than"));
    char longname[100];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    ck_assert_int_eq(varcache_track_extra(longname, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "too long"));
    varcache_track_extra("", err, sizeof err);
    /* An unnamed slot is never set. */
    varcache_set(&cl, VAR_EXTRA0, "x");
    ck_assert_ptr_null(cl.val[VAR_EXTRA0]);
}
END_TEST

START_TEST(free_clears_all_and_is_repeatable)
{
    for (int i = 0; i < VAR_COUNT; i++)
        varcache_set(&cl, (enum var_id)i, "v");
    varcache_free(&cl);
    for (int i = 0; i < VAR_COUNT; i++)
        ck_assert_ptr_null(cl.val[i]);
    varcache_free(&cl);
}
END_TEST

/* ---- diff_sql ---- */

START_TEST(diff_nothing_wanted_emits_nothing)
{
    char buf[256] = "";
    varcache_set(&sv, VAR_TIMEZONE, "UTC");
    ck_assert_int_eq(varcache_diff_sql(&cl, &sv, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "");
}
END_TEST

START_TEST(diff_equal_values_emit_nothing)
{
    char buf[256] = "";
    varcache_set(&cl, VAR_TIMEZONE, "UTC");
    varcache_set(&sv, VAR_TIMEZONE, "UTC");
    varcache_set(&cl, VAR_CLIENT_ENCODING, "UTF8");
    varcache_set(&sv, VAR_CLIENT_ENCODING, "UTF8");
    ck_assert_int_eq(varcache_diff_sql(&cl, &sv, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "");
}
END_TEST

START_TEST(diff_emits_only_differing_wanted_vars)
{
    char buf[512] = "";
    varcache_set(&cl, VAR_CLIENT_ENCODING, "UTF8");
    varcache_set(&sv, VAR_CLIENT_ENCODING, "UTF8"); /* same */
    varcache_set(&cl, VAR_DATESTYLE, "ISO, DMY");
    varcache_set(&sv, VAR_DATESTYLE, "ISO, MDY");   /* differs */
    varcache_set(&sv, VAR_TIMEZONE, "UTC");         /* client does not care */
    varcache_set(&cl, VAR_APPLICATION_NAME, "app"); /* server unknown */
    ck_assert_int_eq(varcache_diff_sql(&cl, &sv, buf, sizeof(buf)), 2);
    ck_assert_str_eq(buf, "SET DateStyle='ISO, DMY';SET application_name='app';");
}
END_TEST

START_TEST(diff_value_comparison_is_case_sensitive)
{
    char buf[256] = "";
    varcache_set(&cl, VAR_CLIENT_ENCODING, "utf8");
    varcache_set(&sv, VAR_CLIENT_ENCODING, "UTF8");
    ck_assert_int_eq(varcache_diff_sql(&cl, &sv, buf, sizeof(buf)), 1);
    ck_assert_str_eq(buf, "SET client_encoding='utf8';");
}
END_TEST

START_TEST(diff_all_vars_in_id_order)
{
    char buf[1024] = "";
    varcache_set(&cl, VAR_INTERVALSTYLE, "iso_8601");
    varcache_set(&cl, VAR_CLIENT_ENCODING, "LATIN1");
    varcache_set(&cl, VAR_STANDARD_CONFORMING_STRINGS, "on");
    varcache_set(&cl, VAR_TIMEZONE, "UTC");
    varcache_set(&cl, VAR_DATESTYLE, "ISO");
    varcache_set(&cl, VAR_APPLICATION_NAME, "a");
    ck_assert_int_eq(varcache_diff_sql(&cl, &sv, buf, sizeof(buf)), 6);
    ck_assert_str_eq(buf, "SET client_encoding='LATIN1';SET DateStyle='ISO';SET TimeZone='UTC';"
                          "SET standard_conforming_strings='on';SET application_name='a';"
                          "SET IntervalStyle='iso_8601';");
}
END_TEST

START_TEST(diff_doubles_single_quotes)
{
    char buf[256] = "";
    varcache_set(&cl, VAR_APPLICATION_NAME, "O'Brien");
    ck_assert_int_eq(varcache_diff_sql(&cl, &sv, buf, sizeof(buf)), 1);
    ck_assert_str_eq(buf, "SET application_name='O''Brien';");
}
END_TEST

START_TEST(diff_quotes_only_and_injection_attempt_stay_inside_literal)
{
    char buf[256] = "";
    varcache_set(&cl, VAR_APPLICATION_NAME, "'; DROP TABLE t; --");
    varcache_set(&cl, VAR_TIMEZONE, "''");
    ck_assert_int_eq(varcache_diff_sql(&cl, &sv, buf, sizeof(buf)), 2);
    ck_assert_str_eq(buf, "SET TimeZone='''''';SET application_name='''; DROP TABLE t; --';");
}
END_TEST

START_TEST(diff_empty_value_is_empty_literal)
{
    char buf[256] = "";
    varcache_set(&cl, VAR_APPLICATION_NAME, "");
    varcache_set(&sv, VAR_APPLICATION_NAME, "psql");
    ck_assert_int_eq(varcache_diff_sql(&cl, &sv, buf, sizeof(buf)), 1);
    ck_assert_str_eq(buf, "SET application_name='';");
}
END_TEST

START_TEST(diff_appends_to_existing_text)
{
    char buf[256] = "RESET ALL;";
    varcache_set(&cl, VAR_TIMEZONE, "UTC");
    ck_assert_int_eq(varcache_diff_sql(&cl, &sv, buf, sizeof(buf)), 1);
    ck_assert_str_eq(buf, "RESET ALL;SET TimeZone='UTC';");
}
END_TEST

START_TEST(diff_exact_fit_is_emitted)
{
    const char *want = "SET TimeZone='UTC';";
    char buf[64];
    varcache_set(&cl, VAR_TIMEZONE, "UTC");
    buf[0] = 0;
    ck_assert_int_eq(varcache_diff_sql(&cl, &sv, buf, strlen(want) + 1), 1);
    ck_assert_str_eq(buf, want);
}
END_TEST

#define GUARD 0x5a

/* Runs diff_sql into a buffer of buflen with guard bytes after it; asserts the guard is
 * intact and the result is NUL-terminated within buflen. */
static int diff_guarded(char *mem, size_t memlen, size_t buflen)
{
    ck_assert_uint_lt(buflen, memlen);
    memset(mem, GUARD, memlen);
    mem[0] = 0;
    int n = varcache_diff_sql(&cl, &sv, mem, buflen);
    for (size_t i = buflen; i < memlen; i++)
        ck_assert_msg((unsigned char)mem[i] == GUARD, "byte %zu past buflen %zu overwritten", i,
                      buflen);
    ck_assert_ptr_nonnull(memchr(mem, 0, buflen));
    return n;
}

START_TEST(diff_too_small_never_overflows)
{
    char mem[256];
    varcache_set(&cl, VAR_CLIENT_ENCODING, "UTF8");
    varcache_set(&cl, VAR_TIMEZONE, "America/Argentina/Buenos_Aires");
    varcache_set(&cl, VAR_APPLICATION_NAME, "O'Brien's app");
    /* Every size from one byte up to more than enough. */
    for (size_t len = 1; len < 200; len++) {
        int n = diff_guarded(mem, sizeof(mem), len);
        ck_assert_int_ge(n, 0);
        ck_assert_int_le(n, 3);
    }
}
END_TEST

START_TEST(diff_count_matches_complete_sets)
{
    char mem[256];
    varcache_set(&cl, VAR_CLIENT_ENCODING, "UTF8");
    varcache_set(&cl, VAR_TIMEZONE, "UTC");
    /* "SET client_encoding='UTF8';" is 27 bytes, "SET TimeZone='UTC';" 19 more. */
    ck_assert_int_eq(diff_guarded(mem, sizeof(mem), 27), 0);
    ck_assert_int_eq(diff_guarded(mem, sizeof(mem), 28), 1);
    ck_assert_int_eq(diff_guarded(mem, sizeof(mem), 46), 1);
    ck_assert_int_eq(diff_guarded(mem, sizeof(mem), 47), 2);
    ck_assert_str_eq(mem, "SET client_encoding='UTF8';SET TimeZone='UTC';");
}
END_TEST

/* Whatever the buffer size, its text is exactly the complete SETs counted: never a cut-off
 * statement a server would reject as a syntax error.
 * (A regression test: the truncated SET used to be left in the buffer.) */
START_TEST(diff_too_small_leaves_no_partial_set)
{
    char mem[256];
    const char *full = "SET client_encoding='UTF8';SET TimeZone='UTC';";
    size_t first = strlen("SET client_encoding='UTF8';");
    varcache_set(&cl, VAR_CLIENT_ENCODING, "UTF8");
    varcache_set(&cl, VAR_TIMEZONE, "UTC");
    for (size_t len = 1; len <= strlen(full) + 1; len++) {
        int n = diff_guarded(mem, sizeof(mem), len);
        size_t want_len = n == 2 ? strlen(full) : n == 1 ? first : 0;
        ck_assert_msg(strlen(mem) == want_len && strncmp(mem, full, want_len) == 0,
                      "buflen %zu: %d SETs but text \"%s\"", len, n, mem);
    }
}
END_TEST

START_TEST(diff_very_long_value_never_overflows)
{
    char mem[8192];
    char *v = malloc(3000);
    ck_assert_ptr_nonnull(v);
    memset(v, '\'', 2999);
    v[2999] = 0;
    varcache_set(&cl, VAR_APPLICATION_NAME, v);
    varcache_set(&cl, VAR_TIMEZONE, "UTC");
    int n = diff_guarded(mem, sizeof(mem), 4096);
    /* The over-long literal is not emitted; the short one still is. */
    ck_assert_int_ge(n, 1);
    ck_assert_ptr_nonnull(strstr(mem, "SET TimeZone='UTC';"));
    free(v);
}
END_TEST

static Suite *varcache_suite(void)
{
    Suite *s = suite_create("varcache");
    TCase *tc;

    tc = tcase_create("lookup");
    tcase_add_test(tc, lookup_finds_each_tracked_name);
    tcase_add_test(tc, lookup_is_case_insensitive);
    tcase_add_test(tc, lookup_unknown_name_is_var_count);
    tcase_add_test(tc, name_round_trips_and_unknown_is_question_mark);
    suite_add_tcase(s, tc);

    tc = tcase_create("set_copy_free");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, set_stores_a_private_copy);
    tcase_add_test(tc, set_replaces_value);
    tcase_add_test(tc, set_same_value_keeps_pointer);
    tcase_add_test(tc, equal_values_are_stored_once_and_freed_with_the_last_holder);
    tcase_add_test(tc, set_null_clears);
    tcase_add_test(tc, set_unknown_id_is_ignored);
    tcase_add_test(tc, copy_shares_every_value_and_clears_missing);
    tcase_add_test(tc, free_clears_all_and_is_repeatable);
    tcase_add_test(tc, extra_parameters_are_tracked_and_restored_only_when_reported);
    tcase_add_test(tc, extra_parameters_refuse_too_many_and_too_long);
    suite_add_tcase(s, tc);

    tc = tcase_create("diff_sql");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, diff_nothing_wanted_emits_nothing);
    tcase_add_test(tc, diff_equal_values_emit_nothing);
    tcase_add_test(tc, diff_emits_only_differing_wanted_vars);
    tcase_add_test(tc, diff_value_comparison_is_case_sensitive);
    tcase_add_test(tc, diff_all_vars_in_id_order);
    tcase_add_test(tc, diff_doubles_single_quotes);
    tcase_add_test(tc, diff_quotes_only_and_injection_attempt_stay_inside_literal);
    tcase_add_test(tc, diff_empty_value_is_empty_literal);
    tcase_add_test(tc, diff_appends_to_existing_text);
    tcase_add_test(tc, diff_exact_fit_is_emitted);
    suite_add_tcase(s, tc);

    tc = tcase_create("diff_sql_bounds");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, diff_too_small_never_overflows);
    tcase_add_test(tc, diff_count_matches_complete_sets);
    tcase_add_test(tc, diff_too_small_leaves_no_partial_set);
    tcase_add_test(tc, diff_very_long_value_never_overflows);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(varcache_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
