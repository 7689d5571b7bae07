#!/usr/bin/env bash
# Story: two pgusher processes share one port (so_reuseport) to use two cores, peered with
# peer_id and [peers] so that a cancel request the kernel hands to the other process still
# cancels the right query: the cancel key carries the peer id, the other process forwards
# the request to its owner over the owner's Unix socket. Long queries started from a dozen
# connections are all cancelled, whichever process each cancel reaches. A cancel for a peer
# that is down, for an unknown peer, or that was forwarded too often is dropped cleanly, and
# everybody else is still served. SHOW PEERS / SHOW PEER_POOLS show the group. A peer given
# by host name (served by a test DNS server on loopback) is resolved as database hosts are
# (dns.c: c-ares, cached, listed by SHOW DNS_HOSTS), follows RELOAD, tries the name's next
# address when one refuses, waits for a first answer still to come, and a name that does not
# resolve drops the cancel with a warning while the pooler serves on. The key
# encoding is PgBouncer 1.21+'s: a PgBouncer 1.25.2 process in the group (when the oracle is
# at hand) forwards pgusher's cancels and has its own forwarded to it.
. "$(dirname "$0")/lib.sh"
W=(python3 "$PGU_LIBDIR/pgwire.py" --user u_trust --database testdb)
PORT=$(pgu_free_port)
A=$PGU_TMP/a B=$PGU_TMP/b
mkdir -p "$A" "$B"
chmod 0777 "$A" "$B"
# Peer 2's own TCP address when [peers] names it by host name (the shared port on 127.0.0.1
# could hand a forward back to process 1); NOPE: an address where nothing listens.
PEER2_ADDR=${PGU_PEER2_ADDR:-127.0.0.6} NOPE_ADDR=${PGU_NOPE_ADDR:-127.0.0.5}
pgu_dns_start 1
pgu_start <<EOF
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb
[pgbouncer]
listen_port = $PORT
so_reuseport = 1
unix_socket_dir = $A
peer_id = 1
pool_mode = transaction
default_pool_size = 20
resolv_conf = $PGU_DNS_RESOLV
dns_max_ttl = 1
dns_nxdomain_ttl = 1
[peers]
1 = host=$A port=$PORT
2 = host=$B port=$PORT
EOF
sed -e 's/^peer_id = 1$/peer_id = 2/' -e "s|^unix_socket_dir = .*|unix_socket_dir = $B|" \
	-e "s|^logfile = .*|logfile = $B/pgusher.log|" -e "s|^pidfile = .*|pidfile = $B/pgusher.pid|" \
	"$PGU_INI" >"$B/b.ini"
start_b() { # binary ini [user]
	if [[ -n ${3:-} ]]; then
		pgu_bg setpriv --reuid="$3" --regid="$3" --init-groups -- "$1" "$2"
	else
		pgu_bg "$1" "$2"
	fi
	B_PID=$PGU_BG_PID
	b_up() { [[ -S $B/.s.PGSQL.$PORT ]] && psql -X -At -h "$B" -p "$PORT" -U u_trust testdb -c 'select 1' >/dev/null 2>&1; }
	pgu_wait_for 10 "the second process answers on $B" b_up
}
stop_b() {
	kill "$B_PID" 2>/dev/null || true
	wait "$B_PID" 2>/dev/null || true
	local keep=() p
	for p in "${PGU_BG_PIDS[@]}"; do [[ $p == "$B_PID" ]] || keep+=("$p"); done
	PGU_BG_PIDS=("${keep[@]}") # the test DNS server stays
	rm -f "$B/.s.PGSQL.$PORT"
}
start_b "$PGUSHER_BIN" "$B/b.ini"
set_peer2() { # host: process 1's [peers] entry for peer 2 is host=$1 from the next RELOAD
	sed -i "s|^2 = host=.*|2 = host=$1 port=$PORT|" "$PGU_INI"
}
admin_a() { timeout 10 psql -X -At -q -F'|' -h "$A" -p "$PORT" -U postgres pgbouncer -c "$1"; } # process 1
cancel() { # query-host cancel-host [extra pgwire args]: one long query cancelled through cancel-host
	local qh=$1 ch=$2
	shift 2
	pgu_try timeout 30 "${W[@]}" cancel --host "$qh" --port "$PORT" --cancel-host "$ch" --cancel-port "$PORT" --seconds 15 "$@"
}

