#!/usr/bin/env bash
# Story: read_your_writes. An application writes through `writes` and reads through `reads`
# (standbys). With replay paused on both standbys, a client that has just written reads its
# own row: pgusher sends its reads to the primary (listed in `reads` for that purpose), while
# a database without read_your_writes, and another user, read the standbys and miss the row.
# Once the standbys have replayed past the primary's position after the write, the client's
# reads go back to the standbys. A client that never wrote never reads from the primary.
# Runs its own cluster (it pauses replay).
PGU_OWN_CLUSTER=ryw:15541
. "$(dirname "$0")/lib.sh"
pgu_at_exit() { # a paused replay would outlive the story
	local h
	for h in "$PGU_STANDBY1" "$PGU_STANDBY2"; do
		pgu_direct "$h" "select pg_wal_replay_resume()" >/dev/null 2>&1
	done
}
P=$PGU_PRIMARY S1=$PGU_STANDBY1 S2=$PGU_STANDBY2 PORT=$PGU_PGPORT

pgu_start <<EOF
[databases]
writes = host=$P port=$PORT dbname=testdb target_session_attrs=read-write
reads = host=$P,$S1,$S2 port=$PORT dbname=testdb target_session_attrs=standby read_your_writes=writes
plain = host=$S1,$S2 port=$PORT dbname=testdb target_session_attrs=standby
[pgbouncer]
pool_mode = transaction
default_pool_size = 4
query_wait_timeout = 10
health_check_user = postgres
health_check_period = 1
health_check_timeout = 1
EOF
roles_known() { pgu_host_is reads "$P" 5 primary && pgu_host_is reads "$S1" 5 standby && pgu_host_is reads "$S2" 5 standby; }
pgu_wait_for 15 "roles of $P, $S1, $S2 known" roles_known
other() { PGPASSWORD=md5pass timeout 20 psql -X -At -q -h 127.0.0.1 -p "$PGU_PORT" -U u_md5 "$@"; }
pgu_direct "$P" "create table ryw_t(id int primary key, v text); grant all on ryw_t to public" >/dev/null
replicated() { [[ $(pgu_direct "$1" "select count(*) from pg_class where relname = 'ryw_t'") == 1 ]]; }
pgu_wait_for 15 "ryw_t replicated to $S1" replicated "$S1"
pgu_wait_for 15 "ryw_t replicated to $S2" replicated "$S2"

check "a client that never wrote reads only from the standbys"
hosts=$(for i in $(seq 12); do other reads -c 'select host(inet_server_addr())'; done | sort -u | tr '\n' ' ')
assert_not_contains "$hosts" "$P " "reads of a client without writes ($hosts)"
hosts=$(for i in $(seq 12); do pgu_q reads -c 'select host(inet_server_addr())'; done | sort -u | tr '\n' ' ')
assert_not_contains "$hosts" "$P " "reads of u_trust before any write ($hosts)"

check "replay paused on both standbys: the writer reads its own row, others do not"
pgu_direct "$S1" "select pg_wal_replay_pause()" >/dev/null
pgu_direct "$S2" "select pg_wal_replay_pause()" >/dev/null
pgu_q writes -c "insert into ryw_t values (1, 'mine')"
got=$(pgu_q reads -F'|' -c "select coalesce((select v from ryw_t where id = 1), 'MISSING'), host(inet_server_addr())")
assert_eq "mine|$P" "$got" "the writer's next read sees its row, on the primary"
for i in 1 2 3 4 5; do
	got=$(pgu_q reads -c "select coalesce((select v from ryw_t where id = 1), 'MISSING')")
	assert_eq "mine" "$got" "the writer's read $i"
done
assert_eq "MISSING" "$(pgu_q plain -c "select coalesce((select v from ryw_t where id = 1), 'MISSING')")" \
	"a database without read_your_writes reads a standby that has not replayed it"
got=$(other reads -F'|' -c "select coalesce((select v from ryw_t where id = 1), 'MISSING'), host(inet_server_addr()) <> '$P'")
assert_eq "MISSING|t" "$got" "another user reads a standby (consistency is per user and address)"

check "standbys replay again: the writer's reads go back to them and see the row"
pgu_direct "$S1" "select pg_wal_replay_resume()" >/dev/null
pgu_direct "$S2" "select pg_wal_replay_resume()" >/dev/null
on_standby() {
	[[ $(pgu_q reads -F'|' -c "select v, host(inet_server_addr()) <> '$P' from ryw_t where id = 1") == "mine|t" ]]
}
pgu_wait_for 15 "a read of the writer served by a standby that has the row" on_standby
echo "   (health_check_period 1: the primary's position after the write, then the standbys' replay, are seen by checks)"
out=$(for i in $(seq 10); do pgu_q reads -F'|' -c "select v, host(inet_server_addr()) from ryw_t where id = 1"; done | sort | uniq -c | tr '\n' ' ')
assert_not_contains "$out" "|$P" "after catching up, the writer's reads stay on the standbys ($out)"
assert_not_contains "$out" "MISSING" "and see the row"

check "a write inside an explicit transaction counts as well; SHOW HOSTS unchanged by it"
pgu_direct "$S1" "select pg_wal_replay_pause()" >/dev/null
pgu_direct "$S2" "select pg_wal_replay_pause()" >/dev/null
pgu_q writes -c "begin" -c "update ryw_t set v = 'mine2' where id = 1" -c "commit"
assert_eq "mine2" "$(pgu_q reads -c 'select v from ryw_t where id = 1')" "the writer sees its update"
pgu_direct "$S1" "select pg_wal_replay_resume()" >/dev/null
pgu_direct "$S2" "select pg_wal_replay_resume()" >/dev/null

check "read_your_writes naming no database is a configuration error with file:line"
cat >"$PGU_TMP/bad.ini" <<EOF
[databases]
reads = host=$S1 port=$PORT dbname=testdb read_your_writes=nosuch
[pgbouncer]
listen_port = 1
auth_type = trust
auth_file = $PGU_USERLIST
EOF
pgu_try "$PGUSHER_BIN" "$PGU_TMP/bad.ini"
assert_fails "start with a bad read_your_writes"
assert_contains "$PGU_OUT" "bad.ini:2" "the error names the file and line"
assert_contains "$PGU_OUT" "read_your_writes" "the error names the setting"

pass
