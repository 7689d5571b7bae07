/*
 * runtime.c: the process-wide state and the clock. Holds data only; no behaviour.
 */
#include "pgusher/runtime.h"

struct runtime G;

uint64_t now_usec(void)
{
    return uv_hrtime() / 1000;
}

bool timeout_expired(uint64_t since, uint64_t now, usec_t timeout)
{
    return timeout > 0 && since > 0 && now > since && now - since > (uint64_t)timeout;
}
