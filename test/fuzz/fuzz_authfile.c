/*
 * fuzz_authfile.c: the auth_file reader ("user" "secret" per line) from memory and from a
 * file. Checks every entry against authfile.h's promises and that each failure says where.
 *
 * Input: byte 0 picks options (bit 7: read from a file; bits 0-2: which entry is rejected),
 * the rest is the file text.
 */
#include "fuzz.h"

#include "pgusher/authfile.h"

struct af_state {
    int calls, reject_at, last_line;
    const char *name;
};

static bool on_entry(void *arg, const char *file, int line, const char *user, const char *secret,
                     char *err, size_t errlen)
{
    struct af_state *st = arg;
    FUZZ_CHECK(strcmp(file, st->name) == 0);
    FUZZ_CHECK(line > st->last_line);
    st->last_line = line;
    FUZZ_CHECK(user != NULL && secret != NULL && user[0] != '\0');
    FUZZ_CHECK(strchr(user, '\n') == NULL && strchr(secret, '\n') == NULL);
    FUZZ_CHECK(err != NULL && errlen > 0);
    if (++st->calls == st->reject_at) {
        snprintf(err, errlen, "no");
        return false;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    if (size < 1)
        return 0;
    struct af_state st = {.reject_at = data[0] & 7};
    char *text = fuzz_cstr(data + 1, size - 1);
    bool ok;
    if (data[0] & 0x80) {
        int back = fuzz_enter_workdir();
        st.name = "userlist.txt";
        fuzz_write_file(st.name, text, strlen(text));
        ok = authfile_parse_file(st.name, on_entry, &st, err, sizeof(err));
        fuzz_leave_workdir(back);
    } else {
        st.name = "<text>";
        ok = authfile_parse_string(text, st.name, on_entry, &st, err, sizeof(err));
    }
    if (st.reject_at && st.calls >= st.reject_at)
        FUZZ_CHECK(!ok);
    if (ok) {
        FUZZ_CHECK(err[0] == '\0');
    } else {
        /* "NAME:LINE: what" */
        size_t n = strlen(st.name);
        FUZZ_CHECK(strncmp(err, st.name, n) == 0 && err[n] == ':');
    }
    free(text);
    return 0;
}
