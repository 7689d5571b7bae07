#!/usr/bin/env bash
# Story: the service starts with a low descriptor limit (soft 100, hard 300, as a unit's
# LimitNOFILE might give it) and max_client_conn = 1000. pgusher raises the soft limit to the
# hard one, logs what it got (PgBouncer's "kernel file descriptor limit" line) and warns
# that it is still too low. A storm of 400 connections then exhausts the descriptors: every
# connection beyond them is refused at once with a FATAL error (none hangs until its
# timeout), the clients already in keep being served, and once they leave new clients get
# in again.
PGU_WRAP=(prlimit --nofile=100:300 --)
. "$(dirname "$0")/lib.sh"

pgu_start <<EOF
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb
[pgbouncer]
pool_mode = transaction
default_pool_size = 2
max_client_conn = 1000
EOF

check "the soft limit is raised to the hard one, logged, and a warning says it is too low"
assert_log_contains "raised the file descriptor limit from 100 to 300"
assert_log_contains "kernel file descriptor limit: 300 (hard: 300); max_client_conn: 1000"
assert_log_contains "is below the"
[[ $(awk '/^Max open files/ {print $4}' "/proc/$PGU_PID/limits") == 300 ]] ||
	fail "the process's soft limit is $(awk '/^Max open files/ {print $4}' "/proc/$PGU_PID/limits"), not 300"

check "400 connections at once: the excess is refused at once, nobody hangs, the others are served"
cat >"$PGU_TMP/storm.py" <<'EOF'
import socket, struct, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
def startup(s):
    p = b"user\0u_trust\0database\0testdb\0\0"
    s.sendall(struct.pack("!II", 8 + len(p), 196608) + p)
def wait_for(s, deadline):
    buf = b""
    while time.monotonic() < deadline:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            d = s.recv(65536)
        except socket.timeout:
            break
        except OSError:
            return "refused", buf
        if not d:
            return "refused", buf
        buf += d
        if b"Z\0\0\0\x05" in buf:
            return "served", buf
        if buf[:1] == b"E":
            return "refused", buf
    return "hung", buf
held, counts, msgs = [], {"served": 0, "refused": 0, "hung": 0}, set()
t0 = time.monotonic()
for i in range(n):
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect(("127.0.0.1", port))
        startup(s)
        what, buf = wait_for(s, time.monotonic() + 3)
    except OSError:
        what, buf = "refused", b""
    counts[what] += 1
    if what == "refused" and buf[:1] == b"E":
        msgs.add(buf[5:].split(b"\0M")[1].split(b"\0")[0].decode() if b"\0M" in buf else "?")
    if what == "served":
        held.append(s)
    else:
        s.close()
took = time.monotonic() - t0
ok = 0
for s in held:  # everyone in is still served
    s.sendall(b"Q" + struct.pack("!I", 4 + 9) + b"select 1\0")
    what, buf = wait_for(s, time.monotonic() + 10)
    ok += what == "served" and b"D" in buf
print("served=%d refused=%d hung=%d queries_ok=%d took=%.1f" % (counts["served"], counts["refused"], counts["hung"], ok, took))
for m in sorted(msgs):
    print("MESSAGE " + m)
for s in held:
    s.close()
EOF
pgu_try timeout 300 python3 "$PGU_TMP/storm.py" "$PGU_PORT" 400
echo "$PGU_OUT" | sed 's/^/   /'
assert_ok "the storm ran"
served=$(sed -n 's/.*served=\([0-9]*\).*/\1/p' <<<"$PGU_OUT")
refused=$(sed -n 's/.*refused=\([0-9]*\).*/\1/p' <<<"$PGU_OUT")
hung=$(sed -n 's/.*hung=\([0-9]*\).*/\1/p' <<<"$PGU_OUT")
qok=$(sed -n 's/.*queries_ok=\([0-9]*\).*/\1/p' <<<"$PGU_OUT")
((hung == 0)) || fail "$hung connections hung instead of being refused"
((refused > 0)) || fail "no connection was refused: the limit was not reached"
((served > 200)) || fail "only $served connections were served under a limit of 300"
assert_eq "$served" "$qok" "every client that got in runs a query"
assert_contains "$PGU_OUT" "MESSAGE no more connections allowed: pgusher is out of file descriptors" "the refusal says why"
assert_log_contains "out of file descriptors"

check "once they leave, new clients are served again"
assert_eq "1" "$(pgu_psql testdb u_trust -c 'select 1')" "a new client after the storm"

pass
