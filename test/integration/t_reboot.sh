#!/usr/bin/env bash
# User story: an operator upgrades the pooler binary without dropping anyone, as with
# PgBouncer's -R. Sessions are open: a session-mode client with SET variables, one inside an
# open transaction, transaction-mode clients between transactions. `pgusher -R` takes the
# sockets over from the running process, which exits; every session goes on in the new one
# (same backend pid in session mode, SET kept, the open transaction commits), a cancel sent
# with the key given out before the restart still cancels pg_sleep, new clients connect, and
# SHOW FDS lists the sockets. 300 idle clients all come over; SCRAM pass-through keys come
# over (a new server login needs them); a TLS client is dropped; a new process that dies
# before SHUTDOWN leaves the old one serving. -R with no pooler running boots normally. The
# story passes against PgBouncer 1.25.2 too (PGUSHER_BIN=.../pgbouncer): it is the comparison.
source "$(dirname "$0")/lib.sh"

admin() { pgu_admin "$1"; }

pgu_start <<EOF
[databases]
sess = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb pool_mode=session
tx = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb pool_mode=transaction

[pgbouncer]
default_pool_size = 4
EOF

check "sessions opened before the restart"
pgu_sess_open a sess
pgu_sess_open b sess
pgu_sess_open c tx
pgu_sess_open d sess
pid_a=$(pgu_sess_q a "select pg_backend_pid();")
[[ $pid_a =~ ^[0-9]+$ ]] || fail "session a: no backend pid: $pid_a"
assert_eq "SET" "$(pgu_sess_q a "set work_mem = '7MB'; select 'SET';")" "session a: SET"
pgu_sess_q b "begin; create temp table t_reboot(x int); insert into t_reboot values (1),(2); select 'open';" >/dev/null
assert_eq "1" "$(pgu_sess_q c "select 1;")" "session c (transaction mode)"
assert_eq "1" "$(pgu_sess_q d "select 1;")" "session d"

check "SHOW FDS from psql lists the sockets (no descriptors passed)"
fds=$(admin "SHOW FDS")
assert_contains "$fds" "|pooler|" "a listening socket row"
assert_contains "$fds" "|client|u_trust|sess|127.0.0.1|" "a client row"
assert_contains "$fds" "|server|u_trust|sess|$PGU_PRIMARY|$PGU_PGPORT|" "a server row"
hdr=$(psql -X -A -F'|' -h 127.0.0.1 -p "$PGU_PORT" -U postgres -d pgbouncer -c "SHOW FDS" | head -1)
assert_eq "fd|task|user|database|addr|port|cancel|link|client_encoding|std_strings|datestyle|timezone|password|scram_client_key|scram_server_key" "$hdr" "PgBouncer's columns"

check "online restart: the old process hands over and exits"
pgu_reboot
for line in "Online restart is deprecated, use so_reuseport instead" "takeover_init: launching connection" \
	"SUSPEND command issued" "SUSPEND finished, sending SHOW FDS" "got pooler socket: 127.0.0.1:$PGU_PORT" \
	"got pooler socket: unix:$PGU_PORT" "SHOW FDS finished" "SHUTDOWN command issued" \
	"old process killed, resuming work"; do
	assert_log_contains "$line" # PgBouncer 1.25.2's lines
done
[[ $PGU_PID != "$PGU_OLD_PID" ]] || fail "same pid"

check "session mode: the same backend and its SET after the restart"
assert_eq "$pid_a" "$(pgu_sess_q a "select pg_backend_pid();")" "session a keeps its server"
assert_eq "7MB" "$(pgu_sess_q a "show work_mem;")" "session a keeps work_mem"

check "the open transaction goes on and commits"
assert_eq "2" "$(pgu_sess_q b "select count(*) from t_reboot;")" "rows of the open transaction"
assert_eq "COMMIT" "$(pgu_sess_q b "commit; select 'COMMIT';")" "commit"

check "transaction mode: a client between transactions goes on"
assert_eq "2" "$(pgu_sess_q c "select 2;")" "session c"

