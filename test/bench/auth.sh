#!/usr/bin/env bash
# Connection churn with SCRAM authentication (not a test): pgbench -S -C through pgusher and
# through PgBouncer 1.25.2 (../shared/ref; PGUSHER_BENCH_PGBOUNCER overrides), both with
# auth_type = scram-sha-256 and a plain-text password in the auth file (as many userlist.txt
# files have), in alternation. Reports connections per
# second and the pooler's CPU time per connection (user+sys from /proc), and the ratios.
#
# usage: bash test/bench/auth.sh [--rounds N] [--duration SECONDS] [--clients N]
# Runs its own cluster on 127.0.0.1:15630 (standbys unused), poolers on 16630/16631.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROUNDS=3 DUR=8 CLIENTS=8
while (($#)); do
	case $1 in
	--rounds) ROUNDS=$2; shift 2 ;;
	--duration) DUR=$2; shift 2 ;;
	--clients) CLIENTS=$2; shift 2 ;;
	*) echo "unknown option $1" >&2; exit 2 ;;
	esac
done
say() { echo "auth-bench: $*" >&2; }
PGBOUNCER=${PGUSHER_BENCH_PGBOUNCER:-$(cd "$ROOT/.." && pwd)/shared/ref/pgbouncer-1.25.2/pgbouncer}
[[ -x $PGBOUNCER ]] || PGBOUNCER=/work/shared/ref/pgbouncer-1.25.2/pgbouncer
for p in libevent-2.1-7 libc-ares2 libssl3 postgresql; do
	dpkg -s "$p" >/dev/null 2>&1 || {
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$p" </dev/null >/dev/null
	}
done
cmake -S "$ROOT" -B "$ROOT/build-bench" -DCMAKE_BUILD_TYPE=Release >/dev/null &&
	cmake --build "$ROOT/build-bench" -j2 --target pgusher >/dev/null || { say "build failed"; exit 1; }

WORK=$(mktemp -d /tmp/pgusher-authbench.XXXXXX)
chmod 0755 "$WORK"
export PGUSHER_CLUSTER_DIR=/tmp/pgusher-authbench-cluster PGUSHER_PGPORT=15630
"$ROOT/test/integration/cluster.sh" start >/dev/null || { say "cluster failed"; exit 1; }
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	sleep 1
	"$ROOT/test/integration/cluster.sh" stop >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT

# u_plain's password on the servers is plainpass (cluster.sh); the auth file has it in clear.
printf '"u_plain" "plainpass"\n' >"$WORK/users.txt"
for t in pgusher:16630 pgbouncer:16631; do
	cat >"$WORK/${t%%:*}.ini" <<EOF
[databases]
testdb = host=127.0.0.1 port=$PGUSHER_PGPORT dbname=testdb
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${t##*:}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $WORK/users.txt
pool_mode = transaction
default_pool_size = 10
log_connections = 0
log_disconnections = 0
logfile = $WORK/${t%%:*}.log
EOF
done
chown -R postgres "$WORK"
"$ROOT/build-bench/pgusher" "$WORK/pgusher.ini" >"$WORK/pgusher.out" 2>&1 &
PIDS+=($!)
PID_pgusher=$!
runuser -u postgres -- "$PGBOUNCER" "$WORK/pgbouncer.ini" >"$WORK/pgbouncer.out" 2>&1 &
PIDS+=($!)
sleep 2
PID_pgbouncer=$(pgrep -P "$!" | head -n 1)
[[ -n $PID_pgbouncer ]] || PID_pgbouncer=$!

declare -A CONNS CPU
for ((r = 1; r <= ROUNDS; r++)); do
	for t in pgusher pgbouncer; do
		port=16630
		[[ $t == pgbouncer ]] && port=16631
		pid=PID_$t
		pid=${!pid}
		c0=$(awk '{print $14+$15}' "/proc/$pid/stat")
		out=$(PGPASSWORD=plainpass timeout $((DUR + 60)) pgbench -n -S -C -T "$DUR" -c "$CLIENTS" -j 2 \
			-h 127.0.0.1 -p "$port" -U u_plain testdb 2>&1)
		c1=$(awk '{print $14+$15}' "/proc/$pid/stat")
		n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
		((n > 0)) || { say "$t: pgbench failed: $out"; exit 1; }
		tps=$(awk -v n="$n" -v d="$DUR" 'BEGIN {printf "%.1f", n / d}')
		cpu=$(awk -v t=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v n="$n" 'BEGIN {printf "%.0f", t * 1e6 / hz / n}')
		say "round $r $t: $tps connections/s, pooler CPU $cpu us per connection"
		CONNS[$t]+="$tps "
		CPU[$t]+="$cpu "
	done
done
med() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
u_t=$(med <<<"${CONNS[pgusher]}") b_t=$(med <<<"${CONNS[pgbouncer]}")
u_c=$(med <<<"${CPU[pgusher]}") b_c=$(med <<<"${CPU[pgbouncer]}")
echo "SCRAM connection churn (pgbench -S -C -c $CLIENTS, medians of $ROUNDS rounds of $DUR s)"
echo "  pgusher:   $u_t connections/s, $u_c us pooler CPU per connection"
echo "  PgBouncer: $b_t connections/s, $b_c us pooler CPU per connection"
awk -v a="$u_t" -v b="$b_t" -v c="$u_c" -v d="$b_c" \
	'BEGIN {printf "  pgusher/PgBouncer: connections/s %.2f, CPU per connection %.2f\n", a / b, c / d}'
