#!/usr/bin/env bash
# User story: auth_type = hba. The first rule of auth_hba_file that matches the connection
# (local = Unix socket, host over TCP; database and user lists, @file, CIDR or address+mask)
# picks the method: md5, scram-sha-256, password, trust, reject, peer (with an
# auth_ident_file map), cert (hostssl, with map= too); no rule at all refuses the login. Answers and log lines are
# PgBouncer 1.25's. A RELOAD picks up changed rules; a broken file is refused with file:line
# (at start: the pooler does not start; on RELOAD: the running rules stay).
#
# Validated against PgBouncer 1.25.2
# (PGUSHER_BIN=/work/shared/ref/pgbouncer-1.25.2/pgbouncer): PASS.
# Deliberate differences (checked for pgusher only): PgBouncer skips a line it cannot parse
# (with a warning) and runs without rules when the file is missing; pgusher refuses such a
# file, since a skipped "reject" line would let in whom it was meant to keep out. pgusher
# allows comments and blank lines in an @file (PgBouncer 1.25.2 refuses the whole line then).
source "$(dirname "$0")/lib.sh"

WIRE="python3 $(dirname "$0")/pgwire.py"
HBA=$PGU_TMP/hba.conf
IDENT=$PGU_TMP/ident.conf

: >"$PGU_USERLIST"
pgu_user postgres ""
pgu_user u_trust ""
pgu_user u_md5 md5pass
pgu_user u_scram scrampass
pgu_user u_plain plainpass

printf 'u_plain\n' >"$PGU_TMP/users.txt"
cat >"$IDENT" <<'EOF'
# map     system user   database user
m         root          u_trust
m         postgres      u_md5
EOF
cat >"$HBA" <<'EOF'
# pgusher t_hba
local   all             all                                     peer map=m
host    pgbouncer       all             127.0.0.1/32            trust
host    rejectdb        all             127.0.0.1/32            reject
host    peerdb          all             127.0.0.1/32            peer
host    testdb          u_md5           127.0.0.1/32            md5
host    testdb          u_scram         127.0.0.0 255.0.0.0     scram-sha-256
host    testdb,otherdb  @users.txt      127.0.0.0/8             password
host    testdb          u_trust         127.0.0.2/32            reject
host    testdb          u_trust,u_nobody 127.0.0.0/8            trust
host    ldapdb          all             127.0.0.1/32            ldap ldapserver=127.0.0.1 ldapbasedn="dc=example,dc=net"
EOF
chmod 0644 "$HBA" "$IDENT" "$PGU_TMP/users.txt"

pgu_start <<EOF
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb
otherdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb
rejectdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb
peerdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb
nomatchdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb
ldapdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb

[pgbouncer]
auth_type = hba
auth_hba_file = $HBA
auth_ident_file = $IDENT
EOF

wire() { # db user password [query]: one raw login over TCP, its events
	pgu_try timeout 20 $WIRE startup --port "$PGU_PORT" --database "$1" --user "$2" --password "$3" \
		${4:+--query "$4"}
}

check "host rules pick the method: md5, scram-sha-256 (address + mask), password (@file), trust"
wire testdb u_md5 md5pass "select current_user"
assert_contains "$PGU_OUT" "AUTH md5" "md5 asked for"
assert_contains "$PGU_OUT" "ROW u_md5" "u_md5 in"
wire testdb u_scram scrampass "select current_user"
assert_contains "$PGU_OUT" "AUTH sasl" "SCRAM asked for"
assert_contains "$PGU_OUT" "ROW u_scram" "u_scram in"
wire otherdb u_plain plainpass "select current_user"
assert_contains "$PGU_OUT" "AUTH cleartext" "cleartext asked for (user from @users.txt)"
assert_contains "$PGU_OUT" "ROW u_plain" "u_plain in"
wire testdb u_trust "" "select current_user"
assert_not_contains "$PGU_OUT" "AUTH md5" "no password asked for"
assert_contains "$PGU_OUT" "ROW u_trust" "u_trust in by trust (its 127.0.0.2/32 reject does not match)"

check "a wrong password under an hba method"
wire testdb u_md5 wrong
assert_contains "$PGU_OUT" "ERROR S=FATAL C=08P01 M=password authentication failed" "md5 rule"
wire testdb u_scram wrong
assert_contains "$PGU_OUT" "ERROR S=FATAL C=08P01 M=SASL authentication failed" "scram rule"

check "reject, no matching rule, peer over TCP"
wire rejectdb u_md5 md5pass
assert_contains "$PGU_OUT" "ERROR S=FATAL C=08P01 M=login rejected" "reject rule"
assert_log_contains "rejectdb/u_md5@127.0.0.1"
wire nomatchdb u_md5 md5pass
assert_contains "$PGU_OUT" "ERROR S=FATAL C=08P01 M=no authentication method is found" "no rule"
wire peerdb u_md5 md5pass
assert_contains "$PGU_OUT" "ERROR S=FATAL C=08P01 M=unix socket login rejected" "peer over TCP"

check "an ldap rule (with its options) is accepted; its logins are refused as by a PgBouncer without LDAP"
wire ldapdb u_md5 md5pass
assert_contains "$PGU_OUT" "ERROR S=FATAL C=08P01 M=ldap is not supported by this build" "ldap rule"

check "a user not in auth_file under a trust rule"
wire testdb u_nobody x
assert_contains "$PGU_OUT" 'ERROR S=FATAL C=08P01 M="trust" authentication failed' "unknown user"
assert_log_contains "no such user: u_nobody"