check "a cancel with the key given out before the restart cancels pg_sleep"
echo "select pg_sleep(20);" >&"${PGU_SESS_W[d]}"
pgu_wait_active_query "select pg_sleep(20);"
t0=$SECONDS
kill -INT "${PGU_SESS_PID[d]}"
out="" line=""
while read -r -t 10 -u "${PGU_SESS_R[d]}" line; do
	out+="$line"$'\n'
	[[ $line == *"canceling statement"* ]] && break
done
assert_contains "$out" "canceling statement due to user request" "pg_sleep cancelled"
((SECONDS - t0 < 10)) || fail "cancel took too long"
# (psql reading a script exits after a cancelled statement: d is gone now)

check "new clients connect to the new process"
pgu_try psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U u_trust -d tx -c "select 40+2"
assert_ok "new client"
assert_contains "$PGU_OUT" "42" "new client's answer"
pgu_try psql -X -At -h "$PGU_TMP" -p "$PGU_PORT" -U u_trust -d sess -c "select 43"
assert_ok "new client over the handed-over Unix socket"

pgu_sess_close a
pgu_sess_close b
pgu_sess_close c
pgu_sess_close d

check "a second restart in a row"
pgu_sess_open e tx
assert_eq "5" "$(pgu_sess_q e "select 5;")" "session e"
pgu_reboot
assert_eq "6" "$(pgu_sess_q e "select 6;")" "session e after a second restart"
pgu_sess_close e

if [[ $(basename "$PGUSHER_BIN") != pgbouncer ]]; then
	check "a new process that dies after SHOW FDS, before SHUTDOWN: the old one goes on"
	pgu_sess_open f tx
	assert_eq "8" "$(pgu_sess_q f "select 8;")" "session f"
	# The sockets come with the rows; recv() without room for them drops them, as a
	# process that died would.
	rows=$(python3 - "$PGU_TMP/.s.PGSQL.$PGU_PORT" <<'PYEOF2'
import socket, struct, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
params = b"user\0pgbouncer\0database\0pgbouncer\0\0"
s.sendall(struct.pack("!II", len(params) + 8, 196608) + params)
def until_ready():
    buf = b""
    while not (len(buf) >= 6 and buf[-6:-5] == b"Z"):
        d = s.recv(65536)
        if not d:
            sys.exit("EOF")
        buf += d
    return buf
def query(q):
    body = q.encode() + b"\0"
    s.sendall(b"Q" + struct.pack("!I", len(body) + 4) + body)
    return until_ready()
until_ready()
query("SUSPEND")
print(query("SHOW FDS").count(b"D\0\0"))
s.close()
PYEOF2
)
	((rows >= 4)) || fail "SHOW FDS over the Unix socket: $rows rows"
	assert_log_contains "the new process gave up: resuming work"
	assert_eq "9" "$(pgu_sess_q f "select 9;")" "session f after the aborted takeover"
	pgu_try psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U u_trust -d tx -c "select 10"
	assert_ok "a new client after the aborted takeover"
	pgu_sess_close f
fi

check "300 transaction-mode clients between transactions all come over"
pgu_stop
pgu_start <<EOF
[databases]
tx = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb pool_mode=transaction

[pgbouncer]
max_client_conn = 1000
default_pool_size = 4
EOF
# Each logs in and runs a query, then waits for the go file and runs another.
python3 - "$PGU_PORT" "$PGU_TMP" >"$PGU_TMP/many.out" 2>&1 <<'PYEOF2' &
import os, socket, struct, sys, time
port, d = int(sys.argv[1]), sys.argv[2]
def recv_until_ready(s):
    buf = b""
    while True:
        while len(buf) >= 5:
            t, n = buf[:1], struct.unpack("!I", buf[1:5])[0]
            if len(buf) < n + 1:
                break
            body, buf = buf[5:n + 1], buf[n + 1:]
            if t == b"E":
                return "E"
            if t == b"Z":
                return "Z"
        c = s.recv(65536)
        if not c:
            return "EOF"
        buf += c
def query(s, q):
    body = q.encode() + b"\0"
    s.sendall(b"Q" + struct.pack("!I", len(body) + 4) + body)
    return recv_until_ready(s)
