/*
 * test_stream.c: pins the stream layer over a real libuv loop and a local socketpair (no
 * network): round trips, queued large writes and on_drain, EOF reporting, receive buffer
 * compaction, back-pressure when the buffer is full, and that receive buffers go back to the
 * free list when empty. Every test closes its handles and asserts uv_loop_close() == 0.
 * Relies on fork mode: stream.c's buffer free list and size are process-wide.
 */
#include "pgusher/stream.h"

#include "pgusher/pktbuf.h"

#include <check.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* What happened to one stream, as seen by its owner. */
struct peer {
    struct stream st;
    uint8_t *got; /* bytes consumed by on_read, in arrival order */
    size_t got_len, got_cap;
    size_t consume_limit; /* on_read consumes at most this many bytes per call (0: all) */
    bool consume_none;    /* on_read leaves everything in the buffer */
    int reads, errors, drains, closed;
    int err;
};

static uv_loop_t loop;
static struct peer A, B;

static void got_append(struct peer *p, const uint8_t *d, size_t n)
{
    if (p->got_len + n > p->got_cap) {
        size_t cap = p->got_cap ? p->got_cap : 4096;
        while (cap < p->got_len + n)
            cap *= 2;
        p->got = realloc(p->got, cap);
        ck_assert_ptr_nonnull(p->got);
        p->got_cap = cap;
    }
    memcpy(p->got + p->got_len, d, n);
    p->got_len += n;
}

static void on_read(struct stream *s)
{
    struct peer *p = s->owner;
    p->reads++;
    ck_assert_ptr_nonnull(s->buf);
    ck_assert_uint_le(s->rpos, s->rlen);
    ck_assert_uint_le(s->rlen, s->cap);
    if (p->consume_none)
        return;
    uint32_t n = stream_avail(s);
    if (p->consume_limit && n > p->consume_limit)
        n = (uint32_t)p->consume_limit;
    got_append(p, s->buf + s->rpos, n);
    s->rpos += n;
}

static void on_error(struct stream *s, int err)
{
    struct peer *p = s->owner;
    p->errors++;
    p->err = err;
}

static void on_drain(struct stream *s)
{
    struct peer *p = s->owner;
    p->drains++;
}

static void on_closed(struct stream *s)
{
    struct peer *p = s->owner;
    p->closed++;
}

static const struct stream_ops ops = {
    .on_read = on_read,
    .on_error = on_error,
    .on_drain = on_drain,
    .on_closed = on_closed,
};

static void open_peer(struct peer *p, int fd)
{
    memset(p, 0, sizeof(*p));
    ck_assert_int_eq(stream_init_pipe(&p->st, &loop, &ops, p), 0);
    ck_assert_int_eq(uv_pipe_open(&p->st.h.pipe, fd), 0);
    ck_assert_ptr_eq(p->st.owner, p);
    ck_assert_ptr_null(p->st.buf);
}

/* A and B are the two ends of one AF_UNIX socketpair, each a pipe stream on the loop. */
static void setup(void)
{
    int fds[2];
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    open_peer(&A, fds[0]);
    open_peer(&B, fds[1]);
}

/* Closes whatever is still open, runs the loop dry and checks it closes cleanly. */
static void close_all(void)
{
    stream_close(&A.st);
    stream_close(&B.st);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(A.closed, 1);
    ck_assert_int_eq(B.closed, 1);
    ck_assert_ptr_null(A.st.buf);
    ck_assert_ptr_null(B.st.buf);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    free(A.got);
    free(B.got);
}

/* Runs the loop one round at a time until cond holds; fails if the loop runs out of work. */
#define RUN_UNTIL(cond)                                                                            \
    do {                                                                                           \
        while (!(cond))                                                                            \
            ck_assert_msg(uv_run(&loop, UV_RUN_ONCE) != 0 || (cond),                               \
                          "loop ran dry before: " #cond);                                          \
    } while (0)

static void fill_pattern(uint8_t *d, size_t n, uint32_t seed)
{
    uint32_t x = seed;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        d[i] = (uint8_t)(x >> 16);
    }
}

/* ---- round trip ---- */

