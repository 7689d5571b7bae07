/*
 * stream.c: socket I/O for clients and servers: reads into a lazily taken buffer, writes with
 * uv_try_write first and queues only what the kernel did not take. Never interprets bytes.
 * A TLS stream (stream_start_tls) reads ciphertext into one shared scratch buffer, hands it to
 * tls.c and keeps only plaintext in its own buffer; the plaintext path pays one pointer test.
 */
#include "pgusher/stream.h"

#include "pgusher/pktbuf.h"
#include "pgusher/tls.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct write_req {
    uv_write_t req;
    struct stream *s;
    size_t len;
    uint8_t data[];
};

/* Free list of receive buffers, all of one size. */
struct freebuf {
    struct freebuf *next;
};
static struct freebuf *free_bufs;
static uint32_t buf_size = 16384;
static size_t nfree;
static size_t nfree_low = SIZE_MAX; /* the fewest free since stream_shrink_buffers */
#define MAX_FREE_BUFS 1024
#define KEEP_FREE_BUFS 16
/* For SHOW MEM: buffers handed out (receive and batched output), and write requests libuv
 * holds with the bytes in them. */
static size_t nbufs_used, nwrites, nwrite_bytes, ntls;

void stream_set_bufsize(uint32_t size)
{
    if (size < 512)
        size = 512;
    buf_size = size;
}

uint32_t stream_bufsize(void)
{
    return buf_size;
}

void stream_mem(struct stream_mem *out)
{
    out->bufs_used = nbufs_used;
    out->bufs_free = nfree;
    out->writes = nwrites;
    out->write_bytes = nwrite_bytes;
    out->tls_streams = ntls;
}

static uint8_t *buf_get(void)
{
    if (free_bufs) {
        struct freebuf *f = free_bufs;
        free_bufs = f->next;
        nfree--;
        if (nfree < nfree_low)
            nfree_low = nfree;
        nbufs_used++;
        return (uint8_t *)f;
    }
    uint8_t *p = malloc(buf_size);
    if (p)
        nbufs_used++;
    return p;
}

static void buf_put(uint8_t *p)
{
    nbufs_used--;
    if (nfree >= MAX_FREE_BUFS) {
        free(p);
        return;
    }
    struct freebuf *f = (struct freebuf *)p;
    f->next = free_bufs;
    free_bufs = f;
    nfree++;
}

size_t stream_shrink_buffers(void)
{
    size_t surplus = nfree_low == SIZE_MAX ? nfree : nfree_low, freed = 0;
    while (surplus > 0 && nfree > KEEP_FREE_BUFS && free_bufs) {
        struct freebuf *f = free_bufs;
        free_bufs = f->next;
        free(f);
        nfree--;
        surplus--;
        freed++;
    }
    nfree_low = nfree;
    return freed;
}

/* TLS state of a stream. The idle handle delivers plaintext that TLS still holds when the owner
 * resumes reading (no socket event would announce it). */
struct stream_tls {
    struct tls_conn *conn;
    uv_idle_t idle;
    bool ready;
    char err[200];
};

size_t stream_tls_size(void)
{
    return sizeof(struct stream_tls) + tls_conn_size();
}

/* Ciphertext lands here and tls.c reads it from here (no copy): one buffer for all streams
 * (one loop). scratch_user is the TLS stream reading it now; a read for another stream first
 * makes tls.c keep what that one has not consumed. */
static uint8_t tls_scratch[32768];
static struct stream *scratch_user;
static char start_err[200];

static void tls_read_cb(struct stream *s, ssize_t nread);
static void tls_fail(struct stream *s, const char *why);
static bool tls_write(struct stream *s, const void *data, size_t len);
static void tls_idle_cb(uv_idle_t *h);

static void init_common(struct stream *s, const struct stream_ops *ops, void *owner)
{
    memset(s, 0, sizeof(*s));
    s->ops = ops;
    s->owner = owner;
}

int stream_init_tcp(struct stream *s, uv_loop_t *loop, const struct stream_ops *ops, void *owner)
{
    init_common(s, ops, owner);
    int r = uv_tcp_init(loop, &s->h.tcp);
    s->h.handle.data = s;
    return r;
}

int stream_init_pipe(struct stream *s, uv_loop_t *loop, const struct stream_ops *ops, void *owner)
{
    init_common(s, ops, owner);
    s->is_unix = true;
    int r = uv_pipe_init(loop, &s->h.pipe, 0);
    s->h.handle.data = s;
    return r;
}

