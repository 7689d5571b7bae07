#!/usr/bin/env bash
# User story: an operator bounds whole transactions with transaction_timeout and gives one
# application user (a [users] line) or one database (a [databases] line) its own
# timeouts, as PgBouncer 1.24+ allows: a user's value overrides the database's, which
# overrides the global one; other users keep the global values. A client queued for a
# server longer than query_wait_notify is told so once (PgBouncer 1.25's NOTICE).
#
# PgBouncer 1.18 (Debian 12) has none of these, so this story runs against pgusher only.
source "$(dirname "$0")/lib.sh"

elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
in_range() { # value lo hi msg
	awk -v v="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(v >= lo && v <= hi) }' ||
		fail "$4: $1 s is outside [$2, $3] s"
	echo "   ok: $4 ($1 s, want $2..$3 s)"
}

# ------------------------------------------------------------------ transaction_timeout
pgu_start <<EOF
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb
[pgbouncer]
pool_mode = transaction
transaction_timeout = 2
EOF

check "transaction_timeout=2: a transaction kept busy for over 2 s is ended with 'transaction timeout'"
t0=$(date +%s.%N)
pgu_try pgu_psql testdb u_trust <<'SQL'
begin;
select 'in tx';
select pg_sleep(1.5);
select pg_sleep(1.5);
select pg_sleep(1.5);
select pg_sleep(1.5);
select 'end of tx';
SQL
assert_fails "the long transaction fails"
assert_contains "$PGU_OUT" "in tx" "the transaction started"
assert_not_contains "$PGU_OUT" "end of tx" "its last statement did not run"
assert_contains "$PGU_OUT" "transaction timeout" "error text"
in_range "$(elapsed "$t0")" 1.5 6.5 "time to the error"
assert_log_contains "transaction timeout"

check "transaction_timeout=2: separate short transactions over 4 s in one session are not ended"
pgu_try pgu_psql testdb u_trust -c "select pg_sleep(1)" -c "select pg_sleep(1)" -c "select pg_sleep(1)" \
	-c "select pg_sleep(1)" -c "select 'all done'"
assert_ok "four 1 s transactions and one more"
assert_contains "$PGU_OUT" "all done" "the last transaction ran"

# ------------------------------------------------------------------ [users] overrides
pgu_start <<EOF
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb
[users]
u_trust = query_timeout=1 idle_transaction_timeout=1
[pgbouncer]
pool_mode = transaction
query_timeout = 0
idle_transaction_timeout = 0
EOF

check "[users] u_trust query_timeout=1: u_trust's 4 s query is cancelled; u_md5 keeps the global 0"
t0=$(date +%s.%N)
pgu_try pgu_psql testdb u_trust -c "select pg_sleep(4)"
assert_fails "u_trust's long query"
assert_contains "$PGU_OUT" "query timeout" "error text"
in_range "$(elapsed "$t0")" 0.8 3.5 "time to the error"
pgu_try pgu_psql testdb u_md5 -c "select pg_sleep(2.5)" -c "select 'md5 done'"
assert_ok "u_md5's 2.5 s query"
assert_contains "$PGU_OUT" "md5 done" "u_md5's query completed"

check "[users] u_trust idle_transaction_timeout=1: u_trust idle in a transaction is ended; u_md5 is not"
pgu_try pgu_psql testdb u_trust <<'SQL'
begin;
select 'in tx';
\! sleep 3
select 'after sleep';
SQL
assert_fails "u_trust's statement after 3 s idle in a transaction"
assert_contains "$PGU_OUT" "idle transaction timeout" "error text"
pgu_try pgu_psql testdb u_md5 <<'SQL'
begin;
select 'in tx';
\! sleep 3
select 'after sleep';
commit;
SQL
assert_ok "u_md5 idle in a transaction for 3 s"
assert_contains "$PGU_OUT" "after sleep" "u_md5's statement after the idle period ran"

check "RELOAD drops the [users] override: u_trust's 2.5 s query then completes"
sed -i '/^u_trust = /d' "$PGU_INI"
psql -X -q -h 127.0.0.1 -p "$PGU_PORT" -U postgres pgbouncer -c "RELOAD" >/dev/null
pgu_try pgu_psql testdb u_trust -c "select pg_sleep(2.5)" -c "select 'trust done'"
assert_ok "u_trust's 2.5 s query after the reload"
assert_contains "$PGU_OUT" "trust done" "u_trust's query completed"

# ------------------------------------------------------------------ [databases] override
pgu_start <<EOF
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb pool_size=1 query_wait_timeout=1
[pgbouncer]
pool_mode = session
reserve_pool_size = 0
query_wait_timeout = 120
EOF

check "[databases] testdb query_wait_timeout=1 (global 120): a client waiting for the only server gives up after ~1 s"
pgu_bg pgu_psql testdb u_trust -c "select 1" -c "select pg_sleep(8)" >"$PGU_TMP/holder.out" 2>&1
holder=$PGU_BG_PID
pgu_wait_active_query "select pg_sleep(8)"
t0=$(date +%s.%N)
pgu_try pgu_psql testdb u_trust -c "select 'second'"
assert_fails "the second client"
assert_contains "$PGU_OUT" "query_wait_timeout" "error text"
in_range "$(elapsed "$t0")" 0.8 4.5 "time to the error"
kill -0 "$holder" 2>/dev/null || fail "the session holding the server died"
echo "   ok: the holding session is unaffected"

# ------------------------------------------------------------------ query_wait_notify
pgu_start <<EOF
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb pool_size=1
[pgbouncer]
pool_mode = session
reserve_pool_size = 0
query_wait_notify = 1
EOF

check "query_wait_notify=1: a client queued for over 1 s gets one NOTICE, then its answer"
pgu_bg pgu_psql testdb u_trust -c "select 1" -c "select pg_sleep(3)" >"$PGU_TMP/holder2.out" 2>&1
pgu_wait_active_query "select pg_sleep(3)"
pgu_try pgu_psql testdb u_trust -c "select 'served after the wait'"
assert_ok "the queued client"
assert_contains "$PGU_OUT" "served after the wait" "its query ran once the server was free"
assert_contains "$PGU_OUT" "NOTICE:  No server connection available in postgres backend, client being queued" "the notice"
[[ $(grep -c "client being queued" <<<"$PGU_OUT") == 1 ]] || fail "expected exactly one notice: $PGU_OUT"
echo "   ok: exactly one notice"
pgu_try pgu_psql testdb u_trust -c "select 'no wait'"
assert_not_contains "$PGU_OUT" "client being queued" "no notice without a wait"

pass
