#!/usr/bin/env bash
# Story: things go wrong under load and pgusher routes around them, with no reload.
#  (a) a standby is stopped (immediate) during a read load: only transactions in flight on
#      it at that instant fail, later ones don't; it is marked down, comes back after a
#      restart and serves again;
#  (b) a standby is frozen (SIGSTOP): marked down within period + timeout x fall, reads keep
#      working; SIGCONT brings it back;
#  (c) no standby up: prefer-standby reads are served by the primary;
#  (d) the primary is stopped and 127.0.0.2 promoted: writes follow the new primary.
# Runs its own cluster (it stops, freezes and promotes servers).
PGU_OWN_CLUSTER=failover:15502
. "$(dirname "$0")/lib.sh"
FROZEN=""
pgu_at_exit() { [[ -z $FROZEN ]] || kill -CONT $FROZEN 2>/dev/null; } # a frozen node would outlive the story

eval "$("$PGU_LIBDIR/cluster.sh" env)"
unset PGHOST PGPORT PGUSER PGDATABASE
PGBIN=$PGUSHER_PGBIN
P=$PGU_PRIMARY S1=$PGU_STANDBY1 S2=$PGU_STANDBY2 PORT=$PGU_PGPORT
pg_as() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
datadir() { echo "$PGUSHER_CLUSTER_DIR/$1/data"; }
pgctl() { # node pg_ctl-args...
	local n=$1
	shift
	pg_as "$PGBIN/pg_ctl" -D "$(datadir "$n")" "$@" >/dev/null
}
start_node() { pg_as "$PGBIN/pg_ctl" -D "$(datadir "$1")" -l "$PGUSHER_CLUSTER_DIR/$1.log" -w -t 60 start >/dev/null 9>&-; }
served_by() { pgu_q "$1" -c 'select host(inet_server_addr())'; }

cat >"$PGU_TMP/body.ini" <<EOF
[databases]
reads = host=$S1,$S2 port=$PORT dbname=testdb target_session_attrs=standby
writes = host=$P,$S1,$S2 port=$PORT dbname=testdb target_session_attrs=read-write
reads_pref = host=$P,$S1,$S2 port=$PORT dbname=testdb target_session_attrs=prefer-standby
[pgbouncer]
pool_mode = transaction
default_pool_size = 4
query_wait_timeout = 10
health_check_user = postgres
health_check_period = 1
health_check_timeout = 1
health_check_fall = 3
health_check_rise = 2
EOF
pgu_start "$PGU_TMP/body.ini"
PID0=$PGU_PID
pgu_wait_for 15 "all roles known" pgu_host_is writes "$S2" 5 standby
pgu_wait_for 15 "$P primary" pgu_host_is writes "$P" 5 primary