static void report_error(struct stream *s, int err)
{
    if (s->error_reported || s->closing)
        return;
    s->error_reported = true;
    if (s->ops->on_error)
        s->ops->on_error(s, err);
}

/* The connect request is allocated per connect: most streams (clients) never connect. */
static void connect_cb(uv_connect_t *req, int status)
{
    struct stream *s = req->handle->data;
    free(req);
    if (status == UV_ECANCELED || s->closing)
        return;
    s->ops->on_connect(s, status);
}

int stream_open_fd(struct stream *s, int fd)
{
    return s->is_unix ? uv_pipe_open(&s->h.pipe, fd) : uv_tcp_open(&s->h.tcp, fd);
}

int stream_connect_tcp(struct stream *s, const struct sockaddr *addr)
{
    uv_connect_t *req = malloc(sizeof(*req));
    if (!req)
        return UV_ENOMEM;
    int r = uv_tcp_connect(req, &s->h.tcp, addr, connect_cb);
    if (r != 0)
        free(req);
    return r;
}

int stream_connect_unix(struct stream *s, const char *path)
{
    uv_connect_t *req = malloc(sizeof(*req));
    if (!req)
        return UV_ENOMEM;
    uv_pipe_connect(req, &s->h.pipe, path, connect_cb); /* connect_cb always runs */
    return 0;
}

void stream_set_tcp_options(struct stream *s, const struct tcp_tuning *t)
{
    uv_os_fd_t fd;
    if (s->is_unix || uv_fileno(&s->h.handle, &fd) != 0)
        return;
    stream_tune_socket(fd, t);
}

void stream_tune_socket(int fd, const struct tcp_tuning *t)
{
    int one = 1, zero = 0;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (t->sockbuf > 0) {
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &t->sockbuf, sizeof(t->sockbuf));
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &t->sockbuf, sizeof(t->sockbuf));
    }
#ifdef TCP_USER_TIMEOUT
    /* Always set, so that a listener re-tuned by a reload also drops an old value. */
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &t->user_timeout_ms, sizeof(t->user_timeout_ms));
#endif
    /* Zero leaves the system default, as PgBouncer does. */
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, t->keepalive ? &one : &zero, sizeof(one));
    if (!t->keepalive)
        return;
#ifdef TCP_KEEPIDLE
    if (t->keepidle > 0)
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &t->keepidle, sizeof(t->keepidle));
#endif
    if (t->keepintvl > 0)
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &t->keepintvl, sizeof(t->keepintvl));
    if (t->keepcnt > 0)
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &t->keepcnt, sizeof(t->keepcnt));
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *out)
{
    struct stream *s = h->data;
    (void)suggested;
    if (s->tls) {
        struct stream *u = scratch_user; /* not reached in practice: reads do not nest */
        scratch_user = NULL;
        if (u && !tls_conn_feed_end(u->tls->conn))
            tls_fail(u, tls_conn_error(u->tls->conn));
        out->base = (char *)tls_scratch;
        out->len = sizeof(tls_scratch);
        return;
    }
    if (s->buf && s->rpos > 0 && s->rlen == s->cap)
        stream_compact(s);
    if (!s->buf) {
        s->buf = buf_get();
        s->cap = s->buf ? buf_size : 0;
        s->rpos = s->rlen = 0;
    }
    out->base = (char *)s->buf + s->rlen;
    out->len = s->buf ? s->cap - s->rlen : 0;
}

static void release_if_empty(struct stream *s)
{
    if (s->buf && s->rpos == s->rlen) {
        buf_put(s->buf);
        s->buf = NULL;
        s->cap = s->rpos = s->rlen = 0;
    }
}

static void read_cb(uv_stream_t *h, ssize_t nread, const uv_buf_t *b)
{
    struct stream *s = h->data;
    (void)b;
    if (s->tls) {
        tls_read_cb(s, nread);
        return;
    }
    if (nread > 0) {
        s->rlen += (uint32_t)nread;
        s->ops->on_read(s);
        if (!s->closing) {
            release_if_empty(s);
            /* The owner left the buffer full: it must stop reading, or it would spin. */
            if (s->reading && s->buf && s->rpos == 0 && s->rlen == s->cap)
                stream_read_stop(s);
        }
        return;
    }
    if (nread == 0 || nread == UV_ENOBUFS) {
        release_if_empty(s);
        if (nread == UV_ENOBUFS)
            stream_read_stop(s);
        return;
    }
    release_if_empty(s);
    stream_read_stop(s);
    report_error(s, (int)nread);
}

