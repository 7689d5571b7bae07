#!/usr/bin/env bash
# Story: an operator installs pgusher from its Debian package. `cpack -G DEB` (a build with
# prefix /usr, cached in $PGUSHER_BUILD/deb) makes the .deb; its Depends come from the
# binary's libraries; it installs (dpkg -i, unless this machine has a pgusher package of
# its own or PGU_PACKAGE_UNPACK=1: then dpkg -x into a scratch root) the binary, man pages,
# units, /etc/pgusher config, logrotate snippet and a postgres-owned /var/log/pgusher; the
# installed binary, started as the unit's ExecStart and User= say (with the example config
# moved to a test port and the test cluster), tells a notify socket READY=1, serves a
# client, stops on the unit's KillSignal; the package then purges cleanly. systemd is not
# PID 1 here: no systemctl.
. "$(dirname "$0")/lib.sh"

if [[ $(basename "$PGUSHER_BIN") == pgbouncer ]]; then
	skip_note "pgusher's own package"
	pass
fi
[[ $(id -u) -eq 0 ]] || {
	skip_note "needs root (dpkg, setpriv)"
	pass
}
for tool in cpack dpkg-deb dpkg-shlibdeps setpriv; do
	command -v "$tool" >/dev/null || fail "$tool is missing (run-all.sh installs it)"
done

check "cpack -G DEB builds the package"
B=$PGUSHER_BUILD/deb
pgu_try cmake -S "$PGUSHER_SRC" -B "$B" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr
assert_ok "configure with prefix /usr"
pgu_try cmake --build "$B" -j2 --target pgusher
assert_ok "build"
rm -f "$B"/pgusher_*.deb
pgu_try bash -c "cd '$B' && cpack -G DEB"
assert_ok "cpack -G DEB"
deb=$(ls "$B"/pgusher_*.deb)
echo "   ok: built $(basename "$deb")"

check "the package's control data: Depends from shlibdeps, conffiles, maintainer scripts"
info=$(dpkg-deb -I "$deb")
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libuv1 libssl3 libc-ares2 libc6; do
	assert_contains "$depends" "$lib" "Depends names $lib"
done
if ldd "$B/pgusher" | grep -q libsystemd; then
	assert_contains "$depends" "libsystemd0" "Depends names libsystemd0"
fi
ctl=$PGU_TMP/control
dpkg-deb -e "$deb" "$ctl"
for f in /etc/pgusher/pgusher.ini /etc/pgusher/userlist.txt /etc/logrotate.d/pgusher; do
	grep -qx "$f" "$ctl/conffiles" || fail "$f is not a conffile"
done
echo "   ok: config files and logrotate snippet are conffiles"
assert_contains "$info" "postinst" "a postinst"

contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
for f in ./usr/bin/pgusher ./usr/share/man/man1/pgusher.1 ./usr/share/man/man5/pgusher.5 \
	./usr/lib/systemd/system/pgusher.service ./usr/lib/systemd/system/pgusher.socket \
	./etc/pgusher/pgusher.ini ./etc/pgusher/userlist.txt ./etc/logrotate.d/pgusher \
	./usr/share/doc/pgusher/examples/pgusher.ini ./usr/lib/tmpfiles.d/pgusher.conf; do
	grep -qx -- "$f" <<<"$contents" || fail "package lacks $f"
done
echo "   ok: binary, man pages, units, configs, logrotate snippet, examples"
assert_not_contains "$contents" "_CPack_Packages" "no build paths in the package"

check "the package installs"
if dpkg -s pgusher >/dev/null 2>&1 || [[ -n ${PGU_PACKAGE_UNPACK:-} ]]; then
	# Somebody's pgusher package is installed (or PGU_PACKAGE_UNPACK=1): do not touch it,
	# unpack beside it.
	R=$PGU_TMP/root
	dpkg -x "$deb" "$R"
	install -d -o postgres -g postgres -m 0750 "$R/var/log/pgusher"
	installed=0
	echo "   (unpacked into $R, not installed: a pgusher package is there already, or PGU_PACKAGE_UNPACK)"
else
	R=""
	pgu_try env DEBIAN_FRONTEND=noninteractive dpkg -i "$deb"
	assert_ok "dpkg -i"
	installed=1
	pgu_at_exit() { # a failed story leaves no package behind
		((installed)) && dpkg --purge pgusher >/dev/null 2>&1
		return 0
	}
	assert_eq "install ok installed" "$(dpkg-query -W -f='${Status}' pgusher)" "dpkg says installed"
fi
for f in /usr/bin/pgusher /usr/share/man/man1/pgusher.1 /usr/lib/systemd/system/pgusher.service \
	/usr/lib/systemd/system/pgusher.socket /etc/pgusher/pgusher.ini /etc/logrotate.d/pgusher; do
	[[ -e $R$f ]] || fail "$R$f is not installed"
done
assert_eq "postgres:postgres" "$(stat -c %U:%G "$R/var/log/pgusher")" "/var/log/pgusher belongs to postgres"
if ((installed)); then
	assert_eq "root:postgres 640" "$(stat -c '%U:%G %a' /etc/pgusher/userlist.txt)" "userlist.txt readable by postgres only"
