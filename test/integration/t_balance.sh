#!/usr/bin/env bash
# Story: reads spread over two standbys per transaction, counted by the standbys' own
# statistics; load_balance_hosts=disable pins to the first listed host; a read-write
# database over all three hosts finds the primary; SHOW HOSTS tells primary from standby;
# the libpq port-list syntax works (and is honoured per host), and a host/port count
# mismatch is refused at startup with file:line.
# Runs its own cluster (other tests share the one on 15432).
PGU_OWN_CLUSTER=balance:15501
. "$(dirname "$0")/lib.sh"

P=$PGU_PRIMARY S1=$PGU_STANDBY1 S2=$PGU_STANDBY2 PORT=$PGU_PGPORT
# A backend flushes its statistics at most once a second while busy and at exit: close the
# pool's server connections, then wait until both standbys' counters stop moving.

cat >"$PGU_TMP/body.ini" <<EOF
[databases]
reads = host=$S1,$S2 port=$PORT dbname=testdb target_session_attrs=standby
readsd = host=$S2,$S1 port=$PORT dbname=testdb target_session_attrs=standby load_balance_hosts=disable
readsp = host=$S1,$S2 port=$PORT,$PORT dbname=testdb target_session_attrs=standby
readsx = host=$S1,$S2 port=1,$PORT dbname=testdb target_session_attrs=standby
writes = host=$P,$S1,$S2 port=$PORT dbname=testdb target_session_attrs=read-write
[pgbouncer]
pool_mode = transaction
default_pool_size = 4
health_check_user = postgres
EOF
pgu_start "$PGU_TMP/body.ini"

check "health checks learn every host's role"
pgu_wait_for 15 "$P known as primary" pgu_host_is writes "$P" 5 primary
pgu_wait_for 15 "$S1 known as standby" pgu_host_is writes "$S1" 5 standby
pgu_wait_for 15 "$S2 known as standby" pgu_host_is writes "$S2" 5 standby
for h in "$P" "$S1" "$S2"; do
	assert_eq up "$(pgu_host_field writes "$h" 4)" "state of $h"
done

check "reads: pgbench -S over both standbys, 35-65% each by the standbys' own xact_commit"
pgu_direct "$S1" 'select pg_stat_reset()' >/dev/null
pgu_direct "$S2" 'select pg_stat_reset()' >/dev/null
sleep 0.5
c1=$(pgu_commits "$S1") c2=$(pgu_commits "$S2")
echo "   after pg_stat_reset: $S1 xact_commit=$c1, $S2 xact_commit=$c2"
pgu_try pgbench -n -S -T 6 -c 8 -j 2 -h 127.0.0.1 -p "$PGU_PORT" -U u_trust reads
assert_ok "pgbench -S -T 6 -c 8 on reads (no aborted clients)"
assert_contains "$PGU_OUT" "number of failed transactions: 0 " "0 failed transactions"
tps=$(grep -oE 'number of transactions actually processed: [0-9]+' <<<"$PGU_OUT" | grep -oE '[0-9]+$')
pgu_flush_stats reads
d1=$(($(pgu_commits "$S1") - c1)) d2=$(($(pgu_commits "$S2") - c2))
echo "   pgbench processed $tps; $S1: $d1 commits, $S2: $d2 commits"
((d1 + d2 >= 1000)) || fail "too few commits counted on the standbys ($d1 + $d2)"
# every pgbench transaction ran on one of the standbys (a little slack for pgbench's own
# setup queries and the counting queries)
((d1 + d2 >= tps)) || fail "standbys counted fewer commits ($((d1 + d2))) than pgbench processed ($tps)"
share=$((100 * d1 / (d1 + d2)))
echo "   split: $S1 $share% / $S2 $((100 - share))%"
((share >= 35 && share <= 65)) || fail "uneven split: $S1 got $share% ($d1 of $((d1 + d2)))"
echo "   ok: both standbys within 35-65%"

