/*
 * test_tls.c: pins tls.c and the TLS path of stream.c: contexts built from settings (and their
 * errors), real handshakes between two streams over a socketpair on a libuv loop, certificate
 * checks, hostile peers. Certificates are made once per run with the openssl CLI in a temp dir.
 */
#include "pgusher/config.h"
#include "pgusher/stream.h"
#include "pgusher/tls.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char dir[] = "/tmp/pgusher-tls-XXXXXX";

/* CA1 signs server (localhost, 127.0.0.1), client (CN alice) and expired; CA2 signs other. */
static const char certs_script[] =
    "set -e; cd \"$D\"; exec >/dev/null 2>&1\n"
    "mk_ca() { openssl req -x509 -newkey rsa:2048 -nodes -keyout $1.key -out $1.crt -days 30 "
    "  -subj /CN=$1 -addext basicConstraints=critical,CA:TRUE; }\n"
    "mk_ca ca; mk_ca ca2\n"
    "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.ext\n"
    "sign() { openssl req -newkey rsa:2048 -nodes -keyout $1.key -out $1.csr -subj /CN=$2;"
    "  openssl x509 -req -in $1.csr -CA $3.crt -CAkey $3.key -CAcreateserial -days 30 "
    "  -extfile san.ext -out $1.crt; }\n"
    "sign server localhost ca; sign client alice ca; sign other localhost ca2\n"
    "openssl req -newkey rsa:2048 -nodes -keyout expired.key -out expired.csr -subj /CN=localhost\n"
    "mkdir -p db; : > db/index; echo 01 > db/serial\n"
    "printf '[ca]\\ndefault_ca=c\\n[c]\\ndatabase=db/index\\nserial=db/serial\\nnew_certs_dir=db\\n"
    "default_md=sha256\\npolicy=p\\ncopy_extensions=copy\\n[p]\\ncommonName=supplied\\n' > ca.cnf\n"
    "openssl ca -batch -config ca.cnf -cert ca.crt -keyfile ca.key -in expired.csr "
    "  -startdate 20200101000000Z -enddate 20200201000000Z -extfile san.ext -out expired.crt\n";

static void make_certs(void)
{
    if (!mkdtemp(dir))
        abort();
    setenv("D", dir, 1);
    if (system(certs_script) != 0) {
        fprintf(stderr, "making certificates in %s failed\n", dir);
        abort();
    }
}

