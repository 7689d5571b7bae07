#!/usr/bin/env bash
# User story: applications that use protocol-level prepared statements (pgbench -M prepared,
# psycopg 3, JDBC, node-postgres) work through pgusher in transaction pooling with more
# clients than servers (max_prepared_statements, default 200 as in PgBouncer 1.25): their
# statements follow them from server to server, results are right, nothing errors. A raw
# pipeline (pgwire.py) pins the exact responses: named statements, Close, several Sync
# points, an error in the middle, a name reused after Close/DEALLOCATE ALL, a 100 kB text.
#
# Validated against PgBouncer 1.25.2 (PGUSHER_BIN=.../pgbouncer-1.25.2/pgbouncer): PASS,
# except the steps marked pgusher-only, where PgBouncer closes the client instead (a Bind or
# Describe of a name the client never prepared; a name whose Parse failed, prepared again):
# pgusher passes unknown names on, so PostgreSQL answers them (26000) and the session goes on.
source "$(dirname "$0")/lib.sh"

DATA=$PGU_LIBDIR/data/prepared
CLIENTS=$PGU_LIBDIR/clients
PY=/usr/bin/python3 # Debian's python3-psycopg, whatever python3 is first in PATH
DUR=${PGU_PGBENCH_SECONDS:-4}
is_pgbouncer=0
[[ $(basename "$PGUSHER_BIN") == pgbouncer ]] && is_pgbouncer=1

start_pooler() { # mode pool_size max_prepared_statements [extra ini lines]
	pgu_start <<EOF
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb pool_size=$2

[pgbouncer]
pool_mode = $1
max_prepared_statements = $3
max_client_conn = 200
${4:-}
EOF
}

run_script() { # name: run data/prepared/name.txt, compare with name.out
	check "raw pipeline $1.txt: the responses are exactly $1.out"
	pgu_try timeout 60 python3 "$PGU_LIBDIR/pgwire.py" extended --port "$PGU_PORT" --script "$DATA/$1.txt"
	assert_ok "pgwire.py extended $1.txt"
	local diffs
	diffs=$(diff <(echo "$PGU_OUT") "$DATA/$1.out") || {
		echo "$diffs" | head -20 >&2
		fail "$1.txt: responses differ from $1.out"
	}
}

stat_val() { # column: its value in SHOW STATS for testdb
	pgu_admin "show stats" >/dev/null # warm
	local cols
	cols=$(timeout 10 psql -X -A -q -F'|' -h 127.0.0.1 -p "$PGU_PORT" -U postgres -d pgbouncer -c "show stats" | head -1)
	local i=1 c
	IFS='|' read -ra names <<<"$cols"
	for c in "${names[@]}"; do
		[[ $c == "$1" ]] && break
		i=$((i + 1))
	done
	pgu_admin "show stats" | awk -F'|' -v i="$i" '$1 == "testdb" { print $i }'
}

# ---------------------------------------------------------------- pgbench
start_pooler transaction 2 200
# -j 8: pgbench prepares with the blocking PQprepare, so a thread driving several clients
# would wait for a queued one while its others hold the servers in open transactions (a
# deadlock of pgbench's own, PgBouncer 1.25.2 hangs the same way).
for script in -S -N ""; do
	check "pgbench -M prepared ${script:-(TPC-B)} -c 8 over 2 servers: zero errors"
	pgu_try timeout 60 pgbench -n -M prepared $script -T "$DUR" -c 8 -j 8 -h 127.0.0.1 -p "$PGU_PORT" -U u_trust testdb
	echo "$PGU_OUT" | grep -E 'processed|failed|tps =' | sed 's/^/     /'
	assert_ok "pgbench exits 0"
	assert_not_contains "$PGU_OUT" "error" "pgbench reports no errors"
	assert_not_contains "$PGU_OUT" "aborted" "no client aborted"
	[[ $PGU_OUT =~ actually\ processed:\ ([0-9]+) ]] && ((BASH_REMATCH[1] > 0)) ||
		fail "pgbench processed no transactions"
done

check "SHOW SERVERS prepared_statements: the pgbench statements are on the servers"
n=$(pgu_admin "show servers" | awk -F'|' '$3 == "testdb" { if ($20 > m) m = $20 } END { print m + 0 }')
((n >= 1 && n <= 200)) || fail "prepared_statements on servers: $n"
echo "   ok: up to $n statements on one server"

start_pooler statement 2 200
check "statement pooling: pgbench -M prepared -S -c 8 over 2 servers: zero errors"
pgu_try timeout 60 pgbench -n -M prepared -S -T 2 -c 8 -j 8 -h 127.0.0.1 -p "$PGU_PORT" -U u_trust testdb
assert_ok "pgbench exits 0"
assert_not_contains "$PGU_OUT" "error" "pgbench reports no errors"

# ---------------------------------------------------------------- raw pipelines
start_pooler transaction 1 200
run_script common
# pgusher-only: unknown names answered by PostgreSQL (26000) and the session goes on; a
# name whose Parse failed (or was skipped after an error) is free again.
((is_pgbouncer)) || run_script errors

