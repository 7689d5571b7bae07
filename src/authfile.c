/*
 * authfile.c: reads PgBouncer's auth_file ("user" "secret" per line) into callbacks.
 * Owns the file text while reading and wipes it afterwards; never validates secret formats or
 * keeps any state.
 */
#include "pgusher/authfile.h"

#include "pgusher/secret.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void set_error(char *err, size_t errlen, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void set_error(char *err, size_t errlen, const char *file, int line, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (line > 0)
        snprintf(err, errlen, "%s:%d: %s", file, line, msg);
    else
        snprintf(err, errlen, "%s: %s", file, msg);
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* Unquotes the field starting at *pp (which must be '"') in place. Returns the field, or NULL
 * when the closing quote is missing on this line. *pp is left after the closing quote. */
static char *take_field(char **pp)
{
    char *in = *pp + 1;
    char *out = in;
    char *field = in;

    for (;;) {
        if (*in == '\0')
            return NULL;
        if (*in == '"') {
            if (in[1] == '"') {
                *out++ = '"';
                in += 2;
                continue;
            }
            *pp = in + 1;
            *out = '\0';
            return field;
        }
        *out++ = *in++;
    }
}

static bool parse_text(char *text, const char *name, authfile_entry_fn fn, void *arg, char *err,
                       size_t errlen)
{
    int lineno = 0;
    char *line = text;

    while (line && *line) {
        char *nl = strchr(line, '\n');
        char *p = line;
        char *user, *secret;

        lineno++;
        line = nl ? nl + 1 : NULL;
        if (nl)
            *nl = '\0';
        while (is_blank(*p))
            p++;
        if (*p == '\0' || *p == ';' || *p == '#')
            continue;
        if (*p != '"') {
            set_error(err, errlen, name, lineno,
                      "syntax error: expected a double-quoted user name");
            return false;
        }
        user = take_field(&p);
        if (!user) {
            set_error(err, errlen, name, lineno, "syntax error: unterminated quoted user name");
            return false;
        }
        if (*user == '\0') {
            set_error(err, errlen, name, lineno, "empty user name");
            return false;
        }
        /* The second field must be separated from the first; take_field wrote the user's
         * terminator at or before the closing quote, so p still sees the original text. */
        if (!is_blank(*p)) {
            set_error(err, errlen, name, lineno,
                      "syntax error: expected whitespace and a double-quoted secret after the "
                      "user name");
            return false;
        }
        while (is_blank(*p))
            p++;
        if (*p != '"') {
            set_error(err, errlen, name, lineno,
                      "syntax error: expected a double-quoted secret after user \"%s\"", user);
            return false;
        }
        secret = take_field(&p);
        if (!secret) {
            set_error(err, errlen, name, lineno,
                      "syntax error: unterminated quoted secret for user \"%s\"", user);
            return false;
        }
        char msg[1024] = "";
        if (!fn(arg, name, lineno, user, secret, msg, sizeof(msg))) {
            set_error(err, errlen, name, lineno, "%s", msg[0] ? msg : "entry rejected");
            return false;
        }
    }
    return true;
}

bool authfile_parse_string(const char *text, const char *name, authfile_entry_fn fn, void *arg,
                           char *err, size_t errlen)
{
    size_t size = strlen(text) + 1;
    char *copy = malloc(size);
    bool ok;

    if (err && errlen)
        err[0] = '\0';
    if (!copy) {
        set_error(err, errlen, name, 0, "out of memory");
        return false;
    }
    memcpy(copy, text, size);
    ok = parse_text(copy, name, fn, arg, err, errlen);
    secret_free(copy, size); /* parse_text cut it into lines: wipe all of it, not to a NUL */
    return ok;
}

bool authfile_parse_file(const char *path, authfile_entry_fn fn, void *arg, char *err,
                         size_t errlen)
{
    size_t len;
    char *buf;
    bool ok;

    if (err && errlen)
        err[0] = '\0';
    buf = secret_read_file(path, &len);
    if (!buf) {
        set_error(err, errlen, path, 0, "cannot read auth file: %s", strerror(errno));
        return false;
    }
    ok = parse_text(buf, path, fn, arg, err, errlen);
    secret_free(buf, len + 1);
    return ok;
}
