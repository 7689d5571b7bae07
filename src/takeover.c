/*
 * takeover.c: online restart (-R), both sides, as PgBouncer 1.25 does it. It owns the SHOW FDS
 * rows (sent by the old process, parsed by the new one) and the hand-over of the sockets; it
 * never reads or writes protocol bytes on a client's or server's socket.
 *
 * Old process: SUSPEND stops new work; SHOW FDS from the "pgbouncer" user of our own OS user
 * on the Unix socket sends one DataRow per socket that can move (the listeners, logged-in
 * plaintext clients with nothing buffered, idle servers and servers linked to such a client
 * with nothing in flight), each with its socket attached (SCM_RIGHTS, on the row's first
 * byte). From then on this process reads none of them and accepts nothing; SHUTDOWN exits at
 * once, so nothing it holds is written to or shut down. What cannot move (TLS, a login, a
 * query in flight, prepared statements) is simply closed by that exit.
 *
 * New process, before its loop: connect to the console, SUSPEND, SHOW FDS (the Nth DataRow
 * goes with the Nth descriptor received), SHUTDOWN, wait for the old one's EOF; then on the
 * loop adopt the listeners, clients and servers, and link the pairs the link column names.
 */
#include "pgusher/takeover.h"

#include "pgusher/admin.h"
#include "pgusher/client.h"
#include "pgusher/database.h"
#include "pgusher/listener.h"
#include "pgusher/log.h"
#include "pgusher/pool.h"
#include "pgusher/prepared.h"
#include "pgusher/proto.h"
#include "pgusher/runtime.h"
#include "pgusher/server.h"
#include "pgusher/stream.h"
#include "pgusher/varcache.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define TAKEOVER_IO_TIMEOUT_MS 10000
#define MAX_PASS_LISTENERS 32

static bool handed_over;
/* The console connection the sockets went to (until it closes or the process exits). */
static struct client *taker;

static const char *const task_names[] = {"pooler", "client", "server"};

/* ---------------------------------------------------------------- the row format */

uint64_t takeover_cancel_encode(uint32_t pid, uint32_t key)
{
    return ((uint64_t)pid << 32) | key;
}

void takeover_cancel_decode(uint64_t v, uint32_t *pid, uint32_t *key)
{
    *pid = (uint32_t)(v >> 32);
    *key = (uint32_t)v;
}

/* A text column as a C string into dst (NULL: ""); false if it does not fit or holds a NUL. */
static bool col_text(const uint8_t *v, int32_t len, char *dst, size_t cap)
{
    if (len < 0) {
        dst[0] = 0;
        return true;
    }
    if ((size_t)len >= cap || memchr(v, 0, (size_t)len))
        return false;
    memcpy(dst, v, (size_t)len);
    dst[len] = 0;
    return true;
}

