/*
 * test_http.c: pins the metrics endpoint's request parser: what a well-formed head yields,
 * when it wants more bytes, and which status each kind of bad request gets. Pure in-memory.
 */
#include "pgusher/http.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse(const char *s, struct http_request *r)
{
    return http_parse_request(s, strlen(s), r);
}

START_TEST(get_with_headers_is_done)
{
    struct http_request r;
    const char *s = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\r\n";
    ck_assert_int_eq(parse(s, &r), HTTP_DONE);
    ck_assert_str_eq(r.method, "GET");
    ck_assert_str_eq(r.path, "/metrics");
    ck_assert_int_eq(r.version_minor, 1);
    ck_assert_int_eq(r.nheaders, 2);
    ck_assert_uint_eq(r.head_len, strlen(s));
    ck_assert(!r.accept_openmetrics);
}
END_TEST

START_TEST(query_string_is_cut_from_path)
{
    struct http_request r;
    ck_assert_int_eq(parse("GET /metrics?name[]=up HTTP/1.0\r\n\r\n", &r), HTTP_DONE);
    ck_assert_str_eq(r.path, "/metrics");
    ck_assert_int_eq(r.version_minor, 0);
}
END_TEST

START_TEST(bare_lf_line_ends_are_accepted)
{
    struct http_request r;
    ck_assert_int_eq(parse("GET /metrics HTTP/1.1\nHost: x\n\n", &r), HTTP_DONE);
    ck_assert_int_eq(r.nheaders, 1);
}
END_TEST

START_TEST(bytes_after_the_head_are_not_read)
{
    struct http_request r;
    const char *s = "POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
    ck_assert_int_eq(parse(s, &r), HTTP_DONE);
    ck_assert_str_eq(r.method, "POST");
    ck_assert_uint_eq(r.head_len, strlen(s) - 5);
}
END_TEST

START_TEST(openmetrics_accept_is_seen)
{
    struct http_request r;
    ck_assert_int_eq(parse("GET /metrics HTTP/1.1\r\naccept: text/plain;q=0.5, "
                           "Application/OpenMetrics-Text; version=1.0.0\r\n\r\n",
                           &r),
                     HTTP_DONE);
    ck_assert(r.accept_openmetrics);
}
END_TEST

