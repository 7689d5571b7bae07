/*
 * varcache.c: tracked session parameters and the SET statements that make a server match a
 * client. Pure string work: never sends anything itself.
 */
#include "pgusher/varcache.h"

#include "pgusher/config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const var_names[VAR_EXTRA0] = {
    "client_encoding",  "DateStyle",     "TimeZone", "standard_conforming_strings",
    "application_name", "IntervalStyle",
};

/* track_extra_parameters names, "" = slot unused. */
#define EXTRA_SLOTS (VAR_COUNT - VAR_EXTRA0)
static char extra_names[EXTRA_SLOTS][64];

enum var_id varcache_lookup(const char *name)
{
    for (int i = 0; i < VAR_EXTRA0; i++)
        if (strcasecmp(name, var_names[i]) == 0)
            return (enum var_id)i;
    for (int i = 0; i < EXTRA_SLOTS && extra_names[i][0]; i++)
        if (strcasecmp(name, extra_names[i]) == 0)
            return (enum var_id)(VAR_EXTRA0 + i);
    return VAR_COUNT;
}

int varcache_track_extra(const char *list, char *err, size_t errlen)
{
    memset(extra_names, 0, sizeof(extra_names));
    int n = 0;
    const char *cur = list ? list : "", *p;
    size_t len;
    while ((p = config_list_next(&cur, &len)) != NULL) {
        char name[64];
        if (len >= sizeof(name)) {
            snprintf(err, errlen, "parameter name too long: %.*s", (int)len, p);
            return -1;
        }
        memcpy(name, p, len);
        name[len] = 0;
        if (varcache_lookup(name) == VAR_COUNT) {
            if (n == EXTRA_SLOTS) {
                snprintf(err, errlen, "more than %d extra parameters", EXTRA_SLOTS);
                return -1;
            }
            memcpy(extra_names[n++], name, len + 1);
        }
    }
    return n;
}

/* ---------------------------------------------------------------- interned values
 * Most connections carry the same few values ("UTF8", "ISO, MDY", "on", ...): each
 * distinct value is stored once, reference-counted, as PgBouncer's strpool does. */

struct istr {
    struct istr *next;
    uint32_t hash;
    uint32_t refs;
    char s[];
};

static struct istr **itab;
static size_t icap, icount;

static uint32_t str_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

static void itab_grow(void)
{
    size_t ncap = icap ? icap * 2 : 64;
    struct istr **nt = calloc(ncap, sizeof(*nt));
    if (!nt)
        return; /* keep the old table: only longer chains */
    for (size_t i = 0; i < icap; i++) {
        struct istr *e = itab[i];
        while (e) {
            struct istr *next = e->next;
            e->next = nt[e->hash & (ncap - 1)];
            nt[e->hash & (ncap - 1)] = e;
            e = next;
        }
    }
    free(itab);
    itab = nt;
    icap = ncap;
}

const char *str_intern(const char *v)
{
    uint32_t h = str_hash(v);
    if (icap) {
        for (struct istr *e = itab[h & (icap - 1)]; e; e = e->next) {
            if (e->hash == h && strcmp(e->s, v) == 0) {
                e->refs++;
                return e->s;
            }
        }
    }
    if (icount >= icap)
        itab_grow();
    if (!icap)
        return NULL;
    size_t n = strlen(v) + 1;
    struct istr *e = malloc(sizeof(*e) + n);
    if (!e)
        return NULL;
    memcpy(e->s, v, n);
    e->hash = h;
    e->refs = 1;
    e->next = itab[h & (icap - 1)];
    itab[h & (icap - 1)] = e;
    icount++;
    return e->s;
}

void str_release(const char *s)
{
    if (!s)
        return;
    struct istr *e = (struct istr *)(void *)(s - offsetof(struct istr, s));
    if (--e->refs > 0)
        return;
    struct istr **pp = &itab[e->hash & (icap - 1)];
    while (*pp && *pp != e)
        pp = &(*pp)->next;
    if (*pp)
        *pp = e->next;
    icount--;
    free(e);
}

size_t varcache_interned_count(void)
{
    return icount;
}

const char *varcache_name(enum var_id id)
{
    if (id < VAR_EXTRA0)
        return var_names[id];
    if (id < VAR_COUNT && extra_names[id - VAR_EXTRA0][0])
        return extra_names[id - VAR_EXTRA0];
    return "?";
}

void varcache_set(struct varcache *vc, enum var_id id, const char *value)
{
    if (id >= VAR_COUNT || (id >= VAR_EXTRA0 && !extra_names[id - VAR_EXTRA0][0]))
        return;
    if (vc->val[id] && value && strcmp(vc->val[id], value) == 0)
        return;
    str_release(vc->val[id]);
    vc->val[id] = value ? str_intern(value) : NULL;
}

void varcache_copy(struct varcache *dst, const struct varcache *src)
{
    for (int i = 0; i < VAR_COUNT; i++)
        varcache_set(dst, (enum var_id)i, src->val[i]);
}

void varcache_free(struct varcache *vc)
{
    for (int i = 0; i < VAR_COUNT; i++) {
        str_release(vc->val[i]);
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
        if (!want || want == have)
            continue; /* values are interned: equal strings are the same pointer */
        if (i >= VAR_EXTRA0 && !have)
            continue; /* as PgBouncer 1.25: an extra parameter is restored only when the server
                       * reports it (search_path only from PostgreSQL 18 on) */
        size_t litlen = 2 * strlen(want) + 4;
        char *lit = malloc(litlen);
        if (!lit || quote_literal(lit, litlen, want) == 0) {
            free(lit);
            continue;
        }
        int n = snprintf(buf + len, len < buflen ? buflen - len : 0, "SET %s=%s;",
                         varcache_name((enum var_id)i), lit);
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
