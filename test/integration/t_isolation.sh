#!/usr/bin/env bash
# User story: an application server runs JDBC batches, libpq pipelines and cancels through a
# transaction-mode pool that has a single server connection. However the clients interleave,
# each client receives exactly its own results: a server stays with its client until every
# message the client sent to it is closed by a Sync/Query whose ReadyForQuery came back (and
# no message is half forwarded), and a cancel request cancels only the query it was meant for
# (a server with a cancel in flight goes to nobody else until the cancel is done).
source "$(dirname "$0")/lib.sh"

pgu_start <<CONF
[databases]
one = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb pool_size=1
stuck = host=$PGU_STANDBY1 port=$PGU_PGPORT dbname=testdb pool_size=1
[pgbouncer]
pool_mode = transaction
max_prepared_statements = 0
cancel_wait_timeout = 2
CONF

race() { pgu_try timeout 120 python3 "$PGU_LIBDIR/race.py" --port "$PGU_PORT" --db one --user u_trust "$@"; }

check "P/B/E/S then P/B/E before the ReadyForQuery: the server stays with the first client"
race pipeline
assert_ok "pipeline: $PGU_OUT"

check "P/B/E/S then half of a large Parse: the rest goes to the same server"
race partial
assert_ok "partial message: $PGU_OUT"

check "a small pipeline split at every offset, another client queued behind it"
race split
assert_ok "split pipeline: $PGU_OUT"

check "100 cancels for one client's query never cancel the next client's query (3 rounds)"
race cancel --rounds 3
assert_ok "cancel: $PGU_OUT"

check "a cancel held up by a frozen postmaster: SHOW POOLS counts it, the server waits for it, cancel_wait_timeout ends it"
standby_pm=$(head -1 "${PGUSHER_CLUSTER_DIR:-/tmp/pgusher-cluster}/n1/data/postmaster.pid")
pgu_try timeout 60 python3 "$PGU_LIBDIR/race.py" --port "$PGU_PORT" --db stuck --user u_trust \
	--freeze-pid "$standby_pm" columns
kill -CONT "$standby_pm" 2>/dev/null || true
assert_ok "cancel columns: $PGU_OUT"
assert_log_contains "cancel request timed out (cancel_wait_timeout)"

check "the pool is intact afterwards"
assert_eq "1" "$(pgu_psql one u_trust -Atc 'select 1')" "select 1"

pass
