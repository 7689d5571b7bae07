/*
 * test_prepared.c: pins prepared.c without sockets: the shared statement table, client names,
 * the per-server LRU (eviction closes), the message rewriting (Parse/Bind/Describe/Close) and
 * the FIFO of owed responses (synthesized, swallowed, skipped after an error, undone).
 */
#include "pgusher/objects-t.h"
#include "pgusher/pktbuf.h"
#include "pgusher/prepared.h"
#include "pgusher/runtime.h"
#include "pgusher/stream.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct config cf;
static struct database db;
static struct pool pool;
static struct client c1, c2;
static struct server s1, s2;
static struct pktbuf out, msg;

static void setup(void)
{
    memset(&cf, 0, sizeof(cf));
    cf.g.max_prepared_statements = 2;
    G.cf = &cf;
    stream_set_bufsize(4096);
    memset(&pool, 0, sizeof(pool));
    pool.db = &db;
    memset(&c1, 0, sizeof(c1));
    memset(&c2, 0, sizeof(c2));
    memset(&s1, 0, sizeof(s1));
    memset(&s2, 0, sizeof(s2));
    c1.pool = c2.pool = s1.pool = s2.pool = &pool;
    s1.link = &c1;
    s2.link = &c2;
    pktbuf_init(&out);
    pktbuf_init(&msg);
}

static void teardown(void)
{
    prepared_server_free(&s1);
    prepared_server_free(&s2);
    prepared_client_free(&c1);
    prepared_client_free(&c2);
    ck_assert_int_eq(prepared_stmt_count(), 0); /* every reference was dropped */
    pktbuf_free(&out);
    pktbuf_free(&msg);
}

static void mk_parse(const char *name, const char *query)
{
    pktbuf_reset(&msg);
    pktbuf_start(&msg, 'P');
    pktbuf_put_string(&msg, name);
    pktbuf_put_string(&msg, query);
    pktbuf_put_int16(&msg, 0);
    pktbuf_finish(&msg);
}

static void mk_bind(const char *name)
{
    pktbuf_reset(&msg);
    pktbuf_start(&msg, 'B');
    pktbuf_put_string(&msg, "");
    pktbuf_put_string(&msg, name);
    pktbuf_put_int16(&msg, 0);
    pktbuf_put_int16(&msg, 0);
    pktbuf_put_int16(&msg, 0);
    pktbuf_finish(&msg);
}

static void mk_named(char type, char kind, const char *name)
{
    pktbuf_reset(&msg);
    pktbuf_start(&msg, type);
    pktbuf_put_byte(&msg, (uint8_t)kind);
    pktbuf_put_string(&msg, name);
    pktbuf_finish(&msg);
}

static enum ps_verdict feed(struct client *c, struct server *s, uint32_t *consumed)
{
    pktbuf_reset(&out);
    return prepared_client_msg(c, s, msg.data, (uint32_t)msg.len, &out, consumed);
}

/* The i-th message in out: its type, and its first string (after a kind byte for C/D). */
static char out_msg(int i, char *name, size_t nlen)
{
    size_t pos = 0;
    for (; i > 0; i--)
        pos += 1 + pkt_get32(out.data + pos + 1);
    ck_assert_uint_lt(pos, out.len);
    char type = (char)out.data[pos];
    const char *str = (const char *)out.data + pos + 5;
    if (type == 'C' || type == 'D')
        str++;
    else if (type == 'B')
        str += strlen(str) + 1; /* the portal */
    snprintf(name, nlen, "%s", str);
    return type;
}

static int out_count(void)
{
    int n = 0;
    for (size_t pos = 0; pos < out.len; pos += 1 + pkt_get32(out.data + pos + 1))
        n++;
    return n;
}

static void respond(struct server *s, char type, enum ps_response want)
{
    ck_assert_int_eq(prepared_server_msg(s, (uint8_t)type, NULL, 0), want);
}

