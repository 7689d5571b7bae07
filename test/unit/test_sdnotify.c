/*
 * test_sdnotify.c: pins the systemd side (sdnotify.c) and the build identity (version.c):
 * passed listening sockets are adopted, TCP and Unix told apart, anything else skipped;
 * READY/RELOADING/STOPPING and the watchdog pings reach NOTIFY_SOCKET; without libsystemd
 * all of it is inert. The version strings have --version's lines and SHOW VERSION's one.
 */
#include "pgusher/sdnotify.h"
#include "pgusher/version.h"

#include <check.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

static bool built_with_systemd(void)
{
    return sdnotify_library_version() != NULL;
}

static int tcp_socket(bool listening)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
        return -1;
    if (listening && listen(fd, 8) != 0)
        return -1;
    return fd;
}

static int unix_listener(void)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int n = snprintf(sun.sun_path + 1, sizeof(sun.sun_path) - 1, "pgusher-ut-%d", (int)getpid());
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sun, len) != 0 || listen(fd, 8) != 0)
        return -1;
    return fd;
}

/* In a child of its own: descriptors 3.. are where systemd puts passed sockets, and where
 * Check keeps its own, so the child moves ours there and answers by exit status. */
static int adopt_in_child(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        int tcp = tcp_socket(true), unx = unix_listener(), idle = tcp_socket(false);
        if (tcp < 0 || unx < 0 || idle < 0)
            _exit(10);
        int hi[3] = {fcntl(tcp, F_DUPFD, 100), fcntl(unx, F_DUPFD, 100), fcntl(idle, F_DUPFD, 100)};
        close(tcp);
        close(unx);
        close(idle);
        for (int i = 0; i < 3; i++)
            if (dup2(hi[i], 3 + i) != 3 + i)
                _exit(11);
        char pidstr[16];
        snprintf(pidstr, sizeof(pidstr), "%d", (int)getpid());
        setenv("LISTEN_PID", pidstr, 1);
        setenv("LISTEN_FDS", "3", 1);
        int fds[8];
        bool is_unix[8];
        int n = sdnotify_listen_fds(fds, is_unix, 8);
        if (!built_with_systemd())
            _exit(n == 0 ? 0 : 12);
        if (n != 2)
            _exit(13);
        if (fds[0] != 3 || is_unix[0] || fds[1] != 4 || !is_unix[1])
            _exit(14);
        if (!(fcntl(3, F_GETFL) & O_NONBLOCK) || !(fcntl(4, F_GETFD) & FD_CLOEXEC))
            _exit(15);
        if (getenv("LISTEN_FDS") || getenv("LISTEN_PID"))
            _exit(16);
        /* Asked again, nothing more is passed. */
        _exit(sdnotify_listen_fds(fds, is_unix, 8) == 0 ? 0 : 17);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 99;
}

START_TEST(passed_listeners_are_adopted_and_others_skipped)
{
    ck_assert_int_eq(adopt_in_child(), 0);
}
END_TEST

START_TEST(no_passed_sockets_without_the_environment)
{
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_PID");
    int fds[4];
    bool is_unix[4];
    ck_assert_int_eq(sdnotify_listen_fds(fds, is_unix, 4), 0);
}
END_TEST

START_TEST(sockets_for_another_process_are_not_taken)
{
    setenv("LISTEN_FDS", "1", 1);
    setenv("LISTEN_PID", "1", 1);
    int fds[4];
    bool is_unix[4];
    ck_assert_int_eq(sdnotify_listen_fds(fds, is_unix, 4), 0);
}
END_TEST

/* A datagram socket in the abstract namespace, named in NOTIFY_SOCKET. */
static int notify_socket(void)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    char name[64];
    int n = snprintf(name, sizeof(name), "pgusher-ut-notify-%d", (int)getpid());
    memcpy(sun.sun_path + 1, name, (size_t)n);
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, len), 0);
    char env[80];
    snprintf(env, sizeof(env), "@%s", name);
    setenv("NOTIFY_SOCKET", env, 1);
    return fd;
}

/* Every datagram waiting on fd, each followed by ';'. */
static void drain(int fd, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = 0;
    char buf[512];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof(buf) - 1, 0)) > 0 && used + (size_t)n + 2 < cap) {
        memcpy(out + used, buf, (size_t)n);
        used += (size_t)n;
        out[used++] = ';';
        out[used] = 0;
    }
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

