#!/usr/bin/env bash
# Story: pgusher talks TLS to PostgreSQL (server_tls_*). The cluster has ssl=on and a pg_hba
# that accepts the test users over hostssl only. require encrypts (pg_stat_ssl says so) and
# SHOW SERVERS shows the cipher; verify-full accepts a certificate naming the IP connected to
# and refuses one that does not (per host of a multi-host database: the other host serves);
# a wrong CA is refused; disable gets the server's pg_hba refusal; health checks log in over
# TLS (SHOW HOSTS up, roles right) and report a certificate failure in last_error; reads
# spread over both standbys over TLS; cancel works; a RELOAD that changes server TLS
# replaces servers as they are released (one that changes nothing replaces none). A node
# presenting an expired certificate is refused under verify-ca (last_error says "certificate
# has expired", the client of its database gets query_wait_timeout, the others serve) and
# accepted under require.
#
# Against PgBouncer 1.25.2, server side: a certificate failure gives the client FATAL 08P01
# "query_wait_timeout" after query_wait_timeout in both; pgusher adds why no server was
# available to that message and, unlike PgBouncer (whose log says only "certificate verify
# failed"), names OpenSSL's reason in the log and in SHOW HOSTS last_error, and marks the host
# down so the other hosts serve. A server refusing the login (pg_hba) reaches the client word
# for word with its SQLSTATE in both. PGUSHER_BIN=.../pgbouncer runs the part both share
# ("clients' view": what the client gets).
# Runs its own cluster (it turns ssl on and rewrites pg_hba): PGUSHER_TLSSV_CLUSTER_DIR
# (default /tmp/pgusher-cluster-tlssv), PGUSHER_TLSSV_PGPORT (default 15520).
PGU_OWN_CLUSTER=tlssv:15520
. "$(dirname "$0")/lib.sh"

eval "$("$PGU_LIBDIR/cluster.sh" env)"
P=$PGU_PRIMARY S1=$PGU_STANDBY1 S2=$PGU_STANDBY2 PORT=$PGU_PGPORT
APP=pgu-tlssv-$$
CERTS=$PGUSHER_CLUSTER_DIR/certs

direct() { PGSSLMODE=require psql -X -At -q -h "$1" -p "$PORT" -U postgres testdb -c "$2"; }

# Certificates: pgu_make_certs's. "server" (signed by ca) names 127.0.0.1-3; "noname" (signed by
# ca too) names only elsewhere.example; "expired" (ca) names them all but expired in 2020; ca2 is
# an unrelated CA. Node n2 (127.0.0.3) presents "noname", the others "server".
pgu_make_certs "$CERTS"
pgu_cluster_tls "$CERTS" server server noname

pgu_user u_trust ""

start_with() { # sslmode [extra global settings]
	pgu_start <<EOF
[databases]
testdb = host=$P port=$PORT dbname=testdb application_name=$APP
nonamedb = host=$S2 port=$PORT dbname=testdb
twohosts = host=$S1,$S2 port=$PORT dbname=testdb target_session_attrs=standby
reads = host=$S1,$S2 port=$PORT dbname=testdb target_session_attrs=standby

[pgbouncer]
pool_mode = transaction
default_pool_size = 4
server_tls_sslmode = $1
query_wait_timeout = 4
server_login_retry = 1
health_check_period = 1
health_check_timeout = 3
log_connections = 1
${2:-}
EOF
}