static int hex_digit(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* A SCRAM key as bytea text: "\\x" and exactly 2 * SCRAM_KEY_LEN hex digits. */
static bool col_hex(const uint8_t *v, int32_t len, uint8_t *key)
{
    if (len != 2 + 2 * SCRAM_KEY_LEN || v[0] != '\\' || v[1] != 'x')
        return false;
    for (int i = 0; i < SCRAM_KEY_LEN; i++) {
        int hi = hex_digit(v[2 + 2 * i]), lo = hex_digit(v[3 + 2 * i]);
        if (hi < 0 || lo < 0)
            return false;
        key[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

/* A decimal integer column (optional '-', digits only) as its magnitude and sign. */
static bool col_num(const uint8_t *v, int32_t len, bool *neg, unsigned long long *out)
{
    char buf[24];
    if (len <= 0 || !col_text(v, len, buf, sizeof(buf)))
        return false;
    const char *p = buf;
    *neg = *p == '-';
    if (*neg)
        p++;
    if (!*p)
        return false;
    unsigned long long u = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        unsigned d = (unsigned)(*p - '0');
        if (u > (ULLONG_MAX - d) / 10)
            return false;
        u = u * 10 + d;
    }
    *out = u;
    return true;
}

/* A non-negative integer column up to max. */
static bool col_int(const uint8_t *v, int32_t len, long long max, long long *out)
{
    bool neg;
    unsigned long long u;
    if (!col_num(v, len, &neg, &u) || neg || u > (unsigned long long)max)
        return false;
    *out = (long long)u;
    return true;
}

bool takeover_parse_row(const uint8_t *body, size_t len, struct takeover_row *out)
{
    struct pktreader r;
    pktreader_init(&r, body, len);
    if (len < 2 || pkt_get16(body) != TAKEOVER_NCOLS)
        return false;
    pktreader_bytes(&r, 2);
    const uint8_t *val[TAKEOVER_NCOLS];
    int32_t vlen[TAKEOVER_NCOLS];
    for (int i = 0; i < TAKEOVER_NCOLS; i++) {
        vlen[i] = (int32_t)pktreader_int32(&r);
        val[i] = NULL;
        if (vlen[i] < -1 || r.bad)
            return false;
        if (vlen[i] > 0 && !(val[i] = pktreader_bytes(&r, (size_t)vlen[i])))
            return false;
        if (vlen[i] == 0)
            val[i] = body; /* any non-NULL pointer: nothing is read */
    }
    if (r.bad || r.p != r.end)
        return false;
    memset(out, 0, sizeof(*out));
    long long n;
    char task[16];
    if (!col_int(val[0], vlen[0], INT32_MAX, &n))
        return false;
    out->fd = (int)n;
    if (!col_text(val[1], vlen[1], task, sizeof(task)))
        return false;
    size_t t = 0;
    while (t < sizeof(task_names) / sizeof(task_names[0]) && strcmp(task, task_names[t]) != 0)
        t++;
    if (t == sizeof(task_names) / sizeof(task_names[0]))
        return false;
    out->task = (enum takeover_task)t;
    if (!col_text(val[2], vlen[2], out->user, sizeof(out->user)) ||
        !col_text(val[3], vlen[3], out->database, sizeof(out->database)) ||
        !col_text(val[4], vlen[4], out->addr, sizeof(out->addr)))
        return false;
    out->port = 0;
    if (vlen[5] >= 0) {
        if (!col_int(val[5], vlen[5], 65535, &n))
            return false;
        out->port = (int)n;
    }
    if (vlen[6] >= 0) {
        /* Unsigned as PgBouncer prints it; a negative (signed int8) spelling is taken too. */
        bool neg;
        unsigned long long u;
        if (!col_num(val[6], vlen[6], &neg, &u) || (neg && u > (1ull << 63)))
            return false;
        if (neg)
            u = 0 - u;
        out->has_cancel = u != 0; /* 0: none (a listener) */
        takeover_cancel_decode(u, &out->cancel_pid, &out->cancel_key);
    }
    out->link = -1;
    if (vlen[7] >= 0) {
        if (!col_int(val[7], vlen[7], INT32_MAX, &n))
            return false;
        out->link = n > 0 ? (int)n : -1; /* 0: none, as PgBouncer prints it */
    }
    if (!col_text(val[8], vlen[8], out->client_encoding, sizeof(out->client_encoding)) ||
        !col_text(val[9], vlen[9], out->std_strings, sizeof(out->std_strings)) ||
        !col_text(val[10], vlen[10], out->datestyle, sizeof(out->datestyle)) ||
        !col_text(val[11], vlen[11], out->timezone, sizeof(out->timezone)) ||
        !col_text(val[12], vlen[12], out->password, sizeof(out->password)))
        return false;
    /* The keys: both NULL, or both SCRAM_KEY_LEN bytes as bytea text. */
    if ((vlen[13] < 0) != (vlen[14] < 0))
        return false;
    if (vlen[13] >= 0) {
        if (!col_hex(val[13], vlen[13], out->scram_client_key) ||
            !col_hex(val[14], vlen[14], out->scram_server_key))
            return false;
        out->has_scram_keys = true;
    }
    return true;
}

/* ---------------------------------------------------------------- old process: SHOW FDS */

static int stream_fd(struct stream *st)
{
    uv_os_fd_t fd;
    return uv_fileno(&st->h.handle, &fd) == 0 ? (int)fd : -1;
}

/* Nothing of it is buffered on either side, and no TLS: its socket can change hands. */
static bool stream_quiet(struct stream *st)
{
    return !st->tls && !st->closing && stream_avail(st) == 0 && st->queued == 0 && st->olen == 0;
}

static bool server_movable(struct server *s)
{
    if (s->state != SV_IDLE && s->state != SV_ACTIVE)
        return false;
    if (s->state == SV_ACTIVE && (!s->link || s->iq != IQ_NONE))
        return false;
    return s->ready && !s->close_needed && s->pkt_remain == 0 && s->expect_rfq == 0 &&
           !s->open_batch && !s->cancels && prepared_server_count(s) == 0 && stream_quiet(&s->st) &&
           stream_fd(&s->st) >= 0;
}

static bool client_movable(struct client *c)
{
    return c->state == CL_ACTIVE && !c->close_after_flush && c->pkt_remain == 0 &&
           prepared_client_count(c) == 0 && stream_quiet(&c->st) && stream_fd(&c->st) >= 0 &&
           (!c->link || (c->link->link == c && server_movable(c->link)));
}

struct fds_row {
    size_t off; /* where its DataRow starts in the reply */
    int fd;
    struct stream *st; /* NULL for a listener */
};

struct fds_reply {
    struct pktbuf *b;
    struct fds_row *rows;
    size_t n, cap;
    bool failed;
};

static void put_col(struct pktbuf *b, const void *v, size_t len)
{
    if (!v) {
        pktbuf_put_int32(b, (uint32_t)-1);
        return;
    }
    pktbuf_put_int32(b, (uint32_t)len);
    pktbuf_put_bytes(b, v, len);
}

static void put_text(struct pktbuf *b, const char *s)
{
    put_col(b, s, s ? strlen(s) : 0);
}

/* A SCRAM key as bytea text ("\\x" and hex), or NULL. */
static void put_hex(struct pktbuf *b, const uint8_t *key)
{
    char hex[2 + 2 * SCRAM_KEY_LEN + 1];
    if (!key) {
        put_text(b, NULL);
        return;
    }
    hex[0] = '\\';
    hex[1] = 'x';
    for (int i = 0; i < SCRAM_KEY_LEN; i++)
        snprintf(hex + 2 + 2 * i, 3, "%02x", key[i]);
    put_text(b, hex);
}

static void put_num(struct pktbuf *b, long long v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%lld", v);
    put_text(b, buf);
}

/* "" is written as NULL: the row keeps no difference between them. */
static void put_opt(struct pktbuf *b, const char *s)
{
    put_text(b, *s ? s : NULL);
}

void takeover_row_vars(const struct takeover_row *row, struct varcache *vc)
{
    static const struct {
        enum var_id id;
        size_t off;
    } vars[] = {
        {VAR_CLIENT_ENCODING, offsetof(struct takeover_row, client_encoding)},
        {VAR_STANDARD_CONFORMING_STRINGS, offsetof(struct takeover_row, std_strings)},
        {VAR_DATESTYLE, offsetof(struct takeover_row, datestyle)},
        {VAR_TIMEZONE, offsetof(struct takeover_row, timezone)},
    };
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        const char *v = (const char *)row + vars[i].off;
        if (*v)
            varcache_set(vc, vars[i].id, v);
    }
}

void takeover_put_row(struct pktbuf *b, const struct takeover_row *row)
{
    pktbuf_start(b, 'D');
    pktbuf_put_int16(b, TAKEOVER_NCOLS);
    put_num(b, row->fd);
    put_text(b, task_names[row->task]);
    put_opt(b, row->user);
    put_opt(b, row->database);
    put_opt(b, row->addr);
    put_num(b, row->port);
    /* 0 for "none" in both, as PgBouncer 1.25 prints them (fd 0 is never a socket here). */
    char ck[24];
    snprintf(ck, sizeof(ck), "%llu",
             row->has_cancel
                 ? (unsigned long long)takeover_cancel_encode(row->cancel_pid, row->cancel_key)
                 : 0ull);
    put_text(b, ck);
    put_num(b, row->link > 0 ? row->link : 0);
    put_opt(b, row->client_encoding);
    put_opt(b, row->std_strings);
    put_opt(b, row->datestyle);
    put_opt(b, row->timezone);
    put_opt(b, row->password);
    put_hex(b, row->has_scram_keys ? row->scram_client_key : NULL);
    put_hex(b, row->has_scram_keys ? row->scram_server_key : NULL);
    pktbuf_finish(b);
}

static void copy_str(char *dst, size_t cap, const char *s)
{
    snprintf(dst, cap, "%s", s ? s : "");
}

static void add_row(struct fds_reply *r, int fd, struct stream *st, enum takeover_task task,
                    const char *user, const char *db, const char *addr, int port,
                    const uint32_t *cancel, int link, const struct varcache *vars,
                    const struct pool *p)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        struct fds_row *n = realloc(r->rows, cap * sizeof(*n));
        if (!n) {
            r->failed = true;
            return;
        }
        r->rows = n;
        r->cap = cap;
    }
    r->rows[r->n++] = (struct fds_row){r->b->len, fd, st};
    static struct takeover_row row; /* large; SHOW FDS runs on the loop thread only */
    memset(&row, 0, sizeof(row));
    row.fd = fd;
    row.task = task;
    copy_str(row.user, sizeof(row.user), user);
    copy_str(row.database, sizeof(row.database), db);
    copy_str(row.addr, sizeof(row.addr), addr);
    row.port = port;
    row.has_cancel = cancel != NULL;
    if (cancel) {
        row.cancel_pid = cancel[0];
        row.cancel_key = cancel[1];
    }
    row.link = link;
    if (vars) {
        copy_str(row.client_encoding, sizeof(row.client_encoding), vars->val[VAR_CLIENT_ENCODING]);
        copy_str(row.std_strings, sizeof(row.std_strings),
                 vars->val[VAR_STANDARD_CONFORMING_STRINGS]);
        copy_str(row.datestyle, sizeof(row.datestyle), vars->val[VAR_DATESTYLE]);
        copy_str(row.timezone, sizeof(row.timezone), vars->val[VAR_TIMEZONE]);
    }
    if (p) {
        copy_str(row.password, sizeof(row.password), p->aq_secret);
        if (p->have_scram_keys) {
            row.has_scram_keys = true;
            memcpy(row.scram_client_key, p->scram_client_key, SCRAM_KEY_LEN);
            memcpy(row.scram_server_key, p->scram_server_key, SCRAM_KEY_LEN);
        }
    }
    takeover_put_row(r->b, &row);
}

