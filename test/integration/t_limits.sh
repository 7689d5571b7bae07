#!/usr/bin/env bash
# Story: per-database and per-user client limits (max_db_client_connections,
# max_user_client_connections, [users] max_user_client_connections) refuse the client over
# the limit (PgBouncer 1.25: SQLSTATE 08P01, "client connections exceeded (...)") while the clients already connected keep working.
. "$(dirname "$0")/lib.sh"

pgu_start <<EOF
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb
small = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb max_db_client_connections=2
[users]
u_md5 = max_user_client_connections=1
[pgbouncer]
pool_mode = session
auth_type = trust
EOF


check "max_db_client_connections=2: the third client of 'small' is refused"
pgu_hold small u_trust
pgu_hold small u_trust
pgu_wait_clients small 2
pgu_try pgu_psql small u_trust -c 'select 1'
assert_fails "third client"
assert_contains "$PGU_OUT" "max_db_client_connections" "error text"
assert_eq "1" "$(pgu_psql testdb u_trust -c 'select 1')" "other databases unaffected"

check "[users] max_user_client_connections=1 for u_md5"
pgu_hold testdb u_md5
pgu_wait_clients testdb 1
pgu_try env PGPASSWORD=md5pass psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U u_md5 testdb -c 'select 1'
assert_fails "second u_md5 client"
assert_contains "$PGU_OUT" "max_user_client_connections" "error text"
assert_eq "1" "$(pgu_psql testdb u_trust -c 'select 1')" "other users unaffected"
pgu_release_holds
pass
