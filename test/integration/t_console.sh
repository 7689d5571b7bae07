#!/usr/bin/env bash
# Story: an operator and their tools drive pgusher as they drove PgBouncer: the admin
# console (exact SHOW headers, true counts, access rules, bad commands), PAUSE/RESUME under
# load, RECONNECT/KILL/DISABLE, SET, online RELOAD/SIGHUP (pool size, a database moved to
# another node under a 20 s pgbench load; a broken ini keeps the old config), and the
# shutdown signals. pgusher-specific: SHOW VERSION says pgusher.
. "$(dirname "$0")/lib.sh"

COLS="$PGU_LIBDIR/data/pgbouncer-1.25-admin-columns.txt"
admin() { psql -X -A -F'|' -P footer=off -h 127.0.0.1 -p "$PGU_PORT" -U postgres pgbouncer "$@"; }
admin_t() { admin -t "$@"; }

write_ini() { # reads_host pool_size [extra line]
	cat >"$PGU_TMP/body.ini" <<EOF2
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb
reads = host=$1 port=$PGU_PGPORT dbname=testdb pool_size=$2
[pgbouncer]
pool_mode = transaction
default_pool_size = 3
admin_users = postgres
stats_users = u_md5
stats_period = 1
log_stats = 1
health_check_user = postgres
${3:-}
EOF2
}
pgu_user u_trust ""
pgu_user postgres ""
write_ini "$PGU_STANDBY1" 2
pgu_start "$PGU_TMP/body.ini"
# lib.sh writes the full ini on start; later edits rewrite that file in place.
INI_BASE=$(cat "$PGU_INI")

check "every SHOW header matches PgBouncer 1.25 exactly"
while IFS=' ' read -r name want; do
	[[ -n $name ]] || continue
	got=$(admin -c "SHOW $name" | head -n 1)
	assert_eq "$want" "$got" "SHOW $name header"
done <"$COLS"
assert_contains "$(admin_t -c 'SHOW VERSION')" "pgusher" "SHOW VERSION names pgusher"

check "counts in SHOW POOLS/CLIENTS/SERVERS match what this test opened"
for i in 1 2 3; do
	pgu_bg psql -X -h 127.0.0.1 -p "$PGU_PORT" -U u_trust testdb -c 'select pg_sleep(6)'
done
for ((i = 0; i < 50; i++)); do
	n=$(admin_t -c 'SHOW POOLS' | awk -F'|' '$1=="testdb"{print $7}')
	[[ $n == 3 ]] && break
	sleep 0.1
done
pool=$(admin_t -c 'SHOW POOLS' | awk -F'|' '$1=="testdb"{print $3"/"$4"/"$7}')
assert_eq "3/0/3" "$pool" "testdb cl_active/cl_waiting/sv_active"
ncl=$(admin_t -c 'SHOW CLIENTS' | awk -F'|' '$3=="testdb"' | wc -l)
assert_eq "3" "$ncl" "SHOW CLIENTS rows for testdb"
pids=$(admin_t -c 'SHOW SERVERS' | awk -F'|' '$3=="testdb" && $5=="active"{print $6":"$7":"$17}' | sort)
real=$(psql -X -At -h "$PGU_PRIMARY" -p "$PGU_PGPORT" -U postgres testdb -c \
	"select '$PGU_PRIMARY:$PGU_PGPORT:'||pid from pg_stat_activity where query like 'select pg_sleep(6)%' and pid <> pg_backend_pid()" | sort)
