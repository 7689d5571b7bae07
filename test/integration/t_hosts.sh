#!/usr/bin/env bash
# Story: one pgusher replaces PgBouncer + HAProxy in front of a primary and two standbys.
# Reads spread per transaction over the standbys (counted by the servers themselves), a
# lagging standby is skipped until it catches up, a stopped or frozen standby is routed
# around and comes back after passing its checks, and after the primary dies and a standby
# is promoted, writes follow the new primary with no reload. This test runs its own
# cluster (it stops and promotes servers), on its own port.
PGU_OWN_CLUSTER=hosts:15510
. "$(dirname "$0")/lib.sh"

eval "$("$PGU_LIBDIR/cluster.sh" env)"
unset PGHOST PGPORT PGUSER PGDATABASE
PGBIN=$PGUSHER_PGBIN
P=$PGU_PRIMARY S1=$PGU_STANDBY1 S2=$PGU_STANDBY2 PORT=$PGU_PGPORT
pg_as() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
node() { echo "$PGUSHER_CLUSTER_DIR/$1/data"; }
# Backends flush their statistics at most once a second, and at exit: close the pool's
# server connections so every transaction is counted.

cat >"$PGU_TMP/body.ini" <<EOF
[databases]
reads = host=$S1,$S2 port=$PORT dbname=testdb target_session_attrs=standby
readsd = host=$S1,$S2 port=$PORT,$PORT dbname=testdb target_session_attrs=standby load_balance_hosts=disable
lagdb = host=$S1,$S2 port=$PORT dbname=testdb target_session_attrs=standby max_replica_lag=2
writes = host=$P,$S1,$S2 port=$PORT dbname=testdb target_session_attrs=read-write
pref = host=$P,$S1,$S2 port=$PORT dbname=testdb target_session_attrs=prefer-standby
[pgbouncer]
pool_mode = transaction
default_pool_size = 4
query_wait_timeout = 4
health_check_user = postgres
health_check_period = 1
health_check_timeout = 1
health_check_fall = 3
health_check_rise = 2
EOF
pgu_start "$PGU_TMP/body.ini"

check "roles from the health checks; writes go to the primary"
pgu_wait_for 10 "all hosts up" pgu_host_is writes "$S2" 4 up
assert_eq "primary" "$(pgu_host_field writes "$P" 5)" "role of $P"
assert_eq "standby" "$(pgu_host_field writes "$S1" 5)" "role of $S1"
assert_eq "$P|f" "$(pgu_q writes -F'|' -c 'select host(inet_server_addr()), pg_is_in_recovery()')" "writes"

check "health checks keep one session per host (no login per check); a killed one is replaced"
hc_pids() { pgu_direct "$1" "select string_agg(pid::text, ',' order by pid) from pg_stat_activity where application_name = 'pgusher health check'"; }
pid1=$(hc_pids "$S1")
[[ $pid1 =~ ^[0-9]+$ ]] || fail "expected one health-check session on $S1, got '$pid1'"
checks1=$(pgu_host_field writes "$S1" 12) fails1=$(pgu_host_field writes "$S1" 13)
sleep 3
(($(pgu_host_field writes "$S1" 12) >= checks1 + 2)) || fail "checks did not go on"
assert_eq "$pid1" "$(hc_pids "$S1")" "the same session answered the later checks"
pgu_direct "$S1" "select pg_terminate_backend($pid1)" >/dev/null
new_session() { local p; p=$(hc_pids "$S1"); [[ $p =~ ^[0-9]+$ && $p != "$pid1" ]]; }
pgu_wait_for 5 "a new health-check session on $S1" new_session
assert_eq "up" "$(pgu_host_field writes "$S1" 4)" "$S1 stays up"
assert_eq "$fails1" "$(pgu_host_field writes "$S1" 13)" "a terminated check session is not a failed check"

check "reads spread per transaction over both standbys (35-65% each, by the servers' counters)"
pgu_direct "$S1" 'select pg_stat_reset()' >/dev/null
pgu_direct "$S2" 'select pg_stat_reset()' >/dev/null
sleep 0.6
c1=$(pgu_commits "$S1") c2=$(pgu_commits "$S2")
pgu_try pgbench -n -S -T 5 -c 8 -j 2 -h 127.0.0.1 -p "$PGU_PORT" -U u_trust reads
assert_ok "pgbench -S on reads"
assert_contains "$PGU_OUT" "number of failed transactions: 0 " "no failed transactions"
pgu_flush_stats reads
d1=$(($(pgu_commits "$S1") - c1)) d2=$(($(pgu_commits "$S2") - c2))
((d1 + d2 > 1000)) || fail "too few commits counted ($d1 + $d2)"
share=$((100 * d1 / (d1 + d2)))
echo "   $S1: $d1 commits, $S2: $d2 commits ($share% / $((100 - share))%)"
((share >= 35 && share <= 65)) || fail "uneven split: $S1 got $share%"

check "load_balance_hosts=disable: the first listed standby takes (nearly) everything"
c1=$(pgu_commits "$S1") c2=$(pgu_commits "$S2")
pgbench -n -S -t 300 -c 2 -h 127.0.0.1 -p "$PGU_PORT" -U u_trust readsd >/dev/null 2>&1 || fail "pgbench readsd"
pgu_flush_stats readsd
d1=$(($(pgu_commits "$S1") - c1)) d2=$(($(pgu_commits "$S2") - c2))
echo "   $S1: $d1, $S2: $d2"
((d1 * 10 > (d1 + d2) * 9)) || fail "disable policy: $S1 got only $d1 of $((d1 + d2))"

