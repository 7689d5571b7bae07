/*
 * stream.h: one socket (TCP or Unix) with a receive buffer and a write queue, over libuv.
 * Knows packet bytes, never protocol meaning; client.c/server.c own meaning.
 *
 * Receive buffer invariant: rpos <= rlen <= cap. Bytes [rpos, rlen) are received and not yet
 * consumed by the owner. The buffer comes from a free list on demand and goes back when empty,
 * so an idle connection holds no buffer.
 */
#ifndef PGUSHER_STREAM_H
#define PGUSHER_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

struct stream;
struct pktbuf;

struct stream_ops {
    /* New bytes are in [rpos, rlen); the owner consumes them by advancing rpos. */
    void (*on_read)(struct stream *s);
    /* EOF (UV_EOF) or a read/write error. Called at most once; the owner should close. */
    void (*on_error)(struct stream *s, int err);
    /* Everything queued has been written. */
    void (*on_drain)(struct stream *s);
    /* Outgoing connect finished (status 0 or a libuv error). */
    void (*on_connect)(struct stream *s, int status);
    /* The handle is closed: the owner may free the memory holding the stream. */
    void (*on_closed)(struct stream *s);
    /* TLS handshake finished (ok) or failed (why says so; the owner should close). Optional:
     * without it a failure is reported as on_error(UV_EPROTO). Called at most once. */
    void (*on_tls_ready)(struct stream *s, bool ok, const char *why);
};

struct stream_tls; /* TLS state of a stream, stream.c's (NULL: plaintext) */
struct tls_ctx;

struct stream {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    const struct stream_ops *ops;
    void *owner;
    uint8_t *buf;
    uint32_t cap, rpos, rlen;
    size_t queued; /* bytes in write requests libuv has not completed */
    uint8_t *out;  /* batched output not yet handed to the kernel (see stream_batch_init) */
    uint32_t olen;
    struct stream *dirty_next; /* on the list of streams with batched output */
    struct stream_tls *tls;    /* after stream_start_tls; plaintext is in buf/out as without */
    bool dirty;
    bool is_unix;
    bool reading; /* uv_read_start is in effect */
    bool closing;
    bool error_reported;
};

/* Write batching: from now on stream_write() collects output per stream and the loop
 * writes it once per iteration, after all ready sockets were read (and before it blocks).
 * Responses to many connections of one client process then reach it in one burst, so it
 * is woken once, not once per response; several messages to one socket in one iteration
 * go out in one write(). Without this call every stream_write() writes at once. */
void stream_batch_init(uv_loop_t *loop);
/* Flush everything and write at once from now on (closes the loop handles it added). */
void stream_batch_stop(void);
/* Hand a stream's batched output to the kernel now (false: the stream failed). */
bool stream_flush(struct stream *s);
/* Flush every stream with batched output. */
void stream_flush_all(void);

/* Global buffer size for all streams (set once from pkt_buf before any stream exists). */
void stream_set_bufsize(uint32_t size);
uint32_t stream_bufsize(void);

/* What the streams hold now, for SHOW MEM: stream_bufsize() buffers in use (receive buffers
 * and batched output) and cached on the free list, write requests libuv has not completed
 * (and their bytes, headers included), and streams speaking TLS. */
struct stream_mem {
    size_t bufs_used, bufs_free, writes, write_bytes, tls_streams;
};
void stream_mem(struct stream_mem *out);
/* Free the cached receive buffers that no connection needed since the last call (the lowest
 * the free list went), keeping a few: after a crowd leaves, its buffers go back to malloc.
 * Returns how many were freed. */
size_t stream_shrink_buffers(void);
/* What one TLS stream holds of pgusher's own (OpenSSL's state for it comes on top). */
size_t stream_tls_size(void);

int stream_init_tcp(struct stream *s, uv_loop_t *loop, const struct stream_ops *ops, void *owner);
int stream_init_pipe(struct stream *s, uv_loop_t *loop, const struct stream_ops *ops, void *owner);
/* Adopt an accepted, connected socket. */
int stream_open_fd(struct stream *s, int fd);
int stream_connect_tcp(struct stream *s, const struct sockaddr *addr);
int stream_connect_unix(struct stream *s, const char *path);
/* TCP settings for a socket (zero leaves the system default). */
struct tcp_tuning {
    int keepalive, keepidle, keepintvl, keepcnt; /* seconds, counts */
    int user_timeout_ms;                         /* TCP_USER_TIMEOUT */
    int sockbuf;                                 /* SO_SNDBUF and SO_RCVBUF */
};
void stream_set_tcp_options(struct stream *s, const struct tcp_tuning *t);

