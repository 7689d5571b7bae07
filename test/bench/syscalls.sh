#!/usr/bin/env bash
# Syscalls per transaction, pgusher vs PgBouncer 1.25.2: the floor under the per-transaction CPU
# targets. Each pooler relays the same pgbench workloads (-S, -S -M prepared, -S -C: reads over
# both standbys, transaction mode) while `strace -c -f` counts its system calls; the table gives
# calls per transaction by kind (reads, writes, epoll waits, the rest). A count, not a timing:
# strace slows the pooler, the counts per transaction stay what they are, so the machine need not
# be idle.
#
# usage: bash test/bench/syscalls.sh [--seconds N] [--clients N]
# Uses the integration test cluster (test/integration/cluster.sh, started if needed; PGUSHER_PGPORT
# and PGUSHER_CLUSTER_DIR as for the tests) and build/pgusher (built if missing). Loopback only.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SECS=4 CLIENTS=8
while (($#)); do
	case $1 in
	--seconds) SECS=$2; shift 2 ;;
	--clients) CLIENTS=$2; shift 2 ;;
	*) echo "unknown option $1" >&2; exit 2 ;;
	esac
done
PGB=${PGUSHER_BENCH_PGBOUNCER:-/work/shared/ref/pgbouncer-1.25.2/pgbouncer}
command -v strace >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q strace >/dev/null
[[ -x $ROOT/build/pgusher ]] || { cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
	cmake --build "$ROOT/build" -j2 --target pgusher >/dev/null; } || exit 1
"$ROOT/test/integration/cluster.sh" start >/dev/null || exit 1
eval "$("$ROOT/test/integration/cluster.sh" env)"

W=$(mktemp -d /tmp/pgusher-syscalls.XXXXXX)
chmod 0755 "$W"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; sleep 0.5; rm -rf "$W"' EXIT
echo '"postgres" ""' >"$W/users"
ini() { # name port extra-db-options extra-global
	cat >"$W/$1.ini" <<INI
[databases]
reads = host=$PGUSHER_STANDBY1,$PGUSHER_STANDBY2 port=$PGUSHER_PGPORT dbname=testdb $3
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $2
unix_socket_dir =
auth_type = trust
auth_file = $W/users
pool_mode = transaction
default_pool_size = 10
max_client_conn = 200
logfile = $W/$1.log
pidfile = $W/$1.pid
$4
INI
}
ini pgusher 16701 "" "health_check_user = postgres"
ini pgbouncer 16702 "load_balance_hosts=round-robin" ""
chown -R postgres "$W"
"$ROOT/build/pgusher" -d "$W/pgusher.ini" || exit 1
su postgres -s /bin/sh -c "$PGB -d $W/pgbouncer.ini" || exit 1
sleep 1
for n in pgusher pgbouncer; do PIDS+=("$(cat "$W/$n.pid")"); done

printf '| workload | pooler | xacts | read/xact | write/xact | epoll_wait/xact | other/xact |\n|---|---|---|---|---|---|---|\n'
for wl in "-S" "-S -M prepared" "-S -C"; do
	for n in pgusher pgbouncer; do
		port=16701 pid=${PIDS[0]}
		[[ $n == pgbouncer ]] && port=16702 pid=${PIDS[1]}
		# shellcheck disable=SC2086 # wl is a word list
		pgbench -n $wl -c "$CLIENTS" -T 2 -h 127.0.0.1 -p $port -U postgres reads >/dev/null 2>&1 # warm pools
		timeout $((SECS + 2)) strace -c -f -p "$pid" -o "$W/strace" 2>/dev/null &
		st=$!
		sleep 0.5
		# shellcheck disable=SC2086
		x=$(pgbench -n $wl -c "$CLIENTS" -T "$SECS" -h 127.0.0.1 -p $port -U postgres reads 2>&1 |
			awk '/actually processed/ {print $NF}')
		kill -INT "$st" 2>/dev/null
		wait "$st" 2>/dev/null
		awk -v x="${x:-0}" -v wl="$wl" -v n="$n" '
			$NF ~ /^(read|recvfrom|readv|recvmsg)$/ {r += $4}
			$NF ~ /^(write|sendto|writev|sendmsg)$/ {w += $4}
			$NF ~ /^epoll_(p?wait)$/ {e += $4}
			$1 ~ /^[0-9.]+$/ && $NF !~ /^(read|recvfrom|readv|recvmsg|write|sendto|writev|sendmsg|epoll_p?wait|total)$/ {o += $4}
			END { if (x > 0) printf "| %s | %s | %d | %.2f | %.2f | %.2f | %.3f |\n", wl, n, x, r/x, w/x, e/x, o/x
			      else printf "| %s | %s | 0 | - | - | - | - |\n", wl, n }' "$W/strace"
	done
done
