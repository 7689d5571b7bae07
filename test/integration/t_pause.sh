#!/usr/bin/env bash
# User story: an operator does maintenance behind pgusher as they did behind PgBouncer.
# PAUSE under a pgbench load waits for the running transactions, closes every server
# connection and holds the clients; RESUME lets them continue and not one transaction fails.
# PAUSE/RESUME of one database leaves the others serving; SIGUSR1/SIGUSR2 = PAUSE/RESUME.
# RECONNECT replaces server connections (a new backend pid), WAIT_CLOSE returns once the
# old servers are gone, KILL drops a database's clients (KILL alone: every database's) and
# holds new ones until RESUME, DISABLE refuses new clients until ENABLE.
source "$(dirname "$0")/lib.sh"

admin() { psql -X -A -t -F'|' -P footer=off -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGU_PORT" -U postgres -d pgbouncer "$@"; }
col() { # show-cmd key-column key value-column
	admin -c "SHOW $1" | awk -F'|' -v k="$2" -v n="$3" -v v="$4" '$k == n { print $v }'
}
q() { # db sql: one query as u_trust
	psql -X -A -t -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGU_PORT" -U u_trust -d "$1" -c "$2"
}
wait_pid_gone() { # pid seconds: 0 when the process ended in time
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		pgu__alive "$1" || return 0
		sleep 0.1
	done
	return 1
}
primary_backends() { # application_name: client backends on the primary
	pg_direct "$PGU_PRIMARY" postgres -c \
		"select count(*) from pg_stat_activity where application_name = '$1' and backend_type = 'client backend'"
}

pgu_start <<EOF
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb
otherdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb
onedb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb pool_size=1

[pgbouncer]
pool_mode = transaction
default_pool_size = 4
max_client_conn = 100
EOF

# ---------------------------------------------------------------- PAUSE under load
check "PAUSE under pgbench -S -T 12 -c 8 (transaction mode): returns, closes all servers, holds clients"
APP=pgu-pause-$$
PGAPPNAME=$APP pgu_bg timeout 90 pgbench -n -S -T 12 -c 8 -j 2 -h 127.0.0.1 -p "$PGU_PORT" -U u_trust testdb >"$PGU_TMP/pb.out" 2>&1
PB=$PGU_BG_PID
# Wait (bounded) until pgbench is running through the pooler.
for ((i = 0; i < 100; i++)); do
	x=$(col STATS 1 testdb 3)
	((${x:-0} > 100)) && break
	sleep 0.1
done
((${x:-0} > 100)) || fail "pgbench did not get going (total_xact_count=${x:-none})"
sleep 1
pgu_try timeout 30 psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U postgres -d pgbouncer -c 'PAUSE'
assert_ok "PAUSE returned (within 30 s)"
assert_eq "yes" "$(col STATE 1 paused 2)" "SHOW STATE paused"
pools=$(admin -c 'SHOW POOLS' | awk -F'|' '$1=="testdb" && $2=="u_trust" {print "sv_active="$7" sv_idle="$10" sv_used="$11}')
assert_eq "sv_active=0 sv_idle=0 sv_used=0" "$pools" "testdb servers while paused"
assert_eq "0" "$(primary_backends "$APP")" "pgbench's backends on the primary while paused"
waiting=""
for ((i = 0; i < 50; i++)); do
	waiting=$(admin -c 'SHOW POOLS' | awk -F'|' '$1=="testdb" && $2=="u_trust" {print $3"/"$4}')
	[[ $waiting == 0/8 ]] && break
	sleep 0.1
done
assert_eq "0/8" "$waiting" "cl_active/cl_waiting: all 8 pgbench clients wait"
x1=$(col STATS 1 testdb 3)
sleep 1.5
x2=$(col STATS 1 testdb 3)
assert_eq "$x1" "$x2" "no transactions run while paused (total_xact_count)"
pgu__alive "$PB" || fail "pgbench ended while paused: $(cat "$PGU_TMP/pb.out")"

check "RESUME: pgbench finishes with 0 failed transactions"
pgu_try admin -c 'RESUME'
assert_ok "RESUME"
assert_eq "no" "$(col STATE 1 paused 2)" "SHOW STATE paused after RESUME"
rc=0
wait "$PB" || rc=$?
PGU_BG_PIDS=()
out=$(cat "$PGU_TMP/pb.out")
echo "$out" | grep -E 'processed|failed|tps' | sed 's/^/     /'
assert_eq 0 "$rc" "pgbench exit status"
assert_contains "$out" "number of failed transactions: 0 (" "0 failed transactions"
x3=$(col STATS 1 testdb 3)
((x3 > x2)) || fail "no transactions after RESUME ($x2 -> $x3)"
echo "   ok: transactions continued after RESUME ($x2 -> $x3)"
pgu_try admin -c 'RESUME'
assert_fails "RESUME when nothing is paused"

# ---------------------------------------------------------------- PAUSE db
check "PAUSE testdb: only testdb is paused; otherdb keeps serving; a testdb query waits for RESUME testdb"
pgu_try timeout 30 psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U postgres -d pgbouncer -c 'PAUSE testdb'
assert_ok "PAUSE testdb returned"
assert_eq "1" "$(col DATABASES 1 testdb 16)" "SHOW DATABASES paused for testdb"
assert_eq "0" "$(col DATABASES 1 otherdb 16)" "SHOW DATABASES paused for otherdb"
assert_eq "no" "$(col STATE 1 paused 2)" "SHOW STATE paused (global) stays no"
assert_eq "2" "$(timeout 10 psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U u_trust -d otherdb -c 'select 2')" "otherdb answers while testdb is paused"
pgu_bg timeout 30 psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U u_trust -d testdb -c 'select 41+1' >"$PGU_TMP/held.out" 2>&1
HELD=$PGU_BG_PID
sleep 1.5
pgu__alive "$HELD" || fail "testdb query finished while testdb was paused: $(cat "$PGU_TMP/held.out")"
echo "   ok: testdb query is held"
pgu_try admin -c 'RESUME otherdb'
assert_fails "RESUME of a database that is not paused"
pgu_try admin -c 'RESUME testdb'
assert_ok "RESUME testdb"
wait_pid_gone "$HELD" 15 || fail "held testdb query still waiting 15 s after RESUME testdb"
wait "$HELD" || fail "held testdb query failed: $(cat "$PGU_TMP/held.out")"
PGU_BG_PIDS=()
assert_eq "42" "$(cat "$PGU_TMP/held.out")" "held query's result after RESUME testdb"
assert_eq "0" "$(col DATABASES 1 testdb 16)" "testdb no longer paused"

# ---------------------------------------------------------------- signals
check "SIGUSR1 pauses like PAUSE, SIGUSR2 resumes like RESUME"
kill -USR1 "$PGU_PID"
st=""
for ((i = 0; i < 50; i++)); do
	st=$(col STATE 1 paused 2)
	[[ $st == yes ]] && break
	sleep 0.1
done
assert_eq "yes" "$st" "SHOW STATE paused after SIGUSR1"
pgu_bg timeout 30 psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U u_trust -d otherdb -c 'select 43' >"$PGU_TMP/held2.out" 2>&1
HELD=$PGU_BG_PID
sleep 1.5
pgu__alive "$HELD" || fail "query finished while paused by SIGUSR1: $(cat "$PGU_TMP/held2.out")"
echo "   ok: query held while paused by SIGUSR1"
kill -USR2 "$PGU_PID"
wait_pid_gone "$HELD" 15 || fail "held query still waiting 15 s after SIGUSR2"
wait "$HELD" || fail "held query failed: $(cat "$PGU_TMP/held2.out")"
PGU_BG_PIDS=()
assert_eq "43" "$(cat "$PGU_TMP/held2.out")" "held query's result after SIGUSR2"
assert_eq "no" "$(col STATE 1 paused 2)" "SHOW STATE paused after SIGUSR2"
assert_log_contains "got SIGUSR1" 2
assert_log_contains "got SIGUSR2" 2

# ---------------------------------------------------------------- RECONNECT / WAIT_CLOSE
check "RECONNECT onedb (pool_size 1): the backend pid changes"
pid1=$(q onedb 'select pg_backend_pid()')
pid1b=$(q onedb 'select pg_backend_pid()')
assert_eq "$pid1" "$pid1b" "pool_size 1 reuses one backend"
pgu_try admin -c 'RECONNECT onedb'
assert_ok "RECONNECT onedb"
pid2=$(q onedb 'select pg_backend_pid()')
[[ $pid2 =~ ^[0-9]+$ && $pid2 != "$pid1" ]] || fail "backend pid after RECONNECT: $pid1 -> $pid2 (should change)"
echo "   ok: backend pid $pid1 -> $pid2"
for ((i = 0; i < 50; i++)); do
	gone=$(pg_direct "$PGU_PRIMARY" postgres -c "select count(*) from pg_stat_activity where pid = $pid1")
	[[ $gone == 0 ]] && break
	sleep 0.1
done
assert_eq "0" "$gone" "old backend $pid1 gone from the primary"

check "RECONNECT with a server in a transaction; WAIT_CLOSE returns only after it is released"
pgu_sess_open tx onedb
r=$(pgu_sess_q tx "begin; select pg_backend_pid();")
[[ $r =~ ^[0-9]+$ ]] || fail "session in a transaction: got '$r'"
txpid=$r
pgu_try admin -c 'RECONNECT onedb'
assert_ok "RECONNECT onedb"
close_needed=$(admin -c 'SHOW SERVERS' | awk -F'|' '$3=="onedb" {print $17":"$14}')
assert_eq "$txpid:1" "$close_needed" "SHOW SERVERS: the busy server is close_needed"
pgu_bg timeout 30 psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U postgres -d pgbouncer -c 'WAIT_CLOSE onedb' >"$PGU_TMP/wc.out" 2>&1
WC=$PGU_BG_PID
sleep 1.5
pgu__alive "$WC" || fail "WAIT_CLOSE returned while the old server was still in a transaction: $(cat "$PGU_TMP/wc.out")"
echo "   ok: WAIT_CLOSE waits"
assert_eq "$txpid" "$(pgu_sess_q tx 'select pg_backend_pid();')" "the transaction keeps its backend after RECONNECT"
r=$(pgu_sess_q tx "commit; select 'committed';")
assert_eq "committed" "$r" "COMMIT"
wait_pid_gone "$WC" 15 || fail "WAIT_CLOSE still waiting 15 s after the old server was released"
wait "$WC" || fail "WAIT_CLOSE failed: $(cat "$PGU_TMP/wc.out")"
echo "   ok: WAIT_CLOSE returned after the release"
r=$(pgu_sess_q tx "select pg_backend_pid();")
[[ $r =~ ^[0-9]+$ && $r != "$txpid" ]] || fail "backend after WAIT_CLOSE should be new: $txpid -> $r"
echo "   ok: next transaction on a new backend ($txpid -> $r)"
pgu_sess_close tx
PGU_BG_PIDS=()

# ---------------------------------------------------------------- KILL
check "KILL testdb: a connected idle client is dropped with an error; new clients wait until RESUME"
pgu_bg timeout 40 python3 "$PGU_LIBDIR"/pgwire.py startup --port "$PGU_PORT" --user u_trust --database testdb --query 'select 1' --hold 30 >"$PGU_TMP/kill.out" 2>&1
KC=$PGU_BG_PID
for ((i = 0; i < 50; i++)); do
	grep -q '^ROW 1' "$PGU_TMP/kill.out" 2>/dev/null && break
	sleep 0.1
done
grep -q '^ROW 1' "$PGU_TMP/kill.out" || fail "held client did not log in: $(cat "$PGU_TMP/kill.out")"
pgu_try admin -c 'KILL testdb'
assert_ok "KILL testdb"
wait_pid_gone "$KC" 10 || fail "the connected client was not dropped within 10 s of KILL"
PGU_BG_PIDS=()
out=$(cat "$PGU_TMP/kill.out")
assert_contains "$out" "ERROR S=" "the dropped client gets an ErrorResponse"
assert_contains "$out" "CLOSED after" "and its connection is closed"
assert_eq "1" "$(col DATABASES 1 testdb 16)" "testdb paused after KILL"
assert_eq "0" "$(admin -c 'SHOW CLIENTS' | awk -F'|' '$3=="testdb"' | wc -l)" "no testdb clients after KILL"
pgu_bg timeout 30 psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U u_trust -d testdb -c 'select 44' >"$PGU_TMP/held3.out" 2>&1
HELD=$PGU_BG_PID
sleep 1.5
pgu__alive "$HELD" || fail "new testdb client finished after KILL without RESUME: $(cat "$PGU_TMP/held3.out")"
echo "   ok: new testdb client waits"
pgu_try admin -c 'RESUME testdb'
assert_ok "RESUME testdb after KILL"
wait_pid_gone "$HELD" 15 || fail "client still waiting 15 s after RESUME testdb"
wait "$HELD" || fail "client after KILL+RESUME failed: $(cat "$PGU_TMP/held3.out")"
PGU_BG_PIDS=()
assert_eq "44" "$(cat "$PGU_TMP/held3.out")" "query after KILL + RESUME"

check "KILL without a database (PgBouncer 1.25): every database's clients are dropped; new clients wait until RESUME"
pgu_bg timeout 40 python3 "$PGU_LIBDIR"/pgwire.py startup --port "$PGU_PORT" --user u_trust --database testdb --query 'select 1' --hold 30 >"$PGU_TMP/killall1.out" 2>&1
KA1=$PGU_BG_PID
pgu_bg timeout 40 python3 "$PGU_LIBDIR"/pgwire.py startup --port "$PGU_PORT" --user u_trust --database otherdb --query 'select 1' --hold 30 >"$PGU_TMP/killall2.out" 2>&1
KA2=$PGU_BG_PID
for ((i = 0; i < 50; i++)); do
	grep -q '^ROW 1' "$PGU_TMP/killall1.out" 2>/dev/null && grep -q '^ROW 1' "$PGU_TMP/killall2.out" 2>/dev/null && break
	sleep 0.1
done
grep -q '^ROW 1' "$PGU_TMP/killall2.out" || fail "held otherdb client did not log in: $(cat "$PGU_TMP/killall2.out")"
pgu_try admin -c 'KILL'
assert_ok "KILL"
wait_pid_gone "$KA1" 10 || fail "the testdb client was not dropped within 10 s of KILL"
wait_pid_gone "$KA2" 10 || fail "the otherdb client was not dropped within 10 s of KILL"
PGU_BG_PIDS=()
assert_contains "$(cat "$PGU_TMP/killall2.out")" "ERROR S=" "the dropped otherdb client gets an ErrorResponse"
assert_eq "1 1" "$(col DATABASES 1 testdb 16) $(col DATABASES 1 otherdb 16)" "both databases paused after KILL"
assert_eq "VERSION" "$(admin -c 'SHOW VERSION' >/dev/null && echo VERSION)" "the console still answers"
pgu_bg timeout 30 psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U u_trust -d otherdb -c 'select 45' >"$PGU_TMP/held4.out" 2>&1
HELD=$PGU_BG_PID
sleep 1.5
pgu__alive "$HELD" || fail "new otherdb client finished after KILL without RESUME: $(cat "$PGU_TMP/held4.out")"
echo "   ok: new otherdb client waits"
pgu_try admin -c 'RESUME'
assert_ok "RESUME after KILL"
wait_pid_gone "$HELD" 15 || fail "client still waiting 15 s after RESUME"
wait "$HELD" || fail "client after KILL+RESUME failed: $(cat "$PGU_TMP/held4.out")"
PGU_BG_PIDS=()
assert_eq "45" "$(cat "$PGU_TMP/held4.out")" "query after KILL + RESUME"
assert_eq "0 0" "$(col DATABASES 1 testdb 16) $(col DATABASES 1 otherdb 16)" "no database paused after RESUME"

# ---------------------------------------------------------------- DISABLE / ENABLE
check "DISABLE otherdb refuses new clients (the connected one keeps working); ENABLE restores"
pgu_sess_open dis otherdb
assert_eq "5" "$(pgu_sess_q dis 'select 5;')" "session on otherdb before DISABLE"
pgu_try admin -c 'DISABLE otherdb'
assert_ok "DISABLE otherdb"
assert_eq "1" "$(col DATABASES 1 otherdb 17)" "SHOW DATABASES disabled for otherdb"
pgu_try timeout 15 psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U u_trust -d otherdb -c 'select 1'
assert_fails "new connection to a disabled database"
((PGU_RC != 124)) || fail "connection to a disabled database hung instead of being refused"
assert_eq "6" "$(pgu_sess_q dis 'select 6;')" "connected session still works while disabled"
assert_eq "7" "$(q testdb 'select 7')" "other databases unaffected"
pgu_try admin -c 'ENABLE otherdb'
assert_ok "ENABLE otherdb"
assert_eq "0" "$(col DATABASES 1 otherdb 17)" "SHOW DATABASES disabled after ENABLE"
assert_eq "8" "$(q otherdb 'select 8')" "new connection after ENABLE"
pgu_sess_close dis
PGU_BG_PIDS=()
pgu_try admin -c 'DISABLE'
assert_fails "DISABLE without a database"

check "PAUSE while already paused is refused, as in PgBouncer ('already suspended/paused')"
pgu_try timeout 30 psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U postgres -d pgbouncer -c 'PAUSE'
assert_ok "first PAUSE (idle pooler)"
pgu_try timeout 30 psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U postgres -d pgbouncer -c 'PAUSE'
assert_fails "second PAUSE"
assert_contains "$PGU_OUT" "already suspended/paused" "error text"
pgu_try admin -c 'RESUME'
assert_ok "RESUME"

# ---------------------------------------------------------------- SUSPEND
check "SUSPEND: answers once everything is flushed; suspend_timeout drops a client that does not read"
pgu_try admin -c 'SET suspend_timeout = 2'
assert_ok "SET suspend_timeout = 2"
W=$PGU_LIBDIR/pgwire.py
# One client idle, one whose large result it never reads (it cannot be flushed).
pgu_bg python3 "$W" --host 127.0.0.1 --port "$PGU_PORT" --user u_trust --database testdb --hold 20 startup >"$PGU_TMP/idle.out" 2>&1
pgu_bg python3 "$W" --host 127.0.0.1 --port "$PGU_PORT" --user u_trust --database otherdb unread --valid --n 1 \
	--query "select repeat('x', 1000) from generate_series(1, 100000)" --hold 20 >"$PGU_TMP/unread.out" 2>&1
pgu_sess_open sus testdb
assert_eq "11" "$(pgu_sess_q sus 'select 11;')" "a session before SUSPEND"
pgu_wait_for 10 "the unread client's query running" grep -q UNREAD-DONE "$PGU_TMP/unread.out"
pgu_sess_open con pgbouncer postgres
t0=$(date +%s.%N)
# The console is not read while SUSPEND waits: SHOW STATE's first line comes after it.
state=$(pgu_sess_q con 'SUSPEND; SHOW STATE;')
t1=$(date +%s.%N)
assert_eq "active|no" "$state" "SUSPEND answered, SHOW STATE after it"
el=$(echo "$t1 - $t0" | bc)
(($(echo "$el >= 1.5 && $el < 8" | bc))) || fail "SUSPEND answered after ${el}s, expected about suspend_timeout (2 s)"
read -r -t 5 -u "${PGU_SESS_R[con]}" l2
read -r -t 5 -u "${PGU_SESS_R[con]}" l3
assert_eq "paused|no suspended|yes" "$l2 $l3" "SHOW STATE while suspended (1.25's values)"
assert_log_contains "otherdb/u_trust@$PGU_PRIMARY:$PGU_PGPORT closing because: suspend_timeout"
assert_log_contains "pooler error: suspend_timeout"
assert_contains "$(cat "$PGU_TMP/unread.out")" "UNREAD-DONE" "the unread client was running"

check "while suspended nothing is read nor accepted; RESUME serves both"
echo "select 12;" >&"${PGU_SESS_W[sus]}"
got=""
read -r -t 1.5 -u "${PGU_SESS_R[sus]}" got || true
assert_eq "" "$got" "a query of a connected session is not answered while suspended"
pgu_bg timeout 20 psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U u_trust -d testdb -c 'select 13' >"$PGU_TMP/new.out" 2>&1
NEWPID=$PGU_BG_PID
sleep 1.5
pgu__alive "$NEWPID" || fail "a new connection was served while suspended: $(cat "$PGU_TMP/new.out")"
assert_eq "already suspended/paused" "$(pgu_sess_q con 'PAUSE;' | sed 's/.*ERROR: *//')" "PAUSE while suspended"
echo "RESUME;" >&"${PGU_SESS_W[con]}"
read -r -t 10 -u "${PGU_SESS_R[sus]}" got || got="(no answer)"
assert_eq "12" "$got" "the session's query answered after RESUME"
wait "$NEWPID" || true
assert_eq "13" "$(cat "$PGU_TMP/new.out")" "the connection made while suspended is served after RESUME"
assert_eq "active|yes" "$(pgu_sess_q con 'SHOW STATE;')" "SHOW STATE after RESUME"
pgu_sess_close con
pgu_sess_close sus
sleep 0.2
idle_out=$(cat "$PGU_TMP/idle.out")
assert_not_contains "$idle_out" "ERROR" "the idle client (flushed) was not dropped by suspend_timeout"

pass