static void add_client(struct fds_reply *r, struct client *c)
{
    char addr[64];
    int port = c->port;
    snprintf(addr, sizeof(addr), "%s", c->addr);
    uint32_t cancel[2] = {c->cancel_pid, c->cancel_key};
    add_row(r, stream_fd(&c->st), &c->st, TAKEOVER_CLIENT, c->user_name, c->db_name, addr, port,
            cancel, c->link ? stream_fd(&c->link->st) : -1, &c->vars, c->pool);
}

static void add_server(struct fds_reply *r, struct server *s)
{
    uint32_t cancel[2] = {s->be_pid, s->be_key};
    add_row(r, stream_fd(&s->st), &s->st, TAKEOVER_SERVER, s->pool->user, s->pool->db->name,
            s->host, s->port, cancel, s->link ? stream_fd(&s->link->st) : -1, &s->vars, s->pool);
}

static void collect(struct fds_reply *r)
{
    int lfds[MAX_PASS_LISTENERS];
    int nl = listener_fds(lfds, MAX_PASS_LISTENERS);
    for (int i = 0; i < nl; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        char host[64] = "unix";
        int port = G.cf->g.listen_port;
        memset(&ss, 0, sizeof(ss));
        if (getsockname(lfds[i], (struct sockaddr *)&ss, &len) == 0 && ss.ss_family != AF_UNIX)
            stream_addr_text((struct sockaddr *)&ss, host, sizeof(host), &port);
        add_row(r, lfds[i], NULL, TAKEOVER_POOLER, NULL, NULL, host, port, NULL, -1, NULL, NULL);
    }
    struct list *di;
    list_for_each(di, &G.databases)
    {
        struct database *db = container_of(di, struct database, node);
        if (db->admin)
            continue;
        struct list *pi;
        list_for_each(pi, &db->pools)
        {
            struct pool *p = container_of(pi, struct pool, node);
            struct list *it;
            list_for_each(it, &p->cl_active)
            {
                struct client *c = container_of(it, struct client, node);
                if (client_movable(c))
                    add_client(r, c);
            }
            struct list *lists[2] = {&p->sv_idle, &p->sv_active};
            for (int k = 0; k < 2; k++) {
                list_for_each(it, lists[k])
                {
                    struct server *s = container_of(it, struct server, node);
                    if (server_movable(s) && (!s->link || client_movable(s->link)))
                        add_server(r, s);
                }
            }
        }
    }
}