void stream_read_start(struct stream *s)
{
    if (s->reading || s->closing)
        return;
    if (uv_read_start(&s->h.stream, alloc_cb, read_cb) == 0)
        s->reading = true;
    if (s->tls && s->tls->ready && tls_conn_pending(s->tls->conn))
        uv_idle_start(&s->tls->idle, tls_idle_cb);
}

void stream_read_now(struct stream *s)
{
    uv_os_fd_t fd;
    if (!s->reading || s->closing || uv_fileno(&s->h.handle, &fd) != 0)
        return;
    uv_buf_t b;
    alloc_cb(&s->h.handle, 0, &b);
    if (b.len == 0)
        return;
    ssize_t n = read(fd, b.base, b.len);
    if (n > 0)
        read_cb(&s->h.stream, n, &b);
    else
        release_if_empty(s); /* nothing yet, end of file or an error: the loop sees it */
}

void stream_read_stop(struct stream *s)
{
    if (!s->reading)
        return;
    uv_read_stop(&s->h.stream);
    s->reading = false;
}

void stream_compact(struct stream *s)
{
    if (!s->buf)
        return;
    if (s->rpos == s->rlen) {
        /* Nothing left: the buffer goes back to the free list. */
        buf_put(s->buf);
        s->buf = NULL;
        s->cap = s->rpos = s->rlen = 0;
        return;
    }
    if (s->rpos > 0) {
        memmove(s->buf, s->buf + s->rpos, s->rlen - s->rpos);
        s->rlen -= s->rpos;
        s->rpos = 0;
    }
}

static void write_cb(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct stream *s = w->s;
    s->queued -= w->len;
    nwrites--;
    nwrite_bytes -= sizeof(*w) + w->len;
    free(w);
    if (s->closing)
        return;
    if (status < 0) {
        report_error(s, status);
        return;
    }
    if (s->queued == 0 && s->ops->on_drain)
        s->ops->on_drain(s);
}

/* Write at once what the kernel takes; copy and queue the rest. */
static bool write_raw(struct stream *s, const void *data, size_t len)
{
    if (s->closing || s->error_reported)
        return false;
    if (len == 0)
        return true;
    const uint8_t *p = data;
    if (s->queued == 0) {
        uv_buf_t b = uv_buf_init((char *)p, (unsigned)len);
        int n = uv_try_write(&s->h.stream, &b, 1);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            if (len == 0)
                return true;
        } else if (n != UV_EAGAIN && n != UV_ENOSYS) {
            report_error(s, n);
            return false;
        }
    }
    struct write_req *w = malloc(sizeof(*w) + len);
    if (!w) {
        report_error(s, UV_ENOMEM);
        return false;
    }
    w->s = s;
    w->len = len;
    memcpy(w->data, p, len);
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)len);
    int r = uv_write(&w->req, &s->h.stream, &b, 1, write_cb);
    if (r < 0) {
        free(w);
        report_error(s, r);
        return false;
    }
    s->queued += len;
    nwrites++;
    nwrite_bytes += sizeof(*w) + len;
    return true;
}

/* Plaintext leaves through TLS when the stream has it. */
static bool write_now(struct stream *s, const void *data, size_t len)
{
    if (s->tls)
        return tls_write(s, data, len);
    return write_raw(s, data, len);
}

/* ---------------------------------------------------------------- write batching */

static bool batching;
static struct stream *dirty_head;
static uv_check_t flush_check;
static uv_prepare_t flush_prepare;

bool stream_flush(struct stream *s)
{
    if (s->olen == 0)
        return !s->closing && !s->error_reported;
    uint8_t *out = s->out;
    uint32_t n = s->olen;
    s->out = NULL;
    s->olen = 0;
    bool ok = write_now(s, out, n);
    buf_put(out);
    return ok;
}

void stream_flush_all(void)
{
    while (dirty_head) {
        struct stream *s = dirty_head;
        dirty_head = s->dirty_next;
        s->dirty = false;
        s->dirty_next = NULL;
        stream_flush(s); /* a failure reaches the owner through on_error */
    }
}

