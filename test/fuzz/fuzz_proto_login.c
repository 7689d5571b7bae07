/*
 * fuzz_proto_login.c: the client side of login (proto_login_feed) against a hostile server:
 * a fuzzer-chosen sequence of server messages. The harness can splice in what only a real
 * server would know (the random client nonce in SASLContinue, the right signature in
 * SASLFinal), so the SCRAM path is fuzzed to its end.
 * Checks: ReadyForQuery only after AuthenticationOk, and after SASL only if the server's
 * signature was the one computed; a secret goes only to an allowed method; every reply is one
 * whole message; parameters point into their message; failed stays failed; no leaks.
 *
 * Input: byte 0 password kind (bits 0-1: plain, md5 secret, SCRAM secret, none; bit 2: SCRAM
 * pass-through keys; bit 3: splice nonce/signature), byte 1 the allowed methods, then
 * messages: type, 2-byte big-endian body length (0xffff: an oversized body), body.
 * With splicing, a SASLContinue body (after its code) is appended to "r=<client nonce>" and
 * a SASLFinal body starting with "v=*" gets the right signature in place of the '*'.
 */
#include "fuzz.h"

#include "pgusher/proto.h"

static const char *const passwords[] = {
    "fuzz-pw",
    "md585c49ab112069de8da76dbdd1aa0de5e", /* md5 of fuzz-pw for fuzzuser */
    "SCRAM-SHA-256$16:MDEyMzQ1Njc4OWFiY2RlZg==$CrcR1uWj293KQON132zn/Rb++zCJEa6oJCLmoKVbS1I=:"
    "XbkaoK4XNd26FwXrt0EXm40WRx3Dm8rIRHMTWiWNqqw=",
    NULL,
};

struct feed {
    uint8_t type;
    uint8_t *body;
    uint32_t len;
    uint32_t code; /* 'R': the request code, when the body has one */
};