/* Write all of [p, p+len) to a non-blocking socket, the first byte carrying fd (-1: none). */
static bool send_all(int sock, const uint8_t *p, size_t len, int fd)
{
    while (len > 0) {
        struct iovec iov = {(void *)p, len};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        union {
            struct cmsghdr h;
            char buf[CMSG_SPACE(sizeof(int))];
        } ctl;
        if (fd >= 0) {
            memset(&ctl, 0, sizeof(ctl));
            mh.msg_control = ctl.buf;
            mh.msg_controllen = sizeof(ctl.buf);
            struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
            cm->cmsg_level = SOL_SOCKET;
            cm->cmsg_type = SCM_RIGHTS;
            cm->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(cm), &fd, sizeof(int));
        }
        ssize_t w = sendmsg(sock, &mh, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return false;
            struct pollfd pfd = {sock, POLLOUT, 0};
            if (poll(&pfd, 1, TAKEOVER_IO_TIMEOUT_MS) <= 0)
                return false;
            continue;
        }
        fd = -1; /* sent with the first byte that went out */
        p += w;
        len -= (size_t)w;
    }
    return true;
}

void takeover_show_fds(struct client *c, struct pktbuf *b)
{
    struct fds_reply r = {.b = b};
    collect(&r);
    pktbuf_start(b, 'C');
    pktbuf_put_string(b, "SHOW");
    pktbuf_finish(b);
    pktbuf_ready(b, 'I');
    bool pass = G.suspended && c->st.is_unix && strcmp(c->user_name, "pgbouncer") == 0 &&
                admin_peer_is_self(c);
    if (r.failed || b->failed) {
        pktbuf_free(b);
        free(r.rows);
        client_close(c, "out of memory");
        return;
    }
    if (!pass) {
        client_send(c, b->data, b->len);
        pktbuf_free(b);
        free(r.rows);
        return;
    }
    /* Written here, in order, with the descriptors: the console's own output is flushed
     * first so that nothing queued comes after. */
    int sock = stream_fd(&c->st);
    bool ok = sock >= 0 && stream_flush(&c->st) && c->st.queued == 0;
    listener_pause(true); /* SUSPEND did; a RESUME after a failed hand-over undoes it */
    handed_over = true;
    taker = c;
    for (size_t i = 0; i < r.n; i++)
        if (r.rows[i].st)
            stream_read_stop(r.rows[i].st);
    size_t pos = 0;
    for (size_t i = 0; ok && i <= r.n; i++) {
        size_t end = i < r.n ? r.rows[i].off : b->len;
        int fd = i > 0 ? r.rows[i - 1].fd : -1;
        ok = send_all(sock, b->data + pos, end - pos, fd);
        pos = end;
    }
    log_info("SHOW FDS: %zu sockets handed over%s", r.n, ok ? "" : " (failed: resuming)");
    pktbuf_free(b);
    free(r.rows);
    if (!ok) {
        /* The new process got some of them at most, and gives up: go on as before. */
        client_close(c, "takeover failed");
        admin_resume(NULL);
    }
}

