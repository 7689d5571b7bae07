#!/usr/bin/env bash
# Story: Prometheus scrapes pgusher itself (metrics_listen). The exposition parses as the
# text format, or OpenMetrics when asked (a strict checker: promtool is not packaged here),
# and client-chosen names cannot break it; during a pgbench run the
# counters move between two scrapes; the pool gauges say what SHOW POOLS says; a stopped
# standby flips its host gauges and a restarted one flips them back; other paths get 404,
# other methods 405, malformed and oversized requests an error while the pooler keeps
# serving; a hundred idle connections to the endpoint are closed by its deadline and leak
# nothing; RELOAD and SET move the endpoint to another port.
# Runs its own cluster (it stops a standby).
PGU_OWN_CLUSTER=metrics:15551
. "$(dirname "$0")/lib.sh"

P=$PGU_PRIMARY S1=$PGU_STANDBY1 S2=$PGU_STANDBY2 PORT=$PGU_PGPORT
MPORT=$(pgu_free_port)
CHECKER=$PGU_LIBDIR/promcheck.py

scrape() { curl -sS --max-time 10 "http://127.0.0.1:$MPORT/metrics"; }
# metric NAME LABELS-REGEX [FILE]: the value of the one sample of NAME whose label set
# matches (e.g. 'database="testdb"'), from FILE or a fresh scrape
metric() {
	local text
	if [[ -n ${3:-} ]]; then text=$(cat "$3"); else text=$(scrape); fi
	awk -v n="$1" -v l="$2" '$1 ~ "^"n"([{]|$)" && $1 ~ l {print $2; exit}' <<<"$text"
}
http_code() { # method path
	curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X "$1" "http://127.0.0.1:$MPORT$2"
}
# raw_http PORT HEX-OR-TEXT: send bytes, print the status line the endpoint answers (or
# "closed" / "timeout"); python, as curl will not send malformed requests
raw_http() {
	python3 - "$1" "$2" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
data = sys.argv[2].encode().decode("unicode_escape").encode("latin-1")
try:
    s.sendall(data)
except OSError:
    pass
buf = b""
try:
    while b"\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
except socket.timeout:
    print("timeout"); sys.exit(0)
except OSError:
    pass
print(buf.split(b"\r\n")[0].decode() if buf else "closed")
EOF
}

cat >"$PGU_TMP/body.ini" <<EOF
[databases]
testdb = host=$P port=$PORT dbname=testdb
reads = host=$S1,$S2 port=$PORT dbname=testdb target_session_attrs=standby
* = host=$P port=$PORT dbname=testdb
[pgbouncer]
pool_mode = transaction
default_pool_size = 4
health_check_user = postgres
health_check_period = 1
health_check_timeout = 1
metrics_listen = 127.0.0.1:$MPORT
EOF
pgu_start "$PGU_TMP/body.ini"
assert_log_contains "metrics: listening on 127.0.0.1:$MPORT" 5

check "GET /metrics: 200, text format 0.0.4, parses strictly"
curl -sS -D "$PGU_TMP/hdr" -o "$PGU_TMP/m0" "http://127.0.0.1:$MPORT/metrics" || fail "curl /metrics"
assert_contains "$(head -1 "$PGU_TMP/hdr")" "200" "status"
assert_contains "$(cat "$PGU_TMP/hdr")" "Content-Type: text/plain; version=0.0.4" "content type"
assert_contains "$(cat "$PGU_TMP/hdr")" "Connection: close" "Connection: close"
pgu_try python3 "$CHECKER" "$PGU_TMP/m0"
assert_ok "promcheck: $PGU_OUT"
echo "   $PGU_OUT"
for name in pgbouncer_up pgbouncer_version_info pgbouncer_config_max_client_connections \
	pgbouncer_pools_client_active_connections pgbouncer_pools_client_waiting_connections \
	pgbouncer_pools_server_active_connections pgbouncer_pools_server_idle_connections \
	pgbouncer_pools_server_used_connections pgbouncer_pools_server_testing_connections \
	pgbouncer_pools_server_login_connections pgbouncer_pools_client_maxwait_seconds \
	pgbouncer_stats_queries_pooled_total pgbouncer_stats_queries_duration_seconds_total \
	pgbouncer_stats_sent_bytes_total pgbouncer_stats_received_bytes_total \
	pgbouncer_stats_sql_transactions_pooled_total pgbouncer_stats_server_in_transaction_seconds_total \
	pgbouncer_stats_client_wait_seconds_total pgbouncer_stats_totals_queries_pooled_total \
	pgbouncer_stats_totals_received_bytes_total pgbouncer_databases_pool_size \
	pgbouncer_databases_current_connections pgbouncer_databases pgbouncer_pools \
	pgusher_host_up pgusher_host_primary pgusher_host_standby pgusher_host_lag_seconds \
	pgusher_host_checks_total pgusher_host_failures_total pgusher_backend_transactions_total \
	pgusher_backend_errors_total pgusher_pool_wait_seconds; do
	grep -q "^# TYPE $name " "$PGU_TMP/m0" || fail "no metric family $name"
