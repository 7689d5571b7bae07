#!/usr/bin/env bash
# User story: an operator (and their monitoring scripts) use pgusher's admin console exactly
# as they used PgBouncer's: every SHOW has PgBouncer 1.25's column header, the counts in
# SHOW POOLS/CLIENTS/SERVERS are the truth (remote_pid = the real backend), SHOW CONFIG and
# SET work, admin_users/stats_users/the Unix-socket "pgbouncer" user get the right access,
# bad input gets an ErrorResponse without killing the console, and the stats counters and
# the periodic "stats:" log line reflect a pgbench run. pgusher-specific: SHOW VERSION
# says pgusher.
source "$(dirname "$0")/lib.sh"

COLS=$PGU_LIBDIR/data/pgbouncer-1.25-admin-columns.txt
[[ -s $COLS ]] || fail "missing $COLS"

# Console as admin (postgres) over TCP: header line + rows, '|' separated, no footer.
admin() { psql -X -A -F'|' -P footer=off -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGU_PORT" -U postgres -d pgbouncer "$@"; }
admin_t() { admin -t "$@"; }
# Console as the stats user (u_md5; auth_type is trust).
stats_user() { psql -X -A -t -F'|' -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGU_PORT" -U u_md5 -d pgbouncer "$@"; }
col() { # show-cmd db-column db-name value-column: one field of the row whose column $2 is $3
	admin_t -c "SHOW $1" | awk -F'|' -v k="$2" -v n="$3" -v v="$4" '$k == n { print $v }'
}

pgu_start <<EOF
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb
sessdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb pool_mode=session

[pgbouncer]
pool_mode = transaction
default_pool_size = 5
max_client_conn = 77
admin_users = postgres
stats_users = u_md5
stats_period = 1
log_stats = 1
EOF

# ---------------------------------------------------------------- (a) headers
check "every SHOW command's column header equals PgBouncer 1.25's"
n=0
while IFS=' ' read -r name want; do
	[[ -n $name ]] || continue
	pgu_try admin -c "SHOW $name"
	assert_ok "SHOW $name runs"
	assert_eq "$want" "$(head -n 1 <<<"$PGU_OUT")" "SHOW $name header"
	n=$((n + 1))
done <"$COLS"
((n >= 20)) || fail "only $n SHOW commands in $COLS"
# Case does not matter, a trailing ';' neither.
assert_eq "$(grep '^VERSION ' "$COLS" | cut -d' ' -f2)" "$(admin -c 'show version;' | head -n 1)" "lower-case 'show version;' header"

# ---------------------------------------------------------------- (c) version/config/set
check "SHOW VERSION names pgusher"
assert_contains "$(admin_t -c 'SHOW VERSION')" "pgusher" "SHOW VERSION"

check "SHOW CONFIG reflects the ini"
assert_eq "5" "$(col CONFIG 1 default_pool_size 2)" "default_pool_size in SHOW CONFIG"
assert_eq "77" "$(col CONFIG 1 max_client_conn 2)" "max_client_conn in SHOW CONFIG"
assert_eq "transaction" "$(col CONFIG 1 pool_mode 2)" "pool_mode in SHOW CONFIG"
assert_eq "$PGU_PORT" "$(col CONFIG 1 listen_port 2)" "listen_port in SHOW CONFIG"
assert_eq "no" "$(col CONFIG 1 listen_port 4)" "listen_port is not changeable"
assert_eq "yes" "$(col CONFIG 1 default_pool_size 4)" "default_pool_size is changeable"

check "SET default_pool_size = 7 shows in SHOW CONFIG (and in SHOW DATABASES' default pool)"
pgu_try admin -c "SET default_pool_size = 7"
assert_ok "SET default_pool_size"
assert_eq "7" "$(col CONFIG 1 default_pool_size 2)" "default_pool_size after SET"
pgu_try admin -c "SET default_pool_size = '5'"
assert_ok "SET with a quoted value"
assert_eq "5" "$(col CONFIG 1 default_pool_size 2)" "default_pool_size after SET back to '5'"

check "SET of a setting that needs a restart, of an unknown key, of a bad value: errors"
pgu_try admin -c "SET listen_port = 1"
assert_fails "SET listen_port"
assert_eq "$PGU_PORT" "$(col CONFIG 1 listen_port 2)" "listen_port unchanged"
pgu_try admin -c "SET no_such_setting_xyz = 1"
assert_fails "SET of an unknown key"
pgu_try admin -c "SET default_pool_size = banana"
assert_fails "SET default_pool_size to a non-number"
assert_eq "5" "$(col CONFIG 1 default_pool_size 2)" "default_pool_size unchanged by the bad SET"

# ---------------------------------------------------------------- (b) counts
check "3 sessions running pg_sleep: SHOW POOLS, CLIENTS, SERVERS tell the truth"
APP=pgu-admin-$$
sleepers=()
for i in 1 2 3; do
	PGAPPNAME=$APP pgu_bg psql -X -q -h 127.0.0.1 -p "$PGU_PORT" -U u_trust -d sessdb -c 'select pg_sleep(20)' >/dev/null 2>&1
	sleepers+=("$PGU_BG_PID")
done
# Wait (bounded) until all 3 backends run the sleep.
real=""
for ((i = 0; i < 100; i++)); do
	real=$(pg_direct "$PGU_PRIMARY" postgres -c \
		"select pid from pg_stat_activity where application_name = '$APP' and query like 'select pg_sleep(20)%' and state = 'active' order by pid")
	[[ $(grep -c . <<<"$real") == 3 ]] && break
	sleep 0.1
done
[[ $(grep -c . <<<"$real") == 3 ]] || fail "3 sleeping backends not seen on the primary: '$real'"
pool=$(admin_t -c 'SHOW POOLS' | awk -F'|' '$1=="sessdb" && $2=="u_trust" {print "cl_active="$3" cl_waiting="$4" sv_active="$7" sv_idle="$10}')
assert_eq "cl_active=3 cl_waiting=0 sv_active=3 sv_idle=0" "$pool" "SHOW POOLS sessdb/u_trust"
ncl=$(admin_t -c 'SHOW CLIENTS' | awk -F'|' '$3=="sessdb"' | wc -l)
assert_eq "3" "$ncl" "SHOW CLIENTS rows for sessdb"
cl_states=$(admin_t -c 'SHOW CLIENTS' | awk -F'|' '$3=="sessdb" {print $1":"$2":"$5":"$6":"$19}' | sort -u)
assert_eq "C:u_trust:active:127.0.0.1:$APP" "$cl_states" "SHOW CLIENTS type:user:state:addr:application_name"
servers=$(admin_t -c 'SHOW SERVERS' | awk -F'|' '$3=="sessdb" {print $1":"$2":"$5":"$6":"$7}' | sort | uniq -c | awk '{print $1" "$2}')
assert_eq "3 S:u_trust:active:$PGU_PRIMARY:$PGU_PGPORT" "$servers" "SHOW SERVERS type:user:state:addr:port"
pids=$(admin_t -c 'SHOW SERVERS' | awk -F'|' '$3=="sessdb" {print $17}' | sort -n)
assert_eq "$(sort -n <<<"$real")" "$pids" "SHOW SERVERS remote_pid = pg_stat_activity pids of the sleeps"
# Each client's link is a server's ptr and vice versa.
links=$(admin_t -c 'SHOW CLIENTS' | awk -F'|' '$3=="sessdb" {print $16}' | sort)
ptrs=$(admin_t -c 'SHOW SERVERS' | awk -F'|' '$3=="sessdb" {print $15}' | sort)
assert_eq "$ptrs" "$links" "client links = server ptrs"
assert_eq "3" "$(col DATABASES 1 sessdb 13)" "SHOW DATABASES current_connections for sessdb"
assert_eq "3" "$(col DATABASES 1 sessdb 15)" "SHOW DATABASES current_client_connections for sessdb"
for p in "${sleepers[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
for p in "${sleepers[@]}"; do wait "$p" 2>/dev/null || true; done
PGU_BG_PIDS=()
for ((i = 0; i < 100; i++)); do
	n=$(admin_t -c 'SHOW CLIENTS' | awk -F'|' '$3=="sessdb"' | wc -l)
	((n == 0)) && break
	sleep 0.1
done
assert_eq "0" "$n" "SHOW CLIENTS rows for sessdb after the sessions ended"

# ---------------------------------------------------------------- (d) access control
check "admin user: SHOW and control commands"
pgu_try admin -c 'PAUSE testdb'
assert_ok "admin may PAUSE testdb"
assert_eq "1" "$(col DATABASES 1 testdb 16)" "testdb paused"
pgu_try admin -c 'RESUME testdb'
assert_ok "admin may RESUME testdb"
assert_eq "0" "$(col DATABASES 1 testdb 16)" "testdb resumed"

check "stats user (stats_users): SHOW works, control commands and SET do not"
pgu_try stats_user -c 'SHOW POOLS'
assert_ok "stats user SHOW POOLS"
assert_contains "$PGU_OUT" "sessdb|u_trust|" "stats user sees the pools"
pgu_try stats_user -c 'PAUSE'
assert_fails "stats user PAUSE"
assert_eq "no" "$(col STATE 1 paused 2)" "still not paused after the stats user's PAUSE"
pgu_try stats_user -c 'SET default_pool_size = 9'
assert_fails "stats user SET"
assert_eq "5" "$(col CONFIG 1 default_pool_size 2)" "default_pool_size unchanged by the stats user"
pgu_try stats_user -c 'SHUTDOWN'
assert_fails "stats user SHUTDOWN"
pgu__alive "$PGU_PID" || fail "pooler exited on the stats user's SHUTDOWN"

check "a user in neither list is refused with 'not allowed'"
pgu_try psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U u_trust -d pgbouncer -c 'SHOW VERSION'
assert_fails "u_trust on the console"
assert_contains "$PGU_OUT" "not allowed" "refusal text"
pgu_try psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U u_trust -d pgusher -c 'SHOW VERSION'
assert_fails "u_trust on the 'pgusher' alias"
assert_contains "$PGU_OUT" "not allowed" "refusal text on the alias"

check "the console alias 'pgusher' works for the admin"
assert_contains "$(psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U postgres -d pgusher -c 'SHOW VERSION')" "pgusher" "SHOW VERSION via the pgusher alias"

check "user 'pgbouncer' over the Unix socket (same OS uid) gets full access without a password"
pgu_try env -u PGPASSWORD psql -X -At -w -h "$PGU_TMP" -p "$PGU_PORT" -U pgbouncer -d pgbouncer -c 'SHOW VERSION'
assert_ok "pgbouncer via the Unix socket"
assert_contains "$PGU_OUT" "pgusher" "SHOW VERSION"
pgu_try env -u PGPASSWORD psql -X -At -w -h "$PGU_TMP" -p "$PGU_PORT" -U pgbouncer -d pgbouncer -c 'PAUSE testdb' -c 'RESUME testdb'
assert_ok "pgbouncer via the Unix socket may PAUSE/RESUME"
pgu_try env -u PGPASSWORD psql -X -At -w -h 127.0.0.1 -p "$PGU_PORT" -U pgbouncer -d pgbouncer -c 'SHOW VERSION'
assert_fails "pgbouncer via TCP (not in admin_users, no auth_file entry)"

check "SHOW CLIENTS: a Unix-socket client's remote_pid is its process id"
psql -X -q -h "$PGU_TMP" -p "$PGU_PORT" -U u_trust testdb -c 'select pg_sleep(1)' >/dev/null 2>&1 &
unix_pid=$!
row=""
for ((i = 0; i < 30; i++)); do
	row=$(admin_t -c 'SHOW CLIENTS' | awk -F'|' '$6 == "unix" && $3 == "testdb" {print $17}')
	[[ -n $row ]] && break
	sleep 0.1
done
wait "$unix_pid" || true
assert_eq "$unix_pid" "$row" "remote_pid of the Unix-socket client"

# ---------------------------------------------------------------- (e) bad input
check "unknown command and SHOW without an argument: 'invalid command' errors"
pgu_try admin -c 'FROBNICATE'
assert_fails "FROBNICATE"
assert_contains "$PGU_OUT" "invalid command" "error text of an unknown command"
pgu_try admin -c 'SHOW'
assert_fails "SHOW with no argument"
assert_contains "$PGU_OUT" "invalid command" "error text of a bare SHOW"
pgu_try admin -c 'SHOW NOSUCHTHING'
assert_fails "SHOW NOSUCHTHING"
assert_contains "$PGU_OUT" "invalid command" "error text of an unknown SHOW"
pgu_try admin -c 'KILL_CLIENT 987654321'
assert_fails "KILL_CLIENT with a bogus id"
pgu_try admin -c 'KILL_CLIENT banana'
assert_fails "KILL_CLIENT with a non-numeric id"
pgu_try admin -c 'PAUSE nosuchdb_xyz'
assert_fails "PAUSE of an unknown database"
assert_contains "$PGU_OUT" "no such database" "error text of PAUSE nosuchdb"
assert_eq "no" "$(col STATE 1 paused 2)" "nothing paused by the bad commands"

check "errors inside one session: the console keeps answering in the same connection"
out=$(admin_t -v ON_ERROR_STOP=0 -c 'FROBNICATE' -c 'SHOW VERSION' 2>&1)
assert_contains "$out" "invalid command" "first command fails"
assert_contains "$out" "pgusher" "second command in the same session answers"

check "extended protocol against the console: ErrorResponse + ReadyForQuery, console still answers"
out=$(timeout 20 python3 - "$PGU_PORT" <<'PY'
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=8)
def msg(t, b): return t + struct.pack("!I", len(b) + 4) + b
def read_until_z():
    got, buf = [], b""
    while True:
        while len(buf) < 5 or len(buf) < 1 + struct.unpack("!I", buf[1:5])[0]:
            d = s.recv(65536)
            if not d:
                got.append("CLOSED"); return got, buf
            buf += d
        n = struct.unpack("!I", buf[1:5])[0]
        t, body, buf = chr(buf[0]), buf[5:1 + n], buf[1 + n:]
        if t == "R":
            code = struct.unpack("!I", body[:4])[0]
            if code == 5:
                import hashlib
                inner = hashlib.md5(b"pgpass" + b"postgres").hexdigest()
                outer = hashlib.md5(inner.encode() + body[4:8]).hexdigest()
                s.sendall(msg(b"p", b"md5" + outer.encode() + b"\0"))
            got.append("R%d" % code)
        elif t == "E":
            f = {p[:1].decode(): p[1:].decode() for p in body.split(b"\0") if p}
            got.append("E:%s:%s" % (f.get("C"), f.get("M")))
        elif t == "D":
            got.append("D:" + body[6:].decode(errors="replace"))
        else:
            got.append(t)
        if t == "Z":
            return got, buf
p = b"user\0postgres\0database\0pgbouncer\0\0"
s.sendall(struct.pack("!II", len(p) + 8, 196608) + p)
g, _ = read_until_z(); print("LOGIN", " ".join(x for x in g if x[0] in "RZE"))
# Parse + Bind + Execute + Sync, as a driver using the extended protocol would.
s.sendall(msg(b"P", b"\0SHOW VERSION\0\0\0") + msg(b"B", b"\0\0\0\0\0\0\0\0") +
          msg(b"E", b"\0\0\0\0\0") + msg(b"S", b""))
g, _ = read_until_z(); print("EXT", " ".join(g))
s.sendall(msg(b"Q", b"SHOW VERSION\0"))
g, _ = read_until_z(); print("SIMPLE", " ".join(g))
s.sendall(msg(b"X", b""))
PY
) || fail "python extended-protocol client failed: $out"
echo "$out" | sed 's/^/     /'
login=$(grep '^LOGIN' <<<"$out")
assert_contains "$login" "Z" "login completed"
ext=$(grep '^EXT' <<<"$out")
[[ $ext =~ ^EXT\ E:[0-9A-Z]{5}:[^\ ].*\ Z$ ]] || fail "extended protocol should get exactly one ErrorResponse then ReadyForQuery; got: $ext"
[[ $(grep -o ' E:' <<<"$ext" | wc -l) == 1 ]] || fail "more than one ErrorResponse for one Sync: $ext"
echo "   ok: extended protocol refused with one ErrorResponse + ReadyForQuery"
simple=$(grep '^SIMPLE' <<<"$out")
[[ $simple =~ ^SIMPLE\ T\ D:.*pgusher.*\ C\ Z$ ]] || fail "SHOW VERSION after the refused extended query; got: $simple"
echo "   ok: console answers SHOW VERSION in the same connection afterwards"
assert_contains "$(admin_t -c 'SHOW VERSION')" "pgusher" "console still answers new connections"

# ---------------------------------------------------------------- (f) stats
check "SHOW STATS totals grow with a pgbench run (-S -t 200 -c 2 = 400 transactions)"
before=$(col STATS 1 testdb 3)
before=${before:-0}
pgu_try timeout 120 pgbench -n -S -t 200 -c 2 -h 127.0.0.1 -p "$PGU_PORT" -U u_trust testdb
assert_ok "pgbench -S -t 200 -c 2"
assert_contains "$PGU_OUT" "number of transactions actually processed: 400/400" "pgbench processed 400"
row=$(admin_t -c 'SHOW STATS' | awk -F'|' '$1=="testdb" {print $3" "$4" "$5" "$6}')
read -r xacts queries recv sent <<<"$row"
[[ $xacts =~ ^[0-9]+$ && $queries =~ ^[0-9]+$ ]] || fail "SHOW STATS testdb row missing or malformed: '$row'"
((xacts - before >= 400)) || fail "total_xact_count grew by $((xacts - before)); want >= 400"
((queries >= 400)) || fail "total_query_count $queries; want >= 400"
((recv > 0 && sent > 0)) || fail "total_received/total_sent should be > 0: $recv/$sent"
echo "   ok: total_xact_count=$xacts total_query_count=$queries total_received=$recv total_sent=$sent"
tot=$(admin_t -c 'SHOW STATS_TOTALS' | awk -F'|' '$1=="testdb" {print $3}')
assert_eq "$xacts" "$tot" "SHOW STATS_TOTALS xact_count = SHOW STATS total_xact_count"

check "log_stats=1, stats_period=1: a 'stats:' line in the log"
found=""
for ((i = 0; i < 50; i++)); do
	found=$(grep -E 'LOG stats: [0-9]+ xacts/s, [0-9]+ queries/s' "$PGU_LOG" | tail -n 1 || true)
	[[ -n $found ]] && break
	sleep 0.2
done
[[ -n $found ]] || fail "no line matching 'LOG stats: N xacts/s, N queries/s' in the log within 10 s"
echo "   ok: $found"
# Some period during/after the 400-transaction run must report a non-zero rate.
grep -qE 'LOG stats: [1-9][0-9]* xacts/s' "$PGU_LOG" || {
	# The run may have fallen inside one period that is logged a moment later.
	sleep 2
	grep -qE 'LOG stats: [1-9][0-9]* xacts/s' "$PGU_LOG" || fail "no stats line with a non-zero xacts/s after 400 transactions"
}
echo "   ok: a stats line reports a non-zero xacts/s"

check "SHOW TOTALS averages: times weighted over all databases, not summed per database"
# testdb: slow queries (pg_sleep 0.2 s); sessdb: fast ones. In each stats period
# avg_query_time over both is the weighted mean: below testdb's own, far above sessdb's.
slow_sql=$(for ((i = 0; i < 20; i++)); do echo 'select pg_sleep(0.2);'; done)
psql -X -q -h 127.0.0.1 -p "$PGU_PORT" -U u_trust testdb -f - <<<"$slow_sql" >/dev/null 2>&1 & # one query each
slow_pid=$!
timeout 60 pgbench -n -S -T 4 -c 1 -h 127.0.0.1 -p "$PGU_PORT" -U u_trust sessdb >/dev/null 2>&1 &
fast_pid=$!
sleep 2.5 # two whole periods of both loads
out=$(admin_t -c 'SHOW STATS' -c 'SHOW TOTALS')
wait "$fast_pid" "$slow_pid" || true # both end after about 4 s
slow_avg=$(awk -F'|' '$1=="testdb" {print $19}' <<<"$out")
fast_avg=$(awk -F'|' '$1=="sessdb" {print $19}' <<<"$out")
tot_avg=$(awk -F'|' '$1=="avg_query_time" {print $2}' <<<"$out")
[[ $slow_avg =~ ^[0-9]+$ && $fast_avg =~ ^[0-9]+$ && $tot_avg =~ ^[0-9]+$ ]] ||
	fail "avg_query_time missing: testdb '$slow_avg' sessdb '$fast_avg' total '$tot_avg'"
((slow_avg >= 150000)) || fail "testdb avg_query_time $slow_avg us; want ~200000 (pg_sleep 0.2)"
((tot_avg < slow_avg && tot_avg > fast_avg)) ||
	fail "SHOW TOTALS avg_query_time $tot_avg should lie between sessdb's $fast_avg and testdb's $slow_avg"
echo "   ok: avg_query_time testdb $slow_avg, sessdb $fast_avg, all databases $tot_avg"

pass