START_TEST(incomplete_head_wants_more)
{
    struct http_request r;
    ck_assert_int_eq(parse("", &r), HTTP_MORE);
    ck_assert_int_eq(parse("GET /met", &r), HTTP_MORE);
    ck_assert_int_eq(parse("GET /metrics HTTP/1.1\r\n", &r), HTTP_MORE);
    ck_assert_int_eq(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n", &r), HTTP_MORE);
    ck_assert_int_eq(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n\r", &r), HTTP_MORE);
}
END_TEST

START_TEST(garbage_request_line_is_refused_at_once)
{
    struct http_request r;
    /* judged as soon as the line is complete, without waiting for the blank line */
    ck_assert_int_eq(parse("\x16\x03\x01\x02\n", &r), HTTP_BAD_REQUEST);
    ck_assert_int_eq(parse("GET\r\n", &r), HTTP_BAD_REQUEST);
    ck_assert_int_eq(parse("GET  /metrics HTTP/1.1\r\n", &r), HTTP_BAD_REQUEST);
    ck_assert_int_eq(parse("GET /metrics\r\n", &r), HTTP_BAD_REQUEST);
    ck_assert_int_eq(parse("GET /metrics HTTP/1.1 \r\n", &r), HTTP_BAD_REQUEST);
    ck_assert_int_eq(parse("GET /metrics FTP/1.1\r\n", &r), HTTP_BAD_REQUEST);
    ck_assert_int_eq(parse("GET metrics HTTP/1.1\r\n", &r), HTTP_BAD_REQUEST);
    ck_assert_int_eq(parse("GET http://h/metrics HTTP/1.1\r\n", &r), HTTP_BAD_REQUEST);
    ck_assert_int_eq(parse("G(T /metrics HTTP/1.1\r\n", &r), HTTP_BAD_REQUEST);
    ck_assert_int_eq(parse("AVERYVERYLONGMETHODNAME / HTTP/1.1\r\n", &r), HTTP_BAD_REQUEST);
}
END_TEST

START_TEST(nul_and_controls_are_refused)
{
    struct http_request r;
    static const char nul_target[] = "GET /me\0trics HTTP/1.1\r\n\r\n";
    ck_assert_int_eq(http_parse_request(nul_target, sizeof(nul_target) - 1, &r), HTTP_BAD_REQUEST);
    static const char nul_header[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";
    ck_assert_int_eq(http_parse_request(nul_header, sizeof(nul_header) - 1, &r), HTTP_BAD_REQUEST);
    ck_assert_int_eq(parse("GET / HTTP/1.1\r\nX: a\x01\r\n\r\n", &r), HTTP_BAD_REQUEST);
    ck_assert_int_eq(parse("GET / HTTP/1.1\r\nX: tab\tok\r\n\r\n", &r), HTTP_DONE);
}
END_TEST

START_TEST(bad_headers_are_refused)
{
    struct http_request r;
    ck_assert_int_eq(parse("GET / HTTP/1.1\r\nNoColon\r\n\r\n", &r), HTTP_BAD_REQUEST);
    ck_assert_int_eq(parse("GET / HTTP/1.1\r\nSpace : x\r\n\r\n", &r), HTTP_BAD_REQUEST);
    ck_assert_int_eq(parse("GET / HTTP/1.1\r\n: x\r\n\r\n", &r), HTTP_BAD_REQUEST);
    ck_assert_int_eq(parse("GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", &r), HTTP_BAD_REQUEST);
}
END_TEST

START_TEST(other_http_versions_get_505)
{
    struct http_request r;
    ck_assert_int_eq(parse("GET / HTTP/2.0\r\n\r\n", &r), HTTP_VERSION_NOT_SUPPORTED);
    ck_assert_int_eq(parse("PRI * HTTP/2.0\r\n\r\n", &r), HTTP_BAD_REQUEST); /* not origin-form */
    ck_assert_int_eq(parse("GET / HTTP/0.9\r\n\r\n", &r), HTTP_VERSION_NOT_SUPPORTED);
}
END_TEST

START_TEST(long_target_gets_414)
{
    struct http_request r;
    char s[HTTP_PATH_MAX + 64];
    int n = snprintf(s, sizeof(s), "GET /");
    memset(s + n, 'a', HTTP_PATH_MAX);
    snprintf(s + n + HTTP_PATH_MAX, sizeof(s) - (size_t)n - HTTP_PATH_MAX, " HTTP/1.1\r\n\r\n");
    ck_assert_int_eq(parse(s, &r), HTTP_URI_TOO_LONG);
}
END_TEST

START_TEST(oversized_head_gets_431)
{
    struct http_request r;
    size_t n = HTTP_HEAD_MAX + 100;
    char *s = malloc(n + 1);
    int k = snprintf(s, n, "GET / HTTP/1.1\r\nX: ");
    memset(s + k, 'a', n - (size_t)k);
    s[n] = '\0';
    ck_assert_int_eq(parse(s, &r), HTTP_HEADERS_TOO_LARGE);
    /* exactly at the cap without an end: too large, not "more" */
    ck_assert_int_eq(http_parse_request(s, HTTP_HEAD_MAX, &r), HTTP_HEADERS_TOO_LARGE);
    ck_assert_int_eq(http_parse_request(s, HTTP_HEAD_MAX - 1, &r), HTTP_MORE);
    free(s);
}
END_TEST

START_TEST(too_many_headers_get_431)
{
    struct http_request r;
    char s[HTTP_HEAD_MAX];
    size_t n = (size_t)snprintf(s, sizeof(s), "GET / HTTP/1.1\r\n");
    for (int i = 0; i <= HTTP_HEADERS_MAX; i++)
        n += (size_t)snprintf(s + n, sizeof(s) - n, "X-%d: y\r\n", i);
    snprintf(s + n, sizeof(s) - n, "\r\n");
    ck_assert_int_eq(parse(s, &r), HTTP_HEADERS_TOO_LARGE);
}
END_TEST

START_TEST(reasons_name_the_statuses)
{
    ck_assert_str_eq(http_reason(404), "Not Found");
    ck_assert_str_eq(http_reason(405), "Method Not Allowed");
    ck_assert_str_eq(http_reason(431), "Request Header Fields Too Large");
    ck_assert_str_eq(http_reason(999), "Error");
}
END_TEST

static Suite *http_suite(void)
{
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, get_with_headers_is_done);
    tcase_add_test(tc, query_string_is_cut_from_path);
    tcase_add_test(tc, bare_lf_line_ends_are_accepted);
    tcase_add_test(tc, bytes_after_the_head_are_not_read);
    tcase_add_test(tc, openmetrics_accept_is_seen);
    tcase_add_test(tc, incomplete_head_wants_more);
    tcase_add_test(tc, garbage_request_line_is_refused_at_once);
    tcase_add_test(tc, nul_and_controls_are_refused);
    tcase_add_test(tc, bad_headers_are_refused);
    tcase_add_test(tc, other_http_versions_get_505);
    tcase_add_test(tc, long_target_gets_414);
    tcase_add_test(tc, oversized_head_gets_431);
    tcase_add_test(tc, too_many_headers_get_431);
    tcase_add_test(tc, reasons_name_the_statuses);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(http_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
