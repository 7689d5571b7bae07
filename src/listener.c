/*
 * listener.c: opens the TCP listeners (listen_addr, "*" = all IPv4 and IPv6 addresses) and
 * the Unix socket (.s.PGSQL.<port> in unix_socket_dir). Accepting is all it does.
 */
#include "pgusher/listener.h"

#include "pgusher/client.h"
#include "pgusher/log.h"
#include "pgusher/runtime.h"

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_LISTENERS 32

struct listener {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    bool is_unix;
    bool active;
};

static struct listener listeners[MAX_LISTENERS];
static int nlisteners;
static char unix_path[300];

static void on_connection(uv_stream_t *server, int status)
{
    struct listener *l = server->data;
    if (status < 0) {
        log_warning("accept failed: %s", uv_strerror(status));
        return;
    }
    client_accept(server, l->is_unix);
}

static bool listen_tcp(const char *host, int port)
{
    if (nlisteners >= MAX_LISTENERS)
        return false;
    struct sockaddr_storage ss;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0) {
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
        uv_freeaddrinfo(req.addrinfo);
    }
    struct listener *l = &listeners[nlisteners];
    uv_tcp_init(G.loop, &l->h.tcp);
    l->h.handle.data = l;
    unsigned flags = ss.ss_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0;
    int r = uv_tcp_bind(&l->h.tcp, (struct sockaddr *)&ss, flags);
    if (r == 0)
        r = uv_listen(&l->h.stream, G.cf->g.listen_backlog, on_connection);
    if (r != 0) {
        log_error("could not listen on %s:%d: %s", host, port, uv_strerror(r));
        uv_close(&l->h.handle, NULL);
        return false;
    }
    l->active = true;
    nlisteners++;
    log_info("listening on %s:%d", host, port);
    return true;
}

static bool listen_unix(const char *dir, int port)
{
    if (nlisteners >= MAX_LISTENERS)
        return false;
    snprintf(unix_path, sizeof(unix_path), "%s/.s.PGSQL.%d", dir, port);
    struct stat st;
    if (lstat(unix_path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(unix_path);
    struct listener *l = &listeners[nlisteners];
    uv_pipe_init(G.loop, &l->h.pipe, 0);
    l->h.handle.data = l;
    l->is_unix = true;
    int r = uv_pipe_bind(&l->h.pipe, unix_path);
    if (r == 0)
        r = uv_listen(&l->h.stream, G.cf->g.listen_backlog, on_connection);
    if (r != 0) {
        log_error("could not listen on unix socket %s: %s", unix_path, uv_strerror(r));
        uv_close(&l->h.handle, NULL);
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
    l->active = true;
    nlisteners++;
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

void listener_stop(void)
{
    for (int i = 0; i < nlisteners; i++) {
        if (listeners[i].active && !uv_is_closing(&listeners[i].h.handle))
            uv_close(&listeners[i].h.handle, NULL);
        listeners[i].active = false;
    }
    if (unix_path[0]) {
        unlink(unix_path);
        unix_path[0] = 0;
    }
}
