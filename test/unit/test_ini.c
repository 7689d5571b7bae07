/*
 * test_ini.c: pins the ini reader's grammar, %include handling and file:line errors.
 * Uses temp files under /tmp only; never depends on files outside the repository.
 */
#include "pgusher/ini.h"

#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[64];
static char created[32][PATH_MAX];
static int ncreated;

static void setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/pgusher-ini-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    ncreated = 0;
}

static void teardown(void)
{
    for (int i = 0; i < ncreated; i++)
        unlink(created[i]);
    rmdir(tmpdir);
}

/* Writes text to tmpdir/name and returns the full path (static storage per slot). */
static const char *write_file(const char *name, const char *text)
{
    char *path = created[ncreated++];
    FILE *f;

    snprintf(path, PATH_MAX, "%s/%s", tmpdir, name);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* Collects every callback as one line of text: "[sec]@N" or "sec|key=value@N". */
struct events {
    char buf[8192];
    const char *fail_key; /* handler rejects this key */
};

static bool collect(void *arg, const char *file, int line, const char *section, const char *key,
                    const char *value, char *err, size_t errlen)
{
    struct events *ev = arg;
    size_t used = strlen(ev->buf);
    const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;

    if (!key)
        snprintf(ev->buf + used, sizeof(ev->buf) - used, "[%s]@%s:%d\n", section, base, line);
    else
        snprintf(ev->buf + used, sizeof(ev->buf) - used, "%s|%s=%s@%s:%d\n",
                 section ? section : "-", key, value, base, line);
    if (key && ev->fail_key && strcmp(key, ev->fail_key) == 0) {
        snprintf(err, errlen, "no thanks");
        return false;
    }
    return true;
}

static bool parse(const char *text, struct events *ev, char *err, size_t errlen)
{
    memset(ev->buf, 0, sizeof(ev->buf));
    return ini_parse_string(text, "t.ini", collect, ev, err, errlen);
}

START_TEST(sections_and_pairs_are_reported_in_order)
{
    struct events ev = {0};
    char err[256];

    ck_assert(parse("[pgbouncer]\nlisten_port = 6432\n[databases]\nfoo = host=x\n", &ev, err,
                    sizeof(err)));
    ck_assert_str_eq(ev.buf, "[pgbouncer]@t.ini:1\n"
                             "pgbouncer|listen_port=6432@t.ini:2\n"
                             "[databases]@t.ini:3\n"
                             "databases|foo=host=x@t.ini:4\n");
}
END_TEST

START_TEST(comments_and_blank_lines_are_skipped)
{
    struct events ev = {0};
    char err[256];

    ck_assert(parse("; comment\n# other\n\n   \n  ; indented\n[s]\n\t# tab\na=1\n", &ev, err,
                    sizeof(err)));
    ck_assert_str_eq(ev.buf, "[s]@t.ini:6\ns|a=1@t.ini:8\n");
}
END_TEST

START_TEST(comment_characters_later_in_a_line_are_data)
{
    struct events ev = {0};
    char err[256];

    ck_assert(parse("[s]\nq = SELECT 1; # not a comment\n", &ev, err, sizeof(err)));
    ck_assert_str_eq(ev.buf, "[s]@t.ini:1\ns|q=SELECT 1; # not a comment@t.ini:2\n");
}
END_TEST

START_TEST(whitespace_around_keys_and_values_is_trimmed_and_crlf_accepted)
{
    struct events ev = {0};
    char err[256];

    ck_assert(parse("[s]\r\n   key\t=\t  some value  \t\r\n", &ev, err, sizeof(err)));
    ck_assert_str_eq(ev.buf, "[s]@t.ini:1\ns|key=some value@t.ini:2\n");
}
END_TEST

START_TEST(empty_value_is_allowed)
{
    struct events ev = {0};
    char err[256];

    ck_assert(parse("[s]\nfoodb =\n", &ev, err, sizeof(err)));
    ck_assert_str_eq(ev.buf, "[s]@t.ini:1\ns|foodb=@t.ini:2\n");
}
END_TEST

START_TEST(quotes_in_values_are_kept_verbatim)
{
    struct events ev = {0};
    char err[256];

    ck_assert(parse("[s]\nk = \"quoted\"\n", &ev, err, sizeof(err)));
    ck_assert_str_eq(ev.buf, "[s]@t.ini:1\ns|k=\"quoted\"@t.ini:2\n");
}
END_TEST

START_TEST(quoted_key_allows_spaces_and_doubled_quotes)
{
    struct events ev = {0};
    char err[256];

    ck_assert(parse("[s]\n\"my \"\"odd\"\" db\" = host=x\n\"a=b\"=1\n", &ev, err, sizeof(err)));
    ck_assert_str_eq(ev.buf, "[s]@t.ini:1\ns|my \"odd\" db=host=x@t.ini:2\ns|a=b=1@t.ini:3\n");
}
END_TEST

START_TEST(keys_keep_their_case_and_allowed_punctuation)
{
    struct events ev = {0};
    char err[256];

    ck_assert(parse("[S]\nMyDB.v2-x = 1\n* = host=y\n", &ev, err, sizeof(err)));
    ck_assert_str_eq(ev.buf, "[S]@t.ini:1\nS|MyDB.v2-x=1@t.ini:2\nS|*=host=y@t.ini:3\n");
}
END_TEST

START_TEST(section_header_may_have_spaces_and_trailing_comment)
{
    struct events ev = {0};
    char err[256];

    ck_assert(parse("[ pgbouncer ]  ; main\n", &ev, err, sizeof(err)));
    ck_assert_str_eq(ev.buf, "[pgbouncer]@t.ini:1\n");
}
END_TEST

START_TEST(pair_before_any_section_gets_null_section)
{
    struct events ev = {0};
    char err[256];

    ck_assert(parse("a = 1\n", &ev, err, sizeof(err)));
    ck_assert_str_eq(ev.buf, "-|a=1@t.ini:1\n");
}
END_TEST

START_TEST(missing_equals_is_error_with_file_and_line)
{
    struct events ev = {0};
    char err[256];

    ck_assert(!parse("[s]\n\nlisten_port 6432\n", &ev, err, sizeof(err)));
    ck_assert_str_eq(err, "t.ini:3: syntax error: expected \"=\" after \"listen_port\" (names "
                          "with special characters must be double-quoted)");
}
END_TEST

START_TEST(key_without_value_or_equals_is_error)
{
    struct events ev = {0};
    char err[256];

    ck_assert(!parse("[s]\nlonely\n", &ev, err, sizeof(err)));
    ck_assert_str_eq(err, "t.ini:2: syntax error: expected \"=\" after \"lonely\"");
}
END_TEST

START_TEST(unterminated_quoted_key_is_error)
{
    struct events ev = {0};
    char err[256];

    ck_assert(!parse("[s]\n\"my db = 1\n", &ev, err, sizeof(err)));
    ck_assert_str_eq(err, "t.ini:2: syntax error: unterminated quoted name");
}
END_TEST

START_TEST(empty_quoted_key_is_error)
{
    struct events ev = {0};
    char err[256];

    ck_assert(!parse("[s]\n\"\" = 1\n", &ev, err, sizeof(err)));
    ck_assert_str_eq(err, "t.ini:2: syntax error: empty name");
}
END_TEST

START_TEST(special_character_in_unquoted_key_is_error)
{
    struct events ev = {0};
    char err[256];

    ck_assert(!parse("[s]\n=1\n", &ev, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "t.ini:2: syntax error: unexpected character '='"));
}
END_TEST

START_TEST(unclosed_section_header_is_error)
{
    struct events ev = {0};
    char err[256];

    ck_assert(!parse("[pgbouncer\n", &ev, err, sizeof(err)));
    ck_assert_str_eq(err, "t.ini:1: syntax error: missing \"]\" in section header");
}
END_TEST

START_TEST(empty_section_name_is_error)
{
    struct events ev = {0};
    char err[256];

    ck_assert(!parse("\n[  ]\n", &ev, err, sizeof(err)));
    ck_assert_str_eq(err, "t.ini:2: syntax error: empty section name");
}
END_TEST

START_TEST(text_after_section_header_is_error)
{
    struct events ev = {0};
    char err[256];

    ck_assert(!parse("[s] x = 1\n", &ev, err, sizeof(err)));
    ck_assert_str_eq(err, "t.ini:1: syntax error: unexpected text after section header");
}
END_TEST

START_TEST(unknown_directive_is_error)
{
    struct events ev = {0};
    char err[256];

    ck_assert(!parse("%includes x\n", &ev, err, sizeof(err)));
    ck_assert_str_eq(err, "t.ini:1: syntax error: unknown directive \"%includes x\"");
}
END_TEST

START_TEST(include_without_file_name_is_error)
{
    struct events ev = {0};
    char err[256];

    ck_assert(!parse("[s]\n%include   \n", &ev, err, sizeof(err)));
    ck_assert_str_eq(err, "t.ini:2: syntax error: %include needs a file name");
}
END_TEST

START_TEST(handler_error_is_prefixed_with_file_and_line)
{
    struct events ev = {.fail_key = "bad"};
    char err[256];

    ck_assert(!parse("[s]\nok=1\nbad=2\nnever=3\n", &ev, err, sizeof(err)));
    ck_assert_str_eq(err, "t.ini:3: no thanks");
    ck_assert_ptr_null(strstr(ev.buf, "never"));
}
END_TEST

START_TEST(missing_file_is_error_naming_the_file)
{
    struct events ev = {0};
    char err[512];
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/nope.ini", tmpdir);
    ck_assert(!ini_parse_file(path, collect, &ev, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, path));
    ck_assert_ptr_nonnull(strstr(err, "No such file"));
}
END_TEST

START_TEST(file_is_read_with_its_path_as_name)
{
    struct events ev = {0};
    char err[512];
    const char *p = write_file("main.ini", "[s]\na = 1\n");

    ck_assert(ini_parse_file(p, collect, &ev, err, sizeof(err)));
    ck_assert_str_eq(ev.buf, "[s]@main.ini:1\ns|a=1@main.ini:2\n");
}
END_TEST

START_TEST(include_reads_file_in_place_and_carries_section)
{
    struct events ev = {0};
    char err[512], text[PATH_MAX + 64];
    const char *inc = write_file("inc.ini", "b = 2\n[t]\nc = 3\n");
    const char *main_ini;

    snprintf(text, sizeof(text), "[s]\na = 1\n%%include %s\nd = 4\n", inc);
    main_ini = write_file("main.ini", text);
    ck_assert_msg(ini_parse_file(main_ini, collect, &ev, err, sizeof(err)), "%s", err);
    ck_assert_str_eq(ev.buf, "[s]@main.ini:1\n"
                             "s|a=1@main.ini:2\n"
                             "s|b=2@inc.ini:1\n"
                             "[t]@inc.ini:2\n"
                             "t|c=3@inc.ini:3\n"
                             "t|d=4@main.ini:4\n");
}
END_TEST

START_TEST(include_relative_path_is_relative_to_working_directory)
{
    struct events ev = {0};
    char err[512];
    char cwd[PATH_MAX];

    write_file("rel.ini", "x = 1\n");
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
    ck_assert_int_eq(chdir(tmpdir), 0);
    ck_assert_msg(
        ini_parse_string("[s]\n%include rel.ini\n", "t.ini", collect, &ev, err, sizeof(err)), "%s",
        err);
    ck_assert_int_eq(chdir(cwd), 0);
    ck_assert_str_eq(ev.buf, "[s]@t.ini:1\ns|x=1@rel.ini:1\n");
}
END_TEST

START_TEST(missing_include_is_error_at_the_including_line)
{
    struct events ev = {0};
    char err[512];

    ck_assert(!parse("[s]\n%include /nonexistent/pgusher-x.ini\n", &ev, err, sizeof(err)));
    ck_assert_str_eq(err, "t.ini:2: cannot open include file \"/nonexistent/pgusher-x.ini\": "
                          "No such file or directory");
}
END_TEST

START_TEST(error_inside_include_names_the_included_file)
{
    struct events ev = {0};
    char err[512], text[PATH_MAX + 64];
    const char *inc = write_file("bad.ini", "ok = 1\nbroken\n");

    snprintf(text, sizeof(text), "[s]\n%%include %s\n", inc);
    ck_assert(!parse(text, &ev, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "bad.ini:2: syntax error"));
}
END_TEST

START_TEST(include_loop_is_detected)
{
    struct events ev = {0};
    char err[512], a_text[PATH_MAX + 32], a_path[PATH_MAX], b_path[PATH_MAX];

    snprintf(a_path, sizeof(a_path), "%s/a.ini", tmpdir);
    snprintf(b_path, sizeof(b_path), "%s/b.ini", tmpdir);
    snprintf(a_text, sizeof(a_text), "[s]\n%%include %s\n", b_path);
    write_file("a.ini", a_text);
    snprintf(a_text, sizeof(a_text), "x = 1\n%%include %s\n", a_path);
    write_file("b.ini", a_text);
    ck_assert(!ini_parse_file(a_path, collect, &ev, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "b.ini:2: include loop"));
}
END_TEST

START_TEST(self_include_is_detected)
{
    struct events ev = {0};
    char err[512], text[PATH_MAX + 32], path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/self.ini", tmpdir);
    snprintf(text, sizeof(text), "%%include %s\n", path);
    write_file("self.ini", text);
    ck_assert(!ini_parse_file(path, collect, &ev, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "self.ini:1: include loop"));
}
END_TEST

START_TEST(include_nesting_deeper_than_limit_is_error)
{
    struct events ev = {0};
    char err[512], text[PATH_MAX + 32], name[32];
    int levels = INI_MAX_INCLUDE_DEPTH + 2;

    /* f0 includes f1 ... includes f<levels>, each a distinct file */
    for (int i = 0; i < levels; i++) {
        snprintf(name, sizeof(name), "f%d.ini", i);
        snprintf(text, sizeof(text), "k%d = %d\n%%include %s/f%d.ini\n", i, i, tmpdir, i + 1);
        write_file(name, text);
    }
    snprintf(name, sizeof(name), "f%d.ini", levels);
    write_file(name, "last = 1\n");
    snprintf(text, sizeof(text), "%s/f0.ini", tmpdir);
    ck_assert(!ini_parse_file(text, collect, &ev, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "include nesting too deep"));
}
END_TEST

START_TEST(include_nesting_up_to_limit_is_fine)
{
    struct events ev = {0};
    char err[512], text[PATH_MAX + 32], name[32];
    int levels = INI_MAX_INCLUDE_DEPTH;

    for (int i = 0; i < levels; i++) {
        snprintf(name, sizeof(name), "g%d.ini", i);
        snprintf(text, sizeof(text), "%%include %s/g%d.ini\n", tmpdir, i + 1);
        write_file(name, text);
    }
    snprintf(name, sizeof(name), "g%d.ini", levels);
    write_file(name, "[s]\nlast = 1\n");
    snprintf(text, sizeof(text), "%s/g0.ini", tmpdir);
    ck_assert_msg(ini_parse_file(text, collect, &ev, err, sizeof(err)), "%s", err);
    ck_assert_ptr_nonnull(strstr(ev.buf, "s|last=1@g10.ini:2"));
}
END_TEST

START_TEST(same_file_included_twice_in_sequence_is_not_a_loop)
{
    struct events ev = {0};
    char err[512], text[2 * PATH_MAX + 64];
    const char *inc = write_file("twice.ini", "a = 1\n");

    snprintf(text, sizeof(text), "[s]\n%%include %s\n%%include %s\n", inc, inc);
    ck_assert_msg(parse(text, &ev, err, sizeof(err)), "%s", err);
    ck_assert_str_eq(ev.buf, "[s]@t.ini:1\ns|a=1@twice.ini:1\ns|a=1@twice.ini:1\n");
}
END_TEST

static Suite *ini_suite(void)
{
    Suite *s = suite_create("ini");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, sections_and_pairs_are_reported_in_order);
    tcase_add_test(tc, comments_and_blank_lines_are_skipped);
    tcase_add_test(tc, comment_characters_later_in_a_line_are_data);
    tcase_add_test(tc, whitespace_around_keys_and_values_is_trimmed_and_crlf_accepted);
    tcase_add_test(tc, empty_value_is_allowed);
    tcase_add_test(tc, quotes_in_values_are_kept_verbatim);
    tcase_add_test(tc, quoted_key_allows_spaces_and_doubled_quotes);
    tcase_add_test(tc, keys_keep_their_case_and_allowed_punctuation);
    tcase_add_test(tc, section_header_may_have_spaces_and_trailing_comment);
    tcase_add_test(tc, pair_before_any_section_gets_null_section);
    tcase_add_test(tc, missing_equals_is_error_with_file_and_line);
    tcase_add_test(tc, key_without_value_or_equals_is_error);
    tcase_add_test(tc, unterminated_quoted_key_is_error);
    tcase_add_test(tc, empty_quoted_key_is_error);
    tcase_add_test(tc, special_character_in_unquoted_key_is_error);
    tcase_add_test(tc, unclosed_section_header_is_error);
    tcase_add_test(tc, empty_section_name_is_error);
    tcase_add_test(tc, text_after_section_header_is_error);
    tcase_add_test(tc, unknown_directive_is_error);
    tcase_add_test(tc, include_without_file_name_is_error);
    tcase_add_test(tc, handler_error_is_prefixed_with_file_and_line);
    tcase_add_test(tc, missing_file_is_error_naming_the_file);
    tcase_add_test(tc, file_is_read_with_its_path_as_name);
    tcase_add_test(tc, include_reads_file_in_place_and_carries_section);
    tcase_add_test(tc, include_relative_path_is_relative_to_working_directory);
    tcase_add_test(tc, missing_include_is_error_at_the_including_line);
    tcase_add_test(tc, error_inside_include_names_the_included_file);
    tcase_add_test(tc, include_loop_is_detected);
    tcase_add_test(tc, self_include_is_detected);
    tcase_add_test(tc, include_nesting_deeper_than_limit_is_error);
    tcase_add_test(tc, include_nesting_up_to_limit_is_fine);
    tcase_add_test(tc, same_file_included_twice_in_sequence_is_not_a_loop);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ini_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