START_TEST(write_then_read_round_trip)
{
    setup();
    stream_read_start(&B.st);
    ck_assert(B.st.reading);
    ck_assert(stream_write(&A.st, "hello", 5));
    ck_assert_uint_eq(A.st.queued, 0); /* small: the socket took it at once */
    RUN_UNTIL(B.got_len >= 5);
    ck_assert_uint_eq(B.got_len, 5);
    ck_assert_int_eq(memcmp(B.got, "hello", 5), 0);
    ck_assert_int_eq(B.errors, 0);
    ck_assert_int_eq(A.errors, 0);
    close_all();
}
END_TEST

START_TEST(both_directions)
{
    setup();
    stream_read_start(&A.st);
    stream_read_start(&B.st);
    ck_assert(stream_write(&A.st, "ping", 4));
    ck_assert(stream_write(&B.st, "pong!", 5));
    RUN_UNTIL(B.got_len >= 4 && A.got_len >= 5);
    ck_assert_uint_eq(B.got_len, 4);
    ck_assert_uint_eq(A.got_len, 5);
    ck_assert_int_eq(memcmp(B.got, "ping", 4), 0);
    ck_assert_int_eq(memcmp(A.got, "pong!", 5), 0);
    close_all();
}
END_TEST

START_TEST(write_pktbuf_sends_built_message)
{
    struct pktbuf pb;
    setup();
    pktbuf_init(&pb);
    pktbuf_ready(&pb, 'I');
    stream_read_start(&B.st);
    ck_assert(stream_write_pktbuf(&A.st, &pb));
    RUN_UNTIL(B.got_len >= 6);
    ck_assert_uint_eq(B.got_len, 6);
    ck_assert_int_eq(memcmp(B.got, "Z\0\0\0\5I", 6), 0);
    pktbuf_free(&pb);
    close_all();
}
END_TEST

START_TEST(write_pktbuf_refuses_failed_buffer)
{
    struct pktbuf pb;
    setup();
    pktbuf_init(&pb);
    pktbuf_ready(&pb, 'I');
    pb.failed = true;
    ck_assert(!stream_write_pktbuf(&A.st, &pb));
    ck_assert_uint_eq(A.st.queued, 0);
    ck_assert_int_eq(A.errors, 0);
    pktbuf_free(&pb);
    close_all();
}
END_TEST

START_TEST(zero_length_write_is_ok_and_sends_nothing)
{
    setup();
    ck_assert(stream_write(&A.st, "", 0));
    ck_assert_uint_eq(A.st.queued, 0);
    ck_assert_int_eq(A.drains, 0);
    close_all();
}
END_TEST

/* ---- large writes ---- */

#define BIG (4u * 1024 * 1024)

START_TEST(large_write_is_queued_drained_and_arrives_in_order)
{
    uint8_t *big = malloc(BIG);
    ck_assert_ptr_nonnull(big);
    fill_pattern(big, BIG, 1);
    setup();
    stream_read_start(&B.st);
    ck_assert(stream_write(&A.st, big, BIG));
    /* The socket cannot take 4 MiB at once: the rest is a copy in the write queue. */
    ck_assert_uint_gt(A.st.queued, 0);
    ck_assert_uint_le(A.st.queued, BIG);
    ck_assert_int_eq(A.drains, 0);
    RUN_UNTIL(A.drains > 0 && B.got_len >= BIG);
    ck_assert_int_eq(A.drains, 1);
    ck_assert_uint_eq(A.st.queued, 0);
    ck_assert_uint_eq(B.got_len, BIG);
    ck_assert_int_eq(memcmp(B.got, big, BIG), 0);
    ck_assert_int_eq(A.errors, 0);
    ck_assert_int_eq(B.errors, 0);
    close_all();
    free(big);
}
END_TEST

START_TEST(caller_buffer_may_change_after_queued_write)
{
    uint8_t *big = malloc(BIG);
    uint8_t *want = malloc(BIG);
    ck_assert_ptr_nonnull(big);
    ck_assert_ptr_nonnull(want);
    fill_pattern(big, BIG, 7);
    memcpy(want, big, BIG);
    setup();
    stream_read_start(&B.st);
    ck_assert(stream_write(&A.st, big, BIG));
    ck_assert_uint_gt(A.st.queued, 0);
    memset(big, 0xee, BIG); /* the queued part must have been copied */
    RUN_UNTIL(B.got_len >= BIG);
    ck_assert_int_eq(memcmp(B.got, want, BIG), 0);
    close_all();
    free(big);
    free(want);
}
END_TEST

