#!/usr/bin/env bash
# Story: max_replica_lag. A standby whose replay is paused while the primary keeps writing
# stops serving reads (also under load, with idle server connections to it in the pool),
# stays excluded while it is behind, and serves again once it has caught up. When no
# standby qualifies, clients wait query_wait_timeout and get an error saying why.
# Runs its own cluster (it pauses replay and stops servers).
PGU_OWN_CLUSTER=lag:15503
. "$(dirname "$0")/lib.sh"

eval "$("$PGU_LIBDIR/cluster.sh" env)"
unset PGHOST PGPORT PGUSER PGDATABASE
PGBIN=$PGUSHER_PGBIN
P=$PGU_PRIMARY S1=$PGU_STANDBY1 S2=$PGU_STANDBY2 PORT=$PGU_PGPORT
pg_as() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
datadir() { echo "$PGUSHER_CLUSTER_DIR/$1/data"; }
host_row() { pgu_admin 'SHOW HOSTS' | awk -F'|' -v d="$1" -v h="$2" '$1==d && $2==h'; }
reads_hosts() { # n: distinct hosts serving n sequential transactions on reads
	for ((i = 0; i < $1; i++)); do pgu_q reads -c 'select host(inet_server_addr())' 2>&1 || echo FAILED; done |
		sort | uniq -c | awk '{print $2":"$1}' | tr '\n' ' '
}
primary_writes() { # seconds
	pgbench -n -N -T "$1" -c 2 -h "$P" -p "$PORT" -U postgres testdb >/dev/null 2>&1 ||
		fail "pgbench -N directly on the primary"
}

cat >"$PGU_TMP/body.ini" <<EOF
[databases]
reads = host=$S1,$S2 port=$PORT dbname=testdb target_session_attrs=standby max_replica_lag=2
[pgbouncer]
pool_mode = transaction
default_pool_size = 4
query_wait_timeout = 3
health_check_user = postgres
health_check_period = 1
health_check_timeout = 1
EOF
pgu_start "$PGU_TMP/body.ini"

check "baseline: both standbys eligible and serving"
pgu_wait_for 15 "$S1 standby" pgu_host_is reads "$S1" 5 standby
pgu_wait_for 15 "$S2 standby" pgu_host_is reads "$S2" 5 standby
assert_eq "1|1" "$(pgu_host_field reads "$S1" 8)|$(pgu_host_field reads "$S2" 8)" "eligible"
# fill the pool with server connections to both standbys
pgu_try pgbench -n -S -T 2 -c 8 -j 2 -h 127.0.0.1 -p "$PGU_PORT" -U u_trust reads
assert_ok "pgbench -S on reads"
assert_contains "$(reads_hosts 12)" "$S1:" "reads reach $S1"
echo "   pool: $(pgu_admin 'SHOW HOSTS' | awk -F'|' '$1=="reads" {printf "%s idle=%s active=%s; ", $2, $10, $9}')"

check "replay paused on $S1 while the primary writes: $S1 excluded, reads only on $S2"
pgu_direct "$S1" 'select pg_wal_replay_pause()' >/dev/null
primary_writes 6
pgu_wait_for 15 "$S1 not eligible" pgu_host_is reads "$S1" 8 0
row=$(host_row reads "$S1")
echo "   SHOW HOSTS $S1: $row"
lag=$(cut -d'|' -f6 <<<"$row") lagb=$(cut -d'|' -f7 <<<"$row")
awk -v l="$lag" 'BEGIN{exit !(l > 2)}' || fail "SHOW HOSTS lag of $S1 is $lag, expected > 2 s"
((lagb > 0)) || fail "SHOW HOSTS lag_bytes of $S1 is $lagb, expected > 0"
echo "   ok: lag $lag s, $lagb bytes behind"
assert_eq "up" "$(pgu_host_field reads "$S1" 4)" "$S1 still up (excluded for lag, not down)"
assert_eq "1" "$(pgu_host_field reads "$S2" 8)" "$S2 eligible"

check "under load, with idle connections to $S1 in the pool, no transaction runs on the lagging $S1"
# the pool still holds the server connections to $S1 it opened before the lag
idle1=$(pgu_host_field reads "$S1" 10)
echo "   idle servers on $S1 in the pool: $idle1"
((idle1 > 0)) || skip_note "no idle server on $S1 left in the pool: the load check is weaker"
c1=$(pgu_commits "$S1") c2=$(pgu_commits "$S2")
pgu_try pgbench -n -S -T 3 -c 8 -j 2 -h 127.0.0.1 -p "$PGU_PORT" -U u_trust reads
assert_ok "pgbench -S on reads while $S1 lags"
assert_contains "$PGU_OUT" "number of failed transactions: 0 " "0 failed"
echo "   pool after: $(pgu_admin 'SHOW HOSTS' | awk -F'|' '$1=="reads" {printf "%s idle=%s active=%s; ", $2, $10, $9}')"
pgu_flush_stats reads
d1=$(($(pgu_commits "$S1") - c1)) d2=$(($(pgu_commits "$S2") - c2))
echo "   xact_commit: $S1 +$d1 (includes the counting queries), $S2 +$d2"
((d2 > 500)) || fail "$S2 served too little ($d2)"
((d1 <= 10)) || pgu_soft_fail "max_replica_lag: $S1 lagged (SHOW HOSTS eligible=0) yet committed $d1 transactions of a pgbench -S on reads (xact_commit on $S1 directly; $S2 +$d2)"
assert_eq "$S2:20 " "$(reads_hosts 20)" "20 sequential reads while $S1 lags"

