#!/usr/bin/env bash
# User story: a security reviewer checks what pgusher gives away. The health-check password
# is never shown (SHOW CONFIG, SET's reply) nor logged (logfile, stderr), yet still used; a
# client whose user name, database or application_name carries a newline cannot forge a
# log line (logfile, stderr, syslog); SET syslog_ident takes effect every time (syslog kept
# pointing at freed memory); a logfile that is a symbolic link is refused, and when started
# as root with user=, the logfile is opened as that user and reopened by RELOAD after a
# rotation. Run it on the ASan build too (PGUSHER_BIN=build-asan/pgusher).
source "$(dirname "$0")/lib.sh"

admin() { psql -X -A -t -F'|' -h 127.0.0.1 -p "$PGU_PORT" -U postgres -d pgbouncer "$@"; }
REAL_BIN=$PGUSHER_BIN
if [[ $(basename "$REAL_BIN") == pgbouncer* ]]; then
	# PgBouncer has no health_check_* settings, follows symlinks and writes a newline in a
	# user name as a newline and a tab (a continuation line).
	skip_note "pgusher's own checks"
	pass
fi

# Every line of a PgBouncer-format log starts with its timestamp; nothing else may start one.
assert_log_lines_are_ours() { # file what
	local bad
	bad=$(grep -anvE '^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:.]+ [A-Z+0-9-]+ \[[0-9]+\] (FATAL|ERROR|WARNING|LOG|DEBUG|NOISE) ' "$1" |
		head -n 5 || true)
	[[ -z $bad ]] || fail "$2: lines that pgusher did not start:
$bad"
	if grep -aq $'\r' "$1"; then
		fail "$2: a raw carriage return reached the log"
	fi
	echo "   ok: $2: every line is a log line of ours"
}

# ---------------------------------------------------------------- secrets
HC_INI=plainpass # u_plain's real password: the probe must still log in with it
HC_SET=hcS3cret-set-by-console
DB_PW=dbS3cret-in-connstr
pgu_start <<EOF
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb
pwdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb user=u_plain password=$DB_PW

[pgbouncer]
verbose = 2
health_check_user = u_plain
health_check_password = $HC_INI
health_check_period = 0.2
EOF

check "SHOW CONFIG masks health_check_password"
pgu_try admin -c 'SHOW CONFIG'
assert_ok "SHOW CONFIG"
assert_not_contains "$PGU_OUT" "$HC_INI" "SHOW CONFIG"
assert_contains "$PGU_OUT" "health_check_password|********||yes" "masked health_check_password row"
assert_contains "$PGU_OUT" "health_check_user|u_plain|" "health_check_user is shown as it is"

check "SHOW DATABASES does not show a password= from [databases]"
pgu_try admin -c 'SHOW DATABASES'
assert_not_contains "$PGU_OUT" "$DB_PW" "SHOW DATABASES"

check "the health probe still logs in with the masked password"
assert_log_contains "is up (primary" 10

check "SET health_check_password: the reply masks the new value"
pgu_try admin -c "SET health_check_password = '$HC_SET'"
assert_ok "SET health_check_password"
assert_not_contains "$PGU_OUT" "$HC_SET" "SET's reply"
assert_contains "$PGU_OUT" "SET health_check_password=********" "SET's reply"
pgu_try admin -c 'SHOW CONFIG'
assert_not_contains "$PGU_OUT" "$HC_SET" "SHOW CONFIG after SET"
pgu_try admin -c "SET health_check_password = ''"
assert_contains "$PGU_OUT" "SET health_check_password=" "SET to empty"
pgu_try admin -c 'SHOW CONFIG'
assert_contains "$PGU_OUT" "health_check_password|||yes" "an empty password shows empty"
pgu_try admin -c "SET health_check_password = '$HC_INI'"

check "a client of a database with password= works; RELOAD and SIGHUP run"
pgu_try pgu_psql testdb u_trust -c 'select 1'
assert_ok "query through the pooler"
pgu_try admin -c 'RELOAD'
assert_ok "RELOAD"
pgu_reload
sleep 0.5

check "neither password reached the logfile or stderr (at verbose = 2)"
pgu_stop
for f in "$PGU_LOG" "$PGU_STDERR"; do
	for s in "$HC_INI" "$HC_SET" "$DB_PW"; do
		if grep -aqF -- "$s" "$f"; then
			fail "$(basename "$f") contains a password: $(grep -aF -- "$s" "$f" | head -n 3)"
		fi
	done
done
echo "   ok: no password in $(basename "$PGU_LOG") nor $(basename "$PGU_STDERR")"
grep -aqF 'SET health_check_password = ********' "$PGU_LOG" ||
	fail "the log does not record the SET (masked)"
