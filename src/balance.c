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

/* A standby is lagging when it has not replayed WAL the primary has (or WAL it has itself
 * received, when the database lists no primary) and its last replayed transaction is older
 * than max. An old replay timestamp with nothing to replay is an idle primary, not lag. */
static bool lagging(const struct backend *be, usec_t max_lag, uint64_t primary_lsn,
                    bool have_primary)
{
    if (max_lag <= 0 || be->role != ROLE_STANDBY || !be->lag_known)
        return false;
    if (be->replay_age_sec * 1e6 <= (double)max_lag)
        return false;
    uint64_t target = have_primary ? primary_lsn : be->receive_lsn;
    return target > be->lsn;
}

int lb_eligible(struct backend *const *bes, int n, int tsa, usec_t max_lag, int *out,
                char *why, size_t whylen)
{
    return lb_eligible_ex(bes, n, tsa, max_lag, out, why, whylen, false);
}

int lb_eligible_ex(struct backend *const *bes, int n, int tsa, usec_t max_lag, int *out,
                   char *why, size_t whylen, bool unknown_first_class)
{
    uint64_t primary_lsn = 0;
    bool have_primary = false;
    int up = 0, lag_skipped = 0;
    for (int i = 0; i < n; i++) {
        if (usable(bes[i])) {
            up++;
            if (bes[i]->role == ROLE_PRIMARY && bes[i]->lag_known) {
                have_primary = true;
                if (bes[i]->lsn > primary_lsn)
                    primary_lsn = bes[i]->lsn;
            }
        }
    }
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