void takeover_abort(void)
{
    if (!handed_over)
        return;
    /* admin_resume goes on: it accepts and reads again, as after any SUSPEND. */
    log_warning("takeover: the new process gave up: resuming work");
    handed_over = false;
    taker = NULL;
}

void takeover_console_gone(struct client *c)
{
    /* Gone without SHUTDOWN (which exits before any close): the new process died or gave
     * up, and holds none of the sockets any more. */
    if (handed_over && c == taker)
        admin_resume(NULL); /* takeover_abort, and lift the SUSPEND it sent */
}

bool takeover_handed_over(void)
{
    return handed_over;
}

_Noreturn void takeover_exit(void)
{
    log_info("sockets handed over to the new process: exiting");
    _exit(0);
}

/* ---------------------------------------------------------------- new process */

struct got {
    struct takeover_row row;
    int fd;    /* received, ours */
    void *obj; /* the client or server made of it */
};

static struct got *got;
static size_t ngot;

/* The console connection to the old process: a blocking-style reader over poll(). */
struct conn {
    int sock;
    uint8_t *buf;
    size_t len, cap;
    int *fds; /* descriptors received, in order */
    size_t nfds, fds_cap;
};

static bool conn_fill(struct conn *k)
{
    if (k->cap - k->len < 65536) {
        size_t cap = k->cap ? k->cap * 2 : 131072;
        uint8_t *n = realloc(k->buf, cap);
        if (!n)
            return false;
        k->buf = n;
        k->cap = cap;
    }
    for (;;) {
        struct pollfd pfd = {k->sock, POLLIN, 0};
        int pr = poll(&pfd, 1, TAKEOVER_IO_TIMEOUT_MS);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return false;
        struct iovec iov = {k->buf + k->len, k->cap - k->len};
        union {
            struct cmsghdr h;
            char buf[CMSG_SPACE(sizeof(int) * 64)];
        } ctl;
        struct msghdr mh = {.msg_iov = &iov,
                            .msg_iovlen = 1,
                            .msg_control = ctl.buf,
                            .msg_controllen = sizeof(ctl.buf)};
        ssize_t n = recvmsg(k->sock, &mh, MSG_CMSG_CLOEXEC);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            return false;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
            if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
                continue;
            size_t nf = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < nf; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
                if (k->nfds == k->fds_cap) {
                    size_t cap = k->fds_cap ? k->fds_cap * 2 : 64;
                    int *nfd = realloc(k->fds, cap * sizeof(int));
                    if (!nfd) {
                        close(fd);
                        continue;
                    }
                    k->fds = nfd;
                    k->fds_cap = cap;
                }
                k->fds[k->nfds++] = fd;
            }
        }
        if (mh.msg_flags & MSG_CTRUNC)
            return false;
        k->len += (size_t)n;
        return true;
    }
}

