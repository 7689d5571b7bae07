/*
 * fuzz_log_escape.c: log_escape, which every log line goes through (it quotes client-chosen
 * user/database names, application_name and server errors). Checks that no control
 * character, DEL or UTF-8 C1 control survives (no forged log lines), that the output stays
 * inside cap and is terminated, that a smaller cap gives a prefix of the full output (and
 * more room never less of it), and that nothing past in[len) is read (exact-size heap copies).
 *
 * Input: byte 0 picks the small output size, the rest is the text (NULs included).
 */
#include "fuzz.h"

#include "pgusher/log.h"

static void check_clean(const char *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)out[i];
        FUZZ_CHECK(c >= 0x20 || c == '\t');
        FUZZ_CHECK(c != 0x7f);
        if (c == 0xc2 && i + 1 < n)
            FUZZ_CHECK((unsigned char)out[i + 1] < 0x80 || (unsigned char)out[i + 1] > 0x9f);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t small = data[0];
    size_t len = size - 1;
    char *in = (char *)fuzz_dup(data + 1, len);

    /* Room for everything: at most 4 bytes per input byte, plus the NUL. */
    size_t cap = 4 * len + 1;
    char *full = malloc(cap);
    FUZZ_CHECK(full != NULL);
    size_t n = log_escape(in, len, full, cap);
    FUZZ_CHECK(n < cap && full[n] == '\0' && n >= len);
    check_clean(full, n);
    FUZZ_CHECK(memchr(full, '\0', n) == NULL); /* a NUL in the text is escaped too */

    char *cut = malloc(small ? small : 1);
    FUZZ_CHECK(cut != NULL);
    size_t m = log_escape(in, len, cut, small);
    if (small == 0) {
        FUZZ_CHECK(m == 0);
    } else {
        FUZZ_CHECK(m < small && cut[m] == '\0' && m <= n);
        FUZZ_CHECK(memcmp(cut, full, m) == 0);
        check_clean(cut, m);
        /* One more byte of room never gives less. */
        char *more = malloc(small + 1);
        FUZZ_CHECK(more != NULL);
        FUZZ_CHECK(log_escape(in, len, more, small + 1) >= m);
        free(more);
    }
    free(cut);
    free(full);
    free(in);
    return 0;
}