static void remove_certs(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

static char *path(const char *name)
{
    static char bufs[8][256];
    static int n;
    char *b = bufs[n++ % 8];
    snprintf(b, 256, "%s/%s", dir, name);
    return b;
}

/* Settings as config.c defaults them, TLS off on both sides. */
static void base_cf(struct cf_global *g)
{
    memset(g, 0, sizeof(*g));
    g->client_tls_sslmode = "disable";
    g->client_tls_protocols = "secure";
    g->client_tls_ciphers = "default";
    g->client_tls13_ciphers = "";
    g->client_tls_ecdhcurve = "auto";
    g->client_tls_dheparams = "auto";
    g->client_tls_key_file = g->client_tls_cert_file = g->client_tls_ca_file = "";
    g->server_tls_sslmode = "disable";
    g->server_tls_protocols = "secure";
    g->server_tls_ciphers = "default";
    g->server_tls13_ciphers = "";
    g->server_tls_key_file = g->server_tls_cert_file = g->server_tls_ca_file = "";
}

static void server_side(struct cf_global *g, const char *name, const char *mode)
{
    char k[64], c[64];
    snprintf(k, sizeof(k), "%s.key", name);
    snprintf(c, sizeof(c), "%s.crt", name);
    g->client_tls_sslmode = (char *)mode;
    g->client_tls_key_file = path(k);
    g->client_tls_cert_file = path(c);
}

/* ---------------------------------------------------------------- loop harness */

struct peer {
    struct stream st;
    uint8_t *got;
    size_t got_len, got_cap;
    int ready, failed, errors, closed, err;
    char why[256];
};

static uv_loop_t loop;
static struct peer A, B; /* A accepts (pgusher facing a client), B connects */

static void on_read(struct stream *s)
{
    struct peer *p = s->owner;
    uint32_t n = stream_avail(s);
    if (p->got_len + n > p->got_cap) {
        p->got_cap = (p->got_len + n) * 2;
        p->got = realloc(p->got, p->got_cap);
        ck_assert_ptr_nonnull(p->got);
    }
    memcpy(p->got + p->got_len, s->buf + s->rpos, n);
    p->got_len += n;
    s->rpos += n;
}

static void on_error(struct stream *s, int err)
{
    struct peer *p = s->owner;
    p->errors++;
    p->err = err;
}

static void on_closed(struct stream *s)
{
    ((struct peer *)s->owner)->closed++;
}

static void on_tls_ready(struct stream *s, bool ok, const char *why)
{
    struct peer *p = s->owner;
    if (ok) {
        p->ready++;
    } else {
        p->failed++;
        snprintf(p->why, sizeof(p->why), "%s", why);
    }
}

static const struct stream_ops ops = {
    .on_read = on_read,
    .on_error = on_error,
    .on_closed = on_closed,
    .on_tls_ready = on_tls_ready,
};

static void setup(void)
{
    int fds[2];
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    memset(&A, 0, sizeof(A));
    memset(&B, 0, sizeof(B));
    ck_assert_int_eq(stream_init_pipe(&A.st, &loop, &ops, &A), 0);
    ck_assert_int_eq(stream_open_fd(&A.st, fds[0]), 0);
    ck_assert_int_eq(stream_init_pipe(&B.st, &loop, &ops, &B), 0);
    ck_assert_int_eq(stream_open_fd(&B.st, fds[1]), 0);
}

static void close_all(void)
{
    stream_close(&A.st);
    stream_close(&B.st);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(A.closed, 1);
    ck_assert_int_eq(B.closed, 1);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    free(A.got);
    free(B.got);
    tls_release_all();
}

#define RUN_UNTIL(cond)                                                                            \
    do {                                                                                           \
        while (!(cond))                                                                            \
            ck_assert_msg(uv_run(&loop, UV_RUN_ONCE) != 0 || (cond),                               \
                          "loop ran dry before: " #cond);                                          \
    } while (0)

/* Build contexts, start TLS on both ends, run until both know the outcome. */
static void handshake(const struct cf_global *g, const char *host)
{
    char err[256];
    ck_assert_msg(tls_apply(g, err, sizeof(err)), "%s", err);
    setup();
    ck_assert_int_eq(stream_start_tls(&A.st, tls_accept_ctx(), NULL), 0);
    ck_assert_int_eq(stream_start_tls(&B.st, tls_connect_ctx(), host), 0);
    RUN_UNTIL((A.ready || A.failed || A.errors) && (B.ready || B.failed || B.errors));
}

/* ---------------------------------------------------------------- handshakes */

START_TEST(require_round_trip_both_ways_and_tls_column)
{
    struct cf_global g;
    base_cf(&g);
    server_side(&g, "server", "require");
    g.server_tls_sslmode = "require";
    handshake(&g, NULL);
    ck_assert_int_eq(A.ready, 1);
    ck_assert_int_eq(B.ready, 1);
    ck_assert(stream_write(&B.st, "ping", 4));
    ck_assert(stream_write(&A.st, "pong!", 5));
    RUN_UNTIL(A.got_len == 4 && B.got_len == 5);
    ck_assert(memcmp(A.got, "ping", 4) == 0);
    ck_assert(memcmp(B.got, "pong!", 5) == 0);
    char col[128];
    stream_tls_describe(&A.st, col, sizeof(col)); /* the accept side: a client's column */
    ck_assert_str_eq(col, "TLSv1.3/TLS_AES_256_GCM_SHA384");
    stream_tls_describe(&B.st, col, sizeof(col));
    ck_assert_str_eq(col, "TLSv1.3/TLS_AES_256_GCM_SHA384/ECDH=X25519");
    close_all();
}
END_TEST

START_TEST(large_messages_cross_in_both_directions_with_batching)
{
    struct cf_global g;
    base_cf(&g);
    server_side(&g, "server", "require");
    g.server_tls_sslmode = "require";
    stream_set_bufsize(4096);
    handshake(&g, NULL);
    stream_batch_init(&loop);
    size_t n = 300000;
    uint8_t *d = malloc(n);
    for (size_t i = 0; i < n; i++)
        d[i] = (uint8_t)(i * 7 + (i >> 11));
    /* Many small writes (batched) then bulk, both ways. */
    for (int i = 0; i < 100; i++) {
        ck_assert(stream_write(&B.st, d + i * 10, 10));
        ck_assert(stream_write(&A.st, d + i * 10, 10));
    }
    ck_assert(stream_write(&B.st, d + 1000, n - 1000));
    ck_assert(stream_write(&A.st, d + 1000, n - 1000));
    RUN_UNTIL(A.got_len == n && B.got_len == n);
    ck_assert(memcmp(A.got, d, n) == 0);
    ck_assert(memcmp(B.got, d, n) == 0);
    free(d);
    stream_batch_stop();
    close_all();
}
END_TEST

/* The owner stops reading with a full buffer; TLS still holds plaintext; resuming delivers it
 * without any new socket event. */
static int stop_after;
static void on_read_slow(struct stream *s)
{
    struct peer *p = s->owner;
    on_read(s);
    if (p->got_len >= (size_t)stop_after)
        stream_read_stop(s);
}

START_TEST(held_plaintext_is_delivered_when_reading_resumes)
{
    struct cf_global g;
    base_cf(&g);
    server_side(&g, "server", "require");
    g.server_tls_sslmode = "require";
    stream_set_bufsize(1024);
    handshake(&g, NULL);
    static struct stream_ops slow;
    slow = ops;
    slow.on_read = on_read_slow;
    A.st.ops = &slow;
    stop_after = 100;
    uint8_t d[8000];
    memset(d, 'x', sizeof(d));
    ck_assert(stream_write(&B.st, d, sizeof(d))); /* one record */
    RUN_UNTIL(A.got_len >= 100);
    ck_assert(!A.st.reading);
    ck_assert_uint_lt(A.got_len, sizeof(d));
    stop_after = 1 << 30;
    stream_read_start(&A.st);
    RUN_UNTIL(A.got_len == sizeof(d));
    close_all();
}
END_TEST

/* Many records arrive in one socket read and the owner stops after the first: the ciphertext
 * TLS has not read yet is kept (the read buffer is shared by all streams) and delivered, in
 * order, when reading resumes; meanwhile another stream's reads use the shared buffer. */
START_TEST(unread_ciphertext_is_kept_when_reading_stops)
{
    struct cf_global g;
    base_cf(&g);
    server_side(&g, "server", "require");
    g.server_tls_sslmode = "require";
    stream_set_bufsize(1024);
    handshake(&g, NULL);
    static struct stream_ops slow;
    slow = ops;
    slow.on_read = on_read_slow;
    A.st.ops = &slow;
    stop_after = 100;
    uint8_t d[20 * 300];
    for (size_t i = 0; i < sizeof(d); i++)
        d[i] = (uint8_t)(i * 13 + (i >> 8));
    for (int i = 0; i < 20; i++)
        ck_assert(stream_write(&B.st, d + i * 300, 300)); /* 20 records, one write each */
    RUN_UNTIL(A.got_len >= 100);
    ck_assert(!A.st.reading);
    /* Traffic the other way uses the shared buffer while A holds its rest. */
    ck_assert(stream_write(&A.st, "pong", 4));
    RUN_UNTIL(B.got_len == 4);
    ck_assert_uint_lt(A.got_len, sizeof(d));
    stop_after = 1 << 30;
    stream_read_start(&A.st);
    RUN_UNTIL(A.got_len == sizeof(d));
    ck_assert(memcmp(A.got, d, sizeof(d)) == 0);
    close_all();
}
END_TEST

/* A graceful close sends the batched output, then a close_notify: the peer sees a clean end of
 * TLS, not a truncation. stream_tls_handshaking says when nothing can be sent yet. */
START_TEST(graceful_close_sends_close_notify_after_batched_output)
{
    struct cf_global g;
    char err[256];
    base_cf(&g);
    server_side(&g, "server", "require");
    g.server_tls_sslmode = "require";
    ck_assert_msg(tls_apply(&g, err, sizeof(err)), "%s", err);
    setup();
    ck_assert(!stream_tls_handshaking(&A.st));
    ck_assert_int_eq(stream_start_tls(&A.st, tls_accept_ctx(), NULL), 0);
    ck_assert_int_eq(stream_start_tls(&B.st, tls_connect_ctx(), NULL), 0);
    ck_assert(stream_tls_handshaking(&A.st));
    ck_assert(stream_tls_handshaking(&B.st));
    RUN_UNTIL(A.ready && B.ready);
    ck_assert(!stream_tls_handshaking(&A.st));
    ck_assert(!stream_tls_handshaking(&B.st));
    stream_batch_init(&loop);
    ck_assert(stream_write(&A.st, "bye", 3)); /* batched: not written yet */
    stream_close(&A.st);
    RUN_UNTIL(B.errors);
    ck_assert_uint_eq(B.got_len, 3);
    ck_assert(memcmp(B.got, "bye", 3) == 0);
    ck_assert_int_eq(B.err, UV_EOF);
    ck_assert(stream_tls_peer_closed(&B.st));
    ck_assert(!stream_tls_peer_closed(&A.st));
    stream_batch_stop();
    close_all();
}
END_TEST

/* A peer that just drops the socket is an EOF without close_notify. */
START_TEST(socket_close_without_close_notify_is_not_a_clean_close)
{
    struct cf_global g;
    base_cf(&g);
    server_side(&g, "server", "require");
    g.server_tls_sslmode = "require";
    handshake(&g, NULL);
    signal(SIGPIPE, SIG_IGN); /* A's own close_notify meets its shut socket (pgusher ignores it) */
    uv_os_fd_t fd;
    ck_assert_int_eq(uv_fileno(&A.st.h.handle, &fd), 0);
    ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
    RUN_UNTIL(B.errors);
    ck_assert_int_eq(B.err, UV_EOF);
    ck_assert(!stream_tls_peer_closed(&B.st));
    close_all();
}
END_TEST

START_TEST(verify_full_accepts_right_host_and_ip)
{
    struct cf_global g;
    base_cf(&g);
    server_side(&g, "server", "require");
    g.server_tls_sslmode = "verify-full";
    g.server_tls_ca_file = path("ca.crt");
    handshake(&g, "localhost");
    ck_assert_msg(B.ready == 1, "%s", B.why);
    close_all();
    handshake(&g, "127.0.0.1");
    ck_assert_msg(B.ready == 1, "%s", B.why);
    close_all();
}
END_TEST

static void expect_refused(const char *cert, const char *mode, const char *host, const char *why)
{
    struct cf_global g;
    base_cf(&g);
    server_side(&g, cert, "require");
    g.server_tls_sslmode = (char *)mode;
    g.server_tls_ca_file = path("ca.crt");
    handshake(&g, host);
    ck_assert_int_eq(B.failed, 1);
    ck_assert_int_eq(B.ready, 0);
    ck_assert_msg(strstr(B.why, why) != NULL, "got \"%s\"", B.why);
    RUN_UNTIL(A.failed || A.errors); /* the alert reaches the accepting side */
    ck_assert_int_eq(A.ready, 0);
    close_all();
}

START_TEST(verify_full_refuses_host_mismatch)
{
    expect_refused("server", "verify-full", "db.example.com", "hostname mismatch");
    expect_refused("server", "verify-full", "127.0.0.2", "IP address mismatch");
}
END_TEST

START_TEST(verify_ca_refuses_wrong_ca_and_expired)
{
    expect_refused("other", "verify-ca", NULL, "unable to get local issuer certificate");
    expect_refused("expired", "verify-full", "localhost", "certificate has expired");
}
END_TEST

START_TEST(client_certificate_checked_in_verify_ca)
{
    struct cf_global g;
    base_cf(&g);
    server_side(&g, "server", "verify-full");
    g.client_tls_ca_file = path("ca.crt");
    g.server_tls_sslmode = "require";
    handshake(&g, NULL); /* no client certificate */
    RUN_UNTIL(A.failed);
    ck_assert_msg(strstr(A.why, "certificate") != NULL, "got \"%s\"", A.why);
    close_all();
    g.server_tls_key_file = path("client.key");
    g.server_tls_cert_file = path("client.crt");
    handshake(&g, NULL);
    ck_assert_msg(A.ready == 1, "%s", A.why);
    char cn[64];
    ck_assert(stream_tls_peer_cn(&A.st, cn, sizeof(cn)));
    ck_assert_str_eq(cn, "alice");
    close_all();
}
END_TEST

START_TEST(garbage_instead_of_client_hello_is_refused)
{
    struct cf_global g;
    char err[256];
    base_cf(&g);
    server_side(&g, "server", "require");
    ck_assert_msg(tls_apply(&g, err, sizeof(err)), "%s", err);
    setup();
    ck_assert_int_eq(stream_start_tls(&A.st, tls_accept_ctx(), NULL), 0);
    stream_read_start(&B.st);
    ck_assert(stream_write(&B.st, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27));
    RUN_UNTIL(A.failed);
    ck_assert_int_eq(A.errors, 0);
    ck_assert_msg(strlen(A.why) > 0, "no reason");
    ck_assert_uint_eq(A.got_len, 0);
    close_all();
}
END_TEST

START_TEST(peer_closing_mid_handshake_is_reported)
{
    struct cf_global g;
    char err[256];
    base_cf(&g);
    server_side(&g, "server", "require");
    ck_assert_msg(tls_apply(&g, err, sizeof(err)), "%s", err);
    setup();
    ck_assert_int_eq(stream_start_tls(&A.st, tls_accept_ctx(), NULL), 0);
    /* Half a ClientHello record header, then the peer goes away. */
    ck_assert(stream_write(&B.st, "\x16\x03\x01\x02", 4));
    stream_close(&B.st);
    RUN_UNTIL(A.failed);
    ck_assert_str_eq(A.why, "connection closed during the TLS handshake");
    close_all();
}
END_TEST

/* Bytes behind the request in the buffer are refused (CVE-2021-23214). */
static void on_read_keep(struct stream *s)
{
    ((struct peer *)s->owner)->got_len = stream_avail(s);
}

START_TEST(plaintext_left_behind_the_request_is_refused)
{
    struct cf_global g;
    char err[256];
    base_cf(&g);
    server_side(&g, "server", "require");
    ck_assert_msg(tls_apply(&g, err, sizeof(err)), "%s", err);
    setup();
    static struct stream_ops keep;
    keep = ops;
    keep.on_read = on_read_keep;
    A.st.ops = &keep;
    stream_read_start(&A.st);
    ck_assert(stream_write(&B.st, "injected", 8));
    RUN_UNTIL(A.got_len == 8);
    ck_assert_int_eq(stream_start_tls(&A.st, tls_accept_ctx(), NULL), UV_EPROTO);
    ck_assert_str_eq(stream_tls_error(&A.st), "unencrypted data after the TLS request");
    A.got_len = 0;
    close_all();
}
END_TEST

START_TEST(reload_with_a_broken_key_keeps_the_running_context)
{
    struct cf_global g;
    char err[256];
    base_cf(&g);
    server_side(&g, "server", "require");
    ck_assert(tls_apply(&g, err, sizeof(err)));
    struct tls_ctx *before = tls_accept_ctx();
    struct tls_ctx *held = tls_ctx_ref(before);
    g.client_tls_key_file = path("client.key");
    ck_assert(!tls_apply(&g, err, sizeof(err)));
    ck_assert_msg(strstr(err, "key does not match certificate") != NULL, "%s", err);
    ck_assert_ptr_eq(tls_accept_ctx(), before);
    g.client_tls_key_file = path("server.key");
    ck_assert(tls_apply(&g, err, sizeof(err)));
    ck_assert_ptr_ne(tls_accept_ctx(), NULL);
    ck_assert_int_eq(tls_ctx_mode(held), TLS_REQUIRE); /* still alive for its connections */
    tls_ctx_unref(held);
    tls_release_all();
}
END_TEST

static void copy_file(const char *from, const char *to)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s.tmp' && mv '%s.tmp' '%s'", from, to, to, to);
    ck_assert(system(cmd) == 0);
}

START_TEST(reload_replaces_the_server_context_only_when_its_settings_change)
{
    struct cf_global g;
    char err[256];
    base_cf(&g);
    uint64_t gen0 = tls_connect_gen();
    g.server_tls_sslmode = "require";
    ck_assert_msg(tls_apply(&g, err, sizeof(err)), "%s", err);
    struct tls_ctx *c1 = tls_connect_ctx();
    uint64_t gen1 = tls_connect_gen();
    ck_assert_ptr_ne(c1, NULL);
    ck_assert(gen1 != gen0);
    /* Same settings, and a change on the client side only: the running one stays. */
    ck_assert(tls_apply(&g, err, sizeof(err)));
    server_side(&g, "server", "require");
    ck_assert_msg(tls_apply(&g, err, sizeof(err)), "%s", err);
    ck_assert_ptr_eq(tls_connect_ctx(), c1);
    ck_assert(tls_connect_gen() == gen1);
    /* Another server setting: a new context, a new generation. */
    g.server_tls_protocols = "tlsv1.3";
    ck_assert(tls_apply(&g, err, sizeof(err)));
    ck_assert(tls_connect_gen() != gen1);
    uint64_t gen2 = tls_connect_gen();
    /* A reload that fails changes nothing. */
    g.server_tls_sslmode = "verify-ca";
    g.server_tls_ca_file = path("no-such-ca.crt");
    ck_assert(!tls_apply(&g, err, sizeof(err)));
    ck_assert(tls_connect_gen() == gen2);
    /* The same file name with other contents is a change. */
    char *ca = path("reloaded-ca.crt");
    copy_file(path("ca.crt"), ca);
    g.server_tls_ca_file = ca;
    ck_assert_msg(tls_apply(&g, err, sizeof(err)), "%s", err);
    uint64_t gen3 = tls_connect_gen();
    ck_assert(gen3 != gen2);
    ck_assert(tls_apply(&g, err, sizeof(err)));
    ck_assert(tls_connect_gen() == gen3);
    copy_file(path("ca2.crt"), ca);
    ck_assert(tls_apply(&g, err, sizeof(err)));
    ck_assert(tls_connect_gen() != gen3);
    /* Back to disable: a change too (server connections made under TLS are obsolete). */
    uint64_t gen4 = tls_connect_gen();
    base_cf(&g);
    ck_assert(tls_apply(&g, err, sizeof(err)));
    ck_assert_ptr_eq(tls_connect_ctx(), NULL);
    ck_assert(tls_connect_gen() != gen4);
    tls_release_all();
}
END_TEST

/* ---------------------------------------------------------------- context errors */

static void expect_build_error(struct cf_global *g, const char *want)
{
    struct tls_ctx *a = (struct tls_ctx *)1, *c = (struct tls_ctx *)1;
    char err[256] = "";
    ck_assert(!tls_build(g, &a, &c, err, sizeof(err)));
    ck_assert_ptr_null(a);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err, want) != NULL, "got \"%s\", want \"%s\"", err, want);
}

