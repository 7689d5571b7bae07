/*
 * varcache.c: tracked session parameters and the SET statements that make a server match a
 * client. Pure string work: never sends anything itself.
 */
#include "pgusher/varcache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const var_names[VAR_COUNT] = {
    "client_encoding",  "DateStyle",        "TimeZone", "standard_conforming_strings",
    "application_name", "IntervalStyle",
};

enum var_id varcache_lookup(const char *name)
{
    for (int i = 0; i < VAR_COUNT; i++)
        if (strcasecmp(name, var_names[i]) == 0)
            return (enum var_id)i;
    return VAR_COUNT;
}

const char *varcache_name(enum var_id id)
{
    return id < VAR_COUNT ? var_names[id] : "?";
}

void varcache_set(struct varcache *vc, enum var_id id, const char *value)
{
    if (id >= VAR_COUNT)
        return;
    if (vc->val[id] && value && strcmp(vc->val[id], value) == 0)
        return;
    free(vc->val[id]);
    vc->val[id] = value ? strdup(value) : NULL;
}

void varcache_copy(struct varcache *dst, const struct varcache *src)
{
    for (int i = 0; i < VAR_COUNT; i++)
        varcache_set(dst, (enum var_id)i, src->val[i]);
}

void varcache_free(struct varcache *vc)
{
    for (int i = 0; i < VAR_COUNT; i++) {
        free(vc->val[i]);
        vc->val[i] = NULL;
    }
}

/* Quote a value as a SQL string literal into out (NUL-terminated); an E'' literal when it
 * holds backslashes, so standard_conforming_strings does not matter. Returns its length, or
 * 0 when it does not fit. */
static size_t quote_literal(char *out, size_t outlen, const char *v)
{
    size_t n = 0;
    bool esc = strchr(v, '\\') != NULL;
#define PUT(ch)                                                                                    \
    do {                                                                                           \
        if (n + 1 >= outlen)                                                                       \
            return 0;                                                                              \
        out[n++] = (ch);                                                                           \
    } while (0)
    if (esc)
        PUT('E');
    PUT('\'');
    for (; *v; v++) {
        if (*v == '\'' || (esc && *v == '\\'))
            PUT(*v);
        PUT(*v);
    }
    PUT('\'');
#undef PUT
    out[n] = 0;
    return n;
}

int varcache_diff_sql(const struct varcache *client, const struct varcache *server, char *buf,
                      size_t buflen)
{
    size_t len = strlen(buf);
    int count = 0;
    for (int i = 0; i < VAR_COUNT; i++) {
        const char *want = client->val[i];
        const char *have = server->val[i];
        if (!want)
            continue;
        if (have && strcmp(want, have) == 0)
            continue;
        size_t litlen = 2 * strlen(want) + 4;
        char *lit = malloc(litlen);
        if (!lit || quote_literal(lit, litlen, want) == 0) {
            free(lit);
            continue;
        }
        int n = snprintf(buf + len, len < buflen ? buflen - len : 0, "SET %s=%s;", var_names[i],
                         lit);
        free(lit);
        if (n < 0 || len + (size_t)n >= buflen) {
            buf[len] = 0; /* never leave half a statement behind */
            break;
        }
        len += (size_t)n;
        count++;
    }
    return count;
}
