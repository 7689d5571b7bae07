/*
 * test_authfile.c: pins the userlist.txt reader: quoting, comments, secret formats kept
 * verbatim, and file:line errors. Uses temp files under /tmp for the file-based cases.
 */
#include "pgusher/authfile.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct entries {
    char buf[4096];
    const char *fail_user;
};

/* Records entries as "user|secret@line\n". */
static bool collect(void *arg, const char *file, int line, const char *user, const char *secret,
                    char *err, size_t errlen)
{
    struct entries *e = arg;
    size_t used = strlen(e->buf);

    (void)file;
    snprintf(e->buf + used, sizeof(e->buf) - used, "%s|%s@%d\n", user, secret, line);
    if (e->fail_user && strcmp(user, e->fail_user) == 0) {
        snprintf(err, errlen, "duplicate user");
        return false;
    }
    return true;
}

static bool parse(const char *text, struct entries *e, char *err, size_t errlen)
{
    memset(e->buf, 0, sizeof(e->buf));
    return authfile_parse_string(text, "users.txt", collect, e, err, errlen);
}

START_TEST(plain_md5_and_scram_secrets_are_kept_verbatim)
{
    struct entries e = {0};
    char err[256];

    ck_assert(parse("\"alice\" \"secret\"\n"
                    "\"admin\" \"md545f2603610af569b6155c45067268c6b\"\n"
                    "\"bob\" \"SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy\"\n",
                    &e, err, sizeof(err)));
    ck_assert_str_eq(e.buf, "alice|secret@1\n"
                            "admin|md545f2603610af569b6155c45067268c6b@2\n"
                            "bob|SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy@3\n");
}
END_TEST

START_TEST(doubled_quotes_inside_a_field_are_one_quote)
{
    struct entries e = {0};
    char err[256];

    ck_assert(parse("\"we\"\"ird\" \"pa\"\"ss\"\"\"\n", &e, err, sizeof(err)));
    ck_assert_str_eq(e.buf, "we\"ird|pa\"ss\"@1\n");
}
END_TEST

START_TEST(rest_of_line_after_second_field_is_ignored)
{
    struct entries e = {0};
    char err[256];

    ck_assert(parse("\"u\" \"p\" \"extra\" whatever\n", &e, err, sizeof(err)));
    ck_assert_str_eq(e.buf, "u|p@1\n");
}
END_TEST

START_TEST(comments_blank_lines_and_crlf_are_handled)
{
    struct entries e = {0};
    char err[256];

    ck_assert(parse("; comment\n# another\n\n   \n\t\"u\"\t\"p\"\r\n", &e, err, sizeof(err)));
    ck_assert_str_eq(e.buf, "u|p@5\n");
}
END_TEST

START_TEST(empty_secret_is_allowed)
{
    struct entries e = {0};
    char err[256];

    ck_assert(parse("\"u\" \"\"\n", &e, err, sizeof(err)));
    ck_assert_str_eq(e.buf, "u|@1\n");
}
END_TEST

START_TEST(spaces_inside_quotes_are_kept)
{
    struct entries e = {0};
    char err[256];

    ck_assert(parse("\"my user\" \"pass word \"\n", &e, err, sizeof(err)));
    ck_assert_str_eq(e.buf, "my user|pass word @1\n");
}
END_TEST

START_TEST(last_line_without_newline_is_read)
{
    struct entries e = {0};
    char err[256];

    ck_assert(parse("\"a\" \"1\"\n\"b\" \"2\"", &e, err, sizeof(err)));
    ck_assert_str_eq(e.buf, "a|1@1\nb|2@2\n");
}
END_TEST

START_TEST(unquoted_user_is_error_with_line)
{
    struct entries e = {0};
    char err[256];

    ck_assert(!parse("\"a\" \"1\"\nbob \"2\"\n", &e, err, sizeof(err)));
    ck_assert_str_eq(err, "users.txt:2: syntax error: expected a double-quoted user name");
}
END_TEST

START_TEST(unterminated_user_is_error)
{
    struct entries e = {0};
    char err[256];

    ck_assert(!parse("\"bob 2\n", &e, err, sizeof(err)));
    ck_assert_str_eq(err, "users.txt:1: syntax error: unterminated quoted user name");
}
END_TEST