fi
if command -v logrotate >/dev/null; then
	pgu_try logrotate -d "$R/etc/logrotate.d/pgusher"
	assert_ok "logrotate accepts the snippet"
fi

check "the unit says how to run it"
unit=$(cat "$R/usr/lib/systemd/system/pgusher.service")
for line in "Type=notify" "User=postgres" "ExecStart=/usr/bin/pgusher /etc/pgusher/pgusher.ini" \
	"ExecReload=/usr/bin/pgusher --check /etc/pgusher/pgusher.ini" 'ExecReload=/bin/kill -HUP $MAINPID' \
	"KillSignal=SIGINT" "WatchdogSec=" "LimitNOFILE="; do
	assert_contains "$unit" "$line" "unit: $line"
done
if command -v systemd-analyze >/dev/null; then
	pgu_try systemd-analyze verify --man=no "$R/usr/lib/systemd/system/pgusher.service" \
		"$R/usr/lib/systemd/system/pgusher.socket"
	# Offline it may grumble about the system it runs on (no PID 1); never about our keys.
	assert_not_contains "$PGU_OUT" "Unknown key" "systemd-analyze knows every key"
	assert_not_contains "$PGU_OUT" "Unknown section" "systemd-analyze knows every section"
fi
user=$(sed -n 's/^User=//p' <<<"$unit")
read -r -a exec_start <<<"$(sed -n 's/^ExecStart=//p' <<<"$unit")"

check "the installed binary, started as the unit would, serves the example config"
P=$(pgu_free_port)
ini=$PGU_TMP/pkg.ini
mkdir -p "$PGU_TMP/run"
chmod 0777 "$PGU_TMP/run"
printf '"u_scram" "scrampass"\n' >"$PGU_TMP/pkg-users.txt"
# The example, moved to the test port and cluster (the rest, logfile included, as shipped).
sed -e "s|^listen_port = .*|listen_port = $P|" \
	-e "s|^unix_socket_dir = .*|unix_socket_dir = $PGU_TMP/run|" \
	-e "s|^auth_file = .*|auth_file = $PGU_TMP/pkg-users.txt|" \
	-e "s|^\* = host=.*|* = host=$PGU_PRIMARY port=$PGU_PGPORT|" \
	"$R/etc/pgusher/pgusher.ini" >"$ini"
[[ -n $R ]] && sed -i "s|^logfile = /var/log|logfile = $R/var/log|" "$ini"
chmod 0644 "$ini" "$PGU_TMP/pkg-users.txt"
logfile=$(sed -n 's/^logfile = //p' "$ini")
rm -f "$logfile"
pgu_try setpriv --reuid="$user" --regid="$user" --init-groups -- "$R${exec_start[0]}" --check "$ini"
assert_ok "ExecReload's --check as $user"
SD_LOG=$PGU_TMP/notify.log
pgu_bg python3 "$PGU_LIBDIR/sdnotify_listen.py" "$PGU_TMP/run/notify.sock" "$SD_LOG" "$P"
pgu_wait_for 5 "notify socket bound" test -S "$PGU_TMP/run/notify.sock"
chmod 0777 "$PGU_TMP/run/notify.sock"
NOTIFY_SOCKET=$PGU_TMP/run/notify.sock setpriv --reuid="$user" --regid="$user" --init-groups -- \
	"$R${exec_start[0]}" "$ini" >"$PGU_TMP/pkg.out" 2>&1 &
pid=$!
PGU_BG_PIDS+=("$pid")
pgu_wait_for 15 "READY=1 from the installed binary" grep -q 'READY=1' "$SD_LOG"
assert_contains "$(cat "$SD_LOG")" "CONNECT ok" "its port accepts at READY=1"
out=$(PGPASSWORD=scrampass psql -X -At -h 127.0.0.1 -p "$P" -U u_scram testdb -c 'select 6*7' 2>&1) || true
assert_eq 42 "$out" "a client is served (scram-sha-256 through the auto-database)"
assert_eq "$user" "$(ps -o user= -p "$pid")" "it runs as the unit's User="
[[ -s $logfile ]] || fail "nothing logged to $logfile"
assert_eq "$user" "$(stat -c %U "$logfile")" "the log file in /var/log/pgusher is $user's"

check "the unit's KillSignal=SIGINT stops it"
kill -INT "$pid"
pgu_wait_for 15 "it exited" bash -c "! kill -0 $pid 2>/dev/null"
assert_contains "$(cat "$SD_LOG")" "STOPPING=1" "STOPPING=1 on the way out"

if ((installed)); then
	check "the package purges cleanly"
	pgu_try dpkg --purge pgusher
	assert_ok "dpkg --purge"
	for f in /usr/bin/pgusher /usr/lib/systemd/system/pgusher.service /etc/pgusher/pgusher.ini \
		/etc/logrotate.d/pgusher /var/log/pgusher; do
		[[ ! -e $f ]] || fail "$f is left after purge"
	done
	echo "   ok: no files left"
	installed=0
fi

pass
