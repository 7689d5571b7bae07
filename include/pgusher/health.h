/*
 * health.h: the fall/rise state machine and the active probes: a libuv timer per backend
 * runs a short login + "SELECT pg_is_in_recovery(), <lsn>, <replay age>" every
 * health_check_period, bounded by health_check_timeout.
 */
#ifndef PGUSHER_HEALTH_H
#define PGUSHER_HEALTH_H

#include "pgusher/backend.h"

/* Feed one check result. Returns true when the state changed. Pure. */
bool hc_feed(struct hc_state *h, bool ok, int rise, int fall);
/* Mark down at once (a passive signal). Returns true when the state changed. */
bool hc_force_down(struct hc_state *h);

/* What the probe query's DataRow says. */
struct hc_probe_row {
    enum be_role role; /* pg_is_in_recovery(): standby or primary */
    uint64_t lsn;      /* replay (standby) or current (primary) position */
    double replay_age; /* seconds, finite and >= 0 */
    uint64_t receive_lsn;
};
/* Parse a DataRow body of the probe query. True only for a well-formed row: every column
 * length checked against the message before it is read, at least three columns, a 't'/'f'
 * first column and a finite non-negative age. Pure: fit for fuzzing. */
bool hc_parse_probe_row(const uint8_t *body, uint32_t len, struct hc_probe_row *out);

/* Start (or restart) the periodic probing of a backend; probe_now runs one immediately. */
void health_schedule(struct backend *be, bool probe_now);
/* Stop probing (the backend is going away). */
void health_stop(struct backend *be);

#endif