# refusals: what a client sees when its server refuses pgusher, the same against PgBouncer
# 1.25.2 (PGUSHER_BIN=.../pgbouncer runs only this): no health check settings, no multi-host.
wire() { python3 "$PGU_LIBDIR/pgwire.py" startup --port "$PGU_PORT" --user u_trust --database "$1" --query "select 1"; }
refusals_start() { # sslmode [extra global settings]
	pgu_start <<EOF
[databases]
okdb = host=$P port=$PORT dbname=testdb
expdb = host=$S1 port=$PORT dbname=testdb
nonamedb = host=$S2 port=$PORT dbname=testdb

[pgbouncer]
pool_mode = transaction
server_tls_sslmode = $1
query_wait_timeout = 3
server_login_retry = 1
${2:-}
EOF
}
refusals() {
	pgu_node_cert 1 "$CERTS" expired
	check "clients' view, verify-full: an expired certificate, one not naming the host: FATAL 08P01 query_wait_timeout; others served"
	refusals_start verify-full "server_tls_ca_file = $CERTS/ca.crt"
	pgu_try wire okdb
	assert_contains "$PGU_OUT" "ROW 1" "okdb ($P, right certificate) is served"
	local db
	for db in expdb nonamedb; do
		pgu_try wire $db
		assert_contains "$PGU_OUT" "ERROR S=FATAL C=08P01 M=query_wait_timeout" "$db: the client's error"
		assert_not_contains "$PGU_OUT" "ROW" "$db: no row"
	done
	pgu_try wire okdb
	assert_contains "$PGU_OUT" "ROW 1" "okdb is still served"
	check "clients' view, verify-ca with the wrong CA: FATAL 08P01 query_wait_timeout"
	refusals_start verify-ca "server_tls_ca_file = $CERTS/ca2.crt"
	pgu_try wire okdb
	assert_contains "$PGU_OUT" "ERROR S=FATAL C=08P01 M=query_wait_timeout" "okdb: the client's error"
	check "clients' view, disable against hostssl-only: the server's FATAL word for word with its SQLSTATE"
	refusals_start disable
	pgu_try pgu_q okdb -c 'select 1'
	assert_fails "plaintext login to a hostssl-only server"
	assert_contains "$PGU_OUT" "no encryption" "psql shows the server's pg_hba refusal"
	pgu_try wire okdb
	assert_contains "$PGU_OUT" "ERROR S=FATAL C=28000 M=no pg_hba.conf entry for host \"127.0.0.1\", user \"u_trust\", database \"testdb\", no encryption" \
		"the server's FATAL, unprefixed"
	pgu_stop
	pgu_node_cert 1 "$CERTS" server
}
if [[ $(basename "$PGUSHER_BIN") == pgbouncer* ]]; then
	refusals
	pass
fi

# ---------------------------------------------------------------- require
start_with require "health_check_user = u_trust"
check "server_tls_sslmode=require: queries work against a hostssl-only server"
assert_eq 42 "$(pgu_q testdb -c 'select 42')" "query through pgusher"
check "pg_stat_ssl on the primary shows the pooler's connection encrypted"
out=$(direct "$P" "select s.ssl, s.version from pg_stat_ssl s join pg_stat_activity a using (pid) where a.usename = 'u_trust' and a.datname = 'testdb'")
assert_contains "$out" "t|TLSv1" "pg_stat_ssl row of the pooler's server connection"
check "SHOW SERVERS shows the TLS protocol and cipher in the tls column"
out=$(pgu_admin 'SHOW SERVERS')
assert_contains "$out" "|TLSv1." "tls column of SHOW SERVERS"
out=$(pgu_admin 'SHOW SOCKETS')
assert_contains "$out" "|TLSv1." "tls column of SHOW SOCKETS"
check "health checks log in over TLS: hosts up with the right roles"
pgu_wait_for 10 "reads/$S1 up" pgu_host_is reads "$S1" 4 up
pgu_wait_for 10 "reads/$S2 up" pgu_host_is reads "$S2" 4 up
assert_eq standby "$(pgu_host_field reads "$S1" 5)" "role of $S1"
assert_eq primary "$(pgu_host_field testdb "$P" 5)" "role of $P"
n=$(direct "$P" "select count(*) from pg_stat_ssl s join pg_stat_activity a using (pid) where a.application_name = 'pgusher health check' and s.ssl")
((n >= 1)) || fail "no encrypted health check connection on the primary (got $n)"
echo "   ok: $n encrypted health check connection(s) on the primary"

