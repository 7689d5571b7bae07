#!/usr/bin/env bash
# User story: pgusher is the TLS server for its clients (client_tls_sslmode), with
# certificates a small CA made. psql and pgbench connect with sslmode=require and verify-full
# (right CA, host name or address); a plaintext client is refused under require with
# PgBouncer's "SSL required"; verify-ca wants a client certificate from client_tls_ca_file;
# auth_type=cert logs in the certificate's common name only. When pgusher presents an expired
# certificate, or one naming neither localhost nor 127.0.0.1, psql verify-full refuses it with
# libpq's errors (certificate verify failed / does not match host name) while require clients,
# held sessions and the Unix socket go on; verify-full refuses a client certificate from another
# CA, or none. Garbage instead of a
# ClientHello, or a handshake that stops half-way, costs nothing: closed cleanly or by
# client_login_timeout, and everybody else is served all along. A RELOAD with a broken key
# keeps the running TLS context and says why. SHOW CLIENTS and the login log show the TLS
# description. (Server side TLS is plaintext here.)
#
# Against PgBouncer 1.25.2 (PGUSHER_BIN=.../pgbouncer) the error texts and SQLSTATEs are the
# same; PgBouncer differs by design here: its require mode verifies a client certificate the
# client offers when client_tls_ca_file is set (its manual says it does not; pgusher does as
# the manual says: see "require ignores"), a failed handshake leaves its socket open until
# the client gives up (pgusher closes it), and auth_type=cert with sslmode other than
# verify-full refuses start and reload (same here, different wording).
source "$(dirname "$0")/lib.sh"

C=$PGU_TMP/certs
pgu_make_certs "$C"
TLSWIRE=$PGU_TMP/tlswire.py
cat >"$TLSWIRE" <<'PY'
"""A TLS client for raw checks: SSLRequest, then a handshake (or garbage, or half of a
ClientHello, or nothing), then a StartupMessage; prints SSL-REPLY, TLS, ERROR, READY,
CLOSED after <s> / OPEN after <s> lines."""
import argparse, socket, ssl, struct, sys, time
ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--user", default="u_trust")
ap.add_argument("--database", default="testdb")
ap.add_argument("--cert"); ap.add_argument("--key")
ap.add_argument("--ca", help="verify the pooler's certificate against this CA (no name check)")
ap.add_argument("--what", default="login", choices=["login", "garbage", "half", "nothing"])
ap.add_argument("--wait", type=float, default=10)
a = ap.parse_args()
s = socket.create_connection(("127.0.0.1", a.port), timeout=a.wait)
s.sendall(struct.pack("!II", 8, 80877103))
print("SSL-REPLY", s.recv(1).decode(), flush=True)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
if a.ca:
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(a.ca)
if a.cert:
    ctx.load_cert_chain(a.cert, a.key)