static void flush_cb_check(uv_check_t *h)
{
    (void)h;
    stream_flush_all();
}

static void flush_cb_prepare(uv_prepare_t *h)
{
    (void)h;
    stream_flush_all(); /* output from timers and close callbacks, before blocking */
}

void stream_batch_init(uv_loop_t *loop)
{
    uv_check_init(loop, &flush_check);
    uv_check_start(&flush_check, flush_cb_check);
    uv_unref((uv_handle_t *)&flush_check);
    uv_prepare_init(loop, &flush_prepare);
    uv_prepare_start(&flush_prepare, flush_cb_prepare);
    uv_unref((uv_handle_t *)&flush_prepare);
    batching = true;
}

void stream_batch_stop(void)
{
    if (!batching)
        return;
    stream_flush_all();
    uv_close((uv_handle_t *)&flush_check, NULL);
    uv_close((uv_handle_t *)&flush_prepare, NULL);
    batching = false;
}

bool stream_write(struct stream *s, const void *data, size_t len)
{
    if (s->closing || s->error_reported)
        return false;
    if (len == 0)
        return true;
    /* Behind a libuv queue the kernel is not taking more now anyway. */
    if (!batching || s->queued > 0)
        return write_now(s, data, len);
    if ((size_t)s->olen + len > buf_size) {
        /* More than one buffer in one iteration (bulk data): write it out now. */
        if (!stream_flush(s))
            return false;
        if (len >= buf_size)
            return write_now(s, data, len);
    }
    if (!s->out) {
        s->out = buf_get();
        if (!s->out)
            return write_now(s, data, len);
    }
    memcpy(s->out + s->olen, data, len);
    s->olen += (uint32_t)len;
    if (!s->dirty) {
        s->dirty = true;
        s->dirty_next = dirty_head;
        dirty_head = s;
    }
    return true;
}

bool stream_write_pktbuf(struct stream *s, struct pktbuf *b)
{
    if (b->failed)
        return false;
    return stream_write(s, b->data, b->len);
}

static void close_cb(uv_handle_t *h)
{
    struct stream *s = h->data;
    if (scratch_user == s)
        scratch_user = NULL;
    if (s->tls) {
        tls_conn_free(s->tls->conn);
        free(s->tls);
        s->tls = NULL;
        ntls--;
    }
    if (s->buf) {
        buf_put(s->buf);
        s->buf = NULL;
    }
    if (s->ops->on_closed)
        s->ops->on_closed(s);
}

static void tls_idle_closed(uv_handle_t *h)
{
    struct stream *s = h->data;
    if (!uv_is_closing(&s->h.handle))
        uv_close(&s->h.handle, close_cb);
}

/* A graceful close of a TLS stream: the batched output and then a close_notify, encrypted and
 * handed to the kernel with what it takes now. Never waits for the peer's close_notify (a
 * PostgreSQL peer needs none; the socket closes right after). Not after an error (the peer
 * is gone or TLS is broken) nor mid-handshake (nothing to protect yet). */
static void tls_goodbye(struct stream *s)
{
    struct tls_conn *t = s->tls->conn;
    if (!s->tls->ready)
        return;
    if (s->olen > 0 && !tls_conn_write(t, s->out, s->olen))
        return;
    tls_conn_close_notify(t);
    const uint8_t *p;
    size_t n = tls_conn_out(t, &p);
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    if (n > 0)
        uv_try_write(&s->h.stream, &b, 1); /* behind queued writes libuv refuses: dropped */
    tls_conn_out_done(t);
}

void stream_close(struct stream *s)
{
    if (s->closing)
        return;
    if (s->tls && !s->error_reported) {
        tls_goodbye(s);
    } else if (s->olen > 0 && !s->error_reported) {
        /* Batched output (an error message, say) still goes out: what the kernel takes. */
        uv_buf_t b = uv_buf_init((char *)s->out, s->olen);
        uv_try_write(&s->h.stream, &b, 1);
    }
    if (s->out) {
        buf_put(s->out);
        s->out = NULL;
        s->olen = 0;
    }
    s->closing = true;
    stream_read_stop(s);
    if (s->tls && !uv_is_closing((uv_handle_t *)&s->tls->idle)) {
        /* Close callbacks run last-closed first: chain them so the stream's comes last. */
        uv_close((uv_handle_t *)&s->tls->idle, tls_idle_closed);
        return;
    }
    if (!uv_is_closing(&s->h.handle))
        uv_close(&s->h.handle, close_cb);
}

