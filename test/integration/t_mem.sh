#!/usr/bin/env bash
# User story: an operator with hundreds of mostly idle application connections asks the
# console where the pooler's memory goes. SHOW MEM keeps PgBouncer's columns and rows and
# adds pgusher's own (write queues, TLS, prepared statements, DNS): idle clients show up in
# client_cache and hold no I/O buffer (so each costs about its struct, also in RSS), a
# client that does not read its result shows its queued output, prepared statements and
# TLS connections (with what OpenSSL holds) are counted, and every count comes back down
# when the clients leave.
#
# Validated against PgBouncer 1.25.2 (PGUSHER_BIN=.../pgbouncer): PASS, with the checks of
# the rows pgusher adds skipped (write_request_cache ... dns_cache do not exist there).
source "$(dirname "$0")/lib.sh"

WIRE="python3 $(dirname "$0")/pgwire.py"
BIG="select repeat('x', 1000) from generate_series(1, 20000)" # 20 MB
N=300
ours=1 # the rows pgusher adds are checked only on pgusher
[[ $(basename "$PGUSHER_BIN") == pgbouncer* ]] && ours=0

pgu_start <<EOF
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb

[pgbouncer]
pool_mode = transaction
default_pool_size = 4
max_client_conn = 1000
max_prepared_statements = 10
EOF

# mem ROW COLUMN: one field of SHOW MEM (2 size, 3 used, 4 free, 5 memtotal).
mem() { pgu_admin 'SHOW MEM' | awk -F'|' -v k="$1" -v c="$2" '$1 == k {print $c}'; }
mem_is() { [[ $(mem "$1" "$2") == "$3" ]]; } # row column value
mem_at_most() { (($(mem "$1" "$2") <= $3)); } # row column max
# Wait for the HELD line of a background "pgwire.py hold" writing to file $1.
held() { grep -q '^HELD ' "$1"; }

check "SHOW MEM has PgBouncer's columns and rows, and pgusher's"
header=$(timeout 10 psql -X -A -F'|' -h 127.0.0.1 -p "$PGU_PORT" -U postgres -d pgbouncer -c 'SHOW MEM' | head -1)
assert_eq "name|size|used|free|memtotal" "$header" "SHOW MEM columns"
rows=$(pgu_admin 'SHOW MEM' | cut -d'|' -f1 | tr '\n' ' ')
want="user_cache db_cache pool_cache server_cache client_cache iobuf_cache"
want+=" server_prepared_statement_cache"
((ours)) && want+=" write_request_cache tls_cache openssl prepared_statement_cache"
((ours)) && want+=" client_prepared_statement_cache dns_cache"
for r in $want; do
	assert_contains "$rows" "$r" "row $r"
done
assert_eq 1 "$(pgu_q testdb -c 'select 1')" "warm-up query"
base_clients=$(mem client_cache 3)
assert_eq 1 "$base_clients" "client_cache used: the console asking"

check "$N idle clients (each ran a query once): client_cache counts them, they hold no buffer"
pgu_bg timeout 120 $WIRE hold --port "$PGU_PORT" --n $N --query 'select 1' --hold 60 \
	--rss-pid "$PGU_PID" >"$PGU_TMP/hold.out" 2>&1
pgu_wait_for 60 "$N clients logged in and idle" held "$PGU_TMP/hold.out"
assert_eq $((N + 1)) "$(mem client_cache 3)" "client_cache used = $N idle clients + the console"
bufs=$(mem iobuf_cache 3)
size=$(mem iobuf_cache 2)
echo "   iobuf_cache used=$bufs size=$size free=$(mem iobuf_cache 4)"
((bufs <= 2)) || fail "idle clients hold I/O buffers: iobuf_cache used=$bufs with $N idle clients"
per_client=$(((bufs * size) / N))
((per_client < 128)) || fail "buffer memory per idle client $per_client B (want < 128)"
servers=$(mem server_cache 3)
((servers >= 1 && servers <= 4)) || fail "server_cache used=$servers (want 1..4: default_pool_size)"
rss=$(sed -n 's/^RSS-PER-CLIENT-B //p' "$PGU_TMP/hold.out")
echo "   RSS growth per idle client: $rss B; client_cache size: $(mem client_cache 2) B"
# PgBouncer 1.25.2 measured ~1.1 kB per idle client at 10k; a bound with headroom for the
# allocator's page-sized steps at only $N clients.
((rss < 4096)) || fail "RSS per idle client $rss B (want < 4096)"
kill "$PGU_BG_PID" 2>/dev/null || true
pgu_wait_for 10 "client_cache used back to 1 after they left" mem_is client_cache 3 1
((ours)) && assert_eq 0 "$(mem write_request_cache 3)" "no write requests left"
if ((ours)); then
	check "after a crowd of busy clients left, their buffers go back to malloc (16 kept)"
	echo 'select 1' >"$PGU_TMP/one.sql"
	pgbench -n -f "$PGU_TMP/one.sql" -c 60 -T 2 -h 127.0.0.1 -p "$PGU_PORT" -U u_trust testdb \
		>"$PGU_TMP/crowd.out" 2>&1 || fail "pgbench crowd: $(tail -3 "$PGU_TMP/crowd.out")"
	crowd_free=$(mem iobuf_cache 4)
	echo "   iobuf_cache free right after 60 pgbench clients: $crowd_free"
	((crowd_free > 16)) || fail "the crowd left only $crowd_free buffers cached: nothing to check"
	# stream_shrink_buffers runs every 10 s: buffers unused for a whole period are freed.
	pgu_wait_for 25 "iobuf_cache free down to 16" mem_at_most iobuf_cache 4 16
