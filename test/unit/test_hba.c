/*
 * test_hba.c: pins the auth_hba_file / auth_ident_file parser (what PgBouncer 1.25 accepts,
 * file:line errors for the rest) and the matching: connection types, TLS, addresses and
 * masks (IPv4, IPv6, v4-mapped), database and user lists, keywords, @file, first match wins.
 */
#include "pgusher/hba.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct hba *parse_ok(const char *text, const char *ident)
{
    char err[512];
    struct hba *h = hba_parse(text, "/tmp/hba.conf", ident, "ident.conf", err, sizeof(err));
    ck_assert_msg(h != NULL, "parse failed: %s", err);
    return h;
}

static void parse_fails(const char *text, const char *ident, const char *want)
{
    char err[512];
    struct hba *h = hba_parse(text, "hba.conf", ident, "ident.conf", err, sizeof(err));
    ck_assert_msg(h == NULL, "parse of [%s] should fail", text);
    ck_assert_msg(strstr(err, want) != NULL, "error [%s] lacks [%s]", err, want);
}

static struct sockaddr_storage ss;

static const struct sockaddr *v4(const char *ip)
{
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    memset(&ss, 0, sizeof(ss));
    a->sin_family = AF_INET;
    ck_assert(inet_pton(AF_INET, ip, &a->sin_addr) == 1);
    return (const struct sockaddr *)&ss;
}

static const struct sockaddr *v6(const char *ip)
{
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    memset(&ss, 0, sizeof(ss));
    a->sin6_family = AF_INET6;
    ck_assert(inet_pton(AF_INET6, ip, &a->sin6_addr) == 1);
    return (const struct sockaddr *)&ss;
}

/* The method of the first matching rule as its name, "none" without one. */
static const char *judge(const struct hba *h, const struct sockaddr *addr, bool tls, const char *db,
                         const char *user)
{
    struct hba_login lg = {
        .is_unix = addr == NULL, .tls = tls, .addr = addr, .db = db, .user = user};
    const struct hba_rule *r = hba_match(h, &lg);
    return r ? hba_method_name(r->method) : "none";
}

START_TEST(first_matching_rule_wins)
{
    struct hba *h = parse_ok("host testdb u1 127.0.0.1/32 md5\n"
                             "host all u1 127.0.0.0/8 reject\n"
                             "host all all all trust\n",
                             NULL);
    ck_assert_str_eq(judge(h, v4("127.0.0.1"), false, "testdb", "u1"), "md5");
    ck_assert_str_eq(judge(h, v4("127.0.0.2"), false, "testdb", "u1"), "reject");
    ck_assert_str_eq(judge(h, v4("10.1.1.1"), false, "testdb", "u1"), "trust");
    ck_assert_str_eq(judge(h, v4("127.0.0.1"), false, "otherdb", "u2"), "trust");
    hba_free(h);
}
END_TEST

START_TEST(no_rule_means_no_method)
{
    struct hba *h = parse_ok("# nothing for the socket\nhost all all 127.0.0.1/32 trust\n", NULL);
    ck_assert_str_eq(judge(h, NULL, false, "db", "u"), "none");
    ck_assert_str_eq(judge(h, v4("127.0.0.2"), false, "db", "u"), "none");
    ck_assert_ptr_null(hba_match(NULL, &(struct hba_login){.db = "d", .user = "u"}));
    hba_free(h);
}
END_TEST

START_TEST(local_matches_only_the_unix_socket)
{
    struct hba *h = parse_ok("local all all peer\nhost all all all md5\n", NULL);
    ck_assert_str_eq(judge(h, NULL, false, "db", "u"), "peer");
    ck_assert_str_eq(judge(h, v4("127.0.0.1"), false, "db", "u"), "md5");
    hba_free(h);
}
END_TEST

START_TEST(hostssl_and_hostnossl_follow_tls)
{
    struct hba *h = parse_ok("hostssl all all all cert\nhostnossl all all all password\n", NULL);
    ck_assert_str_eq(judge(h, v4("127.0.0.1"), true, "db", "u"), "cert");
    ck_assert_str_eq(judge(h, v4("127.0.0.1"), false, "db", "u"), "password");
    hba_free(h);
}
END_TEST

START_TEST(cidr_and_separate_masks)
{
    struct hba *h = parse_ok("host all a 10.0.0.0/8 trust\n"
                             "host all b 192.168.1.0 255.255.255.0 trust\n"
                             "host all c 172.16.0.0/12 trust\n"
                             "host all d 0.0.0.0/0 trust\n",
                             NULL);
    ck_assert_str_eq(judge(h, v4("10.200.3.4"), false, "db", "a"), "trust");
    ck_assert_str_eq(judge(h, v4("11.0.0.1"), false, "db", "a"), "none");
    ck_assert_str_eq(judge(h, v4("192.168.1.77"), false, "db", "b"), "trust");
    ck_assert_str_eq(judge(h, v4("192.168.2.77"), false, "db", "b"), "none");
    ck_assert_str_eq(judge(h, v4("172.31.255.255"), false, "db", "c"), "trust");
    ck_assert_str_eq(judge(h, v4("172.32.0.0"), false, "db", "c"), "none");
    ck_assert_str_eq(judge(h, v4("8.8.8.8"), false, "db", "d"), "trust");
    hba_free(h);
}
END_TEST

