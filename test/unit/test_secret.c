/*
 * test_secret.c: pins secret.c: equality only for equal strings whatever their lengths,
 * wiping, and reading whole files (empty, large, missing) without stdio.
 */
#include "pgusher/secret.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

START_TEST(equal_strings_are_equal)
{
    ck_assert(secret_equal("", ""));
    ck_assert(secret_equal("a", "a"));
    ck_assert(secret_equal("md545f2603610af569b6155c45067268c6b",
                           "md545f2603610af569b6155c45067268c6b"));
}
END_TEST

START_TEST(different_strings_differ)
{
    ck_assert(!secret_equal("a", "b"));
    ck_assert(!secret_equal("secret", "secreT"));
    ck_assert(!secret_equal("Xecret", "secret"));
}
END_TEST

START_TEST(prefixes_and_repetitions_differ)
{
    /* The comparison reads the stored secret cyclically: a repetition of it must not match. */
    ck_assert(!secret_equal("", "a"));
    ck_assert(!secret_equal("a", ""));
    ck_assert(!secret_equal("sec", "secret"));
    ck_assert(!secret_equal("secret", "sec"));
    ck_assert(!secret_equal("abab", "ab"));
    ck_assert(!secret_equal("ab", "abab"));
    ck_assert(!secret_equal("aaaaaaaa", "a"));
}
END_TEST

START_TEST(lengths_differing_by_a_multiple_of_256_differ)
{
    /* The length difference is folded into one byte: every byte of it must count. */
    char *a = malloc(257), *b = malloc(2);
    memset(a, 'x', 256);
    a[256] = 0;
    strcpy(b, "");
    ck_assert(!secret_equal(a, b));
    a[1] = 0;
    strcpy(b, "x");
    ck_assert(secret_equal(a, b));
    free(a);
    free(b);
}
END_TEST

START_TEST(wipe_zeroes_and_free_accepts_null)
{
    char buf[16];
    memset(buf, 'z', sizeof(buf));
    secret_wipe(buf, sizeof(buf));
    for (size_t i = 0; i < sizeof(buf); i++)
        ck_assert_int_eq(buf[i], 0);
    secret_wipe(NULL, 10);
    secret_free(NULL, 10);
    secret_free_str(NULL);
    secret_free_str(strdup("password"));
}
END_TEST

static char *write_temp(const char *text, size_t len)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/test_secret.XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

START_TEST(read_file_reads_all_of_it)
{
    size_t big = 100000, len = 0;
    char *text = malloc(big);
    for (size_t i = 0; i < big; i++)
        text[i] = (char)('a' + i % 26);
    char *path = write_temp(text, big);
    char *got = secret_read_file(path, &len);
    ck_assert_ptr_nonnull(got);
    ck_assert_uint_eq(len, big);
    ck_assert_int_eq(memcmp(got, text, big), 0);
    ck_assert_int_eq(got[big], 0);
    secret_free(got, len + 1);
    unlink(path);
    free(text);
}
END_TEST

START_TEST(read_file_empty_and_missing)
{
    size_t len = 99;
    char *path = write_temp("", 0);
    char *got = secret_read_file(path, &len);
    ck_assert_ptr_nonnull(got);
    ck_assert_uint_eq(len, 0);
    ck_assert_str_eq(got, "");
    secret_free(got, len + 1);
    unlink(path);
    errno = 0;
    ck_assert_ptr_null(secret_read_file("/nonexistent/secret", &len));
    ck_assert_int_eq(errno, ENOENT);
    errno = 0;
    ck_assert_ptr_null(secret_read_file("/tmp", &len));
    ck_assert_int_eq(errno, EISDIR);
}
END_TEST

static Suite *secret_suite(void)
{
    Suite *s = suite_create("secret");
    TCase *tc = tcase_create("secret");
    tcase_add_test(tc, equal_strings_are_equal);
    tcase_add_test(tc, different_strings_differ);
    tcase_add_test(tc, prefixes_and_repetitions_differ);
    tcase_add_test(tc, lengths_differing_by_a_multiple_of_256_differ);
    tcase_add_test(tc, wipe_zeroes_and_free_accepts_null);
    tcase_add_test(tc, read_file_reads_all_of_it);
    tcase_add_test(tc, read_file_empty_and_missing);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(secret_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