START_TEST(missing_secret_is_error)
{
    struct entries e = {0};
    char err[256];

    ck_assert(!parse("\n\"bob\"\n", &e, err, sizeof(err)));
    ck_assert_str_eq(err, "users.txt:2: syntax error: expected whitespace and a double-quoted "
                          "secret after the user name");
}
END_TEST

START_TEST(unquoted_secret_is_error)
{
    struct entries e = {0};
    char err[256];

    ck_assert(!parse("\"bob\" secret\n", &e, err, sizeof(err)));
    ck_assert_str_eq(
        err, "users.txt:1: syntax error: expected a double-quoted secret after user \"bob\"");
}
END_TEST

START_TEST(unterminated_secret_is_error)
{
    struct entries e = {0};
    char err[256];

    ck_assert(!parse("\"bob\" \"secret\n", &e, err, sizeof(err)));
    ck_assert_str_eq(err, "users.txt:1: syntax error: unterminated quoted secret for user \"bob\"");
}
END_TEST

START_TEST(fields_without_separator_is_error)
{
    struct entries e = {0};
    char err[256];

    ck_assert(!parse("\"bob\"x\"secret\"\n", &e, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "users.txt:1: syntax error: expected whitespace"));
}
END_TEST

START_TEST(empty_user_name_is_error)
{
    struct entries e = {0};
    char err[256];

    ck_assert(!parse("\"\" \"secret\"\n", &e, err, sizeof(err)));
    ck_assert_str_eq(err, "users.txt:1: empty user name");
}
END_TEST

START_TEST(callback_error_gets_file_and_line)
{
    struct entries e = {.fail_user = "b"};
    char err[256];

    ck_assert(!parse("\"a\" \"1\"\n\"b\" \"2\"\n\"c\" \"3\"\n", &e, err, sizeof(err)));
    ck_assert_str_eq(err, "users.txt:2: duplicate user");
    ck_assert_ptr_null(strstr(e.buf, "c|"));
}
END_TEST

START_TEST(file_is_read_and_errors_name_the_path)
{
    struct entries e = {0};
    char err[512];
    char path[] = "/tmp/pgusher-authfile-XXXXXX";
    int fd = mkstemp(path);
    const char *text = "\"a\" \"1\"\n\"b\" 2\n";

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (int)strlen(text));
    close(fd);
    ck_assert(!authfile_parse_file(path, collect, &e, err, sizeof(err)));
    unlink(path);
    ck_assert_ptr_nonnull(strstr(err, path));
    ck_assert_ptr_nonnull(strstr(err, ":2: syntax error"));
    ck_assert_str_eq(e.buf, "a|1@1\n");
}
END_TEST

START_TEST(missing_file_is_error)
{
    struct entries e = {0};
    char err[512];

    ck_assert(
        !authfile_parse_file("/nonexistent/pgusher-users.txt", collect, &e, err, sizeof(err)));
    ck_assert_str_eq(err, "/nonexistent/pgusher-users.txt: cannot read auth file: No such file "
                          "or directory");
}
END_TEST

static Suite *authfile_suite(void)
{
    Suite *s = suite_create("authfile");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, plain_md5_and_scram_secrets_are_kept_verbatim);
    tcase_add_test(tc, doubled_quotes_inside_a_field_are_one_quote);
    tcase_add_test(tc, rest_of_line_after_second_field_is_ignored);
    tcase_add_test(tc, comments_blank_lines_and_crlf_are_handled);
    tcase_add_test(tc, empty_secret_is_allowed);
    tcase_add_test(tc, spaces_inside_quotes_are_kept);
    tcase_add_test(tc, last_line_without_newline_is_read);
    tcase_add_test(tc, unquoted_user_is_error_with_line);
    tcase_add_test(tc, unterminated_user_is_error);
    tcase_add_test(tc, missing_secret_is_error);
    tcase_add_test(tc, unquoted_secret_is_error);
    tcase_add_test(tc, unterminated_secret_is_error);
    tcase_add_test(tc, fields_without_separator_is_error);
    tcase_add_test(tc, empty_user_name_is_error);
    tcase_add_test(tc, callback_error_gets_file_and_line);
    tcase_add_test(tc, file_is_read_and_errors_name_the_path);
    tcase_add_test(tc, missing_file_is_error);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(authfile_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
