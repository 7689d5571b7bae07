#!/usr/bin/env bash
# User story: an operator uses the "*" fallback entry so that every database on the server
# is reachable without listing it. Each database a client asks for is created on the fly
# and, once no client has used it for autodb_idle_timeout, its server connections are
# closed and it is freed, so that clients asking for ever new names (or for names that do
# not exist) cannot grow the pooler without bound. A database still in use is never freed.
source "$(dirname "$0")/lib.sh"

admin() { psql -X -A -t -F'|' -P footer=off -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGU_PORT" -U postgres -d pgbouncer "$@"; }
db_listed() { admin -c 'SHOW DATABASES' | awk -F'|' -v d="$1" '$1 == d' | wc -l; }
n_databases() { admin -c 'SHOW DATABASES' | wc -l; }
wait_unlisted() { # db seconds: 0 once SHOW DATABASES no longer lists db
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		[[ $(db_listed "$1") == 0 ]] && return 0
		sleep 0.1
	done
	return 1
}

pgu_start <<EOF
[databases]
* = host=$PGU_PRIMARY port=$PGU_PGPORT
[pgbouncer]
pool_mode = session
autodb_idle_timeout = 2
EOF
base=$(n_databases)

check "a client of testdb creates the auto-database; 2 s after it left, the database and its server are gone"
assert_eq "auto" "$(pgu_psql testdb u_trust -c "select 'auto'")" "query through the auto-database"
assert_eq "1" "$(db_listed testdb)" "SHOW DATABASES lists testdb"
assert_eq "1" "$(admin -c 'SHOW SERVERS' | awk -F'|' '$3 == "testdb"' | wc -l)" "one server connection kept for testdb"
wait_unlisted testdb 8 || fail "testdb still listed 8 s after its last client left"
echo "   ok: testdb freed"
assert_eq "0" "$(admin -c 'SHOW SERVERS' | awk -F'|' '$3 == "testdb"' | wc -l)" "no testdb server connection left"
assert_log_contains "freeing unused auto-database: db=testdb"
assert_eq "again" "$(pgu_psql testdb u_trust -c "select 'again'")" "testdb is created again on demand"

check "a database with a connected client is not freed, however long the client stays idle"
pgu_hold testdb u_trust
pgu_wait_clients testdb 1
sleep 4
assert_eq "1" "$(db_listed testdb)" "testdb still listed while its client is connected"
pgu_release_holds
wait_unlisted testdb 8 || fail "testdb still listed 8 s after its held client left"
echo "   ok: freed after the client left"

check "200 clients asking for databases that do not exist leave nothing behind"
for ((i = 0; i < 200; i += 20)); do
	pids=()
	for ((j = i; j < i + 20; j++)); do
		timeout 20 psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U u_trust -d "nosuchdb_$j" -c 'select 1' >/dev/null 2>&1 &
		pids+=($!)
	done
	wait "${pids[@]}" || true
done
out=$(psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U u_trust -d nosuchdb_x -c 'select 1' 2>&1 || true)
assert_contains "$out" 'database "nosuchdb_x" does not exist' "the server's error reaches the client"
for ((i = 0; i < 100; i++)); do
	(($(n_databases) <= base)) && break
	sleep 0.1
done
(($(n_databases) <= base)) || fail "$(n_databases) databases listed 10 s later; $base before"
echo "   ok: back to $base listed databases"
assert_eq "still" "$(pgu_psql testdb u_trust -c "select 'still'")" "the pooler still serves"

pass
