#!/usr/bin/env bash
# User story: an operator relies on PgBouncer's timeouts to protect the database from
# misbehaving clients and to recycle server connections; pgusher enforces each of them:
# client_login_timeout, query_timeout, query_wait_timeout, client_idle_timeout,
# idle_transaction_timeout, server_idle_timeout, server_lifetime, server_connect_timeout
# (against a loopback "server" that accepts TCP but never answers).
#
# Validated against PgBouncer 1.18 (PGUSHER_BIN=/usr/sbin/pgbouncer): PASS.
source "$(dirname "$0")/lib.sh"

WIRE="python3 $(dirname "$0")/pgwire.py"

closed_after() { # output -> seconds of the "CLOSED after" line (fails if none)
	local s
	s=$(sed -n 's/^CLOSED after \([0-9.]*\)$/\1/p' <<<"$1" | head -n 1)
	[[ -n $s ]] || fail "connection was not closed by the pooler; output:
$1"
	echo "$s"
}

in_range() { # value lo hi msg
	awk -v v="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(v >= lo && v <= hi) }' ||
		fail "$4: $1 s is outside [$2, $3] s"
	echo "   ok: $4 ($1 s, want $2..$3 s)"
}

conf() { # extra [pgbouncer] lines...
	local extra
	extra=$(printf '%s\n' "$@")
	pgu_start <<EOF
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb

[pgbouncer]
$extra
EOF
}

# ------------------------------------------------------------------ client_login_timeout
conf "client_login_timeout = 2" "pool_mode = transaction"
check "client_login_timeout=2: a TCP connection that sends nothing is closed within 2-6 s"
pgu_try $WIRE idle --port "$PGU_PORT" --wait 10
in_range "$(closed_after "$PGU_OUT")" 1.5 6 "silent connection closed"

check "client_login_timeout=2: a client stuck in authentication is closed within 2-6 s"
pgu_stop
conf "client_login_timeout = 2" "auth_type = md5"
pgu_try $WIRE stall --port "$PGU_PORT" --user u_md5 --wait 10
assert_contains "$PGU_OUT" "AUTH request 5" "pooler asked for an md5 password"
in_range "$(closed_after "$PGU_OUT")" 1.5 6 "stalled login closed"
echo "     client saw: $(grep ERROR <<<"$PGU_OUT" || echo '(no ErrorResponse)')"
if grep -q '^ERROR' <<<"$PGU_OUT"; then
	assert_contains "$PGU_OUT" "client_login_timeout" "error text"
fi
assert_log_contains "client_login_timeout"
out=$(PGPASSWORD=md5pass pgu_psql testdb u_md5 -c "select 'still serving'")
assert_eq "still serving" "$out" "pooler serves after login timeouts"
pgu_stop

# ------------------------------------------------------------------ query_timeout
conf "query_timeout = 2" "pool_mode = session"
check "query_timeout=2: SELECT pg_sleep(10) is stopped with 'query timeout' within 2-6 s"
t0=$(date +%s.%N)
pgu_try pgu_psql testdb u_trust -c "select pg_sleep(10)"
t1=$(date +%s.%N)
assert_fails "long query fails"
assert_contains "$PGU_OUT" "query timeout" "error text"
in_range "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')" 1.5 6 "time to the error"
out=$(pgu_psql testdb u_trust -c "select pg_sleep(0.5), 'short ok'")
assert_eq "|short ok" "$out" "short query still works"
pgu_stop

# ------------------------------------------------------------------ query_wait_timeout
conf "query_wait_timeout = 2" "pool_mode = session" "default_pool_size = 1" "reserve_pool_size = 0"
check "query_wait_timeout=2: with the only server held by a session, a second client gets 'query_wait_timeout'"
pgu_bg pgu_psql testdb u_trust -c "select 1" -c "select pg_sleep(12)" >"$PGU_TMP/holder.out" 2>&1
holder=$PGU_BG_PID
pgu_wait_active_query "select pg_sleep(12)"
t0=$(date +%s.%N)
pgu_try pgu_psql testdb u_trust -c "select 'second'"
t1=$(date +%s.%N)
assert_fails "second client times out waiting"
assert_contains "$PGU_OUT" "query_wait_timeout" "error text"
in_range "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')" 1.5 8 "time to the error"
kill -0 "$holder" 2>/dev/null || fail "the session holding the server died"
echo "   ok: the holding session is unaffected"
pgu_stop

# ------------------------------------------------------------------ client_idle_timeout
conf "client_idle_timeout = 2" "pool_mode = transaction"
check "client_idle_timeout=2: a logged-in client that stays idle is disconnected within 2-6 s"
pgu_try $WIRE startup --port "$PGU_PORT" --user u_trust --query "select 1" --hold 10
assert_contains "$PGU_OUT" "ROW 1" "client worked before going idle"
in_range "$(closed_after "$PGU_OUT")" 1.5 6 "idle client disconnected"
echo "     client saw: $(grep ERROR <<<"$PGU_OUT" || echo '(no ErrorResponse)')"
if grep -q '^ERROR' <<<"$PGU_OUT"; then
	assert_contains "$PGU_OUT" "client_idle_timeout" "error text"