# ---------------------------------------------------------------- LRU eviction
start_pooler transaction 1 2
check "max_prepared_statements=2: 5 statements used in turn by 2 clients on one server"
{
	for i in 1 2 3 4 5; do echo "@0 P s$i|SELECT $i * 10"; echo "@1 P t$i|SELECT $i * 10 + 1"; done
	echo "@0 S"; echo "@1 S"; echo "@0 WAIT"; echo "@1 WAIT"
	for r in 1 2; do
		for i in 1 2 3 4 5 3 1; do
			echo "@0 B s$i"; echo "@0 E"; echo "@1 B t$i"; echo "@1 E"
		done
		echo "@0 S"; echo "@0 WAIT"; echo "@1 S"; echo "@1 WAIT"
	done
} >"$PGU_TMP/lru.txt"
pgu_try timeout 60 python3 "$PGU_LIBDIR/pgwire.py" extended --port "$PGU_PORT" --script "$PGU_TMP/lru.txt"
assert_ok "pgwire.py extended lru.txt"
assert_not_contains "$PGU_OUT" "ERROR" "no errors"
rows=$(echo "$PGU_OUT" | grep ROW | sed 's/.*ROW //' | tr '\n' ' ')
want=""
for r in 1 2; do for i in 1 2 3 4 5 3 1; do want+="$((i * 10)) $((i * 10 + 1)) "; done; done
# The two clients run in turn on the one server, each its own 7 rows per round.
got_sorted=$(echo "$rows" | tr ' ' '\n' | sort -n | tr '\n' ' ')
want_sorted=$(echo "$want" | tr ' ' '\n' | sort -n | tr '\n' ' ')
assert_eq "$want_sorted" "$got_sorted" "every Execute gave its own statement's result"
n=$(pgu_admin "show servers" | awk -F'|' '$3 == "testdb" { print $20 }')
assert_eq 2 "$n" "the server holds max_prepared_statements statements"
n=$(pgu_psql testdb u_trust -Atc "select count(*) from pg_prepared_statements")
assert_eq 2 "$n" "evicted statements were closed on the (one) server: it holds 2"

# ---------------------------------------------------------------- DISCARD ALL / DEALLOCATE ALL
check "DISCARD ALL from the client forgets its names (and the server's statements)"
cat >"$PGU_TMP/discard.txt" <<'EOF'
P d1|SELECT 'd1'
S
WAIT
Q DISCARD ALL
WAIT
B d1
S
WAIT
P d1|SELECT 'd1 again'
B d1
E
S
WAIT
EOF
if ((!is_pgbouncer)); then
	pgu_try timeout 30 python3 "$PGU_LIBDIR/pgwire.py" extended --port "$PGU_PORT" --script "$PGU_TMP/discard.txt"
	assert_contains "$PGU_OUT" "0: COMPLETE DISCARD ALL" "DISCARD ALL ran"
	assert_contains "$PGU_OUT" 'ERROR C=26000 M=prepared statement "d1" does not exist' "d1 is gone after DISCARD ALL"
	assert_contains "$PGU_OUT" "0: ROW d1 again" "d1 can be prepared again"
fi

# ---------------------------------------------------------------- fresh servers
# A server that is new to the client (RECONNECT, a server that died, server_reset_query =
# DISCARD ALL, PAUSE/RESUME, a RELOAD that changed the database) has none of its statements: they are prepared there again when
# needed; a PAUSE that comes before the batch's last Sync waits for it.
start_pooler transaction 1 200 "server_reset_query = DISCARD ALL
server_reset_query_always = 1"
check "after RECONNECT, a killed server, DISCARD ALL as reset query, PAUSE before the last Sync, a RELOAD replacing the server: statements re-prepared"
export PGU_PORT PGU_PRIMARY PGU_PGPORT PGU_INI PGU_PID
cat >"$PGU_TMP/fresh.txt" <<'EOF'
P r1|SELECT 'r1'
B r1
E
S
WAIT
B r1
E
S
WAIT
RUN psql -X -q -h 127.0.0.1 -p "$PGU_PORT" -U postgres -d pgbouncer -c RECONNECT
B r1
E
S
WAIT
RUN psql -X -q -h "$PGU_PRIMARY" -p "$PGU_PGPORT" -U postgres -d testdb -c "select pg_terminate_backend(pid) from pg_stat_activity where datname = 'testdb' and backend_type = 'client backend' and pid <> pg_backend_pid()" && sleep 1
B r1
E
S
WAIT
B r1
E
RUN (psql -X -q -h 127.0.0.1 -p "$PGU_PORT" -U postgres -d pgbouncer -c PAUSE >/dev/null 2>&1 &); sleep 0.5
S
WAIT
RUN sleep 0.5; psql -X -q -h 127.0.0.1 -p "$PGU_PORT" -U postgres -d pgbouncer -c RESUME
B r1
E
S
WAIT
Q SELECT 'pid-' || pg_backend_pid()
WAIT
RUN sed -i 's/dbname=testdb pool_size=1/dbname=testdb pool_size=1 application_name=reloaded/' "$PGU_INI" && kill -HUP "$PGU_PID" && sleep 1
B r1
E
S
WAIT
B r1
E
S
WAIT
Q SELECT 'pid-' || pg_backend_pid()
WAIT
EOF
pgu_try timeout 60 python3 "$PGU_LIBDIR/pgwire.py" extended --port "$PGU_PORT" --script "$PGU_TMP/fresh.txt"
assert_ok "pgwire.py extended fresh.txt"
assert_not_contains "$PGU_OUT" "ERROR" "no errors"
assert_eq 8 "$(grep -c '0: ROW r1' <<<"$PGU_OUT")" "r1 ran on every server it met"
# (PgBouncer 1.25.2 keeps its server through this RELOAD: only pgusher is held to it.)
((is_pgbouncer)) ||
	assert_eq 2 "$(grep '0: ROW pid-' <<<"$PGU_OUT" | sort -u | wc -l)" "the RELOAD replaced the server"