/* The same on a bare socket (a listener: Linux copies them to accepted sockets). */
void stream_tune_socket(int fd, const struct tcp_tuning *t);

void stream_read_start(struct stream *s);
/* After stream_read_start: read at once what the socket already holds (a connection
 * accepted under TCP_DEFER_ACCEPT has its first message waiting), sparing a poll round. */
void stream_read_now(struct stream *s);
void stream_read_stop(struct stream *s);
/* Unconsumed bytes available. */
static inline uint32_t stream_avail(const struct stream *s)
{
    return s->rlen - s->rpos;
}
/* Move unconsumed bytes to the start of the buffer (or return the empty buffer). */
void stream_compact(struct stream *s);
/* True when the buffer has no room left for more input. */
static inline bool stream_full(const struct stream *s)
{
    return s->buf && s->rpos == 0 && s->rlen == s->cap;
}

/* Let up to *remain buffered bytes of a message body pass (they stay in the buffer for the
 * caller to forward): advances rpos and lowers *remain. */
static inline void stream_pass(struct stream *s, uint32_t *remain)
{
    uint32_t n = stream_avail(s) < *remain ? stream_avail(s) : *remain;
    s->rpos += n;
    *remain -= n;
}

/* Take the next whole message (type, length, body) out of the buffer.
 * Returns 1 and fills the outputs when one is complete, 0 when more bytes are needed, -1
 * when its length is below 4, above maxlen or larger than the buffer can ever hold. */
static inline int stream_take_msg(struct stream *s, uint32_t maxlen, uint8_t *type,
                                  const uint8_t **body, uint32_t *blen)
{
    if (stream_avail(s) < 5)
        return 0;
    const uint8_t *p = s->buf + s->rpos;
    uint32_t len = ((uint32_t)p[1] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 8) | p[4];
    if (len < 4 || len > maxlen || len >= s->cap)
        return -1;
    if (stream_avail(s) < len + 1)
        return 0;
    *type = p[0];
    *body = p + 5;
    *blen = len - 4;
    s->rpos += len + 1;
    return 1;
}

/* Send bytes: written at once when the socket takes them, the rest copied and queued.
 * Returns false when the stream is closing or the write failed (on_error follows). */
bool stream_write(struct stream *s, const void *data, size_t len);
bool stream_write_pktbuf(struct stream *s, struct pktbuf *b);

/* Close (on_closed follows). Batched output goes out with what the kernel takes now; a TLS
 * stream that had no error also sends a close_notify (never waiting for the peer's). */
void stream_close(struct stream *s);

/* Switch a connected or accepted stream to TLS (accept or connect side as the context is).
 * From now on buf holds decrypted bytes and stream_write() encrypts (batched output is
 * encrypted when flushed). No byte may be unconsumed in buf (data sent behind an SSLRequest
 * before the handshake is an injection attempt: CVE-2021-23214), and nothing may be written
 * until on_tls_ready(ok). verify_host: what verify-full checks (name or IP literal).
 * Returns 0, or UV_EPROTO / UV_ENOMEM / UV_EINVAL with stream_tls_error() saying why; the
 * stream stays usable in plaintext then (the owner closes it). */
int stream_start_tls(struct stream *s, struct tls_ctx *ctx, const char *verify_host);
/* Handshake done and encrypting. */
bool stream_tls_active(const struct stream *s);
/* TLS started and its handshake not finished (a failed one included): nothing may be written
 * and nothing can be said to the peer. */
bool stream_tls_handshaking(const struct stream *s);
/* The peer ended TLS with a close_notify (its EOF was a clean one). */
bool stream_tls_peer_closed(const struct stream *s);
/* Why the handshake or TLS failed ("" when it did not). */
const char *stream_tls_error(const struct stream *s);
/* The tls column of SHOW CLIENTS/SERVERS: "" for plaintext. */
void stream_tls_describe(const struct stream *s, char *buf, size_t len);
/* The peer certificate's common name (false: none or no TLS). */
bool stream_tls_peer_cn(const struct stream *s, char *buf, size_t len);

/* Address text ("127.0.0.1", port); "unix" and port 0 for anything but IPv4/IPv6. */
void stream_addr_text(const struct sockaddr *sa, char *host, size_t hostlen, int *port);
/* Peer / local address text ("127.0.0.1", port) for logs; "unix" for Unix sockets. */
void stream_peer_addr(struct stream *s, char *host, size_t hostlen, int *port);
void stream_local_addr(struct stream *s, char *host, size_t hostlen, int *port);

#endif
