#!/usr/bin/env bash
# User story: the users side of PgBouncer's authentication. Forced users (user= and
# password= on a database line, or the password from auth_file) log every client in to the
# server as that user; [users] settings apply to the user's pools; auth_type = any lets any
# name in as the database's forced user (or the console's admin) and refuses databases
# without one; a user that does not exist gets, under every auth_type, PgBouncer 1.25's exact
# message and log lines.
#
# Validated against PgBouncer 1.25.2
# (PGUSHER_BIN=/work/shared/ref/pgbouncer-1.25.2/pgbouncer): PASS.
# Deliberate difference (not asserted beyond the SQLSTATE): a forced user without any
# password whose server asks for a cleartext one is refused by pgusher itself ("cannot do
# cleartext authentication without a plain password"); PgBouncer sends an empty password
# and relays the server's "empty password returned by client".
source "$(dirname "$0")/lib.sh"

WIRE="python3 $(dirname "$0")/pgwire.py"

: >"$PGU_USERLIST"
pgu_user postgres ""
pgu_user u_trust ""
pgu_user u_scram scrampass
pgu_user u_md5 md5pass
cat >"$PGU_TMP/hba.conf" <<'EOF'
host all u_md5,u_nobody 127.0.0.1/32 md5
host all all all trust
EOF
chmod 0644 "$PGU_TMP/hba.conf"

start_with() { # auth_type
	pgu_start <<EOF
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb
f_md5 = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb user=u_md5 password=md5pass
f_scram = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb user=u_scram
f_nopw = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb user=u_plain
f_bad = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb user=u_md5 password=wrong

[users]
u_trust = pool_mode=transaction max_user_connections=1

[pgbouncer]
auth_type = $1
auth_hba_file = $PGU_TMP/hba.conf
EOF
}

wire() { # db user password [query]
	pgu_try timeout 20 $WIRE startup --port "$PGU_PORT" --database "$1" --user "$2" --password "$3" \
		${4:+--query "$4"}
}

start_with trust
check "forced users: password= on the line, else auth_file's; md5 and SCRAM at the server"
wire f_md5 u_trust x "select current_user"
assert_contains "$PGU_OUT" "ROW u_md5" "f_md5 logs in to the server as u_md5 (md5, password= of the line)"
wire f_scram u_trust x "select current_user"
assert_contains "$PGU_OUT" "ROW u_scram" "f_scram logs in as u_scram (SCRAM, auth_file's password)"
wire f_bad u_trust x
assert_contains "$PGU_OUT" 'ERROR S=FATAL C=28P01 M=password authentication failed for user "u_md5"' \
	"a wrong password= gets the server's refusal, in its words"
assert_log_contains 'pooler error: password authentication failed for user "u_md5"'
wire f_nopw u_trust x
assert_contains "$PGU_OUT" "ERROR S=FATAL C=28P01" "no password for a server that wants one"
pools=$(pgu_admin "SHOW POOLS" | awk -F'|' '{print $1"/"$2}')
assert_contains "$pools" "f_md5/u_md5" "one pool per forced user"
assert_not_contains "$pools" "f_md5/u_trust" "not one per client user"

check "[users]: pool_mode=transaction and max_user_connections=1 for u_trust"
pgu_sess_open a
pgu_sess_open b
pid_a=$(pgu_sess_q a "select pg_backend_pid();")
pid_b=$(pgu_sess_q b "select pg_backend_pid();")
[[ $pid_a =~ ^[0-9]+$ ]] || fail "session a: $pid_a"
assert_eq "$pid_a" "$pid_b" "both sessions were served by the user's one server, one transaction at a time"
assert_contains "$(pgu_admin "SHOW USERS" | awk -F'|' '$1=="u_trust"')" "transaction" "SHOW USERS: pool_mode"
pgu_sess_close a
pgu_sess_close b

check "auth_type=trust: a user not in auth_file"
wire testdb u_nobody x
assert_contains "$PGU_OUT" 'ERROR S=FATAL C=08P01 M="trust" authentication failed' "refused"
assert_log_contains "(nodb)/(nouser)@127.0.0.1"
assert_log_contains "no such user: u_nobody"
assert_log_contains "(nodb)/u_nobody@127.0.0.1"
assert_log_contains 'closing because: "trust" authentication failed'
pgu_stop

for AUTH in md5 scram-sha-256 plain hba; do
	start_with "$AUTH"
	check "auth_type=$AUTH: a user not in auth_file gets PgBouncer's answer and log lines"
	wire testdb u_nobody x
	case $AUTH in
	scram-sha-256)
		assert_contains "$PGU_OUT" "AUTH sasl" "a SCRAM exchange is run all the same"
		assert_contains "$PGU_OUT" "ERROR S=FATAL C=08P01 M=SASL authentication failed" "refused"
		assert_log_contains "(nodb)/u_nobody@127.0.0.1:"
		assert_log_contains "closing because: SASL authentication failed"
		grep -q "ERROR C-.*(nodb)/u_nobody@.* password authentication failed$" "$PGU_LOG" ||
			fail "no ERROR line 'password authentication failed' for the SCRAM failure"
		;;
	*)
		assert_contains "$PGU_OUT" "ERROR S=FATAL C=08P01 M=password authentication failed" "refused"
		assert_not_contains "$PGU_OUT" "u_nobody" "the answer does not name the user"
		assert_log_contains "closing because: password authentication failed"
		;;
	esac
	assert_log_contains "no such user: u_nobody"
	assert_log_contains "login attempt: db=testdb user=u_nobody"
	check "auth_type=$AUTH: a wrong password gets the same answer"
	wire testdb u_md5 wrong
	if [[ $AUTH == scram-sha-256 ]]; then
		assert_contains "$PGU_OUT" "M=SASL authentication failed" "wrong password"
	else
		assert_contains "$PGU_OUT" "ERROR S=FATAL C=08P01 M=password authentication failed" "wrong password"
	fi
	pgu_stop
done

start_with any
check "auth_type=any: any name logs in as the forced user, logged as that user"
wire f_md5 u_whoever x "select current_user"
assert_contains "$PGU_OUT" "ROW u_md5" "logged in as u_md5"
assert_log_contains "f_md5/u_md5@127.0.0.1"
assert_log_contains "login attempt: db=f_md5 user=u_md5"
check "auth_type=any: a database without a forced user is a config error"
wire testdb u_trust x
assert_contains "$PGU_OUT" "ERROR S=FATAL C=08P01 M=bouncer config error" "refused"
assert_log_contains "auth_type=any requires forced user"
check "auth_type=any: any name is the console's admin"
out=$(timeout 10 psql -X -A -t -q -h 127.0.0.1 -p "$PGU_PORT" -U u_whoever -d pgbouncer -c "SHOW LISTS" 2>&1) ||
	fail "console refused under auth_type=any: $out"
assert_contains "$out" "databases" "SHOW LISTS answered"
pgu_stop

pass