/* Builds the body handed to proto_login_feed (an exact-size heap copy), splicing if asked. */
static void make_body(struct proto_login *lg, bool splice, uint8_t type, const uint8_t *in,
                      size_t n, struct feed *f)
{
    f->type = type;
    f->code = n >= 4 ? pkt_get32(in) : UINT32_MAX;
    if (splice && type == 'R' && f->code == PROTO_AUTH_SASL_CONTINUE) {
        const char *nonce = lg->scram.client_nonce;
        size_t nl = strlen(nonce);
        f->len = (uint32_t)(4 + 2 + nl + n - 4);
        f->body = malloc(f->len);
        FUZZ_CHECK(f->body != NULL);
        memcpy(f->body, in, 4);
        memcpy(f->body + 4, "r=", 2);
        memcpy(f->body + 6, nonce, nl);
        memcpy(f->body + 6 + nl, in + 4, n - 4);
        return;
    }
    if (splice && type == 'R' && f->code == PROTO_AUTH_SASL_FINAL && n >= 7 &&
        memcmp(in + 4, "v=*", 3) == 0) {
        const char *sig = lg->scram.expected_server_sig;
        size_t sl = strlen(sig);
        f->len = (uint32_t)(n - 1 + sl);
        f->body = malloc(f->len);
        FUZZ_CHECK(f->body != NULL);
        memcpy(f->body, in, 6);
        memcpy(f->body + 6, sig, sl);
        memcpy(f->body + 6 + sl, in + 7, n - 7);
        return;
    }
    f->len = (uint32_t)n;
    f->body = fuzz_dup(in, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t ck[SCRAM_KEY_LEN] = {1, 2, 3}, sk[SCRAM_KEY_LEN] = {4, 5, 6};
    static uint8_t oversized[PROTO_MAX_LOGIN_MSG_LEN + 1];
    struct proto_login lg;

    if (size < 2)
        return 0;
    const char *password = passwords[data[0] & 3];
    bool keys = data[0] & 4, splice = data[0] & 8;
    unsigned allowed = data[1] & PROTO_METHODS_ALL;
    FUZZ_CHECK(
        proto_login_init(&lg, "fuzzuser", password, keys ? ck : NULL, keys ? sk : NULL, allowed));
    data += 2;
    size -= 2;

    bool failed = false, ready = false, auth_ok = false, sasl_started = false;
    bool verified = false, asked = false;
    int replies = 0;
    while (size >= 3) {
        uint8_t type = data[0];
        size_t n = (size_t)data[1] << 8 | data[2];
        data += 3;
        size -= 3;
        struct feed f;
        if (n == 0xffff) {
            f.type = type;
            f.body = oversized;
            f.len = sizeof oversized;
            f.code = 0;
        } else {
            if (n > size)
                n = size;
            make_body(&lg, splice, type, data, n, &f);
            data += n;
            size -= n;
        }
        enum proto_login_phase before = lg.phase;
        enum proto_login_step step = proto_login_feed(&lg, f.type, f.body, f.len);

        if (failed || ready)
            FUZZ_CHECK(step == PROTO_LOGIN_FAILED); /* nothing after the end */
        switch (step) {
        case PROTO_LOGIN_CONTINUE:
            if (f.type == 'R' && f.code == PROTO_AUTH_OK) {
                auth_ok = true;
                /* No authentication at all only if "none" is allowed. */
                if (!asked)
                    FUZZ_CHECK(allowed & PROTO_METHOD_NONE);
            }
            if (f.type == 'R' && f.code == PROTO_AUTH_SASL_FINAL)
                verified = true;
            break;
        case PROTO_LOGIN_REPLY: {
            /* One whole password message, for a method that is allowed. */
            FUZZ_CHECK(f.type == 'R' && ++replies <= 2);
            FUZZ_CHECK(lg.reply.len >= 5 && lg.reply.data[0] == 'p');
            FUZZ_CHECK(pkt_get32(lg.reply.data + 1) + 1 == lg.reply.len);
            asked = true;
            if (f.code == PROTO_AUTH_CLEARTEXT) {
                FUZZ_CHECK(allowed & PROTO_METHOD_PASSWORD);
                FUZZ_CHECK(password == passwords[0] &&
                           strcmp((const char *)lg.reply.data + 5, password) == 0);
            } else if (f.code == PROTO_AUTH_MD5) {
                FUZZ_CHECK(allowed & PROTO_METHOD_MD5);
                FUZZ_CHECK(lg.reply.len == 5 + MD5_PASSWD_LEN + 1);
            } else {
                FUZZ_CHECK(allowed & PROTO_METHOD_SCRAM);
                FUZZ_CHECK(f.code == PROTO_AUTH_SASL || f.code == PROTO_AUTH_SASL_CONTINUE);
                if (f.code == PROTO_AUTH_SASL)
                    sasl_started = true;
                else
                    FUZZ_CHECK(sasl_started && before == PROTO_PHASE_SASL_FIRST);
            }
            break;
        }
        case PROTO_LOGIN_PARAM: {
            FUZZ_CHECK(f.type == 'S' && auth_ok);
            const uint8_t *k = (const uint8_t *)lg.param_name, *v = (const uint8_t *)lg.param_value;
            FUZZ_CHECK(k == f.body && v > k && v < f.body + f.len);
            FUZZ_CHECK(memchr(v, 0, (size_t)(f.body + f.len - v)) == f.body + f.len - 1);
            break;
        }
        case PROTO_LOGIN_READY:
            /* Logged in: AuthenticationOk came, and after SASL only with its signature. */
            FUZZ_CHECK(f.type == 'Z' && auth_ok && !failed);
            if (sasl_started)
                FUZZ_CHECK(verified);
            ready = true;
            break;
        case PROTO_LOGIN_FAILED:
            FUZZ_CHECK(lg.fail != PROTO_FAIL_NONE && lg.phase == PROTO_PHASE_FAILED);
            /* Our own failures say why; the server's text may be empty ("M" with ""). */
            FUZZ_CHECK(memchr(lg.fail_msg, 0, sizeof lg.fail_msg) != NULL);
            FUZZ_CHECK(lg.fail_msg[0] != '\0' || f.type == 'E' || failed);
            FUZZ_CHECK(strlen(lg.fail_sqlstate) == 5);
            FUZZ_CHECK(lg.reply.len == 0);
            failed = true;
            break;
        }
        if (f.body != oversized)
            free(f.body);
    }
    proto_login_reset(&lg);
    return 0;
}
