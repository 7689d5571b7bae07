/*
 * hba.c: parses auth_hba_file (PgBouncer 1.25's pg_hba.conf subset) and auth_ident_file into
 * an immutable struct hba, and matches logins against it. Pure: never logs, never touches a
 * socket; reads only the files it is given and the @files they name.
 *
 * A line is a token stream: words, "quoted words" ("" inside for a quote), commas, and the
 * end of the line ('#' starts a comment outside quotes). A database or user field is a comma
 * list (spaces after a comma allowed); a quoted word is always a name, never a keyword.
 */
#include "pgusher/hba.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_INCLUDE_DEPTH 8
#define MAX_FILE_LEN (16u * 1024 * 1024)

enum tok_kind { TOK_WORD, TOK_QUOTED, TOK_COMMA, TOK_EOL, TOK_BAD };

struct lexer {
    const char *p;
    enum tok_kind kind;
    char *text; /* the current word, unquoted; owned */
    size_t cap;
};

/* The parse of one file: where errors point and what @file is relative to. */
struct ctx {
    const char *name;
    int line;
    char *err;
    size_t errlen;
    int depth;
};

static bool fail(struct ctx *cx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool fail(struct ctx *cx, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (cx->err && cx->errlen) {
        if (cx->line > 0)
            snprintf(cx->err, cx->errlen, "%s:%d: %s", cx->name, cx->line, msg);
        else
            snprintf(cx->err, cx->errlen, "%s: %s", cx->name, msg);
    }
    return false;
}

static bool text_put(struct lexer *lx, size_t at, char c)
{
    if (at + 1 >= lx->cap) {
        size_t ncap = lx->cap ? lx->cap * 2 : 64;
        char *n = realloc(lx->text, ncap);
        if (!n)
            return false;
        lx->text = n;
        lx->cap = ncap;
    }
    lx->text[at] = c;
    lx->text[at + 1] = '\0';
    return true;
}

/* Advance to the next token of the line (p stops at '\n' or NUL). */
static void lex_next(struct lexer *lx)
{
    const char *p = lx->p;
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\f' || *p == '\v')
        p++;
    size_t n = 0;
    if (lx->cap)
        lx->text[0] = '\0';
    if (*p == '\0' || *p == '\n' || *p == '#') {
        lx->kind = TOK_EOL;
    } else if (*p == ',') {
        lx->kind = TOK_COMMA;
        p++;
    } else if (*p == '"') {
        lx->kind = TOK_QUOTED;
        if (!text_put(lx, 0, '\0'))
            lx->kind = TOK_BAD;
        for (p++;; p++) {
            if (*p == '\0' || *p == '\n') {
                lx->kind = TOK_BAD; /* unterminated */
                break;
            }
            if (*p == '"') {
                if (p[1] != '"') {
                    p++;
                    break;
                }
                p++;
            }
            if (!text_put(lx, n++, *p)) {
                lx->kind = TOK_BAD;
                break;
            }
        }
    } else {
        lx->kind = TOK_WORD;
        for (;
             *p && *p != '\n' && *p != ',' && *p != '#' && *p != '"' && !isspace((unsigned char)*p);
             p++) {
            if (!text_put(lx, n++, *p)) {
                lx->kind = TOK_BAD;
                break;
            }
        }
    }
    lx->p = p;
}

static void lex_start(struct lexer *lx, const char *line)
{
    lx->p = line;
    lex_next(lx);
}

static bool is_word(const struct lexer *lx, const char *kw)
{
    return lx->kind == TOK_WORD && strcmp(lx->text, kw) == 0;
}

/* ---------------------------------------------------------------- names */

static bool names_add(struct hba_names *hn, const char *name)
{
    for (int i = 0; i < hn->n; i++)
        if (strcmp(hn->names[i], name) == 0)
            return true;
    char **grown = realloc(hn->names, sizeof(*grown) * (size_t)(hn->n + 1));
    if (!grown)
        return false;
    hn->names = grown;
    hn->names[hn->n] = strdup(name);
    if (!hn->names[hn->n])
        return false;
    hn->n++;
    return true;
}

static void names_free(struct hba_names *hn)
{
    for (int i = 0; i < hn->n; i++)
        free(hn->names[i]);
    free(hn->names);
    memset(hn, 0, sizeof(*hn));
}

/* A regular file's whole text (a FIFO, a device or a directory is refused: a stray
 * "@/dev/stdin" must not hang a reload). */
static char *read_text(const char *path, int *saved_errno)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        *saved_errno = errno;
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        *saved_errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        fclose(f);
        return NULL;
    }
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    while (buf) {
        if (len + 1 >= cap) {
            if (cap >= MAX_FILE_LEN) {
                free(buf);
                buf = NULL;
                *saved_errno = EFBIG;
                break;
            }
            char *n = realloc(buf, cap * 2);
            if (!n) {
                free(buf);
                buf = NULL;
                *saved_errno = ENOMEM;
                break;
            }
            buf = n;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) {
                *saved_errno = errno ? errno : EIO;
                free(buf);
                buf = NULL;
            }
            break;
        }
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

