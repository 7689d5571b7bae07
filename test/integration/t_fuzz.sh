#!/usr/bin/env bash
# Story: a client library gone mad sends random bytes, random message types and absurd
# lengths (0, 3, 2^31-1, 2^32-1) to the data path and to the admin console. Every such
# connection gets an error or is closed; the pooler never hangs or crashes, and real
# clients keep working throughout. (A length of 2^32-1 once sent the console into an
# endless loop: this test would hang on the final queries and fail.)
. "$(dirname "$0")/lib.sh"

pgu_start <<EOF2
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb
[pgbouncer]
pool_mode = transaction
default_pool_size = 4
admin_users = u_trust
auth_type = trust
EOF2

check "600 connections of random protocol input (two seeds), bounded to 2 x 60 s"
for seed in 11 12; do
	pgu_try timeout 90 python3 "$PGU_LIBDIR/fuzz_wire.py" "$PGU_PORT" "$seed" 300 60
	assert_ok "fuzzer run with seed $seed"
done

check "the pooler still serves real clients and the console"
out=$(timeout 10 psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U u_trust testdb -c 'select 6*7') ||
	fail "query after fuzzing did not complete"
assert_eq "42" "$out" "query after fuzzing"
out=$(timeout 10 psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U u_trust pgbouncer -c 'show version') ||
	fail "console after fuzzing did not answer"
assert_contains "$out" "pgusher" "console after fuzzing"
pgu_try timeout 30 pgbench -n -S -T 3 -c 4 -j 2 -h 127.0.0.1 -p "$PGU_PORT" -U u_trust testdb
assert_ok "pgbench after fuzzing"
assert_contains "$PGU_OUT" "number of failed transactions: 0" "no failed transactions"
pgu_stop
pass