assert_not_contains "$PGU_OUT" "RUN rc=1" "RECONNECT and the kill ran"

# ---------------------------------------------------------------- drivers
# pgjdbc sends extra_float_digits at startup: PgBouncer's usual setting for it.
start_pooler transaction 2 200 "ignore_startup_parameters = extra_float_digits"
check "psycopg 3 (prepare_threshold=0, also pipeline mode): 10 threads over 2 servers"
pgu_try timeout 120 "$PY" "$CLIENTS/prepared_psycopg.py" "host=127.0.0.1 port=$PGU_PORT user=u_trust dbname=testdb" 10 30
echo "$PGU_OUT" | tail -6 | sed 's/^/     /'
assert_ok "psycopg workload"
assert_contains "$PGU_OUT" "errors=0" "no psycopg errors"

check "JDBC (pgjdbc, prepareThreshold=1): 8 threads over 2 servers"
jdir=$PGUSHER_BUILD/prepared-jdbc
jar=/usr/share/java/postgresql.jar
[[ -f $jar ]] || fail "$jar missing (Debian libpostgresql-jdbc-java)"
if [[ ! -f $jdir/PreparedJdbc.class || $CLIENTS/PreparedJdbc.java -nt $jdir/PreparedJdbc.class ]]; then
	mkdir -p "$jdir"
	javac -d "$jdir" "$CLIENTS/PreparedJdbc.java" || fail "javac failed"
fi
pgu_try timeout 120 java -cp "$jdir:$jar" PreparedJdbc "jdbc:postgresql://127.0.0.1:$PGU_PORT/testdb" 8 40
echo "$PGU_OUT" | tail -6 | sed 's/^/     /'
assert_ok "JDBC workload"
assert_contains "$PGU_OUT" "errors=0" "no JDBC errors"

check "node-postgres (named queries, pipelined): 8 clients over 2 servers"
ndir=$PGUSHER_BUILD/prepared-node
if [[ ! -d $ndir/node_modules/pg ]]; then
	mkdir -p "$ndir"
	(cd "$ndir" && npm install --no-audit --no-fund --silent pg@8 >/dev/null 2>&1) ||
		fail "npm install pg failed (the npm registry must be reachable once; cached in $ndir)"
fi
pgu_try timeout 120 env NODE_PATH="$ndir/node_modules" node "$CLIENTS/prepared_node.js" "$PGU_PORT" 8 40
echo "$PGU_OUT" | tail -6 | sed 's/^/     /'
assert_ok "node-postgres workload"
assert_contains "$PGU_OUT" "errors=0" "no node-postgres errors"

# ---------------------------------------------------------------- stats
start_pooler transaction 1 200
check "SHOW STATS parse/bind counters: 3 Parses by clients of 2 texts: 2 reach the server"
cat >"$PGU_TMP/stats.txt" <<'EOF'
@0 P a|SELECT 'same'
@0 B a
@0 E
@0 S
@0 WAIT
@1 P b|SELECT 'same'
@1 B b
@1 E
@1 B b
@1 E
@1 S
@1 WAIT
@1 P c|SELECT 'other'
@1 B c
@1 E
@1 S
@1 WAIT
EOF
pgu_try timeout 30 python3 "$PGU_LIBDIR/pgwire.py" extended --port "$PGU_PORT" --script "$PGU_TMP/stats.txt"
assert_ok "stats script"
assert_eq 3 "$(stat_val total_client_parse_count)" "total_client_parse_count"
assert_eq 2 "$(stat_val total_server_parse_count)" "total_server_parse_count (the shared text once)"
assert_eq 4 "$(stat_val total_bind_count)" "total_bind_count"

# ---------------------------------------------------------------- session mode
start_pooler session 1 200
check "session mode: named statements pass through untouched"
cat >"$PGU_TMP/session.txt" <<'EOF'
P mine|SELECT 1
S
WAIT
Q SELECT name FROM pg_prepared_statements
WAIT
EOF
pgu_try timeout 30 python3 "$PGU_LIBDIR/pgwire.py" extended --port "$PGU_PORT" --script "$PGU_TMP/session.txt"
assert_contains "$PGU_OUT" "0: ROW mine" "the server knows the client's own name"

pass
