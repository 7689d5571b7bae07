/*
 * fuzz_scram_secret.c: auth_file secrets and the base64 under them: scram_parse_secret (and
 * scram_is_secret, pg_is_md5_secret) on arbitrary text, scram_b64_decode into buffers of
 * every size around the decoded length. Checks that a parsed secret formats back to a secret
 * that parses to the same keys, and that base64 round-trips and never writes past outlen.
 *
 * Input: the text (also the base64 input, up to the first NUL).
 */
#include "fuzz.h"

#include "pgusher/scram.h"

static void fuzz_secret(const char *text)
{
    struct scram_secret s, again;
    char buf[256];
    bool ok = scram_parse_secret(text, &s);
    FUZZ_CHECK(ok == scram_is_secret(text));
    if (ok) {
        FUZZ_CHECK(s.iterations > 0 && s.salt_len > 0 && s.salt_len <= sizeof s.salt);
        FUZZ_CHECK(strncmp(text, "SCRAM-SHA-256$", 14) == 0);
        FUZZ_CHECK(scram_secret_format(&s, buf, sizeof buf));
        FUZZ_CHECK(scram_parse_secret(buf, &again));
        FUZZ_CHECK(again.iterations == s.iterations && again.salt_len == s.salt_len);
        FUZZ_CHECK(memcmp(again.salt, s.salt, s.salt_len) == 0);
        FUZZ_CHECK(memcmp(again.stored_key, s.stored_key, SCRAM_KEY_LEN) == 0);
        FUZZ_CHECK(memcmp(again.server_key, s.server_key, SCRAM_KEY_LEN) == 0);
        FUZZ_CHECK(!pg_is_md5_secret(text));
    }
    if (pg_is_md5_secret(text))
        FUZZ_CHECK(strlen(text) == MD5_PASSWD_LEN && strncmp(text, "md5", 3) == 0);
}

static void fuzz_b64(const char *in, size_t len)
{
    size_t full = len / 4 * 3;
    /* Exact-size heap buffers around the decoded size: ASan sees any write past outlen. */
    for (size_t outlen = full > 2 ? full - 2 : 0; outlen <= full + 1; outlen++) {
        uint8_t *out = malloc(outlen ? outlen : 1);
        FUZZ_CHECK(out != NULL);
        int n = scram_b64_decode(in, len, out, outlen);
        FUZZ_CHECK(n <= (int)outlen);
        if (n >= 0) {
            FUZZ_CHECK(len % 4 == 0 && (size_t)n <= full && (size_t)n + 2 >= full);
            /* Re-encoding gives base64 that decodes to the same bytes. */
            size_t elen = ((size_t)n + 2) / 3 * 4 + 1;
            char *enc = malloc(elen);
            uint8_t *back = malloc((size_t)n + 1);
            FUZZ_CHECK(enc && back);
            FUZZ_CHECK(scram_b64_encode(out, (size_t)n, enc, elen) == (int)elen - 1);
            FUZZ_CHECK(scram_b64_encode(out, (size_t)n, enc, elen - 1) == -1);
            FUZZ_CHECK(scram_b64_decode(enc, elen - 1, back, (size_t)n) == n);
            FUZZ_CHECK(n == 0 || memcmp(back, out, (size_t)n) == 0);
            free(enc);
            free(back);
        }
        free(out);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    fuzz_secret(text);
    fuzz_b64(text, strlen(text));
    /* Arbitrary bytes (NULs included) encode and decode back. */
    size_t elen = (size + 2) / 3 * 4 + 1;
    char *enc = malloc(elen);
    uint8_t *back = malloc(size + 1);
    FUZZ_CHECK(enc && back);
    FUZZ_CHECK(scram_b64_encode(data, size, enc, elen) == (int)elen - 1);
    FUZZ_CHECK(scram_b64_decode(enc, elen - 1, back, size) == (int)size);
    FUZZ_CHECK(size == 0 || memcmp(back, data, size) == 0);
    free(enc);
    free(back);
    free(text);
    return 0;
}
