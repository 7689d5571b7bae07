/*
 * test_connstr.c: pins the libpq-style key=value tokenizer: quoting, escapes and errors.
 * Pure in-memory tests; no files, no network.
 */
#include "pgusher/connstr.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pairs {
    char buf[2048];
    const char *fail_key;
};

/* Records pairs as "key=<value>;" so empty values and spaces are visible. */
static bool collect(void *arg, const char *key, const char *value, char *err, size_t errlen)
{
    struct pairs *p = arg;
    size_t used = strlen(p->buf);

    snprintf(p->buf + used, sizeof(p->buf) - used, "%s=<%s>;", key, value);
    if (p->fail_key && strcmp(key, p->fail_key) == 0) {
        snprintf(err, errlen, "unknown parameter \"%s\"", key);
        return false;
    }
    return true;
}

static bool parse(const char *s, struct pairs *p, char *err, size_t errlen)
{
    memset(p->buf, 0, sizeof(p->buf));
    return connstr_parse(s, collect, p, err, errlen);
}

START_TEST(bare_pairs_are_split_on_whitespace)
{
    struct pairs p = {0};
    char err[256];

    ck_assert(parse("host=127.0.0.1 port=5432  dbname=app", &p, err, sizeof(err)));
    ck_assert_str_eq(p.buf, "host=<127.0.0.1>;port=<5432>;dbname=<app>;");
}
END_TEST

START_TEST(empty_string_has_no_pairs)
{
    struct pairs p = {0};
    char err[256];

    ck_assert(parse("", &p, err, sizeof(err)));
    ck_assert(parse("   \t ", &p, err, sizeof(err)));
    ck_assert_str_eq(p.buf, "");
}
END_TEST

START_TEST(spaces_around_equals_are_allowed)
{
    struct pairs p = {0};
    char err[256];

    ck_assert(parse("host = a   port= 1 user =b", &p, err, sizeof(err)));
    ck_assert_str_eq(p.buf, "host=<a>;port=<1>;user=<b>;");
}
END_TEST

START_TEST(single_quoted_value_keeps_spaces)
{
    struct pairs p = {0};
    char err[256];

    ck_assert(parse("auth_query='SELECT a, b FROM t' x=1", &p, err, sizeof(err)));
    ck_assert_str_eq(p.buf, "auth_query=<SELECT a, b FROM t>;x=<1>;");
}
END_TEST

START_TEST(backslash_escapes_quote_and_backslash_in_quoted_value)
{
    struct pairs p = {0};
    char err[256];

    ck_assert(parse("password='it\\'s a \\\\ test'", &p, err, sizeof(err)));
    ck_assert_str_eq(p.buf, "password=<it's a \\ test>;");
}
END_TEST

START_TEST(doubled_quote_in_quoted_value_is_one_quote)
{
    struct pairs p = {0};
    char err[256];

    ck_assert(parse("q='it''s'", &p, err, sizeof(err)));
    ck_assert_str_eq(p.buf, "q=<it's>;");
}
END_TEST

START_TEST(empty_quoted_value_is_empty)
{
    struct pairs p = {0};
    char err[256];

    ck_assert(parse("password='' user=x", &p, err, sizeof(err)));
    ck_assert_str_eq(p.buf, "password=<>;user=<x>;");
}
END_TEST

START_TEST(backslash_escapes_in_bare_value)
{
    struct pairs p = {0};
    char err[256];

    ck_assert(parse("password=a\\ b c=d", &p, err, sizeof(err)));
    ck_assert_str_eq(p.buf, "password=<a b>;c=<d>;");
}
END_TEST

START_TEST(value_at_end_after_equals_is_empty)
{
    struct pairs p = {0};
    char err[256];

    ck_assert(parse("host=a password=", &p, err, sizeof(err)));
    ck_assert_str_eq(p.buf, "host=<a>;password=<>;");
}
END_TEST

START_TEST(comma_lists_stay_one_value)
{
    struct pairs p = {0};
    char err[256];

    ck_assert(parse("host=pg1,pg2,pg3 port=5432,5433,5434", &p, err, sizeof(err)));
    ck_assert_str_eq(p.buf, "host=<pg1,pg2,pg3>;port=<5432,5433,5434>;");
}
END_TEST

START_TEST(missing_equals_is_error)
{
    struct pairs p = {0};
    char err[256];

    ck_assert(!parse("host=a port 5432", &p, err, sizeof(err)));
    ck_assert_str_eq(err, "syntax error: missing \"=\" after \"port\"");
}
END_TEST

START_TEST(unterminated_quote_is_error)
{
    struct pairs p = {0};
    char err[256];

    ck_assert(!parse("password='abc", &p, err, sizeof(err)));
    ck_assert_str_eq(err, "syntax error: unterminated quoted value for \"password\"");
}
END_TEST

START_TEST(trailing_backslash_in_quoted_value_is_unterminated)
{
    struct pairs p = {0};
    char err[256];

    ck_assert(!parse("password='abc\\'", &p, err, sizeof(err)));
    ck_assert_str_eq(err, "syntax error: unterminated quoted value for \"password\"");
}
END_TEST

START_TEST(junk_after_closing_quote_is_error)
{
    struct pairs p = {0};
    char err[256];

    ck_assert(!parse("a='x'y", &p, err, sizeof(err)));
    ck_assert_str_eq(err, "syntax error: missing space after quoted value of \"a\"");
}
END_TEST

START_TEST(bad_character_in_key_is_error)
{
    struct pairs p = {0};
    char err[256];

    ck_assert(!parse("host=a -x=1", &p, err, sizeof(err)));
    ck_assert_str_eq(err,
                     "syntax error: unexpected character '-' where a parameter name was expected");
}
END_TEST

START_TEST(leading_equals_is_error)
{
    struct pairs p = {0};
    char err[256];

    ck_assert(!parse("=x", &p, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "unexpected character '='"));
}
END_TEST

START_TEST(callback_error_stops_parsing_and_is_returned)
{
    struct pairs p = {.fail_key = "bogus"};
    char err[256];

    ck_assert(!parse("host=a bogus=1 port=2", &p, err, sizeof(err)));
    ck_assert_str_eq(err, "unknown parameter \"bogus\"");
    ck_assert_str_eq(p.buf, "host=<a>;bogus=<1>;");
}
END_TEST

static Suite *connstr_suite(void)
{
    Suite *s = suite_create("connstr");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, bare_pairs_are_split_on_whitespace);
    tcase_add_test(tc, empty_string_has_no_pairs);
    tcase_add_test(tc, spaces_around_equals_are_allowed);
    tcase_add_test(tc, single_quoted_value_keeps_spaces);
    tcase_add_test(tc, backslash_escapes_quote_and_backslash_in_quoted_value);
    tcase_add_test(tc, doubled_quote_in_quoted_value_is_one_quote);
    tcase_add_test(tc, empty_quoted_value_is_empty);
    tcase_add_test(tc, backslash_escapes_in_bare_value);
    tcase_add_test(tc, value_at_end_after_equals_is_empty);
    tcase_add_test(tc, comma_lists_stay_one_value);
    tcase_add_test(tc, missing_equals_is_error);
    tcase_add_test(tc, unterminated_quote_is_error);
    tcase_add_test(tc, trailing_backslash_in_quoted_value_is_unterminated);
    tcase_add_test(tc, junk_after_closing_quote_is_error);
    tcase_add_test(tc, bad_character_in_key_is_error);
    tcase_add_test(tc, leading_equals_is_error);
    tcase_add_test(tc, callback_error_stops_parsing_and_is_returned);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(connstr_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
