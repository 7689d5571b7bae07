/*
 * fuzz_hba.c: the auth_hba_file / auth_ident_file parser and the matcher. Checks that a
 * refusal says "NAME:LINE: ..." and that every rule of an accepted file is well formed and
 * can be matched against a few logins without harm.
 *
 * Input: byte 0 picks the login to match (bit 0: Unix socket, bit 1: TLS, bit 2: IPv6,
 * bit 3: replication, bit 7: also hand the parser an ident file); then the HBA text, a NUL,
 * the ident text. @files are resolved in a private directory holding users.txt.
 */
#include "fuzz.h"

#include "pgusher/hba.h"

#include <arpa/inet.h>
#include <netinet/in.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    if (size < 1)
        return 0;
    uint8_t opt = data[0];
    const uint8_t *rest = data + 1, *part;
    size_t rsize = size - 1, plen;
    char *hba_text = NULL, *ident_text = NULL;
    if (fuzz_next_part(&rest, &rsize, 0, &part, &plen))
        hba_text = fuzz_cstr(part, plen);
    else
        hba_text = fuzz_cstr(NULL, 0);
    if ((opt & 0x80) && fuzz_next_part(&rest, &rsize, 0, &part, &plen))
        ident_text = fuzz_cstr(part, plen);

    int back = fuzz_enter_workdir();
    static const char users[] = "alice, bob\n# c\n\"c d\"\n";
    fuzz_write_file("users.txt", users, sizeof(users) - 1);
    struct hba *h = hba_parse(hba_text, "hba.conf", ident_text, "ident.conf", err, sizeof(err));
    fuzz_leave_workdir(back);
    if (!h) {
        FUZZ_CHECK(strncmp(err, "hba.conf:", 9) == 0 || strncmp(err, "ident.conf:", 11) == 0 ||
                   strstr(err, "users.txt") != NULL || strstr(err, "out of memory") != NULL);
    } else {
        for (int i = 0; i < h->nrules; i++) {
            const struct hba_rule *r = &h->rules[i];
            FUZZ_CHECK(r->line > 0 && (i == 0 || r->line > h->rules[i - 1].line));
            FUZZ_CHECK(r->addr_all || r->af == AF_INET || r->af == AF_INET6);
            FUZZ_CHECK(strcmp(hba_method_name(r->method), "unknown") != 0);
            FUZZ_CHECK(r->type != HBA_LOCAL || r->addr_all);
        }
        struct sockaddr_storage ss = {0};
        if (opt & 4) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            a->sin6_family = AF_INET6;
            inet_pton(AF_INET6, "::ffff:127.0.0.1", &a->sin6_addr);
        } else {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            a->sin_family = AF_INET;
            inet_pton(AF_INET, "127.0.0.1", &a->sin_addr);
        }
        static const char *names[] = {"alice", "all", "c d", "testdb", ""};
        for (int i = 0; i < 5; i++) {
            struct hba_login lg = {.is_unix = opt & 1,
                                   .tls = (opt & 2) != 0,
                                   .replication = (opt & 8) != 0,
                                   .addr = (opt & 1) ? NULL : (const struct sockaddr *)&ss,
                                   .db = names[i],
                                   .user = names[(i + 1) % 5]};
            const struct hba_rule *r = hba_match(h, &lg);
            FUZZ_CHECK(!r || (r >= h->rules && r < h->rules + h->nrules));
            if (r && r->map)
                (void)hba_ident_allows(h, r->map, "root", lg.user);
        }
        hba_free(h);
    }
    free(hba_text);
    free(ident_text);
    return 0;
}
