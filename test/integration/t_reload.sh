#!/usr/bin/env bash
# User story: an operator changes pgusher's config while applications are running and sends
# SIGHUP (or RELOAD), as with PgBouncer. Under a 20 s pgbench load a database moves from one
# standby to the other and its pool grows: not one transaction fails, the old servers go,
# the new host serves. A broken ini (unknown key, garbage line) is refused as a whole: the
# running config stays, the log names file:line, RELOAD answers with an ERROR. Databases
# added by reload become connectable, removed ones are refused with "no such database", and
# auth_file changes (a new user, a changed password) take effect on reload.
source "$(dirname "$0")/lib.sh"

admin() { psql -X -A -t -F'|' -P footer=off -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGU_PORT" -U postgres -d pgbouncer "$@"; }
col() { # show-cmd key-column key value-column
	admin -c "SHOW $1" | awk -F'|' -v k="$2" -v n="$3" -v v="$4" '$k == n { print $v }'
}
q() { # db sql
	psql -X -A -t -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGU_PORT" -U u_trust -d "$1" -c "$2"
}
backends_on() { # host application_name: client backends of that app on that node
	pg_direct "$1" postgres -c \
		"select count(*) from pg_stat_activity where application_name = '$2' and backend_type = 'client backend'"
}
dbs_summary() { # name|host|port|database|pool_size|pool_mode of every database but the console
	admin -c 'SHOW DATABASES' | awk -F'|' '$1 != "pgbouncer" {print $1"|"$2"|"$3"|"$4"|"$6"|"$10}' | sort
}

pgu_start <<EOF
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb pool_size=2
reads = host=$PGU_STANDBY1 port=$PGU_PGPORT dbname=testdb pool_size=2
gone = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb

[pgbouncer]
pool_mode = transaction
default_pool_size = 2
max_client_conn = 100
EOF

# ---------------------------------------------------------------- (a) under load
check "before: SHOW DATABASES and the node serving reads"
assert_eq "$PGU_STANDBY1|2" "$(col DATABASES 1 reads 2)|$(col DATABASES 1 reads 6)" "reads host|pool_size"
assert_eq "$PGU_PRIMARY|2" "$(col DATABASES 1 testdb 2)|$(col DATABASES 1 testdb 6)" "testdb host|pool_size"
assert_eq "$PGU_STANDBY1" "$(q reads 'select host(inet_server_addr())')" "reads served by standby 1"

check "SIGHUP during pgbench -S -T 20 -c 8 on reads: host $PGU_STANDBY1 -> $PGU_STANDBY2, pool_size 2 -> 4"
APP=pgu-reload-$$
PGAPPNAME=$APP pgu_bg timeout 90 pgbench -n -S -T 20 -c 8 -j 2 -h 127.0.0.1 -p "$PGU_PORT" -U u_trust reads >"$PGU_TMP/pb.out" 2>&1
PB=$PGU_BG_PID
n1=0
for ((i = 0; i < 100; i++)); do
	n1=$(backends_on "$PGU_STANDBY1" "$APP")
	((n1 >= 1)) && break
	sleep 0.1
done
((n1 >= 1 && n1 <= 2)) || fail "pgbench backends on $PGU_STANDBY1 before the reload: $n1 (want 1..2)"
echo "   ok: $n1 pgbench backends on $PGU_STANDBY1 before the reload"
sleep 3
pgu__alive "$PB" || fail "pgbench ended early: $(cat "$PGU_TMP/pb.out")"
sed -i -e "s/^reads = .*/reads = host=$PGU_STANDBY2 port=$PGU_PGPORT dbname=testdb pool_size=4/" \
	-e "s/^testdb = .*/testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb pool_size=4/" "$PGU_INI"
grep -q "^reads = host=$PGU_STANDBY2 " "$PGU_INI" || fail "ini edit did not apply"
pgu_reload_wait
# Until pgbench ends (bounded): the old node loses all of pgbench's backends, the new node
# gets them, never more than the new pool_size.
max2=0 last1=-1
for ((i = 0; i < 250; i++)); do
	pgu__alive "$PB" || break
	n2=$(backends_on "$PGU_STANDBY2" "$APP")
	last1=$(backends_on "$PGU_STANDBY1" "$APP")
	((n2 > max2)) && max2=$n2
	sleep 0.2
done
echo "   pgbench backends after the reload: max $max2 on $PGU_STANDBY2, $last1 left on $PGU_STANDBY1 at the end"
((max2 >= 3)) || fail "the reads pool never grew beyond the old pool_size 2 on $PGU_STANDBY2 (max $max2)"
((max2 <= 4)) || fail "$max2 backends on $PGU_STANDBY2, more than the new pool_size 4"
assert_eq "0" "$last1" "pgbench backends left on the old node $PGU_STANDBY1"
rc=0
wait "$PB" || rc=$?
PGU_BG_PIDS=()
out=$(cat "$PGU_TMP/pb.out")
echo "$out" | grep -E 'processed|failed|tps' | sed 's/^/     /'
assert_eq 0 "$rc" "pgbench exit status"
assert_contains "$out" "number of failed transactions: 0 (" "0 failed transactions across the reload"

check "after: reads is served by $PGU_STANDBY2, SHOW DATABASES shows the new definitions"
assert_eq "$PGU_STANDBY2" "$(q reads 'select host(inet_server_addr())')" "select inet_server_addr() through reads"
assert_eq "t" "$(q reads 'select pg_is_in_recovery()')" "reads still a standby"
assert_eq "$PGU_STANDBY2|$PGU_PGPORT|4" "$(col DATABASES 1 reads 2)|$(col DATABASES 1 reads 3)|$(col DATABASES 1 reads 6)" "SHOW DATABASES reads host|port|pool_size"
assert_eq "4" "$(col DATABASES 1 testdb 6)" "SHOW DATABASES testdb pool_size"
srv=$(admin -c 'SHOW SERVERS' | awk -F'|' '$3=="reads" {print $6}' | sort -u)
[[ -z $srv || $srv == "$PGU_STANDBY2" ]] || fail "SHOW SERVERS for reads lists other hosts than $PGU_STANDBY2: $srv"
echo "   ok: SHOW SERVERS for reads: only $PGU_STANDBY2 (${srv:-none idle})"

# ---------------------------------------------------------------- (b) broken ini
cp "$PGU_INI" "$PGU_TMP/good.ini"
before=$(dbs_summary)
conns_before=$(col CONFIG 1 max_client_conn 2)

broken_case() { # label line-to-append
	local label=$1 line=$2 lineno
	cp "$PGU_TMP/good.ini" "$PGU_INI"
	# The broken file also moves reads back to standby 1: nothing of it may be applied.
	sed -i -e "s/^reads = .*/reads = host=$PGU_STANDBY1 port=$PGU_PGPORT dbname=testdb pool_size=3/" \
		-e "s/^max_client_conn = .*/max_client_conn = 55/" "$PGU_INI"
	printf '%s\n' "$line" >>"$PGU_INI"
	lineno=$(wc -l <"$PGU_INI")
	local nlog
	nlog=$(wc -l <"$PGU_LOG")

	check "broken ini ($label) + SIGHUP: old config kept, error with file:line logged"
	pgu_reload
	local found="" i
	for ((i = 0; i < 50; i++)); do
		found=$(tail -n +"$((nlog + 1))" "$PGU_LOG" | grep -E 'ERROR' | grep -F "pgusher.ini:$lineno" || true)
		[[ -n $found ]] && break
		sleep 0.2
	done
	[[ -n $found ]] || fail "no ERROR naming pgusher.ini:$lineno after SIGHUP with a broken ini; new log lines:
$(tail -n +"$((nlog + 1))" "$PGU_LOG" | grep -v 'login attempt\|closing because' | tail -n 20)"
	echo "   ok: $found"
	tail -n +"$((nlog + 1))" "$PGU_LOG" | grep -q "configuration reloaded" &&
		fail "the log says 'configuration reloaded' for a broken ini"
	pgu__alive "$PGU_PID" || fail "pooler died on a broken ini"
	assert_eq "$before" "$(dbs_summary)" "SHOW DATABASES unchanged"
	assert_eq "$conns_before" "$(col CONFIG 1 max_client_conn 2)" "max_client_conn unchanged"
	assert_eq "$PGU_STANDBY2" "$(q reads 'select host(inet_server_addr())')" "reads still on $PGU_STANDBY2"
	assert_eq "1" "$(q testdb 'select 1')" "testdb still serves"

	check "broken ini ($label): admin RELOAD returns an ERROR"
	pgu_try admin -c 'RELOAD'
	assert_fails "RELOAD"
	assert_contains "$PGU_OUT" "ERROR" "RELOAD error"
	assert_contains "$PGU_OUT" "pgusher.ini:$lineno" "RELOAD error names file:line"
	assert_eq "$before" "$(dbs_summary)" "SHOW DATABASES unchanged after RELOAD"
}
broken_case "unknown key" "no_such_setting_xyz = 1"
broken_case "garbage line" "this is not an ini line"

check "the good ini again: RELOAD succeeds"
cp "$PGU_TMP/good.ini" "$PGU_INI"
pgu_try admin -c 'RELOAD'
assert_ok "RELOAD of the good ini"
assert_eq "$before" "$(dbs_summary)" "SHOW DATABASES as before"

# ---------------------------------------------------------------- (c) add / remove
check "a database added by reload is connectable; a removed one is refused"
pgu_try q added 'select 1'
assert_fails "added database before the reload"
assert_contains "$PGU_OUT" "no such database" "error before the reload"
assert_eq "1" "$(q gone 'select 1')" "database 'gone' works before the reload"
sed -i -e "/^gone = /d" -e "/^\[databases\]/a added = host=$PGU_STANDBY1 port=$PGU_PGPORT dbname=testdb" "$PGU_INI"
pgu_reload_wait
ok=""
for ((i = 0; i < 50; i++)); do
	ok=$(q added 'select host(inet_server_addr())' 2>/dev/null || true)
	[[ -n $ok ]] && break
	sleep 0.1
done
assert_eq "$PGU_STANDBY1" "$ok" "new database 'added' connects to its host"
assert_eq "$PGU_STANDBY1" "$(col DATABASES 1 added 2)" "SHOW DATABASES lists 'added'"
pgu_try q gone 'select 1'
assert_fails "removed database 'gone'"
assert_contains "$PGU_OUT" "no such database" "error for the removed database"
# PgBouncer drops a database that left the config from SHOW DATABASES at reload. Checked
# again at the very end so a failure here does not hide the auth_file checks.
GONE_LISTED=$(col DATABASES 1 gone 1)

# ---------------------------------------------------------------- (d) auth_file
check "auth_file changes take effect on reload (auth_type md5)"
pgu_stop
: >"$PGU_USERLIST"
pgu_user postgres "$(pgu_md5_secret postgres adminpw)"
pgu_user u_trust "$(pgu_md5_secret u_trust first)"
pgu_start <<EOF
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb

[pgbouncer]
pool_mode = transaction
auth_type = md5
EOF
pw() { # user password: select current_user through the pooler
	PGPASSWORD=$2 psql -X -A -t -q -w -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGU_PORT" -U "$1" -d testdb -c 'select current_user'
}
assert_eq "u_trust" "$(pw u_trust first)" "u_trust with its auth_file password"
pgu_try pw u_plain plainpass
assert_fails "u_plain, not in the auth_file yet"
pgu_try pw u_trust second
assert_fails "u_trust with a password not yet in the auth_file"
# New user (its real server password, plaintext so the pooler can log in to the server with
# it) and a changed password.
pgu_user u_plain plainpass
pgu_user_set u_trust "$(pgu_md5_secret u_trust second)"
PGPASSWORD=adminpw pgu_try admin -c 'RELOAD'
assert_ok "RELOAD after the auth_file change"
assert_eq "u_plain" "$(pw u_plain plainpass)" "new auth_file user logs in (pooler and server)"
assert_eq "u_trust" "$(pw u_trust second)" "u_trust with its new password"
pgu_try pw u_trust first
assert_fails "u_trust with its old password after the reload"
assert_contains "$PGU_OUT" "password authentication failed" "refusal text"
# And back by SIGHUP: the user removed again is refused.
grep -v '^"u_plain" ' "$PGU_USERLIST" >"$PGU_TMP/ul" && cat "$PGU_TMP/ul" >"$PGU_USERLIST"
pgu_reload_wait
ok=1
for ((i = 0; i < 50; i++)); do
	pgu_try pw u_plain plainpass
	((PGU_RC != 0)) && ok=0 && break
	sleep 0.1
done
((ok == 0)) || fail "u_plain still logs in after being removed from the auth_file and SIGHUP"
echo "   ok: u_plain refused after removal + SIGHUP"

check "(from the add/remove step) SHOW DATABASES no longer listed the removed database 'gone'"
assert_eq "" "$GONE_LISTED" "SHOW DATABASES row for 'gone' after it was removed by reload"

pass