# ------------------------------------------------------------------------------ (a)
check "(a) $S2 stopped (immediate) during pgbench -S on reads: failures only at the kill"
pgu_bg pgu_run_ts "$PGU_TMP/pb1.log" pgbench -n -S -T 12 -c 8 -j 2 -h 127.0.0.1 -p "$PGU_PORT" -U u_trust reads
PB1=$PGU_BG_PID
sleep 3
t_kill=$EPOCHREALTIME
pgctl n2 -m immediate -w stop
echo "   $S2 stopped at t=$t_kill"
pgu_wait_for 10 "$S2 marked down in SHOW HOSTS" pgu_host_is reads "$S2" 4 down
assert_log_contains "host $S2:$PORT is down"
echo "   last_error: $(pgu_host_field reads "$S2" 14)"
# The detection window is over: a second load, concurrent with the rest of the first, must
# see no failure at all.
sleep 1
t_after=$EPOCHREALTIME
pgu_try pgbench -n -S -T 5 -c 4 -j 2 -h 127.0.0.1 -p "$PGU_PORT" -U u_trust reads
assert_ok "second pgbench after the detection window (no aborted client)"
assert_contains "$PGU_OUT" "number of failed transactions: 0 " "0 failed in the second pgbench"
wait "$PB1" || true
PGU_BG_PIDS=()
pb1_rc=$(cat "$PGU_TMP/pb1.log.rc" 2>/dev/null || echo '?')
errs=$(grep -E 'error|aborted|FATAL|ERROR' "$PGU_TMP/pb1.log" || true)
nerr=$(grep -c 'aborted in command' <<<"$errs" || true)
echo "   first pgbench: exit $pb1_rc, $nerr aborted client(s)"
[[ -n $errs ]] && sed 's/^/     /' <<<"$errs" | head -n 12
grep -E 'actually processed|failed transactions' "$PGU_TMP/pb1.log" | sed 's/^[0-9.]* /     /'
grep -q 'actually processed' "$PGU_TMP/pb1.log" || fail "first pgbench did not finish with a summary"
((nerr <= 4)) || fail "$nerr clients aborted: more than the 4 server connections that can be in flight"
# every error line (if any) was printed between the kill and the end of detection
# (pgbench's closing "Run was aborted" note is printed at the end: not an error itself)
late=$(awk -v k="$t_kill" -v a="$t_after" '/error|aborted|FATAL|ERROR/ && !/Run was aborted/ && ($1 < k - 0.5 || $1 > a) {print}' "$PGU_TMP/pb1.log")
[[ -z $late ]] || fail "first pgbench had errors outside the kill window [$t_kill, $t_after]:
$late"
echo "   ok: errors (if any) only at the kill"
check "(a) $S2 restarted: back up and serving"
start_node n2
pgu_wait_for 20 "$S2 up in SHOW HOSTS" pgu_host_is reads "$S2" 4 up
assert_log_contains "host $S2:$PORT is up"
c2=$(pgu_commits "$S2")
( sleep 2; pgu_admin 'SHOW HOSTS' | awk -F'|' '$1=="reads"' >"$PGU_TMP/hosts_during.txt" ) &
pgu_try pgbench -n -S -T 3 -c 8 -j 2 -h 127.0.0.1 -p "$PGU_PORT" -U u_trust reads
assert_ok "pgbench after $S2 came back"
assert_contains "$PGU_OUT" "number of failed transactions: 0 " "0 failed"
pgu_flush_stats reads
d2=$(($(pgu_commits "$S2") - c2))
echo "   $S2 committed $d2 transactions"
if ((d2 > 100)); then
	echo "   ok: $S2 serves again"
else
	pgu_soft_fail "$S2 is up again but did not serve reads: its xact_commit grew by $d2 during pgbench -S -T 3 -c 8 (SHOW HOSTS during that run: $(cat "$PGU_TMP/hosts_during.txt" 2>/dev/null | tr '\n' ';'))"
fi

# ------------------------------------------------------------------------------ (b)
check "(b) $S1 frozen (SIGSTOP): marked down within period + timeout x fall, reads keep working"
# servers on both standbys in the pool
for i in $(seq 8); do served_by reads >/dev/null || fail "read before freeze"; done
ppid=$(head -n 1 "$(datadir n1)/postmaster.pid")
FROZEN="$ppid $(pgrep -P "$ppid" | tr '\n' ' ')"
kill -STOP $FROZEN
echo "   froze $S1 (pids $FROZEN)"
pgu_wait_for 15 "$S1 marked down while frozen" pgu_host_is reads "$S1" 4 down
echo "   detection took $PGU_WAITED s (period 1 + timeout 1 x fall 3 = ~4-6 s expected)"
assert_log_contains "host $S1:$PORT is down"
echo "   last_error: $(pgu_host_field reads "$S1" 14)"
out=$(for i in $(seq 12); do timeout 10 psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U u_trust reads -c 'select host(inet_server_addr())' 2>&1 || echo "FAILED($?)"; done | sort | uniq -c | awk '{print $2":"$1}' | tr '\n' ' ')
assert_eq "$S2:12 " "$out" "12 new read transactions while $S1 is frozen"
pgu_try timeout 20 pgbench -n -S -T 2 -c 4 -j 2 -h 127.0.0.1 -p "$PGU_PORT" -U u_trust reads
assert_ok "pgbench on reads while $S1 is frozen"
assert_contains "$PGU_OUT" "number of failed transactions: 0 " "0 failed"
kill -CONT $FROZEN
FROZEN=""
pgu_wait_for 20 "$S1 up again after SIGCONT" pgu_host_is reads "$S1" 4 up
# The full pool (4 servers, all on $S2 now) gives one up to $S1 at the next janitor
# passes; read transactions must reach $S1 again within 40 transactions / ~10 s.
seen=""
for ((i = 0; i < 40; i++)); do
	seen+="$(served_by reads)"$'\n'
	[[ $(sort -u <<<"$seen" | grep -c .) == 2 ]] && break
	sleep 0.2