START_TEST(named_parse_gets_pooler_name_and_goes_to_server)
{
    uint32_t consumed = 0;
    char name[64];
    mk_parse("s1", "SELECT 1");
    ck_assert_int_eq(feed(&c1, &s1, &consumed), PS_REWRITE);
    ck_assert_uint_eq(consumed, msg.len);
    ck_assert_int_eq(out_count(), 1);
    ck_assert_int_eq(out_msg(0, name, sizeof(name)), 'P');
    ck_assert(strncmp(name, "PGUSHER_", 8) == 0);
    ck_assert_int_eq(prepared_client_count(&c1), 1);
    ck_assert_int_eq(prepared_server_count(&s1), 1);
    ck_assert_uint_eq(pool.stats.client_parse_count, 1);
    ck_assert_uint_eq(pool.stats.server_parse_count, 1);
    respond(&s1, '1', PS_FORWARD); /* the client's own ParseComplete */
    ck_assert(prepared_server_quiet(&s1));
}
END_TEST

START_TEST(same_text_is_shared_and_answered_by_the_pooler)
{
    uint32_t consumed;
    mk_parse("a", "SELECT 42");
    ck_assert_int_eq(feed(&c1, &s1, &consumed), PS_REWRITE);
    respond(&s1, '1', PS_FORWARD);
    s1.link = &c2;
    mk_parse("b", "SELECT 42");
    ck_assert_int_eq(feed(&c2, &s1, &consumed), PS_REWRITE);
    ck_assert_uint_eq(out.len, 0); /* nothing for the server */
    ck_assert_int_eq(prepared_stmt_count(), 1);
    pktbuf_reset(&out);
    ck_assert(prepared_take_synth(&s1, &out));
    ck_assert_uint_eq(out.len, 5);
    ck_assert_int_eq(out.data[0], '1');
    ck_assert(prepared_server_quiet(&s1));
    ck_assert_uint_eq(pool.stats.client_parse_count, 2);
    ck_assert_uint_eq(pool.stats.server_parse_count, 1);
}
END_TEST

START_TEST(bind_on_a_fresh_server_injects_the_parse_and_swallows_its_answer)
{
    uint32_t consumed;
    char name[64], pname[64];
    mk_parse("s", "SELECT 'x'");
    feed(&c1, &s1, &consumed);
    out_msg(0, pname, sizeof(pname));
    respond(&s1, '1', PS_FORWARD);
    s2.link = &c1;
    mk_bind("s");
    ck_assert_int_eq(feed(&c1, &s2, &consumed), PS_REWRITE);
    ck_assert_uint_eq(consumed, 5 + 1 + 2); /* the head: portal "" and name "s" */
    ck_assert_int_eq(out_count(), 2);
    ck_assert_int_eq(out_msg(0, name, sizeof(name)), 'P');
    ck_assert_str_eq(name, pname);
    ck_assert_int_eq(out_msg(1, name, sizeof(name)), 'B');
    ck_assert_str_eq(name, pname);
    /* The rewritten Bind's length covers the new name and the rest still to stream. */
    size_t bpos = 1 + pkt_get32(out.data + 1);
    uint32_t blen = pkt_get32(out.data + bpos + 1);
    ck_assert_uint_eq(blen, (uint32_t)(msg.len - 1) - 1 + strlen(pname));
    ck_assert_uint_eq(out.len - bpos + (msg.len - consumed), blen + 1);
    respond(&s2, '1', PS_SWALLOW);
    respond(&s2, '2', PS_FORWARD);
    ck_assert(prepared_server_quiet(&s2));
    ck_assert_uint_eq(pool.stats.bind_count, 1);
    ck_assert_uint_eq(pool.stats.server_parse_count, 2);
}
END_TEST

START_TEST(unknown_and_unnamed_pass_unchanged)
{
    uint32_t consumed;
    mk_bind("nosuch");
    ck_assert_int_eq(feed(&c1, &s1, &consumed), PS_PASS);
    mk_parse("", "SELECT 1");
    ck_assert_int_eq(feed(&c1, &s1, &consumed), PS_PASS);
    mk_named('D', 'S', "nosuch");
    ck_assert_int_eq(feed(&c1, &s1, &consumed), PS_PASS);
    mk_named('C', 'P', "");
    ck_assert_int_eq(feed(&c1, &s1, &consumed), PS_PASS);
    ck_assert_uint_eq(out.len, 0);
    respond(&s1, 'E', PS_FORWARD); /* the Bind fails: everything up to Sync is skipped */
    ck_assert(prepared_server_quiet(&s1));
    ck_assert_uint_eq(pool.stats.client_parse_count, 0);
    ck_assert_uint_eq(pool.stats.bind_count, 0);
}
END_TEST