/* The next whole message: 1 with type/body/blen (valid until the next call), -1 on error or
 * EOF or timeout. */
static size_t conn_consumed;
static int conn_msg(struct conn *k, uint8_t *type, const uint8_t **body, uint32_t *blen)
{
    if (conn_consumed) {
        memmove(k->buf, k->buf + conn_consumed, k->len - conn_consumed);
        k->len -= conn_consumed;
        conn_consumed = 0;
    }
    for (;;) {
        if (k->len >= 5) {
            uint32_t len = pkt_get32(k->buf + 1);
            if (len < 4 || len > (1u << 24))
                return -1;
            if (k->len >= (size_t)len + 1) {
                *type = k->buf[0];
                *body = k->buf + 5;
                *blen = len - 4;
                conn_consumed = (size_t)len + 1;
                return 1;
            }
        }
        if (!conn_fill(k))
            return -1;
    }
}

static bool conn_send(struct conn *k, const struct pktbuf *b)
{
    return !b->failed && send_all(k->sock, b->data, b->len, -1);
}

static bool conn_query(struct conn *k, const char *sql)
{
    struct pktbuf b;
    pktbuf_init(&b);
    pktbuf_start(&b, 'Q');
    pktbuf_put_string(&b, sql);
    pktbuf_finish(&b);
    bool ok = conn_send(k, &b);
    pktbuf_free(&b);
    return ok;
}

/* The message text of an ErrorResponse body. */
static const char *error_text(const uint8_t *body, uint32_t blen, char *out, size_t cap)
{
    snprintf(out, cap, "unknown error");
    for (uint32_t i = 0; i < blen && body[i];) {
        const char *f = (const char *)body + i + 1;
        size_t l = strnlen(f, blen - i - 1);
        if (body[i] == 'M')
            snprintf(out, cap, "%.*s", (int)l, f);
        i += (uint32_t)l + 2;
    }
    return out;
}

