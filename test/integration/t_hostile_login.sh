#!/usr/bin/env bash
# User story: pgusher listens on a network where anybody can connect before logging in.
# Such a client gets one SSLRequest and one GSSENCRequest answered, as PostgreSQL; bytes
# pushed behind a request are refused (PgBouncer's message). A client that sends without
# reading, before login or on the admin console, is no longer read while its answers are
# queued, so it costs a bounded amount of memory. Logins with a wrong password to random
# database names create no auto-database ("*"): only an authenticated client does. Other
# clients are served all along.
#
# Against PgBouncer 1.25.2 (PGUSHER_BIN=.../pgbouncer) the pipelined-SSLRequest and
# SSLRequest-flood checks pass; by design it fails the others: PgBouncer answers a second
# SSLRequest 'N' (PostgreSQL refuses it, as here), makes the auto-database before
# authentication, words the auth_type=any error differently, and cuts the console flood
# off with 'incomplete pkt' (then dies on the next login: 'why waiting client in
# client_proto()').
source "$(dirname "$0")/lib.sh"

WIRE="python3 $(dirname "$0")/pgwire.py"
# Generous: both floods grow the release and ASan builds by < 1 MB; old main grew by
# 80 MB (SSLRequests) and 140 MB (console) here.
RSS_BOUND_KB=$((20 * 1024))

pgu_start <<EOF
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb
* = host=$PGU_PRIMARY port=$PGU_PGPORT

[pgbouncer]
pool_mode = transaction
auth_type = md5
admin_users = u_md5
; small socket buffers: what a client does not read piles up in the pooler, not the kernel
tcp_socket_buffer = 4096
EOF

admin() { PGPASSWORD=md5pass psql -X -A -t -F'|' -P footer=off -h 127.0.0.1 -p "$PGU_PORT" -U u_md5 -d pgbouncer -c "$1"; }
still_works() {
	assert_eq alive "$(PGPASSWORD=md5pass pgu_psql testdb u_md5 -c "select 'alive'")" "a legitimate client is served $1"
}
ssl_hex() { printf '0000000804d2162f'; } # SSLRequest
gss_hex() { printf '0000000804d21630'; } # GSSENCRequest

check "one SSLRequest is answered 'N' and the login goes on; a second one on the connection is refused"
pgu_try $WIRE startup --port "$PGU_PORT" --ssl-first --user u_md5 --password md5pass --query "select 'after ssl'"
assert_ok "login after one SSLRequest"
assert_contains "$PGU_OUT" "ROW after ssl" "served after one SSLRequest"
pgu_try python3 - "$PGU_PORT" <<'PY'
import socket, struct, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
for i in range(2):
    s.sendall(struct.pack("!II", 8, 80877103))
    time.sleep(0.3)
    data = b""
    try:
        while len(data) < 1 or (data[:1] == b"E" and b"\0\0" not in data[5:]):
            d = s.recv(4096)
            if not d:
                break
            data += d
    except socket.timeout:
        pass
    print("REPLY%d %r" % (i + 1, data[:1]))
    if data[:1] == b"E":
        print("ERROR", data[5:].split(b"\0M")[1].split(b"\0")[0].decode())
        break
PY
echo "$PGU_OUT" | sed 's/^/     /'
assert_contains "$PGU_OUT" "REPLY1 b'N'" "the first SSLRequest is answered 'N'"
assert_contains "$PGU_OUT" "REPLY2 b'E'" "the second one gets an ErrorResponse"

check "a GSSENCRequest and then an SSLRequest on one connection (libpq's order) are both answered"
pgu_try $WIRE raw --port "$PGU_PORT" --hex "$(gss_hex)" --wait 1
assert_contains "$PGU_OUT" "OPEN after" "still open after a GSSENCRequest"
pgu_try python3 - "$PGU_PORT" <<'PY'
import socket, struct, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
for code in (80877104, 80877103):
    s.sendall(struct.pack("!II", 8, code))
    print("REPLY %r" % s.recv(1))
PY
assert_contains "$PGU_OUT" "REPLY b'N'
REPLY b'N'" "GSSENCRequest then SSLRequest: 'N' twice"

