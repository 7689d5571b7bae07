/*
 * listener.c: opens the TCP listeners (listen_addr, "*" = all IPv4 and IPv6 addresses) and
 * the Unix socket (.s.PGSQL.<port> in unix_socket_dir), and sizes the descriptor limit for
 * what they may accept. Accepting is all it does: out of descriptors, the excess connections
 * are refused at once. Sockets passed by systemd (socket activation) are used instead.
 */
#include "pgusher/listener.h"

#include "pgusher/client.h"
#include "pgusher/log.h"
#include "pgusher/runtime.h"
#include "pgusher/sdnotify.h"
#include "pgusher/stream.h"

#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_LISTENERS 32

/* Sockets are opened by hand (not uv_listen) so that one accept4() both takes the connection
 * and returns the peer address, and TCP options are set once on the listener, from which
 * Linux copies them to every accepted socket: no per-connection getpeername/setsockopt. */
struct listener {
    uv_poll_t poll;
    int fd;
    bool is_unix;
    bool active;
};

static struct listener listeners[MAX_LISTENERS];
static int nlisteners;
static char unix_path[300];
/* A descriptor held in reserve: with none left, it is given up for the moment it takes to
 * accept a connection and refuse it, so the listener's queue drains instead of hanging. */
static int spare_fd = -1;
static uv_timer_t resume_timer;
static bool resume_timer_init;

static void on_readable(uv_poll_t *h, int status, int events);
static bool accept_paused; /* SUSPEND: connections wait in the listen queues */

static void resume_accepting(uv_timer_t *t)
{
    (void)t;
    for (int i = 0; i < nlisteners && !accept_paused; i++)
        if (listeners[i].active)
            uv_poll_start(&listeners[i].poll, UV_READABLE, on_readable);
}

/* Out of descriptors: take one connection off the listener's queue with the spare
 * descriptor, tell it why (a FATAL ErrorResponse, which libpq shows) and close it. Logged
 * once per second at most. False when there is no spare to use. */
static bool refuse_one(struct listener *l)
{
    static uint64_t last_log;
    static unsigned long refused;
    if (spare_fd < 0)
        return false;
    close(spare_fd);
    spare_fd = -1;
    int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
        static const char msg[] = "SFATAL\0VFATAL\0C53300\0Mno more connections allowed: "
                                  "pgusher is out of file descriptors\0\0";
        uint8_t pkt[1 + 4 + sizeof(msg)];
        uint32_t len = 4 + (uint32_t)sizeof(msg) - 1;
        pkt[0] = 'E';
        pkt[1] = (uint8_t)(len >> 24);
        pkt[2] = (uint8_t)(len >> 16);
        pkt[3] = (uint8_t)(len >> 8);
        pkt[4] = (uint8_t)len;
        memcpy(pkt + 5, msg, sizeof(msg) - 1);
        ssize_t w = send(fd, pkt, 1 + len, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)w; /* best effort: the close says it anyway */
        close(fd);
        refused++;
    }
    spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    uint64_t now = now_usec();
    if (now - last_log >= 1000000) {
        log_warning("out of file descriptors (%s): refused %lu connection%s; raise the fd limit "
                    "(ulimit -n) or lower max_client_conn",
                    strerror(EMFILE), refused, refused == 1 ? "" : "s");
        last_log = now;
        refused = 0;
    }
    return true;
}

/* One connection per wakeup (nginx's multi_accept off): the listener stays readable while
 * more are queued, and the loop serves established connections in between. */
static void on_readable(uv_poll_t *h, int status, int events)
{
    struct listener *l = h->data;
    (void)events;
    if (status < 0 || !l->active)
        return;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    memset(&ss, 0, sizeof(ss));
    int fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0 && (errno == EMFILE || errno == ENFILE) && refuse_one(l))
        return;
    if (fd < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
            errno == ECONNABORTED)
            return;
        /* Out of file descriptors (or another hard error): stop accepting for a moment
         * instead of spinning on a listener that stays readable. */
        log_warning("accept failed: %s", strerror(errno));
        for (int i = 0; i < nlisteners; i++)
            if (listeners[i].active)
                uv_poll_stop(&listeners[i].poll);
        if (!resume_timer_init) {
            uv_timer_init(G.loop, &resume_timer);
            resume_timer_init = true;
        }
        uv_timer_start(&resume_timer, resume_accepting, 100, 0);
        return;
    }
    if (l->is_unix)
        ss.ss_family = AF_UNIX;
    client_accept(fd, l->is_unix, (struct sockaddr *)&ss);
}

static bool add_listener(int fd, bool is_unix)
{
    struct listener *l = &listeners[nlisteners];
    memset(l, 0, sizeof(*l));
    l->fd = fd;
    l->is_unix = is_unix;
    if (uv_poll_init_socket(G.loop, &l->poll, fd) != 0)
        return false;
    l->poll.data = l;
    uv_poll_start(&l->poll, UV_READABLE, on_readable);
    l->active = true;
    nlisteners++;
    return true;
}