assert_eq "$real" "$pids" "SHOW SERVERS host:port:remote_pid = the backends running the sleeps"
wait_bg() { for p in "${PGU_BG_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done; PGU_BG_PIDS=(); }
wait_bg

check "access: admin_users full, stats_users SHOW only, others refused"
pgu_try env PGPASSWORD=md5pass psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U u_md5 pgbouncer -c 'SHOW STATE'
assert_ok "stats user may SHOW"
pgu_try env PGPASSWORD=md5pass psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U u_md5 pgbouncer -c 'PAUSE'
assert_fails "stats user may not PAUSE"
pgu_try psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U u_trust pgbouncer -c 'SHOW STATE'
assert_fails "a user in neither list is refused"
assert_contains "$PGU_OUT" "not allowed" "refusal text"

check "bad console input gets an error and the console keeps working"
pgu_try admin -c 'SHOW NOSUCH'
assert_fails "unknown SHOW"
assert_contains "$PGU_OUT" "invalid command" "error text"
pgu_try admin -c 'FROBNICATE'
assert_fails "unknown command"
pgu_try admin -c 'KILL_CLIENT 999999999'
assert_fails "KILL_CLIENT of an unknown id"
pgu_try admin -c 'SET listen_port = 1'
assert_fails "SET of a restart-only setting"
pgu_try python3 "$PGU_LIBDIR/pgwire.py" --help
if [[ $PGU_RC -eq 0 ]]; then :; fi
out=$(python3 - "$PGU_PORT" <<'PY'
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
p = b"user\0postgres\0database\0pgbouncer\0\0"
s.send(struct.pack("!II", len(p) + 8, 196608) + p)
def until_z():
    buf = b""; types = []
    while True:
        d = s.recv(65536)
        if not d: return types
        buf += d
        while len(buf) >= 5 and len(buf) >= 1 + struct.unpack("!I", buf[1:5])[0]:
            n = struct.unpack("!I", buf[1:5])[0]; types.append(chr(buf[0])); buf = buf[1 + n:]
            if types[-1] == "Z": return types
until_z()
body = b"\0SHOW VERSION\0\0\0"
s.send(b"P" + struct.pack("!I", len(body) + 4) + body + b"S\0\0\0\4")
print("".join(until_z()))
s.send(b"Q" + struct.pack("!I", 17) + b"SHOW VERSION\0")
print("".join(until_z()))
PY
)
assert_contains "$out" "EZ" "extended protocol refused with an ErrorResponse"
assert_contains "$out" "TDCZ" "console answers SHOW VERSION afterwards"

check "SET changes a run-time setting; SHOW CONFIG shows it"
admin -c 'SET default_pool_size = 7' >/dev/null
assert_eq "7" "$(admin_t -c 'SHOW CONFIG' | awk -F'|' '$1=="default_pool_size"{print $2}')" "default_pool_size"
admin -c 'SET default_pool_size = 3' >/dev/null

check "stats: counters grow with pgbench; the stats line is logged every stats_period"
pgbench -n -S -t 200 -c 2 -h 127.0.0.1 -p "$PGU_PORT" -U u_trust testdb >/dev/null 2>&1 || fail "pgbench"
x=$(admin_t -c 'SHOW STATS' | awk -F'|' '$1=="testdb"{print $3" "$4}')
read -r xacts queries <<<"$x"
((xacts >= 400 && queries >= 400)) || fail "SHOW STATS testdb xacts=$xacts queries=$queries, want >= 400"
echo "   ok: total_xact_count=$xacts total_query_count=$queries"
sleep 1.5
grep -qE 'LOG stats: [0-9]+ xacts/s, [0-9]+ queries/s, [0-9]+ client parses/s' "$PGU_LOG" || fail "no stats line in the log"
echo "   ok: stats line logged"

check "PAUSE under load holds transactions, RESUME releases them: 0 failed"
pgu_bg bash -c "pgbench -n -S -T 8 -c 6 -j 2 -h 127.0.0.1 -p $PGU_PORT -U u_trust testdb >$PGU_TMP/pause.out 2>&1"
PB=$PGU_BG_PID
sleep 2
timeout 20 psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U postgres pgbouncer -c 'PAUSE' >/dev/null || fail "PAUSE did not return"
assert_eq "0" "$(admin_t -c 'SHOW POOLS' | awk -F'|' '$1=="testdb"{print $7}')" "sv_active while paused"
assert_eq "yes" "$(admin_t -c 'SHOW STATE' | awk -F'|' '$1=="paused"{print $2}')" "SHOW STATE paused"
sleep 1
admin -c 'RESUME' >/dev/null
wait "$PB" || { cat "$PGU_TMP/pause.out"; fail "pgbench across PAUSE/RESUME failed"; }
PGU_BG_PIDS=()
assert_contains "$(cat "$PGU_TMP/pause.out")" "number of failed transactions: 0 " "0 failed across PAUSE/RESUME"
pgbench -n -S -t 50 -c 2 -h 127.0.0.1 -p "$PGU_PORT" -U u_trust testdb >/dev/null 2>&1 || fail "pgbench after RESUME"

check "SIGUSR1 pauses, SIGUSR2 resumes"
kill -USR1 "$PGU_PID"
sleep 0.5
assert_eq "yes" "$(admin_t -c 'SHOW STATE' | awk -F'|' '$1=="paused"{print $2}')" "paused after SIGUSR1"
kill -USR2 "$PGU_PID"
sleep 0.5
assert_eq "no" "$(admin_t -c 'SHOW STATE' | awk -F'|' '$1=="paused"{print $2}')" "resumed after SIGUSR2"

check "RECONNECT replaces server connections; DISABLE/ENABLE; KILL drops a database's clients"
q() { psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U u_trust "$@"; }
pid1=$(q testdb -c 'select pg_backend_pid()')
admin -c 'RECONNECT testdb' >/dev/null
timeout 10 psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U postgres pgbouncer -c 'WAIT_CLOSE testdb' >/dev/null || fail "WAIT_CLOSE"
pid2=$(q testdb -c 'select pg_backend_pid()')
[[ $pid1 != "$pid2" ]] || fail "backend pid unchanged after RECONNECT ($pid1)"
echo "   ok: backend pid $pid1 -> $pid2"
admin -c 'DISABLE testdb' >/dev/null
pgu_try q testdb -c 'select 1'
assert_fails "new connection to a disabled database"
admin -c 'ENABLE testdb' >/dev/null
assert_eq "1" "$(q testdb -c 'select 1')" "works after ENABLE"
pgu_bg psql -X -h 127.0.0.1 -p "$PGU_PORT" -U u_trust testdb -c 'select pg_sleep(10)'
SL=$PGU_BG_PID
sleep 1
admin -c 'KILL testdb' >/dev/null
t0=$SECONDS
wait "$SL" && fail "the killed session's query succeeded" || true
PGU_BG_PIDS=()
((SECONDS - t0 < 8)) || fail "KILL did not drop the session promptly"
admin -c 'RESUME testdb' >/dev/null
assert_eq "1" "$(q testdb -c 'select 1')" "works after RESUME"

check "SIGHUP under a 20 s pgbench load: reads moves to the other standby, pool_size grows; 0 failed"
pgu_bg bash -c "pgbench -n -S -T 20 -c 8 -j 2 -h 127.0.0.1 -p $PGU_PORT -U u_trust reads >$PGU_TMP/pb.out 2>&1"
PB=$PGU_BG_PID
sleep 5
sed -i "s/^reads = .*/reads = host=$PGU_STANDBY2 port=$PGU_PGPORT dbname=testdb pool_size=4/" "$PGU_INI"
pgu_reload
sleep 2
assert_eq "$PGU_STANDBY2" "$(q reads -c 'select host(inet_server_addr())')" "reads served by the new host during the run"
wait "$PB" || { cat "$PGU_TMP/pb.out"; fail "pgbench across the reload failed"; }
PGU_BG_PIDS=()
assert_contains "$(cat "$PGU_TMP/pb.out")" "number of failed transactions: 0 " "0 failed transactions across the reload"
assert_eq "$PGU_STANDBY2|4" "$(admin_t -c 'SHOW DATABASES' | awk -F'|' '$1=="reads"{print $2"|"$6}')" "SHOW DATABASES host|pool_size"

check "a broken ini on SIGHUP and RELOAD keeps the running config"
cp "$PGU_INI" "$PGU_TMP/good.ini"
printf 'no_such_setting = 1\n' >>"$PGU_INI"
pgu_reload
sleep 0.5
assert_log_contains "pgusher.ini:" 5
grep -qE 'RELOAD failed.*:[0-9]+:' "$PGU_LOG" || fail "reload error without file:line"
pgu_try admin -c 'RELOAD'
assert_fails "RELOAD with a broken ini"
assert_eq "1" "$(q testdb -c 'select 1')" "still serving with the old config"
cp "$PGU_TMP/good.ini" "$PGU_INI"

check "reload adds and removes databases and auth_file users"
printf 'added = host=%s port=%s dbname=testdb\n' "$PGU_PRIMARY" "$PGU_PGPORT" >"$PGU_TMP/add"
sed -i "/^\[databases\]/r $PGU_TMP/add" "$PGU_INI"
pgu_try psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U newbie testdb -c 'select 1'
assert_contains "$PGU_OUT" '"trust" authentication failed' "user unknown to auth_file is refused by the pooler (PgBouncer 1.25's words)"
pgu_user newbie ""
admin -c 'RELOAD' >/dev/null
assert_eq "1" "$(q added -c 'select 1')" "new database after reload"
# newbie is no PostgreSQL role: accepted by the pooler now, refused by the server.
pgu_try psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U newbie testdb -c 'select 1'
assert_contains "$PGU_OUT" "role \"newbie\" does not exist" "auth_file user added by reload passes the pooler"
sed -i '/^added = /d' "$PGU_INI"
admin -c 'RELOAD' >/dev/null
pgu_try q added -c 'select 1'
assert_fails "removed database"
assert_contains "$PGU_OUT" "no such database" "removed database error"

check "SIGTERM waits for clients; new connections refused; exit when the last one leaves"
coproc HOLD { psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U u_trust testdb 2>&1; }
echo "select 'held';" >&"${HOLD[1]}"
read -r -t 10 line <&"${HOLD[0]}" || fail "held session did not answer"
assert_eq "held" "$line" "held session works"
kill -TERM "$PGU_PID"
sleep 1
pgu__alive "$PGU_PID" || fail "pooler exited while a client was connected"
echo "select 'still';" >&"${HOLD[1]}"
read -r -t 10 line <&"${HOLD[0]}" || fail "held session stopped answering after SIGTERM"
assert_eq "still" "$line" "the connected client keeps working"
pgu_try q testdb -c 'select 1'
assert_fails "a new connection during shutdown"
exec {HOLD[1]}>&-
for ((i = 0; i < 100; i++)); do pgu__alive "$PGU_PID" || break; sleep 0.1; done
pgu__alive "$PGU_PID" && fail "pooler still running after the last client left"
[[ -e $PGU_PIDFILE ]] && fail "pidfile left behind"
echo "   ok: exited after the last client, pidfile removed"
PGU_PID=""

check "a second pooler on the same pidfile refuses to start; SIGQUIT exits at once"
pgu_start "$PGU_TMP/body.ini"
pgu_try "$PGUSHER_BIN" "$PGU_INI"
assert_fails "second instance"
assert_contains "$PGU_OUT" "pidfile" "second instance error names the pidfile"
kill -QUIT "$PGU_PID"
for ((i = 0; i < 50; i++)); do pgu__alive "$PGU_PID" || break; sleep 0.1; done
pgu__alive "$PGU_PID" && fail "SIGQUIT did not stop the pooler"
PGU_PID=""
pass
