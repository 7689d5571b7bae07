#!/usr/bin/env bash
# User story: an application points psql at pgusher instead of PostgreSQL and it just works:
# queries reach the primary through `testdb`, the standby through `reads`, an unknown
# database name is refused with PgBouncer's message, and the Unix socket works too.
#
# Validated against PgBouncer 1.18 (PGUSHER_BIN=/usr/sbin/pgbouncer): PASS.
source "$(dirname "$0")/lib.sh"

pgu_start <<EOF
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb
reads = host=$PGU_STANDBY1 port=$PGU_PGPORT dbname=testdb

[pgbouncer]
pool_mode = session
default_pool_size = 4
EOF

check "SELECT through the pooler reaches testdb on the primary"
out=$(pgu_psql testdb u_trust -c "select current_database(), current_user, count(*) from pgbench_accounts")
assert_eq "testdb|u_trust|100000" "$out" "query result via testdb"
out=$(pgu_psql testdb postgres -c "select pg_is_in_recovery(), host(inet_server_addr())")
assert_eq "f|$PGU_PRIMARY" "$out" "testdb is served by the primary"

check "the reads entry is served by the standby on $PGU_STANDBY1"
out=$(pgu_psql reads u_trust -c "select pg_is_in_recovery(), host(inet_server_addr()), current_database()")
assert_eq "t|$PGU_STANDBY1|testdb" "$out" "reads is served by a standby"

check "several statements and a transaction in one session"
out=$(pgu_psql testdb u_trust <<'SQL'
begin;
create temp table t_basic_tmp(i int);
insert into t_basic_tmp select generate_series(1, 10);
select sum(i) from t_basic_tmp;
commit;
select 'after commit';
SQL
)
assert_eq $'55\nafter commit' "$out" "multi-statement script"

# SQLSTATE: PostgreSQL uses 3D000 (invalid_catalog_name) for an unknown database; PgBouncer
# 1.18 sends 08P01 with the same "no such database" text. Either is accepted, nothing else.
check "unknown database is refused with 'no such database' (SQLSTATE 3D000, or PgBouncer 1.18's 08P01)"
pgu_try pgu_psql nosuchdb_xyz u_trust -v VERBOSITY=verbose -c "select 1"
assert_fails "connect to an unknown database"
assert_contains "$PGU_OUT" "no such database: nosuchdb_xyz" "error text"
# libpq prints "FATAL:  3D000: ..." only when the server sends the SQLSTATE; psql cannot
# be made to show connection-time SQLSTATEs, so ask the wire helper.
pgu_try python3 "$(dirname "$0")/pgwire.py" startup --port "$PGU_PORT" --user u_trust --database nosuchdb_xyz
[[ $PGU_OUT =~ ERROR\ S=FATAL\ C=(3D000|08P01)\ M=no\ such\ database ]] ||
	fail "startup error should be FATAL 3D000/08P01 'no such database'; got: $PGU_OUT"
echo "   ok: SQLSTATE of the startup error (${BASH_REMATCH[1]})"
assert_contains "$PGU_OUT" "no such database" "message of the startup error"

check "the pooler still serves after the refused connection"
out=$(pgu_psql testdb u_trust -c "select 42")
assert_eq 42 "$out" "query after error"

check "psql through the pooler's Unix socket"
[[ -S $PGU_TMP/.s.PGSQL.$PGU_PORT ]] || fail "no unix socket $PGU_TMP/.s.PGSQL.$PGU_PORT"
out=$(pgu_psql_unix testdb u_trust -c "select current_database(), pg_is_in_recovery()")
assert_eq "testdb|f" "$out" "query via the unix socket"
out=$(pgu_psql_unix reads u_trust -c "select pg_is_in_recovery()")
assert_eq "t" "$out" "reads via the unix socket"

pass