done
assert_eq "1" "$(metric pgbouncer_up '' "$PGU_TMP/m0")" "pgbouncer_up"
assert_eq "100" "$(metric pgbouncer_config_max_client_connections '' "$PGU_TMP/m0")" "max_client_conn"
grep -q '^# TYPE pgbouncer_stats_queries_pooled_total counter' "$PGU_TMP/m0" || fail "counter type"
grep -q '^# TYPE pgusher_pool_wait_seconds histogram' "$PGU_TMP/m0" || fail "histogram type"
echo "   ok: pgbouncer_exporter's families and pgusher's own are there, typed"

check "Accept: OpenMetrics (as Prometheus sends it) gets OpenMetrics 1.0.0 with the same series"
curl -sS -D "$PGU_TMP/hdr_om" -o "$PGU_TMP/om" -H 'Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1' \
	"http://127.0.0.1:$MPORT/metrics" || fail "curl /metrics (OpenMetrics)"
assert_contains "$(cat "$PGU_TMP/hdr_om")" "Content-Type: application/openmetrics-text; version=1.0.0" "content type"
pgu_try python3 "$CHECKER" --openmetrics "$PGU_TMP/om"
assert_ok "promcheck --openmetrics: $PGU_OUT"
grep -q '^# TYPE pgbouncer_stats_queries_pooled counter$' "$PGU_TMP/om" || fail "OpenMetrics counter family name"
grep -q '^# TYPE pgbouncer_version info$' "$PGU_TMP/om" || fail "OpenMetrics info family"
series() { grep -v '^#' "$1" | sed 's/ [^ ]*$//' | sort; }
assert_eq "$(series "$PGU_TMP/m0" | md5sum)" "$(series "$PGU_TMP/om" | md5sum)" "the same series as 0.0.4"

check "HEAD, 404 for other paths, 405 for other methods"
assert_eq "200" "$(curl -s -o /dev/null -w '%{http_code}' -I "http://127.0.0.1:$MPORT/metrics")" "HEAD"
assert_eq "404" "$(http_code GET /)" "GET /"
assert_eq "404" "$(http_code GET /metricsx)" "GET /metricsx"
assert_eq "405" "$(http_code POST /metrics)" "POST"
assert_eq "405" "$(http_code DELETE /metrics)" "DELETE"
assert_eq "200" "$(http_code GET '/metrics?name=x')" "query string ignored"
echo "   ok"

check "during pgbench: counters move between two scrapes"
pgu_bg pgbench -n -S -T 6 -c 4 -j 2 -h 127.0.0.1 -p "$PGU_PORT" -U u_trust testdb
bench=$PGU_BG_PID
sleep 2
scrape >"$PGU_TMP/m1"
sleep 2
scrape >"$PGU_TMP/m2"
python3 "$CHECKER" "$PGU_TMP/m2" >/dev/null || fail "scrape under load does not parse"
for name in pgbouncer_stats_queries_pooled_total pgbouncer_stats_sql_transactions_pooled_total \
	pgbouncer_stats_received_bytes_total pgbouncer_stats_sent_bytes_total \
	pgbouncer_stats_queries_duration_seconds_total; do
	a=$(metric "$name" 'database="testdb"' "$PGU_TMP/m1") b=$(metric "$name" 'database="testdb"' "$PGU_TMP/m2")
	awk -v a="$a" -v b="$b" 'BEGIN{exit !(a > 0 && b > a)}' || fail "$name did not grow: $a -> $b"
	echo "   $name: $a -> $b"
done
a=$(metric pgusher_backend_transactions_total "host=\"$P\"" "$PGU_TMP/m1")
b=$(metric pgusher_backend_transactions_total "host=\"$P\"" "$PGU_TMP/m2")
((b > a && a > 0)) || fail "pgusher_backend_transactions_total of $P did not grow: $a -> $b"
echo "   pgusher_backend_transactions_total{host=$P}: $a -> $b"
a=$(metric pgusher_pool_wait_seconds_count 'database="testdb"' "$PGU_TMP/m1")
b=$(metric pgusher_pool_wait_seconds_count 'database="testdb"' "$PGU_TMP/m2")
((b > a && a > 0)) || fail "pgusher_pool_wait_seconds_count did not grow: $a -> $b"
inf=$(metric pgusher_pool_wait_seconds_bucket 'database="testdb".*le="[+]Inf"' "$PGU_TMP/m2")
assert_eq "$b" "$inf" "+Inf bucket = _count"
echo "   pgusher_pool_wait_seconds_count{testdb}: $a -> $b"
wait "$bench" || fail "pgbench failed"

