#!/usr/bin/env bash
# User story: an operator names the database hosts by DNS (a test DNS server on loopback,
# dnsmasq, authoritative for pgu.test; resolv_conf points pgusher at it) and fails over by
# changing a record. A name with one address serves from it; a name with two serves from
# both, each its own SHOW HOSTS row; a changed record moves new connections and released
# servers to the new address while clients stay connected; a name that does not exist gives
# clients PgBouncer's error at once and serves once created; a DNS server that does not
# answer (or is stopped) gives a bounded error, is logged once per period, and names keep
# their last addresses; target_session_attrs applies across a name's addresses; an AAAA
# answer (::1) connects over IPv6; SHOW DNS_HOSTS / DNS_ZONES show the cache; pgbench -C
# does not look the name up per connection; a zone serial change refreshes names before
# dns_max_ttl.
source "$(dirname "$0")/lib.sh"

admin() { psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U postgres pgbouncer -c "$1"; }
# The server address of a new connection to database $1.
addr_of() { pgu_psql "$1" u_trust -c 'select host(inet_server_addr())' 2>&1; }
# Wait up to $3 s until a new connection to $1 lands on $2.
wait_addr() {
	local i a
	for ((i = 0; i < $3 * 5; i++)); do
		a=$(addr_of "$1" || true)
		[[ $a == "$2" ]] && return 0
		sleep 0.2
	done
	fail "$1: new connections still go to $a, not $2, after $3 s"
}

pgu_dns_start 1
pgu_dns_set one.pgu.test "$PGU_STANDBY1"
pgu_dns_set two.pgu.test "$PGU_STANDBY1" "$PGU_STANDBY2"
pgu_dns_set fo.pgu.test "$PGU_STANDBY1"
pgu_dns_set six.pgu.test ::1
pgu_dns_set rw.pgu.test "$PGU_PRIMARY" "$PGU_STANDBY1"

