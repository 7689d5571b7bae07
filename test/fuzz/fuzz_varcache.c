/*
 * fuzz_varcache.c: the SET statements that make a server's parameters match a client's
 * (varcache_diff_sql), with client-chosen values: it is the one place client text becomes
 * SQL. Parses the generated SQL back and checks each literal decodes to exactly the client's
 * value (no injection), statements come whole and in order, and the interned strings'
 * reference counts return to zero.
 *
 * Input: byte 0 picks the output buffer size, then up to 2 * VAR_COUNT NUL-separated values:
 * the client's tracked parameters (the built-in ones, then two track_extra_parameters names
 * and six unnamed slots), then the server's (an empty value = unknown).
 */
#include "fuzz.h"

#include <strings.h>

#include "pgusher/varcache.h"

/* A parameter varcache_diff_sql must SET: the client wants a value the server does not have;
 * an extra parameter only when the server's value is known (PgBouncer 1.25). */
static bool needs_set(const struct varcache *client, const struct varcache *server, int k)
{
    if (!client->val[k] || client->val[k] == server->val[k])
        return false;
    return k < VAR_EXTRA0 || server->val[k] != NULL;
}

/* Decodes the SQL literal at *p (quote_literal's output: '...' or E'...'), advancing *p. */
static char *decode_literal(const char **p)
{
    const char *s = *p;
    bool esc = false;
    if (*s == 'E') {
        esc = true;
        s++;
    }
    FUZZ_CHECK(*s == '\'');
    s++;
    char *out = malloc(strlen(s) + 1), *o = out;
    FUZZ_CHECK(out != NULL);
    for (;;) {
        FUZZ_CHECK(*s != '\0');
        if (*s == '\'') {
            if (s[1] == '\'') {
                *o++ = '\'';
                s += 2;
                continue;
            }
            s++;
            break;
        }
        if (esc && *s == '\\') {
            FUZZ_CHECK(s[1] == '\\'); /* the only escape quote_literal writes */
            *o++ = '\\';
            s += 2;
            continue;
        }
        FUZZ_CHECK(!(*s == '\\' && !esc)); /* a backslash forces an E'' literal */
        *o++ = *s++;
    }
    *o = '\0';
    *p = s;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t buflens[] = {1, 8, 24, 64, 200, 1024, 8192, 65536};
    struct varcache client, server;
    const uint8_t *part;
    size_t plen;

    if (size < 1)
        return 0;
    static bool named;
    if (!named) {
        char err[64];
        FUZZ_CHECK(varcache_track_extra("search_path, work_mem", err, sizeof err) == 2);
        named = true;
    }
    size_t base = varcache_interned_count();
    size_t buflen = buflens[data[0] & 7];
    bool prefix = data[0] & 8;
    data++;
    size--;
    memset(&client, 0, sizeof client);
    memset(&server, 0, sizeof server);
    for (int i = 0; i < 2 * VAR_COUNT && fuzz_next_part(&data, &size, 0, &part, &plen); i++) {
        if (plen == 0)
            continue;
        char *v = fuzz_cstr(part, plen);
        varcache_set(i < VAR_COUNT ? &client : &server, (enum var_id)(i % VAR_COUNT), v);
        /* Names are looked up case-insensitively; values are never names by accident. */
        enum var_id id = varcache_lookup(v);
        FUZZ_CHECK(id == VAR_COUNT || strcasecmp(v, varcache_name(id)) == 0);
        free(v);
    }
    for (int i = 0; i < VAR_COUNT; i++) {
        /* Unnamed extra slots are "?" and never set. */
        if (strcmp(varcache_name((enum var_id)i), "?") == 0)
            FUZZ_CHECK(!client.val[i] && !server.val[i]);
        else
            FUZZ_CHECK(varcache_lookup(varcache_name((enum var_id)i)) == (enum var_id)i);
        if (client.val[i] && server.val[i])
            FUZZ_CHECK((client.val[i] == server.val[i]) ==
                       (strcmp(client.val[i], server.val[i]) == 0));
    }

    char *buf = malloc(buflen);
    FUZZ_CHECK(buf != NULL);
    const char *start = prefix && buflen > 4 ? "abc;" : "";
    strcpy(buf, start);
    int count = varcache_diff_sql(&client, &server, buf, buflen);
    FUZZ_CHECK(memchr(buf, '\0', buflen) != NULL);
    FUZZ_CHECK(strncmp(buf, start, strlen(start)) == 0);

    /* Parse it back: "SET name=literal;" per differing parameter, in table order. */
    const char *p = buf + strlen(start);
    int seen = 0, next = 0;
    while (*p) {
        FUZZ_CHECK(strncmp(p, "SET ", 4) == 0);
        p += 4;
        const char *eq = strchr(p, '=');
        FUZZ_CHECK(eq != NULL);
        char name[64];
        FUZZ_CHECK((size_t)(eq - p) < sizeof name);
        memcpy(name, p, (size_t)(eq - p));
        name[eq - p] = '\0';
        enum var_id id = varcache_lookup(name);
        FUZZ_CHECK(id != VAR_COUNT && strcmp(name, varcache_name(id)) == 0);
        FUZZ_CHECK((int)id >= next);
        /* Every parameter skipped on the way needed no SET. */
        for (int k = next; k < (int)id; k++)
            FUZZ_CHECK(!needs_set(&client, &server, k));
        next = (int)id + 1;
        p = eq + 1;
        char *lit = decode_literal(&p);
        FUZZ_CHECK(client.val[id] && strcmp(lit, client.val[id]) == 0);
        FUZZ_CHECK(client.val[id] != server.val[id]);
        free(lit);
        FUZZ_CHECK(*p == ';');
        p++;
        seen++;
    }
    FUZZ_CHECK(seen == count);
    /* With room to spare, nothing is left out. */
    if (buflen == 65536 && size < 4096)
        for (int k = next; k < VAR_COUNT; k++)
            FUZZ_CHECK(!needs_set(&client, &server, k));

    struct varcache copy;
    memset(&copy, 0, sizeof copy);
    varcache_copy(&copy, &client);
    for (int i = 0; i < VAR_COUNT; i++)
        FUZZ_CHECK(copy.val[i] == client.val[i]);
    varcache_free(&copy);
    varcache_free(&client);
    varcache_free(&server);
    FUZZ_CHECK(varcache_interned_count() == base);
    free(buf);
    return 0;
}