check "a query on one process is cancelled through the other (the cancel is forwarded), both ways"
cancel "$A" "$B"
assert_contains "$PGU_OUT" "CANCELED 57014" "query on process 1, cancel sent to process 2"
cancel "$B" "$A"
assert_contains "$PGU_OUT" "CANCELED 57014" "query on process 2, cancel sent to process 1"
key=$(sed -n 's/^KEY //p' <<<"$PGU_OUT")
[[ ${key:2:4} == 0200 ]] || fail "process 2's cancel key $key does not carry peer id 2 in bytes 1-2"
echo "   ok: keys carry the peer id ($key)"
assert_contains "$(cat "$PGU_LOG")" "successfully sent cancel request" "process 1 logs the forward"

check "a dozen connections on the shared port: every long query is cancelled, whichever process gets the cancel"
for i in $(seq 12); do
	cancel 127.0.0.1 127.0.0.1
	assert_contains "$PGU_OUT" "CANCELED 57014" "connection $i"
done
na=$(grep -c "login attempt: db=testdb" "$PGU_LOG" || true)
nb=$(grep -c "login attempt: db=testdb" "$B/pgusher.log" || true)
echo "   logins: process 1 $na, process 2 $nb"
((na > 1 && nb > 1)) || fail "the kernel did not spread the connections over both processes ($na / $nb)"
nf=$(cat "$PGU_LOG" "$B/pgusher.log" | grep -c "successfully sent cancel request" || true)
echo "   cancels forwarded to the other process: $nf"
((nf > 2)) || fail "no cancel of the shared port needed forwarding ($nf): the test proves nothing"

check "SHOW PEERS and SHOW PEER_POOLS list the group (own entry left out of PEER_POOLS)"
assert_eq "1|$A|$PORT|20
2|$B|$PORT|20" "$(admin_a 'SHOW PEERS')" "SHOW PEERS"
assert_eq "2|0|0|0|0" "$(admin_a 'SHOW PEER_POOLS')" "SHOW PEER_POOLS after the forwards are done"

check "cancel requests that cannot be forwarded are dropped cleanly; the query runs on, others are served"
# bytes 1-2: peer id (little-endian); low 2 bits of byte 7: hops left
cancel "$A" "$A" --hex "00070012345678ff" --seconds 2
assert_contains "$PGU_OUT" "NOT-CANCELED completed" "a key naming unknown peer 7"
assert_log_contains "cancel request for unknown peer"
cancel "$A" "$A" --hex "00020012345678fc" --seconds 2
assert_contains "$PGU_OUT" "NOT-CANCELED completed" "a key for peer 2 with no hop left"
assert_log_contains "forwarded too many times"
stop_b
cancel "$A" "$A" --hex "00020012345678ff" --seconds 2
assert_contains "$PGU_OUT" "NOT-CANCELED completed" "a key for peer 2 while it is down"
assert_log_contains "cancel request to peer 2"
assert_eq "1" "$(psql -X -At -h "$A" -p "$PORT" -U u_trust testdb -c 'select 1')" "process 1 still serves"
assert_eq "2|0|0|0|0" "$(admin_a 'SHOW PEER_POOLS')" "nothing left in flight"

PGB=/work/shared/ref/pgbouncer-1.25.2/pgbouncer
if [[ -x $PGB ]] && [[ $(basename "$PGUSHER_BIN") != pgbouncer ]] && id postgres >/dev/null 2>&1; then
	check "a PgBouncer 1.25.2 process as peer 2: cancels are forwarded both ways (same key encoding)"
	# Unix socket only (its user may not share root's TCP port).
	sed -e 's/^listen_addr = .*/listen_addr =/' -e '/^so_reuseport/d' -e "s|^logfile = .*|logfile = $B/pgb.log|" \
		-e "s|^pidfile = .*|pidfile = $B/pgb.pid|" "$B/b.ini" >"$B/pgb.ini"
	chmod 0644 "$B/pgb.ini" "$PGU_USERLIST"
	start_b "$PGB" "$B/pgb.ini" postgres
	cancel "$A" "$B"
	assert_contains "$PGU_OUT" "CANCELED 57014" "query on pgusher, cancel sent to PgBouncer"
	cancel "$B" "$A"
	assert_contains "$PGU_OUT" "CANCELED 57014" "query on PgBouncer, cancel sent to pgusher"
	stop_b