check "local peer with an ident map: root may be u_trust, postgres may be u_md5, nothing else"
out=$(psql -X -A -t -q -h "$PGU_TMP" -p "$PGU_PORT" -U u_trust -d testdb -c "select current_user") ||
	fail "root could not log in as u_trust over the Unix socket"
assert_eq "u_trust" "$out" "root as u_trust (map m)"
pgu_try psql -X -A -t -q -h "$PGU_TMP" -p "$PGU_PORT" -U u_md5 -d testdb -c "select 1"
assert_fails "root as u_md5"
assert_contains "$PGU_OUT" "unix socket login rejected" "refused with PgBouncer's words"
assert_log_contains "ident map m cannot be matched"
if id postgres >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]]; then
	out=$(runuser -u postgres -- psql -X -A -t -q -h "$PGU_TMP" -p "$PGU_PORT" -U u_md5 -d testdb \
		-c "select current_user") || fail "OS user postgres could not log in as u_md5"
	assert_eq "u_md5" "$out" "postgres as u_md5 (map m)"
else
	skip_note "not root: the second OS user of the map is not tried"
fi

check "RELOAD picks up changed rules"
sed -i 's/^host    rejectdb        all             127.0.0.1\/32            reject/host rejectdb all 127.0.0.1\/32 md5/' "$HBA"
PGPASSWORD= pgu_admin "RELOAD" >/dev/null || fail "RELOAD failed"
sleep 0.3
wire rejectdb u_md5 md5pass "select 1"
assert_contains "$PGU_OUT" "ROW 1" "rejectdb now takes md5"

check "over TLS: hostssl cert rules, map= maps a certificate's name to another user"
pgu_stop
C=$PGU_TMP/certs
pgu_make_certs "$C"
cat >"$PGU_TMP/hba-tls.conf" <<'EOF'
hostnossl all     all      all           reject
hostssl   testdb  u_trust  127.0.0.1/32  cert
hostssl   testdb  u_md5    127.0.0.1/32  cert map=cm
hostssl   testdb  u_scram  127.0.0.1/32  cert
hostssl   all     all      all           md5
EOF
printf 'cm u_trust u_md5\n' >"$PGU_TMP/ident-tls.conf"
chmod 0644 "$PGU_TMP/hba-tls.conf" "$PGU_TMP/ident-tls.conf"
pgu_start <<EOF
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb

[pgbouncer]
auth_type = hba
auth_hba_file = $PGU_TMP/hba-tls.conf
auth_ident_file = $PGU_TMP/ident-tls.conf
client_tls_sslmode = verify-full
client_tls_key_file = $C/server.key
client_tls_cert_file = $C/server.crt
client_tls_ca_file = $C/ca.crt
EOF
tls_q() { # user sslmode [more conninfo]: select current_user through the pooler
	psql -X -A -t -q "host=127.0.0.1 port=$PGU_PORT dbname=testdb user=$1 sslmode=$2 ${3:-}" \
		-c "select current_user"
}
CERT="sslcert=$C/client.crt sslkey=$C/client.key"
out=$(tls_q u_trust require "$CERT") || fail "u_trust with its certificate (CN=u_trust) refused"
assert_eq "u_trust" "$out" "hostssl cert: the certificate's name is the user"
out=$(tls_q u_md5 require "$CERT") || fail "u_md5 with the CN=u_trust certificate refused despite map cm"
assert_eq "u_md5" "$out" "hostssl cert map=cm: CN=u_trust may log in as u_md5"
pgu_try tls_q u_scram require "$CERT"
assert_fails "u_scram with the CN=u_trust certificate, no map"
assert_contains "$PGU_OUT" "certificate authentication failed" "a certificate of another name"
assert_log_contains "TLS certificate name mismatch"
out=$(PGPASSWORD=plainpass tls_q u_plain require "$CERT") || fail "u_plain refused"
assert_eq "u_plain" "$out" "a user without a cert rule falls through to hostssl md5"
pgu_stop
pgu_start <<EOF
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb
rejectdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb
nomatchdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb
ldapdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb

[pgbouncer]
auth_type = hba
auth_hba_file = $HBA
auth_ident_file = $IDENT
EOF

if [[ $(basename "$PGUSHER_BIN") != pgbouncer* ]]; then
	check "RELOAD of a broken file keeps the running rules and says file:line (pgusher only)"
	cp "$HBA" "$PGU_TMP/hba.good"
	echo "host all all all gss" >>"$HBA"
	pgu_try pgu_admin "RELOAD"
	assert_log_contains "hba.conf:12: unsupported authentication method \"gss\""
	wire rejectdb u_md5 md5pass "select 1"
	assert_contains "$PGU_OUT" "ROW 1" "still the rules of the last good file"
	wire nomatchdb u_md5 md5pass
	assert_contains "$PGU_OUT" "M=no authentication method is found" "and no more"
	cp "$PGU_TMP/hba.good" "$HBA"

	check "a broken file at start: the pooler does not start (pgusher only)"
	pgu_stop
	echo "host all +admins all trust" >>"$HBA"
	pgu_try timeout 5 "$PGUSHER_BIN" "$PGU_INI"
	assert_fails "start with a broken auth_hba_file"
	assert_contains "$PGU_OUT" "hba.conf:12: group names (+admins) are not supported" "file:line"
	cp "$PGU_TMP/hba.good" "$HBA"
	rm -f "$PGU_TMP/users.txt"
	pgu_try timeout 5 "$PGUSHER_BIN" "$PGU_INI"
	assert_fails "start with an @file that is missing"
	assert_contains "$PGU_OUT" "hba.conf:8: could not read @users.txt" "file:line"
fi

pass
