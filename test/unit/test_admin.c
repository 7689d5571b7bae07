/*
 * test_admin.c: pins the admin console's command parser (admin_parse_command): which command
 * and arguments a query is, and the exact error each malformed one gets. No client, no loop.
 */
#include "pgusher/admin.h"
#include "pgusher/runtime.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct admin_cmd cmd;
static char err[512];

static bool parse(const char *q)
{
    memset(err, 'x', sizeof(err) - 1);
    err[sizeof(err) - 1] = 0;
    return admin_parse_command(q, &cmd, err, sizeof(err));
}

START_TEST(empty_and_blank_queries_are_empty)
{
    static const char *const qs[] = {"", "   ", ";", " ; ;; ", "\t\n;"};
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        ck_assert(parse(qs[i]));
        ck_assert(cmd.empty);
        ck_assert_ptr_null(cmd.name);
    }
}
END_TEST

START_TEST(show_is_case_insensitive_and_trimmed)
{
    ck_assert(parse("  sHoW   PoOlS ;  "));
    ck_assert(!cmd.empty);
    ck_assert_str_eq(cmd.name, "show");
    ck_assert_str_eq(cmd.show, "pools");
    ck_assert_str_eq(cmd.text, "sHoW   PoOlS");
    ck_assert(cmd.readonly_ok);
}
END_TEST

START_TEST(every_show_target_is_known)
{
    static const char *const what[] = {
        "pools",     "clients", "servers",   "databases", "users",   "stats",
        "stats_totals", "stats_averages", "totals", "lists", "config", "version",
        "state",     "mem",     "fds",       "sockets",   "active_sockets", "peers",
        "peer_pools", "dns_hosts", "dns_zones", "help",   "hosts"};
    for (size_t i = 0; i < sizeof(what) / sizeof(what[0]); i++) {
        char q[64];
        snprintf(q, sizeof(q), "SHOW %s", what[i]);
        ck_assert_msg(parse(q), "%s: %s", q, err);
        ck_assert_str_eq(cmd.show, what[i]);
    }
}
END_TEST

START_TEST(show_errors_name_the_command)
{
    ck_assert(!parse("SHOW"));
    ck_assert_str_eq(err, "invalid command 'SHOW', use SHOW HELP;");
    ck_assert_str_eq(cmd.name, "show");
    ck_assert(cmd.readonly_ok);
    ck_assert(!parse("show nothing;"));
    ck_assert_str_eq(err, "invalid command 'show nothing', use SHOW HELP;");
    ck_assert(!parse("SHOW POOLS extra"));
    ck_assert_str_eq(err, "invalid command 'SHOW POOLS extra', use SHOW HELP;");
}
END_TEST

START_TEST(unknown_command_is_invalid_and_not_read_only)
{
    ck_assert(!parse("SELECT 1"));
    ck_assert_ptr_null(cmd.name);
    ck_assert(!cmd.readonly_ok);
    ck_assert_str_eq(err, "invalid command 'SELECT 1', use SHOW HELP;");
}
END_TEST

START_TEST(only_show_is_read_only)
{
    static const char *const qs[] = {"SET a = 1", "PAUSE",  "RESUME",    "SUSPEND",
                                     "DISABLE d", "ENABLE d", "RECONNECT", "KILL",
                                     "KILL_CLIENT 1", "WAIT_CLOSE", "RELOAD", "SHUTDOWN"};
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        ck_assert_msg(parse(qs[i]), "%s: %s", qs[i], err);
        ck_assert_ptr_nonnull(cmd.name);
        ck_assert(!cmd.readonly_ok);
    }
    /* Also when the arguments are wrong: the read-only refusal comes first. */
    ck_assert(!parse("DISABLE"));
    ck_assert_str_eq(cmd.name, "disable");
    ck_assert(!cmd.readonly_ok);
}
END_TEST

START_TEST(database_argument_keeps_its_case)
{
    ck_assert(parse("pause MyDb;"));
    ck_assert_str_eq(cmd.name, "pause");
    ck_assert_str_eq(cmd.arg, "MyDb");
    ck_assert(parse("PAUSE"));
    ck_assert_str_eq(cmd.arg, "");
    ck_assert(parse("Wait_Close DB1"));
    ck_assert_str_eq(cmd.name, "wait_close");
    ck_assert_str_eq(cmd.arg, "DB1");
}
END_TEST

START_TEST(disable_and_enable_need_a_database)
{
    ck_assert(!parse("DISABLE"));
    ck_assert_str_eq(err, "disable requires a database name");
    ck_assert(!parse("enable ;"));
    ck_assert_str_eq(err, "enable requires a database name");
    ck_assert(parse("ENABLE db"));
    ck_assert_str_eq(cmd.arg, "db");
}
END_TEST

START_TEST(more_than_one_argument_is_invalid)
{
    static const char *const qs[] = {"PAUSE a b", "RESUME a b", "KILL a b c", "DISABLE a b",
                                     "RELOAD x y", "SUSPEND x y", "KILL_CLIENT 1 2",
                                     "SHUTDOWN WAIT_FOR_CLIENTS now"};
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        char want[128];
        snprintf(want, sizeof(want), "invalid command '%s', use SHOW HELP;", qs[i]);
        ck_assert_msg(!parse(qs[i]), "%s", qs[i]);
        ck_assert_str_eq(err, want);
    }
}
END_TEST

