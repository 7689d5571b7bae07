#!/usr/bin/env bash
# User story: one of the "PostgreSQL" servers in pgusher's ini is broken or hostile (a fake,
# fakepg.py, on loopback). It says AuthenticationOk right after SCRAM starts, forges the
# SCRAM signature, starts SASL twice, asks for 10^9 PBKDF2 iterations, asks for a cleartext
# password that server_require_auth = scram-sha-256 forbids, floods ParameterStatus, or
# answers the health check with a 4-byte DataRow. pgusher refuses each login with a clear
# error to the client and a "login refused" line in its log, never sends the forbidden
# password, does not block its event loop, marks such hosts down in its health checks, and
# keeps serving a real database from the same ini. A well-behaved fake (SCRAM done right)
# is served, so the refusals are about the misbehaviour, not about the fake.
# Run it under the ASan build too (PGUSHER_BIN=build-asan/pgusher): no leak, no overread.
#
# Fails on main before proto.c: the fake's row reaches the client after AuthenticationOk
# without a signature, the cleartext password is sent, the flood is accepted, 10^9
# iterations stall the pooler, and the health checks call those hosts up.
source "$(dirname "$0")/lib.sh"

FAKE_OUT=$PGU_TMP/fakepg.out
PORTS=$PGU_TMP/fakepg.ports
pgu_bg python3 "$PGU_LIBDIR/fakepg.py" --user evil --password evilpass --ports-file "$PORTS" \
	good ok-after-sasl bad-signature repeat-sasl iterations cleartext params-flood probe-row \
	>"$FAKE_OUT" 2>&1
for ((i = 0; i < 50; i++)); do
	[[ -s $PORTS ]] && break
	sleep 0.1
done
[[ -s $PORTS ]] || fail "fakepg did not start: $(cat "$FAKE_OUT")"
declare -A FP
while read -r sc port; do FP[$sc]=$port; done <"$PORTS"

fake_db() { # name scenario
	echo "$1 = host=127.0.0.1 port=${FP[$2]} dbname=$1 user=evil password=evilpass"
}

# psql with a hard deadline (a stalled pooler must fail the test, not hang it).
client() { # db sql
	timeout 30 psql -X -A -t -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGU_PORT" -U u_trust \
		-d "$1" -c "$2"
}

real_db_serves() { # what
	pgu_try client realdb "select current_user"
	assert_ok "$1: the real database still serves"
	assert_eq u_scram "$PGU_OUT" "$1: real database logged in with SCRAM as u_scram"
}

refused() { # db expected-message (the start of it)
	pgu_try client "$1" "select 'reached'"
	assert_fails "$1: the client is refused"
	assert_contains "$PGU_OUT" "$2" "$1: the client is told why"
	assert_not_contains "$PGU_OUT" "fake:" "$1: nothing from the fake server reaches the client"
	assert_log_contains "login refused: $2"
}

pgu_start <<EOF
[databases]
realdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb user=u_scram
$(fake_db fake_good good)
$(fake_db fake_okearly ok-after-sasl)
$(fake_db fake_badsig bad-signature)
$(fake_db fake_repeat repeat-sasl)
$(fake_db fake_iter iterations)
$(fake_db fake_clear cleartext)
$(fake_db fake_flood params-flood)

[pgbouncer]
server_require_auth = scram-sha-256
server_login_retry = 1
query_wait_timeout = 20
EOF

check "a well-behaved SCRAM server is served (the fake itself is sound)"
pgu_try client fake_good "select 1"
assert_ok "fake_good login"
assert_eq "fake:good" "$PGU_OUT" "fake_good answers through pgusher"
real_db_serves "at start"

check "AuthenticationOk right after SASL start is refused"
refused fake_okearly "server sent AuthenticationOk before completing SCRAM authentication"

check "a forged server signature is refused"
refused fake_badsig "invalid SCRAM server signature"

check "a second AuthenticationSASL is refused"
refused fake_repeat "server sent AuthenticationSASL twice"

check "10^9 SCRAM iterations are refused at once (the event loop is not blocked)"
t0=$(date +%s.%N)
refused fake_iter "SCRAM authentication failed: server asks for more than 100000 SCRAM iterations"
t1=$(date +%s.%N)
awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a < 5) }' ||
	fail "refusing 10^9 iterations took $(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }') s"
real_db_serves "right after the iteration bomb"

check "a cleartext request gets no password when server_require_auth = scram-sha-256"
refused fake_clear "server requested a cleartext password, which server_require_auth does not allow"
sleep 0.5
assert_not_contains "$(cat "$FAKE_OUT")" "PASSWORD cleartext" "the fake never received the password"

check "thousands of ParameterStatus during login are refused"
refused fake_flood "server sent more than 256 ParameterStatus messages during login"

check "after all that, the real database and the good fake still serve"
real_db_serves "at the end"
pgu_try client fake_good "select 1"
assert_eq "fake:good" "$PGU_OUT" "fake_good still answers"
pgu_try client realdb "select count(*) from generate_series(1, 1000)"
assert_eq 1000 "$PGU_OUT" "a real query on the real database"

# ---------------------------------------------------------------- health probes

admin() { psql -X -At -F'|' -h 127.0.0.1 -p "$PGU_PORT" -U postgres pgbouncer -c "$1"; }
host_row() { # db: "state|last_error" of its only host in SHOW HOSTS
	admin 'SHOW HOSTS' | awk -F'|' -v d="$1" '$1==d {print $4 "|" $14}'
}
wait_host() { # db state error-part
	local row i
	for ((i = 0; i < 100; i++)); do
		row=$(host_row "$1")
		[[ ${row%%|*} == "$2" && $row == *"$3"* ]] && break
		sleep 0.1
	done
	assert_eq "$2" "${row%%|*}" "$1: health check calls the host $2"
	[[ -z $3 ]] || assert_contains "$row" "$3" "$1: SHOW HOSTS says why"
}

pgu_start <<EOF
[databases]
realdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb user=u_scram
$(fake_db probe_good good)
$(fake_db probe_okearly ok-after-sasl)
$(fake_db probe_badsig bad-signature)
$(fake_db probe_iter iterations)
$(fake_db probe_clear cleartext)
$(fake_db probe_row probe-row)

[pgbouncer]
server_require_auth = scram-sha-256
health_check_user = evil
health_check_password = evilpass
health_check_period = 0.5
health_check_timeout = 2
health_check_fall = 1
health_check_rise = 1
EOF

check "health probes share the login rules: hostile hosts are down, sound ones up"
wait_host probe_good up ""
wait_host probe_okearly down "AuthenticationOk before completing SCRAM"
wait_host probe_badsig down "invalid SCRAM server signature"
wait_host probe_iter down "more than 100000 SCRAM iterations"
wait_host probe_row down "malformed health check result"
# Refused by server_require_auth: the host answered, so it is alive; no password went out.
wait_host probe_clear up ""
assert_not_contains "$(cat "$FAKE_OUT")" "PASSWORD cleartext" "the probe never sent the password"
assert_log_contains "host 127.0.0.1:${FP[ok-after-sasl]} is down: login failed: server sent AuthenticationOk"
real_db_serves "with hostile hosts under health checks"
pgu_try client probe_good "select 1"
assert_eq "fake:good" "$PGU_OUT" "probe_good serves clients"

pass