fi

if ((ours)); then
	check "a client that does not read a 20 MB result: its queued output shows, then goes"
	pgu_bg timeout 120 $WIRE hold --port "$PGU_PORT" --n 1 --unread "$BIG" --hold 60 \
		>"$PGU_TMP/unread.out" 2>&1
	pgu_wait_for 30 "the client sent its query" held "$PGU_TMP/unread.out"
	pgu_wait_for 20 "output queued for the client that does not read" \
		bash -c "[[ \$(psql -X -A -t -F'|' -h 127.0.0.1 -p $PGU_PORT -U postgres -d pgbouncer -c 'SHOW MEM' | awk -F'|' '\$1 == \"write_request_cache\" {print \$3}') -ge 1 ]]"
	bytes=$(mem write_request_cache 5)
	echo "   write_request_cache used=$(mem write_request_cache 3) memtotal=$bytes"
	((bytes > 0)) || fail "write_request_cache memtotal=$bytes with output queued"
	kill "$PGU_BG_PID" 2>/dev/null || true
	pgu_wait_for 10 "the queued output is freed once the client is gone" mem_is write_request_cache 3 0
	pgu_wait_for 10 "client_cache used back to 1" mem_is client_cache 3 1
fi

check "prepared statements: the shared statement, the client's name and the server's entry"
cat >"$PGU_TMP/ps.script" <<EOF
P s1|select 42
P s2|select 43
S
WAIT
RUN psql -X -A -t -F'|' -h 127.0.0.1 -p $PGU_PORT -U postgres -d pgbouncer -c 'SHOW MEM' >$PGU_TMP/mem.ps
EOF
pgu_try timeout 30 $WIRE extended --port "$PGU_PORT" --script "$PGU_TMP/ps.script"
assert_ok "extended script"
field() { awk -F'|' -v k="$1" -v c="$2" '$1 == k {print $c}' "$PGU_TMP/mem.ps"; }
assert_eq 2 "$(field server_prepared_statement_cache 3)" "prepared on one server, once each"
if ((ours)); then
	assert_eq 2 "$(field prepared_statement_cache 3)" "two statements in the shared table"
	assert_eq 2 "$(field client_prepared_statement_cache 3)" "two client names"
	ps_bytes=$(field prepared_statement_cache 5)
	((ps_bytes > 2 * $(field prepared_statement_cache 2))) ||
		fail "prepared_statement_cache memtotal $ps_bytes does not count the statements' text"
	pgu_wait_for 10 "the client's names go with it" mem_is client_prepared_statement_cache 3 0
fi

if ((ours)); then
	check "TLS clients: tls_cache counts their streams, openssl what OpenSSL holds for them"
	C=$PGU_TMP/certs
	pgu_make_certs "$C"
	pgu_start <<EOF
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb

[pgbouncer]
pool_mode = transaction
client_tls_sslmode = require
client_tls_key_file = $C/server.key
client_tls_cert_file = $C/server.crt
EOF
	# psql (sslmode=prefer) speaks TLS to the pooler: the console asking too.
	assert_eq 1 "$(mem tls_cache 3)" "tls_cache used: the console asking"
	ossl0=$(mem openssl 5)
	for _ in 1 2 3 4 5; do pgu_hold testdb u_trust; done
	pgu_wait_clients testdb 5
	assert_eq 6 "$(mem tls_cache 3)" "tls_cache used: 5 held TLS sessions + the console"
	ossl5=$(mem openssl 5)
	echo "   openssl memtotal: $ossl0 B with the console, $ossl5 B with 5 more TLS clients"
	((ossl5 - ossl0 > 5 * 1024)) ||
		fail "openssl memtotal grew by $((ossl5 - ossl0)) B for 5 TLS clients"
	pgu_release_holds
	pgu_wait_for 10 "tls_cache back to the console alone" mem_is tls_cache 3 1
	ossl1=$(mem openssl 5)
	((ossl1 < ossl5)) || fail "openssl memtotal did not drop when the TLS clients left ($ossl5 -> $ossl1)"
fi

pass
