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
int lb_eligible(struct backend *const *bes, int n, int tsa, usec_t max_lag, int *out, char *why,
                size_t whylen);
/* The same, where unknown_first_class puts backends of unknown role in the best tier (used
 * when health checks cannot log in to learn roles: the first login tells). */
int lb_eligible_ex(struct backend *const *bes, int n, int tsa, usec_t max_lag, int *out, char *why,
                   size_t whylen, bool unknown_first_class);
/* Would this backend, with this role, be acceptable at all for the target? (Used to check a
 * fresh login and to close servers after a role change.) */
bool lb_role_acceptable(int tsa, enum be_role role);
/* Pick one of the eligible indexes by policy. rr is the database's round-robin cursor;
 * conns[i] is the connection count of bes[i] (least-connections); rnd a random number. */
int lb_pick(const int *eligible, int n_eligible, int policy, unsigned *rr, const int *conns,
            unsigned rnd);

/* The furthest position of the usable primaries among bes (have: there is one). */
uint64_t lb_primary_lsn(struct backend *const *bes, int n, bool *have);
/* Note a standby's probe (now, its received and replayed positions) in be->behind and set
 * be->behind_sec: how long it has had WAL in hand that it has not replayed (0 when it has
 * replayed everything it received). Probe granularity; bounded memory (when full, the
 * newest entries give way, so the age stays that of the oldest unreplayed position). */
void lb_behind_note(struct backend *be, usec_t now, uint64_t receive_lsn, uint64_t replay_lsn);
/* The lag of a standby, in seconds, as max_replica_lag and SHOW HOSTS use it: 0 when it has
 * replayed everything there is (up to the primary's position when the database lists a
 * primary, else up to what it received); otherwise how long it has been behind what it
 * received, or, when what it lacks has not even reached it, the age of its last replayed
 * transaction. */
double lb_lag_sec(const struct backend *be, uint64_t primary_lsn, bool have_primary);
/* read_your_writes: of the eligible hosts elig[0..n), those that may serve a client whose
 * last write ended at wrote (usec): standbys that have replayed *required, or when none has,
 * every usable primary among bes whatever the target asks. *required (0 = not known yet) is set,
 * once, to the position of the furthest usable primary among bes at a health check after the write.
 * To out[]; returns how many (0: none may, nothing known). */
int lb_ryw_filter(struct backend *const *bes, int nbes, const int *elig, int n, usec_t wrote,
                  uint64_t *required, int *out);

#endif
