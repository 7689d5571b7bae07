/*
 * test_proto.c: pins proto.c: the startup packet, ErrorResponse parsing, server_require_auth
 * lists, and the login state machine on every path (trust, cleartext, md5, SCRAM with a
 * password or pass-through keys) including what a hostile server tries: AuthenticationOk
 * before SASLFinal, a bad signature, a method the configuration excludes, a huge iteration
 * count, a second AuthenticationSASL, floods of ParameterStatus or messages. The SCRAM
 * server side is scram.c's own (the pooler's client-authentication code).
 */
#include "pgusher/proto.h"
#include "pgusher/scram.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define USER "alice"
#define PASSWORD "s3cret"

/* ---------------------------------------------------------------- message bodies */

struct body {
    uint8_t b[70000];
    uint32_t len;
};

static void put32(struct body *m, uint32_t v)
{
    m->b[m->len++] = (uint8_t)(v >> 24);
    m->b[m->len++] = (uint8_t)(v >> 16);
    m->b[m->len++] = (uint8_t)(v >> 8);
    m->b[m->len++] = (uint8_t)v;
}

static void putn(struct body *m, const void *p, size_t n)
{
    memcpy(m->b + m->len, p, n);
    m->len += (uint32_t)n;
}

static void puts0(struct body *m, const char *s)
{
    putn(m, s, strlen(s) + 1);
}

static struct body auth(uint32_t code, const void *extra, size_t n)
{
    struct body m = {.len = 0};
    put32(&m, code);
    if (extra)
        putn(&m, extra, n);
    return m;
}

static struct body param(const char *k, const char *v)
{
    struct body m = {.len = 0};
    puts0(&m, k);
    puts0(&m, v);
    return m;
}

static enum proto_login_step feed(struct proto_login *lg, uint8_t type, struct body m)
{
    return proto_login_feed(lg, type, m.b, m.len);
}

static enum proto_login_step feed_auth(struct proto_login *lg, uint32_t code, const char *extra)
{
    return feed(lg, 'R', auth(code, extra, extra ? strlen(extra) : 0));
}

static void start(struct proto_login *lg, const char *password, unsigned allowed)
{
    ck_assert(proto_login_init(lg, USER, password, NULL, NULL, allowed));
}

static void assert_failed(struct proto_login *lg, enum proto_login_step step, enum proto_fail kind,
                          const char *msg_part)
{
    ck_assert_int_eq(step, PROTO_LOGIN_FAILED);
    ck_assert_int_eq(lg->fail, kind);
    ck_assert_msg(strstr(lg->fail_msg, msg_part), "message \"%s\" lacks \"%s\"", lg->fail_msg,
                  msg_part);
    ck_assert_uint_eq(lg->reply.len, 0); /* nothing to send */
    /* Failed stays failed. */
    ck_assert_int_eq(feed(lg, 'Z', (struct body){.b = {'I'}, .len = 1}), PROTO_LOGIN_FAILED);
}

/* After AuthenticationOk: a parameter, the key, ReadyForQuery. */
static void finish_login(struct proto_login *lg)
{
    ck_assert_int_eq(feed(lg, 'S', param("in_hot_standby", "off")), PROTO_LOGIN_PARAM);
    ck_assert_str_eq(lg->param_name, "in_hot_standby");
    ck_assert_str_eq(lg->param_value, "off");
    struct body k = {.len = 0};
    put32(&k, 4242);
    put32(&k, 0xdeadbeef);
    ck_assert_int_eq(feed(lg, 'K', k), PROTO_LOGIN_CONTINUE);
    ck_assert_int_eq(feed(lg, 'Z', (struct body){.b = {'I'}, .len = 1}), PROTO_LOGIN_READY);
    ck_assert(lg->have_key);
    ck_assert_uint_eq(lg->be_pid, 4242);
    ck_assert_uint_eq(lg->be_key, 0xdeadbeef);
}

/* The reply as (type, body). */
static const uint8_t *reply_body(struct proto_login *lg, uint32_t *len)
{
    ck_assert_uint_ge(lg->reply.len, 5);
    ck_assert_int_eq(lg->reply.data[0], 'p');
    uint32_t l = pkt_get32(lg->reply.data + 1);
    ck_assert_uint_eq(l + 1, lg->reply.len);
    *len = l - 4;
    return lg->reply.data + 5;
}

/* ---------------------------------------------------------------- a SCRAM server */

struct fake_scram {
    struct scram_server srv;
    char *server_first;
    char *server_final;
};

static void fake_init(struct fake_scram *f, int iterations)
{
    static const uint8_t salt[16] = "0123456789abcdef";
    memset(f, 0, sizeof(*f));
    ck_assert(scram_secret_from_password(PASSWORD, salt, sizeof(salt), iterations, &f->srv.secret));
}

static void fake_free(struct fake_scram *f)
{
    free(f->server_first);
    free(f->server_final);
    scram_server_reset(&f->srv);
}

/* Run AuthenticationSASL: check the SASLInitialResponse and compute server-first. */
static void sasl_begin(struct proto_login *lg, struct fake_scram *f)
{
    static const char mechs[] = "SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0";
    ck_assert_int_eq(feed(lg, 'R', auth(PROTO_AUTH_SASL, mechs, sizeof(mechs))), PROTO_LOGIN_REPLY);
    uint32_t len;
    const uint8_t *b = reply_body(lg, &len);
    ck_assert_str_eq((const char *)b, "SCRAM-SHA-256");
    uint32_t n = pkt_get32(b + 14);
    ck_assert_uint_eq(n + 18, len);
    ck_assert(scram_server_first(&f->srv, (const char *)b + 18, n, &f->server_first));
}