done
hosts=$(sort -u <<<"$seen" | grep . | tr '\n' ' ')
if [[ $hosts == "$S1 $S2 " ]]; then
	echo "   ok: reads spread over both standbys again (after $((i + 1)) transactions)"
else
	pgu_soft_fail "after SIGCONT $S1 is up but $((i + 1)) new read transactions were served by: $hosts(expected both $S1 and $S2; SHOW HOSTS: $(pgu_admin 'SHOW HOSTS' | awk -F'|' '$1=="reads"' | tr '\n' ';'))"
	# with fresh server connections the returning host is used
	pgu_flush_stats reads
	hosts=$(for i in $(seq 12); do served_by reads; done | sort -u | tr '\n' ' ')
	assert_eq "$S1 $S2 " "$hosts" "after RECONNECT reads, reads spread over both standbys"
fi

# ------------------------------------------------------------------------------ (c)
check "(c) prefer-standby: standbys serve while up; with no standby up the primary serves"
hosts=$(for i in $(seq 10); do served_by reads_pref; done | sort -u | tr '\n' ' ')
assert_eq "$S1 $S2 " "$hosts" "reads_pref on the standbys"
pgctl n1 -m fast -w stop
pgctl n2 -m fast -w stop
pgu_wait_for 15 "$S1 and $S2 down" bash -c "[[ \$(psql -X -At -F'|' -h 127.0.0.1 -p $PGU_PORT -U postgres pgbouncer -c 'SHOW HOSTS' | awk -F'|' '\$1==\"reads_pref\" && \$4==\"down\"' | wc -l) == 2 ]]"
out=$(for i in $(seq 10); do pgu_q reads_pref -F'|' -c 'select host(inet_server_addr()), pg_is_in_recovery()' 2>&1 || echo "FAILED"; done | sort | uniq -c | awk '{print $2":"$1}' | tr '\n' ' ')
assert_eq "$P|f:10 " "$out" "reads_pref with no standby up"
assert_eq "1" "$(pgu_host_field reads_pref "$P" 8)" "primary eligible for reads_pref"
pgu_try pgbench -n -S -T 2 -c 8 -j 2 -h 127.0.0.1 -p "$PGU_PORT" -U u_trust reads_pref
assert_ok "pgbench -S on reads_pref with no standby up"
assert_contains "$PGU_OUT" "number of failed transactions: 0 " "0 failed"
echo "   reads_pref pool now: $(pgu_admin 'SHOW HOSTS' | awk -F'|' '$1=="reads_pref" {printf "%s sv_active=%s sv_idle=%s; ", $2, $9, $10}')"
start_node n1
start_node n2
pgu_wait_for 20 "$S1 up again" pgu_host_is reads_pref "$S1" 4 up
pgu_wait_for 20 "$S2 up again" pgu_host_is reads_pref "$S2" 4 up
seq_hosts=$(for i in $(seq 20); do served_by reads_pref; done | tr '\n' ' ')
echo "   20 sequential reads_pref transactions after the standbys returned: $seq_hosts"
on_primary=$(tr ' ' '\n' <<<"$seq_hosts" | grep -cx "$P" || true)
# steady state: the last 15 must all be on standbys (a first transaction served by the
# primary while a standby connection is being opened is reported, not failed)
late_primary=$(tr ' ' '\n' <<<"$seq_hosts" | tail -n +6 | grep -cx "$P" || true)
echo "   on the primary: $on_primary of 20 ($late_primary of the last 15)"
if ((late_primary == 0)); then
	echo "   ok: reads_pref back on the standbys"
else
	pgu_soft_fail "prefer-standby: both standbys up again (SHOW HOSTS eligible=1 for both), yet $on_primary of 20 sequential reads_pref transactions ran on the primary $P ($late_primary of the last 15): $seq_hosts; SHOW HOSTS: $(pgu_admin 'SHOW HOSTS' | awk -F'|' '$1=="reads_pref"' | tr '\n' ';')"
	pgu_flush_stats reads_pref
fi