# IPv6: PostgreSQL listens on 127.0.0.x only, so a forwarder on [::1] stands in for it.
V6PORT=$(pgu_free_port)
pgu_bg python3 -c '
import socket, sys, threading
lport, dport = int(sys.argv[1]), int(sys.argv[2])
srv = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("::1", lport)); srv.listen(64)
def pump(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d: break
            b.sendall(d)
    except OSError: pass
    for s in (a, b):
        try: s.shutdown(socket.SHUT_RDWR)
        except OSError: pass
while True:
    c, _ = srv.accept()
    try: u = socket.create_connection(("127.0.0.1", dport))
    except OSError: c.close(); continue
    for x, y in ((c, u), (u, c)):
        threading.Thread(target=pump, args=(x, y), daemon=True).start()
' "$V6PORT" "$PGU_PGPORT"
for ((i = 0; i < 50; i++)); do
	ss -Hltn "sport = :$V6PORT" | grep -q '::1' && break
	sleep 0.1
done

pgu_start <<CONF
[databases]
one = host=one.pgu.test port=$PGU_PGPORT dbname=testdb
two = host=two.pgu.test port=$PGU_PGPORT dbname=testdb pool_mode=transaction
fo = host=fo.pgu.test port=$PGU_PGPORT dbname=testdb pool_mode=transaction
nx = host=nx.pgu.test port=$PGU_PGPORT dbname=testdb
six = host=six.pgu.test port=$V6PORT dbname=testdb
lit = host=$PGU_STANDBY2 port=$PGU_PGPORT dbname=testdb
rw = host=rw.pgu.test port=$PGU_PGPORT dbname=testdb target_session_attrs=read-write pool_mode=transaction
[pgbouncer]
resolv_conf = $PGU_DNS_RESOLV
dns_max_ttl = 2
dns_nxdomain_ttl = 2
dns_zone_check_period = 1
log_connections = 1
log_disconnections = 1
CONF

check "a name with one address serves from it"
assert_eq "$PGU_STANDBY1" "$(addr_of one)" "one.pgu.test"
hosts=$(admin 'SHOW HOSTS')
assert_contains "$hosts" "one|$PGU_STANDBY1|$PGU_PGPORT|" "SHOW HOSTS row of one"

check "a name with two addresses: two SHOW HOSTS rows, connections spread over both"
hosts=$(admin 'SHOW HOSTS')
assert_contains "$hosts" "two|$PGU_STANDBY1|$PGU_PGPORT|" "first address of two"
assert_contains "$hosts" "two|$PGU_STANDBY2|$PGU_PGPORT|" "second address of two"
assert_eq "two.pgu.test two.pgu.test" "$(awk -F'|' '$1=="two" {print $16}' <<<"$hosts" | xargs)" "hostname column"
assert_eq "" "$(admin 'SHOW HOSTS' | awk -F'|' '$1=="lit" {print $16}')" "no hostname for a literal"
seen=""
for i in 1 2 3 4 5 6 7 8; do seen+=" $(addr_of two)"; done
assert_contains "$seen" "$PGU_STANDBY1" "two served from $PGU_STANDBY1 ($seen)"
assert_contains "$seen" "$PGU_STANDBY2" "two served from $PGU_STANDBY2 ($seen)"

check "target_session_attrs applies across a name's addresses"
for i in 1 2 3 4; do
	assert_eq "$PGU_PRIMARY|f" "$(pgu_psql rw u_trust -F'|' -c 'select host(inet_server_addr()), pg_is_in_recovery()' 2>&1)" "rw connection $i"
done

check "an address literal never touches DNS"
assert_eq "$PGU_STANDBY2" "$(addr_of lit)" "lit"
assert_eq 0 "$(grep -c "query\[.*\] $PGU_STANDBY2 from" "$PGU_DNS_LOG" || true)" "queries for the literal"

check "AAAA: a name resolving to ::1 connects over IPv6"
assert_eq 1 "$(pgu_psql six u_trust -c 'select 1' 2>&1)" "query through six.pgu.test"
assert_contains "$(admin 'SHOW SERVERS' | grep '|six|')" "|::1|$V6PORT|" "SHOW SERVERS: six's server is at ::1"

check "SHOW DNS_HOSTS and SHOW DNS_ZONES: PgBouncer 1.25's columns and the cache"
cols=$(psql -X -A -h 127.0.0.1 -p "$PGU_PORT" -U postgres pgbouncer -c 'SHOW DNS_HOSTS' | head -1)
assert_eq "hostname|ttl|addrs" "$cols" "DNS_HOSTS columns"
cols=$(psql -X -A -h 127.0.0.1 -p "$PGU_PORT" -U postgres pgbouncer -c 'SHOW DNS_ZONES' | head -1)
assert_eq "zonename|serial|count" "$cols" "DNS_ZONES columns"
dh=$(admin 'SHOW DNS_HOSTS')
assert_contains "$dh" "two.pgu.test|" "two is cached"
assert_eq "fo nx one rw six two" "$(cut -d'|' -f1 <<<"$dh" | sed 's/\.pgu\.test$//' | xargs)" "names in name order, as PgBouncer"
assert_contains "$(grep '^two.pgu.test|' <<<"$dh")" "|$PGU_STANDBY1:0,$PGU_STANDBY2:0" "two's addresses"
assert_contains "$(grep '^six.pgu.test|' <<<"$dh")" "|::1:0" "six's AAAA address"
assert_contains "$(grep '^nx.pgu.test|' <<<"$dh")" "|" "nx is cached (negative)"
ttl=$(grep '^one.pgu.test|' <<<"$dh" | cut -d'|' -f2)
((ttl >= 0 && ttl <= 2)) || fail "one's ttl $ttl is not within dns_max_ttl=2"
assert_not_contains "$dh" "$PGU_STANDBY2|" "no literal in the DNS cache"
for ((i = 0; i < 30; i++)); do
	dz=$(admin 'SHOW DNS_ZONES')
	[[ $dz =~ ^pgu\.test\|[1-9] ]] && break
	sleep 0.1
done
assert_contains "$dz" "pgu.test|" "zone pgu.test listed"
serial=$(cut -d'|' -f2 <<<"$dz")
((serial > 0)) || fail "zone serial not learned: $dz"
assert_eq 6 "$(cut -d'|' -f3 <<<"$dz")" "names in zone pgu.test"
lists=$(admin 'SHOW LISTS')
assert_contains "$lists" "dns_names|6" "SHOW LISTS: dns_names"
assert_contains "$lists" "dns_zones|1" "SHOW LISTS: dns_zones"

check "NXDOMAIN: clients get PgBouncer's error at once, SHOW HOSTS shows the DNS error"
t0=$(date +%s%N)
pgu_try pgu_psql nx u_trust -c 'select 1'
ms=$((($(date +%s%N) - t0) / 1000000))
assert_fails "nx"
assert_contains "$PGU_OUT" "server DNS lookup failed" "the client's error"
((ms < 3000)) || fail "the error took $ms ms"
assert_contains "$(admin 'SHOW HOSTS' | grep '^nx|')" "DNS: Domain name not found" "last_error of nx"
assert_log_contains "closing because: server DNS lookup failed"

check "NXDOMAIN then created: serves within dns_nxdomain_ttl"
pgu_dns_set nx.pgu.test "$PGU_STANDBY2"
wait_addr nx "$PGU_STANDBY2" 5
assert_not_contains "$(admin 'SHOW HOSTS' | grep '^nx|')" "Domain name not found" "nx's stand-in is gone"

check "failover by DNS: new connections follow, a connected client stays and moves on release"
pgu_sess_open held fo
assert_eq "$PGU_STANDBY1" "$(pgu_sess_q held 'begin; select host(inet_server_addr());')" "held client, in a transaction"
pgu_dns_set fo.pgu.test "$PGU_STANDBY2"
wait_addr fo "$PGU_STANDBY2" 5
assert_log_contains "DNS: fo.pgu.test now resolves to $PGU_STANDBY2 (was $PGU_STANDBY1)"
assert_eq "$PGU_STANDBY1" "$(pgu_sess_q held 'select host(inet_server_addr());')" "its transaction stays on its server"
assert_eq "$PGU_STANDBY1" "$(pgu_sess_q held 'select host(inet_server_addr()); commit;')" "until it commits"
assert_eq "$PGU_STANDBY2" "$(pgu_sess_q held 'select host(inet_server_addr());')" "the same client, next transaction"
assert_not_contains "$(admin 'SHOW HOSTS')" "fo|$PGU_STANDBY1|" "the old address left fo's backends"
assert_eq 0 "$(admin 'SHOW SERVERS' | grep -c "|fo|none|.*|$PGU_STANDBY1|" || true)" "fo servers on the old address"
pgu_sess_close held

check "pgbench -C looks the name up once per dns_max_ttl, not per connection"
before=$(pgu_dns_queries one.pgu.test)
t0=$(date +%s)
pgu_try pgbench -n -C -T 3 -S -h 127.0.0.1 -p "$PGU_PORT" -U u_trust one
assert_ok "pgbench -C"
secs=$(($(date +%s) - t0 + 1))
conns=$(grep -oE 'number of transactions actually processed: [0-9]+' <<<"$PGU_OUT" | grep -oE '[0-9]+$')
((conns >= 20)) || fail "only $conns connections made: $PGU_OUT"
q=$(($(pgu_dns_queries one.pgu.test) - before))
# A lookup is an A and an AAAA query; one per dns_max_ttl (2 s), one more at the edges.
((q <= 2 * (secs / 2 + 2))) || fail "$q DNS queries for $conns connections in $secs s"
echo "   $conns connections, $q DNS queries in ${secs}s"

check "a DNS server that does not answer: names keep their addresses, new names fail in bounded time"
pgu_dns_pause
sleep 3 # one.pgu.test expires and its lookup times out
assert_eq "$PGU_STANDBY1" "$(addr_of one)" "one keeps its last address"
cat >>"$PGU_INI" <<CONF
[databases]
late = host=late.pgu.test port=$PGU_PGPORT dbname=testdb
CONF
pgu_reload
sleep 0.3
t0=$(date +%s%N)
pgu_try pgu_psql late u_trust -c 'select 1'
ms=$((($(date +%s%N) - t0) / 1000000))
assert_fails "late while the DNS server is silent"
assert_contains "$PGU_OUT" "server DNS lookup failed" "the client's error"
assert_contains "$PGU_OUT" "Timeout" "it says timeout"
((ms < 8000)) || fail "the error took $ms ms"
for i in 1 2 3 4 5 6; do pgu_try pgu_psql late u_trust -c 'select 1'; done
n=$(grep -c "WARNING DNS lookup failed: late.pgu.test" "$PGU_LOG" || true)
((n >= 1 && n <= 3)) || fail "late.pgu.test's failure logged $n times for 7 clients"
assert_contains "$(admin 'SHOW HOSTS' | grep '^one|')" "DNS: Timeout" "SHOW HOSTS: one's DNS error"
pgu_dns_resume
pgu_dns_set late.pgu.test "$PGU_STANDBY1"
wait_addr late "$PGU_STANDBY1" 5
pgu_stop

check "a zone serial change refreshes its names before dns_max_ttl"
pgu_start <<CONF
[databases]
one = host=one.pgu.test port=$PGU_PGPORT dbname=testdb pool_mode=transaction
[pgbouncer]
resolv_conf = $PGU_DNS_RESOLV
dns_max_ttl = 600
dns_zone_check_period = 1
CONF
assert_eq "$PGU_STANDBY1" "$(addr_of one)" "one before"
sleep 1.5 # the zone's first serial is learned
pgu_dns_set one.pgu.test "$PGU_STANDBY2" # dnsmasq bumps the serial when it re-reads hosts
wait_addr one "$PGU_STANDBY2" 5
assert_log_contains "zone 'pgu.test' serial changed"

check "the DNS server stopped: a new name fails at once, a known one keeps serving"
pgu_dns_stop
cat >>"$PGU_INI" <<CONF
[databases]
gone = host=gone.pgu.test port=$PGU_PGPORT dbname=testdb
CONF
pgu_reload
sleep 0.3
t0=$(date +%s%N)
pgu_try pgu_psql gone u_trust -c 'select 1'
ms=$((($(date +%s%N) - t0) / 1000000))
assert_fails "gone with no DNS server"
assert_contains "$PGU_OUT" "server DNS lookup failed: gone.pgu.test" "the client's error"
((ms < 8000)) || fail "the error took $ms ms"
assert_eq "$PGU_STANDBY2" "$(addr_of one)" "one still serves"

pass