START_TEST(build_errors_name_the_setting_and_the_reason)
{
    struct cf_global g;
    char want[300];
    base_cf(&g);
    server_side(&g, "server", "require");
    g.client_tls_key_file = "/x/y.key";
    expect_build_error(&g, "client_tls_key_file /x/y.key: no such file");
    base_cf(&g);
    server_side(&g, "server", "require");
    g.client_tls_cert_file = path("client.crt");
    snprintf(want, sizeof(want), "client_tls_key_file %s: key does not match certificate",
             path("server.key"));
    expect_build_error(&g, want);
    base_cf(&g);
    g.client_tls_sslmode = "require";
    expect_build_error(&g, "client_tls_sslmode require needs client_tls_key_file");
    base_cf(&g);
    server_side(&g, "server", "verify-ca");
    expect_build_error(&g, "client_tls_sslmode verify-ca needs client_tls_ca_file");
    base_cf(&g);
    g.server_tls_sslmode = "require";
    g.server_tls_protocols = "tlsv1.2,tlsv9";
    expect_build_error(&g, "server_tls_protocols \"tlsv1.2,tlsv9\": unknown protocol \"tlsv9\"");
    g.server_tls_protocols = "secure";
    g.server_tls_ciphers = "NO-SUCH-CIPHER";
    expect_build_error(&g, "server_tls_ciphers \"NO-SUCH-CIPHER\": no cipher match");
    g.server_tls_ciphers = "default";
    g.server_tls13_ciphers = "TLS_AES_256_GCM_SHA384:TLS_BOGUS";
    expect_build_error(&g, "server_tls13_ciphers");
    base_cf(&g);
    server_side(&g, "server", "require");
    g.client_tls_ecdhcurve = "nosuchcurve";
    expect_build_error(&g, "client_tls_ecdhcurve \"nosuchcurve\": unknown curve");
    g.client_tls_ecdhcurve = "auto";
    g.client_tls_dheparams = "huge";
    expect_build_error(&g, "client_tls_dheparams");
    base_cf(&g);
    g.server_tls_sslmode = "sometimes";
    expect_build_error(&g, "server_tls_sslmode \"sometimes\": unknown mode");
}
END_TEST