echo "   ok: the log records the SET with the value masked"

# ---------------------------------------------------------------- log injection
# With syslog too: pgusher runs in a private mount namespace whose /dev/log is our socket.
SYSLOG_SOCK=$PGU_TMP/devlog.sock
SYSLOG_OUT=$PGU_TMP/syslog.txt
have_syslog=0
if [[ $(id -u) -eq 0 ]] && unshare --mount --propagation private true 2>/dev/null; then
	have_syslog=1
fi

start_syslog_capture() {
	: >"$SYSLOG_OUT"
	rm -f "$SYSLOG_SOCK"
	cat >"$PGU_TMP/syslogd.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a") as out:
    while True:
        out.write(repr(s.recv(65536)) + "\n")  # one datagram per line, escapes visible
        out.flush()
PY
	pgu_bg python3 "$PGU_TMP/syslogd.py" "$SYSLOG_SOCK" "$SYSLOG_OUT"
	local i
	for ((i = 0; i < 50; i++)); do
		[[ -S $SYSLOG_SOCK ]] && break
		sleep 0.1
	done
	[[ -S $SYSLOG_SOCK ]] || fail "the syslog capture did not start"
	# The pooler's wrapper: a private /dev with the devices it needs and log -> our socket.
	cat >"$PGU_TMP/with-devlog" <<EOF
#!/bin/bash
exec unshare --mount --propagation private bash -c '
d=$PGU_TMP/dev; mkdir -p \$d
for n in null zero random urandom full; do touch \$d/\$n; mount --bind /dev/\$n \$d/\$n; done
ln -sfn /proc/self/fd \$d/fd; ln -sfn $SYSLOG_SOCK \$d/log
mount --rbind \$d /dev
exec "\$0" "\$@"' "$REAL_BIN" "\$@"
EOF
	chmod +x "$PGU_TMP/with-devlog"
	PGUSHER_BIN=$PGU_TMP/with-devlog
}

if ((have_syslog)); then
	start_syslog_capture
else
	skip_note "syslog capture needs root and unshare: logfile and stderr only"
fi
pgu_start <<EOF
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb

[pgbouncer]
syslog = $have_syslog
syslog_ident = first-ident
EOF
PGUSHER_BIN=$REAL_BIN

FORGED='2026-01-01 00:00:00.000 UTC [1] LOG forged'
check "a user name, database and application_name with newlines forge no log line"
python3 "$PGU_LIBDIR/pgwire.py" startup --port "$PGU_PORT" --user $'evil\n'"$FORGED user" --database testdb >/dev/null || true
python3 "$PGU_LIBDIR/pgwire.py" startup --port "$PGU_PORT" --user u_trust --database $'nodb\r\n'"$FORGED db"$'\x1b[2J' >/dev/null || true
pgu_try python3 "$PGU_LIBDIR/pgwire.py" startup --port "$PGU_PORT" --user u_trust --database testdb \
	--param $'application_name=app\n'"$FORGED app" --query 'select 1'
assert_contains "$PGU_OUT" "ROW 1" "the application_name client is served"
assert_log_contains 'evil\n2026-01-01' 5
assert_log_contains 'nodb\r\n2026-01-01' 5
assert_log_lines_are_ours "$PGU_LOG" "logfile"
assert_log_lines_are_ours "$PGU_STDERR" "stderr"

if ((have_syslog)); then
	check "syslog gets the same messages, one line each"
	# The capture holds repr()s: a raw newline is \n there, an escaped one \\n.
	grep -qF 'evil\\n2026' "$SYSLOG_OUT" || fail "syslog did not get the escaped user name: $(tail -n 5 "$SYSLOG_OUT")"
	if grep -qE '[^\]\\[nr]' "$SYSLOG_OUT"; then
		fail "a syslog message carries a raw newline: $(grep -E '[^\]\\[nr]' "$SYSLOG_OUT" | head -n 3)"
	fi
	echo "   ok: syslog messages escaped"

	check "SET syslog_ident takes effect at once, every time (openlog keeps the pointer)"
	for i in 1 2 3 4 5 6; do
		ident=ident-$i-$RANDOM$RANDOM
		pgu_try admin -c "SET syslog_ident = '$ident'"
		assert_ok "SET syslog_ident ($i)"
		admin -c 'SHOW VERSION' >/dev/null # its connection's close is logged
		for ((k = 0; k < 50; k++)); do
			grep -q "$ident\[[0-9]*\]: LOG C-" "$SYSLOG_OUT" && break
			sleep 0.1
		done
		grep -q "$ident\[[0-9]*\]: LOG C-" "$SYSLOG_OUT" ||
			fail "no syslog message with ident $ident; last ones: $(tail -n 3 "$SYSLOG_OUT")"
	done
	echo "   ok: each new ident is used"
	pgu_try admin -c "SET syslog_facility = 'local3'"
	assert_ok "SET syslog_facility"
	admin -c 'SHOW VERSION' >/dev/null
	sleep 0.3
	# local3 (19) * 8 + info (6) = 158
	grep -q "^b'<158>" "$SYSLOG_OUT" || fail "syslog_facility = local3 not applied: $(tail -n 2 "$SYSLOG_OUT")"
	echo "   ok: SET syslog_facility applies too"