check "errors per host: a failing query counts on the host that answered it"
e0=$(metric pgusher_backend_errors_total "host=\"$P\"")
pgu_try pgu_q testdb -c 'select no_such_column'
assert_fails "the bad query fails"
e1=$(metric pgusher_backend_errors_total "host=\"$P\"")
assert_eq "$((e0 + 1))" "$e1" "pgusher_backend_errors_total of $P"
echo "   ok: $e0 -> $e1"

check "pool gauges match SHOW POOLS"
pgu_hold testdb u_trust # a session in a transaction would pin one; an idle one shows as cl_active
pgu_wait_clients testdb 1
sleep 0.5
row=$(pgu_admin 'SHOW POOLS' | awk -F'|' '$1=="testdb" && $2=="u_trust"')
scrape >"$PGU_TMP/m3"
i=3
for g in client_active client_waiting client_active_cancel client_waiting_cancel server_active \
	server_active_cancel server_being_canceled server_idle server_used server_testing server_login; do
	want=$(cut -d'|' -f$i <<<"$row")
	got=$(metric "pgbouncer_pools_${g}_connections" 'database="testdb",user="u_trust"' "$PGU_TMP/m3")
	assert_eq "$want" "$got" "pgbouncer_pools_${g}_connections vs SHOW POOLS"
	i=$((i + 1))
done
echo "   ok: SHOW POOLS $row"
[[ $(cut -d'|' -f3 <<<"$row") -ge 1 && $(cut -d'|' -f10 <<<"$row") -ge 1 ]] ||
	fail "expected a client and idle servers to compare: $row"
pgu_release_holds

check "host gauges flip when the standby $S2 stops, and back when it restarts"
pgu_wait_for 15 "$S2 up" bash -c "[[ \$(curl -s http://127.0.0.1:$MPORT/metrics | grep -c '^pgusher_host_up{database=\"reads\",host=\"$S2\",port=\"$PORT\"} 1') == 1 ]]"
assert_eq "1" "$(metric pgusher_host_standby "database=\"reads\",host=\"$S2\"")" "$S2 standby"
assert_eq "1" "$(metric pgusher_host_primary "database=\"testdb\",host=\"$P\"")" "$P primary"
f0=$(metric pgusher_host_failures_total "database=\"reads\",host=\"$S2\"")
pgu_at_exit() { pgu_node_start n2 2>/dev/null || true; }
pgu_node_ctl n2 -m immediate -w stop
host_is() { [[ $(metric "pgusher_host_$1" "database=\"reads\",host=\"$S2\"") == "$2" ]]; }
pgu_wait_for 15 "pgusher_host_up{$S2} 0" host_is up 0
assert_eq "1" "$(metric pgusher_host_down "database=\"reads\",host=\"$S2\"")" "pgusher_host_down"
assert_eq "0" "$(metric pgusher_host_eligible "database=\"reads\",host=\"$S2\"")" "not eligible"
assert_eq "down" "$(pgu_host_field reads "$S2" 4)" "SHOW HOSTS agrees"
f1=$(metric pgusher_host_failures_total "database=\"reads\",host=\"$S2\"")
((f1 > f0)) || fail "pgusher_host_failures_total did not grow: $f0 -> $f1"
assert_eq "1" "$(metric pgusher_host_up "database=\"reads\",host=\"$S1\"")" "$S1 still up"
pgu_node_start n2
pgu_wait_for 30 "pgusher_host_up{$S2} 1" host_is up 1
assert_eq "1" "$(metric pgusher_host_eligible "database=\"reads\",host=\"$S2\"")" "eligible again"

check "malformed and oversized requests get an error; the pooler keeps serving"
assert_eq "HTTP/1.1 400 Bad Request" "$(raw_http "$MPORT" '\x16\x03\x01\x02\x00\x01\x00\r\n')" "TLS hello"
assert_eq "HTTP/1.1 400 Bad Request" "$(raw_http "$MPORT" 'GET /metrics HTTP/1.1\r\nBad Header\r\n\r\n')" "header without colon"
assert_eq "HTTP/1.1 505 HTTP Version Not Supported" "$(raw_http "$MPORT" 'GET /metrics HTTP/2.0\r\n\r\n')" "HTTP/2.0"
long=$(printf 'a%.0s' $(seq 1 2000))
assert_eq "HTTP/1.1 414 URI Too Long" "$(raw_http "$MPORT" "GET /$long HTTP/1.1\r\n\r\n")" "long target"
big=$(printf 'X-Pad: %s\\r\\n' "$long" "$long" "$long" "$long" "$long")
assert_eq "HTTP/1.1 431 Request Header Fields Too Large" "$(raw_http "$MPORT" "GET /metrics HTTP/1.1\r\n$big")" "9 KB head"
assert_eq "1" "$(pgu_q testdb -c 'select 1')" "pooler serves"
assert_eq "200" "$(http_code GET /metrics)" "endpoint serves"
echo "   ok"

