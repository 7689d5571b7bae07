#!/usr/bin/env bash
# User story: in session pooling, long-lived application sessions keep their server
# connection after a failover hook runs RECONNECT, until each session ends. With
# server_fast_close = 1 the operator gets the new servers at once: every session that is
# between transactions is ended (its client gets an error and reconnects), while a session
# inside a transaction keeps running, as PgBouncer documents.
source "$(dirname "$0")/lib.sh"

admin() { psql -X -A -t -F'|' -P footer=off -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGU_PORT" -U postgres -d pgbouncer "$@"; }
hold_session() { # name queries...: a pgwire session that runs the queries, then stays idle
	local name=$1 q args=()
	shift
	for q in "$@"; do args+=(--query "$q"); done
	pgu_bg timeout 60 python3 "$PGU_LIBDIR"/pgwire.py startup --port "$PGU_PORT" --user u_trust \
		--database testdb "${args[@]}" --hold 40 >"$PGU_TMP/$name.out" 2>&1
	local i
	for ((i = 0; i < 50; i++)); do
		grep -q '^ROW' "$PGU_TMP/$name.out" 2>/dev/null && return 0
		sleep 0.1
	done
	fail "session $name did not start: $(cat "$PGU_TMP/$name.out")"
}
closed() { grep -q '^CLOSED after' "$PGU_TMP/$1.out"; }
wait_closed() { # name seconds
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		closed "$1" && return 0
		sleep 0.1
	done
	return 1
}

pgu_start <<EOF
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb
[pgbouncer]
pool_mode = session
server_fast_close = 0
EOF

check "server_fast_close=0: RECONNECT leaves an idle session and its server alone"
hold_session s0 "select 1"
pgu_try admin -c 'RECONNECT testdb'
assert_ok "RECONNECT testdb"
sleep 2
closed s0 && fail "the session was ended without server_fast_close: $(cat "$PGU_TMP/s0.out")"
echo "   ok: the session is still open"
assert_eq "1" "$(admin -c 'SHOW SERVERS' | awk -F'|' '$3 == "testdb" && $14 == 1' | wc -l)" "its server is marked close_needed"

check "server_fast_close=1: the idle session is ended with an error; one inside a transaction is not"
pgu_try admin -c 'SET server_fast_close = 1'
assert_ok "SET server_fast_close = 1"
hold_session s1 "begin" "select 1"
pgu_try admin -c 'RECONNECT testdb'
wait_closed s0 5 || fail "the idle session was not ended within 5 s"
assert_contains "$(cat "$PGU_TMP/s0.out")" "database configuration changed" "the ended session's error is PgBouncer's"
sleep 1
closed s1 && fail "the session inside a transaction was ended: $(cat "$PGU_TMP/s1.out")"
echo "   ok: the session inside a transaction keeps its server"
assert_log_contains "closing because: database configuration changed"
assert_eq "fresh" "$(pgu_psql testdb u_trust -c "select 'fresh'")" "a new session is served"

pass
