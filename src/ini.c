/*
 * ini.c: splits PgBouncer-style ini text into sections and key/value lines, following
 * %include. Owns only the file text while reading; never interprets keys or values.
 *
 * Grammar (one item per line, surrounding whitespace ignored, CRLF accepted):
 *   ; comment | # comment          whole-line comments only; ';' later in a line is data
 *   [name]                         optionally followed by a comment
 *   key = value                    key: [A-Za-z0-9_.*-] and bytes >= 0x80, or "quoted ""x"""
 *   %include path                  path as written (relative = working directory)
 */
#include "pgusher/ini.h"

#include "pgusher/secret.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct file_id {
    dev_t dev;
    ino_t ino;
};

struct ini_reader {
    ini_handler_fn fn;
    void *arg;
    char *section; /* current section, carried across includes */
    struct file_id open_files[INI_MAX_INCLUDE_DEPTH + 1];
    int nopen;
    char *err;
    size_t errlen;
};

static void set_error(struct ini_reader *r, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void set_error(struct ini_reader *r, const char *file, int line, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (!r->err || r->errlen == 0)
        return;
    if (line > 0)
        snprintf(r->err, r->errlen, "%s:%d: %s", file, line, msg);
    else
        snprintf(r->err, r->errlen, "%s: %s", file, msg);
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_key_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-' || c == '*' || c >= 0x80;
}

static bool parse_text(struct ini_reader *r, char *text, const char *name, int depth);

static bool include_file(struct ini_reader *r, const char *from, int line, const char *path,
                         int depth)
{
    struct stat st;
    char *text;
    bool ok;

    if (depth >= INI_MAX_INCLUDE_DEPTH) {
        set_error(r, from, line, "include nesting too deep (more than %d levels) at \"%s\"",
                  INI_MAX_INCLUDE_DEPTH, path);
        return false;
    }
    if (stat(path, &st) != 0) {
        set_error(r, from, line, "cannot open include file \"%s\": %s", path, strerror(errno));
        return false;
    }
    for (int i = 0; i < r->nopen; i++) {
        if (r->open_files[i].dev == st.st_dev && r->open_files[i].ino == st.st_ino) {
            set_error(r, from, line, "include loop: \"%s\" is already being read", path);
            return false;
        }
    }
    size_t len;
    text = secret_read_file(path, &len); /* [databases] lines may hold password= */
    if (!text) {
        set_error(r, from, line, "cannot open include file \"%s\": %s", path, strerror(errno));
        return false;
    }
    r->open_files[r->nopen].dev = st.st_dev;
    r->open_files[r->nopen].ino = st.st_ino;
    r->nopen++;
    ok = parse_text(r, text, path, depth + 1);
    r->nopen--;
    secret_free(text, len + 1);
    return ok;
}

static bool call_handler(struct ini_reader *r, const char *file, int line, const char *key,
                         const char *value)
{
    char msg[1024] = "";

    if (r->fn(r->arg, file, line, r->section, key, value, msg, sizeof(msg)))
        return true;
    set_error(r, file, line, "%s", msg[0] ? msg : "rejected by the configuration loader");
    return false;
}

static bool parse_section(struct ini_reader *r, char *p, const char *name, int lineno)
{
    char *end = strchr(p, ']');
    char *rest, *start;
    char *copy;

    if (!end) {
        set_error(r, name, lineno, "syntax error: missing \"]\" in section header");
        return false;
    }
    rest = end + 1;
    start = p + 1;
    while (start < end && is_blank(*start))
        start++;
    while (end > start && is_blank(end[-1]))
        end--;
    if (end == start) {
        set_error(r, name, lineno, "syntax error: empty section name");
        return false;
    }
    while (is_blank(*rest))
        rest++;
    if (*rest && *rest != ';' && *rest != '#') {
        set_error(r, name, lineno, "syntax error: unexpected text after section header");
        return false;
    }
    copy = strndup(start, (size_t)(end - start));
    if (!copy) {
        set_error(r, name, lineno, "out of memory");
        return false;
    }
    free(r->section);
    r->section = copy;
    return call_handler(r, name, lineno, NULL, NULL);
}

/* Reads a double-quoted key in place ("" = one quote). Returns the char after the closing
 * quote, or NULL when the quote is not closed on this line. */
static char *parse_quoted_key(char *p, char **key)
{
    char *out = p + 1;
    char *in = p + 1;

    *key = out;
    for (;;) {
        if (*in == '\0')
            return NULL;
        if (*in == '"') {
            if (in[1] == '"') {
                *out++ = '"';
                in += 2;
                continue;
            }
            *out = '\0';
            return in + 1;
        }
        *out++ = *in++;
    }
}

static bool parse_pair(struct ini_reader *r, char *p, const char *name, int lineno)
{
    char *key, *value;

    if (*p == '"') {
        p = parse_quoted_key(p, &key);
        if (!p) {
            set_error(r, name, lineno, "syntax error: unterminated quoted name");
            return false;
        }
        /* parse_quoted_key terminated the key, possibly on top of a character we still
         * need: it only ever writes at or before the closing quote, so p is intact. */
    } else {
        key = p;
        while (is_key_char((unsigned char)*p))
            p++;
        if (p == key) {
            set_error(r, name, lineno,
                      "syntax error: unexpected character '%c' (names with special characters "
                      "must be double-quoted)",
                      *p);
            return false;
        }
    }
    char *key_end = p;
    while (is_blank(*p))
        p++;
    if (*p != '=') {
        *key_end = '\0';
        if (*p)
            set_error(r, name, lineno,
                      "syntax error: expected \"=\" after \"%s\" (names with special "
                      "characters must be double-quoted)",
                      key);
        else
            set_error(r, name, lineno, "syntax error: expected \"=\" after \"%s\"", key);
        return false;
    }
    *key_end = '\0';
    if (*key == '\0') {
        set_error(r, name, lineno, "syntax error: empty name");
        return false;
    }
    p++;
    while (is_blank(*p))
        p++;
    value = p;
    return call_handler(r, name, lineno, key, value);
}

static bool parse_include(struct ini_reader *r, char *p, const char *name, int lineno, int depth)
{
    p += strlen("%include");
    while (is_blank(*p))
        p++;
    if (*p == '\0') {
        set_error(r, name, lineno, "syntax error: %%include needs a file name");
        return false;
    }
    return include_file(r, name, lineno, p, depth);
}

/* Parses text in place (it is modified). Lines are trimmed at both ends before parsing. */
static bool parse_text(struct ini_reader *r, char *text, const char *name, int depth)
{
    int lineno = 0;
    char *line = text;

    while (line && *line) {
        char *nl = strchr(line, '\n');
        char *next = nl ? nl + 1 : NULL;
        char *p = line;
        char *end;

        lineno++;
        if (nl)
            *nl = '\0';
        end = p + strlen(p);
        while (end > p && is_blank(end[-1]))
            *--end = '\0';
        while (is_blank(*p))
            p++;
        line = next;

        if (*p == '\0' || *p == ';' || *p == '#')
            continue;
        if (*p == '%') {
            if (strncmp(p, "%include", 8) == 0 && (p[8] == '\0' || is_blank(p[8]))) {
                if (!parse_include(r, p, name, lineno, depth))
                    return false;
                continue;
            }
            set_error(r, name, lineno, "syntax error: unknown directive \"%s\"", p);
            return false;
        }
        if (*p == '[') {
            if (!parse_section(r, p, name, lineno))
                return false;
            continue;
        }
        if (!parse_pair(r, p, name, lineno))
            return false;
    }
    return true;
}

static bool run(const char *text_in, const char *name, const struct stat *st, ini_handler_fn fn,
                void *arg, char *err, size_t errlen)
{
    struct ini_reader r = {.fn = fn, .arg = arg, .err = err, .errlen = errlen};
    size_t size = strlen(text_in) + 1;
    char *text = malloc(size);
    bool ok;

    if (err && errlen)
        err[0] = '\0';
    if (!text) {
        set_error(&r, name, 0, "out of memory");
        return false;
    }
    memcpy(text, text_in, size);
    if (st) {
        r.open_files[0].dev = st->st_dev;
        r.open_files[0].ino = st->st_ino;
        r.nopen = 1;
    }
    ok = parse_text(&r, text, name, 0);
    secret_free(text, size); /* cut into lines by parse_text: wipe all of it */
    free(r.section);
    return ok;
}

bool ini_parse_file(const char *path, ini_handler_fn fn, void *arg, char *err, size_t errlen)
{
    struct stat st;
    char *text;
    size_t len;
    bool ok;

    if (stat(path, &st) != 0 || !(text = secret_read_file(path, &len))) {
        if (err && errlen)
            snprintf(err, errlen, "%s: cannot read configuration file: %s", path, strerror(errno));
        return false;
    }
    ok = run(text, path, &st, fn, arg, err, errlen);
    secret_free(text, len + 1);
    return ok;
}

bool ini_parse_string(const char *text, const char *name, ini_handler_fn fn, void *arg, char *err,
                      size_t errlen)
{
    return run(text, name, NULL, fn, arg, err, errlen);
}