fi
pgu_stop

# ---------------------------------------------------------------- the logfile
# Start the pooler on an ini of our own and expect it to refuse: prints its output.
start_must_fail() { # ini
	local rc=0 out
	out=$(timeout 10 "$REAL_BIN" "$1" 2>&1) || rc=$?
	((rc != 0 && rc != 124)) || fail "pooler started (exit $rc) but should have refused; output: $out"
	echo "$out"
}
minimal_ini() { # file logfile pidfile [extra line]
	cat >"$1" <<EOF
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $(pgu_free_port)
unix_socket_dir =
auth_type = trust
auth_file = $PGU_USERLIST
logfile = $2
pidfile = $3
${4:-}
EOF
}

check "a logfile that is a symbolic link is refused; the file it points to is untouched"
mkdir -p "$PGU_TMP/logdir"
echo "precious" >"$PGU_TMP/victim"
ln -s "$PGU_TMP/victim" "$PGU_TMP/logdir/pgusher.log"
minimal_ini "$PGU_TMP/symlink.ini" "$PGU_TMP/logdir/pgusher.log" "$PGU_TMP/symlink.pid"
out=$(start_must_fail "$PGU_TMP/symlink.ini")
assert_contains "$out" "symbolic link" "the refusal says why"
assert_eq "precious" "$(cat "$PGU_TMP/victim")" "the symlink's target"

check "RELOAD onto a symlinked logfile keeps the old one and says why"
pgu_start <<EOF
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb
EOF
sed -i "s|^logfile = .*|logfile = $PGU_TMP/logdir/pgusher.log|" "$PGU_INI"
pgu_try admin -c 'RELOAD'
assert_log_contains "is a symbolic link (refused)"
pgu_try admin -c 'SHOW VERSION'
assert_ok "still running"
assert_eq "precious" "$(cat "$PGU_TMP/victim")" "the symlink's target after RELOAD"
pgu_stop

if [[ $(id -u) -ne 0 ]] || ! id postgres >/dev/null 2>&1; then
	skip_note "privilege-drop checks need root and a postgres user"
	pass
fi

check "started as root with user=postgres: the logfile is opened as postgres"
mkdir -p "$PGU_TMP/rootonly" "$PGU_TMP/pgdir"
chmod 0755 "$PGU_TMP/rootonly"
chown postgres "$PGU_TMP/pgdir"
minimal_ini "$PGU_TMP/drop1.ini" "$PGU_TMP/rootonly/pgusher.log" "$PGU_TMP/pgdir/drop1.pid" "user = postgres"
out=$(start_must_fail "$PGU_TMP/drop1.ini")
assert_contains "$out" "cannot open logfile" "a logfile only root may write is refused"
[[ ! -e $PGU_TMP/rootonly/pgusher.log ]] || fail "root created the logfile $(ls -l "$PGU_TMP/rootonly/pgusher.log")"
echo "   ok: root did not create it"

check "... and a logfile in postgres's directory is postgres's, and RELOAD reopens it after rotation"
pgu_start <<EOF
[databases]
testdb = host=$PGU_PRIMARY port=$PGU_PGPORT dbname=testdb
[pgbouncer]
user = postgres
unix_socket_dir =
logfile = $PGU_TMP/pgdir/pgusher.log
pidfile = $PGU_TMP/pgdir/pgusher.pid
EOF
PGU_LOG=$PGU_TMP/pgdir/pgusher.log
assert_log_contains "process up"
assert_eq "postgres" "$(stat -c %U "$PGU_LOG")" "owner of the logfile"
mv "$PGU_LOG" "$PGU_LOG.1"
pgu_try admin -c 'RELOAD'
assert_ok "RELOAD"
assert_log_contains "configuration reloaded"
assert_eq "postgres" "$(stat -c %U "$PGU_LOG")" "owner of the reopened logfile"
mv "$PGU_LOG" "$PGU_LOG.2"
pgu_reload
assert_log_contains "configuration reloaded"
echo "   ok: SIGHUP reopens it too"
pgu_stop

pass