check "the exclusion lasts while $S1 is behind (not a fixed time)"
sleep 3
assert_eq "0" "$(pgu_host_field reads "$S1" 8)" "$S1 still not eligible 3 s later"

check "replay resumed: $S1 catches up, is eligible again and serves"
pgu_direct "$S1" 'select pg_wal_replay_resume()' >/dev/null
pgu_wait_for 15 "$S1 eligible again" pgu_host_is reads "$S1" 8 1
assert_eq "0" "$(pgu_host_field reads "$S1" 7)" "lag_bytes of $S1 after catching up"
hosts=$(reads_hosts 20)
echo "   20 sequential reads: $hosts"
if [[ $hosts == *"$S1:"* ]]; then
	echo "   ok: $S1 serves reads again"
else
	pgu_soft_fail "$S1 caught up and eligible (SHOW HOSTS: $(host_row reads "$S1")), but 20 sequential reads went: $hosts"
fi

check "every standby lagging: a client waits query_wait_timeout (3 s) and gets a clear error"
# connections to both standbys sit idle in the pool
reads_hosts 6 >/dev/null
pgu_direct "$S1" 'select pg_wal_replay_pause()' >/dev/null
pgu_direct "$S2" 'select pg_wal_replay_pause()' >/dev/null
primary_writes 4
pgu_wait_for 15 "$S1 not eligible" pgu_host_is reads "$S1" 8 0
pgu_wait_for 15 "$S2 not eligible" pgu_host_is reads "$S2" 8 0
t0=$EPOCHREALTIME
pgu_try pgu_q reads -c 'select host(inet_server_addr())'
took=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}')
echo "   after $took s: $PGU_OUT"
if ((PGU_RC == 0)); then
	pgu_soft_fail "all standbys lag beyond max_replica_lag (both eligible=0), yet a read was served (by $PGU_OUT) instead of waiting query_wait_timeout"
else
	echo "   ok: the read failed"
	assert_contains "$PGU_OUT" "reads" "error names the database"
	assert_contains "$PGU_OUT" "no standby" "error says no standby"
	assert_contains "$PGU_OUT" "max_replica_lag" "error mentions max_replica_lag"
	awk -v t="$took" 'BEGIN{exit !(t >= 2.5 && t < 15)}' || fail "the error came after $took s, expected query_wait_timeout (3 s)"
	echo "   ok: the client waited ~query_wait_timeout ($took s)"
fi

check "one standby lagging, the other stopped: error still says no standby / max_replica_lag"
pgu_direct "$S2" 'select pg_wal_replay_resume()' >/dev/null
pg_as "$PGBIN/pg_ctl" -D "$(datadir n2)" -m fast -w stop >/dev/null
pgu_wait_for 15 "$S2 down" pgu_host_is reads "$S2" 4 down
assert_eq "0" "$(pgu_host_field reads "$S1" 8)" "$S1 still lagging"
t0=$EPOCHREALTIME
pgu_try pgu_q reads -c 'select host(inet_server_addr())'
took=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}')
echo "   after $took s: $PGU_OUT"
if ((PGU_RC == 0)); then
	pgu_soft_fail "$S1 lags beyond max_replica_lag and $S2 is down, yet a read was served (by $PGU_OUT)"
else
	assert_contains "$PGU_OUT" "reads" "error names the database"
	assert_contains "$PGU_OUT" "no standby" "error says no standby"
	assert_contains "$PGU_OUT" "max_replica_lag" "error mentions max_replica_lag"
	awk -v t="$took" 'BEGIN{exit !(t >= 2.5 && t < 15)}' || fail "the error came after $took s, expected ~3 s"
fi
pgu_direct "$S1" 'select pg_wal_replay_resume()' >/dev/null
pgu_wait_for 15 "$S1 eligible after resume" pgu_host_is reads "$S1" 8 1
pgu_try pgu_q reads -c 'select host(inet_server_addr())'
assert_ok "read after $S1 caught up"
assert_eq "$S1" "$PGU_OUT" "served by $S1"
pgu_finish
