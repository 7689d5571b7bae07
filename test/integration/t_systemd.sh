#!/usr/bin/env bash
# Story: pgusher under systemd, played by python (systemd is not PID 1 here). With
# NOTIFY_SOCKET set it says READY=1 only once its port accepts (a client races it),
# RELOADING=1 (with MONOTONIC_USEC) then READY=1 around a SIGHUP reload, good or bad,
# STOPPING=1 at SIGINT; with WATCHDOG_USEC it pings WATCHDOG=1 every half of it. Socket
# activation: given listening sockets (LISTEN_FDS/LISTEN_PID, by systemd-socket-activate or
# sockact.py), it serves clients on them and binds none of its own.
. "$(dirname "$0")/lib.sh"

sd__events() { # what: the notify log's lines (time stripped)
	cut -d' ' -f2- "$SD_LOG" 2>/dev/null
}
sd_wait_for() { # secs what grep-pattern: wait until the notify log has a line matching
	pgu_wait_for "$1" "$2" grep -qE -- "$3" "$SD_LOG"
}

SD_LOG=$PGU_TMP/notify.log
P=$(pgu_free_port)
pgu_bg python3 "$PGU_LIBDIR/sdnotify_listen.py" "$PGU_TMP/notify.sock" "$SD_LOG" "$P"
pgu_wait_for 5 "notify socket bound" test -S "$PGU_TMP/notify.sock"
[[ -n ${PGU_RUN_AS:-} ]] && chmod 0777 "$PGU_TMP/notify.sock"

export NOTIFY_SOCKET=$PGU_TMP/notify.sock
pgu_start <<EOF2
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb
[pgbouncer]
listen_port = $P
EOF2
unset NOTIFY_SOCKET

check "READY=1 arrives once, after the listeners accept, with a STATUS line"
sd_wait_for 10 "READY=1" 'READY=1'
sd_wait_for 5 "the client racing READY=1 got its answer" 'CONNECT '
assert_contains "$(sd__events)" "CONNECT ok" "a connection made the moment READY=1 came is accepted"
assert_not_contains "$(sd__events)" "CONNECT failed" "no connection refused after READY=1"
assert_contains "$(sd__events)" "READY=1|STATUS=serving" "READY=1 with STATUS=serving"
assert_eq 1 "$(grep -c 'READY=1' "$SD_LOG")" "one READY=1 at start-up"
assert_not_contains "$(sd__events)" "WATCHDOG=1" "no watchdog pings without WATCHDOG_USEC"
assert_eq 42 "$(pgu_psql testdb u_trust -At -c 'select 42')" "served after READY=1"

check "SHOW VERSION: PgBouncer's one column and row, naming the libraries"
out=$(psql -X -A -h 127.0.0.1 -p "$PGU_PORT" -U postgres pgbouncer -c 'SHOW VERSION')
assert_eq "version" "$(head -n1 <<<"$out")" "one column called version"
assert_eq "(1 row)" "$(tail -n1 <<<"$out")" "one row"
v=$(sed -n 2p <<<"$out")
assert_contains "$v" "pgusher " "names pgusher"
assert_contains "$v" "libuv $(pkg-config --modversion libuv)" "names libuv"
assert_contains "$v" "c-ares $(pkg-config --modversion libcares)" "names c-ares"
assert_contains "$v" "OpenSSL " "names OpenSSL"

check "STATUS= tells systemctl status how many clients and servers there are"
pgu_hold testdb u_trust
sd_wait_for 10 "a STATUS line counting the held client" 'STATUS=serving; clients: 1, servers: 1'
pgu_release_holds

check "SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1"
pgu_reload
sd_wait_for 10 "READY=1 after the reload" 'STATUS=serving; configuration reloaded'
assert_contains "$(sd__events)" "RELOADING=1|MONOTONIC_USEC=" "RELOADING=1 and MONOTONIC_USEC"
reloading=$(grep -n 'RELOADING=1' "$SD_LOG" | head -1 | cut -d: -f1)
ready2=$(grep -n 'configuration reloaded' "$SD_LOG" | head -1 | cut -d: -f1)
((reloading < ready2)) || fail "RELOADING=1 (line $reloading) must come before READY=1 (line $ready2)"
# The listener stamps each line with its own CLOCK_MONOTONIC (python's time.monotonic).
read -r got mono < <(grep -m1 'RELOADING=1' "$SD_LOG" | sed -E 's/^([0-9.]+) .*MONOTONIC_USEC=([0-9]+).*/\1 \2/')
awk -v got="$got" -v mono="$mono" 'BEGIN { d = got - mono / 1e6; exit !(mono > 0 && d > -1 && d < 5) }' ||
	fail "MONOTONIC_USEC=$mono is not a CLOCK_MONOTONIC time near $got s"
echo "   ok: MONOTONIC_USEC=$mono is a CLOCK_MONOTONIC time"