static bool listen_tcp(const char *host, int port)
{
    if (nlisteners >= MAX_LISTENERS)
        return false;
    struct sockaddr_storage ss;
    socklen_t sslen;
    memset(&ss, 0, sizeof(ss));
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) == 0) {
        sslen = sizeof(struct sockaddr_in);
    } else if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) == 0) {
        sslen = sizeof(struct sockaddr_in6);
    } else {
        /* A host name: resolve it synchronously, this happens once at startup. */
        uv_getaddrinfo_t req;
        char portstr[16];
        snprintf(portstr, sizeof(portstr), "%d", port);
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
        if (uv_getaddrinfo(G.loop, &req, NULL, host, portstr, &hints) != 0 || !req.addrinfo) {
            log_error("could not resolve listen_addr \"%s\"", host);
            return false;
        }
        memcpy(&ss, req.addrinfo->ai_addr, req.addrinfo->ai_addrlen);
        sslen = (socklen_t)req.addrinfo->ai_addrlen;
        uv_freeaddrinfo(req.addrinfo);
    }
    const struct cf_global *g = &G.cf->g;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_error("could not listen on %s:%d: %s", host, port, strerror(errno));
        return false;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (g->so_reuseport)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    struct tcp_tuning t;
    runtime_tcp_tuning(&t);
    stream_tune_socket(fd, &t);
#ifdef TCP_DEFER_ACCEPT
    /* Wake up for a connection only once its first packet is there. */
    if (g->tcp_defer_accept > 0) {
        int secs = g->tcp_defer_accept;
        setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs, sizeof(secs));
    }
#endif
    if (bind(fd, (struct sockaddr *)&ss, sslen) != 0 || listen(fd, g->listen_backlog) != 0 ||
        !add_listener(fd, false)) {
        log_error("could not listen on %s:%d: %s", host, port, strerror(errno));
        close(fd);
        return false;
    }
    log_info("listening on %s:%d", host, port);
    return true;
}