check "a multi-host reads database spreads over both standbys over TLS"
for _ in $(seq 1 40); do pgu_q reads -c 'select inet_server_addr()'; done | sort | uniq -c >"$PGU_TMP/spread"
cat "$PGU_TMP/spread"
grep -q "$S1" "$PGU_TMP/spread" || fail "no read reached $S1"
grep -q "$S2" "$PGU_TMP/spread" || fail "no read reached $S2"
n=$(direct "$S1" "select count(*) from pg_stat_ssl s join pg_stat_activity a using (pid) where a.backend_type = 'client backend' and not s.ssl and a.usename = 'u_trust'")
assert_eq 0 "$n" "no plaintext u_trust connection on $S1"

check "cancel reaches the right server (CancelRequest in plaintext is accepted)"
PGAPPNAME=$APP-c psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U u_trust testdb -c 'select pg_sleep(30)' \
	>"$PGU_TMP/cancel.out" 2>&1 &
cpid=$!
PGU_BG_PIDS+=("$cpid")
pgu_wait_for 10 "pg_sleep running on the primary" \
	bash -c "[[ \$(PGSSLMODE=require psql -X -At -h $P -p $PORT -U postgres testdb -c \"select count(*) from pg_stat_activity where query like 'select pg_sleep(30)%' and state='active'\") == 1 ]]"
kill -INT "$cpid"
for _ in $(seq 1 100); do kill -0 "$cpid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$cpid" 2>/dev/null && fail "psql still running 10 s after the cancel"
wait "$cpid" || true
assert_contains "$(cat "$PGU_TMP/cancel.out")" "canceling statement due to user request" "cancelled query"
assert_eq alive "$(pgu_q testdb -c "select 'alive'")" "pooler usable after the cancel"

check "RELOAD that changes no server TLS setting replaces no server connection"
pgu_q testdb -c 'select 1' >/dev/null
before=$(pgu_admin 'SHOW SERVERS' | awk -F'|' '$3=="testdb" {print $NF}' | sort | tr '\n' ' ')
pgu_reload
sleep 1
for _ in 1 2 3; do pgu_q testdb -c 'select 1' >/dev/null; done
after=$(pgu_admin 'SHOW SERVERS' | awk -F'|' '$3=="testdb" {print $NF}' | sort | tr '\n' ' ')
assert_eq "$before" "$after" "testdb server ids after a no-op RELOAD"

check "RELOAD to verify-full (right CA): servers made under require are closed as released"
sed -i "s|^server_tls_sslmode = require|server_tls_sslmode = verify-full\nserver_tls_ca_file = $CERTS/ca.crt|" "$PGU_INI"
pgu_reload
sleep 1
for _ in 1 2 3; do assert_eq 1 "$(pgu_q testdb -c 'select 1')" "query after RELOAD"; done
assert_log_contains "obsolete connection" 5
after2=$(pgu_admin 'SHOW SERVERS' | awk -F'|' '$3=="testdb" {print $NF}' | sort | tr '\n' ' ')
for id in $before; do
	[[ " $after2 " == *" $id "* ]] && fail "server $id made under require still there after RELOAD ($after2)"
done
echo "   ok: servers $before replaced by $after2"

# ---------------------------------------------------------------- verify-full, per host
check "verify-full: 127.0.0.1 (IP SAN) works"
assert_eq 1 "$(pgu_q testdb -c 'select 1')" "verify-full to $P"
check "verify-full: a certificate without the host's name fails with a clear error"
pgu_try pgu_q nonamedb -c 'select 1'
assert_fails "query to a host whose certificate does not name it"
echo "   client saw: $PGU_OUT"
assert_log_contains "TLS handshake error: certificate verify failed: IP address mismatch" 5
check "verify-full, multi-host: the host whose certificate does not name it is down with the reason; the other serves"
pgu_wait_for 10 "twohosts/$S2 down" pgu_host_is twohosts "$S2" 4 down
assert_contains "$(pgu_host_field twohosts "$S2" 14)" "IP address mismatch" "last_error of $S2"
assert_eq up "$(pgu_host_field twohosts "$S1" 4)" "state of $S1"
for _ in 1 2 3 4 5; do assert_eq "$S1" "$(pgu_q twohosts -c 'select inet_server_addr()')" "twohosts read served by $S1"; done
pgu_stop

