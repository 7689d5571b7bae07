/*
 * test_dns.c: pins the DNS cache logic of dns.c with a fake clock (no resolver, no loop):
 * how long a positive and a negative answer are used (dns_max_ttl, dns_nxdomain_ttl), that
 * a failed lookup keeps the last good addresses, that answers are compared as sets, the
 * ttl SHOW DNS_HOSTS prints, zone names and SOA serial changes expiring a zone's names,
 * which hosts count as address literals, when a name's first answer is still to come (a
 * peer's cancel waits for it) and the listener table.
 */
#include "pgusher/dns.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEC 1000000ULL

static struct dns_name fresh(const char *name)
{
    struct dns_name dn;
    memset(&dn, 0, sizeof(dn));
    dn.name = (char *)name;
    return dn;
}

/* Store an OK answer of n addresses given as a list of strings. */
static bool store_ok(struct dns_name *dn, uint64_t now, int n, const char *const *list)
{
    char addrs[DNS_MAX_ADDRS][DNS_ADDRLEN];
    for (int i = 0; i < n; i++)
        snprintf(addrs[i], DNS_ADDRLEN, "%s", list[i]);
    return dns_cache_store(dn, DNS_OK, addrs, n, NULL, now, 15 * SEC, 5 * SEC);
}

START_TEST(new_entry_is_due_at_once)
{
    struct dns_name dn = fresh("db.example.com");
    ck_assert(dns_cache_due(&dn, 0));
    dn.querying = true;
    ck_assert(!dns_cache_due(&dn, 0));
}
END_TEST

START_TEST(positive_answer_is_used_for_max_ttl)
{
    struct dns_name dn = fresh("db.example.com");
    const char *a[] = {"10.0.0.1"};
    ck_assert(store_ok(&dn, 100 * SEC, 1, a));
    ck_assert_int_eq(dn.status, DNS_OK);
    ck_assert(!dns_cache_due(&dn, 100 * SEC));
    ck_assert(!dns_cache_due(&dn, 115 * SEC - 1));
    ck_assert(dns_cache_due(&dn, 115 * SEC));
}
END_TEST

START_TEST(negative_answer_is_used_for_nxdomain_ttl)
{
    struct dns_name dn = fresh("nope.example.com");
    ck_assert(!dns_cache_store(&dn, DNS_NXDOMAIN, NULL, 0, "Domain name not found", 50 * SEC,
                               15 * SEC, 5 * SEC));
    ck_assert_int_eq(dn.status, DNS_NXDOMAIN);
    ck_assert_str_eq(dn.error, "Domain name not found");
    ck_assert_int_eq(dn.naddrs, 0);
    ck_assert(!dns_cache_due(&dn, 55 * SEC - 1));
    ck_assert(dns_cache_due(&dn, 55 * SEC));
}
END_TEST

START_TEST(failure_keeps_the_last_good_addresses)
{
    struct dns_name dn = fresh("db.example.com");
    const char *a[] = {"10.0.0.1", "10.0.0.2"};
    store_ok(&dn, 0, 2, a);
    ck_assert(!dns_cache_store(&dn, DNS_FAILED, NULL, 0, "Timeout while contacting DNS servers",
                               20 * SEC, 15 * SEC, 5 * SEC));
    ck_assert_int_eq(dn.status, DNS_FAILED);
    ck_assert_int_eq(dn.naddrs, 2);
    ck_assert_str_eq(dn.addrs[0], "10.0.0.1");
    ck_assert(dns_cache_due(&dn, 25 * SEC)); /* asked again after nxdomain_ttl */
    ck_assert(!dns_cache_due(&dn, 25 * SEC - 1));
}
END_TEST

START_TEST(success_after_failure_clears_the_error)
{
    struct dns_name dn = fresh("db.example.com");
    dns_cache_store(&dn, DNS_NXDOMAIN, NULL, 0, "Domain name not found", 0, 15 * SEC, 5 * SEC);
    const char *a[] = {"10.0.0.1"};
    ck_assert(store_ok(&dn, 6 * SEC, 1, a)); /* from nothing to an address: a change */
    ck_assert_int_eq(dn.status, DNS_OK);
    ck_assert_str_eq(dn.error, "");
}
END_TEST