/* @file is relative to the directory of the file that names it. */
static char *include_path(const char *parent, const char *fn)
{
    const char *slash = strrchr(parent, '/');
    size_t dlen = fn[0] == '/' || !slash ? 0 : (size_t)(slash - parent) + 1;
    char *out = malloc(dlen + strlen(fn) + 1);
    if (out) {
        memcpy(out, parent, dlen);
        strcpy(out + dlen, fn);
    }
    return out;
}

static bool parse_names(struct ctx *cx, struct lexer *lx, struct hba_names *hn, bool is_db);

/* The names of an @file: comma and whitespace separated, over any number of lines, comments
 * and blank lines allowed; keywords count as in the line that includes it. */
static bool parse_name_file(struct ctx *cx, const char *fn, struct hba_names *hn, bool is_db)
{
    if (cx->depth >= MAX_INCLUDE_DEPTH)
        return fail(cx, "@%s: files included too deep", fn);
    char *path = include_path(cx->name, fn);
    if (!path)
        return fail(cx, "out of memory");
    int e = 0;
    char *text = read_text(path, &e);
    if (!text) {
        bool r = fail(cx, "could not read @%s (%s): %s", fn, path, strerror(e));
        free(path);
        return r;
    }
    struct ctx sub = {.name = path, .err = cx->err, .errlen = cx->errlen, .depth = cx->depth + 1};
    struct lexer lx = {0};
    bool ok = true;
    for (const char *line = text; ok && *line;) {
        sub.line++;
        lex_start(&lx, line);
        while (ok && lx.kind == TOK_COMMA)
            lex_next(&lx);
        while (ok && lx.kind != TOK_EOL) {
            ok = parse_names(&sub, &lx, hn, is_db);
            if (ok && lx.kind != TOK_EOL && lx.kind != TOK_WORD && lx.kind != TOK_QUOTED)
                ok = fail(&sub, "unexpected text in a name list");
        }
        const char *nl = strchr(line, '\n');
        line = nl ? nl + 1 : line + strlen(line);
    }
    free(lx.text);
    free(text);
    free(path);
    return ok;
}

/* A comma list of names and keywords; leaves lx on the token after it. */
static bool parse_names(struct ctx *cx, struct lexer *lx, struct hba_names *hn, bool is_db)
{
    const char *what = is_db ? "database" : "user";
    for (;;) {
        if (lx->kind == TOK_WORD) {
            const char *w = lx->text;
            if (strcmp(w, "all") == 0) {
                hn->flags |= HBA_NAME_ALL;
            } else if (is_db && strcmp(w, "sameuser") == 0) {
                hn->flags |= HBA_NAME_SAMEUSER;
            } else if (is_db && strcmp(w, "replication") == 0) {
                hn->flags |= HBA_NAME_REPLICATION;
            } else if (is_db && (strcmp(w, "samerole") == 0 || strcmp(w, "samegroup") == 0)) {
                return fail(cx, "%s is not supported", w);
            } else if (w[0] == '+') {
                return fail(cx, "group names (%s) are not supported", w);
            } else if (w[0] == '@') {
                if (!w[1])
                    return fail(cx, "@ without a file name");
                char *fn = strdup(w + 1);
                if (!fn)
                    return fail(cx, "out of memory");
                bool ok = parse_name_file(cx, fn, hn, is_db);
                free(fn);
                if (!ok)
                    return false;
            } else if (!names_add(hn, w)) {
                return fail(cx, "out of memory");
            }
        } else if (lx->kind == TOK_QUOTED) {
            if (!names_add(hn, lx->text))
                return fail(cx, "out of memory");
        } else if (lx->kind == TOK_BAD) {
            return fail(cx, "unterminated quoted name");
        } else {
            return fail(cx, "%s name expected", what);
        }
        lex_next(lx);
        if (lx->kind != TOK_COMMA)
            return true;
        lex_next(lx);
    }
}