socks = []
for i in range(300):
    s = socket.create_connection(("127.0.0.1", port))
    p = b"user\0u_trust\0database\0tx\0\0"
    s.sendall(struct.pack("!II", len(p) + 8, 196608) + p)
    assert recv_until_ready(s) == "Z"
    assert query(s, "select 1") == "Z"
    socks.append(s)
open(d + "/many.ready", "w").close()
while not os.path.exists(d + "/many.go"):
    time.sleep(0.05)
print("OK", sum(query(s, "select 2") == "Z" for s in socks))
PYEOF2
many_pid=$!
PGU_BG_PIDS+=("$many_pid")
for ((i = 0; i < 300; i++)); do
	[[ -e $PGU_TMP/many.ready ]] && break
	sleep 0.1
done
[[ -e $PGU_TMP/many.ready ]] || fail "300 clients did not log in: $(cat "$PGU_TMP/many.out")"
pgu_reboot
touch "$PGU_TMP/many.go"
wait "$many_pid" || true
assert_eq "OK 300" "$(cat "$PGU_TMP/many.out")" "every client after the restart"
[[ $(basename "$PGUSHER_BIN") == pgbouncer ]] || assert_log_contains "takeover finished: 2 listening sockets, 300 clients"

check "SCRAM pass-through: the keys come over; a TLS client is dropped, the others go on"
pgu_stop
C=$PGU_TMP/certs
pgu_make_certs "$C"
pgu_user u_scram "$(pgu_pg_secret u_scram)"
pgu_user postgres pw
pgu_start <<EOF
[databases]
scr = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb pool_mode=transaction

[pgbouncer]
auth_type = scram-sha-256
client_tls_sslmode = allow
client_tls_key_file = $C/server.key
client_tls_cert_file = $C/server.crt
EOF
export PGPASSWORD=scrampass
pgu_sess_open plain "dbname=scr sslmode=disable" u_scram
pgu_sess_open tls "dbname=scr sslmode=require" u_scram
assert_eq "1" "$(pgu_sess_q plain "select 1;")" "plaintext SCRAM client"
assert_eq "on" "$(pgu_sess_q tls "select 'on';")" "TLS SCRAM client"
fds=$(PGPASSWORD=pw psql -X -A -t -h 127.0.0.1 -p "$PGU_PORT" -U postgres -d pgbouncer -c "SHOW FDS")
[[ $fds =~ \|client\|u_scram\|scr\|.*\|\\x[0-9a-f]{64}\|\\x[0-9a-f]{64}$ ]] ||
	fail "SHOW FDS: no client row with SCRAM keys: $fds"
pgu_reboot
out=$(pgu_sess_q tls "select 'still';")
[[ $out == *"closed the connection"* || $out == *"EOF detected"* ]] || fail "the TLS client was not dropped: $out"
# Its servers gone, the plaintext client's next transaction needs a new server login: with
# no client logging in since, only the keys that came over can make it.
pg_direct "$PGU_PRIMARY" postgres -c "select count(pg_terminate_backend(pid)) from pg_stat_activity where usename = 'u_scram'" >/dev/null
sleep 0.5
logins=$(grep -c "scr/u_scram@.*new connection to server" "$PGU_LOG")
assert_eq "2" "$(pgu_sess_q plain "select 2;")" "plaintext SCRAM client after the restart, on a new server"
(($(grep -c "scr/u_scram@.*new connection to server" "$PGU_LOG") > logins)) || fail "no new server login"
unset PGPASSWORD
pgu_sess_close plain
pgu_sess_close tls

check "-R with no pooler running boots normally"
pgu_stop
: >"$PGU_LOG"
PGU_START_ARGS=(-R)
pgu_start <<EOF
[databases]
tx = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb pool_mode=transaction
EOF
PGU_START_ARGS=()
pgu_try psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U u_trust -d tx -c "select 7"
assert_ok "boots normally"
assert_contains "$PGU_OUT" "7" "answer"
assert_log_contains "old process not found, try to continue normally" # PgBouncer's line

pass