/* SASLContinue with server-first; check the SASLResponse and compute server-final. */
static void sasl_continue(struct proto_login *lg, struct fake_scram *f)
{
    ck_assert_int_eq(feed_auth(lg, PROTO_AUTH_SASL_CONTINUE, f->server_first), PROTO_LOGIN_REPLY);
    uint32_t len;
    const uint8_t *b = reply_body(lg, &len);
    ck_assert(scram_server_final(&f->srv, (const char *)b, len, &f->server_final));
}

/* ---------------------------------------------------------------- messages */

START_TEST(startup_packet_has_version_and_given_pairs_only)
{
    const char *const params[][2] = {{"user", "u"}, {"timezone", NULL}, {"database", "d"}};
    struct pktbuf b;
    pktbuf_init(&b);
    proto_startup(&b, params, 3);
    static const uint8_t want[] = {0, 0,   0,   27,  0,   3,   0,   0,   'u', 's', 'e', 'r', 0, 'u',
                                   0, 'd', 'a', 't', 'a', 'b', 'a', 's', 'e', 0,   'd', 0,   0};
    ck_assert_uint_eq(b.len, sizeof(want));
    ck_assert_mem_eq(b.data, want, sizeof(want));
    pktbuf_reset(&b);
    proto_request(&b, PROTO_SSL_REQUEST_CODE);
    static const uint8_t ssl[] = {0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f};
    ck_assert_uint_eq(b.len, 8);
    ck_assert_mem_eq(b.data, ssl, 8);
    pktbuf_free(&b);
}
END_TEST

START_TEST(cancel_request_is_length_code_pid_key_big_endian)
{
    uint8_t pkt[PROTO_CANCEL_LEN];
    proto_pack_cancel(pkt, 0x01020304u, 0xa0b0c0d0u);
    static const uint8_t want[] = {0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e,
                                   1, 2, 3, 4,  0xa0, 0xb0, 0xc0, 0xd0};
    ck_assert_mem_eq(pkt, want, sizeof(want));
}
END_TEST

static int startup_pairs(const char *bytes, size_t len, int *npairs)
{
    struct pktreader r;
    const char *k, *v;
    int got;
    pktreader_init(&r, (const uint8_t *)bytes, (uint32_t)len);
    *npairs = 0;
    while ((got = proto_startup_next(&r, &k, &v)) > 0)
        (*npairs)++;
    return got;
}

START_TEST(client_startup_pairs_need_a_final_terminator_and_nothing_after_it)
{
    int n;
    static const char ok[] = "user\0alice\0database\0app\0";
    ck_assert_int_eq(startup_pairs(ok, sizeof ok, &n), 0); /* sizeof counts the final NUL */
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(startup_pairs(ok, sizeof ok - 1, &n), -1); /* no terminator */
    static const char trailing[] = "user\0alice\0\0junk";
    ck_assert_int_eq(startup_pairs(trailing, sizeof trailing - 1, &n), -1);
    static const char novalue[] = "user\0alice\0database";
    ck_assert_int_eq(startup_pairs(novalue, sizeof novalue - 1, &n), -1);
    ck_assert_int_eq(startup_pairs("", 0, &n), -1);
    ck_assert_int_eq(startup_pairs("", 1, &n), 0);
    ck_assert_int_eq(n, 0);
}
END_TEST

START_TEST(error_fields_are_parsed_with_defaults)
{
    static const char body[] = "SERREUR\0VERROR\0C28P01\0Mpassword authentication failed\0\0";
    struct proto_error e;
    proto_parse_error((const uint8_t *)body, sizeof(body) - 1, &e);
    ck_assert_str_eq(e.severity, "ERROR"); /* V wins over the localized S */
    ck_assert_str_eq(e.sqlstate, "28P01");
    ck_assert_str_eq(e.message, "password authentication failed");
    proto_parse_error((const uint8_t *)"", 0, &e);
    ck_assert_str_eq(e.sqlstate, "08P01");
    ck_assert_str_eq(e.message, "unknown error");
}
END_TEST

START_TEST(error_parsing_survives_hostile_bodies)
{
    struct proto_error e;
    /* Unterminated field: what came before it counts, nothing past the end is read. */
    static const char cut[] = {'C', '5', '7', 'P', '0', '3', 0, 'M', 'n', 'o', ' ', 'e', 'n', 'd'};
    proto_parse_error((const uint8_t *)cut, sizeof(cut), &e);
    ck_assert_str_eq(e.sqlstate, "57P03");
    ck_assert_str_eq(e.message, "unknown error");
    /* A sqlstate that is not five digits/capitals is ignored; control characters in the
     * message (log forging) are blanked; overlong text is cut. */
    static const char odd[] = "C28\0Mline1\nFAKE LOG LINE\0";
    proto_parse_error((const uint8_t *)odd, sizeof(odd), &e);
    ck_assert_str_eq(e.sqlstate, "08P01");
    ck_assert_str_eq(e.message, "line1 FAKE LOG LINE");
    struct body big = {.len = 0};
    big.b[big.len++] = 'M';
    memset(big.b + big.len, 'x', 5000);
    big.len += 5000;
    big.b[big.len++] = 0;
    proto_parse_error(big.b, big.len, &e);
    ck_assert_uint_eq(strlen(e.message), sizeof(e.message) - 1);
}
END_TEST