void stream_addr_text(const struct sockaddr *sa, char *host, size_t hostlen, int *port)
{
    const struct sockaddr_storage *ss = (const struct sockaddr_storage *)sa;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &in->sin_addr, host, (socklen_t)hostlen);
        *port = ntohs(in->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, (socklen_t)hostlen);
        *port = ntohs(in6->sin6_port);
    } else {
        snprintf(host, hostlen, "unix");
        *port = 0;
    }
}

void stream_peer_addr(struct stream *s, char *host, size_t hostlen, int *port)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    memset(&ss, 0, sizeof(ss));
    if (s->is_unix || uv_tcp_getpeername(&s->h.tcp, (struct sockaddr *)&ss, &len) != 0)
        ss.ss_family = AF_UNIX;
    stream_addr_text((struct sockaddr *)&ss, host, hostlen, port);
}

void stream_local_addr(struct stream *s, char *host, size_t hostlen, int *port)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    memset(&ss, 0, sizeof(ss));
    if (s->is_unix || uv_tcp_getsockname(&s->h.tcp, (struct sockaddr *)&ss, &len) != 0)
        ss.ss_family = AF_UNIX;
    stream_addr_text((struct sockaddr *)&ss, host, hostlen, port);
}

/* ---------------------------------------------------------------- TLS */

/* A handshake or TLS failure: reported once, to on_tls_ready before the handshake finished
 * (when the owner has it), else as on_error(UV_EPROTO). */
static void tls_fail(struct stream *s, const char *why)
{
    struct stream_tls *st = s->tls;
    if (!st->err[0])
        snprintf(st->err, sizeof(st->err), "%s", why);
    stream_read_stop(s);
    if (s->error_reported || s->closing)
        return;
    s->error_reported = true;
    if (!st->ready && s->ops->on_tls_ready)
        s->ops->on_tls_ready(s, false, st->err);
    else if (s->ops->on_error)
        s->ops->on_error(s, UV_EPROTO);
}

/* Hand the ciphertext TLS produced to the socket. */
static bool tls_send(struct stream *s)
{
    const uint8_t *p;
    size_t n = tls_conn_out(s->tls->conn, &p);
    if (n == 0)
        return true;
    bool ok = write_raw(s, p, n);
    tls_conn_out_done(s->tls->conn);
    return ok;
}

static bool tls_write(struct stream *s, const void *data, size_t len)
{
    if (s->closing || s->error_reported)
        return false;
    if (len == 0)
        return true;
    if (!s->tls->ready) {
        snprintf(s->tls->err, sizeof(s->tls->err), "write before the TLS handshake finished");
        return false;
    }
    if (!tls_conn_write(s->tls->conn, data, len)) {
        tls_fail(s, tls_conn_error(s->tls->conn));
        return false;
    }
    return tls_send(s);
}

/* Decrypt into the receive buffer and let the owner read, while it reads and TLS has bytes. */
static void tls_deliver(struct stream *s)
{
    struct tls_conn *t = s->tls->conn;
    while (s->reading && !s->closing) {
        if (s->buf && s->rpos > 0 && s->rlen == s->cap)
            stream_compact(s);
        if (!s->buf) {
            s->buf = buf_get();
            if (!s->buf) {
                report_error(s, UV_ENOMEM);
                return;
            }
            s->cap = buf_size;
            s->rpos = s->rlen = 0;
        }
        if (s->rlen == s->cap) {
            stream_read_stop(s); /* the owner left the buffer full */
            break;
        }
        uint32_t before = s->rlen;
        int n = 0;
        /* SSL_read only while TLS holds input: a call that can only answer "want more" costs
         * as much as a small record's decryption. */
        while (s->rlen < s->cap && tls_conn_pending(t)) {
            n = tls_conn_read(t, s->buf + s->rlen, s->cap - s->rlen);
            if (n <= 0)
                break;
            s->rlen += (uint32_t)n;
        }
        if (!tls_send(s)) /* TLS 1.3 may answer a key update or send tickets */
            return;
        if (s->rlen > before) {
            s->ops->on_read(s);
            if (s->closing)
                return;
        }
        if (n < 0) {
            if (tls_conn_closed(t)) {
                stream_read_stop(s);
                report_error(s, UV_EOF);
            } else {
                tls_fail(s, tls_conn_error(t));
            }
            return;
        }
        if (s->rlen == before)
            break;
    }
    release_if_empty(s);
}