START_TEST(ipv6_and_v4_mapped_peers)
{
    struct hba *h = parse_ok("host all all ::1/128 md5\n"
                             "host all all fd00:: ffff:ff00:: scram-sha-256\n"
                             "host all all 127.0.0.0/8 password\n",
                             NULL);
    ck_assert_str_eq(judge(h, v6("::1"), false, "db", "u"), "md5");
    ck_assert_str_eq(judge(h, v6("fd00:1::5"), false, "db", "u"), "scram-sha-256");
    ck_assert_str_eq(judge(h, v6("fe80::1"), false, "db", "u"), "none");
    ck_assert_str_eq(judge(h, v6("::ffff:127.0.0.9"), false, "db", "u"), "password");
    ck_assert_str_eq(judge(h, v4("127.0.0.1"), false, "db", "u"), "password");
    hba_free(h);
}
END_TEST

START_TEST(host_bits_outside_the_mask_are_ignored)
{
    struct hba *h = parse_ok("host all all 127.0.0.5/24 trust\n", NULL);
    ck_assert_str_eq(judge(h, v4("127.0.0.200"), false, "db", "u"), "trust");
    hba_free(h);
}
END_TEST

START_TEST(name_lists_quotes_and_keywords)
{
    struct hba *h = parse_ok("host db1,\"All\", db3 u1,\"u 2\" all md5\n"
                             "host sameuser all all trust\n"
                             "host \"all\" all all password\n",
                             NULL);
    ck_assert_str_eq(judge(h, v4("1.2.3.4"), false, "db3", "u1"), "md5");
    ck_assert_str_eq(judge(h, v4("1.2.3.4"), false, "All", "u 2"), "md5");
    ck_assert_str_eq(judge(h, v4("1.2.3.4"), false, "bob", "bob"), "trust");
    /* A quoted "all" is a database called all, not the keyword. */
    ck_assert_str_eq(judge(h, v4("1.2.3.4"), false, "other", "u9"), "none");
    ck_assert_str_eq(judge(h, v4("1.2.3.4"), false, "all", "u9"), "password");
    hba_free(h);
}
END_TEST

START_TEST(replication_keyword_matches_only_replication)
{
    struct hba *h = parse_ok("host replication all all trust\nhost all all all reject\n", NULL);
    struct hba_login lg = {.addr = v4("127.0.0.1"), .db = "x", .user = "u", .replication = true};
    ck_assert_str_eq(hba_method_name(hba_match(h, &lg)->method), "trust");
    ck_assert_str_eq(judge(h, v4("127.0.0.1"), false, "replication", "u"), "reject");
    hba_free(h);
}
END_TEST

START_TEST(comments_blank_lines_and_crlf)
{
    struct hba *h = parse_ok("\n   \n# a comment\r\nhost all all all trust # why\r\n\tlocal all "
                             "all reject",
                             NULL);
    ck_assert_int_eq(h->nrules, 2);
    ck_assert_int_eq(h->rules[0].line, 4);
    ck_assert_int_eq(h->rules[1].line, 5);
    ck_assert_str_eq(judge(h, NULL, false, "d", "u"), "reject");
    hba_free(h);
}
END_TEST

