/*
 * main.c: the pgusher process: PgBouncer's command line, config loading, daemonizing,
 * pidfile, privileges, signals, the event loop and --check. It wires modules together and holds
 * no pooling logic of its own.
 */
#include "pgusher/admin.h"
#include "pgusher/cancel.h"
#include "pgusher/client.h"
#include "pgusher/config.h"
#include "pgusher/dns.h"
#include "pgusher/listener.h"
#include "pgusher/log.h"
#include "pgusher/metrics.h"
#include "pgusher/pool.h"
#include "pgusher/runtime.h"
#include "pgusher/sdnotify.h"
#include "pgusher/stats.h"
#include "pgusher/stream.h"
#include "pgusher/takeover.h"
#include "pgusher/tls.h"
#include "pgusher/varcache.h"
#include "pgusher/version.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <malloc.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define JANITOR_INTERVAL_MS 250

static const char *config_path;
static char *pidfile_path;
static uv_timer_t janitor_timer;
static uv_signal_t sig_int, sig_term, sig_quit, sig_hup, sig_usr1, sig_usr2;

static void usage(FILE *out, const char *prog)
{
    fprintf(out,
            "pgusher is a PgBouncer-compatible PostgreSQL connection pooler with built-in\n"
            "health checks and load balancing over primary and standby servers.\n"
            "\n"
            "Usage:\n"
            "  %s [OPTION]... CONFIG_FILE\n"
            "\n"
            "Options:\n"
            "  -d, --daemon         run in the background (without it, run in the foreground)\n"
            "  -q, --quiet          run quietly: do not log to stderr\n"
            "  -v, --verbose        increase verbosity (may be repeated)\n"
            "  -u, --user=USERNAME  assume the identity of USERNAME\n"
            "      --check          check CONFIG_FILE and the files it names, then exit\n"
            "                       (0: valid; 1: invalid, with file:line); binds nothing\n"
            "  -R, --reboot         online restart: take over the sockets of the running\n"
            "                       process (deprecated: prefer so_reuseport)\n"
            "  -V, --version        show the version and libraries, then exit\n"
            "  -h, --help           show this help, then exit\n"
            "\n"
            "CONFIG_FILE is a pgbouncer.ini file; PgBouncer's settings, [databases], [users]\n"
            "and [peers] sections, and its userlist.txt auth file are read unchanged.\n"
            "Signals: SIGHUP reloads the config; SIGTERM shuts down after clients leave;\n"
            "SIGINT after servers are released; SIGQUIT at once; SIGUSR1 pauses; SIGUSR2 resumes.\n"
            "\n"
            "Documentation: man pgusher (this command), man 5 pgusher (the config file).\n",
            prog);
}

static bool pid_alive(pid_t pid)
{
    return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

/* Refuse to start over a live pidfile, as PgBouncer does; replace a stale one. */
static void check_pidfile(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    long pid = 0;
    int n = fscanf(f, "%ld", &pid);
    fclose(f);
    if (n == 1 && pid_alive((pid_t)pid))
        log_fatal("pidfile \"%s\" exists and process %ld is running: is pgusher already running?",
                  path, pid);
    log_info("removing stale pidfile \"%s\"", path);
    unlink(path);
}

static void write_pidfile(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        log_fatal("could not create pidfile \"%s\": %s", path, strerror(errno));
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
    if (write(fd, buf, (size_t)n) != n)
        log_fatal("could not write pidfile \"%s\": %s", path, strerror(errno));
    close(fd);
    pidfile_path = strdup(path);
}

static void remove_pidfile(void)
{
    if (pidfile_path) {
        unlink(pidfile_path);
        free(pidfile_path);
        pidfile_path = NULL;
    }
}

static void change_user(const char *user)
{
    struct passwd *pw = getpwnam(user);
    if (!pw)
        log_fatal("could not find user \"%s\"", user);
    if (setgid(pw->pw_gid) != 0 || initgroups(pw->pw_name, pw->pw_gid) != 0 ||
        setuid(pw->pw_uid) != 0)
        log_fatal("could not change to user \"%s\": %s", user, strerror(errno));
}

static void daemonize(void)
{
    pid_t pid = fork();
    if (pid < 0)
        log_fatal("fork failed: %s", strerror(errno));
    if (pid > 0)
        _exit(0);
    if (setsid() < 0)
        log_fatal("setsid failed: %s", strerror(errno));
    pid = fork();
    if (pid < 0)
        log_fatal("fork failed: %s", strerror(errno));
    if (pid > 0)
        _exit(0);
    int fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        if (fd > STDERR_FILENO)
            close(fd);
    }
}

/* --check: everything a start reads and validates (the ini and %include files, auth_file,
 * auth_hba_file and auth_ident_file, track_extra_parameters, TLS keys and certificates), with
 * the warnings a start would log, and nothing it does (no user switch, pidfile, socket or
 * connection). Returns the exit code. */