START_TEST(writes_behind_a_queue_keep_order_and_drain_once)
{
    uint8_t *big = malloc(BIG);
    ck_assert_ptr_nonnull(big);
    fill_pattern(big, BIG, 3);
    setup();
    stream_read_start(&B.st);
    ck_assert(stream_write(&A.st, big, BIG));
    size_t q = A.st.queued;
    ck_assert_uint_gt(q, 0);
    /* Small writes while the queue is non-empty must queue behind it, not jump ahead. */
    ck_assert(stream_write(&A.st, "tail-1", 6));
    ck_assert(stream_write(&A.st, "tail-2", 6));
    ck_assert_uint_eq(A.st.queued, q + 12);
    RUN_UNTIL(A.drains > 0 && B.got_len >= BIG + 12);
    ck_assert_int_eq(A.drains, 1);
    ck_assert_uint_eq(A.st.queued, 0);
    ck_assert_uint_eq(B.got_len, BIG + 12);
    ck_assert_int_eq(memcmp(B.got, big, BIG), 0);
    ck_assert_int_eq(memcmp(B.got + BIG, "tail-1tail-2", 12), 0);
    close_all();
    free(big);
}
END_TEST

/* ---- write batching ---- */

START_TEST(batched_writes_go_out_together_after_the_loop_turn)
{
    setup();
    stream_batch_init(&loop);
    stream_read_start(&B.st);
    ck_assert(stream_write(&A.st, "ab", 2));
    ck_assert(stream_write(&A.st, "cd", 2));
    ck_assert_uint_eq(A.st.olen, 4); /* held until the loop has read everything ready */
    ck_assert_uint_eq(A.st.queued, 0);
    RUN_UNTIL(B.got_len >= 4);
    ck_assert_int_eq(B.reads, 1); /* one write, so one read */
    ck_assert_int_eq(memcmp(B.got, "abcd", 4), 0);
    ck_assert_ptr_null(A.st.out); /* the output buffer went back to the free list */
    stream_batch_stop();
    close_all();
}
END_TEST

START_TEST(batched_output_reaches_the_peer_before_close)
{
    setup();
    stream_batch_init(&loop);
    stream_read_start(&B.st);
    ck_assert(stream_write(&A.st, "bye", 3));
    stream_close(&A.st);
    ck_assert_ptr_null(A.st.out);
    RUN_UNTIL(B.errors > 0);
    ck_assert_uint_eq(B.got_len, 3);
    ck_assert_int_eq(memcmp(B.got, "bye", 3), 0);
    ck_assert_int_eq(B.err, UV_EOF);
    stream_batch_stop();
    close_all();
}
END_TEST

START_TEST(batched_small_then_bulk_keep_their_order)
{
    uint8_t *big = malloc(BIG);
    ck_assert_ptr_nonnull(big);
    fill_pattern(big, BIG, 9);
    setup();
    stream_batch_init(&loop);
    stream_read_start(&B.st);
    ck_assert(stream_write(&A.st, "head", 4));
    ck_assert(stream_write(&A.st, big, BIG)); /* more than a buffer: flushed at once */
    ck_assert_uint_eq(A.st.olen, 0);
    ck_assert(stream_write(&A.st, "tail", 4)); /* behind the queue */
    RUN_UNTIL(B.got_len >= BIG + 8);
    ck_assert_int_eq(memcmp(B.got, "head", 4), 0);
    ck_assert_int_eq(memcmp(B.got + 4, big, BIG), 0);
    ck_assert_int_eq(memcmp(B.got + 4 + BIG, "tail", 4), 0);
    stream_batch_stop();
    close_all();
    free(big);
}
END_TEST

