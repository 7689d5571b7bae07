#!/usr/bin/env bash
# Story: server connections that sat idle longer than server_check_delay are checked
# (server_check_query) before a client gets them, then used; the check must not repeat
# forever. (It once did: a checked server kept its old idle time, so every hand-out checked
# it again and the waiting client was never served while the pooler spun.)
. "$(dirname "$0")/lib.sh"

pgu_start <<EOF
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb
[pgbouncer]
pool_mode = transaction
default_pool_size = 2
server_check_delay = 1
server_check_query = select 1
EOF

check "idle servers older than server_check_delay are checked, then serve"
pgbench -n -S -t 50 -c 2 -h 127.0.0.1 -p "$PGU_PORT" -U u_trust testdb >/dev/null 2>&1 || fail "warm-up"
sleep 2.5
t0=$SECONDS
out=$(timeout 10 psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U u_trust testdb -c 'select 40+2') ||
	fail "query after the idle period did not complete"
assert_eq "42" "$out" "query after server_check_delay"
pgu_try timeout 20 pgbench -n -S -T 2 -c 4 -j 2 -h 127.0.0.1 -p "$PGU_PORT" -U u_trust testdb
assert_ok "pgbench after the checks"
assert_contains "$PGU_OUT" "number of failed transactions: 0 " "no failed transactions"
ticks=$(awk '{print $14+$15}' "/proc/$PGU_PID/stat")
sleep 2
ticks2=$(awk '{print $14+$15}' "/proc/$PGU_PID/stat")
hz=$(getconf CLK_TCK)
# An idle pooler uses next to no CPU; a check loop would use a whole core (2 s = 2*hz ticks).
((ticks2 - ticks < hz)) || fail "pooler busy while idle: $((ticks2 - ticks)) ticks in 2 s"
echo "   ok: idle pooler used $((ticks2 - ticks)) ticks in 2 s"
pass