check "a port list with the wrong count is a config error with file:line"
cat >"$PGU_TMP/bad.ini" <<EOF
[databases]
bad = host=$S1,$S2 port=$PORT,$PORT,$PORT dbname=testdb
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $(pgu_free_port)
EOF
pgu_try "$PGUSHER_BIN" "$PGU_TMP/bad.ini"
assert_fails "pgusher with a port-count mismatch"
assert_contains "$PGU_OUT" "bad.ini:2:" "error names file:line"

check "max_replica_lag: a standby whose replay is paused stops serving reads, then returns"
pgu_direct "$S1" 'select pg_wal_replay_pause()' >/dev/null
pgbench -n -N -T 4 -c 2 -h "$P" -p "$PORT" -U postgres testdb >/dev/null 2>&1 || fail "writes on the primary"
pgu_wait_for 15 "$S1 not eligible for lagdb" pgu_host_is lagdb "$S1" 8 0
hosts=$(for i in $(seq 20); do pgu_q lagdb -c 'select host(inet_server_addr())'; done | sort -u | tr '\n' ' ')
assert_eq "$S2 " "$hosts" "reads while $S1 lags"
pgu_direct "$S1" 'select pg_wal_replay_resume()' >/dev/null
pgu_wait_for 15 "$S1 eligible again" pgu_host_is lagdb "$S1" 8 1
hosts=$(for i in $(seq 20); do pgu_q lagdb -c 'select host(inet_server_addr())'; done | sort -u | tr '\n' ' ')
assert_contains "$hosts" "$S1" "$S1 serves reads again"

check "a standby stopped (immediate) during a read load: routed around, 0 failures after detection"
pgu_bg bash -c "pgbench -n -S -T 8 -c 8 -j 2 -h 127.0.0.1 -p $PGU_PORT -U u_trust reads >$PGU_TMP/pb1.out 2>&1"
PB=$PGU_BG_PID
sleep 2
pg_as "$PGBIN/pg_ctl" stop -D "$(node n2)" -m immediate -w >/dev/null
wait "$PB" || true
PGU_BG_PIDS=()
grep -E "failed transactions" "$PGU_TMP/pb1.out" | sed 's/^/   during the kill: /' || true
pgu_wait_for 10 "$S2 marked down" pgu_host_is reads "$S2" 4 down
assert_log_contains "host $S2:$PORT is down"
pgu_try pgbench -n -S -T 4 -c 8 -j 2 -h 127.0.0.1 -p "$PGU_PORT" -U u_trust reads
assert_ok "pgbench after the detection window"
assert_contains "$PGU_OUT" "number of failed transactions: 0 " "0 failed after detection"
pg_as "$PGBIN/pg_ctl" start -D "$(node n2)" -l "$PGUSHER_CLUSTER_DIR/n2.log" -w >/dev/null
pgu_wait_for 20 "$S2 up again" pgu_host_is reads "$S2" 4 up
c2=$(pgu_commits "$S2")
pgbench -n -S -T 2 -c 8 -j 2 -h 127.0.0.1 -p "$PGU_PORT" -U u_trust reads >/dev/null 2>&1 || fail "pgbench after restart"
pgu_flush_stats reads
(($(pgu_commits "$S2") > c2)) || fail "$S2 did not serve after coming back"
echo "   ok: $S2 serves again"

check "a frozen standby (SIGSTOP) is marked down within period + timeout x fall; SIGCONT brings it back"
ppid=$(head -n 1 "$(node n1)/postmaster.pid")
procs="$ppid $(pgrep -P "$ppid" | tr '\n' ' ')"
kill -STOP $procs
t0=$SECONDS
pgu_wait_for 15 "$S1 marked down while frozen" pgu_host_is reads "$S1" 4 down
echo "   detection took $((SECONDS - t0)) s (period 1 + timeout 1 x fall 3 = 4 s, plus slack)"
hosts=$(for i in $(seq 10); do timeout 10 psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U u_trust reads -c 'select host(inet_server_addr())'; done | sort -u | tr '\n' ' ')
assert_eq "$S2 " "$hosts" "reads while $S1 is frozen"
kill -CONT $procs
pgu_wait_for 20 "$S1 up after SIGCONT" pgu_host_is reads "$S1" 4 up

check "failover: primary stopped, $S1 promoted: writes follow with no reload"
pg_as "$PGBIN/pg_ctl" stop -D "$(node n0)" -m fast -w >/dev/null
pg_as "$PGBIN/pg_ctl" promote -D "$(node n1)" -w >/dev/null
new_primary() { [[ $(pgu_q writes -c 'select host(inet_server_addr())||pg_is_in_recovery()') == "${S1}false" ]]; }
pgu_wait_for 30 "writes served by $S1 (not in recovery)" new_primary
assert_log_contains "host $S1:$PORT is now primary"
pgu_try pgu_q writes -c 'create table if not exists failover_t(i int); insert into failover_t values (1)'
assert_ok "a write through writes on the new primary"

check "prefer-standby falls back to the primary when no standby is up"
assert_eq "$S2" "$(pgu_q pref -c 'select host(inet_server_addr())')" "pref on the remaining standby"
pg_as "$PGBIN/pg_ctl" stop -D "$(node n2)" -m fast -w >/dev/null
only_primary() { [[ $(pgu_q pref -c 'select host(inet_server_addr())') == "$S1" ]]; }
pgu_wait_for 20 "pref served by the primary $S1" only_primary

check "nothing eligible: a client waits query_wait_timeout and gets a clear error"
pgu_try pgu_q reads -c 'select 1'
assert_fails "reads with no standby"
assert_contains "$PGU_OUT" "no server available for database reads" "error names the database"
assert_contains "$PGU_OUT" "no standby is up" "error says why"
pass