check "a reload of a broken config still ends with READY=1, saying it kept the old one"
cp "$PGU_INI" "$PGU_TMP/good.ini"
echo "this line is not ini" >>"$PGU_INI"
pgu_reload
sd_wait_for 10 "READY=1 after the failed reload" 'STATUS=serving; reload failed'
cp "$PGU_TMP/good.ini" "$PGU_INI"
assert_eq 42 "$(pgu_psql testdb u_trust -At -c 'select 42')" "still served"

check "RELOAD on the console notifies too"
n0=$(grep -c 'RELOADING=1' "$SD_LOG")
pgu_psql pgbouncer postgres -c 'RELOAD' >/dev/null
pgu_wait_for 10 "a second RELOADING=1" test "$(grep -c 'RELOADING=1' "$SD_LOG")" -gt "$n0"

check "SIGINT: STOPPING=1, and the status says so until the end"
pgu_hold testdb u_trust # session pooling: SIGINT waits until its server is released
sleep 1.2
kill -INT "$PGU_PID"
sd_wait_for 10 "STOPPING=1" 'STOPPING=1'
sleep 1.5
pgu_release_holds
pgu_wait_for 10 "pgusher exited after SIGINT" bash -c "! kill -0 $PGU_PID 2>/dev/null"
PGU_PID=""
after=$(sed -n '/STOPPING=1/,$p' "$SD_LOG" | tail -n +2)
assert_not_contains "$after" "STATUS=serving" "no serving status after STOPPING=1"

check "WATCHDOG_USEC=400000: WATCHDOG=1 about every 200 ms (abstract notify socket)"
SD_LOG=$PGU_TMP/notify-wd.log
abstract=@pgusher-test-$$-$RANDOM
pgu_bg python3 "$PGU_LIBDIR/sdnotify_listen.py" "$abstract" "$SD_LOG"
pgu_wait_for 5 "abstract notify socket bound" grep -q LISTENING "$SD_LOG"
export NOTIFY_SOCKET=$abstract WATCHDOG_USEC=400000
pgu_start <<EOF2
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb
EOF2
unset NOTIFY_SOCKET WATCHDOG_USEC
sd_wait_for 10 "READY=1 on the abstract socket" 'READY=1'
t0=$(grep -m1 'READY=1' "$SD_LOG" | cut -d' ' -f1)
sleep 2
pings=$(awk -v t0="$t0" '$2 == "WATCHDOG=1" && $1 >= t0 && $1 <= t0 + 2 {n++} END {print n + 0}' "$SD_LOG")
((pings >= 6 && pings <= 14)) || fail "expected about 10 WATCHDOG=1 in 2 s, got $pings"
echo "   ok: $pings WATCHDOG=1 in the 2 s after READY=1"
assert_log_contains "systemd watchdog: pinging every 200 ms"
pgu_stop

check "socket activation: clients are served on the passed TCP and Unix sockets; nothing else is bound"
mkdir -p "$PGU_TMP/sa" "$PGU_TMP/own"
chmod 0777 "$PGU_TMP/sa" "$PGU_TMP/own"
P=$(pgu_free_port)
if command -v systemd-socket-activate >/dev/null 2>&1 && [[ -z ${PGU_SOCKACT_PYTHON:-} ]]; then
	PGU_WRAP=(systemd-socket-activate -l "127.0.0.1:$P" -l "$PGU_TMP/sa/.s.PGSQL.$P" --)
else
	PGU_WRAP=(python3 "$PGU_LIBDIR/sockact.py" -l "127.0.0.1:$P" -l "$PGU_TMP/sa/.s.PGSQL.$P" --)
fi
echo "   (activating with ${PGU_WRAP[0]})"
# The ini asks for 127.0.0.2 and a Unix socket in own/: with passed sockets neither is bound,
# so a client on 127.0.0.1 can only be served through the passed socket.
pgu_start <<EOF2
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb
[pgbouncer]
listen_addr = 127.0.0.2
listen_port = $P
unix_socket_dir = $PGU_TMP/own
EOF2
unset PGU_WRAP
assert_eq 42 "$(pgu_psql testdb u_trust -At -c 'select 42')" "TCP client served on the passed socket"
out=$(psql -X -At -h "$PGU_TMP/sa" -p "$P" -U u_trust testdb -c 'select 43' 2>&1) || true
assert_eq 43 "$out" "Unix-socket client served on the passed socket"
assert_log_contains "passed by the service manager (tcp)"
assert_log_contains "passed by the service manager (unix)"
pgu_try psql -X -At -h 127.0.0.2 -p "$P" -U u_trust testdb -c 'select 1'
assert_fails "listen_addr 127.0.0.2 is not bound when sockets are passed"
[[ ! -e $PGU_TMP/own/.s.PGSQL.$P ]] || fail "unix_socket_dir got a socket of its own"
echo "   ok: no Unix socket of its own in unix_socket_dir"
pgu_stop

pass