START_TEST(flush_hands_batched_output_to_the_kernel_now)
{
    setup();
    stream_batch_init(&loop);
    ck_assert(stream_write(&A.st, "now", 3));
    ck_assert_uint_eq(A.st.olen, 3);
    ck_assert(stream_flush(&A.st));
    ck_assert_uint_eq(A.st.olen, 0);
    char got[8];
    uv_os_fd_t fd;
    ck_assert_int_eq(uv_fileno(&B.st.h.handle, &fd), 0);
    ssize_t n = recv(fd, got, sizeof(got), MSG_DONTWAIT);
    ck_assert_int_eq((int)n, 3);
    ck_assert_int_eq(memcmp(got, "now", 3), 0);
    stream_batch_stop();
    close_all();
}
END_TEST

/* ---- EOF and errors ---- */

START_TEST(peer_close_reports_eof_once)
{
    setup();
    stream_read_start(&B.st);
    stream_close(&A.st);
    ck_assert(A.st.closing);
    RUN_UNTIL(B.errors > 0 && A.closed > 0);
    ck_assert_int_eq(B.errors, 1);
    ck_assert_int_eq(B.err, UV_EOF);
    ck_assert(!B.st.reading);
    /* Let the loop settle: on_error must not be called again. */
    uv_run(&loop, UV_RUN_NOWAIT);
    ck_assert_int_eq(B.errors, 1);
    ck_assert_int_eq(A.errors, 0); /* the closing side hears nothing */
    close_all();
}
END_TEST

START_TEST(data_before_eof_is_delivered_first)
{
    setup();
    stream_read_start(&B.st);
    ck_assert(stream_write(&A.st, "bye", 3));
    stream_close(&A.st);
    RUN_UNTIL(B.errors > 0);
    ck_assert_uint_eq(B.got_len, 3);
    ck_assert_int_eq(memcmp(B.got, "bye", 3), 0);
    ck_assert_int_eq(B.err, UV_EOF);
    ck_assert_ptr_null(B.st.buf); /* consumed, so released */
    close_all();
}
END_TEST

START_TEST(write_after_error_is_refused)
{
    setup();
    stream_read_start(&B.st);
    stream_close(&A.st);
    RUN_UNTIL(B.errors > 0);
    ck_assert(!stream_write(&B.st, "x", 1));
    ck_assert_int_eq(B.errors, 1);
    close_all();
}
END_TEST

START_TEST(write_after_close_is_refused)
{
    setup();
    stream_close(&A.st);
    ck_assert(!stream_write(&A.st, "x", 1));
    ck_assert_int_eq(A.errors, 0);
    close_all();
}
END_TEST

START_TEST(close_is_idempotent)
{
    setup();
    stream_close(&A.st);
    stream_close(&A.st);
    close_all(); /* asserts on_closed ran exactly once */
}
END_TEST

START_TEST(close_with_queued_write_cleans_up)
{
    uint8_t *big = malloc(BIG);
    ck_assert_ptr_nonnull(big);
    fill_pattern(big, BIG, 5);
    setup();
    ck_assert(stream_write(&A.st, big, BIG)); /* nobody reads: stays queued */
    ck_assert_uint_gt(A.st.queued, 0);
    stream_close(&A.st);
    stream_close(&B.st);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_uint_eq(A.st.queued, 0);
    ck_assert_int_eq(A.drains, 0);
    ck_assert_int_eq(A.errors, 0); /* cancellation on close is not an error */
    close_all();
    free(big);
}
END_TEST

/* ---- receive buffer ---- */

START_TEST(buffer_released_when_all_input_consumed)
{
    setup();
    stream_read_start(&B.st);
    ck_assert(stream_write(&A.st, "abcdef", 6));
    RUN_UNTIL(B.got_len >= 6);
    ck_assert_int_ge(B.reads, 1);
    ck_assert_ptr_null(B.st.buf);
    ck_assert_uint_eq(B.st.cap, 0);
    ck_assert_uint_eq(B.st.rpos, 0);
    ck_assert_uint_eq(B.st.rlen, 0);
    /* And a buffer is taken again for the next input. */
    ck_assert(stream_write(&A.st, "gh", 2));
    RUN_UNTIL(B.got_len >= 8);
    ck_assert_int_eq(memcmp(B.got, "abcdefgh", 8), 0);
    ck_assert_ptr_null(B.st.buf);
    close_all();
}
END_TEST

