#!/usr/bin/env bash
# User story: an application hammers pgusher with many short transactions (pgbench) in every
# pool mode: no transaction may fail, and the pool never opens more than default_pool_size
# server connections. In statement mode multi-statement transactions are refused (as in
# PgBouncer), so pgbench -N is not run there; instead we check the refusal.
#
# Validated against PgBouncer 1.18 (PGUSHER_BIN=/usr/sbin/pgbouncer): PASS.
source "$(dirname "$0")/lib.sh"

DUR=${PGU_PGBENCH_SECONDS:-5}
POOL=4

# Largest number of server connections made for our pgbench (recognised by its
# application_name, which the pooler passes on) seen on the primary while it runs
# (sampled every 0.2 s), written to $1.
APPNAME=pgu-pgbench-$$
sample_backends() {
	local outf=$1 max=0 n i
	for ((i = 0; i < 600; i++)); do
		n=$(pg_direct "$PGU_PRIMARY" postgres -c \
			"select count(*) from pg_stat_activity where application_name='$APPNAME' and backend_type='client backend'" 2>/dev/null || echo 0)
		((n > max)) && max=$n
		echo "$max" >"$outf.tmp" && mv "$outf.tmp" "$outf" # never empty when killed
		sleep 0.2
	done
}

run_pgbench() { # label pgbench-args...
	local label=$1
	shift
	check "$MODE mode: pgbench $* -T $DUR -c 8 -j 2 ($label): no failed transactions, <= $POOL server connections"
	local maxf=$PGU_TMP/max.$MODE.$label
	echo 0 >"$maxf"
	pgu_bg sample_backends "$maxf"
	local sampler=$PGU_BG_PID
	PGAPPNAME=$APPNAME pgu_try timeout 60 pgbench -n -T "$DUR" -c 8 -j 2 -h 127.0.0.1 -p "$PGU_PORT" -U u_trust "$@" testdb
	kill "$sampler" 2>/dev/null || true
	wait "$sampler" 2>/dev/null || true
	echo "$PGU_OUT" | grep -E 'processed|failed|tps' | sed 's/^/     /'
	assert_ok "pgbench exits 0"
	assert_not_contains "$PGU_OUT" "error" "pgbench reports no errors"
	[[ $PGU_OUT =~ number\ of\ transactions\ actually\ processed:\ ([0-9]+) ]] ||
		fail "pgbench printed no transaction count"
	((BASH_REMATCH[1] > 0)) || fail "pgbench processed no transactions"
	if [[ $PGU_OUT == *"number of failed transactions"* ]]; then
		assert_contains "$PGU_OUT" "number of failed transactions: 0 (" "zero failed transactions"
	fi
	local max
	max=$(cat "$maxf")
	((max >= 1 && max <= POOL)) || fail "saw $max server connections on the primary; want 1..$POOL"
	echo "   ok: at most $max server connections (default_pool_size=$POOL)"
}

for MODE in session transaction statement; do
	pgu_start <<EOF
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb

[pgbouncer]
pool_mode = $MODE
default_pool_size = $POOL
max_client_conn = 100
EOF
	run_pgbench select -S
	if [[ $MODE != statement ]]; then
		run_pgbench simple-update -N
	else
		check "statement mode refuses a multi-statement transaction"
		pgu_try pgu_psql testdb u_trust -c "begin" -c "select 1" -c "commit"
		assert_fails "BEGIN ... COMMIT in statement mode"
		assert_contains "$PGU_OUT" "transaction blocks not allowed in statement pooling mode" "error text"
		# PgBouncer refuses at the ReadyForQuery that reports an open transaction: the
		# client never sees ReadyForQuery 'T'.
		pgu_try python3 "$(dirname "$0")/pgwire.py" startup --port "$PGU_PORT" --user u_trust --query "begin"
		assert_contains "$PGU_OUT" "ERROR S=FATAL C=08P01 M=transaction blocks not allowed in statement pooling mode" "a lone BEGIN is refused at once"
		assert_not_contains "$PGU_OUT" "READY T" "client never sees ReadyForQuery 'T'"
		out=$(pgu_psql testdb u_trust -c "select 7")
		assert_eq 7 "$out" "pooler still serves after the refusal"
	fi
	run_pgbench connect-per-transaction -S -C
	run_pgbench extended -S -M extended
	pgu_stop
done

pass