# ------------------------------------------------------------------------------ (d)
check "(d) failover: primary stopped, $S1 promoted: writes follow with no reload"
pgu_direct "$P" 'create table fo_log(i int, h text, at timestamptz default now())' >/dev/null
pgu_wait_for 10 "fo_log replicated to $S1" pgu_direct "$S1" 'select 1 from fo_log limit 1; select 1'
assert_eq "$P" "$(pgu_q writes -c 'select host(inet_server_addr())')" "writes on $P before the failover"
# write loop: one short transaction at a time, each line "time ok host" or "time err ..."
write_loop() {
	local i r end=$((SECONDS + 35))
	for ((i = 1; i <= 400 && SECONDS < end; i++)); do
		[[ -f $PGU_TMP/stop_writes ]] && break
		if r=$(timeout 10 psql -X -At -q -h 127.0.0.1 -p "$PGU_PORT" -U u_trust writes \
			-c "insert into fo_log(i, h) values ($i, host(inet_server_addr())) returning h" 2>&1); then
			echo "$EPOCHREALTIME ok $r"
		else
			echo "$EPOCHREALTIME err $(tr '\n' ' ' <<<"$r")"
		fi
		sleep 0.1
	done
}
pgu_bg bash -c "$(declare -f write_loop); PGU_TMP=$PGU_TMP PGU_PORT=$PGU_PORT write_loop >$PGU_TMP/writes.log"
WL=$PGU_BG_PID
sleep 2
t_stop=$EPOCHREALTIME
pgctl n0 -m fast -w stop
pgctl n1 -w promote
echo "   primary stopped, $S1 promoted"
new_primary() { [[ $(pgu_q writes -c 'select host(inet_server_addr())||pg_is_in_recovery()::text') == "${S1}false" ]]; }
pgu_wait_for 20 "writes served by $S1, not in recovery" new_primary
assert_log_contains "host $S1:$PORT is now primary"
assert_eq "$PID0" "$PGU_PID" "same pgusher process"
pgu__alive "$PID0" || fail "pgusher died"
grep -qiE 'reload' "$PGU_LOG" && fail "pgusher log mentions a reload"
pgu_try pgu_q writes -F'|' -c 'insert into fo_log(i, h) values (-1, host(inet_server_addr())) returning h, pg_is_in_recovery()'
assert_ok "a write through writes after the failover"
assert_eq "$S1|f" "$PGU_OUT" "write landed on the new primary"
# let the loop write a while on the new primary
for ((i = 0; i < 50; i++)); do
	(($(grep -c " ok $S1\$" "$PGU_TMP/writes.log" || true) >= 10)) && break
	sleep 0.2
done
touch "$PGU_TMP/stop_writes"
wait "$WL" || true
PGU_BG_PIDS=()
n_old=$(grep -c " ok $P\$" "$PGU_TMP/writes.log" || true)
n_new=$(grep -c " ok $S1\$" "$PGU_TMP/writes.log" || true)
n_err=$(grep -c " err " "$PGU_TMP/writes.log" || true)
echo "   write loop: $n_old on $P, $n_new on $S1, $n_err errors"
grep " err " "$PGU_TMP/writes.log" | head -n 5 | sed 's/^/     /' || true
((n_old > 0)) || fail "write loop wrote nothing on the old primary"
((n_new >= 10)) || fail "write loop wrote only $n_new times on the new primary"
grep -qvE " ok ($P|$S1)\$| err " "$PGU_TMP/writes.log" && fail "unexpected write-loop line: $(grep -vE " ok ($P|$S1)\$| err " "$PGU_TMP/writes.log" | head -n 3)"
# once the writes reached the new primary, they kept working
late=$(awk -v h="$S1" '$2=="ok" && $3==h {seen=1; next} seen && $2=="err" {print}' "$PGU_TMP/writes.log")
[[ -z $late ]] || fail "writes failed after they had reached the new primary:
$late"
echo "   ok: no write error after the first write on $S1"
# errors only after the primary was stopped
early=$(awk -v t="$t_stop" '$2=="err" && $1 < t {print}' "$PGU_TMP/writes.log")
[[ -z $early ]] || fail "write errors before the primary was stopped:
$early"
rows=$(pgu_direct "$S1" "select count(*) from fo_log where h='$S1' and i > 0")
assert_eq "$n_new" "$rows" "rows the loop wrote on $S1, counted on $S1"

check "(d) SHOW HOSTS after the failover"
pgu_wait_for 10 "$P down" pgu_host_is writes "$P" 4 down
assert_eq "primary|1" "$(pgu_host_field writes "$S1" 5)|$(pgu_host_field writes "$S1" 8)" "writes: $S1 role|eligible"
assert_eq "0" "$(pgu_host_field writes "$S2" 8)" "writes: $S2 not eligible"
assert_eq "$S2" "$(served_by reads_pref)" "reads_pref on the remaining standby"
pgu_finish
