#!/usr/bin/env bash
# User story: users who are not in auth_file are looked up in PostgreSQL with auth_query,
# through a pooled connection of auth_user (global, or per database, in the auth_dbname
# database when one is set). md5 and SCRAM secrets both work, for the client's login and for
# the pooler's own login to the server (a SCRAM secret by pass-through of the client's keys);
# a NULL secret (no password, VALID UNTIL in the past) lets nobody in; an unknown or NOLOGIN
# user gets "no such user". The lookup's own failures (auth_user refused by the server, a
# query error, a query of the wrong shape, an auth_dbname that is not configured) are logged
# and answered as PgBouncer 1.25 does. A slow lookup keeps only its own client waiting.
#
# Validated against PgBouncer 1.25.2
# (PGUSHER_BIN=/work/shared/ref/pgbouncer-1.25.2/pgbouncer): PASS.
# Deliberate differences (not asserted here): pgusher runs auth_query at every login (no
# per-user cache, so a changed password or VALID UNTIL counts at once); PgBouncer prints
# "pooler error" after "closing because", pgusher before it; PgBouncer 1.25.2 accepts the
# password "md5" for a user whose auth_query secret is NULL (no password, or expired), a hole
# pgusher does not copy (checked for pgusher only). When the auth database's host is down, a
# lookup waits (health checks mark the host down, client_login_timeout ends the wait) where
# PgBouncer answers the logins within server_login_retry with "cached error: connect failed".
source "$(dirname "$0")/lib.sh"

WIRE="python3 $(dirname "$0")/pgwire.py"

# Roles of this story (idempotent: the cluster may be shared between runs).
pg_direct "$PGU_PRIMARY" postgres <<'EOF'
DO $$ BEGIN
 IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'aq_md5') THEN
   SET LOCAL password_encryption = 'md5'; CREATE ROLE aq_md5 LOGIN PASSWORD 'md5pw'; END IF;
 IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'aq_scram') THEN
   SET LOCAL password_encryption = 'scram-sha-256'; CREATE ROLE aq_scram LOGIN PASSWORD 'scrampw'; END IF;
 IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'aq_nopw') THEN
   CREATE ROLE aq_nopw LOGIN; END IF;
 IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'aq_expired') THEN
   SET LOCAL password_encryption = 'scram-sha-256';
   CREATE ROLE aq_expired LOGIN PASSWORD 'exppw' VALID UNTIL '2001-01-01'; END IF;
 IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'aq_nologin') THEN
   SET LOCAL password_encryption = 'scram-sha-256'; CREATE ROLE aq_nologin NOLOGIN PASSWORD 'nlpw'; END IF;
END $$;
EOF
# A run that failed half-way may have left another password (the no-cache check changes it).
pg_direct "$PGU_PRIMARY" postgres -c "SET password_encryption = 'md5'; ALTER ROLE aq_md5 PASSWORD 'md5pw'"

# Only the auth_user (postgres, trusted by the cluster: any password does) and one ordinary
# user in auth_file: u_md5 and u_scram (md5 and SCRAM at the server) are found with auth_query.
: >"$PGU_USERLIST"
pgu_user postgres pgpw
pgu_user u_trust utpw

pgu_start <<EOF
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb
viaauthdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb auth_dbname=authdb
authdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=postgres
noauthdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb auth_dbname=nosuchdb
emptyq = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb auth_query='SELECT rolname, rolpassword FROM pg_authid WHERE rolname = \$1 AND false'
onecol = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb auth_query='SELECT \$1::text'
noperm = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb auth_user=u_trust
nouser = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb auth_user=aq_nobody_here
slow = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb auth_query='SELECT rolname, rolpassword FROM pg_authid, pg_sleep(2) WHERE rolname = \$1'

[pgbouncer]
auth_type = md5
auth_user = postgres
server_login_retry = 30
EOF

wire() { # db user password [query]: one raw login, its events
	pgu_try timeout 20 $WIRE startup --port "$PGU_PORT" --database "$1" --user "$2" --password "$3" \
		${4:+--query "$4"}
}