static int check_config(const char *path)
{
    char err[1024];
    struct log_settings ls = {.to_stderr = true};
    log_configure(&ls);
    struct config *cf = config_load(path, err, sizeof(err));
    if (!cf) {
        fprintf(stderr, "%s\n", err);
        fprintf(stderr, "pgusher: configuration file %s test failed\n", path);
        return 1;
    }
    int rc = 0;
    if (varcache_track_extra(cf->g.track_extra_parameters, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s: track_extra_parameters: %s\n", path, err);
        rc = 1;
    }
    for (int i = 0; i < cf->nunimplemented; i++)
        log_warning("setting \"%s\" is accepted for compatibility but not implemented yet",
                    cf->unimplemented[i]);
    if (rc == 0 && !tls_apply(&cf->g, err, sizeof(err))) {
        fprintf(stderr, "%s: TLS: %s\n", path, err);
        rc = 1;
    }
    tls_release_all();
    config_free(cf);
    if (rc == 0)
        printf("pgusher: configuration file %s test is successful\n", path);
    else
        fprintf(stderr, "pgusher: configuration file %s test failed\n", path);
    return rc;
}

static void on_signal(uv_signal_t *h, int signum)
{
    char err[1024];
    switch (signum) {
    case SIGINT:
        log_info("got SIGINT, shutting down, waiting for servers");
        admin_shutdown(SHUTDOWN_WAIT_FOR_SERVERS);
        break;
    case SIGTERM:
        log_info("got SIGTERM, shutting down, waiting for clients");
        admin_shutdown(SHUTDOWN_WAIT_FOR_CLIENTS);
        break;
    case SIGQUIT:
        log_info("got SIGQUIT, fast exit");
        admin_shutdown(SHUTDOWN_NOW);
        break;
    case SIGHUP:
        log_info("got SIGHUP, re-reading config");
        /* A good config reopens the logfile as part of the reload; after a bad one, reopen it
         * anyway so log rotation works. */
        if (!admin_reload(err, sizeof(err)))
            log_reopen();
        break;
    case SIGUSR1:
        log_info("got SIGUSR1, pausing all activity");
        admin_pause(NULL);
        break;
    case SIGUSR2:
        if (G.shutting_down) {
            log_info("got SIGUSR2 while shutting down, ignoring");
            break;
        }
        log_info("got SIGUSR2, continuing");
        admin_resume(NULL);
        break;
    default:
        break;
    }
}

/* After a crowd leaves (a login storm, a fleet of app servers restarting) its receive
 * buffers sit in stream.c's cache and glibc keeps what was freed, scattered among what is
 * still in use: RSS stays up with nothing to show for it in SHOW MEM. Every
 * SHRINK_EVERY_TICKS the buffers no connection needed meanwhile are freed, and the heap is
 * trimmed when that or a drop of TRIM_AFTER_DROP connections from the peak freed much:
 * rare, and the cost (a walk of malloc's free lists) is paid only then. */
#define SHRINK_EVERY_TICKS 40 /* 10 s */
#define TRIM_AFTER_DROP 500
#define TRIM_AFTER_BUFS 64

static void shrink_after_crowd(void)
{
    static int ticks;
    size_t freed = 0;
    if (++ticks >= SHRINK_EVERY_TICKS) {
        ticks = 0;
        freed = stream_shrink_buffers();
    }
    int now = G.client_count + G.server_count;
    if (freed >= TRIM_AFTER_BUFS || G.conn_peak - now >= TRIM_AFTER_DROP) {
        malloc_trim(0);
        G.conn_peak = now;
    }
}

static void on_janitor(uv_timer_t *t)
{
    /* Handed over: the sockets are the new process's; no timeout here may close one. */
    if (takeover_handed_over()) {
        admin_janitor();
        return;
    }
    shrink_after_crowd();
    pool_janitor();
    client_janitor();
    admin_janitor();
    stats_tick();
    sdnotify_report_load(now_usec(), G.client_count, G.server_count);
}

static void start_signal(uv_signal_t *h, int signum)
{
    uv_signal_init(G.loop, h);
    uv_signal_start(h, on_signal, signum);
    uv_unref((uv_handle_t *)h);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"daemon", no_argument, NULL, 'd'},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"user", required_argument, NULL, 'u'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {"reboot", no_argument, NULL, 'R'},
        {"check", no_argument, NULL, 'C'},
        {NULL, 0, NULL, 0},
    };
    tls_mem_init(); /* before anything reaches OpenSSL, so SHOW MEM sees all it holds */
    bool daemon = false, quiet = false, reboot = false, check = false;
    int verbose = 0;
    const char *run_as = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "dqvu:VhR", longopts, NULL)) != -1) {
        switch (opt) {
        case 'd':
            daemon = true;
            break;
        case 'q':
            quiet = true;
            break;
        case 'v':
            verbose++;
            break;
        case 'u':
            run_as = optarg;
            break;
        case 'V': {
            char v[512];
            version_lines(v, sizeof(v));
            fputs(v, stdout);
            return 0;
        }
        case 'C':
            check = true;
            break;
        case 'h':
            usage(stdout, argv[0]);
            return 0;
        case 'R':
            reboot = true;
            break;
        default:
            usage(stderr, argv[0]);
            return 1;
        }
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "%s: need exactly one config file argument\n", argv[0]);
        usage(stderr, argv[0]);
        return 1;
    }
    config_path = argv[optind];
    if (check)
        return check_config(config_path);

    char err[1024];
    struct config *cf = config_load(config_path, err, sizeof(err));
    if (!cf) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (varcache_track_extra(cf->g.track_extra_parameters, err, sizeof(err)) < 0) {
        fprintf(stderr, "track_extra_parameters: %s\n", err);
        return 1;
    }
    G.cf = cf;
    G.cf_gen++;
    G.log_to_stderr = !quiet && !daemon;
    G.cli_verbose = verbose;
    list_init(&G.databases);
    list_init(&G.login_clients);
    list_init(&G.busy_pools);

    const char *user = run_as ? run_as : (cf->g.user && *cf->g.user ? cf->g.user : NULL);
    bool drop_root = user && geteuid() == 0;
    struct log_settings ls = {
        .logfile = cf->g.logfile,
        .to_stderr = !quiet && !daemon,
        .verbose = verbose + cf->g.verbose,
        .syslog = cf->g.syslog,
        .syslog_ident = cf->g.syslog_ident,
        .syslog_facility = cf->g.syslog_facility,
    };
    if (drop_root) {
        /* The logfile is opened as the user we run as, never as root: root appending to a
         * path in a directory that user can write would append to any file it links to.
         * Until then (pidfile check, the switch itself) messages go to stderr. */
        struct log_settings early = ls;
        early.logfile = NULL;
        early.to_stderr = true;
        log_configure(&early);
    } else if (!log_configure(&ls)) {
        return 1;
    }
    if (daemon && !(cf->g.logfile && *cf->g.logfile) && !cf->g.syslog)
        log_fatal("in daemon mode, a logfile or syslog must be configured");

    /* -R: the running process's pidfile is ours once it has handed over and exited. */
    if (cf->g.pidfile && *cf->g.pidfile && !reboot)
        check_pidfile(cf->g.pidfile);
    if (drop_root) {
        change_user(user);
        if (!log_configure(&ls))
            return 1;
    }
    /* Online restart: as the user we run as, whom the old process lets in by peer. */
    bool took_over = reboot && takeover_fetch(cf);
    if (reboot && !took_over && cf->g.pidfile && *cf->g.pidfile)
        check_pidfile(cf->g.pidfile);
    else if (took_over && cf->g.pidfile && *cf->g.pidfile)
        unlink(cf->g.pidfile); /* the old process is gone and left it */
    for (int i = 0; i < cf->nunimplemented; i++)
        log_warning("setting \"%s\" is accepted for compatibility but not implemented yet",
                    cf->unimplemented[i]);
    /* TLS contexts: as the user we run as (key files are often readable by it alone). */
    char tls_err[512];
    if (!tls_apply(&cf->g, tls_err, sizeof(tls_err)))
        log_fatal("TLS: %s", tls_err);
    if (daemon)
        daemonize();
    if (cf->g.pidfile && *cf->g.pidfile)
        write_pidfile(cf->g.pidfile);

    signal(SIGPIPE, SIG_IGN);
    G.loop = uv_default_loop();
    stream_batch_init(G.loop);
    stream_set_bufsize(cf->g.pkt_buf > 16384 ? (uint32_t)cf->g.pkt_buf : 16384);
    G.start_time = G.last_stats = now_usec();
    database_dns_init();
    if (!dns_init())
        log_warning("DNS: host names will not resolve");
    database_init_all();
    cancel_peers_apply();
    admin_init();
    listener_size_fd_limit(cf);
    if (!(took_over && takeover_adopt()) && !listener_start()) {
        remove_pidfile();
        return 1;
    }
    metrics_apply(); /* a bad metrics_listen is logged; the pooler serves anyway */
    G.started = true;
    start_signal(&sig_int, SIGINT);
    start_signal(&sig_term, SIGTERM);
    start_signal(&sig_quit, SIGQUIT);
    start_signal(&sig_hup, SIGHUP);
    start_signal(&sig_usr1, SIGUSR1);
    start_signal(&sig_usr2, SIGUSR2);
    uv_timer_init(G.loop, &janitor_timer);
    uv_timer_start(&janitor_timer, on_janitor, JANITOR_INTERVAL_MS, JANITOR_INTERVAL_MS);
    log_info("process up: pgusher %s, libuv %s, pid=%d", PGUSHER_VERSION, uv_version_string(),
             (int)getpid());
    /* The listeners accept from here on: only now may the service manager start dependants. */
    sdnotify_start_watchdog(G.loop);
    sdnotify_ready("serving");

    uv_run(G.loop, UV_RUN_DEFAULT);
    sdnotify_stop_watchdog();
    dns_shutdown();
    tls_release_all();
    remove_pidfile();
    return 0;
}
