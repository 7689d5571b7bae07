#!/usr/bin/env bash
# User story: pgusher faces the network: port scanners, HTTP probes, broken or hostile
# clients. Garbage, truncated and oversized startup packets are rejected (connection
# closed, possibly after an 08P01 ErrorResponse) without hurting anybody else; unknown
# users/databases are refused; max_client_conn is enforced with PgBouncer's message while
# the admitted clients keep working; SSLRequest and GSSENCRequest are answered 'N' (no TLS
# configured, no GSSAPI) and the normal startup that follows works.
#
# Validated against PgBouncer 1.18 (PGUSHER_BIN=/usr/sbin/pgbouncer): PASS.
source "$(dirname "$0")/lib.sh"

WIRE="python3 $(dirname "$0")/pgwire.py"

pgu_start <<EOF
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb

[pgbouncer]
pool_mode = transaction
max_client_conn = 5
default_pool_size = 2
max_packet_size = 65536
client_login_timeout = 5
EOF

still_works() {
	local out
	out=$(pgu_psql testdb u_trust -c "select 'alive'") || fail "pooler no longer serves after: $1"
	assert_eq alive "$out" "pooler still serves after $1"
	pgu__alive "$PGU_PID" || fail "pooler process died after: $1"
}

rejected() { # label hex [--close]: send bytes; the pooler must close, any error must be FATAL 08P01
	local label=$1 hex=$2
	shift 2
	check "$label"
	pgu_try $WIRE raw --port "$PGU_PORT" --hex "$hex" --wait 8 "$@"
	echo "$PGU_OUT" | sed 's/^/     /'
	[[ $PGU_OUT == *"CLOSED after"* ]] || fail "$label: connection not closed by the pooler"
	if [[ $PGU_OUT == *ERROR* ]]; then
		[[ $PGU_OUT =~ ERROR\ S=FATAL\ C=08P01 ]] || fail "$label: error is not FATAL 08P01: $PGU_OUT"
		echo "   ok: FATAL 08P01 before closing"
	fi
	[[ $PGU_OUT != *"MSG R"* ]] || fail "$label: pooler started authentication on garbage"
	echo "   ok: connection closed"
	still_works "$label"
}

rejected "HTTP request instead of a startup packet" "$(printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' | od -An -tx1 | tr -d ' \n')"
rejected "random garbage bytes" "deadbeef0102030405060708090a0b0c0d0e0f10"
rejected "startup packet with an unknown protocol version (9.9)" "0000001000090009757365720000"
rejected "startup length field 0x7fffffff (> max_packet_size)" "7fffffff00030000757365720075000000"
rejected "startup length field 1 MB (> max_packet_size=64k)" "0010000000030000757365720075000000"
rejected "startup length field 3 (shorter than its own header)" "00000003"
rejected "truncated startup packet (announces 100 bytes, sends 20), then half-close" \
	"00000064000300007573657200755f7472757374000000" --close

check "startup packet missing the user parameter"
pgu_try $WIRE raw --port "$PGU_PORT" --hex "00000019000300006461746162617365007465737464620000" --wait 8
echo "$PGU_OUT" | sed 's/^/     /'
assert_contains "$PGU_OUT" "ERROR S=FATAL" "refused with an error"
assert_contains "$PGU_OUT" "CLOSED after" "and closed"
still_works "startup without user"

check "startup with an unknown user"
pgu_try $WIRE startup --port "$PGU_PORT" --user no_such_user_x --database testdb
echo "$PGU_OUT" | sed 's/^/     /'
assert_contains "$PGU_OUT" "ERROR S=FATAL" "unknown user refused"
still_works "unknown user"

check "startup with an unknown database"
pgu_try $WIRE startup --port "$PGU_PORT" --user u_trust --database no_such_db_x
echo "$PGU_OUT" | sed 's/^/     /'
assert_contains "$PGU_OUT" "no such database: no_such_db_x" "unknown database refused"
still_works "unknown database"

check "SSLRequest is answered 'N', then a normal startup works on the same connection"
pgu_try $WIRE startup --port "$PGU_PORT" --ssl-first --user u_trust --query "select 'after ssl'"
assert_ok "startup after SSLRequest"
assert_contains "$PGU_OUT" "SSL-REPLY N" "answer to SSLRequest"
assert_contains "$PGU_OUT" "ROW after ssl" "query after SSLRequest"

check "GSSENCRequest is answered 'N', then a normal startup works on the same connection"
pgu_try $WIRE startup --port "$PGU_PORT" --gss-first --user u_trust --query "select 'after gss'"
assert_ok "startup after GSSENCRequest"
assert_contains "$PGU_OUT" "SSL-REPLY N" "answer to GSSENCRequest"
assert_contains "$PGU_OUT" "ROW after gss" "query after GSSENCRequest"

check "psql with sslmode=require is refused (no TLS configured), sslmode=disable works"
pgu_try psql -X -At "host=127.0.0.1 port=$PGU_PORT user=u_trust dbname=testdb sslmode=require" -c "select 1"
assert_fails "sslmode=require without server TLS"
out=$(psql -X -At "host=127.0.0.1 port=$PGU_PORT user=u_trust dbname=testdb sslmode=disable" -c "select 'plain'")
assert_eq plain "$out" "sslmode=disable"

check "max_client_conn=5: 5 clients logged in, the 6th is refused (08P01, as PgBouncer), the 5 keep working"
pgu_try $WIRE maxconn --port "$PGU_PORT" --n 5 --user u_trust --database testdb
echo "$PGU_OUT" | sed 's/^/     /'
assert_ok "maxconn helper ran"
assert_contains "$PGU_OUT" "HELD 5" "5 clients admitted"
assert_contains "$PGU_OUT" "EXTRA-REFUSED" "6th client refused"
assert_contains "$PGU_OUT" "no more connections allowed (max_client_conn)" "error text"
[[ $PGU_OUT =~ ERROR\ S=FATAL\ C=(53300|08P01)\ M=no\ more\ connections ]] ||
	fail "6th client: want FATAL 08P01 (53300 accepted from older builds); got: $PGU_OUT"
echo "   ok: SQLSTATE ${BASH_REMATCH[1]}"
assert_contains "$PGU_OUT" "HELD-QUERIES-OK 5" "the 5 admitted clients still run queries"
# The slots are free again once they disconnect (bounded wait for the pooler to notice).
for ((i = 0; i < 30; i++)); do
	out=$(pgu_psql testdb u_trust -c "select 'slot free'" 2>/dev/null) && break
	sleep 0.2
done
assert_eq "slot free" "$out" "a new client is admitted after the 5 leave"

check "many aborted connections in a row do not leak slots (max_client_conn=5)"
for ((i = 0; i < 20; i++)); do
	$WIRE raw --port "$PGU_PORT" --hex "00000064000300" --close --wait 3 >/dev/null || true
done
still_works "20 truncated connections"

pass