START_TEST(one_ignored_word_after_reload_and_suspend_is_accepted)
{
    /* As before the command table: kept so that no script breaks. */
    ck_assert(parse("RELOAD now"));
    ck_assert_str_eq(cmd.name, "reload");
    ck_assert(parse("SUSPEND x"));
    ck_assert_str_eq(cmd.name, "suspend");
}
END_TEST

START_TEST(shutdown_modes)
{
    ck_assert(parse("SHUTDOWN"));
    ck_assert_int_eq(cmd.shutdown_mode, SHUTDOWN_NOW);
    ck_assert(parse("shutdown wait_for_servers"));
    ck_assert_int_eq(cmd.shutdown_mode, SHUTDOWN_WAIT_FOR_SERVERS);
    ck_assert(parse("SHUTDOWN WAIT_FOR_CLIENTS;"));
    ck_assert_int_eq(cmd.shutdown_mode, SHUTDOWN_WAIT_FOR_CLIENTS);
    ck_assert(!parse("SHUTDOWN later"));
    ck_assert_str_eq(err, "invalid command 'SHUTDOWN later', use SHOW HELP;");
}
END_TEST

START_TEST(kill_client_id)
{
    ck_assert(parse("KILL_CLIENT 42"));
    ck_assert(cmd.client_id_ok);
    ck_assert_uint_eq(cmd.client_id, 42);
    ck_assert(parse("KILL_CLIENT 4x2"));
    ck_assert(!cmd.client_id_ok);
    ck_assert_str_eq(cmd.arg, "4x2");
    ck_assert(parse("KILL_CLIENT"));
    ck_assert(!cmd.client_id_ok);
    ck_assert_str_eq(cmd.arg, "");
}
END_TEST

START_TEST(set_key_and_value)
{
    ck_assert(parse("SET default_pool_size = 7"));
    ck_assert_str_eq(cmd.name, "set");
    ck_assert_str_eq(cmd.key, "default_pool_size");
    ck_assert_str_eq(cmd.value, "7");
    ck_assert(parse("set  Key=  'quoted value' ;"));
    ck_assert_str_eq(cmd.key, "Key");
    ck_assert_str_eq(cmd.value, "quoted value");
    ck_assert(parse("SET k = \"dq\""));
    ck_assert_str_eq(cmd.value, "dq");
    ck_assert(parse("SET k ="));
    ck_assert_str_eq(cmd.value, "");
    ck_assert(parse("SET a b = c = d"));
    ck_assert_str_eq(cmd.key, "a b");
    ck_assert_str_eq(cmd.value, "c = d");
}
END_TEST

START_TEST(set_errors)
{
    ck_assert(!parse("SET"));
    ck_assert_str_eq(err, "SET: expected key = value");
    ck_assert(!parse("SET key value"));
    ck_assert_str_eq(err, "SET: expected key = value");
    ck_assert(!parse("SET = 1"));
    ck_assert_str_eq(err, "SET: bad key");
    char q[300] = "SET ";
    memset(q + 4, 'k', 200);
    strcpy(q + 204, " = 1");
    ck_assert(!parse(q));
    ck_assert_str_eq(err, "SET: bad key");
}
END_TEST

START_TEST(long_queries_are_cut_not_overrun)
{
    static char q[8192];
    memset(q, 'a', sizeof(q) - 1);
    q[sizeof(q) - 1] = 0;
    memcpy(q, "PAUSE ", 6);
    ck_assert(parse(q));
    ck_assert_str_eq(cmd.name, "pause");
    ck_assert_uint_eq(strlen(cmd.text), ADMIN_QUERY_MAX - 1);
    ck_assert_uint_eq(strlen(cmd.arg), ADMIN_ARG_MAX - 1);
    /* A tiny error buffer is only ever NUL-terminated, never overrun. */
    char small[8];
    ck_assert(!admin_parse_command("nonsense", &cmd, small, sizeof(small)));
    ck_assert_str_eq(small, "invalid");
    ck_assert(!admin_parse_command("nonsense", &cmd, NULL, 0));
}
END_TEST

static Suite *admin_suite(void)
{
    Suite *s = suite_create("admin");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, empty_and_blank_queries_are_empty);
    tcase_add_test(tc, show_is_case_insensitive_and_trimmed);
    tcase_add_test(tc, every_show_target_is_known);
    tcase_add_test(tc, show_errors_name_the_command);
    tcase_add_test(tc, unknown_command_is_invalid_and_not_read_only);
    tcase_add_test(tc, only_show_is_read_only);
    tcase_add_test(tc, database_argument_keeps_its_case);
    tcase_add_test(tc, disable_and_enable_need_a_database);
    tcase_add_test(tc, more_than_one_argument_is_invalid);
    tcase_add_test(tc, one_ignored_word_after_reload_and_suspend_is_accepted);
    tcase_add_test(tc, shutdown_modes);
    tcase_add_test(tc, kill_client_id);
    tcase_add_test(tc, set_key_and_value);
    tcase_add_test(tc, set_errors);
    tcase_add_test(tc, long_queries_are_cut_not_overrun);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(admin_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
