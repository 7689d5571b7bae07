/*
 * fuzz_admin.c: the admin console's command parser (admin_parse_command) on arbitrary query
 * text. Checks every field of struct admin_cmd is a terminated string inside its array,
 * what admin.h promises about empty/known/unknown commands and SET, that a failure always
 * carries a message, and that commands are case-insensitive (the same query in upper case
 * parses to the same command).
 *
 * Input: byte 0 picks the error buffer size, the rest is the query (up to its first NUL).
 */
#include "fuzz.h"

#include <ctype.h>
#include <strings.h>

#include "pgusher/admin.h"

#define TERMINATED(field) (memchr((field), '\0', sizeof(field)) != NULL)

static void check_cmd(const struct admin_cmd *c, bool ok, const char *err, size_t errlen)
{
    FUZZ_CHECK(TERMINATED(c->text) && TERMINATED(c->arg) && TERMINATED(c->key));
    FUZZ_CHECK(TERMINATED(c->value));
    if (!ok && errlen > 1)
        FUZZ_CHECK(err[0] != '\0'); /* the client always gets a reason */
    if (ok && errlen > 0)
        FUZZ_CHECK(err[0] == '\0');
    if (c->empty) {
        FUZZ_CHECK(ok && c->name == NULL && c->text[0] == '\0');
        return;
    }
    /* The text is trimmed of blanks, and of ';' at its end. */
    size_t n = strlen(c->text);
    FUZZ_CHECK(n > 0 && !isspace((unsigned char)c->text[0]));
    FUZZ_CHECK(!isspace((unsigned char)c->text[n - 1]) && c->text[n - 1] != ';');
    if (!c->name) {
        FUZZ_CHECK(!ok && c->index == -1);
        return;
    }
    /* The name is the first word, in lower case, and indexes the table. */
    size_t nl = strlen(c->name);
    FUZZ_CHECK(c->index >= 0 && strncasecmp(c->text, c->name, nl) == 0);
    FUZZ_CHECK(c->text[nl] == '\0' || isspace((unsigned char)c->text[nl]));
    for (const char *p = c->name; *p; p++)
        FUZZ_CHECK(!isupper((unsigned char)*p));
    FUZZ_CHECK(c->readonly_ok == (strcmp(c->name, "show") == 0));
    if (ok && strcmp(c->name, "show") == 0)
        FUZZ_CHECK(c->show && c->show_index >= 0 && strcasecmp(c->arg, c->show) == 0);
    else
        FUZZ_CHECK(c->show == NULL || strcmp(c->name, "show") == 0);
    if (ok && strcmp(c->name, "set") == 0) {
        size_t kl = strlen(c->key);
        FUZZ_CHECK(kl > 0 && strchr(c->key, '=') == NULL);
        FUZZ_CHECK(!isspace((unsigned char)c->key[0]) && !isspace((unsigned char)c->key[kl - 1]));
    }
    if (c->client_id_ok)
        FUZZ_CHECK(strcmp(c->name, "kill_client") == 0 && c->arg[0] != '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t errlens[] = {0, 1, 16, 512};
    static struct admin_cmd cmd, upper; /* 3.5 KB each: not on the stack */
    if (size < 1)
        return 0;
    size_t errlen = errlens[data[0] & 3];
    char *err = errlen ? malloc(errlen) : NULL;
    char *query = fuzz_cstr(data + 1, size - 1);

    bool ok = admin_parse_command(query, &cmd, err, errlen);
    check_cmd(&cmd, ok, err, errlen);

    /* Commands and SHOW names are case-insensitive: upper case parses the same way. */
    for (char *p = query; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    bool ok_upper = admin_parse_command(query, &upper, err, errlen);
    check_cmd(&upper, ok_upper, err, errlen);
    FUZZ_CHECK(ok_upper == ok && upper.empty == cmd.empty && upper.index == cmd.index);
    FUZZ_CHECK(upper.name == cmd.name && upper.show_index == cmd.show_index);
    FUZZ_CHECK(upper.shutdown_mode == cmd.shutdown_mode);
    FUZZ_CHECK(upper.client_id_ok == cmd.client_id_ok && upper.client_id == cmd.client_id);
    FUZZ_CHECK(strcasecmp(upper.arg, cmd.arg) == 0 && strcasecmp(upper.key, cmd.key) == 0);

    free(query);
    free(err);
    return 0;
}