START_TEST(same_addresses_in_another_order_are_no_change)
{
    struct dns_name dn = fresh("db.example.com");
    const char *a[] = {"10.0.0.2", "10.0.0.1"};
    const char *b[] = {"10.0.0.1", "10.0.0.2", "10.0.0.1"};
    ck_assert(store_ok(&dn, 0, 2, a));
    ck_assert_int_eq(dn.naddrs, 2);
    ck_assert_str_eq(dn.addrs[0], "10.0.0.1"); /* sorted */
    ck_assert(!store_ok(&dn, 20 * SEC, 3, b)); /* duplicates dropped */
    ck_assert_int_eq(dn.naddrs, 2);
    ck_assert_int_eq(dn.expires, 35 * SEC); /* the answer still renews the entry */
}
END_TEST

START_TEST(a_changed_address_is_a_change)
{
    struct dns_name dn = fresh("db.example.com");
    const char *a[] = {"10.0.0.1"};
    const char *b[] = {"10.0.0.2"};
    const char *c[] = {"10.0.0.2", "::1"};
    store_ok(&dn, 0, 1, a);
    ck_assert(store_ok(&dn, 20 * SEC, 1, b));
    ck_assert_str_eq(dn.addrs[0], "10.0.0.2");
    ck_assert(store_ok(&dn, 40 * SEC, 2, c));
    ck_assert_int_eq(dn.naddrs, 2);
}
END_TEST

START_TEST(ok_without_addresses_is_negative)
{
    struct dns_name dn = fresh("db.example.com");
    ck_assert(!dns_cache_store(&dn, DNS_OK, NULL, 0, NULL, 0, 15 * SEC, 5 * SEC));
    ck_assert_int_eq(dn.status, DNS_NXDOMAIN);
    ck_assert_int_eq(dn.expires, 5 * SEC);
}
END_TEST

START_TEST(too_many_addresses_are_capped)
{
    struct dns_name dn = fresh("big.example.com");
    char addrs[DNS_MAX_ADDRS][DNS_ADDRLEN];
    for (int i = 0; i < DNS_MAX_ADDRS; i++)
        snprintf(addrs[i], DNS_ADDRLEN, "10.0.0.%d", i + 1);
    ck_assert(dns_cache_store(&dn, DNS_OK, addrs, DNS_MAX_ADDRS, NULL, 0, 15 * SEC, 5 * SEC));
    ck_assert_int_eq(dn.naddrs, DNS_MAX_ADDRS);
}
END_TEST

START_TEST(zero_ttl_asks_every_time)
{
    struct dns_name dn = fresh("db.example.com");
    char addrs[1][DNS_ADDRLEN] = {"10.0.0.1"};
    dns_cache_store(&dn, DNS_OK, addrs, 1, NULL, 7 * SEC, 0, 0);
    ck_assert(dns_cache_due(&dn, 7 * SEC));
}
END_TEST

START_TEST(ttl_left_rounds_up_and_stops_at_zero)
{
    struct dns_name dn = fresh("db.example.com");
    const char *a[] = {"10.0.0.1"};
    store_ok(&dn, 0, 1, a);
    ck_assert_int_eq(dns_cache_ttl_left(&dn, 0), 15);
    ck_assert_int_eq(dns_cache_ttl_left(&dn, SEC / 2), 15);
    ck_assert_int_eq(dns_cache_ttl_left(&dn, 14 * SEC + 1), 1);
    ck_assert_int_eq(dns_cache_ttl_left(&dn, 15 * SEC), 0);
    ck_assert_int_eq(dns_cache_ttl_left(&dn, 99 * SEC), 0);
}
END_TEST

START_TEST(zone_is_what_follows_the_first_dot)
{
    ck_assert_str_eq(dns_zone_of("db.example.com"), "example.com");
    ck_assert_str_eq(dns_zone_of("a.b"), "b");
    ck_assert_ptr_null(dns_zone_of("localhost"));
    ck_assert_ptr_null(dns_zone_of("trailing."));
}
END_TEST

START_TEST(first_serial_is_no_change)
{
    struct dns_zone z;
    memset(&z, 0, sizeof(z));
    ck_assert(!dns_zone_store_serial(&z, 7));
    ck_assert(z.have_serial);
    ck_assert(!dns_zone_store_serial(&z, 7));
    ck_assert(dns_zone_store_serial(&z, 8));
    ck_assert_int_eq(z.serial, 8);
    ck_assert(dns_zone_store_serial(&z, 1)); /* any difference, even a lower one */
}
END_TEST

