/*
 * listener.c: opens the TCP listeners (listen_addr, "*" = all IPv4 and IPv6 addresses) and
 * the Unix socket (.s.PGSQL.<port> in unix_socket_dir). Accepting is all it does.
 */
#include "pgusher/listener.h"

#include "pgusher/client.h"
#include "pgusher/log.h"
#include "pgusher/runtime.h"
#include "pgusher/stream.h"

#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
static uv_timer_t resume_timer;
static bool resume_timer_init;

static void on_readable(uv_poll_t *h, int status, int events);

static void resume_accepting(uv_timer_t *t)
{
    (void)t;
    for (int i = 0; i < nlisteners; i++)
        if (listeners[i].active)
            uv_poll_start(&listeners[i].poll, UV_READABLE, on_readable);
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

bool listener_start(void)
{
    const struct cf_global *g = &G.cf->g;
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
