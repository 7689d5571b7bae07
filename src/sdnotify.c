/*
 * sdnotify.c: the systemd integration (sd_notify, the watchdog timer, sd_listen_fds). Built
 * against libsystemd when PGUSHER_HAVE_SYSTEMD is defined, else every function is a no-op;
 * it only talks to the service manager, never to clients or servers.
 */
#include "pgusher/sdnotify.h"

#include "pgusher/log.h"

#include <fcntl.h>
#include <stdio.h>
#include <time.h>

#ifdef PGUSHER_HAVE_SYSTEMD
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>

static uv_timer_t watchdog_timer;
static bool watchdog_running;
static int reported_clients = -1, reported_servers = -1;
static uint64_t reported_at;
static bool stopping; /* after STOPPING=1 the status stays "shutting down" */

int sdnotify_listen_fds(int *fds, bool *is_unix, int max)
{
    int n = sd_listen_fds(1);
    if (n < 0) {
        log_warning("systemd socket activation: %s", strerror(-n));
        return 0;
    }
    int kept = 0;
    for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n; fd++) {
        bool unix_sock = sd_is_socket(fd, AF_UNIX, SOCK_STREAM, 1) > 0;
        if (!unix_sock && sd_is_socket_inet(fd, 0, SOCK_STREAM, 1, 0) <= 0) {
            log_warning("systemd socket activation: descriptor %d is not a listening stream "
                        "socket, ignored",
                        fd);
            continue;
        }
        if (kept == max) {
            log_warning("systemd socket activation: more than %d sockets, descriptor %d ignored",
                        max, fd);
            continue;
        }
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0)
            fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        fds[kept] = fd;
        is_unix[kept] = unix_sock;
        kept++;
    }
    return kept;
}

static void on_watchdog(uv_timer_t *t)
{
    sd_notify(0, "WATCHDOG=1");
}

void sdnotify_start_watchdog(uv_loop_t *loop)
{
    uint64_t usec = 0;
    if (watchdog_running || sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
        return;
    uint64_t ms = usec / 2000;
    if (ms == 0)
        ms = 1;
    uv_timer_init(loop, &watchdog_timer);
    uv_timer_start(&watchdog_timer, on_watchdog, ms, ms);
    uv_unref((uv_handle_t *)&watchdog_timer);
    watchdog_running = true;
    sd_notify(0, "WATCHDOG=1");
    log_info("systemd watchdog: pinging every %llu ms", (unsigned long long)ms);
}

void sdnotify_stop_watchdog(void)
{
    if (!watchdog_running)
        return;
    uv_close((uv_handle_t *)&watchdog_timer, NULL);
    watchdog_running = false;
}

void sdnotify_ready(const char *status)
{
    sd_notifyf(0, "READY=1\nSTATUS=%s", status ? status : "");
}

void sdnotify_reloading(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned long long usec =
        (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL;
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading the configuration", usec);
}

void sdnotify_stopping(const char *status)
{
    stopping = true;
    sd_notifyf(0, "STOPPING=1\nSTATUS=%s", status ? status : "");
}

void sdnotify_report_load(uint64_t now_us, int clients, int servers)
{
    if (stopping || (clients == reported_clients && servers == reported_servers) ||
        (reported_at && now_us - reported_at < 1000000))
        return;
    reported_clients = clients;
    reported_servers = servers;
    reported_at = now_us;
    sd_notifyf(0, "STATUS=serving; clients: %d, servers: %d", clients, servers);
}

const char *sdnotify_library_version(void)
{
    return "libsystemd " PGUSHER_LIBSYSTEMD_VERSION;
}

#else /* !PGUSHER_HAVE_SYSTEMD */

int sdnotify_listen_fds(int *fds, bool *is_unix, int max)
{
    return 0;
}

void sdnotify_start_watchdog(uv_loop_t *loop)
{
}

void sdnotify_stop_watchdog(void)
{
}

void sdnotify_ready(const char *status)
{
}

void sdnotify_reloading(void)
{
}

void sdnotify_stopping(const char *status)
{
}

void sdnotify_report_load(uint64_t now_us, int clients, int servers)
{
}

const char *sdnotify_library_version(void)
{
    return NULL;
}

#endif