START_TEST(lru_past_max_closes_the_least_recently_used)
{
    uint32_t consumed;
    char name[64], first[64];
    mk_parse("a", "SELECT 'a'");
    feed(&c1, &s1, &consumed);
    out_msg(0, first, sizeof(first));
    mk_parse("b", "SELECT 'b'");
    feed(&c1, &s1, &consumed);
    mk_bind("a"); /* a is now the most recently used */
    feed(&c1, &s1, &consumed);
    mk_parse("c", "SELECT 'c'");
    ck_assert_int_eq(feed(&c1, &s1, &consumed), PS_REWRITE);
    ck_assert_int_eq(out_count(), 2);
    ck_assert_int_eq(out_msg(0, name, sizeof(name)), 'C');
    ck_assert_str_ne(name, first); /* b went, not a */
    ck_assert_int_eq(out_msg(1, name, sizeof(name)), 'P');
    ck_assert_int_eq(prepared_server_count(&s1), 2);
    respond(&s1, '1', PS_FORWARD);
    respond(&s1, '1', PS_FORWARD);
    respond(&s1, '2', PS_FORWARD);
    respond(&s1, '3', PS_SWALLOW); /* the eviction's CloseComplete */
    respond(&s1, '1', PS_FORWARD);
    ck_assert(prepared_server_quiet(&s1));
    /* b is still the client's: a Bind prepares it again (evicting the LRU one). */
    mk_bind("b");
    ck_assert_int_eq(feed(&c1, &s1, &consumed), PS_REWRITE);
    ck_assert_int_eq(out_count(), 3);
    ck_assert_int_eq(out_msg(0, name, sizeof(name)), 'C');
    ck_assert_int_eq(out_msg(1, name, sizeof(name)), 'P');
    ck_assert_int_eq(out_msg(2, name, sizeof(name)), 'B');
}
END_TEST

START_TEST(an_error_skips_to_sync_and_undoes_what_skipped_requests_recorded)
{
    uint32_t consumed;
    cf.g.max_prepared_statements = 10;
    mk_parse("ok", "SELECT 1");
    feed(&c1, &s1, &consumed);
    mk_parse("bad", "SELEC 1");
    feed(&c1, &s1, &consumed);
    mk_parse("later", "SELECT 2");
    feed(&c1, &s1, &consumed);
    prepared_client_note(&s1, 'S');
    ck_assert_int_eq(prepared_client_count(&c1), 3);
    respond(&s1, '1', PS_FORWARD);
    respond(&s1, 'E', PS_FORWARD); /* bad fails; later is skipped */
    respond(&s1, 'Z', PS_FORWARD);
    ck_assert(prepared_server_quiet(&s1));
    ck_assert_int_eq(prepared_client_count(&c1), 1);
    ck_assert_int_eq(prepared_server_count(&s1), 1);
    ck_assert(!s1.close_needed);
    /* The failed name is free again. */
    mk_parse("bad", "SELECT 3");
    ck_assert_int_eq(feed(&c1, &s1, &consumed), PS_REWRITE);
}
END_TEST

START_TEST(a_skipped_eviction_marks_the_server_for_replacement)
{
    uint32_t consumed;
    cf.g.max_prepared_statements = 1;
    mk_parse("a", "SELECT 'a'");
    feed(&c1, &s1, &consumed);
    prepared_client_note(&s1, 'S');
    respond(&s1, '1', PS_FORWARD);
    respond(&s1, 'Z', PS_FORWARD);
    mk_bind("nosuch"); /* fails */
    feed(&c1, &s1, &consumed);
    mk_parse("b", "SELECT 'b'"); /* evicts a: its Close is skipped */
    feed(&c1, &s1, &consumed);
    prepared_client_note(&s1, 'S');
    respond(&s1, 'E', PS_FORWARD);
    respond(&s1, 'Z', PS_FORWARD);
    ck_assert(s1.close_needed);
    ck_assert(prepared_server_quiet(&s1));
}
END_TEST