fi
assert_log_contains "client_idle_timeout"
pgu_stop

# ------------------------------------------------------------------ idle_transaction_timeout
conf "idle_transaction_timeout = 2" "pool_mode = transaction"
check "idle_transaction_timeout=2: BEGIN, 4 s idle, then SELECT fails with 'idle transaction timeout'"
pgu_try pgu_psql testdb u_trust <<'SQL'
begin;
select 'in tx';
\! sleep 4
select 'after sleep';
SQL
assert_fails "statement after the idle period fails"
assert_contains "$PGU_OUT" "in tx" "transaction started"
assert_not_contains "$PGU_OUT" "after sleep" "statement after the timeout did not run"
assert_contains "$PGU_OUT" "idle transaction timeout" "error text"
out=$(pgu_psql testdb u_trust -c "select 'fresh'")
assert_eq fresh "$out" "new client works"
pgu_stop

# ------------------------------------------------------------------ server_idle_timeout
backend_pid() { pgu_psql testdb u_trust -c "select pg_backend_pid()"; }
pid_alive() { pg_direct "$PGU_PRIMARY" postgres -c "select count(*) from pg_stat_activity where pid = $1"; }

conf "server_idle_timeout = 2" "server_lifetime = 3600" "pool_mode = transaction" "default_pool_size = 1"
check "server_idle_timeout=2: an idle server connection is closed and replaced"
p1=$(backend_pid)
p1b=$(backend_pid)
assert_eq "$p1" "$p1b" "server connection is reused while busy"
sleep 4.5
assert_eq 0 "$(pid_alive "$p1")" "idle server connection $p1 was closed"
p2=$(backend_pid)
[[ $p2 =~ ^[0-9]+$ && $p2 != "$p1" ]] || fail "expected a new backend pid, got '$p2' (old $p1)"
echo "   ok: new backend pid $p2 (was $p1)"
pgu_stop

# ------------------------------------------------------------------ server_lifetime
conf "server_lifetime = 2" "server_idle_timeout = 0" "pool_mode = transaction" "default_pool_size = 1"
check "server_lifetime=2: a server connection in constant use is still replaced after its lifetime"
p1=$(backend_pid)
changed=0
for ((i = 0; i < 20; i++)); do # ~6 s of one query every 0.3 s: never idle for long
	sleep 0.3
	p=$(backend_pid)
	if [[ $p != "$p1" ]]; then
		changed=1
		break
	fi
done
((changed)) || fail "backend pid stayed $p1 for 6 s with server_lifetime=2"
echo "   ok: backend pid changed from $p1 to $p"
pgu_stop

# ------------------------------------------------------------------ server_connect_timeout
BH_PORT=$(pgu_free_port)
pgu_bg $WIRE blackhole --host 127.0.0.1 --listen-port "$BH_PORT" --wait 20 >"$PGU_TMP/blackhole.out"
for ((i = 0; i < 50; i++)); do
	grep -q LISTENING "$PGU_TMP/blackhole.out" 2>/dev/null && break
	sleep 0.1
done
# pgusher's health checks would connect to the black hole too; this story is about
# server_connect_timeout alone, so they are off (PgBouncer has none).
hc_off=""
[[ $(basename "$PGUSHER_BIN") == pgbouncer* ]] || hc_off="health_check_period = 0"
pgu_start <<EOF
[databases]
blackhole = host=127.0.0.1 port=$BH_PORT dbname=testdb

[pgbouncer]
$hc_off
server_connect_timeout = 2
query_wait_timeout = 6
pool_mode = session
EOF
check "server_connect_timeout=2: a server that accepts TCP but never answers is dropped within 2-6 s; the client gets an error"
t0=$SECONDS
pgu_try pgu_psql blackhole u_trust -c "select 1"
assert_fails "client of an unresponsive server fails"
((SECONDS - t0 <= 15)) || fail "client waited $((SECONDS - t0)) s"
echo "     client saw: $(tail -n 1 <<<"$PGU_OUT")"
sleep 0.5
bh=$(cat "$PGU_TMP/blackhole.out")
assert_contains "$bh" "ACCEPTED" "pooler connected to the black hole"
s=$(sed -n 's/^PEER-CLOSED after \([0-9.]*\)$/\1/p' <<<"$bh" | head -n 1)
[[ -n $s ]] || fail "pooler never gave up on the unresponsive server; blackhole saw: $bh"
in_range "$s" 1.5 6 "pooler closed the unresponsive server connection"
pgu_stop

pass