START_TEST(settings_values_pgbouncer_documents_build)
{
    struct cf_global g;
    struct tls_ctx *a, *c;
    char err[256];
    base_cf(&g);
    ck_assert(tls_build(&g, &a, &c, err, sizeof(err)));
    ck_assert_ptr_null(a); /* disable on both sides: no context */
    ck_assert_ptr_null(c);
    server_side(&g, "server", "prefer");
    g.client_tls_protocols = "tlsv1.2,tlsv1.3";
    g.client_tls_ciphers = "all";
    g.client_tls13_ciphers = "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256";
    g.client_tls_ecdhcurve = "prime256v1";
    g.client_tls_dheparams = "legacy";
    g.server_tls_sslmode = "verify-ca";
    g.server_tls_protocols = "legacy";
    g.server_tls_ciphers = "HIGH:!aNULL";
    ck_assert_msg(tls_build(&g, &a, &c, err, sizeof(err)), "%s", err);
    ck_assert_int_eq(tls_ctx_mode(a), TLS_PREFER);
    ck_assert(tls_ctx_is_accept(a));
    ck_assert_int_eq(tls_ctx_mode(c), TLS_VERIFY_CA);
    ck_assert(!tls_ctx_is_accept(c));
    tls_ctx_unref(a);
    tls_ctx_unref(c);
}
END_TEST