/* ---------------------------------------------------------------- addresses */

static bool parse_bits(struct hba_rule *r, const char *s)
{
    char *end;
    errno = 0;
    unsigned long bits = strtoul(s, &end, 10);
    unsigned max = r->af == AF_INET ? 32 : 128;
    if (errno || end == s || *end || !isdigit((unsigned char)s[0]) || bits > max)
        return false;
    memset(r->mask, 0, sizeof(r->mask));
    size_t i = 0;
    for (; i < bits / 8; i++)
        r->mask[i] = 0xff;
    if (bits % 8)
        r->mask[i] = (uint8_t)(0xff << (8 - bits % 8));
    return true;
}

static bool parse_address(struct ctx *cx, struct lexer *lx, struct hba_rule *r)
{
    if (lx->kind != TOK_WORD)
        return fail(cx, "address expected");
    if (strcmp(lx->text, "all") == 0) {
        r->addr_all = true;
        lex_next(lx);
        return true;
    }
    char addr[128];
    if (strlen(lx->text) >= sizeof(addr))
        return fail(cx, "invalid address: %s", lx->text);
    strcpy(addr, lx->text);
    char *bits = strchr(addr, '/');
    if (bits)
        *bits++ = '\0';
    if (inet_pton(AF_INET6, addr, r->addr) == 1)
        r->af = AF_INET6;
    else if (inet_pton(AF_INET, addr, r->addr) == 1)
        r->af = AF_INET;
    else
        return fail(cx,
                    "invalid address: %s (host names, samehost and samenet are not "
                    "supported)",
                    addr);
    if (bits) {
        if (!parse_bits(r, bits))
            return fail(cx, "invalid CIDR mask: /%s", bits);
        lex_next(lx);
    } else {
        lex_next(lx);
        if (lx->kind != TOK_WORD || inet_pton(r->af, lx->text, r->mask) != 1)
            return fail(cx, "address %s needs a /bits suffix or a mask of its family", addr);
        lex_next(lx);
    }
    /* Host bits outside the mask are ignored, as PgBouncer does (it only warns). */
    for (int i = 0; i < 16; i++)
        r->addr[i] &= r->mask[i];
    return true;
}

/* ---------------------------------------------------------------- lines */

static const struct {
    const char *name;
    enum hba_conn_type type;
} conn_types[] = {{"local", HBA_LOCAL},
                  {"host", HBA_HOST},
                  {"hostssl", HBA_HOSTSSL},
                  {"hostnossl", HBA_HOSTNOSSL}};

static const struct {
    const char *name;
    enum hba_method method;
} methods[] = {
    {"trust", HBA_TRUST},         {"reject", HBA_REJECT},     {"md5", HBA_MD5},
    {"scram-sha-256", HBA_SCRAM}, {"password", HBA_PASSWORD}, {"peer", HBA_PEER},
    {"cert", HBA_CERT},           {"ldap", HBA_LDAP},
};

const char *hba_method_name(enum hba_method m)
{
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (methods[i].method == m)
            return methods[i].name;
    return "unknown";
}

static void rule_free(struct hba_rule *r)
{
    names_free(&r->db);
    names_free(&r->user);
    free(r->map);
}