/* Read up to ReadyForQuery; DataRows go to got[] (SHOW FDS). False on an error. */
static bool conn_until_ready(struct conn *k, const char *what)
{
    uint8_t type;
    const uint8_t *body;
    uint32_t blen;
    char err[256];
    bool failed = false;
    for (;;) {
        if (conn_msg(k, &type, &body, &blen) < 0) {
            log_error("takeover: %s: connection to the old process lost", what);
            return false;
        }
        switch (type) {
        case 'E':
            log_error("takeover: %s: %s", what, error_text(body, blen, err, sizeof(err)));
            failed = true;
            break;
        case 'D': {
            struct got *n = realloc(got, (ngot + 1) * sizeof(*got));
            if (!n)
                log_fatal("takeover: out of memory");
            got = n;
            memset(&got[ngot], 0, sizeof(got[ngot]));
            got[ngot].fd = -1;
            if (!takeover_parse_row(body, blen, &got[ngot].row)) {
                log_error("takeover: %s: malformed row", what);
                failed = true;
            }
            ngot++;
            break;
        }
        case 'Z':
            return !failed;
        case 'R':
            if (blen < 4 || pkt_get32(body) != 0) {
                log_error("takeover: %s: the old process asks for a password (the \"pgbouncer\" "
                          "user must get in over the Unix socket as our OS user)",
                          what);
                return false;
            }
            break;
        default:
            break;
        }
    }
}

bool takeover_fetch(const struct config *cf)
{
    const char *dir = cf->g.unix_socket_dir;
    if (!dir || !*dir)
        log_fatal("online restart (-R) needs unix_socket_dir");
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    int pn = snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/.s.PGSQL.%d", dir, cf->g.listen_port);
    if (pn < 0 || (size_t)pn >= sizeof(sun.sun_path))
        log_fatal("unix socket path too long");
    struct conn k = {.sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)};
    if (k.sock < 0)
        log_fatal("takeover: socket: %s", strerror(errno));
    log_warning("Online restart is deprecated, use so_reuseport instead");
    if (connect(k.sock, (struct sockaddr *)&sun, sizeof(sun)) != 0 && errno != EINPROGRESS) {
        log_info("old process not found, try to continue normally");
        log_debug("takeover: %s: %s", sun.sun_path, strerror(errno));
        close(k.sock);
        return false;
    }
    log_info("takeover_init: launching connection");
    struct pktbuf b;
    pktbuf_init(&b);
    const char *const params[][2] = {{"user", "pgbouncer"}, {"database", "pgbouncer"}};
    proto_startup(&b, params, 2);
    bool ok = conn_send(&k, &b);
    pktbuf_free(&b);
    if (!ok || !conn_until_ready(&k, "login")) {
        log_info("old process not found, try to continue normally");
        close(k.sock);
        free(k.buf);
        return false;
    }
    log_info("login OK, sending SUSPEND");
    if (!conn_query(&k, "SUSPEND;") || !conn_until_ready(&k, "SUSPEND"))
        log_fatal("takeover: SUSPEND failed");
    log_info("SUSPEND finished, sending SHOW FDS");
    if (!conn_query(&k, "SHOW FDS;") || !conn_until_ready(&k, "SHOW FDS")) {
        conn_query(&k, "RESUME;");
        log_fatal("takeover: SHOW FDS failed (the old process was told to RESUME)");
    }
    if (k.nfds != ngot) {
        conn_query(&k, "RESUME;");
        log_fatal("takeover: got %zu rows but %zu sockets (the old process was told to RESUME)",
                  ngot, k.nfds);
    }
    for (size_t i = 0; i < ngot; i++)
        got[i].fd = k.fds[i];
    log_info("SHOW FDS finished");
    /* The old process exits at SHUTDOWN without a word: its EOF says it is gone. */
    log_info("sending SHUTDOWN;");
    conn_query(&k, "SHUTDOWN;");
    uint8_t type;
    const uint8_t *body;
    uint32_t blen;
    while (conn_msg(&k, &type, &body, &blen) > 0)
        ;
    log_info("old process killed, resuming work");
    close(k.sock);
    free(k.buf);
    free(k.fds);
    conn_consumed = 0;
    return true;
}

static struct got *find_fd(int oldfd)
{
    for (size_t i = 0; i < ngot; i++)
        if (got[i].row.fd == oldfd && got[i].row.task != TAKEOVER_POOLER)
            return &got[i];
    return NULL;
}

static struct backend *find_backend(struct database *db, const char *host, int port)
{
    for (int i = 0; i < db->nbackends; i++)
        if (strcmp(db->backends[i]->host, host) == 0 && db->backends[i]->port == port)
            return db->backends[i];
    return NULL;
}