START_TEST(auth_refusal_sqlstates)
{
    ck_assert(proto_sqlstate_is_auth_refusal("28P01"));
    ck_assert(proto_sqlstate_is_auth_refusal("28000"));
    ck_assert(proto_sqlstate_is_auth_refusal("3D000"));
    ck_assert(proto_sqlstate_is_auth_refusal("42501"));
    ck_assert(!proto_sqlstate_is_auth_refusal("57P03"));
    ck_assert(!proto_sqlstate_is_auth_refusal("53300"));
}
END_TEST

/* ---------------------------------------------------------------- require_auth lists */

START_TEST(require_auth_lists_parse_like_libpq)
{
    static const struct {
        const char *text;
        unsigned mask;
    } ok[] = {
        {"", PROTO_METHODS_ALL},
        {"scram-sha-256", PROTO_METHOD_SCRAM},
        {"SCRAM-SHA-256, none", PROTO_METHOD_SCRAM | PROTO_METHOD_NONE},
        {"password,md5", PROTO_METHOD_PASSWORD | PROTO_METHOD_MD5},
        {"!password", PROTO_METHODS_ALL & ~PROTO_METHOD_PASSWORD},
        {"!password,!md5,!none",
         PROTO_METHODS_ALL & ~(PROTO_METHOD_PASSWORD | PROTO_METHOD_MD5 | PROTO_METHOD_NONE)},
        {"gss,sspi,oauth", PROTO_METHOD_GSS | PROTO_METHOD_SSPI | PROTO_METHOD_OAUTH},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        unsigned m = 0;
        char err[200];
        ck_assert_msg(proto_require_auth_parse(ok[i].text, &m, err, sizeof(err)), "%s: %s",
                      ok[i].text, err);
        ck_assert_uint_eq(m, ok[i].mask);
    }
}
END_TEST