check "load_balance_hosts=disable: (nearly) all on the first listed standby ($S2, listed first)"
c1=$(pgu_commits "$S1") c2=$(pgu_commits "$S2")
pgu_try pgbench -n -S -T 3 -c 4 -j 2 -h 127.0.0.1 -p "$PGU_PORT" -U u_trust readsd
assert_ok "pgbench on readsd"
assert_contains "$PGU_OUT" "number of failed transactions: 0 " "0 failed transactions"
pgu_flush_stats readsd
d1=$(($(pgu_commits "$S1") - c1)) d2=$(($(pgu_commits "$S2") - c2))
echo "   $S2 (first listed): $d2, $S1: $d1"
((d1 + d2 >= 200)) || fail "too few commits counted ($d1 + $d2)"
((d2 * 10 > (d1 + d2) * 9)) || fail "disable policy: first listed $S2 got only $d2 of $((d1 + d2))"
echo "   ok: first listed standby got > 90%"

check "writes (read-write over all three hosts) go to the primary"
hosts=$(for i in $(seq 12); do pgu_q writes -c 'select host(inet_server_addr())||pg_is_in_recovery()::text'; done | sort | uniq -c | awk '{print $2":"$1}' | tr '\n' ' ')
assert_eq "${P}false:12 " "$hosts" "12 transactions through writes"
pgu_try pgu_q writes -c 'create table if not exists t_balance_w(i int); insert into t_balance_w values (1)'
assert_ok "a write through writes"

check "SHOW HOSTS: roles and eligibility per database"
assert_eq "primary|1" "$(pgu_host_field writes "$P" 5)|$(pgu_host_field writes "$P" 8)" "writes: $P role|eligible"
assert_eq "standby|0" "$(pgu_host_field writes "$S1" 5)|$(pgu_host_field writes "$S1" 8)" "writes: $S1 role|eligible"
assert_eq "standby|0" "$(pgu_host_field writes "$S2" 5)|$(pgu_host_field writes "$S2" 8)" "writes: $S2 role|eligible"
assert_eq "standby|1" "$(pgu_host_field reads "$S1" 5)|$(pgu_host_field reads "$S1" 8)" "reads: $S1 role|eligible"
assert_eq "standby|1" "$(pgu_host_field reads "$S2" 5)|$(pgu_host_field reads "$S2" 8)" "reads: $S2 role|eligible"
assert_eq "" "$(pgu_host_field reads "$P" 5)" "reads does not list the primary"

check "port-list syntax host=$S1,$S2 port=$PORT,$PORT"
assert_eq "$PORT|$PORT" "$(pgu_host_field readsp "$S1" 3)|$(pgu_host_field readsp "$S2" 3)" "readsp ports in SHOW HOSTS"
hosts=$(for i in $(seq 16); do pgu_q readsp -c 'select host(inet_server_addr())'; done | sort -u | tr '\n' ' ')
assert_eq "$S1 $S2 " "$hosts" "readsp transactions reach both standbys"

check "port list is per host: host=$S1,$S2 port=1,$PORT uses $S1:1 (refused) and $S2:$PORT"
hosts=$(for i in $(seq 10); do timeout 15 psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U u_trust readsx -c 'select host(inet_server_addr())||inet_server_port()' 2>&1; done | sort -u | tr '\n' ' ')
assert_eq "$S2$PORT " "$hosts" "readsx served by $S2:$PORT only"
assert_eq "1" "$(pgu_admin 'SHOW HOSTS' | awk -F'|' -v h="$S1" '$1=="readsx" && $2==h {print $3}')" "readsx lists $S1 with port 1"
pgu_wait_for 10 "$S1:1 down in SHOW HOSTS" pgu_host_is readsx "$S1" 4 down

check "host/port count mismatch: pgusher refuses to start, naming file:line"
cat >"$PGU_TMP/bad.ini" <<EOF
; port list with three ports for two hosts
[databases]
good = host=$S1 port=$PORT dbname=testdb
bad = host=$S1,$S2 port=$PORT,$PORT,$PORT dbname=testdb
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $(pgu_free_port)
unix_socket_dir =
auth_type = trust
auth_file = $PGU_USERLIST
logfile = $PGU_TMP/bad.log
pidfile = $PGU_TMP/bad.pid
EOF
pgu_try timeout 10 "$PGUSHER_BIN" "$PGU_TMP/bad.ini"
[[ $PGU_RC != 124 ]] || fail "pgusher started (still running after 10 s) with a host/port count mismatch"
assert_fails "pgusher with port=P,P,P for two hosts"
echo "   pgusher said: $(head -c 300 <<<"$PGU_OUT")"
assert_contains "$PGU_OUT" "bad.ini:4" "error names file:line (bad.ini:4)"
pass
