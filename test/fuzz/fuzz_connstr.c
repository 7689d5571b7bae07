/*
 * fuzz_connstr.c: libpq-style connection strings, both the bare tokenizer (connstr_parse) and
 * a [databases] value (config_parse_database). Checks the pairs' shape, that quoting the
 * pairs back yields the same pairs, and that a parsed database is consistent or fully freed.
 *
 * Input: byte 0 picks the mode (bit 0: database entry) and which callback rejects; the rest
 * is the connection string.
 */
#include "fuzz.h"

#include "pgusher/config.h"
#include "pgusher/connstr.h"

#define MAX_PAIRS 64

struct pairs {
    int n, calls, reject_at;
    char *key[MAX_PAIRS], *val[MAX_PAIRS];
};

static bool key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static bool collect(void *arg, const char *key, const char *value, char *err, size_t errlen)
{
    struct pairs *pr = arg;
    FUZZ_CHECK(key != NULL && value != NULL && key[0] != '\0');
    for (const char *k = key; *k; k++)
        FUZZ_CHECK(key_char(*k));
    if (++pr->calls == pr->reject_at) {
        snprintf(err, errlen, "rejected");
        return false;
    }
    if (pr->n < MAX_PAIRS) {
        pr->key[pr->n] = strdup(key);
        pr->val[pr->n] = strdup(value);
        FUZZ_CHECK(pr->key[pr->n] && pr->val[pr->n]);
        pr->n++;
    }
    return true;
}

static void pairs_free(struct pairs *pr)
{
    for (int i = 0; i < pr->n; i++) {
        free(pr->key[i]);
        free(pr->val[i]);
    }
    pr->n = 0;
}

/* Writes the pairs back as key='value' with \ escapes; connstr_parse must read the same. */
static char *requote(const struct pairs *pr)
{
    size_t need = 1;
    for (int i = 0; i < pr->n; i++)
        need += strlen(pr->key[i]) + 2 * strlen(pr->val[i]) + 5;
    char *out = malloc(need), *o = out;
    FUZZ_CHECK(out != NULL);
    for (int i = 0; i < pr->n; i++) {
        o += sprintf(o, "%s%s='", i ? " " : "", pr->key[i]);
        for (const char *v = pr->val[i]; *v; v++) {
            if (*v == '\'' || *v == '\\')
                *o++ = '\\';
            *o++ = *v;
        }
        *o++ = '\'';
    }
    *o = '\0';
    return out;
}

static void fuzz_tokenizer(const char *s, int reject_at, char *err, size_t errlen)
{
    struct pairs pr = {.reject_at = reject_at}, again = {0};
    bool ok = connstr_parse(s, collect, &pr, err, errlen);
    if (reject_at && pr.calls >= reject_at)
        FUZZ_CHECK(!ok);
    if (ok) {
        FUZZ_CHECK(err[0] == '\0');
        if (pr.n < MAX_PAIRS) {
            char *q = requote(&pr);
            FUZZ_CHECK(connstr_parse(q, collect, &again, err, errlen));
            FUZZ_CHECK(again.n == pr.n);
            for (int i = 0; i < pr.n; i++) {
                FUZZ_CHECK(strcmp(again.key[i], pr.key[i]) == 0);
                FUZZ_CHECK(strcmp(again.val[i], pr.val[i]) == 0);
            }
            free(q);
        }
    } else {
        FUZZ_CHECK(err[0] != '\0');
    }
    pairs_free(&pr);
    pairs_free(&again);
}

static void fuzz_database(const char *s, char *err, size_t errlen)
{
    struct cf_database db;
    bool ok = config_parse_database("fuzzdb", s, &db, err, errlen);
    if (!ok) {
        FUZZ_CHECK(err[0] != '\0');
        FUZZ_CHECK(db.name == NULL && db.hosts == NULL && db.ports == NULL && db.nhosts == 0);
        return;
    }
    FUZZ_CHECK(strcmp(db.name, "fuzzdb") == 0 && strcmp(db.connstr, s) == 0);
    FUZZ_CHECK(db.nhosts >= 0 && db.nhosts <= CF_MAX_HOSTS && db.port >= 1 && db.port <= 65535);
    FUZZ_CHECK((db.nhosts == 0) == (db.hosts == NULL));
    for (int i = 0; i < db.nhosts; i++) {
        const char *h = db.hosts[i];
        size_t n = strlen(h);
        FUZZ_CHECK(n > 0 && strchr(h, ',') == NULL);
        FUZZ_CHECK(h[0] != ' ' && h[0] != '\t' && h[n - 1] != ' ' && h[n - 1] != '\t');
        FUZZ_CHECK(db.ports[i] >= 1 && db.ports[i] <= 65535);
    }
    FUZZ_CHECK(db.pool_mode == CF_UNSET ||
               (db.pool_mode >= POOL_SESSION && db.pool_mode <= POOL_STATEMENT));
    FUZZ_CHECK(
        db.target_session_attrs == CF_UNSET ||
        (db.target_session_attrs >= TSA_ANY && db.target_session_attrs <= TSA_PREFER_STANDBY));
    FUZZ_CHECK(db.max_replica_lag == CF_UNSET || db.max_replica_lag >= 0);
    FUZZ_CHECK(db.query_wait_timeout == CF_UNSET || db.query_wait_timeout >= 0);
    config_free_database(&db);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    if (size < 1)
        return 0;
    char *s = fuzz_cstr(data + 1, size - 1);
    if (data[0] & 1)
        fuzz_database(s, err, sizeof(err));
    else
        fuzz_tokenizer(s, (data[0] >> 1) & 7, err, sizeof(err));
    free(s);
    return 0;
}
