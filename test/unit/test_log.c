/*
 * test_log.c: pins log.c: a message is one line whatever it quotes (control characters are
 * escaped), the logfile refuses symbolic links and non-regular files, and a logfile that
 * cannot be opened on reconfiguration leaves the old one in use.
 */
#include "pgusher/log.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *escape(const char *in, size_t cap)
{
    static char out[256];
    log_escape(in, strlen(in), out, cap < sizeof(out) ? cap : sizeof(out));
    return out;
}

START_TEST(plain_text_tabs_and_utf8_are_kept)
{
    ck_assert_str_eq(escape("user=alice db=x\ttab", 256), "user=alice db=x\ttab");
    ck_assert_str_eq(escape("\xc3\xa9t\xc3\xa9 \xe2\x82\xac", 256), "\xc3\xa9t\xc3\xa9 \xe2\x82\xac");
    ck_assert_str_eq(escape("back\\slash", 256), "back\\slash");
}
END_TEST

START_TEST(newlines_and_control_bytes_are_escaped)
{
    ck_assert_str_eq(escape("evil\n2026-01-01 LOG forged", 256), "evil\\n2026-01-01 LOG forged");
    ck_assert_str_eq(escape("a\rb", 256), "a\\rb");
    ck_assert_str_eq(escape("\x01\x1b[2J\x7f", 256), "\\x01\\x1b[2J\\x7f");
    /* NEL (U+0085) and other C1 controls in UTF-8 */
    ck_assert_str_eq(escape("a\xc2\x85" "b", 256), "a\\xc2\\x85b");
    ck_assert_str_eq(escape("\xc2\xa0", 256), "\xc2\xa0"); /* NBSP is not a control */
    ck_assert_str_eq(escape("end\xc2", 256), "end\xc2");  /* a lone lead byte is kept */
}
END_TEST

START_TEST(escaping_never_splits_an_escape_when_cut)
{
    ck_assert_str_eq(escape("ab\ncd", 4), "ab");  /* "\\n" does not fit after "ab" + NUL */
    ck_assert_str_eq(escape("ab\ncd", 5), "ab\\n");
    ck_assert_str_eq(escape("abc", 1), "");
    char out[4];
    ck_assert_uint_eq(log_escape("abcdef", 6, out, sizeof(out)), 3);
    ck_assert_str_eq(out, "abc");
}
END_TEST

static char dir[64];

static void make_dir(void)
{
    snprintf(dir, sizeof(dir), "/tmp/test_log.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

/* Runs after each test (in its forked process): remove what make_dir's test created. */
static void remove_dir(void)
{
    static const char *const names[] = {"log", "victim", "good"};
    if (!dir[0])
        return;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char path[128];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

static char *slurp(const char *path)
{
    static char buf[8192];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
    return buf;
}

START_TEST(a_logged_message_is_one_line)
{
    make_dir();
    char path[128];
    snprintf(path, sizeof(path), "%s/log", dir);
    struct log_settings ls = {.logfile = path, .to_stderr = false};
    ck_assert(log_configure(&ls));
    log_info("login attempt: user=%s", "evil\n2026-01-01 00:00:00.000 UTC [1] LOG forged");
    const char *text = slurp(path);
    ck_assert_ptr_nonnull(strstr(text, "user=evil\\n2026-01-01"));
    ck_assert_ptr_eq(strchr(text, '\n'), text + strlen(text) - 1);
}
END_TEST

START_TEST(a_symlinked_logfile_is_refused)
{
    make_dir();
    char victim[128], link_path[128];
    snprintf(victim, sizeof(victim), "%s/victim", dir);
    snprintf(link_path, sizeof(link_path), "%s/log", dir);
    FILE *f = fopen(victim, "w");
    fputs("precious\n", f);
    fclose(f);
    ck_assert_int_eq(symlink(victim, link_path), 0);
    struct log_settings ls = {.logfile = link_path, .to_stderr = false};
    ck_assert(!log_configure(&ls));
    log_info("must not reach the victim");
    ck_assert_str_eq(slurp(victim), "precious\n");
}
END_TEST

START_TEST(a_directory_is_not_a_logfile)
{
    make_dir();
    struct log_settings ls = {.logfile = dir, .to_stderr = false};
    ck_assert(!log_configure(&ls));
}
END_TEST

START_TEST(a_failed_reopen_keeps_the_old_logfile)
{
    make_dir();
    char good[128], bad[128];
    snprintf(good, sizeof(good), "%s/good", dir);
    snprintf(bad, sizeof(bad), "%s/missing/log", dir);
    struct log_settings ls = {.logfile = good, .to_stderr = false};
    ck_assert(log_configure(&ls));
    ls.logfile = bad;
    ck_assert(!log_configure(&ls));
    log_info("still here");
    const char *text = slurp(good);
    ck_assert_ptr_nonnull(strstr(text, "cannot open logfile"));
    ck_assert_ptr_nonnull(strstr(text, "still here"));
    ck_assert(log_reopen());
}
END_TEST

START_TEST(syslog_ident_survives_its_source)
{
    /* openlog keeps the ident pointer: log.c must keep its own copy. */
    char *ident = strdup("pgusher-test");
    struct log_settings ls = {.to_stderr = false, .syslog = true, .syslog_ident = ident};
    ck_assert(log_configure(&ls));
    memset(ident, 'X', strlen(ident));
    free(ident);
    log_info("syslog after the ident was freed");
    ls.syslog = false;
    ls.syslog_ident = NULL;
    ck_assert(log_configure(&ls));
}
END_TEST

static Suite *log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("log");
    tcase_add_checked_fixture(tc, NULL, remove_dir);
    tcase_add_test(tc, plain_text_tabs_and_utf8_are_kept);
    tcase_add_test(tc, newlines_and_control_bytes_are_escaped);
    tcase_add_test(tc, escaping_never_splits_an_escape_when_cut);
    tcase_add_test(tc, a_logged_message_is_one_line);
    tcase_add_test(tc, a_symlinked_logfile_is_refused);
    tcase_add_test(tc, a_directory_is_not_a_logfile);
    tcase_add_test(tc, a_failed_reopen_keeps_the_old_logfile);
    tcase_add_test(tc, syslog_ident_survives_its_source);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(log_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