if a.what != "login":
    if a.what == "garbage":
        s.sendall(b"GET / HTTP/1.0\r\n\r\n" + bytes(range(256)) * 8)
    elif a.what == "half":
        inc, outg = ssl.MemoryBIO(), ssl.MemoryBIO()
        o = ctx.wrap_bio(inc, outg)
        try:
            o.do_handshake()
        except ssl.SSLWantReadError:
            pass
        hello = outg.read()
        s.sendall(hello[: len(hello) // 2])
    t = time.time()
    try:
        while s.recv(4096):
            pass
        print("CLOSED after %.1f" % (time.time() - t))
    except (ConnectionResetError, BrokenPipeError):
        print("CLOSED after %.1f" % (time.time() - t))
    except socket.timeout:
        print("OPEN after %.1f" % (time.time() - t))
    sys.exit(0)
try:
    t = ctx.wrap_socket(s)
    print("TLS", t.version(), flush=True)
    body = b"user\0" + a.user.encode() + b"\0database\0" + a.database.encode() + b"\0\0"
    t.sendall(struct.pack("!II", len(body) + 8, 196608) + body)
    buf = b""
    while True:
        d = t.recv(8192)
        if not d:
            print("CLOSED")
            break
        buf += d
        while len(buf) >= 5:
            typ, n = buf[:1], struct.unpack("!I", buf[1:5])[0]
            if len(buf) < n + 1:
                break
            m, buf = buf[5 : n + 1], buf[n + 1 :]
            if typ == b"E":
                f = {x[:1]: x[1:].decode() for x in m.split(b"\0") if x}
                print("ERROR S=%s C=%s M=%s" % (f.get(b"S"), f.get(b"C"), f.get(b"M")))
            elif typ == b"Z":
                print("READY")
                sys.exit(0)
except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as e:
    print("TLS-FAILED", e)
PY
tlswire() { python3 "$TLSWIRE" --port "$PGU_PORT" "$@"; }
WIRE="python3 $(dirname "$0")/pgwire.py"

pgu_start <<EOF
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb

[pgbouncer]
pool_mode = transaction
log_connections = 1
client_login_timeout = 3
client_tls_sslmode = require
client_tls_key_file = $C/server.key
client_tls_cert_file = $C/server.crt
client_tls_ca_file = $C/ca.crt
EOF

# libpq connection string through the pooler
cs() { echo "host=${HOST:-127.0.0.1} port=$PGU_PORT dbname=testdb user=${USR:-u_trust} $*"; }
q() { psql -X -A -t -q -v ON_ERROR_STOP=1 "$(cs "${@:2}")" -c "$1"; }
still_works() {
	assert_eq alive "$(q "select 'alive'" sslmode=require)" "a TLS client is served $1"
}
set_ini() { # key value: change a [pgbouncer] setting in the running ini (then reload)
	sed -i "s|^$1 = .*|$1 = $2|" "$PGU_INI"
	grep -q "^$1 = $2\$" "$PGU_INI" || fail "could not set $1 in $PGU_INI"
}
RELOAD_RE="got SIGHUP, re-reading config" # both log it, then reload in the same loop turn
reload_wait() { # SIGHUP, then wait until the pooler took it
	local n i
	n=$(grep -cE "$RELOAD_RE" "$PGU_LOG" || true)
	pgu_reload
	for ((i = 0; i < 50; i++)); do
		(($(grep -cE "$RELOAD_RE" "$PGU_LOG" || true) > n)) && return 0
		sleep 0.1
	done
	fail "no reload outcome in the log"
}

check "psql sslmode=require through pgusher is encrypted"
pgu_try psql -X -A -t "$(cs sslmode=require)" -c '\conninfo'
assert_ok "sslmode=require login"
assert_contains "$PGU_OUT" "SSL connection (protocol: TLSv1." "psql reports TLS"
assert_eq 42 "$(q 'select 42' sslmode=require)" "a query over TLS"
assert_log_contains "login attempt: db=testdb user=u_trust tls=TLSv1."

check "sslmode=verify-full with the right CA, for host=localhost and host=127.0.0.1"
assert_eq vf-name "$(HOST=localhost q "select 'vf-name'" sslmode=verify-full sslrootcert="$C/ca.crt")" "verify-full by name"
assert_eq vf-ip "$(q "select 'vf-ip'" sslmode=verify-full sslrootcert="$C/ca.crt")" "verify-full by address"
pgu_try q "select 1" sslmode=verify-full sslrootcert="$C/ca2.crt"
assert_fails "verify-full against another CA fails (pgusher showed its own certificate)"
assert_contains "$PGU_OUT" "certificate verify failed" "libpq says why"

check "SHOW CLIENTS / SHOW SOCKETS: the tls column describes a TLS client, empty for plaintext"
PGSSLMODE=require pgu_sess_open tlssess
assert_eq 1 "$(pgu_sess_q tlssess 'select 1;')" "held TLS session"
tls_col=$(pgu_admin 'SHOW CLIENTS' | awk -F'|' '$3=="testdb" && $2=="u_trust" {print $18}' | head -n 1)
[[ $tls_col == TLSv1.*/* ]] || fail "tls column of the TLS client is '$tls_col'"
echo "   ok: tls column '$tls_col'"
sock_tls=$(pgu_admin 'SHOW SOCKETS' | awk -F'|' '$3=="testdb" && $1=="C" {print $18}' | head -n 1)
assert_eq "$tls_col" "$sock_tls" "SHOW SOCKETS shows the same"
unix_tls=$(psql -X -A -t -F'|' -h "$PGU_TMP" -p "$PGU_PORT" -U postgres pgbouncer -c 'SHOW CLIENTS' |
	awk -F'|' '$6=="unix" {print "[" $18 "]"}' | head -n 1)
assert_eq "[]" "$unix_tls" "the Unix-socket console client's tls column is empty"
pgu_sess_close tlssess

check "client_tls_sslmode=require refuses a plaintext TCP client with PgBouncer's error"
pgu_try q "select 1" sslmode=disable
assert_fails "sslmode=disable is refused"
assert_contains "$PGU_OUT" "FATAL:  SSL required" "the client is told"
pgu_try $WIRE startup --port "$PGU_PORT" --user u_trust --database testdb --query "select 1"
assert_contains "$PGU_OUT" "ERROR S=FATAL C=08P01 M=SSL required" "SQLSTATE 08P01"
assert_log_contains "pooler error: SSL required"
assert_eq unix-ok "$(pgu_psql_unix testdb u_trust -c "select 'unix-ok'")" "the Unix socket stays plaintext and open"
assert_eq prefer-ok "$(q "select 'prefer-ok'" sslmode=prefer)" "sslmode=prefer gets TLS"

check "random bytes after SSLRequest: the connection is closed cleanly at once"
pgu_try tlswire --what garbage --wait 5
echo "$PGU_OUT" | sed 's/^/     /'
assert_contains "$PGU_OUT" "SSL-REPLY S" "the SSLRequest was answered 'S'"
assert_contains "$PGU_OUT" "CLOSED after 0." "closed at once"
assert_log_contains "TLS handshake error:"
still_works "after the garbage"

check "a handshake that stops half-way (or never starts) is closed by client_login_timeout"
tlswire --what half --wait 12 >"$PGU_TMP/half.out" 2>&1 &
half_pid=$!
pgu_try tlswire --what nothing --wait 12
still_works "while two handshakes stall"
wait "$half_pid" || true
for out in "$PGU_OUT" "$(cat "$PGU_TMP/half.out")"; do
	echo "$out" | sed 's/^/     /'
	secs=$(echo "$out" | sed -n 's/^CLOSED after \([0-9]*\)\..*/\1/p')
	[[ -n $secs ]] || fail "a stalled handshake was not closed: $out"
	((secs >= 2 && secs <= 6)) || fail "closed after $secs s, client_login_timeout is 3 s"
	echo "   ok: closed after ${secs}.x s"
done
still_works "after the stalled handshakes"

check "pgbench -S -c 4 -t 100 with sslmode=require: no failures"
PGSSLMODE=require pgu_try timeout 120 pgbench -n -S -c 4 -j 2 -t 100 -h 127.0.0.1 -p "$PGU_PORT" -U u_trust testdb
assert_ok "pgbench exits 0"
assert_contains "$PGU_OUT" "number of transactions actually processed: 400/400" "all 400 done"
assert_contains "$PGU_OUT" "number of failed transactions: 0 (" "none failed"

check "RELOAD with a broken key keeps serving TLS with the running context and logs why"
printf 'not a key\n' >"$C/broken.key"
chmod 0644 "$C/broken.key"
set_ini client_tls_cert_file "$C/other.crt"
set_ini client_tls_key_file "$C/broken.key"
reload_wait
assert_log_contains "broken.key"
assert_eq still-ca "$(q "select 'still-ca'" sslmode=verify-full sslrootcert="$C/ca.crt")" "the old certificate is still presented"
set_ini client_tls_cert_file "$C/server.crt"
set_ini client_tls_key_file "$C/server.key"

check "pgusher presenting an expired certificate: psql verify-full refuses it with libpq's certificate error"
PGSSLMODE=require pgu_sess_open held
assert_eq 1 "$(pgu_sess_q held 'select 1;')" "a TLS session held across the certificate changes"
set_ini client_tls_cert_file "$C/expired.crt"
set_ini client_tls_key_file "$C/expired.key"
reload_wait
pgu_try q "select 1" sslmode=verify-full sslrootcert="$C/ca.crt"
assert_fails "verify-full against an expired certificate"
assert_contains "$PGU_OUT" "certificate verify failed" "libpq's error"
echo "   psql said: $PGU_OUT"
pgu_try tlswire --ca "$C/ca.crt"
assert_contains "$PGU_OUT" "certificate has expired" "OpenSSL's reason: the certificate pgusher presents has expired"
still_works "with sslmode=require (which checks no certificate)"
assert_eq 2 "$(pgu_sess_q held 'select 2;')" "the held session is still served"
assert_eq unix-ok "$(pgu_psql_unix testdb u_trust -c "select 'unix-ok'")" "the Unix socket is still served"

check "pgusher presenting a certificate that names neither localhost nor 127.0.0.1: verify-full says host name mismatch"
set_ini client_tls_cert_file "$C/noname.crt"
set_ini client_tls_key_file "$C/noname.key"
reload_wait
for h in localhost 127.0.0.1; do
	pgu_try psql -X -At "host=$h port=$PGU_PORT dbname=testdb user=u_trust sslmode=verify-full sslrootcert=$C/ca.crt" -c 'select 1'
	assert_fails "verify-full to $h"
	assert_contains "$PGU_OUT" "does not match host name \"$h\"" "libpq's host name mismatch for $h"
done
assert_eq vca-ok "$(q "select 'vca-ok'" sslmode=verify-ca sslrootcert="$C/ca.crt")" "verify-ca (no name check) accepts it"
still_works "with the mismatching certificate"
assert_eq 3 "$(pgu_sess_q held 'select 3;')" "the held session is still served"
set_ini client_tls_cert_file "$C/server.crt"
set_ini client_tls_key_file "$C/server.key"
reload_wait
assert_eq vf-back "$(q "select 'vf-back'" sslmode=verify-full sslrootcert="$C/ca.crt")" "verify-full works again with the right certificate"
pgu_sess_close held

check "require ignores a client certificate (not validated: PgBouncer's manual)"
assert_eq other-cert "$(q "select 'other-cert'" sslmode=require sslcert="$C/other_client.crt" sslkey="$C/other_client.key")" \
	"a certificate from another CA is not checked under require"

check "verify-ca: a client certificate from client_tls_ca_file is required"
set_ini client_tls_sslmode verify-ca
reload_wait
pgu_try q "select 1" sslmode=require
assert_fails "no client certificate: refused"
assert_contains "$PGU_OUT" "certificate required" "TLS alert"
pgu_try q "select 1" sslmode=require sslcert="$C/other_client.crt" sslkey="$C/other_client.key"
assert_fails "a client certificate from another CA: refused"
assert_contains "$PGU_OUT" "unknown ca" "TLS alert"
assert_eq with-cert "$(q "select 'with-cert'" sslmode=require sslcert="$C/client.crt" sslkey="$C/client.key")" "with the client certificate"

check "auth_type=cert needs client_tls_sslmode=verify-full (RELOAD refused otherwise)"
set_ini auth_type cert
reload_wait
grep -qE "auth_type.cert (needs|requires) client_tls_sslmode" "$PGU_LOG" || fail "no refusal of auth_type=cert under verify-ca in the log"
echo "   ok: refused and logged"
assert_eq still-trust "$(q "select 'still-trust'" sslmode=require sslcert="$C/client.crt" sslkey="$C/client.key" user=postgres)" \
	"the running configuration (auth_type=trust) stays"
set_ini client_tls_sslmode verify-full
reload_wait

check "verify-full refuses a client certificate from another CA, and none at all; others still served"
pgu_try q "select 1" sslmode=require sslcert="$C/other_client.crt" sslkey="$C/other_client.key"
assert_fails "a client certificate from another CA under verify-full"
assert_contains "$PGU_OUT" "unknown ca" "TLS alert"
pgu_try q "select 1" sslmode=require
assert_fails "no client certificate under verify-full"
assert_contains "$PGU_OUT" "certificate required" "TLS alert"
assert_eq vf-cert "$(q "select 'vf-cert'" sslmode=require sslcert="$C/client.crt" sslkey="$C/client.key")" "the right client certificate is still served"

check "auth_type=cert: the user must be the certificate's CN"
pgu_try tlswire --cert "$C/client.crt" --key "$C/client.key" --user u_trust
assert_contains "$PGU_OUT" "READY" "CN=u_trust logs in as u_trust"
assert_eq cert-ok "$(q "select 'cert-ok'" sslmode=verify-full sslrootcert="$C/ca.crt" sslcert="$C/client.crt" sslkey="$C/client.key")" "psql with the certificate"
pgu_try tlswire --cert "$C/client.crt" --key "$C/client.key" --user postgres
assert_contains "$PGU_OUT" "ERROR S=FATAL C=08P01 M=certificate authentication failed" "CN=u_trust as postgres: refused"
assert_log_contains "TLS certificate name mismatch"
pgu_try pgu_psql_unix testdb u_trust -c "select 1"
assert_fails "the Unix socket has no certificate"
assert_contains "$PGU_OUT" "certificate authentication failed" "refused"
assert_log_contains "TLS connection required"

pass
