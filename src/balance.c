/*
 * balance.c: eligibility by target_session_attrs and replica lag, and the choice among
 * eligible backends by load_balance_hosts. Pure functions; unit-tested without servers.
 */
#include "pgusher/balance.h"

#include <stdio.h>

bool lb_role_acceptable(int tsa, enum be_role role)
{
    switch (tsa) {
    case TSA_READ_WRITE:
    case TSA_PRIMARY:
        return role != ROLE_STANDBY;
    case TSA_READ_ONLY:
    case TSA_STANDBY:
        return role != ROLE_PRIMARY;
    default:
        return true;
    }
}

/* Up, or not checked yet but listed since startup: those are used at once, as PgBouncer
 * would, until a check or a failed connection says otherwise. A host added later (reload)
 * must first pass health_check_rise checks. */
static bool usable(const struct backend *be)
{
    return be->hc.state == BE_UP || (be->hc.state == BE_UNKNOWN && be->hc.fast_start);
}

uint64_t lb_primary_lsn(struct backend *const *bes, int n, bool *have)
{
    uint64_t lsn = 0;
    *have = false;
    for (int i = 0; i < n; i++) {
        if (usable(bes[i]) && bes[i]->role == ROLE_PRIMARY && bes[i]->lag_known) {
            *have = true;
            if (bes[i]->lsn > lsn)
                lsn = bes[i]->lsn;
        }
    }
    return lsn;
}

void lb_behind_note(struct backend *be, usec_t now, uint64_t receive_lsn, uint64_t replay_lsn)
{
    int keep = 0;
    for (int i = 0; i < be->behind.n; i++) {
        if (be->behind.lsn[i] > replay_lsn) {
            be->behind.at[keep] = be->behind.at[i];
            be->behind.lsn[keep] = be->behind.lsn[i];
            keep++;
        }
    }
    be->behind.n = keep;
    int cap = (int)(sizeof(be->behind.at) / sizeof(be->behind.at[0]));
    if (receive_lsn > replay_lsn && (keep == 0 || be->behind.lsn[keep - 1] < receive_lsn)) {
        int at = keep < cap ? keep : cap - 1; /* full: the newest entry gives way */
        be->behind.at[at] = now;
        be->behind.lsn[at] = receive_lsn;
        be->behind.n = at + 1;
    }
    be->behind_sec = be->behind.n ? (double)(now - be->behind.at[0]) / 1e6 : 0.0;
}

double lb_lag_sec(const struct backend *be, uint64_t primary_lsn, bool have_primary)
{
    if (be->role != ROLE_STANDBY || !be->lag_known)
        return 0.0;
    uint64_t target = have_primary ? primary_lsn : be->receive_lsn;
    if (target <= be->lsn)
        return 0.0; /* replayed everything there is: an old replay time is an idle primary */
    if (be->receive_lsn > be->lsn)
        return be->behind_sec;
    return be->replay_age_sec; /* behind the primary with nothing received to replay */
}

/* A standby is lagging when its lag (lb_lag_sec) is above max. */
static bool lagging(const struct backend *be, usec_t max_lag, uint64_t primary_lsn,
                    bool have_primary)
{
    if (max_lag <= 0)
        return false;
    return lb_lag_sec(be, primary_lsn, have_primary) * 1e6 > (double)max_lag;
}

int lb_eligible(struct backend *const *bes, int n, int tsa, usec_t max_lag, int *out,
                char *why, size_t whylen)
{
    return lb_eligible_ex(bes, n, tsa, max_lag, out, why, whylen, false);
}

int lb_eligible_ex(struct backend *const *bes, int n, int tsa, usec_t max_lag, int *out,
                   char *why, size_t whylen, bool unknown_first_class)
{
    bool have_primary;
    uint64_t primary_lsn = lb_primary_lsn(bes, n, &have_primary);
    int up = 0, lag_skipped = 0;
    for (int i = 0; i < n; i++)
        up += usable(bes[i]);
    /* Tiers: 0 = known role that matches; 1 = role unknown yet (the login checks it);
     * 2 = prefer-standby's fallback to the primary. */
    int count[3] = {0, 0, 0};
    int tier_of[CF_MAX_HOSTS];
    for (int i = 0; i < n && i < CF_MAX_HOSTS; i++) {
        tier_of[i] = -1;
        const struct backend *be = bes[i];
        if (!usable(be))
            continue;
        int tier;
        if (tsa == TSA_ANY) {
            tier = 0;
        } else if (tsa == TSA_PREFER_STANDBY) {
            tier = be->role == ROLE_STANDBY ? 0 : be->role == ROLE_UNKNOWN ? 1 : 2;
        } else if (be->role == ROLE_UNKNOWN) {
            tier = 1;
        } else if (lb_role_acceptable(tsa, be->role)) {
            tier = 0;
        } else {
            continue;
        }
        if (be->role == ROLE_STANDBY && lagging(be, max_lag, primary_lsn, have_primary)) {
            lag_skipped++;
            continue;
        }
        if (tier == 1 && unknown_first_class)
            tier = 0;
        tier_of[i] = tier;
        count[tier]++;
    }
    int best = count[0] ? 0 : count[1] ? 1 : count[2] ? 2 : -1;
    int k = 0;
    for (int i = 0; i < n && i < CF_MAX_HOSTS && best >= 0; i++)
        if (tier_of[i] == best)
            out[k++] = i;
    if (k == 0 && why && whylen) {
        const char *want = tsa == TSA_READ_WRITE || tsa == TSA_PRIMARY ? "primary"
                           : tsa == TSA_READ_ONLY || tsa == TSA_STANDBY ? "standby"
                                                                         : "server";
        if (up == 0)
            snprintf(why, whylen, "no server is up (%d host%s down or not checked yet)", n,
                     n == 1 ? "" : "s");
        else if (lag_skipped)
            snprintf(why, whylen, "no %s is up within max_replica_lag (%d lagging)", want,
                     lag_skipped);
        else
            snprintf(why, whylen, "no %s is up", want);
    }
    return k;
}

int lb_pick(const int *eligible, int n, int policy, unsigned *rr, const int *conns, unsigned rnd)
{
    if (n <= 0)
        return -1;
    switch (policy) {
    case LB_DISABLE:
        return eligible[0];
    case LB_RANDOM:
        return eligible[rnd % (unsigned)n];
    case LB_LEAST_CONNECTIONS: {
        int best = eligible[0];
        for (int i = 1; i < n; i++)
            if (conns[eligible[i]] < conns[best])
                best = eligible[i];
        return best;
    }
    default: {
        unsigned i = (*rr)++ % (unsigned)n;
        return eligible[i];
    }
    }
}

int lb_ryw_filter(struct backend *const *bes, int nbes, const int *elig, int n, usec_t wrote,
                  uint64_t *required, int *out)
{
    for (int i = 0; i < nbes && *required == 0; i++) {
        const struct backend *be = bes[i];
        if (usable(be) && be->role == ROLE_PRIMARY && be->lag_known && be->lsn_at > wrote)
            *required = be->lsn;
    }
    int k = 0;
    for (int j = 0; j < n; j++) {
        const struct backend *be = bes[elig[j]];
        if (*required && be->role == ROLE_STANDBY && be->lag_known && be->lsn >= *required)
            out[k++] = elig[j];
    }
    if (k > 0)
        return k; /* standbys that have the write: the primary is not needed */
    for (int i = 0; i < nbes; i++)
        if (usable(bes[i]) && bes[i]->role == ROLE_PRIMARY)
            out[k++] = i;
    return k;
}
