#!/usr/bin/env bash
# Quick start: install what is missing, build pgusher, start a throw-away PostgreSQL
# cluster (primary 127.0.0.1, standbys 127.0.0.2 and 127.0.0.3, port 5440, in
# /tmp/pgusher-demo) and pgusher on 127.0.0.1:6432 in the background.
#
#   bash test/demo.sh [start]   set everything up (idempotent)
#   bash test/demo.sh stop      stop pgusher and the demo cluster, remove their files
#   bash test/demo.sh status
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PGUSHER_CLUSTER_DIR=${PGUSHER_DEMO_DIR:-/tmp/pgusher-demo}
export PGUSHER_PGPORT=${PGUSHER_DEMO_PGPORT:-5440}
LISTEN_PORT=${PGUSHER_DEMO_PORT:-6432}
RUNDIR=${PGUSHER_CLUSTER_DIR}-pooler
BIN=$ROOT/build/pgusher
CLUSTER=$ROOT/test/integration/cluster.sh

say() { echo "demo: $*"; }
die() {
	echo "demo: ERROR: $*" >&2
	exit 1
}

PKGS=(build-essential cmake pkg-config libuv1-dev libssl-dev libc-ares-dev check
	postgresql postgresql-contrib python3 procps iproute2)

install_missing() {
	local p missing=()
	for p in "${PKGS[@]}"; do
		dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	say "installing: ${missing[*]}"
	local sudo=()
	[[ $(id -u) -eq 0 ]] || sudo=(sudo)
	local policy=/usr/sbin/policy-rc.d made=0
	if [[ ! -e $policy ]]; then # don't let the packages start their own services
		printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
		"${sudo[@]}" chmod 0755 "$policy"
		made=1
	fi
	local rc=0
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
		"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			--no-install-recommends "${missing[@]}" </dev/null || rc=$?
	((made)) && "${sudo[@]}" rm -f "$policy"
	return $rc
}

pooler_pid() {
	local pid
	[[ -f $RUNDIR/pgusher.pid ]] || return 1
	pid=$(cat "$RUNDIR/pgusher.pid" 2>/dev/null) || return 1
	[[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
	echo "$pid"
}

do_stop() {
	local pid i
	if pid=$(pooler_pid); then
		say "stopping pgusher (pid $pid)"
		kill -TERM "$pid"
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
	fi
	rm -rf "$RUNDIR"
	"$CLUSTER" stop
}

do_status() {
	local pid
	if pid=$(pooler_pid); then
		say "pgusher running (pid $pid) on 127.0.0.1:$LISTEN_PORT"
	else
		say "pgusher not running"
	fi
	"$CLUSTER" status
}

do_start() {
	install_missing
	say "building pgusher in $ROOT/build"
	cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build "$ROOT/build" -j 2 --target pgusher >/dev/null

	"$CLUSTER" start

	if pid=$(pooler_pid); then
		say "pgusher already running (pid $pid): restarting it with a fresh config"
		kill -TERM "$pid"
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
	fi
	if ss -Hltn "sport = :$LISTEN_PORT" | grep -q .; then
		die "port $LISTEN_PORT is in use (a packaged pgbouncer? try: systemctl stop pgbouncer), or set PGUSHER_DEMO_PORT"
	fi
	mkdir -p "$RUNDIR"
	sed -e "s|@PGPORT@|$PGUSHER_PGPORT|g" -e "s|@LISTEN_PORT@|$LISTEN_PORT|g" \
		-e "s|@RUNDIR@|$RUNDIR|g" "$ROOT/etc/demo.ini.in" >"$RUNDIR/pgusher.ini"
	cat >"$RUNDIR/userlist.txt" <<'USERS'
"postgres" ""
"u_trust" ""
"u_md5" "md5pass"
"u_scram" "scrampass"
"u_plain" "plainpass"
USERS
	"$BIN" -d "$RUNDIR/pgusher.ini" || die "pgusher failed to start; see $RUNDIR/pgusher.log"
	local i r
	for ((i = 0; i < 100; i++)); do
		r=0
		pg_isready -q -h 127.0.0.1 -p "$LISTEN_PORT" -t 1 >/dev/null 2>&1 || r=$?
		((r == 0 || r == 1)) && break
		sleep 0.1
	done
	((r == 0 || r == 1)) || {
		tail -n 20 "$RUNDIR/pgusher.log" >&2 || true
		die "pgusher is not accepting connections on 127.0.0.1:$LISTEN_PORT"
	}
	cat <<MSG

pgusher is running on 127.0.0.1:$LISTEN_PORT (pid $(pooler_pid || echo '?'); config $RUNDIR/pgusher.ini,
log $RUNDIR/pgusher.log). PostgreSQL: primary 127.0.0.1:$PGUSHER_PGPORT, standbys
127.0.0.2:$PGUSHER_PGPORT and 127.0.0.3:$PGUSHER_PGPORT.

  psql -h 127.0.0.1 -p $LISTEN_PORT -U postgres writes      # read-write, the primary
  psql -h 127.0.0.1 -p $LISTEN_PORT -U postgres reads       # read-only, a standby
  psql -h 127.0.0.1 -p $LISTEN_PORT -U postgres pgbouncer   # admin console: SHOW POOLS;
  pgbench -h 127.0.0.1 -p $LISTEN_PORT -U postgres -S -T 10 -c 8 writes

Stop everything with:  bash test/demo.sh stop
MSG
}

case ${1:-start} in
start) do_start ;;
stop) do_stop ;;
status) do_status ;;
*)
	echo "usage: $0 [start|stop|status]" >&2
	exit 2
	;;
esac
