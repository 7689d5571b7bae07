#!/usr/bin/env bash
# User story: a security-minded operator sets disable_pqexec = 1 so that no client can send
# several statements in one simple-protocol Query (a class of SQL injection). Clients that
# use only the extended protocol keep working; a simple Query, first or after extended
# work in the same session, ends that client's connection with "PQexec disallowed"; the
# admin console (simple protocol only) still works.
source "$(dirname "$0")/lib.sh"

pgu_start <<CONF
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb
sessdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb pool_mode=session
[pgbouncer]
pool_mode = transaction
disable_pqexec = 1
CONF

check "disable_pqexec=1: a simple Query is refused with 'PQexec disallowed'"
pgu_try pgu_psql testdb u_trust -c "select 1; select 2"
assert_fails "psql -c (simple protocol)"
assert_contains "$PGU_OUT" "PQexec disallowed" "error text"
assert_log_contains "PQexec disallowed"

check "disable_pqexec=1: extended-protocol clients work (pgbench -M extended, 50 transactions)"
printf 'select 1;\n\\set id random(1, 100000)\nselect abalance from pgbench_accounts where aid = :id;\n' >"$PGU_TMP/ext.sql"
pgu_try timeout 60 pgbench -n -M extended -f "$PGU_TMP/ext.sql" -t 25 -c 2 -h 127.0.0.1 -p "$PGU_PORT" -U u_trust testdb
assert_ok "pgbench -M extended"
assert_contains "$PGU_OUT" "number of transactions actually processed: 50/50" "all 50 transactions"

check "disable_pqexec=1 (session mode): a simple Query after extended work in the same session is refused too"
pgu_try timeout 30 python3 - "$PGU_PORT" <<'PY'
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
def msg(t, body): return t + struct.pack("!I", len(body) + 4) + body
def read_until_z():
    types = []
    while True:
        hdr = b""
        while len(hdr) < 5:
            chunk = s.recv(5 - len(hdr))
            if not chunk: return types + ["EOF"]
            hdr += chunk
        n = struct.unpack("!I", hdr[1:5])[0] - 4
        body = b""
        while len(body) < n: body += s.recv(n - len(body))
        t = hdr[:1].decode()
        types.append(t if t != "E" else "E:" + body.replace(b"\0", b" ").decode(errors="replace"))
        if t == "Z": return types
params = b"user\0u_trust\0database\0sessdb\0\0"
s.sendall(struct.pack("!II", len(params) + 8, 196608) + params)
print("LOGIN", read_until_z()[-1])
s.sendall(msg(b"P", b"\0select 41 + 1\0\0\0") + msg(b"B", b"\0\0\0\0\0\0\0\0") +
          msg(b"E", b"\0\0\0\0\0") + msg(b"S", b""))
print("EXTENDED", " ".join(read_until_z()))
s.sendall(msg(b"Q", b"select 1\0"))
print("SIMPLE", " ".join(read_until_z()))
PY
assert_contains "$PGU_OUT" "LOGIN Z" "logged in"
assert_contains "$PGU_OUT" "EXTENDED 1 2 D C Z" "the extended query was answered"
assert_contains "$PGU_OUT" "PQexec disallowed" "the simple Query that followed was refused"
assert_contains "$PGU_OUT" "EOF" "and the connection closed"

check "the admin console still answers"
assert_contains "$(psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U postgres pgbouncer -c 'SHOW VERSION')" "pgusher" "SHOW VERSION"

pass
