/*
 * fuzz_config.c: a whole configuration load (config_load: ini + [pgbouncer] settings table +
 * [databases]/[users]/[peers] + the auth_file it names), from files in a private directory.
 * Checks a loaded snapshot's invariants and that every SHOW CONFIG value can be SET back
 * to itself (what the admin console's SET relies on).
 *
 * Input: the ini text, optionally a NUL and the text of users.txt (for auth_file = users.txt).
 * Every '/' is turned into '_', so all paths stay inside the private directory.
 */
#include "fuzz.h"

#include "pgusher/config.h"

static void check_snapshot(struct config *cf)
{
    char a[1024], b[1024], err[512];

    for (int i = 1; i < cf->nauthusers; i++)
        FUZZ_CHECK(strcmp(cf->authusers[i - 1].name, cf->authusers[i].name) < 0);
    for (int i = 0; i < cf->ndbs; i++) {
        FUZZ_CHECK(cf->dbs[i].name && cf->dbs[i].file && cf->dbs[i].line > 0);
        FUZZ_CHECK(config_find_database(cf, cf->dbs[i].name) == &cf->dbs[i]);
        for (int h = 0; h < cf->dbs[i].nhosts; h++)
            FUZZ_CHECK(cf->dbs[i].ports[h] >= 1 && cf->dbs[i].ports[h] <= 65535);
    }
    for (int i = 0; i < cf->nusers; i++)
        FUZZ_CHECK(config_find_user(cf, cf->users[i].name) == &cf->users[i]);
    for (int i = 0; i < cf->nauthusers; i++)
        FUZZ_CHECK(config_find_authuser(cf, cf->authusers[i].name) == &cf->authusers[i]);
    FUZZ_CHECK(cf->g.max_packet_size >= cf->g.pkt_buf);

    /* SET name = <its SHOW CONFIG value> is accepted and changes nothing. */
    for (size_t i = 0; i < config_nsettings; i++) {
        const struct cf_setting *s = &config_settings[i];
        FUZZ_CHECK(config_find_setting(s->name) != NULL);
        config_setting_value(cf, s, a, sizeof(a));
        if (strlen(a) + 1 >= sizeof(a))
            continue; /* truncated for display */
        if (!config_setting_set(cf, s, a, err, sizeof(err))) {
            fprintf(stderr, "SET %s = '%s' refused: %s\n", s->name, a, err);
            FUZZ_CHECK(!"SHOW CONFIG value not accepted by SET");
        }
        config_setting_value(cf, s, b, sizeof(b));
        if (strcmp(a, b) != 0) {
            fprintf(stderr, "SET %s = '%s' shows '%s'\n", s->name, a, b);
            FUZZ_CHECK(!"SET of a SHOW CONFIG value changed it");
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *ini, *users;
    size_t ini_len, users_len = 0;
    char err[1024];

    int back = fuzz_enter_workdir();
    fuzz_next_part(&data, &size, 0, &ini, &ini_len);
    if (!fuzz_next_part(&data, &size, 0, &users, &users_len))
        users = NULL;
    char *ini_text = fuzz_cstr(ini, ini_len);
    fuzz_confine_paths(ini_text, ini_len);
    fuzz_write_file("fuzz.ini", ini_text, ini_len);
    if (users) {
        char *users_text = fuzz_cstr(users, users_len);
        fuzz_confine_paths(users_text, users_len);
        fuzz_write_file("users.txt", users_text, strlen(users_text));
        free(users_text);
    } else {
        unlink("users.txt");
    }

    struct config *cf = config_load("fuzz.ini", err, sizeof(err));
    if (cf) {
        FUZZ_CHECK(err[0] == '\0');
        check_snapshot(cf);
        config_free(cf);
    } else {
        FUZZ_CHECK(err[0] != '\0');
    }
    free(ini_text);
    fuzz_leave_workdir(back);
    return 0;
}