static bool parse_rule(struct ctx *cx, struct lexer *lx, struct hba_rule *r)
{
    size_t i;
    for (i = 0; i < sizeof(conn_types) / sizeof(conn_types[0]); i++)
        if (is_word(lx, conn_types[i].name))
            break;
    if (i == sizeof(conn_types) / sizeof(conn_types[0]))
        return fail(cx, "unknown connection type \"%s\" (local, host, hostssl or hostnossl)",
                    lx->kind == TOK_WORD || lx->kind == TOK_QUOTED ? lx->text : "");
    r->type = conn_types[i].type;
    lex_next(lx);
    if (!parse_names(cx, lx, &r->db, true) || !parse_names(cx, lx, &r->user, false))
        return false;
    if (r->type == HBA_LOCAL)
        r->addr_all = true;
    else if (!parse_address(cx, lx, r))
        return false;
    if (lx->kind != TOK_WORD)
        return fail(cx, "authentication method expected");
    for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (is_word(lx, methods[i].name))
            break;
    if (i == sizeof(methods) / sizeof(methods[0]))
        return fail(cx, "unsupported authentication method \"%s\"", lx->text);
    r->method = methods[i].method;
    lex_next(lx);
    while (lx->kind == TOK_WORD) {
        if (r->method == HBA_LDAP && strncmp(lx->text, "ldap", 4) == 0 && strchr(lx->text, '=')) {
            /* LDAP's own options: kept by nobody, since such logins are refused. */
            bool quoted_value = lx->text[strlen(lx->text) - 1] == '=';
            lex_next(lx);
            if (quoted_value && lx->kind == TOK_QUOTED)
                lex_next(lx);
            continue;
        }
        if (strncmp(lx->text, "map=", 4) != 0 || !lx->text[4])
            return fail(cx, "unsupported option \"%s\" (only map=NAME is)", lx->text);
        free(r->map);
        r->map = strdup(lx->text + 4);
        if (!r->map)
            return fail(cx, "out of memory");
        lex_next(lx);
    }
    if (lx->kind != TOK_EOL)
        return fail(cx, "unexpected text after the authentication method");
    return true;
}

static bool parse_ident_line(struct ctx *cx, struct lexer *lx, struct hba_ident *id)
{
    char **fields[3] = {&id->map, &id->sys_user, &id->pg_user};
    for (int i = 0; i < 3; i++) {
        if (lx->kind != TOK_WORD && lx->kind != TOK_QUOTED)
            return fail(cx, "expected: map-name system-username database-username");
        if (lx->kind == TOK_WORD && i == 1 && lx->text[0] == '/')
            return fail(cx, "regular expressions are not supported");
        if (lx->kind == TOK_WORD && i == 2 && lx->text[0] == '+')
            return fail(cx, "group names are not supported");
        *fields[i] = strdup(lx->text);
        if (!*fields[i])
            return fail(cx, "out of memory");
        lex_next(lx);
    }
    if (lx->kind != TOK_EOL)
        return fail(cx, "expected: map-name system-username database-username");
    return true;
}

void hba_free(struct hba *h)
{
    if (!h)
        return;
    for (int i = 0; i < h->nrules; i++)
        rule_free(&h->rules[i]);
    free(h->rules);
    for (int i = 0; i < h->nidents; i++) {
        free(h->idents[i].map);
        free(h->idents[i].sys_user);
        free(h->idents[i].pg_user);
    }
    free(h->idents);
    free(h);
}

/* Calls line_fn for every line that holds a token, with the lexer on its first token. */
static bool each_line(struct ctx *cx, const char *text, struct hba *h,
                      bool (*line_fn)(struct ctx *, struct lexer *, struct hba *))
{
    struct lexer lx = {0};
    bool ok = true;
    for (const char *line = text; ok && *line;) {
        cx->line++;
        lex_start(&lx, line);
        if (lx.kind == TOK_BAD)
            ok = fail(cx, "unterminated quoted name");
        else if (lx.kind != TOK_EOL)
            ok = line_fn(cx, &lx, h);
        const char *nl = strchr(line, '\n');
        line = nl ? nl + 1 : line + strlen(line);
    }
    free(lx.text);
    return ok;
}

static bool rule_line(struct ctx *cx, struct lexer *lx, struct hba *h)
{
    struct hba_rule *grown = realloc(h->rules, sizeof(*grown) * (size_t)(h->nrules + 1));
    if (!grown)
        return fail(cx, "out of memory");
    h->rules = grown;
    struct hba_rule *r = &h->rules[h->nrules];
    memset(r, 0, sizeof(*r));
    r->line = cx->line;
    if (!parse_rule(cx, lx, r)) {
        rule_free(r);
        return false;
    }
    h->nrules++;
    return true;
}

static bool ident_line(struct ctx *cx, struct lexer *lx, struct hba *h)
{
    struct hba_ident *grown = realloc(h->idents, sizeof(*grown) * (size_t)(h->nidents + 1));
    if (!grown)
        return fail(cx, "out of memory");
    h->idents = grown;
    struct hba_ident *id = &h->idents[h->nidents];
    memset(id, 0, sizeof(*id));
    id->line = cx->line;
    if (!parse_ident_line(cx, lx, id)) {
        free(id->map);
        free(id->sys_user);
        free(id->pg_user);
        return false;
    }
    h->nidents++;
    return true;
}

