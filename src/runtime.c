/*
 * runtime.c: the process-wide state, the clock, and the settings in force read as plain
 * values (the TCP tuning). No behaviour.
 */
#include "pgusher/runtime.h"

#include "pgusher/config.h"
#include "pgusher/stream.h"

struct runtime G;

uint64_t now_usec(void)
{
    return uv_hrtime() / 1000;
}

void runtime_tcp_tuning(struct tcp_tuning *t)
{
    const struct cf_global *g = &G.cf->g;
    t->keepalive = g->tcp_keepalive;
    t->keepidle = g->tcp_keepidle;
    t->keepintvl = g->tcp_keepintvl;
    t->keepcnt = g->tcp_keepcnt;
    t->user_timeout_ms = g->tcp_user_timeout > 0 ? (int)(g->tcp_user_timeout / 1000) : 0;
    t->sockbuf = g->tcp_socket_buffer;
}

bool timeout_expired(uint64_t since, uint64_t now, usec_t timeout)
{
    return timeout > 0 && since > 0 && now > since && now - since > (uint64_t)timeout;
}
