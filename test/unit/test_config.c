/*
 * test_config.c: pins config_load: PgBouncer defaults, value parsing, [databases]/[users]/
 * [peers], the auth file, unimplemented-setting warnings and file:line errors.
 * Uses temp files under /tmp; never reads files outside the repository.
 */
#include "pgusher/config.h"
#include "pgusher/hba.h"
#include "pgusher/proto.h"

#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[64];
static char created[16][PATH_MAX];
static int ncreated;
static char err[1024];

static void setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/pgusher-cfg-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    ncreated = 0;
    err[0] = '\0';
}

static void teardown(void)
{
    for (int i = 0; i < ncreated; i++)
        unlink(created[i]);
    rmdir(tmpdir);
}

static const char *write_file(const char *name, const char *text)
{
    char *path = created[ncreated++];
    FILE *f;

    snprintf(path, PATH_MAX, "%s/%s", tmpdir, name);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* Writes text as t.ini and loads it; err holds the message on failure. */
static struct config *load(const char *text)
{
    return config_load(write_file("t.ini", text), err, sizeof(err));
}

static struct config *load_ok(const char *text)
{
    struct config *cf = load(text);
    ck_assert_msg(cf != NULL, "config_load failed: %s", err);
    return cf;
}

/* Loads text expecting failure; returns err with the temp directory replaced by "DIR". */
static const char *load_fail(const char *text)
{
    static char shown[1024];
    struct config *cf = load(text);
    const char *in = err;
    const char *at;
    size_t used = 0;

    ck_assert_msg(cf == NULL, "config_load unexpectedly succeeded");
    shown[0] = '\0';
    while ((at = strstr(in, tmpdir)) != NULL) {
        used += (size_t)snprintf(shown + used, sizeof(shown) - used, "%.*sDIR", (int)(at - in), in);
        in = at + strlen(tmpdir);
    }
    snprintf(shown + used, sizeof(shown) - used, "%s", in);
    return shown;
}

static const char *value_of(const struct config *cf, const char *name)
{
    static char buf[512];
    const struct cf_setting *s = config_find_setting(name);

    ck_assert_msg(s != NULL, "no setting %s", name);
    return config_setting_value(cf, s, buf, sizeof(buf));
}

/* ---- defaults and the table ---------------------------------------------------------- */

START_TEST(minimal_config_has_pgbouncer_defaults)
{
    struct config *cf = load_ok("[pgbouncer]\n");
    const struct cf_global *g = &cf->g;

    ck_assert_int_eq(g->listen_port, 6432);
    ck_assert_ptr_null(g->listen_addr);
    ck_assert_int_eq(g->listen_backlog, 128);
    ck_assert_str_eq(g->unix_socket_dir, "/tmp");
    ck_assert_int_eq(g->unix_socket_mode, 0777);
    ck_assert_int_eq(g->default_pool_size, 20);
    ck_assert_int_eq(g->max_client_conn, 100);
    ck_assert_int_eq(g->min_pool_size, 0);
    ck_assert_int_eq(g->reserve_pool_size, 0);
    ck_assert_int_eq(g->auth_type, AUTH_TYPE_MD5);
    ck_assert_int_eq(g->pool_mode, POOL_SESSION);
    ck_assert(g->query_wait_timeout == 120 * USEC_PER_SEC);
    ck_assert(g->server_lifetime == 3600 * USEC_PER_SEC);
    ck_assert(g->server_idle_timeout == 600 * USEC_PER_SEC);
    ck_assert(g->server_connect_timeout == 15 * USEC_PER_SEC);
    ck_assert(g->server_login_retry == 15 * USEC_PER_SEC);
    ck_assert(g->client_login_timeout == 60 * USEC_PER_SEC);
    ck_assert(g->reserve_pool_timeout == 5 * USEC_PER_SEC);
    ck_assert(g->server_check_delay == 30 * USEC_PER_SEC);
    ck_assert(g->query_timeout == 0);
    ck_assert_str_eq(g->server_reset_query, "DISCARD ALL");
    ck_assert_int_eq(g->server_check_query_disabled, 0);
    ck_assert_int_eq(g->pkt_buf, 4096);
    ck_assert_int_eq(g->max_packet_size, 2147483647);
    ck_assert_int_eq(g->sbuf_loopcnt, 5);
    ck_assert_int_eq(g->tcp_keepalive, 1);
    ck_assert_int_eq(g->tcp_defer_accept, 1);
    ck_assert_int_eq(g->log_connections, 1);
    ck_assert_int_eq(g->verbose, 0);
    ck_assert_int_eq(g->max_prepared_statements, 200);
    ck_assert_str_eq(g->track_extra_parameters, "IntervalStyle");
    ck_assert_str_eq(g->job_name, "pgbouncer");
    ck_assert_str_eq(g->service_name, "pgbouncer");
    ck_assert_str_eq(g->syslog_facility, "daemon");
    ck_assert_str_eq(g->server_tls_sslmode, "prefer");
    ck_assert_str_eq(g->client_tls_sslmode, "disable");
    ck_assert_ptr_null(g->auth_file);
    ck_assert_ptr_null(g->logfile);
    ck_assert_int_eq(cf->ndbs, 0);
    ck_assert_int_eq(cf->nunimplemented, 0);
    config_free(cf);
}
END_TEST

START_TEST(every_setting_renders_its_table_default)
{
    struct config *cf = load_ok("[pgbouncer]\n");

    for (size_t i = 0; i < config_nsettings; i++) {
        const struct cf_setting *s = &config_settings[i];
        char buf[512];
        const char *v = config_setting_value(cf, s, buf, sizeof(buf));
        if (strcmp(s->name, "verbose") == 0) /* PgBouncer shows no default, value 0 */
            ck_assert_str_eq(v, "0");
        else if (strcmp(s->name, "conffile") == 0) /* defaults to the file loaded */
            ck_assert_str_eq(v, cf->path);
        else
            ck_assert_msg(strcmp(v, s->default_str) == 0, "%s renders \"%s\", default \"%s\"",
                          s->name, v, s->default_str);
    }
    config_free(cf);
}
END_TEST

START_TEST(table_lists_every_pgbouncer_125_key_once)
{
    static const char *const some[] = {"admin_users",
                                       "auth_query",
                                       "client_tls13_ciphers",
                                       "dns_zone_check_period",
                                       "max_prepared_statements",
                                       "pool_idle_timeout",
                                       "query_wait_notify",
                                       "tcp_user_timeout",
                                       "transaction_timeout",
                                       "verbose"};

    /* PgBouncer 1.25's 100 keys plus pgusher's 7 health_check_* keys,
     * server_require_auth and metrics_listen. */
    ck_assert_int_eq((int)config_nsettings, 109);
    for (size_t i = 0; i < config_nsettings; i++)
        for (size_t j = i + 1; j < config_nsettings; j++)
            ck_assert_str_ne(config_settings[i].name, config_settings[j].name);
    for (size_t i = 0; i < sizeof(some) / sizeof(some[0]); i++)
        ck_assert_ptr_nonnull(config_find_setting(some[i]));
    ck_assert_str_eq(config_settings[0].name, "admin_users");
    ck_assert_str_eq(config_settings[config_nsettings - 1].name, "verbose");
}
END_TEST

START_TEST(table_defaults_and_flags_match_pgbouncer)
{
    ck_assert_str_eq(config_find_setting("server_check_query")->default_str, "<empty>");
    ck_assert_str_eq(config_find_setting("unix_socket_mode")->default_str, "0777");
    ck_assert_str_eq(config_find_setting("verbose")->default_str, "");
    ck_assert_str_eq(config_find_setting("server_reset_query")->default_str, "DISCARD ALL");
    ck_assert(!config_find_setting("listen_port")->reloadable);
    ck_assert(!config_find_setting("disable_pqexec")->reloadable);
    ck_assert(config_find_setting("pool_mode")->reloadable);
    ck_assert(config_find_setting("listen_addr")->implemented);
    ck_assert(config_find_setting("peer_id")->implemented);
    ck_assert(config_find_setting("client_tls_sslmode")->implemented);
    ck_assert(config_find_setting("auth_hba_file")->implemented);
    ck_assert(config_find_setting("auth_user")->implemented);
    ck_assert(!config_find_setting("auth_ldap_options")->implemented);
    ck_assert_int_eq(config_find_setting("server_lifetime")->type, CF_TIME);
    ck_assert_int_eq(config_find_setting("auth_type")->type, CF_ENUM_AUTH_TYPE);
}
END_TEST

START_TEST(find_setting_is_case_insensitive_and_knows_service_name)
{
    ck_assert_ptr_eq(config_find_setting("LISTEN_PORT"), config_find_setting("listen_port"));
    ck_assert_ptr_eq(config_find_setting("service_name"), config_find_setting("job_name"));
    ck_assert_ptr_null(config_find_setting("no_such_thing"));
}
END_TEST

START_TEST(conffile_defaults_to_the_loaded_path)
{
    struct config *cf = load_ok("[pgbouncer]\n");

    ck_assert_str_eq(cf->g.conffile, cf->path);
    ck_assert_ptr_nonnull(strstr(cf->path, "/t.ini"));
    config_free(cf);
}
END_TEST

/* ---- value parsing ----------------------------------------------------------------- */

START_TEST(settings_are_applied)
{
    struct config *cf = load_ok("[pgbouncer]\n"
                                "listen_addr = 127.0.0.1, ::1\n"
                                "listen_port = 7432\n"
                                "pool_mode = transaction\n"
                                "auth_type = scram-sha-256\n"
                                "default_pool_size = 50\n"
                                "admin_users = admin, root\n"
                                "ignore_startup_parameters = extra_float_digits,options\n"
                                "server_reset_query = DISCARD ALL; SELECT 1\n");

    ck_assert_str_eq(cf->g.listen_addr, "127.0.0.1, ::1");
    ck_assert_int_eq(cf->g.listen_port, 7432);
    ck_assert_int_eq(cf->g.pool_mode, POOL_TRANSACTION);
    ck_assert_int_eq(cf->g.auth_type, AUTH_TYPE_SCRAM);
    ck_assert_int_eq(cf->g.default_pool_size, 50);
    ck_assert_str_eq(cf->g.admin_users, "admin, root");
    ck_assert_str_eq(cf->g.ignore_startup_parameters, "extra_float_digits,options");
    ck_assert_str_eq(cf->g.server_reset_query, "DISCARD ALL; SELECT 1");
    ck_assert_str_eq(value_of(cf, "pool_mode"), "transaction");
    ck_assert_str_eq(value_of(cf, "auth_type"), "scram-sha-256");
    config_free(cf);
}
END_TEST

START_TEST(keys_in_pgbouncer_section_are_case_insensitive)
{
    struct config *cf = load_ok("[PgBouncer]\nListen_Port = 7000\nPOOL_MODE = Statement\n");

    ck_assert_int_eq(cf->g.listen_port, 7000);
    ck_assert_int_eq(cf->g.pool_mode, POOL_STATEMENT);
    config_free(cf);
}
END_TEST

START_TEST(later_assignment_wins)
{
    struct config *cf = load_ok("[pgbouncer]\nlogfile = /a.log\nlogfile = /b.log\n");

    ck_assert_str_eq(cf->g.logfile, "/b.log");
    config_free(cf);
}
END_TEST

START_TEST(empty_string_value_unsets_a_string)
{
    struct config *cf = load_ok("[pgbouncer]\nunix_socket_dir =\nserver_reset_query =\n");

    ck_assert_ptr_null(cf->g.unix_socket_dir);
    ck_assert_ptr_null(cf->g.server_reset_query);
    ck_assert_str_eq(value_of(cf, "unix_socket_dir"), "");
    config_free(cf);
}
END_TEST

START_TEST(time_fraction_is_stored_as_usec_and_rendered_back)
{
    struct config *cf = load_ok("[pgbouncer]\nserver_check_delay = 0.5\nquery_timeout = 1.25\n"
                                "server_lifetime = 86400\nclient_idle_timeout=0\n");

    ck_assert(cf->g.server_check_delay == 500000);
    ck_assert(cf->g.query_timeout == 1250000);
    ck_assert_str_eq(value_of(cf, "server_check_delay"), "0.5");
    ck_assert_str_eq(value_of(cf, "query_timeout"), "1.25");
    ck_assert_str_eq(value_of(cf, "server_lifetime"), "86400");
    ck_assert_str_eq(value_of(cf, "client_idle_timeout"), "0");
    config_free(cf);
}
END_TEST

START_TEST(tcp_user_timeout_is_in_milliseconds)
{
    struct config *cf = load_ok("[pgbouncer]\ntcp_user_timeout = 2500\n");

    ck_assert(cf->g.tcp_user_timeout == 2500 * 1000);
    ck_assert_str_eq(value_of(cf, "tcp_user_timeout"), "2500");
    config_free(cf);
}
END_TEST

START_TEST(time_with_unit_suffix_is_rejected_like_pgbouncer)
{
    ck_assert_str_eq(load_fail("[pgbouncer]\nquery_timeout = 5s\n"),
                     "DIR/t.ini:2: invalid value \"5s\" for parameter query_timeout: expected a "
                     "non-negative number of seconds");
}
END_TEST

START_TEST(negative_time_is_error)
{
    ck_assert_ptr_nonnull(strstr(load_fail("[pgbouncer]\n\nserver_lifetime = -1\n"),
                                 "t.ini:3: invalid value \"-1\" for parameter server_lifetime"));
}
END_TEST

START_TEST(booleans_accept_words)
{
    struct config *cf = load_ok("[pgbouncer]\nlog_connections = no\nlog_disconnections = off\n"
                                "log_pooler_errors = false\nserver_round_robin = yes\n"
                                "so_reuseport = on\nserver_reset_query_always = TRUE\n"
                                "application_name_add_host = 1\ntcp_keepalive = 0\n");

    ck_assert_int_eq(cf->g.log_connections, 0);
    ck_assert_int_eq(cf->g.log_disconnections, 0);
    ck_assert_int_eq(cf->g.log_pooler_errors, 0);
    ck_assert_int_eq(cf->g.server_round_robin, 1);
    ck_assert_int_eq(cf->g.so_reuseport, 1);
    ck_assert_int_eq(cf->g.server_reset_query_always, 1);
    ck_assert_int_eq(cf->g.application_name_add_host, 1);
    ck_assert_int_eq(cf->g.tcp_keepalive, 0);
    ck_assert_str_eq(value_of(cf, "server_round_robin"), "1");
    config_free(cf);
}
END_TEST

START_TEST(invalid_boolean_is_error_with_file_and_line)
{
    ck_assert_str_eq(load_fail("[pgbouncer]\nlog_stats = maybe\n"),
                     "DIR/t.ini:2: invalid value \"maybe\" for parameter log_stats: expected a "
                     "boolean (0/1, yes/no, on/off, true/false)");
}
END_TEST

START_TEST(non_numeric_integer_is_error)
{
    ck_assert_str_eq(load_fail("[pgbouncer]\nmax_client_conn = lots\n"),
                     "DIR/t.ini:2: invalid value \"lots\" for parameter max_client_conn: expected "
                     "a non-negative integer");
}
END_TEST

START_TEST(negative_integer_is_error)
{
    ck_assert_ptr_nonnull(strstr(load_fail("[pgbouncer]\ndefault_pool_size = -5\n"),
                                 "t.ini:2: invalid value \"-5\" for parameter default_pool_size"));
}
END_TEST

START_TEST(integer_overflow_is_error)
{
    ck_assert_ptr_nonnull(strstr(load_fail("[pgbouncer]\nmax_packet_size = 99999999999\n"),
                                 "t.ini:2: invalid value \"99999999999\""));
}
END_TEST

START_TEST(listen_port_out_of_range_is_error)
{
    ck_assert_str_eq(load_fail("[pgbouncer]\nlisten_port = 70000\n"),
                     "DIR/t.ini:2: invalid value \"70000\" for parameter listen_port: must be "
                     "between 1 and 65535");
    ck_assert_ptr_nonnull(strstr(load_fail("[pgbouncer]\nlisten_port = 0\n"), "between 1"));
}
END_TEST

START_TEST(pkt_buf_too_small_is_error)
{
    ck_assert_ptr_nonnull(
        strstr(load_fail("[pgbouncer]\npkt_buf = 100\n"), "pkt_buf: must be at least 512"));
}
END_TEST

START_TEST(max_packet_size_below_pkt_buf_is_error)
{
    ck_assert_str_eq(load_fail("[pgbouncer]\nmax_packet_size = 1000\n"),
                     "DIR/t.ini:2: max_packet_size (1000) must not be smaller than pkt_buf "
                     "(4096)");
}
END_TEST

START_TEST(peer_id_above_limit_is_error)
{
    ck_assert_ptr_nonnull(strstr(load_fail("[pgbouncer]\npeer_id = 16384\n"),
                                 "peer_id: must be between 0 and 16383"));
}
END_TEST

START_TEST(unix_socket_mode_is_octal)
{
    struct config *cf = load_ok("[pgbouncer]\nunix_socket_mode = 0700\n");

    ck_assert_int_eq(cf->g.unix_socket_mode, 0700);
    ck_assert_str_eq(value_of(cf, "unix_socket_mode"), "0700");
    config_free(cf);
}
END_TEST

START_TEST(bad_pool_mode_is_error_listing_choices)
{
    ck_assert_str_eq(load_fail("[pgbouncer]\npool_mode = sometimes\n"),
                     "DIR/t.ini:2: invalid value \"sometimes\" for parameter pool_mode: expected "
                     "one of session, transaction, statement");
}
END_TEST

START_TEST(every_auth_type_is_accepted_including_plain)
{
    static const char *const names[] = {"trust", "plain", "md5", "scram-sha-256", "any",
                                        "cert",  "hba",   "pam", "ldap"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char text[128];
        struct config *cf;

        /* hba needs its file (read into the snapshot): an empty one will do. */
        char hba[] = "/tmp/pgusher-hba-XXXXXX";
        bool is_hba = strcmp(names[i], "hba") == 0;
        if (is_hba) {
            int fd = mkstemp(hba);
            ck_assert_int_ge(fd, 0);
            close(fd);
        }
        snprintf(text, sizeof(text), "[pgbouncer]\nauth_type = %s\n%s%s\n", names[i],
                 is_hba ? "auth_hba_file = " : "", is_hba ? hba : "");
        cf = load_ok(text);
        if (is_hba) {
            ck_assert_ptr_nonnull(cf->hba);
            unlink(hba);
        }
        ck_assert_str_eq(config_auth_type_name(cf->g.auth_type), names[i]);
        ck_assert_str_eq(value_of(cf, "auth_type"), names[i]);
        config_free(cf);
    }
    ck_assert_int_eq(AUTH_TYPE_PLAIN, 1);
}
END_TEST

START_TEST(hba_files_are_part_of_the_snapshot)
{
    char text[1024];
    const char *hba = write_file("hba.conf", "local all all peer map=m\nhost all all all md5\n");
    const char *ident = write_file("ident.conf", "m root u1\n");
    snprintf(text, sizeof(text),
             "[pgbouncer]\nauth_type = hba\nauth_hba_file = %s\nauth_ident_file = %s\n", hba,
             ident);
    struct config *cf = load_ok(text);
    ck_assert_ptr_nonnull(cf->hba);
    ck_assert_int_eq(cf->hba->nrules, 2);
    ck_assert_int_eq(cf->hba->nidents, 1);
    config_free(cf);

    /* Not auth_type = hba: the files are not read at all. */
    snprintf(text, sizeof(text), "[pgbouncer]\nauth_type = md5\nauth_hba_file = /nonexistent\n");
    cf = load_ok(text);
    ck_assert_ptr_null(cf->hba);
    config_free(cf);

    write_file("hba.conf", "host all all all md5\nhost all all all gss\n");
    snprintf(text, sizeof(text), "[pgbouncer]\nauth_type = hba\nauth_hba_file = %s\n", hba);
    ck_assert_str_eq(load_fail(text), "DIR/hba.conf:2: unsupported authentication method \"gss\"");
    ck_assert_str_eq(load_fail("[pgbouncer]\nauth_type = hba\n"),
                     "DIR/t.ini: auth_type = hba needs auth_hba_file");
}
END_TEST

START_TEST(server_require_auth_defaults_to_every_method)
{
    struct config *cf = load_ok("[pgbouncer]\n");
    ck_assert_uint_eq(cf->g.server_require_auth_mask, PROTO_METHODS_ALL);
    ck_assert_str_eq(value_of(cf, "server_require_auth"), "");
    config_free(cf);
}
END_TEST

START_TEST(server_require_auth_list_and_negation_are_parsed)
{
    struct config *cf = load_ok("[pgbouncer]\nserver_require_auth = scram-sha-256,none\n");
    ck_assert_uint_eq(cf->g.server_require_auth_mask, PROTO_METHOD_SCRAM | PROTO_METHOD_NONE);
    ck_assert_str_eq(value_of(cf, "server_require_auth"), "scram-sha-256,none");
    config_free(cf);
    cf = load_ok("[pgbouncer]\nserver_require_auth = !password,!md5\n");
    ck_assert_uint_eq(cf->g.server_require_auth_mask,
                      PROTO_METHODS_ALL & ~(PROTO_METHOD_PASSWORD | PROTO_METHOD_MD5));
    config_free(cf);
}
END_TEST

START_TEST(bad_server_require_auth_is_error_with_file_and_line)
{
    ck_assert_str_eq(load_fail("[pgbouncer]\n\nserver_require_auth = scram-sha-256,!md5\n"),
                     "DIR/t.ini:3: invalid value \"scram-sha-256,!md5\" for parameter "
                     "server_require_auth: negated (!) and plain methods cannot be mixed");
    ck_assert_ptr_nonnull(strstr(load_fail("[pgbouncer]\nserver_require_auth = kerberos\n"),
                                 "t.ini:2: invalid value \"kerberos\" for parameter "
                                 "server_require_auth: unknown method \"kerberos\""));
}
END_TEST

START_TEST(metrics_listen_takes_host_and_port)
{
    struct config *cf = load_ok("[pgbouncer]\n");
    ck_assert_ptr_null(cf->g.metrics_listen);
    config_free(cf);
    cf = load_ok("[pgbouncer]\nmetrics_listen = 127.0.0.1:9127\n");
    ck_assert_str_eq(cf->g.metrics_listen, "127.0.0.1:9127");
    config_free(cf);
    cf = load_ok("[pgbouncer]\nmetrics_listen = [::1]:9127\n");
    config_free(cf);
    ck_assert_ptr_nonnull(cf = load_ok("[pgbouncer]\nmetrics_listen =\n"));
    config_free(cf);
}
END_TEST

START_TEST(bad_metrics_listen_is_error_with_file_and_line)
{
    static const char *const bad[] = {
        "9127",           "127.0.0.1", "127.0.0.1:", "127.0.0.1:0",  "127.0.0.1:65536",
        "localhost:9127", "::1:9127",  "[::1:9127",  "127.0.0.1:91x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[128], want[160];
        snprintf(text, sizeof(text), "[pgbouncer]\nmetrics_listen = %s\n", bad[i]);
        snprintf(want, sizeof(want), "t.ini:2: invalid value \"%s\" for parameter metrics_listen",
                 bad[i]);
        ck_assert_msg(strstr(load_fail(text), want) != NULL, "%s accepted or wrong error", bad[i]);
    }
}
END_TEST

START_TEST(bad_auth_type_is_error)
{
    ck_assert_ptr_nonnull(strstr(load_fail("[pgbouncer]\nauth_type = crypt\n"),
                                 "t.ini:2: invalid value \"crypt\" for parameter auth_type"));
}
END_TEST

START_TEST(bad_tls_sslmode_is_error)
{
    ck_assert_ptr_nonnull(strstr(load_fail("[pgbouncer]\nserver_tls_sslmode = always\n"),
                                 "t.ini:2: invalid value \"always\" for parameter "
                                 "server_tls_sslmode"));
}
END_TEST

START_TEST(server_check_query_empty_disables_and_marker_means_empty_query)
{
    struct config *cf = load_ok("[pgbouncer]\nserver_check_query =\n");

    ck_assert_int_eq(cf->g.server_check_query_disabled, 1);
    ck_assert_str_eq(value_of(cf, "server_check_query"), "");
    config_free(cf);

    cf = load_ok("[pgbouncer]\nserver_check_query = <empty>\n");
    ck_assert_int_eq(cf->g.server_check_query_disabled, 0);
    ck_assert(cf->g.server_check_query == NULL || cf->g.server_check_query[0] == '\0');
    ck_assert_str_eq(value_of(cf, "server_check_query"), "<empty>");
    config_free(cf);

    cf = load_ok("[pgbouncer]\nserver_check_query = select 1\n");
    ck_assert_str_eq(cf->g.server_check_query, "select 1");
    ck_assert_str_eq(value_of(cf, "server_check_query"), "select 1");
    config_free(cf);
}
END_TEST

START_TEST(service_name_is_an_alias_of_job_name)
{
    struct config *cf = load_ok("[pgbouncer]\nservice_name = pool1\n");

    ck_assert_str_eq(cf->g.job_name, "pool1");
    ck_assert_str_eq(cf->g.service_name, "pool1");
    config_free(cf);
}
END_TEST

START_TEST(setting_set_parses_into_a_snapshot)
{
    struct config *cf = load_ok("[pgbouncer]\n");
    char e[256];

    ck_assert(config_setting_set(cf, config_find_setting("query_timeout"), "2.5", e, sizeof(e)));
    ck_assert(cf->g.query_timeout == 2500000);
    ck_assert(!config_setting_set(cf, config_find_setting("pool_mode"), "x", e, sizeof(e)));
    ck_assert_ptr_nonnull(strstr(e, "invalid value \"x\" for parameter pool_mode"));
    config_free(cf);
}
END_TEST

/* ---- structure errors -------------------------------------------------------------- */

START_TEST(unknown_parameter_is_error_with_file_and_line)
{
    ck_assert_str_eq(load_fail("[pgbouncer]\nlisten_port = 6432\nbogus = 1\n"),
                     "DIR/t.ini:3: unknown parameter \"bogus\"");
}
END_TEST

START_TEST(missing_pgbouncer_section_is_error)
{
    ck_assert_str_eq(load_fail("[databases]\nfoo = host=x\n"), "DIR/t.ini: no [pgbouncer] section");
}
END_TEST

START_TEST(unknown_section_is_error)
{
    ck_assert_str_eq(load_fail("[pgbouncer]\n[pgbouncr]\n"),
                     "DIR/t.ini:2: unknown section [pgbouncr] (expected [pgbouncer], "
                     "[databases], [users] or [peers])");
}
END_TEST

START_TEST(parameter_outside_any_section_is_error)
{
    ck_assert_str_eq(load_fail("listen_port = 1\n[pgbouncer]\n"),
                     "DIR/t.ini:1: parameter \"listen_port\" outside of any section");
}
END_TEST

START_TEST(missing_config_file_is_error)
{
    struct config *cf = config_load("/nonexistent/pgusher.ini", err, sizeof(err));

    ck_assert_ptr_null(cf);
    ck_assert_str_eq(err, "/nonexistent/pgusher.ini: cannot read configuration file: No such file "
                          "or directory");
}
END_TEST

START_TEST(free_accepts_null)
{
    config_free(NULL);
}
END_TEST

START_TEST(list_settings_split_at_commas_and_spaces)
{
    const char *cur = " a,b  c,,\td ", *item;
    size_t len;
    const char *want[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++) {
        item = config_list_next(&cur, &len);
        ck_assert_ptr_nonnull(item);
        ck_assert_int_eq((int)len, 1);
        ck_assert_int_eq(item[0], want[i][0]);
    }
    ck_assert_ptr_null(config_list_next(&cur, &len));
    ck_assert(config_list_has("postgres, admin", "admin", false));
    ck_assert(!config_list_has("postgres, admin", "Admin", false));
    ck_assert(config_list_has("extra_float_digits,Options", "options", true));
    ck_assert(!config_list_has("adminx", "admin", false));
    ck_assert(!config_list_has(NULL, "admin", false));
    ck_assert(!config_list_has("", "admin", true));
}
END_TEST

/* ---- unimplemented settings -------------------------------------------------------- */

START_TEST(unimplemented_settings_changed_from_default_are_listed)
{
    struct config *cf = load_ok("[pgbouncer]\n"
                                "auth_ldap_options = x\n"
                                "pool_idle_timeout = 30\n"
                                "dns_max_ttl = 15\n"            /* same as default */
                                "server_tls_sslmode = prefer\n" /* same as default */
                                "listen_port = 7000\n");        /* implemented */

    ck_assert_int_eq(cf->nunimplemented, 2);
    ck_assert_str_eq(cf->unimplemented[0], "auth_ldap_options");
    ck_assert_str_eq(cf->unimplemented[1], "pool_idle_timeout");
    config_free(cf);
}
END_TEST

START_TEST(unimplemented_setting_equal_to_default_in_other_spelling_is_not_listed)
{
    struct config *cf =
        load_ok("[pgbouncer]\ndisable_pqexec = off\nautodb_idle_timeout = 3600.0\n");

    ck_assert_int_eq(cf->nunimplemented, 0);
    config_free(cf);
}
END_TEST

START_TEST(unimplemented_setting_is_listed_once)
{
    struct config *cf =
        load_ok("[pgbouncer]\nauth_ldap_options = a\nauth_ldap_options = b\n");

    ck_assert_int_eq(cf->nunimplemented, 1);
    ck_assert_str_eq(cf->unimplemented[0], "auth_ldap_options");
    config_free(cf);
}
END_TEST

/* ---- [databases] ------------------------------------------------------------------- */

START_TEST(database_entry_is_parsed)
{
    struct config *cf =
        load_ok("[databases]\n"
                "app = host=127.0.0.1 port=5433 dbname=real user=u password='p w' pool_size=7 "
                "min_pool_size=1 reserve_pool_size=2 pool_mode=transaction max_db_connections=30 "
                "max_db_client_connections=300 server_lifetime=1200 client_encoding=UTF8 "
                "datestyle=ISO timezone=UTC application_name=x connect_query='SELECT 1' "
                "auth_user=au auth_dbname=adb auth_query='SELECT usename, passwd FROM pg_shadow "
                "WHERE usename=$1'\n"
                "[pgbouncer]\n");
    const struct cf_database *db = config_find_database(cf, "app");

    ck_assert_ptr_nonnull(db);
    ck_assert_str_eq(db->dbname, "real");
    ck_assert_int_eq(db->nhosts, 1);
    ck_assert_str_eq(db->hosts[0], "127.0.0.1");
    ck_assert_int_eq(db->ports[0], 5433);
    ck_assert_int_eq(db->port, 5433);
    ck_assert_str_eq(db->user, "u");
    ck_assert_str_eq(db->password, "p w");
    ck_assert_int_eq(db->pool_size, 7);
    ck_assert_int_eq(db->min_pool_size, 1);
    ck_assert_int_eq(db->reserve_pool_size, 2);
    ck_assert_int_eq(db->pool_mode, POOL_TRANSACTION);
    ck_assert_int_eq(db->max_db_connections, 30);
    ck_assert_int_eq(db->max_db_client_connections, 300);
    ck_assert_int_eq(db->server_lifetime_sec, 1200);
    ck_assert_str_eq(db->client_encoding, "UTF8");
    ck_assert_str_eq(db->datestyle, "ISO");
    ck_assert_str_eq(db->timezone, "UTC");
    ck_assert_str_eq(db->application_name, "x");
    ck_assert_str_eq(db->connect_query, "SELECT 1");
    ck_assert_str_eq(db->auth_user, "au");
    ck_assert_str_eq(db->auth_dbname, "adb");
    ck_assert_str_eq(db->auth_query, "SELECT usename, passwd FROM pg_shadow WHERE usename=$1");
    ck_assert_int_eq(db->line, 2);
    ck_assert_ptr_nonnull(strstr(db->file, "t.ini"));
    ck_assert_ptr_nonnull(strstr(db->connstr, "host=127.0.0.1"));
    config_free(cf);
}
END_TEST

START_TEST(database_defaults_are_unset)
{
    struct config *cf = load_ok("[databases]\nfoodb =\n[pgbouncer]\n");
    const struct cf_database *db = config_find_database(cf, "foodb");

    ck_assert_ptr_nonnull(db);
    ck_assert_ptr_null(db->dbname);
    ck_assert_int_eq(db->nhosts, 0);
    ck_assert_int_eq(db->port, 5432);
    ck_assert_ptr_null(db->user);
    ck_assert_int_eq(db->pool_size, CF_UNSET);
    ck_assert_int_eq(db->min_pool_size, CF_UNSET);
    ck_assert_int_eq(db->reserve_pool_size, CF_UNSET);
    ck_assert_int_eq(db->pool_mode, CF_UNSET);
    ck_assert_int_eq(db->max_db_connections, CF_UNSET);
    ck_assert_int_eq(db->max_db_client_connections, CF_UNSET);
    ck_assert_int_eq(db->server_lifetime_sec, CF_UNSET);
    ck_assert_int_eq(db->load_balance_hosts, CF_UNSET);
    ck_assert_int_eq(db->target_session_attrs, CF_UNSET);
    ck_assert(db->max_replica_lag == CF_UNSET);
    ck_assert(db->query_wait_timeout == CF_UNSET);
    config_free(cf);
}
END_TEST

START_TEST(port_without_host_applies_to_default_socket)
{
    struct config *cf = load_ok("[databases]\nfoodb = port=5555\n[pgbouncer]\n");
    const struct cf_database *db = config_find_database(cf, "foodb");

    ck_assert_int_eq(db->nhosts, 0);
    ck_assert_int_eq(db->port, 5555);
    config_free(cf);
}
END_TEST

START_TEST(comma_host_list_with_one_port_repeats_it)
{
    struct config *cf =
        load_ok("[databases]\nreads = host=127.0.0.2,127.0.0.3,/var/run/pg port=6000\n"
                "[pgbouncer]\n");
    const struct cf_database *db = config_find_database(cf, "reads");

    ck_assert_int_eq(db->nhosts, 3);
    ck_assert_str_eq(db->hosts[0], "127.0.0.2");
    ck_assert_str_eq(db->hosts[1], "127.0.0.3");
    ck_assert_str_eq(db->hosts[2], "/var/run/pg");
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(db->ports[i], 6000);
    config_free(cf);
}
END_TEST

START_TEST(comma_host_list_without_port_uses_5432)
{
    struct config *cf = load_ok("[databases]\nd = host=a,b\n[pgbouncer]\n");
    const struct cf_database *db = config_find_database(cf, "d");

    ck_assert_int_eq(db->nhosts, 2);
    ck_assert_int_eq(db->ports[0], 5432);
    ck_assert_int_eq(db->ports[1], 5432);
    config_free(cf);
}
END_TEST

START_TEST(port_list_gives_one_port_per_host)
{
    struct config *cf =
        load_ok("[databases]\nd = host=pg1,pg2,pg3 port=5432,5433,5434\n[pgbouncer]\n");
    const struct cf_database *db = config_find_database(cf, "d");

    ck_assert_int_eq(db->nhosts, 3);
    ck_assert_int_eq(db->ports[0], 5432);
    ck_assert_int_eq(db->ports[1], 5433);
    ck_assert_int_eq(db->ports[2], 5434);
    config_free(cf);
}
END_TEST

START_TEST(quoted_host_list_may_contain_spaces)
{
    struct config *cf = load_ok("[databases]\nd = host='a, b' port='1, 2'\n[pgbouncer]\n");
    const struct cf_database *db = config_find_database(cf, "d");

    ck_assert_int_eq(db->nhosts, 2);
    ck_assert_str_eq(db->hosts[1], "b");
    ck_assert_int_eq(db->ports[1], 2);
    config_free(cf);
}
END_TEST

START_TEST(port_list_count_mismatch_is_error_with_file_and_line)
{
    ck_assert_str_eq(load_fail("[pgbouncer]\n[databases]\nd = host=a,b,c port=1,2\n"),
                     "DIR/t.ini:3: database \"d\": port list has 2 entries but host list has 3");
}
END_TEST

START_TEST(port_list_without_host_is_error)
{
    ck_assert_str_eq(load_fail("[pgbouncer]\n[databases]\nd = port=1,2\n"),
                     "DIR/t.ini:3: database \"d\": port list has 2 entries but no host is given");
}
END_TEST

START_TEST(invalid_port_is_error)
{
    ck_assert_str_eq(load_fail("[pgbouncer]\n[databases]\nd = host=a port=99999\n"),
                     "DIR/t.ini:3: database \"d\": invalid port \"99999\": expected a number from "
                     "1 to 65535");
    ck_assert_ptr_nonnull(
        strstr(load_fail("[pgbouncer]\n[databases]\nd = host=a port=x\n"), "invalid port \"x\""));
}
END_TEST

START_TEST(empty_host_in_list_is_error)
{
    ck_assert_str_eq(load_fail("[pgbouncer]\n[databases]\nd = host=a,,b\n"),
                     "DIR/t.ini:3: database \"d\": empty entry in host list \"a,,b\"");
}
END_TEST

START_TEST(unknown_database_parameter_is_error_with_file_and_line)
{
    ck_assert_str_eq(load_fail("[pgbouncer]\n[databases]\n\nd = host=a hots=b\n"),
                     "DIR/t.ini:4: database \"d\": unknown parameter \"hots\"");
}
END_TEST

START_TEST(connstr_syntax_error_is_reported_with_file_and_line)
{
    ck_assert_str_eq(load_fail("[pgbouncer]\n[databases]\nd = host='a\n"),
                     "DIR/t.ini:3: database \"d\": syntax error: unterminated quoted value for "
                     "\"host\"");
}
END_TEST

START_TEST(bad_database_pool_size_is_error)
{
    ck_assert_str_eq(load_fail("[pgbouncer]\n[databases]\nd = pool_size=-1\n"),
                     "DIR/t.ini:3: database \"d\": invalid value \"-1\" for pool_size: expected a "
                     "non-negative integer");
}
END_TEST

START_TEST(reserve_pool_is_an_alias_of_reserve_pool_size)
{
    struct config *cf = load_ok("[databases]\nd = reserve_pool=4\n[pgbouncer]\n");

    ck_assert_int_eq(config_find_database(cf, "d")->reserve_pool_size, 4);
    config_free(cf);
}
END_TEST

START_TEST(pgbouncer_database_name_is_reserved)
{
    ck_assert_str_eq(load_fail("[pgbouncer]\n[databases]\npgbouncer = host=x\n"),
                     "DIR/t.ini:3: database name \"pgbouncer\" is reserved for the admin console");
}
END_TEST

START_TEST(quoted_database_name_keeps_case_and_spaces)
{
    struct config *cf =
        load_ok("[databases]\n\"My DB\" = host=x\nMixedCase = host=y\n[pgbouncer]\n");

    ck_assert_ptr_nonnull(config_find_database(cf, "My DB"));
    ck_assert_ptr_nonnull(config_find_database(cf, "MixedCase"));
    ck_assert_ptr_null(config_find_database(cf, "mixedcase"));
    config_free(cf);
}
END_TEST

START_TEST(fallback_entry_is_stored_but_not_used_by_find)
{
    struct config *cf = load_ok("[databases]\n* = host=fallback\n[pgbouncer]\n");

    ck_assert_ptr_nonnull(config_find_database(cf, "*"));
    ck_assert_ptr_null(config_find_database(cf, "other"));
    ck_assert_str_eq(config_find_database(cf, "*")->hosts[0], "fallback");
    config_free(cf);
}
END_TEST

START_TEST(later_database_definition_replaces_earlier)
{
    struct config *cf = load_ok("[databases]\nd = host=a\nd = host=b\n[pgbouncer]\n");

    ck_assert_int_eq(cf->ndbs, 1);
    ck_assert_str_eq(config_find_database(cf, "d")->hosts[0], "b");
    ck_assert_int_eq(config_find_database(cf, "d")->line, 3);
    config_free(cf);
}
END_TEST

START_TEST(load_balance_hosts_values_are_accepted)
{
    struct config *cf = load_ok("[databases]\n"
                                "a = host=x,y load_balance_hosts=round-robin\n"
                                "b = host=x,y load_balance_hosts=disable\n"
                                "c = host=x,y load_balance_hosts=random\n"
                                "d = host=x,y load_balance_hosts=least-connections\n"
                                "[pgbouncer]\n");

    ck_assert_int_eq(config_find_database(cf, "a")->load_balance_hosts, LB_ROUND_ROBIN);
    ck_assert_int_eq(config_find_database(cf, "b")->load_balance_hosts, LB_DISABLE);
    ck_assert_int_eq(config_find_database(cf, "c")->load_balance_hosts, LB_RANDOM);
    ck_assert_int_eq(config_find_database(cf, "d")->load_balance_hosts, LB_LEAST_CONNECTIONS);
    ck_assert_str_eq(config_lb_policy_name(LB_LEAST_CONNECTIONS), "least-connections");
    config_free(cf);
}
END_TEST

START_TEST(bad_load_balance_hosts_is_error)
{
    ck_assert_str_eq(
        load_fail("[pgbouncer]\n[databases]\nd = load_balance_hosts=sticky\n"),
        "DIR/t.ini:3: database \"d\": invalid value \"sticky\" for load_balance_hosts: "
        "expected one of round-robin, disable, random, least-connections");
}
END_TEST

START_TEST(target_session_attrs_and_lag_are_parsed)
{
    struct config *cf = load_ok("[databases]\n"
                                "w = host=a,b target_session_attrs=read-write\n"
                                "r = host=a,b target_session_attrs=prefer-standby "
                                "max_replica_lag=2.5 query_wait_timeout=3\n"
                                "[pgbouncer]\n");

    ck_assert_int_eq(config_find_database(cf, "w")->target_session_attrs, TSA_READ_WRITE);
    ck_assert_int_eq(config_find_database(cf, "r")->target_session_attrs, TSA_PREFER_STANDBY);
    ck_assert(config_find_database(cf, "r")->max_replica_lag == 2500000);
    ck_assert(config_find_database(cf, "r")->query_wait_timeout == 3 * USEC_PER_SEC);
    ck_assert_str_eq(config_tsa_name(TSA_READ_ONLY), "read-only");
    config_free(cf);
}
END_TEST

START_TEST(bad_target_session_attrs_is_error)
{
    ck_assert_ptr_nonnull(strstr(load_fail("[pgbouncer]\n[databases]\nd = "
                                           "target_session_attrs=master\n"),
                                 "t.ini:3: database \"d\": invalid value \"master\" for "
                                 "target_session_attrs"));
}
END_TEST

START_TEST(parse_database_can_be_called_directly)
{
    struct cf_database db;
    char e[256];

    ck_assert(config_parse_database("auto", "host=h port=1", &db, e, sizeof(e)));
    ck_assert_str_eq(db.name, "auto");
    ck_assert_str_eq(db.hosts[0], "h");
    ck_assert_int_eq(db.ports[0], 1);
    ck_assert_str_eq(db.connstr, "host=h port=1");
    config_free_database(&db);

    ck_assert(!config_parse_database("auto", "nope=1", &db, e, sizeof(e)));
    ck_assert_str_eq(e, "unknown parameter \"nope\"");
    ck_assert_ptr_null(db.name);
    config_free_database(&db); /* harmless after failure */
}
END_TEST

START_TEST(host_list_up_to_the_limit_is_accepted_and_a_longer_one_refused)
{
    struct cf_database db;
    char e[256], connstr[CF_MAX_HOSTS * 16 + 64];
    size_t n = (size_t)snprintf(connstr, sizeof(connstr), "port=5432 host=");
    for (int i = 0; i < CF_MAX_HOSTS; i++)
        n += (size_t)snprintf(connstr + n, sizeof(connstr) - n, "%s127.0.%d.%d", i ? "," : "",
                              i / 200, i % 200 + 1);
    ck_assert_msg(config_parse_database("many", connstr, &db, e, sizeof(e)), "%s", e);
    ck_assert_int_eq(db.nhosts, CF_MAX_HOSTS);
    config_free_database(&db);

    snprintf(connstr + n, sizeof(connstr) - n, ",127.0.9.9");
    ck_assert(!config_parse_database("many", connstr, &db, e, sizeof(e)));
    ck_assert_str_eq(e, "host list has 129 entries, at most 128 are supported");
    config_free_database(&db);
}
END_TEST

/* ---- [users] and [peers] ----------------------------------------------------------- */

START_TEST(user_entry_is_parsed)
{
    struct config *cf = load_ok("[users]\n"
                                "alice = pool_mode=statement pool_size=3 reserve_pool_size=1 "
                                "max_user_connections=10 max_user_client_connections=50 "
                                "query_timeout=30 idle_transaction_timeout=5 "
                                "client_idle_timeout=60 transaction_timeout=10 "
                                "query_wait_timeout=-1\n"
                                "bob =\n"
                                "[pgbouncer]\n");
    const struct cf_user *u = config_find_user(cf, "alice");

    ck_assert_ptr_nonnull(u);
    ck_assert_int_eq(u->pool_mode, POOL_STATEMENT);
    ck_assert_int_eq(u->pool_size, 3);
    ck_assert_int_eq(u->reserve_pool_size, 1);
    ck_assert_int_eq(u->max_user_connections, 10);
    ck_assert_int_eq(u->max_user_client_connections, 50);
    ck_assert(u->query_timeout == 30 * USEC_PER_SEC);
    ck_assert(u->idle_transaction_timeout == 5 * USEC_PER_SEC);
    ck_assert(u->client_idle_timeout == 60 * USEC_PER_SEC);
    ck_assert(u->transaction_timeout == 10 * USEC_PER_SEC);
    ck_assert(u->query_wait_timeout == CF_UNSET);
    ck_assert_int_eq(u->line, 2);
    u = config_find_user(cf, "bob");
    ck_assert_ptr_nonnull(u);
    ck_assert_int_eq(u->pool_mode, CF_UNSET);
    ck_assert_int_eq(u->pool_size, CF_UNSET);
    ck_assert_ptr_null(config_find_user(cf, "carol"));
    config_free(cf);
}
END_TEST

START_TEST(unknown_user_parameter_is_error)
{
    ck_assert_str_eq(load_fail("[pgbouncer]\n[users]\nalice = host=x\n"),
                     "DIR/t.ini:3: user \"alice\": unknown parameter \"host\"");
}
END_TEST

START_TEST(bad_user_pool_mode_is_error)
{
    ck_assert_ptr_nonnull(strstr(load_fail("[pgbouncer]\n[users]\nalice = pool_mode=x\n"),
                                 "t.ini:3: user \"alice\": invalid value \"x\" for pool_mode"));
}
END_TEST

START_TEST(peer_entry_is_parsed)
{
    struct config *cf = load_ok("[peers]\n1 = host=/tmp/pgb1\n2 = host=10.0.0.2 port=7432 "
                                "pool_size=4\n[pgbouncer]\npeer_id = 1\n");

    ck_assert_int_eq(cf->npeers, 2);
    ck_assert_int_eq(cf->peers[0].peer_id, 1);
    ck_assert_str_eq(cf->peers[0].host, "/tmp/pgb1");
    ck_assert_int_eq(cf->peers[0].port, 6432);
    ck_assert_int_eq(cf->peers[0].pool_size, CF_UNSET);
    ck_assert_int_eq(cf->peers[1].peer_id, 2);
    ck_assert_int_eq(cf->peers[1].port, 7432);
    ck_assert_int_eq(cf->peers[1].pool_size, 4);
    ck_assert_int_eq(cf->g.peer_id, 1);
    config_free(cf);
}
END_TEST

START_TEST(peer_without_host_is_error)
{
    ck_assert_str_eq(load_fail("[pgbouncer]\n[peers]\n1 = port=1\n"),
                     "DIR/t.ini:3: peer \"1\": peer 1: host is required");
}
END_TEST

START_TEST(bad_peer_id_is_error)
{
    ck_assert_str_eq(load_fail("[pgbouncer]\n[peers]\nx = host=a\n"),
                     "DIR/t.ini:3: peer \"x\": invalid peer id \"x\": expected a number from 1 to "
                     "16383");
}
END_TEST

START_TEST(unknown_peer_parameter_is_error)
{
    ck_assert_str_eq(load_fail("[pgbouncer]\n[peers]\n1 = host=a dbname=x\n"),
                     "DIR/t.ini:3: peer \"1\": unknown parameter \"dbname\"");
}
END_TEST

/* ---- auth_file and %include -------------------------------------------------------- */

START_TEST(auth_file_is_loaded_sorted_and_searchable)
{
    char text[PATH_MAX + 64];
    const char *users =
        write_file("userlist.txt", "; users\n"
                                   "\"zed\" \"plainpass\"\n"
                                   "\"admin\" \"md545f2603610af569b6155c45067268c6b\"\n"
                                   "\"bob\" \"SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy\"\n"
                                   "\"zed\" \"newer\"\n");
    struct config *cf;

    snprintf(text, sizeof(text), "[pgbouncer]\nauth_file = %s\n", users);
    cf = load_ok(text);
    ck_assert_int_eq(cf->nauthusers, 3);
    ck_assert_str_eq(cf->authusers[0].name, "admin");
    ck_assert_str_eq(cf->authusers[1].name, "bob");
    ck_assert_str_eq(cf->authusers[2].name, "zed");
    ck_assert_str_eq(config_find_authuser(cf, "admin")->secret,
                     "md545f2603610af569b6155c45067268c6b");
    ck_assert_str_eq(config_find_authuser(cf, "bob")->secret,
                     "SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy");
    ck_assert_str_eq(config_find_authuser(cf, "zed")->secret, "newer");
    ck_assert_ptr_null(config_find_authuser(cf, "nobody"));
    config_free(cf);
}
END_TEST

START_TEST(no_auth_file_means_no_auth_users)
{
    struct config *cf = load_ok("[pgbouncer]\nauth_type = trust\n");

    ck_assert_int_eq(cf->nauthusers, 0);
    ck_assert_ptr_null(config_find_authuser(cf, "x"));
    config_free(cf);
}
END_TEST

START_TEST(missing_auth_file_is_error_at_the_setting)
{
    ck_assert_str_eq(load_fail("[pgbouncer]\n\nauth_file = /nonexistent/userlist.txt\n"),
                     "DIR/t.ini:3: auth_file: /nonexistent/userlist.txt: cannot read auth file: "
                     "No such file or directory");
}
END_TEST

START_TEST(auth_file_syntax_error_names_its_line)
{
    char text[PATH_MAX + 64];
    const char *users = write_file("bad.txt", "\"a\" \"1\"\n\"b\"\n");

    snprintf(text, sizeof(text), "[pgbouncer]\nauth_file = %s\n", users);
    ck_assert_str_eq(load_fail(text), "DIR/t.ini:2: auth_file: DIR/bad.txt:2: syntax error: "
                                      "expected whitespace and a double-quoted secret after the "
                                      "user name");
}
END_TEST

START_TEST(include_adds_settings_and_databases_with_their_location)
{
    char text[PATH_MAX + 64];
    const char *inc = write_file("dbs.ini", "[databases]\n\nreads = host=127.0.0.2\n");
    struct config *cf;

    snprintf(text, sizeof(text), "[pgbouncer]\nlisten_port = 7777\n%%include %s\n", inc);
    cf = load_ok(text);
    ck_assert_int_eq(cf->g.listen_port, 7777);
    ck_assert_ptr_nonnull(config_find_database(cf, "reads"));
    ck_assert_ptr_nonnull(strstr(config_find_database(cf, "reads")->file, "dbs.ini"));
    ck_assert_int_eq(config_find_database(cf, "reads")->line, 3);
    config_free(cf);
}
END_TEST

START_TEST(error_in_included_file_names_that_file)
{
    char text[PATH_MAX + 64];
    const char *inc = write_file("inc.ini", "pool_mode = wrong\n");

    snprintf(text, sizeof(text), "[pgbouncer]\n%%include %s\n", inc);
    ck_assert_ptr_nonnull(strstr(load_fail(text), "DIR/inc.ini:1: invalid value \"wrong\""));
}
END_TEST

START_TEST(enum_names_match_pgbouncer)
{
    ck_assert_str_eq(config_pool_mode_name(POOL_SESSION), "session");
    ck_assert_str_eq(config_pool_mode_name(POOL_STATEMENT), "statement");
    ck_assert_str_eq(config_auth_type_name(AUTH_TYPE_SCRAM), "scram-sha-256");
    ck_assert_str_eq(config_lb_policy_name(LB_ROUND_ROBIN), "round-robin");
    ck_assert_str_eq(config_pool_mode_name(99), "unknown");
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc;

    tc = tcase_create("defaults");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, minimal_config_has_pgbouncer_defaults);
    tcase_add_test(tc, every_setting_renders_its_table_default);
    tcase_add_test(tc, table_lists_every_pgbouncer_125_key_once);
    tcase_add_test(tc, table_defaults_and_flags_match_pgbouncer);
    tcase_add_test(tc, find_setting_is_case_insensitive_and_knows_service_name);
    tcase_add_test(tc, conffile_defaults_to_the_loaded_path);
    tcase_add_test(tc, enum_names_match_pgbouncer);
    suite_add_tcase(s, tc);

    tc = tcase_create("values");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, settings_are_applied);
    tcase_add_test(tc, keys_in_pgbouncer_section_are_case_insensitive);
    tcase_add_test(tc, later_assignment_wins);
    tcase_add_test(tc, empty_string_value_unsets_a_string);
    tcase_add_test(tc, time_fraction_is_stored_as_usec_and_rendered_back);
    tcase_add_test(tc, tcp_user_timeout_is_in_milliseconds);
    tcase_add_test(tc, time_with_unit_suffix_is_rejected_like_pgbouncer);
    tcase_add_test(tc, negative_time_is_error);
    tcase_add_test(tc, booleans_accept_words);
    tcase_add_test(tc, invalid_boolean_is_error_with_file_and_line);
    tcase_add_test(tc, non_numeric_integer_is_error);
    tcase_add_test(tc, negative_integer_is_error);
    tcase_add_test(tc, integer_overflow_is_error);
    tcase_add_test(tc, listen_port_out_of_range_is_error);
    tcase_add_test(tc, pkt_buf_too_small_is_error);
    tcase_add_test(tc, max_packet_size_below_pkt_buf_is_error);
    tcase_add_test(tc, peer_id_above_limit_is_error);
    tcase_add_test(tc, unix_socket_mode_is_octal);
    tcase_add_test(tc, bad_pool_mode_is_error_listing_choices);
    tcase_add_test(tc, every_auth_type_is_accepted_including_plain);
    tcase_add_test(tc, bad_auth_type_is_error);
    tcase_add_test(tc, hba_files_are_part_of_the_snapshot);
    tcase_add_test(tc, server_require_auth_defaults_to_every_method);
    tcase_add_test(tc, metrics_listen_takes_host_and_port);
    tcase_add_test(tc, bad_metrics_listen_is_error_with_file_and_line);
    tcase_add_test(tc, server_require_auth_list_and_negation_are_parsed);
    tcase_add_test(tc, bad_server_require_auth_is_error_with_file_and_line);
    tcase_add_test(tc, bad_tls_sslmode_is_error);
    tcase_add_test(tc, server_check_query_empty_disables_and_marker_means_empty_query);
    tcase_add_test(tc, service_name_is_an_alias_of_job_name);
    tcase_add_test(tc, setting_set_parses_into_a_snapshot);
    suite_add_tcase(s, tc);

    tc = tcase_create("structure");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, unknown_parameter_is_error_with_file_and_line);
    tcase_add_test(tc, missing_pgbouncer_section_is_error);
    tcase_add_test(tc, unknown_section_is_error);
    tcase_add_test(tc, parameter_outside_any_section_is_error);
    tcase_add_test(tc, missing_config_file_is_error);
    tcase_add_test(tc, free_accepts_null);
    tcase_add_test(tc, list_settings_split_at_commas_and_spaces);
    tcase_add_test(tc, unimplemented_settings_changed_from_default_are_listed);
    tcase_add_test(tc, unimplemented_setting_equal_to_default_in_other_spelling_is_not_listed);
    tcase_add_test(tc, unimplemented_setting_is_listed_once);
    suite_add_tcase(s, tc);

    tc = tcase_create("databases");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, database_entry_is_parsed);
    tcase_add_test(tc, database_defaults_are_unset);
    tcase_add_test(tc, port_without_host_applies_to_default_socket);
    tcase_add_test(tc, comma_host_list_with_one_port_repeats_it);
    tcase_add_test(tc, comma_host_list_without_port_uses_5432);
    tcase_add_test(tc, port_list_gives_one_port_per_host);
    tcase_add_test(tc, quoted_host_list_may_contain_spaces);
    tcase_add_test(tc, port_list_count_mismatch_is_error_with_file_and_line);
    tcase_add_test(tc, port_list_without_host_is_error);
    tcase_add_test(tc, invalid_port_is_error);
    tcase_add_test(tc, empty_host_in_list_is_error);
    tcase_add_test(tc, unknown_database_parameter_is_error_with_file_and_line);
    tcase_add_test(tc, connstr_syntax_error_is_reported_with_file_and_line);
    tcase_add_test(tc, bad_database_pool_size_is_error);
    tcase_add_test(tc, reserve_pool_is_an_alias_of_reserve_pool_size);
    tcase_add_test(tc, pgbouncer_database_name_is_reserved);
    tcase_add_test(tc, quoted_database_name_keeps_case_and_spaces);
    tcase_add_test(tc, fallback_entry_is_stored_but_not_used_by_find);
    tcase_add_test(tc, later_database_definition_replaces_earlier);
    tcase_add_test(tc, load_balance_hosts_values_are_accepted);
    tcase_add_test(tc, bad_load_balance_hosts_is_error);
    tcase_add_test(tc, target_session_attrs_and_lag_are_parsed);
    tcase_add_test(tc, bad_target_session_attrs_is_error);
    tcase_add_test(tc, parse_database_can_be_called_directly);
    tcase_add_test(tc, host_list_up_to_the_limit_is_accepted_and_a_longer_one_refused);
    suite_add_tcase(s, tc);

    tc = tcase_create("users_peers_auth_include");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, user_entry_is_parsed);
    tcase_add_test(tc, unknown_user_parameter_is_error);
    tcase_add_test(tc, bad_user_pool_mode_is_error);
    tcase_add_test(tc, peer_entry_is_parsed);
    tcase_add_test(tc, peer_without_host_is_error);
    tcase_add_test(tc, bad_peer_id_is_error);
    tcase_add_test(tc, unknown_peer_parameter_is_error);
    tcase_add_test(tc, auth_file_is_loaded_sorted_and_searchable);
    tcase_add_test(tc, no_auth_file_means_no_auth_users);
    tcase_add_test(tc, missing_auth_file_is_error_at_the_setting);
    tcase_add_test(tc, auth_file_syntax_error_names_its_line);
    tcase_add_test(tc, include_adds_settings_and_databases_with_their_location);
    tcase_add_test(tc, error_in_included_file_names_that_file);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