struct hba *hba_parse(const char *text, const char *name, const char *ident_text,
                      const char *ident_name, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    struct hba *h = calloc(1, sizeof(*h));
    struct ctx cx = {.name = name, .err = err, .errlen = errlen};
    if (!h) {
        fail(&cx, "out of memory");
        return NULL;
    }
    if (!each_line(&cx, text, h, rule_line))
        goto fail;
    if (ident_text) {
        struct ctx icx = {
            .name = ident_name ? ident_name : "auth_ident_file", .err = err, .errlen = errlen};
        if (!each_line(&icx, ident_text, h, ident_line))
            goto fail;
    }
    for (int i = 0; i < h->nrules; i++) {
        const char *map = h->rules[i].map;
        if (!map)
            continue;
        bool found = false;
        for (int j = 0; j < h->nidents && !found; j++)
            found = strcmp(h->idents[j].map, map) == 0;
        if (!found) {
            cx.line = h->rules[i].line;
            fail(&cx, "ident map %s is not found in auth_ident_file", map);
            goto fail;
        }
    }
    return h;
fail:
    hba_free(h);
    return NULL;
}

struct hba *hba_load(const char *path, const char *ident_path, char *err, size_t errlen)
{
    int e = 0;
    char *text = read_text(path, &e), *itext = NULL;
    if (!text) {
        snprintf(err, errlen, "%s: could not read auth_hba_file: %s", path, strerror(e));
        return NULL;
    }
    if (ident_path && *ident_path) {
        itext = read_text(ident_path, &e);
        if (!itext) {
            snprintf(err, errlen, "%s: could not read auth_ident_file: %s", ident_path,
                     strerror(e));
            free(text);
            return NULL;
        }
    }
    struct hba *h = hba_parse(text, path, itext, ident_path, err, errlen);
    free(text);
    free(itext);
    return h;
}

/* ---------------------------------------------------------------- matching */

static bool names_match(const struct hba_names *hn, const char *name, const char *other,
                        bool replication, bool is_db)
{
    if (is_db && replication)
        return (hn->flags & HBA_NAME_REPLICATION) != 0; /* as PostgreSQL: all does not */
    if (hn->flags & HBA_NAME_ALL)
        return true;
    if ((hn->flags & HBA_NAME_SAMEUSER) && strcmp(name, other) == 0)
        return true;
    for (int i = 0; i < hn->n; i++)
        if (strcmp(hn->names[i], name) == 0)
            return true;
    return false;
}

static bool addr_match(const struct hba_rule *r, const struct sockaddr *sa)
{
    if (r->addr_all)
        return true;
    if (!sa)
        return false;
    const uint8_t *a;
    int af = sa->sa_family;
    if (af == AF_INET) {
        a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
    } else if (af == AF_INET6) {
        a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (r->af == AF_INET && memcmp(a, v4mapped, 12) == 0) {
            a += 12;
            af = AF_INET;
        }
    } else {
        return false;
    }
    if (af != r->af)
        return false;
    int n = af == AF_INET ? 4 : 16;
    for (int i = 0; i < n; i++)
        if ((a[i] & r->mask[i]) != r->addr[i])
            return false;
    return true;
}

const struct hba_rule *hba_match(const struct hba *h, const struct hba_login *lg)
{
    if (!h)
        return NULL;
    for (int i = 0; i < h->nrules; i++) {
        const struct hba_rule *r = &h->rules[i];
        if ((r->type == HBA_LOCAL) != lg->is_unix)
            continue;
        if (r->type == HBA_HOSTSSL && !lg->tls)
            continue;
        if (r->type == HBA_HOSTNOSSL && lg->tls)
            continue;
        if (!lg->is_unix && !addr_match(r, lg->addr))
            continue;
        if (!names_match(&r->db, lg->db, lg->user, lg->replication, true))
            continue;
        if (!names_match(&r->user, lg->user, lg->db, false, false))
            continue;
        return r;
    }
    return NULL;
}

bool hba_ident_allows(const struct hba *h, const char *map, const char *sys_user,
                      const char *pg_user)
{
    for (int i = 0; h && i < h->nidents; i++) {
        const struct hba_ident *id = &h->idents[i];
        if (strcmp(id->map, map) == 0 && strcmp(id->sys_user, sys_user) == 0 &&
            (strcmp(id->pg_user, "all") == 0 || strcmp(id->pg_user, pg_user) == 0))
            return true;
    }
    return false;
}
