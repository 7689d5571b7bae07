/*
 * runtime.c: the process-wide state and the clock. Holds data only; no behaviour.
 */
#include "pgusher/runtime.h"

struct runtime G;

uint64_t now_usec(void)
{
    return uv_hrtime() / 1000;
}