START_TEST(state_changes_reach_the_notify_socket)
{
    int fd = notify_socket();
    sdnotify_ready("serving");
    sdnotify_reloading();
    sdnotify_stopping("shutting down");
    char got[2048];
    drain(fd, got, sizeof(got));
    close(fd);
    if (!built_with_systemd()) {
        ck_assert_str_eq(got, "");
        return;
    }
    ck_assert_ptr_nonnull(strstr(got, "READY=1\nSTATUS=serving;"));
    ck_assert_ptr_nonnull(strstr(got, "RELOADING=1\nMONOTONIC_USEC="));
    ck_assert_ptr_nonnull(strstr(got, "STOPPING=1\nSTATUS=shutting down;"));
    ck_assert(strstr(got, "READY=1") < strstr(got, "RELOADING=1"));
}
END_TEST

static void stop_loop(uv_timer_t *t)
{
    uv_stop(t->loop);
}

START_TEST(watchdog_pings_every_half_interval_and_never_holds_the_loop)
{
    int fd = notify_socket();
    setenv("WATCHDOG_USEC", "40000", 1); /* a ping every 20 ms */
    unsetenv("WATCHDOG_PID");
    uv_loop_t loop;
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    sdnotify_start_watchdog(&loop);
    /* Alone, the watchdog timer does not keep the loop running. */
    ck_assert_int_eq(uv_run(&loop, UV_RUN_NOWAIT), 0);
    uv_timer_t stopper;
    uv_timer_init(&loop, &stopper);
    uv_timer_start(&stopper, stop_loop, 110, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    sdnotify_stop_watchdog();
    uv_close((uv_handle_t *)&stopper, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    char got[4096];
    drain(fd, got, sizeof(got));
    close(fd);
    unsetenv("WATCHDOG_USEC");
    if (!built_with_systemd()) {
        ck_assert_str_eq(got, "");
        return;
    }
    int pings = count(got, "WATCHDOG=1");
    ck_assert_msg(pings >= 4 && pings <= 8, "%d pings in 110 ms at 20 ms: %s", pings, got);
}
END_TEST

START_TEST(no_watchdog_without_watchdog_usec)
{
    int fd = notify_socket();
    unsetenv("WATCHDOG_USEC");
    uv_loop_t loop;
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    sdnotify_start_watchdog(&loop);
    uv_timer_t stopper;
    uv_timer_init(&loop, &stopper);
    uv_timer_start(&stopper, stop_loop, 30, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    sdnotify_stop_watchdog();
    uv_close((uv_handle_t *)&stopper, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    char got[512];
    drain(fd, got, sizeof(got));
    close(fd);
    ck_assert_str_eq(got, "");
}
END_TEST

START_TEST(version_lines_name_each_library)
{
    char v[512];
    version_lines(v, sizeof(v));
    ck_assert_int_eq(count(v, "\n"), 5);
    ck_assert_int_eq(strncmp(v, "pgusher ", 8), 0);
    ck_assert_ptr_nonnull(strstr(v, "\nlibuv "));
    ck_assert_ptr_nonnull(strstr(v, "\nadns: c-ares "));
    ck_assert_ptr_nonnull(strstr(v, "\ntls: OpenSSL "));
    ck_assert_ptr_nonnull(
        strstr(v, built_with_systemd() ? "\nsystemd: libsystemd " : "\nsystemd: no\n"));
}
END_TEST

START_TEST(version_summary_is_one_line)
{
    char v[512];
    version_summary(v, sizeof(v));
    ck_assert_ptr_null(strchr(v, '\n'));
    ck_assert_int_eq(strncmp(v, "pgusher ", 8), 0);
    ck_assert_ptr_nonnull(strstr(v, "(libuv "));
    ck_assert_ptr_nonnull(strstr(v, ", c-ares "));
    ck_assert_ptr_nonnull(strstr(v, ", OpenSSL "));
    ck_assert(v[strlen(v) - 1] == ')');
}
END_TEST

static Suite *sdnotify_suite(void)
{
    Suite *s = suite_create("sdnotify");
    TCase *tc = tcase_create("socket activation");
    tcase_add_test(tc, passed_listeners_are_adopted_and_others_skipped);
    tcase_add_test(tc, no_passed_sockets_without_the_environment);
    tcase_add_test(tc, sockets_for_another_process_are_not_taken);
    suite_add_tcase(s, tc);

    tc = tcase_create("notify");
    tcase_add_test(tc, state_changes_reach_the_notify_socket);
    tcase_add_test(tc, watchdog_pings_every_half_interval_and_never_holds_the_loop);
    tcase_add_test(tc, no_watchdog_without_watchdog_usec);
    suite_add_tcase(s, tc);

    tc = tcase_create("version");
    tcase_add_test(tc, version_lines_name_each_library);
    tcase_add_test(tc, version_summary_is_one_line);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(sdnotify_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