START_TEST(serial_change_expires_only_that_zones_names)
{
    struct dns_zone z1, z2;
    memset(&z1, 0, sizeof(z1));
    memset(&z2, 0, sizeof(z2));
    struct list cache = LIST_INIT(cache);
    struct dns_name a = fresh("a.one.test"), b = fresh("b.one.test"), c = fresh("c.two.test");
    a.zone = b.zone = &z1;
    c.zone = &z2;
    const char *addr[] = {"10.0.0.1"};
    store_ok(&a, 0, 1, addr);
    store_ok(&b, 0, 1, addr);
    store_ok(&c, 0, 1, addr);
    list_append(&cache, &a.node);
    list_append(&cache, &b.node);
    list_append(&cache, &c.node);
    ck_assert_int_eq(dns_zone_expire_names(&cache, &z1), 2);
    ck_assert(dns_cache_due(&a, SEC));
    ck_assert(dns_cache_due(&b, SEC));
    ck_assert(!dns_cache_due(&c, SEC));
}
END_TEST

START_TEST(literals_are_addresses_only)
{
    ck_assert(dns_is_literal("127.0.0.1"));
    ck_assert(dns_is_literal("::1"));
    ck_assert(dns_is_literal("fe80::1"));
    ck_assert(!dns_is_literal("localhost"));
    ck_assert(!dns_is_literal("db.example.com"));
    ck_assert(!dns_is_literal("127.0.0"));
    ck_assert(!dns_is_literal("/tmp"));
    ck_assert(!dns_is_literal(""));
}
END_TEST

START_TEST(first_answer_is_awaited_until_a_lookup_ends)
{
    struct dns_name dn = fresh("peer2.example.com");
    ck_assert(dns_name_waiting(&dn)); /* DNS_NEW */
    dn.querying = true;
    ck_assert(dns_name_waiting(&dn));
    dn.querying = false;
    dns_cache_store(&dn, DNS_NXDOMAIN, NULL, 0, "Domain name not found", 0, 15 * SEC, 5 * SEC);
    ck_assert(!dns_name_waiting(&dn)); /* failed, no address: the cancel is dropped */
    dn.querying = true;                /* looked up again after dns_nxdomain_ttl */
    ck_assert(dns_name_waiting(&dn));
    dn.querying = false;
    const char *one[] = {"127.0.0.5"};
    store_ok(&dn, 6 * SEC, 1, one);
    ck_assert(!dns_name_waiting(&dn));
    dn.querying = true; /* a refresh of a name with addresses: they serve meanwhile */
    ck_assert(!dns_name_waiting(&dn));
    dn.querying = false;
    dns_cache_store(&dn, DNS_FAILED, NULL, 0, "Timeout", 30 * SEC, 15 * SEC, 5 * SEC);
    ck_assert(!dns_name_waiting(&dn)); /* the last addresses are kept */
    ck_assert_int_eq(dn.naddrs, 1);
}
END_TEST

static void listener_a(struct dns_name *dn, bool changed)
{
    (void)dn;
    (void)changed;
}

START_TEST(listener_table_is_bounded)
{
    for (int i = 0; i < DNS_MAX_LISTENERS; i++)
        ck_assert(dns_add_listener(listener_a));
    ck_assert(!dns_add_listener(listener_a));
}
END_TEST

static Suite *dns_suite(void)
{
    Suite *s = suite_create("dns");
    TCase *tc = tcase_create("cache");
    tcase_add_test(tc, new_entry_is_due_at_once);
    tcase_add_test(tc, positive_answer_is_used_for_max_ttl);
    tcase_add_test(tc, negative_answer_is_used_for_nxdomain_ttl);
    tcase_add_test(tc, failure_keeps_the_last_good_addresses);
    tcase_add_test(tc, success_after_failure_clears_the_error);
    tcase_add_test(tc, same_addresses_in_another_order_are_no_change);
    tcase_add_test(tc, a_changed_address_is_a_change);
    tcase_add_test(tc, ok_without_addresses_is_negative);
    tcase_add_test(tc, too_many_addresses_are_capped);
    tcase_add_test(tc, zero_ttl_asks_every_time);
    tcase_add_test(tc, ttl_left_rounds_up_and_stops_at_zero);
    tcase_add_test(tc, first_answer_is_awaited_until_a_lookup_ends);
    suite_add_tcase(s, tc);

    tc = tcase_create("listeners");
    tcase_add_test(tc, listener_table_is_bounded);
    suite_add_tcase(s, tc);

    tc = tcase_create("zones");
    tcase_add_test(tc, zone_is_what_follows_the_first_dot);
    tcase_add_test(tc, first_serial_is_no_change);
    tcase_add_test(tc, serial_change_expires_only_that_zones_names);
    suite_add_tcase(s, tc);

    tc = tcase_create("literals");
    tcase_add_test(tc, literals_are_addresses_only);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(dns_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