check "a user not in auth_file is found with auth_query (md5 secret): client and server login"
out=$(PGPASSWORD=md5pw pgu_psql testdb aq_md5 -c "select current_user") ||
	fail "aq_md5 could not log in through auth_query"
assert_eq "aq_md5" "$out" "aq_md5 logs in with the password PostgreSQL has"
assert_log_contains "testdb/aq_md5@127.0.0.1"
assert_log_contains "login attempt: db=testdb user=aq_md5"

check "u_md5 (md5 at the server) is logged in to the server with the md5 secret auth_query found"
out=$(PGPASSWORD=md5pass pgu_psql testdb u_md5 -c "select current_user") ||
	fail "u_md5 could not log in (the server asks for md5)"
assert_eq "u_md5" "$out" "server login with the looked-up md5 secret"

check "a SCRAM secret from auth_query: auth_type=md5 asks for SCRAM, and SCRAM pass-through logs in to the server"
wire testdb aq_scram scrampw "select current_user"
assert_contains "$PGU_OUT" "AUTH sasl" "SCRAM is asked for a SCRAM secret"
assert_contains "$PGU_OUT" "ROW aq_scram" "aq_scram logs in"
out=$(PGPASSWORD=scrampass pgu_psql testdb u_scram -c "select current_user") ||
	fail "u_scram could not log in (the server asks for SCRAM: pass-through of the client's keys)"
assert_eq "u_scram" "$out" "SCRAM pass-through with a secret from auth_query, no plain text password known"

check "a wrong password is refused"
wire testdb aq_md5 wrong
assert_contains "$PGU_OUT" "ERROR S=FATAL C=08P01 M=password authentication failed" "wrong password refused"
wire testdb aq_scram wrong
assert_contains "$PGU_OUT" "M=SASL authentication failed" "wrong SCRAM password refused"

check "a NULL secret lets nobody in: no password, or VALID UNTIL in the past (default auth_query)"
wire testdb aq_nopw ""
assert_contains "$PGU_OUT" "M=password authentication failed" "a user without a password cannot log in"
wire testdb aq_nopw pw
assert_contains "$PGU_OUT" "M=password authentication failed" "nor with any password"
wire testdb aq_expired exppw
assert_contains "$PGU_OUT" "M=password authentication failed" "an expired password is refused although right"
if [[ $(basename "$PGUSHER_BIN") != pgbouncer* ]]; then
	# PgBouncer 1.25.2 lets such users in with the password "md5" (see the header).
	for u in aq_nopw aq_expired; do
		wire testdb "$u" md5
		assert_contains "$PGU_OUT" "M=password authentication failed" "$u: the password 'md5' is refused too"
	done
fi

check "an unknown or NOLOGIN user gets 'no such user', logged as PgBouncer logs it"
wire testdb aq_nosuch x
assert_contains "$PGU_OUT" "ERROR S=FATAL C=08P01 M=no such user" "unknown user"
assert_not_contains "$PGU_OUT" "AUTH md5" "no password is asked for"
wire testdb aq_nologin nlpw
assert_contains "$PGU_OUT" "ERROR S=FATAL C=08P01 M=no such user" "NOLOGIN user"
assert_log_contains "testdb/(nouser)@127.0.0.1"
assert_log_contains "login failed: db=testdb"
assert_log_contains "closing because: no such user"

check "auth_dbname: the lookup runs in the authdb database's pool"
out=$(PGPASSWORD=md5pw pgu_psql viaauthdb aq_md5 -c "select current_user, current_database()") ||
	fail "aq_md5 could not log in to viaauthdb"
assert_eq "aq_md5|testdb" "$out" "logged in, to viaauthdb's own database"
pools=$(PGPASSWORD=pgpw pgu_admin "SHOW POOLS" | awk -F'|' '{print $1"/"$2}')
assert_contains "$pools" "authdb/postgres" "the auth_user's pool of authdb did the lookup"
assert_not_contains "$pools" "viaauthdb/postgres" "not one of viaauthdb"

check "an auth_dbname that is not configured: 'bouncer config error'"
wire noauthdb aq_md5 md5pw
assert_contains "$PGU_OUT" "ERROR S=FATAL C=08P01 M=bouncer config error" "client error"
assert_log_contains 'authentication database "nosuchdb" is not configured.'