check "a client-chosen database name that is not UTF-8 (an auto-database) keeps the scrape valid"
hex=$(python3 -c '
import struct
body = struct.pack(">I", 196608) + b"user\0u_trust\0database\0bad\xff\"name\\\0\0"
print((struct.pack(">I", len(body) + 4) + body).hex())')
pgu_try python3 "$PGU_LIBDIR/pgwire.py" --port "$PGU_PORT" --wait 1 raw --hex "$hex"
assert_contains "$PGU_OUT" "MSG Z" "logged in to the auto-database"
scrape >"$PGU_TMP/m4"
pgu_try python3 "$CHECKER" "$PGU_TMP/m4"
assert_ok "promcheck with the odd name: $PGU_OUT"
assert_contains "$(cat "$PGU_TMP/m4")" 'database="bad�\"name\\"' "bad byte replaced, quote and backslash escaped"

check "a client that half-closes after its request still gets the whole answer"
pgu_try python3 - "$MPORT" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
s.shutdown(socket.SHUT_WR)
buf = b""
while True:
    c = s.recv(65536)
    if not c:
        break
    buf += c
head, _, body = buf.partition(b"\r\n\r\n")
lines = head.split(b"\r\n")
n = [int(l.split(b":")[1]) for l in lines if l.lower().startswith(b"content-length:")]
print(lines[0].decode(), n == [len(body)], b"\npgbouncer_up 1\n" in body)
EOF
assert_eq "HTTP/1.1 200 OK True True" "$PGU_OUT" "half-closed request answered in full"

check "a hundred idle connections to the endpoint are closed by its deadline, nothing leaks"
pid=$(cat "$PGU_PIDFILE")
fds0=$(ls "/proc/$pid/fd" | wc -l)
t0=$SECONDS
pgu_try python3 - "$MPORT" <<'EOF'
import socket, sys, time
socks = []
for i in range(100):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=15)
    if i % 2:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never finished
    socks.append(s)
closed = 0
for s in socks:
    try:
        while s.recv(4096):
            pass
        closed += 1
    except OSError:
        closed += 1
print(f"{closed} of {len(socks)} closed by the server")
EOF
assert_ok "idle connections"
assert_eq "100 of 100 closed by the server" "$PGU_OUT" "every idle connection closed"
((SECONDS - t0 <= 12)) || fail "closing them took $((SECONDS - t0)) s (deadline 5 s)"
assert_eq "1" "$(pgu_q testdb -c 'select 1')" "pooler served meanwhile"
assert_eq "200" "$(http_code GET /metrics)" "endpoint serves again"
sleep 0.5
fds1=$(ls "/proc/$pid/fd" | wc -l)
((fds1 <= fds0 + 2)) || fail "fds grew from $fds0 to $fds1"
echo "   ok: fds $fds0 -> $fds1, $((SECONDS - t0)) s"

check "RELOAD moves the endpoint, refuses a malformed one, an empty one turns it off; SET applies"
MPORT2=$(pgu_free_port)
sed -i "s/^metrics_listen = .*/metrics_listen = 127.0.0.1:$MPORT2/" "$PGU_INI"
pgu_reload
assert_log_contains "metrics: listening on 127.0.0.1:$MPORT2" 5
old=$MPORT MPORT=$MPORT2
assert_eq "200" "$(http_code GET /metrics)" "new port serves"
assert_eq "000" "$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://127.0.0.1:$old/metrics")" "old port closed"
sed -i "s/^metrics_listen = .*/metrics_listen = localhost:9127/" "$PGU_INI"
pgu_reload
assert_log_contains 'invalid value "localhost:9127" for parameter metrics_listen' 5
assert_eq "200" "$(http_code GET /metrics)" "a malformed value is refused, the endpoint stays"
sed -i "s/^metrics_listen = .*/metrics_listen =/" "$PGU_INI"
pgu_reload
assert_log_contains "metrics: endpoint off" 5
assert_eq "000" "$(http_code GET /metrics)" "off"
MPORT3=$(pgu_free_port)
pgu_admin "SET metrics_listen = '127.0.0.1:$MPORT3'" >/dev/null || fail "console SET metrics_listen"
MPORT=$MPORT3
assert_eq "200" "$(http_code GET /metrics)" "SET metrics_listen on the console applies at once"
assert_eq "1" "$(pgu_q testdb -c 'select 1')" "pooler serves"

pass
