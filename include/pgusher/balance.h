/*
 * balance.h: which backends may serve a database (target_session_attrs, max_replica_lag,
 * health) and which one gets the next server connection (load_balance_hosts). Pure
 * functions over backend data: no I/O, no clocks.
 */
#ifndef PGUSHER_BALANCE_H
#define PGUSHER_BALANCE_H

#include "pgusher/backend.h"
#include "pgusher/config.h"

#include <stddef.h>

/* The best tier of backends able to serve a target: indexes into bes[] go to out[] (at least
 * n entries). Returns how many; 0 with a reason in why ("no standby is up") when none. */
int lb_eligible(struct backend *const *bes, int n, int tsa, usec_t max_lag, int *out,
                char *why, size_t whylen);
/* The same, where unknown_first_class puts backends of unknown role in the best tier (used
 * when health checks cannot log in to learn roles: the first login tells). */
int lb_eligible_ex(struct backend *const *bes, int n, int tsa, usec_t max_lag, int *out,
                   char *why, size_t whylen, bool unknown_first_class);
/* Would this backend, with this role, be acceptable at all for the target? (Used to check a
 * fresh login and to close servers after a role change.) */
bool lb_role_acceptable(int tsa, enum be_role role);
/* Pick one of the eligible indexes by policy. rr is the database's round-robin cursor;
 * conns[i] is the connection count of bes[i] (least-connections); rnd a random number. */
int lb_pick(const int *eligible, int n_eligible, int policy, unsigned *rr, const int *conns,
            unsigned rnd);

#endif