check "a per-database auth_query that finds nothing: 'no such user'"
wire emptyq u_plain plainpass
assert_contains "$PGU_OUT" "M=no such user" "the database's own auth_query is used"

check "an auth_query of one column: 'bouncer config error', logged"
wire onecol aq_md5 md5pw
assert_contains "$PGU_OUT" "ERROR S=FATAL C=08P01 M=bouncer config error" "client error"
assert_log_contains "closing because: expected 2 columns from auth_query, not 1"

check "a per-database auth_user without rights on pg_authid: the query error is logged"
wire noperm aq_md5 md5pw
assert_contains "$PGU_OUT" "ERROR S=FATAL C=08P01 M=bouncer config error" "client error"
assert_log_contains "S: error in auth_query: ERROR: permission denied for table pg_authid"
assert_log_contains "closing because: error response from auth_query"

check "an auth_user the server refuses: its error, then PgBouncer's cached error"
wire nouser aq_md5 md5pw
assert_contains "$PGU_OUT" 'ERROR S=FATAL C=28000 M=role "aq_nobody_here" does not exist' "server's refusal"
wire nouser aq_md5 md5pw
assert_contains "$PGU_OUT" 'ERROR S=FATAL C=08P01 M=server login has been failing, cached error: role "aq_nobody_here" does not exist (server_login_retry)' "cached error"

if [[ $(basename "$PGUSHER_BIN") != pgbouncer* ]]; then
	check "a password changed in PostgreSQL counts at the next login (no cache: pgusher only)"
	pg_direct "$PGU_PRIMARY" postgres -c "SET password_encryption = 'md5'; ALTER ROLE aq_md5 PASSWORD 'newpw'"
	wire testdb aq_md5 md5pw
	assert_contains "$PGU_OUT" "M=password authentication failed" "the old password no longer works"
	wire testdb aq_md5 newpw "select 1"
	assert_contains "$PGU_OUT" "ROW 1" "the new one does"
	pg_direct "$PGU_PRIMARY" postgres -c "SET password_encryption = 'md5'; ALTER ROLE aq_md5 PASSWORD 'md5pw'"
fi

check "a slow lookup keeps only its own client waiting"
start=$EPOCHREALTIME
pgu_bg bash -c "PGPASSWORD=md5pw psql -X -A -t -q -h 127.0.0.1 -p $PGU_PORT -U aq_md5 -d slow -c 'select 42' >$PGU_TMP/slow.out 2>&1"
slow_pid=$PGU_BG_PID
sleep 0.5
out=$(PGPASSWORD=utpw pgu_psql testdb u_trust -c "select 7") || fail "u_trust not served during the slow lookup"
assert_eq "7" "$out" "another client is served meanwhile"
quick=$(echo "$EPOCHREALTIME - $start" | bc)
(($(echo "$quick < 1.8" | bc))) || fail "the other client waited for the slow lookup (${quick}s)"
echo "   ok: served after ${quick}s while the lookup sleeps 2 s"
sv_active=$(PGPASSWORD=pgpw pgu_admin "SHOW POOLS" | awk -F'|' '$1=="slow" && $2=="postgres" {print $7}')
assert_eq "1" "$sv_active" "SHOW POOLS: the lookup's server counts as sv_active of slow/postgres"
wait "$slow_pid" || fail "the slow lookup's client failed: $(cat "$PGU_TMP/slow.out")"
assert_eq "42" "$(cat "$PGU_TMP/slow.out")" "the slow lookup's client logs in in the end"

check "a client that leaves while its lookup runs: the pooler goes on"
pgu_try timeout 1 env PGPASSWORD=md5pw psql -X -h 127.0.0.1 -p "$PGU_PORT" -U aq_md5 -d slow -c 'select 1'
sleep 2.5
out=$(PGPASSWORD=md5pw pgu_psql slow aq_md5 -c "select 43") || fail "no login after an abandoned lookup"
assert_eq "43" "$out" "the next lookup works"
out=$(PGPASSWORD=md5pw pgu_psql testdb aq_md5 -c "select 44") || fail "no login after an abandoned lookup"
assert_eq "44" "$out" "and so do others"

pass
