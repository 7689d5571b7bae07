#!/usr/bin/env bash
# Story: the TCP settings reach the sockets, as PgBouncer's do: tcp_keepalive and
# tcp_keepidle on client and server connections (seen as the kernel's keepalive timer in
# ss), and a reload changes them for the connections made afterwards. (On Linux pgusher
# sets them once on the listener, from which accepted sockets take them.)
. "$(dirname "$0")/lib.sh"

command -v ss >/dev/null || fail "ss (iproute2) is needed"

cat >"$PGU_TMP/body.ini" <<EOF2
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb
[pgbouncer]
pool_mode = session
tcp_keepalive = 1
tcp_keepidle = 37
tcp_keepintvl = 11
tcp_keepcnt = 4
tcp_user_timeout = 9000
tcp_socket_buffer = 65536
EOF2
pgu_start "$PGU_TMP/body.ini"

# Seconds left on the keepalive timer of the established socket with local port $1
# ("none" without one). Several sockets: the largest.
keepalive_left() {
	ss -Htno state established "( sport = :$1 )" |
		awk 'match($0, /timer:\(keepalive,[0-9.]+(min|sec|ms)/) {
			t = substr($0, RSTART + 17, RLENGTH - 17)
			v = t + 0
			if (t ~ /min/) v *= 60; else if (t ~ /ms/) v /= 1000
			if (v > best) best = v
			found = 1
		}
		END { if (found) printf "%d\n", best; else print "none" }'
}
# Client sockets of the pooler: local port = listen_port, peer = psql.
client_keepalive() { keepalive_left "$PGU_PORT"; }
server_local_port() { # by column name: PgBouncer versions differ in SHOW SERVERS columns
	psql -X -A -F'|' -h 127.0.0.1 -p "$PGU_PORT" -U postgres pgbouncer -c 'SHOW SERVERS' |
		awk -F'|' 'NR == 1 { for (i = 1; i <= NF; i++) { if ($i == "local_port") lp = i; if ($i == "database") d = i } next }
			$d == "testdb" { print $lp; exit }'
}
fresh_session() { # close the held sessions, open one new idle session on testdb
	pgu_release_holds
	sleep 0.5
	pgu_hold testdb u_trust
	pgu_wait_clients testdb 1
	sleep 1
}

check "tcp_keepidle=37: client and server connections carry a keepalive timer of at most 37 s"
fresh_session
left=$(client_keepalive)
[[ $left != none ]] && ((left >= 25 && left <= 37)) || fail "client socket keepalive timer: '$left' (want 25..37 s)"
echo "   ok: client socket keepalive timer ${left} s"
lport=$(server_local_port)
[[ -n $lport ]] || fail "no server connection in SHOW SERVERS"
left=$(keepalive_left "$lport")
[[ $left != none ]] && ((left >= 25 && left <= 37)) || fail "server socket keepalive timer: '$left' (want 25..37 s)"
echo "   ok: server socket keepalive timer ${left} s"
assert_not_contains "$(cat "$PGU_LOG")" "not implemented" "no 'not implemented' warning for the tcp settings"

check "RELOAD with tcp_keepidle=300: new client connections take it, the pooler keeps serving"
sed -i 's/^tcp_keepidle = 37/tcp_keepidle = 300/' "$PGU_INI"
psql -X -h 127.0.0.1 -p "$PGU_PORT" -U postgres pgbouncer -c 'RELOAD' >/dev/null || fail "RELOAD"
fresh_session
left=$(client_keepalive)
[[ $left != none ]] && ((left > 37 && left <= 300)) || fail "client keepalive after reload: '$left' (want 38..300 s)"
echo "   ok: new client socket keepalive timer ${left} s"

check "SET tcp_keepalive = 0: new client connections have no keepalive timer"
psql -X -h 127.0.0.1 -p "$PGU_PORT" -U postgres pgbouncer -c 'SET tcp_keepalive = 0' >/dev/null || fail "SET"
fresh_session
assert_eq "none" "$(client_keepalive)" "keepalive timer on a client socket after SET tcp_keepalive = 0"
assert_eq "1" "$(psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U u_trust testdb -c 'select 1')" "a query still works"

pgu_release_holds
pass