/* The pool of a row: its database (an auto-database made again), the server login user. */
static struct pool *row_pool(const struct takeover_row *row, bool client)
{
    struct database *db = database_find(row->database, true);
    if (!db || db->admin)
        return NULL;
    const char *user = client && db->cf->user ? db->cf->user : row->user;
    struct pool *p = pool_get(db, user);
    if (!p)
        return NULL;
    if (row->has_scram_keys && !p->have_scram_keys && !db->cf->user) {
        memcpy(p->scram_client_key, row->scram_client_key, SCRAM_KEY_LEN);
        memcpy(p->scram_server_key, row->scram_server_key, SCRAM_KEY_LEN);
        p->have_scram_keys = true;
    }
    if (row->password[0] && !p->aq_secret && !db->cf->user)
        p->aq_secret = strdup(row->password);
    return p;
}

bool takeover_adopt(void)
{
    int nlisten = 0, nclients = 0, nservers = 0, nlinked = 0;
    for (size_t i = 0; i < ngot; i++) {
        struct got *g = &got[i];
        const struct takeover_row *row = &g->row;
        if (row->task == TAKEOVER_POOLER) {
            if (listener_adopt(g->fd))
                nlisten++;
            else
                close(g->fd);
            g->fd = -1;
            continue;
        }
        struct pool *p = row_pool(row, row->task == TAKEOVER_CLIENT);
        if (!p) {
            log_warning("takeover: dropping a %s of database \"%s\": no such database now",
                        row->task == TAKEOVER_CLIENT ? "client" : "server", row->database);
            close(g->fd);
        } else if (row->task == TAKEOVER_CLIENT) {
            g->obj = client_adopt(g->fd, p, row);
            nclients += g->obj != NULL;
        } else {
            struct backend *be = find_backend(p->db, row->addr, row->port);
            if (!be) {
                log_warning("takeover: dropping a server on %s:%d: not a host of database "
                            "\"%s\" now",
                            row->addr, row->port, row->database);
                close(g->fd);
            } else {
                g->obj = server_adopt(g->fd, p, be, row);
                nservers += g->obj != NULL;
            }
        }
        g->fd = -1;
    }
    /* The pairs: a client stays with the server it had (its session, its transaction). */
    for (size_t i = 0; i < ngot; i++) {
        struct got *g = &got[i];
        if (g->row.task != TAKEOVER_CLIENT || !g->obj || g->row.link < 0)
            continue;
        struct client *c = g->obj;
        struct got *sg = find_fd(g->row.link);
        struct server *s = sg && sg->row.task == TAKEOVER_SERVER ? sg->obj : NULL;
        if (!s || s->link || s->pool != c->pool || sg->row.link != g->row.fd) {
            client_close(c, "takeover: its server was not handed over");
            g->obj = NULL;
            continue;
        }
        c->link = s;
        s->link = c;
        /* Whether a transaction is open is not in the row: assume one, so that the server
         * goes to no other client before a ReadyForQuery says otherwise. */
        s->tx_status = 'T';
        s->dirty = true;
        server_set_state(s, SV_ACTIVE);
        nlinked++;
    }
    for (size_t i = 0; i < ngot; i++) {
        struct got *g = &got[i];
        if (g->row.task == TAKEOVER_CLIENT && g->obj)
            client_update_reading(g->obj);
        else if (g->row.task == TAKEOVER_SERVER && g->obj)
            server_update_reading(g->obj);
    }
    /* Pools that came over learn their welcome (the parameters a new client is sent) from
     * a login of their own. */
    for (size_t i = 0; i < ngot; i++) {
        struct got *g = &got[i];
        if (!g->obj)
            continue;
        struct pool *p = g->row.task == TAKEOVER_CLIENT ? ((struct client *)g->obj)->pool
                                                        : ((struct server *)g->obj)->pool;
        if (!p->welcome_ok && p->n_sv_login == 0)
            server_launch(p);
    }
    log_info("takeover finished: %d listening sockets, %d clients, %d servers (%d linked)", nlisten,
             nclients, nservers, nlinked);
    free(got);
    got = NULL;
    ngot = 0;
    return nlisten > 0;
}