START_TEST(unconsumed_bytes_keep_the_buffer)
{
    setup();
    B.consume_limit = 3;
    stream_read_start(&B.st);
    ck_assert(stream_write(&A.st, "0123456789", 10));
    RUN_UNTIL(B.got_len >= 3);
    ck_assert_ptr_nonnull(B.st.buf);
    ck_assert_uint_eq(B.st.cap, stream_bufsize());
    ck_assert_uint_eq(stream_avail(&B.st), 7);
    ck_assert_int_eq(memcmp(B.st.buf + B.st.rpos, "3456789", 7), 0);
    close_all();
}
END_TEST

START_TEST(compact_moves_unconsumed_bytes_to_front)
{
    setup();
    B.consume_limit = 3;
    stream_read_start(&B.st);
    ck_assert(stream_write(&A.st, "0123456789", 10));
    RUN_UNTIL(B.got_len >= 3);
    ck_assert_uint_eq(B.st.rpos, 3);
    ck_assert_uint_eq(B.st.rlen, 10);
    uint8_t *buf = B.st.buf;
    stream_compact(&B.st);
    ck_assert_ptr_eq(B.st.buf, buf);
    ck_assert_uint_eq(B.st.rpos, 0);
    ck_assert_uint_eq(B.st.rlen, 7);
    ck_assert_int_eq(memcmp(B.st.buf, "3456789", 7), 0);
    close_all();
}
END_TEST

START_TEST(new_input_lands_after_unconsumed_bytes)
{
    setup();
    B.consume_none = true;
    stream_read_start(&B.st);
    ck_assert(stream_write(&A.st, "abc", 3));
    RUN_UNTIL(B.reads >= 1);
    ck_assert_uint_eq(stream_avail(&B.st), 3);
    ck_assert(stream_write(&A.st, "defg", 4));
    RUN_UNTIL(stream_avail(&B.st) >= 7);
    ck_assert_uint_eq(stream_avail(&B.st), 7);
    ck_assert_int_eq(memcmp(B.st.buf + B.st.rpos, "abcdefg", 7), 0);
    /* Consume all of it by hand, outside on_read, and compact: nothing is left. */
    B.st.rpos = B.st.rlen;
    stream_compact(&B.st);
    ck_assert_uint_eq(stream_avail(&B.st), 0);
    ck_assert_uint_eq(B.st.rpos, 0);
    close_all();
}
END_TEST

START_TEST(compact_without_buffer_is_harmless)
{
    setup();
    stream_compact(&B.st);
    ck_assert_ptr_null(B.st.buf);
    ck_assert_uint_eq(stream_avail(&B.st), 0);
    close_all();
}
END_TEST

/* stream.h: compact "returns the empty buffer", so an idle connection holds no buffer even
 * when it was drained outside on_read (client_resume -> stream_compact). */
START_TEST(compact_of_empty_buffer_returns_it)
{
    setup();
    B.consume_none = true;
    stream_read_start(&B.st);
    ck_assert(stream_write(&A.st, "abc", 3));
    RUN_UNTIL(B.reads >= 1);
    ck_assert_ptr_nonnull(B.st.buf);
    B.st.rpos = B.st.rlen; /* the owner consumes it later, outside on_read */
    stream_compact(&B.st);
    ck_assert_ptr_null(B.st.buf);
    close_all();
}
END_TEST

/* ---- back-pressure ---- */

START_TEST(full_buffer_stops_reading_until_consumed)
{
    enum { TOTAL = 4000 };
    uint8_t data[TOTAL];
    fill_pattern(data, TOTAL, 11);
    stream_set_bufsize(512); /* fork mode: only this process's free list, still empty */
    ck_assert_uint_eq(stream_bufsize(), 512);
    setup();
    B.consume_none = true;
    stream_read_start(&B.st);
    ck_assert(stream_write(&A.st, data, TOTAL));
    RUN_UNTIL(stream_full(&B.st));
    /* The owner left the buffer full: the stream stopped reading by itself. */
    ck_assert(!B.st.reading);
    ck_assert_uint_eq(B.st.cap, 512);
    ck_assert_uint_eq(stream_avail(&B.st), 512);
    ck_assert_int_eq(memcmp(B.st.buf, data, 512), 0);
    /* Nothing more arrives while stopped. */
    uv_run(&loop, UV_RUN_NOWAIT);
    ck_assert_uint_eq(B.st.rlen, 512);
    /* Consume everything from now on and resume: the rest arrives in order. */
    got_append(&B, B.st.buf, 512);
    B.st.rpos = B.st.rlen;
    stream_compact(&B.st);
    B.consume_none = false;
    stream_read_start(&B.st);
    ck_assert(B.st.reading);
    RUN_UNTIL(B.got_len >= TOTAL);
    ck_assert_uint_eq(B.got_len, TOTAL);
    ck_assert_int_eq(memcmp(B.got, data, TOTAL), 0);
    close_all();
}
END_TEST

