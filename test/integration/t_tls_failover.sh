#!/usr/bin/env bash
# Story: a multi-host reads database over server TLS, with PostgreSQL accepting the test users
# over hostssl only (so every server connection and every health check must speak TLS).
#  (a) server_tls_sslmode=verify-full (right CA, IP SANs): reads spread over both standbys,
#      each server connection and health check is encrypted (pg_stat_ssl);
#  (b) a standby is stopped during a read load: only transactions in flight on it at that
#      moment may fail, later ones don't; SHOW HOSTS says down; started again, it is probed
#      up over TLS and serves again;
#  (c) RELOAD to require (servers replaced as they are released), then the other standby is
#      stopped and started: the same.
# Every wait is bounded. Runs its own cluster (it turns ssl on, rewrites pg_hba and stops
# servers): PGUSHER_TLSFO_CLUSTER_DIR / PGUSHER_TLSFO_PGPORT (default port 15532).
PGU_OWN_CLUSTER=tlsfo:15532
. "$(dirname "$0")/lib.sh"

P=$PGU_PRIMARY S1=$PGU_STANDBY1 S2=$PGU_STANDBY2 PORT=$PGU_PGPORT
CERTS=$PGUSHER_CLUSTER_DIR/certs
pgu_make_certs "$CERTS"
pgu_cluster_tls "$CERTS" server server server

direct() { PGSSLMODE=require psql -X -At -q -h "$1" -p "$PORT" -U postgres testdb -c "$2"; }
q() { timeout 15 psql -X -At -q -h 127.0.0.1 -p "$PGU_PORT" -U u_trust "$@"; }
served_by() { q reads -c 'select host(inet_server_addr())'; }
is_field() { [[ $(pgu_host_field "$1" "$2" "$3") == "$4" ]]; }
# plaintext(host): client backends of u_trust on host that are not encrypted
plaintext() {
	direct "$1" "select count(*) from pg_stat_ssl s join pg_stat_activity a using (pid) where a.usename = 'u_trust' and not s.ssl"
}
tls_probes() { # host: encrypted health check connections on host
	direct "$1" "select count(*) from pg_stat_ssl s join pg_stat_activity a using (pid) where a.application_name = 'pgusher health check' and s.ssl"
}
has_tls_probe() { (($(tls_probes "$1") >= 1)); }

pgu_user u_trust ""
pgu_start <<EOF
[databases]
reads = host=$S1,$S2 port=$PORT dbname=testdb target_session_attrs=standby

[pgbouncer]
pool_mode = transaction
default_pool_size = 4
query_wait_timeout = 10
server_tls_sslmode = verify-full
server_tls_ca_file = $CERTS/ca.crt
health_check_user = u_trust
health_check_period = 1
health_check_timeout = 1
health_check_fall = 3
health_check_rise = 2
EOF

# ---------------------------------------------------------------- (a)
check "(a) verify-full: both standbys probed up over TLS, reads spread, nothing in plaintext"
pgu_wait_for 15 "$S1 up as a standby" is_field reads "$S1" 5 standby
pgu_wait_for 15 "$S2 up as a standby" is_field reads "$S2" 5 standby
pgu_wait_for 10 "$S1 up" is_field reads "$S1" 4 up
pgu_wait_for 10 "$S2 up" is_field reads "$S2" 4 up
hosts=$(for _ in $(seq 24); do served_by; done | sort -u | tr '\n' ' ')
assert_eq "$S1 $S2 " "$hosts" "24 reads served by both standbys"
for h in $S1 $S2; do
	assert_eq 0 "$(plaintext "$h")" "no plaintext u_trust connection on $h"
	pgu_wait_for 5 "an encrypted health check connection on $h" has_tls_probe "$h"
done

# stop_start NODE HOST OTHER MODE: (b) for one standby
stop_start() {
	local node=$1 host=$2 other=$3 mode=$4
	check "($mode) $host stopped (immediate) during pgbench -S on reads: failures only at the stop"
	pgu_bg pgu_run_ts "$PGU_TMP/pb-$node.log" pgbench -n -S -T 10 -c 6 -j 2 -h 127.0.0.1 -p "$PGU_PORT" -U u_trust reads
	local pb=$PGU_BG_PID
	sleep 3
	local t_stop=$EPOCHREALTIME
	pgu_node_ctl "$node" -m immediate -w stop
	pgu_wait_for 10 "$host marked down in SHOW HOSTS" is_field reads "$host" 4 down
	echo "   last_error: $(pgu_host_field reads "$host" 14)"
	sleep 1
	local t_after=$EPOCHREALTIME
	# The detection window is over: no failed query from now on.
	pgu_try timeout 30 pgbench -n -S -T 3 -c 4 -j 2 -h 127.0.0.1 -p "$PGU_PORT" -U u_trust reads
	assert_ok "pgbench after the detection window"
	assert_contains "$PGU_OUT" "number of failed transactions: 0 " "0 failed after detection"
	local out
	out=$(for _ in $(seq 10); do served_by 2>&1 || echo FAILED; done | sort | uniq -c | awk '{print $2":"$1}' | tr '\n' ' ')
	assert_eq "$other:10 " "$out" "10 reads while $host is down, all served by $other"
	local i
	for ((i = 0; i < 150; i++)); do kill -0 "$pb" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$pb" 2>/dev/null && fail "the first pgbench did not end within 15 s of its end"
	wait "$pb" || true
	grep -q 'actually processed' "$PGU_TMP/pb-$node.log" || fail "the first pgbench did not finish with a summary:
$(cat "$PGU_TMP/pb-$node.log")"
	local late
	late=$(awk -v k="$t_stop" -v a="$t_after" '/error|aborted|FATAL|ERROR/ && !/Run was aborted/ && ($1 < k - 0.5 || $1 > a) {print}' "$PGU_TMP/pb-$node.log")
	[[ -z $late ]] || fail "the first pgbench had errors outside the stop window [$t_stop, $t_after]:
$late"
	echo "   ok: the first pgbench's errors (if any) were at the stop only"

	check "($mode) $host started again: probed up over TLS and serving reads"
	pgu_node_start "$node"
	pgu_wait_for 20 "$host up in SHOW HOSTS" is_field reads "$host" 4 up
	pgu_wait_for 5 "an encrypted health check connection on $host" has_tls_probe "$host"
	local seen=""
	for ((i = 0; i < 60; i++)); do
		seen+="$(served_by)"$'\n'
		[[ $seen == *"$host"* ]] && break
		sleep 0.2
	done
	[[ $seen == *"$host"* ]] || fail "$host is up again but 60 reads were all served elsewhere (SHOW HOSTS: $(pgu_admin 'SHOW HOSTS' | tr '\n' ';'))"
	echo "   ok: $host serves again (after $((i + 1)) reads)"
	assert_eq 0 "$(plaintext "$host")" "no plaintext u_trust connection on $host"
}

# ---------------------------------------------------------------- (b)
stop_start n2 "$S2" "$S1" b

# ---------------------------------------------------------------- (c)
check "(c) RELOAD to server_tls_sslmode=require: reads go on, servers are replaced"
sed -i 's|^server_tls_sslmode = verify-full|server_tls_sslmode = require|' "$PGU_INI"
pgu_reload
for _ in $(seq 8); do served_by >/dev/null || fail "read after RELOAD"; done
assert_log_contains "obsolete connection" 10
stop_start n1 "$S1" "$S2" c

pass