START_TEST(duplicate_name_is_refused_as_pgbouncer_does)
{
    uint32_t consumed;
    mk_parse("x", "SELECT 1");
    feed(&c1, &s1, &consumed);
    ck_assert_int_eq(feed(&c1, &s1, &consumed), PS_FAIL);
    ck_assert_str_eq(prepared_error(), "prepared statement name is already in use");
}
END_TEST

START_TEST(close_is_answered_by_the_pooler_in_order)
{
    uint32_t consumed;
    mk_parse("x", "SELECT 1");
    feed(&c1, &s1, &consumed);
    mk_named('C', 'S', "x");
    ck_assert_int_eq(feed(&c1, &s1, &consumed), PS_REWRITE);
    ck_assert_uint_eq(out.len, 0);
    ck_assert_int_eq(prepared_client_count(&c1), 0);
    ck_assert_int_eq(prepared_server_count(&s1), 1); /* kept for others */
    pktbuf_reset(&out);
    ck_assert(!prepared_take_synth(&s1, &out)); /* not before the ParseComplete */
    respond(&s1, '1', PS_FORWARD);
    ck_assert(prepared_take_synth(&s1, &out));
    ck_assert_int_eq(out.data[0], '3');
}
END_TEST

START_TEST(describe_is_rewritten)
{
    uint32_t consumed;
    char name[64];
    mk_parse("x", "SELECT 1");
    feed(&c1, &s1, &consumed);
    mk_named('D', 'S', "x");
    ck_assert_int_eq(feed(&c1, &s1, &consumed), PS_REWRITE);
    ck_assert_uint_eq(consumed, msg.len);
    ck_assert_int_eq(out_msg(0, name, sizeof(name)), 'D');
    ck_assert(strncmp(name, "PGUSHER_", 8) == 0);
    respond(&s1, '1', PS_FORWARD);
    respond(&s1, 't', PS_FORWARD);
    ck_assert(!prepared_server_quiet(&s1));
    respond(&s1, 'T', PS_FORWARD);
    ck_assert(prepared_server_quiet(&s1));
}
END_TEST