START_TEST(require_auth_bad_lists_are_refused)
{
    static const struct {
        const char *text, *why;
    } bad[] = {
        {"scram-sha-256,!md5", "cannot be mixed"},
        {"!md5,password", "cannot be mixed"},
        {"md5,md5", "more than once"},
        {"!none,!none", "more than once"},
        {"kerberos", "unknown method \"kerberos\""},
        {"md5,,password", "empty method"},
        {"!", "empty method"},
        {",", "empty method"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        unsigned m = 12345;
        char err[200] = "";
        ck_assert_msg(!proto_require_auth_parse(bad[i].text, &m, err, sizeof(err)), "%s",
                      bad[i].text);
        ck_assert_msg(strstr(err, bad[i].why), "%s: %s", bad[i].text, err);
        ck_assert_uint_eq(m, 12345);
    }
}
END_TEST

/* ---------------------------------------------------------------- login paths */

START_TEST(trust_login_reports_params_and_key)
{
    struct proto_login lg;
    start(&lg, NULL, PROTO_METHODS_ALL);
    ck_assert_int_eq(feed_auth(&lg, PROTO_AUTH_OK, NULL), PROTO_LOGIN_CONTINUE);
    ck_assert_int_eq(feed(&lg, 'N', (struct body){.len = 0}), PROTO_LOGIN_CONTINUE);
    finish_login(&lg);
    proto_login_reset(&lg);
}
END_TEST

START_TEST(cleartext_sends_the_password)
{
    struct proto_login lg;
    start(&lg, PASSWORD, PROTO_METHODS_ALL);
    ck_assert_int_eq(feed_auth(&lg, PROTO_AUTH_CLEARTEXT, NULL), PROTO_LOGIN_REPLY);
    uint32_t len;
    const uint8_t *b = reply_body(&lg, &len);
    ck_assert_uint_eq(len, sizeof(PASSWORD));
    ck_assert_mem_eq(b, PASSWORD, sizeof(PASSWORD));
    ck_assert_int_eq(feed_auth(&lg, PROTO_AUTH_OK, NULL), PROTO_LOGIN_CONTINUE);
    finish_login(&lg);
    proto_login_reset(&lg);
}
END_TEST

START_TEST(cleartext_needs_a_plain_password)
{
    struct proto_login lg;
    char md5[MD5_PASSWD_LEN + 1];
    pg_md5_encrypt(PASSWORD, USER, md5);
    start(&lg, md5, PROTO_METHODS_ALL);
    assert_failed(&lg, feed_auth(&lg, PROTO_AUTH_CLEARTEXT, NULL), PROTO_FAIL_NO_METHOD,
                  "without a plain password");
    ck_assert(proto_login_failed_auth(&lg));
    proto_login_reset(&lg);
}
END_TEST

START_TEST(md5_sends_the_salted_hash_from_plain_or_md5_secret)
{
    static const uint8_t salt[4] = {1, 2, 3, 4};
    char want[MD5_PASSWD_LEN + 1], md5[MD5_PASSWD_LEN + 1];
    pg_md5_response(PASSWORD, USER, salt, want);
    pg_md5_encrypt(PASSWORD, USER, md5);
    const char *secrets[] = {PASSWORD, md5};
    for (int i = 0; i < 2; i++) {
        struct proto_login lg;
        start(&lg, secrets[i], PROTO_METHODS_ALL);
        ck_assert_int_eq(feed(&lg, 'R', auth(PROTO_AUTH_MD5, salt, 4)), PROTO_LOGIN_REPLY);
        uint32_t len;
        const uint8_t *b = reply_body(&lg, &len);
        ck_assert_uint_eq(len, MD5_PASSWD_LEN + 1);
        ck_assert_str_eq((const char *)b, want);
        ck_assert_int_eq(feed_auth(&lg, PROTO_AUTH_OK, NULL), PROTO_LOGIN_CONTINUE);
        finish_login(&lg);
        proto_login_reset(&lg);
    }
}
END_TEST

START_TEST(md5_request_without_salt_fails)
{
    struct proto_login lg;
    start(&lg, PASSWORD, PROTO_METHODS_ALL);
    assert_failed(&lg, feed(&lg, 'R', auth(PROTO_AUTH_MD5, "ab", 2)), PROTO_FAIL_PROTOCOL,
                  "malformed");
    proto_login_reset(&lg);
}
END_TEST

START_TEST(scram_with_password_logs_in_after_verified_signature)
{
    struct proto_login lg;
    struct fake_scram f;
    fake_init(&f, 4096);
    start(&lg, PASSWORD, PROTO_METHODS_ALL);
    sasl_begin(&lg, &f);
    sasl_continue(&lg, &f);
    ck_assert_int_eq(feed_auth(&lg, PROTO_AUTH_SASL_FINAL, f.server_final), PROTO_LOGIN_CONTINUE);
    ck_assert_int_eq(lg.phase, PROTO_PHASE_SASL_VERIFIED);
    ck_assert_int_eq(feed_auth(&lg, PROTO_AUTH_OK, NULL), PROTO_LOGIN_CONTINUE);
    finish_login(&lg);
    proto_login_reset(&lg);
    fake_free(&f);
}
END_TEST

START_TEST(scram_pass_through_keys_log_in_without_password)
{
    /* A first exchange recovers ClientKey on the server side, as client.c does. */
    struct proto_login lg;
    struct fake_scram f;
    fake_init(&f, 4096);
    start(&lg, PASSWORD, PROTO_METHODS_ALL);
    sasl_begin(&lg, &f);
    sasl_continue(&lg, &f);
    uint8_t ck[SCRAM_KEY_LEN], sk[SCRAM_KEY_LEN];
    memcpy(ck, f.srv.client_key, SCRAM_KEY_LEN);
    memcpy(sk, f.srv.secret.server_key, SCRAM_KEY_LEN);
    proto_login_reset(&lg);
    fake_free(&f);

    fake_init(&f, 4096);
    char md5[MD5_PASSWD_LEN + 1];
    pg_md5_encrypt(PASSWORD, USER, md5); /* not a plain password: the keys are used */
    ck_assert(proto_login_init(&lg, USER, md5, ck, sk, PROTO_METHODS_ALL));
    sasl_begin(&lg, &f);
    sasl_continue(&lg, &f);
    ck_assert_int_eq(feed_auth(&lg, PROTO_AUTH_SASL_FINAL, f.server_final), PROTO_LOGIN_CONTINUE);
    ck_assert_int_eq(feed_auth(&lg, PROTO_AUTH_OK, NULL), PROTO_LOGIN_CONTINUE);
    finish_login(&lg);
    proto_login_reset(&lg);
    fake_free(&f);
}
END_TEST

START_TEST(scram_without_password_or_keys_fails_before_sending)
{
    struct proto_login lg;
    start(&lg, NULL, PROTO_METHODS_ALL);
    static const char mechs[] = "SCRAM-SHA-256\0";
    assert_failed(&lg, feed(&lg, 'R', auth(PROTO_AUTH_SASL, mechs, sizeof(mechs))),
                  PROTO_FAIL_NO_METHOD, "no plain password");
    proto_login_reset(&lg);
}
END_TEST

START_TEST(sasl_without_scram_sha_256_or_malformed_list_fails)
{
    struct proto_login lg;
    start(&lg, PASSWORD, PROTO_METHODS_ALL);
    static const char plus[] = "SCRAM-SHA-256-PLUS\0";
    assert_failed(&lg, feed(&lg, 'R', auth(PROTO_AUTH_SASL, plus, sizeof(plus))),
                  PROTO_FAIL_NO_METHOD, "no supported SASL mechanism");
    proto_login_reset(&lg);
    start(&lg, PASSWORD, PROTO_METHODS_ALL);
    static const char cut[] = {'S', 'C', 'R', 'A', 'M', '-', 'S', 'H', 'A', '-', '2', '5', '6'};
    assert_failed(&lg, feed(&lg, 'R', auth(PROTO_AUTH_SASL, cut, sizeof(cut))), PROTO_FAIL_PROTOCOL,
                  "malformed SASL mechanism list");
    proto_login_reset(&lg);
}
END_TEST

/* ---------------------------------------------------------------- hostile servers */

START_TEST(ok_right_after_sasl_start_is_refused)
{
    struct proto_login lg;
    struct fake_scram f;
    fake_init(&f, 4096);
    start(&lg, PASSWORD, PROTO_METHODS_ALL);
    sasl_begin(&lg, &f);
    assert_failed(&lg, feed_auth(&lg, PROTO_AUTH_OK, NULL), PROTO_FAIL_PROTOCOL,
                  "AuthenticationOk before completing SCRAM");
    ck_assert(proto_login_failed_auth(&lg));
    proto_login_reset(&lg);
    fake_free(&f);
}
END_TEST

START_TEST(ok_instead_of_sasl_final_is_refused)
{
    struct proto_login lg;
    struct fake_scram f;
    fake_init(&f, 4096);
    start(&lg, PASSWORD, PROTO_METHODS_ALL);
    sasl_begin(&lg, &f);
    sasl_continue(&lg, &f);
    assert_failed(&lg, feed_auth(&lg, PROTO_AUTH_OK, NULL), PROTO_FAIL_PROTOCOL,
                  "signature was not verified");
    proto_login_reset(&lg);
    fake_free(&f);
}
END_TEST

START_TEST(bad_server_signature_is_refused)
{
    struct proto_login lg;
    struct fake_scram f;
    fake_init(&f, 4096);
    start(&lg, PASSWORD, PROTO_METHODS_ALL);
    sasl_begin(&lg, &f);
    sasl_continue(&lg, &f);
    char forged[128];
    snprintf(forged, sizeof(forged), "%s", f.server_final);
    forged[3] = forged[3] == 'A' ? 'B' : 'A';
    assert_failed(&lg, feed_auth(&lg, PROTO_AUTH_SASL_FINAL, forged), PROTO_FAIL_PROTOCOL,
                  "invalid SCRAM server signature");
    proto_login_reset(&lg);
    fake_free(&f);

    /* An "e=" error in SASLFinal fails the same way. */
    fake_init(&f, 4096);
    start(&lg, PASSWORD, PROTO_METHODS_ALL);
    sasl_begin(&lg, &f);
    sasl_continue(&lg, &f);
    assert_failed(&lg, feed_auth(&lg, PROTO_AUTH_SASL_FINAL, "e=invalid-proof"),
                  PROTO_FAIL_PROTOCOL, "invalid SCRAM server signature");
    proto_login_reset(&lg);
    fake_free(&f);
}
END_TEST

START_TEST(sasl_steps_out_of_order_are_refused)
{
    struct proto_login lg;
    start(&lg, PASSWORD, PROTO_METHODS_ALL);
    assert_failed(&lg, feed_auth(&lg, PROTO_AUTH_SASL_FINAL, "v=AAAA"), PROTO_FAIL_PROTOCOL,
                  "unexpected SASLFinal");
    proto_login_reset(&lg);
    start(&lg, PASSWORD, PROTO_METHODS_ALL);
    assert_failed(&lg, feed_auth(&lg, PROTO_AUTH_SASL_CONTINUE, "r=x,s=QUJD,i=4096"),
                  PROTO_FAIL_PROTOCOL, "unexpected SASLContinue");
    proto_login_reset(&lg);
}
END_TEST

START_TEST(repeated_sasl_fails_without_leaking)
{
    struct proto_login lg;
    struct fake_scram f;
    fake_init(&f, 4096);
    start(&lg, PASSWORD, PROTO_METHODS_ALL);
    sasl_begin(&lg, &f);
    static const char mechs[] = "SCRAM-SHA-256\0";
    assert_failed(&lg, feed(&lg, 'R', auth(PROTO_AUTH_SASL, mechs, sizeof(mechs))),
                  PROTO_FAIL_PROTOCOL, "AuthenticationSASL twice");
    proto_login_reset(&lg); /* LeakSanitizer (ASan build) checks nothing was left */
    fake_free(&f);
}
END_TEST

START_TEST(second_password_request_is_refused)
{
    struct proto_login lg;
    start(&lg, PASSWORD, PROTO_METHODS_ALL);
    ck_assert_int_eq(feed_auth(&lg, PROTO_AUTH_CLEARTEXT, NULL), PROTO_LOGIN_REPLY);
    static const uint8_t salt[4] = {9, 9, 9, 9};
    assert_failed(&lg, feed(&lg, 'R', auth(PROTO_AUTH_MD5, salt, 4)), PROTO_FAIL_PROTOCOL,
                  "unexpected authentication request");
    proto_login_reset(&lg);
}
END_TEST

START_TEST(huge_iteration_count_is_refused_at_once)
{
    struct proto_login lg;
    struct fake_scram f;
    fake_init(&f, 4096);
    start(&lg, PASSWORD, PROTO_METHODS_ALL);
    sasl_begin(&lg, &f);
    /* Replace i=4096 with 10^9 (the nonce check still passes: it is the server's). */
    char first[512];
    const char *i = strstr(f.server_first, ",i=");
    ck_assert_ptr_nonnull(i);
    snprintf(first, sizeof(first), "%.*s,i=1000000000", (int)(i - f.server_first), f.server_first);
    clock_t t0 = clock();
    assert_failed(&lg, feed_auth(&lg, PROTO_AUTH_SASL_CONTINUE, first), PROTO_FAIL_PROTOCOL,
                  "more than 100000 SCRAM iterations");
    ck_assert((clock() - t0) / CLOCKS_PER_SEC < 1);
    proto_login_reset(&lg);
    fake_free(&f);
}
END_TEST

START_TEST(iteration_count_at_the_cap_is_accepted)
{
    struct proto_login lg;
    struct fake_scram f;
    fake_init(&f, SCRAM_CLIENT_MAX_ITERATIONS);
    start(&lg, PASSWORD, PROTO_METHODS_ALL);
    sasl_begin(&lg, &f);
    sasl_continue(&lg, &f);
    ck_assert_int_eq(feed_auth(&lg, PROTO_AUTH_SASL_FINAL, f.server_final), PROTO_LOGIN_CONTINUE);
    ck_assert_int_eq(feed_auth(&lg, PROTO_AUTH_OK, NULL), PROTO_LOGIN_CONTINUE);
    proto_login_reset(&lg);
    fake_free(&f);
}
END_TEST

START_TEST(ready_before_authentication_is_refused)
{
    struct proto_login lg;
    start(&lg, PASSWORD, PROTO_METHODS_ALL);
    assert_failed(&lg, feed(&lg, 'Z', (struct body){.b = {'I'}, .len = 1}), PROTO_FAIL_PROTOCOL,
                  "ReadyForQuery before authentication");
    proto_login_reset(&lg);
    start(&lg, PASSWORD, PROTO_METHODS_ALL);
    ck_assert_int_eq(feed_auth(&lg, PROTO_AUTH_CLEARTEXT, NULL), PROTO_LOGIN_REPLY);
    assert_failed(&lg, feed(&lg, 'Z', (struct body){.b = {'I'}, .len = 1}), PROTO_FAIL_PROTOCOL,
                  "ReadyForQuery before authentication");
    proto_login_reset(&lg);
    start(&lg, PASSWORD, PROTO_METHODS_ALL);
    assert_failed(&lg, feed(&lg, 'S', param("in_hot_standby", "on")), PROTO_FAIL_PROTOCOL,
                  "ParameterStatus before authentication");
    proto_login_reset(&lg);
}
END_TEST

START_TEST(malformed_messages_are_refused)
{
    struct proto_login lg;
    start(&lg, NULL, PROTO_METHODS_ALL);
    assert_failed(&lg, feed(&lg, 'R', (struct body){.len = 2}), PROTO_FAIL_PROTOCOL,
                  "malformed authentication request");
    proto_login_reset(&lg);
    start(&lg, NULL, PROTO_METHODS_ALL);
    ck_assert_int_eq(feed_auth(&lg, PROTO_AUTH_OK, NULL), PROTO_LOGIN_CONTINUE);
    assert_failed(&lg, feed(&lg, 'K', (struct body){.len = 4}), PROTO_FAIL_PROTOCOL,
                  "BackendKeyData");
    proto_login_reset(&lg);
    start(&lg, NULL, PROTO_METHODS_ALL);
    ck_assert_int_eq(feed_auth(&lg, PROTO_AUTH_OK, NULL), PROTO_LOGIN_CONTINUE);
    assert_failed(&lg, feed(&lg, 'S', (struct body){.b = {'k', 0, 'v'}, .len = 3}),
                  PROTO_FAIL_PROTOCOL, "malformed ParameterStatus");
    proto_login_reset(&lg);
    start(&lg, NULL, PROTO_METHODS_ALL);
    assert_failed(&lg, feed(&lg, 'D', (struct body){.len = 0}), PROTO_FAIL_PROTOCOL,
                  "unexpected message ('D')");
    proto_login_reset(&lg);
    start(&lg, NULL, PROTO_METHODS_ALL);
    assert_failed(&lg, feed(&lg, 'R', (struct body){.len = PROTO_MAX_LOGIN_MSG_LEN + 1}),
                  PROTO_FAIL_PROTOCOL, "oversized");
    proto_login_reset(&lg);
}
END_TEST

START_TEST(unsupported_methods_fail)
{
    struct proto_login lg;
    start(&lg, PASSWORD, PROTO_METHODS_ALL);
    assert_failed(&lg, feed_auth(&lg, PROTO_AUTH_GSS, NULL), PROTO_FAIL_NO_METHOD,
                  "unsupported authentication method requested by server (code 7)");
    proto_login_reset(&lg);
    start(&lg, PASSWORD, PROTO_METHODS_ALL);
    assert_failed(&lg, feed_auth(&lg, 99, NULL), PROTO_FAIL_NO_METHOD, "(code 99)");
    proto_login_reset(&lg);
}
END_TEST

START_TEST(many_parameter_statuses_are_bounded)
{
    struct proto_login lg;
    start(&lg, NULL, PROTO_METHODS_ALL);
    ck_assert_int_eq(feed_auth(&lg, PROTO_AUTH_OK, NULL), PROTO_LOGIN_CONTINUE);
    char k[32];
    for (unsigned i = 0; i < PROTO_MAX_LOGIN_PARAMS; i++) {
        snprintf(k, sizeof(k), "p%u", i);
        ck_assert_int_eq(feed(&lg, 'S', param(k, "v")), PROTO_LOGIN_PARAM);
    }
    assert_failed(&lg, feed(&lg, 'S', param("one", "more")), PROTO_FAIL_PROTOCOL,
                  "more than 256 ParameterStatus");
    proto_login_reset(&lg);
}
END_TEST

START_TEST(oversized_parameter_statuses_are_bounded)
{
    static struct body big;
    big.len = 0;
    puts0(&big, "big");
    memset(big.b + big.len, 'x', 30000);
    big.len += 30000;
    big.b[big.len++] = 0;
    struct proto_login lg;
    start(&lg, NULL, PROTO_METHODS_ALL);
    ck_assert_int_eq(feed_auth(&lg, PROTO_AUTH_OK, NULL), PROTO_LOGIN_CONTINUE);
    ck_assert_int_eq(feed(&lg, 'S', big), PROTO_LOGIN_PARAM);
    ck_assert_int_eq(feed(&lg, 'S', big), PROTO_LOGIN_PARAM);
    assert_failed(&lg, feed(&lg, 'S', big), PROTO_FAIL_PROTOCOL, "bytes of ParameterStatus");
    proto_login_reset(&lg);
}
END_TEST

START_TEST(message_floods_are_bounded)
{
    struct proto_login lg;
    start(&lg, NULL, PROTO_METHODS_ALL);
    for (unsigned i = 0; i < PROTO_MAX_LOGIN_MSGS; i++)
        ck_assert_int_eq(feed(&lg, 'N', (struct body){.len = 0}), PROTO_LOGIN_CONTINUE);
    assert_failed(&lg, feed(&lg, 'N', (struct body){.len = 0}), PROTO_FAIL_PROTOCOL,
                  "more than 1024 messages");
    proto_login_reset(&lg);
}
END_TEST

START_TEST(error_response_fails_with_its_sqlstate_and_kind)
{
    static const char refused[] = "SFATAL\0C28P01\0Mpassword authentication failed\0";
    static const char starting[] = "SFATAL\0C57P03\0Mthe database system is starting up\0";
    struct proto_login lg;
    start(&lg, PASSWORD, PROTO_METHODS_ALL);
    ck_assert_int_eq(feed_auth(&lg, PROTO_AUTH_CLEARTEXT, NULL), PROTO_LOGIN_REPLY);
    assert_failed(&lg, proto_login_feed(&lg, 'E', (const uint8_t *)refused, sizeof(refused)),
                  PROTO_FAIL_REFUSED, "password authentication failed");
    ck_assert_str_eq(lg.fail_sqlstate, "28P01");
    ck_assert(proto_login_failed_auth(&lg));
    proto_login_reset(&lg);
    start(&lg, PASSWORD, PROTO_METHODS_ALL);
    assert_failed(&lg, proto_login_feed(&lg, 'E', (const uint8_t *)starting, sizeof(starting)),
                  PROTO_FAIL_SERVER, "starting up");
    ck_assert_str_eq(lg.fail_sqlstate, "57P03");
    ck_assert(!proto_login_failed_auth(&lg));
    proto_login_reset(&lg);
}
END_TEST

/* ---------------------------------------------------------------- server_require_auth */

START_TEST(disallowed_cleartext_gets_no_password)
{
    struct proto_login lg;
    start(&lg, PASSWORD, PROTO_METHOD_SCRAM);
    assert_failed(&lg, feed_auth(&lg, PROTO_AUTH_CLEARTEXT, NULL), PROTO_FAIL_NO_METHOD,
                  "server requested a cleartext password, which server_require_auth does not "
                  "allow");
    ck_assert_str_eq(lg.fail_sqlstate, "28000");
    proto_login_reset(&lg);
}
END_TEST

START_TEST(disallowed_md5_gets_no_hash)
{
    static const uint8_t salt[4] = {1, 2, 3, 4};
    struct proto_login lg;
    start(&lg, PASSWORD, PROTO_METHODS_ALL & ~PROTO_METHOD_MD5);
    assert_failed(&lg, feed(&lg, 'R', auth(PROTO_AUTH_MD5, salt, 4)), PROTO_FAIL_NO_METHOD,
                  "md5-hashed password, which server_require_auth does not allow");
    proto_login_reset(&lg);
}
END_TEST

START_TEST(disallowed_sasl_is_refused)
{
    static const char mechs[] = "SCRAM-SHA-256\0";
    struct proto_login lg;
    start(&lg, PASSWORD, PROTO_METHOD_PASSWORD | PROTO_METHOD_MD5);
    assert_failed(&lg, feed(&lg, 'R', auth(PROTO_AUTH_SASL, mechs, sizeof(mechs))),
                  PROTO_FAIL_NO_METHOD, "SASL authentication, which server_require_auth");
    proto_login_reset(&lg);
}
END_TEST

START_TEST(no_authentication_needs_none)
{
    struct proto_login lg;
    start(&lg, PASSWORD, PROTO_METHOD_SCRAM);
    assert_failed(&lg, feed_auth(&lg, PROTO_AUTH_OK, NULL), PROTO_FAIL_NO_METHOD,
                  "did not ask for authentication");
    proto_login_reset(&lg);
    start(&lg, PASSWORD, PROTO_METHOD_SCRAM | PROTO_METHOD_NONE);
    ck_assert_int_eq(feed_auth(&lg, PROTO_AUTH_OK, NULL), PROTO_LOGIN_CONTINUE);
    finish_login(&lg);
    proto_login_reset(&lg);
}
END_TEST

START_TEST(allowed_scram_still_logs_in)
{
    struct proto_login lg;
    struct fake_scram f;
    fake_init(&f, 4096);
    start(&lg, PASSWORD, PROTO_METHOD_SCRAM);
    sasl_begin(&lg, &f);
    sasl_continue(&lg, &f);
    ck_assert_int_eq(feed_auth(&lg, PROTO_AUTH_SASL_FINAL, f.server_final), PROTO_LOGIN_CONTINUE);
    ck_assert_int_eq(feed_auth(&lg, PROTO_AUTH_OK, NULL), PROTO_LOGIN_CONTINUE);
    finish_login(&lg);
    proto_login_reset(&lg);
    fake_free(&f);
}
END_TEST

START_TEST(random_messages_never_crash)
{
    /* A cheap stand-in for the fuzzer: random types and bodies from a fixed seed. */
    srand(12345);
    static const uint8_t types[] = {'R', 'S', 'K', 'E', 'N', 'Z', 'v', 'D'};
    for (int round = 0; round < 2000; round++) {
        struct proto_login lg;
        start(&lg, round % 2 ? PASSWORD : NULL, PROTO_METHODS_ALL);
        for (int i = 0; i < 8; i++) {
            struct body m = {.len = (uint32_t)(rand() % 40)};
            for (uint32_t j = 0; j < m.len; j++)
                m.b[j] = (uint8_t)(rand() % 4 == 0 ? 0 : rand());
            if (m.len >= 4 && rand() % 2) {
                m.b[0] = m.b[1] = m.b[2] = 0;
                m.b[3] = (uint8_t)(rand() % 13);
            }
            if (feed(&lg, types[rand() % sizeof(types)], m) == PROTO_LOGIN_FAILED)
                break;
        }
        proto_login_reset(&lg);
    }
}
END_TEST

/* ---- the options startup parameter ---- */

static int opts_all(const char *opts, char *out, size_t outlen)
{
    char buf[256];
    const char *cur = opts, *k, *v;
    int r, n = 0;
    out[0] = 0;
    while ((r = proto_options_next(&cur, buf, sizeof buf, &k, &v)) > 0) {
        size_t l = strlen(out);
        snprintf(out + l, outlen - l, "[%s=%s]", k, v);
        n++;
    }
    return r < 0 ? -1 : n;
}

START_TEST(options_accepts_the_three_spellings)
{
    char out[512];
    ck_assert_int_eq(opts_all("-c a=1 -cb=2 --c=3", out, sizeof out), 3);
    ck_assert_str_eq(out, "[a=1][b=2][c=3]");
    ck_assert_int_eq(opts_all("  \t", out, sizeof out), 0);
    ck_assert_int_eq(opts_all("-c search_path=a,b", out, sizeof out), 1);
    ck_assert_str_eq(out, "[search_path=a,b]");
    ck_assert_int_eq(opts_all("-c x=1=2 --y=", out, sizeof out), 2);
    ck_assert_str_eq(out, "[x=1=2][y=]");
}
END_TEST

START_TEST(options_backslash_escapes_white_space)
{
    char out[512];
    ck_assert_int_eq(opts_all("-c application_name=a\\ b -c d=\\\\", out, sizeof out), 2);
    ck_assert_str_eq(out, "[application_name=a b][d=\\]");
}
END_TEST

START_TEST(options_refuses_other_switches_and_bad_settings)
{
    char out[512];
    const char *bad[] = {"-X",   "-c",        "-c foo", "--foo",    "-c =1",
                         "--=1", "-c a=1 -d", "x=1",    "-c a=1 -c"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(opts_all(bad[i], out, sizeof out) == -1, "accepted: %s", bad[i]);
}
END_TEST

START_TEST(options_word_longer_than_buffer_is_refused)
{
    char big[600], buf[16];
    snprintf(big, sizeof big, "--a=%0500d", 0);
    const char *cur = big, *k, *v;
    ck_assert_int_eq(proto_options_next(&cur, buf, sizeof buf, &k, &v), -1);
}
END_TEST

static Suite *proto_suite(void)
{
    Suite *s = suite_create("proto");

    TCase *msg = tcase_create("messages");
    tcase_add_test(msg, startup_packet_has_version_and_given_pairs_only);
    tcase_add_test(msg, cancel_request_is_length_code_pid_key_big_endian);
    tcase_add_test(msg, client_startup_pairs_need_a_final_terminator_and_nothing_after_it);
    tcase_add_test(msg, error_fields_are_parsed_with_defaults);
    tcase_add_test(msg, error_parsing_survives_hostile_bodies);
    tcase_add_test(msg, auth_refusal_sqlstates);
    tcase_add_test(msg, require_auth_lists_parse_like_libpq);
    tcase_add_test(msg, require_auth_bad_lists_are_refused);
    suite_add_tcase(s, msg);

    TCase *login = tcase_create("login");
    tcase_set_timeout(login, 30);
    tcase_add_test(login, trust_login_reports_params_and_key);
    tcase_add_test(login, cleartext_sends_the_password);
    tcase_add_test(login, cleartext_needs_a_plain_password);
    tcase_add_test(login, md5_sends_the_salted_hash_from_plain_or_md5_secret);
    tcase_add_test(login, md5_request_without_salt_fails);
    tcase_add_test(login, scram_with_password_logs_in_after_verified_signature);
    tcase_add_test(login, scram_pass_through_keys_log_in_without_password);
    tcase_add_test(login, scram_without_password_or_keys_fails_before_sending);
    tcase_add_test(login, sasl_without_scram_sha_256_or_malformed_list_fails);
    tcase_add_test(login, error_response_fails_with_its_sqlstate_and_kind);
    suite_add_tcase(s, login);

    TCase *hostile = tcase_create("hostile");
    tcase_set_timeout(hostile, 30);
    tcase_add_test(hostile, ok_right_after_sasl_start_is_refused);
    tcase_add_test(hostile, ok_instead_of_sasl_final_is_refused);
    tcase_add_test(hostile, bad_server_signature_is_refused);
    tcase_add_test(hostile, sasl_steps_out_of_order_are_refused);
    tcase_add_test(hostile, repeated_sasl_fails_without_leaking);
    tcase_add_test(hostile, second_password_request_is_refused);
    tcase_add_test(hostile, huge_iteration_count_is_refused_at_once);
    tcase_add_test(hostile, iteration_count_at_the_cap_is_accepted);
    tcase_add_test(hostile, ready_before_authentication_is_refused);
    tcase_add_test(hostile, malformed_messages_are_refused);
    tcase_add_test(hostile, unsupported_methods_fail);
    tcase_add_test(hostile, many_parameter_statuses_are_bounded);
    tcase_add_test(hostile, oversized_parameter_statuses_are_bounded);
    tcase_add_test(hostile, message_floods_are_bounded);
    tcase_add_test(hostile, random_messages_never_crash);
    suite_add_tcase(s, hostile);

    TCase *req = tcase_create("require_auth");
    tcase_add_test(req, disallowed_cleartext_gets_no_password);
    tcase_add_test(req, disallowed_md5_gets_no_hash);
    tcase_add_test(req, disallowed_sasl_is_refused);
    tcase_add_test(req, no_authentication_needs_none);
    tcase_add_test(req, allowed_scram_still_logs_in);
    suite_add_tcase(s, req);

    TCase *opt = tcase_create("options");
    tcase_add_test(opt, options_accepts_the_three_spellings);
    tcase_add_test(opt, options_backslash_escapes_white_space);
    tcase_add_test(opt, options_refuses_other_switches_and_bad_settings);
    tcase_add_test(opt, options_word_longer_than_buffer_is_refused);
    suite_add_tcase(s, opt);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(proto_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
