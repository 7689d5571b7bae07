#!/usr/bin/env bash
# Story: an operator checks a config before (re)loading it, as with nginx -t:
# `pgusher --check FILE` reads the ini, its %include files, auth_file, auth_hba_file and
# auth_ident_file, says what is wrong as file:line, prints the warnings a start would
# (unimplemented settings), exits 0 or 1, and binds nothing (the port stays free).
# Also --version, which names the libraries. Needs no cluster and no running pooler.
. "$(dirname "$0")/lib.sh"

D=$PGU_TMP/ck
mkdir -p "$D"
cd "$D"
P=$(pgu_free_port)
printf '"u" "p"\n' >users.txt
printf '"u" "p"\n"broken\n' >bad-users.txt
printf 'host all all 127.0.0.1/32 trust\nhost all all 127.0.0.1/99 trust\n' >bad.hba
printf 'host all all 127.0.0.1/32 trust\n' >good.hba
printf 'host all all 127.0.0.1/32 peer map=m\n' >map.hba
printf 'm root\n' >bad.ident

ini() { # name: write name.ini from stdin
	cat >"$1.ini"
}
check_cfg() { # name: run --check on name.ini
	pgu_try "$PGUSHER_BIN" --check "$1.ini"
}

ini good <<EOF
[databases]
testdb = host=127.0.0.1 port=5432 dbname=testdb
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $P
unix_socket_dir = $D
auth_type = hba
auth_file = users.txt
auth_hba_file = good.hba
EOF
check "a good config: exit 0, says so, binds nothing"
check_cfg good
assert_ok "--check good.ini"
assert_contains "$PGU_OUT" "good.ini test is successful" "success line"
if ss -Htln "sport = :$P" | grep -q .; then fail "--check left port $P bound"; fi
[[ ! -e $D/.s.PGSQL.$P ]] || fail "--check created a Unix socket"
echo "   ok: nothing listens on $P, no Unix socket"

check "the ready-to-run config of the package passes (its auth_file pointed here)"
sed "s|/etc/pgusher/userlist.txt|$PGUSHER_SRC/etc/deb/userlist.txt|" "$PGUSHER_SRC/etc/deb/pgusher.ini" >deb.ini
check_cfg deb
assert_ok "--check of etc/deb/pgusher.ini"

check "broken files: exit 1 and file:line of the fault"
ini badvalue <<EOF
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = abc
EOF
check_cfg badvalue
assert_fails "bad value"
assert_contains "$PGU_OUT" 'badvalue.ini:3: invalid value "abc" for parameter listen_port' "ini file:line"
assert_contains "$PGU_OUT" "badvalue.ini test failed" "failure line"

ini unknown <<EOF
[pgbouncer]

no_such_setting = 1
EOF
check_cfg unknown
assert_fails "unknown setting"
assert_contains "$PGU_OUT" 'unknown.ini:3: unknown parameter "no_such_setting"' "unknown parameter's line"

ini included <<EOF
[pgbouncer]
listen_port = $P
%include badvalue.ini
EOF
check_cfg included
assert_fails "bad %include"
assert_contains "$PGU_OUT" 'badvalue.ini:3:' "the included file's name and line"

ini badusers <<EOF
[pgbouncer]
auth_file = bad-users.txt
EOF
check_cfg badusers
assert_fails "bad auth_file"
assert_contains "$PGU_OUT" "bad-users.txt:2: syntax error" "auth_file's file:line"

ini nousers <<EOF
[pgbouncer]
auth_file = missing.txt
EOF
check_cfg nousers
assert_fails "missing auth_file"
assert_contains "$PGU_OUT" "nousers.ini:2: auth_file: missing.txt: cannot read" "missing auth_file named"

ini badhba <<EOF
[pgbouncer]
auth_type = hba
auth_hba_file = bad.hba
EOF
check_cfg badhba
assert_fails "bad auth_hba_file"
assert_contains "$PGU_OUT" "bad.hba:2: invalid CIDR mask" "auth_hba_file's file:line"

ini badident <<EOF
[pgbouncer]
auth_type = hba
auth_hba_file = map.hba
auth_ident_file = bad.ident
EOF
check_cfg badident
assert_fails "bad auth_ident_file"
assert_contains "$PGU_OUT" "bad.ident:1:" "auth_ident_file's file:line"

ini badtls <<EOF
[pgbouncer]
client_tls_sslmode = require
client_tls_key_file = $D/none.key
client_tls_cert_file = $D/none.crt
EOF
check_cfg badtls
assert_fails "missing TLS files"
assert_contains "$PGU_OUT" "none.crt" "the missing certificate named"

check "warnings a start prints, and exit 0"
ini warn <<EOF
[pgbouncer]
listen_port = $P
pool_idle_timeout = 20
EOF
check_cfg warn
assert_ok "config with an unimplemented setting"
assert_contains "$PGU_OUT" 'WARNING setting "pool_idle_timeout" is accepted for compatibility but not implemented yet' "the start-up warning"

check "--version names the build and its libraries, one per line, as PgBouncer does"
pgu_try "$PGUSHER_BIN" --version
assert_ok "--version"
assert_contains "$PGU_OUT" "libuv $(pkg-config --modversion libuv)" "libuv's version"
assert_contains "$PGU_OUT" "adns: c-ares $(pkg-config --modversion libcares)" "c-ares's version"
assert_contains "$PGU_OUT" "tls: OpenSSL $(pkg-config --modversion openssl)" "OpenSSL's version"
[[ $(head -n1 <<<"$PGU_OUT") =~ ^pgusher\ [0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "first line is not 'pgusher X.Y.Z': $PGU_OUT"
if pkg-config --exists libsystemd; then
	assert_contains "$PGU_OUT" "systemd: libsystemd $(pkg-config --modversion libsystemd)" "libsystemd's version"
fi

check "--check needs the file argument"
pgu_try "$PGUSHER_BIN" --check
assert_fails "--check without a file"

pass