START_TEST(incomplete_heads_wait_and_big_parses_are_collected)
{
    uint32_t consumed;
    mk_bind("s");
    pktbuf_reset(&out);
    ck_assert_int_eq(prepared_client_msg(&c1, &s1, msg.data, 6, &out, &consumed), PS_MORE);
    static char huge[5000];
    memset(huge, 'n', sizeof(huge) - 1);
    mk_bind(huge); /* its name alone fills the buffer: collected */
    ck_assert_int_eq(prepared_client_msg(&c1, &s1, msg.data, 4095, &out, &consumed), PS_COLLECT);
    mk_named('D', 'S', huge);
    ck_assert_int_eq(prepared_client_msg(&c1, &s1, msg.data, 100, &out, &consumed), PS_COLLECT);
    char big[6000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    mk_parse("big", big);
    ck_assert_int_eq(prepared_client_msg(&c1, &s1, msg.data, 100, &out, &consumed), PS_COLLECT);
    ck_assert(prepared_collect_start(&c1, (uint32_t)msg.len));
    uint32_t len = 0;
    ck_assert_ptr_null(prepared_collect(&c1, msg.data, 1000, &len));
    ck_assert_uint_eq(prepared_collect_need(&c1), msg.len - 1000);
    const uint8_t *m = prepared_collect(&c1, msg.data + 1000, (uint32_t)msg.len, &len);
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(len, msg.len);
    ck_assert_int_eq(prepared_client_msg(&c1, &s1, m, len, &out, &consumed), PS_REWRITE);
    prepared_collect_done(&c1);
    ck_assert_uint_eq(prepared_collect_need(&c1), 0);
    ck_assert_int_eq(prepared_client_count(&c1), 1);
}
END_TEST

START_TEST(discard_all_forgets_both_sides)
{
    uint32_t consumed;
    mk_parse("x", "SELECT 1");
    feed(&c1, &s1, &consumed);
    respond(&s1, '1', PS_FORWARD);
    prepared_client_note(&s1, 'Q');
    static const char tag[] = "DISCARD ALL";
    ck_assert(prepared_wipes_all((const uint8_t *)tag, sizeof(tag)));
    ck_assert(!prepared_wipes_all((const uint8_t *)"DISCARD PLANS", 14));
    ck_assert_int_eq(prepared_server_msg(&s1, 'C', (const uint8_t *)tag, sizeof(tag)), PS_FORWARD);
    ck_assert_int_eq(prepared_client_count(&c1), 0);
    ck_assert_int_eq(prepared_server_count(&s1), 0);
    respond(&s1, 'Z', PS_FORWARD);
    ck_assert(prepared_server_quiet(&s1));
}
END_TEST

START_TEST(many_names_grow_the_tables_and_stay_findable)
{
    uint32_t consumed;
    char name[32], query[64], got[64];
    cf.g.max_prepared_statements = 50;
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof(name), "n%d", i);
        snprintf(query, sizeof(query), "SELECT %d", i % 300); /* 300 texts, shared */
        mk_parse(name, query);
        ck_assert_int_eq(feed(&c1, &s1, &consumed), PS_REWRITE);
        prepared_client_note(&s1, 'S');
        bool sent = out.len > 0 && out_msg(out_count() - 1, got, sizeof(got)) == 'P';
        for (int k = 0; k < out_count() - 1; k++)
            respond(&s1, '3', PS_SWALLOW); /* evictions come first */
        if (sent)
            respond(&s1, '1', PS_FORWARD);
        else
            ck_assert(prepared_take_synth(&s1, &out));
        respond(&s1, 'Z', PS_FORWARD);
        ck_assert(prepared_server_quiet(&s1));
    }
    ck_assert_int_eq(prepared_client_count(&c1), 1000);
    ck_assert_int_eq(prepared_stmt_count(), 300);
    ck_assert_int_le(prepared_server_count(&s1), 50);
    /* Every name still binds to its own text's pooler name. */
    char first[64];
    mk_bind("n7");
    feed(&c1, &s1, &consumed);
    out_msg(out_count() - 1, first, sizeof(first));
    prepared_server_unlinked(&s1);
    mk_bind("n307"); /* the same text as n7 */
    feed(&c1, &s1, &consumed);
    out_msg(out_count() - 1, got, sizeof(got));
    ck_assert_str_eq(got, first);
    prepared_server_unlinked(&s1);
}
END_TEST

static Suite *prepared_suite(void)
{
    Suite *s = suite_create("prepared");
    TCase *tc = tcase_create("prepared");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, named_parse_gets_pooler_name_and_goes_to_server);
    tcase_add_test(tc, same_text_is_shared_and_answered_by_the_pooler);
    tcase_add_test(tc, bind_on_a_fresh_server_injects_the_parse_and_swallows_its_answer);
    tcase_add_test(tc, unknown_and_unnamed_pass_unchanged);
    tcase_add_test(tc, lru_past_max_closes_the_least_recently_used);
    tcase_add_test(tc, an_error_skips_to_sync_and_undoes_what_skipped_requests_recorded);
    tcase_add_test(tc, a_skipped_eviction_marks_the_server_for_replacement);
    tcase_add_test(tc, duplicate_name_is_refused_as_pgbouncer_does);
    tcase_add_test(tc, close_is_answered_by_the_pooler_in_order);
    tcase_add_test(tc, describe_is_rewritten);
    tcase_add_test(tc, incomplete_heads_wait_and_big_parses_are_collected);
    tcase_add_test(tc, discard_all_forgets_both_sides);
    tcase_add_test(tc, many_names_grow_the_tables_and_stay_findable);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(prepared_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
