#!/usr/bin/env bash
# User story: a user presses Ctrl-C on a long query running through pgusher: psql sends a
# CancelRequest to the pooler, which forwards it to the right server; the query stops at
# once with "canceling statement due to user request" and the pooler (and, in transaction
# mode, the server connection) is usable afterwards. Also: a CancelRequest with a bogus key
# must not cancel anybody else's query.
#
# Validated against PgBouncer 1.18 (PGUSHER_BIN=/usr/sbin/pgbouncer): PASS.
source "$(dirname "$0")/lib.sh"

APP=pgu-cancel-$$

wait_running() { # wait (<= 10 s) until our pg_sleep shows up on the primary
	local i n
	for ((i = 0; i < 100; i++)); do
		n=$(pg_direct "$PGU_PRIMARY" postgres -c \
			"select count(*) from pg_stat_activity where query like 'select pg_sleep(30)%' and state = 'active' and application_name = '$APP'")
		[[ $n == 1 ]] && return 0
		sleep 0.1
	done
	fail "the pg_sleep query never showed up as active on the primary"
}

for MODE in session transaction; do
	pgu_start <<EOF
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb

[pgbouncer]
pool_mode = $MODE
default_pool_size = 2
EOF
	check "$MODE mode: Ctrl-C (SIGINT to psql) cancels SELECT pg_sleep(30) within 10 s"
	PGAPPNAME=$APP psql -X -A -t -h 127.0.0.1 -p "$PGU_PORT" -U u_trust -d testdb \
		-c "select pg_sleep(30)" >"$PGU_TMP/cancel.out" 2>&1 &
	psql_pid=$!
	PGU_BG_PIDS+=("$psql_pid")
	wait_running
	t0=$SECONDS
	kill -INT "$psql_pid"
	for ((i = 0; i < 100; i++)); do
		kill -0 "$psql_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$psql_pid" 2>/dev/null && fail "psql still running 10 s after the cancel"
	rc=0
	wait "$psql_pid" || rc=$?
	elapsed=$((SECONDS - t0))
	out=$(cat "$PGU_TMP/cancel.out")
	((rc != 0)) || fail "cancelled psql exited 0; output: $out"
	assert_contains "$out" "canceling statement due to user request" "psql output"
	((elapsed < 10)) || fail "cancel took $elapsed s"
	echo "   ok: query ended $elapsed s after the cancel"
	n=$(pg_direct "$PGU_PRIMARY" postgres -c "select count(*) from pg_stat_activity where query like 'select pg_sleep(30)%' and state = 'active' and application_name = '$APP'")
	assert_eq 0 "$n" "no pg_sleep left running on the primary"

	check "$MODE mode: the pooler and its servers are usable after the cancel"
	for i in 1 2 3; do
		out=$(pgu_psql testdb u_trust -c "select 'alive'")
		assert_eq alive "$out" "query after cancel (#$i)"
	done

	check "$MODE mode: a CancelRequest with a wrong key cancels nothing"
	PGAPPNAME=$APP psql -X -A -t -h 127.0.0.1 -p "$PGU_PORT" -U u_trust -d testdb \
		-c "select pg_sleep(30)" >"$PGU_TMP/cancel2.out" 2>&1 &
	psql_pid=$!
	PGU_BG_PIDS+=("$psql_pid")
	wait_running
	# CancelRequest: length 16, code 80877102, pid 0x7fff0001, key 0x12345678
	python3 "$(dirname "$0")/pgwire.py" raw --port "$PGU_PORT" --hex 0000001004d2162e7fff000112345678 --wait 3 >/dev/null || true
	sleep 1
	kill -0 "$psql_pid" 2>/dev/null || fail "bogus CancelRequest cancelled the query: $(cat "$PGU_TMP/cancel2.out")"
	echo "   ok: query still running after a bogus CancelRequest"
	kill -INT "$psql_pid"
	for ((i = 0; i < 100; i++)); do
		kill -0 "$psql_pid" 2>/dev/null || break
		sleep 0.1
	done
	wait "$psql_pid" || true
	assert_contains "$(cat "$PGU_TMP/cancel2.out")" "canceling statement due to user request" "real cancel still works"
	pgu_stop
done

pass