check "bytes sent behind an SSLRequest before its answer are refused"
pgu_try $WIRE raw --port "$PGU_PORT" --hex "$(ssl_hex)$(ssl_hex)" --wait 3
echo "$PGU_OUT" | sed 's/^/     /'
assert_contains "$PGU_OUT" "ERROR S=FATAL C=08P01 M=received unencrypted data after SSL request" "PgBouncer's error"
assert_contains "$PGU_OUT" "CLOSED after" "and the connection is closed"

check "a client streaming SSLRequests without reading costs a bounded amount of memory"
pgu_try timeout 30 $WIRE flood --port "$PGU_PORT" --what ssl --max-mb 3 --seconds 8 --rss-pid "$PGU_PID"
echo "$PGU_OUT" | sed 's/^/     /'
grow=$(echo "$PGU_OUT" | awk '/^RSS-GROWTH-KB/ {print $2}')
[[ -n $grow ]] || fail "no RSS figure: $PGU_OUT"
((grow < RSS_BOUND_KB)) || fail "RSS grew by $grow kB (bound $RSS_BOUND_KB kB)"
echo "   ok: RSS grew by $grow kB"
still_works "after the SSLRequest flood"

check "a console client streaming SHOW VERSION without reading costs a bounded amount of memory"
timeout 30 $WIRE flood --port "$PGU_PORT" --what query --user u_md5 --password md5pass \
	--database pgbouncer --query "SHOW VERSION" --max-mb 8 --seconds 8 --rss-pid "$PGU_PID" \
	>"$PGU_TMP/flood.out" 2>&1 &
flood_pid=$!
sleep 1
still_works "during the console flood"
wait "$flood_pid" || fail "console flood: $(cat "$PGU_TMP/flood.out")"
PGU_OUT=$(cat "$PGU_TMP/flood.out")
echo "$PGU_OUT" | sed 's/^/     /'
assert_contains "$PGU_OUT" "end=blocked" "the pooler stops reading the console client"
grow=$(echo "$PGU_OUT" | awk '/^RSS-GROWTH-KB/ {print $2}')
[[ -n $grow ]] || fail "no RSS figure: $PGU_OUT"
((grow < RSS_BOUND_KB)) || fail "RSS grew by $grow kB (bound $RSS_BOUND_KB kB)"
echo "   ok: RSS grew by $grow kB"
still_works "after the console flood"

check "50 logins with a wrong password to random database names create no auto-database"
ndb_before=$(admin 'SHOW DATABASES' | wc -l)
pgu_try timeout 60 $WIRE badlogins --port "$PGU_PORT" --user u_md5 --password wrong --n 50
assert_contains "$PGU_OUT" "BADLOGINS refused=50 of 50" "all 50 refused"
pgu_try $WIRE startup --port "$PGU_PORT" --user u_md5 --password wrong --database rnd_one
assert_contains "$PGU_OUT" "C=08P01 M=password authentication failed" "the client sees the password error (PgBouncer 1.25's SQLSTATE)"
assert_not_contains "$(admin 'SHOW DATABASES')" "rnd_" "SHOW DATABASES lists none of the random names"
assert_eq "$ndb_before" "$(admin 'SHOW DATABASES' | wc -l)" "as many databases as before"
still_works "after the failed logins"

check "an authenticated client still gets its auto-database"
pgu_try $WIRE startup --port "$PGU_PORT" --user u_md5 --password md5pass --database rnd_authed
assert_contains "$(admin 'SHOW DATABASES')" "rnd_authed|" "SHOW DATABASES lists the authenticated client's name"

pgu_stop
check "auth_type = any takes the forced user from the \"*\" entry before the database exists"
pgu_start <<EOF
[databases]
* = host=$PGU_PRIMARY port=$PGU_PGPORT user=postgres
[pgbouncer]
pool_mode = transaction
auth_type = any
EOF
assert_eq postgres "$(pgu_psql testdb nobody_in_particular -c 'select current_user')" "served as the forced user"
pgu_stop
pgu_start <<EOF
[databases]
* = host=$PGU_PRIMARY port=$PGU_PGPORT
[pgbouncer]
auth_type = any
EOF
pgu_try pgu_psql testdb nobody_in_particular -c 'select 1'
assert_contains "$PGU_OUT" "bouncer config error" "refused without a forced user (PgBouncer 1.25's words)"
assert_log_contains "auth_type=any requires forced user"

pass