START_TEST(protocols_parser)
{
    unsigned m;
    char err[160];
    ck_assert(tls_parse_protocols("secure", &m, err, sizeof(err)));
    ck_assert_uint_eq(m, TLS_PROTO_1_2 | TLS_PROTO_1_3);
    ck_assert(tls_parse_protocols("all", &m, err, sizeof(err)));
    ck_assert_uint_eq(m, 15);
    ck_assert(tls_parse_protocols("all,!tlsv1.0:-tlsv1.1", &m, err, sizeof(err)));
    ck_assert_uint_eq(m, TLS_PROTO_1_2 | TLS_PROTO_1_3);
    ck_assert(tls_parse_protocols(" TLSv1.3 ", &m, err, sizeof(err)));
    ck_assert_uint_eq(m, TLS_PROTO_1_3);
    ck_assert(!tls_parse_protocols("", &m, err, sizeof(err)));
    ck_assert(!tls_parse_protocols("tlsv1.3,!tlsv1.3", &m, err, sizeof(err)));
    ck_assert(!tls_parse_protocols("sslv3", &m, err, sizeof(err)));
    ck_assert(strstr(err, "sslv3") != NULL);
}
END_TEST

START_TEST(tls13_only_handshake_honours_protocols)
{
    struct cf_global g;
    base_cf(&g);
    server_side(&g, "server", "require");
    g.client_tls_protocols = "tlsv1.3";
    g.server_tls_sslmode = "require";
    g.server_tls_protocols = "tlsv1.2";
    handshake(&g, NULL);
    ck_assert_int_eq(A.ready + B.ready, 0);
    ck_assert_int_eq(B.failed, 1);
    close_all();
}
END_TEST

