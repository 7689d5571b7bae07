#!/usr/bin/env bash
# User story: some clients ask for a large result, never read it, send garbage and then
# reset the connection or just sit there. The pooler closes each of them (the garbage is a
# protocol violation) and must free it although its last output can never be delivered:
# freed on the write error of a reset peer, or after a short deadline for a peer that never
# reads. Done past max_client_conn, new clients must still get in, and the pooler's
# sockets, file descriptors and SHOW LISTS counts return to where they were.
#
# Validated against PgBouncer 1.25.2 (PGUSHER_BIN=.../pgbouncer): PASS.
source "$(dirname "$0")/lib.sh"

WIRE="python3 $(dirname "$0")/pgwire.py"
BIG="select repeat('x', 1000) from generate_series(1, 20000)" # 20 MB

pgu_start <<EOF
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb

[pgbouncer]
pool_mode = transaction
max_client_conn = 20
default_pool_size = 5
EOF

admin() { psql -X -A -t -F'|' -P footer=off -h 127.0.0.1 -p "$PGU_PORT" -U postgres -d pgbouncer -c "$1"; }
list_item() { admin 'SHOW LISTS' | awk -F'|' -v k="$1" '$1 == k {print $2}'; }
client_sockets() { admin 'SHOW SOCKETS' | awk -F'|' '$1 == "C"' | wc -l; }
# Descriptors of the pooler that are sockets, less one per server connection: what
# clients and listeners hold (server connections come and go with the pool).
client_fds() {
	local socks servers
	socks=$(find "/proc/$PGU_PID/fd" -lname 'socket:*' 2>/dev/null | wc -l)
	servers=$(admin 'SHOW SERVERS' | grep -c '|' || true)
	echo $((socks - servers))
}
# Wait up to 5 s for the count printed by "$@" to come back to $want.
settles_to() { # want cmd...
	local want=$1 i got
	shift
	for ((i = 0; i < 50; i++)); do
		got=$("$@")
		[[ $got == "$want" ]] && return 0
		sleep 0.1
	done
	echo "$got"
	return 1
}

assert_eq 1 "$(pgu_psql testdb u_trust -c 'select 1')" "warm-up query"
base_used=$(list_item used_clients)
base_sockets=$(client_sockets)
base_fds=$(client_fds)
echo "   baseline: used_clients=$base_used client sockets=$base_sockets client fds=$base_fds"

check "30 clients (max_client_conn = 20) leave a 20 MB result unread, send a bad header and reset"
pgu_try timeout 120 $WIRE unread --port "$PGU_PORT" --n 30 --reset --query "$BIG"
assert_ok "30 unread clients"
assert_contains "$PGU_OUT" "UNREAD-DONE 30" "all 30 logged in: slots came back between them"
pgu_try timeout 60 $WIRE maxconn --port "$PGU_PORT" --n 20
assert_contains "$PGU_OUT" "HELD 20" "20 new clients (max_client_conn) get in afterwards"
assert_contains "$PGU_OUT" "HELD-QUERIES-OK 20" "and all 20 are served"

check "5 clients leave a result unread, send a bad header and keep the connection open"
pgu_bg timeout 60 $WIRE unread --port "$PGU_PORT" --n 5 --hold 30 --query "$BIG"
sleep 3 # 5 x 0.25 s to set them up, then the pooler's deadline
pgu_try timeout 60 $WIRE maxconn --port "$PGU_PORT" --n 20
assert_contains "$PGU_OUT" "HELD 20" "20 new clients get in while those 5 still sit on their sockets"
assert_contains "$PGU_OUT" "HELD-QUERIES-OK 20" "and all 20 are served"

check "SHOW LISTS, SHOW SOCKETS and the pooler's descriptors are back to the baseline"
got=$(settles_to "$base_used" list_item used_clients) || fail "used_clients: $got, baseline $base_used"
echo "   ok: used_clients = $base_used"
got=$(settles_to "$base_sockets" client_sockets) || fail "client sockets: $got, baseline $base_sockets"
echo "   ok: client sockets = $base_sockets"
got=$(settles_to "$base_fds" client_fds) || fail "client descriptors: $got, baseline $base_fds"
echo "   ok: client descriptors = $base_fds"
assert_eq 1 "$(pgu_psql testdb u_trust -c 'select 1')" "the pooler still serves"

pass