static void tls_pump(struct stream *s)
{
    struct stream_tls *st = s->tls;
    if (!st->ready) {
        int r = tls_conn_handshake(st->conn);
        if (!tls_send(s)) /* the next flight, or the alert that says why we refuse */
            return;
        if (r < 0) {
            tls_fail(s, tls_conn_error(st->conn));
            return;
        }
        if (r == 0)
            return;
        st->ready = true;
        if (s->ops->on_tls_ready)
            s->ops->on_tls_ready(s, true, NULL);
        if (s->closing || s->error_reported)
            return;
    }
    tls_deliver(s);
}

static void tls_read_cb(struct stream *s, ssize_t nread)
{
    if (nread > 0) {
        struct tls_conn *t = s->tls->conn;
        if (!tls_conn_feed(t, tls_scratch, (size_t)nread)) {
            tls_fail(s, tls_conn_error(t));
            return;
        }
        scratch_user = s;
        tls_pump(s);
        /* What TLS left unread (the owner stopped reading) is copied out of the scratch. The
         * connection lives until the close callback, so this is safe after a close too. */
        if (scratch_user == s) {
            scratch_user = NULL;
            if (!tls_conn_feed_end(t))
                tls_fail(s, tls_conn_error(t));
        }
        return;
    }
    if (nread == 0 || nread == UV_ENOBUFS)
        return;
    stream_read_stop(s);
    if (s->tls->ready) {
        report_error(s, (int)nread);
        return;
    }
    char why[120];
    snprintf(why, sizeof(why), "%s during the TLS handshake",
             nread == UV_EOF ? "connection closed" : uv_strerror((int)nread));
    tls_fail(s, why);
}

static void tls_idle_cb(uv_idle_t *h)
{
    struct stream *s = h->data;
    uv_idle_stop(h);
    if (!s->closing)
        tls_deliver(s);
}

int stream_start_tls(struct stream *s, struct tls_ctx *ctx, const char *verify_host)
{
    start_err[0] = '\0';
    if (s->tls || s->closing || s->error_reported || !ctx) {
        snprintf(start_err, sizeof(start_err), "stream cannot start TLS");
        return UV_EINVAL;
    }
    if (stream_avail(s) > 0) {
        snprintf(start_err, sizeof(start_err), "unencrypted data after the TLS request");
        return UV_EPROTO;
    }
    /* Output batched before (the 'S' answering an SSLRequest) leaves in plaintext. */
    if (!stream_flush(s)) {
        snprintf(start_err, sizeof(start_err), "write failed before the TLS handshake");
        return UV_EPIPE;
    }
    struct stream_tls *st = calloc(1, sizeof(*st));
    if (!st) {
        snprintf(start_err, sizeof(start_err), "out of memory");
        return UV_ENOMEM;
    }
    st->conn = tls_conn_new(ctx, verify_host, start_err, sizeof(start_err));
    if (!st->conn) {
        free(st);
        return UV_EINVAL;
    }
    uv_idle_init(s->h.handle.loop, &st->idle);
    st->idle.data = s;
    s->tls = st;
    ntls++;
    release_if_empty(s);
    stream_read_start(s);
    if (!tls_ctx_is_accept(ctx))
        tls_pump(s); /* the ClientHello */
    return 0;
}

bool stream_tls_active(const struct stream *s)
{
    return s->tls && s->tls->ready;
}

bool stream_tls_handshaking(const struct stream *s)
{
    return s->tls && !s->tls->ready;
}

bool stream_tls_peer_closed(const struct stream *s)
{
    return s->tls && tls_conn_closed(s->tls->conn);
}

const char *stream_tls_error(const struct stream *s)
{
    return s->tls ? s->tls->err : start_err;
}

void stream_tls_describe(const struct stream *s, char *buf, size_t len)
{
    if (len == 0)
        return;
    buf[0] = '\0';
    if (s->tls && s->tls->ready)
        tls_conn_describe(s->tls->conn, buf, len);
}

bool stream_tls_peer_cn(const struct stream *s, char *buf, size_t len)
{
    return s->tls && s->tls->ready && tls_conn_peer_cn(s->tls->conn, buf, len);
}