START_TEST(bufsize_has_a_floor)
{
    stream_set_bufsize(1);
    ck_assert_uint_eq(stream_bufsize(), 512);
    stream_set_bufsize(65536);
    ck_assert_uint_eq(stream_bufsize(), 65536);
}
END_TEST

/* ---- addresses ---- */

START_TEST(unix_stream_addr_is_unix)
{
    char host[64];
    int port = -1;
    setup();
    stream_peer_addr(&A.st, host, sizeof(host), &port);
    ck_assert_str_eq(host, "unix");
    ck_assert_int_eq(port, 0);
    stream_local_addr(&A.st, host, sizeof(host), &port);
    ck_assert_str_eq(host, "unix");
    close_all();
}
END_TEST

/* ---- TCP over loopback ---- */

static int connect_status = 1;
static uv_tcp_t listener;

static void on_connect(struct stream *s, int status)
{
    (void)s;
    connect_status = status;
}

static const struct stream_ops tcp_ops = {
    .on_read = on_read,
    .on_error = on_error,
    .on_drain = on_drain,
    .on_connect = on_connect,
    .on_closed = on_closed,
};

static void on_connection(uv_stream_t *server, int status)
{
    ck_assert_int_eq(status, 0);
    ck_assert_int_eq(stream_init_tcp(&B.st, server->loop, &tcp_ops, &B), 0);
    ck_assert_int_eq(uv_accept(server, &B.st.h.stream), 0);
}

START_TEST(tcp_loopback_connect_round_trip_and_addresses)
{
    struct sockaddr_in addr;
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    char host[64];
    int port = -1;

    ck_assert_int_eq(uv_loop_init(&loop), 0);
    memset(&A, 0, sizeof(A));
    memset(&B, 0, sizeof(B));
    ck_assert_int_eq(uv_tcp_init(&loop, &listener), 0);
    ck_assert_int_eq(uv_ip4_addr("127.0.0.1", 0, &addr), 0);
    ck_assert_int_eq(uv_tcp_bind(&listener, (const struct sockaddr *)&addr, 0), 0);
    ck_assert_int_eq(uv_tcp_getsockname(&listener, (struct sockaddr *)&bound, &blen), 0);
    int lport = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    ck_assert_int_gt(lport, 0);
    ck_assert_int_eq(uv_listen((uv_stream_t *)&listener, 1, on_connection), 0);

    ck_assert_int_eq(stream_init_tcp(&A.st, &loop, &tcp_ops, &A), 0);
    ck_assert(!A.st.is_unix);
    ck_assert_int_eq(stream_connect_tcp(&A.st, (const struct sockaddr *)&bound), 0);
    RUN_UNTIL(connect_status != 1 && B.st.ops != NULL);
    ck_assert_int_eq(connect_status, 0);

    stream_peer_addr(&A.st, host, sizeof(host), &port);
    ck_assert_str_eq(host, "127.0.0.1");
    ck_assert_int_eq(port, lport);
    stream_local_addr(&B.st, host, sizeof(host), &port);
    ck_assert_str_eq(host, "127.0.0.1");
    ck_assert_int_eq(port, lport);

    struct tcp_tuning t = {.keepalive = 1, .keepidle = 60, .keepintvl = 10, .keepcnt = 3,
                           .user_timeout_ms = 1234};
    stream_set_tcp_options(&A.st, &t);
    uv_os_fd_t afd;
    ck_assert_int_eq(uv_fileno(&A.st.h.handle, &afd), 0);
    int v = 0;
    socklen_t vl = sizeof(v);
    ck_assert_int_eq(getsockopt(afd, IPPROTO_TCP, TCP_NODELAY, &v, &vl), 0);
    ck_assert_int_ne(v, 0);
    ck_assert_int_eq(getsockopt(afd, SOL_SOCKET, SO_KEEPALIVE, &v, &vl), 0);
    ck_assert_int_ne(v, 0);
    ck_assert_int_eq(getsockopt(afd, IPPROTO_TCP, TCP_KEEPIDLE, &v, &vl), 0);
    ck_assert_int_eq(v, 60);
    ck_assert_int_eq(getsockopt(afd, IPPROTO_TCP, TCP_KEEPINTVL, &v, &vl), 0);
    ck_assert_int_eq(v, 10);
    ck_assert_int_eq(getsockopt(afd, IPPROTO_TCP, TCP_KEEPCNT, &v, &vl), 0);
    ck_assert_int_eq(v, 3);
    ck_assert_int_eq(getsockopt(afd, IPPROTO_TCP, TCP_USER_TIMEOUT, &v, &vl), 0);
    ck_assert_int_eq(v, 1234);
    t.keepalive = 0;
    stream_set_tcp_options(&A.st, &t);
    ck_assert_int_eq(getsockopt(afd, SOL_SOCKET, SO_KEEPALIVE, &v, &vl), 0);
    ck_assert_int_eq(v, 0);
    stream_read_start(&B.st);
    ck_assert(stream_write(&A.st, "over tcp", 8));
    RUN_UNTIL(B.got_len >= 8);
    ck_assert_int_eq(memcmp(B.got, "over tcp", 8), 0);
    ck_assert_ptr_null(B.st.buf);

    uv_close((uv_handle_t *)&listener, NULL);
    close_all();
}
END_TEST