START_TEST(at_file_names_relative_to_the_hba_file)
{
    char dir[] = "/tmp/pgusher-hba-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[256], hbap[256];
    snprintf(path, sizeof(path), "%s/users.txt", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("alice, bob\n# comment\n\ncarol\n", f);
    fclose(f);
    snprintf(hbap, sizeof(hbap), "%s/hba.conf", dir);
    f = fopen(hbap, "w");
    ck_assert_ptr_nonnull(f);
    fputs("host all @users.txt all md5\nhost all all all reject\n", f);
    fclose(f);
    char err[512];
    struct hba *h = hba_load(hbap, NULL, err, sizeof(err));
    ck_assert_msg(h != NULL, "%s", err);
    ck_assert_str_eq(judge(h, v4("1.1.1.1"), false, "d", "bob"), "md5");
    ck_assert_str_eq(judge(h, v4("1.1.1.1"), false, "d", "carol"), "md5");
    ck_assert_str_eq(judge(h, v4("1.1.1.1"), false, "d", "dave"), "reject");
    hba_free(h);
    unlink(path);
    f = fopen(hbap, "w");
    fputs("host all all all trust\nhost all @missing.txt all md5\n", f);
    fclose(f);
    ck_assert_ptr_null(hba_load(hbap, NULL, err, sizeof(err)));
    ck_assert_msg(strstr(err, "hba.conf:2: could not read @missing.txt") != NULL, "%s", err);
    unlink(hbap);
    rmdir(dir);
}
END_TEST

START_TEST(ident_maps)
{
    struct hba *h = parse_ok("local all all peer map=m\n",
                             "# map sys pg\nm root u_trust\nm alice all\nother root postgres\n");
    ck_assert_str_eq(h->rules[0].map, "m");
    ck_assert(hba_ident_allows(h, "m", "root", "u_trust"));
    ck_assert(!hba_ident_allows(h, "m", "root", "postgres"));
    ck_assert(hba_ident_allows(h, "m", "alice", "anyone"));
    ck_assert(hba_ident_allows(h, "other", "root", "postgres"));
    ck_assert(!hba_ident_allows(h, "nomap", "root", "u_trust"));
    hba_free(h);
}
END_TEST

START_TEST(unsupported_lines_are_errors_with_file_and_line)
{
    parse_fails("host all all all trust\nbogus all all all trust\n", NULL,
                "hba.conf:2: unknown connection type \"bogus\"");
    parse_fails("hostgssenc all all all trust\n", NULL, "hba.conf:1: unknown connection type");
    parse_fails("HOST all all all trust\n", NULL, "hba.conf:1: unknown connection type");
    parse_fails("host samerole all all trust\n", NULL, "hba.conf:1: samerole is not supported");
    parse_fails("host all +grp all trust\n", NULL, "hba.conf:1: group names (+grp)");
    parse_fails("host all all samehost trust\n", NULL, "hba.conf:1: invalid address: samehost");
    parse_fails("host all all localhost trust\n", NULL, "hba.conf:1: invalid address");
    parse_fails("host all all 127.0.0.1/33 trust\n", NULL, "hba.conf:1: invalid CIDR mask");
    parse_fails("host all all 127.0.0.1/x trust\n", NULL, "hba.conf:1: invalid CIDR mask");
    parse_fails("host all all 127.0.0.1 trust\n", NULL, "hba.conf:1: address 127.0.0.1 needs");
    parse_fails("host all all ::1 255.255.255.255 trust\n", NULL, "needs a /bits suffix");
    parse_fails("host all all all TRUST\n", NULL, "unsupported authentication method \"TRUST\"");
    parse_fails("host all all all pam\n", NULL, "unsupported authentication method \"pam\"");
    parse_fails("host all all all gss\n", NULL, "unsupported authentication method \"gss\"");
    parse_fails("host all all all\n", NULL, "hba.conf:1: authentication method expected");
    parse_fails("host all all all md5 foo=bar\n", NULL, "unsupported option \"foo=bar\"");
    parse_fails("host all all all md5 trust\n", NULL, "unsupported option \"trust\"");
    parse_fails("host \"unterminated all all trust\n", NULL, "hba.conf:1: unterminated");
    parse_fails("host all\n", NULL, "hba.conf:1: user name expected");
    parse_fails("local all all peer map=nope\n", "m root u\n",
                "hba.conf:1: ident map nope is not found");
    parse_fails("local all all trust\n", "m root\n", "ident.conf:1: expected: map-name");
    parse_fails("local all all trust\n", "m /^r.*$ u\n", "ident.conf:1: regular expressions");
    parse_fails("local all all trust\n", "m root +g\n", "ident.conf:1: group names");
}
END_TEST

START_TEST(ldap_lines_and_their_options_are_accepted)
{
    struct hba *h = parse_ok("host a all all ldap ldapserver=127.0.0.1 ldapbasedn=\"dc=x,dc=y\" "
                             "ldapport=389\nhost all all all ldap\n",
                             NULL);
    ck_assert_str_eq(judge(h, v4("1.2.3.4"), false, "a", "u"), "ldap");
    ck_assert_str_eq(judge(h, v4("1.2.3.4"), false, "b", "u"), "ldap");
    hba_free(h);
    parse_fails("host all all all md5 ldapserver=x\n", NULL, "unsupported option \"ldapserver=x\"");
}
END_TEST

START_TEST(missing_file_is_an_error)
{
    char err[256];
    ck_assert_ptr_null(hba_load("/nonexistent/hba.conf", NULL, err, sizeof(err)));
    ck_assert_str_eq(err, "/nonexistent/hba.conf: could not read auth_hba_file: No such file or "
                          "directory");
}
END_TEST

static Suite *hba_suite(void)
{
    Suite *s = suite_create("hba");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, first_matching_rule_wins);
    tcase_add_test(tc, no_rule_means_no_method);
    tcase_add_test(tc, local_matches_only_the_unix_socket);
    tcase_add_test(tc, hostssl_and_hostnossl_follow_tls);
    tcase_add_test(tc, cidr_and_separate_masks);
    tcase_add_test(tc, ipv6_and_v4_mapped_peers);
    tcase_add_test(tc, host_bits_outside_the_mask_are_ignored);
    tcase_add_test(tc, name_lists_quotes_and_keywords);
    tcase_add_test(tc, replication_keyword_matches_only_replication);
    tcase_add_test(tc, comments_blank_lines_and_crlf);
    tcase_add_test(tc, at_file_names_relative_to_the_hba_file);
    tcase_add_test(tc, ident_maps);
    tcase_add_test(tc, unsupported_lines_are_errors_with_file_and_line);
    tcase_add_test(tc, ldap_lines_and_their_options_are_accepted);
    tcase_add_test(tc, missing_file_is_an_error);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(hba_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
