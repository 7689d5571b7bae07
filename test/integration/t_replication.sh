#!/usr/bin/env bash
# User story: a DBA takes backups and streams WAL and logical changes through pgusher, as
# PgBouncer 1.25 lets them. pg_receivewal streams WAL segments (a new one arrives after
# pg_switch_wal), pg_basebackup -X stream makes a backup that pg_verifybackup accepts,
# pg_recvlogical (test_decoding) receives an INSERT. Each replication client has a server of
# its own, in session mode whatever the pool's mode: under a transaction-mode pgbench load in
# the same pool no normal client ever gets the replication server, nor the replication client
# a normal one, and the server is closed (not reused) when its client leaves. Refusals as
# 1.25: a user without REPLICATION, a forced user, get "login failed" (08P01); with
# auth_type = hba the "replication" keyword matches physical clients only.
# Own cluster: wal_level = logical, and WAL switches and slots would disturb other stories.
export PGUSHER_WAL_LEVEL=logical
PGU_OWN_CLUSTER=repl:15550
source "$(dirname "$0")/lib.sh"

PGBIN=$("$PGU_LIBDIR/cluster.sh" env | sed -n "s/^export PGUSHER_PGBIN='\(.*\)'$/\1/p")
admin() { psql -X -A -t -F'|' -P footer=off -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGU_PORT" -U postgres -d pgbouncer "$@"; }
# SHOW CLIENTS / SERVERS rows as "replication|state|application_name|ptr|link" of database $2
conns() { admin -c "SHOW $1" | awk -F'|' -v d="$2" '$3 == d { print $4 "|" $5 "|" $19 "|" $15 "|" $16 }'; }
direct() { pg_direct "$PGU_PRIMARY" testdb -c "$1"; }
wire() { python3 "$PGU_LIBDIR/pgwire.py" --host 127.0.0.1 --port "$PGU_PORT" "$@"; }

pgu_start <<EOF
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb
; pg_receivewal and pg_basebackup ask for database "replication", as with PgBouncer
replication = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=postgres
txdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb pool_mode=transaction pool_size=2
forced = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb user=u_trust

[pgbouncer]
pool_mode = session
log_connections = 1
log_disconnections = 1
; 1.25 holds a pool back after a refused replication login (pgusher does not): short here
server_login_retry = 2
EOF

# ---------------------------------------------------------------- pg_receivewal
check "pg_receivewal through pgusher streams WAL; a new segment arrives after pg_switch_wal"
WAL=$PGU_TMP/wal
mkdir -p "$WAL"
pgu_bg timeout 60 pg_receivewal -h 127.0.0.1 -p "$PGU_PORT" -U postgres -D "$WAL" -v --no-sync
RW=$PGU_BG_PID
sleep 0.5
direct "create table if not exists repl_t(i int); insert into repl_t values (1)" >/dev/null
pgu_wait_for 15 "pg_receivewal's first .partial segment" bash -c "ls '$WAL' | grep -q partial"
rows=$(conns CLIENTS replication)
assert_contains "$rows" "physical|active|pg_receivewal" "SHOW CLIENTS: the pg_receivewal client, replication=physical"
rows=$(conns SERVERS replication)
assert_contains "$rows" "physical|active|pg_receivewal" "SHOW SERVERS: its own server, replication=physical"
pool=$(admin -c "SHOW POOLS" | awk -F'|' '$1 == "replication" { print $3 "/" $7 }')
assert_eq "1/1" "$pool" "SHOW POOLS replication: cl_active/sv_active"
first=$(ls "$WAL" | grep partial)
direct "insert into repl_t values (2); select pg_switch_wal()" >/dev/null
full=${first%.partial}
pgu_wait_for 15 "segment $full completed" test -f "$WAL/$full"
kill "$RW" 2>/dev/null
wait "$RW" 2>/dev/null || true
# Killed in the middle of the stream: 1.25's words for a server left mid-stream.
assert_log_contains "replication/postgres@$PGU_PRIMARY:$PGU_PGPORT closing because: client disconnect while server was not ready" 5
assert_eq "" "$(conns SERVERS replication)" "no server left for database replication once its client went"

# ---------------------------------------------------------------- pg_basebackup
check "pg_basebackup -X stream through pgusher: pg_verifybackup accepts the backup"
pgu_try timeout 120 pg_basebackup -h 127.0.0.1 -p "$PGU_PORT" -U postgres -D "$PGU_TMP/bb" -X stream -c fast --no-sync
assert_ok "pg_basebackup through pgusher"
pgu_try "$PGBIN/pg_verifybackup" "$PGU_TMP/bb"
assert_ok "pg_verifybackup"
assert_contains "$PGU_OUT" "backup successfully verified" "pg_verifybackup's verdict"

# ---------------------------------------------------------------- pg_recvlogical
check "pg_recvlogical (test_decoding) through pgusher receives an INSERT"
pgu_try pg_recvlogical -h 127.0.0.1 -p "$PGU_PORT" -U postgres -d testdb -S pgu_slot --create-slot -P test_decoding
assert_ok "pg_recvlogical --create-slot through pgusher"
pgu_at_exit() { pg_direct "$PGU_PRIMARY" postgres -c "select pg_drop_replication_slot('pgu_slot')" >/dev/null 2>&1; }
LOGICAL=$PGU_TMP/logical.out
pgu_bg timeout 60 pg_recvlogical -h 127.0.0.1 -p "$PGU_PORT" -U postgres -d testdb -S pgu_slot --start -f "$LOGICAL" -F 1 -s 1
RL=$PGU_BG_PID
pgu_wait_for 10 "pg_recvlogical streaming" bash -c "$(declare -f admin conns); PGU_PORT=$PGU_PORT; conns CLIENTS testdb | grep -q '^logical|active|pg_recvlogical'"
assert_contains "$(conns SERVERS testdb)" "logical|active|pg_recvlogical" "SHOW SERVERS: replication=logical"
direct "insert into repl_t values (4242)" >/dev/null
pgu_wait_for 15 "the INSERT in pg_recvlogical's output" grep -q "table public.repl_t: INSERT: i\[integer\]:4242" "$LOGICAL"
kill "$RL" 2>/dev/null
wait "$RL" 2>/dev/null || true

# ---------------------------------------------------------------- same pool, transaction mode
check "a replication client in a transaction-mode pool under pgbench: servers never shared"
pgu_bg timeout 60 pgbench -n -T 6 -c 4 -j 2 -h 127.0.0.1 -p "$PGU_PORT" -U postgres txdb >"$PGU_TMP/pgbench.out" 2>&1
PB=$PGU_BG_PID
pgu_bg timeout 60 pg_recvlogical -h 127.0.0.1 -p "$PGU_PORT" -U postgres -d txdb -S pgu_slot --start -f "$LOGICAL.tx" -F 1 -s 1
RL=$PGU_BG_PID
pgu_wait_for 15 "pg_recvlogical streaming on txdb" bash -c "$(declare -f admin conns); PGU_PORT=$PGU_PORT; conns CLIENTS txdb | grep -q '^logical|active'"
bad=0 samples=0
for ((i = 0; i < 20; i++)); do
	cl=$(conns CLIENTS txdb)
	sv=$(conns SERVERS txdb)
	rc_ptr=$(awk -F'|' '$1 == "logical" { print $4 }' <<<"$cl")
	rs_ptr=$(awk -F'|' '$1 == "logical" { print $4 }' <<<"$sv")
	rs_link=$(awk -F'|' '$1 == "logical" { print $5 }' <<<"$sv")
	[[ -n $rc_ptr && -n $rs_ptr ]] || continue
	samples=$((samples + 1))
	# The replication server's link is the replication client, and no normal client's link
	# (nor any normal server's) points at the replication pair.
	[[ $rs_link == "$rc_ptr" ]] || { bad=1; echo "replication server linked to $rs_link, not $rc_ptr"; }
	if awk -F'|' -v p="$rs_ptr" '$1 == "none" && $5 == p { f = 1 } END { exit !f }' <<<"$cl"; then
		bad=1
		echo "a normal client linked to the replication server: $cl"
	fi
	if awk -F'|' -v p="$rc_ptr" '$1 == "none" && $5 == p { f = 1 } END { exit !f }' <<<"$sv"; then
		bad=1
		echo "a normal server linked to the replication client: $sv"
	fi
	sleep 0.2
done
((samples >= 5)) || fail "too few samples of the replication pair ($samples)"
assert_eq 0 "$bad" "replication and normal connections never share a server"
rc=0
wait "$PB" || rc=$?
assert_eq 0 "$rc" "pgbench (transaction mode, next to a replication client) ends well: $(tail -3 "$PGU_TMP/pgbench.out")"
pgu_wait_for 15 "pgbench's writes in pg_recvlogical's output" grep -q "table public.pgbench_history: INSERT" "$LOGICAL.tx"
kill "$RL" 2>/dev/null
wait "$RL" 2>/dev/null || true
pgu_wait_for 5 "the logical server closed" bash -c "$(declare -f admin conns); PGU_PORT=$PGU_PORT; ! conns SERVERS txdb | grep -q '^logical'"
assert_log_contains "txdb/postgres@$PGU_PRIMARY:$PGU_PGPORT closing because: client disconnect while server was not ready" 5
n=$(admin -c "SHOW SERVERS" | awk -F'|' '$3 == "txdb"' | wc -l)
((n <= 2)) || fail "txdb has $n servers, pool_size is 2 (the replication server counts in it)"

# ---------------------------------------------------------------- refusals and spellings
check "refusals as PgBouncer 1.25: a user without REPLICATION, a forced user"
pgu_try wire --user u_trust --database testdb --param replication=true startup
assert_contains "$PGU_OUT" "ERROR S=FATAL C=08P01 M=login failed" "u_trust (no REPLICATION), physical"
pgu_try wire --user u_trust --database testdb --param replication=database startup
assert_contains "$PGU_OUT" "ERROR S=FATAL C=08P01 M=login failed" "u_trust (no REPLICATION), logical"
pgu_try wire --user postgres --database forced --param replication=true startup
assert_contains "$PGU_OUT" "ERROR S=FATAL C=08P01 M=login failed" "forced user u_trust"
assert_log_contains "login attempt: db=forced user=postgres tls=no replication=yes"
pgu_try timeout 10 psql -X -At -h 127.0.0.1 -p "$PGU_PORT" -U u_trust testdb -c "select 7"
assert_eq 7 "$PGU_OUT" "the pool of a refused replication login serves normal clients at once"

check "replication spellings: TRUE/on/1 physical, database logical, anything else a normal session"
for v in TRUE on 1 yes; do
	pgu_try timeout 10 psql -X -At -h 127.0.0.1 -p "$PGU_PORT" "dbname=testdb user=postgres replication=$v" -c IDENTIFY_SYSTEM
	assert_ok "replication=$v: IDENTIFY_SYSTEM"
	[[ $PGU_OUT == *"|" ]] || fail "replication=$v: physical (no dbname), got $PGU_OUT"
done
pgu_try timeout 10 psql -X -At -h 127.0.0.1 -p "$PGU_PORT" "dbname=testdb user=postgres replication=database" -c IDENTIFY_SYSTEM
assert_contains "$PGU_OUT" "|testdb" "replication=database: logical, IDENTIFY_SYSTEM names the database"
# A replication client that quits between commands: its server is closed, never reused.
assert_log_contains "testdb/postgres@$PGU_PRIMARY:$PGU_PGPORT closing because: replication client was closed" 5
pgu_try timeout 10 psql -X -At -h 127.0.0.1 -p "$PGU_PORT" "dbname=testdb user=postgres replication=bogus" -c "select 8"
assert_eq 8 "$PGU_OUT" "replication=bogus: a normal session, as 1.25"
pgu_try timeout 10 psql -X -At -h 127.0.0.1 -p "$PGU_PORT" "dbname=pgbouncer user=postgres replication=true" -c "SHOW VERSION"
assert_ok "the console with replication=true is the console"

check "auth_type = hba: the replication keyword matches physical replication only, all does not (as 1.25)"
printf 'host replication all 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 reject\n' >"$PGU_TMP/hba1.conf"
printf 'host all all 127.0.0.1/32 trust\n' >"$PGU_TMP/hba2.conf"
chmod 0644 "$PGU_TMP"/hba?.conf
declare -A hba
for n in 1 2; do
	pgu_start <<EOF
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb
[pgbouncer]
auth_type = hba
auth_hba_file = $PGU_TMP/hba$n.conf
EOF
	for r in true database; do
		pgu_try timeout 10 psql -X -At -h 127.0.0.1 -p "$PGU_PORT" "dbname=testdb user=postgres replication=$r" -c "SHOW server_encoding"
		hba[$n.$r]=$PGU_OUT
	done
done
assert_eq "SQL_ASCII" "${hba[1.true]}" "hba 'replication' rule: a physical client is let in"
assert_contains "${hba[1.database]}" "login rejected" "hba 'replication' rule: a logical client falls to the reject rule"
assert_contains "${hba[2.true]}" "no authentication method is found" "hba 'all' rule: not for a physical client"
assert_eq "UTF8" "${hba[2.database]}" "hba 'all' rule: a logical client is let in"

pass