fi

check "a peer given by host name: resolved through the DNS cache (SHOW DNS_HOSTS), cancels forwarded there"
pgu_dns_set peer2.pgu.test "$PEER2_ADDR"
sed -i "s|^listen_addr = .*|listen_addr = 127.0.0.1,$PEER2_ADDR|" "$B/b.ini"
start_b "$PGUSHER_BIN" "$B/b.ini"
set_peer2 peer2.pgu.test
pgu_reload_wait
cancel "$B" "$A"
assert_contains "$PGU_OUT" "CANCELED 57014" "query on process 2, cancel sent to process 1, forwarded to peer2.pgu.test"
assert_log_contains "peer-2@$PEER2_ADDR:$PORT closing because: successfully sent cancel request"
assert_contains "$(admin_a 'SHOW DNS_HOSTS')" "peer2.pgu.test|" "SHOW DNS_HOSTS on process 1 lists the peer's name"
assert_contains "$(admin_a 'SHOW DNS_HOSTS' | grep '^peer2.pgu.test|')" "|$PEER2_ADDR:" "its address"
assert_contains "$(admin_a 'SHOW PEERS')" "2|peer2.pgu.test|$PORT|" "SHOW PEERS shows the name"
[[ $(pgu_dns_queries peer2.pgu.test) -gt 0 ]] || fail "the test DNS server was never asked for peer2.pgu.test"

check "the name's first address refuses: the forward goes on to its next address"
pgu_dns_set peer2.pgu.test "$NOPE_ADDR" "$PEER2_ADDR"
both() { [[ $(admin_a 'SHOW DNS_HOSTS' | grep '^peer2.pgu.test|') == *"$NOPE_ADDR:"*"$PEER2_ADDR:"* ]]; }
pgu_wait_for 5 "process 1 has both addresses of peer2.pgu.test (dns_max_ttl = 1)" both
cancel "$B" "$A"
assert_contains "$PGU_OUT" "CANCELED 57014" "cancelled through the second address"
assert_log_contains "cancel request to peer 2 (peer-2@$NOPE_ADDR:$PORT)"
pgu_dns_set peer2.pgu.test "$PEER2_ADDR"

check "a name with no answer yet: the cancel waits for it (SHOW PEER_POOLS cl_waiting), then goes"
pgu_dns_set peer2b.pgu.test "$PEER2_ADDR"
pgu_dns_pause
set_peer2 peer2b.pgu.test
pgu_reload_wait
cancel_out=$PGU_TMP/cancel.out
"${W[@]}" cancel --host "$B" --port "$PORT" --cancel-host "$A" --cancel-port "$PORT" --seconds 15 >"$cancel_out" 2>&1 &
cancel_pid=$!
waiting() { [[ $(admin_a 'SHOW PEER_POOLS') == "2|0|1|0|0" ]]; }
pgu_wait_for 2 "the forwarded cancel waits for peer2b.pgu.test's answer" waiting
pgu_dns_resume
wait "$cancel_pid" || true
assert_contains "$(cat "$cancel_out")" "CANCELED 57014" "cancelled once the name resolved"
assert_contains "$(admin_a 'SHOW DNS_HOSTS')" "peer2b.pgu.test|" "SHOW DNS_HOSTS lists peer2b"
assert_eq "2|0|0|0|0" "$(admin_a 'SHOW PEER_POOLS')" "nothing left waiting"

check "a peer name that does not resolve: the cancel is dropped with a warning, the pooler serves on"
set_peer2 nope.pgu.test
pgu_reload_wait
cancel "$B" "$A" --seconds 2
assert_contains "$PGU_OUT" "NOT-CANCELED completed" "the query ran to its end"
assert_log_contains "cancel request to peer 2 (nope.pgu.test:$PORT): DNS lookup failed"
assert_contains "$(admin_a 'SHOW DNS_HOSTS')" "nope.pgu.test|" "SHOW DNS_HOSTS lists the failing name"
assert_eq "1" "$(psql -X -At -h "$A" -p "$PORT" -U u_trust testdb -c 'select 1')" "process 1 still serves"
assert_eq "2|0|0|0|0" "$(admin_a 'SHOW PEER_POOLS')" "nothing left in flight"
stop_b

pass