int main(void)
{
    make_certs();
    Suite *s = suite_create("tls");
    TCase *tc = tcase_create("settings");
    tcase_add_test(tc, protocols_parser);
    tcase_add_test(tc, build_errors_name_the_setting_and_the_reason);
    tcase_add_test(tc, settings_values_pgbouncer_documents_build);
    tcase_add_test(tc, reload_with_a_broken_key_keeps_the_running_context);
    tcase_add_test(tc, reload_replaces_the_server_context_only_when_its_settings_change);
    suite_add_tcase(s, tc);
    tc = tcase_create("handshake");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, require_round_trip_both_ways_and_tls_column);
    tcase_add_test(tc, large_messages_cross_in_both_directions_with_batching);
    tcase_add_test(tc, held_plaintext_is_delivered_when_reading_resumes);
    tcase_add_test(tc, unread_ciphertext_is_kept_when_reading_stops);
    tcase_add_test(tc, graceful_close_sends_close_notify_after_batched_output);
    tcase_add_test(tc, socket_close_without_close_notify_is_not_a_clean_close);
    tcase_add_test(tc, verify_full_accepts_right_host_and_ip);
    tcase_add_test(tc, verify_full_refuses_host_mismatch);
    tcase_add_test(tc, verify_ca_refuses_wrong_ca_and_expired);
    tcase_add_test(tc, client_certificate_checked_in_verify_ca);
    tcase_add_test(tc, tls13_only_handshake_honours_protocols);
    suite_add_tcase(s, tc);
    tc = tcase_create("hostile");
    tcase_add_test(tc, garbage_instead_of_client_hello_is_refused);
    tcase_add_test(tc, peer_closing_mid_handshake_is_reported);
    tcase_add_test(tc, plaintext_left_behind_the_request_is_refused);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    remove_certs();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