# ---------------------------------------------------------------- wrong CA
check "verify-ca with the wrong CA: login fails with the certificate error; probes say so in last_error"
start_with verify-ca "server_tls_ca_file = $CERTS/ca2.crt
health_check_user = u_trust"
pgu_try pgu_q testdb -c 'select 1'
assert_fails "query with a wrong CA"
assert_log_contains "TLS handshake error: certificate verify failed" 5
pgu_wait_for 10 "testdb/$P down with a certificate error" pgu_host_has testdb "$P" 14 "certificate verify failed"
echo "   last_error: $(pgu_host_field testdb "$P" 14)"
check "RELOAD with the right CA: the host is probed up again and serves, no restart"
sed -i "s|^server_tls_ca_file = .*|server_tls_ca_file = $CERTS/ca.crt|" "$PGU_INI"
pgu_reload
pgu_wait_for 10 "testdb/$P up after the RELOAD" pgu_host_is testdb "$P" 4 up
assert_eq 1 "$(pgu_q testdb -c 'select 1')" "verify-ca with the right CA after RELOAD"
pgu_stop

check "liveness-only probes (no health_check_user) check the certificate in verify-ca too"
start_with verify-ca "server_tls_ca_file = $CERTS/ca2.crt"
pgu_wait_for 10 "testdb/$P down with a certificate error (liveness probe)" pgu_host_has testdb "$P" 14 "certificate verify failed"
pgu_stop
start_with verify-ca "server_tls_ca_file = $CERTS/ca.crt"
pgu_wait_for 10 "testdb/$P up (liveness probe, right CA)" pgu_host_is testdb "$P" 4 up
assert_eq 1 "$(pgu_q testdb -c 'select 1')" "verify-ca with the right CA"
pgu_stop

# ---------------------------------------------------------------- expired
check "verify-ca, $S2 presents an expired certificate: its login fails cleanly, last_error says expired, the others serve"
pgu_node_cert 2 "$CERTS" expired
start_with verify-ca "server_tls_ca_file = $CERTS/ca.crt
health_check_user = u_trust"
pgu_try python3 "$PGU_LIBDIR/pgwire.py" startup --port "$PGU_PORT" --user u_trust --database nonamedb --query "select 1"
echo "   client saw: $PGU_OUT"
assert_contains "$PGU_OUT" "ERROR S=FATAL C=08P01 M=query_wait_timeout" "the client gets PgBouncer's query_wait_timeout (08P01)"
assert_not_contains "$PGU_OUT" "ROW" "no row"
assert_log_contains "TLS handshake error: certificate verify failed: certificate has expired" 5
pgu_wait_for 10 "twohosts/$S2 down" pgu_host_is twohosts "$S2" 4 down
assert_contains "$(pgu_host_field twohosts "$S2" 14)" "certificate has expired" "last_error of $S2"
for _ in 1 2 3; do assert_eq "$S1" "$(pgu_q twohosts -c 'select inet_server_addr()')" "twohosts read served by $S1"; done
assert_eq 1 "$(pgu_q testdb -c 'select 1')" "testdb ($P) served meanwhile"
pgu_stop
check "require does not check the certificate's dates (as libpq's require)"
start_with require
assert_eq 1 "$(pgu_q nonamedb -c 'select 1')" "require to $S2 with its expired certificate"
pgu_stop
pgu_node_cert 2 "$CERTS" noname

# ---------------------------------------------------------------- what clients see
refusals
pass
