#!/usr/bin/env bash
# User story: an operator generates [databases] from an inventory and ends up with long host
# lists. A list of up to 128 hosts works (here one live server and 127 loopback addresses where
# nothing listens: those are marked down and clients are served by the live one); a longer list
# is refused at startup with a config error naming the file and line, never a crash.
source "$(dirname "$0")/lib.sh"

hosts=$PGU_PRIMARY
for ((i = 1; i < 128; i++)); do hosts+=",127.0.1.$i"; done

pgu_start <<CONF
[databases]
many = host=$hosts port=$PGU_PGPORT dbname=testdb load_balance_hosts=disable
[pgbouncer]
pool_mode = transaction
CONF

check "a 128-host list serves queries through its one live host"
for i in 1 2 3 4 5; do
	assert_eq "$i" "$(pgu_psql many u_trust -Atc "select $i")" "query $i"
done

check "SHOW HOSTS lists all 128 backends"
n=$(psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U postgres pgbouncer -c 'SHOW HOSTS' | grep -c "|$PGU_PGPORT|")
assert_eq 128 "$n" "backends in SHOW HOSTS"
pgu_stop

check "a 129-host list is a config error with file:line"
cat >"$PGU_TMP/long.ini" <<CONF
[databases]
toomany = host=$hosts,127.0.2.1 port=$PGU_PGPORT dbname=testdb
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $(pgu_free_port)
auth_type = trust
CONF
pgu_try timeout 10 "$PGUSHER_BIN" "$PGU_TMP/long.ini"
assert_fails "pgusher with a 129-host list"
assert_contains "$PGU_OUT" "long.ini:2" "the error names file and line"
assert_contains "$PGU_OUT" "host list has 129 entries, at most 128 are supported" "the error says why"

pass