static bool listen_unix(const char *dir, int port)
{
    if (nlisteners >= MAX_LISTENERS)
        return false;
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    int n = snprintf(unix_path, sizeof(unix_path), "%s/.s.PGSQL.%d", dir, port);
    if (n < 0 || (size_t)n >= sizeof(sun.sun_path)) {
        log_error("unix socket path too long: %s", unix_path);
        unix_path[0] = 0;
        return false;
    }
    memcpy(sun.sun_path, unix_path, (size_t)n + 1);
    struct stat st;
    if (lstat(unix_path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(unix_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 ||
        listen(fd, G.cf->g.listen_backlog) != 0 || !add_listener(fd, true)) {
        log_error("could not listen on unix socket %s: %s", unix_path, strerror(errno));
        if (fd >= 0)
            close(fd);
        unix_path[0] = 0;
        return false;
    }
    chmod(unix_path, (mode_t)G.cf->g.unix_socket_mode);
    const char *grp = G.cf->g.unix_socket_group;
    if (grp && *grp) {
        struct group *gr = getgrnam(grp);
        if (!gr || chown(unix_path, (uid_t)-1, gr->gr_gid) != 0)
            log_warning("could not set group of %s to %s", unix_path, grp);
    }
    log_info("listening on unix:%s", unix_path);
    return true;
}

/* PgBouncer 1.25's estimate of the descriptors it may need (its start-up log line shows
 * it): every client, a full pool for every database and auth-file user plus one, and a
 * dozen for listeners, logs and the like. */
static long fd_need(const struct config *cf)
{
    long pool = cf->g.default_pool_size;
    for (int i = 0; i < cf->ndbs; i++)
        if (cf->dbs[i].pool_size != CF_UNSET && cf->dbs[i].pool_size > pool)
            pool = cf->dbs[i].pool_size;
    for (int i = 0; i < cf->nusers; i++)
        if (cf->users[i].pool_size != CF_UNSET && cf->users[i].pool_size > pool)
            pool = cf->users[i].pool_size;
    return (long)cf->g.max_client_conn + pool * cf->ndbs * (cf->nauthusers + 1) + 12;
}

void listener_size_fd_limit(const struct config *cf)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    long need = fd_need(cf);
    rlim_t was = rl.rlim_cur;
    if (rl.rlim_cur != RLIM_INFINITY && (long)rl.rlim_cur < need) {
        rlim_t want = (rlim_t)need;
        if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max)
            want = rl.rlim_max;
        struct rlimit nrl = {want, rl.rlim_max};
        if (want > rl.rlim_cur && setrlimit(RLIMIT_NOFILE, &nrl) == 0) {
            rl.rlim_cur = want;
            log_info("raised the file descriptor limit from %llu to %llu",
                     (unsigned long long)was, (unsigned long long)want);
        }
    }
    log_info("kernel file descriptor limit: %llu (hard: %llu); max_client_conn: %d, max expected "
             "fd use: %ld",
             (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
             cf->g.max_client_conn, need);
    if (rl.rlim_cur != RLIM_INFINITY && (long)rl.rlim_cur < need)
        log_warning("file descriptor limit %llu is below the %ld that max_client_conn and the "
                    "pools may need: connections beyond it are refused",
                    (unsigned long long)rl.rlim_cur, need);
    if (spare_fd < 0)
        spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* Socket activation: the service manager (pgusher.socket) bound and listens; we only
 * accept. As in PgBouncer 1.25, passed sockets replace listen_addr, listen_port and the
 * Unix socket of unix_socket_dir (which still names where servers' sockets are). Returns
 * how many were taken. */
static int adopt_passed_sockets(void)
{
    int fds[MAX_LISTENERS];
    bool is_unix[MAX_LISTENERS];
    int n = sdnotify_listen_fds(fds, is_unix, MAX_LISTENERS);
    struct tcp_tuning t;
    runtime_tcp_tuning(&t);
    for (int i = 0; i < n; i++) {
        if (!is_unix[i])
            stream_tune_socket(fds[i], &t);
        if (!add_listener(fds[i], is_unix[i])) {
            log_error("could not watch passed socket %d", fds[i]);
            close(fds[i]);
            continue;
        }
        log_info("listening on socket %d passed by the service manager (%s)", fds[i],
                 is_unix[i] ? "unix" : "tcp");
    }
    return nlisteners;
}

bool listener_start(void)
{
    const struct cf_global *g = &G.cf->g;
    if (adopt_passed_sockets() > 0)
        return true;
    int port = g->listen_port;
    bool ok = true;
    const char *addrs = g->listen_addr ? g->listen_addr : "";
    char *copy = strdup(addrs);
    if (!copy)
        return false;
    for (char *save = NULL, *tok = strtok_r(copy, ", \t", &save); tok;
         tok = strtok_r(NULL, ", \t", &save)) {
        if (strcmp(tok, "*") == 0) {
            ok = listen_tcp("0.0.0.0", port) && ok;
            listen_tcp("::", port); /* no IPv6 on the host is not an error */
        } else {
            ok = listen_tcp(tok, port) && ok;
        }
    }
    free(copy);
    if (g->unix_socket_dir && *g->unix_socket_dir)
        ok = listen_unix(g->unix_socket_dir, port) && ok;
    if (nlisteners == 0) {
        log_error("no listening sockets: set listen_addr or unix_socket_dir");
        return false;
    }
    return ok;
}

void listener_pause(bool paused)
{
    accept_paused = paused;
    for (int i = 0; i < nlisteners; i++) {
        if (!listeners[i].active)
            continue;
        if (paused)
            uv_poll_stop(&listeners[i].poll);
        else
            uv_poll_start(&listeners[i].poll, UV_READABLE, on_readable);
    }
}

bool listener_adopt(int fd)
{
    if (nlisteners >= MAX_LISTENERS)
        return false;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    memset(&ss, 0, sizeof(ss));
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return false;
    bool is_unix = ss.ss_family == AF_UNIX;
    if (!add_listener(fd, is_unix))
        return false;
    if (is_unix) {
        const struct sockaddr_un *sun = (const struct sockaddr_un *)&ss;
        snprintf(unix_path, sizeof(unix_path), "%.*s", (int)sizeof(sun->sun_path), sun->sun_path);
        log_info("got pooler socket: unix:%d", G.cf->g.listen_port); /* PgBouncer's words */
    } else {
        char host[64];
        int port;
        stream_addr_text((const struct sockaddr *)&ss, host, sizeof(host), &port);
        log_info("got pooler socket: %s:%d", host, port);
    }
    return true;
}

int listener_fds(int *fds, int max)
{
    int n = 0;
    for (int i = 0; i < nlisteners && n < max; i++)
        if (listeners[i].active)
            fds[n++] = listeners[i].fd;
    return n;
}

void listener_retune(void)
{
    struct tcp_tuning t;
    runtime_tcp_tuning(&t);
    for (int i = 0; i < nlisteners; i++)
        if (listeners[i].active && !listeners[i].is_unix)
            stream_tune_socket(listeners[i].fd, &t);
}

static void poll_closed(uv_handle_t *h)
{
    struct listener *l = h->data;
    close(l->fd);
    l->fd = -1;
}

void listener_stop_tcp(void)
{
    for (int i = 0; i < nlisteners; i++) {
        if (listeners[i].is_unix)
            continue;
        if (listeners[i].active && !uv_is_closing((uv_handle_t *)&listeners[i].poll))
            uv_close((uv_handle_t *)&listeners[i].poll, poll_closed);
        listeners[i].active = false;
    }
}

void listener_stop(void)
{
    for (int i = 0; i < nlisteners; i++) {
        if (listeners[i].active && !uv_is_closing((uv_handle_t *)&listeners[i].poll))
            uv_close((uv_handle_t *)&listeners[i].poll, poll_closed);
        listeners[i].active = false;
    }
    if (resume_timer_init) {
        uv_close((uv_handle_t *)&resume_timer, NULL);
        resume_timer_init = false;
    }
    if (unix_path[0]) {
        unlink(unix_path);
        unix_path[0] = 0;
    }
}