static Suite *stream_suite(void)
{
    Suite *s = suite_create("stream");
    TCase *tc;

    tc = tcase_create("round_trip");
    tcase_add_test(tc, write_then_read_round_trip);
    tcase_add_test(tc, batched_writes_go_out_together_after_the_loop_turn);
    tcase_add_test(tc, batched_output_reaches_the_peer_before_close);
    tcase_add_test(tc, batched_small_then_bulk_keep_their_order);
    tcase_add_test(tc, flush_hands_batched_output_to_the_kernel_now);
    tcase_add_test(tc, both_directions);
    tcase_add_test(tc, write_pktbuf_sends_built_message);
    tcase_add_test(tc, write_pktbuf_refuses_failed_buffer);
    tcase_add_test(tc, zero_length_write_is_ok_and_sends_nothing);
    suite_add_tcase(s, tc);

    tc = tcase_create("large_write");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, large_write_is_queued_drained_and_arrives_in_order);
    tcase_add_test(tc, caller_buffer_may_change_after_queued_write);
    tcase_add_test(tc, writes_behind_a_queue_keep_order_and_drain_once);
    tcase_add_test(tc, close_with_queued_write_cleans_up);
    suite_add_tcase(s, tc);

    tc = tcase_create("eof");
    tcase_add_test(tc, peer_close_reports_eof_once);
    tcase_add_test(tc, data_before_eof_is_delivered_first);
    tcase_add_test(tc, write_after_error_is_refused);
    tcase_add_test(tc, write_after_close_is_refused);
    tcase_add_test(tc, close_is_idempotent);
    suite_add_tcase(s, tc);

    tc = tcase_create("receive_buffer");
    tcase_add_test(tc, buffer_released_when_all_input_consumed);
    tcase_add_test(tc, unconsumed_bytes_keep_the_buffer);
    tcase_add_test(tc, compact_moves_unconsumed_bytes_to_front);
    tcase_add_test(tc, new_input_lands_after_unconsumed_bytes);
    tcase_add_test(tc, compact_without_buffer_is_harmless);
    tcase_add_test(tc, compact_of_empty_buffer_returns_it);
    suite_add_tcase(s, tc);

    tc = tcase_create("back_pressure");
    tcase_add_test(tc, full_buffer_stops_reading_until_consumed);
    tcase_add_test(tc, bufsize_has_a_floor);
    suite_add_tcase(s, tc);

    tc = tcase_create("addresses");
    tcase_add_test(tc, unix_stream_addr_is_unix);
    tcase_add_test(tc, tcp_loopback_connect_round_trip_and_addresses);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(stream_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
