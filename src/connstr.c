/*
 * connstr.c: tokenizes libpq-style connection strings into key/value pairs.
 * Owns a scratch copy of each value during the callback; never interprets keys.
 */
#include "pgusher/connstr.h"

#include "pgusher/secret.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

static bool is_key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static void fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

bool connstr_parse(const char *s, connstr_pair_fn fn, void *arg, char *err, size_t errlen)
{
    size_t n = strlen(s);
    /* key and value are each at most as long as the input */
    char *key = malloc(n + 1);
    char *val = malloc(n + 1);
    const char *p = s;
    bool ok = false;

    if (err && errlen)
        err[0] = '\0';
    if (!key || !val) {
        fail(err, errlen, "%s", "out of memory");
        goto done;
    }
    for (;;) {
        size_t klen = 0, vlen = 0;

        while (is_space(*p))
            p++;
        if (*p == '\0')
            break;
        while (is_key_char(*p))
            key[klen++] = *p++;
        key[klen] = '\0';
        if (klen == 0) {
            fail(err, errlen,
                 "syntax error: unexpected character '%c' where a parameter name was expected", *p);
            goto done;
        }
        while (is_space(*p))
            p++;
        if (*p != '=') {
            fail(err, errlen, "syntax error: missing \"=\" after \"%s\"", key);
            goto done;
        }
        p++;
        while (is_space(*p))
            p++;
        if (*p == '\'') {
            p++;
            for (;;) {
                if (*p == '\0') {
                    fail(err, errlen, "syntax error: unterminated quoted value for \"%s\"", key);
                    goto done;
                }
                if (*p == '\\' && p[1] != '\0') {
                    val[vlen++] = p[1];
                    p += 2;
                } else if (*p == '\'' && p[1] == '\'') {
                    val[vlen++] = '\'';
                    p += 2;
                } else if (*p == '\'') {
                    p++;
                    break;
                } else {
                    val[vlen++] = *p++;
                }
            }
            if (*p != '\0' && !is_space(*p)) {
                fail(err, errlen, "syntax error: missing space after quoted value of \"%s\"", key);
                goto done;
            }
        } else {
            while (*p != '\0' && !is_space(*p)) {
                if (*p == '\\' && p[1] != '\0')
                    p++;
                val[vlen++] = *p++;
            }
        }
        val[vlen] = '\0';
        if (!fn(arg, key, val, err, errlen))
            goto done;
    }
    ok = true;
done:
    secret_free(key, n + 1); /* a value may be a password= */
    secret_free(val, n + 1);
    return ok;
}
