/*
 * fuzz_ini.c: the ini reader (ini_parse_string / ini_parse_file) on arbitrary text, with
 * %include confined to a private directory of a few fixed files. Checks what ini.h promises
 * about every callback and every error message; never interprets keys.
 *
 * Input: byte 0 picks options (file or string reader, error buffer size, which callback
 * rejects), the rest is the ini text.
 */
#include "fuzz.h"

#include "pgusher/ini.h"

struct ini_state {
    int calls;
    int reject_at; /* the handler returns false on this call (0: never) */
    int last_line;
    const char *last_file;
    const char *top; /* name of the top-level text */
};

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static bool on_line(void *arg, const char *file, int line, const char *section, const char *key,
                    const char *value, char *err, size_t errlen)
{
    struct ini_state *st = arg;
    FUZZ_CHECK(file != NULL && line > 0);
    FUZZ_CHECK(err != NULL && errlen > 0);
    if (key == NULL) {
        /* A section header: a non-empty trimmed name without ']' or a line break. */
        FUZZ_CHECK(value == NULL);
        FUZZ_CHECK(section != NULL && section[0] != '\0');
        FUZZ_CHECK(!is_blank(section[0]) && !is_blank(section[strlen(section) - 1]));
        FUZZ_CHECK(strchr(section, ']') == NULL && strchr(section, '\n') == NULL);
    } else {
        FUZZ_CHECK(key[0] != '\0' && value != NULL);
        FUZZ_CHECK(strchr(key, '\n') == NULL && strchr(value, '\n') == NULL);
        size_t vlen = strlen(value);
        FUZZ_CHECK(vlen == 0 || (!is_blank(value[0]) && !is_blank(value[vlen - 1])));
    }
    /* Lines only move forward in the top-level text (it can never be included again). */
    if (st->last_file && strcmp(st->last_file, file) == 0 && strcmp(file, st->top) == 0)
        FUZZ_CHECK(line > st->last_line);
    st->last_file = file;
    st->last_line = line;
    if (++st->calls == st->reject_at) {
        snprintf(err, errlen, "rejected call %d", st->calls);
        return false;
    }
    return true;
}

static void setup_includes(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    static const char a[] = "[databases]\nx = host=a port=1\n\"q\"\"k\" = v\n";
    static const char self[] = "[pgbouncer]\n%include self.ini\n";
    static const char chain[] = "%include a.ini\n[pgbouncer]\nk = v\n";
    static const char bad[] = "[unterminated\n";
    fuzz_write_file("a.ini", a, sizeof(a) - 1);
    fuzz_write_file("self.ini", self, sizeof(self) - 1);
    fuzz_write_file("chain.ini", chain, sizeof(chain) - 1);
    fuzz_write_file("bad.ini", bad, sizeof(bad) - 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t errlens[] = {0, 1, 16, 256};
    if (size < 1)
        return 0;
    int back = fuzz_enter_workdir();
    setup_includes();
    uint8_t opt = data[0];
    char *text = fuzz_cstr(data + 1, size - 1);
    fuzz_confine_paths(text, size - 1);
    size_t errlen = errlens[opt & 3];
    char *err = errlen ? malloc(errlen) : NULL;
    struct ini_state st = {.reject_at = (opt >> 2) & 7};
    bool ok;

    if (opt & 0x80) {
        st.top = "fuzz.ini";
        fuzz_write_file(st.top, text, strlen(text));
        ok = ini_parse_file(st.top, on_line, &st, err, errlen);
        unlink(st.top); /* so no later string input can include it */
    } else {
        st.top = "<text>";
        ok = ini_parse_string(text, st.top, on_line, &st, err, errlen);
    }
    if (st.reject_at && st.calls >= st.reject_at)
        FUZZ_CHECK(!ok);
    if (err) {
        FUZZ_CHECK(memchr(err, '\0', errlen) != NULL);
        /* Every failure says where; a success leaves the buffer empty. */
        if (ok)
            FUZZ_CHECK(err[0] == '\0');
        else if (errlen > 1)
            FUZZ_CHECK(err[0] != '\0');
    }
    free(err);
    free(text);
    fuzz_leave_workdir(back);
    return 0;
}
