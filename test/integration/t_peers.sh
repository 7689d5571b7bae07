#!/usr/bin/env bash
# Story: two pgusher processes share one port (so_reuseport) to use two cores, peered with
# peer_id and [peers] so that a cancel request the kernel hands to the other process still
# cancels the right query: the cancel key carries the peer id, the other process forwards
# the request to its owner over the owner's Unix socket. Long queries started from a dozen
# connections are all cancelled, whichever process each cancel reaches. A cancel for a peer
# that is down, for an unknown peer, or that was forwarded too often is dropped cleanly, and
# everybody else is still served. SHOW PEERS / SHOW PEER_POOLS show the group. The key
# encoding is PgBouncer 1.21+'s: a PgBouncer 1.25.2 process in the group (when the oracle is
# at hand) forwards pgusher's cancels and has its own forwarded to it.
. "$(dirname "$0")/lib.sh"
W=(python3 "$PGU_LIBDIR/pgwire.py" --user u_trust --database testdb)
PORT=$(pgu_free_port)
A=$PGU_TMP/a B=$PGU_TMP/b
mkdir -p "$A" "$B"
chmod 0777 "$A" "$B"
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
	PGU_BG_PIDS=()
	rm -f "$B/.s.PGSQL.$PORT"
}
start_b "$PGUSHER_BIN" "$B/b.ini"
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

pass
