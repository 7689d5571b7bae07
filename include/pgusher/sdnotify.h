/*
 * sdnotify.h: the service manager's side of the process (systemd): readiness, reload and
 * stop notifications, watchdog pings and socket activation. Every call is a no-op when
 * pgusher is built without libsystemd or not started by systemd; it never exits the process.
 */
#ifndef PGUSHER_SDNOTIFY_H
#define PGUSHER_SDNOTIFY_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

/* Listening sockets passed by the service manager (LISTEN_FDS/LISTEN_PID, socket units):
 * up to max descriptors, already listening, into fds[], is_unix[] telling a Unix socket from
 * a TCP one. Returns how many (0 = none passed or no libsystemd); a passed descriptor that is
 * not a listening stream socket is logged and skipped. The environment is unset, so it
 * answers once. */
int sdnotify_listen_fds(int *fds, bool *is_unix, int max);

/* Start the watchdog: when the manager set WATCHDOG_USEC for us, a uv timer (unreferenced:
 * it never keeps the loop alive) sends WATCHDOG=1 every half of it. */
void sdnotify_start_watchdog(uv_loop_t *loop);
/* Stop the watchdog timer (before the loop is closed). */
void sdnotify_stop_watchdog(void);

/* READY=1 with a STATUS= line: call once the listeners accept, and again after a reload. */
void sdnotify_ready(const char *status);
/* RELOADING=1 with MONOTONIC_USEC (as Type=notify-reload wants): call before a reload. */
void sdnotify_reloading(void);
/* STOPPING=1 with a STATUS= line: call when a shutdown begins. */
void sdnotify_stopping(const char *status);

/* STATUS=serving; clients: N, servers: M, for systemctl status: call often (the janitor);
 * sends only when a count changed, at most once a second (now_us: any microsecond clock),
 * and never after sdnotify_stopping. */
void sdnotify_report_load(uint64_t now_us, int clients, int servers);

/* "libsystemd 252" when built with it, else NULL. */
const char *sdnotify_library_version(void);

#endif
